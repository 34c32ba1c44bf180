//! Keep everything a validator must not lose: committed blocks, certificates, state,
//! snapshots and the consensus write-ahead log, with atomic synced commits and a start-up
//! check that refuses a damaged database.
//!
//! # Layers
//!
//! - [`Store`]: a narrow key-value trait with **one atomic `write(batch)`**, point reads and
//!   ordered scans per [`Column`]. Implemented by [`RocksStore`] (one RocksDB column family
//!   per column), [`MemStore`] (ordered maps; models which writes survive a power loss, for
//!   tests and the simulator) and [`FaultyStore`] (wraps either, injects failed writes,
//!   failed syncs, torn writes and bit flips). One conformance suite runs on all three.
//! - [`ChainStore`]: the chain on top of any store. It knows heights, hashes and encoded
//!   bytes, never the block or ledger types: callers hand in borsh-encoded blocks and
//!   certificates, the state diff as sorted key-values, and, where a state root must be
//!   recomputed, the ledger's root function.
//!
//! # Column families and keys
//!
//! | column | key | value (payload inside the frame) |
//! | --- | --- | --- |
//! | `blocks` | height, u64 big-endian | encoded block |
//! | `block_index` | height | hash, parent hash, state root, body length + CRC-32, certificate length |
//! | `certificates` | height | encoded commit certificate |
//! | `state` | the ledger's own key | the ledger's value |
//! | `snapshots` | `0 ‖ height` manifest, `1 ‖ height ‖ chunk u32 BE` chunks | manifest / ≤ ~1 MiB of key-values |
//! | `consensus_wal` | height ‖ sequence u32 BE | an encoded proposal or vote |
//! | `metadata` | `head`, `commit_intent`, `base`, `format`, `blocks_retained_from` | small fixed records |
//!
//! Heights are big-endian so byte order is height order: a range scan walks heights in
//! order, and the newest entry is one reverse seek away.
//!
//! # Framing
//!
//! Every value [`ChainStore`] writes is framed: `version u8 | crc32 u32 | payload`, the
//! CRC covering the column, the key, the version and the payload (see [`frame`]). Every read
//! verifies it, so a flipped bit, a truncated value or a value under the wrong key is a
//! [`StorageError::Corrupted`] naming the column and key, never a wrong answer.
//!
//! # Commits and torn writes
//!
//! [`ChainStore::commit_block`] writes, in one batch: the commit intent (height `h`), the
//! block index entry, block, certificate, state changes, the consensus-log pruning, and
//! last the head (height `h`). RocksDB applies a batch atomically (it is one checksummed
//! record of its log), so the intent and the head always agree. A store that lost atomicity
//! below RocksDB would leave an intent above the head, which start-up reports as
//! [`Inconsistency::InterruptedCommit`] rather than running on a half-applied state.
//!
//! # Recovery procedure
//!
//! 1. [`RocksStore::open`]: RocksDB replays its log up to the last complete record (point
//!    in time recovery): every synced write is there, a torn tail is dropped whole.
//! 2. [`ChainStore::open`] checks the format marker, then [`ChainStore::verify_consistency`]
//!    ([`VerifyDepth::Quick`] by default): head, base and intent agree; the block index is
//!    contiguous from the retained floor to the head with every parent link intact and the
//!    head's hash and root at its top; nothing lies above the head; the newest blocks and
//!    certificates match their index entries; every snapshot's root equals the root
//!    committed at its height and its chunks are all there. Snapshots whose write was
//!    interrupted before their manifest are deleted and listed in [`RecoveryReport`].
//! 3. The node loads the state: [`ChainStore::load_state_verified`] reads the state column
//!    (the state at the head, updated atomically by every commit) and checks it against
//!    the head's state root with the ledger's root function. Alternatively (or if the state
//!    column is damaged) it loads [`ChainStore::latest_snapshot`] with
//!    [`ChainStore::snapshot_entries`] and replays [`ChainStore::blocks_range`] after it.
//! 4. Consensus restores its own votes from [`ChainStore::wal_entries`] for the next height
//!    before it signs anything.
//!
//! Any failure is a [`StorageError`] saying what is wrong and what the operator can do
//! (restore from a snapshot export, or move the data directory aside and resync).
//!
//! # Features
//!
//! None. RocksDB is built without compression libraries to keep its C++ build short.
#![forbid(unsafe_code)]

mod chain;
mod column;
mod error;
pub mod faulty;
pub mod frame;
pub mod kv_root;
mod mem;
pub mod records;
mod rocks;
pub mod snapshot_file;
mod store;
pub mod synthetic;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod fault_tests;

pub use chain::{
    BlockCommit, ChainStore, ChainStoreConfig, CommittedBlock, RecoveryReport, StateChange,
    StateEntry, VerifyDepth, VerifyReport,
};
pub use column::Column;
pub use error::{CorruptionKind, Inconsistency, Remedy, Result, SnapshotFileProblem, StorageError};
pub use faulty::{FaultRates, FaultStats, FaultyStore, InjectedFault, TornWrite};
pub use mem::MemStore;
pub use records::{BlockIndexEntry, ChainBase, CommittedHead, SnapshotInfo};
pub use rocks::{RocksConfig, RocksStore};
pub use snapshot_file::{
    SnapshotFileHeader, SnapshotFileLimits, SnapshotFileReader, SnapshotFileWriter,
};
pub use store::{
    CrashableStore, Durability, KeyRange, ScanOrder, ScanVisitor, Store, WriteBatch, WriteOp,
};
