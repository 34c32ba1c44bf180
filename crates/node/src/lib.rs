//! The validator node: the shell of IO around the chain logic.
//!
//! - [`driver`]: the consensus thread that owns the [`dex_chain::Replica`] (consensus core,
//!   ledger, mempool, RocksDB store), fed by bounded channels;
//! - [`network`]: libp2p gossip in and out, with every message checked before it is
//!   relayed or reaches consensus, and block sync;
//! - [`gossip`]: transaction gossip in batches (wire format and flush policy);
//! - [`backend`]: the API's [`dex_api::ApiBackend`] over the running node;
//! - [`metrics`]: Prometheus metrics at `/metrics`;
//! - [`spec`], [`config`], [`keys`]: the chain spec, the node configuration and the
//!   validator key, as files;
//! - [`devnet`]: writing a local chain (`dexd init`) for `dexd devnet`.
//!
//! The `dexd` binary (`src/bin/dexd.rs`) is the operator's command line.

pub mod backend;
pub mod config;
pub mod devnet;
pub(crate) mod driver;
pub(crate) mod dropped;
pub mod error;
pub mod files;
pub mod gossip;
pub(crate) mod gossip_check;
pub mod keys;
pub mod memory;
pub mod metrics;
pub(crate) mod network;
pub mod node;
pub mod spec;
#[cfg(test)]
mod testkit;
pub mod timed_store;
pub(crate) mod verify;

pub use backend::NodeBackend;
pub use config::{NodeConfig, RateQuota, SettingError};
pub use error::NodeError;
pub use keys::ValidatorKey;
pub use node::{RunningNode, StartInfo, replica_config};
pub use spec::{ChainSpec, ConsensusParams, ValidatorSpec};

/// Bytes before a consensus message on the gossip topic: a re-send counter.
pub const CONSENSUS_RESEND_PREFIX_BYTES: usize = 8;

/// The gossip payload of an encoded consensus message: a counter, then the message.
///
/// Gossip message ids are content hashes, so a validator re-sending its own vote (which
/// Algorithm 1 needs: a peer that missed it, or restarted, must eventually get it) would
/// be refused by gossipsub as a duplicate forever. Each send carries a new counter, so a
/// re-send is a new gossip message, while copies of one send relayed by many peers stay
/// one. The counter is not signed and means nothing to consensus.
pub fn consensus_payload(message: &[u8], resend: u64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(CONSENSUS_RESEND_PREFIX_BYTES + message.len());
    payload.extend_from_slice(&resend.to_le_bytes());
    payload.extend_from_slice(message);
    payload
}
