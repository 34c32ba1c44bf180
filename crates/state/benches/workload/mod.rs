//! The seeded block-execution workload shared by `benches/execute.rs` and
//! `examples/profile_block.rs`: 2,000 funded accounts, two markets with 2,000 resting
//! orders, and one block of 10,000 mixed transactions (see `benches/execute.rs`).

#![allow(dead_code)]

use dex_state::{Genesis, Ledger, Limits};
use dex_types::{
    AccountId, Action, Amount, AssetId, ChainId, Hash, MarketId, ModifyOrder, OrderRequest,
    OrderType, Side, SignedTransaction, SizeLots, TimeInForce, TimestampMs, Transfer,
};
use dex_workload::{SplitMix64, cancel_client_order, limit, place, two_market_genesis, unsigned};

pub const CHAIN: ChainId = ChainId(1);
pub const ACCOUNTS: u64 = 2_000;
pub const BLOCK_TXS: usize = 10_000;
pub const MID: u64 = 100_000;

/// The genesis: every account funded with 10^18 units of each asset, two markets, and room
/// for 1,000 open orders per account.
pub fn genesis(ids: &[AccountId]) -> Genesis {
    let mut genesis = two_market_genesis(CHAIN, TimestampMs(0), ids, Amount(1_000_000_000_000_000));
    genesis.limits = Limits {
        max_open_orders_per_account: 1_000,
        ..Limits::default()
    };
    genesis
}

/// `account`'s transaction `nonce`, unsigned: execution takes pre-verified transactions.
pub fn signed(account: AccountId, nonce: u64, action: Action) -> SignedTransaction {
    unsigned(CHAIN, account, nonce, action)
}

/// A limit order on market `market` (see `dex_workload::limit`).
pub fn req(
    market: u32,
    side: Side,
    price: u64,
    size: u64,
    tif: TimeInForce,
    cid: u64,
) -> OrderRequest {
    limit(MarketId(market), side, price, size, tif, cid)
}

pub struct Workload {
    pub prepared: Ledger,
    pub block: Vec<SignedTransaction>,
    /// The transaction ids, as the node has them from signature checking.
    pub ids: Vec<Hash>,
    pub parent: Hash,
}

/// The standard workload: 2,000 accounts, 2,000 seeded resting orders, a block of 10,000.
pub fn workload() -> Workload {
    workload_sized(ACCOUNTS, 2_000, BLOCK_TXS)
}

/// The same generator at another size: `accounts` funded accounts, `seeded` resting-order
/// placements, then a block of `block_txs` mixed transactions. The standard sizes give the
/// standard workload exactly (the generator draws the same numbers).
pub fn workload_sized(accounts: u64, seeded: usize, block_txs: usize) -> Workload {
    let mut rng = SplitMix64::new(42);
    let ids: Vec<AccountId> = (0..accounts)
        .map(|i| AccountId([(i % 251) as u8; 32]).with_index(i))
        .collect();
    let mut ledger = Ledger::from_genesis(&genesis(&ids)).unwrap();
    let mut nonces = vec![0u64; ids.len()];
    let mut next_cid = vec![0u64; ids.len()];
    let next = |v: &mut Vec<u64>, a: usize| {
        v[a] += 1;
        v[a]
    };
    // Seed both books: `seeded` resting orders within 100 ticks of the mid.
    let mut seed_txs = Vec::new();
    let mut resting: Vec<(usize, u64)> = Vec::new();
    for _ in 0..seeded {
        let a = rng.below(accounts) as usize;
        let side = rng.side();
        let offset = 1 + rng.below(100);
        let price = if side == Side::Buy {
            MID - offset
        } else {
            MID + offset
        };
        let cid = next(&mut next_cid, a);
        let market = rng.below(2) as u32;
        let tx = signed(
            ids[a],
            next(&mut nonces, a),
            place(req(
                market,
                side,
                price,
                1 + rng.below(20),
                TimeInForce::Gtc,
                cid,
            )),
        );
        seed_txs.push(tx);
        resting.push((a, cid));
    }
    let r = ledger
        .execute_block(Hash::ZERO, TimestampMs(1), &seed_txs)
        .unwrap();
    assert!(r.outcomes.iter().all(|o| o.result.is_ok()));
    let open: Vec<_> = ledger
        .open_orders()
        .into_iter()
        .map(|o| (o.owner, o.id))
        .collect();

    let mut block = Vec::with_capacity(block_txs);
    let mut cancel_cursor = 0;
    for i in 0..block_txs {
        let a = rng.below(accounts) as usize;
        let market = rng.below(2) as u32;
        let side = rng.side();
        let roll = rng.below(100);
        let action = if roll < 45 {
            let offset = 1 + rng.below(100);
            let price = if side == Side::Buy {
                MID - offset
            } else {
                MID + offset
            };
            let cid = next(&mut next_cid, a);
            place(req(
                market,
                side,
                price,
                1 + rng.below(20),
                TimeInForce::Gtc,
                cid,
            ))
        } else if roll < 55 {
            let price = if side == Side::Buy {
                MID + 30
            } else {
                MID - 30
            };
            let cid = next(&mut next_cid, a);
            place(req(
                market,
                side,
                price,
                1 + rng.below(10),
                TimeInForce::Ioc,
                cid,
            ))
        } else if roll < 57 {
            let price = if side == Side::Buy {
                MID + 200
            } else {
                MID - 200
            };
            let cid = next(&mut next_cid, a);
            let mut r = req(
                market,
                side,
                price,
                1 + rng.below(10),
                TimeInForce::Ioc,
                cid,
            );
            r.order_type = OrderType::Market;
            place(r)
        } else if roll < 60 {
            let offset = 40 + rng.below(60);
            let price = if side == Side::Buy {
                MID - offset
            } else {
                MID + offset
            };
            let cid = next(&mut next_cid, a);
            place(req(
                market,
                side,
                price,
                1 + rng.below(20),
                TimeInForce::PostOnly,
                cid,
            ))
        } else if roll < 90 {
            // Cancel a seeded order by its client id (its owner signs).
            let (owner, cid) = resting[cancel_cursor % resting.len()];
            cancel_cursor += 1;
            let action = cancel_client_order(cid);
            block.push(signed(ids[owner], next(&mut nonces, owner), action));
            continue;
        } else if roll < 95 {
            let (owner, id) = open[(i * 7) % open.len()];
            let owner = owner.0 as usize - 1; // index 0 is the fee account
            let action = Action::Modify(ModifyOrder {
                order_id: id,
                price_ticks: None,
                size_lots: Some(SizeLots(1)),
            });
            block.push(signed(ids[owner], next(&mut nonces, owner), action));
            continue;
        } else {
            let to = ids[rng.below(accounts) as usize];
            Action::Transfer(Transfer {
                to,
                asset: AssetId(0),
                amount: Amount(1 + u128::from(rng.below(1_000))),
            })
        };
        block.push(signed(ids[a], next(&mut nonces, a), action));
    }
    Workload {
        prepared: ledger,
        ids: block.iter().map(SignedTransaction::hash).collect(),
        block,
        parent: Hash([7; 32]),
    }
}

/// Distinct account keys for the workload (they need not be curve points: execution takes
/// pre-verified transactions).
trait WithIndex {
    fn with_index(self, i: u64) -> AccountId;
}

impl WithIndex for AccountId {
    fn with_index(mut self, i: u64) -> AccountId {
        self.0[..8].copy_from_slice(&i.to_le_bytes());
        self
    }
}
