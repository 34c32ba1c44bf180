//! Execute blocks: the exchange's ledger and its deterministic state transition.
//!
//! [`Ledger`] holds every account (balances `free`/`locked` per asset, nonce windows, agent
//! keys, the dead-man switch), every open order with exactly what it locked, one
//! [`dex_engine::OrderBook`] per market, and two Merkle trees. [`Ledger::execute_block`]
//! takes a parent hash, the block time and the block's transactions (signatures already
//! verified by the node, in parallel, off this path) and returns a [`BlockResult`]: one
//! [`TxOutcome`] per transaction, the ordered [`LedgerEvent`]s, the committed fills and
//! withdrawal receipts, the state root and the fills root. The crate is pure: no IO, no
//! clock (time is the block time), no randomness, no floats, no hash-order iteration.
//!
//! # A block, step by step
//! 1. **Start of block**: each book expires its good-til-time orders at the block time, then
//!    every dead-man switch due at or before it fires (all the account's orders cancelled).
//! 2. **Canonical order**: transactions run by class (non-order actions, cancels, post-only
//!    placements, other orders; [`dex_types::ExecutionClass`]) and inside a class by
//!    [`dex_types::canonical_order_key`]`(parent hash, tx id)`. The proposer picks which
//!    transactions, never their order; the order of the slice passed in does not matter.
//! 3. **Each transaction**: chain id, expiry, structure, account, signer authority (owner,
//!    or an unexpired agent), then the signer's nonce window; then the action. A failure is
//!    a typed [`Rejection`] in the outcome, never a panic and never a balance change.
//!    Rejections found before the nonce is consumed (wrong chain, expired, invalid, unknown
//!    account or agent, expired agent, an agent signing a fund movement, a bad nonce) leave
//!    the nonce unused; all later ones consume it, so a signed, authorised transaction that
//!    failed can never be replayed once its circumstances change
//!    ([`Rejection::consumes_nonce`]).
//! 4. **End of block**: agent revocations take effect (an agent revoked in a block may still
//!    act in that block, and leaves a nonce floor behind, see below); per-block agent
//!    counters reset.
//! 5. **Roots** ([`Ledger::finish_roots`]): the dirty accounts and orders are re-hashed into
//!    their trees and only their paths are recomputed (see [`tree`] and
//!    `docs/adr/0001-state-root.md`); the fills root is a [`dex_types::merkle`] root over the
//!    block's fills and receipts.
//!
//! # Replay protection across agent revocation
//! Each signer's nonce window ([`NonceWindow`]) holds its highest 64 used nonces; an agent
//! key's window belongs to its approval. Dropping the window on revocation would let an
//! approval of the same key later accept an old, unexpired transaction of that key again.
//! So a revoked key leaves a **nonce floor** in its account ([`Account::revoked_agents`]):
//! the highest nonce it used (or may have used) for the account. A new approval of the key
//! starts a fresh window that refuses every nonce at or below the floor
//! ([`NonceError::TooOld`], in execution and in [`Ledger::check_transaction`] alike), so no
//! (signer, nonce) pair ever runs twice for an account. A floor costs one `u64` where the
//! window would cost 64, and a client of a re-approved key just keeps counting upwards (the
//! window reports the floor as its [`NonceWindow::highest`]).
//!
//! Approve and revoke cost the owner nothing but a nonce, so the floors are bounded: at most
//! `max_agents_per_account` per account. Past that the lowest is folded into one
//! per-account floor ([`Account::agent_nonce_floor`]) that every key approved without a
//! floor of its own must exceed; folding only ever raises what a key must exceed, so it
//! stays safe. A floor leaves the list when its key is approved again (it moves into the
//! window) and a full window drops its floor (its entries already exceed it). Floors are in
//! the account leaf (so in the state root), in snapshots and in [`Ledger::block_changes`].
//!
//! # Custody
//! Placing an order moves exactly [`dex_types::Market::buy_lock`] (quote: notional at the
//! limit price plus the fee bound) or [`dex_types::Market::sell_lock`] (base) from free to
//! locked. Each fill settles both sides at the maker's price: the buyer pays notional plus
//! its fee from its lock, the seller delivers base from its lock and receives the notional
//! less its fee (plus any rebate); then each order's lock is recomputed for what remains and
//! the excess is freed. Fees are charged rounded up and rebates paid rounded down; genesis
//! requires `maker_bps + taker_bps ≥ 0`, so a fill's rebate never exceeds its own taker fee
//! and the fee account's income on every fill is non-negative: the fee account can never go
//! negative. Cancels, expiries and self-trade cancels free exactly what the order held.
//! Invariant, checked by [`Ledger::check_invariants`] in tests: every order's lock equals
//! [`Ledger::order_needs`], every account's locked balance equals the sum of its orders'
//! locks, and for every asset Σ(free + locked) + withdrawn = genesis supply.
//!
//! # Batches
//! A batch of one leg is a single order or cancel. A multi-leg batch applies its legs in
//! order, either per leg (failures listed in [`TxOutcome::leg_rejections`]) or atomically:
//! every leg is first checked against the state the earlier legs would leave (funds freed
//! by cancels and taken by placements, client ids, open-order and book limits, post-only
//! crossing including against the batch's own earlier orders), and only if all pass does any
//! apply; otherwise the whole batch fails with [`Rejection::BatchLeg`] naming the leg. The
//! checks are conservative where matching could differ, so an applied atomic batch never
//! fails half-way. Matching outcomes (an IOC remainder, a fill-or-kill that cannot fill,
//! self-trade cancels) are results of a leg, not failures.
//!
//! # Copies of the ledger
//! A validator executes every proposal on a copy of its committed ledger and keeps the copy
//! as the next committed state if the block is decided. `Ledger::clone` is therefore cheap
//! and a block on a copy costs what the block touches, not the size of the state: the
//! accounts, the account lookup, the genesis, the dead-man schedule and both state trees
//! are copy-on-write ([`cow`]). A copy shares them; the first write to an account (or to a
//! chunk of tree nodes) makes it the copy's own; after each block's roots the ledger
//! *freezes* what it wrote, so the next copy shares that too. The open-order records are a
//! shared map plus each copy's changes since it, folded back in place by
//! [`Ledger::settle`] once the other copies are gone. The books are still copied whole
//! (bounded by the open orders, not the accounts). Copies never see each other's writes,
//! and the results are those of plain vectors and maps, bit for bit.
//!
//! # Proofs, snapshots, diffs
//! - [`Ledger::balance_proof`] / [`verify_balance_proof`]: an account's balances against a
//!   state root; [`BlockResult::fill_proof`] / [`verify_fill_proof`]: a fill or withdrawal
//!   receipt against a fills root. Both need only the header.
//! - [`Ledger::snapshot`] / [`Ledger::restore`] (sorted key-value pairs) and
//!   [`Ledger::to_bytes`] / [`Ledger::from_bytes`]: a restored ledger has the same root and
//!   the same future. [`Ledger::block_changes`] returns the keys the last block changed, for
//!   the node's atomic commit.
//! - [`Ledger::check_transaction`]: the mempool's cheap admission check; it changes nothing.
//! - [`VerifyingKeyCache`]: each signer's checked key ([`dex_types::SignerKey`]: a curve
//!   point not of small order, the key half of the ZIP-215 rule), so that signature checks
//!   of returning signers skip the key check (the API's in-process chain uses it; the node's
//!   verifier, `dex-verify`, keeps its own shared cache).
//!
//! # Feature flags
//! None.
#![forbid(unsafe_code)]

pub mod account;
pub mod cow;
pub mod events;
pub mod genesis;
pub mod ledger;
pub mod nonce;
mod orders;
pub mod proof;
pub mod rejection;
pub mod snapshot;
pub mod tree;
pub mod verify;

pub use account::{Account, Agent, Balance};
pub use cow::{Accounts, AccountsIter};
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
