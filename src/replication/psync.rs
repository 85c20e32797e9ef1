//! The master's answer to `PSYNC <replid> <offset>`: continue the replica's stream from the
//! backlog, or make it resynchronize from a snapshot.
//!
//! A pure function of the request and of the master's replication history, so every case is
//! pinned by a table test. It follows Redis 7.0's rules exactly:
//!
//! 1. The replica's ID must be our current ID, or our previous ID (`master_replid2`) with an
//!    offset no greater than `second_repl_offset` — the first offset where our history and the
//!    previous master's may differ (set to `master_repl_offset + 1` on promotion). IDs compare
//!    ASCII case-insensitively, as Redis does. An ID starting with `?` is a replica asking for a
//!    full resync on purpose (`PSYNC ? -1`).
//! 2. The backlog must exist and hold the requested offset: `first <= offset <= first +
//!    histlen`, where `first` is the offset of the oldest byte held and `first + histlen` is
//!    `master_repl_offset + 1`. The upper bound is inclusive: a replica that already has every
//!    byte asks for the next one and gets `+CONTINUE` with nothing to send.
//!
//! The PSYNC offset is the offset of the first byte the replica does *not* have (its own
//! `master_repl_offset + 1`). Offsets are `i64` because Redis parses them as `long long`: a
//! replica may send `-1` or other negative values and they must be refused, not wrap.

use std::fmt;

/// What the replica sent: `PSYNC <replid> <offset>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PsyncRequest<'a> {
    pub replid: &'a [u8],
    /// First stream byte the replica is missing.
    pub offset: i64,
}

/// What the master knows about its own replication history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History<'a> {
    /// `master_replid`.
    pub replid: &'a [u8],
    /// `master_replid2`: the ID of the history we continued from (40 `0`s when none).
    pub replid2: &'a [u8],
    /// `second_repl_offset`: highest PSYNC offset accepted with `replid2` (`-1` when none).
    pub second_replid_offset: i64,
    /// Offset of the oldest byte the backlog holds (Redis' `repl_backlog->offset`); `None`
    /// when there is no backlog. With an empty backlog it is `master_offset + 1`.
    pub backlog_first_offset: Option<i64>,
    /// `master_repl_offset`: offset of the last byte produced.
    pub master_offset: i64,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Reply `+CONTINUE <replid>` (`+CONTINUE` to replicas without the `psync2` capability)
    /// and send the backlog from `from_offset` to the end: `send_len` bytes.
    Continue {
        /// The replica asked with our previous ID: it learns the new one from the reply.
        replid_changed: bool,
        from_offset: i64,
        send_len: i64,
    },
    /// Reply `+FULLRESYNC <replid> <offset>` once a snapshot is on its way.
    FullResync { reason: FullResyncReason },
}

/// Why a partial resync was refused. `Display` gives the text Redis logs for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FullResyncReason {
    /// The replica sent an ID starting with `?` (`PSYNC ? -1`): it wants a full resync.
    RequestedByReplica,
    /// Neither of our IDs is the replica's.
    ReplidMismatch {
        asked: String,
        replid: String,
        replid2: String,
    },
    /// The replica's ID is our previous one, but it asks beyond where that history ended.
    SecondIdOffsetTooHigh { asked: i64, limit: i64 },
    /// No backlog, or the offset is outside it. `beyond_master` when the replica claims bytes
    /// we never produced (Redis logs an extra warning then).
    LackOfBacklog { asked: i64, beyond_master: bool },
}

impl FullResyncReason {
    /// Whether the refusal counts in `sync_partial_err` (a deliberate `?` does not).
    pub fn counts_as_partial_err(&self) -> bool {
        !matches!(self, FullResyncReason::RequestedByReplica)
    }
}

impl fmt::Display for FullResyncReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FullResyncReason::RequestedByReplica => write!(f, "Full resync requested by replica"),
            FullResyncReason::ReplidMismatch {
                asked,
                replid,
                replid2,
            } => write!(
                f,
                "Partial resynchronization not accepted: Replication ID mismatch \
                 (Replica asked for '{asked}', my replication IDs are '{replid}' and '{replid2}')"
            ),
            FullResyncReason::SecondIdOffsetTooHigh { asked, limit } => write!(
                f,
                "Partial resynchronization not accepted: Requested offset for second ID was \
                 {asked}, but I can reply up to {limit}"
            ),
            FullResyncReason::LackOfBacklog {
                asked,
                beyond_master,
            } => {
                write!(
                    f,
                    "Unable to partial resync for lack of backlog (Replica request was: {asked})."
                )?;
                if *beyond_master {
                    write!(
                        f,
                        " Warning: replica tried to PSYNC with an offset that is greater than \
                         the master replication offset."
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Decides between `+CONTINUE` and `+FULLRESYNC` for one PSYNC request.
pub fn decide(request: &PsyncRequest<'_>, history: &History<'_>) -> Decision {
    let same_id = request.replid.eq_ignore_ascii_case(history.replid);
    let previous_id = request.replid.eq_ignore_ascii_case(history.replid2);
    let id_accepted = same_id || (previous_id && request.offset <= history.second_replid_offset);
    if !id_accepted {
        let reason = if request.replid.first() == Some(&b'?') {
            FullResyncReason::RequestedByReplica
        } else if !previous_id {
            FullResyncReason::ReplidMismatch {
                asked: String::from_utf8_lossy(request.replid).into_owned(),
                replid: String::from_utf8_lossy(history.replid).into_owned(),
                replid2: String::from_utf8_lossy(history.replid2).into_owned(),
            }
        } else {
            FullResyncReason::SecondIdOffsetTooHigh {
                asked: request.offset,
                limit: history.second_replid_offset,
            }
        };
        return Decision::FullResync { reason };
    }

    // One past the newest byte: the backlog's first offset plus its length.
    let end = history.master_offset.saturating_add(1);
    let held = history
        .backlog_first_offset
        .is_some_and(|first| request.offset >= first && request.offset <= end);
    if !held {
        return Decision::FullResync {
            reason: FullResyncReason::LackOfBacklog {
                asked: request.offset,
                beyond_master: request.offset > history.master_offset,
            },
        };
    }
    Decision::Continue {
        replid_changed: !same_id,
        from_offset: request.offset,
        send_len: end - request.offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &[u8] = b"53b9d5c4b0f7f3a6b6f1d1e3a0c9d7e2f4a5b6c7";
    const PREV: &[u8] = b"0123456789abcdef0123456789abcdef01234567";
    const OTHER: &[u8] = b"ffffffffffffffffffffffffffffffffffffffff";
    const ZEROS: &[u8] = b"0000000000000000000000000000000000000000";

    /// A master promoted at offset 1000 (so `second_repl_offset` = 1001), now at offset 5000,
    /// whose backlog holds offsets 3000..=5000.
    fn promoted() -> History<'static> {
        History {
            replid: OURS,
            replid2: PREV,
            second_replid_offset: 1001,
            backlog_first_offset: Some(3000),
            master_offset: 5000,
        }
    }

    /// A master that was never a replica (replid2 cleared), backlog holding 101..=5000.
    fn fresh() -> History<'static> {
        History {
            replid: OURS,
            replid2: ZEROS,
            second_replid_offset: -1,
            backlog_first_offset: Some(101),
            master_offset: 5000,
        }
    }

    fn cont(replid_changed: bool, from_offset: i64, send_len: i64) -> Decision {
        Decision::Continue {
            replid_changed,
            from_offset,
            send_len,
        }
    }

    fn full(reason: FullResyncReason) -> Decision {
        Decision::FullResync { reason }
    }

    fn lack(asked: i64, beyond_master: bool) -> Decision {
        full(FullResyncReason::LackOfBacklog {
            asked,
            beyond_master,
        })
    }

    #[test]
    fn decision_table() {
        let mut promoted_wide = promoted();
        promoted_wide.backlog_first_offset = Some(500);
        let mut no_backlog = fresh();
        no_backlog.backlog_first_offset = None;
        let mut empty_backlog = fresh();
        empty_backlog.backlog_first_offset = Some(5001);
        let upper_ours = String::from_utf8(OURS.to_ascii_uppercase()).unwrap();

        let rows: Vec<(&str, &[u8], i64, History, Decision)> = vec![
            (
                "forced full sync",
                b"?",
                -1,
                fresh(),
                full(FullResyncReason::RequestedByReplica),
            ),
            (
                "'?' wins whatever the offset",
                b"?",
                4000,
                fresh(),
                full(FullResyncReason::RequestedByReplica),
            ),
            (
                "first byte held",
                OURS,
                101,
                fresh(),
                cont(false, 101, 4900),
            ),
            (
                "one before the first byte",
                OURS,
                100,
                fresh(),
                lack(100, false),
            ),
            ("last byte held", OURS, 5000, fresh(), cont(false, 5000, 1)),
            (
                "replica has everything",
                OURS,
                5001,
                fresh(),
                cont(false, 5001, 0),
            ),
            (
                "one past what was produced",
                OURS,
                5002,
                fresh(),
                lack(5002, true),
            ),
            ("negative offset", OURS, -1, fresh(), lack(-1, false)),
            (
                "IDs compare case-insensitively",
                upper_ours.as_bytes(),
                200,
                fresh(),
                cont(false, 200, 4801),
            ),
            (
                "no backlog at all",
                OURS,
                4000,
                no_backlog,
                lack(4000, false),
            ),
            (
                "empty backlog, replica up to date",
                OURS,
                5001,
                empty_backlog,
                cont(false, 5001, 0),
            ),
            (
                "empty backlog, replica behind",
                OURS,
                5000,
                empty_backlog,
                lack(5000, false),
            ),
            (
                "unknown ID",
                OTHER,
                4000,
                fresh(),
                full(FullResyncReason::ReplidMismatch {
                    asked: String::from_utf8(OTHER.to_vec()).unwrap(),
                    replid: String::from_utf8(OURS.to_vec()).unwrap(),
                    replid2: String::from_utf8(ZEROS.to_vec()).unwrap(),
                }),
            ),
            (
                "previous ID, inside its history",
                PREV,
                900,
                promoted_wide,
                cont(true, 900, 4101),
            ),
            (
                "previous ID, at second_repl_offset",
                PREV,
                1001,
                promoted_wide,
                cont(true, 1001, 4000),
            ),
            (
                "previous ID, one past second_repl_offset",
                PREV,
                1002,
                promoted_wide,
                full(FullResyncReason::SecondIdOffsetTooHigh {
                    asked: 1002,
                    limit: 1001,
                }),
            ),
            (
                "previous ID accepted, but backlog no longer reaches back",
                PREV,
                1001,
                promoted(),
                lack(1001, false),
            ),
            (
                "current ID past the promotion point",
                OURS,
                3000,
                promoted(),
                cont(false, 3000, 2001),
            ),
            (
                "cleared replid2 with offset -1 passes the ID check, then lacks backlog",
                ZEROS,
                -1,
                fresh(),
                lack(-1, false),
            ),
            (
                "cleared replid2 with offset 0 is beyond second_repl_offset -1",
                ZEROS,
                0,
                fresh(),
                full(FullResyncReason::SecondIdOffsetTooHigh {
                    asked: 0,
                    limit: -1,
                }),
            ),
        ];
        assert!(rows.len() >= 12);
        for (name, replid, offset, history, expected) in rows {
            let got = decide(&PsyncRequest { replid, offset }, &history);
            assert_eq!(got, expected, "row: {name}");
        }
    }

    #[test]
    fn reasons_read_like_redis_logs() {
        let mismatch = FullResyncReason::ReplidMismatch {
            asked: "a".into(),
            replid: "b".into(),
            replid2: "c".into(),
        };
        assert_eq!(
            mismatch.to_string(),
            "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for \
             'a', my replication IDs are 'b' and 'c')"
        );
        let second = FullResyncReason::SecondIdOffsetTooHigh {
            asked: 12,
            limit: 10,
        };
        assert_eq!(
            second.to_string(),
            "Partial resynchronization not accepted: Requested offset for second ID was 12, but \
             I can reply up to 10"
        );
        let beyond = FullResyncReason::LackOfBacklog {
            asked: 9,
            beyond_master: true,
        };
        assert!(beyond.to_string().contains("(Replica request was: 9)"));
        assert!(beyond
            .to_string()
            .contains("greater than the master replication offset"));
        assert!(!FullResyncReason::RequestedByReplica.counts_as_partial_err());
        assert!(second.counts_as_partial_err());
    }
}
