//! The async client: reads over HTTP, and signed transactions submitted safely.
//!
//! # Submitting without double orders
//! Every transaction is signed once, with a nonce from the [`NonceManager`], and that exact
//! signed transaction is what any retry sends again. A resubmitted transaction can never
//! execute twice (its nonce is spent the first time), so retrying after a timeout is safe.
//! Before resubmitting, the client asks where the first attempt stands (committed, pending,
//! or unknown) and, for a placement, asks for the order by its client order id.
//!
//! Every placement carries a client order id (the SDK assigns one when the caller does
//! not). After a restart, [`Client::place_once`] first asks the node for an order with
//! that id and returns it instead of placing a second one.

use crate::error::{Result, SdkError};
use crate::keys::TraderKey;
use crate::nonce::NonceManager;
use crate::order::OrderParams;
use dex_api::wire::*;
use dex_types::{
    AccountId, Action, AgentPolicy, Amount, ApproveAgent, AssetId, AssetSpec, BatchLeg,
    CancelTarget, ChainId, ClientOrderId, Hash, Market, MarketId, MarketSpec, ModifyOrder,
    OrderBatch, OrderId, RevokeAgent, ScheduleCancelAll, SignedTransaction, SizeLots, TimestampMs,
    Transaction, Transfer,
};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Settings of a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// How long after signing a transaction stays valid (its `expires_at`).
    pub tx_ttl: Duration,
    /// Whether submissions wait until committed (answering with the outcome).
    pub wait_for_commit: bool,
    /// Longest wait for a commit.
    pub commit_timeout: Duration,
    /// Most resubmissions of one transaction after transport errors.
    pub max_retries: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            request_timeout: Duration::from_secs(15),
            tx_ttl: Duration::from_secs(60),
            wait_for_commit: true,
            commit_timeout: Duration::from_secs(10),
            max_retries: 3,
        }
    }
}

/// One leg of a batch, in decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leg {
    /// Place an order.
    Place(OrderParams),
    /// Cancel orders.
    Cancel(CancelTarget),
}

/// The result of a placement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The client order id the order carries.
    pub client_order_id: ClientOrderId,
    /// Where the transaction stands.
    pub tx: TxStatusView,
    /// The order as the node reports it, once committed.
    pub order: Option<OrderStatusView>,
}

impl Placement {
    /// The order id, once committed and accepted.
    pub fn order_id(&self) -> Option<OrderId> {
        self.order.as_ref().and_then(|o| o.order_id).map(OrderId)
    }
}

fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The first client order id of a client started at `now_ms`: the time in the high bits
/// (so a later run never reuses an earlier run's ids) and 16 random bits (so two clients
/// of one account started in the same millisecond rarely overlap; if they do, the ledger
/// refuses the duplicate, it never places twice).
fn client_id_base(now_ms: u64) -> u64 {
    let mut noise = [0u8; 2];
    // Without randomness the time alone still gives distinct ids across runs.
    let _ = getrandom::fill(&mut noise);
    (now_ms << 16) | u64::from(u16::from_le_bytes(noise))
}

/// A connection to one node's API, optionally with a trading key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    chain: Arc<ChainView>,
    markets: Arc<BTreeMap<MarketId, Market>>,
    key: Option<Arc<TraderKey>>,
    nonces: Arc<NonceManager>,
    client_ids: Arc<AtomicU64>,
    /// Chain time at connect and when it was read, so `now` never runs behind the chain.
    chain_time: (u64, Instant),
    config: ClientConfig,
}

/// The validated markets of a chain view.
pub fn markets_of(chain: &ChainView) -> Result<BTreeMap<MarketId, Market>> {
    let mut out = BTreeMap::new();
    for view in &chain.markets {
        let asset = |a: &AssetView| AssetSpec {
            id: AssetId(a.id),
            symbol: a.symbol.clone(),
            decimals: a.decimals,
        };
        let spec = MarketSpec {
            id: MarketId(view.id),
            base: AssetId(view.base.id),
            quote: AssetId(view.quote.id),
            tick_size: view.tick_size,
            lot_size: view.lot_size,
            min_size_lots: SizeLots(view.min_size_lots),
            maker_fee_bps: view.maker_fee_bps,
            taker_fee_bps: view.taker_fee_bps,
        };
        let market = Market::new(spec, &asset(&view.base), &asset(&view.quote))
            .map_err(|e| SdkError::Protocol(format!("market {}: {e}", view.id)))?;
        out.insert(market.id(), market);
    }
    Ok(out)
}

impl Client {
    /// Connect to the API at `url` (`http://host:port`), read the chain and its markets,
    /// and, with a key, the signer's nonce window.
    pub async fn connect(
        url: &str,
        key: Option<TraderKey>,
        config: ClientConfig,
    ) -> Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| SdkError::Transport(e.to_string()))?;
        let base = url.trim_end_matches('/').to_string();
        let chain: ChainView = get_json(&http, &format!("{base}/v1/chain")).await?;
        let markets = markets_of(&chain)?;
        let mut highest = None;
        if let Some(key) = &key {
            let account: AccountView =
                get_json(&http, &format!("{base}/v1/accounts/{}", key.account())).await?;
            let signer = key.signer().to_hex();
            highest = account
                .nonces
                .iter()
                .find(|n| n.signer == signer)
                .and_then(|n| n.highest);
        }
        let chain_time = (chain.time_ms, Instant::now());
        let now = system_ms().max(chain.time_ms);
        Ok(Client {
            http,
            base,
            chain: Arc::new(chain),
            markets: Arc::new(markets),
            key: key.map(Arc::new),
            nonces: Arc::new(NonceManager::new(highest, now)),
            client_ids: Arc::new(AtomicU64::new(client_id_base(now))),
            chain_time,
            config,
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The chain as read at connect.
    pub fn chain(&self) -> &ChainView {
        &self.chain
    }

    /// The chain id.
    pub fn chain_id(&self) -> ChainId {
        ChainId(self.chain.chain_id)
    }

    /// Every listed market, validated.
    pub fn markets(&self) -> &BTreeMap<MarketId, Market> {
        &self.markets
    }

    /// One market.
    pub fn market(&self, id: MarketId) -> Result<&Market> {
        self.markets.get(&id).ok_or(SdkError::UnknownMarket(id))
    }

    /// The key, if any.
    pub fn key(&self) -> Option<&TraderKey> {
        self.key.as_deref()
    }

    /// The account of the key.
    pub fn account(&self) -> Result<AccountId> {
        Ok(self.key().ok_or(SdkError::NoKey)?.account())
    }

    /// The nonce manager (shared by clones of this client).
    pub fn nonces(&self) -> &NonceManager {
        &self.nonces
    }

    /// The time used for expiries and the dead-man switch: the system clock, but never
    /// behind the chain's block time.
    pub fn now(&self) -> TimestampMs {
        let chain = self
            .chain_time
            .0
            .saturating_add(u64::try_from(self.chain_time.1.elapsed().as_millis()).unwrap_or(0));
        TimestampMs(system_ms().max(chain))
    }

    /// A fresh client order id: unique across this client and later runs (time-based).
    pub fn next_client_order_id(&self) -> ClientOrderId {
        ClientOrderId(self.client_ids.fetch_add(1, Ordering::SeqCst))
    }

    // ------------------------------------------------------------ reads

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        get_json(&self.http, &format!("{}{path}", self.base)).await
    }

    async fn get_optional<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        match self.get(path).await {
            Ok(value) => Ok(Some(value)),
            Err(SdkError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The chain now (head height and time).
    pub async fn fetch_chain(&self) -> Result<ChainView> {
        self.get("/v1/chain").await
    }

    /// A market's book, `depth` levels per side.
    pub async fn book(&self, market: MarketId, depth: usize) -> Result<BookView> {
        self.get(&format!("/v1/markets/{market}/book?depth={depth}"))
            .await
    }

    /// The orders at one price level, in time priority.
    pub async fn level(
        &self,
        market: MarketId,
        side: SideView,
        price: Decimal,
    ) -> Result<LevelOrdersView> {
        let side = match side {
            SideView::Buy => "buy",
            SideView::Sell => "sell",
        };
        self.get(&format!("/v1/markets/{market}/book/{side}/{price}"))
            .await
    }

    /// A market's recent trades.
    pub async fn trades(&self, market: MarketId, limit: usize) -> Result<Vec<TradeView>> {
        self.get(&format!("/v1/markets/{market}/trades?limit={limit}"))
            .await
    }

    /// An account's balances and nonces (the key's account if `None`).
    pub async fn account_view(&self, account: Option<AccountId>) -> Result<AccountView> {
        let account = match account {
            Some(a) => a,
            None => self.account()?,
        };
        self.get(&format!("/v1/accounts/{account}")).await
    }

    /// One balance of the key's account: free and locked.
    pub async fn balance(&self, asset: AssetId) -> Result<(Decimal, Decimal)> {
        let view = self.account_view(None).await?;
        view.balances
            .iter()
            .find(|b| b.asset == asset.0)
            .map(|b| (b.free, b.locked))
            .ok_or_else(|| SdkError::Protocol(format!("no balance of asset {asset}")))
    }

    /// An account's open orders (the key's account if `None`).
    pub async fn open_orders(&self, account: Option<AccountId>) -> Result<Vec<OrderStatusView>> {
        let account = match account {
            Some(a) => a,
            None => self.account()?,
        };
        self.get(&format!("/v1/accounts/{account}/orders")).await
    }

    /// An account's recent fills, oldest first (the key's account if `None`).
    pub async fn fills(&self, account: Option<AccountId>, limit: usize) -> Result<Vec<FillView>> {
        let account = match account {
            Some(a) => a,
            None => self.account()?,
        };
        self.get(&format!("/v1/accounts/{account}/fills?limit={limit}"))
            .await
    }

    /// An order by id, if known.
    pub async fn order(&self, id: OrderId) -> Result<Option<OrderStatusView>> {
        self.get_optional(&format!("/v1/orders/{id}")).await
    }

    /// The key's account's order by client id, if known.
    pub async fn order_by_client_id(&self, id: ClientOrderId) -> Result<Option<OrderStatusView>> {
        let account = self.account()?;
        self.get_optional(&format!("/v1/accounts/{account}/orders/client/{id}"))
            .await
    }

    /// Where a transaction stands.
    pub async fn tx_status(&self, hash: &Hash) -> Result<TxStatusView> {
        self.get(&format!("/v1/txs/{hash}")).await
    }

    /// A block by height, if known.
    pub async fn block(&self, height: u64) -> Result<Option<BlockView>> {
        self.get_optional(&format!("/v1/blocks/{height}")).await
    }

    /// The last committed block.
    pub async fn latest_block(&self) -> Result<BlockView> {
        self.get("/v1/blocks/latest").await
    }

    /// The proof of committed item `index` of block `height`.
    pub async fn fill_proof(&self, height: u64, index: u32) -> Result<FillProofView> {
        self.get(&format!("/v1/blocks/{height}/fills/{index}/proof"))
            .await
    }

    /// The proof of an account's balances (the key's account if `None`).
    pub async fn balance_proof(&self, account: Option<AccountId>) -> Result<BalanceProofView> {
        let account = match account {
            Some(a) => a,
            None => self.account()?,
        };
        self.get(&format!("/v1/accounts/{account}/balance-proof"))
            .await
    }

    /// Fetch and verify a fill proof against the chain's validator set as the node reported
    /// it at connect (pin your own set with [`crate::verify::verify_fill`] for full
    /// independence from the node).
    pub async fn verify_fill(
        &self,
        height: u64,
        index: u32,
    ) -> Result<crate::verify::VerifiedItem> {
        let view = self.fill_proof(height, index).await?;
        let set = crate::verify::validator_set(&self.chain.validators)?;
        Ok(crate::verify::verify_fill(&view, Some(&set))?)
    }

    // ------------------------------------------------------------ transactions

    /// Sign `action` with the next nonce and submit it safely (see the module docs).
    pub async fn submit_action(&self, action: Action) -> Result<TxStatusView> {
        let key = self.key().ok_or(SdkError::NoKey)?;
        // A refused nonce (raced by another process of the same signer) is re-signed with a
        // fresh one: the refused transaction never entered the mempool.
        for _ in 0..3 {
            let lease = self.nonces.lease().await;
            let expires_at =
                TimestampMs(self.now().0.saturating_add(
                    u64::try_from(self.config.tx_ttl.as_millis()).unwrap_or(u64::MAX),
                ));
            let tx = Transaction {
                chain_id: self.chain_id(),
                account: key.account(),
                signer: key.signer(),
                nonce: lease.nonce,
                expires_at,
                action: action.clone(),
            };
            let signed = key.sign(tx)?;
            match self.submit_signed(&signed).await {
                Err(SdkError::Api { code, .. })
                    if matches!(
                        code.as_str(),
                        "nonce_replayed" | "nonce_too_old" | "nonce_pending"
                    ) =>
                {
                    if let Ok(view) = self.account_view(None).await {
                        let signer = key.signer().to_hex();
                        if let Some(h) = view
                            .nonces
                            .iter()
                            .find(|n| n.signer == signer)
                            .and_then(|n| n.highest)
                        {
                            self.nonces.observe(h);
                        }
                    }
                    continue;
                }
                other => return other,
            }
        }
        Err(SdkError::Protocol(
            "the node refused three fresh nonces in a row".into(),
        ))
    }

    /// Submit an already signed transaction; retries resend the same bytes after asking
    /// whether the first attempt landed.
    pub async fn submit_signed(&self, signed: &SignedTransaction) -> Result<TxStatusView> {
        let hash = signed.hash();
        let request = SubmitRequest {
            tx: hex::encode(signed.encode()),
            wait_for_commit: self.config.wait_for_commit,
            wait_timeout_ms: Some(
                u64::try_from(self.config.commit_timeout.as_millis()).unwrap_or(u64::MAX),
            ),
        };
        let mut attempt = 0;
        loop {
            let sent = post_json::<_, TxStatusView>(
                &self.http,
                &format!("{}/v1/txs", self.base),
                &request,
            )
            .await;
            let error = match sent {
                Ok(status) => return self.settle(status).await,
                Err(SdkError::Api { code, .. }) if code == "already_pending" => {
                    return self
                        .settle(TxStatusView {
                            tx_hash: hash.to_hex(),
                            state: TxState::Pending,
                            outcome: None,
                            dropped: None,
                        })
                        .await;
                }
                // Our own earlier attempt may have spent the nonce: then it is committed.
                Err(e) if e.code() == Some("nonce_replayed") => {
                    return match self.tx_status(&hash).await {
                        Ok(status) if status.state == TxState::Committed => Ok(status),
                        _ => Err(e),
                    };
                }
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => e,
            };
            // Did the first attempt land? Never resubmit what is pending or committed.
            if let Ok(status) = self.tx_status(&hash).await
                && status.state != TxState::Unknown
            {
                return self.settle(status).await;
            }
            attempt += 1;
            if attempt > self.config.max_retries {
                return Err(error);
            }
            tokio::time::sleep(Duration::from_millis(100u64 << attempt.min(6))).await;
        }
    }

    /// Submit already signed transactions in one request (`POST /v1/txs/batch`, at most
    /// [`MAX_BATCH_TXS`]; more is refused whole with `batch_too_large`). The answer has
    /// one result per transaction, in the order given: its id when admitted (pending; the
    /// batch route never waits for the commit), or the node's refusal of that transaction
    /// alone as [`SdkError::Api`] with the status and code the single route would have
    /// answered (so [`SdkError::is_retryable`] tells which are worth sending again).
    ///
    /// Nothing is retried here: when the request as a whole fails (the `Err` of the
    /// outer result, e.g. a broken connection) some transactions may have been admitted,
    /// so ask [`Client::tx_status`] before sending any of them again.
    pub async fn submit_batch(&self, txs: &[SignedTransaction]) -> Result<Vec<Result<Hash>>> {
        let request = SubmitBatchRequest {
            txs: txs.iter().map(|tx| hex::encode(tx.encode())).collect(),
        };
        let answer: SubmitBatchResponse =
            post_json(&self.http, &format!("{}/v1/txs/batch", self.base), &request).await?;
        batch_results(txs, answer)
    }

    /// With `wait_for_commit`, poll a pending transaction until committed or timed out.
    async fn settle(&self, status: TxStatusView) -> Result<TxStatusView> {
        if !self.config.wait_for_commit || status.state != TxState::Pending {
            return Ok(status);
        }
        let hash = Hash::from_hex(&status.tx_hash)
            .map_err(|e| SdkError::Protocol(format!("tx hash: {e}")))?;
        let deadline = Instant::now() + self.config.commit_timeout;
        while Instant::now() < deadline {
            let now = self.tx_status(&hash).await?;
            // Committed, or dropped (it never will be): either way, done waiting.
            if matches!(now.state, TxState::Committed | TxState::Dropped) {
                return Ok(now);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(status)
    }

    /// Place one order (a batch of one), with a client order id.
    pub async fn place(&self, order: OrderParams) -> Result<Placement> {
        let market = self.market(order.market)?;
        let cid = order
            .client_order_id
            .unwrap_or_else(|| self.next_client_order_id());
        let request = order.to_request(market, Some(cid))?;
        let tx = self
            .submit_action(Action::Batch(OrderBatch {
                legs: vec![BatchLeg::Place(request)],
                atomic: true,
            }))
            .await?;
        let order = tx.outcome.as_ref().and_then(|o| {
            o.orders
                .iter()
                .find(|v| v.client_order_id == Some(cid.0))
                .cloned()
        });
        Ok(Placement {
            client_order_id: cid,
            tx,
            order,
        })
    }

    /// Place an order with a given client order id only if the node knows no order with
    /// that id (open, or finished within its retention window): safe to call again after
    /// a crash or restart.
    pub async fn place_once(&self, order: OrderParams, cid: ClientOrderId) -> Result<Placement> {
        if let Some(existing) = self.order_by_client_id(cid).await?
            && existing.state != OrderState::Rejected
        {
            return Ok(Placement {
                client_order_id: cid,
                tx: TxStatusView {
                    tx_hash: existing.tx_hash.clone(),
                    state: TxState::Committed,
                    outcome: None,
                    dropped: None,
                },
                order: Some(existing),
            });
        }
        self.place(order.client_id(cid)).await
    }

    /// Apply legs in order; with `atomic`, all or none.
    pub async fn batch(&self, legs: Vec<Leg>, atomic: bool) -> Result<TxStatusView> {
        let mut out = Vec::with_capacity(legs.len());
        for leg in legs {
            out.push(match leg {
                Leg::Place(order) => {
                    let market = self.market(order.market)?;
                    let cid = order
                        .client_order_id
                        .unwrap_or_else(|| self.next_client_order_id());
                    BatchLeg::Place(order.to_request(market, Some(cid))?)
                }
                Leg::Cancel(target) => BatchLeg::Cancel(target),
            });
        }
        self.submit_action(Action::Batch(OrderBatch { legs: out, atomic }))
            .await
    }

    /// Cancel orders.
    pub async fn cancel(&self, target: CancelTarget) -> Result<TxStatusView> {
        self.batch(vec![Leg::Cancel(target)], true).await
    }

    /// Cancel every open order, in one market or all.
    pub async fn cancel_all(&self, market: Option<MarketId>) -> Result<TxStatusView> {
        self.cancel(market.map_or(CancelTarget::All, CancelTarget::Market))
            .await
    }

    /// Change a resting order's price and/or size (decimals of its market).
    pub async fn modify(
        &self,
        market: MarketId,
        order_id: OrderId,
        price: Option<Decimal>,
        size: Option<Decimal>,
    ) -> Result<TxStatusView> {
        let m = self.market(market)?;
        let modify = ModifyOrder {
            order_id,
            price_ticks: price.map(|p| m.price_to_ticks(p)).transpose()?,
            size_lots: size.map(|s| m.size_to_lots(s)).transpose()?,
        };
        self.submit_action(Action::Modify(modify)).await
    }

    /// Arm the dead-man switch: cancel all orders at `at` (`None` disarms it).
    pub async fn schedule_cancel_all(&self, at: Option<TimestampMs>) -> Result<TxStatusView> {
        self.submit_action(Action::ScheduleCancelAll(ScheduleCancelAll { at }))
            .await
    }

    /// Arm the dead-man switch `after` from now.
    pub async fn dead_man_switch(&self, after: Duration) -> Result<TxStatusView> {
        let at = self
            .now()
            .0
            .saturating_add(u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
        self.schedule_cancel_all(Some(TimestampMs(at))).await
    }

    /// Move free funds to another account (`amount` in the asset's decimals).
    pub async fn transfer(
        &self,
        to: AccountId,
        asset: AssetId,
        amount: Decimal,
    ) -> Result<TxStatusView> {
        let spec = self
            .chain
            .assets
            .iter()
            .find(|a| a.id == asset.0)
            .map(|a| AssetSpec {
                id: asset,
                symbol: a.symbol.clone(),
                decimals: a.decimals,
            })
            .ok_or_else(|| SdkError::Protocol(format!("asset {asset} is not listed")))?;
        let amount: Amount = spec.amount_from_decimal(amount)?;
        self.submit_action(Action::Transfer(Transfer { to, asset, amount }))
            .await
    }

    /// Let `agent` place, modify and cancel orders for this account within `policy`.
    pub async fn approve_agent(
        &self,
        agent: AccountId,
        policy: AgentPolicy,
    ) -> Result<TxStatusView> {
        self.submit_action(Action::ApproveAgent(ApproveAgent { agent, policy }))
            .await
    }

    /// Revoke an agent (from the next block on).
    pub async fn revoke_agent(&self, agent: AccountId) -> Result<TxStatusView> {
        self.submit_action(Action::RevokeAgent(RevokeAgent { agent }))
            .await
    }
}

/// Match a batch answer to the submitted transactions: one result per transaction, each
/// naming the transaction it answers.
fn batch_results(
    txs: &[SignedTransaction],
    answer: SubmitBatchResponse,
) -> Result<Vec<Result<Hash>>> {
    if answer.results.len() != txs.len() {
        return Err(SdkError::Protocol(format!(
            "{} results for a batch of {} transactions",
            answer.results.len(),
            txs.len()
        )));
    }
    txs.iter()
        .zip(answer.results)
        .enumerate()
        .map(|(i, (tx, item))| {
            let hash = tx.hash();
            // A transaction the node decoded is named by its id; ours always decode.
            if item.tx_hash.as_deref() != Some(hash.to_hex().as_str()) {
                return Err(SdkError::Protocol(format!(
                    "batch item {i} answers for {:?}, not {hash}",
                    item.tx_hash
                )));
            }
            match (item.state, item.error) {
                (Some(TxState::Pending), None) => Ok(Ok(hash)),
                (None, Some(error)) => Ok(Err(SdkError::Api {
                    status: error.status,
                    code: error.code,
                    message: error.message,
                })),
                (state, error) => Err(SdkError::Protocol(format!(
                    "batch item {i} is neither pending nor refused: state {state:?}, error {error:?}"
                ))),
            }
        })
        .collect()
}

async fn answer<T: DeserializeOwned>(response: reqwest::Response) -> Result<T> {
    let status = response.status();
    if status.is_success() {
        return Ok(response.json().await?);
    }
    let text = response.text().await?;
    match serde_json::from_str::<dex_api::ErrorBody>(&text) {
        Ok(body) => Err(SdkError::Api {
            status: status.as_u16(),
            code: body.code,
            message: body.message,
        }),
        Err(_) => Err(SdkError::Api {
            status: status.as_u16(),
            code: "http_error".into(),
            message: text.chars().take(200).collect(),
        }),
    }
}

async fn get_json<T: DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T> {
    answer(http.get(url).send().await?).await
}

async fn post_json<B: serde::Serialize, T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: &B,
) -> Result<T> {
    answer(http.post(url).json(body).send().await?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_types::Keypair;

    fn transfer(nonce: u64) -> SignedTransaction {
        let to = Keypair::from_seed([4; 32]).account_id();
        dex_workload::transfer(&Keypair::from_seed([3; 32]), ChainId(1), nonce, to, 1)
    }

    fn pending(tx: &SignedTransaction) -> BatchItemView {
        BatchItemView {
            tx_hash: Some(tx.hash().to_hex()),
            state: Some(TxState::Pending),
            error: None,
        }
    }

    #[test]
    fn a_batch_answer_must_match_the_batch_item_for_item() {
        let txs = [transfer(1), transfer(2)];
        let refused = BatchItemView {
            tx_hash: Some(txs[1].hash().to_hex()),
            state: None,
            error: Some(BatchItemError {
                status: 503,
                code: "mempool_full".into(),
                message: "full".into(),
            }),
        };
        let results = batch_results(
            &txs,
            SubmitBatchResponse {
                results: vec![pending(&txs[0]), refused.clone()],
            },
        )
        .unwrap();
        assert_eq!(results[0].as_ref().unwrap(), &txs[0].hash());
        let error = results[1].as_ref().unwrap_err();
        assert_eq!(error.code(), Some("mempool_full"));
        assert!(error.is_retryable());
        // Too few results, results out of order, or an item both pending and refused:
        // the node broke the contract, and no item's fate can be trusted.
        let broken = [
            vec![pending(&txs[0])],
            vec![pending(&txs[1]), pending(&txs[0])],
            vec![
                pending(&txs[0]),
                BatchItemView {
                    state: Some(TxState::Pending),
                    ..refused
                },
            ],
        ];
        for results in broken {
            assert!(matches!(
                batch_results(&txs, SubmitBatchResponse { results }),
                Err(SdkError::Protocol(_))
            ));
        }
    }
}
