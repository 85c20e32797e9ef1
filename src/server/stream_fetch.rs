//! The stream connection of a split full sync (replica side, ringkv's own).
//!
//! When the master accepted `REPLCONF snapshot-only 1`, its `+FULLRESYNC <replid> <offset>`
//! connection carries only the snapshot. Right away a helper thread opens a second
//! connection, does the handshake and `PSYNC <replid> <offset + 1>`, which any PSYNC-capable
//! master answers `+CONTINUE` from its backlog, and from then on appends whatever the master
//! sends to a spool file in `dir`. It keeps doing so while the snapshot is transferred and
//! loaded, and while core 0 applies the spool afterwards, until core 0 has caught up with it.
//! So the master sends the stream as it is written: nothing waits for this replica in its
//! backlog or output buffer however long the sync and the catch-up take, and a large
//! snapshot under a heavy write load cannot push the replica out into a resync loop. What
//! the replica is behind by sits in the page cache and on disk, not in memory.
//!
//! Core 0 takes a clone of the socket when the snapshot is in place (to send its ACKs and to
//! read from it later), reads the spool in chunks ([`StreamFetch::read_spool`]) and, when it
//! has read everything, stops the thread and takes the last bytes ([`StreamFetch::finish`]);
//! from then on the socket is read by the event loop as any master link. The thread does
//! blocking I/O on its own socket and file only, and stops within [`POLL`] of being asked.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::replication::replica::{self, HandshakeSettings};

/// How often the receiving thread checks whether it must stop.
const POLL: Duration = Duration::from_millis(10);
/// Bytes read per `read`.
const READ_CHUNK: usize = 1 << 20;
/// How often a newline goes to the master until core 0 takes the socket.
const NEWLINE_EVERY: Duration = Duration::from_secs(1);

/// What the thread and core 0 share.
struct Shared {
    stop: AtomicBool,
    /// Bytes appended to the spool so far.
    written: AtomicU64,
    /// A clone of the socket, once the handshake succeeded; `true` once core 0 took it (from
    /// then on only core 0 writes to it).
    socket: Mutex<(Option<TcpStream>, bool)>,
}

/// A running stream connection.
pub struct StreamFetch {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<Result<(), String>>>,
    spool: File,
    path: PathBuf,
    /// Bytes of the spool core 0 has read.
    consumed: u64,
}

impl StreamFetch {
    /// Creates the spool file and starts the thread: connect to `host:port`, handshake,
    /// `PSYNC replid first_offset`, then spool until [`finish`](Self::finish). `timeout`
    /// bounds the connect and each handshake reply.
    pub fn start(
        host: String,
        port: u16,
        settings: HandshakeSettings,
        replid: String,
        first_offset: u64,
        timeout: Duration,
    ) -> std::io::Result<StreamFetch> {
        let path = PathBuf::from(format!(
            "temp-stream-{}.{}.spool",
            std::process::id(),
            first_offset
        ));
        let writer = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        let spool = File::open(&path)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            written: AtomicU64::new(0),
            socket: Mutex::new((None, false)),
        });
        let thread_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("ringkv-repl-stream".into())
            .spawn(move || {
                let socket = open(&host, port, &settings, &replid, first_offset, timeout)?;
                receive(socket, writer, &thread_shared)
            });
        let handle = match spawned {
            Ok(handle) => handle,
            Err(error) => {
                let _ = std::fs::remove_file(&path);
                return Err(error);
            }
        };
        Ok(StreamFetch {
            shared,
            handle: Some(handle),
            spool,
            path,
            consumed: 0,
        })
    }

    /// True when the thread already ended: it only ends on its own on errors.
    pub fn failed(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// A clone of the connection once its handshake is done, waiting for it at most
    /// `timeout` (it takes a round trip or two; the snapshot took much longer). `None` if
    /// the thread failed or the wait ran out.
    pub fn socket(&self, timeout: Duration) -> Option<TcpStream> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut guard = self.shared.socket.lock().ok()?;
            if let Some(clone) = guard.0.as_ref().map(|socket| socket.try_clone()) {
                guard.1 = true;
                return clone.ok();
            }
            drop(guard);
            if self.failed() || Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Appends up to `max` unread spool bytes to `out`; returns how many (0 = caught up).
    pub fn read_spool(&mut self, out: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
        let written = self.shared.written.load(Ordering::Acquire);
        let count = (written - self.consumed).min(max as u64) as usize;
        if count == 0 {
            return Ok(0);
        }
        let start = out.len();
        out.resize(start + count, 0);
        let read = self.spool.read_at(&mut out[start..], self.consumed);
        match read {
            Ok(read) => {
                out.truncate(start + read);
                self.consumed += read as u64;
                Ok(read)
            }
            Err(error) => {
                out.truncate(start);
                Err(error)
            }
        }
    }

    /// Bytes spooled and not read yet.
    pub fn behind(&self) -> u64 {
        self.shared.written.load(Ordering::Acquire) - self.consumed
    }

    /// Stops the thread (within [`POLL`]) and appends every spool byte not read yet to `out`;
    /// the thread's error, if it failed.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), String> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let result = match self.handle.take().map(|h| h.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err("the stream connection's thread panicked".into()),
            None => Err("the stream connection was already finished".into()),
        };
        result?;
        while self
            .read_spool(out, usize::MAX)
            .map_err(|e| format!("reading the stream spool: {e}"))?
            > 0
        {}
        Ok(())
    }
}

impl Drop for StreamFetch {
    /// Stops the thread (it closes its socket when it ends) and removes the spool.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Connects and walks the handshake up to `+CONTINUE`; returns the socket and the stream
/// bytes that came with the reply line.
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
    // AUTH (when set) must succeed; listening-port, ip-address, capa and sync-stream may be
    // refused.
    let mut reader = BufReader::new(&socket);
    if settings.masterauth.is_some() {
        let line = read_line(&mut reader)?;
        if line.starts_with('-') {
            return Err(format!("AUTH refused: {line}"));
        }
    }
    for _ in 0..3 + usize::from(settings.announce_ip.is_some()) {
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

/// Appends the stream to the spool until asked to stop.
fn receive(
    (mut socket, first): (TcpStream, Vec<u8>),
    mut spool: File,
    shared: &Shared,
) -> Result<(), String> {
    let spool_error = |e: std::io::Error| format!("writing the stream spool: {e}");
    spool.write_all(&first).map_err(spool_error)?;
    shared
        .written
        .fetch_add(first.len() as u64, Ordering::Release);
    socket
        .set_read_timeout(Some(POLL))
        .map_err(|e| e.to_string())?;
    let poisoned = |_| "the stream connection's lock is poisoned".to_string();
    shared.socket.lock().map_err(poisoned)?.0 =
        Some(socket.try_clone().map_err(|e| e.to_string())?);
    let mut buffer = vec![0u8; READ_CHUNK];
    let mut last_newline = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        if last_newline.elapsed() >= NEWLINE_EVERY {
            // Until core 0 takes the socket (and sends ACKs), a newline now and then tells
            // the master this replica is alive while it loads (it refreshes the ACK time, as
            // Redis replicas do while loading), so `repl-timeout` does not drop it.
            let guard = shared.socket.lock().map_err(poisoned)?;
            if !guard.1 {
                (&socket)
                    .write_all(b"\n")
                    .map_err(|e| format!("writing to the stream connection: {e}"))?;
            }
            drop(guard);
            last_newline = Instant::now();
        }
        match socket.read(&mut buffer) {
            Ok(0) => return Err("the master closed the stream connection".into()),
            Ok(count) => {
                spool.write_all(&buffer[..count]).map_err(spool_error)?;
                shared.written.fetch_add(count as u64, Ordering::Release);
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(format!("reading the stream connection: {e}")),
        }
    }
    Ok(())
}

/// Removes, from the working directory (`dir`), the stream spools and the snapshot temp files
/// of replica transfers whose process is gone (`temp-stream-<pid>.<offset>.spool`,
/// `temp-<secs>.<pid>.<seq>.rdb`): a replica killed during a full sync would otherwise leave
/// them (the spool can be gigabytes) for good. Files of a live process are left alone.
/// Returns the names removed.
pub fn remove_stale_transfer_files() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(".") else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = transfer_file_pid(&name) else {
            continue;
        };
        if process_alive(pid) {
            continue;
        }
        if std::fs::remove_file(entry.path()).is_ok() {
            removed.push(name);
        }
    }
    removed
}

/// The PID in a replica transfer file's name, if `name` is one.
fn transfer_file_pid(name: &str) -> Option<i32> {
    let numbers = |text: &str, count: usize| -> Option<Vec<u64>> {
        let parts: Vec<&str> = text.split('.').collect();
        (parts.len() == count)
            .then(|| parts.iter().map(|p| p.parse::<u64>().ok()).collect())
            .flatten()
    };
    if let Some(rest) = name.strip_prefix("temp-stream-") {
        let fields = numbers(rest.strip_suffix(".spool")?, 2)?;
        return i32::try_from(fields[0]).ok();
    }
    let fields = numbers(name.strip_prefix("temp-")?.strip_suffix(".rdb")?, 3)?;
    i32::try_from(fields[1]).ok()
}

/// Whether a process with this PID exists (signal 0 probes without sending anything).
fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return true;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the PID exists.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_file_names_are_recognised_and_others_are_not() {
        assert_eq!(transfer_file_pid("temp-stream-1234.77.spool"), Some(1234));
        assert_eq!(transfer_file_pid("temp-1700000000.1234.0.rdb"), Some(1234));
        for other in [
            "dump.rdb",
            "temp-1700000000.1234.rdb",
            "temp-1234-dump.rdb",
            "temp-stream-x.1.spool",
            "temp-stream-1.spool",
            "temp-1.2.3.4.rdb",
            "dump.rdb.backlog",
        ] {
            assert_eq!(transfer_file_pid(other), None, "{other}");
        }
    }

    #[test]
    fn only_dead_processes_count_as_gone() {
        assert!(process_alive(std::process::id() as i32));
        // PIDs above the kernel's pid_max never exist.
        assert!(!process_alive(i32::MAX));
    }
}
