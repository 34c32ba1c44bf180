//! Orders in decimals, converted exactly to the market's ticks and lots.
//!
//! A price or size that is not a whole number of ticks or lots is an error by default,
//! found before anything is signed or sent. A client that prefers to round asks for it per
//! order ([`OrderParams::round_price`], [`OrderParams::round_size`]) or calls
//! [`round_price`] / [`round_size`] to see the rounded value first.

use dex_types::{
    ClientOrderId, ConversionError, Market, MarketId, OrderRequest, OrderType, PriceTicks,
    Rounding, SelfTradePrevention, Side, SizeLots, TimeInForce, TimestampMs,
};
use rust_decimal::Decimal;

/// An order in decimal terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderParams {
    /// The market.
    pub market: MarketId,
    /// Buy or sell.
    pub side: Side,
    /// Limit price (worst price for a market order), in quote per base.
    pub price: Decimal,
    /// Size in base.
    pub size: Decimal,
    /// Limit or market.
    pub order_type: OrderType,
    /// How long it may rest.
    pub time_in_force: TimeInForce,
    /// Self-trade prevention.
    pub self_trade: SelfTradePrevention,
    /// The client's id; the SDK assigns a fresh one if `None`, so every placement can be
    /// found again after a timeout or restart.
    pub client_order_id: Option<ClientOrderId>,
    /// Round the price to a tick this way instead of refusing an off-tick price.
    pub price_rounding: Option<Rounding>,
    /// Round the size to a lot this way instead of refusing an off-lot size.
    pub size_rounding: Option<Rounding>,
}

impl OrderParams {
    /// A good-til-cancel limit order.
    pub fn limit(market: MarketId, side: Side, price: Decimal, size: Decimal) -> OrderParams {
        OrderParams {
            market,
            side,
            price,
            size,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            self_trade: SelfTradePrevention::CancelResting,
            client_order_id: None,
            price_rounding: None,
            size_rounding: None,
        }
    }

    /// A market order: immediate-or-cancel up to `worst_price`.
    pub fn market(
        market: MarketId,
        side: Side,
        worst_price: Decimal,
        size: Decimal,
    ) -> OrderParams {
        OrderParams {
            order_type: OrderType::Market,
            time_in_force: TimeInForce::Ioc,
            ..OrderParams::limit(market, side, worst_price, size)
        }
    }

    /// Post-only: rejected if it would trade on arrival.
    pub fn post_only(mut self) -> OrderParams {
        self.time_in_force = TimeInForce::PostOnly;
        self
    }

    /// Immediate-or-cancel.
    pub fn ioc(mut self) -> OrderParams {
        self.time_in_force = TimeInForce::Ioc;
        self
    }

    /// Fill-or-kill.
    pub fn fok(mut self) -> OrderParams {
        self.time_in_force = TimeInForce::Fok;
        self
    }

    /// Good-til-time.
    pub fn good_til(mut self, expires_at: TimestampMs) -> OrderParams {
        self.time_in_force = TimeInForce::Gtt { expires_at };
        self
    }

    /// Use this client order id.
    pub fn client_id(mut self, id: ClientOrderId) -> OrderParams {
        self.client_order_id = Some(id);
        self
    }

    /// Self-trade prevention mode.
    pub fn self_trade(mut self, mode: SelfTradePrevention) -> OrderParams {
        self.self_trade = mode;
        self
    }

    /// Round an off-tick price as asked.
    pub fn round_price(mut self, rounding: Rounding) -> OrderParams {
        self.price_rounding = Some(rounding);
        self
    }

    /// Round an off-lot size as asked.
    pub fn round_size(mut self, rounding: Rounding) -> OrderParams {
        self.size_rounding = Some(rounding);
        self
    }

    /// The price in ticks (exact unless rounding was asked for).
    pub fn price_ticks(&self, market: &Market) -> Result<PriceTicks, ConversionError> {
        match self.price_rounding {
            None => market.price_to_ticks(self.price),
            Some(r) => market.price_to_ticks_rounded(self.price, r),
        }
    }

    /// The size in lots (exact unless rounding was asked for).
    pub fn size_lots(&self, market: &Market) -> Result<SizeLots, ConversionError> {
        match self.size_rounding {
            None => market.size_to_lots(self.size),
            Some(r) => market.size_to_lots_rounded(self.size, r),
        }
    }

    /// The ledger's order request (with the client id given or assigned).
    pub fn to_request(
        &self,
        market: &Market,
        client_order_id: Option<ClientOrderId>,
    ) -> Result<OrderRequest, ConversionError> {
        Ok(OrderRequest {
            market: self.market,
            client_order_id: client_order_id.or(self.client_order_id),
            side: self.side,
            order_type: self.order_type,
            price_ticks: self.price_ticks(market)?,
            size_lots: self.size_lots(market)?,
            time_in_force: self.time_in_force,
            self_trade: self.self_trade,
        })
    }
}

/// `price` rounded to the market's tick as asked, as a decimal.
pub fn round_price(
    market: &Market,
    price: Decimal,
    rounding: Rounding,
) -> Result<Decimal, ConversionError> {
    market.ticks_to_price(market.price_to_ticks_rounded(price, rounding)?)
}

/// `size` rounded to the market's lot as asked, as a decimal.
pub fn round_size(
    market: &Market,
    size: Decimal,
    rounding: Rounding,
) -> Result<Decimal, ConversionError> {
    market.lots_to_size(market.size_to_lots_rounded(size, rounding)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_types::{AssetId, AssetSpec, MarketSpec};
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn market() -> Market {
        let spec = MarketSpec {
            id: MarketId(1),
            base: AssetId(1),
            quote: AssetId(0),
            tick_size: d("0.01"),
            lot_size: d("0.001"),
            min_size_lots: SizeLots(1),
            maker_fee_bps: 0,
            taker_fee_bps: 0,
        };
        let usd = AssetSpec {
            id: AssetId(0),
            symbol: "USD".into(),
            decimals: 6,
        };
        let btc = AssetSpec {
            id: AssetId(1),
            symbol: "BTC".into(),
            decimals: 8,
        };
        Market::new(spec, &btc, &usd).unwrap()
    }

    #[test]
    fn exact_by_default_rounding_on_request() {
        let m = market();
        let order = OrderParams::limit(MarketId(1), Side::Buy, d("100.25"), d("0.5"));
        let request = order.to_request(&m, Some(ClientOrderId(3))).unwrap();
        assert_eq!(request.price_ticks, PriceTicks(10_025));
        assert_eq!(request.size_lots, SizeLots(500));
        assert_eq!(request.client_order_id, Some(ClientOrderId(3)));
        let off = OrderParams::limit(MarketId(1), Side::Buy, d("100.255"), d("0.5"));
        assert!(matches!(
            off.to_request(&m, None),
            Err(ConversionError::NotMultiple { .. })
        ));
        let down = off
            .round_price(Rounding::Down)
            .to_request(&m, None)
            .unwrap();
        assert_eq!(down.price_ticks, PriceTicks(10_025));
        let up = off.round_price(Rounding::Up).to_request(&m, None).unwrap();
        assert_eq!(up.price_ticks, PriceTicks(10_026));
        assert_eq!(
            round_price(&m, d("100.255"), Rounding::Nearest).unwrap(),
            d("100.26")
        );
        assert_eq!(
            round_size(&m, d("0.0004"), Rounding::Up).unwrap(),
            d("0.001")
        );
        assert!(round_size(&m, d("0.0004"), Rounding::Down).is_err());
        let market_order = OrderParams::market(MarketId(1), Side::Sell, d("90"), d("1"));
        assert_eq!(market_order.time_in_force, TimeInForce::Ioc);
        assert_eq!(market_order.order_type, OrderType::Market);
    }
}
