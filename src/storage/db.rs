//! One logical database: the key → value table and the key → expiry table.
//!
//! Expiry follows Redis: a key whose time has passed is deleted when a command touches it
//! (lazy expiry, [`Db::lookup`]) and by a sampling cycle that runs a few times a second
//! ([`Db::active_expire`]). Every deletion by expiry is recorded in [`Db::expired`] so the
//! caller can propagate it (as `DEL`) to replicas and the AOF in execution order.

use super::bstr::Bstr;
use super::dense::DenseMap;
use super::value::{Map, Value};

/// A logical database (`SELECT n`).
#[derive(Default, Debug)]
pub struct Db {
    keys: DenseMap<Value>,
    expires: Map<Bstr, u64>,
    /// Keys deleted by expiry since the caller last drained this list.
    pub expired: Vec<Bstr>,
    /// Count of keys deleted by expiry (INFO `expired_keys`).
    pub expired_total: u64,
    /// Where the next active expire cycle resumes in `expires`.
    expire_cursor: usize,
    /// What a lookup does with a key whose time has passed (a master deletes it, a replica
    /// hides it from its clients and keeps it live for its master's stream).
    pub expiry_mode: ExpiryMode,
}

/// How lookups treat a key whose time has passed (Redis' `expireIfNeeded` on masters and
/// replicas).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiryMode {
    /// A master: the key is deleted, and the deletion recorded in [`Db::expired`].
    #[default]
    Delete,
    /// A replica serving its own clients: the key reads as missing but stays until the
    /// master's `DEL` arrives, so the replica never diverges from its master.
    Hide,
    /// A replica applying its master's stream: the key is live until the master deletes it
    /// (the master decided the command ran before the key expired).
    Keep,
}

/// Outcome of one [`Db::active_expire`] pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpireCycle {
    pub sampled: usize,
    pub expired: usize,
}

impl Db {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of keys with a time to live (INFO keyspace `expires=`).
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// True if `key` has an expiry at or before `now_ms`.
    #[inline]
    fn is_expired(&self, key: &[u8], now_ms: u64) -> bool {
        if self.expires.is_empty() {
            return false;
        }
        matches!(self.expires.get(key), Some(&at) if at <= now_ms)
    }

    /// Deletes `key` if its time has passed; true if it did.
    ///
    /// With `replica` set the key is only reported expired, never deleted: a replica waits
    /// for its master's `DEL` (it hides the key from reads meanwhile).
    #[inline]
    pub fn expire_if_needed(&mut self, key: &[u8], now_ms: u64, replica: bool) -> bool {
        if !self.is_expired(key, now_ms) {
            return false;
        }
        match self.expiry_mode {
            ExpiryMode::Keep => false,
            ExpiryMode::Hide => true,
            ExpiryMode::Delete if replica => true,
            ExpiryMode::Delete => {
                self.delete_expired(key);
                true
            }
        }
    }

    fn delete_expired(&mut self, key: &[u8]) {
        self.expires.swap_remove(key);
        if let Some((k, _)) = self.keys.swap_remove_entry(key) {
            self.expired.push(k);
            self.expired_total += 1;
        }
    }

    /// The live value of `key`, expiring it first if its time has passed.
    #[inline]
    pub fn lookup(&mut self, key: &[u8], now_ms: u64) -> Option<&Value> {
        if self.expire_if_needed(key, now_ms, false) {
            return None;
        }
        self.keys.get(key)
    }

    /// Mutable access to the live value of `key`.
    #[inline]
    pub fn lookup_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Value> {
        if self.expire_if_needed(key, now_ms, false) {
            return None;
        }
        self.keys.get_mut(key)
    }

    /// The value of `key` without looking at its expiry (for DEBUG, digest, snapshots).
    pub fn peek(&self, key: &[u8]) -> Option<&Value> {
        self.keys.get(key)
    }

    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.lookup(key, now_ms).is_some()
    }

    /// Stores `value` under `key`, dropping any previous value and its expiry (SET semantics).
    pub fn set(&mut self, key: &[u8], value: Value) {
        if !self.expires.is_empty() {
            self.expires.swap_remove(key);
        }
        match self.keys.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                self.keys.insert(Bstr::new(key), value);
            }
        }
    }

    /// Adds a key that must not exist yet, with its expiry, taking the key by value and
    /// hashing it once (loading a snapshot). Gives the value back if the key exists.
    pub fn insert_loaded(
        &mut self,
        key: Bstr,
        value: Value,
        expire_at: Option<u64>,
    ) -> Result<(), Value> {
        match expire_at {
            None => self.keys.insert_new(key, value).map_err(|(_, v)| v),
            Some(at) => {
                let copy = key.clone();
                self.keys.insert_new(key, value).map_err(|(_, v)| v)?;
                self.expires.insert(copy, at);
                Ok(())
            }
        }
    }

    /// Appends a key for bulk loading, without indexing it (see [`DenseMap::push_unindexed`]):
    /// lookups miss it until [`Db::index_loaded`] runs.
    pub fn push_loaded(&mut self, key: Bstr, value: Value, expire_at: Option<u64>) {
        if let Some(at) = expire_at {
            self.expires.insert(key.clone(), at);
        }
        self.keys.push_unindexed(key, value);
    }

    /// Indexes the keys appended by [`Db::push_loaded`] at positions `from..`. On a duplicate
    /// key, returns it; the database must then be cleared.
    pub fn index_loaded(&mut self, from: usize) -> Result<(), Bstr> {
        self.keys.index_from(from).map_err(|position| {
            self.keys
                .get_index(position)
                .map_or_else(|| Bstr::new(b""), |(key, _)| key.clone())
        })
    }

    /// Makes room for `keys` more keys, `expires` of them with a TTL (RDB `RESIZEDB` hint).
    pub fn reserve(&mut self, keys: usize, expires: usize) {
        self.keys.reserve(keys);
        self.expires.reserve(expires);
    }

    /// Stores `value` under `key` keeping the key's expiry (SET ... KEEPTTL, container writes).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value) {
        match self.keys.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                self.keys.insert(Bstr::new(key), value);
            }
        }
    }

    /// The value of `key`, created with `make` if missing. Expired keys count as missing.
    pub fn entry_or_insert_with(
        &mut self,
        key: &[u8],
        now_ms: u64,
        make: impl FnOnce() -> Value,
    ) -> &mut Value {
        if self.expire_if_needed(key, now_ms, false) && self.expiry_mode == ExpiryMode::Hide {
            // A write by a client of a writable replica: the stale key goes first, as
            // Redis' write lookups force the deletion there.
            self.delete_expired(key);
        }
        if !self.keys.contains_key(key) {
            self.keys.insert(Bstr::new(key), make());
        }
        self.keys.get_mut(key).expect("just inserted")
    }

    /// Removes `key` (and its expiry); returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        if !self.expires.is_empty() {
            self.expires.swap_remove(key);
        }
        self.keys.swap_remove(key)
    }

    /// Removes `key` if it holds an empty container (Redis never keeps empty containers).
    pub fn remove_if_empty(&mut self, key: &[u8]) -> bool {
        if matches!(self.keys.get(key), Some(v) if v.is_empty_container()) {
            self.remove(key);
            true
        } else {
            false
        }
    }

    /// Absolute expiry of `key` in unix milliseconds, if it has one.
    pub fn expire_at(&self, key: &[u8]) -> Option<u64> {
        self.expires.get(key).copied()
    }

    /// Sets the absolute expiry of an existing `key`.
    pub fn set_expire_at(&mut self, key: &[u8], at_ms: u64) {
        debug_assert!(self.keys.contains_key(key), "expiry on a missing key");
        match self.expires.get_mut(key) {
            Some(slot) => *slot = at_ms,
            None => {
                self.expires.insert(Bstr::new(key), at_ms);
            }
        }
    }

    /// Removes the expiry of `key`; true if it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        self.expires.swap_remove(key).is_some()
    }

    /// Drops every key.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.expires = Map::default();
        self.expire_cursor = 0;
    }

    /// Iterates all (key, value) pairs, expired or not.
    pub fn iter(&self) -> impl Iterator<Item = (&Bstr, &Value)> {
        self.keys.iter()
    }

    /// The entry at `index` of the key table (for SCAN and random sampling).
    pub fn entry_at(&self, index: usize) -> Option<(&Bstr, &Value)> {
        self.keys.get_index(index)
    }

    /// A uniformly random key that is not expired (tries a bounded number of samples).
    pub fn random_key(&mut self, now_ms: u64, replica: bool) -> Option<Bstr> {
        const ATTEMPTS_MAX: usize = 100;
        for _ in 0..ATTEMPTS_MAX {
            if self.keys.is_empty() {
                return None;
            }
            let index = rand::random::<usize>() % self.keys.len();
            let key = self.keys.get_index(index).map(|(k, _)| k.clone())?;
            if !self.expire_if_needed(&key, now_ms, replica) || replica {
                return Some(key);
            }
        }
        None
    }

    /// One SCAN step over the key table.
    ///
    /// Cursors walk positions from the top of the table down: 0 starts at the last position,
    /// `c > 0` resumes at position `c - 1`, and 0 is returned when the walk is over. Because
    /// removal moves the *last* element into the hole and inserts append at the end, an element
    /// present for the whole scan is never skipped (it may be returned twice), as SCAN promises.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&Bstr, &Value)) -> u64 {
        scan_positions(self.keys.len(), cursor, count, |i| {
            let (k, v) = self.keys.get_index(i).expect("index within len");
            visit(k, v)
        })
    }

    /// Samples keys with a TTL and deletes the expired ones, like Redis' active expire cycle.
    /// Looks at no more than `sample_max` keys.
    pub fn active_expire(&mut self, now_ms: u64, sample_max: usize) -> ExpireCycle {
        let mut cycle = ExpireCycle::default();
        while cycle.sampled < sample_max && !self.expires.is_empty() {
            if self.expire_cursor >= self.expires.len() {
                self.expire_cursor = 0;
            }
            let (key, &at) = self
                .expires
                .get_index(self.expire_cursor)
                .expect("cursor within len");
            cycle.sampled += 1;
            if at <= now_ms {
                let key = key.clone();
                // The last entry moves into this slot; look at the same position again.
                self.expires.swap_remove_index(self.expire_cursor);
                if let Some((k, _)) = self.keys.swap_remove_entry(key.as_bytes()) {
                    self.expired.push(k);
                    self.expired_total += 1;
                }
                cycle.expired += 1;
            } else {
                self.expire_cursor += 1;
            }
        }
        cycle
    }

    /// Approximate bytes this database holds, for `OBJECT`-free memory estimates.
    pub fn keys_capacity(&self) -> usize {
        self.keys.capacity()
    }
}

/// Shared SCAN cursor walk over `len` positions (see [`Db::scan`]); also used by HSCAN,
/// SSCAN and ZSCAN over insertion-ordered containers.
pub fn scan_positions(len: usize, cursor: u64, count: usize, mut visit: impl FnMut(usize)) -> u64 {
    if len == 0 {
        return 0;
    }
    let mut next = if cursor == 0 {
        len
    } else {
        (cursor as usize).min(len)
    };
    let mut visited = 0;
    while next > 0 && visited < count.max(1) {
        next -= 1;
        visit(next);
        visited += 1;
    }
    next as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(Bstr::from(v))
    }

    #[test]
    fn lookup_expires_lazily_and_records_the_deletion() {
        let mut db = Db::default();
        db.set(b"k", s("v"));
        db.set_expire_at(b"k", 1000);
        assert!(db.lookup(b"k", 999).is_some());
        assert!(db.lookup(b"k", 1000).is_none());
        assert_eq!(db.len(), 0);
        assert_eq!(db.expires_len(), 0);
        assert_eq!(db.expired, vec![Bstr::from("k")]);
    }

    #[test]
    fn replica_hides_but_keeps_expired_keys() {
        let mut db = Db::default();
        db.set(b"k", s("v"));
        db.set_expire_at(b"k", 10);
        assert!(db.expire_if_needed(b"k", 20, true));
        assert_eq!(db.len(), 1);
    }

    #[test]
    fn expiry_modes_delete_hide_or_keep_an_expired_key() {
        let expired_db = |mode| {
            let mut db = Db {
                expiry_mode: mode,
                ..Db::default()
            };
            db.set(b"k", s("v"));
            db.set_expire_at(b"k", 10);
            db
        };
        // A master deletes it and records the deletion for propagation.
        let mut db = expired_db(ExpiryMode::Delete);
        assert!(db.lookup(b"k", 20).is_none());
        assert_eq!((db.len(), db.expired.len()), (0, 1));
        // A replica's clients do not see it, but it stays for the master's DEL.
        let mut db = expired_db(ExpiryMode::Hide);
        assert!(db.lookup(b"k", 20).is_none());
        assert!(db.lookup_mut(b"k", 20).is_none());
        assert_eq!((db.len(), db.expired.len()), (1, 0));
        // The master's own commands still find it.
        db.expiry_mode = ExpiryMode::Keep;
        assert!(db.lookup(b"k", 20).is_some());
        assert!(!db.expire_if_needed(b"k", 20, true));
        // A write by a client of a writable replica starts from a fresh value.
        db.expiry_mode = ExpiryMode::Hide;
        let value = db.entry_or_insert_with(b"k", 20, || s("fresh"));
        assert!(matches!(value, Value::Str(v) if v.as_bytes() == b"fresh"));
        assert_eq!(db.expire_at(b"k"), None);
    }

    #[test]
    fn set_clears_ttl_and_keep_ttl_does_not() {
        let mut db = Db::default();
        db.set(b"k", s("v"));
        db.set_expire_at(b"k", 10);
        db.set_keep_ttl(b"k", s("w"));
        assert_eq!(db.expire_at(b"k"), Some(10));
        db.set(b"k", s("x"));
        assert_eq!(db.expire_at(b"k"), None);
    }

    #[test]
    fn active_expire_deletes_only_expired_keys_within_budget() {
        let mut db = Db::default();
        for i in 0..100 {
            let key = format!("k{i}");
            db.set(key.as_bytes(), s("v"));
            db.set_expire_at(key.as_bytes(), if i % 2 == 0 { 5 } else { 500 });
        }
        let cycle = db.active_expire(10, 1000);
        assert_eq!(cycle.expired, 50);
        assert_eq!(db.len(), 50);
        let small = db.active_expire(1000, 20);
        assert_eq!(small.sampled, 20);
    }

    #[test]
    fn scan_returns_every_stable_key_despite_deletions() {
        let mut db = Db::default();
        for i in 0..1000 {
            db.set(format!("k{i}").as_bytes(), s("v"));
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let mut batch = Vec::new();
            cursor = db.scan(cursor, 10, |k, _| batch.push(k.clone()));
            seen.extend(batch);
            // Delete some keys that are not "stable" (k0..k99) while scanning.
            if round < 50 {
                db.remove(format!("k{}", round).as_bytes());
                db.set(format!("new{round}").as_bytes(), s("v"));
            }
            round += 1;
            if cursor == 0 {
                break;
            }
        }
        for i in 100..1000 {
            assert!(
                seen.contains(&Bstr::from(format!("k{i}").as_str())),
                "k{i} missed"
            );
        }
    }
}
