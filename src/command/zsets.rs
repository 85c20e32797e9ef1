//! Sorted set commands.

use super::{CommandSpec, Ctx};
use crate::protocol::Reply;
use crate::storage::blocking::Waiter;
use crate::storage::Bstr;

pub static COMMANDS: &[CommandSpec] = &[];

/// Serves one waiter blocked on `key` (which may now hold data). Returns false, changing
/// nothing, if `key` has nothing for it; otherwise performs the pop (propagating it), writes
/// the reply into `reply`, and returns true.
pub fn serve_blocked(ctx: &mut Ctx<'_>, waiter: &Waiter, key: &Bstr, reply: &mut Reply) -> bool {
    let _ = (ctx, waiter, key, reply);
    todo!("implemented with the sorted set commands")
}
