//! The append-only file (H4).
