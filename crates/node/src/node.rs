//! Starting and stopping a node: open the database and recover, start the consensus
//! driver, the API publisher, the p2p swarm and the network task, and serve the API.

use crate::backend::NodeBackend;
use crate::config::NodeConfig;
use crate::driver::{self, Control, Driver, Shared};
use crate::error::NodeError;
use crate::gossip::{self, BatchLimits};
use crate::gossip_check::{BatchCheck, BatchCheckParts};
use crate::keys::ValidatorKey;
use crate::metrics::NodeMetrics;
use crate::network::{CONSENSUS_VERIFY_IN_FLIGHT_MAX, Network, TX_BATCH_VERIFY_IN_FLIGHT_MAX};
use crate::spec::ChainSpec;
use crate::timed_store::TimedStore;
use crate::verify::VerifyQueue;
use dex_api::wire::ValidatorView;
use dex_api::{ApiConfig, ChainInfo, FeedHub, HubConfig, ServerHandle};
use dex_chain::{MempoolLimits, Replica, ReplicaConfig};
use dex_p2p::{P2pConfig, P2pHandle, parse_addr};
use dex_storage::{ChainStore, ChainStoreConfig, RocksConfig, RocksStore};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Inputs waiting for the driver: consensus traffic and reads.
const CONTROL_CAPACITY: usize = 16_384;
/// Transactions waiting for the driver's admission check.
const SUBMISSION_CAPACITY: usize = 16_384;
/// Sends waiting for the network task.
const OUTGOING_CAPACITY: usize = 16_384;
/// Admitted client transactions waiting for the batching gossip task.
const GOSSIP_CAPACITY: usize = 16_384;
/// Transactions waiting for their signature check.
const VERIFY_QUEUE_CAPACITY: usize = 16_384;
/// Decompressed trader keys kept by the verifier.
const VERIFY_KEY_CACHE: usize = 100_000;
/// Committed blocks waiting for the API's read model.
const COMMITTED_CAPACITY: usize = 256;

/// A running node; see [`RunningNode::shutdown`].
#[derive(Debug)]
pub struct RunningNode {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// The p2p handle (peer id, listen addresses, metrics).
    pub p2p: P2pHandle,
    server: Option<ServerHandle>,
    control: crossbeam_channel::Sender<Control>,
    driver: Option<std::thread::JoinHandle<Result<(), dex_chain::ChainError>>>,
    driver_done: tokio::sync::watch::Receiver<bool>,
    shared: Arc<Shared>,
    hub: Arc<FeedHub>,
}

/// What the start-up found, for the operator's log.
#[derive(Clone, Debug)]
pub struct StartInfo {
    /// Committed height after recovery.
    pub height: u64,
    /// Blocks replayed from the newest snapshot.
    pub replayed_blocks: u64,
    /// Whether genesis was installed (empty database).
    pub installed_genesis: bool,
}

/// The replica configuration a node runs from its spec and config.
pub fn replica_config(spec: &ChainSpec, config: &NodeConfig) -> ReplicaConfig {
    let mut replica = ReplicaConfig::new(spec.consensus_config());
    replica.block_txs_max = spec.consensus.block_txs_max;
    replica.block_time_ahead_max_ms = spec.consensus.block_time_ahead_max_ms;
    // An idle chain makes about two blocks a second, comfortably inside the propose
    // timeout that the other validators wait for.
    replica.empty_block_wait_ms = (spec.consensus.propose_ms / 2).min(500);
    replica.mempool = MempoolLimits::with_capacity(config.mempool_capacity);
    replica.signature_cache_capacity =
        signature_cache_capacity(&replica.mempool, replica.signature_cache_capacity);
    replica
}

/// Signatures the replica remembers as verified: at least `default`, and twice what the
/// mempool can hold. Every pending transaction's signature must still be remembered when
/// the transaction comes back in a proposal, or the consensus thread checks it again, one
/// by one; twice, because the pool turns over while a block is in consensus.
fn signature_cache_capacity(mempool: &MempoolLimits, default: usize) -> usize {
    let pool = mempool.count_max.saturating_add(mempool.priority_count_max);
    default.max(pool.saturating_mul(2))
}

impl RunningNode {
    /// Start a node from its configuration, the API's limits from its settings. Must be
    /// called inside a tokio runtime.
    pub async fn start(config: NodeConfig) -> Result<(RunningNode, StartInfo), NodeError> {
        let api = config.api_config();
        RunningNode::start_with_api(config, api).await
    }

    /// [`RunningNode::start`] with the API's limits given, in place of the configuration's
    /// (tests and benchmarks loosen the per-client rate limits).
    pub async fn start_with_api(
        config: NodeConfig,
        api: ApiConfig,
    ) -> Result<(RunningNode, StartInfo), NodeError> {
        config.validate()?;
        let spec = ChainSpec::load(&config.chain_spec)?;
        let key = config
            .key_file
            .as_deref()
            .map(ValidatorKey::load)
            .transpose()?;
        if let Some(key) = &key
            && spec.validator_index(&key.public_key()).is_none()
        {
            return Err(NodeError::Config(format!(
                "the key {} is not a validator of this chain; remove key_file to run a full node",
                key.public_key()
            )));
        }
        let validators = spec
            .validator_set()
            .map_err(|e| NodeError::Config(format!("validators: {e}")))?;

        std::fs::create_dir_all(&config.data_dir).map_err(|e| NodeError::File {
            path: config.data_dir.clone(),
            detail: format!("cannot create the data directory: {e}"),
        })?;
        let shared = Arc::new(Shared::default());
        let rocks = RocksStore::open(&config.data_dir, &RocksConfig::default())?;
        let store = ChainStore::open(
            TimedStore::new(rocks, shared.metrics.synced_writes.clone()),
            ChainStoreConfig {
                snapshot_interval_blocks: config.snapshot_interval_blocks,
                ..ChainStoreConfig::default()
            },
        )?;
        let mut initial = Vec::new();
        let replica = Replica::open(
            store,
            &spec.genesis,
            validators.clone(),
            key.as_ref().map(|k| k.signing_key().clone()),
            replica_config(&spec, &config),
            driver::now_ms(),
            &mut initial,
        )?;
        let recovery = replica.recovery();
        let info = StartInfo {
            height: replica.head().height,
            replayed_blocks: recovery.replayed_blocks,
            installed_genesis: recovery.installed_genesis,
        };

        let views = spec
            .validators
            .iter()
            .map(|v| ValidatorView {
                public_key: v.public_key.to_hex(),
                voting_power: v.voting_power,
            })
            .collect();
        let chain = ChainInfo::from_genesis(&spec.genesis, views)
            .map_err(|e| NodeError::Config(format!("genesis: {e}")))?;
        let hub = Arc::new(FeedHub::new(chain, replica.ledger(), HubConfig::default()));

        shared
            .metrics
            .height
            .store(info.height, std::sync::atomic::Ordering::Relaxed);
        let (control_tx, control_rx) = crossbeam_channel::bounded(CONTROL_CAPACITY);
        let (submit_tx, submit_rx) = crossbeam_channel::bounded(SUBMISSION_CAPACITY);
        let (outgoing_tx, outgoing_rx) = tokio::sync::mpsc::channel(OUTGOING_CAPACITY);
        let (gossip_tx, gossip_rx) = tokio::sync::mpsc::channel(GOSSIP_CAPACITY);
        let (committed_tx, committed_rx) = crossbeam_channel::bounded(COMMITTED_CAPACITY);

        let publisher_hub = hub.clone();
        std::thread::Builder::new()
            .name("api-publisher".into())
            .spawn(move || driver::run_publisher(publisher_hub, committed_rx))
            .map_err(NodeError::Thread)?;

        let (done_tx, driver_done) = tokio::sync::watch::channel(false);
        let driver_shared = shared.clone();
        let driver = Driver {
            replica,
            control: control_rx,
            submissions: submit_rx,
            outgoing: outgoing_tx,
            gossip: gossip_tx,
            committed: committed_tx,
            shared: shared.clone(),
            timers: BTreeMap::new(),
            timer_sequence: 0,
            height_started: None,
            // Distinct across restarts too, so a re-send after a restart is not a
            // duplicate of one sent before it.
            resend_counter: driver::now_ms().0.saturating_mul(1_000),
        };
        let driver = std::thread::Builder::new()
            .name("consensus".into())
            .spawn(move || {
                let result = driver.run(initial);
                if let Err(error) = &result {
                    tracing::error!(%error, "the consensus driver stopped");
                    *driver_shared
                        .failure
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
                }
                let _ = done_tx.send(true);
                result
            })
            .map_err(NodeError::Thread)?;

        // The validator's key is its libp2p identity, so peers know which validator they
        // talk to; a full node gets a fresh identity each start.
        let identity = match &key {
            Some(key) => key.seed(),
            None => ValidatorKey::generate()?.seed(),
        };
        let mut p2p_config =
            P2pConfig::new(spec.network_id(), identity, parse_addr(&config.p2p_listen)?);
        let own = key.as_ref().map(ValidatorKey::public_key);
        p2p_config.bootstrap_peers = spec.validator_addresses(own.as_ref());
        for peer in &config.bootstrap_peers {
            p2p_config.bootstrap_peers.push(parse_addr(peer)?);
        }
        p2p_config.validator_peers = spec.validator_peers();
        p2p_config.gossip.heartbeat_interval = Duration::from_millis(250);
        p2p_config.redial_interval = Duration::from_secs(1);
        // Transactions travel in batches; the topic's limit is the largest batch.
        p2p_config.gossip.max_transaction_bytes = gossip::TX_BATCH_BYTES_MAX;
        let consensus_bytes_max = p2p_config.gossip.max_consensus_bytes;
        let sync_bytes_max = p2p_config.sync.max_response_bytes;
        let (p2p, events) = dex_p2p::spawn(p2p_config).await?;

        // One verification pool for the node, a thread per core unless the configuration
        // says otherwise (0 asks for one per core); the key cache holds the active
        // traders' decompressed keys.
        let verifier =
            dex_verify::TxVerifier::new(config.verify_threads.unwrap_or(0), VERIFY_KEY_CACHE);
        let verify_queue = VerifyQueue::start(verifier.clone(), VERIFY_QUEUE_CAPACITY);
        let network = Network {
            p2p: p2p.clone(),
            events,
            outgoing: outgoing_rx,
            control: control_tx.clone(),
            shared: shared.clone(),
            validators: Arc::new(validators),
            chain_id: dex_consensus::ChainId(spec.genesis.chain_id.0),
            validator_peers: spec.validator_peers(),
            consensus_bytes_max,
            sync_bytes_max,
            verify_slots: Arc::new(Semaphore::new(CONSENSUS_VERIFY_IN_FLIGHT_MAX)),
            verifier: verifier.clone(),
            batch_check: BatchCheck::start(
                BatchCheckParts {
                    p2p: p2p.clone(),
                    shared: shared.clone(),
                    submissions: submit_tx.clone(),
                    verifier: verifier.clone(),
                },
                TX_BATCH_VERIFY_IN_FLIGHT_MAX,
            ),
        };
        tokio::spawn(network.run());
        let gossip_p2p = p2p.clone();
        let gossip_shared = shared.clone();
        tokio::spawn(gossip::run_tx_gossip(
            gossip_rx,
            BatchLimits::default(),
            move |batch| {
                let p2p = gossip_p2p.clone();
                let shared = gossip_shared.clone();
                async move { publish_batch(&p2p, &shared.metrics, batch).await }
            },
        ));

        let backend = Arc::new(NodeBackend {
            hub: hub.clone(),
            control: control_tx.clone(),
            submissions: submit_tx,
            shared: shared.clone(),
            verify: verify_queue,
        });
        let server = dex_api::spawn_server(backend, api, config.api_listen)
            .await
            .map_err(|source| NodeError::ApiBind {
                addr: config.api_listen,
                source,
            })?;
        tracing::info!(
            name = %config.name,
            api = %server.addr,
            peer = %p2p.local_peer_id(),
            height = info.height,
            replayed = info.replayed_blocks,
            "node started"
        );
        Ok((
            RunningNode {
                api_addr: server.addr,
                p2p,
                server: Some(server),
                control: control_tx,
                driver: Some(driver),
                driver_done,
                shared,
                hub,
            },
            info,
        ))
    }

    /// The base URL of the API.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// Committed height.
    pub fn height(&self) -> u64 {
        self.shared
            .metrics
            .height
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The API's read model (every committed block since the start, as the API serves it).
    pub fn hub(&self) -> &FeedHub {
        &self.hub
    }

    /// Run `read` on the committed ledger (on the consensus thread, between two events).
    pub async fn with_ledger<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dex_state::Ledger) -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: crate::driver::ReadFn = Box::new(move |replica| {
            let _ = reply.send(read(replica.ledger()));
        });
        self.control
            .try_send(Control::Read(job))
            .map_err(|_| NodeError::Config("the node is stopping or saturated".into()))?;
        answer
            .await
            .map_err(|_| NodeError::Config("the node is stopping".into()))
    }

    /// Wait until the consensus driver stops on its own (an error); returns why.
    pub async fn stopped(&mut self) -> String {
        let _ = self.driver_done.wait_for(|done| *done).await;
        self.shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "the consensus driver stopped".to_owned())
    }

    /// Stop: the API first (no new transactions), then the network, then the driver,
    /// which closes the database after the last write.
    pub async fn shutdown(mut self) -> Result<(), NodeError> {
        if let Some(server) = self.server.take()
            && let Err(error) = server.shutdown().await
        {
            tracing::warn!(%error, "API shutdown");
        }
        let _ = self.p2p.shutdown().await;
        let _ = self.control.send(Control::Stop);
        if let Some(driver) = self.driver.take() {
            let result = tokio::task::spawn_blocking(move || driver.join())
                .await
                .map_err(|e| NodeError::Config(format!("driver join: {e}")))?;
            match result {
                Ok(result) => result?,
                Err(_) => return Err(NodeError::Config("the consensus driver panicked".into())),
            }
        }
        Ok(())
    }
}

/// Publish a transaction batch on its topic, counted.
async fn publish_batch(p2p: &P2pHandle, metrics: &NodeMetrics, batch: gossip::EncodedBatch) {
    let txs = u64::try_from(batch.txs).unwrap_or(u64::MAX);
    match p2p.publish(dex_p2p::Topic::Transactions, batch.bytes).await {
        Ok(_) => {
            metrics.gossip_batches_sent.fetch_add(1, Ordering::Relaxed);
            metrics.gossip_txs_sent.fetch_add(txs, Ordering::Relaxed);
        }
        // No peer yet, or the node is stopping: the transactions stay in this node's
        // mempool and reach the chain in its own proposals.
        Err(error) => tracing::debug!(%error, txs, "transaction batch not published"),
    }
}

impl Drop for RunningNode {
    /// A node dropped without [`RunningNode::shutdown`] still stops its consensus thread
    /// and closes its database before the process can exit: RocksDB's background threads
    /// must not outlive it (the process would abort in RocksDB's destructors).
    fn drop(&mut self) {
        let Some(driver) = self.driver.take() else {
            return;
        };
        let _ = self
            .control
            .send_timeout(Control::Stop, Duration::from_secs(5));
        // Bounded: a driver in the middle of a block write finishes within milliseconds.
        for _ in 0..2_000 {
            if driver.is_finished() {
                let _ = driver.join();
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::error!("the consensus thread did not stop within 10 s");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_cache_outgrows_a_large_mempool() {
        let small = MempoolLimits::with_capacity(1_000);
        assert_eq!(signature_cache_capacity(&small, 100_000), 100_000);
        let large = MempoolLimits::with_capacity(100_000);
        assert_eq!(
            signature_cache_capacity(&large, 100_000),
            2 * (large.count_max + large.priority_count_max)
        );
    }
}
