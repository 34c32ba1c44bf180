//! Transactions this node admitted that will never commit: dropped from the mempool when a
//! committed block made them impossible (their nonce was used, they expired, their funds or
//! their order went). Kept, bounded, so a client asking about one hears why instead of
//! "unknown".

use dex_api::DroppedTx;
use dex_state::Rejection;
use dex_types::Hash;
use std::collections::{HashMap, VecDeque};

/// How many dropped transactions are remembered; the oldest are forgotten first.
pub(crate) const DROPPED_REMEMBERED: usize = 100_000;

/// A bounded memory of dropped transactions, oldest forgotten first.
#[derive(Debug)]
pub(crate) struct DroppedLog {
    // Lookup only; `order` decides what is forgotten.
    by_id: HashMap<Hash, DroppedTx>,
    order: VecDeque<Hash>,
    capacity: usize,
}

impl Default for DroppedLog {
    fn default() -> Self {
        DroppedLog::new(DROPPED_REMEMBERED)
    }
}

impl DroppedLog {
    /// An empty log of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> DroppedLog {
        DroppedLog {
            by_id: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Remember that `id` was dropped at `height` for `reason`.
    pub fn record(&mut self, id: Hash, height: u64, reason: Rejection) {
        if self
            .by_id
            .insert(id, DroppedTx { height, reason })
            .is_none()
        {
            self.order.push_back(id);
        }
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
    }

    /// Why `id` was dropped, if it was and is still remembered.
    pub fn get(&self, id: &Hash) -> Option<&DroppedTx> {
        self.by_id.get(id)
    }

    /// Entries remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_state::NonceError;

    fn id(n: u8) -> Hash {
        Hash::of(dex_types::Domain::Transaction, &[&[n]])
    }

    #[test]
    fn remembers_why_and_forgets_the_oldest_beyond_its_bound() {
        let mut log = DroppedLog::new(2);
        let reason = Rejection::Nonce(NonceError::Replayed { nonce: 3 });
        log.record(id(1), 5, reason.clone());
        log.record(id(2), 6, reason.clone());
        assert_eq!(log.get(&id(1)).map(|d| d.height), Some(5));
        log.record(id(3), 7, reason.clone());
        assert_eq!(log.len(), 2);
        assert!(log.get(&id(1)).is_none(), "the oldest is forgotten");
        assert_eq!(
            log.get(&id(3)),
            Some(&DroppedTx {
                height: 7,
                reason: reason.clone()
            })
        );
        // Recording the same id twice keeps one entry.
        log.record(id(2), 8, reason);
        assert_eq!(log.get(&id(2)).map(|d| d.height), Some(8));
        assert_eq!(log.len(), 2);
    }
}
