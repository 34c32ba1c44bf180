//! The simulator's sweep: seeds of every fault mix with 4 and 7 validators, each run
//! checked for agreement, certificates, state roots, conservation of funds, custody
//! invariants, double signing across restarts, durability and liveness after the faults
//! heal; the same seed twice gives the same history; and two deliberately broken
//! validators (one ignoring its lock, one losing its log at restarts) are caught.
//!
//! Sized for a few minutes in the dev profile; a longer sweep is the `dex-sim` command,
//! for example `cargo run -p dex-sim --release -- --seeds 200 --mix all`.

use dex_sim::{FaultMix, Report, Scenario, Violation, run};

/// Run `seeds` seeds (from `first`) of `mix` with `n` validators and require every run to
/// pass; returns the reports for further checks.
fn sweep(mix: FaultMix, n: usize, first: u64, seeds: u64) -> Vec<Report> {
    let reports: Vec<Report> = (first..first + seeds)
        .map(|seed| run(Scenario::new(seed, n, mix)))
        .collect();
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("{r}    reproduce: {}\n", r.scenario.reproduce_command()))
        .collect();
    assert!(failed.is_empty(), "violations found:\n{}", failed.concat());
    for report in &reports {
        // Liveness is checked inside the run; this also shows the run did real work.
        assert!(
            report.honest_head_min >= report.scenario.liveness_heights,
            "{report}"
        );
        assert!(report.txs_committed > 0, "{report}");
    }
    reports
}

fn total(reports: &[Report], field: impl Fn(&Report) -> u64) -> u64 {
    reports.iter().map(field).sum()
}

#[test]
fn n4_clean_network_commits_every_few_message_delays() {
    let reports = sweep(FaultMix::Clean, 4, 1, 12);
    for report in &reports {
        // Without faults a height takes the batching interval plus about three message
        // delays (proposal, prevotes, precommits); allow for jitter.
        let p50 = report.latency.quantile_ms(500);
        assert!(
            p50 <= 20 + 6 * report.latency.delay_ms,
            "median height latency {p50} ms with {} ms delays",
            report.latency.delay_ms
        );
        assert_eq!(report.faults.crashes, 0);
        assert_eq!(report.net.lost, 0);
    }
}

#[test]
fn n4_lossy_network_with_duplicates_and_reordering() {
    let reports = sweep(FaultMix::Lossy, 4, 100, 40);
    assert!(total(&reports, |r| r.net.lost) > 0);
    assert!(total(&reports, |r| r.net.duplicated) > 0);
    assert!(total(&reports, |r| r.net.reordered) > 0);
}

#[test]
fn n4_f1_partition_heals() {
    let reports = sweep(FaultMix::Partition, 4, 2_000, 60);
    assert!(total(&reports, |r| r.faults.partitions) >= 60);
    assert!(total(&reports, |r| r.net.partitioned) > 0);
}

#[test]
fn n7_partition_heals() {
    let reports = sweep(FaultMix::Partition, 7, 2_500, 10);
    assert!(total(&reports, |r| r.net.partitioned) > 0);
}

#[test]
fn n4_slow_node() {
    let reports = sweep(FaultMix::SlowNode, 4, 300, 30);
    assert_eq!(total(&reports, |r| r.faults.slow_nodes), 30);
}

#[test]
fn n4_crash_restart_between_and_inside_steps() {
    let reports = sweep(FaultMix::CrashRestart, 4, 4_000, 60);
    assert!(total(&reports, |r| r.faults.crashes) >= 60);
    assert!(total(&reports, |r| r.faults.mid_step_crashes) > 0);
    assert!(total(&reports, |r| r.faults.restarts) > 0);
}

#[test]
fn n7_crash_restart_storm() {
    let reports = sweep(FaultMix::CrashRestart, 7, 4_500, 12);
    assert!(total(&reports, |r| r.faults.crashes) >= 7 * 12);
}

#[test]
fn n7_lossy_network() {
    sweep(FaultMix::Lossy, 7, 1_500, 8);
}

#[test]
fn n7_f2_double_voting() {
    let reports = sweep(FaultMix::DoubleVote, 7, 6_500, 8);
    assert!(total(&reports, |r| r.faults.evidence) > 0);
}

#[test]
fn n4_equivocating_proposer() {
    let reports = sweep(FaultMix::Equivocate, 4, 5_000, 40);
    assert!(total(&reports, |r| r.faults.forged_messages) > 0);
}

#[test]
fn n7_f2_equivocating_proposers() {
    let reports = sweep(FaultMix::Equivocate, 7, 5_500, 8);
    assert!(reports.iter().all(|r| r.byzantine.len() == 2));
}

#[test]
fn n4_double_voting() {
    let reports = sweep(FaultMix::DoubleVote, 4, 6_000, 40);
    assert!(total(&reports, |r| r.faults.forged_messages) > 0);
    // Honest replicas that saw both votes of a slot recorded the equivocation.
    assert!(total(&reports, |r| r.faults.evidence) > 0);
}

#[test]
fn n4_invalid_blocks_and_votes_for_them() {
    let reports = sweep(FaultMix::InvalidVote, 4, 7_000, 40);
    assert!(total(&reports, |r| r.faults.forged_messages) > 0);
}

#[test]
fn n4_silent_validator() {
    sweep(FaultMix::Silent, 4, 8_000, 30);
}

#[test]
fn n4_replayed_old_messages() {
    let reports = sweep(FaultMix::Replay, 4, 9_000, 24);
    assert!(total(&reports, |r| r.faults.forged_messages) > 0);
}

#[test]
fn n4_twin_validator() {
    let reports = sweep(FaultMix::Twin, 4, 10_000, 40);
    // Two copies with one key sign conflicting messages; honest replicas notice.
    assert!(total(&reports, |r| r.faults.evidence) > 0);
}

#[test]
fn n7_f2_twins() {
    sweep(FaultMix::Twin, 7, 10_500, 8);
}

#[test]
fn n4_lock_attack_fails_against_a_correct_core() {
    let reports = sweep(FaultMix::LockAttack, 4, 11_000, 40);
    assert!(total(&reports, |r| r.faults.forged_messages) > 0);
}

#[test]
fn n4_mixed_faults() {
    let reports = sweep(FaultMix::Mixed, 4, 12_000, 60);
    assert!(total(&reports, |r| r.faults.crashes) > 0);
    assert!(total(&reports, |r| r.faults.partitions) > 0);
}

#[test]
fn n7_mixed_faults() {
    sweep(FaultMix::Mixed, 7, 12_500, 12);
}

#[test]
fn same_seed_gives_a_bit_identical_run() {
    for mix in [FaultMix::Mixed, FaultMix::Twin] {
        let first = run(Scenario::new(77, 4, mix));
        let second = run(Scenario::new(77, 4, mix));
        assert_eq!(first.final_hash, second.final_hash);
        assert_eq!(first, second, "every counter and latency repeats too");
        let other = run(Scenario::new(78, 4, mix));
        assert_ne!(first.final_hash, other.final_hash);
    }
}

/// The self-test: with every honest core ignoring its lock, the lock attack forks the
/// chain, and the agreement check says so — the same seeds pass with the correct core
/// (`n4_lock_attack_fails_against_a_correct_core` runs the mix the same way).
#[test]
fn broken_lock_is_caught() {
    let mut forks = 0;
    for seed in 1..=12 {
        let mut scenario = Scenario::new(seed, 4, FaultMix::LockAttack);
        scenario.broken_lock = true;
        let broken = run(scenario);
        if broken
            .violations
            .iter()
            .any(|v| matches!(v, Violation::Agreement { .. }))
        {
            forks += 1;
        }
        let correct = run(Scenario::new(seed, 4, FaultMix::LockAttack));
        assert!(correct.passed(), "{correct}");
    }
    assert!(forks >= 6, "only {forks} of 12 broken runs forked");
}

/// The second self-test: a validator that loses its write-ahead log at restarts signs
/// conflicting messages, and the double-signing check (which spans a validator's lives)
/// catches it.
#[test]
fn wiped_log_double_signing_is_caught() {
    let mut caught = 0;
    for seed in 1..=10 {
        let mut scenario = Scenario::new(seed, 4, FaultMix::CrashRestart);
        scenario.wipe_wal_on_restart = true;
        let report = run(scenario);
        if report
            .violations
            .iter()
            .any(|v| matches!(v, Violation::DoubleSign { .. }))
        {
            caught += 1;
        }
    }
    assert!(
        caught >= 5,
        "only {caught} of 10 runs caught double signing"
    );
}
