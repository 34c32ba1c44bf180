//! Exact arithmetic between decimals and whole numbers of a step (a tick, a lot, an asset's
//! base unit), in integers only.
//!
//! A decimal is `mantissa × 10^-scale` with a mantissa below 2^96 and a scale of at most 28.
//! Dividing one by a step whose mantissa fits 64 bits is done in `u128`; see [`Step::count`]
//! for why an overflow there always means "too large" and never hides a valid answer.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// How to round a decimal that is not a whole number of steps. Only for clients that ask;
/// the exchange itself never rounds a price or size silently.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Toward zero: the largest whole number of steps not above the value.
    Down,
    /// Away from zero: the smallest whole number of steps not below the value.
    Up,
    /// The nearer whole number of steps; a value exactly halfway rounds up.
    Nearest,
}

/// Why a decimal could not be counted in steps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum StepError {
    /// Zero or negative.
    NotPositive,
    /// Not a whole number of steps, and no rounding was asked for.
    NotMultiple,
    /// More steps than the target integer holds.
    TooLarge,
    /// Rounding gave zero steps.
    RoundsToZero,
}

/// A positive decimal step `mantissa × 10^-scale`, normalised (no trailing zero digit after
/// the point).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Step {
    mantissa: u64,
    scale: u32,
}

/// 10^exponent, or `None` past 10^38.
pub(crate) fn pow10(exponent: u32) -> Option<u128> {
    10u128.checked_pow(exponent)
}

/// Mantissas of decimals are below 2^96.
const DECIMAL_MANTISSA_LIMIT: u128 = 1 << 96;

impl Step {
    /// The step `value`, if it is positive and its normalised mantissa fits 64 bits.
    pub(crate) fn new(value: Decimal) -> Option<Step> {
        if value.is_sign_negative() || value.is_zero() {
            return None;
        }
        let value = value.normalize();
        let mantissa = u64::try_from(value.mantissa()).ok()?;
        Some(Step {
            mantissa,
            scale: value.scale(),
        })
    }

    /// The step 10^-decimals: one base unit of an asset with `decimals` decimal places.
    pub(crate) fn base_unit(decimals: u8) -> Step {
        Step {
            mantissa: 1,
            scale: u32::from(decimals),
        }
    }

    /// The normalised mantissa.
    pub(crate) fn mantissa(self) -> u64 {
        self.mantissa
    }

    /// The scale (digits after the point).
    pub(crate) fn scale(self) -> u32 {
        self.scale
    }

    /// How many steps `value` is: exactly (`rounding == None`) or rounded as asked.
    ///
    /// With `value = m × 10^-s` and the step `t × 10^-u`, the count is
    /// `m × 10^(u-s) / t` when `u ≥ s`, else `m / (t × 10^(s-u))`.
    /// - If `m × 10^(u-s)` overflows `u128`, the quotient is at least `2^128 / t > 2^64`
    ///   (the step's mantissa `t` fits 64 bits), so it is too large for a `u64` count;
    ///   callers that count in `u128` use a step with `t = 1`, where the quotient is the
    ///   overflowing product itself. Either way `TooLarge` is the true answer.
    /// - If `t × 10^(s-u)` overflows, the divisor exceeds 2^128 while `m < 2^96`: the
    ///   quotient is 0 with a remainder below half the divisor.
    pub(crate) fn count(
        self,
        value: Decimal,
        rounding: Option<Rounding>,
    ) -> Result<u128, StepError> {
        if value.is_sign_negative() || value.is_zero() {
            return Err(StepError::NotPositive);
        }
        let m = value.mantissa().unsigned_abs();
        let s = value.scale();
        let t = u128::from(self.mantissa);
        let (quotient, remainder, divisor) = if self.scale >= s {
            // The scales of decimals are at most 28, so the power exists.
            let power = pow10(self.scale - s).expect("bug: decimal scale above 28");
            let numerator = m.checked_mul(power).ok_or(StepError::TooLarge)?;
            (numerator / t, numerator % t, t)
        } else {
            let power = pow10(s - self.scale).expect("bug: decimal scale above 28");
            match t.checked_mul(power) {
                Some(divisor) => (m / divisor, m % divisor, divisor),
                None => {
                    // Quotient 0, remainder m, and m is below half of a divisor past 2^128.
                    return match rounding {
                        None => Err(StepError::NotMultiple),
                        Some(Rounding::Up) => Ok(1),
                        Some(Rounding::Down | Rounding::Nearest) => Err(StepError::RoundsToZero),
                    };
                }
            }
        };
        let count = match rounding {
            None if remainder != 0 => return Err(StepError::NotMultiple),
            None | Some(Rounding::Down) => quotient,
            Some(Rounding::Up) if remainder != 0 => {
                quotient.checked_add(1).ok_or(StepError::TooLarge)?
            }
            Some(Rounding::Up) => quotient,
            // remainder ≥ divisor - remainder ⇔ 2 × remainder ≥ divisor, without overflow.
            Some(Rounding::Nearest) if remainder != 0 && remainder >= divisor - remainder => {
                quotient.checked_add(1).ok_or(StepError::TooLarge)?
            }
            Some(Rounding::Nearest) => quotient,
        };
        if count == 0 {
            return Err(StepError::RoundsToZero);
        }
        Ok(count)
    }

    /// `count` steps as a decimal with the step's scale (150 ticks of 0.01 is `1.50`), or
    /// `None` if no decimal holds it.
    pub(crate) fn value_of(self, count: u128) -> Option<Decimal> {
        let mut product = count.checked_mul(u128::from(self.mantissa))?;
        let mut scale = self.scale;
        // Drop trailing zeros only when needed to fit the 96-bit mantissa.
        while product >= DECIMAL_MANTISSA_LIMIT && scale > 0 && product.is_multiple_of(10) {
            product /= 10;
            scale -= 1;
        }
        if product >= DECIMAL_MANTISSA_LIMIT {
            return None;
        }
        let mantissa = i128::try_from(product).expect("bug: product below 2^96 fits i128");
        Decimal::try_from_i128_with_scale(mantissa, scale).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn step(text: &str) -> Step {
        Step::new(d(text)).unwrap()
    }

    #[test]
    fn step_rejects_zero_negative_and_wide_mantissas() {
        assert!(Step::new(d("0")).is_none());
        assert!(Step::new(d("-0.01")).is_none());
        // 2^64 as a mantissa does not fit.
        assert!(Step::new(d("18446744073709551616")).is_none());
        assert_eq!(step("0.0100"), step("0.01"));
        assert_eq!(step("100").mantissa(), 100);
        assert_eq!(step("100").scale(), 0);
    }

    #[test]
    fn exact_counts() {
        let tick = step("0.01");
        assert_eq!(tick.count(d("1.50"), None), Ok(150));
        assert_eq!(tick.count(d("1.5"), None), Ok(150));
        assert_eq!(tick.count(d("1.505"), None), Err(StepError::NotMultiple));
        assert_eq!(tick.count(d("0"), None), Err(StepError::NotPositive));
        assert_eq!(tick.count(d("-1"), None), Err(StepError::NotPositive));
        let tick = step("5");
        assert_eq!(tick.count(d("100"), None), Ok(20));
        assert_eq!(tick.count(d("102"), None), Err(StepError::NotMultiple));
        let tick = step("0.25");
        assert_eq!(tick.count(d("1.75"), None), Ok(7));
    }

    #[test]
    fn rounded_counts() {
        let tick = step("0.5");
        assert_eq!(tick.count(d("1.2"), Some(Rounding::Down)), Ok(2));
        assert_eq!(tick.count(d("1.2"), Some(Rounding::Up)), Ok(3));
        assert_eq!(tick.count(d("1.2"), Some(Rounding::Nearest)), Ok(2));
        assert_eq!(tick.count(d("1.25"), Some(Rounding::Nearest)), Ok(3));
        assert_eq!(tick.count(d("1.3"), Some(Rounding::Nearest)), Ok(3));
        assert_eq!(tick.count(d("1.5"), Some(Rounding::Up)), Ok(3));
        assert_eq!(
            tick.count(d("0.2"), Some(Rounding::Down)),
            Err(StepError::RoundsToZero)
        );
        assert_eq!(tick.count(d("0.2"), Some(Rounding::Up)), Ok(1));
        assert_eq!(
            tick.count(d("0.2"), Some(Rounding::Nearest)),
            Err(StepError::RoundsToZero)
        );
    }

    #[test]
    fn extremes() {
        // A huge value in a tiny step: the numerator overflows u128.
        let tiny = step("0.0000000000000000000000000001");
        assert_eq!(tiny.count(Decimal::MAX, None), Err(StepError::TooLarge));
        // A tiny value in a step with a wide mantissa: the divisor overflows u128.
        let wide = step("18446744073709551615");
        let smallest = d("0.0000000000000000000000000001");
        assert_eq!(wide.count(smallest, None), Err(StepError::NotMultiple));
        assert_eq!(wide.count(smallest, Some(Rounding::Up)), Ok(1));
        assert_eq!(
            wide.count(smallest, Some(Rounding::Nearest)),
            Err(StepError::RoundsToZero)
        );
        // The largest count a step can express in a decimal.
        assert!(step("1").value_of(u128::from(u64::MAX)).is_some());
        assert!(step("1").value_of(1u128 << 96).is_none());
        assert_eq!(step("10").value_of(1u128 << 96), None);
        assert_eq!(step("0.01").value_of(150), Some(d("1.50")));
    }

    fn positive_decimal() -> impl Strategy<Value = Decimal> {
        (1u64..=u64::MAX, 0u32..=28)
            .prop_map(|(m, s)| Decimal::from_i128_with_scale(i128::from(m), s))
    }

    proptest! {
        #[test]
        fn count_matches_value_of(mantissa in 1u64..1_000_000, scale in 0u32..=12, count in 1u64..=u64::MAX) {
            let step = Step::new(Decimal::from_i128_with_scale(i128::from(mantissa), scale)).unwrap();
            if let Some(value) = step.value_of(u128::from(count)) {
                prop_assert_eq!(step.count(value, None), Ok(u128::from(count)));
                for rounding in [Rounding::Down, Rounding::Up, Rounding::Nearest] {
                    prop_assert_eq!(step.count(value, Some(rounding)), Ok(u128::from(count)));
                }
            }
        }

        #[test]
        fn rounding_brackets_the_value(step_value in positive_decimal(), value in positive_decimal()) {
            let Some(step) = Step::new(step_value) else { return Ok(()) };
            let down = step.count(value, Some(Rounding::Down));
            let up = step.count(value, Some(Rounding::Up));
            let nearest = step.count(value, Some(Rounding::Nearest));
            match step.count(value, None) {
                Ok(exact) => {
                    prop_assert_eq!(down, Ok(exact));
                    prop_assert_eq!(up, Ok(exact));
                    prop_assert_eq!(nearest, Ok(exact));
                }
                Err(StepError::NotMultiple) => {
                    // Down and up are adjacent counts (down may be zero, i.e. rejected).
                    match (down, up) {
                        (Ok(lo), Ok(hi)) => prop_assert_eq!(lo + 1, hi),
                        (Err(StepError::RoundsToZero), Ok(hi)) => prop_assert_eq!(hi, 1),
                        (Err(StepError::TooLarge), _) | (_, Err(StepError::TooLarge)) => {}
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                    prop_assert!(nearest == down || nearest == up);
                }
                Err(StepError::TooLarge) => prop_assert_eq!(down, Err(StepError::TooLarge)),
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}
