//! The logic of the example bots, as library code so tests can drive it step by step.
//!
//! - [`MarketMaker`]: quotes a bid and an ask around a reference price with a configured
//!   spread and size, skews both quotes against its inventory and stops quoting the side
//!   that would push inventory past its limit, re-quotes with one atomic batch (cancel the
//!   market, place both post-only quotes) or with a modify when only one quote's price
//!   moved, keeps the dead-man switch armed, and marks its PnL to the reference price.
//! - [`Taker`]: sends immediate-or-cancel orders against the book with a bounded slippage,
//!   from a seeded generator, so the devnet has flow.

use crate::client::{Client, Leg};
use crate::error::{Result, SdkError};
use crate::order::OrderParams;
use dex_api::wire::{OrderStatusView, SideView};
use dex_types::{CancelTarget, MarketId, OrderId, Rounding, Side};
use rust_decimal::Decimal;
use std::time::{Duration, Instant};

/// Settings of a [`MarketMaker`].
#[derive(Clone, Debug)]
pub struct MarketMakerConfig {
    /// Market to quote.
    pub market: MarketId,
    /// Price to quote around; `None` uses the book's mid (and this fallback is required
    /// when the book is empty).
    pub reference_price: Option<Decimal>,
    /// Distance between bid and ask, in basis points of the reference.
    pub spread_bps: u32,
    /// Size of each quote, in base.
    pub size: Decimal,
    /// Largest position, in base, long or short, relative to the starting balance.
    pub max_inventory: Decimal,
    /// The dead-man switch cancels every order this long after the last re-arm.
    pub dead_man_after: Duration,
}

/// What one market-maker step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteReport {
    /// The reference price used.
    pub reference: Decimal,
    /// The bid quoted, if any.
    pub bid: Option<Decimal>,
    /// The ask quoted, if any.
    pub ask: Option<Decimal>,
    /// Position in base relative to the start.
    pub inventory: Decimal,
    /// Mark-to-market PnL in quote: change of quote balance plus inventory at the reference.
    pub pnl: Decimal,
    /// Whether the quotes were changed in this step.
    pub requoted: bool,
    /// The refusal code if the re-quote was refused (e.g. a post-only quote that would
    /// cross after the book moved); the next step tries again.
    pub refused: Option<String>,
}

/// See the module docs.
#[derive(Debug)]
pub struct MarketMaker {
    client: Client,
    config: MarketMakerConfig,
    start_base: Decimal,
    start_quote: Decimal,
    last_armed: Option<Instant>,
}

fn total(view: &dex_api::wire::AccountView, asset: u32) -> Decimal {
    view.balances
        .iter()
        .find(|b| b.asset == asset)
        .map_or(Decimal::ZERO, |b| b.free + b.locked)
}

impl MarketMaker {
    /// A market maker whose inventory and PnL count from the account's balances now.
    pub async fn new(client: Client, config: MarketMakerConfig) -> Result<MarketMaker> {
        let market = client.market(config.market)?.spec().clone();
        let view = client.account_view(None).await?;
        Ok(MarketMaker {
            start_base: total(&view, market.base.0),
            start_quote: total(&view, market.quote.0),
            client,
            config,
            last_armed: None,
        })
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The quotes for `reference` and `inventory`: bid and ask, each `None` when quoting
    /// it would push inventory past the limit. Prices round away from the reference so
    /// the spread is never narrower than configured.
    pub fn quotes(
        &self,
        reference: Decimal,
        inventory: Decimal,
    ) -> Result<(Option<Decimal>, Option<Decimal>)> {
        let market = self.client.market(self.config.market)?;
        let half = reference * Decimal::from(self.config.spread_bps) / Decimal::from(20_000u32);
        // Lean against the position: long shifts both quotes down, short shifts them up.
        let skew = if self.config.max_inventory.is_zero() {
            Decimal::ZERO
        } else {
            half * (inventory / self.config.max_inventory).clamp(-Decimal::ONE, Decimal::ONE)
        };
        let bid = crate::order::round_price(market, reference - half - skew, Rounding::Down).ok();
        let ask = crate::order::round_price(market, reference + half - skew, Rounding::Up).ok();
        let room_long = inventory + self.config.size <= self.config.max_inventory;
        let room_short = inventory - self.config.size >= -self.config.max_inventory;
        Ok((bid.filter(|_| room_long), ask.filter(|_| room_short)))
    }

    /// Read balances, book and own orders; re-quote if needed; re-arm the dead-man switch.
    pub async fn step(&mut self) -> Result<QuoteReport> {
        let spec = self.client.market(self.config.market)?.spec().clone();
        let view = self.client.account_view(None).await?;
        let inventory = total(&view, spec.base.0) - self.start_base;
        let reference = match self.config.reference_price {
            Some(price) => price,
            None => {
                let book = self.client.book(self.config.market, 1).await?;
                match (book.bids.first(), book.asks.first()) {
                    (Some(b), Some(a)) => (b.price + a.price) / Decimal::TWO,
                    _ => {
                        return Err(SdkError::Protocol(
                            "the book has no mid and no reference price is set".into(),
                        ));
                    }
                }
            }
        };
        let pnl = total(&view, spec.quote.0) - self.start_quote + inventory * reference;
        let (bid, ask) = self.quotes(reference, inventory)?;

        let mine: Vec<OrderStatusView> = self
            .client
            .open_orders(None)
            .await?
            .into_iter()
            .filter(|o| o.market == self.config.market.0)
            .collect();
        let side_orders =
            |side: SideView| mine.iter().filter(|o| o.side == side).collect::<Vec<_>>();
        let (bids, asks) = (side_orders(SideView::Buy), side_orders(SideView::Sell));
        let matches = |orders: &[&OrderStatusView], want: Option<Decimal>| match want {
            None => orders.is_empty(),
            Some(price) => {
                orders.len() == 1
                    && orders[0].price == price
                    && orders[0].remaining == self.config.size
            }
        };
        let mut requoted = false;
        let mut refused = None;
        if !(matches(&bids, bid) && matches(&asks, ask)) {
            requoted = true;
            // One side's price moved and nothing else changed: a modify keeps it cheap.
            let single_modify = match (bids.as_slice(), asks.as_slice(), bid, ask) {
                ([b], [a], Some(bp), Some(ap))
                    if b.remaining == self.config.size && a.remaining == self.config.size =>
                {
                    match (b.price == bp, a.price == ap) {
                        (false, true) => b.order_id.map(|id| (OrderId(id), bp)),
                        (true, false) => a.order_id.map(|id| (OrderId(id), ap)),
                        _ => None,
                    }
                }
                _ => None,
            };
            let result = match single_modify {
                Some((id, price)) => {
                    self.client
                        .modify(self.config.market, id, Some(price), None)
                        .await
                }
                None => {
                    let mut legs = vec![Leg::Cancel(CancelTarget::Market(self.config.market))];
                    for (side, price) in [(Side::Buy, bid), (Side::Sell, ask)] {
                        if let Some(price) = price {
                            legs.push(Leg::Place(
                                OrderParams::limit(
                                    self.config.market,
                                    side,
                                    price,
                                    self.config.size,
                                )
                                .post_only(),
                            ));
                        }
                    }
                    self.client.batch(legs, true).await
                }
            };
            match result {
                Ok(status) => {
                    if let Some(outcome) = status.outcome.filter(|o| !o.ok) {
                        refused = outcome.code;
                    }
                }
                Err(SdkError::Api { code, .. }) => refused = Some(code),
                Err(e) => return Err(e),
            }
        }
        let rearm = self
            .last_armed
            .is_none_or(|at| at.elapsed() >= self.config.dead_man_after / 3);
        if rearm {
            self.client
                .dead_man_switch(self.config.dead_man_after)
                .await?;
            self.last_armed = Some(Instant::now());
        }
        Ok(QuoteReport {
            reference,
            bid,
            ask,
            inventory,
            pnl,
            requoted,
            refused,
        })
    }

    /// Cancel every quote and disarm the dead-man switch.
    pub async fn shutdown(&self) -> Result<()> {
        self.client.cancel_all(Some(self.config.market)).await?;
        self.client.schedule_cancel_all(None).await?;
        Ok(())
    }
}

/// Settings of a [`Taker`].
#[derive(Clone, Debug)]
pub struct TakerConfig {
    /// Market to trade.
    pub market: MarketId,
    /// Size of each order, in base.
    pub size: Decimal,
    /// Worst price accepted, in basis points beyond the best opposite price.
    pub max_slippage_bps: u32,
    /// Seed of the side choices (the same seed gives the same sequence of sides).
    pub seed: u64,
}

/// What one taker step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakeReport {
    /// The side sent, if the opposite side had liquidity.
    pub side: Option<Side>,
    /// The worst price accepted.
    pub limit: Option<Decimal>,
    /// Whether the transaction applied.
    pub ok: bool,
}

/// See the module docs.
#[derive(Debug)]
pub struct Taker {
    client: Client,
    config: TakerConfig,
    state: u64,
}

impl Taker {
    /// A taker.
    pub fn new(client: Client, config: TakerConfig) -> Taker {
        Taker {
            state: config.seed | 1,
            client,
            config,
        }
    }

    fn next_side(&mut self) -> Side {
        // xorshift64: deterministic for a seed, enough for choosing sides.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        if self.state & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    /// Send one immediate-or-cancel order against the best opposite price.
    pub async fn step(&mut self) -> Result<TakeReport> {
        let side = self.next_side();
        let book = self.client.book(self.config.market, 1).await?;
        let best = match side {
            Side::Buy => book.asks.first(),
            Side::Sell => book.bids.first(),
        };
        let Some(best) = best else {
            return Ok(TakeReport {
                side: None,
                limit: None,
                ok: false,
            });
        };
        let slip =
            best.price * Decimal::from(self.config.max_slippage_bps) / Decimal::from(10_000u32);
        let (limit, rounding) = match side {
            Side::Buy => (best.price + slip, Rounding::Down),
            Side::Sell => (best.price - slip, Rounding::Up),
        };
        let order = OrderParams::limit(self.config.market, side, limit, self.config.size)
            .ioc()
            .round_price(rounding);
        let placed = self.client.place(order).await?;
        let market = self.client.market(self.config.market)?;
        Ok(TakeReport {
            side: Some(side),
            limit: crate::order::round_price(market, limit, rounding).ok(),
            ok: placed.tx.outcome.is_some_and(|o| o.ok),
        })
    }
}
