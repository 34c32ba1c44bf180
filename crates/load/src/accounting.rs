//! The fate of every transaction of a run, and the checks on it.
//!
//! Each transaction moves through `planned → sent → (admitted | refused | no answer)`, and
//! a committed block moves it to `committed` whatever came before, so a block that arrives
//! before the submission's answer is handled. At the end every sent transaction must be in
//! a known state: committed (with the ledger's outcome), or refused with a code. Anything
//! else is a failure of the check:
//! - **lost**: admitted (or sent without an answer), yet neither in a block nor pending;
//! - **stuck**: still pending after the drain;
//! - **unanswered**: the request got no answer and the transaction was never seen again;
//! - **duplicate**: a transaction hash in two blocks;
//! - **refused but committed**: refused at admission, yet in a block.
//!
//! Times are microseconds since the start of the run, passed in by the caller: the tracker
//! reads no clock, so it is tested with exact times.

use crate::stream::TxKind;
use dex_types::Hash;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A transaction's index in the run.
pub type TxId = u32;

/// Where a transaction stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Signed, not sent (the run ended first).
    Planned,
    /// The request is on its way.
    Sent,
    /// The node admitted it to its mempool.
    Admitted,
    /// The node refused it with this code.
    Refused(String),
    /// The request failed without an answer (timeout, connection error).
    NoAnswer,
    /// In a block at this height; the ledger's outcome.
    Committed {
        /// Block height.
        height: u64,
        /// Whether it applied.
        ok: bool,
        /// The rejection code if it did not.
        code: Option<String>,
    },
    /// Admitted or unanswered, then dropped by a node because a committed block made it
    /// impossible, with the ledger's code: a known end, it will never commit.
    Dropped(String),
    /// Admitted or unanswered, and at the end still pending on the node.
    Stuck,
    /// Admitted or unanswered, and at the end neither committed nor pending.
    Lost,
}

/// Where an unsettled transaction stands when the run ends, as the nodes tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndState {
    /// Still pending on some node.
    Pending,
    /// Dropped by a node with this ledger code: it will never commit.
    Dropped(String),
    /// Neither committed, pending nor dropped anywhere.
    Gone,
}

#[derive(Clone, Debug)]
struct Entry {
    hash: Hash,
    trader: u32,
    phase: u8,
    kind: TxKind,
    fate: Fate,
    admitted: bool,
    /// When the latency clock starts (scheduled or sent time), µs.
    start_us: Option<u64>,
    /// When it was sent, µs.
    sent_us: Option<u64>,
    /// When the refusal arrived, µs.
    refused_us: Option<u64>,
    /// When its block arrived, µs.
    committed_us: Option<u64>,
}

/// One committed transaction as a block lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockTx {
    /// Its hash.
    pub hash: Hash,
    /// Whether it applied.
    pub ok: bool,
    /// The rejection code if not.
    pub code: Option<String>,
}

/// One block as seen by the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BlockSeen {
    /// Height.
    pub height: u64,
    /// Transactions in it.
    pub txs: u32,
    /// When it arrived, µs since the start of the run.
    pub at_us: u64,
}

/// A transaction hash found in two blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    /// The hash, hex.
    pub tx_hash: String,
    /// The first block.
    pub first_height: u64,
    /// The second.
    pub second_height: u64,
}

/// The fate of the transactions of one phase (or of the whole run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Signed but never sent.
    pub unsent: u64,
    /// Sent.
    pub sent: u64,
    /// Admitted to a mempool.
    pub admitted: u64,
    /// Refused at admission, by code.
    pub refused: BTreeMap<String, u64>,
    /// In a block.
    pub committed: u64,
    /// In a block and applied.
    pub committed_ok: u64,
    /// In a block and rejected by the ledger, by code.
    pub committed_rejected: BTreeMap<String, u64>,
    /// Requests without an answer whose transaction was never seen again.
    pub unanswered: u64,
    /// Dropped by a node after admission (a committed block made it impossible), by code.
    pub dropped: BTreeMap<String, u64>,
    /// Still pending at the end.
    pub stuck: u64,
    /// Admitted, then neither committed nor pending.
    pub lost: u64,
    /// Refused at admission, yet committed.
    pub refused_but_committed: u64,
    /// Committed in a block without ever being sent (a bug of the run itself).
    pub committed_unsent: u64,
    /// Sent and neither answered nor resolved yet (the run did not wait for them).
    pub unsettled: u64,
    /// Committed transactions of each kind.
    pub committed_by_kind: BTreeMap<String, u64>,
}

impl Accounting {
    /// Whether every sent transaction ended in a known state (and none twice).
    pub fn all_known(&self, duplicates: usize) -> bool {
        self.unanswered == 0
            && self.unsettled == 0
            && self.stuck == 0
            && self.lost == 0
            && self.refused_but_committed == 0
            && self.committed_unsent == 0
            && duplicates == 0
    }
}

/// The tracker; see the module docs.
#[derive(Debug, Default)]
pub struct Tracker {
    entries: Vec<Entry>,
    by_hash: HashMap<Hash, TxId>,
    /// Every committed hash (ours or not) and its height.
    committed: HashMap<Hash, u64>,
    heights: BTreeSet<u64>,
    blocks: Vec<BlockSeen>,
    duplicates: Vec<Duplicate>,
    foreign_txs: u64,
    inflight: Vec<u32>,
    refused_but_committed: u64,
    committed_unsent: u64,
}

impl Tracker {
    /// An empty tracker for `traders` traders.
    pub fn new(traders: u32) -> Tracker {
        Tracker {
            inflight: vec![0; traders as usize],
            ..Tracker::default()
        }
    }

    /// Register a signed transaction; its id is its position.
    pub fn add(&mut self, hash: Hash, trader: u32, kind: TxKind, phase: u8) -> TxId {
        let id = TxId::try_from(self.entries.len()).expect("bug: more than 2^32 transactions");
        let previous = self.by_hash.insert(hash, id);
        assert!(
            previous.is_none(),
            "bug: the stream repeated transaction {hash}"
        );
        assert!(
            (trader as usize) < self.inflight.len(),
            "bug: trader {trader} outside the tracker"
        );
        self.entries.push(Entry {
            hash,
            trader,
            phase,
            kind,
            fate: Fate::Planned,
            admitted: false,
            start_us: None,
            sent_us: None,
            refused_us: None,
            committed_us: None,
        });
        id
    }

    /// The fate of one transaction.
    pub fn fate(&self, id: TxId) -> &Fate {
        &self.entries[id as usize].fate
    }

    /// The hash of one transaction.
    pub fn hash(&self, id: TxId) -> Hash {
        self.entries[id as usize].hash
    }

    /// Transactions of a trader sent and not yet committed or refused.
    pub fn inflight(&self, trader: u32) -> u32 {
        self.inflight[trader as usize]
    }

    fn settle(&mut self, id: TxId) {
        let trader = self.entries[id as usize].trader as usize;
        self.inflight[trader] = self.inflight[trader]
            .checked_sub(1)
            .expect("bug: settled a transaction that was not in flight");
    }

    /// The request for `id` is sent at `sent_us`; latency counts from `start_us` (the
    /// scheduled time, at or before `sent_us`, so a late sender does not hide queueing).
    pub fn on_sent(&mut self, id: TxId, start_us: u64, sent_us: u64) {
        let entry = &mut self.entries[id as usize];
        assert_eq!(
            entry.fate,
            Fate::Planned,
            "bug: transaction {id} sent twice"
        );
        entry.fate = Fate::Sent;
        entry.start_us = Some(start_us.min(sent_us));
        entry.sent_us = Some(sent_us);
        self.inflight[entry.trader as usize] += 1;
    }

    /// The node admitted `id`.
    pub fn on_admitted(&mut self, id: TxId) {
        let entry = &mut self.entries[id as usize];
        entry.admitted = true;
        if entry.fate == Fate::Sent {
            entry.fate = Fate::Admitted;
        }
    }

    /// The node refused `id` with `code` at `at_us`.
    pub fn on_refused(&mut self, id: TxId, code: &str, at_us: u64) {
        let entry = &mut self.entries[id as usize];
        entry.refused_us = Some(at_us);
        match entry.fate {
            Fate::Sent => {
                entry.fate = Fate::Refused(code.to_owned());
                self.settle(id);
            }
            Fate::Committed { .. } => self.refused_but_committed += 1,
            ref other => panic!("bug: refusal of transaction {id} in state {other:?}"),
        }
    }

    /// The request for `id` got no answer.
    pub fn on_no_answer(&mut self, id: TxId) {
        let entry = &mut self.entries[id as usize];
        if entry.fate == Fate::Sent {
            entry.fate = Fate::NoAnswer;
            // Not known to be pending: do not hold the trader back for it.
            self.settle(id);
        }
    }

    /// A committed block arrived at `at_us`. Returns `false` for a height already seen
    /// (a replay after a reconnect), which changes nothing.
    pub fn on_block(&mut self, height: u64, txs: &[BlockTx], at_us: u64) -> bool {
        if !self.heights.insert(height) {
            return false;
        }
        self.blocks.push(BlockSeen {
            height,
            txs: u32::try_from(txs.len()).unwrap_or(u32::MAX),
            at_us,
        });
        for tx in txs {
            if let Some(&first) = self.committed.get(&tx.hash) {
                self.duplicates.push(Duplicate {
                    tx_hash: tx.hash.to_hex(),
                    first_height: first,
                    second_height: height,
                });
                continue;
            }
            self.committed.insert(tx.hash, height);
            let Some(&id) = self.by_hash.get(&tx.hash) else {
                self.foreign_txs += 1;
                continue;
            };
            let entry = &mut self.entries[id as usize];
            let was = std::mem::replace(
                &mut entry.fate,
                Fate::Committed {
                    height,
                    ok: tx.ok,
                    code: tx.code.clone(),
                },
            );
            entry.committed_us = Some(at_us);
            match was {
                Fate::Sent | Fate::Admitted => self.settle(id),
                Fate::NoAnswer | Fate::Stuck | Fate::Lost | Fate::Dropped(_) => {}
                Fate::Refused(_) => self.refused_but_committed += 1,
                Fate::Planned => self.committed_unsent += 1,
                Fate::Committed { .. } => unreachable!("bug: committed hashes are checked first"),
            }
        }
        true
    }

    /// Heights seen.
    pub fn heights(&self) -> &BTreeSet<u64> {
        &self.heights
    }

    /// Blocks seen, in arrival order.
    pub fn blocks(&self) -> &[BlockSeen] {
        &self.blocks
    }

    /// Hashes found in two blocks.
    pub fn duplicates(&self) -> &[Duplicate] {
        &self.duplicates
    }

    /// Committed transactions that this run did not send.
    pub fn foreign_txs(&self) -> u64 {
        self.foreign_txs
    }

    /// Transactions admitted or sent without answer that no block has carried yet.
    pub fn unsettled(&self) -> Vec<TxId> {
        (0..self.entries.len() as TxId)
            .filter(|&id| {
                matches!(
                    self.entries[id as usize].fate,
                    Fate::Sent | Fate::Admitted | Fate::NoAnswer
                )
            })
            .collect()
    }

    /// Sent transactions still awaiting their block or refusal.
    pub fn awaiting(&self) -> usize {
        self.inflight.iter().map(|&n| n as usize).sum()
    }

    /// The end-of-run answer for an unsettled transaction: still pending on a node,
    /// dropped by one, or neither. Only admitted or unanswered transactions change.
    pub fn resolve(&mut self, id: TxId, end: EndState) {
        let entry = &mut self.entries[id as usize];
        match entry.fate {
            Fate::Sent | Fate::Admitted | Fate::NoAnswer => {
                let was_inflight = entry.fate != Fate::NoAnswer;
                // An unanswered request never seen again most likely never arrived, but
                // nothing proves it, so it counts against the check too.
                entry.fate = match end {
                    EndState::Pending => Fate::Stuck,
                    EndState::Dropped(code) => Fate::Dropped(code),
                    EndState::Gone => Fate::Lost,
                };
                if was_inflight {
                    self.settle(id);
                }
            }
            _ => {}
        }
    }

    /// The accounting of phase `phase` (`None`: the whole run).
    pub fn accounting(&self, phase: Option<u8>) -> Accounting {
        let mut a = Accounting {
            refused_but_committed: if phase.is_none() {
                self.refused_but_committed
            } else {
                0
            },
            committed_unsent: if phase.is_none() {
                self.committed_unsent
            } else {
                0
            },
            ..Accounting::default()
        };
        for e in self
            .entries
            .iter()
            .filter(|e| phase.is_none_or(|p| e.phase == p))
        {
            if e.sent_us.is_none() {
                if e.fate == Fate::Planned {
                    a.unsent += 1;
                }
                continue;
            }
            a.sent += 1;
            a.admitted += u64::from(e.admitted);
            match &e.fate {
                Fate::Planned => unreachable!("bug: a sent transaction is planned"),
                Fate::Sent | Fate::Admitted => a.unsettled += 1,
                Fate::NoAnswer => {
                    a.unanswered += 1;
                }
                Fate::Refused(code) => *a.refused.entry(code.clone()).or_default() += 1,
                Fate::Committed { ok, code, .. } => {
                    a.committed += 1;
                    *a.committed_by_kind
                        .entry(kind_name(e.kind).to_owned())
                        .or_default() += 1;
                    if *ok {
                        a.committed_ok += 1;
                    } else {
                        *a.committed_rejected
                            .entry(code.clone().unwrap_or_else(|| "unknown".into()))
                            .or_default() += 1;
                    }
                }
                Fate::Dropped(code) => *a.dropped.entry(code.clone()).or_default() += 1,
                Fate::Stuck => a.stuck += 1,
                Fate::Lost => {
                    if e.admitted {
                        a.lost += 1;
                    } else {
                        a.unanswered += 1;
                    }
                }
            }
        }
        a
    }

    /// Submit-to-commit latencies (µs) of the committed transactions of `phase`.
    pub fn latencies_us(&self, phase: u8) -> Vec<u64> {
        self.entries
            .iter()
            .filter(|e| e.phase == phase)
            .filter_map(|e| Some(e.committed_us?.saturating_sub(e.start_us?)))
            .collect()
    }

    /// Per-second counts for `phase` from `from_us` on, `seconds` long: (sent, committed,
    /// refused).
    pub fn timeline(&self, phase: u8, from_us: u64, seconds: usize) -> Vec<(u64, u64, u64)> {
        let mut out = vec![(0u64, 0u64, 0u64); seconds];
        let slot = |t: u64| {
            let s = (t.checked_sub(from_us)? / 1_000_000) as usize;
            (s < seconds).then_some(s)
        };
        for e in self.entries.iter().filter(|e| e.phase == phase) {
            if let Some(s) = e.sent_us.and_then(slot) {
                out[s].0 += 1;
            }
            if let Some(s) = e.committed_us.and_then(slot) {
                out[s].1 += 1;
            }
            if let (Fate::Refused(_), Some(s)) = (&e.fate, e.refused_us.and_then(slot)) {
                out[s].2 += 1;
            }
        }
        out
    }

    /// Transactions of `phase` committed with their block arriving in `from_us..=to_us`.
    pub fn committed_between(&self, phase: u8, from_us: u64, to_us: u64) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.phase == phase)
            .filter(|e| {
                e.committed_us
                    .is_some_and(|t| (from_us..=to_us).contains(&t))
            })
            .count() as u64
    }
}

/// The stable name of a kind.
pub fn kind_name(kind: TxKind) -> &'static str {
    match kind {
        TxKind::Rest => "rest",
        TxKind::Cross => "cross",
        TxKind::Ioc => "ioc",
        TxKind::Cancel => "cancel",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> Hash {
        Hash([n; 32])
    }

    fn ok(n: u8) -> BlockTx {
        BlockTx {
            hash: h(n),
            ok: true,
            code: None,
        }
    }

    #[test]
    fn every_path_to_a_known_state_is_counted_once() {
        let mut t = Tracker::new(2);
        let ids: Vec<TxId> = (1..=7)
            .map(|n| t.add(h(n), u32::from(n % 2), TxKind::Rest, 0))
            .collect();
        // 1: admitted then committed. 2: committed before its answer arrived.
        // 3: refused. 4: committed with a rejection. 5: no answer, later committed.
        // 6: admitted, never committed, then found gone. 7: never sent.
        for (i, &id) in ids.iter().take(6).enumerate() {
            t.on_sent(id, 1_000 * i as u64, 1_000 * i as u64 + 10);
        }
        assert_eq!(t.inflight(1) + t.inflight(0), 6);
        t.on_admitted(ids[0]);
        t.on_refused(ids[2], "mempool_full", 3_000);
        t.on_admitted(ids[3]);
        t.on_no_answer(ids[4]);
        t.on_admitted(ids[5]);
        let rejected = BlockTx {
            hash: h(4),
            ok: false,
            code: Some("unknown_client_order".into()),
        };
        assert!(t.on_block(10, &[ok(1), ok(2), rejected, ok(5), ok(99)], 50_000));
        t.on_admitted(ids[1]);
        assert_eq!(
            t.fate(ids[1]),
            &Fate::Committed {
                height: 10,
                ok: true,
                code: None
            }
        );
        assert!(
            !t.on_block(10, &[ok(1)], 60_000),
            "a replayed height changes nothing"
        );
        assert_eq!(t.unsettled(), vec![ids[5]]);
        assert_eq!(t.awaiting(), 1);
        t.resolve(ids[5], EndState::Gone);
        assert_eq!(t.awaiting(), 0);
        let a = t.accounting(None);
        assert_eq!(a.unsent, 1);
        assert_eq!(a.sent, 6);
        assert_eq!(a.admitted, 4);
        assert_eq!(a.committed, 4);
        assert_eq!(a.committed_ok, 3);
        assert_eq!(a.committed_rejected.get("unknown_client_order"), Some(&1));
        assert_eq!(a.refused.get("mempool_full"), Some(&1));
        assert_eq!(a.lost, 1);
        assert_eq!(a.unanswered, 0);
        assert!(!a.all_known(0), "a lost transaction fails the check");
        assert_eq!(t.foreign_txs(), 1);
        // Latency counts from the start time to the block's arrival.
        let mut lat = t.latencies_us(0);
        lat.sort_unstable();
        assert_eq!(lat, vec![46_000, 47_000, 49_000, 50_000]);
        assert_eq!(t.committed_between(0, 0, 49_999), 0);
        assert_eq!(t.committed_between(0, 50_000, 50_000), 4);
        let timeline = t.timeline(0, 0, 2);
        assert_eq!(timeline[0], (6, 4, 1));
        assert_eq!(timeline[1], (0, 0, 0));
    }

    #[test]
    fn duplicates_and_refused_then_committed_fail_the_check() {
        let mut t = Tracker::new(1);
        let a = t.add(h(1), 0, TxKind::Cancel, 0);
        let b = t.add(h(2), 0, TxKind::Ioc, 1);
        t.on_sent(a, 0, 0);
        t.on_sent(b, 0, 0);
        t.on_admitted(a);
        t.on_refused(b, "signer_limit", 5);
        assert!(t.on_block(3, &[ok(1)], 10));
        assert!(t.on_block(4, &[ok(1), ok(2)], 20));
        assert_eq!(t.duplicates().len(), 1);
        assert_eq!(t.duplicates()[0].first_height, 3);
        assert_eq!(t.duplicates()[0].second_height, 4);
        let all = t.accounting(None);
        assert_eq!(all.refused_but_committed, 1);
        assert!(!all.all_known(t.duplicates().len()));
        // Per phase: phase 0 holds the cancel, phase 1 the ioc.
        assert_eq!(
            t.accounting(Some(0)).committed_by_kind.get("cancel"),
            Some(&1)
        );
        assert_eq!(t.accounting(Some(1)).committed, 1);
    }

    #[test]
    fn unanswered_and_stuck_transactions_fail_the_check_and_clean_runs_pass() {
        let mut t = Tracker::new(1);
        let a = t.add(h(1), 0, TxKind::Rest, 0);
        let b = t.add(h(2), 0, TxKind::Rest, 0);
        t.on_sent(a, 0, 0);
        t.on_sent(b, 0, 0);
        t.on_no_answer(a);
        t.on_admitted(b);
        t.resolve(a, EndState::Gone);
        t.resolve(b, EndState::Pending);
        let acc = t.accounting(None);
        assert_eq!(acc.unanswered, 1);
        assert_eq!(acc.stuck, 1);
        assert!(!acc.all_known(0));

        // A node that says why it dropped an admitted transaction gives it a known end.
        let mut dropping = Tracker::new(1);
        let e = dropping.add(h(5), 0, TxKind::Rest, 0);
        dropping.on_sent(e, 0, 0);
        dropping.on_admitted(e);
        dropping.resolve(e, EndState::Dropped("nonce_replayed".into()));
        let acc = dropping.accounting(None);
        assert_eq!(acc.dropped.get("nonce_replayed"), Some(&1));
        assert_eq!(acc.lost + acc.stuck, 0);
        assert!(acc.all_known(0));

        let mut clean = Tracker::new(1);
        let c = clean.add(h(3), 0, TxKind::Rest, 0);
        let d = clean.add(h(4), 0, TxKind::Rest, 0);
        clean.on_sent(c, 0, 0);
        clean.on_sent(d, 0, 0);
        clean.on_refused(d, "rate_limited", 1);
        clean.on_admitted(c);
        clean.on_block(1, &[ok(3)], 2);
        assert!(clean.unsettled().is_empty());
        assert!(clean.accounting(None).all_known(0));
    }
}
