//! AOF rewrites (`BGREWRITEAOF`, automatic, and the one that turns the AOF on), and the
//! base file they write.
//!
//! The sequence, as Redis 7.0 runs it:
//! 1. Parent, keyspace locked: commands already executed are written to the current incr
//!    file; a new incr file is opened and named in the manifest (or, while the AOF is being
//!    turned on, a temporary incr file is opened), so writes after the fork go there.
//! 2. Fork. The child writes the dataset it sees to `temp-rewriteaof-bg-<pid>.aof` in the
//!    AOF directory (an RDB image with `aof-base`, or commands when `aof-use-rdb-preamble
//!    no`), fsyncs it and exits.
//! 3. Parent, when the child succeeded ([`rewrite_finished`]): renames it to the next
//!    `.base.rdb|aof` name, turns the old base and the incr files the new base covers into
//!    history, writes the manifest atomically, deletes the history files.
//!
//! A crash or failure before step 3's manifest write leaves the previous manifest, which
//! still names every file needed (the old base, the old incr files and the new one).

use std::io::{BufWriter, Write};
use std::path::Path;

use super::manifest::{temp_incr_name, temp_rewrite_name};
use super::{dir_path, open_incr, persist_manifest, unix_secs, Aof, RunningRewrite, Status};
use crate::config::Config;
use crate::log;
use crate::persistence::fork::{self, ChildKind};
use crate::persistence::{files, rdb, snapshot};
use crate::server::shared::{unix_time_ms, Shared};
use crate::storage::{Db, Store, Value};

/// Elements per RPUSH/SADD/ZADD/HMSET command in a command-form base (Redis'
/// `AOF_REWRITE_ITEMS_PER_CMD`).
const ITEMS_PER_COMMAND: usize = 64;
/// Failed rewrites in a row after which automatic ones back off (Redis'
/// `AOF_REWRITE_LIMITE_THRESHOLD`).
const LIMIT_THRESHOLD: u64 = 3;
/// Longest back-off, in minutes.
const LIMIT_MAX_MINUTES: u64 = 60;
/// Write buffer of base files.
const WRITE_BUFFER: usize = 1 << 20;

/// Writes a base: an RDB image marked `aof-base` when `aof-use-rdb-preamble` is on, else the
/// commands that rebuild the dataset.
pub fn write_base<W: Write>(
    dbs: &[Db],
    out: W,
    config: &Config,
    rdb_format: bool,
) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, out);
    if rdb_format {
        let info = rdb::SaveInfo {
            aof_base: true,
            ..Default::default()
        };
        rdb::encode::save(
            dbs,
            &mut out,
            &snapshot::save_options(config),
            &info,
            unix_time_ms(),
        )?;
    } else {
        write_commands(dbs, &mut out, config.rdb_key_save_delay)?;
    }
    out.flush()
}

/// Writes a base file in the foreground, crash-safe (the first base at start).
pub fn write_base_file(dbs: &[Db], path: &Path, config: &Config) -> Result<(), String> {
    files::replace_atomically(path, |file| {
        write_base(dbs, file, config, config.aof_use_rdb_preamble)
    })
    .map_err(|error| crate::config::os_error_text(&error))
}

/// The commands that rebuild `dbs` (Redis' `rewriteAppendOnlyFileRio`): per database a
/// SELECT, then per key SET / RPUSH / SADD / ZADD / HMSET (at most 64 elements each) and
/// PEXPIREAT for a TTL. `key_delay_us` sleeps after each key (`rdb-key-save-delay`, tests).
pub fn write_commands<W: Write>(
    dbs: &[Db],
    out: &mut W,
    key_delay_us: i64,
) -> std::io::Result<u64> {
    let mut keys = 0;
    let mut number = itoa::Buffer::new();
    for (index, db) in dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        out.write_all(b"*2\r\n$6\r\nSELECT\r\n")?;
        bulk(out, number.format(index).as_bytes())?;
        for (key, value) in db.iter() {
            let key = key.as_bytes();
            match value {
                Value::Str(text) => {
                    out.write_all(b"*3\r\n$3\r\nSET\r\n")?;
                    bulk(out, key)?;
                    bulk(out, text.as_bytes())?;
                }
                Value::List(list) => {
                    let items: Vec<&[u8]> = list.iter().map(|item| item.as_bytes()).collect();
                    variadic(out, b"RPUSH", key, &items, 1)?;
                }
                Value::Set(set) => {
                    let items: Vec<&[u8]> = set.iter().map(|item| item.as_bytes()).collect();
                    variadic(out, b"SADD", key, &items, 1)?;
                }
                Value::Hash(hash) => {
                    let items: Vec<&[u8]> = hash
                        .iter()
                        .flat_map(|(field, value)| [field.as_bytes(), value.as_bytes()])
                        .collect();
                    variadic(out, b"HMSET", key, &items, 2)?;
                }
                Value::ZSet(zset) => {
                    let scores: Vec<String> = zset
                        .iter()
                        .map(|(_, score)| crate::protocol::reply::format_double(score))
                        .collect();
                    let items: Vec<&[u8]> = zset
                        .iter()
                        .zip(&scores)
                        .flat_map(|((member, _), score)| [score.as_bytes(), member.as_bytes()])
                        .collect();
                    variadic(out, b"ZADD", key, &items, 2)?;
                }
            }
            if let Some(at) = db.expire_at(key) {
                out.write_all(b"*3\r\n$9\r\nPEXPIREAT\r\n")?;
                bulk(out, key)?;
                bulk(out, number.format(at).as_bytes())?;
            }
            keys += 1;
            if key_delay_us > 0 {
                std::thread::sleep(std::time::Duration::from_micros(key_delay_us as u64));
            }
        }
    }
    Ok(keys)
}

/// `$<len>\r\n<bytes>\r\n`.
fn bulk<W: Write>(out: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    let mut number = itoa::Buffer::new();
    out.write_all(b"$")?;
    out.write_all(number.format(bytes.len()).as_bytes())?;
    out.write_all(b"\r\n")?;
    out.write_all(bytes)?;
    out.write_all(b"\r\n")
}

/// `name key item...` in commands of at most [`ITEMS_PER_COMMAND`] elements, an element
/// being `per_element` consecutive items (a field and its value, a score and its member).
fn variadic<W: Write>(
    out: &mut W,
    name: &[u8],
    key: &[u8],
    items: &[&[u8]],
    per_element: usize,
) -> std::io::Result<()> {
    let mut number = itoa::Buffer::new();
    for chunk in items.chunks(ITEMS_PER_COMMAND * per_element) {
        out.write_all(b"*")?;
        out.write_all(number.format(2 + chunk.len()).as_bytes())?;
        out.write_all(b"\r\n")?;
        bulk(out, name)?;
        bulk(out, key)?;
        for item in chunk {
            bulk(out, item)?;
        }
    }
    Ok(())
}

/// Redis' `aofRewriteLimited`: after three failed rewrites in a row, automatic ones wait 1,
/// 2, 4 ... up to 60 minutes between attempts.
pub(super) fn limited(aof: &mut Aof, now: u64) -> bool {
    let limit = &mut aof.limit;
    if aof.consecutive_failures < LIMIT_THRESHOLD {
        *limit = Default::default();
        return false;
    }
    if limit.next_rewrite_unix != 0 {
        if now < limit.next_rewrite_unix {
            return true;
        }
        limit.next_rewrite_unix = 0;
        return false;
    }
    limit.next_delay_minutes = (limit.next_delay_minutes * 2).clamp(1, LIMIT_MAX_MINUTES);
    limit.next_rewrite_unix = now + limit.next_delay_minutes * 60;
    log!(
        Warning,
        "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in {} minutes",
        limit.next_delay_minutes
    );
    true
}

/// Opens the incr file writes go to from the fork on (Redis' `openNewIncrAofForAppend`).
/// Nothing to do while the AOF is off.
fn open_new_incr(config: &Config, aof: &mut Aof) -> Result<(), String> {
    let dir = dir_path(config);
    let (name, mut manifest) = match aof.status {
        Status::Off => return Ok(()),
        Status::WaitRewrite => (temp_incr_name(&config.appendfilename), None),
        Status::On => {
            let mut manifest = aof.manifest.clone();
            let name = manifest.new_incr(&config.appendfilename);
            (name, Some(manifest))
        }
    };
    let (file, _) = open_incr(&dir.join(&name), true).map_err(|error| {
        let message = format!(
            "Can't open the append-only file {name}: {}",
            crate::config::os_error_text(&error)
        );
        log!(Warning, "{message}");
        message
    })?;
    if let Some(manifest) = manifest.as_mut() {
        persist_manifest(&dir, &config.appendfilename, manifest)?;
    }
    log!(
        Notice,
        "Creating AOF incr file {name} on background rewrite"
    );
    aof.set_incr_file(file, name, 0)?;
    if let Some(manifest) = manifest {
        aof.manifest = manifest;
    }
    Ok(())
}

/// Starts a background rewrite (Redis' `rewriteAppendOnlyFileBackground`). Call with the
/// keyspace locked, no child running. Returns the child's pid.
pub fn start_rewrite(shared: &Shared, store: &mut Store) -> Result<i32, String> {
    if let Some(kind) = store.persistence.child_kind() {
        return Err(format!("another child process is active ({})", kind.name()));
    }
    let config = shared.config();
    let dir = dir_path(&config);
    if let Err(error) = std::fs::create_dir_all(&dir) {
        store.aof.last_bgrewrite_failed = true;
        let message = format!(
            "Can't open or create append-only dir {}: {}",
            dir.display(),
            crate::config::os_error_text(&error)
        );
        log!(Warning, "{message}");
        return Err(message);
    }
    // What ran before the fork is in the child's snapshot and belongs to the old incr file;
    // the new one starts with a SELECT of its own.
    store.end_batch();
    store.propagation.reset_selected_db();
    store.aof.flush(true);
    if let Err(error) = open_new_incr(&config, &mut store.aof) {
        store.aof.last_bgrewrite_failed = true;
        return Err(error);
    }
    store.aof.rewrites += 1;
    let rdb_format = config.aof_use_rdb_preamble;
    let child_config = config.clone();
    let child_dir = dir.clone();
    let started = fork::start_child(shared, store, ChildKind::AofRewrite, move |store| {
        let name = temp_rewrite_name(std::process::id() as i32);
        let path = child_dir.join(&name);
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::fs::File::create(&path).and_then(|mut file| {
                write_base(&store.dbs, &mut file, &child_config, rdb_format)?;
                file.sync_all()
            })
        }))
        .map_err(|panic| {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            format!("panic: {text}")
        })?;
        written.map_err(|error| {
            format!(
                "Write error writing append only file on disk: {}",
                crate::config::os_error_text(&error)
            )
        })?;
        log!(
            Notice,
            "Successfully created the temporary AOF base file {name}"
        );
        Ok(())
    });
    match started {
        Ok(pid) => {
            log!(
                Notice,
                "Background append only file rewriting started by pid {pid}"
            );
            let aof = &mut store.aof;
            aof.rewrite_scheduled = false;
            aof.rewrite = Some(RunningRewrite {
                pid,
                started_unix: unix_secs(),
                rdb_format,
            });
            aof.child_active = true;
            Ok(pid)
        }
        Err(error) => {
            store.aof.last_bgrewrite_failed = true;
            let message = format!("Can't rewrite append only file in background: fork: {error}");
            log!(Warning, "{message}");
            Err(message)
        }
    }
}

/// Removes what a rewrite child with `pid` may have left.
pub(super) fn remove_temp_files(config: &Config, pid: i32) {
    let _ = std::fs::remove_file(dir_path(config).join(temp_rewrite_name(pid)));
}

/// Called by the persistence cron when the rewrite child exited (Redis'
/// `backgroundRewriteDoneHandler`).
pub fn rewrite_finished(shared: &Shared, store: &mut Store, ok: bool) {
    let config = shared.config();
    let dir = dir_path(&config);
    store.aof.child_active = false;
    let Some(running) = store.aof.rewrite.take() else {
        return;
    };
    let temp_path = dir.join(temp_rewrite_name(running.pid));
    let aof = &mut store.aof;
    if ok {
        log!(Notice, "Background AOF rewrite terminated with success");
        match install(&config, aof, &temp_path, running.rdb_format) {
            Ok(()) => {
                super::delete_history(&config, aof);
                aof.last_bgrewrite_failed = false;
                aof.consecutive_failures = 0;
                log!(Notice, "Background AOF rewrite finished successfully");
                if aof.status == Status::WaitRewrite {
                    aof.status = Status::On;
                }
            }
            Err(error) => {
                log!(Warning, "{error}");
                aof.last_bgrewrite_failed = true;
                aof.consecutive_failures += 1;
            }
        }
    } else {
        aof.last_bgrewrite_failed = true;
        aof.consecutive_failures += 1;
        log!(Warning, "Background AOF rewrite terminated with error");
    }
    let _ = std::fs::remove_file(&temp_path);
    if aof.status == Status::WaitRewrite {
        // The temporary incr file only mattered if this rewrite made the base; the next
        // attempt opens a new one.
        aof.buf.clear();
        log!(
            Notice,
            "Removing the temp incr aof file {} in the background",
            temp_incr_name(&config.appendfilename)
        );
        super::unlink_in_background(vec![dir.join(temp_incr_name(&config.appendfilename))]);
        aof.rewrite_scheduled = true;
    }
    aof.rewrite_time_last = Some(unix_secs().saturating_sub(running.started_unix));
}

/// Puts a finished rewrite's base in place and writes the manifest that names it.
fn install(
    config: &Config,
    aof: &mut Aof,
    temp_path: &Path,
    rdb_format: bool,
) -> Result<(), String> {
    let dir = dir_path(config);
    let filename = &config.appendfilename;
    let mut manifest = aof.manifest.clone();
    let base_name = manifest.new_base(filename, rdb_format);
    let base_path = dir.join(&base_name);
    std::fs::rename(temp_path, &base_path).map_err(|error| {
        format!(
            "Error trying to rename the temporary AOF base file {} into {base_name}: {}",
            temp_path.display(),
            crate::config::os_error_text(&error)
        )
    })?;
    log!(
        Notice,
        "Successfully renamed the temporary AOF base file {} into {base_name}",
        temp_path.display()
    );
    let mut new_incr = None;
    if aof.status == Status::WaitRewrite {
        let temp_name = temp_incr_name(filename);
        let incr_name = manifest.new_incr(filename);
        if let Err(error) = std::fs::rename(dir.join(&temp_name), dir.join(&incr_name)) {
            let _ = std::fs::remove_file(&base_path);
            return Err(format!(
                "Error trying to rename the temporary AOF incr file {temp_name} into {incr_name}: {}",
                crate::config::os_error_text(&error)
            ));
        }
        log!(
            Notice,
            "Successfully renamed the temporary AOF incr file {temp_name} into {incr_name}"
        );
        new_incr = Some(incr_name);
    }
    manifest.mark_rewritten_incrs_as_history(aof.file.is_some());
    if let Err(error) = persist_manifest(&dir, filename, &mut manifest) {
        let _ = std::fs::remove_file(&base_path);
        if let Some(name) = &new_incr {
            let _ = std::fs::remove_file(dir.join(name));
        }
        return Err(error);
    }
    aof.manifest = manifest;
    if let (Some(name), Some(incr)) = (new_incr, aof.file.as_mut()) {
        incr.name = name;
    }
    if aof.status != Status::Off {
        let base_size = std::fs::metadata(&base_path).map(|m| m.len()).unwrap_or(0);
        aof.current_size = base_size + aof.last_incr_size;
        aof.rewrite_base_size = aof.current_size;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Bstr;

    #[test]
    fn command_base_rebuilds_every_type_with_ttls() {
        let mut dbs: Vec<Db> = (0..3).map(|_| Db::default()).collect();
        dbs[0].set(b"s", Value::Str(Bstr::new(b"v a\r\nl")));
        dbs[0].set_expire_at(b"s", 4102444800000);
        let mut list = crate::storage::List::new();
        for i in 0..130 {
            list.push_back(Bstr::from_vec(i.to_string().into_bytes()));
        }
        dbs[2].set(b"l", Value::List(Box::new(list)));
        let mut out = Vec::new();
        let keys = write_commands(&dbs, &mut out, 0).unwrap();
        assert_eq!(keys, 2);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\ns\r\n$6\r\nv a\r\nl\r\n*3\r\n$9\r\nPEXPIREAT\r\n$1\r\ns\r\n$13\r\n4102444800000\r\n"));
        // 130 elements: 64 + 64 + 2.
        assert_eq!(text.matches("RPUSH").count(), 3);
        assert!(text.contains("*66\r\n$5\r\nRPUSH"));
        assert!(text.contains("*4\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$3\r\n128\r\n$3\r\n129\r\n"));
    }

    #[test]
    fn rewrite_limit_backs_off_exponentially() {
        let mut aof = Aof::default();
        assert!(!limited(&mut aof, 1000));
        aof.consecutive_failures = 3;
        assert!(limited(&mut aof, 1000));
        assert_eq!(aof.limit.next_rewrite_unix, 1060);
        assert!(limited(&mut aof, 1059));
        assert!(!limited(&mut aof, 1060));
        assert!(limited(&mut aof, 1061));
        assert_eq!(aof.limit.next_delay_minutes, 2);
        aof.consecutive_failures = 0;
        assert!(!limited(&mut aof, 2000));
        assert_eq!(aof.limit.next_delay_minutes, 0);
    }
}
