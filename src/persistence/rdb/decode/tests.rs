//! Decoder tests: every encoding from hand-built bytes (including the legacy ones Redis 7 no
//! longer writes), payloads captured from a real redis-server 7.0.15, and corrupt input of
//! every kind (truncation at every offset, flipped bytes, absurd lengths).

use super::*;
use crate::storage::digest;

// ---------------------------------------------------------------------------------------
// A small independent writer for the test inputs
// ---------------------------------------------------------------------------------------

fn len(n: u64) -> Vec<u8> {
    if n < 64 {
        vec![n as u8]
    } else if n < 16384 {
        vec![0x40 | (n >> 8) as u8, n as u8]
    } else if n <= u64::from(u32::MAX) {
        let mut v = vec![0x80];
        v.extend((n as u32).to_be_bytes());
        v
    } else {
        let mut v = vec![0x81];
        v.extend(n.to_be_bytes());
        v
    }
}

fn raw(s: &[u8]) -> Vec<u8> {
    [len(s.len() as u64), s.to_vec()].concat()
}

/// An element of a test listpack or ziplist.
#[derive(Clone, Copy)]
enum E<'a> {
    S(&'a [u8]),
    I(i64),
}

fn s(text: &str) -> E<'_> {
    E::S(text.as_bytes())
}

fn lp_backlen(l: usize) -> Vec<u8> {
    if l <= 127 {
        vec![l as u8]
    } else if l < 16383 {
        vec![(l >> 7) as u8, (l & 127) as u8 | 128]
    } else if l < 2097151 {
        vec![
            (l >> 14) as u8,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]
    } else {
        vec![
            (l >> 21) as u8,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]
    }
}

fn lp_entry(e: E<'_>) -> Vec<u8> {
    let mut enc = match e {
        E::I(v) if (0..=127).contains(&v) => vec![v as u8],
        E::I(v) if (-4096..=4095).contains(&v) => {
            let u = (v as u16) & 0x1fff;
            vec![0xc0 | (u >> 8) as u8, u as u8]
        }
        E::I(v) if i16::try_from(v).is_ok() => {
            [vec![0xf1], (v as i16).to_le_bytes().to_vec()].concat()
        }
        E::I(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
            [vec![0xf2], (v as i32).to_le_bytes()[..3].to_vec()].concat()
        }
        E::I(v) if i32::try_from(v).is_ok() => {
            [vec![0xf3], (v as i32).to_le_bytes().to_vec()].concat()
        }
        E::I(v) => [vec![0xf4], v.to_le_bytes().to_vec()].concat(),
        E::S(s) if s.len() < 64 => [vec![0x80 | s.len() as u8], s.to_vec()].concat(),
        E::S(s) if s.len() < 4096 => {
            [vec![0xe0 | (s.len() >> 8) as u8, s.len() as u8], s.to_vec()].concat()
        }
        E::S(s) => [
            vec![0xf0],
            (s.len() as u32).to_le_bytes().to_vec(),
            s.to_vec(),
        ]
        .concat(),
    };
    let backlen = lp_backlen(enc.len());
    enc.extend(backlen);
    enc
}

fn listpack(entries: &[E<'_>]) -> Vec<u8> {
    let body: Vec<u8> = entries.iter().flat_map(|&e| lp_entry(e)).collect();
    let total = 6 + body.len() + 1;
    let mut out = (total as u32).to_le_bytes().to_vec();
    out.extend((entries.len().min(65535) as u16).to_le_bytes());
    out.extend(body);
    out.push(0xff);
    out
}

fn zl_entry(prev: usize, e: E<'_>) -> Vec<u8> {
    let mut out = if prev < 254 {
        vec![prev as u8]
    } else {
        [vec![0xfe], (prev as u32).to_le_bytes().to_vec()].concat()
    };
    out.extend(match e {
        E::S(s) if s.len() < 64 => [vec![s.len() as u8], s.to_vec()].concat(),
        E::S(s) if s.len() < 16384 => {
            [vec![0x40 | (s.len() >> 8) as u8, s.len() as u8], s.to_vec()].concat()
        }
        E::S(s) => [
            vec![0x80],
            (s.len() as u32).to_be_bytes().to_vec(),
            s.to_vec(),
        ]
        .concat(),
        E::I(v) if (0..=12).contains(&v) => vec![0xf1 + v as u8],
        E::I(v) if i8::try_from(v).is_ok() => vec![0xfe, v as u8],
        E::I(v) if i16::try_from(v).is_ok() => {
            [vec![0xc0], (v as i16).to_le_bytes().to_vec()].concat()
        }
        E::I(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
            [vec![0xf0], (v as i32).to_le_bytes()[..3].to_vec()].concat()
        }
        E::I(v) if i32::try_from(v).is_ok() => {
            [vec![0xd0], (v as i32).to_le_bytes().to_vec()].concat()
        }
        E::I(v) => [vec![0xe0], v.to_le_bytes().to_vec()].concat(),
    });
    out
}

fn ziplist(entries: &[E<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0;
    let mut tail = 10;
    for &e in entries {
        let entry = zl_entry(prev, e);
        tail = 10 + body.len();
        prev = entry.len();
        body.extend(entry);
    }
    let total = 10 + body.len() + 1;
    let mut out = (total as u32).to_le_bytes().to_vec();
    out.extend((tail as u32).to_le_bytes());
    out.extend((entries.len().min(65535) as u16).to_le_bytes());
    out.extend(body);
    out.push(0xff);
    out
}

fn intset(width: u32, values: &[i64]) -> Vec<u8> {
    let mut out = width.to_le_bytes().to_vec();
    out.extend((values.len() as u32).to_le_bytes());
    for &v in values {
        out.extend(&v.to_le_bytes()[..width as usize]);
    }
    out
}

fn zipmap(pairs: &[(&[u8], &[u8], u8)]) -> Vec<u8> {
    let zlen = |n: usize| {
        if n < 254 {
            vec![n as u8]
        } else {
            [vec![254], (n as u32).to_le_bytes().to_vec()].concat()
        }
    };
    let mut out = vec![pairs.len().min(254) as u8];
    for &(field, value, free) in pairs {
        out.extend(zlen(field.len()));
        out.extend(field);
        out.extend(zlen(value.len()));
        out.push(free);
        out.extend(value);
        out.extend(std::iter::repeat_n(0u8, free as usize));
    }
    out.push(0xff);
    out
}

/// A whole file: header, `body`, EOF, and the CRC for version 5 on.
fn file(version: u16, body: &[u8]) -> Vec<u8> {
    let mut out = format!("REDIS{version:04}").into_bytes();
    out.extend(body);
    out.push(format::OPCODE_EOF);
    if version >= 5 {
        let crc = crc64::update(0, &out);
        out.extend(crc.to_le_bytes());
    }
    out
}

fn record(kind: u8, key: &str, value: &[u8]) -> Vec<u8> {
    [vec![kind], raw(key.as_bytes()), value.to_vec()].concat()
}

fn dbs(n: usize) -> Vec<Db> {
    (0..n).map(|_| Db::default()).collect()
}

fn load_all(bytes: &[u8]) -> Result<(Vec<Db>, Loaded), LoadError> {
    let mut dbs = dbs(16);
    let loaded = load(bytes, &mut dbs, &LoadOptions::default())?;
    Ok((dbs, loaded))
}

/// Loads one key `k` of type `kind` from a file and, as a DUMP body, through the payload
/// path; both must agree.
fn one(kind: u8, value: &[u8]) -> Value {
    let (dbs, loaded) = load_all(&file(10, &record(kind, "k", value)))
        .unwrap_or_else(|e| panic!("type {kind}: {e}"));
    assert_eq!(loaded.keys, 1);
    let from_file = dbs[0].peek(b"k").expect("key k").clone();
    let body = [vec![kind], value.to_vec()].concat();
    let from_payload = decode_payload_value(&body).expect("payload body");
    assert_eq!(
        digest::value_digest(&from_file, false),
        digest::value_digest(&from_payload, false)
    );
    from_file
}

/// The error loading one key of type `kind` with `value`.
fn one_err(kind: u8, value: &[u8]) -> LoadError {
    match load_all(&file(10, &record(kind, "k", value))) {
        Ok(_) => panic!("type {kind} loaded"),
        Err(e) => e,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn list_of(value: &Value) -> Vec<String> {
    match value {
        Value::List(l) => l.iter().map(|e| text(e)).collect(),
        other => panic!("not a list: {other:?}"),
    }
}

fn set_of(value: &Value) -> Vec<String> {
    match value {
        Value::Set(s) => {
            let mut v: Vec<String> = s.iter().map(|e| text(e)).collect();
            v.sort();
            v
        }
        other => panic!("not a set: {other:?}"),
    }
}

fn hash_of(value: &Value) -> Vec<(String, String)> {
    match value {
        Value::Hash(h) => {
            let mut v: Vec<(String, String)> = h.iter().map(|(f, v)| (text(f), text(v))).collect();
            v.sort();
            v
        }
        other => panic!("not a hash: {other:?}"),
    }
}

fn zset_of(value: &Value) -> Vec<(String, f64)> {
    match value {
        Value::ZSet(z) => z.iter().map(|(m, s)| (text(m), s)).collect(),
        other => panic!("not a zset: {other:?}"),
    }
}

fn str_of(value: &Value) -> String {
    match value {
        Value::Str(s) => text(s),
        other => panic!("not a string: {other:?}"),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Header, lengths, strings
// ---------------------------------------------------------------------------------------

#[test]
fn header_is_checked() {
    assert!(load_all(b"REDIS0010")
        .unwrap_err()
        .reason
        .contains("end of file"));
    let e = load_all(b"RUBIS0010\xff").unwrap_err();
    assert!(e.reason.contains("not an RDB file"), "{e}");
    let e = load_all(&file(13, b"")).unwrap_err();
    assert_eq!(
        e.reason,
        "RDB version 13 is newer than this server supports (12)"
    );
    assert_eq!(e.offset, 5);
    assert!(load_all(b"REDIS0000\xff").is_err());
    assert!(load_all(b"REDIS00x1\xff").is_err());
    assert!(load_all(b"REDIS").is_err());
    for version in 1..=12 {
        let (_, loaded) = load_all(&file(version, b"")).unwrap();
        assert_eq!(loaded.version, version);
    }
}

#[test]
fn every_length_form() {
    for n in [0u64, 1, 63, 64, 300, 16383, 16384, 70000] {
        let value = vec![b'x'; n as usize];
        let got = one(format::TYPE_STRING, &raw(&value));
        assert_eq!(str_of(&got).len(), n as usize);
    }
    // Non-minimal forms are read too: 5 as a 14-bit, 32-bit and 64-bit length.
    for prefix in [
        vec![0x40, 5],
        vec![0x80, 0, 0, 0, 5],
        vec![0x81, 0, 0, 0, 0, 0, 0, 0, 5],
    ] {
        let got = one(format::TYPE_STRING, &[prefix, b"hello".to_vec()].concat());
        assert_eq!(str_of(&got), "hello");
    }
    let e = one_err(format::TYPE_STRING, &[0x82, 0, 0, 0, 0]);
    assert!(e.reason.contains("unknown length encoding 0x82"), "{e}");
}

#[test]
fn integer_and_lzf_strings() {
    assert_eq!(str_of(&one(format::TYPE_STRING, &[0xc0, 0x85])), "-123");
    assert_eq!(str_of(&one(format::TYPE_STRING, &[0xc0, 7])), "7");
    assert_eq!(
        str_of(&one(format::TYPE_STRING, &[0xc1, 0x39, 0x30])),
        "12345"
    );
    assert_eq!(
        str_of(&one(format::TYPE_STRING, &[0xc1, 0x00, 0x80])),
        "-32768"
    );
    assert_eq!(
        str_of(&one(format::TYPE_STRING, &[0xc2, 0x40, 0xe2, 0x01, 0x00])),
        "123456"
    );
    assert_eq!(
        str_of(&one(format::TYPE_STRING, &[0xc2, 0, 0, 0, 0x80])),
        "-2147483648"
    );
    // LZF by hand: literal "ab", then a back reference of 2+5 bytes at distance 2.
    let lzf = [0x01, b'a', b'b', 5 << 5, 0x01];
    let mut value = vec![0xc3];
    value.extend(len(lzf.len() as u64));
    value.extend(len(9));
    value.extend(lzf);
    assert_eq!(str_of(&one(format::TYPE_STRING, &value)), "ababababa");
    // Long back reference (length code 7 + extra byte).
    let lzf = [0x00, b'z', 7 << 5, 20, 0x00];
    let mut value = vec![0xc3];
    value.extend(len(lzf.len() as u64));
    value.extend(len(1 + 29));
    value.extend(lzf);
    assert_eq!(str_of(&one(format::TYPE_STRING, &value)), "z".repeat(30));
    // The announced length must match.
    let mut bad = vec![0xc3];
    bad.extend(len(5));
    bad.extend(len(10));
    bad.extend([0x01, b'a', b'b', 5 << 5, 0x01]);
    let e = one_err(format::TYPE_STRING, &bad);
    assert!(e.reason.starts_with("LZF string"), "{e}");
    assert_eq!(e.offset, 9 + 1 + 2);
    // Unknown special encoding.
    let e = one_err(format::TYPE_STRING, &[0xc4]);
    assert_eq!(e.reason, "unknown string encoding 4");
    // A string announcing more bytes than the file has.
    let e = one_err(format::TYPE_STRING, &[0x44, 0xd2, b'x']);
    assert!(
        e.reason
            .starts_with("unexpected end of file while reading a string of 1234 bytes"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------

#[test]
fn plain_list_set_hash() {
    let list = one(
        format::TYPE_LIST,
        &[len(3), raw(b"a"), vec![0xc0, 0xff], raw(b"c")].concat(),
    );
    assert_eq!(list_of(&list), strings(&["a", "-1", "c"]));
    let set = one(
        format::TYPE_SET,
        &[len(3), raw(b"x"), raw(b"y"), vec![0xc0, 5]].concat(),
    );
    assert_eq!(set_of(&set), strings(&["5", "x", "y"]));
    let hash = one(
        format::TYPE_HASH,
        &[len(2), raw(b"f"), raw(b"v"), raw(b"n"), vec![0xc0, 12]].concat(),
    );
    assert_eq!(hash_of(&hash), pairs(&[("f", "v"), ("n", "12")]));
    let e = one_err(format::TYPE_SET, &[len(2), raw(b"x"), raw(b"x")].concat());
    assert!(e.reason.contains("duplicate set member 'x'"), "{e}");
    let e = one_err(
        format::TYPE_HASH,
        &[len(2), raw(b"f"), raw(b"1"), raw(b"f"), raw(b"2")].concat(),
    );
    assert!(e.reason.contains("duplicate hash field 'f'"), "{e}");
}

#[test]
fn sorted_sets_with_text_and_binary_scores() {
    let score_text = |t: &str| [vec![t.len() as u8], t.as_bytes().to_vec()].concat();
    let zset = one(
        format::TYPE_ZSET,
        &[
            len(4),
            raw(b"a"),
            score_text("1.5"),
            raw(b"b"),
            vec![254],
            raw(b"c"),
            vec![255],
            raw(b"d"),
            score_text("-2e3"),
        ]
        .concat(),
    );
    assert_eq!(
        zset_of(&zset),
        vec![
            ("c".to_string(), f64::NEG_INFINITY),
            ("d".to_string(), -2000.0),
            ("a".to_string(), 1.5),
            ("b".to_string(), f64::INFINITY),
        ]
    );
    let e = one_err(format::TYPE_ZSET, &[len(1), raw(b"a"), vec![253]].concat());
    assert!(e.reason.contains("NaN score"), "{e}");
    let e = one_err(
        format::TYPE_ZSET,
        &[len(1), raw(b"a"), score_text("x1")].concat(),
    );
    assert!(e.reason.contains("not a number"), "{e}");
    let zset = one(
        format::TYPE_ZSET_2,
        &[
            len(2),
            raw(b"a"),
            0.25f64.to_le_bytes().to_vec(),
            raw(b"b"),
            (-7.0f64).to_le_bytes().to_vec(),
        ]
        .concat(),
    );
    assert_eq!(
        zset_of(&zset),
        vec![("b".to_string(), -7.0), ("a".to_string(), 0.25)]
    );
    let e = one_err(
        format::TYPE_ZSET_2,
        &[len(1), raw(b"a"), f64::NAN.to_le_bytes().to_vec()].concat(),
    );
    assert!(e.reason.contains("NaN score"), "{e}");
    let e = one_err(
        format::TYPE_ZSET_2,
        &[
            len(2),
            raw(b"a"),
            1f64.to_le_bytes().to_vec(),
            raw(b"a"),
            2f64.to_le_bytes().to_vec(),
        ]
        .concat(),
    );
    assert!(e.reason.contains("duplicate sorted set member 'a'"), "{e}");
}

#[test]
fn listpack_every_entry_encoding() {
    let big = "y".repeat(5000);
    let mid = "m".repeat(200);
    let ints = [
        0i64,
        127,
        128,
        -1,
        -4096,
        4095,
        4096,
        -32768,
        32767,
        40000,
        -8388608,
        8388607,
        8388608,
        i64::from(i32::MIN),
        i64::from(i32::MAX),
        i64::MAX,
        i64::MIN,
    ];
    let mut entries: Vec<E<'_>> = ints.iter().map(|&i| E::I(i)).collect();
    entries.push(s(""));
    entries.push(s("short"));
    entries.push(E::S(mid.as_bytes()));
    entries.push(E::S(big.as_bytes()));
    let node = listpack(&entries);
    let list = one(
        format::TYPE_LIST_QUICKLIST_2,
        &[len(1), len(2), raw(&node)].concat(),
    );
    let mut expected: Vec<String> = ints.iter().map(|i| i.to_string()).collect();
    expected.extend([
        "".to_string(),
        "short".to_string(),
        mid.clone(),
        big.clone(),
    ]);
    assert_eq!(list_of(&list), expected);
}

#[test]
fn ziplist_every_entry_encoding() {
    let long = "z".repeat(300); // needs the 5-byte previous-length form after it
    let huge = "h".repeat(17000); // 32-bit string length
    let ints = [
        0i64,
        12,
        13,
        -1,
        -128,
        127,
        128,
        -32768,
        32767,
        40000,
        -8388608,
        8388607,
        8388608,
        i64::from(i32::MIN),
        i64::from(i32::MAX),
        i64::MAX,
        i64::MIN,
    ];
    let mut entries: Vec<E<'_>> = ints.iter().map(|&i| E::I(i)).collect();
    entries.push(E::S(long.as_bytes()));
    entries.push(s("after-long"));
    entries.push(E::S(huge.as_bytes()));
    entries.push(s(""));
    let zl = ziplist(&entries);
    let list = one(format::TYPE_LIST_ZIPLIST, &raw(&zl));
    let mut expected: Vec<String> = ints.iter().map(|i| i.to_string()).collect();
    expected.extend([long.clone(), "after-long".into(), huge.clone(), "".into()]);
    assert_eq!(list_of(&list), expected);
    // The same ziplist as a quicklist (v1) node, twice, plus an empty node that is skipped.
    let empty = ziplist(&[]);
    let list = one(
        format::TYPE_LIST_QUICKLIST,
        &[len(3), raw(&zl), raw(&empty), raw(&zl)].concat(),
    );
    assert_eq!(list_of(&list).len(), 2 * expected.len());
}

#[test]
fn compact_hashes_sets_and_sorted_sets() {
    let hash_pairs = [s("f"), s("v"), s("n"), E::I(12), E::I(-5), s("neg")];
    let want = pairs(&[("-5", "neg"), ("f", "v"), ("n", "12")]);
    assert_eq!(
        hash_of(&one(
            format::TYPE_HASH_LISTPACK,
            &raw(&listpack(&hash_pairs))
        )),
        want
    );
    assert_eq!(
        hash_of(&one(format::TYPE_HASH_ZIPLIST, &raw(&ziplist(&hash_pairs)))),
        want
    );
    let zipmap_bytes = zipmap(&[(b"f", b"v", 0), (b"n", b"12", 3), (b"-5", b"neg", 1)]);
    assert_eq!(
        hash_of(&one(format::TYPE_HASH_ZIPMAP, &raw(&zipmap_bytes))),
        want
    );
    let zset_pairs = [s("a"), s("1.5"), s("b"), E::I(-2), s("c"), s("inf")];
    let zwant = vec![
        ("b".to_string(), -2.0),
        ("a".to_string(), 1.5),
        ("c".to_string(), f64::INFINITY),
    ];
    assert_eq!(
        zset_of(&one(
            format::TYPE_ZSET_LISTPACK,
            &raw(&listpack(&zset_pairs))
        )),
        zwant
    );
    assert_eq!(
        zset_of(&one(format::TYPE_ZSET_ZIPLIST, &raw(&ziplist(&zset_pairs)))),
        zwant
    );
    assert_eq!(
        set_of(&one(
            format::TYPE_SET_LISTPACK,
            &raw(&listpack(&[s("x"), E::I(3), s("y")]))
        )),
        strings(&["3", "x", "y"])
    );
    for width in [2u32, 4, 8] {
        let values: Vec<i64> = match width {
            2 => vec![-3, 1, 5],
            4 => vec![-70000, 1, 70000],
            _ => vec![i64::MIN, 0, i64::MAX],
        };
        let got = set_of(&one(format::TYPE_SET_INTSET, &raw(&intset(width, &values))));
        let mut want: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        want.sort();
        assert_eq!(got, want);
    }
}

#[test]
fn quicklist_2_plain_and_packed_nodes() {
    let big = vec![b'p'; 100];
    let list = one(
        format::TYPE_LIST_QUICKLIST_2,
        &[
            len(3),
            len(2),
            raw(&listpack(&[s("a"), E::I(1)])),
            len(1),
            raw(&big),
            len(2),
            raw(&listpack(&[s("z")])),
        ]
        .concat(),
    );
    assert_eq!(
        list_of(&list),
        vec!["a".to_string(), "1".into(), text(&big), "z".into()]
    );
    let e = one_err(
        format::TYPE_LIST_QUICKLIST_2,
        &[len(1), len(3), raw(b"x")].concat(),
    );
    assert!(e.reason.contains("neither PLAIN (1) nor PACKED (2)"), "{e}");
    let e = one_err(
        format::TYPE_LIST_QUICKLIST_2,
        &[len(1), len(1), raw(b"")].concat(),
    );
    assert!(e.reason.contains("empty quicklist node"), "{e}");
}

#[test]
fn hashes_with_field_ttls_load_only_without_ttls() {
    let min_expire = 1_700_000_000_000u64.to_le_bytes().to_vec();
    let triples = |ttl: i64| listpack(&[s("f"), s("v"), E::I(0), s("g"), s("w"), E::I(ttl)]);
    let want = pairs(&[("f", "v"), ("g", "w")]);
    // 23: listpack triples; 25: the same after an 8-byte minimum expiry.
    assert_eq!(
        hash_of(&one(
            format::TYPE_HASH_LISTPACK_EX_PRE_GA,
            &raw(&triples(0))
        )),
        want
    );
    assert_eq!(
        hash_of(&one(
            format::TYPE_HASH_LISTPACK_EX,
            &[min_expire.clone(), raw(&triples(0))].concat()
        )),
        want
    );
    let e = one_err(
        format::TYPE_HASH_LISTPACK_EX,
        &[min_expire.clone(), raw(&triples(1_700_000_000_500))].concat(),
    );
    assert!(
        e.reason.contains("hash field 'g' has its own TTL")
            && e.reason.contains("does not support"),
        "{e}"
    );
    // 22: (ttl, field, value) records; 24: the same after the minimum expiry.
    let records = |ttl: u64| {
        [
            len(2),
            len(0),
            raw(b"f"),
            raw(b"v"),
            len(ttl),
            raw(b"g"),
            raw(b"w"),
        ]
        .concat()
    };
    assert_eq!(
        hash_of(&one(format::TYPE_HASH_METADATA_PRE_GA, &records(0))),
        want
    );
    assert_eq!(
        hash_of(&one(
            format::TYPE_HASH_METADATA,
            &[min_expire.clone(), records(0)].concat()
        )),
        want
    );
    let e = one_err(
        format::TYPE_HASH_METADATA,
        &[min_expire, records(5)].concat(),
    );
    assert!(e.reason.contains("hash field 'g' has its own TTL"), "{e}");
}

#[test]
fn empty_containers_are_skipped_like_redis() {
    let body = [
        record(format::TYPE_LIST, "l", &len(0)),
        record(format::TYPE_SET, "s", &len(0)),
        record(format::TYPE_ZSET_2, "z", &len(0)),
        record(format::TYPE_HASH, "h", &len(0)),
        record(format::TYPE_HASH_LISTPACK, "hl", &raw(&listpack(&[]))),
        record(format::TYPE_ZSET_LISTPACK, "zl", &raw(&listpack(&[]))),
        record(format::TYPE_SET_LISTPACK, "sl", &raw(&listpack(&[]))),
        record(format::TYPE_HASH_ZIPLIST, "hz", &raw(&ziplist(&[]))),
        record(format::TYPE_ZSET_ZIPLIST, "zz", &raw(&ziplist(&[]))),
        record(format::TYPE_LIST_ZIPLIST, "lz", &raw(&ziplist(&[]))),
        record(
            format::TYPE_LIST_QUICKLIST,
            "q",
            &[len(1), raw(&ziplist(&[]))].concat(),
        ),
        record(
            format::TYPE_LIST_QUICKLIST_2,
            "q2",
            &[len(1), len(2), raw(&listpack(&[]))].concat(),
        ),
        record(format::TYPE_STRING, "kept", &raw(b"v")),
    ]
    .concat();
    let (dbs, loaded) = load_all(&file(10, &body)).unwrap();
    assert_eq!(loaded.keys, 1);
    assert_eq!(dbs[0].len(), 1);
    // Redis refuses an empty intset or zipmap outright.
    assert!(one_err(format::TYPE_SET_INTSET, &raw(&intset(2, &[])))
        .reason
        .contains("intset: empty"));
    assert!(one_err(format::TYPE_HASH_ZIPMAP, &raw(&zipmap(&[])))
        .reason
        .contains("zipmap: empty"));
    // RESTORE refuses empty values.
    let e = decode_payload_value(&[vec![format::TYPE_LIST], len(0)].concat()).unwrap_err();
    assert!(e.reason.contains("empty"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Opcodes, databases, expiry, checksum
// ---------------------------------------------------------------------------------------

fn aux(key: &str, value: &[u8]) -> Vec<u8> {
    [
        vec![format::OPCODE_AUX],
        raw(key.as_bytes()),
        value.to_vec(),
    ]
    .concat()
}

#[test]
fn opcodes_aux_fields_and_databases() {
    let repl_id = "0123456789abcdef0123456789abcdef01234567";
    let body = [
        aux("redis-ver", &raw(b"7.0.15")),
        aux("redis-bits", &[0xc0, 64]),
        aux("ctime", &[0xc2, 0x00, 0x5e, 0xd0, 0xb2]),
        aux("used-mem", &[0xc2, 0, 0, 0x10, 0]),
        aux("repl-stream-db", &[0xc0, 3]),
        aux("repl-id", &raw(repl_id.as_bytes())),
        aux("repl-offset", &raw(b"12345")),
        aux("aof-base", &[0xc0, 1]),
        aux("aof-preamble", &[0xc0, 0]),
        aux("lua", &raw(b"return 1")),
        aux("some-future-field", &raw(b"whatever")),
        vec![format::OPCODE_SELECTDB],
        len(0),
        vec![format::OPCODE_RESIZEDB],
        len(2),
        len(1),
        vec![format::OPCODE_SLOT_INFO],
        len(5),
        len(2),
        len(1),
        vec![format::OPCODE_EXPIRETIME_MS],
        4_102_444_800_000u64.to_le_bytes().to_vec(),
        vec![format::OPCODE_IDLE],
        len(100),
        record(format::TYPE_STRING, "a", &raw(b"1")),
        vec![format::OPCODE_FREQ, 5],
        record(format::TYPE_STRING, "b", &raw(b"2")),
        vec![format::OPCODE_SELECTDB],
        len(15),
        vec![format::OPCODE_EXPIRETIME],
        2_000_000_000u32.to_le_bytes().to_vec(),
        record(format::TYPE_STRING, "c", &raw(b"3")),
    ]
    .concat();
    let bytes = file(10, &body);
    let (dbs, loaded) = load_all(&bytes).unwrap();
    assert_eq!(loaded.version, 10);
    assert_eq!(loaded.redis_ver.as_deref(), Some("7.0.15"));
    assert_eq!(loaded.ctime, Some(i64::from(0xb2d05e00u32 as i32)));
    assert_eq!(loaded.info.repl_stream_db, Some(3));
    assert_eq!(loaded.info.repl_id.as_deref(), Some(repl_id));
    assert_eq!(loaded.info.repl_offset, Some(12345));
    assert!(loaded.info.aof_base);
    assert_eq!(loaded.keys, 3);
    assert_eq!(loaded.consumed, bytes.len());
    assert_eq!(dbs[0].expire_at(b"a"), Some(4_102_444_800_000));
    assert_eq!(
        dbs[0].expire_at(b"b"),
        None,
        "an expiry applies to one key only"
    );
    assert_eq!(dbs[15].expire_at(b"c"), Some(2_000_000_000_000));
    assert_eq!(dbs[15].len(), 1);

    // A database beyond `databases`.
    let bytes = file(10, &[vec![format::OPCODE_SELECTDB], len(16)].concat());
    let e = load_all(&bytes).unwrap_err();
    assert_eq!(e.offset, 9);
    assert!(
        e.reason.contains("database 16") && e.reason.contains("only 16 databases"),
        "{e}"
    );
}

#[test]
fn refused_contents_say_what_they_are() {
    let cases: [(Vec<u8>, &str); 6] = [
        (
            [vec![format::OPCODE_FUNCTION2], raw(b"#!lua name=x")].concat(),
            "the file contains Redis functions (FUNCTION opcode), which ringkv does not support",
        ),
        (vec![format::OPCODE_FUNCTION_PRE_GA], "Redis functions"),
        (
            vec![format::OPCODE_MODULE_AUX, 1, 2],
            "module data (MODULE_AUX opcode)",
        ),
        (
            record(format::TYPE_STREAM_LISTPACKS_2, "st", b""),
            "key 'st' holds a stream",
        ),
        (
            record(format::TYPE_MODULE_2, "m", b""),
            "key 'm' holds a module value",
        ),
        (vec![77], "unknown value type 77"),
    ];
    for (body, expected) in cases {
        let e = load_all(&file(10, &body)).unwrap_err();
        assert!(e.reason.contains(expected), "{e} lacks {expected:?}");
        assert_eq!(e.offset, 9, "{e}");
    }
    let e = load_all(&file(10, &[242])).unwrap_err();
    assert_eq!(e.reason, "unknown opcode 242");
}

#[test]
fn expired_keys_are_dropped_only_when_asked() {
    let body = [
        vec![format::OPCODE_EXPIRETIME_MS],
        1000u64.to_le_bytes().to_vec(),
        record(format::TYPE_STRING, "old", &raw(b"x")),
        vec![format::OPCODE_EXPIRETIME_MS],
        5000u64.to_le_bytes().to_vec(),
        record(format::TYPE_STRING, "new", &raw(b"y")),
        record(format::TYPE_STRING, "forever", &raw(b"z")),
    ]
    .concat();
    let bytes = file(10, &body);
    let mut keep = dbs(1);
    let loaded = load(&bytes, &mut keep, &LoadOptions::default()).unwrap();
    assert_eq!((loaded.keys, loaded.expired_skipped), (3, 0));
    assert_eq!(keep[0].expire_at(b"old"), Some(1000));
    let mut dropped = dbs(1);
    let options = LoadOptions {
        now_ms: 2000,
        drop_expired: true,
        key_load_delay_us: 0,
        skip_checksum: false,
    };
    let loaded = load(&bytes, &mut dropped, &options).unwrap();
    assert_eq!((loaded.keys, loaded.expired_skipped), (2, 1));
    assert!(dropped[0].peek(b"old").is_none());
    assert_eq!(dropped[0].expire_at(b"new"), Some(5000));
}

#[test]
fn duplicate_keys_are_an_error() {
    let body = [
        record(format::TYPE_STRING, "k", &raw(b"1")),
        record(format::TYPE_STRING, "k", &raw(b"2")),
    ]
    .concat();
    let e = load_all(&file(10, &body)).unwrap_err();
    assert_eq!(e.offset, 9 + 5 + 1);
    assert!(
        e.reason.contains("duplicate key 'k' in database 0")
            && e.reason.contains("Duplicate key found in RDB file"),
        "{e}"
    );
}

#[test]
fn checksum_is_verified_zero_accepted_and_old_versions_have_none() {
    let body = record(format::TYPE_STRING, "k", &raw(b"v"));
    let good = file(10, &body);
    assert!(load_all(&good).is_ok());
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let e = load_all(&bad).unwrap_err();
    assert_eq!(e.offset, (n - 8) as u64);
    assert!(e.reason.starts_with("checksum mismatch: file says "), "{e}");
    let mut zero = good.clone();
    zero[n - 8..].fill(0);
    assert!(
        load_all(&zero).is_ok(),
        "a zero checksum means not computed"
    );
    // A corrupt value byte is caught by the checksum even where the value still parses.
    let mut flipped = good.clone();
    let v = flipped.iter().rposition(|&b| b == b'v').unwrap();
    flipped[v] = b'w';
    assert!(load_all(&flipped).unwrap_err().reason.contains("checksum"));
    // Version 4 has no checksum: the data ends at EOF.
    let old = file(4, &body);
    let (dbs, loaded) = load_all(&old).unwrap();
    assert_eq!(loaded.consumed, old.len());
    assert_eq!(dbs[0].len(), 1);
    // Bytes after the checksum (an AOF tail) are not read.
    let mut with_tail = good.clone();
    with_tail.extend(b"*1\r\n$4\r\nPING\r\n");
    let (_, loaded) = load_all(&with_tail).unwrap();
    assert_eq!(loaded.consumed, good.len());
    // A missing checksum.
    let e = load_all(&good[..n - 3]).unwrap_err();
    assert!(e.reason.contains("the checksum"), "{e}");
}

#[test]
fn big_files_verify_the_checksum_on_a_helper_thread() {
    // Above PARALLEL_CRC_MIN and not a multiple of the checkpoint size.
    let value = vec![b'q'; 1 << 20];
    let mut body = Vec::new();
    for i in 0..20 {
        body.extend(record(
            format::TYPE_STRING,
            &format!("key{i}"),
            &raw(&value),
        ));
    }
    let good = file(10, &body);
    assert!(good.len() > PARALLEL_CRC_MIN);
    let (dbs, loaded) = load_all(&good).unwrap();
    assert_eq!((loaded.keys, dbs[0].len()), (20, 20));
    let mut bad = good.clone();
    bad[(CRC_CHECKPOINT * 3) + 17] ^= 0x20; // inside a value: only the CRC can tell
    let e = load_all(&bad).unwrap_err();
    assert!(e.reason.starts_with("checksum mismatch"), "{e}");
}

#[test]
fn key_load_delay_sleeps_per_key() {
    let body: Vec<u8> = (0..5)
        .flat_map(|i| record(format::TYPE_STRING, &format!("k{i}"), &raw(b"v")))
        .collect();
    let bytes = file(10, &body);
    let options = LoadOptions {
        key_load_delay_us: 20_000,
        ..LoadOptions::default()
    };
    let started = std::time::Instant::now();
    load(&bytes, &mut dbs(1), &options).unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(100));
}

// ---------------------------------------------------------------------------------------
// Blob validation
// ---------------------------------------------------------------------------------------

#[test]
fn listpack_corruption_is_named() {
    let good = listpack(&[s("ab"), E::I(5)]);
    let load_lp = |lp: &[u8]| one_err(format::TYPE_SET_LISTPACK, &raw(lp));
    let mut wrong_total = good.clone();
    wrong_total[0] += 1;
    assert!(load_lp(&wrong_total).reason.contains("header says"));
    let mut no_end = good.clone();
    *no_end.last_mut().unwrap() = 0;
    assert!(load_lp(&no_end).reason.contains("terminator"));
    let mut count = good.clone();
    count[4] = 3;
    assert!(load_lp(&count)
        .reason
        .contains("header counts 3 entries, the blob has 2"));
    let mut backlen = good.clone();
    backlen[6 + 3] = 9; // back-length of "ab" (3 bytes of entry)
    assert!(load_lp(&backlen).reason.contains("back-length"));
    let mut overrun = good.clone();
    overrun[6] = 0x80 | 40; // a 40-byte string in a tiny blob
    let e = load_lp(&overrun);
    assert!(
        e.reason
            .contains("listpack: entry at byte 6 overruns the blob"),
        "{e}"
    );
    assert_eq!(
        e.offset,
        9 + 1 + 2,
        "errors inside a blob point at the blob"
    );
    let mut unknown = good.clone();
    unknown[6] = 0xf7;
    assert!(load_lp(&unknown)
        .reason
        .contains("unknown entry encoding 0xf7"));
    assert!(load_lp(&[1, 0, 0]).reason.contains("shorter than"));
    let dup = listpack(&[s("a"), s("a")]);
    assert!(load_lp(&dup).reason.contains("duplicate member 'a'"));
    let odd = listpack(&[s("f"), s("v"), s("g")]);
    let e = one_err(format::TYPE_HASH_LISTPACK, &raw(&odd));
    assert!(e.reason.contains("field 'g' has no value"), "{e}");
    let bad_score = listpack(&[s("m"), s("abc")]);
    let e = one_err(format::TYPE_ZSET_LISTPACK, &raw(&bad_score));
    assert!(
        e.reason
            .contains("score 'abc' of member 'm' is not a number"),
        "{e}"
    );
    let nan_score = listpack(&[s("m"), s("nan")]);
    assert!(one_err(format::TYPE_ZSET_LISTPACK, &raw(&nan_score))
        .reason
        .contains("NaN"));
    // The unknown count (65535) is accepted.
    let mut unknown_count = listpack(&[s("a"), s("b")]);
    unknown_count[4] = 0xff;
    unknown_count[5] = 0xff;
    assert_eq!(
        set_of(&one(format::TYPE_SET_LISTPACK, &raw(&unknown_count))),
        strings(&["a", "b"])
    );
}

#[test]
fn ziplist_intset_zipmap_corruption_is_named() {
    let good = ziplist(&[s("a"), s("b")]);
    let load_zl = |zl: &[u8]| one_err(format::TYPE_LIST_ZIPLIST, &raw(zl));
    let mut tail = good.clone();
    tail[4] = 10;
    assert!(load_zl(&tail)
        .reason
        .contains("tail offset 10 does not point at the last entry"));
    let mut prev = good.clone();
    prev[10 + 3] = 7;
    assert!(load_zl(&prev).reason.contains("previous entry has 7 bytes"));
    let mut count = good.clone();
    count[8] = 1;
    assert!(load_zl(&count)
        .reason
        .contains("header counts 1 entries, the blob has 2"));
    let mut enc = good.clone();
    enc[11] = 0xc5;
    assert!(load_zl(&enc).reason.contains("unknown entry encoding 0xc5"));
    let mut over = good.clone();
    over[11] = 50;
    assert!(load_zl(&over).reason.contains("overruns"));
    let hz = ziplist(&[s("f"), s("1"), s("f"), s("2")]);
    assert!(one_err(format::TYPE_HASH_ZIPLIST, &raw(&hz))
        .reason
        .contains("duplicate field 'f'"));

    let load_is = |is: &[u8]| one_err(format::TYPE_SET_INTSET, &raw(is));
    assert!(load_is(&intset(3, &[1])).reason.contains("element size 3"));
    assert!(load_is(&intset(2, &[5, 1]))
        .reason
        .contains("not ascending"));
    assert!(load_is(&intset(2, &[1, 1])).reason.contains("duplicate"));
    let mut short = intset(4, &[1, 2]);
    short.pop();
    assert!(load_is(&short).reason.contains("do not fill"));

    let load_zm = |zm: &[u8]| one_err(format::TYPE_HASH_ZIPMAP, &raw(zm));
    let zm = zipmap(&[(b"f", b"v", 0), (b"f", b"w", 0)]);
    assert!(load_zm(&zm).reason.contains("duplicate field 'f'"));
    let mut zm = zipmap(&[(b"f", b"v", 0)]);
    zm[0] = 3;
    assert!(load_zm(&zm).reason.contains("header counts 3"));
    let mut zm = zipmap(&[(b"f", b"v", 0)]);
    zm[1] = 200;
    assert!(load_zm(&zm).reason.contains("overruns"));
    // The "count it" header value and big lengths are fine.
    let long_value = vec![b'L'; 300];
    let mut zm = zipmap(&[(b"f", &long_value, 2)]);
    zm[0] = 254;
    assert_eq!(
        hash_of(&one(format::TYPE_HASH_ZIPMAP, &raw(&zm))),
        vec![("f".to_string(), text(&long_value))]
    );
}

// ---------------------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------------------

/// A version-10 file with every type and encoding, several databases and expiries.
fn every_type_file() -> Vec<u8> {
    let lp_hash = listpack(&[s("f"), s("v"), s("n"), E::I(300)]);
    let lp_zset = listpack(&[s("a"), s("1.5"), s("b"), E::I(2)]);
    let zl_hash = ziplist(&[s("f"), s("v"), s("x"), E::I(-9)]);
    let zl_zset = ziplist(&[s("a"), E::I(1), s("b"), s("2.5")]);
    let zl_list = ziplist(&[s("a"), E::I(70000), s("c")]);
    let mut lzf_value = vec![0xc3];
    let lzf = [0x01, b'a', b'b', 5 << 5, 0x01];
    lzf_value.extend(len(lzf.len() as u64));
    lzf_value.extend(len(9));
    lzf_value.extend(lzf);
    let body = [
        aux("redis-ver", &raw(b"7.0.15")),
        aux("ctime", &[0xc2, 1, 2, 3, 4]),
        vec![format::OPCODE_SELECTDB],
        len(0),
        vec![format::OPCODE_RESIZEDB],
        len(20),
        len(2),
        record(format::TYPE_STRING, "str", &raw(b"hello")),
        record(format::TYPE_STRING, "int", &[0xc1, 0x39, 0x30]),
        record(format::TYPE_STRING, "lzf", &lzf_value),
        vec![format::OPCODE_EXPIRETIME_MS],
        4_102_444_800_000u64.to_le_bytes().to_vec(),
        record(
            format::TYPE_LIST,
            "list1",
            &[len(2), raw(b"a"), raw(b"b")].concat(),
        ),
        record(
            format::TYPE_SET,
            "set",
            &[len(2), raw(b"a"), vec![0xc0, 3]].concat(),
        ),
        record(
            format::TYPE_ZSET,
            "zset1",
            &[
                len(2),
                raw(b"a"),
                vec![3],
                b"1.5".to_vec(),
                raw(b"b"),
                vec![254],
            ]
            .concat(),
        ),
        record(
            format::TYPE_ZSET_2,
            "zset2",
            &[len(1), raw(b"a"), 2.5f64.to_le_bytes().to_vec()].concat(),
        ),
        record(
            format::TYPE_HASH,
            "hash",
            &[len(1), raw(b"f"), raw(b"v")].concat(),
        ),
        record(
            format::TYPE_HASH_ZIPMAP,
            "zipmap",
            &raw(&zipmap(&[(b"f", b"v", 1)])),
        ),
        record(format::TYPE_LIST_ZIPLIST, "zllist", &raw(&zl_list)),
        vec![format::OPCODE_SELECTDB],
        len(3),
        record(
            format::TYPE_SET_INTSET,
            "intset",
            &raw(&intset(4, &[-70000, 5, 70000])),
        ),
        record(format::TYPE_ZSET_ZIPLIST, "zlzset", &raw(&zl_zset)),
        record(format::TYPE_HASH_ZIPLIST, "zlhash", &raw(&zl_hash)),
        record(
            format::TYPE_LIST_QUICKLIST,
            "ql1",
            &[len(1), raw(&zl_list)].concat(),
        ),
        vec![format::OPCODE_EXPIRETIME],
        2_000_000_000u32.to_le_bytes().to_vec(),
        record(format::TYPE_HASH_LISTPACK, "lphash", &raw(&lp_hash)),
        record(format::TYPE_ZSET_LISTPACK, "lpzset", &raw(&lp_zset)),
        record(
            format::TYPE_LIST_QUICKLIST_2,
            "ql2",
            &[
                len(2),
                len(2),
                raw(&listpack(&[s("a"), E::I(-5)])),
                len(1),
                raw(b"plain"),
            ]
            .concat(),
        ),
        record(
            format::TYPE_SET_LISTPACK,
            "lpset",
            &raw(&listpack(&[s("a"), E::I(1)])),
        ),
        record(
            format::TYPE_HASH_LISTPACK_EX,
            "lpex",
            &[vec![0; 8], raw(&listpack(&[s("f"), s("v"), E::I(0)]))].concat(),
        ),
        record(
            format::TYPE_HASH_METADATA,
            "meta",
            &[vec![0; 8], len(1), len(0), raw(b"f"), raw(b"v")].concat(),
        ),
    ]
    .concat();
    file(12, &body)
}

#[test]
fn every_type_file_loads() {
    let bytes = every_type_file();
    let (dbs, loaded) = load_all(&bytes).unwrap();
    assert_eq!(loaded.keys, 20);
    assert_eq!(dbs[0].len(), 10);
    assert_eq!(dbs[3].len(), 10);
    assert_eq!(dbs[3].expire_at(b"lphash"), Some(2_000_000_000_000));
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let bytes = every_type_file();
    for cut in 0..bytes.len() {
        let result = load_all(&bytes[..cut]);
        assert!(
            result.is_err(),
            "loaded a file cut at {cut} of {}",
            bytes.len()
        );
        let e = result.unwrap_err();
        assert!(
            e.offset <= cut as u64,
            "offset {} past cut {cut}: {e}",
            e.offset
        );
    }
}

#[test]
fn every_flipped_byte_is_an_error_or_a_load_never_a_panic() {
    let bytes = every_type_file();
    let checksum_at = bytes.len() - 8;
    for at in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= mask;
            // The checksum catches everything; zero it to exercise the parser itself.
            let mut unchecked = corrupt.clone();
            unchecked[checksum_at..].fill(0);
            // (A flipped version digit can make it an old, checksum-less file.)
            let version_digit = (5..9).contains(&at);
            assert!(load_all(&corrupt).is_err() || at >= checksum_at || version_digit);
            let _ = load_all(&unchecked);
            if at > 9 && at < checksum_at - 1 {
                let _ = decode_payload_value(&corrupt[9..checksum_at - 1]);
            }
        }
    }
}

#[test]
fn absurd_lengths_fail_fast_without_allocating() {
    let started = std::time::Instant::now();
    for n in [1u64 << 32, 1 << 60, u64::MAX] {
        for kind in [
            format::TYPE_STRING,
            format::TYPE_LIST,
            format::TYPE_SET,
            format::TYPE_ZSET_2,
            format::TYPE_HASH,
            format::TYPE_LIST_QUICKLIST_2,
            format::TYPE_HASH_METADATA_PRE_GA,
        ] {
            // One element follows, then EOF and the checksum, read as more elements.
            one_err(kind, &[len(n), raw(b"x")].concat());
            let bare = [vec![kind], len(n), raw(b"x")].concat();
            let e = decode_payload_value(&bare).unwrap_err();
            assert!(e.reason.contains("end of file"), "type {kind}: {e}");
        }
        // An LZF string announcing a huge result.
        let e = one_err(
            format::TYPE_STRING,
            &[vec![0xc3], len(3), len(n), vec![0, b'a', b'b']].concat(),
        );
        assert!(e.reason.contains("LZF"), "{e}");
        // A RESIZEDB hint for 2^60 keys.
        let body = [vec![format::OPCODE_RESIZEDB], len(n), len(n)].concat();
        assert!(load_all(&file(10, &body)).is_ok());
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

// ---------------------------------------------------------------------------------------
// DUMP payloads
// ---------------------------------------------------------------------------------------

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// DUMP payloads and DEBUG DIGEST-VALUE of keys written by redis-cli into redis-server 7.0.15
/// (some with tiny *-max-listpack-entries, so plain encodings appear).
const GOLDEN: &[(&str, &str, &str)] = &[
    (
        "quicklist 2, LZF node",
        "120102c31b4062136200000005008161020101dff902c12c02e04d62e04300014fff0a006831a37ce94f37e0",
        "19e547235e84a8e2ba0ac1a9877480299b6e46d3",
    ),
    (
        "hash listpack",
        "1012120000000400816602817602816e020c01ff0a0001369481d35b8974",
        "76d7ce7d8cb69c65ddb54b94589fa9396351461b",
    ),
    (
        "intset",
        "0b0e0200000003000000fdff010005000a007e2b589563748fa4",
        "f517922d228f699f88209ff464b0a0f8f386bba4",
    ),
    (
        "zset listpack",
        "111a1a0000000600816202dffe0281610283312e35048163020301ff0a00e5c16814373f6b4e",
        "11f184068c49da60714c9c511b5be212992e2558",
    ),
    (
        "string",
        "000568656c6c6f0a006372df766534200a",
        "36b23a1456b2dce2c3ed252c456761301dba8060",
    ),
    (
        "int string",
        "00c240e201000a00432647f443197283",
        "f65119d7a8e5aea6d8a789c71fad19e6308fd126",
    ),
    (
        "set",
        "02050178c003c002c00101790a006eaf07dd4a7afb34",
        "ae7b8c4cbdfc356cf1a9d0b62f21cd25e9ade57e",
    ),
    (
        "hash",
        "04030163c0030162c0020161c0010a00ddbe0ec114f077c1",
        "b60c36e529712296d694f27b5914cbe84950995e",
    ),
    (
        "zset 2 with -inf",
        "0503016200000000000004400161000000000000f03f0163000000000000f0ff0a009a24ca8fdcb1d08c",
        "f2ad7cda97b68291b8199d655f83d19f6e41e93c",
    ),
    (
        "LZF string",
        "00c3093c016161e02f000161610a00a67e08b217d09780",
        "ca4f235f052cf76011e4e1dc1a0f258f298e9ad1",
    ),
    (
        "quicklist 2, three nodes",
        "1203020d0d0000000200816102816202ff020d0d0000000200816302816402ff020a0a0000000100816502ff0a00ec5236a76020a1db",
        "379ea013f19d28532bfe02547a18f045cf890a7e",
    ),
];

#[test]
fn golden_payloads_from_redis_7_0() {
    for (what, payload, expected) in GOLDEN {
        let value = restore_payload(&hex(payload)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            digest::to_hex(&digest::value_digest(&value, false)),
            *expected,
            "{what}"
        );
    }
}

#[test]
fn payload_footer_is_checked() {
    let good = hex(GOLDEN[4].1);
    assert!(restore_payload(&good).is_ok());
    assert!(restore_payload(&good[..9])
        .unwrap_err()
        .reason
        .contains("shorter than"));
    let mut crc = good.clone();
    let n = crc.len();
    crc[n - 1] ^= 1;
    assert!(restore_payload(&crc)
        .unwrap_err()
        .reason
        .contains("checksum mismatch"));
    let mut zero = good.clone();
    zero[n - 8..].fill(0);
    assert!(
        restore_payload(&zero).is_err(),
        "RESTORE always verifies the CRC"
    );
    // Version 11 and 12 payloads are accepted, 13 is not.
    let with_version = |version: u16, body: &[u8]| {
        let mut out = body.to_vec();
        out.extend(version.to_le_bytes());
        let crc = crc64::update(0, &out);
        out.extend(crc.to_le_bytes());
        out
    };
    let body = [vec![format::TYPE_STRING], raw(b"v")].concat();
    assert!(restore_payload(&with_version(12, &body)).is_ok());
    let e = restore_payload(&with_version(13, &body)).unwrap_err();
    assert!(e.reason.contains("version 13"), "{e}");
    // Nothing may follow the value.
    let e = restore_payload(&with_version(10, &[body.clone(), vec![0]].concat())).unwrap_err();
    assert!(e.reason.contains("1 bytes left over"), "{e}");
    let set_listpack = [vec![format::TYPE_SET_LISTPACK], raw(&listpack(&[s("a")]))].concat();
    assert_eq!(
        set_of(&restore_payload(&with_version(11, &set_listpack)).unwrap()),
        strings(&["a"])
    );
    let stream = [vec![format::TYPE_STREAM_LISTPACKS_2], len(0)].concat();
    let e = restore_payload(&with_version(10, &stream)).unwrap_err();
    assert!(e.reason.contains("a stream"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Round trips through ringkv's own encoder
// ---------------------------------------------------------------------------------------

/// Values of every type on both sides of every encoding threshold.
fn sample_values() -> Vec<(String, Value)> {
    use crate::storage::value::{Map, Set};
    let mut out: Vec<(String, Value)> = Vec::new();
    for (name, text) in [
        ("empty", b"".to_vec()),
        ("int", b"-12345".to_vec()),
        ("bigint", i64::MIN.to_string().into_bytes()),
        ("noncanonical", b"007".to_vec()),
        ("binary", vec![0, 255, 10, 13]),
        ("compressible", b"ab".repeat(500)),
        (
            "random",
            (0..3000u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
    ] {
        out.push((format!("str-{name}"), Value::Str(Bstr::from_vec(text))));
    }
    for n in [1usize, 5, 128, 129, 1000] {
        let mut list = List::new();
        let mut map: Map<Bstr, Bstr> = Map::default();
        let mut set: Set<Bstr> = Set::default();
        let mut ints: Set<Bstr> = Set::default();
        let mut zset = ZSet::default();
        for i in 0..n {
            let element = if i % 3 == 0 {
                Bstr::from_i64(i as i64 * 1_000_003 - 7)
            } else {
                Bstr::from(format!("element-{i}").as_str())
            };
            list.push_back(element.clone());
            map.insert(Bstr::from(format!("f{i}").as_str()), element.clone());
            set.insert(element.clone());
            ints.insert(Bstr::from_i64(i as i64 * 3 - 100));
            zset.insert(&element, i as f64 / 3.0 - 10.0);
        }
        if n == 5 {
            list.push_back(Bstr::from_vec(vec![b'L'; 10_000]));
            map.insert(Bstr::from("long"), Bstr::from_vec(vec![b'v'; 100]));
            zset.insert(b"inf", f64::INFINITY);
            zset.insert(b"-inf", f64::NEG_INFINITY);
        }
        out.push((format!("list-{n}"), Value::List(Box::new(list))));
        out.push((format!("hash-{n}"), Value::Hash(Box::new(map))));
        out.push((format!("set-{n}"), Value::Set(Box::new(set))));
        out.push((format!("ints-{n}"), Value::Set(Box::new(ints))));
        out.push((format!("zset-{n}"), Value::ZSet(Box::new(zset))));
    }
    out
}

#[test]
fn ringkv_dump_payloads_restore_to_the_same_values() {
    for (name, value) in sample_values() {
        for compression in [true, false] {
            let payload = super::super::encode::dump_payload(&value, compression);
            let restored = restore_payload(&payload).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                digest::value_digest(&restored, false),
                digest::value_digest(&value, false),
                "{name}"
            );
        }
    }
}

#[test]
fn ringkv_files_load_back_with_the_same_digest_and_expiries() {
    let mut source = dbs(16);
    for (i, (name, value)) in sample_values().into_iter().enumerate() {
        let db = &mut source[[0, 1, 9, 15][i % 4]];
        db.set(name.as_bytes(), value);
        if i % 3 == 0 {
            db.set_expire_at(name.as_bytes(), 4_102_444_800_000 + i as u64);
        }
    }
    for compression in [true, false] {
        let options = super::super::SaveOptions {
            compression,
            ..Default::default()
        };
        let info = super::super::SaveInfo {
            repl_stream_db: Some(9),
            repl_id: Some("f".repeat(40)),
            repl_offset: Some(777),
            aof_base: true,
        };
        let mut bytes = Vec::new();
        super::super::encode::save(&source, &mut bytes, &options, &info, 1_700_000_000_000)
            .unwrap();
        let (loaded_dbs, loaded) = load_all(&bytes).unwrap();
        assert_eq!(loaded.info, info);
        assert_eq!(loaded.ctime, Some(1_700_000_000));
        assert_eq!(loaded.consumed, bytes.len());
        assert_eq!(
            digest::dataset_digest(&loaded_dbs),
            digest::dataset_digest(&source)
        );
        for (ours, theirs) in loaded_dbs.iter().zip(&source) {
            for (key, _) in theirs.iter() {
                assert_eq!(ours.expire_at(key), theirs.expire_at(key), "{key:?}");
            }
        }
    }
}
