//! A deterministic synthetic chain for the tests and the benchmarks.
//!
//! Block `h` is made of `txs_per_block` pseudo-random transactions drawn from
//! `(seed, h)`. Its state changes are a function of the block bytes and the state before it
//! ([`apply_block`]), so replaying stored blocks reproduces the state, as replaying real
//! blocks through the ledger would. Each transaction touches two accounts (a transfer);
//! every 64th removes its first account. The root is a parameter (the stand-in
//! [`crate::kv_root::sorted_kv_root`] by default) so the same generator works with the
//! ledger's root later.

use crate::chain::{BlockCommit, ChainStore, StateChange, StateEntry};
use crate::column::Column;
use crate::error::{CorruptionKind, Inconsistency, Result, StorageError};
use crate::records::{self, ChainBase, CommittedHead};
use crate::store::Store;
use dex_types::{Domain, Hash};
use std::collections::BTreeMap;

/// Shape of a synthetic chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticConfig {
    /// Seed of the transaction generator.
    pub seed: u64,
    /// Transactions per block.
    pub txs_per_block: u32,
    /// Bytes per transaction (at least 16: the first 16 pick the two accounts).
    pub tx_bytes: u32,
    /// Number of distinct accounts transactions touch.
    pub accounts: u64,
    /// Accounts present in the genesis state (`0..genesis_accounts`).
    pub genesis_accounts: u64,
    /// Bytes of an account's value.
    pub value_bytes: u32,
    /// Bytes of a block's commit certificate.
    pub certificate_bytes: u32,
    /// Recompute the state root after every block. When false, only blocks whose height
    /// is a multiple of `root_interval_blocks` get a real root; the others record a
    /// placeholder (bulk generation for benchmarks, where rehashing the whole state per
    /// block would dominate).
    pub root_every_block: bool,
    /// See `root_every_block`.
    pub root_interval_blocks: u64,
}

impl Default for SyntheticConfig {
    fn default() -> SyntheticConfig {
        SyntheticConfig {
            seed: 1,
            txs_per_block: 16,
            tx_bytes: 200,
            accounts: 256,
            genesis_accounts: 64,
            value_bytes: 96,
            certificate_bytes: 67 * 100,
            root_every_block: true,
            root_interval_blocks: 1,
        }
    }
}

impl SyntheticConfig {
    /// Whether the block at `height` records a real state root (see `root_every_block`).
    /// The base (height 0) always does.
    pub fn root_computed_at(&self, height: u64) -> bool {
        self.root_every_block
            || height == 0
            || height.is_multiple_of(self.root_interval_blocks.max(1))
    }
}

/// One generated block with everything a commit needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticBlock {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub block_hash: Hash,
    /// Parent hash.
    pub parent_hash: Hash,
    /// State root after the block.
    pub state_root: Hash,
    /// Block bytes.
    pub block: Vec<u8>,
    /// Certificate bytes.
    pub certificate: Vec<u8>,
    /// Sorted state diff.
    pub state_changes: Vec<StateChange>,
}

impl SyntheticBlock {
    /// The commit of this block.
    pub fn commit(&self) -> BlockCommit<'_> {
        BlockCommit {
            height: self.height,
            block_hash: self.block_hash,
            parent_hash: self.parent_hash,
            state_root: self.state_root,
            block: &self.block,
            certificate: &self.certificate,
            state_changes: &self.state_changes,
        }
    }
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce5_e4b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fill `out` with pseudo-random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// The state key of account `index`.
pub fn account_key(index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(b'a');
    key.extend_from_slice(Hash::of(Domain::Other, &[&index.to_be_bytes()]).as_bytes());
    key
}

fn value_of(previous: Option<&[u8]>, tx: &[u8], value_bytes: u32) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(previous.unwrap_or(b"new"));
    hasher.update(tx);
    let mut out = vec![0u8; value_bytes as usize];
    hasher.finalize_xof().fill(&mut out);
    out
}

const BLOCK_HEADER_BYTES: usize = 8 + 32 + 4 + 4;

/// Apply the transactions of `block` to `state` and return the block's sorted state diff.
/// Returns `None` if the bytes are not a synthetic block.
pub fn apply_block(
    state: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    block: &[u8],
    config: &SyntheticConfig,
) -> Option<Vec<StateChange>> {
    let header = block.get(..BLOCK_HEADER_BYTES)?;
    let tx_count = u32::from_le_bytes(header[40..44].try_into().ok()?);
    let tx_bytes = u32::from_le_bytes(header[44..48].try_into().ok()?) as usize;
    if tx_bytes < 16 || config.accounts == 0 {
        return None;
    }
    let body = &block[BLOCK_HEADER_BYTES..];
    if body.len() != (tx_count as usize).checked_mul(tx_bytes)? {
        return None;
    }
    let mut diff: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for (index, tx) in body.chunks_exact(tx_bytes).enumerate() {
        let from = u64::from_le_bytes(tx[..8].try_into().ok()?) % config.accounts;
        let to = u64::from_le_bytes(tx[8..16].try_into().ok()?) % config.accounts;
        for (account, remove) in [(from, index % 64 == 63), (to, false)] {
            let key = account_key(account);
            if remove {
                state.remove(&key);
                diff.insert(key, None);
            } else {
                let value = value_of(state.get(&key).map(Vec::as_slice), tx, config.value_bytes);
                state.insert(key.clone(), value.clone());
                diff.insert(key, Some(value));
            }
        }
    }
    Some(diff.into_iter().collect())
}

/// Generates a synthetic chain, keeping its state in memory.
pub struct SyntheticChain {
    config: SyntheticConfig,
    state: BTreeMap<Vec<u8>, Vec<u8>>,
    head: CommittedHead,
    root: fn(&[StateEntry]) -> Hash,
}

impl std::fmt::Debug for SyntheticChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyntheticChain")
            .field("config", &self.config)
            .field("head", &self.head)
            .field("accounts", &self.state.len())
            .finish()
    }
}

impl SyntheticChain {
    /// A chain at its genesis state, with `root` as the state root function.
    pub fn new(config: SyntheticConfig, root: fn(&[StateEntry]) -> Hash) -> SyntheticChain {
        let state: BTreeMap<Vec<u8>, Vec<u8>> = (0..config.genesis_accounts)
            .map(|index| {
                let key = account_key(index);
                let value = value_of(None, &key, config.value_bytes);
                (key, value)
            })
            .collect();
        let entries: Vec<StateEntry> = state.clone().into_iter().collect();
        let head = CommittedHead {
            height: 0,
            block_hash: Hash::of(
                Domain::Other,
                &[b"synthetic genesis", &config.seed.to_le_bytes()],
            ),
            state_root: root(&entries),
        };
        SyntheticChain {
            config,
            state,
            head,
            root,
        }
    }

    /// Resume from a stored head and the state at it.
    pub fn resume(
        config: SyntheticConfig,
        root: fn(&[StateEntry]) -> Hash,
        head: CommittedHead,
        state: Vec<StateEntry>,
    ) -> SyntheticChain {
        SyntheticChain {
            config,
            state: state.into_iter().collect(),
            head,
            root,
        }
    }

    /// The genesis base and state of a chain with this configuration.
    pub fn genesis(
        config: SyntheticConfig,
        root: fn(&[StateEntry]) -> Hash,
    ) -> (ChainBase, Vec<StateEntry>) {
        let chain = SyntheticChain::new(config, root);
        let entries = chain.state_entries();
        (chain.head, entries)
    }

    /// The configuration.
    pub fn config(&self) -> &SyntheticConfig {
        &self.config
    }

    /// The head after the last generated block.
    pub fn head(&self) -> CommittedHead {
        self.head
    }

    /// The state after the last generated block, sorted.
    pub fn state_entries(&self) -> Vec<StateEntry> {
        self.state
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The bytes of block `height` with parent `parent`: a pure function of the seed.
    pub fn block_bytes(config: &SyntheticConfig, height: u64, parent: Hash) -> Vec<u8> {
        let tx_bytes = config.tx_bytes.max(16);
        let body_len = config.txs_per_block as usize * tx_bytes as usize;
        let mut block = Vec::with_capacity(BLOCK_HEADER_BYTES + body_len);
        block.extend_from_slice(&height.to_le_bytes());
        block.extend_from_slice(parent.as_bytes());
        block.extend_from_slice(&config.txs_per_block.to_le_bytes());
        block.extend_from_slice(&tx_bytes.to_le_bytes());
        let start = block.len();
        block.resize(start + body_len, 0);
        let mut rng = SplitMix64(config.seed ^ height.wrapping_mul(0x2545_f491_4f6c_dd1d));
        rng.fill(&mut block[start..]);
        block
    }

    /// Generate the next block and apply it.
    pub fn next_block(&mut self) -> SyntheticBlock {
        let height = self
            .head
            .height
            .checked_add(1)
            .expect("bug: synthetic chain height overflow");
        let block = SyntheticChain::block_bytes(&self.config, height, self.head.block_hash);
        let state_changes = apply_block(&mut self.state, &block, &self.config)
            .expect("bug: a generated block is well formed");
        let block_hash = Hash::of(Domain::Other, &[b"synthetic block", &block]);
        let state_root = if self.config.root_computed_at(height) {
            (self.root)(&self.state_entries())
        } else {
            Hash::of(
                Domain::Other,
                &[b"synthetic root not computed", &height.to_le_bytes()],
            )
        };
        let mut certificate = vec![0u8; self.config.certificate_bytes as usize];
        SplitMix64(height ^ 0x5eed).fill(&mut certificate);
        let parent_hash = self.head.block_hash;
        self.head = CommittedHead {
            height,
            block_hash,
            state_root,
        };
        SyntheticBlock {
            height,
            block_hash,
            parent_hash,
            state_root,
            block,
            certificate,
            state_changes,
        }
    }

    /// Force the head's root to be computed now (after bulk generation without roots).
    pub fn compute_root(&self) -> Hash {
        (self.root)(&self.state_entries())
    }
}

/// What [`recover_state`] rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredState {
    /// The state at the committed head, sorted.
    pub entries: Vec<StateEntry>,
    /// Height of the snapshot it started from.
    pub snapshot_height: u64,
    /// Blocks replayed after the snapshot.
    pub replayed_blocks: u64,
}

/// Rebuild the synthetic state at the committed head as a node without the state column
/// does: load the newest snapshot, replay the stored blocks after it with
/// [`apply_block`], and check every real root on the way (the snapshot's, each block's
/// where the generator computed one, and always the head's) with `root`.
pub fn recover_state<S: Store>(
    chain: &ChainStore<S>,
    config: &SyntheticConfig,
    root: fn(&[StateEntry]) -> Hash,
) -> Result<RecoveredState> {
    let head = chain.last_committed().ok_or(StorageError::NotInitialized)?;
    let snapshot = chain.latest_snapshot()?.ok_or(StorageError::NoSnapshot {
        height: head.height,
    })?;
    let (info, entries) = chain.snapshot_entries(snapshot.height)?;
    let mismatch = |height: u64, committed: Hash, computed: Hash| {
        StorageError::inconsistent(Inconsistency::StateRootMismatch {
            height,
            committed,
            computed,
        })
    };
    if config.root_computed_at(info.height) {
        let computed = root(&entries);
        if computed != info.state_root {
            return Err(mismatch(info.height, info.state_root, computed));
        }
    }
    let mut state: BTreeMap<Vec<u8>, Vec<u8>> = entries.into_iter().collect();
    let mut replayed_blocks = 0u64;
    let mut next = info.height.saturating_add(1);
    while next <= head.height {
        const BLOCKS_PER_READ: usize = 256;
        let blocks = chain.blocks_range(next, head.height, BLOCKS_PER_READ)?;
        if blocks.is_empty() {
            return Err(StorageError::inconsistent(Inconsistency::MissingHeight {
                height: next,
                column: Column::Blocks,
            }));
        }
        for block in blocks {
            apply_block(&mut state, &block.block, config).ok_or_else(|| {
                StorageError::corrupted(
                    Column::Blocks,
                    &records::height_key(block.height),
                    CorruptionKind::Malformed {
                        detail: "not a synthetic block".into(),
                    },
                )
            })?;
            if config.root_computed_at(block.height) || block.height == head.height {
                let entries: Vec<StateEntry> =
                    state.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                let computed = root(&entries);
                if computed != block.state_root {
                    return Err(mismatch(block.height, block.state_root, computed));
                }
            }
            replayed_blocks += 1;
            next = block.height.saturating_add(1);
        }
    }
    Ok(RecoveredState {
        entries: state.into_iter().collect(),
        snapshot_height: info.height,
        replayed_blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv_root::sorted_kv_root;

    #[test]
    fn same_seed_same_chain_and_replay_reproduces_state() {
        let config = SyntheticConfig::default();
        let mut a = SyntheticChain::new(config, sorted_kv_root);
        let mut b = SyntheticChain::new(config, sorted_kv_root);
        let (_, genesis) = SyntheticChain::genesis(config, sorted_kv_root);
        let mut replayed: BTreeMap<Vec<u8>, Vec<u8>> = genesis.into_iter().collect();
        for _ in 0..20 {
            let block_a = a.next_block();
            assert_eq!(block_a, b.next_block());
            let changes = apply_block(&mut replayed, &block_a.block, &config).unwrap();
            assert_eq!(changes, block_a.state_changes);
            let entries: Vec<StateEntry> = replayed.clone().into_iter().collect();
            assert_eq!(sorted_kv_root(&entries), block_a.state_root);
        }
        assert!(a.state_entries().len() > 64);
    }

    #[test]
    fn diffs_are_sorted_and_include_deletes() {
        let config = SyntheticConfig {
            txs_per_block: 200,
            ..SyntheticConfig::default()
        };
        let mut chain = SyntheticChain::new(config, sorted_kv_root);
        let block = chain.next_block();
        assert!(block.state_changes.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(block.state_changes.iter().any(|(_, v)| v.is_none()));
        assert_eq!(block.block.len(), BLOCK_HEADER_BYTES + 200 * 200);
    }

    #[test]
    fn apply_block_rejects_foreign_bytes() {
        let config = SyntheticConfig::default();
        let mut state = BTreeMap::new();
        assert!(apply_block(&mut state, b"short", &config).is_none());
        let mut block = SyntheticChain::block_bytes(&config, 1, Hash::ZERO);
        block.pop();
        assert!(apply_block(&mut state, &block, &config).is_none());
    }
}
