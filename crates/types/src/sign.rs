//! Ed25519 keys and signatures, and the chain's one signature rule.
//!
//! ## The rule
//! A signature over a message is valid for a signer exactly when
//! 1. the signer's 32 bytes decompress to a curve point (else [`SignatureError::InvalidKey`]);
//!    non-canonical encodings (`y ≥ p`, or the sign bit set on `x = 0`) decode as
//!    curve25519-dalek decodes them;
//! 2. that point is not of small order (else [`SignatureError::WeakKey`]), judged from the
//!    key's bytes alone (they are one of the 14 byte strings that decode to such a point):
//!    nobody holds a secret for such a key, and ZIP-215 accepts signatures for it that
//!    anyone can make, so funds held by it would be anyone's;
//! 3. the signature passes ZIP-215 verification as `ed25519-zebra` (one pinned version)
//!    implements it (else [`SignatureError::BadSignature`]): `s` canonical (`s < L`), `R`
//!    decompresses (non-canonical encodings accepted), and the cofactored equation
//!    `[8](R − [s]B + [k]A) = 0` holds with `k = SHA-512(R ‖ A ‖ message)` over the bytes as
//!    given.
//!
//! Why this rule (docs/adr/0004): it has a batch form that accepts a batch exactly when
//! every item passes the single check (up to a 2^-128 chance over the verifier's random
//! coefficients, and a failed batch is re-checked item by item), so validators that batch
//! differently still reach the same verdict on every signature, and a batch checks a
//! signature in about a third of the time of ed25519-dalek's `verify_strict`, the rule
//! before. Every signature `verify_strict` accepted is accepted. What is accepted in
//! addition needs the signer's secret: signatures with a small-order or non-canonically
//! encoded `R`, and signatures by mixed-order keys (a real key plus a torsion point) whose
//! hash `k` `verify_strict` happened to refuse. A third party still cannot make any valid
//! signature, nor turn one into another (`s + L` is refused). Golden tests pin the verdicts
//! of these edge cases, so a library upgrade that changes one fails the build.
//!
//! Signing is standard RFC 8032 ed25519 (ed25519-dalek). What a transaction's signer signs
//! is 32 bytes: [`signing_message`], the hash under [`Domain::TransactionSignature`] of the
//! chain id and the transaction id. The crate holds no randomness: keys are built from 32
//! seed bytes the caller brings, and the rule's single check is deterministic.
//!
//! A [`SignerKey`] is a signer's key decompressed and checked once (steps 1 and 2), ready
//! for step 3; callers that verify many signatures keep one per signer.

use crate::hash::{Domain, Hash};
use crate::ids::{AccountId, ChainId};
use crate::tx::{SIGNATURE_BYTES, SignedTransaction, Transaction};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
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
    /// The signer's key is one of the few points of small order. No one holds a secret for
    /// such a key and anyone could forge its signatures, so the chain refuses it as a signer.
    #[error(
        "the signer {signer} is a small-order (weak) ed25519 public key, for which anyone \
         could forge signatures"
    )]
    WeakKey {
        /// The signer.
        signer: AccountId,
    },
    /// The signature does not pass the chain's rule for this message and key.
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
    /// Decompress the account's public key (about a tenth of a signature check). Any curve
    /// point is returned, including weak keys: [`AccountId::signer_key`] is the key the
    /// signature rule checks with.
    pub fn verifying_key(&self) -> Result<VerifyingKey, SignatureError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::InvalidKey { signer: *self })
    }

    /// The account's key checked for the signature rule: a curve point
    /// ([`SignatureError::InvalidKey`] otherwise) not of small order
    /// ([`SignatureError::WeakKey`] otherwise). Costs one key decompression (about a tenth
    /// of a single signature check); keep the result for a signer seen often.
    pub fn signer_key(&self) -> Result<SignerKey, SignatureError> {
        if is_small_order_encoding(&self.0) {
            return Err(SignatureError::WeakKey { signer: *self });
        }
        let key = ed25519_zebra::VerificationKey::try_from(self.0)
            .map_err(|_| SignatureError::InvalidKey { signer: *self })?;
        Ok(SignerKey { key })
    }
}

impl From<&VerifyingKey> for AccountId {
    fn from(key: &VerifyingKey) -> AccountId {
        AccountId(key.to_bytes())
    }
}

/// A signer's public key, decompressed and checked against the key half of the rule (a
/// curve point, not of small order), ready to check signatures by the ZIP-215 half. Built
/// only by [`AccountId::signer_key`] or [`SignerKey::from_verifying_key`], so holding one
/// means the key passed. Its `Debug` shows the account.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignerKey {
    key: ed25519_zebra::VerificationKey,
}

impl SignerKey {
    /// Check an already decompressed key: [`SignatureError::WeakKey`] if it is of small
    /// order. The same verdict as [`AccountId::signer_key`] on the key's bytes, and the same
    /// cost: one decompression, since the ZIP-215 library keeps its own form of the point.
    pub fn from_verifying_key(key: &VerifyingKey) -> Result<SignerKey, SignatureError> {
        AccountId::from(key).signer_key()
    }

    /// The account this key is.
    pub fn account_id(&self) -> AccountId {
        AccountId(<[u8; 32]>::from(self.key))
    }

    /// Check `signature` over `message` by the ZIP-215 rule (see the module docs). Votes
    /// and proposals use this too, with their own domain-separated messages.
    pub fn verify(
        &self,
        message: &[u8],
        signature: &[u8; SIGNATURE_BYTES],
    ) -> Result<(), SignatureError> {
        self.key
            .verify(&ed25519_zebra::Signature::from_bytes(signature), message)
            .map_err(|_| SignatureError::BadSignature {
                signer: self.account_id(),
            })
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({:?})", self.account_id())
    }
}

/// The 14 byte strings that decode to a point of small order, the only weak keys: the
/// canonical encodings of the 8 points of order dividing 8, the identity and the order-2
/// point with the sign bit set (`x = 0`, so the bit changes nothing), and `y = p`,
/// `y = p + 1` with either sign bit (the only non-canonical `y` of small-order points:
/// `y + p < 2^255` needs `y < 19`). Checking membership judges a key from its bytes alone,
/// with no decompression; a test derives the list from curve arithmetic and checks that
/// it agrees with `VerifyingKey::is_weak` on every byte string that decodes to a torsion
/// point and on random ones.
const SMALL_ORDER_ENCODINGS: [[u8; 32]; 14] = [
    hex32("0100000000000000000000000000000000000000000000000000000000000000"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    hex32("0000000000000000000000000000000000000000000000000000000000000080"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
    hex32("0100000000000000000000000000000000000000000000000000000000000080"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    hex32("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
];

/// Whether `bytes` decode to a point of small order (see [`SMALL_ORDER_ENCODINGS`]).
fn is_small_order_encoding(bytes: &[u8; 32]) -> bool {
    SMALL_ORDER_ENCODINGS.contains(bytes)
}

/// 64 lowercase hex digits as 32 bytes, at compile time.
const fn hex32(text: &str) -> [u8; 32] {
    const fn nibble(digit: u8) -> u8 {
        match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => panic!("bug: not a lowercase hex digit"),
        }
    }
    let digits = text.as_bytes();
    assert!(digits.len() == 64, "bug: not 64 hex digits");
    let mut bytes = [0u8; 32];
    let mut index = 0;
    while index < 32 {
        bytes[index] = (nibble(digits[2 * index]) << 4) | nibble(digits[2 * index + 1]);
        index += 1;
    }
    bytes
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

/// Check `signature` over `message` with `key` by the chain's rule (see the module docs):
/// [`SignatureError::WeakKey`] for a small-order key, else ZIP-215. Costs one key
/// decompression more than [`SignerKey::verify`]; callers that check a signer often keep
/// its [`SignerKey`].
pub fn verify_signature(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8; SIGNATURE_BYTES],
) -> Result<(), SignatureError> {
    SignerKey::from_verifying_key(key)?.verify(message, signature)
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

    /// `s + L` over the 32 bytes of `s`: the same scalar, non-canonically encoded.
    fn plus_l(signature: &mut [u8; SIGNATURE_BYTES]) {
        let l: [u8; 32] =
            hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
                .unwrap()
                .try_into()
                .unwrap();
        let mut carry = 0u16;
        for (byte, add) in signature[32..].iter_mut().zip(l) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "bug: s + L overflowed 256 bits");
    }

    #[test]
    fn malleated_signature_is_refused() {
        let keypair = Keypair::from_seed([7; 32]);
        let message = b"dex";
        let signature = keypair.sign_message(message);
        let key = keypair.account_id().signer_key().unwrap();
        assert_eq!(key.verify(message, &signature), Ok(()));
        // s + L is the same signature in a non-canonical form: refused, so no one but the
        // signer can turn a valid signature into another.
        let mut malleated = signature;
        plus_l(&mut malleated);
        assert_eq!(
            key.verify(message, &malleated),
            Err(SignatureError::BadSignature {
                signer: keypair.account_id()
            })
        );
        assert!(verify_signature(&keypair.verifying_key(), message, &malleated).is_err());
    }

    #[test]
    fn weak_key_is_refused_although_its_forgery_passes_the_cofactored_equation() {
        // The identity point is a small-order key; the "signature" R = identity, s = 0
        // passes the cofactored (and the cofactorless) equation for every message.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity);
        let zebra_key = ed25519_zebra::VerificationKey::try_from(identity).unwrap();
        for message in [&b"dex"[..], b"pay me"] {
            assert!(
                zebra_key
                    .verify(&ed25519_zebra::Signature::from_bytes(&forged), message)
                    .is_ok()
            );
            let weak = AccountId(identity).verifying_key().unwrap();
            assert_eq!(
                verify_signature(&weak, message, &forged),
                Err(SignatureError::WeakKey {
                    signer: AccountId(identity)
                })
            );
        }
        assert_eq!(
            AccountId(identity).signer_key(),
            Err(SignatureError::WeakKey {
                signer: AccountId(identity)
            })
        );
    }

    /// `bytes + p` over 256 bits, if it stays below 2^255 (a second, non-canonical `y`).
    fn plus_p(bytes: [u8; 32]) -> Option<[u8; 32]> {
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let mut sum = [0u8; 32];
        let mut carry = 0u16;
        for (index, (a, b)) in bytes.iter().zip(p).enumerate() {
            let total = u16::from(*a) + u16::from(b) + carry;
            sum[index] = total as u8;
            carry = total >> 8;
        }
        (carry == 0 && sum[31] & 0x80 == 0).then_some(sum)
    }

    #[test]
    fn small_order_encodings_are_exactly_the_torsion_encodings() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::edwards::CompressedEdwardsY;
        // Every encoding of a torsion point T has the y of T, as y or y + p (2p > 2^255
        // leaves no third), and either sign bit: try all of them and keep what decodes to T.
        let mut derived = Vec::new();
        for point in EIGHT_TORSION {
            let mut y = point.compress().to_bytes();
            y[31] &= 0x7f;
            for raw_y in [Some(y), plus_p(y)].into_iter().flatten() {
                for sign in [0u8, 0x80] {
                    let mut candidate = raw_y;
                    candidate[31] |= sign;
                    if CompressedEdwardsY(candidate).decompress() == Some(point) {
                        derived.push(candidate);
                    }
                }
            }
        }
        derived.sort_unstable();
        let mut listed = SMALL_ORDER_ENCODINGS.to_vec();
        listed.sort_unstable();
        assert_eq!(derived, listed);
        for bytes in SMALL_ORDER_ENCODINGS {
            assert!(AccountId(bytes).verifying_key().unwrap().is_weak());
        }
    }

    proptest::proptest! {
        /// The list agrees with decompression and `is_weak` on random byte strings (almost
        /// all of which are not small-order) and on small perturbations of listed ones.
        #[test]
        fn small_order_list_agrees_with_is_weak(
            random in proptest::prelude::any::<[u8; 32]>(),
            listed in 0usize..14,
            byte in 0usize..32,
            delta in 0u8..3,
        ) {
            let mut near = SMALL_ORDER_ENCODINGS[listed];
            near[byte] = near[byte].wrapping_add(delta);
            for bytes in [random, near] {
                let weak = AccountId(bytes).verifying_key().is_ok_and(|key| key.is_weak());
                proptest::prop_assert_eq!(is_small_order_encoding(&bytes), weak);
                let verdict = AccountId(bytes).signer_key();
                let from_key = AccountId(bytes)
                    .verifying_key()
                    .and_then(|key| SignerKey::from_verifying_key(&key));
                proptest::prop_assert_eq!(verdict, from_key);
            }
        }
    }

    #[test]
    fn signer_key_round_trips_and_debug_names_the_account() {
        let keypair = Keypair::from_seed([9; 32]);
        let key = keypair.account_id().signer_key().unwrap();
        assert_eq!(key.account_id(), keypair.account_id());
        assert_eq!(
            SignerKey::from_verifying_key(&keypair.verifying_key()),
            Ok(key)
        );
        assert_eq!(
            format!("{key:?}"),
            format!("SignerKey({:?})", keypair.account_id())
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Signatures made by ed25519-dalek (standard RFC 8032 signing) verify under the
        /// rule, as they do under `verify_strict`, and a flipped bit spoils them for both.
        #[test]
        fn dalek_signatures_verify_under_the_rule(
            seed in proptest::prelude::any::<[u8; 32]>(),
            message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
            bit in 0usize..512,
        ) {
            let keypair = Keypair::from_seed(seed);
            let signature = keypair.sign_message(&message);
            let key = keypair.account_id().signer_key().unwrap();
            proptest::prop_assert_eq!(key.verify(&message, &signature), Ok(()));
            proptest::prop_assert_eq!(
                verify_signature(&keypair.verifying_key(), &message, &signature),
                Ok(())
            );
            let strict = keypair
                .verifying_key()
                .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature));
            proptest::prop_assert!(strict.is_ok());

            let mut spoiled = signature;
            spoiled[bit / 8] ^= 1 << (bit % 8);
            proptest::prop_assert_eq!(
                key.verify(&message, &spoiled),
                Err(SignatureError::BadSignature { signer: keypair.account_id() })
            );
        }
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
