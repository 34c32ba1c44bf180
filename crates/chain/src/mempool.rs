//! The pending transactions a proposer picks its blocks from.
//!
//! Admission is the cheap check of the design: structure, then
//! [`Ledger::check_transaction`] against the committed state at the host's clock, then the
//! signature (once, cached; a host that verified it already, in parallel and off the
//! consensus path, says so and the check is skipped).
//!
//! Bounds, so that a flood costs the flooder and not the market makers:
//! - a count and a byte budget for the whole pool, and a count per signer;
//! - two lanes. Cancels (batches of cancels only) and the dead-man switch go to a priority
//!   lane with its own budget, and a proposer takes that lane first: a pool full of
//!   placements never delays or refuses a cancel.
//!
//! Inside each lane the pool keeps arrival order, so a proposer's selection is first come,
//! first served; the state machine fixes the execution order anyway. When a lane is full a
//! new transaction is refused rather than evicting an older one, so a flood cannot push out
//! transactions that arrived first.

use crate::lookup::{LookupMap, LookupSet};
use crate::signatures::SignatureCache;
use dex_state::{Ledger, Rejection};
use dex_types::{
    AccountId, Action, ExecutionClass, Hash, SignatureError, SignedTransaction, TimestampMs,
    ValidationError,
};
use std::collections::BTreeMap;

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The same transaction is already pending.
    #[error("transaction {0} is already pending")]
    Duplicate(Hash),
    /// The pool (or its priority lane) holds its maximum; try again after the next block.
    #[error("the mempool is full ({capacity} transactions); try again after the next block")]
    Full {
        /// The capacity that was reached.
        capacity: usize,
    },
    /// The pool holds its maximum of bytes; try again after the next block.
    #[error("the mempool holds its maximum of {bytes_max} bytes; try again after the next block")]
    BytesFull {
        /// The byte budget.
        bytes_max: usize,
    },
    /// The signer has as many pending transactions in this lane as one signer may.
    #[error(
        "signer {signer} already has {pending} pending transactions (the most per signer); wait for the next block"
    )]
    SignerLimit {
        /// The signer.
        signer: AccountId,
        /// Its pending transactions in the lane.
        pending: usize,
    },
    /// Another pending transaction of the same signer uses this nonce; only one of them
    /// could execute.
    #[error("nonce {nonce} is already used by a pending transaction of this signer")]
    NoncePending {
        /// The nonce.
        nonce: u64,
    },
    /// The transaction breaks a structural rule.
    #[error("transaction is malformed: {0}")]
    Malformed(#[from] ValidationError),
    /// The signature does not verify.
    #[error("transaction signature is invalid: {0}")]
    Signature(#[from] SignatureError),
    /// The committed state refuses it (nonce, expiry, funds, market, authority).
    #[error("transaction refused: {0}")]
    Rejected(#[from] Rejection),
}

/// The bounds of a [`Mempool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Most pending transactions in the normal lane.
    pub count_max: usize,
    /// Most pending transactions in the priority lane (cancels, dead-man switch).
    pub priority_count_max: usize,
    /// Most encoded bytes of all pending transactions of both lanes.
    pub bytes_max: usize,
    /// Most pending transactions of one signer in each lane.
    pub per_signer_max: usize,
}

impl MempoolLimits {
    /// `count_max` for the normal lane, an eighth of it (at least 64) for the priority
    /// lane, 2 KiB per transaction on average, and a thousand per signer.
    pub fn with_capacity(count_max: usize) -> MempoolLimits {
        MempoolLimits {
            count_max,
            priority_count_max: (count_max / 8).max(64),
            bytes_max: count_max.saturating_mul(2_048),
            per_signer_max: 1_000,
        }
    }
}

/// The two lanes of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Lane {
    Priority = 0,
    Normal = 1,
}

impl Lane {
    fn of(signed: &SignedTransaction) -> Lane {
        let is_priority = signed.tx.action.execution_class() == ExecutionClass::Cancel
            || matches!(signed.tx.action, Action::ScheduleCancelAll(_));
        if is_priority {
            Lane::Priority
        } else {
            Lane::Normal
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    id: Hash,
    signed: SignedTransaction,
    bytes: usize,
}

/// Pending transactions in two lanes, each in arrival order, unique by id: see the module
/// docs.
#[derive(Debug, Clone)]
pub struct Mempool {
    /// (lane, arrival sequence) → transaction.
    queue: BTreeMap<(Lane, u64), Pending>,
    // The three indexes below are lookup-only (never iterated): selection and every other
    // ordered walk go through `queue`.
    /// Transaction id → its queue key.
    by_id: LookupMap<Hash, (Lane, u64)>,
    /// (signer, nonce) of every pending transaction.
    nonces: LookupSet<(AccountId, u64)>,
    /// Pending per (signer, lane); entries at zero are removed.
    per_signer: LookupMap<(AccountId, Lane), usize>,
    lane_len: [usize; 2],
    bytes: usize,
    next_sequence: u64,
    limits: MempoolLimits,
}

impl Mempool {
    /// An empty pool with the default limits around `capacity` ([`MempoolLimits::with_capacity`]).
    pub fn new(capacity: usize) -> Mempool {
        Mempool::with_limits(MempoolLimits::with_capacity(capacity))
    }

    /// An empty pool with these limits.
    pub fn with_limits(limits: MempoolLimits) -> Mempool {
        Mempool {
            queue: BTreeMap::new(),
            by_id: LookupMap::default(),
            nonces: LookupSet::default(),
            per_signer: LookupMap::default(),
            lane_len: [0; 2],
            bytes: 0,
            next_sequence: 0,
            limits,
        }
    }

    /// The pool's limits.
    pub fn limits(&self) -> MempoolLimits {
        self.limits
    }

    /// Pending transactions.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Encoded bytes of the pending transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The ids of the pending transactions, the priority lane first, each lane oldest first.
    pub fn ids(&self) -> impl Iterator<Item = &Hash> + '_ {
        self.queue.values().map(|pending| &pending.id)
    }

    /// Whether the transaction with this id is pending.
    pub fn contains(&self, id: &Hash) -> bool {
        self.by_id.contains_key(id)
    }

    /// Check `signed` and add it. `now` is the host's clock (for expiry). The signature is
    /// checked through `signatures` (a hit if the host recorded it as verified).
    pub fn insert(
        &mut self,
        signed: SignedTransaction,
        ledger: &Ledger,
        now: TimestampMs,
        signatures: &mut SignatureCache,
    ) -> Result<Hash, MempoolError> {
        let id = signed.hash();
        if self.by_id.contains_key(&id) {
            return Err(MempoolError::Duplicate(id));
        }
        let lane = Lane::of(&signed);
        let (lane_len, lane_max) = match lane {
            Lane::Priority => (self.lane_len[0], self.limits.priority_count_max),
            Lane::Normal => (self.lane_len[1], self.limits.count_max),
        };
        if lane_len >= lane_max {
            return Err(MempoolError::Full { capacity: lane_max });
        }
        let signer = signed.tx.signer;
        if self.nonces.contains(&(signer, signed.tx.nonce)) {
            return Err(MempoolError::NoncePending {
                nonce: signed.tx.nonce,
            });
        }
        let pending = self.per_signer.get(&(signer, lane)).copied().unwrap_or(0);
        if pending >= self.limits.per_signer_max {
            return Err(MempoolError::SignerLimit { signer, pending });
        }
        let nonce = signed.tx.nonce;
        let bytes = signed.encode().len();
        // The priority lane has its own count budget and is not held to the byte budget:
        // its transactions are small, and a pool full of placements must not refuse one.
        if lane == Lane::Normal && self.bytes.saturating_add(bytes) > self.limits.bytes_max {
            return Err(MempoolError::BytesFull {
                bytes_max: self.limits.bytes_max,
            });
        }
        signed.tx.validate()?;
        ledger.check_transaction(&signed, now)?;
        signatures.verify(id, &signed)?;
        let sequence = self.next_sequence;
        self.next_sequence = self
            .next_sequence
            .checked_add(1)
            .expect("bug: mempool sequence overflow");
        self.queue
            .insert((lane, sequence), Pending { id, signed, bytes });
        self.by_id.insert(id, (lane, sequence));
        self.nonces.insert((signer, nonce));
        *self.per_signer.entry((signer, lane)).or_insert(0) += 1;
        self.lane_len[lane as usize] += 1;
        self.bytes += bytes;
        Ok(id)
    }

    /// Up to `count_max` transactions, the priority lane first, each lane oldest first:
    /// what a proposer puts in its block.
    pub fn select(&self, count_max: usize) -> Vec<SignedTransaction> {
        self.queue
            .values()
            .take(count_max)
            .map(|pending| pending.signed.clone())
            .collect()
    }

    fn remove_key(&mut self, key: (Lane, u64)) {
        let Some(pending) = self.queue.remove(&key) else {
            return;
        };
        let lane = key.0;
        self.by_id.remove(&pending.id);
        self.nonces
            .remove(&(pending.signed.tx.signer, pending.signed.tx.nonce));
        let slot = (pending.signed.tx.signer, lane);
        if let Some(count) = self.per_signer.get_mut(&slot) {
            *count -= 1;
            if *count == 0 {
                self.per_signer.remove(&slot);
            }
        }
        self.lane_len[lane as usize] -= 1;
        self.bytes -= pending.bytes;
    }

    /// Forget the transactions of a committed block.
    pub fn remove_committed(&mut self, txs: &[SignedTransaction]) {
        for signed in txs {
            if let Some(&key) = self.by_id.get(&signed.hash()) {
                self.remove_key(key);
            }
        }
    }

    /// Drop every transaction the committed state now refuses at `now` (expired, nonce
    /// used, funds gone): the pool only holds what could still execute. Returns the dropped
    /// ids with the reasons, in queue order.
    pub fn revalidate(&mut self, ledger: &Ledger, now: TimestampMs) -> Vec<(Hash, Rejection)> {
        let stale: Vec<((Lane, u64), Hash, Rejection)> = self
            .queue
            .iter()
            .filter_map(|(key, pending)| {
                ledger
                    .check_transaction(&pending.signed, now)
                    .err()
                    .map(|rejection| (*key, pending.id, rejection))
            })
            .collect();
        stale
            .into_iter()
            .map(|(key, id, rejection)| {
                self.remove_key(key);
                (id, rejection)
            })
            .collect()
    }

    /// Check the pool's own bookkeeping (tests and the simulator): ids, lanes, per-signer
    /// counts and bytes all agree with the queue.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.queue.len() != self.by_id.len() {
            return Err(format!(
                "{} queued but {} ids",
                self.queue.len(),
                self.by_id.len()
            ));
        }
        let mut per_signer: LookupMap<(AccountId, Lane), usize> = LookupMap::default();
        let mut lane_len = [0usize; 2];
        let mut bytes = 0usize;
        let mut nonces = LookupSet::default();
        for (key, pending) in &self.queue {
            if self.by_id.get(&pending.id) != Some(key) {
                return Err(format!("id {} does not point at its entry", pending.id));
            }
            if pending.signed.hash() != pending.id || Lane::of(&pending.signed) != key.0 {
                return Err(format!("entry {} is in the wrong place", pending.id));
            }
            *per_signer
                .entry((pending.signed.tx.signer, key.0))
                .or_insert(0) += 1;
            lane_len[key.0 as usize] += 1;
            bytes += pending.bytes;
            if !nonces.insert((pending.signed.tx.signer, pending.signed.tx.nonce)) {
                return Err(format!(
                    "two pending transactions share the nonce of {}",
                    pending.id
                ));
            }
        }
        if nonces != self.nonces {
            return Err("pending nonces disagree with the queue".to_owned());
        }
        if per_signer != self.per_signer || lane_len != self.lane_len || bytes != self.bytes {
            return Err("counters disagree with the queue".to_owned());
        }
        if lane_len[0] > self.limits.priority_count_max || lane_len[1] > self.limits.count_max {
            return Err("a lane is over its capacity".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, transfer};
    use proptest::prelude::*;

    #[test]
    fn admits_checks_and_selects_in_arrival_order() {
        let ledger = testkit::ledger();
        let mut sigs = SignatureCache::new(64);
        let mut pool = Mempool::new(3);
        let now = testkit::GENESIS_TIME;
        let a = transfer(1, 5);
        let b = transfer(2, 1);
        pool.insert(a.clone(), &ledger, now, &mut sigs).unwrap();
        pool.insert(b.clone(), &ledger, now, &mut sigs).unwrap();
        assert_eq!(
            pool.insert(a.clone(), &ledger, now, &mut sigs),
            Err(MempoolError::Duplicate(a.hash()))
        );
        let mut forged = transfer(3, 1);
        forged.signature[5] ^= 0x40;
        assert!(matches!(
            pool.insert(forged, &ledger, now, &mut sigs),
            Err(MempoolError::Signature(_))
        ));
        // An unfunded sender is refused by the ledger's admission check.
        let unfunded = testkit::transfer_from(testkit::unfunded_key(), 1);
        assert!(matches!(
            pool.insert(unfunded, &ledger, now, &mut sigs),
            Err(MempoolError::Rejected(_))
        ));
        assert_eq!(pool.select(10), vec![a.clone(), b.clone()]);
        assert_eq!(pool.select(1), vec![a.clone()]);
        pool.insert(transfer(3, 1), &ledger, now, &mut sigs)
            .unwrap();
        assert_eq!(
            pool.insert(transfer(4, 1), &ledger, now, &mut sigs),
            Err(MempoolError::Full { capacity: 3 })
        );
        pool.remove_committed(&[a]);
        assert_eq!(pool.len(), 2);
        assert!(!pool.contains(&transfer(1, 5).hash()));
    }

    #[test]
    fn revalidation_drops_expired_transactions() {
        let ledger = testkit::ledger();
        let mut sigs = SignatureCache::new(64);
        let mut pool = Mempool::new(10);
        let now = testkit::GENESIS_TIME;
        pool.insert(transfer(1, 1), &ledger, now, &mut sigs)
            .unwrap();
        assert!(pool.revalidate(&ledger, now).is_empty());
        assert_eq!(pool.len(), 1);
        let dropped = pool.revalidate(&ledger, TimestampMs(u64::MAX));
        assert!(pool.is_empty());
        // The caller learns which transaction went and why.
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].0, transfer(1, 1).hash());
        assert!(matches!(dropped[0].1, Rejection::Expired { .. }));
    }

    #[test]
    fn priority_lane_is_admitted_when_full_and_selected_first() {
        let ledger = testkit::ledger();
        let mut sigs = SignatureCache::new(64);
        let mut pool = Mempool::new(2);
        let now = testkit::GENESIS_TIME;
        pool.insert(transfer(1, 1), &ledger, now, &mut sigs)
            .unwrap();
        pool.insert(transfer(2, 1), &ledger, now, &mut sigs)
            .unwrap();
        assert_eq!(
            pool.insert(transfer(3, 1), &ledger, now, &mut sigs),
            Err(MempoolError::Full { capacity: 2 })
        );
        // The normal lane is full, yet the dead-man switch gets in and goes first.
        let switch = testkit::dead_man_switch(3, 1);
        pool.insert(switch.clone(), &ledger, now, &mut sigs)
            .unwrap();
        assert_eq!(pool.select(1), vec![switch]);
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.check_invariants(), Ok(()));
    }

    #[test]
    fn one_signer_cannot_fill_the_pool() {
        let ledger = testkit::ledger();
        let mut sigs = SignatureCache::new(64);
        let mut pool = Mempool::with_limits(MempoolLimits {
            per_signer_max: 2,
            ..MempoolLimits::with_capacity(100)
        });
        let now = testkit::GENESIS_TIME;
        pool.insert(transfer(1, 1), &ledger, now, &mut sigs)
            .unwrap();
        pool.insert(transfer(1, 2), &ledger, now, &mut sigs)
            .unwrap();
        assert!(matches!(
            pool.insert(transfer(1, 3), &ledger, now, &mut sigs),
            Err(MempoolError::SignerLimit { pending: 2, .. })
        ));
        // Another signer is unaffected, and the limit frees up as blocks commit.
        pool.insert(transfer(2, 1), &ledger, now, &mut sigs)
            .unwrap();
        pool.remove_committed(&[transfer(1, 1)]);
        pool.insert(transfer(1, 3), &ledger, now, &mut sigs)
            .unwrap();
        assert_eq!(pool.check_invariants(), Ok(()));
    }

    #[test]
    fn byte_budget_bounds_the_normal_lane() {
        let ledger = testkit::ledger();
        let mut sigs = SignatureCache::new(64);
        let one = transfer(1, 1).encode().len();
        let mut pool = Mempool::with_limits(MempoolLimits {
            bytes_max: one * 2,
            ..MempoolLimits::with_capacity(100)
        });
        let now = testkit::GENESIS_TIME;
        pool.insert(transfer(1, 1), &ledger, now, &mut sigs)
            .unwrap();
        pool.insert(transfer(2, 1), &ledger, now, &mut sigs)
            .unwrap();
        assert_eq!(
            pool.insert(transfer(3, 1), &ledger, now, &mut sigs),
            Err(MempoolError::BytesFull { bytes_max: one * 2 })
        );
        assert_eq!(pool.bytes(), one * 2);
    }

    proptest! {
        /// Whatever mix of inserts and removals, ids and queue agree, nothing repeats, and
        /// the pool never exceeds its capacity.
        #[test]
        fn index_and_queue_agree(ops in proptest::collection::vec((0u64..4, 1u64..6, any::<bool>(), any::<bool>()), 1..40)) {
            let ledger = testkit::ledger();
            let mut sigs = SignatureCache::new(256);
            let mut pool = Mempool::with_limits(MempoolLimits {
                count_max: 6,
                priority_count_max: 3,
                bytes_max: 5 * transfer(0, 1).encode().len(),
                per_signer_max: 2,
            });
            for (trader, nonce, priority, remove) in ops {
                let tx = if priority {
                    testkit::dead_man_switch(trader, nonce)
                } else {
                    transfer(trader, nonce)
                };
                if remove {
                    pool.remove_committed(std::slice::from_ref(&tx));
                    prop_assert!(!pool.contains(&tx.hash()));
                } else {
                    let _ = pool.insert(tx, &ledger, testkit::GENESIS_TIME, &mut sigs);
                }
                prop_assert!(pool.len() <= 6 + 3);
                prop_assert!(pool.bytes() <= pool.limits().bytes_max + 3 * 512);
                prop_assert_eq!(pool.check_invariants(), Ok(()));
            }
        }
    }
}
