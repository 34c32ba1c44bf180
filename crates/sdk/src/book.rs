//! A local copy of a market's book, kept from a snapshot and per-block diffs and checked
//! against the node's per-block checksum.
//!
//! A diff applies only on top of the diff before it (`seq` one above the book's); a jump is
//! a [`BookError::Gap`] and the caller resyncs. After every diff the book recomputes the
//! checksum of its top levels ([`dex_api::checksum`]) and compares it with the node's; a
//! difference is a [`BookError::Checksum`], the book is marked invalid, and the caller takes
//! a fresh snapshot. A book is therefore never silently stale or wrong for more than one
//! block.

use dex_api::checksum::book_checksum;
use dex_api::wire::{BookView, LevelView};
use dex_types::{ConversionError, Market, PriceTicks, Side, SizeLots};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// Why a book update was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The diff is not the next one: some were missed.
    #[error("book diff {got} does not follow {expected_prev}; diffs were missed")]
    Gap {
        /// The book's sequence number.
        expected_prev: u64,
        /// The diff's.
        got: u64,
    },
    /// After applying, the book's checksum differs from the node's.
    #[error("book checksum {local} differs from the node's {remote} at seq {seq}")]
    Checksum {
        /// Sequence number after the diff.
        seq: u64,
        /// Computed here.
        local: String,
        /// Sent by the node.
        remote: String,
    },
    /// A price or size is not a whole number of ticks or lots of the market.
    #[error("book level: {0}")]
    Conversion(#[from] ConversionError),
    /// The update is for another market.
    #[error("update for market {got}, book of market {expected}")]
    WrongMarket {
        /// This book's market.
        expected: u32,
        /// The update's.
        got: u32,
    },
}

/// Whether a diff changed the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied; the book moved to the diff's sequence number.
    Applied,
    /// Already included (its sequence number is not above the book's); ignored.
    Stale,
}

/// One level: total size in lots and order count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Level {
    size: SizeLots,
    orders: u32,
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct LocalBook {
    market: Market,
    seq: u64,
    height: u64,
    valid: bool,
    bids: BTreeMap<PriceTicks, Level>,
    asks: BTreeMap<PriceTicks, Level>,
}

impl LocalBook {
    /// A book from a snapshot; its checksum is checked like a diff's.
    pub fn from_snapshot(market: Market, snapshot: &BookView) -> Result<LocalBook, BookError> {
        if snapshot.market != market.id().0 {
            return Err(BookError::WrongMarket {
                expected: market.id().0,
                got: snapshot.market,
            });
        }
        let mut book = LocalBook {
            market,
            seq: snapshot.seq,
            height: snapshot.height,
            valid: false,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
        };
        book.set_levels(Side::Buy, &snapshot.bids)?;
        book.set_levels(Side::Sell, &snapshot.asks)?;
        book.check(&snapshot.checksum)?;
        Ok(book)
    }

    fn set_levels(&mut self, side: Side, levels: &[LevelView]) -> Result<(), BookError> {
        for level in levels {
            let price = self.market.price_to_ticks(level.price)?;
            let ladder = match side {
                Side::Buy => &mut self.bids,
                Side::Sell => &mut self.asks,
            };
            if level.size.is_zero() {
                ladder.remove(&price);
            } else {
                let size = self.market.size_to_lots(level.size)?;
                ladder.insert(
                    price,
                    Level {
                        size,
                        orders: level.orders,
                    },
                );
            }
        }
        Ok(())
    }

    fn check(&mut self, remote: &str) -> Result<(), BookError> {
        let local = self.checksum();
        self.valid = local == remote;
        if self.valid {
            Ok(())
        } else {
            Err(BookError::Checksum {
                seq: self.seq,
                local,
                remote: remote.to_string(),
            })
        }
    }

    /// Apply the next diff. A gap or checksum mismatch means: resync.
    pub fn apply_diff(&mut self, diff: &BookView) -> Result<Applied, BookError> {
        if diff.market != self.market.id().0 {
            return Err(BookError::WrongMarket {
                expected: self.market.id().0,
                got: diff.market,
            });
        }
        if diff.seq <= self.seq {
            return Ok(Applied::Stale);
        }
        if diff.seq != self.seq + 1 {
            return Err(BookError::Gap {
                expected_prev: self.seq,
                got: diff.seq,
            });
        }
        self.set_levels(Side::Buy, &diff.bids)?;
        self.set_levels(Side::Sell, &diff.asks)?;
        self.seq = diff.seq;
        self.height = diff.height;
        self.check(&diff.checksum)?;
        Ok(Applied::Applied)
    }

    /// The checksum of this book's top levels.
    pub fn checksum(&self) -> String {
        book_checksum(
            self.bids.iter().rev().map(|(p, l)| (*p, l.size)),
            self.asks.iter().map(|(p, l)| (*p, l.size)),
        )
    }

    /// The market.
    pub fn market(&self) -> &Market {
        &self.market
    }

    /// Sequence number of the last diff applied.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Height of the last block included.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Whether the last checksum matched (false until resynced after a mismatch).
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    fn decimal(&self, price: PriceTicks, size: SizeLots) -> (Decimal, Decimal) {
        (
            self.market.ticks_to_price(price).unwrap_or(Decimal::MAX),
            self.market.lots_to_size(size).unwrap_or(Decimal::MAX),
        )
    }

    /// Best bid: price and size.
    pub fn best_bid(&self) -> Option<(Decimal, Decimal)> {
        self.bids
            .iter()
            .next_back()
            .map(|(p, l)| self.decimal(*p, l.size))
    }

    /// Best ask: price and size.
    pub fn best_ask(&self) -> Option<(Decimal, Decimal)> {
        self.asks
            .iter()
            .next()
            .map(|(p, l)| self.decimal(*p, l.size))
    }

    /// Midpoint of the best bid and ask.
    pub fn mid(&self) -> Option<Decimal> {
        let (bid, _) = self.best_bid()?;
        let (ask, _) = self.best_ask()?;
        Some((bid + ask) / Decimal::TWO)
    }

    /// Whether the best bid is at or above the best ask (never true for a correct book).
    pub fn is_crossed(&self) -> bool {
        match (self.bids.keys().next_back(), self.asks.keys().next()) {
            (Some(bid), Some(ask)) => bid >= ask,
            _ => false,
        }
    }

    /// Up to `depth` levels of `side`, best first: price, size, orders.
    pub fn levels(&self, side: Side, depth: usize) -> Vec<(Decimal, Decimal, u32)> {
        let ladder: Box<dyn Iterator<Item = (&PriceTicks, &Level)>> = match side {
            Side::Buy => Box::new(self.bids.iter().rev()),
            Side::Sell => Box::new(self.asks.iter()),
        };
        ladder
            .take(depth)
            .map(|(p, l)| {
                let (price, size) = self.decimal(*p, l.size);
                (price, size, l.orders)
            })
            .collect()
    }

    /// Levels in ticks and lots, best first (for comparing with the node's).
    pub fn levels_ticks(&self, side: Side) -> Vec<(PriceTicks, SizeLots, u32)> {
        let ladder: Box<dyn Iterator<Item = (&PriceTicks, &Level)>> = match side {
            Side::Buy => Box::new(self.bids.iter().rev()),
            Side::Sell => Box::new(self.asks.iter()),
        };
        ladder.map(|(p, l)| (*p, l.size, l.orders)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_types::{AssetId, AssetSpec, MarketId, MarketSpec};
    use std::str::FromStr;

    fn market() -> Market {
        let spec = MarketSpec {
            id: MarketId(1),
            base: AssetId(1),
            quote: AssetId(0),
            tick_size: Decimal::from_str("0.5").unwrap(),
            lot_size: Decimal::from_str("0.1").unwrap(),
            min_size_lots: SizeLots(1),
            maker_fee_bps: 0,
            taker_fee_bps: 0,
        };
        let quote = AssetSpec {
            id: AssetId(0),
            symbol: "USD".into(),
            decimals: 2,
        };
        let base = AssetSpec {
            id: AssetId(1),
            symbol: "XYZ".into(),
            decimals: 3,
        };
        Market::new(spec, &base, &quote).unwrap()
    }

    fn level(price: &str, size: &str) -> LevelView {
        LevelView {
            price: Decimal::from_str(price).unwrap(),
            size: Decimal::from_str(size).unwrap(),
            orders: 1,
        }
    }

    fn view(seq: u64, bids: Vec<LevelView>, asks: Vec<LevelView>, checksum: String) -> BookView {
        BookView {
            market: 1,
            seq,
            height: seq,
            bids,
            asks,
            checksum,
        }
    }

    fn sum(bids: &[(u64, u64)], asks: &[(u64, u64)]) -> String {
        book_checksum(
            bids.iter().map(|&(p, s)| (PriceTicks(p), SizeLots(s))),
            asks.iter().map(|&(p, s)| (PriceTicks(p), SizeLots(s))),
        )
    }

    #[test]
    fn snapshot_diffs_gaps_and_checksums() {
        // 10.0 = 20 ticks, 1.0 = 10 lots.
        let snap = view(
            3,
            vec![level("10.0", "1.0")],
            vec![level("10.5", "0.5")],
            sum(&[(20, 10)], &[(21, 5)]),
        );
        let mut book = LocalBook::from_snapshot(market(), &snap).unwrap();
        assert!(book.is_valid());
        assert_eq!(book.mid(), Some(Decimal::from_str("10.25").unwrap()));
        // Stale diffs are ignored.
        assert_eq!(book.apply_diff(&snap), Ok(Applied::Stale));
        // The next diff removes the ask and adds a bid.
        let diff = view(
            4,
            vec![level("9.5", "2.0")],
            vec![level("10.5", "0")],
            sum(&[(20, 10), (19, 20)], &[]),
        );
        assert_eq!(book.apply_diff(&diff), Ok(Applied::Applied));
        assert_eq!(book.best_ask(), None);
        assert_eq!(book.levels(Side::Buy, 5).len(), 2);
        // A jump is a gap and changes nothing.
        let jump = view(6, vec![], vec![], sum(&[], &[]));
        assert_eq!(
            book.apply_diff(&jump),
            Err(BookError::Gap {
                expected_prev: 4,
                got: 6
            })
        );
        assert_eq!(book.seq(), 4);
        // A diff whose result does not match the node's checksum invalidates the book.
        let wrong = view(5, vec![level("9.0", "1.0")], vec![], sum(&[(20, 10)], &[]));
        assert!(matches!(
            book.apply_diff(&wrong),
            Err(BookError::Checksum { .. })
        ));
        assert!(!book.is_valid());
        // Prices off the tick are refused.
        let off = view(1, vec![level("10.2", "1.0")], vec![], sum(&[], &[]));
        assert!(matches!(
            LocalBook::from_snapshot(market(), &off),
            Err(BookError::Conversion(_))
        ));
    }
}
