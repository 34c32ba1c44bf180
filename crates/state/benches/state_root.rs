//! `state_root::*`: the cost of a block's state-root update, for the ADR's comparison of the
//! ledger's own indexed Merkle tree with a Jellyfish Merkle tree (`jmt` 0.12), both hashing
//! with BLAKE3 and both fed the same seeded workload: a state of `size` leaves of 96-byte
//! records, then blocks that each rewrite `updates` leaves chosen at random.
//!
//! Each benchmark prints the final root of a fixed run so a wrong but fast tree is visible.
//!
//! A benchmark is not the pure library: it times only the root update (not the workload
//! generation or jmt's pruning), which needs the clock.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dex_state::tree::IndexedMerkleTree;
use dex_types::{Domain, Hash};
use jmt::mock::MockTreeStore;
use jmt::{JellyfishMerkleTree, KeyHash, SimpleHasher};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// BLAKE3 behind jmt's hasher trait, so that both trees pay for the same hash function.
struct Blake3Hasher(blake3::Hasher);

impl SimpleHasher for Blake3Hasher {
    fn new() -> Self {
        Blake3Hasher(blake3::Hasher::new())
    }
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finalize(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

/// A seeded generator (SplitMix64): the workload is identical on every run.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn record(index: u64, version: u64) -> Vec<u8> {
    let mut v = vec![0u8; 96];
    v[..8].copy_from_slice(&index.to_le_bytes());
    v[8..16].copy_from_slice(&version.to_le_bytes());
    v
}

fn key_hash(index: u64) -> KeyHash {
    KeyHash(*blake3::hash(&index.to_le_bytes()).as_bytes())
}

fn leaf(value: &[u8]) -> Hash {
    Hash::of(Domain::StateLeaf, &[value])
}

fn block_updates(rng: &mut Seeded, size: u64, updates: usize) -> Vec<u64> {
    (0..updates).map(|_| rng.next() % size).collect()
}

fn bench_state_root(c: &mut Criterion) {
    let mut group = c.benchmark_group("state_root");
    group.sample_size(10);
    for &(size, updates) in &[
        (100_000u64, 1_000usize),
        (100_000, 10_000),
        (1_000_000, 10_000),
    ] {
        let param = format!("size={size},updates={updates}");

        // The ledger's tree: leaf hashes at dense indices, dirty-path commit.
        let mut tree = IndexedMerkleTree::new();
        for i in 0..size {
            tree.set(i, leaf(&record(i, 0)));
        }
        tree.commit();
        let mut rng = Seeded(7);
        let mut version = 0u64;
        group.bench_function(BenchmarkId::new("indexed", &param), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    version += 1;
                    let keys = block_updates(&mut rng, size, updates);
                    let start = Instant::now();
                    for &k in &keys {
                        tree.set(k, leaf(&record(k, version)));
                    }
                    black_box(tree.commit());
                    total += start.elapsed();
                }
                total
            })
        });

        // jmt: the same records, keyed by the hash of the index, with the node batch written
        // to its in-memory store (it must be, for the next version to read it). Stale nodes
        // are purged outside the timed part so memory stays bounded.
        if size <= 100_000 {
            let store = MockTreeStore::new(false);
            let jmt = JellyfishMerkleTree::<_, Blake3Hasher>::new(&store);
            let (_, batch) = jmt
                .put_value_set((0..size).map(|i| (key_hash(i), Some(record(i, 0)))), 0)
                .expect("jmt genesis");
            store.write_tree_update_batch(batch).expect("jmt write");
            let mut rng = Seeded(7);
            let mut version = 0u64;
            group.bench_function(BenchmarkId::new("jmt", &param), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        version += 1;
                        let mut keys = block_updates(&mut rng, size, updates);
                        // jmt rejects a key twice in one set; the indexed tree takes it.
                        keys.sort_unstable();
                        keys.dedup();
                        let start = Instant::now();
                        let (root, batch) = jmt
                            .put_value_set(
                                keys.iter()
                                    .map(|&k| (key_hash(k), Some(record(k, version)))),
                                version,
                            )
                            .expect("jmt update");
                        store.write_tree_update_batch(batch).expect("jmt write");
                        total += start.elapsed();
                        black_box(root);
                        store.purge_stale_nodes(version).expect("jmt purge");
                    }
                    total
                })
            });
        }
    }
    group.finish();

    // Digest of a fixed run: same workload, same root every time.
    let mut tree = IndexedMerkleTree::new();
    let mut rng = Seeded(11);
    for v in 0..5 {
        for k in block_updates(&mut rng, 10_000, 1_000) {
            tree.set(k, leaf(&record(k, v)));
        }
        tree.commit();
    }
    println!("state_root digest: {}", tree.root());
}

criterion_group!(benches, bench_state_root);
criterion_main!(benches);
