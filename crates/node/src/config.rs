//! The node configuration file (`node.json`): what differs between the nodes of one chain
//! (key, directories, listen addresses, local bounds). Relative paths are taken relative
//! to the file's directory, so a node's home directory can move as a whole.

use crate::error::NodeError;
use crate::files;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// See the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// A name for logs.
    pub name: String,
    /// The chain spec file.
    pub chain_spec: PathBuf,
    /// The validator key file; absent for a full node that follows the chain and serves
    /// clients without voting.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The RocksDB directory.
    pub data_dir: PathBuf,
    /// Where to listen for peers (`ip:port` or a multiaddr).
    pub p2p_listen: String,
    /// Extra peers to dial besides the validators of the spec (`ip:port/p2p` multiaddrs).
    #[serde(default)]
    pub bootstrap_peers: Vec<String>,
    /// Where to serve the HTTP/WebSocket API and `/metrics`.
    pub api_listen: SocketAddr,
    /// Most pending transactions in the mempool's normal lane.
    #[serde(default = "default_mempool_capacity")]
    pub mempool_capacity: usize,
    /// Take a state snapshot every this many blocks.
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval_blocks: u64,
}

fn default_mempool_capacity() -> usize {
    50_000
}

fn default_snapshot_interval() -> u64 {
    1_000
}

/// Largest configuration file read.
const CONFIG_FILE_BYTES_MAX: u64 = 1 << 20;

impl NodeConfig {
    /// Read a configuration file and resolve its relative paths against its directory.
    pub fn load(path: &Path) -> Result<NodeConfig, NodeError> {
        let bytes = files::read_bounded(path, CONFIG_FILE_BYTES_MAX)?;
        let mut config: NodeConfig =
            serde_json::from_slice(&bytes).map_err(|e| NodeError::File {
                path: path.to_owned(),
                detail: format!("not a valid node configuration: {e}"),
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.chain_spec = base.join(&config.chain_spec);
        config.data_dir = base.join(&config.data_dir);
        config.key_file = config.key_file.map(|key| base.join(key));
        if config.mempool_capacity == 0 {
            return Err(NodeError::Config(
                "mempool_capacity must be positive".into(),
            ));
        }
        Ok(config)
    }

    /// Write the configuration as pretty JSON (paths as given).
    pub fn save(&self, path: &Path) -> Result<(), NodeError> {
        let text = serde_json::to_string_pretty(self).expect("bug: a node config serialises");
        files::write_file(path, text.as_bytes(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_file_and_unknown_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig {
            name: "v0".into(),
            chain_spec: "genesis.json".into(),
            key_file: Some("validator.key".into()),
            data_dir: "data".into(),
            p2p_listen: "127.0.0.1:0".into(),
            bootstrap_peers: Vec::new(),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            mempool_capacity: 10,
            snapshot_interval_blocks: 5,
        };
        let path = dir.path().join("node.json");
        config.save(&path).unwrap();
        let loaded = NodeConfig::load(&path).unwrap();
        assert_eq!(loaded.data_dir, dir.path().join("data"));
        assert_eq!(loaded.key_file, Some(dir.path().join("validator.key")));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen('{', "{\"surprise\": 1,", 1)).unwrap();
        assert!(NodeConfig::load(&path).is_err());
    }
}
