//! Nonces for one signer, safe under many concurrent submissions.
//!
//! The ledger remembers each signer's 64 highest used nonces; a new nonce must be unused and
//! above the smallest of them. Inside a block transactions run in a hash-derived order, not
//! by nonce, so if more than 64 of one signer's transactions were in flight at once, the
//! lowest could arrive after 64 higher ones had filled the window and be refused as too old.
//! The manager therefore hands out nonces with an atomic counter (never the same twice)
//! and caps the nonces in flight at [`MAX_IN_FLIGHT`]: a [`NonceLease`] holds one slot until
//! its transaction has been answered.
//!
//! It starts above both the signer's highest committed nonce and `now_ms × 1000`, so a
//! restarted process never reuses a nonce that an earlier run left pending.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most nonces of one signer in flight at once (the ledger's nonce window).
pub const MAX_IN_FLIGHT: usize = dex_state::NONCE_WINDOW;

/// Hands out nonces; see the module docs.
#[derive(Debug)]
pub struct NonceManager {
    next: AtomicU64,
    in_flight: Arc<Semaphore>,
}

/// One nonce and its in-flight slot, released on drop.
#[derive(Debug)]
pub struct NonceLease {
    /// The nonce to sign with.
    pub nonce: u64,
    _slot: OwnedSemaphorePermit,
}

impl NonceManager {
    /// A manager whose first nonce is above `highest_used` and `now_ms × 1000`.
    pub fn new(highest_used: Option<u64>, now_ms: u64) -> NonceManager {
        let start = highest_used
            .map_or(1, |h| h.saturating_add(1))
            .max(now_ms.saturating_mul(1_000));
        NonceManager {
            next: AtomicU64::new(start),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// The next nonce, waiting while [`MAX_IN_FLIGHT`] are in flight.
    pub async fn lease(&self) -> NonceLease {
        let slot = Arc::clone(&self.in_flight)
            .acquire_owned()
            .await
            .expect("bug: the nonce semaphore is never closed");
        NonceLease {
            nonce: self.next.fetch_add(1, Ordering::SeqCst),
            _slot: slot,
        }
    }

    /// Make sure later nonces are above `used` (after the node reported it used).
    pub fn observe(&self, used: u64) {
        self.next
            .fetch_max(used.saturating_add(1), Ordering::SeqCst);
    }

    /// The nonce the next lease will get.
    pub fn peek(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[tokio::test]
    async fn concurrent_leases_are_unique_and_bounded() {
        let manager = Arc::new(NonceManager::new(Some(41), 0));
        assert_eq!(manager.peek(), 42);
        let mut tasks = Vec::new();
        for _ in 0..500 {
            let manager = Arc::clone(&manager);
            tasks.push(tokio::spawn(async move { manager.lease().await.nonce }));
        }
        let mut seen = BTreeSet::new();
        for task in tasks {
            assert!(seen.insert(task.await.unwrap()));
        }
        assert_eq!(seen.len(), 500);
        assert_eq!(*seen.first().unwrap(), 42);
        assert_eq!(*seen.last().unwrap(), 541);
        // Holding the window full blocks the next lease until one is released.
        let mut held = Vec::new();
        for _ in 0..MAX_IN_FLIGHT {
            held.push(manager.lease().await);
        }
        let blocked =
            tokio::time::timeout(std::time::Duration::from_millis(20), manager.lease()).await;
        assert!(blocked.is_err());
        held.pop();
        let lease = tokio::time::timeout(std::time::Duration::from_secs(5), manager.lease())
            .await
            .unwrap();
        assert!(lease.nonce > 541);
    }

    #[test]
    fn starts_above_time_and_history() {
        assert_eq!(NonceManager::new(None, 5).peek(), 5_000);
        assert_eq!(NonceManager::new(Some(9_000), 5).peek(), 9_001);
        let manager = NonceManager::new(None, 0);
        manager.observe(77);
        assert_eq!(manager.peek(), 78);
        manager.observe(3);
        assert_eq!(manager.peek(), 78);
    }
}
