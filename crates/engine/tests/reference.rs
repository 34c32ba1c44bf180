//! The engine against a simple, obviously correct reference book, on long random command
//! streams: identical events after every command, plus invariants checked from the events
//! alone (the book is never crossed, quantity is neither created nor destroyed, no fill is
//! worse than its limit or away from the maker's price, price-time priority holds), plus
//! determinism and snapshot restore.

use dex_engine::{
    BookConfig, CancelReason, Command, Event, EventDigest, NewOrder, OrderBook, OrderView,
    ReduceReason, RejectReason,
};
use dex_types::{
    AccountIndex, OrderId, OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce,
    TimestampMs,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------
// The reference book: a flat Vec of resting orders, every question answered by a scan.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct RefOrder {
    id: u64,
    owner: u64,
    side: Side,
    price: u64,
    remaining: u64,
    tif: TimeInForce,
    stp: SelfTradePrevention,
    /// Time priority: lower rested earlier.
    seq: u64,
}

#[derive(Debug, Clone)]
struct RefBook {
    orders: Vec<RefOrder>,
    next_seq: u64,
    expired_until: u64,
    max_orders: usize,
    max_size: u64,
}

#[derive(Debug, Clone, Copy)]
struct RefTaker {
    id: u64,
    owner: u64,
    side: Side,
    limit: u64,
    remaining: u64,
    stp: SelfTradePrevention,
}

fn crosses(taker_side: Side, maker_price: u64, limit: u64) -> bool {
    match taker_side {
        Side::Buy => maker_price <= limit,
        Side::Sell => maker_price >= limit,
    }
}

/// Sort key of price-time priority within one side: smaller is better.
fn priority(order: &RefOrder) -> (i128, u64) {
    let price = i128::from(order.price);
    match order.side {
        Side::Buy => (-price, order.seq),
        Side::Sell => (price, order.seq),
    }
}

impl RefBook {
    fn new(max_orders: usize, max_size: u64) -> Self {
        RefBook {
            orders: Vec::new(),
            next_seq: 0,
            expired_until: 0,
            max_orders,
            max_size,
        }
    }

    fn find(&self, id: u64) -> Option<usize> {
        self.orders.iter().position(|order| order.id == id)
    }

    /// Index of the best resting order on `side`.
    fn best(&self, side: Side) -> Option<usize> {
        (0..self.orders.len())
            .filter(|&i| self.orders[i].side == side)
            .min_by_key(|&i| priority(&self.orders[i]))
    }

    fn cancelled(order: &RefOrder, reason: CancelReason) -> Event {
        Event::Cancelled {
            order_id: OrderId(order.id),
            owner: AccountIndex(order.owner),
            side: order.side,
            price: PriceTicks(order.price),
            remaining: SizeLots(order.remaining),
            reason,
        }
    }

    fn taker_cancelled(taker: &RefTaker, reason: CancelReason) -> Event {
        Event::Cancelled {
            order_id: OrderId(taker.id),
            owner: AccountIndex(taker.owner),
            side: taker.side,
            price: PriceTicks(taker.limit),
            remaining: SizeLots(taker.remaining),
            reason,
        }
    }

    fn apply(&mut self, command: &Command, events: &mut Vec<Event>) {
        match *command {
            Command::Place(order) => self.place(order, events),
            Command::Cancel { order_id } => match self.find(order_id.0) {
                Some(i) => {
                    let order = self.orders.remove(i);
                    events.push(Self::cancelled(&order, CancelReason::User));
                }
                None => events.push(reject(order_id, RejectReason::UnknownOrder)),
            },
            Command::CancelAll { owner } => {
                let mut mine: Vec<u64> = self
                    .orders
                    .iter()
                    .filter(|order| order.owner == owner.0)
                    .map(|order| order.id)
                    .collect();
                mine.sort_unstable();
                for id in mine {
                    let order = self.orders.remove(self.find(id).unwrap());
                    events.push(Self::cancelled(&order, CancelReason::User));
                }
            }
            Command::Reduce { order_id, new_size } => {
                if new_size.0 == 0 {
                    return events.push(reject(order_id, RejectReason::ZeroSize));
                }
                let Some(i) = self.find(order_id.0) else {
                    return events.push(reject(order_id, RejectReason::UnknownOrder));
                };
                let order = &mut self.orders[i];
                if new_size.0 >= order.remaining {
                    return events.push(reject(order_id, RejectReason::NotAReduction));
                }
                let by = order.remaining - new_size.0;
                order.remaining = new_size.0;
                events.push(Event::Reduced {
                    order_id,
                    owner: AccountIndex(order.owner),
                    side: order.side,
                    price: PriceTicks(order.price),
                    reduced_by: SizeLots(by),
                    remaining: new_size,
                    reason: ReduceReason::User,
                });
            }
            Command::Replace {
                order_id,
                new_price,
                new_size,
            } => self.replace(order_id, new_price.0, new_size.0, events),
            Command::ExpireUntil { now } => {
                self.expired_until = self.expired_until.max(now.0);
                let mut due: Vec<(u64, u64)> = self
                    .orders
                    .iter()
                    .filter_map(|order| match order.tif {
                        TimeInForce::Gtt { expires_at } if expires_at.0 <= now.0 => {
                            Some((expires_at.0, order.id))
                        }
                        _ => None,
                    })
                    .collect();
                due.sort_unstable();
                for (at, id) in due {
                    let order = self.orders.remove(self.find(id).unwrap());
                    events.push(Event::Expired {
                        order_id: OrderId(id),
                        owner: AccountIndex(order.owner),
                        side: order.side,
                        price: PriceTicks(order.price),
                        remaining: SizeLots(order.remaining),
                        expires_at: TimestampMs(at),
                    });
                }
            }
        }
    }

    fn would_cross(&self, side: Side, price: u64) -> bool {
        self.best(side.opposite())
            .is_some_and(|i| crosses(side, self.orders[i].price, price))
    }

    fn place(&mut self, order: NewOrder, events: &mut Vec<Event>) {
        let rests = order.order_type == OrderType::Limit
            && matches!(
                order.tif,
                TimeInForce::Gtc | TimeInForce::Gtt { .. } | TimeInForce::PostOnly
            );
        let reason = if order.size.0 == 0 {
            Some(RejectReason::ZeroSize)
        } else if order.size.0 > self.max_size {
            Some(RejectReason::SizeTooLarge)
        } else if order.price.0 == 0 {
            Some(RejectReason::ZeroPrice)
        } else if order.order_type == OrderType::Market
            && !matches!(order.tif, TimeInForce::Ioc | TimeInForce::Fok)
        {
            Some(RejectReason::MarketOrderMustBeImmediate)
        } else if matches!(order.tif, TimeInForce::Gtt { expires_at } if expires_at.0 <= self.expired_until)
        {
            Some(RejectReason::AlreadyExpired)
        } else if self.find(order.id.0).is_some() {
            Some(RejectReason::DuplicateOrderId)
        } else if order.tif == TimeInForce::PostOnly
            && order.order_type == OrderType::Limit
            && self.would_cross(order.side, order.price.0)
        {
            Some(RejectReason::PostOnlyWouldCross)
        } else if rests && self.orders.len() >= self.max_orders {
            Some(RejectReason::BookFull)
        } else {
            None
        };
        if let Some(reason) = reason {
            return events.push(reject(order.id, reason));
        }
        events.push(Event::Accepted {
            order_id: order.id,
            owner: order.owner,
            side: order.side,
            order_type: order.order_type,
            price: order.price,
            size: order.size,
            tif: order.tif,
            stp: order.stp,
        });
        let mut taker = RefTaker {
            id: order.id.0,
            owner: order.owner.0,
            side: order.side,
            limit: order.price.0,
            remaining: order.size.0,
            stp: order.stp,
        };
        if order.tif == TimeInForce::Fok {
            // Atomicity by definition: try it on a copy; go ahead only if the copy traded
            // the whole size.
            let mut trial = self.clone();
            let mut trial_taker = taker;
            let mut scratch = Vec::new();
            trial.take(&mut trial_taker, &mut scratch);
            let traded: u64 = scratch
                .iter()
                .map(|event| match event {
                    Event::Fill { size, .. } => size.0,
                    _ => 0,
                })
                .sum();
            if traded != order.size.0 {
                return events.push(Self::taker_cancelled(&taker, CancelReason::FillOrKill));
            }
        }
        self.finish(&mut taker, rests.then_some(order.tif), events);
    }

    fn finish(&mut self, taker: &mut RefTaker, rest: Option<TimeInForce>, events: &mut Vec<Event>) {
        let stopped = self.take(taker, events);
        if stopped || taker.remaining == 0 {
            return;
        }
        match rest {
            Some(tif) => {
                self.orders.push(RefOrder {
                    id: taker.id,
                    owner: taker.owner,
                    side: taker.side,
                    price: taker.limit,
                    remaining: taker.remaining,
                    tif,
                    stp: taker.stp,
                    seq: self.next_seq,
                });
                self.next_seq += 1;
                events.push(Event::Rested {
                    order_id: OrderId(taker.id),
                    owner: AccountIndex(taker.owner),
                    side: taker.side,
                    price: PriceTicks(taker.limit),
                    remaining: SizeLots(taker.remaining),
                });
            }
            None => events.push(Self::taker_cancelled(
                taker,
                CancelReason::ImmediateRemainder,
            )),
        }
    }

    /// Match; returns whether self-trade prevention finished the taker.
    fn take(&mut self, taker: &mut RefTaker, events: &mut Vec<Event>) -> bool {
        while taker.remaining > 0 {
            let Some(i) = self.best(taker.side.opposite()) else {
                return false;
            };
            if !crosses(taker.side, self.orders[i].price, taker.limit) {
                return false;
            }
            let maker = self.orders[i].clone();
            if maker.owner == taker.owner {
                match taker.stp {
                    SelfTradePrevention::CancelResting => {
                        self.orders.remove(i);
                        events.push(Self::cancelled(&maker, CancelReason::SelfTrade));
                    }
                    SelfTradePrevention::CancelIncoming => {
                        events.push(Self::taker_cancelled(taker, CancelReason::SelfTrade));
                        return true;
                    }
                    SelfTradePrevention::CancelBoth => {
                        self.orders.remove(i);
                        events.push(Self::cancelled(&maker, CancelReason::SelfTrade));
                        events.push(Self::taker_cancelled(taker, CancelReason::SelfTrade));
                        return true;
                    }
                    SelfTradePrevention::DecrementAndCancel => {
                        let overlap = maker.remaining.min(taker.remaining);
                        if maker.remaining > overlap {
                            self.orders[i].remaining -= overlap;
                            events.push(Event::Reduced {
                                order_id: OrderId(maker.id),
                                owner: AccountIndex(maker.owner),
                                side: maker.side,
                                price: PriceTicks(maker.price),
                                reduced_by: SizeLots(overlap),
                                remaining: SizeLots(maker.remaining - overlap),
                                reason: ReduceReason::SelfTrade,
                            });
                        } else {
                            self.orders.remove(i);
                            events.push(Self::cancelled(&maker, CancelReason::SelfTrade));
                        }
                        if taker.remaining > overlap {
                            taker.remaining -= overlap;
                            events.push(Event::Reduced {
                                order_id: OrderId(taker.id),
                                owner: AccountIndex(taker.owner),
                                side: taker.side,
                                price: PriceTicks(taker.limit),
                                reduced_by: SizeLots(overlap),
                                remaining: SizeLots(taker.remaining),
                                reason: ReduceReason::SelfTrade,
                            });
                        } else {
                            events.push(Self::taker_cancelled(taker, CancelReason::SelfTrade));
                            return true;
                        }
                    }
                }
                continue;
            }
            let size = maker.remaining.min(taker.remaining);
            taker.remaining -= size;
            self.orders[i].remaining -= size;
            events.push(Event::Fill {
                maker_order_id: OrderId(maker.id),
                maker_owner: AccountIndex(maker.owner),
                taker_order_id: OrderId(taker.id),
                taker_owner: AccountIndex(taker.owner),
                taker_side: taker.side,
                price: PriceTicks(maker.price),
                size: SizeLots(size),
                maker_remaining: SizeLots(maker.remaining - size),
                taker_remaining: SizeLots(taker.remaining),
            });
            if self.orders[i].remaining == 0 {
                self.orders.remove(i);
            }
        }
        false
    }

    fn replace(&mut self, order_id: OrderId, price: u64, size: u64, events: &mut Vec<Event>) {
        let reason = if size == 0 {
            Some(RejectReason::ZeroSize)
        } else if size > self.max_size {
            Some(RejectReason::SizeTooLarge)
        } else if price == 0 {
            Some(RejectReason::ZeroPrice)
        } else if self.find(order_id.0).is_none() {
            Some(RejectReason::UnknownOrder)
        } else {
            None
        };
        if let Some(reason) = reason {
            return events.push(reject(order_id, reason));
        }
        let i = self.find(order_id.0).unwrap();
        let old = self.orders[i].clone();
        let replaced = |kept| Event::Replaced {
            order_id,
            owner: AccountIndex(old.owner),
            side: old.side,
            old_price: PriceTicks(old.price),
            old_remaining: SizeLots(old.remaining),
            new_price: PriceTicks(price),
            new_size: SizeLots(size),
            priority_kept: kept,
        };
        if price == old.price && size <= old.remaining {
            self.orders[i].remaining = size;
            return events.push(replaced(true));
        }
        if old.tif == TimeInForce::PostOnly && self.would_cross(old.side, price) {
            return events.push(reject(order_id, RejectReason::PostOnlyWouldCross));
        }
        self.orders.remove(i);
        events.push(replaced(false));
        let mut taker = RefTaker {
            id: old.id,
            owner: old.owner,
            side: old.side,
            limit: price,
            remaining: size,
            stp: old.stp,
        };
        self.finish(&mut taker, Some(old.tif), events);
    }

    /// Resting orders in the engine's snapshot order: bids best first, then asks.
    fn in_priority(&self) -> Vec<OrderView> {
        let mut sorted: Vec<&RefOrder> = self.orders.iter().collect();
        sorted.sort_by_key(|order| (order.side, priority(order)));
        sorted
            .into_iter()
            .map(|order| OrderView {
                id: OrderId(order.id),
                owner: AccountIndex(order.owner),
                side: order.side,
                price: PriceTicks(order.price),
                remaining: SizeLots(order.remaining),
                tif: order.tif,
                stp: order.stp,
            })
            .collect()
    }
}

fn reject(order_id: OrderId, reason: RejectReason) -> Event {
    Event::Rejected { order_id, reason }
}

// ---------------------------------------------------------------------------------------
// Invariants checked from the events alone.
// ---------------------------------------------------------------------------------------

/// What the events say is resting: id → (side, price, remaining, time priority).
#[derive(Debug, Default)]
struct Shadow {
    resting: BTreeMap<u64, (Side, u64, u64, u64)>,
    next_seq: u64,
}

/// The order being matched right now: (id, side, limit, open quantity).
type Incoming = Option<(u64, Side, u64, u64)>;

impl Shadow {
    /// The shadow order that price-time priority puts first on `side`.
    fn first(&self, side: Side) -> Option<u64> {
        self.resting
            .iter()
            .filter(|(_, (s, ..))| *s == side)
            .min_by_key(|(_, (s, price, _, seq))| {
                let price = i128::from(*price);
                (if *s == Side::Buy { -price } else { price }, *seq)
            })
            .map(|(&id, _)| id)
    }

    /// Account for every lot of every event; panics on the first one that does not add up.
    fn apply(&mut self, events: &[Event]) {
        let mut incoming: Incoming = None;
        for event in events {
            match *event {
                Event::Accepted {
                    order_id,
                    side,
                    price,
                    size,
                    ..
                } => {
                    assert!(incoming.is_none(), "two incoming orders at once");
                    incoming = Some((order_id.0, side, price.0, size.0));
                }
                Event::Rejected { .. } => {}
                Event::Fill {
                    maker_order_id,
                    taker_order_id,
                    taker_side,
                    price,
                    size,
                    maker_remaining,
                    taker_remaining,
                    ..
                } => {
                    let (id, side, limit, open) = incoming.expect("fill without a taker");
                    assert_eq!(id, taker_order_id.0);
                    assert_eq!(side, taker_side);
                    assert!(size.0 > 0, "empty fill");
                    assert!(crosses(side, price.0, limit), "fill worse than the limit");
                    assert_eq!(
                        self.first(side.opposite()),
                        Some(maker_order_id.0),
                        "maker is not first in price-time priority"
                    );
                    let maker = self.resting.get_mut(&maker_order_id.0).unwrap();
                    assert_eq!(maker.1, price.0, "fill away from the maker's price");
                    assert_eq!(maker.2 - size.0, maker_remaining.0, "maker quantity");
                    assert_eq!(open - size.0, taker_remaining.0, "taker quantity");
                    maker.2 = maker_remaining.0;
                    if maker_remaining.0 == 0 {
                        self.resting.remove(&maker_order_id.0);
                    }
                    incoming = Some((id, side, limit, taker_remaining.0));
                }
                Event::Rested {
                    order_id,
                    side,
                    price,
                    remaining,
                    ..
                } => {
                    let (id, taker_side, limit, open) = incoming.take().expect("rest of nothing");
                    assert_eq!(
                        (id, taker_side, limit, open),
                        (order_id.0, side, price.0, remaining.0)
                    );
                    assert!(remaining.0 > 0);
                    let before = self
                        .resting
                        .insert(id, (side, price.0, remaining.0, self.next_seq));
                    assert!(before.is_none(), "rested twice");
                    self.next_seq += 1;
                }
                Event::Cancelled {
                    order_id,
                    side,
                    price,
                    remaining,
                    reason,
                    ..
                } => match incoming {
                    Some((id, _, limit, open)) if id == order_id.0 => {
                        assert_eq!((limit, open), (price.0, remaining.0), "taker cancel");
                        incoming = None;
                    }
                    _ => {
                        if reason == CancelReason::SelfTrade {
                            assert_eq!(self.first(side), Some(order_id.0), "STP out of order");
                        }
                        let order = self.resting.remove(&order_id.0).expect("cancel of nothing");
                        assert_eq!((order.0, order.1, order.2), (side, price.0, remaining.0));
                    }
                },
                Event::Reduced {
                    order_id,
                    side,
                    price,
                    reduced_by,
                    remaining,
                    reason,
                    ..
                } => match incoming {
                    Some((id, taker_side, limit, open)) if id == order_id.0 => {
                        assert_eq!(open, reduced_by.0 + remaining.0);
                        assert_eq!(limit, price.0);
                        incoming = Some((id, taker_side, limit, remaining.0));
                    }
                    _ => {
                        if reason == ReduceReason::SelfTrade {
                            assert_eq!(self.first(side), Some(order_id.0), "STP out of order");
                        }
                        let order = self
                            .resting
                            .get_mut(&order_id.0)
                            .expect("reduce of nothing");
                        assert_eq!(order.1, price.0);
                        assert_eq!(order.2, reduced_by.0 + remaining.0);
                        assert!(remaining.0 > 0 && reduced_by.0 > 0);
                        order.2 = remaining.0;
                    }
                },
                Event::Replaced {
                    order_id,
                    side,
                    old_price,
                    old_remaining,
                    new_price,
                    new_size,
                    priority_kept,
                    ..
                } => {
                    let order = *self.resting.get(&order_id.0).expect("replace of nothing");
                    assert_eq!(
                        (order.0, order.1, order.2),
                        (side, old_price.0, old_remaining.0)
                    );
                    if priority_kept {
                        assert_eq!(new_price.0, old_price.0);
                        assert!(new_size.0 <= old_remaining.0);
                        self.resting.get_mut(&order_id.0).unwrap().2 = new_size.0;
                    } else {
                        self.resting.remove(&order_id.0);
                        incoming = Some((order_id.0, side, new_price.0, new_size.0));
                    }
                }
                Event::Expired {
                    order_id,
                    side,
                    price,
                    remaining,
                    ..
                } => {
                    let order = self.resting.remove(&order_id.0).expect("expiry of nothing");
                    assert_eq!((order.0, order.1, order.2), (side, price.0, remaining.0));
                }
            }
        }
        if let Some((_, _, _, open)) = incoming {
            assert_eq!(
                open, 0,
                "an incoming order's quantity was left unaccounted for"
            );
        }
    }

    /// The engine's book must hold exactly what the events say, in priority order.
    fn check_against(&self, book: &OrderBook) {
        let views: Vec<OrderView> = book.orders_in_priority().collect();
        assert_eq!(views.len(), self.resting.len(), "resting count");
        for pair in views.windows(2) {
            if pair[0].side == pair[1].side && pair[0].price == pair[1].price {
                let a = self.resting[&pair[0].id.0].3;
                let b = self.resting[&pair[1].id.0].3;
                assert!(a < b, "FIFO broken within a level");
            }
        }
        for view in &views {
            let (side, price, remaining, _) = self.resting[&view.id.0];
            assert_eq!(
                (side, price, remaining),
                (view.side, view.price.0, view.remaining.0)
            );
        }
        if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
            assert!(bid < ask, "crossed book");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Random command streams.
// ---------------------------------------------------------------------------------------

fn arb_tif() -> impl Strategy<Value = TimeInForce> {
    prop_oneof![
        4 => Just(TimeInForce::Gtc),
        2 => (1u64..200).prop_map(|at| TimeInForce::Gtt { expires_at: TimestampMs(at) }),
        2 => Just(TimeInForce::Ioc),
        2 => Just(TimeInForce::Fok),
        2 => Just(TimeInForce::PostOnly),
    ]
}

fn arb_stp() -> impl Strategy<Value = SelfTradePrevention> {
    prop_oneof![
        Just(SelfTradePrevention::CancelResting),
        Just(SelfTradePrevention::CancelIncoming),
        Just(SelfTradePrevention::CancelBoth),
        Just(SelfTradePrevention::DecrementAndCancel),
    ]
}

fn arb_price() -> impl Strategy<Value = PriceTicks> {
    prop_oneof![30 => 95u64..=105, 1 => Just(0u64)].prop_map(PriceTicks)
}

fn arb_order() -> impl Strategy<Value = NewOrder> {
    (
        0u64..48,
        0u64..4,
        prop_oneof![Just(Side::Buy), Just(Side::Sell)],
        prop_oneof![6 => Just(OrderType::Limit), 1 => Just(OrderType::Market)],
        arb_price(),
        0u64..=14,
        arb_tif(),
        arb_stp(),
    )
        .prop_map(|(id, owner, side, order_type, price, size, tif, stp)| {
            // Market orders are mostly IOC/FOK; a few keep a resting TIF to test rejection.
            let tif = match (order_type, tif) {
                (OrderType::Market, TimeInForce::Gtc) => TimeInForce::Ioc,
                (_, tif) => tif,
            };
            NewOrder {
                id: OrderId(id),
                owner: AccountIndex(owner),
                side,
                order_type,
                price,
                size: SizeLots(size),
                tif,
                stp,
            }
        })
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        12 => arb_order().prop_map(Command::Place),
        4 => (0u64..48).prop_map(|id| Command::Cancel { order_id: OrderId(id) }),
        1 => (0u64..4).prop_map(|owner| Command::CancelAll { owner: AccountIndex(owner) }),
        2 => (0u64..48, 0u64..14).prop_map(|(id, size)| Command::Reduce {
            order_id: OrderId(id),
            new_size: SizeLots(size),
        }),
        3 => (0u64..48, arb_price(), 0u64..=14).prop_map(|(id, price, size)| Command::Replace {
            order_id: OrderId(id),
            new_price: price,
            new_size: SizeLots(size),
        }),
        1 => (0u64..220).prop_map(|now| Command::ExpireUntil { now: TimestampMs(now) }),
    ]
}

/// Small limits so that `BookFull` and `SizeTooLarge` happen too.
fn config() -> BookConfig {
    BookConfig::new(12, SizeLots(12)).unwrap()
}

fn digest_of(commands: &[Command]) -> dex_types::Hash {
    let mut book = OrderBook::new(config());
    let mut digest = EventDigest::new();
    let mut events = Vec::new();
    for command in commands {
        events.clear();
        book.apply(command, &mut events);
        digest.extend(&events);
    }
    digest.finish()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_reference_and_keeps_invariants(
        commands in prop::collection::vec(arb_command(), 1..600)
    ) {
        let mut book = OrderBook::new(config());
        let mut reference = RefBook::new(12, 12);
        let mut shadow = Shadow::default();
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for (step, command) in commands.iter().enumerate() {
            ours.clear();
            theirs.clear();
            book.apply(command, &mut ours);
            reference.apply(command, &mut theirs);
            prop_assert_eq!(&ours, &theirs, "step {}: {:?}", step, command);
            book.check_invariants();
            shadow.apply(&ours);
            shadow.check_against(&book);
            prop_assert_eq!(book.orders_in_priority().collect::<Vec<_>>(), reference.in_priority());
            prop_assert_eq!(book.len(), reference.orders.len());
        }
    }

    #[test]
    fn same_stream_same_digest(commands in prop::collection::vec(arb_command(), 1..400)) {
        prop_assert_eq!(digest_of(&commands), digest_of(&commands));
    }

    #[test]
    fn restored_book_behaves_identically(
        commands in prop::collection::vec(arb_command(), 2..400),
        split in 0.0f64..1.0,
    ) {
        // A float only picks where the test cuts its own command list; nothing the engine
        // computes sees it.
        let cut = ((commands.len() as f64) * split) as usize;
        let mut book = OrderBook::new(config());
        let mut events = Vec::new();
        for command in &commands[..cut] {
            book.apply(command, &mut events);
        }
        let mut restored = OrderBook::new(config());
        for view in book.orders_in_priority() {
            restored.place(view.to_new_order(), &mut events);
        }
        restored.expire_until(book.expired_until(), &mut events);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for command in &commands[cut..] {
            a.clear();
            b.clear();
            book.apply(command, &mut a);
            restored.apply(command, &mut b);
            prop_assert_eq!(&a, &b);
        }
    }
}

#[test]
fn different_streams_give_different_digests() {
    let place = |id| {
        Command::Place(NewOrder {
            id: OrderId(id),
            owner: AccountIndex(1),
            side: Side::Buy,
            order_type: OrderType::Limit,
            price: PriceTicks(100),
            size: SizeLots(1),
            tif: TimeInForce::Gtc,
            stp: SelfTradePrevention::CancelResting,
        })
    };
    assert_ne!(digest_of(&[place(1)]), digest_of(&[place(2)]));
}
