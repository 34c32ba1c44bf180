//! Accounts: balances, nonce windows, agent keys and the dead-man switch.

use crate::nonce::NonceWindow;
use borsh::{BorshDeserialize, BorshSerialize};
use dex_types::{
    AccountId, AccountIndex, AgentPolicy, AssetId, ClientOrderId, Domain, Hash, OrderId,
    TimestampMs,
};
use std::collections::BTreeMap;

/// One asset's balance of one account, in the asset's smallest unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Balance {
    /// Spendable: may be locked by an order, transferred or withdrawn.
    pub free: u128,
    /// Held by open orders: exactly what they could still spend.
    pub locked: u128,
}

impl Balance {
    /// `free + locked`; `None` only if the ledger's conservation is broken.
    pub fn total(&self) -> Option<u128> {
        self.free.checked_add(self.locked)
    }
}

/// An approved agent key: its policy, its own nonce window and its use in the current block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// What it may do.
    pub policy: AgentPolicy,
    /// Nonces are kept per signer, so an agent and its owner never collide.
    pub nonces: NonceWindow,
    /// Revoked during the current block: it keeps acting until the block ends (revocation
    /// takes effect at the next block), then it is removed. Never set between blocks, so
    /// not committed.
    pub revoked: bool,
    /// Order actions used in the current block (reset at every block; never committed).
    pub used_in_block: u32,
}

/// One account of the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The account's public key.
    pub id: AccountId,
    /// Its dense index, given in order of first appearance.
    pub index: AccountIndex,
    /// Balance per listed asset, by the asset's position in the genesis list.
    pub balances: Vec<Balance>,
    /// The owner key's nonce window.
    pub nonces: NonceWindow,
    /// Approved agent keys.
    pub agents: BTreeMap<AccountId, Agent>,
    /// The dead-man switch: cancel all of the account's orders at the first block at or past it.
    pub cancel_all_at: Option<TimestampMs>,
    /// Open orders by client order id (for uniqueness and lookups by client id).
    pub client_orders: BTreeMap<ClientOrderId, OrderId>,
    /// Number of open orders (with or without a client id).
    pub open_orders: u32,
}

/// What the account leaf commits to besides balances, borsh-encoded.
#[derive(BorshSerialize)]
struct AccountRest<'a> {
    nonces: &'a [u64],
    agents: Vec<(&'a AccountId, &'a AgentPolicy, &'a [u64])>,
    cancel_all_at: Option<TimestampMs>,
}

impl Account {
    /// A new account with zero balances in `assets` assets.
    pub fn new(id: AccountId, index: AccountIndex, assets: usize) -> Self {
        Account {
            id,
            index,
            balances: vec![Balance::default(); assets],
            nonces: NonceWindow::new(),
            agents: BTreeMap::new(),
            cancel_all_at: None,
            client_orders: BTreeMap::new(),
            open_orders: 0,
        }
    }

    /// The hash of everything in the account leaf except the balances: nonce windows, agents
    /// and their policies, and the dead-man switch. A balance proof carries it opaque.
    pub fn rest_hash(&self) -> Hash {
        let rest = AccountRest {
            nonces: self.nonces.used(),
            agents: self
                .agents
                .iter()
                .map(|(k, a)| (k, &a.policy, a.nonces.used()))
                .collect(),
            cancel_all_at: self.cancel_all_at,
        };
        // Sized up front: the nonce window dominates, and growing the buffer while
        // encoding costs more than the hash on this path.
        let mut bytes =
            Vec::with_capacity(64 + 8 * self.nonces.used().len() + 700 * self.agents.len());
        borsh::to_writer(&mut bytes, &rest).expect("bug: borsh into a Vec cannot fail");
        Hash::of(Domain::StateLeaf, &[b"account-rest", &bytes])
    }

    /// The account's leaf in the state tree; `assets` are the listed assets in the order
    /// the balances are kept.
    pub fn leaf(&self, assets: &[AssetId]) -> Hash {
        let pairs: Vec<(AssetId, Balance)> = assets
            .iter()
            .copied()
            .zip(self.balances.iter().copied())
            .collect();
        account_leaf(&self.id, self.index, &pairs, &self.rest_hash())
    }
}

/// The account leaf from its parts; what a balance proof recomputes.
pub fn account_leaf(
    id: &AccountId,
    index: AccountIndex,
    balances: &[(AssetId, Balance)],
    rest_hash: &Hash,
) -> Hash {
    let mut bytes = Vec::with_capacity(4 + balances.len() * 36);
    borsh::to_writer(&mut bytes, balances).expect("bug: borsh into a Vec cannot fail");
    Hash::of(
        Domain::StateLeaf,
        &[
            b"account",
            &id.0,
            &index.0.to_le_bytes(),
            &bytes,
            &rest_hash.0,
        ],
    )
}
