//! Crash test with real processes: a child commits blocks to a RocksDB directory and
//! prints each height after its synced commit returned; the test SIGKILLs it at seeded
//! random moments, restarts it, and checks that nothing it reported is lost, that heights
//! are contiguous without duplicates, and that the stored state and roots equal those of a
//! run that never crashed.

use dex_storage::kv_root::sorted_kv_root;
use dex_storage::synthetic::{CRASH_TEST_CHAIN, SplitMix64, SyntheticChain, apply_block};
use dex_storage::{ChainStore, ChainStoreConfig, RocksConfig, RocksStore, StateEntry, VerifyDepth};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const ROUNDS: usize = 8;
const SEED: u64 = 0x5eed_c4a5;
/// Far above what a round reaches, so the child is always killed mid-run.
const MAX_HEIGHT: u64 = 1_000_000;
/// Upper bound on waiting for the child's first commit (a hung child fails the test
/// instead of hanging it).
const FIRST_COMMIT_WAIT_MAX: Duration = Duration::from_secs(120);

/// When a round kills the child.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after spawning: often during start-up and recovery.
    AfterSpawn(Duration),
    /// This long after the child reported its first commit of the round: mid-commit-loop.
    AfterFirstCommit(Duration),
}

struct Round {
    recovered: Option<u64>,
    committed: Vec<u64>,
}

fn parse(line: &str, round: &mut Round) {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("recovered"), Some(height)) => {
            round.recovered = Some(height.parse().expect("recovered height"))
        }
        (Some("committed"), Some(height)) => round
            .committed
            .push(height.parse().expect("committed height")),
        _ => panic!("unexpected child output: {line:?}"),
    }
}

fn run_and_kill(dir: &Path, kill_at: KillAt) -> Round {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dex-storage-crash-child"))
        .arg(dir)
        .arg(MAX_HEIGHT.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the crash child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut round = Round {
        recovered: None,
        committed: Vec::new(),
    };
    match kill_at {
        KillAt::AfterSpawn(delay) => thread::sleep(delay),
        KillAt::AfterFirstCommit(delay) => {
            while round.committed.is_empty() {
                match lines.recv_timeout(FIRST_COMMIT_WAIT_MAX) {
                    Ok(line) => parse(&line, &mut round),
                    Err(_) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        let mut stderr = String::new();
                        if let Some(mut pipe) = child.stderr.take() {
                            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                        }
                        panic!("the child committed nothing: {stderr}");
                    }
                }
            }
            thread::sleep(delay);
        }
    }
    if let Some(status) = child.try_wait().expect("poll the child") {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        panic!("the child exited by itself ({status}): {stderr}");
    }
    // `Child::kill` sends SIGKILL on Unix: no destructor, no flush, no clean shutdown.
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    reader.join().expect("stdout reader");
    for line in lines.try_iter() {
        parse(&line, &mut round);
    }
    round
}

#[test]
fn sigkill_at_random_moments_loses_no_reported_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = SplitMix64(SEED);
    let mut reported: Vec<u64> = Vec::new();
    for round_index in 0..ROUNDS {
        // Every third round kills during start-up or recovery; the others mid-commit-loop.
        let kill_at = if round_index % 3 == 1 {
            KillAt::AfterSpawn(Duration::from_millis(rng.next_u64() % 150))
        } else {
            KillAt::AfterFirstCommit(Duration::from_millis(rng.next_u64() % 250))
        };
        let round = run_and_kill(dir.path(), kill_at);
        let highest_reported = reported.last().copied().unwrap_or(0);
        if let Some(recovered) = round.recovered {
            // The child recovered (and verified the state root) before committing: every
            // height reported by an earlier round is there.
            assert!(
                recovered >= highest_reported,
                "round {round_index}: reported {highest_reported} committed, recovered only {recovered}"
            );
            // New heights follow the recovered head without a gap or a repeat.
            for (offset, height) in round.committed.iter().enumerate() {
                assert_eq!(
                    *height,
                    recovered + 1 + offset as u64,
                    "round {round_index}"
                );
            }
        } else {
            assert!(round.committed.is_empty(), "committed before recovering");
        }
        if let KillAt::AfterFirstCommit(_) = kill_at {
            assert!(
                !round.committed.is_empty(),
                "round {round_index} reported no commit"
            );
        }
        eprintln!(
            "round {round_index}: kill {kill_at:?}, recovered {:?}, committed {} heights",
            round.recovered,
            round.committed.len()
        );
        reported.extend(&round.committed);
    }
    // No height was reported twice across rounds.
    assert!(reported.windows(2).all(|pair| pair[0] < pair[1]));

    // Open what the last killed child left, as a restarted node would.
    let store = RocksStore::open(dir.path(), &RocksConfig::default()).expect("open");
    let chain = ChainStore::open(
        store,
        ChainStoreConfig {
            keep_state_column: true,
            ..ChainStoreConfig::default()
        },
    )
    .expect("recover");
    let report = chain
        .verify_consistency(VerifyDepth::Full)
        .expect("full verify");
    let head = chain.last_committed().expect("a head");
    assert!(head.height >= *reported.last().expect("something was reported"));
    assert_eq!(report.blocks_checked, head.height);
    let stored_state = chain
        .load_state_verified(sorted_kv_root)
        .expect("state root");

    // Replay every stored block from genesis: the same roots as at commit time, and the
    // same blocks, hashes and roots as a run that never crashed.
    let mut reference = SyntheticChain::new(CRASH_TEST_CHAIN, sorted_kv_root);
    let (_, genesis) = SyntheticChain::genesis(CRASH_TEST_CHAIN, sorted_kv_root);
    let mut replayed: BTreeMap<Vec<u8>, Vec<u8>> = genesis.into_iter().collect();
    let mut height = 1;
    while height <= head.height {
        let blocks = chain
            .blocks_range(height, head.height, 256)
            .expect("read blocks");
        assert!(!blocks.is_empty(), "gap at height {height}");
        for block in blocks {
            assert_eq!(block.height, height, "heights are contiguous");
            let expected = reference.next_block();
            assert_eq!(block.block, expected.block, "block {height}");
            assert_eq!(block.block_hash, expected.block_hash);
            assert_eq!(block.certificate, expected.certificate);
            apply_block(&mut replayed, &block.block, &CRASH_TEST_CHAIN).expect("replay");
            let entries: Vec<StateEntry> = replayed
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(
                sorted_kv_root(&entries),
                block.state_root,
                "root at {height}"
            );
            height += 1;
        }
    }
    let replayed: Vec<StateEntry> = replayed.into_iter().collect();
    assert_eq!(replayed, stored_state);
    assert_eq!(reference.head(), head);
}
