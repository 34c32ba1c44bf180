//! Property tests over random blocks of random transactions from many accounts.
//!
//! Signatures are bypassed (execution takes pre-verified transactions), so cases are cheap.

use super::*;
use crate::{Balance, Ledger, OpenOrder};
use dex_types::{
    AgentPolicy, ApproveAgent, MarketScope, ModifyOrder, OrderId, ScheduleCancelAll, Transfer,
    Withdraw,
};
use proptest::prelude::*;

const ACCOUNTS: u64 = 6;

/// An abstract operation; turned into a transaction against the current state so that it
/// can name existing orders.
#[derive(Clone, Debug)]
enum Op {
    Place {
        acct: u64,
        btc: bool,
        buy: bool,
        price: u64,
        size: u64,
        tif: u8,
        stp: u8,
        cid: Option<u64>,
    },
    Cancel {
        acct: u64,
        pick: usize,
        how: u8,
    },
    Modify {
        acct: u64,
        pick: usize,
        price: Option<u64>,
        size: Option<u64>,
    },
    Transfer {
        from: u64,
        to: u64,
        asset: u8,
        amount: u128,
    },
    Withdraw {
        acct: u64,
        asset: u8,
        amount: u128,
    },
    Schedule {
        acct: u64,
        dt: Option<u64>,
    },
    Approve {
        acct: u64,
    },
    AgentPlace {
        acct: u64,
        price: u64,
        size: u64,
    },
    Requote {
        acct: u64,
        price: u64,
        atomic: bool,
    },
    /// Reuse the account's last nonce: a replay.
    Replay {
        acct: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let acct = 0..ACCOUNTS;
    prop_oneof![
        8 => (acct.clone(), any::<bool>(), any::<bool>(), 95u64..106, 1u64..25, 0u8..6, 0u8..4, prop::option::weighted(0.3, 0u64..4))
            .prop_map(|(acct, btc, buy, price, size, tif, stp, cid)| Op::Place { acct, btc, buy, price, size, tif, stp, cid }),
        3 => (acct.clone(), 0usize..8, 0u8..4).prop_map(|(acct, pick, how)| Op::Cancel { acct, pick, how }),
        2 => (acct.clone(), 0usize..8, prop::option::of(95u64..106), prop::option::of(1u64..25))
            .prop_map(|(acct, pick, price, size)| Op::Modify { acct, pick, price, size }),
        1 => (acct.clone(), 0..ACCOUNTS + 2, 0u8..3, 1u128..200_000).prop_map(|(from, to, asset, amount)| Op::Transfer { from, to, asset, amount }),
        1 => (acct.clone(), 0u8..3, 1u128..100_000).prop_map(|(acct, asset, amount)| Op::Withdraw { acct, asset, amount }),
        1 => (acct.clone(), prop::option::of(0u64..5)).prop_map(|(acct, dt)| Op::Schedule { acct, dt }),
        1 => acct.clone().prop_map(|acct| Op::Approve { acct }),
        2 => (acct.clone(), 95u64..106, 1u64..10).prop_map(|(acct, price, size)| Op::AgentPlace { acct, price, size }),
        1 => (acct.clone(), 95u64..106, any::<bool>()).prop_map(|(acct, price, atomic)| Op::Requote { acct, price, atomic }),
        1 => acct.prop_map(|acct| Op::Replay { acct }),
    ]
}

fn prop_genesis() -> Genesis {
    let mut g = genesis(ACCOUNTS, 0);
    g.allocations.clear();
    for i in 0..ACCOUNTS {
        for (asset, amount) in [(USDC, 40_000u128), (BTC, 150_000), (ETH, 1_500_000)] {
            g.allocations.push(crate::Allocation {
                account: key(i),
                asset,
                amount: Amount(amount),
            });
        }
    }
    g.limits.max_open_orders_per_account = 12;
    g
}

/// Turns ops into transactions, tracking nonces per signer.
struct Builder {
    nonces: std::collections::BTreeMap<(u64, bool), u64>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            nonces: Default::default(),
        }
    }

    fn next(&mut self, acct: u64, agent: bool) -> u64 {
        let n = self.nonces.entry((acct, agent)).or_insert(0);
        *n += 1;
        *n
    }

    fn own_orders(ledger: &Ledger, acct: u64) -> Vec<&OpenOrder> {
        let Some(a) = ledger.account(&key(acct)) else {
            return Vec::new();
        };
        ledger
            .open_orders()
            .into_iter()
            .filter(|o| o.owner == a.index)
            .collect()
    }

    fn build(&mut self, ledger: &Ledger, op: &Op, time: u64) -> SignedTransaction {
        let asset = |a: u8| [USDC, BTC, ETH][a as usize];
        match *op {
            Op::Place {
                acct,
                btc,
                buy,
                price,
                size,
                tif,
                stp,
                cid,
            } => {
                let tif = match tif {
                    0 | 1 => TimeInForce::Gtc,
                    2 => TimeInForce::Gtt {
                        expires_at: TimestampMs(time + 3),
                    },
                    3 => TimeInForce::Ioc,
                    4 => TimeInForce::Fok,
                    _ => TimeInForce::PostOnly,
                };
                let mut req = order(
                    if btc { BTC_USDC } else { ETH_USDC },
                    if buy { Side::Buy } else { Side::Sell },
                    price,
                    size,
                    tif,
                );
                req.self_trade = [
                    SelfTradePrevention::CancelResting,
                    SelfTradePrevention::CancelIncoming,
                    SelfTradePrevention::CancelBoth,
                    SelfTradePrevention::DecrementAndCancel,
                ][stp as usize];
                req.client_order_id = cid.map(ClientOrderId);
                tx(acct, self.next(acct, false), place(req))
            }
            Op::Cancel { acct, pick, how } => {
                let orders = Self::own_orders(ledger, acct);
                let target = match how {
                    0 => {
                        CancelTarget::Order(orders.get(pick).map_or(OrderId(pick as u64), |o| o.id))
                    }
                    1 => CancelTarget::ClientOrder(ClientOrderId(pick as u64 % 4)),
                    2 => CancelTarget::Market(if pick % 2 == 0 { BTC_USDC } else { ETH_USDC }),
                    _ => CancelTarget::All,
                };
                tx(acct, self.next(acct, false), cancel(target))
            }
            Op::Modify {
                acct,
                pick,
                price,
                size,
            } => {
                let orders = Self::own_orders(ledger, acct);
                let order_id = orders.get(pick).map_or(OrderId(pick as u64), |o| o.id);
                let (price, size) = match (price, size) {
                    (None, None) => (None, Some(1)),
                    other => other,
                };
                let action = Action::Modify(ModifyOrder {
                    order_id,
                    price_ticks: price.map(PriceTicks),
                    size_lots: size.map(SizeLots),
                });
                tx(acct, self.next(acct, false), action)
            }
            Op::Transfer {
                from,
                to,
                asset: a,
                amount,
            } => {
                let to = if to == from { to + 1 } else { to };
                let action = Action::Transfer(Transfer {
                    to: key(to),
                    asset: asset(a),
                    amount: Amount(amount),
                });
                tx(from, self.next(from, false), action)
            }
            Op::Withdraw {
                acct,
                asset: a,
                amount,
            } => {
                let action = Action::Withdraw(Withdraw {
                    asset: asset(a),
                    amount: Amount(amount),
                    destination: vec![7; 20],
                });
                tx(acct, self.next(acct, false), action)
            }
            Op::Schedule { acct, dt } => {
                let at = dt.map(|dt| TimestampMs(time + dt));
                tx(
                    acct,
                    self.next(acct, false),
                    Action::ScheduleCancelAll(ScheduleCancelAll { at }),
                )
            }
            Op::Approve { acct } => {
                let action = Action::ApproveAgent(ApproveAgent {
                    agent: key(100 + acct),
                    policy: AgentPolicy {
                        markets: MarketScope::Only(vec![BTC_USDC]),
                        max_orders_per_block: 2,
                        expires_at: TimestampMs(time + 6),
                    },
                });
                tx(acct, self.next(acct, false), action)
            }
            Op::AgentPlace { acct, price, size } => {
                let side = if price % 2 == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let market = if size % 3 == 0 { ETH_USDC } else { BTC_USDC };
                let action = limit(market, side, price, size);
                agent_tx(acct, 100 + acct, self.next(acct, true), action)
            }
            Op::Requote {
                acct,
                price,
                atomic,
            } => {
                let action = Action::Batch(dex_types::OrderBatch {
                    legs: vec![
                        dex_types::BatchLeg::Cancel(CancelTarget::Market(BTC_USDC)),
                        dex_types::BatchLeg::Place(order(
                            BTC_USDC,
                            Side::Buy,
                            price - 3,
                            4,
                            TimeInForce::PostOnly,
                        )),
                        dex_types::BatchLeg::Place(order(
                            BTC_USDC,
                            Side::Sell,
                            price + 3,
                            4,
                            TimeInForce::PostOnly,
                        )),
                    ],
                    atomic,
                });
                tx(acct, self.next(acct, false), action)
            }
            Op::Replay { acct } => {
                let n = self.nonces.get(&(acct, false)).copied().unwrap_or(0).max(1);
                tx(
                    acct,
                    n,
                    Action::ScheduleCancelAll(ScheduleCancelAll { at: None }),
                )
            }
        }
    }
}

fn parent(height: u64) -> Hash {
    Hash::of(Domain::Other, &[b"prop-parent", &height.to_le_bytes()])
}

fn balances(l: &Ledger) -> Vec<Vec<Balance>> {
    l.accounts().iter().map(|a| a.balances.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Conservation, locks == what open orders need, and determinism: a replica fed the
    /// same blocks in another order, and a replica restored from a snapshot mid-way, reach
    /// the same results and roots at every height.
    #[test]
    fn random_blocks_keep_invariants_and_replicas_agree(
        blocks in prop::collection::vec(prop::collection::vec(op(), 0..24), 1..10),
        restore_at in 0usize..10,
    ) {
        let g = prop_genesis();
        let mut a = Ledger::from_genesis(&g).unwrap();
        let mut b = Ledger::from_genesis(&g).unwrap();
        let mut restored: Option<Ledger> = None;
        let mut builder = Builder::new();
        let mut time = 2_000u64;
        for (h, ops) in blocks.iter().enumerate() {
            time += 1 + (h as u64 % 3);
            let txs: Vec<SignedTransaction> = ops.iter().map(|op| builder.build(&a, op, time)).collect();
            let mut shuffled = txs.clone();
            shuffled.reverse();
            let k = shuffled.len() / 2;
            shuffled.rotate_left(k);
            let ra = a.execute_block(parent(h as u64), TimestampMs(time), &txs).unwrap();
            let rb = b.execute_block(parent(h as u64), TimestampMs(time), &shuffled).unwrap();
            prop_assert_eq!(&ra, &rb);
            prop_assert_eq!(a.state_root(), b.state_root());
            if let Err(e) = a.check_invariants() {
                prop_assert!(false, "invariant broken at height {}: {}", h, e);
            }
            if let Some(c) = restored.as_mut() {
                let rc = c.execute_block(parent(h as u64), TimestampMs(time), &txs).unwrap();
                prop_assert_eq!(&ra, &rc);
            }
            if h == restore_at {
                let c = Ledger::from_bytes(&a.to_bytes()).unwrap();
                prop_assert_eq!(c.state_root(), a.state_root());
                restored = Some(c);
            }
            // Roots are sensitive: the fills root commits to the fills.
            prop_assert_eq!(ra.fills_root, dex_types::merkle::root(&ra.committed_leaves()));
        }
    }

    /// A rejected transaction changes no balance and no order; it changes the signer's nonce
    /// window exactly when the design says it consumes the nonce.
    #[test]
    fn rejections_change_nothing_but_the_nonce(ops in prop::collection::vec(op(), 1..60)) {
        let g = prop_genesis();
        let mut l = Ledger::from_genesis(&g).unwrap();
        let mut builder = Builder::new();
        let mut time = 2_000u64;
        for (h, op) in ops.iter().enumerate() {
            time += 1;
            let t = builder.build(&l, op, time);
            let before_bal = balances(&l);
            let before_orders: Vec<OpenOrder> = l.open_orders().into_iter().cloned().collect();
            let window = |l: &Ledger| {
                l.account(&t.tx.account).map(|a| {
                    if t.tx.is_signed_by_agent() {
                        a.agents.get(&t.tx.signer).map(|x| x.nonces.used().to_vec())
                    } else {
                        Some(a.nonces.used().to_vec())
                    }
                })
            };
            let before_window = window(&l);
            // Expiries and dead-man switches fire at block start; run an empty block first
            // so that the transaction's own block changes only what the transaction does.
            l.execute_block(parent(2 * h as u64), TimestampMs(time), &[]).unwrap();
            let before_bal2 = balances(&l);
            let before_orders2: Vec<OpenOrder> = l.open_orders().into_iter().cloned().collect();
            let expired_something = before_bal != before_bal2 || before_orders != before_orders2;
            let r = l.execute_block(parent(2 * h as u64 + 1), TimestampMs(time), std::slice::from_ref(&t)).unwrap();
            let outcome = &r.outcomes[0];
            if let Err(rej) = &outcome.result {
                prop_assert_eq!(&balances(&l), &before_bal2);
                let after_orders: Vec<OpenOrder> = l.open_orders().into_iter().cloned().collect();
                prop_assert_eq!(&after_orders, &before_orders2);
                prop_assert_eq!(outcome.nonce_consumed, rej.consumes_nonce());
                if !expired_something && !rej.consumes_nonce() {
                    prop_assert_eq!(window(&l), before_window);
                }
                if rej.consumes_nonce() {
                    let used = window(&l).flatten().unwrap_or_default();
                    prop_assert!(used.contains(&t.tx.nonce), "a consumed nonce is not in the window");
                }
            }
            l.check_invariants().map_err(TestCaseError::fail)?;
        }
    }
}

/// The generator is worth its name: a fixed-seed run of it produces fills, rests, cancels,
/// withdrawals and every common kind of rejection, so the properties above are not
/// vacuously true.
#[test]
fn the_random_workload_exercises_fills_and_rejections() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let blocks = prop::collection::vec(prop::collection::vec(op(), 20..24), 30..31)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let mut l = Ledger::from_genesis(&prop_genesis()).unwrap();
    let mut builder = Builder::new();
    let (mut fills, mut withdrawals, mut rejections, mut consumed_rejections) = (0, 0, 0, 0);
    for (h, ops) in blocks.iter().enumerate() {
        let time = 2_000 + h as u64 * 2;
        let txs: Vec<_> = ops.iter().map(|op| builder.build(&l, op, time)).collect();
        let r = l
            .execute_block(parent(h as u64), TimestampMs(time), &txs)
            .unwrap();
        l.check_invariants().unwrap();
        fills += r.fills().count();
        withdrawals += r.committed.len() - r.fills().count();
        for o in &r.outcomes {
            if let Err(e) = &o.result {
                rejections += 1;
                consumed_rejections += usize::from(e.consumes_nonce());
            }
        }
    }
    assert!(fills > 20, "only {fills} fills");
    assert!(withdrawals > 0);
    assert!(rejections > 20, "only {rejections} rejections");
    assert!(consumed_rejections > 0 && consumed_rejections < rejections);
}
