//! A fixed-depth binary Merkle tree over dense leaf indices, recomputed along dirty paths.
//!
//! The ledger gives every account a dense [`AccountIndex`](dex_types::AccountIndex) and every
//! open order a dense slot, so the state needs no hashed-key sparse tree: leaf `i` of a tree
//! of depth [`TREE_DEPTH`] sits at the path spelled by the bits of `i`. A leaf that holds
//! nothing is [`EMPTY_LEAF`]; an all-empty subtree of height `h` has the precomputed hash
//! `empty[h]`, so nodes past the last stored leaf are never stored and the root does not
//! depend on how many slots happen to be allocated.
//!
//! Updates only mark leaves dirty; [`IndexedMerkleTree::commit`] then rehashes each distinct
//! ancestor of a dirty leaf exactly once, level by level. The cost of a block's root is
//! therefore proportional to what the block changed (times the depth of the populated part),
//! never to the size of the state. See `docs/adr/0001-state-root.md` for why this design was
//! chosen over a Jellyfish Merkle tree.
//!
//! Each level is a copy-on-write [`CowVec`], so a clone of the tree (one per ledger copy,
//! see [`crate::cow`]) shares every node, and a commit on the clone copies only the chunks
//! of nodes it rewrites.

use crate::cow::{CHUNK, CowVec};
use dex_types::Hash;
use std::sync::OnceLock;

/// Depth of every state tree: room for 2^32 leaves, far more than the ledger admits.
pub const TREE_DEPTH: usize = 32;

/// The hash of a leaf slot that holds nothing.
pub const EMPTY_LEAF: Hash = Hash::ZERO;

/// The key under which inner nodes of the state trees are hashed (BLAKE3 keyed mode).
///
/// Keyed mode hashes the 64 bytes of two children in a single compression, half the cost of
/// a prefixed hash, while the key still separates inner nodes from every other hash on chain.
fn node_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| blake3::derive_key("dex/v1/state-tree-node", b""))
}

/// The hash of an inner node over its two children.
pub fn hash_node(left: &Hash, right: &Hash) -> Hash {
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&left.0);
    bytes[32..].copy_from_slice(&right.0);
    Hash(*blake3::keyed_hash(node_key(), &bytes).as_bytes())
}

/// `empty[h]`: the hash of an all-empty subtree of height `h` (`empty[0]` is [`EMPTY_LEAF`]).
fn empty_hashes() -> &'static [Hash; TREE_DEPTH + 1] {
    static EMPTY: OnceLock<[Hash; TREE_DEPTH + 1]> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let mut out = [EMPTY_LEAF; TREE_DEPTH + 1];
        for h in 1..=TREE_DEPTH {
            out[h] = hash_node(&out[h - 1], &out[h - 1]);
        }
        out
    })
}

/// The root of a tree with no leaves at all.
pub fn empty_root() -> Hash {
    empty_hashes()[TREE_DEPTH]
}

/// A binary Merkle tree of depth [`TREE_DEPTH`] whose leaves are addressed by dense indices.
#[derive(Clone, Debug)]
pub struct IndexedMerkleTree {
    /// `levels[0]` are the leaves; `levels[h][i]` is the node of height `h` at position `i`.
    /// Each level stores only the prefix that covers stored leaves; the rest is empty.
    levels: Vec<CowVec<Hash>>,
    /// Leaves set since the last commit (may hold duplicates; commit sorts and dedups).
    dirty: Vec<u64>,
    /// Scratch buffer reused by commit so that a block's root allocates nothing after warm-up.
    scratch: Vec<u64>,
}

impl Default for IndexedMerkleTree {
    fn default() -> Self {
        Self::new()
    }
}

impl IndexedMerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        IndexedMerkleTree {
            levels: vec![CowVec::new(); TREE_DEPTH + 1],
            dirty: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Number of leaf slots stored (the highest set index plus one); empty slots count.
    pub fn slots(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// The current hash of leaf `index` (empty if never set), ignoring nothing: it reflects
    /// every `set` so far, committed or not.
    pub fn leaf(&self, index: u64) -> Hash {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels[0].get(i).copied())
            .unwrap_or(EMPTY_LEAF)
    }

    /// Set leaf `index` to `leaf` (use [`EMPTY_LEAF`] to clear it). The root changes at the
    /// next [`commit`](Self::commit).
    ///
    /// # Panics
    /// If `index` does not fit the tree: the ledger bounds its indices far below 2^32.
    pub fn set(&mut self, index: u64, leaf: Hash) {
        assert!(
            index < (1u64 << TREE_DEPTH),
            "bug: state tree index {index} beyond depth {TREE_DEPTH}"
        );
        let i = index as usize;
        let leaves = &mut self.levels[0];
        leaves.grow_to(i + 1, EMPTY_LEAF);
        leaves[i] = leaf;
        self.dirty.push(index);
    }

    /// Whether leaves were set since the last commit.
    pub fn has_pending(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Recompute every inner node above a leaf set since the last commit, each once, and
    /// return the root. Cost: the number of distinct dirty ancestors.
    pub fn commit(&mut self) -> Hash {
        let empty = empty_hashes();
        let mut current = std::mem::take(&mut self.dirty);
        let mut parents = std::mem::take(&mut self.scratch);
        current.sort_unstable();
        current.dedup();
        for height in 0..TREE_DEPTH {
            parents.clear();
            for &i in &current {
                let p = i >> 1;
                if parents.last() != Some(&p) {
                    parents.push(p);
                }
            }
            let (below, above) = self.levels.split_at_mut(height + 1);
            let children = &below[height];
            let nodes = &mut above[0];
            nodes.grow_to(children.len().div_ceil(2), empty[height + 1]);
            // Parents are sorted: take each chunk of nodes once for all its parents (a
            // chunk shared with a copy of the tree is copied here, once).
            let mut run = parents.as_slice();
            while let Some(&first) = run.first() {
                let chunk = first as usize / CHUNK;
                let end = run
                    .iter()
                    .position(|&p| p as usize / CHUNK != chunk)
                    .unwrap_or(run.len());
                let slice = nodes.chunk_mut(chunk);
                for &p in &run[..end] {
                    let l = children.get(2 * p as usize).unwrap_or(&empty[height]);
                    let r = children.get(2 * p as usize + 1).unwrap_or(&empty[height]);
                    slice[p as usize % CHUNK] = hash_node(l, r);
                }
                run = &run[end..];
            }
            std::mem::swap(&mut current, &mut parents);
        }
        current.clear();
        self.dirty = current;
        self.scratch = parents;
        // Share what this commit wrote with the next copy of the tree.
        for level in &mut self.levels {
            level.freeze();
        }
        self.root()
    }

    /// The root as of the last commit.
    pub fn root(&self) -> Hash {
        self.levels[TREE_DEPTH]
            .get(0)
            .copied()
            .unwrap_or_else(empty_root)
    }

    /// The sibling path from leaf `index` to the root, as of the last commit.
    ///
    /// # Panics
    /// If leaves were set since the last commit (a proof of uncommitted state is a bug).
    pub fn proof(&self, index: u64) -> MerklePath {
        assert!(
            self.dirty.is_empty(),
            "bug: state tree proof requested with uncommitted changes"
        );
        let empty = empty_hashes();
        let mut siblings = Vec::with_capacity(TREE_DEPTH);
        let mut i = index;
        for (height, level) in self.levels.iter().take(TREE_DEPTH).enumerate() {
            let s = (i ^ 1) as usize;
            siblings.push(level.get(s).copied().unwrap_or(empty[height]));
            i >>= 1;
        }
        MerklePath { index, siblings }
    }
}

/// The siblings of one leaf, bottom-up: a membership proof in an [`IndexedMerkleTree`].
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct MerklePath {
    /// The leaf's index; its bits say on which side each sibling sits.
    pub index: u64,
    /// One sibling per level, leaf level first; exactly [`TREE_DEPTH`] of them.
    pub siblings: Vec<Hash>,
}

impl MerklePath {
    /// The root that `leaf` at this path leads to, or `None` if the path is malformed.
    pub fn root_of(&self, leaf: &Hash) -> Option<Hash> {
        if self.siblings.len() != TREE_DEPTH || self.index >= (1u64 << TREE_DEPTH) {
            return None;
        }
        let mut acc = *leaf;
        let mut i = self.index;
        for sibling in &self.siblings {
            acc = if i & 1 == 0 {
                hash_node(&acc, sibling)
            } else {
                hash_node(sibling, &acc)
            };
            i >>= 1;
        }
        Some(acc)
    }

    /// Whether `leaf` at this path leads to `root`.
    pub fn verify(&self, root: &Hash, leaf: &Hash) -> bool {
        self.root_of(leaf) == Some(*root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_types::Domain;
    use proptest::prelude::*;

    fn leaf(n: u64) -> Hash {
        Hash::of(Domain::Other, &[&n.to_le_bytes()])
    }

    /// Root computed from scratch over a full list of leaves: the obviously-correct reference.
    fn reference_root(leaves: &[Hash]) -> Hash {
        let empty = empty_hashes();
        let mut level: Vec<Hash> = leaves.to_vec();
        for height in 0..TREE_DEPTH {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            for pair in level.chunks(2) {
                let r = pair.get(1).copied().unwrap_or(empty[height]);
                next.push(hash_node(&pair[0], &r));
            }
            if next.is_empty() {
                return empty[TREE_DEPTH];
            }
            level = next;
        }
        level[0]
    }

    #[test]
    fn empty_tree_has_empty_root() {
        let mut t = IndexedMerkleTree::new();
        assert_eq!(t.root(), empty_root());
        assert_eq!(t.commit(), empty_root());
    }

    #[test]
    fn clearing_every_leaf_returns_to_empty_root() {
        let mut t = IndexedMerkleTree::new();
        for i in 0..10 {
            t.set(i, leaf(i));
        }
        assert_ne!(t.commit(), empty_root());
        for i in 0..10 {
            t.set(i, EMPTY_LEAF);
        }
        assert_eq!(t.commit(), empty_root());
    }

    #[test]
    fn proofs_verify_and_reject_alterations() {
        let mut t = IndexedMerkleTree::new();
        for i in 0..37 {
            t.set(i, leaf(i));
        }
        let root = t.commit();
        for i in [0u64, 1, 17, 36, 40] {
            let p = t.proof(i);
            assert!(p.verify(&root, &t.leaf(i)));
            assert!(!p.verify(&root, &leaf(i + 1000)));
            if i < 36 {
                // Two populated neighbours: the leaf does not verify at the other index.
                let mut bad = p.clone();
                bad.index ^= 1;
                assert!(!bad.verify(&root, &t.leaf(i)));
            }
            let mut bad = p.clone();
            bad.siblings[3].0[7] ^= 1;
            assert!(!bad.verify(&root, &t.leaf(i)));
            let mut bad = p;
            bad.siblings.pop();
            assert!(!bad.verify(&root, &t.leaf(i)));
        }
    }

    proptest! {
        /// Incremental commits over random updates always equal a from-scratch recomputation.
        #[test]
        fn incremental_root_matches_reference(
            batches in prop::collection::vec(
                prop::collection::vec((0u64..300, any::<bool>(), any::<u64>()), 0..40),
                1..8,
            )
        ) {
            let mut t = IndexedMerkleTree::new();
            let mut model: Vec<Hash> = Vec::new();
            for batch in batches {
                for (i, clear, v) in batch {
                    let h = if clear { EMPTY_LEAF } else { leaf(v) };
                    t.set(i, h);
                    if model.len() <= i as usize {
                        model.resize(i as usize + 1, EMPTY_LEAF);
                    }
                    model[i as usize] = h;
                }
                prop_assert_eq!(t.commit(), reference_root(&model));
            }
        }
    }
}
