//! Verify transaction signatures in parallel on all cores.
//!
//! A signed order's real cost on a validator is its ed25519 check (about 40 µs of one core);
//! matching, execution and the durable commit together cost a few µs. So the node checks
//! signatures off its serial path, on a dedicated pool of threads, and hands the serial path
//! only transactions whose signatures already verified. [`TxVerifier`] is that pool.
//!
//! ## One rule
//! The result for every input is exactly [`SignedTransaction::verify`]'s: the signer's
//! bytes must decompress to a curve point ([`SignatureError::InvalidKey`] otherwise), and
//! `verify_strict` must accept the signature over the transaction's signing message
//! ([`SignatureError::BadSignature`] otherwise). The verifier only changes where and how
//! often the work runs: it never caches a verdict, only decompressed keys, and a key is
//! cached under the very 32 bytes it was decompressed from, so a cached key is always the
//! key [`SignedTransaction::verify`] would have decompressed. Property tests compare the two
//! on random, mutated and malformed signatures and keys.
//!
//! ## Why this design
//! - A dedicated [`rayon::ThreadPool`], not the global one: the node's other CPU-heavy
//!   work (execution, RocksDB's compactions) must not queue behind, or in front of, a
//!   burst of signature checks it did not ask for, and the pool's size is the node's
//!   choice ([`TxVerifier::new`]). `verify_batch` splits the slice with rayon's work
//!   stealing and collects in input order.
//! - The key cache is a [`quick_cache::sync::Cache`]: sharded locks, so the pool's threads
//!   rarely contend; bounded by an item count; and S3-FIFO eviction, which admits a new
//!   key to a small probationary queue first. A flood of transactions from fresh keys
//!   (each seen once) therefore cycles through that queue instead of evicting the keys of
//!   the market makers who sign every block. Decompressing a key costs about half a
//!   signature check, so a hit saves about a third of the work for a returning signer.
//!   Keys that fail to decompress are never cached (there is nothing to cache, and a
//!   bound on them would only be a second thing to flood).
//!
//! Nothing here is part of the state machine: the result of a check is the same whatever
//! the pool size, cache size or cache contents.

use dex_types::{AccountId, SignatureError, SignedTransaction, VerifyingKey};
use rayon::prelude::*;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

/// Transactions one pool task verifies at least, so the splitting overhead (well under a
/// µs) stays small beside the ~40 µs of each check, while a block still spreads over
/// every thread.
const SPLIT_TXS_MIN: usize = 4;

/// Parallel signature verification with a shared cache of decompressed keys. Cheap to
/// clone (the pool and the cache are shared), `Send + Sync`.
#[derive(Clone)]
pub struct TxVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    pool: rayon::ThreadPool,
    threads: usize,
    /// `None` when the node asked for no cache (capacity 0).
    keys: Option<quick_cache::sync::Cache<AccountId, VerifyingKey>>,
}

impl TxVerifier {
    /// A verifier with a pool of `threads` threads (0: one per core, as
    /// [`std::thread::available_parallelism`] reports, or one if it cannot tell) and a
    /// cache of at most about `key_cache_capacity` decompressed keys (0: no cache, every
    /// check decompresses its key).
    ///
    /// Panics with "bug: ..." if the operating system refuses to start the threads: a node
    /// that cannot verify signatures cannot run.
    pub fn new(threads: usize, key_cache_capacity: usize) -> TxVerifier {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
        } else {
            threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|index| format!("dex-verify-{index}"))
            .build()
            .unwrap_or_else(|error| panic!("bug: cannot start the verifier threads: {error}"));
        let keys =
            (key_cache_capacity > 0).then(|| quick_cache::sync::Cache::new(key_cache_capacity));
        TxVerifier {
            inner: Arc::new(Inner {
                pool,
                threads,
                keys,
            }),
        }
    }

    /// Verify one transaction on the calling thread (not the pool), using the shared key
    /// cache. The same result as [`SignedTransaction::verify`].
    pub fn verify_one(&self, tx: &SignedTransaction) -> Result<(), SignatureError> {
        let key = self.key(&tx.tx.signer)?;
        tx.verify_with_key(&key)
    }

    /// Verify `txs` in parallel on the pool; the results are in input order, each the same
    /// as [`SignedTransaction::verify`] of that transaction. The calling thread waits (an
    /// async caller should call it from a blocking task).
    pub fn verify_batch(&self, txs: &[SignedTransaction]) -> Vec<Result<(), SignatureError>> {
        self.inner.pool.install(|| {
            txs.par_iter()
                .with_min_len(SPLIT_TXS_MIN)
                .map(|tx| self.verify_one(tx))
                .collect()
        })
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.inner.threads
    }

    /// Keys held in the cache (0 without one).
    pub fn cached_keys(&self) -> usize {
        self.inner.keys.as_ref().map_or(0, |keys| keys.len())
    }

    /// The decompressed key of `signer`, from the cache or decompressed (and cached) now.
    fn key(&self, signer: &AccountId) -> Result<VerifyingKey, SignatureError> {
        match &self.inner.keys {
            Some(keys) => keys.get_or_insert_with(signer, || signer.verifying_key()),
            None => signer.verifying_key(),
        }
    }
}

impl fmt::Debug for TxVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxVerifier")
            .field("threads", &self.inner.threads)
            .field("cached_keys", &self.cached_keys())
            .finish()
    }
}

#[cfg(test)]
mod tests;
