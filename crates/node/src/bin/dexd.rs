//! `dexd`: the validator node's command line.
//!
//! ```text
//! dexd keygen --out validator.key
//! dexd init --dir ./chain --validators 4
//! dexd start --config ./chain/v0/node.json
//! dexd status --api http://127.0.0.1:8080
//! dexd devnet
//! ```

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use dex_node::devnet::{self, InitOptions, MARKETS};
use dex_node::{NodeConfig, RunningNode, ValidatorKey};
use dex_sdk::bots::{MarketMaker, MarketMakerConfig, Taker, TakerConfig};
use dex_sdk::{Client, ClientConfig, TraderKey};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The node allocates and frees many short-lived buffers per block (transactions, encoded
/// blocks, feed messages); mimalloc keeps freed memory in per-thread pages instead of
/// returning large blocks to the kernel, which glibc's allocator does at a cost of one page
/// fault per 4 KiB touched again (measured: about a tenth of the consensus thread).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "dexd",
    about = "Run and operate a validator of the exchange",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write a new validator key file (never overwrites one).
    Keygen {
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a local chain: genesis.json (validators, assets, markets, allocations), a home
    /// per validator with its key and node.json, and funded trader keys.
    Init(InitArgs),
    /// Run a node from its node.json until Ctrl-C or SIGTERM.
    Start {
        /// The node configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print a node's height, round, peers and mempool from its API.
    Status {
        /// The node's API.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        api: String,
        /// Print the raw metrics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a local network: validators on 127.0.0.1 with real libp2p and RocksDB, a market
    /// maker and a taker on two markets, and a status line every second.
    Devnet(DevnetArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct InitArgs {
    /// The directory to write.
    #[arg(long)]
    dir: PathBuf,
    /// Validators.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Chain id.
    #[arg(long, default_value_t = 1)]
    chain_id: u64,
    /// Validator i listens for peers on this port + i.
    #[arg(long, default_value_t = 27_000)]
    p2p_base_port: u16,
    /// Validator i serves its API on this port + i.
    #[arg(long, default_value_t = 8_080)]
    api_base_port: u16,
    /// Funded trader keys to write.
    #[arg(long, default_value_t = 4)]
    traders: usize,
}

#[derive(clap::Args, Debug, Clone)]
struct DevnetArgs {
    /// Where the chain lives (default: a new directory under the system's temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Validators.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Validator i listens for peers on this port + i.
    #[arg(long, default_value_t = 27_000)]
    p2p_base_port: u16,
    /// Validator i serves its API on this port + i.
    #[arg(long, default_value_t = 8_080)]
    api_base_port: u16,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
    /// Run only the validators, without the demo bots.
    #[arg(long)]
    no_bots: bool,
}

fn main() -> anyhow::Result<()> {
    dex_node::memory::disable_transparent_huge_pages();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Keygen { out } => {
            let key = ValidatorKey::generate()?;
            key.save(&out)?;
            println!("{}", key.public_key());
            Ok(())
        }
        Cmd::Init(args) => {
            let spec = devnet::init(&init_options(&args)?)?;
            println!(
                "wrote chain {} with {} validators to {}",
                spec.genesis.chain_id.0,
                spec.validators.len(),
                args.dir.display()
            );
            for (i, v) in spec.validators.iter().enumerate() {
                println!(
                    "  {}: {} (start: dexd start --config {})",
                    v.name,
                    v.public_key,
                    devnet::node_config_path(&args.dir, i).display()
                );
            }
            Ok(())
        }
        Cmd::Start { config } => runtime()?.block_on(start(config)),
        Cmd::Status { api, json } => runtime()?.block_on(status(&api, json)),
        Cmd::Devnet(args) => runtime()?.block_on(run_devnet(args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Signature checks run on the blocking pool; a few threads per core are enough to
        // keep every core busy without a thread per message under a flood.
        .max_blocking_threads(std::thread::available_parallelism().map_or(2, |n| n.get()) * 2)
        .build()
        .context("starting the async runtime")
}

fn init_options(args: &InitArgs) -> anyhow::Result<InitOptions> {
    Ok(InitOptions {
        dir: args.dir.clone(),
        validators: args.validators,
        chain_id: args.chain_id,
        p2p_base_port: args.p2p_base_port,
        api_base_port: args.api_base_port,
        traders: args.traders,
        genesis_time_ms: u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?,
    })
}

async fn start(config_path: PathBuf) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,libp2p_gossipsub=warn,libp2p_swarm=warn".into()),
        )
        .init();
    let config = NodeConfig::load(&config_path)?;
    let (mut node, info) = RunningNode::start(config).await?;
    println!(
        "node started at height {} (replayed {} blocks{}); API {}",
        info.height,
        info.replayed_blocks,
        if info.installed_genesis {
            ", new chain"
        } else {
            ""
        },
        node.api_url()
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        reason = node.stopped() => {
            bail!("the node stopped: {reason}; its database holds every committed block, restart it after fixing the cause");
        }
    }
    tracing::info!("stopping");
    node.shutdown().await?;
    Ok(())
}

/// A node's metrics, by name (labels included), from its `/metrics`.
async fn scrape(http: &reqwest::Client, api: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    let text = http
        .get(format!("{}/metrics", api.trim_end_matches('/')))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect())
}

async fn status(api: &str, json: bool) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let metrics = scrape(&http, api)
        .await
        .with_context(|| format!("reading {api}/metrics"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&metrics)?);
        return Ok(());
    }
    let get = |name: &str| metrics.get(name).copied().unwrap_or(0.0);
    println!(
        "height {}  round {}  peers {}  mempool {} txs  committed {} txs / {} fills  commit p50 {} ms p99 {} ms",
        get("dex_height"),
        get("dex_round"),
        get("dex_peers"),
        get("dex_mempool_txs"),
        get("dex_txs_committed_total"),
        get("dex_fills_committed_total"),
        get("dex_commit_latency_ms{quantile=\"0.5\"}"),
        get("dex_commit_latency_ms{quantile=\"0.99\"}"),
    );
    Ok(())
}

/// Validator processes of a devnet; killed when dropped so none outlives the command.
struct Validators {
    children: Vec<Child>,
}

impl Validators {
    fn spawn(dir: &Path, count: usize) -> anyhow::Result<Validators> {
        let exe = std::env::current_exe().context("locating dexd")?;
        let mut children = Vec::new();
        for i in 0..count {
            let home = devnet::validator_home(dir, i);
            let log = std::fs::File::create(home.join("node.log"))
                .with_context(|| format!("creating {}/node.log", home.display()))?;
            let child = Command::new(&exe)
                .arg("start")
                .arg("--config")
                .arg(devnet::node_config_path(dir, i))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting a validator process")?;
            children.push(child);
        }
        Ok(Validators { children })
    }

    /// SIGTERM each validator (a clean stop), then wait up to ten seconds before killing
    /// what is left.
    fn stop(&mut self) {
        for child in &self.children {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for child in &mut self.children {
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Validators {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_ready(
    http: &reqwest::Client,
    url: &str,
    validators: &mut Validators,
    dir: &Path,
) -> anyhow::Result<()> {
    // Bounded: 300 polls of 100 ms.
    for _ in 0..300 {
        for (i, child) in validators.children.iter_mut().enumerate() {
            if let Ok(Some(exit)) = child.try_wait() {
                bail!(
                    "validator v{i} exited ({exit}); see {}",
                    devnet::validator_home(dir, i).join("node.log").display()
                );
            }
        }
        if let Ok(response) = http.get(format!("{url}/v1/chain")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the node at {url} did not answer within 30 s; see its node.log")
}

async fn run_devnet(args: DevnetArgs) -> anyhow::Result<()> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("dex-devnet-{}", std::process::id())),
    };
    let traders = 2 * MARKETS.len();
    let spec_path = dir.join("genesis.json");
    if !spec_path.exists() {
        devnet::init(&init_options(&InitArgs {
            dir: dir.clone(),
            validators: args.validators,
            chain_id: 1,
            p2p_base_port: args.p2p_base_port,
            api_base_port: args.api_base_port,
            traders,
        })?)?;
    }
    let spec = dex_node::ChainSpec::load(&spec_path)?;
    let count = spec.validators.len();
    println!("devnet: {count} validators in {}", dir.display());
    let mut validators = Validators::spawn(&dir, count)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let urls: Vec<String> = (0..count)
        .map(|i| {
            NodeConfig::load(&devnet::node_config_path(&dir, i))
                .map(|c| format!("http://{}", c.api_listen))
        })
        .collect::<Result<_, _>>()?;
    for url in &urls {
        wait_ready(&http, url, &mut validators, &dir).await?;
    }
    println!("devnet: APIs at {}", urls.join(", "));

    let mut bots = Vec::new();
    if !args.no_bots {
        for (m, (market, name, reference)) in MARKETS.iter().enumerate() {
            let maker_key = TraderKey::load(&devnet::trader_key_path(&dir, 2 * m + 1))?;
            let taker_key = TraderKey::load(&devnet::trader_key_path(&dir, 2 * m + 2))?;
            // Each bot talks to a different validator: orders enter the network at
            // several places and reach the others by gossip.
            let maker_url = &urls[(2 * m) % count];
            let taker_url = &urls[(2 * m + 1) % count];
            let maker_client =
                Client::connect(maker_url, Some(maker_key), ClientConfig::default()).await?;
            let mut maker = MarketMaker::new(
                maker_client,
                MarketMakerConfig {
                    market: *market,
                    reference_price: Some(*reference),
                    spread_bps: 10,
                    size: Decimal::new(5, 1),
                    max_inventory: Decimal::from(20),
                    dead_man_after: Duration::from_secs(10),
                },
            )
            .await?;
            let taker_client =
                Client::connect(taker_url, Some(taker_key), ClientConfig::default()).await?;
            let mut taker = Taker::new(
                taker_client,
                TakerConfig {
                    market: *market,
                    size: Decimal::new(1, 1),
                    max_slippage_bps: 20,
                    seed: 7 + m as u64,
                },
            );
            let name = name.to_string();
            bots.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    if let Err(error) = maker.step().await {
                        eprintln!("{name} market maker: {error}");
                    }
                    if let Err(error) = taker.step().await {
                        eprintln!("{name} taker: {error}");
                    }
                }
            }));
        }
    }

    let watcher = Client::connect(&urls[0], None, ClientConfig::default()).await?;
    let started = Instant::now();
    let mut last: Option<(Instant, f64, f64)> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let stop = async {
        match args.seconds {
            Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let Ok(metrics) = scrape(&http, &urls[0]).await else {
            println!("devnet: v0 is not answering");
            continue;
        };
        let get = |name: &str| metrics.get(name).copied().unwrap_or(0.0);
        let now = Instant::now();
        let (txs, fills) = (
            get("dex_txs_committed_total"),
            get("dex_fills_committed_total"),
        );
        let (tx_rate, fill_rate) = match last {
            Some((at, t, f)) => {
                let secs = now.duration_since(at).as_secs_f64().max(1e-3);
                ((txs - t) / secs, (fills - f) / secs)
            }
            None => (0.0, 0.0),
        };
        last = Some((now, txs, fills));
        let mut books = String::new();
        for (market, name, _) in MARKETS {
            let top = match watcher.book(market, 1).await {
                Ok(book) => format!(
                    "{} {} / {}",
                    name,
                    book.bids
                        .first()
                        .map_or("-".into(), |l| l.price.to_string()),
                    book.asks
                        .first()
                        .map_or("-".into(), |l| l.price.to_string()),
                ),
                Err(_) => format!("{name} ?"),
            };
            books.push_str("  ");
            books.push_str(&top);
        }
        println!(
            "[{:>4}s] height {:>5}  orders/s {:>6.1}  fills/s {:>6.1}  commit p50 {:>4} ms p99 {:>4} ms {}",
            started.elapsed().as_secs(),
            get("dex_height"),
            tx_rate,
            fill_rate,
            get("dex_commit_latency_ms{quantile=\"0.5\"}"),
            get("dex_commit_latency_ms{quantile=\"0.99\"}"),
            books
        );
    }
    println!("devnet: stopping");
    for bot in &bots {
        bot.abort();
    }
    validators.stop();
    println!("devnet: stopped; data kept in {}", dir.display());
    Ok(())
}
