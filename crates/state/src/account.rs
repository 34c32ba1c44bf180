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
    /// Revoked agent keys of this account and the highest nonce each used (or may have
    /// used) while it acted for it. If the owner approves such a key again, its new window
    /// starts with this floor, so a transaction it signed before the revocation (which may
    /// not have expired) cannot run a second time. At most `max_agents_per_account` entries
    /// (the lowest are folded into `agent_nonce_floor`); a key is either here or in
    /// `agents`, never both. See the crate docs, "Replay protection across agent revocation".
    pub revoked_agents: BTreeMap<AccountId, u64>,
    /// The floor for an agent key approved with no entry in `revoked_agents`: the highest
    /// nonce of any revoked key whose own entry was folded away to keep the list bounded.
    /// Every entry of `revoked_agents` is above it.
    pub agent_nonce_floor: Option<u64>,
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
    agents: Vec<(&'a AccountId, &'a AgentPolicy, &'a [u64], Option<u64>)>,
    cancel_all_at: Option<TimestampMs>,
    revoked_agents: Vec<(&'a AccountId, u64)>,
    agent_nonce_floor: Option<u64>,
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
            revoked_agents: BTreeMap::new(),
            agent_nonce_floor: None,
            cancel_all_at: None,
            client_orders: BTreeMap::new(),
            open_orders: 0,
        }
    }

    /// The hash of everything in the account leaf except the balances: nonce windows (with
    /// their floors), agents and their policies, the revoked agents' nonce floors, and the
    /// dead-man switch. A balance proof carries it opaque.
    pub fn rest_hash(&self) -> Hash {
        let rest = AccountRest {
            nonces: self.nonces.used(),
            agents: self
                .agents
                .iter()
                .map(|(k, a)| (k, &a.policy, a.nonces.used(), a.nonces.floor()))
                .collect(),
            cancel_all_at: self.cancel_all_at,
            revoked_agents: self.revoked_agents.iter().map(|(k, f)| (k, *f)).collect(),
            agent_nonce_floor: self.agent_nonce_floor,
        };
        // Sized up front: the nonce window dominates, and growing the buffer while
        // encoding costs more than the hash on this path.
        let mut bytes = Vec::with_capacity(
            64 + 8 * self.nonces.used().len()
                + 700 * self.agents.len()
                + 40 * self.revoked_agents.len(),
        );
        borsh::to_writer(&mut bytes, &rest).expect("bug: borsh into a Vec cannot fail");
        Hash::of(Domain::StateLeaf, &[b"account-rest", &bytes])
    }

    /// The nonce window a newly approved agent key starts with: above the highest nonce the
    /// key used for this account before it was revoked (its entry in `revoked_agents`, taken
    /// out since the key is live again), else above the folded `agent_nonce_floor`, which
    /// covers every key whose own entry was folded away. A key never revoked here gets the
    /// folded floor too: the ledger no longer knows which keys were folded, and refusing
    /// a few low nonces is the price of a bounded state (clients read the floor as the
    /// window's [`NonceWindow::highest`]).
    pub(crate) fn new_agent_window(&mut self, agent: &AccountId) -> NonceWindow {
        debug_assert!(!self.agents.contains_key(agent));
        let floor = match self.revoked_agents.remove(agent) {
            Some(own) => Some(own),
            None => self.agent_nonce_floor,
        };
        NonceWindow::with_floor(floor)
    }

    /// Remove a revoked agent key, remembering the highest nonce it may have used so that a
    /// later approval of the same key cannot replay its transactions.
    ///
    /// Why a floor and not the whole window: everything at or below the highest used nonce
    /// is refused, which costs one `u64` per key instead of 64, and a client of a re-approved
    /// key only has to keep counting upwards. Why bounded: approve and revoke cost the owner
    /// nothing but a nonce, so an unbounded list would let one account grow the state without
    /// limit. The list keeps at most `max_floors` (the agent limit) entries; past that the
    /// lowest entry is folded into `agent_nonce_floor`, which then applies to every key
    /// approved without an entry. Folding only ever raises what a key must exceed, so no
    /// (signer, nonce) pair that ran for this account can ever run again. An entry that
    /// the folded floor already covers is not kept.
    pub(crate) fn retire_agent(&mut self, agent: &AccountId, max_floors: usize) {
        let removed = self
            .agents
            .remove(agent)
            .expect("bug: retiring an agent that is not approved");
        assert!(max_floors > 0, "bug: an agent limit of zero");
        let Some(highest) = removed.nonces.highest() else {
            return;
        };
        if self.agent_nonce_floor.is_some_and(|f| highest <= f) {
            return;
        }
        let previous = self.revoked_agents.insert(*agent, highest);
        assert!(
            previous.is_none(),
            "bug: a key both approved and in the revoked list"
        );
        if self.revoked_agents.len() > max_floors {
            let (&lowest_key, &lowest) = self
                .revoked_agents
                .iter()
                .min_by_key(|&(k, f)| (*f, *k))
                .expect("bug: a non-empty list has a minimum");
            self.revoked_agents.remove(&lowest_key);
            let folded = self.agent_nonce_floor.max(Some(lowest));
            self.agent_nonce_floor = folded;
            // Entries equal to the folded floor add nothing: keep each fact once.
            self.revoked_agents.retain(|_, f| Some(*f) > folded);
        }
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
