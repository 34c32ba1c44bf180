//! Crash test with real processes and the real ledger: the child
//! (`src/bin/dex-chain-crash-child.rs`) commits blocks executed by `dex-state` to a RocksDB
//! directory and prints each height and state root after its synced commit returned; the
//! test SIGKILLs it at seeded random moments (during start-up and recovery, mid-commit,
//! mid-snapshot), restarts it, and checks that nothing it reported is lost, that heights
//! are contiguous without duplicates, that every restart recomputes (snapshot plus replay)
//! the root it reported for its head, and finally that the stored chain equals a run that
//! never crashed. Some rounds keep the state column and some do not, so restarts also
//! switch it on (rebuilt from the recovered state) and off (cleared).
// The test drives processes: reading a child's output on a thread is host-side IO, not the
// crate's deterministic path.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const ROUNDS: usize = 8;
const SEED: u64 = 0x5eed_c4a5_0002;
/// Far above what a round reaches, so the child is always killed mid-run.
const MAX_HEIGHT: u64 = 1_000_000;
/// Upper bound on waiting for a child's line (a hung child fails the test instead of
/// hanging it).
const LINE_WAIT_MAX: Duration = Duration::from_secs(120);
/// Upper bound on one `check` run.
const CHECK_WAIT_MAX: Duration = Duration::from_secs(300);

/// SplitMix64: the kill schedule, reproducible from the seed.
struct Schedule(u64);

impl Schedule {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce5_e4b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// When a round kills the child.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after spawning: often during start-up and recovery.
    AfterSpawn(Duration),
    /// This long after the child reported its first commit of the round.
    AfterFirstCommit(Duration),
}

#[derive(Debug, Default)]
struct Round {
    /// Height and root the child recovered to.
    recovered: Option<(u64, String)>,
    /// The snapshot height it recovered from and the blocks it replayed after it.
    recovered_from: Option<(u64, u64)>,
    /// Heights and roots reported committed, in order.
    committed: Vec<(u64, String)>,
    snapshots: usize,
}

fn parse(line: &str, round: &mut Round) {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["recovered", height, root, snapshot, replayed] => {
            round.recovered = Some((height.parse().expect("height"), root.to_string()));
            round.recovered_from = Some((
                snapshot.parse().expect("snapshot height"),
                replayed.parse().expect("replayed blocks"),
            ));
        }
        ["committed", height, root] => round
            .committed
            .push((height.parse().expect("height"), root.to_string())),
        ["snapshot", _] => round.snapshots += 1,
        _ => panic!("unexpected child output: {line:?}"),
    }
}

fn child_command(args: &[&str], dir: &Path, state_column: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dex-chain-crash-child"));
    command.arg(args[0]).arg(dir).args(&args[1..]);
    if state_column {
        command.arg("--state-column");
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

fn stderr_of(child: &mut Child) -> String {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    stderr
}

/// Lines of the child's stdout, read on a thread so waits can time out.
fn lines_of(child: &mut Child) -> (mpsc::Receiver<String>, thread::JoinHandle<()>) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    (lines, reader)
}

fn run_and_kill(dir: &Path, state_column: bool, kill_at: KillAt) -> Round {
    let max_height = MAX_HEIGHT.to_string();
    let mut child = child_command(&["run", &max_height], dir, state_column)
        .spawn()
        .expect("spawn the crash child");
    let (lines, reader) = lines_of(&mut child);
    let mut round = Round::default();
    match kill_at {
        KillAt::AfterSpawn(delay) => thread::sleep(delay),
        KillAt::AfterFirstCommit(delay) => {
            while round.committed.is_empty() {
                match lines.recv_timeout(LINE_WAIT_MAX) {
                    Ok(line) => parse(&line, &mut round),
                    Err(_) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("the child committed nothing: {}", stderr_of(&mut child));
                    }
                }
            }
            thread::sleep(delay);
        }
    }
    if let Some(status) = child.try_wait().expect("poll the child") {
        panic!(
            "the child exited by itself ({status}): {}",
            stderr_of(&mut child)
        );
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

/// Run `check` to the end: the stored root of every height, and the checked head.
fn check(dir: &Path, state_column: bool) -> (BTreeMap<u64, String>, (u64, String)) {
    let mut child = child_command(&["check"], dir, state_column)
        .spawn()
        .expect("spawn the checker");
    let (lines, reader) = lines_of(&mut child);
    let mut roots = BTreeMap::new();
    let mut checked = None;
    loop {
        match lines.recv_timeout(CHECK_WAIT_MAX) {
            Ok(line) => {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["block", height, root] => {
                        roots.insert(height.parse().expect("height"), root.to_string());
                    }
                    ["checked", height, root, _snapshot, _replayed] => {
                        checked = Some((height.parse().expect("height"), root.to_string()));
                    }
                    _ => panic!("unexpected checker output: {line:?}"),
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the checker hung");
            }
        }
    }
    let status = child.wait().expect("reap the checker");
    reader.join().expect("stdout reader");
    assert!(status.success(), "check failed: {}", stderr_of(&mut child));
    (roots, checked.expect("the checker reported its head"))
}

/// A fresh directory under the target's temporary directory, removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> DataDir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("dex-chain-crash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the data directory");
        DataDir(path)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_reported_commit_and_replays_to_the_same_roots() {
    let dir = DataDir::new();
    let mut schedule = Schedule(SEED);
    // Every height and root the children reported committed.
    let mut reported: BTreeMap<u64, String> = BTreeMap::new();
    let mut snapshots = 0;
    for round_index in 0..ROUNDS {
        // Every third round kills during start-up or recovery; the others mid-commit-loop.
        let kill_at = if round_index % 3 == 1 {
            KillAt::AfterSpawn(Duration::from_millis(schedule.next_u64() % 400))
        } else {
            KillAt::AfterFirstCommit(Duration::from_millis(schedule.next_u64() % 300))
        };
        // Two rounds in three without the state column (the default), one with it.
        let state_column = round_index % 3 == 2;
        let round = run_and_kill(&dir.0, state_column, kill_at);
        let highest_reported = reported.keys().next_back().copied().unwrap_or(0);
        if let Some((recovered, root)) = &round.recovered {
            // Recovery recomputed the root from the snapshot and the blocks after it and
            // found the committed head's: every height reported before is there, and the
            // root is the one reported for it.
            assert!(
                *recovered >= highest_reported,
                "round {round_index}: reported {highest_reported} committed, recovered only {recovered}"
            );
            if let Some(promised) = reported.get(recovered) {
                assert_eq!(promised, root, "round {round_index}: root at {recovered}");
            }
            for (offset, (height, _)) in round.committed.iter().enumerate() {
                assert_eq!(
                    *height,
                    recovered + 1 + offset as u64,
                    "round {round_index}: heights follow the recovered head"
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
            "round {round_index}: kill {kill_at:?}, state column {state_column}, recovered \
             {:?} (snapshot height, replayed blocks {:?}), committed {} heights, {} snapshots",
            round.recovered.as_ref().map(|(height, _)| height),
            round.recovered_from,
            round.committed.len(),
            round.snapshots
        );
        snapshots += round.snapshots;
        for (height, root) in round.committed {
            // A height is reported once: a restart never commits a reported height again.
            assert!(
                reported.insert(height, root).is_none(),
                "height {height} was reported twice"
            );
        }
    }
    let highest_reported = *reported.keys().next_back().expect("something was reported");
    assert!(snapshots > 0, "no snapshot was written in any round");

    // What the last killed child left, checked with the column off and then on (rebuilt
    // from the recovered state, then compared key by key on the second open).
    for state_column in [false, true, true] {
        let (roots, (head, head_root)) = check(&dir.0, state_column);
        assert!(head >= highest_reported, "lost reported heights");
        assert_eq!(roots.len() as u64, head, "one stored block per height");
        assert_eq!(roots.get(&head), Some(&head_root));
        for (height, root) in &reported {
            assert_eq!(roots.get(height), Some(root), "root at {height}");
        }
    }
}
