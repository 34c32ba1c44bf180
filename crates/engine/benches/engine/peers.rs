//! One adapter trait over this engine and the open-source peers, so that every engine runs
//! the same message streams, each in its own native command format (translated before
//! timing starts).
//!
//! Which streams each peer gets, and why:
//! - `matchcore` 0.4: good-til-cancel and IOC limits, cancels and amends (price and/or
//!   quantity; a quantity decrease keeps priority, an increase or price change loses it, as
//!   here). It numbers orders by command sequence number, which the scenario ids equal. A
//!   market order with a worst price is sent as an IOC limit at that price (the same
//!   semantics); an unbounded one as its market order. It has no self-trade prevention, and
//!   the streams never self-trade. It gets the `full` and `basic` profiles.
//! - `lobster` 0.7: good-til-cancel limits, unbounded market orders and cancels only (no
//!   IOC limit, no amend, no worst price). It gets only the `basic` profile.

use dex_engine::{Command, Event, OrderBook};
use dex_types::{OrderType, Side};

/// A fill as every engine can report it: `(taker id, maker id, price, size)`.
pub type FillRecord = (u64, u64, u64, u64);

/// An order book engine under benchmark.
pub trait Engine {
    /// Name in benchmark ids.
    const NAME: &'static str;
    /// The engine's own command type.
    type Native;
    /// The engine's state, plus whatever reusable buffers it needs.
    type Book;

    /// Whether the engine supports every command of a stream.
    fn supports(commands: &[Command]) -> bool;
    /// Translate a stream; `first_index` is the stream index of `commands[0]`.
    fn translate(commands: &[Command], first_index: u64) -> Vec<Self::Native>;
    /// An empty book.
    fn new_book() -> Self::Book;
    /// Run commands; returns a cheap fold of the output so nothing is optimised away.
    fn run(book: &mut Self::Book, commands: &[Self::Native]) -> u64;
    /// Run commands, collecting every fill.
    fn run_collecting(
        book: &mut Self::Book,
        commands: &[Self::Native],
        fills: &mut Vec<FillRecord>,
    );
}

/// This crate's engine.
pub struct Dex;

/// [`OrderBook`] with its reusable event buffer.
pub struct DexBook {
    pub book: OrderBook,
    pub events: Vec<Event>,
}

impl Engine for Dex {
    const NAME: &'static str = "dex";
    type Native = Command;
    type Book = DexBook;

    fn supports(_: &[Command]) -> bool {
        true
    }

    fn translate(commands: &[Command], _: u64) -> Vec<Command> {
        commands.to_vec()
    }

    fn new_book() -> DexBook {
        DexBook {
            book: OrderBook::default(),
            events: Vec::with_capacity(1024),
        }
    }

    #[inline(never)]
    fn run(book: &mut DexBook, commands: &[Command]) -> u64 {
        let mut out = 0u64;
        for command in commands {
            book.events.clear();
            book.book.apply(command, &mut book.events);
            out = out.wrapping_add(book.events.len() as u64);
        }
        out
    }

    fn run_collecting(book: &mut DexBook, commands: &[Command], fills: &mut Vec<FillRecord>) {
        for command in commands {
            book.events.clear();
            book.book.apply(command, &mut book.events);
            for event in &book.events {
                if let Event::Fill {
                    maker_order_id,
                    taker_order_id,
                    price,
                    size,
                    ..
                } = *event
                {
                    fills.push((taker_order_id.0, maker_order_id.0, price.0, size.0));
                }
            }
        }
    }
}

/// Whether a market order's worst price is "no bound at all" (the basic profile).
fn unbounded_market(side: Side, worst: u64) -> bool {
    match side {
        Side::Buy => worst == u64::MAX,
        Side::Sell => worst == 1,
    }
}

/// The `matchcore` crate.
pub struct Matchcore;

impl Engine for Matchcore {
    const NAME: &'static str = "matchcore";
    type Native = matchcore::Command;
    type Book = matchcore::OrderBook;

    fn supports(commands: &[Command]) -> bool {
        commands.iter().all(|command| match command {
            Command::Place(order) => matches!(
                order.tif,
                dex_types::TimeInForce::Gtc | dex_types::TimeInForce::Ioc
            ),
            Command::Cancel { .. } | Command::Replace { .. } => true,
            _ => false,
        })
    }

    fn translate(commands: &[Command], first_index: u64) -> Vec<matchcore::Command> {
        use matchcore::{
            AmendCmd, AmendPatch, CancelCmd, CommandKind, CommandMeta, LimitOrder, LimitOrderPatch,
            MarketOrder, NewOrder, OrderFlags, OrderId, OrderKind, Price, Quantity, QuantityPolicy,
            SequenceNumber, SubmitCmd, TimeInForce, Timestamp,
        };
        let side = |side: Side| match side {
            Side::Buy => matchcore::Side::Buy,
            Side::Sell => matchcore::Side::Sell,
        };
        commands
            .iter()
            .enumerate()
            .map(|(offset, command)| {
                let index = first_index + offset as u64;
                let kind = match *command {
                    Command::Place(order) => {
                        let order = if order.order_type == OrderType::Market
                            && unbounded_market(order.side, order.price.0)
                        {
                            NewOrder::Market(MarketOrder::new(
                                Quantity(order.size.0),
                                side(order.side),
                                false,
                            ))
                        } else {
                            let tif = match order.tif {
                                dex_types::TimeInForce::Gtc => TimeInForce::Gtc,
                                _ => TimeInForce::Ioc,
                            };
                            NewOrder::Limit(LimitOrder::new(
                                Price(order.price.0),
                                QuantityPolicy::Standard {
                                    quantity: Quantity(order.size.0),
                                },
                                OrderFlags::new(side(order.side), false, tif),
                            ))
                        };
                        CommandKind::Submit(SubmitCmd { order })
                    }
                    Command::Cancel { order_id } => CommandKind::Cancel(CancelCmd {
                        order_id: OrderId(order_id.0),
                        order_kind: OrderKind::Limit,
                    }),
                    Command::Replace {
                        order_id,
                        new_price,
                        new_size,
                    } => CommandKind::Amend(AmendCmd {
                        order_id: OrderId(order_id.0),
                        patch: AmendPatch::Limit(
                            LimitOrderPatch::new()
                                .with_price(Price(new_price.0))
                                .with_quantity_policy(QuantityPolicy::Standard {
                                    quantity: Quantity(new_size.0),
                                }),
                        ),
                    }),
                    _ => panic!("matchcore adapter: unsupported command {command:?}"),
                };
                matchcore::Command {
                    meta: CommandMeta {
                        sequence_number: SequenceNumber(index),
                        timestamp: Timestamp(index),
                    },
                    kind,
                }
            })
            .collect()
    }

    fn new_book() -> matchcore::OrderBook {
        matchcore::OrderBook::new("BENCH")
    }

    #[inline(never)]
    fn run(book: &mut matchcore::OrderBook, commands: &[matchcore::Command]) -> u64 {
        let mut out = 0u64;
        for command in commands {
            let outcome = book.execute(command);
            out = out.wrapping_add(matches!(outcome, matchcore::CommandOutcome::Applied(_)) as u64);
            std::hint::black_box(&outcome);
        }
        out
    }

    fn run_collecting(
        book: &mut matchcore::OrderBook,
        commands: &[matchcore::Command],
        fills: &mut Vec<FillRecord>,
    ) {
        use matchcore::{CommandOutcome, CommandReport};
        for command in commands {
            let outcome = book.execute(command);
            let effects = match &outcome {
                CommandOutcome::Applied(CommandReport::Submit(effects))
                | CommandOutcome::Applied(CommandReport::Amend(effects)) => effects,
                _ => continue,
            };
            let target = effects.target_order();
            if let Some(result) = target.match_result() {
                for trade in result.trades() {
                    fills.push((
                        target.order_id().0,
                        trade.maker_order_id().0,
                        trade.price().0,
                        trade.quantity().0,
                    ));
                }
            }
        }
    }
}

/// The `lobster` crate.
pub struct Lobster;

impl Engine for Lobster {
    const NAME: &'static str = "lobster";
    type Native = lobster::OrderType;
    type Book = lobster::OrderBook;

    fn supports(commands: &[Command]) -> bool {
        commands.iter().all(|command| match command {
            Command::Place(order) => match order.order_type {
                OrderType::Limit => order.tif == dex_types::TimeInForce::Gtc,
                OrderType::Market => unbounded_market(order.side, order.price.0),
            },
            Command::Cancel { .. } => true,
            _ => false,
        })
    }

    fn translate(commands: &[Command], _: u64) -> Vec<lobster::OrderType> {
        let side = |side: Side| match side {
            Side::Buy => lobster::Side::Bid,
            Side::Sell => lobster::Side::Ask,
        };
        commands
            .iter()
            .map(|command| match *command {
                Command::Place(order) => match order.order_type {
                    OrderType::Limit => lobster::OrderType::Limit {
                        id: u128::from(order.id.0),
                        side: side(order.side),
                        qty: order.size.0,
                        price: order.price.0,
                    },
                    OrderType::Market => lobster::OrderType::Market {
                        id: u128::from(order.id.0),
                        side: side(order.side),
                        qty: order.size.0,
                    },
                },
                Command::Cancel { order_id } => lobster::OrderType::Cancel {
                    id: u128::from(order_id.0),
                },
                _ => panic!("lobster adapter: unsupported command {command:?}"),
            })
            .collect()
    }

    fn new_book() -> lobster::OrderBook {
        lobster::OrderBook::new(1 << 16, 16, false)
    }

    #[inline(never)]
    fn run(book: &mut lobster::OrderBook, commands: &[lobster::OrderType]) -> u64 {
        let mut out = 0u64;
        for &command in commands {
            let event = book.execute(command);
            out = out.wrapping_add(matches!(event, lobster::OrderEvent::Placed { .. }) as u64);
            std::hint::black_box(&event);
        }
        out
    }

    fn run_collecting(
        book: &mut lobster::OrderBook,
        commands: &[lobster::OrderType],
        fills: &mut Vec<FillRecord>,
    ) {
        for &command in commands {
            match book.execute(command) {
                lobster::OrderEvent::Filled { fills: made, .. }
                | lobster::OrderEvent::PartiallyFilled { fills: made, .. } => {
                    for fill in made {
                        fills.push((
                            fill.order_1 as u64,
                            fill.order_2 as u64,
                            fill.price,
                            fill.qty,
                        ));
                    }
                }
                _ => {}
            }
        }
    }
}
