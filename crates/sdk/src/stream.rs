//! Subscriptions that stay correct across dropped connections.
//!
//! A [`Subscription`] runs one task that owns the WebSocket. It:
//! - reconnects by itself with bounded exponential backoff, and resubscribes every channel;
//!   for trades, orders, fills and blocks it asks the node to replay from the last height
//!   it fully received (`since_height`, advanced by each message and each heartbeat), so
//!   nothing committed while it was away is missed; fills are also de-duplicated by
//!   `(height, index, order)`, so none is delivered twice;
//! - treats silence longer than the heartbeat timeout as a dead link;
//! - keeps a [`LocalBook`] per book channel: a diff whose `seq` jumps is a gap (it asks
//!   `resync` from the first missing one), a checksum mismatch asks for a fresh snapshot;
//!   either way it reports a [`StreamEvent::Resync`].
//!
//! Events come out of a bounded channel; a slow reader slows the task, and if the node
//! drops the connection for it, the replay on reconnect covers the gap.

use crate::book::{Applied, BookError, LocalBook};
use dex_api::wire::{
    BlockView, Channel, ClientMessage, FillView, OrderStatusView, ServerMessage, TradeView,
};
use dex_types::{Market, MarketId};
use futures::{SinkExt, StreamExt};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Settings of a [`Subscription`].
#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// Silence longer than this (no data, no heartbeat) means the link is dead.
    pub heartbeat_timeout: Duration,
    /// Timeout of one connection attempt.
    pub connect_timeout: Duration,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Consecutive failed connection attempts before the subscription gives up.
    pub max_failures: u32,
    /// Capacity of the event channel.
    pub buffer: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            heartbeat_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            max_failures: 1_000,
            buffer: 1_024,
        }
    }
}

/// Why a book was resynchronised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResyncReason {
    /// Diffs were missed.
    Gap {
        /// The book's sequence number.
        had: u64,
        /// The diff that arrived.
        got: u64,
    },
    /// The book's checksum differed from the node's.
    Checksum,
}

/// What a subscription reports.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// A connection is up and every channel was (re)subscribed.
    Connected {
        /// Connections made so far, this one included.
        connection: u32,
    },
    /// The connection ended; a reconnect follows.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A book changed (read it with [`Subscription::book`]).
    Book {
        /// Market.
        market: MarketId,
        /// Its sequence number now.
        seq: u64,
        /// Height of the last block included.
        height: u64,
    },
    /// A book was found wrong or incomplete and is being resynchronised.
    Resync {
        /// Market.
        market: MarketId,
        /// Why.
        reason: ResyncReason,
    },
    /// A market's trades in one block.
    Trades {
        /// Market.
        market: MarketId,
        /// Block.
        height: u64,
        /// Trades.
        trades: Vec<TradeView>,
    },
    /// An account's order updates in one block.
    Orders {
        /// Block.
        height: u64,
        /// Updated orders.
        orders: Vec<OrderStatusView>,
    },
    /// An account's new fills in one block (never one already delivered).
    Fills {
        /// Block.
        height: u64,
        /// Fills.
        fills: Vec<FillView>,
    },
    /// A committed block.
    Block(Box<BlockView>),
    /// The node is alive at this height.
    Heartbeat {
        /// Chain height.
        height: u64,
    },
    /// The node reported an error about a message or subscription.
    Error {
        /// Stable code.
        code: String,
        /// Message.
        message: String,
    },
    /// The subscription gave up after too many failed connection attempts.
    Closed {
        /// Why.
        reason: String,
    },
}

type Books = Arc<Mutex<BTreeMap<MarketId, LocalBook>>>;

/// A self-healing set of WebSocket subscriptions; see the module docs. Dropping it stops
/// its task.
#[derive(Debug)]
pub struct Subscription {
    events: mpsc::Receiver<StreamEvent>,
    books: Books,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `ws://host:port/v1/ws` from an `http://host:port` base URL.
pub fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let rest = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| base.to_string());
    format!("{rest}/v1/ws")
}

impl Subscription {
    /// Subscribe to `channels` at the node whose API base URL is `url`. `markets` are the
    /// chain's markets (for the books' exact conversions).
    pub fn spawn(
        url: &str,
        markets: BTreeMap<MarketId, Market>,
        channels: Vec<Channel>,
        config: StreamConfig,
    ) -> Subscription {
        let (sender, events) = mpsc::channel(config.buffer.max(1));
        // Accounts in the node's canonical form (lower-case hex), as its messages name them.
        let canonical = |text: String| {
            dex_types::AccountId::from_hex(&text)
                .map(|id| id.to_hex())
                .unwrap_or(text)
        };
        let channels = channels
            .into_iter()
            .map(|channel| match channel {
                Channel::Orders { account } => Channel::Orders {
                    account: canonical(account),
                },
                Channel::Fills { account } => Channel::Fills {
                    account: canonical(account),
                },
                other => other,
            })
            .collect();
        let books: Books = Arc::new(Mutex::new(BTreeMap::new()));
        let worker = Worker {
            url: ws_url(url),
            markets,
            channels,
            config,
            sender,
            books: books.clone(),
            since: BTreeMap::new(),
            seen_fills: BTreeSet::new(),
            seen_order: VecDeque::new(),
        };
        Subscription {
            events,
            books,
            task: tokio::spawn(worker.run()),
        }
    }

    /// The next event; `None` once the subscription has closed.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        self.events.recv().await
    }

    /// A copy of a market's local book, if a valid snapshot has arrived.
    pub fn book(&self, market: MarketId) -> Option<LocalBook> {
        self.books
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&market)
            .filter(|b| b.is_valid())
            .cloned()
    }
}

/// Fills remembered for de-duplication.
const SEEN_FILLS: usize = 100_000;

struct Worker {
    url: String,
    markets: BTreeMap<MarketId, Market>,
    channels: Vec<Channel>,
    config: StreamConfig,
    sender: mpsc::Sender<StreamEvent>,
    books: Books,
    /// Last height fully received per non-book channel.
    since: BTreeMap<Channel, u64>,
    seen_fills: BTreeSet<(u64, u32, u64)>,
    seen_order: VecDeque<(u64, u32, u64)>,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Worker {
    async fn emit(&self, event: StreamEvent) -> bool {
        self.sender.send(event).await.is_ok()
    }

    async fn run(mut self) {
        let mut failures = 0u32;
        let mut connections = 0u32;
        let mut backoff = self.config.backoff_min;
        loop {
            let connected = tokio::time::timeout(
                self.config.connect_timeout,
                tokio_tungstenite::connect_async(&self.url),
            )
            .await;
            let reason = match connected {
                Ok(Ok((socket, _))) => {
                    connections = connections.saturating_add(1);
                    match self.session(socket, connections).await {
                        Ok(reason) => {
                            // A session that got going resets the failure count and backoff.
                            failures = 0;
                            backoff = self.config.backoff_min;
                            reason
                        }
                        Err(Stop) => return,
                    }
                }
                Ok(Err(e)) => format!("connect failed: {e}"),
                Err(_) => "connect timed out".to_string(),
            };
            failures = failures.saturating_add(1);
            if failures > self.config.max_failures {
                let _ = self
                    .emit(StreamEvent::Closed {
                        reason: format!("{failures} connection attempts failed; last: {reason}"),
                    })
                    .await;
                return;
            }
            if !self.emit(StreamEvent::Disconnected { reason }).await {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.backoff_max);
        }
    }

    /// One connection: subscribe, then pass messages on until the link fails. `Ok` with
    /// the reason it ended, `Err(Stop)` if nobody listens any more.
    async fn session(&mut self, mut socket: Socket, connection: u32) -> Result<String, Stop> {
        for channel in self.channels.clone() {
            let since_height = self.since.get(&channel).copied();
            if let Channel::Book { market } = channel {
                self.books
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&MarketId(market));
            }
            let message = ClientMessage::Subscribe {
                channel,
                since_height,
            };
            if let Err(e) = send(&mut socket, &message).await {
                return Ok(format!("subscribe failed: {e}"));
            }
        }
        if !self.emit(StreamEvent::Connected { connection }).await {
            return Err(Stop);
        }
        loop {
            let next = tokio::time::timeout(self.config.heartbeat_timeout, socket.next()).await;
            let text = match next {
                Err(_) => return Ok("no message or heartbeat within the timeout".into()),
                Ok(None) => return Ok("the node closed the connection".into()),
                Ok(Some(Err(e))) => return Ok(format!("connection error: {e}")),
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(Message::Close(_)))) => {
                    return Ok("the node closed the connection".into());
                }
                Ok(Some(Ok(_))) => continue,
            };
            let message: ServerMessage = match serde_json::from_str(text.as_str()) {
                Ok(m) => m,
                Err(e) => {
                    if !self
                        .emit(StreamEvent::Error {
                            code: "bad_server_message".into(),
                            message: e.to_string(),
                        })
                        .await
                    {
                        return Err(Stop);
                    }
                    continue;
                }
            };
            let (events, reply) = self.handle(message);
            for event in events {
                if !self.emit(event).await {
                    return Err(Stop);
                }
            }
            if let Some(reply) = reply
                && let Err(e) = send(&mut socket, &reply).await
            {
                return Ok(format!("send failed: {e}"));
            }
        }
    }

    fn advance(&mut self, channel: Channel, height: u64) {
        let entry = self.since.entry(channel).or_insert(height);
        *entry = (*entry).max(height);
    }

    /// Events for one server message, and a message to send back (resync, snapshot).
    fn handle(&mut self, message: ServerMessage) -> (Vec<StreamEvent>, Option<ClientMessage>) {
        match message {
            ServerMessage::BookSnapshot(view) => {
                let market = MarketId(view.market);
                let Some(spec) = self.markets.get(&market).cloned() else {
                    return (Vec::new(), None);
                };
                match LocalBook::from_snapshot(spec, &view) {
                    Ok(book) => {
                        let event = StreamEvent::Book {
                            market,
                            seq: book.seq(),
                            height: book.height(),
                        };
                        self.books
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(market, book);
                        (vec![event], None)
                    }
                    // A snapshot that does not check out (truncated at the node's snapshot
                    // depth, or damaged): ask again.
                    Err(_) => (
                        vec![StreamEvent::Resync {
                            market,
                            reason: ResyncReason::Checksum,
                        }],
                        Some(ClientMessage::Snapshot { market: market.0 }),
                    ),
                }
            }
            ServerMessage::BookDiff(view) => {
                let market = MarketId(view.market);
                let mut books = self.books.lock().unwrap_or_else(|p| p.into_inner());
                let Some(book) = books.get_mut(&market) else {
                    // No snapshot yet (it is on its way after a resubscribe or resync).
                    return (Vec::new(), None);
                };
                match book.apply_diff(&view) {
                    Ok(Applied::Applied) => (
                        vec![StreamEvent::Book {
                            market,
                            seq: book.seq(),
                            height: book.height(),
                        }],
                        None,
                    ),
                    Ok(Applied::Stale) => (Vec::new(), None),
                    Err(BookError::Gap { expected_prev, got }) => (
                        vec![StreamEvent::Resync {
                            market,
                            reason: ResyncReason::Gap {
                                had: expected_prev,
                                got,
                            },
                        }],
                        Some(ClientMessage::Resync {
                            market: market.0,
                            from_seq: expected_prev + 1,
                        }),
                    ),
                    Err(_) => {
                        books.remove(&market);
                        (
                            vec![StreamEvent::Resync {
                                market,
                                reason: ResyncReason::Checksum,
                            }],
                            Some(ClientMessage::Snapshot { market: market.0 }),
                        )
                    }
                }
            }
            ServerMessage::Trades {
                market,
                height,
                trades,
            } => {
                self.advance(Channel::Trades { market }, height);
                (
                    vec![StreamEvent::Trades {
                        market: MarketId(market),
                        height,
                        trades,
                    }],
                    None,
                )
            }
            ServerMessage::Orders {
                account,
                height,
                orders,
            } => {
                self.advance(Channel::Orders { account }, height);
                (vec![StreamEvent::Orders { height, orders }], None)
            }
            ServerMessage::Fills {
                account,
                height,
                fills,
            } => {
                self.advance(Channel::Fills { account }, height);
                let fresh: Vec<FillView> = fills
                    .into_iter()
                    .filter(|f| self.remember_fill((f.height, f.index, f.order_id)))
                    .collect();
                if fresh.is_empty() {
                    (Vec::new(), None)
                } else {
                    (
                        vec![StreamEvent::Fills {
                            height,
                            fills: fresh,
                        }],
                        None,
                    )
                }
            }
            ServerMessage::Block(view) => {
                self.advance(Channel::Blocks, view.header.height);
                (vec![StreamEvent::Block(Box::new(view))], None)
            }
            ServerMessage::Heartbeat { height, .. } => {
                // Messages arrive in order: everything up to `height` has been sent.
                let channels: Vec<Channel> = self
                    .channels
                    .iter()
                    .filter(|c| !matches!(c, Channel::Book { .. }))
                    .cloned()
                    .collect();
                for channel in channels {
                    self.advance(channel, height);
                }
                (vec![StreamEvent::Heartbeat { height }], None)
            }
            ServerMessage::Error { code, message } => {
                (vec![StreamEvent::Error { code, message }], None)
            }
            ServerMessage::Subscribed { .. }
            | ServerMessage::Unsubscribed { .. }
            | ServerMessage::Pong { .. } => (Vec::new(), None),
        }
    }

    /// Remember a fill; false if it was delivered before.
    fn remember_fill(&mut self, key: (u64, u32, u64)) -> bool {
        if !self.seen_fills.insert(key) {
            return false;
        }
        self.seen_order.push_back(key);
        while self.seen_order.len() > SEEN_FILLS {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen_fills.remove(&old);
            }
        }
        true
    }
}

/// Nobody reads the events any more.
struct Stop;

async fn send(socket: &mut Socket, message: &ClientMessage) -> Result<(), String> {
    let text = serde_json::to_string(message).expect("bug: client messages serialize");
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|e| e.to_string())
}
