//! Replay protection: the window of a signer's highest used nonces.

use borsh::{BorshDeserialize, BorshSerialize};

/// How many of a signer's highest used nonces are remembered.
pub const NONCE_WINDOW: usize = 64;

/// Why a nonce cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// The nonce is in the window: this transaction, or another with the same nonce, already ran.
    #[error("nonce {nonce} was already used")]
    Replayed {
        /// The nonce given.
        nonce: u64,
    },
    /// The window is full and the nonce is not above its smallest entry, so the ledger can no
    /// longer tell whether it was used: sign with a fresh, higher nonce.
    #[error("nonce {nonce} is too old: it must be above {smallest}")]
    TooOld {
        /// The nonce given.
        nonce: u64,
        /// The smallest nonce the window still remembers.
        smallest: u64,
    },
}

/// The highest [`NONCE_WINDOW`] nonces a signer used, kept sorted ascending.
///
/// A new nonce must be unused and, once the window is full, larger than its smallest entry.
/// Clients may therefore send up to 64 transactions concurrently in any order (nonces need
/// not be consecutive), while a replay is always caught.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NonceWindow {
    used: Vec<u64>,
}

impl NonceWindow {
    /// An empty window: every nonce is acceptable.
    pub fn new() -> Self {
        NonceWindow { used: Vec::new() }
    }

    /// Whether `nonce` could be used now; does not change the window.
    pub fn check(&self, nonce: u64) -> Result<(), NonceError> {
        if self.used.len() == NONCE_WINDOW && nonce <= self.used[0] {
            return Err(NonceError::TooOld {
                nonce,
                smallest: self.used[0],
            });
        }
        match self.used.binary_search(&nonce) {
            Ok(_) => Err(NonceError::Replayed { nonce }),
            Err(_) => Ok(()),
        }
    }

    /// Record `nonce` as used (after [`check`](Self::check)); the smallest entry falls out of
    /// a full window.
    pub fn consume(&mut self, nonce: u64) -> Result<(), NonceError> {
        self.check(nonce)?;
        let at = self.used.partition_point(|&n| n < nonce);
        if self.used.len() == NONCE_WINDOW {
            // `nonce` is above used[0], so `at >= 1`: drop the smallest, shift the lower part.
            self.used.copy_within(1..at, 0);
            self.used[at - 1] = nonce;
        } else {
            self.used.insert(at, nonce);
        }
        Ok(())
    }

    /// The used nonces, ascending.
    pub fn used(&self) -> &[u64] {
        &self.used
    }

    /// The highest used nonce, if any (what a client's next nonce must exceed to be safe).
    pub fn highest(&self) -> Option<u64> {
        self.used.last().copied()
    }

    /// Rebuild from stored entries, checking they form a valid window.
    pub(crate) fn from_used(used: Vec<u64>) -> Option<NonceWindow> {
        let sorted = used.windows(2).all(|w| w[0] < w[1]);
        (sorted && used.len() <= NONCE_WINDOW).then_some(NonceWindow { used })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn replay_is_rejected() {
        let mut w = NonceWindow::new();
        w.consume(5).unwrap();
        assert_eq!(w.consume(5), Err(NonceError::Replayed { nonce: 5 }));
        // Lower unused nonces are fine while the window has room.
        w.consume(1).unwrap();
        assert_eq!(w.used(), &[1, 5]);
    }

    #[test]
    fn full_window_rejects_old_nonces_and_keeps_highest() {
        let mut w = NonceWindow::new();
        for n in (10..10 + NONCE_WINDOW as u64).rev() {
            w.consume(n).unwrap();
        }
        assert_eq!(
            w.check(10),
            Err(NonceError::TooOld {
                nonce: 10,
                smallest: 10
            })
        );
        assert_eq!(
            w.check(3),
            Err(NonceError::TooOld {
                nonce: 3,
                smallest: 10
            })
        );
        w.consume(1000).unwrap();
        assert_eq!(w.used()[0], 11);
        assert_eq!(w.highest(), Some(1000));
        assert_eq!(w.used().len(), NONCE_WINDOW);
        // A gap inside the window is still usable.
        w.consume(500).unwrap();
        assert_eq!(w.used()[0], 12);
        assert_eq!(w.consume(500), Err(NonceError::Replayed { nonce: 500 }));
    }

    proptest! {
        /// The window always equals "the highest 64 distinct accepted nonces", and a nonce is
        /// accepted exactly when it is new and above the smallest of a full window.
        #[test]
        fn window_matches_model(nonces in prop::collection::vec(0u64..200, 0..400)) {
            let mut w = NonceWindow::new();
            let mut model: Vec<u64> = Vec::new();
            for n in nonces {
                let expect_ok = !model.contains(&n)
                    && (model.len() < NONCE_WINDOW || n > model[0]);
                prop_assert_eq!(w.consume(n).is_ok(), expect_ok);
                if expect_ok {
                    model.push(n);
                    model.sort_unstable();
                    if model.len() > NONCE_WINDOW {
                        model.remove(0);
                    }
                }
                prop_assert_eq!(w.used(), &model[..]);
            }
        }
    }
}
