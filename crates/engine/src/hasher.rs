//! A fixed, seedless hasher for the book's lookup-only maps (order id → slot, owner → list).
//!
//! `std`'s default SipHash is keyed randomly per process and costs tens of nanoseconds per
//! lookup; the book looks an id up on nearly every message. This hasher is one folded
//! 64×64→128-bit multiply: the low bits (which pick the bucket) and the high bits (which
//! form the control tag) both depend on every input bit, so sequential ids, strided ids and
//! ids with equal low bits all spread. It has no seed, so it behaves identically on every
//! machine; since nothing iterates these maps, the hash never reaches a result anyway.
//! The keys are ledger-assigned numbers, not attacker-chosen bytes.

use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative hasher for `u64`-like keys. See the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastIdHasher {
    state: u64,
}

/// Odd constants from the golden ratio and a second mixing constant, as used by common
/// folded-multiply hashers.
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
const INPUT_MIX: u64 = 0xA076_1D64_78BD_642F;

impl FastIdHasher {
    #[inline(always)]
    fn mix(&mut self, word: u64) {
        let product = u128::from(self.state ^ word ^ INPUT_MIX) * u128::from(MULTIPLIER);
        // Truncations are the point: fold the two halves of the product together.
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for FastIdHasher {
    #[inline(always)]
    fn finish(&self) -> u64 {
        self.state
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys that are not a single integer; fold eight bytes at a time.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    #[inline(always)]
    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    #[inline(always)]
    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    #[inline(always)]
    fn write_usize(&mut self, value: usize) {
        self.mix(value as u64);
    }
}

/// The `BuildHasher` for [`FastIdHasher`].
pub type FastIdBuildHasher = BuildHasherDefault<FastIdHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash_of<T: Hash>(value: T) -> u64 {
        FastIdBuildHasher::default().hash_one(value)
    }

    #[test]
    fn same_key_same_hash_and_neighbours_differ() {
        assert_eq!(hash_of(42u64), hash_of(42u64));
        assert_ne!(hash_of(42u64), hash_of(43u64));
    }

    #[test]
    fn strided_keys_spread_over_buckets() {
        // Keys that share their low 20 bits must still land in many different buckets of
        // a 1024-bucket table (the low bits pick the bucket).
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..1024u64 {
            seen.insert(hash_of(i << 20) & 1023);
        }
        assert!(seen.len() > 600, "only {} distinct buckets", seen.len());
    }
}
