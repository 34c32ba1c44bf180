//! Equivocation evidence: two conflicting signed messages from one validator.
//!
//! Evidence is put in canonical form (the pair ordered by value id, nil first) so that two
//! nodes that saw the two messages in opposite orders record the same evidence.

use crate::messages::{DecodeError, MAX_SIGNED_PROPOSAL_BYTES, MAX_VOTE_BYTES};
use crate::messages::{MessageError, SignedProposal, SignedVote, decode_bounded, encode};
use crate::types::{ChainId, Height, Round, ValidatorIndex};
use crate::validators::ValidatorSet;
use borsh::{BorshDeserialize, BorshSerialize};

/// The largest encoded [`Evidence`].
pub const MAX_EVIDENCE_BYTES: usize = 1 + 2 * max(MAX_VOTE_BYTES, MAX_SIGNED_PROPOSAL_BYTES);

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// Proof that a validator signed two conflicting messages for the same slot.
///
/// The borsh tag is the variant's position (0, 1): never reorder the variants.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum Evidence {
    /// Two votes of one validator at the same height, round and vote type for different
    /// values (nil counts as a value).
    ConflictingVotes {
        /// The vote with the smaller value id (nil first).
        first: SignedVote,
        /// The vote with the larger value id.
        second: SignedVote,
    },
    /// Two proposals of one proposer at the same height and round for different values.
    ConflictingProposals {
        /// The proposal with the smaller value id.
        first: SignedProposal,
        /// The proposal with the larger value id.
        second: SignedProposal,
    },
}

/// Why evidence does not prove an equivocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The two messages are signed by different validators, so neither equivocated.
    #[error("the two messages are from different validators")]
    DifferentSigners,
    /// The messages are for different heights, rounds or vote types: voting in two slots is
    /// what validators are supposed to do.
    #[error("the two messages are for different heights, rounds or vote types")]
    DifferentSlots,
    /// Both name the same value (possibly the very same message): no conflict.
    #[error("the two messages name the same value")]
    SameValue,
    /// The pair is not in canonical order (smaller value id first).
    #[error("the evidence is not in canonical order (smaller value id first)")]
    NotCanonical,
    /// One of the messages does not verify on its own.
    #[error("an evidence message does not verify: {0}")]
    Message(#[from] MessageError),
}

impl Evidence {
    /// Evidence from two conflicting votes in either order.
    pub fn conflicting_votes(a: SignedVote, b: SignedVote) -> Evidence {
        let (first, second) = if a.vote.value_id <= b.vote.value_id {
            (a, b)
        } else {
            (b, a)
        };
        Evidence::ConflictingVotes { first, second }
    }

    /// Evidence from two conflicting proposals in either order.
    pub fn conflicting_proposals(a: SignedProposal, b: SignedProposal) -> Evidence {
        let (first, second) = if a.proposal.value_id <= b.proposal.value_id {
            (a, b)
        } else {
            (b, a)
        };
        Evidence::ConflictingProposals { first, second }
    }

    /// The validator that equivocated.
    pub fn validator(&self) -> ValidatorIndex {
        match self {
            Evidence::ConflictingVotes { first, .. } => first.vote.validator,
            Evidence::ConflictingProposals { first, .. } => first.proposal.proposer,
        }
    }

    /// The height of the equivocation.
    pub fn height(&self) -> Height {
        match self {
            Evidence::ConflictingVotes { first, .. } => first.vote.height,
            Evidence::ConflictingProposals { first, .. } => first.proposal.height,
        }
    }

    /// The round of the equivocation.
    pub fn round(&self) -> Round {
        match self {
            Evidence::ConflictingVotes { first, .. } => first.vote.round,
            Evidence::ConflictingProposals { first, .. } => first.proposal.round,
        }
    }

    /// Check the evidence standalone: one known signer, one slot, two different values in
    /// canonical order, both signatures valid on `chain_id`.
    pub fn verify(
        &self,
        validators: &ValidatorSet,
        chain_id: ChainId,
    ) -> Result<(), EvidenceError> {
        match self {
            Evidence::ConflictingVotes { first, second } => {
                let (a, b) = (&first.vote, &second.vote);
                if a.validator != b.validator {
                    return Err(EvidenceError::DifferentSigners);
                }
                if (a.chain_id, a.height, a.round, a.vote_type)
                    != (b.chain_id, b.height, b.round, b.vote_type)
                {
                    return Err(EvidenceError::DifferentSlots);
                }
                if a.value_id == b.value_id {
                    return Err(EvidenceError::SameValue);
                }
                if a.value_id > b.value_id {
                    return Err(EvidenceError::NotCanonical);
                }
                first.verify(validators, chain_id)?;
                second.verify(validators, chain_id)?;
            }
            Evidence::ConflictingProposals { first, second } => {
                let (a, b) = (&first.proposal, &second.proposal);
                if a.proposer != b.proposer {
                    return Err(EvidenceError::DifferentSigners);
                }
                if (a.chain_id, a.height, a.round) != (b.chain_id, b.height, b.round) {
                    return Err(EvidenceError::DifferentSlots);
                }
                if a.value_id == b.value_id {
                    return Err(EvidenceError::SameValue);
                }
                if a.value_id > b.value_id {
                    return Err(EvidenceError::NotCanonical);
                }
                first.verify(validators, chain_id)?;
                second.verify(validators, chain_id)?;
            }
        }
        Ok(())
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decode bytes, refusing more than [`MAX_EVIDENCE_BYTES`] before decoding.
    pub fn decode(bytes: &[u8]) -> Result<Evidence, DecodeError> {
        decode_bounded(bytes, MAX_EVIDENCE_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{CHAIN, Fixture, OTHER_CHAIN, value};
    use crate::types::VoteType;

    #[test]
    fn conflicting_votes_verify_in_either_order() {
        let fx = Fixture::equal(4);
        let a = fx.vote(1, 3, 0, VoteType::Prevote, Some(&value("a")));
        let b = fx.vote(1, 3, 0, VoteType::Prevote, None);
        let e1 = Evidence::conflicting_votes(a, b);
        let e2 = Evidence::conflicting_votes(b, a);
        assert_eq!(e1, e2);
        assert_eq!(e1.verify(&fx.set, CHAIN), Ok(()));
        assert_eq!(
            (e1.validator(), e1.height(), e1.round()),
            (ValidatorIndex(1), Height(3), Round(0))
        );
        assert_eq!(Evidence::decode(&e1.encode()).unwrap(), e1);
    }

    #[test]
    fn non_conflicts_are_rejected() {
        let fx = Fixture::equal(4);
        let a = fx.vote(1, 3, 0, VoteType::Prevote, Some(&value("a")));
        let same = |b| Evidence::conflicting_votes(a, b).verify(&fx.set, CHAIN);
        assert_eq!(
            same(fx.vote(2, 3, 0, VoteType::Prevote, None)),
            Err(EvidenceError::DifferentSigners)
        );
        assert_eq!(
            same(fx.vote(1, 3, 1, VoteType::Prevote, None)),
            Err(EvidenceError::DifferentSlots)
        );
        assert_eq!(
            same(fx.vote(1, 4, 0, VoteType::Prevote, None)),
            Err(EvidenceError::DifferentSlots)
        );
        assert_eq!(
            same(fx.vote(1, 3, 0, VoteType::Precommit, None)),
            Err(EvidenceError::DifferentSlots)
        );
        assert_eq!(same(a), Err(EvidenceError::SameValue));
        let mut forged = fx.vote(1, 3, 0, VoteType::Prevote, None);
        forged.signature.0[3] ^= 1;
        assert!(matches!(
            same(forged),
            Err(EvidenceError::Message(
                MessageError::InvalidSignature { .. }
            ))
        ));
        // Out of canonical order.
        let b = fx.vote(1, 3, 0, VoteType::Prevote, None);
        let swapped = Evidence::ConflictingVotes {
            first: a,
            second: b,
        };
        assert_eq!(
            swapped.verify(&fx.set, CHAIN),
            Err(EvidenceError::NotCanonical)
        );
        assert_eq!(
            Evidence::conflicting_votes(a, b)
                .verify(&fx.set, OTHER_CHAIN)
                .map_err(|_| ()),
            Err(())
        );
    }

    #[test]
    fn conflicting_proposals_verify_without_the_values() {
        let fx = Fixture::equal(4);
        let a = fx.proposal(5, 2, &value("a"), None).signed;
        let b = fx.proposal(5, 2, &value("b"), Some(1)).signed;
        let e = Evidence::conflicting_proposals(b, a);
        assert_eq!(e.verify(&fx.set, CHAIN), Ok(()));
        assert_eq!(e.validator().0, fx.proposer(5, 2));
        assert_eq!(Evidence::decode(&e.encode()).unwrap(), e);
        let other_round = fx.proposal(5, 3, &value("b"), None).signed;
        assert!(
            Evidence::conflicting_proposals(a, other_round)
                .verify(&fx.set, CHAIN)
                .is_err()
        );
        assert_eq!(
            Evidence::conflicting_proposals(a, a).verify(&fx.set, CHAIN),
            Err(EvidenceError::SameValue)
        );
    }
}
