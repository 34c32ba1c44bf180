//! A cache of decompressed ed25519 public keys, for the node's parallel signature checks.
//!
//! Decompressing a public key costs about as much as half a signature check, and the same
//! accounts sign again and again, so the node keeps each signer's `VerifyingKey`. The cache
//! is a plain data structure: the node fills it (serially, for signers it has not seen) and
//! then verifies a block's signatures on several threads through shared `&` references
//! ([`VerifyingKeyCache::verify_cached`]). Nothing here touches the state machine: the
//! ledger executes transactions whose signatures were already checked.

use dex_types::sign::SignatureError;
use dex_types::{AccountId, SignedTransaction, VerifyingKey};
use std::collections::BTreeMap;

/// Decompressed public keys by signer, bounded by `capacity`.
#[derive(Debug, Clone)]
pub struct VerifyingKeyCache {
    keys: BTreeMap<AccountId, VerifyingKey>,
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
    pub fn get(&self, signer: &AccountId) -> Option<&VerifyingKey> {
        self.keys.get(signer)
    }

    /// The key of `signer`, decompressed and cached on first use. When the cache is full
    /// it is emptied first: a simple bound that costs one decompression per signer after.
    pub fn key(&mut self, signer: &AccountId) -> Result<VerifyingKey, SignatureError> {
        if let Some(key) = self.keys.get(signer) {
            return Ok(*key);
        }
        let key = signer.verifying_key()?;
        if self.keys.len() >= self.capacity {
            self.keys.clear();
        }
        self.keys.insert(*signer, key);
        Ok(key)
    }

    /// Make sure every signer of `txs` is cached (call before verifying them in parallel).
    /// Signers whose bytes are not a valid key are skipped; their transactions fail in
    /// [`VerifyingKeyCache::verify_cached`].
    pub fn warm<'a>(&mut self, txs: impl IntoIterator<Item = &'a SignedTransaction>) {
        for signed in txs {
            let _ = self.key(&signed.tx.signer);
        }
    }

    /// Verify a transaction's signature (`verify_strict`), caching its signer's key.
    pub fn verify(&mut self, signed: &SignedTransaction) -> Result<(), SignatureError> {
        let key = self.key(&signed.tx.signer)?;
        signed.verify_with_key(&key)
    }

    /// Verify with the cached key only (read-only, so threads can share the cache); a signer
    /// that is not cached is decompressed for this call without being stored.
    pub fn verify_cached(&self, signed: &SignedTransaction) -> Result<(), SignatureError> {
        match self.keys.get(&signed.tx.signer) {
            Some(key) => signed.verify_with_key(key),
            None => signed.verify(),
        }
    }
}
