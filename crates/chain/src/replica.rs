//! [`Replica`]: one validator's chain logic around the consensus core, driven by events and
//! answering with [`Action`]s for the host to carry out.
//!
//! The replica owns the consensus core, the committed ledger, the mempool and the chain
//! store. It turns the core's effects into host actions and carries out the ones that need
//! no IO of the host's own:
//!
//! | core effect | what the replica does |
//! | --- | --- |
//! | `Persist` | appends the entry to the store's consensus log, synced, before anything after it |
//! | `Broadcast`, `SendTo` | [`Action::Broadcast`], [`Action::SendTo`] |
//! | `ScheduleTimeout` | [`Action::SetTimer`] with [`Timer::Consensus`] |
//! | `RequestValue` | waits up to the batching interval ([`Timer::ProposeBatch`]) unless the mempool already fills a block, then builds, executes and proposes a block |
//! | `ValidateProposal` | checks and executes the block once (kept for voting and commit) and answers the core at once |
//! | `Decide` | commits block, certificate and state changes in one atomic write, snapshots when due, [`Action::Committed`] |
//! | `RecordEvidence` | [`Action::Evidence`] |
//! | `EnterRound` | [`Action::EnteredRound`] (metrics, logs, the simulator's latency) |
//!
//! Time is an input ([`Replica::handle`] takes the host's clock), so the simulator drives a
//! replica with a virtual clock and the node with its real one. Store writes are
//! synchronous and finish before the actions after them are produced: an action in the
//! output is safe to carry out as soon as the call returns, even if the call failed
//! later (the output then holds exactly the actions produced before the failure).
//!
//! Catching up: a message for a height this node already decided gets its sender the
//! decided block and certificate ([`Action::SendDecided`], at most once per
//! `sync_retry_ms` per peer); a message too far ahead makes this node ask its
//! sender for blocks ([`Action::RequestSync`]). Decided blocks for later heights are kept
//! (certificate verified, bounded) until the heights between arrive.

use crate::commit;
use crate::config::ReplicaConfig;
use crate::error::{ChainError, RecoveryError};
use crate::execute::{
    BlockRules, ExecutedBlock, Parent, build_block, proposal_time, validate_block,
};
use crate::mempool::{Mempool, MempoolError};
use crate::recovery::recover;
use crate::signatures::SignatureCache;
use dex_consensus::{
    CommitCertificate, Consensus, ConsensusError, ConsensusValue, Effect, Evidence, Height, Input,
    Message, Round, Timeout, ValidatorIndex, ValidatorSet, VerifiedMessage,
};
use dex_state::{BlockResult, Genesis, Ledger, Rejection};
use dex_storage::{ChainStore, CommittedHead, Durability, Store};
use dex_types::{AccountId, Block, Hash, SignedTransaction, TimestampMs};
use ed25519_dalek::SigningKey;
use std::collections::{BTreeMap, VecDeque};

/// A timer the host fires back as [`Event::Timer`] after the duration given with it.
/// Stale timers are ignored, so none ever needs cancelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// A consensus timer.
    Consensus(Timeout),
    /// The proposer's batching interval at this height and round has passed: build the
    /// block from what the mempool holds.
    ProposeBatch {
        /// Height of the request.
        height: Height,
        /// Round of the request.
        round: Round,
    },
}

/// Something that happened to this validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A consensus message from the network (not yet verified).
    Message(Message<Block>),
    /// A consensus message the host verified as it arrived, off this thread: the core does
    /// not check its signatures again.
    VerifiedMessage(Box<VerifiedMessage<Block>>),
    /// A transaction from a client or from gossip (not yet verified).
    Transaction(SignedTransaction),
    /// A decided block with its certificate, sent by a peer because this node is behind.
    Decided {
        /// The peer that sent it, if known: asked for the following blocks.
        from: Option<ValidatorIndex>,
        /// The block.
        block: Block,
        /// Its commit certificate.
        certificate: CommitCertificate,
    },
    /// A peer asks for the decided blocks from `height` on.
    SyncRequest {
        /// The peer.
        from: ValidatorIndex,
        /// The first height it needs.
        height: u64,
    },
    /// A timer from [`Action::SetTimer`] fired.
    Timer(Timer),
}

/// What the host must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a consensus message to every other validator.
    Broadcast(Message<Block>),
    /// Send a consensus message to one validator.
    SendTo {
        /// The recipient.
        to: ValidatorIndex,
        /// The message.
        message: Message<Block>,
    },
    /// Relay a newly admitted transaction to the other validators.
    GossipTransaction(SignedTransaction),
    /// Send a lagging validator a decided block with its certificate.
    SendDecided {
        /// The recipient.
        to: ValidatorIndex,
        /// The block.
        block: Block,
        /// Its certificate.
        certificate: CommitCertificate,
    },
    /// Ask a validator for decided blocks from `height` on ([`Event::SyncRequest`]).
    RequestSync {
        /// The validator asked.
        to: ValidatorIndex,
        /// The first height needed.
        height: u64,
    },
    /// Fire [`Event::Timer`] with `timer` after `after_ms` of the host's clock.
    SetTimer {
        /// The timer.
        timer: Timer,
        /// The delay.
        after_ms: u64,
    },
    /// A block was committed (already durable): publish it.
    Committed(Box<Committed>),
    /// A validator equivocated (already verified).
    Evidence(Evidence),
    /// A round began.
    EnteredRound {
        /// The height.
        height: Height,
        /// The round.
        round: Round,
        /// Its proposer.
        proposer: ValidatorIndex,
    },
}

/// A committed block and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The block.
    pub block: Block,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
    /// Its execution result (events, outcomes, roots).
    pub result: BlockResult,
    /// The new committed head.
    pub head: CommittedHead,
    /// Pending transactions this block made impossible (nonce used, expired, funds or order
    /// gone), dropped from the mempool with the reason: they will never commit, and a
    /// client asking about one should hear why.
    pub dropped: Vec<(Hash, Rejection)>,
}

/// Counters of what the replica did since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaStats {
    /// Consensus messages the core refused (bad signature, wrong round window, ...).
    pub messages_rejected: u64,
    /// Proposals this node judged invalid.
    pub proposals_invalid: u64,
    /// Blocks this node proposed.
    pub blocks_proposed: u64,
    /// Blocks this node executed: its own proposals, the proposals it checked (a check
    /// executes the block unless its header or a signature already fails), and decided
    /// blocks it held no execution of. On the common path, one per committed block: a
    /// proposal's execution is kept and reused to vote and to commit.
    pub blocks_executed: u64,
    /// Blocks committed (by consensus here or from peers).
    pub blocks_committed: u64,
    /// Decided blocks sent to lagging peers.
    pub decided_sent: u64,
    /// Transactions admitted to the mempool.
    pub txs_admitted: u64,
    /// Transactions refused by the mempool.
    pub txs_refused: u64,
}

/// What the start-up found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoverySummary {
    /// The store was empty and genesis was installed.
    pub installed_genesis: bool,
    /// Height of the snapshot the ledger was rebuilt from.
    pub snapshot_height: u64,
    /// Blocks replayed after it.
    pub replayed_blocks: u64,
    /// Consensus-log entries restored.
    pub wal_entries: usize,
}

/// This height's verdict on a proposed value.
#[derive(Debug)]
enum Verdict {
    Valid(Box<ExecutedBlock>),
    Invalid,
}

/// One validator's (or observer's) chain: see the module docs.
#[derive(Debug)]
pub struct Replica<S: Store> {
    config: ReplicaConfig,
    rules: BlockRules,
    validators: ValidatorSet,
    /// This validator's account (its public key), `None` for an observer.
    account: Option<AccountId>,
    core: Consensus<Block>,
    store: ChainStore<S>,
    ledger: Ledger,
    head: CommittedHead,
    mempool: Mempool,
    signatures: SignatureCache,
    /// Verdicts on this height's proposals, with an insertion number for eviction.
    executed: BTreeMap<Hash, (u64, Verdict)>,
    executed_sequence: u64,
    /// The core asked for a value at this height and round and has not had it yet.
    awaiting_value: Option<(Height, Round)>,
    /// Certified decided blocks for heights above the current one.
    future_decided: BTreeMap<u64, (Block, CommitCertificate)>,
    /// When each lagging peer was last sent a decided block unasked.
    helped_at_ms: BTreeMap<ValidatorIndex, u64>,
    /// When this node last asked a peer for blocks.
    sync_requested_at_ms: Option<u64>,
    halted: bool,
    stats: ReplicaStats,
    recovery: RecoverySummary,
}

impl<S: Store> Replica<S> {
    /// Start from `store`: install genesis into an empty store or recover the ledger and
    /// the consensus log from it ([`recover`]), then resume the core at the next height.
    /// The start-up actions (timers, re-sent messages) go to `out`.
    pub fn open(
        store: ChainStore<S>,
        genesis: &Genesis,
        validators: ValidatorSet,
        signing_key: Option<SigningKey>,
        config: ReplicaConfig,
        now: TimestampMs,
        out: &mut Vec<Action>,
    ) -> Result<Replica<S>, RecoveryError> {
        let rules = config.block_rules();
        if genesis.chain_id != rules.chain_id {
            return Err(RecoveryError::ChainIdMismatch {
                genesis: genesis.chain_id,
                configured: rules.chain_id,
            });
        }
        let recovered = recover(
            &store,
            genesis,
            &validators,
            &rules,
            config.check_state_column_on_open,
        )?;
        let account = signing_key
            .as_ref()
            .map(|key| AccountId(key.verifying_key().to_bytes()));
        let recovery = RecoverySummary {
            installed_genesis: recovered.installed_genesis,
            snapshot_height: recovered.snapshot_height,
            replayed_blocks: recovered.replayed_blocks,
            wal_entries: recovered.wal.len(),
        };
        let next = Height(recovered.head.height).next();
        let (core, effects) = Consensus::restore(
            config.consensus.clone(),
            validators.clone(),
            signing_key,
            next,
            recovered.wal,
        )?;
        let mut replica = Replica {
            rules,
            validators,
            account,
            core,
            store,
            ledger: recovered.ledger,
            head: recovered.head,
            mempool: Mempool::with_limits(config.mempool),
            signatures: SignatureCache::new(config.signature_cache_capacity),
            executed: BTreeMap::new(),
            executed_sequence: 0,
            awaiting_value: None,
            future_decided: BTreeMap::new(),
            helped_at_ms: BTreeMap::new(),
            sync_requested_at_ms: None,
            halted: false,
            stats: ReplicaStats::default(),
            recovery,
            config,
        };
        replica.run(now, effects, out)?;
        Ok(replica)
    }

    /// Handle one event at the host's clock `now`; the actions to carry out go to `out`, in
    /// order. After an error the replica is stopped and refuses every later event; the
    /// actions already in `out` are still safe to carry out.
    pub fn handle(
        &mut self,
        now: TimestampMs,
        event: Event,
        out: &mut Vec<Action>,
    ) -> Result<(), ChainError> {
        if self.halted {
            return Err(ChainError::Halted);
        }
        let result = self
            .dispatch(now, event, out)
            .and_then(|()| self.apply_buffered_decisions(now, out));
        if result.is_err() {
            self.halted = true;
        }
        result
    }

    /// Offer a transaction from a client at the host's clock `now` and say whether the
    /// mempool admitted it (the same as [`Event::Transaction`], which drops the answer).
    /// The outer error is the replica's own failure, as for [`Replica::handle`].
    pub fn submit(
        &mut self,
        now: TimestampMs,
        signed: SignedTransaction,
        out: &mut Vec<Action>,
    ) -> Result<Result<Hash, MempoolError>, ChainError> {
        if self.halted {
            return Err(ChainError::Halted);
        }
        let result = self.admit(now, signed, out).and_then(|admitted| {
            self.apply_buffered_decisions(now, out)?;
            Ok(admitted)
        });
        if result.is_err() {
            self.halted = true;
        }
        result
    }

    /// Record that the host checked this transaction's signature with the same rule
    /// ([`SignedTransaction::verify`]) and it held, so that admission and block validation
    /// skip the check. The host verifies in parallel, off the thread that runs the replica.
    pub fn record_verified(&mut self, signed: &SignedTransaction) {
        self.signatures.record_verified(signed.hash(), signed);
    }

    // ----- accessors -----

    /// The committed ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The committed head.
    pub fn head(&self) -> CommittedHead {
        self.head
    }

    /// The consensus core (read-only).
    pub fn consensus(&self) -> &Consensus<Block> {
        &self.core
    }

    /// The chain store.
    pub fn store(&self) -> &ChainStore<S> {
        &self.store
    }

    /// The pending transactions.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// The validator set.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// What the replica did since it started.
    pub fn stats(&self) -> ReplicaStats {
        self.stats
    }

    /// What the start-up found.
    pub fn recovery(&self) -> RecoverySummary {
        self.recovery
    }

    /// Whether an error stopped the replica.
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    /// The simulator's self-test only: make this replica's consensus core ignore its lock
    /// (see `dex-consensus`'s `mutation-hooks` feature), to show that the simulator's
    /// checks catch the safety violations a broken core causes.
    #[cfg(feature = "mutation-hooks")]
    pub fn set_ignore_lock(&mut self, ignore: bool) {
        self.core.set_ignore_lock(ignore);
    }

    // ----- events -----

    fn dispatch(
        &mut self,
        now: TimestampMs,
        event: Event,
        out: &mut Vec<Action>,
    ) -> Result<(), ChainError> {
        match event {
            Event::Message(message) => {
                let sender = message.signer();
                let input = match message {
                    Message::Proposal(proposal) => Input::Proposal(proposal),
                    Message::Vote(vote) => Input::Vote(vote),
                };
                self.feed(now, input, Some(sender), out)
            }
            Event::VerifiedMessage(verified) => {
                let sender = verified.message().signer();
                self.feed(now, Input::Verified(verified), Some(sender), out)
            }
            Event::Transaction(signed) => self.admit(now, signed, out).map(|_| ()),
            Event::Decided {
                from,
                block,
                certificate,
            } => self.on_decided(now, from, block, certificate, out),
            Event::SyncRequest { from, height } => self.answer_sync(from, height, out),
            Event::Timer(Timer::Consensus(timeout)) => {
                self.feed(now, Input::Timeout(timeout), None, out)
            }
            Event::Timer(Timer::ProposeBatch { height, round }) => {
                if self.awaiting_value == Some((height, round)) {
                    // An idle chain makes a block only every `empty_block_wait_ms`: keep
                    // waiting (one batching interval at a time, so a transaction that
                    // arrives is proposed within one interval) while nothing is pending.
                    let wait_until = self
                        .ledger
                        .last_block_time()
                        .0
                        .saturating_add(self.config.empty_block_wait_ms);
                    if self.mempool.is_empty() && now.0 < wait_until {
                        let batch_ms = self.config.consensus.propose_batch_ms.max(1);
                        out.push(Action::SetTimer {
                            timer: Timer::ProposeBatch { height, round },
                            after_ms: batch_ms.min(wait_until - now.0),
                        });
                        return Ok(());
                    }
                    let effects = self.build_and_propose(now);
                    self.run(now, effects, out)?;
                }
                Ok(())
            }
        }
    }

    /// Give the core one input and carry out its effects. A message the core refuses is
    /// counted, and answered where it shows a peer (or this node) is behind.
    fn feed(
        &mut self,
        now: TimestampMs,
        input: Input<Block>,
        sender: Option<ValidatorIndex>,
        out: &mut Vec<Action>,
    ) -> Result<(), ChainError> {
        match self.core.handle(input) {
            Ok(effects) => self.run(now, effects, out),
            Err(ConsensusError::HeightBehind { height, sender, .. }) => {
                self.help_lagging(now, sender, height.0, out)
            }
            Err(ConsensusError::HeightTooFarAhead { .. }) => {
                self.stats.messages_rejected += 1;
                if let Some(sender) = sender {
                    self.request_sync(now, sender, out);
                }
                Ok(())
            }
            Err(_) => {
                self.stats.messages_rejected += 1;
                Ok(())
            }
        }
    }

    /// Carry out the core's effects in order; effects of inputs the replica answers itself
    /// (validation verdicts, proposed values) follow the ones already queued.
    fn run(
        &mut self,
        now: TimestampMs,
        effects: Vec<Effect<Block>>,
        out: &mut Vec<Action>,
    ) -> Result<(), ChainError> {
        let mut queue: VecDeque<Effect<Block>> = effects.into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Persist(entry) => {
                    // Durable before anything after it is carried out. Entries in a row
                    // (the new valid value, then the precommit it leads to) share one
                    // sync: only the last is synced, which makes the earlier ones durable
                    // too (the store's log is sequential), and nothing is sent between.
                    let durability = if matches!(queue.front(), Some(Effect::Persist(_))) {
                        Durability::Buffered
                    } else {
                        Durability::Synced
                    };
                    self.store
                        .append_wal_with(entry.height().0, &entry.encode(), durability)?;
                }
                Effect::Broadcast(message) => out.push(Action::Broadcast(message)),
                Effect::SendTo { to, message } => out.push(Action::SendTo { to, message }),
                Effect::ScheduleTimeout {
                    timeout,
                    duration_ms,
                } => out.push(Action::SetTimer {
                    timer: Timer::Consensus(timeout),
                    after_ms: duration_ms,
                }),
                Effect::RequestValue {
                    height,
                    round,
                    batch_ms,
                } => {
                    self.awaiting_value = Some((height, round));
                    if batch_ms == 0 || self.mempool.len() >= self.config.block_txs_max {
                        queue.extend(self.build_and_propose(now));
                    } else {
                        out.push(Action::SetTimer {
                            timer: Timer::ProposeBatch { height, round },
                            after_ms: batch_ms,
                        });
                    }
                }
                Effect::ValidateProposal {
                    height,
                    round,
                    value,
                } => {
                    let value_id = value.id();
                    let valid = self.validate(now, value);
                    let more = self
                        .core
                        .handle(Input::ProposalValidated {
                            height,
                            round,
                            value_id,
                            valid,
                        })
                        .unwrap_or_else(|e| panic!("bug: a validation verdict was refused: {e}"));
                    queue.extend(more);
                }
                Effect::Decide { value, certificate } => self.commit(value, certificate, out)?,
                Effect::RecordEvidence(evidence) => out.push(Action::Evidence(evidence)),
                Effect::StartHeight { .. } => self.awaiting_value = None,
                Effect::EnterRound {
                    height,
                    round,
                    proposer,
                } => out.push(Action::EnteredRound {
                    height,
                    round,
                    proposer,
                }),
            }
        }
        Ok(())
    }

    fn admit(
        &mut self,
        now: TimestampMs,
        signed: SignedTransaction,
        out: &mut Vec<Action>,
    ) -> Result<Result<Hash, MempoolError>, ChainError> {
        let admitted = self
            .mempool
            .insert(signed.clone(), &self.ledger, now, &mut self.signatures);
        match admitted {
            Ok(_) => {
                self.stats.txs_admitted += 1;
                out.push(Action::GossipTransaction(signed));
            }
            Err(_) => self.stats.txs_refused += 1,
        }
        if self.awaiting_value.is_some() && self.mempool.len() >= self.config.block_txs_max {
            let effects = self.build_and_propose(now);
            self.run(now, effects, out)?;
        }
        Ok(admitted)
    }

    // ----- blocks -----

    fn parent(&self) -> Parent {
        Parent {
            height: self.head.height,
            hash: self.head.block_hash,
            time: self.ledger.last_block_time(),
        }
    }

    /// Build a block from the mempool, keep its execution, and hand it to the core.
    fn build_and_propose(&mut self, now: TimestampMs) -> Vec<Effect<Block>> {
        let Some((height, round)) = self.awaiting_value.take() else {
            return Vec::new();
        };
        let account = self
            .account
            .expect("bug: the core asked an observer for a value");
        let parent = self.parent();
        let txs = self.mempool.select(self.config.block_txs_max);
        let time = proposal_time(&parent, now);
        let executed = build_block(&self.ledger, &parent, &self.rules, account, time, txs);
        self.stats.blocks_executed += 1;
        let block = executed.block.clone();
        self.remember(executed.id, Verdict::Valid(Box::new(executed)));
        self.stats.blocks_proposed += 1;
        self.core
            .handle(Input::ProposeValue {
                height,
                round,
                value: block,
            })
            .unwrap_or_else(|e| panic!("bug: the core refused the value it asked for: {e}"))
    }

    /// The verdict on a proposed block, executing it once per height.
    fn validate(&mut self, now: TimestampMs, block: Block) -> bool {
        let id = block.id();
        if let Some((_, verdict)) = self.executed.get(&id) {
            return matches!(verdict, Verdict::Valid(_));
        }
        let parent = self.parent();
        self.stats.blocks_executed += 1;
        let verdict = match validate_block(
            block,
            &self.ledger,
            &parent,
            &self.rules,
            &self.validators,
            Some(now),
            &mut self.signatures,
        ) {
            Ok(executed) => Verdict::Valid(Box::new(executed)),
            Err(_) => {
                self.stats.proposals_invalid += 1;
                Verdict::Invalid
            }
        };
        let valid = matches!(verdict, Verdict::Valid(_));
        self.remember(id, verdict);
        valid
    }

    fn remember(&mut self, id: Hash, verdict: Verdict) {
        let sequence = self.executed_sequence;
        self.executed_sequence += 1;
        self.executed.insert(id, (sequence, verdict));
        while self.executed.len() > self.config.executed_cache_max.max(1) {
            let oldest = self
                .executed
                .iter()
                .min_by_key(|(_, (sequence, _))| *sequence)
                .map(|(id, _)| *id)
                .expect("bug: a non-empty map has a minimum");
            self.executed.remove(&oldest);
        }
    }

    /// Commit a decided block in one atomic write, reusing its execution when there is one.
    fn commit(
        &mut self,
        block: Block,
        certificate: CommitCertificate,
        out: &mut Vec<Action>,
    ) -> Result<(), ChainError> {
        let id = block.id();
        let height = block.header.height;
        let executed = match self.executed.remove(&id) {
            Some((_, Verdict::Valid(executed))) => *executed,
            // Decided without a local verdict (synced from a peer, or evicted) or judged
            // invalid here only by this node's clock: execute it now, clock aside, since
            // the certificate shows the validators accepted its time.
            _ => {
                let parent = self.parent();
                self.stats.blocks_executed += 1;
                validate_block(
                    block,
                    &self.ledger,
                    &parent,
                    &self.rules,
                    &self.validators,
                    None,
                    &mut self.signatures,
                )
                .map_err(|reason| ChainError::CertifiedBlockInvalid { height, reason })?
            }
        };
        let head = commit::commit_block(&self.store, &executed, &certificate)?;
        commit::snapshot_if_due(&self.store, &executed)?;
        let ExecutedBlock {
            block,
            result,
            ledger,
            ..
        } = executed;
        self.mempool.remove_committed(&block.txs);
        let dropped = self.mempool.revalidate(&ledger, block.header.time);
        self.ledger = ledger;
        self.head = head;
        self.executed.clear();
        // The previous ledger and every proposal's copy are gone: fold this block's order
        // changes into the shared map in place, so the next proposal's copy is cheap.
        self.ledger.settle();
        self.stats.blocks_committed += 1;
        out.push(Action::Committed(Box::new(Committed {
            block,
            certificate,
            result,
            head,
            dropped,
        })));
        Ok(())
    }

    // ----- catching up -----

    /// A peer sent a message for a height this node decided: send it that decision.
    fn help_lagging(
        &mut self,
        now: TimestampMs,
        peer: ValidatorIndex,
        height: u64,
        out: &mut Vec<Action>,
    ) -> Result<(), ChainError> {
        if self.core.own_index() == Some(peer) {
            return Ok(());
        }
        // At most one answer per peer per retry interval, whatever height it asks about:
        // replayed old messages must not make this node send block after block. A peer
        // many heights behind catches up through sync requests instead.
        if let Some(&at_ms) = self.helped_at_ms.get(&peer)
            && now.0 < at_ms.saturating_add(self.config.sync_retry_ms)
        {
            return Ok(());
        }
        self.helped_at_ms.insert(peer, now.0);
        if let Some((block, certificate)) = self.load_decided(height)? {
            self.stats.decided_sent += 1;
            out.push(Action::SendDecided {
                to: peer,
                block,
                certificate,
            });
        }
        Ok(())
    }

    fn answer_sync(
        &mut self,
        peer: ValidatorIndex,
        height: u64,
        out: &mut Vec<Action>,
    ) -> Result<(), ChainError> {
        if self.core.own_index() == Some(peer) {
            return Ok(());
        }
        let first = height.max(1);
        let last = first
            .saturating_add(self.config.sync_batch_max.saturating_sub(1))
            .min(self.head.height);
        for h in first..=last {
            match self.load_decided(h)? {
                Some((block, certificate)) => {
                    self.stats.decided_sent += 1;
                    out.push(Action::SendDecided {
                        to: peer,
                        block,
                        certificate,
                    });
                }
                None => break,
            }
        }
        Ok(())
    }

    fn request_sync(&mut self, now: TimestampMs, peer: ValidatorIndex, out: &mut Vec<Action>) {
        if self.core.own_index() == Some(peer) {
            return;
        }
        if let Some(at_ms) = self.sync_requested_at_ms
            && now.0 < at_ms.saturating_add(self.config.sync_retry_ms)
        {
            return;
        }
        self.sync_requested_at_ms = Some(now.0);
        out.push(Action::RequestSync {
            to: peer,
            height: self.core.height().0,
        });
    }

    fn load_decided(&self, height: u64) -> Result<Option<(Block, CommitCertificate)>, ChainError> {
        let Some(stored) = self.store.committed_block(height)? else {
            return Ok(None);
        };
        let block =
            Block::decode(&stored.block).map_err(|e| ChainError::StoredRecordUndecodable {
                what: "block",
                height,
                detail: e.to_string(),
            })?;
        let certificate = CommitCertificate::decode(&stored.certificate).map_err(|e| {
            ChainError::StoredRecordUndecodable {
                what: "certificate",
                height,
                detail: e.to_string(),
            }
        })?;
        Ok(Some((block, certificate)))
    }

    fn on_decided(
        &mut self,
        now: TimestampMs,
        from: Option<ValidatorIndex>,
        block: Block,
        certificate: CommitCertificate,
        out: &mut Vec<Action>,
    ) -> Result<(), ChainError> {
        let current = self.core.height().0;
        let height = certificate.height.0;
        if height < current {
            return Ok(());
        }
        if height > current {
            let within = height - current <= self.config.sync_buffer_max;
            if within && self.certifies(&block, &certificate) {
                self.future_decided.insert(height, (block, certificate));
            }
            if let Some(peer) = from {
                self.request_sync(now, peer, out);
            }
            return Ok(());
        }
        self.feed(
            now,
            Input::Decided {
                value: block,
                certificate,
            },
            None,
            out,
        )?;
        // Applied: ask the same peer for what follows, unless it is already here.
        let next = self.core.height().0;
        if next > current
            && !self.future_decided.contains_key(&next)
            && let Some(peer) = from
            && self.core.own_index() != Some(peer)
        {
            out.push(Action::RequestSync {
                to: peer,
                height: next,
            });
        }
        Ok(())
    }

    /// Whether `certificate` proves `block` (checked before buffering a future decision, so
    /// that a peer cannot fill the buffer with junk).
    fn certifies(&self, block: &Block, certificate: &CommitCertificate) -> bool {
        certificate.value_id == block.id()
            && block.is_consistent()
            && certificate
                .verify(&self.validators, self.rules.chain_id)
                .is_ok()
    }

    fn apply_buffered_decisions(
        &mut self,
        now: TimestampMs,
        out: &mut Vec<Action>,
    ) -> Result<(), ChainError> {
        loop {
            let current = self.core.height().0;
            self.future_decided = self.future_decided.split_off(&current);
            let Some((block, certificate)) = self.future_decided.remove(&current) else {
                return Ok(());
            };
            self.feed(
                now,
                Input::Decided {
                    value: block,
                    certificate,
                },
                None,
                out,
            )?;
            if self.core.height().0 == current {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, CHAIN, GENESIS_TIME};
    use dex_consensus::ConsensusConfig;
    use dex_storage::{ChainStoreConfig, MemStore};

    /// Four replicas on a lossless, in-order network: messages before timers.
    struct Cluster {
        replicas: Vec<Replica<MemStore>>,
        position: BTreeMap<ValidatorIndex, usize>,
        now: u64,
        inbox: VecDeque<(usize, Event)>,
        timers: BTreeMap<(u64, u64), (usize, Timer)>,
        sequence: u64,
        rounds_after_the_first: usize,
    }

    impl Cluster {
        fn new() -> Cluster {
            let mut consensus = ConsensusConfig::new(CHAIN);
            consensus.propose_batch_ms = 10;
            let mut config = ReplicaConfig::new(consensus);
            config.block_txs_max = 16;
            let set = testkit::validator_set(4);
            let mut cluster = Cluster {
                replicas: Vec::new(),
                position: BTreeMap::new(),
                now: GENESIS_TIME.0,
                inbox: VecDeque::new(),
                timers: BTreeMap::new(),
                sequence: 0,
                rounds_after_the_first: 0,
            };
            for i in 0..4 {
                let key = testkit::validator_key(i);
                let index = set.index_of(&key.verifying_key()).unwrap();
                cluster.position.insert(index, i);
                let store = ChainStore::open(MemStore::new(), ChainStoreConfig::default()).unwrap();
                let mut out = Vec::new();
                let replica = Replica::open(
                    store,
                    &testkit::genesis(),
                    set.clone(),
                    Some(key),
                    config.clone(),
                    TimestampMs(cluster.now),
                    &mut out,
                )
                .unwrap();
                cluster.replicas.push(replica);
                cluster.carry_out(i, out);
            }
            cluster
        }

        fn carry_out(&mut self, from: usize, actions: Vec<Action>) {
            for action in actions {
                match action {
                    Action::Broadcast(message) => {
                        for to in (0..4).filter(|&to| to != from) {
                            self.inbox.push_back((to, Event::Message(message.clone())));
                        }
                    }
                    Action::SendTo { to, message } => {
                        self.inbox
                            .push_back((self.position[&to], Event::Message(message)));
                    }
                    Action::GossipTransaction(signed) => {
                        for to in (0..4).filter(|&to| to != from) {
                            self.inbox
                                .push_back((to, Event::Transaction(signed.clone())));
                        }
                    }
                    Action::SetTimer { timer, after_ms } => {
                        self.sequence += 1;
                        self.timers
                            .insert((self.now + after_ms, self.sequence), (from, timer));
                    }
                    Action::EnteredRound { round, .. } => {
                        self.rounds_after_the_first += usize::from(round.0 > 0);
                    }
                    Action::SendDecided { .. }
                    | Action::RequestSync { .. }
                    | Action::Committed(_)
                    | Action::Evidence(_) => {}
                }
            }
        }

        fn deliver(&mut self, to: usize, event: Event) {
            let mut out = Vec::new();
            self.replicas[to]
                .handle(TimestampMs(self.now), event, &mut out)
                .unwrap();
            self.carry_out(to, out);
        }

        fn run_until(&mut self, height: u64) {
            for _ in 0..50_000 {
                if self.replicas.iter().all(|r| r.head().height >= height) {
                    return;
                }
                if let Some((to, event)) = self.inbox.pop_front() {
                    self.deliver(to, event);
                } else if let Some(((at, _), (to, timer))) = self.timers.pop_first() {
                    self.now = self.now.max(at);
                    self.deliver(to, Event::Timer(timer));
                } else {
                    panic!("nothing left to do before height {height}");
                }
            }
            panic!("height {height} not reached");
        }
    }

    /// Each validator executes each block once: the proposer keeps the execution of the
    /// block it built (it does not check its own proposal again), the others keep the one
    /// of their check, and both reuse it to vote and to commit.
    #[test]
    fn each_block_is_executed_once_per_validator() {
        let mut cluster = Cluster::new();
        for n in 0..4 {
            let signed = testkit::transfer(n, 1);
            cluster.deliver(n as usize, Event::Transaction(signed));
        }
        cluster.deliver(1, Event::Transaction(testkit::order(4, 1)));
        cluster.run_until(6);
        assert_eq!(
            cluster.rounds_after_the_first, 0,
            "every height decided in its first round, so every execution was of a decided block"
        );
        for replica in &cluster.replicas {
            let stats = replica.stats();
            assert_eq!(stats.blocks_committed, replica.head().height);
            assert_eq!(stats.blocks_executed, stats.blocks_committed);
            assert!(stats.blocks_proposed > 0);
        }
        let roots: Vec<Hash> = cluster
            .replicas
            .iter()
            .map(|r| r.ledger().state_root())
            .collect();
        assert!(roots.windows(2).all(|w| w[0] == w[1]));
    }
}
