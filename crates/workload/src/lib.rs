//! Build the seeded workloads that benchmarks and tests feed the exchange.
//!
//! Several benchmarks (`benches/pipeline.rs`, `dex-verify`'s `sigrules`, `dex-api`'s
//! `index`, `dex-state`'s execution workload) generate orders the same way: a seeded
//! [`SplitMix64`], trader keys derived from an index, a genesis with two markets that
//! funds every trader, and single-leg order batches signed by their trader. This crate
//! holds those pieces once, so the workloads stay comparable and a change to the
//! transaction format is made in one place. Each benchmark keeps its own mix of orders:
//! the mix is what it measures.
//!
//! Everything here is deterministic: the same seed and the same calls give the same
//! transactions, byte for byte, on every machine (no clock, no OS randomness), which is
//! what lets a benchmark print a digest of its output.
//!
//! Used only as a dev-dependency; not published. `dex-engine`'s scenario generator and
//! `dex-load` keep their own SplitMix64, whose range draws (multiply-shift) are part of
//! those crates' behaviour; this one draws ranges by remainder, as the benchmarks always
//! did, so their streams did not change when they moved here.

#![forbid(unsafe_code)]

mod accounts;
mod orders;
mod rng;

pub use accounts::{
    BTC, BTC_USDC, ETH, ETH_USDC, FEE_ACCOUNT, USDC, account_ids, trader_key, trader_keys,
    two_market_genesis,
};
pub use orders::{cancel_client_order, limit, place, sign, transaction, transfer, unsigned};
pub use rng::SplitMix64;
