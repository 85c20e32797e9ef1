//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

use super::CommandSpec;

pub static COMMANDS: &[CommandSpec] = &[];

/// Commands that run immediately inside a MULTI block instead of being queued.
pub fn runs_inside_multi(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}
