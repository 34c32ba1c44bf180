//! Load the exchange end to end and report what it sustains.
//!
//! `dex-load` lays out a local cluster (or attaches to a running one), signs a seeded
//! stream of realistic orders and cancels from thousands of funded traders **before** it
//! measures anything, submits them through every validator's API at a chosen rate or as
//! fast as the cluster admits them, and reports:
//! - offered, admitted and committed transactions per second;
//! - submit-to-commit latency p50/p99/p99.9 (commit time: the block's arrival on the
//!   WebSocket block stream, matched by transaction hash);
//! - CPU seconds per 1,000 committed orders per validator (from `/proc`), with the split
//!   by thread group, the load generator's own CPU and the machine's busy share;
//! - the mempool backlog over time (from `/metrics`), block fill and block interval;
//! - refusals by code, ledger rejections by code;
//! - and a check that every submitted transaction ended in a known state: committed with
//!   an outcome, or refused with a code — none lost, none in two blocks.
//!
//! # Modules
//! - [`keys`]: trader and validator keys derived from the seed (no key files for traders);
//! - [`stream`]: the seeded order stream and its parallel signing;
//! - [`cluster`]: laying out a chain, running `dexd` processes, reading a given spec;
//! - [`runner`]: sender, block watcher, metrics sampler, drain and resolution;
//! - [`batch`]: with `--batch N`, which transactions share a request and what its answer
//!   means for each;
//! - [`accounting`]: the fate of every transaction and the end-of-run check;
//! - [`stats`], [`probe`], [`report`]: quantiles, metrics and `/proc`, the report.
//!
//! # Why it is built this way
//! Signing is done before the clock starts so the generator measures the cluster, not
//! itself; the sender is open-loop at a fixed rate (latency counts from the scheduled
//! send time, so a slow sender cannot hide queueing) and probes capacity at the maximum
//! rate by backing off briefly on "full" refusals. The tracker reads no clock, so the
//! accounting is unit-tested with exact times.
//!
//! The crate has no feature flags.

pub mod accounting;
pub mod batch;
pub mod cluster;
pub mod keys;
pub mod probe;
pub mod report;
pub mod rng;
pub mod runner;
pub mod stats;
pub mod stream;

pub use report::Report;
pub use runner::{ChainSetup, RateMode, RunOptions, Target, run};

/// What can stop a load run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A flag, file or setting given by the user is wrong (the message says which).
    #[error("{0}")]
    Usage(String),
    /// The cluster could not be laid out, started or reached, or answered nonsense.
    #[error("cluster: {0}")]
    Cluster(String),
}
