//! The run's report: one section per phase and the end-of-run check, as text for people
//! and as JSON (`--json`) for scripts.

use crate::accounting::{Accounting, Duplicate};
use crate::stats::LatencySummary;
use crate::stream::Mix;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// What ran.
    pub setup: Setup,
    /// Each phase, in order.
    pub phases: Vec<PhaseReport>,
    /// The fate of every transaction of the run.
    pub accounting: Accounting,
    /// Transaction hashes found in two blocks.
    pub duplicates: Vec<Duplicate>,
    /// Committed transactions this run did not send.
    pub foreign_txs: u64,
    /// Blocks fetched over HTTP because the stream skipped them.
    pub gap_blocks: u64,
    /// Whether every sent transaction ended in a known state, none twice.
    pub all_known: bool,
    /// The latency target at half of the maximum rate, when that mode ran.
    pub target: Option<TargetCheck>,
}

/// What ran.
#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    /// Validators loaded.
    pub validators: usize,
    /// Their API URLs.
    pub urls: Vec<String>,
    /// Traders signing.
    pub traders: u32,
    /// The stream's seed.
    pub seed: u64,
    /// The stream's mix, percent.
    pub mix: Mix,
    /// Most requests in flight.
    pub concurrency: usize,
    /// Most transactions per submission request (1: each on its own).
    pub batch: usize,
    /// Loopback source addresses the requests come from.
    pub source_ips: usize,
    /// Most transactions of one trader in flight.
    pub trader_inflight_max: u32,
    /// Most transactions in a block (the chain's setting).
    pub block_txs_max: usize,
    /// CPU cores of the machine.
    pub cores: usize,
}

/// The check against the target: p50 ≤ 100 ms and p99 ≤ 300 ms at half of the
/// maximum rate.
#[derive(Clone, Debug, Serialize)]
pub struct TargetCheck {
    /// The maximum committed rate found.
    pub max_committed_per_s: f64,
    /// The rate of the second phase.
    pub half_rate_per_s: f64,
    /// Its p50, ms.
    pub p50_ms: f64,
    /// Its p99, ms.
    pub p99_ms: f64,
    /// Whether both hold.
    pub met: bool,
}

/// One phase.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    /// Its name (`max`, `half`, `fixed`).
    pub name: String,
    /// The asked rate, or `None` for as fast as possible.
    pub rate_per_s: Option<f64>,
    /// Transactions signed for it before it started.
    pub signed: u64,
    /// Seconds the signing took.
    pub sign_s: f64,
    /// Seconds of submission (the measurement window).
    pub window_s: f64,
    /// Whether it ran out of signed transactions before the window ended.
    pub exhausted: bool,
    /// Requests sent per second.
    pub offered_per_s: f64,
    /// Admissions per second.
    pub admitted_per_s: f64,
    /// Transactions of this phase committed per second, within the window.
    pub committed_per_s: f64,
    /// Submit-to-commit latency of its committed transactions.
    pub latency: LatencySummary,
    /// Its transactions' fates.
    pub accounting: Accounting,
    /// Largest lag of a send behind its schedule, ms (fixed rates only).
    pub schedule_lag_ms_max: f64,
    /// Sends that waited because their trader had the most transactions in flight.
    pub trader_waits: u64,
    /// Mempool backlog during the window.
    pub backlog: Backlog,
    /// Blocks that arrived during the window.
    pub blocks: BlockStats,
    /// Fewest peers each validator reported during the window (`dex_peers`; a drop means
    /// connections were lost or peers banned).
    pub peers_min: Vec<u64>,
    /// CPU during the window.
    pub cpu: CpuReport,
    /// What the nodes counted during the window.
    pub nodes: NodeCounters,
    /// Per second: sent, committed, refused, largest backlog.
    pub timeline: Vec<Second>,
    /// Seconds from the end of the window until every admitted transaction committed.
    pub drain_s: f64,
}

/// The mempool backlog, from the nodes' `dex_mempool_txs`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Backlog {
    /// Largest of any node.
    pub max: u64,
    /// Mean over samples of the largest node.
    pub mean: f64,
    /// Largest per node.
    pub per_node_max: Vec<u64>,
}

/// Blocks during the window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BlockStats {
    /// How many.
    pub count: u64,
    /// Mean transactions per block.
    pub txs_mean: f64,
    /// Most transactions in one.
    pub txs_max: u64,
    /// Blocks at the chain's transaction limit.
    pub full: u64,
    /// Time between blocks arriving: median, ms.
    pub interval_p50_ms: f64,
    /// 99th percentile, ms.
    pub interval_p99_ms: f64,
    /// Highest consensus round any node reported (0: every height decided in its first
    /// round).
    pub round_max: u64,
}

/// CPU during the window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CpuReport {
    /// Per validator.
    pub validators: Vec<ValidatorCpu>,
    /// CPU seconds of the load generator itself.
    pub load_generator_s: f64,
    /// Share of the machine's CPU that was busy, percent.
    pub machine_busy_percent: f64,
}

/// One validator's CPU.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ValidatorCpu {
    /// Its name.
    pub name: String,
    /// Its process id, when known.
    pub pid: Option<u32>,
    /// CPU seconds in the window.
    pub cpu_s: f64,
    /// CPU seconds per 1,000 committed transactions.
    pub cpu_s_per_1000: f64,
    /// CPU seconds by thread group, largest first.
    pub threads: Vec<(String, f64)>,
}

/// What the nodes counted in the window (differences of their counters).
#[derive(Clone, Debug, Default, Serialize)]
pub struct NodeCounters {
    /// `dex_rejected_messages_total` by reason, all nodes.
    pub rejected_messages: BTreeMap<String, u64>,
    /// `dex_api_rate_limited_total`, all nodes.
    pub rate_limited: u64,
    /// `dex_commit_latency_ms` quantiles of each node at the end of the window.
    pub commit_latency_ms: Vec<BTreeMap<String, f64>>,
}

/// One second of a phase.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Second {
    /// Seconds since the phase began.
    pub t: u64,
    /// Requests sent.
    pub sent: u64,
    /// Transactions of the phase committed.
    pub committed: u64,
    /// Requests refused.
    pub refused: u64,
    /// Largest backlog of any node sampled in that second.
    pub backlog: u64,
}

fn codes(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    let mut items: Vec<_> = map.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    items
        .iter()
        .map(|(code, n)| format!("{code} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let s = &self.setup;
        let _ = writeln!(
            out,
            "dex-load: {} validators, {} traders, seed {}, mix rest/cross/ioc/cancel {}/{}/{}/{} %, concurrency {}, batch {}, {} source addresses, {} cores",
            s.validators,
            s.traders,
            s.seed,
            s.mix.rest,
            s.mix.cross,
            s.mix.ioc,
            s.mix.cancel,
            s.concurrency,
            s.batch,
            s.source_ips.max(1),
            s.cores
        );
        for p in &self.phases {
            let rate = p
                .rate_per_s
                .map_or("as fast as possible".to_owned(), |r| format!("{r:.0} tx/s"));
            let _ = writeln!(
                out,
                "\nphase {} ({rate}, {:.1} s; {} signed in {:.1} s before it started{})",
                p.name,
                p.window_s,
                p.signed,
                p.sign_s,
                if p.exhausted {
                    "; ran out of signed transactions"
                } else {
                    ""
                }
            );
            let a = &p.accounting;
            let _ = writeln!(
                out,
                "  offered    {:>9.0} tx/s  ({} sent, {} admitted, {} refused)",
                p.offered_per_s,
                a.sent,
                a.admitted,
                a.refused.values().sum::<u64>()
            );
            let _ = writeln!(
                out,
                "  committed  {:>9.0} tx/s  within the window ({} committed in all: {} applied, {} rejected by the ledger)",
                p.committed_per_s,
                a.committed,
                a.committed_ok,
                a.committed_rejected.values().sum::<u64>()
            );
            let l = &p.latency;
            let _ = writeln!(
                out,
                "  latency    p50 {:.0} ms  p99 {:.0} ms  p99.9 {:.0} ms  max {:.0} ms  mean {:.0} ms  (submit to commit, {} orders)",
                l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms, l.count
            );
            let _ = writeln!(out, "  refusals   {}", codes(&a.refused));
            let _ = writeln!(out, "  rejected   {}", codes(&a.committed_rejected));
            let _ = writeln!(
                out,
                "  backlog    max {} txs, mean {:.0} (per node max {:?}); drained {:.1} s after the window",
                p.backlog.max, p.backlog.mean, p.backlog.per_node_max, p.drain_s
            );
            let b = &p.blocks;
            let _ = writeln!(
                out,
                "  blocks     {} in the window, {:.0} txs mean, {} max, {} full; interval p50 {:.0} ms p99 {:.0} ms; highest round {}",
                b.count,
                b.txs_mean,
                b.txs_max,
                b.full,
                b.interval_p50_ms,
                b.interval_p99_ms,
                b.round_max
            );
            let c = &p.cpu;
            let _ = writeln!(
                out,
                "  cpu        machine {:.0} % busy; load generator {:.1} s",
                c.machine_busy_percent, c.load_generator_s
            );
            for v in &c.validators {
                let top: Vec<String> = v
                    .threads
                    .iter()
                    .take(5)
                    .map(|(name, s)| format!("{name} {s:.1}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "    {:<4} {:>6.1} s = {:.3} s per 1000 committed  [{}]",
                    v.name,
                    v.cpu_s,
                    v.cpu_s_per_1000,
                    top.join(", ")
                );
            }
            let _ = writeln!(
                out,
                "  nodes      fewest peers {:?}; rejected messages: {}; API rate-limited: {}",
                p.peers_min,
                codes(&p.nodes.rejected_messages),
                p.nodes.rate_limited
            );
            if p.trader_waits > 0 || p.schedule_lag_ms_max > 0.0 {
                let _ = writeln!(
                    out,
                    "  sender     largest lag behind schedule {:.0} ms; {} sends waited for their trader's window",
                    p.schedule_lag_ms_max, p.trader_waits
                );
            }
            let line: Vec<String> = p
                .timeline
                .iter()
                .map(|s| format!("{}/{}/{}", s.sent, s.committed, s.backlog))
                .collect();
            let _ = writeln!(
                out,
                "  per second (sent/committed/backlog): {}",
                line.join(" ")
            );
        }
        let a = &self.accounting;
        let _ = writeln!(
            out,
            "\naccounting: {} sent: {} committed ({} applied), {} refused, {} dropped after admission; lost {}, stuck {}, unanswered {}, refused-but-committed {}, duplicates {}; {} foreign txs; {} blocks fetched to fill gaps",
            a.sent,
            a.committed,
            a.committed_ok,
            a.refused.values().sum::<u64>(),
            a.dropped.values().sum::<u64>(),
            a.lost,
            a.stuck,
            a.unanswered,
            a.refused_but_committed,
            self.duplicates.len(),
            self.foreign_txs,
            self.gap_blocks
        );
        let _ = writeln!(
            out,
            "every order in a known state: {}",
            if self.all_known { "yes" } else { "NO" }
        );
        if let Some(t) = &self.target {
            let _ = writeln!(
                out,
                "target at half of the max rate ({:.0} of {:.0} tx/s): p50 {:.0} ms (≤ 100), p99 {:.0} ms (≤ 300): {}",
                t.half_rate_per_s,
                t.max_committed_per_s,
                t.p50_ms,
                t.p99_ms,
                if t.met { "met" } else { "NOT met" }
            );
        }
        out
    }
}
