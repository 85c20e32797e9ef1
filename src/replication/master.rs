//! The master side: this server's replicas (R1).

/// This server's replicas and the snapshot being made for them.
#[derive(Debug, Default)]
pub struct MasterSide {}
