//! Quorum certificates: the 2f+1 precommits that prove a value was decided
//! ([`CommitCertificate`]), and the 2f+1 prevotes that justify re-proposing a value
//! ([`PolkaCertificate`]).

use crate::messages::{DecodeError, MessageError};
use crate::messages::{Vote, decode_bounded, encode, verify_signature};
use crate::types::{ChainId, Height, Round, SignatureBytes, ValidatorIndex, VoteType};
use crate::validators::{MAX_VALIDATORS, ValidatorSet};
use borsh::{BorshDeserialize, BorshSerialize};
use dex_types::Hash;

/// The largest encoded certificate: header plus one signature per possible validator.
pub const MAX_CERTIFICATE_BYTES: usize = 8 + 4 + 32 + 4 + MAX_VALIDATORS * (4 + 64);

/// One vote signature in a certificate.
#[derive(Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct CommitSignature {
    /// The signer's index in the validator set.
    pub validator: ValidatorIndex,
    /// Its signature over the vote `(chain, height, round, type, value_id, validator)`.
    pub signature: SignatureBytes,
}

/// Precommits of strictly more than two thirds of the voting power for one value at one
/// height and round. Anyone who knows the validator set and the chain id can check it, so
/// it certifies the committed block (and, through the block's roots, every fill in it).
///
/// Signatures are sorted by validator index with no repeats, so a certificate has one
/// canonical encoding for a given set of signers.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct CommitCertificate {
    /// The decided height.
    pub height: Height,
    /// The round whose precommits decided it.
    pub round: Round,
    /// The id of the decided value.
    pub value_id: Hash,
    /// The precommit signatures, by increasing validator index.
    pub signatures: Vec<CommitSignature>,
}

/// Why a certificate does not prove a commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// More signatures than validators: certainly repeats, and a cheap way to waste work.
    #[error("certificate has {count} signatures but the set has only {validators} validators")]
    TooManySignatures {
        /// Signatures given.
        count: usize,
        /// Validators in the set.
        validators: usize,
    },
    /// A signer index is not in the validator set.
    #[error("certificate is signed by validator {index}, which is not in the set")]
    UnknownSigner {
        /// The unknown index.
        index: ValidatorIndex,
    },
    /// The same validator signs twice; its power would count twice.
    #[error("certificate lists validator {index} more than once")]
    DuplicateSigner {
        /// The repeated index.
        index: ValidatorIndex,
    },
    /// Signers are not in increasing index order (the canonical form).
    #[error("certificate signers are not sorted by index (validator {index} is out of order)")]
    UnorderedSigners {
        /// The first signer out of order.
        index: ValidatorIndex,
    },
    /// A vote signature does not verify.
    #[error("the vote signature of validator {validator} does not verify")]
    InvalidSignature {
        /// The signer whose signature failed.
        validator: ValidatorIndex,
    },
    /// The valid signatures hold two thirds of the power or less.
    #[error(
        "certificate signers hold {signed} of {total} voting power; more than two thirds is needed"
    )]
    InsufficientPower {
        /// Power of the signers.
        signed: u64,
        /// Total power of the set.
        total: u64,
    },
}

/// Check that `signatures` are in canonical order, by known and distinct validators holding
/// more than two thirds of the power, and that each signs the vote `vote(validator)`.
fn verify_quorum(
    validators: &ValidatorSet,
    vote: impl Fn(ValidatorIndex) -> Vote,
    signatures: &[CommitSignature],
) -> Result<(), CertificateError> {
    if signatures.len() > validators.len() {
        return Err(CertificateError::TooManySignatures {
            count: signatures.len(),
            validators: validators.len(),
        });
    }
    // Structure first, so a malformed certificate costs no signature checks.
    let mut previous: Option<ValidatorIndex> = None;
    let mut signed_power: u64 = 0;
    for entry in signatures {
        let index = entry.validator;
        if validators.get(index).is_none() {
            return Err(CertificateError::UnknownSigner { index });
        }
        if let Some(previous) = previous {
            if index == previous {
                return Err(CertificateError::DuplicateSigner { index });
            }
            if index < previous {
                return Err(CertificateError::UnorderedSigners { index });
            }
        }
        previous = Some(index);
        // Distinct validators of one set cannot sum past the set's total, which fits.
        signed_power = signed_power
            .checked_add(validators.power_of(index))
            .expect("bug: distinct signers exceed the total power");
    }
    if !validators.is_quorum(signed_power) {
        return Err(CertificateError::InsufficientPower {
            signed: signed_power,
            total: validators.total_power(),
        });
    }
    for entry in signatures {
        let hash = vote(entry.validator).signing_hash();
        verify_signature(validators, entry.validator, &hash, &entry.signature).map_err(
            |error| match error {
                MessageError::UnknownValidator { index, .. } => {
                    CertificateError::UnknownSigner { index }
                }
                _ => CertificateError::InvalidSignature {
                    validator: entry.validator,
                },
            },
        )?;
    }
    Ok(())
}

impl CommitCertificate {
    /// The precommit validator `validator` signed for this certificate on `chain_id`.
    pub fn precommit(&self, chain_id: ChainId, validator: ValidatorIndex) -> Vote {
        Vote {
            chain_id,
            height: self.height,
            round: self.round,
            vote_type: VoteType::Precommit,
            value_id: Some(self.value_id),
            validator,
        }
    }

    /// Check that this certificate proves `value_id` was decided at `height` on `chain_id`
    /// by `validators`: canonical signer order, known signers, strictly more than two thirds
    /// of the power, and every signature valid by the chain's rule (ZIP-215 with small-order
    /// keys refused, [`dex_types::verify_signature`]), checked one by one.
    pub fn verify(
        &self,
        validators: &ValidatorSet,
        chain_id: ChainId,
    ) -> Result<(), CertificateError> {
        verify_quorum(
            validators,
            |validator| self.precommit(chain_id, validator),
            &self.signatures,
        )
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decode bytes from a peer or the store, refusing more than [`MAX_CERTIFICATE_BYTES`]
    /// before decoding. Does not verify.
    pub fn decode(bytes: &[u8]) -> Result<CommitCertificate, DecodeError> {
        decode_bounded(bytes, MAX_CERTIFICATE_BYTES)
    }
}

/// Prevotes of strictly more than two thirds of the power for one value at one round
/// (a "polka"). A proposer that re-proposes its valid value (Alg.1 L14-16) attaches the
/// polka of its valid round, so that validators which lost those prevotes — or already
/// forgot that round — can still apply Alg.1 L28. Self-authenticating: it is not part of
/// what the proposer signs.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct PolkaCertificate {
    /// The height of the prevotes.
    pub height: Height,
    /// The round of the prevotes (the proposal's valid round).
    pub round: Round,
    /// The value prevoted for.
    pub value_id: Hash,
    /// The prevote signatures, by increasing validator index.
    pub signatures: Vec<CommitSignature>,
}

impl PolkaCertificate {
    /// The prevote validator `validator` signed for this certificate on `chain_id`.
    pub fn prevote(&self, chain_id: ChainId, validator: ValidatorIndex) -> Vote {
        Vote {
            chain_id,
            height: self.height,
            round: self.round,
            vote_type: VoteType::Prevote,
            value_id: Some(self.value_id),
            validator,
        }
    }

    /// Check order, signers, power and signatures, as for [`CommitCertificate::verify`].
    pub fn verify(
        &self,
        validators: &ValidatorSet,
        chain_id: ChainId,
    ) -> Result<(), CertificateError> {
        verify_quorum(
            validators,
            |validator| self.prevote(chain_id, validator),
            &self.signatures,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::ConsensusValue;
    use crate::testkit::{CHAIN, Fixture, OTHER_CHAIN, TestValue, value};

    fn certificate(fx: &Fixture, signers: &[u32], v: &TestValue) -> CommitCertificate {
        CommitCertificate {
            height: Height(9),
            round: Round(2),
            value_id: v.id(),
            signatures: signers
                .iter()
                .map(|&who| CommitSignature {
                    validator: ValidatorIndex(who),
                    signature: fx.vote(who, 9, 2, VoteType::Precommit, Some(v)).signature,
                })
                .collect(),
        }
    }

    #[test]
    fn a_quorum_of_precommits_verifies() {
        let fx = Fixture::equal(4);
        let v = value("block");
        let cert = certificate(&fx, &[0, 1, 3], &v);
        assert_eq!(cert.verify(&fx.set, CHAIN), Ok(()));
        assert_eq!(cert.verify(&fx.set, CHAIN), Ok(()));
        assert_eq!(CommitCertificate::decode(&cert.encode()).unwrap(), cert);
        let all = certificate(&fx, &[0, 1, 2, 3], &v);
        assert_eq!(all.verify(&fx.set, CHAIN), Ok(()));
    }

    #[test]
    fn rejects_too_few_duplicate_unknown_unordered_and_bad_signatures() {
        let fx = Fixture::equal(4);
        let v = value("block");
        assert_eq!(
            certificate(&fx, &[0, 1], &v).verify(&fx.set, CHAIN),
            Err(CertificateError::InsufficientPower {
                signed: 2,
                total: 4
            })
        );
        assert_eq!(
            certificate(&fx, &[], &v).verify(&fx.set, CHAIN),
            Err(CertificateError::InsufficientPower {
                signed: 0,
                total: 4
            })
        );
        // Two signatures of one validator do not make two thirds.
        assert_eq!(
            certificate(&fx, &[0, 1, 1], &v).verify(&fx.set, CHAIN),
            Err(CertificateError::DuplicateSigner {
                index: ValidatorIndex(1)
            })
        );
        assert_eq!(
            certificate(&fx, &[0, 2, 1], &v).verify(&fx.set, CHAIN),
            Err(CertificateError::UnorderedSigners {
                index: ValidatorIndex(1)
            })
        );
        let mut unknown = certificate(&fx, &[0, 1, 2], &v);
        unknown.signatures[2].validator = ValidatorIndex(7);
        assert_eq!(
            unknown.verify(&fx.set, CHAIN),
            Err(CertificateError::UnknownSigner {
                index: ValidatorIndex(7)
            })
        );
        let mut forged = certificate(&fx, &[0, 1, 2], &v);
        forged.signatures[1].signature.0[40] ^= 1;
        assert_eq!(
            forged.verify(&fx.set, CHAIN),
            Err(CertificateError::InvalidSignature {
                validator: ValidatorIndex(1)
            })
        );
        // Signatures for another value, round or chain do not carry over.
        let mut other_value = certificate(&fx, &[0, 1, 2], &v);
        other_value.value_id = value("other").id();
        assert!(matches!(
            other_value.verify(&fx.set, CHAIN),
            Err(CertificateError::InvalidSignature { .. })
        ));
        let mut other_round = certificate(&fx, &[0, 1, 2], &v);
        other_round.round = Round(3);
        assert!(other_round.verify(&fx.set, CHAIN).is_err());
        assert!(
            certificate(&fx, &[0, 1, 2], &v)
                .verify(&fx.set, OTHER_CHAIN)
                .is_err()
        );
        // Prevotes are not precommits.
        let mut prevotes = certificate(&fx, &[0, 1, 2], &v);
        for s in &mut prevotes.signatures {
            s.signature = fx
                .vote(s.validator.0, 9, 2, VoteType::Prevote, Some(&v))
                .signature;
        }
        assert!(prevotes.verify(&fx.set, CHAIN).is_err());
        let mut too_many = certificate(&fx, &[0, 1, 2, 3], &v);
        too_many.signatures.push(too_many.signatures[3]);
        assert_eq!(
            too_many.verify(&fx.set, CHAIN),
            Err(CertificateError::TooManySignatures {
                count: 5,
                validators: 4
            })
        );
    }

    #[test]
    fn power_not_heads_decides() {
        let fx = Fixture::new(&[5, 1, 1, 1]);
        let v = value("block");
        // 3 of 4 validators but 3 of 8 power.
        assert_eq!(
            certificate(&fx, &[1, 2, 3], &v).verify(&fx.set, CHAIN),
            Err(CertificateError::InsufficientPower {
                signed: 3,
                total: 8
            })
        );
        // 5 of 8 is not more than two thirds; 6 of 8 is.
        assert!(certificate(&fx, &[0], &v).verify(&fx.set, CHAIN).is_err());
        assert_eq!(certificate(&fx, &[0, 2], &v).verify(&fx.set, CHAIN), Ok(()));
    }

    #[test]
    fn decode_is_capped() {
        let too_big = vec![0u8; MAX_CERTIFICATE_BYTES + 1];
        assert!(matches!(
            CommitCertificate::decode(&too_big),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
