//! Property tests over random blocks of random transactions from many accounts.
//!
//! Signatures are bypassed (execution takes pre-verified transactions), so cases are cheap.

use super::*;
use crate::{Balance, BlockResult, Ledger, OpenOrder};
use dex_types::{
    AgentPolicy, ApproveAgent, MarketScope, ModifyOrder, OrderId, RevokeAgent, ScheduleCancelAll,
    Transfer, Withdraw,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

const ACCOUNTS: u64 = 6;
/// Agent keys per account in the generator: one more than `prop_genesis` lets an account
/// keep, so approvals hit the agent limit and revoked keys' nonce floors get folded.
const AGENT_KEYS: u64 = 3;

/// How far back `Op::AgentReplay` reaches among an account's agent transactions.
const REPLAY_DEPTH: usize = 12;

fn agent_key(acct: u64, agent: u64) -> u64 {
    100 + acct * AGENT_KEYS + agent
}

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
        agent: u64,
    },
    Revoke {
        acct: u64,
        agent: u64,
    },
    AgentPlace {
        acct: u64,
        agent: u64,
        price: u64,
        size: u64,
    },
    /// Resubmit an agent transaction built earlier (possibly before a revocation and a new
    /// approval of its key), or sign a new action with its (signer, nonce).
    AgentReplay {
        acct: u64,
        pick: usize,
        same_tx: bool,
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
        2 => (acct.clone(), 0..AGENT_KEYS).prop_map(|(acct, agent)| Op::Approve { acct, agent }),
        2 => (acct.clone(), 0..AGENT_KEYS).prop_map(|(acct, agent)| Op::Revoke { acct, agent }),
        3 => (acct.clone(), 0..AGENT_KEYS, 95u64..106, 1u64..10).prop_map(|(acct, agent, price, size)| Op::AgentPlace { acct, agent, price, size }),
        2 => (acct.clone(), any::<usize>(), any::<bool>()).prop_map(|(acct, pick, same_tx)| Op::AgentReplay { acct, pick, same_tx }),
        1 => (acct.clone(), 95u64..106, any::<bool>()).prop_map(|(acct, price, atomic)| Op::Requote { acct, price, atomic }),
        1 => acct.prop_map(|acct| Op::Replay { acct }),
    ]
}

/// Only the agent lifecycle, among few accounts: approvals, revocations, agent orders and
/// replays, with owner cancels so that a replayed order would have funds to lock.
fn agent_op() -> impl Strategy<Value = Op> {
    let acct = 0..2u64;
    prop_oneof![
        3 => (acct.clone(), 0..AGENT_KEYS).prop_map(|(acct, agent)| Op::Approve { acct, agent }),
        2 => (acct.clone(), 0..AGENT_KEYS).prop_map(|(acct, agent)| Op::Revoke { acct, agent }),
        4 => (acct.clone(), 0..AGENT_KEYS, 95u64..106, 1u64..10).prop_map(|(acct, agent, price, size)| Op::AgentPlace { acct, agent, price, size }),
        4 => (acct.clone(), any::<usize>(), any::<bool>()).prop_map(|(acct, pick, same_tx)| Op::AgentReplay { acct, pick, same_tx }),
        1 => acct.prop_map(|acct| Op::Cancel { acct, pick: 0, how: 3 }),
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
    g.limits.max_agents_per_account = AGENT_KEYS as u32 - 1;
    g
}

/// [`prop_genesis`] with idle funded accounts between the active ones, so that the active
/// accounts sit in different chunks of the ledger's copy-on-write storage
/// ([`crate::cow::CHUNK`]) and copies share some chunks and not others.
fn spread_genesis() -> Genesis {
    let mut g = prop_genesis();
    let active = std::mem::take(&mut g.allocations);
    for (i, chunk) in active.chunks(3).enumerate() {
        for j in 0..40u64 {
            g.allocations.push(crate::Allocation {
                account: key(1_000 + 40 * i as u64 + j),
                asset: USDC,
                amount: Amount(7),
            });
        }
        g.allocations.extend_from_slice(chunk);
    }
    g
}

/// Turns ops into transactions, tracking nonces per signer (`None` for the owner) the way
/// a client would: each key counts upwards from 1, whatever the ledger did with its
/// transactions.
struct Builder {
    nonces: BTreeMap<(u64, Option<u64>), u64>,
    /// Every agent transaction built, per account: what `Op::AgentReplay` resubmits.
    agent_txs: BTreeMap<u64, Vec<SignedTransaction>>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            nonces: Default::default(),
            agent_txs: Default::default(),
        }
    }

    fn next(&mut self, acct: u64, agent: Option<u64>) -> u64 {
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
                tx(acct, self.next(acct, None), place(req))
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
                tx(acct, self.next(acct, None), cancel(target))
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
                tx(acct, self.next(acct, None), action)
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
                tx(from, self.next(from, None), action)
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
                tx(acct, self.next(acct, None), action)
            }
            Op::Schedule { acct, dt } => {
                let at = dt.map(|dt| TimestampMs(time + dt));
                tx(
                    acct,
                    self.next(acct, None),
                    Action::ScheduleCancelAll(ScheduleCancelAll { at }),
                )
            }
            Op::Approve { acct, agent } => {
                let action = Action::ApproveAgent(ApproveAgent {
                    agent: key(agent_key(acct, agent)),
                    policy: AgentPolicy {
                        markets: MarketScope::Only(vec![BTC_USDC]),
                        max_orders_per_block: 2,
                        expires_at: TimestampMs(time + 6),
                    },
                });
                tx(acct, self.next(acct, None), action)
            }
            Op::Revoke { acct, agent } => {
                let action = Action::RevokeAgent(RevokeAgent {
                    agent: key(agent_key(acct, agent)),
                });
                tx(acct, self.next(acct, None), action)
            }
            Op::AgentPlace {
                acct,
                agent,
                price,
                size,
            } => {
                let side = if price % 2 == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let market = if size % 3 == 0 { ETH_USDC } else { BTC_USDC };
                let action = limit(market, side, price, size);
                let t = agent_tx(
                    acct,
                    agent_key(acct, agent),
                    self.next(acct, Some(agent)),
                    action,
                );
                self.agent_txs.entry(acct).or_default().push(t.clone());
                t
            }
            Op::AgentReplay {
                acct,
                pick,
                same_tx,
            } => {
                // One of the account's last few agent transactions: old enough to predate a
                // recent revocation, recent enough that a replay is likely to matter.
                let built = self.agent_txs.get(&acct).map_or(&[][..], Vec::as_slice);
                let recent = &built[built.len().saturating_sub(REPLAY_DEPTH)..];
                let mut t = match recent.get(pick % recent.len().max(1)) {
                    Some(t) => t.clone(),
                    None => agent_tx(acct, agent_key(acct, 0), 1, cancel(CancelTarget::All)),
                };
                if !same_tx {
                    t.tx.action = cancel(CancelTarget::Market(BTC_USDC));
                }
                t
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
                tx(acct, self.next(acct, None), action)
            }
            Op::Replay { acct } => {
                let n = self.nonces.get(&(acct, None)).copied().unwrap_or(0).max(1);
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

/// The replay audit: every (account, signer, nonce) that ran, with the height it ran at, and
/// the last height at whose end each agent key was found gone (revoked) from its account.
#[derive(Default)]
struct SpentNonces {
    spent: BTreeMap<(AccountId, AccountId, u64), u64>,
    retired: BTreeMap<(AccountId, AccountId), u64>,
}

impl SpentNonces {
    /// Check one executed block against the audit and record it: no (account, signer,
    /// nonce) that ran before may run again (its transaction is refused and the nonce left
    /// unconsumed). Returns how many of the block's transactions reused a pair that ran
    /// before its agent key was revoked, while the key was approved again: the replays the
    /// nonce floors exist to stop.
    fn record(
        &mut self,
        after: &Ledger,
        txs: &[SignedTransaction],
        result: &BlockResult,
    ) -> Result<usize, TestCaseError> {
        let by_hash: BTreeMap<Hash, &Transaction> = txs.iter().map(|t| (t.hash(), &t.tx)).collect();
        let mut across_revocation = 0;
        for outcome in &result.outcomes {
            let tx = by_hash[&outcome.tx];
            let pair = (tx.account, tx.signer, tx.nonce);
            if let Some(&ran_at) = self.spent.get(&pair) {
                prop_assert!(
                    !outcome.nonce_consumed && outcome.result.is_err(),
                    "nonce {} of signer {} ran at height {} and again at {}: {:?}",
                    tx.nonce,
                    tx.signer,
                    ran_at,
                    result.height,
                    outcome.result
                );
                let revoked_after_use = self
                    .retired
                    .get(&(tx.account, tx.signer))
                    .is_some_and(|&at| at >= ran_at);
                let approved_again = after
                    .account(&tx.account)
                    .is_some_and(|a| a.agents.contains_key(&tx.signer));
                across_revocation += usize::from(revoked_after_use && approved_again);
            } else if outcome.nonce_consumed {
                self.spent.insert(pair, result.height);
            }
        }
        for &(account, signer, _) in self.spent.keys() {
            if account != signer
                && after
                    .account(&account)
                    .is_some_and(|a| !a.agents.contains_key(&signer))
            {
                self.retired.insert((account, signer), result.height);
            }
        }
        Ok(across_revocation)
    }
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
        let mut audit = SpentNonces::default();
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
            audit.record(&a, &txs, &ra)?;
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

    /// Executing on copies of the ledger, as a validator does with every proposal, is
    /// exactly executing in place, and copies never see each other's writes: at every
    /// height a rival block runs on one copy (then kept or dropped) and the decided block
    /// on another (its roots sometimes finished on a copy taken half-way), which then
    /// replaces the committed ledger (the old one kept or dropped). The decided copy's
    /// results, state and block diff equal those of a ledger that executed the same blocks
    /// in place and was never copied; the committed ledger is unchanged by both executions
    /// and its balance proofs still verify against its root; every kept ledger still holds
    /// the state it had when it was kept.
    #[test]
    fn blocks_executed_on_copies_match_in_place_execution_and_leave_the_original_untouched(
        blocks in prop::collection::vec(
            (
                prop::collection::vec(op(), 0..24),
                prop::collection::vec(op(), 0..12),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            ),
            1..10,
        ),
    ) {
        let g = spread_genesis();
        let mut in_place = Ledger::from_genesis(&g).unwrap();
        let mut committed = Ledger::from_genesis(&g).unwrap();
        let mut kept: Vec<(Ledger, Vec<u8>, Hash)> = Vec::new();
        let mut builder = Builder::new();
        let mut time = 2_000u64;
        for (h, (ops, rival_ops, keep_rival, split_roots, keep_old)) in blocks.iter().enumerate() {
            let h = h as u64;
            time += 1 + (h % 3);
            let before = committed.to_bytes();
            let root_before = committed.state_root();

            let rival: Vec<SignedTransaction> =
                rival_ops.iter().map(|op| builder.build(&committed, op, time)).collect();
            let mut rival_copy = committed.clone();
            rival_copy.execute_block(parent(1_000 + h), TimestampMs(time), &rival).unwrap();
            rival_copy.check_invariants().map_err(TestCaseError::fail)?;
            if *keep_rival {
                let bytes = rival_copy.to_bytes();
                let root = rival_copy.state_root();
                kept.push((rival_copy, bytes, root));
            }

            let txs: Vec<SignedTransaction> =
                ops.iter().map(|op| builder.build(&committed, op, time)).collect();
            let mut copy = committed.clone();
            let result = if *split_roots {
                let ids: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
                let mut result = copy.apply_block(parent(h), TimestampMs(time), &txs, &ids).unwrap();
                let mut twin = copy.clone();
                let mut twin_result = result.clone();
                copy.finish_roots(&mut result);
                twin.finish_roots(&mut twin_result);
                prop_assert_eq!(&result, &twin_result);
                prop_assert_eq!(twin.to_bytes(), copy.to_bytes());
                prop_assert_eq!(twin.block_changes(), copy.block_changes());
                result
            } else {
                copy.execute_block(parent(h), TimestampMs(time), &txs).unwrap()
            };
            let expected = in_place.execute_block(parent(h), TimestampMs(time), &txs).unwrap();
            prop_assert_eq!(&result, &expected);
            prop_assert_eq!(copy.state_root(), in_place.state_root());
            prop_assert_eq!(copy.to_bytes(), in_place.to_bytes());
            prop_assert_eq!(copy.block_changes(), in_place.block_changes());
            copy.check_invariants().map_err(TestCaseError::fail)?;

            prop_assert_eq!(&committed.to_bytes(), &before);
            prop_assert_eq!(committed.state_root(), root_before);
            for i in 0..ACCOUNTS {
                let id = key(i);
                let proof = committed.balance_proof(&id).unwrap();
                for asset in [USDC, BTC, ETH] {
                    let balance = committed.balance(&id, asset);
                    prop_assert!(crate::verify_balance_proof(&root_before, &id, asset, &balance, &proof));
                }
            }
            let old = std::mem::replace(&mut committed, copy);
            if *keep_old {
                kept.push((old, before, root_before));
            }
            for (ledger, bytes, root) in &kept {
                prop_assert_eq!(&ledger.to_bytes(), bytes);
                prop_assert_eq!(ledger.state_root(), *root);
            }
        }
    }

    /// However agent keys are approved, revoked and approved again, no (account, signer,
    /// nonce) runs twice, and mempool admission refuses every one that already ran.
    #[test]
    fn agent_churn_never_runs_a_nonce_twice(
        blocks in prop::collection::vec(prop::collection::vec(agent_op(), 0..10), 1..30),
    ) {
        let mut l = Ledger::from_genesis(&prop_genesis()).unwrap();
        let mut builder = Builder::new();
        let mut audit = SpentNonces::default();
        let mut time = 2_000u64;
        for (h, ops) in blocks.iter().enumerate() {
            time += 1;
            let txs: Vec<SignedTransaction> = ops.iter().map(|op| builder.build(&l, op, time)).collect();
            for t in &txs {
                if audit.spent.contains_key(&(t.tx.account, t.tx.signer, t.tx.nonce)) {
                    prop_assert!(
                        l.check_transaction(t, TimestampMs(time)).is_err(),
                        "admission let a spent nonce {} of {} in",
                        t.tx.nonce,
                        t.tx.signer
                    );
                }
            }
            let r = l.execute_block(parent(h as u64), TimestampMs(time), &txs).unwrap();
            audit.record(&l, &txs, &r)?;
            l.check_invariants().map_err(TestCaseError::fail)?;
            let bound = prop_genesis().limits.max_agents_per_account as usize;
            for a in l.accounts() {
                prop_assert!(a.agents.len() <= bound && a.revoked_agents.len() <= bound);
            }
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
/// withdrawals, every common kind of rejection, revocations with folded nonce floors, and
/// replays of agent nonces across a revocation and a new approval, so the properties above
/// are not vacuously true.
#[test]
fn the_random_workload_exercises_fills_and_rejections() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let blocks = prop::collection::vec(prop::collection::vec(op(), 20..24), 60..61)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let mut l = Ledger::from_genesis(&prop_genesis()).unwrap();
    let mut builder = Builder::new();
    let mut audit = SpentNonces::default();
    let (mut fills, mut withdrawals, mut rejections, mut consumed_rejections) = (0, 0, 0, 0);
    let (mut replays_across_revocation, mut folded) = (0, 0);
    for (h, ops) in blocks.iter().enumerate() {
        let time = 2_000 + h as u64 * 2;
        let txs: Vec<_> = ops.iter().map(|op| builder.build(&l, op, time)).collect();
        let r = l
            .execute_block(parent(h as u64), TimestampMs(time), &txs)
            .unwrap();
        l.check_invariants().unwrap();
        replays_across_revocation += audit.record(&l, &txs, &r).unwrap();
        folded += l
            .accounts()
            .iter()
            .filter(|a| a.agent_nonce_floor.is_some())
            .count();
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
    assert!(
        replays_across_revocation > 0,
        "no replay across a revocation was attempted"
    );
    assert!(folded > 0, "no revoked agent's floor was ever folded");
}

/// The final state root and the root over every block's fills root of
/// [`a_fixed_random_run_reaches_the_pinned_roots`].
const PINNED_STATE_ROOT: &str = "35e217df4e4cc750e21c255b1a5d930a587c8b1ce90af418e90b2b62d50240ce";
const PINNED_FILLS: &str = "a9432f61fb0027a9ca6647b12e0b7a892138e1980feb75923d8b1fff3295d7f3";

/// The state after a fixed run of the random workload, pinned: the ledger's storage may
/// change for speed (copy-on-write accounts and trees, see `crate::cow`), its results may
/// not. The roots were computed by the implementation that kept plain vectors and maps; a
/// change here is a change of the state transition and must be deliberate.
#[test]
fn a_fixed_random_run_reaches_the_pinned_roots() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let blocks = prop::collection::vec(prop::collection::vec(op(), 20..24), 60..61)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let mut l = Ledger::from_genesis(&spread_genesis()).unwrap();
    let mut builder = Builder::new();
    let mut fills_roots = Vec::new();
    for (h, ops) in blocks.iter().enumerate() {
        let time = 2_000 + h as u64 * 2;
        let txs: Vec<_> = ops.iter().map(|op| builder.build(&l, op, time)).collect();
        // Every block on a copy, as a validator runs it.
        let mut next = l.clone();
        let r = next
            .execute_block(parent(h as u64), TimestampMs(time), &txs)
            .unwrap();
        fills_roots.push(r.fills_root);
        l = next;
    }
    let fills = dex_types::merkle::root(&fills_roots);
    assert_eq!(
        (l.state_root().to_string(), fills.to_string()),
        (PINNED_STATE_ROOT.to_string(), PINNED_FILLS.to_string())
    );
}
