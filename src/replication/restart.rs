//! The master's backlog survives a restart (beyond Redis), so its replicas resync partially
//! after the master comes back.
//!
//! # What proves the data ends at the backlog's last offset
//! Two facts written in the same critical section (the keyspace lock):
//! - a save (SHUTDOWN, SIGTERM with save points, `SAVE`, `BGSAVE` at its fork) writes the
//!   RDB with aux `repl-id` = our replication ID and `repl-offset` = `master_repl_offset`
//!   plus the stream bytes of the running batch not yet fed, which its data already holds
//!   ([`save_info`](crate::persistence::snapshot::save_info)); a shutdown first ends the
//!   batch, so the offset and the backlog agree before the final save;
//! - the backlog file's header holds the replication ID and its live `committed` counter,
//!   which equals `master_repl_offset` whenever the lock is free (every batch is appended
//!   under the lock, in `Store::end_batch`). [`flush_for_shutdown`] makes it durable.
//!
//! Any write after the save advances `committed` past the RDB's offset (the header is in a
//! shared mapping, so even a `kill -9` leaves the new value), and any other history has
//! another ID. So at start, an RDB whose `repl-id`/`repl-offset` equal the backlog's ID and
//! committed offset holds exactly the data the stream in the backlog ends at, and only then
//! is the backlog adopted. Anything else (no RDB, an older RDB after a crash, an RDB from
//! elsewhere, data loaded from the AOF, keys dropped at load because their TTL passed while
//! the server was down — their `DEL`s were never in the stream) starts a new history as
//! before, and the stale file is removed.
//!
//! With `appendonly yes` the data comes from the AOF, which (as in Redis 7.0) carries no
//! replication ID; its tail may also hold writes the RDB lacks, so nothing is restored.
//!
//! # The identity after a restore
//! As Redis 7.0 does when a master reloads an RDB with replication info, the restored history
//! becomes the *secondary* one (`master_replid2`, valid up to `repl-offset + 1`) and the
//! server takes a new `master_replid`: replicas of the old history get `+CONTINUE <new id>`,
//! and should a copy of these files be started elsewhere too, the two servers never extend
//! one ID with different writes. Unlike Redis, whose fresh in-memory backlog only serves
//! replicas that were exactly up to date, the whole ring is kept: lagging replicas continue
//! too. A server that was a replica and now starts as a master is served the same way (its
//! backlog and RDB carry its master's ID), which is exactly a promotion. The ring keeps the
//! size it was created with; a changed `repl-backlog-size` applies when it is next created.
//! The `repl-backlog-ttl` clock starts at the restore: replicas have that long to come back.

use std::path::Path;

use super::backlog::Backlog;
use crate::persistence::rdb::Loaded;
use crate::server::shared::unix_time_ms;
use crate::storage::Store;

/// Makes the backlog durable after the final save of a shutdown, so the file agrees with the
/// RDB just written even after an OS crash. Called with the keyspace locked, right after the
/// save (nothing can be appended in between).
pub fn flush_for_shutdown(store: &Store) {
    if let Some(backlog) = &store.replication.backlog {
        if let Err(error) = backlog.flush() {
            crate::log!(
                Warning,
                "Can't flush the replication backlog to disk at shutdown: {error}"
            );
        }
    }
}

/// A previous run's backlog that the loaded data continues.
struct Found {
    backlog: Backlog,
    /// The history's replication ID (the RDB's and the backlog's).
    replid: String,
    /// The offset both end at.
    offset: u64,
}

/// Why the backlog at `path` cannot be continued.
struct Refused {
    reason: String,
    /// Whether the file is stale and should go (not when another process holds it).
    remove: bool,
}

/// The backlog at `path` when the data `loaded` (an RDB's; `None` when the data came from
/// elsewhere) ends exactly where it does; `Ok(None)` when there is no file.
fn matching_backlog(path: &Path, loaded: Option<&Loaded>) -> Result<Option<Found>, Refused> {
    let stale = |reason: String| Refused {
        reason,
        remove: true,
    };
    let backlog = match Backlog::open_existing(path) {
        Ok(Some(backlog)) => backlog,
        Ok(None) => return Ok(None),
        Err(error) => {
            return Err(Refused {
                reason: error.to_string(),
                remove: error.kind() != std::io::ErrorKind::WouldBlock,
            })
        }
    };
    let Some(loaded) = loaded else {
        return Err(stale("the data was not loaded from an RDB file".into()));
    };
    let info = &loaded.info;
    let (Some(id), Some(offset), Some(db)) = (&info.repl_id, info.repl_offset, info.repl_stream_db)
    else {
        return Err(stale(
            "the RDB file has no replication ID and offset".into(),
        ));
    };
    if offset < 0 || db < 0 {
        return Err(stale("the RDB file has no valid replication offset".into()));
    }
    let offset = offset as u64;
    if *id != backlog.replid() || offset != backlog.master_offset() {
        return Err(stale(format!(
            "the RDB file ends at offset {offset} of replication ID {id}, the backlog at offset {} of {}",
            backlog.master_offset(),
            backlog.replid()
        )));
    }
    if loaded.expired_skipped > 0 {
        return Err(stale(format!(
            "{} keys expired while the server was down and were never deleted through the stream",
            loaded.expired_skipped
        )));
    }
    Ok(Some(Found {
        backlog,
        replid: id.clone(),
        offset,
    }))
}

/// At start on a master, after the dataset was loaded: adopts the previous run's backlog
/// when `loaded` (the RDB just loaded; `None` when the data did not come from an RDB) ends
/// exactly where the backlog does, otherwise removes the stale file. Returns whether the
/// backlog was restored. A replica leaves the file alone (its side manages its own backlog).
pub fn restore_at_start(store: &mut Store, path: &Path, loaded: Option<&Loaded>) -> bool {
    if store.replication.replica_side.is_replica() {
        return false;
    }
    let Found {
        backlog,
        replid,
        offset,
    } = match matching_backlog(path, loaded) {
        Ok(Some(found)) => found,
        Ok(None) => return false,
        Err(Refused { reason, remove }) => {
            crate::log!(
                Notice,
                "Replication backlog {} of the previous run not restored: {reason}",
                path.display()
            );
            // The backlog, if it was opened, is closed (unlocked) by now.
            if remove {
                let _ = std::fs::remove_file(path);
            }
            return false;
        }
    };
    let replication = &mut store.replication;
    if let Err(error) = backlog.set_replid(&replication.replid) {
        crate::log!(
            Warning,
            "Replication backlog {} not restored: can't record the new replication ID: {error}",
            path.display()
        );
        drop(backlog);
        let _ = std::fs::remove_file(path);
        return false;
    }
    replication.replid2 = replid;
    replication.second_replid_offset = offset as i64 + 1;
    replication.master_repl_offset = offset;
    let (first, histlen) = (backlog.first_offset(), backlog.histlen());
    replication.backlog = Some(backlog);
    // The repl-backlog-ttl clock starts now: the replicas have to come back first.
    replication.master_side.no_replicas_since = unix_time_ms() / 1000;
    store.propagation.enabled = true;
    store.propagation.reset_selected_db();
    crate::log!(
        Notice,
        "Replication backlog restored ({histlen} bytes from offset {first}), replication ID and offset restored: secondary replication ID {} valid up to offset {}, new replication ID {}",
        store.replication.replid2,
        store.replication.second_replid_offset,
        store.replication.replid
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::rdb::SaveInfo;

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";
    const OTHER: &str = "fedcba9876543210fedcba9876543210fedcba98";

    fn loaded(id: &str, offset: i64, expired: u64) -> Loaded {
        Loaded {
            info: SaveInfo {
                repl_stream_db: Some(0),
                repl_id: Some(id.into()),
                repl_offset: Some(offset),
                aof_base: false,
            },
            expired_skipped: expired,
            ..Loaded::default()
        }
    }

    /// A closed backlog file for `ID` whose stream ends at offset 100 + `written`.
    fn backlog_file(dir: &Path, written: usize) -> std::path::PathBuf {
        let path = dir.join("dump.rdb.backlog");
        let backlog = Backlog::create(&path, 1 << 16, ID, 100).unwrap();
        if written > 0 {
            backlog.append(&vec![b'x'; written]).unwrap();
        }
        path
    }

    fn refusal(path: &Path, loaded: Option<&Loaded>) -> Refused {
        match matching_backlog(path, loaded) {
            Err(refused) => refused,
            Ok(found) => panic!("accepted: {:?}", found.map(|f| f.offset)),
        }
    }

    #[test]
    fn only_an_rdb_ending_at_the_backlogs_id_and_offset_continues_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = backlog_file(dir.path(), 23);
        let found = matching_backlog(&path, Some(&loaded(ID, 123, 0)))
            .unwrap_or_else(|r| panic!("{}", r.reason))
            .expect("a backlog");
        assert_eq!((found.replid.as_str(), found.offset), (ID, 123));
        assert_eq!(found.backlog.master_offset(), 123);
        drop(found);

        // An older RDB (a crash after the save), a newer one, another history, no RDB,
        // keys dropped at load: all refused, the file marked stale.
        for (loaded, words) in [
            (Some(loaded(ID, 100, 0)), "ends at offset 100"),
            (Some(loaded(ID, 124, 0)), "ends at offset 124"),
            (Some(loaded(OTHER, 123, 0)), OTHER),
            (None, "not loaded from an RDB"),
            (Some(loaded(ID, 123, 2)), "2 keys expired"),
            (Some(loaded(ID, -1, 0)), "no valid replication offset"),
            (Some(Loaded::default()), "no replication ID"),
        ] {
            let refused = refusal(&path, loaded.as_ref());
            assert!(refused.reason.contains(words), "{}", refused.reason);
            assert!(refused.remove);
        }
    }

    #[test]
    fn no_file_is_nothing_to_restore_and_a_held_file_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.rdb.backlog");
        assert!(matches!(
            matching_backlog(&path, Some(&loaded(ID, 100, 0))),
            Ok(None)
        ));
        let path = backlog_file(dir.path(), 0);
        let held = Backlog::open_existing(&path).unwrap().unwrap();
        let refused = refusal(&path, Some(&loaded(ID, 100, 0)));
        assert!(!refused.remove, "{}", refused.reason);
        drop(held);
        std::fs::write(&path, b"not a backlog").unwrap();
        let refused = refusal(&path, Some(&loaded(ID, 100, 0)));
        assert!(refused.remove, "{}", refused.reason);
    }
}
