//! Define the exchange's vocabulary: ids, units, markets, transactions, hashing and signing.
//!
//! Everything that is signed, hashed or stored is encoded with borsh; the encoding of each
//! type is pinned by golden tests so that a change of format is a deliberate act. Hashes are
//! BLAKE3 with a domain-separation prefix per kind of message (see [`hash::Domain`]).
//!
//! The crate is pure: no IO, no clock, no randomness, no floats.
#![forbid(unsafe_code)]

pub mod hash;
pub mod ids;
pub mod units;

pub use hash::{Domain, Hash};
pub use ids::{AccountId, AccountIndex, AssetId, ClientOrderId, MarketId, OrderId};
pub use units::{
    OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce, TimestampMs,
};
