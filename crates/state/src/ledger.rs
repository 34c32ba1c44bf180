//! The ledger: accounts, open orders, one order book per market, and block execution.

use crate::account::{Account, Agent, Balance, account_leaf};
use crate::cow::Accounts;
use crate::events::{
    BlockResult, CancelCause, CommittedItem, FeePaid, Fill, LedgerEvent, TxOutcome,
    WithdrawalReceipt,
};
use crate::genesis::{Genesis, GenesisError};
use crate::rejection::Rejection;
use crate::tree::{EMPTY_LEAF, IndexedMerkleTree, MerklePath};
use borsh::{BorshDeserialize, BorshSerialize};
use dex_engine::{BookConfig, CancelReason, Event as BookEvent, NewOrder, OrderBook, RejectReason};
use dex_types::{
    AccountId, AccountIndex, Action, Amount, AssetId, BatchLeg, CancelTarget, ClientOrderId,
    Domain, Fee, Hash, Market, MarketId, ModifyOrder, OrderBatch, OrderId, OrderRequest, OrderType,
    PriceTicks, SelfTradePrevention, Side, SignedTransaction, SizeLots, TimeInForce, TimestampMs,
    Transaction, canonical_order_key,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::orders::OrderMap;

/// The key of the account lookup map: the id's first 8 bytes as an integer, then the whole
/// id. Any fixed total order serves a lookup-only map; this one settles nearly every
/// comparison with one integer compare instead of a 32-byte `memcmp`, and unlike a hash map
/// it cannot be degraded by keys chosen to collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AccountKey(u64, AccountId);

impl AccountKey {
    pub(crate) fn of(id: &AccountId) -> AccountKey {
        AccountKey(
            u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes")),
            *id,
        )
    }
}

/// The account lookup map: accounts by key, for lookups only.
///
/// A validator copies the ledger for every proposal, and most blocks create no account, so
/// the map is split for cheap copies: the bulk is shared between copies (`shared`) and
/// accounts created since it was last rebuilt sit in a small map of their own (`recent`).
/// A copy clones the pointer and the small map; when `recent` reaches [`RECENT_MAX`] it
/// moves into `shared`, which is copied then only if another ledger still shares it, so a
/// new account costs `O(accounts / RECENT_MAX)` amortised whatever keys it has. Accounts are
/// never removed, so a key is in one of the two maps or in neither.
#[derive(Clone, Debug, Default)]
pub(crate) struct AccountLookup {
    shared: Arc<BTreeMap<AccountKey, AccountIndex>>,
    recent: BTreeMap<AccountKey, AccountIndex>,
}

/// Accounts created before `recent` moves into the shared map: a ledger copy clones at most
/// this many entries.
const RECENT_MAX: usize = 512;

impl AccountLookup {
    #[inline]
    pub(crate) fn get(&self, key: &AccountKey) -> Option<&AccountIndex> {
        match self.shared.get(key) {
            Some(index) => Some(index),
            None if self.recent.is_empty() => None,
            None => self.recent.get(key),
        }
    }

    pub(crate) fn contains_key(&self, key: &AccountKey) -> bool {
        self.get(key).is_some()
    }

    /// Add a new account's key.
    ///
    /// # Panics
    /// If the key is already there (a caller bug: accounts are created once).
    pub(crate) fn insert(&mut self, key: AccountKey, index: AccountIndex) {
        assert!(
            !self.shared.contains_key(&key),
            "bug: account {} created twice",
            key.1
        );
        let previous = self.recent.insert(key, index);
        assert!(previous.is_none(), "bug: account {} created twice", key.1);
        if self.recent.len() >= RECENT_MAX {
            Arc::make_mut(&mut self.shared).append(&mut self.recent);
        }
    }

    /// Move the recent keys into the shared map now: for a ledger built in one go (genesis,
    /// a restored snapshot), whose copies then start with nothing recent to clone.
    pub(crate) fn compact(&mut self) {
        if !self.recent.is_empty() {
            Arc::make_mut(&mut self.shared).append(&mut self.recent);
        }
    }

    #[cfg(test)]
    pub(crate) fn recent_len(&self) -> usize {
        self.recent.len()
    }
}

/// Which accounts changed since the last root, as flags by index (the list of them is kept
/// beside). All clear between blocks, and a clear set copies as an empty one, so a ledger
/// copy does not copy one flag per account.
#[derive(Debug, Default)]
struct DirtyFlags {
    flags: Vec<bool>,
    set: usize,
}

impl Clone for DirtyFlags {
    fn clone(&self) -> Self {
        if self.set == 0 {
            DirtyFlags::default()
        } else {
            DirtyFlags {
                flags: self.flags.clone(),
                set: self.set,
            }
        }
    }
}

impl DirtyFlags {
    /// Set flag `i`; whether it was clear.
    #[inline]
    fn set(&mut self, i: usize) -> bool {
        if self.flags.len() <= i {
            self.flags.resize(i + 1, false);
        }
        let was_clear = !self.flags[i];
        if was_clear {
            self.flags[i] = true;
            self.set += 1;
        }
        was_clear
    }

    #[inline]
    fn clear(&mut self, i: usize) {
        if self.flags[i] {
            self.flags[i] = false;
            self.set -= 1;
        }
    }
}

/// An open order as the ledger keeps it: the engine holds its place in the book, the ledger
/// holds what it locked.
///
/// `Copy` on purpose: every proposal executes on a copy of the ledger, and a map of `Copy`
/// entries is copied as one block of memory instead of entry by entry (under load tens of
/// thousands of orders rest, and their copy was the largest part of a validator's ledger
/// copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct OpenOrder {
    /// Chain-wide id.
    pub id: OrderId,
    /// Owner.
    pub owner: AccountIndex,
    /// Market.
    pub market: MarketId,
    /// The client's id, unique among the owner's open orders.
    pub client_order_id: Option<ClientOrderId>,
    /// Buy or sell.
    pub side: Side,
    /// Limit price.
    pub price: PriceTicks,
    /// Open quantity.
    pub remaining: SizeLots,
    /// Time in force.
    pub tif: TimeInForce,
    /// Self-trade prevention mode.
    pub stp: SelfTradePrevention,
    /// Exactly what the order can still spend: quote (with the fee bound) for a buy, base
    /// for a sell. Always equal to [`Ledger::order_needs`] of the order.
    pub locked: Amount,
    /// Time priority: orders of one price level are matched in ascending `priority`. Given
    /// when the order rests and again when a replacement loses priority, so the state root
    /// (which commits to it) fixes every queue's order.
    pub priority: u64,
    /// The order's leaf position in the orders tree, given when it first rests.
    pub slot: Option<u32>,
}

impl OpenOrder {
    /// The order's leaf in the orders tree.
    pub fn leaf(&self) -> Hash {
        let mut bytes = Vec::with_capacity(128);
        borsh::to_writer(&mut bytes, self).expect("bug: borsh into a Vec cannot fail");
        Hash::of(Domain::StateLeaf, &[b"order", &bytes])
    }
}

/// Chain-wide counters and totals, committed as one leaf of the state root.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct Meta {
    pub genesis_hash: Hash,
    pub height: u64,
    pub last_block_time: TimestampMs,
    pub next_order_id: u64,
    pub next_priority: u64,
    pub next_receipt: u64,
    /// Withdrawn total per asset (by position), for conservation.
    pub withdrawn: Vec<u128>,
    pub accounts: u64,
}

impl Meta {
    pub(crate) fn hash(&self) -> Hash {
        let bytes = borsh::to_vec(self).expect("bug: borsh into a Vec cannot fail");
        Hash::of(Domain::StateLeaf, &[b"meta", &bytes])
    }
}

/// The state root from its three parts.
pub(crate) fn state_root_of(accounts_root: &Hash, orders_root: &Hash, meta_hash: &Hash) -> Hash {
    Hash::of(
        Domain::StateLeaf,
        &[
            b"state-root",
            &accounts_root.0,
            &orders_root.0,
            &meta_hash.0,
        ],
    )
}

/// Why a block could not be executed at all (as opposed to a transaction in it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The block's time is before the previous block's: consensus must never propose it.
    #[error("block time {time} is before the previous block time {previous}")]
    TimeWentBackwards {
        /// The block's time.
        time: TimestampMs,
        /// The previous block's time.
        previous: TimestampMs,
    },
}

/// One listed market: its validated spec and its book.
#[derive(Clone, Debug)]
pub(crate) struct MarketState {
    pub market: Market,
    pub book: OrderBook,
    pub base: usize,
    pub quote: usize,
}

/// The ledger and its deterministic state transition. See the crate docs.
///
/// Cloning it is cheap: accounts, the account lookup, the genesis, the dead-man schedule,
/// the state trees ([`crate::cow`]) and the open-order records (a shared map plus the
/// changes since, see [`Ledger::settle`]) are copy-on-write, so a clone shares them and a
/// block executed on the clone copies only what it writes. The books are copied whole;
/// they are bounded by the open orders, not the accounts.
#[derive(Clone, Debug)]
pub struct Ledger {
    /// Read only after genesis; shared by every copy.
    pub(crate) genesis: Arc<Genesis>,
    pub(crate) assets: Vec<AssetId>,
    pub(crate) markets: Vec<MarketState>,
    pub(crate) accounts: Accounts,
    pub(crate) by_id: AccountLookup,
    pub(crate) orders: OrderMap,
    pub(crate) free_slots: BTreeSet<u32>,
    pub(crate) slot_end: u32,
    /// Written only by blocks that schedule or fire a switch; shared until then.
    pub(crate) dead_man: Arc<BTreeSet<(TimestampMs, AccountIndex)>>,
    pub(crate) meta: Meta,
    pub(crate) account_tree: IndexedMerkleTree,
    pub(crate) order_tree: IndexedMerkleTree,
    pub(crate) state_root: Hash,
    // Changes since the last root: what the trees (and the storage diff) must pick up.
    account_dirty: DirtyFlags,
    dirty_accounts: Vec<u32>,
    dirty_orders: Vec<OrderId>,
    cleared_slots: Vec<u32>,
    // Keys the last block changed, for `block_changes`.
    pub(crate) last_changed_accounts: Vec<u32>,
    pub(crate) last_changed_orders: Vec<OrderId>,
    // Agents whose per-block state must be reset when the block ends.
    agents_touched: Vec<(AccountIndex, AccountId)>,
    // Scratch buffer for the engine's events, reused across calls.
    book_events: Vec<BookEvent>,
}

/// What a placement will lock, decided by its checks.
#[derive(Clone, Copy, Debug)]
struct PlaceCheck {
    market: usize,
    asset: usize,
    lock: u128,
}

/// The effect of the earlier legs of an atomic batch, so that every leg can be checked
/// before any is applied.
#[derive(Debug, Default)]
struct BatchSim {
    spent: Vec<(usize, u128)>,
    released: Vec<(usize, u128)>,
    cancelled: Vec<OrderId>,
    new_client_ids: Vec<ClientOrderId>,
    freed_client_ids: Vec<ClientOrderId>,
    open_delta: i64,
    agent_orders: u32,
    /// Placements that may rest: (market, side, price).
    resting: Vec<(usize, Side, PriceTicks)>,
}

impl BatchSim {
    fn amount(list: &[(usize, u128)], asset: usize) -> u128 {
        list.iter()
            .filter(|(a, _)| *a == asset)
            .map(|(_, x)| *x)
            .sum()
    }
}

/// Who acts in a transaction.
#[derive(Clone, Copy, Debug)]
struct Ctx {
    account: AccountIndex,
    /// The agent key, if an agent signed.
    agent: Option<AccountId>,
    block_time: TimestampMs,
}

/// Where one block's output goes while it executes.
struct BlockOut {
    events: Vec<LedgerEvent>,
    committed: Vec<CommittedItem>,
}

impl Ledger {
    /// The state after genesis: accounts funded in order of first appearance (the fee account
    /// first, as index 0), empty books.
    pub fn from_genesis(genesis: &Genesis) -> Result<Ledger, GenesisError> {
        let mut ledger = Ledger::empty(genesis)?;
        ledger.account_or_create(&genesis.fee_account);
        for alloc in &genesis.allocations {
            let idx = ledger.account_or_create(&alloc.account);
            let pos = ledger
                .asset_pos(alloc.asset)
                .expect("bug: validated allocation asset");
            let bal = &mut ledger.accounts[idx.0 as usize].balances[pos];
            bal.free = bal
                .free
                .checked_add(alloc.amount.0)
                .expect("bug: validated supply overflows");
        }
        ledger.by_id.compact();
        ledger.compute_state_root();
        ledger.last_changed_accounts = (0..ledger.accounts.len() as u32).collect();
        Ok(ledger)
    }

    /// A ledger with genesis validated but no accounts: the base of `from_genesis` and of
    /// restoring a snapshot.
    pub(crate) fn empty(genesis: &Genesis) -> Result<Ledger, GenesisError> {
        let valid = genesis.validate()?;
        let assets: Vec<AssetId> = genesis.assets.iter().map(|a| a.id).collect();
        let pos = |id: AssetId| {
            assets
                .binary_search(&id)
                .expect("bug: validated market asset")
        };
        let config = BookConfig::new(
            genesis.limits.max_book_orders,
            genesis.limits.max_order_size_lots,
        )
        .expect("bug: validated limits give a valid book config");
        let markets = valid
            .markets
            .into_iter()
            .map(|market| MarketState {
                base: pos(market.spec().base),
                quote: pos(market.spec().quote),
                market,
                book: OrderBook::new(config),
            })
            .collect();
        Ok(Ledger {
            meta: Meta {
                genesis_hash: valid.hash,
                height: 0,
                last_block_time: genesis.genesis_time,
                next_order_id: 1,
                next_priority: 0,
                next_receipt: 0,
                withdrawn: vec![0; assets.len()],
                accounts: 0,
            },
            genesis: Arc::new(genesis.clone()),
            assets,
            markets,
            accounts: Accounts::default(),
            by_id: AccountLookup::default(),
            orders: OrderMap::default(),
            free_slots: BTreeSet::new(),
            slot_end: 0,
            dead_man: Arc::default(),
            account_tree: IndexedMerkleTree::new(),
            order_tree: IndexedMerkleTree::new(),
            state_root: Hash::ZERO,
            account_dirty: DirtyFlags::default(),
            dirty_accounts: Vec::new(),
            dirty_orders: Vec::new(),
            cleared_slots: Vec::new(),
            last_changed_accounts: Vec::new(),
            last_changed_orders: Vec::new(),
            agents_touched: Vec::new(),
            book_events: Vec::new(),
        })
    }

    // ---------------------------------------------------------------- queries

    /// The genesis this chain started from.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Height of the last executed block (0 at genesis).
    pub fn height(&self) -> u64 {
        self.meta.height
    }

    /// Time of the last executed block (the genesis time before the first).
    pub fn last_block_time(&self) -> TimestampMs {
        self.meta.last_block_time
    }

    /// The state root after the last executed block.
    pub fn state_root(&self) -> Hash {
        self.state_root
    }

    /// The account with this key.
    pub fn account(&self, id: &AccountId) -> Option<&Account> {
        self.by_id
            .get(&AccountKey::of(id))
            .map(|i| &self.accounts[i.0 as usize])
    }

    /// The account with this index.
    pub fn account_by_index(&self, index: AccountIndex) -> Option<&Account> {
        self.accounts.get(index.0 as usize)
    }

    /// Every account, by index (read it like a slice: `accounts()[i]`, `.iter()`, `.len()`).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The listed assets, in the order balances are kept.
    pub fn assets(&self) -> &[AssetId] {
        &self.assets
    }

    /// An account's balance of an asset (zero for an unknown account or asset).
    pub fn balance(&self, id: &AccountId, asset: AssetId) -> Balance {
        match (self.account(id), self.asset_pos(asset)) {
            (Some(a), Some(p)) => a.balances[p],
            _ => Balance::default(),
        }
    }

    /// Total withdrawn so far per asset, in asset order.
    pub fn withdrawn(&self) -> Vec<(AssetId, u128)> {
        self.assets
            .iter()
            .copied()
            .zip(self.meta.withdrawn.iter().copied())
            .collect()
    }

    /// The open order with this id.
    pub fn order(&self, id: OrderId) -> Option<&OpenOrder> {
        self.orders.get(&id)
    }

    /// Every open order, by id.
    pub fn open_orders(&self) -> Vec<&OpenOrder> {
        let mut all: Vec<&OpenOrder> = self.orders.values().collect();
        all.sort_unstable_by_key(|o| o.id);
        all
    }

    /// The validated market with this id.
    pub fn market(&self, id: MarketId) -> Option<&Market> {
        self.market_pos(id).map(|m| &self.markets[m].market)
    }

    /// The order book of a market.
    pub fn book(&self, id: MarketId) -> Option<&OrderBook> {
        self.market_pos(id).map(|m| &self.markets[m].book)
    }

    /// What an order must hold locked: for a buy, the notional at its limit price plus the
    /// fee bound ([`Market::buy_lock`]); for a sell, its size in base ([`Market::sell_lock`]).
    pub fn order_needs(&self, order: &OpenOrder) -> u128 {
        let m = self
            .market_pos(order.market)
            .expect("bug: order in an unlisted market");
        lock_for(
            &self.markets[m].market,
            order.side,
            order.price,
            order.remaining,
        )
    }

    pub(crate) fn asset_pos(&self, asset: AssetId) -> Option<usize> {
        self.assets.binary_search(&asset).ok()
    }

    pub(crate) fn market_pos(&self, market: MarketId) -> Option<usize> {
        self.markets
            .binary_search_by_key(&market, |m| m.market.id())
            .ok()
    }

    // ---------------------------------------------------------------- admission

    /// A cheap admission check for the mempool, at time `now`: chain id, expiry, structure,
    /// signer authority, nonce, listed markets and assets, and that free funds cover what the
    /// transaction would lock or move. It does not change the state, and it cannot see what
    /// other transactions of the same block will do, so a transaction it admits may still be
    /// rejected in execution.
    pub fn check_transaction(
        &self,
        signed: &SignedTransaction,
        now: TimestampMs,
    ) -> Result<(), Rejection> {
        let tx = &signed.tx;
        let idx = self.check_envelope(tx, now)?;
        let account = &self.accounts[idx.0 as usize];
        let window = match self.agent_of(account, tx) {
            Some(agent) => &agent.nonces,
            None => &account.nonces,
        };
        window.check(tx.nonce).map_err(Rejection::Nonce)?;
        let agent = self.agent_of(account, tx);
        let need = |asset: usize, amount: u128| {
            let free = account.balances[asset].free;
            if free < amount {
                Err(Rejection::InsufficientFunds {
                    asset: self.assets[asset],
                    needed: Amount(amount),
                    available: Amount(free),
                })
            } else {
                Ok(())
            }
        };
        match &tx.action {
            Action::Batch(batch) => {
                let mut spend: Vec<(usize, u128)> = Vec::new();
                for leg in &batch.legs {
                    let market = match leg {
                        BatchLeg::Place(req) => req.market,
                        BatchLeg::Cancel(CancelTarget::Market(m)) => *m,
                        BatchLeg::Cancel(_) => continue,
                    };
                    let m = self
                        .market_pos(market)
                        .ok_or(Rejection::UnknownMarket { market })?;
                    if let Some(agent) = agent
                        && !agent.policy.markets.allows(market)
                    {
                        return Err(Rejection::AgentMarket { market });
                    }
                    if let BatchLeg::Place(req) = leg {
                        let ms = &self.markets[m];
                        let (asset, lock) = match req.side {
                            Side::Buy => {
                                (ms.quote, ms.market.buy_lock(req.price_ticks, req.size_lots))
                            }
                            Side::Sell => (ms.base, ms.market.sell_lock(req.size_lots)),
                        };
                        let lock = lock.map_err(|_| Rejection::SizeTooLarge {
                            size: req.size_lots,
                            max: self.genesis.limits.max_order_size_lots,
                        })?;
                        spend.push((asset, lock.0));
                    }
                }
                for asset in 0..self.assets.len() {
                    let total = spend
                        .iter()
                        .filter(|(a, _)| *a == asset)
                        .fold(0u128, |s, (_, x)| s.saturating_add(*x));
                    need(asset, total)?;
                }
                Ok(())
            }
            Action::Modify(modify) => {
                let order = self
                    .orders
                    .get(&modify.order_id)
                    .filter(|o| o.owner == idx)
                    .ok_or(Rejection::UnknownOrder {
                        order_id: modify.order_id,
                    })?;
                if let Some(agent) = agent
                    && !agent.policy.markets.allows(order.market)
                {
                    return Err(Rejection::AgentMarket {
                        market: order.market,
                    });
                }
                Ok(())
            }
            Action::Transfer(t) => {
                let p = self
                    .asset_pos(t.asset)
                    .ok_or(Rejection::UnknownAsset { asset: t.asset })?;
                need(p, t.amount.0)
            }
            Action::Withdraw(w) => {
                let p = self
                    .asset_pos(w.asset)
                    .ok_or(Rejection::UnknownAsset { asset: w.asset })?;
                need(p, w.amount.0)
            }
            Action::ScheduleCancelAll(_) | Action::ApproveAgent(_) | Action::RevokeAgent(_) => {
                Ok(())
            }
        }
    }

    fn agent_of<'a>(&self, account: &'a Account, tx: &Transaction) -> Option<&'a Agent> {
        if tx.is_signed_by_agent() {
            account.agents.get(&tx.signer)
        } else {
            None
        }
    }

    /// Checks that need no nonce: chain, expiry, structure, account, signer authority.
    fn check_envelope(
        &self,
        tx: &Transaction,
        now: TimestampMs,
    ) -> Result<AccountIndex, Rejection> {
        if tx.chain_id != self.genesis.chain_id {
            return Err(Rejection::WrongChain {
                expected: self.genesis.chain_id,
                got: tx.chain_id,
            });
        }
        if now > tx.expires_at {
            return Err(Rejection::Expired {
                expires_at: tx.expires_at,
                block_time: now,
            });
        }
        if tx.is_signed_by_agent() && !tx.action.agent_may_sign() {
            return Err(Rejection::AgentAction {
                action: tx.action.name(),
            });
        }
        tx.validate().map_err(Rejection::Invalid)?;
        let idx =
            *self
                .by_id
                .get(&AccountKey::of(&tx.account))
                .ok_or(Rejection::UnknownAccount {
                    account: tx.account,
                })?;
        if tx.is_signed_by_agent() {
            let agent = self.accounts[idx.0 as usize]
                .agents
                .get(&tx.signer)
                .ok_or(Rejection::NotAnAgent { signer: tx.signer })?;
            if now >= agent.policy.expires_at {
                return Err(Rejection::AgentExpired {
                    expires_at: agent.policy.expires_at,
                });
            }
        }
        Ok(idx)
    }

    // ---------------------------------------------------------------- blocks

    /// Execute a block: expire good-til-time orders and fire dead-man switches due at
    /// `time`, run `txs` in the canonical order (non-order actions, cancels, post-only
    /// placements, other orders; inside each class by
    /// [`canonical_order_key`]`(parent_hash, tx hash)`), then compute the state and fills
    /// roots.
    ///
    /// Signatures must already be verified: the node verifies them in parallel, off this
    /// serial path. Every other check happens here, and a failing transaction becomes a
    /// typed [`Rejection`] in its [`TxOutcome`], never a panic and never a balance change.
    /// The order of `txs` does not matter.
    pub fn execute_block(
        &mut self,
        parent_hash: Hash,
        time: TimestampMs,
        txs: &[SignedTransaction],
    ) -> Result<BlockResult, BlockError> {
        let ids: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
        self.execute_block_with_ids(parent_hash, time, txs, &ids)
    }

    /// [`Ledger::execute_block`] with the transaction ids already computed (`ids[i]` must be
    /// `txs[i].hash()`): the node hashes every transaction when it checks its signature, so
    /// the serial path need not hash it again.
    ///
    /// # Panics
    /// If `ids` and `txs` differ in length (a caller bug).
    pub fn execute_block_with_ids(
        &mut self,
        parent_hash: Hash,
        time: TimestampMs,
        txs: &[SignedTransaction],
        ids: &[Hash],
    ) -> Result<BlockResult, BlockError> {
        let mut result = self.apply_block(parent_hash, time, txs, ids)?;
        self.finish_roots(&mut result);
        Ok(result)
    }

    /// The first half of [`Ledger::execute_block_with_ids`]: every state change, but no
    /// roots (`state_root` and `fills_root` are left zero). Follow it with
    /// [`Ledger::finish_roots`]; the split exists so the cost of hashing can be measured
    /// (and, in a node, overlapped) apart from matching and the ledger.
    ///
    /// # Panics
    /// If `ids` and `txs` differ in length (a caller bug).
    pub fn apply_block(
        &mut self,
        parent_hash: Hash,
        time: TimestampMs,
        txs: &[SignedTransaction],
        ids: &[Hash],
    ) -> Result<BlockResult, BlockError> {
        assert_eq!(
            txs.len(),
            ids.len(),
            "bug: a block's transaction ids do not match its transactions"
        );
        debug_assert!(txs.iter().zip(ids).all(|(t, id)| t.hash() == *id));
        if time < self.meta.last_block_time {
            return Err(BlockError::TimeWentBackwards {
                time,
                previous: self.meta.last_block_time,
            });
        }
        let height = self.meta.height + 1;
        self.meta.height = height;
        self.meta.last_block_time = time;
        let mut out = BlockOut {
            events: Vec::with_capacity(txs.len() * 3),
            committed: Vec::with_capacity(txs.len()),
        };
        self.orders.reserve(txs.len());
        self.start_of_block(time, height, &mut out);

        // Sort by (class, first 8 bytes of the key, whole key): the same order as
        // (class, key), with most comparisons settled by two integers.
        let mut order: Vec<(u8, u64, Hash, u32)> = txs
            .iter()
            .zip(ids)
            .enumerate()
            .map(|(i, (signed, id))| {
                let class = signed.tx.action.execution_class() as u8;
                let key = canonical_order_key(&parent_hash, id);
                let prefix = u64::from_be_bytes(key.0[..8].try_into().expect("8 bytes"));
                (class, prefix, key, i as u32)
            })
            .collect();
        order.sort_unstable();

        let mut outcomes = Vec::with_capacity(txs.len());
        for (_, _, _, i) in order {
            let i = i as usize;
            let first_event = out.events.len() as u32;
            let mut outcome = self.execute_tx(ids[i], &txs[i].tx, time, height, &mut out);
            outcome.first_event = first_event;
            outcome.end_event = out.events.len() as u32;
            outcomes.push(outcome);
        }
        self.end_of_block();
        Ok(BlockResult {
            height,
            time,
            parent_hash,
            outcomes,
            events: out.events,
            committed: out.committed,
            state_root: Hash::ZERO,
            fills_root: Hash::ZERO,
        })
    }

    /// The second half of [`Ledger::execute_block`]: the state root (incrementally, from
    /// what changed) and the fills root of `result`.
    pub fn finish_roots(&mut self, result: &mut BlockResult) {
        result.state_root = self.compute_state_root();
        result.fills_root = dex_types::merkle::root(&result.committed_leaves());
    }

    /// Expiries and dead-man switches due at `time`.
    fn start_of_block(&mut self, time: TimestampMs, height: u64, out: &mut BlockOut) {
        for m in 0..self.markets.len() {
            let mut events = std::mem::take(&mut self.book_events);
            events.clear();
            self.markets[m].book.expire_until(time, &mut events);
            self.apply_book_events(m, &events, CancelCause::User, None, height, out)
                .expect("bug: expiry was refused");
            self.book_events = events;
        }
        while let Some(&(at, idx)) = self.dead_man.first() {
            if at > time {
                break;
            }
            Arc::make_mut(&mut self.dead_man).pop_first();
            self.accounts[idx.0 as usize].cancel_all_at = None;
            self.mark_account(idx);
            out.events.push(LedgerEvent::DeadManSwitchFired {
                account: self.accounts[idx.0 as usize].id,
                at,
            });
            for m in 0..self.markets.len() {
                self.cancel_all_in(m, idx, CancelCause::DeadManSwitch, height, out);
            }
        }
    }

    /// Revocations take effect (each revoked key leaves a nonce floor behind, see
    /// [`Account::retire_agent`]) and agents' per-block counters reset.
    fn end_of_block(&mut self) {
        let max_floors = self.genesis.limits.max_agents_per_account as usize;
        for (idx, agent) in std::mem::take(&mut self.agents_touched) {
            let account = &mut self.accounts[idx.0 as usize];
            let remove = match account.agents.get_mut(&agent) {
                Some(a) => {
                    a.used_in_block = 0;
                    a.revoked
                }
                None => false,
            };
            if remove {
                account.retire_agent(&agent, max_floors);
                self.mark_account(idx);
            }
        }
    }

    fn execute_tx(
        &mut self,
        hash: Hash,
        tx: &Transaction,
        time: TimestampMs,
        height: u64,
        out: &mut BlockOut,
    ) -> TxOutcome {
        let mut outcome = TxOutcome {
            tx: hash,
            result: Ok(()),
            leg_rejections: Vec::new(),
            nonce_consumed: false,
            first_event: 0,
            end_event: 0,
        };
        let idx = match self.check_envelope(tx, time) {
            Ok(idx) => idx,
            Err(r) => {
                outcome.result = Err(r);
                return outcome;
            }
        };
        let account = &mut self.accounts[idx.0 as usize];
        let window = if tx.is_signed_by_agent() {
            &mut account
                .agents
                .get_mut(&tx.signer)
                .expect("bug: agent checked by check_envelope")
                .nonces
        } else {
            &mut account.nonces
        };
        if let Err(e) = window.consume(tx.nonce) {
            outcome.result = Err(Rejection::Nonce(e));
            return outcome;
        }
        outcome.nonce_consumed = true;
        self.mark_account(idx);
        let ctx = Ctx {
            account: idx,
            agent: tx.is_signed_by_agent().then_some(tx.signer),
            block_time: time,
        };
        if let Some(agent) = ctx.agent {
            self.agents_touched.push((idx, agent));
        }
        outcome.result = match &tx.action {
            Action::Batch(batch) => {
                self.execute_batch(ctx, hash, batch, height, out, &mut outcome.leg_rejections)
            }
            Action::Modify(modify) => self.execute_modify(ctx, modify, height, out),
            Action::ScheduleCancelAll(s) => {
                self.schedule_cancel_all(idx, s.at, out);
                Ok(())
            }
            Action::Transfer(t) => self.transfer(idx, t.to, t.asset, t.amount, out),
            Action::Withdraw(w) => {
                self.withdraw(idx, hash, w.asset, w.amount, &w.destination, height, out)
            }
            Action::ApproveAgent(a) => self.approve_agent(idx, a.agent, &a.policy, out),
            Action::RevokeAgent(r) => self.revoke_agent(idx, r.agent, out),
        };
        outcome
    }

    // ---------------------------------------------------------------- non-order actions

    fn schedule_cancel_all(
        &mut self,
        idx: AccountIndex,
        at: Option<TimestampMs>,
        out: &mut BlockOut,
    ) {
        let account = &mut self.accounts[idx.0 as usize];
        if let Some(old) = account.cancel_all_at.take() {
            Arc::make_mut(&mut self.dead_man).remove(&(old, idx));
        }
        account.cancel_all_at = at;
        if let Some(at) = at {
            Arc::make_mut(&mut self.dead_man).insert((at, idx));
        }
        out.events.push(LedgerEvent::CancelAllScheduled {
            account: account.id,
            at,
        });
        self.mark_account(idx);
    }

    fn transfer(
        &mut self,
        from: AccountIndex,
        to: AccountId,
        asset: AssetId,
        amount: Amount,
        out: &mut BlockOut,
    ) -> Result<(), Rejection> {
        let p = self
            .asset_pos(asset)
            .ok_or(Rejection::UnknownAsset { asset })?;
        self.require_free(from, p, amount.0)?;
        if !self.by_id.contains_key(&AccountKey::of(&to))
            && self.accounts.len() as u64 >= u64::from(self.genesis.limits.max_accounts)
        {
            return Err(Rejection::TooManyAccounts {
                max: self.genesis.limits.max_accounts,
            });
        }
        let to_idx = self.account_or_create(&to);
        self.accounts[from.0 as usize].balances[p].free -= amount.0;
        let bal = &mut self.accounts[to_idx.0 as usize].balances[p];
        bal.free = bal
            .free
            .checked_add(amount.0)
            .expect("bug: a balance above total supply");
        self.mark_account(from);
        self.mark_account(to_idx);
        out.events.push(LedgerEvent::Transferred {
            from: self.accounts[from.0 as usize].id,
            to,
            asset,
            amount,
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn withdraw(
        &mut self,
        idx: AccountIndex,
        tx: Hash,
        asset: AssetId,
        amount: Amount,
        destination: &[u8],
        height: u64,
        out: &mut BlockOut,
    ) -> Result<(), Rejection> {
        let p = self
            .asset_pos(asset)
            .ok_or(Rejection::UnknownAsset { asset })?;
        self.require_free(idx, p, amount.0)?;
        self.accounts[idx.0 as usize].balances[p].free -= amount.0;
        self.meta.withdrawn[p] = self.meta.withdrawn[p]
            .checked_add(amount.0)
            .expect("bug: withdrawn above total supply");
        let sequence = self.meta.next_receipt;
        self.meta.next_receipt += 1;
        self.mark_account(idx);
        let index = out.committed.len() as u32;
        out.committed
            .push(CommittedItem::Withdrawal(WithdrawalReceipt {
                height,
                sequence,
                tx,
                account: self.accounts[idx.0 as usize].id,
                asset,
                amount,
                destination: destination.to_vec(),
            }));
        out.events.push(LedgerEvent::Withdrawn { index });
        Ok(())
    }

    fn approve_agent(
        &mut self,
        idx: AccountIndex,
        agent: AccountId,
        policy: &dex_types::AgentPolicy,
        out: &mut BlockOut,
    ) -> Result<(), Rejection> {
        let max = self.genesis.limits.max_agents_per_account;
        let account = &mut self.accounts[idx.0 as usize];
        match account.agents.get_mut(&agent) {
            Some(existing) => {
                // A new policy replaces the old; the nonce window stays, so the agent's
                // earlier transactions cannot be replayed. A pending revocation is undone.
                existing.policy = policy.clone();
                existing.revoked = false;
            }
            None => {
                if account.agents.len() as u64 >= u64::from(max) {
                    return Err(Rejection::TooManyAgents { max });
                }
                // A key revoked earlier starts above every nonce it used before, so its old
                // signed transactions stay spent (see `Account::retire_agent`).
                let nonces = account.new_agent_window(&agent);
                account.agents.insert(
                    agent,
                    Agent {
                        policy: policy.clone(),
                        nonces,
                        revoked: false,
                        used_in_block: 0,
                    },
                );
            }
        }
        out.events.push(LedgerEvent::AgentApproved {
            account: account.id,
            agent,
        });
        self.mark_account(idx);
        Ok(())
    }

    fn revoke_agent(
        &mut self,
        idx: AccountIndex,
        agent: AccountId,
        out: &mut BlockOut,
    ) -> Result<(), Rejection> {
        let account = &mut self.accounts[idx.0 as usize];
        let a = account
            .agents
            .get_mut(&agent)
            .ok_or(Rejection::UnknownAgent { agent })?;
        a.revoked = true;
        out.events.push(LedgerEvent::AgentRevoked {
            account: account.id,
            agent,
        });
        self.agents_touched.push((idx, agent));
        Ok(())
    }

    fn require_free(&self, idx: AccountIndex, asset: usize, amount: u128) -> Result<(), Rejection> {
        let free = self.accounts[idx.0 as usize].balances[asset].free;
        if free < amount {
            return Err(Rejection::InsufficientFunds {
                asset: self.assets[asset],
                needed: Amount(amount),
                available: Amount(free),
            });
        }
        Ok(())
    }

    // ---------------------------------------------------------------- orders

    fn execute_batch(
        &mut self,
        ctx: Ctx,
        tx: Hash,
        batch: &OrderBatch,
        height: u64,
        out: &mut BlockOut,
        leg_rejections: &mut Vec<(u16, Rejection)>,
    ) -> Result<(), Rejection> {
        let _ = tx;
        if batch.atomic && batch.legs.len() > 1 {
            // Check every leg against the state as the earlier legs would leave it; only if
            // all pass does any apply. The checks are conservative where matching could
            // differ (see `check_place`), so no leg can then fail while applying.
            let mut sim = BatchSim::default();
            for (i, leg) in batch.legs.iter().enumerate() {
                let r = match leg {
                    BatchLeg::Place(req) => self.check_place(ctx, req, Some(&mut sim)).map(|_| ()),
                    BatchLeg::Cancel(target) => self.simulate_cancel(ctx, target, &mut sim),
                };
                if let Err(reason) = r {
                    return Err(Rejection::BatchLeg {
                        leg: i as u16,
                        reason: Box::new(reason),
                    });
                }
            }
            for leg in &batch.legs {
                match self.execute_leg(ctx, leg, height, out) {
                    Ok(()) => {}
                    // An earlier leg's self-trade prevention may already have cancelled
                    // the order this leg cancels: the cancel's purpose is met.
                    Err(Rejection::UnknownOrder { .. } | Rejection::UnknownClientOrder { .. })
                        if matches!(leg, BatchLeg::Cancel(_)) => {}
                    Err(reason) => {
                        panic!("bug: an atomic batch leg failed after its checks passed: {reason}")
                    }
                }
            }
            Ok(())
        } else {
            let mut applied = 0;
            for (i, leg) in batch.legs.iter().enumerate() {
                match self.execute_leg(ctx, leg, height, out) {
                    Ok(()) => applied += 1,
                    Err(reason) if batch.legs.len() == 1 => return Err(reason),
                    Err(reason) => leg_rejections.push((i as u16, reason)),
                }
            }
            if applied == 0 {
                let (leg, reason) = leg_rejections.remove(0);
                return Err(Rejection::BatchLeg {
                    leg,
                    reason: Box::new(reason),
                });
            }
            Ok(())
        }
    }

    fn execute_leg(
        &mut self,
        ctx: Ctx,
        leg: &BatchLeg,
        height: u64,
        out: &mut BlockOut,
    ) -> Result<(), Rejection> {
        match leg {
            BatchLeg::Place(req) => {
                let check = self.check_place(ctx, req, None)?;
                self.place(ctx, req, check, height, out)
            }
            BatchLeg::Cancel(target) => self.cancel(ctx, target, height, out),
        }
    }

    fn agent_policy(&self, ctx: Ctx) -> Option<&Agent> {
        ctx.agent
            .map(|a| &self.accounts[ctx.account.0 as usize].agents[&a])
    }

    /// Every check of a placement; with `sim`, against the state after the earlier legs of
    /// an atomic batch (and the leg is then recorded in `sim`).
    fn check_place(
        &self,
        ctx: Ctx,
        req: &OrderRequest,
        sim: Option<&mut BatchSim>,
    ) -> Result<PlaceCheck, Rejection> {
        let m = self
            .market_pos(req.market)
            .ok_or(Rejection::UnknownMarket { market: req.market })?;
        if let Some(agent) = self.agent_policy(ctx) {
            if !agent.policy.markets.allows(req.market) {
                return Err(Rejection::AgentMarket { market: req.market });
            }
            let planned = sim.as_ref().map_or(0, |s| s.agent_orders);
            if agent.used_in_block + planned >= agent.policy.max_orders_per_block {
                return Err(Rejection::AgentRate {
                    max: agent.policy.max_orders_per_block,
                });
            }
        }
        let limits = &self.genesis.limits;
        let ms = &self.markets[m];
        if req.size_lots < ms.market.min_size_lots() {
            return Err(Rejection::SizeBelowMinimum {
                size: req.size_lots,
                min: ms.market.min_size_lots(),
            });
        }
        if req.size_lots > limits.max_order_size_lots {
            return Err(Rejection::SizeTooLarge {
                size: req.size_lots,
                max: limits.max_order_size_lots,
            });
        }
        if req.price_ticks > limits.max_price_ticks {
            return Err(Rejection::PriceTooHigh {
                price: req.price_ticks,
                max: limits.max_price_ticks,
            });
        }
        if let TimeInForce::Gtt { expires_at } = req.time_in_force
            && expires_at <= ctx.block_time
        {
            return Err(Rejection::OrderAlreadyExpired { expires_at });
        }
        let account = &self.accounts[ctx.account.0 as usize];
        if let Some(cid) = req.client_order_id {
            let taken = account.client_orders.contains_key(&cid)
                && !sim
                    .as_ref()
                    .is_some_and(|s| s.freed_client_ids.contains(&cid));
            let planned = sim
                .as_ref()
                .is_some_and(|s| s.new_client_ids.contains(&cid));
            if taken || planned {
                return Err(Rejection::DuplicateClientOrderId {
                    client_order_id: cid,
                });
            }
        }
        let may_rest = req.order_type == OrderType::Limit
            && matches!(
                req.time_in_force,
                TimeInForce::Gtc | TimeInForce::Gtt { .. } | TimeInForce::PostOnly
            );
        if may_rest {
            let open = i64::from(account.open_orders) + sim.as_ref().map_or(0, |s| s.open_delta);
            if open >= i64::from(limits.max_open_orders_per_account) {
                return Err(Rejection::TooManyOpenOrders {
                    max: limits.max_open_orders_per_account,
                });
            }
            let planned = sim
                .as_ref()
                .map_or(0, |s| s.resting.iter().filter(|r| r.0 == m).count());
            if ms.book.len() + planned >= limits.max_book_orders as usize {
                return Err(Rejection::BookFull { market: req.market });
            }
        }
        if req.time_in_force == TimeInForce::PostOnly {
            let crosses = |best: PriceTicks| match req.side {
                Side::Buy => best <= req.price_ticks,
                Side::Sell => best >= req.price_ticks,
            };
            let opposite = req.side.opposite();
            let book_cross = ms.book.best(opposite).is_some_and(crosses);
            // Conservative for atomic batches: an earlier leg's order on the other side is
            // assumed to rest, so a post-only leg that could meet it fails the batch up front.
            let own_cross = sim.as_ref().is_some_and(|s| {
                s.resting
                    .iter()
                    .any(|&(rm, side, price)| rm == m && side == opposite && crosses(price))
            });
            if book_cross || own_cross {
                return Err(Rejection::PostOnlyWouldCross);
            }
        }
        let (asset, lock) = match req.side {
            Side::Buy => (ms.quote, ms.market.buy_lock(req.price_ticks, req.size_lots)),
            Side::Sell => (ms.base, ms.market.sell_lock(req.size_lots)),
        };
        let lock = lock
            .expect("bug: genesis limits keep every lock within 128 bits")
            .0;
        let free = account.balances[asset].free;
        let (extra, spent) = sim.as_ref().map_or((0, 0), |s| {
            (
                BatchSim::amount(&s.released, asset),
                BatchSim::amount(&s.spent, asset),
            )
        });
        let available = free
            .checked_add(extra)
            .expect("bug: released funds above supply")
            .saturating_sub(spent);
        if available < lock {
            return Err(Rejection::InsufficientFunds {
                asset: self.assets[asset],
                needed: Amount(lock),
                available: Amount(available),
            });
        }
        if let Some(s) = sim {
            s.spent.push((asset, lock));
            if let Some(cid) = req.client_order_id {
                s.new_client_ids.push(cid);
            }
            if may_rest {
                s.open_delta += 1;
                s.resting.push((m, req.side, req.price_ticks));
            }
            if ctx.agent.is_some() {
                s.agent_orders += 1;
            }
        }
        Ok(PlaceCheck {
            market: m,
            asset,
            lock,
        })
    }

    /// The orders a cancel leg would remove, recorded in `sim`.
    fn simulate_cancel(
        &self,
        ctx: Ctx,
        target: &CancelTarget,
        sim: &mut BatchSim,
    ) -> Result<(), Rejection> {
        let ids = self.cancel_targets(ctx, target, Some(sim))?;
        for id in ids {
            let order = &self.orders[&id];
            let m = self
                .market_pos(order.market)
                .expect("bug: order in an unlisted market");
            let asset = match order.side {
                Side::Buy => self.markets[m].quote,
                Side::Sell => self.markets[m].base,
            };
            sim.released.push((asset, order.locked.0));
            sim.cancelled.push(id);
            sim.open_delta -= 1;
            if let Some(cid) = order.client_order_id {
                sim.freed_client_ids.push(cid);
            }
        }
        Ok(())
    }

    /// The open orders a cancel names (checked against the agent's markets).
    fn cancel_targets(
        &self,
        ctx: Ctx,
        target: &CancelTarget,
        sim: Option<&BatchSim>,
    ) -> Result<Vec<OrderId>, Rejection> {
        let agent = self.agent_policy(ctx);
        let allowed = |market: MarketId| agent.is_none_or(|a| a.policy.markets.allows(market));
        let gone = |id: &OrderId| sim.is_some_and(|s| s.cancelled.contains(id));
        let account = &self.accounts[ctx.account.0 as usize];
        let single = |id: OrderId, unknown: Rejection| {
            let order = self
                .orders
                .get(&id)
                .filter(|o| o.owner == ctx.account && !gone(&id))
                .ok_or(unknown)?;
            if !allowed(order.market) {
                return Err(Rejection::AgentMarket {
                    market: order.market,
                });
            }
            Ok(vec![id])
        };
        match *target {
            CancelTarget::Order(id) => single(id, Rejection::UnknownOrder { order_id: id }),
            CancelTarget::ClientOrder(cid) => {
                let unknown = Rejection::UnknownClientOrder {
                    client_order_id: cid,
                };
                let id = *account.client_orders.get(&cid).ok_or(unknown.clone())?;
                single(id, unknown)
            }
            CancelTarget::Market(market) => {
                let m = self
                    .market_pos(market)
                    .ok_or(Rejection::UnknownMarket { market })?;
                if !allowed(market) {
                    return Err(Rejection::AgentMarket { market });
                }
                Ok(self.markets[m]
                    .book
                    .owner_orders(ctx.account)
                    .into_iter()
                    .map(|v| v.id)
                    .filter(|id| !gone(id))
                    .collect())
            }
            CancelTarget::All => Ok(self
                .markets
                .iter()
                .filter(|ms| allowed(ms.market.id()))
                .flat_map(|ms| ms.book.owner_orders(ctx.account))
                .map(|v| v.id)
                .filter(|id| !gone(id))
                .collect()),
        }
    }

    fn place(
        &mut self,
        ctx: Ctx,
        req: &OrderRequest,
        check: PlaceCheck,
        height: u64,
        out: &mut BlockOut,
    ) -> Result<(), Rejection> {
        let id = OrderId(self.meta.next_order_id);
        self.meta.next_order_id += 1;
        // Lock first; the engine's events then settle from the lock. One write access to
        // the account for all of it: each costs a copy-on-write check (see `crate::cow`).
        let account = &mut self.accounts[ctx.account.0 as usize];
        let bal = &mut account.balances[check.asset];
        bal.free -= check.lock;
        bal.locked += check.lock;
        account.open_orders += 1;
        if let Some(cid) = req.client_order_id {
            account.client_orders.insert(cid, id);
        }
        if let Some(agent) = ctx.agent {
            account
                .agents
                .get_mut(&agent)
                .expect("bug: agent checked")
                .used_in_block += 1;
        }
        self.orders.insert(
            id,
            OpenOrder {
                id,
                owner: ctx.account,
                market: req.market,
                client_order_id: req.client_order_id,
                side: req.side,
                price: req.price_ticks,
                remaining: req.size_lots,
                tif: req.time_in_force,
                stp: req.self_trade,
                locked: Amount(check.lock),
                priority: 0,
                slot: None,
            },
        );
        self.mark_account(ctx.account);
        let mut events = std::mem::take(&mut self.book_events);
        events.clear();
        self.markets[check.market].book.place(
            NewOrder {
                id,
                owner: ctx.account,
                side: req.side,
                order_type: req.order_type,
                price: req.price_ticks,
                size: req.size_lots,
                tif: req.time_in_force,
                stp: req.self_trade,
            },
            &mut events,
        );
        let r = self.apply_book_events(
            check.market,
            &events,
            CancelCause::User,
            Some(req.client_order_id),
            height,
            out,
        );
        self.book_events = events;
        if let Err(reason) = r {
            // The engine refused the order before it changed anything: undo the lock.
            self.remove_order(id);
            return Err(reason);
        }
        Ok(())
    }

    fn cancel(
        &mut self,
        ctx: Ctx,
        target: &CancelTarget,
        height: u64,
        out: &mut BlockOut,
    ) -> Result<(), Rejection> {
        match *target {
            CancelTarget::Order(_) | CancelTarget::ClientOrder(_) => {
                let ids = self.cancel_targets(ctx, target, None)?;
                for id in ids {
                    let m = self
                        .market_pos(self.orders[&id].market)
                        .expect("bug: order in an unlisted market");
                    let mut events = std::mem::take(&mut self.book_events);
                    events.clear();
                    self.markets[m].book.cancel(id, &mut events);
                    let r =
                        self.apply_book_events(m, &events, CancelCause::User, None, height, out);
                    self.book_events = events;
                    r.expect("bug: an open order is missing from its book");
                }
                Ok(())
            }
            CancelTarget::Market(market) => {
                let m = self
                    .market_pos(market)
                    .ok_or(Rejection::UnknownMarket { market })?;
                if let Some(agent) = self.agent_policy(ctx)
                    && !agent.policy.markets.allows(market)
                {
                    return Err(Rejection::AgentMarket { market });
                }
                self.cancel_all_in(m, ctx.account, CancelCause::User, height, out);
                Ok(())
            }
            CancelTarget::All => {
                for m in 0..self.markets.len() {
                    let allowed = self
                        .agent_policy(ctx)
                        .is_none_or(|a| a.policy.markets.allows(self.markets[m].market.id()));
                    if allowed {
                        self.cancel_all_in(m, ctx.account, CancelCause::User, height, out);
                    }
                }
                Ok(())
            }
        }
    }

    fn cancel_all_in(
        &mut self,
        m: usize,
        owner: AccountIndex,
        cause: CancelCause,
        height: u64,
        out: &mut BlockOut,
    ) {
        let mut events = std::mem::take(&mut self.book_events);
        events.clear();
        self.markets[m].book.cancel_all(owner, &mut events);
        let r = self.apply_book_events(m, &events, cause, None, height, out);
        self.book_events = events;
        r.expect("bug: cancel-all was refused");
    }

    fn execute_modify(
        &mut self,
        ctx: Ctx,
        modify: &ModifyOrder,
        height: u64,
        out: &mut BlockOut,
    ) -> Result<(), Rejection> {
        let order = self
            .orders
            .get(&modify.order_id)
            .filter(|o| o.owner == ctx.account)
            .ok_or(Rejection::UnknownOrder {
                order_id: modify.order_id,
            })?;
        if let Some(agent) = self.agent_policy(ctx) {
            if !agent.policy.markets.allows(order.market) {
                return Err(Rejection::AgentMarket {
                    market: order.market,
                });
            }
            if agent.used_in_block >= agent.policy.max_orders_per_block {
                return Err(Rejection::AgentRate {
                    max: agent.policy.max_orders_per_block,
                });
            }
        }
        let price = modify.price_ticks.unwrap_or(order.price);
        let size = modify.size_lots.unwrap_or(order.remaining);
        if price == order.price && size == order.remaining {
            return Err(Rejection::ModifyNoChange);
        }
        let m = self
            .market_pos(order.market)
            .expect("bug: order in an unlisted market");
        let ms = &self.markets[m];
        let limits = &self.genesis.limits;
        if size < ms.market.min_size_lots() {
            return Err(Rejection::SizeBelowMinimum {
                size,
                min: ms.market.min_size_lots(),
            });
        }
        if size > limits.max_order_size_lots {
            return Err(Rejection::SizeTooLarge {
                size,
                max: limits.max_order_size_lots,
            });
        }
        if price > limits.max_price_ticks {
            return Err(Rejection::PriceTooHigh {
                price,
                max: limits.max_price_ticks,
            });
        }
        let asset = match order.side {
            Side::Buy => ms.quote,
            Side::Sell => ms.base,
        };
        let new_lock = lock_for(&ms.market, order.side, price, size);
        let available = self.accounts[ctx.account.0 as usize].balances[asset].free + order.locked.0;
        if available < new_lock {
            return Err(Rejection::InsufficientFunds {
                asset: self.assets[asset],
                needed: Amount(new_lock),
                available: Amount(available),
            });
        }
        let id = order.id;
        let mut events = std::mem::take(&mut self.book_events);
        events.clear();
        self.markets[m].book.replace(id, price, size, &mut events);
        let r = self.apply_book_events(m, &events, CancelCause::User, None, height, out);
        self.book_events = events;
        r?;
        if let Some(agent) = ctx.agent {
            self.accounts[ctx.account.0 as usize]
                .agents
                .get_mut(&agent)
                .expect("bug: agent checked")
                .used_in_block += 1;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- settlement

    /// Settle the engine's events for market `m`. `Err` only if the first event is the
    /// engine refusing the command (then nothing changed).
    fn apply_book_events(
        &mut self,
        m: usize,
        events: &[BookEvent],
        user_cause: CancelCause,
        placing: Option<Option<ClientOrderId>>,
        height: u64,
        out: &mut BlockOut,
    ) -> Result<(), Rejection> {
        let market_id = self.markets[m].market.id();
        for event in events {
            match *event {
                BookEvent::Rejected { reason, .. } => {
                    return Err(match reason {
                        RejectReason::PostOnlyWouldCross => Rejection::PostOnlyWouldCross,
                        RejectReason::BookFull => Rejection::BookFull { market: market_id },
                        RejectReason::UnknownOrder => Rejection::UnknownOrder {
                            order_id: OrderId(0),
                        },
                        other => panic!("bug: the engine refused a checked order: {other}"),
                    });
                }
                BookEvent::Accepted {
                    order_id,
                    side,
                    price,
                    size,
                    ..
                } => {
                    let order = &self.orders[&order_id];
                    out.events.push(LedgerEvent::OrderAccepted {
                        order_id,
                        account: self.accounts[order.owner.0 as usize].id,
                        market: market_id,
                        client_order_id: placing.flatten(),
                        side,
                        price,
                        size,
                    });
                }
                BookEvent::Fill {
                    maker_order_id,
                    maker_owner,
                    taker_order_id,
                    taker_owner,
                    taker_side,
                    price,
                    size,
                    maker_remaining,
                    taker_remaining,
                } => {
                    let fill = self.settle_fill(
                        m,
                        (maker_order_id, maker_owner, maker_remaining),
                        (taker_order_id, taker_owner, taker_remaining),
                        taker_side,
                        price,
                        size,
                        height,
                    );
                    let index = out.committed.len() as u32;
                    out.committed.push(CommittedItem::Fill(fill));
                    out.events.push(LedgerEvent::Fill { index });
                }
                BookEvent::Rested {
                    order_id,
                    remaining,
                    ..
                } => {
                    let priority = self.meta.next_priority;
                    self.meta.next_priority += 1;
                    let slot = match self.orders[&order_id].slot {
                        Some(s) => s,
                        None => self.allocate_slot(),
                    };
                    let order = self
                        .orders
                        .get_mut(&order_id)
                        .expect("bug: rested order unknown");
                    order.priority = priority;
                    order.slot = Some(slot);
                    self.dirty_orders.push(order_id);
                    out.events.push(LedgerEvent::OrderRested {
                        order_id,
                        market: market_id,
                        remaining,
                    });
                }
                BookEvent::Cancelled {
                    order_id,
                    remaining,
                    reason,
                    ..
                } => {
                    let cause = match reason {
                        CancelReason::User => user_cause,
                        CancelReason::SelfTrade => CancelCause::SelfTrade,
                        CancelReason::ImmediateRemainder => CancelCause::ImmediateRemainder,
                        CancelReason::FillOrKill => CancelCause::FillOrKill,
                    };
                    let order = self.remove_order(order_id);
                    out.events.push(LedgerEvent::OrderCancelled {
                        order_id,
                        account: self.accounts[order.owner.0 as usize].id,
                        market: market_id,
                        remaining,
                        cause,
                    });
                }
                BookEvent::Expired {
                    order_id,
                    remaining,
                    ..
                } => {
                    let order = self.remove_order(order_id);
                    out.events.push(LedgerEvent::OrderExpired {
                        order_id,
                        account: self.accounts[order.owner.0 as usize].id,
                        market: market_id,
                        remaining,
                    });
                }
                BookEvent::Reduced {
                    order_id,
                    remaining,
                    ..
                } => {
                    self.resize_order(m, order_id, None, remaining);
                    out.events.push(LedgerEvent::OrderReduced {
                        order_id,
                        market: market_id,
                        remaining,
                    });
                }
                BookEvent::Replaced {
                    order_id,
                    new_price,
                    new_size,
                    priority_kept,
                    ..
                } => {
                    self.resize_order(m, order_id, Some(new_price), new_size);
                    out.events.push(LedgerEvent::OrderReplaced {
                        order_id,
                        market: market_id,
                        price: new_price,
                        size: new_size,
                        priority_kept,
                    });
                }
            }
        }
        Ok(())
    }

    /// Give an order a new price and/or open size, re-locking exactly what it now needs.
    fn resize_order(
        &mut self,
        m: usize,
        id: OrderId,
        price: Option<PriceTicks>,
        remaining: SizeLots,
    ) {
        let ms = &self.markets[m];
        let order = self
            .orders
            .get_mut(&id)
            .expect("bug: resized order unknown");
        let asset = match order.side {
            Side::Buy => ms.quote,
            Side::Sell => ms.base,
        };
        if let Some(p) = price {
            order.price = p;
        }
        order.remaining = remaining;
        let old = order.locked.0;
        let new = lock_for(&ms.market, order.side, order.price, remaining);
        order.locked = Amount(new);
        let owner = order.owner;
        let bal = &mut self.accounts[owner.0 as usize].balances[asset];
        // Release the old lock, take the new one (checked by `execute_modify`).
        bal.free += old;
        bal.free = bal
            .free
            .checked_sub(new)
            .expect("bug: a replacement locks more than is free");
        bal.locked = bal.locked - old + new;
        self.dirty_orders.push(id);
        self.mark_account(owner);
    }

    /// Move funds for one fill and return its committed record.
    #[allow(clippy::too_many_arguments)]
    fn settle_fill(
        &mut self,
        m: usize,
        maker: (OrderId, AccountIndex, SizeLots),
        taker: (OrderId, AccountIndex, SizeLots),
        taker_side: Side,
        price: PriceTicks,
        size: SizeLots,
        height: u64,
    ) -> Fill {
        let ms = &self.markets[m];
        let (base_pos, quote_pos) = (ms.base, ms.quote);
        let quote = ms
            .market
            .quote_notional(price, size)
            .expect("bug: genesis limits bound every notional")
            .0;
        let base = ms
            .market
            .base_amount(size)
            .expect("bug: genesis limits bound every size")
            .0;
        let taker_fee = ms.market.taker_fee(Amount(quote)).0;
        let maker_fee = match ms.market.maker_fee(Amount(quote)) {
            Fee::Charge(a) => FeePaid::Charge(a),
            Fee::Rebate(a) => FeePaid::Rebate(a),
        };
        let (maker_charge, maker_rebate) = match maker_fee {
            FeePaid::Charge(a) => (a.0, 0),
            FeePaid::Rebate(a) => (0, a.0),
        };
        // The rebate is paid out of this fill's taker fee (validated: maker + taker bps ≥ 0
        // with the charge rounded up and the rebate down), so the fee account never pays
        // from reserves and can never go negative.
        let fee_income = taker_fee
            .checked_add(maker_charge)
            .and_then(|x| x.checked_sub(maker_rebate))
            .expect("bug: a maker rebate above the taker fee");
        let (buyer, seller, buyer_fee, seller_fee) = match taker_side {
            Side::Buy => (taker, maker, (taker_fee, 0), (maker_charge, maker_rebate)),
            Side::Sell => (maker, taker, (maker_charge, maker_rebate), (taker_fee, 0)),
        };
        // Buyer: pays notional + charge from its lock, receives base (and any rebate).
        self.trade_from_lock(m, buyer.0, buyer.2, quote + buyer_fee.0);
        self.credit(buyer.1, base_pos, base);
        self.credit(buyer.1, quote_pos, buyer_fee.1);
        // Seller: delivers base from its lock, receives notional minus charge plus rebate.
        self.trade_from_lock(m, seller.0, seller.2, base);
        let proceeds = (quote + seller_fee.1)
            .checked_sub(seller_fee.0)
            .expect("bug: a fee above the notional");
        self.credit(seller.1, quote_pos, proceeds);
        let fee_account = AccountIndex(0);
        self.credit(fee_account, quote_pos, fee_income);
        Fill {
            height,
            market: self.markets[m].market.id(),
            maker_order_id: maker.0,
            maker: self.accounts[maker.1.0 as usize].id,
            taker_order_id: taker.0,
            taker: self.accounts[taker.1.0 as usize].id,
            taker_side,
            price,
            size,
            base_amount: Amount(base),
            quote_amount: Amount(quote),
            maker_fee,
            taker_fee: Amount(taker_fee),
            maker_remaining: maker.2,
            taker_remaining: taker.2,
        }
    }

    /// An order spent `spent` of its lock in a fill and now has `remaining` open: re-lock
    /// exactly what the rest needs and free the difference; remove the order if done.
    fn trade_from_lock(&mut self, m: usize, id: OrderId, remaining: SizeLots, spent: u128) {
        let ms = &self.markets[m];
        let order = self
            .orders
            .get_mut(&id)
            .expect("bug: a fill of an unknown order");
        let asset = match order.side {
            Side::Buy => ms.quote,
            Side::Sell => ms.base,
        };
        let needed = lock_for(&ms.market, order.side, order.price, remaining);
        let after = order
            .locked
            .0
            .checked_sub(spent)
            .expect("bug: a fill spent more than its order locked");
        let release = after
            .checked_sub(needed)
            .expect("bug: an order's lock fell below what it needs");
        order.locked = Amount(needed);
        order.remaining = remaining;
        let owner = order.owner;
        let bal = &mut self.accounts[owner.0 as usize].balances[asset];
        bal.locked -= spent + release;
        bal.free += release;
        self.mark_account(owner);
        self.dirty_orders.push(id);
        if remaining.is_zero() {
            self.remove_order(id);
        }
    }

    fn credit(&mut self, idx: AccountIndex, asset: usize, amount: u128) {
        if amount == 0 {
            return;
        }
        let bal = &mut self.accounts[idx.0 as usize].balances[asset];
        bal.free = bal
            .free
            .checked_add(amount)
            .expect("bug: a balance above total supply");
        self.mark_account(idx);
    }

    /// Remove an order's record, unlocking whatever it still held.
    fn remove_order(&mut self, id: OrderId) -> OpenOrder {
        let order = self
            .orders
            .remove(&id)
            .expect("bug: removing an unknown order");
        let m = self
            .market_pos(order.market)
            .expect("bug: order in an unlisted market");
        let asset = match order.side {
            Side::Buy => self.markets[m].quote,
            Side::Sell => self.markets[m].base,
        };
        let account = &mut self.accounts[order.owner.0 as usize];
        let bal = &mut account.balances[asset];
        bal.locked -= order.locked.0;
        bal.free += order.locked.0;
        account.open_orders -= 1;
        if let Some(cid) = order.client_order_id {
            account.client_orders.remove(&cid);
        }
        if let Some(slot) = order.slot {
            self.free_slots.insert(slot);
            self.cleared_slots.push(slot);
            self.dirty_orders.push(id);
        }
        self.mark_account(order.owner);
        order
    }

    pub(crate) fn dirty_order(&mut self, id: OrderId) {
        self.dirty_orders.push(id);
    }

    fn allocate_slot(&mut self) -> u32 {
        match self.free_slots.pop_first() {
            Some(s) => s,
            None => {
                let s = self.slot_end;
                self.slot_end += 1;
                s
            }
        }
    }

    // ---------------------------------------------------------------- accounts and roots

    pub(crate) fn account_or_create(&mut self, id: &AccountId) -> AccountIndex {
        if let Some(&idx) = self.by_id.get(&AccountKey::of(id)) {
            return idx;
        }
        let idx = AccountIndex(self.accounts.len() as u64);
        self.accounts
            .push(Account::new(*id, idx, self.assets.len()));
        self.by_id.insert(AccountKey::of(id), idx);
        self.meta.accounts += 1;
        self.mark_account(idx);
        idx
    }

    fn mark_account(&mut self, idx: AccountIndex) {
        let i = idx.0 as usize;
        if self.account_dirty.set(i) {
            self.dirty_accounts.push(i as u32);
        }
    }

    /// Bring both trees up to date with what changed and return the new state root.
    pub(crate) fn compute_state_root(&mut self) -> Hash {
        let mut accounts = std::mem::take(&mut self.dirty_accounts);
        accounts.sort_unstable();
        for &i in &accounts {
            self.account_dirty.clear(i as usize);
            let leaf = self.accounts[i as usize].leaf(&self.assets);
            self.account_tree.set(u64::from(i), leaf);
        }
        for &slot in &self.cleared_slots {
            self.order_tree.set(u64::from(slot), EMPTY_LEAF);
        }
        self.cleared_slots.clear();
        let mut orders = std::mem::take(&mut self.dirty_orders);
        orders.sort_unstable();
        orders.dedup();
        for id in &orders {
            if let Some(order) = self.orders.get(id)
                && let Some(slot) = order.slot
            {
                self.order_tree.set(u64::from(slot), order.leaf());
            }
        }
        let accounts_root = self.account_tree.commit();
        let orders_root = self.order_tree.commit();
        self.state_root = state_root_of(&accounts_root, &orders_root, &self.meta.hash());
        self.last_changed_accounts = accounts;
        self.last_changed_orders = orders;
        // The block is done: what it wrote becomes shareable, so the next copy of this
        // ledger (the next proposal's) costs what that block touched, not more.
        self.accounts.freeze();
        self.orders.settle();
        self.state_root
    }

    /// Fold this ledger's order changes into the order map it shares with its copies, now
    /// that (the caller knows) they are gone: a validator calls it on the ledger it just
    /// committed, after dropping the previous one and every proposal's copy, so that the
    /// next proposal's copy starts from a settled map instead of copying a block's changes.
    /// Never needed for correctness; without it the changes are folded once they reach a
    /// quarter of the map.
    pub fn settle(&mut self) {
        self.orders.settle();
    }

    /// The proof of an account's balances (every asset) against the current state root.
    pub fn balance_proof(&self, id: &AccountId) -> Option<crate::proof::BalanceProof> {
        let idx = *self.by_id.get(&AccountKey::of(id))?;
        let account = &self.accounts[idx.0 as usize];
        Some(crate::proof::BalanceProof {
            index: idx,
            balances: self
                .assets
                .iter()
                .copied()
                .zip(account.balances.iter().copied())
                .collect(),
            rest_hash: account.rest_hash(),
            path: self.account_path(idx),
            orders_root: self.order_tree.root(),
            meta_hash: self.meta.hash(),
        })
    }

    fn account_path(&self, idx: AccountIndex) -> MerklePath {
        self.account_tree.proof(idx.0)
    }

    /// Checks of every custody invariant, for tests and debugging: each order's lock equals
    /// what it needs, each account's locked balance equals the sum of its orders' locks,
    /// the books and the records agree, and every asset is conserved. Returns the first
    /// violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut locked = vec![vec![0u128; self.assets.len()]; self.accounts.len()];
        let mut open = vec![0u32; self.accounts.len()];
        let mut book_total = 0usize;
        for ms in &self.markets {
            book_total += ms.book.len();
            for view in ms.book.orders_in_priority() {
                let order = self
                    .orders
                    .get(&view.id)
                    .ok_or(format!("book order {} has no record", view.id))?;
                if order.remaining != view.remaining
                    || order.price != view.price
                    || order.owner != view.owner
                {
                    return Err(format!("order {} differs between book and ledger", view.id));
                }
            }
        }
        if book_total != self.orders.len() {
            return Err(format!(
                "{} records but {} resting orders",
                self.orders.len(),
                book_total
            ));
        }
        for order in self.orders.values() {
            let needs = self.order_needs(order);
            if order.locked.0 != needs {
                return Err(format!(
                    "order {} locks {} but needs {}",
                    order.id, order.locked, needs
                ));
            }
            let m = self
                .market_pos(order.market)
                .ok_or("order in unlisted market")?;
            let asset = match order.side {
                Side::Buy => self.markets[m].quote,
                Side::Sell => self.markets[m].base,
            };
            locked[order.owner.0 as usize][asset] += order.locked.0;
            open[order.owner.0 as usize] += 1;
        }
        let mut totals = self.meta.withdrawn.clone();
        for (i, account) in self.accounts.iter().enumerate() {
            for (p, bal) in account.balances.iter().enumerate() {
                if bal.locked != locked[i][p] {
                    return Err(format!(
                        "account {i} asset {p}: locked {} but orders need {}",
                        bal.locked, locked[i][p]
                    ));
                }
                totals[p] = totals[p]
                    .checked_add(bal.total().ok_or("balance overflow")?)
                    .ok_or("supply overflow")?;
            }
            if account.open_orders != open[i] {
                return Err(format!(
                    "account {i}: {} open orders counted, {} found",
                    account.open_orders, open[i]
                ));
            }
        }
        for ((asset, supply), total) in self.genesis.supply().into_iter().zip(totals) {
            if supply != total {
                return Err(format!(
                    "asset {asset}: supply {supply} but {total} accounted for"
                ));
            }
        }
        Ok(())
    }
}

/// What an order of `side` at `price` with `remaining` open must lock.
pub(crate) fn lock_for(
    market: &Market,
    side: Side,
    price: PriceTicks,
    remaining: SizeLots,
) -> u128 {
    match side {
        Side::Buy => market.buy_lock(price, remaining),
        Side::Sell => market.sell_lock(remaining),
    }
    .expect("bug: genesis limits keep every lock within 128 bits")
    .0
}

/// An account's leaf from the parts a balance proof carries.
pub(crate) fn leaf_from_parts(
    id: &AccountId,
    index: AccountIndex,
    balances: &[(AssetId, Balance)],
    rest_hash: &Hash,
) -> Hash {
    account_leaf(id, index, balances, rest_hash)
}
