//! An in-process devnet for the SDK tests: a real validator node (`dex-node`: consensus,
//! ledger, RocksDB in a temporary directory, libp2p on 127.0.0.1) with the demo market,
//! serving the real API on 127.0.0.1 (port 0), and funded trader keys. It is a
//! single-validator chain, so every block still goes through a consensus round, a synced
//! commit and the API's read model, exactly as on a multi-validator network.
#![allow(dead_code)]

pub mod proxy;

use dex_api::{ApiConfig, FeedHub, Quota, demo_genesis};
use dex_node::{ChainSpec, ConsensusParams, NodeConfig, RunningNode, ValidatorKey, ValidatorSpec};
use dex_sdk::{Client, ClientConfig, TraderKey};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Chain id of the test devnet.
pub const CHAIN_ID: u64 = 77;

pub struct Devnet {
    pub node: RunningNode,
    pub keys: Vec<TraderKey>,
    _dir: tempfile::TempDir,
}

/// Limits loose enough for tests that send bursts.
pub fn relaxed() -> ApiConfig {
    ApiConfig {
        per_ip: Quota {
            per_second: 10_000,
            burst: 10_000,
        },
        per_account: Quota {
            per_second: 10_000,
            burst: 10_000,
        },
        ..ApiConfig::default()
    }
}

impl Devnet {
    pub async fn start(traders: u8) -> Devnet {
        Devnet::start_with(traders, relaxed()).await
    }

    pub async fn start_with(traders: u8, config: ApiConfig) -> Devnet {
        let keys: Vec<TraderKey> = (1..=traders)
            .map(|i| TraderKey::from_seed([i; 32]))
            .collect();
        let accounts: Vec<_> = keys.iter().map(TraderKey::account).collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let dir = tempfile::tempdir().unwrap();
        let validator = ValidatorKey::from_seed([0x11; 32]);
        validator.save(&dir.path().join("validator.key")).unwrap();
        let spec = ChainSpec {
            genesis: demo_genesis(CHAIN_ID, now - 1_000, &accounts),
            validators: vec![ValidatorSpec {
                name: "v0".into(),
                public_key: validator.public_key(),
                voting_power: 1,
                // A lone validator dials no one; the address only has to be valid.
                p2p_address: "127.0.0.1:1".into(),
            }],
            consensus: ConsensusParams {
                propose_batch_ms: 5,
                ..ConsensusParams::default()
            },
        };
        spec.save(&dir.path().join("genesis.json")).unwrap();
        let node_config = NodeConfig {
            name: "sdk-test".into(),
            chain_spec: dir.path().join("genesis.json"),
            key_file: Some(dir.path().join("validator.key")),
            data_dir: dir.path().join("data"),
            p2p_listen: "127.0.0.1:0".into(),
            bootstrap_peers: Vec::new(),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            mempool_capacity: 10_000,
            snapshot_interval_blocks: 100,
            verify_threads: None,
            // The API below is started with `config`; the node's copies say the same.
            api_requests_per_ip: config.per_ip.into(),
            api_submissions_per_account: config.per_account.into(),
        };
        let (node, _) = RunningNode::start_with_api(node_config, config)
            .await
            .unwrap();
        Devnet {
            node,
            keys,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        self.node.api_url()
    }

    /// The node's read model (what the API serves).
    pub fn hub(&self) -> &FeedHub {
        self.node.hub()
    }

    /// Read the node's committed ledger.
    pub async fn with_ledger<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dex_state::Ledger) -> T + Send + 'static,
    ) -> T {
        self.node.with_ledger(read).await.unwrap()
    }

    pub async fn client(&self, trader: usize) -> Client {
        Client::connect(
            &self.url(),
            Some(self.keys[trader].clone()),
            ClientConfig::default(),
        )
        .await
        .unwrap()
    }
}

/// Poll `check` every 20 ms until it gives `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn d(text: &str) -> rust_decimal::Decimal {
    text.parse().unwrap()
}
