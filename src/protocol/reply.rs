//! Reply encoding for RESP2 and RESP3.
//!
//! Commands never format protocol bytes themselves: they call the typed methods of
//! [`Reply`], which append to the connection's output buffer in the version the client chose
//! with `HELLO`. The RESP3-only types degrade the way Redis degrades them for RESP2 clients:
//! a map becomes a flat array of `2n` elements, a set an array, a double a bulk string, a
//! boolean an integer, a null `$-1` (or `*-1` for null arrays).

/// Protocol version a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Resp {
    #[default]
    V2,
    V3,
}

/// An output buffer plus the protocol version to write it in.
#[derive(Debug, Default)]
pub struct Reply {
    pub buf: Vec<u8>,
    pub resp: Resp,
}

impl Reply {
    pub fn new(resp: Resp) -> Self {
        Reply {
            buf: Vec::new(),
            resp,
        }
    }

    #[inline]
    fn header(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        let mut tmp = itoa::Buffer::new();
        self.buf.extend_from_slice(tmp.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK`
    #[inline]
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A status reply; `s` must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error reply. `msg` is the whole text after `-`, e.g. `ERR syntax error` or
    /// `WRONGTYPE Operation ...`. Newlines are replaced by spaces so the reply stays one line.
    pub fn error(&mut self, msg: &str) {
        self.buf.push(b'-');
        if msg.contains(['\r', '\n']) {
            self.buf.extend(
                msg.bytes()
                    .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
        } else {
            self.buf.extend_from_slice(msg.as_bytes());
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    #[inline]
    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    #[inline]
    pub fn bulk(&mut self, data: &[u8]) {
        let mut length = itoa::Buffer::new();
        let length = length.format(data.len());
        // One capacity check for the whole frame: `$<len>\r\n<data>\r\n`.
        self.buf.reserve(length.len() + data.len() + 5);
        self.buf.push(b'$');
        self.buf.extend_from_slice(length.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer sent as a bulk string (what Redis does for INCRBYFLOAT results and the like).
    pub fn bulk_int(&mut self, n: i64) {
        let mut tmp = itoa::Buffer::new();
        let s = tmp.format(n);
        self.bulk(s.as_bytes());
    }

    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    #[inline]
    pub fn null(&mut self) {
        match self.resp {
            Resp::V2 => self.buf.extend_from_slice(b"$-1\r\n"),
            Resp::V3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    /// A missing array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        match self.resp {
            Resp::V2 => self.buf.extend_from_slice(b"*-1\r\n"),
            Resp::V3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    #[inline]
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` pairs (RESP3 `%`), a flat array of `2n` items in RESP2.
    pub fn map(&mut self, n: usize) {
        match self.resp {
            Resp::V2 => self.header(b'*', 2 * n as i64),
            Resp::V3 => self.header(b'%', n as i64),
        }
    }

    /// A set of `n` items (RESP3 `~`), an array in RESP2.
    pub fn set(&mut self, n: usize) {
        match self.resp {
            Resp::V2 => self.header(b'*', n as i64),
            Resp::V3 => self.header(b'~', n as i64),
        }
    }

    /// An out-of-band push (RESP3 `>`, pub/sub messages), an array in RESP2.
    pub fn push(&mut self, n: usize) {
        match self.resp {
            Resp::V2 => self.header(b'*', n as i64),
            Resp::V3 => self.header(b'>', n as i64),
        }
    }

    /// A double: bulk string in RESP2 (formatted like Redis' `%.17g`), `,` in RESP3.
    pub fn double(&mut self, value: f64) {
        let text = format_double(value);
        match self.resp {
            Resp::V2 => self.bulk(text.as_bytes()),
            Resp::V3 => {
                self.buf.push(b',');
                self.buf.extend_from_slice(text.as_bytes());
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A boolean: `:1`/`:0` in RESP2, `#t`/`#f` in RESP3.
    pub fn boolean(&mut self, value: bool) {
        match self.resp {
            Resp::V2 => self.int(value as i64),
            Resp::V3 => self
                .buf
                .extend_from_slice(if value { b"#t\r\n" } else { b"#f\r\n" }),
        }
    }

    /// Verbatim text (RESP3 `=` with format `txt`), a bulk string in RESP2. Used by INFO,
    /// CLIENT LIST and CLIENT INFO.
    pub fn verbatim(&mut self, text: &[u8]) {
        match self.resp {
            Resp::V2 => self.bulk(text),
            Resp::V3 => {
                self.header(b'=', text.len() as i64 + 4);
                self.buf.extend_from_slice(b"txt:");
                self.buf.extend_from_slice(text);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Raw protocol bytes already in this connection's version.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Formats a double as Redis 7.0 does in replies and digests: `inf`/`-inf`, otherwise C's
/// `%.17g` (so `1.1` reads `1.1000000000000001`, exactly as redis-server 7.0 shows it).
pub fn format_double(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is 64 writable bytes and we pass that size, so snprintf cannot write past
    // it; the format string is a NUL-terminated literal taking exactly one double.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%.17g".as_ptr(),
            value,
        )
    };
    String::from_utf8_lossy(&buf[..(n.max(0) as usize).min(buf.len() - 1)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_degrades_resp3_types() {
        let mut r = Reply::new(Resp::V2);
        r.map(2);
        r.null();
        r.null_array();
        r.double(1.5);
        r.boolean(true);
        assert_eq!(r.buf, b"*4\r\n$-1\r\n*-1\r\n$3\r\n1.5\r\n:1\r\n");
    }

    #[test]
    fn resp3_uses_native_types() {
        let mut r = Reply::new(Resp::V3);
        r.map(2);
        r.null();
        r.double(1.5);
        r.boolean(false);
        r.verbatim(b"hi");
        assert_eq!(r.buf, b"%2\r\n_\r\n,1.5\r\n#f\r\n=6\r\ntxt:hi\r\n");
    }

    #[test]
    fn errors_stay_on_one_line() {
        let mut r = Reply::default();
        r.error("ERR bad\r\nthing");
        assert_eq!(r.buf, b"-ERR bad  thing\r\n");
    }

    #[test]
    fn doubles_format_like_redis() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(-0.5), "-0.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(1.1), "1.1000000000000001");
    }
}
