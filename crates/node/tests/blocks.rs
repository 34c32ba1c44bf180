//! Block reads through a real `dexd`: a validator serves every block it stores, also the
//! ones committed before it last started, which its API's read model never indexed. Such
//! a block is read back from RocksDB with its certificate: the same header (hash, roots)
//! and certificate as before the restart, without the outcomes and committed items that
//! only executing it gives (the store does not keep them), so its fill proofs are refused
//! rather than answered wrongly.

// The helpers are shared with the cluster scenarios; this file uses only some of them.
#[allow(dead_code)]
mod support;

use dex_api::wire::{BlockView, FillProofView};
use dex_consensus::CommitCertificate;
use dex_types::{MarketId, Side, TimestampMs};
use std::time::{Duration, Instant};
use support::{Cluster, OrderPlan, get_json, submit_until_committed};

/// A single validator commits on its own: no peers to wait for, one process on a shared
/// two-core machine.
const VALIDATORS: usize = 1;
/// Funded traders: one buyer and one seller.
const TRADERS: usize = 2;
/// Orders per trader. With [`OrderPlan`]'s prices, nonce 4 of each side crosses the
/// other side's nonce 1, so the seller's orders fill some of the resting bids.
const ORDERS_PER_TRADER: u64 = 5;

/// GET `path` on validator 0: the status and the body.
async fn get(cluster: &Cluster, path: &str) -> (u16, serde_json::Value) {
    let response = cluster
        .http()
        .get(format!("{}{path}", cluster.urls[0]))
        .send()
        .await
        .expect("the node answers");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// Trader `t` places its orders on market 1 and waits for each to commit; returns the
/// heights that executed them.
async fn trade(cluster: &Cluster, t: usize, side: Side) -> Vec<u64> {
    let markets = support::markets(cluster).await;
    let market = MarketId(1);
    let reference = dex_node::devnet::MARKETS
        .iter()
        .find(|(id, _, _)| *id == market)
        .expect("a devnet market")
        .2;
    let key = cluster.trader(t);
    let signed = OrderPlan {
        key: &key,
        chain_id: cluster.spec.genesis.chain_id,
        market: &markets[&market],
        side,
        reference,
        count: ORDERS_PER_TRADER,
        first_nonce: 1,
        expires_at: TimestampMs(support::now_ms() + 10 * 60 * 1_000),
    }
    .sign();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut heights = Vec::new();
    for tx in &signed {
        let status = submit_until_committed(cluster.http(), &cluster.urls[0], tx, deadline)
            .await
            .unwrap_or_else(|error| panic!("trader {t}: {error}"));
        let outcome = status
            .outcome
            .expect("a committed transaction has an outcome");
        assert!(outcome.ok, "trader {t}'s order applied: {outcome:?}");
        heights.push(outcome.height);
    }
    heights
}

#[test]
fn n1_restarted_validator_serves_blocks_committed_before_the_restart() {
    support::runtime().block_on(async {
        let mut cluster = Cluster::start(VALIDATORS, TRADERS).await;
        cluster.wait_height(&[0], 1, Duration::from_secs(60)).await;
        let mut with_txs = trade(&cluster, 1, Side::Buy).await;
        with_txs.extend(trade(&cluster, 2, Side::Sell).await);
        with_txs.sort_unstable();
        with_txs.dedup();
        let head = cluster.height(0).await.expect("v0 answers");

        // Every block as the read model serves it, with its outcomes.
        let mut before: Vec<BlockView> = Vec::new();
        for height in 1..=head {
            before.push(
                cluster
                    .block(0, height)
                    .await
                    .unwrap_or_else(|| panic!("v0 serves block {height} before the restart")),
            );
        }
        let filled = before
            .iter()
            .find(|b| b.committed_items > 0)
            .map(|b| b.header.height)
            .expect("the crossing orders filled in some block");
        let proof_path = format!("/v1/blocks/{filled}/fills/0/proof");
        let proof: FillProofView =
            get_json(cluster.http(), &format!("{}{proof_path}", cluster.urls[0]))
                .await
                .expect("a fill proof from the read model");
        assert_eq!(proof.header.height, filled);

        cluster.kill(0);
        cluster.spawn(0);
        cluster.wait_ready(0).await;
        let recovered = cluster
            .started_at_height(0)
            .expect("v0 logged the height it started at");
        assert!(
            recovered >= head,
            "v0 recovered at {recovered}, below the {head} it had committed"
        );

        // Every block from before the restart: the same header and certificate, read from
        // the store (the read model holds none of them), and the certificate decides
        // exactly that header.
        for reference in &before {
            let height = reference.header.height;
            let block = cluster
                .block(0, height)
                .await
                .unwrap_or_else(|| panic!("v0 serves block {height} after the restart"));
            assert_eq!(block.header, reference.header, "block {height}'s header");
            assert_eq!(
                block.certificate, reference.certificate,
                "block {height}'s certificate"
            );
            let certificate = CommitCertificate::decode(
                &hex::decode(block.certificate.as_deref().expect("a certificate")).expect("hex"),
            )
            .expect("a certificate");
            assert_eq!(certificate.height.0, height);
            assert_eq!(certificate.value_id.to_hex(), block.header.hash);
            // The outcomes are not stored: none are invented (the route's description
            // says so), and a block without transactions is served whole.
            assert!(block.txs.is_empty(), "block {height} served outcomes");
            assert_eq!(block.committed_items, 0);
            if !with_txs.contains(&height) {
                assert_eq!(block, *reference, "block {height} had no transactions");
            } else {
                // Which transactions it holds is known (the block body is stored), in
                // block order, without outcomes.
                assert!(!reference.txs.is_empty());
                let ids: Vec<String> = reference.txs.iter().map(|t| t.tx_hash.clone()).collect();
                let mut served = block
                    .tx_hashes
                    .clone()
                    .expect("the block's transaction ids");
                let mut expected = ids;
                served.sort();
                expected.sort();
                assert_eq!(served, expected, "block {height}'s transactions");
            }
        }

        // The fill proof needs the committed items, which only the read model had.
        let (status, json) = get(&cluster, &proof_path).await;
        assert_eq!((status, json["code"].as_str()), (404, Some("not_found")));
        let message = json["message"].as_str().unwrap_or_default();
        assert!(message.contains("not held"), "{message}");

        // Heights not committed, the genesis state and bad heights answer as before.
        let (status, json) = get(&cluster, "/v1/blocks/1000000000").await;
        assert_eq!((status, json["code"].as_str()), (404, Some("not_found")));
        let (status, _) = get(&cluster, "/v1/blocks/0").await;
        assert_eq!(status, 404);
        let (status, json) = get(&cluster, "/v1/blocks/abc").await;
        assert_eq!((status, json["code"].as_str()), (400, Some("bad_request")));
        let (status, _) = get(&cluster, "/v1/blocks/-1").await;
        assert_eq!(status, 400);

        // A block committed after the restart comes from the read model, outcomes and all.
        cluster
            .wait_height(&[0], recovered + 1, Duration::from_secs(60))
            .await;
        let (status, _) = get(&cluster, "/v1/blocks/latest").await;
        assert_eq!(status, 200);
        let after = cluster
            .block(0, recovered + 1)
            .await
            .expect("v0 serves the block it committed after the restart");
        assert_eq!(after.header.height, recovered + 1);
    });
}
