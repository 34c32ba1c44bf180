//! The event loop: one queue of timed events, one random source, N validator nodes built
//! from the real replica, the simulated network, the fault schedule and the checks.

use crate::byzantine::{Adversary, Behaviour, outgoing};
use crate::checker::{Checker, Violation};
use crate::disk::{CrashPoint, SimDisk};
use crate::fixture::{self, Fixture, GENESIS_TIME};
use crate::network::{Endpoint, LinkFaults, Network, NodeId, Outgoing, Payload};
use crate::report::{FaultCounts, LatencySummary, Report};
use crate::rng::SimRng;
use crate::scenario::{FaultMix, Scenario};
use crate::traders::Traders;
use dex_chain::{Action, BlockRules, ChainError, Committed, Event, Replica, ReplicaConfig, Timer};
use dex_consensus::{ValidatorIndex, WalEntry};
use dex_storage::{ChainStore, Column, Store, WriteBatch};
use dex_types::{Block, Domain, Hash, TimestampMs};
use ed25519_dalek::SigningKey;
use std::collections::BTreeMap;

/// How often a replaying validator re-sends old messages.
const REPLAY_INTERVAL_MS: u64 = 400;
/// Log entries read back from a restarted validator's disk for the double-sign check.
const WAL_SCAN_MAX: usize = 1_000_000;

/// Something scheduled in simulated time.
#[derive(Debug)]
enum SimEvent {
    /// A message arrives.
    Deliver {
        to: NodeId,
        from: Endpoint,
        payload: Box<Payload>,
    },
    /// A replica's timer fires (ignored if the node restarted since: `life` differs).
    Timer {
        node: NodeId,
        life: u32,
        timer: Timer,
    },
    /// A trader acts.
    Trader { trader: usize },
    /// A node crashes now (`point: None`) or at a crash point inside its coming steps.
    Crash {
        node: NodeId,
        point: Option<CrashPoint>,
        down_ms: u64,
    },
    /// A crashed node restarts from its disk.
    Restart { node: NodeId },
    /// A partition forms.
    Partition { groups: Vec<u8> },
    /// The partition heals.
    HealPartition,
    /// Network loss, duplication and reordering start.
    LinkFaults(LinkFaults),
    /// One node becomes slow.
    Slow { node: NodeId, factor: u64 },
    /// The lock attack picks the next validator whose decisions it hides.
    Mute,
    /// A replaying validator re-sends old messages.
    Replay { node: NodeId },
    /// Every fault heals; liveness is measured from here.
    Calm,
    /// The liveness deadline.
    Deadline,
}

/// One validator process.
#[derive(Debug)]
struct SimNode {
    validator: ValidatorIndex,
    key: SigningKey,
    /// `None` for an honest validator.
    adversary: Option<Adversary>,
    disk: SimDisk,
    replica: Option<Replica<SimDisk>>,
    /// Bumped at every crash, so timers of an earlier life never fire.
    life: u32,
    /// This node's clock minus the simulation's.
    skew_ms: i64,
    /// The highest height it reported committed, over all its lives.
    committed: u64,
    /// How long the node stays down when its armed crash point trips.
    pending_down_ms: u64,
    /// A running hash of what happened to the node (commits, crashes, restarts).
    history: Hash,
}

impl SimNode {
    fn honest(&self) -> bool {
        self.adversary.is_none()
    }
}

/// One simulated run. See the crate docs.
#[derive(Debug)]
pub struct Simulation {
    scenario: Scenario,
    rng: SimRng,
    now_ms: u64,
    sequence: u64,
    queue: BTreeMap<(u64, u64), SimEvent>,
    fixture: Fixture,
    replica_config: ReplicaConfig,
    rules: BlockRules,
    nodes: Vec<SimNode>,
    by_validator: BTreeMap<ValidatorIndex, Vec<NodeId>>,
    network: Network,
    traders: Traders,
    checker: Checker,
    faults: FaultCounts,
    /// Liveness target height and deadline, once the faults healed.
    liveness: Option<(u64, u64)>,
    /// First time an honest node entered round 0 of each height.
    height_started_ms: BTreeMap<u64, u64>,
    events: u64,
    finished: bool,
}

impl Simulation {
    /// Set up the run: keys, genesis, nodes, network, traders and the fault schedule, all
    /// drawn from the scenario's seed.
    pub fn new(scenario: Scenario) -> Simulation {
        assert!(scenario.validators >= 1, "bug: a run needs a validator");
        let mut rng = SimRng::new(scenario.seed);
        let fixture = Fixture::new(&mut rng, scenario.validators, scenario.traders);
        let replica_config = fixture::replica_config();
        let rules = replica_config.block_rules();
        let checker = Checker::new(
            fixture::CHAIN,
            fixture.validators.clone(),
            fixture.genesis.supply(),
        );
        let traders = Traders::new(&fixture.trader_keys);
        let mut sim = Simulation {
            rng,
            now_ms: 0,
            sequence: 0,
            queue: BTreeMap::new(),
            replica_config,
            rules,
            nodes: Vec::new(),
            by_validator: BTreeMap::new(),
            network: Network::unlinked(),
            traders,
            checker,
            faults: FaultCounts::default(),
            liveness: None,
            height_started_ms: BTreeMap::new(),
            events: 0,
            finished: false,
            fixture,
            scenario,
        };
        sim.create_nodes();
        sim.network = Network::new(&mut sim.rng, sim.nodes.len(), (5, 30), 10);
        sim.schedule_faults();
        for node in 0..sim.nodes.len() {
            sim.at(0, SimEvent::Restart { node });
        }
        for trader in 0..sim.traders.len() {
            let first = sim.rng.between(0, 300);
            sim.at(first, SimEvent::Trader { trader });
        }
        let calm = sim.scenario.fault_phase_ms;
        sim.at(calm, SimEvent::Calm);
        sim
    }

    /// Run to the end and report.
    pub fn run(mut self) -> Report {
        while let Some(((at, _), event)) = self.queue.pop_first() {
            self.now_ms = at;
            self.events += 1;
            if self.events > self.scenario.events_max {
                self.checker.violation(Violation::Runaway {
                    events: self.events,
                });
                break;
            }
            self.dispatch(event);
            // After a violation the run has shown what it can: a forked or stopped chain
            // only produces follow-on violations.
            if self.finished || self.checker.violation_count() > 0 {
                break;
            }
            self.check_liveness_reached();
            if self.finished {
                break;
            }
        }
        self.report()
    }

    // ----- setup -----

    fn create_nodes(&mut self) {
        let n = self.scenario.validators;
        let byzantine = if self.scenario.mix.has_byzantine() {
            self.scenario.f()
        } else {
            0
        };
        let mut order: Vec<usize> = (0..n).collect();
        self.rng.shuffle(&mut order);
        let byzantine: Vec<usize> = order[..byzantine].to_vec();
        for (i, key) in self.fixture.validator_keys.clone().into_iter().enumerate() {
            let validator = self
                .fixture
                .validators
                .index_of(&key.verifying_key())
                .expect("bug: the key is in the set");
            let behaviour = byzantine
                .contains(&i)
                .then(|| self.behaviour_for(self.scenario.mix));
            let copies = if behaviour.is_some_and(|b| b.twin) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let skew_ms = self.rng.between(0, 100) as i64 - 50;
                let adversary = behaviour.map(|b| Adversary::new(b, key.clone(), validator));
                let id = self.nodes.len();
                self.by_validator.entry(validator).or_default().push(id);
                self.nodes.push(SimNode {
                    validator,
                    key: key.clone(),
                    adversary,
                    disk: SimDisk::new(),
                    replica: None,
                    life: 0,
                    skew_ms,
                    committed: 0,
                    pending_down_ms: 0,
                    history: Hash::of(Domain::Other, &[b"node", &(id as u64).to_le_bytes()]),
                });
            }
        }
    }

    fn behaviour_for(&mut self, mix: FaultMix) -> Behaviour {
        let fault_phase = self.scenario.fault_phase_ms;
        let mut b = Behaviour::default();
        match mix {
            FaultMix::Equivocate => b.equivocate = true,
            FaultMix::DoubleVote => b.double_vote = true,
            FaultMix::InvalidVote => b.invalid = true,
            FaultMix::Silent => b.silent_from_ms = Some(self.rng.between(0, fault_phase)),
            FaultMix::Replay => b.replay = true,
            FaultMix::Twin => b.twin = true,
            FaultMix::LockAttack => b.lock_breaker = true,
            FaultMix::Mixed => {
                let kinds = [
                    FaultMix::Equivocate,
                    FaultMix::DoubleVote,
                    FaultMix::InvalidVote,
                    FaultMix::Silent,
                    FaultMix::Replay,
                    FaultMix::Twin,
                    FaultMix::LockAttack,
                ];
                let kind = kinds[self.rng.index(kinds.len())];
                return self.behaviour_for(kind);
            }
            FaultMix::Clean
            | FaultMix::Lossy
            | FaultMix::Partition
            | FaultMix::SlowNode
            | FaultMix::CrashRestart => {}
        }
        b
    }

    fn schedule_faults(&mut self) {
        let mix = self.scenario.mix;
        let end = self.scenario.fault_phase_ms;
        let n = self.nodes.len();
        if matches!(mix, FaultMix::Lossy | FaultMix::Partition | FaultMix::Mixed) {
            let faults = LinkFaults {
                loss_per_mille: self.rng.between(30, 150),
                duplicate_per_mille: self.rng.between(10, 60),
                reorder_per_mille: self.rng.between(50, 150),
                reorder_extra_ms_max: 200,
                decision_loss_per_mille: 0,
            };
            self.at(0, SimEvent::LinkFaults(faults));
        }
        if mix == FaultMix::LockAttack {
            // An adversarial scheduler rather than a noisy network: it hides the decisions
            // of one honest validator at a time (its precommits and decided blocks are
            // lost) and cuts off the first validator to decide a height, so the others
            // often leave a round locked on a value someone already decided.
            let faults = LinkFaults {
                loss_per_mille: 0,
                duplicate_per_mille: 0,
                reorder_per_mille: self.rng.between(50, 150),
                reorder_extra_ms_max: 100,
                decision_loss_per_mille: self.rng.between(0, 100),
            };
            self.at(0, SimEvent::LinkFaults(faults));
            self.at(0, SimEvent::Mute);
        }
        if matches!(mix, FaultMix::Partition | FaultMix::Mixed) {
            let mut t = self.rng.between(300, 1_000);
            while t + 400 < end {
                let duration = self.rng.between(400, 2_500).min(end - t);
                let mut groups = vec![0u8; n];
                let minority = self.rng.between(1, (n as u64 / 2).max(1));
                let mut order: Vec<usize> = (0..n).collect();
                self.rng.shuffle(&mut order);
                for &node in &order[..minority as usize] {
                    groups[node] = 1;
                }
                self.at(t, SimEvent::Partition { groups });
                self.at(t + duration, SimEvent::HealPartition);
                t += duration + self.rng.between(300, 1_500);
            }
        }
        if matches!(mix, FaultMix::SlowNode | FaultMix::Mixed) {
            let node = self.rng.index(n);
            let factor = self.rng.between(5, 12);
            self.at(0, SimEvent::Slow { node, factor });
        }
        if matches!(mix, FaultMix::CrashRestart | FaultMix::Mixed) {
            let crashes = self.rng.between(n as u64, 2 * n as u64);
            for _ in 0..crashes {
                let node = self.rng.index(n);
                let t = self.rng.between(200, end.saturating_sub(300).max(201));
                let down_ms = self.rng.between(50, 2_000);
                let point = self.rng.chance(600).then(|| CrashPoint {
                    writes_before: u32::try_from(self.rng.below(4)).expect("bug: small"),
                    write_lands: self.rng.chance(500),
                });
                self.at(
                    t,
                    SimEvent::Crash {
                        node,
                        point,
                        down_ms,
                    },
                );
            }
        }
        for node in 0..n {
            if self.nodes[node]
                .adversary
                .as_ref()
                .is_some_and(|a| a.behaviour.replay)
            {
                let first = self.rng.between(100, REPLAY_INTERVAL_MS);
                self.at(first, SimEvent::Replay { node });
            }
        }
    }

    // ----- the queue -----

    fn at(&mut self, at_ms: u64, event: SimEvent) {
        self.sequence += 1;
        self.queue.insert((at_ms, self.sequence), event);
    }

    fn after(&mut self, delay_ms: u64, event: SimEvent) {
        self.at(self.now_ms.saturating_add(delay_ms), event);
    }

    fn calm(&self) -> bool {
        self.liveness.is_some()
    }

    fn dispatch(&mut self, event: SimEvent) {
        match event {
            SimEvent::Deliver { to, from, payload } => self.deliver(to, from, *payload),
            SimEvent::Timer { node, life, timer } => {
                if self.nodes[node].life == life {
                    self.step(node, Event::Timer(timer));
                }
            }
            SimEvent::Trader { trader } => self.trader_acts(trader),
            SimEvent::Crash {
                node,
                point,
                down_ms,
            } => {
                if self.calm() || self.nodes[node].replica.is_none() {
                    return;
                }
                match point {
                    None => self.crash(node, down_ms),
                    Some(point) => {
                        self.nodes[node].pending_down_ms = down_ms;
                        self.nodes[node].disk.arm_crash(point);
                    }
                }
            }
            SimEvent::Restart { node } => self.start(node),
            SimEvent::Partition { groups } => {
                if !self.calm() {
                    self.faults.partitions += 1;
                    self.network.set_partition(Some(groups));
                }
            }
            SimEvent::HealPartition => self.network.set_partition(None),
            SimEvent::LinkFaults(faults) => self.network.set_faults(Some(faults)),
            SimEvent::Mute => {
                if !self.calm() {
                    let honest: Vec<NodeId> = (0..self.nodes.len())
                        .filter(|&n| self.nodes[n].honest())
                        .collect();
                    let victim = honest[self.rng.index(honest.len())];
                    self.network.set_muted(Some(victim));
                    let next = self.rng.between(300, 1_000);
                    self.after(next, SimEvent::Mute);
                }
            }
            SimEvent::Slow { node, factor } => {
                self.faults.slow_nodes += 1;
                self.network.set_slow(Some((node, factor)));
            }
            SimEvent::Replay { node } => {
                let silent = self.nodes[node]
                    .adversary
                    .as_ref()
                    .is_some_and(|a| a.is_silent(self.now_ms));
                if self.nodes[node].replica.is_some() && !silent {
                    let burst = self.nodes[node]
                        .adversary
                        .as_mut()
                        .map(|a| a.replay_burst(&mut self.rng))
                        .unwrap_or_default();
                    for message in burst {
                        self.send(node, message);
                    }
                }
                self.after(REPLAY_INTERVAL_MS, SimEvent::Replay { node });
            }
            SimEvent::Calm => self.heal_everything(),
            SimEvent::Deadline => self.deadline(),
        }
    }

    // ----- nodes -----

    fn node_clock(&self, node: NodeId) -> TimestampMs {
        let now = i64::try_from(self.now_ms).expect("bug: simulated time fits i64");
        let local = (now + self.nodes[node].skew_ms).max(0);
        TimestampMs(GENESIS_TIME.0 + u64::try_from(local).expect("bug: non-negative"))
    }

    /// Start (or restart) a node from its disk.
    fn start(&mut self, node: NodeId) {
        if self.nodes[node].replica.is_some() {
            return;
        }
        let honest = self.nodes[node].honest();
        if self.scenario.wipe_wal_on_restart && self.nodes[node].life > 0 {
            let mut batch = WriteBatch::synced();
            batch.delete_range(Column::ConsensusWal, Vec::new(), vec![0xff; 16]);
            self.nodes[node]
                .disk
                .write(batch)
                .expect("bug: a fresh simulated disk accepts writes");
        }
        let store = match ChainStore::open(self.nodes[node].disk.clone(), fixture::store_config()) {
            Ok(store) => store,
            Err(e) => {
                if honest {
                    self.checker.violation(Violation::RecoveryFailed {
                        node,
                        detail: e.to_string(),
                    });
                }
                return;
            }
        };
        if honest {
            // Everything this validator logged before the crash counts as signed, sent or
            // not: a restart must never sign anything conflicting with it.
            let validator = self.nodes[node].validator;
            let logged = store.wal_entries_from(0, WAL_SCAN_MAX).unwrap_or_default();
            for (_, bytes) in logged {
                if let Ok(WalEntry::Signed(message)) =
                    WalEntry::<Block>::decode(&bytes, dex_chain::WAL_ENTRY_BYTES_MAX)
                {
                    self.checker.on_signed(validator, &message);
                }
            }
        }
        let mut out = Vec::new();
        let opened = Replica::open(
            store,
            &self.fixture.genesis,
            self.fixture.validators.clone(),
            Some(self.nodes[node].key.clone()),
            self.replica_config.clone(),
            self.node_clock(node),
            &mut out,
        );
        let mut replica = match opened {
            Ok(replica) => replica,
            Err(e) => {
                if honest {
                    self.checker.violation(Violation::RecoveryFailed {
                        node,
                        detail: e.to_string(),
                    });
                }
                return;
            }
        };
        if self.scenario.broken_lock && honest {
            replica.set_ignore_lock(true);
        }
        let head = replica.head();
        if honest {
            if head.height < self.nodes[node].committed {
                self.checker.violation(Violation::CommitLost {
                    node,
                    committed: self.nodes[node].committed,
                    recovered: head.height,
                });
            }
            if let Some(decision) = self.checker.decided().get(&head.height).copied()
                && (decision.block != head.block_hash
                    || decision.state_root != replica.ledger().state_root())
            {
                self.checker.violation(Violation::StateRoot {
                    height: head.height,
                    node,
                    root: replica.ledger().state_root(),
                    expected: decision.state_root,
                });
            }
        }
        if self.nodes[node].life > 0 {
            self.faults.restarts += 1;
        }
        self.checker.node_started(node, head.height);
        self.note(node, b"start", head.height, head.block_hash);
        self.nodes[node].replica = Some(replica);
        self.carry_out(node, out);
    }

    fn crash(&mut self, node: NodeId, down_ms: u64) {
        let n = &mut self.nodes[node];
        n.replica = None;
        n.disk.power_loss();
        n.life += 1;
        self.faults.crashes += 1;
        self.note(node, b"crash", 0, Hash::ZERO);
        if self.calm() {
            self.after(0, SimEvent::Restart { node });
        } else {
            self.after(down_ms.max(1), SimEvent::Restart { node });
        }
    }

    fn note(&mut self, node: NodeId, what: &[u8], height: u64, hash: Hash) {
        let n = &mut self.nodes[node];
        n.history = Hash::of(
            Domain::Other,
            &[
                &n.history.0,
                what,
                &height.to_le_bytes(),
                &hash.0,
                &self.now_ms.to_le_bytes(),
            ],
        );
    }

    fn deliver(&mut self, to: NodeId, from: Endpoint, payload: Payload) {
        if self.network.cut(from, to) {
            self.network.stats.partitioned += 1;
            return;
        }
        if self.nodes[to].replica.is_none() {
            self.network.stats.to_down_node += 1;
            return;
        }
        let event = match payload {
            Payload::Consensus(message) => {
                let target = &mut self.nodes[to];
                let forged = match (target.adversary.as_mut(), target.replica.as_ref()) {
                    (Some(adversary), Some(replica)) => {
                        adversary.observe(replica, &self.rules, &message)
                    }
                    _ => Vec::new(),
                };
                let silent = self.nodes[to]
                    .adversary
                    .as_ref()
                    .is_some_and(|a| a.is_silent(self.now_ms));
                if !silent {
                    for message in forged {
                        self.send(to, message);
                    }
                }
                Event::Message(message)
            }
            Payload::Transaction(signed) => Event::Transaction(signed),
            Payload::Decided {
                from,
                block,
                certificate,
            } => Event::Decided {
                from: Some(from),
                block,
                certificate,
            },
            Payload::SyncRequest { from, height } => Event::SyncRequest { from, height },
        };
        self.step(to, event);
    }

    /// Feed one event to a node's replica and carry out what it answers.
    fn step(&mut self, node: NodeId, event: Event) {
        let clock = self.node_clock(node);
        let Some(replica) = self.nodes[node].replica.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        let result = replica.handle(clock, event, &mut out);
        // Actions produced before a failure were durable-before-send: carry them out.
        self.carry_out(node, out);
        if let Err(error) = result {
            self.replica_failed(node, &error);
        }
    }

    fn replica_failed(&mut self, node: NodeId, error: &ChainError) {
        if self.nodes[node].disk.tripped() {
            self.faults.mid_step_crashes += 1;
            let down = self.nodes[node].pending_down_ms;
            self.crash(node, down);
            return;
        }
        if self.nodes[node].honest() {
            self.checker.violation(Violation::Halted {
                node,
                detail: error.to_string(),
            });
        }
        // Restart it, as an operator would, so the run goes on.
        self.crash(node, 500);
    }

    fn carry_out(&mut self, node: NodeId, actions: Vec<Action>) {
        let own = self.nodes[node].validator;
        let honest = self.nodes[node].honest();
        let mut committed_any = false;
        for action in actions {
            match &action {
                Action::SetTimer { timer, after_ms } => {
                    let life = self.nodes[node].life;
                    self.after(
                        *after_ms,
                        SimEvent::Timer {
                            node,
                            life,
                            timer: *timer,
                        },
                    );
                }
                Action::Committed(committed) => {
                    self.on_commit(node, committed);
                    committed_any = true;
                }
                Action::Evidence(evidence) => {
                    self.faults.evidence += 1;
                    let accused = evidence.validator();
                    let accused_honest = self
                        .by_validator
                        .get(&accused)
                        .is_some_and(|nodes| nodes.iter().all(|&n| self.nodes[n].honest()));
                    if accused_honest {
                        self.checker.violation(Violation::EvidenceAgainstHonest {
                            validator: accused.0,
                            node,
                        });
                    }
                }
                Action::EnteredRound { height, round, .. } if honest && round.0 == 0 => {
                    self.height_started_ms
                        .entry(height.0)
                        .or_insert(self.now_ms);
                }
                _ => {}
            }
            let Some(message) = outgoing(own, &action) else {
                continue;
            };
            if honest {
                if let Payload::Consensus(consensus) = &message.payload {
                    self.checker.on_signed(own, consensus);
                }
                self.send(node, message);
            } else {
                let others: Vec<ValidatorIndex> = self
                    .by_validator
                    .keys()
                    .copied()
                    .filter(|v| *v != own)
                    .collect();
                let mut adversary = self.nodes[node]
                    .adversary
                    .take()
                    .expect("bug: a dishonest node has an adversary");
                let rewritten = match self.nodes[node].replica.as_ref() {
                    Some(replica) => adversary.rewrite(
                        &mut self.rng,
                        self.now_ms,
                        replica,
                        &self.rules,
                        &others,
                        message,
                    ),
                    None => Vec::new(),
                };
                self.nodes[node].adversary = Some(adversary);
                for message in rewritten {
                    self.send(node, message);
                }
            }
        }
        if committed_any
            && honest
            && let Some(replica) = self.nodes[node].replica.as_ref()
        {
            let head = replica.head().height;
            self.checker.check_ledger(node, head, replica.ledger());
        }
    }

    fn on_commit(&mut self, node: NodeId, committed: &Committed) {
        let height = committed.block.header.height;
        let n = &mut self.nodes[node];
        n.committed = n.committed.max(height);
        self.note(node, b"commit", height, committed.block.hash());
        if self.nodes[node].honest() {
            let first = !self.checker.decided().contains_key(&height);
            self.checker.on_commit(node, committed, self.now_ms);
            if first {
                self.isolate_first_decider(node);
            }
        }
    }

    /// The lock attack's scheduler: right after an honest validator is the first to
    /// decide a height, cut it off for a while (often), so that the others leave the round
    /// without its precommit and without its help.
    fn isolate_first_decider(&mut self, node: NodeId) {
        if self.scenario.mix != FaultMix::LockAttack
            || self.calm()
            || self.network.partitioned()
            || !self.rng.chance(500)
        {
            return;
        }
        let mut groups = vec![0u8; self.nodes.len()];
        groups[node] = 1;
        self.faults.partitions += 1;
        self.network.set_partition(Some(groups));
        let heal = self.rng.between(500, 2_000);
        self.after(heal, SimEvent::HealPartition);
    }

    /// Hand `message` from `node` to the network.
    fn send(&mut self, node: NodeId, message: Outgoing) {
        let own = self.nodes[node].validator;
        let recipients: Vec<NodeId> = match &message.to {
            None => (0..self.nodes.len())
                .filter(|&n| self.nodes[n].validator != own)
                .collect(),
            Some(validators) => validators
                .iter()
                .filter(|v| **v != own)
                .flat_map(|v| self.by_validator.get(v).cloned().unwrap_or_default())
                .collect(),
        };
        for to in recipients {
            let delays = self.network.route(
                &mut self.rng,
                Endpoint::Node(node),
                to,
                message.payload.is_decision(),
            );
            for delay in delays {
                self.after(
                    delay,
                    SimEvent::Deliver {
                        to,
                        from: Endpoint::Node(node),
                        payload: Box::new(message.payload.clone()),
                    },
                );
            }
        }
    }

    fn trader_acts(&mut self, trader: usize) {
        let block_time = TimestampMs(GENESIS_TIME.0 + self.now_ms);
        let signed = self.traders.act(trader, &mut self.rng, block_time);
        let to = self.rng.index(self.nodes.len());
        for delay in self
            .network
            .route(&mut self.rng, Endpoint::Trader(trader), to, false)
        {
            self.after(
                delay,
                SimEvent::Deliver {
                    to,
                    from: Endpoint::Trader(trader),
                    payload: Box::new(Payload::Transaction(signed.clone())),
                },
            );
        }
        let next = self.rng.between(50, 400);
        self.after(next, SimEvent::Trader { trader });
    }

    // ----- phases -----

    fn heal_everything(&mut self) {
        self.network.set_faults(None);
        self.network.set_muted(None);
        self.network.set_partition(None);
        self.network.set_slow(None);
        let target =
            self.honest_heads().into_iter().max().unwrap_or(0) + self.scenario.liveness_heights;
        let deadline = self.now_ms + self.scenario.liveness_bound_ms;
        self.liveness = Some((target, deadline));
        for node in 0..self.nodes.len() {
            if self.nodes[node].disk.armed() && !self.nodes[node].disk.tripped() {
                self.nodes[node].disk.disarm();
            }
            if self.nodes[node].replica.is_none() {
                self.after(0, SimEvent::Restart { node });
            }
        }
        self.at(deadline, SimEvent::Deadline);
    }

    fn honest_heads(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.honest())
            .map(|n| n.replica.as_ref().map_or(n.committed, |r| r.head().height))
            .collect()
    }

    fn check_liveness_reached(&mut self) {
        let Some((target, _)) = self.liveness else {
            return;
        };
        let all = self.nodes.iter().filter(|n| n.honest()).all(|n| {
            n.replica
                .as_ref()
                .is_some_and(|r| r.head().height >= target)
        });
        if all {
            self.finished = true;
        }
    }

    fn deadline(&mut self) {
        let Some((target, deadline_ms)) = self.liveness else {
            return;
        };
        for node in 0..self.nodes.len() {
            if !self.nodes[node].honest() {
                continue;
            }
            let head = self.nodes[node]
                .replica
                .as_ref()
                .map_or(self.nodes[node].committed, |r| r.head().height);
            if head < target {
                self.checker.violation(Violation::Liveness {
                    node,
                    head,
                    target,
                    deadline_ms,
                });
            }
        }
        self.finished = true;
    }

    // ----- the report -----

    fn report(self) -> Report {
        let decided = self.checker.decided();
        let mut latencies: Vec<u64> = decided
            .iter()
            .filter_map(|(height, decision)| {
                self.height_started_ms
                    .get(height)
                    .map(|start| decision.at_ms.saturating_sub(*start))
            })
            .collect();
        latencies.sort_unstable();
        let latency = LatencySummary::of(&latencies, self.network.mean_delay_ms());
        let heads = self.honest_heads();
        let mut faults = self.faults;
        faults.forged_messages = self
            .nodes
            .iter()
            .filter_map(|n| n.adversary.as_ref().map(|a| a.forged))
            .sum();
        let byzantine: Vec<(u32, String)> = self
            .by_validator
            .iter()
            .filter_map(|(v, nodes)| {
                self.nodes[nodes[0]]
                    .adversary
                    .as_ref()
                    .map(|a| (v.0, a.behaviour.describe()))
            })
            .collect();
        let mut parts: Vec<Vec<u8>> = vec![
            b"dex-sim-run".to_vec(),
            self.scenario.seed.to_le_bytes().to_vec(),
            self.events.to_le_bytes().to_vec(),
            self.now_ms.to_le_bytes().to_vec(),
        ];
        for node in &self.nodes {
            parts.push(node.history.0.to_vec());
            let stats = node.replica.as_ref().map(|r| r.stats()).unwrap_or_default();
            parts.push(format!("{stats:?}").into_bytes());
        }
        for (height, decision) in decided {
            parts.push(height.to_le_bytes().to_vec());
            parts.push(decision.block.0.to_vec());
            parts.push(decision.state_root.0.to_vec());
        }
        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let final_hash = Hash::of(Domain::Other, &slices);
        let txs_committed = self
            .nodes
            .iter()
            .find(|n| n.honest() && n.replica.is_some())
            .and_then(|n| n.replica.as_ref())
            .map_or(0, |r| {
                (1..=r.head().height)
                    .filter_map(|h| r.store().committed_block(h).ok().flatten())
                    .filter_map(|b| Block::decode(&b.block).ok())
                    .map(|b| b.txs.len() as u64)
                    .sum()
            });
        Report {
            scenario: self.scenario.clone(),
            honest_head_min: heads.iter().copied().min().unwrap_or(0),
            honest_head_max: heads.iter().copied().max().unwrap_or(0),
            latency,
            faults,
            net: self.network.stats,
            txs_signed: self.traders.signed,
            txs_committed,
            checks: self.checker.checks,
            violations: self.checker.violations().to_vec(),
            violation_count: self.checker.violation_count(),
            byzantine,
            end_ms: self.now_ms,
            events: self.events,
            final_hash,
        }
    }
}

/// Run one scenario.
pub fn run(scenario: Scenario) -> Report {
    Simulation::new(scenario).run()
}
