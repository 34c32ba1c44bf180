//! [`LocalChain`]: a real single-validator chain in one process, for tests, tools and trying
//! the exchange on one machine.
//!
//! It holds a real [`Ledger`], admits transactions exactly as a validator's mempool does
//! (strict signature check, then [`Ledger::check_transaction`] against the committed state,
//! then duplicate and pending-nonce checks), and commits a block of the pending transactions
//! when asked ([`LocalChain::commit_block`]) or on an interval ([`LocalChain::spawn_producer`]).
//! Each block has a real header (parent hash, transactions root, state root and fills root
//! from execution) and is published to the [`FeedHub`], so the API serves it exactly as it
//! will serve the validator node's blocks.
//!
//! What it is not: there is no consensus round and no second validator. The chain's
//! validator set is its one key (power 1), which proposes every block and signs its
//! precommit; that one signature is the block's `dex_consensus::CommitCertificate` (round 0,
//! value id = the header hash), so clients verify certificates exactly as they will on the
//! real network. Nothing is written to disk.

use crate::backend::{AccountAt, ApiBackend, BalanceProofAt, ChainInfo, CommittedBlock};
use crate::error::{BackendError, SubmitError};
use crate::hub::FeedHub;
use crate::index::{BlockFeed, HubConfig};
use crate::wire::ValidatorView;
use async_trait::async_trait;
use dex_consensus::{
    CommitCertificate, CommitSignature, Height, Round, ValidatorIndex, Vote, VoteType,
};
use dex_state::{Genesis, GenesisError, Ledger, VerifyingKeyCache};
use dex_types::{
    AccountId, Block, BlockHeader, Hash, Keypair, MAX_BLOCK_BYTES, MAX_BLOCK_TXS,
    SignedTransaction, TimestampMs,
};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Where the chain's block times come from.
#[derive(Clone, Debug)]
pub enum Clock {
    /// The system clock (ms since the Unix epoch).
    System,
    /// A time the caller sets and advances (for tests that need exact block times).
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A manual clock starting at `start_ms`.
    pub fn manual(start_ms: u64) -> Clock {
        Clock::Manual(Arc::new(AtomicU64::new(start_ms)))
    }

    /// The current time.
    pub fn now(&self) -> TimestampMs {
        match self {
            Clock::System => TimestampMs(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                    .unwrap_or(0),
            ),
            Clock::Manual(ms) => TimestampMs(ms.load(Ordering::SeqCst)),
        }
    }

    /// Move a manual clock forward by `ms` (no effect on the system clock).
    pub fn advance(&self, ms: u64) {
        if let Clock::Manual(now) = self {
            now.fetch_add(ms, Ordering::SeqCst);
        }
    }
}

/// Settings of a [`LocalChain`].
#[derive(Clone, Debug)]
pub struct LocalChainConfig {
    /// Most transactions waiting for a block.
    pub mempool_capacity: usize,
    /// Most transactions in one block (at most [`MAX_BLOCK_TXS`]).
    pub max_block_txs: usize,
    /// Most blocks kept for lookups and proofs (the oldest are dropped first).
    pub kept_blocks: usize,
    /// Block times.
    pub clock: Clock,
    /// Seed of the key named as every block's proposer.
    pub proposer_seed: [u8; 32],
    /// Bounds of the API's read model.
    pub hub: HubConfig,
}

impl Default for LocalChainConfig {
    fn default() -> Self {
        LocalChainConfig {
            mempool_capacity: 10_000,
            max_block_txs: 2_048,
            kept_blocks: 100_000,
            clock: Clock::System,
            proposer_seed: [0x11; 32],
            hub: HubConfig::default(),
        }
    }
}

#[derive(Debug)]
struct LocalState {
    ledger: Ledger,
    mempool: VecDeque<SignedTransaction>,
    pending: BTreeSet<Hash>,
    pending_nonces: BTreeSet<(AccountId, u64)>,
    keys: VerifyingKeyCache,
    parent: Hash,
    blocks: VecDeque<Arc<CommittedBlock>>,
}

/// See the module docs.
#[derive(Debug)]
pub struct LocalChain {
    state: Mutex<LocalState>,
    hub: FeedHub,
    proposer: AccountId,
    signer: ed25519_dalek::SigningKey,
    config: LocalChainConfig,
}

impl LocalChain {
    /// A chain at genesis.
    pub fn new(genesis: &Genesis, config: LocalChainConfig) -> Result<LocalChain, GenesisError> {
        let ledger = Ledger::from_genesis(genesis)?;
        let proposer = Keypair::from_seed(config.proposer_seed).account_id();
        let validators = vec![ValidatorView {
            public_key: proposer.to_hex(),
            voting_power: 1,
        }];
        let chain = ChainInfo::from_genesis(genesis, validators)?;
        let hub = FeedHub::new(chain, &ledger, config.hub.clone());
        Ok(LocalChain {
            state: Mutex::new(LocalState {
                ledger,
                mempool: VecDeque::new(),
                pending: BTreeSet::new(),
                pending_nonces: BTreeSet::new(),
                keys: VerifyingKeyCache::new(65_536),
                parent: Hash::ZERO,
                blocks: VecDeque::new(),
            }),
            hub,
            proposer,
            signer: ed25519_dalek::SigningKey::from_bytes(&config.proposer_seed),
            config,
        })
    }

    fn lock(&self) -> MutexGuard<'_, LocalState> {
        // The state is only changed by whole blocks under this lock; a panic mid-block is a
        // bug that already surfaced.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The clock block times come from.
    pub fn clock(&self) -> &Clock {
        &self.config.clock
    }

    /// Transactions waiting for a block.
    pub fn pending_count(&self) -> usize {
        self.lock().mempool.len()
    }

    /// Read the committed ledger.
    pub fn with_ledger<R>(&self, read: impl FnOnce(&Ledger) -> R) -> R {
        read(&self.lock().ledger)
    }

    /// Execute and commit a block of the pending transactions (possibly none) at the
    /// clock's time (never before the previous block's), publish it, and return its feed.
    pub fn commit_block(&self) -> Arc<BlockFeed> {
        let mut state = self.lock();
        let time = self.config.clock.now().max(state.ledger.last_block_time());
        let mut txs = Vec::new();
        let mut bytes = 64usize;
        let max_txs = self.config.max_block_txs.clamp(1, MAX_BLOCK_TXS);
        while let Some(front) = state.mempool.front() {
            let len = front.encode().len();
            if txs.len() >= max_txs || bytes + len > MAX_BLOCK_BYTES {
                break;
            }
            bytes += len;
            let tx = state.mempool.pop_front().expect("bug: front exists");
            state.pending.remove(&tx.hash());
            state.pending_nonces.remove(&(tx.tx.signer, tx.tx.nonce));
            txs.push(tx);
        }
        let parent = state.parent;
        let result = state
            .ledger
            .execute_block(parent, time, &txs)
            .expect("bug: block time is never before the previous block's");
        let mut block = Block {
            header: BlockHeader {
                chain_id: self.hub.chain().chain_id,
                height: result.height,
                time,
                parent_hash: parent,
                proposer: self.proposer,
                txs_root: Hash::ZERO,
                state_root: result.state_root,
                fills_root: result.fills_root,
            },
            txs,
        };
        block.header.txs_root = block.compute_txs_root();
        state.parent = block.hash();
        let certificate = self.certify(&block.header);
        let committed = CommittedBlock {
            block,
            certificate: Some(certificate.encode()),
            result,
        };
        let feed = self
            .hub
            .publish(committed)
            .expect("bug: local blocks are published in height order");
        state.blocks.push_back(feed.block.clone());
        while state.blocks.len() > self.config.kept_blocks.max(1) {
            state.blocks.pop_front();
        }
        feed
    }

    /// The one validator's precommit of `header`, as a commit certificate.
    fn certify(&self, header: &BlockHeader) -> CommitCertificate {
        let vote = Vote {
            chain_id: header.chain_id,
            height: Height(header.height),
            round: Round(0),
            vote_type: VoteType::Precommit,
            value_id: Some(header.hash()),
            validator: ValidatorIndex(0),
        };
        CommitCertificate {
            height: vote.height,
            round: vote.round,
            value_id: header.hash(),
            signatures: vec![CommitSignature {
                validator: vote.validator,
                signature: vote.sign(&self.signer).signature,
            }],
        }
    }

    /// Commit a block every `interval` while transactions wait, and an empty one at least
    /// every `idle` so that block time (expiries, dead-man switches) moves on. The task
    /// stops when the returned handle is dropped.
    pub fn spawn_producer(self: &Arc<Self>, interval: Duration, idle: Duration) -> BlockProducer {
        let chain = Arc::clone(self);
        let handle = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = tokio::time::Instant::now();
            loop {
                ticker.tick().await;
                if chain.pending_count() > 0 || last.elapsed() >= idle {
                    let chain = Arc::clone(&chain);
                    // Execution is CPU work; keep it off the async workers.
                    if tokio::task::spawn_blocking(move || chain.commit_block())
                        .await
                        .is_err()
                    {
                        tracing::error!("local chain: committing a block panicked");
                        return;
                    }
                    last = tokio::time::Instant::now();
                }
            }
        });
        BlockProducer { handle }
    }
}

/// A small genesis for demos and tests: USDC (asset 0, 6 decimals) and BTC (asset 1, 8
/// decimals), market 1 BTC-USDC with tick 0.01, lot 0.0001, minimum one lot, maker rebate 1
/// bp and taker fee 5 bp; each trader gets 1 000 000 USDC and 100 BTC.
pub fn demo_genesis(chain_id: u64, genesis_time_ms: u64, traders: &[AccountId]) -> Genesis {
    use dex_state::{Allocation, Limits};
    use dex_types::{Amount, AssetId, AssetSpec, ChainId, MarketId, MarketSpec, SizeLots};
    let mut allocations = Vec::new();
    for trader in traders {
        allocations.push(Allocation {
            account: *trader,
            asset: AssetId(0),
            amount: Amount(1_000_000 * 1_000_000),
        });
        allocations.push(Allocation {
            account: *trader,
            asset: AssetId(1),
            amount: Amount(100 * 100_000_000),
        });
    }
    Genesis {
        chain_id: ChainId(chain_id),
        genesis_time: TimestampMs(genesis_time_ms),
        assets: vec![
            AssetSpec {
                id: AssetId(0),
                symbol: "USDC".into(),
                decimals: 6,
            },
            AssetSpec {
                id: AssetId(1),
                symbol: "BTC".into(),
                decimals: 8,
            },
        ],
        markets: vec![MarketSpec {
            id: MarketId(1),
            base: AssetId(1),
            quote: AssetId(0),
            tick_size: rust_decimal::Decimal::new(1, 2),
            lot_size: rust_decimal::Decimal::new(1, 4),
            min_size_lots: SizeLots(1),
            maker_fee_bps: -1,
            taker_fee_bps: 5,
        }],
        allocations,
        fee_account: Keypair::from_seed([0xfe; 32]).account_id(),
        limits: Limits::default(),
    }
}

/// The background block producer of a [`LocalChain`]; dropping it stops the task.
#[derive(Debug)]
pub struct BlockProducer {
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for BlockProducer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

#[async_trait]
impl ApiBackend for LocalChain {
    fn hub(&self) -> &FeedHub {
        &self.hub
    }

    async fn submit(&self, tx: SignedTransaction) -> Result<(), SubmitError> {
        let hash = tx.hash();
        let now = self.config.clock.now();
        let mut state = self.lock();
        if state.pending.contains(&hash) {
            return Err(SubmitError::AlreadyPending);
        }
        if state.mempool.len() >= self.config.mempool_capacity {
            return Err(SubmitError::MempoolFull {
                capacity: self.config.mempool_capacity,
            });
        }
        state.keys.verify(&tx)?;
        state.ledger.check_transaction(&tx, now)?;
        let nonce = (tx.tx.signer, tx.tx.nonce);
        if state.pending_nonces.contains(&nonce) {
            return Err(SubmitError::NoncePending { nonce: nonce.1 });
        }
        state.pending.insert(hash);
        state.pending_nonces.insert(nonce);
        state.mempool.push_back(tx);
        Ok(())
    }

    fn is_pending(&self, tx_hash: &Hash) -> bool {
        self.lock().pending.contains(tx_hash)
    }

    async fn account(&self, account: AccountId) -> Result<AccountAt, BackendError> {
        let state = self.lock();
        Ok(AccountAt {
            height: state.ledger.height(),
            account: state.ledger.account(&account).cloned(),
        })
    }

    async fn balance_proof(
        &self,
        account: AccountId,
    ) -> Result<Option<BalanceProofAt>, BackendError> {
        let state = self.lock();
        Ok(state
            .ledger
            .balance_proof(&account)
            .map(|proof| BalanceProofAt {
                height: state.ledger.height(),
                proof,
            }))
    }

    async fn block(&self, height: u64) -> Result<Option<Arc<CommittedBlock>>, BackendError> {
        let state = self.lock();
        let Some(first) = state.blocks.front().map(|b| b.height()) else {
            return Ok(None);
        };
        Ok(height
            .checked_sub(first)
            .and_then(|at| usize::try_from(at).ok())
            .and_then(|at| state.blocks.get(at).cloned()))
    }

    fn render_metrics(&self, out: &mut String) {
        let state = self.lock();
        out.push_str("# HELP dex_local_mempool_txs Transactions waiting for a block.\n");
        out.push_str("# TYPE dex_local_mempool_txs gauge\n");
        out.push_str(&format!("dex_local_mempool_txs {}\n", state.mempool.len()));
        out.push_str("# HELP dex_local_height Height of the last committed block.\n");
        out.push_str("# TYPE dex_local_height gauge\n");
        out.push_str(&format!("dex_local_height {}\n", state.ledger.height()));
    }
}
