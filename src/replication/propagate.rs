//! Encodes executed write commands, once, into the replication stream.
//!
//! The stream is exactly what replicas and the AOF receive: each write command as a RESP
//! multibulk, preceded by `SELECT <db>` whenever the database differs from the previous
//! command's. While nothing consumes the stream (no replica, no AOF) it costs one branch.

/// The replication stream being produced.
#[derive(Debug, Default)]
pub struct Propagation {
    /// Whether any consumer exists; when false, [`Propagation::feed`] does nothing.
    pub enabled: bool,
    /// Database of the last command in the stream (`None`: the next one needs a SELECT).
    selected_db: Option<usize>,
    /// Bytes encoded and not yet taken by [`Propagation::take`].
    pending: Vec<u8>,
}

impl Propagation {
    /// Appends one command executed against `db`.
    pub fn feed<A: AsRef<[u8]>>(&mut self, db: usize, args: &[A]) {
        if !self.enabled {
            return;
        }
        if self.selected_db != Some(db) {
            let db_text = itoa::Buffer::new().format(db).to_owned();
            encode(
                &mut self.pending,
                &[b"SELECT".as_slice(), db_text.as_bytes()],
            );
            self.selected_db = Some(db);
        }
        encode(&mut self.pending, args);
    }

    /// Takes the encoded bytes produced since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    /// True if bytes wait to be taken.
    #[inline]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Hands back an emptied buffer from [`Propagation::take`] so the next batch reuses its
    /// allocation.
    pub fn give_back(&mut self, mut buffer: Vec<u8>) {
        if self.pending.is_empty() && buffer.capacity() > self.pending.capacity() {
            buffer.clear();
            self.pending = buffer;
        }
    }

    /// Bytes encoded in this batch and not yet in the replication offset (WAIT counts them).
    pub fn pending_len(&self) -> u64 {
        self.pending.len() as u64
    }

    /// Forces the next command to be preceded by SELECT (a new consumer joined mid-stream).
    pub fn reset_selected_db(&mut self) {
        self.selected_db = None;
    }
}

/// Encodes `args` as a RESP multibulk.
pub fn encode<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    let mut number = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(number.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        let arg = arg.as_ref();
        out.push(b'$');
        out.extend_from_slice(number.format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_stream_produces_nothing() {
        let mut p = Propagation::default();
        p.feed(0, &["SET", "k", "v"]);
        assert!(p.take().is_empty());
        assert_eq!(p.pending_len(), 0);
    }

    #[test]
    fn select_is_inserted_when_the_database_changes() {
        let mut p = Propagation {
            enabled: true,
            ..Default::default()
        };
        p.feed(0, &["SET", "k", "v"]);
        p.feed(0, &["DEL", "k"]);
        p.feed(3, &["INCR", "n"]);
        let pending = p.pending_len();
        let stream = p.take();
        assert_eq!(
            stream,
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n\
*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n"
        );
        assert_eq!(pending, stream.len() as u64);
    }
}
