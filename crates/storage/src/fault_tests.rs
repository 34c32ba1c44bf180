//! The chain layer under injected faults: torn writes at every cut point, failed writes and
//! syncs, crashes that drop unsynced data, and a seeded random soak.

use crate::chain::{ChainStore, ChainStoreConfig, VerifyDepth};
use crate::error::{Inconsistency, StorageError};
use crate::faulty::{FaultRates, FaultyStore, TornWrite};
use crate::kv_root::sorted_kv_root;
use crate::mem::MemStore;
use crate::store::{CrashableStore, Durability};
use crate::synthetic::{SyntheticChain, SyntheticConfig};

type Disk = FaultyStore<MemStore>;

fn config() -> ChainStoreConfig {
    ChainStoreConfig {
        snapshot_chunk_bytes: 512,
        verify_recent_blocks: 8,
        ..ChainStoreConfig::default()
    }
}

/// A disk holding genesis and `blocks` synced commits, with the generator at its head.
fn chain_with(blocks: u64) -> (Disk, SyntheticChain) {
    let disk = FaultyStore::new(MemStore::new());
    let chain = ChainStore::open(disk.clone(), config()).unwrap();
    let synthetic = SyntheticConfig::default();
    let (base, entries) = SyntheticChain::genesis(synthetic, sorted_kv_root);
    chain.install_base_state(base, entries).unwrap();
    let mut generator = SyntheticChain::new(synthetic, sorted_kv_root);
    for _ in 0..blocks {
        chain
            .commit_block(&generator.next_block().commit())
            .unwrap();
    }
    (disk, generator)
}

#[test]
fn torn_commit_is_detected_at_every_cut_point() {
    let (_, mut probe) = chain_with(3);
    let next = probe.next_block();
    // intent, index, block, certificate, state changes, head (no consensus-log entries
    // to prune).
    let ops = 4 + next.state_changes.len() + 1;
    let mut outcomes = [0usize; 3];
    for ops_applied in 0..=ops {
        for cut_next_value in [false, true] {
            let (disk, mut generator) = chain_with(3);
            let block = generator.next_block();
            assert_eq!(block, next);
            let chain = ChainStore::open(disk.clone(), config()).unwrap();
            disk.tear_next_write(TornWrite {
                ops_applied,
                cut_next_value,
            });
            assert!(chain.commit_block(&block.commit()).is_err());
            // The handle refuses to go on after a failed write.
            assert!(matches!(
                chain.commit_block(&block.commit()),
                Err(StorageError::Halted)
            ));
            drop(chain);
            disk.crash();
            match ChainStore::open(disk.clone(), config()) {
                Ok(reopened) => {
                    let head = reopened.last_committed().unwrap();
                    let complete = ops_applied == ops;
                    let untouched = ops_applied == 0 && !cut_next_value;
                    assert!(
                        complete || untouched,
                        "a partial commit (cut at {ops_applied}, value cut {cut_next_value}) \
                         opened without error"
                    );
                    assert_eq!(head.height, if complete { 4 } else { 3 });
                    reopened.load_state_verified(sorted_kv_root).unwrap();
                    outcomes[0] += 1;
                }
                Err(
                    err @ StorageError::Inconsistent {
                        problem: Inconsistency::InterruptedCommit { .. },
                    },
                ) => {
                    assert!(err.is_damage());
                    assert!(err.to_string().contains("interrupted"), "{err}");
                    outcomes[1] += 1;
                }
                Err(err @ StorageError::Corrupted { .. }) => {
                    // A cut value where the intent or the head should be: the frame
                    // catches it.
                    assert!(cut_next_value, "{err}");
                    assert!(ops_applied == 0 || ops_applied == ops - 1, "{err}");
                    outcomes[2] += 1;
                }
                Err(other) => panic!("unexpected error after a torn commit: {other}"),
            }
        }
    }
    // Untouched and complete opened; every real cut was refused.
    assert_eq!(outcomes[0], 3);
    assert_eq!(outcomes[2], 2);
    assert_eq!(outcomes[1], 2 * (ops + 1) - 5);
}

#[test]
fn failed_sync_loses_the_commit_but_nothing_else() {
    let (disk, mut generator) = chain_with(3);
    let chain = ChainStore::open(disk.clone(), config()).unwrap();
    let block = generator.next_block();
    disk.fail_next_syncs(1);
    assert!(chain.commit_block(&block.commit()).is_err());
    assert!(matches!(
        chain.append_wal(5, b"vote"),
        Err(StorageError::Halted)
    ));
    drop(chain);
    disk.crash();
    let chain = ChainStore::open(disk.clone(), config()).unwrap();
    assert_eq!(chain.last_committed().unwrap().height, 3);
    // The node re-executes and commits the same block after restart.
    chain.commit_block(&block.commit()).unwrap();
    chain.load_state_verified(sorted_kv_root).unwrap();
}

#[test]
fn failed_write_applies_nothing_and_reopen_recovers() {
    let (disk, mut generator) = chain_with(2);
    let chain = ChainStore::open(disk.clone(), config()).unwrap();
    let block = generator.next_block();
    disk.fail_next_writes(1);
    assert!(chain.commit_block(&block.commit()).is_err());
    drop(chain);
    let chain = ChainStore::open(disk.clone(), config()).unwrap();
    assert_eq!(chain.last_committed().unwrap().height, 2);
    chain.commit_block(&block.commit()).unwrap();
}

#[test]
fn crash_drops_buffered_commits_but_keeps_synced_ones_and_the_wal() {
    let (disk, mut generator) = chain_with(3);
    let buffered = ChainStoreConfig {
        commit_durability: Durability::Buffered,
        ..config()
    };
    let chain = ChainStore::open(disk.clone(), buffered).unwrap();
    chain
        .commit_block(&generator.next_block().commit())
        .unwrap();
    chain
        .commit_block(&generator.next_block().commit())
        .unwrap();
    assert_eq!(chain.last_committed().unwrap().height, 5);
    drop(chain);
    disk.crash();
    let chain = ChainStore::open(disk.clone(), config()).unwrap();
    assert_eq!(chain.last_committed().unwrap().height, 3);
    chain.append_wal(4, b"my prevote").unwrap();
    drop(chain);
    disk.crash();
    let chain = ChainStore::open(disk.clone(), config()).unwrap();
    assert_eq!(chain.wal_entries(4).unwrap(), vec![b"my prevote".to_vec()]);
}

#[test]
fn interrupted_snapshot_is_removed_at_open() {
    let (disk, mut generator) = chain_with(3);
    let chain = ChainStore::open(disk.clone(), config()).unwrap();
    let head = generator.head();
    disk.tear_next_write(TornWrite {
        ops_applied: 3,
        cut_next_value: false,
    });
    assert!(
        chain
            .write_snapshot(head.height, head.state_root, generator.state_entries())
            .is_err()
    );
    drop(chain);
    disk.crash();
    let chain = ChainStore::open(disk.clone(), config()).unwrap();
    assert_eq!(chain.recovery().removed_incomplete_snapshots, vec![3]);
    assert_eq!(chain.latest_snapshot().unwrap().unwrap().height, 0);
    chain.verify_consistency(VerifyDepth::Full).unwrap();
    chain
        .commit_block(&generator.next_block().commit())
        .unwrap();
}

#[test]
fn interrupted_base_install_is_reported() {
    let disk = FaultyStore::new(MemStore::new());
    let chain = ChainStore::open(disk.clone(), config()).unwrap();
    let synthetic = SyntheticConfig {
        genesis_accounts: 200,
        ..SyntheticConfig::default()
    };
    let (base, entries) = SyntheticChain::genesis(synthetic, sorted_kv_root);
    disk.tear_next_write(TornWrite {
        ops_applied: 5,
        cut_next_value: false,
    });
    assert!(chain.install_base_state(base, entries).is_err());
    drop(chain);
    disk.crash();
    let err = ChainStore::open(disk.clone(), config()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Inconsistent {
                problem: Inconsistency::InterruptedCommit {
                    intent_height: 0,
                    head: None
                }
            }
        ),
        "{err}"
    );
}

#[test]
fn state_root_mismatch_is_reported_not_ignored() {
    let (disk, _) = chain_with(2);
    let chain = ChainStore::open(disk.clone(), config()).unwrap();
    let err = chain
        .load_state_verified(|_| dex_types::Hash([0xee; 32]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Inconsistent {
                problem: Inconsistency::StateRootMismatch { height: 2, .. }
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("snapshot export"), "{err}");
}

/// Random failed writes, failed syncs and torn writes with crash-restarts: every commit
/// acknowledged before a crash is there after it, the state verifies, and the only refusals
/// at open follow torn writes.
#[test]
fn seeded_random_fault_soak() {
    for seed in 0..6u64 {
        let (disk, mut generator) = chain_with(1);
        disk.set_random_faults(
            seed,
            FaultRates {
                write_failed_per_million: 50_000,
                sync_failed_per_million: 50_000,
                torn_write_per_million: 20_000,
            },
        );
        let mut acknowledged = 1u64;
        let mut chain = Some(ChainStore::open(disk.clone(), config()).unwrap());
        for _ in 0..150 {
            let Some(open) = chain.as_ref() else {
                break;
            };
            let block = generator.next_block();
            match open.commit_block(&block.commit()) {
                Ok(head) => acknowledged = head.height,
                Err(_) => {
                    chain = None;
                    let torn_before = disk.stats().torn_writes;
                    disk.crash();
                    let reopened = match ChainStore::open(disk.clone(), config()) {
                        Ok(reopened) => reopened,
                        Err(err) => {
                            assert!(err.is_damage(), "seed {seed}: {err}");
                            assert!(torn_before > 0, "seed {seed}: refused without a tear");
                            continue;
                        }
                    };
                    let head = reopened.last_committed().unwrap();
                    assert!(
                        head.height >= acknowledged,
                        "seed {seed}: acknowledged {acknowledged} but recovered {}",
                        head.height
                    );
                    reopened.load_state_verified(sorted_kv_root).unwrap();
                    let state = reopened.state_entries().unwrap();
                    generator =
                        SyntheticChain::resume(*generator.config(), sorted_kv_root, head, state);
                    acknowledged = head.height;
                    chain = Some(reopened);
                }
            }
        }
        if let Some(chain) = chain {
            chain.verify_consistency(VerifyDepth::Full).unwrap();
        }
        assert!(disk.stats().restarts > 0, "seed {seed} injected nothing");
    }
}

#[test]
fn invalid_config_is_an_error_not_a_panic() {
    let bad = ChainStoreConfig {
        snapshots_retained: 0,
        ..config()
    };
    assert!(matches!(
        ChainStore::open(MemStore::new(), bad),
        Err(StorageError::InvalidConfig { .. })
    ));
}
