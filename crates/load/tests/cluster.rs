//! A short load against a one-validator cluster running in this process (real RocksDB,
//! API and block stream on 127.0.0.1): every transaction must end in a known state, and the
//! report's figures must add up.

use dex_load::cluster::{self, LayoutOptions};
use dex_load::stream::Mix;
use dex_load::{ChainSetup, RateMode, Report, RunOptions, Target};
use dex_node::{ConsensusParams, NodeConfig, RunningNode, devnet};
use std::time::Duration;

fn check_sums(report: &Report) {
    let a = &report.accounting;
    let refused: u64 = a.refused.values().sum();
    let rejected: u64 = a.committed_rejected.values().sum();
    assert!(report.all_known, "every transaction ends known: {a:?}");
    assert_eq!(
        a.sent,
        a.committed + refused,
        "sent = committed + refused: {a:?}"
    );
    assert_eq!(a.committed, a.committed_ok + rejected);
    assert!(report.duplicates.is_empty());
    let phase_sent: u64 = report.phases.iter().map(|p| p.accounting.sent).sum();
    assert_eq!(phase_sent, a.sent);
    for p in &report.phases {
        assert_eq!(
            p.latency.count, p.accounting.committed,
            "one latency per commit"
        );
        assert!(p.latency.p50_ms <= p.latency.p99_ms && p.latency.p99_ms <= p.latency.max_ms);
        let by_kind: u64 = p.accounting.committed_by_kind.values().sum();
        assert_eq!(by_kind, p.accounting.committed);
    }
    let text = report.render();
    assert!(text.contains("every order in a known state: yes"), "{text}");
    let json = serde_json::to_value(report).unwrap();
    assert_eq!(json["all_known"], serde_json::Value::Bool(true));
}

/// A one-validator chain in this process, what `dex-load` needs to load it, and the
/// options every run here shares.
async fn one_validator(dir: &std::path::Path) -> (RunningNode, Target, ChainSetup, RunOptions) {
    let (seed, traders) = (5, 40);
    let layout = cluster::layout(&LayoutOptions {
        dir: dir.to_owned(),
        validators: 1,
        traders,
        seed,
        chain_id: 3,
        mempool_capacity: 10_000,
        consensus: ConsensusParams::default(),
    })
    .unwrap();
    let config = NodeConfig::load(&devnet::node_config_path(dir, 0)).unwrap();
    let (node, _) = RunningNode::start(config).await.unwrap();
    dex_load::runner::wait_ready(&layout.api_urls, 1, Duration::from_secs(30))
        .await
        .unwrap();
    let chain = ChainSetup {
        chain_id: cluster::chain_id(&layout.spec),
        markets: cluster::market_plans(&layout.spec, &[]).unwrap(),
        keys: cluster::funded_traders(&layout.spec, seed, traders).unwrap(),
        block_txs_max: layout.spec.consensus.block_txs_max,
    };
    let target = Target {
        urls: layout.api_urls.clone(),
        // The node runs in this process: its CPU is ours.
        pids: vec![Some(std::process::id())],
    };
    let base = RunOptions {
        duration: Duration::from_secs(3),
        concurrency: 32,
        source_ips: 4,
        drain_timeout: Duration::from_secs(30),
        seed,
        mix: Mix::default(),
        progress: None,
        ..RunOptions::default()
    };
    (node, target, chain, base)
}

/// On one validator, with `batch` transactions per request: about 150/s for 3 s, then as
/// fast as possible until 1,500 signed transactions run out; every order must end known
/// in both (`check_sums`). Returns the fixed-rate report.
async fn fixed_then_max(batch: usize) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let (node, target, chain, base) = one_validator(dir.path()).await;
    let base = RunOptions { batch, ..base };
    let fixed = dex_load::run(
        &RunOptions {
            mode: RateMode::Fixed(150.0),
            ..base.clone()
        },
        &target,
        chain.clone(),
    )
    .await
    .unwrap();
    check_sums(&fixed);
    let phase = &fixed.phases[0];
    assert_eq!(phase.name, "fixed");
    assert!(phase.accounting.committed > 0);
    // Batching changes the requests, not the offer.
    assert!(
        phase.accounting.sent >= 300 && phase.accounting.sent <= 460,
        "about 150/s for 3 s: {}",
        phase.accounting.sent
    );

    let max = dex_load::run(
        &RunOptions {
            mode: RateMode::Max,
            max_signed: 1_500,
            ..base
        },
        &target,
        chain,
    )
    .await
    .unwrap();
    check_sums(&max);
    assert!(
        max.phases[0].exhausted,
        "1,500 transactions go out within 3 s"
    );
    assert_eq!(max.accounting.sent, 1_500);
    assert!(max.accounting.committed > 0);
    node.shutdown().await.unwrap();
    fixed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n1_fixed_rate_then_max_every_order_ends_known() {
    let fixed = fixed_then_max(1).await;
    let phase = &fixed.phases[0];
    assert!(phase.blocks.count > 0);
    assert_eq!(phase.cpu.validators.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n1_batches_of_16_at_a_fixed_rate_and_at_max_every_order_ends_known() {
    let fixed = fixed_then_max(16).await;
    assert_eq!(fixed.setup.batch, 16);
    assert!(fixed.render().contains("batch 16"));
}
