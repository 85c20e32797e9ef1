//! The list type: a deque of elements stored as a deque of small chunks.
//!
//! # Layout
//! ```text
//!   List { len: 300, chunks: ┌──────────┬──────────┬──────────┐ }
//!                            │ chunk 0  │ chunk 1  │ chunk 2  │   VecDeque<Chunk>
//!                            └────┬─────┴────┬─────┴────┬─────┘
//!                                 ▼          ▼          ▼
//!                            [e0..e127] [e128..e255] [e256..e299]   VecDeque<Bstr>, ≤ 128 each
//! ```
//! Index 0 is the head ("left") of the list: the front of the first chunk.
//!
//! # Why chunks
//! A single `VecDeque<Bstr>` grows by doubling, and each doubling copies the whole buffer at
//! once: at 500k elements one LPUSH copies 12 MB, a multi-millisecond stall for every client of
//! the core. Here no operation copies more than one chunk ([`CHUNK_ELEMENTS_MAX`] elements):
//! chunks grow by doubling up to that bound, and the outer deque, which also doubles, holds
//! only one 32-byte chunk header per [`CHUNK_ELEMENTS_MAX`] elements. This is the same idea as
//! Redis' quicklist (a linked list of small listpacks), with a deque in place of the linked
//! list so that walking chunks stays cache-friendly.
//!
//! Positional access (`get`, `insert`, `remove`, `range`) finds its chunk by walking chunk
//! lengths from the nearer end: O(len / [`CHUNK_ELEMENTS_MAX`]), like Redis' quicklist.
//!
//! # Invariants
//! - `len` is the sum of the chunk lengths;
//! - no chunk is empty (so the head is the front of the first chunk, the tail the back of the
//!   last one);
//! - no chunk holds more than [`CHUNK_ELEMENTS_MAX`] elements.
//!
//! [`List::check_invariants`] verifies them all; mutations `debug_assert!` the chunk they touch.

use std::collections::vec_deque;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Bound, Index, IndexMut, RangeBounds};

use super::bstr::Bstr;

/// Most elements one chunk holds; the bound on what a single list operation copies. 128
/// elements of 24 bytes is 3 KB, near Redis' 8 KB listpack nodes (`list-max-listpack-size -2`).
pub const CHUNK_ELEMENTS_MAX: usize = 128;

/// A chunk left at or below this many elements by a removal is merged into a neighbour
/// (when the result stays within [`CHUNK_MERGED_ELEMENTS_MAX`]), so repeated removals in the
/// middle cannot leave a long run of nearly empty chunks.
const CHUNK_MERGE_BELOW_ELEMENTS: usize = CHUNK_ELEMENTS_MAX / 4;

/// Largest chunk a merge may produce: leaves room so an insert right after a merge does not
/// immediately split the chunk again.
const CHUNK_MERGED_ELEMENTS_MAX: usize = CHUNK_ELEMENTS_MAX * 3 / 4;

/// One run of consecutive elements; never empty, at most [`CHUNK_ELEMENTS_MAX`] long.
type Chunk = VecDeque<Bstr>;

/// A double-ended list of binary strings with the `VecDeque` API subset the list commands
/// use; see the module documentation for the layout.
#[derive(Clone, Default)]
pub struct List {
    chunks: VecDeque<Chunk>,
    /// Total elements over all chunks.
    len: usize,
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn front(&self) -> Option<&Bstr> {
        self.chunks.front().and_then(|chunk| chunk.front())
    }

    pub fn back(&self) -> Option<&Bstr> {
        self.chunks.back().and_then(|chunk| chunk.back())
    }

    pub fn push_front(&mut self, value: Bstr) {
        match self.chunks.front_mut() {
            Some(chunk) if chunk.len() < CHUNK_ELEMENTS_MAX => chunk.push_front(value),
            _ => {
                self.reserve_first_chunk();
                self.chunks.push_front(VecDeque::from([value]));
            }
        }
        self.len += 1;
    }

    pub fn push_back(&mut self, value: Bstr) {
        match self.chunks.back_mut() {
            Some(chunk) if chunk.len() < CHUNK_ELEMENTS_MAX => chunk.push_back(value),
            _ => {
                self.reserve_first_chunk();
                self.chunks.push_back(VecDeque::from([value]));
            }
        }
        self.len += 1;
    }

    pub fn pop_front(&mut self) -> Option<Bstr> {
        let chunk = self.chunks.front_mut()?;
        let value = chunk.pop_front().expect("chunks are never empty");
        if chunk.is_empty() {
            self.chunks.pop_front();
        }
        self.len -= 1;
        Some(value)
    }

    pub fn pop_back(&mut self) -> Option<Bstr> {
        let chunk = self.chunks.back_mut()?;
        let value = chunk.pop_back().expect("chunks are never empty");
        if chunk.is_empty() {
            self.chunks.pop_back();
        }
        self.len -= 1;
        Some(value)
    }

    pub fn get(&self, index: usize) -> Option<&Bstr> {
        let (chunk, offset) = self.locate(index)?;
        Some(&self.chunks[chunk][offset])
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut Bstr> {
        let (chunk, offset) = self.locate(index)?;
        Some(&mut self.chunks[chunk][offset])
    }

    /// Inserts `value` so that it ends up at `index`, shifting later elements towards the
    /// tail. Copies at most one chunk; a full chunk is split in two halves first.
    ///
    /// # Panics
    /// If `index > len`, like `VecDeque::insert`.
    pub fn insert(&mut self, index: usize, value: Bstr) {
        assert!(
            index <= self.len,
            "insertion index {index} beyond length {}",
            self.len
        );
        if index == 0 {
            return self.push_front(value);
        }
        if index == self.len {
            return self.push_back(value);
        }
        let (mut chunk, mut offset) = self.locate(index).expect("0 < index < len");
        // At a chunk boundary the previous chunk's tail is the same position: use it if the
        // chunk that starts here is full.
        if offset == 0
            && self.chunks[chunk].len() == CHUNK_ELEMENTS_MAX
            && self.chunks[chunk - 1].len() < CHUNK_ELEMENTS_MAX
        {
            chunk -= 1;
            offset = self.chunks[chunk].len();
        }
        if self.chunks[chunk].len() == CHUNK_ELEMENTS_MAX {
            let half = CHUNK_ELEMENTS_MAX / 2;
            let tail = self.chunks[chunk].split_off(half);
            self.chunks.insert(chunk + 1, tail);
            if offset > half {
                chunk += 1;
                offset -= half;
            }
        }
        self.chunks[chunk].insert(offset, value);
        self.len += 1;
        debug_assert!(self.chunks[chunk].len() <= CHUNK_ELEMENTS_MAX);
    }

    /// Removes and returns the element at `index`, `None` if out of bounds. Copies at most
    /// two chunks (a merge with a neighbour when the chunk gets small).
    pub fn remove(&mut self, index: usize) -> Option<Bstr> {
        let (chunk, offset) = self.locate(index)?;
        let value = self.chunks[chunk]
            .remove(offset)
            .expect("located in bounds");
        self.len -= 1;
        if self.chunks[chunk].is_empty() {
            self.chunks.remove(chunk);
        } else if self.chunks[chunk].len() <= CHUNK_MERGE_BELOW_ELEMENTS {
            self.merge_with_a_neighbour(chunk);
        }
        Some(value)
    }

    /// Keeps the first `len` elements and drops the rest; no-op if the list is not longer.
    pub fn truncate(&mut self, len: usize) {
        while self.len > len {
            let excess = self.len - len;
            let back = self.chunks.back_mut().expect("len > 0");
            if back.len() <= excess {
                self.len -= back.len();
                self.chunks.pop_back();
            } else {
                back.truncate(back.len() - excess);
                self.len = len;
            }
        }
    }

    /// Drops the first `count` elements (all of them if fewer): what LTRIM cuts from the
    /// head. Equivalent to `VecDeque::drain(..count)` with the drained elements discarded.
    pub fn remove_front(&mut self, count: usize) {
        let target = self.len.saturating_sub(count);
        while self.len > target {
            let excess = self.len - target;
            let front = self.chunks.front_mut().expect("len > 0");
            if front.len() <= excess {
                self.len -= front.len();
                self.chunks.pop_front();
            } else {
                front.drain(..excess);
                self.len = target;
            }
        }
    }

    /// Keeps only the elements for which `keep` returns true, visiting each exactly once from
    /// head to tail (like `VecDeque::retain`); then merges neighbouring chunks that fit in one
    /// so removals do not leave the list fragmented.
    pub fn retain(&mut self, mut keep: impl FnMut(&Bstr) -> bool) {
        let len_before = self.len;
        let mut len = 0;
        self.chunks.retain_mut(|chunk| {
            chunk.retain(&mut keep);
            len += chunk.len();
            !chunk.is_empty()
        });
        self.len = len;
        if len != len_before {
            self.compact();
        }
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// Iterates head to tail (reversible, exact length).
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            front: vec_deque::Iter::default(),
            chunks: self.chunks.iter(),
            back: vec_deque::Iter::default(),
            remaining: self.len,
        }
    }

    /// Iterates the elements at the positions in `range`.
    ///
    /// # Panics
    /// If the range ends past `len` or starts after it ends, like `VecDeque::range`.
    pub fn range(&self, range: impl RangeBounds<usize>) -> Iter<'_> {
        let start = match range.start_bound() {
            Bound::Included(&start) => start,
            Bound::Excluded(&start) => start + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&end) => end + 1,
            Bound::Excluded(&end) => end,
            Bound::Unbounded => self.len,
        };
        assert!(
            start <= end && end <= self.len,
            "range {start}..{end} out of 0..{}",
            self.len
        );
        if start == end {
            return Iter {
                front: vec_deque::Iter::default(),
                chunks: self.chunks.range(0..0),
                back: vec_deque::Iter::default(),
                remaining: 0,
            };
        }
        let (first_chunk, first_offset) = self.locate(start).expect("start < end <= len");
        let (last_chunk, last_offset) = self.locate(end - 1).expect("end - 1 < len");
        if first_chunk == last_chunk {
            return Iter {
                front: self.chunks[first_chunk].range(first_offset..=last_offset),
                chunks: self.chunks.range(0..0),
                back: vec_deque::Iter::default(),
                remaining: end - start,
            };
        }
        Iter {
            front: self.chunks[first_chunk].range(first_offset..),
            chunks: self.chunks.range(first_chunk + 1..last_chunk),
            back: self.chunks[last_chunk].range(..=last_offset),
            remaining: end - start,
        }
    }

    /// Panics with a description if an invariant from the module documentation is broken.
    /// O(chunks); for tests and debugging.
    pub fn check_invariants(&self) {
        let mut sum = 0;
        for (position, chunk) in self.chunks.iter().enumerate() {
            assert!(!chunk.is_empty(), "chunk {position} is empty");
            assert!(
                chunk.len() <= CHUNK_ELEMENTS_MAX,
                "chunk {position} holds {} elements",
                chunk.len()
            );
            sum += chunk.len();
        }
        assert_eq!(
            self.len, sum,
            "cached length differs from the sum of the chunks"
        );
    }

    /// Number of chunks (for tests and memory estimates).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// (chunk, offset in chunk) of element `index`, walking chunk lengths from the nearer
    /// end; `None` if out of bounds.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        if index < self.len / 2 {
            let mut offset = index;
            for (position, chunk) in self.chunks.iter().enumerate() {
                if offset < chunk.len() {
                    return Some((position, offset));
                }
                offset -= chunk.len();
            }
        } else {
            // Counted from the tail: `from_back` elements follow element `index`.
            let mut from_back = self.len - 1 - index;
            for (position, chunk) in self.chunks.iter().enumerate().rev() {
                if from_back < chunk.len() {
                    return Some((position, chunk.len() - 1 - from_back));
                }
                from_back -= chunk.len();
            }
        }
        unreachable!("index {index} < len {} but not in any chunk", self.len)
    }

    /// Gives an empty outer deque room for exactly one chunk: most lists are short, and the
    /// default first growth would reserve four chunk headers.
    fn reserve_first_chunk(&mut self) {
        if self.chunks.capacity() == 0 {
            self.chunks.reserve_exact(1);
        }
    }

    /// Moves small chunk `chunk` into its next or previous neighbour if the result stays
    /// within [`CHUNK_MERGED_ELEMENTS_MAX`].
    fn merge_with_a_neighbour(&mut self, chunk: usize) {
        let small = self.chunks[chunk].len();
        if chunk + 1 < self.chunks.len()
            && self.chunks[chunk + 1].len() + small <= CHUNK_MERGED_ELEMENTS_MAX
        {
            let moved = self.chunks.remove(chunk).expect("in bounds");
            let next = &mut self.chunks[chunk];
            for value in moved.into_iter().rev() {
                next.push_front(value);
            }
        } else if chunk > 0 && self.chunks[chunk - 1].len() + small <= CHUNK_MERGED_ELEMENTS_MAX {
            let moved = self.chunks.remove(chunk).expect("in bounds");
            self.chunks[chunk - 1].extend(moved);
        }
    }

    /// Rebuilds the chunk sequence so that no two neighbours would fit in one chunk.
    fn compact(&mut self) {
        let mut compacted: VecDeque<Chunk> = VecDeque::with_capacity(self.chunks.len());
        for chunk in self.chunks.drain(..) {
            match compacted.back_mut() {
                Some(last) if last.len() + chunk.len() <= CHUNK_ELEMENTS_MAX => last.extend(chunk),
                _ => compacted.push_back(chunk),
            }
        }
        compacted.shrink_to_fit();
        self.chunks = compacted;
    }
}

impl Index<usize> for List {
    type Output = Bstr;

    fn index(&self, index: usize) -> &Bstr {
        let len = self.len;
        self.get(index)
            .unwrap_or_else(|| panic!("index {index} out of bounds (len {len})"))
    }
}

impl IndexMut<usize> for List {
    fn index_mut(&mut self, index: usize) -> &mut Bstr {
        let len = self.len;
        self.get_mut(index)
            .unwrap_or_else(|| panic!("index {index} out of bounds (len {len})"))
    }
}

impl fmt::Debug for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for List {
    fn eq(&self, other: &List) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for List {}

impl Extend<Bstr> for List {
    fn extend<I: IntoIterator<Item = Bstr>>(&mut self, elements: I) {
        for element in elements {
            self.push_back(element);
        }
    }
}

impl FromIterator<Bstr> for List {
    fn from_iter<I: IntoIterator<Item = Bstr>>(elements: I) -> List {
        let mut list = List::new();
        list.extend(elements);
        list
    }
}

impl<'a> IntoIterator for &'a List {
    type Item = &'a Bstr;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over a [`List`] or a range of it. `front` and `back` are the partial first and
/// last chunks still to visit, `chunks` the whole chunks between them; `remaining` counts
/// every element left in all three.
#[derive(Clone)]
pub struct Iter<'a> {
    front: vec_deque::Iter<'a, Bstr>,
    chunks: vec_deque::Iter<'a, Chunk>,
    back: vec_deque::Iter<'a, Bstr>,
    remaining: usize,
}

impl<'a> Iter<'a> {
    /// `next` once `front` is exhausted: moves to the next whole chunk, or the back part.
    fn next_from_next_chunk(&mut self) -> Option<&'a Bstr> {
        if self.remaining == 0 {
            return None;
        }
        for chunk in self.chunks.by_ref() {
            self.front = chunk.iter();
            if let Some(value) = self.front.next() {
                self.remaining -= 1;
                return Some(value);
            }
        }
        let value = self.back.next().expect("remaining > 0");
        self.remaining -= 1;
        Some(value)
    }

    /// `next_back` once `back` is exhausted: the previous whole chunk, or the front part.
    fn next_back_from_previous_chunk(&mut self) -> Option<&'a Bstr> {
        if self.remaining == 0 {
            return None;
        }
        while let Some(chunk) = self.chunks.next_back() {
            self.back = chunk.iter();
            if let Some(value) = self.back.next_back() {
                self.remaining -= 1;
                return Some(value);
            }
        }
        let value = self.front.next_back().expect("remaining > 0");
        self.remaining -= 1;
        Some(value)
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Bstr;

    #[inline]
    fn next(&mut self) -> Option<&'a Bstr> {
        // Fast path: the current chunk has more; `front` is always within the range.
        if let Some(value) = self.front.next() {
            self.remaining -= 1;
            return Some(value);
        }
        self.next_from_next_chunk()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        if let Some(value) = self.back.next_back() {
            self.remaining -= 1;
            return Some(value);
        }
        self.next_back_from_previous_chunk()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl std::iter::FusedIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn element(n: u64) -> Bstr {
        Bstr::from_i64(n as i64)
    }

    fn assert_same(list: &List, model: &VecDeque<Bstr>) {
        list.check_invariants();
        assert_eq!(list.len(), model.len());
        assert!(list.iter().eq(model.iter()));
    }

    #[test]
    fn pushes_past_one_chunk_start_new_chunks() {
        let mut list = List::new();
        for n in 0..(CHUNK_ELEMENTS_MAX as u64 * 3 + 1) {
            list.push_back(element(n));
        }
        list.check_invariants();
        assert_eq!(list.chunk_count(), 4);
        for n in 0..10 {
            list.push_front(element(1000 + n));
        }
        list.check_invariants();
        assert_eq!(list.chunk_count(), 5);
        assert_eq!(list.front(), Some(&element(1009)));
        assert_eq!(list.back(), Some(&element(CHUNK_ELEMENTS_MAX as u64 * 3)));
    }

    #[test]
    fn popping_a_chunk_empty_removes_it() {
        let mut list: List = (0..CHUNK_ELEMENTS_MAX as u64 + 1).map(element).collect();
        assert_eq!(list.chunk_count(), 2);
        assert_eq!(list.pop_back(), Some(element(CHUNK_ELEMENTS_MAX as u64)));
        list.check_invariants();
        assert_eq!(list.chunk_count(), 1);
        while list.pop_front().is_some() {
            list.check_invariants();
        }
        assert_eq!(list.chunk_count(), 0);
        assert_eq!(list.pop_back(), None);
    }

    #[test]
    fn insert_into_a_full_chunk_splits_it() {
        let mut list: List = (0..CHUNK_ELEMENTS_MAX as u64).map(element).collect();
        assert_eq!(list.chunk_count(), 1);
        list.insert(10, element(999));
        list.check_invariants();
        assert_eq!(list.chunk_count(), 2);
        assert_eq!(list[10], element(999));
        assert_eq!(list[11], element(10));
    }

    #[test]
    fn removals_in_the_middle_merge_small_chunks() {
        let mut list: List = (0..CHUNK_ELEMENTS_MAX as u64 * 8).map(element).collect();
        while list.len() > 10 {
            list.remove(list.len() / 2);
            list.check_invariants();
        }
        assert_eq!(list.chunk_count(), 1);
    }

    #[test]
    fn retain_compacts_the_chunks() {
        let mut list: List = (0..CHUNK_ELEMENTS_MAX as u64 * 8).map(element).collect();
        list.retain(|e| e.as_bytes().ends_with(b"0"));
        list.check_invariants();
        assert_eq!(list.len(), CHUNK_ELEMENTS_MAX * 8 / 10 + 1);
        assert_eq!(list.chunk_count(), 1);
    }

    #[test]
    fn range_iterates_both_ways_within_and_across_chunks() {
        let list: List = (0..1000).map(element).collect();
        let model: VecDeque<Bstr> = (0..1000).map(element).collect();
        for (start, end) in [
            (0, 0),
            (0, 1000),
            (5, 6),
            (100, 130),
            (120, 400),
            (999, 1000),
        ] {
            assert!(list.range(start..end).eq(model.range(start..end)));
            assert!(list
                .range(start..end)
                .rev()
                .eq(model.range(start..end).rev()));
            assert_eq!(list.range(start..end).len(), end - start);
        }
        assert!(list.range(3..=3).eq(model.range(3..=3)));
    }

    #[test]
    fn short_list_reserves_one_chunk_header() {
        let mut list = List::new();
        list.push_back(element(1));
        assert_eq!(list.chunks.capacity(), 1);
    }

    /// Random operations applied to both a `List` and std's `VecDeque`; contents and
    /// invariants are compared after every step.
    #[test]
    fn random_operations_match_vec_deque() {
        let mut rng = StdRng::seed_from_u64(0x5eed_115c);
        let mut list = List::new();
        let mut model: VecDeque<Bstr> = VecDeque::new();
        let mut next = 0u64;
        let mut chunk_count_max = 0;
        for step in 0..100_000 {
            // Bias towards growth in the first half, shrinking in the second, so chunk
            // counts both rise into the dozens and fall back to zero.
            let grow = step < 50_000;
            let choice = rng.gen_range(0..100);
            match choice {
                0..=19 => {
                    next += 1;
                    list.push_back(element(next));
                    model.push_back(element(next));
                }
                20..=39 => {
                    next += 1;
                    list.push_front(element(next));
                    model.push_front(element(next));
                }
                40..=49 => {
                    if !grow || rng.gen_bool(0.3) {
                        assert_eq!(list.pop_front(), model.pop_front());
                    }
                }
                50..=59 => {
                    if !grow || rng.gen_bool(0.3) {
                        assert_eq!(list.pop_back(), model.pop_back());
                    }
                }
                60..=71 => {
                    next += 1;
                    let index = rng.gen_range(0..=model.len());
                    list.insert(index, element(next));
                    model.insert(index, element(next));
                }
                72..=81 => {
                    if !model.is_empty() && (!grow || rng.gen_bool(0.5)) {
                        let index = rng.gen_range(0..model.len());
                        assert_eq!(list.remove(index), model.remove(index));
                    }
                    assert_eq!(list.remove(model.len()), None);
                }
                82..=87 => {
                    if !model.is_empty() {
                        let index = rng.gen_range(0..model.len());
                        assert_eq!(list.get(index), model.get(index));
                        next += 1;
                        *list.get_mut(index).unwrap() = element(next);
                        model[index] = element(next);
                        assert_eq!(list[index], model[index]);
                    }
                    assert_eq!(list.get(model.len()), None);
                    assert_eq!(list.front(), model.front());
                    assert_eq!(list.back(), model.back());
                }
                88..=91 => {
                    let start = rng.gen_range(0..=model.len());
                    let end = rng.gen_range(start..=model.len());
                    assert!(list.range(start..end).eq(model.range(start..end)));
                    assert!(list
                        .range(start..end)
                        .rev()
                        .eq(model.range(start..end).rev()));
                    // Alternating ends meet in the middle without losing or repeating.
                    let mut from_list = list.range(start..end);
                    let mut from_model = model.range(start..end);
                    loop {
                        let pair = (from_list.next(), from_model.next());
                        assert_eq!(pair.0, pair.1);
                        let pair_back = (from_list.next_back(), from_model.next_back());
                        assert_eq!(pair_back.0, pair_back.1);
                        assert_eq!(from_list.len(), from_model.len());
                        if pair.0.is_none() {
                            break;
                        }
                    }
                }
                92..=94 => {
                    if !grow && rng.gen_bool(0.3) {
                        let keep = rng.gen_range(0..=model.len());
                        list.truncate(keep);
                        model.truncate(keep);
                        let drop = rng.gen_range(0..=model.len() / 4 + 1);
                        list.remove_front(drop);
                        model.drain(..drop.min(model.len()));
                    }
                }
                95..=97 => {
                    let modulus = rng.gen_range(2..20u64);
                    let drop_residue = rng.gen_range(0..modulus);
                    let by_value = |e: &Bstr| {
                        let n: u64 = std::str::from_utf8(e).unwrap().parse().unwrap();
                        n % modulus != drop_residue
                    };
                    if rng.gen_bool(if grow { 0.01 } else { 0.1 }) {
                        list.retain(by_value);
                        model.retain(by_value);
                    }
                }
                _ => {
                    if rng.gen_bool(0.01) {
                        list.clear();
                        model.clear();
                    }
                    assert!(list.iter().rev().eq(model.iter().rev()));
                    assert_eq!(list.clone(), list);
                }
            }
            list.check_invariants();
            chunk_count_max = chunk_count_max.max(list.chunk_count());
            assert_eq!(list.len(), model.len());
            assert_eq!(list.front(), model.front());
            assert_eq!(list.back(), model.back());
            if step % 97 == 0 {
                assert_same(&list, &model);
            }
        }
        assert_same(&list, &model);
        assert!(chunk_count_max > 50, "the test should exercise many chunks");
    }
}
