//! What a validator writes to its write-ahead log, and reads back after a restart.

use crate::certificate::PolkaCertificate;
use crate::messages::{ConsensusValue, DecodeError, Message, decode_bounded, encode};
use crate::types::Height;
use borsh::{BorshDeserialize, BorshSerialize};

/// One record of the write-ahead log ([`Effect::Persist`](crate::Effect::Persist)).
///
/// The log of the current height is all [`Consensus::restore`](crate::Consensus::restore)
/// needs: the signed messages keep a restarted validator from signing anything
/// conflicting and give back its round, step and lock; the valid value lets it still
/// re-propose the value others may be locked on, with the polka that justifies it.
///
/// The borsh tag is the variant's position (0, 1): never reorder the variants.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum WalEntry<V> {
    /// A proposal or vote this validator signed, logged before it is sent.
    Signed(Message<V>),
    /// The valid value changed (Alg.1 L42-43): the value, and the 2f+1 prevotes for it in
    /// its round (the round is the polka's).
    Valid {
        /// `validValue`.
        value: V,
        /// The polka of `validRound`.
        polka: PolkaCertificate,
    },
}

impl<V: ConsensusValue> WalEntry<V> {
    /// The height the entry belongs to.
    pub fn height(&self) -> Height {
        match self {
            WalEntry::Signed(message) => message.height(),
            WalEntry::Valid { polka, .. } => polka.height,
        }
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decode a stored entry, refusing anything longer than `max_bytes` before decoding
    /// (the host's proposal size limit plus a certificate).
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<WalEntry<V>, DecodeError> {
        decode_bounded(bytes, max_bytes)
    }
}
