//! The replica side: the link to this server's master (R2).

/// The master link and its state machine.
#[derive(Debug, Default)]
pub struct ReplicaSide {}
