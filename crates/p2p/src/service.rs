//! The network task: owns the swarm, turns host commands into swarm calls and swarm events
//! into host events. It never awaits the host: events go out with `try_send`, and what does
//! not fit is either dropped and counted (gossip, inbound requests — the network will offer
//! them again or the peer will retry) or parked in a bounded backlog (peer and sync-outcome
//! events, which the host needs to keep its own state right).

use crate::codec::{FrameError, Refusal, SyncCodec, SyncReply, SyncRequest, frame_error};
use crate::config::{P2pConfig, ScoringConfig, peer_id_of_addr};
use crate::error::{P2pError, Result};
use crate::event::{
    GossipMessage, InboundSyncId, P2pEvent, PeerInfo, SyncError, SyncRequestId, ValidationTicket,
    Verdict,
};
use crate::gate::{ConnectionCounts, ConnectionGate};
use crate::handle::{Command, P2pHandle};
use crate::identity::keypair_from_seed;
use crate::metrics::{Metrics, Outcome};
use crate::quota::{QuotaDecision, RequestQuotas};
use crate::topic::{GossipId, Topic, TopicTable};
use futures::StreamExt;
use libp2p::allow_block_list::{self, BlockedPeers};
use libp2p::gossipsub::{
    self, IdentityTransform, MessageAcceptance, MessageAuthenticity, PeerScoreParams,
    PeerScoreThresholds, PublishError, TopicScoreParams, ValidationMode,
    WhitelistSubscriptionFilter,
};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{
    self, InboundRequestId, OutboundFailure, OutboundRequestId, ProtocolSupport, ResponseChannel,
};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, noise, ping, tcp, yamux};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::{Instant, MissedTickBehavior};

/// How long [`spawn`] waits for the listener to bind.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Room for the protobuf envelope around a payload (topic string, field tags, lengths):
/// gossipsub's own per-topic check counts the envelope, ours counts the payload exactly.
const ENVELOPE_SLACK_BYTES: usize = 1024;
/// Room for control messages beside the largest payload in one gossipsub frame.
const FRAME_SLACK_BYTES: usize = 64 * 1024;
/// How often scores are checked for bans, bans expire and quotas are pruned.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);
/// Addresses remembered per validator for redialling.
const VALIDATOR_ADDRS_MAX: usize = 4;

#[derive(NetworkBehaviour)]
struct Behaviour {
    // First, so a connection over the limits is refused before any other protocol sets up
    // state for it.
    gate: ConnectionGate,
    blocked: allow_block_list::Behaviour<BlockedPeers>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    gossipsub: gossipsub::Behaviour<IdentityTransform, WhitelistSubscriptionFilter>,
    sync: request_response::Behaviour<SyncCodec>,
}

/// Start the network task on the current tokio runtime.
///
/// Binds the listen address (waiting at most ten seconds for it), subscribes to both topics,
/// dials the bootstrap peers, and returns the handle and the event receiver. The receiver
/// holds at most `event_capacity` events; read it promptly.
pub async fn spawn(config: P2pConfig) -> Result<(P2pHandle, mpsc::Receiver<P2pEvent>)> {
    config.validate()?;
    let metrics = Arc::new(Metrics::default());
    let topics = TopicTable::new(&config.network_id);
    let validators: HashSet<PeerId> = config.validator_peers.iter().copied().collect();
    let keypair = keypair_from_seed(config.identity_seed);
    let local_peer_id = keypair.public().to_peer_id();
    let protocol_version = format!("/dex/{}/1", config.network_id);

    let behaviour = build_behaviour(&config, &keypair, &topics, &validators, &metrics)?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| P2pError::Setup(format!("tcp transport: {e}")))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| P2pError::Setup(format!("behaviour: {e:?}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_connection_timeout))
        .build();

    for topic in Topic::ALL {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic.ident(&config.network_id))
            .map_err(|e| P2pError::Setup(format!("subscribe to {topic}: {e:?}")))?;
    }
    swarm
        .listen_on(config.listen_addr.clone())
        .map_err(|e| P2pError::Listen {
            address: config.listen_addr.to_string(),
            reason: e.to_string(),
        })?;
    let bound = tokio::time::timeout(LISTEN_TIMEOUT, first_listen_addr(&mut swarm))
        .await
        .map_err(|_| P2pError::Listen {
            address: config.listen_addr.to_string(),
            reason: format!("not bound within {LISTEN_TIMEOUT:?}"),
        })?
        .map_err(|reason| P2pError::Listen {
            address: config.listen_addr.to_string(),
            reason,
        })?;
    tracing::info!(peer = %local_peer_id, address = %bound, "p2p listening");

    for address in &config.bootstrap_peers {
        if let Err(error) = swarm.dial(new_port_dial(address.clone())) {
            tracing::warn!(%address, %error, "could not dial bootstrap peer");
        }
    }

    let (commands_tx, commands_rx) = mpsc::channel(config.command_capacity);
    let (events_tx, events_rx) = mpsc::channel(config.event_capacity);
    let handle = P2pHandle {
        commands: commands_tx,
        local_peer_id,
        listen_addrs: vec![bound.clone().with(Protocol::P2p(local_peer_id))],
        max_message_bytes: Topic::ALL.map(|topic| config.max_message_bytes(topic)),
        max_response_bytes: config.sync.max_response_bytes,
        metrics: Arc::clone(&metrics),
    };
    let mut service = Service {
        swarm,
        commands: commands_rx,
        events: events_tx,
        backlog: VecDeque::new(),
        backlog_max: config.event_capacity,
        topics,
        max_message_bytes: handle.max_message_bytes,
        validators,
        validator_addrs: HashMap::new(),
        bootstrap: config.bootstrap_peers.clone(),
        protocol_version,
        outstanding: HashMap::new(),
        max_outstanding: config.sync.max_outstanding_requests,
        pending_inbound: HashMap::new(),
        max_pending_inbound: config.sync.max_pending_inbound,
        quotas: RequestQuotas::new(
            config.sync.quota_burst,
            config.sync.quota_refill_interval,
            config.sync.max_tracked_peers,
        ),
        scoring: config.scoring.clone(),
        bans: HashMap::new(),
        metrics,
    };
    service.emit(P2pEvent::Listening { address: bound });
    tokio::spawn(service.run(config.redial_interval));
    Ok((handle, events_rx))
}

async fn first_listen_addr(swarm: &mut Swarm<Behaviour>) -> std::result::Result<Multiaddr, String> {
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
            SwarmEvent::ListenerClosed { reason, .. } => {
                return Err(match reason {
                    Ok(()) => "listener closed".to_owned(),
                    Err(error) => error.to_string(),
                });
            }
            SwarmEvent::ListenerError { error, .. } => return Err(error.to_string()),
            other => tracing::trace!(?other, "event before listening"),
        }
    }
}

fn build_behaviour(
    config: &P2pConfig,
    keypair: &libp2p::identity::Keypair,
    topics: &TopicTable,
    validators: &HashSet<PeerId>,
    metrics: &Arc<Metrics>,
) -> Result<Behaviour> {
    let setup = |what: &str, e: &dyn std::fmt::Display| P2pError::Setup(format!("{what}: {e}"));
    let g = &config.gossip;
    let largest = Topic::ALL
        .into_iter()
        .map(|topic| config.max_message_bytes(topic))
        .max()
        .expect("bug: there are topics");
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        // Messages carry no author, sequence number or libp2p signature: the payloads are
        // signed by their makers, and without per-publisher fields two publishers of the same
        // transaction produce the same message.
        .validation_mode(ValidationMode::Anonymous)
        .validate_messages()
        // In anonymous mode every message has the same (empty) source, so gossipsub would
        // take an honest peer relaying our own message back to us as a forged self-origin
        // message and penalise it until validators banned each other. The copy is then
        // dropped as an ordinary duplicate instead.
        .allow_self_origin(true)
        .message_id_fn(|message| GossipId::of(&message.data).to_message_id())
        .max_transmit_size(largest + FRAME_SLACK_BYTES)
        .heartbeat_interval(g.heartbeat_interval)
        .heartbeat_initial_delay(g.heartbeat_interval)
        .duplicate_cache_time(g.duplicate_cache_time)
        .mesh_n(g.mesh_n)
        .mesh_n_low(g.mesh_n_low)
        .mesh_n_high(g.mesh_n_high)
        .mesh_outbound_min(g.mesh_outbound_min);
    for topic in Topic::ALL {
        builder.set_topic_max_transmit_size(
            topics.hash(topic).clone(),
            config.max_message_bytes(topic) + ENVELOPE_SLACK_BYTES,
        );
    }
    let gossip_config = builder.build().map_err(|e| setup("gossipsub config", &e))?;
    let filter = WhitelistSubscriptionFilter(
        Topic::ALL
            .into_iter()
            .map(|topic| topics.hash(topic).clone())
            .collect(),
    );
    let mut gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
        MessageAuthenticity::Anonymous,
        gossip_config,
        filter,
    )
    .map_err(|e| setup("gossipsub", &e))?;
    let (params, thresholds) = score_params(&config.scoring, topics);
    gossipsub
        .with_peer_score(params, thresholds)
        .map_err(|e| setup("peer scoring", &e))?;

    let sync_protocol =
        StreamProtocol::try_from_owned(format!("/dex/{}/sync/1", config.network_id))
            .map_err(|e| setup("sync protocol name", &e))?;
    let sync = request_response::Behaviour::with_codec(
        SyncCodec::new(config.sync.max_response_bytes),
        [(sync_protocol, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.sync.request_timeout)
            .with_max_concurrent_streams(
                config.sync.max_pending_inbound + config.sync.max_outstanding_requests,
            ),
    );
    let identify = identify::Behaviour::new(
        identify::Config::new(format!("/dex/{}/1", config.network_id), keypair.public())
            .with_agent_version(format!("dex-p2p/{}", env!("CARGO_PKG_VERSION"))),
    );
    Ok(Behaviour {
        gate: ConnectionGate::new(
            ConnectionCounts::new(config.connections, validators.clone()),
            Arc::clone(metrics),
        ),
        blocked: allow_block_list::Behaviour::default(),
        identify,
        ping: ping::Behaviour::new(ping::Config::new()),
        gossipsub,
        sync,
    })
}

/// Gossipsub scoring: invalid messages (P4) dominate; the positive parts (time in mesh P1,
/// first deliveries P2) are small and capped; mesh delivery rates (P3, P3b) are off because
/// a quiet market would penalise honest peers for traffic that does not exist.
fn score_params(
    scoring: &ScoringConfig,
    topics: &TopicTable,
) -> (PeerScoreParams, PeerScoreThresholds) {
    let mut params = PeerScoreParams {
        topic_score_cap: 40.0,
        app_specific_weight: 1.0,
        // Several local nodes (a devnet) are not a sybil attack.
        ip_colocation_factor_whitelist: HashSet::from([
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]),
        ..PeerScoreParams::default()
    };
    let invalid_decay = gossipsub::score_parameter_decay(scoring.invalid_message_decay_time);
    for topic in Topic::ALL {
        params.topics.insert(
            topics.hash(topic).clone(),
            TopicScoreParams {
                topic_weight: 1.0,
                time_in_mesh_weight: 0.01,
                time_in_mesh_quantum: Duration::from_secs(1),
                time_in_mesh_cap: 1000.0,
                first_message_deliveries_weight: 1.0,
                first_message_deliveries_decay: gossipsub::score_parameter_decay(
                    Duration::from_secs(600),
                ),
                first_message_deliveries_cap: 20.0,
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                invalid_message_deliveries_weight: scoring.invalid_message_weight[topic.index()],
                invalid_message_deliveries_decay: invalid_decay,
                ..TopicScoreParams::default()
            },
        );
    }
    let thresholds = PeerScoreThresholds {
        gossip_threshold: scoring.gossip_threshold,
        publish_threshold: scoring.publish_threshold,
        graylist_threshold: scoring.graylist_threshold,
        // Peer exchange is off; no score is high enough to accept it.
        accept_px_threshold: f64::MAX,
        opportunistic_graft_threshold: 5.0,
    };
    (params, thresholds)
}

struct Service {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<P2pEvent>,
    /// Peer and sync-outcome events waiting for room in `events`; at most `backlog_max`.
    backlog: VecDeque<P2pEvent>,
    backlog_max: usize,
    topics: TopicTable,
    max_message_bytes: [usize; Topic::COUNT],
    validators: HashSet<PeerId>,
    /// Addresses validators announced (identify), for redialling them.
    validator_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    bootstrap: Vec<Multiaddr>,
    protocol_version: String,
    /// This node's sync requests in flight, and whom they went to.
    outstanding: HashMap<OutboundRequestId, PeerId>,
    max_outstanding: usize,
    /// Inbound sync requests waiting for the host's answer.
    pending_inbound: HashMap<InboundRequestId, ResponseChannel<SyncReply>>,
    max_pending_inbound: usize,
    quotas: RequestQuotas<PeerId>,
    scoring: ScoringConfig,
    /// Banned peers and when their ban ends; at most `scoring.max_banned_peers`.
    bans: HashMap<PeerId, Instant>,
    metrics: Arc<Metrics>,
}

impl Service {
    async fn run(mut self, redial_interval: Duration) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut redial =
            tokio::time::interval_at(Instant::now() + redial_interval, redial_interval);
        redial.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // A second sender, so waiting for room does not borrow `self` across the handlers.
        let events = self.events.clone();
        let shutdown_reply = loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => break Some(reply),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                permit = events.reserve(), if !self.backlog.is_empty() => match permit {
                    Ok(permit) => {
                        let event = self.backlog.pop_front().expect("bug: backlog checked non-empty");
                        permit.send(event);
                    }
                    // The host dropped its receiver; nobody will read these.
                    Err(_) => self.backlog.clear(),
                },
                _ = housekeeping.tick() => self.housekeeping(),
                _ = redial.tick() => self.redial(),
            }
        };
        let peer = *self.swarm.local_peer_id();
        drop(events);
        // Dropping the swarm closes every connection and the listener.
        drop(self);
        tracing::info!(%peer, "p2p stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    /// Queue an event the host must not miss: straight into the channel if it has room,
    /// otherwise into the bounded backlog (dropping the oldest, counted, when that is full).
    fn emit(&mut self, event: P2pEvent) {
        if self.backlog.is_empty() {
            match self.events.try_send(event) {
                // A closed channel means the host is gone; nobody will read the event.
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(event)) => self.backlog.push_back(event),
            }
            return;
        }
        if self.backlog.len() >= self.backlog_max {
            self.backlog.pop_front();
            self.metrics.event_dropped();
        }
        self.backlog.push_back(event);
    }

    /// Offer an event the network can afford to lose; false if the host had no room (the
    /// event is dropped).
    fn offer(&mut self, event: P2pEvent) -> bool {
        self.backlog.is_empty() && self.events.try_send(event).is_ok()
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data, reply } => {
                let _ = reply.send(self.publish(topic, data));
            }
            Command::Validate { ticket, verdict } => self.validate(ticket, verdict),
            Command::RequestBlocks {
                peer,
                request,
                reply,
            } => {
                let _ = reply.send(self.request_blocks(peer, request));
            }
            Command::Respond { id, data, reply } => {
                let _ = reply.send(self.respond(id, data));
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peers());
            }
            Command::PeerScore { peer, reply } => {
                let score = self.swarm.behaviour().gossipsub.peer_score(&peer);
                let _ = reply.send(score.unwrap_or(0.0));
            }
            Command::Dial { address, reply } => {
                let result = self
                    .swarm
                    .dial(new_port_dial(address))
                    .map_err(|e| P2pError::Dial(e.to_string()));
                let _ = reply.send(result);
            }
            Command::Ban { peer, reply } => {
                self.ban(peer);
                let _ = reply.send(());
            }
            Command::Shutdown { .. } => unreachable!("bug: shutdown is handled by the run loop"),
        }
    }

    fn publish(&mut self, topic: Topic, data: Vec<u8>) -> Result<GossipId> {
        let len = data.len();
        let max_bytes = self.max_message_bytes[topic.index()];
        if len > max_bytes {
            return Err(P2pError::MessageTooLarge {
                topic,
                len_bytes: len,
                max_bytes,
            });
        }
        let hash = self.topics.hash(topic).clone();
        let result = self.swarm.behaviour_mut().gossipsub.publish(hash, data);
        match result {
            Ok(id) => {
                self.metrics.gossip_published(topic, len);
                Ok(GossipId::from_message_id(&id).expect("bug: message ids are 32-byte hashes"))
            }
            Err(error) => {
                self.metrics.gossip_publish_failed(topic);
                Err(match error {
                    PublishError::Duplicate => P2pError::Duplicate,
                    PublishError::NoPeersSubscribedToTopic => P2pError::NoPeers(topic),
                    PublishError::AllQueuesFull(peers) => P2pError::QueuesFull { peers },
                    PublishError::MessageTooLarge => P2pError::MessageTooLarge {
                        topic,
                        len_bytes: len,
                        max_bytes,
                    },
                    other => P2pError::Publish(other.to_string()),
                })
            }
        }
    }

    fn validate(&mut self, ticket: ValidationTicket, verdict: Verdict) {
        let (acceptance, outcome) = match verdict {
            Verdict::Accept => (MessageAcceptance::Accept, Outcome::Accepted),
            Verdict::Reject => (MessageAcceptance::Reject, Outcome::RejectedInvalid),
            Verdict::Ignore => (MessageAcceptance::Ignore, Outcome::Ignored),
        };
        let known = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(
                &ticket.id.to_message_id(),
                &ticket.source,
                acceptance,
            );
        if known {
            self.metrics.gossip_validated(ticket.topic, outcome);
        } else {
            // Validated too late: the message already left the cache.
            tracing::debug!(id = %ticket.id, "validation result for an expired message");
        }
    }

    fn request_blocks(&mut self, peer: PeerId, request: SyncRequest) -> Result<SyncRequestId> {
        if self.outstanding.len() >= self.max_outstanding {
            return Err(P2pError::TooManyOutstandingRequests {
                max: self.max_outstanding,
            });
        }
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.outstanding.insert(id, peer);
        self.metrics.sync_request_sent();
        Ok(SyncRequestId(id))
    }

    fn respond(&mut self, id: InboundSyncId, data: Vec<u8>) -> Result<()> {
        let channel = self
            .pending_inbound
            .remove(&id.0)
            .ok_or(P2pError::UnknownSyncRequest)?;
        let len = data.len();
        self.swarm
            .behaviour_mut()
            .sync
            .send_response(channel, SyncReply::Blocks(data))
            .map_err(|_| P2pError::RequesterGone)?;
        self.metrics.sync_response_sent(len);
        Ok(())
    }

    fn peers(&self) -> Vec<PeerInfo> {
        let gossipsub = &self.swarm.behaviour().gossipsub;
        let mut subscribed: HashMap<PeerId, Vec<Topic>> = HashMap::new();
        for (peer, hashes) in gossipsub.all_peers() {
            let topics = hashes
                .into_iter()
                .filter_map(|hash| self.topics.topic(hash))
                .collect();
            subscribed.insert(*peer, topics);
        }
        let mut meshes: HashMap<PeerId, Vec<Topic>> = HashMap::new();
        for topic in Topic::ALL {
            for peer in gossipsub.mesh_peers(self.topics.hash(topic)) {
                meshes.entry(*peer).or_default().push(topic);
            }
        }
        let mut peers: Vec<PeerInfo> = self
            .swarm
            .connected_peers()
            .map(|peer| {
                let mut topics = subscribed.remove(peer).unwrap_or_default();
                topics.sort();
                PeerInfo {
                    peer: *peer,
                    is_validator: self.validators.contains(peer),
                    score: gossipsub.peer_score(peer).unwrap_or(0.0),
                    topics,
                    mesh: meshes.remove(peer).unwrap_or_default(),
                }
            })
            .collect();
        peers.sort_by_key(|info| info.peer);
        peers
    }

    /// Disconnect `peer` and refuse it until its ban ends.
    fn ban(&mut self, peer: PeerId) {
        let until = Instant::now() + self.scoring.ban_duration;
        if !self.bans.contains_key(&peer) && self.bans.len() >= self.scoring.max_banned_peers {
            let soonest = self
                .bans
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(peer, _)| *peer);
            if let Some(lifted) = soonest {
                self.lift_ban(lifted);
            }
        }
        self.bans.insert(peer, until);
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        self.metrics.peer_banned();
        tracing::info!(%peer, "peer banned");
    }

    fn lift_ban(&mut self, peer: PeerId) {
        self.bans.remove(&peer);
        self.swarm.behaviour_mut().blocked.unblock_peer(peer);
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        let low: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|peer| {
                let score = self.swarm.behaviour().gossipsub.peer_score(peer);
                score.is_some_and(|s| s < self.scoring.ban_threshold)
            })
            .copied()
            .collect();
        for peer in low {
            tracing::info!(%peer, "peer score below the ban threshold");
            self.ban(peer);
        }
        let expired: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in expired {
            self.lift_ban(peer);
        }
        self.quotas.prune(now);
        // Requests whose requester went away or timed out: their failure event normally
        // removes them, this catches any that slipped past.
        self.pending_inbound.retain(|_, channel| channel.is_open());
        self.metrics
            .set_peers_connected(self.swarm.connected_peers().count());
    }

    fn redial(&mut self) {
        let connected_any = self.swarm.connected_peers().next().is_some();
        let mut dials: Vec<DialOpts> = Vec::new();
        for address in &self.bootstrap {
            match peer_id_of_addr(address) {
                Some(peer) if peer == *self.swarm.local_peer_id() => {}
                Some(peer) if !self.swarm.is_connected(&peer) && !self.bans.contains_key(&peer) => {
                    dials.push(
                        DialOpts::peer_id(peer)
                            .addresses(vec![address.clone()])
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build(),
                    );
                }
                Some(_) => {}
                None if !connected_any => {
                    dials.push(DialOpts::unknown_peer_id().address(address.clone()).build())
                }
                None => {}
            }
        }
        for (peer, addresses) in &self.validator_addrs {
            if !self.swarm.is_connected(peer) && !self.bans.contains_key(peer) {
                dials.push(
                    DialOpts::peer_id(*peer)
                        .addresses(addresses.clone())
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .allocate_new_port()
                        .build(),
                );
            }
        }
        for dial in dials {
            if let Err(error) = self.swarm.dial(dial) {
                tracing::debug!(%error, "redial not started");
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => self.on_identify(event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(_)) => {}
            SwarmEvent::Behaviour(BehaviourEvent::Gate(never)) => match never {},
            SwarmEvent::Behaviour(BehaviourEvent::Blocked(never)) => match never {},
            SwarmEvent::NewListenAddr { address, .. } => {
                self.emit(P2pEvent::Listening { address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                self.metrics.connection_established();
                if num_established.get() == 1 {
                    let is_validator = self.validators.contains(&peer_id);
                    if is_validator {
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .set_application_score(&peer_id, self.scoring.validator_bonus);
                    }
                    self.metrics
                        .set_peers_connected(self.swarm.connected_peers().count());
                    self.emit(P2pEvent::PeerConnected {
                        peer: peer_id,
                        is_validator,
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                self.metrics.connection_closed();
                if num_established == 0 {
                    self.metrics
                        .set_peers_connected(self.swarm.connected_peers().count());
                    self.emit(P2pEvent::PeerDisconnected { peer: peer_id });
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "dial failed");
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!(%error, "incoming connection failed");
            }
            other => tracing::trace!(?other, "swarm event"),
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            tracing::trace!(?event, "gossipsub event");
            return;
        };
        let Some(topic) = self.topics.topic(&message.topic) else {
            // The subscription filter admits only our topics; report it anyway so the
            // cache does not hold it.
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    MessageAcceptance::Ignore,
                );
            return;
        };
        let id =
            GossipId::from_message_id(&message_id).expect("bug: message ids are 32-byte hashes");
        self.metrics.gossip_received(topic, message.data.len());
        let ticket = ValidationTicket {
            id,
            topic,
            source: propagation_source,
        };
        if message.data.len() > self.max_message_bytes[topic.index()] {
            self.metrics.gossip_oversize(topic);
            tracing::debug!(peer = %propagation_source, %topic, bytes = message.data.len(), "oversized gossip rejected");
            self.report(ticket, MessageAcceptance::Reject);
            return;
        }
        let event = P2pEvent::Gossip(GossipMessage {
            id,
            topic,
            source: propagation_source,
            data: message.data,
        });
        if !self.offer(event) {
            self.metrics.gossip_host_busy(topic);
            self.report(ticket, MessageAcceptance::Ignore);
        }
    }

    fn report(&mut self, ticket: ValidationTicket, acceptance: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(
                &ticket.id.to_message_id(),
                &ticket.source,
                acceptance,
            );
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncReply>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => self.on_sync_request(peer, request_id, request, channel),
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                self.outstanding.remove(&request_id);
                let id = SyncRequestId(request_id);
                let event = match response {
                    SyncReply::Blocks(data) => {
                        self.metrics.sync_response_received(data.len());
                        P2pEvent::SyncResponse { id, peer, data }
                    }
                    SyncReply::Refused(refusal) => {
                        self.metrics.sync_request_failed();
                        P2pEvent::SyncFailed {
                            id,
                            peer,
                            error: SyncError::Refused(refusal),
                        }
                    }
                };
                self.emit(event);
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.outstanding.remove(&request_id);
                self.metrics.sync_request_failed();
                let error = sync_error(error);
                tracing::debug!(%peer, %error, "sync request failed");
                self.emit(P2pEvent::SyncFailed {
                    id: SyncRequestId(request_id),
                    peer,
                    error,
                });
            }
            Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.pending_inbound.remove(&request_id);
                tracing::debug!(%peer, %error, "inbound sync request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    fn on_sync_request(
        &mut self,
        peer: PeerId,
        request_id: InboundRequestId,
        request: SyncRequest,
        channel: ResponseChannel<SyncReply>,
    ) {
        self.metrics.sync_request_received();
        let refusal = match self.quotas.try_take(peer, Instant::now()) {
            QuotaDecision::Allowed if self.pending_inbound.len() >= self.max_pending_inbound => {
                Some(Refusal::Busy)
            }
            QuotaDecision::Allowed => None,
            QuotaDecision::Exceeded => Some(Refusal::QuotaExceeded),
            QuotaDecision::TooManyPeers => Some(Refusal::Busy),
        };
        let channel = match refusal {
            Some(refusal) => Err((refusal, channel)),
            None => {
                let event = P2pEvent::SyncRequested {
                    id: InboundSyncId(request_id),
                    peer,
                    request,
                };
                if self.offer(event) {
                    self.pending_inbound.insert(request_id, channel);
                    Ok(())
                } else {
                    Err((Refusal::Busy, channel))
                }
            }
        };
        if let Err((refusal, channel)) = channel {
            match refusal {
                Refusal::QuotaExceeded => self.metrics.sync_refused_quota(),
                Refusal::Busy => self.metrics.sync_refused_busy(),
            }
            tracing::debug!(%peer, ?refusal, "sync request refused");
            // The requester may already be gone; nothing to do then.
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, SyncReply::Refused(refusal));
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        if info.protocol_version != self.protocol_version {
            tracing::info!(peer = %peer_id, theirs = %info.protocol_version, "peer runs another network");
            self.metrics.peer_wrong_network();
            let _ = self.swarm.disconnect_peer_id(peer_id);
            return;
        }
        if self.validators.contains(&peer_id) {
            let mut addresses = info.listen_addrs;
            addresses.truncate(VALIDATOR_ADDRS_MAX);
            self.validator_addrs.insert(peer_id, addresses);
        }
    }
}

fn sync_error(error: OutboundFailure) -> SyncError {
    match error {
        OutboundFailure::Timeout => SyncError::Timeout,
        OutboundFailure::ConnectionClosed => SyncError::ConnectionClosed,
        OutboundFailure::DialFailure => SyncError::DialFailure,
        OutboundFailure::UnsupportedProtocols => SyncError::UnsupportedProtocol,
        OutboundFailure::Io(error) => match frame_error(&error) {
            Some(FrameError::TooLarge {
                len_bytes,
                max_bytes,
            }) => SyncError::ResponseTooLarge {
                len_bytes: *len_bytes,
                max_bytes: *max_bytes,
            },
            Some(other) => SyncError::Malformed(other.clone()),
            None => SyncError::Io(error.to_string()),
        },
    }
}

/// Dial options for `address` from a fresh local port.
///
/// libp2p dials from the listening port by default. A connection from a fixed port to a
/// peer's fixed port has the same address pair every time, so after a restart (of either
/// side) the new connection collides with the old one still in TIME-WAIT and the dial fails
/// for about a minute. A fresh port per dial avoids that; peers are identified by their
/// key, not by the port they dial from.
fn new_port_dial(address: Multiaddr) -> DialOpts {
    DialOpts::unknown_peer_id()
        .address(address)
        .allocate_new_port()
        .build()
}
