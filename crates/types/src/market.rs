//! Markets: their spec as listed at genesis, the validated form the ledger computes with,
//! exact decimal ↔ ticks/lots conversion, notionals and fees.
//!
//! A price is `ticks × tick_size` quote tokens per base token and a size is
//! `lots × lot_size` base tokens. Validation derives two integer factors so that the ledger
//! never touches a decimal:
//! - `base_units_per_lot = lot_size × 10^base_decimals`: base units moved per lot;
//! - `quote_units_per_tick_lot = tick_size × lot_size × 10^quote_decimals`: quote units paid
//!   for one lot at a price of one tick.
//!
//! Both must be whole numbers, so every fill moves whole base units of both assets:
//! `base = lots × base_units_per_lot`, `quote = ticks × lots × quote_units_per_tick_lot`.
//!
//! ## Fees
//! Fees are in basis points of the quote notional and paid in the quote asset. Each fee is
//! rounded in the exchange's favour: a charge rounds up to the next base unit, a rebate rounds
//! down. Validation requires `maker_fee_bps + taker_fee_bps ≥ 0`, so a maker rebate (rounded
//! down) never exceeds the taker fee of the same fill (rounded up): the exchange never pays
//! out more than it takes in on a fill.

use crate::asset::{
    Amount, AssetSpec, AssetSpecError, ConversionError, Quantity, count_steps, steps_value,
};
use crate::codec::{read_decimal, write_decimal};
use crate::decimal::{Rounding, Step};
use crate::error::AmountOverflow;
use crate::ids::{AssetId, MarketId};
use crate::units::{PriceTicks, SizeLots};
use borsh::{BorshDeserialize, BorshSerialize};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Basis points in one whole: a fee of 10_000 bps would be the entire notional.
pub const BPS_PER_UNIT: u32 = 10_000;

/// The largest fee or rebate a market may charge or pay, in basis points (10%).
pub const MAX_FEE_BPS: i32 = 1_000;

/// A market as listed at genesis. Decimal fields travel as strings in JSON.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSpec {
    /// The market's id.
    pub id: MarketId,
    /// The asset bought and sold.
    pub base: AssetId,
    /// The asset prices are quoted in and fees are paid in.
    pub quote: AssetId,
    /// The price step, in quote tokens per base token (for example `0.01`).
    #[borsh(serialize_with = "write_decimal", deserialize_with = "read_decimal")]
    pub tick_size: Decimal,
    /// The size step, in base tokens (for example `0.001`).
    #[borsh(serialize_with = "write_decimal", deserialize_with = "read_decimal")]
    pub lot_size: Decimal,
    /// The smallest order, in lots (at least 1).
    pub min_size_lots: SizeLots,
    /// Fee for the resting side of a fill; negative is a rebate. Within ±[`MAX_FEE_BPS`].
    pub maker_fee_bps: i32,
    /// Fee for the incoming side of a fill; 0 to [`MAX_FEE_BPS`], and at least the maker
    /// rebate.
    pub taker_fee_bps: i32,
}

/// Why a market spec is not acceptable.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum MarketSpecError {
    /// The asset spec given for the base or quote has another id than the market names.
    #[error("the market names asset {expected} but asset {got} was given")]
    AssetMismatch {
        /// The id the market names.
        expected: AssetId,
        /// The id of the asset spec given.
        got: AssetId,
    },
    /// Base and quote are the same asset.
    #[error("base and quote are the same asset {asset}")]
    SameAsset {
        /// The asset.
        asset: AssetId,
    },
    /// One of the assets is invalid.
    #[error("invalid asset: {0}")]
    Asset(#[from] AssetSpecError),
    /// The tick size is zero, negative, or has more than 19 significant digits.
    #[error("the tick size {tick_size} must be positive with at most 19 significant digits")]
    TickSize {
        /// The tick size given.
        tick_size: Decimal,
    },
    /// The lot size is zero, negative, or has more than 19 significant digits.
    #[error("the lot size {lot_size} must be positive with at most 19 significant digits")]
    LotSize {
        /// The lot size given.
        lot_size: Decimal,
    },
    /// A lot is not a whole number of the base asset's base units.
    #[error(
        "the lot size {lot_size} is finer than one base unit of an asset with {base_decimals} decimals"
    )]
    LotFinerThanBaseUnit {
        /// The lot size given.
        lot_size: Decimal,
        /// The base asset's decimals.
        base_decimals: u8,
    },
    /// One tick on one lot is not a whole number of the quote asset's base units.
    #[error(
        "tick size {tick_size} times lot size {lot_size} is finer than one base unit of an asset with {quote_decimals} decimals"
    )]
    TickLotFinerThanQuoteUnit {
        /// The tick size given.
        tick_size: Decimal,
        /// The lot size given.
        lot_size: Decimal,
        /// The quote asset's decimals.
        quote_decimals: u8,
    },
    /// A conversion factor does not fit 128 bits.
    #[error("the tick and lot sizes give a conversion factor too large for 128 bits")]
    FactorTooLarge,
    /// The minimum size is zero lots.
    #[error("the minimum size must be at least one lot")]
    ZeroMinSize,
    /// The maker fee is outside ±[`MAX_FEE_BPS`].
    #[error("the maker fee {bps} bps is outside ±{max} bps")]
    MakerFee {
        /// The fee given.
        bps: i32,
        /// The limit.
        max: i32,
    },
    /// The taker fee is negative or above [`MAX_FEE_BPS`].
    #[error("the taker fee {bps} bps is outside 0 to {max} bps")]
    TakerFee {
        /// The fee given.
        bps: i32,
        /// The limit.
        max: i32,
    },
    /// The maker rebate is larger than the taker fee, so the exchange would pay out on
    /// every fill.
    #[error("the maker rebate {maker_bps} bps exceeds the taker fee {taker_bps} bps")]
    RebateExceedsTakerFee {
        /// The maker fee given.
        maker_bps: i32,
        /// The taker fee given.
        taker_bps: i32,
    },
}

/// What one side of a fill pays or receives as its fee, in the quote asset.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fee {
    /// The trader pays this to the exchange.
    Charge(Amount),
    /// The exchange pays this to the trader.
    Rebate(Amount),
}

/// `notional × fee_bps / 10_000`, rounded up to a whole base unit (a charge).
///
/// Never overflows while `fee_bps ≤ 10_000`, since the fee is then at most the notional.
pub fn fee_charge(notional: Amount, fee_bps: u32) -> Result<Amount, AmountOverflow> {
    let (whole, part) = split_bps(notional, fee_bps)?;
    // part = (notional mod 10_000) × bps, so part / 10_000 < bps: no overflow.
    let fraction = part.div_ceil(u128::from(BPS_PER_UNIT));
    whole
        .checked_add(fraction)
        .map(Amount)
        .ok_or(AmountOverflow)
}

/// `notional × rebate_bps / 10_000`, rounded down to a whole base unit (a rebate).
pub fn fee_rebate(notional: Amount, rebate_bps: u32) -> Result<Amount, AmountOverflow> {
    let (whole, part) = split_bps(notional, rebate_bps)?;
    let fraction = part / u128::from(BPS_PER_UNIT);
    whole
        .checked_add(fraction)
        .map(Amount)
        .ok_or(AmountOverflow)
}

/// The fee at `fee_bps` (negative is a rebate), rounded in the exchange's favour.
pub fn fee(notional: Amount, fee_bps: i32) -> Result<Fee, AmountOverflow> {
    if fee_bps >= 0 {
        fee_charge(notional, fee_bps.unsigned_abs()).map(Fee::Charge)
    } else {
        fee_rebate(notional, fee_bps.unsigned_abs()).map(Fee::Rebate)
    }
}

/// Split `notional × bps / 10_000` as `(notional / 10_000) × bps` plus
/// `(notional mod 10_000) × bps` still to be divided, so no step overflows unless the result
/// itself does.
fn split_bps(notional: Amount, bps: u32) -> Result<(u128, u128), AmountOverflow> {
    let per = u128::from(BPS_PER_UNIT);
    let whole = (notional.0 / per)
        .checked_mul(u128::from(bps))
        .ok_or(AmountOverflow)?;
    let part = (notional.0 % per) * u128::from(bps);
    Ok((whole, part))
}

/// A validated market with the integer factors the ledger uses. Build it with
/// [`Market::new`]; its fields cannot be changed afterwards, so the factors always match the
/// spec.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Market {
    spec: MarketSpec,
    base_decimals: u8,
    quote_decimals: u8,
    tick: Step,
    lot: Step,
    base_units_per_lot: u128,
    quote_units_per_tick_lot: u128,
}

/// `mantissa × 10^(decimals - scale)` if it is a whole number, else `None`;
/// `Err` if it is whole but does not fit 128 bits.
fn scale_to_units(
    mantissa: u128,
    scale: u32,
    decimals: u8,
) -> Result<Option<u128>, MarketSpecError> {
    let decimals = u32::from(decimals);
    if decimals >= scale {
        let power =
            crate::decimal::pow10(decimals - scale).ok_or(MarketSpecError::FactorTooLarge)?;
        mantissa
            .checked_mul(power)
            .map(Some)
            .ok_or(MarketSpecError::FactorTooLarge)
    } else {
        // A power past 10^38 exceeds any u128 mantissa, which then cannot be a multiple.
        Ok(crate::decimal::pow10(scale - decimals)
            .filter(|power| mantissa.is_multiple_of(*power))
            .map(|power| mantissa / power))
    }
}

impl Market {
    /// Validate `spec` against its two assets and derive the conversion factors.
    pub fn new(
        spec: MarketSpec,
        base: &AssetSpec,
        quote: &AssetSpec,
    ) -> Result<Market, MarketSpecError> {
        for (expected, got) in [(spec.base, base.id), (spec.quote, quote.id)] {
            if expected != got {
                return Err(MarketSpecError::AssetMismatch { expected, got });
            }
        }
        if spec.base == spec.quote {
            return Err(MarketSpecError::SameAsset { asset: spec.base });
        }
        base.validate()?;
        quote.validate()?;
        let tick = Step::new(spec.tick_size).ok_or(MarketSpecError::TickSize {
            tick_size: spec.tick_size,
        })?;
        let lot = Step::new(spec.lot_size).ok_or(MarketSpecError::LotSize {
            lot_size: spec.lot_size,
        })?;
        let base_units_per_lot =
            scale_to_units(u128::from(lot.mantissa()), lot.scale(), base.decimals)?.ok_or(
                MarketSpecError::LotFinerThanBaseUnit {
                    lot_size: spec.lot_size,
                    base_decimals: base.decimals,
                },
            )?;
        // Two 64-bit mantissas: the product fits u128.
        let tick_lot_mantissa = u128::from(tick.mantissa()) * u128::from(lot.mantissa());
        let quote_units_per_tick_lot = scale_to_units(
            tick_lot_mantissa,
            tick.scale() + lot.scale(),
            quote.decimals,
        )?
        .ok_or(MarketSpecError::TickLotFinerThanQuoteUnit {
            tick_size: spec.tick_size,
            lot_size: spec.lot_size,
            quote_decimals: quote.decimals,
        })?;
        if spec.min_size_lots.is_zero() {
            return Err(MarketSpecError::ZeroMinSize);
        }
        if !(-MAX_FEE_BPS..=MAX_FEE_BPS).contains(&spec.maker_fee_bps) {
            return Err(MarketSpecError::MakerFee {
                bps: spec.maker_fee_bps,
                max: MAX_FEE_BPS,
            });
        }
        if !(0..=MAX_FEE_BPS).contains(&spec.taker_fee_bps) {
            return Err(MarketSpecError::TakerFee {
                bps: spec.taker_fee_bps,
                max: MAX_FEE_BPS,
            });
        }
        if spec.maker_fee_bps + spec.taker_fee_bps < 0 {
            return Err(MarketSpecError::RebateExceedsTakerFee {
                maker_bps: spec.maker_fee_bps,
                taker_bps: spec.taker_fee_bps,
            });
        }
        Ok(Market {
            base_decimals: base.decimals,
            quote_decimals: quote.decimals,
            tick,
            lot,
            base_units_per_lot,
            quote_units_per_tick_lot,
            spec,
        })
    }

    /// The spec this market was built from.
    pub fn spec(&self) -> &MarketSpec {
        &self.spec
    }

    /// The market's id.
    pub fn id(&self) -> MarketId {
        self.spec.id
    }

    /// Decimals of the base asset.
    pub fn base_decimals(&self) -> u8 {
        self.base_decimals
    }

    /// Decimals of the quote asset.
    pub fn quote_decimals(&self) -> u8 {
        self.quote_decimals
    }

    /// Base units in one lot: `lot_size × 10^base_decimals`, at least 1.
    pub fn base_units_per_lot(&self) -> u128 {
        self.base_units_per_lot
    }

    /// Quote units for one lot at one tick: `tick_size × lot_size × 10^quote_decimals`, at
    /// least 1.
    pub fn quote_units_per_tick_lot(&self) -> u128 {
        self.quote_units_per_tick_lot
    }

    /// The smallest order, in lots.
    pub fn min_size_lots(&self) -> SizeLots {
        self.spec.min_size_lots
    }

    /// The exact number of ticks in `price`; a price that is not a whole number of ticks,
    /// zero or negative is rejected.
    pub fn price_to_ticks(&self, price: Decimal) -> Result<PriceTicks, ConversionError> {
        self.to_ticks(price, None)
    }

    /// `price` in ticks, rounded as asked (for clients that want it); zero ticks is an error.
    pub fn price_to_ticks_rounded(
        &self,
        price: Decimal,
        rounding: Rounding,
    ) -> Result<PriceTicks, ConversionError> {
        self.to_ticks(price, Some(rounding))
    }

    /// The decimal price of `ticks`, with the tick size's decimal places.
    pub fn ticks_to_price(&self, ticks: PriceTicks) -> Result<Decimal, ConversionError> {
        steps_value(self.tick, u128::from(ticks.0))
    }

    /// The exact number of lots in `size`; a size that is not a whole number of lots, zero
    /// or negative is rejected. The minimum size is the ledger's check, not this one's.
    pub fn size_to_lots(&self, size: Decimal) -> Result<SizeLots, ConversionError> {
        self.to_lots(size, None)
    }

    /// `size` in lots, rounded as asked (for clients that want it); zero lots is an error.
    pub fn size_to_lots_rounded(
        &self,
        size: Decimal,
        rounding: Rounding,
    ) -> Result<SizeLots, ConversionError> {
        self.to_lots(size, Some(rounding))
    }

    /// The decimal size of `lots`, with the lot size's decimal places.
    pub fn lots_to_size(&self, lots: SizeLots) -> Result<Decimal, ConversionError> {
        steps_value(self.lot, u128::from(lots.0))
    }

    fn to_ticks(
        &self,
        price: Decimal,
        rounding: Option<Rounding>,
    ) -> Result<PriceTicks, ConversionError> {
        let ticks = count_steps(
            self.tick,
            Quantity::Price,
            price,
            rounding,
            u128::from(u64::MAX),
        )?;
        Ok(PriceTicks(
            u64::try_from(ticks).expect("bug: count above its maximum"),
        ))
    }

    fn to_lots(
        &self,
        size: Decimal,
        rounding: Option<Rounding>,
    ) -> Result<SizeLots, ConversionError> {
        let lots = count_steps(
            self.lot,
            Quantity::Size,
            size,
            rounding,
            u128::from(u64::MAX),
        )?;
        Ok(SizeLots(
            u64::try_from(lots).expect("bug: count above its maximum"),
        ))
    }

    /// Base units in `size`: `lots × base_units_per_lot`.
    pub fn base_amount(&self, size: SizeLots) -> Result<Amount, AmountOverflow> {
        u128::from(size.0)
            .checked_mul(self.base_units_per_lot)
            .map(Amount)
            .ok_or(AmountOverflow)
    }

    /// Quote units that `size` costs at `price`: `ticks × lots × quote_units_per_tick_lot`.
    pub fn quote_notional(
        &self,
        price: PriceTicks,
        size: SizeLots,
    ) -> Result<Amount, AmountOverflow> {
        // Two u64 factors always fit u128; only the third multiplication can overflow.
        (u128::from(price.0) * u128::from(size.0))
            .checked_mul(self.quote_units_per_tick_lot)
            .map(Amount)
            .ok_or(AmountOverflow)
    }

    /// The maker's fee on a fill of `notional` quote units (a rebate if the maker fee is
    /// negative), rounded in the exchange's favour.
    pub fn maker_fee(&self, notional: Amount) -> Fee {
        // Validated fees are at most 10_000 bps, so the fee is at most the notional.
        fee(notional, self.spec.maker_fee_bps).expect("bug: validated fee exceeds the notional")
    }

    /// The taker's fee on a fill of `notional` quote units, rounded up.
    pub fn taker_fee(&self, notional: Amount) -> Amount {
        fee_charge(notional, self.spec.taker_fee_bps.unsigned_abs())
            .expect("bug: validated fee exceeds the notional")
    }

    /// The higher of the maker and taker charge in bps (0 if both are rebates or zero): what
    /// an order may pay whichever side it ends up on.
    pub fn max_fee_bps(&self) -> u32 {
        self.spec
            .maker_fee_bps
            .max(self.spec.taker_fee_bps)
            .max(0)
            .unsigned_abs()
    }

    /// Quote units a buy of `size` at limit `price` locks: the notional plus the most it can
    /// pay in fees.
    ///
    /// The fee bound is `lots × fee_charge(notional of one lot at price, max_fee_bps)`. Each
    /// fill is charged its own fee rounded up, so many small fills can pay more than one fee
    /// on the total; but a fill of `f` lots at a price no worse than the limit pays at most
    /// `⌈f × x⌉ ≤ f × ⌈x⌉` where `x` is the fee on one lot at the limit, so the bound covers
    /// any split into fills.
    pub fn buy_lock(&self, price: PriceTicks, size: SizeLots) -> Result<Amount, AmountOverflow> {
        let notional = self.quote_notional(price, size)?;
        let per_lot = fee_charge(self.quote_notional(price, SizeLots(1))?, self.max_fee_bps())?;
        let fees = per_lot
            .checked_mul(u128::from(size.0))
            .ok_or(AmountOverflow)?;
        notional.checked_add(fees).ok_or(AmountOverflow)
    }

    /// Base units a sell of `size` locks. The seller's fee is taken from the quote it
    /// receives, which always covers it (a fee is at most 10% of the notional).
    pub fn sell_lock(&self, size: SizeLots) -> Result<Amount, AmountOverflow> {
        self.base_amount(size)
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

    fn usdc() -> AssetSpec {
        AssetSpec {
            id: AssetId(0),
            symbol: "USDC".into(),
            decimals: 6,
        }
    }

    fn btc() -> AssetSpec {
        AssetSpec {
            id: AssetId(1),
            symbol: "BTC".into(),
            decimals: 8,
        }
    }

    pub(crate) fn btc_usdc_spec() -> MarketSpec {
        MarketSpec {
            id: MarketId(7),
            base: AssetId(1),
            quote: AssetId(0),
            tick_size: d("0.01"),
            lot_size: d("0.0001"),
            min_size_lots: SizeLots(10),
            maker_fee_bps: -1,
            taker_fee_bps: 5,
        }
    }

    fn btc_usdc() -> Market {
        Market::new(btc_usdc_spec(), &btc(), &usdc()).unwrap()
    }

    #[test]
    fn factors_are_derived() {
        let market = btc_usdc();
        // 0.0001 BTC = 10_000 satoshi.
        assert_eq!(market.base_units_per_lot(), 10_000);
        // 0.01 USDC/BTC × 0.0001 BTC = 0.000001 USDC = 1 micro-USDC.
        assert_eq!(market.quote_units_per_tick_lot(), 1);
        assert_eq!(market.min_size_lots(), SizeLots(10));
        assert_eq!(market.id(), MarketId(7));
    }

    #[test]
    fn spec_errors() {
        let check = |edit: fn(&mut MarketSpec)| {
            let mut spec = btc_usdc_spec();
            edit(&mut spec);
            Market::new(spec, &btc(), &usdc()).unwrap_err()
        };
        assert!(matches!(
            check(|s| s.tick_size = d("0")),
            MarketSpecError::TickSize { .. }
        ));
        assert!(matches!(
            check(|s| s.tick_size = d("-0.01")),
            MarketSpecError::TickSize { .. }
        ));
        assert!(matches!(
            check(|s| s.lot_size = d("0")),
            MarketSpecError::LotSize { .. }
        ));
        assert!(matches!(
            check(|s| s.lot_size = d("0.000000001")),
            MarketSpecError::LotFinerThanBaseUnit { .. }
        ));
        assert!(matches!(
            check(|s| s.tick_size = d("0.001")),
            MarketSpecError::TickLotFinerThanQuoteUnit { .. }
        ));
        assert_eq!(
            check(|s| s.min_size_lots = SizeLots(0)),
            MarketSpecError::ZeroMinSize
        );
        assert!(matches!(
            check(|s| s.maker_fee_bps = -1001),
            MarketSpecError::MakerFee { .. }
        ));
        assert!(matches!(
            check(|s| s.taker_fee_bps = -1),
            MarketSpecError::TakerFee { .. }
        ));
        assert!(matches!(
            check(|s| s.taker_fee_bps = 1001),
            MarketSpecError::TakerFee { .. }
        ));
        assert!(matches!(
            check(|s| {
                s.maker_fee_bps = -6;
                s.taker_fee_bps = 5;
            }),
            MarketSpecError::RebateExceedsTakerFee { .. }
        ));
        assert!(matches!(
            check(|s| s.quote = AssetId(1)),
            MarketSpecError::AssetMismatch { .. }
        ));
        let mut spec = btc_usdc_spec();
        spec.quote = AssetId(1);
        assert!(matches!(
            Market::new(spec, &btc(), &btc()),
            Err(MarketSpecError::SameAsset { .. })
        ));
        let mut bad_asset = usdc();
        bad_asset.decimals = 40;
        assert!(matches!(
            Market::new(btc_usdc_spec(), &btc(), &bad_asset),
            Err(MarketSpecError::Asset(_))
        ));
    }

    #[test]
    fn coarse_steps_give_large_factors() {
        // A lot of 1000 tokens of an 18-decimal asset, a tick of 1000 quote tokens.
        let base = AssetSpec {
            id: AssetId(1),
            symbol: "ETH".into(),
            decimals: 18,
        };
        let quote = AssetSpec {
            id: AssetId(0),
            symbol: "DAI".into(),
            decimals: 18,
        };
        let mut spec = btc_usdc_spec();
        spec.lot_size = d("1000");
        spec.tick_size = d("1000");
        let market = Market::new(spec.clone(), &base, &quote).unwrap();
        assert_eq!(market.base_units_per_lot(), 10u128.pow(21));
        assert_eq!(market.quote_units_per_tick_lot(), 10u128.pow(24));
        // 10^19 × 10^19 × 10^18 overflows u128.
        spec.lot_size = d("10000000000000000000");
        spec.tick_size = d("10000000000000000000");
        assert_eq!(
            Market::new(spec, &base, &quote),
            Err(MarketSpecError::FactorTooLarge)
        );
    }

    #[test]
    fn exact_price_and_size_conversion() {
        let market = btc_usdc();
        assert_eq!(
            market.price_to_ticks(d("65000.25")),
            Ok(PriceTicks(6_500_025))
        );
        assert!(matches!(
            market.price_to_ticks(d("65000.255")),
            Err(ConversionError::NotMultiple {
                quantity: Quantity::Price,
                ..
            })
        ));
        assert!(matches!(
            market.price_to_ticks(d("0")),
            Err(ConversionError::NotPositive { .. })
        ));
        assert!(matches!(
            market.price_to_ticks(d("-1")),
            Err(ConversionError::NotPositive { .. })
        ));
        assert!(matches!(
            market.price_to_ticks(d("1000000000000000000")),
            Err(ConversionError::TooLarge { .. })
        ));
        assert_eq!(
            market.ticks_to_price(PriceTicks(6_500_025)),
            Ok(d("65000.25"))
        );
        assert_eq!(
            market.ticks_to_price(PriceTicks(100)).unwrap().to_string(),
            "1.00"
        );
        assert_eq!(market.size_to_lots(d("1.5")), Ok(SizeLots(15_000)));
        assert!(matches!(
            market.size_to_lots(d("0.00015")),
            Err(ConversionError::NotMultiple {
                quantity: Quantity::Size,
                ..
            })
        ));
        assert_eq!(market.lots_to_size(SizeLots(15_000)), Ok(d("1.5")));
    }

    #[test]
    fn rounding_helpers() {
        let market = btc_usdc();
        let p = d("65000.255");
        assert_eq!(
            market.price_to_ticks_rounded(p, Rounding::Down),
            Ok(PriceTicks(6_500_025))
        );
        assert_eq!(
            market.price_to_ticks_rounded(p, Rounding::Up),
            Ok(PriceTicks(6_500_026))
        );
        assert_eq!(
            market.price_to_ticks_rounded(p, Rounding::Nearest),
            Ok(PriceTicks(6_500_026))
        );
        assert_eq!(
            market.price_to_ticks_rounded(d("65000.254"), Rounding::Nearest),
            Ok(PriceTicks(6_500_025))
        );
        assert!(matches!(
            market.size_to_lots_rounded(d("0.00004"), Rounding::Down),
            Err(ConversionError::RoundsToZero { .. })
        ));
        assert_eq!(
            market.size_to_lots_rounded(d("0.00004"), Rounding::Up),
            Ok(SizeLots(1))
        );
    }

    #[test]
    fn notional_and_fees() {
        let market = btc_usdc();
        // 1.5 BTC at 65000.25 is 97500.375 USDC: 97_500_375_000 base units of 10^-6 USDC.
        let price = market.price_to_ticks(d("65000.25")).unwrap();
        let size = market.size_to_lots(d("1.5")).unwrap();
        let notional = market.quote_notional(price, size).unwrap();
        assert_eq!(notional, Amount(97_500_375_000));
        assert_eq!(market.base_amount(size), Ok(Amount(150_000_000)));
        // Taker 5 bps, rounded up: 48_750_187.5 → 48_750_188.
        assert_eq!(market.taker_fee(notional), Amount(48_750_188));
        // Maker rebate 1 bp, rounded down: 9_750_037.5 → 9_750_037.
        assert_eq!(market.maker_fee(notional), Fee::Rebate(Amount(9_750_037)));
        assert_eq!(fee(Amount(10_000), 0), Ok(Fee::Charge(Amount(0))));
        assert_eq!(fee_charge(Amount(1), 1), Ok(Amount(1)));
        assert_eq!(fee_rebate(Amount(9_999), 1), Ok(Amount(0)));
        assert_eq!(fee_charge(Amount::MAX, 10_000), Ok(Amount::MAX));
        assert_eq!(fee_charge(Amount::MAX, 10_001), Err(AmountOverflow));
        assert_eq!(
            market.quote_notional(PriceTicks(u64::MAX), SizeLots(u64::MAX)),
            Ok(Amount(u128::from(u64::MAX) * u128::from(u64::MAX)))
        );
        assert_eq!(market.max_fee_bps(), 5);
    }

    #[test]
    fn overflow_is_an_error() {
        let base = AssetSpec {
            id: AssetId(1),
            symbol: "ETH".into(),
            decimals: 18,
        };
        let mut spec = btc_usdc_spec();
        spec.lot_size = d("1000");
        spec.tick_size = d("1");
        let quote = AssetSpec {
            id: AssetId(0),
            symbol: "DAI".into(),
            decimals: 18,
        };
        let market = Market::new(spec, &base, &quote).unwrap();
        assert_eq!(market.base_amount(SizeLots(u64::MAX)), Err(AmountOverflow));
        assert_eq!(
            market.quote_notional(PriceTicks(u64::MAX), SizeLots(u64::MAX)),
            Err(AmountOverflow)
        );
        assert_eq!(
            market.buy_lock(PriceTicks(u64::MAX), SizeLots(u64::MAX)),
            Err(AmountOverflow)
        );
    }

    #[test]
    fn spec_json_uses_strings_for_decimals() {
        let json = serde_json::to_value(btc_usdc_spec()).unwrap();
        assert_eq!(json["tick_size"], "0.01");
        assert_eq!(json["lot_size"], "0.0001");
        let back: MarketSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, btc_usdc_spec());
    }

    proptest! {
        #[test]
        fn buy_lock_covers_any_split_into_fills(
            price in 1u64..10_000_000,
            fills in proptest::collection::vec((1u64..50, 0u64..10_000_000), 1..20),
            maker in -5i32..=20,
            taker in 5i32..=30,
        ) {
            let mut spec = btc_usdc_spec();
            spec.maker_fee_bps = maker;
            spec.taker_fee_bps = taker;
            let market = Market::new(spec, &btc(), &usdc()).unwrap();
            let size: u64 = fills.iter().map(|(lots, _)| lots).sum();
            let lock = market.buy_lock(PriceTicks(price), SizeLots(size)).unwrap();
            let mut spent = Amount::ZERO;
            for (lots, improvement) in fills {
                // Each fill at the limit or better, as maker or taker, whichever costs more.
                let fill_price = PriceTicks(price - improvement % price);
                let notional = market.quote_notional(fill_price, SizeLots(lots)).unwrap();
                let taker_fee = market.taker_fee(notional);
                let maker_fee = match market.maker_fee(notional) {
                    Fee::Charge(amount) => amount,
                    Fee::Rebate(_) => Amount::ZERO,
                };
                let fee = taker_fee.max(maker_fee);
                spent = spent.checked_add(notional).unwrap().checked_add(fee).unwrap();
            }
            prop_assert!(spent <= lock, "spent {} > lock {}", spent, lock);
        }

        #[test]
        fn rebate_never_exceeds_taker_fee(notional in any::<u64>(), maker in -100i32..=0, extra in 0i32..100) {
            let taker = -maker + extra;
            let charge = fee_charge(Amount(u128::from(notional)), taker.unsigned_abs()).unwrap();
            let rebate = fee_rebate(Amount(u128::from(notional)), maker.unsigned_abs()).unwrap();
            prop_assert!(rebate <= charge);
        }

        #[test]
        fn fee_matches_wide_arithmetic(notional in any::<u128>(), bps in 0u32..=10_000) {
            // Reference: the same fee computed on a 256-bit product split in two halves.
            let product_hi = (notional >> 64) * u128::from(bps);
            let product_lo = (notional & u128::from(u64::MAX)) * u128::from(bps);
            // product = product_hi × 2^64 + product_lo; divide by 10_000 long-hand.
            let hi_q = product_hi / 10_000;
            let hi_r = product_hi % 10_000;
            let lo = (hi_r << 64) + product_lo;
            let floor = (hi_q << 64) + lo / 10_000;
            let exact = lo % 10_000 == 0;
            prop_assert_eq!(fee_rebate(Amount(notional), bps), Ok(Amount(floor)));
            prop_assert_eq!(
                fee_charge(Amount(notional), bps),
                Ok(Amount(if exact { floor } else { floor + 1 }))
            );
        }

        #[test]
        fn ticks_round_trip(ticks in 1u64..=u64::MAX, lots in 1u64..=u64::MAX) {
            let market = btc_usdc();
            let price = market.ticks_to_price(PriceTicks(ticks)).unwrap();
            prop_assert_eq!(market.price_to_ticks(price), Ok(PriceTicks(ticks)));
            let size = market.lots_to_size(SizeLots(lots)).unwrap();
            prop_assert_eq!(market.size_to_lots(size), Ok(SizeLots(lots)));
        }
    }
}
