//! The read model against the ledger it mirrors: after every block of random trading, the
//! index's books, checksums, open orders and order states equal what the ledger holds.

use dex_api::checksum::book_checksum;
use dex_api::wire::OrderState;
use dex_api::{ApiBackend, Clock, LocalChain, LocalChainConfig, demo_genesis};
use dex_types::{
    AccountId, Action, BatchLeg, CancelTarget, ClientOrderId, Keypair, MarketId, ModifyOrder,
    OrderBatch, OrderId, OrderRequest, OrderType, PriceTicks, ScheduleCancelAll,
    SelfTradePrevention, Side, SizeLots, TimeInForce, TimestampMs, Transaction,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

const START_MS: u64 = 1_700_000_000_000;
const MARKET: MarketId = MarketId(1);

#[derive(Clone, Debug)]
enum Step {
    Place {
        trader: usize,
        side: Side,
        price: u64,
        size: u64,
        tif: u8,
        cid: u64,
    },
    CancelClient {
        trader: usize,
        cid: u64,
    },
    CancelMarket {
        trader: usize,
    },
    Modify {
        trader: usize,
        nth: usize,
        price: Option<u64>,
        size: Option<u64>,
    },
    DeadMan {
        trader: usize,
        in_ms: u64,
    },
    Block {
        advance_ms: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..4usize, any::<bool>(), 9_990..10_010u64, 1..40u64, 0..5u8, 0..12u64).prop_map(
            |(trader, buy, price, size, tif, cid)| Step::Place {
                trader,
                side: if buy { Side::Buy } else { Side::Sell },
                price,
                size,
                tif,
                cid,
            }
        ),
        1 => (0..4usize, 0..12u64).prop_map(|(trader, cid)| Step::CancelClient { trader, cid }),
        1 => (0..4usize).prop_map(|trader| Step::CancelMarket { trader }),
        2 => (0..4usize, 0..8usize, proptest::option::of(9_990..10_010u64), proptest::option::of(1..40u64))
            .prop_map(|(trader, nth, price, size)| Step::Modify { trader, nth, price, size }),
        1 => (0..4usize, 1..3_000u64).prop_map(|(trader, in_ms)| Step::DeadMan { trader, in_ms }),
        3 => (0..2_000u64).prop_map(|advance_ms| Step::Block { advance_ms }),
    ]
}

struct World {
    chain: LocalChain,
    keys: Vec<Keypair>,
    nonces: Vec<u64>,
}

impl World {
    fn new() -> World {
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed([i; 32])).collect();
        let accounts: Vec<AccountId> = keys.iter().map(Keypair::account_id).collect();
        let config = LocalChainConfig {
            clock: Clock::manual(START_MS),
            ..LocalChainConfig::default()
        };
        let chain = LocalChain::new(&demo_genesis(7, START_MS, &accounts), config).unwrap();
        World {
            chain,
            keys,
            nonces: vec![0; 4],
        }
    }

    async fn send(&mut self, trader: usize, action: Action) {
        self.nonces[trader] += 1;
        let key = &self.keys[trader];
        let tx = Transaction {
            chain_id: dex_types::ChainId(7),
            account: key.account_id(),
            signer: key.account_id(),
            nonce: self.nonces[trader],
            expires_at: TimestampMs(u64::MAX),
            action,
        };
        // Admission may refuse (a modify of an unknown order...): that is part of the game.
        let _ = self.chain.submit(key.sign(tx).unwrap()).await;
    }

    /// The index agrees with the ledger.
    fn check(&self) {
        let hub = self.chain.hub();
        let index = hub.read();
        self.chain.with_ledger(|ledger| {
            assert_eq!(index.height(), ledger.height());
            let book = ledger.book(MARKET).unwrap();
            let ledger_side = |side| {
                book.depth(side, usize::MAX)
                    .into_iter()
                    .map(|l| (l.price, l.size, l.orders))
                    .collect::<Vec<_>>()
            };
            let (bids, asks) = index.book_levels(MARKET).unwrap();
            assert_eq!(
                bids,
                ledger_side(Side::Buy),
                "bids differ at {}",
                ledger.height()
            );
            assert_eq!(
                asks,
                ledger_side(Side::Sell),
                "asks differ at {}",
                ledger.height()
            );
            let view = index.book(MARKET, 1_000).unwrap();
            let expected = book_checksum(
                bids.iter().map(|l| (l.0, l.1)),
                asks.iter().map(|l| (l.0, l.1)),
            );
            assert_eq!(view.checksum, expected);
            // Queues: each level's orders in the ledger's time priority.
            for (side, levels) in [(Side::Buy, &bids), (Side::Sell, &asks)] {
                for (price, _, _) in levels.iter().take(3) {
                    let ours: Vec<u64> = index
                        .level_orders(MARKET, side, *price)
                        .unwrap()
                        .orders
                        .iter()
                        .map(|o| o.order_id)
                        .collect();
                    let theirs: Vec<u64> = book
                        .level_orders(side, *price)
                        .iter()
                        .map(|o| o.id.0)
                        .collect();
                    assert_eq!(ours, theirs);
                }
            }
            // Every open order is open in the index with the same remaining size.
            let mut by_account: BTreeMap<AccountId, Vec<u64>> = BTreeMap::new();
            for order in ledger.open_orders() {
                let owner = ledger.account_by_index(order.owner).unwrap().id;
                by_account.entry(owner).or_default().push(order.id.0);
                let status = index.order(order.id).expect("open order indexed");
                assert_eq!(status.state, OrderState::Open);
                let market = ledger.market(MARKET).unwrap();
                assert_eq!(
                    status.remaining,
                    market.lots_to_size(order.remaining).unwrap()
                );
                if let Some(cid) = order.client_order_id {
                    let by_cid = index.order_by_client_id(&owner, cid).unwrap();
                    assert_eq!(by_cid.order_id, Some(order.id.0));
                }
            }
            for key in &self.keys {
                let id = key.account_id();
                let ours: Vec<u64> = index
                    .open_orders(&id)
                    .iter()
                    .filter_map(|o| o.order_id)
                    .collect();
                assert_eq!(ours, by_account.remove(&id).unwrap_or_default());
            }
        });
    }

    async fn run(&mut self, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Place {
                    trader,
                    side,
                    price,
                    size,
                    tif,
                    cid,
                } => {
                    let time_in_force = match tif {
                        0 | 1 => TimeInForce::Gtc,
                        2 => TimeInForce::Ioc,
                        3 => TimeInForce::PostOnly,
                        _ => TimeInForce::Gtt {
                            expires_at: TimestampMs(
                                self.chain.clock().now().0 + 500 + price % 1_000,
                            ),
                        },
                    };
                    let order = OrderRequest {
                        market: MARKET,
                        client_order_id: Some(ClientOrderId(cid)),
                        side,
                        order_type: OrderType::Limit,
                        price_ticks: PriceTicks(price),
                        size_lots: SizeLots(size),
                        time_in_force,
                        self_trade: if cid % 2 == 0 {
                            SelfTradePrevention::CancelResting
                        } else {
                            SelfTradePrevention::DecrementAndCancel
                        },
                    };
                    self.send(
                        trader,
                        Action::Batch(OrderBatch {
                            legs: vec![BatchLeg::Place(order)],
                            atomic: cid % 3 != 0,
                        }),
                    )
                    .await;
                }
                Step::CancelClient { trader, cid } => {
                    self.send(
                        trader,
                        Action::Batch(OrderBatch {
                            legs: vec![BatchLeg::Cancel(CancelTarget::ClientOrder(ClientOrderId(
                                cid,
                            )))],
                            atomic: true,
                        }),
                    )
                    .await;
                }
                Step::CancelMarket { trader } => {
                    self.send(
                        trader,
                        Action::Batch(OrderBatch {
                            legs: vec![BatchLeg::Cancel(CancelTarget::Market(MARKET))],
                            atomic: true,
                        }),
                    )
                    .await;
                }
                Step::Modify {
                    trader,
                    nth,
                    price,
                    size,
                } => {
                    if price.is_none() && size.is_none() {
                        continue;
                    }
                    let id = self.keys[trader].account_id();
                    let open = self.chain.hub().read().open_orders(&id);
                    let Some(order) = open.get(nth % open.len().max(1)) else {
                        continue;
                    };
                    let order_id = OrderId(order.order_id.unwrap());
                    self.send(
                        trader,
                        Action::Modify(ModifyOrder {
                            order_id,
                            price_ticks: price.map(PriceTicks),
                            size_lots: size.map(SizeLots),
                        }),
                    )
                    .await;
                }
                Step::DeadMan { trader, in_ms } => {
                    let at = self.chain.clock().now().0 + in_ms;
                    self.send(
                        trader,
                        Action::ScheduleCancelAll(ScheduleCancelAll {
                            at: Some(TimestampMs(at)),
                        }),
                    )
                    .await;
                }
                Step::Block { advance_ms } => {
                    self.chain.clock().advance(advance_ms);
                    self.chain.commit_block();
                    self.check();
                }
            }
        }
        self.chain.commit_block();
        self.check();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn index_mirrors_the_ledger_after_every_block(steps in proptest::collection::vec(step(), 1..120)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let mut world = World::new();
            world.run(steps).await;
        });
    }
}

#[tokio::test]
async fn diffs_from_a_snapshot_rebuild_the_book_and_replay_is_complete() {
    let mut world = World::new();
    let before = world.chain.hub().read().book(MARKET, 1_000).unwrap();
    let steps: Vec<Step> = (0..60u64)
        .map(|i| match i % 4 {
            3 => Step::Block { advance_ms: 10 },
            _ => Step::Place {
                trader: (i % 4) as usize,
                side: if i % 3 == 0 { Side::Buy } else { Side::Sell },
                price: 9_995 + i % 10,
                size: 1 + i % 7,
                tif: 0,
                cid: i,
            },
        })
        .collect();
    world.run(steps).await;
    let index = world.chain.hub().read();
    let diffs = index.book_diffs_from(MARKET, before.seq + 1).unwrap();
    assert!(!diffs.is_empty());
    // Seqs are consecutive, and the last diff carries the current checksum.
    for pair in diffs.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    let now = index.book(MARKET, 1_000).unwrap();
    assert_eq!(diffs.last().unwrap().seq, now.seq);
    assert_eq!(diffs.last().unwrap().checksum, now.checksum);
    // Every block is retained and replayable from genesis.
    let feeds = index.feeds_after(0).unwrap();
    assert_eq!(feeds.len() as u64, index.height());
    assert_eq!(feeds.first().unwrap().height(), 1);
    // A seq beyond the current one asks for nothing.
    assert_eq!(index.book_diffs_from(MARKET, now.seq + 1), Some(Vec::new()));
}
