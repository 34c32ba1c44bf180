//! Engine benchmarks: micro operations, then seeded scenario replays side by side with
//! the `matchcore` and `lobster` crates, then a summary with messages/s, digests, and the
//! ratio of this engine's speed to each peer's on the same stream.
//!
//! `cargo bench -p dex-engine` runs everything; `cargo bench -p dex-engine -- insert` runs
//! what matches a filter (the summary runs only without a filter).

// Benchmarks measure time by nature; the crate's clippy.toml forbids clocks for the engine
// itself, not for its benchmarks.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod peers;

use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use dex_engine::scenario::{Profile, Scenario, Stream, generate};
use dex_engine::{EventDigest, NewOrder, OrderBook};
use dex_types::{
    AccountIndex, Domain, Hash, OrderId, OrderType, PriceTicks, SelfTradePrevention, Side,
    SizeLots, TimeInForce,
};
use peers::{Dex, Engine, FillRecord, Lobster, Matchcore};
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SEED: u64 = 0x5EED_0000_0000_0001;
const MID: u64 = 100_000;

fn order(id: u64, owner: u64, side: Side, price: u64, size: u64, tif: TimeInForce) -> NewOrder {
    NewOrder {
        id: OrderId(id),
        owner: AccountIndex(owner),
        side,
        order_type: OrderType::Limit,
        price: PriceTicks(price),
        size: SizeLots(size),
        tif,
        stp: SelfTradePrevention::CancelResting,
    }
}

/// A book with `depth` resting orders, half per side, spread round-robin over `levels`
/// levels per side starting one tick from the mid.
fn book_with_depth(depth: u64, levels: u64) -> OrderBook {
    let mut book = OrderBook::with_capacity(Default::default(), depth as usize * 2);
    let mut events = Vec::new();
    for i in 0..depth {
        let level = (i / 2) % levels;
        let (side, price) = if i % 2 == 0 {
            (Side::Buy, MID - 1 - level)
        } else {
            (Side::Sell, MID + 1 + level)
        };
        book.place(
            order(i, i % 997, side, price, 10, TimeInForce::Gtc),
            &mut events,
        );
    }
    assert_eq!(book.len() as u64, depth);
    book
}

/// `engine::insert/depth=N`: a non-crossing limit order joining a book of N orders, at a
/// level spread over the whole book side.
fn bench_insert(c: &mut Criterion) {
    const BATCH: u64 = 256;
    let mut group = c.benchmark_group("engine::insert");
    for depth in [10u64, 1_000, 10_000] {
        let levels = (depth / 20).clamp(5, 500);
        let mut book = book_with_depth(depth, levels);
        let mut events = Vec::with_capacity(16);
        let mut next_id = 1u64 << 40;
        group.bench_function(format!("depth={depth}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(BATCH);
                    let first = next_id;
                    let start = Instant::now();
                    for i in first..first + n {
                        let price = MID - 1 - (i.wrapping_mul(7) % levels);
                        let new = order(i, i % 997, Side::Buy, price, 5, TimeInForce::Gtc);
                        events.clear();
                        book.place(black_box(new), &mut events);
                    }
                    total += start.elapsed();
                    for i in first..first + n {
                        events.clear();
                        book.cancel(OrderId(i), &mut events);
                    }
                    next_id += n;
                    left -= n;
                }
                total
            })
        });
    }
    group.finish();
}

/// `engine::cancel/position=P`: cancel at the head, middle or tail of a 1,000-order queue
/// (100 cancels are timed together, then the queue is refilled untimed).
fn bench_cancel(c: &mut Criterion) {
    const QUEUE: u64 = 1_000;
    const BATCH: usize = 100;
    let mut group = c.benchmark_group("engine::cancel");
    for position in ["head", "middle", "tail"] {
        let mut book = book_with_depth(2_000, 100);
        let mut events = Vec::with_capacity(16);
        let mut queue: VecDeque<u64> = VecDeque::new();
        let mut next_id = 1u64 << 40;
        let price = MID - 200;
        for _ in 0..QUEUE {
            book.place(
                order(
                    next_id,
                    next_id % 997,
                    Side::Buy,
                    price,
                    10,
                    TimeInForce::Gtc,
                ),
                &mut events,
            );
            queue.push_back(next_id);
            next_id += 1;
        }
        group.bench_function(format!("position={position}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                let mut victims = Vec::with_capacity(BATCH);
                while left > 0 {
                    let n = (left as usize).min(BATCH);
                    let start_index = match position {
                        "head" => 0,
                        "middle" => queue.len() / 2 - n / 2,
                        _ => queue.len() - n,
                    };
                    victims.clear();
                    victims.extend(queue.drain(start_index..start_index + n));
                    let start = Instant::now();
                    for &id in &victims {
                        events.clear();
                        book.cancel(black_box(OrderId(id)), &mut events);
                    }
                    total += start.elapsed();
                    for _ in 0..n {
                        events.clear();
                        book.place(
                            order(
                                next_id,
                                next_id % 997,
                                Side::Buy,
                                price,
                                10,
                                TimeInForce::Gtc,
                            ),
                            &mut events,
                        );
                        queue.push_back(next_id);
                        next_id += 1;
                    }
                    left -= n as u64;
                }
                total
            })
        });
    }
    group.finish();
}

/// `engine::ioc/fills=1`: an IOC order that trades once with the head of the best level.
fn bench_ioc(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine::ioc");
    let mut book = book_with_depth(1_000, 50);
    let mut events = Vec::with_capacity(16);
    // A huge maker at the best ask so the benchmark never empties it.
    book.place(
        order(1 << 39, 5, Side::Sell, MID, 1 << 40, TimeInForce::Gtc),
        &mut events,
    );
    let mut next_id = 1u64 << 40;
    group.bench_function("fills=1", |b| {
        b.iter(|| {
            next_id += 1;
            events.clear();
            book.place(
                black_box(order(next_id, 6, Side::Buy, MID, 1, TimeInForce::Ioc)),
                &mut events,
            );
            black_box(events.len())
        })
    });
    group.finish();
}

/// `engine::sweep/levels=N`: an IOC order that empties the N best ask levels (one order
/// each) of a book with more levels behind them. 64 prepared books are swept per timed
/// batch, then restored untimed.
fn bench_sweep(c: &mut Criterion) {
    const BOOKS: usize = 64;
    let mut group = c.benchmark_group("engine::sweep");
    for levels in [2u64, 5, 20] {
        let sweep_level = |book: &mut OrderBook, level: u64, events: &mut Vec<_>| {
            let maker = order(
                1_000 + level,
                3,
                Side::Sell,
                MID + 1 + level,
                10,
                TimeInForce::Gtc,
            );
            book.place(maker, events);
        };
        let mut books: Vec<OrderBook> = (0..BOOKS)
            .map(|_| {
                let mut book = OrderBook::default();
                let mut events = Vec::new();
                for i in 0..100 {
                    let bid = order(
                        2_000 + i,
                        1,
                        Side::Buy,
                        MID - 1 - i % 10,
                        10,
                        TimeInForce::Gtc,
                    );
                    let ask = order(
                        3_000 + i,
                        2,
                        Side::Sell,
                        MID + 1 + levels + i % 10,
                        10,
                        TimeInForce::Gtc,
                    );
                    book.place(bid, &mut events);
                    book.place(ask, &mut events);
                }
                for level in 0..levels {
                    sweep_level(&mut book, level, &mut events);
                }
                book
            })
            .collect();
        let mut events = Vec::with_capacity(64);
        let mut next_id = 1u64 << 40;
        group.bench_function(format!("levels={levels}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = (left as usize).min(BOOKS);
                    let start = Instant::now();
                    for book in &mut books[..n] {
                        next_id += 1;
                        events.clear();
                        book.place(
                            black_box(order(
                                next_id,
                                4,
                                Side::Buy,
                                MID + levels,
                                10 * levels,
                                TimeInForce::Ioc,
                            )),
                            &mut events,
                        );
                    }
                    total += start.elapsed();
                    for book in &mut books[..n] {
                        for level in 0..levels {
                            events.clear();
                            sweep_level(book, level, &mut events);
                        }
                    }
                    left -= n as u64;
                }
                total
            })
        });
    }
    group.finish();
}

/// The scenario streams: each scenario in the full profile (dex and matchcore) and the
/// basic profile (dex, matchcore and lobster).
fn streams() -> Vec<Stream> {
    let mut streams = Vec::new();
    for scenario in Scenario::ALL {
        let body = match scenario {
            Scenario::Normal | Scenario::Deep => 200_000,
            Scenario::Swing => 400_000,
        };
        for profile in [Profile::Full, Profile::Basic] {
            streams.push(generate(scenario, profile, body, SEED));
        }
    }
    streams
}

fn stream_name(stream: &Stream) -> String {
    match stream.profile {
        Profile::Full => stream.scenario.name().to_string(),
        Profile::Basic => format!("{}-basic", stream.scenario.name()),
    }
}

fn supported<E: Engine>(stream: &Stream) -> bool {
    E::supports(&stream.setup) && E::supports(&stream.body)
}

fn bench_engine<E: Engine>(group: &mut BenchmarkGroup<'_, WallTime>, stream: &Stream) {
    if !supported::<E>(stream) {
        return;
    }
    let setup = E::translate(&stream.setup, 0);
    let body = E::translate(&stream.body, stream.setup.len() as u64);
    group.bench_function(E::NAME, |b| {
        b.iter_batched(
            || {
                let mut book = E::new_book();
                E::run(&mut book, &setup);
                book
            },
            |mut book| {
                black_box(E::run(&mut book, black_box(&body)));
                book
            },
            BatchSize::PerIteration,
        )
    });
}

fn bench_scenarios(c: &mut Criterion, streams: &[Stream]) {
    for stream in streams {
        let mut group = c.benchmark_group(format!("scenario::{}", stream_name(stream)));
        group.throughput(Throughput::Elements(stream.body.len() as u64));
        group.sample_size(10);
        bench_engine::<Dex>(&mut group, stream);
        bench_engine::<Matchcore>(&mut group, stream);
        bench_engine::<Lobster>(&mut group, stream);
        group.finish();
    }
}

/// Best of `runs` timed replays of the body, in messages per second.
fn messages_per_second<E: Engine>(stream: &Stream, runs: usize) -> f64 {
    let setup = E::translate(&stream.setup, 0);
    let body = E::translate(&stream.body, stream.setup.len() as u64);
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let mut book = E::new_book();
        E::run(&mut book, &setup);
        let start = Instant::now();
        black_box(E::run(&mut book, black_box(&body)));
        best = best.min(start.elapsed());
        drop(book);
    }
    // A rate for the report only; nothing the engine decides sees a float.
    stream.body.len() as f64 / best.as_secs_f64()
}

fn fills_of<E: Engine>(stream: &Stream) -> Vec<FillRecord> {
    let setup = E::translate(&stream.setup, 0);
    let body = E::translate(&stream.body, stream.setup.len() as u64);
    let mut book = E::new_book();
    E::run(&mut book, &setup);
    let mut fills = Vec::new();
    E::run_collecting(&mut book, &body, &mut fills);
    fills
}

fn fills_digest(fills: &[FillRecord]) -> Hash {
    let mut bytes = Vec::with_capacity(fills.len() * 32);
    for &(taker, maker, price, size) in fills {
        for word in [taker, maker, price, size] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
    }
    Hash::of(Domain::EventDigest, &[&bytes])
}

fn events_digest(stream: &Stream) -> (Hash, u64) {
    let mut book = OrderBook::default();
    let mut events = Vec::new();
    for command in &stream.setup {
        book.apply(command, &mut events);
    }
    let mut digest = EventDigest::new();
    for command in &stream.body {
        events.clear();
        book.apply(command, &mut events);
        digest.extend(&events);
    }
    (digest.finish(), digest.events())
}

fn short(hash: Hash) -> String {
    hash.to_hex()[..16].to_string()
}

/// The side-by-side table: messages/s (best of 5), event digest, fills digest (equal
/// digests mean the engines produced exactly the same trades), and dex/peer ratios.
fn summary(streams: &[Stream]) {
    println!("\n==== dex-engine scenario summary (one core, best of 5 replays per engine) ====");
    for stream in streams {
        let s = &stream.stats;
        println!(
            "\nscenario::{} — {} measured messages after {} setup placements; resting {}–{} orders on {}–{} levels; mid {}–{} ({} ticks); fills {}",
            stream_name(stream),
            stream.body.len(),
            stream.setup.len(),
            s.resting_min,
            s.resting_max,
            s.levels_min,
            s.levels_max,
            s.mid_low,
            s.mid_high,
            s.mid_high - s.mid_low,
            s.fills,
        );
        println!(
            "  mix: passive {} aggressive {} market {} cancel {} replace {} stale-cancel {}",
            s.passive, s.aggressive, s.market, s.cancels, s.replaces, s.stale_cancels
        );
        let (events, count) = events_digest(stream);
        let ours = messages_per_second::<Dex>(stream, 5);
        let our_fills = fills_digest(&fills_of::<Dex>(stream));
        println!(
            "  {:<10} {:>7.2} M msgs/s   events {} ({count} events)   fills {}",
            "dex",
            ours / 1e6,
            short(events),
            short(our_fills)
        );
        let peer = |name: &str,
                    supported: bool,
                    rate: &dyn Fn() -> f64,
                    fills: &dyn Fn() -> Vec<FillRecord>| {
            if !supported {
                println!(
                    "  {name:<10} (stream not supported: needs IOC limits, bounded market orders or replaces)"
                );
                return;
            }
            let rate = rate();
            let digest = fills_digest(&fills());
            println!(
                "  {:<10} {:>7.2} M msgs/s   fills {} ({})   dex/{} = {:.2}x",
                name,
                rate / 1e6,
                short(digest),
                if digest == our_fills {
                    "same trades as dex"
                } else {
                    "TRADES DIFFER from dex"
                },
                name,
                ours / rate
            );
        };
        peer(
            Matchcore::NAME,
            supported::<Matchcore>(stream),
            &|| messages_per_second::<Matchcore>(stream, 5),
            &|| fills_of::<Matchcore>(stream),
        );
        peer(
            Lobster::NAME,
            supported::<Lobster>(stream),
            &|| messages_per_second::<Lobster>(stream, 5),
            &|| fills_of::<Lobster>(stream),
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|arg| arg == "--bench");
    let filtered = args
        .iter()
        .skip(1)
        .any(|arg| !arg.starts_with('-') && arg.parse::<f64>().is_err());
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_insert(&mut criterion);
    bench_cancel(&mut criterion);
    bench_ioc(&mut criterion);
    bench_sweep(&mut criterion);
    let streams = streams();
    bench_scenarios(&mut criterion, &streams);
    criterion.final_summary();
    if benchmarking && !filtered {
        summary(&streams);
    }
}
