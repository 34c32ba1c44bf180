//! A one-machine exchange to try the SDK, CLI and bots on: a `LocalChain` (one validator,
//! no consensus) with the demo market, served by the real API. It writes a funded key file
//! per trader into `--keys-dir` (existing key files there are reused).
//!
//! ```text
//! cargo run -p dex-sdk --example local_node -- --listen 127.0.0.1:8080 --keys-dir /tmp/dex-keys
//! ```

use clap::Parser;
use dex_api::{ApiConfig, LocalChain, LocalChainConfig, demo_genesis, spawn_server};
use dex_sdk::TraderKey;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser, Debug)]
#[command(about = "Run a single-validator exchange in this process")]
struct Args {
    /// Address to serve the API on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Where the traders' key files are read or written (trader-1.json, ...).
    #[arg(long)]
    keys_dir: PathBuf,
    /// Funded traders.
    #[arg(long, default_value_t = 3)]
    traders: u32,
    /// Block interval while transactions wait.
    #[arg(long, default_value_t = 50)]
    block_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.keys_dir)?;
    let mut keys = Vec::new();
    for i in 1..=args.traders {
        let path = args.keys_dir.join(format!("trader-{i}.json"));
        let key = if path.exists() {
            TraderKey::load(&path)?
        } else {
            let key = TraderKey::generate()?;
            key.save(&path)?;
            key
        };
        println!("trader {i}: {} ({})", key.account(), path.display());
        keys.push(key.account());
    }
    let now = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let chain = Arc::new(LocalChain::new(
        &demo_genesis(1, now, &keys),
        LocalChainConfig::default(),
    )?);
    let _producer =
        chain.spawn_producer(Duration::from_millis(args.block_ms), Duration::from_secs(1));
    let server = spawn_server(chain, ApiConfig::default(), args.listen).await?;
    println!("serving the API at {} (Ctrl-C to stop)", server.url());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await?;
    Ok(())
}
