//! A store wrapper that injects faults: failed writes, failed syncs, torn writes, crashes
//! and bit flips. Used by crash tests and by the simulator.
//!
//! # How the faults map to RocksDB
//!
//! - **Failed write**: RocksDB returns an error before the batch reaches its log (disk
//!   full, permission lost). Nothing is applied; the store stays usable.
//! - **Failed sync**: the batch reached the log but `fsync` failed. RocksDB then holds a
//!   background error and refuses further writes; the batch may or may not survive a power
//!   loss. Modelled as: the batch is applied but not made durable, and the store refuses
//!   every later call until it is restarted (a node must stop after a failed fsync;
//!   retrying it is unsafe, as the kernel may have dropped the dirty pages).
//! - **Torn write**: RocksDB never tears a batch. It writes the batch as one log record with
//!   a checksum, and recovery drops a record whose tail is missing. A torn batch can only
//!   appear when the files are damaged below RocksDB (a disk or file system that loses a
//!   middle write, a copy made while the node ran) or on a store without atomic batches.
//!   Modelled as: a prefix of the batch's operations is applied durably, optionally with the
//!   next value cut short, then the process "dies" (every later call fails until restart).
//!   The chain layer must detect the damage at the next start-up: commits open with a
//!   commit-intent record, so any non-empty prefix of a commit leaves an intent above the
//!   committed head, and a cut value fails its frame checksum.
//! - **Crash**: [`CrashableStore::crash`] drops every unsynced write (a power loss).

use crate::column::Column;
use crate::error::{Result, StorageError};
use crate::store::{
    CrashableStore, Durability, KeyRange, ScanOrder, ScanVisitor, Store, WriteBatch, WriteOp,
};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A fault that [`FaultyStore`] injected into a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    /// The write failed and nothing was applied.
    WriteFailed,
    /// The write was applied but not made durable; the store now refuses calls until
    /// restarted.
    SyncFailed,
    /// Only the first `ops_applied` operations reached the disk; the store now refuses
    /// calls until restarted.
    TornWrite {
        /// Operations applied.
        ops_applied: usize,
        /// Whether the next operation's value was applied cut short.
        value_cut: bool,
    },
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InjectedFault::WriteFailed => f.write_str("write failed before reaching the log"),
            InjectedFault::SyncFailed => f.write_str("fsync of the log failed"),
            InjectedFault::TornWrite {
                ops_applied,
                value_cut,
            } => write!(
                f,
                "torn write: only {ops_applied} operations reached the disk{}",
                if *value_cut {
                    " and the next value was cut short"
                } else {
                    ""
                }
            ),
        }
    }
}

/// A torn write to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornWrite {
    /// How many leading operations of the batch reach the disk (clamped to the batch).
    pub ops_applied: usize,
    /// Also apply the next operation, if it is a put, with only the first half of its value.
    pub cut_next_value: bool,
}

/// Probabilities (per million writes) of faults drawn from a seeded generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultRates {
    /// A write fails with nothing applied.
    pub write_failed_per_million: u32,
    /// A synced write fails its sync.
    pub sync_failed_per_million: u32,
    /// A write is torn at a random point.
    pub torn_write_per_million: u32,
}

/// Counts of what the wrapper did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultStats {
    /// Writes passed through whole.
    pub writes_ok: u64,
    /// Writes failed with nothing applied.
    pub writes_failed: u64,
    /// Synced writes whose sync failed.
    pub syncs_failed: u64,
    /// Torn writes.
    pub torn_writes: u64,
    /// Restarts after a crash.
    pub restarts: u64,
}

#[derive(Debug, Default)]
struct FaultState {
    fail_writes: u32,
    fail_syncs: u32,
    torn: Option<TornWrite>,
    dead: bool,
    random: Option<(SplitMix64, FaultRates)>,
    stats: FaultStats,
}

/// A small deterministic generator (SplitMix64) so fault schedules replay from a seed.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce5_e4b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance_per_million(&mut self, per_million: u32) -> bool {
        per_million > 0 && self.next() % 1_000_000 < u64::from(per_million)
    }
}

/// What to do with one write.
enum Plan {
    Pass,
    Fail,
    FailSync,
    Tear(TornWrite),
}

/// Wraps a [`Store`] and injects faults on request or at seeded random.
///
/// Clones share the inner store (when `S` is a shared handle such as [`crate::MemStore`])
/// and the fault state, so a test can arm a fault on one handle while a node writes through
/// another.
#[derive(Debug, Clone)]
pub struct FaultyStore<S> {
    inner: S,
    state: Arc<Mutex<FaultState>>,
}

impl<S: Store> FaultyStore<S> {
    /// Wrap `inner` with no faults armed.
    pub fn new(inner: S) -> FaultyStore<S> {
        FaultyStore {
            inner,
            state: Arc::default(),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fail the next `count` writes with nothing applied.
    pub fn fail_next_writes(&self, count: u32) {
        self.lock().fail_writes = count;
    }

    /// Fail the sync of the next `count` synced writes (the first one kills the store).
    pub fn fail_next_syncs(&self, count: u32) {
        self.lock().fail_syncs = count;
    }

    /// Tear the next write.
    pub fn tear_next_write(&self, torn: TornWrite) {
        self.lock().torn = Some(torn);
    }

    /// Draw faults at random for every write from now on, from `seed`.
    pub fn set_random_faults(&self, seed: u64, rates: FaultRates) {
        self.lock().random = Some((SplitMix64(seed), rates));
    }

    /// Stop drawing random faults and disarm every armed fault.
    pub fn disarm(&self) {
        let mut state = self.lock();
        state.fail_writes = 0;
        state.fail_syncs = 0;
        state.torn = None;
        state.random = None;
    }

    /// True after a failed sync or a torn write, until restarted.
    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// What the wrapper has done so far.
    pub fn stats(&self) -> FaultStats {
        self.lock().stats
    }

    /// Flip one bit of the stored value at `key` (bit index modulo the value's length),
    /// written durably, to test that reads detect it. Returns false if the key is absent.
    pub fn flip_bit(&self, column: Column, key: &[u8], bit: usize) -> Result<bool> {
        let Some(mut value) = self.inner.get(column, key)? else {
            return Ok(false);
        };
        if value.is_empty() {
            return Ok(false);
        }
        let bit = bit % (value.len() * 8);
        value[bit / 8] ^= 1 << (bit % 8);
        let mut batch = WriteBatch::synced();
        batch.put(column, key.to_vec(), value);
        self.inner.write(batch)?;
        Ok(true)
    }

    fn plan(&self, batch: &WriteBatch) -> Result<Plan> {
        let mut state = self.lock();
        if state.dead {
            return Err(StorageError::Crashed);
        }
        if state.fail_writes > 0 {
            state.fail_writes -= 1;
            return Ok(Plan::Fail);
        }
        if let Some(torn) = state.torn.take() {
            return Ok(Plan::Tear(torn));
        }
        let synced = batch.durability() == Durability::Synced;
        if synced && state.fail_syncs > 0 {
            state.fail_syncs -= 1;
            return Ok(Plan::FailSync);
        }
        if let Some((rng, rates)) = state.random.as_mut() {
            if rng.chance_per_million(rates.write_failed_per_million) {
                return Ok(Plan::Fail);
            }
            if rng.chance_per_million(rates.torn_write_per_million) {
                let len = u64::try_from(batch.len()).unwrap_or(u64::MAX);
                let ops_applied = usize::try_from(rng.next() % len.saturating_add(1))
                    .expect("bug: a value at most the batch length fits usize");
                let cut_next_value = rng.next().is_multiple_of(2);
                return Ok(Plan::Tear(TornWrite {
                    ops_applied,
                    cut_next_value,
                }));
            }
            if synced && rng.chance_per_million(rates.sync_failed_per_million) {
                return Ok(Plan::FailSync);
            }
        }
        Ok(Plan::Pass)
    }
}

impl<S: Store> Store for FaultyStore<S> {
    fn write(&self, batch: WriteBatch) -> Result<()> {
        match self.plan(&batch)? {
            Plan::Pass => {
                self.inner.write(batch)?;
                self.lock().stats.writes_ok += 1;
                Ok(())
            }
            Plan::Fail => {
                self.lock().stats.writes_failed += 1;
                Err(StorageError::InjectedFault {
                    fault: InjectedFault::WriteFailed,
                })
            }
            Plan::FailSync => {
                let mut applied = batch;
                applied.set_durability(Durability::Buffered);
                self.inner.write(applied)?;
                let mut state = self.lock();
                state.stats.syncs_failed += 1;
                state.dead = true;
                Err(StorageError::InjectedFault {
                    fault: InjectedFault::SyncFailed,
                })
            }
            Plan::Tear(torn) => {
                let mut ops = batch.into_ops();
                let ops_applied = torn.ops_applied.min(ops.len());
                let next = ops.get(ops_applied).cloned();
                ops.truncate(ops_applied);
                let mut prefix = WriteBatch::synced();
                for op in ops {
                    prefix.push(op);
                }
                let mut value_cut = false;
                if torn.cut_next_value
                    && let Some(WriteOp::Put {
                        column,
                        key,
                        mut value,
                    }) = next
                {
                    value.truncate(value.len() / 2);
                    prefix.put(column, key, value);
                    value_cut = true;
                }
                // The prefix reached the disk before the process died: it is durable.
                self.inner.write(prefix)?;
                let mut state = self.lock();
                state.stats.torn_writes += 1;
                state.dead = true;
                Err(StorageError::InjectedFault {
                    fault: InjectedFault::TornWrite {
                        ops_applied,
                        value_cut,
                    },
                })
            }
        }
    }

    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if self.lock().dead {
            return Err(StorageError::Crashed);
        }
        self.inner.get(column, key)
    }

    fn scan(
        &self,
        column: Column,
        range: KeyRange<'_>,
        order: ScanOrder,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<()> {
        if self.lock().dead {
            return Err(StorageError::Crashed);
        }
        self.inner.scan(column, range, order, visit)
    }
}

impl<S: CrashableStore> CrashableStore for FaultyStore<S> {
    /// Power loss and restart: the inner store drops its unsynced writes, the one-shot
    /// faults are disarmed (random faults stay armed) and the store accepts calls again.
    fn crash(&self) {
        self.inner.crash();
        let mut state = self.lock();
        state.fail_writes = 0;
        state.fail_syncs = 0;
        state.torn = None;
        state.dead = false;
        state.stats.restarts += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::MemStore;

    fn put(durability: Durability, pairs: &[(&[u8], &[u8])]) -> WriteBatch {
        let mut batch = WriteBatch::new(durability);
        for (key, value) in pairs {
            batch.put(Column::State, key.to_vec(), value.to_vec());
        }
        batch
    }

    #[test]
    fn failed_write_applies_nothing_and_store_stays_usable() {
        let store = FaultyStore::new(MemStore::new());
        store.fail_next_writes(1);
        let err = store
            .write(put(Durability::Synced, &[(b"a", b"1")]))
            .unwrap_err();
        assert!(matches!(
            err,
            StorageError::InjectedFault {
                fault: InjectedFault::WriteFailed
            }
        ));
        assert_eq!(store.get(Column::State, b"a").unwrap(), None);
        store
            .write(put(Durability::Synced, &[(b"a", b"1")]))
            .unwrap();
        assert_eq!(store.stats().writes_failed, 1);
        assert_eq!(store.stats().writes_ok, 1);
    }

    #[test]
    fn failed_sync_is_lost_on_crash_and_kills_the_store() {
        let store = FaultyStore::new(MemStore::new());
        store.fail_next_syncs(1);
        assert!(
            store
                .write(put(Durability::Synced, &[(b"a", b"1")]))
                .is_err()
        );
        assert!(store.is_dead());
        assert!(matches!(
            store.get(Column::State, b"a"),
            Err(StorageError::Crashed)
        ));
        assert_eq!(
            store.inner().get(Column::State, b"a").unwrap(),
            Some(b"1".to_vec())
        );
        store.crash();
        assert!(!store.is_dead());
        assert_eq!(store.get(Column::State, b"a").unwrap(), None);
    }

    #[test]
    fn torn_write_keeps_a_durable_prefix() {
        let store = FaultyStore::new(MemStore::new());
        store.tear_next_write(TornWrite {
            ops_applied: 1,
            cut_next_value: true,
        });
        let err = store
            .write(put(
                Durability::Synced,
                &[(b"a", b"1"), (b"b", b"2222"), (b"c", b"3")],
            ))
            .unwrap_err();
        assert!(matches!(
            err,
            StorageError::InjectedFault {
                fault: InjectedFault::TornWrite {
                    ops_applied: 1,
                    value_cut: true
                }
            }
        ));
        store.crash();
        assert_eq!(store.get(Column::State, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(
            store.get(Column::State, b"b").unwrap(),
            Some(b"22".to_vec())
        );
        assert_eq!(store.get(Column::State, b"c").unwrap(), None);
    }

    #[test]
    fn random_faults_replay_from_the_seed() {
        let run = |seed: u64| {
            let store = FaultyStore::new(MemStore::new());
            store.set_random_faults(
                seed,
                FaultRates {
                    write_failed_per_million: 200_000,
                    sync_failed_per_million: 100_000,
                    torn_write_per_million: 100_000,
                },
            );
            let mut outcomes = Vec::new();
            for i in 0u32..200 {
                let key = i.to_be_bytes();
                let result = store.write(put(Durability::Synced, &[(&key, b"v"), (b"z", b"w")]));
                outcomes.push(result.is_ok());
                if store.is_dead() {
                    store.crash();
                }
            }
            (outcomes, store.stats())
        };
        let (a, stats_a) = run(7);
        let (b, stats_b) = run(7);
        assert_eq!(a, b);
        assert_eq!(stats_a, stats_b);
        assert!(stats_a.writes_failed > 0 && stats_a.torn_writes > 0 && stats_a.syncs_failed > 0);
        let (c, _) = run(8);
        assert_ne!(a, c);
    }

    #[test]
    fn flip_bit_changes_the_stored_value() {
        let store = FaultyStore::new(MemStore::new());
        store
            .write(put(Durability::Synced, &[(b"a", b"\x00")]))
            .unwrap();
        assert!(store.flip_bit(Column::State, b"a", 3).unwrap());
        assert_eq!(store.get(Column::State, b"a").unwrap(), Some(vec![8]));
        assert!(!store.flip_bit(Column::State, b"missing", 0).unwrap());
    }
}
