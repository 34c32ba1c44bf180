//! Byzantine validators: a real replica underneath (so the validator follows the chain and
//! keeps a valid-looking state), with its outgoing messages rewritten by an [`Adversary`].
//!
//! - **equivocate**: every own proposal goes to a random half of the validators; the other
//!   half gets a second, different but valid block for the same height and round (fresh,
//!   without valid round — a proposer that ignores its valid value).
//! - **double vote**: every own vote goes to a random half; the other half gets a
//!   conflicting vote for the same slot (nil for a value, a seen proposal for nil).
//! - **invalid**: own proposals carry a block with a wrong state root, and every nil vote
//!   is replaced by a vote for whatever was proposed in that round (its own invalid block
//!   included).
//! - **silent**: from a moment on, sends nothing.
//! - **replay**: re-sends old messages of other validators (every height and round) at
//!   intervals.
//! - **lock breaker**: behaves as a validator that forgot its lock and valid value. On the
//!   first proposal of a height it forges, for every coming round it will propose in, a
//!   fresh block (never its valid value) with its own prevote and precommit for it — so
//!   the forgeries wait for validators still at that height even after its own core
//!   decided. In other rounds it prevotes as its core says but precommits nil, so honest
//!   validators decide only when all their precommits arrive, and it never sends anyone a
//!   decided block. Against a correct core this achieves nothing; against a core that
//!   ignores its lock it makes validators locked on a value decided elsewhere decide
//!   another.
//! - **twin**: the run starts two nodes with the validator's one key (see the simulation);
//!   each twin is an honest replica, so the pair equivocates whenever their views differ.
//!
//! Every forged message is signed with the validator's real key, so it passes every
//! signature check: honest validators must reject it on its merits.

use crate::disk::SimDisk;
use crate::network::{Outgoing, Payload};
use crate::rng::SimRng;
use dex_chain::{Action, BlockRules, Parent, Replica, build_block};
use dex_consensus::{
    Message, Proposal, ProposalMessage, Round, SignedVote, ValidatorIndex, Vote, VoteType,
};
use dex_types::{AccountId, Block, Domain, Hash, TimestampMs};
use ed25519_dalek::SigningKey;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Messages of others a replaying validator remembers.
const RECORDED_MAX: usize = 512;
/// Messages re-sent per replay burst.
const REPLAY_BURST: usize = 12;
/// Proposals remembered per validator, for votes that name them.
const SEEN_MAX: usize = 256;
/// Rounds ahead a lock breaker forges its proposals and votes for (the honest core keeps
/// messages up to `max_round_ahead` rounds ahead).
const FORGE_ROUNDS_AHEAD: u32 = 6;

/// What a Byzantine validator does (several may combine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Behaviour {
    /// Split proposals between two blocks.
    pub equivocate: bool,
    /// Split votes between two values.
    pub double_vote: bool,
    /// Propose invalid blocks, vote for any proposal.
    pub invalid: bool,
    /// Send nothing from this simulated time on.
    pub silent_from_ms: Option<u64>,
    /// Re-send old messages of others.
    pub replay: bool,
    /// Run as two nodes with one key.
    pub twin: bool,
    /// Propose fresh blocks and vote for them at once; precommit nil otherwise.
    pub lock_breaker: bool,
}

impl Behaviour {
    /// A short description.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.equivocate {
            parts.push("equivocate");
        }
        if self.double_vote {
            parts.push("double-vote");
        }
        if self.invalid {
            parts.push("invalid");
        }
        if self.silent_from_ms.is_some() {
            parts.push("silent");
        }
        if self.replay {
            parts.push("replay");
        }
        if self.twin {
            parts.push("twin");
        }
        if self.lock_breaker {
            parts.push("lock-breaker");
        }
        parts.join("+")
    }
}

/// The message-rewriting part of one Byzantine validator.
#[derive(Debug)]
pub struct Adversary {
    /// What it does.
    pub behaviour: Behaviour,
    key: SigningKey,
    index: ValidatorIndex,
    /// The first proposal seen per (height, round).
    seen: BTreeMap<(u64, u32), Hash>,
    /// Own honest proposals replaced by invalid ones: honest id → invalid id.
    replaced: BTreeMap<Hash, Hash>,
    /// The fresh block a lock breaker proposed per (height, round).
    fresh: BTreeMap<(u64, u32), Hash>,
    /// Heights a lock breaker forged its coming rounds for.
    forged_heights: BTreeSet<u64>,
    /// Messages of others, for replay.
    recorded: VecDeque<Message<Block>>,
    /// Messages forged (second proposals, conflicting votes, invalid blocks, replays).
    pub forged: u64,
}

impl Adversary {
    /// The adversary of validator `index`, whose key is `key`.
    pub fn new(behaviour: Behaviour, key: SigningKey, index: ValidatorIndex) -> Adversary {
        Adversary {
            behaviour,
            key,
            index,
            seen: BTreeMap::new(),
            replaced: BTreeMap::new(),
            fresh: BTreeMap::new(),
            forged_heights: BTreeSet::new(),
            recorded: VecDeque::new(),
            forged: 0,
        }
    }

    /// Note a consensus message this validator received; a lock breaker answers the first
    /// proposal of a height with its forgeries for the coming rounds it will propose in.
    pub fn observe(
        &mut self,
        replica: &Replica<SimDisk>,
        rules: &BlockRules,
        message: &Message<Block>,
    ) -> Vec<Outgoing> {
        self.remember(message);
        let Message::Proposal(proposal) = message else {
            return Vec::new();
        };
        let p = proposal.signed.proposal;
        let head = replica.head();
        if !self.behaviour.lock_breaker
            || p.height.0 != head.height + 1
            || self.forged_heights.contains(&p.height.0)
        {
            return Vec::new();
        }
        self.forged_heights.insert(p.height.0);
        while self.forged_heights.len() > SEEN_MAX {
            self.forged_heights.pop_first();
        }
        // One fresh block for every coming round this validator proposes in: whoever is
        // still at this height when such a round begins finds the proposal and this
        // validator's votes for it waiting, even if its own core decided and moved on.
        let parent = Parent {
            height: head.height,
            hash: head.block_hash,
            time: replica.ledger().last_block_time(),
        };
        let fresh = build_block(
            replica.ledger(),
            &parent,
            rules,
            AccountId(self.key.verifying_key().to_bytes()),
            TimestampMs(proposal.value.header.time.0 + 1),
            Vec::new(),
        );
        let mut out = Vec::new();
        for ahead in 1..=FORGE_ROUNDS_AHEAD {
            let round = Round(p.round.0 + ahead);
            if replica.validators().proposer(p.height, round) == self.index {
                out.extend(self.forge_round(p.height.0, round.0, fresh.block.clone()));
            }
        }
        out
    }

    fn remember(&mut self, message: &Message<Block>) {
        if let Message::Proposal(proposal) = message {
            let p = &proposal.signed.proposal;
            self.seen
                .entry((p.height.0, p.round.0))
                .or_insert(p.value_id);
            while self.seen.len() > SEEN_MAX {
                self.seen.pop_first();
            }
        }
        if self.behaviour.replay && message.signer() != self.index {
            if self.recorded.len() >= RECORDED_MAX {
                self.recorded.pop_front();
            }
            self.recorded.push_back(message.clone());
        }
    }

    /// A burst of old messages to re-send.
    pub fn replay_burst(&mut self, rng: &mut SimRng) -> Vec<Outgoing> {
        if self.recorded.is_empty() {
            return Vec::new();
        }
        (0..REPLAY_BURST)
            .map(|_| {
                self.forged += 1;
                let message = self.recorded[rng.index(self.recorded.len())].clone();
                Outgoing {
                    to: None,
                    payload: Payload::Consensus(message),
                }
            })
            .collect()
    }

    /// Whether it sends nothing at `now_ms`.
    pub fn is_silent(&self, now_ms: u64) -> bool {
        self.behaviour
            .silent_from_ms
            .is_some_and(|from| now_ms >= from)
    }

    /// Rewrite one of the replica's send actions. `others` are the other validators.
    #[allow(clippy::too_many_arguments)]
    pub fn rewrite(
        &mut self,
        rng: &mut SimRng,
        now_ms: u64,
        replica: &Replica<SimDisk>,
        rules: &BlockRules,
        others: &[ValidatorIndex],
        outgoing: Outgoing,
    ) -> Vec<Outgoing> {
        if self.is_silent(now_ms) {
            return Vec::new();
        }
        if self.behaviour.lock_breaker && matches!(outgoing.payload, Payload::Decided { .. }) {
            // Never help a validator learn of a decision.
            return Vec::new();
        }
        let Payload::Consensus(message) = &outgoing.payload else {
            return vec![outgoing];
        };
        if message.signer() != self.index {
            return vec![outgoing];
        }
        // Re-sends to one lagging validator keep their message, except for the behaviours
        // that must never let a true vote out.
        if outgoing.to.is_some() && !(self.behaviour.invalid || self.behaviour.lock_breaker) {
            return vec![outgoing];
        }
        match message.clone() {
            Message::Proposal(proposal) => {
                self.rewrite_proposal(rng, replica, rules, others, proposal)
            }
            Message::Vote(vote) => self.rewrite_vote(rng, others, vote),
        }
        .into_iter()
        .map(|mut rewritten| {
            if rewritten.to.is_none() {
                rewritten.to = outgoing.to.clone();
            }
            rewritten
        })
        .collect()
    }

    fn rewrite_proposal(
        &mut self,
        rng: &mut SimRng,
        replica: &Replica<SimDisk>,
        rules: &BlockRules,
        others: &[ValidatorIndex],
        proposal: ProposalMessage<Block>,
    ) -> Vec<Outgoing> {
        let original = proposal.value.clone();
        let p = proposal.signed.proposal;
        if self.behaviour.lock_breaker && self.fresh.contains_key(&(p.height.0, p.round.0)) {
            // Already forged ahead for this round.
            return Vec::new();
        }
        if self.behaviour.invalid {
            let mut bad = original;
            bad.header.state_root = Hash::of(Domain::Other, &[b"invalid", &p.value_id.0]);
            let message = self.sign_proposal(p.height.0, p.round.0, bad);
            self.replaced.insert(p.value_id, message_value_id(&message));
            self.forged += 1;
            return vec![Outgoing {
                to: None,
                payload: Payload::Consensus(message),
            }];
        }
        if !self.behaviour.equivocate && !self.behaviour.lock_breaker {
            return vec![Outgoing {
                to: None,
                payload: Payload::Consensus(Message::Proposal(proposal)),
            }];
        }
        let head = replica.head();
        if original.header.height != head.height + 1 {
            return vec![Outgoing {
                to: None,
                payload: Payload::Consensus(Message::Proposal(proposal)),
            }];
        }
        let parent = Parent {
            height: head.height,
            hash: head.block_hash,
            time: replica.ledger().last_block_time(),
        };
        let mut txs = original.txs.clone();
        if !txs.is_empty() {
            txs.remove(rng.index(txs.len()));
        }
        let alternative = build_block(
            replica.ledger(),
            &parent,
            rules,
            AccountId(self.key.verifying_key().to_bytes()),
            TimestampMs(original.header.time.0 + rng.between(1, 5)),
            txs,
        );
        if self.behaviour.lock_breaker {
            return self.forge_round(p.height.0, p.round.0, alternative.block);
        }
        let second = self.sign_proposal(p.height.0, p.round.0, alternative.block);
        self.forged += 1;
        let (a, b) = split(rng, others);
        vec![
            Outgoing {
                to: Some(a),
                payload: Payload::Consensus(Message::Proposal(proposal)),
            },
            Outgoing {
                to: Some(b),
                payload: Payload::Consensus(second),
            },
        ]
    }

    fn rewrite_vote(
        &mut self,
        rng: &mut SimRng,
        others: &[ValidatorIndex],
        signed: SignedVote,
    ) -> Vec<Outgoing> {
        let vote = signed.vote;
        let seen = self.seen.get(&(vote.height.0, vote.round.0)).copied();
        if self.behaviour.invalid {
            let target = match vote.value_id {
                None => seen,
                Some(id) => Some(self.replaced.get(&id).copied().unwrap_or(id)),
            };
            let forged = self.sign_vote(vote, target);
            if forged != signed {
                self.forged += 1;
            }
            return vec![Outgoing {
                to: None,
                payload: Payload::Consensus(Message::Vote(forged)),
            }];
        }
        if self.behaviour.lock_breaker {
            let target = match self.fresh.get(&(vote.height.0, vote.round.0)) {
                Some(fresh) => Some(*fresh),
                None if vote.vote_type == VoteType::Precommit => None,
                None => vote.value_id,
            };
            let forged = self.sign_vote(vote, target);
            if forged != signed {
                self.forged += 1;
            }
            return vec![Outgoing {
                to: None,
                payload: Payload::Consensus(Message::Vote(forged)),
            }];
        }
        if !self.behaviour.double_vote {
            return vec![Outgoing {
                to: None,
                payload: Payload::Consensus(Message::Vote(signed)),
            }];
        }
        let other = match vote.value_id {
            Some(_) => None,
            None => Some(seen.unwrap_or_else(|| Hash(rng.bytes32()))),
        };
        let conflicting = self.sign_vote(vote, other);
        self.forged += 1;
        let (a, b) = split(rng, others);
        vec![
            Outgoing {
                to: Some(a),
                payload: Payload::Consensus(Message::Vote(signed)),
            },
            Outgoing {
                to: Some(b),
                payload: Payload::Consensus(Message::Vote(conflicting)),
            },
        ]
    }

    /// Propose `block` at (height, round) and prevote and precommit it at once.
    fn forge_round(&mut self, height: u64, round: u32, block: Block) -> Vec<Outgoing> {
        let id = block.hash();
        let chain_id = block.header.chain_id;
        self.fresh.insert((height, round), id);
        while self.fresh.len() > SEEN_MAX {
            self.fresh.pop_first();
        }
        let mut out = vec![Outgoing {
            to: None,
            payload: Payload::Consensus(self.sign_proposal(height, round, block)),
        }];
        for vote_type in [VoteType::Prevote, VoteType::Precommit] {
            let vote = Vote {
                chain_id,
                height: dex_consensus::Height(height),
                round: Round(round),
                vote_type,
                value_id: Some(id),
                validator: self.index,
            };
            out.push(Outgoing {
                to: None,
                payload: Payload::Consensus(Message::Vote(vote.sign(&self.key))),
            });
        }
        self.forged += 3;
        out
    }

    fn sign_proposal(&self, height: u64, round: u32, block: Block) -> Message<Block> {
        let signed = Proposal {
            chain_id: block.header.chain_id,
            height: dex_consensus::Height(height),
            round: dex_consensus::Round(round),
            valid_round: None,
            value_id: block.hash(),
            proposer: self.index,
        }
        .sign(&self.key);
        Message::Proposal(ProposalMessage {
            signed,
            value: block,
            polka: None,
        })
    }

    fn sign_vote(&self, vote: Vote, value_id: Option<Hash>) -> SignedVote {
        Vote { value_id, ..vote }.sign(&self.key)
    }
}

fn message_value_id(message: &Message<Block>) -> Hash {
    match message {
        Message::Proposal(p) => p.signed.proposal.value_id,
        Message::Vote(v) => v.vote.value_id.unwrap_or(Hash::ZERO),
    }
}

/// Split validators into two random non-empty halves (when there are two or more).
fn split(
    rng: &mut SimRng,
    others: &[ValidatorIndex],
) -> (Vec<ValidatorIndex>, Vec<ValidatorIndex>) {
    let mut shuffled = others.to_vec();
    rng.shuffle(&mut shuffled);
    let cut = shuffled.len().div_ceil(2);
    let b = shuffled.split_off(cut);
    (shuffled, b)
}

/// The outgoing message of a replica's send action, if it is one.
pub fn outgoing(own: ValidatorIndex, action: &Action) -> Option<Outgoing> {
    Some(match action {
        Action::Broadcast(message) => Outgoing {
            to: None,
            payload: Payload::Consensus(message.clone()),
        },
        Action::SendTo { to, message } => Outgoing {
            to: Some(vec![*to]),
            payload: Payload::Consensus(message.clone()),
        },
        Action::GossipTransaction(signed) => Outgoing {
            to: None,
            payload: Payload::Transaction(signed.clone()),
        },
        Action::SendDecided {
            to,
            block,
            certificate,
        } => Outgoing {
            to: Some(vec![*to]),
            payload: Payload::Decided {
                from: own,
                block: block.clone(),
                certificate: certificate.clone(),
            },
        },
        Action::RequestSync { to, height } => Outgoing {
            to: Some(vec![*to]),
            payload: Payload::SyncRequest {
                from: own,
                height: *height,
            },
        },
        Action::SetTimer { .. }
        | Action::Committed(_)
        | Action::Evidence(_)
        | Action::EnteredRound { .. } => return None,
    })
}
