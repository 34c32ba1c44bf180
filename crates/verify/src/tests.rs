//! The verifier must give [`SignedTransaction::verify`]'s result for every input: valid
//! signatures, mutated ones, wrong keys, keys that are not curve points, small-order and
//! mixed-order keys and `R` points, non-canonical encodings; whatever the chunking; and a
//! ZIP-215 batch must pass exactly when every item passes the single check.

use super::*;
use curve25519_dalek::constants::{ED25519_BASEPOINT_TABLE, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use dex_types::{
    Action, Amount, AssetId, BatchLeg, ChainId, ClientOrderId, Keypair, MarketId, OrderBatch,
    OrderRequest, OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce,
    TimestampMs, Transaction, Transfer,
};
use proptest::prelude::*;
use sha2::{Digest, Sha512};
use std::sync::OnceLock;

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn keypair(seed: u64) -> Keypair {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[31] = 0x5e;
    Keypair::from_seed(bytes)
}

fn unsigned(signer: AccountId, nonce: u64, order: bool) -> Transaction {
    let action = if order {
        Action::Batch(OrderBatch {
            legs: vec![BatchLeg::Place(OrderRequest {
                market: MarketId(1),
                client_order_id: Some(ClientOrderId(nonce)),
                side: Side::Buy,
                order_type: OrderType::Limit,
                price_ticks: PriceTicks(100 + nonce % 50),
                size_lots: SizeLots(1 + nonce % 7),
                time_in_force: TimeInForce::Gtc,
                self_trade: SelfTradePrevention::CancelResting,
            })],
            atomic: true,
        })
    } else {
        Action::Transfer(Transfer {
            to: AccountId([9; 32]),
            asset: AssetId(0),
            amount: Amount(u128::from(nonce) + 1),
        })
    };
    Transaction {
        chain_id: ChainId(3),
        account: signer,
        signer,
        nonce,
        expires_at: TimestampMs(1_000_000),
        action,
    }
}

fn signed(seed: u64, nonce: u64) -> SignedTransaction {
    let key = keypair(seed);
    key.sign(unsigned(key.account_id(), nonce, nonce.is_multiple_of(2)))
        .unwrap()
}

/// The canonical encodings of the eight points of order dividing 8.
fn torsion(index: usize) -> [u8; 32] {
    EIGHT_TORSION[index % 8].compress().to_bytes()
}

/// The field prime p = 2^255 - 19 plus `small`, as a (non-canonical) 255-bit y encoding
/// with the sign bit `sign`. For the y values 0..19 that are curve points this is a second
/// encoding of that point.
fn non_canonical_y(small: u8, sign: bool) -> [u8; 32] {
    let mut bytes = [0xffu8; 32];
    bytes[31] = 0x7f;
    // p = 2^255 - 19: low byte 0xed; adding `small` < 19 does not carry.
    bytes[0] = 0xedu8 + small;
    if sign {
        bytes[31] |= 0x80;
    }
    bytes
}

/// A signature by the secret scalar `secret` made to verify under the mixed-order key
/// `A + T` (T of order 8): `s = r + k·a` with `k = H(R ‖ (A+T) ‖ M)`. The cofactored
/// equation holds for every message; the strict one only when `8 | k`.
fn mixed_order_signature(
    secret: Scalar,
    nonce: Scalar,
    torsion_index: usize,
    message: &[u8],
) -> ([u8; 32], [u8; 64]) {
    let public: EdwardsPoint = &secret * ED25519_BASEPOINT_TABLE;
    let mixed = (public + EIGHT_TORSION[torsion_index % 8])
        .compress()
        .to_bytes();
    let r = (&nonce * ED25519_BASEPOINT_TABLE).compress().to_bytes();
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(r)
            .chain_update(mixed)
            .chain_update(message),
    );
    let s = nonce + k * secret;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&r);
    signature[32..].copy_from_slice(s.as_bytes());
    (mixed, signature)
}

/// `bytes + L` over 256 bits (the same scalar, non-canonically encoded, if `bytes < 2^256 - L`).
fn plus_l(bytes: &mut [u8]) {
    let mut carry = 0u16;
    for (byte, add) in bytes.iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(add) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
}

/// The 14 encodings of small-order points: the 8 canonical ones, then the identity and the
/// order-2 point with the sign bit set, then y = p and y = p + 1 with either sign bit.
fn small_order_encoding(index: usize) -> [u8; 32] {
    match index % 14 {
        index @ 0..8 => torsion(index),
        8 => {
            let mut bytes = torsion(0);
            bytes[31] |= 0x80;
            bytes
        }
        9 => {
            let mut bytes = torsion(4);
            bytes[31] |= 0x80;
            bytes
        }
        index => non_canonical_y(u8::from(index >= 12), index % 2 == 1),
    }
}

/// Rewrite `tx` as signed by the secret scalar `secret` (the signer becomes `secret·B`)
/// with the given `R` bytes and `s = nonce + k·secret`, where `nonce` is the discrete
/// logarithm of `R`'s prime-order part (0 for a small-order `R`). The cofactored equation
/// holds; the strict one only if `R` is canonical and of prime order.
fn sign_with_r(tx: &mut SignedTransaction, secret: Scalar, r: [u8; 32], nonce: Scalar) {
    tx.tx.signer = AccountId((&secret * ED25519_BASEPOINT_TABLE).compress().to_bytes());
    tx.tx.account = tx.tx.signer;
    let message = tx.tx.signing_message();
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(r)
            .chain_update(tx.tx.signer.0)
            .chain_update(message.as_bytes()),
    );
    tx.signature[..32].copy_from_slice(&r);
    tx.signature[32..].copy_from_slice((nonce + k * secret).as_bytes());
}

/// How a test transaction is spoiled, or not.
#[derive(Debug, Clone)]
enum Mutation {
    None,
    FlipSignatureBit(u16),
    RandomSignature([u8; 32], [u8; 32]),
    /// s + L: the same signature with a non-canonical s.
    SPlusL,
    /// R replaced by a small-order point.
    TorsionR(usize),
    /// R replaced by a non-canonical encoding.
    NonCanonicalR(u8, bool),
    /// The signer replaced by random bytes (about half are curve points).
    RandomSigner([u8; 32]),
    /// The signer replaced by another valid key; the signature is the original's.
    OtherSigner(u64),
    /// A small-order signer with the "signature" `R = identity, s = 0`, which the
    /// cofactorless equation accepts for every message unless small orders are refused.
    TorsionSignerForged(usize),
    /// A non-canonically encoded signer with the original signature.
    NonCanonicalSigner(u8, bool),
    /// A mixed-order signer (a real key plus a torsion point) with a signature that
    /// satisfies the cofactored equation.
    MixedOrderSigner([u8; 32], [u8; 32], usize),
    /// Signed by its signer with a small-order `R` (any of the 14 encodings): valid under
    /// ZIP-215, refused by `verify_strict`.
    SmallOrderRBySigner([u8; 32], usize),
    /// Signed by its signer with a mixed-order `R = r·B + T`: valid under ZIP-215.
    MixedOrderRBySigner([u8; 32], [u8; 32], usize),
    /// The transaction changed after signing.
    AlteredNonce,
}

fn apply(mut tx: SignedTransaction, mutation: &Mutation) -> SignedTransaction {
    match mutation {
        Mutation::None => {}
        Mutation::FlipSignatureBit(bit) => {
            let bit = usize::from(*bit) % 512;
            tx.signature[bit / 8] ^= 1 << (bit % 8);
        }
        Mutation::RandomSignature(r, s) => {
            tx.signature[..32].copy_from_slice(r);
            tx.signature[32..].copy_from_slice(s);
        }
        Mutation::SPlusL => plus_l(&mut tx.signature[32..]),
        Mutation::TorsionR(index) => tx.signature[..32].copy_from_slice(&torsion(*index)),
        Mutation::NonCanonicalR(small, sign) => {
            tx.signature[..32].copy_from_slice(&non_canonical_y(*small, *sign));
        }
        Mutation::RandomSigner(bytes) => {
            tx.tx.signer = AccountId(*bytes);
            tx.tx.account = tx.tx.signer;
        }
        Mutation::OtherSigner(seed) => {
            tx.tx.signer = keypair(seed.wrapping_add(1_000)).account_id();
            tx.tx.account = tx.tx.signer;
        }
        Mutation::TorsionSignerForged(index) => {
            tx.tx.signer = AccountId(torsion(*index));
            tx.tx.account = tx.tx.signer;
            let identity = EdwardsPoint::default().compress().to_bytes();
            tx.signature = [0; 64];
            tx.signature[..32].copy_from_slice(&identity);
        }
        Mutation::NonCanonicalSigner(small, sign) => {
            tx.tx.signer = AccountId(non_canonical_y(*small, *sign));
            tx.tx.account = tx.tx.signer;
        }
        Mutation::MixedOrderSigner(secret, nonce, index) => {
            // Sign the transaction as it will be with the mixed-order signer.
            let secret = Scalar::from_bytes_mod_order(*secret);
            let nonce = Scalar::from_bytes_mod_order(*nonce);
            let public = (&secret * ED25519_BASEPOINT_TABLE) + EIGHT_TORSION[index % 8];
            tx.tx.signer = AccountId(public.compress().to_bytes());
            tx.tx.account = tx.tx.signer;
            let message = tx.tx.signing_message();
            let (signer, signature) =
                mixed_order_signature(secret, nonce, *index, message.as_bytes());
            assert_eq!(signer, tx.tx.signer.0, "bug: the test signs another key");
            tx.signature = signature;
        }
        Mutation::SmallOrderRBySigner(secret, index) => {
            let secret = Scalar::from_bytes_mod_order(*secret);
            sign_with_r(&mut tx, secret, small_order_encoding(*index), Scalar::ZERO);
        }
        Mutation::MixedOrderRBySigner(secret, nonce, index) => {
            let secret = Scalar::from_bytes_mod_order(*secret);
            let nonce = Scalar::from_bytes_mod_order(*nonce);
            let r = ((&nonce * ED25519_BASEPOINT_TABLE) + EIGHT_TORSION[index % 8])
                .compress()
                .to_bytes();
            sign_with_r(&mut tx, secret, r, nonce);
        }
        Mutation::AlteredNonce => tx.tx.nonce = tx.tx.nonce.wrapping_add(1),
    }
    tx
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => Just(Mutation::None),
        2 => any::<u16>().prop_map(Mutation::FlipSignatureBit),
        1 => (any::<[u8; 32]>(), any::<[u8; 32]>())
            .prop_map(|(r, s)| Mutation::RandomSignature(r, s)),
        1 => Just(Mutation::SPlusL),
        1 => (0usize..8).prop_map(Mutation::TorsionR),
        1 => (0u8..19, any::<bool>()).prop_map(|(y, sign)| Mutation::NonCanonicalR(y, sign)),
        1 => any::<[u8; 32]>().prop_map(Mutation::RandomSigner),
        1 => any::<u64>().prop_map(Mutation::OtherSigner),
        1 => (0usize..8).prop_map(Mutation::TorsionSignerForged),
        1 => (0u8..19, any::<bool>())
            .prop_map(|(y, sign)| Mutation::NonCanonicalSigner(y, sign)),
        1 => (any::<[u8; 32]>(), any::<[u8; 32]>(), 1usize..8)
            .prop_map(|(a, r, t)| Mutation::MixedOrderSigner(a, r, t)),
        1 => (any::<[u8; 32]>(), 0usize..14)
            .prop_map(|(a, index)| Mutation::SmallOrderRBySigner(a, index)),
        1 => (any::<[u8; 32]>(), any::<[u8; 32]>(), 1usize..8)
            .prop_map(|(a, r, t)| Mutation::MixedOrderRBySigner(a, r, t)),
        1 => Just(Mutation::AlteredNonce),
    ]
}

/// One verifier shared by every case of a property, with a cache so small that entries
/// are evicted all the time, and one without a cache.
fn shared() -> &'static (TxVerifier, TxVerifier) {
    static SHARED: OnceLock<(TxVerifier, TxVerifier)> = OnceLock::new();
    SHARED.get_or_init(|| (TxVerifier::new(2, 8), TxVerifier::new(3, 0)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verify_one_agrees_with_verify(
        seed in 0u64..16,
        nonce in any::<u64>(),
        mutation in mutation(),
    ) {
        let tx = apply(signed(seed, nonce), &mutation);
        let expected = tx.verify();
        let (cached, uncached) = shared();
        prop_assert_eq!(cached.verify_one(&tx), expected);
        prop_assert_eq!(uncached.verify_one(&tx), expected);
        // A second time, now that the key is (probably) cached.
        prop_assert_eq!(cached.verify_one(&tx), expected);
    }

    #[test]
    fn verify_batch_agrees_with_verify_in_order(
        cases in prop::collection::vec((0u64..16, any::<u64>(), mutation()), 0..80),
    ) {
        let txs = build(&cases);
        let expected: Vec<_> = txs.iter().map(SignedTransaction::verify).collect();
        let (cached, uncached) = shared();
        prop_assert_eq!(cached.verify_batch(&txs), expected.clone());
        prop_assert_eq!(uncached.verify_batch(&txs), expected);
    }

    /// Any split of the input into chunks, each checked as one batch, gives the single
    /// rule's results: the chunking only changes the work, never a verdict.
    #[test]
    fn any_chunking_gives_the_single_results(
        cases in prop::collection::vec((0u64..16, any::<u64>(), mutation()), 1..48),
        chunk_len in 1usize..50,
        split in any::<prop::sample::Index>(),
    ) {
        let txs = build(&cases);
        let expected: Vec<_> = txs.iter().map(SignedTransaction::verify).collect();
        let (cached, uncached) = shared();
        prop_assert_eq!(cached.verify_in_chunks(&txs, chunk_len), expected.clone());
        prop_assert_eq!(uncached.verify_in_chunks(&txs, chunk_len), expected.clone());
        // Two calls on the two halves of an arbitrary split.
        let (left, right) = txs.split_at(split.index(txs.len() + 1));
        let mut halves = cached.verify_batch(left);
        halves.extend(cached.verify_batch(right));
        prop_assert_eq!(halves, expected.clone());
        // Without a random source, item by item.
        prop_assert_eq!(cached.verify_chunk(&txs, None), expected);
    }

    /// The ZIP-215 batch equation itself (no fallback) holds exactly when every queued
    /// item passes the single check, whatever the coefficients' seed; inputs include
    /// valid edge cases (small- and mixed-order `R`, mixed-order keys) the batch must
    /// accept and spoiled ones it must refuse.
    #[test]
    fn the_batch_equation_holds_exactly_when_every_item_passes(
        cases in prop::collection::vec((0u64..16, any::<u64>(), mutation()), 2..24),
        seed in any::<[u8; 32]>(),
    ) {
        let txs = build(&cases);
        let queued: Vec<Queued> = txs
            .iter()
            .enumerate()
            .filter_map(|(index, tx)| {
                tx.tx.signer.signer_key().ok().map(|key| Queued {
                    index,
                    key,
                    message: tx.tx.signing_message(),
                })
            })
            .collect();
        prop_assume!(!queued.is_empty());
        let all_pass = queued.iter().all(|item| txs[item.index].verify().is_ok());
        prop_assert_eq!(
            batch_passes(&txs, &queued, ChaCha20Rng::from_seed(seed)),
            all_pass
        );
    }
}

fn build(cases: &[(u64, u64, Mutation)]) -> Vec<SignedTransaction> {
    cases
        .iter()
        .map(|(seed, nonce, mutation)| apply(signed(*seed, *nonce), mutation))
        .collect()
}

#[test]
fn valid_edge_cases_pass_as_one_batch() {
    // Signatures the rule accepts that `verify_strict` refused, all in one batch: the batch
    // equation holds for them, so honest edge cases do not force the item-by-item path.
    let mut txs = Vec::new();
    for index in 0..14 {
        txs.push(apply(
            signed(1, index as u64),
            &Mutation::SmallOrderRBySigner([index as u8 + 1; 32], index),
        ));
    }
    for index in 1..8 {
        txs.push(apply(
            signed(2, index as u64),
            &Mutation::MixedOrderRBySigner([0x30; 32], [index as u8; 32], index),
        ));
        txs.push(apply(
            signed(3, index as u64),
            &Mutation::MixedOrderSigner([0x40; 32], [index as u8 + 9; 32], index),
        ));
    }
    txs.extend((0..8).map(|n| signed(n, n)));
    assert!(txs.iter().all(|tx| tx.verify().is_ok()));
    let queued: Vec<Queued> = txs
        .iter()
        .enumerate()
        .map(|(index, tx)| Queued {
            index,
            key: tx.tx.signer.signer_key().unwrap(),
            message: tx.tx.signing_message(),
        })
        .collect();
    assert!(batch_passes(&txs, &queued, ChaCha20Rng::from_seed([5; 32])));
    // One spoiled item makes the batch fail, and the fallback finds exactly that one.
    let mut spoiled = txs.clone();
    spoiled[10] = apply(spoiled[10].clone(), &Mutation::FlipSignatureBit(300));
    assert!(!batch_passes(
        &spoiled,
        &queued,
        ChaCha20Rng::from_seed([5; 32])
    ));
    let verifier = TxVerifier::new(2, 64);
    let results = verifier.verify_in_chunks(&spoiled, spoiled.len());
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result.is_err(), index == 10, "transaction {index}");
    }
}

#[test]
fn valid_transactions_verify_and_errors_are_typed() {
    let verifier = TxVerifier::new(2, 100);
    let good: Vec<_> = (0..50).map(|n| signed(n % 5, n)).collect();
    assert!(verifier.verify_batch(&good).iter().all(Result::is_ok));
    assert_eq!(verifier.cached_keys(), 5);

    let bad_signature = apply(good[0].clone(), &Mutation::FlipSignatureBit(3));
    assert_eq!(
        verifier.verify_one(&bad_signature),
        Err(SignatureError::BadSignature {
            signer: bad_signature.tx.signer
        })
    );
    // y = 2 is not on the curve.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    let bad_key = apply(good[1].clone(), &Mutation::RandomSigner(not_a_point));
    assert_eq!(
        verifier.verify_one(&bad_key),
        Err(SignatureError::InvalidKey {
            signer: AccountId(not_a_point)
        })
    );
    // Invalid keys are not cached.
    assert_eq!(verifier.cached_keys(), 5);
}

#[test]
fn batch_keeps_input_order_with_mixed_results() {
    let verifier = TxVerifier::new(2, 16);
    let txs: Vec<_> = (0..200)
        .map(|n| {
            let tx = signed(n % 7, n);
            if n % 3 == 0 {
                apply(tx, &Mutation::AlteredNonce)
            } else {
                tx
            }
        })
        .collect();
    let results = verifier.verify_batch(&txs);
    assert_eq!(results.len(), txs.len());
    for (n, result) in results.iter().enumerate() {
        assert_eq!(result.is_err(), n % 3 == 0, "transaction {n}");
    }
    assert!(verifier.verify_batch(&[]).is_empty());
}

#[test]
fn weak_keys_and_malleated_signatures_are_refused() {
    let verifier = TxVerifier::new(1, 16);
    let tx = signed(1, 1);
    assert_eq!(verifier.verify_one(&tx), Ok(()));
    // The malleated signature (s + L) of a valid one is refused.
    let malleated = apply(tx.clone(), &Mutation::SPlusL);
    assert_eq!(
        verifier.verify_one(&malleated),
        Err(SignatureError::BadSignature {
            signer: tx.tx.signer
        })
    );
    // Every small-order key is a curve point, and is refused as weak, with the forgery
    // that the cofactored equation accepts for any message, in a batch as alone.
    let mut forgeries = Vec::new();
    for index in 0..14 {
        let mut forged = apply(tx.clone(), &Mutation::TorsionSignerForged(0));
        forged.tx.signer = AccountId(small_order_encoding(index));
        forged.tx.account = forged.tx.signer;
        assert!(forged.tx.signer.verifying_key().is_ok());
        let weak = Err(SignatureError::WeakKey {
            signer: forged.tx.signer,
        });
        assert_eq!(verifier.verify_one(&forged), weak);
        assert_eq!(forged.verify(), weak);
        forgeries.push(forged);
    }
    forgeries.push(tx);
    let results = verifier.verify_batch(&forgeries);
    assert_eq!(results.last(), Some(&Ok(())));
    assert!(
        results[..14]
            .iter()
            .all(|result| matches!(result, Err(SignatureError::WeakKey { .. })))
    );
    // Weak keys are not cached.
    assert_eq!(verifier.cached_keys(), 1);
}

#[test]
fn small_inputs_are_verified_inline() {
    // Below INLINE_TXS_MAX the pool is not used: a verifier whose pool is busy forever
    // would otherwise block. One thread of a one-thread pool waits on a barrier while the
    // calling thread verifies a small input.
    let verifier = TxVerifier::new(1, 16);
    let txs: Vec<_> = (0..INLINE_TXS_MAX as u64 - 1)
        .map(|n| signed(n, n))
        .collect();
    let (occupied, is_occupied) = std::sync::mpsc::channel::<()>();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let busy = verifier.clone();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            busy.inner.pool.install(move || {
                occupied.send(()).unwrap();
                wait.recv().unwrap();
            })
        });
        is_occupied.recv().unwrap();
        assert!(verifier.verify_batch(&txs).iter().all(Result::is_ok));
        release.send(()).unwrap();
    });
}

#[test]
fn clones_share_the_pool_and_the_cache() {
    let verifier = TxVerifier::new(2, 16);
    let clone = verifier.clone();
    clone.verify_one(&signed(4, 4)).unwrap();
    assert_eq!(verifier.cached_keys(), 1);
    assert_eq!(clone.threads(), 2);
    assert!(format!("{verifier:?}").contains("threads: 2"));
}

#[test]
fn zero_threads_means_every_core() {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    assert_eq!(TxVerifier::new(0, 1).threads(), cores);
}

#[test]
fn verifier_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<TxVerifier>();
}

#[test]
fn many_threads_share_one_verifier() {
    let verifier = TxVerifier::new(2, 4);
    let txs: Vec<_> = (0..64).map(|n| signed(n % 9, n)).collect();
    std::thread::scope(|scope| {
        for chunk in txs.chunks(16) {
            let verifier = verifier.clone();
            scope.spawn(move || {
                for tx in chunk {
                    assert_eq!(verifier.verify_one(tx), Ok(()));
                }
                assert!(verifier.verify_batch(chunk).iter().all(Result::is_ok));
            });
        }
    });
}

/// The facts the signature ADRs (docs/adr/0003, 0004) state about ZIP-215 against
/// `verify_strict`, the rule before, checked with the same libraries.
mod zip215 {
    use super::*;
    use ed25519_zebra::{Signature as ZebraSignature, VerificationKey};

    fn zip215_accepts(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        VerificationKey::try_from(*key)
            .and_then(|key| key.verify(&ZebraSignature::from_bytes(signature), message))
            .is_ok()
    }

    fn strict_accepts(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        AccountId(*key).verifying_key().is_ok_and(|key| {
            key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
                .is_ok()
        })
    }

    #[test]
    fn the_rule_is_zip215_plus_the_weak_key_refusal() {
        // On every mutation kind: the rule accepts exactly when ZIP-215 accepts and the key
        // is not of small order.
        for seed in 0..4u64 {
            for mutation in [
                Mutation::None,
                Mutation::SPlusL,
                Mutation::TorsionR(3),
                Mutation::NonCanonicalR(1, true),
                Mutation::TorsionSignerForged(5),
                Mutation::NonCanonicalSigner(1, false),
                Mutation::NonCanonicalSigner(3, false),
                Mutation::MixedOrderSigner([7; 32], [8; 32], 2),
                Mutation::SmallOrderRBySigner([9; 32], 11),
                Mutation::MixedOrderRBySigner([9; 32], [10; 32], 6),
                Mutation::AlteredNonce,
            ] {
                let tx = apply(signed(seed, seed), &mutation);
                let key = tx.tx.signer.0;
                let message = tx.tx.signing_message();
                let weak = AccountId(key)
                    .verifying_key()
                    .is_ok_and(|key| key.is_weak());
                assert_eq!(
                    tx.verify().is_ok(),
                    zip215_accepts(&key, message.as_bytes(), &tx.signature) && !weak,
                    "{mutation:?}"
                );
            }
        }
    }

    #[test]
    fn dalek_batch_verification_accepts_a_forgery_verify_strict_refuses() {
        // ed25519-dalek's `verify_batch` checks the cofactorless batch equation and does not
        // refuse small-order keys: a batch and single checks of the same input disagree.
        let key = torsion(0);
        let message = b"pay";
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&EdwardsPoint::default().compress().to_bytes());
        let verifying_key = AccountId(key).verifying_key().unwrap();
        assert!(
            ed25519_dalek::verify_batch(
                &[&message[..]],
                &[ed25519_dalek::Signature::from_bytes(&forged)],
                &[verifying_key]
            )
            .is_ok()
        );
        assert!(!strict_accepts(&key, message, &forged));
    }

    #[test]
    fn small_order_keys_forge_under_zip215_only() {
        let mut identity_r = [0u8; 64];
        identity_r[..32].copy_from_slice(&EdwardsPoint::default().compress().to_bytes());
        for index in 0..8 {
            let key = torsion(index);
            for message in [&b"a"[..], b"any message at all"] {
                assert!(zip215_accepts(&key, message, &identity_r));
                assert!(!strict_accepts(&key, message, &identity_r));
            }
        }
    }

    #[test]
    fn mixed_order_keys_verify_under_zip215_always_and_strict_only_when_8_divides_k() {
        let secret = Scalar::from_bytes_mod_order([0x11; 32]);
        let mut strict_accepted = 0;
        let messages = 64u32;
        for n in 0..messages {
            let message = n.to_le_bytes();
            let nonce = Scalar::from_bytes_mod_order([n as u8 ^ 0x5a; 32]) + Scalar::ONE;
            let (key, signature) = mixed_order_signature(secret, nonce, 1, &message);
            assert!(zip215_accepts(&key, &message, &signature));
            let r = &signature[..32];
            let k = Scalar::from_hash(
                Sha512::new()
                    .chain_update(r)
                    .chain_update(key)
                    .chain_update(message),
            );
            let divisible_by_8 = k.as_bytes()[0].is_multiple_of(8);
            assert_eq!(strict_accepts(&key, &message, &signature), divisible_by_8);
            strict_accepted += usize::from(divisible_by_8);
        }
        // About one in eight; the exact count is fixed by the inputs.
        assert!(strict_accepted < messages as usize / 2);
    }

    #[test]
    fn strict_acceptance_implies_zip215_acceptance() {
        // Honest signatures, and the inputs the property tests spoil them with.
        for seed in 0..8u64 {
            let tx = signed(seed, seed);
            let message = tx.tx.signing_message();
            for mutation in [
                Mutation::None,
                Mutation::SPlusL,
                Mutation::TorsionR(3),
                Mutation::NonCanonicalR(1, false),
                Mutation::NonCanonicalSigner(1, true),
                Mutation::AlteredNonce,
            ] {
                let spoiled = apply(tx.clone(), &mutation);
                let message = if matches!(mutation, Mutation::AlteredNonce) {
                    spoiled.tx.signing_message()
                } else {
                    message
                };
                let key = spoiled.tx.signer.0;
                if strict_accepts(&key, message.as_bytes(), &spoiled.signature) {
                    assert!(zip215_accepts(&key, message.as_bytes(), &spoiled.signature));
                }
            }
            assert!(strict_accepts(
                &tx.tx.signer.0,
                message.as_bytes(),
                &tx.signature
            ));
        }
    }

    #[test]
    fn identity_r_verifies_under_zip215_only_in_either_encoding() {
        // With R the identity (r = 0), s = k·a satisfies even the cofactorless equation
        // for an honest prime-order key; strict verification refuses R for its small
        // order, ZIP-215 accepts it, canonically encoded (y = 1) or not (y = p + 1).
        let secret = Scalar::from_bytes_mod_order([0x22; 32]);
        let key = (&secret * ED25519_BASEPOINT_TABLE).compress().to_bytes();
        let canonical = EdwardsPoint::default().compress().to_bytes();
        let non_canonical = non_canonical_y(1, false);
        assert_eq!(
            CompressedEdwardsY(non_canonical).decompress(),
            Some(EdwardsPoint::default())
        );
        for r in [canonical, non_canonical] {
            let message = b"order";
            let k = Scalar::from_hash(
                Sha512::new()
                    .chain_update(r)
                    .chain_update(key)
                    .chain_update(message),
            );
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&r);
            signature[32..].copy_from_slice((k * secret).as_bytes());
            assert!(zip215_accepts(&key, message, &signature));
            assert!(!strict_accepts(&key, message, &signature));
        }
    }
}
