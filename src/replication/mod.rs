//! Replication. For now: the propagation hook every write goes through, the mmapped backlog
//! ring it will feed ([`backlog`]), and the PSYNC decision ([`psync`]).
//!
//! [`Propagation`] lives inside the [`Store`](crate::storage::Store), so commands are encoded
//! into the stream inside the same critical section that executed them: the stream order is
//! the execution order, and the `SELECT` it inserts is always right for the next command.

pub mod backlog;
pub mod propagate;
pub mod psync;

pub use propagate::Propagation;
