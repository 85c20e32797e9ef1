//! Server commands.

use std::fmt::Write;

use super::{CommandSpec, Ctx};
use crate::server::shared::{unix_time_us, CoreMessage};

pub static COMMANDS: &[CommandSpec] = &[];

/// Sends the MONITOR line for a command about to run to every monitoring client:
/// `+<unix seconds>.<micros> [<db> <addr>] "<arg>" "<arg>"...`.
pub fn feed_monitors(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let now = unix_time_us();
    let mut line = format!(
        "+{}.{:06} [{} {}]",
        now / 1_000_000,
        now % 1_000_000,
        ctx.client.db,
        ctx.client.info.addr
    );
    for arg in args {
        line.push_str(" \"");
        for &byte in *arg {
            match byte {
                b'\\' => line.push_str("\\\\"),
                b'"' => line.push_str("\\\""),
                b'\n' => line.push_str("\\n"),
                b'\r' => line.push_str("\\r"),
                b'\t' => line.push_str("\\t"),
                7 => line.push_str("\\a"),
                8 => line.push_str("\\b"),
                0x20..=0x7e => line.push(byte as char),
                other => {
                    let _ = write!(line, "\\x{other:02x}");
                }
            }
        }
        line.push('"');
    }
    line.push_str("\r\n");
    let monitors = ctx.shared.monitor_list.lock();
    for &(client_id, core, conn) in monitors.iter() {
        if client_id == ctx.client.id {
            continue;
        }
        ctx.shared.cores[core].send(CoreMessage::Deliver {
            conn,
            bytes: line.as_bytes().to_vec(),
        });
    }
}
