//! Verify transaction signatures in batches, in parallel on all cores.
//!
//! A signed order's real cost on a validator is its ed25519 check; matching, execution and
//! the durable commit together cost a few µs. So the node checks signatures off its serial
//! path, on a dedicated pool of threads, and hands the serial path only transactions whose
//! signatures already verified. [`TxVerifier`] is that pool.
//!
//! ## One rule
//! The result for every input is exactly [`SignedTransaction::verify`]'s, the chain's rule
//! (ZIP-215 with small-order keys refused, see [`dex_types::sign`]): the signer's bytes
//! must be a curve point ([`SignatureError::InvalidKey`]) not of small order
//! ([`SignatureError::WeakKey`]), and the signature over the transaction's signing message
//! must pass ZIP-215 ([`SignatureError::BadSignature`]). The verifier only changes where,
//! how often and in which grouping the work runs; property tests compare the two on
//! random, mutated and malformed signatures and keys, and on every way of splitting a batch.
//!
//! ## Batches
//! [`TxVerifier::verify_batch`] splits its input into chunks of at most
//! [`CHUNK_TXS_MAX`] and checks each chunk on the pool as one ZIP-215 batch
//! (`ed25519_zebra::batch`): one multi-scalar multiplication over random 128-bit
//! coefficients instead of one check per signature, about three times fewer CPU cycles
//! per signature (docs/adr/0004). Per chunk:
//! 1. each signer's key is checked first, as the single rule does (from the cache, or
//!    decompressed now); a signer that fails gets the single rule's error and stays out of
//!    the batch;
//! 2. the others are checked as one batch. ZIP-215's batch equation holds for every set of
//!    items that each pass the single check, and for a set with any failing item it holds
//!    only with probability about 2^-128 over coefficients drawn from a CSPRNG
//!    (ChaCha20 seeded from the operating system per chunk) that the sender cannot
//!    predict. So a passing batch means every item passes;
//! 3. a failing batch is checked again item by item with the single rule, which gives
//!    each item its exact verdict.
//!
//! So the verdict of every item is the single rule's, whatever the chunking, the pool size
//! or the random draw; only the time differs. One invalid signature costs its chunk the
//! single checks (about three times the batch cost); senders of invalid signatures are
//! banned by the node. If the operating system's random source ever fails, the chunk is
//! checked item by item: slower, never wrong.
//!
//! Inputs of fewer than [`INLINE_TXS_MAX`] transactions are checked as one chunk on the
//! calling thread: at a moderate arrival rate the pool's threads are asleep, and waking
//! them cost more than splitting a small input saved (`sigrules_small`). Chunks with fewer
//! than [`BATCH_TXS_MIN`] keys that pass are checked item by item: a batch of two costs
//! about as much as their single checks.
//!
//! ## Why this design
//! - A dedicated [`rayon::ThreadPool`], not the global one: the node's other CPU-heavy
//!   work (execution, RocksDB's compactions) must not queue behind, or in front of, a
//!   burst of signature checks it did not ask for, and the pool's size is the node's
//!   choice ([`TxVerifier::new`]).
//! - Chunks of at most [`CHUNK_TXS_MAX`], and at least one chunk per thread: a batch's cost
//!   per signature keeps falling with its size, steeply up to about 128 and slowly after,
//!   while a block must still spread over every thread and a failed batch's fallback costs
//!   single checks of the whole chunk.
//! - A cache of checked keys ([`SignerKey`]) per signer, a [`quick_cache::sync::Cache`]:
//!   sharded locks, so the pool's threads rarely contend; bounded by an item count; and
//!   S3-FIFO eviction, which admits a new key to a small probationary queue first, so a
//!   flood of fresh keys (each seen once) cycles through that queue instead of evicting the
//!   keys of the market makers who sign every block. Checking a key costs a point
//!   decompression, about a third of a batched signature check, so a hit saves that for
//!   a returning signer (`verify_batch` runs about 1.6 times as fast with a warm cache as
//!   without one); it also gives [`TxVerifier::verify_one`] and the fallback checks a key
//!   ready to use. Keys that fail the check are never cached (there is
//!   nothing to reuse, and a bound on them would only be a second thing to flood).
//!
//! Nothing here is part of the state machine: the result of a check is the same whatever
//! the pool size, cache size, cache contents or random draw. Randomness lives here, in a
//! shell crate, never in the pure crates.

use dex_types::{AccountId, Hash, SignatureError, SignedTransaction, SignerKey};
use ed25519_zebra::{Signature, VerificationKeyBytes, batch};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, SeedableRng};
use rayon::prelude::*;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

/// The most transactions one ZIP-215 batch checks. Measured (`sigrules`, one thread, four
/// runs on a shared machine): 40–43 k/s in batches of 16, 41–46 k/s of 64, 47–53 k/s of
/// 128, 48–57 k/s of 256, 51–64 k/s of 512, 59–74 k/s of 1,024. Past 512 the gain no
/// longer pays for a dearer fallback (one invalid signature costs single checks of its
/// whole chunk) and a coarser spread of mid-sized inputs over the threads.
pub const CHUNK_TXS_MAX: usize = 512;

/// Inputs shorter than this are verified as one chunk on the calling thread, without
/// waking the pool. Measured after 2 ms of idleness (`sigrules_small`, a two-thread pool,
/// four runs on a shared machine): for 2 transactions the pool took more than twice as
/// long; up to 16 one batch on the calling thread was as fast or faster in every run; at
/// 32 it was faster in three runs of four.
pub const INLINE_TXS_MAX: usize = 32;

/// Chunks with fewer keys that pass than this are checked item by item, not as a batch: a
/// batch of 2 cost about as much as 2 single checks (within 10%, either way), a batch of
/// 4 about 15–25% less than 4 single checks in three runs of four (`sigrules_small`).
pub const BATCH_TXS_MIN: usize = 3;

/// Parallel batch signature verification with a shared cache of checked keys. Cheap to
/// clone (the pool and the cache are shared), `Send + Sync`.
#[derive(Clone)]
pub struct TxVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    pool: rayon::ThreadPool,
    threads: usize,
    /// `None` when the node asked for no cache (capacity 0).
    keys: Option<quick_cache::sync::Cache<AccountId, SignerKey>>,
}

impl TxVerifier {
    /// A verifier with a pool of `threads` threads (0: one per core, as
    /// [`std::thread::available_parallelism`] reports, or one if it cannot tell) and a
    /// cache of at most about `key_cache_capacity` checked keys (0: no cache, every check
    /// decompresses its key).
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

    /// Verify one transaction on the calling thread (not the pool) with the single rule,
    /// using the shared key cache. The same result as [`SignedTransaction::verify`].
    pub fn verify_one(&self, tx: &SignedTransaction) -> Result<(), SignatureError> {
        let key = self.key(&tx.tx.signer)?;
        tx.verify_with_signer_key(&key)
    }

    /// Verify `txs` in ZIP-215 batches on the pool (see the module docs); the results are
    /// in input order, each the same as [`SignedTransaction::verify`] of that transaction.
    /// The calling thread waits (an async caller should call it from a blocking task).
    pub fn verify_batch(&self, txs: &[SignedTransaction]) -> Vec<Result<(), SignatureError>> {
        if txs.len() < INLINE_TXS_MAX {
            return self.verify_chunk(txs, new_rng());
        }
        // At least one chunk per thread, so a block spreads over the pool.
        let chunks = txs
            .len()
            .div_ceil(CHUNK_TXS_MAX)
            .max(self.inner.threads)
            .min(txs.len());
        self.verify_in_chunks(txs, txs.len().div_ceil(chunks))
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.inner.threads
    }

    /// Keys held in the cache (0 without one).
    pub fn cached_keys(&self) -> usize {
        self.inner.keys.as_ref().map_or(0, |keys| keys.len())
    }

    /// [`TxVerifier::verify_batch`] with chunks of `chunk_len` (at least 1), on the pool.
    fn verify_in_chunks(
        &self,
        txs: &[SignedTransaction],
        chunk_len: usize,
    ) -> Vec<Result<(), SignatureError>> {
        self.inner.pool.install(|| {
            txs.par_chunks(chunk_len.max(1))
                .flat_map_iter(|chunk| self.verify_chunk(chunk, new_rng()))
                .collect()
        })
    }

    /// Verify `txs` as one batch (keys first, then one ZIP-215 batch, then single checks
    /// if the batch fails), on the calling thread. `rng` draws the batch's coefficients;
    /// `None` (no random source) checks item by item.
    fn verify_chunk(
        &self,
        txs: &[SignedTransaction],
        rng: Option<ChaCha20Rng>,
    ) -> Vec<Result<(), SignatureError>> {
        let mut results = Vec::with_capacity(txs.len());
        let mut queued: Vec<Queued> = Vec::with_capacity(txs.len());
        for (index, tx) in txs.iter().enumerate() {
            match self.key(&tx.tx.signer) {
                Ok(key) => {
                    queued.push(Queued {
                        index,
                        key,
                        message: tx.tx.signing_message(),
                    });
                    // Provisional: replaced below unless the batch passes.
                    results.push(Ok(()));
                }
                Err(error) => results.push(Err(error)),
            }
        }
        // An empty batch passes; a tiny one, or one without a random source, goes straight
        // to the single checks.
        let batch_passed = queued.is_empty()
            || (queued.len() >= BATCH_TXS_MIN
                && rng.is_some_and(|rng| batch_passes(txs, &queued, rng)));
        if !batch_passed {
            for item in &queued {
                results[item.index] = item
                    .key
                    .verify(item.message.as_bytes(), &txs[item.index].signature);
            }
        }
        results
    }

    /// The checked key of `signer`, from the cache or checked (and cached) now.
    fn key(&self, signer: &AccountId) -> Result<SignerKey, SignatureError> {
        match &self.inner.keys {
            Some(keys) => keys.get_or_insert_with(signer, || signer.signer_key()),
            None => signer.signer_key(),
        }
    }
}

/// A transaction of a chunk whose key passed, waiting for the batch's verdict.
struct Queued {
    /// Position in the chunk.
    index: usize,
    key: SignerKey,
    message: Hash,
}

/// A fresh CSPRNG for one batch's coefficients, seeded from the operating system; `None`
/// if the operating system cannot give randomness (the chunk is then checked item by item).
fn new_rng() -> Option<ChaCha20Rng> {
    ChaCha20Rng::from_rng(OsRng).ok()
}

/// Whether the ZIP-215 batch equation holds for the queued items of `txs`: true exactly
/// when every item passes the single check, except with probability about 2^-128 over
/// `rng`.
fn batch_passes(txs: &[SignedTransaction], queued: &[Queued], rng: ChaCha20Rng) -> bool {
    let mut batch = batch::Verifier::new();
    for item in queued {
        let tx = &txs[item.index];
        batch.queue((
            VerificationKeyBytes::from(tx.tx.signer.0),
            Signature::from_bytes(&tx.signature),
            item.message.as_bytes(),
        ));
    }
    batch.verify(rng).is_ok()
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
