//! Conversions from the chain's integer types to the API's JSON views.

use crate::wire::{HeaderView, SideView, TradeView};
use dex_state::Fill;
use dex_types::{Amount, AssetSpec, BlockHeader, Market, PriceTicks, SizeLots};
use rust_decimal::Decimal;

/// The decimal price of `ticks`. A price the ledger accepted is within genesis limits; one
/// whose decimal would need more than 28 digits is reported and shown as the largest decimal
/// rather than failing a whole response.
pub fn price(market: &Market, ticks: PriceTicks) -> Decimal {
    market.ticks_to_price(ticks).unwrap_or_else(|error| {
        tracing::error!(%error, market = %market.id(), "price not representable as a decimal");
        Decimal::MAX
    })
}

/// The decimal size of `lots` (see [`price`] for the unrepresentable case).
pub fn size(market: &Market, lots: SizeLots) -> Decimal {
    market.lots_to_size(lots).unwrap_or_else(|error| {
        tracing::error!(%error, market = %market.id(), "size not representable as a decimal");
        Decimal::MAX
    })
}

/// The decimal value of `amount` base units of `asset` (see [`price`] for the
/// unrepresentable case).
pub fn amount(asset: &AssetSpec, amount: Amount) -> Decimal {
    asset.amount_to_decimal(amount).unwrap_or_else(|error| {
        tracing::error!(%error, asset = %asset.id, "amount not representable as a decimal");
        Decimal::MAX
    })
}

/// The view of a header.
pub fn header(header: &BlockHeader) -> HeaderView {
    HeaderView {
        hash: header.hash().to_hex(),
        chain_id: header.chain_id.0,
        height: header.height,
        time_ms: header.time.0,
        parent_hash: header.parent_hash.to_hex(),
        proposer: header.proposer.to_hex(),
        txs_root: header.txs_root.to_hex(),
        state_root: header.state_root.to_hex(),
        fills_root: header.fills_root.to_hex(),
    }
}

/// The view of a fill as a public trade.
pub fn trade(market: &Market, fill: &Fill, index: u32) -> TradeView {
    TradeView {
        height: fill.height,
        index,
        market: fill.market.0,
        price: price(market, fill.price),
        size: size(market, fill.size),
        taker_side: SideView::from(fill.taker_side),
        maker_order_id: fill.maker_order_id.0,
        taker_order_id: fill.taker_order_id.0,
    }
}
