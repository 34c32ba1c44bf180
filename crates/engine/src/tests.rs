//! Unit tests of every order kind and edge, each with the exact events it must produce.

use crate::{
    BookConfig, CancelReason, Command, DepthLevel, Event, NewOrder, OrderBook, ReduceReason,
    RejectReason,
};
use dex_types::{
    AccountIndex, OrderId, OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce,
    TimestampMs,
};

const BUY: Side = Side::Buy;
const SELL: Side = Side::Sell;

fn limit(id: u64, owner: u64, side: Side, price: u64, size: u64) -> NewOrder {
    NewOrder {
        id: OrderId(id),
        owner: AccountIndex(owner),
        side,
        order_type: OrderType::Limit,
        price: PriceTicks(price),
        size: SizeLots(size),
        tif: TimeInForce::Gtc,
        stp: SelfTradePrevention::CancelResting,
    }
}

fn with_tif(order: NewOrder, tif: TimeInForce) -> NewOrder {
    NewOrder { tif, ..order }
}

fn with_stp(order: NewOrder, stp: SelfTradePrevention) -> NewOrder {
    NewOrder { stp, ..order }
}

fn market(id: u64, owner: u64, side: Side, worst: u64, size: u64) -> NewOrder {
    NewOrder {
        order_type: OrderType::Market,
        tif: TimeInForce::Ioc,
        ..limit(id, owner, side, worst, size)
    }
}

fn place(book: &mut OrderBook, order: NewOrder) -> Vec<Event> {
    let mut events = Vec::new();
    book.place(order, &mut events);
    book.check_invariants();
    events
}

fn run(book: &mut OrderBook, command: Command) -> Vec<Event> {
    let mut events = Vec::new();
    book.apply(&command, &mut events);
    book.check_invariants();
    events
}

fn accepted(order: &NewOrder) -> Event {
    Event::Accepted {
        order_id: order.id,
        owner: order.owner,
        side: order.side,
        order_type: order.order_type,
        price: order.price,
        size: order.size,
        tif: order.tif,
        stp: order.stp,
    }
}

fn rested(order: &NewOrder, remaining: u64) -> Event {
    Event::Rested {
        order_id: order.id,
        owner: order.owner,
        side: order.side,
        price: order.price,
        remaining: SizeLots(remaining),
    }
}

fn cancelled(order: &NewOrder, remaining: u64, reason: CancelReason) -> Event {
    Event::Cancelled {
        order_id: order.id,
        owner: order.owner,
        side: order.side,
        price: order.price,
        remaining: SizeLots(remaining),
        reason,
    }
}

fn rejected(id: u64, reason: RejectReason) -> Event {
    Event::Rejected {
        order_id: OrderId(id),
        reason,
    }
}

/// A fill of `taker` against `maker` at the maker's price.
fn fill(maker: &NewOrder, taker: &NewOrder, size: u64, maker_left: u64, taker_left: u64) -> Event {
    Event::Fill {
        maker_order_id: maker.id,
        maker_owner: maker.owner,
        taker_order_id: taker.id,
        taker_owner: taker.owner,
        taker_side: taker.side,
        price: maker.price,
        size: SizeLots(size),
        maker_remaining: SizeLots(maker_left),
        taker_remaining: SizeLots(taker_left),
    }
}

/// Place resting orders that must not trade.
fn rest_all(book: &mut OrderBook, orders: &[NewOrder]) {
    for order in orders {
        assert_eq!(
            place(book, *order),
            vec![accepted(order), rested(order, order.size.0)]
        );
    }
}

fn ids(views: &[crate::OrderView]) -> Vec<u64> {
    views.iter().map(|view| view.id.0).collect()
}

#[test]
fn resting_limit_orders_build_both_sides() {
    let mut book = OrderBook::default();
    let bid = limit(1, 1, BUY, 99, 5);
    let ask = limit(2, 2, SELL, 101, 7);
    rest_all(&mut book, &[bid, ask]);
    assert_eq!(book.best_bid(), Some(PriceTicks(99)));
    assert_eq!(book.best_ask(), Some(PriceTicks(101)));
    assert_eq!(book.len(), 2);
    let view = book.order(OrderId(2)).unwrap();
    assert_eq!(view.remaining, SizeLots(7));
    assert_eq!(view.price, PriceTicks(101));
    assert_eq!(view.side, SELL);
}

#[test]
fn partial_fill_leaves_the_maker_resting() {
    let mut book = OrderBook::default();
    let ask = limit(1, 1, SELL, 100, 10);
    rest_all(&mut book, &[ask]);
    let buy = limit(2, 2, BUY, 100, 4);
    assert_eq!(
        place(&mut book, buy),
        vec![accepted(&buy), fill(&ask, &buy, 4, 6, 0)]
    );
    assert_eq!(book.order(OrderId(1)).unwrap().remaining, SizeLots(6));
    assert_eq!(book.order(OrderId(2)), None);
}

#[test]
fn partial_fill_rests_the_taker_remainder() {
    let mut book = OrderBook::default();
    let ask = limit(1, 1, SELL, 100, 3);
    rest_all(&mut book, &[ask]);
    let buy = limit(2, 2, BUY, 101, 10);
    assert_eq!(
        place(&mut book, buy),
        vec![accepted(&buy), fill(&ask, &buy, 3, 0, 7), rested(&buy, 7)]
    );
    assert_eq!(book.best_bid(), Some(PriceTicks(101)));
    assert_eq!(book.best_ask(), None);
}

#[test]
fn exact_fill_empties_both() {
    let mut book = OrderBook::default();
    let bid = limit(1, 1, BUY, 100, 5);
    rest_all(&mut book, &[bid]);
    let sell = limit(2, 2, SELL, 100, 5);
    assert_eq!(
        place(&mut book, sell),
        vec![accepted(&sell), fill(&bid, &sell, 5, 0, 0)]
    );
    assert!(book.is_empty());
    assert_eq!(book.level_count(BUY), 0);
}

#[test]
fn sweep_of_several_levels_trades_at_each_makers_price_in_time_priority() {
    let mut book = OrderBook::default();
    let a1 = limit(1, 1, SELL, 101, 2);
    let a2 = limit(2, 2, SELL, 100, 3);
    let a3 = limit(3, 3, SELL, 100, 4);
    let a4 = limit(4, 4, SELL, 103, 5);
    rest_all(&mut book, &[a1, a2, a3, a4]);
    let buy = limit(5, 9, BUY, 102, 20);
    assert_eq!(
        place(&mut book, buy),
        vec![
            accepted(&buy),
            fill(&a2, &buy, 3, 0, 17),
            fill(&a3, &buy, 4, 0, 13),
            fill(&a1, &buy, 2, 0, 11),
            rested(&buy, 11),
        ]
    );
    // The level at 103 is beyond the limit and untouched.
    assert_eq!(book.best_ask(), Some(PriceTicks(103)));
    assert_eq!(book.best_bid(), Some(PriceTicks(102)));
}

#[test]
fn ioc_cancels_what_it_cannot_fill() {
    let mut book = OrderBook::default();
    let ask = limit(1, 1, SELL, 100, 3);
    rest_all(&mut book, &[ask]);
    let ioc = with_tif(limit(2, 2, BUY, 100, 5), TimeInForce::Ioc);
    assert_eq!(
        place(&mut book, ioc),
        vec![
            accepted(&ioc),
            fill(&ask, &ioc, 3, 0, 2),
            cancelled(&ioc, 2, CancelReason::ImmediateRemainder),
        ]
    );
    assert!(book.is_empty());
    // An IOC that meets nothing is cancelled whole and never rests.
    let lone = with_tif(limit(3, 2, BUY, 100, 5), TimeInForce::Ioc);
    assert_eq!(
        place(&mut book, lone),
        vec![
            accepted(&lone),
            cancelled(&lone, 5, CancelReason::ImmediateRemainder)
        ]
    );
    assert!(book.is_empty());
}

#[test]
fn fok_fills_completely_across_levels() {
    let mut book = OrderBook::default();
    let a1 = limit(1, 1, SELL, 100, 3);
    let a2 = limit(2, 1, SELL, 101, 3);
    rest_all(&mut book, &[a1, a2]);
    let fok = with_tif(limit(3, 2, BUY, 101, 5), TimeInForce::Fok);
    assert_eq!(
        place(&mut book, fok),
        vec![
            accepted(&fok),
            fill(&a1, &fok, 3, 0, 2),
            fill(&a2, &fok, 2, 1, 0)
        ]
    );
}

#[test]
fn fok_that_cannot_fill_changes_nothing() {
    let mut book = OrderBook::default();
    let a1 = limit(1, 1, SELL, 100, 3);
    let a2 = limit(2, 1, SELL, 102, 3);
    rest_all(&mut book, &[a1, a2]);
    let before: Vec<_> = book.orders_in_priority().collect();
    // Enough quantity exists only beyond the limit price.
    let fok = with_tif(limit(3, 2, BUY, 101, 5), TimeInForce::Fok);
    assert_eq!(
        place(&mut book, fok),
        vec![accepted(&fok), cancelled(&fok, 5, CancelReason::FillOrKill)]
    );
    assert_eq!(book.orders_in_priority().collect::<Vec<_>>(), before);
    // A FOK market order behaves the same.
    let fok_market = NewOrder {
        tif: TimeInForce::Fok,
        ..market(4, 2, BUY, 200, 7)
    };
    assert_eq!(
        place(&mut book, fok_market),
        vec![
            accepted(&fok_market),
            cancelled(&fok_market, 7, CancelReason::FillOrKill)
        ]
    );
    assert_eq!(book.orders_in_priority().collect::<Vec<_>>(), before);
}

#[test]
fn fok_and_self_trade_prevention() {
    // Own order at the front, another owner's quantity behind it.
    let setup = |book: &mut OrderBook| {
        rest_all(
            book,
            &[limit(1, 7, SELL, 100, 4), limit(2, 8, SELL, 100, 5)],
        );
    };
    // CancelResting: the own order is skipped by the check (and cancelled by matching), so
    // 5 lots from owner 8 suffice.
    let mut book = OrderBook::default();
    setup(&mut book);
    let fok = with_tif(limit(3, 7, BUY, 100, 5), TimeInForce::Fok);
    let own = limit(1, 7, SELL, 100, 4);
    let other = limit(2, 8, SELL, 100, 5);
    assert_eq!(
        place(&mut book, fok),
        vec![
            accepted(&fok),
            cancelled(&own, 4, CancelReason::SelfTrade),
            fill(&other, &fok, 5, 0, 0),
        ]
    );
    assert!(book.is_empty());
    // CancelResting, but 6 lots wanted: only 5 are others', so it is killed and the own
    // order is NOT cancelled.
    let mut book = OrderBook::default();
    setup(&mut book);
    let fok = with_tif(limit(3, 7, BUY, 100, 6), TimeInForce::Fok);
    assert_eq!(
        place(&mut book, fok),
        vec![accepted(&fok), cancelled(&fok, 6, CancelReason::FillOrKill)]
    );
    assert_eq!(book.len(), 2);
    // Any other mode meeting an own order first cannot fill completely.
    for stp in [
        SelfTradePrevention::CancelIncoming,
        SelfTradePrevention::CancelBoth,
        SelfTradePrevention::DecrementAndCancel,
    ] {
        let mut book = OrderBook::default();
        setup(&mut book);
        let fok = with_stp(with_tif(limit(3, 7, BUY, 100, 1), TimeInForce::Fok), stp);
        assert_eq!(
            place(&mut book, fok),
            vec![accepted(&fok), cancelled(&fok, 1, CancelReason::FillOrKill)],
            "{stp:?}"
        );
        assert_eq!(book.len(), 2);
    }
    // Own order behind the quantity it needs: it is never reached, so it fills.
    let mut book = OrderBook::default();
    rest_all(
        &mut book,
        &[limit(1, 8, SELL, 100, 5), limit(2, 7, SELL, 100, 4)],
    );
    let fok = with_stp(
        with_tif(limit(3, 7, BUY, 100, 5), TimeInForce::Fok),
        SelfTradePrevention::CancelIncoming,
    );
    assert_eq!(
        place(&mut book, fok),
        vec![
            accepted(&fok),
            fill(&limit(1, 8, SELL, 100, 5), &fok, 5, 0, 0)
        ]
    );
}

#[test]
fn post_only_rests_or_is_rejected_if_it_would_cross() {
    let mut book = OrderBook::default();
    let ask = limit(1, 1, SELL, 100, 3);
    rest_all(&mut book, &[ask]);
    let crossing = with_tif(limit(2, 2, BUY, 100, 1), TimeInForce::PostOnly);
    assert_eq!(
        place(&mut book, crossing),
        vec![rejected(2, RejectReason::PostOnlyWouldCross)]
    );
    let passive = with_tif(limit(3, 2, BUY, 99, 1), TimeInForce::PostOnly);
    rest_all(&mut book, &[passive]);
    assert_eq!(book.order(OrderId(3)).unwrap().tif, TimeInForce::PostOnly);
    // Even against the owner's own order a post-only that would cross is rejected.
    let own = with_tif(limit(4, 1, BUY, 100, 1), TimeInForce::PostOnly);
    assert_eq!(
        place(&mut book, own),
        vec![rejected(4, RejectReason::PostOnlyWouldCross)]
    );
}

#[test]
fn market_order_stops_at_its_worst_price() {
    let mut book = OrderBook::default();
    let a1 = limit(1, 1, SELL, 100, 2);
    let a2 = limit(2, 1, SELL, 105, 2);
    let a3 = limit(3, 1, SELL, 110, 2);
    rest_all(&mut book, &[a1, a2, a3]);
    let buy = market(4, 2, BUY, 105, 10);
    assert_eq!(
        place(&mut book, buy),
        vec![
            accepted(&buy),
            fill(&a1, &buy, 2, 0, 8),
            fill(&a2, &buy, 2, 0, 6),
            cancelled(&buy, 6, CancelReason::ImmediateRemainder),
        ]
    );
    assert_eq!(book.best_ask(), Some(PriceTicks(110)));
    assert_eq!(book.best_bid(), None, "a market order never rests");
    // Sell side: worst price is a floor.
    let b1 = limit(5, 1, BUY, 90, 4);
    rest_all(&mut book, &[b1]);
    let sell = market(6, 2, SELL, 91, 1);
    assert_eq!(
        place(&mut book, sell),
        vec![
            accepted(&sell),
            cancelled(&sell, 1, CancelReason::ImmediateRemainder)
        ]
    );
}

#[test]
fn market_orders_must_be_immediate() {
    let mut book = OrderBook::default();
    for (id, tif) in [
        (1, TimeInForce::Gtc),
        (2, TimeInForce::PostOnly),
        (
            3,
            TimeInForce::Gtt {
                expires_at: TimestampMs(10),
            },
        ),
    ] {
        let order = NewOrder {
            tif,
            ..market(id, 1, BUY, 100, 1)
        };
        assert_eq!(
            place(&mut book, order),
            vec![rejected(id, RejectReason::MarketOrderMustBeImmediate)]
        );
    }
}

#[test]
fn validation_rejects_bad_orders_without_change() {
    let config = BookConfig::new(2, SizeLots(1_000)).unwrap();
    let mut book = OrderBook::new(config);
    assert_eq!(
        place(&mut book, limit(1, 1, BUY, 100, 0)),
        vec![rejected(1, RejectReason::ZeroSize)]
    );
    assert_eq!(
        place(&mut book, limit(1, 1, BUY, 100, 1_001)),
        vec![rejected(1, RejectReason::SizeTooLarge)]
    );
    assert_eq!(
        place(&mut book, limit(1, 1, BUY, 0, 1)),
        vec![rejected(1, RejectReason::ZeroPrice)]
    );
    rest_all(&mut book, &[limit(1, 1, BUY, 100, 1)]);
    assert_eq!(
        place(&mut book, limit(1, 2, SELL, 200, 1)),
        vec![rejected(1, RejectReason::DuplicateOrderId)]
    );
    rest_all(&mut book, &[limit(2, 1, BUY, 99, 1)]);
    assert_eq!(
        place(&mut book, limit(3, 1, BUY, 98, 1)),
        vec![rejected(3, RejectReason::BookFull)]
    );
    // A full book still takes orders that cannot rest.
    let ioc = with_tif(limit(4, 2, SELL, 100, 1), TimeInForce::Ioc);
    assert_eq!(
        place(&mut book, ioc),
        vec![
            accepted(&ioc),
            fill(&limit(1, 1, BUY, 100, 1), &ioc, 1, 0, 0)
        ]
    );
    assert_eq!(book.len(), 1);
    assert!(BookConfig::new(0, SizeLots(1)).is_err());
    assert!(BookConfig::new(10, SizeLots(0)).is_err());
    assert!(BookConfig::new(u32::MAX - 1, SizeLots(u64::MAX / 2)).is_err());
}

#[test]
fn cancel_of_unknown_or_filled_order_is_rejected() {
    let mut book = OrderBook::default();
    let ask = limit(1, 1, SELL, 100, 2);
    rest_all(&mut book, &[ask]);
    assert_eq!(
        run(
            &mut book,
            Command::Cancel {
                order_id: OrderId(9)
            }
        ),
        vec![rejected(9, RejectReason::UnknownOrder)]
    );
    place(&mut book, limit(2, 2, BUY, 100, 2));
    assert_eq!(
        run(
            &mut book,
            Command::Cancel {
                order_id: OrderId(1)
            }
        ),
        vec![rejected(1, RejectReason::UnknownOrder)]
    );
}

#[test]
fn cancel_anywhere_in_a_queue_keeps_the_others_in_order() {
    let mut book = OrderBook::default();
    let orders: Vec<_> = (1..=5).map(|id| limit(id, id, BUY, 100, id)).collect();
    rest_all(&mut book, &orders);
    for (id, expected) in [(3, vec![1, 2, 4, 5]), (1, vec![2, 4, 5]), (5, vec![2, 4])] {
        let order = orders[id as usize - 1];
        assert_eq!(
            run(
                &mut book,
                Command::Cancel {
                    order_id: OrderId(id)
                }
            ),
            vec![cancelled(&order, id, CancelReason::User)]
        );
        assert_eq!(ids(&book.level_orders(BUY, PriceTicks(100))), expected);
    }
    assert_eq!(
        book.depth(BUY, 5),
        vec![DepthLevel {
            price: PriceTicks(100),
            size: SizeLots(6),
            orders: 2
        }]
    );
}

#[test]
fn cancel_all_cancels_one_owners_orders_in_id_order() {
    let mut book = OrderBook::default();
    let o5 = limit(5, 1, BUY, 99, 1);
    let o2 = limit(2, 1, SELL, 105, 2);
    let o3 = limit(3, 2, SELL, 105, 3);
    let o4 = limit(4, 1, BUY, 98, 4);
    rest_all(&mut book, &[o5, o2, o3, o4]);
    assert_eq!(ids(&book.owner_orders(AccountIndex(1))), vec![2, 4, 5]);
    assert_eq!(
        run(
            &mut book,
            Command::CancelAll {
                owner: AccountIndex(1)
            }
        ),
        vec![
            cancelled(&o2, 2, CancelReason::User),
            cancelled(&o4, 4, CancelReason::User),
            cancelled(&o5, 1, CancelReason::User),
        ]
    );
    assert_eq!(book.len(), 1);
    assert!(book.owner_orders(AccountIndex(1)).is_empty());
    assert!(
        run(
            &mut book,
            Command::CancelAll {
                owner: AccountIndex(1)
            }
        )
        .is_empty()
    );
}

#[test]
fn reduce_keeps_priority_and_validates() {
    let mut book = OrderBook::default();
    let first = limit(1, 1, SELL, 100, 10);
    let second = limit(2, 2, SELL, 100, 10);
    rest_all(&mut book, &[first, second]);
    assert_eq!(
        run(
            &mut book,
            Command::Reduce {
                order_id: OrderId(1),
                new_size: SizeLots(4)
            }
        ),
        vec![Event::Reduced {
            order_id: OrderId(1),
            owner: AccountIndex(1),
            side: SELL,
            price: PriceTicks(100),
            reduced_by: SizeLots(6),
            remaining: SizeLots(4),
            reason: ReduceReason::User,
        }]
    );
    assert_eq!(ids(&book.level_orders(SELL, PriceTicks(100))), vec![1, 2]);
    for (size, reason) in [
        (4, RejectReason::NotAReduction),
        (5, RejectReason::NotAReduction),
        (0, RejectReason::ZeroSize),
    ] {
        assert_eq!(
            run(
                &mut book,
                Command::Reduce {
                    order_id: OrderId(1),
                    new_size: SizeLots(size)
                }
            ),
            vec![rejected(1, reason)]
        );
    }
    assert_eq!(
        run(
            &mut book,
            Command::Reduce {
                order_id: OrderId(7),
                new_size: SizeLots(1)
            }
        ),
        vec![rejected(7, RejectReason::UnknownOrder)]
    );
    // The reduced order still trades first.
    let buy = limit(3, 3, BUY, 100, 5);
    assert_eq!(
        place(&mut book, buy),
        vec![
            accepted(&buy),
            fill(&limit(1, 1, SELL, 100, 4), &buy, 4, 0, 1),
            fill(&second, &buy, 1, 9, 0),
        ]
    );
}

fn replace(book: &mut OrderBook, id: u64, price: u64, size: u64) -> Vec<Event> {
    run(
        book,
        Command::Replace {
            order_id: OrderId(id),
            new_price: PriceTicks(price),
            new_size: SizeLots(size),
        },
    )
}

fn replaced(order: &NewOrder, old_remaining: u64, price: u64, size: u64, kept: bool) -> Event {
    Event::Replaced {
        order_id: order.id,
        owner: order.owner,
        side: order.side,
        old_price: order.price,
        old_remaining: SizeLots(old_remaining),
        new_price: PriceTicks(price),
        new_size: SizeLots(size),
        priority_kept: kept,
    }
}

#[test]
fn replace_with_smaller_size_at_same_price_keeps_priority() {
    let mut book = OrderBook::default();
    let first = limit(1, 1, BUY, 100, 10);
    let second = limit(2, 2, BUY, 100, 10);
    rest_all(&mut book, &[first, second]);
    assert_eq!(
        replace(&mut book, 1, 100, 6),
        vec![replaced(&first, 10, 100, 6, true)]
    );
    assert_eq!(ids(&book.level_orders(BUY, PriceTicks(100))), vec![1, 2]);
    assert_eq!(book.order(OrderId(1)).unwrap().remaining, SizeLots(6));
    assert_eq!(book.depth(BUY, 1)[0].size, SizeLots(16));
}

#[test]
fn replace_with_larger_size_or_new_price_loses_priority() {
    let mut book = OrderBook::default();
    let first = limit(1, 1, BUY, 100, 10);
    let second = limit(2, 2, BUY, 100, 10);
    rest_all(&mut book, &[first, second]);
    let moved = limit(1, 1, BUY, 100, 12);
    assert_eq!(
        replace(&mut book, 1, 100, 12),
        vec![replaced(&first, 10, 100, 12, false), rested(&moved, 12)]
    );
    assert_eq!(ids(&book.level_orders(BUY, PriceTicks(100))), vec![2, 1]);
    // New price: moves to the back of the new level.
    let third = limit(3, 3, BUY, 99, 1);
    rest_all(&mut book, &[third]);
    let moved_again = limit(2, 2, BUY, 99, 10);
    assert_eq!(
        replace(&mut book, 2, 99, 10),
        vec![
            replaced(&second, 10, 99, 10, false),
            rested(&moved_again, 10)
        ]
    );
    assert_eq!(ids(&book.level_orders(BUY, PriceTicks(99))), vec![3, 2]);
    assert_eq!(ids(&book.level_orders(BUY, PriceTicks(100))), vec![1]);
}

#[test]
fn replace_to_a_crossing_price_trades_and_post_only_is_refused() {
    let mut book = OrderBook::default();
    let ask = limit(1, 1, SELL, 101, 3);
    let bid = limit(2, 2, BUY, 99, 5);
    let post = with_tif(limit(3, 2, BUY, 98, 5), TimeInForce::PostOnly);
    rest_all(&mut book, &[ask, bid, post]);
    let moved = limit(2, 2, BUY, 101, 5);
    assert_eq!(
        replace(&mut book, 2, 101, 5),
        vec![
            replaced(&bid, 5, 101, 5, false),
            fill(&ask, &moved, 3, 0, 2),
            rested(&moved, 2),
        ]
    );
    let ask2 = limit(4, 1, SELL, 102, 1);
    rest_all(&mut book, &[ask2]);
    assert_eq!(
        replace(&mut book, 3, 102, 5),
        vec![rejected(3, RejectReason::PostOnlyWouldCross)]
    );
    assert_eq!(book.order(OrderId(3)).unwrap().price, PriceTicks(98));
    assert_eq!(
        replace(&mut book, 9, 100, 1),
        vec![rejected(9, RejectReason::UnknownOrder)]
    );
    assert_eq!(
        replace(&mut book, 3, 0, 1),
        vec![rejected(3, RejectReason::ZeroPrice)]
    );
}

#[test]
fn self_trade_cancel_resting() {
    let mut book = OrderBook::default();
    let own = limit(1, 7, SELL, 100, 3);
    let other = limit(2, 8, SELL, 100, 3);
    rest_all(&mut book, &[own, other]);
    let buy = limit(3, 7, BUY, 100, 5);
    assert_eq!(
        place(&mut book, buy),
        vec![
            accepted(&buy),
            cancelled(&own, 3, CancelReason::SelfTrade),
            fill(&other, &buy, 3, 0, 2),
            rested(&buy, 2),
        ]
    );
}

#[test]
fn self_trade_cancel_incoming() {
    let mut book = OrderBook::default();
    let other = limit(1, 8, SELL, 100, 2);
    let own = limit(2, 7, SELL, 100, 3);
    rest_all(&mut book, &[other, own]);
    let buy = with_stp(
        limit(3, 7, BUY, 100, 5),
        SelfTradePrevention::CancelIncoming,
    );
    assert_eq!(
        place(&mut book, buy),
        vec![
            accepted(&buy),
            fill(&other, &buy, 2, 0, 3),
            cancelled(&buy, 3, CancelReason::SelfTrade),
        ]
    );
    assert_eq!(ids(&book.level_orders(SELL, PriceTicks(100))), vec![2]);
    assert_eq!(book.best_bid(), None);
}

#[test]
fn self_trade_cancel_both() {
    let mut book = OrderBook::default();
    let own = limit(1, 7, SELL, 100, 3);
    let other = limit(2, 8, SELL, 100, 3);
    rest_all(&mut book, &[own, other]);
    let buy = with_stp(limit(3, 7, BUY, 100, 5), SelfTradePrevention::CancelBoth);
    assert_eq!(
        place(&mut book, buy),
        vec![
            accepted(&buy),
            cancelled(&own, 3, CancelReason::SelfTrade),
            cancelled(&buy, 5, CancelReason::SelfTrade),
        ]
    );
    assert_eq!(ids(&book.level_orders(SELL, PriceTicks(100))), vec![2]);
}

#[test]
fn self_trade_decrement_and_cancel() {
    let dc = SelfTradePrevention::DecrementAndCancel;
    // Resting larger: it shrinks, the incoming order is cancelled.
    let mut book = OrderBook::default();
    let own = limit(1, 7, SELL, 100, 8);
    rest_all(&mut book, &[own]);
    let buy = with_stp(limit(2, 7, BUY, 100, 5), dc);
    assert_eq!(
        place(&mut book, buy),
        vec![
            accepted(&buy),
            Event::Reduced {
                order_id: OrderId(1),
                owner: AccountIndex(7),
                side: SELL,
                price: PriceTicks(100),
                reduced_by: SizeLots(5),
                remaining: SizeLots(3),
                reason: ReduceReason::SelfTrade,
            },
            cancelled(&buy, 5, CancelReason::SelfTrade),
        ]
    );
    assert_eq!(book.order(OrderId(1)).unwrap().remaining, SizeLots(3));

    // Incoming larger: the resting order is cancelled, the incoming one shrinks and goes
    // on matching.
    let mut book = OrderBook::default();
    let own = limit(1, 7, SELL, 100, 2);
    let other = limit(2, 8, SELL, 100, 2);
    rest_all(&mut book, &[own, other]);
    let buy = with_stp(limit(3, 7, BUY, 100, 5), dc);
    assert_eq!(
        place(&mut book, buy),
        vec![
            accepted(&buy),
            cancelled(&own, 2, CancelReason::SelfTrade),
            Event::Reduced {
                order_id: OrderId(3),
                owner: AccountIndex(7),
                side: BUY,
                price: PriceTicks(100),
                reduced_by: SizeLots(2),
                remaining: SizeLots(3),
                reason: ReduceReason::SelfTrade,
            },
            fill(&other, &buy, 2, 0, 1),
            rested(&buy, 1),
        ]
    );

    // Equal: both are cancelled.
    let mut book = OrderBook::default();
    let own = limit(1, 7, SELL, 100, 4);
    rest_all(&mut book, &[own]);
    let buy = with_stp(limit(2, 7, BUY, 100, 4), dc);
    assert_eq!(
        place(&mut book, buy),
        vec![
            accepted(&buy),
            cancelled(&own, 4, CancelReason::SelfTrade),
            cancelled(&buy, 4, CancelReason::SelfTrade),
        ]
    );
    assert!(book.is_empty());
}

fn gtt(order: NewOrder, at: u64) -> NewOrder {
    with_tif(
        order,
        TimeInForce::Gtt {
            expires_at: TimestampMs(at),
        },
    )
}

#[test]
fn gtt_orders_expire_in_time_then_id_order() {
    let mut book = OrderBook::default();
    let late = gtt(limit(1, 1, BUY, 99, 1), 300);
    let early_b = gtt(limit(3, 1, SELL, 105, 2), 100);
    let early_a = gtt(limit(2, 2, BUY, 98, 3), 100);
    let forever = limit(4, 2, BUY, 97, 4);
    rest_all(&mut book, &[late, early_b, early_a, forever]);
    assert!(
        run(
            &mut book,
            Command::ExpireUntil {
                now: TimestampMs(99)
            }
        )
        .is_empty()
    );
    let expired = |order: &NewOrder, at| Event::Expired {
        order_id: order.id,
        owner: order.owner,
        side: order.side,
        price: order.price,
        remaining: order.size,
        expires_at: TimestampMs(at),
    };
    assert_eq!(
        run(
            &mut book,
            Command::ExpireUntil {
                now: TimestampMs(200)
            }
        ),
        vec![expired(&early_a, 100), expired(&early_b, 100)]
    );
    assert_eq!(book.expired_until(), TimestampMs(200));
    // An order that already expired is refused.
    assert_eq!(
        place(&mut book, gtt(limit(5, 1, BUY, 90, 1), 200)),
        vec![rejected(5, RejectReason::AlreadyExpired)]
    );
    // A cancelled GTT order does not expire later, and a new order reusing its id is
    // expired by its own time only.
    run(
        &mut book,
        Command::Cancel {
            order_id: OrderId(1),
        },
    );
    let reused = gtt(limit(1, 1, BUY, 96, 1), 400);
    rest_all(&mut book, &[reused]);
    assert!(
        run(
            &mut book,
            Command::ExpireUntil {
                now: TimestampMs(300)
            }
        )
        .is_empty()
    );
    assert_eq!(
        run(
            &mut book,
            Command::ExpireUntil {
                now: TimestampMs(1_000)
            }
        ),
        vec![expired(&reused, 400)]
    );
    assert_eq!(ids(&book.orders_in_priority().collect::<Vec<_>>()), vec![4]);
}

#[test]
fn many_cancelled_gtt_orders_do_not_grow_the_expiry_queue_without_bound() {
    let mut book = OrderBook::default();
    let mut events = Vec::new();
    for id in 0..20_000u64 {
        book.place(gtt(limit(id, 1, BUY, 100, 1), 1_000 + id), &mut events);
        book.cancel(OrderId(id), &mut events);
    }
    assert!(book.expiries.len() <= 2 * book.live_gtt + 1024 + 1);
    book.place(gtt(limit(99_999, 1, BUY, 100, 1), 50_000), &mut events);
    events.clear();
    book.expire_until(TimestampMs(u64::MAX), &mut events);
    assert_eq!(events.len(), 1);
}

#[test]
fn queries_report_depth_levels_and_priority_order() {
    let mut book = OrderBook::default();
    rest_all(
        &mut book,
        &[
            limit(1, 1, BUY, 100, 1),
            limit(2, 2, BUY, 101, 2),
            limit(3, 3, BUY, 100, 3),
            limit(4, 4, SELL, 103, 4),
            limit(5, 5, SELL, 102, 5),
        ],
    );
    assert_eq!(
        book.depth(BUY, 10),
        vec![
            DepthLevel {
                price: PriceTicks(101),
                size: SizeLots(2),
                orders: 1
            },
            DepthLevel {
                price: PriceTicks(100),
                size: SizeLots(4),
                orders: 2
            },
        ]
    );
    assert_eq!(book.depth(SELL, 1).len(), 1);
    assert_eq!(
        ids(&book.orders_in_priority().collect::<Vec<_>>()),
        vec![2, 1, 3, 5, 4]
    );
    assert!(book.level_orders(SELL, PriceTicks(150)).is_empty());
}

#[test]
fn a_book_rebuilt_from_its_priority_order_behaves_identically() {
    let mut book = OrderBook::default();
    rest_all(
        &mut book,
        &[
            limit(1, 1, BUY, 100, 5),
            gtt(limit(2, 2, BUY, 100, 6), 500),
            with_tif(limit(3, 3, SELL, 104, 7), TimeInForce::PostOnly),
            limit(4, 4, SELL, 103, 8),
        ],
    );
    run(
        &mut book,
        Command::ExpireUntil {
            now: TimestampMs(50),
        },
    );
    let mut rebuilt = OrderBook::default();
    let mut events = Vec::new();
    for view in book.orders_in_priority() {
        rebuilt.place(view.to_new_order(), &mut events);
    }
    rebuilt.expire_until(book.expired_until(), &mut events);
    let probe = [
        Command::Place(limit(10, 9, SELL, 99, 20)),
        Command::Place(gtt(limit(11, 9, BUY, 90, 1), 40)),
        Command::ExpireUntil {
            now: TimestampMs(600),
        },
    ];
    for command in probe {
        assert_eq!(run(&mut book, command), run(&mut rebuilt, command));
    }
    assert_eq!(
        book.orders_in_priority().collect::<Vec<_>>(),
        rebuilt.orders_in_priority().collect::<Vec<_>>()
    );
}

#[test]
fn levels_far_from_the_touch_are_found_and_removed() {
    // More levels than the linear scan covers, inserted out of order, then removed from
    // the middle: exercises the binary-search path of the ladder.
    let mut book = OrderBook::default();
    let mut events = Vec::new();
    let prices: Vec<u64> = (0..40).map(|i| 1_000 + (i * 37) % 40 * 3).collect();
    for (id, &price) in prices.iter().enumerate() {
        book.place(limit(id as u64, 1, SELL, price, 1), &mut events);
        book.place(limit(100 + id as u64, 2, BUY, price - 500, 1), &mut events);
    }
    book.check_invariants();
    assert_eq!(book.level_count(SELL), 40);
    for id in (0..40).step_by(3) {
        book.cancel(OrderId(id), &mut events);
        book.cancel(OrderId(100 + id), &mut events);
        book.check_invariants();
    }
    let asks: Vec<u64> = book.depth(SELL, 100).iter().map(|l| l.price.0).collect();
    let mut sorted = asks.clone();
    sorted.sort_unstable();
    assert_eq!(asks, sorted);
    assert_eq!(book.best_ask(), Some(PriceTicks(*sorted.first().unwrap())));
}

#[test]
fn owners_who_leave_do_not_accumulate() {
    let mut book = OrderBook::default();
    let mut events = Vec::new();
    // One long-lived owner plus 10,000 owners who each place and cancel once.
    book.place(limit(0, 0, BUY, 90, 1), &mut events);
    for id in 1..=10_000u64 {
        book.place(limit(id, id, BUY, 100, 1), &mut events);
        book.cancel(OrderId(id), &mut events);
    }
    book.check_invariants();
    assert!(
        book.owner_index.len() <= 2 * 1024 + 2,
        "{}",
        book.owner_index.len()
    );
    // An owner whose entry went idle comes back and is tracked correctly.
    book.place(limit(20_000, 10_000, SELL, 120, 1), &mut events);
    book.check_invariants();
    assert_eq!(ids(&book.owner_orders(AccountIndex(10_000))), vec![20_000]);
    assert_eq!(ids(&book.owner_orders(AccountIndex(0))), vec![0]);
}
