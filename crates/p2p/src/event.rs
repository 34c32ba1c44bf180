//! What the network tells the host, and the ids the host uses to answer.

use crate::codec::{FrameError, Refusal, SyncRequest};
use crate::topic::{GossipId, Topic};
use libp2p::request_response::{InboundRequestId, OutboundRequestId};
use libp2p::{Multiaddr, PeerId};
use std::fmt;

/// An event from the network task, read from the receiver [`crate::spawn`] returns.
#[derive(Debug)]
pub enum P2pEvent {
    /// The node listens on a new address (the first one is also in
    /// [`crate::P2pHandle::listen_addrs`]).
    Listening {
        /// The bound address (port 0 resolved to the real port).
        address: Multiaddr,
    },
    /// The first connection to a peer was established.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Whether the peer is one of the configured validators.
        is_validator: bool,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A gossip message to validate. It is not forwarded until the host calls
    /// [`crate::P2pHandle::report_validation`] with [`GossipMessage::ticket`]; a message the
    /// host never reports is dropped from the cache after a few heartbeats.
    Gossip(GossipMessage),
    /// A peer asks this node for blocks. Answer with [`crate::P2pHandle::respond`] before
    /// the sync request timeout; an unanswered request times out on both sides.
    SyncRequested {
        /// The id to answer with.
        id: InboundSyncId,
        /// The requesting peer.
        peer: PeerId,
        /// What it asks for.
        request: SyncRequest,
    },
    /// A peer answered this node's [`crate::P2pHandle::request_blocks`].
    SyncResponse {
        /// The id `request_blocks` returned.
        id: SyncRequestId,
        /// The peer that answered.
        peer: PeerId,
        /// Its bytes, at most the configured response limit. Untrusted: the host decodes and
        /// verifies every block and certificate.
        data: Vec<u8>,
    },
    /// A request of this node failed.
    SyncFailed {
        /// The id `request_blocks` returned.
        id: SyncRequestId,
        /// The peer asked.
        peer: PeerId,
        /// Why.
        error: SyncError,
    },
}

/// A received gossip message, within its topic's size limit, not yet validated.
#[derive(Clone, PartialEq, Eq)]
pub struct GossipMessage {
    /// Its content hash.
    pub id: GossipId,
    /// The topic it arrived on.
    pub topic: Topic,
    /// The peer that forwarded it to us (not necessarily its author; messages carry no
    /// author, the payload's own signatures say who made it).
    pub source: PeerId,
    /// The payload.
    pub data: Vec<u8>,
}

impl GossipMessage {
    /// What [`crate::P2pHandle::report_validation`] needs, detached from the payload so the
    /// host can move the data into its decoder.
    pub fn ticket(&self) -> ValidationTicket {
        ValidationTicket {
            id: self.id,
            topic: self.topic,
            source: self.source,
        }
    }
}

impl fmt::Debug for GossipMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GossipMessage")
            .field("id", &self.id)
            .field("topic", &self.topic)
            .field("source", &self.source)
            .field("data_bytes", &self.data.len())
            .finish()
    }
}

/// Names a received gossip message when reporting its validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValidationTicket {
    /// The message id.
    pub id: GossipId,
    /// The topic (for metrics).
    pub topic: Topic,
    /// The peer it came from (penalised on [`Verdict::Reject`]).
    pub source: PeerId,
}

/// The host's decision on a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Valid: forward it to the mesh.
    Accept,
    /// Provably invalid (undecodable, bad signature, unknown validator, impossible height):
    /// drop it and penalise every peer that sent it.
    Reject,
    /// Not useful but not the sender's fault (stale, already committed, nonce already used,
    /// mempool full): drop it without penalty.
    Ignore,
}

/// Names an inbound sync request the host must answer. Only the network task creates these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InboundSyncId(pub(crate) InboundRequestId);

impl fmt::Display for InboundSyncId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in-{}", self.0)
    }
}

/// Names a sync request this node sent. Only the network task creates these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SyncRequestId(pub(crate) OutboundRequestId);

impl fmt::Display for SyncRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "out-{}", self.0)
    }
}

/// Why a sync request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// No response within the request timeout.
    #[error("the peer did not answer within the sync request timeout")]
    Timeout,
    /// The connection closed before the response arrived.
    #[error("the connection closed before the peer answered")]
    ConnectionClosed,
    /// The peer was not connected and could not be dialled.
    #[error("the peer could not be dialled")]
    DialFailure,
    /// The peer does not serve block sync for this network.
    #[error("the peer does not serve block sync for this network")]
    UnsupportedProtocol,
    /// The peer refused before its host saw the request.
    #[error("the peer refused the request: {0:?}")]
    Refused(Refusal),
    /// The response announced more bytes than this node accepts; nothing was allocated.
    #[error("the response of {len_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    ResponseTooLarge {
        /// The announced length (including one framing byte).
        len_bytes: u64,
        /// The limit (including one framing byte).
        max_bytes: u64,
    },
    /// The response broke the wire format.
    #[error("the response is malformed: {0}")]
    Malformed(FrameError),
    /// The stream failed.
    #[error("the sync stream failed: {0}")]
    Io(String),
}

/// A connected peer, for metrics and status pages.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// The peer.
    pub peer: PeerId,
    /// Whether it is one of the configured validators.
    pub is_validator: bool,
    /// The gossip score this node gives it.
    pub score: f64,
    /// The topics it subscribes to.
    pub topics: Vec<Topic>,
    /// The topics whose mesh (the peers this node forwards to) it is in.
    pub mesh: Vec<Topic>,
}
