//! One conformance suite for every [`Store`] implementation, and the chain layer's
//! behaviour on each. `suite!` instantiates every case for one implementation.

use crate::chain::{BlockCommit, ChainStore, ChainStoreConfig, StateEntry, VerifyDepth};
use crate::column::Column;
use crate::error::{Inconsistency, StorageError};
use crate::faulty::FaultyStore;
use crate::kv_root::sorted_kv_root;
use crate::mem::MemStore;
use crate::rocks::{RocksConfig, RocksStore};
use crate::store::{Durability, KeyRange, ScanOrder, Store, WriteBatch};
use crate::synthetic::{SyntheticChain, SyntheticConfig, recover_state};
use dex_types::Hash;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

/// Opens (and reopens) one implementation's store. Only one handle is open at a time.
pub(crate) trait Harness {
    type S: Store + std::fmt::Debug;
    fn new() -> Self;
    fn open(&self) -> Self::S;
}

pub(crate) struct MemHarness(MemStore);

impl Harness for MemHarness {
    type S = MemStore;
    fn new() -> Self {
        MemHarness(MemStore::new())
    }
    fn open(&self) -> MemStore {
        self.0.clone()
    }
}

pub(crate) struct RocksHarness(tempfile::TempDir);

impl Harness for RocksHarness {
    type S = RocksStore;
    fn new() -> Self {
        RocksHarness(tempfile::tempdir().expect("temp dir"))
    }
    fn open(&self) -> RocksStore {
        let config = RocksConfig {
            write_buffer_bytes: 4 << 20,
            block_cache_bytes: 8 << 20,
            ..RocksConfig::default()
        };
        RocksStore::open(self.0.path(), &config).expect("open rocksdb")
    }
}

pub(crate) struct FaultyMemHarness(FaultyStore<MemStore>);

impl Harness for FaultyMemHarness {
    type S = FaultyStore<MemStore>;
    fn new() -> Self {
        FaultyMemHarness(FaultyStore::new(MemStore::new()))
    }
    fn open(&self) -> FaultyStore<MemStore> {
        self.0.clone()
    }
}

fn put(batch: &mut WriteBatch, column: Column, key: &[u8], value: &[u8]) {
    batch.put(column, key.to_vec(), value.to_vec());
}

fn all(store: &impl Store, column: Column, order: ScanOrder) -> Vec<(Vec<u8>, Vec<u8>)> {
    store
        .collect(column, KeyRange::ALL, order, usize::MAX)
        .unwrap()
}

fn keys(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    entries.iter().map(|(k, _)| k.clone()).collect()
}

// ----- store cases ----------------------------------------------------------------------

pub(crate) fn put_get_delete<H: Harness>() {
    let harness = H::new();
    let store = harness.open();
    assert_eq!(store.get(Column::State, b"a").unwrap(), None);
    let mut batch = WriteBatch::synced();
    put(&mut batch, Column::State, b"a", b"1");
    put(&mut batch, Column::State, b"empty", b"");
    store.write(batch).unwrap();
    assert_eq!(store.get(Column::State, b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        store.get(Column::State, b"empty").unwrap(),
        Some(Vec::new())
    );
    let mut batch = WriteBatch::synced();
    batch.delete(Column::State, b"a".to_vec());
    batch.delete(Column::State, b"never-there".to_vec());
    store.write(batch).unwrap();
    assert_eq!(store.get(Column::State, b"a").unwrap(), None);
}

pub(crate) fn columns_are_separate<H: Harness>() {
    let harness = H::new();
    let store = harness.open();
    let mut batch = WriteBatch::synced();
    for column in Column::ALL {
        put(&mut batch, column, b"k", column.name().as_bytes());
    }
    store.write(batch).unwrap();
    for column in Column::ALL {
        assert_eq!(
            store.get(column, b"k").unwrap(),
            Some(column.name().as_bytes().to_vec())
        );
        assert_eq!(all(&store, column, ScanOrder::Forward).len(), 1);
    }
}

pub(crate) fn later_ops_in_a_batch_win<H: Harness>() {
    let harness = H::new();
    let store = harness.open();
    let mut batch = WriteBatch::synced();
    put(&mut batch, Column::State, b"a", b"1");
    batch.delete(Column::State, b"a".to_vec());
    batch.delete(Column::State, b"b".to_vec());
    put(&mut batch, Column::State, b"b", b"2");
    put(&mut batch, Column::State, b"c", b"3");
    put(&mut batch, Column::State, b"c", b"4");
    store.write(batch).unwrap();
    assert_eq!(
        all(&store, Column::State, ScanOrder::Forward),
        vec![
            (b"b".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"4".to_vec())
        ]
    );
}

pub(crate) fn delete_range_is_half_open<H: Harness>() {
    let harness = H::new();
    let store = harness.open();
    let mut batch = WriteBatch::synced();
    for key in [b"a", b"b", b"c", b"d"] {
        put(&mut batch, Column::ConsensusWal, key, b"v");
    }
    store.write(batch).unwrap();
    let mut batch = WriteBatch::synced();
    batch.delete_range(Column::ConsensusWal, b"b".to_vec(), b"d".to_vec());
    // An inverted range removes nothing.
    batch.delete_range(Column::ConsensusWal, b"d".to_vec(), b"a".to_vec());
    store.write(batch).unwrap();
    assert_eq!(
        keys(&all(&store, Column::ConsensusWal, ScanOrder::Forward)),
        vec![b"a".to_vec(), b"d".to_vec()]
    );
}

pub(crate) fn scans_respect_bounds_and_order<H: Harness>() {
    let harness = H::new();
    let store = harness.open();
    let mut batch = WriteBatch::synced();
    for height in [1u64, 2, 3, 256, 1 << 40] {
        put(&mut batch, Column::Blocks, &height.to_be_bytes(), b"v");
    }
    put(
        &mut batch,
        Column::Certificates,
        &2u64.to_be_bytes(),
        b"other column",
    );
    store.write(batch).unwrap();
    let heights = |entries: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<u64> {
        entries
            .iter()
            .map(|(k, _)| u64::from_be_bytes(k[..].try_into().unwrap()))
            .collect()
    };
    let two = 2u64.to_be_bytes();
    let big = 256u64.to_be_bytes();
    let range = KeyRange::between(&two, &big);
    assert_eq!(
        heights(
            store
                .collect(Column::Blocks, range, ScanOrder::Forward, 10)
                .unwrap()
        ),
        vec![2, 3]
    );
    assert_eq!(
        heights(
            store
                .collect(Column::Blocks, range, ScanOrder::Reverse, 10)
                .unwrap()
        ),
        vec![3, 2]
    );
    assert_eq!(
        heights(all(&store, Column::Blocks, ScanOrder::Reverse)),
        vec![1 << 40, 256, 3, 2, 1]
    );
    assert_eq!(
        heights(
            store
                .collect(Column::Blocks, KeyRange::from(&big), ScanOrder::Forward, 10)
                .unwrap()
        ),
        vec![256, 1 << 40]
    );
    assert_eq!(
        heights(
            store
                .collect(
                    Column::Blocks,
                    KeyRange {
                        start: None,
                        end: Some(&two)
                    },
                    ScanOrder::Reverse,
                    10
                )
                .unwrap()
        ),
        vec![1]
    );
    assert_eq!(
        heights(
            store
                .collect(Column::Blocks, KeyRange::ALL, ScanOrder::Forward, 2)
                .unwrap()
        ),
        vec![1, 2]
    );
    assert!(
        store
            .collect(
                Column::Blocks,
                KeyRange::between(&big, &two),
                ScanOrder::Forward,
                10
            )
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .collect(Column::Blocks, KeyRange::ALL, ScanOrder::Forward, 0)
            .unwrap()
            .is_empty()
    );
    let (key, _) = store
        .first(Column::Blocks, KeyRange::ALL, ScanOrder::Reverse)
        .unwrap()
        .unwrap();
    assert_eq!(key, (1u64 << 40).to_be_bytes().to_vec());
    assert!(
        store
            .first(Column::Snapshots, KeyRange::ALL, ScanOrder::Forward)
            .unwrap()
            .is_none()
    );
}

pub(crate) fn scan_visitor_errors_propagate<H: Harness>() {
    let harness = H::new();
    let store = harness.open();
    let mut batch = WriteBatch::synced();
    put(&mut batch, Column::State, b"a", b"1");
    put(&mut batch, Column::State, b"b", b"2");
    store.write(batch).unwrap();
    let mut seen = 0;
    let result = store.scan(
        Column::State,
        KeyRange::ALL,
        ScanOrder::Forward,
        &mut |_, _| {
            seen += 1;
            Err(StorageError::NotInitialized)
        },
    );
    assert!(matches!(result, Err(StorageError::NotInitialized)));
    assert_eq!(seen, 1);
    let mut seen = 0;
    store
        .scan(
            Column::State,
            KeyRange::ALL,
            ScanOrder::Forward,
            &mut |_, _| {
                seen += 1;
                Ok(ControlFlow::Break(()))
            },
        )
        .unwrap();
    assert_eq!(seen, 1);
}

pub(crate) fn large_values_and_empty_batches<H: Harness>() {
    let harness = H::new();
    let store = harness.open();
    store.write(WriteBatch::synced()).unwrap();
    store.write(WriteBatch::buffered()).unwrap();
    let big: Vec<u8> = (0..(3usize << 20)).map(|i| (i % 251) as u8).collect();
    let mut batch = WriteBatch::synced();
    put(&mut batch, Column::Blocks, b"big", &big);
    store.write(batch).unwrap();
    assert_eq!(store.get(Column::Blocks, b"big").unwrap(), Some(big));
}

pub(crate) fn data_survives_reopen<H: Harness>() {
    let harness = H::new();
    {
        let store = harness.open();
        let mut batch = WriteBatch::synced();
        put(&mut batch, Column::Metadata, b"m", b"1");
        store.write(batch).unwrap();
        let mut batch = WriteBatch::buffered();
        put(&mut batch, Column::State, b"s", b"2");
        store.write(batch).unwrap();
    }
    let store = harness.open();
    assert_eq!(
        store.get(Column::Metadata, b"m").unwrap(),
        Some(b"1".to_vec())
    );
    // A buffered write survives a clean close (and a process crash on RocksDB).
    assert_eq!(store.get(Column::State, b"s").unwrap(), Some(b"2".to_vec()));
}

/// Random batches against a `BTreeMap` model; scans must agree after every batch.
pub(crate) fn matches_model<H: Harness>(seed: u64, batches: usize) {
    let harness = H::new();
    let store = harness.open();
    let mut rng = crate::synthetic::SplitMix64(seed);
    let mut model: BTreeMap<(Column, Vec<u8>), Vec<u8>> = BTreeMap::new();
    let columns = [Column::State, Column::ConsensusWal];
    for _ in 0..batches {
        let mut batch = WriteBatch::new(if rng.next_u64().is_multiple_of(2) {
            Durability::Synced
        } else {
            Durability::Buffered
        });
        for _ in 0..(1 + rng.next_u64() % 8) {
            let column = columns[(rng.next_u64() % 2) as usize];
            let key = vec![b'a' + (rng.next_u64() % 6) as u8; 1 + (rng.next_u64() % 2) as usize];
            match rng.next_u64() % 5 {
                0 => {
                    batch.delete(column, key.clone());
                    model.remove(&(column, key));
                }
                1 => {
                    let end = vec![b'a' + (rng.next_u64() % 7) as u8];
                    batch.delete_range(column, key.clone(), end.clone());
                    if key < end {
                        model.retain(|(c, k), _| !(*c == column && *k >= key && *k < end));
                    }
                }
                _ => {
                    let value = rng.next_u64().to_le_bytes().to_vec();
                    batch.put(column, key.clone(), value.clone());
                    model.insert((column, key), value);
                }
            }
        }
        store.write(batch).unwrap();
        for column in columns {
            let expected: Vec<(Vec<u8>, Vec<u8>)> = model
                .iter()
                .filter(|((c, _), _)| *c == column)
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(all(&store, column, ScanOrder::Forward), expected);
            let mut reversed = expected.clone();
            reversed.reverse();
            assert_eq!(all(&store, column, ScanOrder::Reverse), reversed);
        }
    }
}

// ----- chain cases ----------------------------------------------------------------------

fn small_config() -> ChainStoreConfig {
    ChainStoreConfig {
        snapshot_chunk_bytes: 512,
        snapshots_retained: 2,
        verify_recent_blocks: 4,
        ..ChainStoreConfig::default()
    }
}

/// `small_config` with the state column kept.
fn column_config() -> ChainStoreConfig {
    ChainStoreConfig {
        keep_state_column: true,
        ..small_config()
    }
}

fn genesis(chain: &ChainStore<impl Store>, config: SyntheticConfig) -> SyntheticChain {
    let (base, entries) = SyntheticChain::genesis(config, sorted_kv_root);
    chain.install_base_state(base, entries).unwrap();
    SyntheticChain::new(config, sorted_kv_root)
}

pub(crate) fn chain_commits_and_reopens<H: Harness>() {
    commits_and_reopens::<H>(small_config());
    commits_and_reopens::<H>(column_config());
}

fn commits_and_reopens<H: Harness>(store_config: ChainStoreConfig) {
    let harness = H::new();
    let config = SyntheticConfig::default();
    let mut generator;
    let mut blocks = Vec::new();
    {
        let chain = ChainStore::open(harness.open(), store_config.clone()).unwrap();
        assert!(chain.recovery().formatted);
        assert_eq!(chain.last_committed(), None);
        generator = genesis(&chain, config);
        for _ in 0..10 {
            let block = generator.next_block();
            let head = chain.commit_block(&block.commit()).unwrap();
            assert_eq!(head.height, block.height);
            blocks.push(block);
        }
    }
    let chain = ChainStore::open(harness.open(), store_config.clone()).unwrap();
    assert!(!chain.recovery().formatted);
    assert!(!chain.recovery().cleared_state_column);
    let head = chain.last_committed().unwrap();
    assert_eq!(head, generator.head());
    assert_eq!(chain.base().unwrap().height, 0);
    for block in &blocks {
        let stored = chain.committed_block(block.height).unwrap().unwrap();
        assert_eq!(stored.block, block.block);
        assert_eq!(stored.certificate, block.certificate);
        assert_eq!(stored.block_hash, block.block_hash);
        assert_eq!(chain.block(block.height).unwrap().unwrap(), block.block);
        assert_eq!(
            chain.certificate(block.height).unwrap().unwrap(),
            block.certificate
        );
    }
    assert_eq!(chain.block(11).unwrap(), None);
    let range = chain.blocks_range(3, 100, 4).unwrap();
    assert_eq!(
        range.iter().map(|b| b.height).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    assert_eq!(chain.blocks_range(9, 100, 100).unwrap().len(), 2);
    // Snapshot (the genesis base) plus replay is the state with or without the column.
    let recovered = recover_state(&chain, &config, sorted_kv_root).unwrap();
    assert_eq!(recovered.entries, generator.state_entries());
    assert_eq!(
        (recovered.snapshot_height, recovered.replayed_blocks),
        (0, 10)
    );
    let report = chain.verify_consistency(VerifyDepth::Full).unwrap();
    assert_eq!(report.blocks_checked, 10);
    assert_eq!(report.certificates_checked, 10);
    assert_eq!(report.index_entries_checked, 10);
    if store_config.keep_state_column {
        assert!(chain.state_column_current());
        let state = chain.load_state_verified(sorted_kv_root).unwrap();
        assert_eq!(state, generator.state_entries());
        assert_eq!(report.state_entries_checked, state.len() as u64);
    } else {
        assert!(!chain.state_column_current());
        assert_eq!(report.state_entries_checked, 0);
        assert!(matches!(
            chain.load_state_verified(sorted_kv_root),
            Err(StorageError::StateColumnUnavailable { kept: false })
        ));
        assert!(matches!(
            chain.state_value(b"anything"),
            Err(StorageError::StateColumnUnavailable { kept: false })
        ));
    }
}

pub(crate) fn chain_refuses_bad_commits<H: Harness>() {
    let harness = H::new();
    // The state changes are checked only where they are written: with the column kept.
    let chain = ChainStore::open(harness.open(), column_config()).unwrap();
    let config = SyntheticConfig::default();
    let mut generator = SyntheticChain::new(config, sorted_kv_root);
    let block = generator.next_block();
    assert!(matches!(
        chain.commit_block(&block.commit()),
        Err(StorageError::NotInitialized)
    ));
    let mut generator = genesis(&chain, config);
    let block = generator.next_block();
    let wrong_height = BlockCommit {
        height: 2,
        ..block.commit()
    };
    assert!(matches!(
        chain.commit_block(&wrong_height),
        Err(StorageError::NonContiguousHeight {
            expected: 1,
            got: 2
        })
    ));
    let wrong_parent = BlockCommit {
        parent_hash: Hash([9; 32]),
        ..block.commit()
    };
    assert!(matches!(
        chain.commit_block(&wrong_parent),
        Err(StorageError::ParentMismatch { .. })
    ));
    let unsorted = vec![(b"b".to_vec(), Some(b"1".to_vec())), (b"a".to_vec(), None)];
    let unsorted_commit = BlockCommit {
        state_changes: &unsorted,
        ..block.commit()
    };
    assert!(matches!(
        chain.commit_block(&unsorted_commit),
        Err(StorageError::UnsortedStateChanges { index: 1 })
    ));
    let empty_key = vec![(Vec::new(), None)];
    assert!(matches!(
        chain.commit_block(&BlockCommit {
            state_changes: &empty_key,
            ..block.commit()
        }),
        Err(StorageError::EmptyStateKey { index: 0 })
    ));
    let huge = vec![0u8; chain.config().certificate_bytes_max + 1];
    assert!(matches!(
        chain.commit_block(&BlockCommit {
            certificate: &huge,
            ..block.commit()
        }),
        Err(StorageError::TooLarge { .. })
    ));
    // None of the refused commits changed anything.
    assert_eq!(chain.last_committed().unwrap().height, 0);
    chain.commit_block(&block.commit()).unwrap();
    assert!(matches!(
        chain.install_base_state(generator.head(), Vec::new()),
        Err(StorageError::AlreadyInitialized { head: 1 })
    ));
}

pub(crate) fn chain_wal_appends_reads_and_prunes<H: Harness>() {
    let harness = H::new();
    let config = SyntheticConfig::default();
    let store_config = ChainStoreConfig {
        wal_heights_retained: 1,
        ..small_config()
    };
    let chain = ChainStore::open(harness.open(), store_config.clone()).unwrap();
    let mut generator = genesis(&chain, config);
    assert_eq!(chain.append_wal(1, b"prevote r0").unwrap(), 0);
    assert_eq!(chain.append_wal(1, b"precommit r0").unwrap(), 1);
    assert_eq!(chain.append_wal(2, b"early").unwrap(), 0);
    assert_eq!(
        chain.wal_entries(1).unwrap(),
        vec![b"prevote r0".to_vec(), b"precommit r0".to_vec()]
    );
    assert_eq!(
        chain.wal_entries_from(1, 2).unwrap(),
        vec![(1, b"prevote r0".to_vec()), (1, b"precommit r0".to_vec())]
    );
    assert_eq!(chain.wal_entries_from(0, 10).unwrap().len(), 3);
    // Committing height 1 with one retained height keeps height 1's entries...
    chain
        .commit_block(&generator.next_block().commit())
        .unwrap();
    assert_eq!(chain.wal_entries(1).unwrap().len(), 2);
    // ...and committing height 2 prunes them.
    chain
        .commit_block(&generator.next_block().commit())
        .unwrap();
    assert!(chain.wal_entries(1).unwrap().is_empty());
    assert_eq!(chain.wal_entries(2).unwrap(), vec![b"early".to_vec()]);
    drop(chain);
    let chain = ChainStore::open(harness.open(), store_config).unwrap();
    assert_eq!(chain.append_wal(2, b"late").unwrap(), 1);
    chain.prune_wal(3).unwrap();
    assert!(chain.wal_entries_from(0, 10).unwrap().is_empty());
    assert!(chain.append_wal(u64::MAX, b"last height").is_ok());
    assert_eq!(chain.wal_entries(u64::MAX).unwrap().len(), 1);
}

/// Commits prune the log from where the last pruning stopped; an entry appended below that
/// point (a late vote for a committed height) is still pruned by the next commit.
pub(crate) fn chain_wal_pruning_reaches_late_entries<H: Harness>() {
    let harness = H::new();
    let store_config = ChainStoreConfig {
        wal_heights_retained: 1,
        ..small_config()
    };
    let chain = ChainStore::open(harness.open(), store_config).unwrap();
    let mut generator = genesis(&chain, SyntheticConfig::default());
    for height in 1..=4u64 {
        chain.append_wal(height, b"vote").unwrap();
        chain
            .commit_block(&generator.next_block().commit())
            .unwrap();
    }
    // After committing 4 with one height retained, only height 4's entry is left.
    assert_eq!(
        chain.wal_entries_from(0, 10).unwrap(),
        vec![(4, b"vote".to_vec())]
    );
    chain.append_wal(2, b"late vote").unwrap();
    chain
        .commit_block(&generator.next_block().commit())
        .unwrap();
    assert!(chain.wal_entries_from(0, 10).unwrap().is_empty());
}

pub(crate) fn chain_snapshots_export_and_import<H: Harness>() {
    let harness = H::new();
    let config = SyntheticConfig::default();
    let chain = ChainStore::open(harness.open(), column_config()).unwrap();
    let mut generator = genesis(&chain, config);
    // The base install is the first snapshot.
    assert_eq!(chain.latest_snapshot().unwrap().unwrap().height, 0);
    for _ in 0..3 {
        chain
            .commit_block(&generator.next_block().commit())
            .unwrap();
    }
    let info = chain.snapshot_current_state().unwrap();
    assert_eq!(info.height, 3);
    assert!(info.chunk_count > 1, "small chunks force several: {info:?}");
    let (_, entries) = chain.snapshot_entries(3).unwrap();
    assert_eq!(entries, generator.state_entries());
    for _ in 0..2 {
        chain
            .commit_block(&generator.next_block().commit())
            .unwrap();
    }
    let info5 = chain
        .write_snapshot(5, generator.head().state_root, generator.state_entries())
        .unwrap();
    assert_eq!(info5.entry_count, generator.state_entries().len() as u64);
    // Two retained: the base snapshot at 0 was pruned.
    let heights: Vec<u64> = chain
        .snapshots()
        .unwrap()
        .iter()
        .map(|s| s.height)
        .collect();
    assert_eq!(heights, vec![3, 5]);
    assert!(matches!(
        chain.write_snapshot(5, Hash([1; 32]), generator.state_entries()),
        Err(StorageError::SnapshotRootDiffers { .. })
    ));
    assert!(matches!(
        chain.write_snapshot(6, generator.head().state_root, Vec::new()),
        Err(StorageError::UnknownHeight { height: 6 })
    ));
    chain.verify_consistency(VerifyDepth::Full).unwrap();

    let mut file = Vec::new();
    let header = chain.export_snapshot(5, &mut file).unwrap();
    assert_eq!(header.height, 5);
    assert!(matches!(
        chain.export_snapshot(4, Vec::new()),
        Err(StorageError::NoSnapshot { height: 4 })
    ));

    // Import into a fresh store of the same kind and continue the chain on it.
    let other = H::new();
    let imported = ChainStore::open(other.open(), column_config()).unwrap();
    assert!(matches!(
        imported.import_snapshot(&file[..], Default::default(), Hash([7; 32]), sorted_kv_root),
        Err(StorageError::SnapshotRootMismatch { .. })
    ));
    assert_eq!(imported.last_committed(), None);
    let head = imported
        .import_snapshot(
            &file[..],
            Default::default(),
            generator.head().state_root,
            sorted_kv_root,
        )
        .unwrap();
    assert_eq!(head, generator.head());
    assert_eq!(
        imported.load_state_verified(sorted_kv_root).unwrap(),
        generator.state_entries()
    );
    let next = generator.next_block();
    imported.commit_block(&next.commit()).unwrap();
    drop(imported);
    let reopened = ChainStore::open(other.open(), column_config()).unwrap();
    assert_eq!(reopened.last_committed().unwrap().height, 6);
    assert_eq!(reopened.base().unwrap().height, 5);
    reopened.verify_consistency(VerifyDepth::Full).unwrap();
    // Without the column, the imported base snapshot plus replay gives the same state.
    drop(reopened);
    let reopened = ChainStore::open(other.open(), small_config()).unwrap();
    assert!(reopened.recovery().cleared_state_column);
    let recovered = recover_state(&reopened, &config, sorted_kv_root).unwrap();
    assert_eq!(
        (recovered.snapshot_height, recovered.replayed_blocks),
        (5, 1)
    );
    assert_eq!(recovered.entries, generator.state_entries());
    assert!(matches!(
        reopened.import_snapshot(
            &file[..],
            Default::default(),
            generator.head().state_root,
            sorted_kv_root
        ),
        Err(StorageError::AlreadyInitialized { head: 6 })
    ));
}

pub(crate) fn chain_prunes_blocks_up_to_the_snapshot<H: Harness>() {
    let harness = H::new();
    let config = SyntheticConfig::default();
    let chain = ChainStore::open(harness.open(), small_config()).unwrap();
    let mut generator = genesis(&chain, config);
    for _ in 0..6 {
        chain
            .commit_block(&generator.next_block().commit())
            .unwrap();
    }
    // Newest snapshot is the base at 0: blocks from 1 are needed.
    assert!(matches!(
        chain.prune_blocks_below(3),
        Err(StorageError::PruneTooFar {
            below: 3,
            needed_from: 1
        })
    ));
    // Without the state column the snapshot comes from the caller's state.
    assert!(matches!(
        chain.snapshot_current_state(),
        Err(StorageError::StateColumnUnavailable { kept: false })
    ));
    let head = generator.head();
    chain
        .write_snapshot(head.height, head.state_root, generator.state_entries())
        .unwrap();
    chain.prune_blocks_below(6).unwrap();
    assert_eq!(chain.blocks_retained_from(), 6);
    assert_eq!(chain.block(5).unwrap(), None);
    assert!(chain.block(6).unwrap().is_some());
    chain
        .commit_block(&generator.next_block().commit())
        .unwrap();
    drop(chain);
    let chain = ChainStore::open(harness.open(), small_config()).unwrap();
    let report = chain.verify_consistency(VerifyDepth::Full).unwrap();
    assert_eq!(report.blocks_checked, 2);
    assert_eq!(chain.blocks_retained_from(), 6);
    let recovered = recover_state(&chain, &config, sorted_kv_root).unwrap();
    assert_eq!(
        (recovered.snapshot_height, recovered.replayed_blocks),
        (6, 1)
    );
    assert_eq!(recovered.entries, generator.state_entries());
}

pub(crate) fn chain_detects_a_flipped_bit<H: Harness>() {
    let harness = H::new();
    let config = SyntheticConfig::default();
    {
        let chain = ChainStore::open(harness.open(), small_config()).unwrap();
        let mut generator = genesis(&chain, config);
        for _ in 0..3 {
            chain
                .commit_block(&generator.next_block().commit())
                .unwrap();
        }
    }
    let store = harness.open();
    let key = 2u64.to_be_bytes();
    let mut value = store.get(Column::Blocks, &key).unwrap().unwrap();
    let middle = value.len() / 2;
    value[middle] ^= 0x10;
    let mut batch = WriteBatch::synced();
    batch.put(Column::Blocks, key.to_vec(), value);
    store.write(batch).unwrap();
    // Quick verification at open reads the newest blocks: it finds the damage...
    let err = ChainStore::open(store, small_config()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Corrupted {
                column: Column::Blocks,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("0000000000000002"), "{err}");
    // ...and when it reads fewer, the damaged block is still caught when it is read.
    let config = ChainStoreConfig {
        verify_recent_blocks: 1,
        ..small_config()
    };
    let chain = ChainStore::open(harness.open(), config).unwrap();
    assert!(matches!(
        chain.block(2),
        Err(StorageError::Corrupted {
            column: Column::Blocks,
            ..
        })
    ));
    assert!(chain.block(3).is_ok());
    assert!(chain.verify_consistency(VerifyDepth::Full).is_err());
}

pub(crate) fn chain_open_refuses_foreign_data<H: Harness>() {
    let harness = H::new();
    let store = harness.open();
    let mut batch = WriteBatch::synced();
    batch.put(Column::State, b"k".to_vec(), b"v".to_vec());
    store.write(batch).unwrap();
    let err = ChainStore::open(store, small_config()).unwrap_err();
    assert!(matches!(
        err,
        StorageError::Inconsistent {
            problem: Inconsistency::MissingFormatMarker
        }
    ));
}

/// Replaying stored blocks from a snapshot gives the same roots as the run that wrote them.
pub(crate) fn chain_replay_from_snapshot_matches<H: Harness>() {
    let harness = H::new();
    let config = SyntheticConfig::default();
    let chain = ChainStore::open(harness.open(), column_config()).unwrap();
    let mut generator = genesis(&chain, config);
    for height in 1..=8u64 {
        chain
            .commit_block(&generator.next_block().commit())
            .unwrap();
        if height == 4 {
            chain.snapshot_current_state().unwrap();
        }
    }
    let snapshot = chain.latest_snapshot().unwrap().unwrap();
    assert_eq!(snapshot.height, 4);
    let (_, entries) = chain.snapshot_entries(snapshot.height).unwrap();
    let mut state: BTreeMap<Vec<u8>, Vec<u8>> = entries.into_iter().collect();
    let head = chain.last_committed().unwrap();
    for block in chain
        .blocks_range(snapshot.height + 1, head.height, 1000)
        .unwrap()
    {
        crate::synthetic::apply_block(&mut state, &block.block, &config).unwrap();
        let entries: Vec<StateEntry> = state.clone().into_iter().collect();
        assert_eq!(sorted_kv_root(&entries), block.state_root);
    }
    let entries: Vec<StateEntry> = state.into_iter().collect();
    assert_eq!(entries, chain.state_entries().unwrap());
    let recovered = recover_state(&chain, &config, sorted_kv_root).unwrap();
    assert_eq!(
        (recovered.snapshot_height, recovered.replayed_blocks),
        (4, 4)
    );
    assert_eq!(recovered.entries, entries);
}

/// The state column follows its switch: cleared when switched off, unusable until
/// rebuilt when switched on, and a commit never writes into a stale column.
pub(crate) fn chain_state_column_switches<H: Harness>() {
    let harness = H::new();
    let config = SyntheticConfig::default();
    let mut generator;
    {
        let chain = ChainStore::open(harness.open(), column_config()).unwrap();
        generator = genesis(&chain, config);
        for _ in 0..3 {
            chain
                .commit_block(&generator.next_block().commit())
                .unwrap();
        }
        assert!(chain.state_column_current());
    }
    {
        let chain = ChainStore::open(harness.open(), small_config()).unwrap();
        assert!(chain.recovery().cleared_state_column);
        assert!(!chain.state_column_current());
        assert!(
            chain
                .store()
                .first(Column::State, KeyRange::ALL, ScanOrder::Forward)
                .unwrap()
                .is_none()
        );
        for _ in 0..2 {
            chain
                .commit_block(&generator.next_block().commit())
                .unwrap();
        }
        assert!(matches!(
            chain.rebuild_state_column(generator.state_entries()),
            Err(StorageError::StateColumnUnavailable { kept: false })
        ));
    }
    let chain = ChainStore::open(harness.open(), column_config()).unwrap();
    assert!(!chain.recovery().cleared_state_column);
    assert!(!chain.state_column_current());
    let block = generator.next_block();
    assert!(matches!(
        chain.commit_block(&block.commit()),
        Err(StorageError::StateColumnUnavailable { kept: true })
    ));
    assert!(matches!(
        chain.snapshot_current_state(),
        Err(StorageError::StateColumnUnavailable { kept: true })
    ));
    let recovered = recover_state(&chain, &config, sorted_kv_root).unwrap();
    assert_eq!(recovered.replayed_blocks, 5);
    let unsorted: Vec<StateEntry> = recovered.entries.iter().rev().cloned().collect();
    assert!(matches!(
        chain.rebuild_state_column(unsorted),
        Err(StorageError::UnsortedStateChanges { index: 1 })
    ));
    chain.rebuild_state_column(recovered.entries).unwrap();
    assert!(chain.state_column_current());
    chain.commit_block(&block.commit()).unwrap();
    assert_eq!(
        chain.load_state_verified(sorted_kv_root).unwrap(),
        generator.state_entries()
    );
    drop(chain);
    let chain = ChainStore::open(harness.open(), column_config()).unwrap();
    assert!(chain.state_column_current());
    chain.load_state_verified(sorted_kv_root).unwrap();
}

/// A format-1 store (state column always kept, no marker) opens and is upgraded in place.
pub(crate) fn chain_upgrades_format_1<H: Harness>() {
    let harness = H::new();
    let config = SyntheticConfig::default();
    let mut generator;
    {
        let chain = ChainStore::open(harness.open(), column_config()).unwrap();
        generator = genesis(&chain, config);
        chain
            .commit_block(&generator.next_block().commit())
            .unwrap();
    }
    // Rewrite the metadata as format 1 wrote it.
    let store = harness.open();
    let mut format_1 = b"dex-storage\0".to_vec();
    format_1.extend_from_slice(&1u32.to_le_bytes());
    let mut batch = WriteBatch::synced();
    batch.put(
        Column::Metadata,
        b"format".to_vec(),
        crate::frame::seal(Column::Metadata, b"format", &format_1),
    );
    batch.delete(Column::Metadata, b"state_column".to_vec());
    store.write(batch).unwrap();
    drop(store);
    let chain = ChainStore::open(harness.open(), column_config()).unwrap();
    assert_eq!(chain.recovery().upgraded_format_from, Some(1));
    assert!(chain.state_column_current());
    chain.load_state_verified(sorted_kv_root).unwrap();
    chain
        .commit_block(&generator.next_block().commit())
        .unwrap();
    drop(chain);
    let chain = ChainStore::open(harness.open(), column_config()).unwrap();
    assert_eq!(chain.recovery().upgraded_format_from, None);
    assert!(chain.state_column_current());
    chain.load_state_verified(sorted_kv_root).unwrap();
}

macro_rules! suite {
    ($module:ident, $harness:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn put_get_delete() {
                super::put_get_delete::<$harness>();
            }
            #[test]
            fn columns_are_separate() {
                super::columns_are_separate::<$harness>();
            }
            #[test]
            fn later_ops_in_a_batch_win() {
                super::later_ops_in_a_batch_win::<$harness>();
            }
            #[test]
            fn delete_range_is_half_open() {
                super::delete_range_is_half_open::<$harness>();
            }
            #[test]
            fn scans_respect_bounds_and_order() {
                super::scans_respect_bounds_and_order::<$harness>();
            }
            #[test]
            fn scan_visitor_errors_propagate() {
                super::scan_visitor_errors_propagate::<$harness>();
            }
            #[test]
            fn large_values_and_empty_batches() {
                super::large_values_and_empty_batches::<$harness>();
            }
            #[test]
            fn data_survives_reopen() {
                super::data_survives_reopen::<$harness>();
            }
            #[test]
            fn matches_model() {
                for seed in 0..8 {
                    super::matches_model::<$harness>(seed, 40);
                }
            }
            #[test]
            fn chain_commits_and_reopens() {
                super::chain_commits_and_reopens::<$harness>();
            }
            #[test]
            fn chain_refuses_bad_commits() {
                super::chain_refuses_bad_commits::<$harness>();
            }
            #[test]
            fn chain_wal_appends_reads_and_prunes() {
                super::chain_wal_appends_reads_and_prunes::<$harness>();
            }
            #[test]
            fn chain_wal_pruning_reaches_late_entries() {
                super::chain_wal_pruning_reaches_late_entries::<$harness>();
            }
            #[test]
            fn chain_snapshots_export_and_import() {
                super::chain_snapshots_export_and_import::<$harness>();
            }
            #[test]
            fn chain_prunes_blocks_up_to_the_snapshot() {
                super::chain_prunes_blocks_up_to_the_snapshot::<$harness>();
            }
            #[test]
            fn chain_detects_a_flipped_bit() {
                super::chain_detects_a_flipped_bit::<$harness>();
            }
            #[test]
            fn chain_open_refuses_foreign_data() {
                super::chain_open_refuses_foreign_data::<$harness>();
            }
            #[test]
            fn chain_replay_from_snapshot_matches() {
                super::chain_replay_from_snapshot_matches::<$harness>();
            }
            #[test]
            fn chain_state_column_switches() {
                super::chain_state_column_switches::<$harness>();
            }
            #[test]
            fn chain_upgrades_format_1() {
                super::chain_upgrades_format_1::<$harness>();
            }
        }
    };
}

suite!(mem, MemHarness);
suite!(rocks, RocksHarness);
suite!(faulty_mem, FaultyMemHarness);
