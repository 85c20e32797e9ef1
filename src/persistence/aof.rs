//! The append-only file (H4).

use crate::server::shared::Shared;
use crate::storage::Store;

/// Called when an AOF rewrite child finished (stub until the AOF lands).
pub fn rewrite_finished(_shared: &Shared, _store: &mut Store, _ok: bool) {}
