//! The per-block checksum of the top of a book, computed alike by the node and the SDK.
//!
//! A client that applies diffs to a local book compares its own checksum with the one each
//! diff carries; any difference (a lost or misapplied diff, a bug on either side) shows at
//! the next block instead of leaving the client with a silently wrong or crossed book.
//!
//! The checksum covers the best [`CHECKSUM_LEVELS`] levels of each side in integer ticks
//! and lots, so it does not depend on decimal formatting:
//! `hex(BLAKE3-derive-key("dex v1 book checksum", count_bids u8 ‖ count_asks u8 ‖
//! (price u64 LE ‖ size u64 LE) for bids best first ‖ same for asks best first))[..16]`.

use dex_types::{PriceTicks, SizeLots};

/// Levels per side the checksum covers.
pub const CHECKSUM_LEVELS: usize = 25;

const CONTEXT: &str = "dex v1 book checksum";

/// The checksum of a book whose bids (highest first) and asks (lowest first) are given.
/// Only the first [`CHECKSUM_LEVELS`] of each are read.
pub fn book_checksum(
    bids: impl IntoIterator<Item = (PriceTicks, SizeLots)>,
    asks: impl IntoIterator<Item = (PriceTicks, SizeLots)>,
) -> String {
    let mut body = Vec::with_capacity(2 + 2 * CHECKSUM_LEVELS * 16);
    body.extend_from_slice(&[0, 0]);
    for (slot, side) in [
        bids.into_iter().take(CHECKSUM_LEVELS).collect::<Vec<_>>(),
        asks.into_iter().take(CHECKSUM_LEVELS).collect::<Vec<_>>(),
    ]
    .into_iter()
    .enumerate()
    {
        // At most CHECKSUM_LEVELS (25) levels: fits a byte.
        body[slot] = side.len() as u8;
        for (price, size) in side {
            body.extend_from_slice(&price.0.to_le_bytes());
            body.extend_from_slice(&size.0.to_le_bytes());
        }
    }
    let mut hasher = blake3::Hasher::new_derive_key(CONTEXT);
    hasher.update(&body);
    hex::encode(&hasher.finalize().as_bytes()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(pairs: &[(u64, u64)]) -> Vec<(PriceTicks, SizeLots)> {
        pairs
            .iter()
            .map(|&(p, s)| (PriceTicks(p), SizeLots(s)))
            .collect()
    }

    #[test]
    fn sides_sizes_and_depth_matter() {
        let a = book_checksum(levels(&[(10, 1)]), levels(&[(11, 1)]));
        assert_eq!(a.len(), 16);
        assert_ne!(a, book_checksum(levels(&[(11, 1)]), levels(&[(10, 1)])));
        assert_ne!(a, book_checksum(levels(&[(10, 2)]), levels(&[(11, 1)])));
        assert_ne!(a, book_checksum(levels(&[(10, 1)]), levels(&[])));
        // A bid moved to the asks is not the same book.
        assert_ne!(
            book_checksum(levels(&[(10, 1), (9, 1)]), levels(&[])),
            book_checksum(levels(&[(10, 1)]), levels(&[(9, 1)]))
        );
        // Levels past the covered depth do not count.
        let deep: Vec<(u64, u64)> = (0..40).map(|i| (100 - i, 1)).collect();
        let mut deeper = deep.clone();
        deeper[30].1 = 7;
        assert_eq!(
            book_checksum(levels(&deep), levels(&[])),
            book_checksum(levels(&deeper), levels(&[]))
        );
        deeper[24].1 = 7;
        assert_ne!(
            book_checksum(levels(&deep), levels(&[])),
            book_checksum(levels(&deeper), levels(&[]))
        );
    }
}
