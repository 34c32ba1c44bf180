//! The child process of the crash test (`tests/crash.rs`): a validator's commit path on a
//! real RocksDB directory with the real ledger, killed with SIGKILL at random moments.
//!
//! `run <data-dir> <max-height> [--state-column]` opens the store, recovers with
//! [`dex_chain::recover`] (genesis install, or newest snapshot plus replay of every later
//! block with its certificate verified and its roots recomputed by `dex-state`), then
//! builds and commits blocks of signed transfers and orders (crossing, so they fill) until
//! `max-height`. Each block carries a commit certificate signed by three of the four
//! validators. A snapshot is written every few blocks on a second thread, off the commit
//! path, as a node does. Output, one line each, printed only after the write returned:
//! `recovered <height> <state-root> <snapshot-height> <replayed-blocks>`, then
//! `committed <height> <state-root>` per block and `snapshot <height>` per snapshot, then
//! `done`.
//!
//! `check <data-dir> [--state-column]` verifies what a killed child left: the store's full
//! consistency check, the recovered state (its root recomputed from the newest snapshot
//! and the blocks after it equals the committed head's), the state column key by key when
//! it is kept, and every stored block, root and certificate against a chain rebuilt from
//! genesis in memory that never crashed. Output: `block <height> <state-root>` per height,
//! then `checked <height> <state-root> <snapshot-height> <replayed-blocks>`.
//!
//! Errors go to stderr with exit code 2.
// The host side of the crate: this binary does IO, and the snapshot writer is a thread.
#![allow(clippy::disallowed_methods)]

use dex_chain::commit::{self, SnapshotJob};
use dex_chain::{BlockRules, ExecutedBlock, Parent, build_block, recover};
use dex_consensus::{
    CommitCertificate, CommitSignature, Height, Round, ValidatorSet, Vote, VoteType,
};
use dex_state::{Allocation, Genesis, Ledger, Limits};
use dex_storage::{ChainStore, ChainStoreConfig, RocksConfig, RocksStore, VerifyDepth};
use dex_types::{
    AccountId, Action, Amount, AssetId, AssetSpec, BatchLeg, ChainId, Hash, Keypair, MarketId,
    MarketSpec, OrderBatch, OrderRequest, OrderType, PriceTicks, SelfTradePrevention, Side,
    SignedTransaction, SizeLots, TimeInForce, TimestampMs, Transaction, Transfer,
};
use ed25519_dalek::SigningKey;
use std::error::Error;
use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc;

const CHAIN: ChainId = ChainId(0xc4a5);
const GENESIS_TIME: TimestampMs = TimestampMs(1_700_000_000_000);
const BLOCK_INTERVAL_MS: u64 = 1_000;
const USDC: AssetId = AssetId(0);
const BTC: AssetId = AssetId(1);
const BTC_USDC: MarketId = MarketId(0);
const TRADERS: u64 = 16;
const VALIDATORS: usize = 4;
/// Validators that sign each certificate: 3 of 4 is more than two thirds.
const SIGNERS: usize = 3;
const TXS_PER_BLOCK: u64 = 24;
/// Small, so a round of the test writes several snapshots and recovery often replays
/// from one written moments before the kill.
const SNAPSHOT_INTERVAL_BLOCKS: u64 = 8;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn trader(n: u64) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    seed[31] = 0xc4;
    Keypair::from_seed(seed)
}

fn validator_key(i: usize) -> SigningKey {
    let mut seed = [0xa5; 32];
    seed[0] = u8::try_from(i).expect("bug: validator index fits u8");
    SigningKey::from_bytes(&seed)
}

fn validators() -> ValidatorSet {
    ValidatorSet::new((0..VALIDATORS).map(|i| (validator_key(i).verifying_key().to_bytes(), 1)))
        .expect("bug: a valid validator set")
}

fn genesis() -> Genesis {
    // One base unit of an asset with `decimals` places is 10^-decimals: the market's steps
    // built through dex-types' exact conversion.
    let unit = |decimals: u8| {
        AssetSpec {
            id: AssetId(0),
            symbol: "UNIT".into(),
            decimals,
        }
        .amount_to_decimal(Amount(1))
        .expect("bug: one base unit converts")
    };
    let allocations = (0..TRADERS)
        .flat_map(|n| {
            [USDC, BTC].map(|asset| Allocation {
                account: trader(n).account_id(),
                asset,
                amount: Amount(1_000_000_000_000),
            })
        })
        .collect();
    Genesis {
        chain_id: CHAIN,
        genesis_time: GENESIS_TIME,
        assets: vec![
            AssetSpec {
                id: USDC,
                symbol: "USDC".into(),
                decimals: 6,
            },
            AssetSpec {
                id: BTC,
                symbol: "BTC".into(),
                decimals: 8,
            },
        ],
        markets: vec![MarketSpec {
            id: BTC_USDC,
            base: BTC,
            quote: USDC,
            tick_size: unit(2),
            lot_size: unit(4),
            min_size_lots: SizeLots(1),
            maker_fee_bps: 0,
            taker_fee_bps: 5,
        }],
        allocations,
        fee_account: trader(999).account_id(),
        limits: Limits {
            max_open_orders_per_account: 1_000,
            max_agents_per_account: 2,
            max_book_orders: 100_000,
            max_order_size_lots: SizeLots(1 << 30),
            max_price_ticks: PriceTicks(1 << 30),
            max_accounts: 1_000,
        },
    }
}

fn rules() -> BlockRules {
    BlockRules {
        chain_id: CHAIN,
        txs_max: 64,
        time_ahead_max_ms: 1_000,
    }
}

fn store_config(keep_state_column: bool) -> ChainStoreConfig {
    ChainStoreConfig {
        snapshot_interval_blocks: SNAPSHOT_INTERVAL_BLOCKS,
        keep_state_column,
        ..ChainStoreConfig::default()
    }
}

fn block_time(height: u64) -> TimestampMs {
    TimestampMs(GENESIS_TIME.0 + height * BLOCK_INTERVAL_MS)
}

/// The transactions of block `height`, a pure function of the height: transfers, resting
/// buys and immediate sells that fill against them. Every signer's nonces increase.
fn transactions(height: u64) -> Vec<SignedTransaction> {
    (0..TXS_PER_BLOCK)
        .map(|i| {
            let sequence = (height - 1) * TXS_PER_BLOCK + i;
            let n = sequence % TRADERS;
            let key = trader(n);
            let action = match i % 3 {
                0 => Action::Transfer(Transfer {
                    to: trader((n + 1) % TRADERS).account_id(),
                    asset: USDC,
                    amount: Amount(u128::from(5 + height % 7)),
                }),
                kind => {
                    let (side, price, time_in_force) = if kind == 1 {
                        (Side::Buy, 100 + height % 5, TimeInForce::Gtc)
                    } else {
                        (Side::Sell, 99, TimeInForce::Ioc)
                    };
                    Action::Batch(OrderBatch {
                        legs: vec![BatchLeg::Place(OrderRequest {
                            market: BTC_USDC,
                            client_order_id: None,
                            side,
                            order_type: OrderType::Limit,
                            price_ticks: PriceTicks(price),
                            size_lots: SizeLots(1 + sequence % 4),
                            time_in_force,
                            self_trade: SelfTradePrevention::CancelResting,
                        })],
                        atomic: true,
                    })
                }
            };
            key.sign(Transaction {
                chain_id: CHAIN,
                account: key.account_id(),
                signer: key.account_id(),
                nonce: sequence + 1,
                expires_at: TimestampMs(block_time(height).0 + 3_600_000),
                action,
            })
            .expect("bug: the account signs its own transaction")
        })
        .collect()
}

/// Build and execute block `parent.height + 1` on `ledger`.
fn next_block(ledger: &Ledger, parent: &Parent) -> ExecutedBlock {
    let height = parent.height + 1;
    let proposer = AccountId(
        validator_key((height % VALIDATORS as u64) as usize)
            .verifying_key()
            .to_bytes(),
    );
    build_block(
        ledger,
        parent,
        &rules(),
        proposer,
        block_time(height),
        transactions(height),
    )
}

/// The commit certificate of `executed`: precommits of the first three validators.
fn certify(executed: &ExecutedBlock, validators: &ValidatorSet) -> CommitCertificate {
    let height = Height(executed.block.header.height);
    let mut signatures: Vec<CommitSignature> = (0..SIGNERS)
        .map(|i| {
            let key = validator_key(i);
            let validator = validators
                .index_of(&key.verifying_key())
                .expect("bug: the signer is a validator");
            let vote = Vote {
                chain_id: CHAIN,
                height,
                round: Round(0),
                vote_type: VoteType::Precommit,
                value_id: Some(executed.id),
                validator,
            };
            CommitSignature {
                validator,
                signature: vote.sign(&key).signature,
            }
        })
        .collect();
    signatures.sort_by_key(|signature| signature.validator);
    CommitCertificate {
        height,
        round: Round(0),
        value_id: executed.id,
        signatures,
    }
}

fn open(data_dir: &str, keep_state_column: bool) -> Result<ChainStore<RocksStore>> {
    let store = RocksStore::open(data_dir, &RocksConfig::default())?;
    Ok(ChainStore::open(store, store_config(keep_state_column))?)
}

fn say(line: std::fmt::Arguments<'_>) -> Result<()> {
    // One locked write and flush per line: a printed line is a promise the test holds
    // the store to, so it must leave the process before the next step.
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

fn run(data_dir: &str, max_height: u64, keep_state_column: bool) -> Result<()> {
    let chain = open(data_dir, keep_state_column)?;
    let genesis = genesis();
    let validators = validators();
    let recovered = recover(&chain, &genesis, &validators, &rules(), true)?;
    let head = recovered.head;
    say(format_args!(
        "recovered {} {} {} {}",
        head.height, head.state_root, recovered.snapshot_height, recovered.replayed_blocks
    ))?;
    let mut ledger = recovered.ledger;
    let mut parent = Parent {
        height: head.height,
        hash: head.block_hash,
        time: ledger.last_block_time(),
    };
    std::thread::scope(|scope| -> Result<()> {
        // One snapshot in flight at most: the commit loop waits only if the writer is
        // still busy with the previous one.
        let (jobs, queue) = mpsc::sync_channel::<SnapshotJob>(1);
        let chain = &chain;
        let writer = scope.spawn(move || -> std::result::Result<(), String> {
            for job in queue {
                let info = job.write(chain).map_err(|e| e.to_string())?;
                say(format_args!("snapshot {}", info.height)).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        while parent.height < max_height {
            let executed = next_block(&ledger, &parent);
            let certificate = certify(&executed, &validators);
            let head = commit::commit_block(chain, &executed, &certificate)?;
            say(format_args!(
                "committed {} {}",
                head.height, head.state_root
            ))?;
            if let Some(job) = commit::snapshot_job(chain, &executed) {
                jobs.send(job)?;
            }
            parent = Parent {
                height: head.height,
                hash: executed.id,
                time: executed.block.header.time,
            };
            ledger = executed.ledger;
        }
        drop(jobs);
        writer
            .join()
            .map_err(|_| "the snapshot writer panicked")?
            .map_err(|e| format!("snapshot write failed: {e}"))?;
        Ok(())
    })?;
    say(format_args!("done"))
}

fn check(data_dir: &str, keep_state_column: bool) -> Result<()> {
    let chain = open(data_dir, keep_state_column)?;
    chain.verify_consistency(VerifyDepth::Full)?;
    let genesis = genesis();
    let validators = validators();
    // Snapshot plus replay, every certificate verified, every root recomputed; with the
    // column kept, the column is rebuilt or compared key by key.
    let recovered = recover(&chain, &genesis, &validators, &rules(), true)?;
    let head = recovered.head;
    if recovered.ledger.state_root() != head.state_root {
        return Err(format!(
            "recovered root {} differs from the committed {}",
            recovered.ledger.state_root(),
            head.state_root
        )
        .into());
    }
    // The chain that never crashed, rebuilt in memory from genesis.
    let mut ledger = Ledger::from_genesis(&genesis)?;
    let mut parent = Parent {
        height: 0,
        hash: Hash::ZERO,
        time: GENESIS_TIME,
    };
    while parent.height < head.height {
        let executed = next_block(&ledger, &parent);
        let height = parent.height + 1;
        let stored = chain
            .committed_block(height)?
            .ok_or_else(|| format!("block {height} is missing"))?;
        let certificate = certify(&executed, &validators).encode();
        if stored.block_hash != executed.id
            || stored.state_root != executed.result.state_root
            || stored.block != executed.block.encode()
            || stored.certificate != certificate
        {
            return Err(format!("block {height} differs from the run that never crashed").into());
        }
        say(format_args!("block {height} {}", stored.state_root))?;
        parent = Parent {
            height,
            hash: executed.id,
            time: executed.block.header.time,
        };
        ledger = executed.ledger;
    }
    if ledger.state_root() != head.state_root || parent.hash != head.block_hash {
        return Err("the head differs from the run that never crashed".into());
    }
    say(format_args!(
        "checked {} {} {} {}",
        head.height, head.state_root, recovered.snapshot_height, recovered.replayed_blocks
    ))
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: dex-chain-crash-child run <data-dir> <max-height> [--state-column]\n       \
         dex-chain-crash-child check <data-dir> [--state-column]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let keep_state_column = args.iter().any(|arg| arg == "--state-column");
    let positional: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let result = match positional.as_slice() {
        ["run", data_dir, max_height] => match max_height.parse::<u64>() {
            Ok(max_height) => run(data_dir, max_height, keep_state_column),
            Err(_) => return usage(),
        },
        ["check", data_dir] => check(data_dir, keep_state_column),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("crash child failed: {err}");
            ExitCode::from(2)
        }
    }
}
