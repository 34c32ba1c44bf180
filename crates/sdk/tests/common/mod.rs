//! An in-process devnet for the SDK tests: a `LocalChain` producing blocks on a short
//! interval, served by the real API router on 127.0.0.1 (port 0), and funded trader keys.
#![allow(dead_code)]

pub mod proxy;

use dex_api::{
    ApiConfig, BlockProducer, LocalChain, LocalChainConfig, Quota, ServerHandle, demo_genesis,
    spawn_server,
};
use dex_sdk::{Client, ClientConfig, TraderKey};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Chain id of the test devnet.
pub const CHAIN_ID: u64 = 77;

pub struct Devnet {
    pub chain: Arc<LocalChain>,
    pub server: ServerHandle,
    pub keys: Vec<TraderKey>,
    _producer: BlockProducer,
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
        let genesis = demo_genesis(CHAIN_ID, now - 1_000, &accounts);
        let chain = Arc::new(LocalChain::new(&genesis, LocalChainConfig::default()).unwrap());
        let producer = chain.spawn_producer(Duration::from_millis(15), Duration::from_millis(100));
        let server = spawn_server(chain.clone(), config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Devnet {
            chain,
            server,
            keys,
            _producer: producer,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
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
