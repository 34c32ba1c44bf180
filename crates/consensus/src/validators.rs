//! The validator set: who votes, with how much power, and who proposes when.
//!
//! # Proposer selection
//! The proposer of `(height, round)` is a deterministic, stateless function of the set, the
//! height and the round, so a restarted node (or the SDK) computes it without replaying any
//! history. It is a weighted rotation over *slots*:
//!
//! 1. Powers are divided by their greatest common divisor, giving weights `w_i` with total
//!    `W`; validator `i` owns the interval `[c_{i-1}, c_i)` of `0..W` (cumulative weights,
//!    validators in set order).
//! 2. Slot `s = (height + round) mod W` lands on the point `x = s · k mod W`, where the
//!    stride `k` is the integer nearest below `W · 0.618…` (the golden-ratio conjugate) that
//!    is coprime with `W`.
//! 3. The proposer is the validator whose interval holds `x`.
//!
//! Because `k` is coprime with `W`, any `W` consecutive slots visit every point exactly
//! once, so over every window of `W` slots validator `i` proposes exactly `w_i` times: the
//! rotation is exactly proportional to power. With equal powers `W = n` and the rotation is
//! a plain round robin (a permutation of the validators in every window of `n` slots).
//! Stepping by ≈0.618·W spreads each validator's turns out (the three-distance property of
//! golden-ratio sequences). Consecutive points are `k` or `W - k` apart, and both distances
//! are at least every weight below `W/4` (checked exhaustively for every `W` up to 100 000
//! by a test; beyond that the gap to the next coprime is far smaller than `W/8`), so two
//! consecutive slots — the next round, or the next height — never pick the same validator
//! when it holds less than a quarter of the power: a faulty proposer that small never holds
//! two rounds in a row. (For `W` above a few dozen the bound is close to 38%.)
//!
//! Tendermint's proposer-priority algorithm gives similar fairness but its state depends on
//! every earlier height and round; this scheme trades its perfect smoothness for being a
//! pure function that costs one binary search.

use crate::types::{Height, Round, ValidatorIndex};
use ed25519_dalek::VerifyingKey;
use std::collections::BTreeMap;

/// The most validators a set may have. Bounds certificate size and per-round memory.
pub const MAX_VALIDATORS: usize = 1024;

/// One validator: its ed25519 public key and its voting power.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// The key that signs this validator's proposals and votes.
    pub public_key: VerifyingKey,
    /// Voting power (any positive integer; only ratios matter).
    pub voting_power: u64,
}

/// Why a validator set could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// The set has no validators; nothing could ever be decided.
    #[error("the validator set is empty")]
    Empty,
    /// More validators than the protocol supports.
    #[error("the validator set has {count} validators; at most {max} are supported")]
    TooMany {
        /// Validators given.
        count: usize,
        /// [`MAX_VALIDATORS`].
        max: usize,
    },
    /// A validator was given zero voting power; list only validators that vote.
    #[error("validator {public_key} has zero voting power")]
    ZeroPower {
        /// Hex of the key.
        public_key: String,
    },
    /// The same key appears twice, which would let one signer count twice.
    #[error("validator {public_key} appears more than once")]
    DuplicateKey {
        /// Hex of the key.
        public_key: String,
    },
    /// The 32 bytes are not a valid ed25519 public key.
    #[error("validator key {public_key} is not a valid ed25519 public key")]
    InvalidKey {
        /// Hex of the bytes given.
        public_key: String,
    },
    /// The key is of small order, so signatures under it prove nothing.
    #[error("validator key {public_key} is a weak (small-order) ed25519 key")]
    WeakKey {
        /// Hex of the key.
        public_key: String,
    },
    /// The powers add up to more than `u64::MAX`.
    #[error("the total voting power overflows a u64")]
    TotalPowerOverflow,
}

fn key_hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An ordered validator set with voting powers, quorum arithmetic and proposer selection.
///
/// Validators are sorted by public key bytes, so two nodes that list the same genesis
/// validators in different orders still agree on every index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
    /// Lookup of a key's index. A `BTreeMap` keeps even debugging output deterministic.
    by_key: BTreeMap<[u8; 32], ValidatorIndex>,
    /// Cumulative normalised weights: validator `i` owns `[cumulative[i-1], cumulative[i])`.
    cumulative: Vec<u64>,
    /// Stride of the proposer rotation, coprime with the normalised total.
    stride: u64,
}

impl ValidatorSet {
    /// Build a set from `(public key bytes, voting power)` pairs, as a genesis file lists them.
    pub fn new(
        entries: impl IntoIterator<Item = ([u8; 32], u64)>,
    ) -> Result<ValidatorSet, ValidatorSetError> {
        let mut validators = Vec::new();
        for (bytes, voting_power) in entries {
            if validators.len() >= MAX_VALIDATORS {
                return Err(ValidatorSetError::TooMany {
                    count: validators.len().saturating_add(1),
                    max: MAX_VALIDATORS,
                });
            }
            let public_key =
                VerifyingKey::from_bytes(&bytes).map_err(|_| ValidatorSetError::InvalidKey {
                    public_key: key_hex(&bytes),
                })?;
            if public_key.is_weak() {
                return Err(ValidatorSetError::WeakKey {
                    public_key: key_hex(&bytes),
                });
            }
            if voting_power == 0 {
                return Err(ValidatorSetError::ZeroPower {
                    public_key: key_hex(&bytes),
                });
            }
            validators.push(Validator {
                public_key,
                voting_power,
            });
        }
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        validators.sort_by_key(|v| v.public_key.to_bytes());

        let mut by_key = BTreeMap::new();
        let mut total_power: u64 = 0;
        let mut divisor: u64 = 0;
        for (i, v) in validators.iter().enumerate() {
            let index = ValidatorIndex(u32::try_from(i).expect("bug: MAX_VALIDATORS fits in u32"));
            if by_key.insert(v.public_key.to_bytes(), index).is_some() {
                return Err(ValidatorSetError::DuplicateKey {
                    public_key: key_hex(v.public_key.as_bytes()),
                });
            }
            total_power = total_power
                .checked_add(v.voting_power)
                .ok_or(ValidatorSetError::TotalPowerOverflow)?;
            divisor = gcd(divisor, v.voting_power);
        }

        // The normalised weights add up to total/divisor, which cannot overflow.
        let mut cumulative = Vec::with_capacity(validators.len());
        let mut running: u64 = 0;
        for v in &validators {
            running += v.voting_power / divisor;
            cumulative.push(running);
        }
        let stride = rotation_stride(running);
        Ok(ValidatorSet {
            validators,
            total_power,
            by_key,
            cumulative,
            stride,
        })
    }

    /// How many validators there are.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Always false: an empty set cannot be built. Present for the `len`/`is_empty` pair.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The validators in index order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The validator at `index`, if any.
    pub fn get(&self, index: ValidatorIndex) -> Option<&Validator> {
        self.validators.get(index.as_usize())
    }

    /// The index of the validator with this public key, if it is in the set.
    pub fn index_of(&self, public_key: &VerifyingKey) -> Option<ValidatorIndex> {
        self.by_key.get(public_key.as_bytes()).copied()
    }

    /// The voting power at `index` (zero if there is no such validator).
    pub fn power_of(&self, index: ValidatorIndex) -> u64 {
        self.get(index).map_or(0, |v| v.voting_power)
    }

    /// The sum of all voting power.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// Whether `power` is strictly more than two thirds of the total ("2f+1").
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power) * 2
    }

    /// Whether `power` is strictly more than one third of the total ("f+1"): at least one
    /// honest validator is among its holders.
    pub fn is_one_third_plus(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power)
    }

    /// The least power that is a quorum (strictly more than two thirds).
    pub fn quorum_power(&self) -> u64 {
        let two_thirds = u128::from(self.total_power) * 2 / 3;
        u64::try_from(two_thirds + 1).expect("bug: two thirds of a u64 plus one fits in a u64")
    }

    /// The proposer of `(height, round)`; see the module docs for the rotation.
    pub fn proposer(&self, height: Height, round: Round) -> ValidatorIndex {
        let total = u128::from(*self.cumulative.last().expect("bug: empty validator set"));
        let slot = (u128::from(height.0) % total + u128::from(round.0) % total) % total;
        let point = slot * u128::from(self.stride) % total;
        let point = u64::try_from(point).expect("bug: point below a u64 total");
        let index = self.cumulative.partition_point(|&end| end <= point);
        ValidatorIndex(u32::try_from(index).expect("bug: MAX_VALIDATORS fits in u32"))
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The largest integer at or below `total · 0.618…` that is coprime with `total` (searching
/// upward from there if needed); 1 for totals below 3.
fn rotation_stride(total: u64) -> u64 {
    if total < 3 {
        return 1;
    }
    // 0.618033988749894848… scaled by 10^18; the product fits in u128.
    const GOLDEN_CONJUGATE_E18: u128 = 618_033_988_749_894_848;
    let start = u128::from(total) * GOLDEN_CONJUGATE_E18 / 1_000_000_000_000_000_000;
    let mut stride = u64::try_from(start)
        .expect("bug: stride below total")
        .max(1);
    // `total - 1` is always coprime with `total`, so this ends before reaching `total`.
    while gcd(stride, total) != 1 {
        stride += 1;
    }
    stride
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    fn key(seed: u8) -> [u8; 32] {
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
    }

    fn set(powers: &[u64]) -> ValidatorSet {
        ValidatorSet::new(
            powers
                .iter()
                .enumerate()
                .map(|(i, &p)| (key(u8::try_from(i).unwrap() + 1), p)),
        )
        .unwrap()
    }

    #[test]
    fn rejects_bad_sets() {
        assert_eq!(
            ValidatorSet::new(std::iter::empty()),
            Err(ValidatorSetError::Empty)
        );
        assert!(matches!(
            ValidatorSet::new([(key(1), 0)]),
            Err(ValidatorSetError::ZeroPower { .. })
        ));
        assert!(matches!(
            ValidatorSet::new([(key(1), 1), (key(1), 2)]),
            Err(ValidatorSetError::DuplicateKey { .. })
        ));
        assert!(matches!(
            ValidatorSet::new([(key(1), u64::MAX), (key(2), 1)]),
            Err(ValidatorSetError::TotalPowerOverflow)
        ));
        // The identity point is a small-order (weak) key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            ValidatorSet::new([(identity, 1)]),
            Err(ValidatorSetError::WeakKey { .. })
        ));
        let too_many = (0..=MAX_VALIDATORS).map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            (SigningKey::from_bytes(&seed).verifying_key().to_bytes(), 1)
        });
        assert!(matches!(
            ValidatorSet::new(too_many),
            Err(ValidatorSetError::TooMany { .. })
        ));
    }

    #[test]
    fn order_is_canonical() {
        let a = ValidatorSet::new([(key(1), 5), (key(2), 7), (key(3), 9)]).unwrap();
        let b = ValidatorSet::new([(key(3), 9), (key(1), 5), (key(2), 7)]).unwrap();
        assert_eq!(a, b);
        for (i, v) in a.validators().iter().enumerate() {
            assert_eq!(a.index_of(&v.public_key), Some(ValidatorIndex(i as u32)));
        }
    }

    #[test]
    fn quorum_thresholds_are_strict() {
        let s = set(&[1, 1, 1, 1]);
        assert!(!s.is_quorum(2));
        assert!(s.is_quorum(3));
        assert!(!s.is_one_third_plus(1));
        assert!(s.is_one_third_plus(2));
        assert_eq!(s.quorum_power(), 3);
        // Total 3: two thirds is exactly 2, which is not a quorum.
        let s = set(&[1, 1, 1]);
        assert!(!s.is_quorum(2));
        assert!(s.is_quorum(3));
        assert_eq!(s.quorum_power(), 3);
        // Huge powers do not overflow.
        let s = set(&[u64::MAX / 2, u64::MAX / 2]);
        assert!(s.is_quorum(u64::MAX - 1));
        assert!(!s.is_quorum(u64::MAX / 2));
        assert!(s.is_quorum(s.quorum_power()));
        assert!(!s.is_quorum(s.quorum_power() - 1));
    }

    #[test]
    fn equal_powers_rotate_round_robin() {
        for n in 1..=10usize {
            let s = set(&vec![100; n]);
            for start in 0..3u64 {
                let mut seen: Vec<u32> = (0..n as u64)
                    .map(|i| s.proposer(Height(start + i), Round(0)).0)
                    .collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..n as u32).collect::<Vec<_>>(), "n={n}");
            }
        }
    }

    #[test]
    fn next_round_and_next_height_change_proposer() {
        let s = set(&[1, 1, 1, 1]);
        for h in 0..20 {
            for r in 0..5 {
                let p = s.proposer(Height(h), Round(r));
                assert_ne!(p, s.proposer(Height(h), Round(r + 1)));
                assert_ne!(p, s.proposer(Height(h + 1), Round(r)));
            }
        }
    }

    #[test]
    fn stride_separates_consecutive_slots_for_weights_below_a_quarter() {
        for total in 1u64..=100_000 {
            let k = rotation_stride(total);
            assert_eq!(gcd(k, total), 1);
            // The largest weight w with 4w < total must fit in both gaps.
            let largest_small_weight = (total - 1) / 4;
            assert!(
                k.min(total - k) >= largest_small_weight,
                "total={total} stride={k}"
            );
        }
    }

    proptest! {
        #[test]
        fn rotation_is_exactly_proportional(powers in proptest::collection::vec(1u64..20, 1..8), start in 0u64..1000) {
            let s = set(&powers);
            let divisor = powers.iter().fold(0, |g, &p| gcd(g, p));
            let total: u64 = powers.iter().map(|p| p / divisor).sum();
            let mut counts = vec![0u64; s.len()];
            for slot in 0..total {
                counts[s.proposer(Height(start + slot), Round(0)).as_usize()] += 1;
            }
            for (i, v) in s.validators().iter().enumerate() {
                prop_assert_eq!(counts[i], v.voting_power / divisor);
            }
        }

        #[test]
        fn small_proposer_never_holds_two_consecutive_slots(
            powers in proptest::collection::vec(1u64..50, 3..10), h in 0u64..10_000, r in 0u32..100,
        ) {
            let s = set(&powers);
            let p = s.proposer(Height(h), Round(r));
            if u128::from(s.power_of(p)) * 4 >= u128::from(s.total_power()) {
                return Ok(());
            }
            prop_assert_ne!(p, s.proposer(Height(h), Round(r + 1)));
        }
    }
}
