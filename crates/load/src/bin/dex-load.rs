//! `dex-load`: load a local cluster with a pre-signed seeded order stream and report what
//! it sustains.
//!
//! ```text
//! dex-load run --rate max-then-half --duration 30            # 4 validators, 2000 traders
//! dex-load run --rate 1500 --duration 60 --json > run.json
//! dex-load init --dir ./chain --traders 2000 --seed 1        # then start dexd yourself …
//! dex-load run --attach http://127.0.0.1:8080,http://127.0.0.1:8081 \
//!     --spec ./chain/genesis.json --seed 1 --traders 2000 --pids 1234,1235
//! ```

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use dex_load::cluster::{self, LayoutOptions, Processes};
use dex_load::runner::wait_ready;
use dex_load::stream::Mix;
use dex_load::{ChainSetup, RateMode, RunOptions, Target};
use dex_node::{ChainSpec, ConsensusParams};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The same allocator as `dexd`, so the generator's share of the shared cores stays small.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "dex-load",
    about = "Load the exchange end to end and report what it sustains",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Lay out a cluster (or attach to one), run the load, print the report.
    Run(RunArgs),
    /// Only lay out a chain (genesis.json and validator homes) for `run --attach`.
    Init(ChainArgs),
}

#[derive(Args, Debug, Clone)]
struct ChainArgs {
    /// The chain's directory (default for `run`: a new temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Validators.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Funded traders, derived from the seed.
    #[arg(long, default_value_t = 2_000)]
    traders: u32,
    /// Seed of every key and of the order stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Chain id.
    #[arg(long, default_value_t = 1)]
    chain_id: u64,
    /// Each validator's mempool capacity.
    #[arg(long, default_value_t = 50_000)]
    mempool_capacity: usize,
    /// Most transactions per block (default: the chain's default).
    #[arg(long)]
    block_txs_max: Option<usize>,
    /// How long a proposer waits for transactions before building its block, ms (default:
    /// the chain's default).
    #[arg(long)]
    propose_batch_ms: Option<u64>,
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// `N` transactions per second, `max`, or `max-then-half` (find the maximum, then run
    /// at half of it and check the latency target).
    #[arg(long, default_value = "max-then-half")]
    rate: String,
    /// Seconds of submission per phase.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Most transactions in flight (a batch request holds one slot per transaction).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Most transactions per request: 1 sends each on its own (`POST /v1/txs`); more
    /// sends consecutive ones together (`POST /v1/txs/batch`, at most 256), a batch
    /// leaving when its last transaction is due, latency still counted per transaction
    /// from its own scheduled time.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Shares of rest,cross,ioc,cancel transactions, percent.
    #[arg(long, default_value = "50,10,15,25")]
    mix: String,
    /// Loopback source addresses to spread requests over (0: the default address).
    #[arg(long, default_value_t = 32)]
    source_ips: u8,
    /// Most transactions of one trader in flight (below the ledger's 64-nonce window).
    #[arg(long, default_value_t = 48)]
    trader_inflight_max: u32,
    /// Transactions signed for a phase at the maximum rate.
    #[arg(long, default_value_t = 300_000)]
    max_signed: usize,
    /// Longest wait after a phase for its transactions to commit, seconds.
    #[arg(long, default_value_t = 120)]
    drain_timeout: u64,
    /// The dexd binary (default: the one next to dex-load).
    #[arg(long)]
    dexd: Option<PathBuf>,
    /// Keep the laid-out directory (logs, databases) after the run.
    #[arg(long)]
    keep: bool,
    /// Load running validators at these API URLs (comma-separated) instead of starting a
    /// cluster; needs --spec.
    #[arg(long, value_delimiter = ',')]
    attach: Vec<String>,
    /// The chain spec (genesis.json) of the attached cluster.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Process ids of the attached validators, in URL order, for CPU accounting.
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

fn consensus(args: &ChainArgs) -> ConsensusParams {
    let mut params = ConsensusParams::default();
    if let Some(n) = args.block_txs_max {
        params.block_txs_max = n;
    }
    if let Some(ms) = args.propose_batch_ms {
        params.propose_batch_ms = ms;
    }
    params
}

fn layout_options(args: &ChainArgs, dir: PathBuf) -> LayoutOptions {
    LayoutOptions {
        dir,
        validators: args.validators,
        traders: args.traders,
        seed: args.seed,
        chain_id: args.chain_id,
        mempool_capacity: args.mempool_capacity,
        consensus: consensus(args),
    }
}

fn main() -> anyhow::Result<()> {
    dex_node::memory::disable_transparent_huge_pages();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Init(args) => {
            let dir = args.dir.clone().context("init needs --dir")?;
            let layout = cluster::layout(&layout_options(&args, dir.clone()))?;
            println!(
                "wrote chain {} with {} validators and {} traders (seed {}) to {}",
                args.chain_id,
                layout.spec.validators.len(),
                args.traders,
                args.seed,
                dir.display()
            );
            for (i, url) in layout.api_urls.iter().enumerate() {
                println!(
                    "  v{i}: dexd start --config {}   (API {url})",
                    dex_node::devnet::node_config_path(&dir, i).display()
                );
            }
            Ok(())
        }
        Cmd::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let report = runtime.block_on(run(&args))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            if !report.all_known {
                std::process::exit(2);
            }
            Ok(())
        }
    }
}

fn run_options(args: &RunArgs) -> anyhow::Result<RunOptions> {
    let mode = match args.rate.as_str() {
        "max" => RateMode::Max,
        "max-then-half" => RateMode::MaxThenHalf,
        text => {
            let rate: f64 = text
                .parse()
                .ok()
                .filter(|r: &f64| r.is_finite() && *r > 0.0)
                .with_context(|| {
                    format!("--rate {text:?}: a positive number, max or max-then-half")
                })?;
            RateMode::Fixed(rate)
        }
    };
    if args.duration == 0 || args.concurrency == 0 || args.trader_inflight_max == 0 {
        bail!("--duration, --concurrency and --trader-inflight-max must be positive");
    }
    if args.batch == 0 || args.batch > dex_sdk::wire::MAX_BATCH_TXS {
        bail!(
            "--batch must be from 1 to {} (the most one request may carry)",
            dex_sdk::wire::MAX_BATCH_TXS
        );
    }
    if args.trader_inflight_max >= dex_sdk::MAX_IN_FLIGHT as u32 {
        bail!(
            "--trader-inflight-max must stay below the ledger's nonce window of {}",
            dex_sdk::MAX_IN_FLIGHT
        );
    }
    Ok(RunOptions {
        mode,
        duration: Duration::from_secs(args.duration),
        concurrency: args.concurrency,
        batch: args.batch,
        trader_inflight_max: args.trader_inflight_max,
        source_ips: args.source_ips,
        max_signed: args.max_signed,
        drain_timeout: Duration::from_secs(args.drain_timeout),
        seed: args.chain.seed,
        mix: Mix::parse(&args.mix)?,
        progress: (!args.quiet).then_some(Duration::from_secs(5)),
        ..RunOptions::default()
    })
}

async fn run(args: &RunArgs) -> anyhow::Result<dex_load::Report> {
    let options = run_options(args)?;
    if !args.attach.is_empty() {
        let spec_path = args
            .spec
            .as_ref()
            .context("--attach needs --spec (the cluster's genesis.json)")?;
        let spec = ChainSpec::load(spec_path)?;
        if !args.pids.is_empty() && args.pids.len() != args.attach.len() {
            bail!("--pids needs one process id per --attach URL");
        }
        let chain = chain_setup(&spec, args.chain.seed, args.chain.traders)?;
        let target = Target {
            urls: args.attach.clone(),
            pids: (0..args.attach.len())
                .map(|i| args.pids.get(i).copied())
                .collect(),
        };
        return Ok(dex_load::run(&options, &target, chain).await?);
    }

    let dexd = match &args.dexd {
        Some(path) => path.clone(),
        None => cluster::default_dexd()?,
    };
    let mut temp = None;
    let dir = match &args.chain.dir {
        Some(dir) => dir.clone(),
        None => {
            let made = tempfile::Builder::new().prefix("dex-load-").tempdir()?;
            let path = made.path().to_owned();
            temp = Some(made);
            path
        }
    };
    let layout = cluster::layout(&layout_options(&args.chain, dir.clone()))?;
    let chain = chain_setup(&layout.spec, args.chain.seed, args.chain.traders)?;
    let mut processes = Processes::spawn(&dexd, &layout)?;
    if !args.quiet {
        eprintln!(
            "dex-load: {} validators started from {} in {}; waiting for the first blocks",
            layout.api_urls.len(),
            dexd.display(),
            dir.display()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        processes.check_alive()?;
        if wait_ready(&layout.api_urls, 2, Duration::from_secs(1))
            .await
            .is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the cluster did not commit its first blocks within 60 s; see the node.log files in {}",
                dir.display()
            );
        }
    }
    let target = Target {
        urls: layout.api_urls.clone(),
        pids: processes.pids().into_iter().map(Some).collect(),
    };
    let result = dex_load::run(&options, &target, chain).await;
    let alive = processes.check_alive();
    processes.stop(Duration::from_secs(10));
    let failed = alive.is_err() || result.is_err();
    match temp {
        // A failed run keeps its logs for the post-mortem.
        Some(temp) if args.keep || failed => {
            eprintln!("dex-load: chain kept in {}", temp.keep().display());
        }
        Some(temp) => drop(temp),
        None => eprintln!("dex-load: chain kept in {}", dir.display()),
    }
    alive?;
    Ok(result?)
}

fn chain_setup(spec: &ChainSpec, seed: u64, traders: u32) -> anyhow::Result<ChainSetup> {
    Ok(ChainSetup {
        chain_id: cluster::chain_id(spec),
        markets: cluster::market_plans(spec, &[])?,
        keys: cluster::funded_traders(spec, seed, traders)?,
        block_txs_max: spec.consensus.block_txs_max,
    })
}
