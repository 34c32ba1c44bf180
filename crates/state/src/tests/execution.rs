//! Unit tests: every rejection, settlement and fees, agents, the dead-man switch, batches,
//! canonical order, proofs and snapshots.

use super::*;
use crate::events::{CancelCause, CommittedItem, FeePaid, LedgerEvent};
use crate::{
    Balance, BlockResult, Ledger, NonceError, Rejection, verify_balance_proof, verify_fill_proof,
};
use dex_types::{
    Action, AgentPolicy, ApproveAgent, BatchLeg, CancelTarget, ClientOrderId, MarketScope,
    ModifyOrder, OrderBatch, OrderId, OrderType, RevokeAgent, ScheduleCancelAll, Transfer,
    Withdraw,
};

fn parent(height: u64) -> Hash {
    Hash::of(Domain::Other, &[b"parent", &height.to_le_bytes()])
}

fn run(ledger: &mut Ledger, time: u64, txs: &[SignedTransaction]) -> BlockResult {
    let result = ledger
        .execute_block(parent(ledger.height()), TimestampMs(time), txs)
        .unwrap();
    ledger.check_invariants().unwrap();
    result
}

/// The outcome of a block of one transaction.
fn run_one(ledger: &mut Ledger, time: u64, t: SignedTransaction) -> (Result<(), Rejection>, bool) {
    let r = run(ledger, time, &[t]);
    (r.outcomes[0].result.clone(), r.outcomes[0].nonce_consumed)
}

fn reject(ledger: &mut Ledger, t: SignedTransaction) -> Rejection {
    let before: Vec<Vec<Balance>> = ledger
        .accounts()
        .iter()
        .map(|a| a.balances.clone())
        .collect();
    let orders = ledger.open_orders().len();
    let time = ledger.last_block_time().0.max(2_000);
    let (r, _) = run_one(ledger, time, t);
    let after: Vec<Vec<Balance>> = ledger
        .accounts()
        .iter()
        .map(|a| a.balances.clone())
        .collect();
    assert_eq!(before, after, "a rejection changed a balance");
    assert_eq!(
        orders,
        ledger.open_orders().len(),
        "a rejection changed the orders"
    );
    r.expect_err("expected a rejection")
}

fn free(ledger: &Ledger, n: u64, asset: AssetId) -> u128 {
    ledger.balance(&key(n), asset).free
}

fn locked(ledger: &Ledger, n: u64, asset: AssetId) -> u128 {
    ledger.balance(&key(n), asset).locked
}

const FUNDS: u128 = 1_000_000_000_000;

#[test]
fn genesis_indexes_fee_account_first_then_allocations_in_order() {
    let l = ledger(3);
    assert_eq!(l.accounts()[0].id, fee_account());
    for i in 0..3 {
        assert_eq!(l.accounts()[i as usize + 1].id, key(i));
        assert_eq!(free(&l, i, BTC), FUNDS);
    }
    assert_ne!(l.state_root(), Hash::ZERO);
}

#[test]
fn genesis_rejects_bad_input() {
    let mut g = genesis(1, 1);
    g.markets[0].maker_fee_bps = -6;
    assert!(matches!(
        Ledger::from_genesis(&g),
        Err(crate::GenesisError::Market { .. })
    ));
    let mut g = genesis(1, 1);
    g.allocations[0].amount = Amount(0);
    assert!(matches!(
        Ledger::from_genesis(&g),
        Err(crate::GenesisError::ZeroAllocation { .. })
    ));
    let mut g = genesis(2, u128::MAX / 2 + 1);
    g.allocations.truncate(4);
    assert!(matches!(
        Ledger::from_genesis(&g),
        Err(crate::GenesisError::SupplyOverflow { .. })
    ));
    let mut g = genesis(1, 1);
    g.limits.max_price_ticks = PriceTicks(u64::MAX);
    g.limits.max_order_size_lots = SizeLots(1 << 40);
    g.markets[0].tick_size = d("1000000");
    assert!(matches!(
        Ledger::from_genesis(&g),
        Err(crate::GenesisError::MarketLimitsOverflow { .. })
    ));
    let mut g = genesis(1, 1);
    g.markets.swap(0, 1);
    assert!(matches!(
        Ledger::from_genesis(&g),
        Err(crate::GenesisError::MarketOrder { .. })
    ));
}

#[test]
fn transfer_moves_free_funds_and_creates_the_recipient() {
    let mut l = ledger(2);
    let action = Action::Transfer(Transfer {
        to: key(99),
        asset: USDC,
        amount: Amount(500),
    });
    let (r, consumed) = run_one(&mut l, 2_000, tx(0, 1, action));
    assert_eq!(r, Ok(()));
    assert!(consumed);
    assert_eq!(free(&l, 0, USDC), FUNDS - 500);
    assert_eq!(free(&l, 99, USDC), 500);
    assert_eq!(l.account(&key(99)).unwrap().index.0, 3);
}

#[test]
fn envelope_rejections_do_not_consume_the_nonce() {
    let mut l = ledger(2);
    let mut t = tx(0, 1, limit(BTC_USDC, Side::Buy, 100, 1));
    t.tx.chain_id = ChainId(8);
    assert!(matches!(reject(&mut l, t), Rejection::WrongChain { .. }));
    let mut t = tx(0, 1, limit(BTC_USDC, Side::Buy, 100, 1));
    t.tx.expires_at = TimestampMs(1_999);
    assert!(matches!(reject(&mut l, t), Rejection::Expired { .. }));
    assert!(matches!(
        reject(&mut l, tx(50, 1, limit(BTC_USDC, Side::Buy, 100, 1))),
        Rejection::UnknownAccount { .. }
    ));
    assert!(matches!(
        reject(
            &mut l,
            agent_tx(0, 7, 1, limit(BTC_USDC, Side::Buy, 100, 1))
        ),
        Rejection::NotAnAgent { .. }
    ));
    assert!(matches!(
        reject(&mut l, tx(0, 1, limit(BTC_USDC, Side::Buy, 0, 1))),
        Rejection::Invalid(_)
    ));
    assert!(l.account(&key(0)).unwrap().nonces.used().is_empty());
    // The same nonce still works.
    assert_eq!(
        run_one(&mut l, 2_000, tx(0, 1, limit(BTC_USDC, Side::Buy, 100, 1))).0,
        Ok(())
    );
}

#[test]
fn replayed_and_too_old_nonces_are_rejected() {
    let mut l = ledger(1);
    let t = tx(0, 5, limit(BTC_USDC, Side::Buy, 100, 1));
    assert_eq!(run_one(&mut l, 2_000, t.clone()).0, Ok(()));
    assert_eq!(
        reject(&mut l, t),
        Rejection::Nonce(NonceError::Replayed { nonce: 5 })
    );
    // Fill the window with 64 higher nonces (cheap transactions: schedule cancel-all).
    let txs: Vec<_> = (100..164)
        .map(|n| {
            tx(
                0,
                n,
                Action::ScheduleCancelAll(ScheduleCancelAll { at: None }),
            )
        })
        .collect();
    run(&mut l, 2_000, &txs);
    assert!(matches!(
        reject(&mut l, tx(0, 6, limit(BTC_USDC, Side::Buy, 100, 1))),
        Rejection::Nonce(NonceError::TooOld { .. })
    ));
}

#[test]
fn order_rejections_consume_the_nonce_and_change_no_balance() {
    let mut l = ledger(2);
    type Expect = fn(&Rejection) -> bool;
    let cases: Vec<(Action, Expect)> = vec![
        (limit(MarketId(9), Side::Buy, 100, 1), |r| {
            matches!(r, Rejection::UnknownMarket { .. })
        }),
        (limit(ETH_USDC, Side::Buy, 100, 4), |r| {
            matches!(r, Rejection::SizeBelowMinimum { .. })
        }),
        (limit(BTC_USDC, Side::Buy, 1, (1 << 40) + 1), |r| {
            matches!(r, Rejection::SizeTooLarge { .. })
        }),
        (limit(BTC_USDC, Side::Buy, (1 << 40) + 1, 1), |r| {
            matches!(r, Rejection::PriceTooHigh { .. })
        }),
        (limit(BTC_USDC, Side::Buy, 1 << 30, 1 << 30), |r| {
            matches!(r, Rejection::InsufficientFunds { .. })
        }),
        (limit(BTC_USDC, Side::Sell, 100, FUNDS as u64), |r| {
            matches!(r, Rejection::InsufficientFunds { .. })
        }),
        (
            place(order(
                BTC_USDC,
                Side::Buy,
                100,
                1,
                TimeInForce::Gtt {
                    expires_at: TimestampMs(2_000),
                },
            )),
            |r| matches!(r, Rejection::OrderAlreadyExpired { .. }),
        ),
        (cancel(CancelTarget::Order(OrderId(12345))), |r| {
            matches!(r, Rejection::UnknownOrder { .. })
        }),
        (cancel(CancelTarget::ClientOrder(ClientOrderId(5))), |r| {
            matches!(r, Rejection::UnknownClientOrder { .. })
        }),
        (cancel(CancelTarget::Market(MarketId(9))), |r| {
            matches!(r, Rejection::UnknownMarket { .. })
        }),
        (
            Action::Modify(ModifyOrder {
                order_id: OrderId(777),
                price_ticks: Some(PriceTicks(5)),
                size_lots: None,
            }),
            |r| matches!(r, Rejection::UnknownOrder { .. }),
        ),
        (
            Action::Transfer(Transfer {
                to: key(1),
                asset: AssetId(9),
                amount: Amount(1),
            }),
            |r| matches!(r, Rejection::UnknownAsset { .. }),
        ),
        (
            Action::Transfer(Transfer {
                to: key(1),
                asset: USDC,
                amount: Amount(FUNDS + 1),
            }),
            |r| matches!(r, Rejection::InsufficientFunds { .. }),
        ),
        (
            Action::Withdraw(Withdraw {
                asset: BTC,
                amount: Amount(FUNDS + 1),
                destination: vec![1],
            }),
            |r| matches!(r, Rejection::InsufficientFunds { .. }),
        ),
        (Action::RevokeAgent(RevokeAgent { agent: key(5) }), |r| {
            matches!(r, Rejection::UnknownAgent { .. })
        }),
    ];
    for (nonce, (action, expect)) in cases.into_iter().enumerate() {
        let nonce = nonce as u64 + 1;
        let r = reject(&mut l, tx(0, nonce, action.clone()));
        assert!(expect(&r), "{action:?} gave {r:?}");
        assert!(r.consumes_nonce());
        assert!(l.account(&key(0)).unwrap().nonces.used().contains(&nonce));
    }
}

#[test]
fn post_only_duplicate_client_id_and_open_order_limit() {
    let mut l = ledger(2);
    run(
        &mut l,
        2_000,
        &[tx(1, 1, limit(BTC_USDC, Side::Sell, 100, 5))],
    );
    let r = reject(
        &mut l,
        tx(
            0,
            1,
            place(order(BTC_USDC, Side::Buy, 100, 1, TimeInForce::PostOnly)),
        ),
    );
    assert_eq!(r, Rejection::PostOnlyWouldCross);
    run(
        &mut l,
        2_000,
        &[tx(
            0,
            2,
            place(with_cid(
                order(BTC_USDC, Side::Buy, 90, 1, TimeInForce::Gtc),
                42,
            )),
        )],
    );
    let r = reject(
        &mut l,
        tx(
            0,
            3,
            place(with_cid(
                order(BTC_USDC, Side::Buy, 91, 1, TimeInForce::Gtc),
                42,
            )),
        ),
    );
    assert!(matches!(r, Rejection::DuplicateClientOrderId { .. }));
    // Fill up to the limit of 50 open orders.
    let txs: Vec<_> = (0..49)
        .map(|i| tx(0, 10 + i, limit(BTC_USDC, Side::Buy, 50, 1)))
        .collect();
    run(&mut l, 2_000, &txs);
    assert_eq!(l.account(&key(0)).unwrap().open_orders, 50);
    let r = reject(&mut l, tx(0, 100, limit(BTC_USDC, Side::Buy, 50, 1)));
    assert_eq!(r, Rejection::TooManyOpenOrders { max: 50 });
    // An order that cannot rest is not limited.
    let ioc = place(order(BTC_USDC, Side::Buy, 50, 1, TimeInForce::Ioc));
    assert_eq!(run_one(&mut l, 2_000, tx(0, 101, ioc)).0, Ok(()));
    // A cancelled client id is free again.
    run(
        &mut l,
        2_000,
        &[tx(
            0,
            102,
            cancel(CancelTarget::ClientOrder(ClientOrderId(42))),
        )],
    );
    let again = place(with_cid(
        order(BTC_USDC, Side::Buy, 50, 1, TimeInForce::Ioc),
        42,
    ));
    assert_eq!(run_one(&mut l, 2_000, tx(0, 103, again)).0, Ok(()));
}

#[test]
fn a_fill_settles_both_sides_at_the_maker_price_with_fees_and_rebate() {
    let mut l = ledger(2);
    // Maker sells 1 BTC (10_000 lots) at 30_000.00 USDC (3_000_000 ticks).
    run(
        &mut l,
        2_000,
        &[tx(1, 1, limit(BTC_USDC, Side::Sell, 3_000_000, 10_000))],
    );
    assert_eq!(locked(&l, 1, BTC), 100_000_000);
    // Taker bids higher; trades at the maker's price.
    let r = run(
        &mut l,
        2_001,
        &[tx(0, 1, limit(BTC_USDC, Side::Buy, 3_100_000, 10_000))],
    );
    let fill = r.fills().next().unwrap().clone();
    let notional = 30_000_000_000u128; // 30_000 USDC in micro-USDC
    assert_eq!(fill.quote_amount, Amount(notional));
    assert_eq!(fill.base_amount, Amount(100_000_000));
    let taker_fee = notional * 5 / 10_000;
    let rebate = notional * 2 / 10_000;
    assert_eq!(fill.taker_fee, Amount(taker_fee));
    assert_eq!(fill.maker_fee, FeePaid::Rebate(Amount(rebate)));
    assert_eq!(free(&l, 0, USDC), FUNDS - notional - taker_fee);
    assert_eq!(locked(&l, 0, USDC), 0);
    assert_eq!(free(&l, 0, BTC), FUNDS + 100_000_000);
    assert_eq!(free(&l, 1, USDC), FUNDS + notional + rebate);
    assert_eq!(locked(&l, 1, BTC), 0);
    assert_eq!(l.balance(&fee_account(), USDC).free, taker_fee - rebate);
    assert!(l.open_orders().is_empty());
}

#[test]
fn partial_fills_release_exactly_what_is_no_longer_needed() {
    let mut l = ledger(3);
    run(
        &mut l,
        2_000,
        &[tx(0, 1, limit(BTC_USDC, Side::Buy, 1_000, 10))],
    );
    let lock0 = locked(&l, 0, USDC);
    assert_eq!(
        lock0,
        l.market(BTC_USDC)
            .unwrap()
            .buy_lock(PriceTicks(1_000), SizeLots(10))
            .unwrap()
            .0
    );
    run(
        &mut l,
        2_001,
        &[tx(1, 1, limit(BTC_USDC, Side::Sell, 900, 3))],
    );
    let order = *l.open_orders()[0];
    assert_eq!(order.remaining, SizeLots(7));
    assert_eq!(locked(&l, 0, USDC), l.order_needs(&order));
    run(
        &mut l,
        2_002,
        &[tx(0, 2, cancel(CancelTarget::Order(order.id)))],
    );
    assert_eq!(locked(&l, 0, USDC), 0);
}

#[test]
fn fees_at_extreme_values_do_not_overflow() {
    let mut g = genesis(2, u128::MAX / 8);
    g.markets = markets(-1_000, 1_000);
    g.markets[0].tick_size = d("1");
    g.markets[0].lot_size = d("1");
    g.limits.max_price_ticks = PriceTicks(u64::MAX);
    g.limits.max_order_size_lots = SizeLots(1 << 40);
    let mut l = Ledger::from_genesis(&g).unwrap();
    let price = u64::MAX;
    let size = 1u64 << 40;
    let r = run(
        &mut l,
        2_000,
        &[
            tx(1, 1, limit(BTC_USDC, Side::Sell, price, size)),
            tx(0, 1, limit(BTC_USDC, Side::Buy, price, size)),
        ],
    );
    let fills: Vec<_> = r.fills().collect();
    assert_eq!(fills.len(), 1, "{:?}", r.outcomes);
    let f = fills[0];
    assert_eq!(
        f.quote_amount.0,
        u128::from(price) * u128::from(size) * 1_000_000
    );
    assert!(matches!(f.maker_fee, FeePaid::Rebate(x) if x <= f.taker_fee));
    l.check_invariants().unwrap();
}

#[test]
fn self_trade_prevention_cancels_and_unlocks() {
    let mut l = ledger(1);
    run(
        &mut l,
        2_000,
        &[tx(0, 1, limit(BTC_USDC, Side::Sell, 100, 5))],
    );
    let r = run(
        &mut l,
        2_001,
        &[tx(0, 2, limit(BTC_USDC, Side::Buy, 100, 5))],
    );
    assert!(r.fills().next().is_none());
    assert!(r.events.iter().any(|e| matches!(
        e,
        LedgerEvent::OrderCancelled {
            cause: CancelCause::SelfTrade,
            ..
        }
    )));
    assert_eq!(locked(&l, 0, BTC), 0);
}

#[test]
fn gtt_orders_expire_at_the_first_block_at_or_past_their_time() {
    let mut l = ledger(1);
    let gtt = order(
        BTC_USDC,
        Side::Buy,
        100,
        5,
        TimeInForce::Gtt {
            expires_at: TimestampMs(3_000),
        },
    );
    run(&mut l, 2_000, &[tx(0, 1, place(gtt))]);
    run(&mut l, 2_999, &[]);
    assert_eq!(l.open_orders().len(), 1);
    let r = run(&mut l, 3_000, &[]);
    assert!(matches!(r.events[0], LedgerEvent::OrderExpired { .. }));
    assert!(l.open_orders().is_empty());
    assert_eq!(locked(&l, 0, USDC), 0);
}

#[test]
fn dead_man_switch_fires_once_and_a_later_schedule_replaces_it() {
    let mut l = ledger(1);
    let schedule = |at| {
        Action::ScheduleCancelAll(ScheduleCancelAll {
            at: Some(TimestampMs(at)),
        })
    };
    run(
        &mut l,
        2_000,
        &[
            tx(0, 1, limit(BTC_USDC, Side::Buy, 100, 5)),
            tx(0, 2, limit(ETH_USDC, Side::Sell, 100, 5)),
            tx(0, 3, schedule(5_000)),
        ],
    );
    run(&mut l, 2_001, &[tx(0, 4, schedule(6_000))]);
    run(&mut l, 5_500, &[]);
    assert_eq!(
        l.open_orders().len(),
        2,
        "the replaced schedule must not fire"
    );
    let r = run(&mut l, 6_000, &[]);
    assert!(matches!(
        r.events[0],
        LedgerEvent::DeadManSwitchFired { .. }
    ));
    let cancelled = r
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                LedgerEvent::OrderCancelled {
                    cause: CancelCause::DeadManSwitch,
                    ..
                }
            )
        })
        .count();
    assert_eq!(cancelled, 2);
    assert!(l.open_orders().is_empty());
    assert_eq!(l.account(&key(0)).unwrap().cancel_all_at, None);
    run(
        &mut l,
        7_000,
        &[tx(0, 5, limit(BTC_USDC, Side::Buy, 100, 5))],
    );
    assert_eq!(
        l.open_orders().len(),
        1,
        "a fired switch does not fire again"
    );
}

fn approve(agent: u64, markets: MarketScope, max: u32, expires: u64) -> Action {
    Action::ApproveAgent(ApproveAgent {
        agent: key(agent),
        policy: AgentPolicy {
            markets,
            max_orders_per_block: max,
            expires_at: TimestampMs(expires),
        },
    })
}

#[test]
fn agents_act_within_their_policy_only() {
    let mut l = ledger(1);
    run(
        &mut l,
        2_000,
        &[tx(
            0,
            1,
            approve(50, MarketScope::Only(vec![BTC_USDC]), 2, 10_000),
        )],
    );
    // Allowed market.
    assert_eq!(
        run_one(
            &mut l,
            2_001,
            agent_tx(0, 50, 1, limit(BTC_USDC, Side::Buy, 100, 1))
        )
        .0,
        Ok(())
    );
    // Other market.
    assert!(matches!(
        reject(
            &mut l,
            agent_tx(0, 50, 2, limit(ETH_USDC, Side::Buy, 100, 5))
        ),
        Rejection::AgentMarket { .. }
    ));
    // Rate: two placements per block, the third fails.
    let r = run(
        &mut l,
        2_002,
        &[
            agent_tx(0, 50, 3, limit(BTC_USDC, Side::Buy, 100, 1)),
            agent_tx(0, 50, 4, limit(BTC_USDC, Side::Buy, 101, 1)),
            agent_tx(0, 50, 5, limit(BTC_USDC, Side::Buy, 102, 1)),
        ],
    );
    let failed: Vec<_> = r.outcomes.iter().filter(|o| o.result.is_err()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].result, Err(Rejection::AgentRate { max: 2 }));
    // Never funds: transfer and withdraw are refused (before the nonce).
    let transfer = Action::Transfer(Transfer {
        to: key(50),
        asset: USDC,
        amount: Amount(1),
    });
    assert!(matches!(
        reject(&mut l, agent_tx(0, 50, 6, transfer)),
        Rejection::AgentAction { .. }
    ));
    let approve_more = approve(51, MarketScope::All, 1, 10_000);
    assert!(matches!(
        reject(&mut l, agent_tx(0, 50, 7, approve_more)),
        Rejection::AgentAction { .. }
    ));
    // Cancels are not rate limited.
    let id = l.open_orders()[0].id;
    assert_eq!(
        run_one(
            &mut l,
            2_003,
            agent_tx(0, 50, 8, cancel(CancelTarget::Order(id)))
        )
        .0,
        Ok(())
    );
    // Expiry.
    let (r, consumed) = run_one(
        &mut l,
        10_000,
        agent_tx(0, 50, 10, limit(BTC_USDC, Side::Buy, 100, 1)),
    );
    assert!(matches!(r, Err(Rejection::AgentExpired { .. })));
    assert!(!consumed);
}

#[test]
fn revocation_takes_effect_at_the_next_block() {
    let mut l = ledger(1);
    run(
        &mut l,
        2_000,
        &[tx(0, 1, approve(50, MarketScope::All, 10, 100_000))],
    );
    // Revoke and an agent order in the same block: the order still runs.
    let r = run(
        &mut l,
        2_001,
        &[
            agent_tx(0, 50, 1, limit(BTC_USDC, Side::Buy, 100, 1)),
            tx(0, 2, Action::RevokeAgent(RevokeAgent { agent: key(50) })),
        ],
    );
    assert!(r.outcomes.iter().all(|o| o.result.is_ok()));
    assert!(l.account(&key(0)).unwrap().agents.is_empty());
    let (r, _) = run_one(
        &mut l,
        2_002,
        agent_tx(0, 50, 2, limit(BTC_USDC, Side::Buy, 100, 1)),
    );
    assert!(matches!(r, Err(Rejection::NotAnAgent { .. })));
}

fn revoke(agent: u64) -> Action {
    Action::RevokeAgent(RevokeAgent { agent: key(agent) })
}

/// Agent 50 of account 0 places an order with nonce 5 (`old`, which never expires); the
/// owner cancels it and revokes the agent; at `revoked` the revocation has taken effect; then
/// the owner approves the same key again. Returns the ledger at each stage and `old`.
fn revoke_and_reapprove() -> (Ledger, Ledger, SignedTransaction) {
    let mut l = ledger(1);
    run(
        &mut l,
        2_000,
        &[tx(0, 1, approve(50, MarketScope::All, 10, 100_000))],
    );
    let old = agent_tx(0, 50, 5, limit(BTC_USDC, Side::Buy, 100, 1));
    assert_eq!(run_one(&mut l, 2_001, old.clone()).0, Ok(()));
    assert_eq!(locked(&l, 0, USDC), l.open_orders()[0].locked.0);
    let r = run(
        &mut l,
        2_002,
        &[tx(0, 2, cancel(CancelTarget::All)), tx(0, 3, revoke(50))],
    );
    assert!(r.outcomes.iter().all(|o| o.result.is_ok()));
    assert_eq!(locked(&l, 0, USDC), 0);
    let revoked = l.clone();
    run(
        &mut l,
        2_003,
        &[tx(0, 4, approve(50, MarketScope::All, 10, 100_000))],
    );
    (revoked, l, old)
}

#[test]
fn a_reapproved_agent_cannot_replay_what_it_signed_before_the_revocation() {
    let (revoked, mut l, old) = revoke_and_reapprove();
    // While revoked the key keeps only its floor: the highest nonce it used.
    let account = revoked.account(&key(0)).unwrap();
    assert!(account.agents.is_empty());
    assert_eq!(
        account.revoked_agents.iter().collect::<Vec<_>>(),
        [(&key(50), &5)]
    );
    assert!(matches!(
        revoked.check_transaction(&old, TimestampMs(2_003)),
        Err(Rejection::NotAnAgent { .. })
    ));
    // Approved again: the fresh window starts above that floor, and the floor entry is gone.
    let account = l.account(&key(0)).unwrap();
    assert!(account.revoked_agents.is_empty());
    let window = &account.agents[&key(50)].nonces;
    assert_eq!((window.floor(), window.highest()), (Some(5), Some(5)));
    let refused = Rejection::Nonce(NonceError::TooOld {
        nonce: 5,
        smallest: 5,
    });
    // Mempool admission refuses the replay...
    assert_eq!(
        l.check_transaction(&old, TimestampMs(2_004)),
        Err(refused.clone())
    );
    // ...and so does execution: typed, no balance or order change, nonce not consumed.
    let usdc = l.balance(&key(0), USDC);
    let before = l.account(&key(0)).unwrap().clone();
    let (r, consumed) = run_one(&mut l, 2_004, old.clone());
    assert_eq!(r, Err(refused));
    assert!(!consumed);
    assert_eq!(l.balance(&key(0), USDC), usdc);
    assert!(l.open_orders().is_empty());
    assert_eq!(l.account(&key(0)).unwrap(), &before);
    // A lower nonce the key never used is refused too: below the floor the ledger no longer
    // tells used from unused.
    assert!(matches!(
        reject(
            &mut l,
            agent_tx(0, 50, 2, limit(BTC_USDC, Side::Buy, 100, 1))
        ),
        Rejection::Nonce(NonceError::TooOld { smallest: 5, .. })
    ));
}

#[test]
fn a_reapproved_agent_acts_with_a_fresh_higher_nonce() {
    let (_, mut l, old) = revoke_and_reapprove();
    let fresh = agent_tx(0, 50, 6, limit(BTC_USDC, Side::Buy, 100, 1));
    assert_eq!(l.check_transaction(&fresh, TimestampMs(2_004)), Ok(()));
    assert_eq!(run_one(&mut l, 2_004, fresh.clone()).0, Ok(()));
    assert_eq!(l.open_orders().len(), 1);
    assert_eq!(locked(&l, 0, USDC), l.open_orders()[0].locked.0);
    let window = &l.account(&key(0)).unwrap().agents[&key(50)].nonces;
    assert_eq!(window.used(), &[6]);
    assert_eq!(window.highest(), Some(6));
    // Both the old and the new transaction are now spent.
    for t in [old, fresh] {
        assert!(matches!(
            reject(&mut l, t),
            Rejection::Nonce(NonceError::TooOld { .. } | NonceError::Replayed { .. })
        ));
    }
    // The owner's own window never had a floor: its nonces are unaffected.
    assert_eq!(
        run_one(&mut l, 2_005, tx(0, 5, cancel(CancelTarget::All))).0,
        Ok(())
    );
}

#[test]
fn agent_nonce_floors_survive_snapshots_and_block_diffs() {
    let (revoked, reapproved, old) = revoke_and_reapprove();
    for (stage, l) in [("revoked", revoked), ("approved again", reapproved)] {
        // The floor is part of the account leaf, so the root commits to it.
        let account = l.account(&key(0)).unwrap();
        let mut without_floor = account.clone();
        without_floor.revoked_agents.clear();
        if let Some(agent) = without_floor.agents.get_mut(&key(50)) {
            agent.nonces = crate::NonceWindow::new();
        }
        assert_ne!(without_floor.rest_hash(), account.rest_hash(), "{stage}");
        // The last block's diff carries the account record that holds the floor.
        let key_a0 = [&b"a"[..], &account.index.0.to_be_bytes()].concat();
        let diff = l.block_changes();
        let record = diff
            .iter()
            .find(|c| c.key == key_a0)
            .and_then(|c| c.value.clone())
            .expect("the account changed");
        let snapshot: std::collections::BTreeMap<_, _> = l.snapshot().into_iter().collect();
        assert_eq!(snapshot[&key_a0], record, "{stage}");
        // Restored: same root, same refusal, same future.
        let mut a = l.clone();
        let mut b = Ledger::from_bytes(&l.to_bytes()).unwrap();
        assert_eq!(b.state_root(), a.state_root(), "{stage}");
        assert_eq!(
            b.account(&key(0)).unwrap().revoked_agents,
            a.account(&key(0)).unwrap().revoked_agents
        );
        let next = [
            tx(0, 6, approve(50, MarketScope::All, 10, 100_000)),
            old.clone(),
            agent_tx(0, 50, 7, limit(BTC_USDC, Side::Buy, 100, 1)),
        ];
        let ra = run(&mut a, 2_010, &next);
        let rb = run(&mut b, 2_010, &next);
        assert_eq!(ra, rb, "{stage}");
        let replay = ra
            .outcomes
            .iter()
            .find(|o| o.tx == old.hash())
            .expect("the replay ran");
        assert_eq!(
            replay.result,
            Err(Rejection::Nonce(NonceError::TooOld {
                nonce: 5,
                smallest: 5
            })),
            "{stage}"
        );
        assert_eq!(a.state_root(), b.state_root());
    }
}

#[test]
fn revoked_agent_floors_stay_bounded_and_fold_into_one_account_floor() {
    // The test genesis allows 4 agents per account, so 4 floors are kept per key.
    let mut l = ledger(1);
    let mut owner_nonce = 0;
    let mut owner = |action: Action| {
        owner_nonce += 1;
        tx(0, owner_nonce, action)
    };
    let agents: [(u64, u64); 6] = [(50, 30), (51, 10), (52, 50), (53, 20), (54, 60), (55, 40)];
    let mut time = 2_000;
    let mut old = Vec::new();
    for &(agent, nonce) in &agents {
        run(
            &mut l,
            time,
            &[owner(approve(agent, MarketScope::All, 10, 100_000))],
        );
        let t = agent_tx(0, agent, nonce, limit(BTC_USDC, Side::Buy, 100, 1));
        run(&mut l, time + 1, &[t.clone(), owner(revoke(agent))]);
        old.push(t);
        time += 2;
        let account = l.account(&key(0)).unwrap();
        assert!(account.revoked_agents.len() <= 4);
        assert!(
            account
                .revoked_agents
                .values()
                .all(|&f| account.agent_nonce_floor.is_none_or(|a| f > a))
        );
    }
    // The two lowest floors (10 of key 51, then 20 of key 53) were folded into one.
    let account = l.account(&key(0)).unwrap();
    assert_eq!(account.agent_nonce_floor, Some(20));
    assert_eq!(
        account.revoked_agents,
        [(key(50), 30), (key(52), 50), (key(54), 60), (key(55), 40)]
            .into_iter()
            .collect()
    );
    // Every one of the six keys, approved again, is refused its old transaction, whether
    // its floor was kept or folded.
    for (t, &(agent, _)) in old.iter().zip(&agents) {
        run(
            &mut l,
            time,
            &[owner(approve(agent, MarketScope::All, 10, 100_000))],
        );
        assert!(matches!(
            l.check_transaction(t, TimestampMs(time + 1)),
            Err(Rejection::Nonce(NonceError::TooOld { .. }))
        ));
        let (r, _) = run_one(&mut l, time + 1, t.clone());
        assert!(matches!(
            r,
            Err(Rejection::Nonce(NonceError::TooOld { .. }))
        ));
        run(&mut l, time + 1, &[owner(revoke(agent))]);
        time += 2;
        assert!(l.account(&key(0)).unwrap().revoked_agents.len() <= 4);
    }
    // A key this account never approved starts above the folded floor.
    run(
        &mut l,
        time,
        &[owner(approve(70, MarketScope::All, 10, 100_000))],
    );
    let below = agent_tx(0, 70, 20, cancel(CancelTarget::All));
    assert_eq!(
        l.check_transaction(&below, TimestampMs(time)),
        Err(Rejection::Nonce(NonceError::TooOld {
            nonce: 20,
            smallest: 20
        }))
    );
    assert_eq!(
        run_one(&mut l, time, agent_tx(0, 70, 21, cancel(CancelTarget::All))).0,
        Ok(())
    );
}

#[test]
fn atomic_batch_applies_all_or_nothing_and_names_the_failing_leg() {
    let mut l = ledger(1);
    let legs = vec![
        BatchLeg::Place(order(BTC_USDC, Side::Buy, 100, 1, TimeInForce::Gtc)),
        BatchLeg::Place(order(BTC_USDC, Side::Buy, 101, 1, TimeInForce::Gtc)),
        BatchLeg::Place(order(MarketId(9), Side::Buy, 101, 1, TimeInForce::Gtc)),
    ];
    let atomic = Action::Batch(OrderBatch {
        legs: legs.clone(),
        atomic: true,
    });
    match reject(&mut l, tx(0, 1, atomic)) {
        Rejection::BatchLeg { leg, reason } => {
            assert_eq!(leg, 2);
            assert!(matches!(*reason, Rejection::UnknownMarket { .. }));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(l.open_orders().is_empty());
    let per_leg = Action::Batch(OrderBatch {
        legs,
        atomic: false,
    });
    let r = run(&mut l, 2_001, &[tx(0, 2, per_leg)]);
    assert_eq!(r.outcomes[0].result, Ok(()));
    assert_eq!(r.outcomes[0].leg_rejections.len(), 1);
    assert_eq!(l.open_orders().len(), 2);
}

#[test]
fn atomic_cancel_all_then_requote_reuses_released_funds() {
    let mut g = genesis(1, 10_000);
    g.allocations.retain(|a| a.asset == BTC);
    let mut l = Ledger::from_genesis(&g).unwrap();
    // Sell all 10_000 sats in one lot... BTC lot is 10_000 sats: size 1 uses everything.
    run(
        &mut l,
        2_000,
        &[tx(0, 1, limit(BTC_USDC, Side::Sell, 500, 1))],
    );
    assert_eq!(free(&l, 0, BTC), 0);
    let requote = Action::Batch(OrderBatch {
        legs: vec![
            BatchLeg::Cancel(CancelTarget::All),
            BatchLeg::Place(order(BTC_USDC, Side::Sell, 400, 1, TimeInForce::PostOnly)),
        ],
        atomic: true,
    });
    assert_eq!(run_one(&mut l, 2_001, tx(0, 2, requote)).0, Ok(()));
    let orders = l.open_orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].price, PriceTicks(400));
    // Without the cancel there would be no funds: the leg is named.
    let requote = Action::Batch(OrderBatch {
        legs: vec![
            BatchLeg::Place(order(BTC_USDC, Side::Sell, 300, 1, TimeInForce::PostOnly)),
            BatchLeg::Cancel(CancelTarget::All),
        ],
        atomic: true,
    });
    assert!(matches!(
        reject(&mut l, tx(0, 3, requote)),
        Rejection::BatchLeg { leg: 0, .. }
    ));
}

#[test]
fn modify_reduces_in_place_or_replaces_with_new_priority() {
    let mut l = ledger(2);
    run(
        &mut l,
        2_000,
        &[
            tx(0, 1, limit(BTC_USDC, Side::Buy, 100, 10)),
            tx(1, 1, limit(BTC_USDC, Side::Buy, 100, 10)),
        ],
    );
    let first = *l.open_orders()[0];
    let modify = |size, price| {
        Action::Modify(ModifyOrder {
            order_id: first.id,
            price_ticks: price,
            size_lots: size,
        })
    };
    let owner = if first.owner == l.account(&key(0)).unwrap().index {
        0
    } else {
        1
    };
    run(
        &mut l,
        2_001,
        &[tx(owner, 2, modify(Some(SizeLots(4)), None))],
    );
    let after = *l.order(first.id).unwrap();
    assert_eq!(after.remaining, SizeLots(4));
    assert_eq!(after.priority, first.priority, "a reduction keeps priority");
    assert_eq!(after.locked.0, l.order_needs(&after));
    run(
        &mut l,
        2_002,
        &[tx(owner, 3, modify(None, Some(PriceTicks(101))))],
    );
    let moved = *l.order(first.id).unwrap();
    assert_eq!(moved.price, PriceTicks(101));
    assert!(moved.priority > after.priority);
    let r = reject(
        &mut l,
        tx(owner, 4, modify(Some(SizeLots(FUNDS as u64)), None)),
    );
    assert!(matches!(r, Rejection::InsufficientFunds { .. }));
    let r = reject(
        &mut l,
        tx(owner, 5, modify(Some(SizeLots(4)), Some(PriceTicks(101)))),
    );
    assert_eq!(r, Rejection::ModifyNoChange);
}

#[test]
fn canonical_order_ignores_the_proposers_order_and_runs_cancels_first() {
    let txs = vec![
        tx(0, 1, limit(BTC_USDC, Side::Sell, 100, 5)),
        tx(1, 1, limit(BTC_USDC, Side::Buy, 100, 3)),
        tx(2, 1, limit(BTC_USDC, Side::Buy, 100, 3)),
        tx(
            2,
            2,
            Action::Transfer(Transfer {
                to: key(0),
                asset: USDC,
                amount: Amount(7),
            }),
        ),
        tx(
            1,
            2,
            place(order(BTC_USDC, Side::Buy, 90, 3, TimeInForce::PostOnly)),
        ),
    ];
    let mut a = ledger(3);
    let mut b = ledger(3);
    let ra = run(&mut a, 2_000, &txs);
    let mut reversed = txs.clone();
    reversed.reverse();
    let rb = run(&mut b, 2_000, &reversed);
    assert_eq!(ra, rb);
    assert_eq!(a.state_root(), b.state_root());
    // Classes: transfer first, then the post-only, then the limits.
    let class_of = |h: &Hash| {
        txs.iter()
            .find(|t| t.hash() == *h)
            .unwrap()
            .tx
            .action
            .execution_class()
    };
    let classes: Vec<_> = ra.outcomes.iter().map(|o| class_of(&o.tx)).collect();
    let mut sorted = classes.clone();
    sorted.sort();
    assert_eq!(classes, sorted);
}

#[test]
fn fill_and_withdrawal_proofs_verify_and_reject_any_altered_byte() {
    let mut l = ledger(2);
    run(
        &mut l,
        2_000,
        &[tx(1, 1, limit(BTC_USDC, Side::Sell, 100, 5))],
    );
    let r = run(
        &mut l,
        2_001,
        &[
            tx(0, 1, limit(BTC_USDC, Side::Buy, 100, 5)),
            tx(
                1,
                2,
                Action::Withdraw(Withdraw {
                    asset: ETH,
                    amount: Amount(12),
                    destination: vec![1, 2, 3],
                }),
            ),
        ],
    );
    assert_eq!(r.committed.len(), 2);
    assert!(
        matches!(r.committed[0], CommittedItem::Withdrawal(_)),
        "non-order actions run first"
    );
    for (i, item) in r.committed.iter().enumerate() {
        let proof = r.fill_proof(i).unwrap();
        assert!(verify_fill_proof(&r.fills_root, item, &proof));
        let bytes = borsh::to_vec(item).unwrap();
        for b in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[b] ^= 1;
            if let Ok(other) = borsh::from_slice::<CommittedItem>(&altered) {
                assert!(
                    !verify_fill_proof(&r.fills_root, &other, &proof),
                    "byte {b}"
                );
            }
        }
        let pbytes = borsh::to_vec(&proof).unwrap();
        for b in 0..pbytes.len() {
            let mut altered = pbytes.clone();
            altered[b] ^= 0x10;
            if let Ok(p) = borsh::from_slice::<crate::FillProof>(&altered) {
                assert!(
                    !verify_fill_proof(&r.fills_root, item, &p),
                    "proof byte {b}"
                );
            }
        }
    }
    assert_eq!(l.withdrawn()[2], (ETH, 12));
}

#[test]
fn balance_proofs_verify_against_the_state_root_and_reject_alterations() {
    let mut l = ledger(3);
    run(
        &mut l,
        2_000,
        &[tx(1, 1, limit(BTC_USDC, Side::Sell, 100, 5))],
    );
    let root = l.state_root();
    let proof = l.balance_proof(&key(1)).unwrap();
    let bal = l.balance(&key(1), BTC);
    assert!(verify_balance_proof(&root, &key(1), BTC, &bal, &proof));
    let wrong = Balance {
        free: bal.free + 1,
        locked: bal.locked,
    };
    assert!(!verify_balance_proof(&root, &key(1), BTC, &wrong, &proof));
    assert!(!verify_balance_proof(&root, &key(2), BTC, &bal, &proof));
    let pbytes = borsh::to_vec(&proof).unwrap();
    for b in 0..pbytes.len() {
        let mut altered = pbytes.clone();
        altered[b] ^= 0x04;
        if let Ok(p) = borsh::from_slice::<crate::BalanceProof>(&altered) {
            let claimed = p.balances.iter().find(|(a, _)| *a == BTC).map(|x| x.1);
            if let Some(c) = claimed {
                assert!(
                    !verify_balance_proof(&root, &key(1), BTC, &c, &p),
                    "byte {b}"
                );
            }
        }
    }
}

#[test]
fn snapshot_restore_and_block_changes_reproduce_the_state() {
    let mut l = ledger(3);
    run(
        &mut l,
        2_000,
        &[
            tx(1, 1, limit(BTC_USDC, Side::Sell, 100, 5)),
            tx(
                2,
                1,
                place(with_cid(
                    order(
                        ETH_USDC,
                        Side::Buy,
                        90,
                        7,
                        TimeInForce::Gtt {
                            expires_at: TimestampMs(9_000),
                        },
                    ),
                    3,
                )),
            ),
            tx(
                0,
                1,
                Action::ScheduleCancelAll(ScheduleCancelAll {
                    at: Some(TimestampMs(50_000)),
                }),
            ),
            tx(0, 2, approve(60, MarketScope::All, 3, 80_000)),
        ],
    );
    let mut base: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = l.snapshot().into_iter().collect();
    run(
        &mut l,
        2_001,
        &[tx(0, 3, limit(BTC_USDC, Side::Buy, 100, 2))],
    );
    for change in l.block_changes() {
        match change.value {
            Some(v) => base.insert(change.key, v),
            None => base.remove(&change.key),
        };
    }
    let snap = l.snapshot();
    assert_eq!(base.into_iter().collect::<Vec<_>>(), snap);
    let mut restored = Ledger::from_bytes(&l.to_bytes()).unwrap();
    assert_eq!(restored.state_root(), l.state_root());
    let next = [
        tx(0, 4, limit(BTC_USDC, Side::Buy, 100, 3)),
        tx(2, 2, limit(ETH_USDC, Side::Sell, 80, 7)),
    ];
    let a = run(&mut l, 9_000, &next);
    let b = run(&mut restored, 9_000, &next);
    assert_eq!(a, b);
    // Corrupt snapshots are refused, not trusted.
    let mut pairs = l.snapshot();
    pairs.retain(|(k, _)| k.as_slice() != b"m");
    assert!(Ledger::restore(pairs).is_err());
    let mut pairs = l.snapshot();
    pairs[0].1[40] ^= 1;
    assert!(Ledger::restore(pairs).is_err_and(|e| matches!(
        e,
        crate::SnapshotError::Inconsistent(_) | crate::SnapshotError::Malformed { .. }
    )));
}

#[test]
fn check_transaction_admits_and_refuses_without_changing_state() {
    let l = ledger(1);
    let root = l.state_root();
    let now = TimestampMs(2_000);
    assert_eq!(
        l.check_transaction(&tx(0, 1, limit(BTC_USDC, Side::Buy, 100, 1)), now),
        Ok(())
    );
    assert!(matches!(
        l.check_transaction(&tx(0, 1, limit(BTC_USDC, Side::Buy, 1 << 30, 1 << 30)), now),
        Err(Rejection::InsufficientFunds { .. })
    ));
    assert!(matches!(
        l.check_transaction(&tx(0, 1, limit(MarketId(5), Side::Buy, 1, 1)), now),
        Err(Rejection::UnknownMarket { .. })
    ));
    let mut t = tx(0, 1, limit(BTC_USDC, Side::Buy, 1, 1));
    t.tx.expires_at = TimestampMs(1_999);
    assert!(matches!(
        l.check_transaction(&t, now),
        Err(Rejection::Expired { .. })
    ));
    assert_eq!(l.state_root(), root);
}

#[test]
fn a_market_order_is_bounded_by_its_worst_price() {
    let mut l = ledger(2);
    run(
        &mut l,
        2_000,
        &[
            tx(1, 1, limit(BTC_USDC, Side::Sell, 100, 2)),
            tx(1, 2, limit(BTC_USDC, Side::Sell, 200, 2)),
        ],
    );
    let mut req = order(BTC_USDC, Side::Buy, 150, 4, TimeInForce::Ioc);
    req.order_type = OrderType::Market;
    let r = run(&mut l, 2_001, &[tx(0, 1, place(req))]);
    assert_eq!(r.fills().count(), 1);
    assert!(r.events.iter().any(|e| matches!(
        e,
        LedgerEvent::OrderCancelled {
            cause: CancelCause::ImmediateRemainder,
            ..
        }
    )));
    assert_eq!(locked(&l, 0, USDC), 0);
}

// ---------------------------------------------------------------- copies of the ledger

/// A validator runs each proposal on a copy of the committed ledger: the copy shares every
/// account, and a block on it makes its own only the accounts it writes; the original and
/// its root are untouched and a copy of the result shares everything again.
#[test]
fn a_block_on_a_copy_copies_only_the_accounts_it_writes() {
    let committed = ledger(300);
    let root = committed.state_root();
    let mut copy = committed.clone();
    let total = committed.accounts().len();
    assert_eq!(copy.accounts.shared_with(&committed.accounts), total);
    let transfer = |from, to, nonce| {
        tx(
            from,
            nonce,
            Action::Transfer(Transfer {
                to: key(to),
                asset: USDC,
                amount: Amount(5),
            }),
        )
    };
    run(
        &mut copy,
        2_000,
        &[transfer(3, 250, 1), transfer(120, 3, 1)],
    );
    assert_eq!(
        copy.accounts.shared_with(&committed.accounts),
        total - 3,
        "exactly the three accounts the block wrote are the copy's own"
    );
    assert_eq!(committed.state_root(), root);
    assert_eq!(committed.height(), 0);
    assert_eq!(committed.balance(&key(250), USDC).free, 1_000_000_000_000);
    assert_eq!(copy.balance(&key(250), USDC).free, 1_000_000_000_005);
    let next = copy.clone();
    assert_eq!(next.accounts.shared_with(&copy.accounts), total);
}

/// The account lookup stays exact however many accounts arrive, keeps what a copy must
/// clone below its bound, and a copy never sees keys added after it was taken.
#[test]
fn the_account_lookup_is_exact_across_copies_and_merges() {
    use crate::ledger::{AccountKey, AccountLookup};
    let mut lookup = AccountLookup::default();
    let mut copies = Vec::new();
    for i in 0..1_500u64 {
        if i % 250 == 0 {
            copies.push((i, lookup.clone()));
        }
        lookup.insert(AccountKey::of(&key(i)), dex_types::AccountIndex(i));
        assert!(lookup.recent_len() < 512);
    }
    for i in 0..1_500u64 {
        assert_eq!(
            lookup.get(&AccountKey::of(&key(i))),
            Some(&dex_types::AccountIndex(i))
        );
    }
    assert_eq!(lookup.get(&AccountKey::of(&key(1_500))), None);
    for (taken_at, copy) in &copies {
        for i in 0..1_500u64 {
            let expected = (i < *taken_at).then_some(dex_types::AccountIndex(i));
            assert_eq!(copy.get(&AccountKey::of(&key(i))).copied(), expected);
        }
    }
    lookup.compact();
    assert_eq!(lookup.recent_len(), 0);
    assert!(lookup.contains_key(&AccountKey::of(&key(1_499))));
}

/// Transfers to new accounts on a copy (the lookup and the account list grow there only).
#[test]
fn accounts_created_on_a_copy_exist_only_there() {
    let committed = ledger(150);
    let mut copy = committed.clone();
    let txs: Vec<_> = (0..600u64)
        .map(|i| {
            tx(
                i % 150,
                1 + i / 150,
                Action::Transfer(Transfer {
                    to: key(10_000 + i),
                    asset: USDC,
                    amount: Amount(1),
                }),
            )
        })
        .collect();
    let r = run(&mut copy, 2_000, &txs);
    assert!(r.outcomes.iter().all(|o| o.result.is_ok()));
    assert_eq!(copy.accounts().len(), committed.accounts().len() + 600);
    assert!(committed.account(&key(10_599)).is_none());
    assert_eq!(copy.balance(&key(10_599), USDC).free, 1);
    let restored = Ledger::from_bytes(&copy.to_bytes()).unwrap();
    assert_eq!(restored.state_root(), copy.state_root());
}

/// The node hands ledgers between threads (snapshot jobs, the consensus thread).
#[test]
fn the_ledger_can_move_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Ledger>();
}
