//! Opcodes, value types and encodings of the RDB format (H1 documents them in full).
