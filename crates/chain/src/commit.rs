//! Writing a decided block: block, certificate, the ledger's changed key-values and the new
//! head in one atomic synced write ([`ChainStore::commit_block`]), then a state snapshot
//! when one is due.

use crate::execute::ExecutedBlock;
use dex_consensus::CommitCertificate;
use dex_storage::{BlockCommit, ChainStore, CommittedHead, SnapshotInfo, StateChange, Store};

/// The changed state keys of the executed block, in the store's form (sorted by key).
pub fn state_changes(executed: &ExecutedBlock) -> Vec<StateChange> {
    // The ledger lists the keys sorted and unique, which the store checks again
    // (`StorageError::UnsortedStateChanges`) before writing anything.
    executed
        .ledger
        .block_changes()
        .into_iter()
        .map(|change| (change.key, change.value))
        .collect()
}

/// Commit `executed` with its `certificate` in one atomic write. Returns the new head.
pub fn commit_block<S: Store>(
    store: &ChainStore<S>,
    executed: &ExecutedBlock,
    certificate: &CommitCertificate,
) -> dex_storage::Result<CommittedHead> {
    let header = &executed.block.header;
    let block = executed.block.encode();
    let certificate = certificate.encode();
    let changes = state_changes(executed);
    store.commit_block(&BlockCommit {
        height: header.height,
        block_hash: executed.id,
        parent_hash: header.parent_hash,
        state_root: executed.result.state_root,
        block: &block,
        certificate: &certificate,
        state_changes: &changes,
    })
}

/// Write a snapshot of the state after `executed` if its height is a snapshot height.
pub fn snapshot_if_due<S: Store>(
    store: &ChainStore<S>,
    executed: &ExecutedBlock,
) -> dex_storage::Result<Option<SnapshotInfo>> {
    let height = executed.block.header.height;
    if !store.snapshot_due(height) {
        return Ok(None);
    }
    store
        .write_snapshot(
            height,
            executed.result.state_root,
            executed.ledger.snapshot(),
        )
        .map(Some)
}
