//! `dex`: the trader CLI. Keys, balances, orders, the book as a ladder, live fills and book
//! updates, and fill-proof verification. Human-readable by default, `--json` for scripts.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use dex_sdk::wire::{Channel, ValidatorView};
use dex_sdk::{
    Client, ClientConfig, OrderParams, StreamConfig, StreamEvent, Subscription, TraderKey,
};
use dex_types::{
    AccountId, CancelTarget, ClientOrderId, MarketId, OrderId, Rounding, SelfTradePrevention, Side,
    TimestampMs,
};
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "dex",
    about = "Trade on the exchange from the command line",
    version
)]
struct Cli {
    /// The node's API base URL.
    #[arg(
        long,
        global = true,
        env = "DEX_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// The key file to sign with.
    #[arg(long, global = true, env = "DEX_KEY")]
    key: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make a new key and write it to a file readable only by you.
    Keygen {
        /// Where to write it (never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Make an agent key acting for this account (hex) instead of an account key.
        #[arg(long)]
        agent_for: Option<String>,
    },
    /// Show an account's balances (the key's account by default).
    Balance {
        /// Account, hex.
        account: Option<String>,
    },
    /// Place, cancel or modify orders.
    Order {
        #[command(subcommand)]
        action: OrderCommand,
    },
    /// Show a market's book as a ladder.
    Book {
        /// Market id.
        #[arg(long)]
        market: u32,
        /// Levels per side.
        #[arg(long, default_value_t = 10)]
        depth: usize,
    },
    /// Stream fills and book updates.
    Watch {
        /// Watch this market's book and trades.
        #[arg(long)]
        market: Option<u32>,
        /// Watch this account's fills and orders (the key's account if a key is given).
        #[arg(long)]
        account: Option<String>,
        /// Stop after this many book, trade, fill or order events.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Verify a fill proof against its header and the commit certificate.
    Verify {
        /// Block height.
        #[arg(long)]
        height: u64,
        /// Position of the fill among the block's committed items.
        #[arg(long)]
        index: u32,
        /// A JSON file listing the validator set to trust (`[{"public_key", "voting_power"}]`);
        /// without it, the set the node reports is used.
        #[arg(long)]
        validators: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum OrderCommand {
    /// Place an order.
    Place(PlaceArgs),
    /// Cancel orders: one by id or client id, a market's, or all.
    Cancel {
        /// Order id.
        #[arg(long)]
        order_id: Option<u64>,
        /// Client order id.
        #[arg(long)]
        client_id: Option<u64>,
        /// Every order in this market.
        #[arg(long)]
        market: Option<u32>,
        /// Every order.
        #[arg(long)]
        all: bool,
    },
    /// Change a resting order's price and/or size.
    Modify {
        /// Order id.
        #[arg(long)]
        order_id: u64,
        /// New price.
        #[arg(long)]
        price: Option<Decimal>,
        /// New size.
        #[arg(long)]
        size: Option<Decimal>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SideArg {
    Buy,
    Sell,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TifArg {
    Gtc,
    Ioc,
    Fok,
    PostOnly,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoundArg {
    Down,
    Up,
    Nearest,
}

#[derive(Args, Debug)]
struct PlaceArgs {
    /// Market id.
    #[arg(long)]
    market: u32,
    /// Buy or sell.
    #[arg(long, value_enum)]
    side: SideArg,
    /// Limit price (worst price with --market-order).
    #[arg(long)]
    price: Decimal,
    /// Size in base.
    #[arg(long)]
    size: Decimal,
    /// Time in force.
    #[arg(long, value_enum, default_value = "gtc")]
    tif: TifArg,
    /// Good until this block time (ms since the epoch) instead of --tif.
    #[arg(long)]
    expires_at: Option<u64>,
    /// A market order (immediate-or-cancel up to --price).
    #[arg(long)]
    market_order: bool,
    /// Client order id (one is assigned if absent).
    #[arg(long)]
    client_id: Option<u64>,
    /// Round an off-tick price / off-lot size this way instead of refusing it.
    #[arg(long, value_enum)]
    round: Option<RoundArg>,
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn client(cli: &Cli, need_key: bool) -> anyhow::Result<Client> {
    let key = match &cli.key {
        Some(path) => {
            Some(TraderKey::load(path).with_context(|| format!("loading {}", path.display()))?)
        }
        None if need_key => {
            bail!("this command signs a transaction: pass --key FILE (or set DEX_KEY)")
        }
        None => None,
    };
    Client::connect(&cli.url, key, ClientConfig::default())
        .await
        .with_context(|| format!("connecting to {}", cli.url))
}

fn account_arg(text: Option<&str>, client: &Client) -> anyhow::Result<AccountId> {
    match text {
        Some(t) => AccountId::from_hex(t).map_err(|e| anyhow::anyhow!("account {t:?}: {e}")),
        None => client
            .account()
            .map_err(|_| anyhow::anyhow!("give an account or --key")),
    }
}

fn report_tx(json: bool, status: &dex_sdk::wire::TxStatusView) -> anyhow::Result<()> {
    if json {
        return print_json(status);
    }
    match &status.outcome {
        Some(outcome) if outcome.ok => {
            println!(
                "committed in block {}: tx {}",
                outcome.height, status.tx_hash
            );
            for order in &outcome.orders {
                println!(
                    "  order {} (client id {}): {:?} {} @ {} — {:?}, filled {}, open {}",
                    order.order_id.map_or("-".into(), |i| i.to_string()),
                    order.client_order_id.map_or("-".into(), |i| i.to_string()),
                    order.side,
                    order.size,
                    order.price,
                    order.state,
                    order.filled,
                    order.remaining
                );
            }
            for leg in &outcome.leg_rejections {
                println!("  leg {} refused: {} ({})", leg.leg, leg.message, leg.code);
            }
        }
        Some(outcome) => println!(
            "rejected in block {}: {} ({})",
            outcome.height,
            outcome.message.as_deref().unwrap_or("?"),
            outcome.code.as_deref().unwrap_or("?")
        ),
        None => println!("admitted, pending: tx {}", status.tx_hash),
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Keygen { out, agent_for } => {
            let key = match agent_for {
                Some(owner) => TraderKey::generate_agent(
                    AccountId::from_hex(owner).map_err(|e| anyhow::anyhow!("--agent-for: {e}"))?,
                )?,
                None => TraderKey::generate()?,
            };
            key.save(out)?;
            if cli.json {
                print_json(&serde_json::json!({
                    "file": out, "signer": key.signer().to_hex(), "account": key.account().to_hex(),
                    "agent": key.is_agent(),
                }))?;
            } else {
                println!("wrote {} (mode 600)", out.display());
                println!("signer  {}", key.signer());
                if key.is_agent() {
                    println!(
                        "agent for account {}; approve it from that account",
                        key.account()
                    );
                }
            }
        }
        Command::Balance { account } => {
            let client = client(&cli, false).await?;
            let id = account_arg(account.as_deref(), &client)?;
            let view = client.account_view(Some(id)).await?;
            if cli.json {
                return print_json(&view);
            }
            println!(
                "account {} at block {}{}",
                view.account,
                view.height,
                if view.exists { "" } else { " (not funded)" }
            );
            println!("{:<8} {:>24} {:>24}", "asset", "free", "locked");
            for b in &view.balances {
                println!("{:<8} {:>24} {:>24}", b.symbol, b.free, b.locked);
            }
            println!("open orders: {}", view.open_orders);
            if let Some(at) = view.cancel_all_at_ms {
                println!("dead-man switch armed for {at} ms");
            }
        }
        Command::Order { action } => {
            let client = client(&cli, true).await?;
            let status = match action {
                OrderCommand::Place(args) => {
                    let side = match args.side {
                        SideArg::Buy => Side::Buy,
                        SideArg::Sell => Side::Sell,
                    };
                    let market = MarketId(args.market);
                    let mut order = if args.market_order {
                        OrderParams::market(market, side, args.price, args.size)
                    } else {
                        OrderParams::limit(market, side, args.price, args.size)
                    };
                    order = match (args.expires_at, args.tif) {
                        (Some(at), _) => order.good_til(TimestampMs(at)),
                        (None, TifArg::Gtc) => order,
                        (None, TifArg::Ioc) => order.ioc(),
                        (None, TifArg::Fok) => order.fok(),
                        (None, TifArg::PostOnly) => order.post_only(),
                    };
                    order = order.self_trade(SelfTradePrevention::CancelResting);
                    if let Some(id) = args.client_id {
                        order = order.client_id(ClientOrderId(id));
                    }
                    if let Some(round) = args.round {
                        let r = match round {
                            RoundArg::Down => Rounding::Down,
                            RoundArg::Up => Rounding::Up,
                            RoundArg::Nearest => Rounding::Nearest,
                        };
                        order = order.round_price(r).round_size(r);
                    }
                    client.place(order).await?.tx
                }
                OrderCommand::Cancel {
                    order_id,
                    client_id,
                    market,
                    all,
                } => {
                    let target = match (order_id, client_id, market, all) {
                        (Some(id), None, None, false) => CancelTarget::Order(OrderId(*id)),
                        (None, Some(id), None, false) => {
                            CancelTarget::ClientOrder(ClientOrderId(*id))
                        }
                        (None, None, Some(m), false) => CancelTarget::Market(MarketId(*m)),
                        (None, None, None, true) => CancelTarget::All,
                        _ => bail!("give exactly one of --order-id, --client-id, --market, --all"),
                    };
                    client.cancel(target).await?
                }
                OrderCommand::Modify {
                    order_id,
                    price,
                    size,
                } => {
                    let order = client
                        .order(OrderId(*order_id))
                        .await?
                        .with_context(|| format!("order {order_id} is not known to the node"))?;
                    client
                        .modify(MarketId(order.market), OrderId(*order_id), *price, *size)
                        .await?
                }
            };
            report_tx(cli.json, &status)?;
        }
        Command::Book { market, depth } => {
            let client = client(&cli, false).await?;
            let book = client.book(MarketId(*market), *depth).await?;
            if cli.json {
                return print_json(&book);
            }
            let name = client
                .chain()
                .markets
                .iter()
                .find(|m| m.id == *market)
                .map_or_else(|| market.to_string(), |m| m.name.clone());
            println!(
                "{name} at block {} (seq {}, checksum {})",
                book.height, book.seq, book.checksum
            );
            println!("{:>20} {:>16} {:>7}", "price", "size", "orders");
            for level in book.asks.iter().rev() {
                println!(
                    "{:>20} {:>16} {:>7}  ask",
                    level.price, level.size, level.orders
                );
            }
            println!("{:>20}", "----");
            for level in &book.bids {
                println!(
                    "{:>20} {:>16} {:>7}  bid",
                    level.price, level.size, level.orders
                );
            }
        }
        Command::Watch {
            market,
            account,
            count,
            seconds,
        } => {
            let client = client(&cli, false).await?;
            let mut channels = Vec::new();
            if let Some(m) = market {
                channels.push(Channel::Book { market: *m });
                channels.push(Channel::Trades { market: *m });
            }
            let account = match account {
                Some(a) => {
                    Some(AccountId::from_hex(a).map_err(|e| anyhow::anyhow!("--account: {e}"))?)
                }
                None => client.account().ok(),
            };
            if let Some(a) = account {
                channels.push(Channel::Fills {
                    account: a.to_hex(),
                });
                channels.push(Channel::Orders {
                    account: a.to_hex(),
                });
            }
            if channels.is_empty() {
                bail!("give --market and/or --account (or --key)");
            }
            let mut subscription = Subscription::spawn(
                client.url(),
                client.markets().clone(),
                channels,
                StreamConfig::default(),
            );
            let deadline = seconds.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
            let mut seen = 0u64;
            while count.is_none_or(|c| seen < c) {
                let next = match deadline {
                    Some(at) => match tokio::time::timeout_at(at, subscription.next()).await {
                        Ok(event) => event,
                        Err(_) => break,
                    },
                    None => tokio::select! {
                        event = subscription.next() => event,
                        _ = tokio::signal::ctrl_c() => break,
                    },
                };
                let Some(event) = next else { break };
                if matches!(event, StreamEvent::Heartbeat { .. }) {
                    continue;
                }
                if matches!(
                    event,
                    StreamEvent::Book { .. }
                        | StreamEvent::Trades { .. }
                        | StreamEvent::Fills { .. }
                        | StreamEvent::Orders { .. }
                ) {
                    seen += 1;
                }
                print_event(cli.json, &subscription, &event)?;
                if matches!(event, StreamEvent::Closed { .. }) {
                    break;
                }
            }
        }
        Command::Verify {
            height,
            index,
            validators,
        } => {
            let client = client(&cli, false).await?;
            let (views, source) = match validators {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let views: Vec<ValidatorView> = serde_json::from_str(&text)?;
                    (views, "the validator file")
                }
                None => (
                    client.chain().validators.clone(),
                    "the validator set the node reports",
                ),
            };
            let set = dex_sdk::verify::validator_set(&views)?;
            let proof = client.fill_proof(*height, *index).await?;
            let verified = dex_sdk::verify::verify_fill(&proof, Some(&set))?;
            if cli.json {
                return print_json(&serde_json::json!({
                    "verified": true,
                    "height": verified.header.height,
                    "block_hash": verified.header.hash().to_hex(),
                    "fills_root": verified.header.fills_root.to_hex(),
                    "trade": proof.trade,
                    "validators": source,
                }));
            }
            println!(
                "verified: item {index} of block {height} is under fills root {}",
                verified.header.fills_root
            );
            println!(
                "block {} is certified by more than 2/3 of {source}",
                verified.header.hash()
            );
            if let Some(t) = proof.trade {
                println!(
                    "trade: {:?} {} @ {} (maker order {}, taker order {})",
                    t.taker_side, t.size, t.price, t.maker_order_id, t.taker_order_id
                );
            }
        }
    }
    Ok(())
}

fn print_event(json: bool, subscription: &Subscription, event: &StreamEvent) -> anyhow::Result<()> {
    match event {
        StreamEvent::Book {
            market,
            seq,
            height,
        } => {
            let book = subscription.book(*market);
            if json {
                let top = book.as_ref().map(|b| (b.best_bid(), b.best_ask()));
                print_json(
                    &serde_json::json!({"event": "book", "market": market.0, "seq": seq, "height": height,
                    "best_bid": top.and_then(|t| t.0).map(|(p, s)| [p.to_string(), s.to_string()]),
                    "best_ask": top.and_then(|t| t.1).map(|(p, s)| [p.to_string(), s.to_string()])}),
                )?;
            } else if let Some(book) = book {
                let show = |x: Option<(Decimal, Decimal)>| {
                    x.map_or("-".to_string(), |(p, s)| format!("{s} @ {p}"))
                };
                println!(
                    "book {market} #{seq} (block {height}): bid {} | ask {}",
                    show(book.best_bid()),
                    show(book.best_ask())
                );
            }
        }
        StreamEvent::Fills { height, fills } => {
            if json {
                print_json(
                    &serde_json::json!({"event": "fills", "height": height, "fills": fills}),
                )?;
            } else {
                for f in fills {
                    println!(
                        "fill (block {height}): order {} {:?} {} @ {} as {:?}, fee {}",
                        f.order_id, f.side, f.size, f.price, f.liquidity, f.fee
                    );
                }
            }
        }
        StreamEvent::Trades {
            market,
            height,
            trades,
        } => {
            if json {
                print_json(
                    &serde_json::json!({"event": "trades", "market": market.0, "height": height, "trades": trades}),
                )?;
            } else {
                for t in trades {
                    println!(
                        "trade {market} (block {height}): {:?} {} @ {}",
                        t.taker_side, t.size, t.price
                    );
                }
            }
        }
        StreamEvent::Orders { height, orders } => {
            if json {
                print_json(
                    &serde_json::json!({"event": "orders", "height": height, "orders": orders}),
                )?;
            } else {
                for o in orders {
                    println!(
                        "order {} (block {height}): {:?}, filled {}, open {}",
                        o.order_id.map_or("-".into(), |i| i.to_string()),
                        o.state,
                        o.filled,
                        o.remaining
                    );
                }
            }
        }
        other => {
            if json {
                print_json(&serde_json::json!({"event": format!("{other:?}")}))?;
            } else {
                println!("{other:?}");
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli).await {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
