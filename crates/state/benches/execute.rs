//! Block execution and signature verification.
//!
//! - `execute::apply/txs=10000`: matching and ledger only (no roots), one core.
//! - `execute::full/txs=10000`: the same plus the state root and the fills root.
//! - `execute::roots/txs=10000`: the roots alone, after an `apply` (the difference above).
//! - `execute::tx_ids/txs=10000`: hashing the transaction ids, which the node already has
//!   from signature checking and passes in (`execute_block_with_ids`), so not in the above.
//! - `sigverify::tx_verify_uncached_key/single`: one signature by the chain's rule
//!   (ZIP-215, small-order keys refused) as `SignedTransaction::verify` checks it: the
//!   signer's key decompressed and checked, the transaction hashed, one single check.
//! - `sigverify::cached_key/single`: the same with the key from a warmed
//!   `VerifyingKeyCache`.
//! - `sigverify::parallel/threads=2,txs=10000`: a block's signatures, single checks on both
//!   cores with keys from a warmed `VerifyingKeyCache`.
//!
//! The workload is seeded: 2,000 funded accounts, two markets whose books are seeded with
//! 2,000 resting orders, then one block of 10,000 transactions: ~45% passive limit orders,
//! 10% aggressive IOC, 2% market orders, 3% post-only, 30% cancels (by client id of resting
//! orders), 5% modifies, 5% transfers. Each iteration executes the block on a fresh clone of
//! the prepared state; the digest printed at the end (state root, fills, rejections) shows
//! a faster but wrong ledger.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dex_state::VerifyingKeyCache;
use dex_types::{Side, SignedTransaction, TimeInForce, TimestampMs};
use dex_workload::{place, sign, trader_keys};
use std::hint::black_box;

mod workload;
use workload::{BLOCK_TXS, CHAIN, MID, req, workload};

/// Signer keys of the signature benchmarks (see `dex_workload::trader_key`).
const TRADER_KEY_FAMILY: u8 = 0xA5;

fn bench_execute(c: &mut Criterion) {
    let w = workload();
    let time = TimestampMs(2);
    let mut group = c.benchmark_group("execute");
    group.throughput(Throughput::Elements(BLOCK_TXS as u64));
    group.sample_size(20);
    group.bench_function("apply/txs=10000", |b| {
        b.iter_batched(
            || w.prepared.clone(),
            |mut l| black_box(l.apply_block(w.parent, time, &w.block, &w.ids).unwrap()),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("full/txs=10000", |b| {
        b.iter_batched(
            || w.prepared.clone(),
            |mut l| {
                black_box(
                    l.execute_block_with_ids(w.parent, time, &w.block, &w.ids)
                        .unwrap(),
                )
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("roots/txs=10000", |b| {
        b.iter_batched(
            || {
                let mut l = w.prepared.clone();
                let r = l.apply_block(w.parent, time, &w.block, &w.ids).unwrap();
                (l, r)
            },
            |(mut l, mut r)| {
                l.finish_roots(&mut r);
                black_box(r.state_root)
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("tx_ids/txs=10000", |b| {
        b.iter(|| {
            let mut acc = 0u8;
            for t in &w.block {
                acc ^= t.hash().0[0];
            }
            black_box(acc)
        })
    });
    group.finish();

    let mut l = w.prepared.clone();
    let r = l.execute_block(w.parent, time, &w.block).unwrap();
    let rejected = r.outcomes.iter().filter(|o| o.result.is_err()).count();
    println!(
        "execute digest: state_root={} fills={} rejected={} events={}",
        r.state_root,
        r.fills().count(),
        rejected,
        r.events.len()
    );
}

fn bench_sigverify(c: &mut Criterion) {
    let keys = trader_keys(TRADER_KEY_FAMILY, 1_000);
    let txs: Vec<SignedTransaction> = (0..BLOCK_TXS)
        .map(|i| {
            let action = place(req(0, Side::Buy, MID, 1, TimeInForce::Gtc, i as u64));
            sign(&keys[i % keys.len()], CHAIN, i as u64, action)
        })
        .collect();
    let mut cache = VerifyingKeyCache::new(100_000);
    cache.warm(&txs);
    let mut group = c.benchmark_group("sigverify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tx_verify_uncached_key/single", |b| {
        b.iter(|| black_box(txs[0].verify()).unwrap())
    });
    group.bench_function("cached_key/single", |b| {
        b.iter(|| black_box(cache.verify_cached(&txs[0])).unwrap())
    });
    group.throughput(Throughput::Elements(BLOCK_TXS as u64));
    group.sample_size(10);
    group.bench_function("parallel/threads=2,txs=10000", |b| {
        b.iter(|| {
            let (left, right) = txs.split_at(txs.len() / 2);
            let cache = &cache;
            let ok = std::thread::scope(|s| {
                let h = s.spawn(move || right.iter().all(|t| cache.verify_cached(t).is_ok()));
                let mine = left.iter().all(|t| cache.verify_cached(t).is_ok());
                mine && h.join().unwrap()
            });
            assert!(ok);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_execute, bench_sigverify);
criterion_main!(benches);
