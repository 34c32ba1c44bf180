//! [`NodeBackend`]: the API's view of a running node. Submissions are verified on the
//! blocking pool and handed to the driver with a reply channel, so a client learns at once
//! whether its transaction was admitted; reads of the ledger run on the driver thread
//! between two events, so they see exactly one committed state.

use crate::driver::{Control, ReadFn, Shared, Submission};
use crate::metrics::RejectReason;
use crate::verify::{VerifyQueue, VerifyRefusal};
use async_trait::async_trait;
use dex_api::{AccountAt, ApiBackend, BackendError, BalanceProofAt, FeedHub, SubmitError};
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
            .map_err(|refusal| match refusal {
                VerifyRefusal::Overloaded => {
                    self.shared.metrics.reject(RejectReason::Overloaded);
                    SubmitError::Unavailable(
                        "the node is saturated with signature checks; try again shortly".to_owned(),
                    )
                }
                VerifyRefusal::Stopped => {
                    SubmitError::Unavailable("the node is stopping".to_owned())
                }
            })??;
        let (reply, answer) = oneshot::channel();
        let submission = Submission::Client { tx, reply };
        self.submissions.try_send(submission).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full(_) => {
                self.shared.metrics.reject(RejectReason::Overloaded);
                SubmitError::Unavailable(
                    "the node is saturated with transactions; try again shortly".to_owned(),
                )
            }
            crossbeam_channel::TrySendError::Disconnected(_) => {
                SubmitError::Unavailable("the node is stopping".to_owned())
            }
        })?;
        let admitted = answer
            .await
            .map_err(|_| SubmitError::Unavailable("the node is stopping".to_owned()))?;
        admitted.map(|_| ()).map_err(submit_error)
    }

    fn is_pending(&self, tx_hash: &Hash) -> bool {
        self.shared
            .pending
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(tx_hash)
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
    }
}
