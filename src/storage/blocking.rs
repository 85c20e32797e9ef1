//! Clients blocked on keys (BLPOP, BRPOP, BLMOVE, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP).
//!
//! The registry lives inside the [`Store`](super::Store) so that blocking, being served and
//! timing out are all decided under the keyspace lock: a waiter is either still registered
//! (its core may time it out) or already removed by whoever served it (a reply is on its way
//! to its core). Waiters on one key are served first come, first served, as in Redis.

use std::collections::{HashMap, VecDeque};

use super::bstr::Bstr;
use crate::protocol::Resp;

/// What a blocked client will do once one of its keys has data.
#[derive(Clone, Debug, PartialEq)]
pub enum BlockOp {
    /// BLPOP / BRPOP (`count: None`) and BLMPOP (`count: Some(n)`).
    ListPop {
        from_left: bool,
        count: Option<usize>,
    },
    /// BLMOVE / BRPOPLPUSH.
    ListMove {
        destination: Bstr,
        from_left: bool,
        to_left: bool,
    },
    /// BZPOPMIN / BZPOPMAX (`count: None`) and BZMPOP (`count: Some(n)`).
    ZSetPop { max: bool, count: Option<usize> },
}

/// A client waiting on one or more keys.
#[derive(Clone, Debug)]
pub struct Waiter {
    pub client_id: u64,
    /// Core that owns the connection, and the connection's token there.
    pub core: usize,
    pub conn: u64,
    pub db: usize,
    pub keys: Vec<Bstr>,
    pub op: BlockOp,
    /// Protocol version to encode the eventual reply in.
    pub resp: Resp,
}

/// Who waits on what.
#[derive(Default, Debug)]
pub struct Registry {
    by_key: HashMap<(usize, Bstr), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
    ready: Vec<(usize, Bstr)>,
}

impl Registry {
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Number of blocked clients (INFO `blocked_clients`).
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Number of distinct keys clients block on (INFO `total_blocking_keys`).
    pub fn key_count(&self) -> usize {
        self.by_key.len()
    }

    pub fn block(&mut self, waiter: Waiter) {
        debug_assert!(
            !self.waiters.contains_key(&waiter.client_id),
            "client blocked twice"
        );
        for key in &waiter.keys {
            self.by_key
                .entry((waiter.db, key.clone()))
                .or_default()
                .push_back(waiter.client_id);
        }
        self.waiters.insert(waiter.client_id, waiter);
    }

    /// Unregisters a waiter (served, timed out, disconnected, CLIENT UNBLOCK).
    pub fn remove(&mut self, client_id: u64) -> Option<Waiter> {
        let waiter = self.waiters.remove(&client_id)?;
        for key in &waiter.keys {
            let slot = (waiter.db, key.clone());
            if let Some(queue) = self.by_key.get_mut(&slot) {
                queue.retain(|&id| id != client_id);
                if queue.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
        Some(waiter)
    }

    /// Unregisters every waiter (a master turning into a replica unblocks everyone).
    pub fn remove_all(&mut self) -> Vec<Waiter> {
        self.by_key.clear();
        self.ready.clear();
        self.waiters.drain().map(|(_, waiter)| waiter).collect()
    }

    pub fn is_blocked(&self, client_id: u64) -> bool {
        self.waiters.contains_key(&client_id)
    }

    /// Notes that `key` may now have data for a waiter. Cheap when nobody waits.
    #[inline]
    pub fn signal_ready(&mut self, db: usize, key: &[u8]) {
        if self.waiters.is_empty() {
            return;
        }
        let slot = (db, Bstr::new(key));
        if self.by_key.contains_key(&slot) && !self.ready.contains(&slot) {
            self.ready.push(slot);
        }
    }

    /// Takes the keys signalled since the last call.
    pub fn take_ready(&mut self) -> Vec<(usize, Bstr)> {
        std::mem::take(&mut self.ready)
    }

    /// The first waiter queued on `key`, if any.
    pub fn first_waiter(&self, db: usize, key: &Bstr) -> Option<&Waiter> {
        let queue = self.by_key.get(&(db, key.clone()))?;
        queue.front().and_then(|id| self.waiters.get(id))
    }

    /// Keys moved between databases (SWAPDB, FLUSH*) may now have data or not: signal all
    /// keys waited on in `db`.
    pub fn signal_all_in_db(&mut self, db: usize) {
        let slots: Vec<_> = self
            .by_key
            .keys()
            .filter(|(d, _)| *d == db)
            .cloned()
            .collect();
        for slot in slots {
            if !self.ready.contains(&slot) {
                self.ready.push(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(id: u64, keys: &[&str]) -> Waiter {
        Waiter {
            client_id: id,
            core: 0,
            conn: id,
            db: 0,
            keys: keys.iter().map(|k| Bstr::from(*k)).collect(),
            op: BlockOp::ListPop {
                from_left: true,
                count: None,
            },
            resp: Resp::V2,
        }
    }

    #[test]
    fn waiters_on_a_key_are_served_in_arrival_order() {
        let mut registry = Registry::default();
        registry.block(waiter(1, &["a", "b"]));
        registry.block(waiter(2, &["a"]));
        assert_eq!(
            registry
                .first_waiter(0, &Bstr::from("a"))
                .unwrap()
                .client_id,
            1
        );
        registry.remove(1);
        assert_eq!(
            registry
                .first_waiter(0, &Bstr::from("a"))
                .unwrap()
                .client_id,
            2
        );
        assert!(registry.first_waiter(0, &Bstr::from("b")).is_none());
        assert_eq!(registry.key_count(), 1);
    }

    #[test]
    fn ready_is_signalled_once_and_only_for_awaited_keys() {
        let mut registry = Registry::default();
        registry.signal_ready(0, b"a");
        assert!(registry.take_ready().is_empty());
        registry.block(waiter(1, &["a"]));
        registry.signal_ready(0, b"a");
        registry.signal_ready(0, b"a");
        registry.signal_ready(0, b"zzz");
        assert_eq!(registry.take_ready(), vec![(0, Bstr::from("a"))]);
    }
}
