//! Execute the benchmark block once, for instruction-level profiling of where the time of
//! one block goes (matching, ledger, hashing):
//!
//! ```text
//! cargo build --release -p dex-state --example profile_block
//! valgrind --tool=callgrind --collect-atstart=no \
//!     --toggle-collect='dex_state::ledger::Ledger::execute_block_with_ids' \
//!     target/release/examples/profile_block
//! callgrind_annotate --inclusive=yes callgrind.out.*
//! ```

#[path = "../benches/workload/mod.rs"]
mod workload;

use dex_types::TimestampMs;

fn main() {
    let w = workload::workload();
    let mut ledger = w.prepared.clone();
    let result = ledger
        .execute_block_with_ids(w.parent, TimestampMs(2), &w.block, &w.ids)
        .expect("the workload's block time moves forward");
    println!(
        "state_root={} fills={} rejected={}",
        result.state_root,
        result.fills().count(),
        result.outcomes.iter().filter(|o| o.result.is_err()).count()
    );
}
