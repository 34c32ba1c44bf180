//! The network task: between libp2p ([`dex_p2p`]) and the consensus driver.
//!
//! Inbound gossip is checked before it is forwarded or reaches consensus: decoded within
//! the topic's size limit, signatures verified on all cores (batched, never on the driver
//! thread), stale or unknown-signer messages refused. Transactions arrive in batches
//! ([`crate::gossip`]); a batch is accepted or refused as a whole. The verdict goes back to
//! gossipsub, so an invalid message is not relayed and its sender's score drops. Only then
//! does the message go to the driver, on bounded channels: when the node is saturated a
//! message is dropped and counted, never queued without limit.
//!
//! Block sync: the driver's sync requests, a periodic request while the node is not
//! committing (it may have missed a decision while it was down or partitioned), and
//! answers to peers' requests read from the store on the driver thread.

use crate::driver::{Control, Outgoing, Shared};
use crate::gossip_check::BatchCheck;
use crate::metrics::RejectReason;
use dex_consensus::{CommitCertificate, Message, ValidatorIndex, ValidatorSet, VerifiedMessage};
use dex_p2p::{GossipMessage, P2pEvent, P2pHandle, PeerId, SyncRequest, Topic, Verdict};
use dex_types::{Block, SignedTransaction};
use dex_verify::TxVerifier;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

/// Decided blocks asked for per sync request.
pub(crate) const SYNC_BATCH: u32 = 32;
/// How long without a new commit before the node asks a peer whether it missed blocks.
const STALL_BEFORE_SYNC: Duration = Duration::from_millis(1_500);
/// Consensus messages verified at once; more are dropped (and counted).
pub(crate) const CONSENSUS_VERIFY_IN_FLIGHT_MAX: usize = 1_024;
/// Transaction batches waiting for their check: with full batches, 16,384 transactions,
/// several seconds of the pool's work; more are dropped (and counted).
pub(crate) const TX_BATCH_VERIFY_IN_FLIGHT_MAX: usize = 64;

/// A decided block with its certificate, as a sync response carries it.
pub(crate) type SyncEntry = (Vec<u8>, Vec<u8>);

pub(crate) struct Network {
    pub p2p: P2pHandle,
    pub events: mpsc::Receiver<P2pEvent>,
    pub outgoing: mpsc::Receiver<Outgoing>,
    pub control: crossbeam_channel::Sender<Control>,
    pub shared: Arc<Shared>,
    pub validators: Arc<ValidatorSet>,
    pub chain_id: dex_consensus::ChainId,
    /// Validator index → peer id.
    pub validator_peers: Vec<PeerId>,
    /// Largest consensus message accepted (a proposal carries a block).
    pub consensus_bytes_max: usize,
    /// Largest sync response accepted.
    pub sync_bytes_max: usize,
    /// Consensus messages being verified at once; more are dropped (and counted).
    pub verify_slots: Arc<Semaphore>,
    /// Signature checks of proposals' transactions and of transaction batches, on the
    /// verification pool.
    pub verifier: TxVerifier,
    /// The check of transaction batches (several messages' signatures at once); when its
    /// queue is full a batch is dropped (and counted) without penalty to its sender.
    pub batch_check: BatchCheck,
}

/// A consensus message whose signatures held, with the transactions of a proposal that
/// were verified with it; or the bad signature.
type CheckedMessage =
    Result<(VerifiedMessage<Block>, Vec<SignedTransaction>), dex_consensus::MessageError>;

/// Why a consensus message was not checked (no judgement on it).
enum CheckRefusal {
    /// Too many checks in flight.
    Overloaded,
    /// The node is stopping.
    Stopped,
}

struct SyncState {
    connected: BTreeSet<PeerId>,
    last_height: u64,
    last_progress: Instant,
    last_request: Option<Instant>,
    next_peer: usize,
}

impl Network {
    /// Run until the p2p layer stops or the driver goes away.
    pub async fn run(mut self) {
        let mut sync = SyncState {
            connected: BTreeSet::new(),
            last_height: 0,
            last_progress: Instant::now(),
            last_request: None,
            next_peer: 0,
        };
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(event) => self.on_event(event, &mut sync).await,
                    None => return,
                },
                outgoing = self.outgoing.recv() => match outgoing {
                    Some(outgoing) => self.on_outgoing(outgoing).await,
                    None => return,
                },
                _ = tick.tick() => self.check_progress(&mut sync).await,
            }
        }
    }

    fn committed_height(&self) -> u64 {
        self.shared.metrics.height.load(Ordering::Relaxed)
    }

    async fn on_outgoing(&self, outgoing: Outgoing) {
        match outgoing {
            Outgoing::Publish { topic, data } => {
                // A duplicate (the same vote re-sent within the duplicate window) or no
                // peer yet: nothing to do, the round's rebroadcast covers losses.
                if let Err(error) = self.p2p.publish(topic, data).await {
                    tracing::trace!(%error, ?topic, "publish");
                }
            }
            Outgoing::RequestSync { to, height } => {
                if let Some(peer) = self.validator_peers.get(to.0 as usize) {
                    self.request(*peer, height).await;
                }
            }
        }
    }

    async fn request(&self, peer: PeerId, height: u64) {
        if let Err(error) = self.p2p.request_blocks(peer, height, SYNC_BATCH).await {
            tracing::debug!(%peer, height, %error, "sync request not sent");
        }
    }

    /// Not committing for a while: ask the next connected validator for what follows our
    /// head. A peer with nothing newer answers with nothing.
    async fn check_progress(&self, sync: &mut SyncState) {
        let height = self.committed_height();
        let now = Instant::now();
        if height != sync.last_height {
            sync.last_height = height;
            sync.last_progress = now;
            return;
        }
        let stalled = now.duration_since(sync.last_progress) >= STALL_BEFORE_SYNC;
        let asked_recently = sync
            .last_request
            .is_some_and(|at| now.duration_since(at) < STALL_BEFORE_SYNC);
        if !stalled || asked_recently {
            return;
        }
        let candidates: Vec<PeerId> = self
            .validator_peers
            .iter()
            .filter(|peer| sync.connected.contains(peer))
            .copied()
            .collect();
        if candidates.is_empty() {
            return;
        }
        let peer = candidates[sync.next_peer % candidates.len()];
        sync.next_peer = sync.next_peer.wrapping_add(1);
        sync.last_request = Some(now);
        self.request(peer, height.saturating_add(1)).await;
    }

    async fn on_event(&self, event: P2pEvent, sync: &mut SyncState) {
        match event {
            P2pEvent::Listening { address } => tracing::info!(%address, "listening for peers"),
            P2pEvent::PeerConnected { peer, is_validator } => {
                tracing::info!(%peer, is_validator, "peer connected");
                sync.connected.insert(peer);
                self.shared
                    .metrics
                    .peers
                    .store(sync.connected.len() as u64, Ordering::Relaxed);
            }
            P2pEvent::PeerDisconnected { peer } => {
                tracing::info!(%peer, "peer disconnected");
                sync.connected.remove(&peer);
                self.shared
                    .metrics
                    .peers
                    .store(sync.connected.len() as u64, Ordering::Relaxed);
            }
            P2pEvent::Gossip(message) => match message.topic {
                Topic::Transactions => self.on_gossip_batch(message).await,
                Topic::Consensus => self.on_gossip_consensus(message).await,
            },
            P2pEvent::SyncRequested { id, peer, request } => self.serve_sync(id, peer, request),
            P2pEvent::SyncResponse { peer, data, .. } => self.on_sync_response(peer, data).await,
            P2pEvent::SyncFailed { peer, error, .. } => {
                tracing::debug!(%peer, %error, "sync request failed");
            }
        }
    }

    async fn verdict(
        &self,
        message: &GossipMessage,
        verdict: Verdict,
        reason: Option<RejectReason>,
    ) {
        if let Some(reason) = reason {
            self.shared.metrics.reject(reason);
        }
        let _ = self.p2p.report_validation(message.ticket(), verdict).await;
    }

    /// A transaction batch from a peer: decoded and its signatures verified on the
    /// verification pool (never on this task), then the verdict. Any undecodable
    /// transaction or bad signature refuses the whole batch, which also penalises its
    /// sender: an honest node batches only transactions whose signatures it checked, so
    /// the author or a relay of a bad batch is faulty. A good batch goes to the driver in
    /// one submission.
    ///
    /// Transactions of the batch already in this node's mempool are verified again: the
    /// mempool is known here only by transaction id, which does not cover the signature,
    /// so skipping them would let a batch that repeats a pending transaction with a forged
    /// signature through, and this node would relay it. An honest batch rarely repeats a
    /// pending transaction (only a client that sent one to two nodes), so this costs
    /// nothing in practice.
    async fn on_gossip_batch(&self, message: GossipMessage) {
        if let Err(ticket) = self.batch_check.offer(message) {
            self.shared.metrics.reject(RejectReason::Overloaded);
            let _ = self.p2p.report_validation(ticket, Verdict::Ignore).await;
        }
    }

    async fn on_gossip_consensus(&self, message: GossipMessage) {
        let decoded = message
            .data
            .get(crate::CONSENSUS_RESEND_PREFIX_BYTES..)
            .ok_or(())
            .and_then(|bytes| {
                Message::<Block>::decode(bytes, self.consensus_bytes_max).map_err(|_| ())
            });
        let Ok(consensus) = decoded else {
            return self
                .verdict(&message, Verdict::Reject, Some(RejectReason::Undecodable))
                .await;
        };
        let height = consensus.height().0;
        let committed = self.committed_height();
        if height <= committed.saturating_sub(1) {
            // Long decided: useless to relay, but a lagging honest peer sends such
            // messages, so no penalty.
            return self
                .verdict(&message, Verdict::Ignore, Some(RejectReason::Stale))
                .await;
        }
        let checked = if let Message::Vote(_) = &consensus {
            // One signature, tens of microseconds: checked on this task, which waits for
            // the answer either way. On the blocking pool a vote queued behind transaction
            // checks: at 2,100 orders/s on the 4-validator cluster, moving votes here took
            // the p99 submit-to-commit latency from 342-782 ms to 79-156 ms.
            Ok(consensus
                .into_verified(&self.validators, self.chain_id)
                .map(|verified| (verified, Vec::new())))
        } else {
            self.check_proposal(consensus).await
        };
        let (consensus, verified) = match checked {
            Ok(Ok(checked)) => checked,
            Ok(Err(_)) => {
                return self
                    .verdict(&message, Verdict::Reject, Some(RejectReason::BadSignature))
                    .await;
            }
            Err(CheckRefusal::Overloaded) => {
                return self
                    .verdict(&message, Verdict::Ignore, Some(RejectReason::Overloaded))
                    .await;
            }
            Err(CheckRefusal::Stopped) => {
                return self.verdict(&message, Verdict::Ignore, None).await;
            }
        };
        self.verdict(&message, Verdict::Accept, None).await;
        if !verified.is_empty() && self.control.try_send(Control::Verified(verified)).is_err() {
            self.shared.metrics.reject(RejectReason::Overloaded);
        }
        if self
            .control
            .try_send(Control::Message(Box::new(consensus)))
            .is_err()
        {
            self.shared.metrics.reject(RejectReason::Overloaded);
        }
    }

    /// A proposal's signatures and those of its transactions this node has not admitted,
    /// checked on the blocking pool (a block may carry hundreds): the verified message and
    /// the transactions that passed.
    async fn check_proposal(
        &self,
        consensus: Message<Block>,
    ) -> Result<CheckedMessage, CheckRefusal> {
        let Ok(permit) = self.verify_slots.clone().try_acquire_owned() else {
            return Err(CheckRefusal::Overloaded);
        };
        let validators = self.validators.clone();
        let chain_id = self.chain_id;
        let verifier = self.verifier.clone();
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // Checked here, once: the driver's consensus core takes the proof and does not
            // check the signatures again.
            let consensus = consensus.into_verified(&validators, chain_id)?;
            // A proposal's transactions are checked here, in parallel with consensus, so
            // that validating the block on the driver thread finds them verified.
            let verified: Vec<SignedTransaction> = match consensus.message() {
                Message::Proposal(proposal) => {
                    // Transactions this node admitted were verified then (the driver
                    // recorded them); checking them again would double the node's main
                    // cost. Hashing one is about a microsecond, verifying it about 40.
                    let unchecked: Vec<SignedTransaction> = {
                        let pending = shared.pending.read().unwrap_or_else(|e| e.into_inner());
                        proposal
                            .value
                            .txs
                            .iter()
                            .filter(|tx| !pending.contains(&tx.hash()))
                            .cloned()
                            .collect()
                    };
                    verifier
                        .verify_batch(&unchecked)
                        .into_iter()
                        .zip(unchecked)
                        .filter(|(result, _)| result.is_ok())
                        .map(|(_, tx)| tx)
                        .collect()
                }
                Message::Vote(_) => Vec::new(),
            };
            Ok::<_, dex_consensus::MessageError>((consensus, verified))
        })
        .await
        // The runtime is stopping or the pool panicked: no judgement.
        .map_err(|_| CheckRefusal::Stopped)
    }

    /// Answer a peer's request for decided blocks from the store (read on the driver
    /// thread), at most [`SYNC_BATCH`] blocks and the response size limit.
    fn serve_sync(&self, id: dex_p2p::InboundSyncId, peer: PeerId, request: SyncRequest) {
        let count = request.max_count.min(SYNC_BATCH);
        let from = request.from_height;
        let bytes_max = self.p2p.max_response_bytes();
        let (reply, answer) = tokio::sync::oneshot::channel::<Vec<u8>>();
        let read: crate::driver::ReadFn = Box::new(move |replica| {
            let mut entries: Vec<SyncEntry> = Vec::new();
            let mut bytes = 8usize;
            for height in from..from.saturating_add(u64::from(count)) {
                let Ok(Some(stored)) = replica.store().committed_block(height) else {
                    break;
                };
                let size = stored.block.len() + stored.certificate.len() + 8;
                if bytes + size > bytes_max {
                    break;
                }
                bytes += size;
                entries.push((stored.block, stored.certificate));
            }
            let data = borsh::to_vec(&entries).expect("bug: a sync response serialises");
            let _ = reply.send(data);
        });
        if self.control.try_send(Control::Read(read)).is_err() {
            self.shared.metrics.reject(RejectReason::Overloaded);
            return;
        }
        let p2p = self.p2p.clone();
        tokio::spawn(async move {
            if let Ok(data) = answer.await
                && let Err(error) = p2p.respond(id, data).await
            {
                tracing::debug!(%peer, %error, "sync response not sent");
            }
        });
    }

    async fn on_sync_response(&self, peer: PeerId, data: Vec<u8>) {
        let entries: Vec<SyncEntry> =
            match dex_types::codec::decode_bounded(&data, self.sync_bytes_max) {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::warn!(%peer, %error, "undecodable sync response");
                    self.shared.metrics.reject(RejectReason::BadSync);
                    return;
                }
            };
        let from = self
            .validator_peers
            .iter()
            .position(|p| *p == peer)
            .and_then(|i| u32::try_from(i).ok())
            .map(ValidatorIndex);
        let full = entries.len() >= SYNC_BATCH as usize;
        let mut last = None;
        for (block, certificate) in entries {
            let (Ok(block), Ok(certificate)) = (
                Block::decode(&block),
                CommitCertificate::decode(&certificate),
            ) else {
                tracing::warn!(%peer, "sync response with an undecodable block");
                self.shared.metrics.reject(RejectReason::BadSync);
                return;
            };
            last = Some(block.header.height);
            // The driver verifies the certificate against the validator set and the
            // block against its parent before applying anything.
            let decided = Control::Decided {
                from,
                block,
                certificate,
            };
            if self.control.try_send(decided).is_err() {
                self.shared.metrics.reject(RejectReason::Overloaded);
                return;
            }
        }
        // A full batch: the peer probably has more; keep pulling from it.
        if full && let Some(last) = last {
            self.request(peer, last.saturating_add(1)).await;
        }
    }
}
