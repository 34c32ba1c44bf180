//! Typed errors of the chain layer: why a block is invalid, why the replica stopped, and why
//! recovery refused a store.

use dex_consensus::SetupError;
use dex_state::{BlockError, GenesisError, SnapshotError};
use dex_storage::StorageError;
use dex_types::{AccountId, ChainId, Hash, TimestampMs, ValidationError};

/// Results of the chain layer.
pub type Result<T, E = ChainError> = std::result::Result<T, E>;

/// Why a proposed block is not a valid child of the committed head. The replica answers
/// the consensus core with "invalid", so it prevotes nil for the block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBlock {
    /// The header names another chain.
    #[error("block is for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain.
        expected: ChainId,
        /// The header's chain.
        got: ChainId,
    },
    /// The header's height does not follow the committed head.
    #[error("block has height {got}, the next height is {expected}")]
    WrongHeight {
        /// The next height.
        expected: u64,
        /// The header's height.
        got: u64,
    },
    /// The header's parent is not the committed head.
    #[error("block names parent {got}, but the committed head is {expected}")]
    WrongParent {
        /// The committed head's hash.
        expected: Hash,
        /// The header's parent hash.
        got: Hash,
    },
    /// Block times must increase strictly.
    #[error("block time {time} is not after the parent's time {parent}")]
    TimeNotAfterParent {
        /// The header's time.
        time: TimestampMs,
        /// The parent's time.
        parent: TimestampMs,
    },
    /// The block's time is further ahead of this validator's clock than allowed.
    #[error(
        "block time {time} is more than {ahead_max_ms} ms ahead of this validator's clock ({now})"
    )]
    TimeTooFarAhead {
        /// The header's time.
        time: TimestampMs,
        /// This validator's clock.
        now: TimestampMs,
        /// The allowed lead.
        ahead_max_ms: u64,
    },
    /// The header's proposer is not a validator.
    #[error("block proposer {proposer} is not a validator")]
    UnknownProposer {
        /// The header's proposer.
        proposer: AccountId,
    },
    /// More transactions than this chain's block limit.
    #[error("block has {count} transactions, at most {max} are allowed")]
    TooManyTxs {
        /// Transactions in the block.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A structural rule of the block or one of its transactions is broken.
    #[error("block is malformed: {0}")]
    Structure(#[from] ValidationError),
    /// The transactions are not the ones the header commits to.
    #[error("block's transactions hash to {computed}, but the header commits to {header}")]
    TxsRootMismatch {
        /// The header's root.
        header: Hash,
        /// The root of the listed transactions.
        computed: Hash,
    },
    /// A transaction's signature does not verify.
    #[error("transaction {tx} (position {index}) has an invalid signature")]
    BadSignature {
        /// Position in the block.
        index: usize,
        /// The transaction id.
        tx: Hash,
    },
    /// The ledger refused the block as a whole.
    #[error("block cannot be executed: {0}")]
    Execution(#[from] BlockError),
    /// Executing the block gives another state root than the header claims.
    #[error("block claims state root {header}, execution gives {computed}")]
    StateRootMismatch {
        /// The header's root.
        header: Hash,
        /// The executed root.
        computed: Hash,
    },
    /// Executing the block gives another fills root than the header claims.
    #[error("block claims fills root {header}, execution gives {computed}")]
    FillsRootMismatch {
        /// The header's root.
        header: Hash,
        /// The executed root.
        computed: Hash,
    },
}

/// Why a [`Replica`](crate::Replica) stopped. After any of these the replica refuses
/// further input ([`ChainError::Halted`]); the host restarts it from its store.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A write or read of the store failed. Nothing was sent after the failed write.
    #[error("storage failed, the replica stopped: {0}; restart the node to recover from its store")]
    Storage(#[from] StorageError),
    /// An earlier error stopped this replica.
    #[error(
        "the replica stopped after an earlier error; restart the node to recover from its store"
    )]
    Halted,
    /// More than two thirds of the voting power certified a block that this node's own
    /// execution rejects: its state has diverged from the network's (or more than a third
    /// of the validators are faulty).
    #[error(
        "block {height} is certified by the validators but invalid here ({reason}); this node's state diverged: stop it and resync from a snapshot"
    )]
    CertifiedBlockInvalid {
        /// The certified height.
        height: u64,
        /// What this node's checks found.
        reason: InvalidBlock,
    },
    /// A stored block or certificate that a peer asked for does not decode.
    #[error("stored {what} at height {height} does not decode; the store is damaged: {detail}")]
    StoredRecordUndecodable {
        /// Block or certificate.
        what: &'static str,
        /// The height.
        height: u64,
        /// The decoder's message.
        detail: String,
    },
}

/// Why a validator could not start from its store. Every variant names what is wrong and
/// what the operator can do; none is repaired silently.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The store failed or found itself damaged.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The genesis given to the node is not valid.
    #[error("the genesis is invalid: {0}")]
    Genesis(#[from] GenesisError),
    /// The store holds a chain that started from another genesis.
    #[error(
        "the store's chain starts from state root {stored}, but this genesis gives {expected}; point the node at the right data directory or genesis file"
    )]
    GenesisMismatch {
        /// The stored base root.
        stored: Hash,
        /// The genesis root.
        expected: Hash,
    },
    /// The genesis and the consensus configuration name different chains.
    #[error(
        "the genesis is for chain {genesis} but consensus is configured for chain {configured}"
    )]
    ChainIdMismatch {
        /// The genesis chain id.
        genesis: ChainId,
        /// The configured chain id.
        configured: ChainId,
    },
    /// The store has a committed head but no snapshot to rebuild the state from.
    #[error(
        "the store has blocks up to height {head} but no snapshot to start from; import a snapshot or resync"
    )]
    NoSnapshot {
        /// The committed head.
        head: u64,
    },
    /// The newest snapshot does not restore to a valid state.
    #[error("snapshot at height {height} does not restore: {source}; import a snapshot or resync")]
    Snapshot {
        /// The snapshot's height.
        height: u64,
        /// What the ledger found.
        source: SnapshotError,
    },
    /// The restored snapshot's state root is not the root committed at its height.
    #[error(
        "snapshot at height {height} restores to root {restored}, but {committed} was committed; import a snapshot or resync"
    )]
    SnapshotRootMismatch {
        /// The snapshot's height.
        height: u64,
        /// The committed root.
        committed: Hash,
        /// The root of the restored state.
        restored: Hash,
    },
    /// A block after the snapshot is missing.
    #[error(
        "block {height} is missing from the store (needed to replay after the snapshot); resync"
    )]
    BlockMissing {
        /// The missing height.
        height: u64,
    },
    /// A stored block or certificate does not decode.
    #[error("stored {what} at height {height} does not decode: {detail}; resync")]
    Undecodable {
        /// Block or certificate.
        what: &'static str,
        /// The height.
        height: u64,
        /// The decoder's message.
        detail: String,
    },
    /// A stored certificate does not prove its block.
    #[error("stored certificate at height {height} does not prove its block: {detail}; resync")]
    CertificateInvalid {
        /// The height.
        height: u64,
        /// What failed.
        detail: String,
    },
    /// A stored block does not replay to the roots it was committed with.
    #[error("stored block {height} does not replay: {reason}; the store diverged, resync")]
    ReplayInvalid {
        /// The height.
        height: u64,
        /// What replay found.
        reason: InvalidBlock,
    },
    /// Replay ended at another state root than the committed head's.
    #[error(
        "replay to height {height} gives state root {computed}, but {committed} was committed; resync"
    )]
    HeadRootMismatch {
        /// The head height.
        height: u64,
        /// The committed root.
        committed: Hash,
        /// The replayed root.
        computed: Hash,
    },
    /// The state column disagrees with the state rebuilt from snapshot and blocks.
    #[error(
        "the stored state at height {height} differs from the replayed state at key {key_hex}; restore from a snapshot or resync"
    )]
    StateColumnDiverged {
        /// The head height.
        height: u64,
        /// The first differing key, hex.
        key_hex: String,
    },
    /// A write-ahead log entry does not decode.
    #[error(
        "consensus log entry {index} at height {height} does not decode: {detail}; the log is damaged, move the data directory aside and resync (never delete the log of a running validator: it prevents double signing)"
    )]
    WalUndecodable {
        /// The entry's height.
        height: u64,
        /// Its position.
        index: usize,
        /// The decoder's message.
        detail: String,
    },
    /// The log holds entries above the height after the committed head: the store lost a
    /// commit the log depends on.
    #[error(
        "consensus log has entries for height {height}, above the next height {next}; the store lost a commit, resync before signing again"
    )]
    WalAhead {
        /// The entry's height.
        height: u64,
        /// The height after the committed head.
        next: u64,
    },
    /// The consensus core refused its configuration or log.
    #[error("consensus cannot resume: {0}")]
    Consensus(#[from] SetupError),
    /// Carrying out the resumed core's first effects failed.
    #[error("start-up failed: {0}")]
    Startup(#[from] ChainError),
}
