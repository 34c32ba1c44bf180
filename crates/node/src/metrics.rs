//! The node's metrics, rendered in the Prometheus text format after the API's own at
//! `/metrics`: height, round, commit latency, mempool, transactions and fills per block,
//! peers, transaction gossip batches, synced writes to the chain store, and rejected
//! messages by reason.

use crate::timed_store::SyncTimings;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Why a message from the network was refused (a label of `dex_rejected_messages_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RejectReason {
    /// The bytes did not decode within the size limit.
    Undecodable,
    /// A signature did not verify, or the signer is not a validator.
    BadSignature,
    /// A consensus message for a height long committed.
    Stale,
    /// A sync response that did not decode or whose blocks were refused.
    BadSync,
    /// A transaction the mempool refused.
    MempoolRefused,
    /// Dropped because the node was saturated (verification or the consensus queue).
    Overloaded,
}

impl RejectReason {
    const ALL: [RejectReason; 6] = [
        RejectReason::Undecodable,
        RejectReason::BadSignature,
        RejectReason::Stale,
        RejectReason::BadSync,
        RejectReason::MempoolRefused,
        RejectReason::Overloaded,
    ];

    fn label(self) -> &'static str {
        match self {
            RejectReason::Undecodable => "undecodable",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::Stale => "stale",
            RejectReason::BadSync => "bad_sync",
            RejectReason::MempoolRefused => "mempool_refused",
            RejectReason::Overloaded => "overloaded",
        }
    }
}

/// Commit latencies kept for the quantiles.
const LATENCY_WINDOW: usize = 512;

/// The node's counters and gauges, shared by its tasks.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Committed height.
    pub height: AtomicU64,
    /// Current consensus round.
    pub round: AtomicU64,
    /// Blocks committed since start.
    pub blocks: AtomicU64,
    /// Transactions in committed blocks since start.
    pub txs: AtomicU64,
    /// Fills in committed blocks since start.
    pub fills: AtomicU64,
    /// Transactions in the last committed block.
    pub last_block_txs: AtomicU64,
    /// Fills in the last committed block.
    pub last_block_fills: AtomicU64,
    /// Pending transactions.
    pub mempool_txs: AtomicU64,
    /// Pending bytes.
    pub mempool_bytes: AtomicU64,
    /// Connected peers.
    pub peers: AtomicU64,
    /// Blocks received by sync and applied.
    pub synced_blocks: AtomicU64,
    /// Equivocations observed.
    pub evidence: AtomicU64,
    /// Proposals this node judged invalid.
    pub proposals_invalid: AtomicU64,
    /// Transaction batches this node published (its clients' transactions).
    pub gossip_batches_sent: AtomicU64,
    /// Transactions in the batches this node published.
    pub gossip_txs_sent: AtomicU64,
    /// Client transactions not gossiped because the batching queue was full (they stay in
    /// this node's mempool and reach the chain in its proposals).
    pub gossip_txs_dropped: AtomicU64,
    /// Transaction batches from peers accepted (every signature held).
    pub gossip_batches_received: AtomicU64,
    /// Transactions in the accepted batches.
    pub gossip_txs_received: AtomicU64,
    /// Synced (fsynced) writes to the chain store, shared with the store that times them.
    pub synced_writes: Arc<SyncTimings>,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    latencies: Mutex<LatencyWindow>,
}

#[derive(Debug, Default)]
struct LatencyWindow {
    recent_ms: VecDeque<u64>,
    sum_ms: u64,
    count: u64,
}

impl NodeMetrics {
    /// Count one refused message.
    pub fn reject(&self, reason: RejectReason) {
        self.rejected[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Refused messages for this reason so far.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason as usize].load(Ordering::Relaxed)
    }

    /// Record the time from the start of a height to its commit.
    pub fn record_commit_latency(&self, ms: u64) {
        let mut window = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        if window.recent_ms.len() == LATENCY_WINDOW {
            window.recent_ms.pop_front();
        }
        window.recent_ms.push_back(ms);
        window.sum_ms = window.sum_ms.saturating_add(ms);
        window.count += 1;
    }

    /// The `q`-quantile (per mille) of the recent commit latencies.
    pub fn commit_latency_quantile(&self, per_mille: u64) -> Option<u64> {
        let window = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        quantile(window.recent_ms.iter().copied().collect(), per_mille)
    }

    /// Append the metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        gauge(
            out,
            "dex_height",
            "Committed height.",
            "gauge",
            load(&self.height),
        );
        gauge(
            out,
            "dex_round",
            "Current consensus round.",
            "gauge",
            load(&self.round),
        );
        gauge(
            out,
            "dex_blocks_committed_total",
            "Blocks committed since start.",
            "counter",
            load(&self.blocks),
        );
        gauge(
            out,
            "dex_txs_committed_total",
            "Transactions in committed blocks since start.",
            "counter",
            load(&self.txs),
        );
        gauge(
            out,
            "dex_fills_committed_total",
            "Fills in committed blocks since start.",
            "counter",
            load(&self.fills),
        );
        gauge(
            out,
            "dex_block_txs",
            "Transactions in the last committed block.",
            "gauge",
            load(&self.last_block_txs),
        );
        gauge(
            out,
            "dex_block_fills",
            "Fills in the last committed block.",
            "gauge",
            load(&self.last_block_fills),
        );
        gauge(
            out,
            "dex_mempool_txs",
            "Pending transactions.",
            "gauge",
            load(&self.mempool_txs),
        );
        gauge(
            out,
            "dex_mempool_bytes",
            "Encoded bytes of pending transactions.",
            "gauge",
            load(&self.mempool_bytes),
        );
        gauge(
            out,
            "dex_peers",
            "Connected peers.",
            "gauge",
            load(&self.peers),
        );
        gauge(
            out,
            "dex_synced_blocks_total",
            "Blocks received by block sync and applied.",
            "counter",
            load(&self.synced_blocks),
        );
        gauge(
            out,
            "dex_evidence_total",
            "Equivocations observed.",
            "counter",
            load(&self.evidence),
        );
        gauge(
            out,
            "dex_proposals_invalid_total",
            "Proposals this node judged invalid.",
            "counter",
            load(&self.proposals_invalid),
        );
        gauge(
            out,
            "dex_gossip_tx_batches_sent_total",
            "Transaction batches published (this node's clients' transactions).",
            "counter",
            load(&self.gossip_batches_sent),
        );
        gauge(
            out,
            "dex_gossip_txs_sent_total",
            "Transactions in the published batches.",
            "counter",
            load(&self.gossip_txs_sent),
        );
        gauge(
            out,
            "dex_gossip_txs_dropped_total",
            "Client transactions not gossiped because the batching queue was full.",
            "counter",
            load(&self.gossip_txs_dropped),
        );
        gauge(
            out,
            "dex_gossip_tx_batches_received_total",
            "Transaction batches from peers accepted.",
            "counter",
            load(&self.gossip_batches_received),
        );
        gauge(
            out,
            "dex_gossip_txs_received_total",
            "Transactions in the accepted batches from peers.",
            "counter",
            load(&self.gossip_txs_received),
        );
        let synced = &self.synced_writes;
        gauge(
            out,
            "dex_synced_writes_total",
            "Synced (fsynced) writes to the chain store: commits and the consensus log.",
            "counter",
            load(&synced.writes),
        );
        gauge(
            out,
            "dex_synced_write_microseconds_total",
            "Time spent in synced writes to the chain store.",
            "counter",
            load(&synced.total_us),
        );
        gauge(
            out,
            "dex_synced_writes_slow_total",
            "Synced writes that took 50 ms or more (each is also logged).",
            "counter",
            load(&synced.slow),
        );
        gauge(
            out,
            "dex_synced_write_max_microseconds",
            "The longest synced write since start.",
            "gauge",
            load(&synced.max_us),
        );
        let _ = writeln!(
            out,
            "# HELP dex_rejected_messages_total Messages from the network refused, by reason."
        );
        let _ = writeln!(out, "# TYPE dex_rejected_messages_total counter");
        for reason in RejectReason::ALL {
            let _ = writeln!(
                out,
                "dex_rejected_messages_total{{reason=\"{}\"}} {}",
                reason.label(),
                self.rejected(reason)
            );
        }
        let window = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP dex_commit_latency_ms Time from the start of a height to its commit (quantiles over the last {LATENCY_WINDOW} blocks)."
        );
        let _ = writeln!(out, "# TYPE dex_commit_latency_ms summary");
        let recent: Vec<u64> = window.recent_ms.iter().copied().collect();
        for (label, per_mille) in [("0.5", 500), ("0.99", 990)] {
            if let Some(value) = quantile(recent.clone(), per_mille) {
                let _ = writeln!(out, "dex_commit_latency_ms{{quantile=\"{label}\"}} {value}");
            }
        }
        let _ = writeln!(out, "dex_commit_latency_ms_sum {}", window.sum_ms);
        let _ = writeln!(out, "dex_commit_latency_ms_count {}", window.count);
    }
}

/// The `per_mille`/1000 quantile (nearest rank) of `values`.
pub fn quantile(mut values: Vec<u64>, per_mille: u64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let len = u64::try_from(values.len()).ok()?;
    // Nearest rank: ceil(q × n), 1-based.
    let rank = (per_mille.min(1_000) * len).div_ceil(1_000).max(1);
    values.get(usize::try_from(rank - 1).ok()?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        assert_eq!(quantile(vec![], 500), None);
        assert_eq!(quantile(vec![7], 990), Some(7));
        let values: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile(values.clone(), 500), Some(50));
        assert_eq!(quantile(values.clone(), 990), Some(99));
        assert_eq!(quantile(values, 1_000), Some(100));
    }

    #[test]
    fn renders_every_family_with_values() {
        let metrics = NodeMetrics::default();
        metrics.height.store(12, Ordering::Relaxed);
        metrics.reject(RejectReason::BadSignature);
        metrics.reject(RejectReason::BadSignature);
        for ms in [10, 20, 30] {
            metrics.record_commit_latency(ms);
        }
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(text.contains("dex_height 12\n"));
        assert!(text.contains("dex_rejected_messages_total{reason=\"bad_signature\"} 2\n"));
        assert!(text.contains("dex_commit_latency_ms{quantile=\"0.5\"} 20\n"));
        assert!(text.contains("dex_commit_latency_ms_count 3\n"));
    }
}
