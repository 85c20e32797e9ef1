//! Forking at a safe point (in progress).
