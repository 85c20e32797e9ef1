//! Argument parsing shared by all command families, with Redis' error replies.

use super::CmdError;
use crate::protocol::parser::parse_i64;

/// Parses a signed 64-bit integer (`ERR value is not an integer or out of range`).
#[inline]
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(CmdError::NOT_INTEGER)
}

/// Parses a non-negative integer that must fit a usize; anything else, malformed or negative,
/// is `ERR value is out of range, must be positive` (Redis' `getPositiveLongFromObjectOrReply`).
pub fn positive(arg: &[u8]) -> Result<usize, CmdError> {
    match parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(CmdError::new("ERR value is out of range, must be positive")),
    }
}

/// Parses a float the way Redis' `strtold`-based parsing accepts it: decimal or exponent
/// notation, `inf`/`+inf`/`-inf`; no NaN, no spaces (`ERR value is not a valid float`).
pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    parse_float(arg).ok_or(CmdError::NOT_FLOAT)
}

/// [`float`] without the error; `None` for anything Redis would reject.
pub fn parse_float(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty()
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace)
    {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let value = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // Rust also accepts "nan" and "infinity" spelled other ways; reject those here.
            if lower.contains("nan") || lower.contains("inf") {
                return None;
            }
            lower.parse::<f64>().ok()?
        }
    };
    if value.is_nan() {
        return None;
    }
    Some(value)
}

/// Parses a blocking timeout in seconds (float allowed) into an absolute deadline in unix
/// ms, 0 meaning "forever" — Redis' `getTimeoutFromObjectOrReply`.
pub fn timeout_deadline(arg: &[u8], now_ms: u64) -> Result<u64, CmdError> {
    let seconds = parse_float(arg).ok_or(CmdError::TIMEOUT_NOT_FLOAT)?;
    if seconds < 0.0 {
        return Err(CmdError::TIMEOUT_NEGATIVE);
    }
    if !seconds.is_finite() || seconds * 1000.0 > (i64::MAX / 2) as f64 {
        return Err(CmdError::TIMEOUT_NOT_FLOAT);
    }
    let ms = (seconds * 1000.0).ceil() as u64;
    Ok(if ms == 0 { 0 } else { now_ms + ms })
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
#[inline]
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// Lossy text of an argument, for error messages.
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_parse_like_redis() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"-2e3"), Some(-2000.0));
        assert_eq!(parse_float(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_float(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float(b"nan"), None);
        assert_eq!(parse_float(b" 1"), None);
        assert_eq!(parse_float(b""), None);
        assert_eq!(parse_float(b"abc"), None);
    }

    #[test]
    fn timeouts_become_deadlines() {
        assert_eq!(timeout_deadline(b"0", 1000), Ok(0));
        assert_eq!(timeout_deadline(b"1.5", 1000), Ok(2500));
        assert_eq!(
            timeout_deadline(b"-1", 1000),
            Err(CmdError::TIMEOUT_NEGATIVE)
        );
        assert_eq!(
            timeout_deadline(b"x", 1000),
            Err(CmdError::TIMEOUT_NOT_FLOAT)
        );
    }
}
