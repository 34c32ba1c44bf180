//! A taker: sends immediate-or-cancel orders against the best price with bounded
//! slippage, choosing sides from a seeded generator, so a market has flow.
//!
//! ```text
//! cargo run -p dex-sdk --example taker -- --url http://127.0.0.1:8080 --key taker.json
//! ```

use clap::Parser;
use dex_sdk::bots::{Taker, TakerConfig};
use dex_sdk::{Client, ClientConfig, TraderKey};
use dex_types::MarketId;
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Take liquidity from a market")]
struct Args {
    /// The node's API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Key file of the trading account.
    #[arg(long)]
    key: PathBuf,
    /// Market id.
    #[arg(long, default_value_t = 1)]
    market: u32,
    /// Size of each order, in base.
    #[arg(long, default_value = "0.01")]
    size: Decimal,
    /// Worst price accepted beyond the best opposite price, in basis points.
    #[arg(long, default_value_t = 10)]
    slippage_bps: u32,
    /// Seed of the side choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pause between orders.
    #[arg(long, default_value_t = 1_500)]
    interval_ms: u64,
    /// Stop after this many orders (default: run until Ctrl-C).
    #[arg(long)]
    iterations: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let key = TraderKey::load(&args.key)?;
    let client = Client::connect(&args.url, Some(key), ClientConfig::default()).await?;
    let mut taker = Taker::new(
        client,
        TakerConfig {
            market: MarketId(args.market),
            size: args.size,
            max_slippage_bps: args.slippage_bps,
            seed: args.seed,
        },
    );
    let mut step = 0u64;
    while args.iterations.is_none_or(|n| step < n) {
        step += 1;
        match taker.step().await {
            Ok(report) => match (report.side, report.limit) {
                (Some(side), Some(limit)) => println!(
                    "order {step}: {side:?} {} up to {limit}: {}",
                    args.size,
                    if report.ok { "applied" } else { "refused" }
                ),
                _ => println!("order {step}: no liquidity on the chosen side"),
            },
            Err(error) => eprintln!("order {step} failed: {error}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(args.interval_ms)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}
