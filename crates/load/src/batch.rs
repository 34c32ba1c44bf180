//! Batch submission for `dex-load run --batch N`: which transactions share a request,
//! which validator and source address a request uses, its body, and what its answer means
//! for each transaction. No clock and no IO here, so the rules are unit-tested.
//!
//! # The rules
//! - The sender walks the phase's transactions in order; consecutive ones join one open
//!   batch, which is sent when it holds N, when the next transaction's trader has its
//!   window full (the batch is sent first: holding it could hold the very transactions
//!   that trader waits on), or when the phase ends.
//! - At a fixed rate each transaction joins at its own scheduled time, so a batch is sent
//!   when its **last** transaction is due, never earlier, and latency counts from each
//!   transaction's own scheduled time: the first of a batch carries its wait for the rest.
//!   Sending when the first is due would send the others before their time and hide that
//!   wait, flattering batches.
//! - Batch `b` of a phase (from 0) goes to validator `b mod n` from source address
//!   `(b / n) mod s`. With N = 1 every transaction is its own batch, which is the
//!   per-transaction spread the sender has always used, and the request is the single
//!   route's.

use crate::accounting::TxId;
use crate::stream::PreparedTx;
use dex_sdk::wire::{MAX_BATCH_TXS, SubmitBatchResponse, TxState};

/// A transaction waiting in the open batch.
#[derive(Debug)]
pub struct Queued {
    /// Its id in the tracker.
    pub id: TxId,
    /// The signed transaction and its single-route body.
    pub tx: PreparedTx,
    /// Its scheduled send time at a fixed rate (latency counts from it); `None` at the
    /// maximum rate, where latency counts from the request's send time.
    pub scheduled_us: Option<u64>,
}

/// The batch being filled; see the module docs.
#[derive(Debug)]
pub struct OpenBatch {
    max: usize,
    items: Vec<Queued>,
}

impl OpenBatch {
    /// An empty batch of at most `max` transactions (1 ..= [`MAX_BATCH_TXS`]).
    pub fn new(max: usize) -> OpenBatch {
        let max = max.clamp(1, MAX_BATCH_TXS);
        OpenBatch {
            max,
            items: Vec::with_capacity(max),
        }
    }

    /// Add a transaction. The caller sends the batch when it is full, before adding more.
    pub fn push(&mut self, queued: Queued) {
        assert!(!self.is_full(), "bug: a transaction added to a full batch");
        self.items.push(queued);
    }

    /// Whether it holds its maximum.
    pub fn is_full(&self) -> bool {
        self.items.len() >= self.max
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Transactions of `trader` waiting in it (they count against the trader's window as
    /// much as those in flight do).
    pub fn of_trader(&self, trader: u32) -> u32 {
        let count = self.items.iter().filter(|q| q.tx.trader == trader).count();
        u32::try_from(count).expect("bug: a batch holds at most MAX_BATCH_TXS")
    }

    /// Empty it, handing over what it held in order.
    pub fn take(&mut self) -> Vec<Queued> {
        std::mem::replace(&mut self.items, Vec::with_capacity(self.max))
    }
}

/// The validator and the source address of batch `index`: `(index mod nodes,
/// (index / nodes) mod sources)`.
pub fn route(index: u64, nodes: usize, sources: usize) -> (usize, usize) {
    let nodes = u64::try_from(nodes.max(1)).unwrap_or(u64::MAX);
    let sources = u64::try_from(sources.max(1)).unwrap_or(u64::MAX);
    let node = usize::try_from(index % nodes).expect("bug: below the node count");
    let source = usize::try_from((index / nodes) % sources).expect("bug: below the source count");
    (node, source)
}

/// Latency starts of a batch's transactions when it is sent at `sent_us`, in its order,
/// and how late it left: each counts from its own scheduled time (at the maximum rate,
/// from `sent_us`), and the batch was due when its last transaction was scheduled.
pub fn starts(items: &[Queued], sent_us: u64) -> (Vec<(TxId, u64)>, u64) {
    let due_us = items.last().and_then(|q| q.scheduled_us).unwrap_or(sent_us);
    let starts = items
        .iter()
        .map(|q| (q.id, q.scheduled_us.unwrap_or(sent_us).min(sent_us)))
        .collect();
    (starts, sent_us.saturating_sub(due_us))
}

/// The body of `POST /v1/txs/batch` listing these transactions in order (written by hand:
/// hex needs no escaping, and the sender builds one per request while it is measured).
pub fn batch_body(items: &[Queued]) -> String {
    let hex_bytes: usize = items.iter().map(|q| q.tx.hex.len() + 3).sum();
    let mut body = String::with_capacity(hex_bytes + 12);
    body.push_str("{\"txs\":[");
    for (i, queued) in items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push('"');
        body.push_str(queued.tx.tx_hex());
        body.push('"');
    }
    body.push_str("]}");
    body
}

/// What a request's answer says about one of its transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Admitted to the node's mempool.
    Admitted,
    /// Refused with this code.
    Refused(String),
    /// No usable answer: its fate is learnt later from the chain or the nodes.
    NoAnswer,
}

/// The fate of each of a batch's `count` transactions from the node's answer. An answer
/// that does not list exactly one result per transaction cannot be matched to them, so
/// none of them counts as answered (the end-of-run resolution asks the nodes instead).
pub fn item_fates(answer: SubmitBatchResponse, count: usize) -> Vec<Fate> {
    if answer.results.len() != count {
        return vec![Fate::NoAnswer; count];
    }
    answer
        .results
        .into_iter()
        .map(|item| match (item.state, item.error) {
            (_, Some(error)) => Fate::Refused(error.code),
            (Some(TxState::Pending), None) => Fate::Admitted,
            _ => Fate::NoAnswer,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::TxKind;
    use dex_sdk::wire::{BatchItemError, BatchItemView, SubmitBatchRequest};

    fn queued(id: TxId, trader: u32, hex: &str) -> Queued {
        let body = format!("{{\"tx\":\"{hex}\"}}");
        Queued {
            id,
            tx: PreparedTx {
                hash: dex_types::Hash::ZERO,
                trader,
                kind: TxKind::Cancel,
                hex: 7..7 + hex.len(),
                body,
            },
            scheduled_us: None,
        }
    }

    #[test]
    fn a_batch_fills_to_its_size_counts_each_traders_share_and_empties_in_order() {
        let mut batch = OpenBatch::new(3);
        assert!(batch.is_empty() && !batch.is_full());
        batch.push(queued(0, 7, "aa"));
        batch.push(queued(1, 8, "bb"));
        batch.push(queued(2, 7, "cc"));
        assert!(batch.is_full());
        assert_eq!(
            (batch.of_trader(7), batch.of_trader(8), batch.of_trader(9)),
            (2, 1, 0)
        );
        let taken: Vec<TxId> = batch.take().iter().map(|q| q.id).collect();
        assert_eq!(taken, [0, 1, 2]);
        assert!(batch.is_empty() && batch.of_trader(7) == 0);
        // Sizes are clamped to what a request may carry.
        assert_eq!(OpenBatch::new(0).max, 1);
        assert_eq!(OpenBatch::new(10_000).max, MAX_BATCH_TXS);
    }

    #[test]
    fn routing_one_per_batch_is_the_per_transaction_spread() {
        // Transaction k went to validator k mod n from source (k / n) mod s.
        for k in 0..200u64 {
            assert_eq!(route(k, 4, 32), ((k % 4) as usize, ((k / 4) % 32) as usize));
        }
        // Consecutive batches go round the validators, then move to the next source.
        let routes: Vec<_> = (0..7).map(|b| route(b, 3, 2)).collect();
        assert_eq!(
            routes,
            [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 0)]
        );
        // No sources (a remote cluster): everything from the one default client.
        assert_eq!(route(5, 2, 0), (1, 0));
    }

    #[test]
    fn each_transaction_counts_from_its_own_schedule_and_the_batch_is_due_with_its_last() {
        let at = |id, scheduled_us| Queued {
            scheduled_us,
            ..queued(id, 1, "aa")
        };
        // Scheduled at 1.000, 1.010 and 1.020 s, sent at 1.025 s: the first counts 25 ms
        // of waiting for the others, and the batch left 5 ms after it was due.
        let items = [
            at(0, Some(1_000_000)),
            at(1, Some(1_010_000)),
            at(2, Some(1_020_000)),
        ];
        let (begun, lag_us) = starts(&items, 1_025_000);
        assert_eq!(begun, [(0, 1_000_000), (1, 1_010_000), (2, 1_020_000)]);
        assert_eq!(lag_us, 5_000);
        // At the maximum rate there is no schedule: everything counts from the send.
        let items = [at(3, None), at(4, None)];
        assert_eq!(starts(&items, 77), ([(3, 77), (4, 77)].to_vec(), 0));
    }

    #[test]
    fn the_batch_body_is_a_batch_request_listing_each_hex_in_order() {
        let items = [queued(0, 1, "0a0b"), queued(1, 1, "ff"), queued(2, 2, "00")];
        let request: SubmitBatchRequest = serde_json::from_str(&batch_body(&items)).unwrap();
        assert_eq!(request.txs, ["0a0b", "ff", "00"]);
        let empty: SubmitBatchRequest = serde_json::from_str(&batch_body(&[])).unwrap();
        assert!(empty.txs.is_empty());
    }

    #[test]
    fn each_item_gets_its_own_fate_and_a_mismatched_answer_none() {
        let pending = BatchItemView {
            tx_hash: Some("ab".into()),
            state: Some(TxState::Pending),
            error: None,
        };
        let refused = |code: &str| BatchItemView {
            tx_hash: None,
            state: None,
            error: Some(BatchItemError {
                status: 503,
                code: code.into(),
                message: String::new(),
            }),
        };
        let answer = SubmitBatchResponse {
            results: vec![
                pending.clone(),
                refused("mempool_full"),
                pending.clone(),
                refused("malformed_tx"),
                // Neither admitted nor refused: not an answer.
                BatchItemView {
                    state: None,
                    ..pending.clone()
                },
            ],
        };
        assert_eq!(
            item_fates(answer.clone(), 5),
            [
                Fate::Admitted,
                Fate::Refused("mempool_full".into()),
                Fate::Admitted,
                Fate::Refused("malformed_tx".into()),
                Fate::NoAnswer,
            ]
        );
        // One result too few or too many: no item can be matched.
        assert_eq!(item_fates(answer.clone(), 6), vec![Fate::NoAnswer; 6]);
        assert_eq!(item_fates(answer, 4), vec![Fate::NoAnswer; 4]);
    }
}
