//! Real Redis Sentinel (Debian's redis-sentinel 7.0.15) managing ringkv servers (SPEC §3, high
//! availability): three sentinels with quorum 2 watch a ringkv master and two ringkv
//! replicas, fail over when the master dies, reconfigure the other replica, hand clients the
//! new master's address, and turn the old master into a replica when it comes back, dropping
//! what it accepted that the others never saw.

mod support;

use std::collections::HashMap;
use std::time::Duration;
use support::{field, query, wait_caught_up, wait_for, workload, Server};

const MASTER_NAME: &str = "mymaster";

/// Sentinel timings short enough for a test, as Redis' own sentinel tests use them.
const DOWN_AFTER_MS: u64 = 1000;
const FAILOVER_TIMEOUT_MS: u64 = 10_000;

/// How long a failover (detection, election, promotion, reconfiguration) may take. A split
/// vote makes the sentinels wait twice the failover timeout before the next attempt.
const FAILOVER_WAIT: Duration = Duration::from_secs(90);

/// A ringkv server with a config file, so the `CONFIG REWRITE` Sentinel sends inside its
/// reconfiguration transaction records the new role as it would in production.
fn ringkv_with_config(extra: &[&str]) -> Server {
    with_config(Server::start_in, extra)
}

/// A real redis-server 7.0 the same way.
fn redis_with_config(extra: &[&str]) -> Server {
    with_config(Server::start_redis_in, extra)
}

fn with_config(start: fn(tempfile::TempDir, &[&str]) -> Server, extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join(CONFIG_FILE);
    std::fs::write(&conf, "# written by tests/sentinel.rs\n").unwrap();
    let conf = conf.display().to_string();
    let mut args = vec![conf.as_str()];
    args.extend_from_slice(extra);
    start(dir, &args)
}

const CONFIG_FILE: &str = "server.conf";

fn config_path(server: &Server) -> String {
    server.dir.path().join(CONFIG_FILE).display().to_string()
}

/// Three sentinels (quorum 2) watching `master_port`, `more` added to their configuration
/// (`sentinel auth-pass ...`), once every one of them found both replicas (through the
/// master's INFO) and the two other sentinels (through hello messages published on the
/// master's pub/sub).
fn start_sentinels(master_port: u16, more: &str) -> Vec<Server> {
    let sentinels: Vec<Server> = (0..3).map(|_| start_sentinel(master_port, more)).collect();
    wait_for(
        "the sentinels to discover the replicas and each other",
        Duration::from_secs(30),
        || {
            sentinels.iter().all(|s| {
                let m = sentinel_master(s);
                m["num-slaves"] == "2" && m["num-other-sentinels"] == "2"
            })
        },
    );
    sentinels
}

/// Waits until every sentinel names one of `candidates` as the master; returns it.
fn wait_promoted<'a>(sentinels: &[Server], candidates: &[&'a Server]) -> &'a Server {
    let deadline = std::time::Instant::now() + FAILOVER_WAIT;
    loop {
        let told: Vec<u16> = sentinels.iter().map(master_port_told_by).collect();
        if let Some(promoted) = candidates
            .iter()
            .find(|c| told.iter().all(|port| *port == c.port))
        {
            return promoted;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failover within {FAILOVER_WAIT:?}:\n{}",
            logs(&sentinels.iter().collect::<Vec<_>>())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One redis-sentinel process watching `master_port`.
fn start_sentinel(master_port: u16, more: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n{more}"
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    Server::start_sentinel_in(dir, &[conf.as_str()])
}

/// `SENTINEL MASTER <name>` as a map.
fn sentinel_master(sentinel: &Server) -> HashMap<String, String> {
    let mut con = sentinel.client();
    let flat: Vec<String> = query(&mut con, &["SENTINEL", "MASTER", MASTER_NAME]);
    flat.chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

/// The master port a sentinel hands to clients (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
fn master_port_told_by(sentinel: &Server) -> u16 {
    let mut con = sentinel.client();
    let addr: Vec<String> = query(
        &mut con,
        &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
    );
    assert_eq!(addr[0], "127.0.0.1");
    addr[1].parse().unwrap()
}

fn role(server: &Server) -> String {
    let mut con = server.client();
    let reply: Vec<redis::Value> = query(&mut con, &["ROLE"]);
    redis::from_redis_value(&reply[0]).unwrap()
}

/// Writes the shared workload to `master`, waits until both replicas acknowledged it, and
/// returns the data's digest.
fn fill_and_replicate(master: &Server) -> String {
    workload::apply(master, &workload::commands());
    let mut con = master.client();
    let acked: i64 = query(&mut con, &["WAIT", "2", "10000"]);
    assert_eq!(acked, 2);
    workload::digest(master)
}

fn logs(servers: &[&Server]) -> String {
    servers
        .iter()
        .map(|s| format!("--- port {} ---\n{}", s.port, s.log()))
        .collect()
}

#[test]
fn sentinel_fails_over_a_ringkv_master_and_the_old_master_rejoins_as_a_replica() {
    let master = ringkv_with_config(&["--appendonly", "yes"]);
    let master_port = master.port.to_string();
    let follow = ["--replicaof", "127.0.0.1", master_port.as_str()];
    let replicas = [ringkv_with_config(&follow), ringkv_with_config(&follow)];

    let digest_before = fill_and_replicate(&master);

    let sentinels = start_sentinels(master.port, "");
    for sentinel in &sentinels {
        assert_eq!(sentinel_master(sentinel)["flags"], "master");
        assert_eq!(master_port_told_by(sentinel), master.port);
    }

    // The master dies.
    master.signal(libc::SIGKILL);
    let promoted = wait_promoted(&sentinels, &[&replicas[0], &replicas[1]]);
    let other = replicas.iter().find(|r| r.port != promoted.port).unwrap();
    let promoted_port = promoted.port;

    // The promoted replica is a master with all the data, and takes writes.
    assert_eq!(role(promoted), "master");
    assert_eq!(workload::digest(promoted), digest_before);
    let mut con = promoted.client();
    for i in 0..100 {
        let _: () = query(&mut con, &["SET", &format!("after-failover:{i}"), "v"]);
    }
    // The other replica was pointed at it, and follows.
    wait_for(
        "the other replica to follow the promoted one",
        FAILOVER_WAIT,
        || {
            field(other, "replication", "master_port") == promoted_port.to_string()
                && field(other, "replication", "master_link_status") == "up"
        },
    );
    wait_caught_up(promoted, other);
    // PSYNC2: the former sibling continued from the promoted replica's history.
    assert_eq!(field(promoted, "stats", "sync_partial_ok"), "1");
    assert_eq!(field(promoted, "stats", "sync_full"), "0");
    // Sentinel's CONFIG REWRITE recorded both roles in the config files.
    let promoted_conf = std::fs::read_to_string(config_path(promoted)).unwrap();
    assert!(
        !promoted_conf.contains("replicaof"),
        "promoted config:\n{promoted_conf}"
    );
    let other_conf = std::fs::read_to_string(config_path(other)).unwrap();
    assert!(
        other_conf.contains(&format!("replicaof 127.0.0.1 {promoted_port}")),
        "other replica's config:\n{other_conf}"
    );

    // The old master comes back as a master on its address, with its data, and takes a
    // write before the sentinels convert it (they wait 8 s after its role changed): a
    // split brain in miniature.
    let config = config_path(&master);
    let old = master.restart_on_same_port(&[config.as_str(), "--appendonly", "yes"]);
    let mut con = old.client();
    let _: () = query(
        &mut con,
        &["SET", "split-brain", "never seen by the others"],
    );
    assert_eq!(role(&old), "master");

    wait_for(
        "the sentinels to turn the old master into a replica",
        FAILOVER_WAIT,
        || {
            role(&old) == "slave"
                && field(&old, "replication", "master_port") == promoted_port.to_string()
                && field(&old, "replication", "master_link_status") == "up"
        },
    );
    wait_caught_up(promoted, &old);
    let mut con = old.client();
    let lost: Option<String> = query(&mut con, &["GET", "split-brain"]);
    assert_eq!(
        lost, None,
        "the old master kept a write the others never saw"
    );
    let expected = workload::digest(promoted);
    assert_eq!(workload::digest(&old), expected);
    assert_eq!(workload::digest(other), expected);
    let old_conf = std::fs::read_to_string(&config).unwrap();
    assert!(
        old_conf.contains(&format!("replicaof 127.0.0.1 {promoted_port}")),
        "old master's config:\n{old_conf}"
    );

    // Every sentinel lists the old master as a replica that is up again.
    wait_for(
        "the sentinels to see the old master as a healthy replica",
        Duration::from_secs(30),
        || {
            sentinels.iter().all(|s| {
                let mut con = s.client();
                let list: Vec<Vec<String>> =
                    query(&mut con, &["SENTINEL", "REPLICAS", MASTER_NAME]);
                list.iter().any(|entry| {
                    let map: HashMap<&str, &str> = entry
                        .chunks(2)
                        .map(|p| (p[0].as_str(), p[1].as_str()))
                        .collect();
                    map["port"] == old.port.to_string() && map["flags"] == "slave"
                })
            })
        },
    );
}

#[test]
fn sentinel_failover_command_hands_a_ringkv_master_over_to_a_redis_replica() {
    let master = ringkv_with_config(&[]);
    let master_port = master.port.to_string();
    let follow = ["--replicaof", "127.0.0.1", master_port.as_str()];
    let redis_replica = redis_with_config(&follow);
    // Priority 0: Sentinel must never promote this one.
    let mut never = follow.to_vec();
    never.extend_from_slice(&["--replica-priority", "0"]);
    let ringkv_replica = ringkv_with_config(&never);

    let digest_before = fill_and_replicate(&master);

    let sentinels = start_sentinels(master.port, "");

    // A manual failover while everything is up: the only candidate is the Redis replica.
    let mut con = sentinels[0].client();
    let _: () = query(&mut con, &["SENTINEL", "FAILOVER", MASTER_NAME]);
    wait_promoted(&sentinels, &[&redis_replica]);
    assert_eq!(role(&redis_replica), "master");
    assert_eq!(workload::digest(&redis_replica), digest_before);

    // Both ringkv servers end up replicating from the Redis master: the replica through
    // Sentinel's reconfiguration, the old master through its conversion.
    let redis_port = redis_replica.port.to_string();
    for (what, server) in [("replica", &ringkv_replica), ("old master", &master)] {
        wait_for(
            &format!("the ringkv {what} to follow the Redis master"),
            FAILOVER_WAIT,
            || {
                role(server) == "slave"
                    && field(server, "replication", "master_port") == redis_port
                    && field(server, "replication", "master_link_status") == "up"
            },
        );
    }
    let mut con = redis_replica.client();
    for i in 0..100 {
        let _: () = query(&mut con, &["SET", &format!("after-failover:{i}"), "v"]);
    }
    wait_caught_up(&redis_replica, &ringkv_replica);
    wait_caught_up(&redis_replica, &master);
    let expected = workload::digest(&redis_replica);
    assert_eq!(workload::digest(&ringkv_replica), expected);
    assert_eq!(workload::digest(&master), expected);
    // The old master kept nothing of its own: it holds exactly the new master's data.
    let mut con = master.client();
    let ten: Option<String> = query(&mut con, &["GET", "after-failover:10"]);
    assert_eq!(ten.as_deref(), Some("v"));
}

#[test]
fn sentinel_with_auth_pass_fails_over_password_protected_servers() {
    // Production style: every server has `requirepass` and `masterauth`, the sentinels
    // `auth-pass`; a ringkv master with a ringkv and a Redis replica.
    const PASSWORD: &str = "s3cret";
    let auth = ["--requirepass", PASSWORD, "--masterauth", PASSWORD];
    let master = ringkv_with_config(&auth).authenticated(PASSWORD);
    let master_port = master.port.to_string();
    let mut follow = vec!["--replicaof", "127.0.0.1", master_port.as_str()];
    follow.extend_from_slice(&auth);
    let replicas = [
        ringkv_with_config(&follow).authenticated(PASSWORD),
        redis_with_config(&follow).authenticated(PASSWORD),
    ];
    let digest_before = fill_and_replicate(&master);

    let auth_pass = format!("sentinel auth-pass {MASTER_NAME} {PASSWORD}\n");
    let sentinels = start_sentinels(master.port, &auth_pass);

    master.signal(libc::SIGKILL);
    let promoted = wait_promoted(&sentinels, &[&replicas[0], &replicas[1]]);
    let other = replicas.iter().find(|r| r.port != promoted.port).unwrap();
    assert_eq!(role(promoted), "master");
    assert_eq!(workload::digest(promoted), digest_before);
    let mut con = promoted.client();
    let _: () = query(&mut con, &["SET", "after-failover", "v"]);
    let promoted_port = promoted.port.to_string();
    wait_for(
        "the other replica to follow the promoted one",
        FAILOVER_WAIT,
        || {
            field(other, "replication", "master_port") == promoted_port
                && field(other, "replication", "master_link_status") == "up"
        },
    );
    wait_caught_up(promoted, other);
    assert_eq!(workload::digest(other), workload::digest(promoted));
}
