//! Carry a validator node's gossip and block sync over libp2p.
//!
//! This crate is the node's network shell. It moves opaque bytes and knows nothing about
//! blocks, votes or transactions: the node (the *host*) decodes, verifies and decides, and
//! tells the network what to forward and whom to penalise.
//!
//! # Shape
//!
//! [`spawn`] starts one tokio task that owns the libp2p `Swarm` (TCP + noise + yamux, with
//! identify, ping, gossipsub, request-response, a block list and a connection gate) and
//! returns a [`P2pHandle`] (commands, over a bounded channel) and a bounded receiver of
//! [`P2pEvent`]s. The task is an actor in the sense of the project's style: it only moves
//! messages and does IO; the rules live in small pieces tested on their own (the sync wire
//! format, the request quota, the connection counts).
//!
//! # Gossip
//!
//! Two topics, [`Topic::Transactions`] and [`Topic::Consensus`], namespaced by the network
//! id. Message ids are BLAKE3 of the payload ([`GossipId`]), and messages carry no libp2p
//! author, sequence number or signature (gossipsub's anonymous mode): the payloads are signed
//! by their makers, and without per-publisher fields a transaction relayed or re-published by
//! many nodes is one message, dropped as a duplicate after its first copy.
//!
//! Validation is on. Each received message within its topic's size limit reaches the host as
//! [`P2pEvent::Gossip`]; nothing is forwarded until the host calls
//! [`P2pHandle::report_validation`] with a [`Verdict`]. `Reject` penalises the sender through
//! gossipsub's peer score (the invalid-message term, weighted per topic); peers below the
//! graylist threshold are ignored, and peers below the ban threshold are disconnected and
//! banned for a while. Size limits are enforced twice: gossipsub drops anything beyond the
//! limit plus a small envelope allowance while decoding the frame, and the task rejects
//! (with penalty) any payload over the exact limit before the host sees it.
//!
//! # Block sync
//!
//! A request-response protocol with its own length-prefixed codec ([`SyncRequest`] →
//! opaque bytes). Every frame's length is checked against a cap before allocation. Inbound
//! requests pass a per-peer token bucket ([`SyncConfig::quota_burst`],
//! [`SyncConfig::quota_refill_interval`]) and a bound on requests waiting for the host
//! before the host sees them; refusals travel back as a typed [`Refusal`].
//!
//! # Bounds and backpressure
//!
//! Every queue is bounded. Host → network: the command channel (callers wait for room).
//! Network → host: the event channel; the task never waits on the host, so when the channel
//! is full, gossip messages are dropped and reported to gossipsub as ignored, and inbound
//! sync requests are refused as busy (both counted in [`MetricsSnapshot`]), while peer and
//! sync-outcome events wait in a backlog of the same capacity. Connections are bounded in
//! total (validators have reserved room), per peer, and while pending. Quota and ban tables
//! are bounded too.
//!
//! # Identity
//!
//! A node's network key is an ed25519 key given by its 32-byte seed, so a validator can use
//! its validator key. [`peer_id_from_ed25519`] and [`ed25519_from_peer_id`] map between peer
//! ids and public keys.
//!
//! # Feature flags
//!
//! None.

mod codec;
mod config;
mod error;
mod event;
mod gate;
mod handle;
mod identity;
mod metrics;
mod quota;
mod service;
mod topic;

pub use codec::{FrameError, Refusal, SyncRequest};
pub use config::{
    ConfigError, ConnectionLimits, GOSSIP_MESSAGE_BYTES_MAX, GOSSIP_MESSAGE_BYTES_MIN,
    GossipConfig, P2pConfig, SYNC_RESPONSE_BYTES_MAX, ScoringConfig, SyncConfig, parse_addr,
    peer_id_of_addr,
};
pub use error::{P2pError, Result};
pub use event::{
    GossipMessage, InboundSyncId, P2pEvent, PeerInfo, SyncError, SyncRequestId, ValidationTicket,
    Verdict,
};
pub use gate::LimitExceeded;
pub use handle::P2pHandle;
pub use identity::{
    InvalidPublicKey, ed25519_from_peer_id, keypair_from_seed, peer_id_from_ed25519,
    peer_id_from_seed,
};
pub use libp2p::{Multiaddr, PeerId};
pub use metrics::{MetricsSnapshot, TopicMetrics};
pub use service::spawn;
pub use topic::{GossipId, Topic};
