//! Storage benchmarks on RocksDB in a temporary directory:
//!
//! - `commit::synced_block/txs=N`: one synced `commit_block` of a block of N ~200-byte
//!   transactions without the state column (the default): block, certificate, index,
//!   metadata in one synced batch. Block generation is not timed. Throughput is in
//!   transactions.
//! - `commit::buffered_block/txs=N`: the same commit without the fsync, to split the cost
//!   between the disk flush and the rest.
//! - `commit::synced_block_state_column/txs=N`: the synced commit with the state column
//!   kept, each transaction changing two ~130-byte account entries: the cost of
//!   `ChainStoreConfig::keep_state_column`.
//! - `commit::synced_block_during_snapshot/txs=10000`: the synced commit while another
//!   thread writes snapshots of 100,000 accounts back to back (how much a snapshot taken
//!   off the commit path still slows commits).
//! - `snapshot::write/accounts=100000`: one `write_snapshot` of 100,000 accounts (chunks,
//!   synced manifest, pruning of the older snapshot): what a snapshot on the commit path
//!   would stall it by.
//! - `wal::append_synced/entry_bytes=200`: one synced consensus-log append (the vote path).
//! - `recover::open_snapshot_replay/blocks=B,accounts=A`: open RocksDB, open the chain
//!   (quick verification of the whole block index), load the newest snapshot and replay
//!   the blocks after it (one snapshot interval, the worst case) with the head's root
//!   checked. The replay applies synthetic blocks; replaying real blocks adds the ledger's
//!   execution time per block.
//!
//! Also printed (not timed): bytes written per transaction (log and table bytes) with and
//! without the state column, and a digest (head hash and state root) of every generated
//! workload. Set `DEX_STORAGE_BENCH_RECOVER_BLOCKS` / `..._ACCOUNTS` to scale the recovery
//! workload.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dex_storage::kv_root::sorted_kv_root;
use dex_storage::synthetic::{SyntheticChain, SyntheticConfig, recover_state};
use dex_storage::{ChainStore, ChainStoreConfig, Durability, RocksConfig, RocksStore};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SNAPSHOT_ACCOUNTS: u64 = 100_000;

fn dir_bytes(path: &Path, suffix: &str) -> u64 {
    std::fs::read_dir(path)
        .expect("read dir")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(suffix))
        .map(|entry| entry.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn commit_workload(txs_per_block: u32, genesis_accounts: u64) -> SyntheticConfig {
    SyntheticConfig {
        seed: 7,
        txs_per_block,
        tx_bytes: 200,
        accounts: 1_000_000,
        genesis_accounts,
        value_bytes: 96,
        certificate_bytes: 67 * 100,
        // Roots are the ledger's cost, not storage's: generation records placeholders.
        root_every_block: false,
        root_interval_blocks: u64::MAX,
    }
}

fn open_chain(path: &Path, config: ChainStoreConfig) -> ChainStore<RocksStore> {
    let store = RocksStore::open(path, &RocksConfig::default()).expect("open rocksdb");
    ChainStore::open(store, config).expect("open chain")
}

fn fresh_chain(
    path: &Path,
    workload: SyntheticConfig,
    commit_durability: Durability,
    keep_state_column: bool,
) -> (ChainStore<RocksStore>, SyntheticChain) {
    let chain = open_chain(
        path,
        ChainStoreConfig {
            commit_durability,
            keep_state_column,
            ..ChainStoreConfig::default()
        },
    );
    let (base, entries) = SyntheticChain::genesis(workload, sorted_kv_root);
    chain.install_base_state(base, entries).expect("genesis");
    (chain, SyntheticChain::new(workload, sorted_kv_root))
}

/// Log and table bytes per transaction for blocks of `txs_per_block`.
fn report_bytes_per_tx(txs_per_block: u32, keep_state_column: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (chain, mut generator) = fresh_chain(
        dir.path(),
        commit_workload(txs_per_block, 10_000),
        Durability::Synced,
        keep_state_column,
    );
    chain.store().flush().expect("flush");
    let log_before = dir_bytes(dir.path(), ".log");
    let table_before = dir_bytes(dir.path(), ".sst");
    let blocks = (200_000 / txs_per_block).max(4);
    for _ in 0..blocks {
        chain
            .commit_block(&generator.next_block().commit())
            .expect("commit");
    }
    let log_bytes = dir_bytes(dir.path(), ".log").saturating_sub(log_before);
    chain.store().flush().expect("flush");
    let table_bytes = dir_bytes(dir.path(), ".sst").saturating_sub(table_before);
    let txs = u64::from(blocks) * u64::from(txs_per_block);
    eprintln!(
        "bytes_per_tx/txs={txs_per_block},state_column={keep_state_column}: log {:.0} B/tx, \
         tables after flush {:.0} B/tx ({blocks} blocks, head {})",
        log_bytes as f64 / txs as f64,
        table_bytes as f64 / txs as f64,
        generator.head().block_hash,
    );
}

/// Time `commit_block` alone, block generation outside the clock.
fn timed_commits(
    chain: &ChainStore<RocksStore>,
    generator: &mut SyntheticChain,
    iters: u64,
) -> Duration {
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        let block = generator.next_block();
        let start = Instant::now();
        chain.commit_block(&block.commit()).expect("commit");
        timed += start.elapsed();
    }
    timed
}

fn bench_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    group.sample_size(20);
    for txs in [1_000u32, 10_000] {
        report_bytes_per_tx(txs, false);
        report_bytes_per_tx(txs, true);
        group.throughput(Throughput::Elements(u64::from(txs)));
        for (name, durability, keep_state_column) in [
            ("synced_block", Durability::Synced, false),
            ("buffered_block", Durability::Buffered, false),
            ("synced_block_state_column", Durability::Synced, true),
        ] {
            let dir = tempfile::tempdir().expect("temp dir");
            let (chain, mut generator) = fresh_chain(
                dir.path(),
                commit_workload(txs, 10_000),
                durability,
                keep_state_column,
            );
            group.bench_function(BenchmarkId::new(name, format!("txs={txs}")), |b| {
                b.iter_custom(|iters| timed_commits(&chain, &mut generator, iters))
            });
            eprintln!(
                "commit digest/{name}/txs={txs}: head {} at {}",
                generator.head().block_hash,
                generator.head().height
            );
        }
    }

    // Commits while another thread writes snapshots of 100,000 accounts back to back: the
    // snapshot shares the disk and the writer lock (per chunk), never the whole write.
    let txs = 10_000u32;
    let dir = tempfile::tempdir().expect("temp dir");
    let workload = commit_workload(txs, SNAPSHOT_ACCOUNTS);
    let (chain, mut generator) = fresh_chain(dir.path(), workload, Durability::Synced, false);
    let (base, entries) = SyntheticChain::genesis(workload, sorted_kv_root);
    let stop = AtomicBool::new(false);
    let snapshots_written = AtomicU64::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                chain
                    .write_snapshot(base.height, base.state_root, entries.iter().cloned())
                    .expect("snapshot");
                snapshots_written.fetch_add(1, Ordering::Relaxed);
            }
        });
        group.throughput(Throughput::Elements(u64::from(txs)));
        group.bench_function(
            BenchmarkId::new("synced_block_during_snapshot", format!("txs={txs}")),
            |b| b.iter_custom(|iters| timed_commits(&chain, &mut generator, iters)),
        );
        stop.store(true, Ordering::Relaxed);
    });
    eprintln!(
        "commit digest/synced_block_during_snapshot/txs={txs}: head {} at {}, {} snapshots \
         of {SNAPSHOT_ACCOUNTS} accounts written meanwhile",
        generator.head().block_hash,
        generator.head().height,
        snapshots_written.load(Ordering::Relaxed),
    );
    group.finish();
}

fn bench_snapshot(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let workload = commit_workload(1, SNAPSHOT_ACCOUNTS);
    let (chain, _) = fresh_chain(dir.path(), workload, Durability::Synced, false);
    let (base, entries) = SyntheticChain::genesis(workload, sorted_kv_root);
    let bytes: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(format!("write/accounts={SNAPSHOT_ACCOUNTS}"), |b| {
        b.iter_batched(
            || entries.clone(),
            |entries| {
                chain
                    .write_snapshot(base.height, base.state_root, entries)
                    .expect("snapshot")
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
    let info = chain.latest_snapshot().expect("read").expect("a snapshot");
    eprintln!(
        "snapshot digest: {} entries, {} chunks, {} payload bytes, content {}",
        info.entry_count, info.chunk_count, info.payload_bytes, info.content_digest
    );
}

fn bench_wal(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (chain, _) = fresh_chain(
        dir.path(),
        commit_workload(1, 10_000),
        Durability::Synced,
        false,
    );
    let entry = vec![0x5a; 200];
    let mut group = c.benchmark_group("wal");
    group.throughput(Throughput::Elements(1));
    let mut height = 1u64;
    let mut appended = 0u32;
    group.bench_function("append_synced/entry_bytes=200", |b| {
        b.iter(|| {
            if appended == 1_000 {
                height += 1;
                appended = 0;
            }
            chain.append_wal(height, &entry).expect("append");
            appended += 1;
        })
    });
    group.finish();
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn bench_recover(c: &mut Criterion) {
    let interval = ChainStoreConfig::default().snapshot_interval_blocks;
    let accounts = env_u64("DEX_STORAGE_BENCH_RECOVER_ACCOUNTS", 100_000);
    // A whole number of snapshot intervals, at least one.
    let blocks = env_u64("DEX_STORAGE_BENCH_RECOVER_BLOCKS", 100_000)
        .div_ceil(interval)
        .max(1)
        * interval;
    let workload = SyntheticConfig {
        seed: 11,
        txs_per_block: 20,
        tx_bytes: 200,
        accounts,
        genesis_accounts: accounts,
        value_bytes: 96,
        certificate_bytes: 67 * 100,
        root_every_block: false,
        // Roots at snapshot heights (and so at the head) only: rehashing 100,000 accounts
        // after each of 100,000 blocks would take hours.
        root_interval_blocks: interval,
    };
    let mut group = c.benchmark_group("recover");
    group.sample_size(10);
    // Generated on the first run of the benchmark only, so a filter that skips it skips
    // the minute and the gigabyte of generation too.
    let mut generated: Option<tempfile::TempDir> = None;
    group.bench_function(
        format!("open_snapshot_replay/blocks={blocks},accounts={accounts}"),
        |b| {
            let dir = generated.get_or_insert_with(|| generate_chain(workload, blocks));
            b.iter(|| {
                let chain = open_chain(dir.path(), ChainStoreConfig::default());
                let state = recover_state(&chain, &workload, sorted_kv_root).expect("state");
                assert_eq!(chain.last_committed().expect("head").height, blocks);
                assert_eq!(state.replayed_blocks, interval);
                state.entries.len()
            })
        },
    );
    group.finish();
}

/// A RocksDB chain of `blocks` blocks of `workload`, with a snapshot at every multiple of
/// the default snapshot interval below the head.
fn generate_chain(workload: SyntheticConfig, blocks: u64) -> tempfile::TempDir {
    let accounts = workload.genesis_accounts;
    let dir = tempfile::tempdir().expect("temp dir");
    let generation = Instant::now();
    {
        let chain = open_chain(
            dir.path(),
            ChainStoreConfig {
                // Bulk generation: buffered commits; every snapshot ends with a synced
                // write.
                commit_durability: Durability::Buffered,
                ..ChainStoreConfig::default()
            },
        );
        let (base, entries) = SyntheticChain::genesis(workload, sorted_kv_root);
        chain.install_base_state(base, entries).expect("genesis");
        let mut generator = SyntheticChain::new(workload, sorted_kv_root);
        for _ in 0..blocks {
            let block = generator.next_block();
            chain.commit_block(&block.commit()).expect("commit");
            // The last snapshot is one interval below the head: recovery replays a whole
            // interval, the most it replays when snapshots keep up.
            if chain.snapshot_due(block.height) && block.height < blocks {
                chain
                    .write_snapshot(block.height, block.state_root, generator.state_entries())
                    .expect("snapshot");
            }
        }
        eprintln!(
            "recover workload: {blocks} blocks, {accounts} accounts generated in {:.1} s; \
             head {} root {}; {} MiB on disk",
            generation.elapsed().as_secs_f64(),
            generator.head().block_hash,
            generator.head().state_root,
            (dir_bytes(dir.path(), ".sst") + dir_bytes(dir.path(), ".log")) >> 20,
        );
    }
    dir
}

criterion_group!(
    benches,
    bench_commit,
    bench_snapshot,
    bench_wal,
    bench_recover
);
criterion_main!(benches);
