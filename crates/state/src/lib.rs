//! Execute blocks: the exchange's ledger and its deterministic state transition.
#![forbid(unsafe_code)]

pub mod account;
pub mod events;
pub mod genesis;
pub mod ledger;
pub mod nonce;
pub mod proof;
pub mod rejection;
pub mod snapshot;
pub mod tree;
pub mod verify;

pub use account::{Account, Agent, Balance};
pub use events::{
    BlockResult, CancelCause, CommittedItem, FeePaid, Fill, LedgerEvent, TxOutcome,
    WithdrawalReceipt,
};
pub use genesis::{Allocation, Genesis, GenesisError, Limits};
pub use ledger::{BlockError, Ledger, OpenOrder};
pub use nonce::{NONCE_WINDOW, NonceError, NonceWindow};
pub use proof::{BalanceProof, FillProof, verify_balance_proof, verify_fill_proof};
pub use rejection::Rejection;
pub use snapshot::{SnapshotError, StateChange};
pub use verify::VerifyingKeyCache;

#[cfg(test)]
mod tests;
