//! What a run found, and the summary of a sweep of runs.

use crate::checker::Violation;
use crate::network::NetStats;
use crate::scenario::{FaultMix, Scenario};
use dex_types::Hash;
use std::fmt;

/// Faults injected (and their visible effects) in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    /// Node crashes (any kind).
    pub crashes: u64,
    /// Of which in the middle of a step, at a crash point.
    pub mid_step_crashes: u64,
    /// Restarts from disk.
    pub restarts: u64,
    /// Partitions formed.
    pub partitions: u64,
    /// Slow nodes.
    pub slow_nodes: u64,
    /// Messages forged by Byzantine validators.
    pub forged_messages: u64,
    /// Equivocation evidence recorded by replicas.
    pub evidence: u64,
}

impl FaultCounts {
    fn add(&mut self, other: &FaultCounts) {
        self.crashes += other.crashes;
        self.mid_step_crashes += other.mid_step_crashes;
        self.restarts += other.restarts;
        self.partitions += other.partitions;
        self.slow_nodes += other.slow_nodes;
        self.forged_messages += other.forged_messages;
        self.evidence += other.evidence;
    }
}

/// Commit latency per height: from the first honest validator entering round 0 of the
/// height to the first honest commit of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LatencySummary {
    /// Every height's latency, sorted.
    pub sorted_ms: Vec<u64>,
    /// The mean one-way message delay of the run's network (the unit of "delays").
    pub delay_ms: u64,
}

impl LatencySummary {
    /// The summary of sorted latencies, with the network's mean message delay.
    pub fn of(sorted_ms: &[u64], delay_ms: u64) -> LatencySummary {
        LatencySummary {
            sorted_ms: sorted_ms.to_vec(),
            delay_ms,
        }
    }

    /// Heights measured.
    pub fn heights(&self) -> usize {
        self.sorted_ms.len()
    }

    /// The `per_mille` quantile (nearest rank), 0 when empty.
    pub fn quantile_ms(&self, per_mille: u64) -> u64 {
        quantile(&self.sorted_ms, per_mille)
    }

    /// The mean, 0 when empty.
    pub fn mean_ms(&self) -> u64 {
        mean(&self.sorted_ms)
    }
}

fn quantile(sorted: &[u64], per_mille: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() as u64 * per_mille).div_ceil(1_000).max(1);
    sorted[usize::try_from(rank - 1).expect("bug: rank fits usize")]
}

fn mean(values: &[u64]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.iter().sum::<u64>() / values.len() as u64
}

/// `ms` in message delays of `delay_ms`, with one decimal.
pub fn in_delays(ms: u64, delay_ms: u64) -> String {
    let tenths = ms * 10 / delay_ms.max(1);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Everything one run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// What was run.
    pub scenario: Scenario,
    /// The lowest committed height among honest validators at the end.
    pub honest_head_min: u64,
    /// The highest.
    pub honest_head_max: u64,
    /// Commit latency per height.
    pub latency: LatencySummary,
    /// Faults injected.
    pub faults: FaultCounts,
    /// Network counters.
    pub net: NetStats,
    /// Transactions the traders signed.
    pub txs_signed: u64,
    /// Transactions in committed blocks (seen by one honest validator).
    pub txs_committed: u64,
    /// Checks run.
    pub checks: u64,
    /// The first violations found.
    pub violations: Vec<Violation>,
    /// All violations found.
    pub violation_count: u64,
    /// Byzantine validators and what they did.
    pub byzantine: Vec<(u32, String)>,
    /// Simulated time at the end.
    pub end_ms: u64,
    /// Events processed.
    pub events: u64,
    /// A hash over every node's history: equal for equal seeds, bit for bit.
    pub final_hash: Hash,
}

impl Report {
    /// Whether no property failed.
    pub fn passed(&self) -> bool {
        self.violation_count == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.scenario;
        writeln!(
            f,
            "seed {} mix={} n={}{}: heights {}..{}, {} ms simulated, {} events, {} checks, {} txs signed / {} committed, final hash {}",
            s.seed,
            s.mix,
            s.validators,
            if s.broken_lock {
                " (broken lock)"
            } else if s.wipe_wal_on_restart {
                " (log wiped at restarts)"
            } else {
                ""
            },
            self.honest_head_min,
            self.honest_head_max,
            self.end_ms,
            self.events,
            self.checks,
            self.txs_signed,
            self.txs_committed,
            self.final_hash
        )?;
        if !self.byzantine.is_empty() {
            let list: Vec<String> = self
                .byzantine
                .iter()
                .map(|(v, what)| format!("{v}:{what}"))
                .collect();
            writeln!(f, "  byzantine validators: {}", list.join(", "))?;
        }
        for violation in &self.violations {
            writeln!(f, "  VIOLATION {violation}")?;
        }
        if self.violation_count > self.violations.len() as u64 {
            writeln!(f, "  ... {} violations in all", self.violation_count)?;
        }
        Ok(())
    }
}

/// The summary of many runs of one mix.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    /// The runs' reports.
    pub reports: Vec<Report>,
}

impl Sweep {
    /// Add a run.
    pub fn push(&mut self, report: Report) {
        self.reports.push(report);
    }

    /// Runs with a violation.
    pub fn failed(&self) -> Vec<&Report> {
        self.reports.iter().filter(|r| !r.passed()).collect()
    }

    /// Write the summary (one block per mix and validator count).
    pub fn summary(&self) -> String {
        let mut groups: Vec<(FaultMix, usize, bool)> = self
            .reports
            .iter()
            .map(|r| {
                (
                    r.scenario.mix,
                    r.scenario.validators,
                    r.scenario.is_self_test(),
                )
            })
            .collect();
        groups.sort();
        groups.dedup();
        let mut out = String::new();
        for (mix, n, broken) in groups {
            let runs: Vec<&Report> = self
                .reports
                .iter()
                .filter(|r| {
                    r.scenario.mix == mix
                        && r.scenario.validators == n
                        && r.scenario.is_self_test() == broken
                })
                .collect();
            out.push_str(&summarize(mix, n, broken, &runs));
        }
        out
    }
}

fn summarize(mix: FaultMix, n: usize, broken: bool, runs: &[&Report]) -> String {
    let mut latencies: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.latency.sorted_ms.iter().copied())
        .collect();
    latencies.sort_unstable();
    let delay = mean(&runs.iter().map(|r| r.latency.delay_ms).collect::<Vec<_>>()).max(1);
    let heads: Vec<u64> = runs.iter().map(|r| r.honest_head_min).collect();
    let mut faults = FaultCounts::default();
    let mut net = NetStats::default();
    for r in runs {
        faults.add(&r.faults);
        net.sent += r.net.sent;
        net.lost += r.net.lost;
        net.partitioned += r.net.partitioned;
        net.duplicated += r.net.duplicated;
        net.reordered += r.net.reordered;
        net.to_down_node += r.net.to_down_node;
    }
    let failed: Vec<&&Report> = runs.iter().filter(|r| !r.passed()).collect();
    let violations: u64 = runs.iter().map(|r| r.violation_count).sum();
    let mut kinds: Vec<&'static str> = failed
        .iter()
        .flat_map(|r| r.violations.iter().map(Violation::kind))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut out = format!(
        "mix={mix} n={n}{}: {} runs, {} passed, {} failed\n",
        if broken {
            " SELF-TEST (broken on purpose)"
        } else {
            ""
        },
        runs.len(),
        runs.len() - failed.len(),
        failed.len()
    );
    out.push_str(&format!(
        "  heights committed: {} in all (per run, lowest honest head: min {} / mean {} / max {})\n",
        heads.iter().sum::<u64>(),
        heads.iter().copied().min().unwrap_or(0),
        mean(&heads),
        heads.iter().copied().max().unwrap_or(0),
    ));
    let p50 = quantile(&latencies, 500);
    let p90 = quantile(&latencies, 900);
    let p99 = quantile(&latencies, 990);
    let max = latencies.last().copied().unwrap_or(0);
    let avg = mean(&latencies);
    out.push_str(&format!(
        "  latency per height ({} heights, 1 message delay = {delay} ms): p50 {p50} ms ({} delays), p90 {p90} ms ({}), p99 {p99} ms ({}), max {max} ms ({}), mean {avg} ms ({})\n",
        latencies.len(),
        in_delays(p50, delay),
        in_delays(p90, delay),
        in_delays(p99, delay),
        in_delays(max, delay),
        in_delays(avg, delay),
    ));
    out.push_str(&format!(
        "  faults: {} crashes ({} mid-step), {} restarts, {} partitions, {} slow nodes, {} forged messages, {} evidence records\n",
        faults.crashes,
        faults.mid_step_crashes,
        faults.restarts,
        faults.partitions,
        faults.slow_nodes,
        faults.forged_messages,
        faults.evidence
    ));
    out.push_str(&format!(
        "  messages: {} sent, {} lost, {} cut by partitions, {} duplicated, {} reordered, {} to down nodes\n",
        net.sent, net.lost, net.partitioned, net.duplicated, net.reordered, net.to_down_node
    ));
    out.push_str(&format!(
        "  transactions: {} signed, {} committed\n",
        runs.iter().map(|r| r.txs_signed).sum::<u64>(),
        runs.iter().map(|r| r.txs_committed).sum::<u64>()
    ));
    out.push_str(&format!(
        "  violations: {violations}{}\n",
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        }
    ));
    for r in failed {
        out.push_str(&format!(
            "  FAILED seed {}: {}\n    reproduce: {}\n",
            r.scenario.seed,
            r.violations
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
            r.scenario.reproduce_command()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_means_and_delays() {
        let sorted = [10, 20, 30, 40, 100];
        assert_eq!(quantile(&sorted, 500), 30);
        assert_eq!(quantile(&sorted, 900), 100);
        assert_eq!(quantile(&sorted, 1), 10);
        assert_eq!(quantile(&[], 500), 0);
        assert_eq!(mean(&sorted), 40);
        assert_eq!(in_delays(75, 20), "3.7");
        assert_eq!(in_delays(40, 20), "2.0");
    }
}
