//! Every error path of the HTTP API answers with the right status and a stable JSON code,
//! and nothing refused reaches the mempool. Plus the OpenAPI document, metrics and the
//! WebSocket protocol's own errors.

use dex_api::wire::{
    BatchItemView, MAX_BATCH_TXS, ServerMessage, SubmitBatchResponse, TxState, TxStatusView,
};
use dex_api::{
    ApiBackend, ApiConfig, Clock, ErrorBody, LocalChain, LocalChainConfig, Quota, ServerHandle,
    demo_genesis, spawn_server,
};
use dex_types::{
    Action, BatchLeg, CancelTarget, ChainId, Keypair, MarketId, OrderBatch, OrderRequest,
    OrderType, PriceTicks, SelfTradePrevention, Side, SignedTransaction, SizeLots, TimeInForce,
    TimestampMs, Transaction,
};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const CHAIN: u64 = 5;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

struct Node {
    chain: Arc<LocalChain>,
    server: ServerHandle,
    http: reqwest::Client,
}

fn key(seed: u8) -> Keypair {
    Keypair::from_seed([seed; 32])
}

async fn node(config: ApiConfig, mempool: usize) -> Node {
    node_with(
        config,
        LocalChainConfig {
            mempool_capacity: mempool,
            clock: Clock::System,
            ..LocalChainConfig::default()
        },
    )
    .await
}

async fn node_with(config: ApiConfig, local: LocalChainConfig) -> Node {
    let traders = [key(1).account_id(), key(2).account_id()];
    let chain =
        Arc::new(LocalChain::new(&demo_genesis(CHAIN, now_ms() - 1_000, &traders), local).unwrap());
    let server = spawn_server(chain.clone(), config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Node {
        chain,
        server,
        http: reqwest::Client::new(),
    }
}

impl Node {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// POST a JSON `body` to `path`: the status and the body of the answer.
    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    async fn post_raw(&self, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
        self.post("/v1/txs", body).await
    }

    async fn post_batch(&self, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
        self.post("/v1/txs/batch", body).await
    }

    /// A batch of hex items, answered 200: the typed results.
    async fn submit_batch(&self, items: &[String]) -> Vec<BatchItemView> {
        let body = serde_json::json!({ "txs": items });
        let (status, json) = self.post_batch(body.to_string()).await;
        assert_eq!(status, 200, "{json}");
        let response: SubmitBatchResponse = serde_json::from_value(json).unwrap();
        assert_eq!(response.results.len(), items.len(), "one result per item");
        response.results
    }

    async fn submit(&self, tx: &SignedTransaction) -> (u16, serde_json::Value) {
        let body = serde_json::json!({ "tx": hex::encode(tx.encode()) });
        self.post_raw(body.to_string()).await
    }
}

/// Limits that never refill: `per_ip` tokens per address and, if given, `per_account`
/// per account (otherwise the default), so a test can count exactly what each costs.
fn bursts_only(per_ip: u32, per_account: Option<u32>) -> ApiConfig {
    let default = ApiConfig::default();
    ApiConfig {
        per_ip: Quota {
            per_second: 0,
            burst: per_ip,
        },
        per_account: per_account.map_or(default.per_account, |burst| Quota {
            per_second: 0,
            burst,
        }),
        ..default
    }
}

fn code(body: &serde_json::Value) -> &str {
    body["code"].as_str().unwrap_or("<none>")
}

fn order(price: u64, size: u64) -> OrderRequest {
    OrderRequest {
        market: MarketId(1),
        client_order_id: None,
        side: Side::Buy,
        order_type: OrderType::Limit,
        price_ticks: PriceTicks(price),
        size_lots: SizeLots(size),
        time_in_force: TimeInForce::Gtc,
        self_trade: SelfTradePrevention::CancelResting,
    }
}

fn signed(seed: u8, nonce: u64, legs: Vec<BatchLeg>) -> SignedTransaction {
    let k = key(seed);
    k.sign(Transaction {
        chain_id: ChainId(CHAIN),
        account: k.account_id(),
        signer: k.account_id(),
        nonce,
        expires_at: TimestampMs(4_000_000_000_000),
        action: Action::Batch(OrderBatch { legs, atomic: true }),
    })
    .unwrap()
}

fn place(seed: u8, nonce: u64) -> SignedTransaction {
    signed(seed, nonce, vec![BatchLeg::Place(order(10_000, 10))])
}

fn cancel(seed: u8, nonce: u64) -> SignedTransaction {
    signed(seed, nonce, vec![BatchLeg::Cancel(CancelTarget::All)])
}

#[tokio::test]
async fn malformed_requests_are_refused_before_the_mempool() {
    let n = node(ApiConfig::default(), 100).await;
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "malformed_json"),
        ("".into(), 400, "malformed_json"),
        (r#"{"tx":"00","surprise":1}"#.into(), 400, "unknown_field"),
        (r#"{"tx":5}"#.into(), 400, "invalid_field"),
        (r#"{"wait_for_commit":true}"#.into(), 400, "invalid_field"),
        (r#"{"tx":"zz"}"#.into(), 400, "bad_request"),
        (r#"{"tx":"0001"}"#.into(), 400, "malformed_tx"),
        (
            format!(r#"{{"tx":"{}"}}"#, "00".repeat(dex_types::MAX_TX_BYTES + 1)),
            413,
            "tx_too_large",
        ),
        (
            format!(r#"{{"tx":"{}"}}"#, "0".repeat(100 * 1024)),
            413,
            "body_too_large",
        ),
    ];
    for (body, status, expected) in cases {
        let (got, json) = n.post_raw(body.clone()).await;
        assert_eq!((got, code(&json)), (status, expected), "body {:.40}", body);
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A well-formed transaction that breaks a structural rule, with trailing bytes, or
    // with a bad signature.
    let empty = signed(1, 1, vec![]);
    assert_eq!(code(&n.submit(&empty).await.1), "invalid_tx");
    let mut trailing = hex::encode(place(1, 1).encode());
    trailing.push_str("00");
    let (status, json) = n.post_raw(format!(r#"{{"tx":"{trailing}"}}"#)).await;
    assert_eq!((status, code(&json)), (400, "malformed_tx"));
    let mut forged = place(1, 2);
    forged.signature[0] ^= 1;
    let (status, json) = n.submit(&forged).await;
    assert_eq!((status, code(&json)), (400, "bad_signature"));
    // None of it reached the mempool.
    assert_eq!(n.chain.pending_count(), 0);
}

#[tokio::test]
async fn admission_refusals_carry_ledger_codes() {
    let n = node(ApiConfig::default(), 2).await;
    // Unknown account.
    let (status, json) = n.submit(&place(9, 1)).await;
    assert_eq!((status, code(&json)), (422, "unknown_account"));
    // Not enough funds: 10^9 lots at 10^4 ticks.
    let whale = signed(
        1,
        1,
        vec![BatchLeg::Place(order(10_000_000, 1_000_000_000))],
    );
    let (status, json) = n.submit(&whale).await;
    assert_eq!((status, code(&json)), (422, "insufficient_funds"));
    // Wrong chain.
    let k = key(1);
    let other_chain = k
        .sign(Transaction {
            chain_id: ChainId(CHAIN + 1),
            ..place(1, 3).tx
        })
        .unwrap();
    assert_eq!(code(&n.submit(&other_chain).await.1), "wrong_chain");
    // Expired.
    let expired = k
        .sign(Transaction {
            expires_at: TimestampMs(1),
            ..place(1, 4).tx
        })
        .unwrap();
    assert_eq!(code(&n.submit(&expired).await.1), "expired");
    // Admitted, then the same again, then the same nonce in another transaction.
    let (status, json) = n.submit(&place(1, 5)).await;
    assert_eq!(status, 202, "{json}");
    let pending: TxStatusView = serde_json::from_value(json).unwrap();
    assert_eq!(pending.tx_hash, place(1, 5).hash().to_hex());
    let (status, json) = n.submit(&place(1, 5)).await;
    assert_eq!((status, code(&json)), (409, "already_pending"));
    let (status, json) = n.submit(&cancel(1, 5)).await;
    assert_eq!((status, code(&json)), (409, "nonce_pending"));
    // The mempool holds two: a third is refused until a block is made.
    assert_eq!(n.submit(&place(2, 1)).await.0, 202);
    let (status, json) = n.submit(&place(2, 2)).await;
    assert_eq!((status, code(&json)), (503, "mempool_full"));
    n.chain.commit_block();
    // Committed now: the pending lookup says so, and a replay is refused.
    let (status, json) = n.get(&format!("/v1/txs/{}", place(1, 5).hash())).await;
    assert_eq!(status, 200);
    assert_eq!(json["state"], "committed");
    assert_eq!(json["outcome"]["ok"], true);
    let (status, json) = n.submit(&place(1, 5)).await;
    assert_eq!((status, code(&json)), (422, "nonce_replayed"));
}

#[tokio::test]
async fn waiting_for_the_commit_returns_the_outcome() {
    let n = node(ApiConfig::default(), 100).await;
    let chain = n.chain.clone();
    let producer = chain.spawn_producer(Duration::from_millis(10), Duration::from_secs(60));
    let body =
        serde_json::json!({ "tx": hex::encode(place(1, 1).encode()), "wait_for_commit": true });
    let (status, json) = n.post_raw(body.to_string()).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["state"], "committed");
    assert_eq!(json["outcome"]["orders"][0]["state"], "open");
    drop(producer);
    // With no block coming, the wait ends at its timeout with "pending".
    let body = serde_json::json!({
        "tx": hex::encode(place(1, 2).encode()), "wait_for_commit": true, "wait_timeout_ms": 50
    });
    let (status, json) = n.post_raw(body.to_string()).await;
    assert_eq!((status, json["state"].as_str()), (202, Some("pending")));
}

#[tokio::test]
async fn rate_limits_per_ip_and_per_account_never_block_cancels() {
    let n = node(bursts_only(6, Some(2)), 1_000).await;
    // Two placements from account 1, the third is over its account limit.
    assert_eq!(n.submit(&place(1, 1)).await.0, 202);
    assert_eq!(n.submit(&place(1, 2)).await.0, 202);
    let (status, json) = n.submit(&place(1, 3)).await;
    assert_eq!((status, code(&json)), (429, "rate_limited"));
    assert!(json["message"].as_str().unwrap().contains("account"));
    // Cancels still go through, however many.
    for nonce in 10..20 {
        assert_eq!(n.submit(&cancel(1, nonce)).await.0, 202);
    }
    // Account 2 from the same address: the address has 3 tokens left of 6.
    assert_eq!(n.submit(&place(2, 1)).await.0, 202);
    for expected in [200, 200, 429, 429] {
        let (status, json) = n.get("/v1/markets").await;
        assert_eq!(status, expected, "{json}");
        if status == 429 {
            assert_eq!(code(&json), "rate_limited");
        }
    }
    // The refused placement never reached the mempool: 2 + 10 + 1 admitted.
    assert_eq!(n.chain.pending_count(), 13);
}

#[tokio::test]
async fn reads_refuse_bad_paths_and_queries() {
    let n = node(ApiConfig::default(), 10).await;
    let account = key(1).account_id().to_hex();
    let cases: Vec<(String, u16, &str)> = vec![
        ("/v1/nowhere".into(), 404, "not_found"),
        ("/v1/markets/9/book".into(), 404, "not_found"),
        ("/v1/markets/x/book".into(), 400, "bad_request"),
        ("/v1/markets/1/book?depth=abc".into(), 400, "bad_query"),
        ("/v1/markets/1/book?levels=3".into(), 400, "bad_query"),
        ("/v1/markets/1/book/up/100".into(), 400, "bad_request"),
        ("/v1/markets/1/book/buy/100.001".into(), 400, "bad_price"),
        ("/v1/markets/1/book/buy/lots".into(), 400, "bad_request"),
        ("/v1/accounts/xyz".into(), 400, "bad_request"),
        (
            format!("/v1/accounts/{account}/orders/client/12"),
            404,
            "not_found",
        ),
        (
            format!("/v1/accounts/{account}/orders/client/-1"),
            400,
            "bad_request",
        ),
        ("/v1/orders/77".into(), 404, "not_found"),
        ("/v1/blocks/99".into(), 404, "not_found"),
        ("/v1/blocks/latest".into(), 404, "not_found"),
        ("/v1/blocks/1/fills/0/proof".into(), 404, "not_found"),
        ("/v1/txs/beef".into(), 400, "bad_request"),
        (
            format!("/v1/accounts/{account}/balance-proof"),
            404,
            "not_found",
        ),
    ];
    for (path, status, expected) in cases {
        let (got, json) = n.get(&path).await;
        assert_eq!((got, code(&json)), (status, expected), "GET {path}");
    }
    let response = n.http.delete(n.url("/v1/markets")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.code, "method_not_allowed");
    // After a block, the happy paths answer.
    n.chain.commit_block();
    for path in [
        "/v1/chain".to_string(),
        "/v1/markets".into(),
        "/v1/markets/1/book?depth=5".into(),
        "/v1/markets/1/book/sell/100.00".into(),
        "/v1/markets/1/trades?limit=3".into(),
        format!("/v1/accounts/{account}"),
        format!("/v1/accounts/{account}/orders"),
        format!("/v1/accounts/{account}/fills"),
        format!("/v1/accounts/{account}/balance-proof"),
        "/v1/blocks/1".into(),
        "/v1/blocks/latest".into(),
        format!("/v1/txs/{}", dex_types::Hash::ZERO),
    ] {
        assert_eq!(n.get(&path).await.0, 200, "GET {path}");
    }
    let (_, unknown) = n.get(&format!("/v1/txs/{}", dex_types::Hash::ZERO)).await;
    assert_eq!(unknown["state"], "unknown");
}

#[tokio::test]
async fn openapi_lists_every_route_and_metrics_are_served() {
    let n = node(ApiConfig::default(), 10).await;
    let (status, doc) = n.get("/v1/openapi.json").await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/v1/chain",
        "/v1/markets",
        "/v1/markets/{market}/book",
        "/v1/markets/{market}/book/{side}/{price}",
        "/v1/markets/{market}/trades",
        "/v1/txs",
        "/v1/txs/batch",
        "/v1/txs/{hash}",
        "/v1/accounts/{account}",
        "/v1/accounts/{account}/orders",
        "/v1/accounts/{account}/orders/client/{client_order_id}",
        "/v1/accounts/{account}/fills",
        "/v1/accounts/{account}/balance-proof",
        "/v1/orders/{order_id}",
        "/v1/blocks/latest",
        "/v1/blocks/{height}",
        "/v1/blocks/{height}/fills/{index}/proof",
    ] {
        assert!(
            paths.contains_key(route),
            "{route} missing from the OpenAPI document"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "ErrorBody",
        "ClientMessage",
        "ServerMessage",
        "BookView",
        "SubmitRequest",
        "SubmitBatchRequest",
        "SubmitBatchResponse",
    ] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
    n.get("/v1/nowhere").await;
    let text = n
        .http
        .get(n.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("dex_api_requests_total"));
    assert!(text.contains("dex_api_client_errors_total 1"));
    assert!(text.contains("dex_local_mempool_txs 0"));
}

async fn ws(
    n: &Node,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = n.url("/v1/ws").replacen("http://", "ws://", 1);
    tokio_tungstenite::connect_async(&url).await.unwrap().0
}

async fn next_message<S>(socket: &mut S) -> ServerMessage
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("no error");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

#[tokio::test]
async fn websocket_protocol_errors_and_replay() {
    let config = ApiConfig {
        ws: dex_api::WsConfig {
            max_subscriptions: 2,
            heartbeat: Duration::from_millis(100),
            ..dex_api::WsConfig::default()
        },
        ..ApiConfig::default()
    };
    let n = node(config, 10).await;
    // Three blocks, the second with an order.
    n.chain.commit_block();
    n.submit(&place(1, 1)).await;
    n.chain.commit_block();
    n.chain.commit_block();
    let mut socket = ws(&n).await;
    let send = |text: &str| Message::Text(text.to_string().into());
    socket.send(send("{nonsense")).await.unwrap();
    assert!(
        matches!(next_message(&mut socket).await, ServerMessage::Error { code, .. } if code == "bad_message")
    );
    socket
        .send(send(
            r#"{"op":"subscribe","channel":{"type":"book","market":42}}"#,
        ))
        .await
        .unwrap();
    assert!(
        matches!(next_message(&mut socket).await, ServerMessage::Error { code, .. } if code == "unknown_market")
    );
    socket
        .send(send(
            r#"{"op":"subscribe","channel":{"type":"fills","account":"12"}}"#,
        ))
        .await
        .unwrap();
    assert!(
        matches!(next_message(&mut socket).await, ServerMessage::Error { code, .. } if code == "bad_account")
    );
    socket
        .send(send(r#"{"op":"resync","market":1,"from_seq":1}"#))
        .await
        .unwrap();
    assert!(
        matches!(next_message(&mut socket).await, ServerMessage::Error { code, .. } if code == "not_subscribed")
    );
    socket
        .send(send(r#"{"op":"ping","nonce":7}"#))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut socket).await,
        ServerMessage::Pong { nonce: 7 }
    );
    // Replay: the blocks after height 1.
    socket
        .send(send(
            r#"{"op":"subscribe","channel":{"type":"blocks"},"since_height":1}"#,
        ))
        .await
        .unwrap();
    assert!(matches!(
        next_message(&mut socket).await,
        ServerMessage::Subscribed { height: 3, .. }
    ));
    for expected in [2, 3] {
        match next_message(&mut socket).await {
            ServerMessage::Block(block) => assert_eq!(block.header.height, expected),
            other => panic!("expected block {expected}, got {other:?}"),
        }
    }
    // The book: a snapshot with the resting order.
    socket
        .send(send(
            r#"{"op":"subscribe","channel":{"type":"book","market":1}}"#,
        ))
        .await
        .unwrap();
    assert!(matches!(
        next_message(&mut socket).await,
        ServerMessage::Subscribed { .. }
    ));
    match next_message(&mut socket).await {
        ServerMessage::BookSnapshot(book) => {
            assert_eq!(book.seq, 1);
            assert_eq!(book.bids.len(), 1);
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }
    // A third subscription is over the limit.
    socket
        .send(send(
            r#"{"op":"subscribe","channel":{"type":"trades","market":1}}"#,
        ))
        .await
        .unwrap();
    assert!(
        matches!(next_message(&mut socket).await, ServerMessage::Error { code, .. } if code == "too_many_subscriptions")
    );
    // Heartbeats keep coming with the chain's height.
    loop {
        if let ServerMessage::Heartbeat { height, .. } = next_message(&mut socket).await {
            assert_eq!(height, 3);
            break;
        }
    }
}

#[tokio::test]
async fn a_replay_past_the_retained_blocks_is_refused_with_a_reason() {
    let n = node_with(
        ApiConfig::default(),
        LocalChainConfig {
            hub: dex_api::HubConfig {
                retained_blocks: 2,
                ..dex_api::HubConfig::default()
            },
            ..LocalChainConfig::default()
        },
    )
    .await;
    for _ in 0..5 {
        n.chain.commit_block();
    }
    let mut socket = ws(&n).await;
    let text = r#"{"op":"subscribe","channel":{"type":"blocks"},"since_height":0}"#;
    socket.send(Message::Text(text.into())).await.unwrap();
    assert!(matches!(
        next_message(&mut socket).await,
        ServerMessage::Subscribed { .. }
    ));
    match next_message(&mut socket).await {
        ServerMessage::Error { code, message } => {
            assert_eq!(code, "replay_unavailable");
            assert!(message.contains("oldest is 4"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // Blocks 1..=3 are gone from the hub, but the chain still serves them over HTTP.
    assert!(n.chain.hub().block(3).is_none());
    assert_eq!(n.get("/v1/blocks/3").await.0, 200);
}

#[tokio::test]
async fn shutdown_closes_websockets_instead_of_waiting_on_them() {
    let n = node(ApiConfig::default(), 10).await;
    let mut socket = ws(&n).await;
    let text = r#"{"op":"subscribe","channel":{"type":"blocks"}}"#;
    socket.send(Message::Text(text.into())).await.unwrap();
    assert!(matches!(
        next_message(&mut socket).await,
        ServerMessage::Subscribed { .. }
    ));
    let Node { server, .. } = n;
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("the server stopped with a subscriber connected")
        .unwrap();
    // The client sees the connection end.
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok());
}

fn item_hex(tx: &SignedTransaction) -> String {
    hex::encode(tx.encode())
}

/// The code of a refused batch item (`<admitted>` when it was admitted).
fn item_code(item: &BatchItemView) -> &str {
    item.error
        .as_ref()
        .map_or("<admitted>", |e| e.code.as_str())
}

/// Each batch item's code, in order.
fn item_codes(results: &[BatchItemView]) -> Vec<&str> {
    results.iter().map(item_code).collect()
}

#[tokio::test]
async fn a_batch_answers_each_item_in_order_and_one_bad_item_fails_no_other() {
    let n = node(ApiConfig::default(), 1_000).await;
    let mut forged = place(2, 7);
    forged.signature[5] ^= 1;
    let first = place(1, 1);
    let items = vec![
        item_hex(&first),
        "not hex".to_owned(),
        "00".to_owned(),
        item_hex(&forged),
        // The same transaction again: it is pending by the time this item is admitted.
        item_hex(&first),
        item_hex(&place(9, 1)),
        item_hex(&cancel(2, 1)),
    ];
    let results = n.submit_batch(&items).await;
    let codes = item_codes(&results);
    assert_eq!(
        codes,
        [
            "<admitted>",
            "bad_request",
            "malformed_tx",
            "bad_signature",
            "already_pending",
            "unknown_account",
            "<admitted>",
        ]
    );
    // The statuses the single route would have answered.
    let statuses: Vec<Option<u16>> = results
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.status))
        .collect();
    assert_eq!(
        statuses,
        [
            None,
            Some(400),
            Some(400),
            Some(400),
            Some(409),
            Some(422),
            None
        ]
    );
    for (item, result) in items.iter().zip(&results) {
        let admitted = result.error.is_none();
        assert_eq!(result.state == Some(TxState::Pending), admitted);
        // Every item that decoded carries its id; the undecodable ones cannot.
        match SignedTransaction::decode(&hex::decode(item).unwrap_or_default()) {
            Ok(tx) => assert_eq!(result.tx_hash.as_deref(), Some(tx.hash().to_hex().as_str())),
            Err(_) => assert_eq!(result.tx_hash, None),
        }
    }
    assert_eq!(n.chain.pending_count(), 2);
    let (_, status) = n.get(&format!("/v1/txs/{}", first.hash().to_hex())).await;
    assert_eq!(status["state"], "pending");
    // An empty batch is well-formed and answers nothing.
    assert!(n.submit_batch(&[]).await.is_empty());
}

#[tokio::test]
async fn an_oversize_batch_is_refused_whole_but_a_full_batch_of_large_items_fits() {
    let n = node(ApiConfig::default(), 1_000).await;
    let too_many = vec![item_hex(&place(1, 1)); MAX_BATCH_TXS + 1];
    let (status, json) = n
        .post_batch(serde_json::json!({ "txs": too_many }).to_string())
        .await;
    assert_eq!((status, code(&json)), (413, "batch_too_large"), "{json}");
    assert!(json["message"].as_str().unwrap().contains("257"), "{json}");
    // Many tiny items are counted, not kept, and refused the same way.
    let tiny = vec![""; 500_000];
    let (status, json) = n
        .post_batch(serde_json::json!({ "txs": tiny }).to_string())
        .await;
    assert_eq!((status, code(&json)), (413, "batch_too_large"), "{json}");
    assert!(
        json["message"].as_str().unwrap().contains("500000"),
        "{json}"
    );
    // Items that are not strings are the client's mistake, as on every request.
    let (status, json) = n.post_batch(r#"{"txs": [1, 2]}"#).await;
    assert_eq!((status, code(&json)), (400, "invalid_field"), "{json}");
    assert_eq!(n.chain.pending_count(), 0);
    // MAX_BATCH_TXS items of the largest size a transaction may have: far above the 64 KiB
    // every other route keeps, yet the request is taken and each item judged (these are
    // not transactions, so each is refused on its own).
    let largest = "00".repeat(dex_types::MAX_TX_BYTES);
    let full = vec![largest; MAX_BATCH_TXS];
    let body = serde_json::json!({ "txs": full }).to_string();
    assert!(body.len() > 8 * ApiConfig::default().max_body_bytes);
    let results = n.submit_batch(&full).await;
    assert!(results.iter().all(|r| item_code(r) == "malformed_tx"));
    // The single route keeps the small limit.
    let (status, json) = n.post_raw(body).await;
    assert_eq!((status, code(&json)), (413, "body_too_large"));
    // One item over a transaction's size is refused like the single route refuses it.
    let results = n
        .submit_batch(&[
            "00".repeat(dex_types::MAX_TX_BYTES + 1),
            item_hex(&place(1, 1)),
        ])
        .await;
    assert_eq!(item_codes(&results), ["tx_too_large", "<admitted>"]);
    // Unknown fields are refused, as on every request.
    let (status, json) = n
        .post_batch(r#"{"txs": [], "wait_for_commit": true}"#)
        .await;
    assert_eq!((status, code(&json)), (400, "unknown_field"), "{json}");
}

#[tokio::test]
async fn a_batch_of_n_costs_n_tokens_and_cancels_cost_none() {
    let n = node(bursts_only(6, Some(3)), 1_000).await;
    let txs = [
        place(1, 1),
        place(1, 2),
        place(1, 3),
        // Account 1 has spent its 3 (this one still takes an address token, as a single
        // submission would).
        place(1, 4),
        place(2, 1),
        place(2, 2),
        // The address has spent its 6.
        place(2, 3),
        cancel(1, 10),
        cancel(2, 10),
    ];
    let items: Vec<String> = txs.iter().map(item_hex).collect();
    let results = n.submit_batch(&items).await;
    let codes = item_codes(&results);
    assert_eq!(
        codes,
        [
            "<admitted>",
            "<admitted>",
            "<admitted>",
            "rate_limited",
            "<admitted>",
            "<admitted>",
            "rate_limited",
            "<admitted>",
            "<admitted>",
        ]
    );
    let message = |i: usize| results[i].error.as_ref().unwrap().message.clone();
    assert!(message(3).contains("account"), "{}", message(3));
    assert!(message(6).contains("address"), "{}", message(6));
    assert_eq!(results[3].error.as_ref().unwrap().status, 429);
    assert_eq!(n.chain.pending_count(), 7);
    // The batch drew on the same address bucket as every other request.
    let (status, json) = n.get("/v1/markets").await;
    assert_eq!((status, code(&json)), (429, "rate_limited"));
}

/// The local chain, except that one transaction reads as dropped (the node records drops
/// at commits; the local chain commits everything it admits).
struct DroppingOne {
    chain: Arc<LocalChain>,
    gone: dex_types::Hash,
}

#[async_trait::async_trait]
impl ApiBackend for DroppingOne {
    fn hub(&self) -> &dex_api::FeedHub {
        self.chain.hub()
    }

    async fn submit(&self, tx: SignedTransaction) -> Result<(), dex_api::SubmitError> {
        self.chain.submit(tx).await
    }

    fn is_pending(&self, tx_hash: &dex_types::Hash) -> bool {
        self.chain.is_pending(tx_hash)
    }

    fn dropped(&self, tx_hash: &dex_types::Hash) -> Option<dex_api::DroppedTx> {
        (*tx_hash == self.gone).then_some(dex_api::DroppedTx {
            height: 7,
            reason: dex_state::Rejection::Nonce(dex_state::NonceError::Replayed { nonce: 3 }),
        })
    }

    async fn account(
        &self,
        account: dex_types::AccountId,
    ) -> Result<dex_api::AccountAt, dex_api::BackendError> {
        self.chain.account(account).await
    }

    async fn balance_proof(
        &self,
        account: dex_types::AccountId,
    ) -> Result<Option<dex_api::BalanceProofAt>, dex_api::BackendError> {
        self.chain.balance_proof(account).await
    }
}

#[tokio::test]
async fn a_dropped_transaction_reads_dropped_with_the_ledgers_reason() {
    let traders = [key(1).account_id()];
    let chain = Arc::new(
        LocalChain::new(
            &demo_genesis(CHAIN, now_ms() - 1_000, &traders),
            LocalChainConfig::default(),
        )
        .unwrap(),
    );
    let gone = place(1, 3).hash();
    let backend = Arc::new(DroppingOne { chain, gone });
    let server = spawn_server(
        backend,
        ApiConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let status: TxStatusView = http
        .get(format!("{}/v1/txs/{}", server.url(), gone.to_hex()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status.state, TxState::Dropped);
    let dropped = status.dropped.expect("the reason comes with the state");
    assert_eq!(dropped.height, 7);
    assert_eq!(dropped.code, "nonce_replayed");
    assert!(
        dropped.message.contains("already used"),
        "{}",
        dropped.message
    );
    // Any other transaction is still unknown, with no reason attached.
    let other: serde_json::Value = http
        .get(format!(
            "{}/v1/txs/{}",
            server.url(),
            place(1, 4).hash().to_hex()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["state"], "unknown");
    assert!(other.get("dropped").is_none(), "{other}");
}

#[tokio::test]
async fn undecodable_batch_items_cost_the_address_a_token_each_and_cancels_stay_free() {
    let n = node(bursts_only(5, None), 1_000).await;
    // Items that are not transactions: each is refused for what it is while the address
    // has tokens, then as rate limited.
    let garbage = vec![
        "00".to_owned(),
        "zz".to_owned(),
        "00".repeat(dex_types::MAX_TX_BYTES + 1),
        "0001".to_owned(),
        "00".to_owned(),
        "00".to_owned(),
        "zz".to_owned(),
    ];
    let results = n.submit_batch(&garbage).await;
    let codes = item_codes(&results);
    assert_eq!(
        codes,
        [
            "malformed_tx",
            "bad_request",
            "tx_too_large",
            "malformed_tx",
            "malformed_tx",
            "rate_limited",
            "rate_limited",
        ]
    );
    let refused = results[5].error.as_ref().unwrap();
    assert_eq!(refused.status, 429);
    assert!(refused.message.contains("address"), "{}", refused.message);
    // A later garbage batch gets nothing but rate limits, and a cancel still goes through
    // (while a placement does not).
    let items = [
        "00".to_owned(),
        item_hex(&cancel(1, 1)),
        item_hex(&place(2, 1)),
    ];
    let results = n.submit_batch(&items).await;
    let codes = item_codes(&results);
    assert_eq!(codes, ["rate_limited", "<admitted>", "rate_limited"]);
    assert_eq!(n.chain.pending_count(), 1);
    // The garbage drew on the same address bucket as every other request.
    let (status, json) = n.get("/v1/markets").await;
    assert_eq!((status, code(&json)), (429, "rate_limited"));
}

#[tokio::test]
async fn an_undecodable_single_submission_costs_the_address_a_token_too() {
    let n = node(bursts_only(2, None), 1_000).await;
    let garbage = serde_json::json!({ "tx": "00" }).to_string();
    let (status, json) = n.post_raw(garbage.clone()).await;
    assert_eq!((status, code(&json)), (400, "malformed_tx"));
    let (status, json) = n.post_raw(garbage.clone()).await;
    assert_eq!((status, code(&json)), (400, "malformed_tx"));
    // Out of tokens: the third is refused as rate limited, before any decoding is said.
    let (status, json) = n.post_raw(garbage).await;
    assert_eq!((status, code(&json)), (429, "rate_limited"));
    // Cancels are still never limited.
    let (status, json) = n.submit(&cancel(1, 1)).await;
    assert_eq!(status, 202, "{json}");
}
