//! What a block did: per-transaction outcomes, the ordered event stream, and the committed
//! fills and withdrawal receipts whose Merkle root is the block's fills root.

use crate::rejection::Rejection;
use borsh::{BorshDeserialize, BorshSerialize};
use dex_types::{
    AccountId, Amount, AssetId, ClientOrderId, Domain, Hash, MarketId, MerkleProof, OrderId,
    PriceTicks, Side, SizeLots, TimestampMs,
};

/// The fee one side of a fill paid or received, in the market's quote asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum FeePaid {
    /// Paid to the fee account.
    Charge(Amount),
    /// Paid by the fee account (a maker rebate, out of the same fill's taker fee).
    Rebate(Amount),
}

/// One trade, as committed in the fills root and proven to a trader's SDK.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Fill {
    /// Height of the block that executed it.
    pub height: u64,
    /// The market.
    pub market: MarketId,
    /// The resting order.
    pub maker_order_id: OrderId,
    /// The resting order's account.
    pub maker: AccountId,
    /// The incoming order.
    pub taker_order_id: OrderId,
    /// The incoming order's account.
    pub taker: AccountId,
    /// The incoming order's side.
    pub taker_side: Side,
    /// The maker's price.
    pub price: PriceTicks,
    /// Quantity traded.
    pub size: SizeLots,
    /// Base units that changed hands.
    pub base_amount: Amount,
    /// Quote units that changed hands (before fees).
    pub quote_amount: Amount,
    /// The maker's fee or rebate.
    pub maker_fee: FeePaid,
    /// The taker's fee.
    pub taker_fee: Amount,
    /// What the maker still has open.
    pub maker_remaining: SizeLots,
    /// What the taker still has open.
    pub taker_remaining: SizeLots,
}

/// The committed record of a withdrawal: what an external bridge honours, with its proof.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WithdrawalReceipt {
    /// Height of the block that executed it.
    pub height: u64,
    /// A chain-wide sequence number, so a bridge can honour each receipt once.
    pub sequence: u64,
    /// The withdrawing transaction.
    pub tx: Hash,
    /// The account debited.
    pub account: AccountId,
    /// The asset.
    pub asset: AssetId,
    /// The amount, in base units.
    pub amount: Amount,
    /// Where the bridge sends it.
    pub destination: Vec<u8>,
}

/// A leaf of the fills root: a fill or a withdrawal receipt.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum CommittedItem {
    /// A trade.
    Fill(Fill),
    /// A withdrawal.
    Withdrawal(WithdrawalReceipt),
}

impl CommittedItem {
    /// The leaf hash: BLAKE3 under [`Domain::FillLeaf`] of the item's borsh bytes.
    pub fn leaf_hash(&self) -> Hash {
        let mut bytes = Vec::with_capacity(256);
        borsh::to_writer(&mut bytes, self).expect("bug: borsh into a Vec cannot fail");
        Hash::of(Domain::FillLeaf, &[&bytes])
    }
}

/// Why an order left the book (or part of it did) without trading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelCause {
    /// The owner (or its agent) asked.
    User,
    /// Self-trade prevention.
    SelfTrade,
    /// The unfilled remainder of an immediate-or-cancel or market order.
    ImmediateRemainder,
    /// A fill-or-kill order that could not fill completely.
    FillOrKill,
    /// The account's dead-man switch fired.
    DeadManSwitch,
}

/// One thing that happened in a block, in execution order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerEvent {
    /// An order entered matching; its funds are locked.
    OrderAccepted {
        /// The order's chain-wide id.
        order_id: OrderId,
        /// The owner.
        account: AccountId,
        /// The market.
        market: MarketId,
        /// The client's id, if any.
        client_order_id: Option<ClientOrderId>,
        /// Buy or sell.
        side: Side,
        /// Limit (or worst) price.
        price: PriceTicks,
        /// Size.
        size: SizeLots,
    },
    /// A trade (also committed in the fills root; `index` is its leaf position).
    Fill {
        /// Position of the fill among the block's committed items.
        index: u32,
    },
    /// What is left of an order now rests in the book.
    OrderRested {
        /// The order.
        order_id: OrderId,
        /// The market.
        market: MarketId,
        /// Resting quantity.
        remaining: SizeLots,
    },
    /// An order's open quantity was removed without trading.
    OrderCancelled {
        /// The order.
        order_id: OrderId,
        /// The owner.
        account: AccountId,
        /// The market.
        market: MarketId,
        /// Quantity removed.
        remaining: SizeLots,
        /// Why.
        cause: CancelCause,
    },
    /// A resting order shrank and kept its priority.
    OrderReduced {
        /// The order.
        order_id: OrderId,
        /// The market.
        market: MarketId,
        /// Open quantity after.
        remaining: SizeLots,
    },
    /// A resting order got a new price and/or size.
    OrderReplaced {
        /// The order.
        order_id: OrderId,
        /// The market.
        market: MarketId,
        /// New price.
        price: PriceTicks,
        /// New open size.
        size: SizeLots,
        /// Whether it kept its time priority.
        priority_kept: bool,
    },
    /// A good-til-time order expired.
    OrderExpired {
        /// The order.
        order_id: OrderId,
        /// The owner.
        account: AccountId,
        /// The market.
        market: MarketId,
        /// Quantity removed.
        remaining: SizeLots,
    },
    /// Funds moved between accounts.
    Transferred {
        /// Sender.
        from: AccountId,
        /// Recipient.
        to: AccountId,
        /// Asset.
        asset: AssetId,
        /// Amount.
        amount: Amount,
    },
    /// Funds left the exchange (also committed in the fills root at `index`).
    Withdrawn {
        /// Position of the receipt among the block's committed items.
        index: u32,
    },
    /// An agent was approved (or its policy replaced).
    AgentApproved {
        /// The account.
        account: AccountId,
        /// The agent key.
        agent: AccountId,
    },
    /// An agent was revoked; it stops acting at the next block.
    AgentRevoked {
        /// The account.
        account: AccountId,
        /// The agent key.
        agent: AccountId,
    },
    /// The dead-man switch was set (`Some`) or cleared (`None`).
    CancelAllScheduled {
        /// The account.
        account: AccountId,
        /// When.
        at: Option<TimestampMs>,
    },
    /// The dead-man switch fired: every open order of the account was cancelled.
    DeadManSwitchFired {
        /// The account.
        account: AccountId,
        /// The scheduled time.
        at: TimestampMs,
    },
}

/// How one transaction of the block ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// The transaction id.
    pub tx: Hash,
    /// `Ok` if it applied (for a non-atomic batch: at least partly; see `leg_rejections`).
    pub result: Result<(), Rejection>,
    /// Legs of a non-atomic batch that failed, with why.
    pub leg_rejections: Vec<(u16, Rejection)>,
    /// Whether the signer's nonce was used up (see [`Rejection::consumes_nonce`]).
    pub nonce_consumed: bool,
    /// The transaction's events: `events[first_event..end_event]` of the block result.
    pub first_event: u32,
    /// One past its last event.
    pub end_event: u32,
}

/// Everything a block's execution produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockResult {
    /// The block's height.
    pub height: u64,
    /// The block time.
    pub time: TimestampMs,
    /// The parent block's hash (the seed of the canonical order).
    pub parent_hash: Hash,
    /// One outcome per transaction, in execution (canonical) order.
    pub outcomes: Vec<TxOutcome>,
    /// Every event in execution order. Events before the first outcome's `first_event` come
    /// from the start of the block: expiries and dead-man switches.
    pub events: Vec<LedgerEvent>,
    /// Fills and withdrawal receipts, in execution order: the leaves of the fills root.
    pub committed: Vec<CommittedItem>,
    /// The state root after the block.
    pub state_root: Hash,
    /// The Merkle root of `committed`.
    pub fills_root: Hash,
}

/// Proof that one committed item (fill or receipt) is in a block's fills root.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FillProof {
    /// The item's position among the block's committed items.
    pub index: u64,
    /// How many items the block committed.
    pub count: u64,
    /// The Merkle path.
    pub path: MerkleProof,
}

impl BlockResult {
    /// The leaf hashes of the committed items.
    pub fn committed_leaves(&self) -> Vec<Hash> {
        self.committed
            .iter()
            .map(CommittedItem::leaf_hash)
            .collect()
    }

    /// The proof for committed item `index`, or `None` if out of range.
    pub fn fill_proof(&self, index: usize) -> Option<FillProof> {
        let leaves = self.committed_leaves();
        let path = dex_types::merkle::prove(&leaves, index)?;
        Some(FillProof {
            index: index as u64,
            count: leaves.len() as u64,
            path,
        })
    }

    /// The fills of the block.
    pub fn fills(&self) -> impl Iterator<Item = &Fill> {
        self.committed.iter().filter_map(|c| match c {
            CommittedItem::Fill(f) => Some(f),
            CommittedItem::Withdrawal(_) => None,
        })
    }
}

/// Whether `item` is committed in the block whose header carries `fills_root`. An SDK needs
/// only the header (certified by the commit certificate) and the proof.
pub fn verify_fill_proof(fills_root: &Hash, item: &CommittedItem, proof: &FillProof) -> bool {
    proof
        .path
        .verify(fills_root, &item.leaf_hash(), proof.index, proof.count)
}
