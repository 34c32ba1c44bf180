//! The snapshot export file: one file holding the state at a height, streamed in bounded
//! records, each checksummed, with a digest of the whole in the footer.
//!
//! ```text
//! header  = magic "DEXSNAP\0" | version: u16 | height: u64 | block hash: 32 | state root: 32
//!           | entry count: u64 | crc32 of the header bytes before it: u32
//! record  = key length: u32 | value length: u32 | key | value | crc32 of the record bytes: u32
//! footer  = magic "DEXSEND\0" | entry count: u64 | BLAKE3 of all record bytes: 32
//!           | crc32 of the footer bytes before it: u32
//! ```
//! All integers little-endian. Keys are strictly increasing. The reader checks every length
//! against [`SnapshotFileLimits`] before allocating, every record's checksum, the order of
//! keys, the footer's count and digest, and that nothing follows the footer. It does not
//! know how to compute a state root: [`crate::ChainStore::import_snapshot`] takes the root
//! function from the caller and checks the entries against the expected root.

use crate::chain::StateEntry;
use crate::error::{Result, SnapshotFileProblem, StorageError};
use dex_types::Hash;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};

/// First bytes of a snapshot file.
pub const SNAPSHOT_FILE_MAGIC: &[u8; 8] = b"DEXSNAP\0";
/// First bytes of the footer.
pub const SNAPSHOT_FILE_FOOTER_MAGIC: &[u8; 8] = b"DEXSEND\0";
/// The file format version written.
pub const SNAPSHOT_FILE_VERSION: u16 = 1;

const HEADER_BYTES: usize = 8 + 2 + 8 + 32 + 32 + 8;
const FOOTER_BYTES: usize = 8 + 8 + 32;
const IO_BUFFER_BYTES: usize = 1 << 20;

/// What a snapshot file says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotFileHeader {
    /// Height whose state the file holds.
    pub height: u64,
    /// Block hash at that height.
    pub block_hash: Hash,
    /// State root at that height, as the exporter recorded it (an importer checks the
    /// entries against a root it trusts, not against this field).
    pub state_root: Hash,
    /// Number of key-values.
    pub entry_count: u64,
}

/// Limits a reader enforces before allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotFileLimits {
    /// Longest key.
    pub key_bytes_max: u32,
    /// Longest value.
    pub value_bytes_max: u32,
    /// Most entries.
    pub entries_max: u64,
}

impl Default for SnapshotFileLimits {
    fn default() -> SnapshotFileLimits {
        SnapshotFileLimits {
            key_bytes_max: 1 << 10,
            value_bytes_max: 1 << 20,
            entries_max: 100_000_000,
        }
    }
}

fn rejected(problem: SnapshotFileProblem) -> StorageError {
    StorageError::SnapshotFile { problem }
}

/// Streams a snapshot file out.
#[derive(Debug)]
pub struct SnapshotFileWriter<W: Write> {
    out: BufWriter<W>,
    header: SnapshotFileHeader,
    written: u64,
    digest: blake3::Hasher,
    last_key: Option<Vec<u8>>,
}

impl<W: Write> SnapshotFileWriter<W> {
    /// Write the header; `header.entry_count` entries must follow.
    pub fn new(out: W, header: SnapshotFileHeader) -> Result<SnapshotFileWriter<W>> {
        let mut out = BufWriter::with_capacity(IO_BUFFER_BYTES, out);
        let mut bytes = Vec::with_capacity(HEADER_BYTES + 4);
        bytes.extend_from_slice(SNAPSHOT_FILE_MAGIC);
        bytes.extend_from_slice(&SNAPSHOT_FILE_VERSION.to_le_bytes());
        bytes.extend_from_slice(&header.height.to_le_bytes());
        bytes.extend_from_slice(header.block_hash.as_bytes());
        bytes.extend_from_slice(header.state_root.as_bytes());
        bytes.extend_from_slice(&header.entry_count.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        out.write_all(&bytes)?;
        Ok(SnapshotFileWriter {
            out,
            header,
            written: 0,
            digest: blake3::Hasher::new(),
            last_key: None,
        })
    }

    /// Append one key-value; keys must be strictly increasing.
    pub fn append(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.written >= self.header.entry_count {
            return Err(rejected(SnapshotFileProblem::FooterMismatch {
                detail: format!(
                    "more entries than the {} the header announced",
                    self.header.entry_count
                ),
            }));
        }
        if self.last_key.as_deref().is_some_and(|last| key <= last) {
            return Err(rejected(SnapshotFileProblem::KeysOutOfOrder {
                record: self.written,
            }));
        }
        let key_len = u32::try_from(key.len()).map_err(|_| {
            rejected(SnapshotFileProblem::TooLarge {
                what: "key",
                size: key.len() as u64,
                max: u64::from(u32::MAX),
            })
        })?;
        let value_len = u32::try_from(value.len()).map_err(|_| {
            rejected(SnapshotFileProblem::TooLarge {
                what: "value",
                size: value.len() as u64,
                max: u64::from(u32::MAX),
            })
        })?;
        let mut crc = crc32fast::Hasher::new();
        for part in [
            &key_len.to_le_bytes()[..],
            &value_len.to_le_bytes(),
            key,
            value,
        ] {
            crc.update(part);
            self.digest.update(part);
            self.out.write_all(part)?;
        }
        self.out.write_all(&crc.finalize().to_le_bytes())?;
        self.written += 1;
        self.last_key = Some(key.to_vec());
        Ok(())
    }

    /// Write the footer, flush, and return the output.
    pub fn finish(mut self) -> Result<W> {
        if self.written != self.header.entry_count {
            return Err(rejected(SnapshotFileProblem::FooterMismatch {
                detail: format!(
                    "{} entries written but the header announced {}",
                    self.written, self.header.entry_count
                ),
            }));
        }
        let mut bytes = Vec::with_capacity(FOOTER_BYTES + 4);
        bytes.extend_from_slice(SNAPSHOT_FILE_FOOTER_MAGIC);
        bytes.extend_from_slice(&self.written.to_le_bytes());
        bytes.extend_from_slice(self.digest.finalize().as_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        self.out.write_all(&bytes)?;
        self.out.flush()?;
        self.out
            .into_inner()
            .map_err(|err| StorageError::Io(err.into_error()))
    }
}

/// Streams a snapshot file in, verifying as it goes.
#[derive(Debug)]
pub struct SnapshotFileReader<R: Read> {
    input: BufReader<R>,
    header: SnapshotFileHeader,
    limits: SnapshotFileLimits,
    read: u64,
    digest: blake3::Hasher,
    last_key: Option<Vec<u8>>,
    finished: bool,
}

fn read_exact_or_truncated(input: &mut impl Read, buf: &mut [u8]) -> Result<()> {
    input.read_exact(buf).map_err(|err| {
        if err.kind() == ErrorKind::UnexpectedEof {
            rejected(SnapshotFileProblem::Truncated)
        } else {
            StorageError::Io(err)
        }
    })
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut out = [0u8; 4];
    out.copy_from_slice(bytes);
    u32::from_le_bytes(out)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut out = [0u8; 8];
    out.copy_from_slice(bytes);
    u64::from_le_bytes(out)
}

fn hash_at(bytes: &[u8]) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(bytes);
    Hash(out)
}

impl<R: Read> SnapshotFileReader<R> {
    /// Read and check the header.
    pub fn open(input: R, limits: SnapshotFileLimits) -> Result<SnapshotFileReader<R>> {
        let mut input = BufReader::with_capacity(IO_BUFFER_BYTES, input);
        let mut bytes = [0u8; HEADER_BYTES + 4];
        read_exact_or_truncated(&mut input, &mut bytes[..8])?;
        if &bytes[..8] != SNAPSHOT_FILE_MAGIC {
            return Err(rejected(SnapshotFileProblem::NotASnapshotFile));
        }
        read_exact_or_truncated(&mut input, &mut bytes[8..])?;
        let crc = le_u32(&bytes[HEADER_BYTES..]);
        if crc32fast::hash(&bytes[..HEADER_BYTES]) != crc {
            return Err(rejected(SnapshotFileProblem::ChecksumMismatch {
                part: "header".into(),
            }));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != SNAPSHOT_FILE_VERSION {
            return Err(rejected(SnapshotFileProblem::UnsupportedVersion {
                found: version,
            }));
        }
        let header = SnapshotFileHeader {
            height: le_u64(&bytes[10..18]),
            block_hash: hash_at(&bytes[18..50]),
            state_root: hash_at(&bytes[50..82]),
            entry_count: le_u64(&bytes[82..90]),
        };
        if header.entry_count > limits.entries_max {
            return Err(rejected(SnapshotFileProblem::TooLarge {
                what: "entry count",
                size: header.entry_count,
                max: limits.entries_max,
            }));
        }
        Ok(SnapshotFileReader {
            input,
            header,
            limits,
            read: 0,
            digest: blake3::Hasher::new(),
            last_key: None,
            finished: false,
        })
    }

    /// The header.
    pub fn header(&self) -> &SnapshotFileHeader {
        &self.header
    }

    /// The next key-value, or `None` after the last one once the footer checked out.
    pub fn next_entry(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.read == self.header.entry_count {
            if !self.finished {
                self.check_footer()?;
                self.finished = true;
            }
            return Ok(None);
        }
        let record = self.read;
        let mut lengths = [0u8; 8];
        read_exact_or_truncated(&mut self.input, &mut lengths)?;
        let key_len = le_u32(&lengths[..4]);
        let value_len = le_u32(&lengths[4..]);
        if key_len > self.limits.key_bytes_max {
            return Err(rejected(SnapshotFileProblem::TooLarge {
                what: "key length",
                size: u64::from(key_len),
                max: u64::from(self.limits.key_bytes_max),
            }));
        }
        if value_len > self.limits.value_bytes_max {
            return Err(rejected(SnapshotFileProblem::TooLarge {
                what: "value length",
                size: u64::from(value_len),
                max: u64::from(self.limits.value_bytes_max),
            }));
        }
        // Both lengths are below the limits checked just above, so these allocations are
        // bounded by the reader's configuration, not by the file.
        let mut key = vec![0u8; key_len as usize];
        let mut value = vec![0u8; value_len as usize];
        read_exact_or_truncated(&mut self.input, &mut key)?;
        read_exact_or_truncated(&mut self.input, &mut value)?;
        let mut crc_bytes = [0u8; 4];
        read_exact_or_truncated(&mut self.input, &mut crc_bytes)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&lengths);
        crc.update(&key);
        crc.update(&value);
        if crc.finalize() != u32::from_le_bytes(crc_bytes) {
            return Err(rejected(SnapshotFileProblem::ChecksumMismatch {
                part: format!("record {record}"),
            }));
        }
        if self
            .last_key
            .as_deref()
            .is_some_and(|last| key[..] <= *last)
        {
            return Err(rejected(SnapshotFileProblem::KeysOutOfOrder { record }));
        }
        self.digest.update(&lengths);
        self.digest.update(&key);
        self.digest.update(&value);
        self.read += 1;
        self.last_key = Some(key.clone());
        Ok(Some((key, value)))
    }

    fn check_footer(&mut self) -> Result<()> {
        let mut bytes = [0u8; FOOTER_BYTES + 4];
        read_exact_or_truncated(&mut self.input, &mut bytes)?;
        if &bytes[..8] != SNAPSHOT_FILE_FOOTER_MAGIC {
            return Err(rejected(SnapshotFileProblem::FooterMismatch {
                detail: "no footer after the announced entries".into(),
            }));
        }
        let crc = le_u32(&bytes[FOOTER_BYTES..]);
        if crc32fast::hash(&bytes[..FOOTER_BYTES]) != crc {
            return Err(rejected(SnapshotFileProblem::ChecksumMismatch {
                part: "footer".into(),
            }));
        }
        let count = le_u64(&bytes[8..16]);
        if count != self.read {
            return Err(rejected(SnapshotFileProblem::FooterMismatch {
                detail: format!("footer counts {count} entries, {} were read", self.read),
            }));
        }
        let digest = hash_at(&bytes[16..48]);
        if digest.0 != *self.digest.finalize().as_bytes() {
            return Err(rejected(SnapshotFileProblem::FooterMismatch {
                detail: "content digest differs".into(),
            }));
        }
        let mut extra = [0u8; 1];
        loop {
            match self.input.read(&mut extra) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(rejected(SnapshotFileProblem::TrailingBytes)),
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => return Err(StorageError::Io(err)),
            }
        }
    }
}

/// Read and verify a whole snapshot file.
pub fn read_snapshot_file(
    input: impl Read,
    limits: SnapshotFileLimits,
) -> Result<(SnapshotFileHeader, Vec<StateEntry>)> {
    let mut reader = SnapshotFileReader::open(input, limits)?;
    let header = *reader.header();
    // Preallocate no more than a bounded amount whatever the header claims.
    const PREALLOCATED_ENTRIES_MAX: u64 = 1 << 16;
    let capacity = usize::try_from(header.entry_count.min(PREALLOCATED_ENTRIES_MAX))
        .expect("bug: a bounded count fits usize");
    let mut entries = Vec::with_capacity(capacity);
    while let Some(entry) = reader.next_entry()? {
        entries.push(entry);
    }
    Ok((header, entries))
}

/// Write a whole snapshot file from sorted entries.
pub fn write_snapshot_file<W: Write>(
    out: W,
    height: u64,
    block_hash: Hash,
    state_root: Hash,
    entries: &[(Vec<u8>, Vec<u8>)],
) -> Result<W> {
    let header = SnapshotFileHeader {
        height,
        block_hash,
        state_root,
        entry_count: entries.len() as u64,
    };
    let mut writer = SnapshotFileWriter::new(out, header)?;
    for (key, value) in entries {
        writer.append(key, value)?;
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<(Vec<u8>, Vec<u8>)> {
        (0u32..50)
            .map(|i| (i.to_be_bytes().to_vec(), vec![i as u8; (i % 7) as usize]))
            .collect()
    }

    fn file(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        write_snapshot_file(Vec::new(), 9, Hash([1; 32]), Hash([2; 32]), entries).unwrap()
    }

    fn problem(bytes: &[u8]) -> SnapshotFileProblem {
        match read_snapshot_file(bytes, SnapshotFileLimits::default()) {
            Err(StorageError::SnapshotFile { problem }) => problem,
            other => panic!("expected a rejected file, got {other:?}"),
        }
    }

    #[test]
    fn round_trip() {
        let entries = sample();
        let bytes = file(&entries);
        let (header, read) = read_snapshot_file(&bytes[..], SnapshotFileLimits::default()).unwrap();
        assert_eq!(header.height, 9);
        assert_eq!(header.state_root, Hash([2; 32]));
        assert_eq!(header.entry_count, 50);
        assert_eq!(read, entries);
    }

    #[test]
    fn empty_state_round_trips() {
        let bytes = file(&[]);
        let (header, read) = read_snapshot_file(&bytes[..], SnapshotFileLimits::default()).unwrap();
        assert_eq!(header.entry_count, 0);
        assert!(read.is_empty());
    }

    #[test]
    fn rejects_wrong_magic_truncation_and_trailing_bytes() {
        let bytes = file(&sample());
        assert_eq!(
            problem(b"NOTASNAPSHOT"),
            SnapshotFileProblem::NotASnapshotFile
        );
        assert_eq!(
            problem(&bytes[..bytes.len() - 1]),
            SnapshotFileProblem::Truncated
        );
        assert_eq!(problem(&bytes[..100]), SnapshotFileProblem::Truncated);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(problem(&longer), SnapshotFileProblem::TrailingBytes);
    }

    #[test]
    fn rejects_oversized_records_before_allocating() {
        let entries = vec![(b"k".to_vec(), vec![0u8; 100])];
        let bytes = file(&entries);
        let limits = SnapshotFileLimits {
            value_bytes_max: 99,
            ..SnapshotFileLimits::default()
        };
        assert!(matches!(
            read_snapshot_file(&bytes[..], limits),
            Err(StorageError::SnapshotFile {
                problem: SnapshotFileProblem::TooLarge { size: 100, .. }
            })
        ));
        let limits = SnapshotFileLimits {
            entries_max: 0,
            ..SnapshotFileLimits::default()
        };
        assert!(matches!(
            read_snapshot_file(&bytes[..], limits),
            Err(StorageError::SnapshotFile {
                problem: SnapshotFileProblem::TooLarge { .. }
            })
        ));
    }

    #[test]
    fn writer_refuses_unsorted_keys_and_wrong_counts() {
        let header = SnapshotFileHeader {
            height: 1,
            block_hash: Hash::ZERO,
            state_root: Hash::ZERO,
            entry_count: 2,
        };
        let mut writer = SnapshotFileWriter::new(Vec::new(), header).unwrap();
        writer.append(b"b", b"1").unwrap();
        assert!(writer.append(b"a", b"1").is_err());
        assert!(writer.finish().is_err());
    }

    #[test]
    fn golden_header_is_pinned() {
        let bytes = file(&[]);
        assert_eq!(&bytes[..8], b"DEXSNAP\0");
        assert_eq!(&bytes[8..10], &[1, 0]);
        assert_eq!(&bytes[10..18], &[9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes.len(), HEADER_BYTES + 4 + FOOTER_BYTES + 4);
    }

    proptest! {
        #[test]
        fn any_bit_flip_is_rejected(bit in any::<usize>()) {
            let mut bytes = file(&sample());
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(read_snapshot_file(&bytes[..], SnapshotFileLimits::default()).is_err());
        }

        #[test]
        fn reader_never_panics_on_garbage(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut bytes = SNAPSHOT_FILE_MAGIC.to_vec();
            bytes.extend_from_slice(&tail);
            let _ = read_snapshot_file(&bytes[..], SnapshotFileLimits::default());
        }
    }
}
