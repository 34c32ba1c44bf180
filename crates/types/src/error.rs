//! Errors of decoding and structural validation, shared by transactions and blocks.
//!
//! Each is an expected outcome of bad input from a client or peer, never a bug: the node
//! answers a client with the message and scores a peer by it.

use crate::ids::ChainId;
use borsh::io;

/// Why bytes from outside could not be turned into a transaction or block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than the cap for its type; nothing was decoded or allocated.
    #[error("{len} bytes is more than the limit of {max} bytes")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The cap for this type.
        max: usize,
    },
    /// The bytes are not a canonical borsh encoding of the type: truncated, an unknown enum
    /// tag, a boolean or option tag other than 0 or 1, invalid UTF-8, a non-normalised
    /// decimal.
    #[error("malformed encoding: {reason}")]
    Malformed {
        /// What the decoder found wrong.
        reason: String,
    },
    /// The value ended before the input did. Extra bytes would let one transaction travel
    /// under many byte strings, so they are refused.
    #[error("{count} unexpected bytes after the end of the value")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The value decoded but breaks a structural rule (a limit, a zero size...).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl DecodeError {
    /// Recover a typed limit error raised inside a bounded reader, or describe the borsh
    /// failure.
    pub(crate) fn from_io(error: io::Error) -> DecodeError {
        if let Some(typed) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ValidationError>())
        {
            return DecodeError::Invalid(typed.clone());
        }
        DecodeError::Malformed {
            reason: error.to_string(),
        }
    }
}

/// A structural rule that a transaction or block breaks, found without any chain state.
///
/// `leg` fields count from 0 within an order batch; `index` fields count from 0 within a
/// block's transactions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// An order batch with no legs does nothing and is refused.
    #[error("the batch has no orders or cancels")]
    EmptyBatch,
    /// More legs than [`crate::tx::MAX_BATCH_LEGS`].
    #[error("the batch has {count} legs; at most {max} are allowed")]
    TooManyLegs {
        /// Legs in the batch.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An order with a price of zero ticks.
    #[error("order {leg} of the batch has a price of zero ticks")]
    ZeroPrice {
        /// Which leg.
        leg: usize,
    },
    /// An order with a size of zero lots.
    #[error("order {leg} of the batch has a size of zero lots")]
    ZeroSize {
        /// Which leg.
        leg: usize,
    },
    /// A market order whose time in force lets it rest; a market order must be
    /// immediate-or-cancel or fill-or-kill.
    #[error("order {leg} of the batch is a market order; its time in force must be ioc or fok")]
    MarketOrderMayRest {
        /// Which leg.
        leg: usize,
    },
    /// A modify with neither a new price nor a new size.
    #[error("the modify changes neither price nor size")]
    ModifyChangesNothing,
    /// A modify to a price of zero ticks.
    #[error("the modify sets a price of zero ticks")]
    ModifyZeroPrice,
    /// A modify to a size of zero lots; cancel the order instead.
    #[error("the modify sets a size of zero lots; cancel the order instead")]
    ModifyZeroSize,
    /// A transfer or withdrawal of nothing.
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    /// A transfer whose recipient is the sending account.
    #[error("an account cannot transfer to itself")]
    TransferToSelf,
    /// A withdrawal with an empty destination.
    #[error("the withdrawal destination is empty")]
    EmptyDestination,
    /// A withdrawal destination longer than [`crate::tx::MAX_WITHDRAW_DESTINATION_BYTES`].
    #[error("the withdrawal destination is {len} bytes; at most {max} are allowed")]
    DestinationTooLong {
        /// Length of the destination.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An agent policy that lists markets but lists none.
    #[error("the agent policy lists no markets")]
    NoAgentMarkets,
    /// An agent policy with more markets than [`crate::tx::MAX_AGENT_MARKETS`].
    #[error("the agent policy lists {count} markets; at most {max} are allowed")]
    TooManyAgentMarkets {
        /// Markets listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An agent policy whose markets are not in strictly ascending order (a duplicate, or
    /// out of order). One order keeps the encoding of a policy unique.
    #[error("the agent policy's markets must be listed in ascending order without repeats")]
    AgentMarketsNotAscending,
    /// An account approving its own key as an agent.
    #[error("an account cannot approve itself as an agent")]
    AgentIsAccount,
    /// An agent policy that allows no orders at all.
    #[error("the agent policy must allow at least one order per block")]
    ZeroAgentOrderRate,
    /// An agent key signed an action only the account's own key may sign.
    #[error("an agent key cannot sign a {action}; only the account's own key can")]
    AgentNotAllowed {
        /// The kind of action.
        action: &'static str,
    },
    /// A block with more transactions than [`crate::block::MAX_BLOCK_TXS`].
    #[error("the block has {count} transactions; at most {max} are allowed")]
    TooManyTxs {
        /// Transactions in the block.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A block whose encoding is longer than [`crate::block::MAX_BLOCK_BYTES`].
    #[error("the block encodes to {len} bytes; at most {max} are allowed")]
    BlockTooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A transaction in a block signed for another chain.
    #[error("transaction {index} of the block is for chain {got}, not chain {expected}")]
    WrongChain {
        /// Which transaction.
        index: usize,
        /// The block's chain.
        expected: ChainId,
        /// The transaction's chain.
        got: ChainId,
    },
    /// A transaction in a block breaks a structural rule.
    #[error("transaction {index} of the block: {error}")]
    InvalidBlockTx {
        /// Which transaction.
        index: usize,
        /// What is wrong with it.
        error: Box<ValidationError>,
    },
    /// A Merkle proof longer than [`crate::merkle::MAX_PROOF_DEPTH`].
    #[error("the Merkle proof has {count} steps; at most {max} are allowed")]
    ProofTooLong {
        /// Steps in the proof.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// An amount of an asset that does not fit in 128 bits, or a subtraction below zero.
///
/// A market whose prices and sizes can reach this is misconfigured or the order is absurd;
/// either way the operation is refused rather than wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the amount is out of range (overflow or negative)")]
pub struct AmountOverflow;
