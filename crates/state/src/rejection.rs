//! Why the ledger refused a transaction or one leg of it.

use crate::nonce::NonceError;
use dex_types::{
    AccountId, Amount, AssetId, ChainId, ClientOrderId, MarketId, OrderId, PriceTicks, SizeLots,
    TimestampMs, ValidationError,
};

/// A transaction (or one leg of a batch) the ledger refused. A rejection never changes a
/// balance or an order; whether it still uses up the nonce is [`Rejection::consumes_nonce`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The transaction was signed for another chain.
    #[error("the transaction is for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain.
        expected: ChainId,
        /// The transaction's chain.
        got: ChainId,
    },
    /// The block time is past the transaction's expiry.
    #[error("the transaction expired at {expires_at}, the block time is {block_time}")]
    Expired {
        /// The transaction's expiry.
        expires_at: TimestampMs,
        /// The block's time.
        block_time: TimestampMs,
    },
    /// The transaction breaks a structural rule (zero size, empty batch, ...).
    #[error("invalid transaction: {0}")]
    Invalid(ValidationError),
    /// The account has never held funds, so it has nothing to act on.
    #[error("account {account} does not exist; fund it first")]
    UnknownAccount {
        /// The account.
        account: AccountId,
    },
    /// The signer is neither the account nor an agent the account approved.
    #[error("{signer} is not an approved agent of this account")]
    NotAnAgent {
        /// The signer.
        signer: AccountId,
    },
    /// The agent's approval expired.
    #[error("the agent's approval expired at {expires_at}")]
    AgentExpired {
        /// When it expired.
        expires_at: TimestampMs,
    },
    /// The agent's policy does not include this market.
    #[error("the agent may not trade in market {market}")]
    AgentMarket {
        /// The market.
        market: MarketId,
    },
    /// The agent already placed or modified its per-block maximum of orders in this block.
    #[error("the agent may place or modify at most {max} orders per block")]
    AgentRate {
        /// The policy's limit.
        max: u32,
    },
    /// An agent signed an action only the account may sign.
    #[error("an agent may not sign a {action}")]
    AgentAction {
        /// The action's name.
        action: &'static str,
    },
    /// The nonce was used before, or is too old to tell.
    #[error("{0}")]
    Nonce(NonceError),
    /// The market is not listed.
    #[error("market {market} is not listed")]
    UnknownMarket {
        /// The market.
        market: MarketId,
    },
    /// The asset is not listed.
    #[error("asset {asset} is not listed")]
    UnknownAsset {
        /// The asset.
        asset: AssetId,
    },
    /// The size is below the market's minimum.
    #[error("size {size} lots is below the market minimum of {min} lots")]
    SizeBelowMinimum {
        /// The size.
        size: SizeLots,
        /// The minimum.
        min: SizeLots,
    },
    /// The size is above the largest order the chain accepts.
    #[error("size {size} lots is above the maximum of {max} lots")]
    SizeTooLarge {
        /// The size.
        size: SizeLots,
        /// The maximum.
        max: SizeLots,
    },
    /// The price is above the highest price the chain accepts.
    #[error("price {price} ticks is above the maximum of {max} ticks")]
    PriceTooHigh {
        /// The price.
        price: PriceTicks,
        /// The maximum.
        max: PriceTicks,
    },
    /// Not enough free funds for the order's lock, the transfer or the withdrawal.
    #[error("insufficient funds in asset {asset}: {needed} needed, {available} free")]
    InsufficientFunds {
        /// The asset.
        asset: AssetId,
        /// What the action needs.
        needed: Amount,
        /// What is free.
        available: Amount,
    },
    /// Another open order of the account already has this client order id.
    #[error("client order id {client_order_id} is already used by an open order")]
    DuplicateClientOrderId {
        /// The id.
        client_order_id: ClientOrderId,
    },
    /// The account already has the most open orders allowed.
    #[error("the account already has the maximum of {max} open orders")]
    TooManyOpenOrders {
        /// The limit.
        max: u32,
    },
    /// The account already has the most agents allowed.
    #[error("the account already has the maximum of {max} agents")]
    TooManyAgents {
        /// The limit.
        max: u32,
    },
    /// No open order of the account has this id.
    #[error("no open order {order_id} of this account")]
    UnknownOrder {
        /// The id.
        order_id: OrderId,
    },
    /// No open order of the account has this client order id.
    #[error("no open order with client order id {client_order_id}")]
    UnknownClientOrder {
        /// The id.
        client_order_id: ClientOrderId,
    },
    /// A post-only order (or its new price) would trade on arrival.
    #[error("the post-only order would trade immediately")]
    PostOnlyWouldCross,
    /// A good-til-time order whose expiry is not after the block time.
    #[error("the order's expiry {expires_at} is not after the block time")]
    OrderAlreadyExpired {
        /// The order's expiry.
        expires_at: TimestampMs,
    },
    /// The market's book holds its maximum of resting orders.
    #[error("the order book of market {market} is full")]
    BookFull {
        /// The market.
        market: MarketId,
    },
    /// The new size of a modification is not a valid change of the order.
    #[error("the modification does not change the order")]
    ModifyNoChange,
    /// The ledger holds its maximum number of accounts, so a transfer cannot create another.
    #[error("the ledger holds its maximum of {max} accounts")]
    TooManyAccounts {
        /// The limit.
        max: u32,
    },
    /// The agent to revoke is not approved.
    #[error("{agent} is not an approved agent of this account")]
    UnknownAgent {
        /// The agent.
        agent: AccountId,
    },
    /// One leg of an atomic batch failed, so none of the batch was applied.
    #[error("leg {leg} of the atomic batch failed, nothing was applied: {reason}")]
    BatchLeg {
        /// The failing leg's position in the batch.
        leg: u16,
        /// Why it failed.
        reason: Box<Rejection>,
    },
}

impl Rejection {
    /// Whether the transaction still used up its nonce.
    ///
    /// A transaction that could not be attributed to a valid signer for this chain at this
    /// time (wrong chain, expired, structurally invalid, unknown account, unknown or expired
    /// agent, bad nonce) does **not** consume it: it never entered the signer's history, and
    /// it can never become valid by replay anyway (its chain, expiry or structure are signed).
    /// Every later rejection (unknown market, insufficient funds, limits, ...) **does**
    /// consume it: the signer's authorised, well-formed transaction was executed and failed,
    /// and consuming the nonce guarantees that it cannot be replayed once the situation that
    /// made it fail has changed.
    pub fn consumes_nonce(&self) -> bool {
        !matches!(
            self,
            Rejection::WrongChain { .. }
                | Rejection::Expired { .. }
                | Rejection::Invalid(_)
                | Rejection::UnknownAccount { .. }
                | Rejection::NotAnAgent { .. }
                | Rejection::AgentExpired { .. }
                | Rejection::AgentAction { .. }
                | Rejection::Nonce(_)
        )
    }
}
