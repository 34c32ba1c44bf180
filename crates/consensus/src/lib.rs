//! Decide one block per height with Tendermint's BFT round, as a pure state machine.
//!
//! [`Consensus`] implements Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip
//! on BFT consensus" (2018): heights and rounds, the propose/prevote/precommit steps,
//! locked and valid values, timeouts that grow linearly with the round, and a proposer
//! rotating over the validator set by voting power. Each transition cites the pseudocode
//! lines it implements (`Alg.1 Lx`).
//!
//! # Design
//! The core is sans-IO in the style of `quinn-proto` and malachite: the host feeds
//! [`Input`]s (messages, timer firings, validation verdicts, values to propose, synced
//! decisions) to [`Consensus::handle`] and carries out the returned [`Effect`]s in order
//! (persist, broadcast, schedule a timer, validate a value, commit a decision, record
//! evidence). The core never reads a clock, never does IO, and uses no randomness, so the
//! node and the deterministic simulator drive the very same code.
//!
//! - **Values are opaque.** The core is generic over [`ConsensusValue`] and only uses its
//!   id (the exchange's [`dex_types::Block`] implements it in [`block`]). Whether a value
//!   is valid (parent, timestamp, execution roots) is the host's verdict, asked with
//!   [`Effect::ValidateProposal`]; the core never prevotes a value before the host called
//!   it valid, and prevotes nil for an invalid one.
//! - **No double signing, even across crashes.** Every own proposal and vote, and every new
//!   valid value, is returned as [`Effect::Persist`] of a [`WalEntry`] before it is sent;
//!   after a restart, [`Consensus::restore`] rebuilds the round, step, lock and valid value
//!   from that log and never signs anything conflicting with it.
//! - **Bounded memory.** Messages are kept for a window of rounds and heights
//!   ([`ConsensusConfig`]); at most one vote per validator, round and type counts, the first
//!   conflicting one becomes [`Evidence`], and any further one is dropped.
//! - **Batching is the host's.** On becoming proposer the core emits
//!   [`Effect::RequestValue`] carrying the batching interval; the host answers with
//!   [`Input::ProposeValue`] once its block is full or the interval has passed. The propose
//!   timeout runs meanwhile, so a host that never answers cannot stall the round.
//! - **Retransmission.** Algorithm 1 assumes every message is eventually delivered. On a
//!   timer ([`ConsensusConfig::rebroadcast_ms`]) the core re-sends its own messages of the
//!   current round, and sends validators seen in an earlier round its own messages of that
//!   round ([`Effect::SendTo`]). A re-proposal carries the [`PolkaCertificate`] of its
//!   valid round, so validators that lost those prevotes can still accept it. A node that
//!   fell a height behind is answered by its peers' hosts with the decided value and its
//!   [`CommitCertificate`] ([`Input::Decided`]); [`ConsensusError::HeightBehind`] tells a
//!   host when a sender needs that.
//!
//! Proposer selection is documented in [`validators`]; signing and encoding in [`messages`].
//!
//! # Features
//! - `mutation-hooks` (off by default): adds `Consensus::set_ignore_lock`, which makes the
//!   core ignore its lock. It exists only for the simulator's self-test (`sim/`), which
//!   shows that its safety checks catch a broken core; never enable it in a node.
#![forbid(unsafe_code)]

pub mod block;
pub mod certificate;
pub mod config;
pub mod evidence;
mod keeper;
pub mod machine;
pub mod messages;
pub mod types;
pub mod validators;
pub mod wal;

#[cfg(test)]
mod testkit;

pub use certificate::{
    CertificateError, CommitCertificate, CommitSignature, MAX_CERTIFICATE_BYTES, PolkaCertificate,
};
pub use config::{ConfigError, ConsensusConfig, StepTimeout};
pub use evidence::{Evidence, EvidenceError, MAX_EVIDENCE_BYTES};
pub use machine::{Consensus, ConsensusError, Effect, Input, SetupError};
pub use messages::{
    ConsensusValue, DecodeError, MAX_SIGNED_PROPOSAL_BYTES, MAX_VOTE_BYTES, Message, MessageError,
    Proposal, ProposalMessage, SignedProposal, SignedVote, VerifiedMessage, Vote,
};
pub use types::{
    ChainId, Height, Round, SignatureBytes, Step, Timeout, TimeoutKind, ValidatorIndex, VoteType,
};
pub use validators::{MAX_VALIDATORS, Validator, ValidatorSet, ValidatorSetError};
pub use wal::WalEntry;

/// Results of handling consensus input.
pub type Result<T, E = ConsensusError> = std::result::Result<T, E>;
