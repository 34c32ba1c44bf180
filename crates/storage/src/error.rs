//! Typed storage errors. Each names what is wrong and, where the operator must act, what
//! the operator can do.

use crate::column::Column;
use dex_types::Hash;
use std::fmt;

/// The result of a storage operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What an operator can do about a damaged or inconsistent database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// The live data is damaged but a snapshot file or peers can rebuild it.
    RestoreFromSnapshotOrResync,
    /// The data directory cannot be trusted at all.
    DeleteDataDirAndResync,
    /// Only a derived copy (an old snapshot) is damaged; the live data is fine.
    DeleteDamagedSnapshot,
    /// The operating system or disk failed; the data may be fine.
    CheckDiskAndRestart,
}

impl fmt::Display for Remedy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Remedy::RestoreFromSnapshotOrResync => {
                "stop the node, then restore from a snapshot export (import it into an empty \
                 data directory) or delete the data directory and resync from peers"
            }
            Remedy::DeleteDataDirAndResync => {
                "stop the node, move the data directory aside for inspection, and resync from \
                 peers or import a snapshot export into a fresh data directory"
            }
            Remedy::DeleteDamagedSnapshot => {
                "the committed chain and state are intact: delete the damaged snapshot \
                 (ChainStore::delete_snapshot) and take a new one"
            }
            Remedy::CheckDiskAndRestart => {
                "check free disk space, permissions and the kernel log for IO errors, then \
                 restart the node"
            }
        })
    }
}

/// Why a stored value failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorruptionKind {
    /// Shorter than the frame header.
    Truncated {
        /// Bytes found.
        len: usize,
    },
    /// The checksum does not match the bytes.
    ChecksumMismatch {
        /// Checksum stored in the frame.
        stored: u32,
        /// Checksum of the bytes read.
        computed: u32,
    },
    /// A format version this build does not know.
    UnknownVersion {
        /// Version byte found.
        found: u8,
    },
    /// The payload is not the record the key says it is.
    Malformed {
        /// What was expected and what was found.
        detail: String,
    },
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptionKind::Truncated { len } => {
                write!(f, "value of {len} bytes is shorter than its frame header")
            }
            CorruptionKind::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            CorruptionKind::UnknownVersion { found } => write!(
                f,
                "unknown record format version {found} (written by a newer build?)"
            ),
            CorruptionKind::Malformed { detail } => write!(f, "malformed record: {detail}"),
        }
    }
}

/// A way in which the stored chain, state or snapshots disagree with each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inconsistency {
    /// The metadata names a committed head but the block index has no entry at its height.
    HeadBlockMissing {
        /// Height of the committed head.
        height: u64,
    },
    /// The committed head's state root differs from the indexed block's at that height.
    HeadStateRootMismatch {
        /// Height of the committed head.
        height: u64,
        /// Root in the head record.
        head: Hash,
        /// Root in the block index.
        indexed: Hash,
    },
    /// The committed head's block hash differs from the indexed block at that height.
    HeadHashMismatch {
        /// Height of the committed head.
        height: u64,
        /// Hash in the head record.
        head: Hash,
        /// Hash in the block index.
        indexed: Hash,
    },
    /// A height between the retained floor and the head has no block, index entry or
    /// certificate.
    MissingHeight {
        /// The missing height.
        height: u64,
        /// Which column lacks it.
        column: Column,
    },
    /// A block's parent hash is not the hash of the block below it.
    BrokenLink {
        /// Height whose parent link is wrong.
        height: u64,
        /// Parent hash recorded for `height`.
        parent: Hash,
        /// Hash of the block at `height - 1`.
        below: Hash,
    },
    /// A block body does not match the checksum or length its index entry recorded.
    BlockBodyMismatch {
        /// Height of the block.
        height: u64,
    },
    /// Data exists above the committed head: a commit that never finished.
    DataAboveHead {
        /// Column holding it.
        column: Column,
        /// Its height.
        height: u64,
        /// The committed head (`None` if nothing is committed).
        head: Option<u64>,
    },
    /// A commit (or a base-state install) started but did not finish: the database holds
    /// part of it. RocksDB never does this on its own (a batch is atomic); it means the
    /// files were damaged below RocksDB or written by a store without atomic batches.
    InterruptedCommit {
        /// Height the interrupted commit was for.
        intent_height: u64,
        /// The committed head (`None` if nothing is committed).
        head: Option<u64>,
    },
    /// A completed snapshot's manifest and chunks disagree.
    SnapshotDamaged {
        /// Snapshot height.
        height: u64,
        /// What disagrees.
        detail: String,
    },
    /// A snapshot's state root differs from the state root committed at its height.
    SnapshotRootMismatch {
        /// Snapshot height.
        height: u64,
        /// Root in the snapshot manifest.
        snapshot: Hash,
        /// Root committed in the block index at that height.
        committed: Hash,
    },
    /// The state recomputed from the stored key-values does not have the committed root.
    StateRootMismatch {
        /// Height of the committed head.
        height: u64,
        /// Root in the head record.
        committed: Hash,
        /// Root of the stored key-values.
        computed: Hash,
    },
    /// The store holds data but no format marker: it is not a dex-storage database, or
    /// its metadata was lost.
    MissingFormatMarker,
    /// The store has a committed head but no chain base record, or the base is above it.
    BadBase {
        /// What is wrong.
        detail: String,
    },
}

impl Inconsistency {
    /// What the operator can do about it.
    pub fn remedy(&self) -> Remedy {
        match self {
            Inconsistency::SnapshotDamaged { .. } | Inconsistency::SnapshotRootMismatch { .. } => {
                Remedy::DeleteDamagedSnapshot
            }
            Inconsistency::StateRootMismatch { .. } | Inconsistency::InterruptedCommit { .. } => {
                Remedy::RestoreFromSnapshotOrResync
            }
            _ => Remedy::DeleteDataDirAndResync,
        }
    }
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inconsistency::HeadBlockMissing { height } => write!(
                f,
                "the committed head is height {height} but no block is stored at that height"
            ),
            Inconsistency::HeadHashMismatch {
                height,
                head,
                indexed,
            } => write!(
                f,
                "the committed head at height {height} has block hash {head} but the stored \
                 block has hash {indexed}"
            ),
            Inconsistency::HeadStateRootMismatch {
                height,
                head,
                indexed,
            } => write!(
                f,
                "the committed head at height {height} has state root {head} but the stored \
                 block index records {indexed}"
            ),
            Inconsistency::MissingHeight { height, column } => write!(
                f,
                "height {height} is missing from column {column} (gap in the committed chain)"
            ),
            Inconsistency::BrokenLink {
                height,
                parent,
                below,
            } => write!(
                f,
                "block {height} names parent {parent} but block {} has hash {below}",
                height.saturating_sub(1)
            ),
            Inconsistency::BlockBodyMismatch { height } => write!(
                f,
                "the body of block {height} does not match the length or checksum in its index \
                 entry"
            ),
            Inconsistency::DataAboveHead {
                column,
                height,
                head,
            } => match head {
                Some(head) => write!(
                    f,
                    "column {column} holds height {height}, above the committed head {head}"
                ),
                None => write!(
                    f,
                    "column {column} holds height {height} but nothing is committed"
                ),
            },
            Inconsistency::InterruptedCommit {
                intent_height,
                head,
            } => {
                write!(
                    f,
                    "the write for height {intent_height} was interrupted part-way (committed \
                     head: {}); the database holds part of it",
                    head.map_or_else(|| "none".to_string(), |h| h.to_string())
                )
            }
            Inconsistency::SnapshotDamaged { height, detail } => {
                write!(f, "the snapshot at height {height} is damaged: {detail}")
            }
            Inconsistency::SnapshotRootMismatch {
                height,
                snapshot,
                committed,
            } => write!(
                f,
                "the snapshot at height {height} has state root {snapshot} but the chain \
                 committed {committed} at that height"
            ),
            Inconsistency::StateRootMismatch {
                height,
                committed,
                computed,
            } => write!(
                f,
                "the stored state at height {height} hashes to {computed} but the committed \
                 state root is {committed}"
            ),
            Inconsistency::MissingFormatMarker => f.write_str(
                "the database holds data but no dex-storage format marker (wrong directory, \
                 or its metadata was lost)",
            ),
            Inconsistency::BadBase { detail } => write!(f, "bad chain base record: {detail}"),
        }
    }
}

/// Why a snapshot file was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotFileProblem {
    /// The file does not start with the snapshot magic bytes.
    NotASnapshotFile,
    /// A format version this build cannot read.
    UnsupportedVersion {
        /// Version found.
        found: u16,
    },
    /// A header, record or footer checksum failed.
    ChecksumMismatch {
        /// Which part failed (`header`, `record 17`, `footer`).
        part: String,
    },
    /// A record or the entry count is above the reader's limits.
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Keys are not strictly increasing.
    KeysOutOfOrder {
        /// Index of the first offending record.
        record: u64,
    },
    /// The file ended early.
    Truncated,
    /// The footer's entry count or digest disagrees with the records.
    FooterMismatch {
        /// What disagrees.
        detail: String,
    },
    /// Bytes follow the footer.
    TrailingBytes,
}

impl fmt::Display for SnapshotFileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotFileProblem::NotASnapshotFile => {
                f.write_str("not a snapshot file (bad magic bytes)")
            }
            SnapshotFileProblem::UnsupportedVersion { found } => {
                write!(f, "unsupported snapshot file version {found}")
            }
            SnapshotFileProblem::ChecksumMismatch { part } => {
                write!(f, "checksum mismatch in the {part}")
            }
            SnapshotFileProblem::TooLarge { what, size, max } => {
                write!(f, "{what} of {size} is above the limit of {max}")
            }
            SnapshotFileProblem::KeysOutOfOrder { record } => {
                write!(f, "keys are not strictly increasing at record {record}")
            }
            SnapshotFileProblem::Truncated => f.write_str("the file ends early (truncated copy?)"),
            SnapshotFileProblem::FooterMismatch { detail } => {
                write!(f, "footer disagrees with the records: {detail}")
            }
            SnapshotFileProblem::TrailingBytes => f.write_str("bytes follow the footer"),
        }
    }
}

/// An error from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB or the file system failed an operation (disk full, permission denied, IO
    /// error, the directory is locked by another process).
    #[error(
        "storage backend failed to {operation}: {message}; {}",
        Remedy::CheckDiskAndRestart
    )]
    Backend {
        /// What was being done.
        operation: &'static str,
        /// The backend's message.
        message: String,
    },

    /// RocksDB reported corruption in its own files (block checksum, manifest).
    #[error(
        "the database files are corrupted ({operation}): {message}; {}",
        Remedy::DeleteDataDirAndResync
    )]
    BackendCorruption {
        /// What was being done.
        operation: &'static str,
        /// RocksDB's message.
        message: String,
    },

    /// A stored value failed its integrity check.
    #[error(
        "corrupted value in column {column} at key {key_hex}: {kind}; {}",
        Remedy::RestoreFromSnapshotOrResync
    )]
    Corrupted {
        /// Column of the value.
        column: Column,
        /// The key, hex encoded.
        key_hex: String,
        /// What failed.
        kind: CorruptionKind,
    },

    /// The stored chain, state and snapshots disagree.
    #[error("inconsistent database: {problem}; {}", problem.remedy())]
    Inconsistent {
        /// What disagrees.
        problem: Inconsistency,
    },

    /// The database was written by a newer, incompatible build.
    #[error(
        "the database format version is {found} but this build reads up to {supported}; run a newer build"
    )]
    UnsupportedFormat {
        /// Version on disk.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },

    /// A commit or base install was asked for a height that does not follow the head.
    #[error("cannot write height {got}: the next height is {expected}")]
    NonContiguousHeight {
        /// The height that would follow the head.
        expected: u64,
        /// The height asked for.
        got: u64,
    },

    /// A block's parent hash is not the committed head's block hash.
    #[error("block {height} names parent {parent} but the committed head's hash is {head}")]
    ParentMismatch {
        /// Height of the block.
        height: u64,
        /// Parent hash given.
        parent: Hash,
        /// Hash of the committed head.
        head: Hash,
    },

    /// A configuration value is out of range.
    #[error("invalid storage configuration: {detail}")]
    InvalidConfig {
        /// Which value and why.
        detail: String,
    },

    /// Nothing is committed yet and the operation needs a committed head.
    #[error("no chain base yet: install the genesis state or import a snapshot first")]
    NotInitialized,

    /// The chain base can only be installed into an empty store.
    #[error(
        "the store already holds a chain (head at height {head}); import into an empty data directory"
    )]
    AlreadyInitialized {
        /// Height of the existing head.
        head: u64,
    },

    /// A value is above its configured size limit.
    #[error("{what} of {size} bytes is above the limit of {max} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// State changes handed to a commit are not sorted by key or repeat a key.
    #[error("state changes must be sorted by key without duplicates (offending index {index})")]
    UnsortedStateChanges {
        /// Index of the first change that is not above the one before it.
        index: usize,
    },

    /// A state key is empty.
    #[error("a state key is empty (index {index})")]
    EmptyStateKey {
        /// Index of the change.
        index: usize,
    },

    /// A snapshot was asked for at a height with no committed block to check it against.
    #[error("no committed block at height {height} to take a snapshot of")]
    UnknownHeight {
        /// The height.
        height: u64,
    },

    /// A snapshot's state root differs from the root committed at its height.
    #[error(
        "the snapshot for height {height} has state root {given} but the chain committed {committed}"
    )]
    SnapshotRootDiffers {
        /// Snapshot height.
        height: u64,
        /// Root given.
        given: Hash,
        /// Root committed.
        committed: Hash,
    },

    /// Pruning would remove blocks needed to replay from the newest snapshot.
    #[error(
        "cannot prune blocks below {below}: replay from the newest snapshot needs blocks from {needed_from}"
    )]
    PruneTooFar {
        /// Height asked for.
        below: u64,
        /// Lowest block still needed.
        needed_from: u64,
    },

    /// A snapshot file was rejected before anything was written.
    #[error("snapshot file rejected: {problem}; obtain a new copy of the export")]
    SnapshotFile {
        /// What is wrong with it.
        problem: SnapshotFileProblem,
    },

    /// The state in a snapshot file does not hash to the root it must have.
    #[error(
        "snapshot state hashes to {computed} but the expected state root is {expected}; the file is not the committed state, do not use it"
    )]
    SnapshotRootMismatch {
        /// Root expected (from the caller, e.g. a certified header).
        expected: Hash,
        /// Root of the file's entries.
        computed: Hash,
    },

    /// No snapshot exists at the height asked for.
    #[error("no snapshot at height {height}")]
    NoSnapshot {
        /// The height.
        height: u64,
    },

    /// Reading or writing a snapshot file failed.
    #[error("snapshot file IO failed: {0}; {remedy}", remedy = Remedy::CheckDiskAndRestart)]
    Io(#[from] std::io::Error),

    /// A fault injected by [`crate::FaultyStore`].
    #[error("injected fault: {fault}")]
    InjectedFault {
        /// What was injected.
        fault: crate::faulty::InjectedFault,
    },

    /// An earlier write through this handle failed, so what reached the disk is uncertain
    /// (a failed fsync must not be retried: the kernel may have dropped the dirty pages).
    #[error(
        "an earlier write failed, so the data on disk is uncertain; restart the node so the store is reopened and verified"
    )]
    Halted,

    /// The state was asked of the state column, but the column does not hold the state at
    /// the head: it is off in the configuration, or it was switched on for a chain that ran
    /// without it and has not been rebuilt yet.
    #[error(
        "the state column does not hold the committed state: {}",
        if *kept {
            "it was switched on for a chain that ran without it; rebuild it from the state \
             recovered from the newest snapshot and the blocks after it \
             (ChainStore::rebuild_state_column)"
        } else {
            "it is switched off (ChainStoreConfig::keep_state_column); read the newest \
             snapshot and replay the blocks after it instead"
        }
    )]
    StateColumnUnavailable {
        /// Whether the configuration keeps the column (true: it only needs a rebuild).
        kept: bool,
    },

    /// The store has crashed (after an injected torn write) and must be restarted.
    #[error("the store has crashed and must be restarted before further use")]
    Crashed,
}

impl StorageError {
    /// Wrap an inconsistency.
    pub fn inconsistent(problem: Inconsistency) -> StorageError {
        StorageError::Inconsistent { problem }
    }

    /// A corruption error for `key` in `column`.
    pub fn corrupted(column: Column, key: &[u8], kind: CorruptionKind) -> StorageError {
        StorageError::Corrupted {
            column,
            key_hex: hex_of(key),
            kind,
        }
    }

    /// True for errors that mean the database on disk cannot be trusted: the node must
    /// stop rather than continue.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StorageError::BackendCorruption { .. }
                | StorageError::Corrupted { .. }
                | StorageError::Inconsistent { .. }
                | StorageError::UnsupportedFormat { .. }
        )
    }
}

/// Lower-case hex of at most the first 64 bytes of `bytes` (keys in messages stay short).
pub(crate) fn hex_of(bytes: &[u8]) -> String {
    const SHOWN_BYTES_MAX: usize = 64;
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES_MAX)];
    let mut out = String::with_capacity(shown.len() * 2 + 3);
    for byte in shown {
        out.push_str(&format!("{byte:02x}"));
    }
    if bytes.len() > SHOWN_BYTES_MAX {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem_and_the_remedy() {
        let err = StorageError::inconsistent(Inconsistency::MissingHeight {
            height: 7,
            column: Column::Blocks,
        });
        let text = err.to_string();
        assert!(text.contains("height 7"), "{text}");
        assert!(text.contains("blocks"), "{text}");
        assert!(text.contains("resync"), "{text}");
        assert!(err.is_damage());

        let err = StorageError::corrupted(
            Column::State,
            &[0xab, 0x01],
            CorruptionKind::ChecksumMismatch {
                stored: 1,
                computed: 2,
            },
        );
        let text = err.to_string();
        assert!(text.contains("ab01"), "{text}");
        assert!(text.contains("snapshot export"), "{text}");
    }

    #[test]
    fn damaged_snapshot_is_not_a_reason_to_resync() {
        let problem = Inconsistency::SnapshotDamaged {
            height: 3,
            detail: "x".into(),
        };
        assert_eq!(problem.remedy(), Remedy::DeleteDamagedSnapshot);
    }

    #[test]
    fn hex_of_truncates_long_keys() {
        assert_eq!(hex_of(&[0, 255]), "00ff");
        let long = vec![1u8; 100];
        let text = hex_of(&long);
        assert!(text.ends_with("..."));
        assert_eq!(text.len(), 64 * 2 + 3);
    }
}
