//! Builders shared by the crate's unit tests.

use dex_types::{ChainId, Keypair, SignedTransaction};

/// A signed transfer of one unit from the key of `seed` (nonce `nonce`) to the key of
/// seed 0: a valid transaction whose signature checks hold.
pub(crate) fn transfer(seed: u8, nonce: u64) -> SignedTransaction {
    dex_workload::transfer(
        &Keypair::from_seed([seed; 32]),
        ChainId(1),
        nonce,
        Keypair::from_seed([0; 32]).account_id(),
        1,
    )
}
