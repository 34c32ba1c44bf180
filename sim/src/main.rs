//! `dex-sim`: run seeds of the deterministic simulator and print a summary per fault mix.
//! Exits with status 1 if any run found a violation, after printing each failing seed and
//! the command that reproduces it.

use anyhow::{Context, bail};
use clap::Parser;
use dex_sim::{FaultMix, Scenario, Sweep, run};
use std::process::ExitCode;

/// Run the deterministic multi-validator simulator over a range of seeds.
#[derive(Debug, Parser)]
#[command(name = "dex-sim", version)]
struct Args {
    /// How many seeds to run per fault mix.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// The first seed; seeds run consecutively from it.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Validators per run (f = (n - 1) / 3 of them are Byzantine in Byzantine mixes).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Fault mixes, comma separated, or `all`: clean, lossy, partition, slow-node,
    /// crash-restart, equivocate, double-vote, invalid-vote, silent, replay, twin,
    /// lock-attack, mixed.
    #[arg(long, default_value = "all")]
    mix: String,
    /// Simulated traders.
    #[arg(long, default_value_t = 6)]
    traders: usize,
    /// Length of the fault phase in simulated milliseconds.
    #[arg(long, default_value_t = 6_000)]
    fault_phase_ms: u64,
    /// Self-test: every honest validator ignores its lock; the checks must catch it.
    #[arg(long)]
    broken_lock: bool,
    /// Self-test: restarted validators lose their consensus log; the checks must catch
    /// the double signing that follows.
    #[arg(long)]
    wipe_wal_on_restart: bool,
    /// Print every run's report, not only the summary.
    #[arg(long)]
    verbose: bool,
}

fn mixes(text: &str) -> anyhow::Result<Vec<FaultMix>> {
    if text == "all" {
        return Ok(FaultMix::ALL.to_vec());
    }
    text.split(',')
        .map(|name| name.trim().parse::<FaultMix>().context("bad --mix"))
        .collect()
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if args.validators == 0 {
        bail!("--validators must be at least 1");
    }
    let mixes = mixes(&args.mix)?;
    let mut sweep = Sweep::default();
    for mix in mixes {
        for seed in args.first_seed..args.first_seed.saturating_add(args.seeds) {
            let mut scenario = Scenario::new(seed, args.validators, mix);
            scenario.traders = args.traders;
            scenario.fault_phase_ms = args.fault_phase_ms;
            scenario.broken_lock = args.broken_lock;
            scenario.wipe_wal_on_restart = args.wipe_wal_on_restart;
            let report = run(scenario);
            if args.verbose || !report.passed() {
                eprint!("{report}");
            }
            sweep.push(report);
        }
    }
    print!("{}", sweep.summary());
    let failed = sweep.failed();
    if failed.is_empty() {
        println!("all {} runs passed", sweep.reports.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} of {} runs found violations",
            failed.len(),
            sweep.reports.len()
        );
        Ok(ExitCode::FAILURE)
    }
}
