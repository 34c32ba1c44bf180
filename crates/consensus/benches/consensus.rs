//! Benchmarks of the consensus core's CPU cost: certificate verification (what the SDK
//! and a syncing node pay per block) and one whole height among N in-memory validators
//! (signing, verifying and tallying every proposal and vote, no network).
//!
//! Run: `cargo bench -p dex-consensus --bench consensus -- --warm-up-time 1 --measurement-time 3`

use borsh::{BorshDeserialize, BorshSerialize};
use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use dex_consensus::{
    ChainId, CommitCertificate, CommitSignature, Consensus, ConsensusConfig, ConsensusValue,
    Effect, Height, Input, Message, Round, ValidatorIndex, ValidatorSet, Vote, VoteType,
};
use dex_types::{Domain, Hash};
use ed25519_dalek::SigningKey;
use std::collections::VecDeque;

const CHAIN: ChainId = ChainId(1);

#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
struct BenchValue(u64, u32);

impl ConsensusValue for BenchValue {
    fn id(&self) -> Hash {
        Hash::of(
            Domain::Other,
            &[&self.0.to_le_bytes(), &self.1.to_le_bytes()],
        )
    }
}

/// `n` validators with deterministic keys, keys in index order.
fn validators(n: usize) -> (ValidatorSet, Vec<SigningKey>) {
    let mut keys: Vec<SigningKey> = (0..n)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    keys.sort_by_key(|k| k.verifying_key().to_bytes());
    let set = ValidatorSet::new(keys.iter().map(|k| (k.verifying_key().to_bytes(), 1))).unwrap();
    (set, keys)
}

fn certificate(set: &ValidatorSet, keys: &[SigningKey]) -> CommitCertificate {
    let value_id = Hash::of(Domain::Other, &[b"block"]);
    let signers = set.quorum_power() as usize;
    CommitCertificate {
        height: Height(5),
        round: Round(0),
        value_id,
        signatures: keys[..signers]
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let validator = ValidatorIndex(i as u32);
                let vote = Vote {
                    chain_id: CHAIN,
                    height: Height(5),
                    round: Round(0),
                    vote_type: VoteType::Precommit,
                    value_id: Some(value_id),
                    validator,
                };
                CommitSignature {
                    validator,
                    signature: vote.sign(key).signature,
                }
            })
            .collect(),
    }
}

fn certificates(c: &mut Criterion) {
    for n in [4usize, 32, 100] {
        let (set, keys) = validators(n);
        let cert = certificate(&set, &keys);
        c.bench_with_input(
            BenchmarkId::new("consensus::certificate_verify/validators", n),
            &cert,
            |b, cert| b.iter(|| black_box(cert.verify(&set, CHAIN)).unwrap()),
        );
    }
}

/// Run `n` validators through `heights` heights with every message delivered in order;
/// returns a digest of the decided ids so a wrong fast run cannot pass for a right one.
fn run_heights(n: usize, heights: u64) -> Hash {
    let (set, keys) = validators(n);
    let mut config = ConsensusConfig::new(CHAIN);
    config.rebroadcast_ms = 0;
    let mut cores = Vec::new();
    let mut queue: VecDeque<(usize, Input<BenchValue>)> = VecDeque::new();
    let mut starts = Vec::new();
    for key in &keys {
        let (core, effects) =
            Consensus::new(config.clone(), set.clone(), Some(key.clone()), Height(1)).unwrap();
        cores.push(core);
        starts.push(effects);
    }
    let mut decided: Vec<Hash> = Vec::new();
    let mut route = |i: usize, effects: Vec<Effect<BenchValue>>, queue: &mut VecDeque<_>| {
        for effect in effects {
            match effect {
                Effect::Broadcast(Message::Vote(v)) => (0..n)
                    .filter(|j| *j != i)
                    .for_each(|j| queue.push_back((j, Input::Vote(v)))),
                Effect::Broadcast(Message::Proposal(p)) => (0..n)
                    .filter(|j| *j != i)
                    .for_each(|j| queue.push_back((j, Input::Proposal(p.clone())))),
                Effect::RequestValue { height, round, .. } => queue.push_front((
                    i,
                    Input::ProposeValue {
                        height,
                        round,
                        value: BenchValue(height.0, round.0),
                    },
                )),
                Effect::ValidateProposal {
                    height,
                    round,
                    value,
                } => queue.push_front((
                    i,
                    Input::ProposalValidated {
                        height,
                        round,
                        value_id: value.id(),
                        valid: true,
                    },
                )),
                Effect::Decide { value, .. } if i == 0 => decided.push(value.id()),
                _ => {}
            }
        }
    };
    for (i, effects) in starts.into_iter().enumerate() {
        route(i, effects, &mut queue);
    }
    while let Some((i, input)) = queue.pop_front() {
        if cores.iter().all(|c| c.height().0 > heights) {
            break;
        }
        if let Ok(effects) = cores[i].handle(input) {
            route(i, effects, &mut queue);
        }
    }
    assert!(
        cores.iter().all(|c| c.height().0 > heights),
        "every validator decides"
    );
    let parts: Vec<&[u8]> = decided.iter().map(|h| h.as_bytes().as_slice()).collect();
    Hash::of(Domain::EventDigest, &parts)
}

fn heights(c: &mut Criterion) {
    for n in [4usize, 16] {
        println!(
            "consensus::commit_height/validators={n} digest {}",
            run_heights(n, 3)
        );
        c.bench_with_input(
            BenchmarkId::new("consensus::commit_height/validators", n),
            &n,
            |b, &n| b.iter(|| black_box(run_heights(n, 1))),
        );
    }
}

criterion_group!(benches, certificates, heights);
criterion_main!(benches);
