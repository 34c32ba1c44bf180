//! [`NodeBackend`]: the API's view of a running node. Submissions are verified on the
//! blocking pool and handed to the driver with a reply channel, so a client learns at once
//! whether its transaction was admitted; reads of the ledger run on the driver thread
//! between two events, so they see exactly one committed state.
//!
//! A client batch pays the per-submission hops once: one entry in the verify queue (all
//! its signatures in the same verify batch), then one hand-off to the driver with one
//! reply channel for all its answers. Only the transactions whose signatures hold reach
//! the driver; the others are answered `bad_signature` in place.

use crate::driver::{Control, ReadFn, Shared, Submission};
use crate::metrics::RejectReason;
use crate::verify::{VerifiedBatch, VerifyQueue, VerifyRefusal};
use async_trait::async_trait;
use dex_api::{
    AccountAt, ApiBackend, BackendError, BalanceProofAt, DroppedTx, FeedHub, SubmitError,
};
use dex_chain::{MempoolError, Replica};
use dex_storage::RocksStore;
use dex_types::{AccountId, Hash, SignedTransaction};
use std::sync::Arc;
use tokio::sync::oneshot;

/// See the module docs.
#[derive(Debug)]
pub struct NodeBackend {
    pub(crate) hub: Arc<FeedHub>,
    pub(crate) control: crossbeam_channel::Sender<Control>,
    pub(crate) submissions: crossbeam_channel::Sender<Submission>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) verify: VerifyQueue,
}

fn unavailable() -> BackendError {
    BackendError::Unavailable("the node is stopping".to_owned())
}

impl NodeBackend {
    /// Run `read` on the driver thread and return its answer.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Replica<RocksStore>) -> T + Send + 'static,
    ) -> Result<T, BackendError> {
        let (reply, answer) = oneshot::channel();
        let job: ReadFn = Box::new(move |replica| {
            let _ = reply.send(read(replica));
        });
        self.control
            .try_send(Control::Read(job))
            .map_err(|e| match e {
                crossbeam_channel::TrySendError::Full(_) => {
                    BackendError::Unavailable("the node is saturated; try again shortly".to_owned())
                }
                crossbeam_channel::TrySendError::Disconnected(_) => unavailable(),
            })?;
        answer.await.map_err(|_| unavailable())
    }
}

/// The answer to a submission the verify stage did not take.
fn verify_refused(shared: &Shared, refusal: VerifyRefusal, txs: usize) -> SubmitError {
    match refusal {
        VerifyRefusal::Overloaded => {
            for _ in 0..txs {
                shared.metrics.reject(RejectReason::Overloaded);
            }
            SubmitError::Unavailable(
                "the node is saturated with signature checks; try again shortly".to_owned(),
            )
        }
        VerifyRefusal::Stopped => stopping(),
    }
}

/// The answer to a submission the driver's channel did not take.
fn channel_refused<T>(
    shared: &Shared,
    error: crossbeam_channel::TrySendError<T>,
    txs: usize,
) -> SubmitError {
    match error {
        crossbeam_channel::TrySendError::Full(_) => {
            for _ in 0..txs {
                shared.metrics.reject(RejectReason::Overloaded);
            }
            SubmitError::Unavailable(
                "the node is saturated with transactions; try again shortly".to_owned(),
            )
        }
        crossbeam_channel::TrySendError::Disconnected(_) => stopping(),
    }
}

fn stopping() -> SubmitError {
    SubmitError::Unavailable("the node is stopping".to_owned())
}

fn submit_error(error: MempoolError) -> SubmitError {
    match error {
        MempoolError::Duplicate(_) => SubmitError::AlreadyPending,
        MempoolError::Full { capacity } => SubmitError::MempoolFull { capacity },
        MempoolError::BytesFull { bytes_max } => SubmitError::MempoolBytesFull { bytes_max },
        MempoolError::SignerLimit { pending, .. } => SubmitError::SignerLimit { pending },
        MempoolError::NoncePending { nonce } => SubmitError::NoncePending { nonce },
        MempoolError::Signature(error) => SubmitError::BadSignature(error),
        MempoolError::Rejected(rejection) => SubmitError::Rejected(rejection),
        // The API decodes with the same structural checks, so this is only reachable by
        // a transaction that decoded but breaks a rule checked later.
        MempoolError::Malformed(error) => SubmitError::Unavailable(format!("malformed: {error}")),
    }
}

#[async_trait]
impl ApiBackend for NodeBackend {
    fn hub(&self) -> &FeedHub {
        &self.hub
    }

    async fn submit(&self, tx: SignedTransaction) -> Result<(), SubmitError> {
        // Verify off the driver thread, batched with other submissions and gossip; the
        // driver records it as verified.
        let tx = self
            .verify
            .verify(tx)
            .await
            .map_err(|refusal| verify_refused(&self.shared, refusal, 1))??;
        let (reply, answer) = oneshot::channel();
        let submission = Submission::Client { tx, reply };
        self.submissions
            .try_send(submission)
            .map_err(|e| channel_refused(&self.shared, e, 1))?;
        let admitted = answer.await.map_err(|_| stopping())?;
        admitted.map(|_| ()).map_err(submit_error)
    }

    async fn submit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<(), SubmitError>> {
        let count = txs.len();
        let VerifiedBatch { verdicts, room } = match self.verify.verify_batch(txs).await {
            Ok(verified) => verified,
            Err(refusal) => {
                let error = verify_refused(&self.shared, refusal, count);
                return vec![Err(error); count];
            }
        };
        let mut answers: Vec<Result<(), SubmitError>> = Vec::with_capacity(count);
        // Positions in `answers` of the transactions handed to the driver, in its order.
        let mut positions = Vec::with_capacity(count);
        let mut verified = Vec::with_capacity(count);
        for verdict in verdicts {
            match verdict {
                Ok(tx) => {
                    positions.push(answers.len());
                    answers.push(Ok(()));
                    verified.push(tx);
                }
                Err(error) => {
                    // Not counted among the node's rejections, as a single submission's
                    // bad signature is not: the client hears of it.
                    answers.push(Err(SubmitError::BadSignature(error)));
                }
            }
        }
        if verified.is_empty() {
            return answers;
        }
        let (reply, answer) = oneshot::channel();
        let submission = Submission::ClientBatch {
            txs: verified,
            reply,
            room,
        };
        let admitted = match self.submissions.try_send(submission) {
            Ok(()) => answer.await.map_err(|_| stopping()),
            Err(error) => Err(channel_refused(&self.shared, error, positions.len())),
        };
        match admitted {
            Ok(admitted) => {
                assert_eq!(
                    admitted.len(),
                    positions.len(),
                    "bug: the driver answered a batch with a different number of results"
                );
                for (position, result) in positions.into_iter().zip(admitted) {
                    answers[position] = result.map(|_| ()).map_err(submit_error);
                }
            }
            Err(error) => {
                for position in positions {
                    answers[position] = Err(error.clone());
                }
            }
        }
        answers
    }

    fn is_pending(&self, tx_hash: &Hash) -> bool {
        self.shared
            .pending
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(tx_hash)
    }

    fn dropped(&self, tx_hash: &Hash) -> Option<DroppedTx> {
        self.shared
            .dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tx_hash)
            .cloned()
    }

    async fn account(&self, account: AccountId) -> Result<AccountAt, BackendError> {
        self.read(move |replica| AccountAt {
            height: replica.head().height,
            account: replica.ledger().account(&account).cloned(),
        })
        .await
    }

    async fn balance_proof(
        &self,
        account: AccountId,
    ) -> Result<Option<BalanceProofAt>, BackendError> {
        self.read(move |replica| {
            replica
                .ledger()
                .balance_proof(&account)
                .map(|proof| BalanceProofAt {
                    height: replica.head().height,
                    proof,
                })
        })
        .await
    }

    fn render_metrics(&self, out: &mut String) {
        self.shared.metrics.render(out);
        out.push_str(&format!(
            "# HELP dex_verify_queued_txs Client transactions holding room in the verify stage (queued, being verified, or a batch on its way to the driver).\n# TYPE dex_verify_queued_txs gauge\ndex_verify_queued_txs {}\n",
            self.verify.queued_txs()
        ));
    }
}
