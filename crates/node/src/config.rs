//! The node configuration file (`node.json`): what differs between the nodes of one chain
//! (key, directories, listen addresses, local bounds). Relative paths are taken relative
//! to the file's directory, so a node's home directory can move as a whole.
//!
//! Settings added after the first release have defaults equal to the behaviour before
//! them, so an older `node.json` keeps meaning what it meant.

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
    /// Threads of the signature-verification pool, 1 to [`VERIFY_THREADS_MAX`]; absent:
    /// one per core. Fewer leaves cores to other work on a shared machine (at the price of
    /// throughput: every transaction's signature is checked on this pool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_threads: Option<usize>,
    /// Requests the API accepts per client IP address (every route; a submission counts
    /// unless it only cancels). Several clients behind one address share it.
    #[serde(default = "default_api_requests_per_ip")]
    pub api_requests_per_ip: RateQuota,
    /// Submissions the API accepts per account (cancels and dead-man switch refreshes are
    /// never limited).
    #[serde(default = "default_api_submissions_per_account")]
    pub api_submissions_per_account: RateQuota,
}

/// Most threads `verify_threads` may ask for: far above any core count a validator runs
/// on, low enough that a typo cannot exhaust the process's threads.
pub const VERIFY_THREADS_MAX: usize = 1_024;

/// A rate limit: `per_second` sustained, `burst` at once (a token bucket).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateQuota {
    /// Sustained rate, per second; positive.
    pub per_second: u32,
    /// Requests at once from a full bucket; positive.
    pub burst: u32,
}

impl From<RateQuota> for dex_api::Quota {
    fn from(quota: RateQuota) -> dex_api::Quota {
        dex_api::Quota {
            per_second: quota.per_second,
            burst: quota.burst,
        }
    }
}

impl From<dex_api::Quota> for RateQuota {
    fn from(quota: dex_api::Quota) -> RateQuota {
        RateQuota {
            per_second: quota.per_second,
            burst: quota.burst,
        }
    }
}

/// A setting of `node.json` that the node cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// `mempool_capacity` is zero: the node could admit no transaction.
    #[error("mempool_capacity must be positive")]
    MempoolCapacity,
    /// `verify_threads` is zero (which would verify nothing) or above
    /// [`VERIFY_THREADS_MAX`].
    #[error(
        "verify_threads must be between 1 and {max}, not {threads} (leave it out for one thread per core)"
    )]
    VerifyThreads {
        /// The value given.
        threads: usize,
        /// [`VERIFY_THREADS_MAX`].
        max: usize,
    },
    /// A rate limit that never refills or admits nothing at once would refuse every
    /// client once its first requests are spent.
    #[error(
        "{setting}: per_second and burst must both be positive (given {per_second} and {burst})"
    )]
    Quota {
        /// The setting's name.
        setting: &'static str,
        /// The rate given.
        per_second: u32,
        /// The burst given.
        burst: u32,
    },
}

fn default_mempool_capacity() -> usize {
    50_000
}

fn default_api_requests_per_ip() -> RateQuota {
    dex_api::ApiConfig::default().per_ip.into()
}

fn default_api_submissions_per_account() -> RateQuota {
    dex_api::ApiConfig::default().per_account.into()
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
        config.validate()?;
        Ok(config)
    }

    /// Check every setting is usable ([`NodeConfig::load`] and the node's start call it).
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.mempool_capacity == 0 {
            return Err(SettingError::MempoolCapacity);
        }
        if let Some(threads) = self.verify_threads
            && !(1..=VERIFY_THREADS_MAX).contains(&threads)
        {
            return Err(SettingError::VerifyThreads {
                threads,
                max: VERIFY_THREADS_MAX,
            });
        }
        for (setting, quota) in [
            ("api_requests_per_ip", self.api_requests_per_ip),
            (
                "api_submissions_per_account",
                self.api_submissions_per_account,
            ),
        ] {
            if quota.per_second == 0 || quota.burst == 0 {
                return Err(SettingError::Quota {
                    setting,
                    per_second: quota.per_second,
                    burst: quota.burst,
                });
            }
        }
        Ok(())
    }

    /// The API limits these settings give (the rest as [`dex_api::ApiConfig::default`]).
    pub fn api_config(&self) -> dex_api::ApiConfig {
        dex_api::ApiConfig {
            per_ip: self.api_requests_per_ip.into(),
            per_account: self.api_submissions_per_account.into(),
            ..dex_api::ApiConfig::default()
        }
    }

    /// A configuration with every optional setting at its default.
    pub fn new(
        name: impl Into<String>,
        chain_spec: PathBuf,
        key_file: Option<PathBuf>,
        data_dir: PathBuf,
        p2p_listen: impl Into<String>,
        api_listen: SocketAddr,
    ) -> NodeConfig {
        NodeConfig {
            name: name.into(),
            chain_spec,
            key_file,
            data_dir,
            p2p_listen: p2p_listen.into(),
            bootstrap_peers: Vec::new(),
            api_listen,
            mempool_capacity: default_mempool_capacity(),
            snapshot_interval_blocks: default_snapshot_interval(),
            verify_threads: None,
            api_requests_per_ip: default_api_requests_per_ip(),
            api_submissions_per_account: default_api_submissions_per_account(),
        }
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

    fn config() -> NodeConfig {
        NodeConfig::new(
            "v0",
            "genesis.json".into(),
            Some("validator.key".into()),
            "data".into(),
            "127.0.0.1:0",
            "127.0.0.1:0".parse().unwrap(),
        )
    }

    #[test]
    fn relative_paths_follow_the_file_and_unknown_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig {
            mempool_capacity: 10,
            snapshot_interval_blocks: 5,
            ..config()
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

    #[test]
    fn a_file_without_the_later_settings_keeps_the_earlier_behaviour() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.json");
        let text = r#"{"name": "v0", "chain_spec": "genesis.json", "data_dir": "data",
            "p2p_listen": "127.0.0.1:0", "api_listen": "127.0.0.1:0"}"#;
        std::fs::write(&path, text).unwrap();
        let loaded = NodeConfig::load(&path).unwrap();
        assert_eq!(
            loaded.verify_threads, None,
            "one verification thread per core"
        );
        assert_eq!(loaded.mempool_capacity, 50_000);
        // The API's limits as they were hard-coded: 200/s per address, 50/s per account.
        let api = loaded.api_config();
        let default = dex_api::ApiConfig::default();
        assert_eq!(api.per_ip, default.per_ip);
        assert_eq!(api.per_account, default.per_account);
        assert_eq!(
            loaded.api_requests_per_ip,
            RateQuota {
                per_second: 200,
                burst: 400
            }
        );
        assert_eq!(
            loaded.api_submissions_per_account,
            RateQuota {
                per_second: 50,
                burst: 100
            }
        );
    }

    #[test]
    fn settings_round_trip_through_the_file_and_reach_the_api() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.json");
        let config = NodeConfig {
            verify_threads: Some(3),
            api_requests_per_ip: RateQuota {
                per_second: 1_000_000,
                burst: 2_000_000,
            },
            api_submissions_per_account: RateQuota {
                per_second: 7,
                burst: 9,
            },
            ..config()
        };
        config.save(&path).unwrap();
        let loaded = NodeConfig::load(&path).unwrap();
        assert_eq!(loaded.verify_threads, Some(3));
        assert_eq!(loaded.api_requests_per_ip, config.api_requests_per_ip);
        let api = loaded.api_config();
        assert_eq!(api.per_ip.per_second, 1_000_000);
        assert_eq!(api.per_ip.burst, 2_000_000);
        assert_eq!(api.per_account.per_second, 7);
        assert_eq!(api.per_account.burst, 9);
    }

    #[test]
    fn unusable_settings_are_refused_with_their_name() {
        let zero = RateQuota {
            per_second: 0,
            burst: 10,
        };
        let cases = [
            (
                NodeConfig {
                    mempool_capacity: 0,
                    ..config()
                },
                SettingError::MempoolCapacity,
            ),
            (
                NodeConfig {
                    verify_threads: Some(0),
                    ..config()
                },
                SettingError::VerifyThreads {
                    threads: 0,
                    max: VERIFY_THREADS_MAX,
                },
            ),
            (
                NodeConfig {
                    verify_threads: Some(VERIFY_THREADS_MAX + 1),
                    ..config()
                },
                SettingError::VerifyThreads {
                    threads: VERIFY_THREADS_MAX + 1,
                    max: VERIFY_THREADS_MAX,
                },
            ),
            (
                NodeConfig {
                    api_requests_per_ip: zero,
                    ..config()
                },
                SettingError::Quota {
                    setting: "api_requests_per_ip",
                    per_second: 0,
                    burst: 10,
                },
            ),
            (
                NodeConfig {
                    api_submissions_per_account: RateQuota {
                        per_second: 5,
                        burst: 0,
                    },
                    ..config()
                },
                SettingError::Quota {
                    setting: "api_submissions_per_account",
                    per_second: 5,
                    burst: 0,
                },
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.json");
        for (config, expected) in cases {
            assert_eq!(config.validate(), Err(expected.clone()));
            config.save(&path).unwrap();
            match NodeConfig::load(&path) {
                Err(NodeError::Setting(error)) => assert_eq!(error, expected),
                other => panic!("{expected:?} expected, got {other:?}"),
            }
        }
        assert_eq!(config().validate(), Ok(()));
        assert_eq!(
            NodeConfig {
                verify_threads: Some(VERIFY_THREADS_MAX),
                ..config()
            }
            .validate(),
            Ok(())
        );
    }
}
