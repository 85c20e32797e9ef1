//! Serving clients blocked on keys, and the blocking commands.

use super::{CommandSpec, Ctx};
use crate::protocol::Reply;
use crate::server::shared::CoreMessage;
use crate::storage::blocking::BlockOp;

pub static COMMANDS: &[CommandSpec] = &[];

/// Serves waiters on every key signalled ready by the last command, first come first
/// served, for as long as each key has data. Each served waiter gets its reply through its
/// core's inbox; what the service changed is propagated like the non-blocking command it
/// stands for.
pub fn serve_ready_keys(ctx: &mut Ctx<'_>) {
    loop {
        let ready = ctx.store.blocking.take_ready();
        if ready.is_empty() {
            return;
        }
        for (db, key) in ready {
            while let Some(waiter) = ctx.store.blocking.first_waiter(db, &key).cloned() {
                let mut reply = Reply::new(waiter.resp);
                let served = match waiter.op {
                    BlockOp::ListPop { .. } | BlockOp::ListMove { .. } => {
                        super::lists::serve_blocked(ctx, &waiter, &key, &mut reply)
                    }
                    BlockOp::ZSetPop { .. } => {
                        super::zsets::serve_blocked(ctx, &waiter, &key, &mut reply)
                    }
                };
                if !served {
                    break;
                }
                ctx.store.blocking.remove(waiter.client_id);
                // The reply leaves from another core, maybe before this batch ends: what it
                // reports must reach the AOF first.
                if ctx.store.aof.is_on() {
                    ctx.store.end_batch();
                }
                ctx.shared.cores[waiter.core].send(CoreMessage::Unblocked {
                    conn: waiter.conn,
                    bytes: reply.buf,
                });
            }
        }
    }
}
