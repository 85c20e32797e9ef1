//! Files and payloads made by a real redis-server 7.0 read by ringkv's decoder:
//! - `dump.rdb` written by `SAVE` after a randomized workload (every type, several databases,
//!   TTLs, compact and large encodings, integers, floats, binary) loads into fresh `Db`s with
//!   the digest redis reports (`DEBUG DIGEST`), the same keys and the same expiry times; with
//!   default thresholds, with tiny ones (so every compact encoding and PLAIN quicklist nodes
//!   occur), and with `rdbcompression no` / `rdbchecksum no`;
//! - every key's `DUMP` payload decodes to a value with redis' `DEBUG DIGEST-VALUE`;
//! - `RESTORE` into a running ringkv rebuilds redis' dataset, and its replies, errors
//!   included, are redis' own;
//! - files holding what ringkv does not support (streams, functions) are refused by name.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use ringkv::persistence::rdb::{crc64, decode, LoadOptions};
use ringkv::storage::{digest, Db};
use support::Server;

type Command = Vec<Vec<u8>>;

/// Small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn command(parts: &[&[u8]]) -> Command {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// An element or value: integers of every width, floats, text, binary, long strings
/// (compressible and not), and integer-looking text that is not canonical.
fn element(rng: &mut Rng) -> Vec<u8> {
    match rng.below(12) {
        0 | 1 => (rng.below(2001) as i64 - 1000).to_string().into_bytes(),
        2 => match rng.below(4) {
            0 => i64::MAX.to_string().into_bytes(),
            1 => i64::MIN.to_string().into_bytes(),
            _ => (rng.next() as i64).to_string().into_bytes(),
        },
        3 => format!("{}.{}", rng.below(1000) as i64 - 500, rng.below(100)).into_bytes(),
        4..=6 => format!("m{}", rng.below(300)).into_bytes(),
        7 => (0..rng.below(40)).map(|_| rng.next() as u8).collect(),
        8 => {
            let n = 65 + rng.below(150) as usize;
            let mut v = b"x".repeat(n);
            v.extend(rng.below(1000).to_string().bytes());
            v
        }
        9 if rng.below(4) == 0 => (0..300 + rng.below(3000))
            .map(|_| rng.next() as u8)
            .collect(),
        10 => ["007", "+5", "-0", "12345678901234567890", " 1", "1e3"][rng.below(6) as usize]
            .as_bytes()
            .to_vec(),
        _ => format!("value-{}", rng.below(100_000)).into_bytes(),
    }
}

fn score(rng: &mut Rng) -> Vec<u8> {
    match rng.below(8) {
        0 => b"inf".to_vec(),
        1 => b"-inf".to_vec(),
        2 => format!("{}", rng.below(1000) as f64 / 7.0 - 50.0).into_bytes(),
        3 => format!("{:e}", (rng.next() >> 11) as f64 * 1e-3).into_bytes(),
        _ => (rng.below(200) as i64 - 100).to_string().into_bytes(),
    }
}

/// A randomized workload over `databases` databases: every type, small and big containers,
/// TTLs (all at least an hour away, so nothing expires before SAVE), deletions.
fn workload(seed: u64, databases: u64, ops_per_db: usize) -> Vec<Command> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let future = now_ms() + 3_600_000;
    for db in 0..databases {
        out.push(command(&[b"SELECT", db.to_string().as_bytes()]));
        for _ in 0..ops_per_db {
            let n = rng.below(60);
            let key = |prefix: &str| -> Vec<u8> {
                let mut k = format!("{prefix}:{n}").into_bytes();
                if n.is_multiple_of(13) {
                    k.extend([0u8, 0xff, b'\n']);
                }
                k
            };
            let cmd = match rng.below(20) {
                0..=2 => command(&[b"SET", &key("s"), &element(&mut rng)]),
                3 => command(&[b"INCRBY", &key("n"), &element_int(&mut rng)]),
                4 | 5 => {
                    let mut c = command(&[b"RPUSH", &key("l")]);
                    for _ in 0..1 + rng.below(4) {
                        c.push(element(&mut rng));
                    }
                    c
                }
                6 => command(&[b"LPUSH", &key("l"), &element(&mut rng)]),
                7 | 8 => command(&[b"HSET", &key("h"), &element(&mut rng), &element(&mut rng)]),
                9 => command(&[b"SADD", &key("set"), &element(&mut rng), &element(&mut rng)]),
                10 => command(&[b"SADD", &key("ints"), &element_int(&mut rng)]),
                11 | 12 => command(&[b"ZADD", &key("z"), &score(&mut rng), &element(&mut rng)]),
                13 => {
                    let prefix = ["s", "l", "h", "set", "ints", "z"][rng.below(6) as usize];
                    let at = future + rng.below(86_400_000);
                    command(&[b"PEXPIREAT", &key(prefix), at.to_string().as_bytes()])
                }
                14 => {
                    let prefix = ["s", "h", "z"][rng.below(3) as usize];
                    command(&[b"EXPIRE", &key(prefix), b"100000"])
                }
                15 => command(&[b"SET", &key("s"), &element(&mut rng), b"PX", b"7200000"]),
                16 => {
                    let prefix = ["s", "l", "h", "set", "ints", "z"][rng.below(6) as usize];
                    command(&[b"DEL", &key(prefix)])
                }
                17 => command(&[b"HDEL", &key("h"), &element(&mut rng)]),
                18 => command(&[b"SREM", &key("set"), &element(&mut rng)]),
                _ => command(&[b"LPOP", &key("l")]),
            };
            out.push(cmd);
        }
        // Containers beyond the default compact thresholds, in every database.
        for i in 0..600u64 {
            let text = i.to_string();
            let t = text.as_bytes();
            out.push(command(&[b"RPUSH", b"big:list", t, &element(&mut rng)]));
            out.push(command(&[b"SADD", b"big:ints", t]));
            out.push(command(&[b"SADD", b"big:set", &element(&mut rng)]));
            if i < 300 {
                out.push(command(&[b"HSET", b"big:hash", t, &element(&mut rng)]));
                out.push(command(&[b"ZADD", b"big:zset", &score(&mut rng), t]));
            }
        }
        out.push(command(&[b"SET", b"big:string", &b"abc".repeat(20_000)]));
        out.push(command(&[b"HSET", b"wide", b"f", &b"w".repeat(100)]));
    }
    out
}

fn element_int(rng: &mut Rng) -> Vec<u8> {
    (rng.below(2001) as i64 - 1000).to_string().into_bytes()
}

fn run(con: &mut redis::Connection, args: &[Vec<u8>]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(std::str::from_utf8(&args[0]).unwrap());
    for arg in &args[1..] {
        cmd.arg(&arg[..]);
    }
    cmd.query(con)
}

fn apply(con: &mut redis::Connection, commands: &[Command]) {
    for c in commands {
        // No command of the workload can fail (each key prefix holds one type).
        run(con, c).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(&c[0])));
    }
}

fn select(con: &mut redis::Connection, db: usize) {
    let _: () = redis::cmd("SELECT").arg(db).query(con).unwrap();
}

fn keys(con: &mut redis::Connection) -> Vec<Vec<u8>> {
    redis::cmd("KEYS").arg("*").query(con).unwrap()
}

fn dataset_digest(con: &mut redis::Connection) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(con).unwrap()
}

fn value_digest(con: &mut redis::Connection, key: &[u8]) -> String {
    let digests: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg(key)
        .query(con)
        .unwrap();
    digests.into_iter().next().unwrap()
}

fn encoding(con: &mut redis::Connection, key: &[u8]) -> String {
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query(con)
        .unwrap()
}

fn pexpiretime(con: &mut redis::Connection, key: &[u8]) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
}

/// SAVEs on `redis`, loads its dump.rdb with ringkv's decoder and checks digest, key count,
/// expiry times, aux fields and DUMP payloads. Returns the encodings redis used and the file.
fn check_saved_file(redis: &Server, databases: usize) -> (Vec<String>, Vec<u8>) {
    let mut con = redis.client();
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let bytes = std::fs::read(redis.dir.path().join("dump.rdb")).expect("dump.rdb");
    let mut dbs: Vec<Db> = (0..16).map(|_| Db::default()).collect();
    let options = LoadOptions {
        now_ms: now_ms(),
        drop_expired: true,
        key_load_delay_us: 0,
        skip_checksum: false,
    };
    let loaded = decode::load(&bytes, &mut dbs, &options)
        .unwrap_or_else(|e| panic!("redis' dump.rdb did not load: {e}"));
    assert_eq!(loaded.version, 10);
    assert_eq!(loaded.redis_ver.as_deref(), Some("7.0.15"));
    assert!(loaded.ctime.is_some());
    assert_eq!(loaded.consumed, bytes.len());
    assert_eq!(loaded.expired_skipped, 0);
    let theirs = dataset_digest(&mut con);
    assert_ne!(theirs, "0".repeat(40));
    assert_eq!(
        digest::dataset_digest(&dbs),
        theirs,
        "DEBUG DIGEST of the loaded file differs from redis-server's"
    );

    let mut encodings = Vec::new();
    let mut total = 0;
    for (index, db) in dbs.iter().enumerate().take(databases) {
        select(&mut con, index);
        let their_keys = keys(&mut con);
        assert_eq!(db.len(), their_keys.len(), "key count of db {index}");
        total += their_keys.len() as u64;
        for key in their_keys {
            let at = pexpiretime(&mut con, &key);
            let ours = db.expire_at(&key).map_or(-1, |ms| ms as i64);
            assert_eq!(
                ours,
                at,
                "expiry of {:?} in db {index}",
                String::from_utf8_lossy(&key)
            );
            encodings.push(encoding(&mut con, &key));
            // The key's DUMP payload decodes to the same value.
            let payload: Vec<u8> = redis::cmd("DUMP").arg(&key[..]).query(&mut con).unwrap();
            let value = decode::restore_payload(&payload)
                .unwrap_or_else(|e| panic!("DUMP of {:?}: {e}", String::from_utf8_lossy(&key)));
            assert_eq!(
                digest::to_hex(&digest::value_digest(&value, at != -1)),
                value_digest(&mut con, &key),
                "DIGEST-VALUE of the DUMP of {:?} ({})",
                String::from_utf8_lossy(&key),
                encodings.last().unwrap()
            );
        }
    }
    assert_eq!(loaded.keys, total);
    assert!(total > 300, "only {total} keys");
    encodings.sort();
    encodings.dedup();
    (encodings, bytes)
}

#[test]
fn redis_rdb_with_default_thresholds_loads_with_the_same_digest() {
    let redis = Server::start_redis(&[]);
    apply(&mut redis.client(), &workload(0x5eed_0001, 3, 1500));
    let (encodings, _) = check_saved_file(&redis, 3);
    for expected in [
        "embstr",
        "int",
        "raw",
        "quicklist",
        "listpack",
        "intset",
        "hashtable",
        "skiplist",
    ] {
        assert!(
            encodings.iter().any(|e| e == expected),
            "no {expected} in {encodings:?}"
        );
    }
}

#[test]
fn redis_rdb_with_tiny_thresholds_and_plain_nodes_loads_with_the_same_digest() {
    let redis = Server::start_redis(&[
        "--hash-max-listpack-entries",
        "4",
        "--hash-max-listpack-value",
        "16",
        "--zset-max-listpack-entries",
        "4",
        "--zset-max-listpack-value",
        "16",
        "--set-max-intset-entries",
        "4",
        "--list-max-listpack-size",
        "4",
    ]);
    let mut con = redis.client();
    // Elements over 200 bytes get PLAIN quicklist nodes of their own.
    let _: () = redis::cmd("DEBUG")
        .arg("QUICKLIST-PACKED-THRESHOLD")
        .arg(200)
        .query(&mut con)
        .unwrap();
    apply(&mut con, &workload(0x5eed_0002, 4, 1500));
    let (encodings, _) = check_saved_file(&redis, 4);
    for expected in ["quicklist", "listpack", "intset", "hashtable", "skiplist"] {
        assert!(
            encodings.iter().any(|e| e == expected),
            "no {expected} in {encodings:?}"
        );
    }
}

#[test]
fn redis_rdb_without_compression_or_checksum_loads_with_the_same_digest() {
    let redis = Server::start_redis(&["--rdbcompression", "no", "--rdbchecksum", "no"]);
    apply(&mut redis.client(), &workload(0x5eed_0003, 2, 800));
    let (_, bytes) = check_saved_file(&redis, 2);
    assert_eq!(
        &bytes[bytes.len() - 8..],
        &[0u8; 8],
        "rdbchecksum no writes a zero CRC"
    );
}

#[test]
fn redis_rdb_with_a_stream_or_functions_is_refused_by_name() {
    let redis = Server::start_redis(&[]);
    let mut con = redis.client();
    let _: String = redis::cmd("XADD")
        .arg("events")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let bytes = std::fs::read(redis.dir.path().join("dump.rdb")).unwrap();
    let mut dbs: Vec<Db> = (0..16).map(|_| Db::default()).collect();
    let e = decode::load(&bytes, &mut dbs, &LoadOptions::default()).unwrap_err();
    assert!(e.reason.contains("key 'events' holds a stream"), "{e}");

    let _: i64 = redis::cmd("DEL").arg("events").query(&mut con).unwrap();
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=mylib\nredis.register_function('f', function() return 1 end)")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let bytes = std::fs::read(redis.dir.path().join("dump.rdb")).unwrap();
    let e = decode::load(&bytes, &mut dbs, &LoadOptions::default()).unwrap_err();
    assert!(
        e.reason.contains("Redis functions (FUNCTION opcode)"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// RESTORE into a running ringkv
// ---------------------------------------------------------------------------------------

#[test]
fn restore_rebuilds_redis_dataset_in_ringkv() {
    let redis = Server::start_redis(&[
        "--hash-max-listpack-entries",
        "4",
        "--zset-max-listpack-entries",
        "4",
        "--set-max-intset-entries",
        "4",
        "--list-max-listpack-size",
        "4",
    ]);
    let mut theirs = redis.client();
    let _: () = redis::cmd("DEBUG")
        .arg("QUICKLIST-PACKED-THRESHOLD")
        .arg(200)
        .query(&mut theirs)
        .unwrap();
    apply(&mut theirs, &workload(0x5eed_0004, 2, 1000));
    let ringkv = Server::start(&[]);
    let mut ours = ringkv.client();
    let mut restored = 0;
    for db in 0..2 {
        select(&mut theirs, db);
        select(&mut ours, db);
        for (i, key) in keys(&mut theirs).into_iter().enumerate() {
            let payload: Vec<u8> = redis::cmd("DUMP").arg(&key[..]).query(&mut theirs).unwrap();
            let at = pexpiretime(&mut theirs, &key);
            let mut restore = redis::cmd("RESTORE");
            restore.arg(&key[..]);
            if at < 0 {
                restore.arg(0).arg(&payload[..]);
            } else if i % 2 == 0 {
                restore.arg(at).arg(&payload[..]).arg("ABSTTL");
            } else {
                let ttl: i64 = redis::cmd("PTTL").arg(&key[..]).query(&mut theirs).unwrap();
                restore.arg(ttl).arg(&payload[..]);
            }
            let reply: String = restore.query(&mut ours).unwrap();
            assert_eq!(reply, "OK");
            if at >= 0 && i % 2 == 0 {
                assert_eq!(pexpiretime(&mut ours, &key), at);
            }
            assert_eq!(
                value_digest(&mut ours, &key),
                value_digest(&mut theirs, &key)
            );
            restored += 1;
        }
    }
    assert!(restored > 500, "only {restored} keys");
    assert_eq!(dataset_digest(&mut ours), dataset_digest(&mut theirs));
}

/// A payload with a valid footer (version 10, CRC) around `body`.
fn payload_around(body: &[u8], version: u16) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend(version.to_le_bytes());
    let crc = crc64::update(0, &out);
    out.extend(crc.to_le_bytes());
    out
}

#[test]
fn restore_replies_and_errors_are_redis_replies() {
    let redis = Server::start_redis(&[]);
    let ringkv = Server::start(&[]);
    let mut theirs = redis.client();
    let mut ours = ringkv.client();
    let _: () = redis::cmd("RPUSH")
        .arg("src")
        .arg("a")
        .arg("b")
        .query(&mut theirs)
        .unwrap();
    let p: Vec<u8> = redis::cmd("DUMP").arg("src").query(&mut theirs).unwrap();
    let _: i64 = redis::cmd("DEL").arg("src").query(&mut theirs).unwrap();
    let mut bad_crc = p.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    let mut zero_crc = p.clone();
    let n = zero_crc.len();
    zero_crc[n - 8..].fill(0);
    // Right footer, broken body: a string announcing 50 bytes that has 1 (Redis reads values
    // on into the footer, so a shorter shortfall would pass there; ringkv requires the value
    // to end where the footer starts); an empty list; a listpack hash whose header lies; a
    // type byte that is no type.
    let truncated = payload_around(&[0, 50, b'a'], 10);
    let empty_list = payload_around(&[1, 0], 10);
    let bad_listpack = payload_around(&[16, 7, 9, 0, 0, 0, 0, 0, 0xff], 10);
    let unknown_type = payload_around(&[8, 1, b'x'], 10);
    let newer = payload_around(&[0, 1, b'x'], 13);
    let past = b"1".to_vec();
    let script: Vec<Vec<&[u8]>> = vec![
        vec![b"RESTORE", b"k1", b"0", &p],
        vec![b"RESTORE", b"k1", b"0", &p],
        vec![b"RESTORE", b"k1", b"0", &p, b"REPLACE"],
        vec![b"LRANGE", b"k1", b"0", b"-1"],
        vec![b"RESTORE", b"k2", b"-1", &p],
        vec![b"RESTORE", b"k2", b"abc", &p],
        vec![b"RESTORE", b"k2", b"0", &p, b"IDLETIME", b"-1"],
        vec![b"RESTORE", b"k2", b"0", &p, b"IDLETIME", b"x"],
        vec![b"RESTORE", b"k2", b"0", &p, b"FREQ", b"256"],
        vec![b"RESTORE", b"k2", b"0", &p, b"FREQ", b"-1"],
        vec![
            b"RESTORE",
            b"k2",
            b"0",
            &p,
            b"IDLETIME",
            b"10",
            b"FREQ",
            b"5",
        ],
        vec![
            b"RESTORE",
            b"k2",
            b"0",
            &p,
            b"FREQ",
            b"5",
            b"IDLETIME",
            b"10",
        ],
        vec![b"RESTORE", b"k2", b"0", &p, b"IDLETIME"],
        vec![b"RESTORE", b"k2", b"0", &p, b"BOGUS"],
        vec![b"RESTORE", b"k2", b"0", &p, b"IDLETIME", b"100"],
        vec![b"RESTORE", b"k3", b"0", &p, b"FREQ", b"7", b"ABSTTL"],
        vec![b"RESTORE", b"k4", b"0", &bad_crc],
        vec![b"RESTORE", b"k4", b"0", &zero_crc],
        vec![b"RESTORE", b"k4", b"0", b"short"],
        vec![b"RESTORE", b"k4", b"0", &newer],
        vec![b"RESTORE", b"k4", b"0", &truncated],
        vec![b"RESTORE", b"k4", b"0", &empty_list],
        vec![b"RESTORE", b"k4", b"0", &bad_listpack],
        vec![b"RESTORE", b"k4", b"0", &unknown_type],
        vec![b"EXISTS", b"k4"],
        vec![b"RESTORE", b"k5", &past, &p, b"ABSTTL"],
        vec![b"EXISTS", b"k5"],
        vec![b"RESTORE", b"k1", &past, &p, b"ABSTTL", b"REPLACE"],
        vec![b"EXISTS", b"k1"],
        vec![b"RESTORE", b"k6", b"100000", &p],
        vec![b"TTL", b"k6"],
        vec![
            b"RESTORE", b"k7", b"0", &p, b"REPLACE", b"ABSTTL", b"REPLACE",
        ],
        vec![b"SET", b"k8", b"string"],
        vec![b"RESTORE", b"k8", b"0", &p],
        vec![b"RESTORE", b"k8", b"0", &p, b"REPLACE"],
        vec![b"TYPE", b"k8"],
        vec![b"RESTORE", b"k9"],
        vec![b"RESTORE", b"k9", b"0"],
        vec![b"DBSIZE"],
    ];
    for args in &script {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        let expected = run(&mut theirs, &args);
        let got = run(&mut ours, &args);
        // The command and key, and the argument sizes (payloads are binary).
        let shown = format!(
            "{} {:?}",
            String::from_utf8_lossy(&args[..args.len().min(2)].join(&b' ')),
            args.iter().skip(2).map(Vec::len).collect::<Vec<_>>()
        );
        match (&expected, &got) {
            (Ok(e), Ok(g)) => assert_eq!(g, e, "{shown}"),
            (Err(e), Err(g)) => assert_eq!(g.to_string(), e.to_string(), "{shown}"),
            _ => panic!("{shown}: redis {expected:?}, ringkv {got:?}"),
        }
    }
    // ringkv also reads payloads of Redis 7.2/7.4 (RDB 11 and 12), which Redis 7.0 refuses.
    let set_listpack = payload_around(&[20, 10, 10, 0, 0, 0, 1, 0, 0x81, b'a', 2, 0xff], 11);
    let reply: String = redis::cmd("RESTORE")
        .arg("k10")
        .arg(0)
        .arg(&set_listpack[..])
        .query(&mut ours)
        .unwrap();
    assert_eq!(reply, "OK");
    let members: Vec<String> = redis::cmd("SMEMBERS").arg("k10").query(&mut ours).unwrap();
    assert_eq!(members, vec!["a".to_string()]);
}
