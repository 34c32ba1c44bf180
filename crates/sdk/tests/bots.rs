//! The market maker and taker against a live in-process chain.

mod common;

use common::{Devnet, d};
use dex_sdk::OrderParams;
use dex_sdk::bots::{MarketMaker, MarketMakerConfig, Taker, TakerConfig};
use dex_sdk::wire::SideView;
use dex_types::{MarketId, Side};
use std::time::Duration;

const M: MarketId = MarketId(1);

fn config() -> MarketMakerConfig {
    MarketMakerConfig {
        market: M,
        reference_price: Some(d("100")),
        spread_bps: 100,
        size: d("0.1"),
        max_inventory: d("0.15"),
        dead_man_after: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn market_maker_quotes_leans_on_inventory_and_stops_at_its_limit() {
    let net = Devnet::start(2).await;
    let mut mm = MarketMaker::new(net.client(0).await, config())
        .await
        .unwrap();
    let first = mm.step().await.unwrap();
    assert_eq!(
        (first.bid, first.ask),
        (Some(d("99.50")), Some(d("100.50")))
    );
    assert!(first.requoted && first.refused.is_none());
    let client = mm.client().clone();
    let mine = client.open_orders(None).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert!(
        client
            .account_view(None)
            .await
            .unwrap()
            .cancel_all_at_ms
            .is_some()
    );
    // Nothing changed: no re-quote.
    assert!(!mm.step().await.unwrap().requoted);

    // Someone sells into the bid: the maker is long 0.1.
    let taker = net.client(1).await;
    taker
        .place(OrderParams::limit(M, Side::Sell, d("99.50"), d("0.1")).ioc())
        .await
        .unwrap();
    let after = mm.step().await.unwrap();
    assert_eq!(after.inventory, d("0.1"));
    // Another 0.1 would pass the 0.15 limit: no bid; the ask leans down by the skew.
    assert_eq!(after.bid, None);
    assert_eq!(after.ask, Some(d("100.17")));
    // Bought at 99.50 with a rebate, marked at 100: the PnL is the half spread and more.
    assert!(after.pnl > d("0.05"), "{}", after.pnl);
    let mine = client.open_orders(None).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].side, SideView::Sell);
    assert_eq!(mine[0].price, d("100.17"));

    mm.shutdown().await.unwrap();
    assert!(client.open_orders(None).await.unwrap().is_empty());
    assert_eq!(
        client.account_view(None).await.unwrap().cancel_all_at_ms,
        None
    );
}

#[tokio::test]
async fn market_maker_follows_the_mid_and_taker_takes_its_quotes() {
    let net = Devnet::start(3).await;
    // Someone else's quotes make a mid of 200.
    let other = net.client(2).await;
    other
        .place(OrderParams::limit(M, Side::Buy, d("199"), d("1")))
        .await
        .unwrap();
    other
        .place(OrderParams::limit(M, Side::Sell, d("201"), d("1")))
        .await
        .unwrap();
    let mut mm = MarketMaker::new(
        net.client(0).await,
        MarketMakerConfig {
            reference_price: None,
            max_inventory: d("10"),
            ..config()
        },
    )
    .await
    .unwrap();
    let report = mm.step().await.unwrap();
    assert_eq!(report.reference, d("200"));
    assert_eq!((report.bid, report.ask), (Some(d("199")), Some(d("201"))));

    let mut taker = Taker::new(
        net.client(1).await,
        TakerConfig {
            market: M,
            size: d("0.05"),
            max_slippage_bps: 10,
            seed: 3,
        },
    );
    let mut applied = 0;
    for _ in 0..4 {
        let take = taker.step().await.unwrap();
        assert!(take.side.is_some());
        applied += usize::from(take.ok);
    }
    assert_eq!(applied, 4);
    let trades = other.trades(M, 10).await.unwrap();
    assert_eq!(trades.len(), 4);
    // The same seed chooses the same sides.
    let sides: Vec<SideView> = trades.iter().map(|t| t.taker_side).collect();
    let mut again = Taker::new(
        net.client(1).await,
        TakerConfig {
            market: M,
            size: d("0.05"),
            max_slippage_bps: 10,
            seed: 3,
        },
    );
    for expected in sides {
        let side = again.step().await.unwrap().side.unwrap();
        assert_eq!(SideView::from(side), expected);
    }
}
