//! Trade on the exchange from Rust: keys, an async client, self-healing subscriptions with a
//! checked local book, proof verification, the example bots' logic, and the `dex` CLI.
//!
//! # Pieces
//! - [`TraderKey`]: account and agent keys from OS randomness, stored 0600, loaded with a
//!   permission check.
//! - [`Client`]: every read of the node API, and every transaction: place, cancel, modify,
//!   batch, cancel-all, the dead-man switch, transfers, agents. Decimal prices and sizes are
//!   converted exactly to ticks and lots ([`OrderParams`]; rounding only on request);
//!   nonces come from a [`NonceManager`] safe under concurrency; a retry resends the same
//!   signed bytes after asking whether the first attempt landed, and every placement has a
//!   client order id to find it again ([`Client::place_once`]).
//! - [`Subscription`]: WebSocket streams that reconnect and resubscribe by themselves,
//!   replay what was missed, de-duplicate fills, and keep [`LocalBook`]s that detect gaps
//!   and checksum mismatches and resync.
//! - [`verify`]: fill and balance proofs against a header, and the header against the
//!   validator set's commit certificate, so a trader need not trust the node.
//! - [`bots`]: the market maker and taker behind `examples/market_maker.rs` and
//!   `examples/taker.rs`.
//!
//! # Why it is built this way
//! The failures traders meet with exchange SDKs are the design brief: streams that stop
//! silently (heartbeat timeouts and reconnects), books that go stale or crossed (sequence
//! numbers and per-block checksums), nonce errors under load (an atomic, window-bounded
//! nonce manager), prices refused for their formatting (exact conversion checked before
//! sending, explicit rounding helpers), and double orders after a restart (client order ids
//! and status lookups before any resubmission).
//!
//! The crate has no feature flags.

pub mod book;
pub mod bots;
pub mod client;
pub mod error;
pub mod keys;
pub mod nonce;
pub mod order;
pub mod stream;
pub mod verify;

pub use book::{Applied, BookError, LocalBook};
pub use client::{Client, ClientConfig, Leg, Placement, markets_of};
pub use error::{Result, SdkError};
pub use keys::{KeyError, TraderKey};
pub use nonce::{MAX_IN_FLIGHT, NonceLease, NonceManager};
pub use order::{OrderParams, round_price, round_size};
pub use stream::{ResyncReason, StreamConfig, StreamEvent, Subscription};

pub use dex_api::wire;
