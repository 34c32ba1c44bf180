//! Batch submission through a real validator: `POST /v1/txs/batch` on one `dexd` of a
//! four-validator chain (f = 1) admits each good transaction through the node's own
//! batch path (one verify-queue entry, one hand-off to the driver), answers the bad ones
//! in place, and every admitted transaction is committed in the same block on every
//! validator.

// The helpers are shared with the cluster scenarios; this file uses only some of them.
#[allow(dead_code)]
mod support;

use dex_api::wire::{BatchItemView, MAX_BATCH_TXS, SubmitBatchRequest, SubmitBatchResponse};
use dex_types::{MarketId, Side, SignedTransaction, TimestampMs};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::{Cluster, OrderPlan};

/// Validators per chain: 3f + 1 with f = 1.
const VALIDATORS: usize = 4;
/// Funded traders.
const TRADERS: usize = 20;
/// Orders per trader: 20 × 12 = 240 admitted, under the API's default per-address burst
/// (400) and per-account burst (100), so no item is rate-limited.
const ORDERS_PER_TRADER: u64 = 12;

async fn post_batch(cluster: &Cluster, url: &str, items: Vec<String>) -> Vec<BatchItemView> {
    let count = items.len();
    let response = cluster
        .http()
        .post(format!("{url}/v1/txs/batch"))
        .json(&SubmitBatchRequest { txs: items })
        .send()
        .await
        .expect("the batch request is answered");
    assert_eq!(
        response.status().as_u16(),
        200,
        "a well-formed batch is taken"
    );
    let answer: SubmitBatchResponse = response.json().await.expect("a batch answer");
    assert_eq!(answer.results.len(), count, "one result per item");
    answer.results
}

fn code(item: &BatchItemView) -> &str {
    item.error
        .as_ref()
        .map_or("<admitted>", |e| e.code.as_str())
}

#[test]
fn n4_batches_through_one_node_are_admitted_item_by_item_and_commit_everywhere() {
    support::runtime().block_on(async {
        let all: Vec<usize> = (0..VALIDATORS).collect();
        let mut cluster = Cluster::start(VALIDATORS, TRADERS).await;
        cluster.wait_height(&all, 2, Duration::from_secs(60)).await;

        let markets = support::markets(&cluster).await;
        let chain_id = cluster.spec.genesis.chain_id;
        let expires_at = TimestampMs(support::now_ms() + 10 * 60 * 1_000);
        // Trader t trades market 1 or 2 by parity, buying or selling by the next bit.
        let per_trader: Vec<Vec<SignedTransaction>> = (1..=TRADERS)
            .map(|t| {
                let market = MarketId(1 + u32::try_from((t - 1) % 2).expect("small"));
                let side = if ((t - 1) / 2).is_multiple_of(2) {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let reference = dex_node::devnet::MARKETS
                    .iter()
                    .find(|(id, _, _)| *id == market)
                    .expect("a devnet market")
                    .2;
                OrderPlan {
                    key: &cluster.trader(t),
                    chain_id,
                    market: &markets[&market],
                    side,
                    reference,
                    count: ORDERS_PER_TRADER,
                    first_nonce: 1,
                    expires_at,
                }
                .sign()
            })
            .collect();
        // Interleave the traders, as a burst from many bots would arrive.
        let signed: Vec<SignedTransaction> = (0..ORDERS_PER_TRADER as usize)
            .flat_map(|k| per_trader.iter().map(move |txs| txs[k].clone()))
            .collect();
        let hashes: Vec<String> = signed.iter().map(|tx| tx.hash().to_hex()).collect();

        // The first batch carries bad items among good ones: a forged signature (refused
        // by the node's verify stage), bytes that do not decode, and a duplicate of an
        // item admitted earlier in the same batch (refused by the driver's mempool).
        let mut forged = signed[0].clone();
        forged.signature[9] ^= 1;
        let (head, rest) = signed.split_at(40);
        let mut first: Vec<String> = head.iter().map(|tx| hex::encode(tx.encode())).collect();
        first.insert(5, hex::encode(forged.encode()));
        first.insert(11, "00ff".to_owned());
        first.push(hex::encode(head[3].encode()));
        let results = post_batch(&cluster, &cluster.urls[0], first).await;
        for (i, item) in results.iter().enumerate() {
            let expected = match i {
                5 => "bad_signature",
                11 => "malformed_tx",
                42 => "already_pending",
                _ => "<admitted>",
            };
            assert_eq!(code(item), expected, "item {i}: {item:?}");
        }
        let admitted_hashes: Vec<&str> = results
            .iter()
            .filter(|r| r.error.is_none())
            .filter_map(|r| r.tx_hash.as_deref())
            .collect();
        assert_eq!(
            admitted_hashes,
            hashes[..40],
            "admitted items keep their order"
        );

        // The rest in full-size batches (the last one shorter).
        for chunk in rest.chunks(MAX_BATCH_TXS.min(100)) {
            let items = chunk.iter().map(|tx| hex::encode(tx.encode())).collect();
            let results = post_batch(&cluster, &cluster.urls[0], items).await;
            for (item, tx) in results.iter().zip(chunk) {
                assert_eq!(code(item), "<admitted>", "{item:?}");
                assert_eq!(item.tx_hash, Some(tx.hash().to_hex()));
            }
        }

        let deadline = Instant::now() + Duration::from_secs(60);
        for hash in &hashes {
            let status = support::wait_committed(cluster.http(), &cluster.urls[0], hash, deadline)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let outcome = status.outcome.expect("a committed outcome");
            assert!(outcome.ok, "{hash} was rejected: {:?}", outcome.code);
        }
        cluster.check_alive();
        let top = cluster.max_height(&[0]).await;
        cluster
            .wait_height(&all, top, Duration::from_secs(60))
            .await;
        let blocks = cluster.assert_same_blocks(&all, 1..=top).await;
        let committed: Vec<String> = blocks
            .iter()
            .flat_map(|b| b.txs.iter().map(|t| t.tx_hash.clone()))
            .collect();
        let committed_set: BTreeSet<String> = committed.iter().cloned().collect();
        assert_eq!(committed.len(), committed_set.len(), "each once");
        let submitted: BTreeSet<String> = hashes.iter().cloned().collect();
        assert_eq!(
            committed_set, submitted,
            "the chain holds exactly the admitted orders (the forged one never)"
        );
        // Every batch gave its room in the verify stage back once the driver took it.
        let metrics = cluster.metrics(0).await.expect("metrics");
        assert_eq!(metrics.get("dex_verify_queued_txs"), 0);
        assert!(metrics.get("dex_api_txs_admitted_total") >= hashes.len() as u64);
    });
}
