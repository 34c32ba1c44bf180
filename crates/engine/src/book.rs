//! The order book: arena of order slots, per-side price ladders, lookup maps, expiry queue.

use crate::event::{CancelReason, Event, ReduceReason, RejectReason};
use crate::hasher::FastIdBuildHasher;
use crate::order::{Command, NewOrder, OrderView};
use dex_types::{
    AccountIndex, OrderId, OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce,
    TimestampMs,
};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::hash_map::Entry;

/// The book's lookup-only maps (order id → slot, owner → list entry). Nothing iterates
/// them, so hash order can never reach an event or a query result.
#[allow(clippy::disallowed_types)]
type LookupMap<K> = std::collections::HashMap<K, u32, FastIdBuildHasher>;

/// "No slot": the end of an intrusive list.
const NIL: u32 = u32::MAX;

/// Limits of one book. Every limit is a bound the book enforces, so that nothing it sums
/// can overflow and nothing it holds can grow without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookConfig {
    max_orders: u32,
    max_order_size: u64,
}

impl BookConfig {
    /// Default cap on resting orders: about four million.
    pub const DEFAULT_MAX_ORDERS: u32 = 1 << 22;
    /// Default cap on one order's size, in lots.
    pub const DEFAULT_MAX_ORDER_SIZE: SizeLots = SizeLots(1 << 40);

    /// A configuration with at most `max_orders` resting orders of at most
    /// `max_order_size` lots each. Their product must fit a `u64`, which is what makes the
    /// total quantity of one side impossible to overflow.
    pub fn new(max_orders: u32, max_order_size: SizeLots) -> Result<BookConfig, ConfigError> {
        if max_orders == 0 || max_orders == NIL {
            return Err(ConfigError::MaxOrders(max_orders));
        }
        if max_order_size.is_zero() {
            return Err(ConfigError::ZeroMaxOrderSize);
        }
        if u64::from(max_orders)
            .checked_mul(max_order_size.0)
            .is_none()
        {
            return Err(ConfigError::TotalOverflows);
        }
        Ok(BookConfig {
            max_orders,
            max_order_size: max_order_size.0,
        })
    }

    /// Most resting orders the book holds; a placement that could rest beyond this is
    /// rejected with [`RejectReason::BookFull`].
    pub fn max_orders(&self) -> u32 {
        self.max_orders
    }

    /// Largest size of one order (incoming or replaced).
    pub fn max_order_size(&self) -> SizeLots {
        SizeLots(self.max_order_size)
    }
}

impl Default for BookConfig {
    fn default() -> Self {
        BookConfig::new(Self::DEFAULT_MAX_ORDERS, Self::DEFAULT_MAX_ORDER_SIZE)
            .expect("bug: the default book configuration is valid")
    }
}

/// A [`BookConfig`] that cannot be honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `max_orders` is zero or `u32::MAX` (which the book reserves as "no order").
    #[error("max_orders must be between 1 and 4294967294 (got {0})")]
    MaxOrders(u32),
    /// `max_order_size` is zero, so no order could ever be placed.
    #[error("max_order_size must be at least one lot")]
    ZeroMaxOrderSize,
    /// `max_orders × max_order_size` does not fit in a u64, so a side's total could overflow.
    #[error("max_orders × max_order_size must fit in 64 bits")]
    TotalOverflows,
}

/// One aggregated price level of [`OrderBook::depth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DepthLevel {
    /// The level's price.
    pub price: PriceTicks,
    /// Sum of the open sizes resting there.
    pub size: SizeLots,
    /// Number of orders resting there.
    pub orders: u32,
}

/// How a resting order lives; only these three time-in-force kinds ever rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RestKind {
    Gtc,
    Gtt,
    PostOnly,
}

/// One resting order: 64 bytes, one cache line.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: u64,
    owner: u64,
    remaining: u64,
    /// Meaningful only for `RestKind::Gtt`.
    expires_at: u64,
    /// Neighbours in the level's FIFO (`prev` is towards the head).
    prev: u32,
    next: u32,
    level: u32,
    /// Neighbours in the owner's list, and the owner's entry.
    owner_prev: u32,
    owner_next: u32,
    owner_entry: u32,
    side: Side,
    kind: RestKind,
    stp: SelfTradePrevention,
}

const EMPTY_SLOT: Slot = Slot {
    id: 0,
    owner: 0,
    remaining: 0,
    expires_at: 0,
    prev: NIL,
    next: NIL,
    level: NIL,
    owner_prev: NIL,
    owner_next: NIL,
    owner_entry: NIL,
    side: Side::Buy,
    kind: RestKind::Gtc,
    stp: SelfTradePrevention::CancelResting,
};

/// A price level: a FIFO of slots and its aggregate.
#[derive(Debug, Clone, Copy)]
struct Level {
    price: u64,
    /// Sum of `remaining` over the queue; bounded by `BookConfig` so it cannot overflow.
    total: u64,
    head: u32,
    tail: u32,
    count: u32,
    side: Side,
}

/// An owner's resting orders, as an intrusive list through the slots.
///
/// An entry whose last order leaves stays in the owner index for a while ("idle"), because
/// the same owner usually comes back soon; idle entries are dropped in batches by
/// `drop_idle_owners`, which bounds them.
#[derive(Debug, Clone, Copy)]
struct OwnerEntry {
    owner: u64,
    head: u32,
    tail: u32,
    count: u32,
    /// Whether the entry is in `idle_owners`.
    listed_idle: bool,
}

/// Idle owner entries tolerated before they are dropped (plus one per live owner).
const IDLE_OWNERS_MIN: usize = 1024;

/// The levels of one side, sorted by `key` ascending so that the best level is last.
///
/// `key` is the price for bids and `!price` for asks, so that "higher key = better" on
/// both sides and the code is the same.
#[derive(Debug, Default, Clone)]
struct Ladder {
    keys: Vec<u64>,
    levels: Vec<u32>,
}

impl Ladder {
    #[inline(always)]
    fn best(&self) -> Option<u32> {
        self.levels.last().copied()
    }

    /// `Ok(index)` of `key`, or `Err(index)` where it would be inserted.
    ///
    /// Keys are distinct integers no larger than the best key, so at most `best - key` of
    /// them are above `key`: its index lies in `[len - 1 - (best - key), len)`. Levels near
    /// the touch are usually on consecutive ticks, where the first probe of that range is
    /// already the answer; otherwise a binary search runs over the narrowed range only.
    #[inline]
    fn position(&self, key: u64) -> Result<usize, usize> {
        let n = self.keys.len();
        let Some(&best) = self.keys.last() else {
            return Err(0);
        };
        if key >= best {
            return if key == best { Ok(n - 1) } else { Err(n) };
        }
        let distance = usize::try_from(best - key).unwrap_or(usize::MAX);
        let low = (n - 1).saturating_sub(distance);
        if self.keys[low] == key {
            return Ok(low);
        }
        match self.keys[low..].binary_search(&key) {
            Ok(index) => Ok(low + index),
            Err(index) => Err(low + index),
        }
    }
}

#[inline(always)]
fn ladder_key(side: Side, price: u64) -> u64 {
    match side {
        Side::Buy => price,
        Side::Sell => !price,
    }
}

/// Whether a taker on `taker_side` with limit `limit` may trade at `maker_price`.
#[inline(always)]
fn crosses(taker_side: Side, maker_price: u64, limit: u64) -> bool {
    match taker_side {
        Side::Buy => maker_price <= limit,
        Side::Sell => maker_price >= limit,
    }
}

/// The incoming side of a match.
#[derive(Debug, Clone, Copy)]
struct Taker {
    id: u64,
    owner: u64,
    side: Side,
    limit: u64,
    remaining: u64,
    stp: SelfTradePrevention,
}

impl Taker {
    fn cancelled(&self, reason: CancelReason) -> Event {
        Event::Cancelled {
            order_id: OrderId(self.id),
            owner: AccountIndex(self.owner),
            side: self.side,
            price: PriceTicks(self.limit),
            remaining: SizeLots(self.remaining),
            reason,
        }
    }
}

/// One market's order book. See the crate docs for the design and [`OrderBook::place`] for
/// the matching rules.
#[derive(Debug, Clone)]
pub struct OrderBook {
    config: BookConfig,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    levels: Vec<Level>,
    free_levels: Vec<u32>,
    bids: Ladder,
    asks: Ladder,
    ids: LookupMap<OrderId>,
    owners: Vec<OwnerEntry>,
    free_owners: Vec<u32>,
    /// Entries that became empty since the last `drop_idle_owners` (some may be in use
    /// again).
    idle_owners: Vec<u32>,
    pub(crate) owner_index: LookupMap<AccountIndex>,
    /// Good-til-time orders by `(expires_at, order id)`, smallest first. Entries are not
    /// removed when an order leaves early; `expire_until` skips entries whose order is gone
    /// (or is a different order under the same id), and `compact_expiries` bounds the waste.
    pub(crate) expiries: BinaryHeap<Reverse<(u64, u64)>>,
    pub(crate) live_gtt: usize,
    /// The largest time `expire_until` has run with.
    expired_until: u64,
    /// Reused buffer for `cancel_all`.
    scratch: Vec<u32>,
}

impl Default for OrderBook {
    fn default() -> Self {
        OrderBook::new(BookConfig::default())
    }
}

impl OrderBook {
    /// An empty book with the given limits.
    pub fn new(config: BookConfig) -> OrderBook {
        OrderBook {
            config,
            slots: Vec::new(),
            free_slots: Vec::new(),
            levels: Vec::new(),
            free_levels: Vec::new(),
            bids: Ladder::default(),
            asks: Ladder::default(),
            ids: LookupMap::default(),
            owners: Vec::new(),
            free_owners: Vec::new(),
            idle_owners: Vec::new(),
            owner_index: LookupMap::default(),
            expiries: BinaryHeap::new(),
            live_gtt: 0,
            expired_until: 0,
            scratch: Vec::new(),
        }
    }

    /// An empty book that has room for `orders` resting orders before it allocates.
    pub fn with_capacity(config: BookConfig, orders: usize) -> OrderBook {
        let mut book = OrderBook::new(config);
        book.slots.reserve(orders);
        book.free_slots.reserve(orders);
        book.ids.reserve(orders);
        book.levels.reserve(orders / 4 + 16);
        book.owner_index.reserve(orders / 4 + 16);
        book.owners.reserve(orders / 4 + 16);
        book
    }

    /// The limits this book enforces.
    pub fn config(&self) -> &BookConfig {
        &self.config
    }

    /// Run one command.
    pub fn apply(&mut self, command: &Command, events: &mut Vec<Event>) {
        match *command {
            Command::Place(order) => self.place(order, events),
            Command::Cancel { order_id } => self.cancel(order_id, events),
            Command::CancelAll { owner } => self.cancel_all(owner, events),
            Command::Reduce { order_id, new_size } => self.reduce(order_id, new_size, events),
            Command::Replace {
                order_id,
                new_price,
                new_size,
            } => self.replace(order_id, new_price, new_size, events),
            Command::ExpireUntil { now } => self.expire_until(now, events),
        }
    }

    /// Place an order and match it; events are appended to `events`.
    ///
    /// 1. **Validation** — refused with [`Event::Rejected`] and no change, checked in this
    ///    order: zero size; size above the maximum; zero price; a market order that is not
    ///    IOC or FOK; a good-til-time order whose `expires_at` is not after the last time
    ///    given to [`OrderBook::expire_until`]; an id that is already resting; a post-only
    ///    order that would cross; an order that could rest while the book is full.
    /// 2. [`Event::Accepted`].
    /// 3. **Fill-or-kill** is atomic: before anything changes, the book checks that the
    ///    order would fill its whole size. The check walks the opposite side in priority
    ///    order within the limit price exactly as matching would: a resting order of the
    ///    same owner is skipped if the order's self-trade mode is `CancelResting` (matching
    ///    will cancel it), and makes the check fail under any other mode (matching would stop
    ///    or shrink the order, so it could not fill completely). If the check fails, the
    ///    order ends with [`Event::Cancelled`] (`FillOrKill`) and nothing else happens; if it
    ///    passes, matching runs and fills it completely (cancelling the owner's own resting
    ///    orders it meets under `CancelResting`).
    /// 4. **Matching** against the best opposite level while it crosses the limit price,
    ///    each level in FIFO order, each trade at the maker's price ([`Event::Fill`]).
    /// 5. **Self-trade prevention** when the next resting order has the same owner; the
    ///    incoming order's mode decides:
    ///    - `CancelResting`: the resting order is cancelled; matching goes on.
    ///    - `CancelIncoming`: the rest of the incoming order is cancelled; matching stops.
    ///    - `CancelBoth`: the resting order, then the incoming one, are cancelled.
    ///    - `DecrementAndCancel`: both shrink by the smaller of the two open sizes; one that
    ///      reaches zero is cancelled, the other is [`Event::Reduced`] (the resting order's
    ///      event comes first); matching goes on only if the incoming order is left.
    /// 6. **What is left**: a good-til-cancel, good-til-time or post-only limit order rests
    ///    ([`Event::Rested`]); an IOC or market order's remainder is cancelled
    ///    (`ImmediateRemainder`).
    pub fn place(&mut self, order: NewOrder, events: &mut Vec<Event>) {
        let rest_kind = match self.validate(&order) {
            Ok(kind) => kind,
            Err(reason) => {
                events.push(Event::Rejected {
                    order_id: order.id,
                    reason,
                });
                return;
            }
        };
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
        let mut taker = Taker {
            id: order.id.0,
            owner: order.owner.0,
            side: order.side,
            limit: order.price.0,
            remaining: order.size.0,
            stp: order.stp,
        };
        let expires_at = match order.tif {
            TimeInForce::Gtt { expires_at } => expires_at.0,
            _ => 0,
        };
        if order.tif == TimeInForce::Fok && !self.can_fill_completely(&taker) {
            events.push(taker.cancelled(CancelReason::FillOrKill));
            return;
        }
        self.execute(&mut taker, rest_kind, expires_at, events);
        if order.tif == TimeInForce::Fok {
            assert_eq!(
                taker.remaining, 0,
                "bug: a fill-or-kill order passed its check but did not fill completely"
            );
        }
    }

    /// Checks of [`OrderBook::place`] step 1; on success, how the order would rest.
    fn validate(&self, order: &NewOrder) -> Result<Option<RestKind>, RejectReason> {
        if order.size.is_zero() {
            return Err(RejectReason::ZeroSize);
        }
        if order.size.0 > self.config.max_order_size {
            return Err(RejectReason::SizeTooLarge);
        }
        if order.price.is_zero() {
            return Err(RejectReason::ZeroPrice);
        }
        let rest_kind = match (order.order_type, order.tif) {
            (OrderType::Market, TimeInForce::Ioc | TimeInForce::Fok) => None,
            (OrderType::Market, _) => return Err(RejectReason::MarketOrderMustBeImmediate),
            (OrderType::Limit, TimeInForce::Gtc) => Some(RestKind::Gtc),
            (OrderType::Limit, TimeInForce::Gtt { .. }) => Some(RestKind::Gtt),
            (OrderType::Limit, TimeInForce::PostOnly) => Some(RestKind::PostOnly),
            (OrderType::Limit, TimeInForce::Ioc | TimeInForce::Fok) => None,
        };
        if let TimeInForce::Gtt { expires_at } = order.tif
            && expires_at.0 <= self.expired_until
        {
            return Err(RejectReason::AlreadyExpired);
        }
        if self.ids.contains_key(&order.id) {
            return Err(RejectReason::DuplicateOrderId);
        }
        if rest_kind == Some(RestKind::PostOnly) && self.would_cross(order.side, order.price.0) {
            return Err(RejectReason::PostOnlyWouldCross);
        }
        if rest_kind.is_some() && self.ids.len() >= self.config.max_orders as usize {
            return Err(RejectReason::BookFull);
        }
        Ok(rest_kind)
    }

    /// Whether an order on `side` at `price` would trade with the best opposite level.
    fn would_cross(&self, side: Side, price: u64) -> bool {
        match self.ladder(side.opposite()).best() {
            Some(level) => crosses(side, self.levels[level as usize].price, price),
            None => false,
        }
    }

    /// The fill-or-kill check of [`OrderBook::place`] step 3.
    fn can_fill_completely(&self, taker: &Taker) -> bool {
        let ladder = self.ladder(taker.side.opposite());
        // Cheap negative answer from the level totals first: own orders only lower what
        // can be filled.
        let mut available: u64 = 0;
        for &level in ladder.levels.iter().rev() {
            let level = &self.levels[level as usize];
            if !crosses(taker.side, level.price, taker.limit) {
                break;
            }
            available = available.saturating_add(level.total);
            if available >= taker.remaining {
                break;
            }
        }
        if available < taker.remaining {
            return false;
        }
        let mut needed = taker.remaining;
        for &level in ladder.levels.iter().rev() {
            let level = &self.levels[level as usize];
            if !crosses(taker.side, level.price, taker.limit) {
                return false;
            }
            let mut cursor = level.head;
            while cursor != NIL {
                let maker = &self.slots[cursor as usize];
                if maker.owner == taker.owner {
                    if taker.stp != SelfTradePrevention::CancelResting {
                        return false;
                    }
                } else if maker.remaining >= needed {
                    return true;
                } else {
                    needed -= maker.remaining;
                }
                cursor = maker.next;
            }
        }
        false
    }

    /// Match `taker`, then rest, cancel or finish it (steps 4–6 of [`OrderBook::place`]).
    fn execute(
        &mut self,
        taker: &mut Taker,
        rest_kind: Option<RestKind>,
        expires_at: u64,
        events: &mut Vec<Event>,
    ) {
        let stopped = self.match_taker(taker, events);
        if stopped || taker.remaining == 0 {
            return;
        }
        match rest_kind {
            Some(kind) => self.rest(taker, kind, expires_at, events),
            None => events.push(taker.cancelled(CancelReason::ImmediateRemainder)),
        }
    }

    /// Trade `taker` against the opposite side. Returns whether self-trade prevention
    /// ended the taker (its remainder has then been reported as cancelled).
    fn match_taker(&mut self, taker: &mut Taker, events: &mut Vec<Event>) -> bool {
        let maker_side = taker.side.opposite();
        while taker.remaining > 0 {
            let Some(level_id) = self.ladder(maker_side).best() else {
                return false;
            };
            let level = &self.levels[level_id as usize];
            let price = level.price;
            if !crosses(taker.side, price, taker.limit) {
                return false;
            }
            let mut cursor = level.head;
            // The level stays non-empty until its last order leaves, at which point
            // `remove_slot` drops it and `cursor` becomes NIL.
            while cursor != NIL && taker.remaining > 0 {
                let maker = self.slots[cursor as usize];
                if maker.owner == taker.owner {
                    if self.prevent_self_trade(taker, cursor, &maker, price, events) {
                        return true;
                    }
                } else {
                    let size = maker.remaining.min(taker.remaining);
                    taker.remaining -= size;
                    let maker_remaining = maker.remaining - size;
                    events.push(Event::Fill {
                        maker_order_id: OrderId(maker.id),
                        maker_owner: AccountIndex(maker.owner),
                        taker_order_id: OrderId(taker.id),
                        taker_owner: AccountIndex(taker.owner),
                        taker_side: taker.side,
                        price: PriceTicks(price),
                        size: SizeLots(size),
                        maker_remaining: SizeLots(maker_remaining),
                        taker_remaining: SizeLots(taker.remaining),
                    });
                    if maker_remaining == 0 {
                        self.remove_slot(cursor);
                    } else {
                        self.slots[cursor as usize].remaining = maker_remaining;
                        self.levels[level_id as usize].total -= size;
                        return false;
                    }
                }
                cursor = maker.next;
            }
        }
        false
    }

    /// Step 5 of [`OrderBook::place`] for the resting order at `slot`. Returns whether the
    /// taker is finished.
    fn prevent_self_trade(
        &mut self,
        taker: &mut Taker,
        slot: u32,
        maker: &Slot,
        price: u64,
        events: &mut Vec<Event>,
    ) -> bool {
        let maker_cancelled = |remaining: u64| Event::Cancelled {
            order_id: OrderId(maker.id),
            owner: AccountIndex(maker.owner),
            side: maker.side,
            price: PriceTicks(price),
            remaining: SizeLots(remaining),
            reason: CancelReason::SelfTrade,
        };
        match taker.stp {
            SelfTradePrevention::CancelResting => {
                self.remove_slot(slot);
                events.push(maker_cancelled(maker.remaining));
                false
            }
            SelfTradePrevention::CancelIncoming => {
                events.push(taker.cancelled(CancelReason::SelfTrade));
                taker.remaining = 0;
                true
            }
            SelfTradePrevention::CancelBoth => {
                self.remove_slot(slot);
                events.push(maker_cancelled(maker.remaining));
                events.push(taker.cancelled(CancelReason::SelfTrade));
                taker.remaining = 0;
                true
            }
            SelfTradePrevention::DecrementAndCancel => {
                let overlap = maker.remaining.min(taker.remaining);
                if maker.remaining > overlap {
                    let left = maker.remaining - overlap;
                    self.slots[slot as usize].remaining = left;
                    self.levels[maker.level as usize].total -= overlap;
                    events.push(Event::Reduced {
                        order_id: OrderId(maker.id),
                        owner: AccountIndex(maker.owner),
                        side: maker.side,
                        price: PriceTicks(price),
                        reduced_by: SizeLots(overlap),
                        remaining: SizeLots(left),
                        reason: ReduceReason::SelfTrade,
                    });
                } else {
                    self.remove_slot(slot);
                    events.push(maker_cancelled(maker.remaining));
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
                    false
                } else {
                    events.push(taker.cancelled(CancelReason::SelfTrade));
                    taker.remaining = 0;
                    true
                }
            }
        }
    }

    /// Put what is left of `taker` in the book.
    fn rest(&mut self, taker: &Taker, kind: RestKind, expires_at: u64, events: &mut Vec<Event>) {
        let level_id = self.level_for(taker.side, taker.limit);
        let slot_id = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                let slot = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&slot| slot != NIL)
                    .expect("bug: more slots than BookConfig allows");
                self.slots.push(EMPTY_SLOT);
                slot
            }
        };
        let owner_entry = self.owner_entry_for(AccountIndex(taker.owner));

        let level = &mut self.levels[level_id as usize];
        let prev = level.tail;
        level.tail = slot_id;
        if prev == NIL {
            level.head = slot_id;
        }
        level.count += 1;
        // Bounded by BookConfig (max_orders × max_order_size fits a u64).
        level.total += taker.remaining;

        let entry = &mut self.owners[owner_entry as usize];
        let owner_prev = entry.tail;
        entry.tail = slot_id;
        if owner_prev == NIL {
            entry.head = slot_id;
        }
        entry.count += 1;

        self.slots[slot_id as usize] = Slot {
            id: taker.id,
            owner: taker.owner,
            remaining: taker.remaining,
            expires_at,
            prev,
            next: NIL,
            level: level_id,
            owner_prev,
            owner_next: NIL,
            owner_entry,
            side: taker.side,
            kind,
            stp: taker.stp,
        };
        if prev != NIL {
            self.slots[prev as usize].next = slot_id;
        }
        if owner_prev != NIL {
            self.slots[owner_prev as usize].owner_next = slot_id;
        }
        let previous = self.ids.insert(OrderId(taker.id), slot_id);
        assert!(previous.is_none(), "bug: order id rested twice");
        if kind == RestKind::Gtt {
            self.live_gtt += 1;
            self.expiries.push(Reverse((expires_at, taker.id)));
            if self.expiries.len() > 2 * self.live_gtt + 1024 {
                self.compact_expiries();
            }
        }
        events.push(Event::Rested {
            order_id: OrderId(taker.id),
            owner: AccountIndex(taker.owner),
            side: taker.side,
            price: PriceTicks(taker.limit),
            remaining: SizeLots(taker.remaining),
        });
    }

    /// The level for `price` on `side`, created (empty) if there is none.
    #[inline]
    fn level_for(&mut self, side: Side, price: u64) -> u32 {
        let key = ladder_key(side, price);
        let position = self.ladder(side).position(key);
        match position {
            Ok(index) => self.ladder(side).levels[index],
            Err(index) => {
                let level = Level {
                    price,
                    total: 0,
                    head: NIL,
                    tail: NIL,
                    count: 0,
                    side,
                };
                let level_id = match self.free_levels.pop() {
                    Some(id) => {
                        self.levels[id as usize] = level;
                        id
                    }
                    None => {
                        let id =
                            u32::try_from(self.levels.len()).expect("bug: more levels than orders");
                        self.levels.push(level);
                        id
                    }
                };
                let ladder = self.ladder_mut(side);
                ladder.keys.insert(index, key);
                ladder.levels.insert(index, level_id);
                level_id
            }
        }
    }

    /// The owner's list entry, created if the owner has no resting order.
    #[inline]
    fn owner_entry_for(&mut self, owner: AccountIndex) -> u32 {
        match self.owner_index.entry(owner) {
            Entry::Occupied(entry) => *entry.get(),
            Entry::Vacant(vacant) => {
                let fresh = OwnerEntry {
                    owner: owner.0,
                    head: NIL,
                    tail: NIL,
                    count: 0,
                    listed_idle: false,
                };
                let id = match self.free_owners.pop() {
                    Some(id) => {
                        self.owners[id as usize] = fresh;
                        id
                    }
                    None => {
                        let id =
                            u32::try_from(self.owners.len()).expect("bug: more owners than orders");
                        self.owners.push(fresh);
                        id
                    }
                };
                vacant.insert(id);
                id
            }
        }
    }

    /// Take the order in `slot_id` out of every structure (no event).
    fn remove_slot(&mut self, slot_id: u32) {
        let id = self.slots[slot_id as usize].id;
        let removed = self.ids.remove(&OrderId(id));
        debug_assert_eq!(removed, Some(slot_id), "bug: id map out of step");
        self.unlink_slot(slot_id);
    }

    /// Take the order in `slot_id` out of every structure except the id map (the caller
    /// has removed it already).
    fn unlink_slot(&mut self, slot_id: u32) {
        let slot = self.slots[slot_id as usize];

        // Level FIFO.
        if slot.prev != NIL {
            self.slots[slot.prev as usize].next = slot.next;
        }
        if slot.next != NIL {
            self.slots[slot.next as usize].prev = slot.prev;
        }
        let level = &mut self.levels[slot.level as usize];
        if level.head == slot_id {
            level.head = slot.next;
        }
        if level.tail == slot_id {
            level.tail = slot.prev;
        }
        level.count -= 1;
        level.total -= slot.remaining;
        if level.count == 0 {
            self.remove_level(slot.level);
        }

        // Owner list.
        if slot.owner_prev != NIL {
            self.slots[slot.owner_prev as usize].owner_next = slot.owner_next;
        }
        if slot.owner_next != NIL {
            self.slots[slot.owner_next as usize].owner_prev = slot.owner_prev;
        }
        let entry = &mut self.owners[slot.owner_entry as usize];
        if entry.head == slot_id {
            entry.head = slot.owner_next;
        }
        if entry.tail == slot_id {
            entry.tail = slot.owner_prev;
        }
        entry.count -= 1;
        if entry.count == 0 && !entry.listed_idle {
            entry.listed_idle = true;
            self.idle_owners.push(slot.owner_entry);
            if self.idle_owners.len() > IDLE_OWNERS_MIN + self.owner_index.len() / 2 {
                self.drop_idle_owners();
            }
        }

        if slot.kind == RestKind::Gtt {
            self.live_gtt -= 1;
        }
        self.slots[slot_id as usize].level = NIL;
        self.free_slots.push(slot_id);
    }

    /// Drop the owner entries that are still empty, so that owners who left do not
    /// accumulate. Amortised O(1) per removal; the outcome does not depend on any order.
    fn drop_idle_owners(&mut self) {
        for entry_id in std::mem::take(&mut self.idle_owners) {
            let entry = &mut self.owners[entry_id as usize];
            entry.listed_idle = false;
            if entry.count == 0 {
                let removed = self.owner_index.remove(&AccountIndex(entry.owner));
                debug_assert_eq!(removed, Some(entry_id), "bug: owner index out of step");
                self.free_owners.push(entry_id);
            }
        }
    }

    /// Drop an empty level from its ladder.
    fn remove_level(&mut self, level_id: u32) {
        let level = self.levels[level_id as usize];
        debug_assert_eq!(level.count, 0);
        let ladder = self.ladder_mut(level.side);
        if ladder.levels.last() == Some(&level_id) {
            ladder.keys.pop();
            ladder.levels.pop();
        } else {
            let index = ladder
                .position(ladder_key(level.side, level.price))
                .expect("bug: a level missing from its ladder");
            ladder.keys.remove(index);
            ladder.levels.remove(index);
        }
        self.free_levels.push(level_id);
    }

    /// Rebuild the expiry heap without entries of orders that are gone, bounding it at
    /// about twice the live good-til-time orders.
    fn compact_expiries(&mut self) {
        let mut entries = std::mem::take(&mut self.expiries).into_sorted_vec();
        entries.dedup();
        entries.retain(|Reverse((expires_at, id))| self.is_live_gtt(*id, *expires_at));
        self.expiries = BinaryHeap::from(entries);
    }

    fn is_live_gtt(&self, id: u64, expires_at: u64) -> bool {
        match self.ids.get(&OrderId(id)) {
            Some(&slot) => {
                let slot = &self.slots[slot as usize];
                slot.kind == RestKind::Gtt && slot.expires_at == expires_at
            }
            None => false,
        }
    }

    /// Cancel a resting order: [`Event::Cancelled`] (`User`), or [`Event::Rejected`]
    /// (`UnknownOrder`) if no resting order has this id.
    pub fn cancel(&mut self, order_id: OrderId, events: &mut Vec<Event>) {
        match self.ids.remove(&order_id) {
            Some(slot) => {
                let view = self.view(slot);
                self.unlink_slot(slot);
                events.push(Event::Cancelled {
                    order_id,
                    owner: view.owner,
                    side: view.side,
                    price: view.price,
                    remaining: view.remaining,
                    reason: CancelReason::User,
                });
            }
            None => events.push(Event::Rejected {
                order_id,
                reason: RejectReason::UnknownOrder,
            }),
        }
    }

    /// Cancel every resting order of `owner`, in ascending order id (one
    /// [`Event::Cancelled`] each; no event if it has none).
    pub fn cancel_all(&mut self, owner: AccountIndex, events: &mut Vec<Event>) {
        let Some(&entry) = self.owner_index.get(&owner) else {
            return;
        };
        let mut slots = std::mem::take(&mut self.scratch);
        slots.clear();
        let mut cursor = self.owners[entry as usize].head;
        while cursor != NIL {
            slots.push(cursor);
            cursor = self.slots[cursor as usize].owner_next;
        }
        slots.sort_unstable_by_key(|&slot| self.slots[slot as usize].id);
        for &slot in &slots {
            let view = self.view(slot);
            self.remove_slot(slot);
            events.push(Event::Cancelled {
                order_id: view.id,
                owner: view.owner,
                side: view.side,
                price: view.price,
                remaining: view.remaining,
                reason: CancelReason::User,
            });
        }
        self.scratch = slots;
    }

    /// Shrink a resting order's open size to `new_size`, keeping its time priority
    /// ([`Event::Reduced`], `User`). Rejected with `ZeroSize` (use cancel), `UnknownOrder`,
    /// or `NotAReduction` if `new_size` is not below the open size.
    pub fn reduce(&mut self, order_id: OrderId, new_size: SizeLots, events: &mut Vec<Event>) {
        let reject = |reason| Event::Rejected { order_id, reason };
        if new_size.is_zero() {
            return events.push(reject(RejectReason::ZeroSize));
        }
        let Some(&slot_id) = self.ids.get(&order_id) else {
            return events.push(reject(RejectReason::UnknownOrder));
        };
        let slot = &mut self.slots[slot_id as usize];
        if new_size.0 >= slot.remaining {
            return events.push(reject(RejectReason::NotAReduction));
        }
        let reduced_by = slot.remaining - new_size.0;
        slot.remaining = new_size.0;
        let (owner, side, level_id) = (slot.owner, slot.side, slot.level);
        let level = &mut self.levels[level_id as usize];
        level.total -= reduced_by;
        events.push(Event::Reduced {
            order_id,
            owner: AccountIndex(owner),
            side,
            price: PriceTicks(level.price),
            reduced_by: SizeLots(reduced_by),
            remaining: new_size,
            reason: ReduceReason::User,
        });
    }

    /// Give a resting order a new price and open size ([`Event::Replaced`]).
    ///
    /// At the same price with a size not above the open size, the order keeps its place in
    /// the queue. Otherwise it loses priority: it leaves the book and comes back as an
    /// incoming order with the same id, owner, side, time in force and self-trade mode, so it
    /// may trade if the new price crosses (fills, then [`Event::Rested`], or cancellation by
    /// self-trade prevention).
    ///
    /// Rejected, with no change, for a zero or too large size, a zero price, an unknown
    /// id, or a post-only order whose new price would cross.
    pub fn replace(
        &mut self,
        order_id: OrderId,
        new_price: PriceTicks,
        new_size: SizeLots,
        events: &mut Vec<Event>,
    ) {
        let reject = |reason| Event::Rejected { order_id, reason };
        if new_size.is_zero() {
            return events.push(reject(RejectReason::ZeroSize));
        }
        if new_size.0 > self.config.max_order_size {
            return events.push(reject(RejectReason::SizeTooLarge));
        }
        if new_price.is_zero() {
            return events.push(reject(RejectReason::ZeroPrice));
        }
        let Some(&slot_id) = self.ids.get(&order_id) else {
            return events.push(reject(RejectReason::UnknownOrder));
        };
        let slot = self.slots[slot_id as usize];
        let old_price = self.levels[slot.level as usize].price;
        let replaced = |priority_kept| Event::Replaced {
            order_id,
            owner: AccountIndex(slot.owner),
            side: slot.side,
            old_price: PriceTicks(old_price),
            old_remaining: SizeLots(slot.remaining),
            new_price,
            new_size,
            priority_kept,
        };
        if new_price.0 == old_price && new_size.0 <= slot.remaining {
            let reduced_by = slot.remaining - new_size.0;
            self.slots[slot_id as usize].remaining = new_size.0;
            self.levels[slot.level as usize].total -= reduced_by;
            return events.push(replaced(true));
        }
        if slot.kind == RestKind::PostOnly && self.would_cross(slot.side, new_price.0) {
            return events.push(reject(RejectReason::PostOnlyWouldCross));
        }
        self.remove_slot(slot_id);
        events.push(replaced(false));
        let mut taker = Taker {
            id: slot.id,
            owner: slot.owner,
            side: slot.side,
            limit: new_price.0,
            remaining: new_size.0,
            stp: slot.stp,
        };
        self.execute(&mut taker, Some(slot.kind), slot.expires_at, events);
    }

    /// Expire every good-til-time order with `expires_at <= now`, in ascending
    /// `(expires_at, order id)` ([`Event::Expired`] each). From then on a good-til-time
    /// order whose expiry is not after the largest `now` seen is rejected
    /// (`AlreadyExpired`), so no order can rest past its expiry.
    pub fn expire_until(&mut self, now: TimestampMs, events: &mut Vec<Event>) {
        self.expired_until = self.expired_until.max(now.0);
        while let Some(&Reverse((expires_at, id))) = self.expiries.peek() {
            if expires_at > now.0 {
                break;
            }
            self.expiries.pop();
            if !self.is_live_gtt(id, expires_at) {
                continue;
            }
            let slot = self.ids[&OrderId(id)];
            let view = self.view(slot);
            self.remove_slot(slot);
            events.push(Event::Expired {
                order_id: view.id,
                owner: view.owner,
                side: view.side,
                price: view.price,
                remaining: view.remaining,
                expires_at: TimestampMs(expires_at),
            });
        }
    }

    // ---- Queries ----

    /// Number of resting orders.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no order rests.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The largest time [`OrderBook::expire_until`] has run with (0 before the first).
    /// A book restored from [`OrderBook::orders_in_priority`] must be given it too.
    pub fn expired_until(&self) -> TimestampMs {
        TimestampMs(self.expired_until)
    }

    /// The resting order with this id.
    pub fn order(&self, order_id: OrderId) -> Option<OrderView> {
        self.ids.get(&order_id).map(|&slot| self.view(slot))
    }

    /// Highest bid price.
    pub fn best_bid(&self) -> Option<PriceTicks> {
        self.best(Side::Buy)
    }

    /// Lowest ask price.
    pub fn best_ask(&self) -> Option<PriceTicks> {
        self.best(Side::Sell)
    }

    /// Best price of `side`.
    pub fn best(&self, side: Side) -> Option<PriceTicks> {
        self.ladder(side)
            .best()
            .map(|level| PriceTicks(self.levels[level as usize].price))
    }

    /// Number of price levels on `side`.
    pub fn level_count(&self, side: Side) -> usize {
        self.ladder(side).levels.len()
    }

    /// Up to `max_levels` levels of `side`, best first.
    pub fn depth(&self, side: Side, max_levels: usize) -> Vec<DepthLevel> {
        self.ladder(side)
            .levels
            .iter()
            .rev()
            .take(max_levels)
            .map(|&level| {
                let level = &self.levels[level as usize];
                DepthLevel {
                    price: PriceTicks(level.price),
                    size: SizeLots(level.total),
                    orders: level.count,
                }
            })
            .collect()
    }

    /// The orders resting at `price` on `side`, in time priority (empty if no level).
    pub fn level_orders(&self, side: Side, price: PriceTicks) -> Vec<OrderView> {
        let ladder = self.ladder(side);
        match ladder.position(ladder_key(side, price.0)) {
            Ok(index) => self.queue(ladder.levels[index]).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The resting orders of `owner`, in ascending order id.
    pub fn owner_orders(&self, owner: AccountIndex) -> Vec<OrderView> {
        let mut orders = Vec::new();
        if let Some(&entry) = self.owner_index.get(&owner) {
            let mut cursor = self.owners[entry as usize].head;
            while cursor != NIL {
                orders.push(self.view(cursor));
                cursor = self.slots[cursor as usize].owner_next;
            }
        }
        orders.sort_unstable_by_key(|order| order.id);
        orders
    }

    /// Every resting order: bids best level first, then asks best level first, each level
    /// in time priority. Placing these (with [`OrderView::to_new_order`]) into an empty book
    /// with the same configuration, then calling [`OrderBook::expire_until`] with
    /// [`OrderBook::expired_until`], yields a book that answers every query and every
    /// future command identically.
    pub fn orders_in_priority(&self) -> impl Iterator<Item = OrderView> + '_ {
        [Side::Buy, Side::Sell].into_iter().flat_map(move |side| {
            self.ladder(side)
                .levels
                .iter()
                .rev()
                .flat_map(move |&level| self.queue(level))
        })
    }

    fn queue(&self, level: u32) -> impl Iterator<Item = OrderView> + '_ {
        let mut cursor = self.levels[level as usize].head;
        std::iter::from_fn(move || {
            if cursor == NIL {
                return None;
            }
            let view = self.view(cursor);
            cursor = self.slots[cursor as usize].next;
            Some(view)
        })
    }

    fn view(&self, slot: u32) -> OrderView {
        let slot = &self.slots[slot as usize];
        OrderView {
            id: OrderId(slot.id),
            owner: AccountIndex(slot.owner),
            side: slot.side,
            price: PriceTicks(self.levels[slot.level as usize].price),
            remaining: SizeLots(slot.remaining),
            tif: match slot.kind {
                RestKind::Gtc => TimeInForce::Gtc,
                RestKind::Gtt => TimeInForce::Gtt {
                    expires_at: TimestampMs(slot.expires_at),
                },
                RestKind::PostOnly => TimeInForce::PostOnly,
            },
            stp: slot.stp,
        }
    }

    #[inline(always)]
    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline(always)]
    fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Check every internal invariant, panicking with "bug: …" on the first broken one.
    /// O(resting orders); meant for tests, fuzzing and debugging, not the hot path.
    ///
    /// Checked: each ladder strictly sorted, best last, with no empty level; every level's
    /// queue links, count and total; every order's level, side and id lookup; every owner
    /// list; the number of orders; and that the book is not crossed.
    pub fn check_invariants(&self) {
        let mut orders = 0usize;
        for side in [Side::Buy, Side::Sell] {
            let ladder = self.ladder(side);
            assert_eq!(ladder.keys.len(), ladder.levels.len(), "bug: ladder arrays");
            assert!(
                ladder.keys.windows(2).all(|pair| pair[0] < pair[1]),
                "bug: ladder not strictly sorted"
            );
            for (&key, &level_id) in ladder.keys.iter().zip(&ladder.levels) {
                let level = &self.levels[level_id as usize];
                assert_eq!(level.side, side, "bug: level on the wrong side");
                assert_eq!(ladder_key(side, level.price), key, "bug: level key");
                assert!(level.count > 0, "bug: empty level in the ladder");
                let (mut count, mut total, mut prev, mut cursor) = (0u32, 0u64, NIL, level.head);
                while cursor != NIL {
                    let slot = &self.slots[cursor as usize];
                    assert_eq!(slot.prev, prev, "bug: broken prev link");
                    assert_eq!(slot.level, level_id, "bug: order in the wrong level");
                    assert_eq!(slot.side, side, "bug: order on the wrong side");
                    assert!(slot.remaining > 0, "bug: empty order resting");
                    assert_eq!(
                        self.ids.get(&OrderId(slot.id)),
                        Some(&cursor),
                        "bug: id lookup does not find the order"
                    );
                    let entry = self.owner_index.get(&AccountIndex(slot.owner));
                    assert_eq!(entry, Some(&slot.owner_entry), "bug: owner entry");
                    count += 1;
                    total += slot.remaining;
                    prev = cursor;
                    cursor = slot.next;
                }
                assert_eq!(level.tail, prev, "bug: level tail");
                assert_eq!(level.count, count, "bug: level count");
                assert_eq!(level.total, total, "bug: level total");
                orders += count as usize;
            }
        }
        assert_eq!(
            orders,
            self.ids.len(),
            "bug: id map holds orders not in a level"
        );
        let mut owned = 0usize;
        for (entry_id, entry) in self.owners.iter().enumerate() {
            if self.free_owners.contains(&(entry_id as u32)) {
                continue;
            }
            let (mut count, mut prev, mut cursor) = (0u32, NIL, entry.head);
            while cursor != NIL {
                let slot = &self.slots[cursor as usize];
                assert_eq!(slot.owner_prev, prev, "bug: broken owner link");
                assert_eq!(slot.owner_entry as usize, entry_id, "bug: owner entry link");
                count += 1;
                prev = cursor;
                cursor = slot.owner_next;
            }
            assert_eq!(entry.tail, prev, "bug: owner tail");
            assert_eq!(entry.count, count, "bug: owner count");
            assert!(
                count > 0 || entry.listed_idle,
                "bug: empty owner entry not listed idle"
            );
            assert_eq!(
                self.owner_index.get(&AccountIndex(entry.owner)),
                Some(&(entry_id as u32)),
                "bug: owner entry missing from the index"
            );
            owned += count as usize;
        }
        assert_eq!(owned, orders, "bug: owner lists do not cover the book");
        assert_eq!(
            self.owner_index.len(),
            self.owners.len() - self.free_owners.len(),
            "bug: owner index size"
        );
        if let (Some(bid), Some(ask)) = (self.best_bid(), self.best_ask()) {
            assert!(bid < ask, "bug: crossed book, bid {bid} >= ask {ask}");
        }
    }
}
