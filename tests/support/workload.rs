//! A deterministic workload over every type, several databases, TTLs and the encodings'
//! size thresholds, shared by the digest, persistence and AOF tests.

use super::Server;

/// A deterministic workload touching every type, several databases, TTLs, overwrites,
/// deletions and the encodings' size thresholds.
pub fn commands() -> Vec<Vec<String>> {
    let mut commands: Vec<Vec<String>> = Vec::new();
    let mut push = |parts: &[&str]| commands.push(parts.iter().map(|s| s.to_string()).collect());
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for db in 0..3 {
        let db_text = db.to_string();
        push(&["SELECT", &db_text]);
        for i in 0..300 {
            let r = next();
            let key = format!("k{}", r % 150);
            let member = format!("m{}", (r >> 20) % 200);
            let number = ((r >> 32) % 1000) as i64 - 500;
            let number_text = number.to_string();
            match r % 17 {
                0 => push(&["SET", &format!("s:{key}"), &format!("value-{i}")]),
                1 => push(&["INCRBY", &format!("n:{key}"), &number_text]),
                2 => push(&["APPEND", &format!("s:{key}"), "tail"]),
                3 => push(&["RPUSH", &format!("l:{key}"), &member, &number_text]),
                4 => push(&["LPUSH", &format!("l:{key}"), &member]),
                5 => push(&["LPOP", &format!("l:{key}")]),
                6 => push(&["HSET", &format!("h:{key}"), &member, &number_text]),
                7 => push(&["HDEL", &format!("h:{key}"), &member]),
                8 => push(&["SADD", &format!("set:{key}"), &member, &number_text]),
                9 => push(&["SREM", &format!("set:{key}"), &member]),
                10 => push(&[
                    "ZADD",
                    &format!("z:{key}"),
                    &format!("{}.{}", number, i % 7),
                    &member,
                ]),
                11 => push(&["ZINCRBY", &format!("z:{key}"), "1.5", &member]),
                12 => push(&["ZREM", &format!("z:{key}"), &member]),
                13 => push(&["PEXPIREAT", &format!("s:{key}"), "4102444800000"]),
                14 => push(&["DEL", &format!("n:{key}")]),
                15 => push(&["SADD", &format!("ints:{key}"), &number_text]),
                _ => push(&["HINCRBY", &format!("h:{key}"), "counter", &number_text]),
            }
        }
    }
    // Containers past the compact-encoding thresholds.
    push(&["SELECT", "5"]);
    for i in 0..700 {
        let i_text = i.to_string();
        push(&["RPUSH", "biglist", &i_text]);
        push(&["HSET", "bighash", &format!("f{i}"), &i_text]);
        push(&["SADD", "bigset", &format!("member-{i}")]);
        push(&["SADD", "bigintset", &i_text]);
        push(&[
            "ZADD",
            "bigzset",
            &format!("{}", i as f64 / 3.0),
            &format!("z{i}"),
        ]);
    }
    push(&["SET", "long", &"x".repeat(5000)]);
    push(&["SET", "float", "3.25"]);
    push(&["INCRBYFLOAT", "float", "0.1"]);
    push(&[
        "ZADD",
        "special",
        "-inf",
        "a",
        "+inf",
        "b",
        "0",
        "c",
        "1e-7",
        "d",
        "123456789012",
        "e",
    ]);
    commands
}

pub fn apply(server: &Server, commands: &[Vec<String>]) {
    let mut con = server.client();
    for command in commands {
        let mut cmd = redis::cmd(&command[0]);
        for arg in &command[1..] {
            cmd.arg(arg);
        }
        // Errors (wrong type after a random overwrite) are part of the workload.
        let _: redis::RedisResult<redis::Value> = cmd.query(&mut con);
    }
}

pub fn digest(server: &Server) -> String {
    let mut con = server.client();
    redis::cmd("DEBUG").arg("DIGEST").query(&mut con).unwrap()
}
