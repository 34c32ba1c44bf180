//! The column families: one per kind of data a validator keeps.

use std::fmt;

/// A column family. Each kind of data lives in its own key space, so a range scan of one
/// never walks another and each can be tuned and pruned on its own.
///
/// The names are part of the on-disk format: renaming one orphans its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    /// Committed block bodies, keyed by big-endian height.
    Blocks,
    /// One small record per committed block (hash, parent, state root, body checksum),
    /// keyed by big-endian height. Start-up walks this column to prove the chain has no
    /// gap and no broken link without reading megabytes of block bodies.
    BlockIndex,
    /// Commit certificates (the 2f+1 precommits), keyed by big-endian height.
    Certificates,
    /// The ledger's key-value form at the committed head, keyed by the ledger's own keys.
    State,
    /// State snapshots: a manifest and bounded chunks per snapshot height.
    Snapshots,
    /// The consensus write-ahead log: a validator's own proposals and votes, keyed by
    /// big-endian height then a global append sequence number.
    ConsensusWal,
    /// Small fixed records: the committed head, the commit intent, the chain base, the
    /// format marker and the block-retention floor.
    Metadata,
}

impl Column {
    /// Every column, in a fixed order (the order RocksDB column families are opened in).
    pub const ALL: [Column; 7] = [
        Column::Blocks,
        Column::BlockIndex,
        Column::Certificates,
        Column::State,
        Column::Snapshots,
        Column::ConsensusWal,
        Column::Metadata,
    ];

    /// The column family's name on disk.
    pub const fn name(self) -> &'static str {
        match self {
            Column::Blocks => "blocks",
            Column::BlockIndex => "block_index",
            Column::Certificates => "certificates",
            Column::State => "state",
            Column::Snapshots => "snapshots",
            Column::ConsensusWal => "consensus_wal",
            Column::Metadata => "metadata",
        }
    }

    /// A stable one-byte tag mixed into every value's checksum, so a value copied under
    /// another column fails verification.
    pub const fn tag(self) -> u8 {
        match self {
            Column::Blocks => 1,
            Column::BlockIndex => 2,
            Column::Certificates => 3,
            Column::State => 4,
            Column::Snapshots => 5,
            Column::ConsensusWal => 6,
            Column::Metadata => 7,
        }
    }

    /// The position of this column in [`Column::ALL`].
    pub const fn index(self) -> usize {
        self.tag() as usize - 1
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (position, column) in Column::ALL.iter().enumerate() {
            assert_eq!(column.index(), position);
        }
    }

    #[test]
    fn names_and_tags_are_unique() {
        let mut names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Column::ALL.len());
        let mut tags: Vec<u8> = Column::ALL.iter().map(|c| c.tag()).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), Column::ALL.len());
    }

    #[test]
    fn on_disk_names_are_pinned() {
        // The names are the on-disk format; changing one is a migration, not a refactor.
        let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "blocks",
                "block_index",
                "certificates",
                "state",
                "snapshots",
                "consensus_wal",
                "metadata"
            ]
        );
    }
}
