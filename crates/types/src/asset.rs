//! Assets and amounts of them in integer base units.

use crate::codec::read_bounded_string;
use crate::decimal::{Rounding, Step, StepError};
use crate::ids::AssetId;
use borsh::{BorshDeserialize, BorshSerialize};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The longest asset symbol, in bytes.
pub const MAX_ASSET_SYMBOL_BYTES: usize = 16;

/// The most decimal places an asset may have. 18 covers every common token and keeps
/// 10^decimals far inside `u128`.
pub const MAX_ASSET_DECIMALS: u8 = 18;

/// An amount of one asset in its integer base units (with 6 decimals, 1 USDC is 1_000_000).
///
/// Balances, notionals and fees are all `Amount`s; arithmetic on them is checked. In JSON an
/// amount is a string of decimal digits, since JSON numbers lose precision past 2^53.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Debug,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Amount(pub u128);

impl Amount {
    /// Nothing.
    pub const ZERO: Amount = Amount(0);
    /// The largest amount.
    pub const MAX: Amount = Amount(u128::MAX);

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, or `None` if `other` is larger.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// `self × factor`, or `None` on overflow.
    pub fn checked_mul(self, factor: u128) -> Option<Amount> {
        self.0.checked_mul(factor).map(Amount)
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Amount {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Amount, Self::Err> {
        u128::from_str(text).map(Amount)
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as Deserialize>::deserialize(d)?;
        Amount::from_str(&text).map_err(|_| {
            serde::de::Error::custom(format!(
                "expected an amount as a string of digits, got {text:?}"
            ))
        })
    }
}

/// What a decimal stood for when its conversion failed, for the error message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Quantity {
    /// A price, counted in ticks.
    Price,
    /// A size, counted in lots.
    Size,
    /// An amount of an asset, counted in base units.
    Amount,
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quantity::Price => "price",
            Quantity::Size => "size",
            Quantity::Amount => "amount",
        })
    }
}

/// Why a decimal price, size or amount could not be converted to whole ticks, lots or base
/// units (or back).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ConversionError {
    /// The value is zero or negative; prices, sizes and amounts are positive.
    #[error("{quantity} must be greater than zero, got {value}")]
    NotPositive {
        /// What the value stood for.
        quantity: Quantity,
        /// The value given.
        value: Decimal,
    },
    /// The value is not a whole number of steps. Nothing is rounded unless the client asks
    /// for it with a rounding helper.
    #[error("{quantity} {value} is not a whole multiple of {step}")]
    NotMultiple {
        /// What the value stood for.
        quantity: Quantity,
        /// The value given.
        value: Decimal,
        /// The tick size, lot size or base unit.
        step: Decimal,
    },
    /// The value is more steps than the integer type holds.
    #[error("{quantity} {value} is too large")]
    TooLarge {
        /// What the value stood for.
        quantity: Quantity,
        /// The value given.
        value: Decimal,
    },
    /// Rounding as asked gave zero steps, which is not a valid price, size or amount.
    #[error("{quantity} {value} rounds to zero multiples of {step}")]
    RoundsToZero {
        /// What the value stood for.
        quantity: Quantity,
        /// The value given.
        value: Decimal,
        /// The tick size, lot size or base unit.
        step: Decimal,
    },
    /// A count of steps whose decimal value has more than 28 significant digits.
    #[error("{count} steps of {step} cannot be written as a decimal")]
    NotRepresentable {
        /// The count of ticks, lots or base units.
        count: u128,
        /// The tick size, lot size or base unit.
        step: Decimal,
    },
}

/// Count `value` in `step`s as the rounding says, with a typed error.
pub(crate) fn count_steps(
    step: Step,
    quantity: Quantity,
    value: Decimal,
    rounding: Option<Rounding>,
    max: u128,
) -> Result<u128, ConversionError> {
    let step_decimal = || step.value_of(1).expect("bug: one step is a decimal");
    match step.count(value, rounding) {
        Ok(count) if count <= max => Ok(count),
        Ok(_) | Err(StepError::TooLarge) => Err(ConversionError::TooLarge { quantity, value }),
        Err(StepError::NotPositive) => Err(ConversionError::NotPositive { quantity, value }),
        Err(StepError::NotMultiple) => Err(ConversionError::NotMultiple {
            quantity,
            value,
            step: step_decimal(),
        }),
        Err(StepError::RoundsToZero) => Err(ConversionError::RoundsToZero {
            quantity,
            value,
            step: step_decimal(),
        }),
    }
}

/// `count` steps as a decimal, with a typed error.
pub(crate) fn steps_value(step: Step, count: u128) -> Result<Decimal, ConversionError> {
    step.value_of(count)
        .ok_or_else(|| ConversionError::NotRepresentable {
            count,
            step: step.value_of(1).expect("bug: one step is a decimal"),
        })
}

/// An asset listed at genesis.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetSpec {
    /// The asset's id.
    pub id: AssetId,
    /// A short ticker such as `BTC`: 1 to [`MAX_ASSET_SYMBOL_BYTES`] ASCII letters, digits,
    /// `.` or `_`.
    #[borsh(deserialize_with = "read_symbol")]
    pub symbol: String,
    /// Decimal places of one base unit: 1 whole token is 10^decimals base units. At most
    /// [`MAX_ASSET_DECIMALS`].
    pub decimals: u8,
}

fn read_symbol<R: borsh::io::Read>(reader: &mut R) -> borsh::io::Result<String> {
    read_bounded_string(reader, MAX_ASSET_SYMBOL_BYTES, |len| {
        AssetSpecError::SymbolTooLong {
            len,
            max: MAX_ASSET_SYMBOL_BYTES,
        }
    })
}

/// Why an asset spec is not acceptable.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum AssetSpecError {
    /// The symbol is empty.
    #[error("the asset symbol is empty")]
    SymbolEmpty,
    /// The symbol is longer than [`MAX_ASSET_SYMBOL_BYTES`].
    #[error("the asset symbol is {len} bytes; at most {max} are allowed")]
    SymbolTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The symbol holds a character other than ASCII letters, digits, `.` and `_`.
    #[error("the asset symbol {symbol:?} may only hold ASCII letters, digits, '.' and '_'")]
    SymbolCharacters {
        /// The symbol given.
        symbol: String,
    },
    /// More decimal places than [`MAX_ASSET_DECIMALS`].
    #[error("the asset has {decimals} decimals; at most {max} are allowed")]
    TooManyDecimals {
        /// Decimals given.
        decimals: u8,
        /// The limit.
        max: u8,
    },
}

impl AssetSpec {
    /// Check the symbol and the number of decimals.
    pub fn validate(&self) -> Result<(), AssetSpecError> {
        if self.symbol.is_empty() {
            return Err(AssetSpecError::SymbolEmpty);
        }
        if self.symbol.len() > MAX_ASSET_SYMBOL_BYTES {
            return Err(AssetSpecError::SymbolTooLong {
                len: self.symbol.len(),
                max: MAX_ASSET_SYMBOL_BYTES,
            });
        }
        if !self
            .symbol
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        {
            return Err(AssetSpecError::SymbolCharacters {
                symbol: self.symbol.clone(),
            });
        }
        if self.decimals > MAX_ASSET_DECIMALS {
            return Err(AssetSpecError::TooManyDecimals {
                decimals: self.decimals,
                max: MAX_ASSET_DECIMALS,
            });
        }
        Ok(())
    }

    /// Base units in one whole token: 10^decimals.
    ///
    /// # Panics
    /// If `decimals` exceeds [`MAX_ASSET_DECIMALS`] (the spec was not validated).
    pub fn units_per_token(&self) -> u128 {
        assert!(
            self.decimals <= MAX_ASSET_DECIMALS,
            "bug: asset spec used without validation"
        );
        crate::decimal::pow10(u32::from(self.decimals)).expect("bug: 10^18 fits u128")
    }

    /// The exact number of base units in `value` whole tokens (`1.5` BTC with 8 decimals is
    /// 150_000_000). Rejects a value finer than one base unit, zero or negative.
    pub fn amount_from_decimal(&self, value: Decimal) -> Result<Amount, ConversionError> {
        let step = Step::base_unit(self.decimals);
        count_steps(step, Quantity::Amount, value, None, u128::MAX).map(Amount)
    }

    /// `amount` as a decimal number of whole tokens, with `decimals` places.
    pub fn amount_to_decimal(&self, amount: Amount) -> Result<Decimal, ConversionError> {
        steps_value(Step::base_unit(self.decimals), amount.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> AssetSpec {
        AssetSpec {
            id: AssetId(1),
            symbol: "BTC".into(),
            decimals: 8,
        }
    }

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn amount_arithmetic_is_checked() {
        assert_eq!(Amount(2).checked_add(Amount(3)), Some(Amount(5)));
        assert_eq!(Amount::MAX.checked_add(Amount(1)), None);
        assert_eq!(Amount(2).checked_sub(Amount(3)), None);
        assert_eq!(Amount(7).checked_mul(3), Some(Amount(21)));
        assert_eq!(Amount::MAX.checked_mul(2), None);
        assert!(Amount::ZERO.is_zero());
    }

    #[test]
    fn amount_json_is_a_string() {
        let json = serde_json::to_string(&Amount(u128::MAX)).unwrap();
        assert_eq!(json, "\"340282366920938463463374607431768211455\"");
        assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), Amount::MAX);
        assert!(serde_json::from_str::<Amount>("12").is_err());
        assert!(serde_json::from_str::<Amount>("\"-1\"").is_err());
        assert!(serde_json::from_str::<Amount>("\"1.5\"").is_err());
    }

    #[test]
    fn asset_validation() {
        assert_eq!(btc().validate(), Ok(()));
        let mut spec = btc();
        spec.symbol = String::new();
        assert_eq!(spec.validate(), Err(AssetSpecError::SymbolEmpty));
        spec.symbol = "A".repeat(MAX_ASSET_SYMBOL_BYTES + 1);
        assert!(matches!(
            spec.validate(),
            Err(AssetSpecError::SymbolTooLong { .. })
        ));
        spec.symbol = "BT C".into();
        assert!(matches!(
            spec.validate(),
            Err(AssetSpecError::SymbolCharacters { .. })
        ));
        spec.symbol = "USDC.e".into();
        spec.decimals = MAX_ASSET_DECIMALS + 1;
        assert!(matches!(
            spec.validate(),
            Err(AssetSpecError::TooManyDecimals { .. })
        ));
        spec.decimals = MAX_ASSET_DECIMALS;
        assert_eq!(spec.validate(), Ok(()));
        assert_eq!(spec.units_per_token(), 1_000_000_000_000_000_000);
    }

    #[test]
    fn amount_conversions_are_exact() {
        let btc = btc();
        assert_eq!(btc.amount_from_decimal(d("1.5")), Ok(Amount(150_000_000)));
        assert_eq!(btc.amount_from_decimal(d("0.00000001")), Ok(Amount(1)));
        assert!(matches!(
            btc.amount_from_decimal(d("0.000000001")),
            Err(ConversionError::NotMultiple { .. })
        ));
        assert!(matches!(
            btc.amount_from_decimal(d("0")),
            Err(ConversionError::NotPositive { .. })
        ));
        assert_eq!(btc.amount_to_decimal(Amount(150_000_000)), Ok(d("1.5")));
        assert_eq!(
            btc.amount_to_decimal(Amount(150_000_000))
                .unwrap()
                .to_string(),
            "1.50000000"
        );
        assert!(matches!(
            btc.amount_to_decimal(Amount::MAX),
            Err(ConversionError::NotRepresentable { .. })
        ));
    }

    #[test]
    fn conversion_errors_read_well() {
        let err = btc().amount_from_decimal(d("0.000000001")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "amount 0.000000001 is not a whole multiple of 0.00000001"
        );
    }

    #[test]
    fn symbol_is_bounded_when_decoding() {
        let mut spec = btc();
        spec.symbol = "A".repeat(MAX_ASSET_SYMBOL_BYTES + 1);
        let bytes = borsh::to_vec(&spec).unwrap();
        assert!(AssetSpec::try_from_slice(&bytes).is_err());
        let bytes = borsh::to_vec(&btc()).unwrap();
        assert_eq!(AssetSpec::try_from_slice(&bytes).unwrap(), btc());
    }
}
