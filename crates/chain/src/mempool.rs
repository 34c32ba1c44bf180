//! The pending transactions a proposer picks its blocks from.
//!
//! Admission is the cheap check of the design: signature (once, cached), then
//! [`Ledger::check_transaction`] against the committed state at the host's clock. The pool
//! keeps arrival order, so a proposer's selection is first come, first served; the state
//! machine fixes the execution order anyway. It is bounded in count; when it is full a new
//! transaction is refused rather than evicting an older one, so a flood cannot push out
//! transactions that arrived first.

use crate::signatures::SignatureCache;
use dex_state::{Ledger, Rejection};
use dex_types::{Hash, SignatureError, SignedTransaction, TimestampMs, ValidationError};
use std::collections::BTreeMap;

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The same transaction is already pending.
    #[error("transaction {0} is already pending")]
    Duplicate(Hash),
    /// The pool holds its maximum; try again after the next block.
    #[error("the mempool is full ({capacity} transactions); try again after the next block")]
    Full {
        /// The pool's capacity.
        capacity: usize,
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

/// Pending transactions in arrival order, unique by id, at most `capacity` of them.
#[derive(Debug, Clone)]
pub struct Mempool {
    /// Arrival sequence → transaction.
    queue: BTreeMap<u64, (Hash, SignedTransaction)>,
    /// Transaction id → arrival sequence.
    by_id: BTreeMap<Hash, u64>,
    next_sequence: u64,
    capacity: usize,
}

impl Mempool {
    /// An empty pool holding at most `capacity` transactions.
    pub fn new(capacity: usize) -> Mempool {
        Mempool {
            queue: BTreeMap::new(),
            by_id: BTreeMap::new(),
            next_sequence: 0,
            capacity,
        }
    }

    /// Pending transactions.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether the transaction with this id is pending.
    pub fn contains(&self, id: &Hash) -> bool {
        self.by_id.contains_key(id)
    }

    /// Check `signed` and add it. `now` is the host's clock (for expiry).
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
        if self.queue.len() >= self.capacity {
            return Err(MempoolError::Full {
                capacity: self.capacity,
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
        self.queue.insert(sequence, (id, signed));
        self.by_id.insert(id, sequence);
        Ok(id)
    }

    /// Up to `count_max` transactions, oldest first: what a proposer puts in its block.
    pub fn select(&self, count_max: usize) -> Vec<SignedTransaction> {
        self.queue
            .values()
            .take(count_max)
            .map(|(_, signed)| signed.clone())
            .collect()
    }

    /// Forget the transactions of a committed block.
    pub fn remove_committed(&mut self, txs: &[SignedTransaction]) {
        for signed in txs {
            if let Some(sequence) = self.by_id.remove(&signed.hash()) {
                self.queue.remove(&sequence);
            }
        }
    }

    /// Drop every transaction the committed state now refuses at `now` (expired, nonce
    /// used, funds gone): the pool only holds what could still execute.
    pub fn revalidate(&mut self, ledger: &Ledger, now: TimestampMs) {
        let stale: Vec<(u64, Hash)> = self
            .queue
            .iter()
            .filter(|(_, (_, signed))| ledger.check_transaction(signed, now).is_err())
            .map(|(sequence, (id, _))| (*sequence, *id))
            .collect();
        for (sequence, id) in stale {
            self.queue.remove(&sequence);
            self.by_id.remove(&id);
        }
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
        pool.revalidate(&ledger, now);
        assert_eq!(pool.len(), 1);
        pool.revalidate(&ledger, TimestampMs(u64::MAX));
        assert!(pool.is_empty());
    }

    proptest! {
        /// Whatever mix of inserts and removals, ids and queue agree, nothing repeats, and
        /// the pool never exceeds its capacity.
        #[test]
        fn index_and_queue_agree(ops in proptest::collection::vec((0u64..4, 1u64..6, any::<bool>()), 1..40)) {
            let ledger = testkit::ledger();
            let mut sigs = SignatureCache::new(256);
            let mut pool = Mempool::new(6);
            for (trader, nonce, remove) in ops {
                let tx = transfer(trader, nonce);
                if remove {
                    pool.remove_committed(std::slice::from_ref(&tx));
                    prop_assert!(!pool.contains(&tx.hash()));
                } else {
                    let _ = pool.insert(tx, &ledger, testkit::GENESIS_TIME, &mut sigs);
                }
                prop_assert!(pool.len() <= 6);
                prop_assert_eq!(pool.queue.len(), pool.by_id.len());
                for (sequence, (id, signed)) in &pool.queue {
                    prop_assert_eq!(pool.by_id.get(id), Some(sequence));
                    prop_assert_eq!(signed.hash(), *id);
                }
            }
        }
    }
}
