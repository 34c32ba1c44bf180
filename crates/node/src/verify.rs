//! The node's signature-verification stage for client submissions: transactions from the
//! API queue here, and one task verifies whatever has queued as one batch on all cores
//! ([`TxVerifier::verify_batch`]). Under load batches grow, so the per-batch overhead
//! vanishes; when idle a lone transaction is verified at once. (Gossip arrives already in
//! batches, which the network task verifies whole: see [`crate::gossip`].) The queue is bounded: when
//! it is full a transaction is refused as "overloaded" rather than queued without limit.

use dex_types::{SignatureError, SignedTransaction};
use dex_verify::TxVerifier;
use tokio::sync::{mpsc, oneshot};

/// Most transactions verified in one batch (about 40 µs each per core).
const BATCH_MAX: usize = 1_024;

type Reply = oneshot::Sender<Result<SignedTransaction, SignatureError>>;

/// Why a transaction was not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VerifyRefusal {
    /// The queue is full.
    Overloaded,
    /// The node is stopping.
    Stopped,
}

/// The sending side of the stage; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct VerifyQueue {
    queue: mpsc::Sender<(SignedTransaction, Reply)>,
}

impl VerifyQueue {
    /// Start the stage on the current runtime with a queue of `capacity` transactions.
    pub fn start(verifier: TxVerifier, capacity: usize) -> VerifyQueue {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(verifier, receiver));
        VerifyQueue { queue }
    }

    /// Verify `tx`: the transaction back if its signature holds.
    pub async fn verify(
        &self,
        tx: SignedTransaction,
    ) -> Result<Result<SignedTransaction, SignatureError>, VerifyRefusal> {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send((tx, reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => VerifyRefusal::Overloaded,
            mpsc::error::TrySendError::Closed(_) => VerifyRefusal::Stopped,
        })?;
        answer.await.map_err(|_| VerifyRefusal::Stopped)
    }
}

async fn run(verifier: TxVerifier, mut receiver: mpsc::Receiver<(SignedTransaction, Reply)>) {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while receiver.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let verifier = verifier.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let (txs, replies): (Vec<SignedTransaction>, Vec<Reply>) = jobs.into_iter().unzip();
            let results = verifier.verify_batch(&txs);
            (txs, replies, results)
        })
        .await;
        // A panic in the pool or a stopping runtime: the replies are dropped and their
        // waiters see the stage as stopped.
        let Ok((txs, replies, results)) = checked else {
            return;
        };
        for ((tx, reply), result) in txs.into_iter().zip(replies).zip(results) {
            let _ = reply.send(result.map(|()| tx));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_types::{Action, ChainId, Keypair, TimestampMs, Transaction, Transfer};

    fn tx(seed: u8, nonce: u64) -> SignedTransaction {
        let key = Keypair::from_seed([seed; 32]);
        key.sign(Transaction {
            chain_id: ChainId(1),
            account: key.account_id(),
            signer: key.account_id(),
            nonce,
            expires_at: TimestampMs(u64::MAX),
            action: Action::Transfer(Transfer {
                to: Keypair::from_seed([0; 32]).account_id(),
                asset: dex_types::AssetId(0),
                amount: dex_types::Amount(1),
            }),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn verifies_concurrent_submissions_each_with_its_own_answer() {
        let queue = VerifyQueue::start(TxVerifier::new(2, 64), 256);
        let mut waits = Vec::new();
        for i in 0..100u64 {
            let mut signed = tx(1 + (i % 5) as u8, i + 1);
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
    async fn a_full_queue_refuses_instead_of_growing() {
        // Capacity 1 and a burst without awaiting: some are refused as overloaded.
        let queue = VerifyQueue::start(TxVerifier::new(1, 0), 1);
        let results = futures::future::join_all(
            (0..64u64)
                .map(|i| {
                    let queue = queue.clone();
                    async move { queue.verify(tx(2, i + 1)).await }
                })
                .collect::<Vec<_>>(),
        )
        .await;
        assert!(results.contains(&Err(VerifyRefusal::Overloaded)));
        assert!(results.iter().any(|r| matches!(r, Ok(Ok(_)))));
    }
}
