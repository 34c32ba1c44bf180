//! Tests of the ledger: helpers here, unit tests in `execution`, property tests in
//! `properties`.

mod execution;
mod properties;

use crate::{Allocation, Genesis, Ledger, Limits};
use dex_types::{
    AccountId, Action, Amount, AssetId, AssetSpec, BatchLeg, CancelTarget, ChainId, ClientOrderId,
    Domain, Hash, MarketId, MarketSpec, OrderBatch, OrderRequest, OrderType, PriceTicks,
    SelfTradePrevention, Side, SignedTransaction, SizeLots, TimeInForce, TimestampMs, Transaction,
};
use rust_decimal::Decimal;
use std::str::FromStr;

pub const CHAIN: ChainId = ChainId(7);
pub const USDC: AssetId = AssetId(0);
pub const BTC: AssetId = AssetId(1);
pub const ETH: AssetId = AssetId(2);
pub const BTC_USDC: MarketId = MarketId(0);
pub const ETH_USDC: MarketId = MarketId(1);
/// Far in the future: transactions in tests do not expire unless a test says so.
pub const NEVER: TimestampMs = TimestampMs(u64::MAX);

/// A deterministic account key (execution takes pre-verified transactions, so the key
/// need not be a valid curve point).
pub fn key(n: u64) -> AccountId {
    AccountId(Hash::of(Domain::Other, &[b"test-account", &n.to_le_bytes()]).0)
}

pub fn fee_account() -> AccountId {
    key(u64::MAX)
}

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// BTC/USDC (tick 0.01, lot 0.0001: 10_000 sats per lot, 1 micro-USDC per tick-lot) and
/// ETH/USDC, with a maker rebate.
pub fn markets(maker_bps: i32, taker_bps: i32) -> Vec<MarketSpec> {
    vec![
        MarketSpec {
            id: BTC_USDC,
            base: BTC,
            quote: USDC,
            tick_size: d("0.01"),
            lot_size: d("0.0001"),
            min_size_lots: SizeLots(1),
            maker_fee_bps: maker_bps,
            taker_fee_bps: taker_bps,
        },
        MarketSpec {
            id: ETH_USDC,
            base: ETH,
            quote: USDC,
            tick_size: d("0.01"),
            lot_size: d("0.001"),
            min_size_lots: SizeLots(5),
            maker_fee_bps: 0,
            taker_fee_bps: 10,
        },
    ]
}

pub fn assets() -> Vec<AssetSpec> {
    vec![
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
        AssetSpec {
            id: ETH,
            symbol: "ETH".into(),
            decimals: 8,
        },
    ]
}

/// Accounts `0..n` each funded with `amount` of every asset.
pub fn genesis(n: u64, amount: u128) -> Genesis {
    let mut allocations = Vec::new();
    for i in 0..n {
        for asset in [USDC, BTC, ETH] {
            allocations.push(Allocation {
                account: key(i),
                asset,
                amount: Amount(amount),
            });
        }
    }
    Genesis {
        chain_id: CHAIN,
        genesis_time: TimestampMs(1_000),
        assets: assets(),
        markets: markets(-2, 5),
        allocations,
        fee_account: fee_account(),
        limits: Limits {
            max_open_orders_per_account: 50,
            max_agents_per_account: 4,
            max_book_orders: 10_000,
            max_order_size_lots: SizeLots(1 << 40),
            max_price_ticks: PriceTicks(1 << 40),
            max_accounts: 1_000,
        },
    }
}

pub fn ledger(n: u64) -> Ledger {
    Ledger::from_genesis(&genesis(n, 1_000_000_000_000)).unwrap()
}

/// A transaction signed (notionally) by the account itself, with a zero signature:
/// execution takes pre-verified transactions.
pub fn tx(account: u64, nonce: u64, action: Action) -> SignedTransaction {
    SignedTransaction {
        tx: Transaction {
            chain_id: CHAIN,
            account: key(account),
            signer: key(account),
            nonce,
            expires_at: NEVER,
            action,
        },
        signature: [0; 64],
    }
}

/// A transaction of `account` signed by agent key `agent`.
pub fn agent_tx(account: u64, agent: u64, nonce: u64, action: Action) -> SignedTransaction {
    let mut t = tx(account, nonce, action);
    t.tx.signer = key(agent);
    t
}

pub fn order(
    market: MarketId,
    side: Side,
    price: u64,
    size: u64,
    tif: TimeInForce,
) -> OrderRequest {
    OrderRequest {
        market,
        client_order_id: None,
        side,
        order_type: OrderType::Limit,
        price_ticks: PriceTicks(price),
        size_lots: SizeLots(size),
        time_in_force: tif,
        self_trade: SelfTradePrevention::CancelResting,
    }
}

pub fn place(req: OrderRequest) -> Action {
    Action::Batch(OrderBatch {
        legs: vec![BatchLeg::Place(req)],
        atomic: true,
    })
}

pub fn limit(market: MarketId, side: Side, price: u64, size: u64) -> Action {
    place(order(market, side, price, size, TimeInForce::Gtc))
}

pub fn cancel(target: CancelTarget) -> Action {
    Action::Batch(OrderBatch {
        legs: vec![BatchLeg::Cancel(target)],
        atomic: true,
    })
}

pub fn with_cid(mut req: OrderRequest, cid: u64) -> OrderRequest {
    req.client_order_id = Some(ClientOrderId(cid));
    req
}
