//! `ringkv-server [config-file] [--name value ...]`, exactly like `redis-server`.

use ringkv::config::Config;
use ringkv::log;
use ringkv::server::Server;

#[global_allocator]
static GLOBAL: ringkv::storage::memory::CountingAllocator =
    ringkv::storage::memory::CountingAllocator;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-v" || a == "--version") {
        println!(
            "ringkv-server v={} (Redis 7.0.15 compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    let (config, warnings) = match Config::from_args(&args) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    };
    log::set_level(config.loglevel);
    if let Err(error) = log::set_file(&config.logfile) {
        eprintln!("Can't open the log file {}: {error}", config.logfile);
        std::process::exit(1);
    }
    if config.daemonize {
        daemonize();
    }
    log!(Notice, "oO0OoO0OoO0Oo ringkv is starting oO0OoO0OoO0Oo");
    log!(
        Notice,
        "ringkv version={}, bits=64, pid={}, just started",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    match &config.config_file {
        Some(path) => log!(Notice, "Configuration loaded from {}", path.display()),
        None => log!(
            Warning,
            "Warning: no config file specified, using the default config. In order to specify a config file use ringkv-server /path/to/ringkv.conf"
        ),
    }
    for warning in &warnings {
        log!(Warning, "{warning}");
    }
    if config.disable_thp {
        disable_transparent_huge_pages();
    }
    if !config.pidfile.is_empty() || config.daemonize {
        let path = if config.pidfile.is_empty() {
            "/var/run/ringkv.pid"
        } else {
            config.pidfile.as_str()
        };
        if let Err(error) = std::fs::write(path, format!("{}\n", std::process::id())) {
            log!(Warning, "Failed to write PID file {path}: {error}");
        }
    }
    raise_open_files_limit(config.maxclients);
    // Like Redis, work inside `dir`: the RDB and AOF names are relative to it.
    if let Err(error) = std::env::set_current_dir(&config.dir) {
        log!(
            Warning,
            "Can't chdir to '{}': {}",
            config.dir.display(),
            ringkv::config::os_error_text(&error)
        );
        std::process::exit(1);
    }
    let pidfile = config.pidfile.clone();
    let server = match Server::start(config) {
        Ok(server) => server,
        Err(error) => {
            log!(Warning, "{error}");
            eprintln!("{error}");
            std::process::exit(1);
        }
    };
    log!(
        Notice,
        "Ready to accept connections tcp (port {})",
        server.port
    );
    let shared = server.shared.clone();
    server.join();
    let exit_code = shared
        .shutdown_exit_code
        .load(std::sync::atomic::Ordering::SeqCst);
    if !pidfile.is_empty() {
        let _ = std::fs::remove_file(&pidfile);
    }
    log!(Warning, "ringkv is now ready to exit, bye bye...");
    std::process::exit(exit_code as i32);
}

/// `disable-thp yes`: no transparent huge pages for this process from now on, whatever the
/// system setting (the allocator asks for them with `madvise`). Smaller page tables are what
/// THP saves at `fork()`; without it the fork pause grows with the dataset, as Redis'.
fn disable_transparent_huge_pages() {
    // SAFETY: prctl(PR_SET_THP_DISABLE) only sets a flag on this process's memory map; it
    // takes no pointers.
    let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if result != 0 {
        log!(
            Warning,
            "disable-thp: can't turn transparent huge pages off: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Detaches from the terminal like Redis' `daemonize yes`.
fn daemonize() {
    // SAFETY: called before any thread is started; fork/setsid/dup2 on a single-threaded
    // process are safe, and the parent exits immediately without touching shared state.
    unsafe {
        match libc::fork() {
            -1 => {
                eprintln!("fork failed: {}", std::io::Error::last_os_error());
                std::process::exit(1);
            }
            0 => {}
            _ => libc::_exit(0),
        }
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
}

/// Raises the open-files limit so `maxclients` connections fit, like Redis (which reserves 32
/// descriptors for its own files). Logs what it could get if the hard limit is lower.
fn raise_open_files_limit(maxclients: usize) {
    const RESERVED_FDS: u64 = 32;
    let wanted = maxclients as u64 + RESERVED_FDS;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct we pass by valid pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= wanted {
            return;
        }
        let granted = wanted.min(limit.rlim_max);
        let raised = libc::rlimit {
            rlim_cur: granted,
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 && granted < wanted {
            log!(
                Warning,
                "You requested maxclients of {maxclients} requiring at least {wanted} max file descriptors, but the hard limit allows {granted}."
            );
        }
    }
}
