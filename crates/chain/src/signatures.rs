//! A bounded memory of transaction signatures already verified, so that a validator checks
//! each signature once: at mempool admission, and not again when the transaction comes
//! back inside a proposal.

use crate::lookup::LookupMap;
use dex_types::{Hash, SIGNATURE_BYTES, SignatureError, SignedTransaction};
use std::collections::VecDeque;

/// Verified `(transaction id, signature)` pairs, oldest evicted first.
///
/// The id does not cover the signature, so the cache keys on both: a block carrying a
/// known transaction with other signature bytes is checked again, and every validator
/// reaches the same verdict on it whatever it saw before.
#[derive(Debug, Clone)]
pub struct SignatureCache {
    /// Lookup only (never iterated; eviction follows `order`).
    verified: LookupMap<Hash, [u8; SIGNATURE_BYTES]>,
    order: VecDeque<Hash>,
    capacity: usize,
}

impl SignatureCache {
    /// A cache of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> SignatureCache {
        SignatureCache {
            verified: LookupMap::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether this exact transaction and signature verified before.
    pub fn is_verified(&self, id: &Hash, signed: &SignedTransaction) -> bool {
        self.verified
            .get(id)
            .is_some_and(|signature| *signature == signed.signature)
    }

    /// Verify `signed` (whose id is `id`) unless it verified before; remember a success.
    pub fn verify(&mut self, id: Hash, signed: &SignedTransaction) -> Result<(), SignatureError> {
        if self.is_verified(&id, signed) {
            return Ok(());
        }
        signed.verify()?;
        self.record_verified(id, signed);
        Ok(())
    }

    /// Remember that `signed` (whose id is `id`) verified: the caller checked it with
    /// [`SignedTransaction::verify`] itself.
    pub fn record_verified(&mut self, id: Hash, signed: &SignedTransaction) {
        if self.verified.insert(id, signed.signature).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.verified.remove(&oldest);
            }
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.verified.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.verified.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::transfer;

    #[test]
    fn remembers_valid_signatures_and_rechecks_other_bytes() {
        let mut cache = SignatureCache::new(2);
        let tx = transfer(1, 1);
        let id = tx.hash();
        assert!(!cache.is_verified(&id, &tx));
        cache.verify(id, &tx).unwrap();
        assert!(cache.is_verified(&id, &tx));

        // Same id, other signature bytes: not known, and it fails verification.
        let mut forged = tx.clone();
        forged.signature[0] ^= 1;
        assert!(!cache.is_verified(&id, &forged));
        assert!(cache.verify(id, &forged).is_err());
        assert!(cache.is_verified(&id, &tx));
    }

    #[test]
    fn evicts_the_oldest_beyond_capacity() {
        let mut cache = SignatureCache::new(2);
        let txs: Vec<_> = (1..=3).map(|n| transfer(1, n)).collect();
        for tx in &txs {
            cache.verify(tx.hash(), tx).unwrap();
        }
        assert_eq!(cache.len(), 2);
        assert!(!cache.is_verified(&txs[0].hash(), &txs[0]));
        assert!(cache.is_verified(&txs[2].hash(), &txs[2]));
    }
}
