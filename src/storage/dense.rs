//! [`DenseMap`]: the key table of a database, built for memory per key.
//!
//! Entries live in one dense vector (`(key, value)`, 48 bytes each) grown by a quarter at a
//! time, not doubled; a hash index maps each key's hash to its position. The index stores a
//! 32-bit hash beside the 32-bit position (9 bytes a slot with hashbrown's control byte), so
//! growing it never touches the keys. Compared with `IndexMap` (which stores a 64-bit hash in
//! every entry, a 64-bit position in every slot, and lets the entry vector follow the index's
//! capacity) this saves 30–50 bytes per key at a million keys — the difference between using
//! more and less memory per key than Redis.
//!
//! Positions are dense `0..len`, which SCAN cursors and random sampling rely on. Removal moves
//! the last entry into the hole (`swap_remove`), exactly like `IndexMap::swap_remove`.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::bstr::Bstr;
use super::value::Hasher;

/// Entries are added this fraction of the current length at a time (plus a minimum).
const GROWTH_DIVISOR: usize = 4;
const GROWTH_MIN: usize = 16;

/// An insertion-ordered map from [`Bstr`] keys, dense positions, O(1) operations.
pub struct DenseMap<V> {
    entries: Vec<(Bstr, V)>,
    /// (position in `entries`, 32-bit hash of its key).
    index: HashTable<(u32, u32)>,
    hasher: Hasher,
}

impl<V> Default for DenseMap<V> {
    fn default() -> Self {
        DenseMap {
            entries: Vec::new(),
            index: HashTable::new(),
            hasher: Hasher::default(),
        }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for DenseMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

/// The full 64-bit hash hashbrown sees, made from the 32 bits we store (top bits pick the
/// control byte, low bits the bucket: both present in a doubled 32-bit value).
#[inline]
fn widen(hash32: u32) -> u64 {
    ((hash32 as u64) << 32) | hash32 as u64
}

impl<V> DenseMap<V> {
    #[inline]
    fn hash(&self, key: &[u8]) -> u32 {
        let full = self.hasher.hash_one(key);
        (full ^ (full >> 32)) as u32
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries the vector can hold without growing.
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    #[inline]
    fn position(&self, key: &[u8]) -> Option<usize> {
        let hash = self.hash(key);
        let entries = &self.entries;
        self.index
            .find(widen(hash), |&(position, stored)| {
                stored == hash && entries[position as usize].0.as_bytes() == key
            })
            .map(|&(position, _)| position as usize)
    }

    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.position(key).map(|p| &self.entries[p].1)
    }

    #[inline]
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let position = self.position(key)?;
        Some(&mut self.entries[position].1)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.position(key).is_some()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: Bstr, value: V) -> Option<V> {
        if let Some(position) = self.position(&key) {
            return Some(std::mem::replace(&mut self.entries[position].1, value));
        }
        assert!(self.entries.len() < u32::MAX as usize, "key table full");
        if self.entries.len() == self.entries.capacity() {
            let more = (self.entries.len() / GROWTH_DIVISOR).max(GROWTH_MIN);
            self.entries.reserve_exact(more);
        }
        let hash = self.hash(&key);
        let position = self.entries.len() as u32;
        self.index
            .insert_unique(widen(hash), (position, hash), |&(_, stored)| widen(stored));
        self.entries.push((key, value));
        None
    }

    /// Removes `key`, moving the last entry into its position.
    pub fn swap_remove_entry(&mut self, key: &[u8]) -> Option<(Bstr, V)> {
        let hash = self.hash(key);
        let entries = &self.entries;
        let found = self
            .index
            .find_entry(widen(hash), |&(position, stored)| {
                stored == hash && entries[position as usize].0.as_bytes() == key
            })
            .ok()?;
        let ((position, _), _) = found.remove();
        let position = position as usize;
        let last = self.entries.len() - 1;
        if position != last {
            // The entry at `last` moves to `position`: repoint its index slot.
            let moved_hash = self.hash(&self.entries[last].0);
            let slot = self
                .index
                .find_mut(widen(moved_hash), |&(p, _)| p as usize == last)
                .expect("every entry has an index slot");
            slot.0 = position as u32;
        }
        let removed = self.entries.swap_remove(position);
        self.shrink_if_sparse();
        Some(removed)
    }

    pub fn swap_remove(&mut self, key: &[u8]) -> Option<V> {
        self.swap_remove_entry(key).map(|(_, v)| v)
    }

    /// Gives memory back after mass deletions (a quarter full or less).
    fn shrink_if_sparse(&mut self) {
        let len = self.entries.len();
        if self.entries.capacity() > 1024 && len < self.entries.capacity() / 4 {
            self.entries.shrink_to(len + len / GROWTH_DIVISOR);
            self.index.shrink_to(len, |&(_, stored)| widen(stored));
        }
    }

    /// The entry at dense position `position`.
    #[inline]
    pub fn get_index(&self, position: usize) -> Option<(&Bstr, &V)> {
        self.entries.get(position).map(|(k, v)| (k, v))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Bstr, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn clear(&mut self) {
        self.entries = Vec::new();
        self.index = HashTable::new();
    }

    /// Checks that index and entries agree (tests and debug assertions).
    pub fn check_invariants(&self) {
        assert_eq!(self.index.len(), self.entries.len());
        for &(position, hash) in self.index.iter() {
            let (key, _) = &self.entries[position as usize];
            assert_eq!(self.hash(key), hash, "stale hash for {key:?}");
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
    fn grows_by_a_quarter_not_double() {
        let mut map = DenseMap::default();
        for i in 0..100_000 {
            map.insert(Bstr::from(format!("k{i}").as_str()), ());
        }
        assert!(
            map.capacity() <= 100_000 + 100_000 / 4 + GROWTH_MIN,
            "capacity {}",
            map.capacity()
        );
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
