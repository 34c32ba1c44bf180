//! [`NodeBackend`]: the API's view of a running node. Submissions are verified on the
//! blocking pool and handed to the driver with a reply channel, so a client learns at once
//! whether its transaction was admitted; reads of the ledger run on the driver thread
//! between two events, so they see exactly one committed state.
//!
//! A client batch pays the per-submission hops once: one entry in the verify queue (all
//! its signatures in the same verify batch), then one hand-off to the driver with one
//! reply channel for all its answers. Only the transactions whose signatures hold reach
//! the driver; the others are answered `bad_signature` in place.
//!
//! A block the API's hub no longer retains (or never held: one committed before the node
//! last started) is read from the node's store on the driver thread, the same read block
//! sync serves peers from, and decoded off it. The store keeps each block and its
//! certificate but not what executing the block produced, and re-executing it would need
//! the state before it, so such a block comes without outcomes or committed items
//! ([`CommittedBlock::execution_known`]).

use crate::driver::{Control, ReadFn, Shared, Submission};
use crate::metrics::RejectReason;
use crate::timed_store::TimedStore;
use crate::verify::{VerifiedBatch, VerifyQueue, VerifyRefusal};
use async_trait::async_trait;
use dex_api::{
    AccountAt, ApiBackend, BackendError, BalanceProofAt, CommittedBlock, DroppedTx, FeedHub,
    SubmitError,
};
use dex_chain::{MempoolError, Replica};
use dex_consensus::CommitCertificate;
use dex_state::BlockResult;
use dex_types::{AccountId, Block, Hash, SignedTransaction};
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
        read: impl FnOnce(&Replica<TimedStore>) -> T + Send + 'static,
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

/// A block read back from the store, as the API serves it: the block and its certificate,
/// checked against the index facts stored with them, and an execution result that holds
/// only what the header commits to (see the module docs).
fn stored_block(stored: dex_storage::CommittedBlock) -> Result<CommittedBlock, BackendError> {
    let height = stored.height;
    let damaged = |what: String| {
        // The store checked the bytes against their checksums, so this is a store written
        // by another version or damaged in a way the checksums did not catch.
        BackendError::Unavailable(format!("the stored block {height} is unreadable: {what}"))
    };
    let block = Block::decode(&stored.block).map_err(|e| damaged(e.to_string()))?;
    let certificate =
        CommitCertificate::decode(&stored.certificate).map_err(|e| damaged(e.to_string()))?;
    let hash = block.hash();
    if block.header.height != height || hash != stored.block_hash {
        return Err(damaged(format!(
            "its header (height {}, hash {hash}) is not the one indexed (hash {})",
            block.header.height, stored.block_hash
        )));
    }
    if certificate.height.0 != height || certificate.value_id != hash {
        return Err(damaged(format!(
            "its certificate is for height {} and block {}",
            certificate.height.0, certificate.value_id
        )));
    }
    let header = block.header;
    Ok(CommittedBlock {
        result: BlockResult {
            height,
            time: header.time,
            parent_hash: header.parent_hash,
            outcomes: Vec::new(),
            events: Vec::new(),
            committed: Vec::new(),
            state_root: header.state_root,
            fills_root: header.fills_root,
        },
        block,
        certificate: Some(stored.certificate),
    })
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

    async fn block(&self, height: u64) -> Result<Option<Arc<CommittedBlock>>, BackendError> {
        if let Some(block) = self.hub.block(height) {
            return Ok(Some(block));
        }
        // Above the API's head: the driver may have committed it a moment ago, but until
        // the hub indexes it the API does not speak of it (404, as every other read), and
        // it is served with its outcomes once indexed. Height 0 is the genesis state,
        // which has no block.
        if height == 0 || height > self.hub.read().height() {
            return Ok(None);
        }
        let stored = self
            .read(move |replica| replica.store().committed_block(height))
            .await?
            .map_err(|error| {
                BackendError::Unavailable(format!("reading block {height}: {error}"))
            })?;
        // Below the store's retention floor, or pruned: not served.
        let Some(stored) = stored else {
            return Ok(None);
        };
        // A block is up to megabytes of transactions: decoded on the blocking pool, not on
        // the driver thread nor on an async worker.
        let block = tokio::task::spawn_blocking(move || stored_block(stored))
            .await
            .map_err(|_| unavailable())??;
        Ok(Some(Arc::new(block)))
    }

    fn render_metrics(&self, out: &mut String) {
        self.shared.metrics.render(out);
        out.push_str(&format!(
            "# HELP dex_verify_queued_txs Client transactions holding room in the verify stage (queued, being verified, or a batch on its way to the driver).\n# TYPE dex_verify_queued_txs gauge\ndex_verify_queued_txs {}\n",
            self.verify.queued_txs()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_consensus::{Height, Round};
    use dex_types::{BlockHeader, ChainId, TimestampMs};

    fn block(height: u64) -> Block {
        Block {
            header: BlockHeader {
                chain_id: ChainId(7),
                height,
                time: TimestampMs(1_700_000_000_000),
                parent_hash: Hash([1; 32]),
                proposer: AccountId([2; 32]),
                txs_root: dex_types::EMPTY_ROOT,
                state_root: Hash([3; 32]),
                fills_root: Hash([4; 32]),
            },
            txs: Vec::new(),
        }
    }

    fn certificate(height: u64, value_id: Hash) -> Vec<u8> {
        CommitCertificate {
            height: Height(height),
            round: Round(0),
            value_id,
            signatures: Vec::new(),
        }
        .encode()
    }

    fn stored(block: &Block, certificate: Vec<u8>) -> dex_storage::CommittedBlock {
        dex_storage::CommittedBlock {
            height: block.header.height,
            block_hash: block.hash(),
            parent_hash: block.header.parent_hash,
            state_root: block.header.state_root,
            block: block.encode(),
            certificate,
        }
    }

    #[test]
    fn a_stored_block_keeps_its_header_and_certificate_and_claims_no_outcomes() {
        let block = block(5);
        let certificate = certificate(5, block.hash());
        let served = stored_block(stored(&block, certificate.clone())).unwrap();
        assert_eq!(served.block, block);
        assert_eq!(served.certificate, Some(certificate));
        assert_eq!(served.result.height, 5);
        assert_eq!(served.result.time, block.header.time);
        assert_eq!(served.result.parent_hash, block.header.parent_hash);
        assert_eq!(served.result.state_root, block.header.state_root);
        assert_eq!(served.result.fills_root, block.header.fills_root);
        assert!(served.result.outcomes.is_empty() && served.result.committed.is_empty());
        // No transactions, so nothing is missing.
        assert!(served.execution_known());
    }

    #[test]
    fn a_stored_block_that_disagrees_with_its_index_or_certificate_is_refused() {
        let block = block(5);
        let good = certificate(5, block.hash());
        let mut wrong_hash = stored(&block, good.clone());
        wrong_hash.block_hash = Hash([9; 32]);
        let mut wrong_height = stored(&block, good.clone());
        wrong_height.height = 6;
        let mut undecodable = stored(&block, good);
        undecodable.block.push(0);
        let cases = [
            ("hash", wrong_hash),
            ("height", wrong_height),
            ("undecodable", undecodable),
            (
                "certificate of another block",
                stored(&block, certificate(5, Hash([9; 32]))),
            ),
            (
                "certificate of another height",
                stored(&block, certificate(4, block.hash())),
            ),
            ("undecodable certificate", stored(&block, vec![1, 2, 3])),
        ];
        for (case, stored) in cases {
            let error = stored_block(stored).expect_err(case);
            assert!(
                matches!(&error, BackendError::Unavailable(m) if m.contains("unreadable")),
                "{case}: {error}"
            );
        }
    }
}
