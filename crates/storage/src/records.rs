//! Key encodings and the byte layouts of the chain layer's records.
//!
//! Keys that carry a height start with it big-endian, so byte order is height order and a
//! range scan walks heights in order. Record payloads are fixed little-endian layouts
//! decoded with explicit bounds checks (no length read from disk sizes an allocation
//! without a check).

use crate::column::Column;
use crate::error::{CorruptionKind, Result, StorageError};
use dex_types::Hash;

/// Metadata key of the committed head.
pub const META_HEAD: &[u8] = b"head";
/// Metadata key of the commit intent (written first in every commit batch).
pub const META_INTENT: &[u8] = b"commit_intent";
/// Metadata key of the chain base (genesis or imported snapshot).
pub const META_BASE: &[u8] = b"base";
/// Metadata key of the format marker.
pub const META_FORMAT: &[u8] = b"format";
/// Metadata key of the lowest height whose block is kept (raised by pruning).
pub const META_RETAINED_FROM: &[u8] = b"blocks_retained_from";
/// Metadata key present exactly when the state column holds the whole state at the
/// committed head (see `ChainStoreConfig::keep_state_column`). Without it the column's
/// content means nothing and open clears it.
pub const META_STATE_COLUMN: &[u8] = b"state_column";
/// The payload of the state-column marker.
pub const STATE_COLUMN_MARKER: &[u8] = &[1];

/// The database format this build writes and reads. Version 1 always kept the state
/// column (and had no state-column marker); version 2 keeps it only when configured.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this build opens (upgrading it in place to [`FORMAT_VERSION`]).
pub const FORMAT_VERSION_MIN: u32 = 1;
const FORMAT_MAGIC: &[u8; 12] = b"dex-storage\0";

/// Snapshot-column key prefix of manifests; manifests sort before every chunk, so the
/// list of snapshots is a short scan that reads no chunk.
const SNAPSHOT_MANIFEST_PREFIX: u8 = 0;
/// Snapshot-column key prefix of chunks.
const SNAPSHOT_CHUNK_PREFIX: u8 = 1;

/// The key of `height` in the height-keyed columns.
pub fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

/// The height of a height-keyed column's key.
pub fn decode_height_key(column: Column, key: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| malformed_key(column, key, 8))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The key of a consensus-log entry: height then sequence number within the height.
pub fn wal_key(height: u64, seq: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&height.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Height and sequence number of a consensus-log key.
pub fn decode_wal_key(key: &[u8]) -> Result<(u64, u32)> {
    let bytes: [u8; 12] = key
        .try_into()
        .map_err(|_| malformed_key(Column::ConsensusWal, key, 12))?;
    let mut height = [0u8; 8];
    height.copy_from_slice(&bytes[..8]);
    let mut seq = [0u8; 4];
    seq.copy_from_slice(&bytes[8..]);
    Ok((u64::from_be_bytes(height), u32::from_be_bytes(seq)))
}

/// The key of the manifest of the snapshot at `height`.
pub fn snapshot_manifest_key(height: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = SNAPSHOT_MANIFEST_PREFIX;
    key[1..].copy_from_slice(&height.to_be_bytes());
    key
}

/// The range of manifest keys.
pub fn snapshot_manifest_range() -> ([u8; 1], [u8; 1]) {
    ([SNAPSHOT_MANIFEST_PREFIX], [SNAPSHOT_CHUNK_PREFIX])
}

/// The key of chunk `index` of the snapshot at `height`.
pub fn snapshot_chunk_key(height: u64, index: u32) -> [u8; 13] {
    let mut key = [0u8; 13];
    key[0] = SNAPSHOT_CHUNK_PREFIX;
    key[1..9].copy_from_slice(&height.to_be_bytes());
    key[9..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The first chunk key of the snapshot at `height` (and the end of the chunks of
/// `height - 1`).
pub fn snapshot_chunks_start(height: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = SNAPSHOT_CHUNK_PREFIX;
    key[1..].copy_from_slice(&height.to_be_bytes());
    key
}

/// The end (exclusive) of the chunk keys of the snapshot at `height`.
pub fn snapshot_chunks_end(height: u64) -> Vec<u8> {
    match height.checked_add(1) {
        Some(next) => snapshot_chunks_start(next).to_vec(),
        None => vec![SNAPSHOT_CHUNK_PREFIX + 1],
    }
}

/// What a snapshot-column key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKey {
    /// The manifest of the snapshot at this height.
    Manifest(u64),
    /// A chunk of the snapshot at this height.
    Chunk(u64, u32),
}

/// Decode a snapshot-column key.
pub fn decode_snapshot_key(key: &[u8]) -> Result<SnapshotKey> {
    match (key.first(), key.len()) {
        (Some(&SNAPSHOT_MANIFEST_PREFIX), 9) => {
            let mut height = [0u8; 8];
            height.copy_from_slice(&key[1..]);
            Ok(SnapshotKey::Manifest(u64::from_be_bytes(height)))
        }
        (Some(&SNAPSHOT_CHUNK_PREFIX), 13) => {
            let mut height = [0u8; 8];
            height.copy_from_slice(&key[1..9]);
            let mut index = [0u8; 4];
            index.copy_from_slice(&key[9..]);
            Ok(SnapshotKey::Chunk(
                u64::from_be_bytes(height),
                u32::from_be_bytes(index),
            ))
        }
        _ => Err(malformed_key(Column::Snapshots, key, 9)),
    }
}

/// The immediate successor of `key` in byte order (`key ‖ 0x00`): the start of a scan that
/// resumes after `key`.
pub fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

fn malformed_key(column: Column, key: &[u8], expected_len: usize) -> StorageError {
    StorageError::corrupted(
        column,
        key,
        CorruptionKind::Malformed {
            detail: format!(
                "key of {} bytes where {expected_len} were expected",
                key.len()
            ),
        },
    )
}

/// A bounds-checked reader over a record payload.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    column: Column,
    key: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Read the payload of the record at `key` in `column`.
    pub fn new(column: Column, key: &'a [u8], bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, column, key }
    }

    fn malformed(&self, detail: String) -> StorageError {
        StorageError::corrupted(self.column, self.key, CorruptionKind::Malformed { detail })
    }

    /// The next `len` bytes.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let Some((head, tail)) = self.bytes.split_at_checked(len) else {
            return Err(self.malformed(format!(
                "needed {len} more bytes, {} remain",
                self.bytes.len()
            )));
        };
        self.bytes = tail;
        Ok(head)
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64> {
        let mut out = [0u8; 8];
        out.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(out))
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32> {
        let mut out = [0u8; 4];
        out.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(out))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// A 32-byte hash.
    pub fn hash(&mut self) -> Result<Hash> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32)?);
        Ok(Hash(out))
    }

    /// A u32-length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8]> {
        let len = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if len > max {
            return Err(self.malformed(format!("length {len} above the limit {max}")));
        }
        self.take(len)
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Fail unless every byte was read.
    pub fn finish(self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.malformed(format!("{} trailing bytes", self.bytes.len())))
        }
    }
}

/// The committed head: the last block whose commit completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedHead {
    /// Height of the last committed block (the base height if no block was committed since
    /// the base was installed).
    pub height: u64,
    /// Its block hash.
    pub block_hash: Hash,
    /// The state root after it.
    pub state_root: Hash,
}

impl CommittedHead {
    /// Encode as the metadata record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(72);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(self.block_hash.as_bytes());
        out.extend_from_slice(self.state_root.as_bytes());
        out
    }

    /// Decode the metadata record.
    pub fn decode(column: Column, key: &[u8], payload: &[u8]) -> Result<CommittedHead> {
        let mut reader = Reader::new(column, key, payload);
        let head = CommittedHead {
            height: reader.u64()?,
            block_hash: reader.hash()?,
            state_root: reader.hash()?,
        };
        reader.finish()?;
        Ok(head)
    }
}

/// Where the stored chain starts: the genesis state (height 0) or an imported snapshot.
/// Blocks are stored from `height + 1`.
pub type ChainBase = CommittedHead;

/// What a write that opens with an intent record is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentKind {
    /// A block commit.
    Commit,
    /// The install of a chain base (genesis or snapshot import), which may span batches.
    Base,
}

/// The record a commit writes first and the committed head confirms last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitIntent {
    /// Height being written.
    pub height: u64,
    /// What is being written.
    pub kind: IntentKind,
}

impl CommitIntent {
    /// Encode as the metadata record.
    pub fn encode(&self) -> [u8; 9] {
        let mut out = [0u8; 9];
        out[..8].copy_from_slice(&self.height.to_le_bytes());
        out[8] = match self.kind {
            IntentKind::Commit => 0,
            IntentKind::Base => 1,
        };
        out
    }

    /// Decode the metadata record.
    pub fn decode(column: Column, key: &[u8], payload: &[u8]) -> Result<CommitIntent> {
        let mut reader = Reader::new(column, key, payload);
        let height = reader.u64()?;
        let kind = match reader.u8()? {
            0 => IntentKind::Commit,
            1 => IntentKind::Base,
            other => {
                return Err(StorageError::corrupted(
                    column,
                    key,
                    CorruptionKind::Malformed {
                        detail: format!("unknown intent kind {other}"),
                    },
                ));
            }
        };
        reader.finish()?;
        Ok(CommitIntent { height, kind })
    }
}

/// The format marker record.
pub fn encode_format() -> Vec<u8> {
    let mut out = FORMAT_MAGIC.to_vec();
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out
}

/// Decode the format marker; returns its version.
pub fn decode_format(payload: &[u8]) -> Result<u32> {
    let mut reader = Reader::new(Column::Metadata, META_FORMAT, payload);
    if reader.take(FORMAT_MAGIC.len())? != FORMAT_MAGIC {
        return Err(StorageError::corrupted(
            Column::Metadata,
            META_FORMAT,
            CorruptionKind::Malformed {
                detail: "format marker does not start with the dex-storage magic".into(),
            },
        ));
    }
    let version = reader.u32()?;
    reader.finish()?;
    Ok(version)
}

/// The block-index record of one committed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockIndexEntry {
    /// Block hash.
    pub hash: Hash,
    /// Parent block hash.
    pub parent_hash: Hash,
    /// State root after the block.
    pub state_root: Hash,
    /// Length of the block body.
    pub body_len: u64,
    /// CRC-32 of the block body (ties the body to this index entry).
    pub body_crc: u32,
    /// Length of the certificate.
    pub certificate_len: u64,
}

impl BlockIndexEntry {
    /// Encode as the index record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(116);
        out.extend_from_slice(self.hash.as_bytes());
        out.extend_from_slice(self.parent_hash.as_bytes());
        out.extend_from_slice(self.state_root.as_bytes());
        out.extend_from_slice(&self.body_len.to_le_bytes());
        out.extend_from_slice(&self.body_crc.to_le_bytes());
        out.extend_from_slice(&self.certificate_len.to_le_bytes());
        out
    }

    /// Decode the index record.
    pub fn decode(key: &[u8], payload: &[u8]) -> Result<BlockIndexEntry> {
        let mut reader = Reader::new(Column::BlockIndex, key, payload);
        let entry = BlockIndexEntry {
            hash: reader.hash()?,
            parent_hash: reader.hash()?,
            state_root: reader.hash()?,
            body_len: reader.u64()?,
            body_crc: reader.u32()?,
            certificate_len: reader.u64()?,
        };
        reader.finish()?;
        Ok(entry)
    }
}

/// CRC-32 of a block body, as recorded in its index entry.
pub fn body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body)
}

/// A stored snapshot's manifest, written after all its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Height whose state the snapshot holds.
    pub height: u64,
    /// Block hash at that height.
    pub block_hash: Hash,
    /// State root at that height.
    pub state_root: Hash,
    /// Number of key-values.
    pub entry_count: u64,
    /// Number of chunks.
    pub chunk_count: u32,
    /// Bytes of keys and values.
    pub payload_bytes: u64,
    /// BLAKE3 of every chunk payload in order.
    pub content_digest: Hash,
}

impl SnapshotInfo {
    /// Encode as the manifest record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(124);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(self.block_hash.as_bytes());
        out.extend_from_slice(self.state_root.as_bytes());
        out.extend_from_slice(&self.entry_count.to_le_bytes());
        out.extend_from_slice(&self.chunk_count.to_le_bytes());
        out.extend_from_slice(&self.payload_bytes.to_le_bytes());
        out.extend_from_slice(self.content_digest.as_bytes());
        out
    }

    /// Decode the manifest record.
    pub fn decode(key: &[u8], payload: &[u8]) -> Result<SnapshotInfo> {
        let mut reader = Reader::new(Column::Snapshots, key, payload);
        let info = SnapshotInfo {
            height: reader.u64()?,
            block_hash: reader.hash()?,
            state_root: reader.hash()?,
            entry_count: reader.u64()?,
            chunk_count: reader.u32()?,
            payload_bytes: reader.u64()?,
            content_digest: reader.hash()?,
        };
        reader.finish()?;
        Ok(info)
    }
}

/// Append one key-value to a snapshot chunk payload.
pub fn push_chunk_entry(chunk: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let key_len = u32::try_from(key.len()).expect("bug: state key length is capped below 4 GiB");
    let value_len =
        u32::try_from(value.len()).expect("bug: state value length is capped below 4 GiB");
    chunk.extend_from_slice(&key_len.to_le_bytes());
    chunk.extend_from_slice(key);
    chunk.extend_from_slice(&value_len.to_le_bytes());
    chunk.extend_from_slice(value);
}

/// Decode a chunk payload into its key-values, each at most the given sizes.
pub fn decode_chunk(
    key: &[u8],
    payload: &[u8],
    key_bytes_max: usize,
    value_bytes_max: usize,
    out: &mut Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<()> {
    let mut reader = Reader::new(Column::Snapshots, key, payload);
    while !reader.is_empty() {
        let entry_key = reader.bytes(key_bytes_max)?.to_vec();
        let entry_value = reader.bytes(value_bytes_max)?.to_vec();
        out.push((entry_key, entry_value));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn height_keys_sort_in_height_order() {
        let heights = [0u64, 1, 255, 256, 65_536, u64::MAX - 1, u64::MAX];
        let keys: Vec<[u8; 8]> = heights.iter().map(|h| height_key(*h)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(
            decode_height_key(Column::Blocks, &height_key(258)).unwrap(),
            258
        );
        assert!(decode_height_key(Column::Blocks, b"short").is_err());
    }

    #[test]
    fn golden_key_bytes_are_pinned() {
        assert_eq!(height_key(0x0102), [0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(wal_key(1, 2), [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(snapshot_manifest_key(3), [0, 0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(
            snapshot_chunk_key(3, 4),
            [1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4]
        );
    }

    #[test]
    fn snapshot_keys_decode_and_group() {
        assert_eq!(
            decode_snapshot_key(&snapshot_manifest_key(9)).unwrap(),
            SnapshotKey::Manifest(9)
        );
        assert_eq!(
            decode_snapshot_key(&snapshot_chunk_key(9, 2)).unwrap(),
            SnapshotKey::Chunk(9, 2)
        );
        // Every manifest sorts before every chunk, and chunks of a height sit in
        // [chunks_start(h), chunks_end(h)).
        let (start, end) = snapshot_manifest_range();
        assert!(snapshot_manifest_key(u64::MAX)[..] < end[..]);
        assert!(snapshot_manifest_key(0)[..] >= start[..]);
        let chunk = snapshot_chunk_key(9, u32::MAX);
        assert!(chunk[..] >= snapshot_chunks_start(9)[..]);
        assert!(chunk[..] < snapshot_chunks_end(9)[..]);
        assert!(snapshot_chunk_key(u64::MAX, u32::MAX)[..] < snapshot_chunks_end(u64::MAX)[..]);
        assert!(decode_snapshot_key(&[7, 1]).is_err());
    }

    #[test]
    fn golden_head_record_is_pinned() {
        let head = CommittedHead {
            height: 1,
            block_hash: Hash([2; 32]),
            state_root: Hash([3; 32]),
        };
        let bytes = head.encode();
        assert_eq!(bytes.len(), 72);
        assert_eq!(&bytes[..8], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            CommittedHead::decode(Column::Metadata, META_HEAD, &bytes).unwrap(),
            head
        );
        assert!(CommittedHead::decode(Column::Metadata, META_HEAD, &bytes[..71]).is_err());
    }

    #[test]
    fn records_round_trip() {
        let intent = CommitIntent {
            height: 5,
            kind: IntentKind::Base,
        };
        assert_eq!(
            CommitIntent::decode(Column::Metadata, META_INTENT, &intent.encode()).unwrap(),
            intent
        );
        let entry = BlockIndexEntry {
            hash: Hash([1; 32]),
            parent_hash: Hash([2; 32]),
            state_root: Hash([3; 32]),
            body_len: 4,
            body_crc: 5,
            certificate_len: 6,
        };
        assert_eq!(
            BlockIndexEntry::decode(b"k", &entry.encode()).unwrap(),
            entry
        );
        let info = SnapshotInfo {
            height: 1,
            block_hash: Hash([4; 32]),
            state_root: Hash([5; 32]),
            entry_count: 2,
            chunk_count: 3,
            payload_bytes: 4,
            content_digest: Hash([6; 32]),
        };
        assert_eq!(SnapshotInfo::decode(b"k", &info.encode()).unwrap(), info);
        assert_eq!(decode_format(&encode_format()).unwrap(), FORMAT_VERSION);
        assert!(decode_format(b"not-a-marker0000").is_err());
    }

    proptest! {
        #[test]
        fn chunk_round_trip(entries in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 1..20), proptest::collection::vec(any::<u8>(), 0..50)), 0..20)) {
            let mut chunk = Vec::new();
            for (k, v) in &entries {
                push_chunk_entry(&mut chunk, k, v);
            }
            let mut out = Vec::new();
            decode_chunk(b"c", &chunk, 64, 64, &mut out).unwrap();
            prop_assert_eq!(out, entries);
        }

        #[test]
        fn chunk_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut out = Vec::new();
            let _ = decode_chunk(b"c", &bytes, 16, 16, &mut out);
        }
    }
}
