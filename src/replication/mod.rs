//! Replication: the propagation hook every write goes through ([`propagate`]), the mmapped
//! backlog ring it feeds ([`backlog`]), the PSYNC decision ([`psync`]), the shared state
//! ([`state`]), this server's replicas ([`master`]), its link to its own master
//! ([`replica`]) and the backlog kept across a master restart ([`restart`]).
//!
//! [`Propagation`] lives inside the [`Store`](crate::storage::Store), so commands are encoded
//! into the stream inside the same critical section that executed them: the stream order is
//! the execution order, and the `SELECT` it inserts is always right for the next command.

pub mod backlog;
pub mod master;
pub mod propagate;
pub mod psync;
pub mod replica;
pub mod restart;
pub mod state;

pub use propagate::Propagation;
pub use state::ReplicationState;
