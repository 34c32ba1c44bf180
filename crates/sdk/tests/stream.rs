//! Subscriptions through a proxy that cuts, drops and alters the node's messages: the SDK
//! reconnects, resubscribes, fills gaps and resyncs, and ends with exactly what the node
//! committed.

mod common;

use common::proxy::{Policy, Proxy, Verdict};
use common::{Devnet, d, eventually};
use dex_api::wire::Channel;
use dex_sdk::{OrderParams, ResyncReason, StreamConfig, StreamEvent, Subscription};
use dex_types::{MarketId, Side};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const M: MarketId = MarketId(1);
const WAIT: Duration = Duration::from_secs(30);

fn config() -> StreamConfig {
    StreamConfig {
        heartbeat_timeout: Duration::from_secs(10),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        max_failures: 50,
        ..StreamConfig::default()
    }
}

/// Wait for the next event matching `pick`, for at most `WAIT`.
async fn next_matching<T>(
    subscription: &mut Subscription,
    mut pick: impl FnMut(&StreamEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, subscription.next())
            .await
            .expect("no matching event in time")
            .expect("subscription closed");
        if let Some(value) = pick(&event) {
            return value;
        }
    }
}

#[tokio::test]
async fn fills_survive_a_killed_connection_exactly_once() {
    let net = Devnet::start(2).await;
    let maker = net.client(0).await;
    let taker = net.client(1).await;
    let account = maker.account().unwrap();
    // On the first connection, the third fills message is never delivered: the proxy cuts
    // the connection instead.
    let mut fills_seen = 0;
    let policy: Policy = Arc::new(Mutex::new(move |connection: u32, text: &str| {
        if connection == 1 && text.contains(r#""type":"fills""#) {
            fills_seen += 1;
            if fills_seen == 3 {
                return Verdict::Kill;
            }
        }
        Verdict::Forward
    }));
    let proxy = Proxy::start(net.url(), policy).await;
    let mut subscription = Subscription::spawn(
        &proxy.url(),
        maker.markets().clone(),
        vec![Channel::Fills {
            account: account.to_hex().to_uppercase(),
        }],
        config(),
    );
    next_matching(&mut subscription, |e| {
        matches!(e, StreamEvent::Connected { connection: 1 }).then_some(())
    })
    .await;

    const ROUNDS: usize = 10;
    let trading = tokio::spawn(async move {
        for _ in 0..ROUNDS {
            maker
                .place(OrderParams::limit(M, Side::Sell, d("100"), d("0.1")))
                .await
                .unwrap();
            taker
                .place(OrderParams::limit(M, Side::Buy, d("100"), d("0.1")).ioc())
                .await
                .unwrap();
        }
    });

    let mut received = Vec::new();
    let mut connections = 1;
    let deadline = tokio::time::Instant::now() + WAIT;
    while received.len() < ROUNDS {
        let event = tokio::time::timeout_at(deadline, subscription.next())
            .await
            .expect("fills did not all arrive in time")
            .expect("subscription closed");
        match event {
            StreamEvent::Fills { fills, .. } => {
                received.extend(fills.iter().map(|f| (f.height, f.index, f.order_id)))
            }
            StreamEvent::Connected { connection } => connections = connection,
            _ => {}
        }
    }
    trading.await.unwrap();
    assert!(connections >= 2, "the connection was cut and re-made");

    // Exactly the fills the chain committed for the account: none missing, none twice.
    let committed: Vec<(u64, u32, u64)> = {
        let index = net.hub().read();
        index
            .feeds_after(0)
            .unwrap()
            .iter()
            .flat_map(|feed| feed.fills.get(&account).cloned().unwrap_or_default())
            .map(|f| (f.height, f.index, f.order_id))
            .collect()
    };
    assert_eq!(committed.len(), ROUNDS);
    let unique: BTreeSet<_> = received.iter().copied().collect();
    assert_eq!(unique.len(), received.len(), "no fill delivered twice");
    assert_eq!(unique, committed.into_iter().collect::<BTreeSet<_>>());
}

/// The local book equals the node's book.
async fn book_converges(net: &Devnet, subscription: &Subscription) {
    eventually(WAIT, || async {
        let book = subscription.book(M)?;
        let index = net.hub().read();
        let (bids, asks) = index.book_levels(M).unwrap();
        let same = book.seq() == index.book_seq(M).unwrap()
            && book.levels_ticks(Side::Buy) == bids
            && book.levels_ticks(Side::Sell) == asks
            && !book.is_crossed();
        same.then_some(())
    })
    .await;
}

async fn build_book(net: &Devnet, orders: usize) {
    let client = net.client(0).await;
    for i in 0..orders {
        let price = d("100") + rust_decimal::Decimal::from(i as u64);
        client
            .place(OrderParams::limit(M, Side::Sell, price, d("0.1")))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_missed_book_diff_is_detected_and_filled() {
    let net = Devnet::start(1).await;
    let mut diffs = 0;
    let policy: Policy = Arc::new(Mutex::new(move |connection: u32, text: &str| {
        if connection == 1 && text.contains(r#""type":"book_diff""#) {
            diffs += 1;
            if diffs == 2 {
                return Verdict::Drop;
            }
        }
        Verdict::Forward
    }));
    let proxy = Proxy::start(net.url(), policy).await;
    let markets = net.client(0).await.markets().clone();
    let mut subscription = Subscription::spawn(
        &proxy.url(),
        markets,
        vec![Channel::Book { market: 1 }],
        config(),
    );
    next_matching(&mut subscription, |e| {
        matches!(e, StreamEvent::Book { .. }).then_some(())
    })
    .await;
    build_book(&net, 5).await;
    let reason = next_matching(&mut subscription, |e| match e {
        StreamEvent::Resync { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(reason, ResyncReason::Gap { .. }), "{reason:?}");
    book_converges(&net, &subscription).await;
}

#[tokio::test]
async fn a_wrong_book_fails_its_checksum_and_is_replaced() {
    let net = Devnet::start(1).await;
    let mut diffs = 0;
    let policy: Policy = Arc::new(Mutex::new(move |connection: u32, text: &str| {
        if connection == 1 && text.contains(r#""type":"book_diff""#) {
            diffs += 1;
            if diffs == 2 {
                // Alter one level's size but keep the node's checksum: a wrong book.
                let mut json: serde_json::Value = serde_json::from_str(text).unwrap();
                json["asks"][0]["size"] = serde_json::Value::String("7.7".into());
                return Verdict::Replace(json.to_string());
            }
        }
        Verdict::Forward
    }));
    let proxy = Proxy::start(net.url(), policy).await;
    let markets = net.client(0).await.markets().clone();
    let mut subscription = Subscription::spawn(
        &proxy.url(),
        markets,
        vec![Channel::Book { market: 1 }],
        config(),
    );
    next_matching(&mut subscription, |e| {
        matches!(e, StreamEvent::Book { .. }).then_some(())
    })
    .await;
    build_book(&net, 4).await;
    let reason = next_matching(&mut subscription, |e| match e {
        StreamEvent::Resync { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, ResyncReason::Checksum);
    book_converges(&net, &subscription).await;
}

#[tokio::test]
async fn every_channel_streams() {
    let net = Devnet::start(2).await;
    let maker = net.client(0).await;
    let taker = net.client(1).await;
    let account = maker.account().unwrap().to_hex();
    let mut subscription = Subscription::spawn(
        &net.url(),
        maker.markets().clone(),
        vec![
            Channel::Trades { market: 1 },
            Channel::Orders {
                account: account.clone(),
            },
            Channel::Blocks,
        ],
        config(),
    );
    next_matching(&mut subscription, |e| {
        matches!(e, StreamEvent::Connected { .. }).then_some(())
    })
    .await;
    maker
        .place(OrderParams::limit(M, Side::Sell, d("100"), d("0.1")))
        .await
        .unwrap();
    taker
        .place(OrderParams::limit(M, Side::Buy, d("100"), d("0.1")).ioc())
        .await
        .unwrap();
    let (mut trades, mut orders, mut blocks) = (false, false, false);
    while !(trades && orders && blocks) {
        let event = next_matching(&mut subscription, |e| {
            matches!(
                e,
                StreamEvent::Trades { .. } | StreamEvent::Orders { .. } | StreamEvent::Block(_)
            )
            .then(|| e.clone())
        })
        .await;
        match event {
            StreamEvent::Trades { trades: t, .. } => trades |= !t.is_empty(),
            StreamEvent::Orders { orders: o, .. } => {
                orders |= o.iter().all(|o| o.account == account)
            }
            StreamEvent::Block(b) => blocks |= b.certificate.is_some(),
            _ => {}
        }
    }
}

#[tokio::test]
async fn an_unreachable_node_is_reported_and_the_retries_are_bounded() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut subscription = Subscription::spawn(
        &url,
        Default::default(),
        vec![Channel::Blocks],
        StreamConfig {
            max_failures: 2,
            ..config()
        },
    );
    let mut disconnects = 0;
    let reason = next_matching(&mut subscription, |e| match e {
        StreamEvent::Disconnected { .. } => {
            disconnects += 1;
            None
        }
        StreamEvent::Closed { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(disconnects, 2);
    assert!(reason.contains("3 connection attempts failed"), "{reason}");
    assert!(subscription.next().await.is_none());
}
