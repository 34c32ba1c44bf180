//! Orders and the transactions that carry them.

use dex_types::{
    AccountId, Action, Amount, AssetId, BatchLeg, CancelTarget, ChainId, ClientOrderId, Keypair,
    MarketId, OrderBatch, OrderRequest, OrderType, PriceTicks, SelfTradePrevention, Side,
    SignedTransaction, SizeLots, TimeInForce, TimestampMs, Transaction, Transfer,
};

/// A limit order with client order id `client_id`; a self-trade cancels the resting order
/// (what market makers usually ask for).
pub fn limit(
    market: MarketId,
    side: Side,
    price_ticks: u64,
    size_lots: u64,
    time_in_force: TimeInForce,
    client_id: u64,
) -> OrderRequest {
    OrderRequest {
        market,
        client_order_id: Some(ClientOrderId(client_id)),
        side,
        order_type: OrderType::Limit,
        price_ticks: PriceTicks(price_ticks),
        size_lots: SizeLots(size_lots),
        time_in_force,
        self_trade: SelfTradePrevention::CancelResting,
    }
}

/// Place one order: a batch of one leg (atomic, which for one leg changes nothing).
pub fn place(order: OrderRequest) -> Action {
    single_leg(BatchLeg::Place(order))
}

/// Cancel the signer's order with client order id `client_id`: a batch of one leg.
pub fn cancel_client_order(client_id: u64) -> Action {
    single_leg(BatchLeg::Cancel(CancelTarget::ClientOrder(ClientOrderId(
        client_id,
    ))))
}

fn single_leg(leg: BatchLeg) -> Action {
    Action::Batch(OrderBatch {
        legs: vec![leg],
        atomic: true,
    })
}

/// `account`'s transaction `nonce` carrying `action`, signed by the account's own key and
/// never expiring (a workload's transactions must not go stale while a benchmark runs).
pub fn transaction(
    chain_id: ChainId,
    account: AccountId,
    nonce: u64,
    action: Action,
) -> Transaction {
    Transaction {
        chain_id,
        account,
        signer: account,
        nonce,
        expires_at: TimestampMs(u64::MAX),
        action,
    }
}

/// [`transaction`] for `key`'s account, signed by `key`.
pub fn sign(key: &Keypair, chain_id: ChainId, nonce: u64, action: Action) -> SignedTransaction {
    key.sign(transaction(chain_id, key.account_id(), nonce, action))
        .expect("bug: a key signs for its own account")
}

/// `key`'s transfer of `amount` of asset 0 to `to` (transaction `nonce` on `chain_id`),
/// signed: the smallest valid transaction, for tests of signature checks and admission.
pub fn transfer(
    key: &Keypair,
    chain_id: ChainId,
    nonce: u64,
    to: AccountId,
    amount: u128,
) -> SignedTransaction {
    sign(
        key,
        chain_id,
        nonce,
        Action::Transfer(Transfer {
            to,
            asset: AssetId(0),
            amount: Amount(amount),
        }),
    )
}

/// [`transaction`] with an all-zero signature, for execution workloads: the ledger takes
/// transactions whose signatures were checked before, so their accounts need not even be
/// keys, and signing would only slow the set-up.
pub fn unsigned(
    chain_id: ChainId,
    account: AccountId,
    nonce: u64,
    action: Action,
) -> SignedTransaction {
    SignedTransaction {
        tx: transaction(chain_id, account, nonce, action),
        signature: [0; 64],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BTC_USDC, ETH_USDC, trader_key};

    #[test]
    fn signed_orders_verify_and_tampering_breaks_them() {
        let key = trader_key(0x71, 3);
        let order = limit(BTC_USDC, Side::Buy, 999, 7, TimeInForce::Gtc, 12);
        let signed = sign(&key, ChainId(8), 1, place(order));
        signed.verify().expect("a trader's signature verifies");
        assert_eq!(signed.tx.signer, key.account_id());
        assert_eq!(signed.tx.account, key.account_id());
        assert_eq!(signed.tx.expires_at, TimestampMs(u64::MAX));
        let Action::Batch(batch) = &signed.tx.action else {
            panic!("a placement is a batch");
        };
        assert_eq!(batch.legs, vec![BatchLeg::Place(order)]);

        let mut tampered = signed.clone();
        tampered.tx.nonce = 2;
        assert!(tampered.verify().is_err());
        let cancel = sign(&key, ChainId(8), 2, cancel_client_order(12));
        cancel.verify().expect("a cancel's signature verifies");
        assert_ne!(cancel.hash(), signed.hash());
        let to = trader_key(0x71, 4).account_id();
        let moved = transfer(&key, ChainId(8), 3, to, 5);
        moved.verify().expect("a transfer's signature verifies");
        assert_eq!(
            moved.tx.action,
            Action::Transfer(Transfer {
                to,
                asset: AssetId(0),
                amount: Amount(5)
            })
        );
    }

    #[test]
    fn signing_is_deterministic() {
        let key = trader_key(0x3C, 0);
        let action = || {
            place(limit(
                ETH_USDC,
                Side::Sell,
                10_010,
                1,
                TimeInForce::PostOnly,
                1,
            ))
        };
        let one = sign(&key, ChainId(1), 1, action());
        let two = sign(&key, ChainId(1), 1, action());
        assert_eq!(one.encode(), two.encode());
    }

    #[test]
    fn unsigned_transactions_do_not_verify() {
        let key = trader_key(0x71, 0);
        let tx = unsigned(ChainId(1), key.account_id(), 1, cancel_client_order(1));
        assert_eq!(
            tx.tx,
            transaction(ChainId(1), key.account_id(), 1, cancel_client_order(1))
        );
        assert!(tx.verify().is_err());
    }
}
