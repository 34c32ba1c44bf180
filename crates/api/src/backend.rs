//! What the API needs from a chain: the [`ApiBackend`] trait, and the data it hands over.
//!
//! The trait is deliberately narrow. Everything the API can derive from committed blocks
//! (books, order status, fills, trades, transaction outcomes, subscriptions) it derives
//! itself in the [`FeedHub`](crate::FeedHub), which the backend feeds with each committed
//! block; the backend answers only what needs its mempool or its ledger.

use crate::error::{BackendError, SubmitError};
use crate::hub::FeedHub;
use crate::wire::ValidatorView;
use async_trait::async_trait;
use dex_state::{Account, BalanceProof, BlockResult, Genesis, GenesisError, Rejection};
use dex_types::{AccountId, AssetSpec, Block, ChainId, Hash, Market, MarketId, SignedTransaction};
use std::sync::Arc;

/// A committed block with everything the API serves about it.
#[derive(Clone, Debug)]
pub struct CommittedBlock {
    /// Header and transactions.
    pub block: Block,
    /// The canonical bytes (`encode()`) of the block's `dex_consensus::CommitCertificate`,
    /// whose `value_id` is the header hash and `height` the block height; `None` only if
    /// the backend has none for this block.
    pub certificate: Option<Vec<u8>>,
    /// What executing the block produced. For a block read back from storage the `events`
    /// may be empty. `outcomes` and `committed` make the outcomes and the fill proofs; a
    /// backend whose storage keeps blocks and certificates but not what executing them
    /// produced (the node) leaves both empty for a block that had transactions, rather than
    /// re-execute it, which would need the state before it: see
    /// [`CommittedBlock::execution_known`].
    pub result: BlockResult,
}

impl CommittedBlock {
    /// The block's height.
    pub fn height(&self) -> u64 {
        self.block.header.height
    }

    /// Whether `result` holds the block's outcomes and committed items. Every transaction
    /// has exactly one outcome, so a block with transactions and no outcomes was read back
    /// without its execution result. A block without transactions commits no items
    /// (fills and withdrawal receipts come only from transactions), so its empty result is
    /// complete.
    pub fn execution_known(&self) -> bool {
        self.result.outcomes.len() == self.block.txs.len()
    }
}

/// An admitted transaction that a committed block made impossible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedTx {
    /// The height of that block.
    pub height: u64,
    /// What the committed state says about the transaction now.
    pub reason: Rejection,
}

/// The chain's fixed facts: id, genesis hash, assets, markets, validators.
#[derive(Clone, Debug)]
pub struct ChainInfo {
    /// Chain id.
    pub chain_id: ChainId,
    /// Genesis hash.
    pub genesis_hash: Hash,
    /// Listed assets, ascending id.
    pub assets: Vec<AssetSpec>,
    /// Listed markets, validated, ascending id.
    pub markets: Vec<Market>,
    /// The validator set that signs commit certificates.
    pub validators: Vec<ValidatorView>,
}

impl ChainInfo {
    /// The facts of a chain started from `genesis` with these validators.
    pub fn from_genesis(
        genesis: &Genesis,
        validators: Vec<ValidatorView>,
    ) -> Result<ChainInfo, GenesisError> {
        // Building a ledger runs every genesis check; it is cheap for a genesis (no orders).
        dex_state::Ledger::from_genesis(genesis)?;
        let asset = |id| {
            genesis
                .assets
                .iter()
                .find(|a| a.id == id)
                .expect("bug: validated genesis lists every market asset")
        };
        let markets = genesis
            .markets
            .iter()
            .map(|spec| {
                Market::new(spec.clone(), asset(spec.base), asset(spec.quote))
                    .expect("bug: validated genesis market is valid")
            })
            .collect();
        Ok(ChainInfo {
            chain_id: genesis.chain_id,
            genesis_hash: genesis.hash(),
            assets: genesis.assets.clone(),
            markets,
            validators,
        })
    }

    /// The market with this id.
    pub fn market(&self, id: MarketId) -> Option<&Market> {
        self.markets
            .binary_search_by_key(&id, |m| m.id())
            .ok()
            .map(|i| &self.markets[i])
    }

    /// The asset with this id.
    pub fn asset(&self, id: dex_types::AssetId) -> Option<&AssetSpec> {
        self.assets
            .binary_search_by_key(&id, |a| a.id)
            .ok()
            .map(|i| &self.assets[i])
    }
}

/// An account as the ledger holds it after a committed block.
#[derive(Clone, Debug)]
pub struct AccountAt {
    /// The block height of the state read.
    pub height: u64,
    /// The account, if the ledger holds it.
    pub account: Option<Account>,
}

/// A balance proof against the state root of the block at `height`.
#[derive(Clone, Debug)]
pub struct BalanceProofAt {
    /// The block whose header's state root the proof leads to.
    pub height: u64,
    /// The proof.
    pub proof: BalanceProof,
}

/// What a chain (the validator node, or [`LocalChain`](crate::LocalChain)) provides to the
/// API.
///
/// Implementors publish every committed block, in height order, with
/// [`FeedHub::publish`] on the hub they return from [`ApiBackend::hub`], after the block is
/// durable and before or while answering reads about it.
#[async_trait]
pub trait ApiBackend: Send + Sync + 'static {
    /// The hub the backend publishes committed blocks to: the API's read model and
    /// subscription source.
    fn hub(&self) -> &FeedHub;

    /// Admit a decoded transaction to the mempool: verify its signature, run the ledger's
    /// admission check ([`dex_state::Ledger::check_transaction`]) against the committed state,
    /// and refuse duplicates. `Ok` means it is pending and will be proposed.
    async fn submit(&self, tx: SignedTransaction) -> Result<(), SubmitError>;

    /// Admit several decoded transactions, each exactly as [`ApiBackend::submit`] would:
    /// one result per transaction, in the order given, and one refusal never affects the
    /// others. The API's batch route calls it with at most
    /// [`MAX_BATCH_TXS`](crate::wire::MAX_BATCH_TXS) transactions.
    ///
    /// The default submits them one after another, so every backend supports batches; a
    /// backend whose per-submission cost is mostly fixed (a queue hop, a reply channel)
    /// overrides it to pay that cost once per batch.
    async fn submit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<(), SubmitError>> {
        let mut results = Vec::with_capacity(txs.len());
        for tx in txs {
            results.push(self.submit(tx).await);
        }
        results
    }

    /// Whether the transaction with this id waits in the mempool.
    fn is_pending(&self, tx_hash: &Hash) -> bool;

    /// Whether the transaction with this id was admitted and then dropped from the mempool
    /// because a committed block made it impossible, and why. A backend that keeps no such
    /// record answers `None` (the status is then `unknown`).
    fn dropped(&self, _tx_hash: &Hash) -> Option<DroppedTx> {
        None
    }

    /// An account after the last committed block.
    async fn account(&self, account: AccountId) -> Result<AccountAt, BackendError>;

    /// The proof of an account's balances after a committed block, or `None` if the ledger
    /// does not hold the account. The proof and the height must come from the same state.
    async fn balance_proof(
        &self,
        account: AccountId,
    ) -> Result<Option<BalanceProofAt>, BackendError>;

    /// A committed block by height. The default reads the hub's retained blocks; a node
    /// overrides it to read older blocks from storage.
    async fn block(&self, height: u64) -> Result<Option<Arc<CommittedBlock>>, BackendError> {
        Ok(self.hub().block(height))
    }

    /// Append the backend's own Prometheus metrics (text exposition format) to `out`; the
    /// API's `/metrics` serves them after its own.
    fn render_metrics(&self, out: &mut String) {
        let _ = out;
    }
}
