//! The single-validator pipeline without the network, against the rate at which the
//! machine can merely verify the same signatures.
//!
//! Two reference rates, each on every core:
//! - `pipeline::verify_strict_all_cores/txs=16384`: ed25519-dalek's `verify_strict` alone
//!   (one rayon thread per core), keys decompressed and signing messages hashed
//!   beforehand. The rule before ADR 0004, kept because the performance target is stated
//!   against it (the pipeline at 0.70 of its rate or more).
//! - `pipeline::verify_batch_all_cores/txs=16384`: the rule in force (ZIP-215, ADR 0004)
//!   as the node runs it, `TxVerifier::verify_batch` over all the transactions at once on
//!   the verifier's pool, its key cache warm (every signer checked before): signing
//!   messages hashed, chunks of at most `CHUNK_TXS_MAX` checked as batches.
//!
//! The pipeline, which verifies with that same `TxVerifier` (as the node does):
//! - `pipeline::sequential/txs=16384`: the transactions arrive as bytes in chunks of 1,024.
//!   Per chunk: decode (`SignedTransaction::decode`), verify (`TxVerifier::verify_batch` on
//!   every core), record the verified signatures and admit to the mempool
//!   (`Mempool::insert`, which then finds each signature already verified); whenever the
//!   mempool holds a full block (4,096): select and execute it (`dex_chain::build_block`),
//!   sign a commit certificate (3 of 4 validators), and commit it with
//!   `dex_chain::commit::commit_block` to a `ChainStore<RocksStore>` with synced
//!   durability. One stage after the other, on the calling thread (verification on the
//!   pool).
//! - `pipeline::overlapped/txs=16384`: the same stages and blocks, but chunks are decoded
//!   and verified while a second thread admits, executes and commits (the node's shape:
//!   verification off the serial path, at most about a block ahead of it).
//! - `pipeline::stage_decode_verify/txs=16384`, `pipeline::stage_admit_execute_commit/txs=16384`:
//!   the two halves alone (the second on transactions verified beforehand), to show where
//!   the time goes.
//!
//! Setup (not timed): 2,000 funded accounts with real keys, two markets; the 16,384
//! transactions are signed once, seeded: about 60% resting limit orders, 10% crossing
//! IOC orders, 5% post-only, 25% cancels by client id of the signer's earlier orders.
//! Each iteration starts from a new RocksDB directory with genesis installed. The digest
//! printed at the end (head, state root, rejections) shows a faster but wrong pipeline.
//!
//! After the groups, the pipeline's rate as a fraction of each reference rate is measured
//! in interleaved rounds (both references, sequential, overlapped, back to back) and the
//! medians printed, with the median rate of each, so that load from other work on a
//! shared machine hits both sides alike; with them the ratios of CPU time used (from
//! `/proc/self/stat`), which such load hardly moves.
//!
//! `cargo bench -p dex --bench pipeline` (about two minutes).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dex_chain::commit::commit_block;
use dex_chain::{BlockRules, ExecutedBlock, Mempool, Parent, SignatureCache, build_block};
use dex_consensus::{
    CommitCertificate, CommitSignature, Height, Round, ValidatorIndex, ValidatorSet,
};
use dex_state::{Genesis, Ledger};
use dex_storage::{ChainStore, ChainStoreConfig, Durability, RocksConfig, RocksStore};
use dex_types::{
    AccountId, Amount, ChainId, Hash, Keypair, MarketId, Side, SignedTransaction, TimeInForce,
    TimestampMs, VerifyingKey,
};
use dex_verify::TxVerifier;
use dex_workload::{
    SplitMix64, account_ids, cancel_client_order, limit, place, sign, trader_keys,
    two_market_genesis,
};
use ed25519_dalek::{Signature, SigningKey};
use rayon::prelude::*;
use std::hint::black_box;
use std::sync::mpsc;
use std::time::Instant;
use tempfile::TempDir;

const CHAIN: ChainId = ChainId(8);
const ACCOUNTS: u64 = 2_000;
const TXS: usize = 16_384;
const BLOCK_TXS: usize = 4_096;
/// Transactions decoded and verified together, as they arrive from clients and peers.
const ARRIVAL_TXS: usize = 1_024;
const VALIDATORS: usize = 4;
const GENESIS_TIME: TimestampMs = TimestampMs(1_000_000);
const MID_TICKS: u64 = 1_000_000;

/// Trader keys of this workload (see `dex_workload::trader_key`).
const TRADER_KEY_FAMILY: u8 = 0x71;

fn validator_key(index: usize) -> SigningKey {
    SigningKey::from_bytes(&[0x40 + index as u8; 32])
}

/// The seeded stream of orders and cancels, signed.
fn transactions(traders: &[Keypair]) -> Vec<SignedTransaction> {
    let mut rng = SplitMix64::new(0x5eed);
    let mut nonces = vec![0u64; traders.len()];
    let mut resting: Vec<Vec<u64>> = vec![Vec::new(); traders.len()];
    let mut txs = Vec::with_capacity(TXS);
    for _ in 0..TXS {
        let index = rng.below(ACCOUNTS) as usize;
        nonces[index] += 1;
        let nonce = nonces[index];
        let market = MarketId(rng.below(2) as u32);
        let side = rng.side();
        let away = |ticks: u64| match side {
            Side::Buy => MID_TICKS - ticks,
            Side::Sell => MID_TICKS + ticks,
        };
        let order = |price: u64, size: u64, time_in_force| {
            place(limit(market, side, price, size, time_in_force, nonce))
        };
        let roll = rng.below(100);
        let action = if roll < 25 && !resting[index].is_empty() {
            let open = &mut resting[index];
            let client_id = open.swap_remove(rng.below(open.len() as u64) as usize);
            cancel_client_order(client_id)
        } else if roll < 35 {
            // Crosses the spread: trades with resting orders of the other side.
            let price = match side {
                Side::Buy => MID_TICKS + 10,
                Side::Sell => MID_TICKS - 10,
            };
            order(price, 1 + rng.below(5), TimeInForce::Ioc)
        } else if roll < 40 {
            order(
                away(20 + rng.below(40)),
                1 + rng.below(20),
                TimeInForce::PostOnly,
            )
        } else {
            resting[index].push(nonce);
            order(away(1 + rng.below(40)), 1 + rng.below(20), TimeInForce::Gtc)
        };
        txs.push(sign(&traders[index], CHAIN, nonce, action));
    }
    txs
}

/// Everything an iteration needs, built once.
struct Fixture {
    genesis: Genesis,
    validators: ValidatorSet,
    validator_keys: Vec<SigningKey>,
    rules: BlockRules,
    /// The transactions as they arrive from clients and peers.
    encoded: Vec<Vec<u8>>,
    /// The same transactions decoded, for the reference rate of the rule in force.
    decoded: Vec<SignedTransaction>,
    /// For the reference rate: decompressed key, signing message, signature.
    strict_inputs: Vec<(VerifyingKey, [u8; 32], Signature)>,
    verifier: TxVerifier,
}

impl Fixture {
    fn new() -> Fixture {
        let traders = trader_keys(TRADER_KEY_FAMILY, ACCOUNTS);
        let txs = transactions(&traders);
        let validator_keys: Vec<SigningKey> = (0..VALIDATORS).map(validator_key).collect();
        let validators = ValidatorSet::new(
            validator_keys
                .iter()
                .map(|key| (key.verifying_key().to_bytes(), 1)),
        )
        .expect("a valid validator set");
        let strict_inputs = txs
            .iter()
            .map(|tx| {
                (
                    tx.tx.signer.verifying_key().expect("a real key"),
                    *tx.tx.signing_message().as_bytes(),
                    Signature::from_bytes(&tx.signature),
                )
            })
            .collect();
        Fixture {
            genesis: two_market_genesis(
                CHAIN,
                GENESIS_TIME,
                &account_ids(&traders),
                Amount(1 << 80),
            ),
            validators,
            validator_keys,
            rules: BlockRules {
                chain_id: CHAIN,
                txs_max: BLOCK_TXS,
                time_ahead_max_ms: 2_000,
            },
            encoded: txs.iter().map(SignedTransaction::encode).collect(),
            decoded: txs,
            strict_inputs,
            verifier: TxVerifier::new(0, 2 * ACCOUNTS as usize),
        }
    }

    /// A fresh RocksDB directory with genesis installed, committing with synced durability.
    fn fresh_store(&self) -> Validator {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let rocks = RocksStore::open(dir.path(), &RocksConfig::default()).expect("open RocksDB");
        let config = ChainStoreConfig {
            commit_durability: Durability::Synced,
            ..ChainStoreConfig::default()
        };
        let store = ChainStore::open(rocks, config).expect("open the chain store");
        let recovered =
            dex_chain::recover(&store, &self.genesis, &self.validators, &self.rules, false)
                .expect("install genesis");
        assert!(recovered.installed_genesis);
        Validator {
            _dir: dir,
            parent: Parent {
                height: 0,
                hash: Hash::ZERO,
                time: GENESIS_TIME,
            },
            store,
            ledger: recovered.ledger,
            mempool: Mempool::new(50_000),
            signatures: SignatureCache::new(100_000),
            rejected: 0,
        }
    }

    /// Decode and verify one chunk of arriving bytes; every transaction here is valid.
    fn decode_and_verify(&self, chunk: &[Vec<u8>]) -> Vec<SignedTransaction> {
        let decoded: Vec<SignedTransaction> = chunk
            .iter()
            .map(|bytes| SignedTransaction::decode(bytes).expect("well-formed"))
            .collect();
        for result in self.verifier.verify_batch(&decoded) {
            result.expect("every signature is valid");
        }
        decoded
    }

    /// The 3-of-4 precommit certificate for `executed`.
    fn certificate(&self, executed: &ExecutedBlock) -> CommitCertificate {
        let mut certificate = CommitCertificate {
            height: Height(executed.block.header.height),
            round: Round(0),
            value_id: executed.id,
            signatures: Vec::new(),
        };
        // Validators sign in index order (the set sorts them by key), as a certificate
        // lists them.
        let mut signers: Vec<(ValidatorIndex, &SigningKey)> = self
            .validator_keys
            .iter()
            .map(|key| {
                let index = self
                    .validators
                    .index_of(&key.verifying_key())
                    .expect("a validator key");
                (index, key)
            })
            .collect();
        signers.sort_by_key(|(index, _)| *index);
        for (validator, key) in signers.into_iter().take(3) {
            let vote = certificate.precommit(CHAIN, validator).sign(key);
            certificate.signatures.push(CommitSignature {
                validator,
                signature: vote.signature,
            });
        }
        certificate
    }
}

/// One validator's state during an iteration.
struct Validator {
    _dir: TempDir,
    parent: Parent,
    store: ChainStore<RocksStore>,
    ledger: Ledger,
    mempool: Mempool,
    signatures: SignatureCache,
    rejected: usize,
}

impl Validator {
    /// Admit verified transactions to the mempool (each signature recorded as verified
    /// first, so admission does not check it again), then commit every full block.
    fn admit(&mut self, fixture: &Fixture, verified: Vec<SignedTransaction>) {
        let now = self.now();
        for signed in verified {
            self.signatures.record_verified(signed.hash(), &signed);
            self.mempool
                .insert(signed, &self.ledger, now, &mut self.signatures)
                .expect("admitted");
        }
        while self.mempool.len() >= BLOCK_TXS {
            self.commit_next_block(fixture);
        }
    }

    /// Commit what is left in the mempool (the end of the stream).
    fn drain(&mut self, fixture: &Fixture) {
        while !self.mempool.is_empty() {
            self.commit_next_block(fixture);
        }
    }

    /// The validator's clock: half a second after the parent block.
    fn now(&self) -> TimestampMs {
        TimestampMs(self.parent.time.0 + 500)
    }

    /// Select, build, execute, certify and commit one block.
    fn commit_next_block(&mut self, fixture: &Fixture) {
        let txs = self.mempool.select(BLOCK_TXS);
        let time = dex_chain::proposal_time(&self.parent, self.now());
        let proposer = AccountId(fixture.validator_keys[0].verifying_key().to_bytes());
        let executed = build_block(
            &self.ledger,
            &self.parent,
            &fixture.rules,
            proposer,
            time,
            txs,
        );
        let certificate = fixture.certificate(&executed);
        let head = commit_block(&self.store, &executed, &certificate).expect("commit");
        self.mempool.remove_committed(&executed.block.txs);
        self.rejected += executed
            .result
            .outcomes
            .iter()
            .filter(|outcome| outcome.result.is_err())
            .count();
        self.parent = Parent {
            height: head.height,
            hash: head.block_hash,
            time,
        };
        self.ledger = executed.ledger;
    }
}

fn sequential(fixture: &Fixture, mut validator: Validator) -> Validator {
    for chunk in fixture.encoded.chunks(ARRIVAL_TXS) {
        let verified = fixture.decode_and_verify(chunk);
        validator.admit(fixture, verified);
    }
    validator.drain(fixture);
    validator
}

fn overlapped(fixture: &Fixture, mut validator: Validator) -> Validator {
    std::thread::scope(|scope| {
        // Verification runs at most about one block ahead of the serial stage.
        let (sender, receiver) =
            mpsc::sync_channel::<Vec<SignedTransaction>>(BLOCK_TXS / ARRIVAL_TXS);
        let serial = scope.spawn(move || {
            for verified in receiver {
                validator.admit(fixture, verified);
            }
            validator.drain(fixture);
            validator
        });
        for chunk in fixture.encoded.chunks(ARRIVAL_TXS) {
            sender
                .send(fixture.decode_and_verify(chunk))
                .expect("the serial stage runs");
        }
        drop(sender);
        serial.join().expect("the serial stage does not panic")
    })
}

/// The reference of the performance target: `verify_strict` on every core; the count of
/// signatures that pass.
fn reference_strict(fixture: &Fixture, pool: &rayon::ThreadPool) -> usize {
    pool.install(|| {
        fixture
            .strict_inputs
            .par_iter()
            .filter(|(key, message, signature)| key.verify_strict(message, signature).is_ok())
            .count()
    })
}

/// The raw rate of the rule in force: `TxVerifier::verify_batch` over every transaction on
/// the verifier's pool (all cores), as the node calls it; the count of signatures that pass.
fn reference_batch(fixture: &Fixture) -> usize {
    fixture
        .verifier
        .verify_batch(&fixture.decoded)
        .iter()
        .filter(|result| result.is_ok())
        .count()
}

/// Rounds of [`interleaved_ratios`].
const RATIO_ROUNDS: usize = 7;

/// CPU time of this process so far (all threads, user + system), in clock ticks, read
/// from `/proc/self/stat`; `None` where there is no such file.
fn process_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces, so split after its ')'):
    // state is field 3; utime and stime are fields 14 and 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Wall seconds and CPU ticks of `run`.
fn measure<T>(run: impl FnOnce() -> T) -> (f64, Option<u64>, T) {
    let ticks = process_cpu_ticks();
    let start = Instant::now();
    let output = run();
    let wall = start.elapsed().as_secs_f64();
    let cpu = ticks.zip(process_cpu_ticks()).map(|(a, b)| b - a);
    (wall, cpu, output)
}

/// The machine is shared, and other work comes and goes between criterion's groups of
/// samples. So the ratios the target is stated in are also measured round by round: both
/// references, then each pipeline shape, back to back; the medians of the per-round wall
/// ratios and rates are printed, and the ratios of CPU time used, which other work hardly
/// changes: on an idle machine whose cores the pipeline keeps busy, a rate ratio
/// approaches its CPU ratio.
fn interleaved_ratios(fixture: &Fixture, pool: &rayon::ThreadPool) {
    // Per round: wall seconds of the strict reference, the batch reference, sequential and
    // overlapped, in that order.
    let mut rounds: Vec<[f64; 4]> = Vec::with_capacity(RATIO_ROUNDS);
    let mut cpu_ticks = Some([0u64; 4]);
    for _ in 0..RATIO_ROUNDS {
        let (first, second) = (fixture.fresh_store(), fixture.fresh_store());
        let (strict_secs, strict_cpu, count) = measure(|| reference_strict(fixture, pool));
        assert_eq!(count, TXS);
        let (batch_secs, batch_cpu, count) = measure(|| reference_batch(fixture));
        assert_eq!(count, TXS);
        let (sequential_secs, sequential_cpu, first) = measure(|| sequential(fixture, first));
        let (overlapped_secs, overlapped_cpu, second) = measure(|| overlapped(fixture, second));
        drop((first, second));
        rounds.push([strict_secs, batch_secs, sequential_secs, overlapped_secs]);
        cpu_ticks = match (
            cpu_ticks,
            strict_cpu,
            batch_cpu,
            sequential_cpu,
            overlapped_cpu,
        ) {
            (Some(total), Some(a), Some(b), Some(c), Some(d)) => {
                Some([total[0] + a, total[1] + b, total[2] + c, total[3] + d])
            }
            _ => None,
        };
    }
    // Median of one quantity over the rounds, with its range.
    let median = |of: &dyn Fn(&[f64; 4]) -> f64| {
        let mut values: Vec<f64> = rounds.iter().map(of).collect();
        values.sort_by(f64::total_cmp);
        (
            values[values.len() / 2],
            values[0],
            values[values.len() - 1],
        )
    };
    let rate = |index: usize| median(&|round: &[f64; 4]| TXS as f64 / round[index]).0;
    println!(
        "rates (tx/s), median of {RATIO_ROUNDS} interleaved rounds: verify_strict all cores \
         {:.0}, verify_batch all cores {:.0}, sequential {:.0}, overlapped {:.0}",
        rate(0),
        rate(1),
        rate(2),
        rate(3),
    );
    for (reference, name) in [
        (0, "verify_strict-on-all-cores"),
        (1, "verify_batch-on-all-cores"),
    ] {
        let (sequential, sequential_low, sequential_high) =
            median(&|round: &[f64; 4]| round[reference] / round[2]);
        let (overlapped, overlapped_low, overlapped_high) =
            median(&|round: &[f64; 4]| round[reference] / round[3]);
        println!(
            "pipeline rate / {name} rate, median of {RATIO_ROUNDS} interleaved rounds: \
             sequential {sequential:.2} (range {sequential_low:.2}-{sequential_high:.2}), \
             overlapped {overlapped:.2} (range {overlapped_low:.2}-{overlapped_high:.2})",
        );
    }
    if let Some([strict_cpu, batch_cpu, sequential_cpu, overlapped_cpu]) = cpu_ticks {
        for (reference_cpu, name) in [(strict_cpu, "verify_strict"), (batch_cpu, "verify_batch")] {
            println!(
                "CPU time of the {name} reference / CPU time of the pipeline, all rounds: \
                 sequential {:.2}, overlapped {:.2}",
                reference_cpu as f64 / sequential_cpu.max(1) as f64,
                reference_cpu as f64 / overlapped_cpu.max(1) as f64,
            );
        }
    }
}

fn bench_pipeline(c: &mut Criterion) {
    let fixture = Fixture::new();
    let all_cores = rayon::ThreadPoolBuilder::new()
        .num_threads(fixture.verifier.threads())
        .build()
        .expect("threads");
    assert_eq!(reference_strict(&fixture, &all_cores), TXS);
    // Also warms the verifier's key cache with every signer, as a running node's is.
    assert_eq!(reference_batch(&fixture), TXS);

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10);
    group.bench_function(format!("verify_strict_all_cores/txs={TXS}"), |b| {
        b.iter(|| black_box(reference_strict(&fixture, &all_cores)))
    });
    group.bench_function(format!("verify_batch_all_cores/txs={TXS}"), |b| {
        b.iter(|| black_box(reference_batch(&fixture)))
    });
    group.bench_function(format!("sequential/txs={TXS}"), |b| {
        b.iter_batched(
            || fixture.fresh_store(),
            |validator| sequential(&fixture, validator),
            BatchSize::PerIteration,
        )
    });
    // The two halves alone, to show where the time goes.
    group.bench_function(format!("stage_decode_verify/txs={TXS}"), |b| {
        b.iter(|| {
            for chunk in fixture.encoded.chunks(ARRIVAL_TXS) {
                black_box(fixture.decode_and_verify(chunk));
            }
        })
    });
    let verified: Vec<Vec<SignedTransaction>> = fixture
        .encoded
        .chunks(ARRIVAL_TXS)
        .map(|chunk| fixture.decode_and_verify(chunk))
        .collect();
    group.bench_function(format!("stage_admit_execute_commit/txs={TXS}"), |b| {
        b.iter_batched(
            || (fixture.fresh_store(), verified.clone()),
            |(mut validator, chunks)| {
                for chunk in chunks {
                    validator.admit(&fixture, chunk);
                }
                validator.drain(&fixture);
                validator
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function(format!("overlapped/txs={TXS}"), |b| {
        b.iter_batched(
            || fixture.fresh_store(),
            |validator| overlapped(&fixture, validator),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    interleaved_ratios(&fixture, &all_cores);

    // The digest: both shapes must reach the same committed state.
    let one = sequential(&fixture, fixture.fresh_store());
    let two = overlapped(&fixture, fixture.fresh_store());
    let head = one.store.last_committed().expect("blocks were committed");
    assert_eq!(Some(head), two.store.last_committed());
    assert_eq!(one.rejected, two.rejected);
    assert!(one.mempool.is_empty());
    let certificate = CommitCertificate::decode(
        &one.store
            .certificate(head.height)
            .expect("read")
            .expect("stored"),
    )
    .expect("decodes");
    certificate
        .verify(&fixture.validators, CHAIN)
        .expect("the stored certificate verifies");
    println!(
        "digest: threads={} height={} state_root={} rejected={} of {TXS}",
        fixture.verifier.threads(),
        head.height,
        head.state_root,
        one.rejected
    );
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
