//! Several consensus cores wired together through an in-memory event queue: a small,
//! deterministic harness. There is no clock: one queue orders message deliveries and timer
//! firings by virtual time, and the loop always takes the earliest event. Messages get a
//! random latency (so they arrive reordered, and sometimes after a timeout), and may be
//! lost or duplicated. The tests show commits with all validators, with one silent
//! validator, across crashes and restarts from the write-ahead log, and agreement under
//! random delivery orders and message loss.
//!
//! The full fault simulator lives in `sim/`; this harness only exercises the core's API the
//! way a host does.

use borsh::{BorshDeserialize, BorshSerialize};
use dex_consensus::{
    CommitCertificate, Consensus, ConsensusConfig, ConsensusError, ConsensusValue, Effect, Height,
    Input, Message, Timeout, ValidatorIndex, ValidatorSet, VoteType, WalEntry,
};
use dex_types::{ChainId, Domain, Hash};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};

const CHAIN: ChainId = ChainId(11);

/// A stand-in block: who proposed it where.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct TestBlock {
    height: u64,
    round: u32,
    proposer: u32,
}

impl ConsensusValue for TestBlock {
    fn id(&self) -> Hash {
        Hash::of(Domain::Other, &[&borsh::to_vec(self).unwrap()])
    }
}

/// A tiny deterministic generator (SplitMix64) for delivery choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance_per_mille(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// How the network misbehaves (by default: not at all).
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    /// Each delivery takes 1..=latency_max_ms of virtual time (0: always 1 ms, in order).
    latency_max_ms: u64,
    /// Chance (‰) that a message is lost.
    drop_per_mille: u64,
    /// Chance (‰) that a message is delivered twice.
    duplicate_per_mille: u64,
}

enum Event {
    Deliver(usize, Input<TestBlock>),
    /// `(node, life, timeout)`.
    Timer(usize, u64, Timeout),
}

struct Node {
    key: SigningKey,
    index: ValidatorIndex,
    /// `None` while crashed (or for a silent validator).
    core: Option<Consensus<TestBlock>>,
    /// Durable: the write-ahead log and the decided blocks survive a crash.
    wal: Vec<WalEntry<TestBlock>>,
    decided: BTreeMap<u64, (TestBlock, CommitCertificate)>,
    /// Bumped at each restart, so timers of an earlier life never fire.
    life: u64,
}

struct Network {
    set: ValidatorSet,
    config: ConsensusConfig,
    nodes: Vec<Node>,
    /// Host-local inputs (answers to RequestValue/ValidateProposal), handled first.
    local: VecDeque<(usize, Input<TestBlock>)>,
    /// Deliveries and timer firings by `(virtual time, sequence)`.
    events: BTreeMap<(u64, u64), Event>,
    now_ms: u64,
    sequence: u64,
    rng: Rng,
    faults: Faults,
    /// Every vote any validator ever sent or logged, by slot: a second value is a double sign.
    signed: BTreeMap<(u32, u64, u32, VoteType), Option<Hash>>,
    /// The value decided at each height by anyone.
    agreed: BTreeMap<u64, Hash>,
    evidence: usize,
}

impl Network {
    fn new(n: usize, seed: u64, faults: Faults) -> Network {
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[u8::try_from(i).unwrap() + 1; 32]))
            .collect();
        let set =
            ValidatorSet::new(keys.iter().map(|k| (k.verifying_key().to_bytes(), 1))).unwrap();
        let mut config = ConsensusConfig::new(CHAIN);
        config.propose.base_ms = 300;
        config.propose.delta_ms = 100;
        config.prevote.base_ms = 200;
        config.prevote.delta_ms = 100;
        config.precommit.base_ms = 200;
        config.precommit.delta_ms = 100;
        config.rebroadcast_ms = 250;
        let nodes = keys
            .into_iter()
            .map(|key| Node {
                index: set.index_of(&key.verifying_key()).unwrap(),
                key,
                core: None,
                wal: Vec::new(),
                decided: BTreeMap::new(),
                life: 0,
            })
            .collect();
        Network {
            set,
            config,
            nodes,
            local: VecDeque::new(),
            events: BTreeMap::new(),
            now_ms: 0,
            sequence: 0,
            rng: Rng(seed),
            faults,
            signed: BTreeMap::new(),
            agreed: BTreeMap::new(),
            evidence: 0,
        }
    }

    /// Start (or restart) node `i` from its durable state.
    fn start(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let height = node.decided.keys().next_back().map_or(1, |h| h + 1);
        let (core, effects) = Consensus::restore(
            self.config.clone(),
            self.set.clone(),
            Some(node.key.clone()),
            Height(height),
            node.wal.clone(),
        )
        .unwrap();
        node.core = Some(core);
        node.life += 1;
        self.carry_out(i, effects, usize::MAX);
    }

    fn start_all(&mut self, silent: &[usize]) {
        for i in 0..self.nodes.len() {
            if !silent.contains(&i) {
                self.start(i);
            }
        }
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i].core = None;
    }

    /// Carry out the first `limit` effects (all of them unless a crash cuts the list).
    fn carry_out(&mut self, i: usize, effects: Vec<Effect<TestBlock>>, limit: usize) {
        for effect in effects.into_iter().take(limit) {
            match effect {
                Effect::Persist(entry) => {
                    if let WalEntry::Signed(message) = &entry {
                        self.check_no_double_sign(message);
                    }
                    self.nodes[i].wal.push(entry);
                }
                Effect::Broadcast(message) => {
                    self.check_no_double_sign(&message);
                    let input = match message {
                        Message::Proposal(p) => Input::Proposal(p),
                        Message::Vote(v) => Input::Vote(v),
                    };
                    for j in 0..self.nodes.len() {
                        if j != i {
                            self.send(j, input.clone());
                        }
                    }
                }
                Effect::SendTo { to, message } => {
                    self.check_no_double_sign(&message);
                    let to = self.nodes.iter().position(|n| n.index == to).unwrap();
                    let input = match message {
                        Message::Proposal(p) => Input::Proposal(p),
                        Message::Vote(v) => Input::Vote(v),
                    };
                    self.send(to, input);
                }
                Effect::ScheduleTimeout {
                    timeout,
                    duration_ms,
                } => {
                    let life = self.nodes[i].life;
                    self.schedule(duration_ms, Event::Timer(i, life, timeout));
                }
                Effect::RequestValue { height, round, .. } => {
                    let value = TestBlock {
                        height: height.0,
                        round: round.0,
                        proposer: self.nodes[i].index.0,
                    };
                    self.local.push_back((
                        i,
                        Input::ProposeValue {
                            height,
                            round,
                            value,
                        },
                    ));
                }
                Effect::ValidateProposal {
                    height,
                    round,
                    value,
                } => {
                    self.local.push_back((
                        i,
                        Input::ProposalValidated {
                            height,
                            round,
                            value_id: value.id(),
                            valid: value.height == height.0,
                        },
                    ));
                }
                Effect::Decide { value, certificate } => {
                    certificate
                        .verify(&self.set, CHAIN)
                        .expect("a decision carries a valid certificate");
                    assert_eq!(value.id(), certificate.value_id);
                    let height = certificate.height.0;
                    let agreed = *self.agreed.entry(height).or_insert(value.id());
                    assert_eq!(
                        agreed,
                        value.id(),
                        "two different decisions at height {height}"
                    );
                    let previous = self.nodes[i].decided.insert(height, (value, certificate));
                    assert!(previous.is_none(), "node {i} decided height {height} twice");
                }
                Effect::RecordEvidence(evidence) => {
                    evidence.verify(&self.set, CHAIN).unwrap();
                    self.evidence += 1;
                }
                Effect::StartHeight { .. } | Effect::EnterRound { .. } => {}
            }
        }
    }

    fn check_no_double_sign(&mut self, message: &Message<TestBlock>) {
        if let Message::Vote(v) = message {
            let slot = (
                v.vote.validator.0,
                v.vote.height.0,
                v.vote.round.0,
                v.vote.vote_type,
            );
            let first = *self.signed.entry(slot).or_insert(v.vote.value_id);
            assert_eq!(
                first, v.vote.value_id,
                "validator signed two different votes for {slot:?}"
            );
        }
    }

    /// Feed one input to node `i`; `cut` limits how many effects are carried out (a crash).
    fn feed(&mut self, i: usize, input: Input<TestBlock>, cut: Option<usize>) {
        let Some(core) = self.nodes[i].core.as_mut() else {
            return;
        };
        match core.handle(input) {
            Ok(effects) => self.carry_out(i, effects, cut.unwrap_or(usize::MAX)),
            // The sender is behind: answer with the decided block and its certificate.
            Err(ConsensusError::HeightBehind { height, sender, .. }) => {
                let to = self.nodes.iter().position(|n| n.index == sender).unwrap();
                if let Some((value, certificate)) = self.nodes[i].decided.get(&height.0).cloned() {
                    self.send(to, Input::Decided { value, certificate });
                }
            }
            Err(_) => {}
        }
    }

    fn schedule(&mut self, delay_ms: u64, event: Event) {
        self.sequence += 1;
        self.events
            .insert((self.now_ms + delay_ms, self.sequence), event);
    }

    /// Put a message on the wire: maybe lost, maybe duplicated, each copy with its latency.
    fn send(&mut self, to: usize, input: Input<TestBlock>) {
        if self.rng.chance_per_mille(self.faults.drop_per_mille) {
            return;
        }
        let copies = if self.rng.chance_per_mille(self.faults.duplicate_per_mille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let latency_ms = 1 + self.rng.below(self.faults.latency_max_ms.max(1));
            self.schedule(latency_ms, Event::Deliver(to, input.clone()));
        }
    }

    /// Take the earliest event off the queue, advancing virtual time to it.
    fn next_event(&mut self) -> Option<Event> {
        let (&key, _) = self.events.iter().next()?;
        self.now_ms = self.now_ms.max(key.0);
        self.events.remove(&key)
    }

    /// One step; false when nothing at all is left to do.
    fn step(&mut self) -> bool {
        if let Some((i, input)) = self.local.pop_front() {
            self.feed(i, input, None);
            return true;
        }
        match self.next_event() {
            None => false,
            Some(Event::Deliver(to, input)) => {
                self.feed(to, input, None);
                true
            }
            Some(Event::Timer(i, life, timeout)) => {
                if self.nodes[i].life == life {
                    self.feed(i, Input::Timeout(timeout), None);
                }
                true
            }
        }
    }

    /// Run until every node in `live` decided `heights` heights, or `max_steps` ran out.
    fn run_until_decided(&mut self, live: &[usize], heights: u64, max_steps: usize) -> bool {
        for _ in 0..max_steps {
            if live
                .iter()
                .all(|&i| self.nodes[i].decided.len() as u64 >= heights)
            {
                return true;
            }
            if !self.step() {
                break;
            }
        }
        live.iter()
            .all(|&i| self.nodes[i].decided.len() as u64 >= heights)
    }

    /// The same decided value ids at every height both nodes decided.
    fn assert_agreement(&self) {
        for (height, id) in &self.agreed {
            for node in &self.nodes {
                if let Some((value, _)) = node.decided.get(height) {
                    assert_eq!(value.id(), *id);
                }
            }
        }
    }
}

#[test]
fn n4_all_honest_commit_five_heights_in_round_zero() {
    let mut net = Network::new(4, 1, Faults::default());
    net.start_all(&[]);
    assert!(net.run_until_decided(&[0, 1, 2, 3], 5, 20_000));
    net.assert_agreement();
    let decided = &net.nodes[0].decided;
    for (height, (value, certificate)) in decided {
        assert_eq!(value.height, *height);
        assert_eq!(certificate.round.0, 0, "no faults, so round 0 decides");
    }
    // The proposer rotates: four consecutive heights, four proposers.
    let mut proposers: Vec<u32> = (1..=4).map(|h| decided[&h].0.proposer).collect();
    proposers.sort_unstable();
    assert_eq!(proposers, [0, 1, 2, 3]);
    assert_eq!(net.evidence, 0);
}

#[test]
fn n4_one_silent_validator_still_commits() {
    let mut net = Network::new(4, 2, Faults::default());
    let silent = 3;
    net.start_all(&[silent]);
    assert!(net.run_until_decided(&[0, 1, 2], 8, 50_000));
    net.assert_agreement();
    // The heights where the silent validator was the first proposer needed another round.
    let later_rounds = net.nodes[0]
        .decided
        .values()
        .filter(|(_, c)| c.round.0 > 0)
        .count();
    assert!(later_rounds >= 1);
    // Its turns were taken over: no block was proposed by it.
    assert!(
        net.nodes[0]
            .decided
            .values()
            .all(|(v, _)| v.proposer != net.nodes[silent].index.0)
    );
}

#[test]
fn n4_late_validator_catches_up_by_sync() {
    let mut net = Network::new(4, 3, Faults::default());
    net.start_all(&[3]);
    assert!(net.run_until_decided(&[0, 1, 2], 4, 50_000));
    // The fourth validator joins four heights late: its height-1 messages are answered
    // with decided blocks, and it joins the others.
    net.start(3);
    assert!(net.run_until_decided(&[0, 1, 2, 3], 7, 100_000));
    net.assert_agreement();
}

#[test]
fn n4_crashes_and_restarts_never_double_sign() {
    for seed in 0..6u64 {
        let faults = Faults {
            latency_max_ms: 200,
            drop_per_mille: 100,
            duplicate_per_mille: 50,
        };
        let mut net = Network::new(4, seed, faults);
        net.start_all(&[]);
        let mut crashes = 0;
        for _ in 0..40_000 {
            if (0..4).all(|i| net.nodes[i].decided.len() >= 6) {
                break;
            }
            // Now and then crash the receiver of the next message in the middle of carrying
            // out that message's effects (after its first k effects: a vote may be logged
            // but not sent), then bring it back from its log.
            if net.local.is_empty() && net.rng.chance_per_mille(20) {
                match net.next_event() {
                    Some(Event::Deliver(victim, input)) if net.nodes[victim].core.is_some() => {
                        let cut = net.rng.below(4) as usize;
                        net.feed(victim, input, Some(cut));
                        net.crash(victim);
                        net.start(victim);
                        crashes += 1;
                    }
                    Some(Event::Timer(i, life, timeout)) if net.nodes[i].life == life => {
                        net.feed(i, Input::Timeout(timeout), None);
                    }
                    _ => {}
                }
                continue;
            }
            if !net.step() {
                break;
            }
        }
        assert!(
            crashes > 0,
            "seed {seed}: the test must actually crash someone"
        );
        assert!(
            (0..4).all(|i| net.nodes[i].decided.len() >= 6),
            "seed {seed}: all validators commit despite the crashes"
        );
        net.assert_agreement();
    }
}

#[test]
fn n4_lossy_reordering_network_keeps_agreement_and_liveness() {
    // Fixed seeds: each run is deterministic, so liveness is asserted, not hoped for.
    // Latencies up to 400 ms exceed the first rounds' timeouts; timeouts grow per round
    // until they do not, and rebroadcasts make up for lost messages.
    for seed in 100..112u64 {
        let faults = Faults {
            latency_max_ms: 400,
            drop_per_mille: 200,
            duplicate_per_mille: 50,
        };
        let mut net = Network::new(4, seed, faults);
        net.start_all(&[]);
        assert!(
            net.run_until_decided(&[0, 1, 2, 3], 4, 200_000),
            "seed {seed} stalled"
        );
        net.assert_agreement();
    }
}

#[test]
fn same_seed_same_history() {
    let faults = Faults {
        latency_max_ms: 300,
        drop_per_mille: 100,
        duplicate_per_mille: 50,
    };
    let run = |seed| {
        let mut net = Network::new(4, seed, faults);
        net.start_all(&[]);
        assert!(net.run_until_decided(&[0, 1, 2, 3], 3, 100_000));
        let history: Vec<(u64, Hash, u32)> = net.nodes[0]
            .decided
            .iter()
            .map(|(h, (v, c))| (*h, v.id(), c.round.0))
            .collect();
        (history, net.now_ms, net.sequence)
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7).2, run(8).2, "different seeds take different paths");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the latencies (hence delivery order), losses and duplicates, with up to f
    /// silent validators: no two different decisions at one height, every decision
    /// certified, no double signing (the harness panics on any of these), and the live
    /// validators keep committing (messages are lost at random, not by an adversary, and
    /// timeouts grow until they exceed the latency).
    #[test]
    fn agreement_and_liveness_under_random_delivery(
        seed in any::<u64>(),
        n in 4usize..=7,
        latency_max_ms in 0u64..800,
        drop_per_mille in 0u64..400,
        duplicate_per_mille in 0u64..200,
        silent_count in 0usize..=2,
    ) {
        let faults = Faults { latency_max_ms, drop_per_mille, duplicate_per_mille };
        let mut net = Network::new(n, seed, faults);
        let f = (n - 1) / 3;
        // The silent ones are picked by the seed too.
        let mut silent = Vec::new();
        while silent.len() < silent_count.min(f) {
            let candidate = net.rng.below(n as u64) as usize;
            if !silent.contains(&candidate) {
                silent.push(candidate);
            }
        }
        net.start_all(&silent);
        let live: Vec<usize> = (0..n).filter(|i| !silent.contains(i)).collect();
        let committed = net.run_until_decided(&live, 3, 30_000);
        net.assert_agreement();
        for node in &net.nodes {
            for (height, (value, certificate)) in &node.decided {
                prop_assert_eq!(certificate.height.0, *height);
                prop_assert_eq!(certificate.value_id, value.id());
            }
        }
        prop_assert!(committed, "live validators stalled (virtual time {} ms)", net.now_ms);
    }
}
