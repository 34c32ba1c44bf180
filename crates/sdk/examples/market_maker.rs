//! A market maker: quotes both sides of a market around a reference price with a spread and
//! size, keeps its inventory within limits, re-quotes with atomic batches (or a modify),
//! keeps the dead-man switch armed, and prints its PnL.
//!
//! ```text
//! cargo run -p dex-sdk --example market_maker -- --url http://127.0.0.1:8080 \
//!     --key mm.json --market 1 --reference-price 100 --spread-bps 20 --size 0.05
//! ```

use clap::Parser;
use dex_sdk::bots::{MarketMaker, MarketMakerConfig};
use dex_sdk::{Client, ClientConfig, TraderKey};
use dex_types::MarketId;
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Quote both sides of a market")]
struct Args {
    /// The node's API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Key file of the quoting account (or of an agent approved for it).
    #[arg(long)]
    key: PathBuf,
    /// Market id.
    #[arg(long, default_value_t = 1)]
    market: u32,
    /// Price to quote around; without it, the book's mid.
    #[arg(long)]
    reference_price: Option<Decimal>,
    /// Bid-ask spread in basis points of the reference.
    #[arg(long, default_value_t = 20)]
    spread_bps: u32,
    /// Size of each quote, in base.
    #[arg(long, default_value = "0.01")]
    size: Decimal,
    /// Largest long or short position, in base.
    #[arg(long, default_value = "1")]
    max_inventory: Decimal,
    /// Pause between steps.
    #[arg(long, default_value_t = 1_000)]
    interval_ms: u64,
    /// The dead-man switch fires this long after the last step that re-armed it.
    #[arg(long, default_value_t = 10)]
    dead_man_secs: u64,
    /// Stop after this many steps (default: run until Ctrl-C).
    #[arg(long)]
    iterations: Option<u64>,
    /// Print one JSON object per step.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let key = TraderKey::load(&args.key)?;
    let client = Client::connect(&args.url, Some(key), ClientConfig::default()).await?;
    let mut bot = MarketMaker::new(
        client,
        MarketMakerConfig {
            market: MarketId(args.market),
            reference_price: args.reference_price,
            spread_bps: args.spread_bps,
            size: args.size,
            max_inventory: args.max_inventory,
            dead_man_after: Duration::from_secs(args.dead_man_secs),
        },
    )
    .await?;
    let mut step = 0u64;
    while args.iterations.is_none_or(|n| step < n) {
        step += 1;
        match bot.step().await {
            Ok(report) if args.json => println!(
                "{}",
                serde_json::json!({
                    "step": step, "reference": report.reference.to_string(),
                    "bid": report.bid.map(|p| p.to_string()), "ask": report.ask.map(|p| p.to_string()),
                    "inventory": report.inventory.to_string(), "pnl": report.pnl.to_string(),
                    "requoted": report.requoted, "refused": report.refused,
                })
            ),
            Ok(report) => println!(
                "step {step}: ref {} bid {} ask {} inventory {} pnl {}{}",
                report.reference,
                report.bid.map_or("-".into(), |p| p.to_string()),
                report.ask.map_or("-".into(), |p| p.to_string()),
                report.inventory,
                report.pnl.round_dp(6),
                report
                    .refused
                    .map_or(String::new(), |c| format!(" (re-quote refused: {c})")),
            ),
            // A failed step (node busy, link down) is retried at the next; the dead-man
            // switch pulls the quotes if the bot stays cut off.
            Err(error) => eprintln!("step {step} failed: {error}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(args.interval_ms)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    bot.shutdown().await?;
    println!("quotes cancelled, dead-man switch disarmed");
    Ok(())
}
