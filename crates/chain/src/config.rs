//! Configuration of a [`Replica`](crate::Replica).

use crate::execute::BlockRules;
use crate::mempool::MempoolLimits;
use dex_consensus::ConsensusConfig;

/// Everything a replica needs besides its store, genesis, validators and key. Every
/// validator of a chain should run the same consensus timeouts and block rules; the
/// bounds only limit this node's memory and work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// The consensus core's timeouts and bounds (its chain id is the chain's).
    pub consensus: ConsensusConfig,
    /// Most transactions per block.
    pub block_txs_max: usize,
    /// How far a proposed block's time may be ahead of this validator's clock.
    pub block_time_ahead_max_ms: u64,
    /// With nothing pending, a proposer waits up to this long after the parent block's time
    /// before proposing an empty block (0: never waits). Keeps an idle chain from writing
    /// a block every batching interval. Must stay well below the propose timeout, or the
    /// other validators move to the next round while the proposer waits.
    pub empty_block_wait_ms: u64,
    /// Bounds of the mempool.
    pub mempool: MempoolLimits,
    /// Transaction signatures remembered as verified.
    pub signature_cache_capacity: usize,
    /// Executed proposals kept for the current height (each holds a copy of the ledger);
    /// the oldest is dropped first and re-executed if it is decided after all.
    pub executed_cache_max: usize,
    /// Decided blocks from peers kept for heights above the current one while the blocks
    /// in between arrive.
    pub sync_buffer_max: u64,
    /// Most decided blocks sent in answer to one sync request.
    pub sync_batch_max: u64,
    /// The least time between two sync requests of this node, and between two decided
    /// blocks sent unasked to one lagging peer.
    pub sync_retry_ms: u64,
    /// After a restart, compare the store's state column key by key with the state
    /// rebuilt from the snapshot and blocks. Applies only when the store keeps the column
    /// (`dex_storage::ChainStoreConfig::keep_state_column`, off by default); then it
    /// costs one read of the whole column at start-up.
    pub check_state_column_on_open: bool,
}

impl ReplicaConfig {
    /// Defaults around `consensus`.
    pub fn new(consensus: ConsensusConfig) -> ReplicaConfig {
        ReplicaConfig {
            consensus,
            block_txs_max: 4_096,
            block_time_ahead_max_ms: 2_000,
            empty_block_wait_ms: 0,
            mempool: MempoolLimits::with_capacity(50_000),
            signature_cache_capacity: 100_000,
            executed_cache_max: 8,
            sync_buffer_max: 64,
            sync_batch_max: 16,
            sync_retry_ms: 500,
            check_state_column_on_open: true,
        }
    }

    /// The block rules this configuration implies.
    pub fn block_rules(&self) -> BlockRules {
        BlockRules {
            chain_id: self.consensus.chain_id,
            txs_max: self.block_txs_max,
            time_ahead_max_ms: self.block_time_ahead_max_ms,
        }
    }
}
