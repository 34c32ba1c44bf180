//! The signature rule's cost: `verify_strict` (the chain's rule) against ZIP-215 single and
//! batch verification (`ed25519-zebra`), on the same 4,096 signed transactions from 1,024
//! accounts (orders on two markets). The figures back docs/adr/0003.
//!
//! - `sigrules::verify_strict/threads=1`: `VerifyingKey::verify_strict` alone, keys
//!   decompressed and signing messages hashed beforehand: the raw rate of one core.
//! - `sigrules::tx_verify/threads=1`: `SignedTransaction::verify`, as the chain calls it
//!   without a cache: key decompression, transaction hash, `verify_strict`.
//! - `sigrules::verify_batch/threads=2`: `TxVerifier::verify_batch` with a warm key cache.
//! - `sigrules::zip215_single/threads=1`: ZIP-215 (cofactored) single verification.
//! - `sigrules::zip215_batch/threads=T,batch=B`: ZIP-215 batch verification of chunks of
//!   `B` on `T` threads, hashing included (what a node would run on all-valid blocks).
//!
//! Every routine's accepted count is checked against the number of transactions, so a
//! faster but wrong verification cannot pass. After the group, the ratios between the
//! rules are measured again in interleaved rounds and their medians printed, so that load
//! from other work on a shared machine hits both sides of each ratio alike.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dex_types::{
    AccountId, Action, BatchLeg, CancelTarget, ChainId, ClientOrderId, Keypair, MarketId,
    OrderBatch, OrderRequest, OrderType, PriceTicks, SelfTradePrevention, Side, SignedTransaction,
    SizeLots, TimeInForce, TimestampMs, Transaction, VerifyingKey,
};
use dex_verify::TxVerifier;
use ed25519_dalek::Signature;
use ed25519_zebra::{Signature as ZebraSignature, VerificationKey, VerificationKeyBytes, batch};
use rand_core::OsRng;
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Instant;

const TXS: usize = 4_096;
const ACCOUNTS: u64 = 1_024;

/// A tiny seeded generator (splitmix64), so every run signs the same transactions.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

fn trader(index: u64) -> Keypair {
    let mut seed = [0x3c; 32];
    seed[..8].copy_from_slice(&index.to_le_bytes());
    Keypair::from_seed(seed)
}

/// Limit orders (70%) and cancels by client id (30%) on two markets.
fn transactions() -> Vec<SignedTransaction> {
    let keys: Vec<Keypair> = (0..ACCOUNTS).map(trader).collect();
    let mut nonces = vec![0u64; keys.len()];
    let mut rng = SplitMix(11);
    (0..TXS)
        .map(|_| {
            let index = rng.below(ACCOUNTS) as usize;
            nonces[index] += 1;
            let nonce = nonces[index];
            let market = MarketId(rng.below(2) as u32);
            let leg = if rng.below(10) < 7 {
                let buy = rng.below(2) == 0;
                BatchLeg::Place(OrderRequest {
                    market,
                    client_order_id: Some(ClientOrderId(nonce)),
                    side: if buy { Side::Buy } else { Side::Sell },
                    order_type: OrderType::Limit,
                    price_ticks: PriceTicks(if buy { 9_990 } else { 10_010 } - rng.below(20)),
                    size_lots: SizeLots(1 + rng.below(50)),
                    time_in_force: TimeInForce::Gtc,
                    self_trade: SelfTradePrevention::CancelResting,
                })
            } else {
                BatchLeg::Cancel(CancelTarget::ClientOrder(ClientOrderId(nonce / 2 + 1)))
            };
            let key = &keys[index];
            key.sign(Transaction {
                chain_id: ChainId(1),
                account: key.account_id(),
                signer: key.account_id(),
                nonce,
                expires_at: TimestampMs(u64::MAX),
                action: Action::Batch(OrderBatch {
                    legs: vec![leg],
                    atomic: true,
                }),
            })
            .expect("the signer is the key")
        })
        .collect()
}

/// What each verification sees: key bytes, the 32-byte signing message, the signature.
struct Prepared {
    key_bytes: [u8; 32],
    strict_key: VerifyingKey,
    zip215_key: VerificationKey,
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
                zip215_key: VerificationKey::try_from(key_bytes).expect("a real key"),
                message: *tx.tx.signing_message().as_bytes(),
                signature: tx.signature,
            }
        })
        .collect()
}

fn zip215_batch(items: &[Prepared]) -> usize {
    let mut verifier = batch::Verifier::new();
    for item in items {
        verifier.queue((
            VerificationKeyBytes::from(item.key_bytes),
            ZebraSignature::from_bytes(&item.signature),
            &item.message,
        ));
    }
    match verifier.verify(OsRng) {
        Ok(()) => items.len(),
        // A failed batch is where a node would fall back to single checks; on this
        // all-valid input it never happens (the count check below would catch it).
        Err(_) => 0,
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
    let verifier = TxVerifier::new(2, 4 * ACCOUNTS as usize);
    assert!(verifier.verify_batch(&txs).iter().all(Result::is_ok));

    let mut group = c.benchmark_group("sigrules");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10);

    let strict_count = || {
        prepared
            .iter()
            .filter(|p| {
                p.strict_key
                    .verify_strict(&p.message, &Signature::from_bytes(&p.signature))
                    .is_ok()
            })
            .count()
    };
    assert_eq!(strict_count(), TXS);
    group.bench_function("verify_strict/threads=1", |b| {
        b.iter(|| black_box(strict_count()))
    });

    let tx_count = || txs.iter().filter(|tx| tx.verify().is_ok()).count();
    assert_eq!(tx_count(), TXS);
    group.bench_function("tx_verify/threads=1", |b| b.iter(|| black_box(tx_count())));

    let batch_count = || {
        verifier
            .verify_batch(&txs)
            .iter()
            .filter(|r| r.is_ok())
            .count()
    };
    assert_eq!(batch_count(), TXS);
    group.bench_function("verify_batch/threads=2", |b| {
        b.iter(|| black_box(batch_count()))
    });

    let zip215_count = || {
        prepared
            .iter()
            .filter(|p| {
                p.zip215_key
                    .verify(&ZebraSignature::from_bytes(&p.signature), &p.message)
                    .is_ok()
            })
            .count()
    };
    assert_eq!(zip215_count(), TXS);
    group.bench_function("zip215_single/threads=1", |b| {
        b.iter(|| black_box(zip215_count()))
    });

    for batch_size in [64, 512] {
        let one_thread = || prepared.chunks(batch_size).map(zip215_batch).sum::<usize>();
        assert_eq!(one_thread(), TXS);
        group.bench_function(format!("zip215_batch/threads=1,batch={batch_size}"), |b| {
            b.iter(|| black_box(one_thread()))
        });
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
    group.finish();

    // Other work on a shared machine comes and goes between criterion's groups; the
    // ratios that decide the rule are also measured round by round, back to back.
    let mut rounds: Vec<[f64; 4]> = (0..RATIO_ROUNDS)
        .map(|_| {
            let strict = seconds(|| assert_eq!(strict_count(), TXS));
            let zip215 =
                seconds(|| assert_eq!(prepared.chunks(512).map(zip215_batch).sum::<usize>(), TXS));
            let strict_two = seconds(|| assert_eq!(batch_count(), TXS));
            let zip215_two = seconds(|| {
                let count = two_threads
                    .install(|| prepared.par_chunks(512).map(zip215_batch).sum::<usize>());
                assert_eq!(count, TXS);
            });
            [strict, zip215, strict_two, zip215_two]
        })
        .collect();
    let median = |rounds: &mut Vec<[f64; 4]>, ratio: fn(&[f64; 4]) -> f64| {
        rounds.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
        ratio(&rounds[rounds.len() / 2])
    };
    println!(
        "median of {RATIO_ROUNDS} interleaved rounds: zip215_batch(512)/verify_strict on one \
         thread {:.2}x; on two threads (zip215_batch(512) vs verify_batch) {:.2}x; \
         verify_batch on two threads / verify_strict on one {:.2}x",
        median(&mut rounds, |r| r[0] / r[1]),
        median(&mut rounds, |r| r[2] / r[3]),
        median(&mut rounds, |r| r[0] / r[2]),
    );
    println!(
        "digest: {TXS} transactions from {ACCOUNTS} accounts, all accepted by every routine; \
         first id {}",
        txs[0].hash()
    );
}

criterion_group!(benches, bench_sigrules);
criterion_main!(benches);
