//! The HTTP routes under `/v1`, their extractors, limits and OpenAPI description.

use crate::backend::{ApiBackend, CommittedBlock};
use crate::convert;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::limit::{Quota, RateLimiter};
use crate::wire::*;
use crate::ws::{self, WsConfig};
use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State,
};
use axum::http::{StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dex_types::{
    AccountId, Action, ClientOrderId, ExecutionClass, Hash, MAX_TX_BYTES, MarketId, OrderId,
    SignedTransaction,
};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use utoipa::OpenApi;

/// Settings of the API.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Largest request body, in bytes. `POST /v1/txs/batch` takes the larger of this and
    /// [`BATCH_BODY_BYTES_MAX`], so a full batch fits without raising the limit everywhere.
    pub max_body_bytes: usize,
    /// Requests per client IP (every route; a submission counts unless it only cancels).
    pub per_ip: Quota,
    /// Submissions per account (cancels and dead-man switch refreshes are never limited).
    pub per_account: Quota,
    /// Most clients (IPs, accounts) each limiter tracks.
    pub max_tracked_clients: usize,
    /// Default wait for a commit when a submission asks to wait.
    pub default_wait: Duration,
    /// Longest wait for a commit a submission may ask for.
    pub max_wait: Duration,
    /// WebSocket settings.
    pub ws: WsConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 64 * 1024,
            per_ip: Quota {
                per_second: 200,
                burst: 400,
            },
            per_account: Quota {
                per_second: 50,
                burst: 100,
            },
            max_tracked_clients: 100_000,
            default_wait: Duration::from_secs(10),
            max_wait: Duration::from_secs(60),
            ws: WsConfig::default(),
        }
    }
}

/// Counters the API keeps for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ApiMetrics {
    pub requests: AtomicU64,
    pub errors_4xx: AtomicU64,
    pub errors_5xx: AtomicU64,
    pub rate_limited: AtomicU64,
    pub txs_admitted: AtomicU64,
    pub txs_refused: AtomicU64,
    pub ws_connections: AtomicU64,
    pub ws_messages: AtomicU64,
}

/// What every handler can reach.
pub(crate) struct AppState {
    pub backend: Arc<dyn ApiBackend>,
    pub config: ApiConfig,
    pub ip_limiter: RateLimiter<IpAddr>,
    pub account_limiter: RateLimiter<AccountId>,
    pub metrics: ApiMetrics,
    /// Turns true when the server shuts down: WebSocket connections close on it.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The sender of `shutdown` when nothing outside holds it.
    pub _keep_open: Option<tokio::sync::watch::Sender<bool>>,
}

pub(crate) type Shared = Arc<AppState>;

/// The API's router: every `/v1` route, `/metrics`, JSON 404/405, body limit and per-IP
/// limits. Serve it with [`crate::serve`] (which records client addresses for the per-IP
/// limit).
pub fn router(backend: Arc<dyn ApiBackend>, config: ApiConfig) -> Router {
    // Nothing ever signals this one; the state keeps its sender so it never closes.
    let (sender, shutdown) = tokio::sync::watch::channel(false);
    build(backend, config, shutdown, Some(sender))
}

/// [`router`] whose WebSocket connections close when `shutdown` turns true (so a graceful
/// server shutdown does not wait on long-lived subscriptions).
pub fn router_with_shutdown(
    backend: Arc<dyn ApiBackend>,
    config: ApiConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Router {
    build(backend, config, shutdown, None)
}

fn build(
    backend: Arc<dyn ApiBackend>,
    config: ApiConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
    keep_open: Option<tokio::sync::watch::Sender<bool>>,
) -> Router {
    let state = Arc::new(AppState {
        shutdown,
        _keep_open: keep_open,
        ip_limiter: RateLimiter::new(config.per_ip, config.max_tracked_clients),
        account_limiter: RateLimiter::new(config.per_account, config.max_tracked_clients),
        backend,
        metrics: ApiMetrics::default(),
        config,
    });
    Router::new()
        .route("/v1/chain", get(chain))
        .route("/v1/markets", get(markets))
        .route("/v1/markets/{market}/book", get(book))
        .route("/v1/markets/{market}/book/{side}/{price}", get(level))
        .route("/v1/markets/{market}/trades", get(trades))
        .route("/v1/txs", post(submit))
        // Its own body limit: a full batch of maximum-size transactions is far above the
        // limit every other route keeps.
        .route(
            "/v1/txs/batch",
            post(submit_batch).layer(DefaultBodyLimit::max(
                BATCH_BODY_BYTES_MAX.max(state.config.max_body_bytes),
            )),
        )
        .route("/v1/txs/{hash}", get(tx_status))
        .route("/v1/accounts/{account}", get(account))
        .route("/v1/accounts/{account}/orders", get(open_orders))
        .route(
            "/v1/accounts/{account}/orders/client/{client_order_id}",
            get(order_by_client_id),
        )
        .route("/v1/accounts/{account}/fills", get(fills))
        .route("/v1/accounts/{account}/balance-proof", get(balance_proof))
        .route("/v1/orders/{order_id}", get(order))
        .route("/v1/blocks/latest", get(latest_block))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/blocks/{height}/fills/{index}/proof", get(fill_proof))
        .route("/v1/ws", get(ws::upgrade))
        .route("/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// The client's IP as recorded by [`crate::serve`]; the unspecified address when the router
/// runs without it (then every such client shares one bucket).
fn client_ip(parts_extensions: &axum::http::Extensions) -> IpAddr {
    parts_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The body limit of `POST /v1/txs/batch`: [`MAX_BATCH_TXS`] transactions of
/// [`MAX_TX_BYTES`] each as hex strings with their quotes and commas, plus room for the
/// object around them (compact JSON; whitespace between items counts against it).
pub const BATCH_BODY_BYTES_MAX: usize = MAX_BATCH_TXS * (2 * MAX_TX_BYTES + 3) + 1_024;

/// Counts requests and errors, and applies the per-IP limit (submissions apply it
/// themselves once they know whether each transaction only cancels).
async fn guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
    state.metrics.requests.fetch_add(1, Ordering::Relaxed);
    let is_submit = request.method() == axum::http::Method::POST
        && matches!(request.uri().path(), "/v1/txs" | "/v1/txs/batch");
    if !is_submit {
        let ip = client_ip(request.extensions());
        if let Err(wait) = state.ip_limiter.check(&ip, Instant::now()) {
            state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            return rate_limited(&state, "this address", wait).into_response();
        }
    }
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() {
        state.metrics.errors_4xx.fetch_add(1, Ordering::Relaxed);
    } else if status.is_server_error() {
        state.metrics.errors_5xx.fetch_add(1, Ordering::Relaxed);
    }
    response
}

fn rate_limited(state: &AppState, who: &str, wait: Duration) -> ApiError {
    let _ = state;
    ApiError::rate_limited(format!(
        "too many requests from {who}; retry in {} ms",
        wait.as_millis().max(1)
    ))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

// ------------------------------------------------------------------ extractors

/// A JSON body with the API's own errors: 413 past the body limit, 400 `malformed_json`,
/// `unknown_field` or `invalid_field`.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "the request body is larger than the limit",
                    )
                } else {
                    ApiError::bad_request(rejection.body_text())
                }
            })?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|error| {
                use serde_json::error::Category;
                match error.classify() {
                    Category::Data if error.to_string().starts_with("unknown field") => {
                        ApiError::new(StatusCode::BAD_REQUEST, "unknown_field", error.to_string())
                    }
                    Category::Data => {
                        ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", error.to_string())
                    }
                    Category::Syntax | Category::Eof | Category::Io => {
                        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", error.to_string())
                    }
                }
            })
    }
}

/// The client's IP (see [`client_ip`]).
pub(crate) struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.extensions)))
    }
}

/// A query string with the API's own errors (400 `bad_query`, unknown parameters refused).
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|rejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_query", rejection.body_text())
            })
    }
}

fn parse<T: FromStr>(what: &str, text: &str) -> ApiResult<T> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("{what} {text:?} is not valid")))
}

fn parse_account(text: &str) -> ApiResult<AccountId> {
    AccountId::from_hex(text).map_err(|e| ApiError::bad_request(format!("account {text:?}: {e}")))
}

fn parse_market(state: &AppState, text: &str) -> ApiResult<MarketId> {
    let market = MarketId(parse("market", text)?);
    if state.backend.hub().chain().market(market).is_none() {
        return Err(ApiError::not_found(format!(
            "market {market} is not listed"
        )));
    }
    Ok(market)
}

fn limit(requested: Option<usize>) -> usize {
    requested.unwrap_or(100).clamp(1, MAX_LIST_LIMIT)
}

// ------------------------------------------------------------------ chain and markets

/// The view of every listed market.
pub(crate) fn market_views(state: &AppState) -> Vec<MarketView> {
    let chain = state.backend.hub().chain();
    let asset = |id| {
        chain
            .asset(id)
            .map(|a| AssetView {
                id: a.id.0,
                symbol: a.symbol.clone(),
                decimals: a.decimals,
            })
            .expect("bug: a listed market names a listed asset")
    };
    chain
        .markets
        .iter()
        .map(|m| {
            let spec = m.spec();
            let (base, quote) = (asset(spec.base), asset(spec.quote));
            MarketView {
                id: spec.id.0,
                name: format!("{}-{}", base.symbol, quote.symbol),
                base,
                quote,
                tick_size: spec.tick_size,
                lot_size: spec.lot_size,
                min_size_lots: spec.min_size_lots.0,
                maker_fee_bps: spec.maker_fee_bps,
                taker_fee_bps: spec.taker_fee_bps,
            }
        })
        .collect()
}

/// The chain: id, head, assets, markets and validators.
#[utoipa::path(get, path = "/v1/chain", responses((status = 200, body = ChainView)))]
async fn chain(State(state): State<Shared>) -> Json<ChainView> {
    let hub = state.backend.hub();
    let chain = hub.chain();
    let (height, time) = {
        let index = hub.read();
        (index.height(), index.time())
    };
    Json(ChainView {
        chain_id: chain.chain_id.0,
        genesis_hash: chain.genesis_hash.to_hex(),
        height,
        time_ms: time.0,
        assets: chain
            .assets
            .iter()
            .map(|a| AssetView {
                id: a.id.0,
                symbol: a.symbol.clone(),
                decimals: a.decimals,
            })
            .collect(),
        markets: market_views(&state),
        validators: chain.validators.clone(),
    })
}

/// Every listed market with its tick, lot and fees.
#[utoipa::path(get, path = "/v1/markets", responses((status = 200, body = Vec<MarketView>)))]
async fn markets(State(state): State<Shared>) -> Json<Vec<MarketView>> {
    Json(market_views(&state))
}

/// A market's L2 book with its sequence number and checksum.
#[utoipa::path(get, path = "/v1/markets/{market}/book",
    params(("market" = u32, Path, description = "Market id"),
           ("depth" = Option<usize>, Query, description = "Levels per side (default 50, at most 1000)")),
    responses((status = 200, body = BookView), (status = 404, body = ErrorBody)))]
async fn book(
    State(state): State<Shared>,
    Path(market): Path<String>,
    ApiQuery(query): ApiQuery<DepthQuery>,
) -> ApiResult<Json<BookView>> {
    let market = parse_market(&state, &market)?;
    let depth = query.depth.unwrap_or(50).clamp(1, MAX_DEPTH_LEVELS);
    state
        .backend
        .hub()
        .read()
        .book(market, depth)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such market"))
}

/// The orders resting at one price level, in time priority.
#[utoipa::path(get, path = "/v1/markets/{market}/book/{side}/{price}",
    params(("market" = u32, Path, description = "Market id"),
           ("side" = String, Path, description = "`buy` or `sell`"),
           ("price" = String, Path, description = "Decimal price, a whole number of ticks")),
    responses((status = 200, body = LevelOrdersView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn level(
    State(state): State<Shared>,
    Path((market, side, price)): Path<(String, String, String)>,
) -> ApiResult<Json<LevelOrdersView>> {
    let market = parse_market(&state, &market)?;
    let side = match side.as_str() {
        "buy" => dex_types::Side::Buy,
        "sell" => dex_types::Side::Sell,
        _ => {
            return Err(ApiError::bad_request(format!(
                "side {side:?} is not buy or sell"
            )));
        }
    };
    let price: Decimal = parse("price", &price)?;
    let hub = state.backend.hub();
    let ticks = hub
        .chain()
        .market(market)
        .expect("bug: market checked")
        .price_to_ticks(price)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_price", e.to_string()))?;
    hub.read()
        .level_orders(market, side, ticks)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such market"))
}

/// A market's most recent trades, oldest first.
#[utoipa::path(get, path = "/v1/markets/{market}/trades",
    params(("market" = u32, Path, description = "Market id"),
           ("limit" = Option<usize>, Query, description = "At most this many (default 100, at most 1000)")),
    responses((status = 200, body = Vec<TradeView>), (status = 404, body = ErrorBody)))]
async fn trades(
    State(state): State<Shared>,
    Path(market): Path<String>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> ApiResult<Json<Vec<TradeView>>> {
    let market = parse_market(&state, &market)?;
    Ok(Json(
        state
            .backend
            .hub()
            .read()
            .trades(market, limit(query.limit)),
    ))
}

// ------------------------------------------------------------------ transactions

/// Whether a transaction only pulls orders (never rate-limited, so a client can always
/// cancel): a batch of cancels, or a dead-man switch change.
fn only_cancels(tx: &SignedTransaction) -> bool {
    tx.tx.action.execution_class() == ExecutionClass::Cancel
        || matches!(tx.tx.action, Action::ScheduleCancelAll(_))
}

/// Submit a signed transaction: admitted at once, or (with `wait_for_commit`) answered
/// once committed.
#[utoipa::path(post, path = "/v1/txs", request_body = SubmitRequest,
    responses((status = 200, description = "Committed", body = TxStatusView),
              (status = 202, description = "Admitted, pending", body = TxStatusView),
              (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, description = "Refused by the admission check", body = ErrorBody),
              (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn submit(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    ApiJson(submit): ApiJson<SubmitRequest>,
) -> ApiResult<(StatusCode, Json<TxStatusView>)> {
    let now = Instant::now();
    let tx = decode_tx(&submit.tx).map_err(|error| charge_undecodable(&state, ip, now, error))?;
    charge_limits(&state, ip, &tx, now)?;
    let hash = tx.hash();
    let hub = state.backend.hub();
    // Subscribe before submitting so the commit cannot slip between the two.
    let mut feeds = submit.wait_for_commit.then(|| hub.subscribe());
    if let Err(error) = state.backend.submit(tx).await {
        state.metrics.txs_refused.fetch_add(1, Ordering::Relaxed);
        return Err(error.into());
    }
    state.metrics.txs_admitted.fetch_add(1, Ordering::Relaxed);
    let pending = || {
        (
            StatusCode::ACCEPTED,
            Json(TxStatusView {
                tx_hash: hash.to_hex(),
                state: TxState::Pending,
                outcome: None,
                dropped: None,
            }),
        )
    };
    let Some(feeds) = feeds.as_mut() else {
        return Ok(pending());
    };
    let wait = submit
        .wait_timeout_ms
        .map_or(state.config.default_wait, Duration::from_millis)
        .min(state.config.max_wait);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(outcome) = hub.read().tx(&hash) {
            return Ok((
                StatusCode::OK,
                Json(TxStatusView {
                    tx_hash: hash.to_hex(),
                    state: TxState::Committed,
                    outcome: Some(outcome),
                    dropped: None,
                }),
            ));
        }
        match tokio::time::timeout_at(deadline, feeds.recv()).await {
            Err(_) => return Ok(pending()),
            // A feed, a lag (the index has it anyway) or a closed hub: look again.
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return Ok(pending()),
        }
    }
}

/// A submitted transaction from its hex: the size cap checked before decoding.
fn decode_tx(tx_hex: &str) -> ApiResult<SignedTransaction> {
    if tx_hex.len() > 2 * MAX_TX_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "tx_too_large",
            format!("a transaction is at most {MAX_TX_BYTES} bytes"),
        ));
    }
    let bytes =
        hex::decode(tx_hex).map_err(|e| ApiError::bad_request(format!("tx is not hex: {e}")))?;
    SignedTransaction::decode(&bytes).map_err(|e| ApiError::from_decode(&e))
}

/// Take one token from the client address's and the account's buckets for a transaction
/// that does more than cancel (cancels are never limited, so a client can always pull its
/// orders).
fn charge_limits(
    state: &AppState,
    ip: IpAddr,
    tx: &SignedTransaction,
    now: Instant,
) -> ApiResult<()> {
    if only_cancels(tx) {
        return Ok(());
    }
    if let Err(wait) = state.ip_limiter.check(&ip, now) {
        state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        return Err(rate_limited(state, "this address", wait));
    }
    if let Err(wait) = state.account_limiter.check(&tx.tx.account, now) {
        state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        return Err(rate_limited(state, "this account", wait));
    }
    Ok(())
}

/// A submission that does not decode still costs its address a token, as one that does:
/// decoding is the work the quota bounds (and a batch body holds ~130 single bodies). Only
/// the address pays; there is no account. The answer is the decode error, or
/// `rate_limited` once the address is out of tokens.
fn charge_undecodable(state: &AppState, ip: IpAddr, now: Instant, error: ApiError) -> ApiError {
    match state.ip_limiter.check(&ip, now) {
        Ok(()) => error,
        Err(wait) => {
            state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            rate_limited(state, "this address", wait)
        }
    }
}

fn batch_item_refused(tx_hash: Option<&Hash>, error: ApiError) -> BatchItemView {
    BatchItemView {
        tx_hash: tx_hash.map(Hash::to_hex),
        state: None,
        error: Some(BatchItemError {
            status: error.status.as_u16(),
            code: error.code.to_owned(),
            message: error.message,
        }),
    }
}

/// [`SubmitBatchRequest`] as the server reads it (the same JSON): at most
/// [`MAX_BATCH_TXS`] items are kept and the rest only counted, so a body of many tiny
/// items allocates no more strings than a full batch does.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequestIn {
    #[serde(deserialize_with = "bounded_items")]
    txs: BoundedItems,
}

/// The first [`MAX_BATCH_TXS`] items of a JSON array of strings, and how many it had.
struct BoundedItems {
    kept: Vec<String>,
    total: usize,
}

fn bounded_items<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BoundedItems, D::Error> {
    struct Items;
    impl<'de> serde::de::Visitor<'de> for Items {
        type Value = BoundedItems;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of hex strings")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<BoundedItems, A::Error> {
            // The size hint comes from the client: never trusted past a full batch.
            let mut kept = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_BATCH_TXS));
            let mut total = 0usize;
            loop {
                let more = if kept.len() < MAX_BATCH_TXS {
                    seq.next_element::<String>()?.map(|item| kept.push(item))
                } else {
                    seq.next_element::<serde::de::IgnoredAny>()?.map(drop)
                };
                if more.is_none() {
                    break;
                }
                total = total.saturating_add(1);
            }
            Ok(BoundedItems { kept, total })
        }
    }
    deserializer.deserialize_seq(Items)
}

/// Submit up to [`MAX_BATCH_TXS`] signed transactions in one request. Each item is
/// decoded, rate-limited (a batch of N transactions that do more than cancel costs N
/// tokens, as N single submissions would, and each item that does not decode costs the
/// address one token too) and admitted on its own; the answer lists one
/// result per item in request order, and one refused item never fails the others. The
/// request itself fails only when it is malformed, too large or lists too many items.
#[utoipa::path(post, path = "/v1/txs/batch", request_body = SubmitBatchRequest,
    responses((status = 200, description = "One result per item, in request order: pending, or refused with the single route's status, code and message", body = SubmitBatchResponse),
              (status = 400, body = ErrorBody),
              (status = 413, description = "More than MAX_BATCH_TXS items (`batch_too_large`) or a body past the route's limit (`body_too_large`)", body = ErrorBody)))]
async fn submit_batch(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<BatchRequestIn>,
) -> ApiResult<Json<SubmitBatchResponse>> {
    let BoundedItems { kept, total } = request.txs;
    if total > MAX_BATCH_TXS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("a batch carries at most {MAX_BATCH_TXS} transactions, this one {total}"),
        ));
    }
    let request = SubmitBatchRequest { txs: kept };
    let now = Instant::now();
    let mut results = Vec::with_capacity(request.txs.len());
    // Positions in `results` of the transactions handed to the backend, in its order.
    let mut positions = Vec::with_capacity(request.txs.len());
    let mut admissible = Vec::with_capacity(request.txs.len());
    for tx_hex in &request.txs {
        let tx = match decode_tx(tx_hex) {
            Ok(tx) => tx,
            Err(error) => {
                let error = charge_undecodable(&state, ip, now, error);
                results.push(batch_item_refused(None, error));
                continue;
            }
        };
        let hash = tx.hash();
        if let Err(error) = charge_limits(&state, ip, &tx, now) {
            results.push(batch_item_refused(Some(&hash), error));
            continue;
        }
        positions.push(results.len());
        results.push(BatchItemView {
            tx_hash: Some(hash.to_hex()),
            state: Some(TxState::Pending),
            error: None,
        });
        admissible.push(tx);
    }
    drop(request);
    let answers = if admissible.is_empty() {
        Vec::new()
    } else {
        state.backend.submit_batch(admissible).await
    };
    assert_eq!(
        answers.len(),
        positions.len(),
        "bug: the backend answered a batch with a different number of results"
    );
    for (position, answer) in positions.into_iter().zip(answers) {
        match answer {
            Ok(()) => {
                state.metrics.txs_admitted.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                state.metrics.txs_refused.fetch_add(1, Ordering::Relaxed);
                let item = &mut results[position];
                item.state = None;
                item.error = batch_item_refused(None, error.into()).error;
            }
        }
    }
    Ok(Json(SubmitBatchResponse { results }))
}

/// Where a transaction stands: pending in the mempool, committed (with its outcome), or
/// unknown.
#[utoipa::path(get, path = "/v1/txs/{hash}",
    params(("hash" = String, Path, description = "Transaction id, hex")),
    responses((status = 200, body = TxStatusView), (status = 400, body = ErrorBody)))]
async fn tx_status(
    State(state): State<Shared>,
    Path(hash): Path<String>,
) -> ApiResult<Json<TxStatusView>> {
    let hash = Hash::from_hex(&hash).map_err(|e| ApiError::bad_request(format!("hash: {e}")))?;
    let outcome = state.backend.hub().read().tx(&hash);
    let mut dropped = None;
    let tx_state = if outcome.is_some() {
        TxState::Committed
    } else if state.backend.is_pending(&hash) {
        TxState::Pending
    } else if let Some(gone) = state.backend.dropped(&hash) {
        dropped = Some(DroppedView {
            height: gone.height,
            code: crate::error::rejection_code(&gone.reason).to_owned(),
            message: gone.reason.to_string(),
        });
        TxState::Dropped
    } else {
        TxState::Unknown
    };
    Ok(Json(TxStatusView {
        tx_hash: hash.to_hex(),
        state: tx_state,
        outcome,
        dropped,
    }))
}

// ------------------------------------------------------------------ accounts and orders

/// An account's balances, nonce windows, dead-man switch and open order count.
#[utoipa::path(get, path = "/v1/accounts/{account}",
    params(("account" = String, Path, description = "Account key, hex")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody)))]
async fn account(
    State(state): State<Shared>,
    Path(account): Path<String>,
) -> ApiResult<Json<AccountView>> {
    let id = parse_account(&account)?;
    let at = state.backend.account(id).await?;
    let chain = state.backend.hub().chain();
    let balances = chain
        .assets
        .iter()
        .enumerate()
        .map(|(i, asset)| {
            let balance = at
                .account
                .as_ref()
                .and_then(|a| a.balances.get(i).copied())
                .unwrap_or_default();
            BalanceView {
                asset: asset.id.0,
                symbol: asset.symbol.clone(),
                free: convert::amount(asset, dex_types::Amount(balance.free)),
                locked: convert::amount(asset, dex_types::Amount(balance.locked)),
                free_units: balance.free.to_string(),
                locked_units: balance.locked.to_string(),
            }
        })
        .collect();
    let nonce_view = |signer: &AccountId, window: &dex_state::NonceWindow| {
        let used = window.used();
        NonceView {
            signer: signer.to_hex(),
            highest: window.highest(),
            smallest: (used.len() == dex_state::NONCE_WINDOW).then(|| used[0]),
            used: used.len() as u32,
        }
    };
    let mut nonces = Vec::new();
    if let Some(a) = &at.account {
        nonces.push(nonce_view(&a.id, &a.nonces));
        for (agent, record) in &a.agents {
            nonces.push(nonce_view(agent, &record.nonces));
        }
    }
    Ok(Json(AccountView {
        account: id.to_hex(),
        height: at.height,
        exists: at.account.is_some(),
        balances,
        nonces,
        cancel_all_at_ms: at
            .account
            .as_ref()
            .and_then(|a| a.cancel_all_at)
            .map(|t| t.0),
        open_orders: at.account.as_ref().map_or(0, |a| a.open_orders),
    }))
}

/// An account's open orders.
#[utoipa::path(get, path = "/v1/accounts/{account}/orders",
    params(("account" = String, Path, description = "Account key, hex")),
    responses((status = 200, body = Vec<OrderStatusView>), (status = 400, body = ErrorBody)))]
async fn open_orders(
    State(state): State<Shared>,
    Path(account): Path<String>,
) -> ApiResult<Json<Vec<OrderStatusView>>> {
    let id = parse_account(&account)?;
    Ok(Json(state.backend.hub().read().open_orders(&id)))
}

/// An account's order by client order id: its open order with that id, else the latest
/// finished or rejected one within the retention window.
#[utoipa::path(get, path = "/v1/accounts/{account}/orders/client/{client_order_id}",
    params(("account" = String, Path, description = "Account key, hex"),
           ("client_order_id" = u64, Path, description = "Client order id")),
    responses((status = 200, body = OrderStatusView), (status = 404, body = ErrorBody)))]
async fn order_by_client_id(
    State(state): State<Shared>,
    Path((account, cid)): Path<(String, String)>,
) -> ApiResult<Json<OrderStatusView>> {
    let id = parse_account(&account)?;
    let cid = ClientOrderId(parse("client order id", &cid)?);
    state
        .backend
        .hub()
        .read()
        .order_by_client_id(&id, cid)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order with client order id {cid}")))
}

/// An account's most recent fills, oldest first.
#[utoipa::path(get, path = "/v1/accounts/{account}/fills",
    params(("account" = String, Path, description = "Account key, hex"),
           ("limit" = Option<usize>, Query, description = "At most this many (default 100, at most 1000)")),
    responses((status = 200, body = Vec<FillView>), (status = 400, body = ErrorBody)))]
async fn fills(
    State(state): State<Shared>,
    Path(account): Path<String>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> ApiResult<Json<Vec<FillView>>> {
    let id = parse_account(&account)?;
    Ok(Json(
        state.backend.hub().read().fills(&id, limit(query.limit)),
    ))
}

/// An order by chain-wide id (open, or finished within the retention window).
#[utoipa::path(get, path = "/v1/orders/{order_id}",
    params(("order_id" = u64, Path, description = "Order id")),
    responses((status = 200, body = OrderStatusView), (status = 404, body = ErrorBody)))]
async fn order(
    State(state): State<Shared>,
    Path(order_id): Path<String>,
) -> ApiResult<Json<OrderStatusView>> {
    let id = OrderId(parse("order id", &order_id)?);
    state
        .backend
        .hub()
        .read()
        .order(id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order {id}")))
}

/// The proof of an account's balances against the last block's state root.
#[utoipa::path(get, path = "/v1/accounts/{account}/balance-proof",
    params(("account" = String, Path, description = "Account key, hex")),
    responses((status = 200, body = BalanceProofView), (status = 404, body = ErrorBody)))]
async fn balance_proof(
    State(state): State<Shared>,
    Path(account): Path<String>,
) -> ApiResult<Json<BalanceProofView>> {
    let id = parse_account(&account)?;
    let at = state
        .backend
        .balance_proof(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("account {id} does not exist")))?;
    let block = state
        .backend
        .block(at.height)
        .await?
        .ok_or_else(|| ApiError::not_found("no block has been committed yet"))?;
    Ok(Json(BalanceProofView {
        account: id.to_hex(),
        header: convert::header(&block.block.header),
        certificate: block.certificate.as_ref().map(hex::encode),
        proof: hex::encode(borsh::to_vec(&at.proof).expect("bug: borsh into a Vec")),
    }))
}

// ------------------------------------------------------------------ blocks and proofs

fn block_view(state: &AppState, block: &CommittedBlock) -> BlockView {
    if let Some(feed) = state.backend.hub().read().feed(block.height()) {
        return feed.view.clone();
    }
    // Older than the hub's retention: the outcomes without their order snapshots, or none
    // at all for a block read back from storage (`execution_known`), which the route's
    // description tells clients.
    BlockView {
        header: convert::header(&block.block.header),
        certificate: block.certificate.as_ref().map(hex::encode),
        txs: block
            .result
            .outcomes
            .iter()
            .map(|o| {
                let (ok, code, message) = match &o.result {
                    Ok(()) => (true, None, None),
                    Err(r) => (
                        false,
                        Some(crate::error::rejection_code(r).to_string()),
                        Some(r.to_string()),
                    ),
                };
                TxOutcomeView {
                    tx_hash: o.tx.to_hex(),
                    height: block.height(),
                    ok,
                    code,
                    message,
                    leg_rejections: o
                        .leg_rejections
                        .iter()
                        .map(|(leg, r)| LegRejectionView {
                            leg: *leg,
                            code: crate::error::rejection_code(r).to_string(),
                            message: r.to_string(),
                        })
                        .collect(),
                    orders: Vec::new(),
                }
            })
            .collect(),
        committed_items: block.result.committed.len() as u32,
        tx_hashes: (!block.execution_known()).then(|| {
            block
                .block
                .txs
                .iter()
                .map(|tx| tx.hash().to_hex())
                .collect()
        }),
    }
}

async fn committed_block(state: &AppState, height: u64) -> ApiResult<Arc<CommittedBlock>> {
    state
        .backend
        .block(height)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no block {height}")))
}

/// The last committed block.
#[utoipa::path(get, path = "/v1/blocks/latest",
    responses((status = 200, body = BlockView), (status = 404, body = ErrorBody)))]
async fn latest_block(State(state): State<Shared>) -> ApiResult<Json<BlockView>> {
    let height = state.backend.hub().read().height();
    let block = committed_block(&state, height).await?;
    Ok(Json(block_view(&state, &block)))
}

/// A committed block with its certificate and outcomes.
///
/// Any committed block the node still stores is served, also one committed before the
/// node last started. The outcomes come from the node's read model, which holds the blocks
/// it indexed since it started (the most recent ones only). A node stores each block with
/// its certificate but not what executing it produced, so a block older than the read
/// model is served with its header, its certificate and the ids of its transactions
/// (`tx_hashes`, present only then), with `txs` (the outcomes) empty and `committed_items`
/// 0: its header's `txs_root` and `fills_root` still commit to them. Ask a node that
/// indexed the block for its outcomes.
#[utoipa::path(get, path = "/v1/blocks/{height}",
    params(("height" = u64, Path, description = "Block height")),
    responses((status = 200, body = BlockView),
              (status = 400, description = "The height is not a number", body = ErrorBody),
              (status = 404, description = "Not committed yet, or no longer stored", body = ErrorBody)))]
async fn block(
    State(state): State<Shared>,
    Path(height): Path<String>,
) -> ApiResult<Json<BlockView>> {
    let height: u64 = parse("height", &height)?;
    let block = committed_block(&state, height).await?;
    Ok(Json(block_view(&state, &block)))
}

/// The proof that a committed item (a fill or withdrawal receipt) is in a block's fills
/// root, with the header and certificate to check it against.
///
/// A proof needs every item the block committed, which only executing the block gives: it
/// is served for the blocks in the node's read model (those it indexed since it started,
/// the most recent ones only). For an older block with transactions the answer is 404,
/// since the node stores blocks and certificates but not their committed items.
#[utoipa::path(get, path = "/v1/blocks/{height}/fills/{index}/proof",
    params(("height" = u64, Path, description = "Block height"),
           ("index" = u32, Path, description = "Position among the block's committed items")),
    responses((status = 200, body = FillProofView),
              (status = 400, description = "The height or index is not a number", body = ErrorBody),
              (status = 404, description = "No such block or item, or the block's committed items are not held", body = ErrorBody)))]
async fn fill_proof(
    State(state): State<Shared>,
    Path((height, index)): Path<(String, String)>,
) -> ApiResult<Json<FillProofView>> {
    let height: u64 = parse("height", &height)?;
    let index: u32 = parse("index", &index)?;
    let block = committed_block(&state, height).await?;
    if !block.execution_known() {
        // Saying "no item {index}" would claim the block committed fewer items.
        return Err(ApiError::not_found(format!(
            "the committed items of block {height} are not held by this node: it stores \
             blocks and certificates, and the block is older than its read model"
        )));
    }
    let item = block.result.committed.get(index as usize).ok_or_else(|| {
        ApiError::not_found(format!("block {height} has no committed item {index}"))
    })?;
    let proof = block
        .result
        .fill_proof(index as usize)
        .expect("bug: index checked");
    let trade = match item {
        dex_state::CommittedItem::Fill(fill) => state
            .backend
            .hub()
            .chain()
            .market(fill.market)
            .map(|m| convert::trade(m, fill, index)),
        dex_state::CommittedItem::Withdrawal(_) => None,
    };
    Ok(Json(FillProofView {
        header: convert::header(&block.block.header),
        certificate: block.certificate.as_ref().map(hex::encode),
        item: hex::encode(borsh::to_vec(item).expect("bug: borsh into a Vec")),
        proof: hex::encode(borsh::to_vec(&proof).expect("bug: borsh into a Vec")),
        trade,
    }))
}

// ------------------------------------------------------------------ docs and metrics

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dex node API",
        description = "HTTP JSON and WebSocket API of an exchange node. Decimals are strings; ids and hashes are hex. WebSocket at /v1/ws: see ClientMessage and ServerMessage."
    ),
    paths(
        chain,
        markets,
        book,
        level,
        trades,
        submit,
        submit_batch,
        tx_status,
        account,
        open_orders,
        order_by_client_id,
        fills,
        order,
        balance_proof,
        latest_block,
        block,
        fill_proof
    ),
    components(schemas(ErrorBody, ClientMessage, ServerMessage, Channel))
)]
struct ApiDoc;

/// The OpenAPI document of the API, generated from the handlers and types.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This OpenAPI document.
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}

/// Prometheus metrics: the API's counters, then the backend's own.
async fn metrics(State(state): State<Shared>) -> Response {
    let m = &state.metrics;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, kind: &str, value: u64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    counter(
        "dex_api_requests_total",
        "HTTP requests received.",
        "counter",
        load(&m.requests),
    );
    counter(
        "dex_api_client_errors_total",
        "Responses with a 4xx status.",
        "counter",
        load(&m.errors_4xx),
    );
    counter(
        "dex_api_server_errors_total",
        "Responses with a 5xx status.",
        "counter",
        load(&m.errors_5xx),
    );
    counter(
        "dex_api_rate_limited_total",
        "Requests refused by a rate limit.",
        "counter",
        load(&m.rate_limited),
    );
    counter(
        "dex_api_txs_admitted_total",
        "Transactions admitted to the mempool.",
        "counter",
        load(&m.txs_admitted),
    );
    counter(
        "dex_api_txs_refused_total",
        "Transactions refused at admission.",
        "counter",
        load(&m.txs_refused),
    );
    counter(
        "dex_api_ws_connections",
        "Open WebSocket connections.",
        "gauge",
        load(&m.ws_connections),
    );
    counter(
        "dex_api_ws_messages_total",
        "WebSocket messages sent.",
        "counter",
        load(&m.ws_messages),
    );
    counter(
        "dex_api_height",
        "Height of the last indexed block.",
        "gauge",
        state.backend.hub().read().height(),
    );
    state.backend.render_metrics(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
