//! The node's errors: each names what went wrong and, where there is one, what the operator
//! can do about it.

use std::path::PathBuf;

/// Why the node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A file could not be read, written or understood.
    #[error("{path}: {detail}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The node configuration is unusable.
    #[error("node configuration: {0}")]
    Config(String),
    /// A setting of `node.json` is out of its range.
    #[error("node configuration: {0}")]
    Setting(#[from] crate::config::SettingError),
    /// The database could not be opened or read.
    #[error("storage: {0}")]
    Storage(#[from] dex_storage::StorageError),
    /// Start-up from the database failed; the message names the remedy.
    #[error("recovery: {0}")]
    Recovery(#[from] dex_chain::RecoveryError),
    /// The chain logic stopped (a store write failed, a certified block did not execute).
    /// The node stops rather than diverge; its database holds every committed block.
    #[error("the chain stopped: {0}")]
    Chain(#[from] dex_chain::ChainError),
    /// The network layer could not start.
    #[error("p2p: {0}")]
    P2p(#[from] dex_p2p::P2pError),
    /// The p2p configuration is invalid.
    #[error("p2p configuration: {0}")]
    P2pConfig(#[from] dex_p2p::ConfigError),
    /// The API could not bind its address.
    #[error("api: could not listen on {addr}: {source}")]
    ApiBind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A thread of the node could not be started.
    #[error("could not start a thread: {0}")]
    Thread(std::io::Error),
}
