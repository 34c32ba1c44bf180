//! The narrow storage trait: one atomic write, point reads and ordered scans.

use crate::column::Column;
use crate::error::Result;
use std::ops::ControlFlow;
use std::sync::Arc;

/// Whether a write must be on stable storage before [`Store::write`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync before returning: the write survives a power loss. Commits and the consensus
    /// log use this.
    Synced,
    /// Return once the write is in the log buffer: it survives a process crash on RocksDB
    /// but may be lost on a power loss. A later synced write makes it durable too, because
    /// the log is sequential. Used for pruning and for snapshot chunks that a synced
    /// manifest seals.
    Buffered,
}

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Set `key` to `value`.
    Put {
        /// Column family.
        column: Column,
        /// Key.
        key: Vec<u8>,
        /// Value (already framed by the caller when it needs integrity checks).
        value: Vec<u8>,
    },
    /// Remove `key` (no error if absent).
    Delete {
        /// Column family.
        column: Column,
        /// Key.
        key: Vec<u8>,
    },
    /// Remove every key in `start..end` (half-open).
    DeleteRange {
        /// Column family.
        column: Column,
        /// First key removed.
        start: Vec<u8>,
        /// First key kept.
        end: Vec<u8>,
    },
}

impl WriteOp {
    /// The column the operation touches.
    pub fn column(&self) -> Column {
        match self {
            WriteOp::Put { column, .. }
            | WriteOp::Delete { column, .. }
            | WriteOp::DeleteRange { column, .. } => *column,
        }
    }

    /// Bytes of keys and values the operation carries (what the log must persist).
    pub fn payload_bytes(&self) -> usize {
        match self {
            WriteOp::Put { key, value, .. } => key.len().saturating_add(value.len()),
            WriteOp::Delete { key, .. } => key.len(),
            WriteOp::DeleteRange { start, end, .. } => start.len().saturating_add(end.len()),
        }
    }
}

/// An ordered list of operations applied all-or-nothing by [`Store::write`].
///
/// Later operations win over earlier ones on the same key, as in RocksDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
    durability: Durability,
    payload_bytes: usize,
}

impl WriteBatch {
    /// An empty batch that will be written with `durability`.
    pub fn new(durability: Durability) -> WriteBatch {
        WriteBatch {
            ops: Vec::new(),
            durability,
            payload_bytes: 0,
        }
    }

    /// An empty batch fsynced before the write returns.
    pub fn synced() -> WriteBatch {
        WriteBatch::new(Durability::Synced)
    }

    /// An empty batch that is not fsynced (see [`Durability::Buffered`]).
    pub fn buffered() -> WriteBatch {
        WriteBatch::new(Durability::Buffered)
    }

    /// Append a put.
    pub fn put(&mut self, column: Column, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.push(WriteOp::Put {
            column,
            key: key.into(),
            value: value.into(),
        });
    }

    /// Append a delete.
    pub fn delete(&mut self, column: Column, key: impl Into<Vec<u8>>) {
        self.push(WriteOp::Delete {
            column,
            key: key.into(),
        });
    }

    /// Append a range delete of `start..end`. An empty or inverted range removes nothing.
    pub fn delete_range(
        &mut self,
        column: Column,
        start: impl Into<Vec<u8>>,
        end: impl Into<Vec<u8>>,
    ) {
        self.push(WriteOp::DeleteRange {
            column,
            start: start.into(),
            end: end.into(),
        });
    }

    /// Append any operation.
    pub fn push(&mut self, op: WriteOp) {
        self.payload_bytes = self.payload_bytes.saturating_add(op.payload_bytes());
        self.ops.push(op);
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    /// Take the operations out.
    pub fn into_ops(self) -> Vec<WriteOp> {
        self.ops
    }

    /// How the batch must be persisted.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Change how the batch must be persisted.
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Bytes of keys and values in the batch (the logical bytes written).
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }
}

/// A half-open key range `start..end` inside one column; `None` leaves a side open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyRange<'a> {
    /// First key included (`None`: from the first key of the column).
    pub start: Option<&'a [u8]>,
    /// First key excluded (`None`: to the last key of the column).
    pub end: Option<&'a [u8]>,
}

impl<'a> KeyRange<'a> {
    /// Every key of the column.
    pub const ALL: KeyRange<'static> = KeyRange {
        start: None,
        end: None,
    };

    /// `start..end`.
    pub fn between(start: &'a [u8], end: &'a [u8]) -> KeyRange<'a> {
        KeyRange {
            start: Some(start),
            end: Some(end),
        }
    }

    /// `start..`.
    pub fn from(start: &'a [u8]) -> KeyRange<'a> {
        KeyRange {
            start: Some(start),
            end: None,
        }
    }

    /// True if `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.is_none_or(|start| key >= start) && self.end.is_none_or(|end| key < end)
    }
}

/// The direction of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOrder {
    /// Ascending keys.
    Forward,
    /// Descending keys.
    Reverse,
}

/// What a scan visitor sees and returns: the key, the value, and whether to go on.
pub type ScanVisitor<'v> = dyn FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>> + 'v;

/// A key-value store with one atomic write and ordered reads.
///
/// Implementations: [`crate::RocksStore`] (the node), [`crate::MemStore`] (tests and the
/// simulator; it models which writes survive a crash) and [`crate::FaultyStore`] (wraps
/// either and injects faults). All pass the same conformance suite.
///
/// Keys compare as byte strings; every scan visits keys in that order.
pub trait Store: Send + Sync {
    /// Apply every operation of `batch` or none of them. With [`Durability::Synced`] the
    /// batch, and every write before it, is on stable storage when this returns `Ok`.
    fn write(&self, batch: WriteBatch) -> Result<()>;

    /// The value at `key`, if any.
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Visit the keys of `range` in `order` until the visitor breaks or returns an error
    /// (which the scan returns). The scan sees one consistent view of the column. The
    /// visitor must not call back into the same store (an in-memory store is locked while
    /// it runs): collect what it needs and act after the scan.
    fn scan(
        &self,
        column: Column,
        range: KeyRange<'_>,
        order: ScanOrder,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<()>;

    /// The first (`Forward`) or last (`Reverse`) key-value of `range`.
    fn first(
        &self,
        column: Column,
        range: KeyRange<'_>,
        order: ScanOrder,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut found = None;
        self.scan(column, range, order, &mut |key, value| {
            found = Some((key.to_vec(), value.to_vec()));
            Ok(ControlFlow::Break(()))
        })?;
        Ok(found)
    }

    /// Up to `limit` key-values of `range` in `order`.
    fn collect(
        &self,
        column: Column,
        range: KeyRange<'_>,
        order: ScanOrder,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.scan(column, range, order, &mut |key, value| {
            out.push((key.to_vec(), value.to_vec()));
            Ok(if out.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })?;
        Ok(out)
    }
}

impl<T: Store + ?Sized> Store for Arc<T> {
    fn write(&self, batch: WriteBatch) -> Result<()> {
        (**self).write(batch)
    }

    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(column, key)
    }

    fn scan(
        &self,
        column: Column,
        range: KeyRange<'_>,
        order: ScanOrder,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<()> {
        (**self).scan(column, range, order, visit)
    }
}

/// A store that can model a machine crash: writes that were not synced are lost.
///
/// [`crate::MemStore`] implements it; a real [`crate::RocksStore`] is crashed by killing
/// its process (see dex-chain's `tests/crash.rs`).
pub trait CrashableStore: Store {
    /// Drop every write made since the last synced write, as a power loss would.
    fn crash(&self);
}

impl<T: CrashableStore + ?Sized> CrashableStore for Arc<T> {
    fn crash(&self) {
        (**self).crash()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_counts_payload_bytes() {
        let mut batch = WriteBatch::synced();
        batch.put(Column::State, b"ab".to_vec(), b"cde".to_vec());
        batch.delete(Column::State, b"f".to_vec());
        batch.delete_range(Column::ConsensusWal, b"gh".to_vec(), b"i".to_vec());
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.payload_bytes(), 5 + 1 + 3);
        assert_eq!(batch.durability(), Durability::Synced);
        assert_eq!(batch.ops()[2].column(), Column::ConsensusWal);
    }

    #[test]
    fn key_range_contains_is_half_open() {
        let range = KeyRange::between(b"b", b"d");
        assert!(!range.contains(b"a"));
        assert!(range.contains(b"b"));
        assert!(range.contains(b"c\xff"));
        assert!(!range.contains(b"d"));
        assert!(KeyRange::ALL.contains(b""));
        assert!(KeyRange::from(b"b").contains(b"zzz"));
    }
}
