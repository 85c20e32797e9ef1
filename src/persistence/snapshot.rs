//! RDB snapshots: SAVE, BGSAVE, save points, loading at start, and the state INFO
//! persistence reports.
//!
//! All of it lives in [`State`], a field of the keyspace ([`Store::persistence`]), so it
//! changes in the same critical section as the data it describes: the change counter a
//! save resets, the child that is writing, the last save's time and outcome.
//!
//! Files are written by [`write_rdb`] through [`files::replace_atomically`]: temp name,
//! fsync, rename, directory fsync. The process' working directory is `dir` (set at start
//! and by `CONFIG SET dir`, as in Redis), so `dbfilename` is used as a relative path.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::fork::{self, Child, ChildKind};
use super::{files, rdb};
use crate::config::Config;
use crate::log;
use crate::server::shared::{unix_time_ms, Shared};
use crate::storage::{Db, Store};

/// Redis' wait before retrying a failed background save from a save point (seconds).
const BGSAVE_RETRY_DELAY_SECS: u64 = 5;

/// Persistence bookkeeping, kept inside the keyspace lock.
#[derive(Debug)]
pub struct State {
    /// The running background child, if any (one at a time, as in Redis).
    pub child: Option<Child>,
    /// Unix seconds of the last successful save (LASTSAVE, `rdb_last_save_time`).
    pub lastsave_unix: u64,
    /// Unix seconds of the last background save attempt (for the retry delay).
    pub last_bgsave_try_unix: u64,
    /// Outcome of the last background save (`rdb_last_bgsave_status`).
    pub last_bgsave_ok: bool,
    /// Duration of the last background save (`rdb_last_bgsave_time_sec`, -1 = none yet).
    pub last_bgsave_time_sec: i64,
    /// Successful saves since start (`rdb_saves`).
    pub rdb_saves: u64,
    /// Copy-on-write bytes of the last RDB child (`rdb_last_cow_size`).
    pub rdb_last_cow_size: u64,
    /// Copy-on-write bytes of the last AOF rewrite child (`aof_last_cow_size`).
    pub aof_last_cow_size: u64,
    /// The pause of the last fork, stopping the loops included (`latest_fork_usec`).
    pub latest_fork_usec: u64,
    /// Forks since start (`total_forks`).
    pub total_forks: u64,
    /// A BGSAVE SCHEDULE waiting for the running child to finish (`rdb_bgsave_scheduled`).
    pub bgsave_scheduled: bool,
    /// `dirty` when the running RDB child was forked: what a successful save subtracts.
    pub dirty_at_fork: u64,
    /// Keys loaded / skipped as expired by the last load (`rdb_last_load_keys_*`).
    pub last_load_keys_loaded: u64,
    pub last_load_keys_expired: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            child: None,
            lastsave_unix: unix_time_ms() / 1000,
            last_bgsave_try_unix: 0,
            last_bgsave_ok: true,
            last_bgsave_time_sec: -1,
            rdb_saves: 0,
            rdb_last_cow_size: 0,
            aof_last_cow_size: 0,
            latest_fork_usec: 0,
            total_forks: 0,
            bgsave_scheduled: false,
            dirty_at_fork: 0,
            last_load_keys_loaded: 0,
            last_load_keys_expired: 0,
        }
    }
}

impl State {
    /// Kind of the running child, if any.
    pub fn child_kind(&self) -> Option<ChildKind> {
        self.child.as_ref().map(|c| c.kind)
    }
}

/// The file a save writes to: `dbfilename`, relative to the working directory (`dir`).
pub fn rdb_path(config: &Config) -> PathBuf {
    PathBuf::from(&config.dbfilename)
}

/// How a file is written, from the configuration.
pub fn save_options(config: &Config) -> rdb::SaveOptions {
    rdb::SaveOptions {
        compression: config.rdbcompression,
        checksum: config.rdbchecksum,
        key_save_delay_us: config.rdb_key_save_delay,
    }
}

/// What goes into a file's replication aux fields.
pub fn save_info(store: &Store) -> rdb::SaveInfo {
    // A replica saves its master's history and the offset its data ends at (or nothing when
    // it has none), so a restart can resync partially (replication issue, R2).
    if store.replication.replica_side.is_replica() {
        return crate::replication::replica::save_info(store).unwrap_or_default();
    }
    // Commands of the running batch are in the data but their stream bytes are still
    // pending; they reach the backlog (and the offset) when the batch ends, in this critical
    // section. The offset counts them, so the file says exactly where its data ends: should
    // the process die before they are fed, the backlog ends earlier and is not restored
    // (`replication::restart`). Without a backlog the offset does not move, as in Redis.
    let pending = if store.replication.backlog.is_some() {
        store.propagation.pending_len()
    } else {
        0
    };
    rdb::SaveInfo {
        repl_stream_db: Some(0),
        repl_id: Some(store.replication.replid.clone()),
        repl_offset: Some((store.replication.master_repl_offset + pending) as i64),
        aof_base: false,
    }
}

/// Writes the whole keyspace to `path` (crash-safe). Runs in the foreground (SAVE,
/// SHUTDOWN, DEBUG RELOAD) or in a fork child (BGSAVE).
pub fn write_rdb(
    dbs: &[Db],
    path: &Path,
    options: &rdb::SaveOptions,
    info: &rdb::SaveInfo,
) -> Result<rdb::encode::SaveStats, String> {
    files::replace_atomically(path, |file| {
        rdb::encode::save(dbs, file, options, info, unix_time_ms())
    })
    .map_err(|error| {
        format!(
            "Failed opening the temp RDB file {} (in server root dir {}) for saving: {error}",
            files::temp_path_for(path).display(),
            current_dir_text()
        )
    })
}

fn current_dir_text() -> String {
    std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// SAVE: writes the RDB in the foreground, holding the keyspace lock.
pub fn save(shared: &Shared, store: &mut Store) -> Result<(), String> {
    if store.persistence.child_kind() == Some(ChildKind::Rdb) {
        return Err("ERR Background save already in progress".into());
    }
    let config = shared.config();
    let started = Instant::now();
    let info = save_info(store);
    match write_rdb(
        &store.dbs,
        &rdb_path(&config),
        &save_options(&config),
        &info,
    ) {
        Ok(_) => {
            log!(Notice, "DB saved on disk");
            let state = &mut store.persistence;
            state.lastsave_unix = unix_time_ms() / 1000;
            state.last_bgsave_ok = true;
            state.rdb_saves += 1;
            store.dirty = 0;
            log!(Verbose, "SAVE took {} ms", started.elapsed().as_millis());
            Ok(())
        }
        Err(error) => {
            log!(Warning, "{error}");
            Err("ERR".into())
        }
    }
}

/// BGSAVE: forks a child that writes the RDB. Returns the child's pid.
pub fn bgsave(shared: &Shared, store: &mut Store) -> Result<i32, String> {
    let config = shared.config();
    let path = rdb_path(&config);
    let options = save_options(&config);
    let info = save_info(store);
    store.persistence.last_bgsave_try_unix = unix_time_ms() / 1000;
    let dirty = store.dirty;
    let pid = fork::start_child(shared, store, ChildKind::Rdb, move |store| {
        write_rdb(&store.dbs, &path, &options, &info).map(|_| {
            log!(Notice, "DB saved on disk");
        })
    })
    .inspect_err(|_| {
        store.persistence.last_bgsave_ok = false;
    })?;
    store.persistence.dirty_at_fork = dirty;
    log!(Notice, "Background saving started by pid {pid}");
    Ok(pid)
}

/// What a finished RDB child changes in the parent.
fn bgsave_finished(shared: &Shared, store: &mut Store, finished: &fork::Finished, pid: i32) {
    let state = &mut store.persistence;
    state.last_bgsave_time_sec = finished.duration.as_secs() as i64;
    state.rdb_last_cow_size = finished.cow_bytes;
    if finished.ok {
        log!(Notice, "Background saving terminated with success");
        state.lastsave_unix = unix_time_ms() / 1000;
        state.last_bgsave_ok = true;
        state.rdb_saves += 1;
        store.dirty = store.dirty.saturating_sub(state.dirty_at_fork);
    } else {
        match finished.signal {
            Some(signal) => {
                log!(Warning, "Background saving terminated by signal {signal}");
                // Redis does not count a child it stopped on purpose (SIGUSR1) as an error.
                if signal != libc::SIGUSR1 {
                    state.last_bgsave_ok = false;
                }
            }
            None => {
                log!(Warning, "Background saving error");
                state.last_bgsave_ok = false;
            }
        }
        let temp = files::temp_path_for_pid(&rdb_path(&shared.config()), pid);
        let _ = std::fs::remove_file(temp);
    }
}

/// Once per cron turn on core 0, under the keyspace lock: reaps a finished child, runs a
/// scheduled BGSAVE, and fires save points.
pub fn cron(shared: &Shared, store: &mut Store) {
    if let Some(pid) = store.persistence.child.as_ref().map(|c| c.pid) {
        if let Some(finished) = fork::reap(store) {
            match finished.kind {
                ChildKind::Rdb => {
                    if crate::replication::master::diskless::owns_child(store, pid) {
                        // A transfer to replicas' sockets made no file: as in Redis, only
                        // its duration and copy-on-write size are recorded.
                        let state = &mut store.persistence;
                        state.last_bgsave_time_sec = finished.duration.as_secs() as i64;
                        state.rdb_last_cow_size = finished.cow_bytes;
                    } else {
                        bgsave_finished(shared, store, &finished, pid);
                    }
                    crate::replication::master::snapshot_finished(shared, store, pid, finished.ok);
                }
                ChildKind::AofRewrite => {
                    store.persistence.aof_last_cow_size = finished.cow_bytes;
                    crate::persistence::aof::rewrite_finished(shared, store, finished.ok);
                }
            }
        } else {
            return;
        }
    }
    let config = shared.config();
    let now = unix_time_ms() / 1000;
    if store.persistence.bgsave_scheduled {
        store.persistence.bgsave_scheduled = false;
        if let Err(error) = bgsave(shared, store) {
            log!(Warning, "Can't save in background: {error}");
        }
        return;
    }
    let state = &store.persistence;
    let retry_allowed = state.last_bgsave_ok
        || now.saturating_sub(state.last_bgsave_try_unix) > BGSAVE_RETRY_DELAY_SECS;
    if !retry_allowed {
        return;
    }
    let since_save = now.saturating_sub(state.lastsave_unix);
    if let Some((seconds, changes)) = config
        .save
        .iter()
        .find(|(seconds, changes)| store.dirty >= *changes && since_save >= *seconds)
    {
        log!(Notice, "{changes} changes in {seconds} seconds. Saving...");
        if let Err(error) = bgsave(shared, store) {
            log!(Warning, "Can't save in background: {error}");
        }
    }
}

/// The `-MISCONF` refusal of writes after a failed background save, when
/// `stop-writes-on-bgsave-error` is on and save points are configured.
pub fn write_refusal(config: &Config, store: &Store) -> Option<&'static str> {
    if config.stop_writes_on_bgsave_error
        && !config.save.is_empty()
        && !store.persistence.last_bgsave_ok
    {
        return Some("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.");
    }
    None
}

/// Loads the dataset at start, before any loop serves a client: the AOF when `appendonly`
/// is on (H4), otherwise the RDB file.
pub fn load_at_start(shared: &Shared) -> Result<(), String> {
    let config = shared.config();
    let mut store = shared.lock_store();
    if crate::persistence::aof::load_at_start(shared, &mut store)? {
        // The AOF carries no replication ID: a previous run's backlog can't be continued.
        let backlog = crate::replication::state::backlog_path(&config);
        crate::replication::restart::restore_at_start(&mut store, &backlog, None);
        return Ok(());
    }
    load_rdb_at_start(&config, &mut store)
}

/// Loads `dbfilename` into the keyspace at start. A missing file is an empty dataset; any
/// other problem stops the start with a message naming the file, the offset and the cause
/// (the file is left as it is).
pub fn load_rdb_at_start(config: &Config, store: &mut Store) -> Result<(), String> {
    let path = rdb_path(config);
    let mapped = match files::Mapped::open(&path) {
        Ok(mapped) => mapped,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let backlog = crate::replication::state::backlog_path(config);
            crate::replication::restart::restore_at_start(store, &backlog, None);
            return Ok(());
        }
        Err(error) => {
            return Err(format!(
                "Fatal error loading the DB: can't open {}: {error}. Exiting.",
                path.display()
            ))
        }
    };
    let started = Instant::now();
    let loaded = load_bytes(config, store, mapped.bytes()).map_err(|error| {
        format!(
            "Fatal error loading the RDB file {} in {}: {error}. The file was left untouched. Exiting.",
            path.display(),
            current_dir_text()
        )
    })?;
    log!(
        Notice,
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        loaded.keys,
        loaded.expired_skipped
    );
    crate::replication::replica::restore_at_start(store, &loaded.info);
    let backlog = crate::replication::state::backlog_path(config);
    crate::replication::restart::restore_at_start(store, &backlog, Some(&loaded));
    log!(
        Notice,
        "DB loaded from disk: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Replaces the keyspace's data with an RDB image; on error the keyspace is left empty.
pub fn load_bytes(
    config: &Config,
    store: &mut Store,
    bytes: &[u8],
) -> Result<rdb::Loaded, rdb::LoadError> {
    let options = rdb::LoadOptions {
        now_ms: unix_time_ms(),
        drop_expired: !store.replica_mode,
        key_load_delay_us: config.key_load_delay,
        skip_checksum: !config.rdbchecksum,
    };
    for db in &mut store.dbs {
        db.clear();
    }
    let result = rdb::decode::load(bytes, &mut store.dbs, &options);
    match &result {
        Ok(loaded) => {
            store.persistence.last_load_keys_loaded = loaded.keys;
            store.persistence.last_load_keys_expired = loaded.expired_skipped;
        }
        Err(_) => {
            for db in &mut store.dbs {
                db.clear();
            }
        }
    }
    result
}

/// DEBUG RELOAD: save, empty the keyspace, load the file back. The run id and the
/// replication ID are kept (they belong to the process, not to the file).
pub fn debug_reload(shared: &Shared, store: &mut Store) -> Result<(), String> {
    save(shared, store).map_err(|_| "ERR Error trying to save the DB".to_string())?;
    let config = shared.config();
    let path = rdb_path(&config);
    let mapped = files::Mapped::open(&path)
        .map_err(|e| format!("ERR Error trying to load the RDB dump: {e}"))?;
    load_bytes(&config, store, mapped.bytes()).map_err(|error| {
        log!(Warning, "Error trying to load the RDB dump: {error}");
        "ERR Error trying to load the RDB dump, check server logs.".to_string()
    })?;
    log!(Notice, "DB reloaded by DEBUG RELOAD");
    Ok(())
}

/// The saving part of a shutdown: stops a running child and saves when asked to (`SAVE`)
/// or when save points are configured (unless `NOSAVE`).
pub fn save_for_shutdown(
    shared: &Shared,
    store: &mut Store,
    save_requested: bool,
    nosave: bool,
) -> Result<(), String> {
    if let Some(kind) = fork::kill_child(store) {
        match kind {
            ChildKind::Rdb => {
                log!(Warning, "There is a child saving an .rdb. Killing it!");
            }
            ChildKind::AofRewrite => {
                log!(Warning, "There is a child rewriting the AOF. Killing it!");
            }
        }
    }
    // What this batch executed before the SHUTDOWN goes into the backlog (and the AOF) now,
    // so the backlog flushed below ends where the final RDB does.
    store.end_batch();
    crate::persistence::aof::flush_at_shutdown(store);
    let config = shared.config();
    if !nosave && (save_requested || !config.save.is_empty()) {
        log!(Notice, "Saving the final RDB snapshot before exiting.");
        if save(shared, store).is_err() {
            log!(Warning, "Error trying to save the DB, can't exit.");
            return Err("ERR Errors trying to SHUTDOWN. Check logs.".into());
        }
        // Still under the keyspace lock: the backlog ends where the RDB just written does.
        crate::replication::restart::flush_for_shutdown(store);
    }
    Ok(())
}
