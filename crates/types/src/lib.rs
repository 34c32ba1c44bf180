//! Define the exchange's vocabulary: ids, units, assets, markets, transactions, blocks,
//! hashing, Merkle proofs and signing.
//!
//! Every other crate speaks in these types, so they are few, small and fixed:
//! - [`units`], [`ids`]: integer ticks, lots and milliseconds; account, asset, market and
//!   order ids. Inside the exchange a price is a whole number of ticks and a size a whole
//!   number of lots.
//! - [`asset`], [`market`]: [`Amount`] in integer base units; asset and market specs; the
//!   validated [`Market`] with the integer factors the ledger uses, exact decimal ↔ ticks/lots
//!   conversion (never a silent rounding; explicit [`Rounding`] helpers for clients), notional,
//!   fees rounded in the exchange's favour, and the funds an order locks.
//! - [`tx`]: every [`Action`], the [`Transaction`] envelope and [`SignedTransaction`].
//! - [`block`]: [`BlockHeader`], [`Block`] and the canonical in-block order key.
//! - [`merkle`]: roots and inclusion proofs for transactions and fills.
//! - [`hash`], [`sign`]: domain-separated BLAKE3; ed25519 keys built from caller-supplied
//!   seeds, and the one signature rule: ZIP-215 with small-order keys refused.
//! - [`codec`], [`error`]: bounded decoding and its typed errors.
//!
//! ## Why it is built this way
//! Everything that is signed, hashed or stored is encoded with borsh, canonically (one value,
//! one byte string), and the bytes of each wire type are pinned by golden tests so that a
//! change of format is a deliberate act. Every decoder of outside bytes checks a byte cap
//! before decoding and list caps before allocating ([`MAX_TX_BYTES`], [`MAX_BATCH_LEGS`],
//! [`MAX_BLOCK_BYTES`], [`MAX_BLOCK_TXS`], ...). A transaction id never covers the
//! signature, so a malleated signature cannot make a new id.
//!
//! The crate is pure: no IO, no clock, no randomness, no floats. It has no feature flags.
#![forbid(unsafe_code)]

pub mod asset;
pub mod block;
pub mod codec;
mod decimal;
pub mod error;
pub mod hash;
pub mod ids;
pub mod market;
pub mod merkle;
pub mod sign;
pub mod tx;
pub mod units;

pub use asset::{
    Amount, AssetSpec, AssetSpecError, ConversionError, MAX_ASSET_DECIMALS, MAX_ASSET_SYMBOL_BYTES,
    Quantity,
};
pub use block::{Block, BlockHeader, MAX_BLOCK_BYTES, MAX_BLOCK_TXS, canonical_order_key};
pub use decimal::Rounding;
pub use error::{AmountOverflow, DecodeError, ValidationError};
pub use hash::{Domain, Hash, HexError};
pub use ids::{AccountId, AccountIndex, AssetId, ChainId, ClientOrderId, MarketId, OrderId};
pub use market::{
    BPS_PER_UNIT, Fee, MAX_FEE_BPS, Market, MarketSpec, MarketSpecError, fee, fee_charge,
    fee_rebate,
};
pub use merkle::{EMPTY_ROOT, MAX_PROOF_DEPTH, MerkleProof};
pub use sign::{Keypair, SignatureError, SignerKey, signing_message, verify_signature};
pub use tx::{
    Action, AgentPolicy, ApproveAgent, BatchLeg, CancelTarget, ExecutionClass, MAX_AGENT_MARKETS,
    MAX_BATCH_LEGS, MAX_TX_BYTES, MAX_WITHDRAW_DESTINATION_BYTES, MarketScope, ModifyOrder,
    OrderBatch, OrderRequest, RevokeAgent, SIGNATURE_BYTES, ScheduleCancelAll, SignedTransaction,
    Transaction, Transfer, Withdraw,
};
pub use units::{
    OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce, TimestampMs,
};
// The key types callers need alongside `Keypair`, so they need not depend on the crate.
pub use ed25519_dalek::VerifyingKey;
