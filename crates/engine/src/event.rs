//! What the book reports: one event per change, in the order the changes happen.

use borsh::BorshSerialize;
use dex_types::{
    AccountIndex, OrderId, OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce,
    TimestampMs,
};
use serde::Serialize;

/// One change of the book, reported in the order it happened.
///
/// For every accepted order the stream says exactly how its open quantity ends: the order
/// ends with exactly one of
/// - a [`Event::Fill`] whose `taker_remaining` is zero (completely filled on arrival),
/// - [`Event::Rested`] (what is left now rests in the book),
/// - [`Event::Cancelled`] (what is left is removed: immediate remainder, fill-or-kill,
///   self-trade prevention).
///
/// A resting order later leaves the book through a fill that brings `maker_remaining` to
/// zero, [`Event::Cancelled`], or [`Event::Expired`]; in between, [`Event::Reduced`] and
/// [`Event::Replaced`] change it. Every event that removes open quantity carries the
/// order's owner, side, limit price and the quantity removed, so the ledger can release
/// exactly what it locked.
///
/// The canonical encoding (borsh) of this type is what [`crate::EventDigest`] hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[borsh(use_discriminant = false)]
pub enum Event {
    /// The incoming order passed validation; matching follows.
    Accepted {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        owner: AccountIndex,
        /// Buy or sell.
        side: Side,
        /// Limit or market.
        order_type: OrderType,
        /// Limit price (the worst acceptable price for a market order).
        price: PriceTicks,
        /// Size on arrival.
        size: SizeLots,
        /// Time in force.
        tif: TimeInForce,
        /// Self-trade prevention mode of the order (it applies when the order takes).
        stp: SelfTradePrevention,
    },
    /// The command was refused; nothing changed.
    Rejected {
        /// The order the command named.
        order_id: OrderId,
        /// Why.
        reason: RejectReason,
    },
    /// A trade at the maker's price.
    Fill {
        /// The resting order.
        maker_order_id: OrderId,
        /// Its owner.
        maker_owner: AccountIndex,
        /// The incoming order.
        taker_order_id: OrderId,
        /// Its owner.
        taker_owner: AccountIndex,
        /// The incoming order's side (the maker is on the other side).
        taker_side: Side,
        /// The maker's price.
        price: PriceTicks,
        /// Quantity traded.
        size: SizeLots,
        /// What the maker still has open; zero means it left the book.
        maker_remaining: SizeLots,
        /// What the taker still has open after this fill.
        taker_remaining: SizeLots,
    },
    /// An accepted order (or a replaced one that lost priority) now rests in the book.
    Rested {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        owner: AccountIndex,
        /// Buy or sell.
        side: Side,
        /// Its price level.
        price: PriceTicks,
        /// Open quantity now resting.
        remaining: SizeLots,
    },
    /// Open quantity of an order was removed without trading.
    Cancelled {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        owner: AccountIndex,
        /// Buy or sell.
        side: Side,
        /// The order's limit price (worst price for a market order).
        price: PriceTicks,
        /// The quantity removed: what was still open.
        remaining: SizeLots,
        /// Why.
        reason: CancelReason,
    },
    /// An order's open quantity shrank; it keeps its place in the queue.
    Reduced {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        owner: AccountIndex,
        /// Buy or sell.
        side: Side,
        /// The order's limit price.
        price: PriceTicks,
        /// Quantity removed.
        reduced_by: SizeLots,
        /// Open quantity after the reduction (never zero).
        remaining: SizeLots,
        /// Why.
        reason: ReduceReason,
    },
    /// A resting order was given a new price and/or size.
    ///
    /// With `priority_kept` the order stays where it was with `new_size` open. Without it,
    /// the old order left the book and the new one is matched like an incoming order:
    /// fills, then [`Event::Rested`] or [`Event::Cancelled`] (self-trade) follow.
    Replaced {
        /// The order (it keeps its id).
        order_id: OrderId,
        /// Its owner.
        owner: AccountIndex,
        /// Buy or sell.
        side: Side,
        /// Price before.
        old_price: PriceTicks,
        /// Open quantity before (released by the ledger).
        old_remaining: SizeLots,
        /// Price after.
        new_price: PriceTicks,
        /// Open quantity after (locked by the ledger).
        new_size: SizeLots,
        /// Whether the order kept its time priority.
        priority_kept: bool,
    },
    /// A good-til-time order reached its expiry and left the book.
    Expired {
        /// The order.
        order_id: OrderId,
        /// Its owner.
        owner: AccountIndex,
        /// Buy or sell.
        side: Side,
        /// Its price.
        price: PriceTicks,
        /// The quantity removed: what was still open.
        remaining: SizeLots,
        /// The expiry time the order carried.
        expires_at: TimestampMs,
    },
}

/// Why a command was refused. Nothing changes in the book when this happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum RejectReason {
    /// The order or the requested new size is zero lots.
    #[error("the size must be at least one lot")]
    ZeroSize = 0,
    /// The order's size is above the book's per-order maximum ([`crate::BookConfig`]).
    #[error("the size is larger than the largest order this market accepts")]
    SizeTooLarge = 1,
    /// The price is zero ticks.
    #[error("the price must be at least one tick")]
    ZeroPrice = 2,
    /// An order with this id is already resting in the book.
    #[error("an order with this id is already open")]
    DuplicateOrderId = 3,
    /// A market order with a time in force other than immediate-or-cancel or fill-or-kill.
    #[error("a market order must be immediate-or-cancel or fill-or-kill")]
    MarketOrderMustBeImmediate = 4,
    /// A post-only order (or replacement of one) would trade on arrival.
    #[error("the post-only order would trade immediately")]
    PostOnlyWouldCross = 5,
    /// A good-til-time order whose expiry is not after the last expiry time the book ran.
    #[error("the good-til-time order has already expired")]
    AlreadyExpired = 6,
    /// The book holds its maximum number of resting orders.
    #[error("the order book is full")]
    BookFull = 7,
    /// No resting order has this id (never placed, already filled, cancelled or expired).
    #[error("no open order has this id")]
    UnknownOrder = 8,
    /// A reduce whose new size is not below the open quantity.
    #[error("the new size must be smaller than the open size")]
    NotAReduction = 9,
}

/// Why open quantity was removed without trading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum CancelReason {
    /// The owner asked: a cancel by id or a cancel-all.
    User = 0,
    /// Self-trade prevention removed it (see [`crate::OrderBook::place`]).
    SelfTrade = 1,
    /// What an immediate-or-cancel or market order could not fill at once.
    ImmediateRemainder = 2,
    /// A fill-or-kill order that could not fill completely; nothing traded.
    FillOrKill = 3,
}

/// Why an order shrank without trading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum ReduceReason {
    /// The owner asked.
    User = 0,
    /// Decrement-and-cancel self-trade prevention took the overlapping quantity away.
    SelfTrade = 1,
}
