//! RESTORE's propagation, checked on the replication stream itself (the whole-server tests
//! in `tests/rdb_compat.rs` compare its replies with redis-server's).

use std::sync::Arc;

use crate::command::{call, Ctx, Propagate};
use crate::config::Config;
use crate::protocol::{Reply, Resp};
use crate::server::client::ClientState;
use crate::server::shared::Shared;
use crate::server::shared::{ClientInfo, ClientKind};
use crate::storage::Store;

/// `DUMP` of the string "hello", taken from redis-server 7.0.15.
const HELLO: &str = "000568656c6c6f0a006372df766534200a";
const NOW: u64 = 1_000_000;

fn payload() -> Vec<u8> {
    (0..HELLO.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&HELLO[i..i + 2], 16).unwrap())
        .collect()
}

/// Runs one command; returns its reply and what it propagated.
fn run(store: &mut Store, args: &[&[u8]]) -> (String, String) {
    let config = Config::default();
    let shared = Shared::new(Config::default(), 1).expect("shared state");
    let info = ClientInfo::new(
        1,
        0,
        0,
        -1,
        String::new(),
        String::new(),
        ClientKind::Normal,
    );
    let mut client = ClientState::new(Arc::new(info), true);
    let mut reply = Reply::new(Resp::V2);
    let mut ctx = Ctx {
        shared: &shared,
        config: &config,
        store,
        client: &mut client,
        reply: &mut reply,
        now_ms: NOW,
        propagate: Propagate::AsIs,
    };
    call(&mut ctx, args);
    let stream = store.propagation.take();
    (
        String::from_utf8_lossy(&reply.buf).into_owned(),
        String::from_utf8_lossy(&stream).into_owned(),
    )
}

fn resp(args: &[&[u8]]) -> String {
    let mut out = Vec::new();
    crate::replication::propagate::encode(&mut out, args);
    String::from_utf8_lossy(&out).into_owned()
}

fn store() -> Store {
    let mut store = Store::new(16);
    store.propagation.enabled = true;
    // Every stream below starts after this SELECT.
    store.propagation.feed(0, &[b"PING".as_slice()]);
    store.propagation.take();
    store
}

#[test]
fn restore_without_ttl_or_with_absttl_propagates_as_sent() {
    let mut store = store();
    let p = payload();
    let args: [&[u8]; 4] = [b"RESTORE", b"k", b"0", &p];
    assert_eq!(run(&mut store, &args), ("+OK\r\n".into(), resp(&args)));
    assert_eq!(store.dbs[0].expire_at(b"k"), None);
    let args: [&[u8]; 5] = [b"RESTORE", b"a", b"2000000", &p, b"ABSTTL"];
    assert_eq!(run(&mut store, &args), ("+OK\r\n".into(), resp(&args)));
    assert_eq!(store.dbs[0].expire_at(b"a"), Some(2_000_000));
}

#[test]
fn relative_ttl_is_propagated_as_absolute() {
    let mut store = store();
    let p = payload();
    let (reply, stream) = run(&mut store, &[b"RESTORE", b"k", b"5000", &p, b"REPLACE"]);
    assert_eq!(reply, "+OK\r\n");
    assert_eq!(
        stream,
        resp(&[b"RESTORE", b"k", b"1005000", &p, b"REPLACE", b"ABSTTL"])
    );
    assert_eq!(store.dbs[0].expire_at(b"k"), Some(NOW + 5000));
}

#[test]
fn a_ttl_in_the_past_creates_nothing_and_replace_propagates_del() {
    let mut store = store();
    let p = payload();
    let (reply, stream) = run(&mut store, &[b"RESTORE", b"k", b"10", &p, b"ABSTTL"]);
    assert_eq!((reply.as_str(), stream.as_str()), ("+OK\r\n", ""));
    assert!(store.dbs[0].peek(b"k").is_none());
    run(&mut store, &[b"RESTORE", b"k", b"0", &p]);
    let dirty = store.dirty;
    let (reply, stream) = run(
        &mut store,
        &[b"RESTORE", b"k", b"10", &p, b"ABSTTL", b"REPLACE"],
    );
    assert_eq!(reply, "+OK\r\n");
    assert_eq!(stream, resp(&[b"DEL", b"k"]));
    assert!(store.dbs[0].peek(b"k").is_none());
    assert_eq!(store.dirty, dirty + 1);
    // A replica keeps the key with its past expiry and waits for the master's DEL.
    store.replica_mode = true;
    run(&mut store, &[b"RESTORE", b"r", b"10", &p, b"ABSTTL"]);
    assert_eq!(store.dbs[0].expire_at(b"r"), Some(10));
}

#[test]
fn failed_restores_propagate_nothing() {
    let mut store = store();
    let p = payload();
    run(&mut store, &[b"RESTORE", b"k", b"0", &p]);
    for args in [
        vec![&b"RESTORE"[..], b"k", b"0", &p],
        vec![b"RESTORE", b"n", b"-1", &p],
        vec![b"RESTORE", b"n", b"0", b"garbage"],
        vec![b"RESTORE", b"n", b"0", &p, b"FREQ", b"300"],
    ] {
        let (reply, stream) = run(&mut store, &args);
        assert!(reply.starts_with('-'), "{reply}");
        assert_eq!(stream, "");
    }
}
