//! The read model's cost per committed block.
//!
//! - `index::apply/blocks=30,txs=1000`: [`ChainIndex::apply`] of 30 committed blocks of
//!   1,000 transactions each, from genesis, on one core (what the node's API publisher
//!   does once per block). Criterion's throughput is per transaction. The index grows
//!   from empty, so this includes growing its tables.
//! - `index::apply_steady/blocks=15,txs=1000`: the last 15 of those blocks, after the first
//!   15 were indexed with retention caps of 5,000 orders and outcomes, so the caps are
//!   reached and the index evicts as much as it adds (a loaded node's steady state).
//!
//! The blocks are real: a [`LocalChain`] over [`demo_genesis`] with 400 funded traders
//! executes them with the ledger, so events, fills and outcomes are what a validator
//! indexes. The seeded mix per block: ~45% resting limit orders near the mid, ~10%
//! crossing limit orders (partly filled, the rest rests), ~15% IOC takers, ~30% cancels
//! by client order id of the trader's earlier orders (some already filled or cancelled,
//! so refused). Each iteration indexes the whole chain into a fresh index; the digest
//! printed at the end (every feed serialized and hashed) shows a faster but wrong index.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dex_api::{
    ApiBackend, ChainIndex, Clock, CommittedBlock, HubConfig, LocalChain, LocalChainConfig,
    demo_genesis,
};
use dex_state::Ledger;
use dex_types::{Action, ChainId, MarketId, Side, TimeInForce};
use dex_workload::{SplitMix64, account_ids, cancel_client_order, limit, place, sign, trader_keys};
use std::hint::black_box;
use std::sync::Arc;

const CHAIN: u64 = 7;
const START_MS: u64 = 1_700_000_000_000;
const TRADERS: usize = 400;
const BLOCKS: usize = 30;
const BLOCK_TXS: usize = 1_000;
/// Mid price in ticks (100.00 USDC).
const MID: u64 = 10_000;

/// Trader keys of this workload (see `dex_workload::trader_key`).
const TRADER_KEY_FAMILY: u8 = 0x5A;
/// The market every order goes to (`demo_genesis`'s market 1).
const MARKET: MarketId = MarketId(1);

struct Chain {
    genesis: dex_state::Genesis,
    chain: Arc<dex_api::ChainInfo>,
    blocks: Vec<Arc<CommittedBlock>>,
}

/// A limit order on [`MARKET`], placed alone.
fn order(side: Side, price: u64, size: u64, tif: TimeInForce, cid: u64) -> Action {
    place(limit(MARKET, side, price, size, tif, cid))
}

/// Execute the seeded chain on a [`LocalChain`] and keep its committed blocks.
fn build_chain() -> Chain {
    let keys = trader_keys(TRADER_KEY_FAMILY, TRADERS as u64);
    let accounts = account_ids(&keys);
    let genesis = demo_genesis(CHAIN, START_MS, &accounts);
    let config = LocalChainConfig {
        clock: Clock::manual(START_MS),
        max_block_txs: BLOCK_TXS,
        mempool_capacity: BLOCK_TXS,
        ..LocalChainConfig::default()
    };
    let local = LocalChain::new(&genesis, config).expect("demo genesis is valid");
    let mut rng = SplitMix64::new(42);
    let mut nonces = vec![0u64; TRADERS];
    let mut placed: Vec<Vec<u64>> = vec![Vec::new(); TRADERS];
    let mut blocks = Vec::with_capacity(BLOCKS);
    for _ in 0..BLOCKS {
        for _ in 0..BLOCK_TXS {
            let t = rng.below(TRADERS as u64) as usize;
            let side = rng.side();
            // Passive prices sit below the mid for buys, above for sells; `cross` prices
            // reach into the other side.
            let at = |offset: u64, cross: bool| match (side, cross) {
                (Side::Buy, false) | (Side::Sell, true) => MID - offset,
                (Side::Sell, false) | (Side::Buy, true) => MID + offset,
            };
            let roll = rng.below(100);
            let cid = nonces[t] + 1;
            let action = if roll < 45 {
                placed[t].push(cid);
                order(
                    side,
                    at(1 + rng.below(50), false),
                    1 + rng.below(20),
                    TimeInForce::Gtc,
                    cid,
                )
            } else if roll < 55 {
                placed[t].push(cid);
                order(
                    side,
                    at(rng.below(5), true),
                    1 + rng.below(40),
                    TimeInForce::Gtc,
                    cid,
                )
            } else if roll < 70 {
                order(side, at(20, true), 1 + rng.below(30), TimeInForce::Ioc, cid)
            } else if !placed[t].is_empty() {
                let nth = rng.below(placed[t].len() as u64) as usize;
                let target = placed[t].swap_remove(nth);
                cancel_client_order(target)
            } else {
                continue;
            };
            nonces[t] += 1;
            let signed = sign(&keys[t], ChainId(CHAIN), nonces[t], action);
            futures::executor::block_on(local.submit(signed))
                .expect("admission accepts the workload's transactions");
        }
        local.clock().advance(1_000);
        blocks.push(local.commit_block().block.clone());
    }
    Chain {
        chain: local.hub().chain().clone(),
        genesis,
        blocks,
    }
}

fn index_chain(chain: &Chain, genesis: &Ledger) -> Vec<Arc<dex_api::BlockFeed>> {
    let mut index = ChainIndex::new(chain.chain.clone(), genesis, HubConfig::default());
    chain
        .blocks
        .iter()
        .map(|b| index.apply(b.clone()).expect("blocks in height order"))
        .collect()
}

fn bench_apply(c: &mut Criterion) {
    let chain = build_chain();
    let genesis = Ledger::from_genesis(&chain.genesis).expect("demo genesis is valid");
    let txs: usize = chain.blocks.iter().map(|b| b.block.txs.len()).sum();
    let mut group = c.benchmark_group("index");
    group.throughput(Throughput::Elements(txs as u64));
    group.sample_size(20);
    group.bench_function(format!("apply/blocks={BLOCKS},txs={BLOCK_TXS}"), |b| {
        b.iter_batched(
            || ChainIndex::new(chain.chain.clone(), &genesis, HubConfig::default()),
            |mut index| {
                for block in &chain.blocks {
                    black_box(index.apply(block.clone()).expect("blocks in height order"));
                }
                index
            },
            BatchSize::LargeInput,
        )
    });
    let steady = HubConfig {
        retained_orders: 5_000,
        retained_txs: 5_000,
        ..HubConfig::default()
    };
    let (warm, timed) = chain.blocks.split_at(BLOCKS / 2);
    let timed_txs: usize = timed.iter().map(|b| b.block.txs.len()).sum();
    group.throughput(Throughput::Elements(timed_txs as u64));
    group.bench_function(
        format!("apply_steady/blocks={},txs={BLOCK_TXS}", timed.len()),
        |b| {
            b.iter_batched(
                || {
                    let mut index = ChainIndex::new(chain.chain.clone(), &genesis, steady.clone());
                    for block in warm {
                        index.apply(block.clone()).expect("blocks in height order");
                    }
                    index
                },
                |mut index| {
                    for block in timed {
                        black_box(index.apply(block.clone()).expect("blocks in height order"));
                    }
                    index
                },
                BatchSize::LargeInput,
            )
        },
    );
    group.finish();

    // What subscribers and readers would get, hashed: must not change with the speed.
    let feeds = index_chain(&chain, &genesis);
    let mut hasher = blake3::Hasher::new();
    let mut fills = 0usize;
    let mut rejected = 0usize;
    for feed in &feeds {
        hasher.update(json(&feed.view).as_bytes());
        for book in &feed.books {
            hasher.update(json(book.as_ref()).as_bytes());
        }
        hasher.update(json(&feed.trades).as_bytes());
        hasher.update(json(&feed.fills).as_bytes());
        hasher.update(json(&feed.orders).as_bytes());
        fills += feed.fills.values().map(Vec::len).sum::<usize>();
        rejected += feed.view.txs.iter().filter(|t| !t.ok).count();
    }
    println!(
        "index digest: blocks={} txs={txs} fill views={fills} rejected txs={rejected} digest={}",
        feeds.len(),
        hasher.finalize().to_hex()
    );
}

/// A feed part as its JSON text (what WebSocket subscribers receive).
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("views serialize")
}

criterion_group!(benches, bench_apply);
criterion_main!(benches);
