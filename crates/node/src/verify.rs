//! The node's signature-verification stage for client submissions: transactions from the
//! API queue here, and one task verifies whatever has queued as one batch on all cores
//! ([`TxVerifier::verify_batch`]). Under load batches grow, so the per-batch overhead
//! vanishes; when idle a lone transaction is verified at once. (Gossip arrives already in
//! batches, which the network task verifies whole: see [`crate::gossip`].)
//!
//! A client batch (`POST /v1/txs/batch`) is one entry of the queue, verified with whatever
//! else has queued. The queue is bounded in transactions, not entries, because one entry
//! may carry a whole batch: each entry reserves room for its transactions in a shared
//! count before it is queued, and when the room is not there it is refused as
//! "overloaded" rather than queued without limit. A single transaction gives its room
//! back once verified (the driver's channel bounds it from there by its entry count); a
//! batch hands its room on with its verdicts, and it is given back only when the driver
//! has taken the batch, so batches waiting in the driver's channel stay bounded too.

use dex_types::{SignatureError, SignedTransaction};
use dex_verify::TxVerifier;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Most transactions verified in one batch (about 40 µs each per core). Queued entries
/// are taken until they reach it, so one batch may pass it by less than one client batch.
const BATCH_MAX: usize = 1_024;

/// A verdict per transaction: the transaction back if its signature holds.
pub(crate) type Verdict = Result<SignedTransaction, SignatureError>;

type Reply = oneshot::Sender<Verdict>;
type BatchReply = oneshot::Sender<VerifiedBatch>;

/// Why a transaction was not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VerifyRefusal {
    /// The queue has no room for the transactions.
    Overloaded,
    /// The node is stopping.
    Stopped,
}

/// Room reserved for some transactions in the stage's budget; given back when dropped.
#[derive(Debug)]
pub(crate) struct QueueRoom {
    queued: Arc<AtomicUsize>,
    txs: usize,
}

impl QueueRoom {
    /// Reserve room for `txs` transactions; `None` (nothing reserved) when the queued
    /// count would pass `capacity`.
    fn reserve(queued: &Arc<AtomicUsize>, txs: usize, capacity: usize) -> Option<QueueRoom> {
        queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                now.checked_add(txs).filter(|total| *total <= capacity)
            })
            .ok()?;
        Some(QueueRoom {
            queued: queued.clone(),
            txs,
        })
    }
}

impl Drop for QueueRoom {
    fn drop(&mut self) {
        let before = self.queued.fetch_sub(self.txs, Ordering::AcqRel);
        assert!(
            before >= self.txs,
            "bug: more queued transactions given back than reserved"
        );
    }
}

/// The verdicts on a batch, in its order, and the room it still holds in the stage's
/// budget (keep it until the transactions have left the node's queues).
#[derive(Debug)]
pub(crate) struct VerifiedBatch {
    pub verdicts: Vec<Verdict>,
    pub room: QueueRoom,
}

/// One queue entry: its transactions, its reply channel and the room it holds.
// Single transactions are most entries and travel inline as they did before batches:
// boxing them would add an allocation per submission to save queue slots of a few hundred
// bytes.
#[allow(clippy::large_enum_variant)]
enum Job {
    One {
        tx: SignedTransaction,
        reply: Reply,
        room: QueueRoom,
    },
    Batch {
        txs: Vec<SignedTransaction>,
        reply: BatchReply,
        room: QueueRoom,
    },
}

impl Job {
    fn txs(&self) -> usize {
        match self {
            Job::One { .. } => 1,
            Job::Batch { txs, .. } => txs.len(),
        }
    }
}

/// The sending side of the stage; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct VerifyQueue {
    queue: mpsc::Sender<Job>,
    /// Transactions holding room: queued, being verified, or (for a batch) on their way
    /// to the driver.
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} txs)", self.txs())
    }
}

impl VerifyQueue {
    /// Start the stage on the current runtime with room for `capacity` transactions.
    pub fn start(verifier: TxVerifier, capacity: usize) -> VerifyQueue {
        let capacity = capacity.max(1);
        // Every entry holds room for at least one transaction, so the room is what binds;
        // the channel's own bound only backs it up.
        let (queue, receiver) = mpsc::channel(capacity);
        tokio::spawn(run(verifier, receiver));
        VerifyQueue {
            queue,
            queued: Arc::new(AtomicUsize::new(0)),
            capacity,
        }
    }

    /// Transactions holding room in the stage now.
    pub fn queued_txs(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    fn reserve(&self, txs: usize) -> Result<QueueRoom, VerifyRefusal> {
        if self.queue.is_closed() {
            return Err(VerifyRefusal::Stopped);
        }
        QueueRoom::reserve(&self.queued, txs, self.capacity).ok_or(VerifyRefusal::Overloaded)
    }

    fn enqueue(&self, job: Job) -> Result<(), VerifyRefusal> {
        // A refused job is dropped here, and its room with it.
        self.queue.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => VerifyRefusal::Overloaded,
            mpsc::error::TrySendError::Closed(_) => VerifyRefusal::Stopped,
        })
    }

    /// Verify `tx`: the transaction back if its signature holds.
    pub async fn verify(&self, tx: SignedTransaction) -> Result<Verdict, VerifyRefusal> {
        let room = self.reserve(1)?;
        let (reply, answer) = oneshot::channel();
        self.enqueue(Job::One { tx, reply, room })?;
        answer.await.map_err(|_| VerifyRefusal::Stopped)
    }

    /// Verify a batch as one queue entry: a verdict per transaction in its order, with
    /// the room the batch holds. The whole batch is refused when there is no room for all
    /// of it (never a part: the caller answers every item the same way).
    pub async fn verify_batch(
        &self,
        txs: Vec<SignedTransaction>,
    ) -> Result<VerifiedBatch, VerifyRefusal> {
        let room = self.reserve(txs.len())?;
        if txs.is_empty() {
            return Ok(VerifiedBatch {
                verdicts: Vec::new(),
                room,
            });
        }
        let (reply, answer) = oneshot::channel();
        self.enqueue(Job::Batch { txs, reply, room })?;
        answer.await.map_err(|_| VerifyRefusal::Stopped)
    }
}

async fn run(verifier: TxVerifier, mut receiver: mpsc::Receiver<Job>) {
    while let Some(first) = receiver.recv().await {
        let mut count = first.txs();
        let mut jobs = vec![first];
        while count < BATCH_MAX {
            match receiver.try_recv() {
                Ok(job) => {
                    count = count.saturating_add(job.txs());
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let verifier = verifier.clone();
        let checked = tokio::task::spawn_blocking(move || answer(&verifier, jobs, count)).await;
        // A panic in the pool or a stopping runtime: the replies are dropped and their
        // waiters see the stage as stopped.
        if checked.is_err() {
            return;
        }
    }
}

/// Verify the transactions of `jobs` (`count` in all) as one batch and answer each job.
fn answer(verifier: &TxVerifier, jobs: Vec<Job>, count: usize) {
    enum Waiter {
        One(Reply, QueueRoom),
        Batch(usize, BatchReply, QueueRoom),
    }
    let mut txs = Vec::with_capacity(count);
    let mut waiters = Vec::with_capacity(jobs.len());
    for job in jobs {
        match job {
            Job::One { tx, reply, room } => {
                txs.push(tx);
                waiters.push(Waiter::One(reply, room));
            }
            Job::Batch {
                txs: batch,
                reply,
                room,
            } => {
                waiters.push(Waiter::Batch(batch.len(), reply, room));
                txs.extend(batch);
            }
        }
    }
    let results = verifier.verify_batch(&txs);
    assert_eq!(
        results.len(),
        txs.len(),
        "bug: the verifier answered a different number of transactions"
    );
    let mut verdicts = txs
        .into_iter()
        .zip(results)
        .map(|(tx, result)| result.map(|()| tx));
    for waiter in waiters {
        match waiter {
            Waiter::One(reply, room) => {
                let verdict = verdicts.next().expect("bug: a verdict per transaction");
                // Verified: the driver's channel bounds it from here on.
                drop(room);
                let _ = reply.send(verdict);
            }
            Waiter::Batch(len, reply, room) => {
                let verdicts: Vec<Verdict> = verdicts.by_ref().take(len).collect();
                assert_eq!(verdicts.len(), len, "bug: a verdict per transaction");
                // A gone client drops the batch, and its room with it.
                let _ = reply.send(VerifiedBatch { verdicts, room });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::transfer;

    #[tokio::test]
    async fn verifies_concurrent_submissions_each_with_its_own_answer() {
        let queue = VerifyQueue::start(TxVerifier::new(2, 64), 256);
        let mut waits = Vec::new();
        for i in 0..100u64 {
            let mut signed = transfer(1 + (i % 5) as u8, i + 1);
            let forged = i % 7 == 0;
            if forged {
                signed.signature[3] ^= 1;
            }
            let queue = queue.clone();
            waits.push(tokio::spawn(async move {
                (forged, signed.clone(), queue.verify(signed).await)
            }));
        }
        for wait in waits {
            let (forged, sent, answer) = wait.await.unwrap();
            match answer.unwrap() {
                Ok(back) => {
                    assert!(!forged);
                    assert_eq!(back, sent);
                }
                Err(_) => assert!(forged),
            }
        }
    }

    #[tokio::test]
    async fn a_batch_is_one_entry_with_a_verdict_per_transaction_in_order() {
        let queue = VerifyQueue::start(TxVerifier::new(2, 64), 256);
        let mut sent = Vec::new();
        for i in 0..40u64 {
            let mut signed = transfer(1 + (i % 3) as u8, i + 1);
            if i % 5 == 2 {
                signed.signature[7] ^= 1;
            }
            sent.push(signed);
        }
        // A single submission verified in the same turn as the batch keeps its own answer.
        let lone = transfer(9, 1);
        let (single, batch) =
            tokio::join!(queue.verify(lone.clone()), queue.verify_batch(sent.clone()));
        assert_eq!(single.unwrap().unwrap(), lone);
        let batch = batch.unwrap();
        assert_eq!(batch.verdicts.len(), sent.len());
        for (i, (verdict, sent)) in batch.verdicts.iter().zip(&sent).enumerate() {
            match verdict {
                Ok(back) => {
                    assert_ne!(i % 5, 2, "forged item {i} passed");
                    assert_eq!(back, sent);
                }
                Err(_) => assert_eq!(i % 5, 2, "valid item {i} refused"),
            }
        }
        // The batch holds its room until it is dropped (the driver has taken it).
        assert_eq!(queue.queued_txs(), 40);
        drop(batch);
        assert_eq!(queue.queued_txs(), 0);
        let empty = queue.verify_batch(Vec::new()).await.unwrap();
        assert!(empty.verdicts.is_empty());
    }

    #[tokio::test]
    async fn the_bound_counts_transactions_not_entries() {
        // Room for 64 transactions: one batch of 48 fits, a second does not, however few
        // entries the queue holds; a lone transaction still fits the 16 left.
        let queue = VerifyQueue::start(TxVerifier::new(1, 0), 64);
        let batch = |seed: u8| (1..=48u64).map(|n| transfer(seed, n)).collect::<Vec<_>>();
        let held = queue.verify_batch(batch(3)).await.unwrap();
        assert_eq!(queue.queued_txs(), 48);
        assert_eq!(
            queue.verify_batch(batch(4)).await.unwrap_err(),
            VerifyRefusal::Overloaded
        );
        // The refused batch reserved nothing.
        assert_eq!(queue.queued_txs(), 48);
        assert!(queue.verify(transfer(5, 1)).await.unwrap().is_ok());
        drop(held);
        let again = queue.verify_batch(batch(4)).await.unwrap();
        assert!(again.verdicts.iter().all(Result::is_ok));
        // A batch larger than the whole budget is refused outright.
        drop(again);
        let too_big = (1..=65u64).map(|n| transfer(6, n)).collect();
        assert_eq!(
            queue.verify_batch(too_big).await.unwrap_err(),
            VerifyRefusal::Overloaded
        );
        assert_eq!(queue.queued_txs(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_instead_of_growing() {
        // Capacity 1 and a burst without awaiting: some are refused as overloaded.
        let queue = VerifyQueue::start(TxVerifier::new(1, 0), 1);
        let results = futures::future::join_all(
            (0..64u64)
                .map(|i| {
                    let queue = queue.clone();
                    async move { queue.verify(transfer(2, i + 1)).await }
                })
                .collect::<Vec<_>>(),
        )
        .await;
        assert!(results.contains(&Err(VerifyRefusal::Overloaded)));
        assert!(results.iter().any(|r| matches!(r, Ok(Ok(_)))));
    }
}
