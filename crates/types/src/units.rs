//! Integer units of price, size and time, and the small enums an order carries.
//!
//! Inside the exchange every price is a whole number of ticks and every size a whole number
//! of lots; decimals exist only at the edge (see `market`).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! unit {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug,
            BorshSerialize, BorshDeserialize, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// Zero of this unit.
            pub const ZERO: $name = $name(0);

            /// `self + other`, or `None` on overflow.
            pub fn checked_add(self, other: $name) -> Option<$name> {
                self.0.checked_add(other.0).map($name)
            }

            /// `self - other`, or `None` if `other` is larger.
            pub fn checked_sub(self, other: $name) -> Option<$name> {
                self.0.checked_sub(other.0).map($name)
            }

            /// Whether this is zero.
            pub fn is_zero(self) -> bool {
                self.0 == 0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

unit!(
    /// A price as a whole number of the market's ticks (price = ticks × tick size).
    PriceTicks
);
unit!(
    /// A size as a whole number of the market's lots (size = lots × lot size).
    SizeLots
);
unit!(
    /// A block time in milliseconds since the Unix epoch. Inside the state machine time
    /// only ever comes from the block header, never from a clock.
    TimestampMs
);

/// Which side of the book an order is on.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum Side {
    /// Buys base, pays quote.
    Buy = 0,
    /// Sells base, receives quote.
    Sell = 1,
}

impl Side {
    /// The side this order trades against.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// How long an order may rest, and what happens to what does not fill at once.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum TimeInForce {
    /// Good-til-cancel: rests until filled or cancelled.
    Gtc,
    /// Good-til-time: rests until filled, cancelled, or the first block at or past `expires_at`.
    Gtt {
        /// Block time at which the order expires.
        expires_at: TimestampMs,
    },
    /// Immediate-or-cancel: fills what it can now, the rest is cancelled.
    Ioc,
    /// Fill-or-kill: fills completely now or not at all.
    Fok,
    /// Post-only: rests without taking; rejected if it would cross.
    PostOnly,
}

/// What happens when an incoming order would trade with a resting order of the same owner.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Debug,
    Default,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum SelfTradePrevention {
    /// Cancel the resting order, keep matching the incoming one.
    #[default]
    CancelResting = 0,
    /// Cancel the rest of the incoming order.
    CancelIncoming = 1,
    /// Cancel both.
    CancelBoth = 2,
    /// Reduce both by the smaller size; cancel whichever reaches zero (both if equal).
    DecrementAndCancel = 3,
}

/// Whether an order names a limit price or only a worst acceptable price.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum OrderType {
    /// Trades at its price or better; what is left rests as its time in force says.
    Limit = 0,
    /// Trades immediately up to a signed worst price; never rests (its time in force must
    /// be immediate-or-cancel or fill-or-kill).
    Market = 1,
}
