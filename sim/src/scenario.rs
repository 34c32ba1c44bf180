//! What a run simulates: the validators, the fault mix, the phases.
//!
//! A run has a **fault phase** (`[0, fault_phase_ms)`) in which the mix's network and node
//! faults happen, then a **calm phase** in which every fault has healed (partitions
//! closed, crashed nodes restarted, slow node back to normal, no loss): every honest
//! validator must then commit `liveness_heights` new heights within `liveness_bound_ms`.
//! Byzantine validators keep misbehaving in the calm phase; up to f of them must not stop
//! progress.

use std::fmt;
use std::str::FromStr;

/// A family of faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultMix {
    /// No faults: latency and jitter only.
    Clean,
    /// Message loss, duplication and reordering.
    Lossy,
    /// Partitions that form and heal, over a lossy network.
    Partition,
    /// One validator whose links are many times slower.
    SlowNode,
    /// Validators crash (between steps or in the middle of one, before or after a write
    /// lands) and restart from their disks.
    CrashRestart,
    /// f Byzantine proposers send different valid blocks to different validators.
    Equivocate,
    /// f Byzantine validators sign two conflicting votes per slot and split them.
    DoubleVote,
    /// f Byzantine validators propose invalid blocks and vote for whatever was proposed.
    InvalidVote,
    /// f validators go silent part way through.
    Silent,
    /// f validators replay old messages of every height and round.
    Replay,
    /// f validators each run as two copies with one key.
    Twin,
    /// f lock breakers (fresh proposals voted for at once, nil precommits otherwise) over
    /// a partitioned network that loses many precommits and decided blocks: the attack a
    /// missing lock lets through.
    LockAttack,
    /// Everything at once: loss, partitions, a slow node, crashes, and f Byzantine
    /// validators of random kinds.
    Mixed,
}

impl FaultMix {
    /// Every mix, in the order the sweep runs them.
    pub const ALL: [FaultMix; 13] = [
        FaultMix::Clean,
        FaultMix::Lossy,
        FaultMix::Partition,
        FaultMix::SlowNode,
        FaultMix::CrashRestart,
        FaultMix::Equivocate,
        FaultMix::DoubleVote,
        FaultMix::InvalidVote,
        FaultMix::Silent,
        FaultMix::Replay,
        FaultMix::Twin,
        FaultMix::LockAttack,
        FaultMix::Mixed,
    ];

    /// The mix's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            FaultMix::Clean => "clean",
            FaultMix::Lossy => "lossy",
            FaultMix::Partition => "partition",
            FaultMix::SlowNode => "slow-node",
            FaultMix::CrashRestart => "crash-restart",
            FaultMix::Equivocate => "equivocate",
            FaultMix::DoubleVote => "double-vote",
            FaultMix::InvalidVote => "invalid-vote",
            FaultMix::Silent => "silent",
            FaultMix::Replay => "replay",
            FaultMix::Twin => "twin",
            FaultMix::LockAttack => "lock-attack",
            FaultMix::Mixed => "mixed",
        }
    }

    /// Whether the mix makes f validators Byzantine.
    pub fn has_byzantine(self) -> bool {
        matches!(
            self,
            FaultMix::Equivocate
                | FaultMix::DoubleVote
                | FaultMix::InvalidVote
                | FaultMix::Silent
                | FaultMix::Replay
                | FaultMix::Twin
                | FaultMix::LockAttack
                | FaultMix::Mixed
        )
    }
}

impl fmt::Display for FaultMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault mix name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fault mix {0:?}; known: clean, lossy, partition, slow-node, crash-restart, equivocate, double-vote, invalid-vote, silent, replay, twin, lock-attack, mixed"
)]
pub struct UnknownMix(pub String);

impl FromStr for FaultMix {
    type Err = UnknownMix;

    fn from_str(text: &str) -> Result<FaultMix, UnknownMix> {
        FaultMix::ALL
            .into_iter()
            .find(|mix| mix.name() == text)
            .ok_or_else(|| UnknownMix(text.to_string()))
    }
}

/// One run's parameters. The seed fixes everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The seed of the run's one random source.
    pub seed: u64,
    /// Validators (at least 4 for one Byzantine).
    pub validators: usize,
    /// The fault mix.
    pub mix: FaultMix,
    /// Simulated traders submitting orders, cancels and transfers.
    pub traders: usize,
    /// Length of the fault phase.
    pub fault_phase_ms: u64,
    /// New heights every honest validator must commit after the last fault heals.
    pub liveness_heights: u64,
    /// Simulated time allowed for them.
    pub liveness_bound_ms: u64,
    /// Self-test only: every honest validator runs the consensus core with its lock
    /// ignored, which the checks must catch.
    pub broken_lock: bool,
    /// Self-test only: a restarted validator loses its consensus write-ahead log (as if
    /// an operator deleted it), which the double-signing check must catch.
    pub wipe_wal_on_restart: bool,
    /// Stop (and report a violation) after this many events, so a bug that floods the
    /// queue cannot hang a sweep.
    pub events_max: u64,
}

impl Scenario {
    /// Defaults for `mix` with `validators` validators and `seed`.
    pub fn new(seed: u64, validators: usize, mix: FaultMix) -> Scenario {
        Scenario {
            seed,
            validators,
            mix,
            traders: 6,
            fault_phase_ms: 6_000,
            liveness_heights: 3,
            liveness_bound_ms: 30_000,
            broken_lock: false,
            wipe_wal_on_restart: false,
            events_max: 3_000_000,
        }
    }

    /// The largest number of faulty validators the set tolerates: `f = (n - 1) / 3`.
    pub fn f(&self) -> usize {
        self.validators.saturating_sub(1) / 3
    }

    /// Whether the run breaks a validator on purpose (to show the checks catch it).
    pub fn is_self_test(&self) -> bool {
        self.broken_lock || self.wipe_wal_on_restart
    }

    /// The command that reproduces this run.
    pub fn reproduce_command(&self) -> String {
        let mut command = format!(
            "cargo run -p dex-sim -- --seeds 1 --first-seed {} --validators {} --mix {} --traders {} --fault-phase-ms {}",
            self.seed, self.validators, self.mix, self.traders, self.fault_phase_ms
        );
        if self.broken_lock {
            command.push_str(" --broken-lock");
        }
        if self.wipe_wal_on_restart {
            command.push_str(" --wipe-wal-on-restart");
        }
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mix_parses_from_its_name() {
        for mix in FaultMix::ALL {
            assert_eq!(mix.name().parse::<FaultMix>(), Ok(mix));
        }
        assert!("nonsense".parse::<FaultMix>().is_err());
        assert_eq!(Scenario::new(1, 4, FaultMix::Clean).f(), 1);
        assert_eq!(Scenario::new(1, 7, FaultMix::Clean).f(), 2);
        assert_eq!(Scenario::new(1, 3, FaultMix::Clean).f(), 0);
    }
}
