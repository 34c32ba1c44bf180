//! A validator's simulated disk: the crash-modelling [`MemStore`] plus a crash point, so a
//! node can die in the middle of a step — before or after a given write lands — and not
//! only between events.

use dex_storage::{
    Column, CrashableStore, KeyRange, MemStore, ScanOrder, ScanVisitor, StorageError, Store,
    WriteBatch,
};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Where, inside the next steps, the node dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPoint {
    /// Writes that still succeed before the fatal one.
    pub writes_before: u32,
    /// Whether the fatal write lands (and the process dies right after it) or not.
    pub write_lands: bool,
}

#[derive(Debug, Default)]
struct Arm {
    point: Option<CrashPoint>,
    /// The crash point was reached: the process is dead and every write fails.
    tripped: bool,
}

/// A [`MemStore`] with an optional crash point. Clones share the disk and the crash point.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    store: MemStore,
    arm: Arc<Mutex<Arm>>,
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    fn arm(&self) -> MutexGuard<'_, Arm> {
        self.arm.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Die at `point` during the coming writes.
    pub fn arm_crash(&self, point: CrashPoint) {
        let mut arm = self.arm();
        arm.point = Some(point);
        arm.tripped = false;
    }

    /// Clear a crash point not yet reached.
    pub fn disarm(&self) {
        let mut arm = self.arm();
        if !arm.tripped {
            arm.point = None;
        }
    }

    /// Whether the crash point was reached.
    pub fn tripped(&self) -> bool {
        self.arm().tripped
    }

    /// Whether a crash point is set and not yet reached.
    pub fn armed(&self) -> bool {
        self.arm().point.is_some()
    }

    /// The power loss: drop unsynced writes, clear the crash point (the restarted process
    /// starts clean).
    pub fn power_loss(&self) {
        self.store.crash();
        *self.arm() = Arm::default();
    }

    /// The underlying store.
    pub fn mem(&self) -> &MemStore {
        &self.store
    }
}

fn dead() -> StorageError {
    StorageError::Backend {
        operation: "write",
        message: "the simulated process died at its crash point".into(),
    }
}

impl Store for SimDisk {
    fn write(&self, batch: WriteBatch) -> dex_storage::Result<()> {
        let mut arm = self.arm();
        if arm.tripped {
            return Err(dead());
        }
        if let Some(point) = arm.point.as_mut() {
            if point.writes_before > 0 {
                point.writes_before -= 1;
            } else {
                let lands = point.write_lands;
                arm.point = None;
                arm.tripped = true;
                drop(arm);
                if lands {
                    self.store.write(batch)?;
                }
                return Err(dead());
            }
        }
        drop(arm);
        self.store.write(batch)
    }

    fn get(&self, column: Column, key: &[u8]) -> dex_storage::Result<Option<Vec<u8>>> {
        self.store.get(column, key)
    }

    fn scan(
        &self,
        column: Column,
        range: KeyRange<'_>,
        order: ScanOrder,
        visit: &mut ScanVisitor<'_>,
    ) -> dex_storage::Result<()> {
        self.store.scan(column, range, order, visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(disk: &SimDisk, key: u8) -> dex_storage::Result<()> {
        let mut batch = WriteBatch::synced();
        batch.put(Column::Metadata, vec![key], vec![key]);
        disk.write(batch)
    }

    fn has(disk: &SimDisk, key: u8) -> bool {
        disk.get(Column::Metadata, &[key]).unwrap().is_some()
    }

    #[test]
    fn dies_at_its_crash_point_with_or_without_the_write() {
        for lands in [false, true] {
            let disk = SimDisk::new();
            disk.arm_crash(CrashPoint {
                writes_before: 1,
                write_lands: lands,
            });
            put(&disk, 1).unwrap();
            assert!(!disk.tripped());
            assert!(put(&disk, 2).is_err());
            assert!(disk.tripped());
            assert!(put(&disk, 3).is_err(), "a dead process writes nothing");
            assert_eq!(has(&disk, 2), lands);
            assert!(!has(&disk, 3));
            disk.power_loss();
            assert!(!disk.tripped() && !disk.armed());
            put(&disk, 4).unwrap();
            assert!(has(&disk, 1) && has(&disk, 4));
        }
    }
}
