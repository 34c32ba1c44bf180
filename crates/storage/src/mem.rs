//! The in-memory store: ordered maps, plus a model of what survives a crash.

use crate::column::Column;
use crate::error::Result;
use crate::store::{
    CrashableStore, Durability, KeyRange, ScanOrder, ScanVisitor, Store, WriteBatch, WriteOp,
};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

type ColumnMap = BTreeMap<Vec<u8>, Vec<u8>>;

/// The previous value of a key that an unsynced write changed.
#[derive(Debug)]
struct Undo {
    column: Column,
    key: Vec<u8>,
    previous: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
struct MemInner {
    columns: [ColumnMap; Column::ALL.len()],
    /// Undo records of every buffered write since the last synced one, oldest first.
    /// A synced write clears it (RocksDB's log is sequential, so syncing it makes every
    /// earlier write durable too); a crash replays it backwards.
    unsynced: Vec<Undo>,
    /// Synced writes so far (each one an fsync on a real disk).
    synced_writes: u64,
}

/// An in-memory [`Store`] on `BTreeMap`s, for tests and the simulator.
///
/// It models durability the way a RocksDB node sees it after a power loss: a
/// [`Durability::Synced`] write makes itself and every earlier write durable;
/// [`CrashableStore::crash`] drops every write since the last synced one. Clones share the
/// same data, so the simulator can keep a handle as "the disk" while a node that crashed is
/// dropped and a new one is opened on the same handle.
///
/// Scan visitors run while the store is locked: a visitor must not call back into the same
/// store.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    inner: Arc<Mutex<MemInner>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemInner> {
        // The maps are only changed by `apply`, which runs no foreign code, so a panic in a
        // visitor elsewhere cannot leave them half-updated.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of keys in `column`.
    pub fn key_count(&self, column: Column) -> usize {
        self.lock().columns[column.index()].len()
    }

    /// Bytes of keys and values held in all columns.
    pub fn payload_bytes(&self) -> usize {
        self.lock()
            .columns
            .iter()
            .flat_map(|map| map.iter())
            .map(|(k, v)| k.len().saturating_add(v.len()))
            .fold(0usize, usize::saturating_add)
    }

    /// Synced writes applied so far: what a real disk would have fsynced.
    pub fn synced_writes(&self) -> u64 {
        self.lock().synced_writes
    }

    /// Number of writes-worth of undo records that a crash would roll back.
    pub fn unsynced_changes(&self) -> usize {
        self.lock().unsynced.len()
    }
}

impl MemInner {
    fn set(&mut self, column: Column, key: Vec<u8>, value: Option<Vec<u8>>, keep_undo: bool) {
        let map = &mut self.columns[column.index()];
        let previous = match value {
            Some(value) => map.insert(key.clone(), value),
            None => map.remove(&key),
        };
        if keep_undo {
            self.unsynced.push(Undo {
                column,
                key,
                previous,
            });
        }
    }

    fn apply(&mut self, batch: WriteBatch) {
        let keep_undo = batch.durability() == Durability::Buffered;
        for op in batch.into_ops() {
            match op {
                WriteOp::Put { column, key, value } => {
                    self.set(column, key, Some(value), keep_undo)
                }
                WriteOp::Delete { column, key } => self.set(column, key, None, keep_undo),
                WriteOp::DeleteRange { column, start, end } => {
                    if start >= end {
                        continue;
                    }
                    let doomed: Vec<Vec<u8>> = self.columns[column.index()]
                        .range::<[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in doomed {
                        self.set(column, key, None, keep_undo);
                    }
                }
            }
        }
        if !keep_undo {
            self.unsynced.clear();
            self.synced_writes += 1;
        }
    }
}

impl Store for MemStore {
    fn write(&self, batch: WriteBatch) -> Result<()> {
        self.lock().apply(batch);
        Ok(())
    }

    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().columns[column.index()].get(key).cloned())
    }

    fn scan(
        &self,
        column: Column,
        range: KeyRange<'_>,
        order: ScanOrder,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<()> {
        let inner = self.lock();
        let map = &inner.columns[column.index()];
        // BTreeMap::range panics on an inverted range; an inverted range is empty.
        if let (Some(start), Some(end)) = (range.start, range.end)
            && start >= end
        {
            return Ok(());
        }
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
            range.start.map_or(Bound::Unbounded, Bound::Included),
            range.end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        let entries = map.range::<[u8], _>(bounds);
        match order {
            ScanOrder::Forward => {
                for (key, value) in entries {
                    if visit(key, value)?.is_break() {
                        break;
                    }
                }
            }
            ScanOrder::Reverse => {
                for (key, value) in entries.rev() {
                    if visit(key, value)?.is_break() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

impl CrashableStore for MemStore {
    fn crash(&self) {
        let mut inner = self.lock();
        let undo = std::mem::take(&mut inner.unsynced);
        for record in undo.into_iter().rev() {
            let map = &mut inner.columns[record.column.index()];
            match record.previous {
                Some(value) => map.insert(record.key, value),
                None => map.remove(&record.key),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// After a crash the store holds exactly what the last synced write left.
        #[test]
        fn crash_restores_the_last_synced_state(
            writes in proptest::collection::vec(
                (any::<bool>(), proptest::collection::vec((0u8..6, proptest::option::of(any::<u8>())), 1..5)),
                0..30,
            )
        ) {
            let store = MemStore::new();
            let mut visible: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut durable = visible.clone();
            for (synced, ops) in writes {
                let mut batch = WriteBatch::new(if synced { Durability::Synced } else { Durability::Buffered });
                for (key, value) in ops {
                    match value {
                        Some(value) => {
                            batch.put(Column::State, vec![key], vec![value]);
                            visible.insert(vec![key], vec![value]);
                        }
                        None => {
                            batch.delete(Column::State, vec![key]);
                            visible.remove(&vec![key]);
                        }
                    }
                }
                store.write(batch).unwrap();
                if synced {
                    durable = visible.clone();
                }
            }
            let read = |store: &MemStore| -> BTreeMap<Vec<u8>, Vec<u8>> {
                store
                    .collect(Column::State, KeyRange::ALL, ScanOrder::Forward, usize::MAX)
                    .unwrap()
                    .into_iter()
                    .collect()
            };
            prop_assert_eq!(read(&store), visible);
            store.crash();
            prop_assert_eq!(read(&store), durable);
        }
    }

    fn value(store: &MemStore, key: &[u8]) -> Option<Vec<u8>> {
        store.get(Column::State, key).unwrap()
    }

    #[test]
    fn crash_drops_only_unsynced_writes() {
        let store = MemStore::new();
        let mut batch = WriteBatch::synced();
        batch.put(Column::State, b"a".to_vec(), b"1".to_vec());
        store.write(batch).unwrap();

        let mut batch = WriteBatch::buffered();
        batch.put(Column::State, b"a".to_vec(), b"2".to_vec());
        batch.put(Column::State, b"b".to_vec(), b"x".to_vec());
        store.write(batch).unwrap();
        let mut batch = WriteBatch::buffered();
        batch.delete_range(Column::State, b"a".to_vec(), b"c".to_vec());
        store.write(batch).unwrap();
        assert_eq!(value(&store, b"a"), None);
        assert!(store.unsynced_changes() > 0);
        assert_eq!(store.synced_writes(), 1, "buffered writes are not counted");

        store.crash();
        assert_eq!(value(&store, b"a"), Some(b"1".to_vec()));
        assert_eq!(value(&store, b"b"), None);
        assert_eq!(store.unsynced_changes(), 0);
    }

    #[test]
    fn a_synced_write_makes_earlier_buffered_writes_durable() {
        let store = MemStore::new();
        let mut batch = WriteBatch::buffered();
        batch.put(Column::State, b"a".to_vec(), b"1".to_vec());
        store.write(batch).unwrap();
        let mut batch = WriteBatch::synced();
        batch.put(Column::Metadata, b"m".to_vec(), b"2".to_vec());
        store.write(batch).unwrap();
        store.crash();
        assert_eq!(value(&store, b"a"), Some(b"1".to_vec()));
    }

    #[test]
    fn clones_share_the_disk() {
        let disk = MemStore::new();
        let node = disk.clone();
        let mut batch = WriteBatch::synced();
        batch.put(Column::Blocks, b"k".to_vec(), b"v".to_vec());
        node.write(batch).unwrap();
        drop(node);
        assert_eq!(disk.key_count(Column::Blocks), 1);
        assert_eq!(disk.payload_bytes(), 2);
    }
}
