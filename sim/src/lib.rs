//! Run many validators in one process, deterministically, under network faults, crashes
//! and Byzantine behaviour, and check safety and liveness after every step.
//!
//! Every simulated validator is the production code: a [`dex_chain::Replica`] (the real
//! `dex-consensus` core, the real `dex-state` ledger, the real `dex-storage` chain store)
//! on a [`disk::SimDisk`], an in-memory store that keeps only what was durably written.
//! The simulator is only the world around them: clock, network, faults, traders, checks.
//!
//! # The event loop
//! One queue holds every future event ordered by `(simulated time, sequence number)`:
//! message deliveries, replica timers, trader actions, crashes, restarts, partitions and
//! phase changes. [`Simulation::run`] pops the earliest event, sets the virtual clock to
//! its time, and dispatches it: a delivery or timer becomes one [`dex_chain::Event`] for
//! one replica, whose [`dex_chain::Action`]s are carried out at once (sends go through the
//! network model and come back as deliveries; timers are queued; commits, signed messages
//! and evidence go to the [`checker::Checker`]). Nothing else advances time, so a run
//! takes as long as its computation, not its simulated duration.
//!
//! There is **one random source** ([`rng::SimRng`], seeded by the scenario): keys, link
//! latencies, jitter, losses, fault times, Byzantine choices and trader orders are all
//! drawn from it in event order. No wall clock, no threads, no hash-ordered iteration
//! (`clippy.toml` forbids them). So a seed fixes the run bit for bit:
//! [`report::Report::final_hash`], a hash over every node's history (commits with their
//! times, crashes, restarts, counters), is equal for equal seeds.
//!
//! # The fault model
//! A run has a fault phase, then a calm phase in which every fault has healed
//! ([`scenario`]). Faults, by [`FaultMix`]:
//! - **network** ([`network`]): per-link latency (5–30 ms) with jitter (always);
//!   loss, duplication and reordering (lossy mixes); partitions that form and heal; one
//!   slow node whose links are 5–12 times slower.
//! - **nodes**: crashes between steps, or in the middle of a step at a crash point (before
//!   or after the k-th store write lands, [`disk::CrashPoint`]); the disk then loses every
//!   unsynced write and the node restarts from it: snapshot + replay of later blocks +
//!   consensus log. Node clocks are skewed by up to ±50 ms.
//! - **Byzantine** validators, up to f = (n−1)/3 ([`byzantine`]): equivocating
//!   proposers, double voting, proposing and voting for invalid blocks, going silent,
//!   replaying old messages, twins (two nodes with one key), and lock breakers (fresh
//!   proposals forged ahead for their rounds, nil precommits) whose mix adds an
//!   adversarial scheduler that hides one validator's decisions and cuts off the first
//!   validator to decide. Forged messages carry valid signatures.
//!
//! The checks ([`checker`]): agreement, valid certificates, equal state roots, funds
//! conserved and ledger custody invariants, no honest double signing across lifetimes
//! (every sent message and every logged entry found at a restart), no evidence against an
//! honest validator, no committed block lost by a restart, and liveness after the calm
//! phase begins.
//!
//! # Reproducing a seed
//! A failing run prints its seed and the command that reruns exactly it, for example
//! `cargo run -p dex-sim -- --seeds 1 --first-seed 17 --validators 4 --mix partition`.
//! Add `--verbose` to print the run's report with every violation found.
//!
//! # Self-test
//! `--broken-lock` (and the test `broken_lock_is_caught`) runs every honest validator's
//! consensus core with its lock ignored (`dex-consensus` feature `mutation-hooks`); the
//! checks must report agreement violations, which shows they can fail.
#![forbid(unsafe_code)]

pub mod byzantine;
pub mod checker;
pub mod disk;
pub mod fixture;
pub mod network;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod traders;

pub use checker::Violation;
pub use report::{Report, Sweep};
pub use scenario::{FaultMix, Scenario};
pub use sim::{Simulation, run};
