//! `DEBUG DIGEST` and `DEBUG DIGEST-VALUE`: a SHA-1 based fingerprint of the dataset that is
//! bit-for-bit the one Redis 7.0 computes, so a ringkv instance and a redis-server holding the
//! same data report the same 40 hex characters (handy to check replication and persistence).
//!
//! Two primitives build every digest, both working on a 20-byte accumulator:
//! * *xor*: `acc ^= SHA1(data)`. Commutative, so it folds unordered collections (the keys of
//!   a database, set members, hash fields, sorted-set members) independently of their order.
//! * *mix*: `acc = SHA1(acc ^ SHA1(data))`. Order-sensitive, used for sequences (list
//!   elements) and to chain the parts of one record (key, type, payload).
//!
//! Per key: start from zero, mix the key bytes, then the value's digest (see
//! [`value_digest`]), and xor the result into the dataset accumulator. Each non-empty
//! database first mixes its index (a big-endian `u32`) into the dataset accumulator.
//!
//! Per value: mix the Redis type code as a big-endian `u32` (string 0, list 1, set 2, zset 3,
//! hash 4), then the payload:
//! * string: mix its bytes;
//! * list: mix each element, head to tail;
//! * set: xor each member;
//! * hash: for each field, a fresh accumulator gets the field then the value mixed in, and is
//!   xored (as 20 raw bytes, hashed again by the xor step) into the value digest;
//! * sorted set: as a hash, with the member and its score printed by `%.17g`.
//!
//! If the key has a time to live the bytes `!!expire!!` are xored in; the expiry time itself
//! does not take part. The digest therefore never depends on an encoding (listpack, intset,
//! hashtable, skiplist): integers are hashed in their decimal text form, which is how ringkv
//! stores them anyway. (One storage quirk shows through: a listpack-encoded Redis zset stores a
//! `-0` score as the integer 0, so it hashes as "0", while a skiplist keeps -0 and hashes "-0".
//! Here the score is hashed exactly as stored; normalising -0 is the sorted-set code's job.)

use sha1_smol::Sha1;

use super::db::Db;
use super::value::Value;
use crate::protocol::reply::format_double;

/// A 20-byte digest accumulator.
pub type Digest = [u8; 20];

/// Redis' `OBJ_*` type codes, which take part in the digest.
const TYPE_STRING: u32 = 0;
const TYPE_LIST: u32 = 1;
const TYPE_SET: u32 = 2;
const TYPE_ZSET: u32 = 3;
const TYPE_HASH: u32 = 4;

/// Marker xored into the digest of a key that has a time to live.
const EXPIRE_MARKER: &[u8] = b"!!expire!!";

fn sha1(data: &[u8]) -> Digest {
    Sha1::from(data).digest().bytes()
}

/// `acc ^= SHA1(data)`: order-independent accumulation.
fn xor_in(acc: &mut Digest, data: &[u8]) {
    let hash = sha1(data);
    for (a, h) in acc.iter_mut().zip(hash) {
        *a ^= h;
    }
}

/// `acc = SHA1(acc ^ SHA1(data))`: order-dependent accumulation.
fn mix_in(acc: &mut Digest, data: &[u8]) {
    xor_in(acc, data);
    *acc = sha1(acc);
}

/// Folds one (field, value) pair of a hash or (member, score) pair of a sorted set into `acc`.
fn xor_pair(acc: &mut Digest, first: &[u8], second: &[u8]) {
    let mut pair = [0u8; 20];
    mix_in(&mut pair, first);
    mix_in(&mut pair, second);
    xor_in(acc, &pair);
}

/// Mixes the digest of `value` into `acc` (without any key), plus the expire marker when
/// `has_expire`. This is Redis' per-object step, shared by both DEBUG subcommands.
fn mix_value(acc: &mut Digest, value: &Value, has_expire: bool) {
    let type_code = match value {
        Value::Str(_) => TYPE_STRING,
        Value::List(_) => TYPE_LIST,
        Value::Set(_) => TYPE_SET,
        Value::ZSet(_) => TYPE_ZSET,
        Value::Hash(_) => TYPE_HASH,
    };
    mix_in(acc, &type_code.to_be_bytes());
    match value {
        Value::Str(s) => mix_in(acc, s),
        Value::List(list) => {
            for element in list.iter() {
                mix_in(acc, element);
            }
        }
        Value::Set(set) => {
            for member in set.iter() {
                xor_in(acc, member);
            }
        }
        Value::Hash(hash) => {
            for (field, val) in hash.iter() {
                xor_pair(acc, field, val);
            }
        }
        Value::ZSet(zset) => {
            for (member, score) in zset.iter() {
                xor_pair(acc, member, format_double(score).as_bytes());
            }
        }
    }
    if has_expire {
        xor_in(acc, EXPIRE_MARKER);
    }
}

/// The digest `DEBUG DIGEST-VALUE` reports for a key holding `value`: the value alone (the
/// key name is not part of it), including the expire marker when the key has a time to live.
/// A missing key reports all zeros, `[0; 20]`.
pub fn value_digest(value: &Value, has_expire: bool) -> Digest {
    let mut acc = [0u8; 20];
    mix_value(&mut acc, value, has_expire);
    acc
}

/// `DEBUG DIGEST-VALUE` for one key of `db`, as the 40 hex characters of its status reply.
/// Like Redis, it looks the key up without expiring it (a logically expired key still has
/// a digest); a missing key gives 40 zeros.
pub fn key_value_digest_hex(db: &Db, key: &[u8]) -> String {
    match db.peek(key) {
        Some(value) => to_hex(&value_digest(value, db.expire_at(key).is_some())),
        None => to_hex(&[0u8; 20]),
    }
}

/// The digest of one key and its value, as it is xored into the dataset digest.
pub fn key_digest(key: &[u8], value: &Value, has_expire: bool) -> Digest {
    let mut acc = [0u8; 20];
    mix_in(&mut acc, key);
    mix_value(&mut acc, value, has_expire);
    acc
}

/// The raw 20 bytes of `DEBUG DIGEST` over `dbs` (index in the slice = database number).
/// All zeros when every database is empty.
pub fn dataset_digest_bytes(dbs: &[Db]) -> Digest {
    let mut total = [0u8; 20];
    for (index, db) in dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        mix_in(&mut total, &(index as u32).to_be_bytes());
        for (key, value) in db.iter() {
            let entry = key_digest(key, value, db.expire_at(key).is_some());
            xor_in(&mut total, &entry);
        }
    }
    total
}

/// `DEBUG DIGEST`: 40 lowercase hex characters; forty `0`s for an empty dataset. Expired keys
/// not yet deleted count, as in Redis.
pub fn dataset_digest(dbs: &[Db]) -> String {
    to_hex(&dataset_digest_bytes(dbs))
}

/// Lowercase hex of a digest (`%02x` per byte).
pub fn to_hex(digest: &Digest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(40);
    for &b in digest {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0x0f) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    //! Golden values were read from a real redis-server 7.0.15 (`DEBUG DIGEST`,
    //! `DEBUG DIGEST-VALUE`) after loading the same data with redis-cli.

    use super::super::bstr::Bstr;
    use super::super::list::List;
    use super::super::value::{Map, Set};
    use super::super::zset::ZSet;
    use super::*;

    fn s(text: &str) -> Value {
        Value::Str(Bstr::new(text.as_bytes()))
    }

    fn list(items: &[String]) -> Value {
        let list: List = items.iter().map(|i| Bstr::new(i.as_bytes())).collect();
        Value::List(Box::new(list))
    }

    fn hash(pairs: &[(String, String)]) -> Value {
        let mut map = Map::default();
        for (f, v) in pairs {
            map.insert(Bstr::new(f.as_bytes()), Bstr::new(v.as_bytes()));
        }
        Value::Hash(Box::new(map))
    }

    fn set(members: &[String]) -> Value {
        let mut out = Set::default();
        for m in members {
            out.insert(Bstr::new(m.as_bytes()));
        }
        Value::Set(Box::new(out))
    }

    fn zset(pairs: &[(f64, String)]) -> Value {
        let mut z = ZSet::default();
        for (score, member) in pairs {
            z.insert(member.as_bytes(), *score);
        }
        Value::ZSet(Box::new(z))
    }

    fn strs(items: &[&str]) -> Vec<String> {
        items.iter().map(|i| i.to_string()).collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// The data set loaded into redis-server with redis-cli for the golden values below.
    fn dataset() -> Vec<Db> {
        let mut dbs: Vec<Db> = (0..16).map(|_| Db::default()).collect();

        let db0 = &mut dbs[0];
        db0.set(b"str", s("hello world"));
        db0.set(b"int", s("12345"));
        db0.set(b"negint", s("-42"));
        db0.set(b"empty", s(""));
        db0.set(
            b"list",
            list(&strs(&["a", "b", "c", "1", "2", "3", "", "x y"])),
        );
        db0.set(
            b"biglist",
            list(&(0..200).map(|i| format!("item:{i}")).collect::<Vec<_>>()),
        );
        db0.set(
            b"hsmall",
            hash(&pairs(&[("f1", "v1"), ("f2", "v2"), ("n", "10")])),
        );
        db0.set(
            b"hbig",
            hash(
                &(0..200)
                    .map(|i| (format!("field:{i}"), format!("value:{i}")))
                    .collect::<Vec<_>>(),
            ),
        );
        db0.set(b"sint", set(&strs(&["1", "2", "3", "-5", "100"])));
        db0.set(b"sstr", set(&strs(&["a", "b", "c"])));
        db0.set(
            b"sbig",
            set(&(0..600).map(|i| (i * 7).to_string()).collect::<Vec<_>>()),
        );
        db0.set(
            b"zsmall",
            zset(&[
                (1.5, "a".into()),
                (-2.25, "b".into()),
                (f64::INFINITY, "c".into()),
                (f64::NEG_INFINITY, "d".into()),
                (0.0, "e".into()),
                (3.0, "42".into()),
                (0.1, "f".into()),
            ]),
        );
        db0.set(
            b"zbig",
            zset(
                &(0..200)
                    .map(|i| {
                        (
                            format!("{}.{}", i / 10, i % 10).parse().unwrap(),
                            format!("m{i}"),
                        )
                    })
                    .collect::<Vec<_>>(),
            ),
        );
        db0.set(b"exp", s("v"));
        db0.set_expire_at(b"exp", 4_102_444_800_000);
        db0.set(b"explist", list(&strs(&["x", "y"])));
        db0.set_expire_at(b"explist", 4_102_444_800_123);

        dbs[1].set(b"str", s("hello world"));

        dbs[2].set(
            b"hlong",
            hash(&[("f".into(), "v".repeat(100)), ("g".into(), "7".into())]),
        );

        let db3 = &mut dbs[3];
        db3.set(b"k", s("v"));
        db3.set(b"zexp", zset(&[(1.0, "one".into()), (2.0, "two".into())]));
        db3.set_expire_at(b"zexp", 4_102_444_800_000);

        dbs
    }

    fn value_hex(db: &Db, key: &str) -> String {
        key_value_digest_hex(db, key.as_bytes())
    }

    #[test]
    fn empty_dataset_is_all_zeros() {
        let dbs: Vec<Db> = (0..16).map(|_| Db::default()).collect();
        assert_eq!(
            dataset_digest(&dbs),
            "0000000000000000000000000000000000000000"
        );
        assert_eq!(
            dataset_digest(&[]),
            "0000000000000000000000000000000000000000"
        );
    }

    #[test]
    fn dataset_matches_redis() {
        let dbs = dataset();
        assert_eq!(
            dataset_digest(&dbs),
            "25fb0c016b73e66be7443dbaf61175264619f5aa"
        );
    }

    #[test]
    fn digest_values_match_redis() {
        let dbs = dataset();
        let golden = [
            ("str", "19bfad8f2007c7c5d8559839d8798339f62ccc52"),
            ("int", "e1cf90774e995ae03de66e8109dc5cb9d9c2dc83"),
            ("negint", "ce70a5674f228eaf3e2c2d01f6152e36f7e792a7"),
            ("empty", "8b3447c33a834b810e3e181b6fd6a2ee1020921c"),
            ("list", "776beec35ebadbf91fa433f67d1462c08bdbc555"),
            ("biglist", "4956727676be36ea47adb4de047a8c3932bb5ca7"),
            ("hsmall", "736d254745065f23a0625cf4c1581b4b628aaea3"),
            ("hbig", "1b736087e52049c1178b33d06998db7fc0b4288e"),
            ("sint", "6f42f496424012b2c5a66fc538bcfade595ffd8e"),
            ("sstr", "593c2414786d75446e97f4ea5d4b731f3313da72"),
            ("sbig", "8655ac659a67ec4eaba16546f38bbbca1a4a56b7"),
            ("zsmall", "96a763d61d3fa00daff0236df1a22dd1c9b8281e"),
            ("zbig", "2dd7c25ce8c2b897e4fb80e89a6353121b7d0017"),
            ("exp", "311b17018163335616e089f6b951c82c477335ac"),
            ("explist", "4534b4cb138483adb1dbdb57b605180cfad50c3f"),
            ("missing", "0000000000000000000000000000000000000000"),
        ];
        for (key, want) in golden {
            assert_eq!(value_hex(&dbs[0], key), want, "DEBUG DIGEST-VALUE {key}");
        }
        assert_eq!(
            value_hex(&dbs[1], "str"),
            "19bfad8f2007c7c5d8559839d8798339f62ccc52"
        );
        assert_eq!(
            value_hex(&dbs[2], "hlong"),
            "a332a2460e1a11f856c22f6f176d0f30f4870e32"
        );
        assert_eq!(
            value_hex(&dbs[3], "k"),
            "d79ee9fe5d5ad902d7f6620efc3b07b75ddd742f"
        );
        assert_eq!(
            value_hex(&dbs[3], "zexp"),
            "5333d96a1201c3f64705496565fbd43f63a1fef0"
        );
    }

    #[test]
    fn value_digest_agrees_with_key_lookup() {
        let dbs = dataset();
        let value = dbs[0].peek(b"exp").unwrap();
        assert_eq!(
            to_hex(&value_digest(value, true)),
            "311b17018163335616e089f6b951c82c477335ac"
        );
    }

    #[test]
    fn expire_time_does_not_matter_only_its_presence() {
        let mut dbs = dataset();
        let before = dataset_digest(&dbs);
        dbs[0].set_expire_at(b"exp", 4_102_444_899_999);
        assert_eq!(dataset_digest(&dbs), before);
        dbs[0].persist(b"exp");
        assert_ne!(dataset_digest(&dbs), before);
    }

    #[test]
    fn unordered_types_ignore_insertion_order_lists_do_not() {
        let a = set(&strs(&["x", "y", "z"]));
        let b = set(&strs(&["z", "x", "y"]));
        assert_eq!(value_digest(&a, false), value_digest(&b, false));
        let a = hash(&pairs(&[("f", "1"), ("g", "2")]));
        let b = hash(&pairs(&[("g", "2"), ("f", "1")]));
        assert_eq!(value_digest(&a, false), value_digest(&b, false));
        let a = list(&strs(&["x", "y"]));
        let b = list(&strs(&["y", "x"]));
        assert_ne!(value_digest(&a, false), value_digest(&b, false));
    }

    #[test]
    fn same_data_in_another_db_differs() {
        let mut first: Vec<Db> = (0..2).map(|_| Db::default()).collect();
        first[0].set(b"k", s("v"));
        let mut second: Vec<Db> = (0..2).map(|_| Db::default()).collect();
        second[1].set(b"k", s("v"));
        assert_ne!(dataset_digest(&first), dataset_digest(&second));
    }

    #[test]
    fn score_formatting_matches_redis() {
        // Subnormal, huge, integral and inexact scores, in both Redis encodings (listpack for
        // `zedge`, skiplist for `zedge2` because of a 70-byte member).
        let edge: Vec<(f64, String)> = vec![
            (1e300, "big".into()),
            (5e-324, "tiny".into()),
            (123456789012345678.0, "huge".into()),
            (-0.30000000000000004, "frac".into()),
            (0.0, "zero".into()),
        ];
        assert_eq!(
            to_hex(&value_digest(&zset(&edge), false)),
            "30b94e560d8dc6a760898f4ba727e27c9ffb9411"
        );
        let mut edge2 = edge.clone();
        edge2.push((0.0, "m".repeat(70)));
        assert_eq!(
            to_hex(&value_digest(&zset(&edge2), false)),
            "9aa9965e8443d551b9dcb447a71e7e0591ebf288"
        );
    }

    #[test]
    fn negative_zero_score_is_hashed_as_zero() {
        // A listpack-encoded Redis zset stores ZADD ... -0 as the integer 0, and so does our
        // ZSet (always: a skiplist-encoded Redis zset would keep "-0", a divergence limited to
        // zsets of more than 128 members given a -0 score). Golden from redis-server 7.0:
        // ZADD z 1 <70 x 'm'> 0 negzero.
        let normalized = zset(&[(1.0, "m".repeat(70)), (-0.0, "negzero".into())]);
        assert_eq!(
            to_hex(&value_digest(&normalized, false)),
            "e86ac2a51eb0825066af5350a255ee426d37dca2"
        );
    }
}
