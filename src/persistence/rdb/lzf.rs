//! LZF, the compression Redis applies to RDB strings (liblzf's format).

/// Appends the LZF compression of `input` to `out` and returns true, or returns false and
/// leaves `out` as it was when the result would not be smaller than `input`.
pub fn compress(input: &[u8], out: &mut Vec<u8>) -> bool {
    let _ = (input, out);
    todo!("H1")
}

/// Decompresses `input`, which must expand to exactly `expected_len` bytes.
pub fn decompress(input: &[u8], expected_len: usize) -> Result<Vec<u8>, &'static str> {
    let _ = (input, expected_len);
    todo!("H1")
}
