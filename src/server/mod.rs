//! The server: one event loop per core ([`event_loop`]), the io_uring plumbing they share
//! ([`uring`]), per-connection state ([`client`]) and what all cores share ([`shared`]).

pub mod client;
pub mod event_loop;
pub mod shared;
pub(crate) mod stream_fetch;
pub mod uring;

use std::sync::Arc;

use crate::config::Config;
use crate::log;
use shared::Shared;

/// A running server: its shared state and its core threads.
pub struct Server {
    pub shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Port actually listened on.
    pub port: u16,
}

impl Server {
    /// Binds the listeners and starts `server-threads` event loops.
    pub fn start(config: Config) -> Result<Server, String> {
        let cores = config.server_threads_effective();
        let mut port = config.port;
        // Bind core 0 first so `port 0` (any free port) gives one port all cores then share.
        let mut listeners = Vec::with_capacity(cores);
        for core in 0..cores {
            let sockets = event_loop::listen(&config, port).map_err(|error| {
                format!("Failed listening on port {port} (tcp), aborting: {error}")
            })?;
            if core == 0 {
                if let Some(bound) = sockets
                    .first()
                    .and_then(|s| s.local_addr().ok())
                    .and_then(|a| a.as_socket())
                {
                    port = bound.port();
                }
            }
            listeners.push(sockets);
        }
        let shared = Arc::new(
            Shared::new(config, cores).map_err(|e| format!("cannot create core handles: {e}"))?,
        );
        shared
            .bound_port
            .store(port as usize, std::sync::atomic::Ordering::Relaxed);
        install_signal_wakeups(&shared);
        crate::persistence::fork::set_listener_fds(
            listeners
                .iter()
                .flatten()
                .map(std::os::fd::AsRawFd::as_raw_fd)
                .collect(),
        );
        // A configured `replicaof` first, so the load keeps keys a master will expire.
        crate::replication::replica::configure_at_start(&mut shared.lock_store(), &shared.config());
        crate::persistence::snapshot::load_at_start(&shared)?;
        for name in stream_fetch::remove_stale_transfer_files() {
            crate::log!(
                Notice,
                "Removed {name}, left by a replica transfer of a process that is gone"
            );
        }
        // Each ring is created on the thread that will use it (IORING_SETUP_SINGLE_ISSUER
        // requires it); creation errors come back here so the start fails with the cause.
        let mut threads = Vec::with_capacity(cores);
        for (id, sockets) in listeners.into_iter().enumerate() {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
            let core_shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ringkv-core-{id}"))
                .spawn(
                    move || match event_loop::Core::new(id, core_shared, sockets) {
                        Ok(core) => {
                            let _ = ready_tx.send(Ok(()));
                            core.run();
                        }
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                        }
                    },
                )
                .map_err(|e| format!("cannot start core thread: {e}"))?;
            match ready_rx.recv() {
                Ok(Ok(())) => threads.push(thread),
                Ok(Err(error)) => {
                    shared.request_shutdown();
                    return Err(error);
                }
                Err(_) => return Err("core thread died while starting".into()),
            }
        }
        log!(Notice, "Server initialized with {cores} event loop(s)");
        Ok(Server {
            shared,
            threads,
            port,
        })
    }

    /// Waits until every core has stopped.
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// eventfds the signal handler writes to; set once at start.
static SIGNAL_WAKE_FDS: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();
/// Set by the SIGTERM/SIGINT handler (to the signal number); the first core to wake takes it
/// and asks every core to stop.
pub static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_terminate(signal: libc::c_int) {
    SIGNALLED.store(signal, std::sync::atomic::Ordering::SeqCst);
    if let Some(fds) = SIGNAL_WAKE_FDS.get() {
        let one: u64 = 1;
        for &fd in fds {
            // SAFETY: write(2) is async-signal-safe; fd is one of our eventfds and `one` lives
            // on this stack frame for the duration of the call.
            unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
        }
    }
}

fn install_signal_wakeups(shared: &Shared) {
    let _ = SIGNAL_WAKE_FDS.set(shared.cores.iter().map(|c| c.wake_fd).collect());
    // SAFETY: installs a handler that only does async-signal-safe work (atomic store, write);
    // SIGPIPE is ignored so a closed peer is an error return, not a crash.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_terminate as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            on_terminate as *const () as libc::sighandler_t,
        );
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}
