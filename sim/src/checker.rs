//! The properties checked after every step of a run.
//!
//! - **Agreement**: no two honest validators commit different blocks at one height.
//! - **Certificates**: every committed block carries a certificate that verifies against
//!   the validator set and names that block at that height.
//! - **State**: every honest validator's state root at a height is the same, and equals
//!   the root the block's header claims.
//! - **Custody**: funds are conserved (balances plus withdrawals equal the genesis supply
//!   of every asset), and the ledger's custody invariants hold.
//! - **No double signing**: no honest validator signs two different proposals or votes for
//!   one slot — across all its lifetimes: every message it sends and every entry of its
//!   write-ahead log found at a restart is recorded for the whole run.
//! - **Evidence**: no equivocation evidence names an honest validator.
//! - **Durability**: a restarted validator still has every block it reported committed,
//!   and rebuilds the same state root.
//! - **Liveness** (checked by the run at its end): after the last fault heals, every
//!   honest validator commits new heights within the bound.

use crate::network::NodeId;
use dex_chain::Committed;
use dex_consensus::{Message, ValidatorIndex, ValidatorSet, VoteType};
use dex_state::Ledger;
use dex_types::{AssetId, Block, ChainId, Hash};
use std::collections::BTreeMap;
use std::fmt;

/// Most violations kept per run (the first ones are the informative ones).
const VIOLATIONS_KEPT: usize = 32;

/// A property that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Two honest validators committed different blocks at one height.
    Agreement {
        /// The height.
        height: u64,
        /// The node that committed second.
        node: NodeId,
        /// Its block.
        block: Hash,
        /// The node that committed first.
        first_node: NodeId,
        /// Its block.
        first_block: Hash,
    },
    /// A committed block's certificate does not prove it.
    BadCertificate {
        /// The height.
        height: u64,
        /// The node.
        node: NodeId,
        /// What failed.
        detail: String,
    },
    /// An honest validator's state root differs from the first honest one at a height, or
    /// from its block header.
    StateRoot {
        /// The height.
        height: u64,
        /// The node.
        node: NodeId,
        /// Its root.
        root: Hash,
        /// The expected root.
        expected: Hash,
    },
    /// Balances plus withdrawals differ from the genesis supply.
    FundsNotConserved {
        /// The height.
        height: u64,
        /// The node.
        node: NodeId,
        /// The asset.
        asset: AssetId,
        /// The genesis supply.
        supply: u128,
        /// What the ledger accounts for.
        found: u128,
    },
    /// A ledger custody invariant failed.
    LedgerInvariant {
        /// The height.
        height: u64,
        /// The node.
        node: NodeId,
        /// The ledger's message.
        detail: String,
    },
    /// A node's commits skipped or repeated a height.
    CommitOutOfOrder {
        /// The node.
        node: NodeId,
        /// Height committed.
        height: u64,
        /// The height expected.
        expected: u64,
    },
    /// An honest validator signed two different messages for one slot.
    DoubleSign {
        /// The validator.
        validator: u32,
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// Proposal, prevote or precommit.
        kind: &'static str,
        /// The first value (`None` is nil).
        first: Option<Hash>,
        /// The second value.
        second: Option<Hash>,
    },
    /// Equivocation evidence named an honest validator.
    EvidenceAgainstHonest {
        /// The accused validator.
        validator: u32,
        /// The node that recorded it.
        node: NodeId,
    },
    /// A restarted validator lost a block it had reported committed, or rebuilt another
    /// state.
    CommitLost {
        /// The node.
        node: NodeId,
        /// The highest height it had committed.
        committed: u64,
        /// The head it recovered.
        recovered: u64,
    },
    /// An honest validator could not restart from its disk.
    RecoveryFailed {
        /// The node.
        node: NodeId,
        /// The error.
        detail: String,
    },
    /// An honest validator's replica stopped for a reason other than its simulated crash.
    Halted {
        /// The node.
        node: NodeId,
        /// The error.
        detail: String,
    },
    /// An honest validator did not commit the required heights after the faults healed.
    Liveness {
        /// The node.
        node: NodeId,
        /// Its head at the deadline.
        head: u64,
        /// The height required.
        target: u64,
        /// The deadline (simulated ms).
        deadline_ms: u64,
    },
    /// The run hit its event budget.
    Runaway {
        /// Events processed.
        events: u64,
    },
}

impl Violation {
    /// A short name of the kind of violation, for summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::Agreement { .. } => "agreement",
            Violation::BadCertificate { .. } => "certificate",
            Violation::StateRoot { .. } => "state-root",
            Violation::FundsNotConserved { .. } => "funds",
            Violation::LedgerInvariant { .. } => "ledger-invariant",
            Violation::CommitOutOfOrder { .. } => "commit-order",
            Violation::DoubleSign { .. } => "double-sign",
            Violation::EvidenceAgainstHonest { .. } => "evidence-against-honest",
            Violation::CommitLost { .. } => "commit-lost",
            Violation::RecoveryFailed { .. } => "recovery",
            Violation::Halted { .. } => "halted",
            Violation::Liveness { .. } => "liveness",
            Violation::Runaway { .. } => "runaway",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement {
                height,
                node,
                block,
                first_node,
                first_block,
            } => write!(
                f,
                "agreement: node {node} committed {block} at height {height}, node {first_node} committed {first_block}"
            ),
            Violation::BadCertificate {
                height,
                node,
                detail,
            } => write!(f, "certificate: node {node} height {height}: {detail}"),
            Violation::StateRoot {
                height,
                node,
                root,
                expected,
            } => write!(
                f,
                "state root: node {node} has {root} at height {height}, expected {expected}"
            ),
            Violation::FundsNotConserved {
                height,
                node,
                asset,
                supply,
                found,
            } => write!(
                f,
                "funds: node {node} height {height} asset {asset}: supply {supply}, accounted {found}"
            ),
            Violation::LedgerInvariant {
                height,
                node,
                detail,
            } => write!(f, "ledger invariant: node {node} height {height}: {detail}"),
            Violation::CommitOutOfOrder {
                node,
                height,
                expected,
            } => write!(
                f,
                "commit order: node {node} committed height {height}, expected {expected}"
            ),
            Violation::DoubleSign {
                validator,
                height,
                round,
                kind,
                first,
                second,
            } => write!(
                f,
                "double sign: honest validator {validator} signed {kind} {} and {} at height {height} round {round}",
                show(first),
                show(second)
            ),
            Violation::EvidenceAgainstHonest { validator, node } => write!(
                f,
                "evidence: node {node} recorded equivocation by honest validator {validator}"
            ),
            Violation::CommitLost {
                node,
                committed,
                recovered,
            } => write!(
                f,
                "durability: node {node} had committed height {committed} but recovered head {recovered}"
            ),
            Violation::RecoveryFailed { node, detail } => {
                write!(f, "recovery: node {node} could not restart: {detail}")
            }
            Violation::Halted { node, detail } => {
                write!(f, "halted: honest node {node} stopped: {detail}")
            }
            Violation::Liveness {
                node,
                head,
                target,
                deadline_ms,
            } => write!(
                f,
                "liveness: node {node} reached height {head}, needed {target} by {deadline_ms} ms"
            ),
            Violation::Runaway { events } => write!(f, "runaway: {events} events processed"),
        }
    }
}

fn show(value: &Option<Hash>) -> String {
    match value {
        Some(hash) => hash.to_hex()[..12].to_string(),
        None => "nil".to_string(),
    }
}

/// What the first honest commit of a height was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The block.
    pub block: Hash,
    /// The state root after it.
    pub state_root: Hash,
    /// The node that committed it first.
    pub node: NodeId,
    /// When (simulated ms).
    pub at_ms: u64,
}

/// The run's checks and what they found.
#[derive(Debug, Clone)]
pub struct Checker {
    chain_id: ChainId,
    validators: ValidatorSet,
    supply: Vec<(AssetId, u128)>,
    decided: BTreeMap<u64, Decision>,
    /// Every vote an honest validator signed: (validator, height, round, type) → value.
    votes: BTreeMap<(u32, u64, u32, u8), Option<Hash>>,
    /// Every proposal an honest validator signed: (validator, height, round) → value.
    proposals: BTreeMap<(u32, u64, u32), Hash>,
    /// The last height each node committed in its current life.
    last_commit: BTreeMap<NodeId, u64>,
    violations: Vec<Violation>,
    violations_seen: u64,
    /// Checks run (commits and signed messages examined).
    pub checks: u64,
}

impl Checker {
    /// Checks for a chain of `validators` whose genesis supply is `supply`.
    pub fn new(
        chain_id: ChainId,
        validators: ValidatorSet,
        supply: Vec<(AssetId, u128)>,
    ) -> Checker {
        Checker {
            chain_id,
            validators,
            supply,
            decided: BTreeMap::new(),
            votes: BTreeMap::new(),
            proposals: BTreeMap::new(),
            last_commit: BTreeMap::new(),
            violations: Vec::new(),
            violations_seen: 0,
            checks: 0,
        }
    }

    /// Record a violation.
    pub fn violation(&mut self, violation: Violation) {
        self.violations_seen += 1;
        if self.violations.len() < VIOLATIONS_KEPT {
            self.violations.push(violation);
        }
    }

    /// The violations found (the first ones, if there were many).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// How many violations were found in all.
    pub fn violation_count(&self) -> u64 {
        self.violations_seen
    }

    /// The first honest commit of every height.
    pub fn decided(&self) -> &BTreeMap<u64, Decision> {
        &self.decided
    }

    /// A node starts a new life whose ledger is at `head`.
    pub fn node_started(&mut self, node: NodeId, head: u64) {
        self.last_commit.insert(node, head);
    }

    /// An honest node committed `committed`.
    pub fn on_commit(&mut self, node: NodeId, committed: &Committed, at_ms: u64) {
        self.checks += 1;
        let block = &committed.block;
        let height = block.header.height;
        let id = block.hash();
        let expected = self.last_commit.get(&node).map_or(1, |h| h + 1);
        if height != expected {
            self.violation(Violation::CommitOutOfOrder {
                node,
                height,
                expected,
            });
        }
        self.last_commit.insert(node, height);

        let certificate = &committed.certificate;
        if certificate.height.0 != height || certificate.value_id != id {
            self.violation(Violation::BadCertificate {
                height,
                node,
                detail: format!(
                    "certificate names {} at height {}",
                    certificate.value_id, certificate.height
                ),
            });
        } else if let Err(e) = certificate.verify(&self.validators, self.chain_id) {
            self.violation(Violation::BadCertificate {
                height,
                node,
                detail: e.to_string(),
            });
        }

        let root = committed.result.state_root;
        if root != block.header.state_root || committed.head.state_root != root {
            self.violation(Violation::StateRoot {
                height,
                node,
                root,
                expected: block.header.state_root,
            });
        }
        match self.decided.get(&height) {
            None => {
                self.decided.insert(
                    height,
                    Decision {
                        block: id,
                        state_root: root,
                        node,
                        at_ms,
                    },
                );
            }
            Some(first) if first.block != id => {
                let first = *first;
                self.violation(Violation::Agreement {
                    height,
                    node,
                    block: id,
                    first_node: first.node,
                    first_block: first.block,
                });
            }
            Some(first) if first.state_root != root => {
                let expected = first.state_root;
                self.violation(Violation::StateRoot {
                    height,
                    node,
                    root,
                    expected,
                });
            }
            Some(_) => {}
        }
    }

    /// An honest node's ledger after its commits of one step, at `height`: the same root
    /// as every other honest node at that height, funds conserved, custody invariants.
    pub fn check_ledger(&mut self, node: NodeId, height: u64, ledger: &Ledger) {
        self.checks += 1;
        let root = ledger.state_root();
        if let Some(decision) = self.decided.get(&height)
            && decision.state_root != root
        {
            let expected = decision.state_root;
            self.violation(Violation::StateRoot {
                height,
                node,
                root,
                expected,
            });
        }
        let withdrawn = ledger.withdrawn();
        for (position, (asset, supply)) in self.supply.clone().into_iter().enumerate() {
            let held = ledger
                .accounts()
                .iter()
                .map(|account| account.balances[position].total().unwrap_or(u128::MAX))
                .fold(0u128, u128::saturating_add);
            let found = held.saturating_add(withdrawn[position].1);
            if found != supply {
                self.violation(Violation::FundsNotConserved {
                    height,
                    node,
                    asset,
                    supply,
                    found,
                });
            }
        }
        if let Err(detail) = ledger.check_invariants() {
            self.violation(Violation::LedgerInvariant {
                height,
                node,
                detail,
            });
        }
    }

    /// An honest validator signed `message` (sent it, or it was found in its log).
    pub fn on_signed(&mut self, validator: ValidatorIndex, message: &Message<Block>) {
        self.checks += 1;
        if message.signer() != validator {
            // Relayed messages of others (never produced by an honest host) are not its own.
            return;
        }
        match message {
            Message::Vote(signed) => {
                let vote = &signed.vote;
                let kind = match vote.vote_type {
                    VoteType::Prevote => 0u8,
                    VoteType::Precommit => 1u8,
                };
                let key = (validator.0, vote.height.0, vote.round.0, kind);
                match self.votes.get(&key) {
                    None => {
                        self.votes.insert(key, vote.value_id);
                    }
                    Some(first) if *first != vote.value_id => {
                        let first = *first;
                        self.violation(Violation::DoubleSign {
                            validator: validator.0,
                            height: vote.height.0,
                            round: vote.round.0,
                            kind: if kind == 0 { "prevote" } else { "precommit" },
                            first,
                            second: vote.value_id,
                        });
                    }
                    Some(_) => {}
                }
            }
            Message::Proposal(proposal) => {
                let p = &proposal.signed.proposal;
                let key = (validator.0, p.height.0, p.round.0);
                match self.proposals.get(&key) {
                    None => {
                        self.proposals.insert(key, p.value_id);
                    }
                    Some(first) if *first != p.value_id => {
                        let first = *first;
                        self.violation(Violation::DoubleSign {
                            validator: validator.0,
                            height: p.height.0,
                            round: p.round.0,
                            kind: "proposal",
                            first: Some(first),
                            second: Some(p.value_id),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
    }
}
