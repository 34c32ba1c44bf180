//! Transactions: every action an account can take, the signed envelope, its id and its
//! bounded decoding.
//!
//! ## Encoding
//! A [`Transaction`] is encoded with borsh in field order; enums are a one-byte tag (the
//! variant's position, so new variants are only ever appended) followed by the variant's
//! fields. The transaction id is [`Transaction::hash`]: BLAKE3 under
//! [`Domain::Transaction`] of the unsigned bytes. It never covers the signature, so nobody
//! can mint a second id for a transaction by altering its signature; and the encoding is
//! canonical (see [`crate::codec`]), so nobody can by re-encoding it either.
//!
//! ## Orders
//! A single placement or cancel is an [`OrderBatch`] of one leg: one code path in the
//! ledger, and one rule for atomicity. A batch is applied leg by leg in order; if `atomic`,
//! a failing leg undoes the whole batch, otherwise each leg stands or fails on its own.
//!
//! ## Limits
//! [`MAX_TX_BYTES`] caps the encoded signed transaction before decoding; [`MAX_BATCH_LEGS`],
//! [`MAX_AGENT_MARKETS`] and [`MAX_WITHDRAW_DESTINATION_BYTES`] cap the lists inside it and
//! are checked while decoding, before anything is allocated. A transaction within every
//! list limit always encodes below [`MAX_TX_BYTES`] (a test checks the largest one).

use crate::asset::Amount;
use crate::codec::{self, hex_64, hex_vec, read_bounded_bytes, read_bounded_vec};
use crate::error::{DecodeError, ValidationError};
use crate::hash::{Domain, Hash};
use crate::ids::{AccountId, AssetId, ChainId, ClientOrderId, MarketId, OrderId};
use crate::sign::{self, SignatureError, SignerKey};
use crate::units::{
    OrderType, PriceTicks, SelfTradePrevention, Side, SizeLots, TimeInForce, TimestampMs,
};
use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

/// The largest encoded signed transaction, in bytes, checked before decoding.
pub const MAX_TX_BYTES: usize = 16 * 1024;
/// The most legs (placements and cancels) in one batch.
pub const MAX_BATCH_LEGS: usize = 64;
/// The most markets an agent policy may list.
pub const MAX_AGENT_MARKETS: usize = 32;
/// The longest withdrawal destination (an address on another chain), in bytes.
pub const MAX_WITHDRAW_DESTINATION_BYTES: usize = 64;
/// Bytes in an ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// One order to place.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// The market to trade in.
    pub market: MarketId,
    /// The client's own id for the order, unique among the account's open orders; `None`
    /// if the client does not need one.
    pub client_order_id: Option<ClientOrderId>,
    /// Buy or sell.
    pub side: Side,
    /// Limit or market.
    pub order_type: OrderType,
    /// The limit price, or for a market order the worst price accepted. At least 1.
    pub price_ticks: PriceTicks,
    /// The size. At least 1 (the market's minimum size is the ledger's check).
    pub size_lots: SizeLots,
    /// How long it may rest. A market order must be `Ioc` or `Fok`.
    pub time_in_force: TimeInForce,
    /// What happens if it would trade with the account's own resting order.
    pub self_trade: SelfTradePrevention,
}

/// Which of the account's orders to cancel.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CancelTarget {
    /// The order with this chain-wide id.
    Order(OrderId),
    /// The open order with this client order id.
    ClientOrder(ClientOrderId),
    /// Every open order in this market.
    Market(MarketId),
    /// Every open order in every market.
    All,
}

/// One step of an order batch.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum BatchLeg {
    /// Place an order.
    Place(OrderRequest),
    /// Cancel orders.
    Cancel(CancelTarget),
}

/// Placements and cancels applied in the order given.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderBatch {
    /// 1 to [`MAX_BATCH_LEGS`] legs.
    #[borsh(deserialize_with = "read_legs")]
    pub legs: Vec<BatchLeg>,
    /// If true, all legs apply or none does (the first failing leg undoes the batch); if
    /// false, each leg applies or fails on its own.
    pub atomic: bool,
}

fn read_legs<R: borsh::io::Read>(reader: &mut R) -> borsh::io::Result<Vec<BatchLeg>> {
    read_bounded_vec(reader, MAX_BATCH_LEGS, |count| {
        ValidationError::TooManyLegs {
            count,
            max: MAX_BATCH_LEGS,
        }
    })
}

/// Change the price and/or size of a resting order. A smaller size at the same price keeps
/// the order's time priority; a new price or a larger size loses it (cancel-replace).
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct ModifyOrder {
    /// The order to change.
    pub order_id: OrderId,
    /// The new limit price, if it changes. At least 1.
    pub price_ticks: Option<PriceTicks>,
    /// The new total size, if it changes. At least 1.
    pub size_lots: Option<SizeLots>,
}

/// The dead-man switch: cancel all the account's orders at the first block at or after a
/// time. A later schedule replaces an earlier one.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct ScheduleCancelAll {
    /// When to cancel; `None` clears the schedule.
    pub at: Option<TimestampMs>,
}

/// Move free funds to another account on the exchange.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The recipient (not the sending account).
    pub to: AccountId,
    /// The asset.
    pub asset: AssetId,
    /// How much, in base units; more than zero.
    pub amount: Amount,
}

/// Take free funds off the exchange. The committed receipt, with its proof, is what an
/// external bridge honours.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    /// The asset.
    pub asset: AssetId,
    /// How much, in base units; more than zero.
    pub amount: Amount,
    /// Where the bridge sends it (an address on the other chain): 1 to
    /// [`MAX_WITHDRAW_DESTINATION_BYTES`] bytes, hex in JSON.
    #[borsh(deserialize_with = "read_destination")]
    #[serde(with = "hex_vec")]
    pub destination: Vec<u8>,
}

fn read_destination<R: borsh::io::Read>(reader: &mut R) -> borsh::io::Result<Vec<u8>> {
    read_bounded_bytes(reader, MAX_WITHDRAW_DESTINATION_BYTES, |len| {
        ValidationError::DestinationTooLong {
            len,
            max: MAX_WITHDRAW_DESTINATION_BYTES,
        }
    })
}

/// The markets an agent may trade in.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketScope {
    /// Every market, including markets listed later.
    All,
    /// Only these: 1 to [`MAX_AGENT_MARKETS`] ids in strictly ascending order.
    Only(#[borsh(deserialize_with = "read_agent_markets")] Vec<MarketId>),
}

fn read_agent_markets<R: borsh::io::Read>(reader: &mut R) -> borsh::io::Result<Vec<MarketId>> {
    read_bounded_vec(reader, MAX_AGENT_MARKETS, |count| {
        ValidationError::TooManyAgentMarkets {
            count,
            max: MAX_AGENT_MARKETS,
        }
    })
}

impl MarketScope {
    /// Whether the scope includes `market`.
    pub fn allows(&self, market: MarketId) -> bool {
        match self {
            MarketScope::All => true,
            MarketScope::Only(markets) => markets.binary_search(&market).is_ok(),
        }
    }
}

/// What an agent key may do for the account.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentPolicy {
    /// The markets it may place, modify and cancel in.
    pub markets: MarketScope,
    /// The most placements and modifies it may sign per block (at least 1). Cancels are
    /// never limited, so an agent can always pull its quotes.
    pub max_orders_per_block: u32,
    /// The block time from which the approval no longer holds.
    pub expires_at: TimestampMs,
}

/// Let another key sign orders for this account within a policy. It replaces any earlier
/// policy for the same agent.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveAgent {
    /// The agent's public key (not the account itself).
    pub agent: AccountId,
    /// What it may do.
    pub policy: AgentPolicy,
}

/// Withdraw an agent's approval; it takes effect at the next block.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct RevokeAgent {
    /// The agent's public key.
    pub agent: AccountId,
}

/// Everything a transaction can do. The borsh tag is the variant's position: append new
/// variants at the end, never reorder.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Place and cancel orders (a single order is a batch of one).
    Batch(OrderBatch),
    /// Change a resting order's price or size.
    Modify(ModifyOrder),
    /// Set or clear the dead-man switch.
    ScheduleCancelAll(ScheduleCancelAll),
    /// Move funds to another account.
    Transfer(Transfer),
    /// Move funds off the exchange.
    Withdraw(Withdraw),
    /// Approve an agent key.
    ApproveAgent(ApproveAgent),
    /// Revoke an agent key.
    RevokeAgent(RevokeAgent),
}

/// The class that fixes a transaction's place in a block's canonical order: classes run in
/// ascending order, and inside a class transactions run by
/// [`crate::block::canonical_order_key`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum ExecutionClass {
    /// Transfers, withdrawals, agents, the dead-man switch.
    NonOrder = 0,
    /// Batches of cancels only.
    Cancel = 1,
    /// Batches whose placements are all post-only (with or without cancels).
    PostOnly = 2,
    /// Everything else that places or modifies orders.
    Order = 3,
}

impl Action {
    /// A short name of the action, as used in messages and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Batch(_) => "batch",
            Action::Modify(_) => "modify",
            Action::ScheduleCancelAll(_) => "schedule_cancel_all",
            Action::Transfer(_) => "transfer",
            Action::Withdraw(_) => "withdraw",
            Action::ApproveAgent(_) => "approve_agent",
            Action::RevokeAgent(_) => "revoke_agent",
        }
    }

    /// Whether an approved agent key may sign this action. Agents trade; they never move
    /// funds or manage agents.
    pub fn agent_may_sign(&self) -> bool {
        matches!(
            self,
            Action::Batch(_) | Action::Modify(_) | Action::ScheduleCancelAll(_)
        )
    }

    /// The action's class in the canonical block order.
    pub fn execution_class(&self) -> ExecutionClass {
        match self {
            Action::Batch(batch) => {
                let mut places = batch.legs.iter().filter_map(|leg| match leg {
                    BatchLeg::Place(order) => Some(order),
                    BatchLeg::Cancel(_) => None,
                });
                match places.next() {
                    None => ExecutionClass::Cancel,
                    Some(first) => {
                        let post_only =
                            |order: &OrderRequest| order.time_in_force == TimeInForce::PostOnly;
                        if post_only(first) && places.all(post_only) {
                            ExecutionClass::PostOnly
                        } else {
                            ExecutionClass::Order
                        }
                    }
                }
            }
            Action::Modify(_) => ExecutionClass::Order,
            Action::ScheduleCancelAll(_)
            | Action::Transfer(_)
            | Action::Withdraw(_)
            | Action::ApproveAgent(_)
            | Action::RevokeAgent(_) => ExecutionClass::NonOrder,
        }
    }

    /// Check the action's structure for `account` (the account whose funds it moves).
    pub fn validate(&self, account: &AccountId) -> Result<(), ValidationError> {
        match self {
            Action::Batch(batch) => {
                if batch.legs.is_empty() {
                    return Err(ValidationError::EmptyBatch);
                }
                if batch.legs.len() > MAX_BATCH_LEGS {
                    return Err(ValidationError::TooManyLegs {
                        count: batch.legs.len(),
                        max: MAX_BATCH_LEGS,
                    });
                }
                for (leg, step) in batch.legs.iter().enumerate() {
                    if let BatchLeg::Place(order) = step {
                        if order.price_ticks.is_zero() {
                            return Err(ValidationError::ZeroPrice { leg });
                        }
                        if order.size_lots.is_zero() {
                            return Err(ValidationError::ZeroSize { leg });
                        }
                        if order.order_type == OrderType::Market
                            && !matches!(order.time_in_force, TimeInForce::Ioc | TimeInForce::Fok)
                        {
                            return Err(ValidationError::MarketOrderMayRest { leg });
                        }
                    }
                }
                Ok(())
            }
            Action::Modify(modify) => match (modify.price_ticks, modify.size_lots) {
                (None, None) => Err(ValidationError::ModifyChangesNothing),
                (Some(price), _) if price.is_zero() => Err(ValidationError::ModifyZeroPrice),
                (_, Some(size)) if size.is_zero() => Err(ValidationError::ModifyZeroSize),
                _ => Ok(()),
            },
            Action::ScheduleCancelAll(_) => Ok(()),
            Action::Transfer(transfer) => {
                if transfer.amount.is_zero() {
                    return Err(ValidationError::ZeroAmount);
                }
                if transfer.to == *account {
                    return Err(ValidationError::TransferToSelf);
                }
                Ok(())
            }
            Action::Withdraw(withdraw) => {
                if withdraw.amount.is_zero() {
                    return Err(ValidationError::ZeroAmount);
                }
                if withdraw.destination.is_empty() {
                    return Err(ValidationError::EmptyDestination);
                }
                if withdraw.destination.len() > MAX_WITHDRAW_DESTINATION_BYTES {
                    return Err(ValidationError::DestinationTooLong {
                        len: withdraw.destination.len(),
                        max: MAX_WITHDRAW_DESTINATION_BYTES,
                    });
                }
                Ok(())
            }
            Action::ApproveAgent(approve) => {
                if approve.agent == *account {
                    return Err(ValidationError::AgentIsAccount);
                }
                if approve.policy.max_orders_per_block == 0 {
                    return Err(ValidationError::ZeroAgentOrderRate);
                }
                if let MarketScope::Only(markets) = &approve.policy.markets {
                    if markets.is_empty() {
                        return Err(ValidationError::NoAgentMarkets);
                    }
                    if markets.len() > MAX_AGENT_MARKETS {
                        return Err(ValidationError::TooManyAgentMarkets {
                            count: markets.len(),
                            max: MAX_AGENT_MARKETS,
                        });
                    }
                    if markets.windows(2).any(|pair| pair[0] >= pair[1]) {
                        return Err(ValidationError::AgentMarketsNotAscending);
                    }
                }
                Ok(())
            }
            Action::RevokeAgent(_) => Ok(()),
        }
    }
}

/// The unsigned transaction: what the id covers and the signer signs.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// The chain it is for; part of the signed bytes, so it cannot be replayed elsewhere.
    pub chain_id: ChainId,
    /// The account whose funds and orders it acts on.
    pub account: AccountId,
    /// The key that signs: the account itself, or an agent the account approved.
    pub signer: AccountId,
    /// Replay protection, per signer: larger than the smallest of the signer's 64 highest
    /// used nonces and not used before.
    pub nonce: u64,
    /// The last block time at which it may be included.
    pub expires_at: TimestampMs,
    /// What it does.
    pub action: Action,
}

impl Transaction {
    /// The canonical borsh bytes.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("bug: borsh writing to a Vec failed")
    }

    /// The transaction id: BLAKE3 under [`Domain::Transaction`] of the canonical unsigned
    /// bytes.
    pub fn hash(&self) -> Hash {
        Hash::of(Domain::Transaction, &[&self.encode()])
    }

    /// The 32 bytes the signer signs: see [`sign::signing_message`].
    pub fn signing_message(&self) -> Hash {
        sign::signing_message(self.chain_id, &self.hash())
    }

    /// Check every structural rule that needs no chain state: list limits, zero sizes and
    /// amounts, a market order that may rest, an agent signing what only the account may.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.signer != self.account && !self.action.agent_may_sign() {
            return Err(ValidationError::AgentNotAllowed {
                action: self.action.name(),
            });
        }
        self.action.validate(&self.account)
    }

    /// Whether the signer is an agent rather than the account itself.
    pub fn is_signed_by_agent(&self) -> bool {
        self.signer != self.account
    }
}

/// A transaction with its signer's ed25519 signature. In JSON the signature is hex.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTransaction {
    /// The signed transaction.
    pub tx: Transaction,
    /// The signature of [`Transaction::signing_message`] by `tx.signer`.
    #[serde(with = "hex_64")]
    pub signature: [u8; SIGNATURE_BYTES],
}

impl SignedTransaction {
    /// Decode bytes from a client or peer: length cap, canonical borsh, no trailing bytes,
    /// then [`Transaction::validate`]. The signature is not checked here (see
    /// [`SignedTransaction::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<SignedTransaction, DecodeError> {
        let signed: SignedTransaction = codec::decode_bounded(bytes, MAX_TX_BYTES)?;
        signed.tx.validate()?;
        Ok(signed)
    }

    /// The canonical borsh bytes: the transaction's bytes followed by the 64 signature bytes.
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("bug: borsh writing to a Vec failed")
    }

    /// The transaction id (which does not cover the signature).
    pub fn hash(&self) -> Hash {
        self.tx.hash()
    }

    /// Check the signature against the signer's key by the chain's one signature rule
    /// (see [`crate::sign`]): the signer must be a curve point
    /// ([`SignatureError::InvalidKey`]) not of small order ([`SignatureError::WeakKey`]),
    /// and the signature over [`Transaction::signing_message`] must pass ZIP-215
    /// ([`SignatureError::BadSignature`]). Deterministic: every validator reaches the same
    /// verdict, and a batch verifier gives exactly these results item by item.
    pub fn verify(&self) -> Result<(), SignatureError> {
        let key = self.tx.signer.signer_key()?;
        self.verify_with_signer_key(&key)
    }

    /// [`SignedTransaction::verify`] with the signer's key already decompressed (by
    /// [`AccountId::verifying_key`]). The key must be the signer's. Costs one key
    /// decompression more than [`SignedTransaction::verify_with_signer_key`].
    pub fn verify_with_key(&self, key: &VerifyingKey) -> Result<(), SignatureError> {
        if key.as_bytes() != &self.tx.signer.0 {
            return Err(SignatureError::KeyMismatch {
                signer: self.tx.signer,
            });
        }
        sign::verify_signature(key, self.tx.signing_message().as_bytes(), &self.signature)
    }

    /// [`SignedTransaction::verify`] with the signer's checked key (the node keeps one per
    /// signer). The key must be the signer's ([`SignatureError::KeyMismatch`] otherwise).
    pub fn verify_with_signer_key(&self, key: &SignerKey) -> Result<(), SignatureError> {
        if key.account_id() != self.tx.signer {
            return Err(SignatureError::KeyMismatch {
                signer: self.tx.signer,
            });
        }
        key.verify(self.tx.signing_message().as_bytes(), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::Keypair;

    fn keypair(seed: u8) -> Keypair {
        Keypair::from_seed([seed; 32])
    }

    fn order() -> OrderRequest {
        OrderRequest {
            market: MarketId(1),
            client_order_id: Some(ClientOrderId(9)),
            side: Side::Buy,
            order_type: OrderType::Limit,
            price_ticks: PriceTicks(100),
            size_lots: SizeLots(5),
            time_in_force: TimeInForce::Gtc,
            self_trade: SelfTradePrevention::CancelResting,
        }
    }

    fn tx(action: Action) -> Transaction {
        let account = keypair(1).account_id();
        Transaction {
            chain_id: ChainId(1),
            account,
            signer: account,
            nonce: 1,
            expires_at: TimestampMs(1_000),
            action,
        }
    }

    fn batch(legs: Vec<BatchLeg>) -> Action {
        Action::Batch(OrderBatch { legs, atomic: true })
    }

    #[test]
    fn batch_rules() {
        assert_eq!(tx(batch(vec![BatchLeg::Place(order())])).validate(), Ok(()));
        assert_eq!(
            tx(batch(vec![])).validate(),
            Err(ValidationError::EmptyBatch)
        );
        let legs = vec![BatchLeg::Cancel(CancelTarget::All); MAX_BATCH_LEGS + 1];
        assert_eq!(
            tx(batch(legs)).validate(),
            Err(ValidationError::TooManyLegs {
                count: MAX_BATCH_LEGS + 1,
                max: MAX_BATCH_LEGS
            })
        );
        let mut zero = order();
        zero.size_lots = SizeLots(0);
        assert_eq!(
            tx(batch(vec![
                BatchLeg::Cancel(CancelTarget::All),
                BatchLeg::Place(zero)
            ]))
            .validate(),
            Err(ValidationError::ZeroSize { leg: 1 })
        );
        let mut zero = order();
        zero.price_ticks = PriceTicks(0);
        assert_eq!(
            tx(batch(vec![BatchLeg::Place(zero)])).validate(),
            Err(ValidationError::ZeroPrice { leg: 0 })
        );
        let mut market = order();
        market.order_type = OrderType::Market;
        assert_eq!(
            tx(batch(vec![BatchLeg::Place(market)])).validate(),
            Err(ValidationError::MarketOrderMayRest { leg: 0 })
        );
        market.time_in_force = TimeInForce::Fok;
        assert_eq!(tx(batch(vec![BatchLeg::Place(market)])).validate(), Ok(()));
    }

    #[test]
    fn modify_rules() {
        let modify = |price: Option<u64>, size: Option<u64>| {
            tx(Action::Modify(ModifyOrder {
                order_id: OrderId(3),
                price_ticks: price.map(PriceTicks),
                size_lots: size.map(SizeLots),
            }))
            .validate()
        };
        assert_eq!(modify(Some(1), None), Ok(()));
        assert_eq!(modify(None, Some(1)), Ok(()));
        assert_eq!(
            modify(None, None),
            Err(ValidationError::ModifyChangesNothing)
        );
        assert_eq!(
            modify(Some(0), Some(1)),
            Err(ValidationError::ModifyZeroPrice)
        );
        assert_eq!(
            modify(Some(1), Some(0)),
            Err(ValidationError::ModifyZeroSize)
        );
    }

    #[test]
    fn funds_rules() {
        let me = keypair(1).account_id();
        let other = keypair(2).account_id();
        let transfer = |to, amount| {
            tx(Action::Transfer(Transfer {
                to,
                asset: AssetId(0),
                amount: Amount(amount),
            }))
            .validate()
        };
        assert_eq!(transfer(other, 1), Ok(()));
        assert_eq!(transfer(other, 0), Err(ValidationError::ZeroAmount));
        assert_eq!(transfer(me, 1), Err(ValidationError::TransferToSelf));
        let withdraw = |destination: Vec<u8>, amount| {
            tx(Action::Withdraw(Withdraw {
                asset: AssetId(0),
                amount: Amount(amount),
                destination,
            }))
            .validate()
        };
        assert_eq!(withdraw(vec![1; 20], 1), Ok(()));
        assert_eq!(withdraw(vec![1; 20], 0), Err(ValidationError::ZeroAmount));
        assert_eq!(withdraw(vec![], 1), Err(ValidationError::EmptyDestination));
        assert!(matches!(
            withdraw(vec![1; MAX_WITHDRAW_DESTINATION_BYTES + 1], 1),
            Err(ValidationError::DestinationTooLong { .. })
        ));
    }

    #[test]
    fn agent_rules() {
        let me = keypair(1).account_id();
        let agent = keypair(2).account_id();
        let approve = |agent, markets, rate| {
            tx(Action::ApproveAgent(ApproveAgent {
                agent,
                policy: AgentPolicy {
                    markets,
                    max_orders_per_block: rate,
                    expires_at: TimestampMs(5),
                },
            }))
            .validate()
        };
        let only = |ids: &[u32]| MarketScope::Only(ids.iter().copied().map(MarketId).collect());
        assert_eq!(approve(agent, MarketScope::All, 1), Ok(()));
        assert_eq!(approve(agent, only(&[1, 2, 9]), 1), Ok(()));
        assert_eq!(
            approve(me, MarketScope::All, 1),
            Err(ValidationError::AgentIsAccount)
        );
        assert_eq!(
            approve(agent, MarketScope::All, 0),
            Err(ValidationError::ZeroAgentOrderRate)
        );
        assert_eq!(
            approve(agent, only(&[]), 1),
            Err(ValidationError::NoAgentMarkets)
        );
        assert_eq!(
            approve(agent, only(&[2, 1]), 1),
            Err(ValidationError::AgentMarketsNotAscending)
        );
        assert_eq!(
            approve(agent, only(&[2, 2]), 1),
            Err(ValidationError::AgentMarketsNotAscending)
        );
        let many: Vec<u32> = (0..=MAX_AGENT_MARKETS as u32).collect();
        assert!(matches!(
            approve(agent, only(&many), 1),
            Err(ValidationError::TooManyAgentMarkets { .. })
        ));
        assert!(only(&[1, 2, 9]).allows(MarketId(9)));
        assert!(!only(&[1, 2, 9]).allows(MarketId(3)));
        assert!(MarketScope::All.allows(MarketId(3)));
    }

    #[test]
    fn agents_may_only_trade() {
        let agent = keypair(2).account_id();
        let mut trade = tx(batch(vec![BatchLeg::Cancel(CancelTarget::Market(
            MarketId(1),
        ))]));
        trade.signer = agent;
        assert!(trade.is_signed_by_agent());
        assert_eq!(trade.validate(), Ok(()));
        let mut switch = tx(Action::ScheduleCancelAll(ScheduleCancelAll { at: None }));
        switch.signer = agent;
        assert_eq!(switch.validate(), Ok(()));
        let mut revoke = tx(Action::RevokeAgent(RevokeAgent { agent }));
        revoke.signer = agent;
        assert_eq!(
            revoke.validate(),
            Err(ValidationError::AgentNotAllowed {
                action: "revoke_agent"
            })
        );
        let mut transfer = tx(Action::Transfer(Transfer {
            to: keypair(3).account_id(),
            asset: AssetId(0),
            amount: Amount(1),
        }));
        transfer.signer = agent;
        assert!(matches!(
            transfer.validate(),
            Err(ValidationError::AgentNotAllowed { .. })
        ));
    }

    #[test]
    fn execution_classes() {
        let cancel = BatchLeg::Cancel(CancelTarget::Order(OrderId(1)));
        let mut post = order();
        post.time_in_force = TimeInForce::PostOnly;
        let class = |legs| tx(batch(legs)).action.execution_class();
        assert_eq!(class(vec![cancel]), ExecutionClass::Cancel);
        assert_eq!(
            class(vec![cancel, BatchLeg::Place(post)]),
            ExecutionClass::PostOnly
        );
        assert_eq!(
            class(vec![BatchLeg::Place(post), BatchLeg::Place(order())]),
            ExecutionClass::Order
        );
        assert_eq!(
            tx(Action::ScheduleCancelAll(ScheduleCancelAll {
                at: Some(TimestampMs(1))
            }))
            .action
            .execution_class(),
            ExecutionClass::NonOrder
        );
        assert!(ExecutionClass::NonOrder < ExecutionClass::Cancel);
        assert!(ExecutionClass::PostOnly < ExecutionClass::Order);
    }

    #[test]
    fn sign_verify_and_ids() {
        let key = keypair(1);
        let unsigned = tx(batch(vec![BatchLeg::Place(order())]));
        let signed = key.sign(unsigned.clone()).unwrap();
        assert_eq!(signed.verify(), Ok(()));
        assert_eq!(signed.verify_with_key(&key.verifying_key()), Ok(()));
        assert!(matches!(
            signed.verify_with_key(&keypair(2).verifying_key()),
            Err(SignatureError::KeyMismatch { .. })
        ));
        let signer_key = key.account_id().signer_key().unwrap();
        assert_eq!(signed.verify_with_signer_key(&signer_key), Ok(()));
        assert_eq!(
            signed.verify_with_signer_key(&keypair(2).account_id().signer_key().unwrap()),
            Err(SignatureError::KeyMismatch {
                signer: key.account_id()
            })
        );
        // The id does not depend on the signature.
        let mut other_signature = signed.clone();
        other_signature.signature[0] ^= 1;
        assert_eq!(other_signature.hash(), signed.hash());
        assert!(other_signature.verify().is_err());
        // A different chain id is a different message.
        let mut replayed = signed.clone();
        replayed.tx.chain_id = ChainId(2);
        assert!(matches!(
            replayed.verify(),
            Err(SignatureError::BadSignature { .. })
        ));
        // Signing with a key that is not the signer's is refused.
        assert!(matches!(
            keypair(2).sign(unsigned),
            Err(SignatureError::WrongSigningKey { .. })
        ));
    }

    #[test]
    fn decode_checks_everything() {
        let signed = keypair(1)
            .sign(tx(batch(vec![BatchLeg::Place(order())])))
            .unwrap();
        let bytes = signed.encode();
        assert_eq!(SignedTransaction::decode(&bytes), Ok(signed.clone()));
        // The signed encoding is the unsigned one followed by the signature.
        assert_eq!(
            &bytes[..bytes.len() - SIGNATURE_BYTES],
            signed.tx.encode().as_slice()
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            SignedTransaction::decode(&trailing),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
        assert!(matches!(
            SignedTransaction::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Malformed { .. })
        ));
        assert_eq!(
            SignedTransaction::decode(&vec![0; MAX_TX_BYTES + 1]),
            Err(DecodeError::TooLarge {
                len: MAX_TX_BYTES + 1,
                max: MAX_TX_BYTES
            })
        );
        // Structurally invalid but well-formed bytes give the typed validation error.
        let empty = keypair(1).sign(tx(batch(vec![]))).unwrap();
        assert_eq!(
            SignedTransaction::decode(&empty.encode()),
            Err(DecodeError::Invalid(ValidationError::EmptyBatch))
        );
        // Too many legs is caught while decoding, from the length prefix alone.
        let legs = vec![BatchLeg::Cancel(CancelTarget::All); MAX_BATCH_LEGS + 1];
        let long = keypair(1).sign(tx(batch(legs))).unwrap();
        assert_eq!(
            SignedTransaction::decode(&long.encode()),
            Err(DecodeError::Invalid(ValidationError::TooManyLegs {
                count: MAX_BATCH_LEGS + 1,
                max: MAX_BATCH_LEGS
            }))
        );
    }

    #[test]
    fn largest_valid_transaction_fits_the_cap() {
        let mut big_order = order();
        big_order.time_in_force = TimeInForce::Gtt {
            expires_at: TimestampMs(u64::MAX),
        };
        let largest_leg = BatchLeg::Place(big_order);
        let batch = tx(batch(vec![largest_leg; MAX_BATCH_LEGS]));
        let agent = tx(Action::ApproveAgent(ApproveAgent {
            agent: keypair(2).account_id(),
            policy: AgentPolicy {
                markets: MarketScope::Only((0..MAX_AGENT_MARKETS as u32).map(MarketId).collect()),
                max_orders_per_block: 1,
                expires_at: TimestampMs(1),
            },
        }));
        let withdraw = tx(Action::Withdraw(Withdraw {
            asset: AssetId(0),
            amount: Amount(1),
            destination: vec![7; MAX_WITHDRAW_DESTINATION_BYTES],
        }));
        for unsigned in [batch, agent, withdraw] {
            assert_eq!(unsigned.validate(), Ok(()));
            let signed = keypair(1).sign(unsigned).unwrap();
            let len = signed.encode().len();
            assert!(len <= MAX_TX_BYTES, "{len} bytes");
            assert_eq!(SignedTransaction::decode(&signed.encode()), Ok(signed));
        }
    }

    #[test]
    fn json_is_friendly() {
        let signed = keypair(1)
            .sign(tx(batch(vec![BatchLeg::Place(order())])))
            .unwrap();
        let json = serde_json::to_value(&signed).unwrap();
        assert_eq!(json["signature"].as_str().unwrap().len(), 128);
        assert_eq!(json["tx"]["account"].as_str().unwrap().len(), 64);
        assert_eq!(
            json["tx"]["action"]["batch"]["legs"][0]["place"]["side"],
            "buy"
        );
        let back: SignedTransaction = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, signed);
        let mut extra = json;
        extra["tx"]["surprise"] = serde_json::Value::Bool(true);
        assert!(serde_json::from_value::<SignedTransaction>(extra).is_err());
        let withdraw = Withdraw {
            asset: AssetId(0),
            amount: Amount(5),
            destination: vec![0xab, 0xcd],
        };
        let json = serde_json::to_value(&withdraw).unwrap();
        assert_eq!(json["destination"], "abcd");
        assert_eq!(json["amount"], "5");
    }
}
