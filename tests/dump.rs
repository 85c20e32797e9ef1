//! `DUMP` and RDB files written by ringkv, checked against a real redis-server 7.0:
//! - for every value Redis serializes deterministically, ringkv's `DUMP` payload is the same
//!   bytes as Redis' own;
//! - every payload ringkv produces is accepted by Redis' `RESTORE` and restores the same value
//!   (same `DEBUG DIGEST-VALUE`) with the same encoding;
//! - a whole file written by `encode::save` loads in redis-server with the same
//!   `DEBUG DIGEST` as ringkv computes for the data, TTLs included.

mod support;

use redis::Value as RValue;
use support::Server;

/// One test value: commands that build key `k`, and whether Redis' payload for it is
/// deterministic (hashtable-encoded hashes and sets iterate in an order of their own, and a
/// list built by LPUSH has its partial node at the head, which a file cannot express).
struct Case {
    name: &'static str,
    build: Vec<Vec<Vec<u8>>>,
    same_bytes: bool,
}

fn cmd(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

fn set(value: &[u8]) -> Vec<Vec<Vec<u8>>> {
    vec![cmd(&[b"SET", b"k", value])]
}

/// `command key arg...` with many args, split into batches of 100.
fn bulk(command: &str, args: Vec<Vec<u8>>) -> Vec<Vec<Vec<u8>>> {
    args.chunks(100)
        .map(|chunk| {
            let mut c = vec![command.as_bytes().to_vec(), b"k".to_vec()];
            c.extend(chunk.iter().cloned());
            c
        })
        .collect()
}

fn strs<I: IntoIterator<Item = String>>(items: I) -> Vec<Vec<u8>> {
    items.into_iter().map(String::into_bytes).collect()
}

fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: &'static str, build: Vec<Vec<Vec<u8>>>, same_bytes: bool| {
        cases.push(Case {
            name,
            build,
            same_bytes,
        })
    };

    // Strings: integer forms at every width boundary, non-canonical integers, LZF, raw.
    for (name, v) in [
        ("int 0", &b"0"[..]),
        ("int 1", b"1"),
        ("int -1", b"-1"),
        ("int 127", b"127"),
        ("int -128", b"-128"),
        ("int 128", b"128"),
        ("int -129", b"-129"),
        ("int 32767", b"32767"),
        ("int -32768", b"-32768"),
        ("int 32768", b"32768"),
        ("int i32 max", b"2147483647"),
        ("int i32 min", b"-2147483648"),
        ("int past i32", b"2147483648"),
        ("int below i32", b"-2147483649"),
        ("int i64 max", b"9223372036854775807"),
        ("int i64 min", b"-9223372036854775808"),
        ("past i64", b"9223372036854775808"),
        ("leading zero", b"007"),
        ("minus zero", b"-0"),
        ("plus sign", b"+1"),
        ("space", b" 1"),
        ("float text", b"1.5"),
        ("empty", b""),
        ("short", b"hello"),
        ("binary", b"\x00\xff\r\n\x01"),
        ("20 bytes", b"aaaaaaaaaaaaaaaaaaaa"),
        ("21 bytes", b"aaaaaaaaaaaaaaaaaaaaa"),
    ] {
        add(name, set(v), true);
    }
    add("compressible 100", set(&b"ab".repeat(50)), true);
    let text: String = (0..400).map(|i| format!("user:{i}:name ")).collect();
    add("compressible text 5K", set(text.as_bytes()), true);
    add("incompressible 100", set(&noise(100, 1)), true);
    add("incompressible 70000", set(&noise(70_000, 2)), true);
    add(
        "compressible 100000",
        set(&b"0123456789".repeat(10_000)),
        true,
    );

    // Lists (RPUSH order: node layout is determined by the elements).
    add(
        "list small",
        bulk(
            "RPUSH",
            strs(["a", "b", "c", "1", "-7", "300"].map(String::from)),
        ),
        true,
    );
    add(
        "list ints at every listpack width",
        bulk(
            "RPUSH",
            strs(
                [
                    0i64,
                    127,
                    128,
                    -1,
                    4095,
                    -4096,
                    4096,
                    32767,
                    -32768,
                    32768,
                    8388607,
                    -8388608,
                    8388608,
                    2147483647,
                    -2147483648,
                    2147483648,
                    i64::MAX,
                    i64::MIN,
                ]
                .iter()
                .map(|v| v.to_string()),
            ),
        ),
        true,
    );
    add(
        "list many nodes",
        bulk("RPUSH", strs((0..5000).map(|i| format!("element-{i}")))),
        true,
    );
    add(
        "list sized elements",
        bulk(
            "RPUSH",
            [
                1usize, 63, 64, 127, 128, 4095, 4096, 5000, 8000, 9000, 20_000, 3,
            ]
            .iter()
            .map(|&n| noise(n, n as u64))
            .collect(),
        ),
        true,
    );
    // A node of 7 + 4004 bytes takes a 4173-byte element (4011 + 4173 + 8 = 8192, the limit)
    // but not a 4174-byte one.
    add(
        "list node fills to the limit",
        bulk("RPUSH", vec![noise(4000, 5), noise(4173, 6)]),
        true,
    );
    add(
        "list node one past the limit",
        bulk("RPUSH", vec![noise(4000, 5), noise(4174, 6)]),
        true,
    );
    add(
        "list compressible nodes",
        bulk(
            "RPUSH",
            strs((0..3000).map(|i| format!("{}", i % 10).repeat(30))),
        ),
        true,
    );
    add(
        "list by lpush",
        bulk("LPUSH", strs((0..3000).map(|i| format!("x{i}")))),
        false,
    );

    // Hashes.
    add(
        "hash listpack",
        bulk(
            "HSET",
            strs(
                [
                    "name",
                    "ringkv",
                    "n",
                    "42",
                    "neg",
                    "-5000",
                    "big",
                    "123456789012",
                    "e",
                    "",
                ]
                .map(String::from),
            ),
        ),
        true,
    );
    add(
        "hash listpack 128 fields",
        bulk(
            "HSET",
            strs((0..128).flat_map(|i| [format!("f{i}"), format!("{}", i * 1000)])),
        ),
        true,
    );
    add(
        "hash hashtable by count",
        bulk(
            "HSET",
            strs((0..129).flat_map(|i| [format!("f{i}"), format!("v{i}")])),
        ),
        false,
    );
    add(
        "hash hashtable by size",
        bulk(
            "HSET",
            vec![b"f".to_vec(), vec![b'v'; 65], b"g".to_vec(), b"1".to_vec()],
        ),
        false,
    );

    // Sets.
    add(
        "intset 16",
        bulk(
            "SADD",
            strs(["3", "1", "2", "-5", "32767"].map(String::from)),
        ),
        true,
    );
    add(
        "intset 32",
        bulk("SADD", strs(["1", "100000", "-100000"].map(String::from))),
        true,
    );
    add(
        "intset 64",
        bulk(
            "SADD",
            strs(["1", "9223372036854775807", "-9223372036854775808"].map(String::from)),
        ),
        true,
    );
    add(
        "intset 512",
        bulk("SADD", strs((0..512).map(|i| (i * 7 - 1000).to_string()))),
        true,
    );
    add(
        "set hashtable by count",
        bulk("SADD", strs((0..513).map(|i| i.to_string()))),
        false,
    );
    add(
        "set hashtable strings",
        bulk("SADD", strs(["a", "b", "1"].map(String::from))),
        false,
    );

    // Sorted sets: listpack (ints and floats as scores) and skiplist (deterministic order).
    add(
        "zset listpack",
        bulk(
            "ZADD",
            strs(
                [
                    ("1", "one"),
                    ("1.5", "one-and-half"),
                    ("0.1", "tenth"),
                    ("-2.25", "neg"),
                    ("1e300", "huge"),
                    ("inf", "top"),
                    ("-inf", "bottom"),
                    ("3", "three"),
                    ("-0", "zero"),
                    ("4611686018427387904", "two-62"),
                    ("4611686018427387905", "past-two-62"),
                    ("9007199254740993", "two-53"),
                    ("-4611686018427387904", "minus-two-62"),
                    ("123456789", "123"),
                    ("1e-300", "tiny"),
                    ("100000", "int-member-next"),
                    ("5", "77"),
                ]
                .iter()
                .flat_map(|(s, m)| [s.to_string(), m.to_string()]),
            ),
        ),
        true,
    );
    add(
        "zset skiplist",
        bulk(
            "ZADD",
            strs((0..300).flat_map(|i| [format!("{}.25", i % 50), format!("member:{i}")])),
        ),
        true,
    );
    add(
        "zset skiplist by member size",
        bulk(
            "ZADD",
            vec![
                b"1".to_vec(),
                vec![b'm'; 65],
                b"2.5".to_vec(),
                b"x".to_vec(),
            ],
        ),
        true,
    );
    cases
}

fn run_bytes(con: &mut redis::Connection, parts: &[Vec<u8>]) -> redis::RedisResult<RValue> {
    let mut c = redis::cmd(std::str::from_utf8(&parts[0]).unwrap());
    for p in &parts[1..] {
        c.arg(&p[..]);
    }
    c.query(con)
}

fn dump(con: &mut redis::Connection, key: &str) -> Option<Vec<u8>> {
    match redis::cmd("DUMP").arg(key).query(con).expect("DUMP") {
        RValue::BulkString(b) => Some(b),
        RValue::Nil => None,
        other => panic!("DUMP replied {other:?}"),
    }
}

fn text(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<String>(con)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn dump_payloads_match_redis_and_restore_there() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut ours = ringkv.client();
    let mut theirs = redis.client();
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in cases() {
        for con in [&mut ours, &mut theirs] {
            run_bytes(con, &[b"DEL".to_vec(), b"k".to_vec()]).unwrap();
            run_bytes(con, &[b"DEL".to_vec(), b"r".to_vec()]).unwrap();
            for c in &case.build {
                run_bytes(con, c).unwrap_or_else(|e| panic!("{}: {c:?}: {e}", case.name));
            }
        }
        let our_payload = dump(&mut ours, "k").expect("ringkv DUMP of an existing key");
        let their_payload = dump(&mut theirs, "k").expect("redis DUMP of an existing key");
        if case.same_bytes && our_payload != their_payload {
            failures.push(format!(
                "{}: payloads differ\n  ringkv {}\n  redis  {}",
                case.name,
                hex(&our_payload[..our_payload.len().min(200)]),
                hex(&their_payload[..their_payload.len().min(200)])
            ));
            continue;
        }
        compared += usize::from(case.same_bytes);
        // Redis must accept ringkv's payload and get the same value with the same encoding.
        let restored = redis::cmd("RESTORE")
            .arg("r")
            .arg(0)
            .arg(&our_payload[..])
            .query::<String>(&mut theirs);
        if let Err(e) = restored {
            failures.push(format!(
                "{}: redis refused ringkv's payload: {e}",
                case.name
            ));
            continue;
        }
        let digests: Vec<String> = redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg("k")
            .arg("r")
            .query(&mut theirs)
            .expect("DEBUG DIGEST-VALUE");
        let (digest_k, digest_r) = (&digests[0], &digests[1]);
        if digest_k != digest_r {
            failures.push(format!("{}: restored value differs (digest)", case.name));
        }
        let enc_k = text(&mut theirs, &["OBJECT", "ENCODING", "k"]);
        let enc_r = text(&mut theirs, &["OBJECT", "ENCODING", "r"]);
        if enc_k != enc_r {
            failures.push(format!(
                "{}: restored as {enc_r}, redis built {enc_k}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        compared > 40,
        "only {compared} payloads were compared byte for byte"
    );

    // A missing key is nil on both.
    assert_eq!(dump(&mut ours, "missing"), None);
    assert_eq!(dump(&mut theirs, "missing"), None);
}

#[test]
fn dump_follows_rdbcompression() {
    let ringkv = Server::start(&["--rdbcompression", "no"]);
    let redis = Server::start_redis(&["--rdbcompression", "no"]);
    let value = "ab".repeat(50);
    let mut payloads = Vec::new();
    for server in [&ringkv, &redis] {
        let mut con = server.client();
        text(&mut con, &["SET", "k", &value]);
        payloads.push(dump(&mut con, "k").unwrap());
    }
    assert_eq!(payloads[0], payloads[1]);
    // Raw form: type 0, 14-bit length 100, the bytes, version, CRC.
    assert_eq!(&payloads[0][..3], &[0, 0x40, 100]);
    assert_eq!(payloads[0].len(), 3 + 100 + 2 + 8);
}

#[test]
fn dump_is_a_read_command() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut ours = ringkv.client();
    let mut theirs = redis.client();
    support::assert_same_replies(
        &mut ours,
        &mut theirs,
        &[&["SET", "k", "v"], &["DUMP"], &["DUMP", "k", "extra"]],
    );
    // Name, arity, flags, key positions and ACL categories as Redis lists them (ringkv does
    // not report command tips, so the rest of the entry is not compared).
    let head = |con: &mut redis::Connection| match support::run(con, &["COMMAND", "INFO", "DUMP"]) {
        Ok(RValue::Array(mut entries)) => match entries.remove(0) {
            RValue::Array(fields) => fields[..7].to_vec(),
            other => panic!("COMMAND INFO entry {other:?}"),
        },
        other => panic!("COMMAND INFO replied {other:?}"),
    };
    assert_eq!(head(&mut ours), head(&mut theirs));
}

// ---------------------------------------------------------------------------------------
// Whole files

use ringkv::persistence::rdb::{encode, SaveInfo, SaveOptions};
use ringkv::storage::value::{Map, Set};
use ringkv::storage::zset::ZSet;
use ringkv::storage::{Bstr, Db, List, Value};

/// Every type in several encodings, in databases 0, 3 and 15, some keys with TTLs.
fn sample_dbs() -> Vec<Db> {
    let mut dbs: Vec<Db> = (0..16).map(|_| Db::default()).collect();
    let b = Bstr::new;
    let far_future_ms = 4_102_444_800_000u64; // 2100-01-01
    for (db_index, scale) in [(0usize, 1usize), (3, 7), (15, 40)] {
        let db = &mut dbs[db_index];
        db.set(b"str:int", Value::Str(b(b"12345")));
        db.set(b"str:neg", Value::Str(b(b"-9223372036854775808")));
        db.set(b"str:empty", Value::Str(b(b"")));
        db.set(b"str:binary", Value::Str(b(b"\x00\x01\xfe\xff")));
        db.set(
            b"str:lzf",
            Value::Str(Bstr::from_vec(b"ringkv ".repeat(30 * scale))),
        );
        db.set(
            b"str:noise",
            Value::Str(Bstr::from_vec(noise(3 << 20, scale as u64))),
        );
        db.set(b"12345", Value::Str(b(b"integer key")));

        let mut list = List::new();
        for i in 0..(500 * scale) {
            list.push_back(Bstr::from_vec(format!("item-{i}").into_bytes()));
            list.push_back(Bstr::from_i64(i as i64 - 250));
        }
        db.set(b"list", Value::List(Box::new(list)));

        let mut small_hash: Map<Bstr, Bstr> = Map::default();
        let mut big_hash: Map<Bstr, Bstr> = Map::default();
        for i in 0..(20 * scale) {
            let (f, v) = (format!("field{i}"), format!("{}", i * 31));
            if i < 20 {
                small_hash.insert(b(f.as_bytes()), b(v.as_bytes()));
            }
            big_hash.insert(
                b(f.as_bytes()),
                Bstr::from_vec(format!("value-{v}").repeat(5).into_bytes()),
            );
        }
        db.set(b"hash:small", Value::Hash(Box::new(small_hash)));
        db.set(b"hash:big", Value::Hash(Box::new(big_hash)));

        let mut ints: Set<Bstr> = Set::default();
        let mut words: Set<Bstr> = Set::default();
        for i in 0..(60 * scale) {
            ints.insert(Bstr::from_i64((i as i64 - 30) * 100_003));
            words.insert(Bstr::from_vec(format!("w{i}").into_bytes()));
        }
        db.set(b"set:ints", Value::Set(Box::new(ints)));
        db.set(b"set:words", Value::Set(Box::new(words)));

        let mut zset = ZSet::default();
        for i in 0..(30 * scale) {
            let score = match i % 4 {
                0 => i as f64,
                1 => i as f64 / 3.0,
                2 => -(i as f64) * 1e10,
                _ => f64::INFINITY,
            };
            zset.insert(format!("m{i}").as_bytes(), score);
        }
        db.set(b"zset", Value::ZSet(Box::new(zset)));

        for key in [&b"str:int"[..], b"list", b"hash:big", b"zset"] {
            db.set_expire_at(key, far_future_ms + db_index as u64);
        }
    }
    dbs
}

fn save_file(dbs: &[Db], options: &SaveOptions) -> (tempfile::TempDir, encode::SaveStats) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::create(dir.path().join("ringkv.rdb")).expect("create file");
    let info = SaveInfo::default();
    let stats = encode::save(dbs, file, options, &info, 1_700_000_000_000).expect("save");
    (dir, stats)
}

#[test]
fn redis_loads_files_ringkv_writes() {
    let dbs = sample_dbs();
    let expected_digest = ringkv::storage::digest::dataset_digest(&dbs);
    let keys: u64 = dbs.iter().map(|db| db.len() as u64).sum();
    for (compression, checksum) in [(true, true), (false, false), (true, false)] {
        let options = SaveOptions {
            compression,
            checksum,
            key_save_delay_us: 0,
        };
        let (dir, stats) = save_file(&dbs, &options);
        let path = dir.path().join("ringkv.rdb");
        assert_eq!(stats.keys, keys);
        assert_eq!(stats.bytes, std::fs::metadata(&path).unwrap().len());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..9], b"REDIS0010");
        let trailer = u64::from_le_bytes(bytes[bytes.len() - 8..].try_into().unwrap());
        if checksum {
            let crc = ringkv::persistence::rdb::crc64::update(0, &bytes[..bytes.len() - 8]);
            assert_eq!(trailer, crc);
        } else {
            assert_eq!(trailer, 0);
        }

        let dir_text = dir.path().display().to_string();
        let redis = Server::start_redis(&["--dir", &dir_text, "--dbfilename", "ringkv.rdb"]);
        let mut con = redis.client();
        let label = format!("compression {compression}, checksum {checksum}");
        assert_eq!(
            text(&mut con, &["DEBUG", "DIGEST"]),
            expected_digest,
            "{label}: log:\n{}",
            redis.log()
        );
        for (db, expected) in [(0, 13), (3, 13), (15, 13)] {
            redis::cmd("SELECT").arg(db).query::<()>(&mut con).unwrap();
            let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
            assert_eq!(size, expected, "{label}: db {db}");
            let pttl: i64 = redis::cmd("PEXPIRETIME")
                .arg("zset")
                .query(&mut con)
                .unwrap();
            assert_eq!(pttl, 4_102_444_800_000 + db as i64, "{label}: db {db}");
            let pttl: i64 = redis::cmd("PTTL").arg("set:ints").query(&mut con).unwrap();
            assert_eq!(pttl, -1, "{label}: db {db}");
        }
        redis::cmd("SELECT").arg(0).query::<()>(&mut con).unwrap();
        assert_eq!(
            text(&mut con, &["OBJECT", "ENCODING", "hash:small"]),
            "listpack"
        );
        assert_eq!(
            text(&mut con, &["OBJECT", "ENCODING", "set:ints"]),
            "intset"
        );
        assert_eq!(text(&mut con, &["OBJECT", "ENCODING", "zset"]), "listpack");
        assert_eq!(text(&mut con, &["GET", "12345"]), "integer key");
        let info = text(&mut con, &["INFO", "keyspace"]);
        assert!(info.contains("db0:keys=13,expires=4"), "{info}");
    }
}

#[test]
fn redis_reports_the_aux_fields_ringkv_writes() {
    let mut dbs: Vec<Db> = (0..16).map(|_| Db::default()).collect();
    dbs[0].set(b"k", Value::Str(Bstr::new(b"v")));
    let dir = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::create(dir.path().join("aux.rdb")).unwrap();
    let info = SaveInfo {
        repl_stream_db: Some(0),
        repl_id: Some("0123456789abcdef0123456789abcdef01234567".into()),
        repl_offset: Some(12345),
        aof_base: false,
    };
    encode::save(
        &dbs,
        file,
        &SaveOptions::default(),
        &info,
        1_700_000_000_000,
    )
    .unwrap();
    let dir_text = dir.path().display().to_string();
    let redis = Server::start_redis(&["--dir", &dir_text, "--dbfilename", "aux.rdb"]);
    let mut con = redis.client();
    assert_eq!(text(&mut con, &["GET", "k"]), "v");
    let log = redis.log();
    assert!(log.contains("RDB age"), "{log}");
    assert!(log.contains("RDB memory usage"), "{log}");
    assert!(log.contains("DB loaded from disk"), "{log}");
}

/// Random values of every deterministic kind, compared byte for byte with Redis' DUMP: many
/// LZF inputs of varied structure, listpack entries of every width, node splits.
#[test]
fn random_values_dump_like_redis() {
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut ours = ringkv.client();
    let mut theirs = redis.client();
    let mut seed = 0x5EED_1234_ABCD_0001u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let element = |next: &mut dyn FnMut() -> u64| -> Vec<u8> {
        match next() % 6 {
            0 => ((next() as i64) >> (next() % 64)).to_string().into_bytes(),
            1 => {
                // Text with repeats at random distances: LZF finds matches of many lengths.
                let words = ["user", ":", "1000", "name", "value", "-", "x", "session"];
                let n = (next() % 200) as usize;
                (0..n)
                    .flat_map(|_| words[(next() % 8) as usize].bytes())
                    .collect()
            }
            2 => {
                let n = (next() % 100) as usize;
                let b = (next() % 4) as u8 + b'a';
                (0..n)
                    .map(|i| {
                        if next().is_multiple_of(9) {
                            b'#'
                        } else {
                            b + (i % 3) as u8
                        }
                    })
                    .collect()
            }
            3 => noise((next() % 90) as usize, next()),
            4 => vec![b'z'; (next() % 5000) as usize],
            _ => format!("{}", next() % 1000).into_bytes(),
        }
    };
    let mut failures = Vec::new();
    for round in 0..300 {
        let kind = round % 4;
        let n = 1 + (next() % 150) as usize;
        let build: Vec<Vec<Vec<u8>>> = match kind {
            0 => set(&element(&mut next)),
            1 => bulk("RPUSH", (0..n).map(|_| element(&mut next)).collect()),
            2 => {
                // Small fields and values: a listpack hash (insertion order is deterministic).
                let mut args = Vec::new();
                for i in 0..n.min(128) {
                    let mut v = element(&mut next);
                    v.truncate(64);
                    args.push(format!("f{i}").into_bytes());
                    args.push(v);
                }
                bulk("HSET", args)
            }
            _ => {
                let mut args = Vec::new();
                for i in 0..n {
                    let score = match next() % 3 {
                        0 => ((next() % 2000) as i64 - 1000).to_string(),
                        1 => format!("{}", (next() % 100_000) as f64 / 7.0),
                        _ => format!("{:e}", f64::from_bits(next() >> 2)),
                    };
                    args.push(score.into_bytes());
                    args.push(format!("m{i}").into_bytes());
                }
                bulk("ZADD", args)
            }
        };
        let mut payloads = Vec::new();
        for con in [&mut ours, &mut theirs] {
            run_bytes(con, &[b"DEL".to_vec(), b"k".to_vec()]).unwrap();
            for c in &build {
                run_bytes(con, c).unwrap();
            }
            payloads.push(dump(con, "k").unwrap());
        }
        if payloads[0] != payloads[1] {
            failures.push(format!(
                "round {round} kind {kind}: ringkv {} redis {}",
                hex(&payloads[0][..payloads[0].len().min(120)]),
                hex(&payloads[1][..payloads[1].len().min(120)])
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
