//! Proofs a trader's SDK checks with nothing but a block header: an account's balances
//! against the state root, a fill or withdrawal receipt against the fills root.

use crate::account::Balance;
use crate::ledger::{leaf_from_parts, state_root_of};
use crate::tree::MerklePath;
use borsh::{BorshDeserialize, BorshSerialize};
use dex_types::{AccountId, AccountIndex, AssetId, Hash};

pub use crate::events::{FillProof, verify_fill_proof};

/// Proof of an account's balances after a block, against that block's state root.
///
/// The state root is `H(accounts root, orders root, meta hash)`; the account's leaf is
/// `H(account id, index, balances, rest hash)` where the rest hash covers its nonce windows,
/// agents and dead-man switch. The proof carries every balance of the account (a handful of
/// assets), the rest hash, the leaf's Merkle path, and the two sibling roots.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BalanceProof {
    /// The account's index: its leaf position.
    pub index: AccountIndex,
    /// Every balance of the account, by asset.
    pub balances: Vec<(AssetId, Balance)>,
    /// Hash of the rest of the account leaf.
    pub rest_hash: Hash,
    /// Path from the leaf to the accounts root.
    pub path: MerklePath,
    /// The orders root of the same state.
    pub orders_root: Hash,
    /// The meta hash of the same state.
    pub meta_hash: Hash,
}

/// Whether `account` held `balance` of `asset` in the state whose root is `state_root`.
pub fn verify_balance_proof(
    state_root: &Hash,
    account: &AccountId,
    asset: AssetId,
    balance: &Balance,
    proof: &BalanceProof,
) -> bool {
    if proof.path.index != proof.index.0 {
        return false;
    }
    if !proof
        .balances
        .iter()
        .any(|(a, b)| *a == asset && b == balance)
    {
        return false;
    }
    let leaf = leaf_from_parts(account, proof.index, &proof.balances, &proof.rest_hash);
    match proof.path.root_of(&leaf) {
        Some(accounts_root) => {
            state_root_of(&accounts_root, &proof.orders_root, &proof.meta_hash) == *state_root
        }
        None => false,
    }
}
