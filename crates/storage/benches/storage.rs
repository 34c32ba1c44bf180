//! Storage benchmarks on RocksDB in a temporary directory:
//!
//! - `commit::synced_block/txs=N`: one synced `commit_block` of a block of N ~200-byte
//!   transactions, each changing two ~130-byte account entries (block generation is not
//!   timed). Throughput is in transactions.
//! - `commit::buffered_block/txs=N`: the same commit without the fsync, to split the cost
//!   between the disk flush and the rest (framing, batch building, memtable inserts).
//! - `wal::append_synced/entry_bytes=200`: one synced consensus-log append (the vote path).
//! - `recover::open_verify_load/blocks=B,accounts=A`: open RocksDB, open the chain (quick
//!   verification), load the state and check it against the committed root.
//!
//! Also printed (not timed): bytes written per transaction (log and table bytes), and a
//! digest (head hash and state root) of every generated workload. Set
//! `DEX_STORAGE_BENCH_RECOVER_BLOCKS` / `..._ACCOUNTS` to scale the recovery workload.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dex_storage::kv_root::sorted_kv_root;
use dex_storage::synthetic::{SyntheticChain, SyntheticConfig};
use dex_storage::{ChainStore, ChainStoreConfig, Durability, RocksConfig, RocksStore};
use std::path::Path;
use std::time::{Duration, Instant};

fn dir_bytes(path: &Path, suffix: &str) -> u64 {
    std::fs::read_dir(path)
        .expect("read dir")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(suffix))
        .map(|entry| entry.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn commit_workload(txs_per_block: u32) -> SyntheticConfig {
    SyntheticConfig {
        seed: 7,
        txs_per_block,
        tx_bytes: 200,
        accounts: 1_000_000,
        genesis_accounts: 10_000,
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

fn fresh_chain(path: &Path, workload: SyntheticConfig) -> (ChainStore<RocksStore>, SyntheticChain) {
    fresh_chain_with(path, workload, Durability::Synced)
}

fn fresh_chain_with(
    path: &Path,
    workload: SyntheticConfig,
    commit_durability: Durability,
) -> (ChainStore<RocksStore>, SyntheticChain) {
    let chain = open_chain(
        path,
        ChainStoreConfig {
            commit_durability,
            ..ChainStoreConfig::default()
        },
    );
    let (base, entries) = SyntheticChain::genesis(workload, sorted_kv_root);
    chain.install_base_state(base, entries).expect("genesis");
    (chain, SyntheticChain::new(workload, sorted_kv_root))
}

/// Log and table bytes per transaction for blocks of `txs_per_block`.
fn report_bytes_per_tx(txs_per_block: u32) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (chain, mut generator) = fresh_chain(dir.path(), commit_workload(txs_per_block));
    chain.store().flush().expect("flush");
    let log_before = dir_bytes(dir.path(), ".log");
    let table_before = dir_bytes(dir.path(), ".sst");
    let blocks = (200_000 / txs_per_block).max(4);
    let mut state_changes = 0usize;
    for _ in 0..blocks {
        let block = generator.next_block();
        state_changes += block.state_changes.len();
        chain.commit_block(&block.commit()).expect("commit");
    }
    let log_bytes = dir_bytes(dir.path(), ".log").saturating_sub(log_before);
    chain.store().flush().expect("flush");
    let table_bytes = dir_bytes(dir.path(), ".sst").saturating_sub(table_before);
    let txs = u64::from(blocks) * u64::from(txs_per_block);
    eprintln!(
        "bytes_per_tx/txs={txs_per_block}: log {:.0} B/tx, tables after flush {:.0} B/tx \
         ({blocks} blocks, {:.2} state changes/tx, head {} root {})",
        log_bytes as f64 / txs as f64,
        table_bytes as f64 / txs as f64,
        state_changes as f64 / txs as f64,
        generator.head().block_hash,
        generator.head().state_root,
    );
}

fn bench_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    group.sample_size(20);
    for txs in [1_000u32, 10_000] {
        report_bytes_per_tx(txs);
        group.throughput(Throughput::Elements(u64::from(txs)));
        for (name, durability) in [
            ("synced_block", Durability::Synced),
            ("buffered_block", Durability::Buffered),
        ] {
            let dir = tempfile::tempdir().expect("temp dir");
            let (chain, mut generator) =
                fresh_chain_with(dir.path(), commit_workload(txs), durability);
            group.bench_function(BenchmarkId::new(name, format!("txs={txs}")), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let block = generator.next_block();
                        let start = Instant::now();
                        chain.commit_block(&block.commit()).expect("commit");
                        timed += start.elapsed();
                    }
                    timed
                })
            });
            eprintln!(
                "commit digest/{name}/txs={txs}: head {} at {}",
                generator.head().block_hash,
                generator.head().height
            );
        }
    }
    group.finish();
}

fn bench_wal(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (chain, _) = fresh_chain(dir.path(), commit_workload(1));
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
    let blocks = env_u64("DEX_STORAGE_BENCH_RECOVER_BLOCKS", 100_000);
    let accounts = env_u64("DEX_STORAGE_BENCH_RECOVER_ACCOUNTS", 100_000);
    let workload = SyntheticConfig {
        seed: 11,
        txs_per_block: 20,
        tx_bytes: 200,
        accounts,
        genesis_accounts: accounts,
        value_bytes: 96,
        certificate_bytes: 67 * 100,
        root_every_block: false,
        // Only the head's root is computed (recovery checks the head's root; rehashing
        // 100,000 accounts after each of 100,000 blocks would take hours).
        root_interval_blocks: blocks,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let generation = Instant::now();
    {
        let chain = open_chain(
            dir.path(),
            ChainStoreConfig {
                // Bulk generation: buffered commits, one synced write at the end.
                commit_durability: Durability::Buffered,
                ..ChainStoreConfig::default()
            },
        );
        let (base, entries) = SyntheticChain::genesis(workload, sorted_kv_root);
        chain.install_base_state(base, entries).expect("genesis");
        let mut generator = SyntheticChain::new(workload, sorted_kv_root);
        for _ in 0..blocks {
            chain
                .commit_block(&generator.next_block().commit())
                .expect("commit");
        }
        chain.snapshot_current_state().expect("snapshot (synced)");
        eprintln!(
            "recover workload: {blocks} blocks, {accounts} accounts generated in {:.1} s; \
             head {} root {}; {} MiB on disk",
            generation.elapsed().as_secs_f64(),
            generator.head().block_hash,
            generator.head().state_root,
            (dir_bytes(dir.path(), ".sst") + dir_bytes(dir.path(), ".log")) >> 20,
        );
    }
    let mut group = c.benchmark_group("recover");
    group.sample_size(10);
    group.bench_function(
        format!("open_verify_load/blocks={blocks},accounts={accounts}"),
        |b| {
            b.iter(|| {
                let chain = open_chain(dir.path(), ChainStoreConfig::default());
                let state = chain.load_state_verified(sorted_kv_root).expect("state");
                assert_eq!(chain.last_committed().expect("head").height, blocks);
                state.len()
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench_commit, bench_wal, bench_recover);
criterion_main!(benches);
