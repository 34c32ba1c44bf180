//! Golden verdicts of the chain's signature rule (ZIP-215 with small-order keys refused) on
//! the edge cases where it differs from ed25519-dalek's `verify_strict`, the rule before
//! (docs/adr/0003 lists them, docs/adr/0004 adopts the rule).
//!
//! Every validator must reach the same verdict on every input forever, so these verdicts are
//! part of the chain's definition. A failure here after a library upgrade means the upgrade
//! changes which signatures are valid: do not update the pinned verdicts, keep the old
//! version. The inputs are pinned as bytes; `vectors_are_what_they_claim_to_be` rebuilds
//! each of them from curve arithmetic, to show where they come from.

use curve25519_dalek::constants::{ED25519_BASEPOINT_TABLE, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use dex_types::{AccountId, SignatureError, verify_signature};
use sha2::{Digest, Sha512};

/// The message every vector signs.
const MESSAGE: &[u8] = b"dex signature rule golden vector";

/// The 14 byte strings that decode to a point of small order: the 8 canonical encodings of
/// the 8 torsion points (in `EIGHT_TORSION` order), then the 6 non-canonical ones (the
/// identity and the order-2 point with the sign bit set; y = p and y = p + 1, either sign
/// bit).
const SMALL_ORDER: [&str; 14] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

/// What the rule's key check says of a signer's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyVerdict {
    /// A curve point not of small order: a usable signer key.
    Usable,
    /// A point of small order: refused.
    Weak,
    /// Not a curve point: refused.
    Invalid,
}

/// The key check's verdict on the non-canonical y encodings `y = p + i` (both sign bits
/// alike): the 26 that decode are the 6 small-order ones (i = 0, 1) and 20 points of unknown
/// discrete logarithm, usable as keys that nobody can sign for.
const NON_CANONICAL_Y_VERDICTS: [KeyVerdict; 19] = {
    use KeyVerdict::{Invalid as I, Usable as U, Weak as W};
    [W, W, I, U, U, U, U, I, I, U, U, I, I, I, U, U, U, I, U]
};

/// The secret scalar of the honest key in the vectors below.
const SECRET: [u8; 32] = [0x21; 32];

/// `A = SECRET·B`, the honest key.
const HONEST_KEY: &str = "ab51466a70c0f3d21ad49eadcf068999d2ac3d2b09bb0aaf308687c37f41c12c";

/// Signatures by [`HONEST_KEY`] over [`MESSAGE`] whose `R` is each [`SMALL_ORDER`] encoding
/// in turn (`s = k·a`): only the signer can make them; `verify_strict` refused them all
/// (small-order `R`), the rule accepts them.
const SMALL_ORDER_R_SIGNATURES: [&str; 14] = [
    "0100000000000000000000000000000000000000000000000000000000000000\
     4431c03920013aef4386d8f8d30409753b64ee03e6473cc713c0d3b81993f20c",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a\
     dfdabe89c80bfafc45dd7a5d2349ab757efcf279b1fbc3323ffb7a691a65400e",
    "0000000000000000000000000000000000000000000000000000000000000080\
     e22e546d739fa17969fa7e544b30fa4f8423e9531b40472a5dd78beb14a84706",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05\
     bdd71d8896dee92d051d01374cc56b2d66a1a5e585a437818ef2e267d42e9504",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f\
     193f596d191f4327d782c84c48371d2e7095fb8496777f3c6fb95360d3494406",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85\
     1e0f91e49240c57197352f649656071c6942d0b5cfc1f72fab0a777efd1a300d",
    "0000000000000000000000000000000000000000000000000000000000000000\
     08f3871600eb3ad8d6522e852bbdea76f904c7800aa91574ebf437907e4a260d",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa\
     a36d6e580ad9d9cef286a0d319441f20aa594208747f7bbe32dc5f0c99aa6a0e",
    "0100000000000000000000000000000000000000000000000000000000000080\
     c2684d9907e8bab87aefdf5014a69d524333b50917734a9006f4770b15b84a0d",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
     1e8d0e93531cc43f9b899f7140f35cd822a4d2056532244472031dfde5fa8b0d",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f\
     e6fd5ed64b115791ff95a71e06b0ac26c7e55fa9949fd7d3f16bd3972e3ccd08",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
     e20c1d3d7b1c3af4419a732877664ee8f7cda1df11cf5234153af7315639350c",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f\
     4538101b10f6a888197a0ba3d22cf498c0522df7b138dc1c7fb6f6e03fe0e602",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
     e0367f1adf1c60ca9a4b4dc32e334ef09ebcac96f292b34df3fd0e005485300c",
];

/// Signatures by mixed-order keys `a·B + T` over [`MESSAGE`]: key, signature, and
/// `verify_strict`'s verdict, which depended on the hash `k` (it accepted when `[k]T = 0`).
/// T is of order 2 (twice: `k` odd, then even), 4 and 8. The rule accepts them all.
const MIXED_ORDER_KEY_SIGNATURES: [(&str, &str, bool); 4] = [
    (
        "42aeb9958f3f0c2de52b615230f976662d53c2d4f644f550cf79783c80be3ed3",
        "e2e0e14a55bd9f93742196ed91a9d46494f35d57e2f9ff229cbc88e9c303b0b5\
         fc28b00e26a1b6aaa80fdff2ec66503b4225b4d2359b2dcc3f5d9dc8f89a060a",
        false,
    ),
    (
        "42aeb9958f3f0c2de52b615230f976662d53c2d4f644f550cf79783c80be3ed3",
        "324367fa7fc3b1e4ac87742ab8115d445f456b05185176b3063d35cecf4baaa2\
         56f2077a3bef91074872260bd202d2ad490b121b8d293ae67d52ae2dea99c10d",
        true,
    ),
    (
        "76d307d6dadec0b1011752f6898d19d11b0fe7db0a7da4826a0752dc62b4dfa5",
        "dbf5befdfe01ddc9578370f53ab8352a0b923e4700f5b6fb473d31958450a8df\
         bf3cc30b84c727dd21614c165e03ef7596d5dfda67d5b63059e580104f354509",
        false,
    ),
    (
        "adeef8b2a64739484f06c3de78275dde4618b0122fcbf84012aae0ff7594bd9e",
        "65892814b0a9bee7ade5ad675c62284ea7e249fba0fcd65fafa007d33817d66a\
         927176f0fecb0b0e26f4817f1be2f8727984ca04699df9ecf93cf6ec49ecbf02",
        false,
    ),
];

/// A signature by [`HONEST_KEY`] over [`MESSAGE`] whose `R` is `r·B + T` (T of order 8):
/// `verify_strict` refused it, the rule accepts it.
const MIXED_ORDER_R_SIGNATURE: &str = "56b3227916bb3cf44214f83548637aa52e2135c9448634b5296e9ec2effd9c0e\
     64aefc02292e6042aca1de71292b49572682b6c5befc2cd059b322c5cb56e103";

fn bytes32(hex_text: &str) -> [u8; 32] {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

fn bytes64(hex_text: &str) -> [u8; 64] {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

/// The rule's verdict through the public API every crate calls.
fn rule(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
    let key = AccountId(*key).verifying_key()?;
    verify_signature(&key, message, signature)
}

/// The rule's verdict through [`AccountId::signer_key`], the path the verifiers take.
fn rule_by_signer_key(
    key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    AccountId(*key).signer_key()?.verify(message, signature)
}

fn strict_accepts(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    AccountId(*key).verifying_key().is_ok_and(|key| {
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
            .is_ok()
    })
}

fn zip215_accepts(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    ed25519_zebra::VerificationKey::try_from(*key)
        .and_then(|key| key.verify(&ed25519_zebra::Signature::from_bytes(signature), message))
        .is_ok()
}

fn non_canonical_y(small: u8, sign: bool) -> [u8; 32] {
    let mut bytes = [0xffu8; 32];
    bytes[31] = 0x7f | if sign { 0x80 } else { 0 };
    // p = 2^255 - 19 has low byte 0xed; adding `small` < 19 does not carry.
    bytes[0] = 0xed + small;
    bytes
}

#[test]
fn small_order_keys_are_refused_in_every_encoding() {
    for encoding in SMALL_ORDER {
        let key = bytes32(encoding);
        assert!(AccountId(key).verifying_key().is_ok(), "{encoding} decodes");
        assert_eq!(
            AccountId(key).signer_key(),
            Err(SignatureError::WeakKey {
                signer: AccountId(key)
            }),
            "{encoding}"
        );
    }
}

#[test]
fn small_order_key_with_small_order_r_196_cases() {
    // Each small-order key with each small-order R and s = 0: ZIP-215 alone accepts all 196
    // (the cofactored equation holds for every message), which is why the rule refuses
    // small-order keys; the rule refuses all 196 as weak keys.
    for key in SMALL_ORDER {
        let key = bytes32(key);
        for r in SMALL_ORDER {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&bytes32(r));
            assert!(zip215_accepts(&key, MESSAGE, &signature));
            assert!(!strict_accepts(&key, MESSAGE, &signature));
            let weak = Err(SignatureError::WeakKey {
                signer: AccountId(key),
            });
            assert_eq!(rule(&key, MESSAGE, &signature), weak);
            assert_eq!(rule_by_signer_key(&key, MESSAGE, &signature), weak);
        }
    }
}

#[test]
fn non_canonical_key_encodings() {
    let mut identity_r = [0u8; 64];
    identity_r[..32].copy_from_slice(&bytes32(SMALL_ORDER[0]));
    for (small, verdict) in NON_CANONICAL_Y_VERDICTS.iter().enumerate() {
        for sign in [false, true] {
            let key = bytes32(&hex::encode(non_canonical_y(small as u8, sign)));
            let signer = AccountId(key);
            let got = match signer.signer_key() {
                Ok(_) => KeyVerdict::Usable,
                Err(SignatureError::WeakKey { .. }) => KeyVerdict::Weak,
                Err(SignatureError::InvalidKey { .. }) => KeyVerdict::Invalid,
                Err(other) => panic!("y = p + {small}: unexpected {other:?}"),
            };
            assert_eq!(got, *verdict, "y = p + {small}, sign bit {sign}");
            if got == KeyVerdict::Usable {
                // The forgery that works for small-order keys does not work here.
                assert_eq!(
                    rule(&key, MESSAGE, &identity_r),
                    Err(SignatureError::BadSignature { signer })
                );
            }
        }
    }
}

#[test]
fn small_order_r_by_the_signer_is_accepted() {
    let key = bytes32(HONEST_KEY);
    for (r, signature) in SMALL_ORDER.iter().zip(SMALL_ORDER_R_SIGNATURES) {
        let signature = bytes64(signature);
        assert_eq!(&hex::encode(&signature[..32]), r);
        assert_eq!(rule(&key, MESSAGE, &signature), Ok(()), "R = {r}");
        assert_eq!(rule_by_signer_key(&key, MESSAGE, &signature), Ok(()));
        assert!(!strict_accepts(&key, MESSAGE, &signature), "R = {r}");
        // Bound to its message.
        assert_eq!(
            rule(&key, b"another message", &signature),
            Err(SignatureError::BadSignature {
                signer: AccountId(key)
            })
        );
    }
}

#[test]
fn mixed_order_keys_and_r_are_accepted() {
    for (key, signature, strict) in MIXED_ORDER_KEY_SIGNATURES {
        let key = bytes32(key);
        let signature = bytes64(signature);
        assert_eq!(rule(&key, MESSAGE, &signature), Ok(()));
        assert_eq!(rule_by_signer_key(&key, MESSAGE, &signature), Ok(()));
        assert_eq!(strict_accepts(&key, MESSAGE, &signature), strict);
    }
    let key = bytes32(HONEST_KEY);
    let signature = bytes64(MIXED_ORDER_R_SIGNATURE);
    assert_eq!(rule(&key, MESSAGE, &signature), Ok(()));
    assert!(!strict_accepts(&key, MESSAGE, &signature));
}

#[test]
fn non_canonical_s_is_refused() {
    // s + L and s = L: the same or zero scalar, non-canonically encoded.
    let key = bytes32(HONEST_KEY);
    let signature = bytes64(SMALL_ORDER_R_SIGNATURES[0]);
    let l = bytes32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let mut plus_l = signature;
    let mut carry = 0u16;
    for (byte, add) in plus_l[32..].iter_mut().zip(l) {
        let sum = u16::from(*byte) + u16::from(add) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    let mut s_is_l = signature;
    s_is_l[32..].copy_from_slice(&l);
    for spoiled in [plus_l, s_is_l] {
        assert!(!zip215_accepts(&key, MESSAGE, &spoiled));
        assert_eq!(
            rule(&key, MESSAGE, &spoiled),
            Err(SignatureError::BadSignature {
                signer: AccountId(key)
            })
        );
    }
}

#[test]
fn rfc8032_vectors_are_accepted() {
    // RFC 8032 section 7.1, tests 1 to 3: ordinary signatures stay valid.
    let vectors = [
        (
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac\
             18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    for (key, message, signature) in vectors {
        let key = bytes32(key);
        let message = hex::decode(message).unwrap();
        let signature = bytes64(signature);
        assert_eq!(rule(&key, &message, &signature), Ok(()));
        assert!(strict_accepts(&key, &message, &signature));
    }
}

/// `k = SHA-512(R ‖ A ‖ M)` reduced mod L.
fn challenge(r: &[u8; 32], key: &[u8; 32], message: &[u8]) -> Scalar {
    Scalar::from_hash(
        Sha512::new()
            .chain_update(r)
            .chain_update(key)
            .chain_update(message),
    )
}

fn signature_bytes(r: &[u8; 32], s: &Scalar) -> String {
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(r);
    signature[32..].copy_from_slice(s.as_bytes());
    hex::encode(signature)
}

fn small_order_encodings() -> Vec<String> {
    let mut encodings: Vec<String> = EIGHT_TORSION
        .iter()
        .map(|point| hex::encode(point.compress().to_bytes()))
        .collect();
    let mut identity_signed = EdwardsPoint::default().compress().to_bytes();
    identity_signed[31] |= 0x80;
    let mut order_2_signed = EIGHT_TORSION[4].compress().to_bytes();
    order_2_signed[31] |= 0x80;
    encodings.push(hex::encode(identity_signed));
    encodings.push(hex::encode(order_2_signed));
    for small in [0, 1] {
        for sign in [false, true] {
            encodings.push(hex::encode(non_canonical_y(small, sign)));
        }
    }
    encodings
}

fn honest_small_order_r_signatures() -> Vec<String> {
    let secret = Scalar::from_bytes_mod_order(SECRET);
    let key = bytes32(HONEST_KEY);
    small_order_encodings()
        .iter()
        .map(|r| {
            let r = bytes32(r);
            signature_bytes(&r, &(challenge(&r, &key, MESSAGE) * secret))
        })
        .collect()
}

/// A signature by `a·B + T` with `s = r + k·a` (T = `EIGHT_TORSION[torsion]`).
fn mixed_order_key_signature(torsion: usize, nonce: u8) -> (String, String, bool) {
    let secret = Scalar::from_bytes_mod_order(SECRET);
    let key = ((&secret * ED25519_BASEPOINT_TABLE) + EIGHT_TORSION[torsion])
        .compress()
        .to_bytes();
    let nonce = Scalar::from_bytes_mod_order([nonce; 32]);
    let r = (&nonce * ED25519_BASEPOINT_TABLE).compress().to_bytes();
    let signature = signature_bytes(&r, &(nonce + challenge(&r, &key, MESSAGE) * secret));
    let strict = strict_accepts(&key, MESSAGE, &bytes64(&signature));
    (hex::encode(key), signature, strict)
}

/// A signature by the honest key with `R = r·B + T` (T of order 8) and `s = r + k·a`.
fn mixed_order_r_signature() -> String {
    let secret = Scalar::from_bytes_mod_order(SECRET);
    let nonce = Scalar::from_bytes_mod_order([0x44; 32]);
    let r = ((&nonce * ED25519_BASEPOINT_TABLE) + EIGHT_TORSION[1])
        .compress()
        .to_bytes();
    let key = bytes32(HONEST_KEY);
    signature_bytes(&r, &(nonce + challenge(&r, &key, MESSAGE) * secret))
}

#[test]
fn vectors_are_what_they_claim_to_be() {
    assert_eq!(small_order_encodings(), SMALL_ORDER.map(String::from));
    for encoding in SMALL_ORDER {
        let point = CompressedEdwardsY(bytes32(encoding)).decompress().unwrap();
        assert!(point.is_small_order(), "{encoding}");
    }
    let secret = Scalar::from_bytes_mod_order(SECRET);
    assert_eq!(
        hex::encode((&secret * ED25519_BASEPOINT_TABLE).compress().to_bytes()),
        HONEST_KEY
    );
    assert_eq!(
        honest_small_order_r_signatures(),
        SMALL_ORDER_R_SIGNATURES.map(String::from)
    );
    let mixed: Vec<(String, String, bool)> = MIXED_ORDER_KEY_SIGNATURES
        .iter()
        .map(|(key, signature, strict)| (key.to_string(), signature.to_string(), *strict))
        .collect();
    assert_eq!(
        vec![
            mixed_order_key_signature(4, 0x31),
            mixed_order_key_signature(4, 0x37),
            mixed_order_key_signature(2, 0x32),
            mixed_order_key_signature(1, 0x33),
        ],
        mixed
    );
    assert_eq!(mixed_order_r_signature(), MIXED_ORDER_R_SIGNATURE);
    // The non-canonical y verdicts: decoding and order straight from curve25519-dalek.
    for (small, verdict) in NON_CANONICAL_Y_VERDICTS.iter().enumerate() {
        for sign in [false, true] {
            let decoded = CompressedEdwardsY(non_canonical_y(small as u8, sign)).decompress();
            let expected = match decoded {
                None => KeyVerdict::Invalid,
                Some(point) if point.is_small_order() => KeyVerdict::Weak,
                Some(_) => KeyVerdict::Usable,
            };
            assert_eq!(expected, *verdict, "y = p + {small}");
        }
    }
}
