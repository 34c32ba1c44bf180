//! A binary Merkle tree over leaf hashes, with inclusion proofs.
//!
//! Used for a block's transactions root and fills root; the trader SDK verifies its fills
//! with [`MerkleProof::verify`].
//!
//! ## Shape
//! - Leaves are hashes the caller already computed under their own domain (a transaction
//!   id under [`Domain::Transaction`], a fill under [`Domain::FillLeaf`]); they must never be
//!   hashed under [`Domain::MerkleNode`], which is what keeps a leaf from passing for an
//!   inner node.
//! - Each level pairs nodes left to right: `node = Hash::of(MerkleNode, [left, right])`. A
//!   level with an odd count promotes its last node unchanged to the next level; nothing is
//!   duplicated, so two different leaf lists never share a root (the duplication of the last
//!   node in Bitcoin's tree lets `[a, b, c]` and `[a, b, c, c]` collide).
//! - The root binds the leaf count: `root = Hash::of(MerkleRoot, [count as u64 LE, top])`.
//!   A proof therefore authenticates the leaf's index and the count as well as the leaf;
//!   without this, a leaf promoted at the end of one tree could verify at another index of a
//!   tree of another size.
//! - The root of no leaves is [`EMPTY_ROOT`] (all zeros).

use crate::codec::read_bounded_vec;
use crate::error::ValidationError;
use crate::hash::{Domain, Hash};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// The root of a tree with no leaves.
pub const EMPTY_ROOT: Hash = Hash::ZERO;

/// The most steps a proof may have: a tree of up to 2^64 leaves.
pub const MAX_PROOF_DEPTH: usize = 64;

fn node(left: &Hash, right: &Hash) -> Hash {
    Hash::of(Domain::MerkleNode, &[left.as_bytes(), right.as_bytes()])
}

fn bind_count(count: u64, top: &Hash) -> Hash {
    Hash::of(Domain::MerkleRoot, &[&count.to_le_bytes(), top.as_bytes()])
}

/// Replace `level` by the level above it.
fn reduce(level: &mut Vec<Hash>) {
    let len = level.len();
    for i in 0..len / 2 {
        level[i] = node(&level[2 * i], &level[2 * i + 1]);
    }
    if len % 2 == 1 {
        level[len / 2] = level[len - 1];
    }
    level.truncate(len.div_ceil(2));
}

/// The root of `leaves`.
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return EMPTY_ROOT;
    }
    // The first level is built from the slice directly, halving the copy.
    let mut level: Vec<Hash> = leaves
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => node(left, right),
            [single] => *single,
            _ => unreachable!("bug: chunks(2) gave {} items", pair.len()),
        })
        .collect();
    while level.len() > 1 {
        reduce(&mut level);
    }
    bind_count(leaves.len() as u64, &level[0])
}

/// The proof that `leaves[index]` is in the tree of `leaves`, or `None` if `index` is out of
/// range.
pub fn prove(leaves: &[Hash], index: usize) -> Option<MerkleProof> {
    if index >= leaves.len() {
        return None;
    }
    let mut siblings = Vec::new();
    let mut level = leaves.to_vec();
    let mut position = index;
    while level.len() > 1 {
        let sibling = position ^ 1;
        if sibling < level.len() {
            siblings.push(level[sibling]);
        }
        reduce(&mut level);
        position /= 2;
    }
    Some(MerkleProof { siblings })
}

/// The sibling hashes on the path from a leaf to the top, lowest first; levels where the
/// node was promoted have no sibling.
#[derive(
    Clone, PartialEq, Eq, Debug, Default, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct MerkleProof {
    /// At most [`MAX_PROOF_DEPTH`] hashes.
    #[borsh(deserialize_with = "read_siblings")]
    pub siblings: Vec<Hash>,
}

fn read_siblings<R: borsh::io::Read>(reader: &mut R) -> borsh::io::Result<Vec<Hash>> {
    read_bounded_vec(reader, MAX_PROOF_DEPTH, |count| {
        ValidationError::ProofTooLong {
            count,
            max: MAX_PROOF_DEPTH,
        }
    })
}

impl MerkleProof {
    /// Whether `leaf` is at `index` in a tree of `leaf_count` leaves whose root is `root`.
    pub fn verify(&self, root: &Hash, leaf: &Hash, index: u64, leaf_count: u64) -> bool {
        if index >= leaf_count {
            return false;
        }
        let mut siblings = self.siblings.iter();
        let mut current = *leaf;
        let mut position = index;
        let mut width = leaf_count;
        while width > 1 {
            if position % 2 == 1 {
                let Some(left) = siblings.next() else {
                    return false;
                };
                current = node(left, &current);
            } else if position + 1 < width {
                let Some(right) = siblings.next() else {
                    return false;
                };
                current = node(&current, right);
            }
            // Otherwise the node is the last of an odd level and is promoted unchanged.
            position /= 2;
            width = width.div_ceil(2);
        }
        siblings.next().is_none() && bind_count(leaf_count, &current) == *root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(count: usize) -> Vec<Hash> {
        (0..count as u64)
            .map(|i| Hash::of(Domain::Other, &[&i.to_le_bytes()]))
            .collect()
    }

    #[test]
    fn small_trees_by_hand() {
        let l = leaves(3);
        assert_eq!(root(&[]), EMPTY_ROOT);
        assert_eq!(root(&l[..1]), bind_count(1, &l[0]));
        assert_eq!(root(&l[..2]), bind_count(2, &node(&l[0], &l[1])));
        // Three leaves: the third is promoted, then paired with the first pair's node.
        assert_eq!(root(&l), bind_count(3, &node(&node(&l[0], &l[1]), &l[2])));
        let proof = prove(&l, 2).unwrap();
        assert_eq!(proof.siblings, vec![node(&l[0], &l[1])]);
        assert!(proof.verify(&root(&l), &l[2], 2, 3));
        assert!(prove(&l, 3).is_none());
    }

    #[test]
    fn promoted_leaf_cannot_move() {
        // In a tree of 3, leaf 2's top is node(node(a, b), c); a tree of 2 has the same top
        // shape for a leaf at index 1 with sibling node(a, b). The bound count tells them apart.
        let l = leaves(3);
        let proof = prove(&l, 2).unwrap();
        assert!(!proof.verify(&root(&l), &l[2], 1, 2));
        assert!(!proof.verify(&root(&l), &l[2], 2, 4));
    }

    #[test]
    fn no_duplication_collision() {
        let l = leaves(3);
        let mut padded = l.clone();
        padded.push(l[2]);
        assert_ne!(root(&l), root(&padded));
    }

    #[test]
    fn empty_tree_proves_nothing() {
        assert!(prove(&[], 0).is_none());
        assert!(!MerkleProof::default().verify(&EMPTY_ROOT, &Hash::ZERO, 0, 0));
    }

    #[test]
    fn proof_length_is_bounded_when_decoding() {
        let proof = MerkleProof {
            siblings: vec![Hash::ZERO; MAX_PROOF_DEPTH + 1],
        };
        let bytes = borsh::to_vec(&proof).unwrap();
        assert!(MerkleProof::try_from_slice(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn every_proof_verifies(count in 1usize..200, pick in any::<prop::sample::Index>()) {
            let l = leaves(count);
            let r = root(&l);
            let index = pick.index(count);
            let proof = prove(&l, index).unwrap();
            prop_assert!(proof.verify(&r, &l[index], index as u64, count as u64));
            // The wrong leaf, index or count fails.
            let other = (index + 1) % count;
            if other != index {
                prop_assert!(!proof.verify(&r, &l[other], index as u64, count as u64));
                prop_assert!(!proof.verify(&r, &l[index], other as u64, count as u64));
            }
            prop_assert!(!proof.verify(&r, &l[index], index as u64, count as u64 + 1));
        }

        #[test]
        fn any_altered_byte_fails(
            count in 1usize..64,
            pick in any::<prop::sample::Index>(),
            target in 0usize..3,
            byte in 0usize..32,
            flip in 1u8..=255,
            sibling in any::<prop::sample::Index>(),
        ) {
            let l = leaves(count);
            let index = pick.index(count);
            let mut r = root(&l);
            let mut leaf = l[index];
            let mut proof = prove(&l, index).unwrap();
            match target {
                0 => r.0[byte] ^= flip,
                1 => leaf.0[byte] ^= flip,
                _ => {
                    if proof.siblings.is_empty() {
                        r.0[byte] ^= flip;
                    } else {
                        let s = sibling.index(proof.siblings.len());
                        proof.siblings[s].0[byte] ^= flip;
                    }
                }
            }
            prop_assert!(!proof.verify(&r, &leaf, index as u64, count as u64));
        }

        #[test]
        fn root_matches_a_recursive_definition(count in 0usize..100) {
            // Reference: split each level into pairs recursively, as documented.
            fn top(level: Vec<Hash>) -> Hash {
                if level.len() == 1 {
                    return level[0];
                }
                let next = level
                    .chunks(2)
                    .map(|pair| if pair.len() == 2 { node(&pair[0], &pair[1]) } else { pair[0] })
                    .collect();
                top(next)
            }
            let l = leaves(count);
            let expected = if count == 0 { EMPTY_ROOT } else { bind_count(count as u64, &top(l.clone())) };
            prop_assert_eq!(root(&l), expected);
        }
    }
}
