//! Snapshot and restore of the whole state as sorted key-value pairs (or one byte string),
//! and the per-block changes a node writes in its atomic commit.
//!
//! # Layout
//! | key | value |
//! | --- | --- |
//! | `a` ‖ account index (u64 BE) | the account: id, balances, nonce windows (with floors), agents, revoked agents' nonce floors, dead-man switch |
//! | `g` | the genesis |
//! | `m` | counters and totals (height, last block time, next ids, withdrawn) |
//! | `o` ‖ order id (u64 BE) | an open order with its lock, priority and tree slot |
//!
//! Keys sort in that order. Everything else (client-id maps, open-order counts, books, free
//! tree slots, the dead-man schedule, both trees) is rebuilt from these on restore, and the
//! restore checks every custody invariant, so a restored state has the same root and the
//! same future.

use crate::account::{Account, Agent, Balance};
use crate::genesis::{Genesis, GenesisError};
use crate::ledger::{Ledger, Meta, OpenOrder};
use crate::nonce::NonceWindow;
use borsh::{BorshDeserialize, BorshSerialize};
use dex_engine::NewOrder;
use dex_types::{AccountId, AgentPolicy, OrderId, OrderType, TimestampMs};

/// The largest snapshot [`Ledger::from_bytes`] accepts.
pub const MAX_SNAPSHOT_BYTES: usize = 1 << 31;
/// The largest single value in a snapshot (an account with every agent and window is far
/// smaller).
pub const MAX_RECORD_BYTES: usize = 1 << 20;

const KEY_GENESIS: &[u8] = b"g";
const KEY_META: &[u8] = b"m";
const PREFIX_ACCOUNT: u8 = b'a';
const PREFIX_ORDER: u8 = b'o';

/// One changed key of the state: `Some` to write, `None` to delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or `None` if the key is gone.
    pub value: Option<Vec<u8>>,
}

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// More bytes than [`MAX_SNAPSHOT_BYTES`], or a value above [`MAX_RECORD_BYTES`].
    #[error("snapshot too large: {len} bytes, at most {max}")]
    TooLarge {
        /// Size seen.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A key or value does not decode.
    #[error("snapshot record {key:?} does not decode: {reason}")]
    Malformed {
        /// The key (hex).
        key: String,
        /// What went wrong.
        reason: String,
    },
    /// The genesis or meta record is missing.
    #[error("snapshot has no {0} record")]
    Missing(&'static str),
    /// The genesis in the snapshot is not valid.
    #[error("snapshot genesis is invalid: {0}")]
    Genesis(#[from] GenesisError),
    /// The records do not form a consistent state (locks, books, indices).
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

#[derive(BorshSerialize, BorshDeserialize)]
struct AccountRecord {
    id: AccountId,
    balances: Vec<Balance>,
    nonces: Vec<u64>,
    /// Key, policy, used nonces, nonce floor.
    agents: Vec<(AccountId, AgentPolicy, Vec<u64>, Option<u64>)>,
    cancel_all_at: Option<TimestampMs>,
    /// Revoked agent keys and their nonce floors, ascending by key.
    revoked_agents: Vec<(AccountId, u64)>,
    agent_nonce_floor: Option<u64>,
}

fn account_key(index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(PREFIX_ACCOUNT);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn order_key(id: OrderId) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(PREFIX_ORDER);
    k.extend_from_slice(&id.0.to_be_bytes());
    k
}

fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("bug: borsh into a Vec cannot fail")
}

fn decode<T: BorshDeserialize>(key: &[u8], value: &[u8]) -> Result<T, SnapshotError> {
    if value.len() > MAX_RECORD_BYTES {
        return Err(SnapshotError::TooLarge {
            len: value.len(),
            max: MAX_RECORD_BYTES,
        });
    }
    borsh::from_slice(value).map_err(|e| SnapshotError::Malformed {
        key: hex_of(key),
        reason: e.to_string(),
    })
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn inconsistent(text: impl Into<String>) -> SnapshotError {
    SnapshotError::Inconsistent(text.into())
}

impl Ledger {
    fn account_record(&self, i: usize) -> Vec<u8> {
        let a = &self.accounts[i];
        encode(&AccountRecord {
            id: a.id,
            balances: a.balances.clone(),
            nonces: a.nonces.used().to_vec(),
            agents: a
                .agents
                .iter()
                .map(|(k, ag)| {
                    (
                        *k,
                        ag.policy.clone(),
                        ag.nonces.used().to_vec(),
                        ag.nonces.floor(),
                    )
                })
                .collect(),
            cancel_all_at: a.cancel_all_at,
            revoked_agents: a.revoked_agents.iter().map(|(k, f)| (*k, *f)).collect(),
            agent_nonce_floor: a.agent_nonce_floor,
        })
    }

    /// The whole state as key-value pairs, sorted by key.
    pub fn snapshot(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::with_capacity(self.accounts.len() + self.orders.len() + 2);
        for i in 0..self.accounts.len() {
            out.push((account_key(i as u64), self.account_record(i)));
        }
        out.push((KEY_GENESIS.to_vec(), encode(&*self.genesis)));
        out.push((KEY_META.to_vec(), encode(&self.meta)));
        for order in self.open_orders() {
            out.push((order_key(order.id), encode(order)));
        }
        out
    }

    /// The keys the last block changed (since the previous root), sorted: what the node
    /// writes to storage with the block, in the same atomic commit. Applying them to the
    /// previous snapshot gives this snapshot.
    pub fn block_changes(&self) -> Vec<StateChange> {
        let mut out = Vec::with_capacity(
            self.last_changed_accounts.len() + self.last_changed_orders.len() + 1,
        );
        for &i in &self.last_changed_accounts {
            out.push(StateChange {
                key: account_key(u64::from(i)),
                value: Some(self.account_record(i as usize)),
            });
        }
        out.push(StateChange {
            key: KEY_META.to_vec(),
            value: Some(encode(&self.meta)),
        });
        for id in &self.last_changed_orders {
            let value = self.orders.get(id).filter(|o| o.slot.is_some()).map(encode);
            out.push(StateChange {
                key: order_key(*id),
                value,
            });
        }
        out
    }

    /// The snapshot as one byte string (borsh of the sorted pairs).
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(&self.snapshot())
    }

    /// Restore from [`Ledger::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Ledger, SnapshotError> {
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(SnapshotError::TooLarge {
                len: bytes.len(),
                max: MAX_SNAPSHOT_BYTES,
            });
        }
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            borsh::from_slice(bytes).map_err(|e| SnapshotError::Malformed {
                key: String::new(),
                reason: e.to_string(),
            })?;
        Ledger::restore(pairs)
    }

    /// Restore from key-value pairs (any order), checking that they form a consistent
    /// state.
    pub fn restore(
        pairs: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<Ledger, SnapshotError> {
        let mut genesis = None;
        let mut meta = None;
        let mut accounts: Vec<(u64, AccountRecord)> = Vec::new();
        let mut orders: Vec<OpenOrder> = Vec::new();
        for (key, value) in pairs {
            match key.as_slice() {
                KEY_GENESIS => genesis = Some(decode::<Genesis>(&key, &value)?),
                KEY_META => meta = Some(decode::<Meta>(&key, &value)?),
                [PREFIX_ACCOUNT, rest @ ..] if rest.len() == 8 => {
                    let index = u64::from_be_bytes(rest.try_into().expect("8 bytes"));
                    accounts.push((index, decode(&key, &value)?));
                }
                [PREFIX_ORDER, rest @ ..] if rest.len() == 8 => {
                    let order: OpenOrder = decode(&key, &value)?;
                    if order.id.0.to_be_bytes() != rest {
                        return Err(inconsistent("an order key names another order"));
                    }
                    orders.push(order);
                }
                _ => {
                    return Err(SnapshotError::Malformed {
                        key: hex_of(&key),
                        reason: "unknown key".into(),
                    });
                }
            }
        }
        let genesis = genesis.ok_or(SnapshotError::Missing("genesis"))?;
        let meta = meta.ok_or(SnapshotError::Missing("meta"))?;
        let mut ledger = Ledger::empty(&genesis)?;
        if meta.genesis_hash != ledger.meta.genesis_hash {
            return Err(inconsistent("meta names another genesis"));
        }
        if meta.withdrawn.len() != ledger.assets.len() {
            return Err(inconsistent("withdrawn totals do not match the assets"));
        }
        ledger.meta = meta;

        accounts.sort_unstable_by_key(|(i, _)| *i);
        for (i, (index, record)) in accounts.into_iter().enumerate() {
            if index != i as u64 {
                return Err(inconsistent("account indices are not dense"));
            }
            if record.balances.len() != ledger.assets.len() {
                return Err(inconsistent(
                    "an account's balances do not match the assets",
                ));
            }
            let idx = ledger.account_or_create(&record.id);
            if idx.0 != index {
                return Err(inconsistent("an account appears twice"));
            }
            let max_agents = ledger.genesis.limits.max_agents_per_account as usize;
            let account: &mut Account = &mut ledger.accounts[i];
            account.balances = record.balances;
            account.nonces = NonceWindow::from_parts(record.nonces, None)
                .ok_or_else(|| inconsistent("a nonce window is not sorted"))?;
            if record.agents.len() > max_agents || record.revoked_agents.len() > max_agents {
                return Err(inconsistent("an account has more agents than the limit"));
            }
            for (key, policy, nonces, floor) in record.agents {
                let nonces = NonceWindow::from_parts(nonces, floor).ok_or_else(|| {
                    inconsistent("an agent nonce window is not sorted or not above its floor")
                })?;
                let agent = Agent {
                    policy,
                    nonces,
                    revoked: false,
                    used_in_block: 0,
                };
                if account.agents.insert(key, agent).is_some() {
                    return Err(inconsistent("an agent appears twice"));
                }
            }
            // The same shape `Account::retire_agent` keeps: keys ascending and distinct, not
            // approved, each floor above the folded one. Anything else would restore a state
            // no execution reaches, with another root.
            let mut previous: Option<AccountId> = None;
            for (key, floor) in record.revoked_agents {
                if previous.is_some_and(|p| p >= key)
                    || account.agents.contains_key(&key)
                    || record.agent_nonce_floor.is_some_and(|f| floor <= f)
                {
                    return Err(inconsistent(
                        "the revoked agents' nonce floors are out of order, repeated or redundant",
                    ));
                }
                previous = Some(key);
                account.revoked_agents.insert(key, floor);
            }
            account.agent_nonce_floor = record.agent_nonce_floor;
            account.cancel_all_at = record.cancel_all_at;
            if let Some(at) = record.cancel_all_at {
                std::sync::Arc::make_mut(&mut ledger.dead_man).insert((at, idx));
            }
        }
        // `account_or_create` counted the accounts again; the records must match the count
        // the meta committed to.
        if ledger.meta.accounts != 2 * ledger.accounts.len() as u64 {
            return Err(inconsistent(
                "the account count does not match the account records",
            ));
        }
        ledger.meta.accounts = ledger.accounts.len() as u64;

        orders.sort_unstable_by_key(|o| o.priority);
        let mut used_slots = std::collections::BTreeSet::new();
        for order in orders {
            let owner = order.owner.0 as usize;
            if owner >= ledger.accounts.len() {
                return Err(inconsistent("an order's owner does not exist"));
            }
            let m = ledger
                .market_pos(order.market)
                .ok_or_else(|| inconsistent("an order's market is not listed"))?;
            let slot = order
                .slot
                .ok_or_else(|| inconsistent("a resting order has no tree slot"))?;
            if !used_slots.insert(slot) || ledger.orders.contains_key(&order.id) {
                return Err(inconsistent("two orders share a slot or an id"));
            }
            let account = &mut ledger.accounts[owner];
            account.open_orders += 1;
            if let Some(cid) = order.client_order_id
                && account.client_orders.insert(cid, order.id).is_some()
            {
                return Err(inconsistent("two open orders share a client order id"));
            }
            let mut events = Vec::new();
            ledger.markets[m].book.place(
                NewOrder {
                    id: order.id,
                    owner: order.owner,
                    side: order.side,
                    order_type: OrderType::Limit,
                    price: order.price,
                    size: order.remaining,
                    tif: order.tif,
                    stp: order.stp,
                },
                &mut events,
            );
            let rested = matches!(
                events.as_slice(),
                [
                    dex_engine::Event::Accepted { .. },
                    dex_engine::Event::Rested { .. }
                ]
            );
            if !rested {
                return Err(inconsistent(format!(
                    "order {} does not rest in its book",
                    order.id
                )));
            }
            ledger.dirty_order(order.id);
            ledger.orders.insert(order.id, order);
        }
        ledger.slot_end = used_slots.last().map_or(0, |s| s + 1);
        ledger.free_slots = (0..ledger.slot_end)
            .filter(|s| !used_slots.contains(s))
            .collect();
        let time = ledger.meta.last_block_time;
        for ms in &mut ledger.markets {
            let mut events = Vec::new();
            ms.book.expire_until(time, &mut events);
            if !events.is_empty() {
                return Err(inconsistent("an open order expired before the last block"));
            }
        }
        ledger
            .check_invariants()
            .map_err(SnapshotError::Inconsistent)?;
        ledger.by_id.compact();
        ledger.compute_state_root();
        Ok(ledger)
    }
}
