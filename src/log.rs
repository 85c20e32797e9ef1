//! Logging in Redis' format: `<pid>:<role> <day> <mon> <year> <time>.<ms> <level> <message>`,
//! with the level shown as `.` debug, `-` verbose, `*` notice, `#` warning — so tools and
//! people who read Redis logs can read ours.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::Mutex;

/// Log levels, least to most severe (`loglevel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Verbose = 1,
    Notice = 2,
    Warning = 3,
    Nothing = 4,
}

static LEVEL_MIN: AtomicU8 = AtomicU8::new(Level::Notice as u8);
/// Role letter: `M` master, `S` replica, `C` forked child.
static ROLE: AtomicU8 = AtomicU8::new(b'M');
static SINK: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// Sets the minimum level written.
pub fn set_level(level: Level) {
    LEVEL_MIN.store(level as u8, Ordering::Relaxed);
}

/// Sends the log to `path` (appending) instead of stdout; empty means stdout.
pub fn set_file(path: &str) -> std::io::Result<()> {
    let file = if path.is_empty() {
        None
    } else {
        Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        )
    };
    *SINK.lock() = file;
    Ok(())
}

pub fn set_role(role: u8) {
    ROLE.store(role, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL_MIN.load(Ordering::Relaxed)
}

/// Writes one line if `level` is enabled.
pub fn write(level: Level, message: std::fmt::Arguments<'_>) {
    if !enabled(level) || level == Level::Nothing {
        return;
    }
    let mark = match level {
        Level::Debug => '.',
        Level::Verbose => '-',
        Level::Notice => '*',
        _ => '#',
    };
    let line = format!(
        "{}:{} {} {} {}\n",
        std::process::id(),
        ROLE.load(Ordering::Relaxed) as char,
        timestamp(),
        mark,
        message
    );
    let mut sink = SINK.lock();
    match sink.as_mut() {
        Some(file) => {
            let _ = file.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        }
    }
}

/// `22 Nov 2026 02:50:00.123` in local time, as Redis prints it.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = now.as_secs() as libc::time_t;
    // SAFETY: `tm` is a plain C struct for localtime_r to fill; both pointers are valid.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&seconds, &mut tm);
        tm
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        tm.tm_mday,
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_millis()
    )
}

/// `log!(Notice, "Ready to accept connections on port {}", port)`.
#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::write($crate::log::Level::$level, format_args!($($arg)*))
        }
    };
}
