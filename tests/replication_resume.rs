//! An interrupted full sync resumes from the byte it reached (issue 4 item 6(a), ringkv's
//! own): the master keeps the snapshot file it sent and the backlog since its fork, and a
//! ringkv replica whose link broke mid-transfer asks for the rest with
//! `REPLCONF rdb-resume`. A real Redis master refuses that option, and the replica then syncs
//! in full as usual. The link is cut at an exact byte by a proxy between the two processes.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use support::proxy::Proxy;
use support::{field, field_u64, query, wait_caught_up, wait_for, workload, Server};

/// Keys and value size of the data set: with `rdbcompression no` the snapshot is about
/// 60 MB, so a transfer can be cut well inside it.
const KEYS: &str = "60000";
const VALUE_SIZE: &str = "1000";
/// Where the first transfer is cut (bytes from the master, lines and payload).
const CUT_AT: u64 = 20_000_000;

fn populate(server: &Server) {
    let mut con = server.client();
    let _: () = query(&mut con, &["DEBUG", "POPULATE", KEYS, "key", VALUE_SIZE]);
}

/// Writes made while the transfer is stalled: they must reach the replica through the
/// backlog after the resumed file.
fn writes_during_the_transfer(master: &Server) {
    let mut con = master.client();
    for i in 0..500 {
        let _: () = query(&mut con, &["SET", &format!("during:{i}"), &i.to_string()]);
    }
    let _: i64 = query(&mut con, &["DEL", "key:1", "key:2"]);
    let _: i64 = query(&mut con, &["RPUSH", "during:list", "a", "b", "c"]);
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("temp-"))
        .collect()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len()
}

/// Populates `master`, starts a ringkv replica of it through a proxy, and waits until the
/// first transfer stalled at [`CUT_AT`] bytes.
fn replica_stalled_mid_transfer(master: &Server) -> (Proxy, Server) {
    populate(master);
    let proxy = Proxy::start(master.port);
    proxy.stall_next_connection_at(CUT_AT);
    let proxy_port = proxy.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &proxy_port]);
    proxy.wait_stalled(0, Duration::from_secs(60));
    (proxy, replica)
}

#[test]
fn a_full_sync_cut_mid_transfer_resumes_from_the_byte_it_reached() {
    let master = Server::start(&["--rdbcompression", "no"]);
    let (proxy, replica) = replica_stalled_mid_transfer(&master);
    writes_during_the_transfer(&master);
    proxy.cut(0);

    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));

    // One snapshot, one full sync: the second connection carried the rest of the file and
    // the stream, not the file again.
    assert_eq!(
        field_u64(&master, "stats", "sync_full"),
        1,
        "master:\n{}\nreplica:\n{}",
        master.log(),
        replica.log()
    );
    assert_eq!(field_u64(&master, "stats", "total_forks"), 1);
    let snapshot = file_len(&master.dir.path().join("dump.rdb"));
    assert!(snapshot > 3 * CUT_AT / 2, "snapshot of {snapshot} bytes");
    // Everything the link carried after the cut (the snapshot connection and the stream
    // connection of the split sync, both through the proxy): the rest of the file, the
    // writes, the handshakes.
    let connections = proxy.connections();
    assert!(connections >= 2);
    let after_cut: u64 = (1..connections).map(|i| proxy.downstream_bytes(i)).sum();
    assert!(
        after_cut < snapshot - CUT_AT + 2_000_000,
        "{after_cut} bytes after the cut, for a {snapshot}-byte snapshot cut at {CUT_AT}"
    );
    let master_log = master.log();
    assert!(
        master_log.contains("Resuming the full resync of replica"),
        "{master_log}"
    );
    let replica_log = replica.log();
    assert!(
        replica_log.contains("Asking the master to resume the broken snapshot transfer")
            && replica_log.contains("Resuming the snapshot transfer from master")
            && replica_log.contains("bytes of stream received while loading"),
        "{replica_log}"
    );
    assert_eq!(temp_files(replica.dir.path()), Vec::<String>::new());

    // And the link carries on as any other.
    let mut con = master.client();
    let _: () = query(&mut con, &["SET", "after", "resume"]);
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
}

#[test]
fn a_master_killed_mid_transfer_is_followed_by_a_full_sync_after_its_restart() {
    let master = Server::start(&["--rdbcompression", "no"]);
    let (proxy, replica) = replica_stalled_mid_transfer(&master);

    // kill -9 while the replica holds part of the snapshot; the new process loads the
    // dump.rdb the replication child wrote, and holds no snapshot to resume.
    let master = master.restart_on_same_port(&["--rdbcompression", "no"]);
    proxy.cut(0);
    wait_for("the replica to full sync", Duration::from_secs(60), || {
        field_u64(&master, "stats", "sync_full") == 1
    });
    let mut con = master.client();
    let _: () = query(&mut con, &["SET", "after", "restart"]);
    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
    assert_eq!(field(&replica, "replication", "master_link_status"), "up");
    let replica_log = replica.log();
    assert!(
        replica_log.contains("The master can't resume the broken snapshot transfer"),
        "{replica_log}"
    );
    assert_eq!(temp_files(replica.dir.path()), Vec::<String>::new());
}

#[test]
fn a_real_redis_master_refuses_the_resume_and_the_replica_syncs_in_full() {
    let master = Server::start_redis(&["--rdbcompression", "no", "--repl-diskless-sync", "no"]);
    let (proxy, replica) = replica_stalled_mid_transfer(&master);
    writes_during_the_transfer(&master);
    proxy.cut(0);

    wait_caught_up(&master, &replica);
    assert_eq!(workload::digest(&master), workload::digest(&replica));
    assert_eq!(field_u64(&master, "stats", "sync_full"), 2);
    let replica_log = replica.log();
    assert!(
        replica_log.contains(
            "The master can't resume the broken snapshot transfer: -ERR Unrecognized REPLCONF option: rdb-resume"
        ),
        "{replica_log}"
    );
    assert_eq!(temp_files(replica.dir.path()), Vec::<String>::new());
}

/// A raw replica: the protocol, byte for byte.
struct RawReplica {
    reader: BufReader<TcpStream>,
}

impl RawReplica {
    fn connect(master: &Server) -> RawReplica {
        RawReplica {
            reader: BufReader::new(master.raw()),
        }
    }

    fn send(&mut self, args: &[&str]) {
        let mut bytes = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            bytes.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        self.reader.get_mut().write_all(&bytes).unwrap();
    }

    /// The next line that is not a `\n` keep-alive.
    fn line(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end().to_string();
            if !line.is_empty() {
                return line;
            }
        }
    }

    fn bytes(&mut self, count: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; count];
        self.reader.read_exact(&mut bytes).unwrap();
        bytes
    }
}

#[test]
fn the_resumed_bytes_are_exactly_the_rest_of_the_snapshot_file() {
    let master = Server::start(&[]);
    let mut con = master.client();
    let _: () = query(&mut con, &["DEBUG", "POPULATE", "2000", "key", "50"]);

    let mut first = RawReplica::connect(&master);
    first.send(&["REPLCONF", "capa", "eof", "capa", "psync2"]);
    assert_eq!(first.line(), "+OK");
    first.send(&["PSYNC", "?", "-1"]);
    let fullresync = first.line();
    let words: Vec<&str> = fullresync.split(' ').collect();
    assert_eq!(words[0], "+FULLRESYNC", "{fullresync}");
    let (replid, offset) = (words[1].to_string(), words[2].to_string());
    let header = first.line();
    let len: usize = header.strip_prefix('$').unwrap().parse().unwrap();
    assert!(len > 4000, "{len}");
    let head = first.bytes(1000);
    drop(first);

    // Writes after the fork follow the resumed file.
    let _: () = query(&mut con, &["SET", "after-fork", "1"]);

    let mut second = RawReplica::connect(&master);
    for bad in [
        format!("{replid}:{offset}:{}:1000", len + 1),
        format!("{replid}:{}:{len}:1000", offset.parse::<u64>().unwrap() + 1),
        format!("{}:{offset}:{len}:1000", "f".repeat(40)),
    ] {
        second.send(&["REPLCONF", "rdb-resume", &bad]);
        assert_eq!(
            second.line(),
            "-ERR can't resume the snapshot transfer: this master no longer has that snapshot"
        );
    }
    second.send(&["REPLCONF", "rdb-resume", "nonsense"]);
    assert_eq!(
        second.line(),
        "-ERR REPLCONF rdb-resume wants <replid>:<offset>:<size>:<received>"
    );
    second.send(&[
        "REPLCONF",
        "rdb-resume",
        &format!("{replid}:{offset}:{len}:1000"),
    ]);
    assert_eq!(second.line(), "+OK");
    second.send(&["PSYNC", "?", "-1"]);
    assert_eq!(second.line(), format!("+RESUME {replid} {offset} 1000"));
    assert_eq!(second.line(), format!("${}", len - 1000));
    let tail = second.bytes(len - 1000);
    let whole = std::fs::read(master.dir.path().join("dump.rdb")).unwrap();
    assert_eq!([head, tail].concat(), whole);
    // Then the stream from the fork offset on: the SET made after the fork.
    let mut stream = Vec::new();
    while !String::from_utf8_lossy(&stream).contains("after-fork") {
        assert!(stream.len() < 4096, "{}", String::from_utf8_lossy(&stream));
        stream.extend(second.bytes(1));
    }
    assert_eq!(field_u64(&master, "stats", "sync_full"), 1);
    assert_eq!(field_u64(&master, "stats", "total_forks"), 1);
    wait_for("the replica to be online", Duration::from_secs(10), || {
        field(&master, "replication", "slave0").contains("state=online")
    });
}

#[test]
fn a_snapshot_past_its_ttl_or_with_resume_disabled_is_not_resumed() {
    let master = Server::start(&["--repl-resume-snapshot-ttl", "0"]);
    let mut con = master.client();
    let _: () = query(&mut con, &["DEBUG", "POPULATE", "2000", "key", "50"]);
    let mut first = RawReplica::connect(&master);
    first.send(&["PSYNC", "?", "-1"]);
    let fullresync = first.line();
    let words: Vec<&str> = fullresync.split(' ').collect();
    let len: usize = first.line().strip_prefix('$').unwrap().parse().unwrap();
    first.bytes(100);
    drop(first);
    let mut second = RawReplica::connect(&master);
    second.send(&[
        "REPLCONF",
        "rdb-resume",
        &format!("{}:{}:{len}:100", words[1], words[2]),
    ]);
    assert_eq!(
        second.line(),
        "-ERR can't resume the snapshot transfer: this master keeps no snapshot to resume"
    );
    // CONFIG SET turns it on for the next snapshot.
    let _: () = query(
        &mut con,
        &["CONFIG", "SET", "repl-resume-snapshot-ttl", "600"],
    );
    let ttl: Vec<String> = query(&mut con, &["CONFIG", "GET", "repl-resume-snapshot-ttl"]);
    assert_eq!(ttl, ["repl-resume-snapshot-ttl", "600"]);
}
