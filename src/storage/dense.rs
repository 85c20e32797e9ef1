//! [`DenseMap`]: the key table of a database, built for memory per key and for latency at
//! tens of millions of keys.
//!
//! Entries (`(key, value)`, 48 bytes each) live at dense positions `0..len` in a segmented
//! vector: the first segment grows like a `Vec` up to [`ENTRY_SEGMENT_LEN`] entries, every
//! later one is allocated at exactly that size. Growing never copies more than one segment
//! (3 MiB), where a single `Vec` would copy the whole table (350 MB at 7M keys, a pause of a
//! few hundred milliseconds), and there is no doubling slack beyond the last segment.
//!
//! The hash index maps a key's 32-bit hash to its position. It is split into
//! [`INDEX_SEGMENTS`] independent hash tables chosen by the hash's top byte, each storing
//! `(position, hash)` (9 bytes a slot with hashbrown's control byte): a table that fills up
//! rehashes only its 1/256 of the keys, from the stored hashes, never touching the keys —
//! Redis avoids the same pause with incremental rehashing. Compared with `IndexMap` (a 64-bit
//! hash in every entry, a 64-bit position in every slot, an entry vector that follows the
//! index's capacity) this saves 30–50 bytes per key at a million keys.
//!
//! Positions are dense, which SCAN cursors and random sampling rely on. Removal moves the last
//! entry into the hole (`swap_remove`), exactly like `IndexMap::swap_remove`.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::bstr::Bstr;
use super::value::Hasher;

/// Entries per segment of the entry vector (2^16: 3 MiB of 48-byte entries).
pub const ENTRY_SEGMENT_LEN: usize = 1 << ENTRY_SEGMENT_BITS;
const ENTRY_SEGMENT_BITS: u32 = 16;
/// Independent hash tables of the index, chosen by the top byte of the hash.
pub const INDEX_SEGMENTS: usize = 256;

/// An insertion-ordered map from [`Bstr`] keys, dense positions, O(1) operations.
pub struct DenseMap<V> {
    /// Every segment but the last holds exactly `ENTRY_SEGMENT_LEN` entries.
    segments: Vec<Vec<(Bstr, V)>>,
    len: usize,
    /// (position, 32-bit hash of its key), split by the hash's top byte. Allocated on the
    /// first insert, so an empty database costs no index memory.
    index: Vec<HashTable<(u32, u32)>>,
    hasher: Hasher,
}

impl<V> Default for DenseMap<V> {
    fn default() -> Self {
        DenseMap {
            segments: Vec::new(),
            len: 0,
            index: Vec::new(),
            hasher: Hasher::default(),
        }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for DenseMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The 64-bit hash hashbrown sees inside one index table, made from the 32 bits we store. The
/// top byte picked the table, so it must not also be the control byte (which comes from the
/// top 7 bits): rotate the next byte up there; bucket positions use the low bits.
#[inline]
fn widen(hash32: u32) -> u64 {
    ((hash32.rotate_left(8) as u64) << 32) | hash32 as u64
}

#[inline]
fn table_of(hash32: u32) -> usize {
    (hash32 >> 24) as usize
}

#[inline]
fn split(position: usize) -> (usize, usize) {
    (
        position >> ENTRY_SEGMENT_BITS,
        position & (ENTRY_SEGMENT_LEN - 1),
    )
}

impl<V> DenseMap<V> {
    #[inline]
    fn hash(&self, key: &[u8]) -> u32 {
        let full = self.hasher.hash_one(key);
        (full ^ (full >> 32)) as u32
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries the segments can hold without allocating.
    pub fn capacity(&self) -> usize {
        self.segments.iter().map(Vec::capacity).sum()
    }

    #[inline]
    fn entry(&self, position: usize) -> &(Bstr, V) {
        let (segment, offset) = split(position);
        &self.segments[segment][offset]
    }

    #[inline]
    fn entry_mut(&mut self, position: usize) -> &mut (Bstr, V) {
        let (segment, offset) = split(position);
        &mut self.segments[segment][offset]
    }

    #[inline]
    fn position(&self, key: &[u8]) -> Option<usize> {
        if self.index.is_empty() {
            return None;
        }
        let hash = self.hash(key);
        self.index[table_of(hash)]
            .find(widen(hash), |&(position, stored)| {
                stored == hash && self.entry(position as usize).0.as_bytes() == key
            })
            .map(|&(position, _)| position as usize)
    }

    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.position(key).map(|p| &self.entry(p).1)
    }

    #[inline]
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let position = self.position(key)?;
        Some(&mut self.entry_mut(position).1)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.position(key).is_some()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: Bstr, value: V) -> Option<V> {
        if let Some(position) = self.position(&key) {
            return Some(std::mem::replace(&mut self.entry_mut(position).1, value));
        }
        assert!(self.len < u32::MAX as usize, "key table full");
        if self.index.is_empty() {
            self.index = (0..INDEX_SEGMENTS).map(|_| HashTable::new()).collect();
        }
        let hash = self.hash(&key);
        let position = self.len;
        self.index[table_of(hash)].insert_unique(
            widen(hash),
            (position as u32, hash),
            |&(_, stored)| widen(stored),
        );
        let (segment, _) = split(position);
        if segment == self.segments.len() {
            // A new segment: exactly one segment's size (the first one grows like a Vec).
            let capacity = if segment == 0 { 0 } else { ENTRY_SEGMENT_LEN };
            self.segments.push(Vec::with_capacity(capacity));
        }
        self.segments[segment].push((key, value));
        self.len += 1;
        None
    }

    /// Inserts `key` only if it is absent, hashing it once (loading a snapshot inserts
    /// millions of keys that are almost never present); gives the pair back if it was there.
    pub fn insert_new(&mut self, key: Bstr, value: V) -> Result<(), (Bstr, V)> {
        assert!(self.len < u32::MAX as usize, "key table full");
        if self.index.is_empty() {
            self.index = (0..INDEX_SEGMENTS).map(|_| HashTable::new()).collect();
        }
        let hash = self.hash(&key);
        let segments = &self.segments;
        let found = self.index[table_of(hash)]
            .find(widen(hash), |&(position, stored)| {
                let (segment, offset) = split(position as usize);
                stored == hash && segments[segment][offset].0.as_bytes() == key.as_bytes()
            })
            .is_some();
        if found {
            return Err((key, value));
        }
        let position = self.len;
        self.index[table_of(hash)].insert_unique(
            widen(hash),
            (position as u32, hash),
            |&(_, stored)| widen(stored),
        );
        let (segment, _) = split(position);
        if segment == self.segments.len() {
            let capacity = if segment == 0 { 0 } else { ENTRY_SEGMENT_LEN };
            self.segments.push(Vec::with_capacity(capacity));
        }
        self.segments[segment].push((key, value));
        self.len += 1;
        Ok(())
    }

    /// Appends an entry without indexing it, for bulk loading keys known to be new: lookups
    /// do not see it until [`DenseMap::index_from`] has run.
    pub fn push_unindexed(&mut self, key: Bstr, value: V) {
        assert!(self.len < u32::MAX as usize, "key table full");
        let (segment, _) = split(self.len);
        if segment == self.segments.len() {
            let capacity = if segment == 0 { 0 } else { ENTRY_SEGMENT_LEN };
            self.segments.push(Vec::with_capacity(capacity));
        }
        self.segments[segment].push((key, value));
        self.len += 1;
    }

    /// Indexes the entries at positions `from..len` appended by [`DenseMap::push_unindexed`].
    ///
    /// Inserting keys one by one into a big index misses the cache twice per key (control
    /// bytes, then the slot). Here a chunk of entries is hashed first, sorted by index table,
    /// and inserted table by table, so each run of inserts works on one small table that
    /// stays in cache. `Err(position)`: the entry at `position` repeats an earlier key; the
    /// index is then incomplete and the map must be cleared.
    pub fn index_from(&mut self, from: usize) -> Result<(), usize> {
        const CHUNK: usize = 1 << 20;
        if from >= self.len {
            return Ok(());
        }
        if self.index.is_empty() {
            self.index = (0..INDEX_SEGMENTS).map(|_| HashTable::new()).collect();
        }
        let mut hashed: Vec<(u32, u32)> = Vec::with_capacity(CHUNK.min(self.len - from));
        let mut sorted: Vec<(u32, u32)> = Vec::with_capacity(hashed.capacity());
        let mut start = from;
        while start < self.len {
            let end = (start + CHUNK).min(self.len);
            hashed.clear();
            for position in start..end {
                hashed.push((position as u32, self.hash(&self.entry(position).0)));
            }
            let mut counts = [0usize; INDEX_SEGMENTS];
            for &(_, hash) in &hashed {
                counts[table_of(hash)] += 1;
            }
            let mut starts = [0usize; INDEX_SEGMENTS];
            for table in 1..INDEX_SEGMENTS {
                starts[table] = starts[table - 1] + counts[table - 1];
            }
            sorted.clear();
            sorted.resize(hashed.len(), (0, 0));
            let mut next = starts;
            for &item in &hashed {
                let table = table_of(item.1);
                sorted[next[table]] = item;
                next[table] += 1;
            }
            let segments = &self.segments;
            let key_at = |position: u32| {
                let (segment, offset) = split(position as usize);
                segments[segment][offset].0.as_bytes()
            };
            for (table, slots) in self.index.iter_mut().enumerate() {
                let run = &sorted[starts[table]..starts[table] + counts[table]];
                slots.reserve(run.len(), |&(_, stored)| widen(stored));
                for &(position, hash) in run {
                    let present = slots
                        .find(widen(hash), |&(p, stored)| {
                            stored == hash && key_at(p) == key_at(position)
                        })
                        .is_some();
                    if present {
                        return Err(position as usize);
                    }
                    slots
                        .insert_unique(widen(hash), (position, hash), |&(_, stored)| widen(stored));
                }
            }
            start = end;
        }
        Ok(())
    }

    /// Makes room for `additional` more keys in the index (and in the first entry segment),
    /// so a load of known size does not grow the tables step by step.
    pub fn reserve(&mut self, additional: usize) {
        if additional == 0 {
            return;
        }
        if self.index.is_empty() {
            self.index = (0..INDEX_SEGMENTS).map(|_| HashTable::new()).collect();
        }
        let per_table = additional / INDEX_SEGMENTS + 1;
        for table in &mut self.index {
            table.reserve(per_table, |&(_, stored)| widen(stored));
        }
        if self.len < ENTRY_SEGMENT_LEN {
            if self.segments.is_empty() {
                self.segments.push(Vec::new());
            }
            let wanted = (self.len + additional).min(ENTRY_SEGMENT_LEN);
            let first = &mut self.segments[0];
            first.reserve(wanted.saturating_sub(first.len()));
        }
    }

    /// Removes `key`, moving the last entry into its position.
    pub fn swap_remove_entry(&mut self, key: &[u8]) -> Option<(Bstr, V)> {
        if self.index.is_empty() {
            return None;
        }
        let hash = self.hash(key);
        let segments = &self.segments;
        let found = self.index[table_of(hash)]
            .find_entry(widen(hash), |&(position, stored)| {
                let (segment, offset) = split(position as usize);
                stored == hash && segments[segment][offset].0.as_bytes() == key
            })
            .ok()?;
        let ((position, _), _) = found.remove();
        let position = position as usize;
        let last = self.len - 1;
        if position != last {
            // The entry at `last` moves to `position`: repoint its index slot.
            let moved_hash = self.hash(&self.entry(last).0);
            let slot = self.index[table_of(moved_hash)]
                .find_mut(widen(moved_hash), |&(p, _)| p as usize == last)
                .expect("every entry has an index slot");
            slot.0 = position as u32;
        }
        let (last_segment, _) = split(last);
        let moved = self.segments[last_segment]
            .pop()
            .expect("last entry exists");
        let removed = if position == last {
            moved
        } else {
            std::mem::replace(self.entry_mut(position), moved)
        };
        self.len -= 1;
        if self.segments[last_segment].is_empty() && last_segment > 0 {
            self.segments.pop();
        }
        self.shrink_if_sparse(table_of(hash));
        Some(removed)
    }

    pub fn swap_remove(&mut self, key: &[u8]) -> Option<V> {
        self.swap_remove_entry(key).map(|(_, v)| v)
    }

    /// Gives memory back after mass deletions: the first segment's spare room, and an index
    /// table (the one just changed) a quarter full or less.
    fn shrink_if_sparse(&mut self, table: usize) {
        if self.len == 0 {
            self.clear();
            return;
        }
        let slots = &mut self.index[table];
        if slots.capacity() > 64 && slots.len() < slots.capacity() / 4 {
            slots.shrink_to(slots.len(), |&(_, stored)| widen(stored));
        }
        if let Some(first) = self.segments.first_mut() {
            if first.capacity() > 1024 && first.len() < first.capacity() / 4 {
                first.shrink_to(first.len() + first.len() / 4);
            }
        }
    }

    /// The entry at dense position `position`.
    #[inline]
    pub fn get_index(&self, position: usize) -> Option<(&Bstr, &V)> {
        if position >= self.len {
            return None;
        }
        let (key, value) = self.entry(position);
        Some((key, value))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Bstr, &V)> {
        self.segments.iter().flatten().map(|(k, v)| (k, v))
    }

    pub fn clear(&mut self) {
        self.segments = Vec::new();
        self.index = Vec::new();
        self.len = 0;
    }

    /// Checks that index and entries agree (tests and debug assertions).
    pub fn check_invariants(&self) {
        assert_eq!(self.segments.iter().map(Vec::len).sum::<usize>(), self.len);
        for (i, segment) in self.segments.iter().enumerate() {
            if i + 1 < self.segments.len() {
                assert_eq!(segment.len(), ENTRY_SEGMENT_LEN, "segment {i} not full");
            }
        }
        let indexed: usize = self.index.iter().map(HashTable::len).sum();
        assert_eq!(indexed, self.len);
        for (table, slots) in self.index.iter().enumerate() {
            for &(position, hash) in slots.iter() {
                assert_eq!(table_of(hash), table, "slot in the wrong table");
                let (key, _) = self.entry(position as usize);
                assert_eq!(self.hash(key), hash, "stale hash for {key:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_replace_remove() {
        let mut map = DenseMap::default();
        assert_eq!(map.insert(Bstr::from("a"), 1), None);
        assert_eq!(map.insert(Bstr::from("b"), 2), None);
        assert_eq!(map.insert(Bstr::from("a"), 3), Some(1));
        assert_eq!(map.get(b"a"), Some(&3));
        assert_eq!(map.len(), 2);
        assert_eq!(map.swap_remove(b"a"), Some(3));
        assert_eq!(map.get(b"a"), None);
        assert_eq!(map.get(b"b"), Some(&2));
        assert_eq!(map.get_index(0).map(|(k, _)| k.as_bytes()), Some(&b"b"[..]));
        map.check_invariants();
    }

    #[test]
    fn survives_many_inserts_and_removals_in_any_order() {
        let mut map = DenseMap::default();
        let mut model = std::collections::HashMap::new();
        let mut seed = 12345u64;
        for step in 0..50_000u64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = format!("key{}", (seed >> 33) % 5000);
            if seed.is_multiple_of(3) {
                assert_eq!(map.swap_remove(key.as_bytes()), model.remove(&key));
            } else {
                assert_eq!(
                    map.insert(Bstr::from(key.as_str()), step),
                    model.insert(key, step)
                );
            }
        }
        assert_eq!(map.len(), model.len());
        for (key, value) in &model {
            assert_eq!(map.get(key.as_bytes()), Some(value));
        }
        map.check_invariants();
    }

    #[test]
    fn insert_new_refuses_present_keys_and_reserve_keeps_invariants() {
        let mut map = DenseMap::default();
        map.reserve(100_000);
        for i in 0..100_000 {
            assert!(map
                .insert_new(Bstr::from(format!("k{i}").as_str()), i)
                .is_ok());
        }
        let (key, value) = map.insert_new(Bstr::from("k7"), 0).unwrap_err();
        assert_eq!((key.as_bytes(), value), (&b"k7"[..], 0));
        assert_eq!(map.get(b"k7"), Some(&7));
        assert_eq!(map.len(), 100_000);
        map.check_invariants();
        let mut empty: DenseMap<()> = DenseMap::default();
        empty.reserve(10);
        assert!(empty.is_empty() && empty.get(b"x").is_none());
        empty.check_invariants();
    }

    #[test]
    fn bulk_appends_are_indexed_in_one_pass_and_duplicates_found() {
        let mut map = DenseMap::default();
        map.insert(Bstr::from("first"), 0usize);
        for i in 1..150_000 {
            map.push_unindexed(Bstr::from(format!("k{i}").as_str()), i);
        }
        assert_eq!(map.index_from(1), Ok(()));
        map.check_invariants();
        assert_eq!(map.get(b"k149999"), Some(&149_999));
        assert_eq!(map.get(b"first"), Some(&0));
        let from = map.len();
        map.push_unindexed(Bstr::from("new"), 1);
        map.push_unindexed(Bstr::from("k77"), 2);
        assert_eq!(map.index_from(from), Err(from + 1));
    }

    #[test]
    fn grows_by_whole_segments_without_slack() {
        let mut map = DenseMap::default();
        let count = 3 * ENTRY_SEGMENT_LEN + 10;
        for i in 0..count {
            map.insert(Bstr::from(format!("k{i}").as_str()), ());
        }
        assert!(
            map.capacity() <= 4 * ENTRY_SEGMENT_LEN,
            "capacity {}",
            map.capacity()
        );
        for i in (0..count).step_by(7) {
            assert!(map.contains_key(format!("k{i}").as_bytes()));
        }
        map.check_invariants();
        // Remove across segment boundaries until one segment is left.
        for i in 0..count - 100 {
            map.swap_remove(format!("k{i}").as_bytes());
        }
        assert_eq!(map.len(), 100);
        assert_eq!(map.segments.len(), 1);
        map.check_invariants();
    }

    #[test]
    fn shrinks_after_mass_deletion() {
        let mut map = DenseMap::default();
        for i in 0..10_000 {
            map.insert(Bstr::from(format!("k{i}").as_str()), ());
        }
        for i in 0..9_900 {
            map.swap_remove(format!("k{i}").as_bytes());
        }
        assert!(map.capacity() < 2_000, "capacity {}", map.capacity());
        map.check_invariants();
    }
}
