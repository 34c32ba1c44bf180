//! What the core remembers of one round: the proposal(s) and the prevotes and precommits,
//! tallied by value. At most one vote per validator and type counts; the first conflicting
//! vote becomes evidence and any later one is dropped, so a round's memory is bounded by the
//! validator count.

use crate::certificate::CommitSignature;
use crate::messages::{ProposalMessage, SignedProposal, SignedVote};
use crate::types::{ValidatorIndex, VoteType};
use dex_types::Hash;
use std::collections::{BTreeMap, BTreeSet};

/// What adding a message did.
#[derive(Debug)]
pub(crate) enum Added<T> {
    /// New; it counts.
    New,
    /// The same content was already there (gossip delivers duplicates).
    Duplicate,
    /// The signer already sent a different one for this slot; here is that first one, to
    /// pair with the new one as evidence.
    Conflict(T),
    /// A further conflicting message after evidence was already produced; dropped.
    Dropped,
}

/// Prevotes or precommits of one round.
#[derive(Debug, Default)]
pub(crate) struct VoteSet {
    /// The first vote of each validator (the one that counts).
    votes: BTreeMap<ValidatorIndex, SignedVote>,
    /// Validators already caught equivocating in this set.
    equivocators: BTreeSet<ValidatorIndex>,
    /// Power per value id (`None` = nil).
    power_by_value: BTreeMap<Option<Hash>, u64>,
    /// Power of all counted votes.
    power_total: u64,
}

impl VoteSet {
    pub(crate) fn add(&mut self, vote: SignedVote, power: u64) -> Added<SignedVote> {
        let index = vote.vote.validator;
        match self.votes.get(&index) {
            None => {
                let entry = self.power_by_value.entry(vote.vote.value_id).or_default();
                // Each validator counts once, and the set's total power fits in a u64.
                *entry = entry
                    .checked_add(power)
                    .expect("bug: tally exceeds total power");
                self.power_total = self
                    .power_total
                    .checked_add(power)
                    .expect("bug: tally exceeds total power");
                self.votes.insert(index, vote);
                Added::New
            }
            Some(existing) if existing.vote.value_id == vote.vote.value_id => Added::Duplicate,
            Some(existing) => {
                if self.equivocators.insert(index) {
                    Added::Conflict(*existing)
                } else {
                    Added::Dropped
                }
            }
        }
    }

    /// Power of the votes for `value_id` (`None` = nil).
    pub(crate) fn power_for(&self, value_id: Option<Hash>) -> u64 {
        self.power_by_value.get(&value_id).copied().unwrap_or(0)
    }

    /// Power of all counted votes, whatever they are for.
    pub(crate) fn power_total(&self) -> u64 {
        self.power_total
    }

    /// The counted signatures for `value_id`, by increasing validator index.
    pub(crate) fn signatures_for(&self, value_id: Hash) -> Vec<CommitSignature> {
        self.votes
            .values()
            .filter(|v| v.vote.value_id == Some(value_id))
            .map(|v| CommitSignature {
                validator: v.vote.validator,
                signature: v.signature,
            })
            .collect()
    }
}

/// At most this many proposals are kept per round: the proposer's first, and one
/// conflicting one (kept because the rest of the network may be voting on it).
pub(crate) const MAX_PROPOSALS_PER_ROUND: usize = 2;

/// Everything kept about one round of the current height.
#[derive(Debug)]
pub(crate) struct RoundVotes<V> {
    /// The round's proposals, first received first.
    pub(crate) proposals: Vec<ProposalMessage<V>>,
    /// Whether a double proposal in this round was already reported.
    proposal_conflict_reported: bool,
    pub(crate) prevotes: VoteSet,
    pub(crate) precommits: VoteSet,
    /// Alg.1 L34 "for the first time": the prevote timeout was scheduled.
    pub(crate) prevote_timeout_scheduled: bool,
    /// Alg.1 L47 "for the first time": the precommit timeout was scheduled.
    pub(crate) precommit_timeout_scheduled: bool,
    /// Alg.1 L36 "for the first time": the polka for a proposal was acted on.
    pub(crate) polka_handled: bool,
}

impl<V> Default for RoundVotes<V> {
    fn default() -> Self {
        RoundVotes {
            proposals: Vec::new(),
            proposal_conflict_reported: false,
            prevotes: VoteSet::default(),
            precommits: VoteSet::default(),
            prevote_timeout_scheduled: false,
            precommit_timeout_scheduled: false,
            polka_handled: false,
        }
    }
}

impl<V: Clone> RoundVotes<V> {
    pub(crate) fn votes_mut(&mut self, vote_type: VoteType) -> &mut VoteSet {
        match vote_type {
            VoteType::Prevote => &mut self.prevotes,
            VoteType::Precommit => &mut self.precommits,
        }
    }

    pub(crate) fn add_proposal(&mut self, proposal: ProposalMessage<V>) -> Added<SignedProposal> {
        let id = proposal.signed.proposal.value_id;
        if self
            .proposals
            .iter()
            .any(|p| p.signed.proposal.value_id == id)
        {
            return Added::Duplicate;
        }
        let Some(first) = self.proposals.first().map(|p| p.signed) else {
            self.proposals.push(proposal);
            return Added::New;
        };
        if self.proposals.len() < MAX_PROPOSALS_PER_ROUND {
            self.proposals.push(proposal);
        }
        if self.proposal_conflict_reported {
            Added::Dropped
        } else {
            self.proposal_conflict_reported = true;
            Added::Conflict(first)
        }
    }

    /// The stored proposal of value `value_id`, if any.
    pub(crate) fn proposal(&self, value_id: Hash) -> Option<&ProposalMessage<V>> {
        self.proposals
            .iter()
            .find(|p| p.signed.proposal.value_id == value_id)
    }
}
