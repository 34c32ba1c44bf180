//! Match one market's orders: a price-time priority order book over integer ticks and lots.
//!
//! [`OrderBook`] is a deterministic state machine. Every input ([`OrderBook::place`],
//! [`OrderBook::cancel`], [`OrderBook::cancel_all`], [`OrderBook::reduce`],
//! [`OrderBook::replace`], [`OrderBook::expire_until`], or a [`Command`] through
//! [`OrderBook::apply`]) appends a stream of [`Event`]s to a caller-owned buffer, and the
//! same inputs always give the same events on every machine. The ledger settles funds from
//! these events alone: every event that changes an order's open quantity carries the order's
//! owner, side, limit price and the quantity that is still open.
//!
//! # Design
//! - **Orders** live in an arena (`Vec` of fixed-size slots plus a free list). Each price
//!   level is an intrusive doubly linked FIFO through the slots, so a cancel anywhere in a
//!   queue is O(1), and each owner's orders form a second intrusive list, so
//!   [`OrderBook::cancel_all`] costs O(that owner's orders).
//! - **Price levels** of one side sit in a sorted array ordered so that the best price is
//!   the last element: the best price is read in O(1), the levels a sweep empties are popped
//!   from the end, and a level `d` ticks from the best is searched for only among the last
//!   `d + 1` entries (prices are distinct integers), which near the touch, where nearly all
//!   activity happens and levels sit on consecutive ticks, is usually found by the first
//!   probe. Walking the mid across thousands of ticks never re-bases anything.
//! - **Lookups** by order id and by owner use `std` hash maps with a fixed, seedless
//!   multiplicative hasher ([`FastIdHasher`](crate::hasher::FastIdHasher)). The maps are
//!   lookup-only: nothing ever iterates them, so hash order cannot reach a result.
//! - **No allocation per order after warm-up**: slots, levels, owner entries and the scratch
//!   buffers are reused through free lists; the caller reuses its event buffer.
//! - **Bounds**: [`BookConfig`] caps the number of resting orders and the size of one order
//!   so that no sum of sizes can overflow a `u64`.
//!
//! # Semantics in one place
//! See [`OrderBook::place`] for the life of an incoming order (validation, fill-or-kill
//! atomicity, post-only, self-trade prevention, resting), and [`Event`] for what each event
//! means to the ledger.
//!
//! # Feature flags
//! - `bench-support`: exposes the `scenario` module, the seeded generator of the
//!   benchmark message streams (`normal`, `deep`, `swing`), so that the workspace's system
//!   benchmarks can reuse the same streams.
#![forbid(unsafe_code)]

mod book;
pub mod digest;
mod event;
pub mod hasher;
mod order;
#[cfg(feature = "bench-support")]
pub mod scenario;
#[cfg(test)]
mod tests;

pub use book::{BookConfig, ConfigError, DepthLevel, OrderBook};
pub use digest::EventDigest;
pub use event::{CancelReason, Event, ReduceReason, RejectReason};
pub use order::{Command, NewOrder, OrderView};
