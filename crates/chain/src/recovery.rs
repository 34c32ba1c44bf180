//! Start-up from durable data: install genesis into an empty store, or rebuild the ledger
//! from the newest snapshot and the blocks after it, and read back the consensus log of the
//! next height so the core resumes without signing anything that conflicts with what it
//! signed before the restart.
//!
//! Snapshot plus replay is the only way the state is rebuilt, so it works the same with
//! the store's state column off (the default: the per-block commit writes no state) or
//! on. When the column is kept, it is compared key by key with the rebuilt ledger (if
//! asked), or rebuilt from it when it was switched on for a chain that ran without it.
//!
//! Every stored block replayed is decoded with its size cap, its certificate verified
//! against the validator set, its header and signatures checked and its execution compared
//! with the roots it was committed with. Anything that disagrees is a [`RecoveryError`]
//! naming the height and what the operator can do; nothing is skipped or repaired.

use crate::error::{InvalidBlock, RecoveryError};
use crate::execute::{BlockRules, Parent, validate_block};
use crate::signatures::SignatureCache;
use dex_consensus::{
    CommitCertificate, MAX_CERTIFICATE_BYTES, MAX_SIGNED_PROPOSAL_BYTES, ValidatorSet, WalEntry,
};
use dex_state::{Genesis, Ledger};
use dex_storage::{ChainBase, ChainStore, CommittedHead, Store};
use dex_types::{Block, Hash, MAX_BLOCK_BYTES};

/// The largest consensus-log entry accepted when reading the log back: a proposal with a
/// whole block and the polka of its valid round.
pub const WAL_ENTRY_BYTES_MAX: usize =
    MAX_BLOCK_BYTES + MAX_CERTIFICATE_BYTES + MAX_SIGNED_PROPOSAL_BYTES + 64;

/// What [`recover`] rebuilt.
#[derive(Debug)]
pub struct Recovered {
    /// The ledger at the committed head.
    pub ledger: Ledger,
    /// The committed head.
    pub head: CommittedHead,
    /// The consensus log of the next height, in append order.
    pub wal: Vec<WalEntry<Block>>,
    /// Height of the snapshot the ledger was rebuilt from.
    pub snapshot_height: u64,
    /// Blocks replayed after the snapshot.
    pub replayed_blocks: u64,
    /// Whether the store was empty and genesis was installed.
    pub installed_genesis: bool,
    /// Whether the store's state column was switched on for a chain that ran without it,
    /// and was filled from the rebuilt ledger.
    pub rebuilt_state_column: bool,
}

/// Rebuild a validator's state from `store`: see the module docs. `check_state_column`
/// also compares the state column key by key with the rebuilt ledger; it applies only
/// when the store keeps the column (`ChainStoreConfig::keep_state_column`).
pub fn recover<S: Store>(
    store: &ChainStore<S>,
    genesis: &Genesis,
    validators: &ValidatorSet,
    rules: &BlockRules,
    check_state_column: bool,
) -> Result<Recovered, RecoveryError> {
    let genesis_ledger = Ledger::from_genesis(genesis)?;
    let Some(head) = store.last_committed() else {
        let base = ChainBase {
            height: 0,
            block_hash: Hash::ZERO,
            state_root: genesis_ledger.state_root(),
        };
        store.install_base_state(base, genesis_ledger.snapshot())?;
        return Ok(Recovered {
            ledger: genesis_ledger,
            head: base,
            wal: Vec::new(),
            snapshot_height: 0,
            replayed_blocks: 0,
            installed_genesis: true,
            rebuilt_state_column: false,
        });
    };
    if let Some(base) = store.base()
        && base.height == 0
        && base.state_root != genesis_ledger.state_root()
    {
        return Err(RecoveryError::GenesisMismatch {
            stored: base.state_root,
            expected: genesis_ledger.state_root(),
        });
    }

    let snapshot = store
        .latest_snapshot()?
        .ok_or(RecoveryError::NoSnapshot { head: head.height })?;
    let (info, entries) = store.snapshot_entries(snapshot.height)?;
    let mut ledger = Ledger::restore(entries).map_err(|source| RecoveryError::Snapshot {
        height: info.height,
        source,
    })?;
    if ledger.genesis() != genesis {
        return Err(RecoveryError::GenesisMismatch {
            stored: ledger.genesis().hash(),
            expected: genesis.hash(),
        });
    }
    if ledger.state_root() != info.state_root {
        return Err(RecoveryError::SnapshotRootMismatch {
            height: info.height,
            committed: info.state_root,
            restored: ledger.state_root(),
        });
    }

    let mut parent = Parent {
        height: info.height,
        hash: info.block_hash,
        time: ledger.last_block_time(),
    };
    let mut signatures = SignatureCache::new(rules.txs_max.max(1));
    let mut replayed_blocks = 0;
    for height in info.height.saturating_add(1)..=head.height {
        let stored = store
            .committed_block(height)?
            .ok_or(RecoveryError::BlockMissing { height })?;
        let block = Block::decode(&stored.block).map_err(|e| RecoveryError::Undecodable {
            what: "block",
            height,
            detail: e.to_string(),
        })?;
        let certificate = CommitCertificate::decode(&stored.certificate).map_err(|e| {
            RecoveryError::Undecodable {
                what: "certificate",
                height,
                detail: e.to_string(),
            }
        })?;
        if certificate.height.0 != height || certificate.value_id != block.hash() {
            return Err(RecoveryError::CertificateInvalid {
                height,
                detail: format!(
                    "it certifies {} at height {}, the stored block is {}",
                    certificate.value_id,
                    certificate.height,
                    block.hash()
                ),
            });
        }
        certificate
            .verify(validators, rules.chain_id)
            .map_err(|e| RecoveryError::CertificateInvalid {
                height,
                detail: e.to_string(),
            })?;
        let executed = validate_block(
            block,
            &ledger,
            &parent,
            rules,
            validators,
            None,
            &mut signatures,
        )
        .map_err(|reason| RecoveryError::ReplayInvalid { height, reason })?;
        if executed.result.state_root != stored.state_root {
            return Err(RecoveryError::ReplayInvalid {
                height,
                reason: InvalidBlock::StateRootMismatch {
                    header: stored.state_root,
                    computed: executed.result.state_root,
                },
            });
        }
        parent = Parent {
            height,
            hash: executed.id,
            time: executed.block.header.time,
        };
        ledger = executed.ledger;
        replayed_blocks += 1;
    }
    if ledger.state_root() != head.state_root || parent.hash != head.block_hash {
        return Err(RecoveryError::HeadRootMismatch {
            height: head.height,
            committed: head.state_root,
            computed: ledger.state_root(),
        });
    }
    let mut rebuilt_state_column = false;
    if store.config().keep_state_column {
        if store.state_column_current() {
            if check_state_column {
                compare_state_column(store, &ledger, head.height)?;
            }
        } else {
            // The ledger's root equals the committed head's (checked above), so its
            // key-values are the state at the head.
            store.rebuild_state_column(ledger.snapshot())?;
            rebuilt_state_column = true;
        }
    }

    let next = head
        .height
        .checked_add(1)
        .expect("bug: the committed height reached u64::MAX");
    let above = next.checked_add(1).expect("bug: height overflow");
    if let Some((height, _)) = store.wal_entries_from(above, 1)?.first() {
        return Err(RecoveryError::WalAhead {
            height: *height,
            next,
        });
    }
    let wal = store
        .wal_entries(next)?
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            WalEntry::decode(bytes, WAL_ENTRY_BYTES_MAX).map_err(|e| {
                RecoveryError::WalUndecodable {
                    height: next,
                    index,
                    detail: e.to_string(),
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Recovered {
        ledger,
        head,
        wal,
        snapshot_height: info.height,
        replayed_blocks,
        installed_genesis: false,
        rebuilt_state_column,
    })
}

/// The state column must hold exactly the rebuilt ledger's key-values.
fn compare_state_column<S: Store>(
    store: &ChainStore<S>,
    ledger: &Ledger,
    height: u64,
) -> Result<(), RecoveryError> {
    let stored = store.state_entries()?;
    let rebuilt = ledger.snapshot();
    let mut stored_iter = stored.iter();
    let mut rebuilt_iter = rebuilt.iter();
    loop {
        match (stored_iter.next(), rebuilt_iter.next()) {
            (None, None) => return Ok(()),
            (Some(a), Some(b)) if a == b => continue,
            (a, b) => {
                let key = match (a, b) {
                    (Some(a), Some(b)) => a.0.clone().min(b.0.clone()),
                    (Some(a), None) => a.0.clone(),
                    (None, Some(b)) => b.0.clone(),
                    (None, None) => unreachable!("bug: handled above"),
                };
                return Err(RecoveryError::StateColumnDiverged {
                    height,
                    key_hex: key.iter().map(|b| format!("{b:02x}")).collect(),
                });
            }
        }
    }
}
