//! RESP, the Redis serialization protocol: requests in ([`parser`]), replies out ([`reply`]).

pub mod parser;
pub mod reply;

pub use reply::{Reply, Resp};
