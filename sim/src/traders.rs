//! Simulated traders: funded accounts that sign orders, cancels and transfers at random
//! moments and hand them to a random validator over the simulated network.
//!
//! Prices wander around one mid price per market so that about half the orders cross and
//! fill; every order kind and self-trade mode appears. A trader does not learn what
//! happened to its orders, so some cancels name orders already filled, and some
//! transactions are refused by the ledger (that is part of the workload).

use crate::fixture::MARKETS;
use crate::rng::SimRng;
use dex_types::{
    Action, Amount, AssetId, BatchLeg, CancelTarget, ClientOrderId, Keypair, MarketId, OrderBatch,
    OrderRequest, OrderType, PriceTicks, SelfTradePrevention, Side, SignedTransaction, SizeLots,
    TimeInForce, TimestampMs, Transaction, Transfer,
};
use std::collections::VecDeque;

/// The mid price of every market, in ticks.
const MID_TICKS: u64 = 100_000;
/// How long a transaction stays valid after it is signed.
const TX_LIFETIME_MS: u64 = 20_000;
/// Client ids a trader remembers for cancels.
const REMEMBERED_ORDERS: usize = 32;

#[derive(Debug, Clone)]
struct Trader {
    key: Keypair,
    nonce: u64,
    next_client_id: u64,
    open: VecDeque<ClientOrderId>,
}

/// All traders of a run.
#[derive(Debug, Clone)]
pub struct Traders {
    traders: Vec<Trader>,
    /// Transactions signed so far.
    pub signed: u64,
}

impl Traders {
    /// Traders with these (funded) keys.
    pub fn new(keys: &[Keypair]) -> Traders {
        Traders {
            traders: keys
                .iter()
                .map(|key| Trader {
                    key: key.clone(),
                    nonce: 0,
                    next_client_id: 1,
                    open: VecDeque::new(),
                })
                .collect(),
            signed: 0,
        }
    }

    /// Number of traders.
    pub fn len(&self) -> usize {
        self.traders.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.traders.is_empty()
    }

    /// Trader `index` signs its next transaction at block time `now`.
    pub fn act(&mut self, index: usize, rng: &mut SimRng, now: TimestampMs) -> SignedTransaction {
        let others = self.traders.len();
        let recipient = self.traders[rng.index(others)].key.account_id();
        let trader = &mut self.traders[index];
        trader.nonce += 1;
        let roll = rng.below(100);
        let action = if roll < 20 && !trader.open.is_empty() {
            let pick = rng.index(trader.open.len());
            let id = trader.open.remove(pick).expect("bug: index in range");
            Action::Batch(OrderBatch {
                legs: vec![BatchLeg::Cancel(CancelTarget::ClientOrder(id))],
                atomic: true,
            })
        } else if roll < 24 {
            trader.open.clear();
            let market = MARKETS[rng.index(MARKETS.len())];
            Action::Batch(OrderBatch {
                legs: vec![BatchLeg::Cancel(CancelTarget::Market(market))],
                atomic: true,
            })
        } else if roll < 32 && recipient != trader.key.account_id() {
            let asset = AssetId(u32::try_from(rng.below(3)).expect("bug: small"));
            Action::Transfer(Transfer {
                to: recipient,
                asset,
                amount: Amount(u128::from(rng.between(1, 1_000))),
            })
        } else {
            let legs = if roll < 36 { 2 } else { 1 };
            let legs = (0..legs)
                .map(|_| BatchLeg::Place(order(trader, rng, now)))
                .collect();
            Action::Batch(OrderBatch {
                legs,
                atomic: rng.chance(500),
            })
        };
        self.signed += 1;
        let trader = &self.traders[index];
        trader
            .key
            .sign(Transaction {
                chain_id: crate::fixture::CHAIN,
                account: trader.key.account_id(),
                signer: trader.key.account_id(),
                nonce: trader.nonce,
                expires_at: TimestampMs(now.0 + TX_LIFETIME_MS),
                action,
            })
            .expect("bug: a trader signs its own transactions")
    }
}

fn order(trader: &mut Trader, rng: &mut SimRng, now: TimestampMs) -> OrderRequest {
    let market: MarketId = MARKETS[rng.index(MARKETS.len())];
    let side = if rng.chance(500) {
        Side::Buy
    } else {
        Side::Sell
    };
    let price = MID_TICKS + rng.between(0, 60) - 30;
    let (order_type, time_in_force) = match rng.below(10) {
        0 => (OrderType::Limit, TimeInForce::Ioc),
        1 => (OrderType::Limit, TimeInForce::Fok),
        2 => (OrderType::Limit, TimeInForce::PostOnly),
        3 => (
            OrderType::Limit,
            TimeInForce::Gtt {
                expires_at: TimestampMs(now.0 + rng.between(200, 5_000)),
            },
        ),
        4 => (OrderType::Market, TimeInForce::Ioc),
        _ => (OrderType::Limit, TimeInForce::Gtc),
    };
    let self_trade = match rng.below(4) {
        0 => SelfTradePrevention::CancelResting,
        1 => SelfTradePrevention::CancelIncoming,
        2 => SelfTradePrevention::CancelBoth,
        _ => SelfTradePrevention::DecrementAndCancel,
    };
    let client_order_id = ClientOrderId(trader.next_client_id);
    trader.next_client_id += 1;
    if trader.open.len() >= REMEMBERED_ORDERS {
        trader.open.pop_front();
    }
    trader.open.push_back(client_order_id);
    OrderRequest {
        market,
        client_order_id: Some(client_order_id),
        side,
        order_type,
        price_ticks: PriceTicks(price),
        size_lots: SizeLots(rng.between(1, 20)),
        time_in_force,
        self_trade,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traders_sign_valid_transactions_with_rising_nonces() {
        let mut rng = SimRng::new(9);
        let keys: Vec<Keypair> = (0..3).map(|_| Keypair::from_seed(rng.bytes32())).collect();
        let mut traders = Traders::new(&keys);
        let mut kinds = std::collections::BTreeSet::new();
        for round in 1..=200u64 {
            let tx = traders.act(1, &mut rng, TimestampMs(5_000));
            tx.verify().unwrap();
            tx.tx.validate().unwrap();
            assert_eq!(tx.tx.nonce, round);
            assert_eq!(tx.tx.account, keys[1].account_id());
            kinds.insert(tx.tx.action.name());
        }
        assert!(kinds.len() >= 2, "{kinds:?}");
        assert_eq!(traders.signed, 200);
    }
}
