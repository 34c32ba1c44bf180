//! Writing a decided block: block, certificate, block index and the new head in one atomic
//! synced write ([`ChainStore::commit_block`]), plus the ledger's changed key-values when
//! the store keeps its state column; then a state snapshot when one is due.
//!
//! # Durability of the state
//! Without the state column (the default) the per-block write is a few records whatever
//! the block changed, and the state is durable as snapshots every
//! `snapshot_interval_blocks` plus the blocks after the newest one, which recovery replays
//! (each checked against its committed roots). A snapshot of a large state takes tens of
//! milliseconds to write, so a node takes it off its commit path: [`snapshot_job`] clones
//! what the snapshot needs, and [`SnapshotJob::write`] runs on another thread against the
//! same `&ChainStore` while later blocks commit. [`snapshot_if_due`] does both inline, for
//! hosts that do not mind the pause (the simulator, tests).

use crate::execute::ExecutedBlock;
use dex_consensus::CommitCertificate;
use dex_state::Ledger;
use dex_storage::{BlockCommit, ChainStore, CommittedHead, SnapshotInfo, StateChange, Store};
use dex_types::Hash;

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
/// The state changes are computed and written only when the store keeps the state column.
pub fn commit_block<S: Store>(
    store: &ChainStore<S>,
    executed: &ExecutedBlock,
    certificate: &CommitCertificate,
) -> dex_storage::Result<CommittedHead> {
    let header = &executed.block.header;
    let block = executed.block.encode();
    let certificate = certificate.encode();
    // Encoding every changed account and order is work the commit path skips when the
    // store would ignore it.
    let changes = if store.config().keep_state_column {
        state_changes(executed)
    } else {
        Vec::new()
    };
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

/// A snapshot to write of the state after a committed block. It owns a copy of the ledger,
/// so it can be written on another thread while later blocks commit; the copy is cheap
/// (the ledger is copy-on-write: it shares every account and tree node with the committed
/// ledger until a later block writes them).
#[derive(Debug, Clone)]
pub struct SnapshotJob {
    height: u64,
    state_root: Hash,
    ledger: Ledger,
}

impl SnapshotJob {
    /// The state after the committed block `executed` (its height must be committed before
    /// the job is written).
    pub fn new(executed: &ExecutedBlock) -> SnapshotJob {
        SnapshotJob {
            height: executed.block.header.height,
            state_root: executed.result.state_root,
            ledger: executed.ledger.clone(),
        }
    }

    /// The height the snapshot is of.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The state root the snapshot must have (the root committed at its height).
    pub fn state_root(&self) -> Hash {
        self.state_root
    }

    /// Encode the ledger's key-values and write them as the snapshot at `height`
    /// ([`ChainStore::write_snapshot`]: chunks, synced manifest, older snapshots pruned).
    /// Safe to run on another thread while blocks commit; a crash part-way leaves a
    /// snapshot without manifest, which the next open deletes.
    pub fn write<S: Store>(self, store: &ChainStore<S>) -> dex_storage::Result<SnapshotInfo> {
        store.write_snapshot(self.height, self.state_root, self.ledger.snapshot())
    }
}

/// The snapshot of the state after `executed`, if its height is a snapshot height.
pub fn snapshot_job<S: Store>(
    store: &ChainStore<S>,
    executed: &ExecutedBlock,
) -> Option<SnapshotJob> {
    store
        .snapshot_due(executed.block.header.height)
        .then(|| SnapshotJob::new(executed))
}

/// Write a snapshot of the state after `executed` if its height is a snapshot height,
/// inline (the commit path waits for it; see the module docs for the off-path way).
pub fn snapshot_if_due<S: Store>(
    store: &ChainStore<S>,
    executed: &ExecutedBlock,
) -> dex_storage::Result<Option<SnapshotInfo>> {
    let height = executed.block.header.height;
    if !store.snapshot_due(height) {
        return Ok(None);
    }
    // Inline, the ledger need not be cloned.
    store
        .write_snapshot(
            height,
            executed.result.state_root,
            executed.ledger.snapshot(),
        )
        .map(Some)
}
