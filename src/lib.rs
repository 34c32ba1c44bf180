//! Re-export the exchange's crates under one name for the cross-crate tests and benchmarks.
//!
//! The real code lives in `crates/` and `sim/`; this package exists so that `tests/` and
//! `benches/` at the top of the repository can use all of them together.
#![forbid(unsafe_code)]

pub use dex_consensus as consensus;
pub use dex_engine as engine;
pub use dex_sim as sim;
pub use dex_state as state;
pub use dex_storage as storage;
pub use dex_types as types;
