//! The API's read model, derived from committed blocks alone: a mirror of every market's
//! book with per-market sequence numbers and checksums, an order-status index with a
//! retention window, recent fills per account, recent trades per market, transaction
//! outcomes, and the last blocks' feeds for replay.
//!
//! [`ChainIndex::apply`] turns one [`CommittedBlock`] into a [`BlockFeed`] (what the
//! WebSocket streams send) while updating every index. It reads only the block's
//! [`BlockResult`](dex_state::BlockResult): events in execution order say which orders were
//! accepted, rested, filled, reduced, replaced, cancelled or expired, so the book mirror
//! follows the ledger's books exactly without touching the ledger (a test checks the mirror
//! against the ledger's depth after every block).
//!
//! Every collection is bounded by [`HubConfig`]: terminal orders, transactions and feeds
//! by a retention window in blocks and a count cap; fills per account and accounts tracked;
//! trades per market; book diffs per market.

use crate::backend::{ChainInfo, CommittedBlock};
use crate::checksum::book_checksum;
use crate::convert;
use crate::error::rejection_code;
use crate::wire::{
    BlockView, BookView, FillView, LegRejectionView, LevelOrderView, LevelOrdersView, LevelView,
    Liquidity, OrderState, OrderStatusView, SideView, TradeView, TxOutcomeView,
};
use dex_state::{CancelCause, CommittedItem, FeePaid, Fill, Ledger, LedgerEvent, Rejection};
use dex_types::{
    AccountId, Action, BatchLeg, BlockHeader, ClientOrderId, Hash, Market, MarketId, OrderId,
    OrderRequest, PriceTicks, Side, SignedTransaction, SizeLots, TimestampMs,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// One level in ticks and lots: price, total size, order count.
pub type LevelTicks = (PriceTicks, SizeLots, u32);

/// Bounds of the read model.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Feeds (and blocks) kept for replay, block lookups and proofs.
    pub retained_blocks: usize,
    /// Blocks a finished order (filled, cancelled, expired, rejected) stays queryable.
    pub order_retention_blocks: u64,
    /// Most finished orders kept, whatever their age.
    pub retained_orders: usize,
    /// Most transaction outcomes kept.
    pub retained_txs: usize,
    /// Recent fills kept per account.
    pub fills_per_account: usize,
    /// Most accounts whose fills are kept (the least recently filled are dropped first).
    pub fill_accounts: usize,
    /// Recent trades kept per market.
    pub trades_per_market: usize,
    /// Book diffs kept per market for gap fills.
    pub diffs_per_market: usize,
    /// Capacity of the subscription channel, in blocks; a subscriber further behind
    /// catches up from the retained feeds.
    pub broadcast_capacity: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            retained_blocks: 1_024,
            order_retention_blocks: 100_000,
            retained_orders: 200_000,
            retained_txs: 200_000,
            fills_per_account: 1_000,
            fill_accounts: 100_000,
            trades_per_market: 1_000,
            diffs_per_market: 1_024,
            broadcast_capacity: 256,
        }
    }
}

/// What one committed block means to subscribers, derived once and shared by every
/// connection.
#[derive(Clone, Debug)]
pub struct BlockFeed {
    /// The block.
    pub block: Arc<CommittedBlock>,
    /// The block's view (header, certificate, outcomes).
    pub view: BlockView,
    /// One diff per market whose book changed.
    pub books: Vec<Arc<BookView>>,
    /// Trades per market.
    pub trades: BTreeMap<u32, Vec<TradeView>>,
    /// Fills per account.
    pub fills: BTreeMap<AccountId, Vec<FillView>>,
    /// Order updates per account (each order once, as it stood after the block).
    pub orders: BTreeMap<AccountId, Vec<OrderStatusView>>,
}

impl BlockFeed {
    /// The block's height.
    pub fn height(&self) -> u64 {
        self.block.height()
    }
}

/// Why a block could not be indexed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Blocks must be published in height order with no gap.
    #[error("expected block {expected}, got block {got}")]
    OutOfOrder {
        /// The next height the index expects.
        expected: u64,
        /// The height given.
        got: u64,
    },
}

#[derive(Clone, Debug)]
struct RestingOrder {
    account: AccountId,
    side: Side,
    price: PriceTicks,
    remaining: SizeLots,
    priority: u64,
}

#[derive(Clone, Debug, Default)]
struct Level {
    size: u64,
    queue: BTreeMap<u64, OrderId>,
}

/// A mirror of one market's book, kept from ledger events.
#[derive(Clone, Debug)]
struct MarketBook {
    market: Market,
    resting: BTreeMap<OrderId, RestingOrder>,
    /// Orders being matched in this block (accepted, or replaced with loss of priority):
    /// they rest only if an `OrderRested` follows.
    incoming: BTreeMap<OrderId, (AccountId, Side, PriceTicks)>,
    bids: BTreeMap<PriceTicks, Level>,
    asks: BTreeMap<PriceTicks, Level>,
    next_priority: u64,
    seq: u64,
    /// Levels changed in this block, with repeats; sorted and deduplicated when the block
    /// closes (cheaper than a set insert per event).
    changed: Vec<(Side, PriceTicks)>,
    diffs: VecDeque<Arc<BookView>>,
}

impl MarketBook {
    fn new(market: Market) -> MarketBook {
        MarketBook {
            market,
            resting: BTreeMap::new(),
            incoming: BTreeMap::new(),
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            next_priority: 0,
            seq: 0,
            changed: Vec::new(),
            diffs: VecDeque::new(),
        }
    }

    fn ladder(&mut self, side: Side) -> &mut BTreeMap<PriceTicks, Level> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn rest(
        &mut self,
        id: OrderId,
        account: AccountId,
        side: Side,
        price: PriceTicks,
        remaining: SizeLots,
    ) {
        if remaining.is_zero() {
            return;
        }
        let priority = self.next_priority;
        self.next_priority += 1;
        let level = self.ladder(side).entry(price).or_default();
        level.size = level.size.saturating_add(remaining.0);
        level.queue.insert(priority, id);
        self.changed.push((side, price));
        self.resting.insert(
            id,
            RestingOrder {
                account,
                side,
                price,
                remaining,
                priority,
            },
        );
    }

    fn remove(&mut self, id: OrderId) -> Option<RestingOrder> {
        let order = self.resting.remove(&id)?;
        let ladder = self.ladder(order.side);
        if let Some(level) = ladder.get_mut(&order.price) {
            level.size = level.size.saturating_sub(order.remaining.0);
            level.queue.remove(&order.priority);
            if level.queue.is_empty() {
                ladder.remove(&order.price);
            }
        }
        self.changed.push((order.side, order.price));
        Some(order)
    }

    /// Set a resting order's open size in place (keeping its priority); zero removes it.
    fn set_remaining(&mut self, id: OrderId, remaining: SizeLots) {
        if remaining.is_zero() {
            self.remove(id);
            return;
        }
        let Some(order) = self.resting.get_mut(&id) else {
            return;
        };
        let (side, price, old) = (order.side, order.price, order.remaining);
        order.remaining = remaining;
        if let Some(level) = self.ladder(side).get_mut(&price) {
            level.size = level.size.saturating_sub(old.0).saturating_add(remaining.0);
        }
        self.changed.push((side, price));
    }

    fn levels(&self, side: Side) -> Box<dyn Iterator<Item = (PriceTicks, &Level)> + '_> {
        match side {
            Side::Buy => Box::new(self.bids.iter().rev().map(|(p, l)| (*p, l))),
            Side::Sell => Box::new(self.asks.iter().map(|(p, l)| (*p, l))),
        }
    }

    fn checksum(&self) -> String {
        book_checksum(
            self.levels(Side::Buy).map(|(p, l)| (p, SizeLots(l.size))),
            self.levels(Side::Sell).map(|(p, l)| (p, SizeLots(l.size))),
        )
    }

    fn level_view(&self, price: PriceTicks, level: Option<&Level>) -> LevelView {
        LevelView {
            price: convert::price(&self.market, price),
            size: convert::size(&self.market, SizeLots(level.map_or(0, |l| l.size))),
            orders: level.map_or(0, |l| l.queue.len() as u32),
        }
    }

    fn snapshot(&self, height: u64, depth: usize) -> BookView {
        let side = |side| {
            self.levels(side)
                .take(depth)
                .map(|(p, l)| self.level_view(p, Some(l)))
                .collect()
        };
        BookView {
            market: self.market.id().0,
            seq: self.seq,
            height,
            bids: side(Side::Buy),
            asks: side(Side::Sell),
            checksum: self.checksum(),
        }
    }

    /// Close the block: anything still incoming did not rest; a diff if levels changed.
    fn finish_block(&mut self, height: u64, keep: usize) -> Option<Arc<BookView>> {
        self.incoming.clear();
        if self.changed.is_empty() {
            return None;
        }
        self.seq += 1;
        // Taken and put back so the buffer's capacity serves the next block.
        let mut changed = std::mem::take(&mut self.changed);
        changed.sort_unstable();
        changed.dedup();
        let mut bids = Vec::new();
        let mut asks = Vec::new();
        // Bids best (highest) first, asks best (lowest) first, like a snapshot.
        for &(side, price) in changed.iter().rev() {
            if side == Side::Buy {
                bids.push(self.level_view(price, self.bids.get(&price)));
            }
        }
        for &(side, price) in &changed {
            if side == Side::Sell {
                asks.push(self.level_view(price, self.asks.get(&price)));
            }
        }
        changed.clear();
        self.changed = changed;
        let diff = Arc::new(BookView {
            market: self.market.id().0,
            seq: self.seq,
            height,
            bids,
            asks,
            checksum: self.checksum(),
        });
        self.diffs.push_back(diff.clone());
        while self.diffs.len() > keep {
            self.diffs.pop_front();
        }
        Some(diff)
    }
}

/// What the index knows of one order.
#[derive(Clone, Debug)]
struct OrderRecord {
    order_id: Option<OrderId>,
    client_order_id: Option<ClientOrderId>,
    account: AccountId,
    market: MarketId,
    side: Side,
    price: PriceTicks,
    size: SizeLots,
    remaining: SizeLots,
    filled: SizeLots,
    state: OrderState,
    reason: Option<String>,
    tx_hash: Hash,
    created_height: u64,
    updated_height: u64,
}

fn cause_name(cause: CancelCause) -> &'static str {
    match cause {
        CancelCause::User => "user",
        CancelCause::SelfTrade => "self_trade",
        CancelCause::ImmediateRemainder => "immediate_remainder",
        CancelCause::FillOrKill => "fill_or_kill",
        CancelCause::DeadManSwitch => "dead_man_switch",
    }
}

/// The read model. See the module docs.
#[derive(Debug)]
pub struct ChainIndex {
    chain: Arc<ChainInfo>,
    config: HubConfig,
    height: u64,
    time: TimestampMs,
    head: Option<BlockHeader>,
    books: BTreeMap<MarketId, MarketBook>,
    // The maps below that are looked up by key only, never iterated, are hash maps (a
    // lookup per event in blocks of thousands of orders; no order can leak into any
    // output).
    records: HashMap<u64, OrderRecord>,
    next_record: u64,
    by_order: HashMap<OrderId, u64>,
    by_client: HashMap<(AccountId, ClientOrderId), u64>,
    /// Each account's open orders in id order (the set is iterated, the map is not).
    open_by_account: HashMap<AccountId, BTreeSet<OrderId>>,
    finished: VecDeque<(u64, u64)>,
    txs: HashMap<Hash, TxSlot>,
    tx_order: VecDeque<(u64, Hash)>,
    /// Looked up by account only; `fill_recency` orders the accounts for eviction.
    fills: HashMap<AccountId, VecDeque<FillView>>,
    fill_recency: BTreeSet<(u64, AccountId)>,
    trades: BTreeMap<MarketId, VecDeque<TradeView>>,
    feeds: VecDeque<Arc<BlockFeed>>,
    /// Per-block scratch buffers, kept for their capacity.
    scratch: Scratch,
}

/// Where a retained transaction outcome lives.
#[derive(Debug)]
enum TxSlot {
    /// In the retained feed of this height, at this index of its view's outcomes: under
    /// load the count cap drops outcomes before their block's feed, so most are never
    /// copied out of the feed.
    InFeed { height: u64, index: usize },
    /// Copied out when its feed was dropped.
    Owned(TxOutcomeView),
}

/// Buffers [`ChainIndex::apply`] fills and empties in every block.
#[derive(Debug, Default)]
struct Scratch {
    /// Which transaction each event belongs to (None: start of block).
    event_tx: Vec<Option<usize>>,
    /// Records touched by the block, with repeats until sorted and deduplicated.
    touched: Vec<u64>,
    /// (transaction, record) pairs, with repeats until sorted and deduplicated.
    tx_touched: Vec<(usize, u64)>,
}

impl ChainIndex {
    /// The index of a chain whose committed state is `ledger` (its open orders seed the
    /// book mirrors and the order index).
    pub fn new(chain: Arc<ChainInfo>, ledger: &Ledger, config: HubConfig) -> ChainIndex {
        let mut books: BTreeMap<MarketId, MarketBook> = chain
            .markets
            .iter()
            .map(|m| (m.id(), MarketBook::new(m.clone())))
            .collect();
        // The large maps are sized for their retention bounds up front (plus room for a
        // block past the bound and for open orders): growing one means rehashing every
        // entry at once, and every validator's index reaches the same size at the same
        // height, so the four rehash together. Measured: 150-420 ms stalls of the read model
        // near 115 k and 230 k entries, which held up commits behind them. Untouched
        // capacity costs address space, not memory.
        // Up front only up to a bound: a configuration asking to retain more grows past it
        // as before rather than reserve without limit.
        const PRESIZE_MAX: usize = 1 << 20;
        let orders = config
            .retained_orders
            .saturating_add(config.retained_orders / 4)
            .min(PRESIZE_MAX);
        let txs = config
            .retained_txs
            .saturating_add(config.retained_txs / 8)
            .min(PRESIZE_MAX);
        let mut index = ChainIndex {
            config,
            height: ledger.height(),
            time: ledger.last_block_time(),
            head: None,
            books: BTreeMap::new(),
            records: HashMap::with_capacity(orders),
            next_record: 0,
            by_order: HashMap::with_capacity(orders),
            by_client: HashMap::with_capacity(orders),
            open_by_account: HashMap::new(),
            finished: VecDeque::with_capacity(orders),
            txs: HashMap::with_capacity(txs),
            tx_order: VecDeque::with_capacity(txs),
            fills: HashMap::new(),
            fill_recency: BTreeSet::new(),
            trades: BTreeMap::new(),
            feeds: VecDeque::new(),
            scratch: Scratch::default(),
            chain,
        };
        let mut open = ledger.open_orders();
        // Rest in time priority so each level's queue matches the ledger's.
        open.sort_by_key(|o| o.priority);
        for order in open {
            let account = ledger
                .account_by_index(order.owner)
                .expect("bug: open order of an unknown account")
                .id;
            if let Some(book) = books.get_mut(&order.market) {
                book.rest(order.id, account, order.side, order.price, order.remaining);
            }
            let key = index.insert_record(OrderRecord {
                order_id: Some(order.id),
                client_order_id: order.client_order_id,
                account,
                market: order.market,
                side: order.side,
                price: order.price,
                size: order.remaining,
                remaining: order.remaining,
                filled: SizeLots::ZERO,
                state: OrderState::Open,
                reason: None,
                tx_hash: Hash::ZERO,
                created_height: 0,
                updated_height: ledger.height(),
            });
            index.by_order.insert(order.id, key);
            index
                .open_by_account
                .entry(account)
                .or_default()
                .insert(order.id);
        }
        for book in books.values_mut() {
            book.changed.clear();
        }
        index.books = books;
        index
    }

    /// The chain's fixed facts.
    pub fn chain(&self) -> &Arc<ChainInfo> {
        &self.chain
    }

    /// Height of the last indexed block.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Block time of the last indexed block.
    pub fn time(&self) -> TimestampMs {
        self.time
    }

    /// Header of the last indexed block, if one was indexed.
    pub fn head(&self) -> Option<&BlockHeader> {
        self.head.as_ref()
    }

    fn insert_record(&mut self, record: OrderRecord) -> u64 {
        let key = self.next_record;
        self.next_record += 1;
        if let Some(cid) = record.client_order_id {
            self.by_client.insert((record.account, cid), key);
        }
        self.records.insert(key, record);
        key
    }

    fn record_view(&self, record: &OrderRecord) -> OrderStatusView {
        let market = self.chain.market(record.market);
        let dec = |lots: SizeLots| market.map_or_else(Default::default, |m| convert::size(m, lots));
        OrderStatusView {
            order_id: record.order_id.map(|id| id.0),
            client_order_id: record.client_order_id.map(|id| id.0),
            account: hex_lower(&record.account.0),
            market: record.market.0,
            side: SideView::from(record.side),
            price: market.map_or_else(Default::default, |m| convert::price(m, record.price)),
            size: dec(record.size),
            remaining: dec(record.remaining),
            filled: dec(record.filled),
            state: record.state,
            reason: record.reason.clone(),
            tx_hash: hex_lower(&record.tx_hash.0),
            created_height: record.created_height,
            updated_height: record.updated_height,
        }
    }

    // ------------------------------------------------------------------ apply

    /// Index one committed block (the next height) and derive its feed.
    pub fn apply(&mut self, block: Arc<CommittedBlock>) -> Result<Arc<BlockFeed>, PublishError> {
        let height = block.height();
        if height != self.height + 1 {
            return Err(PublishError::OutOfOrder {
                expected: self.height + 1,
                got: height,
            });
        }
        let result = &block.result;
        // Execution gives one outcome per transaction, in block order: the i-th outcome
        // is the i-th transaction's (no need to hash every transaction again).
        let txs: &[SignedTransaction] = &block.block.txs;
        let mut scratch = std::mem::take(&mut self.scratch);
        // Which transaction each event belongs to (None: start of block).
        let event_tx = &mut scratch.event_tx;
        event_tx.clear();
        event_tx.resize(result.events.len(), None);
        for (i, outcome) in result.outcomes.iter().enumerate() {
            let range =
                outcome.first_event as usize..(outcome.end_event as usize).min(event_tx.len());
            for slot in &mut event_tx[range] {
                *slot = Some(i);
            }
        }
        let touched = &mut scratch.touched;
        let tx_touched = &mut scratch.tx_touched;
        touched.clear();
        tx_touched.clear();
        // Per-account outputs are collected flat and grouped once (see `group_by_account`).
        let mut fills_flat: Vec<(AccountId, FillView)> = Vec::new();
        let mut trades_out: BTreeMap<u32, Vec<TradeView>> = BTreeMap::new();

        for (e, event) in result.events.iter().enumerate() {
            let tx_hash = event_tx[e].map_or(Hash::ZERO, |i| result.outcomes[i].tx);
            let mut hit = |key: u64, touched: &mut Vec<u64>| {
                touched.push(key);
                if let Some(i) = event_tx[e] {
                    tx_touched.push((i, key));
                }
            };
            match event {
                LedgerEvent::OrderAccepted {
                    order_id,
                    account,
                    market,
                    client_order_id,
                    side,
                    price,
                    size,
                } => {
                    if let Some(book) = self.books.get_mut(market) {
                        book.incoming.insert(*order_id, (*account, *side, *price));
                    }
                    let key = self.insert_record(OrderRecord {
                        order_id: Some(*order_id),
                        client_order_id: *client_order_id,
                        account: *account,
                        market: *market,
                        side: *side,
                        price: *price,
                        size: *size,
                        remaining: *size,
                        filled: SizeLots::ZERO,
                        state: OrderState::Open,
                        reason: None,
                        tx_hash,
                        created_height: height,
                        updated_height: height,
                    });
                    self.by_order.insert(*order_id, key);
                    self.open_by_account
                        .entry(*account)
                        .or_default()
                        .insert(*order_id);
                    hit(key, touched);
                }
                LedgerEvent::OrderRested {
                    order_id,
                    market,
                    remaining,
                } => {
                    if let Some(book) = self.books.get_mut(market) {
                        match book.incoming.remove(order_id) {
                            Some((account, side, price)) => {
                                book.rest(*order_id, account, side, price, *remaining)
                            }
                            None => tracing::error!(
                                order = %order_id,
                                "index: an order rested that was not incoming"
                            ),
                        }
                    }
                    if let Some(key) = self.update(*order_id, height, |r| {
                        r.remaining = *remaining;
                        r.state = OrderState::Open;
                    }) {
                        hit(key, touched);
                    }
                }
                LedgerEvent::Fill { index } => {
                    let Some(CommittedItem::Fill(fill)) = result.committed.get(*index as usize)
                    else {
                        tracing::error!(index, "index: fill event without a committed fill");
                        continue;
                    };
                    if let Some(book) = self.books.get_mut(&fill.market) {
                        book.set_remaining(fill.maker_order_id, fill.maker_remaining);
                    }
                    for (order, remaining) in [
                        (fill.maker_order_id, fill.maker_remaining),
                        (fill.taker_order_id, fill.taker_remaining),
                    ] {
                        if let Some(key) = self.update(order, height, |r| {
                            r.filled = r.filled.checked_add(fill.size).unwrap_or(r.filled);
                            r.remaining = remaining;
                            if remaining.is_zero() {
                                r.state = OrderState::Filled;
                            }
                        }) {
                            hit(key, touched);
                        }
                    }
                    if let Some(market) = self.chain.market(fill.market) {
                        trades_out
                            .entry(fill.market.0)
                            .or_default()
                            .push(convert::trade(market, fill, *index));
                        for (account, view) in fill_views(market, &self.chain, fill, *index) {
                            fills_flat.push((account, view));
                        }
                    }
                }
                LedgerEvent::OrderCancelled {
                    order_id,
                    market,
                    cause,
                    ..
                } => {
                    if let Some(book) = self.books.get_mut(market) {
                        book.incoming.remove(order_id);
                        book.remove(*order_id);
                    }
                    if let Some(key) = self.update(*order_id, height, |r| {
                        r.remaining = SizeLots::ZERO;
                        r.state = OrderState::Cancelled;
                        r.reason = Some(cause_name(*cause).to_string());
                    }) {
                        hit(key, touched);
                    }
                }
                LedgerEvent::OrderExpired {
                    order_id, market, ..
                } => {
                    if let Some(book) = self.books.get_mut(market) {
                        book.remove(*order_id);
                    }
                    if let Some(key) = self.update(*order_id, height, |r| {
                        r.remaining = SizeLots::ZERO;
                        r.state = OrderState::Expired;
                    }) {
                        hit(key, touched);
                    }
                }
                LedgerEvent::OrderReduced {
                    order_id,
                    market,
                    remaining,
                } => {
                    if let Some(book) = self.books.get_mut(market)
                        && book.resting.contains_key(order_id)
                    {
                        book.set_remaining(*order_id, *remaining);
                    }
                    if let Some(key) = self.update(*order_id, height, |r| {
                        r.remaining = *remaining;
                        r.size = r.filled.checked_add(*remaining).unwrap_or(r.size);
                    }) {
                        hit(key, touched);
                    }
                }
                LedgerEvent::OrderReplaced {
                    order_id,
                    market,
                    price,
                    size,
                    priority_kept,
                } => {
                    if let Some(book) = self.books.get_mut(market) {
                        if *priority_kept {
                            book.set_remaining(*order_id, *size);
                        } else if let Some(old) = book.remove(*order_id) {
                            book.incoming
                                .insert(*order_id, (old.account, old.side, *price));
                        }
                    }
                    if let Some(key) = self.update(*order_id, height, |r| {
                        r.price = *price;
                        r.remaining = *size;
                        r.size = r.filled.checked_add(*size).unwrap_or(r.size);
                    }) {
                        hit(key, touched);
                    }
                }
                LedgerEvent::Transferred { .. }
                | LedgerEvent::Withdrawn { .. }
                | LedgerEvent::AgentApproved { .. }
                | LedgerEvent::AgentRevoked { .. }
                | LedgerEvent::CancelAllScheduled { .. }
                | LedgerEvent::DeadManSwitchFired { .. } => {}
            }
        }

        // Placements the ledger refused never got an order id: record them by client id.
        for (i, outcome) in result.outcomes.iter().enumerate() {
            let Some(signed) = txs.get(i) else {
                continue;
            };
            let Action::Batch(batch) = &signed.tx.action else {
                continue;
            };
            let mut refused: Vec<(usize, &Rejection)> = Vec::new();
            match &outcome.result {
                Err(rejection) => {
                    refused.extend((0..batch.legs.len()).map(|leg| (leg, rejection)));
                }
                Ok(()) => refused.extend(
                    outcome
                        .leg_rejections
                        .iter()
                        .map(|(leg, rejection)| (usize::from(*leg), rejection)),
                ),
            }
            for (leg, rejection) in refused {
                let Some(BatchLeg::Place(request)) = batch.legs.get(leg) else {
                    continue;
                };
                let key = self.insert_rejected(signed, request, rejection, outcome.tx, height);
                touched.push(key);
                tx_touched.push((i, key));
            }
        }

        // Close the block: records that left the book, book diffs.
        // Each touched order's view, made once: the account feed and the transaction
        // outcomes both carry it. `views[i]` is the view of `touched[i]`, in key order.
        touched.sort_unstable();
        touched.dedup();
        tx_touched.sort_unstable();
        tx_touched.dedup();
        let mut views: Vec<OrderStatusView> = Vec::with_capacity(touched.len());
        for key in touched.iter() {
            let record = &self.records[key];
            if record.state != OrderState::Open {
                if let Some(id) = record.order_id
                    && let Some(set) = self.open_by_account.get_mut(&record.account)
                {
                    set.remove(&id);
                    if set.is_empty() {
                        self.open_by_account.remove(&record.account);
                    }
                }
                self.finished.push_back((height, *key));
            }
            views.push(self.record_view(record));
        }
        let keep = self.config.diffs_per_market;
        let books: Vec<Arc<BookView>> = self
            .books
            .values_mut()
            .filter_map(|book| book.finish_block(height, keep))
            .collect();

        // `tx_touched` is sorted by transaction: each outcome's records are the next run.
        let mut runs = tx_touched.as_slice();
        let outcomes: Vec<TxOutcomeView> = result
            .outcomes
            .iter()
            .enumerate()
            .map(|(i, outcome)| {
                let end = runs.iter().take_while(|(tx, _)| *tx == i).count();
                let (run, rest) = runs.split_at(end);
                runs = rest;
                let (ok, code, message) = match &outcome.result {
                    Ok(()) => (true, None, None),
                    Err(r) => (
                        false,
                        Some(rejection_code(r).to_string()),
                        Some(r.to_string()),
                    ),
                };
                TxOutcomeView {
                    tx_hash: hex_lower(&outcome.tx.0),
                    height,
                    ok,
                    code,
                    message,
                    leg_rejections: outcome
                        .leg_rejections
                        .iter()
                        .map(|(leg, r)| LegRejectionView {
                            leg: *leg,
                            code: rejection_code(r).to_string(),
                            message: r.to_string(),
                        })
                        .collect(),
                    orders: run
                        .iter()
                        .map(|(_, key)| match touched.binary_search(key) {
                            Ok(at) => views[at].clone(),
                            Err(_) => self.record_view(&self.records[key]),
                        })
                        .collect(),
                }
            })
            .collect();
        // The account feed is the views' last reader: it takes them, in key order.
        let orders_out = group_by_account(
            touched
                .iter()
                .zip(views)
                .map(|(key, view)| (self.records[key].account, view))
                .collect(),
        );
        let fills_out = group_by_account(fills_flat);
        for (index, outcome) in result.outcomes.iter().enumerate() {
            self.txs
                .insert(outcome.tx, TxSlot::InFeed { height, index });
            self.tx_order.push_back((height, outcome.tx));
        }
        for (account, views) in &fills_out {
            self.remember_fills(*account, views, height);
        }
        for (market, views) in &trades_out {
            let deque = self.trades.entry(MarketId(*market)).or_default();
            deque.extend(views.iter().cloned());
            while deque.len() > self.config.trades_per_market {
                deque.pop_front();
            }
        }

        let view = BlockView {
            header: convert::header(&block.block.header),
            certificate: block.certificate.as_deref().map(hex_lower),
            txs: outcomes,
            committed_items: result.committed.len() as u32,
            tx_hashes: None,
        };
        self.height = height;
        self.time = block.block.header.time;
        self.head = Some(block.block.header);
        let feed = Arc::new(BlockFeed {
            block,
            view,
            books,
            trades: trades_out,
            fills: fills_out,
            orders: orders_out,
        });
        self.feeds.push_back(feed.clone());
        self.scratch = scratch;
        self.evict(height);
        Ok(feed)
    }

    /// Apply `change` to the record of order `id`, if indexed; its key.
    fn update(
        &mut self,
        id: OrderId,
        height: u64,
        change: impl FnOnce(&mut OrderRecord),
    ) -> Option<u64> {
        let key = *self.by_order.get(&id)?;
        let record = self.records.get_mut(&key)?;
        change(record);
        record.updated_height = height;
        Some(key)
    }

    fn insert_rejected(
        &mut self,
        signed: &SignedTransaction,
        request: &OrderRequest,
        rejection: &Rejection,
        tx_hash: Hash,
        height: u64,
    ) -> u64 {
        // An open order keeps its client id: a rejected duplicate must not hide it.
        let shadowed = request.client_order_id.and_then(|cid| {
            let key = *self.by_client.get(&(signed.tx.account, cid))?;
            (self.records.get(&key)?.state == OrderState::Open).then_some(key)
        });
        let key = self.insert_record(OrderRecord {
            order_id: None,
            client_order_id: request.client_order_id,
            account: signed.tx.account,
            market: request.market,
            side: request.side,
            price: request.price_ticks,
            size: request.size_lots,
            remaining: SizeLots::ZERO,
            filled: SizeLots::ZERO,
            state: OrderState::Rejected,
            reason: Some(rejection_code(rejection).to_string()),
            tx_hash,
            created_height: height,
            updated_height: height,
        });
        if let (Some(open), Some(cid)) = (shadowed, request.client_order_id) {
            self.by_client.insert((signed.tx.account, cid), open);
        }
        key
    }

    fn remember_fills(&mut self, account: AccountId, views: &[FillView], height: u64) {
        let deque = self.fills.entry(account).or_default();
        let previous = deque.back().map(|f| f.height);
        deque.extend(views.iter().cloned());
        while deque.len() > self.config.fills_per_account {
            deque.pop_front();
        }
        if let Some(previous) = previous {
            self.fill_recency.remove(&(previous, account));
        }
        self.fill_recency.insert((height, account));
        while self.fill_recency.len() > self.config.fill_accounts {
            if let Some((_, oldest)) = self.fill_recency.pop_first() {
                self.fills.remove(&oldest);
            }
        }
    }

    fn evict(&mut self, height: u64) {
        let horizon = height.saturating_sub(self.config.order_retention_blocks);
        // Outcomes first: those dropped here need no copy out of their feed below.
        while let Some(&(at, hash)) = self.tx_order.front() {
            if at > horizon && self.tx_order.len() <= self.config.retained_txs {
                break;
            }
            self.tx_order.pop_front();
            self.txs.remove(&hash);
        }
        while self.feeds.len() > self.config.retained_blocks {
            let Some(feed) = self.feeds.pop_front() else {
                break;
            };
            for (index, view) in feed.view.txs.iter().enumerate() {
                let Some(hash) = feed.block.result.outcomes.get(index).map(|o| o.tx) else {
                    continue;
                };
                if let Some(slot) = self.txs.get_mut(&hash)
                    && matches!(*slot, TxSlot::InFeed { height: h, index: i } if h == feed.height() && i == index)
                {
                    *slot = TxSlot::Owned(view.clone());
                }
            }
        }
        while let Some(&(at, key)) = self.finished.front() {
            if at > horizon && self.finished.len() <= self.config.retained_orders {
                break;
            }
            self.finished.pop_front();
            if let Some(record) = self.records.remove(&key) {
                if let Some(id) = record.order_id
                    && self.by_order.get(&id) == Some(&key)
                {
                    self.by_order.remove(&id);
                }
                if let Some(cid) = record.client_order_id
                    && self.by_client.get(&(record.account, cid)) == Some(&key)
                {
                    self.by_client.remove(&(record.account, cid));
                }
            }
        }
    }

    // ---------------------------------------------------------------- queries

    /// A market's book: up to `depth` levels per side, with its sequence number and
    /// checksum.
    pub fn book(&self, market: MarketId, depth: usize) -> Option<BookView> {
        Some(self.books.get(&market)?.snapshot(self.height, depth))
    }

    /// The sequence number of a market's book.
    pub fn book_seq(&self, market: MarketId) -> Option<u64> {
        Some(self.books.get(&market)?.seq)
    }

    /// The diffs of a market from `from_seq` to the current one, if all are retained.
    pub fn book_diffs_from(&self, market: MarketId, from_seq: u64) -> Option<Vec<Arc<BookView>>> {
        let book = self.books.get(&market)?;
        if from_seq > book.seq {
            return Some(Vec::new());
        }
        let first = book.diffs.front()?.seq;
        if from_seq < first {
            return None;
        }
        Some(
            book.diffs
                .iter()
                .filter(|d| d.seq >= from_seq)
                .cloned()
                .collect(),
        )
    }

    /// The orders resting at one price level, in time priority.
    pub fn level_orders(
        &self,
        market: MarketId,
        side: Side,
        price: PriceTicks,
    ) -> Option<LevelOrdersView> {
        let book = self.books.get(&market)?;
        let level = match side {
            Side::Buy => book.bids.get(&price),
            Side::Sell => book.asks.get(&price),
        };
        let orders = level
            .map(|level| {
                level
                    .queue
                    .values()
                    .filter_map(|id| {
                        let order = book.resting.get(id)?;
                        Some(LevelOrderView {
                            order_id: id.0,
                            account: order.account.to_hex(),
                            size: convert::size(&book.market, order.remaining),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(LevelOrdersView {
            market: market.0,
            side: SideView::from(side),
            price: convert::price(&book.market, price),
            height: self.height,
            orders,
        })
    }

    /// An order by its chain-wide id (open, or finished within the retention window).
    pub fn order(&self, id: OrderId) -> Option<OrderStatusView> {
        let key = self.by_order.get(&id)?;
        Some(self.record_view(self.records.get(key)?))
    }

    /// An account's order by client id: its open order with that id, else the most recent
    /// finished or rejected one within the retention window.
    pub fn order_by_client_id(
        &self,
        account: &AccountId,
        cid: ClientOrderId,
    ) -> Option<OrderStatusView> {
        let key = self.by_client.get(&(*account, cid))?;
        Some(self.record_view(self.records.get(key)?))
    }

    /// An account's open orders, by order id.
    pub fn open_orders(&self, account: &AccountId) -> Vec<OrderStatusView> {
        self.open_by_account
            .get(account)
            .map(|ids| ids.iter().filter_map(|id| self.order(*id)).collect())
            .unwrap_or_default()
    }

    /// An account's most recent fills, newest last, at most `limit`.
    pub fn fills(&self, account: &AccountId, limit: usize) -> Vec<FillView> {
        self.fills
            .get(account)
            .map(|d| {
                d.iter()
                    .skip(d.len().saturating_sub(limit))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A market's most recent trades, newest last, at most `limit`.
    pub fn trades(&self, market: MarketId, limit: usize) -> Vec<TradeView> {
        self.trades
            .get(&market)
            .map(|d| {
                d.iter()
                    .skip(d.len().saturating_sub(limit))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The outcome of a committed transaction within the retention window.
    pub fn tx(&self, hash: &Hash) -> Option<TxOutcomeView> {
        match self.txs.get(hash)? {
            TxSlot::InFeed { height, index } => self.feed(*height)?.view.txs.get(*index).cloned(),
            TxSlot::Owned(view) => Some(view.clone()),
        }
    }

    /// A retained block by height.
    pub fn block(&self, height: u64) -> Option<Arc<CommittedBlock>> {
        self.feed(height).map(|f| f.block.clone())
    }

    /// A retained feed by height.
    pub fn feed(&self, height: u64) -> Option<Arc<BlockFeed>> {
        let first = self.feeds.front()?.height();
        let at = usize::try_from(height.checked_sub(first)?).ok()?;
        self.feeds.get(at).cloned()
    }

    /// The retained feeds after `height`, oldest first; `Err(oldest)` if some of them are
    /// no longer retained.
    pub fn feeds_after(&self, height: u64) -> Result<Vec<Arc<BlockFeed>>, u64> {
        if height >= self.height {
            return Ok(Vec::new());
        }
        match self.feeds.front() {
            Some(first) if first.height() <= height + 1 => Ok(self
                .feeds
                .iter()
                .filter(|f| f.height() > height)
                .cloned()
                .collect()),
            Some(first) => Err(first.height()),
            None => Err(self.height + 1),
        }
    }

    /// The levels of a market's book in ticks and lots, best first (for tests and tools).
    pub fn book_levels(&self, market: MarketId) -> Option<(Vec<LevelTicks>, Vec<LevelTicks>)> {
        let book = self.books.get(&market)?;
        let side = |side| {
            book.levels(side)
                .map(|(p, l)| (p, SizeLots(l.size), l.queue.len() as u32))
                .collect()
        };
        Some((side(Side::Buy), side(Side::Sell)))
    }
}

/// The two sides' views of a fill.
fn fill_views(
    market: &Market,
    chain: &ChainInfo,
    fill: &Fill,
    index: u32,
) -> [(AccountId, FillView); 2] {
    let quote_asset = chain.asset(market.spec().quote);
    let dec = |amount: dex_types::Amount| {
        quote_asset.map_or_else(Default::default, |a| convert::amount(a, amount))
    };
    let maker_fee = match fill.maker_fee {
        FeePaid::Charge(a) => dec(a),
        FeePaid::Rebate(a) => -dec(a),
    };
    let price = convert::price(market, fill.price);
    let size = convert::size(market, fill.size);
    let quote = dec(fill.quote_amount);
    let view = |order: OrderId, counter: OrderId, side: Side, liquidity, fee, remaining| FillView {
        height: fill.height,
        index,
        market: fill.market.0,
        order_id: order.0,
        counter_order_id: counter.0,
        side: SideView::from(side),
        liquidity,
        price,
        size,
        quote,
        fee,
        remaining: convert::size(market, remaining),
    };
    [
        (
            fill.maker,
            view(
                fill.maker_order_id,
                fill.taker_order_id,
                fill.taker_side.opposite(),
                Liquidity::Maker,
                maker_fee,
                fill.maker_remaining,
            ),
        ),
        (
            fill.taker,
            view(
                fill.taker_order_id,
                fill.maker_order_id,
                fill.taker_side,
                Liquidity::Taker,
                dec(fill.taker_fee),
                fill.taker_remaining,
            ),
        ),
    ]
}

/// `items` grouped by account, each account's items in their order in `items`: one stable
/// sort and a bulk build of the map, instead of a map search (32-byte key comparisons) per
/// item.
fn group_by_account<T>(mut items: Vec<(AccountId, T)>) -> BTreeMap<AccountId, Vec<T>> {
    items.sort_by_key(|(account, _)| *account);
    let mut groups: Vec<(AccountId, Vec<T>)> = Vec::new();
    for (account, item) in items {
        match groups.last_mut() {
            Some((last, group)) if *last == account => group.push(item),
            _ => groups.push((account, vec![item])),
        }
    }
    // Already sorted and distinct: the map is built in one pass.
    groups.into_iter().collect()
}

/// Lowercase hex of `bytes`, as `hex::encode` gives it, written into one buffer: the index
/// renders two 32-byte ids per order view and one per outcome, and `hex::encode` builds its
/// string one `char` at a time.
fn hex_lower(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut out).expect("bug: the buffer is twice the input");
    String::from_utf8(out).expect("bug: hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::{HubConfig, hex_lower};
    use crate::{ApiBackend, Clock, LocalChain, LocalChainConfig, demo_genesis};
    use dex_types::{
        Action, BatchLeg, ChainId, ClientOrderId, Keypair, MarketId, OrderBatch, OrderRequest,
        OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce, TimestampMs,
        Transaction,
    };

    /// An outcome reads the same while its block's feed is retained, after the feed is
    /// dropped (it is then copied out of the feed), and is gone once the count cap drops it.
    #[test]
    fn tx_outcomes_outlive_their_feed() {
        let keys: Vec<Keypair> = (1..=2u8).map(|i| Keypair::from_seed([i; 32])).collect();
        let accounts: Vec<_> = keys.iter().map(Keypair::account_id).collect();
        let config = LocalChainConfig {
            clock: Clock::manual(1_700_000_000_000),
            hub: HubConfig {
                retained_blocks: 2,
                retained_txs: 5,
                ..HubConfig::default()
            },
            ..LocalChainConfig::default()
        };
        let chain =
            LocalChain::new(&demo_genesis(7, 1_700_000_000_000, &accounts), config).unwrap();
        let mut sent = Vec::new();
        let mut at_commit = Vec::new();
        for nonce in 1..=4u64 {
            for (trader, key) in keys.iter().enumerate() {
                let request = OrderRequest {
                    market: MarketId(1),
                    client_order_id: Some(ClientOrderId(nonce)),
                    side: if trader == 0 { Side::Buy } else { Side::Sell },
                    order_type: OrderType::Limit,
                    price_ticks: PriceTicks(10_000 + nonce % 2),
                    size_lots: SizeLots(3 + nonce),
                    time_in_force: TimeInForce::Gtc,
                    self_trade: SelfTradePrevention::CancelResting,
                };
                let tx = Transaction {
                    chain_id: ChainId(7),
                    account: key.account_id(),
                    signer: key.account_id(),
                    nonce,
                    expires_at: TimestampMs(u64::MAX),
                    action: Action::Batch(OrderBatch {
                        legs: vec![BatchLeg::Place(request)],
                        atomic: true,
                    }),
                };
                let signed = key.sign(tx).unwrap();
                sent.push(signed.hash());
                futures::executor::block_on(chain.submit(signed)).unwrap();
            }
            chain.commit_block();
            for hash in &sent[sent.len() - 2..] {
                at_commit.push(chain.hub().read().tx(hash).unwrap());
            }
        }
        let hub = chain.hub();
        // Blocks 1 and 2 are no longer retained; 3 and 4 are.
        assert!(hub.read().feed(2).is_none());
        assert!(hub.read().feed(3).is_some());
        // The count cap keeps five outcomes: block 2's last (copied out of its dropped
        // feed) and blocks 3 and 4 (still in theirs), each as it read at its commit.
        let kept: Vec<_> = sent.iter().filter_map(|h| hub.read().tx(h)).collect();
        let heights: Vec<u64> = kept.iter().map(|t| t.height).collect();
        assert_eq!(heights, [2, 3, 3, 4, 4]);
        for outcome in &kept {
            assert!(
                at_commit.contains(outcome),
                "{outcome:?} changed since its commit"
            );
            assert!(!outcome.orders.is_empty());
        }
    }

    #[test]
    fn hex_lower_is_hex_encode() {
        let bytes: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
        for len in [0, 1, 31, 32, 33, 300, bytes.len()] {
            assert_eq!(hex_lower(&bytes[..len]), hex::encode(&bytes[..len]));
        }
    }
}
