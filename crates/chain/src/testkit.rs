//! Fixtures of the unit tests: a small funded genesis with real keys, validators, and
//! signed transactions.

use crate::execute::BlockRules;
use dex_consensus::ValidatorSet;
use dex_state::{Allocation, Genesis, Ledger, Limits};
use dex_types::{
    AccountId, Action, Amount, AssetId, AssetSpec, BatchLeg, ChainId, Keypair, MarketId,
    MarketSpec, OrderBatch, OrderRequest, OrderType, PriceTicks, ScheduleCancelAll,
    SelfTradePrevention, Side, SignedTransaction, SizeLots, TimeInForce, TimestampMs, Transaction,
    Transfer,
};
use ed25519_dalek::SigningKey;
use rust_decimal::Decimal;

pub const CHAIN: ChainId = ChainId(17);
pub const GENESIS_TIME: TimestampMs = TimestampMs(1_000_000);
pub const USDC: AssetId = AssetId(0);
pub const BTC: AssetId = AssetId(1);
pub const BTC_USDC: MarketId = MarketId(0);
pub const TRADERS: u64 = 8;

/// Trader `n`'s key (funded for `n < TRADERS`).
pub fn trader(n: u64) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    seed[31] = 0x7a;
    Keypair::from_seed(seed)
}

pub fn unfunded_key() -> Keypair {
    trader(1_000)
}

pub fn validator_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[u8::try_from(i).unwrap() + 100; 32])
}

pub fn validator_set(n: usize) -> ValidatorSet {
    ValidatorSet::new((0..n).map(|i| (validator_key(i).verifying_key().to_bytes(), 1))).unwrap()
}

/// The account of validator key `i` (a valid block proposer).
pub fn proposer(i: usize) -> AccountId {
    AccountId(validator_key(i).verifying_key().to_bytes())
}

pub fn genesis() -> Genesis {
    let mut allocations = Vec::new();
    for n in 0..TRADERS {
        for asset in [USDC, BTC] {
            allocations.push(Allocation {
                account: trader(n).account_id(),
                asset,
                amount: Amount(1_000_000_000_000),
            });
        }
    }
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
            tick_size: Decimal::new(1, 2),
            lot_size: Decimal::new(1, 4),
            min_size_lots: SizeLots(1),
            maker_fee_bps: 0,
            taker_fee_bps: 5,
        }],
        allocations,
        fee_account: trader(999).account_id(),
        limits: Limits {
            max_open_orders_per_account: 100,
            max_agents_per_account: 2,
            max_book_orders: 10_000,
            max_order_size_lots: SizeLots(1 << 30),
            max_price_ticks: PriceTicks(1 << 30),
            max_accounts: 1_000,
        },
    }
}

pub fn ledger() -> Ledger {
    Ledger::from_genesis(&genesis()).unwrap()
}

pub fn rules() -> BlockRules {
    BlockRules {
        chain_id: CHAIN,
        txs_max: 64,
        time_ahead_max_ms: 1_000,
    }
}

fn signed(key: &Keypair, nonce: u64, action: Action) -> SignedTransaction {
    key.sign(Transaction {
        chain_id: CHAIN,
        account: key.account_id(),
        signer: key.account_id(),
        nonce,
        expires_at: TimestampMs(GENESIS_TIME.0 + 10_000_000),
        action,
    })
    .unwrap()
}

/// A transfer of 5 micro-USDC from `key` to trader 0.
pub fn transfer_from(key: Keypair, nonce: u64) -> SignedTransaction {
    signed(
        &key,
        nonce,
        Action::Transfer(Transfer {
            to: trader(0).account_id(),
            asset: USDC,
            amount: Amount(5),
        }),
    )
}

/// A transfer from trader `n` to trader `n + 1`.
pub fn transfer(n: u64, nonce: u64) -> SignedTransaction {
    let key = trader(n);
    signed(
        &key,
        nonce,
        Action::Transfer(Transfer {
            to: trader(n + 1).account_id(),
            asset: USDC,
            amount: Amount(5),
        }),
    )
}

/// A resting limit order of trader `n`: buys at 100 ticks for even `n`, sells at 99 for odd.
pub fn order(n: u64, nonce: u64) -> SignedTransaction {
    let (side, price) = if n.is_multiple_of(2) {
        (Side::Buy, 100)
    } else {
        (Side::Sell, 99)
    };
    signed(
        &trader(n),
        nonce,
        Action::Batch(OrderBatch {
            legs: vec![BatchLeg::Place(OrderRequest {
                market: BTC_USDC,
                client_order_id: None,
                side,
                order_type: OrderType::Limit,
                price_ticks: PriceTicks(price),
                size_lots: SizeLots(3),
                time_in_force: TimeInForce::Gtc,
                self_trade: SelfTradePrevention::CancelResting,
            })],
            atomic: true,
        }),
    )
}

/// Trader `n` arms its dead-man switch far in the future (a priority-lane transaction).
pub fn dead_man_switch(n: u64, nonce: u64) -> SignedTransaction {
    signed(
        &trader(n),
        nonce,
        Action::ScheduleCancelAll(ScheduleCancelAll {
            at: Some(TimestampMs(GENESIS_TIME.0 + 1_000_000_000)),
        }),
    )
}
