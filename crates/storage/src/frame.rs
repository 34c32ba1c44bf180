//! Value framing: every value the chain layer stores carries a format version and a
//! checksum that also covers its column and key.
//!
//! ```text
//! value = version: u8 | crc32: u32 little-endian | payload
//! crc32 = CRC-32 (IEEE) of  column tag: u8 | key length: u32 LE | key | version | payload
//! ```
//!
//! RocksDB already checksums its own blocks; this frame catches what it cannot: a value
//! damaged above RocksDB (a bad copy, a torn write in a store without atomic batches) and a
//! value under the wrong key or column (covering the key makes a misplaced value fail).

use crate::column::Column;
use crate::error::{CorruptionKind, Result, StorageError};

/// The current value format version.
pub const FRAME_VERSION: u8 = 1;

/// Bytes of the frame header (version and checksum).
pub const FRAME_HEADER_BYTES: usize = 5;

fn checksum(column: Column, key: &[u8], version: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[column.tag()]);
    // A key longer than u32::MAX cannot reach RocksDB; saturating keeps this total.
    hasher.update(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes());
    hasher.update(key);
    hasher.update(&[version]);
    hasher.update(payload);
    hasher.finalize()
}

/// Frame `payload` for storage under `key` in `column`.
pub fn seal(column: Column, key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len().saturating_add(FRAME_HEADER_BYTES));
    out.push(FRAME_VERSION);
    out.extend_from_slice(&checksum(column, key, FRAME_VERSION, payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Check the frame of a value read from `key` in `column` and return its payload.
pub fn open<'v>(column: Column, key: &[u8], value: &'v [u8]) -> Result<&'v [u8]> {
    let Some((header, payload)) = value.split_at_checked(FRAME_HEADER_BYTES) else {
        return Err(StorageError::corrupted(
            column,
            key,
            CorruptionKind::Truncated { len: value.len() },
        ));
    };
    let version = header[0];
    if version != FRAME_VERSION {
        return Err(StorageError::corrupted(
            column,
            key,
            CorruptionKind::UnknownVersion { found: version },
        ));
    }
    let stored = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
    let computed = checksum(column, key, version, payload);
    if stored != computed {
        return Err(StorageError::corrupted(
            column,
            key,
            CorruptionKind::ChecksumMismatch { stored, computed },
        ));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_frame_bytes_are_pinned() {
        // Pins the on-disk value format; a change here is a format migration.
        let sealed = seal(Column::State, b"k", b"v");
        assert_eq!(sealed[0], 1);
        assert_eq!(&sealed[5..], b"v");
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&[4, 1, 0, 0, 0, b'k', 1, b'v']);
        assert_eq!(&sealed[1..5], &hasher.finalize().to_le_bytes());
    }

    #[test]
    fn misplaced_value_fails() {
        let sealed = seal(Column::Blocks, b"\0\0\0\0\0\0\0\x01", b"block");
        assert!(open(Column::Blocks, b"\0\0\0\0\0\0\0\x01", &sealed).is_ok());
        assert!(open(Column::Blocks, b"\0\0\0\0\0\0\0\x02", &sealed).is_err());
        assert!(open(Column::Certificates, b"\0\0\0\0\0\0\0\x01", &sealed).is_err());
    }

    #[test]
    fn truncated_and_unknown_version_are_reported() {
        let err = open(Column::State, b"k", &[1, 2]).unwrap_err();
        assert!(matches!(
            err,
            StorageError::Corrupted {
                kind: CorruptionKind::Truncated { len: 2 },
                ..
            }
        ));
        let mut sealed = seal(Column::State, b"k", b"v");
        sealed[0] = 9;
        let err = open(Column::State, b"k", &sealed).unwrap_err();
        assert!(matches!(
            err,
            StorageError::Corrupted {
                kind: CorruptionKind::UnknownVersion { found: 9 },
                ..
            }
        ));
    }

    proptest! {
        #[test]
        fn round_trip(key in proptest::collection::vec(any::<u8>(), 0..40),
                      payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let sealed = seal(Column::State, &key, &payload);
            prop_assert_eq!(open(Column::State, &key, &sealed).unwrap(), &payload[..]);
        }

        #[test]
        fn any_single_bit_flip_is_detected(payload in proptest::collection::vec(any::<u8>(), 1..300),
                                          bit in any::<usize>()) {
            let key = b"key";
            let mut sealed = seal(Column::State, key, &payload);
            let bit = bit % (sealed.len() * 8);
            sealed[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(open(Column::State, key, &sealed).is_err());
        }

        #[test]
        fn any_truncation_is_detected(payload in proptest::collection::vec(any::<u8>(), 1..300),
                                      cut in any::<usize>()) {
            let key = b"key";
            let sealed = seal(Column::State, key, &payload);
            let cut = cut % sealed.len();
            prop_assert!(open(Column::State, key, &sealed[..cut]).is_err());
        }
    }
}
