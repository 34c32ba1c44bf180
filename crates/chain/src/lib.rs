//! Run a validator's chain logic without IO: mempool, block building and validation, atomic
//! commits, recovery from the store, and the [`Replica`] that maps consensus effects to
//! host actions.
//!
//! The consensus core (`dex-consensus`) decides opaque values; the ledger (`dex-state`)
//! executes blocks; the store (`dex-storage`) keeps what must survive a crash. This crate
//! is the validator logic between them, shared by the networked node and the
//! deterministic simulator so that the simulator tests the code that runs in production:
//!
//! - [`mempool`]: pending transactions, admitted by signature (checked once, cached) and
//!   the ledger's admission check, selected first come, first served.
//! - [`execute`]: building a block as proposer and validating a proposal — header matches
//!   the parent, time strictly after the parent's and not too far ahead of the
//!   validator's clock, a validator as proposer, signatures, and the validator's own
//!   execution giving the header's state and fills roots. The result
//!   ([`ExecutedBlock`]) is kept, so a proposal is executed once for voting and commit.
//! - [`commit`]: block, certificate, changed state key-values and head in one atomic
//!   synced write; snapshots when due.
//! - [`recovery`]: genesis install, or snapshot + replay of later blocks (each checked)
//!   and the consensus log of the next height, with typed errors naming the remedy.
//! - [`replica`]: [`Replica`], driven by [`Event`]s at a clock the host passes in,
//!   answering with [`Action`]s (send, gossip, set a timer, publish a commit). Own votes
//!   and proposals are appended to the store's log, synced, before the action that sends
//!   them is produced.
//!
//! # Why no IO
//! The crate never reads a clock, spawns a task or opens a socket: time is an argument,
//! the store is any [`dex_storage::Store`] (RocksDB in the node, the crash-modelling
//! in-memory store in the simulator), and everything else leaves as an [`Action`] value.
//! The node wraps a replica in a task that moves messages and timers; the simulator drives
//! many replicas from one seeded event queue.
//!
//! # Features
//! - `mutation-hooks` (off by default): forwards `dex-consensus`'s switch that makes the
//!   core ignore its lock. Only for the simulator's self-test, which shows its checks catch
//!   the safety violations such a broken core causes; never enable it in a node.
#![forbid(unsafe_code)]

pub mod commit;
pub mod config;
pub mod error;
pub mod execute;
mod lookup;
pub mod mempool;
pub mod recovery;
pub mod replica;
pub mod signatures;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

pub use config::ReplicaConfig;
pub use error::{ChainError, InvalidBlock, RecoveryError, Result};
pub use execute::{BlockRules, ExecutedBlock, Parent, build_block, proposal_time, validate_block};
pub use mempool::{Mempool, MempoolError, MempoolLimits};
pub use recovery::{Recovered, WAL_ENTRY_BYTES_MAX, recover};
pub use replica::{Action, Committed, Event, RecoverySummary, Replica, ReplicaStats, Timer};
pub use signatures::SignatureCache;
