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
    /// The nonce is not above the lowest bound the ledger keeps for this signer, so the ledger
    /// can no longer tell whether it was used: sign with a fresh, higher nonce. The bound is
    /// the smallest entry of a full window or, for an agent key approved again after a
    /// revocation, the window's floor (the highest nonce the key may have used before).
    #[error("nonce {nonce} is too old: it must be above {smallest}")]
    TooOld {
        /// The nonce given.
        nonce: u64,
        /// What the nonce must exceed: the smallest nonce a full window still remembers, or
        /// the window's floor.
        smallest: u64,
    },
}

/// The highest [`NONCE_WINDOW`] nonces a signer used, kept sorted ascending, above an
/// optional floor.
///
/// A new nonce must be unused, above the floor, and, once the window is full, larger than its
/// smallest entry. Clients may therefore send up to 64 transactions concurrently in any order
/// (nonces need not be consecutive), while a replay is always caught.
///
/// The floor stands for nonces the window itself no longer holds: an agent key that was
/// revoked and later approved again starts with a fresh window whose floor is the highest
/// nonce the key used before (see [`crate::Account::revoked_agents`]), so none of its earlier
/// transactions can run again. A full window makes the floor redundant (every entry is above
/// it), so it is dropped then and the state stays as small as before.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NonceWindow {
    used: Vec<u64>,
    floor: Option<u64>,
}

impl NonceWindow {
    /// An empty window: every nonce is acceptable.
    pub fn new() -> Self {
        NonceWindow {
            used: Vec::new(),
            floor: None,
        }
    }

    /// An empty window that accepts only nonces above `floor` (every nonce if `None`).
    pub fn with_floor(floor: Option<u64>) -> Self {
        NonceWindow {
            used: Vec::new(),
            floor,
        }
    }

    /// What a new nonce must exceed, if anything: the smallest entry of a full window, else
    /// the floor. (Every entry is above the floor, so a full window's smallest entry is the
    /// larger bound.)
    fn bound(&self) -> Option<u64> {
        if self.used.len() == NONCE_WINDOW {
            Some(self.used[0])
        } else {
            self.floor
        }
    }

    /// Whether `nonce` could be used now; does not change the window.
    pub fn check(&self, nonce: u64) -> Result<(), NonceError> {
        if let Some(smallest) = self.bound()
            && nonce <= smallest
        {
            return Err(NonceError::TooOld { nonce, smallest });
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
            if self.used.len() == NONCE_WINDOW {
                // Every entry is above the floor, so the full window's smallest entry now
                // rejects everything the floor did: keep one representation of the state.
                self.floor = None;
            }
        }
        Ok(())
    }

    /// The used nonces, ascending.
    pub fn used(&self) -> &[u64] {
        &self.used
    }

    /// The floor: nonces at or below it are refused although the window does not list them.
    pub fn floor(&self) -> Option<u64> {
        self.floor
    }

    /// The highest nonce this signer used or may have used (the highest entry, or the floor
    /// if that is higher), if any: what a client's next nonce must exceed to be safe.
    pub fn highest(&self) -> Option<u64> {
        self.used.last().copied().max(self.floor)
    }

    /// Rebuild from stored parts, checking they form a window this type could have reached:
    /// entries strictly ascending, at most [`NONCE_WINDOW`] of them, all above the floor, and
    /// no floor beside a full window (it would be redundant, and the root commits to it).
    pub(crate) fn from_parts(used: Vec<u64>, floor: Option<u64>) -> Option<NonceWindow> {
        let sorted = used.windows(2).all(|w| w[0] < w[1]);
        let above_floor = match (floor, used.first()) {
            (Some(f), Some(&lowest)) => lowest > f,
            _ => true,
        };
        let canonical = floor.is_none() || used.len() < NONCE_WINDOW;
        (sorted && used.len() <= NONCE_WINDOW && above_floor && canonical)
            .then_some(NonceWindow { used, floor })
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

    #[test]
    fn floor_refuses_every_nonce_at_or_below_it_until_a_full_window_replaces_it() {
        let mut w = NonceWindow::with_floor(Some(40));
        for n in [0, 39, 40] {
            assert_eq!(
                w.check(n),
                Err(NonceError::TooOld {
                    nonce: n,
                    smallest: 40
                })
            );
        }
        assert_eq!(w.highest(), Some(40));
        w.consume(41).unwrap();
        assert_eq!(w.consume(41), Err(NonceError::Replayed { nonce: 41 }));
        assert_eq!(w.highest(), Some(41));
        assert_eq!(w.floor(), Some(40));
        for n in 42..41 + NONCE_WINDOW as u64 {
            w.consume(n).unwrap();
        }
        // Full: the smallest entry (41) is above the floor, so the floor is gone and the
        // window alone refuses everything it did.
        assert_eq!(w.floor(), None);
        assert_eq!(
            w.check(40),
            Err(NonceError::TooOld {
                nonce: 40,
                smallest: 41
            })
        );
        // Stored parts are checked: entries must be above the floor, and a full window has no
        // floor.
        assert!(NonceWindow::from_parts(vec![41, 50], Some(40)).is_some());
        assert!(NonceWindow::from_parts(vec![40, 50], Some(40)).is_none());
        assert!(NonceWindow::from_parts(w.used().to_vec(), Some(3)).is_none());
        assert_eq!(
            NonceWindow::from_parts(w.used().to_vec(), None),
            Some(w.clone())
        );
    }

    proptest! {
        /// The window always equals "the highest 64 distinct accepted nonces", and a nonce is
        /// accepted exactly when it is new, above the floor, and above the smallest of a full
        /// window.
        #[test]
        fn window_matches_model(
            nonces in prop::collection::vec(0u64..200, 0..400),
            floor in prop::option::of(0u64..100),
        ) {
            let mut w = NonceWindow::with_floor(floor);
            let mut model: Vec<u64> = Vec::new();
            for n in nonces {
                let expect_ok = !model.contains(&n)
                    && floor.is_none_or(|f| n > f)
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
                prop_assert_eq!(
                    w.highest(),
                    model.last().copied().max(floor)
                );
                prop_assert_eq!(
                    NonceWindow::from_parts(w.used().to_vec(), w.floor()),
                    Some(w.clone())
                );
            }
        }
    }
}
