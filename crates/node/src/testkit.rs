//! Builders shared by the crate's unit tests.

use dex_types::{Action, Amount, AssetId, ChainId, Keypair, SignedTransaction, TimestampMs};
use dex_types::{Transaction, Transfer};

/// A signed transfer of one unit from the key of `seed` (nonce `nonce`) to the key of
/// seed 0: a valid transaction whose signature checks hold.
pub(crate) fn transfer(seed: u8, nonce: u64) -> SignedTransaction {
    let key = Keypair::from_seed([seed; 32]);
    key.sign(Transaction {
        chain_id: ChainId(1),
        account: key.account_id(),
        signer: key.account_id(),
        nonce,
        expires_at: TimestampMs(u64::MAX),
        action: Action::Transfer(Transfer {
            to: Keypair::from_seed([0; 32]).account_id(),
            asset: AssetId(0),
            amount: Amount(1),
        }),
    })
    .expect("signing a transaction")
}
