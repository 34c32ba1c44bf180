//! Errors of the network layer's handle.

use crate::config::ConfigError;
use crate::topic::Topic;

/// Why a call on [`crate::P2pHandle`] or [`crate::spawn`] failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum P2pError {
    /// The configuration is unusable.
    #[error("invalid network configuration: {0}")]
    Config(#[from] ConfigError),
    /// The transport or a protocol could not be set up.
    #[error("could not set up the network: {0}")]
    Setup(String),
    /// The listen address could not be bound.
    #[error("could not listen on {address}: {reason}")]
    Listen {
        /// The configured address.
        address: String,
        /// What the operating system or transport said.
        reason: String,
    },
    /// The network task has stopped (shut down, or the runtime is going away).
    #[error("the network task has stopped")]
    Stopped,
    /// The payload is larger than the topic allows; nothing was sent.
    #[error("a {topic} message of {len_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    MessageTooLarge {
        /// The topic.
        topic: Topic,
        /// The payload size.
        len_bytes: usize,
        /// The topic's limit.
        max_bytes: usize,
    },
    /// This node has already seen or published this exact payload recently.
    #[error("the message was already published or received")]
    Duplicate,
    /// No connected peer subscribes to the topic; the message was not sent (and is not
    /// remembered, so publishing it again later works).
    #[error("no connected peer subscribes to {0}")]
    NoPeers(Topic),
    /// Every peer's send queue was full; the message was not sent.
    #[error("the send queues of all {peers} peers are full")]
    QueuesFull {
        /// Peers tried.
        peers: usize,
    },
    /// Publishing failed for another reason.
    #[error("publishing failed: {0}")]
    Publish(String),
    /// The response is larger than the configured sync response limit.
    #[error("a sync response of {len_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    ResponseTooLarge {
        /// The response size.
        len_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// Too many of this node's sync requests are in flight.
    #[error("{max} sync requests are already in flight")]
    TooManyOutstandingRequests {
        /// The limit.
        max: usize,
    },
    /// The inbound sync request was already answered, timed out, or never existed.
    #[error("no inbound sync request with this id is waiting")]
    UnknownSyncRequest,
    /// The requester is gone (disconnected or timed out) before the answer was sent.
    #[error("the requesting peer is no longer waiting")]
    RequesterGone,
    /// A dial could not be started.
    #[error("could not dial: {0}")]
    Dial(String),
}

/// Results of the network layer.
pub type Result<T, E = P2pError> = std::result::Result<T, E>;
