//! Ed25519 keys and signatures.
//!
//! One validity rule: `VerifyingKey::verify_strict`. It rejects non-canonical signature
//! encodings and small-order keys and `R` points, so a signature that verifies has exactly
//! one byte form and no validator can disagree with another about it.
//!
//! What a transaction's signer signs is 32 bytes: [`signing_message`], the hash under
//! [`Domain::TransactionSignature`] of the chain id and the transaction id. The crate holds
//! no randomness: keys are built from 32 seed bytes the caller brings.

use crate::hash::{Domain, Hash};
use crate::ids::{AccountId, ChainId};
use crate::tx::{SIGNATURE_BYTES, SignedTransaction, Transaction};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::fmt;

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signer's 32 bytes are not a point on the curve, so nothing it "signs" can verify.
    #[error("the signer {signer} is not a valid ed25519 public key")]
    InvalidKey {
        /// The signer.
        signer: AccountId,
    },
    /// The signature does not verify strictly for this message and key.
    #[error("the signature is not valid for signer {signer}")]
    BadSignature {
        /// The signer.
        signer: AccountId,
    },
    /// A cached key given for verification is not the transaction signer's key.
    #[error("the key given for verification is not the key of signer {signer}")]
    KeyMismatch {
        /// The transaction's signer.
        signer: AccountId,
    },
    /// A transaction was given to a key other than its signer's to sign.
    #[error("the key {key} cannot sign a transaction whose signer is {signer}")]
    WrongSigningKey {
        /// The key asked to sign.
        key: AccountId,
        /// The transaction's signer.
        signer: AccountId,
    },
}

impl AccountId {
    /// Decompress the account's public key (about as costly as a signature check; the node
    /// caches the result per account).
    pub fn verifying_key(&self) -> Result<VerifyingKey, SignatureError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::InvalidKey { signer: *self })
    }
}

impl From<&VerifyingKey> for AccountId {
    fn from(key: &VerifyingKey) -> AccountId {
        AccountId(key.to_bytes())
    }
}

/// What the signer of the transaction with id `tx_hash` on `chain_id` signs:
/// `Hash::of(Domain::TransactionSignature, [chain_id as u64 LE, tx_hash])`.
///
/// The chain id is already inside the transaction id; naming it again here keeps the
/// signed message self-describing for hardware signers that see only this.
pub fn signing_message(chain_id: ChainId, tx_hash: &Hash) -> Hash {
    Hash::of(
        Domain::TransactionSignature,
        &[&chain_id.0.to_le_bytes(), tx_hash.as_bytes()],
    )
}

/// Check `signature` over `message` with `key` by `verify_strict`. Votes and proposals use
/// this too, with their own domain-separated messages.
pub fn verify_signature(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8; SIGNATURE_BYTES],
) -> Result<(), SignatureError> {
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| SignatureError::BadSignature {
            signer: AccountId::from(key),
        })
}

/// An ed25519 key pair built from 32 seed bytes. Its `Debug` shows only the public key.
#[derive(Clone)]
pub struct Keypair {
    key: SigningKey,
}

impl Keypair {
    /// The key pair whose secret is `seed` (RFC 8032's 32-byte private key).
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The 32 seed bytes, for saving the key.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The account this key is (its public key).
    pub fn account_id(&self) -> AccountId {
        AccountId(self.key.verifying_key().to_bytes())
    }

    /// The public key, decompressed.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Sign arbitrary bytes (ed25519 is deterministic: the same message gives the same
    /// signature). Callers sign only domain-separated messages.
    pub fn sign_message(&self, message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        self.key.sign(message).to_bytes()
    }

    /// Sign `tx`, whose signer must be this key.
    pub fn sign(&self, tx: Transaction) -> Result<SignedTransaction, SignatureError> {
        let key = self.account_id();
        if tx.signer != key {
            return Err(SignatureError::WrongSigningKey {
                key,
                signer: tx.signer,
            });
        }
        let signature = self.sign_message(tx.signing_message().as_bytes());
        Ok(SignedTransaction { tx, signature })
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.account_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1: the empty message.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let keypair = Keypair::from_seed(seed);
        assert_eq!(
            keypair.account_id().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let signature = keypair.sign_message(b"");
        assert_eq!(
            hex::encode(signature),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert_eq!(
            verify_signature(&keypair.verifying_key(), b"", &signature),
            Ok(())
        );
        assert_eq!(keypair.seed(), seed);
    }

    #[test]
    fn strict_rules() {
        let keypair = Keypair::from_seed([7; 32]);
        let message = b"dex";
        let signature = keypair.sign_message(message);
        assert_eq!(
            verify_signature(&keypair.verifying_key(), message, &signature),
            Ok(())
        );
        // S + L is the same signature in a non-canonical form: refused.
        let mut malleated = signature;
        let l: [u8; 32] =
            hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
                .unwrap()
                .try_into()
                .unwrap();
        let mut carry = 0u16;
        for (byte, add) in malleated[32..].iter_mut().zip(l) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert!(verify_signature(&keypair.verifying_key(), message, &malleated).is_err());
        // The identity point is a small-order (weak) key: strict verification refuses it
        // even for a signature that the lenient check would accept.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = AccountId(identity).verifying_key().unwrap();
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity);
        assert!(
            weak.verify(message, &Signature::from_bytes(&forged))
                .is_ok()
        );
        assert!(verify_signature(&weak, message, &forged).is_err());
    }

    #[test]
    fn invalid_key_is_typed() {
        // y = 2 is not on the curve.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        assert_eq!(
            AccountId(bytes).verifying_key(),
            Err(SignatureError::InvalidKey {
                signer: AccountId(bytes)
            })
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let keypair = Keypair::from_seed([0x42; 32]);
        let text = format!("{keypair:?}");
        assert!(!text.contains("4242"));
        assert!(text.starts_with("Keypair(AccountId("));
    }

    #[test]
    fn signing_message_binds_chain_and_id() {
        let id = Hash::of(Domain::Other, &[b"tx"]);
        assert_ne!(
            signing_message(ChainId(1), &id),
            signing_message(ChainId(2), &id)
        );
        assert_ne!(
            signing_message(ChainId(1), &id),
            signing_message(ChainId(1), &Hash::ZERO)
        );
    }
}
