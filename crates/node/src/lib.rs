//! The validator node: the shell of IO around the chain logic.
//!
//! - [`driver`]: the consensus thread that owns the [`dex_chain::Replica`] (consensus core,
//!   ledger, mempool, RocksDB store), fed by bounded channels;
//! - [`network`]: libp2p gossip in and out, with every message checked before it is
//!   relayed or reaches consensus, and block sync;
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
pub mod error;
pub mod files;
pub mod keys;
pub mod metrics;
pub(crate) mod network;
pub mod node;
pub mod spec;
pub(crate) mod verify;

pub use backend::NodeBackend;
pub use config::NodeConfig;
pub use error::NodeError;
pub use keys::ValidatorKey;
pub use node::{RunningNode, StartInfo, replica_config};
pub use spec::{ChainSpec, ConsensusParams, ValidatorSpec};
