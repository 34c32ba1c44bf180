//! One test per rule of Algorithm 1, driving a single core with messages signed by the
//! other validators of a 4-validator set (quorum 3, "f+1" 2).

use super::*;
use crate::testkit::*;
use crate::types::{Step, TimeoutKind as T, VoteType::*};
use crate::wal::WalEntry;

type Effects = Vec<Effect<TestValue>>;

fn feed(core: &mut Consensus<TestValue>, input: Input<TestValue>) -> Effects {
    core.handle(input).expect("input accepted")
}

fn prevote_from(
    fx: &Fixture,
    core: &mut Consensus<TestValue>,
    who: u32,
    round: u32,
    v: Option<&TestValue>,
) -> Effects {
    feed(
        core,
        Input::Vote(fx.vote(who, core.height().0, round, Prevote, v)),
    )
}

fn precommit_from(
    fx: &Fixture,
    core: &mut Consensus<TestValue>,
    who: u32,
    round: u32,
    v: Option<&TestValue>,
) -> Effects {
    feed(
        core,
        Input::Vote(fx.vote(who, core.height().0, round, Precommit, v)),
    )
}

fn validated(core: &mut Consensus<TestValue>, round: u32, v: &TestValue, valid: bool) -> Effects {
    feed(
        core,
        Input::ProposalValidated {
            height: core.height(),
            round: Round(round),
            value_id: v.id(),
            valid,
        },
    )
}

fn fire(core: &mut Consensus<TestValue>, round: u32, kind: TimeoutKind) -> Effects {
    let height = core.height().0;
    feed(core, Input::Timeout(timeout(height, round, kind)))
}

fn decisions(effects: &Effects) -> Vec<(TestValue, CommitCertificate)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Decide { value, certificate } => Some((value.clone(), certificate.clone())),
            _ => None,
        })
        .collect()
}

fn evidence(effects: &Effects) -> Vec<Evidence> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::RecordEvidence(e) => Some(*e),
            _ => None,
        })
        .collect()
}

/// The validators other than `me`, in index order.
fn others(fx: &Fixture, me: u32) -> Vec<u32> {
    (0..fx.keys.len() as u32).filter(|i| *i != me).collect()
}

/// Bring `core` (not the proposer of `round`) to a lock on `v` in `round`: proposal,
/// validation, own prevote, and two more prevotes for `v`.
fn lock_on(
    fx: &Fixture,
    core: &mut Consensus<TestValue>,
    me: u32,
    round: u32,
    v: &TestValue,
) -> Effects {
    let height = core.height().0;
    let mut out = feed(core, Input::Proposal(fx.proposal(height, round, v, None)));
    out.extend(validated(core, round, v, true));
    for who in others(fx, me).into_iter().take(2) {
        out.extend(prevote_from(fx, core, who, round, Some(v)));
    }
    assert_eq!(core.locked(), Some((Round(round), v.id())));
    out
}

// ----- Alg.1 L22-27, L36-43, L49-54: the normal case -----

#[test]
fn normal_commit_in_round_zero() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, start) = fx.core(me, 1);
    assert_eq!(entered_rounds(&start), [(1, 0)]);
    assert_eq!(scheduled(&start), [(T::Propose, 0)]);
    assert!(matches!(
        start[0],
        Effect::StartHeight { height: Height(1) }
    ));

    let v = value("block 1");
    let out = feed(&mut core, Input::Proposal(fx.proposal(1, 0, &v, None)));
    assert_eq!(validation_requests(&out), [v.id()]);
    // Never a prevote for a value the host has not called valid.
    assert!(broadcast_votes(&out).is_empty());
    assert_eq!(core.step(), Step::Propose);

    // Alg.1 L22-24: valid and unlocked: prevote it, persisted before it is sent.
    let out = validated(&mut core, 0, &v, true);
    assert_eq!(broadcast_votes(&out), [(Prevote, 0, Some(v.id()))]);
    let persist = out
        .iter()
        .position(|e| matches!(e, Effect::Persist(_)))
        .unwrap();
    let send = out
        .iter()
        .position(|e| matches!(e, Effect::Broadcast(_)))
        .unwrap();
    assert!(persist < send);
    assert_eq!(core.step(), Step::Prevote);

    let rest = others(&fx, me);
    assert!(prevote_from(&fx, &mut core, rest[0], 0, Some(&v)).is_empty());
    // Alg.1 L34 (timer) and L36-41: 2f+1 prevotes for v: lock and precommit.
    let out = prevote_from(&fx, &mut core, rest[1], 0, Some(&v));
    assert_eq!(scheduled(&out), [(T::Prevote, 0)]);
    assert_eq!(broadcast_votes(&out), [(Precommit, 0, Some(v.id()))]);
    assert_eq!(core.locked(), Some((Round(0), v.id())));
    assert_eq!(core.valid(), Some((Round(0), v.id())));
    assert_eq!(core.step(), Step::Precommit);

    assert!(precommit_from(&fx, &mut core, rest[0], 0, Some(&v)).is_empty());
    // Alg.1 L49-54: 2f+1 precommits for v: decide, then height 2 starts at once.
    let out = precommit_from(&fx, &mut core, rest[1], 0, Some(&v));
    let decided = decisions(&out);
    assert_eq!(decided.len(), 1);
    let (value, certificate) = &decided[0];
    assert_eq!(value, &v);
    assert_eq!(
        (certificate.height, certificate.round),
        (Height(1), Round(0))
    );
    assert_eq!(certificate.signatures.len(), 3);
    certificate.verify(&fx.set, CHAIN).unwrap();
    assert!(
        out.iter()
            .any(|e| matches!(e, Effect::StartHeight { height: Height(2) }))
    );
    assert_eq!(entered_rounds(&out), [(2, 0)]);
    assert_eq!(
        (core.height(), core.round(), core.step()),
        (Height(2), Round(0), Step::Propose)
    );
    assert_eq!(core.locked(), None);
    assert_eq!(core.valid(), None);
}

#[test]
fn proposer_asks_host_for_value_and_prevotes_it_without_validation() {
    let fx = Fixture::equal(4);
    let me = fx.proposer(1, 0);
    let (mut core, start) = fx.core(me, 1);
    assert!(start.iter().any(|e| matches!(
        e,
        Effect::RequestValue {
            height: Height(1),
            round: Round(0),
            batch_ms: 50
        }
    )));
    // The propose timeout runs for the proposer too (its host may never answer).
    assert_eq!(scheduled(&start), [(T::Propose, 0)]);

    let v = value("my block");
    let out = feed(
        &mut core,
        Input::ProposeValue {
            height: Height(1),
            round: Round(0),
            value: v.clone(),
        },
    );
    let persisted = persisted(&out);
    assert_eq!(persisted.len(), 2);
    match &persisted[0] {
        WalEntry::Signed(Message::Proposal(p)) => {
            assert_eq!(p.value, v);
            assert_eq!(p.signed.proposal.valid_round, None);
            p.verify(&fx.set, CHAIN).unwrap();
        }
        other => panic!("expected the proposal first, got {other:?}"),
    }
    assert!(validation_requests(&out).is_empty());
    assert_eq!(broadcast_votes(&out), [(Prevote, 0, Some(v.id()))]);

    // A second answer for the same round is ignored; a stale one too.
    let again = feed(
        &mut core,
        Input::ProposeValue {
            height: Height(1),
            round: Round(0),
            value: value("other"),
        },
    );
    assert!(again.is_empty());
    let stale = feed(
        &mut core,
        Input::ProposeValue {
            height: Height(0),
            round: Round(0),
            value: value("old"),
        },
    );
    assert!(stale.is_empty());
}

#[test]
fn propose_value_to_a_non_proposer_is_a_host_error() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let err = core
        .handle(Input::ProposeValue {
            height: Height(1),
            round: Round(0),
            value: value("x"),
        })
        .unwrap_err();
    assert_eq!(
        err,
        ConsensusError::NotProposer {
            height: Height(1),
            round: Round(0)
        }
    );
}

// ----- Alg.1 L57-67, L34, L44, L47: timeouts and nil -----

#[test]
fn proposer_timeout_gives_nil_votes_and_next_round() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);

    // Alg.1 L57-60.
    let out = fire(&mut core, 0, T::Propose);
    assert_eq!(broadcast_votes(&out), [(Prevote, 0, None)]);
    assert_eq!(core.step(), Step::Prevote);
    // A second firing does nothing.
    assert!(fire(&mut core, 0, T::Propose).is_empty());

    prevote_from(&fx, &mut core, rest[0], 0, None);
    // Alg.1 L34-35 then L44-46: 2f+1 nil prevotes.
    let out = prevote_from(&fx, &mut core, rest[1], 0, None);
    assert_eq!(scheduled(&out), [(T::Prevote, 0)]);
    assert_eq!(broadcast_votes(&out), [(Precommit, 0, None)]);
    assert_eq!(core.step(), Step::Precommit);
    // The L34 timer is scheduled once per round.
    assert!(scheduled(&prevote_from(&fx, &mut core, rest[2], 0, None)).is_empty());

    precommit_from(&fx, &mut core, rest[0], 0, None);
    // Alg.1 L47-48.
    let out = precommit_from(&fx, &mut core, rest[1], 0, None);
    assert_eq!(scheduled(&out), [(T::Precommit, 0)]);
    assert!(scheduled(&precommit_from(&fx, &mut core, rest[2], 0, None)).is_empty());

    // Alg.1 L65-67: next round, with a longer propose timeout.
    let out = fire(&mut core, 0, T::Precommit);
    assert_eq!(entered_rounds(&out), [(1, 1)]);
    let duration = out.iter().find_map(|e| match e {
        Effect::ScheduleTimeout {
            timeout,
            duration_ms,
        } if timeout.kind == T::Propose => Some(*duration_ms),
        _ => None,
    });
    assert_eq!(
        duration,
        Some(fx.config.propose.base_ms + fx.config.propose.delta_ms)
    );
    assert_eq!((core.round(), core.step()), (Round(1), Step::Propose));
    // Timers of the old round are now stale.
    assert!(fire(&mut core, 0, T::Precommit).is_empty());
    assert!(fire(&mut core, 0, T::Propose).is_empty());
}

#[test]
fn split_prevotes_wait_for_the_prevote_timeout() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    let v = value("v");
    fire(&mut core, 0, T::Propose); // own nil prevote
    prevote_from(&fx, &mut core, rest[0], 0, Some(&v));
    let out = prevote_from(&fx, &mut core, rest[1], 0, Some(&v));
    // 2f+1 prevotes of any kind but no polka: only the timer.
    assert_eq!(scheduled(&out), [(T::Prevote, 0)]);
    assert!(broadcast_votes(&out).is_empty());
    // Alg.1 L61-64.
    let out = fire(&mut core, 0, T::Prevote);
    assert_eq!(broadcast_votes(&out), [(Precommit, 0, None)]);
    assert_eq!(core.step(), Step::Precommit);
    assert!(fire(&mut core, 0, T::Prevote).is_empty());
}

// ----- locks: Alg.1 L23, L28-29, L36-41 -----

#[test]
fn lock_is_kept_across_rounds_and_released_only_by_a_newer_polka() {
    let fx = Fixture::equal(4);
    // `me` proposes in none of rounds 0-2.
    let me = fx.proposer(1, 3);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    let v = value("v");
    let w = value("w");

    // Round 0: lock on v; the others precommit nil, so no decision.
    let out = lock_on(&fx, &mut core, me, 0, &v);
    assert_eq!(
        broadcast_votes(&out).last(),
        Some(&(Precommit, 0, Some(v.id())))
    );
    precommit_from(&fx, &mut core, rest[0], 0, None);
    precommit_from(&fx, &mut core, rest[1], 0, None);
    fire(&mut core, 0, T::Precommit);
    assert_eq!(core.round(), Round(1));

    // Round 1: a fresh proposal of another value gets nil at once (Alg.1 L23, L26),
    // without waiting for its validation.
    let out = feed(&mut core, Input::Proposal(fx.proposal(1, 1, &w, None)));
    assert_eq!(validation_requests(&out), [w.id()]);
    assert_eq!(broadcast_votes(&out), [(Prevote, 1, None)]);
    assert_eq!(core.locked(), Some((Round(0), v.id())));
    validated(&mut core, 1, &w, true);

    // Two validators move on to round 2: f+1 of the power, so this node follows (L55).
    prevote_from(&fx, &mut core, rest[0], 2, None);
    let out = prevote_from(&fx, &mut core, rest[1], 2, None);
    assert_eq!(entered_rounds(&out), [(1, 2)]);

    // Round 2: w is re-proposed claiming a polka in round 1, which this node has not seen:
    // it waits (Alg.1 L28 needs the 2f+1 prevotes) and stays locked on v.
    let out = feed(&mut core, Input::Proposal(fx.proposal(1, 2, &w, Some(1))));
    assert!(broadcast_votes(&out).is_empty());
    assert_eq!(core.locked(), Some((Round(0), v.id())));

    // The late round-1 prevotes for w arrive: a polka newer than the lock (0 ≤ 1), so the
    // lock no longer forbids w (Alg.1 L28-30).
    prevote_from(&fx, &mut core, rest[0], 1, Some(&w));
    prevote_from(&fx, &mut core, rest[1], 1, Some(&w));
    let out = prevote_from(&fx, &mut core, rest[2], 1, Some(&w));
    assert_eq!(broadcast_votes(&out), [(Prevote, 2, Some(w.id()))]);
}

#[test]
fn a_stale_polka_does_not_release_the_lock() {
    let fx = Fixture::equal(4);
    let me = fx.proposer(1, 3);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    let v = value("v");
    let w = value("w");
    // Round 0: this node saw no proposal in time and prevoted nil; the round ends.
    fire(&mut core, 0, T::Propose);
    for who in &rest {
        precommit_from(&fx, &mut core, *who, 0, None);
    }
    fire(&mut core, 0, T::Precommit);
    // Round 1: lock on v.
    assert_eq!(core.round(), Round(1));
    lock_on(&fx, &mut core, me, 1, &v);
    // A round-0 polka for w shows up now (prevotes this node had missed).
    for who in &rest {
        prevote_from(&fx, &mut core, *who, 0, Some(&w));
    }
    // Round 2 re-proposes w with valid round 0 < locked round 1: nil (Alg.1 L29, L32).
    for who in &rest[..2] {
        precommit_from(&fx, &mut core, *who, 2, None);
    }
    assert_eq!(core.round(), Round(2));
    let out = feed(&mut core, Input::Proposal(fx.proposal(1, 2, &w, Some(0))));
    validated(&mut core, 2, &w, true);
    assert_eq!(broadcast_votes(&out), [(Prevote, 2, None)]);
    assert_eq!(core.locked(), Some((Round(1), v.id())));
}

#[test]
fn valid_value_is_reproposed_without_asking_the_host() {
    let fx = Fixture::equal(4);
    let me = fx.proposer(1, 1);
    assert_ne!(me, fx.proposer(1, 0));
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    let v = value("v");
    lock_on(&fx, &mut core, me, 0, &v);
    assert_eq!(core.valid(), Some((Round(0), v.id())));
    precommit_from(&fx, &mut core, rest[0], 0, None);
    precommit_from(&fx, &mut core, rest[1], 0, None);

    // Alg.1 L14-16, L19: round 1's proposer re-proposes validValue with validRound.
    let out = fire(&mut core, 0, T::Precommit);
    assert!(!out.iter().any(|e| matches!(e, Effect::RequestValue { .. })));
    let proposal = out
        .iter()
        .find_map(|e| match e {
            Effect::Broadcast(Message::Proposal(p)) => Some(p.clone()),
            _ => None,
        })
        .expect("re-proposal");
    assert_eq!(proposal.value, v);
    assert_eq!(proposal.signed.proposal.round, Round(1));
    assert_eq!(proposal.signed.proposal.valid_round, Some(Round(0)));
    // And prevotes it by Alg.1 L28-30 (polka at 0, locked at 0).
    assert_eq!(broadcast_votes(&out), [(Prevote, 1, Some(v.id()))]);
}

// ----- Alg.1 L55-56: round skip -----

#[test]
fn f_plus_one_from_higher_rounds_skips_ahead() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    // One validator (a quarter of the power) cannot move anyone.
    assert!(entered_rounds(&prevote_from(&fx, &mut core, rest[0], 3, None)).is_empty());
    assert_eq!(core.round(), Round(0));
    // A second one at round 5: validators above a third of the power have reached round 3.
    let out = precommit_from(&fx, &mut core, rest[1], 5, None);
    assert_eq!(entered_rounds(&out), [(1, 3)]);
    assert_eq!((core.round(), core.step()), (Round(3), Step::Propose));
}

#[test]
fn rounds_beyond_the_window_are_rejected_but_still_count_for_the_skip() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    let err = core
        .handle(Input::Vote(fx.vote(rest[0], 1, 50, Prevote, None)))
        .unwrap_err();
    assert_eq!(
        err,
        ConsensusError::RoundTooFarAhead {
            round: Round(50),
            current: Round(0),
            max_ahead: 8
        }
    );
    let out = feed(
        &mut core,
        Input::Vote(fx.vote(rest[1], 1, 60, Prevote, None)),
    );
    assert_eq!(entered_rounds(&out), [(1, 50)]);
    assert_eq!(core.round(), Round(50));
}

// ----- Alg.1 L49: decision for a proposal of an earlier round -----

#[test]
fn late_proposal_is_decided_by_earlier_round_precommits() {
    let fx = Fixture::equal(4);
    let me = fx.proposer(1, 3);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    let v = value("v");
    fire(&mut core, 0, T::Propose); // no proposal in time: nil
    for who in &rest {
        precommit_from(&fx, &mut core, *who, 0, Some(&v));
    }
    // 2f+1 precommits for v but no proposal: no decision, only the L47 timer.
    let out = fire(&mut core, 0, T::Precommit);
    assert!(decisions(&out).is_empty());
    assert_eq!(core.round(), Round(1));

    // The round-0 proposal arrives late; it is validated, then decided (Alg.1 L49-51).
    let out = feed(&mut core, Input::Proposal(fx.proposal(1, 0, &v, None)));
    assert_eq!(validation_requests(&out), [v.id()]);
    assert!(decisions(&out).is_empty());
    let out = validated(&mut core, 0, &v, true);
    let decided = decisions(&out);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].0, v);
    assert_eq!(decided[0].1.round, Round(0));
    let signers: Vec<u32> = decided[0]
        .1
        .signatures
        .iter()
        .map(|s| s.validator.0)
        .collect();
    assert_eq!(signers, rest);
    decided[0].1.verify(&fx.set, CHAIN).unwrap();
    assert_eq!(core.height(), Height(2));
}

#[test]
fn an_invalid_value_is_never_decided() {
    let fx = Fixture::equal(4);
    let me = fx.proposer(1, 3);
    let (mut core, _) = fx.core(me, 1);
    let v = value("bad");
    feed(&mut core, Input::Proposal(fx.proposal(1, 0, &v, None)));
    validated(&mut core, 0, &v, false);
    let mut out = Vec::new();
    for who in others(&fx, me) {
        out.extend(precommit_from(&fx, &mut core, who, 0, Some(&v)));
    }
    assert!(decisions(&out).is_empty());
    assert_eq!(core.height(), Height(1));
}

// ----- validity -----

#[test]
fn invalid_value_gets_a_nil_prevote() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let v = value("bad block");
    feed(&mut core, Input::Proposal(fx.proposal(1, 0, &v, None)));
    let out = validated(&mut core, 0, &v, false);
    assert_eq!(broadcast_votes(&out), [(Prevote, 0, None)]);
    // A later contradicting verdict changes nothing.
    assert!(validated(&mut core, 0, &v, true).is_empty());
    // Verdicts for unknown values or other heights are ignored.
    assert!(validated(&mut core, 0, &value("never proposed"), true).is_empty());
}

#[test]
fn even_a_polka_does_not_lock_an_invalid_value() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let v = value("bad block");
    feed(&mut core, Input::Proposal(fx.proposal(1, 0, &v, None)));
    validated(&mut core, 0, &v, false);
    let mut out = Vec::new();
    for who in others(&fx, me) {
        out.extend(prevote_from(&fx, &mut core, who, 0, Some(&v)));
    }
    assert_eq!(core.locked(), None);
    assert!(
        !broadcast_votes(&out)
            .iter()
            .any(|(t, _, id)| *t == Precommit && id.is_some())
    );
}

// ----- equivocation -----

#[test]
fn conflicting_votes_are_recorded_once_and_counted_once() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    let (v, w) = (value("v"), value("w"));
    feed(&mut core, Input::Proposal(fx.proposal(1, 0, &w, None)));
    validated(&mut core, 0, &w, true); // own prevote for w

    let cheater = rest[0];
    assert!(evidence(&prevote_from(&fx, &mut core, cheater, 0, Some(&v))).is_empty());
    let out = prevote_from(&fx, &mut core, cheater, 0, Some(&w));
    let found = evidence(&out);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].validator(), ValidatorIndex(cheater));
    found[0].verify(&fx.set, CHAIN).unwrap();
    // The second vote does not count: w has only 2 of the 3 prevotes it needs.
    assert!(broadcast_votes(&out).is_empty());
    // A third conflicting vote is dropped without more evidence; a duplicate is harmless.
    assert!(evidence(&prevote_from(&fx, &mut core, cheater, 0, None)).is_empty());
    assert!(prevote_from(&fx, &mut core, cheater, 0, Some(&v)).is_empty());

    // Two honest prevotes for w complete the polka.
    assert!(broadcast_votes(&prevote_from(&fx, &mut core, rest[1], 0, Some(&w))).is_empty());
    let out = prevote_from(&fx, &mut core, rest[2], 0, Some(&w));
    assert_eq!(broadcast_votes(&out), [(Precommit, 0, Some(w.id()))]);
}

#[test]
fn conflicting_proposals_are_recorded() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let (v, w) = (value("v"), value("w"));
    feed(&mut core, Input::Proposal(fx.proposal(1, 0, &v, None)));
    let out = feed(&mut core, Input::Proposal(fx.proposal(1, 0, &w, None)));
    let found = evidence(&out);
    assert_eq!(found.len(), 1);
    assert!(matches!(found[0], Evidence::ConflictingProposals { .. }));
    found[0].verify(&fx.set, CHAIN).unwrap();
    // The second value is validated too: the network may be voting on it.
    assert_eq!(validation_requests(&out), [w.id()]);
    assert!(
        evidence(&feed(
            &mut core,
            Input::Proposal(fx.proposal(1, 0, &value("x"), None))
        ))
        .is_empty()
    );
}

// ----- restart -----

fn wal_of(effects: &[Effects]) -> Vec<WalEntry<TestValue>> {
    effects.iter().flat_map(|e| persisted(e)).collect()
}

fn restore(
    fx: &Fixture,
    me: u32,
    height: u64,
    wal: Vec<WalEntry<TestValue>>,
) -> (Consensus<TestValue>, Effects) {
    Consensus::restore(
        fx.config.clone(),
        fx.set.clone(),
        Some(fx.keys[me as usize].clone()),
        Height(height),
        wal,
    )
    .unwrap()
}

#[test]
fn restart_never_signs_a_conflicting_vote() {
    let fx = Fixture::equal(4);
    let me = fx.proposer(1, 3);
    let rest = others(&fx, me);
    let (v, w) = (value("v"), value("w"));

    // Before the crash: no proposal in time, so a nil prevote is logged.
    let (mut core, start) = fx.core(me, 1);
    let before = fire(&mut core, 0, T::Propose);
    let wal = wal_of(&[start, before]);
    assert_eq!(wal.len(), 1);

    // After the restart the node is in the prevote step of round 0 and re-sends its vote.
    let (mut core, resumed) = restore(&fx, me, 1, wal.clone());
    assert_eq!((core.round(), core.step()), (Round(0), Step::Prevote));
    assert!(persisted(&resumed).is_empty());
    assert_eq!(broadcast_votes(&resumed), [(Prevote, 0, None)]);
    assert_eq!(scheduled(&resumed), [(T::Prevote, 0)]);

    // The round-0 proposal arrives now, valid, with a polka: no second prevote is signed.
    let mut after = vec![feed(
        &mut core,
        Input::Proposal(fx.proposal(1, 0, &v, None)),
    )];
    after.push(validated(&mut core, 0, &v, true));
    after.push(fire(&mut core, 0, T::Propose));
    for who in &rest {
        after.push(prevote_from(&fx, &mut core, *who, 0, Some(&v)));
    }
    let logged: Vec<WalEntry<TestValue>> = wal.iter().cloned().chain(wal_of(&after)).collect();
    let prevotes: Vec<_> = logged
        .iter()
        .filter_map(|m| match m {
            WalEntry::Signed(Message::Vote(v))
                if v.vote.vote_type == Prevote && v.vote.round == Round(0) =>
            {
                Some(v.vote.value_id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(prevotes, [None]);
    // The polka still moves it on: precommit for v (a precommit is a different slot).
    assert_eq!(core.locked(), Some((Round(0), v.id())));

    // The valid value was logged (with its polka) before the precommit.
    assert!(matches!(&logged[1], WalEntry::Valid { value, .. } if *value == v));

    // Crash again after that precommit; lock and valid value come back from the log.
    let (mut core, resumed) = restore(&fx, me, 1, logged);
    assert_eq!(core.locked(), Some((Round(0), v.id())));
    assert_eq!(core.valid(), Some((Round(0), v.id())));
    assert_eq!(core.step(), Step::Precommit);
    assert_eq!(
        broadcast_votes(&resumed),
        [(Prevote, 0, None), (Precommit, 0, Some(v.id()))]
    );
    // Next round, another value: the restored lock forbids it.
    fire(&mut core, 0, T::Precommit);
    let out = feed(&mut core, Input::Proposal(fx.proposal(1, 1, &w, None)));
    assert_eq!(broadcast_votes(&out), [(Prevote, 1, None)]);
}

#[test]
fn restarted_proposer_resends_its_proposal_and_never_makes_another() {
    let fx = Fixture::equal(4);
    let me = fx.proposer(1, 0);
    let (mut core, start) = fx.core(me, 1);
    let v = value("mine");
    let out = feed(
        &mut core,
        Input::ProposeValue {
            height: Height(1),
            round: Round(0),
            value: v.clone(),
        },
    );
    let wal = wal_of(&[start, out]);
    assert_eq!(wal.len(), 2); // the proposal and the prevote

    // Crash between persisting the proposal and anything else.
    let (core, resumed) = restore(&fx, me, 1, wal[..1].to_vec());
    assert!(
        !resumed
            .iter()
            .any(|e| matches!(e, Effect::RequestValue { .. }))
    );
    let sent: Vec<_> = resumed
        .iter()
        .filter_map(|e| match e {
            Effect::Broadcast(Message::Proposal(p)) => Some(p.value.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(sent, std::slice::from_ref(&v));
    // Its own proposal is valid to it, so it prevotes it (first time, so persisted).
    assert_eq!(broadcast_votes(&resumed), [(Prevote, 0, Some(v.id()))]);
    assert_eq!(persisted(&resumed).len(), 1);
    assert_eq!(core.step(), Step::Prevote);
}

#[test]
fn restore_rejects_bad_logs() {
    let fx = Fixture::equal(4);
    let me = 0;
    let mine = |round, v: Option<&TestValue>| Message::Vote(fx.vote(me, 1, round, Prevote, v));
    let try_restore = |wal: Vec<Message<TestValue>>| {
        Consensus::<TestValue>::restore(
            fx.config.clone(),
            fx.set.clone(),
            Some(fx.keys[me as usize].clone()),
            Height(1),
            wal.into_iter().map(WalEntry::Signed),
        )
        .map(|_| ())
    };
    // A logged valid value whose polka is not for it.
    let polka = crate::certificate::PolkaCertificate {
        height: Height(1),
        round: Round(0),
        value_id: value("v").id(),
        signatures: Vec::new(),
    };
    let bad_valid = Consensus::<TestValue>::restore(
        fx.config.clone(),
        fx.set.clone(),
        Some(fx.keys[me as usize].clone()),
        Height(1),
        [WalEntry::Valid {
            value: value("w"),
            polka: polka.clone(),
        }],
    );
    assert_eq!(
        bad_valid.map(|_| ()),
        Err(SetupError::WalInvalidEntry(MessageError::PolkaMismatch))
    );
    let weak_valid = Consensus::<TestValue>::restore(
        fx.config.clone(),
        fx.set.clone(),
        Some(fx.keys[me as usize].clone()),
        Height(1),
        [WalEntry::Valid {
            value: value("v"),
            polka,
        }],
    );
    assert!(matches!(
        weak_valid.map(|_| ()),
        Err(SetupError::WalInvalidEntry(MessageError::InvalidPolka(_)))
    ));
    assert_eq!(
        try_restore(vec![Message::Vote(fx.vote(1, 1, 0, Prevote, None))]),
        Err(SetupError::WalForeignEntry {
            signer: ValidatorIndex(1)
        })
    );
    assert_eq!(
        try_restore(vec![mine(0, None), mine(0, Some(&value("v")))]),
        Err(SetupError::WalConflict { round: Round(0) })
    );
    assert_eq!(
        try_restore(vec![Message::Vote(fx.vote(me, 2, 0, Prevote, None))]),
        Err(SetupError::WalAheadOfHeight {
            entry_height: Height(2),
            height: Height(1)
        })
    );
    let mut forged = fx.vote(me, 1, 0, Prevote, None);
    forged.signature.0[0] ^= 1;
    assert!(matches!(
        try_restore(vec![Message::Vote(forged)]),
        Err(SetupError::WalInvalidEntry(
            MessageError::InvalidSignature { .. }
        ))
    ));
    // Older heights are skipped; duplicates are fine.
    assert_eq!(
        try_restore(vec![
            Message::Vote(fx.vote(me, 0, 4, Prevote, None)),
            mine(0, None),
            mine(0, None)
        ]),
        Ok(())
    );
    // A key outside the set.
    let stranger = SigningKey::from_bytes(&[99; 32]);
    assert_eq!(
        Consensus::<TestValue>::new(fx.config.clone(), fx.set.clone(), Some(stranger), Height(1))
            .map(|_| ()),
        Err(SetupError::NotAValidator)
    );
}

// ----- intake checks and bounds -----

#[test]
fn messages_outside_the_window_are_rejected_with_typed_errors() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(5, 0)]);
    let (mut core, _) = fx.core(me, 5);
    let other = fx.other_than(&[me]);
    assert_eq!(
        core.handle(Input::Vote(fx.vote(other, 4, 0, Prevote, None)))
            .unwrap_err(),
        ConsensusError::HeightBehind {
            height: Height(4),
            current: Height(5),
            sender: ValidatorIndex(other)
        }
    );
    assert_eq!(
        core.handle(Input::Vote(fx.vote(other, 8, 0, Prevote, None)))
            .unwrap_err(),
        ConsensusError::HeightTooFarAhead {
            height: Height(8),
            current: Height(5),
            max_ahead: 2
        }
    );
    let mut forged = fx.vote(other, 5, 0, Prevote, None);
    forged.signature.0[10] ^= 0x40;
    assert_eq!(
        core.handle(Input::Vote(forged)).unwrap_err(),
        ConsensusError::Message(MessageError::InvalidSignature {
            validator: ValidatorIndex(other)
        })
    );
    let mut unknown = fx.vote(other, 5, 0, Prevote, None);
    unknown.vote.validator = ValidatorIndex(17);
    assert!(matches!(
        core.handle(Input::Vote(unknown)).unwrap_err(),
        ConsensusError::Message(MessageError::UnknownValidator { .. })
    ));
    let mut other_chain = fx.vote(other, 5, 0, Prevote, None).vote;
    other_chain.chain_id = OTHER_CHAIN;
    let other_chain = other_chain.sign(&fx.keys[other as usize]);
    assert_eq!(
        core.handle(Input::Vote(other_chain)).unwrap_err(),
        ConsensusError::Message(MessageError::WrongChain {
            expected: CHAIN,
            got: OTHER_CHAIN
        })
    );
    // A proposal signed by someone who is not the round's proposer.
    let mut proposal = fx.proposal(5, 0, &value("v"), None);
    proposal.signed = Proposal {
        proposer: ValidatorIndex(me),
        ..proposal.signed.proposal
    }
    .sign(&fx.keys[me as usize]);
    assert!(matches!(
        core.handle(Input::Proposal(proposal)).unwrap_err(),
        ConsensusError::WrongProposer { .. }
    ));
    // A proposal whose value is not the one signed.
    let mut proposal = fx.proposal(5, 0, &value("v"), None);
    proposal.value = value("swapped");
    assert!(matches!(
        core.handle(Input::Proposal(proposal)).unwrap_err(),
        ConsensusError::Message(MessageError::ValueIdMismatch { .. })
    ));
    // Nothing was counted.
    assert_eq!((core.round(), core.step()), (Round(0), Step::Propose));
}

#[test]
fn old_rounds_are_forgotten() {
    let mut fx = Fixture::equal(4);
    fx.config.max_rounds_behind = 1;
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    prevote_from(&fx, &mut core, rest[0], 3, None);
    prevote_from(&fx, &mut core, rest[1], 3, None);
    assert_eq!(core.round(), Round(3));
    assert_eq!(
        core.handle(Input::Vote(fx.vote(rest[2], 1, 1, Prevote, None)))
            .unwrap_err(),
        ConsensusError::RoundTooOld {
            round: Round(1),
            oldest_kept: Round(2)
        }
    );
    assert!(
        core.handle(Input::Vote(fx.vote(rest[2], 1, 2, Prevote, None)))
            .is_ok()
    );
}

#[test]
fn next_height_messages_are_buffered_and_replayed() {
    let fx = Fixture::equal(4);
    let me = fx.proposer(1, 3);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    let v = value("h1");
    let next = value("h2");
    // The height-2 proposal arrives before this node decided height 1.
    let early = fx.proposal(2, 0, &next, None);
    assert!(feed(&mut core, Input::Proposal(early)).is_empty());
    // A chatty validator's buffer is bounded: only its latest messages are kept.
    let chatty = fx.other_than(&[me, fx.proposer(2, 0)]);
    for round in 0..20 {
        feed(
            &mut core,
            Input::Vote(fx.vote(chatty, 2, round, Prevote, None)),
        );
    }
    assert_eq!(
        core.future[&ValidatorIndex(chatty)].len(),
        fx.config.buffered_messages_per_validator
    );

    lock_on(&fx, &mut core, me, 0, &v);
    precommit_from(&fx, &mut core, rest[0], 0, Some(&v));
    let out = precommit_from(&fx, &mut core, rest[1], 0, Some(&v));
    assert_eq!(decisions(&out).len(), 1);
    // The buffered proposal was replayed into height 2 and sent for validation.
    assert_eq!(validation_requests(&out), [next.id()]);
    assert_eq!(core.height(), Height(2));
    assert!(core.future.is_empty());
}

// ----- sync and observers -----

fn certificate_for(
    fx: &Fixture,
    signers: &[u32],
    height: u64,
    round: u32,
    v: &TestValue,
) -> CommitCertificate {
    CommitCertificate {
        height: Height(height),
        round: Round(round),
        value_id: v.id(),
        signatures: signers
            .iter()
            .map(|&who| crate::certificate::CommitSignature {
                validator: ValidatorIndex(who),
                signature: fx.vote(who, height, round, Precommit, Some(v)).signature,
            })
            .collect(),
    }
}

#[test]
fn synced_decision_is_verified_and_moves_to_the_next_height() {
    let fx = Fixture::equal(4);
    let (mut core, _) = fx.core(0, 1);
    let v = value("fetched");
    let weak = certificate_for(&fx, &[1, 2], 1, 3, &v);
    assert!(matches!(
        core.handle(Input::Decided {
            value: v.clone(),
            certificate: weak
        })
        .unwrap_err(),
        ConsensusError::Certificate(CertificateError::InsufficientPower { .. })
    ));
    let good = certificate_for(&fx, &[1, 2, 3], 1, 3, &v);
    assert!(matches!(
        core.handle(Input::Decided {
            value: value("other"),
            certificate: good.clone()
        })
        .unwrap_err(),
        ConsensusError::SyncValueMismatch { .. }
    ));
    let ahead = certificate_for(&fx, &[1, 2, 3], 2, 0, &v);
    assert!(matches!(
        core.handle(Input::Decided {
            value: v.clone(),
            certificate: ahead
        })
        .unwrap_err(),
        ConsensusError::SyncHeightMismatch { .. }
    ));
    let out = feed(
        &mut core,
        Input::Decided {
            value: v.clone(),
            certificate: good.clone(),
        },
    );
    assert_eq!(decisions(&out), [(v, good)]);
    assert_eq!(core.height(), Height(2));
}

#[test]
fn observer_follows_and_decides_without_signing() {
    let fx = Fixture::equal(4);
    let (mut core, start) =
        Consensus::<TestValue>::new(fx.config.clone(), fx.set.clone(), None, Height(1)).unwrap();
    assert_eq!(core.own_index(), None);
    let v = value("v");
    let mut all = start;
    all.extend(feed(
        &mut core,
        Input::Proposal(fx.proposal(1, 0, &v, None)),
    ));
    all.extend(validated(&mut core, 0, &v, true));
    for who in 0..3 {
        all.extend(prevote_from(&fx, &mut core, who, 0, Some(&v)));
    }
    for who in 0..3 {
        all.extend(precommit_from(&fx, &mut core, who, 0, Some(&v)));
    }
    assert!(persisted(&all).is_empty());
    assert!(
        !all.iter()
            .any(|e| matches!(e, Effect::Broadcast(_) | Effect::RequestValue { .. }))
    );
    assert_eq!(decisions(&all).len(), 1);
}

#[test]
fn rebroadcast_timer_resends_own_messages_of_the_round() {
    let mut fx = Fixture::equal(4);
    fx.config.rebroadcast_ms = 200;
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, start) = fx.core(me, 1);
    assert!(scheduled(&start).contains(&(T::Rebroadcast, 0)));
    fire(&mut core, 0, T::Propose);
    let out = fire(&mut core, 0, T::Rebroadcast);
    assert_eq!(broadcast_votes(&out), [(Prevote, 0, None)]);
    assert!(persisted(&out).is_empty());
    assert_eq!(scheduled(&out), [(T::Rebroadcast, 0)]);
}

#[test]
fn weighted_quorum_uses_power_not_heads() {
    // One validator holds 5 of 8: alone it is not a quorum (5/8 < 2/3), with any other it is.
    let fx = Fixture::new(&[5, 1, 1, 1]);
    let big = 0;
    let me = fx.other_than(&[big, fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let v = value("v");
    feed(&mut core, Input::Proposal(fx.proposal(1, 0, &v, None)));
    validated(&mut core, 0, &v, true); // own prevote: 1 of 8
    let out = prevote_from(&fx, &mut core, big, 0, Some(&v)); // 6 of 8 > 2/3
    assert_eq!(broadcast_votes(&out), [(Precommit, 0, Some(v.id()))]);
    // f+1 by power: the big validator alone moves this node to a higher round.
    let out = precommit_from(&fx, &mut core, big, 4, None);
    assert_eq!(entered_rounds(&out), [(1, 4)]);
}

#[test]
fn reproposal_carries_its_polka_to_validators_that_missed_it() {
    let fx = Fixture::equal(4);
    let proposer = fx.proposer(1, 1);
    let (mut source, _) = fx.core(proposer, 1);
    let rest = others(&fx, proposer);
    let v = value("v");
    // The round-1 proposer sees a polka for v in round 0 (and logs it with the value).
    let out = lock_on(&fx, &mut source, proposer, 0, &v);
    assert!(persisted(&out).iter().any(
        |e| matches!(e, WalEntry::Valid { value, polka } if *value == v && polka.round == Round(0))
    ));
    precommit_from(&fx, &mut source, rest[0], 0, None);
    precommit_from(&fx, &mut source, rest[1], 0, None);
    let out = fire(&mut source, 0, T::Precommit);
    let reproposal = out
        .iter()
        .find_map(|e| match e {
            Effect::Broadcast(Message::Proposal(p)) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    let polka = reproposal
        .polka
        .clone()
        .expect("the polka travels with the re-proposal");
    polka.verify(&fx.set, CHAIN).unwrap();

    // A validator that saw nothing of round 0 and forgot it entirely still accepts it.
    let mut config = fx.config.clone();
    config.max_rounds_behind = 0;
    let me = fx.other_than(&[proposer, fx.proposer(1, 0)]);
    let (mut late, _) = Consensus::<TestValue>::new(
        config,
        fx.set.clone(),
        Some(fx.keys[me as usize].clone()),
        Height(1),
    )
    .unwrap();
    fire(&mut late, 0, T::Propose);
    for who in others(&fx, me).into_iter().take(2) {
        precommit_from(&fx, &mut late, who, 1, None);
    }
    assert_eq!(late.round(), Round(1));
    feed(&mut late, Input::Proposal(reproposal.clone()));
    let out = validated(&mut late, 1, &v, true);
    assert_eq!(broadcast_votes(&out), [(Prevote, 1, Some(v.id()))]);

    // A polka that does not hold up makes the whole proposal invalid.
    let (mut other, _) = fx.core(me, 1);
    fire(&mut other, 0, T::Propose);
    for who in others(&fx, me).into_iter().take(2) {
        precommit_from(&fx, &mut other, who, 1, None);
    }
    let mut forged = reproposal;
    forged.polka.as_mut().unwrap().signatures.truncate(2);
    assert!(matches!(
        other.handle(Input::Proposal(forged)).unwrap_err(),
        ConsensusError::Message(MessageError::InvalidPolka(
            CertificateError::InsufficientPower { .. }
        ))
    ));
}

#[test]
fn validators_behind_in_rounds_get_the_messages_of_their_round() {
    let mut fx = Fixture::equal(4);
    fx.config.rebroadcast_ms = 100;
    let me = fx.proposer(1, 3);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    // Round 0 ends for this node by the precommit timeout; `rest[2]` is last seen in round 0.
    fire(&mut core, 0, T::Propose);
    for who in &rest {
        prevote_from(&fx, &mut core, *who, 0, None);
    }
    precommit_from(&fx, &mut core, rest[0], 0, None);
    precommit_from(&fx, &mut core, rest[1], 0, None);
    fire(&mut core, 0, T::Precommit);
    assert_eq!(core.round(), Round(1));
    prevote_from(&fx, &mut core, rest[0], 1, None);
    prevote_from(&fx, &mut core, rest[1], 1, None);

    let out = fire(&mut core, 1, T::Rebroadcast);
    let sent: Vec<(u32, VoteType, u32)> = out
        .iter()
        .filter_map(|e| match e {
            Effect::SendTo {
                to,
                message: Message::Vote(v),
            } => Some((to.0, v.vote.vote_type, v.vote.round.0)),
            _ => None,
        })
        .collect();
    // Only the laggard gets this node's round-0 votes; the others are in round 1 already.
    assert_eq!(sent, [(rest[2], Prevote, 0), (rest[2], Precommit, 0)]);
}

#[test]
fn a_message_verified_by_the_host_counts_like_one_checked_here() {
    let fx = Fixture::equal(4);
    let me = fx.other_than(&[fx.proposer(1, 0)]);
    let (mut core, _) = fx.core(me, 1);
    let rest = others(&fx, me);
    fire(&mut core, 0, T::Propose);
    let verified = |who: u32| {
        let message = Message::Vote(fx.vote(who, 1, 0, Prevote, None))
            .into_verified(&fx.set, CHAIN)
            .expect("a genuine vote verifies");
        Input::Verified(Box::new(message))
    };
    assert!(broadcast_votes(&feed(&mut core, verified(rest[0]))).is_empty());
    // With its own, 2f+1 nil prevotes: as in `proposer_timeout_gives_nil_votes_and_next_round`.
    let out = feed(&mut core, verified(rest[1]));
    assert_eq!(broadcast_votes(&out), [(Precommit, 0, None)]);
}

#[test]
fn a_verified_message_from_another_chain_or_key_is_checked_again() {
    let fx = Fixture::equal(4);
    let (mut core, _) = fx.core(0, 1);
    let mut forged = fx.vote(1, 1, 0, Prevote, None);
    forged.signature.0[10] ^= 0x40;
    // As if a host had checked it against another chain: the core does not trust the check
    // and finds the signature bad.
    let elsewhere = VerifiedMessage {
        message: Message::Vote(forged),
        chain_id: OTHER_CHAIN,
        signer_key: fx.set.get(ValidatorIndex(1)).unwrap().public_key,
    };
    assert_eq!(
        core.handle(Input::Verified(Box::new(elsewhere)))
            .unwrap_err(),
        ConsensusError::Message(MessageError::InvalidSignature {
            validator: ValidatorIndex(1)
        })
    );
    // Checked against another key for the signer: the same.
    let other_key = VerifiedMessage {
        message: Message::Vote(forged),
        chain_id: CHAIN,
        signer_key: fx.set.get(ValidatorIndex(2)).unwrap().public_key,
    };
    assert_eq!(
        core.handle(Input::Verified(Box::new(other_key)))
            .unwrap_err(),
        ConsensusError::Message(MessageError::InvalidSignature {
            validator: ValidatorIndex(1)
        })
    );
    // A proof that matches this core's chain and key is trusted: the signature is not
    // checked again (only this crate can wrap a bad one, which shows the check is skipped).
    let trusted = VerifiedMessage {
        message: Message::Vote(forged),
        chain_id: CHAIN,
        signer_key: fx.set.get(ValidatorIndex(1)).unwrap().public_key,
    };
    assert!(core.handle(Input::Verified(Box::new(trusted))).is_ok());
    // And a forged message never becomes verified in the first place.
    let mut forged = fx.vote(1, 1, 0, Prevote, None);
    forged.signature.0[3] ^= 1;
    assert!(
        Message::<TestValue>::Vote(forged)
            .into_verified(&fx.set, CHAIN)
            .is_err()
    );
}
