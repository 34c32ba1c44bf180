//! The run: sign, submit, watch blocks, sample the nodes, drain, account, report.
//!
//! Tasks of one run:
//! - the **sender** walks the phase's signed transactions in order. At a fixed rate it
//!   sends transaction `k` at `start + k / rate` (latency counts from that scheduled time,
//!   so a sender that falls behind does not hide the queueing); at the maximum rate it
//!   sends as soon as a request slot is free, and pauses briefly after a refusal for
//!   capacity so it probes the limit instead of spinning on refusals. Transaction `k` goes
//!   to validator `k mod n`, from loopback source address `(k / n) mod s`: the API limits
//!   submissions per client address, and a load of many traders comes from many
//!   addresses. Transactions in flight are bounded (`concurrency`, counted per transaction
//!   also in batches), and so are each trader's (below the ledger's 64-nonce window). With `--batch N`
//!   consecutive transactions share one `POST /v1/txs/batch` request of up to N, sent
//!   when its last transaction is due (see [`crate::batch`] for the rules), and each
//!   transaction's refusal is accounted as a single one would be;
//! - the **block watcher** follows one validator's block stream (WebSocket, with replay
//!   after a reconnect) and hands each block to the [`Tracker`];
//! - the **sampler** reads every validator's `/metrics` each interval (mempool backlog,
//!   height, round).
//!
//! After each phase the run waits until every admitted transaction is in a block (or the
//! drain timeout passes), fetches any block the stream skipped, and asks the validators
//! about every transaction still unsettled.

use crate::LoadError;
use crate::accounting::{BlockTx, EndState, Tracker, TxId};
use crate::batch::{Fate, OpenBatch, Queued};
use crate::probe::{self, CpuSnapshot};
use crate::report::{
    Backlog, BlockStats, CpuReport, NodeCounters, PhaseReport, Report, Second, Setup, TargetCheck,
    ValidatorCpu,
};
use crate::stats::{LatencySummary, quantile};
use crate::stream::{MarketPlan, Mix, OrderStream, PreparedTx, StreamConfig, sign_all};
use dex_sdk::wire::{BlockView, ChainView, Channel, SubmitBatchResponse, TxState, TxStatusView};
use dex_sdk::{StreamConfig as WsConfig, StreamEvent, Subscription, TraderKey};
use dex_types::{ChainId, Hash, TimestampMs};
use futures::StreamExt;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// How fast to send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RateMode {
    /// This many transactions per second.
    Fixed(f64),
    /// As fast as the cluster admits them.
    Max,
    /// As fast as possible, then at half the committed rate found.
    MaxThenHalf,
}

/// How a run goes.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// How fast.
    pub mode: RateMode,
    /// Length of each phase's submission window.
    pub duration: Duration,
    /// Most transactions in flight (with batches, a request holds one slot per transaction
    /// it carries).
    pub concurrency: usize,
    /// Most transactions per request: 1 sends each on its own (`POST /v1/txs`), more
    /// sends consecutive ones together (`POST /v1/txs/batch`).
    pub batch: usize,
    /// Most transactions of one trader sent and not yet committed or refused.
    pub trader_inflight_max: u32,
    /// Loopback source addresses (127.0.1.1 on) to send from; 0 sends from the default
    /// address.
    pub source_ips: u8,
    /// Transactions signed for a phase at the maximum rate.
    pub max_signed: usize,
    /// Longest wait after a phase for its transactions to commit.
    pub drain_timeout: Duration,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// How often the nodes' metrics are read.
    pub sample_interval: Duration,
    /// The stream's seed.
    pub seed: u64,
    /// The stream's mix.
    pub mix: Mix,
    /// Print a progress line every this often to stderr (`None`: quiet).
    pub progress: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            mode: RateMode::MaxThenHalf,
            duration: Duration::from_secs(30),
            concurrency: 256,
            batch: 1,
            trader_inflight_max: 48,
            source_ips: 32,
            max_signed: 300_000,
            drain_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(10),
            sample_interval: Duration::from_millis(500),
            seed: 1,
            mix: Mix::default(),
            progress: Some(Duration::from_secs(5)),
        }
    }
}

/// The cluster to load.
#[derive(Clone, Debug)]
pub struct Target {
    /// Each validator's API URL (`http://host:port`).
    pub urls: Vec<String>,
    /// Each validator's process id, for CPU accounting, when known.
    pub pids: Vec<Option<u32>>,
}

/// The chain the stream is for.
#[derive(Clone, Debug)]
pub struct ChainSetup {
    /// Chain id.
    pub chain_id: ChainId,
    /// Markets traded.
    pub markets: Vec<MarketPlan>,
    /// The funded traders' keys.
    pub keys: Vec<TraderKey>,
    /// The chain's most transactions per block.
    pub block_txs_max: usize,
}

/// A refusal code that means "no room now": at the maximum rate the sender pauses.
fn is_capacity_refusal(code: &str) -> bool {
    matches!(
        code,
        "mempool_full" | "unavailable" | "rate_limited" | "signer_limit"
    )
}

/// Pause of the sender after a capacity refusal at the maximum rate.
const CAPACITY_PAUSE_US: u64 = 10_000;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_us: u64,
    node: usize,
    mempool_txs: u64,
    round: u64,
    peers: u64,
}

struct Shared {
    epoch: Instant,
    tracker: Mutex<Tracker>,
    blocks: Notify,
    pause_until_us: AtomicU64,
    samples: Mutex<Vec<Sample>>,
    stop: AtomicBool,
}

impl Shared {
    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Deserialize)]
struct ErrorCode {
    code: String,
}

fn block_txs(view: &BlockView) -> Vec<BlockTx> {
    view.txs
        .iter()
        .filter_map(|t| {
            Some(BlockTx {
                hash: Hash::from_hex(&t.tx_hash).ok()?,
                ok: t.ok,
                code: t.code.clone(),
            })
        })
        .collect()
}

fn http_client(
    source: Option<IpAddr>,
    timeout: Duration,
    idle: usize,
) -> Result<reqwest::Client, LoadError> {
    reqwest::Client::builder()
        .local_address(source)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(idle)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| LoadError::Cluster(format!("HTTP client: {e}")))
}

fn is_loopback(url: &str) -> bool {
    let rest = url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    rest.starts_with("127.") || rest.starts_with("localhost")
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, LoadError> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| LoadError::Cluster(format!("GET {url}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(LoadError::Cluster(format!("GET {url}: HTTP {status}")));
    }
    response
        .json()
        .await
        .map_err(|e| LoadError::Cluster(format!("GET {url}: {e}")))
}

async fn scrape(http: &reqwest::Client, url: &str) -> Option<BTreeMap<String, f64>> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(probe::parse_metrics(&text))
}

/// Wait until every validator answers and has committed `height` blocks, for at most
/// `timeout`.
pub async fn wait_ready(urls: &[String], height: u64, timeout: Duration) -> Result<(), LoadError> {
    let http = http_client(None, Duration::from_secs(2), 4)?;
    let deadline = Instant::now() + timeout;
    for url in urls {
        loop {
            if let Ok(chain) = get_json::<ChainView>(&http, &format!("{url}/v1/chain")).await
                && chain.height >= height
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(LoadError::Cluster(format!(
                    "{url} did not reach height {height} within {} s",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

struct Clients {
    /// One client per source address.
    submit: Vec<reqwest::Client>,
    /// For reads and metrics.
    read: reqwest::Client,
}

async fn watch_blocks(
    shared: Arc<Shared>,
    url: String,
    connected: tokio::sync::oneshot::Sender<()>,
) {
    let mut subscription = Subscription::spawn(
        &url,
        BTreeMap::new(),
        vec![Channel::Blocks],
        WsConfig::default(),
    );
    let mut connected = Some(connected);
    while let Some(event) = subscription.next().await {
        match event {
            StreamEvent::Connected { .. } => {
                if let Some(tx) = connected.take() {
                    let _ = tx.send(());
                }
            }
            StreamEvent::Block(view) => {
                let txs = block_txs(&view);
                let at = shared.now_us();
                shared.tracker().on_block(view.header.height, &txs, at);
                shared.blocks.notify_waiters();
            }
            StreamEvent::Closed { reason } => {
                eprintln!("dex-load: the block stream of {url} closed: {reason}");
                break;
            }
            _ => {}
        }
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
    }
}

async fn sample_nodes(
    shared: Arc<Shared>,
    http: reqwest::Client,
    urls: Vec<String>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !shared.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        for (node, url) in urls.iter().enumerate() {
            if let Some(m) = scrape(&http, url).await {
                let get = |k: &str| m.get(k).copied().unwrap_or(0.0) as u64;
                let sample = Sample {
                    at_us: shared.now_us(),
                    node,
                    mempool_txs: get("dex_mempool_txs"),
                    round: get("dex_round"),
                    peers: get("dex_peers"),
                };
                shared
                    .samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(sample);
            }
        }
    }
}

struct SendOutcome {
    start_us: u64,
    end_us: u64,
    exhausted: bool,
    lag_us_max: u64,
    trader_waits: u64,
}

/// The sender's side of a phase: where requests go, and what it has sent.
struct Sender<'a> {
    shared: &'a Arc<Shared>,
    clients: &'a Clients,
    submit_urls: Vec<Arc<str>>,
    slots: Arc<Semaphore>,
    /// Permits `slots` was made with.
    slot_count: u32,
    at_max: bool,
    /// Each transaction on its own through the single route (`--batch 1`).
    single: bool,
    batches: u64,
    sent: usize,
    lag_us_max: u64,
}

impl Sender<'_> {
    /// Send what `open` holds as one request (nothing if it is empty).
    async fn flush(&mut self, open: &mut OpenBatch) {
        if open.is_empty() {
            return;
        }
        let items = open.take();
        // Slots count transactions, so `--batch` changes how they are packaged and not how
        // many are in flight. A batch larger than every slot takes them all.
        let wanted = u32::try_from(items.len())
            .unwrap_or(u32::MAX)
            .min(self.slot_count);
        let slot = self
            .slots
            .clone()
            .acquire_many_owned(wanted)
            .await
            .expect("bug: the request slots are never closed");
        let shared = self.shared.clone();
        let sent_us = shared.now_us();
        let (starts, lag_us) = crate::batch::starts(&items, sent_us);
        self.lag_us_max = self.lag_us_max.max(lag_us);
        {
            let mut tracker = shared.tracker();
            for (id, start_us) in starts {
                tracker.on_sent(id, start_us, sent_us);
            }
        }
        self.sent += items.len();
        let (node, source) = crate::batch::route(
            self.batches,
            self.submit_urls.len(),
            self.clients.submit.len(),
        );
        self.batches += 1;
        let client = self.clients.submit[source].clone();
        let url = self.submit_urls[node].clone();
        let ids: Vec<TxId> = items.iter().map(|q| q.id).collect();
        let body = if self.single {
            items
                .into_iter()
                .next()
                .map(|q| q.tx.body)
                .expect("bug: a flushed batch is not empty")
        } else {
            crate::batch::batch_body(&items)
        };
        let single = self.single;
        let at_max = self.at_max;
        tokio::spawn(async move {
            let result = client
                .post(&*url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let whole = |fate: Fate| vec![fate; ids.len()];
            let fates = match result {
                Ok(response) if response.status().is_success() => {
                    if single {
                        whole(Fate::Admitted)
                    } else {
                        match response.json::<SubmitBatchResponse>().await {
                            Ok(answer) => crate::batch::item_fates(answer, ids.len()),
                            Err(_) => whole(Fate::NoAnswer),
                        }
                    }
                }
                // The request as a whole was refused: so was each of its transactions.
                Ok(response) => {
                    let status = response.status();
                    let code = match response.json::<ErrorCode>().await {
                        Ok(body) => body.code,
                        Err(_) => format!("http_{}", status.as_u16()),
                    };
                    whole(Fate::Refused(code))
                }
                Err(_) => whole(Fate::NoAnswer),
            };
            let now = shared.now_us();
            let mut capacity_refused = false;
            {
                let mut tracker = shared.tracker();
                for (id, fate) in ids.into_iter().zip(fates) {
                    match fate {
                        Fate::Admitted => tracker.on_admitted(id),
                        Fate::Refused(code) => {
                            capacity_refused |= is_capacity_refusal(&code);
                            tracker.on_refused(id, &code, now);
                        }
                        Fate::NoAnswer => tracker.on_no_answer(id),
                    }
                }
            }
            if at_max && capacity_refused {
                shared
                    .pause_until_us
                    .fetch_max(now + CAPACITY_PAUSE_US, Ordering::Relaxed);
            }
            drop(slot);
        });
    }
}

async fn send_phase(
    shared: &Arc<Shared>,
    clients: &Clients,
    urls: &[String],
    txs: Vec<(TxId, PreparedTx)>,
    rate: Option<f64>,
    options: &RunOptions,
) -> SendOutcome {
    let single = options.batch <= 1;
    let route = if single { "/v1/txs" } else { "/v1/txs/batch" };
    let mut sender = Sender {
        shared,
        clients,
        submit_urls: urls
            .iter()
            .map(|u| Arc::from(format!("{u}{route}")))
            .collect(),
        slots: Arc::new(Semaphore::new(options.concurrency.max(1))),
        slot_count: u32::try_from(options.concurrency.max(1)).unwrap_or(u32::MAX),
        at_max: rate.is_none(),
        single,
        batches: 0,
        sent: 0,
        lag_us_max: 0,
    };
    let mut open = OpenBatch::new(options.batch);
    let start = Instant::now();
    let start_us = shared.now_us();
    let total = txs.len();
    let mut trader_waits = 0u64;
    'send: for (k, (id, tx)) in txs.into_iter().enumerate() {
        if start.elapsed() >= options.duration {
            break;
        }
        let mut scheduled_us = None;
        if let Some(rate) = rate {
            let offset = Duration::from_secs_f64(k as f64 / rate);
            if offset >= options.duration {
                break;
            }
            tokio::time::sleep_until((start + offset).into()).await;
            scheduled_us = Some(start_us + u64::try_from(offset.as_micros()).unwrap_or(u64::MAX));
        } else {
            let pause = shared.pause_until_us.load(Ordering::Relaxed);
            let now = shared.now_us();
            if now < pause {
                tokio::time::sleep(Duration::from_micros(pause - now)).await;
            }
        }
        // A trader with its window of transactions in flight (or waiting in the open
        // batch) waits for a block; the batch goes first, so it holds nothing back.
        loop {
            let notified = shared.blocks.notified();
            let held = shared.tracker().inflight(tx.trader) + open.of_trader(tx.trader);
            if held < options.trader_inflight_max {
                break;
            }
            if !open.is_empty() {
                sender.flush(&mut open).await;
                continue;
            }
            trader_waits += 1;
            let _ = tokio::time::timeout(Duration::from_millis(20), notified).await;
            if start.elapsed() >= options.duration {
                break 'send;
            }
        }
        open.push(Queued {
            id,
            tx,
            scheduled_us,
        });
        if open.is_full() {
            sender.flush(&mut open).await;
        }
    }
    // The phase's last, partly filled batch: its transactions were due in the window.
    sender.flush(&mut open).await;
    let end_us = shared.now_us();
    // Every request answered before the phase's figures are taken.
    let _ = sender
        .slots
        .acquire_many(u32::try_from(options.concurrency.max(1)).unwrap_or(u32::MAX))
        .await;
    SendOutcome {
        start_us,
        end_us,
        exhausted: sender.sent == total,
        lag_us_max: sender.lag_us_max,
        trader_waits,
    }
}

/// Wait until no sent transaction awaits its block, for at most `timeout`; the seconds
/// it took.
async fn drain(shared: &Shared, timeout: Duration) -> f64 {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let notified = shared.blocks.notified();
        if shared.tracker().awaiting() == 0 {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
    }
    start.elapsed().as_secs_f64()
}

/// Feed the tracker every block from the first one seen to the chain's head that the
/// stream skipped; returns how many were fetched.
async fn fill_gaps(shared: &Shared, http: &reqwest::Client, url: &str) -> Result<u64, LoadError> {
    let head = get_json::<ChainView>(http, &format!("{url}/v1/chain"))
        .await?
        .height;
    let missing: Vec<u64> = {
        let tracker = shared.tracker();
        let Some(&first) = tracker.heights().first() else {
            return Ok(0);
        };
        (first..=head)
            .filter(|h| !tracker.heights().contains(h))
            .collect()
    };
    let mut fetched = 0;
    for height in missing {
        let view: BlockView = get_retried(http, &format!("{url}/v1/blocks/{height}"))
            .await
            .ok_or_else(|| LoadError::Cluster(format!("block {height} could not be read")))?;
        let txs = block_txs(&view);
        let at = shared.now_us();
        if shared.tracker().on_block(height, &txs, at) {
            fetched += 1;
        }
    }
    Ok(fetched)
}

/// Ask the validators about every unsettled transaction: committed (then its block was
/// missed: fetch it), pending somewhere, or gone.
/// One read, retried a few times: the API limits reads per client address, and a refusal
/// must not pass for an answer.
async fn get_retried<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Option<T> {
    for attempt in 0..5u32 {
        if let Ok(value) = get_json(http, url).await {
            return Some(value);
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
    }
    None
}

/// Ask the validators about every unsettled transaction: committed (then its block was
/// missed: fetch it), pending somewhere, or gone. A transaction counts as gone only when
/// every validator answered that it does not know it; without all answers it stays
/// unsettled, which fails the check rather than guessing.
async fn resolve_unsettled(
    shared: &Shared,
    clients: &[reqwest::Client],
    urls: &[String],
) -> Result<u64, LoadError> {
    let unsettled: Vec<(usize, TxId, Hash)> = {
        let tracker = shared.tracker();
        tracker
            .unsettled()
            .into_iter()
            .enumerate()
            .map(|(k, id)| (k, id, tracker.hash(id)))
            .collect()
    };
    let answers: Vec<(TxId, Vec<TxStatusView>)> = futures::stream::iter(unsettled)
        .map(|(k, id, hash)| async move {
            // Spread the reads over the source addresses like the submissions.
            let http = &clients[k % clients.len()];
            let mut views = Vec::new();
            for url in urls {
                if let Some(view) =
                    get_retried::<TxStatusView>(http, &format!("{url}/v1/txs/{hash}")).await
                {
                    views.push(view);
                }
            }
            (id, views)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut fetched = 0;
    for (id, views) in answers {
        if let Some(height) = views
            .iter()
            .filter(|v| v.state == TxState::Committed)
            .find_map(|v| v.outcome.as_ref().map(|o| o.height))
        {
            let view: BlockView =
                get_retried(&clients[0], &format!("{}/v1/blocks/{height}", urls[0]))
                    .await
                    .ok_or_else(|| {
                        LoadError::Cluster(format!("block {height} could not be read"))
                    })?;
            let txs = block_txs(&view);
            let at = shared.now_us();
            if shared.tracker().on_block(height, &txs, at) {
                fetched += 1;
            }
            continue;
        }
        let pending = views.iter().any(|v| v.state == TxState::Pending);
        let dropped = views
            .iter()
            .find_map(|v| v.dropped.as_ref().map(|d| d.code.clone()));
        let end = match (pending, dropped) {
            (true, _) => Some(EndState::Pending),
            (false, Some(code)) => Some(EndState::Dropped(code)),
            (false, None) if views.len() == urls.len() => Some(EndState::Gone),
            (false, None) => None,
        };
        if let Some(end) = end {
            shared.tracker().resolve(id, end);
        }
    }
    Ok(fetched)
}

async fn node_counters(
    http: &reqwest::Client,
    urls: &[String],
) -> Vec<Option<BTreeMap<String, f64>>> {
    let mut out = Vec::new();
    for url in urls {
        out.push(scrape(http, url).await);
    }
    out
}

fn counter_diff(
    before: &[Option<BTreeMap<String, f64>>],
    after: &[Option<BTreeMap<String, f64>>],
) -> NodeCounters {
    let mut counters = NodeCounters::default();
    for (b, a) in before.iter().zip(after) {
        let (Some(b), Some(a)) = (b, a) else {
            continue;
        };
        let diff = |name: &str| {
            (a.get(name).copied().unwrap_or(0.0) - b.get(name).copied().unwrap_or(0.0)).max(0.0)
                as u64
        };
        for (labels, value) in probe::labelled(a, "dex_rejected_messages_total") {
            let old = probe::labelled(b, "dex_rejected_messages_total")
                .get(&labels)
                .copied()
                .unwrap_or(0.0);
            let reason = labels
                .trim_start_matches("reason=\"")
                .trim_end_matches('"')
                .to_owned();
            let n = (value - old).max(0.0) as u64;
            if n > 0 {
                *counters.rejected_messages.entry(reason).or_default() += n;
            }
        }
        counters.rate_limited += diff("dex_api_rate_limited_total");
        counters.commit_latency_ms.push(
            probe::labelled(a, "dex_commit_latency_ms")
                .into_iter()
                .map(|(k, v)| {
                    (
                        k.trim_start_matches("quantile=\"")
                            .trim_end_matches('"')
                            .to_owned(),
                        v,
                    )
                })
                .collect(),
        );
    }
    counters
}

fn cpu_report(
    before: &CpuSnapshot,
    after: &CpuSnapshot,
    pids: &[Option<u32>],
    committed: u64,
) -> CpuReport {
    let mut validators = Vec::new();
    for (i, (b, a)) in before.processes.iter().zip(&after.processes).enumerate() {
        let (cpu_s, threads) = match (b, a) {
            (Some((b_total, b_threads)), Some((a_total, a_threads))) => {
                let mut threads: Vec<(String, f64)> = a_threads
                    .iter()
                    .map(|(name, s)| {
                        (
                            name.clone(),
                            s - b_threads.get(name).copied().unwrap_or(0.0),
                        )
                    })
                    .filter(|(_, s)| *s > 0.0)
                    .collect();
                threads.sort_by(|x, y| y.1.total_cmp(&x.1));
                (a_total - b_total, threads)
            }
            _ => (0.0, Vec::new()),
        };
        validators.push(ValidatorCpu {
            name: format!("v{i}"),
            pid: pids.get(i).copied().flatten(),
            cpu_s,
            cpu_s_per_1000: if committed == 0 {
                0.0
            } else {
                cpu_s * 1_000.0 / committed as f64
            },
            threads,
        });
    }
    let machine_busy_percent = match (before.machine, after.machine) {
        (Some((b_busy, b_total)), Some((a_busy, a_total))) if a_total > b_total => {
            (a_busy.saturating_sub(b_busy)) as f64 * 100.0 / (a_total - b_total) as f64
        }
        _ => 0.0,
    };
    CpuReport {
        validators,
        load_generator_s: after.own - before.own,
        machine_busy_percent,
    }
}

fn block_stats(
    shared: &Shared,
    from_us: u64,
    to_us: u64,
    block_txs_max: usize,
    round_max: u64,
) -> BlockStats {
    let tracker = shared.tracker();
    let blocks: Vec<_> = tracker
        .blocks()
        .iter()
        .filter(|b| (from_us..=to_us).contains(&b.at_us))
        .copied()
        .collect();
    let mut intervals: Vec<u64> = blocks
        .windows(2)
        .map(|w| w[1].at_us.saturating_sub(w[0].at_us))
        .collect();
    intervals.sort_unstable();
    let txs: u64 = blocks.iter().map(|b| u64::from(b.txs)).sum();
    BlockStats {
        count: blocks.len() as u64,
        txs_mean: if blocks.is_empty() {
            0.0
        } else {
            txs as f64 / blocks.len() as f64
        },
        txs_max: blocks.iter().map(|b| u64::from(b.txs)).max().unwrap_or(0),
        full: blocks
            .iter()
            .filter(|b| b.txs as usize >= block_txs_max)
            .count() as u64,
        interval_p50_ms: quantile(&intervals, 0.5).unwrap_or(0) as f64 / 1_000.0,
        interval_p99_ms: quantile(&intervals, 0.99).unwrap_or(0) as f64 / 1_000.0,
        round_max,
    }
}

struct Progress {
    stop: Arc<AtomicBool>,
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn progress(
    shared: Arc<Shared>,
    name: String,
    phase: u8,
    from_us: u64,
    every: Duration,
) -> Progress {
    let stop = Arc::new(AtomicBool::new(false));
    let done = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if done.load(Ordering::Relaxed) {
                break;
            }
            let now = shared.now_us();
            let (acc, height) = {
                let t = shared.tracker();
                (
                    t.accounting(Some(phase)),
                    t.heights().last().copied().unwrap_or(0),
                )
            };
            let backlog = shared
                .samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .rev()
                .take(16)
                .map(|s| s.mempool_txs)
                .max()
                .unwrap_or(0);
            eprintln!(
                "dex-load: {name} {:>5.1} s: sent {} admitted {} refused {} committed {} backlog {} height {}",
                now.saturating_sub(from_us) as f64 / 1e6,
                acc.sent,
                acc.admitted,
                acc.refused.values().sum::<u64>(),
                acc.committed,
                backlog,
                height
            );
        }
    });
    Progress { stop }
}

/// Run the load; see the module docs.
pub async fn run(
    options: &RunOptions,
    target: &Target,
    chain: ChainSetup,
) -> Result<Report, LoadError> {
    if target.urls.is_empty() {
        return Err(LoadError::Usage("no validator to load".into()));
    }
    let traders =
        u32::try_from(chain.keys.len()).map_err(|_| LoadError::Usage("too many traders".into()))?;
    let urls: Vec<String> = target
        .urls
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    let loopback = urls.iter().all(|u| is_loopback(u));
    let sources = if loopback {
        usize::from(options.source_ips)
    } else {
        0
    };
    let idle = (options.concurrency / urls.len().max(1) / sources.max(1)).max(4);
    let mut submit = Vec::new();
    for i in 0..sources.max(1) {
        let source = (sources > 0).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 1, (i + 1) as u8)));
        submit.push(http_client(source, options.request_timeout, idle)?);
    }
    let clients = Clients {
        submit,
        read: http_client(None, options.request_timeout, 16)?,
    };
    for url in &urls {
        let view: ChainView = get_json(&clients.read, &format!("{url}/v1/chain")).await?;
        if view.chain_id != chain.chain_id.0 {
            return Err(LoadError::Usage(format!(
                "{url} serves chain {}, the spec is for chain {}",
                view.chain_id, chain.chain_id.0
            )));
        }
    }

    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        tracker: Mutex::new(Tracker::new(traders)),
        blocks: Notify::new(),
        pause_until_us: AtomicU64::new(0),
        samples: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
    let watcher = tokio::spawn(watch_blocks(shared.clone(), urls[0].clone(), connected_tx));
    tokio::time::timeout(Duration::from_secs(10), connected_rx)
        .await
        .map_err(|_| LoadError::Cluster(format!("no block stream from {} within 10 s", urls[0])))?
        .map_err(|_| LoadError::Cluster(format!("the block stream of {} failed", urls[0])))?;
    let sampler = tokio::spawn(sample_nodes(
        shared.clone(),
        clients.read.clone(),
        urls.clone(),
        options.sample_interval,
    ));

    // Every transaction expires well after the run, whatever the drains take.
    let phases_count: u32 = if options.mode == RateMode::MaxThenHalf {
        2
    } else {
        1
    };
    let run_ms =
        (options.duration + options.drain_timeout).as_millis() as u64 * u64::from(phases_count);
    let now_ms = crate::cluster::unix_ms();
    let mut stream = OrderStream::new(StreamConfig {
        seed: options.seed,
        traders,
        chain_id: chain.chain_id,
        markets: chain.markets.clone(),
        mix: options.mix,
        expires_at: TimestampMs(now_ms + run_ms + 600_000),
        // Above any nonce an earlier run of the same traders used (those started from an
        // earlier time).
        nonce_base: now_ms.saturating_mul(1_000),
    })?;

    let plan: Vec<(&str, Option<f64>)> = match options.mode {
        RateMode::Fixed(rate) => vec![("fixed", Some(rate))],
        RateMode::Max => vec![("max", None)],
        RateMode::MaxThenHalf => vec![("max", None), ("half", None)],
    };
    let mut phases = Vec::new();
    let mut gap_blocks = 0;
    for (index, (name, mut rate)) in plan.into_iter().enumerate() {
        let phase = index as u8;
        if name == "half" {
            let max = phases
                .first()
                .map_or(0.0, |p: &PhaseReport| p.committed_per_s);
            rate = Some((max / 2.0).max(1.0));
        }
        let count = match rate {
            Some(r) => (r * options.duration.as_secs_f64() * 1.02) as usize + 100,
            None => options.max_signed,
        };
        let sign_start = Instant::now();
        let planned = stream.take(count);
        let keys = chain.keys.clone();
        let signed = tokio::task::spawn_blocking(move || sign_all(planned, &keys))
            .await
            .map_err(|e| LoadError::Cluster(format!("signing task: {e}")))??;
        let sign_s = sign_start.elapsed().as_secs_f64();
        let txs: Vec<(TxId, PreparedTx)> = {
            let mut tracker = shared.tracker();
            signed
                .into_iter()
                .map(|tx| (tracker.add(tx.hash, tx.trader, tx.kind, phase), tx))
                .collect()
        };
        let signed_count = txs.len() as u64;
        if options.progress.is_some() {
            eprintln!(
                "dex-load: phase {name}: {signed_count} transactions signed in {sign_s:.1} s; sending {}",
                rate.map_or("as fast as possible".to_owned(), |r| format!(
                    "at {r:.0} tx/s"
                ))
            );
        }

        let counters_before = node_counters(&clients.read, &urls).await;
        let cpu_before = CpuSnapshot::take(&target.pids);
        let progress_guard = options.progress.map(|every| {
            progress(
                shared.clone(),
                name.to_owned(),
                phase,
                shared.now_us(),
                every,
            )
        });
        let sent = send_phase(&shared, &clients, &urls, txs, rate, options).await;
        let cpu_after = CpuSnapshot::take(&target.pids);
        let counters_after = node_counters(&clients.read, &urls).await;
        let drain_s = drain(&shared, options.drain_timeout).await;
        drop(progress_guard);
        gap_blocks += fill_gaps(&shared, &clients.read, &urls[0]).await?;
        gap_blocks += resolve_unsettled(&shared, &clients.submit, &urls).await?;

        let window_s = (sent.end_us - sent.start_us) as f64 / 1e6;
        let window_s_nonzero = window_s.max(1e-3);
        let (accounting, committed_in_window, mut latencies, timeline_counts) = {
            let t = shared.tracker();
            let seconds = window_s.ceil() as usize;
            (
                t.accounting(Some(phase)),
                t.committed_between(phase, sent.start_us, sent.end_us),
                t.latencies_us(phase),
                t.timeline(phase, sent.start_us, seconds),
            )
        };
        let samples: Vec<Sample> = shared
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| (sent.start_us..=sent.end_us).contains(&s.at_us))
            .copied()
            .collect();
        let mut per_node_max = vec![0u64; urls.len()];
        let mut per_tick: BTreeMap<u64, u64> = BTreeMap::new();
        let mut round_max = 0;
        let mut peers_min: Vec<Option<u64>> = vec![None; urls.len()];
        for s in &samples {
            let low = peers_min[s.node].get_or_insert(s.peers);
            *low = (*low).min(s.peers);
            per_node_max[s.node] = per_node_max[s.node].max(s.mempool_txs);
            round_max = round_max.max(s.round);
            let tick =
                (s.at_us - sent.start_us) / options.sample_interval.as_micros().max(1) as u64;
            let slot = per_tick.entry(tick).or_default();
            *slot = (*slot).max(s.mempool_txs);
        }
        let backlog = Backlog {
            max: per_node_max.iter().copied().max().unwrap_or(0),
            mean: if per_tick.is_empty() {
                0.0
            } else {
                per_tick.values().sum::<u64>() as f64 / per_tick.len() as f64
            },
            per_node_max,
        };
        let timeline = timeline_counts
            .iter()
            .enumerate()
            .map(|(t, &(sent_n, committed, refused))| Second {
                t: t as u64,
                sent: sent_n,
                committed,
                refused,
                backlog: samples
                    .iter()
                    .filter(|s| (s.at_us - sent.start_us) / 1_000_000 == t as u64)
                    .map(|s| s.mempool_txs)
                    .max()
                    .unwrap_or(0),
            })
            .collect();
        phases.push(PhaseReport {
            name: name.to_owned(),
            rate_per_s: rate,
            signed: signed_count,
            sign_s,
            window_s,
            exhausted: sent.exhausted,
            offered_per_s: accounting.sent as f64 / window_s_nonzero,
            admitted_per_s: accounting.admitted as f64 / window_s_nonzero,
            committed_per_s: committed_in_window as f64 / window_s_nonzero,
            latency: LatencySummary::from_micros(&mut latencies),
            schedule_lag_ms_max: sent.lag_us_max as f64 / 1_000.0,
            trader_waits: sent.trader_waits,
            backlog,
            blocks: block_stats(
                &shared,
                sent.start_us,
                sent.end_us,
                chain.block_txs_max,
                round_max,
            ),
            peers_min: peers_min.into_iter().map(|p| p.unwrap_or(0)).collect(),
            cpu: cpu_report(&cpu_before, &cpu_after, &target.pids, committed_in_window),
            nodes: counter_diff(&counters_before, &counters_after),
            timeline,
            drain_s,
            accounting,
        });
    }
    shared.stop.store(true, Ordering::Relaxed);
    watcher.abort();
    sampler.abort();

    let tracker = shared.tracker();
    let accounting = tracker.accounting(None);
    let duplicates = tracker.duplicates().to_vec();
    let all_known = accounting.all_known(duplicates.len());
    let target_check = (options.mode == RateMode::MaxThenHalf && phases.len() == 2).then(|| {
        let half = &phases[1];
        TargetCheck {
            max_committed_per_s: phases[0].committed_per_s,
            half_rate_per_s: half.rate_per_s.unwrap_or(0.0),
            p50_ms: half.latency.p50_ms,
            p99_ms: half.latency.p99_ms,
            met: half.latency.count > 0
                && half.latency.p50_ms <= 100.0
                && half.latency.p99_ms <= 300.0,
        }
    });
    Ok(Report {
        setup: Setup {
            validators: urls.len(),
            urls: urls.clone(),
            traders,
            seed: options.seed,
            mix: options.mix,
            concurrency: options.concurrency,
            batch: options.batch.clamp(1, dex_sdk::wire::MAX_BATCH_TXS),
            source_ips: sources,
            trader_inflight_max: options.trader_inflight_max,
            block_txs_max: chain.block_txs_max,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
        phases,
        foreign_txs: tracker.foreign_txs(),
        gap_blocks,
        duplicates,
        all_known,
        accounting,
        target: target_check,
    })
}
