//! Domain-separated BLAKE3 hashing.
//!
//! Every hash the exchange computes names what it hashes: a transaction hash can never be
//! confused with a vote or a Merkle node, because each kind has its own prefix.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Framed inputs up to this size are hashed from one stack buffer (one BLAKE3 chunk is 1 KiB;
/// a block header frames to about 220 bytes, a Merkle node to 99).
const SMALL_INPUT_BYTES: usize = 256;

/// A 32-byte BLAKE3 digest.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash, used as the parent of the genesis block and the root of nothing.
    pub const ZERO: Hash = Hash([0u8; 32]);

    /// Hash `parts` under `domain`.
    ///
    /// The hashed bytes are `len(prefix) as u8 ‖ prefix ‖ (len(part) as u64 LE ‖ part)*`.
    /// The prefix's own length comes first so that no prefix can pass for a shorter prefix
    /// followed by data (`dex/v1/tx` against `dex/v1/tx-sig`), and each part is
    /// length-prefixed so that the split between parts is unambiguous (`("ab", "c")` and
    /// `("a", "bc")` differ). The framing is therefore injective: equal hashes mean equal
    /// domain and equal parts, up to a BLAKE3 collision.
    pub fn of(domain: Domain, parts: &[&[u8]]) -> Hash {
        let prefix = domain.prefix();
        // Every prefix is a short literal below; the cast cannot truncate (a test checks).
        let prefix_len = [prefix.len() as u8];
        let framed_len = 1 + prefix.len() + parts.iter().map(|part| 8 + part.len()).sum::<usize>();
        if framed_len <= SMALL_INPUT_BYTES {
            // Small inputs (Merkle nodes, headers, signing messages) are framed into one
            // buffer and hashed in one call: several tiny `update`s cost more than the hash.
            let mut buffer = [0u8; SMALL_INPUT_BYTES];
            let mut at = 0;
            let mut put = |bytes: &[u8]| {
                buffer[at..at + bytes.len()].copy_from_slice(bytes);
                at += bytes.len();
            };
            put(&prefix_len);
            put(prefix);
            for part in parts {
                put(&(part.len() as u64).to_le_bytes());
                put(part);
            }
            return Hash(*blake3::hash(&buffer[..framed_len]).as_bytes());
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&prefix_len);
        hasher.update(prefix);
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Hash(*hasher.finalize().as_bytes())
    }

    /// The bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, as hashes cross the API.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Hash, HexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| HexError {
            expected_bytes: 32,
            got_chars: text.len(),
        })?;
        Ok(Hash(out))
    }
}

/// A hex string that is not the expected number of bytes or not hex at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected_bytes} bytes as {} hex characters, got {got_chars} characters or a non-hex character", expected_bytes * 2)]
pub struct HexError {
    /// How many bytes the value has.
    pub expected_bytes: usize,
    /// How many characters were given.
    pub got_chars: usize,
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as Deserialize>::deserialize(d)?;
        Hash::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// The kinds of thing the exchange hashes or signs. Each has a distinct, versioned prefix.
///
/// Adding a kind is fine; changing a prefix changes every hash of that kind and is a
/// breaking change of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// The canonical unsigned bytes of a transaction (its id).
    Transaction,
    /// What a transaction's signer signs.
    TransactionSignature,
    /// A block header.
    BlockHeader,
    /// What a validator signs in a proposal.
    Proposal,
    /// What a validator signs in a prevote or precommit.
    Vote,
    /// A leaf of the fills/receipts Merkle tree.
    FillLeaf,
    /// An inner node of a Merkle tree.
    MerkleNode,
    /// The root of a Merkle tree: the top node bound to the leaf count.
    MerkleRoot,
    /// A leaf of the state tree.
    StateLeaf,
    /// The canonical in-block ordering key: `hash(parent ‖ tx hash)`.
    CanonicalOrder,
    /// Digests of event streams (replays, benchmarks).
    EventDigest,
    /// Anything else a test or tool needs to hash; never used by the protocol.
    Other,
}

impl Domain {
    /// Every domain, for tests that must cover them all.
    pub const ALL: [Domain; 12] = [
        Domain::Transaction,
        Domain::TransactionSignature,
        Domain::BlockHeader,
        Domain::Proposal,
        Domain::Vote,
        Domain::FillLeaf,
        Domain::MerkleNode,
        Domain::MerkleRoot,
        Domain::StateLeaf,
        Domain::CanonicalOrder,
        Domain::EventDigest,
        Domain::Other,
    ];

    /// The prefix written before the hashed bytes.
    pub const fn prefix(self) -> &'static [u8] {
        match self {
            Domain::Transaction => b"dex/v1/tx",
            Domain::TransactionSignature => b"dex/v1/tx-sig",
            Domain::BlockHeader => b"dex/v1/block-header",
            Domain::Proposal => b"dex/v1/proposal",
            Domain::Vote => b"dex/v1/vote",
            Domain::FillLeaf => b"dex/v1/fill-leaf",
            Domain::MerkleNode => b"dex/v1/merkle-node",
            Domain::MerkleRoot => b"dex/v1/merkle-root",
            Domain::StateLeaf => b"dex/v1/state-leaf",
            Domain::CanonicalOrder => b"dex/v1/canonical-order",
            Domain::EventDigest => b"dex/v1/event-digest",
            Domain::Other => b"dex/v1/other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_distinct_and_short() {
        for (i, a) in Domain::ALL.iter().enumerate() {
            assert!(
                a.prefix().len() < 256,
                "{a:?} prefix too long for its length byte"
            );
            for b in &Domain::ALL[i + 1..] {
                assert_ne!(a.prefix(), b.prefix(), "{a:?} and {b:?} share a prefix");
            }
        }
    }

    #[test]
    fn small_and_large_inputs_frame_alike() {
        // Inputs on both sides of the one-buffer path hash exactly as the streaming framing.
        for len in [0usize, 1, 200, 230, 231, 232, 240, 300, 5000] {
            let data = vec![0xa5u8; len];
            let parts: [&[u8]; 2] = [b"ab", &data];
            let mut streaming = blake3::Hasher::new();
            let prefix = Domain::Other.prefix();
            streaming.update(&[prefix.len() as u8]);
            streaming.update(prefix);
            for part in parts {
                streaming.update(&(part.len() as u64).to_le_bytes());
                streaming.update(part);
            }
            assert_eq!(
                Hash::of(Domain::Other, &parts).0,
                *streaming.finalize().as_bytes(),
                "len {len}"
            );
        }
    }

    #[test]
    fn domains_separate_equal_bytes() {
        let a = Hash::of(Domain::Transaction, &[b"x"]);
        let b = Hash::of(Domain::Vote, &[b"x"]);
        assert_ne!(a, b);
    }

    #[test]
    fn part_boundaries_matter() {
        let a = Hash::of(Domain::Other, &[b"ab", b"c"]);
        let b = Hash::of(Domain::Other, &[b"a", b"bc"]);
        assert_ne!(a, b);
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = Hash::of(Domain::Other, &[b"round trip"]);
        assert_eq!(Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert!(Hash::from_hex("abcd").is_err());
        assert!(Hash::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn golden_digest_is_pinned() {
        // Pins BLAKE3 + the prefix + length framing; a change here changes every id on chain.
        let h = Hash::of(Domain::Other, &[b"dex"]);
        assert_eq!(
            h.to_hex(),
            "e4faa6c1e869bbd3cbc79cd07b0cac6238e7d424426e2874d4c2db83f5c2cdee"
        );
        // The framing by hand: the same bytes through BLAKE3 directly.
        let mut framed = vec![Domain::Other.prefix().len() as u8];
        framed.extend_from_slice(Domain::Other.prefix());
        framed.extend_from_slice(&3u64.to_le_bytes());
        framed.extend_from_slice(b"dex");
        assert_eq!(h.0, *blake3::hash(&framed).as_bytes());
    }
}
