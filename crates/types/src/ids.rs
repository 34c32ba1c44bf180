//! Identifiers: accounts, assets, markets, orders.

use crate::hash::HexError;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An account: the 32 bytes of its ed25519 public key.
///
/// Only the holder of the matching secret key (or an agent key the account approved) can
/// move the account's funds.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct AccountId(pub [u8; 32]);

impl AccountId {
    /// Lower-case hex of the public key, as account ids cross the API.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex characters.
    pub fn from_hex(text: &str) -> Result<AccountId, HexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| HexError {
            expected_bytes: 32,
            got_chars: text.len(),
        })?;
        Ok(AccountId(out))
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as Deserialize>::deserialize(d)?;
        AccountId::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

macro_rules! small_id {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug,
            BorshSerialize, BorshDeserialize, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

small_id!(
    /// A dense number the ledger gives an account when it first holds funds, in order of
    /// first appearance (deterministic on every validator). The engine keys order owners by
    /// it so a self-trade check compares one word instead of 32 bytes.
    AccountIndex(u64)
);
small_id!(
    /// The chain a transaction or block belongs to. It is part of every signed message, so a
    /// transaction signed for a test network can never be replayed on another chain.
    ChainId(u64)
);
small_id!(
    /// An asset listed at genesis (for example 0 = USDC, 1 = BTC).
    AssetId(u32)
);
small_id!(
    /// A market listed at genesis.
    MarketId(u32)
);
small_id!(
    /// An order's chain-wide id, assigned by the ledger in execution order.
    OrderId(u64)
);
small_id!(
    /// The id a client chose for its order; unique among the account's open orders, so a
    /// bot that resubmits after a restart can ask for its order by this id.
    ClientOrderId(u64)
);
