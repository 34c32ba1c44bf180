//! The round state machine: Tendermint's Algorithm 1 driven by [`Input`]s, answering with
//! [`Effect`]s. Comments `Alg.1 Lx` name the pseudocode lines of Buchman, Kwon and
//! Milosevic, "The latest gossip on BFT consensus" (2018) that a transition implements.

use crate::certificate::{CertificateError, CommitCertificate, PolkaCertificate};
use crate::config::{ConfigError, ConsensusConfig};
use crate::evidence::Evidence;
use crate::keeper::{Added, RoundVotes};
use crate::messages::{ConsensusValue, Message, MessageError, Proposal, ProposalMessage, Vote};
use crate::messages::{SignedVote, VerifiedMessage};
use crate::types::{Height, Round, Step, Timeout, TimeoutKind, ValidatorIndex, VoteType};
use crate::validators::ValidatorSet;
use crate::wal::WalEntry;
use dex_types::Hash;
use ed25519_dalek::SigningKey;
use std::collections::{BTreeMap, VecDeque};

/// Something that happened to the validator, fed to [`Consensus::handle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<V> {
    /// A proposal from the network (signature not yet checked).
    Proposal(ProposalMessage<V>),
    /// A prevote or precommit from the network (signature not yet checked).
    Vote(SignedVote),
    /// A proposal or vote whose signatures the host already checked
    /// ([`Message::into_verified`]); checked again only if it was checked against another
    /// chain or another key for its signer.
    Verified(Box<VerifiedMessage<V>>),
    /// A timer from [`Effect::ScheduleTimeout`] fired.
    Timeout(Timeout),
    /// The host's verdict on a value from [`Effect::ValidateProposal`]: whether the block
    /// extends the parent, has an acceptable timestamp, and executes to the roots its
    /// header claims.
    ProposalValidated {
        /// Height of the request.
        height: Height,
        /// Round of the request.
        round: Round,
        /// The value's id.
        value_id: Hash,
        /// The verdict.
        valid: bool,
    },
    /// The value to propose, answering [`Effect::RequestValue`]. The host must only
    /// propose a value it would itself validate: the core prevotes its own value without
    /// asking.
    ProposeValue {
        /// Height of the request.
        height: Height,
        /// Round of the request.
        round: Round,
        /// The value.
        value: V,
    },
    /// A decided value with its certificate, fetched from a peer because this node fell
    /// behind. Must be for the current height; the certificate is verified here.
    Decided {
        /// The decided value.
        value: V,
        /// Its commit certificate.
        certificate: CommitCertificate,
    },
}

/// Something the host must do. Effects are returned in the order they must be carried
/// out, and a [`Effect::Persist`] must be durable (written and synced) before any effect
/// after it is carried out: that is what guarantees a crashed validator never sends a
/// message it could forget it signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<V> {
    /// Append this entry (an own signed message, or the new valid value) to the
    /// write-ahead log and sync it. Pass the log of the current height to
    /// [`Consensus::restore`] after a restart.
    Persist(WalEntry<V>),
    /// Send this message to every validator (own messages, already persisted).
    Broadcast(Message<V>),
    /// Send this message to one validator that is behind in rounds: this validator's own
    /// earlier-round messages, which that one still needs (already persisted). A host
    /// without direct sends may broadcast it instead.
    SendTo {
        /// The validator to send to.
        to: ValidatorIndex,
        /// The message.
        message: Message<V>,
    },
    /// Fire [`Input::Timeout`] with `timeout` after `duration_ms` of the host's clock. Stale
    /// timeouts are ignored, so none ever needs cancelling.
    ScheduleTimeout {
        /// The timer to fire back.
        timeout: Timeout,
        /// How long to wait.
        duration_ms: u64,
    },
    /// This validator proposes at `(height, round)`: answer with [`Input::ProposeValue`].
    /// The host may wait up to `batch_ms` for transactions to fill the block.
    RequestValue {
        /// Height to propose at.
        height: Height,
        /// Round to propose at.
        round: Round,
        /// The batching interval ([`ConsensusConfig::propose_batch_ms`]).
        batch_ms: u64,
    },
    /// Check and execute `value` against the committed parent state, and answer with
    /// [`Input::ProposalValidated`]. Asked at most once per value per height.
    ValidateProposal {
        /// Height of the proposal.
        height: Height,
        /// Round the proposal was made in.
        round: Round,
        /// The value to validate.
        value: V,
    },
    /// Commit `value`: it is decided at `certificate.height`. The host writes block,
    /// certificate and state atomically before carrying out later effects (which already
    /// belong to the next height).
    Decide {
        /// The decided value.
        value: V,
        /// Precommits of more than two thirds of the power for it.
        certificate: CommitCertificate,
    },
    /// A validator equivocated; record the evidence (it is already verified).
    RecordEvidence(Evidence),
    /// A new height began (after a decision, or at start-up); the host may prune the
    /// write-ahead log below it.
    StartHeight {
        /// The new height.
        height: Height,
    },
    /// A round began (informational: metrics, logs, simulator latency).
    EnterRound {
        /// Current height.
        height: Height,
        /// The round entered.
        round: Round,
        /// The round's proposer.
        proposer: ValidatorIndex,
    },
}

/// Why an input was rejected. Nothing changed in the core, except where noted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    /// The message is invalid on its own (chain, signer, signature, value id).
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The message is for a height this node already decided. Its sender is behind: the
    /// host may send it the decided block with its certificate.
    #[error(
        "message from validator {sender} is for height {height}, which is already decided (now at {current})"
    )]
    HeightBehind {
        /// The message's height.
        height: Height,
        /// This node's height.
        current: Height,
        /// The sender, who is behind.
        sender: ValidatorIndex,
    },
    /// The message is for a height too far ahead to buffer: this node is behind and the
    /// host should fetch decided blocks with certificates from peers.
    #[error(
        "message is for height {height}, more than {max_ahead} above the current height {current}"
    )]
    HeightTooFarAhead {
        /// The message's height.
        height: Height,
        /// This node's height.
        current: Height,
        /// [`ConsensusConfig::max_height_ahead`].
        max_ahead: u64,
    },
    /// The message's round is too far ahead to keep. Only the sender's round was noted,
    /// for the round-skip rule; the sender re-sends once this node catches up.
    #[error(
        "message is for round {round}, more than {max_ahead} above the current round {current}"
    )]
    RoundTooFarAhead {
        /// The message's round.
        round: Round,
        /// This node's round.
        current: Round,
        /// [`ConsensusConfig::max_round_ahead`].
        max_ahead: u32,
    },
    /// The message's round was already forgotten.
    #[error("message is for round {round}, below the oldest round kept ({oldest_kept})")]
    RoundTooOld {
        /// The message's round.
        round: Round,
        /// The oldest round still kept.
        oldest_kept: Round,
    },
    /// A proposal signed by a validator that is not the round's proposer.
    #[error(
        "proposal for height {height} round {round} is from validator {got}, but the proposer is {expected}"
    )]
    WrongProposer {
        /// The height.
        height: Height,
        /// The round.
        round: Round,
        /// The proposer of that round.
        expected: ValidatorIndex,
        /// The signer.
        got: ValidatorIndex,
    },
    /// [`Input::ProposeValue`] for the current round, but this validator is not its
    /// proposer: a host bug.
    #[error(
        "asked to propose at height {height} round {round}, but this validator is not its proposer"
    )]
    NotProposer {
        /// The height.
        height: Height,
        /// The round.
        round: Round,
    },
    /// A synced decision whose certificate does not verify.
    #[error("synced certificate is invalid: {0}")]
    Certificate(#[from] CertificateError),
    /// A synced decision for another height than the current one (sync must go in order).
    #[error(
        "synced decision is for height {certificate_height}, but this node is at height {current}"
    )]
    SyncHeightMismatch {
        /// The certificate's height.
        certificate_height: Height,
        /// This node's height.
        current: Height,
    },
    /// A synced value whose id is not the one certified.
    #[error("synced value has id {value_id}, but the certificate is for {certified}")]
    SyncValueMismatch {
        /// The value's id.
        value_id: Hash,
        /// The certified id.
        certified: Hash,
    },
}

/// Why a core could not be constructed or restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// The configuration is unusable.
    #[error("invalid consensus configuration: {0}")]
    Config(#[from] ConfigError),
    /// The signing key given is not one of the validators' keys.
    #[error("the signing key is not in the validator set")]
    NotAValidator,
    /// The write-ahead log holds a message for a height above the one to start at: the
    /// store lost a commit the log depends on.
    #[error(
        "write-ahead log has a message for height {entry_height}, above the start height {height}"
    )]
    WalAheadOfHeight {
        /// The entry's height.
        entry_height: Height,
        /// The requested start height.
        height: Height,
    },
    /// The write-ahead log holds a message not signed by this validator.
    #[error("write-ahead log has a message signed by validator {signer}, not by this node")]
    WalForeignEntry {
        /// The entry's signer.
        signer: ValidatorIndex,
    },
    /// A write-ahead log entry does not verify (corrupted log or wrong chain).
    #[error("write-ahead log entry does not verify: {0}")]
    WalInvalidEntry(MessageError),
    /// The write-ahead log holds two conflicting messages for one slot: this validator
    /// already equivocated, so the log cannot be trusted to prevent it.
    #[error("write-ahead log has two conflicting messages in round {round}")]
    WalConflict {
        /// The round of the conflict.
        round: Round,
    },
}

/// The host's verdict on a value, per height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Validity {
    /// Asked, no answer yet.
    Pending,
    Valid,
    Invalid,
}

/// This validator's signing identity.
#[derive(Debug)]
struct LocalSigner {
    key: SigningKey,
    index: ValidatorIndex,
}

/// One validator's (or an observer's) Tendermint state machine for one chain.
///
/// Pure and synchronous: [`handle`](Consensus::handle) takes an [`Input`] and returns the
/// [`Effect`]s in execution order. It never reads a clock, never does IO, and holds a
/// bounded amount of memory whatever peers send.
#[derive(Debug)]
pub struct Consensus<V> {
    config: ConsensusConfig,
    validators: ValidatorSet,
    /// `None` for an observer that follows and decides but never signs.
    signer: Option<LocalSigner>,
    /// `h_p` (Alg.1 L2).
    height: Height,
    /// `round_p` (Alg.1 L3).
    round: Round,
    /// `step_p` (Alg.1 L4).
    step: Step,
    /// `lockedRound_p` and the id of `lockedValue_p` (Alg.1 L6-7); the rules only compare ids.
    locked: Option<(Round, Hash)>,
    /// `validRound_p` and `validValue_p` (Alg.1 L8-9); kept whole, for re-proposal.
    valid: Option<(Round, V)>,
    /// The polka of `validRound_p`, attached when re-proposing `validValue_p`.
    valid_polka: Option<PolkaCertificate>,
    /// The message log of the current height, by round.
    rounds: BTreeMap<Round, RoundVotes<V>>,
    /// The highest round each validator sent any message for at this height (Alg.1 L55).
    highest_round: BTreeMap<ValidatorIndex, Round>,
    /// The host's verdicts on this height's values.
    validity: BTreeMap<Hash, Validity>,
    /// This validator's signed votes at this height: never sign another for the same slot.
    own_votes: BTreeMap<(Round, VoteType), SignedVote>,
    /// This validator's signed proposals at this height.
    own_proposals: BTreeMap<Round, ProposalMessage<V>>,
    /// The round whose value was requested from the host and not yet given.
    awaiting_value: Option<Round>,
    /// Verified messages for heights above the current one, per sender, oldest first.
    future: BTreeMap<ValidatorIndex, VecDeque<Message<V>>>,
    /// Buffered messages of the current height waiting to be processed.
    replay: VecDeque<Message<V>>,
    /// The simulator's self-test switch: ignore the lock in the prevote rule.
    #[cfg(feature = "mutation-hooks")]
    ignore_lock: bool,
}

impl<V: ConsensusValue> Consensus<V> {
    /// A core starting fresh at `height` (nothing signed at that height yet). With a
    /// `signing_key` it is a validator; without, an observer. Returns the start-up effects.
    pub fn new(
        config: ConsensusConfig,
        validators: ValidatorSet,
        signing_key: Option<SigningKey>,
        height: Height,
    ) -> Result<(Consensus<V>, Vec<Effect<V>>), SetupError> {
        Consensus::restore(config, validators, signing_key, height, std::iter::empty())
    }

    /// A core resuming at `height` after a restart, from the entries it persisted
    /// ([`Effect::Persist`], in the order given). `height` is the lowest height not yet
    /// committed in the host's store; entries for lower heights are skipped, so the host
    /// may pass its whole log. The core resumes in the latest round it signed in, at the
    /// step its votes there show, re-sends what it signed there, schedules that step's
    /// timer, keeps its lock (the latest round it precommitted a value in) and its latest
    /// valid value, and will never sign a message that conflicts with a logged one.
    pub fn restore(
        config: ConsensusConfig,
        validators: ValidatorSet,
        signing_key: Option<SigningKey>,
        height: Height,
        wal: impl IntoIterator<Item = WalEntry<V>>,
    ) -> Result<(Consensus<V>, Vec<Effect<V>>), SetupError> {
        config.validate()?;
        let signer = match signing_key {
            None => None,
            Some(key) => {
                let index = validators
                    .index_of(&key.verifying_key())
                    .ok_or(SetupError::NotAValidator)?;
                Some(LocalSigner { key, index })
            }
        };
        let mut core = Consensus {
            config,
            validators,
            signer,
            height,
            round: Round(0),
            step: Step::Propose,
            locked: None,
            valid: None,
            valid_polka: None,
            rounds: BTreeMap::new(),
            highest_round: BTreeMap::new(),
            validity: BTreeMap::new(),
            own_votes: BTreeMap::new(),
            own_proposals: BTreeMap::new(),
            awaiting_value: None,
            future: BTreeMap::new(),
            replay: VecDeque::new(),
            #[cfg(feature = "mutation-hooks")]
            ignore_lock: false,
        };
        core.load_wal(wal)?;
        let mut out = vec![Effect::StartHeight { height }];
        core.begin_round(&mut out);
        core.run_rules(&mut out);
        Ok((core, out))
    }

    fn load_wal(&mut self, wal: impl IntoIterator<Item = WalEntry<V>>) -> Result<(), SetupError> {
        for entry in wal {
            let entry_height = entry.height();
            if entry_height < self.height {
                continue;
            }
            if entry_height > self.height {
                return Err(SetupError::WalAheadOfHeight {
                    entry_height,
                    height: self.height,
                });
            }
            let entry = match entry {
                WalEntry::Signed(message) => message,
                WalEntry::Valid { value, polka } => {
                    self.load_valid(value, polka)?;
                    continue;
                }
            };
            let signer = entry.signer();
            if self.own_index() != Some(signer) {
                return Err(SetupError::WalForeignEntry { signer });
            }
            entry
                .verify(&self.validators, self.config.chain_id)
                .map_err(SetupError::WalInvalidEntry)?;
            let round = entry.round();
            match entry {
                Message::Vote(vote) => {
                    let slot = (round, vote.vote.vote_type);
                    match self.own_votes.get(&slot) {
                        Some(logged) if logged.vote.value_id != vote.vote.value_id => {
                            return Err(SetupError::WalConflict { round });
                        }
                        Some(_) => continue,
                        None => {}
                    }
                    self.own_votes.insert(slot, vote);
                    let power = self.validators.power_of(signer);
                    self.round_mut(round)
                        .votes_mut(vote.vote.vote_type)
                        .add(vote, power);
                }
                Message::Proposal(proposal) => {
                    let id = proposal.signed.proposal.value_id;
                    match self.own_proposals.get(&round) {
                        Some(logged) if logged.signed.proposal.value_id != id => {
                            return Err(SetupError::WalConflict { round });
                        }
                        Some(_) => continue,
                        None => {}
                    }
                    // This validator built the value, so it held it valid.
                    self.validity.insert(id, Validity::Valid);
                    self.own_proposals.insert(round, proposal.clone());
                    self.round_mut(round).add_proposal(proposal);
                }
            }
            self.round = self.round.max(round);
        }
        // Alg.1 L36-41: the lock only ever changes together with a precommit for a value, so
        // the latest such precommit is exactly the lock held before the crash.
        self.locked = self
            .own_votes
            .iter()
            .rev()
            .filter(|((_, vote_type), _)| *vote_type == VoteType::Precommit)
            .find_map(|((round, _), vote)| vote.vote.value_id.map(|id| (*round, id)));
        self.step = if self
            .own_votes
            .contains_key(&(self.round, VoteType::Precommit))
        {
            Step::Precommit
        } else if self
            .own_votes
            .contains_key(&(self.round, VoteType::Prevote))
        {
            Step::Prevote
        } else {
            Step::Propose
        };
        if let Some(index) = self.own_index()
            && (!self.own_votes.is_empty() || !self.own_proposals.is_empty())
        {
            self.highest_round.insert(index, self.round);
        }
        Ok(())
    }

    /// Take a logged valid value back if it is the latest one.
    fn load_valid(&mut self, value: V, polka: PolkaCertificate) -> Result<(), SetupError> {
        let id = value.id();
        if !value.is_consistent() {
            return Err(SetupError::WalInvalidEntry(
                MessageError::InconsistentValue { id },
            ));
        }
        if polka.value_id != id {
            return Err(SetupError::WalInvalidEntry(MessageError::PolkaMismatch));
        }
        polka
            .verify(&self.validators, self.config.chain_id)
            .map_err(|e| SetupError::WalInvalidEntry(MessageError::InvalidPolka(e)))?;
        if self
            .valid
            .as_ref()
            .is_some_and(|(round, _)| *round >= polka.round)
        {
            return Ok(());
        }
        // It had a polka and this validator held it valid.
        self.validity.insert(id, Validity::Valid);
        self.valid = Some((polka.round, value));
        self.valid_polka = Some(polka);
        Ok(())
    }

    /// Process one input; returns the effects to carry out, in order.
    pub fn handle(&mut self, input: Input<V>) -> Result<Vec<Effect<V>>, ConsensusError> {
        let mut out = Vec::new();
        match input {
            Input::Proposal(proposal) => {
                self.admit(Message::Proposal(proposal), false, &mut out)?
            }
            Input::Vote(vote) => self.admit(Message::Vote(vote), false, &mut out)?,
            Input::Verified(verified) => {
                let trusted = verified.checked_against(&self.validators, self.config.chain_id);
                self.admit((*verified).into_message(), trusted, &mut out)?
            }
            Input::Timeout(timeout) => self.on_timeout(timeout, &mut out),
            Input::ProposalValidated {
                height,
                round: _,
                value_id,
                valid,
            } => self.on_validated(height, value_id, valid),
            Input::ProposeValue {
                height,
                round,
                value,
            } => self.on_propose_value(height, round, value, &mut out)?,
            Input::Decided { value, certificate } => {
                self.on_decided(value, certificate, &mut out)?
            }
        }
        self.run_rules(&mut out);
        Ok(out)
    }

    // ----- accessors -----

    /// The height being decided (`h_p`).
    pub fn height(&self) -> Height {
        self.height
    }

    /// The current round (`round_p`).
    pub fn round(&self) -> Round {
        self.round
    }

    /// The current step (`step_p`).
    pub fn step(&self) -> Step {
        self.step
    }

    /// `lockedRound_p` and the id of `lockedValue_p`.
    pub fn locked(&self) -> Option<(Round, Hash)> {
        self.locked
    }

    /// `validRound_p` and the id of `validValue_p`.
    pub fn valid(&self) -> Option<(Round, Hash)> {
        self.valid
            .as_ref()
            .map(|(round, value)| (*round, value.id()))
    }

    /// This validator's index, or `None` for an observer.
    pub fn own_index(&self) -> Option<ValidatorIndex> {
        self.signer.as_ref().map(|s| s.index)
    }

    /// The validator set.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The configuration.
    pub fn config(&self) -> &ConsensusConfig {
        &self.config
    }

    /// For the simulator's self-test only (feature `mutation-hooks`): ignore the lock in
    /// the prevote rule (Alg.1 L23, L29), which breaks safety on purpose so the simulator
    /// can show its checks catch it. Never used by a node.
    #[cfg(feature = "mutation-hooks")]
    pub fn set_ignore_lock(&mut self, ignore: bool) {
        self.ignore_lock = ignore;
    }

    // ----- message intake -----

    /// Check a message and record it in the log of its round (or buffer it for a later
    /// height). `verified` skips the signature check for messages verified on arrival.
    fn admit(
        &mut self,
        message: Message<V>,
        verified: bool,
        out: &mut Vec<Effect<V>>,
    ) -> Result<(), ConsensusError> {
        let height = message.height();
        let round = message.round();
        let sender = message.signer();
        if height < self.height {
            return Err(ConsensusError::HeightBehind {
                height,
                current: self.height,
                sender,
            });
        }
        let max_ahead = self.config.max_height_ahead;
        if height.0 - self.height.0 > max_ahead {
            return Err(ConsensusError::HeightTooFarAhead {
                height,
                current: self.height,
                max_ahead,
            });
        }
        if let Message::Proposal(_) = &message {
            let expected = self.validators.proposer(height, round);
            if sender != expected {
                return Err(ConsensusError::WrongProposer {
                    height,
                    round,
                    expected,
                    got: sender,
                });
            }
        }
        if !verified {
            message.verify(&self.validators, self.config.chain_id)?;
        }
        if height > self.height {
            let queue = self.future.entry(sender).or_default();
            if queue.len() >= self.config.buffered_messages_per_validator {
                queue.pop_front();
            }
            queue.push_back(message);
            return Ok(());
        }

        let noted = self.highest_round.entry(sender).or_insert(round);
        *noted = (*noted).max(round);
        let max_round_ahead = self.config.max_round_ahead;
        if round.0.saturating_sub(self.round.0) > max_round_ahead {
            // Alg.1 L55 may still move this node up to the round of this message.
            let skipped = match self.round_skip_target() {
                Some(target) => {
                    self.start_round(target, out);
                    true
                }
                None => false,
            };
            if round.0.saturating_sub(self.round.0) > max_round_ahead {
                return if !skipped {
                    Err(ConsensusError::RoundTooFarAhead {
                        round,
                        current: self.round,
                        max_ahead: max_round_ahead,
                    })
                } else {
                    // The round skipped; the sender re-sends this message later.
                    Ok(())
                };
            }
        }
        if !self.keeps_round(round) {
            return Err(ConsensusError::RoundTooOld {
                round,
                oldest_kept: self.oldest_kept_round(),
            });
        }

        match message {
            Message::Vote(vote) => {
                let power = self.validators.power_of(sender);
                if let Added::Conflict(first) = self
                    .round_mut(round)
                    .votes_mut(vote.vote.vote_type)
                    .add(vote, power)
                {
                    out.push(Effect::RecordEvidence(Evidence::conflicting_votes(
                        first, vote,
                    )));
                }
            }
            Message::Proposal(proposal) => {
                let signed = proposal.signed;
                let id = signed.proposal.value_id;
                // Proposals of later rounds are validated when their round begins.
                let value = (round <= self.round).then(|| proposal.value.clone());
                match self.round_mut(round).add_proposal(proposal) {
                    Added::New => {}
                    Added::Conflict(first) => out.push(Effect::RecordEvidence(
                        Evidence::conflicting_proposals(first, signed),
                    )),
                    Added::Duplicate | Added::Dropped => return Ok(()),
                }
                if let Some(value) = value {
                    self.request_validation(round, id, value, out);
                }
            }
        }
        Ok(())
    }

    fn round_mut(&mut self, round: Round) -> &mut RoundVotes<V> {
        self.rounds.entry(round).or_default()
    }

    fn oldest_kept_round(&self) -> Round {
        Round(self.round.0.saturating_sub(self.config.max_rounds_behind))
    }

    /// Whether messages of `round` are kept: recent rounds, and the locked and valid rounds
    /// (Alg.1 L28 needs the prevotes of a proposal's valid round).
    fn keeps_round(&self, round: Round) -> bool {
        round >= self.oldest_kept_round()
            || self.locked.is_some_and(|(r, _)| r == round)
            || self.valid.as_ref().is_some_and(|(r, _)| *r == round)
    }

    fn request_validation(&mut self, round: Round, id: Hash, value: V, out: &mut Vec<Effect<V>>) {
        if self.validity.contains_key(&id) {
            return;
        }
        self.validity.insert(id, Validity::Pending);
        out.push(Effect::ValidateProposal {
            height: self.height,
            round,
            value,
        });
    }

    // ----- other inputs -----

    fn on_timeout(&mut self, timeout: Timeout, out: &mut Vec<Effect<V>>) {
        if timeout.height != self.height || timeout.round != self.round {
            return;
        }
        match timeout.kind {
            // Alg.1 L57-60.
            TimeoutKind::Propose if self.step == Step::Propose => {
                self.cast_vote(VoteType::Prevote, None, out);
                self.step = Step::Prevote;
            }
            // Alg.1 L61-64.
            TimeoutKind::Prevote if self.step == Step::Prevote => {
                self.cast_vote(VoteType::Precommit, None, out);
                self.step = Step::Precommit;
            }
            // Alg.1 L65-67.
            TimeoutKind::Precommit => self.start_round(self.round.next(), out),
            TimeoutKind::Rebroadcast => {
                self.rebroadcast(out);
                self.help_laggards(out);
                self.schedule(TimeoutKind::Rebroadcast, out);
            }
            TimeoutKind::Propose | TimeoutKind::Prevote => {}
        }
    }

    fn on_validated(&mut self, height: Height, value_id: Hash, valid: bool) {
        if height != self.height {
            return;
        }
        if let Some(verdict) = self.validity.get_mut(&value_id)
            && *verdict == Validity::Pending
        {
            *verdict = if valid {
                Validity::Valid
            } else {
                Validity::Invalid
            };
        }
    }

    fn on_propose_value(
        &mut self,
        height: Height,
        round: Round,
        value: V,
        out: &mut Vec<Effect<V>>,
    ) -> Result<(), ConsensusError> {
        if height != self.height || round != self.round {
            return Ok(()); // an answer that arrived after its round ended
        }
        if self.own_index() != Some(self.validators.proposer(height, round)) {
            return Err(ConsensusError::NotProposer { height, round });
        }
        if !value.is_consistent() {
            return Err(MessageError::InconsistentValue { id: value.id() }.into());
        }
        if self.awaiting_value == Some(round) {
            self.awaiting_value = None;
            self.propose(value, None, out);
        }
        Ok(())
    }

    fn on_decided(
        &mut self,
        value: V,
        certificate: CommitCertificate,
        out: &mut Vec<Effect<V>>,
    ) -> Result<(), ConsensusError> {
        if certificate.height != self.height {
            return Err(ConsensusError::SyncHeightMismatch {
                certificate_height: certificate.height,
                current: self.height,
            });
        }
        let value_id = value.id();
        if value_id != certificate.value_id {
            return Err(ConsensusError::SyncValueMismatch {
                value_id,
                certified: certificate.value_id,
            });
        }
        if !value.is_consistent() {
            return Err(MessageError::InconsistentValue { id: value_id }.into());
        }
        certificate.verify(&self.validators, self.config.chain_id)?;
        out.push(Effect::Decide { value, certificate });
        self.enter_height(self.height.next(), out);
        Ok(())
    }

    // ----- rounds -----

    /// Alg.1 L11-13: StartRound.
    fn start_round(&mut self, round: Round, out: &mut Vec<Effect<V>>) {
        assert!(round > self.round, "bug: rounds only move forward");
        self.round = round;
        self.step = Step::Propose;
        self.awaiting_value = None;
        self.prune();
        self.begin_round(out);
    }

    /// Enter `self.round` in `self.step`: after StartRound the step is propose; after a
    /// restart it is whatever the write-ahead log shows.
    fn begin_round(&mut self, out: &mut Vec<Effect<V>>) {
        let proposer = self.validators.proposer(self.height, self.round);
        out.push(Effect::EnterRound {
            height: self.height,
            round: self.round,
            proposer,
        });
        // Alg.1 L21 schedules the propose timeout only at non-proposers; here the proposer
        // schedules it too, because its value comes asynchronously from the host and the
        // round must not wait forever on a host that does not answer. After a restart the
        // timer of the step reached is scheduled, since the messages that would schedule
        // it were lost.
        let kind = match self.step {
            Step::Propose => TimeoutKind::Propose,
            Step::Prevote => TimeoutKind::Prevote,
            Step::Precommit => TimeoutKind::Precommit,
        };
        self.schedule(kind, out);
        if self.signer.is_some() && self.config.rebroadcast_ms > 0 {
            self.schedule(TimeoutKind::Rebroadcast, out);
        }
        if self.step == Step::Propose && self.own_index() == Some(proposer) {
            if let Some(proposal) = self.own_proposals.get(&self.round) {
                // Proposed before a restart: send the same proposal again, never another.
                out.push(Effect::Broadcast(Message::Proposal(proposal.clone())));
            } else if let Some((valid_round, value)) = self.valid.clone() {
                // Alg.1 L14-16: re-propose validValue with its validRound.
                self.propose(value, Some(valid_round), out);
            } else {
                // Alg.1 L17-18: getValue(), answered later by Input::ProposeValue.
                self.awaiting_value = Some(self.round);
                out.push(Effect::RequestValue {
                    height: self.height,
                    round: self.round,
                    batch_ms: self.config.propose_batch_ms,
                });
            }
        } else if self.step > Step::Propose {
            self.rebroadcast(out);
        }
        // Proposals that arrived early for this round are validated now.
        let early: Vec<(Hash, V)> = self
            .rounds
            .get(&self.round)
            .map(|r| {
                r.proposals
                    .iter()
                    .map(|p| (p.signed.proposal.value_id, p.value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (id, value) in early {
            self.request_validation(self.round, id, value, out);
        }
    }

    /// Alg.1 L19: sign and broadcast a proposal, and take it into the own log.
    fn propose(&mut self, value: V, valid_round: Option<Round>, out: &mut Vec<Effect<V>>) {
        let Some(signer) = &self.signer else {
            panic!("bug: an observer never proposes")
        };
        assert!(
            !self.own_proposals.contains_key(&self.round),
            "bug: proposing twice in one round"
        );
        let id = value.id();
        let signed = Proposal {
            chain_id: self.config.chain_id,
            height: self.height,
            round: self.round,
            valid_round,
            value_id: id,
            proposer: signer.index,
        }
        .sign(&signer.key);
        // A re-proposal carries the polka of its valid round when this validator still has
        // it, so that validators that missed those prevotes can still accept it (Alg.1 L28).
        let polka = self
            .valid_polka
            .clone()
            .filter(|p| Some(p.round) == valid_round && p.value_id == id);
        let message = ProposalMessage {
            signed,
            value,
            polka,
        };
        self.own_proposals.insert(self.round, message.clone());
        out.push(Effect::Persist(WalEntry::Signed(Message::Proposal(
            message.clone(),
        ))));
        out.push(Effect::Broadcast(Message::Proposal(message.clone())));
        // A value this validator built (or already saw valid) needs no validation.
        if self.validity.get(&id) != Some(&Validity::Invalid) {
            self.validity.insert(id, Validity::Valid);
        }
        let round = self.round;
        let index = signer.index;
        self.highest_round.insert(index, round);
        self.round_mut(round).add_proposal(message);
    }

    /// Sign (or re-send) this validator's vote of `vote_type` in the current round and
    /// count it. Observers only change step.
    fn cast_vote(&mut self, vote_type: VoteType, value_id: Option<Hash>, out: &mut Vec<Effect<V>>) {
        let Some(signer) = &self.signer else { return };
        let slot = (self.round, vote_type);
        if let Some(signed) = self.own_votes.get(&slot) {
            // Signed before a restart: that vote stands, whatever the rules say now.
            out.push(Effect::Broadcast(Message::Vote(*signed)));
            return;
        }
        let signed = Vote {
            chain_id: self.config.chain_id,
            height: self.height,
            round: self.round,
            vote_type,
            value_id,
            validator: signer.index,
        }
        .sign(&signer.key);
        let index = signer.index;
        self.own_votes.insert(slot, signed);
        out.push(Effect::Persist(WalEntry::Signed(Message::Vote(signed))));
        out.push(Effect::Broadcast(Message::Vote(signed)));
        let power = self.validators.power_of(index);
        let round = self.round;
        self.highest_round.insert(index, round);
        self.round_mut(round)
            .votes_mut(vote_type)
            .add(signed, power);
    }

    fn schedule(&self, kind: TimeoutKind, out: &mut Vec<Effect<V>>) {
        out.push(Effect::ScheduleTimeout {
            timeout: Timeout {
                height: self.height,
                round: self.round,
                kind,
            },
            duration_ms: self.config.timeout_ms(kind, self.round),
        });
    }

    /// Re-send this validator's messages of the current round.
    fn rebroadcast(&self, out: &mut Vec<Effect<V>>) {
        if let Some(proposal) = self.own_proposals.get(&self.round) {
            out.push(Effect::Broadcast(Message::Proposal(proposal.clone())));
        }
        for vote_type in [VoteType::Prevote, VoteType::Precommit] {
            if let Some(vote) = self.own_votes.get(&(self.round, vote_type)) {
                out.push(Effect::Broadcast(Message::Vote(*vote)));
            }
        }
    }

    /// Send validators that are behind in rounds this validator's own messages of the round
    /// they are in. A validator that left round `r` by the precommit timeout (Alg.1 L65)
    /// saw 2f+1 precommits of `r`; one still in `r` may have lost some of them, and the
    /// current-round rebroadcast never resends them. Without this, two validators stuck in
    /// `r` waiting for a third one's lost precommit, while the third waits in `r+1` for
    /// their prevotes, would wait forever. Runs on the rebroadcast timer, so the traffic is
    /// bounded by the validator count per interval, whatever peers send.
    fn help_laggards(&self, out: &mut Vec<Effect<V>>) {
        let Some(own) = self.own_index() else { return };
        for (&validator, &their_round) in &self.highest_round {
            if validator == own || their_round >= self.round {
                continue;
            }
            if let Some(proposal) = self.own_proposals.get(&their_round) {
                out.push(Effect::SendTo {
                    to: validator,
                    message: Message::Proposal(proposal.clone()),
                });
            }
            for vote_type in [VoteType::Prevote, VoteType::Precommit] {
                if let Some(vote) = self.own_votes.get(&(their_round, vote_type)) {
                    out.push(Effect::SendTo {
                        to: validator,
                        message: Message::Vote(*vote),
                    });
                }
            }
        }
    }

    /// Forget rounds that fell out of the window, keeping the locked and valid rounds.
    fn prune(&mut self) {
        let oldest = self.oldest_kept_round();
        let locked = self.locked.map(|(r, _)| r);
        let valid = self.valid.as_ref().map(|(r, _)| *r);
        self.rounds
            .retain(|r, _| *r >= oldest || Some(*r) == locked || Some(*r) == valid);
        // This validator never signs below the current round again.
        self.own_votes.retain(|(r, _), _| *r >= oldest);
        self.own_proposals.retain(|r, _| *r >= oldest);
        let rounds = &self.rounds;
        let valid_id = self.valid.as_ref().map(|(_, v)| v.id());
        self.validity.retain(|id, _| {
            Some(*id) == valid_id || rounds.values().any(|r| r.proposal(*id).is_some())
        });
    }

    /// Alg.1 L52-54: move to the next height with a clean state.
    fn enter_height(&mut self, height: Height, out: &mut Vec<Effect<V>>) {
        self.height = height;
        self.round = Round(0);
        self.step = Step::Propose;
        self.locked = None;
        self.valid = None;
        self.valid_polka = None;
        self.rounds.clear();
        self.highest_round.clear();
        self.validity.clear();
        self.own_votes.clear();
        self.own_proposals.clear();
        self.awaiting_value = None;
        self.replay.clear();
        for queue in self.future.values_mut() {
            let (now, later): (VecDeque<_>, VecDeque<_>) =
                queue.drain(..).partition(|m| m.height() == height);
            self.replay.extend(now);
            *queue = later.into_iter().filter(|m| m.height() > height).collect();
        }
        self.future.retain(|_, queue| !queue.is_empty());
        out.push(Effect::StartHeight { height });
        // Alg.1 L54: StartRound(0).
        self.begin_round(out);
    }

    // ----- the upon rules -----

    /// Apply rules until none fires, feeding buffered messages in between.
    fn run_rules(&mut self, out: &mut Vec<Effect<V>>) {
        loop {
            if self.apply_one_rule(out) {
                continue;
            }
            if let Some(message) = self.replay.pop_front() {
                // Verified when buffered; a stale or out-of-window one is simply dropped.
                let _ = self.admit(message, true, out);
                continue;
            }
            break;
        }
    }

    /// Apply the first rule whose condition holds; returns whether one did.
    fn apply_one_rule(&mut self, out: &mut Vec<Effect<V>>) -> bool {
        self.rule_decide(out)
            || self.rule_round_skip(out)
            || (self.step == Step::Propose && self.rule_prevote(out))
            || (self.step == Step::Prevote && self.rule_prevote_timeout(out))
            || (self.step >= Step::Prevote && self.rule_polka(out))
            || (self.step == Step::Prevote && self.rule_nil_polka(out))
            || self.rule_precommit_timeout(out)
    }

    /// Alg.1 L49-54: a proposal of any round with 2f+1 precommits for it, and valid.
    fn rule_decide(&mut self, out: &mut Vec<Effect<V>>) -> bool {
        let mut decided = None;
        'rounds: for (round, log) in &self.rounds {
            for proposal in &log.proposals {
                let id = proposal.signed.proposal.value_id;
                if self.validity.get(&id) == Some(&Validity::Valid)
                    && self
                        .validators
                        .is_quorum(log.precommits.power_for(Some(id)))
                {
                    decided = Some((*round, id, proposal.value.clone()));
                    break 'rounds;
                }
            }
        }
        let Some((round, value_id, value)) = decided else {
            return false;
        };
        let signatures = self.rounds[&round].precommits.signatures_for(value_id);
        let certificate = CommitCertificate {
            height: self.height,
            round,
            value_id,
            signatures,
        };
        out.push(Effect::Decide { value, certificate }); // Alg.1 L51
        self.enter_height(self.height.next(), out);
        true
    }

    /// The highest round above the current one that validators holding more than a third
    /// of the power have reached.
    fn round_skip_target(&self) -> Option<Round> {
        let mut ahead: Vec<(Round, u64)> = self
            .highest_round
            .iter()
            .filter(|(_, round)| **round > self.round)
            .map(|(index, round)| (*round, self.validators.power_of(*index)))
            .collect();
        ahead.sort_unstable_by_key(|(round, _)| std::cmp::Reverse(*round));
        let mut power: u64 = 0;
        for (round, p) in ahead {
            power = power.checked_add(p).expect("bug: power exceeds total");
            if self.validators.is_one_third_plus(power) {
                return Some(round);
            }
        }
        None
    }

    /// Alg.1 L55-56: f+1 messages from a higher round. Each validator counts at the highest
    /// round it has sent a message for (which it reached, so it also passed every lower
    /// round); one honest validator is among them, so faulty ones alone cannot drive the
    /// round up. This also covers rounds beyond the kept window.
    fn rule_round_skip(&mut self, out: &mut Vec<Effect<V>>) -> bool {
        let Some(target) = self.round_skip_target() else {
            return false;
        };
        self.start_round(target, out);
        true
    }

    /// Alg.1 L22-27 (fresh proposal) and L28-33 (re-proposal with a polka at `vr`), while
    /// in the propose step. A proposal this validator may not vote for because of its lock
    /// gets a nil prevote at once; otherwise the host's verdict is awaited.
    fn rule_prevote(&mut self, out: &mut Vec<Effect<V>>) -> bool {
        let Some(log) = self.rounds.get(&self.round) else {
            return false;
        };
        let mut choice = None;
        for proposal in &log.proposals {
            let id = proposal.signed.proposal.value_id;
            let lock_allows = match proposal.signed.proposal.valid_round {
                // L23: lockedRound = -1 ∨ lockedValue = v.
                None => self.locked.is_none_or(|(_, locked_id)| locked_id == id),
                // L28: 2f+1 prevotes for v in round vr < round_p ...
                Some(vr) => {
                    // ... seen here, or attached to the proposal (verified on arrival).
                    let polka = proposal.polka.is_some()
                        || self.rounds.get(&vr).is_some_and(|r| {
                            self.validators.is_quorum(r.prevotes.power_for(Some(id)))
                        });
                    if !polka {
                        continue;
                    }
                    // L29: lockedRound ≤ vr ∨ lockedValue = v.
                    self.locked.is_none_or(|(locked_round, locked_id)| {
                        locked_round <= vr || locked_id == id
                    })
                }
            };
            #[cfg(feature = "mutation-hooks")]
            let lock_allows = lock_allows || self.ignore_lock;
            if !lock_allows {
                choice = Some(None); // L26 / L32
                break;
            }
            match self.validity.get(&id) {
                Some(Validity::Valid) => {
                    choice = Some(Some(id)); // L24 / L30
                    break;
                }
                Some(Validity::Invalid) => {
                    choice = Some(None); // L26 / L32
                    break;
                }
                Some(Validity::Pending) | None => {}
            }
        }
        let Some(value_id) = choice else {
            return false;
        };
        self.cast_vote(VoteType::Prevote, value_id, out);
        self.step = Step::Prevote; // L27 / L33
        true
    }

    /// Alg.1 L34-35: 2f+1 prevotes of any kind, for the first time: start the prevote timer.
    fn rule_prevote_timeout(&mut self, out: &mut Vec<Effect<V>>) -> bool {
        let round = self.round;
        let quorum = self.rounds.get(&round).is_some_and(|r| {
            !r.prevote_timeout_scheduled && self.validators.is_quorum(r.prevotes.power_total())
        });
        if !quorum {
            return false;
        }
        self.round_mut(round).prevote_timeout_scheduled = true;
        self.schedule(TimeoutKind::Prevote, out);
        true
    }

    /// Alg.1 L36-43: the proposal of this round with 2f+1 prevotes for it (a polka), valid,
    /// in the prevote step or later, for the first time: lock and precommit it if still in
    /// the prevote step, and in any case remember it as the valid value.
    fn rule_polka(&mut self, out: &mut Vec<Effect<V>>) -> bool {
        let round = self.round;
        let Some(log) = self.rounds.get(&round) else {
            return false;
        };
        if log.polka_handled {
            return false;
        }
        let Some(proposal) = log.proposals.iter().find(|p| {
            let id = p.signed.proposal.value_id;
            self.validity.get(&id) == Some(&Validity::Valid)
                && self.validators.is_quorum(log.prevotes.power_for(Some(id)))
        }) else {
            return false;
        };
        let value = proposal.value.clone();
        let id = proposal.signed.proposal.value_id;
        let polka = PolkaCertificate {
            height: self.height,
            round,
            value_id: id,
            signatures: log.prevotes.signatures_for(id),
        };
        self.round_mut(round).polka_handled = true;
        // L42-43, logged first: after a crash this validator can still re-propose the value
        // (it may be the only one that can, if others are locked on it).
        if self.signer.is_some() {
            out.push(Effect::Persist(WalEntry::Valid {
                value: value.clone(),
                polka: polka.clone(),
            }));
        }
        self.valid = Some((round, value));
        self.valid_polka = Some(polka);
        if self.step == Step::Prevote {
            self.locked = Some((round, id)); // L38-39
            self.cast_vote(VoteType::Precommit, Some(id), out); // L40
            self.step = Step::Precommit; // L41
        }
        true
    }

    /// Alg.1 L44-46: 2f+1 nil prevotes while in the prevote step: precommit nil.
    fn rule_nil_polka(&mut self, out: &mut Vec<Effect<V>>) -> bool {
        let nil_quorum = self
            .rounds
            .get(&self.round)
            .is_some_and(|r| self.validators.is_quorum(r.prevotes.power_for(None)));
        if !nil_quorum {
            return false;
        }
        self.cast_vote(VoteType::Precommit, None, out);
        self.step = Step::Precommit;
        true
    }

    /// Alg.1 L47-48: 2f+1 precommits of any kind, for the first time: start the precommit
    /// timer.
    fn rule_precommit_timeout(&mut self, out: &mut Vec<Effect<V>>) -> bool {
        let round = self.round;
        let quorum = self.rounds.get(&round).is_some_and(|r| {
            !r.precommit_timeout_scheduled && self.validators.is_quorum(r.precommits.power_total())
        });
        if !quorum {
            return false;
        }
        self.round_mut(round).precommit_timeout_scheduled = true;
        self.schedule(TimeoutKind::Precommit, out);
        true
    }
}

#[cfg(test)]
mod tests;
