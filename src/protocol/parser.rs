//! Incremental RESP request parser.
//!
//! A client sends either a *multibulk* request (`*<n>\r\n` followed by `n` bulk strings
//! `$<len>\r\n<bytes>\r\n`) or an *inline* request (a line of space-separated words, as typed
//! by hand into telnet). The parser looks at the bytes received so far and answers one of:
//!
//! * [`Parsed::Command`]: a whole request, as byte ranges into the buffer, and its length;
//! * [`Parsed::Incomplete`]: more bytes are needed — this is a value, not an error, and it
//!   carries a hint of how many bytes the request needs in total so the reader can grow its
//!   buffer once instead of many times for a large bulk;
//! * an [`Error`]: the bytes can never become a valid request. The connection replies
//!   `-ERR Protocol error: ...` and is closed, as Redis does.
//!
//! The parser never copies argument bytes: it returns ranges, and the caller slices its own
//! buffer. It never allocates in proportion to a length the client announced, so a header
//! such as `$600000000` costs nothing until the bytes actually arrive.

use std::ops::Range;

/// Largest multibulk count Redis accepts (`*1048577` is rejected with "invalid multibulk length").
pub const MULTIBULK_COUNT_MAX: i64 = 1024 * 1024;
/// Longest inline request or multibulk/bulk header line before Redis gives up (64 KiB).
pub const INLINE_LENGTH_MAX: usize = 64 * 1024;

/// Outcome of one parse attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete request occupying `consumed` bytes from the start of the buffer.
    /// An empty `args` means an empty line or `*0`/`*-1`: skip it, reply nothing.
    Command {
        args: Vec<Range<usize>>,
        consumed: usize,
    },
    /// An inline request that uses quotes, `consumed` bytes long: its arguments need
    /// unescaping, so the caller gets them owned from [`parse_inline_owned`].
    QuotedInline { consumed: usize },
    /// Not enough bytes yet; `needed` is a lower bound on the total request size.
    Incomplete { needed: usize },
}

/// A protocol violation. The `Display` text is what follows `-ERR Protocol error: `.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// A header line longer than [`INLINE_LENGTH_MAX`] without a newline.
    TooBigMultibulkHeader,
    /// An inline request longer than [`INLINE_LENGTH_MAX`].
    TooBigInlineRequest,
    /// `*<n>` where `n` is not a number or exceeds [`MULTIBULK_COUNT_MAX`].
    InvalidMultibulkLength,
    /// `$<n>` where `n` is not a number, negative, or exceeds `proto-max-bulk-len`.
    InvalidBulkLength,
    /// Inside a multibulk, something other than `$` where a bulk string must start.
    ExpectedDollar(u8),
    /// An inline request with an unbalanced quote.
    UnbalancedQuotes,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::TooBigMultibulkHeader => f.write_str("too big mbulk count string"),
            Error::TooBigInlineRequest => f.write_str("too big inline request"),
            Error::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            Error::InvalidBulkLength => f.write_str("invalid bulk length"),
            Error::ExpectedDollar(b) => write!(f, "expected '$', got '{}'", *b as char),
            Error::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
        }
    }
}

/// Parses one request from the start of `buf`.
///
/// `bulk_len_max` is `proto-max-bulk-len`. Inline requests are split into ranges that point
/// into `buf` unless quoting is used; quoted inline arguments are returned in `unquoted`
/// storage by [`parse_inline_owned`] instead (rare: only humans type quotes).
pub fn parse(buf: &[u8], bulk_len_max: i64) -> Result<Parsed, Error> {
    match buf.first() {
        None => Ok(Parsed::Incomplete { needed: 1 }),
        Some(b'*') => parse_multibulk(buf, bulk_len_max),
        Some(_) => parse_inline(buf),
    }
}

/// Finds `\r\n` at or after `from`; returns the index of `\r`.
#[inline]
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let i = memchr::memchr(b'\r', &buf[at..])? + at;
        if i + 1 < buf.len() {
            if buf[i + 1] == b'\n' {
                return Some(i);
            }
            at = i + 1;
        } else {
            return None;
        }
    }
}

/// Parses a signed decimal the way Redis' `string2ll` does (no spaces, no `+`, no leading zeros).
#[inline]
pub fn parse_i64(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let (negative, body) = match digits[0] {
        b'-' => (true, &digits[1..]),
        _ => (false, digits),
    };
    if body.is_empty() || (body[0] == b'0' && body.len() > 1) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in body {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = (d - b'0') as i64;
        value = if negative {
            value.checked_mul(10)?.checked_sub(digit)?
        } else {
            value.checked_mul(10)?.checked_add(digit)?
        };
    }
    if negative && value == 0 {
        return None;
    }
    Some(value)
}

fn parse_multibulk(buf: &[u8], bulk_len_max: i64) -> Result<Parsed, Error> {
    let Some(line_end) = find_crlf(buf, 1) else {
        if buf.len() > INLINE_LENGTH_MAX {
            return Err(Error::TooBigMultibulkHeader);
        }
        return Ok(Parsed::Incomplete {
            needed: buf.len() + 1,
        });
    };
    let count = parse_i64(&buf[1..line_end]).ok_or(Error::InvalidMultibulkLength)?;
    if count > MULTIBULK_COUNT_MAX {
        return Err(Error::InvalidMultibulkLength);
    }
    let mut pos = line_end + 2;
    if count <= 0 {
        return Ok(Parsed::Command {
            args: Vec::new(),
            consumed: pos,
        });
    }
    let mut args = Vec::with_capacity((count as usize).min(64));
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(Parsed::Incomplete { needed: pos + 4 });
        }
        if buf[pos] != b'$' {
            return Err(Error::ExpectedDollar(buf[pos]));
        }
        let Some(header_end) = find_crlf(buf, pos + 1) else {
            if buf.len() - pos > INLINE_LENGTH_MAX {
                return Err(Error::InvalidBulkLength);
            }
            return Ok(Parsed::Incomplete {
                needed: buf.len() + 1,
            });
        };
        let len = parse_i64(&buf[pos + 1..header_end]).ok_or(Error::InvalidBulkLength)?;
        if len < 0 || len > bulk_len_max {
            return Err(Error::InvalidBulkLength);
        }
        let start = header_end + 2;
        let end = start + len as usize;
        if end + 2 > buf.len() {
            return Ok(Parsed::Incomplete { needed: end + 2 });
        }
        // Redis does not check the bytes after the payload; it skips two, and so do we.
        args.push(start..end);
        pos = end + 2;
    }
    Ok(Parsed::Command {
        args,
        consumed: pos,
    })
}

fn parse_inline(buf: &[u8]) -> Result<Parsed, Error> {
    let Some(newline) = memchr::memchr(b'\n', buf) else {
        if buf.len() > INLINE_LENGTH_MAX {
            return Err(Error::TooBigInlineRequest);
        }
        return Ok(Parsed::Incomplete {
            needed: buf.len() + 1,
        });
    };
    let mut line_end = newline;
    if line_end > 0 && buf[line_end - 1] == b'\r' {
        line_end -= 1;
    }
    let line = &buf[..line_end];
    if line.iter().any(|&b| b == b'"' || b == b'\'') {
        // Quoted inline requests need unescaping; the caller uses parse_inline_owned.
        return match split_quoted(line) {
            Some(_) => Ok(Parsed::QuotedInline {
                consumed: newline + 1,
            }),
            None => Err(Error::UnbalancedQuotes),
        };
    }
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < line.len() && !line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i > start {
            args.push(start..i);
        }
    }
    Ok(Parsed::Command {
        args,
        consumed: newline + 1,
    })
}

/// Splits an inline line with quotes the way `redis-cli` and Redis' `sdssplitargs` do:
/// `"..."` understands `\n \r \t \b \a \\ \" \xHH`; `'...'` only `\'`.
pub fn parse_inline_owned(buf: &[u8]) -> Option<Vec<Vec<u8>>> {
    let newline = memchr::memchr(b'\n', buf)?;
    let mut line_end = newline;
    if line_end > 0 && buf[line_end - 1] == b'\r' {
        line_end -= 1;
    }
    split_quoted(&buf[..line_end])
}

fn split_quoted(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Some(out);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                if i >= line.len() {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < line.len()
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                    current.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < line.len() {
                    i += 1;
                    current.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    // A closing quote must be followed by a space or the end.
                    if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else if in_single {
                if i >= line.len() {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < line.len() && line[i + 1] == b'\'' {
                    i += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else {
                if i >= line.len() {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    c => current.push(c),
                }
            }
            i += 1;
        }
        out.push(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(buf: &[u8]) -> (Vec<&[u8]>, usize) {
        match parse(buf, 512 * 1024 * 1024).unwrap() {
            Parsed::Command { args, consumed } => {
                (args.into_iter().map(|r| &buf[r]).collect(), consumed)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn multibulk_request_is_split_into_arguments() {
        let (args, consumed) = words(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nrest");
        assert_eq!(args, vec![&b"GET"[..], b"k"]);
        assert_eq!(consumed, 20);
    }

    #[test]
    fn partial_request_is_incomplete_with_size_hint() {
        let buf = b"*1\r\n$10\r\nabc";
        assert_eq!(
            parse(buf, 1 << 29).unwrap(),
            Parsed::Incomplete { needed: 21 }
        );
        assert!(matches!(
            parse(b"*1\r", 100).unwrap(),
            Parsed::Incomplete { .. }
        ));
        assert!(matches!(
            parse(b"", 100).unwrap(),
            Parsed::Incomplete { .. }
        ));
    }

    #[test]
    fn huge_bulk_header_is_rejected_without_allocation() {
        assert_eq!(
            parse(b"*1\r\n$500000000\r\n", 512 * 1024 * 1024),
            Ok(Parsed::Incomplete { needed: 500000018 })
        );
        assert_eq!(
            parse(b"*1\r\n$600000000\r\n", 512 * 1024 * 1024),
            Err(Error::InvalidBulkLength)
        );
        assert_eq!(
            parse(b"*1\r\n$600000000\r\n", 1024),
            Err(Error::InvalidBulkLength)
        );
        assert_eq!(parse(b"*1\r\n$-5\r\n", 1024), Err(Error::InvalidBulkLength));
        assert_eq!(
            parse(b"*1\r\n$abc\r\n", 1024),
            Err(Error::InvalidBulkLength)
        );
    }

    #[test]
    fn bad_multibulk_headers_are_protocol_errors() {
        assert_eq!(parse(b"*abc\r\n", 1024), Err(Error::InvalidMultibulkLength));
        assert_eq!(
            parse(b"*1048577\r\n", 1024),
            Err(Error::InvalidMultibulkLength)
        );
        assert_eq!(
            parse(b"*1\r\nxyz\r\n", 1024),
            Err(Error::ExpectedDollar(b'x'))
        );
        let long = vec![b'1'; INLINE_LENGTH_MAX + 10];
        let mut buf = b"*".to_vec();
        buf.extend_from_slice(&long);
        assert_eq!(parse(&buf, 1024), Err(Error::TooBigMultibulkHeader));
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        assert_eq!(
            parse(b"*0\r\n", 10),
            Ok(Parsed::Command {
                args: vec![],
                consumed: 4
            })
        );
        assert_eq!(
            parse(b"*-1\r\n", 10),
            Ok(Parsed::Command {
                args: vec![],
                consumed: 5
            })
        );
    }

    #[test]
    fn inline_request_splits_on_whitespace() {
        let (args, consumed) = words(b"SET  k v\r\nPING");
        assert_eq!(args, vec![&b"SET"[..], b"k", b"v"]);
        assert_eq!(consumed, 10);
        let (args, _) = words(b"PING\n");
        assert_eq!(args, vec![&b"PING"[..]]);
        let (args, _) = words(b"\r\n");
        assert!(args.is_empty());
    }

    #[test]
    fn inline_quotes_are_unescaped() {
        let buf = b"SET \"a b\" 'it\\'s' \"\\x41\\n\"\r\n";
        match parse(buf, 100).unwrap() {
            Parsed::QuotedInline { consumed } => assert_eq!(consumed, buf.len()),
            other => panic!("{other:?}"),
        }
        let owned = parse_inline_owned(buf).unwrap();
        assert_eq!(
            owned,
            vec![
                b"SET".to_vec(),
                b"a b".to_vec(),
                b"it's".to_vec(),
                b"A\n".to_vec()
            ]
        );
        assert_eq!(parse(b"SET \"abc\r\n", 100), Err(Error::UnbalancedQuotes));
    }

    #[test]
    fn integers_parse_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b""), None);
    }
}
