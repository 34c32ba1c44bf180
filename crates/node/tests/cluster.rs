//! Whole-node scenarios with real `dexd` validator processes on 127.0.0.1: real libp2p,
//! real RocksDB, real HTTP. Each test starts its own chain of four validators (f = 1) in
//! a temporary directory, SIGKILLs and restarts processes, and checks what the chain
//! promises: every committed transaction is in the same block on every validator, the
//! validators agree on every block hash and state root, the chain survives one crash and
//! stops (without forking) at two, and bad gossip is refused and penalised (a transaction
//! batch with one bad signature among good ones included) while good batches commit.
//!
//! The tests take turns (a shared lock): four validators already fill a two-core
//! machine, and two clusters at once would only make both slow.

mod support;

use dex_api::wire::{BlockView, TxState};
use dex_consensus::{Height, Message, Round, ValidatorIndex, Vote, VoteType};
use dex_node::gossip::{TX_BATCH_BYTES_MAX, encode_tx_batch};
use dex_p2p::{P2pConfig, P2pEvent, P2pHandle, Topic, Verdict};
use dex_types::{Block, MarketId, Side, SignedTransaction, TimestampMs};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use support::{Cluster, OrderPlan, POLL, polls};
use tokio::sync::Semaphore;

/// Validators per chain: 3f + 1 with f = 1.
const VALIDATORS: usize = 4;
/// Funded traders per chain.
const TRADERS: usize = 20;
/// Submissions open at once (each waits for its commit on the node).
const REQUESTS_IN_FLIGHT: usize = 256;

/// One cluster at a time (see the module docs).
fn one_cluster_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A test that failed while holding the lock has already killed its processes.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Transaction expiry: well after any test ends.
fn expiry() -> TimestampMs {
    TimestampMs(support::now_ms() + 10 * 60 * 1_000)
}

/// Trader `t` (1-based) trades market 1 or 2 by parity, and buys or sells by the next
/// bit: five buyers and five sellers per market among twenty traders.
fn role(t: usize) -> (MarketId, Side) {
    let market = MarketId(1 + u32::try_from((t - 1) % 2).expect("small"));
    let side = if ((t - 1) / 2).is_multiple_of(2) {
        Side::Buy
    } else {
        Side::Sell
    };
    (market, side)
}

/// Sign `per_trader` orders for each of `traders` (1-based ids), nonces from
/// `first_nonce`.
async fn sign_orders(
    cluster: &Cluster,
    traders: &[usize],
    per_trader: u64,
    first_nonce: u64,
) -> Vec<Vec<SignedTransaction>> {
    let markets = support::markets(cluster).await;
    let chain_id = cluster.spec.genesis.chain_id;
    let expires_at = expiry();
    traders
        .iter()
        .map(|&t| {
            let key = cluster.trader(t);
            let (market, side) = role(t);
            let reference = dex_node::devnet::MARKETS
                .iter()
                .find(|(id, _, _)| *id == market)
                .expect("a devnet market")
                .2;
            OrderPlan {
                key: &key,
                chain_id,
                market: &markets[&market],
                side,
                reference,
                count: per_trader,
                first_nonce,
                expires_at,
            }
            .sign()
        })
        .collect()
}

/// Submit every trader's transactions through the API at `url`, concurrently across
/// traders and, per trader, with at most [`dex_sdk::MAX_IN_FLIGHT`] (the ledger's nonce
/// window) submitted and not yet committed: inside a block transactions run in a
/// hash-derived order, so more in flight could let 64 higher nonces of a trader run
/// before a lower one, which the nonce window would then refuse as too old. That also
/// keeps each trader far below the mempool's 1,000 pending per signer.
///
/// Each trader sends from its own loopback address (127.0.0.2 and up), as separate
/// clients would, so the API's per-address rate limit paces them individually; a
/// rate-limited submission waits and retries. At most [`REQUESTS_IN_FLIGHT`] requests
/// are open at once over all traders. Returns each transaction's committed status, in
/// input order.
async fn submit_all(
    url: &str,
    per_trader: Vec<Vec<SignedTransaction>>,
    timeout: Duration,
) -> Vec<Vec<dex_api::wire::TxStatusView>> {
    let deadline = Instant::now() + timeout;
    let requests = Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT));
    let mut traders = Vec::new();
    for (index, txs) in per_trader.into_iter().enumerate() {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (index % 200) as u8));
        let http = support::http_client(Some(source));
        let url = url.to_owned();
        let requests = requests.clone();
        traders.push(tokio::spawn(async move {
            // Released in nonce order: transaction k is sent only after transaction
            // k - MAX_IN_FLIGHT ended, so every pending nonce has fewer than a window's
            // worth of higher nonces that could commit before it.
            let mut window: std::collections::VecDeque<tokio::sync::oneshot::Receiver<()>> =
                std::collections::VecDeque::new();
            let mut sent = Vec::with_capacity(txs.len());
            for tx in txs {
                if window.len() >= dex_sdk::MAX_IN_FLIGHT
                    && let Some(oldest) = window.pop_front()
                {
                    let _ = oldest.await;
                }
                let (done, ended) = tokio::sync::oneshot::channel();
                window.push_back(ended);
                let request = requests
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("open semaphore");
                let http = http.clone();
                let url = url.clone();
                sent.push(tokio::spawn(async move {
                    let status = support::submit_until_committed(&http, &url, &tx, deadline).await;
                    drop(request);
                    let _ = done.send(());
                    status
                }));
            }
            let mut statuses = Vec::with_capacity(sent.len());
            for task in sent {
                statuses.push(task.await.expect("a submission task")?);
            }
            Ok::<_, String>(statuses)
        }));
    }
    let mut all = Vec::new();
    for (index, trader) in traders.into_iter().enumerate() {
        match trader.await.expect("a trader task") {
            Ok(statuses) => all.push(statuses),
            Err(error) => panic!("trader {} failed: {error}", index + 1),
        }
    }
    all
}

/// Every transaction hash in `blocks`, with the height it is in; panics on a hash that
/// appears twice.
fn hashes_in(blocks: &[BlockView]) -> BTreeMap<String, u64> {
    let mut seen = BTreeMap::new();
    for block in blocks {
        for tx in &block.txs {
            if let Some(earlier) = seen.insert(tx.tx_hash.clone(), block.header.height) {
                panic!(
                    "transaction {} is in block {earlier} and again in block {}",
                    tx.tx_hash, block.header.height
                );
            }
        }
    }
    seen
}

#[test]
fn n4_five_thousand_orders_through_one_node_commit_identically_everywhere() {
    let _turn = one_cluster_at_a_time();
    support::runtime().block_on(async {
        let all: Vec<usize> = (0..VALIDATORS).collect();
        let mut cluster = Cluster::start(VALIDATORS, TRADERS).await;
        cluster.wait_height(&all, 2, Duration::from_secs(60)).await;

        let traders: Vec<usize> = (1..=TRADERS).collect();
        let per_trader = 250;
        let signed = sign_orders(&cluster, &traders, per_trader, 1).await;
        let submitted: BTreeSet<String> = signed
            .iter()
            .flatten()
            .map(|tx| tx.hash().to_hex())
            .collect();
        assert_eq!(submitted.len(), 5_000, "5,000 distinct signed orders");

        let statuses = submit_all(&cluster.urls[0], signed, Duration::from_secs(90)).await;
        cluster.check_alive();
        let mut placed = 0usize;
        let mut filled = 0usize;
        for (t, trader) in statuses.iter().enumerate() {
            for status in trader {
                assert_eq!(status.state, TxState::Committed);
                let outcome = status.outcome.as_ref().expect("a committed outcome");
                assert!(
                    outcome.ok,
                    "trader {}'s order {} was rejected in block {}: {:?} {:?}",
                    t + 1,
                    status.tx_hash,
                    outcome.height,
                    outcome.code,
                    outcome.message
                );
                // Its own order, as it stood after the block (the makers it traded
                // with may be listed too).
                let own: Vec<_> = outcome
                    .orders
                    .iter()
                    .filter(|o| o.tx_hash == status.tx_hash)
                    .collect();
                assert_eq!(own.len(), 1, "order {} placed once", status.tx_hash);
                placed += 1;
                filled += own.iter().filter(|o| !o.filled.is_zero()).count();
            }
        }
        assert_eq!(placed, 5_000, "every order was placed");

        // Every validator has every block up to the submission node's height, and they
        // are the same blocks with the same state roots.
        let top = cluster.max_height(&[0]).await;
        cluster.wait_height(&all, top, Duration::from_secs(60)).await;
        let blocks = cluster.assert_same_blocks(&all, 1..=top).await;
        let committed = hashes_in(&blocks);
        let committed_set: BTreeSet<String> = committed.keys().cloned().collect();
        assert_eq!(
            committed_set, submitted,
            "the chain holds exactly the submitted orders, each once"
        );
        for trader in &statuses {
            for status in trader {
                let outcome = status.outcome.as_ref().expect("an outcome");
                assert_eq!(committed.get(&status.tx_hash), Some(&outcome.height));
            }
        }
        let fills: u64 = blocks.iter().map(|b| u64::from(b.committed_items)).sum();
        assert!(
            filled > 0 && fills > 0,
            "crossing orders traded ({filled} incoming orders filled, {fills} fills)"
        );
        for i in &all {
            let metrics = cluster.metrics(*i).await.expect("metrics");
            assert!(
                metrics.get("dex_txs_committed_total") >= 5_000,
                "v{i} counted the committed transactions"
            );
        }
        // Relaying each other's gossip under load got no honest validator penalised into
        // a ban: each is still connected to the three others.
        cluster
            .wait_connected(&all, VALIDATORS as u64 - 1, Duration::from_secs(10))
            .await;
        eprintln!(
            "5,000 orders in {} blocks (height {top}), {fills} fills, identical on {VALIDATORS} validators",
            blocks.iter().filter(|b| !b.txs.is_empty()).count()
        );
    });
}

#[test]
fn n4_f1_crashed_validator_catches_up_by_block_sync() {
    let _turn = one_cluster_at_a_time();
    support::runtime().block_on(async {
        let all: Vec<usize> = (0..VALIDATORS).collect();
        let live = [0, 1, 2];
        let mut cluster = Cluster::start(VALIDATORS, TRADERS).await;
        cluster.wait_height(&all, 2, Duration::from_secs(60)).await;

        cluster.kill(3);
        let at_kill = cluster.max_height(&live).await;
        // The other three (2f + 1) keep committing, with transactions too, so the
        // crashed validator misses state changes, not only empty blocks.
        cluster
            .wait_height(&live, at_kill + 3, Duration::from_secs(60))
            .await;
        let signed = sign_orders(&cluster, &[1, 3], 20, 1).await;
        let statuses = submit_all(&cluster.urls[0], signed, Duration::from_secs(60)).await;
        for status in statuses.iter().flatten() {
            assert!(status.outcome.as_ref().is_some_and(|o| o.ok));
        }
        cluster
            .wait_height(&live, at_kill + 6, Duration::from_secs(60))
            .await;

        let before_restart = cluster.min_height(&live).await;
        cluster.spawn(3);
        cluster.wait_ready(3).await;
        let recovered = cluster
            .started_at_height(3)
            .expect("v3 logged the height it started at");
        assert!(
            recovered < before_restart,
            "v3 recovered at {recovered}, the others were at {before_restart}"
        );
        let target = cluster.max_height(&live).await + 2;
        cluster.wait_height(&all, target, Duration::from_secs(90)).await;

        // v3 serves the blocks it committed since its restart (its API keeps no history
        // from before), the ones it fetched by sync among them.
        let common = cluster.min_height(&all).await;
        let blocks = cluster
            .assert_same_blocks(&all, recovered + 1..=common)
            .await;
        let orders_while_down: usize = blocks.iter().map(|b| b.txs.len()).sum();
        assert_eq!(
            orders_while_down, 40,
            "the blocks v3 caught up on hold the 40 orders sent while it was down"
        );
        let synced = cluster
            .metrics(3)
            .await
            .expect("v3's metrics")
            .get("dex_synced_blocks_total");
        assert!(
            synced >= before_restart - recovered,
            "v3 fetched the {} blocks it missed by block sync (synced {synced})",
            before_restart - recovered
        );
        eprintln!(
            "v3 down from {recovered}, back at {before_restart}, synced {synced} blocks, agrees up to {common}"
        );
    });
}

#[test]
fn n4_two_crashed_stops_commits_without_fork_and_resumes_with_three() {
    let _turn = one_cluster_at_a_time();
    support::runtime().block_on(async {
        let all: Vec<usize> = (0..VALIDATORS).collect();
        let survivors = [0, 1];
        let mut cluster = Cluster::start(VALIDATORS, TRADERS).await;
        cluster.wait_height(&all, 3, Duration::from_secs(60)).await;

        cluster.kill(2);
        cluster.kill(3);
        // A height whose precommits were in flight may still commit on one survivor
        // (and reach the other by sync); wait until both agree and stay there.
        let settle = Duration::from_secs(30);
        let deadline = Instant::now() + settle;
        let mut stuck = None;
        let mut previous = (u64::MAX, u64::MAX);
        for _ in 0..polls(settle) {
            let heights = (
                cluster.height(0).await.expect("v0 answers"),
                cluster.height(1).await.expect("v1 answers"),
            );
            if heights.0 == heights.1 && heights == previous {
                stuck = Some(heights.0);
                break;
            }
            previous = heights;
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1_500)).await;
        }
        let stuck = stuck.unwrap_or_else(|| {
            panic!("the two survivors did not settle at one height (last {previous:?})")
        });

        // No commit while only two of four validators run: watched for four seconds,
        // several round timeouts.
        let watch = Duration::from_secs(4);
        let until = Instant::now() + watch;
        for _ in 0..polls(watch) {
            cluster.check_alive();
            for i in survivors {
                let height = cluster.height(i).await.expect("a survivor answers");
                assert_eq!(height, stuck, "v{i} committed without a quorum");
            }
            if Instant::now() >= until {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        // No fork: both survivors hold the same chain.
        cluster.assert_same_blocks(&survivors, 1..=stuck).await;

        cluster.spawn(2);
        cluster.wait_ready(2).await;
        let restarted_at = cluster
            .started_at_height(2)
            .expect("v2 logged the height it started at");
        let three = [0, 1, 2];
        cluster
            .wait_height(&three, stuck + 3, Duration::from_secs(90))
            .await;
        let common = cluster.min_height(&three).await;
        cluster.assert_same_blocks(&survivors, 1..=common).await;
        // v2 serves the blocks it committed since its restart.
        cluster
            .assert_same_blocks(&three, restarted_at.max(stuck) + 1..=common)
            .await;
        eprintln!("stuck at {stuck} with two validators, resumed to {common} with three");
    });
}

/// A gossip peer run by the test: a libp2p node of the chain's network that is not a
/// validator. Its inbound gossip is drained (and never forwarded).
struct TestPeer {
    handle: P2pHandle,
    drain: tokio::task::JoinHandle<()>,
}

impl TestPeer {
    async fn start(cluster: &Cluster, seed: u8, oversize_limits: bool) -> TestPeer {
        let mut config = P2pConfig::new(
            cluster.spec.network_id(),
            [seed; 32],
            dex_p2p::parse_addr("127.0.0.1:0").expect("an address"),
        );
        config.bootstrap_peers = cluster.spec.validator_addresses(None);
        config.validator_peers = cluster.spec.validator_peers();
        config.gossip.heartbeat_interval = Duration::from_millis(250);
        config.redial_interval = Duration::from_millis(500);
        // The validators' limit: transactions travel in batches.
        config.gossip.max_transaction_bytes = TX_BATCH_BYTES_MAX;
        if oversize_limits {
            // Its own limits let it publish what the validators' limits refuse.
            config.gossip.max_transaction_bytes *= 2;
            config.gossip.max_consensus_bytes *= 2;
        }
        let (handle, mut events) = dex_p2p::spawn(config).await.expect("a test peer");
        let validation = handle.clone();
        let drain = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let P2pEvent::Gossip(message) = event {
                    let _ = validation
                        .report_validation(message.ticket(), Verdict::Ignore)
                        .await;
                }
            }
        });
        TestPeer { handle, drain }
    }

    /// Validators connected to this peer and subscribed to both topics.
    async fn validators_connected(&self) -> usize {
        self.handle.peers().await.map_or(0, |peers| {
            peers
                .iter()
                .filter(|p| p.is_validator && Topic::ALL.iter().all(|t| p.topics.contains(t)))
                .count()
        })
    }

    async fn wait_connected(&self, name: &str) {
        let timeout = Duration::from_secs(30);
        let deadline = Instant::now() + timeout;
        for _ in 0..polls(timeout) {
            if self.validators_connected().await == VALIDATORS {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("the test peer {name} did not connect to every validator in {timeout:?}");
    }

    async fn publish(&self, topic: Topic, data: Vec<u8>) {
        self.handle
            .publish(topic, data)
            .await
            .unwrap_or_else(|e| panic!("publishing on {topic}: {e}"));
    }

    async fn stop(self) {
        let _ = self.handle.shutdown().await;
        self.drain.abort();
    }
}

/// Bytes no decoder accepts as a transaction or a consensus message (a borsh enum tag far
/// out of range first), of a plausible size.
fn garbage(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| 0xff ^ salt ^ u8::try_from(i % 251).expect("small"))
        .collect()
}

#[test]
fn n4_bad_gossip_is_refused_and_penalised_while_the_chain_commits() {
    let _turn = one_cluster_at_a_time();
    support::runtime().block_on(async {
        let all: Vec<usize> = (0..VALIDATORS).collect();
        let mut cluster = Cluster::start(VALIDATORS, TRADERS).await;
        cluster.wait_height(&all, 2, Duration::from_secs(60)).await;

        // Some honest orders first: one of them is replayed below.
        let signed = sign_orders(&cluster, &[1], 5, 1).await;
        let statuses = submit_all(&cluster.urls[0], signed.clone(), Duration::from_secs(60)).await;
        let original = signed[0][0].clone();
        let original_height = statuses[0][0].outcome.as_ref().expect("committed").height;

        // An honest peer (the control: it must stay connected), a peer sending garbage,
        // one forging signatures, one sending oversized messages, one replaying.
        let honest = TestPeer::start(&cluster, 0xa0, false).await;
        let garbler = TestPeer::start(&cluster, 0xa1, false).await;
        let forger = TestPeer::start(&cluster, 0xa2, false).await;
        let bloater = TestPeer::start(&cluster, 0xa3, true).await;
        let replayer = TestPeer::start(&cluster, 0xa4, false).await;
        for (name, peer) in [
            ("honest", &honest),
            ("garbler", &garbler),
            ("forger", &forger),
            ("bloater", &bloater),
            ("replayer", &replayer),
        ] {
            peer.wait_connected(name).await;
        }
        let mut before = Vec::new();
        for i in &all {
            before.push(cluster.metrics(*i).await.expect("metrics"));
        }
        let height = cluster.max_height(&all).await;
        let chain_id = dex_consensus::ChainId(cluster.spec.genesis.chain_id.0);

        // Malformed: bytes that decode as nothing, on both topics.
        garbler.publish(Topic::Transactions, garbage(200, 1)).await;
        garbler.publish(Topic::Consensus, garbage(300, 2)).await;

        // Badly signed: a batch of two good orders and one with a signature bit flipped,
        // and a vote for a coming height claiming to be validator 0's, signed by another
        // key (three heights ahead, so it is not yet stale when it arrives). The whole
        // batch is refused: its good orders are not admitted from it.
        let mut trader_2 = sign_orders(&cluster, &[2], 7, 1).await.remove(0);
        let mut forged = trader_2.pop().expect("seven orders");
        forged.signature[10] ^= 0x01;
        let good_batch = trader_2;
        forger
            .publish(
                Topic::Transactions,
                encode_tx_batch(&[good_batch[0].clone(), good_batch[1].clone(), forged.clone()]),
            )
            .await;
        let outsider = ed25519_dalek::SigningKey::from_bytes(&[0x5a; 32]);
        let vote = Vote {
            chain_id,
            height: Height(height + 3),
            round: Round(0),
            vote_type: VoteType::Prevote,
            value_id: None,
            validator: ValidatorIndex(0),
        }
        .sign(&outsider);
        forger
            .publish(
                Topic::Consensus,
                dex_node::consensus_payload(&Message::<Block>::Vote(vote).encode(), 1),
            )
            .await;

        // Oversized: one byte over each topic's limit on the validators.
        let defaults = dex_p2p::GossipConfig::default();
        bloater
            .publish(Topic::Transactions, garbage(TX_BATCH_BYTES_MAX + 1, 3))
            .await;
        bloater
            .publish(
                Topic::Consensus,
                garbage(defaults.max_consensus_bytes + 1, 4),
            )
            .await;

        // Replayed: the committed order's exact bytes (a gossip duplicate), another order
        // under the committed order's nonce, and a vote for a long-decided height.
        replayer
            .publish(
                Topic::Transactions,
                encode_tx_batch(std::slice::from_ref(&original)),
            )
            .await;
        let mut same_nonce = sign_orders(&cluster, &[1], 2, 1).await.remove(0).remove(1);
        same_nonce.tx.nonce = original.tx.nonce;
        let same_nonce = cluster.trader(1).sign(same_nonce.tx).expect("signing");
        assert_ne!(same_nonce.hash(), original.hash());
        replayer
            .publish(
                Topic::Transactions,
                encode_tx_batch(std::slice::from_ref(&same_nonce)),
            )
            .await;
        let old_vote = Vote {
            chain_id,
            height: Height(1),
            round: Round(0),
            vote_type: VoteType::Precommit,
            value_id: None,
            validator: ValidatorIndex(1),
        }
        .sign(&outsider);
        replayer
            .publish(
                Topic::Consensus,
                dex_node::consensus_payload(&Message::<Block>::Vote(old_vote).encode(), 1),
            )
            .await;

        // Every validator counts every refusal that reaches its host.
        let expected = [
            ("undecodable", 2),
            ("bad_signature", 2),
            ("stale", 1),
            ("mempool_refused", 1),
        ];
        let timeout = Duration::from_secs(30);
        let deadline = Instant::now() + timeout;
        let mut missing = Vec::new();
        for _ in 0..polls(timeout) {
            cluster.check_alive();
            missing.clear();
            for i in &all {
                let now = cluster.metrics(*i).await.expect("metrics");
                for (reason, count) in expected {
                    let seen = now.rejected(reason) - before[*i].rejected(reason);
                    if seen < count {
                        missing.push(format!("v{i} {reason}: {seen} of {count}"));
                    }
                }
            }
            if missing.is_empty() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        assert!(
            missing.is_empty(),
            "refusals not counted in /metrics: {missing:?}"
        );

        // A good batch from the honest peer: every order in it commits, the two that
        // were in the refused batch among them.
        honest
            .publish(Topic::Transactions, encode_tx_batch(&good_batch))
            .await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut good_heights = Vec::new();
        for tx in &good_batch {
            let status = support::wait_committed(
                cluster.http(),
                &cluster.urls[3],
                &tx.hash().to_hex(),
                deadline,
            )
            .await
            .unwrap_or_else(|e| panic!("an order of the good batch: {e}"));
            let outcome = status.outcome.expect("a committed outcome");
            assert!(
                outcome.ok,
                "an order of the good batch was rejected: {outcome:?}"
            );
            good_heights.push(outcome.height);
        }
        for i in &all {
            let now = cluster.metrics(*i).await.expect("metrics");
            let batches = now.get("dex_gossip_tx_batches_received_total")
                - before[*i].get("dex_gossip_tx_batches_received_total");
            // The replayer's and the honest peer's batches (a duplicate may be dropped by
            // gossipsub before it reaches the host; the honest batch never is).
            assert!(batches >= 1, "v{i} accepted no transaction batch");
        }

        // The peers whose messages were invalid are banned by every validator (their
        // redials refused); the honest peer and the replayer, whose messages were only
        // useless, stay connected.
        let timeout = Duration::from_secs(20);
        let deadline = Instant::now() + timeout;
        let mut connected = Vec::new();
        let mut banned_polls = 0;
        for _ in 0..polls(timeout) {
            connected = vec![
                honest.validators_connected().await,
                garbler.validators_connected().await,
                forger.validators_connected().await,
                bloater.validators_connected().await,
                replayer.validators_connected().await,
            ];
            if connected == [VALIDATORS, 0, 0, 0, VALIDATORS] {
                // Held over several redial intervals, not one lucky moment.
                banned_polls += 1;
                if banned_polls >= 20 {
                    break;
                }
            } else {
                banned_polls = 0;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        assert!(
            banned_polls >= 20,
            "validators connected to [honest, garbler, forger, bloater, replayer]: {connected:?}"
        );

        // The chain went on, identical everywhere, and the replays changed nothing: the
        // original order is in its block once, the second order under its nonce nowhere.
        let last_good = good_heights.iter().copied().max().expect("six orders");
        cluster
            .wait_height(&all, (height + 5).max(last_good), Duration::from_secs(60))
            .await;
        let top = cluster.min_height(&all).await;
        let blocks = cluster.assert_same_blocks(&all, 1..=top).await;
        let committed = hashes_in(&blocks);
        assert_eq!(
            committed.get(&original.hash().to_hex()),
            Some(&original_height)
        );
        assert!(!committed.contains_key(&same_nonce.hash().to_hex()));
        assert!(!committed.contains_key(&forged.hash().to_hex()));
        for (tx, height) in good_batch.iter().zip(&good_heights) {
            assert_eq!(committed.get(&tx.hash().to_hex()), Some(height));
        }
        let status = support::tx_status(
            cluster.http(),
            &cluster.urls[0],
            &same_nonce.hash().to_hex(),
        )
        .await
        .expect("a status");
        assert_eq!(status.state, TxState::Unknown);

        for peer in [honest, garbler, forger, bloater, replayer] {
            peer.stop().await;
        }
    });
}
