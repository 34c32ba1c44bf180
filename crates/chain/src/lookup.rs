//! Hash maps for lookups that sit on the admission path of every transaction.
//!
//! Only for maps and sets that are never iterated: their bucket order then cannot reach a
//! result, so they keep the crate deterministic. The hasher is the standard library's
//! SipHash with keys drawn per process, because the keys (transaction ids, signers) are
//! chosen by whoever submits transactions, and a fixed fast hasher would let one grind ids
//! into a single bucket.

/// A lookup-only map (never iterated).
#[allow(clippy::disallowed_types)]
pub(crate) type LookupMap<K, V> = std::collections::HashMap<K, V>;

/// A lookup-only set (never iterated).
#[allow(clippy::disallowed_types)]
pub(crate) type LookupSet<K> = std::collections::HashSet<K>;
