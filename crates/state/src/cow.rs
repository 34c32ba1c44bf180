//! Copy-on-write storage for the ledger's large members, so that a copy of the ledger costs
//! what a block then writes, not the size of the state.
//!
//! A validator executes every proposal on a copy of its committed ledger (it must keep the
//! committed state until the block is decided), and the copy replaces the committed ledger
//! when the block commits. With plain vectors each copy cloned every account (each with its
//! own heap data) and every tree node, and dropping the old ledger freed them all again: the
//! cost grew with the number of accounts, on the consensus thread's critical path.
//!
//! [`CowVec`] keeps its elements in chunks of [`CHUNK`]. A chunk is either *shared* (behind
//! an [`Arc`], possibly with copies of the vector) or *owned* (by this vector alone).
//! Cloning the vector clones one `Arc` per chunk. The first write to a shared chunk turns it
//! into an owned one, copying its elements only if another vector still shares it; later
//! writes to it cost nothing more than a plain vector's. [`CowVec::freeze`] turns the owned
//! chunks back into shared ones (moving, not copying, their elements), so that the next
//! copy is cheap again: the ledger freezes after every block's roots.
//!
//! [`Accounts`] adds the same two states per account, whose own heap data would make a
//! chunk copy expensive: a chunk holds accounts each shared or owned, so that writing an
//! account copies that account and its chunk of pointers, nothing else.
//!
//! Why owned states and not [`Arc::make_mut`] on every write: `make_mut` costs an atomic
//! compare-and-swap even when nothing is shared, and the ledger writes accounts tens of
//! thousands of times per block. Measured with `make_mut` at both levels, the benchmark's
//! 10,000-transaction block took about 1.2 ms longer than with plain vectors, of which the
//! account copies themselves were about 0.35 ms. Either way, an original and its copies
//! never see each other's writes: the sharing is invisible to everything but the cost.

use crate::account::Account;
use std::ops::{Index, IndexMut};
use std::sync::Arc;

/// Elements per chunk. A copy shares `len / CHUNK` pointers; a first write to a shared
/// chunk copies `CHUNK` elements (for [`Accounts`], pointers). 64 keeps both small: a copy
/// of 100,000 accounts shares 1,563 chunks, and a chunk copy is 1 KiB of account slots or
/// 2 KiB of tree hashes.
pub const CHUNK: usize = 64;

/// A chunk of a [`CowVec`]: shared with copies of the vector, or owned by it alone.
#[derive(Debug)]
enum Chunk<T> {
    Shared(Arc<Vec<T>>),
    Owned(Vec<T>),
}

impl<T> Chunk<T> {
    #[inline(always)]
    fn as_slice(&self) -> &[T] {
        match self {
            Chunk::Shared(v) => v,
            Chunk::Owned(v) => v,
        }
    }
}

/// A vector whose clones share its contents chunk by chunk until one of them writes. See
/// the module docs.
pub struct CowVec<T> {
    /// Every chunk holds exactly [`CHUNK`] elements except the last, which holds the rest
    /// (1 to `CHUNK`); there is no empty chunk.
    chunks: Vec<Chunk<T>>,
    len: usize,
    /// The owned chunks, each once: what [`CowVec::freeze`] must turn back into shared ones.
    owned: Vec<u32>,
}

impl<T> Default for CowVec<T> {
    fn default() -> Self {
        CowVec {
            chunks: Vec::new(),
            len: 0,
            owned: Vec::new(),
        }
    }
}

/// A clone shares every shared chunk; an owned chunk (written since the last freeze) is
/// copied into a new shared one.
impl<T: Clone> Clone for CowVec<T> {
    fn clone(&self) -> Self {
        CowVec {
            chunks: self
                .chunks
                .iter()
                .map(|chunk| match chunk {
                    Chunk::Shared(v) => Chunk::Shared(Arc::clone(v)),
                    Chunk::Owned(v) => Chunk::Shared(Arc::new(v.clone())),
                })
                .collect(),
            len: self.len,
            owned: Vec::new(),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for CowVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for CowVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for CowVec<T> {}

#[cold]
#[inline(never)]
fn out_of_range(index: usize, len: usize) -> ! {
    panic!("bug: index {index} out of a vector of {len}")
}

impl<T> CowVec<T> {
    /// An empty vector.
    pub fn new() -> Self {
        CowVec::default()
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no element.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The element at `index`, if there is one.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks
            .get(index / CHUNK)
            .and_then(|chunk| chunk.as_slice().get(index % CHUNK))
    }

    /// Every element, in order.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            chunks: self.chunks.iter(),
            current: [].iter(),
            left: self.len,
        }
    }

    /// Number of chunks (`len` rounded up to whole chunks).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Turn every owned chunk back into a shared one, so that the next clone shares it.
    /// Moves the elements (one small allocation per owned chunk); copies nothing.
    pub fn freeze(&mut self) {
        self.freeze_with(|_| {});
    }

    /// [`CowVec::freeze`], calling `each` first on every element of every owned chunk
    /// (the only elements written since the last freeze).
    pub(crate) fn freeze_with(&mut self, mut each: impl FnMut(&mut T)) {
        for c in self.owned.drain(..) {
            let chunk = &mut self.chunks[c as usize];
            if let Chunk::Owned(v) = chunk {
                v.iter_mut().for_each(&mut each);
                *chunk = Chunk::Shared(Arc::new(std::mem::take(v)));
            }
        }
    }

    /// Number of chunks this vector shares with a clone (for tests of the sharing itself).
    #[cfg(test)]
    pub(crate) fn shared_chunks_with(&self, other: &CowVec<T>) -> usize {
        self.chunks
            .iter()
            .zip(&other.chunks)
            .filter(|(a, b)| match (a, b) {
                (Chunk::Shared(a), Chunk::Shared(b)) => Arc::ptr_eq(a, b),
                _ => false,
            })
            .count()
    }
}

impl<T: Clone> CowVec<T> {
    /// Make chunk `c` owned: taken over if nothing else shares it, else copied.
    #[cold]
    #[inline(never)]
    fn own(&mut self, c: usize) {
        let chunk = &mut self.chunks[c];
        if let Chunk::Shared(shared) = chunk {
            let v = match Arc::get_mut(shared) {
                Some(alone) => std::mem::take(alone),
                None => Vec::clone(shared),
            };
            *chunk = Chunk::Owned(v);
            self.owned.push(c as u32);
        }
    }

    /// Chunk `c` as this vector's own.
    #[inline(always)]
    fn owned_chunk(&mut self, c: usize) -> &mut Vec<T> {
        if let Chunk::Shared(_) = self.chunks[c] {
            self.own(c);
        }
        match &mut self.chunks[c] {
            Chunk::Owned(v) => v,
            Chunk::Shared(_) => unreachable!("bug: a chunk just owned is shared"),
        }
    }

    /// The element at `index`, made this vector's own first (its chunk is copied if a
    /// clone shares it).
    #[inline(always)]
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        if index >= self.len {
            return None;
        }
        Some(&mut self.owned_chunk(index / CHUNK)[index % CHUNK])
    }

    /// Chunk `chunk` (elements `chunk * CHUNK ..`), made this vector's own: for writing
    /// many elements of one chunk with one check.
    ///
    /// # Panics
    /// If `chunk` is not below [`CowVec::chunk_count`] (a caller bug).
    #[inline]
    pub fn chunk_mut(&mut self, chunk: usize) -> &mut [T] {
        self.owned_chunk(chunk).as_mut_slice()
    }

    /// Append `value`.
    pub fn push(&mut self, value: T) {
        match self.chunks.len() {
            n if n > 0 && self.chunks[n - 1].as_slice().len() < CHUNK => {
                self.owned_chunk(n - 1).push(value);
            }
            n => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(value);
                self.chunks.push(Chunk::Owned(chunk));
                self.owned.push(n as u32);
            }
        }
        self.len += 1;
    }

    /// Grow to `len` elements, appending copies of `fill`; a smaller `len` changes nothing.
    #[inline]
    pub fn grow_to(&mut self, len: usize, fill: T) {
        if self.len < len {
            self.grow(len, fill);
        }
    }

    #[inline(never)]
    fn grow(&mut self, len: usize, fill: T) {
        while self.len < len {
            let n = self.chunks.len();
            let room = match self.chunks.last() {
                Some(last) => CHUNK - last.as_slice().len(),
                None => 0,
            };
            let add = room.min(len - self.len);
            if add == 0 {
                let take = (len - self.len).min(CHUNK);
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.resize(take, fill.clone());
                self.chunks.push(Chunk::Owned(chunk));
                self.owned.push(n as u32);
                self.len += take;
            } else {
                let last = self.owned_chunk(n - 1);
                last.resize(last.len() + add, fill.clone());
                self.len += add;
            }
        }
    }
}

/// The elements of a [`CowVec`], in order.
#[derive(Debug, Clone)]
pub struct Iter<'a, T> {
    chunks: std::slice::Iter<'a, Chunk<T>>,
    current: std::slice::Iter<'a, T>,
    left: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    #[inline]
    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(x) = self.current.next() {
                self.left -= 1;
                return Some(x);
            }
            self.current = self.chunks.next()?.as_slice().iter();
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T> Index<usize> for CowVec<T> {
    type Output = T;

    #[inline(always)]
    fn index(&self, index: usize) -> &T {
        if index >= self.len {
            out_of_range(index, self.len);
        }
        &self.chunks[index / CHUNK].as_slice()[index % CHUNK]
    }
}

/// Writing through an index makes the element's chunk this vector's own first (copying it
/// if a clone shares it).
impl<T: Clone> IndexMut<usize> for CowVec<T> {
    #[inline(always)]
    fn index_mut(&mut self, index: usize) -> &mut T {
        if index >= self.len {
            out_of_range(index, self.len);
        }
        &mut self.owned_chunk(index / CHUNK)[index % CHUNK]
    }
}

impl<T: Clone> FromIterator<T> for CowVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut out = CowVec::new();
        for value in iter {
            out.push(value);
        }
        out.freeze();
        out
    }
}

/// One account in [`Accounts`]: shared with copies of the ledger, or owned by this one.
#[derive(Debug)]
enum AccountSlot {
    Shared(Arc<Account>),
    Owned(Box<Account>),
}

/// A copy shares a shared account; an owned one (written since the last freeze) is copied.
impl Clone for AccountSlot {
    fn clone(&self) -> Self {
        match self {
            AccountSlot::Shared(a) => AccountSlot::Shared(Arc::clone(a)),
            AccountSlot::Owned(a) => AccountSlot::Shared(Arc::new(Account::clone(a))),
        }
    }
}

impl AccountSlot {
    #[inline(always)]
    fn get(&self) -> &Account {
        match self {
            AccountSlot::Shared(a) => a,
            AccountSlot::Owned(a) => a,
        }
    }

    #[inline(always)]
    fn get_mut(&mut self) -> &mut Account {
        if let AccountSlot::Shared(_) = self {
            self.own();
        }
        match self {
            AccountSlot::Owned(a) => a,
            AccountSlot::Shared(_) => unreachable!("bug: an account just owned is shared"),
        }
    }

    /// Taken over if no other ledger shares it, else copied.
    #[cold]
    #[inline(never)]
    fn own(&mut self) {
        if let AccountSlot::Shared(shared) = self {
            let account = match Arc::get_mut(shared) {
                Some(alone) => take_account(alone),
                None => Account::clone(shared),
            };
            *self = AccountSlot::Owned(Box::new(account));
        }
    }

    fn freeze(&mut self) {
        if let AccountSlot::Owned(owned) = self {
            *self = AccountSlot::Shared(Arc::new(take_account(owned)));
        }
    }
}

/// Move an account out, leaving a placeholder that allocates nothing and that the caller
/// drops at once (with the `Arc` or `Box` it sits in).
fn take_account(account: &mut Account) -> Account {
    let placeholder = Account::new(account.id, account.index, 0);
    std::mem::replace(account, placeholder)
}

/// The ledger's accounts by [`AccountIndex`](dex_types::AccountIndex): a [`CowVec`] of
/// accounts each shared or owned, so that a copy of the ledger shares every account it
/// does not write, and writing an account copies that account alone (and its chunk of
/// pointers). See the module docs.
///
/// Read it like a slice: `accounts[i]`, [`Accounts::get`], [`Accounts::iter`],
/// [`Accounts::len`].
#[derive(Clone, Default)]
pub struct Accounts(CowVec<AccountSlot>);

impl PartialEq for Accounts {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Accounts {}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Accounts {
    /// Number of accounts.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no account.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The account at `index`, if there is one.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&Account> {
        self.0.get(index).map(AccountSlot::get)
    }

    /// Every account, by index.
    pub fn iter(&self) -> AccountsIter<'_> {
        AccountsIter(self.0.iter())
    }

    /// Append an account.
    pub(crate) fn push(&mut self, account: Account) {
        self.0.push(AccountSlot::Owned(Box::new(account)));
    }

    /// Share every account and chunk written since the last freeze with the next copy
    /// (moves them; copies nothing). Cost: the chunks written since.
    pub(crate) fn freeze(&mut self) {
        self.0.freeze_with(AccountSlot::freeze);
    }

    /// Number of accounts this list shares with a clone, by identity (for tests of the
    /// sharing itself).
    #[cfg(test)]
    pub(crate) fn shared_with(&self, other: &Accounts) -> usize {
        self.0
            .iter()
            .zip(other.0.iter())
            .filter(|(a, b)| match (a, b) {
                (AccountSlot::Shared(a), AccountSlot::Shared(b)) => Arc::ptr_eq(a, b),
                _ => false,
            })
            .count()
    }
}

impl Index<usize> for Accounts {
    type Output = Account;

    #[inline(always)]
    fn index(&self, index: usize) -> &Account {
        self.0[index].get()
    }
}

/// Writing an account through an index makes it this ledger's own first (copying it, and
/// its chunk of pointers, if a copy of the ledger shares it).
impl IndexMut<usize> for Accounts {
    #[inline(always)]
    fn index_mut(&mut self, index: usize) -> &mut Account {
        self.0[index].get_mut()
    }
}

/// The accounts of an [`Accounts`], by index.
#[derive(Debug, Clone)]
pub struct AccountsIter<'a>(Iter<'a, AccountSlot>);

impl<'a> Iterator for AccountsIter<'a> {
    type Item = &'a Account;

    #[inline]
    fn next(&mut self) -> Option<&'a Account> {
        self.0.next().map(AccountSlot::get)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for AccountsIter<'_> {}

impl<'a> IntoIterator for &'a Accounts {
    type Item = &'a Account;
    type IntoIter = AccountsIter<'a>;

    fn into_iter(self) -> AccountsIter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Operations on a vector and its clones, checked against plain `Vec`s.
    #[derive(Clone, Debug)]
    enum Op {
        Push(u32),
        Set(usize, u32),
        Grow(usize, u32),
        Freeze,
        /// Clone the vector under test (kept as another model-checked copy).
        Fork,
        /// Drop the copy with this position (modulo the number of copies).
        DropCopy(usize),
        /// Write to the copy with this position.
        SetInCopy(usize, usize, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u32>().prop_map(Op::Push),
            4 => (0usize..400, any::<u32>()).prop_map(|(i, v)| Op::Set(i, v)),
            1 => (0usize..400, any::<u32>()).prop_map(|(n, v)| Op::Grow(n, v)),
            1 => Just(Op::Freeze),
            1 => Just(Op::Fork),
            1 => (0usize..8).prop_map(Op::DropCopy),
            2 => (0usize..8, 0usize..400, any::<u32>()).prop_map(|(c, i, v)| Op::SetInCopy(c, i, v)),
        ]
    }

    fn same(v: &CowVec<u32>, model: &[u32]) -> Result<(), TestCaseError> {
        prop_assert_eq!(v.len(), model.len());
        prop_assert_eq!(v.iter().len(), model.len());
        prop_assert_eq!(v.iter().copied().collect::<Vec<_>>(), model.to_vec());
        for (i, x) in model.iter().enumerate() {
            prop_assert_eq!(v[i], *x);
            prop_assert_eq!(v.get(i), Some(x));
        }
        prop_assert_eq!(v.get(model.len()), None);
        prop_assert_eq!(v.chunk_count(), model.len().div_ceil(CHUNK));
        Ok(())
    }

    proptest! {
        /// A vector and any number of clones, each written independently (frozen or not),
        /// each equal to its own plain-`Vec` model: no write ever shows through to another
        /// copy.
        #[test]
        fn clones_never_see_each_others_writes(ops in prop::collection::vec(op(), 0..200)) {
            let mut v = CowVec::new();
            let mut model: Vec<u32> = Vec::new();
            let mut copies: Vec<(CowVec<u32>, Vec<u32>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(x) => {
                        v.push(x);
                        model.push(x);
                    }
                    Op::Set(i, x) => {
                        if i < model.len() {
                            v[i] = x;
                            model[i] = x;
                        } else {
                            prop_assert!(v.get_mut(i).is_none());
                        }
                    }
                    Op::Grow(n, x) => {
                        v.grow_to(n, x);
                        if n > model.len() {
                            model.resize(n, x);
                        }
                    }
                    Op::Freeze => v.freeze(),
                    Op::Fork => copies.push((v.clone(), model.clone())),
                    Op::DropCopy(c) => {
                        if !copies.is_empty() {
                            let c = c % copies.len();
                            copies.remove(c);
                        }
                    }
                    Op::SetInCopy(c, i, x) => {
                        if !copies.is_empty() {
                            let c = c % copies.len();
                            let (copy, copy_model) = &mut copies[c];
                            if i < copy_model.len() {
                                copy[i] = x;
                                copy_model[i] = x;
                            }
                        }
                    }
                }
                same(&v, &model)?;
                for (copy, copy_model) in &copies {
                    same(copy, copy_model)?;
                }
            }
            let rebuilt: CowVec<u32> = model.iter().copied().collect();
            prop_assert_eq!(&rebuilt, &v);
        }
    }

    #[test]
    fn a_write_copies_one_chunk_and_the_rest_stays_shared() {
        let mut v: CowVec<u64> = (0..10 * CHUNK as u64).collect();
        let copy = v.clone();
        assert_eq!(v.shared_chunks_with(&copy), 10);
        v[3 * CHUNK + 5] = 7;
        assert_eq!(v.shared_chunks_with(&copy), 9);
        assert_eq!(copy[3 * CHUNK + 5], 3 * CHUNK as u64 + 5);
        for x in v.chunk_mut(3) {
            *x = 0;
        }
        v.freeze();
        assert_eq!(
            v.shared_chunks_with(&copy),
            9,
            "a frozen chunk stays this one's"
        );
        let again = v.clone();
        assert_eq!(
            v.shared_chunks_with(&again),
            10,
            "a frozen vector is shared whole"
        );
    }

    fn accounts(n: u64) -> Accounts {
        use dex_types::{AccountId, AccountIndex};
        let mut accounts = Accounts::default();
        for i in 0..n {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&i.to_le_bytes());
            accounts.push(Account::new(AccountId(id), AccountIndex(i), 2));
        }
        accounts.freeze();
        accounts
    }

    #[test]
    fn writing_an_account_copies_that_account_only() {
        use dex_types::AccountIndex;
        let mut accounts = accounts(200);
        let copy = accounts.clone();
        assert_eq!(accounts.shared_with(&copy), 200);
        accounts[150].balances[1].free = 9;
        assert_eq!(accounts.shared_with(&copy), 199);
        assert_eq!(copy[150].balances[1].free, 0);
        assert_eq!(accounts[150].balances[1].free, 9);
        accounts.freeze();
        assert_eq!(accounts.shared_with(&copy), 199);
        assert_eq!(accounts.shared_with(&accounts.clone()), 200);
        assert_ne!(accounts, copy);
        assert_eq!(accounts.get(200), None);
        assert_eq!(accounts.iter().len(), 200);
        assert_eq!(
            (&accounts).into_iter().last().unwrap().index,
            AccountIndex(199)
        );
    }

    /// A copy taken before a freeze still owns its own accounts: writes after it, frozen
    /// or not, stay on their side.
    #[test]
    fn a_copy_of_unfrozen_accounts_is_independent() {
        let mut accounts = accounts(100);
        accounts[7].open_orders = 1;
        let mut copy = accounts.clone();
        copy[7].open_orders = 2;
        accounts[7].open_orders = 3;
        accounts.freeze();
        assert_eq!(copy[7].open_orders, 2);
        assert_eq!(accounts[7].open_orders, 3);
        copy.freeze();
        assert_eq!(copy[7].open_orders, 2);
        assert_eq!(accounts.clone()[7].open_orders, 3);
    }
}
