//! A TCP proxy on loopback that stands between a replica and its master, so a test can stall
//! and cut the link at an exact byte of the master's output ("the link broke mid-transfer")
//! and count what each connection carried.
//!
//! Every connection gets two pump threads (replica → master, master → replica). The next
//! connection can be told to stall its master → replica direction after N bytes: the pump
//! stops forwarding and waits until the test cuts the connection (or the proxy is dropped).
//! Every wait is bounded by the proxy's lifetime; dropping the proxy closes everything.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One proxied connection.
#[derive(Default)]
struct Link {
    /// Bytes forwarded master → replica.
    down: AtomicU64,
    /// The downstream pump reached its stall point.
    stalled: AtomicBool,
    /// The test cut this connection.
    cut: AtomicBool,
    /// Clones of both sockets, to shut them down from the test.
    sockets: Mutex<Vec<TcpStream>>,
}

#[derive(Default)]
struct State {
    links: Mutex<Vec<Arc<Link>>>,
    stall_next_at: Mutex<Option<u64>>,
    stop: AtomicBool,
}

pub struct Proxy {
    pub port: u16,
    state: Arc<State>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `target_port`.
    pub fn start(target_port: u16) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(State::default());
        let acceptor = {
            let state = state.clone();
            thread::spawn(move || accept_loop(listener, target_port, state))
        };
        Proxy {
            port,
            state,
            acceptor: Some(acceptor),
        }
    }

    /// The next connection forwards only `bytes` from the master, then stalls until cut.
    pub fn stall_next_connection_at(&self, bytes: u64) {
        *self.state.stall_next_at.lock().unwrap() = Some(bytes);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.links.lock().unwrap().len()
    }

    /// Bytes the `index`th connection carried from the master to the replica.
    pub fn downstream_bytes(&self, index: usize) -> u64 {
        self.link(index).down.load(Ordering::SeqCst)
    }

    /// Waits (at most `timeout`) until the `index`th connection reached its stall point.
    pub fn wait_stalled(&self, index: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.connections() > index && self.link(index).stalled.load(Ordering::SeqCst) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "proxy connection {index} did not reach its stall point in {timeout:?} (connections: {})",
                self.connections()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Closes the `index`th connection on both sides.
    pub fn cut(&self, index: usize) {
        cut_link(&self.link(index));
    }

    fn link(&self, index: usize) -> Arc<Link> {
        self.state.links.lock().unwrap()[index].clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        for link in self.state.links.lock().unwrap().iter() {
            cut_link(link);
        }
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn cut_link(link: &Link) {
    link.cut.store(true, Ordering::SeqCst);
    for socket in link.sockets.lock().unwrap().iter() {
        let _ = socket.shutdown(Shutdown::Both);
    }
}

fn accept_loop(listener: TcpListener, target_port: u16, state: Arc<State>) {
    while !state.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(_) => {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        let _ = client.set_nonblocking(false);
        let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
            // The master is down: the replica sees its connection closed, as it would.
            continue;
        };
        let link = Arc::new(Link::default());
        link.sockets
            .lock()
            .unwrap()
            .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
        let stall_at = state.stall_next_at.lock().unwrap().take();
        state.links.lock().unwrap().push(link.clone());
        {
            let (from, to, link) = (
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                link.clone(),
            );
            thread::spawn(move || pump(from, to, None, &link, false));
        }
        let state = state.clone();
        thread::spawn(move || {
            pump(server, client, stall_at, &link, true);
            // A stalled pump waits for the cut (or the proxy's end), forwarding nothing.
            while link.stalled.load(Ordering::SeqCst)
                && !link.cut.load(Ordering::SeqCst)
                && !state.stop.load(Ordering::SeqCst)
            {
                thread::sleep(Duration::from_millis(5));
            }
            cut_link(&link);
        });
    }
}

/// Copies `from` → `to` until either side closes, or (downstream) `stall_at` bytes.
fn pump(mut from: TcpStream, mut to: TcpStream, stall_at: Option<u64>, link: &Link, down: bool) {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut forwarded = 0u64;
    loop {
        let room = match stall_at {
            Some(limit) if forwarded >= limit => {
                link.stalled.store(true, Ordering::SeqCst);
                return;
            }
            Some(limit) => ((limit - forwarded) as usize).min(buffer.len()),
            None => buffer.len(),
        };
        let read = match from.read(&mut buffer[..room]) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
        forwarded += read as u64;
        if down {
            link.down.fetch_add(read as u64, Ordering::SeqCst);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
