//! Seeded generator of the benchmark message streams `normal`, `deep` and `swing`.
//!
//! A stream is fully determined by `(scenario, profile, body length, seed)`: the generator
//! uses its own small PRNG ([`SplitMix64`]) and no clock. It runs the real [`OrderBook`]
//! while it generates, to know which orders are open, so that cancels and replaces name
//! live orders (and stale cancels name dead ones) and passive orders never cross.
//!
//! Every order id equals the command's index in `setup ++ body`; engines that number
//! orders by command sequence (such as `matchcore`) then use the same ids. Buyers have even
//! owner numbers and sellers odd ones, so no stream ever self-trades and engines without
//! self-trade prevention see the same semantics.
//!
//! | scenario | book | flow |
//! | --- | --- | --- |
//! | `normal` | 1–3k resting orders on 300–750 levels | 45% passive limits, 10% aggressive, 2% market, 36% cancels, 5% replaces, 2% stale cancels |
//! | `deep` | 20–40k resting orders on under 100 levels | the same mix |
//! | `swing` | like `normal`, while the mid walks 12,000 ticks up and back down | the same mix, aggressive flow following the trend |
//!
//! Aggressive and market orders are sized to at most the opposite quantity within their
//! limit (`matchcore` 0.4 matches a crossing order without its limit price, so only such
//! orders trade identically there); they still sweep several levels.
//!
//! Profiles: [`Profile::Full`] uses IOC aggressive limits, market orders bounded 50 ticks
//! through the mid, and replaces (that never cross). [`Profile::Basic`] keeps to what every
//! peer engine supports: good-til-cancel limits (aggressive ones rest their remainder),
//! market orders with no practical price bound, and cancels; its replace share becomes
//! cancels.

use crate::{Command, Event, NewOrder, OrderBook};
use dex_types::{
    AccountIndex, OrderId, OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce,
};

/// The three benchmark scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A typical book: 1–3k orders on 300–750 levels.
    Normal,
    /// A deep book: 20–40k orders on under 100 levels.
    Deep,
    /// A moving market: the mid walks more than 10,000 ticks.
    Swing,
}

impl Scenario {
    /// All scenarios, in report order.
    pub const ALL: [Scenario; 3] = [Scenario::Normal, Scenario::Deep, Scenario::Swing];

    /// Lower-case name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Normal => "normal",
            Scenario::Deep => "deep",
            Scenario::Swing => "swing",
        }
    }
}

/// Which order kinds a stream may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// IOC, bounded market orders, replaces.
    Full,
    /// Good-til-cancel limits, unbounded market orders and cancels only.
    Basic,
}

impl Profile {
    /// Lower-case name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Full => "full",
            Profile::Basic => "basic",
        }
    }
}

/// A generated stream: `setup` builds the starting book (not timed), `body` is measured.
#[derive(Debug, Clone)]
pub struct Stream {
    /// Which scenario.
    pub scenario: Scenario,
    /// Which profile.
    pub profile: Profile,
    /// Commands that build the starting book.
    pub setup: Vec<Command>,
    /// The measured commands.
    pub body: Vec<Command>,
    /// What the body looked like while it was generated.
    pub stats: StreamStats,
}

/// Shape of a stream's body, measured while generating it (on the real book).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Fewest and most resting orders after any body command.
    pub resting_min: usize,
    /// See `resting_min`.
    pub resting_max: usize,
    /// Fewest and most price levels (both sides) after any body command.
    pub levels_min: usize,
    /// See `levels_min`.
    pub levels_max: usize,
    /// Lowest and highest generator mid price over the body.
    pub mid_low: u64,
    /// See `mid_low`.
    pub mid_high: u64,
    /// Passive limit placements.
    pub passive: usize,
    /// Aggressive limit placements.
    pub aggressive: usize,
    /// Market orders.
    pub market: usize,
    /// Cancels of live orders.
    pub cancels: usize,
    /// Replaces.
    pub replaces: usize,
    /// Cancels of orders that are already gone.
    pub stale_cancels: usize,
    /// Fills produced by the body.
    pub fills: usize,
}

/// SplitMix64: a tiny, well-mixed, seedable PRNG (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound > 0`), by multiply-shift.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }
}

const START_MID: u64 = 1_000_000;
const OWNERS: u64 = 1_000;
const NO_SLOT: u32 = u32::MAX;

/// Per-scenario shape parameters.
struct Shape {
    resting_low: usize,
    resting_high: usize,
    /// Initial book size built by `setup`.
    resting_start: usize,
    /// Passive distance from the touch: `(probability /256, max distance)` tiers.
    distance: [(u64, u64); 3],
    /// Ticks the mid walks per leg (0: no walk).
    swing_ticks: u64,
}

fn shape(scenario: Scenario) -> Shape {
    match scenario {
        Scenario::Normal => Shape {
            resting_low: 1_500,
            resting_high: 2_500,
            resting_start: 2_000,
            distance: [(128, 12), (64, 60), (64, 400)],
            swing_ticks: 0,
        },
        Scenario::Deep => Shape {
            resting_low: 25_000,
            resting_high: 35_000,
            resting_start: 30_000,
            distance: [(128, 8), (64, 24), (64, 44)],
            swing_ticks: 0,
        },
        Scenario::Swing => Shape {
            resting_low: 1_500,
            resting_high: 2_500,
            resting_start: 2_000,
            distance: [(128, 12), (64, 60), (64, 250)],
            swing_ticks: 12_000,
        },
    }
}

/// The orders the generator knows to be open (ids are dense: the command index).
struct LiveSet {
    ids: Vec<u64>,
    /// Position of each id in `ids`, `NO_SLOT` if not open.
    position: Vec<u32>,
    /// Recently closed ids, for stale cancels (a ring).
    dead: Vec<u64>,
    dead_next: usize,
}

impl LiveSet {
    fn new() -> Self {
        LiveSet {
            ids: Vec::new(),
            position: Vec::new(),
            dead: Vec::new(),
            dead_next: 0,
        }
    }

    fn add(&mut self, id: u64) {
        let index = id as usize;
        if self.position.len() <= index {
            self.position.resize(index + 1, NO_SLOT);
        }
        if self.position[index] == NO_SLOT {
            self.position[index] = self.ids.len() as u32;
            self.ids.push(id);
        }
    }

    fn remove(&mut self, id: u64) {
        let index = id as usize;
        let Some(&at) = self.position.get(index) else {
            return;
        };
        if at == NO_SLOT {
            return;
        }
        let last = *self.ids.last().expect("bug: live set out of step");
        self.ids.swap_remove(at as usize);
        if last != id {
            self.position[last as usize] = at;
        }
        self.position[index] = NO_SLOT;
        if self.dead.len() < 1024 {
            self.dead.push(id);
        } else {
            self.dead[self.dead_next] = id;
            self.dead_next = (self.dead_next + 1) % 1024;
        }
    }

    fn observe(&mut self, events: &[Event], stats: &mut StreamStats) {
        for event in events {
            match *event {
                Event::Rested { order_id, .. } => self.add(order_id.0),
                Event::Fill {
                    maker_order_id,
                    maker_remaining,
                    ..
                } => {
                    stats.fills += 1;
                    if maker_remaining.is_zero() {
                        self.remove(maker_order_id.0);
                    }
                }
                Event::Cancelled { order_id, .. }
                | Event::Expired { order_id, .. }
                | Event::Replaced {
                    order_id,
                    priority_kept: false,
                    ..
                } => self.remove(order_id.0),
                _ => {}
            }
        }
    }
}

struct Generator {
    rng: SplitMix64,
    book: OrderBook,
    live: LiveSet,
    events: Vec<Event>,
    shape: Shape,
    profile: Profile,
    mid: u64,
    commands: usize,
}

impl Generator {
    fn distance(&mut self) -> u64 {
        let roll = self.rng.below(256);
        let mut cumulative = 0;
        for (probability, max) in self.shape.distance {
            cumulative += probability;
            if roll < cumulative {
                return self.rng.below(max + 1);
            }
        }
        0
    }

    fn size(&mut self, max: u64) -> SizeLots {
        SizeLots(1 + self.rng.below(max))
    }

    fn owner(&mut self, side: Side) -> AccountIndex {
        let base = 2 * self.rng.below(OWNERS / 2);
        AccountIndex(match side {
            Side::Buy => base,
            Side::Sell => base + 1,
        })
    }

    /// A price on `side` that does not cross: `distance` ticks behind the mid, and never
    /// at or through the opposite best.
    fn passive_price(&mut self, side: Side) -> PriceTicks {
        let distance = self.distance();
        PriceTicks(match side {
            Side::Buy => {
                let price = self.mid - 1 - distance;
                match self.book.best_ask() {
                    Some(ask) => price.min(ask.0 - 1),
                    None => price,
                }
            }
            Side::Sell => {
                let price = self.mid + 1 + distance;
                match self.book.best_bid() {
                    Some(bid) => price.max(bid.0 + 1),
                    None => price,
                }
            }
        })
    }

    fn random_side(&mut self) -> Side {
        if self.rng.chance(1, 2) {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn place(
        &mut self,
        side: Side,
        order_type: OrderType,
        price: PriceTicks,
        size: SizeLots,
        tif: TimeInForce,
    ) -> Command {
        Command::Place(NewOrder {
            id: OrderId(self.commands as u64),
            owner: self.owner(side),
            side,
            order_type,
            price,
            size,
            tif,
            stp: SelfTradePrevention::CancelResting,
        })
    }

    fn passive(&mut self) -> Command {
        let side = self.random_side();
        let price = self.passive_price(side);
        let size = self.size(100);
        self.place(side, OrderType::Limit, price, size, TimeInForce::Gtc)
    }

    /// An aggressive limit through the touch; in a swing it mostly follows the trend.
    fn aggressive(&mut self, trend: Option<Side>) -> Command {
        let side = match trend {
            Some(side) if self.rng.chance(3, 4) => side,
            _ => self.random_side(),
        };
        let through = self.rng.below(4);
        let price = match side {
            Side::Buy => self.book.best_ask().map_or(self.mid, |ask| ask.0) + through,
            Side::Sell => self.book.best_bid().map_or(self.mid, |bid| bid.0) - through,
        };
        let size = self.size(300);
        let size = self.within_liquidity(side, price, size);
        let tif = match self.profile {
            Profile::Full => TimeInForce::Ioc,
            Profile::Basic => TimeInForce::Gtc,
        };
        self.place(side, OrderType::Limit, PriceTicks(price), size, tif)
    }

    fn market(&mut self) -> Command {
        let side = self.random_side();
        let worst = match (self.profile, side) {
            (Profile::Full, Side::Buy) => self.mid + 50,
            (Profile::Full, Side::Sell) => self.mid - 50,
            (Profile::Basic, Side::Buy) => u64::MAX,
            (Profile::Basic, Side::Sell) => 1,
        };
        let size = self.size(200);
        let size = self.within_liquidity(side, worst, size);
        self.place(
            side,
            OrderType::Market,
            PriceTicks(worst),
            size,
            TimeInForce::Ioc,
        )
    }

    /// `size` capped at the opposite quantity an order on `side` limited at `limit` can
    /// reach (unchanged if it reaches none). `matchcore` 0.4 matches a crossing order
    /// without its limit price, so only orders that never stop at their limit trade the
    /// same there as in every other engine.
    fn within_liquidity(&self, side: Side, limit: u64, size: SizeLots) -> SizeLots {
        let mut reachable = 0u64;
        for level in self.book.depth(side.opposite(), 64) {
            let crosses = match side {
                Side::Buy => level.price.0 <= limit,
                Side::Sell => level.price.0 >= limit,
            };
            if !crosses {
                break;
            }
            reachable += level.size.0;
        }
        if reachable == 0 {
            size
        } else {
            SizeLots(size.0.min(reachable))
        }
    }

    fn live_id(&mut self) -> Option<OrderId> {
        if self.live.ids.is_empty() {
            return None;
        }
        let index = self.rng.below(self.live.ids.len() as u64) as usize;
        Some(OrderId(self.live.ids[index]))
    }

    fn cancel(&mut self) -> Command {
        match self.live_id() {
            Some(order_id) => Command::Cancel { order_id },
            None => self.passive(),
        }
    }

    fn stale_cancel(&mut self) -> Command {
        let order_id = if self.live.dead.is_empty() {
            OrderId(u64::MAX - self.rng.below(1_000))
        } else {
            let index = self.rng.below(self.live.dead.len() as u64) as usize;
            OrderId(self.live.dead[index])
        };
        Command::Cancel { order_id }
    }

    /// A replace that never crosses: a new passive price, or a smaller size (keeps
    /// priority), or a larger size (loses it).
    fn replace(&mut self) -> Command {
        let Some(order_id) = self.live_id() else {
            return self.passive();
        };
        let order = self
            .book
            .order(order_id)
            .expect("bug: the live set names an order the book does not have");
        match self.rng.below(3) {
            0 => {
                let new_price = self.passive_price(order.side);
                let new_size = self.size(100);
                Command::Replace {
                    order_id,
                    new_price,
                    new_size,
                }
            }
            1 if order.remaining.0 > 1 => Command::Replace {
                order_id,
                new_price: order.price,
                new_size: SizeLots(1 + self.rng.below(order.remaining.0 - 1)),
            },
            _ => Command::Replace {
                order_id,
                new_price: order.price,
                new_size: SizeLots(order.remaining.0 + 1 + self.rng.below(50)),
            },
        }
    }

    fn run(&mut self, command: Command, stats: &mut StreamStats) -> Command {
        self.events.clear();
        self.book.apply(&command, &mut self.events);
        let events = std::mem::take(&mut self.events);
        self.live.observe(&events, stats);
        self.events = events;
        self.commands += 1;
        command
    }

    /// The mid of a swing: up `swing_ticks` over the first half of the body, back down
    /// over the second.
    fn swing_mid(&self, step: usize, body: usize) -> (u64, Option<Side>) {
        let half = (body / 2).max(1) as u64;
        let step = step as u64;
        let ticks = self.shape.swing_ticks;
        if step < half {
            (START_MID + ticks * step / half, Some(Side::Buy))
        } else {
            let down = ticks * (step - half) / half;
            (START_MID + ticks - down.min(ticks), Some(Side::Sell))
        }
    }
}

/// Generate a stream with `body_messages` measured commands.
pub fn generate(scenario: Scenario, profile: Profile, body_messages: usize, seed: u64) -> Stream {
    let shape = shape(scenario);
    let resting_start = shape.resting_start;
    let mut generator = Generator {
        rng: SplitMix64::new(seed ^ (scenario as u64) << 32),
        book: OrderBook::with_capacity(crate::BookConfig::default(), resting_start * 2),
        live: LiveSet::new(),
        events: Vec::new(),
        shape,
        profile,
        mid: START_MID,
        commands: 0,
    };
    let mut stats = StreamStats {
        resting_min: usize::MAX,
        levels_min: usize::MAX,
        mid_low: START_MID,
        mid_high: START_MID,
        ..StreamStats::default()
    };
    let mut ignored = StreamStats::default();

    let mut setup = Vec::with_capacity(resting_start);
    while generator.live.ids.len() < resting_start {
        let command = generator.passive();
        setup.push(generator.run(command, &mut ignored));
    }

    let mut body = Vec::with_capacity(body_messages);
    for step in 0..body_messages {
        let trend = if generator.shape.swing_ticks > 0 {
            let (mid, trend) = generator.swing_mid(step, body_messages);
            generator.mid = mid;
            stats.mid_low = stats.mid_low.min(mid);
            stats.mid_high = stats.mid_high.max(mid);
            trend
        } else {
            None
        };
        let resting = generator.live.ids.len();
        // Out of 100: 45 passive, 10 aggressive, 2 market, 36 cancel, 5 replace, 2 stale.
        // Book size is steered by trading passive placements for cancels (and back) only
        // when the book leaves its band.
        let mut roll = generator.rng.below(100);
        if resting > generator.shape.resting_high && roll < 45 && generator.rng.chance(2, 3) {
            roll = 60;
        } else if resting < generator.shape.resting_low
            && (57..93).contains(&roll)
            && generator.rng.chance(2, 3)
        {
            roll = 0;
        }
        let command = match roll {
            0..45 => {
                stats.passive += 1;
                generator.passive()
            }
            45..55 => {
                stats.aggressive += 1;
                generator.aggressive(trend)
            }
            55..57 => {
                stats.market += 1;
                generator.market()
            }
            57..93 => {
                stats.cancels += 1;
                generator.cancel()
            }
            93..98 if profile == Profile::Full => {
                stats.replaces += 1;
                generator.replace()
            }
            93..98 => {
                stats.cancels += 1;
                generator.cancel()
            }
            _ => {
                stats.stale_cancels += 1;
                generator.stale_cancel()
            }
        };
        body.push(generator.run(command, &mut stats));
        let resting = generator.book.len();
        let levels = generator.book.level_count(Side::Buy) + generator.book.level_count(Side::Sell);
        stats.resting_min = stats.resting_min.min(resting);
        stats.resting_max = stats.resting_max.max(resting);
        stats.levels_min = stats.levels_min.min(levels);
        stats.levels_max = stats.levels_max.max(levels);
    }
    Stream {
        scenario,
        profile,
        setup,
        body,
        stats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a = generate(Scenario::Normal, Profile::Full, 5_000, 7);
        let b = generate(Scenario::Normal, Profile::Full, 5_000, 7);
        assert_eq!(a.setup, b.setup);
        assert_eq!(a.body, b.body);
        let c = generate(Scenario::Normal, Profile::Full, 5_000, 8);
        assert_ne!(a.body, c.body);
    }

    #[test]
    fn ids_are_command_indices() {
        let stream = generate(Scenario::Swing, Profile::Full, 3_000, 1);
        for (index, command) in stream.setup.iter().chain(&stream.body).enumerate() {
            if let Command::Place(order) = command {
                assert_eq!(order.id.0, index as u64);
            }
        }
    }

    #[test]
    fn normal_stream_has_the_specified_shape() {
        let stream = generate(Scenario::Normal, Profile::Full, 200_000, 1);
        let s = stream.stats;
        assert!(s.resting_min >= 1_000 && s.resting_max <= 3_000, "{s:?}");
        assert!(s.levels_min >= 300 && s.levels_max <= 750, "{s:?}");
        assert!(
            s.fills > 0 && s.replaces > 0 && s.stale_cancels > 0,
            "{s:?}"
        );
    }

    #[test]
    fn deep_stream_has_the_specified_shape() {
        let stream = generate(Scenario::Deep, Profile::Basic, 20_000, 1);
        let s = stream.stats;
        assert!(s.resting_min >= 20_000 && s.resting_max <= 40_000, "{s:?}");
        assert!(s.levels_max < 100, "{s:?}");
        assert_eq!(s.replaces, 0);
    }

    #[test]
    fn swing_walks_more_than_ten_thousand_ticks() {
        let stream = generate(Scenario::Swing, Profile::Full, 100_000, 1);
        let s = stream.stats;
        assert!(s.mid_high - s.mid_low > 10_000, "{s:?}");
    }
}
