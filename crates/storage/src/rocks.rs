//! The RocksDB store: one column family per [`Column`], one RocksDB `WriteBatch` per
//! [`Store::write`].

use crate::column::Column;
use crate::error::{Result, StorageError};
use crate::store::{Durability, KeyRange, ScanOrder, ScanVisitor, Store, WriteBatch, WriteOp};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    DBRecoveryMode, Options, ReadOptions, WriteOptions,
};
use std::path::{Path, PathBuf};

/// Tuning of a [`RocksStore`]. The defaults suit a validator on a small machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RocksConfig {
    /// Memtable size per column family. Large enough that a 10,000-transaction block
    /// (a few MiB) does not force a flush on every commit.
    pub write_buffer_bytes: usize,
    /// Memtables per column family before writes stall.
    pub write_buffers_max: i32,
    /// Shared block cache for reads of all column families.
    pub block_cache_bytes: usize,
    /// Open SST files kept by RocksDB; bounded so a long-lived node stays under ulimit.
    pub open_files_max: i32,
    /// Background flush and compaction threads.
    pub background_jobs_max: i32,
    /// Total size of RocksDB's log files before it flushes the column families that pin
    /// the oldest one. Without it, a column that is rarely written (metadata, snapshots)
    /// would keep every log file alive.
    pub wal_bytes_max: u64,
}

impl Default for RocksConfig {
    fn default() -> RocksConfig {
        RocksConfig {
            write_buffer_bytes: 64 << 20,
            write_buffers_max: 3,
            block_cache_bytes: 128 << 20,
            open_files_max: 512,
            background_jobs_max: 2,
            wal_bytes_max: 512 << 20,
        }
    }
}

/// A [`Store`] on RocksDB.
///
/// Every [`Store::write`] is one RocksDB `WriteBatch`: RocksDB appends it to its log as one
/// checksummed record, so after a crash it is either wholly present or wholly absent.
/// [`Durability::Synced`] sets `WriteOptions::sync`, so the log is fsynced before the write
/// returns. Values are stored uncompressed (no compression library is built; block and
/// state bytes are mostly hashes and signatures, which do not compress).
pub struct RocksStore {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn backend(operation: &'static str, err: rocksdb::Error) -> StorageError {
    match err.kind() {
        rocksdb::ErrorKind::Corruption => StorageError::BackendCorruption {
            operation,
            message: err.into_string(),
        },
        _ => StorageError::Backend {
            operation,
            message: err.into_string(),
        },
    }
}

impl RocksStore {
    /// Open (or create) the database at `path` with every column family.
    pub fn open(path: impl AsRef<Path>, config: &RocksConfig) -> Result<RocksStore> {
        let path = path.as_ref().to_path_buf();
        let cache = Cache::new_lru_cache(config.block_cache_bytes);

        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        db_options.set_max_open_files(config.open_files_max);
        db_options.set_max_background_jobs(config.background_jobs_max);
        db_options.set_max_total_wal_size(config.wal_bytes_max);
        // Recover to the last complete log record and no further: a torn tail (the write
        // in flight when the power went) is dropped whole, and no record after a damaged
        // one is applied. Synced writes are complete records, so none is lost.
        db_options.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
        db_options.set_paranoid_checks(true);
        db_options.set_keep_log_file_num(4);
        // Write SST files out in steady 1 MiB steps rather than one large fsync at the end
        // of a flush, which would stall the next synced commit.
        db_options.set_bytes_per_sync(1 << 20);
        db_options.set_compression_type(DBCompressionType::None);

        let descriptors = Column::ALL.iter().map(|column| {
            ColumnFamilyDescriptor::new(column.name(), column_options(*column, config, &cache))
        });
        let db = DB::open_cf_descriptors(&db_options, &path, descriptors)
            .map_err(|err| backend("open the database", err))?;
        Ok(RocksStore { db, path })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flush every memtable to SST files (for measurements; commits never need it).
    pub fn flush(&self) -> Result<()> {
        for column in Column::ALL {
            self.db
                .flush_cf(self.cf(column))
                .map_err(|err| backend("flush", err))?;
        }
        Ok(())
    }

    fn cf(&self, column: Column) -> &ColumnFamily {
        self.db
            .cf_handle(column.name())
            .expect("bug: every column family is created at open")
    }
}

fn column_options(column: Column, config: &RocksConfig, cache: &Cache) -> Options {
    let mut options = Options::default();
    options.set_compression_type(DBCompressionType::None);
    options.set_write_buffer_size(config.write_buffer_bytes);
    options.set_max_write_buffer_number(config.write_buffers_max);
    options.set_level_compaction_dynamic_level_bytes(true);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    match column {
        // Point reads of account and order keys dominate: a bloom filter answers most
        // misses without touching a data block.
        Column::State => {
            table.set_bloom_filter(10.0, false);
            table.set_cache_index_and_filter_blocks(true);
        }
        // Large values read whole and in height order: bigger blocks, fewer index entries.
        Column::Blocks | Column::Certificates | Column::Snapshots => {
            table.set_block_size(64 << 10);
        }
        Column::BlockIndex | Column::ConsensusWal | Column::Metadata => {}
    }
    options.set_block_based_table_factory(&table);
    options
}

impl Store for RocksStore {
    fn write(&self, batch: WriteBatch) -> Result<()> {
        let durability = batch.durability();
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.into_ops() {
            match op {
                WriteOp::Put { column, key, value } => {
                    rocks_batch.put_cf(self.cf(column), key, value)
                }
                WriteOp::Delete { column, key } => rocks_batch.delete_cf(self.cf(column), key),
                WriteOp::DeleteRange { column, start, end } => {
                    // RocksDB rejects an inverted range; an inverted range removes nothing.
                    if start < end {
                        rocks_batch.delete_range_cf(self.cf(column), start, end)
                    }
                }
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(durability == Durability::Synced);
        self.db
            .write_opt(rocks_batch, &options)
            .map_err(|err| backend("write a batch", err))
    }

    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db
            .get_pinned_cf(self.cf(column), key)
            .map(|value| value.map(|pinned| pinned.to_vec()))
            .map_err(|err| backend("read a value", err))
    }

    fn scan(
        &self,
        column: Column,
        range: KeyRange<'_>,
        order: ScanOrder,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<()> {
        if let (Some(start), Some(end)) = (range.start, range.end)
            && start >= end
        {
            return Ok(());
        }
        let mut options = ReadOptions::default();
        if let Some(start) = range.start {
            options.set_iterate_lower_bound(start);
        }
        if let Some(end) = range.end {
            options.set_iterate_upper_bound(end);
        }
        // Bulk scans (state load, verification) should not evict the hot point-read set.
        options.fill_cache(false);
        // The iterator reads from an implicit snapshot taken when it is created, so the
        // scan sees one consistent view even while commits continue.
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(column), options);
        match order {
            ScanOrder::Forward => iter.seek_to_first(),
            ScanOrder::Reverse => iter.seek_to_last(),
        }
        while let Some((key, value)) = iter.item() {
            if visit(key, value)?.is_break() {
                return Ok(());
            }
            match order {
                ScanOrder::Forward => iter.next(),
                ScanOrder::Reverse => iter.prev(),
            }
        }
        iter.status().map_err(|err| backend("scan a column", err))
    }
}
