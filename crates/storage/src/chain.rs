//! The chain layer: committed blocks, certificates, state, snapshots and the consensus log
//! on top of any [`Store`], with integrity checks on every read and a start-up check of
//! the whole.

use crate::column::Column;
use crate::error::{Inconsistency, Result, StorageError};
use crate::frame;
use crate::records::{
    self, BlockIndexEntry, ChainBase, CommitIntent, CommittedHead, IntentKind, META_BASE,
    META_FORMAT, META_HEAD, META_INTENT, META_RETAINED_FROM, META_STATE_COLUMN,
    STATE_COLUMN_MARKER, SnapshotInfo, SnapshotKey,
};
use crate::snapshot_file::{
    SnapshotFileHeader, SnapshotFileLimits, SnapshotFileReader, SnapshotFileWriter,
};
use crate::store::{Durability, KeyRange, ScanOrder, Store, WriteBatch};
use dex_types::Hash;
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A key-value of the ledger's state.
pub type StateEntry = (Vec<u8>, Vec<u8>);

/// A change to one state key: `Some(value)` sets it, `None` deletes it.
pub type StateChange = (Vec<u8>, Option<Vec<u8>>);

/// Limits and policies of a [`ChainStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStoreConfig {
    /// Take a snapshot every this many heights (see [`ChainStore::snapshot_due`]); 0 never.
    /// Snapshots are the durable form of the state when the state column is off: start-up
    /// loads the newest one and replays the blocks after it, so this bounds the replay
    /// (at most about this many blocks, plus any snapshot still being written). 0 means
    /// replay from the chain base.
    pub snapshot_interval_blocks: u64,
    /// Keep the state column: the whole state as the ledger's key-values, updated by every
    /// commit in its atomic write with the block's changed keys. Off by default.
    ///
    /// Cost: one memtable insert of a framed key-value per changed key in the synced commit
    /// (about two per transfer or fill). On the 2-core reference machine a synced commit
    /// of a 10,000-transaction block takes ~34-42 ms with the column against ~5.5-9 ms
    /// without it, and writes ~2.3x the bytes per transaction (see the crate README).
    /// What it buys: [`ChainStore::load_state_verified`], [`ChainStore::state_value`] and
    /// [`ChainStore::snapshot_current_state`] read the state at the head directly, and
    /// start-up can cross-check the replayed state key by key. Without it the state is
    /// durable through snapshots plus the blocks after them.
    ///
    /// Switching it off clears the column at the next open; switching it on leaves the
    /// column unusable until the caller rebuilds it from the recovered state
    /// ([`ChainStore::rebuild_state_column`]).
    pub keep_state_column: bool,
    /// Snapshots kept; older ones are deleted after a new one is written. At least 1.
    pub snapshots_retained: usize,
    /// Heights of consensus log kept below the next height when a block commits: after
    /// committing `h`, entries below `h + 1 - wal_heights_retained` are pruned in the same
    /// write. 0 keeps only the next height's entries.
    pub wal_heights_retained: u64,
    /// How `commit_block` persists. [`Durability::Synced`] for a validator; `Buffered`
    /// only for bulk loads whose loss on power failure is acceptable (benchmark setup,
    /// replaying blocks fetched from peers followed by a synced commit).
    pub commit_durability: Durability,
    /// How deep [`ChainStore::open`] verifies.
    pub open_verify: VerifyDepth,
    /// At open (quick verification), the newest blocks and certificates read and checked
    /// against their index entries.
    pub verify_recent_blocks: u64,
    /// Largest block body.
    pub block_bytes_max: usize,
    /// Largest commit certificate.
    pub certificate_bytes_max: usize,
    /// Largest state key.
    pub state_key_bytes_max: usize,
    /// Largest state value.
    pub state_value_bytes_max: usize,
    /// Most state changes in one commit.
    pub state_changes_max: usize,
    /// Largest consensus-log entry (a proposal may carry a whole block).
    pub wal_entry_bytes_max: usize,
    /// Most consensus-log entries at one height.
    pub wal_entries_per_height_max: u32,
    /// Target size of a snapshot chunk, and of each batch of a bulk state write.
    pub snapshot_chunk_bytes: usize,
}

impl Default for ChainStoreConfig {
    fn default() -> ChainStoreConfig {
        ChainStoreConfig {
            snapshot_interval_blocks: 1_000,
            keep_state_column: false,
            snapshots_retained: 2,
            wal_heights_retained: 2,
            commit_durability: Durability::Synced,
            open_verify: VerifyDepth::Quick,
            verify_recent_blocks: 64,
            block_bytes_max: 64 << 20,
            certificate_bytes_max: 1 << 20,
            state_key_bytes_max: 1 << 10,
            state_value_bytes_max: 1 << 20,
            state_changes_max: 4_000_000,
            wal_entry_bytes_max: 64 << 20,
            wal_entries_per_height_max: 65_536,
            snapshot_chunk_bytes: 1 << 20,
        }
    }
}

/// How much [`ChainStore::verify_consistency`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyDepth {
    /// Metadata, the whole block index (heights contiguous, parent links, head), the newest
    /// `verify_recent_blocks` blocks and certificates, snapshot manifests against the
    /// committed roots, snapshot chunk counts. Reads megabytes, not the whole database.
    Quick,
    /// Everything in `Quick`, plus every block, certificate, snapshot chunk (with its
    /// digest), state value and consensus-log entry. Reads the whole database.
    Full,
}

/// One block to commit, with everything that must become durable with it.
#[derive(Debug, Clone, Copy)]
pub struct BlockCommit<'a> {
    /// Height; must be the committed head's height + 1.
    pub height: u64,
    /// The block's hash (the header hash).
    pub block_hash: Hash,
    /// The parent's hash; must be the committed head's block hash.
    pub parent_hash: Hash,
    /// The state root after executing the block.
    pub state_root: Hash,
    /// The encoded block.
    pub block: &'a [u8],
    /// The encoded commit certificate.
    pub certificate: &'a [u8],
    /// The block's state diff, sorted by key without duplicates. Written (and checked)
    /// only when the store keeps the state column; ignored otherwise, so a caller that
    /// knows the column is off passes an empty slice and skips computing it.
    pub state_changes: &'a [StateChange],
}

/// A committed block read back with its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedBlock {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub block_hash: Hash,
    /// Parent hash.
    pub parent_hash: Hash,
    /// State root after the block.
    pub state_root: Hash,
    /// The encoded block.
    pub block: Vec<u8>,
    /// The encoded commit certificate.
    pub certificate: Vec<u8>,
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// The committed head.
    pub head: Option<CommittedHead>,
    /// The chain base.
    pub base: Option<ChainBase>,
    /// Lowest height whose block is kept.
    pub blocks_retained_from: u64,
    /// Block-index entries checked.
    pub index_entries_checked: u64,
    /// Block bodies read and checked.
    pub blocks_checked: u64,
    /// Certificates read and checked.
    pub certificates_checked: u64,
    /// Complete snapshots, oldest first.
    pub snapshots: Vec<SnapshotInfo>,
    /// Heights of snapshots whose manifest was never written (the write was interrupted).
    /// They hold no information; [`ChainStore::open`] deletes them.
    pub incomplete_snapshots: Vec<u64>,
    /// State values read and checked (`Full` only).
    pub state_entries_checked: u64,
    /// Consensus-log entries read and checked (`Full` only).
    pub wal_entries_checked: u64,
}

/// What [`ChainStore::open`] found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// The store was empty and has been formatted.
    pub formatted: bool,
    /// The verification done at open.
    pub verify: VerifyReport,
    /// Incomplete snapshots deleted.
    pub removed_incomplete_snapshots: Vec<u64>,
    /// Entries of the state column were deleted: the column is not kept, or it was not
    /// current (switched off earlier, or a rebuild was interrupted). It holds no
    /// information without its marker.
    pub cleared_state_column: bool,
    /// The store was written in this older format and has been upgraded in place.
    pub upgraded_format_from: Option<u32>,
}

#[derive(Debug)]
struct Writer {
    head: Option<CommittedHead>,
    base: Option<ChainBase>,
    retained_from: u64,
    /// The state column holds the state at the head (its marker is stored).
    state_column_current: bool,
    /// Consensus-log entries below this height have been pruned through this handle, so a
    /// pruning scan starts here rather than walking the tombstones of every earlier height.
    wal_pruned_below: u64,
    /// Set when a write failed: the handle refuses further writes (see
    /// [`StorageError::Halted`]).
    halted: bool,
}

/// A validator's durable chain: blocks, certificates, state, snapshots and consensus log.
///
/// Every method takes `&self`; writes are serialised inside. A handle whose write failed
/// refuses every later write ([`StorageError::Halted`]): reopen the store to recover.
#[derive(Debug)]
pub struct ChainStore<S: Store> {
    store: S,
    config: ChainStoreConfig,
    writer: Mutex<Writer>,
    /// Serialises snapshot writes, snapshot pruning and block pruning. Taken before
    /// `writer` when both are needed.
    snapshots_lock: Mutex<()>,
    recovery: RecoveryReport,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are plain caches updated only after a write succeeded; a panic
    // elsewhere cannot leave them half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn inconsistent(problem: Inconsistency) -> StorageError {
    StorageError::inconsistent(problem)
}

fn check_size(what: &'static str, size: usize, max: usize) -> Result<()> {
    if size > max {
        return Err(StorageError::TooLarge { what, size, max });
    }
    Ok(())
}

/// Builds snapshot chunk records from sorted key-values.
struct SnapshotBuilder {
    height: u64,
    chunk: Vec<u8>,
    chunk_bytes: usize,
    chunk_count: u32,
    entry_count: u64,
    payload_bytes: u64,
    digest: blake3::Hasher,
    last_key: Option<Vec<u8>>,
}

impl SnapshotBuilder {
    fn new(height: u64, chunk_bytes: usize) -> SnapshotBuilder {
        SnapshotBuilder {
            height,
            chunk: Vec::new(),
            chunk_bytes,
            chunk_count: 0,
            entry_count: 0,
            payload_bytes: 0,
            digest: blake3::Hasher::new(),
            last_key: None,
        }
    }

    /// Add an entry; when the chunk is full, put it into `batch`.
    fn push(&mut self, key: &[u8], value: &[u8], batch: &mut WriteBatch) -> Result<()> {
        if self.last_key.as_deref().is_some_and(|last| key <= last) {
            return Err(StorageError::UnsortedStateChanges {
                index: usize::try_from(self.entry_count).unwrap_or(usize::MAX),
            });
        }
        records::push_chunk_entry(&mut self.chunk, key, value);
        self.entry_count = self
            .entry_count
            .checked_add(1)
            .expect("bug: more than u64::MAX snapshot entries");
        self.payload_bytes = self
            .payload_bytes
            .saturating_add((key.len() as u64).saturating_add(value.len() as u64));
        self.last_key = Some(key.to_vec());
        if self.chunk.len() >= self.chunk_bytes {
            self.flush_chunk(batch)?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self, batch: &mut WriteBatch) -> Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let key = records::snapshot_chunk_key(self.height, self.chunk_count);
        self.digest.update(&self.chunk);
        batch.put(
            Column::Snapshots,
            key.to_vec(),
            frame::seal(Column::Snapshots, &key, &self.chunk),
        );
        self.chunk.clear();
        self.chunk_count = self
            .chunk_count
            .checked_add(1)
            .ok_or(StorageError::TooLarge {
                what: "snapshot chunk count",
                size: u32::MAX as usize,
                max: u32::MAX as usize,
            })?;
        Ok(())
    }

    /// Flush the last chunk into `batch` and add the manifest after it.
    fn finish(
        mut self,
        block_hash: Hash,
        state_root: Hash,
        batch: &mut WriteBatch,
    ) -> Result<SnapshotInfo> {
        self.flush_chunk(batch)?;
        let info = SnapshotInfo {
            height: self.height,
            block_hash,
            state_root,
            entry_count: self.entry_count,
            chunk_count: self.chunk_count,
            payload_bytes: self.payload_bytes,
            content_digest: Hash(*self.digest.finalize().as_bytes()),
        };
        let key = records::snapshot_manifest_key(self.height);
        batch.put(
            Column::Snapshots,
            key.to_vec(),
            frame::seal(Column::Snapshots, &key, &info.encode()),
        );
        Ok(info)
    }
}

impl<S: Store> ChainStore<S> {
    /// Open the chain in `store`: format it if empty, verify it (to `config.open_verify`),
    /// and delete incomplete snapshots. A damaged or inconsistent store is an error that
    /// names the problem and the remedy; nothing is repaired silently.
    pub fn open(store: S, config: ChainStoreConfig) -> Result<ChainStore<S>> {
        if config.snapshots_retained == 0 {
            return Err(StorageError::InvalidConfig {
                detail: "snapshots_retained must be at least 1".into(),
            });
        }
        if config.snapshot_chunk_bytes == 0 {
            return Err(StorageError::InvalidConfig {
                detail: "snapshot_chunk_bytes must be positive".into(),
            });
        }
        let mut recovery = RecoveryReport::default();
        let mut format_version = records::FORMAT_VERSION;
        match store.get(Column::Metadata, META_FORMAT)? {
            Some(value) => {
                let version =
                    records::decode_format(frame::open(Column::Metadata, META_FORMAT, &value)?)?;
                if !(records::FORMAT_VERSION_MIN..=records::FORMAT_VERSION).contains(&version) {
                    return Err(StorageError::UnsupportedFormat {
                        found: version,
                        supported: records::FORMAT_VERSION,
                    });
                }
                format_version = version;
            }
            None => {
                for column in Column::ALL {
                    if store
                        .first(column, KeyRange::ALL, ScanOrder::Forward)?
                        .is_some()
                    {
                        return Err(inconsistent(Inconsistency::MissingFormatMarker));
                    }
                }
                let mut batch = WriteBatch::synced();
                batch.put(
                    Column::Metadata,
                    META_FORMAT.to_vec(),
                    frame::seal(Column::Metadata, META_FORMAT, &records::encode_format()),
                );
                store.write(batch)?;
                recovery.formatted = true;
            }
        }
        let chain = ChainStore {
            store,
            config,
            writer: Mutex::new(Writer {
                head: None,
                base: None,
                retained_from: 0,
                state_column_current: false,
                wal_pruned_below: 0,
                halted: false,
            }),
            snapshots_lock: Mutex::new(()),
            recovery: RecoveryReport::default(),
        };
        let verify = chain.verify_consistency(chain.config.open_verify)?;
        if !verify.incomplete_snapshots.is_empty() {
            let mut batch = WriteBatch::synced();
            // The caller sees these in `recovery().removed_incomplete_snapshots` (and logs
            // them): a snapshot without a manifest was never complete and holds nothing.
            for height in &verify.incomplete_snapshots {
                batch.delete_range(
                    Column::Snapshots,
                    records::snapshot_chunks_start(*height).to_vec(),
                    records::snapshot_chunks_end(*height),
                );
            }
            chain.store.write(batch)?;
            recovery.removed_incomplete_snapshots = verify.incomplete_snapshots.clone();
        }
        let state_column_current =
            chain.settle_state_column(format_version, verify.head.is_some(), &mut recovery)?;
        {
            let mut writer = lock(&chain.writer);
            writer.head = verify.head;
            writer.base = verify.base;
            writer.retained_from = verify.blocks_retained_from;
            writer.state_column_current = state_column_current;
        }
        recovery.verify = verify;
        Ok(ChainStore { recovery, ..chain })
    }

    /// Decide at open whether the state column is current, clear it when it is not, and
    /// upgrade an older format. Returns whether the column holds the state at the head.
    fn settle_state_column(
        &self,
        format_version: u32,
        has_head: bool,
        recovery: &mut RecoveryReport,
    ) -> Result<bool> {
        let marker = match self.get_framed(Column::Metadata, META_STATE_COLUMN)? {
            None => false,
            Some(payload) if payload == STATE_COLUMN_MARKER => true,
            Some(_) => {
                return Err(StorageError::corrupted(
                    Column::Metadata,
                    META_STATE_COLUMN,
                    crate::error::CorruptionKind::Malformed {
                        detail: "the state-column marker has an unknown payload".into(),
                    },
                ));
            }
        };
        // Format 1 kept the state column at the head under every commit, without a marker.
        let was_current = marker || (format_version == 1 && has_head);
        let current = was_current && self.config.keep_state_column;
        let mut batch = WriteBatch::synced();
        if current && !marker {
            batch.put(
                Column::Metadata,
                META_STATE_COLUMN.to_vec(),
                frame::seal(Column::Metadata, META_STATE_COLUMN, STATE_COLUMN_MARKER),
            );
        }
        if !current {
            if marker {
                batch.delete(Column::Metadata, META_STATE_COLUMN.to_vec());
            }
            if self.push_state_column_clear(&mut batch)? {
                recovery.cleared_state_column = true;
            }
        }
        if format_version < records::FORMAT_VERSION {
            batch.put(
                Column::Metadata,
                META_FORMAT.to_vec(),
                frame::seal(Column::Metadata, META_FORMAT, &records::encode_format()),
            );
            recovery.upgraded_format_from = Some(format_version);
        }
        if !batch.is_empty() {
            self.store.write(batch)?;
        }
        Ok(current)
    }

    /// Add a delete of every state-column entry to `batch`; false if the column is empty.
    fn push_state_column_clear(&self, batch: &mut WriteBatch) -> Result<bool> {
        let first = self
            .store
            .first(Column::State, KeyRange::ALL, ScanOrder::Forward)?;
        let last = self
            .store
            .first(Column::State, KeyRange::ALL, ScanOrder::Reverse)?;
        match (first, last) {
            (Some((first, _)), Some((last, _))) => {
                batch.delete_range(Column::State, first, records::key_successor(&last));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ChainStoreConfig {
        &self.config
    }

    /// True when the state column holds the state at the committed head: the store keeps
    /// it and it has not been left stale by a switch from off to on (see
    /// [`ChainStore::rebuild_state_column`]).
    pub fn state_column_current(&self) -> bool {
        lock(&self.writer).state_column_current
    }

    fn require_state_column(&self) -> Result<()> {
        if self.state_column_current() {
            Ok(())
        } else {
            Err(StorageError::StateColumnUnavailable {
                kept: self.config.keep_state_column,
            })
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// What `open` found and did.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The last committed block (or the base, if no block was committed after it).
    pub fn last_committed(&self) -> Option<CommittedHead> {
        lock(&self.writer).head
    }

    /// Where the stored chain starts (genesis or an imported snapshot).
    pub fn base(&self) -> Option<ChainBase> {
        lock(&self.writer).base
    }

    /// Lowest height whose block is still kept (above the base).
    pub fn blocks_retained_from(&self) -> u64 {
        let writer = lock(&self.writer);
        let above_base = writer.base.map_or(0, |base| base.height.saturating_add(1));
        writer.retained_from.max(above_base)
    }

    // ----- reads of framed records -------------------------------------------------------

    fn get_framed(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.store.get(column, key)? {
            None => Ok(None),
            Some(value) => Ok(Some(frame::open(column, key, &value)?.to_vec())),
        }
    }

    fn read_head(&self) -> Result<Option<CommittedHead>> {
        self.get_framed(Column::Metadata, META_HEAD)?
            .map(|p| CommittedHead::decode(Column::Metadata, META_HEAD, &p))
            .transpose()
    }

    fn read_base(&self) -> Result<Option<ChainBase>> {
        self.get_framed(Column::Metadata, META_BASE)?
            .map(|p| CommittedHead::decode(Column::Metadata, META_BASE, &p))
            .transpose()
    }

    fn read_intent(&self) -> Result<Option<CommitIntent>> {
        self.get_framed(Column::Metadata, META_INTENT)?
            .map(|p| CommitIntent::decode(Column::Metadata, META_INTENT, &p))
            .transpose()
    }

    fn read_retained_from(&self) -> Result<u64> {
        match self.get_framed(Column::Metadata, META_RETAINED_FROM)? {
            None => Ok(0),
            Some(payload) => {
                let mut reader =
                    records::Reader::new(Column::Metadata, META_RETAINED_FROM, &payload);
                let height = reader.u64()?;
                reader.finish()?;
                Ok(height)
            }
        }
    }

    /// The block-index entry at `height`.
    pub fn block_index(&self, height: u64) -> Result<Option<BlockIndexEntry>> {
        let key = records::height_key(height);
        self.get_framed(Column::BlockIndex, &key)?
            .map(|p| BlockIndexEntry::decode(&key, &p))
            .transpose()
    }

    /// The hash of the block at `height`.
    pub fn block_hash(&self, height: u64) -> Result<Option<Hash>> {
        Ok(self.block_index(height)?.map(|entry| entry.hash))
    }

    /// The encoded block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Vec<u8>>> {
        self.get_framed(Column::Blocks, &records::height_key(height))
    }

    /// The encoded commit certificate at `height`.
    pub fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>> {
        self.get_framed(Column::Certificates, &records::height_key(height))
    }

    /// The block at `height` with its certificate and index facts, checked against each
    /// other.
    pub fn committed_block(&self, height: u64) -> Result<Option<CommittedBlock>> {
        let Some(entry) = self.block_index(height)? else {
            return Ok(None);
        };
        let block = self.block(height)?.ok_or_else(|| {
            inconsistent(Inconsistency::MissingHeight {
                height,
                column: Column::Blocks,
            })
        })?;
        let certificate = self.certificate(height)?.ok_or_else(|| {
            inconsistent(Inconsistency::MissingHeight {
                height,
                column: Column::Certificates,
            })
        })?;
        if block.len() as u64 != entry.body_len || records::body_crc(&block) != entry.body_crc {
            return Err(inconsistent(Inconsistency::BlockBodyMismatch { height }));
        }
        Ok(Some(CommittedBlock {
            height,
            block_hash: entry.hash,
            parent_hash: entry.parent_hash,
            state_root: entry.state_root,
            block,
            certificate,
        }))
    }

    /// Committed blocks from `from` through `to_inclusive`, at most `count_max` of them,
    /// in height order; stops early at the first height not stored.
    pub fn blocks_range(
        &self,
        from: u64,
        to_inclusive: u64,
        count_max: usize,
    ) -> Result<Vec<CommittedBlock>> {
        let mut out = Vec::new();
        let mut height = from;
        while height <= to_inclusive && out.len() < count_max {
            match self.committed_block(height)? {
                Some(block) => out.push(block),
                None => break,
            }
            match height.checked_add(1) {
                Some(next) => height = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// The state value at `key` at the committed head. Needs the state column
    /// ([`StorageError::StateColumnUnavailable`] otherwise).
    pub fn state_value(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.require_state_column()?;
        self.get_framed(Column::State, key)
    }

    /// Every state key-value at the committed head, in key order, each checked. Needs the
    /// state column ([`StorageError::StateColumnUnavailable`] otherwise).
    pub fn state_entries(&self) -> Result<Vec<StateEntry>> {
        self.require_state_column()?;
        let mut out = Vec::new();
        self.store.scan(
            Column::State,
            KeyRange::ALL,
            ScanOrder::Forward,
            &mut |key, value| {
                let payload = frame::open(Column::State, key, value)?;
                out.push((key.to_vec(), payload.to_vec()));
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok(out)
    }

    /// The state at the committed head, checked against the committed state root with the
    /// ledger's root function. Needs the state column; without it the state is the newest
    /// snapshot ([`ChainStore::snapshot_entries`]) plus the blocks after it, replayed by
    /// the caller.
    pub fn load_state_verified(
        &self,
        state_root: impl Fn(&[StateEntry]) -> Hash,
    ) -> Result<Vec<StateEntry>> {
        let head = self.last_committed().ok_or(StorageError::NotInitialized)?;
        let entries = self.state_entries()?;
        let computed = state_root(&entries);
        if computed != head.state_root {
            return Err(inconsistent(Inconsistency::StateRootMismatch {
                height: head.height,
                committed: head.state_root,
                computed,
            }));
        }
        Ok(entries)
    }

    // ----- writes ----------------------------------------------------------------------

    fn write_checked(&self, writer: &mut Writer, batch: WriteBatch) -> Result<()> {
        if writer.halted {
            return Err(StorageError::Halted);
        }
        self.store
            .write(batch)
            .inspect_err(|_| writer.halted = true)
    }

    /// Install the chain base into an empty chain: the genesis state (height 0, with the
    /// genesis hash that block 1 names as its parent) or a snapshot's state. `entries`
    /// must be sorted by key without duplicates. Stores the state as the first snapshot
    /// (and in the state column when it is kept). The caller checks `base.state_root`
    /// against `entries` (see [`ChainStore::import_snapshot`], which does).
    pub fn install_base_state(
        &self,
        base: ChainBase,
        entries: impl IntoIterator<Item = StateEntry>,
    ) -> Result<CommittedHead> {
        let _snapshots = lock(&self.snapshots_lock);
        let mut writer = lock(&self.writer);
        if let Some(head) = writer.head {
            return Err(StorageError::AlreadyInitialized { head: head.height });
        }
        // The intent opens the first batch; a crash before the last batch leaves an intent
        // with no head, which open reports as an interrupted install.
        let mut batch = WriteBatch::buffered();
        let intent = CommitIntent {
            height: base.height,
            kind: IntentKind::Base,
        };
        batch.put(
            Column::Metadata,
            META_INTENT.to_vec(),
            frame::seal(Column::Metadata, META_INTENT, &intent.encode()),
        );
        let mut snapshot = SnapshotBuilder::new(base.height, self.config.snapshot_chunk_bytes);
        for (index, (key, value)) in entries.into_iter().enumerate() {
            self.check_state_entry(index, &key, Some(&value))?;
            snapshot.push(&key, &value, &mut batch)?;
            if self.config.keep_state_column {
                let sealed = frame::seal(Column::State, &key, &value);
                batch.put(Column::State, key, sealed);
            }
            if batch.payload_bytes() >= self.config.snapshot_chunk_bytes.saturating_mul(2) {
                let full = std::mem::replace(&mut batch, WriteBatch::buffered());
                self.write_checked(&mut writer, full)?;
            }
        }
        snapshot.finish(base.block_hash, base.state_root, &mut batch)?;
        batch.put(
            Column::Metadata,
            META_BASE.to_vec(),
            frame::seal(Column::Metadata, META_BASE, &base.encode()),
        );
        if self.config.keep_state_column {
            batch.put(
                Column::Metadata,
                META_STATE_COLUMN.to_vec(),
                frame::seal(Column::Metadata, META_STATE_COLUMN, STATE_COLUMN_MARKER),
            );
        }
        batch.put(
            Column::Metadata,
            META_HEAD.to_vec(),
            frame::seal(Column::Metadata, META_HEAD, &base.encode()),
        );
        batch.set_durability(Durability::Synced);
        self.write_checked(&mut writer, batch)?;
        writer.base = Some(base);
        writer.head = Some(base);
        writer.state_column_current = self.config.keep_state_column;
        Ok(base)
    }

    fn check_state_entry(&self, index: usize, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        if key.is_empty() {
            return Err(StorageError::EmptyStateKey { index });
        }
        check_size("state key", key.len(), self.config.state_key_bytes_max)?;
        if let Some(value) = value {
            check_size(
                "state value",
                value.len(),
                self.config.state_value_bytes_max,
            )?;
        }
        Ok(())
    }

    /// Commit a block: block, certificate, index entry, consensus-log pruning and the new
    /// head (and the state changes, when the state column is kept) in one atomic write,
    /// synced (per `config.commit_durability`) before this returns.
    ///
    /// Without the state column the write is a few records whatever the block's size in
    /// keys: the state becomes durable through snapshots ([`ChainStore::write_snapshot`])
    /// and the blocks after the newest one.
    pub fn commit_block(&self, commit: &BlockCommit<'_>) -> Result<CommittedHead> {
        check_size("block", commit.block.len(), self.config.block_bytes_max)?;
        check_size(
            "certificate",
            commit.certificate.len(),
            self.config.certificate_bytes_max,
        )?;
        let state_changes: &[StateChange] = if self.config.keep_state_column {
            check_size(
                "state change count",
                commit.state_changes.len(),
                self.config.state_changes_max,
            )?;
            for (index, (key, value)) in commit.state_changes.iter().enumerate() {
                self.check_state_entry(index, key, value.as_deref())?;
                if index > 0 && commit.state_changes[index - 1].0 >= *key {
                    return Err(StorageError::UnsortedStateChanges { index });
                }
            }
            commit.state_changes
        } else {
            &[]
        };

        let mut writer = lock(&self.writer);
        if writer.halted {
            return Err(StorageError::Halted);
        }
        let head = writer.head.ok_or(StorageError::NotInitialized)?;
        if self.config.keep_state_column && !writer.state_column_current {
            // Writing one block's changes into a stale column would make it look current.
            return Err(StorageError::StateColumnUnavailable { kept: true });
        }
        let expected = head
            .height
            .checked_add(1)
            .expect("bug: the committed height reached u64::MAX");
        if commit.height != expected {
            return Err(StorageError::NonContiguousHeight {
                expected,
                got: commit.height,
            });
        }
        if commit.parent_hash != head.block_hash {
            return Err(StorageError::ParentMismatch {
                height: commit.height,
                parent: commit.parent_hash,
                head: head.block_hash,
            });
        }

        let height_key = records::height_key(commit.height);
        let mut batch = WriteBatch::new(self.config.commit_durability);
        // Intent first, head last: see the module docs on torn writes.
        let intent = CommitIntent {
            height: commit.height,
            kind: IntentKind::Commit,
        };
        batch.put(
            Column::Metadata,
            META_INTENT.to_vec(),
            frame::seal(Column::Metadata, META_INTENT, &intent.encode()),
        );
        let entry = BlockIndexEntry {
            hash: commit.block_hash,
            parent_hash: commit.parent_hash,
            state_root: commit.state_root,
            body_len: commit.block.len() as u64,
            body_crc: records::body_crc(commit.block),
            certificate_len: commit.certificate.len() as u64,
        };
        batch.put(
            Column::BlockIndex,
            height_key.to_vec(),
            frame::seal(Column::BlockIndex, &height_key, &entry.encode()),
        );
        batch.put(
            Column::Blocks,
            height_key.to_vec(),
            frame::seal(Column::Blocks, &height_key, commit.block),
        );
        batch.put(
            Column::Certificates,
            height_key.to_vec(),
            frame::seal(Column::Certificates, &height_key, commit.certificate),
        );
        for (key, value) in state_changes {
            match value {
                Some(value) => batch.put(
                    Column::State,
                    key.clone(),
                    frame::seal(Column::State, key, value),
                ),
                None => batch.delete(Column::State, key.clone()),
            }
        }
        let wal_keep_from = expected
            .saturating_add(1)
            .saturating_sub(self.config.wal_heights_retained);
        self.push_wal_pruning(writer.wal_pruned_below, wal_keep_from, &mut batch)?;
        let new_head = CommittedHead {
            height: commit.height,
            block_hash: commit.block_hash,
            state_root: commit.state_root,
        };
        batch.put(
            Column::Metadata,
            META_HEAD.to_vec(),
            frame::seal(Column::Metadata, META_HEAD, &new_head.encode()),
        );
        self.write_checked(&mut writer, batch)?;
        writer.head = Some(new_head);
        writer.wal_pruned_below = writer.wal_pruned_below.max(wal_keep_from);
        Ok(new_head)
    }

    /// Fill the state column with the state at the committed head, after it was switched
    /// on for a chain that ran without it (see [`ChainStoreConfig::keep_state_column`]).
    /// `entries` must be the state at the head, sorted by key without duplicates; the
    /// caller has checked them against the head's state root (recovery rebuilt and
    /// verified them). Commits wait until it is done. An interrupted rebuild leaves the
    /// column without its marker, which the next open clears.
    pub fn rebuild_state_column(
        &self,
        entries: impl IntoIterator<Item = StateEntry>,
    ) -> Result<()> {
        if !self.config.keep_state_column {
            return Err(StorageError::StateColumnUnavailable { kept: false });
        }
        let mut writer = lock(&self.writer);
        if writer.halted {
            return Err(StorageError::Halted);
        }
        writer.head.ok_or(StorageError::NotInitialized)?;
        writer.state_column_current = false;
        let mut batch = WriteBatch::buffered();
        batch.delete(Column::Metadata, META_STATE_COLUMN.to_vec());
        self.push_state_column_clear(&mut batch)?;
        let mut previous: Option<Vec<u8>> = None;
        for (index, (key, value)) in entries.into_iter().enumerate() {
            self.check_state_entry(index, &key, Some(&value))?;
            if previous
                .as_deref()
                .is_some_and(|previous| key.as_slice() <= previous)
            {
                return Err(StorageError::UnsortedStateChanges { index });
            }
            let sealed = frame::seal(Column::State, &key, &value);
            previous = Some(key.clone());
            batch.put(Column::State, key, sealed);
            if batch.payload_bytes() >= self.config.snapshot_chunk_bytes {
                let full = std::mem::replace(&mut batch, WriteBatch::buffered());
                self.write_checked(&mut writer, full)?;
            }
        }
        batch.put(
            Column::Metadata,
            META_STATE_COLUMN.to_vec(),
            frame::seal(Column::Metadata, META_STATE_COLUMN, STATE_COLUMN_MARKER),
        );
        batch.set_durability(Durability::Synced);
        self.write_checked(&mut writer, batch)?;
        writer.state_column_current = true;
        Ok(())
    }

    // ----- consensus write-ahead log ----------------------------------------------------

    fn wal_height_range(height: u64) -> (Vec<u8>, Option<Vec<u8>>) {
        let start = records::wal_key(height, 0).to_vec();
        let end = height
            .checked_add(1)
            .map(|next| records::wal_key(next, 0).to_vec());
        (start, end)
    }

    /// Append a validator's own proposal or vote to the consensus log, synced: call it
    /// and wait for `Ok` before sending the message. Returns the entry's sequence number
    /// within `height`.
    pub fn append_wal(&self, height: u64, entry: &[u8]) -> Result<u32> {
        self.append_wal_with(height, entry, Durability::Synced)
    }

    /// [`ChainStore::append_wal`] with a chosen durability. `Buffered` is for an entry that
    /// a synced append follows before anything is sent: the store's log is sequential, so
    /// that later sync makes this entry durable too, for one fsync instead of two.
    pub fn append_wal_with(
        &self,
        height: u64,
        entry: &[u8],
        durability: Durability,
    ) -> Result<u32> {
        check_size(
            "consensus log entry",
            entry.len(),
            self.config.wal_entry_bytes_max,
        )?;
        let mut writer = lock(&self.writer);
        if writer.halted {
            return Err(StorageError::Halted);
        }
        let (start, end) = Self::wal_height_range(height);
        let last = self.store.first(
            Column::ConsensusWal,
            KeyRange {
                start: Some(&start),
                end: end.as_deref(),
            },
            ScanOrder::Reverse,
        )?;
        let seq = match last {
            None => 0,
            Some((key, _)) => records::decode_wal_key(&key)?.1.saturating_add(1),
        };
        if seq >= self.config.wal_entries_per_height_max {
            return Err(StorageError::TooLarge {
                what: "consensus log entry count at one height",
                size: seq as usize,
                max: self.config.wal_entries_per_height_max as usize,
            });
        }
        let key = records::wal_key(height, seq);
        let mut batch = WriteBatch::new(durability);
        batch.put(
            Column::ConsensusWal,
            key.to_vec(),
            frame::seal(Column::ConsensusWal, &key, entry),
        );
        self.write_checked(&mut writer, batch)?;
        // An entry below the pruning floor (a late vote for a committed height) must still
        // be reached by the next pruning scan.
        writer.wal_pruned_below = writer.wal_pruned_below.min(height);
        Ok(seq)
    }

    /// The consensus-log entries at `height`, in append order.
    pub fn wal_entries(&self, height: u64) -> Result<Vec<Vec<u8>>> {
        let (start, end) = Self::wal_height_range(height);
        let mut out = Vec::new();
        self.store.scan(
            Column::ConsensusWal,
            KeyRange {
                start: Some(&start),
                end: end.as_deref(),
            },
            ScanOrder::Forward,
            &mut |key, value| {
                out.push(frame::open(Column::ConsensusWal, key, value)?.to_vec());
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok(out)
    }

    /// Up to `count_max` consensus-log entries at `height` and above, as `(height, entry)`
    /// in append order.
    pub fn wal_entries_from(&self, height: u64, count_max: usize) -> Result<Vec<(u64, Vec<u8>)>> {
        let start = records::wal_key(height, 0);
        let mut out = Vec::new();
        if count_max == 0 {
            return Ok(out);
        }
        self.store.scan(
            Column::ConsensusWal,
            KeyRange::from(&start),
            ScanOrder::Forward,
            &mut |key, value| {
                let (entry_height, _) = records::decode_wal_key(key)?;
                out.push((
                    entry_height,
                    frame::open(Column::ConsensusWal, key, value)?.to_vec(),
                ));
                Ok(if out.len() >= count_max {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )?;
        Ok(out)
    }

    /// Delete consensus-log entries below `height` (commits do this by themselves per
    /// `wal_heights_retained`).
    pub fn prune_wal(&self, below_height: u64) -> Result<()> {
        let mut writer = lock(&self.writer);
        let mut batch = WriteBatch::buffered();
        // An explicit prune scans from the start: it also catches what an earlier handle
        // left.
        self.push_wal_pruning(0, below_height, &mut batch)?;
        if !batch.is_empty() {
            self.write_checked(&mut writer, batch)?;
        }
        writer.wal_pruned_below = writer.wal_pruned_below.max(below_height);
        Ok(())
    }

    /// Add deletes of the consensus-log entries from `from_height` up to below
    /// `below_height` to `batch` (`from_height` is where earlier pruning through this
    /// handle stopped: the entries below it are already deleted).
    ///
    /// Only entries that exist are deleted, one point delete each (a few per height). A
    /// range delete from 0 on every commit would stack one overlapping range tombstone per
    /// height in RocksDB, and fragmenting 100,000 overlapping tombstones takes memory
    /// quadratic in their number; a range delete is used only for an unusually long run.
    /// Starting the scan at `from_height` keeps it from stepping over the point-delete
    /// tombstones of every earlier height on each commit.
    fn push_wal_pruning(
        &self,
        from_height: u64,
        below_height: u64,
        batch: &mut WriteBatch,
    ) -> Result<()> {
        const POINT_DELETES_MAX: usize = 1_024;
        if below_height == 0 || from_height >= below_height {
            return Ok(());
        }
        let start = records::wal_key(from_height, 0);
        let end = records::wal_key(below_height, 0);
        let doomed = self.store.collect(
            Column::ConsensusWal,
            KeyRange {
                start: (from_height > 0).then_some(&start[..]),
                end: Some(&end),
            },
            ScanOrder::Forward,
            POINT_DELETES_MAX.saturating_add(1),
        )?;
        match doomed.first() {
            Some((first, _)) if doomed.len() > POINT_DELETES_MAX => {
                batch.delete_range(Column::ConsensusWal, first.clone(), end.to_vec());
            }
            _ => {
                for (key, _) in doomed {
                    batch.delete(Column::ConsensusWal, key);
                }
            }
        }
        Ok(())
    }

    // ----- snapshots --------------------------------------------------------------------

    /// True when `height` is a snapshot height under `snapshot_interval_blocks`.
    pub fn snapshot_due(&self, height: u64) -> bool {
        let interval = self.config.snapshot_interval_blocks;
        interval > 0 && height > 0 && height.is_multiple_of(interval)
    }

    /// The committed (block hash, state root) at `height`: the base, or a stored block.
    fn committed_at(&self, height: u64) -> Result<(Hash, Hash)> {
        let (base, head) = {
            let writer = lock(&self.writer);
            (writer.base, writer.head)
        };
        let head = head.ok_or(StorageError::NotInitialized)?;
        if height > head.height {
            return Err(StorageError::UnknownHeight { height });
        }
        if let Some(base) = base
            && base.height == height
        {
            return Ok((base.block_hash, base.state_root));
        }
        let entry = self
            .block_index(height)?
            .ok_or(StorageError::UnknownHeight { height })?;
        Ok((entry.hash, entry.state_root))
    }

    /// Store a snapshot of the state at `height` (at or below the head, with its block
    /// still indexed) from sorted key-values, e.g. the ledger's in-memory state. The root
    /// must equal the root committed at `height`. Writes chunks unsynced and seals them
    /// with a synced manifest, then deletes all but the newest `snapshots_retained`.
    ///
    /// Safe to call from another thread while blocks commit (the store is shared by
    /// reference): the writer lock is taken only for each chunk-sized batch, so a commit
    /// waits at most one chunk write, never the whole snapshot. A node keeps snapshots off
    /// its commit path this way: it clones the state after the block and hands it to a
    /// background thread. A crash before the manifest leaves an incomplete snapshot that
    /// open deletes; recovery then replays from the previous one.
    pub fn write_snapshot(
        &self,
        height: u64,
        state_root: Hash,
        entries: impl IntoIterator<Item = StateEntry>,
    ) -> Result<SnapshotInfo> {
        let _snapshots = lock(&self.snapshots_lock);
        let (block_hash, committed_root) = self.committed_at(height)?;
        if state_root != committed_root {
            return Err(StorageError::SnapshotRootDiffers {
                height,
                given: state_root,
                committed: committed_root,
            });
        }
        let mut batch = WriteBatch::buffered();
        // A rewrite of an existing snapshot first removes it; a crash in between leaves
        // chunks without a manifest, which open deletes.
        batch.delete(
            Column::Snapshots,
            records::snapshot_manifest_key(height).to_vec(),
        );
        batch.delete_range(
            Column::Snapshots,
            records::snapshot_chunks_start(height).to_vec(),
            records::snapshot_chunks_end(height),
        );
        let mut builder = SnapshotBuilder::new(height, self.config.snapshot_chunk_bytes);
        for (index, (key, value)) in entries.into_iter().enumerate() {
            self.check_state_entry(index, &key, Some(&value))?;
            builder.push(&key, &value, &mut batch)?;
            if batch.payload_bytes() >= self.config.snapshot_chunk_bytes {
                let full = std::mem::replace(&mut batch, WriteBatch::buffered());
                self.write_unlocked(full)?;
            }
        }
        let info = builder.finish(block_hash, state_root, &mut batch)?;
        batch.set_durability(Durability::Synced);
        self.write_unlocked(batch)?;
        self.prune_snapshots_locked()?;
        Ok(info)
    }

    fn write_unlocked(&self, batch: WriteBatch) -> Result<()> {
        let mut writer = lock(&self.writer);
        self.write_checked(&mut writer, batch)
    }

    /// Snapshot the stored state at the committed head from the state column (so it needs
    /// the column: [`StorageError::StateColumnUnavailable`] otherwise). Commits wait until
    /// it is done (it reads the column page by page and the pages must all be at one
    /// height); a node that cannot pause commits, or runs without the column, passes its
    /// own state to [`ChainStore::write_snapshot`] instead.
    pub fn snapshot_current_state(&self) -> Result<SnapshotInfo> {
        let _snapshots = lock(&self.snapshots_lock);
        let mut writer = lock(&self.writer);
        if !writer.state_column_current {
            return Err(StorageError::StateColumnUnavailable {
                kept: self.config.keep_state_column,
            });
        }
        let head = writer.head.ok_or(StorageError::NotInitialized)?;
        let height = head.height;
        let mut batch = WriteBatch::buffered();
        batch.delete(
            Column::Snapshots,
            records::snapshot_manifest_key(height).to_vec(),
        );
        batch.delete_range(
            Column::Snapshots,
            records::snapshot_chunks_start(height).to_vec(),
            records::snapshot_chunks_end(height),
        );
        let mut builder = SnapshotBuilder::new(height, self.config.snapshot_chunk_bytes);
        let mut resume: Option<Vec<u8>> = None;
        loop {
            // Read a page of about one chunk, then write it: the visitor must not call back
            // into the store.
            let mut page: Vec<StateEntry> = Vec::new();
            let mut page_bytes = 0usize;
            let page_bytes_max = self.config.snapshot_chunk_bytes;
            let mut more = false;
            self.store.scan(
                Column::State,
                KeyRange {
                    start: resume.as_deref(),
                    end: None,
                },
                ScanOrder::Forward,
                &mut |key, value| {
                    let payload = frame::open(Column::State, key, value)?;
                    page_bytes = page_bytes.saturating_add(key.len() + payload.len());
                    page.push((key.to_vec(), payload.to_vec()));
                    if page_bytes >= page_bytes_max {
                        more = true;
                        Ok(ControlFlow::Break(()))
                    } else {
                        Ok(ControlFlow::Continue(()))
                    }
                },
            )?;
            for (key, value) in &page {
                builder.push(key, value, &mut batch)?;
            }
            if batch.payload_bytes() >= self.config.snapshot_chunk_bytes {
                let full = std::mem::replace(&mut batch, WriteBatch::buffered());
                self.write_checked(&mut writer, full)?;
            }
            match (more, page.last()) {
                (true, Some((last, _))) => resume = Some(records::key_successor(last)),
                _ => break,
            }
        }
        let info = builder.finish(head.block_hash, head.state_root, &mut batch)?;
        batch.set_durability(Durability::Synced);
        self.write_checked(&mut writer, batch)?;
        drop(writer);
        self.prune_snapshots_locked()?;
        Ok(info)
    }

    /// Every complete snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let (start, end) = records::snapshot_manifest_range();
        let mut out = Vec::new();
        self.store.scan(
            Column::Snapshots,
            KeyRange::between(&start, &end),
            ScanOrder::Forward,
            &mut |key, value| {
                out.push(SnapshotInfo::decode(
                    key,
                    frame::open(Column::Snapshots, key, value)?,
                )?);
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok(out)
    }

    /// The newest complete snapshot.
    pub fn latest_snapshot(&self) -> Result<Option<SnapshotInfo>> {
        let (start, end) = records::snapshot_manifest_range();
        match self.store.first(
            Column::Snapshots,
            KeyRange::between(&start, &end),
            ScanOrder::Reverse,
        )? {
            None => Ok(None),
            Some((key, value)) => Ok(Some(SnapshotInfo::decode(
                &key,
                frame::open(Column::Snapshots, &key, &value)?,
            )?)),
        }
    }

    /// The snapshot at `height`, if complete.
    pub fn snapshot(&self, height: u64) -> Result<Option<SnapshotInfo>> {
        let key = records::snapshot_manifest_key(height);
        self.get_framed(Column::Snapshots, &key)?
            .map(|payload| SnapshotInfo::decode(&key, &payload))
            .transpose()
    }

    /// Visit the key-values of the snapshot at `height` in key order, checking its chunks
    /// against the manifest (count and digest).
    fn visit_snapshot(
        &self,
        height: u64,
        mut visit: impl FnMut(Vec<u8>, Vec<u8>) -> Result<()>,
    ) -> Result<SnapshotInfo> {
        let info = self
            .snapshot(height)?
            .ok_or(StorageError::NoSnapshot { height })?;
        let damaged =
            |detail: String| inconsistent(Inconsistency::SnapshotDamaged { height, detail });
        let mut digest = blake3::Hasher::new();
        let mut entries = Vec::new();
        let mut entry_count = 0u64;
        for index in 0..info.chunk_count {
            let key = records::snapshot_chunk_key(height, index);
            let chunk = self
                .get_framed(Column::Snapshots, &key)?
                .ok_or_else(|| damaged(format!("chunk {index} is missing")))?;
            digest.update(&chunk);
            entries.clear();
            records::decode_chunk(
                &key,
                &chunk,
                self.config.state_key_bytes_max,
                self.config.state_value_bytes_max,
                &mut entries,
            )?;
            for (key, value) in entries.drain(..) {
                entry_count = entry_count.saturating_add(1);
                visit(key, value)?;
            }
        }
        if digest.finalize().as_bytes() != info.content_digest.as_bytes() {
            return Err(damaged("content digest differs from the manifest".into()));
        }
        if entry_count != info.entry_count {
            return Err(damaged(format!(
                "{entry_count} entries found, the manifest says {}",
                info.entry_count
            )));
        }
        Ok(info)
    }

    /// The key-values of the snapshot at `height`, checked against its manifest.
    pub fn snapshot_entries(&self, height: u64) -> Result<(SnapshotInfo, Vec<StateEntry>)> {
        let mut out = Vec::new();
        let info = self.visit_snapshot(height, |key, value| {
            out.push((key, value));
            Ok(())
        })?;
        Ok((info, out))
    }

    /// Delete the snapshot at `height` (manifest first, so an interruption leaves only
    /// chunks without a manifest, which open deletes).
    pub fn delete_snapshot(&self, height: u64) -> Result<()> {
        let _snapshots = lock(&self.snapshots_lock);
        self.delete_snapshot_locked(height)
    }

    fn delete_snapshot_locked(&self, height: u64) -> Result<()> {
        let mut batch = WriteBatch::buffered();
        batch.delete(
            Column::Snapshots,
            records::snapshot_manifest_key(height).to_vec(),
        );
        batch.delete_range(
            Column::Snapshots,
            records::snapshot_chunks_start(height).to_vec(),
            records::snapshot_chunks_end(height),
        );
        self.write_unlocked(batch)
    }

    /// Delete all but the newest `snapshots_retained` snapshots.
    pub fn prune_snapshots(&self) -> Result<()> {
        let _snapshots = lock(&self.snapshots_lock);
        self.prune_snapshots_locked()
    }

    fn prune_snapshots_locked(&self) -> Result<()> {
        let snapshots = self.snapshots()?;
        let excess = snapshots
            .len()
            .saturating_sub(self.config.snapshots_retained);
        for info in &snapshots[..excess] {
            self.delete_snapshot_locked(info.height)?;
        }
        Ok(())
    }

    /// Delete blocks, certificates and index entries below `height`. Refused above the
    /// newest snapshot's height + 1 (replay from that snapshot needs the blocks after it)
    /// and above the head (the head's block is kept to check the head against).
    pub fn prune_blocks_below(&self, height: u64) -> Result<()> {
        let _snapshots = lock(&self.snapshots_lock);
        let latest = self.latest_snapshot()?;
        let mut writer = lock(&self.writer);
        let head = writer.head.ok_or(StorageError::NotInitialized)?;
        let base = writer.base.ok_or(StorageError::NotInitialized)?;
        let needed_from = latest
            .map_or(base.height, |snapshot| snapshot.height)
            .saturating_add(1)
            .min(head.height);
        if height > needed_from {
            return Err(StorageError::PruneTooFar {
                below: height,
                needed_from,
            });
        }
        if height <= writer.retained_from {
            return Ok(());
        }
        let mut batch = WriteBatch::synced();
        let end = records::height_key(height).to_vec();
        for column in [Column::BlockIndex, Column::Blocks, Column::Certificates] {
            batch.delete_range(column, records::height_key(0).to_vec(), end.clone());
        }
        batch.put(
            Column::Metadata,
            META_RETAINED_FROM.to_vec(),
            frame::seal(Column::Metadata, META_RETAINED_FROM, &height.to_le_bytes()),
        );
        self.write_checked(&mut writer, batch)?;
        writer.retained_from = height;
        Ok(())
    }

    /// Stream the snapshot at `height` into a snapshot file.
    pub fn export_snapshot<W: Write>(&self, height: u64, out: W) -> Result<SnapshotFileHeader> {
        let info = self
            .snapshot(height)?
            .ok_or(StorageError::NoSnapshot { height })?;
        let header = SnapshotFileHeader {
            height,
            block_hash: info.block_hash,
            state_root: info.state_root,
            entry_count: info.entry_count,
        };
        let mut writer = SnapshotFileWriter::new(out, header)?;
        self.visit_snapshot(height, |key, value| writer.append(&key, &value))?;
        writer.finish()?;
        Ok(header)
    }

    /// Import a snapshot file into an empty chain. The file is read whole and verified
    /// (checksums, limits, key order), then its entries must hash, under the ledger's
    /// `state_root` function, to `expected_state_root` (a root the caller trusts, e.g.
    /// from a header with a verified commit certificate). Only then is anything written.
    pub fn import_snapshot(
        &self,
        input: impl Read,
        limits: SnapshotFileLimits,
        expected_state_root: Hash,
        state_root: impl Fn(&[StateEntry]) -> Hash,
    ) -> Result<CommittedHead> {
        if let Some(head) = self.last_committed() {
            return Err(StorageError::AlreadyInitialized { head: head.height });
        }
        let mut reader = SnapshotFileReader::open(input, limits)?;
        let header = *reader.header();
        let mut entries = Vec::new();
        while let Some(entry) = reader.next_entry()? {
            entries.push(entry);
        }
        let computed = state_root(&entries);
        if computed != expected_state_root {
            return Err(StorageError::SnapshotRootMismatch {
                expected: expected_state_root,
                computed,
            });
        }
        if header.state_root != expected_state_root {
            return Err(StorageError::SnapshotRootMismatch {
                expected: expected_state_root,
                computed: header.state_root,
            });
        }
        self.install_base_state(
            ChainBase {
                height: header.height,
                block_hash: header.block_hash,
                state_root: expected_state_root,
            },
            entries,
        )
    }

    // ----- verification -----------------------------------------------------------------

    /// Check that metadata, block index, blocks, certificates and snapshots agree. An
    /// inconsistency is an error naming it and the remedy. Does not compute state roots
    /// (that needs the ledger's root function: see [`ChainStore::load_state_verified`]).
    pub fn verify_consistency(&self, depth: VerifyDepth) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            head: self.read_head()?,
            base: self.read_base()?,
            blocks_retained_from: self.read_retained_from()?,
            ..VerifyReport::default()
        };
        let intent = self.read_intent()?;
        match (report.head, report.base) {
            (None, None) => self.verify_empty(intent, &mut report)?,
            (Some(head), Some(base)) => {
                self.verify_chain(head, base, intent, depth, &mut report)?
            }
            (Some(_), None) => {
                return Err(inconsistent(Inconsistency::BadBase {
                    detail: "a committed head exists but no chain base record".into(),
                }));
            }
            (None, Some(_)) => {
                return Err(inconsistent(Inconsistency::BadBase {
                    detail: "a chain base record exists but no committed head".into(),
                }));
            }
        }
        if depth == VerifyDepth::Full {
            self.store.scan(
                Column::State,
                KeyRange::ALL,
                ScanOrder::Forward,
                &mut |key, value| {
                    frame::open(Column::State, key, value)?;
                    report.state_entries_checked += 1;
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            self.store.scan(
                Column::ConsensusWal,
                KeyRange::ALL,
                ScanOrder::Forward,
                &mut |key, value| {
                    records::decode_wal_key(key)?;
                    frame::open(Column::ConsensusWal, key, value)?;
                    report.wal_entries_checked += 1;
                    Ok(ControlFlow::Continue(()))
                },
            )?;
        }
        Ok(report)
    }

    fn verify_empty(&self, intent: Option<CommitIntent>, report: &mut VerifyReport) -> Result<()> {
        if let Some(intent) = intent {
            return Err(inconsistent(Inconsistency::InterruptedCommit {
                intent_height: intent.height,
                head: None,
            }));
        }
        for column in [Column::BlockIndex, Column::Blocks, Column::Certificates] {
            if let Some((key, _)) = self
                .store
                .first(column, KeyRange::ALL, ScanOrder::Forward)?
            {
                return Err(inconsistent(Inconsistency::DataAboveHead {
                    column,
                    height: records::decode_height_key(column, &key)?,
                    head: None,
                }));
            }
        }
        if self
            .store
            .first(Column::State, KeyRange::ALL, ScanOrder::Forward)?
            .is_some()
        {
            return Err(inconsistent(Inconsistency::BadBase {
                detail: "state entries exist but no chain base was installed".into(),
            }));
        }
        if let Some(info) = self.snapshots()?.first() {
            return Err(inconsistent(Inconsistency::DataAboveHead {
                column: Column::Snapshots,
                height: info.height,
                head: None,
            }));
        }
        report.incomplete_snapshots = self.orphan_chunk_heights()?;
        Ok(())
    }

    fn verify_chain(
        &self,
        head: CommittedHead,
        base: ChainBase,
        intent: Option<CommitIntent>,
        depth: VerifyDepth,
        report: &mut VerifyReport,
    ) -> Result<()> {
        match intent {
            Some(intent) if intent.height == head.height => {}
            Some(intent) => {
                return Err(inconsistent(Inconsistency::InterruptedCommit {
                    intent_height: intent.height,
                    head: Some(head.height),
                }));
            }
            None => {
                return Err(inconsistent(Inconsistency::BadBase {
                    detail: "the commit intent record is missing".into(),
                }));
            }
        }
        if base.height > head.height {
            return Err(inconsistent(Inconsistency::BadBase {
                detail: format!(
                    "the base height {} is above the head {}",
                    base.height, head.height
                ),
            }));
        }
        if base.height == head.height && base != head {
            return Err(inconsistent(Inconsistency::BadBase {
                detail: "no block above the base, yet the head differs from the base".into(),
            }));
        }
        let lowest = report
            .blocks_retained_from
            .max(base.height.saturating_add(1));
        self.verify_index(head, base, lowest, report)?;
        let blocks_from = match depth {
            VerifyDepth::Full => lowest,
            VerifyDepth::Quick => lowest.max(
                head.height
                    .saturating_add(1)
                    .saturating_sub(self.config.verify_recent_blocks),
            ),
        };
        self.verify_bodies(head, blocks_from, report)?;
        self.verify_snapshots(head, base, lowest, depth, report)?;
        Ok(())
    }

    /// Walk the whole block index: contiguous heights, parent links, head agreement.
    fn verify_index(
        &self,
        head: CommittedHead,
        base: ChainBase,
        lowest: u64,
        report: &mut VerifyReport,
    ) -> Result<()> {
        let start = records::height_key(lowest);
        let mut expected = lowest;
        let mut previous_hash =
            (lowest == base.height.saturating_add(1)).then_some(base.block_hash);
        let mut last: Option<BlockIndexEntry> = None;
        self.store.scan(
            Column::BlockIndex,
            KeyRange::from(&start),
            ScanOrder::Forward,
            &mut |key, value| {
                let height = records::decode_height_key(Column::BlockIndex, key)?;
                if height > head.height {
                    return Err(inconsistent(Inconsistency::DataAboveHead {
                        column: Column::BlockIndex,
                        height,
                        head: Some(head.height),
                    }));
                }
                if height != expected {
                    return Err(inconsistent(Inconsistency::MissingHeight {
                        height: expected,
                        column: Column::BlockIndex,
                    }));
                }
                let entry =
                    BlockIndexEntry::decode(key, frame::open(Column::BlockIndex, key, value)?)?;
                if let Some(below) = previous_hash
                    && entry.parent_hash != below
                {
                    return Err(inconsistent(Inconsistency::BrokenLink {
                        height,
                        parent: entry.parent_hash,
                        below,
                    }));
                }
                previous_hash = Some(entry.hash);
                expected = expected.saturating_add(1);
                last = Some(entry);
                report.index_entries_checked += 1;
                Ok(ControlFlow::Continue(()))
            },
        )?;
        if head.height < lowest {
            return Ok(());
        }
        let Some(last) = last else {
            return Err(inconsistent(Inconsistency::HeadBlockMissing {
                height: head.height,
            }));
        };
        if expected <= head.height {
            return Err(inconsistent(if expected == head.height {
                Inconsistency::HeadBlockMissing {
                    height: head.height,
                }
            } else {
                Inconsistency::MissingHeight {
                    height: expected,
                    column: Column::BlockIndex,
                }
            }));
        }
        if last.hash != head.block_hash {
            return Err(inconsistent(Inconsistency::HeadHashMismatch {
                height: head.height,
                head: head.block_hash,
                indexed: last.hash,
            }));
        }
        if last.state_root != head.state_root {
            return Err(inconsistent(Inconsistency::HeadStateRootMismatch {
                height: head.height,
                head: head.state_root,
                indexed: last.state_root,
            }));
        }
        Ok(())
    }

    /// Read blocks and certificates from `from` through the head against their index
    /// entries, and check nothing lies above the head.
    fn verify_bodies(
        &self,
        head: CommittedHead,
        from: u64,
        report: &mut VerifyReport,
    ) -> Result<()> {
        for column in [Column::Blocks, Column::Certificates] {
            if let Some((key, _)) = self
                .store
                .first(column, KeyRange::ALL, ScanOrder::Reverse)?
            {
                let height = records::decode_height_key(column, &key)?;
                if height > head.height {
                    return Err(inconsistent(Inconsistency::DataAboveHead {
                        column,
                        height,
                        head: Some(head.height),
                    }));
                }
            }
        }
        if from > head.height {
            return Ok(());
        }
        let start = records::height_key(from);
        // Collect the index entries first: a visitor must not call back into the store.
        let mut entries: Vec<BlockIndexEntry> = Vec::new();
        self.store.scan(
            Column::BlockIndex,
            KeyRange::from(&start),
            ScanOrder::Forward,
            &mut |key, value| {
                entries.push(BlockIndexEntry::decode(
                    key,
                    frame::open(Column::BlockIndex, key, value)?,
                )?);
                Ok(ControlFlow::Continue(()))
            },
        )?;
        // `verify_index` proved the index contiguous from below `from` through the head.
        for column in [Column::Blocks, Column::Certificates] {
            let mut expected = from;
            self.store.scan(
                column,
                KeyRange::from(&start),
                ScanOrder::Forward,
                &mut |key, value| {
                    let height = records::decode_height_key(column, key)?;
                    if height != expected {
                        return Err(inconsistent(Inconsistency::MissingHeight {
                            height: expected,
                            column,
                        }));
                    }
                    let body = frame::open(column, key, value)?;
                    let offset = usize::try_from(height - from).unwrap_or(usize::MAX);
                    let entry = entries.get(offset).ok_or_else(|| {
                        inconsistent(Inconsistency::MissingHeight {
                            height,
                            column: Column::BlockIndex,
                        })
                    })?;
                    let matches = match column {
                        Column::Blocks => {
                            report.blocks_checked += 1;
                            body.len() as u64 == entry.body_len
                                && records::body_crc(body) == entry.body_crc
                        }
                        _ => {
                            report.certificates_checked += 1;
                            body.len() as u64 == entry.certificate_len
                        }
                    };
                    if !matches {
                        return Err(inconsistent(Inconsistency::BlockBodyMismatch { height }));
                    }
                    expected = expected.saturating_add(1);
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            if expected <= head.height {
                return Err(inconsistent(Inconsistency::MissingHeight {
                    height: expected,
                    column,
                }));
            }
        }
        Ok(())
    }

    fn verify_snapshots(
        &self,
        head: CommittedHead,
        base: ChainBase,
        lowest: u64,
        depth: VerifyDepth,
        report: &mut VerifyReport,
    ) -> Result<()> {
        let snapshots = self.snapshots()?;
        for info in &snapshots {
            let damaged = |detail: String| {
                inconsistent(Inconsistency::SnapshotDamaged {
                    height: info.height,
                    detail,
                })
            };
            if info.height > head.height {
                return Err(inconsistent(Inconsistency::DataAboveHead {
                    column: Column::Snapshots,
                    height: info.height,
                    head: Some(head.height),
                }));
            }
            let committed_root = if info.height == base.height {
                Some(base.state_root)
            } else if info.height >= lowest {
                self.block_index(info.height)?.map(|entry| entry.state_root)
            } else {
                // Its block was pruned: nothing left to check the root against.
                None
            };
            if let Some(committed) = committed_root
                && committed != info.state_root
            {
                return Err(inconsistent(Inconsistency::SnapshotRootMismatch {
                    height: info.height,
                    snapshot: info.state_root,
                    committed,
                }));
            }
            match depth {
                VerifyDepth::Full => {
                    self.visit_snapshot(info.height, |_, _| Ok(()))?;
                }
                VerifyDepth::Quick => {
                    let start = records::snapshot_chunks_start(info.height);
                    let end = records::snapshot_chunks_end(info.height);
                    let mut expected = 0u32;
                    self.store.scan(
                        Column::Snapshots,
                        KeyRange::between(&start, &end),
                        ScanOrder::Forward,
                        &mut |key, _| {
                            match records::decode_snapshot_key(key)? {
                                SnapshotKey::Chunk(_, index) if index == expected => {}
                                _ => {
                                    return Err(damaged(format!("chunk {expected} is missing")));
                                }
                            }
                            expected = expected.saturating_add(1);
                            Ok(ControlFlow::Continue(()))
                        },
                    )?;
                    if expected != info.chunk_count {
                        return Err(damaged(format!(
                            "{expected} chunks found, the manifest says {}",
                            info.chunk_count
                        )));
                    }
                }
            }
        }
        report.snapshots = snapshots;
        report.incomplete_snapshots = self
            .orphan_chunk_heights()?
            .into_iter()
            .filter(|height| !report.snapshots.iter().any(|info| info.height == *height))
            .collect();
        Ok(())
    }

    /// Heights that have snapshot chunks but no manifest.
    fn orphan_chunk_heights(&self) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        let mut start = records::snapshot_chunks_start(0).to_vec();
        while let Some((key, _)) = self.store.first(
            Column::Snapshots,
            KeyRange::from(&start),
            ScanOrder::Forward,
        )? {
            let SnapshotKey::Chunk(height, _) = records::decode_snapshot_key(&key)? else {
                break;
            };
            if self.snapshot(height)?.is_none() {
                out.push(height);
            }
            match height.checked_add(1) {
                Some(_) => start = records::snapshot_chunks_end(height),
                None => break,
            }
        }
        Ok(out)
    }
}
