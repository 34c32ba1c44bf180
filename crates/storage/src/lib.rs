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
//!   certificates, snapshots (and, with the state column kept, the state diff) as sorted
//!   key-values, and, where a state root must be recomputed, the ledger's root function.
//!
//! # Column families and keys
//!
//! | column | key | value (payload inside the frame) |
//! | --- | --- | --- |
//! | `blocks` | height, u64 big-endian | encoded block |
//! | `block_index` | height | hash, parent hash, state root, body length + CRC-32, certificate length |
//! | `certificates` | height | encoded commit certificate |
//! | `state` | the ledger's own key | the ledger's value (only with [`ChainStoreConfig::keep_state_column`]) |
//! | `snapshots` | `0 ‖ height` manifest, `1 ‖ height ‖ chunk u32 BE` chunks | manifest / ≤ ~1 MiB of key-values |
//! | `consensus_wal` | height ‖ sequence u32 BE | an encoded proposal or vote |
//! | `metadata` | `head`, `commit_intent`, `base`, `format`, `blocks_retained_from`, `state_column` | small fixed records |
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
//! [`ChainStore::commit_block`] writes, in one synced batch: the commit intent (height
//! `h`), the block index entry, block, certificate, the consensus-log pruning, and last
//! the head (height `h`). RocksDB applies a batch atomically (it is one checksummed record
//! of its log), so the intent and the head always agree. A store that lost atomicity below
//! RocksDB would leave an intent above the head, which start-up reports as
//! [`Inconsistency::InterruptedCommit`] rather than running on a half-applied state.
//!
//! # Durability of the state: snapshots plus blocks
//!
//! A commit writes no state: the state at height `h` is the newest snapshot at or below
//! `h` plus the blocks after it, which the ledger replays. Snapshots are written every
//! [`ChainStoreConfig::snapshot_interval_blocks`] by the caller with
//! [`ChainStore::write_snapshot`] (from the ledger's in-memory state), which may run on
//! another thread while blocks commit; [`ChainStoreConfig::snapshots_retained`] bounds
//! how many are kept and [`ChainStore::prune_blocks_below`] refuses to drop a block the
//! replay needs. This keeps the per-block write at a few records whatever the block
//! changed (a 10,000-transaction block changes ~20,000 keys, and inserting them made the
//! commit five times slower).
//!
//! With [`ChainStoreConfig::keep_state_column`] the commit also writes the block's changed
//! key-values into the `state` column, so the state at the head can be read directly. A
//! `state_column` metadata record, written and removed atomically with the column's
//! contents, says the column is current; without it the column means nothing and open
//! clears it (switching the column off, or an interrupted
//! [`ChainStore::rebuild_state_column`] after switching it on).
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
//! 3. The node rebuilds the state: [`ChainStore::latest_snapshot`] with
//!    [`ChainStore::snapshot_entries`] (checked against the manifest's digest and the root
//!    committed at its height), then replays [`ChainStore::blocks_range`] after it, each
//!    block's result checked against the roots it was committed with, the last against the
//!    head (dex-chain's `recovery` does this with the real ledger; [`synthetic::recover_state`]
//!    with the synthetic one). With the state column kept, [`ChainStore::load_state_verified`]
//!    reads the state at the head directly and checks it against the head's root.
//! 4. Consensus restores its own votes from [`ChainStore::wal_entries`] for the next height
//!    before it signs anything.
//!
//! Any failure is a [`StorageError`] saying what is wrong and what the operator can do
//! (restore from a snapshot export, or move the data directory aside and resync).
//!
//! # Features
//!
//! None. RocksDB is built without compression libraries to keep its C++ build short. Its
//! log checksum (CRC32C) uses the hardware instruction only when its C++ is compiled with
//! SSE 4.2 (`CXXFLAGS="-msse4.2 -mpclmul"` on x86-64), which takes ~1.6 ms off the write
//! of a 10,000-transaction block (see the README).
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
