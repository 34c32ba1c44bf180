//! Test fixtures: a small value type, a validator set whose keys the tests hold, and helpers
//! to sign messages as any validator and to pick effects apart.

use crate::config::ConsensusConfig;
use crate::machine::{Consensus, Effect};
use crate::messages::{ConsensusValue, Message, Proposal, ProposalMessage, SignedVote, Vote};
use crate::types::{ChainId, Height, Round, Timeout, TimeoutKind, ValidatorIndex, VoteType};
use crate::validators::ValidatorSet;
use crate::wal::WalEntry;
use borsh::{BorshDeserialize, BorshSerialize};
use dex_types::{Domain, Hash};
use ed25519_dalek::SigningKey;

pub(crate) const CHAIN: ChainId = ChainId(7);
pub(crate) const OTHER_CHAIN: ChainId = ChainId(8);

/// A value whose id is the hash of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct TestValue(pub(crate) Vec<u8>);

impl ConsensusValue for TestValue {
    fn id(&self) -> Hash {
        Hash::of(Domain::Other, &[&self.0])
    }
}

pub(crate) fn value(name: &str) -> TestValue {
    TestValue(name.as_bytes().to_vec())
}

pub(crate) struct Fixture {
    pub(crate) set: ValidatorSet,
    /// Signing keys by validator index.
    pub(crate) keys: Vec<SigningKey>,
    pub(crate) config: ConsensusConfig,
}

impl Fixture {
    /// `powers.len()` validators with those powers (in key order).
    pub(crate) fn new(powers: &[u64]) -> Fixture {
        let seeds: Vec<SigningKey> = (0..powers.len())
            .map(|i| SigningKey::from_bytes(&[u8::try_from(i).unwrap() + 1; 32]))
            .collect();
        let mut by_key: Vec<SigningKey> = seeds.clone();
        by_key.sort_by_key(|k| k.verifying_key().to_bytes());
        let set = ValidatorSet::new(
            by_key
                .iter()
                .zip(powers)
                .map(|(k, p)| (k.verifying_key().to_bytes(), *p)),
        )
        .unwrap();
        for (i, key) in by_key.iter().enumerate() {
            assert_eq!(
                set.index_of(&key.verifying_key()),
                Some(ValidatorIndex(i as u32))
            );
        }
        let mut config = ConsensusConfig::new(CHAIN);
        config.rebroadcast_ms = 0;
        Fixture {
            set,
            keys: by_key,
            config,
        }
    }

    pub(crate) fn equal(n: usize) -> Fixture {
        Fixture::new(&vec![1; n])
    }

    pub(crate) fn core(
        &self,
        who: u32,
        height: u64,
    ) -> (Consensus<TestValue>, Vec<Effect<TestValue>>) {
        Consensus::new(
            self.config.clone(),
            self.set.clone(),
            Some(self.keys[who as usize].clone()),
            Height(height),
        )
        .unwrap()
    }

    pub(crate) fn proposer(&self, height: u64, round: u32) -> u32 {
        self.set.proposer(Height(height), Round(round)).0
    }

    /// A validator other than those in `not`.
    pub(crate) fn other_than(&self, not: &[u32]) -> u32 {
        (0..self.keys.len() as u32)
            .find(|i| !not.contains(i))
            .unwrap()
    }

    pub(crate) fn vote(
        &self,
        who: u32,
        height: u64,
        round: u32,
        vote_type: VoteType,
        value: Option<&TestValue>,
    ) -> SignedVote {
        Vote {
            chain_id: CHAIN,
            height: Height(height),
            round: Round(round),
            vote_type,
            value_id: value.map(ConsensusValue::id),
            validator: ValidatorIndex(who),
        }
        .sign(&self.keys[who as usize])
    }

    pub(crate) fn proposal(
        &self,
        height: u64,
        round: u32,
        value: &TestValue,
        valid_round: Option<u32>,
    ) -> ProposalMessage<TestValue> {
        let proposer = self.proposer(height, round);
        ProposalMessage {
            signed: Proposal {
                chain_id: CHAIN,
                height: Height(height),
                round: Round(round),
                valid_round: valid_round.map(Round),
                value_id: value.id(),
                proposer: ValidatorIndex(proposer),
            }
            .sign(&self.keys[proposer as usize]),
            value: value.clone(),
            polka: None,
        }
    }
}

pub(crate) fn timeout(height: u64, round: u32, kind: TimeoutKind) -> Timeout {
    Timeout {
        height: Height(height),
        round: Round(round),
        kind,
    }
}

/// The votes this node broadcast, as `(type, round, value id)`.
pub(crate) fn broadcast_votes(effects: &[Effect<TestValue>]) -> Vec<(VoteType, u32, Option<Hash>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Broadcast(Message::Vote(v)) => {
                Some((v.vote.vote_type, v.vote.round.0, v.vote.value_id))
            }
            _ => None,
        })
        .collect()
}

/// Every entry this node asked to persist.
pub(crate) fn persisted(effects: &[Effect<TestValue>]) -> Vec<WalEntry<TestValue>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) fn scheduled(effects: &[Effect<TestValue>]) -> Vec<(TimeoutKind, u32)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ScheduleTimeout { timeout, .. } => Some((timeout.kind, timeout.round.0)),
            _ => None,
        })
        .collect()
}

pub(crate) fn entered_rounds(effects: &[Effect<TestValue>]) -> Vec<(u64, u32)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::EnterRound { height, round, .. } => Some((height.0, round.0)),
            _ => None,
        })
        .collect()
}

pub(crate) fn validation_requests(effects: &[Effect<TestValue>]) -> Vec<Hash> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ValidateProposal { value, .. } => Some(value.id()),
            _ => None,
        })
        .collect()
}
