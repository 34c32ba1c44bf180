//! WebSocket subscriptions at `/v1/ws`.
//!
//! One task per connection. It subscribes to the hub's feed broadcast as soon as the
//! connection opens and tracks the last block height it has passed on (`last_height`):
//! - **book**: a snapshot with its sequence number, then one diff per block that changed
//!   the market, each with `seq` one above the previous and the checksum of the top of the
//!   book. A client that sees a jump asks `resync` and gets the missing diffs from the
//!   hub's ring, or a fresh snapshot if they are gone.
//! - **trades, orders, fills, blocks**: one message per block with data for the channel.
//!   `since_height` on subscribe replays the retained blocks after it, so a client that
//!   reconnects and resubscribes with the last height it processed misses nothing.
//! - a heartbeat every interval with the chain's height, so silence means a dead link.
//!
//! Bounds: inbound message size, inbound message rate, subscriptions per connection, and a
//! send timeout (a client that does not read is disconnected rather than buffered for). A
//! connection that falls behind the broadcast catches up from the retained feeds, or is
//! told `lagged` and closed if they are gone.

use crate::http::Shared;
use crate::index::{BlockFeed, ChainIndex};
use crate::limit::{Quota, RateLimiter};
use crate::wire::{BookView, Channel, ClientMessage, ServerMessage};
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use dex_types::{AccountId, MarketId};
use futures::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// Settings of WebSocket connections.
#[derive(Clone, Debug)]
pub struct WsConfig {
    /// Interval between heartbeats.
    pub heartbeat: Duration,
    /// How long one send may take before the client is dropped as too slow.
    pub send_timeout: Duration,
    /// Most subscriptions on one connection.
    pub max_subscriptions: usize,
    /// Largest inbound message, in bytes.
    pub max_message_bytes: usize,
    /// Inbound messages per connection.
    pub inbound: Quota,
    /// Most levels per side in a book snapshot.
    pub snapshot_levels: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            heartbeat: Duration::from_secs(5),
            send_timeout: Duration::from_secs(5),
            max_subscriptions: 64,
            max_message_bytes: 16 * 1024,
            inbound: Quota {
                per_second: 20,
                burst: 50,
            },
            snapshot_levels: 5_000,
        }
    }
}

/// The upgrade handler of `/v1/ws`.
pub(crate) async fn upgrade(State(state): State<Shared>, ws: WebSocketUpgrade) -> Response {
    let max = state.config.ws.max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            state.metrics.ws_connections.fetch_add(1, Ordering::Relaxed);
            Connection::new(state.clone()).run(socket).await;
            state.metrics.ws_connections.fetch_sub(1, Ordering::Relaxed);
        })
}

/// One subscription's state.
#[derive(Clone, Copy, Debug)]
enum Sub {
    Book { market: MarketId, seq: u64 },
    Trades(u32),
    Orders(AccountId),
    Fills(AccountId),
    Blocks,
}

struct Connection {
    state: Shared,
    subs: BTreeMap<Channel, Sub>,
    last_height: u64,
    inbound: RateLimiter<()>,
    closing: bool,
}

fn error(code: &str, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        code: code.to_string(),
        message: message.into(),
    }
}

impl Connection {
    fn new(state: Shared) -> Connection {
        let quota = state.config.ws.inbound;
        Connection {
            state,
            subs: BTreeMap::new(),
            last_height: 0,
            inbound: RateLimiter::new(quota, 1),
            closing: false,
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let state = self.state.clone();
        let hub = state.backend.hub();
        let mut feeds = hub.subscribe();
        self.last_height = hub.read().height();
        let period = self
            .state
            .config
            .ws
            .heartbeat
            .max(Duration::from_millis(10));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let send_timeout = self.state.config.ws.send_timeout;
        let mut shutdown = self.state.shutdown.clone();
        while !self.closing && !*shutdown.borrow() {
            let outgoing = tokio::select! {
                _ = shutdown.changed() => break,
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => self.on_client(text.as_str()),
                    Some(Ok(Message::Binary(_))) => {
                        vec![error("bad_message", "messages are JSON text")]
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Vec::new(),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                },
                feed = feeds.recv() => match feed {
                    Ok(feed) => self.on_feed(feed),
                    Err(RecvError::Lagged(_)) => self.catch_up(),
                    Err(RecvError::Closed) => break,
                },
                _ = heartbeat.tick() => {
                    let time = hub.read().time();
                    vec![ServerMessage::Heartbeat { height: self.last_height, time_ms: time.0 }]
                }
            };
            for message in outgoing {
                let text = serde_json::to_string(&message).expect("bug: server messages serialize");
                match tokio::time::timeout(send_timeout, sink.send(Message::Text(text.into())))
                    .await
                {
                    Ok(Ok(())) => {
                        self.state
                            .metrics
                            .ws_messages
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    // A send error is a closed socket; a timeout a client that does not read.
                    Ok(Err(_)) | Err(_) => return,
                }
            }
        }
        let _ = tokio::time::timeout(send_timeout, sink.send(Message::Close(None))).await;
    }

    // ------------------------------------------------------------ client messages

    fn on_client(&mut self, text: &str) -> Vec<ServerMessage> {
        if self.inbound.check(&(), Instant::now()).is_err() {
            self.closing = true;
            return vec![error(
                "rate_limited",
                "too many messages on this connection",
            )];
        }
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(e) => return vec![error("bad_message", e.to_string())],
        };
        match message {
            ClientMessage::Subscribe {
                channel,
                since_height,
            } => self.subscribe(channel, since_height),
            ClientMessage::Unsubscribe { channel } => {
                let channel = match self.resolve(channel) {
                    Ok((channel, _)) => channel,
                    Err(e) => return vec![*e],
                };
                match self.subs.remove(&channel) {
                    Some(_) => vec![ServerMessage::Unsubscribed { channel }],
                    None => vec![error("not_subscribed", "no such subscription")],
                }
            }
            ClientMessage::Resync { market, from_seq } => self.resync(market, Some(from_seq)),
            ClientMessage::Snapshot { market } => self.resync(market, None),
            ClientMessage::Ping { nonce } => vec![ServerMessage::Pong { nonce }],
        }
    }

    /// Check a channel and put it in canonical form (lower-case account hex).
    fn resolve(&self, channel: Channel) -> Result<(Channel, Sub), Box<ServerMessage>> {
        let chain = self.state.backend.hub().chain();
        let market = |id: u32| {
            chain
                .market(MarketId(id))
                .map(|_| MarketId(id))
                .ok_or_else(|| {
                    Box::new(error(
                        "unknown_market",
                        format!("market {id} is not listed"),
                    ))
                })
        };
        let account = |text: &str| {
            AccountId::from_hex(text)
                .map_err(|e| Box::new(error("bad_account", format!("account: {e}"))))
        };
        Ok(match channel {
            Channel::Book { market: id } => (
                channel,
                Sub::Book {
                    market: market(id)?,
                    seq: 0,
                },
            ),
            Channel::Trades { market: id } => {
                market(id)?;
                (channel, Sub::Trades(id))
            }
            Channel::Orders { account: text } => {
                let id = account(&text)?;
                (
                    Channel::Orders {
                        account: id.to_hex(),
                    },
                    Sub::Orders(id),
                )
            }
            Channel::Fills { account: text } => {
                let id = account(&text)?;
                (
                    Channel::Fills {
                        account: id.to_hex(),
                    },
                    Sub::Fills(id),
                )
            }
            Channel::Blocks => (channel, Sub::Blocks),
        })
    }

    fn subscribe(&mut self, channel: Channel, since: Option<u64>) -> Vec<ServerMessage> {
        let (channel, mut sub) = match self.resolve(channel) {
            Ok(resolved) => resolved,
            Err(e) => return vec![*e],
        };
        if !self.subs.contains_key(&channel)
            && self.subs.len() >= self.state.config.ws.max_subscriptions
        {
            return vec![error(
                "too_many_subscriptions",
                format!(
                    "at most {} subscriptions per connection",
                    self.state.config.ws.max_subscriptions
                ),
            )];
        }
        let mut out = vec![ServerMessage::Subscribed {
            channel: channel.clone(),
            height: self.last_height,
        }];
        let levels = self.state.config.ws.snapshot_levels;
        let index = self.state.backend.hub().read();
        if let Sub::Book { market, seq } = &mut sub {
            if let Some(snapshot) = index.book(*market, self.state.config.ws.snapshot_levels) {
                *seq = snapshot.seq;
                out.push(ServerMessage::BookSnapshot(snapshot));
            }
        } else if let Some(since) = since {
            match index.feeds_after(since) {
                Ok(feeds) => {
                    for feed in feeds.iter().filter(|f| f.height() <= self.last_height) {
                        messages_for(&mut sub, feed, &index, levels, &mut out);
                    }
                }
                Err(oldest) => out.push(error(
                    "replay_unavailable",
                    format!(
                        "blocks after {since} are no longer retained (the oldest is {oldest}); read the current state over HTTP"
                    ),
                )),
            }
        }
        drop(index);
        self.subs.insert(channel, sub);
        out
    }

    /// Send the diffs of `market` from `from_seq`, or a snapshot if they are gone or no
    /// sequence was given.
    fn resync(&mut self, market: u32, from_seq: Option<u64>) -> Vec<ServerMessage> {
        let Some(Sub::Book { seq, .. }) = self.subs.get_mut(&Channel::Book { market }) else {
            return vec![error(
                "not_subscribed",
                format!("not subscribed to book {market}"),
            )];
        };
        let index = self.state.backend.hub().read();
        let market_id = MarketId(market);
        if let Some(from) = from_seq
            && let Some(diffs) = index.book_diffs_from(market_id, from)
            && !diffs.is_empty()
        {
            *seq = diffs.last().map_or(*seq, |d| d.seq);
            return diffs
                .iter()
                .map(|d| ServerMessage::BookDiff(BookView::clone(d)))
                .collect();
        }
        match index.book(market_id, self.state.config.ws.snapshot_levels) {
            Some(snapshot) => {
                *seq = snapshot.seq;
                vec![ServerMessage::BookSnapshot(snapshot)]
            }
            None => vec![error(
                "unknown_market",
                format!("market {market} is not listed"),
            )],
        }
    }

    // ------------------------------------------------------------ feeds

    fn on_feed(&mut self, feed: Arc<BlockFeed>) -> Vec<ServerMessage> {
        if feed.height() <= self.last_height {
            return Vec::new();
        }
        if feed.height() > self.last_height + 1 {
            return self.catch_up();
        }
        let levels = self.state.config.ws.snapshot_levels;
        let index = self.state.backend.hub().read();
        let mut out = Vec::new();
        for sub in self.subs.values_mut() {
            messages_for(sub, &feed, &index, levels, &mut out);
        }
        self.last_height = feed.height();
        out
    }

    /// Pass on every retained feed after `last_height`; close if some are gone.
    fn catch_up(&mut self) -> Vec<ServerMessage> {
        let levels = self.state.config.ws.snapshot_levels;
        let index = self.state.backend.hub().read();
        match index.feeds_after(self.last_height) {
            Ok(feeds) => {
                let mut out = Vec::new();
                for feed in feeds {
                    for sub in self.subs.values_mut() {
                        messages_for(sub, &feed, &index, levels, &mut out);
                    }
                    self.last_height = feed.height();
                }
                out
            }
            Err(oldest) => {
                self.closing = true;
                vec![error(
                    "lagged",
                    format!(
                        "the connection fell behind past the retained blocks (oldest {oldest}); reconnect and resubscribe"
                    ),
                )]
            }
        }
    }
}

/// What one feed means to one subscription.
fn messages_for(
    sub: &mut Sub,
    feed: &BlockFeed,
    index: &ChainIndex,
    snapshot_levels: usize,
    out: &mut Vec<ServerMessage>,
) {
    match sub {
        Sub::Book { market, seq } => {
            let Some(diff) = feed.books.iter().find(|d| d.market == market.0) else {
                return;
            };
            if diff.seq <= *seq {
                return;
            }
            if diff.seq == *seq + 1 {
                *seq = diff.seq;
                out.push(ServerMessage::BookDiff(BookView::clone(diff)));
                return;
            }
            // Diffs were skipped for this connection: fill them in from the ring.
            match index.book_diffs_from(*market, *seq + 1) {
                Some(diffs) if !diffs.is_empty() => {
                    for d in diffs {
                        *seq = d.seq;
                        out.push(ServerMessage::BookDiff(BookView::clone(&d)));
                    }
                }
                _ => {
                    if let Some(snapshot) = index.book(*market, snapshot_levels) {
                        *seq = snapshot.seq;
                        out.push(ServerMessage::BookSnapshot(snapshot));
                    }
                }
            }
        }
        Sub::Trades(market) => {
            if let Some(trades) = feed.trades.get(market) {
                out.push(ServerMessage::Trades {
                    market: *market,
                    height: feed.height(),
                    trades: trades.clone(),
                });
            }
        }
        Sub::Orders(account) => {
            if let Some(orders) = feed.orders.get(account) {
                out.push(ServerMessage::Orders {
                    account: account.to_hex(),
                    height: feed.height(),
                    orders: orders.clone(),
                });
            }
        }
        Sub::Fills(account) => {
            if let Some(fills) = feed.fills.get(account) {
                out.push(ServerMessage::Fills {
                    account: account.to_hex(),
                    height: feed.height(),
                    fills: fills.clone(),
                });
            }
        }
        Sub::Blocks => out.push(ServerMessage::Block(feed.view.clone())),
    }
}
