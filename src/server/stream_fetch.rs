//! The stream connection of a split full sync (replica side, ringkv's own).
//!
//! When the master accepted `REPLCONF snapshot-only 1`, its `+FULLRESYNC <replid> <offset>`
//! connection carries only the snapshot. Right away a helper thread opens a second
//! connection, does the handshake and `PSYNC <replid> <offset + 1>`, which any PSYNC-capable
//! master answers `+CONTINUE` from its backlog, and from then on receives the stream into
//! memory while the snapshot is transferred and loaded. So the master sends the stream as it
//! is written: nothing waits for us in its backlog or output buffer, and a large snapshot
//! under a heavy write load cannot push us out and into a resync loop. When the snapshot is
//! in place, core 0 takes the socket and what was received ([`StreamFetch::finish`]) and
//! makes it the master link, the received bytes first.
//!
//! The thread does blocking I/O on its own socket only; it stops within [`POLL`] of being
//! asked. What it holds is bounded by the replica's `client-query-buffer-limit`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::log;
use crate::replication::replica::{self, HandshakeSettings};

/// How often the receiving thread checks whether it must stop.
const POLL: Duration = Duration::from_millis(10);
/// Bytes read per `read`.
const READ_CHUNK: usize = 1 << 20;

/// What the thread hands over: the connection and the stream bytes received so far.
pub struct Fetched {
    pub socket: TcpStream,
    pub received: Vec<u8>,
}

/// A running stream connection.
pub struct StreamFetch {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Fetched, String>>>,
}

impl StreamFetch {
    /// Starts the thread: connect to `host:port`, handshake, `PSYNC replid first_offset`,
    /// then receive until [`finish`](Self::finish). `limit` bounds what it holds;
    /// `timeout` bounds the connect and each handshake reply.
    pub fn start(
        host: String,
        port: u16,
        settings: HandshakeSettings,
        replid: String,
        first_offset: u64,
        limit: u64,
        timeout: Duration,
    ) -> std::io::Result<StreamFetch> {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ringkv-repl-stream".into())
                .spawn(move || {
                    let (socket, first) =
                        open(&host, port, &settings, &replid, first_offset, timeout)?;
                    receive(socket, first, &stop, limit)
                })?
        };
        Ok(StreamFetch {
            stop,
            handle: Some(handle),
        })
    }

    /// True when the thread already ended (it failed: it only ends on its own on errors).
    pub fn failed(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stops the thread (within [`POLL`]) and takes the connection and the bytes received.
    pub fn finish(mut self) -> Result<Fetched, String> {
        self.stop.store(true, Ordering::SeqCst);
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err("the stream connection's thread panicked".into()),
            None => Err("the stream connection was already taken".into()),
        }
    }
}

impl Drop for StreamFetch {
    /// An abandoned fetch stops on its own; its socket closes when the thread ends.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Connects and walks the handshake up to `+CONTINUE`.
fn open(
    host: &str,
    port: u16,
    settings: &HandshakeSettings,
    replid: &str,
    first_offset: u64,
    timeout: Duration,
) -> Result<(TcpStream, Vec<u8>), String> {
    let address = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("can't resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {host}"))?;
    let socket = TcpStream::connect_timeout(&address, timeout)
        .map_err(|e| format!("can't connect to {host}:{port}: {e}"))?;
    let _ = socket.set_nodelay(true);
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let (first, psync) = replica::stream_handshake(settings, replid, first_offset);
    (&socket)
        .write_all(&first)
        .map_err(|e| format!("can't send the handshake: {e}"))?;
    // AUTH (when set) must succeed; listening-port, ip-address and capa may be refused.
    let mut reader = BufReader::new(&socket);
    if settings.masterauth.is_some() {
        let line = read_line(&mut reader)?;
        if line.starts_with('-') {
            return Err(format!("AUTH refused: {line}"));
        }
    }
    for _ in 0..2 + usize::from(settings.announce_ip.is_some()) {
        read_line(&mut reader)?;
    }
    (&socket)
        .write_all(&psync)
        .map_err(|e| format!("can't send PSYNC: {e}"))?;
    loop {
        let line = read_line(&mut reader)?;
        if line.is_empty() {
            // Newline keep-alives before the answer.
            continue;
        }
        if line.starts_with("+CONTINUE") {
            break;
        }
        return Err(format!(
            "the master did not continue the stream at offset {first_offset}: {line}"
        ));
    }
    // The stream may follow `+CONTINUE` in the same segment: what the reader buffered past
    // the line is the stream's first bytes.
    let pending = reader.buffer().to_vec();
    drop(reader);
    Ok((socket, pending))
}

/// One reply line, without its line ending.
fn read_line(reader: &mut BufReader<&TcpStream>) -> Result<String, String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Err("the master closed the stream connection during its handshake".into()),
        Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
        Err(e) => Err(format!("reading the stream connection's handshake: {e}")),
    }
}

/// Receives the stream until asked to stop.
fn receive(
    mut socket: TcpStream,
    mut received: Vec<u8>,
    stop: &AtomicBool,
    limit: u64,
) -> Result<Fetched, String> {
    socket
        .set_read_timeout(Some(POLL))
        .map_err(|e| e.to_string())?;
    while !stop.load(Ordering::SeqCst) {
        if received.len() as u64 > limit {
            log!(
                Warning,
                "The stream received while loading the snapshot went over client-query-buffer-limit ({limit} bytes)"
            );
            return Err(
                "the stream received while loading went over client-query-buffer-limit".into(),
            );
        }
        let start = received.len();
        received.resize(start + READ_CHUNK, 0);
        let read = socket.read(&mut received[start..]);
        match read {
            Ok(0) => {
                received.truncate(start);
                return Err("the master closed the stream connection".into());
            }
            Ok(count) => received.truncate(start + count),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                received.truncate(start)
            }
            Err(e) => return Err(format!("reading the stream connection: {e}")),
        }
    }
    Ok(Fetched { socket, received })
}
