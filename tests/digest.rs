//! The same data written into ringkv and into a real redis-server 7.0 gives the same
//! `DEBUG DIGEST` and `DEBUG DIGEST-VALUE`: our keyspace holds exactly what Redis would.

mod support;

use support::workload::{apply, commands as workload, digest};
use support::Server;

#[test]
fn same_workload_gives_same_digest_as_redis() {
    let commands = workload();
    let ringkv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    apply(&ringkv, &commands);
    apply(&redis, &commands);
    let ours = digest(&ringkv);
    let theirs = digest(&redis);
    assert_ne!(theirs, "0".repeat(40));
    assert_eq!(ours, theirs, "DEBUG DIGEST differs from redis-server 7.0");

    let mut ringkv_con = ringkv.client();
    let mut redis_con = redis.client();
    for db in [0, 1, 2, 5] {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut ringkv_con).unwrap();
        let _: () = redis::cmd("SELECT").arg(db).query(&mut redis_con).unwrap();
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut redis_con).unwrap();
        keys.sort();
        let mut our_keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut ringkv_con).unwrap();
        our_keys.sort();
        assert_eq!(our_keys, keys, "key sets differ in db {db}");
        for key in keys {
            let ours: Vec<String> = redis::cmd("DEBUG")
                .arg("DIGEST-VALUE")
                .arg(&key)
                .query(&mut ringkv_con)
                .unwrap();
            let theirs: Vec<String> = redis::cmd("DEBUG")
                .arg("DIGEST-VALUE")
                .arg(&key)
                .query(&mut redis_con)
                .unwrap();
            assert_eq!(ours, theirs, "DIGEST-VALUE differs for {key} in db {db}");
        }
    }
}

#[test]
fn empty_dataset_digest_is_zeros_like_redis() {
    let ringkv = Server::start(&[]);
    assert_eq!(digest(&ringkv), "0".repeat(40));
}
