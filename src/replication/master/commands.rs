//! The master-side commands: `REPLCONF`, `PSYNC`, `SYNC` and `WAIT`.
//!
//! They run like any command, on the core owning the connection and under the keyspace lock.
//! `PSYNC`/`SYNC` record the replica in [`MasterSide`](super::MasterSide), queue the first
//! line of the answer in the reply buffer and leave a [`Handoff`] in the client's
//! [`ReplicaHello`]: after the batch the core takes the connection over (the snapshot
//! transfer and the stream do not go through the reply buffer).

use std::sync::atomic::Ordering;

use super::resume::{self, ResumeRequest};
use super::{
    create_backlog, start_snapshot, Handoff, Replica, ReplicaHello, ReplicaState, WaitingClient,
};
use crate::command::flags::*;
use crate::command::{args, CmdError, CmdResult, CommandSpec, Ctx, Propagate};
use crate::log;
use crate::replication::psync::{self, Decision, FullResyncReason, History, PsyncRequest};
use crate::server::shared::{unix_time_ms, ClientKind};
use crate::spec;

pub static COMMANDS: &[CommandSpec] = &[
    spec!(
        "replconf",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        replconf
    ),
    spec!(
        "psync",
        -3,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        sync
    ),
    spec!(
        "sync",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
        0,
        0,
        0,
        "@admin @slow @dangerous",
        sync
    ),
];

fn hello<'a>(ctx: &'a mut Ctx<'_>) -> &'a mut ReplicaHello {
    ctx.client.replica.get_or_insert_with(Default::default)
}

/// REPLCONF <option> <value> ...: what a replica announces before syncing, and its ACKs
/// afterwards. `ACK` and `GETACK` never reply (a master ignores GETACK).
fn replconf(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ctx.propagate = Propagate::Nothing;
    if args.len().is_multiple_of(2) {
        return Err(CmdError::SYNTAX);
    }
    for pair in args[1..].chunks(2) {
        let (option, value) = (pair[0], pair[1]);
        if args::is(option, "listening-port") {
            let port = args::int(value)?;
            hello(ctx).listening_port = port;
        } else if args::is(option, "ip-address") {
            // Redis' NET_HOST_STR_LEN bound.
            if value.len() >= 256 {
                return Err(CmdError::new(format!(
                    "ERR REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    value.len()
                )));
            }
            hello(ctx).ip_address = Some(args::text(value));
        } else if args::is(option, "capa") {
            // Capabilities this master does not know are ignored, as in Redis.
            if args::is(value, "eof") {
                hello(ctx).capa_eof = true;
            } else if args::is(value, "psync2") {
                hello(ctx).capa_psync2 = true;
            }
        } else if args::is(option, "ack") {
            ack(ctx, value);
            return Ok(());
        } else if args::is(option, "getack") {
            // Only a replica answers GETACK (to its master); a master ignores it.
            return Ok(());
        } else if args::is(option, "rdb-only") {
            hello(ctx).rdb_only = flag_value(value)?;
        } else if args::is(option, "sync-stream") {
            hello(ctx).sync_stream = flag_value(value)?;
        } else if args::is(option, "snapshot-only") {
            let value = flag_value(value)?;
            let hello = hello(ctx);
            hello.rdb_only = value;
            hello.snapshot_only = value;
        } else if args::is(option, "rdb-no-compress") {
            hello(ctx).no_compress = flag_value(value)?;
        } else if args::is(option, "rdb-resume") {
            let request = ResumeRequest::parse(value).ok_or_else(|| {
                CmdError::new("ERR REPLCONF rdb-resume wants <replid>:<offset>:<size>:<received>")
            })?;
            resume::find(&ctx.store.replication, &request).map_err(|reason| {
                CmdError::new(format!("ERR can't resume the snapshot transfer: {reason}"))
            })?;
            hello(ctx).resume = Some(request);
        } else {
            return Err(CmdError::new(format!(
                "ERR Unrecognized REPLCONF option: {}",
                args::text(option)
            )));
        }
    }
    ctx.reply.ok();
    Ok(())
}

/// `0` or `1`, with Redis' range error.
fn flag_value(value: &[u8]) -> Result<bool, CmdError> {
    match args::int(value) {
        Ok(0) => Ok(false),
        Ok(1) => Ok(true),
        Ok(_) => Err(CmdError::new(
            "ERR value is out of range, must be between 0 and 1",
        )),
        Err(error) => Err(error),
    }
}

/// REPLCONF ACK <offset> [FACK <offset>]: records what a replica has processed and serves
/// the WAITs it satisfies. Silently ignored from non-replicas and on a bad offset.
fn ack(ctx: &mut Ctx<'_>, value: &[u8]) {
    let Ok(offset) = args::int(value) else {
        return;
    };
    let client_id = ctx.client.id;
    let side = &mut ctx.store.replication.master_side;
    let Some(replica) = side.find_mut(client_id) else {
        return;
    };
    if offset > replica.ack_offset {
        replica.ack_offset = offset;
    }
    replica.ack_time = unix_time_ms() / 1000;
    if !replica.has_snapshot {
        // A stream connection acknowledges only once its replica loaded the snapshot.
        replica.has_snapshot = true;
        side.refresh_good_replicas(ctx.config.min_replicas_max_lag_secs, unix_time_ms() / 1000);
    }
    super::diskless::after_ack(ctx.shared, ctx.store, client_id);
    serve_waiting(ctx);
}

/// Unblocks the WAITs enough replicas have acknowledged.
fn serve_waiting(ctx: &mut Ctx<'_>) {
    let side = &mut ctx.store.replication.master_side;
    if side.waiting.is_empty() {
        return;
    }
    let mut index = 0;
    while index < side.waiting.len() {
        let waiter = &side.waiting[index];
        let acked = side.count_acks(waiter.offset) as i64;
        if acked < waiter.numreplicas {
            index += 1;
            continue;
        }
        let waiter = side.waiting.remove(index);
        let mut reply = crate::protocol::Reply::new(waiter.resp);
        reply.int(acked);
        ctx.shared.cores[waiter.core].send(crate::server::shared::CoreMessage::Unblocked {
            conn: waiter.conn,
            bytes: reply.buf,
        });
    }
}

/// The reply a WAIT gets when its timeout passes: how many replicas acknowledged its
/// offset by then. `None` if the client is not waiting (already served).
pub fn wait_timed_out(store: &mut crate::storage::Store, client_id: u64) -> Option<i64> {
    let side = &mut store.replication.master_side;
    let index = side.waiting.iter().position(|w| w.client_id == client_id)?;
    let waiter = side.waiting.remove(index);
    Some(side.count_acks(waiter.offset) as i64)
}

/// CLIENT UNBLOCK on a client blocked in WAIT: removes it and returns where to send its
/// reply (core, connection, protocol) and the count it gets, as if it had timed out.
pub fn unblock_wait(
    store: &mut crate::storage::Store,
    client_id: u64,
) -> Option<(usize, u64, crate::protocol::Resp, i64)> {
    let side = &mut store.replication.master_side;
    let index = side.waiting.iter().position(|w| w.client_id == client_id)?;
    let waiter = side.waiting.remove(index);
    let acked = side.count_acks(waiter.offset) as i64;
    Some((waiter.core, waiter.conn, waiter.resp, acked))
}

/// WAIT numreplicas timeout: blocks until `numreplicas` replicas acknowledged every write
/// made so far (this client's included), or the timeout (ms, 0 = forever) passes; replies
/// the number that did. Asks the replicas for an ACK once per batch of WAITs.
pub fn wait(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    if ctx.store.replica_mode {
        return Err(CmdError::new("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."));
    }
    let numreplicas = args::int(args[1])?;
    let timeout = args::int(args[2])
        .map_err(|_| CmdError::new("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::new("ERR timeout is negative"));
    }
    // Everything executed so far, including writes of this batch not yet in the backlog.
    let offset = ctx.store.replication.master_repl_offset + ctx.store.propagation.pending_len();
    let side = &mut ctx.store.replication.master_side;
    let acked = side.count_acks(offset) as i64;
    if acked >= numreplicas || ctx.client.in_exec {
        ctx.reply.int(acked);
        return Ok(());
    }
    let deadline = if timeout == 0 {
        0
    } else {
        ctx.now_ms.saturating_add(timeout as u64)
    };
    side.waiting.push(WaitingClient {
        client_id: ctx.client.id,
        core: ctx.client.core,
        conn: ctx.client.conn,
        offset,
        numreplicas,
        resp: ctx.reply.resp,
    });
    side.request_acks();
    ctx.client.blocked = Some(deadline);
    ctx.client.info.blocked.store(true, Ordering::Relaxed);
    Ok(())
}

/// PSYNC <replid> <offset> and SYNC: continue the replica's stream from the backlog, or
/// start (or join) a snapshot for a full resync.
fn sync(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    ctx.propagate = Propagate::Nothing;
    // A replica sending SYNC again is ignored, without a reply.
    if ctx.client.replica.as_ref().is_some_and(|h| h.registered) {
        return Ok(());
    }
    let is_psync = args::is(args[0], "psync");
    if is_psync && args.len() > 3 && args::is(args[3], "failover") {
        log!(
            Warning,
            "Failover request received for replid {}.",
            args::text(args[1])
        );
        if !ctx.store.replica_mode {
            return Err(CmdError::new(
                "ERR PSYNC FAILOVER can't be sent to a master.",
            ));
        }
        return Err(CmdError::new(
            "ERR PSYNC FAILOVER replid must match my replid.",
        ));
    }
    // A replica whose own link is down has nothing consistent to offer (replica side).
    if let Some(refusal) = crate::replication::replica::sync_refusal(ctx.store) {
        return Err(CmdError::new(refusal));
    }
    if !ctx.reply.is_empty() {
        return Err(CmdError::new(
            "ERR SYNC and PSYNC are invalid with pending output",
        ));
    }
    let hello = ctx.client.replica.take().unwrap_or_default();
    let ip = hello
        .ip_address
        .clone()
        .unwrap_or_else(|| peer_ip(&ctx.client.info.addr));
    let name = super::replica_name(&ip, hello.listening_port);
    log!(Notice, "Replica {name} asks for synchronization");
    let mut replica = Replica {
        client_id: ctx.client.id,
        core: ctx.client.core,
        conn: ctx.client.conn,
        ip,
        listening_port: hello.listening_port,
        capa_eof: hello.capa_eof,
        capa_psync2: hello.capa_psync2,
        rdb_only: hello.rdb_only,
        snapshot_only: hello.snapshot_only,
        sync_stream: hello.sync_stream,
        has_snapshot: !hello.sync_stream,
        snapshot_delivered: false,
        no_compress: hello.no_compress,
        pre_psync: !is_psync,
        state: ReplicaState::WaitBgsaveStart,
        ack_offset: 0,
        ack_time: unix_time_ms() / 1000,
        stream_start: 0,
        soft_limit_since: None,
        asked_ms: unix_time_ms(),
        diskless: None,
    };
    let mut hello = hello;

    if is_psync {
        let offset = match args::int(args[2]) {
            Ok(offset) => offset,
            Err(error) => {
                log!(
                    Warning,
                    "Replica {name} asks for synchronization but with a wrong offset"
                );
                ctx.client.replica = Some(hello);
                return Err(error);
            }
        };
        // The batch's earlier writes belong in the backlog before offsets are compared.
        ctx.store.end_batch();
        let replication = &ctx.store.replication;
        let decision = psync::decide(
            &PsyncRequest {
                replid: args[1],
                offset,
            },
            &History {
                replid: replication.replid.as_bytes(),
                replid2: replication.replid2.as_bytes(),
                second_replid_offset: replication.second_replid_offset,
                backlog_first_offset: replication
                    .backlog
                    .as_ref()
                    .map(|b| b.first_offset() as i64),
                master_offset: replication.master_repl_offset as i64,
            },
        );
        match decision {
            Decision::Continue {
                from_offset,
                send_len,
                ..
            } => {
                let backlog = replication.backlog.as_ref().expect("decide saw a backlog");
                let reader = backlog.reader(from_offset as u64).map_err(|error| {
                    CmdError::new(format!("ERR partial resync failed: {error}"))
                })?;
                if hello.capa_psync2 {
                    ctx.reply
                        .raw(format!("+CONTINUE {}\r\n", replication.replid).as_bytes());
                } else {
                    ctx.reply.raw(b"+CONTINUE\r\n");
                }
                if hello.sync_stream {
                    log!(
                        Notice,
                        "Replica {name} takes the stream of its full sync from offset {from_offset} on this connection ({send_len} bytes of backlog to send)."
                    );
                } else {
                    log!(
                        Notice,
                        "Partial resynchronization request from {name} accepted. Sending {send_len} bytes of backlog starting from offset {from_offset}."
                    );
                }
                replica.state = ReplicaState::Online;
                replica.stream_start = from_offset as u64;
                let side = &mut ctx.store.replication.master_side;
                if !hello.sync_stream {
                    side.stats.partial_ok += 1;
                }
                side.replicas.push(replica);
                side.recompute_online_cores();
                side.refresh_good_replicas(
                    ctx.config.min_replicas_max_lag_secs,
                    unix_time_ms() / 1000,
                );
                hello.registered = true;
                hello.handoff = Some(Handoff::Stream(reader));
                become_replica(ctx, hello);
                return Ok(());
            }
            Decision::FullResync { reason } => {
                match &reason {
                    FullResyncReason::RequestedByReplica => {
                        log!(Notice, "Full resync requested by replica {name}")
                    }
                    FullResyncReason::LackOfBacklog {
                        asked,
                        beyond_master,
                    } => {
                        log!(
                            Notice,
                            "Unable to partial resync with replica {name} for lack of backlog (Replica request was: {asked})."
                        );
                        if *beyond_master {
                            log!(
                                Warning,
                                "Warning: replica {name} tried to PSYNC with an offset that is greater than the master replication offset."
                            );
                        }
                    }
                    other => log!(Notice, "{other}"),
                }
                if reason.counts_as_partial_err() {
                    ctx.store.replication.master_side.stats.partial_err += 1;
                }
            }
        }
        if let Some(request) = hello.resume.take() {
            match resume::find(&ctx.store.replication, &request) {
                Ok(retained) => {
                    let (file, len) = (retained.file.clone(), retained.len);
                    log!(
                        Notice,
                        "Resuming the full resync of replica {name}: sending the snapshot from byte {} of {len}",
                        request.received
                    );
                    ctx.reply.raw(
                        format!(
                            "+RESUME {} {} {}\r\n",
                            request.replid, request.offset, request.received
                        )
                        .as_bytes(),
                    );
                    let now_ms = unix_time_ms();
                    let side = &mut ctx.store.replication.master_side;
                    if let Some(retained) = side.retained.as_mut() {
                        // A link that keeps breaking keeps the snapshot alive.
                        retained.until_ms = now_ms.saturating_add(
                            ctx.config
                                .repl_resume_snapshot_ttl_secs
                                .saturating_mul(1000),
                        );
                    }
                    replica.state = ReplicaState::SendBulk;
                    replica.stream_start = request.offset + 1;
                    side.replicas.push(replica);
                    hello.registered = true;
                    hello.handoff = Some(Handoff::Resume {
                        file,
                        len,
                        from: request.received,
                    });
                    become_replica(ctx, hello);
                    return Ok(());
                }
                Err(reason) => log!(
                    Notice,
                    "Can't resume the snapshot transfer of replica {name}: {reason}"
                ),
            }
        }
    }

    // Full resynchronization.
    ctx.store.replication.master_side.stats.full += 1;
    let no_compress = replica.no_compress;
    let client_id = replica.client_id;
    let pre_psync = replica.pre_psync;
    ctx.store.replication.master_side.replicas.push(replica);
    if let Err(error) = create_backlog(ctx.shared, ctx.store) {
        log!(Warning, "{error}");
        let side = &mut ctx.store.replication.master_side;
        side.replicas.retain(|r| r.client_id != client_id);
        return Err(CmdError::new(format!("ERR {error}")));
    }
    hello.registered = true;
    hello.handoff = Some(Handoff::AwaitSnapshot);
    become_replica(ctx, hello);

    // Join the snapshot being made for other replicas when it suits this one and its start
    // is still in the backlog; otherwise start one, or wait for the running child.
    let replication = &mut ctx.store.replication;
    let backlog_first = replication.backlog.as_ref().map(|b| b.first_offset());
    let joinable = replication.master_side.snapshot.as_ref().filter(|s| {
        !s.diskless
            && s.no_compress == no_compress
            && backlog_first.is_some_and(|first| s.offset + 1 >= first)
    });
    if let Some(snapshot) = joinable.cloned() {
        let replid = replication.replid.clone();
        if let Some(replica) = replication.master_side.find_mut(client_id) {
            replica.state = ReplicaState::WaitBgsaveEnd;
            replica.stream_start = snapshot.offset + 1;
        }
        if !pre_psync {
            ctx.reply
                .raw(format!("+FULLRESYNC {replid} {}\r\n", snapshot.offset).as_bytes());
        }
        log!(Notice, "Waiting for end of BGSAVE for SYNC");
    } else if let Some(child) = &ctx.store.persistence.child {
        if replication
            .master_side
            .snapshot
            .as_ref()
            .is_some_and(|s| s.diskless)
        {
            log!(
                Notice,
                "Current BGSAVE has socket target. Waiting for next BGSAVE for SYNC"
            );
        } else if replication.master_side.snapshot.is_some()
            || child.kind == crate::persistence::fork::ChildKind::Rdb
        {
            log!(
                Notice,
                "Can't attach the replica to the current BGSAVE. Waiting for next BGSAVE for SYNC"
            );
        } else {
            log!(
                Notice,
                "No BGSAVE in progress, but another BG operation is active. BGSAVE for replication delayed"
            );
        }
    } else if super::diskless::delays_start(
        ctx.config,
        &replication.master_side,
        client_id,
        unix_time_ms(),
    ) {
        // The master cron starts the child once the delay is over, for all who came.
        log!(Notice, "Delay next BGSAVE for diskless SYNC");
    } else {
        let mut own = Vec::new();
        start_snapshot(
            ctx.shared,
            ctx.store,
            no_compress,
            Some((client_id, &mut own)),
        );
        ctx.reply.raw(&own);
        if own.starts_with(b"-") {
            ctx.client.close_after_reply = true;
        }
    }
    Ok(())
}

/// Marks the connection as a replica (CLIENT LIST flag `S`, CLIENT KILL TYPE replica) and
/// leaves the handoff for its core.
fn become_replica(ctx: &mut Ctx<'_>, hello: Box<ReplicaHello>) {
    *ctx.client.info.kind.lock() = ClientKind::Replica;
    ctx.client.replica = Some(hello);
}

/// The IP part of a peer address (`1.2.3.4:5678`, `[::1]:5678`).
fn peer_ip(addr: &str) -> String {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(socket) => socket.ip().to_string(),
        Err(_) => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ips_lose_their_port() {
        assert_eq!(peer_ip("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(peer_ip("[::1]:5000"), "::1");
        assert_eq!(peer_ip("weird"), "weird");
    }

    #[test]
    fn flag_values_are_zero_or_one() {
        assert_eq!(flag_value(b"0"), Ok(false));
        assert_eq!(flag_value(b"1"), Ok(true));
        assert_eq!(
            flag_value(b"2").unwrap_err().0,
            "ERR value is out of range, must be between 0 and 1"
        );
        assert_eq!(
            flag_value(b"x").unwrap_err().0,
            "ERR value is not an integer or out of range"
        );
    }
}
