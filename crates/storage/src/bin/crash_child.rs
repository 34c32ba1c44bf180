//! The child process of the crash test (`tests/crash.rs`).
//!
//! Opens a RocksDB chain at `<data-dir>` (installing a synthetic genesis if empty),
//! recovers and verifies it, then commits synthetic blocks until `<max-height>`, printing
//! `committed <height>` to stdout only after each synced commit returned. The test kills it
//! with SIGKILL at random moments and checks every printed height survived.
//!
//! Output lines: `recovered <height> <state-root-hex>`, then `committed <height>` per block,
//! then `done`. Errors go to stderr with exit code 2.

use dex_storage::kv_root::sorted_kv_root;
use dex_storage::synthetic::{CRASH_TEST_CHAIN, SyntheticChain};
use dex_storage::{ChainStore, ChainStoreConfig, RocksConfig, RocksStore, StateEntry};
use dex_types::Hash;
use std::io::Write;
use std::process::ExitCode;

/// The state root function. The stand-in hashes the sorted key-values; switch it to the
/// ledger's root when the node stores the real ledger.
const STATE_ROOT: fn(&[StateEntry]) -> Hash = sorted_kv_root;

fn run(data_dir: &str, max_height: u64) -> Result<(), Box<dyn std::error::Error>> {
    let store = RocksStore::open(data_dir, &RocksConfig::default())?;
    let chain = ChainStore::open(
        store,
        ChainStoreConfig {
            keep_state_column: true,
            ..ChainStoreConfig::default()
        },
    )?;
    if chain.last_committed().is_none() {
        let (base, entries) = SyntheticChain::genesis(CRASH_TEST_CHAIN, STATE_ROOT);
        chain.install_base_state(base, entries)?;
    }
    let head = chain
        .last_committed()
        .ok_or("no head after genesis install")?;
    let state = chain.load_state_verified(STATE_ROOT)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "recovered {} {}", head.height, head.state_root)?;
    out.flush()?;
    let mut generator = SyntheticChain::resume(CRASH_TEST_CHAIN, STATE_ROOT, head, state);
    while generator.head().height < max_height {
        let block = generator.next_block();
        chain.commit_block(&block.commit())?;
        // Printed only after the synced commit returned: a printed height is a promise.
        writeln!(out, "committed {}", block.height)?;
        out.flush()?;
    }
    writeln!(out, "done")?;
    out.flush()?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(data_dir), Some(max_height)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: dex-storage-crash-child <data-dir> <max-height>");
        return ExitCode::from(2);
    };
    let Ok(max_height) = max_height.parse::<u64>() else {
        eprintln!("max-height must be a number, got {max_height:?}");
        return ExitCode::from(2);
    };
    match run(data_dir, max_height) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("crash child failed: {err}");
            ExitCode::from(2)
        }
    }
}
