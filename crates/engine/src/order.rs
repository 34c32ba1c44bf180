//! The inputs of the book and the view of one resting order.

use borsh::BorshSerialize;
use dex_types::{
    AccountIndex, OrderId, OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce,
    TimestampMs,
};
use serde::Serialize;

/// An incoming order, as the ledger hands it to [`crate::OrderBook::place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, Serialize)]
pub struct NewOrder {
    /// Caller-assigned id. It must not be the id of an order resting in the book (that is
    /// rejected); uniqueness over all history is the caller's responsibility.
    pub id: OrderId,
    /// The owner; two orders of one owner never trade with each other (see `stp`).
    pub owner: AccountIndex,
    /// Buy or sell.
    pub side: Side,
    /// Limit, or market (which never rests and must be IOC or FOK).
    pub order_type: OrderType,
    /// Limit price; for a market order the worst price it may trade at.
    pub price: PriceTicks,
    /// Size in lots.
    pub size: SizeLots,
    /// Time in force.
    pub tif: TimeInForce,
    /// What happens if this order would trade with a resting order of the same owner.
    pub stp: SelfTradePrevention,
}

/// One resting order as the book holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OrderView {
    /// The order's id.
    pub id: OrderId,
    /// Its owner.
    pub owner: AccountIndex,
    /// Buy or sell.
    pub side: Side,
    /// Its price level.
    pub price: PriceTicks,
    /// Open quantity.
    pub remaining: SizeLots,
    /// Time in force: good-til-cancel, good-til-time or post-only (the only ones that rest).
    pub tif: TimeInForce,
    /// Self-trade prevention mode it uses if a replacement makes it take.
    pub stp: SelfTradePrevention,
}

impl OrderView {
    /// The placement that recreates this order in an empty book (used to restore a book
    /// from [`crate::OrderBook::orders_in_priority`]).
    pub fn to_new_order(&self) -> NewOrder {
        NewOrder {
            id: self.id,
            owner: self.owner,
            side: self.side,
            order_type: OrderType::Limit,
            price: self.price,
            size: self.remaining,
            tif: self.tif,
            stp: self.stp,
        }
    }
}

/// One input of the book; [`crate::OrderBook::apply`] runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, Serialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Place an order ([`crate::OrderBook::place`]).
    Place(NewOrder),
    /// Cancel one order ([`crate::OrderBook::cancel`]).
    Cancel {
        /// The order.
        order_id: OrderId,
    },
    /// Cancel every order of an owner ([`crate::OrderBook::cancel_all`]).
    CancelAll {
        /// The owner.
        owner: AccountIndex,
    },
    /// Shrink an order, keeping its priority ([`crate::OrderBook::reduce`]).
    Reduce {
        /// The order.
        order_id: OrderId,
        /// Its new open size.
        new_size: SizeLots,
    },
    /// Change price and/or size ([`crate::OrderBook::replace`]).
    Replace {
        /// The order.
        order_id: OrderId,
        /// Its new price.
        new_price: PriceTicks,
        /// Its new open size.
        new_size: SizeLots,
    },
    /// Expire good-til-time orders ([`crate::OrderBook::expire_until`]).
    ExpireUntil {
        /// The block time.
        now: TimestampMs,
    },
}
