//! The open orders by id, copy-on-write: a copy of the ledger shares them, and a block
//! executed on the copy records only what it writes.
//!
//! Every proposal executes on a copy of the committed ledger. With a plain hash map each
//! copy duplicated every resting order, so the cost of a block grew with the depth of the
//! books: after a busy minute the devnet rests tens of thousands of orders, and their copy
//! was about a tenth of a validator's CPU at a steady load, all of it on the consensus
//! thread. [`OrderMap`] keeps
//!
//! - a **base** map behind an [`Arc`], shared by every copy, and
//! - its own **writes** since the base: `Some` for an order inserted or changed, `None` for
//!   one removed.
//!
//! A read looks in the writes first, then in the base. A copy clones the `Arc` and the
//! writes. [`OrderMap::settle`] folds the writes into the base: in place when no copy
//! shares it (after a commit the old ledger and its copies are gone), otherwise only once
//! the writes have grown to a quarter of the base, by copying the base, so that neither a
//! copy's cost nor a read's path grows without bound whoever holds copies.
//!
//! Nothing reads the map in hash order on the execution path ([`OrderMap::values`] is used
//! only where order cannot matter or is sorted after), so how the writes and the base
//! happen to be laid out never reaches a result.

use dex_engine::hasher::FastIdBuildHasher;
use dex_types::OrderId;
use std::collections::hash_map::Entry;
use std::ops::Index;
use std::sync::Arc;

use crate::ledger::OpenOrder;

/// A hash map keyed by order id. Safe in this pure crate: the hasher is fixed and seedless
/// (the same buckets on every validator), and hash order never reaches a result. Lookups
/// and writes do not depend on it; [`OrderMap::values`] is only summed, checked or sorted
/// by its callers; and folding the writes into the base gives the same contents whatever
/// order they are drained in.
#[allow(clippy::disallowed_types)]
type Map<V> = std::collections::HashMap<OrderId, V, FastIdBuildHasher>;

/// Writes are folded into a shared base by copying it only past this many (or a quarter
/// of the base, if larger): below it a copy of the writes is cheaper than a copy of the
/// base.
const FOLD_BY_COPY_MIN: usize = 1_024;

/// The open orders by id. See the module docs.
#[derive(Default)]
pub(crate) struct OrderMap {
    /// The orders as of the last fold; shared with copies.
    base: Arc<Map<OpenOrder>>,
    /// Changes since the base: `Some` the order's current record, `None` removed.
    writes: Map<Option<OpenOrder>>,
    /// Open orders in all.
    len: usize,
}

impl Clone for OrderMap {
    fn clone(&self) -> OrderMap {
        OrderMap {
            base: Arc::clone(&self.base),
            // A settled map's write table is empty but keeps its capacity; cloning it
            // would copy that whole allocation for nothing.
            writes: if self.writes.is_empty() {
                Map::default()
            } else {
                self.writes.clone()
            },
            len: self.len,
        }
    }
}

impl std::fmt::Debug for OrderMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut all: Vec<&OpenOrder> = self.values().collect();
        all.sort_unstable_by_key(|o| o.id);
        f.debug_list().entries(all).finish()
    }
}

impl OrderMap {
    /// Open orders in all.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The order with this id.
    #[inline]
    pub(crate) fn get(&self, id: &OrderId) -> Option<&OpenOrder> {
        match self.writes.get(id) {
            Some(write) => write.as_ref(),
            None => self.base.get(id),
        }
    }

    /// Whether an order has this id.
    pub(crate) fn contains_key(&self, id: &OrderId) -> bool {
        self.get(id).is_some()
    }

    /// The order with this id, to change: the first change after a fold copies its record
    /// into the writes.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: &OrderId) -> Option<&mut OpenOrder> {
        match self.writes.entry(*id) {
            Entry::Occupied(entry) => entry.into_mut().as_mut(),
            Entry::Vacant(entry) => {
                let order = *self.base.get(id)?;
                entry.insert(Some(order)).as_mut()
            }
        }
    }

    /// Insert or replace the order with this id; the previous record, if any.
    pub(crate) fn insert(&mut self, id: OrderId, order: OpenOrder) -> Option<OpenOrder> {
        let previous = match self.writes.insert(id, Some(order)) {
            Some(write) => write,
            None => self.base.get(&id).copied(),
        };
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Remove the order with this id; its record, if it was open.
    pub(crate) fn remove(&mut self, id: &OrderId) -> Option<OpenOrder> {
        let previous = *self.get(id)?;
        if self.base.contains_key(id) {
            self.writes.insert(*id, None);
        } else {
            self.writes.remove(id);
        }
        self.len -= 1;
        Some(previous)
    }

    /// Room for `additional` more changes without rehashing the writes.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.writes.reserve(additional);
    }

    /// Every open order, in no particular order: callers sort, or do not depend on it.
    pub(crate) fn values(&self) -> impl Iterator<Item = &OpenOrder> {
        self.base
            .iter()
            .filter(|(id, _)| !self.writes.contains_key(*id))
            .map(|(_, order)| order)
            .chain(self.writes.values().filter_map(Option::as_ref))
    }

    /// Fold the writes into the base: in place when no copy shares the base, by copying
    /// it when the writes have grown past a quarter of it, and otherwise not yet (a later
    /// call, once the copies are gone, folds them for nothing).
    pub(crate) fn settle(&mut self) {
        if self.writes.is_empty() {
            return;
        }
        let copy_at = FOLD_BY_COPY_MIN.max(self.base.len() / 4);
        if Arc::get_mut(&mut self.base).is_none() && self.writes.len() < copy_at {
            return;
        }
        let base = Arc::make_mut(&mut self.base);
        for (id, write) in self.writes.drain() {
            match write {
                Some(order) => base.insert(id, order),
                None => base.remove(&id),
            };
        }
        debug_assert_eq!(base.len(), self.len);
    }

    /// Whether the writes are all folded into the base (for tests).
    #[cfg(test)]
    pub(crate) fn is_settled(&self) -> bool {
        self.writes.is_empty()
    }

    /// Whether this map and `other` share one base (for tests).
    #[cfg(test)]
    pub(crate) fn shares_base_with(&self, other: &OrderMap) -> bool {
        Arc::ptr_eq(&self.base, &other.base)
    }
}

impl Index<&OrderId> for OrderMap {
    type Output = OpenOrder;

    fn index(&self, id: &OrderId) -> &OpenOrder {
        self.get(id).expect("bug: no open order with this id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_types::{
        AccountIndex, Amount, MarketId, PriceTicks, SelfTradePrevention, Side, SizeLots,
        TimeInForce,
    };
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn order(id: u64, remaining: u64) -> OpenOrder {
        OpenOrder {
            id: OrderId(id),
            owner: AccountIndex(id % 7),
            market: MarketId(1),
            client_order_id: None,
            side: Side::Buy,
            price: PriceTicks(100),
            remaining: SizeLots(remaining),
            tif: TimeInForce::Gtc,
            stp: SelfTradePrevention::CancelResting,
            locked: Amount(remaining.into()),
            priority: id,
            slot: Some(id as u32),
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64, u64),
        Change(u64, u64),
        Remove(u64),
        Settle,
        Fork,
        DropCopy(usize),
        ChangeCopy(usize, u64, u64),
        SettleCopy(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few ids, so that inserts, changes and removals meet the same orders often.
        let id = 0u64..40;
        prop_oneof![
            4 => (id.clone(), 1u64..1_000).prop_map(|(i, r)| Op::Insert(i, r)),
            3 => (id.clone(), 1u64..1_000).prop_map(|(i, r)| Op::Change(i, r)),
            3 => id.clone().prop_map(Op::Remove),
            2 => Just(Op::Settle),
            1 => Just(Op::Fork),
            1 => (0usize..4).prop_map(Op::DropCopy),
            2 => (0usize..4, id, 1u64..1_000).prop_map(|(c, i, r)| Op::ChangeCopy(c, i, r)),
            1 => (0usize..4).prop_map(Op::SettleCopy),
        ]
    }

    type Model = BTreeMap<u64, OpenOrder>;

    fn same(map: &OrderMap, model: &Model) -> Result<(), TestCaseError> {
        prop_assert_eq!(map.len(), model.len());
        let mut all: Vec<OpenOrder> = map.values().copied().collect();
        all.sort_unstable_by_key(|o| o.id);
        prop_assert_eq!(all, model.values().copied().collect::<Vec<_>>());
        for id in 0..40 {
            prop_assert_eq!(map.get(&OrderId(id)), model.get(&id));
            prop_assert_eq!(map.contains_key(&OrderId(id)), model.contains_key(&id));
        }
        Ok(())
    }

    fn change(map: &mut OrderMap, model: &mut Model, id: u64, remaining: u64) {
        match (map.get_mut(&OrderId(id)), model.get_mut(&id)) {
            (Some(o), Some(m)) => {
                o.remaining = SizeLots(remaining);
                m.remaining = SizeLots(remaining);
            }
            (None, None) => {}
            (got, want) => panic!("get_mut {id}: {got:?} but the model has {want:?}"),
        }
    }

    proptest! {
        /// A map and any number of copies, each changed and settled independently, each
        /// equal to its own ordered-map model: no write shows through to another copy,
        /// whether the base was folded in place, by copying, or not yet.
        #[test]
        fn copies_never_see_each_others_writes(ops in prop::collection::vec(op(), 0..300)) {
            let mut map = OrderMap::default();
            let mut model = Model::new();
            let mut copies: Vec<(OrderMap, Model)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(id, r) => {
                        let previous = map.insert(OrderId(id), order(id, r));
                        prop_assert_eq!(previous, model.insert(id, order(id, r)));
                    }
                    Op::Change(id, r) => change(&mut map, &mut model, id, r),
                    Op::Remove(id) => {
                        prop_assert_eq!(map.remove(&OrderId(id)), model.remove(&id));
                    }
                    Op::Settle => map.settle(),
                    Op::Fork => copies.push((map.clone(), model.clone())),
                    Op::DropCopy(c) => {
                        if !copies.is_empty() {
                            let c = c % copies.len();
                            copies.remove(c);
                        }
                    }
                    Op::ChangeCopy(c, id, r) => {
                        if !copies.is_empty() {
                            let c = c % copies.len();
                            let (copy, copy_model) = &mut copies[c];
                            change(copy, copy_model, id, r);
                        }
                    }
                    Op::SettleCopy(c) => {
                        if !copies.is_empty() {
                            let c = c % copies.len();
                            copies[c].0.settle();
                        }
                    }
                }
                same(&map, &model)?;
                for (copy, copy_model) in &copies {
                    same(copy, copy_model)?;
                }
            }
        }
    }

    #[test]
    fn a_copy_shares_the_base_and_settling_alone_folds_in_place() {
        let mut map = OrderMap::default();
        for id in 0..100 {
            map.insert(OrderId(id), order(id, 5));
        }
        map.settle();
        assert!(map.is_settled());
        let mut copy = map.clone();
        assert!(copy.shares_base_with(&map));
        copy.get_mut(&OrderId(3)).unwrap().remaining = SizeLots(1);
        copy.remove(&OrderId(4));
        // The original still shares the base: the copy's two writes wait.
        copy.settle();
        assert!(!copy.is_settled());
        assert!(copy.shares_base_with(&map));
        assert_eq!(map[&OrderId(3)].remaining, SizeLots(5));
        assert!(map.contains_key(&OrderId(4)));
        // With the original gone, the copy folds its writes into the same allocation.
        drop(map);
        copy.settle();
        assert!(copy.is_settled());
        assert_eq!(copy[&OrderId(3)].remaining, SizeLots(1));
        assert_eq!(copy.get(&OrderId(4)), None);
        assert_eq!(copy.len(), 99);
    }

    #[test]
    fn writes_past_a_quarter_of_a_shared_base_fold_by_copying() {
        let mut map = OrderMap::default();
        let n = 4 * FOLD_BY_COPY_MIN as u64;
        for id in 0..n {
            map.insert(OrderId(id), order(id, 5));
        }
        map.settle();
        let mut copy = map.clone();
        for id in 0..n / 4 - 1 {
            copy.get_mut(&OrderId(id)).unwrap().remaining = SizeLots(2);
        }
        copy.settle();
        assert!(!copy.is_settled(), "below a quarter the writes wait");
        copy.get_mut(&OrderId(n / 4)).unwrap().remaining = SizeLots(2);
        copy.settle();
        assert!(copy.is_settled());
        assert!(!copy.shares_base_with(&map));
        assert_eq!(map[&OrderId(0)].remaining, SizeLots(5));
        assert_eq!(copy[&OrderId(0)].remaining, SizeLots(2));
        assert_eq!(copy.len(), map.len());
    }

    #[test]
    fn a_settled_copy_does_not_copy_the_write_table() {
        let mut map = OrderMap::default();
        map.reserve(10_000);
        map.insert(OrderId(1), order(1, 1));
        map.settle();
        assert!(
            map.writes.capacity() >= 10_000,
            "the table is kept for reuse"
        );
        assert_eq!(map.clone().writes.capacity(), 0);
    }
}
