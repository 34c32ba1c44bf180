//! The small vocabulary of the round: heights, rounds, steps, vote types, timeouts, and the
//! signature bytes carried on the wire.

use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;

/// The chain a message belongs to (the same id transactions and block headers carry). It is
/// in every signed consensus message, so a vote of one network never counts on another.
pub use dex_types::ChainId;

/// A consensus instance: height `h` decides block `h`.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Debug,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Height(pub u64);

impl Height {
    /// The height after this one.
    ///
    /// # Panics
    /// With "bug: ..." at `u64::MAX`, which no chain reaches.
    pub fn next(self) -> Height {
        Height(self.0.checked_add(1).expect("bug: height overflow"))
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A round inside one height. The paper's `-1` ("no round") is `Option<Round>::None`.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Debug,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Round(pub u32);

impl Round {
    /// The round after this one.
    ///
    /// # Panics
    /// With "bug: ..." at `u32::MAX`: timeouts grow with the round, so reaching it would
    /// take longer than any chain lives.
    pub fn next(self) -> Round {
        Round(self.0.checked_add(1).expect("bug: round overflow"))
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A validator's position in the [`ValidatorSet`](crate::ValidatorSet) (which is sorted by
/// public key, so every node numbers the validators the same way).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Debug,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct ValidatorIndex(pub u32);

impl ValidatorIndex {
    /// The index as a `usize` for slice access.
    pub fn as_usize(self) -> usize {
        // u32 always fits in usize on the 32- and 64-bit targets the node supports.
        self.0 as usize
    }
}

impl fmt::Display for ValidatorIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The two kinds of vote. The discriminants are part of the signed bytes.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, BorshSerialize, BorshDeserialize,
)]
#[borsh(use_discriminant = true)]
pub enum VoteType {
    /// First-stage vote: "this proposal is valid and I am free to vote for it".
    Prevote = 1,
    /// Second-stage vote: "I saw 2f+1 prevotes for it and locked on it".
    Precommit = 2,
}

/// The step of a round (Alg.1 L4). Ordered so that `step >= Step::Prevote` reads as in the paper.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Step {
    /// Waiting for the round's proposal.
    Propose,
    /// Prevoted; waiting for 2f+1 prevotes.
    Prevote,
    /// Precommitted; waiting for 2f+1 precommits.
    Precommit,
}

/// Which timer fired.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, BorshSerialize, BorshDeserialize,
)]
#[borsh(use_discriminant = true)]
pub enum TimeoutKind {
    /// `OnTimeoutPropose` (Alg.1 L57): no acceptable proposal in time, prevote nil.
    Propose = 0,
    /// `OnTimeoutPrevote` (Alg.1 L61): 2f+1 prevotes but no polka in time, precommit nil.
    Prevote = 1,
    /// `OnTimeoutPrecommit` (Alg.1 L65): 2f+1 precommits but no decision in time, next round.
    Precommit = 2,
    /// Re-send this validator's own messages of the current round, so that a lost message
    /// cannot stall a round forever (Algorithm 1 assumes reliable gossip; this provides the
    /// retransmission part of it).
    Rebroadcast = 3,
}

/// A timer the host must fire back as [`Input::Timeout`](crate::Input::Timeout) after the
/// duration given with it. A timeout for an old height, round or step is ignored, so the
/// host never needs to cancel one.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, BorshSerialize, BorshDeserialize,
)]
pub struct Timeout {
    /// Height the timer belongs to.
    pub height: Height,
    /// Round the timer belongs to.
    pub round: Round,
    /// Which step's timer it is.
    pub kind: TimeoutKind,
}

/// An ed25519 signature as it travels on the wire (`R ‖ s`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct SignatureBytes(pub [u8; 64]);

impl SignatureBytes {
    /// The dalek signature for verification.
    pub fn to_signature(&self) -> ed25519_dalek::Signature {
        ed25519_dalek::Signature::from_bytes(&self.0)
    }
}

impl From<ed25519_dalek::Signature> for SignatureBytes {
    fn from(signature: ed25519_dalek::Signature) -> Self {
        SignatureBytes(signature.to_bytes())
    }
}

impl fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig(")?;
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, ")")
    }
}
