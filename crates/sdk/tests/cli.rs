//! The `dex` CLI against a live in-process chain: keygen, balance, order, book, watch, verify.

mod common;

use common::{Devnet, d};
use std::time::Duration;

async fn dex(url: &str, key: Option<&std::path::Path>, args: &[&str]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dex"));
    command.arg("--url").arg(url);
    if let Some(key) = key {
        command.arg("--key").arg(key);
    }
    command.args(args).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the CLI finished in time")
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_trades_shows_and_verifies() {
    let net = Devnet::start(2).await;
    let dir = tempfile::tempdir().unwrap();
    let url = net.url();

    // keygen writes a private key file; an unfunded account shows zero balances.
    let fresh = dir.path().join("fresh.json");
    let (ok, out, err) = dex(&url, None, &["keygen", "--out", fresh.to_str().unwrap()]).await;
    assert!(ok, "{err}");
    assert!(out.contains("mode 600"));
    let (ok, out, _) = dex(&url, Some(&fresh), &["--json", "balance"]).await;
    assert!(ok);
    let view: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(view["exists"], false);

    // The funded traders' keys.
    let maker = dir.path().join("maker.json");
    let taker = dir.path().join("taker.json");
    net.keys[0].save(&maker).unwrap();
    net.keys[1].save(&taker).unwrap();
    let (ok, out, err) = dex(&url, Some(&maker), &["balance"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("USDC") && out.contains("1000000"), "{out}");

    // A watcher of the maker's fills, started before the trade.
    let watch_url = url.clone();
    let watch_key = maker.clone();
    let watcher = tokio::spawn(async move {
        dex(
            &watch_url,
            Some(&watch_key),
            &["--json", "watch", "--count", "3", "--seconds", "30"],
        )
        .await
    });

    let place = [
        "order", "place", "--market", "1", "--side", "sell", "--price", "100.5", "--size", "0.2",
    ];
    let (ok, out, err) = dex(&url, Some(&maker), &place).await;
    assert!(ok, "{err}");
    assert!(out.contains("committed in block"), "{out}");
    // An off-tick price is refused locally unless rounding is asked for.
    let off = [
        "order", "place", "--market", "1", "--side", "buy", "--price", "1.001", "--size", "0.2",
    ];
    let (ok, _, err) = dex(&url, Some(&taker), &off).await;
    assert!(!ok && err.contains("not a whole multiple"), "{err}");

    let (ok, out, _) = dex(&url, None, &["book", "--market", "1"]).await;
    assert!(ok);
    assert!(out.contains("100.50") && out.contains("ask"), "{out}");

    let take = [
        "--json", "order", "place", "--market", "1", "--side", "buy", "--price", "100.5", "--size",
        "0.2", "--tif", "ioc",
    ];
    let (ok, out, err) = dex(&url, Some(&taker), &take).await;
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["outcome"]["ok"], true);
    let height = status["outcome"]["height"].as_u64().unwrap();

    let (ok, out, err) = watcher.await.unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("\"fills\""), "{out}");

    // Verify the fill (the only committed item of its block) against the certificate.
    let h = height.to_string();
    let (ok, out, err) = dex(
        &url,
        None,
        &["--json", "verify", "--height", &h, "--index", "0"],
    )
    .await;
    assert!(ok, "{err}");
    let verified: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["trade"]["size"], "0.2000");

    // Cancel and modify.
    let (ok, _, err) = dex(
        &url,
        Some(&maker),
        &[
            "order",
            "place",
            "--market",
            "1",
            "--side",
            "buy",
            "--price",
            "90",
            "--size",
            "0.1",
            "--client-id",
            "5",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let client = net.client(0).await;
    let order = client
        .order_by_client_id(dex_types::ClientOrderId(5))
        .await
        .unwrap()
        .unwrap();
    let id = order.order_id.unwrap().to_string();
    let (ok, _, err) = dex(
        &url,
        Some(&maker),
        &["order", "modify", "--order-id", &id, "--price", "91"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        client
            .order_by_client_id(dex_types::ClientOrderId(5))
            .await
            .unwrap()
            .unwrap()
            .price,
        d("91")
    );
    let (ok, _, err) = dex(&url, Some(&maker), &["order", "cancel", "--client-id", "5"]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = dex(
        &url,
        Some(&maker),
        &["order", "cancel", "--all", "--market", "1"],
    )
    .await;
    assert!(!ok && err.contains("exactly one"), "{err}");
    assert!(client.open_orders(None).await.unwrap().is_empty());
    // Signing commands need a key.
    let (ok, _, err) = dex(&url, None, &["order", "cancel", "--all"]).await;
    assert!(!ok && err.contains("--key"), "{err}");
}
