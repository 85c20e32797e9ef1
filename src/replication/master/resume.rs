//! Resuming an interrupted full sync (ringkv's own; real Redis replicas never ask).
//!
//! A full-sync snapshot is an immutable file, and the writes made since its fork are the
//! backlog from its offset on. So when a transfer breaks, nothing the replica already has
//! needs to travel again: the master keeps the last snapshot it made for replicas (the open
//! file, so the inode lives on even if `dbfilename` is replaced) for
//! `repl-resume-snapshot-ttl` seconds, and a replica that still holds the first bytes asks
//! for the rest.
//!
//! # Protocol
//! 1. During the handshake the replica sends
//!    `REPLCONF rdb-resume <replid>:<offset>:<size>:<received>`: the `+FULLRESYNC` it was
//!    answered, the `$<size>` of the payload, and how many payload bytes it kept. Redis
//!    answers `-ERR Unrecognized REPLCONF option`, and the replica drops its partial file.
//!    ringkv answers `+OK` when it holds that very snapshot (same replication ID, fork
//!    offset and size), and the backlog still holds every write since the fork; otherwise
//!    an error that says why.
//! 2. The `PSYNC` that follows is decided as usual first: a `+CONTINUE` beats a resume. If it
//!    would be a full resync, and the snapshot is still there, the master answers
//!    `+RESUME <replid> <offset> <received>`, then `$<size - received>` and the file from
//!    byte `<received>` on (the same zero-copy splice as a whole file), then the stream from
//!    `<offset> + 1`, exactly as after the whole file. Any other answer means the replica's
//!    partial file is useless.
//!
//! A resumed transfer is the same full sync, not a new one: `sync_full` does not grow and no
//! child is forked. The RDB's checksum is verified by the replica when it loads the joined
//! file, as for any snapshot.

use std::fs::File;
use std::sync::Arc;

use super::MasterSide;
use crate::replication::state::ReplicationState;

/// The last snapshot sent to replicas, kept for resumes.
#[derive(Debug, Clone)]
pub struct RetainedSnapshot {
    /// Replication ID and master offset at the fork (what `+FULLRESYNC` said).
    pub replid: String,
    pub offset: u64,
    pub file: Arc<File>,
    pub len: u64,
    /// Unix ms after which it is dropped (`repl-resume-snapshot-ttl` after it was made or
    /// last resumed).
    pub until_ms: u64,
}

/// What a replica asks to resume (`REPLCONF rdb-resume`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeRequest {
    pub replid: String,
    pub offset: u64,
    pub size: u64,
    pub received: u64,
}

impl ResumeRequest {
    /// `<replid>:<offset>:<size>:<received>`, as the replica sends it.
    pub fn parse(value: &[u8]) -> Option<ResumeRequest> {
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.split(':');
        let replid = parts.next()?;
        let offset = parts.next()?.parse().ok()?;
        let size = parts.next()?.parse().ok()?;
        let received = parts.next()?.parse().ok()?;
        if parts.next().is_some()
            || replid.len() != crate::replication::replica::REPLID_LEN
            || !replid.bytes().all(|b| b.is_ascii_alphanumeric())
            || received == 0
            || received >= size
        {
            return None;
        }
        Some(ResumeRequest {
            replid: replid.to_string(),
            offset,
            size,
            received,
        })
    }

    /// The value the replica sends.
    pub fn encode(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.replid, self.offset, self.size, self.received
        )
    }
}

/// Keeps a snapshot that just finished for later resumes (replacing the previous one).
pub fn retain(
    side: &mut MasterSide,
    replid: &str,
    offset: u64,
    file: &Arc<File>,
    len: u64,
    now_ms: u64,
    ttl_secs: u64,
) {
    side.retained = (ttl_secs > 0).then(|| RetainedSnapshot {
        replid: replid.to_string(),
        offset,
        file: file.clone(),
        len,
        until_ms: now_ms.saturating_add(ttl_secs.saturating_mul(1000)),
    });
}

/// Whether `request` can be resumed now: `Ok` with the snapshot, or the reason it cannot.
pub fn find<'a>(
    replication: &'a ReplicationState,
    request: &ResumeRequest,
) -> Result<&'a RetainedSnapshot, &'static str> {
    let Some(retained) = &replication.master_side.retained else {
        return Err("this master keeps no snapshot to resume");
    };
    if retained.replid != request.replid
        || retained.offset != request.offset
        || retained.len != request.size
    {
        return Err("this master no longer has that snapshot");
    }
    if !still_valid(replication, retained) {
        return Err("the writes made since that snapshot left the replication backlog");
    }
    Ok(retained)
}

/// The snapshot still continues this master's history: same replication ID, and the
/// backlog still holds every write since its fork.
fn still_valid(replication: &ReplicationState, retained: &RetainedSnapshot) -> bool {
    retained.replid == replication.replid
        && replication
            .backlog
            .as_ref()
            .is_some_and(|b| b.first_offset() <= retained.offset + 1)
}

/// Once a second: drops a snapshot past its TTL or no longer resumable, closing its file.
pub fn expire(replication: &mut ReplicationState, now_ms: u64) {
    let drop_it = replication
        .master_side
        .retained
        .as_ref()
        .is_some_and(|r| now_ms > r.until_ms || !still_valid(replication, r));
    if drop_it {
        replication.master_side.retained = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn requests_round_trip_and_bad_ones_are_refused() {
        let request = ResumeRequest {
            replid: ID.to_string(),
            offset: 77,
            size: 1000,
            received: 10,
        };
        assert_eq!(
            ResumeRequest::parse(request.encode().as_bytes()),
            Some(request)
        );
        for bad in [
            "".to_string(),
            format!("{ID}:1:2"),
            format!("{ID}:1:100:0"),
            format!("{ID}:1:100:100"),
            format!("{ID}:1:100:200"),
            format!("{ID}:x:100:10"),
            format!("{ID}:1:100:10:5"),
            "short:1:100:10".to_string(),
            format!("{}:1:100:10", ID.replace('0', "-")),
        ] {
            assert_eq!(ResumeRequest::parse(bad.as_bytes()), None, "{bad}");
        }
    }
}
