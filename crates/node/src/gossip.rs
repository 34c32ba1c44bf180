//! Transaction gossip in batches: the transactions a node admitted from its own API travel
//! to the other validators as one gossip message per batch, not one message each.
//!
//! Why: every gossip message costs every validator the same fixed work whatever it carries
//! (gossipsub framing and duplicate cache, a validation report, a task, a trip through the
//! verification pool, a channel send to the consensus thread). At thousands of orders a
//! second that fixed cost was most of the node's network time; with many transactions per
//! message it is shared by all of them.
//!
//! # Wire format (version 1)
//!
//! `version: u8 = 1 | count: u32 LE | count × (len: u32 LE | SignedTransaction bytes)`,
//! which is the borsh encoding of `(u8, Vec<Vec<u8>>)`. Each transaction travels as its own
//! canonical bytes, so a receiver decodes each with [`SignedTransaction::decode`] and its
//! size and structure rules. Before anything is allocated the message length is checked
//! against [`TX_BATCH_BYTES_MAX`], the count against [`TX_BATCH_TXS_MAX`] and against what
//! the remaining bytes could hold, and each length against [`MAX_TX_BYTES`]. A batch is never
//! empty.
//!
//! # Flush policy
//!
//! [`TxBatcher`] is the policy as a state machine with the time passed in, so tests drive
//! it with a manual clock: a batch goes out when it holds [`BatchLimits::txs_max`]
//! transactions, when the next transaction would take it past [`BatchLimits::bytes_max`],
//! or [`BatchLimits::linger`] after its first transaction arrived. [`run_tx_gossip`] is the
//! task around it; the consensus thread hands it transactions on a bounded channel and never
//! waits for it.

use dex_types::{DecodeError, MAX_TX_BYTES, SignedTransaction};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The wire version this node writes and reads.
pub const TX_BATCH_VERSION: u8 = 1;
/// Most transactions in one batch. A full batch of typical orders (about 200 bytes each)
/// is some 50 KiB: large enough that the per-message cost vanishes, small enough that a
/// batch verifies in a few milliseconds on two cores.
pub const TX_BATCH_TXS_MAX: usize = 256;
/// Largest encoded batch, and so the node's size limit of the transactions gossip topic.
/// It fits [`TX_BATCH_TXS_MAX`] transactions of 1 KiB, far above a typical order, so the
/// count cap is the one that binds in practice; a batch of unusually large transactions
/// (up to [`MAX_TX_BYTES`] each) is cut by size instead.
pub const TX_BATCH_BYTES_MAX: usize = 256 * 1024;
/// How long the first transaction of a batch waits for company before the batch is sent.
///
/// The wait is added to the submit-to-commit latency of every transaction whose block
/// another validator proposes (target: p50 100 ms, p99 300 ms at half the maximum rate),
/// so it stays a fraction of a block interval (40-60 ms at 1,600-2,900 orders/s on the
/// 4-validator loopback cluster) and of the proposer's own wait for transactions
/// (`propose_batch_ms`, 20 ms by default). Measured there: at 1,600 orders/s a 20 ms wait
/// instead of 5 ms cut validator CPU per order by 15% and added 4 ms to p50; at the
/// maximum rate (about 5,800 orders/s) the two gave the same throughput within noise.
/// 10 ms sits between: at half the maximum rate each validator's batches carry about
/// seven orders instead of three or four, and the count cap binds only above some 25,000
/// admissions a second per validator.
pub const TX_BATCH_LINGER: Duration = Duration::from_millis(10);

/// Bytes before the first transaction: the version and the count.
const HEADER_BYTES: usize = 1 + 4;
/// Bytes before each transaction: its length.
const ITEM_PREFIX_BYTES: usize = 4;

/// Why a gossip message is not a transaction batch. Every variant means the sender (or a
/// relay) broke the format, so the message is refused and its sender penalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxBatchError {
    /// The message is longer than any batch may be.
    #[error("a transaction batch of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// [`TX_BATCH_BYTES_MAX`].
        max: usize,
    },
    /// The message ends before the structure it announces.
    #[error("the transaction batch is truncated")]
    Truncated,
    /// The first byte names a format this node does not know.
    #[error("unknown transaction batch version {0} (this node reads version {TX_BATCH_VERSION})")]
    UnknownVersion(u8),
    /// The batch announces no transactions; no honest node sends one.
    #[error("the transaction batch is empty")]
    Empty,
    /// The batch announces more transactions than a batch may hold.
    #[error("a transaction batch of {count} transactions exceeds the limit of {max}")]
    TooManyTxs {
        /// The announced count.
        count: u64,
        /// [`TX_BATCH_TXS_MAX`].
        max: usize,
    },
    /// One transaction's announced length exceeds the transaction size limit.
    #[error("transaction {index} of the batch announces {len} bytes, above the limit of {max}")]
    TxTooLarge {
        /// Its position in the batch.
        index: usize,
        /// The announced length.
        len: u64,
        /// [`MAX_TX_BYTES`].
        max: usize,
    },
    /// One transaction's bytes are not a valid transaction.
    #[error("transaction {index} of the batch: {source}")]
    Transaction {
        /// Its position in the batch.
        index: usize,
        /// Why it does not decode.
        source: DecodeError,
    },
    /// Bytes follow the last transaction.
    #[error("{count} bytes follow the last transaction of the batch")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

/// Split a little-endian `u32` off the front of `bytes`.
fn read_u32(bytes: &[u8]) -> Result<(u64, &[u8]), TxBatchError> {
    let (head, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or(TxBatchError::Truncated)?;
    Ok((u64::from(u32::from_le_bytes(*head)), rest))
}

/// Decode a transaction batch from a peer, within the caps of the module docs. Signatures
/// are not checked here.
pub fn decode_tx_batch(bytes: &[u8]) -> Result<Vec<SignedTransaction>, TxBatchError> {
    if bytes.len() > TX_BATCH_BYTES_MAX {
        return Err(TxBatchError::TooLarge {
            len: bytes.len(),
            max: TX_BATCH_BYTES_MAX,
        });
    }
    let (&version, rest) = bytes.split_first().ok_or(TxBatchError::Truncated)?;
    if version != TX_BATCH_VERSION {
        return Err(TxBatchError::UnknownVersion(version));
    }
    let (count, mut rest) = read_u32(rest)?;
    if count == 0 {
        return Err(TxBatchError::Empty);
    }
    let too_many = TxBatchError::TooManyTxs {
        count,
        max: TX_BATCH_TXS_MAX,
    };
    let count = usize::try_from(count).map_err(|_| too_many.clone())?;
    if count > TX_BATCH_TXS_MAX {
        return Err(too_many);
    }
    // Every transaction takes at least its length prefix: a count the remaining bytes
    // cannot hold is refused before the list is allocated.
    if count > rest.len() / ITEM_PREFIX_BYTES {
        return Err(TxBatchError::Truncated);
    }
    let mut txs = Vec::with_capacity(count);
    for index in 0..count {
        let (len, after) = read_u32(rest)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= MAX_TX_BYTES)
            .ok_or(TxBatchError::TxTooLarge {
                index,
                len,
                max: MAX_TX_BYTES,
            })?;
        let (item, after) = after.split_at_checked(len).ok_or(TxBatchError::Truncated)?;
        let tx = SignedTransaction::decode(item)
            .map_err(|source| TxBatchError::Transaction { index, source })?;
        txs.push(tx);
        rest = after;
    }
    if !rest.is_empty() {
        return Err(TxBatchError::TrailingBytes { count: rest.len() });
    }
    Ok(txs)
}

/// Encode `txs` as one batch in the wire format of the module docs, without checking the
/// caps (a sender keeps within them; [`TxBatcher`] does). For tests and tools that speak
/// the protocol; the node batches through [`TxBatcher`].
///
/// Panics with "bug: ..." on more than `u32::MAX` transactions or a transaction of more
/// than `u32::MAX` bytes, which no caller can hold.
pub fn encode_tx_batch(txs: &[SignedTransaction]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_BYTES);
    bytes.push(TX_BATCH_VERSION);
    let count = u32::try_from(txs.len()).expect("bug: a batch of more than 2^32 transactions");
    bytes.extend_from_slice(&count.to_le_bytes());
    for tx in txs {
        push_item(&mut bytes, &tx.encode());
    }
    bytes
}

fn push_item(bytes: &mut Vec<u8>, item: &[u8]) {
    let len = u32::try_from(item.len()).expect("bug: a transaction of more than 4 GiB");
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(item);
}

/// When a batch is sent; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most transactions per batch (at most [`TX_BATCH_TXS_MAX`], what receivers accept).
    pub txs_max: usize,
    /// Largest encoded batch (at most [`TX_BATCH_BYTES_MAX`], what receivers accept; at
    /// least room for one transaction of [`MAX_TX_BYTES`]).
    pub bytes_max: usize,
    /// Longest wait of a batch's first transaction.
    pub linger: Duration,
}

impl Default for BatchLimits {
    fn default() -> BatchLimits {
        BatchLimits {
            txs_max: TX_BATCH_TXS_MAX,
            bytes_max: TX_BATCH_BYTES_MAX,
            linger: TX_BATCH_LINGER,
        }
    }
}

/// A batch ready to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedBatch {
    /// The wire bytes.
    pub bytes: Vec<u8>,
    /// Transactions in it.
    pub txs: usize,
}

/// The flush policy of the module docs, with the time passed in.
#[derive(Debug)]
pub struct TxBatcher {
    limits: BatchLimits,
    /// The batch being filled: header (count patched in at flush), then the transactions.
    bytes: Vec<u8>,
    txs: usize,
    /// When the first transaction of the batch being filled arrived.
    oldest: Option<Instant>,
}

impl TxBatcher {
    /// A batcher with these limits.
    ///
    /// Panics with "bug: ..." on limits that receivers refuse or that cannot hold one
    /// transaction: they are the node's constants, not operator input.
    pub fn new(limits: BatchLimits) -> TxBatcher {
        assert!(
            (1..=TX_BATCH_TXS_MAX).contains(&limits.txs_max),
            "bug: a batch must hold between 1 and {TX_BATCH_TXS_MAX} transactions"
        );
        assert!(
            (HEADER_BYTES + ITEM_PREFIX_BYTES + MAX_TX_BYTES..=TX_BATCH_BYTES_MAX)
                .contains(&limits.bytes_max),
            "bug: a batch's byte limit must fit one largest transaction and stay within {TX_BATCH_BYTES_MAX}"
        );
        TxBatcher {
            limits,
            bytes: Self::empty(),
            txs: 0,
            oldest: None,
        }
    }

    fn empty() -> Vec<u8> {
        let mut bytes = Vec::with_capacity(16 * 1024);
        bytes.push(TX_BATCH_VERSION);
        bytes.extend_from_slice(&[0; 4]);
        bytes
    }

    /// Transactions waiting in the batch being filled.
    pub fn len(&self) -> usize {
        self.txs
    }

    /// Whether no transaction waits.
    pub fn is_empty(&self) -> bool {
        self.txs == 0
    }

    /// Add one transaction's canonical bytes (`tx.encode()`), received at `now`; batches
    /// that this completes are appended to `ready` (at most two: the batch the transaction
    /// did not fit in, then one it filled). A transaction above [`MAX_TX_BYTES`], which
    /// no receiver would accept, is left out and `false` returned.
    pub fn push(&mut self, now: Instant, tx: &[u8], ready: &mut Vec<EncodedBatch>) -> bool {
        if tx.len() > MAX_TX_BYTES {
            return false;
        }
        let item_bytes = ITEM_PREFIX_BYTES + tx.len();
        if self.bytes.len() + item_bytes > self.limits.bytes_max
            && let Some(batch) = self.flush()
        {
            ready.push(batch);
        }
        push_item(&mut self.bytes, tx);
        self.txs += 1;
        self.oldest.get_or_insert(now);
        if self.txs >= self.limits.txs_max
            && let Some(batch) = self.flush()
        {
            ready.push(batch);
        }
        true
    }

    /// When the batch being filled is due (its first transaction's arrival plus the
    /// linger); `None` while it is empty.
    pub fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|oldest| oldest + self.limits.linger)
    }

    /// The batch being filled, if it is due at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<EncodedBatch> {
        if self.deadline().is_some_and(|due| due <= now) {
            self.flush()
        } else {
            None
        }
    }

    /// The batch being filled, due or not (`None` if empty).
    pub fn flush(&mut self) -> Option<EncodedBatch> {
        if self.txs == 0 {
            return None;
        }
        let mut bytes = std::mem::replace(&mut self.bytes, Self::empty());
        let count = u32::try_from(self.txs).expect("bug: txs_max is at most TX_BATCH_TXS_MAX");
        bytes[1..HEADER_BYTES].copy_from_slice(&count.to_le_bytes());
        let txs = std::mem::take(&mut self.txs);
        self.oldest = None;
        Some(EncodedBatch { bytes, txs })
    }
}

/// The batching task: take the transactions the consensus thread admitted from clients
/// and `publish` them in batches by [`TxBatcher`]'s policy, until the channel closes (then
/// the last partial batch goes out). `publish` is awaited, so a slow network slows this
/// task and its channel fills; the consensus thread then drops (and counts) instead of
/// waiting.
///
/// Time is tokio's, so tests run it under a paused clock.
pub async fn run_tx_gossip<P, F>(
    mut txs: mpsc::Receiver<SignedTransaction>,
    limits: BatchLimits,
    mut publish: P,
) where
    P: FnMut(EncodedBatch) -> F,
    F: Future<Output = ()>,
{
    let mut batcher = TxBatcher::new(limits);
    let mut received = Vec::with_capacity(limits.txs_max);
    let mut ready = Vec::new();
    loop {
        // Without a batch waiting the timer is disabled; its instant is only a placeholder.
        let deadline = batcher.deadline();
        let wake = deadline.map_or_else(
            || tokio::time::Instant::now() + Duration::from_secs(3_600),
            tokio::time::Instant::from_std,
        );
        tokio::select! {
            count = txs.recv_many(&mut received, limits.txs_max) => {
                if count == 0 {
                    if let Some(batch) = batcher.flush() {
                        publish(batch).await;
                    }
                    return;
                }
                let now = tokio::time::Instant::now().into_std();
                for tx in received.drain(..) {
                    // An admitted transaction decoded within MAX_TX_BYTES, and its
                    // canonical bytes are the ones it decoded from, so it always fits.
                    let fits = batcher.push(now, &tx.encode(), &mut ready);
                    debug_assert!(fits, "an admitted transaction is within the size limit");
                }
            }
            () = tokio::time::sleep_until(wake), if deadline.is_some() => {
                ready.extend(batcher.poll(tokio::time::Instant::now().into_std()));
            }
        }
        for batch in ready.drain(..) {
            publish(batch).await;
        }
    }
}

#[cfg(test)]
mod tests;
