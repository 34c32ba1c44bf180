//! The node's chain store: RocksDB, with every synced write timed.
//!
//! A synced write (a commit, or the consensus log before a vote leaves) waits for `fsync`,
//! on the consensus thread, and every later step of the chain waits behind it. A disk that
//! stalls therefore shows as a latency spike with no work to explain it. [`TimedStore`]
//! counts synced writes and their time for `/metrics`, and logs any that takes
//! [`SLOW_SYNC`] or more, so an operator (or a load run's logs) can tell a slow disk from a
//! slow step.

use dex_storage::{
    Column, Durability, KeyRange, Result, RocksStore, ScanOrder, ScanVisitor, Store, WriteBatch,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A synced write at least this long is logged.
pub const SLOW_SYNC: Duration = Duration::from_millis(50);

/// Synced writes so far, for `/metrics`.
#[derive(Debug, Default)]
pub struct SyncTimings {
    /// Synced writes.
    pub writes: AtomicU64,
    /// Their total time, microseconds.
    pub total_us: AtomicU64,
    /// Those that took [`SLOW_SYNC`] or more.
    pub slow: AtomicU64,
    /// The longest one, microseconds.
    pub max_us: AtomicU64,
}

impl SyncTimings {
    fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        if took >= SLOW_SYNC {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// RocksDB with synced writes timed. See the module docs.
#[derive(Debug)]
pub struct TimedStore {
    inner: RocksStore,
    timings: Arc<SyncTimings>,
}

impl TimedStore {
    /// Time the synced writes of `inner` into `timings`.
    pub fn new(inner: RocksStore, timings: Arc<SyncTimings>) -> TimedStore {
        TimedStore { inner, timings }
    }
}

impl Store for TimedStore {
    fn write(&self, batch: WriteBatch) -> Result<()> {
        if batch.durability() != Durability::Synced {
            return self.inner.write(batch);
        }
        let (ops, bytes) = (batch.len(), batch.payload_bytes());
        let started = Instant::now();
        let result = self.inner.write(batch);
        let took = started.elapsed();
        self.timings.record(took);
        if took >= SLOW_SYNC {
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                ops,
                bytes,
                "slow synced write"
            );
        }
        result
    }

    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(column, key)
    }

    fn scan(
        &self,
        column: Column,
        range: KeyRange<'_>,
        order: ScanOrder,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<()> {
        self.inner.scan(column, range, order, visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_storage::RocksConfig;

    #[test]
    fn synced_writes_are_counted_and_buffered_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let rocks = RocksStore::open(dir.path(), &RocksConfig::default()).unwrap();
        let timings = Arc::new(SyncTimings::default());
        let store = TimedStore::new(rocks, timings.clone());
        let mut synced = WriteBatch::synced();
        synced.put(Column::Metadata, b"a".to_vec(), b"1".to_vec());
        store.write(synced).unwrap();
        let mut buffered = WriteBatch::buffered();
        buffered.put(Column::Metadata, b"b".to_vec(), b"2".to_vec());
        store.write(buffered).unwrap();
        assert_eq!(timings.writes.load(Ordering::Relaxed), 1);
        let total = timings.total_us.load(Ordering::Relaxed);
        assert_eq!(timings.max_us.load(Ordering::Relaxed), total);
        assert_eq!(
            store.get(Column::Metadata, b"a").unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(
            store.get(Column::Metadata, b"b").unwrap(),
            Some(b"2".to_vec())
        );
    }

    #[test]
    fn a_slow_write_is_counted_as_slow() {
        let timings = SyncTimings::default();
        timings.record(Duration::from_millis(1));
        timings.record(SLOW_SYNC);
        assert_eq!(timings.writes.load(Ordering::Relaxed), 2);
        assert_eq!(timings.slow.load(Ordering::Relaxed), 1);
        assert_eq!(
            timings.max_us.load(Ordering::Relaxed),
            SLOW_SYNC.as_micros() as u64
        );
        assert_eq!(timings.total_us.load(Ordering::Relaxed), 51_000);
    }
}
