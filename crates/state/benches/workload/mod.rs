//! The seeded block-execution workload shared by `benches/execute.rs` and
//! `examples/profile_block.rs`: 2,000 funded accounts, two markets with 2,000 resting
//! orders, and one block of 10,000 mixed transactions (see `benches/execute.rs`).

#![allow(dead_code)]

use dex_state::{Allocation, Genesis, Ledger, Limits};
use dex_types::{
    AccountId, Action, Amount, AssetId, AssetSpec, BatchLeg, CancelTarget, ChainId, ClientOrderId,
    Hash, MarketId, MarketSpec, ModifyOrder, OrderBatch, OrderRequest, OrderType, PriceTicks,
    SelfTradePrevention, Side, SignedTransaction, SizeLots, TimeInForce, TimestampMs, Transaction,
    Transfer,
};
use rust_decimal::Decimal;
use std::str::FromStr;

pub const CHAIN: ChainId = ChainId(1);
pub const ACCOUNTS: u64 = 2_000;
pub const BLOCK_TXS: usize = 10_000;
pub const MID: u64 = 100_000;

pub struct Seeded(pub u64);

impl Seeded {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn keypair(i: u64) -> dex_types::Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    seed[8] = 0xA5;
    dex_types::Keypair::from_seed(seed)
}

pub fn genesis(ids: &[AccountId]) -> Genesis {
    let d = |t: &str| Decimal::from_str(t).unwrap();
    let mut allocations = Vec::new();
    for id in ids {
        for asset in 0..3 {
            allocations.push(Allocation {
                account: *id,
                asset: AssetId(asset),
                amount: Amount(1_000_000_000_000_000),
            });
        }
    }
    let market = |id, base| MarketSpec {
        id: MarketId(id),
        base: AssetId(base),
        quote: AssetId(0),
        tick_size: d("0.01"),
        lot_size: d("0.0001"),
        min_size_lots: SizeLots(1),
        maker_fee_bps: -1,
        taker_fee_bps: 4,
    };
    let asset = |id, symbol: &str, decimals| AssetSpec {
        id: AssetId(id),
        symbol: symbol.into(),
        decimals,
    };
    Genesis {
        chain_id: CHAIN,
        genesis_time: TimestampMs(0),
        assets: vec![asset(0, "USDC", 6), asset(1, "BTC", 8), asset(2, "ETH", 8)],
        markets: vec![market(0, 1), market(1, 2)],
        allocations,
        fee_account: AccountId([0xFE; 32]),
        limits: Limits {
            max_open_orders_per_account: 1_000,
            ..Limits::default()
        },
    }
}

pub fn signed(account: AccountId, nonce: u64, action: Action) -> SignedTransaction {
    SignedTransaction {
        tx: Transaction {
            chain_id: CHAIN,
            account,
            signer: account,
            nonce,
            expires_at: TimestampMs(u64::MAX),
            action,
        },
        signature: [0; 64],
    }
}

pub fn single(req: OrderRequest) -> Action {
    Action::Batch(OrderBatch {
        legs: vec![BatchLeg::Place(req)],
        atomic: true,
    })
}

pub fn req(
    market: u32,
    side: Side,
    price: u64,
    size: u64,
    tif: TimeInForce,
    cid: u64,
) -> OrderRequest {
    OrderRequest {
        market: MarketId(market),
        client_order_id: Some(ClientOrderId(cid)),
        side,
        order_type: OrderType::Limit,
        price_ticks: PriceTicks(price),
        size_lots: SizeLots(size),
        time_in_force: tif,
        self_trade: SelfTradePrevention::CancelResting,
    }
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
    let mut rng = Seeded(42);
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
        let side = if rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
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
            single(req(
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
        let side = if rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let roll = rng.below(100);
        let action = if roll < 45 {
            let offset = 1 + rng.below(100);
            let price = if side == Side::Buy {
                MID - offset
            } else {
                MID + offset
            };
            let cid = next(&mut next_cid, a);
            single(req(
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
            single(req(
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
            single(r)
        } else if roll < 60 {
            let offset = 40 + rng.below(60);
            let price = if side == Side::Buy {
                MID - offset
            } else {
                MID + offset
            };
            let cid = next(&mut next_cid, a);
            single(req(
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
            let action = Action::Batch(OrderBatch {
                legs: vec![BatchLeg::Cancel(CancelTarget::ClientOrder(ClientOrderId(
                    cid,
                )))],
                atomic: true,
            });
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
