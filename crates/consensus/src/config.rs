//! Timeouts and memory bounds of the consensus core.

use crate::types::{ChainId, Round, TimeoutKind};

/// A step timeout that grows linearly with the round: `base_ms + delta_ms × round`, so that
/// after the network stabilises some round is long enough for every message to arrive
/// (the partial-synchrony assumption of Alg.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepTimeout {
    /// Duration in round 0.
    pub base_ms: u64,
    /// Added per round.
    pub delta_ms: u64,
}

impl StepTimeout {
    /// The duration in `round`, saturating at `u64::MAX` (which no round reaches).
    pub fn duration_ms(&self, round: Round) -> u64 {
        self.delta_ms
            .saturating_mul(u64::from(round.0))
            .saturating_add(self.base_ms)
    }
}

/// Configuration of a [`Consensus`](crate::Consensus) instance. Every validator of a chain
/// should run the same timeouts; the bounds only limit this node's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusConfig {
    /// The chain's id, in every signed message.
    pub chain_id: ChainId,
    /// `timeoutPropose(round)` (Alg.1 L21, L57). Must exceed `propose_batch_ms` plus the
    /// time to build, send and validate a block, or round 0 proposals will miss it.
    pub propose: StepTimeout,
    /// `timeoutPrevote(round)` (Alg.1 L35, L61).
    pub prevote: StepTimeout,
    /// `timeoutPrecommit(round)` (Alg.1 L48, L65).
    pub precommit: StepTimeout,
    /// How long the proposer's host may wait for transactions before answering
    /// [`Effect::RequestValue`](crate::Effect::RequestValue) (carried in that effect).
    pub propose_batch_ms: u64,
    /// Interval at which this validator re-sends its own messages of the current round
    /// while the round lasts. Zero disables it (only for tests of a lossless network:
    /// Algorithm 1 needs every message to arrive eventually).
    pub rebroadcast_ms: u64,
    /// Messages for heights up to this many above the current one are verified and kept
    /// until that height starts; further ones are rejected (the host should sync).
    pub max_height_ahead: u64,
    /// Messages for rounds up to this many above the current round are kept; for further
    /// rounds only the sender's highest round is noted (for the round-skip rule).
    pub max_round_ahead: u32,
    /// Rounds more than this many below the current round are forgotten (except the locked
    /// and valid rounds), and messages for them rejected.
    pub max_rounds_behind: u32,
    /// Messages kept per validator for future heights; the oldest is dropped first.
    pub buffered_messages_per_validator: usize,
}

impl ConsensusConfig {
    /// Defaults for `chain_id`: timeouts in the order of a second for a WAN of validators.
    pub fn new(chain_id: ChainId) -> ConsensusConfig {
        ConsensusConfig {
            chain_id,
            propose: StepTimeout {
                base_ms: 1_000,
                delta_ms: 500,
            },
            prevote: StepTimeout {
                base_ms: 500,
                delta_ms: 250,
            },
            precommit: StepTimeout {
                base_ms: 500,
                delta_ms: 250,
            },
            propose_batch_ms: 50,
            rebroadcast_ms: 1_000,
            max_height_ahead: 2,
            max_round_ahead: 8,
            max_rounds_behind: 16,
            buffered_messages_per_validator: 8,
        }
    }

    /// The duration of the `kind` timer in `round`.
    pub fn timeout_ms(&self, kind: TimeoutKind, round: Round) -> u64 {
        match kind {
            TimeoutKind::Propose => self.propose.duration_ms(round),
            TimeoutKind::Prevote => self.prevote.duration_ms(round),
            TimeoutKind::Precommit => self.precommit.duration_ms(round),
            TimeoutKind::Rebroadcast => self.rebroadcast_ms,
        }
    }

    /// Check the bounds make sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.propose.base_ms == 0 || self.prevote.base_ms == 0 || self.precommit.base_ms == 0 {
            return Err(ConfigError::ZeroTimeout);
        }
        if self.max_round_ahead == 0 {
            return Err(ConfigError::ZeroBound {
                field: "max_round_ahead",
            });
        }
        if self.buffered_messages_per_validator == 0 && self.max_height_ahead > 0 {
            return Err(ConfigError::ZeroBound {
                field: "buffered_messages_per_validator",
            });
        }
        Ok(())
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A step timeout of zero in round 0 would fire before any message could arrive.
    #[error("step timeouts must have a positive base duration")]
    ZeroTimeout,
    /// A bound of zero would stall consensus.
    #[error("{field} must be positive")]
    ZeroBound {
        /// The field.
        field: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_grow_linearly_and_saturate() {
        let config = ConsensusConfig::new(ChainId(7));
        assert_eq!(config.timeout_ms(TimeoutKind::Propose, Round(0)), 1_000);
        assert_eq!(config.timeout_ms(TimeoutKind::Propose, Round(3)), 2_500);
        assert_eq!(config.timeout_ms(TimeoutKind::Prevote, Round(2)), 1_000);
        assert_eq!(config.timeout_ms(TimeoutKind::Precommit, Round(4)), 1_500);
        let huge = StepTimeout {
            base_ms: 10,
            delta_ms: u64::MAX,
        };
        assert_eq!(huge.duration_ms(Round(2)), u64::MAX);
        assert!(config.validate().is_ok());
        let mut bad = config.clone();
        bad.prevote.base_ms = 0;
        assert_eq!(bad.validate(), Err(ConfigError::ZeroTimeout));
        let mut bad = config;
        bad.max_round_ahead = 0;
        assert!(matches!(bad.validate(), Err(ConfigError::ZeroBound { .. })));
    }
}
