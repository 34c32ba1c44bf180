//! Shared helpers of the cluster tests: a chain of real `dexd` validator processes on
//! loopback, their HTTP API, and a workload of signed orders.
//!
//! Every wait here is bounded twice, by a deadline and by a count of polls, so a broken
//! node makes a test fail with its logs instead of hanging CI. Every child process is
//! SIGKILLed when its [`Cluster`] is dropped, also while a failing test unwinds, so none
//! outlives the test.

use dex_api::wire::{BlockView, ChainView, SubmitRequest, TxState, TxStatusView};
use dex_node::ChainSpec;
use dex_node::devnet::{self, InitOptions};
use dex_sdk::TraderKey;
use dex_types::{
    Action, BatchLeg, ClientOrderId, Market, MarketId, OrderBatch, Side, SignedTransaction,
    TimestampMs, Transaction,
};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One HTTP request's timeout (a submission waits for its commit inside it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(100);
/// Log lines printed per validator when a test fails.
const LOG_TAIL_LINES: usize = 60;

/// Wall-clock milliseconds since the Unix epoch (block times are wall-clock times).
pub fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_millis(),
    )
    .expect("milliseconds fit in u64")
}

/// The runtime every scenario runs on: two workers, as many as the machine has cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The number of polls of `POLL` that fit in `timeout`, plus one: the count bound of a
/// wait whose time bound is `timeout`.
pub fn polls(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis() / POLL.as_millis()).unwrap_or(u32::MAX) + 1
}

/// A block of `count` consecutive free TCP ports on 127.0.0.1.
///
/// `dexd init` gives validator `i` the port `base + i`, so the ports must be consecutive;
/// asking the OS for port 0 gives one port at a time, from the ephemeral range, where the
/// outgoing connections of the running validators may take it again before a validator
/// binds it. So candidates are walked below the ephemeral range, from a start that
/// differs per process, and a block counts as free when every port in it binds.
fn free_port_block(count: u16) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000; // below Linux's default ephemeral range (32768..)
    let seed = u16::try_from(std::process::id() % u32::from(SPAN)).expect("bug: below SPAN");
    for _ in 0..500 {
        let step = NEXT.fetch_add(count + 1, Ordering::Relaxed);
        let base = LOW + (seed.wrapping_add(step) % (SPAN - count - 1));
        let listeners: Vec<TcpListener> = (0..count)
            .map_while(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, base + i)).ok())
            .collect();
        if listeners.len() == usize::from(count) {
            return base;
        }
    }
    panic!("no block of {count} free ports on 127.0.0.1 after 500 tries");
}

/// A chain of validator processes (`dexd start`) in a temporary directory.
pub struct Cluster {
    dir: tempfile::TempDir,
    /// The chain spec `dexd init` wrote.
    pub spec: ChainSpec,
    /// Each validator's API base URL.
    pub urls: Vec<String>,
    children: Vec<Option<Child>>,
    starts: Vec<u32>,
    http: reqwest::Client,
}

impl Cluster {
    /// Write a chain of `validators` validators and `traders` funded traders (`dexd
    /// init`), start every validator and wait until each API answers.
    pub async fn start(validators: usize, traders: usize) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("dex-cluster-")
            .tempdir()
            .expect("a temporary directory");
        let count = u16::try_from(validators).expect("a few validators");
        let p2p_base_port = free_port_block(count);
        let api_base_port = free_port_block(count);
        let spec = devnet::init(&InitOptions {
            dir: dir.path().to_owned(),
            validators,
            chain_id: 7,
            p2p_base_port,
            api_base_port,
            traders,
            genesis_time_ms: now_ms(),
        })
        .expect("dexd init");
        let urls = (0..validators)
            .map(|i| {
                let config = dex_node::NodeConfig::load(&devnet::node_config_path(dir.path(), i))
                    .expect("node.json");
                format!("http://{}", config.api_listen)
            })
            .collect();
        let mut cluster = Cluster {
            dir,
            spec,
            urls,
            children: (0..validators).map(|_| None).collect(),
            starts: vec![0; validators],
            http: http_client(None),
        };
        for i in 0..validators {
            cluster.spawn(i);
        }
        for i in 0..validators {
            cluster.wait_ready(i).await;
        }
        cluster
    }

    /// Start validator `i`'s process (`dexd start --config v<i>/node.json`), its output
    /// appended to `v<i>/node.log`.
    pub fn spawn(&mut self, i: usize) {
        assert!(self.children[i].is_none(), "v{i} is already running");
        self.starts[i] += 1;
        let path = self.log_path(i);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("the node log");
        writeln!(
            log,
            "===== test harness: start #{} of v{i} =====",
            self.starts[i]
        )
        .expect("writing the node log");
        let child = Command::new(env!("CARGO_BIN_EXE_dexd"))
            .arg("start")
            .arg("--config")
            .arg(devnet::node_config_path(self.dir.path(), i))
            // `DEX_CLUSTER_LOG` sets the validators' log filter (to debug a failure).
            .env(
                "RUST_LOG",
                std::env::var("DEX_CLUSTER_LOG")
                    .unwrap_or_else(|_| "info,libp2p_gossipsub=warn,libp2p_swarm=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the node log"))
            .stderr(log)
            .spawn()
            .expect("starting dexd");
        self.children[i] = Some(child);
    }

    /// SIGKILL validator `i` and reap it.
    pub fn kill(&mut self, i: usize) {
        let mut child = self.children[i].take().expect("the validator is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaping the validator");
    }

    /// Whether every validator that should run still runs; panics with its log if one
    /// exited.
    pub fn check_alive(&mut self) {
        for i in 0..self.children.len() {
            if let Some(child) = self.children[i].as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "validator v{i} exited on its own ({status}); its log ends with:\n{}",
                    self.log_tail(i)
                );
            }
        }
    }

    /// Wait until validator `i`'s API answers (at most 60 s).
    pub async fn wait_ready(&mut self, i: usize) {
        let timeout = Duration::from_secs(60);
        let deadline = Instant::now() + timeout;
        for _ in 0..polls(timeout) {
            self.check_alive();
            if get_json::<ChainView>(&self.http, &format!("{}/v1/chain", self.urls[i]))
                .await
                .is_ok()
            {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!(
            "v{i}'s API did not answer within {timeout:?}; its log ends with:\n{}",
            self.log_tail(i)
        );
    }

    /// Where validator `i` logs.
    pub fn log_path(&self, i: usize) -> PathBuf {
        devnet::validator_home(self.dir.path(), i).join("node.log")
    }

    /// The last lines of validator `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        let Ok(file) = std::fs::File::open(self.log_path(i)) else {
            return "(no log)".to_owned();
        };
        let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        lines[from..].join("\n")
    }

    /// The height validator `i` reported at its latest start ("node started at height N").
    pub fn started_at_height(&self, i: usize) -> Option<u64> {
        let text = std::fs::read_to_string(self.log_path(i)).ok()?;
        let line = text
            .lines()
            .rev()
            .find(|line| line.starts_with("node started at height "))?;
        line.trim_start_matches("node started at height ")
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Trader `t`'s key (1-based, as `dexd init` numbers them).
    pub fn trader(&self, t: usize) -> TraderKey {
        TraderKey::load(&devnet::trader_key_path(self.dir.path(), t)).expect("a trader key")
    }

    /// The harness's own HTTP client (reads, from 127.0.0.1).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Validator `i`'s metrics.
    pub async fn metrics(&self, i: usize) -> Result<Metrics, String> {
        let text = self
            .http
            .get(format!("{}/metrics", self.urls[i]))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        Ok(Metrics::parse(&text))
    }

    /// Validator `i`'s committed height (its `dex_height` gauge).
    pub async fn height(&self, i: usize) -> Option<u64> {
        self.metrics(i).await.ok().map(|m| m.get("dex_height"))
    }

    /// Validator `i`'s committed block at `height`, if it serves it.
    /// Block `height` from validator `i`'s API, waiting up to two seconds for it: the API
    /// indexes a block just after the consensus thread commits it (and `dex_height` moves),
    /// so a block committed a moment ago may not be served yet.
    pub async fn block(&self, i: usize, height: u64) -> Option<BlockView> {
        let url = format!("{}/v1/blocks/{height}", self.urls[i]);
        let timeout = Duration::from_secs(2);
        for _ in 0..polls(timeout) {
            if let Ok(block) = get_json(&self.http, &url).await {
                return Some(block);
            }
            tokio::time::sleep(POLL).await;
        }
        None
    }

    /// Wait until every validator in `nodes` has committed `height` (at most `timeout`).
    pub async fn wait_height(&mut self, nodes: &[usize], height: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = Vec::new();
        for _ in 0..polls(timeout) {
            self.check_alive();
            last.clear();
            for &i in nodes {
                let metrics = self.metrics(i).await.ok();
                last.push(metrics.map(|m| (m.get("dex_height"), m.get("dex_round"))));
            }
            if last.iter().all(|m| m.is_some_and(|(h, _)| h >= height)) {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!(
            "validators {nodes:?} did not all reach height {height} within {timeout:?} (height and round of each: {last:?})"
        );
    }

    /// Wait until every validator in `nodes` reports `peers` connected peers on ten polls
    /// in a row (a peer that is dropped and redialled every second does not pass).
    pub async fn wait_connected(&mut self, nodes: &[usize], peers: u64, timeout: Duration) {
        const STEADY_POLLS: u32 = 10;
        let deadline = Instant::now() + timeout;
        let mut steady = 0;
        let mut last = Vec::new();
        for _ in 0..polls(timeout) {
            self.check_alive();
            last.clear();
            for &i in nodes {
                let metrics = self.metrics(i).await.ok();
                last.push(metrics.map(|m| m.get("dex_peers")));
            }
            if last.iter().all(|p| *p == Some(peers)) {
                steady += 1;
                if steady >= STEADY_POLLS {
                    return;
                }
            } else {
                steady = 0;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!(
            "validators {nodes:?} did not stay connected to {peers} peers each for {STEADY_POLLS} polls within {timeout:?} (last: {last:?})"
        );
    }

    /// The lowest height among `nodes`.
    pub async fn min_height(&self, nodes: &[usize]) -> u64 {
        let mut min = u64::MAX;
        for &i in nodes {
            let height = self
                .height(i)
                .await
                .unwrap_or_else(|| panic!("v{i} does not answer /metrics"));
            min = min.min(height);
        }
        min
    }

    /// The highest height among `nodes`.
    pub async fn max_height(&self, nodes: &[usize]) -> u64 {
        let mut max = 0;
        for &i in nodes {
            let height = self
                .height(i)
                .await
                .unwrap_or_else(|| panic!("v{i} does not answer /metrics"));
            max = max.max(height);
        }
        max
    }

    /// Check that every validator in `nodes` serves the same block (hash, parent, state,
    /// transaction and fills roots) at every height in `heights`; returns the blocks of
    /// the first node, in height order.
    pub async fn assert_same_blocks(
        &self,
        nodes: &[usize],
        heights: std::ops::RangeInclusive<u64>,
    ) -> Vec<BlockView> {
        let mut blocks = Vec::new();
        for height in heights {
            let mut first: Option<BlockView> = None;
            for &i in nodes {
                let block = self
                    .block(i, height)
                    .await
                    .unwrap_or_else(|| panic!("v{i} does not serve block {height}"));
                assert_eq!(block.header.height, height, "v{i} served another height");
                match &first {
                    None => first = Some(block),
                    Some(reference) => {
                        let (a, b) = (&reference.header, &block.header);
                        assert_eq!(
                            (&a.hash, &a.parent_hash, &a.state_root),
                            (&b.hash, &b.parent_hash, &b.state_root),
                            "v{} and v{i} disagree on block {height} (hash, parent, state root)",
                            nodes[0]
                        );
                        assert_eq!(
                            (&a.txs_root, &a.fills_root),
                            (&b.txs_root, &b.fills_root),
                            "v{} and v{i} disagree on block {height}'s roots",
                            nodes[0]
                        );
                    }
                }
            }
            blocks.push(first.expect("at least one node"));
        }
        blocks
    }

    /// Print every validator's log tail (for a failing test).
    fn print_logs(&self) {
        for i in 0..self.children.len() {
            eprintln!(
                "----- v{i}: last lines of {} -----\n{}",
                self.log_path(i).display(),
                self.log_tail(i)
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let keep = std::env::var("DEX_CLUSTER_KEEP").ok();
        if std::thread::panicking() {
            self.print_logs();
        }
        // For a person debugging: keep the whole chain directory after a failure
        // (`DEX_CLUSTER_KEEP=1`) or always (`DEX_CLUSTER_KEEP=always`).
        if keep.as_deref() == Some("always") || (keep.is_some() && std::thread::panicking()) {
            let kept = std::mem::replace(
                &mut self.dir,
                tempfile::tempdir().expect("a temporary directory"),
            )
            .keep();
            eprintln!("kept the chain directory {}", kept.display());
        }
    }
}

/// A reqwest client, optionally bound to a local (loopback) source address.
pub fn http_client(source: Option<IpAddr>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
    if let Some(source) = source {
        builder = builder.local_address(source);
    }
    builder.build().expect("an HTTP client")
}

/// GET `url` as JSON; any failure or non-success status is an error.
pub async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!("GET {url}: {status}: {body}"));
    }
    response.json().await.map_err(|e| e.to_string())
}

/// A node's metrics by name (labels included), from the Prometheus text.
#[derive(Clone, Debug, Default)]
pub struct Metrics(BTreeMap<String, u64>);

impl Metrics {
    fn parse(text: &str) -> Metrics {
        Metrics(
            text.lines()
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| {
                    let (name, value) = line.rsplit_once(' ')?;
                    Some((name.to_owned(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// A metric's value (0 if absent).
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// `dex_rejected_messages_total` for one reason.
    pub fn rejected(&self, reason: &str) -> u64 {
        self.get(&format!(
            "dex_rejected_messages_total{{reason=\"{reason}\"}}"
        ))
    }
}

/// Submit `signed` to `url` and wait until it is committed; returns the committed status.
///
/// Rate limiting (429) and saturation (503) are waited out and the same bytes sent again;
/// a submission whose commit wait timed out, or that the node already holds, is polled.
/// Bounded by `deadline` and by a count of attempts.
pub async fn submit_until_committed(
    http: &reqwest::Client,
    url: &str,
    signed: &SignedTransaction,
    deadline: Instant,
) -> Result<TxStatusView, String> {
    let hash = signed.hash().to_hex();
    let request = SubmitRequest {
        tx: hex::encode(signed.encode()),
        wait_for_commit: true,
        wait_timeout_ms: Some(15_000),
    };
    let mut last_error = String::new();
    for _ in 0..2_000 {
        if Instant::now() >= deadline {
            break;
        }
        let sent = http
            .post(format!("{url}/v1/txs"))
            .json(&request)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                // The request may have landed before the connection failed.
                last_error = error.to_string();
                match tx_status(http, url, &hash).await {
                    Ok(status) if status.state != TxState::Unknown => {
                        return wait_committed(http, url, &hash, deadline).await;
                    }
                    _ => {
                        tokio::time::sleep(POLL).await;
                        continue;
                    }
                }
            }
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        match status {
            200 | 202 => {
                let view: TxStatusView = serde_json::from_str(&body)
                    .map_err(|e| format!("a status that does not parse ({e}): {body}"))?;
                if view.state == TxState::Committed {
                    return Ok(view);
                }
                return wait_committed(http, url, &hash, deadline).await;
            }
            409 if body.contains("already_pending") => {
                return wait_committed(http, url, &hash, deadline).await;
            }
            429 | 503 => {
                last_error = format!("{status}: {body}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => {
                // An earlier attempt whose answer was lost may have used the nonce.
                if let Ok(view) = tx_status(http, url, &hash).await
                    && view.state != TxState::Unknown
                {
                    return wait_committed(http, url, &hash, deadline).await;
                }
                return Err(format!("submission of {hash} refused: {status}: {body}"));
            }
        }
    }
    Err(format!(
        "{hash} was not committed in time (last error: {last_error})"
    ))
}

/// GET `/v1/txs/{hash}`.
pub async fn tx_status(
    http: &reqwest::Client,
    url: &str,
    hash: &str,
) -> Result<TxStatusView, String> {
    get_json(http, &format!("{url}/v1/txs/{hash}")).await
}

/// Poll a known transaction until it is committed (bounded by `deadline` and a count).
pub async fn wait_committed(
    http: &reqwest::Client,
    url: &str,
    hash: &str,
    deadline: Instant,
) -> Result<TxStatusView, String> {
    let mut last = String::new();
    for _ in 0..2_000 {
        match tx_status(http, url, hash).await {
            Ok(view) if view.state == TxState::Committed => return Ok(view),
            Ok(view) => last = format!("{:?}", view.state),
            Err(error) => last = error,
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    Err(format!(
        "{hash} was not committed in time (last seen: {last})"
    ))
}

/// Signed limit orders for one trader: `count` good-til-cancel orders on one side of one
/// market, with nonces `first_nonce..`, prices spread over ±`spread_ticks` ticks around
/// `reference` so that buyers and sellers of the same market cross in part.
pub struct OrderPlan<'a> {
    /// The trader.
    pub key: &'a TraderKey,
    /// The chain.
    pub chain_id: dex_types::ChainId,
    /// The market.
    pub market: &'a Market,
    /// Buy or sell.
    pub side: Side,
    /// The reference price.
    pub reference: Decimal,
    /// Orders to sign.
    pub count: u64,
    /// The first nonce.
    pub first_nonce: u64,
    /// The transactions' expiry.
    pub expires_at: TimestampMs,
}

impl OrderPlan<'_> {
    /// Sign the orders, in nonce order.
    pub fn sign(&self) -> Vec<SignedTransaction> {
        let market_id: MarketId = self.market.id();
        let tick = self.market.spec().tick_size;
        let lot = self.market.spec().lot_size;
        (0..self.count)
            .map(|k| {
                let nonce = self.first_nonce + k;
                // A spread of 26 ticks per side: a buyer bids from 20 ticks under to 5
                // over the reference, a seller asks from 5 under to 20 over, so about
                // one order in five can cross when it arrives.
                let offset = i64::try_from((nonce * 7) % 26).expect("small") - 5;
                let signed_offset = match self.side {
                    Side::Buy => -offset,
                    Side::Sell => offset,
                };
                let price = self.reference + tick * Decimal::from(signed_offset);
                let size = lot * Decimal::from(100 + (nonce * 13) % 400);
                let order = dex_sdk::OrderParams::limit(market_id, self.side, price, size)
                    .to_request(self.market, Some(ClientOrderId(nonce)))
                    .expect("prices and sizes on the market's grid");
                let tx = Transaction {
                    chain_id: self.chain_id,
                    account: self.key.account(),
                    signer: self.key.signer(),
                    nonce,
                    expires_at: self.expires_at,
                    action: Action::Batch(OrderBatch {
                        legs: vec![BatchLeg::Place(order)],
                        atomic: true,
                    }),
                };
                self.key.sign(tx).expect("signing")
            })
            .collect()
    }
}

/// The chain's markets, read from a node.
pub async fn markets(cluster: &Cluster) -> BTreeMap<MarketId, Market> {
    let chain: ChainView = get_json(cluster.http(), &format!("{}/v1/chain", cluster.urls[0]))
        .await
        .expect("the chain view");
    dex_sdk::markets_of(&chain).expect("valid markets")
}
