//! The JSON types of the HTTP and WebSocket API, shared by the server and the trader SDK.
//!
//! Conventions: decimal prices, sizes and amounts are strings (`"101.25"`); raw integer
//! amounts in base units are strings of digits (they exceed 2^53); ids that fit 2^53 are JSON
//! numbers; hashes, account keys and encoded bytes are lower-case hex. Every request type
//! refuses unknown fields, so a misspelt option is an error rather than silently ignored.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest number of book levels per side a request may ask for.
pub const MAX_DEPTH_LEVELS: usize = 1_000;
/// Largest number of fills or trades a request may ask for.
pub const MAX_LIST_LIMIT: usize = 1_000;

/// One listed asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssetView {
    /// Asset id.
    pub id: u32,
    /// Ticker symbol.
    pub symbol: String,
    /// Decimal places of one base unit.
    pub decimals: u8,
}

/// One listed market with what a client needs to convert decimals to ticks and lots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarketView {
    /// Market id.
    pub id: u32,
    /// `BASE-QUOTE`, e.g. `BTC-USDC`.
    pub name: String,
    /// Base asset.
    pub base: AssetView,
    /// Quote asset.
    pub quote: AssetView,
    /// Price step in quote per base.
    #[schema(value_type = String, example = "0.01")]
    pub tick_size: Decimal,
    /// Size step in base.
    #[schema(value_type = String, example = "0.001")]
    pub lot_size: Decimal,
    /// Smallest order in lots.
    pub min_size_lots: u64,
    /// Maker fee in basis points (negative: rebate).
    pub maker_fee_bps: i32,
    /// Taker fee in basis points.
    pub taker_fee_bps: i32,
}

/// One validator of the chain's fixed set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidatorView {
    /// Ed25519 public key, hex.
    pub public_key: String,
    /// Voting power.
    pub voting_power: u64,
}

/// The chain a node serves: id, head, assets, markets, validators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainView {
    /// Chain id (part of every signed transaction).
    pub chain_id: u64,
    /// Genesis hash, hex.
    pub genesis_hash: String,
    /// Height of the last committed block (0 before the first).
    pub height: u64,
    /// Its block time, ms since the Unix epoch.
    pub time_ms: u64,
    /// Listed assets.
    pub assets: Vec<AssetView>,
    /// Listed markets.
    pub markets: Vec<MarketView>,
    /// The validator set that signs commit certificates (the in-process `LocalChain` lists
    /// its one key). A trader who wants full independence from the node pins the set from
    /// the genesis file instead of trusting this list.
    pub validators: Vec<ValidatorView>,
}

/// Submit one signed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The canonical borsh bytes of the `SignedTransaction`, hex.
    pub tx: String,
    /// Wait until the transaction is committed (or the wait times out) before answering.
    #[serde(default)]
    pub wait_for_commit: bool,
    /// How long to wait for the commit, in ms (default 10 000, at most 60 000).
    #[serde(default)]
    pub wait_timeout_ms: Option<u64>,
}

/// Most transactions one `POST /v1/txs/batch` request may carry. It bounds the work one
/// request asks of the node (one verify-queue entry, one driver hand-off) and the request
/// body (see the route's own body limit); a market maker replacing its quotes needs far
/// fewer. More is refused whole with `batch_too_large`.
pub const MAX_BATCH_TXS: usize = 256;

/// Submit several signed transactions in one request (`POST /v1/txs/batch`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatchRequest {
    /// The canonical borsh bytes of each `SignedTransaction`, hex; at most
    /// [`MAX_BATCH_TXS`]. Each is decoded, checked and admitted on its own.
    pub txs: Vec<String>,
}

/// Why one item of a batch was refused: what `POST /v1/txs` would have answered for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItemError {
    /// The HTTP status the single route answers this refusal with (429 and 5xx are worth
    /// a retry, the rest are not).
    pub status: u16,
    /// The stable code, the same as the single route's (`malformed_tx`, `bad_signature`,
    /// `rate_limited`, `mempool_full`, a ledger rejection code, ...).
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// The fate of one item of a batch, in request order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItemView {
    /// Transaction id, hex; absent only when the item did not decode.
    pub tx_hash: Option<String>,
    /// `pending` when admitted; absent when refused.
    pub state: Option<TxState>,
    /// Why it was refused; absent when admitted.
    pub error: Option<BatchItemError>,
}

/// The answer to a batch submission: one result per submitted item, in request order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatchResponse {
    /// One per item of the request, in its order.
    pub results: Vec<BatchItemView>,
}

/// Where a submitted transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    /// Admitted to the mempool, not yet committed.
    Pending,
    /// Committed in a block (see the outcome: it may still have been rejected there).
    Committed,
    /// Admitted, then made impossible by a committed block (its nonce was used, it
    /// expired, its funds or its order went): it will never commit. See `dropped`.
    Dropped,
    /// Not known: never seen here, or past the retention window.
    Unknown,
}

/// Why an admitted transaction was dropped from the mempool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DroppedView {
    /// The block whose commit made it impossible.
    pub height: u64,
    /// The ledger's rejection code, as in a committed outcome (`nonce_replayed`,
    /// `expired`, `insufficient_funds`, ...).
    pub code: String,
    /// What the committed state says about it, for a person.
    pub message: String,
}

/// The answer to a submission or a transaction lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TxStatusView {
    /// Transaction id, hex.
    pub tx_hash: String,
    /// Pending, committed or unknown.
    pub state: TxState,
    /// The committed outcome, if committed.
    pub outcome: Option<TxOutcomeView>,
    /// Why it was dropped, if dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<DroppedView>,
}

/// How a committed transaction ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TxOutcomeView {
    /// Transaction id, hex.
    pub tx_hash: String,
    /// The block that executed it.
    pub height: u64,
    /// Whether it applied (a non-atomic batch may apply partly; see `leg_rejections`).
    pub ok: bool,
    /// The rejection's stable code, if rejected.
    pub code: Option<String>,
    /// The rejection's message, if rejected.
    pub message: Option<String>,
    /// Legs of a non-atomic batch that failed.
    pub leg_rejections: Vec<LegRejectionView>,
    /// The orders the transaction created or changed, as they stood after the block.
    pub orders: Vec<OrderStatusView>,
}

/// One failed leg of a non-atomic batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LegRejectionView {
    /// The leg's position in the batch.
    pub leg: u16,
    /// Stable code.
    pub code: String,
    /// Message.
    pub message: String,
}

/// One aggregated price level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LevelView {
    /// Price.
    #[schema(value_type = String, example = "101.25")]
    pub price: Decimal,
    /// Total open size; `"0"` in a diff means the level is gone.
    #[schema(value_type = String, example = "1.5")]
    pub size: Decimal,
    /// Orders resting at the level.
    pub orders: u32,
}

/// A book: the levels of both sides, best first, at a sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BookView {
    /// Market id.
    pub market: u32,
    /// The market's book sequence: the number of the last diff included.
    pub seq: u64,
    /// Height of the last committed block included.
    pub height: u64,
    /// Bids, highest first.
    pub bids: Vec<LevelView>,
    /// Asks, lowest first.
    pub asks: Vec<LevelView>,
    /// Checksum of the top of the full book (see `dex_api::checksum`).
    pub checksum: String,
}

/// Buy or sell, in paths and bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SideView {
    /// Bid.
    Buy,
    /// Ask.
    Sell,
}

impl From<dex_types::Side> for SideView {
    fn from(side: dex_types::Side) -> SideView {
        match side {
            dex_types::Side::Buy => SideView::Buy,
            dex_types::Side::Sell => SideView::Sell,
        }
    }
}

impl From<SideView> for dex_types::Side {
    fn from(side: SideView) -> dex_types::Side {
        match side {
            SideView::Buy => dex_types::Side::Buy,
            SideView::Sell => dex_types::Side::Sell,
        }
    }
}

/// One order resting at a level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LevelOrderView {
    /// Order id.
    pub order_id: u64,
    /// Owner, hex.
    pub account: String,
    /// Open size.
    #[schema(value_type = String)]
    pub size: Decimal,
}

/// The orders of one price level, in time priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LevelOrdersView {
    /// Market id.
    pub market: u32,
    /// Side.
    pub side: SideView,
    /// Price.
    #[schema(value_type = String)]
    pub price: Decimal,
    /// Height of the last committed block included.
    pub height: u64,
    /// Orders, first in the queue first.
    pub orders: Vec<LevelOrderView>,
}

/// One asset balance of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceView {
    /// Asset id.
    pub asset: u32,
    /// Symbol.
    pub symbol: String,
    /// Spendable, decimal.
    #[schema(value_type = String)]
    pub free: Decimal,
    /// Held by open orders, decimal.
    #[schema(value_type = String)]
    pub locked: Decimal,
    /// Spendable in base units (digits).
    pub free_units: String,
    /// Locked in base units (digits).
    pub locked_units: String,
}

/// A signer's nonce window, for choosing the next nonce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NonceView {
    /// The signer, hex (the account itself or one of its agents).
    pub signer: String,
    /// The highest used nonce; a fresh nonce above it is always acceptable.
    pub highest: Option<u64>,
    /// The smallest nonce the window remembers once full; nonces at or below it are refused.
    pub smallest: Option<u64>,
    /// Used nonces in the window.
    pub used: u32,
}

/// An account's balances, nonces, agents and dead-man switch after a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// Account, hex.
    pub account: String,
    /// Height of the state read.
    pub height: u64,
    /// Whether the ledger holds the account (it has been funded).
    pub exists: bool,
    /// Balances of every listed asset.
    pub balances: Vec<BalanceView>,
    /// The owner key's nonce window, then each agent's.
    pub nonces: Vec<NonceView>,
    /// When the dead-man switch fires, ms, if armed.
    pub cancel_all_at_ms: Option<u64>,
    /// Open orders.
    pub open_orders: u32,
}

/// Lifecycle state of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Accepted and resting (possibly partly filled).
    Open,
    /// Completely filled.
    Filled,
    /// Removed without filling completely (by the owner, self-trade prevention, an
    /// immediate-or-cancel remainder, fill-or-kill, or the dead-man switch).
    Cancelled,
    /// A good-til-time order that reached its expiry.
    Expired,
    /// Refused by the ledger when its block executed; it never rested.
    Rejected,
}

/// An order's status, as the node's order index holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderStatusView {
    /// Chain-wide order id (absent for an order rejected before it got one).
    pub order_id: Option<u64>,
    /// The client's id, if it gave one.
    pub client_order_id: Option<u64>,
    /// Owner, hex.
    pub account: String,
    /// Market id.
    pub market: u32,
    /// Side.
    pub side: SideView,
    /// Limit price.
    #[schema(value_type = String)]
    pub price: Decimal,
    /// Total size (filled plus open, or as requested if rejected).
    #[schema(value_type = String)]
    pub size: Decimal,
    /// Open size.
    #[schema(value_type = String)]
    pub remaining: Decimal,
    /// Filled size.
    #[schema(value_type = String)]
    pub filled: Decimal,
    /// Lifecycle state.
    pub state: OrderState,
    /// Why it was cancelled (`user`, `self_trade`, `immediate_remainder`, `fill_or_kill`,
    /// `dead_man_switch`) or the rejection code.
    pub reason: Option<String>,
    /// The transaction that placed it, hex.
    pub tx_hash: String,
    /// Block that placed it.
    pub created_height: u64,
    /// Block of the last change.
    pub updated_height: u64,
}

/// Maker or taker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Liquidity {
    /// The resting side.
    Maker,
    /// The incoming side.
    Taker,
}

/// One fill as seen by one of its two accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FillView {
    /// Block height.
    pub height: u64,
    /// Position among the block's committed items (for the fill proof).
    pub index: u32,
    /// Market id.
    pub market: u32,
    /// This account's order.
    pub order_id: u64,
    /// The other side's order.
    pub counter_order_id: u64,
    /// This account's side.
    pub side: SideView,
    /// Maker or taker.
    pub liquidity: Liquidity,
    /// Price.
    #[schema(value_type = String)]
    pub price: Decimal,
    /// Size.
    #[schema(value_type = String)]
    pub size: Decimal,
    /// Quote notional before fees, decimal.
    #[schema(value_type = String)]
    pub quote: Decimal,
    /// Fee paid in the quote asset, decimal; negative for a rebate.
    #[schema(value_type = String)]
    pub fee: Decimal,
    /// What this order still has open after the fill.
    #[schema(value_type = String)]
    pub remaining: Decimal,
}

/// One public trade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TradeView {
    /// Block height.
    pub height: u64,
    /// Position among the block's committed items.
    pub index: u32,
    /// Market id.
    pub market: u32,
    /// Price.
    #[schema(value_type = String)]
    pub price: Decimal,
    /// Size.
    #[schema(value_type = String)]
    pub size: Decimal,
    /// The incoming order's side.
    pub taker_side: SideView,
    /// Resting order.
    pub maker_order_id: u64,
    /// Incoming order.
    pub taker_order_id: u64,
}

/// A block header, with its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderView {
    /// The header's hash (the block id), hex.
    pub hash: String,
    /// Chain id.
    pub chain_id: u64,
    /// Height.
    pub height: u64,
    /// Block time, ms.
    pub time_ms: u64,
    /// Parent block hash, hex.
    pub parent_hash: String,
    /// Proposer key, hex.
    pub proposer: String,
    /// Transactions root, hex.
    pub txs_root: String,
    /// State root, hex.
    pub state_root: String,
    /// Fills root, hex.
    pub fills_root: String,
}

/// A committed block: header, commit certificate, transactions' outcomes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockView {
    /// Header.
    pub header: HeaderView,
    /// The commit certificate's canonical bytes, hex; absent on a chain without consensus.
    pub certificate: Option<String>,
    /// Outcomes in execution order.
    pub txs: Vec<TxOutcomeView>,
    /// Number of committed items (fills and withdrawal receipts) under the fills root.
    pub committed_items: u32,
    /// The ids of the block's transactions (hex, in block order), given only when their
    /// outcomes are not known: a block read back from storage, whose execution results
    /// the node does not keep. `txs` is then empty and `committed_items` zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hashes: Option<Vec<String>>,
}

/// Everything needed to check a fill against a header without trusting the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FillProofView {
    /// The header whose fills root commits to the item.
    pub header: HeaderView,
    /// The commit certificate, hex, if the chain has one.
    pub certificate: Option<String>,
    /// The committed item's canonical borsh bytes (`dex_state::CommittedItem`), hex.
    pub item: String,
    /// The proof's canonical borsh bytes (`dex_state::FillProof`), hex.
    pub proof: String,
    /// The fill, readable (not part of what is proven; recompute it from `item`).
    pub trade: Option<TradeView>,
}

/// Everything needed to check an account's balances against a header's state root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceProofView {
    /// Account, hex.
    pub account: String,
    /// The header whose state root commits to the balances.
    pub header: HeaderView,
    /// The commit certificate, hex, if the chain has one.
    pub certificate: Option<String>,
    /// The proof's canonical borsh bytes (`dex_state::BalanceProof`), hex.
    pub proof: String,
}

/// Query of list endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitQuery {
    /// At most this many items (default 100, at most 1 000).
    pub limit: Option<usize>,
}

/// Query of the book endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepthQuery {
    /// Levels per side (default 50, at most 1 000).
    pub depth: Option<usize>,
}

// ------------------------------------------------------------------ WebSocket

/// A stream a WebSocket client can subscribe to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Channel {
    /// A market's full L2 book: a snapshot, then one diff per block that changed it.
    Book {
        /// Market id.
        market: u32,
    },
    /// A market's trades, one message per block with trades.
    Trades {
        /// Market id.
        market: u32,
    },
    /// An account's order updates, one message per block that changed its orders.
    Orders {
        /// Account, hex.
        account: String,
    },
    /// An account's fills, one message per block with fills.
    Fills {
        /// Account, hex.
        account: String,
    },
    /// Every committed block's header and certificate.
    Blocks,
}

/// A message from a WebSocket client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Start a stream. For every channel but `book`, `since_height` replays what the
    /// channel carried in the blocks after it (within the node's retention), so a client
    /// that reconnects misses nothing.
    Subscribe {
        /// The stream.
        channel: Channel,
        /// Replay from the block after this one.
        #[serde(default)]
        since_height: Option<u64>,
    },
    /// Stop a stream.
    Unsubscribe {
        /// The stream.
        channel: Channel,
    },
    /// Ask for the book diffs from `from_seq` on (the node answers with them if it still
    /// holds them, else with a fresh snapshot).
    Resync {
        /// Market id.
        market: u32,
        /// The first missing sequence number.
        from_seq: u64,
    },
    /// Ask for a fresh book snapshot.
    Snapshot {
        /// Market id.
        market: u32,
    },
    /// Liveness check; answered with `pong`.
    Ping {
        /// Echoed back.
        #[serde(default)]
        nonce: u64,
    },
}

/// A message from the node to a WebSocket client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// A subscription started; data follows.
    Subscribed {
        /// The stream.
        channel: Channel,
        /// Height at which live data starts (replayed data comes first).
        height: u64,
    },
    /// A subscription ended.
    Unsubscribed {
        /// The stream.
        channel: Channel,
    },
    /// A full book. Diffs with `seq` above this one follow.
    BookSnapshot(BookView),
    /// Changed levels of one block; a level with size `"0"` is gone. Apply only if `seq` is
    /// one above the book's; otherwise ask to `resync`.
    BookDiff(BookView),
    /// A market's trades in one block.
    Trades {
        /// Market id.
        market: u32,
        /// Block height.
        height: u64,
        /// Trades in execution order.
        trades: Vec<TradeView>,
    },
    /// An account's order updates in one block.
    Orders {
        /// Account, hex.
        account: String,
        /// Block height.
        height: u64,
        /// Orders as they stood after the block.
        orders: Vec<OrderStatusView>,
    },
    /// An account's fills in one block.
    Fills {
        /// Account, hex.
        account: String,
        /// Block height.
        height: u64,
        /// Fills in execution order.
        fills: Vec<FillView>,
    },
    /// A committed block.
    Block(BlockView),
    /// Sent every heartbeat interval: the connection is alive and the chain is at `height`.
    Heartbeat {
        /// Last committed height.
        height: u64,
        /// Its block time, ms.
        time_ms: u64,
    },
    /// The answer to `ping`.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// Something went wrong with a client message or a subscription.
    Error {
        /// Stable code.
        code: String,
        /// Message.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_and_refuse_unknown_fields() {
        let sub: ClientMessage = serde_json::from_str(
            r#"{"op":"subscribe","channel":{"type":"book","market":1},"since_height":4}"#,
        )
        .unwrap();
        assert_eq!(
            sub,
            ClientMessage::Subscribe {
                channel: Channel::Book { market: 1 },
                since_height: Some(4)
            }
        );
        let blocks: ClientMessage =
            serde_json::from_str(r#"{"op":"subscribe","channel":{"type":"blocks"}}"#).unwrap();
        assert!(matches!(
            blocks,
            ClientMessage::Subscribe {
                since_height: None,
                ..
            }
        ));
        assert!(
            serde_json::from_str::<ClientMessage>(
                r#"{"op":"subscribe","channel":{"type":"book","market":1},"extra":1}"#
            )
            .is_err()
        );
        assert!(
            serde_json::from_str::<ClientMessage>(
                r#"{"op":"subscribe","channel":{"type":"book","market":1,"depth":3}}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"op":"dance"}"#).is_err());
    }

    #[test]
    fn decimals_are_strings() {
        let level = LevelView {
            price: Decimal::new(10125, 2),
            size: Decimal::new(15, 1),
            orders: 2,
        };
        let json = serde_json::to_value(&level).unwrap();
        assert_eq!(json["price"], "101.25");
        assert_eq!(json["size"], "1.5");
        let message = ServerMessage::Heartbeat {
            height: 3,
            time_ms: 9,
        };
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(text, r#"{"type":"heartbeat","height":3,"time_ms":9}"#);
        assert_eq!(
            serde_json::from_str::<ServerMessage>(&text).unwrap(),
            message
        );
    }

    #[test]
    fn submit_request_refuses_unknown_fields() {
        let ok: SubmitRequest = serde_json::from_str(r#"{"tx":"00"}"#).unwrap();
        assert!(!ok.wait_for_commit);
        assert!(serde_json::from_str::<SubmitRequest>(r#"{"tx":"00","wait":true}"#).is_err());
    }
}
