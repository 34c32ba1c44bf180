//! What it costs to execute a block on a copy of the committed ledger, as a validator does
//! for every proposal (it keeps the committed state until the block is decided):
//!
//! - `ledger_clone::clone_drop/accounts=N,orders=M`: copy the ledger and drop the copy,
//!   with nothing executed in between.
//! - `ledger_clone::execute_on_copy/accounts=N,txs=T`: copy the ledger, execute a block of
//!   `T` transactions (roots included) on the copy, drop the copy: the validator's whole
//!   cost of one proposal apart from signatures.
//!
//! The states are the seeded workload of `benches/execute.rs` at three sizes: 2,000
//! accounts with 2,000 resting-order placements (blocks of 10,000); 100,000 accounts with
//! 4,000 placements (blocks of 100); and 100,000 accounts with 60,000 placements (blocks of
//! 200), about the depth the devnet's books reach after a minute at full load. Each
//! benchmark prints a digest of its block's result so a faster but wrong ledger shows.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dex_types::TimestampMs;
use std::hint::black_box;

mod workload;
use workload::{Workload, workload_sized};

fn digest(name: &str, w: &Workload) {
    let mut l = w.prepared.clone();
    let r = l
        .execute_block_with_ids(w.parent, TimestampMs(2), &w.block, &w.ids)
        .unwrap();
    let rejected = r.outcomes.iter().filter(|o| o.result.is_err()).count();
    println!(
        "{name} digest: state_root={} fills={} rejected={} events={}",
        r.state_root,
        r.fills().count(),
        rejected,
        r.events.len()
    );
}

fn bench_ledger_clone(c: &mut Criterion) {
    let sizes = [
        (2_000u64, 2_000usize, 10_000usize),
        (100_000, 4_000, 100),
        (100_000, 60_000, 200),
    ];
    let mut group = c.benchmark_group("ledger_clone");
    group.sample_size(20);
    for (accounts, seeded, txs) in sizes {
        let w = workload_sized(accounts, seeded, txs);
        let orders = w.prepared.open_orders().len();
        group.bench_function(
            BenchmarkId::new("clone_drop", format!("accounts={accounts},orders={orders}")),
            |b| b.iter(|| drop(black_box(w.prepared.clone()))),
        );
        group.bench_function(
            BenchmarkId::new("execute_on_copy", format!("accounts={accounts},txs={txs}")),
            |b| {
                b.iter(|| {
                    let mut copy = w.prepared.clone();
                    let r = copy
                        .execute_block_with_ids(w.parent, TimestampMs(2), &w.block, &w.ids)
                        .unwrap();
                    black_box(r.state_root);
                    drop(copy);
                })
            },
        );
        digest(&format!("ledger_clone accounts={accounts},txs={txs}"), &w);
    }
    group.finish();
}

criterion_group!(benches, bench_ledger_clone);
criterion_main!(benches);
