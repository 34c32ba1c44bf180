//! The simulated network: per-link latency with jitter, loss, duplication, reordering,
//! partitions and one slow node.
//!
//! Each ordered pair of validator nodes has a base latency drawn once per run; every
//! message then takes `base + jitter` (uniform in `0..=jitter_ms`), so messages on one link
//! may overtake each other. While faults are on, a message may also be lost, delivered
//! twice (the copy with its own delay), or held back by up to `reorder_extra_ms_max`. A
//! partition assigns every node to a group and drops every message between groups; the
//! slow node's links (both ways) take `slow_factor` times as long.

use crate::rng::SimRng;
use dex_consensus::{CommitCertificate, Message, ValidatorIndex};
use dex_types::{Block, SignedTransaction};

/// Index of a simulated node (a validator process; a twin is two nodes).
pub type NodeId = usize;

/// Who sends a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    /// A validator node.
    Node(NodeId),
    /// A trader (a client outside the validator network).
    Trader(usize),
}

/// What travels between simulated processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A proposal or vote.
    Consensus(Message<Block>),
    /// A transaction (from a trader, or gossiped by a validator).
    Transaction(SignedTransaction),
    /// A decided block with its certificate, for a validator that is behind.
    Decided {
        /// The validator that sent it.
        from: ValidatorIndex,
        /// The block.
        block: Block,
        /// Its certificate.
        certificate: CommitCertificate,
    },
    /// A request for decided blocks.
    SyncRequest {
        /// The validator asking.
        from: ValidatorIndex,
        /// The first height it needs.
        height: u64,
    },
}

impl Payload {
    /// Whether this is a precommit or a decided block (what a decision travels in).
    pub fn is_decision(&self) -> bool {
        match self {
            Payload::Consensus(Message::Vote(vote)) => {
                vote.vote.vote_type == dex_consensus::VoteType::Precommit
            }
            Payload::Decided { .. } => true,
            _ => false,
        }
    }
}

/// A message a validator sends: to every other validator (`to: None`) or to some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipients; `None` for every other validator.
    pub to: Option<Vec<ValidatorIndex>>,
    /// The message.
    pub payload: Payload,
}

/// Loss, duplication and reordering, applied while faults are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkFaults {
    /// Chance (‰) that a message is lost.
    pub loss_per_mille: u64,
    /// Chance (‰) that a message is delivered twice.
    pub duplicate_per_mille: u64,
    /// Chance (‰) that a message is held back.
    pub reorder_per_mille: u64,
    /// Most extra delay of a held-back message.
    pub reorder_extra_ms_max: u64,
    /// Extra chance (‰) that a precommit or a decided block is lost: the scheduler of the
    /// lock attack, which keeps some validators from learning of a decision.
    pub decision_loss_per_mille: u64,
}

/// Message counts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Lost to random loss.
    pub lost: u64,
    /// Dropped between partition groups.
    pub partitioned: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Held back for reordering.
    pub reordered: u64,
    /// Arrived at a node that was down.
    pub to_down_node: u64,
}

/// The network model of one run.
#[derive(Debug, Clone)]
pub struct Network {
    base_ms: Vec<Vec<u64>>,
    jitter_ms: u64,
    client_base_ms: u64,
    /// Faults in force now (`None` in calm periods).
    faults: Option<LinkFaults>,
    /// Group of every node while a partition is in force.
    partition: Option<Vec<u8>>,
    /// The node whose precommits and decided blocks are lost (the lock attack's victim).
    muted: Option<NodeId>,
    /// The slow node and its latency factor.
    slow: Option<(NodeId, u64)>,
    /// Counters.
    pub stats: NetStats,
}

impl Network {
    /// Links among `nodes` nodes with base latencies in `latency_ms` (inclusive range),
    /// drawn from `rng`.
    pub fn new(rng: &mut SimRng, nodes: usize, latency_ms: (u64, u64), jitter_ms: u64) -> Network {
        let base_ms = (0..nodes)
            .map(|_| {
                (0..nodes)
                    .map(|_| rng.between(latency_ms.0, latency_ms.1))
                    .collect()
            })
            .collect();
        Network {
            base_ms,
            jitter_ms,
            client_base_ms: rng.between(latency_ms.0, latency_ms.1),
            faults: None,
            partition: None,
            muted: None,
            slow: None,
            stats: NetStats::default(),
        }
    }

    /// A network without links, standing in until the nodes exist (it draws nothing from
    /// the run's random source).
    pub fn unlinked() -> Network {
        Network {
            base_ms: Vec::new(),
            jitter_ms: 0,
            client_base_ms: 1,
            faults: None,
            partition: None,
            muted: None,
            slow: None,
            stats: NetStats::default(),
        }
    }

    /// The mean one-way delay of a message between validators without faults: the unit
    /// of "message delays".
    pub fn mean_delay_ms(&self) -> u64 {
        let mut total: u64 = 0;
        let mut count: u64 = 0;
        for (from, row) in self.base_ms.iter().enumerate() {
            for (to, base) in row.iter().enumerate() {
                if from != to {
                    total += base;
                    count += 1;
                }
            }
        }
        (total / count.max(1)) + self.jitter_ms / 2
    }

    /// Turn loss, duplication and reordering on (`Some`) or off.
    pub fn set_faults(&mut self, faults: Option<LinkFaults>) {
        self.faults = faults;
    }

    /// Put every node in a group (`groups[node]`), or heal with `None`.
    pub fn set_partition(&mut self, groups: Option<Vec<u8>>) {
        self.partition = groups;
    }

    /// Whether a partition is in force.
    pub fn partitioned(&self) -> bool {
        self.partition.is_some()
    }

    /// Whether a message from `from` to `to` crosses the partition in force. A message in
    /// flight when a partition forms is lost too: a cut link delivers nothing.
    pub fn cut(&self, from: Endpoint, to: NodeId) -> bool {
        match (from, &self.partition) {
            (Endpoint::Node(from), Some(groups)) => groups[from] != groups[to],
            _ => false,
        }
    }

    /// Lose every precommit and decided block `node` sends, or stop with `None`.
    pub fn set_muted(&mut self, muted: Option<NodeId>) {
        self.muted = muted;
    }

    /// Make `node`'s links `factor` times slower, or heal with `None`.
    pub fn set_slow(&mut self, slow: Option<(NodeId, u64)>) {
        self.slow = slow;
    }

    /// The delays after which copies of one message from `from` arrive at `to`: none if
    /// it is lost, two if it is duplicated. `decision` marks precommits and decided
    /// blocks, which [`LinkFaults::decision_loss_per_mille`] targets.
    pub fn route(
        &mut self,
        rng: &mut SimRng,
        from: Endpoint,
        to: NodeId,
        decision: bool,
    ) -> Vec<u64> {
        self.stats.sent += 1;
        if self.cut(from, to) {
            self.stats.partitioned += 1;
            return Vec::new();
        }
        if decision && self.muted.is_some() && from == Endpoint::Node(self.muted.unwrap_or(0)) {
            self.stats.lost += 1;
            return Vec::new();
        }
        let faults = self.faults.unwrap_or_default();
        if rng.chance(faults.loss_per_mille)
            || (decision && rng.chance(faults.decision_loss_per_mille))
        {
            self.stats.lost += 1;
            return Vec::new();
        }
        let copies = if rng.chance(faults.duplicate_per_mille) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                let base = match from {
                    Endpoint::Node(from) => self.base_ms[from][to],
                    Endpoint::Trader(_) => self.client_base_ms,
                };
                let mut delay = base + rng.between(0, self.jitter_ms);
                if let Some((slow, factor)) = self.slow
                    && (from == Endpoint::Node(slow) || to == slow)
                {
                    delay = delay.saturating_mul(factor);
                }
                if rng.chance(faults.reorder_per_mille) {
                    self.stats.reordered += 1;
                    delay += rng.between(1, faults.reorder_extra_ms_max.max(1));
                }
                delay.max(1)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_drop_across_groups_and_heal() {
        let mut rng = SimRng::new(3);
        let mut net = Network::new(&mut rng, 4, (10, 20), 5);
        assert_eq!(net.route(&mut rng, Endpoint::Node(0), 3, false).len(), 1);
        net.set_partition(Some(vec![0, 0, 1, 1]));
        assert!(net.route(&mut rng, Endpoint::Node(0), 3, false).is_empty());
        assert_eq!(net.route(&mut rng, Endpoint::Node(0), 1, false).len(), 1);
        // Clients are outside the validator network's partitions.
        assert_eq!(net.route(&mut rng, Endpoint::Trader(0), 3, false).len(), 1);
        net.set_partition(None);
        assert_eq!(net.route(&mut rng, Endpoint::Node(0), 3, false).len(), 1);
        assert_eq!(net.stats.partitioned, 1);
    }

    #[test]
    fn delays_stay_within_latency_jitter_and_slowness() {
        let mut rng = SimRng::new(4);
        let mut net = Network::new(&mut rng, 3, (10, 20), 5);
        for _ in 0..100 {
            let d = net.route(&mut rng, Endpoint::Node(0), 1, false)[0];
            assert!((10..=25).contains(&d), "{d}");
        }
        net.set_slow(Some((1, 10)));
        let d = net.route(&mut rng, Endpoint::Node(0), 1, false)[0];
        assert!((100..=250).contains(&d), "{d}");
        let d = net.route(&mut rng, Endpoint::Node(0), 2, false)[0];
        assert!(d <= 25, "{d}");
        assert!((10..=22).contains(&net.mean_delay_ms()));
    }

    #[test]
    fn faults_lose_duplicate_and_reorder() {
        let mut rng = SimRng::new(5);
        let mut net = Network::new(&mut rng, 2, (10, 10), 0);
        net.set_faults(Some(LinkFaults {
            loss_per_mille: 200,
            duplicate_per_mille: 200,
            reorder_per_mille: 200,
            reorder_extra_ms_max: 50,
            decision_loss_per_mille: 0,
        }));
        let mut copies = 0;
        for _ in 0..1_000 {
            copies += net.route(&mut rng, Endpoint::Node(0), 1, false).len();
        }
        let stats = net.stats;
        assert!(stats.lost > 100 && stats.duplicated > 100 && stats.reordered > 100);
        assert_eq!(copies as u64, 1_000 - stats.lost + stats.duplicated);
        net.set_faults(None);
        assert_eq!(net.route(&mut rng, Endpoint::Node(0), 1, false), vec![10]);
    }
}
