//! A stand-in state root: one BLAKE3 hash over the sorted key-values.
//!
//! The ledger's real root (a Merkle tree with proofs) belongs to `dex-state`, which this
//! crate does not depend on. Everything here that needs a root takes the root function as
//! a parameter; this one serves the synthetic chain of the tests and benchmarks. The crash
//! test with the real ledger and its root lives in dex-chain (`tests/crash.rs`).

use crate::chain::StateEntry;
use dex_types::Hash;

const DOMAIN: &[u8] = b"dex-storage/v1/sorted-kv-root";

/// Hash the sorted `entries`, each key and value length-prefixed.
pub fn sorted_kv_root(entries: &[StateEntry]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(DOMAIN);
    hasher.update(&(entries.len() as u64).to_le_bytes());
    for (key, value) in entries {
        hasher.update(&(key.len() as u64).to_le_bytes());
        hasher.update(key);
        hasher.update(&(value.len() as u64).to_le_bytes());
        hasher.update(value);
    }
    Hash(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_and_values_matter() {
        let a = sorted_kv_root(&[(b"ab".to_vec(), b"c".to_vec())]);
        let b = sorted_kv_root(&[(b"a".to_vec(), b"bc".to_vec())]);
        let c = sorted_kv_root(&[(b"ab".to_vec(), b"d".to_vec())]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(sorted_kv_root(&[]), a);
        assert_eq!(a, sorted_kv_root(&[(b"ab".to_vec(), b"c".to_vec())]));
    }
}
