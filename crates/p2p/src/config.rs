//! Configuration of the network layer. Every queue, message and quota has a limit here.

use crate::topic::Topic;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// The smallest gossip size limit gossipsub accepts (its control messages must fit).
pub const GOSSIP_MESSAGE_BYTES_MIN: usize = 100;
/// The largest gossip size limit this crate accepts: a proposal carrying a full block must
/// fit, and nothing larger should travel by gossip.
pub const GOSSIP_MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// The largest block-sync response this crate accepts; a node that needs more asks again.
pub const SYNC_RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Everything the network layer needs to start.
#[derive(Clone)]
pub struct P2pConfig {
    /// The network (chain) id. Topics, the sync protocol and the identify protocol version
    /// all carry it, so nodes of different chains never exchange messages. Letters, digits,
    /// `-`, `_` and `.` only.
    pub network_id: String,
    /// The 32-byte ed25519 secret seed of this node's network identity. A validator may use
    /// its validator key so peers recognise it by peer id.
    pub identity_seed: [u8; 32],
    /// Where to listen, e.g. `/ip4/127.0.0.1/tcp/0` (port 0 picks a free port; the bound
    /// address arrives as [`crate::P2pEvent::Listening`] and in
    /// [`crate::P2pHandle::listen_addrs`]). See [`parse_addr`] for `127.0.0.1:9000` forms.
    pub listen_addr: Multiaddr,
    /// Peers to dial at start and redial while disconnected. An address ending in
    /// `/p2p/<peer id>` is redialled whenever that peer is not connected; one without a peer
    /// id only while the node has no connection at all.
    pub bootstrap_peers: Vec<Multiaddr>,
    /// The validators' peer ids (from genesis). They have reserved connection slots, a score
    /// bonus, and are redialled at addresses they announced.
    pub validator_peers: Vec<PeerId>,
    /// Connection limits.
    pub connections: ConnectionLimits,
    /// Gossip settings and per-topic size limits.
    pub gossip: GossipConfig,
    /// Peer scoring, graylisting and bans.
    pub scoring: ScoringConfig,
    /// Block sync (request-response) settings.
    pub sync: SyncConfig,
    /// Capacity of the host → network command channel.
    pub command_capacity: usize,
    /// Capacity of the network → host event channel. When it is full, gossip messages and
    /// inbound sync requests are dropped (and counted); peer and sync-outcome events wait in
    /// a queue of the same capacity.
    pub event_capacity: usize,
    /// A connection with no open stream is closed after this long.
    pub idle_connection_timeout: Duration,
    /// How often disconnected bootstrap peers and validators are redialled.
    pub redial_interval: Duration,
}

impl fmt::Debug for P2pConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The identity seed is a secret key and never appears in logs.
        f.debug_struct("P2pConfig")
            .field("network_id", &self.network_id)
            .field("identity_seed", &"<secret>")
            .field("listen_addr", &self.listen_addr)
            .field("bootstrap_peers", &self.bootstrap_peers)
            .field("validator_peers", &self.validator_peers)
            .field("connections", &self.connections)
            .field("gossip", &self.gossip)
            .field("scoring", &self.scoring)
            .field("sync", &self.sync)
            .field("command_capacity", &self.command_capacity)
            .field("event_capacity", &self.event_capacity)
            .field("idle_connection_timeout", &self.idle_connection_timeout)
            .field("redial_interval", &self.redial_interval)
            .finish()
    }
}

impl P2pConfig {
    /// A configuration with production defaults for every limit.
    pub fn new(
        network_id: impl Into<String>,
        identity_seed: [u8; 32],
        listen_addr: Multiaddr,
    ) -> Self {
        P2pConfig {
            network_id: network_id.into(),
            identity_seed,
            listen_addr,
            bootstrap_peers: Vec::new(),
            validator_peers: Vec::new(),
            connections: ConnectionLimits::default(),
            gossip: GossipConfig::default(),
            scoring: ScoringConfig::default(),
            sync: SyncConfig::default(),
            command_capacity: 1024,
            event_capacity: 4096,
            idle_connection_timeout: Duration::from_secs(60),
            redial_interval: Duration::from_secs(5),
        }
    }

    /// The size limit of gossip messages on `topic`, in bytes of payload.
    pub fn max_message_bytes(&self, topic: Topic) -> usize {
        self.gossip.max_message_bytes(topic)
    }

    /// Check every limit is usable; [`crate::spawn`] calls this first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let id_ok = !self.network_id.is_empty()
            && self.network_id.len() <= 64
            && self
                .network_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !id_ok {
            return Err(ConfigError::NetworkId(self.network_id.clone()));
        }
        for topic in Topic::ALL {
            let max = self.gossip.max_message_bytes(topic);
            if !(GOSSIP_MESSAGE_BYTES_MIN..=GOSSIP_MESSAGE_BYTES_MAX).contains(&max) {
                return Err(ConfigError::MessageLimit {
                    topic,
                    max_bytes: max,
                });
            }
        }
        if self.sync.max_response_bytes == 0
            || self.sync.max_response_bytes > SYNC_RESPONSE_BYTES_MAX
        {
            return Err(ConfigError::ResponseLimit(self.sync.max_response_bytes));
        }
        let positive = [
            ("command_capacity", self.command_capacity),
            ("event_capacity", self.event_capacity),
            (
                "connections.max_connections",
                self.connections.max_connections as usize,
            ),
            (
                "connections.max_connections_per_peer",
                self.connections.max_connections_per_peer as usize,
            ),
            (
                "connections.max_pending_incoming",
                self.connections.max_pending_incoming as usize,
            ),
            (
                "connections.max_pending_outgoing",
                self.connections.max_pending_outgoing as usize,
            ),
            (
                "sync.max_outstanding_requests",
                self.sync.max_outstanding_requests,
            ),
            ("sync.max_pending_inbound", self.sync.max_pending_inbound),
            ("sync.quota_burst", self.sync.quota_burst as usize),
            ("sync.max_tracked_peers", self.sync.max_tracked_peers),
            ("scoring.max_banned_peers", self.scoring.max_banned_peers),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero(name));
        }
        let durations = [
            ("gossip.heartbeat_interval", self.gossip.heartbeat_interval),
            (
                "gossip.duplicate_cache_time",
                self.gossip.duplicate_cache_time,
            ),
            ("sync.request_timeout", self.sync.request_timeout),
            (
                "sync.quota_refill_interval",
                self.sync.quota_refill_interval,
            ),
            ("idle_connection_timeout", self.idle_connection_timeout),
            ("redial_interval", self.redial_interval),
            ("scoring.ban_duration", self.scoring.ban_duration),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, value)| value.is_zero()) {
            return Err(ConfigError::Zero(name));
        }
        let g = &self.gossip;
        if !(g.mesh_outbound_min <= g.mesh_n_low
            && g.mesh_n_low <= g.mesh_n
            && g.mesh_n <= g.mesh_n_high
            && g.mesh_outbound_min * 2 <= g.mesh_n)
        {
            return Err(ConfigError::Mesh);
        }
        let s = &self.scoring;
        let ordered = s.graylist_threshold <= s.ban_threshold
            && s.ban_threshold <= s.publish_threshold
            && s.graylist_threshold <= s.publish_threshold
            && s.publish_threshold <= s.gossip_threshold
            && s.gossip_threshold <= 0.0;
        let weights_ok = s
            .invalid_message_weight
            .iter()
            .all(|w| w.is_finite() && *w < 0.0)
            && s.validator_bonus.is_finite()
            && s.validator_bonus >= 0.0;
        if !ordered || !weights_ok || s.invalid_message_decay_time < Duration::from_secs(1) {
            return Err(ConfigError::Scoring);
        }
        Ok(())
    }
}

/// Connection limits. Validators have reserved slots: `max_connections` counts only
/// non-validator peers, so full nodes can never crowd validators out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Established connections to peers that are not known validators.
    pub max_connections: u32,
    /// Established connections to any one peer (validators included).
    pub max_connections_per_peer: u32,
    /// Incoming connections still in the handshake.
    pub max_pending_incoming: u32,
    /// Outgoing dials still in progress.
    pub max_pending_outgoing: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 128,
            max_connections_per_peer: 2,
            max_pending_incoming: 32,
            max_pending_outgoing: 32,
        }
    }
}

/// Gossip settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipConfig {
    /// Largest transaction message, in bytes of payload.
    pub max_transaction_bytes: usize,
    /// Largest consensus message (a proposal carries a whole block), in bytes of payload.
    pub max_consensus_bytes: usize,
    /// Gossipsub heartbeat (mesh maintenance, gossip emission, score decay ticks).
    pub heartbeat_interval: Duration,
    /// How long a message id is remembered to drop duplicates.
    pub duplicate_cache_time: Duration,
    /// Target mesh degree (D).
    pub mesh_n: usize,
    /// Low watermark of the mesh degree (D_lo).
    pub mesh_n_low: usize,
    /// High watermark of the mesh degree (D_hi).
    pub mesh_n_high: usize,
    /// Outbound peers kept in the mesh (D_out); at most `mesh_n / 2` and `mesh_n_low`.
    pub mesh_outbound_min: usize,
}

impl GossipConfig {
    /// The payload size limit of `topic`.
    pub fn max_message_bytes(&self, topic: Topic) -> usize {
        match topic {
            Topic::Transactions => self.max_transaction_bytes,
            Topic::Consensus => self.max_consensus_bytes,
        }
    }
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            max_transaction_bytes: 64 * 1024,
            max_consensus_bytes: 4 * 1024 * 1024,
            heartbeat_interval: Duration::from_secs(1),
            duplicate_cache_time: Duration::from_secs(120),
            mesh_n: 6,
            mesh_n_low: 4,
            mesh_n_high: 12,
            mesh_outbound_min: 2,
        }
    }
}

/// Peer scoring. A peer whose message the host rejects loses
/// `invalid_message_weight[topic] × (invalid messages)²` points (decaying over
/// `invalid_message_decay_time`); positive contributions (time in mesh, first deliveries,
/// the validator bonus) are small and capped so a few invalid messages always outweigh them.
///
/// Below `gossip_threshold` a peer gets no gossip from us; below `publish_threshold` we do
/// not publish to it; below `graylist_threshold` everything it sends is ignored; below
/// `ban_threshold` it is disconnected and banned for `ban_duration`.
///
/// The ban threshold must not be below the graylist threshold: a graylisted peer's messages
/// are dropped before they are scored, so its score stops falling and a lower ban threshold
/// would never be reached. By default the two are equal, so a peer is banned (within a
/// second, at the next score check) as soon as it would be graylisted.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringConfig {
    /// Score weight of an invalid message per topic, indexed by [`Topic::index`]; negative.
    pub invalid_message_weight: [f64; Topic::COUNT],
    /// Time for the invalid-message counter to decay to (almost) zero; at least one second.
    pub invalid_message_decay_time: Duration,
    /// Score bonus of known validators (application-specific score, P5).
    pub validator_bonus: f64,
    /// Below this, no gossip is emitted to the peer.
    pub gossip_threshold: f64,
    /// Below this, we do not publish to the peer.
    pub publish_threshold: f64,
    /// Below this, messages from the peer are ignored (graylist).
    pub graylist_threshold: f64,
    /// Below this, the peer is disconnected and banned; at least `graylist_threshold`.
    pub ban_threshold: f64,
    /// How long a ban lasts.
    pub ban_duration: Duration,
    /// How many bans are remembered; the one ending soonest is lifted to make room.
    pub max_banned_peers: usize,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            // One invalid consensus message is as bad as three invalid transactions: a
            // transaction can turn stale in flight (nonce used, expired), a vote cannot turn
            // malformed or badly signed.
            invalid_message_weight: [-20.0, -100.0],
            invalid_message_decay_time: Duration::from_secs(600),
            validator_bonus: 20.0,
            gossip_threshold: -10.0,
            publish_threshold: -50.0,
            graylist_threshold: -80.0,
            ban_threshold: -80.0,
            ban_duration: Duration::from_secs(600),
            max_banned_peers: 1024,
        }
    }
}

/// Block sync (request-response) settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// Largest response payload, both served and accepted, in bytes.
    pub max_response_bytes: usize,
    /// How long a request may wait for its response (both sides).
    pub request_timeout: Duration,
    /// Requests this node may have in flight at once.
    pub max_outstanding_requests: usize,
    /// Inbound requests waiting for the host's answer at once; more are refused as busy.
    pub max_pending_inbound: usize,
    /// Requests a peer may make in a burst.
    pub quota_burst: u32,
    /// A peer regains one request of quota per this interval.
    pub quota_refill_interval: Duration,
    /// Peers whose quota is tracked at once; requests from more peers are refused as busy.
    pub max_tracked_peers: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_response_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            max_outstanding_requests: 32,
            max_pending_inbound: 64,
            quota_burst: 16,
            quota_refill_interval: Duration::from_millis(250),
            max_tracked_peers: 1024,
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The network id is empty, longer than 64 bytes, or has characters other than letters,
    /// digits, `-`, `_` and `.`.
    #[error("network id {0:?} must be 1-64 letters, digits, '-', '_' or '.'")]
    NetworkId(String),
    /// A topic's size limit is outside what gossip can carry.
    #[error(
        "the {topic} message limit of {max_bytes} bytes must be between {GOSSIP_MESSAGE_BYTES_MIN} and {GOSSIP_MESSAGE_BYTES_MAX}"
    )]
    MessageLimit {
        /// The topic.
        topic: Topic,
        /// The configured limit.
        max_bytes: usize,
    },
    /// The sync response limit is zero or above [`SYNC_RESPONSE_BYTES_MAX`].
    #[error("the sync response limit of {0} bytes must be between 1 and {SYNC_RESPONSE_BYTES_MAX}")]
    ResponseLimit(usize),
    /// A capacity, limit or interval is zero.
    #[error("{0} must not be zero")]
    Zero(&'static str),
    /// The mesh degrees are not ordered `outbound_min ≤ n_low ≤ n ≤ n_high` with
    /// `2 × outbound_min ≤ n`.
    #[error(
        "mesh degrees must satisfy mesh_outbound_min <= mesh_n_low <= mesh_n <= mesh_n_high and 2 * mesh_outbound_min <= mesh_n"
    )]
    Mesh,
    /// Score thresholds are not ordered `graylist ≤ ban ≤ publish ≤ gossip ≤ 0`, a weight is
    /// not negative, the validator bonus is negative, or the decay time is under a second.
    #[error(
        "scoring must have graylist <= ban <= publish <= gossip <= 0, negative invalid-message weights, a non-negative validator bonus and a decay time of at least 1s"
    )]
    Scoring,
    /// An address is neither a multiaddr nor `ip:port`.
    #[error("{0:?} is neither a multiaddr (/ip4/127.0.0.1/tcp/9000) nor ip:port (127.0.0.1:9000)")]
    Address(String),
}

/// Parse an address given either as a multiaddr (`/ip4/127.0.0.1/tcp/9000`, optionally
/// ending in `/p2p/<peer id>`) or as a socket address (`127.0.0.1:9000`, `[::1]:9000`).
pub fn parse_addr(text: &str) -> Result<Multiaddr, ConfigError> {
    let text = text.trim();
    if text.starts_with('/') {
        return text
            .parse::<Multiaddr>()
            .map_err(|_| ConfigError::Address(text.to_owned()));
    }
    let socket: SocketAddr = text
        .parse()
        .map_err(|_| ConfigError::Address(text.to_owned()))?;
    let ip = match socket.ip() {
        std::net::IpAddr::V4(ip) => Protocol::Ip4(ip),
        std::net::IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Ok(Multiaddr::empty()
        .with(ip)
        .with(Protocol::Tcp(socket.port())))
}

/// The peer id an address ends with (`…/p2p/<peer id>`), if any.
pub fn peer_id_of_addr(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> P2pConfig {
        P2pConfig::new("devnet-1", [3; 32], parse_addr("127.0.0.1:0").unwrap())
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn bad_settings_are_named() {
        let mut c = config();
        c.network_id = "has space".into();
        assert!(matches!(c.validate(), Err(ConfigError::NetworkId(_))));

        let mut c = config();
        c.gossip.max_transaction_bytes = 10;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::MessageLimit {
                topic: Topic::Transactions,
                ..
            })
        ));

        let mut c = config();
        c.event_capacity = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero("event_capacity")));

        let mut c = config();
        c.sync.quota_refill_interval = Duration::ZERO;
        assert_eq!(
            c.validate(),
            Err(ConfigError::Zero("sync.quota_refill_interval"))
        );

        let mut c = config();
        c.gossip.mesh_n_low = 10;
        assert_eq!(c.validate(), Err(ConfigError::Mesh));

        let mut c = config();
        c.scoring.ban_threshold = -100.0;
        assert_eq!(c.validate(), Err(ConfigError::Scoring));

        let mut c = config();
        c.scoring.ban_threshold = -1.0;
        assert_eq!(c.validate(), Err(ConfigError::Scoring));

        let mut c = config();
        c.scoring.invalid_message_weight[1] = 1.0;
        assert_eq!(c.validate(), Err(ConfigError::Scoring));

        let mut c = config();
        c.sync.max_response_bytes = SYNC_RESPONSE_BYTES_MAX + 1;
        assert!(matches!(c.validate(), Err(ConfigError::ResponseLimit(_))));
    }

    #[test]
    fn addresses_parse_in_both_forms() {
        let a = parse_addr("127.0.0.1:9000").unwrap();
        assert_eq!(a, "/ip4/127.0.0.1/tcp/9000".parse::<Multiaddr>().unwrap());
        assert_eq!(parse_addr("/ip4/127.0.0.1/tcp/9000").unwrap(), a);
        assert_eq!(
            parse_addr("[::1]:7").unwrap(),
            "/ip6/::1/tcp/7".parse::<Multiaddr>().unwrap()
        );
        assert!(matches!(
            parse_addr("localhost"),
            Err(ConfigError::Address(_))
        ));
        assert!(matches!(
            parse_addr("/nonsense"),
            Err(ConfigError::Address(_))
        ));
    }

    #[test]
    fn peer_id_is_read_from_the_address_end() {
        let peer = crate::identity::peer_id_from_seed([5; 32]);
        let addr = parse_addr("127.0.0.1:1").unwrap().with(Protocol::P2p(peer));
        assert_eq!(peer_id_of_addr(&addr), Some(peer));
        assert_eq!(peer_id_of_addr(&parse_addr("127.0.0.1:1").unwrap()), None);
    }

    #[test]
    fn debug_hides_the_seed() {
        let text = format!("{:?}", config());
        assert!(text.contains("<secret>"));
        assert!(!text.contains("[3, 3"));
    }
}
