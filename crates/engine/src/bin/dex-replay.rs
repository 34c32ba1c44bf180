//! Replay JSON-lines order-book commands from stdin; print one JSON line of events per command.
//!
//! The format is documented with examples in the crate README. A malformed line gives an
//! error line and the replay goes on with the next line. `--digest` also prints the digest
//! of all events to stderr at the end, so that two replays can be compared at a glance.

use dex_engine::{BookConfig, Command, Event, EventDigest, NewOrder, OrderBook};
use dex_types::{
    AccountIndex, OrderId, OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce,
    TimestampMs,
};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::process::ExitCode;

/// Longest accepted input line in bytes; a longer line is reported and skipped, never
/// buffered whole.
const MAX_LINE_BYTES: usize = 4096;

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
enum Input {
    New {
        id: u64,
        owner: u64,
        side: Side,
        #[serde(rename = "type", default = "limit")]
        order_type: OrderType,
        price: u64,
        size: u64,
        #[serde(default)]
        tif: Tif,
        expires_at: Option<u64>,
        #[serde(default)]
        stp: SelfTradePrevention,
    },
    Cancel {
        id: u64,
    },
    CancelAll {
        owner: u64,
    },
    Reduce {
        id: u64,
        size: u64,
    },
    Replace {
        id: u64,
        price: u64,
        size: u64,
    },
    ExpireUntil {
        time: u64,
    },
}

fn limit() -> OrderType {
    OrderType::Limit
}

/// Time in force as a flat word; a good-til-time order gives `expires_at` beside it.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Tif {
    #[default]
    Gtc,
    Gtt,
    Ioc,
    Fok,
    PostOnly,
}

impl Input {
    fn into_command(self) -> Result<Command, String> {
        Ok(match self {
            Input::New {
                id,
                owner,
                side,
                order_type,
                price,
                size,
                tif,
                expires_at,
                stp,
            } => {
                let tif = match (tif, expires_at) {
                    (Tif::Gtt, Some(at)) => TimeInForce::Gtt {
                        expires_at: TimestampMs(at),
                    },
                    (Tif::Gtt, None) => return Err("tif \"gtt\" needs \"expires_at\"".into()),
                    (_, Some(_)) => {
                        return Err("\"expires_at\" is only allowed with tif \"gtt\"".into());
                    }
                    (Tif::Gtc, None) => TimeInForce::Gtc,
                    (Tif::Ioc, None) => TimeInForce::Ioc,
                    (Tif::Fok, None) => TimeInForce::Fok,
                    (Tif::PostOnly, None) => TimeInForce::PostOnly,
                };
                Command::Place(NewOrder {
                    id: OrderId(id),
                    owner: AccountIndex(owner),
                    side,
                    order_type,
                    price: PriceTicks(price),
                    size: SizeLots(size),
                    tif,
                    stp,
                })
            }
            Input::Cancel { id } => Command::Cancel {
                order_id: OrderId(id),
            },
            Input::CancelAll { owner } => Command::CancelAll {
                owner: AccountIndex(owner),
            },
            Input::Reduce { id, size } => Command::Reduce {
                order_id: OrderId(id),
                new_size: SizeLots(size),
            },
            Input::Replace { id, price, size } => Command::Replace {
                order_id: OrderId(id),
                new_price: PriceTicks(price),
                new_size: SizeLots(size),
            },
            Input::ExpireUntil { time } => Command::ExpireUntil {
                now: TimestampMs(time),
            },
        })
    }
}

#[derive(Serialize)]
struct EventsLine<'a> {
    line: u64,
    events: &'a [Event],
}

#[derive(Serialize)]
struct ErrorLine {
    line: u64,
    error: String,
}

fn main() -> ExitCode {
    let mut digest_wanted = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--digest" => digest_wanted = true,
            "-h" | "--help" => {
                println!(
                    "usage: dex-replay [--digest] < commands.jsonl\n\
                     Reads one JSON command per line and prints one JSON line of events per \
                     command. See crates/engine/README.md for the format."
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("dex-replay: unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    match replay(digest_wanted) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dex-replay: {error}");
            ExitCode::FAILURE
        }
    }
}

fn replay(digest_wanted: bool) -> io::Result<()> {
    let mut input = BufReader::with_capacity(1 << 16, io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    let mut book = OrderBook::new(BookConfig::default());
    let mut events = Vec::new();
    let mut digest = EventDigest::new();
    let mut raw = Vec::with_capacity(MAX_LINE_BYTES + 1);
    let mut line_number = 0u64;
    loop {
        raw.clear();
        let read = (&mut input)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut raw)?;
        if read == 0 {
            break;
        }
        line_number += 1;
        let complete = raw.last() == Some(&b'\n');
        let result = if !complete && raw.len() > MAX_LINE_BYTES {
            skip_rest_of_line(&mut input)?;
            Err(format!("line longer than {MAX_LINE_BYTES} bytes"))
        } else {
            parse(&raw)
        };
        match result {
            Ok(None) => {}
            Ok(Some(command)) => {
                events.clear();
                book.apply(&command, &mut events);
                digest.extend(&events);
                serde_json::to_writer(
                    &mut output,
                    &EventsLine {
                        line: line_number,
                        events: &events,
                    },
                )?;
                output.write_all(b"\n")?;
            }
            Err(error) => {
                serde_json::to_writer(
                    &mut output,
                    &ErrorLine {
                        line: line_number,
                        error,
                    },
                )?;
                output.write_all(b"\n")?;
            }
        }
        // Flush whenever no more input is already waiting, so an interactive session sees
        // each answer at once while a piped file is still written in large blocks.
        if input.buffer().is_empty() {
            output.flush()?;
        }
    }
    output.flush()?;
    if digest_wanted {
        eprintln!(
            "{{\"digest\":\"{}\",\"events\":{}}}",
            digest.finish(),
            digest.events()
        );
    }
    Ok(())
}

/// A blank line (or one holding only a `#` comment) is skipped without output.
fn parse(raw: &[u8]) -> Result<Option<Command>, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "line is not UTF-8".to_string())?;
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let input: Input = serde_json::from_str(text).map_err(|error| error.to_string())?;
    input.into_command().map(Some)
}

fn skip_rest_of_line(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|&byte| byte == b'\n') {
            Some(end) => {
                input.consume(end + 1);
                return Ok(());
            }
            None => {
                let len = buffer.len();
                input.consume(len);
            }
        }
    }
}
