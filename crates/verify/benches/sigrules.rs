//! The signature rule's cost: ZIP-215 (the chain's rule: `ed25519-zebra`, small-order keys
//! refused) single and batch, and `TxVerifier` as the node runs it, against
//! `verify_strict` (the rule before ADR 0004, kept as the historical reference), on the
//! same 4,096 signed transactions from 1,024 accounts (orders on two markets). The figures
//! back docs/adr/0003 and docs/adr/0004.
//!
//! - `sigrules::verify_strict/threads=1`: ed25519-dalek's `verify_strict` alone, keys
//!   decompressed and signing messages hashed beforehand (reference only).
//! - `sigrules::zip215_single/threads=1`: the rule's single check (`SignerKey::verify`),
//!   keys checked and messages hashed beforehand: the raw single rate of one core.
//! - `sigrules::tx_verify/threads=1`: `SignedTransaction::verify` as the chain calls it
//!   without a cache: key check, transaction hash, single check.
//! - `sigrules::zip215_batch/threads=T,batch=B`: ZIP-215 batches of `B` on `T` threads,
//!   messages hashed beforehand, coefficients from ChaCha20 seeded per batch: the raw batch
//!   rate, and the sweep that chose `CHUNK_TXS_MAX`.
//! - `sigrules::verify_batch/threads=T[,cache=off]`: `TxVerifier::verify_batch` (hashing,
//!   key checks from a warm cache or without one, batches of at most `CHUNK_TXS_MAX`).
//! - `sigrules_small::{inline_single,inline_batch,pool_batch,verify_batch}/txs=N`: small
//!   inputs, each call after 2 ms of idleness (as at a moderate arrival rate, where the
//!   pool's threads have gone to sleep): single checks on the calling thread, one batch on
//!   the calling thread, batches on a two-thread pool, and what `verify_batch` does. It
//!   chose `INLINE_TXS_MAX`.
//!
//! Every routine's accepted count is checked against the number of transactions, so a
//! faster but wrong verification cannot pass. After the groups, the ratios that matter are
//! measured again in interleaved rounds and their medians printed, so that load from other
//! work on a shared machine hits both sides of each ratio alike.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dex_types::{
    AccountId, ChainId, MarketId, Side, SignedTransaction, SignerKey, TimeInForce, VerifyingKey,
};
use dex_verify::{CHUNK_TXS_MAX, INLINE_TXS_MAX, TxVerifier};
use dex_workload::{SplitMix64, cancel_client_order, limit, place, sign, trader_keys};
use ed25519_zebra::{Signature as ZebraSignature, VerificationKeyBytes, batch};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, SeedableRng};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

const TXS: usize = 4_096;
const ACCOUNTS: u64 = 1_024;

/// Trader keys of this workload (see `dex_workload::trader_key`).
const TRADER_KEY_FAMILY: u8 = 0x3c;

/// Limit orders (70%) and cancels by client id (30%) on two markets, from a seeded
/// generator, so every run signs the same transactions.
fn transactions() -> Vec<SignedTransaction> {
    let keys = trader_keys(TRADER_KEY_FAMILY, ACCOUNTS);
    let mut nonces = vec![0u64; keys.len()];
    let mut rng = SplitMix64::new(11);
    (0..TXS)
        .map(|_| {
            let index = rng.below(ACCOUNTS) as usize;
            nonces[index] += 1;
            let nonce = nonces[index];
            let market = MarketId(rng.below(2) as u32);
            let action = if rng.below(10) < 7 {
                let side = rng.side();
                let price = match side {
                    Side::Buy => 9_990,
                    Side::Sell => 10_010,
                } - rng.below(20);
                place(limit(
                    market,
                    side,
                    price,
                    1 + rng.below(50),
                    TimeInForce::Gtc,
                    nonce,
                ))
            } else {
                cancel_client_order(nonce / 2 + 1)
            };
            sign(&keys[index], ChainId(1), nonce, action)
        })
        .collect()
}

/// What each verification sees: key bytes, the 32-byte signing message, the signature.
struct Prepared {
    key_bytes: [u8; 32],
    strict_key: VerifyingKey,
    signer_key: SignerKey,
    message: [u8; 32],
    signature: [u8; 64],
}

fn prepare(txs: &[SignedTransaction]) -> Vec<Prepared> {
    txs.iter()
        .map(|tx| {
            let key_bytes = tx.tx.signer.0;
            Prepared {
                key_bytes,
                strict_key: AccountId(key_bytes).verifying_key().expect("a real key"),
                signer_key: AccountId(key_bytes).signer_key().expect("a real key"),
                message: *tx.tx.signing_message().as_bytes(),
                signature: tx.signature,
            }
        })
        .collect()
}

/// One ZIP-215 batch over prepared items, coefficients as `TxVerifier` draws them.
fn zip215_batch(items: &[Prepared]) -> usize {
    let mut verifier = batch::Verifier::new();
    for item in items {
        verifier.queue((
            VerificationKeyBytes::from(item.key_bytes),
            ZebraSignature::from_bytes(&item.signature),
            &item.message,
        ));
    }
    let rng = ChaCha20Rng::from_rng(OsRng).expect("the operating system's random source");
    match verifier.verify(rng) {
        Ok(()) => items.len(),
        // A failed batch is where the verifier falls back to single checks; on this
        // all-valid input it never happens (the count checks catch it).
        Err(_) => 0,
    }
}

/// One ZIP-215 batch over transactions: hashing included, keys from the transactions.
fn zip215_batch_of_txs(txs: &[SignedTransaction]) -> usize {
    let messages: Vec<_> = txs.iter().map(|tx| tx.tx.signing_message()).collect();
    let mut verifier = batch::Verifier::new();
    for (tx, message) in txs.iter().zip(&messages) {
        verifier.queue((
            VerificationKeyBytes::from(tx.tx.signer.0),
            ZebraSignature::from_bytes(&tx.signature),
            message.as_bytes(),
        ));
    }
    let rng = ChaCha20Rng::from_rng(OsRng).expect("the operating system's random source");
    if verifier.verify(rng).is_ok() {
        txs.len()
    } else {
        0
    }
}

/// Rounds of the interleaved ratio measurement.
const RATIO_ROUNDS: usize = 7;

fn seconds(run: impl FnOnce()) -> f64 {
    let start = Instant::now();
    run();
    start.elapsed().as_secs_f64()
}

fn bench_sigrules(c: &mut Criterion) {
    let txs = transactions();
    let prepared = prepare(&txs);
    let two_threads = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("threads");
    let verifier_1 = TxVerifier::new(1, 4 * ACCOUNTS as usize);
    let verifier_2 = TxVerifier::new(2, 4 * ACCOUNTS as usize);
    let verifier_2_uncached = TxVerifier::new(2, 0);
    for verifier in [&verifier_1, &verifier_2] {
        assert!(verifier.verify_batch(&txs).iter().all(Result::is_ok));
    }

    let mut group = c.benchmark_group("sigrules");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10);

    let strict_count = || {
        prepared
            .iter()
            .filter(|p| {
                p.strict_key
                    .verify_strict(
                        &p.message,
                        &ed25519_dalek::Signature::from_bytes(&p.signature),
                    )
                    .is_ok()
            })
            .count()
    };
    assert_eq!(strict_count(), TXS);
    group.bench_function("verify_strict/threads=1", |b| {
        b.iter(|| black_box(strict_count()))
    });

    let single_count = || {
        prepared
            .iter()
            .filter(|p| p.signer_key.verify(&p.message, &p.signature).is_ok())
            .count()
    };
    assert_eq!(single_count(), TXS);
    group.bench_function("zip215_single/threads=1", |b| {
        b.iter(|| black_box(single_count()))
    });

    let tx_count = || txs.iter().filter(|tx| tx.verify().is_ok()).count();
    assert_eq!(tx_count(), TXS);
    group.bench_function("tx_verify/threads=1", |b| b.iter(|| black_box(tx_count())));

    for batch_size in [16, 64, 128, 256, 512, 1024] {
        let sequential = || prepared.chunks(batch_size).map(zip215_batch).sum::<usize>();
        assert_eq!(sequential(), TXS);
        group.bench_function(format!("zip215_batch/threads=1,batch={batch_size}"), |b| {
            b.iter(|| black_box(sequential()))
        });
    }
    for batch_size in [256, 512] {
        let parallel = || {
            two_threads.install(|| {
                prepared
                    .par_chunks(batch_size)
                    .map(zip215_batch)
                    .sum::<usize>()
            })
        };
        assert_eq!(parallel(), TXS);
        group.bench_function(format!("zip215_batch/threads=2,batch={batch_size}"), |b| {
            b.iter(|| black_box(parallel()))
        });
    }

    let accepted = |verifier: &TxVerifier| {
        verifier
            .verify_batch(&txs)
            .iter()
            .filter(|r| r.is_ok())
            .count()
    };
    for (name, verifier) in [
        ("verify_batch/threads=1", &verifier_1),
        ("verify_batch/threads=2", &verifier_2),
        ("verify_batch/threads=2,cache=off", &verifier_2_uncached),
    ] {
        assert_eq!(accepted(verifier), TXS);
        group.bench_function(name, |b| b.iter(|| black_box(accepted(verifier))));
    }
    group.finish();

    // Small inputs after idleness: what a node sees at a moderate arrival rate.
    let mut small = c.benchmark_group("sigrules_small");
    small.sample_size(10);
    let idle = Duration::from_millis(2);
    let after_idle = |run: &dyn Fn() -> usize, n: usize, iters: u64| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            std::thread::sleep(idle);
            let start = Instant::now();
            assert_eq!(black_box(run()), n);
            total += start.elapsed();
        }
        total
    };
    for n in [2usize, 4, 8, 16, 32] {
        let some = &txs[..n];
        small.throughput(Throughput::Elements(n as u64));
        let inline_single = || {
            some.iter()
                .filter(|tx| verifier_2.verify_one(tx).is_ok())
                .count()
        };
        let inline_batch = || zip215_batch_of_txs(some);
        let pool_batch = || {
            two_threads.install(|| {
                some.par_chunks(n.div_ceil(2))
                    .map(zip215_batch_of_txs)
                    .sum::<usize>()
            })
        };
        let verify_batch = || {
            verifier_2
                .verify_batch(some)
                .iter()
                .filter(|r| r.is_ok())
                .count()
        };
        let routines: [(&str, &dyn Fn() -> usize); 4] = [
            ("inline_single", &inline_single),
            ("inline_batch", &inline_batch),
            ("pool_batch", &pool_batch),
            ("verify_batch", &verify_batch),
        ];
        for (name, run) in routines {
            small.bench_function(format!("{name}/txs={n}"), |b| {
                b.iter_custom(|iters| after_idle(run, n, iters))
            });
        }
    }
    small.finish();

    // Other work on a shared machine comes and goes between criterion's groups; the
    // ratios that decide the rule are also measured round by round, back to back.
    let mut rounds: Vec<[f64; 5]> = (0..RATIO_ROUNDS)
        .map(|_| {
            let strict = seconds(|| assert_eq!(strict_count(), TXS));
            let single = seconds(|| assert_eq!(single_count(), TXS));
            let batch_one = seconds(|| assert_eq!(accepted(&verifier_1), TXS));
            let batch_two = seconds(|| assert_eq!(accepted(&verifier_2), TXS));
            let strict_two = seconds(|| {
                let count = two_threads.install(|| {
                    prepared
                        .par_iter()
                        .filter(|p| {
                            p.strict_key
                                .verify_strict(
                                    &p.message,
                                    &ed25519_dalek::Signature::from_bytes(&p.signature),
                                )
                                .is_ok()
                        })
                        .count()
                });
                assert_eq!(count, TXS);
            });
            [strict, single, batch_one, batch_two, strict_two]
        })
        .collect();
    let median = |rounds: &mut Vec<[f64; 5]>, ratio: fn(&[f64; 5]) -> f64| {
        rounds.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
        ratio(&rounds[rounds.len() / 2])
    };
    println!(
        "median of {RATIO_ROUNDS} interleaved rounds: verify_batch (chunks of at most \
         {CHUNK_TXS_MAX}) / verify_strict, one thread each {:.2}x; two threads each {:.2}x; \
         zip215_single / verify_strict {:.2}x; verify_batch two threads / one thread {:.2}x",
        median(&mut rounds, |r| r[0] / r[2]),
        median(&mut rounds, |r| r[4] / r[3]),
        median(&mut rounds, |r| r[0] / r[1]),
        median(&mut rounds, |r| r[2] / r[3]),
    );
    println!(
        "digest: {TXS} transactions from {ACCOUNTS} accounts, all accepted by every routine; \
         inline below {INLINE_TXS_MAX}; first id {}",
        txs[0].hash()
    );
}

criterion_group!(benches, bench_sigrules);
criterion_main!(benches);
