//! The host's side: a cheap, cloneable handle that sends commands to the network task.

use crate::codec::SyncRequest;
use crate::error::{P2pError, Result};
use crate::event::{InboundSyncId, PeerInfo, SyncRequestId, ValidationTicket, Verdict};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::topic::{GossipId, Topic};
use libp2p::{Multiaddr, PeerId};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A command to the network task. Each carries a reply channel where the caller waits for an
/// outcome; only validation reports are fire-and-forget (they are the hot path and have no
/// outcome worth waiting for).
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        topic: Topic,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<GossipId>>,
    },
    Validate {
        ticket: ValidationTicket,
        verdict: Verdict,
    },
    RequestBlocks {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncRequestId>>,
    },
    Respond {
        id: InboundSyncId,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<()>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    PeerScore {
        peer: PeerId,
        reply: oneshot::Sender<f64>,
    },
    Dial {
        address: Multiaddr,
        reply: oneshot::Sender<Result<()>>,
    },
    Ban {
        peer: PeerId,
        reply: oneshot::Sender<()>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The host's handle on the network task. Cloning is cheap; the task stops when every handle
/// is dropped or [`P2pHandle::shutdown`] is called.
///
/// Every method waits for room in the bounded command channel, so a host that floods commands
/// is slowed down rather than growing a queue. The task itself never waits on the host.
#[derive(Debug, Clone)]
pub struct P2pHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) local_peer_id: PeerId,
    pub(crate) listen_addrs: Vec<Multiaddr>,
    pub(crate) max_message_bytes: [usize; Topic::COUNT],
    pub(crate) max_response_bytes: usize,
    pub(crate) metrics: Arc<Metrics>,
}

impl P2pHandle {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The address bound at start, ending in `/p2p/<this peer id>`: what other nodes put in
    /// their bootstrap list.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    /// The payload size limit of `topic`.
    pub fn max_message_bytes(&self, topic: Topic) -> usize {
        self.max_message_bytes[topic.index()]
    }

    /// The largest sync response this node serves or accepts.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// A copy of the counters, without waiting on the task.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    async fn send(&self, command: Command) -> Result<()> {
        self.commands
            .send(command)
            .await
            .map_err(|_| P2pError::Stopped)
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply)).await?;
        answer.await.map_err(|_| P2pError::Stopped)
    }

    /// Gossip `data` on `topic`. Returns its id (the content hash). Fails with
    /// [`P2pError::MessageTooLarge`] before sending anything if `data` exceeds the topic's
    /// limit, [`P2pError::Duplicate`] if this payload was seen recently, and
    /// [`P2pError::NoPeers`] if no connected peer subscribes to the topic.
    pub async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<GossipId> {
        let max_bytes = self.max_message_bytes(topic);
        if data.len() > max_bytes {
            return Err(P2pError::MessageTooLarge {
                topic,
                len_bytes: data.len(),
                max_bytes,
            });
        }
        self.call(|reply| Command::Publish { topic, data, reply })
            .await?
    }

    /// Report the host's decision on a gossip message: `Accept` forwards it, `Reject`
    /// drops it and penalises the senders, `Ignore` drops it without penalty. Report each
    /// message once.
    pub async fn report_validation(
        &self,
        ticket: ValidationTicket,
        verdict: Verdict,
    ) -> Result<()> {
        self.send(Command::Validate { ticket, verdict }).await
    }

    /// Ask `peer` for up to `max_count` blocks from `from_height`. The outcome arrives as
    /// [`crate::P2pEvent::SyncResponse`] or [`crate::P2pEvent::SyncFailed`] with the returned
    /// id. If the peer is not connected, it is dialled at addresses the node knows.
    pub async fn request_blocks(
        &self,
        peer: PeerId,
        from_height: u64,
        max_count: u32,
    ) -> Result<SyncRequestId> {
        let request = SyncRequest {
            from_height,
            max_count,
        };
        self.call(|reply| Command::RequestBlocks {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Answer the inbound sync request `id` with `data` (at most
    /// [`P2pHandle::max_response_bytes`]; a larger answer is refused here and the request
    /// stays open, so the host can answer again with fewer blocks).
    pub async fn respond(&self, id: InboundSyncId, data: Vec<u8>) -> Result<()> {
        if data.len() > self.max_response_bytes {
            return Err(P2pError::ResponseTooLarge {
                len_bytes: data.len(),
                max_bytes: self.max_response_bytes,
            });
        }
        self.call(|reply| Command::Respond { id, data, reply })
            .await?
    }

    /// The connected peers with their scores and topics, sorted by peer id.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>> {
        self.call(|reply| Command::Peers { reply }).await
    }

    /// The gossip score this node gives `peer` (0 for a peer it knows nothing about).
    pub async fn peer_score(&self, peer: PeerId) -> Result<f64> {
        self.call(|reply| Command::PeerScore { peer, reply }).await
    }

    /// Dial an address (optionally ending in `/p2p/<peer id>`).
    pub async fn dial(&self, address: Multiaddr) -> Result<()> {
        self.call(|reply| Command::Dial { address, reply }).await?
    }

    /// Disconnect `peer` and refuse its connections for the configured ban duration (for
    /// example after it served blocks that fail verification).
    pub async fn ban_peer(&self, peer: PeerId) -> Result<()> {
        self.call(|reply| Command::Ban { peer, reply }).await
    }

    /// Stop the network task and close every connection; returns once they are closed.
    pub async fn shutdown(&self) -> Result<()> {
        self.call(|reply| Command::Shutdown { reply }).await
    }
}
