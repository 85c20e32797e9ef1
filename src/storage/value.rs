//! The values a key can hold: Redis' five core types.
//!
//! Containers are boxed so a [`Value`] stays 24 bytes, the size of its most common variant,
//! a short string kept inline; that keeps the keyspace's entry array dense.

use super::bstr::Bstr;
use super::list::List;
use super::zset::ZSet;

/// Hasher used by every hash table in the keyspace: fast, and seeded per process so clients
/// cannot choose colliding keys.
pub type Hasher = foldhash::fast::RandomState;
/// Insertion-ordered hash map with O(1) random access by position (used for SCAN cursors and
/// random sampling: RANDOMKEY, SRANDMEMBER, the active expire cycle).
pub type Map<K, V> = indexmap::IndexMap<K, V, Hasher>;
/// Insertion-ordered hash set with O(1) random access by position.
pub type Set<K> = indexmap::IndexSet<K, Hasher>;

/// A Redis value.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string (also integers and floats, which Redis stores as strings).
    Str(Bstr),
    /// A list: O(1) push and pop at both ends, stored in bounded chunks (see [`List`]).
    List(Box<List>),
    /// A hash of fields to values.
    Hash(Box<Map<Bstr, Bstr>>),
    /// A set of unique members.
    Set(Box<Set<Bstr>>),
    /// A sorted set: unique members ordered by score, then member.
    ZSet(Box<ZSet>),
}

/// The error text Redis sends when a command meets a key of the wrong type.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

impl Value {
    /// The name `TYPE` reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    pub fn new_list() -> Value {
        Value::List(Box::default())
    }

    pub fn new_hash() -> Value {
        Value::Hash(Box::default())
    }

    pub fn new_set() -> Value {
        Value::Set(Box::default())
    }

    pub fn new_zset() -> Value {
        Value::ZSet(Box::default())
    }

    /// True for a container left with no elements; Redis deletes such keys.
    pub fn is_empty_container(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }

    /// The encoding `OBJECT ENCODING` reports, using Redis 7.0's default thresholds
    /// (`*-max-listpack-entries` 128, `*-max-listpack-value` 64, `set-max-intset-entries` 512).
    pub fn encoding_name(&self) -> &'static str {
        const LISTPACK_ENTRIES_MAX: usize = 128;
        const LISTPACK_VALUE_MAX: usize = 64;
        const INTSET_ENTRIES_MAX: usize = 512;
        match self {
            Value::Str(s) => {
                if s.len() <= 20 && crate::protocol::parser::parse_i64(s).is_some() {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            // Redis 7.0 always reports quicklist (listpack-encoded lists arrived in 7.2).
            Value::List(_) => "quicklist",
            Value::Hash(h) => {
                if h.len() <= LISTPACK_ENTRIES_MAX
                    && h.iter().all(|(f, v)| {
                        f.len() <= LISTPACK_VALUE_MAX && v.len() <= LISTPACK_VALUE_MAX
                    })
                {
                    "listpack"
                } else {
                    "hashtable"
                }
            }
            Value::Set(s) => {
                if s.len() <= INTSET_ENTRIES_MAX
                    && s.iter()
                        .all(|m| crate::protocol::parser::parse_i64(m).is_some())
                {
                    "intset"
                } else {
                    "hashtable"
                }
            }
            Value::ZSet(z) => {
                if z.len() <= LISTPACK_ENTRIES_MAX
                    && z.iter().all(|(m, _)| m.len() <= LISTPACK_VALUE_MAX)
                {
                    "listpack"
                } else {
                    "skiplist"
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_as_small_as_an_inline_string() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }
}
