//! The consensus driver: one thread that owns the [`Replica`] (consensus core, committed
//! ledger, mempool, RocksDB store) and feeds it inputs, carrying out its actions.
//!
//! Why a thread and not a task: every replica call may execute a block or write to
//! RocksDB with sync on, which blocks for milliseconds; on a thread of its own that never
//! stalls the runtime that serves the network and the API. Inputs arrive on two bounded
//! channels, so consensus traffic is never queued behind a flood of transactions: the
//! control channel (consensus messages, decided blocks, reads) is drained first, then at
//! most a batch of transactions, then due timers. Outputs leave on bounded channels too
//! (network sends, committed blocks for the API), so a slow consumer slows the driver
//! instead of growing memory.

use crate::dropped::DroppedLog;
use crate::metrics::NodeMetrics;
use crate::timed_store::TimedStore;
use dex_api::{CommittedBlock, FeedHub};
use dex_chain::{Action, Event, MempoolError, Replica, Timer};
use dex_consensus::{CommitCertificate, ValidatorIndex, VerifiedMessage};
use dex_p2p::Topic;
use dex_types::{Block, Hash, SignedTransaction, TimestampMs};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// A read of the replica's state, run on the driver thread between two events.
pub(crate) type ReadFn = Box<dyn FnOnce(&Replica<TimedStore>) + Send>;

/// Consensus traffic and reads (drained before transactions).
// A decided block from sync is the large variant; it is rare, and boxing it would only move
// the allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Control {
    /// A consensus message whose signatures the network side checked.
    Message(Box<VerifiedMessage<Block>>),
    /// A decided block from block sync.
    Decided {
        from: Option<ValidatorIndex>,
        block: Block,
        certificate: CommitCertificate,
    },
    /// Transactions whose signatures the network side checked (the body of a proposal).
    Verified(Vec<SignedTransaction>),
    /// A read of the state.
    Read(ReadFn),
    /// Stop after the inputs before this one.
    Stop,
}

/// Transactions offered to the mempool, their signatures already checked.
// Most submissions are client transactions, carried inline as they were before batches:
// boxing them would add an allocation per submission to save channel slots of a few
// hundred bytes.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Submission {
    /// A transaction from this node's API: admitted or refused, the answer sent to the
    /// waiting client, and if admitted gossiped (in a batch) to the other validators.
    Client {
        tx: SignedTransaction,
        reply: oneshot::Sender<Result<Hash, MempoolError>>,
    },
    /// A client batch from this node's API (`POST /v1/txs/batch`): each transaction
    /// admitted or refused as [`Submission::Client`] is, the answers sent together in the
    /// batch's order on one channel. `room` is the batch's reservation in the verify
    /// stage's budget, given back once the driver has taken the batch: one channel entry
    /// carries up to a whole batch, so the channel's entry bound alone would not bound
    /// memory.
    ClientBatch {
        txs: Vec<SignedTransaction>,
        reply: oneshot::Sender<Vec<Result<Hash, MempoolError>>>,
        room: crate::verify::QueueRoom,
    },
    /// The transactions of one gossip batch from a peer. The p2p layer relays the batch
    /// itself, so they are not gossiped again; [`Shared::gossip_queued_txs`] counts them
    /// while they wait in the channel.
    Gossip(Vec<SignedTransaction>),
}

impl Submission {
    /// Transactions it carries: the measure of the driver's per-turn budget.
    fn txs(&self) -> usize {
        match self {
            Submission::Client { .. } => 1,
            Submission::ClientBatch { txs, .. } => txs.len(),
            Submission::Gossip(txs) => txs.len(),
        }
    }
}

/// What the driver asks the network task to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Publish on a gossip topic.
    Publish { topic: Topic, data: Vec<u8> },
    /// Ask a validator for decided blocks from `height` on.
    RequestSync { to: ValidatorIndex, height: u64 },
}

/// State the driver shares with the API and the network task.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub metrics: NodeMetrics,
    /// Ids of the pending transactions (for the API's "pending" status). Lookup only.
    pub pending: RwLock<HashSet<Hash>>,
    /// Admitted transactions a commit made impossible, with the reason (for the API's
    /// "dropped" status).
    pub dropped: Mutex<DroppedLog>,
    /// Why the driver stopped, if it stopped on an error.
    pub failure: Mutex<Option<String>>,
    /// Gossiped transactions waiting in the submission channel. One channel entry may
    /// carry a whole batch, so the channel's entry bound alone would not bound memory; the
    /// network side reserves room here before it sends (see [`GOSSIP_QUEUED_TXS_MAX`]).
    pub gossip_queued_txs: AtomicUsize,
}

/// Most gossiped transactions waiting for the driver; a batch that would go above is
/// dropped and counted as overload.
pub(crate) const GOSSIP_QUEUED_TXS_MAX: usize = 16_384;

impl Shared {
    /// Reserve room for `count` gossiped transactions in the submission channel; `false`
    /// (nothing reserved) when they would exceed [`GOSSIP_QUEUED_TXS_MAX`].
    pub fn reserve_gossip(&self, count: usize) -> bool {
        self.gossip_queued_txs
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                queued
                    .checked_add(count)
                    .filter(|total| *total <= GOSSIP_QUEUED_TXS_MAX)
            })
            .is_ok()
    }

    /// Give back the room of `count` gossiped transactions (the driver took them, or the
    /// send failed).
    pub fn release_gossip(&self, count: usize) {
        let before = self.gossip_queued_txs.fetch_sub(count, Ordering::AcqRel);
        assert!(
            before >= count,
            "bug: more gossiped transactions released than reserved"
        );
    }
}

/// Transactions taken from their channel per loop turn (a gossip batch counts as many as it
/// carries; the turn ends after the submission that reaches it), so that consensus traffic
/// waiting behind them is served within one batch's time.
const TX_BATCH: usize = 256;
/// Consensus inputs taken per loop turn before transactions get their turn.
const CONTROL_BATCH: usize = 1_024;

pub(crate) struct Driver {
    pub replica: Replica<TimedStore>,
    pub control: crossbeam_channel::Receiver<Control>,
    pub submissions: crossbeam_channel::Receiver<Submission>,
    pub outgoing: mpsc::Sender<Outgoing>,
    /// Admitted client transactions for the batching gossip task (never waited on: when
    /// it is full a transaction is not gossiped, and counted).
    pub gossip: mpsc::Sender<SignedTransaction>,
    pub committed: crossbeam_channel::Sender<CommittedBlock>,
    pub shared: Arc<Shared>,
    pub timers: BTreeMap<(Instant, u64), Timer>,
    pub timer_sequence: u64,
    /// When the current height's first round began (for the commit latency).
    pub height_started: Option<(u64, Instant)>,
    /// Counter of consensus sends ([`crate::consensus_payload`]).
    pub resend_counter: u64,
}

/// The host's clock in ms since the Unix epoch.
pub(crate) fn now_ms() -> TimestampMs {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    TimestampMs(ms)
}

impl Driver {
    /// Run until both input channels close. Returns the replica's error if it stopped on
    /// one.
    pub fn run(mut self, initial: Vec<Action>) -> Result<(), dex_chain::ChainError> {
        self.carry_out(initial, false);
        self.publish_gauges();
        loop {
            let mut worked = false;
            for _ in 0..CONTROL_BATCH {
                match self.control.try_recv() {
                    Ok(input) => {
                        worked = true;
                        if !self.on_control(input)? {
                            return Ok(());
                        }
                    }
                    Err(_) => break,
                }
            }
            let mut budget = TX_BATCH;
            while budget > 0 {
                match self.submissions.try_recv() {
                    Ok(submission) => {
                        worked = true;
                        budget = budget.saturating_sub(submission.txs());
                        self.on_submission(submission)?;
                    }
                    Err(_) => break,
                }
            }
            worked |= self.fire_due_timers()?;
            if worked {
                self.publish_gauges();
                continue;
            }
            // Idle: sleep until an input arrives or the next timer is due.
            let wait = self
                .timers
                .first_key_value()
                .map(|((at, _), _)| at.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(1));
            crossbeam_channel::select! {
                recv(self.control) -> input => match input {
                    Ok(input) => {
                        if !self.on_control(input)? {
                            return Ok(());
                        }
                    }
                    Err(_) => return Ok(()),
                },
                recv(self.submissions) -> submission => match submission {
                    Ok(submission) => self.on_submission(submission)?,
                    Err(_) => return Ok(()),
                },
                default(wait) => {}
            }
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), dex_chain::ChainError> {
        let kind = event_kind(&event);
        let started = Instant::now();
        let cpu_started = thread_cpu_time();
        let mut out = Vec::new();
        let result = self.replica.handle(now_ms(), event, &mut out);
        let replica_took = started.elapsed();
        // Actions produced before a failure are safe to carry out (see `Replica::handle`).
        self.carry_out(out, false);
        let took = started.elapsed();
        if took >= SLOW_STEP {
            // Everything behind this step waited: name the step so a latency spike in a
            // load run can be traced to it.
            // CPU time well below the wall time means the thread waited: for the disk (see
            // "slow synced write") or for a core.
            let cpu_ms = cpu_started
                .zip(thread_cpu_time())
                .map(|(before, after)| after.saturating_sub(before).as_millis() as u64);
            tracing::warn!(
                kind,
                replica_ms = replica_took.as_millis() as u64,
                total_ms = took.as_millis() as u64,
                cpu_ms,
                "slow consensus step"
            );
        }
        result
    }

    /// Handle one control input; `Ok(false)` means stop.
    fn on_control(&mut self, input: Control) -> Result<bool, dex_chain::ChainError> {
        match input {
            Control::Stop => return Ok(false),
            Control::Message(message) => self.handle(Event::VerifiedMessage(message))?,
            Control::Decided {
                from,
                block,
                certificate,
            } => {
                let before = self.replica.head().height;
                self.handle(Event::Decided {
                    from,
                    block,
                    certificate,
                })?;
                let applied = self.replica.head().height.saturating_sub(before);
                self.shared
                    .metrics
                    .synced_blocks
                    .fetch_add(applied, Ordering::Relaxed);
            }
            Control::Verified(txs) => {
                for tx in &txs {
                    self.replica.record_verified(tx);
                }
            }
            Control::Read(read) => read(&self.replica),
        }
        Ok(true)
    }

    fn on_submission(&mut self, submission: Submission) -> Result<(), dex_chain::ChainError> {
        match submission {
            Submission::Client { tx, reply } => {
                let admitted = self.admit(tx, false)?;
                if let Ok(id) = &admitted {
                    self.shared
                        .pending
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(*id);
                }
                // The client may have gone; the transaction stays admitted either way.
                let _ = reply.send(admitted);
            }
            Submission::ClientBatch { txs, reply, room } => {
                // Taken: the batch no longer waits in the channel.
                drop(room);
                let mut answers = Vec::with_capacity(txs.len());
                let mut admitted = Vec::with_capacity(txs.len());
                for tx in txs {
                    // Admitted ones go to the batching gossip task, as single ones do.
                    let answer = self.admit(tx, false)?;
                    if let Ok(id) = &answer {
                        admitted.push(*id);
                    }
                    answers.push(answer);
                }
                // One write lock for the whole batch, before the client hears of it, so
                // a status query right after the answer sees its transactions pending.
                self.shared
                    .pending
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(admitted);
                let _ = reply.send(answers);
            }
            Submission::Gossip(txs) => {
                self.shared.release_gossip(txs.len());
                let mut admitted = Vec::with_capacity(txs.len());
                for tx in txs {
                    if let Ok(id) = self.admit(tx, true)? {
                        admitted.push(id);
                    }
                }
                // One write lock for the whole batch.
                self.shared
                    .pending
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(admitted);
            }
        }
        Ok(())
    }

    /// Offer one verified transaction to the mempool and carry out what follows; a refusal
    /// is counted.
    fn admit(
        &mut self,
        tx: SignedTransaction,
        from_gossip: bool,
    ) -> Result<Result<Hash, MempoolError>, dex_chain::ChainError> {
        self.replica.record_verified(&tx);
        let mut out = Vec::new();
        let result = self.replica.submit(now_ms(), tx, &mut out);
        self.carry_out(out, from_gossip);
        let admitted = result?;
        if admitted.is_err() {
            self.shared
                .metrics
                .reject(crate::metrics::RejectReason::MempoolRefused);
        }
        Ok(admitted)
    }

    fn fire_due_timers(&mut self) -> Result<bool, dex_chain::ChainError> {
        let mut fired = false;
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            fired = true;
            self.handle(Event::Timer(timer))?;
        }
        Ok(fired)
    }

    /// Carry out the replica's actions in order. `from_gossip`: the actions answer a
    /// transaction that came by gossip, which the p2p layer forwards itself.
    fn carry_out(&mut self, actions: Vec<Action>, from_gossip: bool) {
        for action in actions {
            match action {
                Action::Broadcast(message) | Action::SendTo { message, .. } => {
                    // Gossip reaches every validator; a message meant for one is harmless
                    // to the others (they ignore what they already have).
                    self.resend_counter = self.resend_counter.wrapping_add(1);
                    self.send(Outgoing::Publish {
                        topic: Topic::Consensus,
                        data: crate::consensus_payload(&message.encode(), self.resend_counter),
                    });
                }
                Action::GossipTransaction(tx) => {
                    // The batching task publishes it; if it is behind, the transaction
                    // still reaches the chain through this node's own proposals.
                    if !from_gossip && self.gossip.try_send(tx).is_err() {
                        self.shared
                            .metrics
                            .gossip_txs_dropped
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                Action::SendDecided { to, .. } => {
                    // Gossip has no direct send; a lagging peer pulls the blocks with a
                    // sync request (it asks when it sees later heights or stops
                    // committing).
                    tracing::debug!(peer = to.0, "a peer is behind; it will sync");
                }
                Action::RequestSync { to, height } => {
                    self.send(Outgoing::RequestSync { to, height });
                }
                Action::SetTimer { timer, after_ms } => {
                    self.timer_sequence += 1;
                    let at = Instant::now() + Duration::from_millis(after_ms);
                    self.timers.insert((at, self.timer_sequence), timer);
                }
                Action::Committed(committed) => self.on_committed(*committed),
                Action::Evidence(evidence) => {
                    self.shared.metrics.evidence.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(?evidence, "a validator equivocated");
                }
                Action::EnteredRound {
                    height,
                    round,
                    proposer,
                } => {
                    self.shared
                        .metrics
                        .round
                        .store(u64::from(round.0), Ordering::Relaxed);
                    if self.height_started.is_none_or(|(h, _)| h != height.0) {
                        self.height_started = Some((height.0, Instant::now()));
                    }
                    tracing::debug!(
                        height = height.0,
                        round = round.0,
                        proposer = proposer.0,
                        "round"
                    );
                }
            }
        }
    }

    fn send(&self, outgoing: Outgoing) {
        // Blocking is the backpressure: the network task is the only consumer. It only
        // fails when the network task ended (shutdown), and then nothing is sent anyway.
        let _ = self.outgoing.blocking_send(outgoing);
    }

    fn on_committed(&mut self, committed: dex_chain::Committed) {
        let height = committed.block.header.height;
        let metrics = &self.shared.metrics;
        let txs = u64::try_from(committed.block.txs.len()).unwrap_or(u64::MAX);
        let fills = u64::try_from(committed.result.fills().count()).unwrap_or(u64::MAX);
        metrics.height.store(height, Ordering::Relaxed);
        metrics.blocks.fetch_add(1, Ordering::Relaxed);
        metrics.txs.fetch_add(txs, Ordering::Relaxed);
        metrics.fills.fetch_add(fills, Ordering::Relaxed);
        metrics.last_block_txs.store(txs, Ordering::Relaxed);
        metrics.last_block_fills.store(fills, Ordering::Relaxed);
        if let Some((started_height, started)) = self.height_started
            && started_height == height
        {
            let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            metrics.record_commit_latency(ms);
        }
        let stats = self.replica.stats();
        metrics
            .proposals_invalid
            .store(stats.proposals_invalid, Ordering::Relaxed);
        {
            // A transaction leaves the mempool only by committing or by being dropped at a
            // commit, so the set follows the block instead of being rebuilt from the whole
            // mempool (thousands of ids under load) every block.
            let mut pending = self
                .shared
                .pending
                .write()
                .unwrap_or_else(|e| e.into_inner());
            // Execution already hashed every transaction: its outcomes carry the ids.
            for outcome in &committed.result.outcomes {
                pending.remove(&outcome.tx);
            }
            for (id, _) in &committed.dropped {
                pending.remove(id);
            }
            debug_assert_eq!(pending.len(), self.replica.mempool().len());
        }
        if !committed.dropped.is_empty() {
            let mut log = self
                .shared
                .dropped
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (id, reason) in committed.dropped {
                log.record(id, height, reason);
            }
        }
        let round = committed.certificate.round;
        // Which validator proposed, and how long after its block time the block committed:
        // a gap between commits with a young block was spent before the proposal (the
        // proposer was late), one with an old block after it (votes or the commit).
        let proposer = self
            .replica
            .validators()
            .proposer(dex_consensus::Height(height), round)
            .0;
        let age_ms = now_ms().0.saturating_sub(committed.block.header.time.0);
        tracing::info!(
            height,
            txs,
            fills,
            round = round.0,
            proposer,
            age_ms,
            "committed"
        );
        let block = CommittedBlock {
            block: committed.block,
            certificate: Some(committed.certificate.encode()),
            result: committed.result,
        };
        // The publisher thread feeds the API's read model; blocking here keeps it from
        // falling unboundedly behind.
        let waited = Instant::now();
        let _ = self.committed.send(block);
        if waited.elapsed() >= SLOW_STEP {
            tracing::warn!(
                height,
                waited_ms = waited.elapsed().as_millis() as u64,
                "the consensus thread waited for the API's read model"
            );
        }
    }

    fn publish_gauges(&self) {
        let mempool = self.replica.mempool();
        let metrics = &self.shared.metrics;
        metrics.mempool_txs.store(
            u64::try_from(mempool.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        metrics.mempool_bytes.store(
            u64::try_from(mempool.bytes()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// Publish committed blocks to the API's hub, in height order, off the driver thread.
pub(crate) fn run_publisher(
    hub: Arc<FeedHub>,
    blocks: crossbeam_channel::Receiver<CommittedBlock>,
) {
    for block in blocks {
        let height = block.height();
        let started = Instant::now();
        if let Err(error) = hub.publish(block) {
            tracing::error!(height, %error, "the API could not index a committed block");
        }
        let took = started.elapsed();
        if took >= SLOW_STEP {
            tracing::warn!(
                height,
                took_ms = took.as_millis() as u64,
                "slow indexing of a block"
            );
        }
    }
}

/// A step of the consensus thread or the publisher longer than this is logged: it delays
/// every commit behind it by as much (a block normally takes tens of milliseconds).
const SLOW_STEP: Duration = Duration::from_millis(150);

/// The CPU time this thread has used, where the platform tells it.
fn thread_cpu_time() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
            .ok()
            .map(Duration::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// A short name of a replica event, for logs.
fn event_kind(event: &Event) -> &'static str {
    match event {
        Event::Message(dex_consensus::Message::Proposal(_)) => "proposal",
        Event::Message(dex_consensus::Message::Vote(_)) => "vote",
        Event::VerifiedMessage(message) => match message.message() {
            dex_consensus::Message::Proposal(_) => "proposal",
            dex_consensus::Message::Vote(_) => "vote",
        },
        Event::Transaction(_) => "transaction",
        Event::Decided { .. } => "decided block",
        Event::SyncRequest { .. } => "sync request",
        Event::Timer(_) => "timer",
    }
}
