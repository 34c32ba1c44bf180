//! The SDK client against a real API server over an in-process chain: every call.

mod common;

use common::{Devnet, d, eventually};
use dex_api::wire::{OrderState, SideView, TxState};
use dex_sdk::{Client, ClientConfig, Leg, OrderParams, SdkError, TraderKey};
use dex_types::{
    AgentPolicy, AssetId, CancelTarget, ClientOrderId, MarketId, MarketScope, OrderId, Rounding,
    Side, TimestampMs,
};
use std::collections::BTreeSet;
use std::time::Duration;

const M: MarketId = MarketId(1);
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn reads_chain_markets_accounts_and_blocks() {
    let net = Devnet::start(2).await;
    let client = net.client(0).await;
    assert_eq!(client.chain().chain_id, common::CHAIN_ID);
    assert_eq!(client.chain().markets[0].name, "BTC-USDC");
    assert_eq!(client.chain().validators.len(), 1);
    let market = client.market(M).unwrap();
    assert_eq!(market.spec().tick_size, d("0.01"));
    assert!(matches!(
        client.market(MarketId(9)),
        Err(SdkError::UnknownMarket(_))
    ));
    let view = client.account_view(None).await.unwrap();
    assert!(view.exists);
    assert_eq!(view.balances[0].symbol, "USDC");
    assert_eq!(view.balances[0].free, d("1000000"));
    assert_eq!(view.balances[1].free, d("100"));
    assert_eq!(
        client.balance(AssetId(1)).await.unwrap(),
        (d("100"), d("0"))
    );
    let stranger = TraderKey::from_seed([99; 32]).account();
    assert!(!client.account_view(Some(stranger)).await.unwrap().exists);
    // Blocks come every idle interval; the latest and a numbered one agree.
    let head = eventually(WAIT, || async {
        let chain = client.fetch_chain().await.unwrap();
        (chain.height >= 2).then_some(chain.height)
    })
    .await;
    let block = client.block(head).await.unwrap().unwrap();
    assert_eq!(block.header.height, head);
    assert!(block.certificate.is_some());
    assert!(client.latest_block().await.unwrap().header.height >= head);
    assert!(client.block(head + 1_000_000).await.unwrap().is_none());
    let book = client.book(M, 10).await.unwrap();
    assert!(book.bids.is_empty() && book.asks.is_empty());
}

#[tokio::test]
async fn place_fill_modify_cancel_and_query_every_way() {
    let net = Devnet::start(2).await;
    let maker = net.client(0).await;
    let taker = net.client(1).await;

    // A resting sell, with an SDK-assigned client id.
    let placed = maker
        .place(OrderParams::limit(M, Side::Sell, d("100.00"), d("1.0")))
        .await
        .unwrap();
    assert_eq!(placed.tx.state, TxState::Committed);
    let order = placed.order.clone().expect("the order is reported");
    assert_eq!(order.state, OrderState::Open);
    let id = placed.order_id().unwrap();
    assert_eq!(maker.order(id).await.unwrap().unwrap().remaining, d("1"));
    let by_cid = maker
        .order_by_client_id(placed.client_order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_cid.order_id, Some(id.0));
    assert_eq!(maker.open_orders(None).await.unwrap().len(), 1);
    let book = maker.book(M, 5).await.unwrap();
    assert_eq!(book.asks[0].price, d("100"));
    assert_eq!(book.asks[0].size, d("1"));
    let level = maker.level(M, SideView::Sell, d("100.00")).await.unwrap();
    assert_eq!(level.orders.len(), 1);
    assert_eq!(level.orders[0].order_id, id.0);
    let (_, locked) = maker.balance(AssetId(1)).await.unwrap();
    assert_eq!(locked, d("1"));

    // A taker buys 0.4 immediately.
    let took = taker
        .place(OrderParams::limit(M, Side::Buy, d("100.00"), d("0.4")).ioc())
        .await
        .unwrap();
    assert!(took.tx.outcome.as_ref().unwrap().ok);
    assert_eq!(took.order.unwrap().state, OrderState::Filled);
    let maker_fills = maker.fills(None, 10).await.unwrap();
    assert_eq!(maker_fills.len(), 1);
    assert_eq!(maker_fills[0].size, d("0.4"));
    assert_eq!(maker_fills[0].side, SideView::Sell);
    // The maker earns the 1 bp rebate on 40 USDC.
    assert_eq!(maker_fills[0].fee, d("-0.004"));
    let taker_fills = taker.fills(None, 10).await.unwrap();
    assert_eq!(taker_fills[0].fee, d("0.02"));
    let trades = maker.trades(M, 10).await.unwrap();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].taker_side, SideView::Buy);
    assert_eq!(maker.order(id).await.unwrap().unwrap().remaining, d("0.6"));

    // Modify: smaller size keeps priority; a new price moves it.
    let modified = maker.modify(M, id, None, Some(d("0.5"))).await.unwrap();
    assert!(modified.outcome.unwrap().ok);
    let status = maker.order(id).await.unwrap().unwrap();
    assert_eq!(status.remaining, d("0.5"));
    assert_eq!(status.filled, d("0.4"));
    maker.modify(M, id, Some(d("101.00")), None).await.unwrap();
    assert_eq!(maker.order(id).await.unwrap().unwrap().price, d("101"));

    // Cancel by client id: the status says cancelled by the user.
    let cancel = maker
        .cancel(CancelTarget::ClientOrder(placed.client_order_id))
        .await
        .unwrap();
    assert!(cancel.outcome.unwrap().ok);
    let done = maker.order(id).await.unwrap().unwrap();
    assert_eq!(done.state, OrderState::Cancelled);
    assert_eq!(done.reason.as_deref(), Some("user"));
    assert!(maker.open_orders(None).await.unwrap().is_empty());

    // Cancel by order id, and everything in a market.
    let a = maker
        .place(OrderParams::limit(M, Side::Sell, d("105"), d("0.1")))
        .await
        .unwrap();
    maker
        .cancel(CancelTarget::Order(a.order_id().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        maker
            .order(a.order_id().unwrap())
            .await
            .unwrap()
            .unwrap()
            .state,
        OrderState::Cancelled
    );
    for price in ["106", "107"] {
        maker
            .place(OrderParams::limit(M, Side::Sell, d(price), d("0.1")))
            .await
            .unwrap();
    }
    assert_eq!(maker.open_orders(None).await.unwrap().len(), 2);
    maker.cancel_all(Some(M)).await.unwrap();
    assert!(maker.open_orders(None).await.unwrap().is_empty());
    maker.cancel_all(None).await.unwrap();

    // The transaction of the first placement is committed and known by hash.
    let hash = dex_types::Hash::from_hex(&placed.tx.tx_hash).unwrap();
    assert_eq!(
        maker.tx_status(&hash).await.unwrap().state,
        TxState::Committed
    );
}

#[tokio::test]
async fn batches_are_atomic_or_per_leg() {
    let net = Devnet::start(1).await;
    let client = net.client(0).await;
    let cid = ClientOrderId(5);
    let legs = |second_cid| {
        vec![
            Leg::Place(OrderParams::limit(M, Side::Buy, d("90"), d("0.1")).client_id(cid)),
            Leg::Place(OrderParams::limit(M, Side::Buy, d("91"), d("0.1")).client_id(second_cid)),
        ]
    };
    // Two placements with one client id: atomic fails whole.
    let status = client.batch(legs(cid), true).await.unwrap();
    let outcome = status.outcome.unwrap();
    assert!(!outcome.ok);
    assert_eq!(outcome.code.as_deref(), Some("batch_leg_failed"));
    assert!(client.open_orders(None).await.unwrap().is_empty());
    // Non-atomic: the first stands, the second is refused.
    let outcome = client
        .batch(legs(cid), false)
        .await
        .unwrap()
        .outcome
        .unwrap();
    assert!(outcome.ok);
    assert_eq!(outcome.leg_rejections.len(), 1);
    assert_eq!(outcome.leg_rejections[0].code, "duplicate_client_order_id");
    assert_eq!(client.open_orders(None).await.unwrap().len(), 1);
    // The open order keeps its client id even though a duplicate was rejected.
    let by_cid = client.order_by_client_id(cid).await.unwrap().unwrap();
    assert_eq!(by_cid.state, OrderState::Open);
    // A batch that cancels and re-places atomically.
    let outcome = client
        .batch(
            vec![
                Leg::Cancel(CancelTarget::Market(M)),
                Leg::Place(OrderParams::limit(M, Side::Buy, d("92"), d("0.2")).post_only()),
            ],
            true,
        )
        .await
        .unwrap()
        .outcome
        .unwrap();
    assert!(outcome.ok);
    let open = client.open_orders(None).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].price, d("92"));
}

#[tokio::test]
async fn decimals_are_exact_unless_rounding_is_asked() {
    let net = Devnet::start(1).await;
    let client = net.client(0).await;
    let off_tick = OrderParams::limit(M, Side::Buy, d("100.001"), d("0.1"));
    assert!(matches!(
        client.place(off_tick).await,
        Err(SdkError::Conversion(_))
    ));
    let off_lot = OrderParams::limit(M, Side::Buy, d("100"), d("0.00001"));
    assert!(matches!(
        client.place(off_lot).await,
        Err(SdkError::Conversion(_))
    ));
    // Nothing reached the node.
    assert!(client.open_orders(None).await.unwrap().is_empty());
    let rounded = client
        .place(off_tick.round_price(Rounding::Down))
        .await
        .unwrap();
    assert_eq!(rounded.order.unwrap().price, d("100"));
    let market = client.market(M).unwrap();
    assert_eq!(
        dex_sdk::round_price(market, d("100.005"), Rounding::Nearest).unwrap(),
        d("100.01")
    );
    assert_eq!(
        dex_sdk::round_size(market, d("0.00015"), Rounding::Down).unwrap(),
        d("0.0001")
    );
}

#[tokio::test]
async fn dead_man_switch_cancels_every_order() {
    let net = Devnet::start(1).await;
    let client = net.client(0).await;
    let mut ids = Vec::new();
    for price in ["95", "96"] {
        let placed = client
            .place(OrderParams::limit(M, Side::Buy, d(price), d("0.1")))
            .await
            .unwrap();
        ids.push(placed.order_id().unwrap());
    }
    client
        .dead_man_switch(Duration::from_millis(300))
        .await
        .unwrap();
    assert!(
        client
            .account_view(None)
            .await
            .unwrap()
            .cancel_all_at_ms
            .is_some()
    );
    eventually(WAIT, || async {
        let open = client.open_orders(None).await.unwrap();
        open.is_empty().then_some(())
    })
    .await;
    for id in ids {
        let order = client.order(id).await.unwrap().unwrap();
        assert_eq!(order.state, OrderState::Cancelled);
        assert_eq!(order.reason.as_deref(), Some("dead_man_switch"));
    }
    // Disarming works too.
    client
        .dead_man_switch(Duration::from_secs(3_600))
        .await
        .unwrap();
    client.schedule_cancel_all(None).await.unwrap();
    assert_eq!(
        client.account_view(None).await.unwrap().cancel_all_at_ms,
        None
    );
}

#[tokio::test]
async fn agents_trade_for_their_owner_and_nothing_else() {
    let net = Devnet::start(2).await;
    let owner = net.client(0).await;
    let agent_key = TraderKey::agent_from_seed([42; 32], owner.account().unwrap());
    let approve = owner
        .approve_agent(
            agent_key.signer(),
            AgentPolicy {
                markets: MarketScope::Only(vec![M]),
                max_orders_per_block: 10,
                expires_at: TimestampMs(u64::MAX),
            },
        )
        .await
        .unwrap();
    assert!(approve.outcome.unwrap().ok);
    let agent = Client::connect(&net.url(), Some(agent_key.clone()), ClientConfig::default())
        .await
        .unwrap();
    let placed = agent
        .place(OrderParams::limit(M, Side::Buy, d("99"), d("0.1")))
        .await
        .unwrap();
    let order = placed.order.unwrap();
    assert_eq!(order.account, owner.account().unwrap().to_hex());
    // An agent cannot move funds: refused before it reaches the chain.
    let other = net.keys[1].account();
    let refused = agent.transfer(other, AssetId(0), d("1")).await;
    assert_eq!(refused.unwrap_err().code(), Some("invalid_tx"));
    // Revoked: the agent's next order is refused at admission.
    owner.revoke_agent(agent_key.signer()).await.unwrap();
    let after = agent
        .place(OrderParams::limit(M, Side::Buy, d("98"), d("0.1")))
        .await;
    assert_eq!(after.unwrap_err().code(), Some("not_an_agent"));
}

#[tokio::test]
async fn transfers_move_funds_and_refusals_carry_codes() {
    let net = Devnet::start(2).await;
    let a = net.client(0).await;
    let b_account = net.keys[1].account();
    let status = a.transfer(b_account, AssetId(0), d("12.5")).await.unwrap();
    assert!(status.outcome.unwrap().ok);
    let b = a.account_view(Some(b_account)).await.unwrap();
    assert_eq!(b.balances[0].free, d("1000012.5"));
    let too_much = a.transfer(b_account, AssetId(0), d("99999999")).await;
    assert_eq!(too_much.unwrap_err().code(), Some("insufficient_funds"));
    let poor = a
        .place(OrderParams::limit(M, Side::Buy, d("100000"), d("99")))
        .await;
    assert_eq!(poor.unwrap_err().code(), Some("insufficient_funds"));
}

#[tokio::test]
async fn many_concurrent_orders_never_collide_on_nonces() {
    let net = Devnet::start(1).await;
    let client = net.client(0).await;
    let mut tasks = Vec::new();
    for i in 0..150u64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let price = d("50") + rust_decimal::Decimal::new(i as i64, 2);
            client
                .place(OrderParams::limit(M, Side::Buy, price, d("0.01")))
                .await
        }));
    }
    let mut ids = BTreeSet::new();
    for task in tasks {
        let placed = task.await.unwrap().unwrap();
        assert!(placed.tx.outcome.as_ref().unwrap().ok, "{:?}", placed.tx);
        assert!(ids.insert(placed.client_order_id));
    }
    assert_eq!(client.open_orders(None).await.unwrap().len(), 150);
}

#[tokio::test]
async fn resubmitting_never_places_twice() {
    let net = Devnet::start(1).await;
    let client = net.client(0).await;
    // The same signed transaction sent twice executes once.
    let key = &net.keys[0];
    let order = OrderParams::limit(M, Side::Buy, d("80"), d("0.1"))
        .to_request(client.market(M).unwrap(), Some(ClientOrderId(77)))
        .unwrap();
    let signed = signed_placement(&client, key, order).await;
    let first = client.submit_signed(&signed).await.unwrap();
    let second = client.submit_signed(&signed).await.unwrap();
    assert_eq!(first.state, TxState::Committed);
    assert_eq!(second.state, TxState::Committed);
    assert_eq!(first.tx_hash, second.tx_hash);
    assert_eq!(client.open_orders(None).await.unwrap().len(), 1);

    // After a "restart" (a new client), placing by the same client id finds the order.
    let restarted = net.client(0).await;
    let again = restarted
        .place_once(
            OrderParams::limit(M, Side::Buy, d("80"), d("0.1")),
            ClientOrderId(77),
        )
        .await
        .unwrap();
    assert_eq!(again.order.unwrap().state, OrderState::Open);
    assert_eq!(restarted.open_orders(None).await.unwrap().len(), 1);
    // A new client id places a new order.
    restarted
        .place_once(
            OrderParams::limit(M, Side::Buy, d("81"), d("0.1")),
            ClientOrderId(78),
        )
        .await
        .unwrap();
    assert_eq!(restarted.open_orders(None).await.unwrap().len(), 2);
    // The restarted client's nonces start above the first run's.
    assert!(restarted.nonces().peek() > signed.tx.nonce);
    // Orders by id that never existed are absent, not errors.
    assert!(client.order(OrderId(9_999_999)).await.unwrap().is_none());
}

#[tokio::test]
async fn unreachable_nodes_are_transport_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let config = ClientConfig {
        request_timeout: Duration::from_secs(2),
        ..ClientConfig::default()
    };
    let error = Client::connect(&url, None, config).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn a_batch_submission_answers_each_transaction_in_order() {
    let net = Devnet::start(1).await;
    let client = net.client(0).await;
    let key = &net.keys[0];
    let market = client.market(M).unwrap().clone();
    let mut signed = Vec::new();
    for (k, price) in ["70", "71", "72", "73"].into_iter().enumerate() {
        let order = OrderParams::limit(M, Side::Buy, d(price), d("0.1"))
            .to_request(&market, Some(ClientOrderId(500 + k as u64)))
            .unwrap();
        signed.push(signed_placement(&client, key, order).await);
    }
    // The second is forged: refused alone, the others admitted in their places.
    signed[1].signature[4] ^= 1;
    let results = client.submit_batch(&signed).await.unwrap();
    assert_eq!(results.len(), 4);
    for (k, result) in results.iter().enumerate() {
        match (k, result) {
            (1, Err(SdkError::Api { status, code, .. })) => {
                assert_eq!((*status, code.as_str()), (400, "bad_signature"));
                assert!(!result.as_ref().unwrap_err().is_retryable());
            }
            (_, Ok(hash)) => assert_eq!(*hash, signed[k].hash()),
            other => panic!("item {k}: {other:?}"),
        }
    }
    // The admitted three are placed once each, the forged one never.
    let open = eventually(WAIT, || async {
        let open = client.open_orders(None).await.unwrap();
        (open.len() == 3).then_some(open)
    })
    .await;
    let ids: BTreeSet<u64> = open.iter().map(|o| o.client_order_id.unwrap()).collect();
    assert_eq!(ids, BTreeSet::from([500, 502, 503]));
    // Sent again, each admitted one is now committed (its nonce spent): refused alone.
    let again = client.submit_batch(&signed[2..]).await.unwrap();
    assert!(
        again
            .iter()
            .all(|r| r.as_ref().err().and_then(SdkError::code) == Some("nonce_replayed"))
    );
    // More than a batch may carry is refused whole.
    let too_many = vec![signed[0].clone(); dex_api::wire::MAX_BATCH_TXS + 1];
    match client.submit_batch(&too_many).await {
        Err(SdkError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (413, "batch_too_large"));
        }
        other => panic!("{other:?}"),
    }
    assert!(client.submit_batch(&[]).await.unwrap().is_empty());
}

/// `order` placed by `key`'s account under the client's next nonce, valid for a minute and
/// signed, but not sent: for tests that submit the very same bytes themselves.
async fn signed_placement(
    client: &Client,
    key: &TraderKey,
    order: dex_types::OrderRequest,
) -> dex_types::SignedTransaction {
    let tx = dex_types::Transaction {
        chain_id: client.chain_id(),
        account: key.account(),
        signer: key.signer(),
        nonce: client.nonces().lease().await.nonce,
        expires_at: TimestampMs(client.now().0 + 60_000),
        action: dex_types::Action::Batch(dex_types::OrderBatch {
            legs: vec![dex_types::BatchLeg::Place(order)],
            atomic: true,
        }),
    };
    key.sign(tx).unwrap()
}
