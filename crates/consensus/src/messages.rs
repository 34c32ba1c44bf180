//! Signed proposals and votes: their canonical encoding, what exactly is signed, and their
//! standalone verification.
//!
//! What a validator signs is the 32-byte BLAKE3 hash, under its own domain
//! ([`Domain::Vote`] or [`Domain::Proposal`]), of the borsh encoding of the unsigned
//! message, which names the chain id, height, round, vote type (for votes), the value id
//! (or nil) and the signer's index. A proposal signs only the value's id, not the value:
//! the id commits to the value (a block's id is its header hash), and evidence of a double
//! proposal can then be checked without either block.

use crate::certificate::{CertificateError, PolkaCertificate};
use crate::types::{ChainId, Height, Round, SignatureBytes, ValidatorIndex, VoteType};
use crate::validators::ValidatorSet;
use borsh::{BorshDeserialize, BorshSerialize};
use dex_types::{Domain, Hash};
use ed25519_dalek::{Signer, SigningKey};
use std::fmt::Debug;

/// What consensus decides on. The core never looks inside a value: it only needs its id,
/// and asks the host whether a value is valid ([`Effect::ValidateProposal`](crate::Effect)).
///
/// The node uses the block (see [`block`](crate::block)). Votes, certificates and the
/// host's verdicts are all keyed by `id`, so `id` must commit to the whole value: if two
/// different values could share an id, a relay could swap a proposal's body under its
/// signed id and get the real one judged invalid.
pub trait ConsensusValue: Clone + Debug + BorshSerialize + BorshDeserialize {
    /// The value's id, which votes and certificates name.
    fn id(&self) -> Hash;

    /// Whether `id` commits to all of this value. A value whose id hashes only part of it
    /// (a block's id is its header's hash) checks here that the rest matches what that
    /// part commits to (the header's transaction root). Checked on every value that
    /// enters the core, before anything is keyed by its id. Cheap structural check only;
    /// validity is the host's verdict.
    fn is_consistent(&self) -> bool {
        true
    }
}

/// The largest encoded [`SignedVote`] (a vote is fixed-size; this leaves no slack for junk).
pub const MAX_VOTE_BYTES: usize = 8 + 8 + 4 + 1 + 33 + 4 + 64;

/// The largest encoded [`SignedProposal`] (without its value).
pub const MAX_SIGNED_PROPOSAL_BYTES: usize = 8 + 8 + 4 + 5 + 32 + 4 + 64;

/// A prevote or precommit, before signing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    /// The chain this vote is for.
    pub chain_id: ChainId,
    /// Height voted at.
    pub height: Height,
    /// Round voted at.
    pub round: Round,
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// The id of the value voted for, or `None` for nil.
    pub value_id: Option<Hash>,
    /// The voter.
    pub validator: ValidatorIndex,
}

impl Vote {
    /// The hash the voter signs.
    pub fn signing_hash(&self) -> Hash {
        Hash::of(Domain::Vote, &[&encode(self)])
    }

    /// Sign with `key`. The caller ensures `key` belongs to `self.validator`.
    pub fn sign(self, key: &SigningKey) -> SignedVote {
        let signature = key.sign(self.signing_hash().as_bytes()).into();
        SignedVote {
            vote: self,
            signature,
        }
    }
}

/// A vote with its signature: what travels on the wire and goes into the write-ahead log.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct SignedVote {
    /// The signed content.
    pub vote: Vote,
    /// The voter's signature over [`Vote::signing_hash`].
    pub signature: SignatureBytes,
}

impl SignedVote {
    /// Check that the vote is for `chain_id`, comes from a validator of `validators` and
    /// carries that validator's valid signature.
    pub fn verify(&self, validators: &ValidatorSet, chain_id: ChainId) -> Result<(), MessageError> {
        check_chain(self.vote.chain_id, chain_id)?;
        verify_signature(
            validators,
            self.vote.validator,
            &self.vote.signing_hash(),
            &self.signature,
        )
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decode bytes from the network, refusing anything longer than [`MAX_VOTE_BYTES`]
    /// before decoding. Does not verify the signature.
    pub fn decode(bytes: &[u8]) -> Result<SignedVote, DecodeError> {
        decode_bounded(bytes, MAX_VOTE_BYTES)
    }
}

/// A proposal before signing: the value is named by its id (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    /// The chain this proposal is for.
    pub chain_id: ChainId,
    /// Height proposed at.
    pub height: Height,
    /// Round proposed at.
    pub round: Round,
    /// The round of the polka the proposer saw for this value (`validRound`, Alg.1 L19), or
    /// `None` for a fresh value. Always below `round`.
    pub valid_round: Option<Round>,
    /// The id of the proposed value.
    pub value_id: Hash,
    /// The proposer.
    pub proposer: ValidatorIndex,
}

impl Proposal {
    /// The hash the proposer signs.
    pub fn signing_hash(&self) -> Hash {
        Hash::of(Domain::Proposal, &[&encode(self)])
    }

    /// Sign with `key`. The caller ensures `key` belongs to `self.proposer`.
    pub fn sign(self, key: &SigningKey) -> SignedProposal {
        let signature = key.sign(self.signing_hash().as_bytes()).into();
        SignedProposal {
            proposal: self,
            signature,
        }
    }
}

/// A signed proposal without its value: enough to verify the signature and to serve as
/// evidence of a double proposal.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct SignedProposal {
    /// The signed content.
    pub proposal: Proposal,
    /// The proposer's signature over [`Proposal::signing_hash`].
    pub signature: SignatureBytes,
}

impl SignedProposal {
    /// Check chain, signer and signature, and that `valid_round < round`.
    pub fn verify(&self, validators: &ValidatorSet, chain_id: ChainId) -> Result<(), MessageError> {
        check_chain(self.proposal.chain_id, chain_id)?;
        if let Some(valid_round) = self.proposal.valid_round
            && valid_round >= self.proposal.round
        {
            return Err(MessageError::InvalidValidRound {
                round: self.proposal.round,
                valid_round,
            });
        }
        verify_signature(
            validators,
            self.proposal.proposer,
            &self.proposal.signing_hash(),
            &self.signature,
        )
    }
}

/// A proposal as it travels: the signed proposal, the value it names, and for a
/// re-proposal the polka of its valid round.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ProposalMessage<V> {
    /// The signed proposal.
    pub signed: SignedProposal,
    /// The proposed value; its id must equal `signed.proposal.value_id`.
    pub value: V,
    /// 2f+1 prevotes for the value at `signed.proposal.valid_round`, when the proposer
    /// has them (it may not right after a restart). Only with a valid round.
    pub polka: Option<PolkaCertificate>,
}

impl<V: ConsensusValue> ProposalMessage<V> {
    /// [`SignedProposal::verify`], the check that the value is the one signed for, and
    /// that an attached polka is a valid one for this value at the proposal's valid round.
    pub fn verify(&self, validators: &ValidatorSet, chain_id: ChainId) -> Result<(), MessageError> {
        let proposal = &self.signed.proposal;
        let actual = self.value.id();
        if actual != proposal.value_id {
            return Err(MessageError::ValueIdMismatch {
                signed: proposal.value_id,
                actual,
            });
        }
        if !self.value.is_consistent() {
            return Err(MessageError::InconsistentValue { id: actual });
        }
        self.signed.verify(validators, chain_id)?;
        if let Some(polka) = &self.polka {
            if (Some(polka.round), polka.height, polka.value_id)
                != (proposal.valid_round, proposal.height, proposal.value_id)
            {
                return Err(MessageError::PolkaMismatch);
            }
            polka
                .verify(validators, chain_id)
                .map_err(MessageError::InvalidPolka)?;
        }
        Ok(())
    }
}

/// Any consensus message a validator broadcasts (and writes to its write-ahead log first).
///
/// The borsh tag is the variant's position (0, 1): never reorder the variants.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum Message<V> {
    /// A proposal with its value.
    Proposal(ProposalMessage<V>),
    /// A prevote or precommit.
    Vote(SignedVote),
}

impl<V: ConsensusValue> Message<V> {
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decode bytes from the network or the write-ahead log, refusing anything longer than
    /// `max_bytes` before decoding (the host's limit on a proposal's size; votes are far
    /// smaller). Does not verify signatures.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Message<V>, DecodeError> {
        decode_bounded(bytes, max_bytes)
    }

    /// The height the message is for.
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal(p) => p.signed.proposal.height,
            Message::Vote(v) => v.vote.height,
        }
    }

    /// The round the message is for.
    pub fn round(&self) -> Round {
        match self {
            Message::Proposal(p) => p.signed.proposal.round,
            Message::Vote(v) => v.vote.round,
        }
    }

    /// The validator that signed the message.
    pub fn signer(&self) -> ValidatorIndex {
        match self {
            Message::Proposal(p) => p.signed.proposal.proposer,
            Message::Vote(v) => v.vote.validator,
        }
    }

    /// Verify the message standalone (see [`SignedVote::verify`], [`ProposalMessage::verify`]).
    pub fn verify(&self, validators: &ValidatorSet, chain_id: ChainId) -> Result<(), MessageError> {
        match self {
            Message::Proposal(p) => p.verify(validators, chain_id),
            Message::Vote(v) => v.verify(validators, chain_id),
        }
    }
}

/// A message whose signatures were checked ([`Message::into_verified`]). The consensus core
/// takes it ([`crate::Input::Verified`]) without checking them again, so a host that checks
/// messages off its consensus thread (in parallel, as they arrive) does not pay for each
/// check twice. It records the chain and the signer's key it was checked against, and the
/// core trusts it only if they are its own; otherwise it checks the message as usual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMessage<V> {
    // Crate-private: outside this crate one is made only by `Message::into_verified`.
    pub(crate) message: Message<V>,
    pub(crate) chain_id: ChainId,
    pub(crate) signer_key: ed25519_dalek::VerifyingKey,
}

impl<V: ConsensusValue> Message<V> {
    /// Verify the message standalone ([`Message::verify`]) and keep the proof of it.
    pub fn into_verified(
        self,
        validators: &ValidatorSet,
        chain_id: ChainId,
    ) -> Result<VerifiedMessage<V>, MessageError> {
        self.verify(validators, chain_id)?;
        let signer = self.signer();
        let validator = validators
            .get(signer)
            .ok_or(MessageError::UnknownValidator {
                index: signer,
                validators: validators.len(),
            })?;
        Ok(VerifiedMessage {
            signer_key: validator.public_key,
            chain_id,
            message: self,
        })
    }
}

impl<V> VerifiedMessage<V> {
    /// The message.
    pub fn message(&self) -> &Message<V> {
        &self.message
    }

    /// The message, giving up the proof.
    pub fn into_message(self) -> Message<V> {
        self.message
    }

    /// Whether it was checked under `chain_id` with the key `validators` gives its signer:
    /// then checking it again under them would give the same answer.
    pub(crate) fn checked_against(&self, validators: &ValidatorSet, chain_id: ChainId) -> bool
    where
        V: ConsensusValue,
    {
        self.chain_id == chain_id
            && validators
                .get(self.message.signer())
                .is_some_and(|v| v.public_key == self.signer_key)
    }
}

/// Why a signed proposal or vote is not acceptable on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The message names another chain (another network, or a test chain).
    #[error("message is for chain {got}, this node runs chain {expected}")]
    WrongChain {
        /// This node's chain.
        expected: ChainId,
        /// The message's chain.
        got: ChainId,
    },
    /// The signer index is not in the validator set.
    #[error("validator {index} is not in the validator set of {validators} validators")]
    UnknownValidator {
        /// The index given.
        index: ValidatorIndex,
        /// The size of the set.
        validators: usize,
    },
    /// The signature does not pass the chain's signature rule under the named validator's
    /// key (forged, corrupted, or signed for other content).
    #[error("the signature of validator {validator} does not verify")]
    InvalidSignature {
        /// The claimed signer.
        validator: ValidatorIndex,
    },
    /// A proposal's value does not have the id the proposer signed.
    #[error("the proposal signs value {signed} but carries value {actual}")]
    ValueIdMismatch {
        /// Id in the signed proposal.
        signed: Hash,
        /// Id of the value attached.
        actual: Hash,
    },
    /// The value does not match what its id commits to (for a block: the transactions do
    /// not hash to the header's transaction root), so its id cannot be trusted.
    #[error("value {id} does not match what its id commits to")]
    InconsistentValue {
        /// The value's claimed id.
        id: Hash,
    },
    /// The polka attached to a proposal is not for its height, valid round and value.
    #[error("the proposal's polka is not for its height, valid round and value")]
    PolkaMismatch,
    /// The polka attached to a proposal does not verify.
    #[error("the proposal's polka is invalid: {0}")]
    InvalidPolka(CertificateError),
    /// A proposal claims a polka in its own or a later round, which Alg.1 never produces.
    #[error(
        "the proposal for round {round} claims a valid round {valid_round}, which is not earlier"
    )]
    InvalidValidRound {
        /// The proposal's round.
        round: Round,
        /// The claimed valid round.
        valid_round: Round,
    },
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is larger than the cap for its kind; it was not decoded at all.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The bytes are not a canonical encoding of the expected type (truncated, trailing
    /// bytes, or an invalid tag).
    #[error("malformed message: {reason}")]
    Malformed {
        /// What the decoder reported.
        reason: String,
    },
}

/// Borsh encoding into a vector, which cannot fail.
pub(crate) fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("bug: borsh encoding into a Vec cannot fail")
}

/// Decode `bytes` as `T` after checking the size cap. Trailing bytes are an error.
pub(crate) fn decode_bounded<T: BorshDeserialize>(
    bytes: &[u8],
    max_bytes: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    borsh::from_slice(bytes).map_err(|e| DecodeError::Malformed {
        reason: e.to_string(),
    })
}

fn check_chain(got: ChainId, expected: ChainId) -> Result<(), MessageError> {
    if got == expected {
        Ok(())
    } else {
        Err(MessageError::WrongChain { expected, got })
    }
}

/// Check `signature` over `hash` by the validator at `index` with the chain's one signature
/// rule, [`dex_types::verify_signature`] (ZIP-215, small-order keys refused): votes,
/// proposals and certificates are judged exactly as transactions are.
///
/// Certificates are checked signature by signature, not as a batch: a batch check needs
/// random coefficients the adversary cannot predict, and this crate is deterministic. A
/// certificate holds a few signatures, so batching would save little.
pub(crate) fn verify_signature(
    validators: &ValidatorSet,
    index: ValidatorIndex,
    hash: &Hash,
    signature: &SignatureBytes,
) -> Result<(), MessageError> {
    let validator = validators
        .get(index)
        .ok_or(MessageError::UnknownValidator {
            index,
            validators: validators.len(),
        })?;
    dex_types::verify_signature(&validator.public_key, hash.as_bytes(), &signature.0)
        .map_err(|_| MessageError::InvalidSignature { validator: index })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{CHAIN, Fixture, OTHER_CHAIN, TestValue, value};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn golden_vote(fx: &Fixture) -> SignedVote {
        fx.vote(2, 1, 0, VoteType::Prevote, Some(&value("golden")))
    }

    fn golden_proposal(fx: &Fixture) -> ProposalMessage<TestValue> {
        fx.proposal(3, 1, &value("golden"), Some(0))
    }

    #[test]
    fn vote_encoding_is_pinned() {
        let fx = Fixture::equal(4);
        let vote = golden_vote(&fx);
        let bytes = vote.encode();
        // Layout: chain u64 LE, height u64 LE, round u32 LE, type u8, Some tag, id, index u32 LE, signature.
        let mut layout = Vec::new();
        layout.extend_from_slice(&CHAIN.0.to_le_bytes());
        layout.extend_from_slice(&1u64.to_le_bytes());
        layout.extend_from_slice(&0u32.to_le_bytes());
        layout.push(1);
        layout.push(1);
        layout.extend_from_slice(value("golden").id().as_bytes());
        layout.extend_from_slice(&2u32.to_le_bytes());
        layout.extend_from_slice(&vote.signature.0);
        assert_eq!(bytes, layout);
        assert_eq!(bytes.len(), MAX_VOTE_BYTES);
        assert_eq!(
            hex(&bytes),
            "07000000000000000100000000000000000000000101b88fd35966c7cfed23acde9d7cdcb4a3082a6a7a7b\
             5be972ff84b10bb6d1644502000000c3d7a90b164348a1a8dc493e66e693bc38c0dea5a937b18921308c\
             8a0a1ede631029ed66a00a15cc366ffe0188d766b1d10631664ed3f2c92f74b5162ddbe302"
        );
        assert_eq!(
            vote.vote.signing_hash().to_hex(),
            "bfb90ba51aac1764711d8587000ec772ac95f7969e44ef1c97c46d87e78cbe3d"
        );
        assert_eq!(SignedVote::decode(&bytes).unwrap(), vote);
    }

    #[test]
    fn proposal_encoding_is_pinned() {
        let fx = Fixture::equal(4);
        let proposal = golden_proposal(&fx);
        let message = Message::Proposal(proposal.clone());
        let bytes = message.encode();
        assert_eq!(
            hex(&bytes),
            "0007000000000000000300000000000000010000000100000000b88fd35966c7cfed23acde9d7cdcb4a308\
             2a6a7a7b5be972ff84b10bb6d16445000000006302ac8ec2ca48d563602a4060e451989ac7a226abb47461\
             8d931b6446531195b68600b62d13c4f714951d5e420797fab42e2a1439c9fb674c264cbf89cf0203060000\
             00676f6c64656e00"
        );
        assert_eq!(
            proposal.signed.proposal.signing_hash().to_hex(),
            "698cabea65215a338e124a138ea9da1db1cc12584219f44cd617c87336528014"
        );
        // Tag 0, the signed proposal (fixed size), the value's own encoding, no polka.
        assert_eq!(bytes[0], 0);
        assert_eq!(
            &bytes[1..1 + MAX_SIGNED_PROPOSAL_BYTES],
            &encode(&proposal.signed)[..]
        );
        assert_eq!(
            &bytes[1 + MAX_SIGNED_PROPOSAL_BYTES..bytes.len() - 1],
            &encode(&value("golden"))[..]
        );
        assert_eq!(bytes.last(), Some(&0));
        assert_eq!(
            Message::<TestValue>::decode(&bytes, bytes.len()).unwrap(),
            message
        );
    }

    #[test]
    fn decoding_checks_the_cap_first_and_rejects_junk() {
        let fx = Fixture::equal(4);
        let bytes = golden_vote(&fx).encode();
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            SignedVote::decode(&long),
            Err(DecodeError::TooLarge {
                len: MAX_VOTE_BYTES + 1,
                max: MAX_VOTE_BYTES
            })
        );
        assert!(matches!(
            SignedVote::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Malformed { .. })
        ));
        // An invalid vote type tag.
        let mut bad_tag = bytes.clone();
        bad_tag[20] = 9;
        assert!(matches!(
            SignedVote::decode(&bad_tag),
            Err(DecodeError::Malformed { .. })
        ));
        // A message within the cap but with trailing bytes.
        let mut trailing = Message::<TestValue>::Vote(golden_vote(&fx)).encode();
        trailing.push(0);
        assert!(matches!(
            Message::<TestValue>::decode(&trailing, 1_000),
            Err(DecodeError::Malformed { .. })
        ));
        // A proposal larger than the host's cap is refused before decoding.
        let big = Message::Proposal(fx.proposal(1, 0, &TestValue(vec![7; 10_000]), None)).encode();
        assert!(matches!(
            Message::<TestValue>::decode(&big, 4_096),
            Err(DecodeError::TooLarge { .. })
        ));
        // A length prefix claiming far more than is present does not allocate it.
        let mut lying = Message::Proposal(fx.proposal(1, 1, &TestValue(vec![1]), Some(0))).encode();
        let len_at = 1 + MAX_SIGNED_PROPOSAL_BYTES;
        lying[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Message::<TestValue>::decode(&lying, 4_096),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn verification_rejects_each_kind_of_bad_message() {
        let fx = Fixture::equal(4);
        let vote = golden_vote(&fx);
        assert_eq!(vote.verify(&fx.set, CHAIN), Ok(()));
        assert_eq!(
            vote.verify(&fx.set, OTHER_CHAIN),
            Err(MessageError::WrongChain {
                expected: OTHER_CHAIN,
                got: CHAIN
            })
        );
        // The same signature under another validator's name.
        let mut stolen = vote;
        stolen.vote.validator = ValidatorIndex(1);
        assert_eq!(
            stolen.verify(&fx.set, CHAIN),
            Err(MessageError::InvalidSignature {
                validator: ValidatorIndex(1)
            })
        );
        // Changing what was voted for breaks the signature.
        let mut altered = vote;
        altered.vote.value_id = None;
        assert!(altered.verify(&fx.set, CHAIN).is_err());
        let mut unknown = vote;
        unknown.vote.validator = ValidatorIndex(4);
        assert_eq!(
            unknown.verify(&fx.set, CHAIN),
            Err(MessageError::UnknownValidator {
                index: ValidatorIndex(4),
                validators: 4
            })
        );

        let proposal = golden_proposal(&fx);
        assert_eq!(proposal.verify(&fx.set, CHAIN), Ok(()));
        let mut swapped = proposal.clone();
        swapped.value = value("other");
        assert!(matches!(
            swapped.verify(&fx.set, CHAIN),
            Err(MessageError::ValueIdMismatch { .. })
        ));
        let bad_round = fx.proposal(3, 1, &value("golden"), Some(1));
        assert_eq!(
            bad_round.verify(&fx.set, CHAIN),
            Err(MessageError::InvalidValidRound {
                round: Round(1),
                valid_round: Round(1)
            })
        );
        // Vote and proposal domains differ: a vote signature never passes as a proposal's.
        let mut cross = proposal.signed;
        cross.signature = vote.signature;
        assert!(cross.verify(&fx.set, CHAIN).is_err());
    }

    #[test]
    fn votes_follow_the_transaction_signature_rule() {
        let fx = Fixture::equal(4);
        let vote = golden_vote(&fx);
        let key = fx.set.get(vote.vote.validator).unwrap().public_key;
        let hash = vote.vote.signing_hash();
        // s + L, the malleated form of a valid signature, is refused as for transactions.
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut malleated = vote;
        let mut carry = 0u16;
        for (byte, add) in malleated.signature.0[32..].iter_mut().zip(l) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        // Every bit flipped in turn, and the malleated form: the vote's verdict is the
        // transaction rule's verdict on the same key, message and signature.
        let mut spoiled: Vec<SignedVote> = (0..512)
            .map(|bit| {
                let mut flipped = vote;
                flipped.signature.0[bit / 8] ^= 1 << (bit % 8);
                flipped
            })
            .collect();
        spoiled.push(malleated);
        spoiled.push(vote);
        for candidate in spoiled {
            let rule = dex_types::verify_signature(&key, hash.as_bytes(), &candidate.signature.0);
            assert_eq!(
                candidate.verify(&fx.set, CHAIN).is_ok(),
                rule.is_ok(),
                "{candidate:?}"
            );
        }
        assert!(malleated.verify(&fx.set, CHAIN).is_err());
        assert_eq!(vote.verify(&fx.set, CHAIN), Ok(()));
    }
}
