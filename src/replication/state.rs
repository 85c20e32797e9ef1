//! The replication state every core sees: identity (replication IDs and offsets), the
//! backlog, the master side (this server's replicas) and the replica side (this server's
//! master link). It lives in the keyspace ([`Store::replication`](crate::storage::Store)) so
//! it changes in the same critical section as the data and the stream it describes.

use super::backlog::Backlog;
use super::master::MasterSide;
use super::replica::ReplicaSide;

/// 40 zeros: "no previous replication ID" (`master_replid2` when unset).
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// Replication identity and the two sides.
pub struct ReplicationState {
    /// `master_replid`: the history this server's data belongs to. New at every start unless
    /// restored from our own files, new on promotion.
    pub replid: String,
    /// `master_replid2`: the previous history (after a promotion), or [`NO_REPLID`].
    pub replid2: String,
    /// `second_repl_offset`: highest PSYNC offset accepted with `replid2` (-1 when none).
    pub second_replid_offset: i64,
    /// `master_repl_offset`: the offset of the last stream byte produced (as a master) or
    /// applied (as a replica).
    pub master_repl_offset: u64,
    /// The backlog, created when the first replica attaches (or restored at start).
    pub backlog: Option<Backlog>,
    /// This server as a master: its replicas.
    pub master_side: MasterSide,
    /// This server as a replica: its link to its master.
    pub replica_side: ReplicaSide,
}

impl Default for ReplicationState {
    fn default() -> Self {
        ReplicationState {
            replid: crate::server::shared::new_run_id(),
            replid2: NO_REPLID.to_string(),
            second_replid_offset: -1,
            master_repl_offset: 0,
            backlog: None,
            master_side: MasterSide::default(),
            replica_side: ReplicaSide::default(),
        }
    }
}

/// The backlog file inside `dir`: named after `dbfilename` (`dump.rdb.backlog`), so servers
/// sharing a `dir` with their own `dbfilename`, as Redis allows, each have their own ring, and
/// a backlog sits beside the RDB file whose data it continues after a restart.
pub fn backlog_path(config: &crate::config::Config) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}.backlog", config.dbfilename))
}

impl ReplicationState {
    /// Appends stream bytes: they advance `master_repl_offset` and go into the backlog when
    /// there is one. A master feeds what its commands propagated (in `Store::end_batch`); a
    /// replica feeds the bytes it applied from its master, unchanged (chained replication).
    pub fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.master_repl_offset += bytes.len() as u64;
        if let Some(backlog) = &self.backlog {
            if backlog.append(bytes).is_err() {
                // A batch larger than the whole ring: no reader could be given it whole, so
                // the history is cut here and every replica needs a full resync.
                crate::log!(
                    Warning,
                    "A write batch of {} bytes is larger than repl-backlog-size: replicas will need a full resync",
                    bytes.len()
                );
                self.backlog = None;
            }
        }
    }

    /// Creates the backlog in the file at `path` ([`backlog_path`]) at the current offset.
    pub fn create_backlog(&mut self, path: &std::path::Path, capacity: u64) -> std::io::Result<()> {
        let backlog = Backlog::create(path, capacity, &self.replid, self.master_repl_offset)?;
        self.backlog = Some(backlog);
        Ok(())
    }
}

impl std::fmt::Debug for ReplicationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationState")
            .field("replid", &self.replid)
            .field("replid2", &self.replid2)
            .field("second_replid_offset", &self.second_replid_offset)
            .field("backlog", &self.backlog)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_state_has_a_fresh_forty_hex_id_and_no_history() {
        let a = ReplicationState::default();
        let b = ReplicationState::default();
        assert_eq!(a.replid.len(), 40);
        assert!(a.replid.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.replid, b.replid);
        assert_eq!(a.replid2, NO_REPLID);
        assert_eq!(a.second_replid_offset, -1);
    }
}
