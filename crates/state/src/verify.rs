//! A cache of checked ed25519 public keys, for signature checks of repeated signers.
//!
//! Checking a signer's key for the chain's signature rule (a curve point, not of small
//! order; see [`dex_types::sign`]) costs a point decompression, about a tenth of a
//! single signature check, and the same accounts sign again and again, so the cache keeps
//! each signer's [`SignerKey`]. The verdicts are exactly [`SignedTransaction::verify`]'s:
//! a key is cached under the bytes it was checked from, and keys that fail the check are
//! never cached. The cache is a plain data structure: a caller fills it (serially, for
//! signers it has not seen) and may then verify on several threads through shared `&`
//! references ([`VerifyingKeyCache::verify_cached`]). Nothing here touches the state
//! machine: the ledger executes transactions whose signatures were already checked.

use dex_types::sign::SignatureError;
use dex_types::{AccountId, SignedTransaction, SignerKey};
use std::collections::BTreeMap;

/// Checked public keys by signer, bounded by `capacity`.
#[derive(Debug, Clone)]
pub struct VerifyingKeyCache {
    keys: BTreeMap<AccountId, SignerKey>,
    capacity: usize,
}

impl VerifyingKeyCache {
    /// An empty cache holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        VerifyingKeyCache {
            keys: BTreeMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The cached key of `signer`, if any.
    pub fn get(&self, signer: &AccountId) -> Option<&SignerKey> {
        self.keys.get(signer)
    }

    /// The key of `signer`, checked and cached on first use
    /// ([`SignatureError::InvalidKey`] or [`SignatureError::WeakKey`] if it fails, and then
    /// not cached). When the cache is full it is emptied first: a simple bound that costs
    /// one key check per signer after.
    pub fn key(&mut self, signer: &AccountId) -> Result<SignerKey, SignatureError> {
        if let Some(key) = self.keys.get(signer) {
            return Ok(*key);
        }
        let key = signer.signer_key()?;
        if self.keys.len() >= self.capacity {
            self.keys.clear();
        }
        self.keys.insert(*signer, key);
        Ok(key)
    }

    /// Make sure every signer of `txs` is cached (call before verifying them in parallel).
    /// Signers whose keys fail the check are skipped; their transactions fail in
    /// [`VerifyingKeyCache::verify_cached`] with the same error.
    pub fn warm<'a>(&mut self, txs: impl IntoIterator<Item = &'a SignedTransaction>) {
        for signed in txs {
            let _ = self.key(&signed.tx.signer);
        }
    }

    /// Verify a transaction's signature by the chain's rule, caching its signer's key. The
    /// same result as [`SignedTransaction::verify`].
    pub fn verify(&mut self, signed: &SignedTransaction) -> Result<(), SignatureError> {
        let key = self.key(&signed.tx.signer)?;
        signed.verify_with_signer_key(&key)
    }

    /// Verify with the cached key only (read-only, so threads can share the cache); a signer
    /// that is not cached is decompressed for this call without being stored.
    pub fn verify_cached(&self, signed: &SignedTransaction) -> Result<(), SignatureError> {
        match self.keys.get(&signed.tx.signer) {
            Some(key) => signed.verify_with_signer_key(key),
            None => signed.verify(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_types::{
        Action, Amount, AssetId, ChainId, Keypair, TimestampMs, Transaction, Transfer,
    };
    use proptest::prelude::*;

    fn signed(seed: u8, nonce: u64) -> SignedTransaction {
        let key = Keypair::from_seed([seed; 32]);
        key.sign(Transaction {
            chain_id: ChainId(5),
            account: key.account_id(),
            signer: key.account_id(),
            nonce,
            expires_at: TimestampMs(1_000),
            action: Action::Transfer(Transfer {
                to: AccountId([3; 32]),
                asset: AssetId(0),
                amount: Amount(1),
            }),
        })
        .unwrap()
    }

    /// `tx` with its signer replaced by `signer` (its signature no longer matches).
    fn with_signer(mut tx: SignedTransaction, signer: [u8; 32]) -> SignedTransaction {
        tx.tx.signer = AccountId(signer);
        tx.tx.account = tx.tx.signer;
        tx
    }

    #[test]
    fn weak_and_invalid_keys_are_refused_and_not_cached() {
        let mut cache = VerifyingKeyCache::new(8);
        let good = signed(1, 1);
        assert_eq!(cache.verify(&good), Ok(()));
        // The identity point (small order), with the signature that passes the cofactored
        // equation for every message: refused as a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut forged = with_signer(good.clone(), identity);
        forged.signature = [0; 64];
        forged.signature[0] = 1;
        let weak = Err(SignatureError::WeakKey {
            signer: AccountId(identity),
        });
        assert_eq!(cache.verify(&forged), weak);
        assert_eq!(cache.verify_cached(&forged), weak);
        // y = 2 is not a curve point.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        let invalid = with_signer(good.clone(), not_a_point);
        assert_eq!(
            cache.verify(&invalid),
            Err(SignatureError::InvalidKey {
                signer: AccountId(not_a_point)
            })
        );
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.get(&good.tx.signer).map(SignerKey::account_id),
            Some(good.tx.signer)
        );
    }

    #[test]
    fn a_full_cache_is_emptied_first() {
        let mut cache = VerifyingKeyCache::new(2);
        let txs: Vec<_> = (1..=3).map(|seed| signed(seed, 1)).collect();
        cache.warm(&txs);
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&txs[2].tx.signer).is_some());
        assert!(cache.get(&txs[0].tx.signer).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Cached or not, the verdict is `SignedTransaction::verify`'s.
        #[test]
        fn verdicts_are_the_rule(
            seed in 1u8..6,
            nonce in 0u64..1_000,
            flip in proptest::option::of(0usize..512),
            signer in proptest::option::of(any::<[u8; 32]>()),
        ) {
            let mut tx = signed(seed, nonce);
            if let Some(bit) = flip {
                tx.signature[bit / 8] ^= 1 << (bit % 8);
            }
            if let Some(signer) = signer {
                tx = with_signer(tx, signer);
            }
            let expected = tx.verify();
            let mut cache = VerifyingKeyCache::new(4);
            prop_assert_eq!(cache.verify_cached(&tx), expected);
            cache.warm([&tx]);
            prop_assert_eq!(cache.verify_cached(&tx), expected);
            prop_assert_eq!(cache.verify(&tx), expected);
        }
    }
}
