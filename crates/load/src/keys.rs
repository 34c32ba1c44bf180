//! Keys derived from the run's seed: trader `i` and validator `i` of seed `s` are the same
//! keys in every process, so a cluster laid out by one command can be loaded by another
//! without writing thousands of key files.

use dex_node::ValidatorKey;
use dex_sdk::TraderKey;
use dex_types::AccountId;

fn derive(context: &str, seed: u64, index: u64) -> [u8; 32] {
    let mut material = [0u8; 16];
    material[..8].copy_from_slice(&seed.to_le_bytes());
    material[8..].copy_from_slice(&index.to_le_bytes());
    blake3::derive_key(context, &material)
}

/// Trader `index` of `seed`.
pub fn trader_key(seed: u64, index: u32) -> TraderKey {
    TraderKey::from_seed(derive("dex-load 2025 trader key", seed, u64::from(index)))
}

/// The first `count` traders of `seed`.
pub fn trader_keys(seed: u64, count: u32) -> Vec<TraderKey> {
    (0..count).map(|i| trader_key(seed, i)).collect()
}

/// Their accounts.
pub fn trader_accounts(keys: &[TraderKey]) -> Vec<AccountId> {
    keys.iter().map(TraderKey::account).collect()
}

/// Validator `index` of `seed`.
pub fn validator_key(seed: u64, index: usize) -> ValidatorKey {
    ValidatorKey::from_seed(derive("dex-load 2025 validator key", seed, index as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_seed_and_index_only() {
        assert_eq!(trader_key(1, 5).account(), trader_key(1, 5).account());
        assert_ne!(trader_key(1, 5).account(), trader_key(1, 6).account());
        assert_ne!(trader_key(1, 5).account(), trader_key(2, 5).account());
        assert_ne!(
            trader_key(1, 0).account().0,
            validator_key(1, 0).public_key().0,
            "traders and validators use separate derivations"
        );
        let accounts = trader_accounts(&trader_keys(9, 50));
        let unique: std::collections::BTreeSet<_> = accounts.iter().collect();
        assert_eq!(unique.len(), 50);
    }
}
