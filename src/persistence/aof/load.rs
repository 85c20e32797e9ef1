//! Loading the AOF at start, as Redis 7.0 does (`aofLoadManifestFromDisk`,
//! `loadAppendOnlyFiles`, `aofOpenIfNeededOnServerStart`).
//!
//! Each file is mapped read-only. A file that starts with `REDIS` is an RDB image (a
//! `.base.rdb`, or an old single-file AOF with an RDB preamble): it goes through the RDB
//! decoder, and the commands after it, if any, follow. Commands are RESP multibulks
//! (`*<argc>\r\n` then `$<len>\r\n<bytes>\r\n` per argument); lines starting with `#` are
//! annotations (`#TS:` timestamps) and skipped.
//!
//! Commands run through the command table as a client of their own that never gets a reply
//! or blocks, with Redis' loading rules: nothing expires while loading (a key whose TTL
//! passed while the server was down must still receive the commands that follow it in the
//! file, exactly as Redis applies them), and `maxmemory` is not enforced.
//!
//! A file that ends in the middle of a command (or of a MULTI block) is *truncated*: with
//! `aof-load-truncated yes` and when it is the last file, the tail is dropped (the file is
//! cut at the end of the last whole command) with Redis' warnings. Anything else that is
//! wrong stops the start with a message naming the file, the byte offset and the problem,
//! and the file is left as it is.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::manifest::{FileType, Manifest};
use super::{dir_path, open_incr, persist_manifest, rewrite, Status};
use crate::command::{self, Ctx, Propagate};
use crate::config::Config;
use crate::log;
use crate::persistence::files::Mapped;
use crate::persistence::rdb;
use crate::protocol::{Reply, Resp};
use crate::server::client::ClientState;
use crate::server::shared::{unix_time_ms, ClientInfo, ClientKind, Shared};
use crate::storage::Store;

/// Longest header line (`*<argc>`, `$<len>`, `#...`) accepted, as Redis' line buffer.
const LINE_MAX: usize = 1024;

/// Reads the manifest at start. A missing directory or manifest is an empty manifest (a
/// first start, or an old single-file AOF to migrate); a bad one stops the start.
pub fn load_manifest(config: &Config) -> Result<Manifest, String> {
    let dir = dir_path(config);
    if !dir.is_dir() {
        log!(Debug, "The AOF directory {} doesn't exist", dir.display());
        return Ok(Manifest::default());
    }
    let name = super::manifest::manifest_name(&config.appendfilename);
    let path = dir.join(&name);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            log!(Debug, "The AOF manifest file {name} doesn't exist");
            return Ok(Manifest::default());
        }
        Err(error) => {
            return Err(format!(
                "Fatal error: can't open the AOF manifest file {} for reading: {}",
                path.display(),
                crate::config::os_error_text(&error)
            ))
        }
    };
    Manifest::parse(&bytes).map_err(|error| {
        format!(
            "Fatal AOF manifest file error in {}: {error}",
            path.display()
        )
    })
}

/// Loads the data at start when `appendonly` is on, then opens the incr file to append to
/// (creating the directory, a base and an incr file when there is nothing yet) and removes
/// history files. Returns true when the AOF was the data source (the RDB file must then not
/// be loaded), false when `appendonly` is off (only the manifest was read, for a later
/// `CONFIG SET appendonly yes`).
pub fn load_at_start(shared: &Shared, store: &mut Store) -> Result<bool, String> {
    let config = shared.config();
    super::attach(shared, store);
    store.aof.refresh_settings(&config);
    let mut manifest = load_manifest(&config)?;
    if !config.appendonly {
        store.aof.manifest = manifest;
        return Ok(false);
    }
    let started = Instant::now();
    if Path::new(&config.appendfilename).is_file() && needs_upgrade(&config, &manifest) {
        upgrade(&config, &mut manifest)?;
    }
    let outcome = load_files(shared, &config, store, &manifest)?;
    if outcome != Outcome::NotExist {
        log!(
            Notice,
            "DB loaded from append only file: {:.3} seconds",
            started.elapsed().as_secs_f64()
        );
    }
    store.aof.manifest = manifest;
    open_at_start(&config, store)?;
    super::delete_history(&config, &mut store.aof);
    Ok(true)
}

/// Redis 7.0's three situations in which an `appendfilename` file in `dir` is an old-style
/// AOF to move into the directory.
fn needs_upgrade(config: &Config, manifest: &Manifest) -> bool {
    let dir = dir_path(config);
    let no_files = manifest.base.is_none() && manifest.incrs.is_empty();
    let only_old_base = manifest.incrs.is_empty()
        && manifest
            .base
            .as_ref()
            .is_some_and(|base| base.name == config.appendfilename)
        && !dir.join(&config.appendfilename).exists();
    !dir.is_dir() || no_files || only_old_base
}

/// Moves an old single-file AOF into the directory as its base (Redis' `aofUpgradePrepare`):
/// directory, then manifest, then rename, so a crash at any step is retried at next start.
fn upgrade(config: &Config, manifest: &mut Manifest) -> Result<(), String> {
    let dir = dir_path(config);
    std::fs::create_dir_all(&dir).map_err(|error| {
        format!(
            "Can't open or create append-only dir {}: {}",
            dir.display(),
            crate::config::os_error_text(&error)
        )
    })?;
    manifest.base = Some(super::manifest::FileInfo {
        name: config.appendfilename.clone(),
        seq: 1,
        kind: FileType::Base,
    });
    manifest.base_seq = 1;
    manifest.dirty = true;
    persist_manifest(&dir, &config.appendfilename, manifest)?;
    std::fs::rename(&config.appendfilename, dir.join(&config.appendfilename)).map_err(|error| {
        format!(
            "Error trying to move the old AOF file {} into dir {}: {}",
            config.appendfilename,
            dir.display(),
            crate::config::os_error_text(&error)
        )
    })?;
    log!(
        Notice,
        "Successfully migrated an old-style AOF file ({}) into the AOF directory ({}).",
        config.appendfilename,
        config.appenddirname
    );
    Ok(())
}

/// Result of loading all files or one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// The manifest names no file.
    NotExist,
    /// Every file is empty.
    Empty,
    /// The last file's incomplete tail was cut off.
    Truncated,
}

/// Loads the base and the incr files in order (Redis' `loadAppendOnlyFiles`).
fn load_files(
    shared: &Shared,
    config: &Config,
    store: &mut Store,
    manifest: &Manifest,
) -> Result<Outcome, String> {
    let files: Vec<_> = manifest.files_to_load().collect();
    if files.is_empty() {
        return Ok(Outcome::NotExist);
    }
    let dir = dir_path(config);
    let mut total = 0;
    let mut base_size = 0;
    for info in &files {
        let size = std::fs::metadata(dir.join(&info.name))
            .map_err(|error| {
                format!(
                    "Unable to obtain the AOF file {} length. stat: {}",
                    info.name,
                    crate::config::os_error_text(&error)
                )
            })?
            .len();
        if info.kind == FileType::Base {
            base_size = size;
        }
        total += size;
    }
    if total == 0 {
        return Ok(Outcome::Empty);
    }
    // Commands replayed here must not reach the stream (and from it the AOF being loaded).
    let propagating = std::mem::replace(&mut store.propagation.enabled, false);
    let mut replayer = Replayer::new(shared, config);
    let mut outcome = Outcome::Ok;
    for (index, info) in files.iter().enumerate() {
        let last = index + 1 == files.len();
        let started = Instant::now();
        let result = load_file(
            &mut replayer,
            store,
            &dir.join(&info.name),
            &info.name,
            info.name == config.appendfilename,
            last,
            config,
        );
        match result {
            Ok(FileOutcome::Empty) => continue,
            Ok(loaded) => {
                log!(
                    Notice,
                    "DB loaded from {} file {}: {:.3} seconds",
                    if info.kind == FileType::Base {
                        "base"
                    } else {
                        "incr"
                    },
                    info.name,
                    started.elapsed().as_secs_f64()
                );
                if loaded == FileOutcome::Truncated {
                    outcome = Outcome::Truncated;
                }
            }
            Err(error) => {
                store.propagation.enabled = propagating;
                return Err(error);
            }
        }
    }
    store.propagation.enabled = propagating;
    store.aof.rewrite_base_size = base_size;
    // Redis runs loaded commands without its command statistics; so does INFO here.
    let stats = &shared.stats;
    for counter in [
        &stats.total_commands_processed,
        &stats.total_error_replies,
        &stats.keyspace_hits,
        &stats.keyspace_misses,
    ] {
        counter.reset();
    }
    Ok(outcome)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileOutcome {
    Loaded,
    Empty,
    Truncated,
}

/// Where and why a file could not be read on.
struct Stop {
    offset: usize,
    problem: String,
    /// The file ended early (as opposed to holding something that is not a command).
    truncated: bool,
}

/// Loads one file (Redis' `loadSingleAppendOnlyFile`).
fn load_file(
    replayer: &mut Replayer<'_>,
    store: &mut Store,
    path: &Path,
    name: &str,
    old_style: bool,
    last: bool,
    config: &Config,
) -> Result<FileOutcome, String> {
    let mapped = Mapped::open(path).map_err(|error| {
        format!(
            "Fatal error: can't open the append log file {name} for reading: {}",
            crate::config::os_error_text(&error)
        )
    })?;
    let bytes = mapped.bytes();
    if bytes.is_empty() {
        return Ok(FileOutcome::Empty);
    }
    let mut position = 0;
    if bytes.starts_with(b"REDIS") {
        if old_style {
            log!(Notice, "Reading RDB preamble from AOF file...");
        } else {
            log!(Notice, "Reading RDB base file on AOF loading...");
        }
        let options = rdb::LoadOptions {
            now_ms: unix_time_ms(),
            // Redis keeps expired keys of an AOF preamble: later commands may touch them.
            drop_expired: false,
            key_load_delay_us: config.key_load_delay,
            skip_checksum: !config.rdbchecksum,
        };
        let loaded = rdb::decode::load(bytes, &mut store.dbs, &options).map_err(|error| {
            if old_style {
                format!("Error reading the RDB preamble of the AOF file {name}, AOF loading aborted: {error}")
            } else {
                format!("Error reading the RDB base file {name}, AOF loading aborted: {error}")
            }
        })?;
        log!(
            Notice,
            "Done loading RDB, keys loaded: {}, keys expired: {}.",
            loaded.keys,
            loaded.expired_skipped
        );
        position = loaded.consumed.min(bytes.len());
        if old_style {
            log!(Notice, "Reading the remaining AOF tail...");
        }
    }
    let stop = replayer.replay(store, bytes, position, config.key_load_delay, name);
    let Some(stop) = stop else {
        return Ok(FileOutcome::Loaded);
    };
    let valid_up_to = replayer.valid_up_to;
    if !stop.truncated {
        return Err(format!(
            "Bad file format reading the append only file {name} at offset {}: {}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>",
            stop.offset, stop.problem
        ));
    }
    let unexpected_end = format!(
        "Unexpected end of file reading the append only file {name} at offset {} ({}). You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
        stop.offset, stop.problem
    );
    if !config.aof_load_truncated {
        return Err(unexpected_end);
    }
    if !last {
        return Err(format!(
            "Fatal error: the truncated file is not the last file: {unexpected_end}"
        ));
    }
    log!(
        Warning,
        "!!! Warning: short read while loading the AOF file {name}!!!"
    );
    log!(
        Warning,
        "!!! Truncating the AOF {name} at offset {valid_up_to} !!!"
    );
    drop(mapped);
    let truncated = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| {
            file.set_len(valid_up_to as u64)?;
            file.sync_all()
        });
    if let Err(error) = truncated {
        log!(
            Warning,
            "Error truncating the AOF file {name}: {}",
            crate::config::os_error_text(&error)
        );
        return Err(unexpected_end);
    }
    log!(
        Warning,
        "AOF {name} loaded anyway because aof-load-truncated is enabled"
    );
    Ok(FileOutcome::Truncated)
}

/// Runs commands read from files, as Redis' fake AOF client.
struct Replayer<'a> {
    shared: &'a Shared,
    /// The configuration with `maxmemory` off: loading is never refused for memory.
    config: Config,
    client: ClientState,
    reply: Reply,
    /// End of the last whole command outside MULTI (where a truncated file is cut).
    valid_up_to: usize,
}

impl<'a> Replayer<'a> {
    fn new(shared: &'a Shared, config: &Config) -> Replayer<'a> {
        let mut config = config.clone();
        config.maxmemory = 0;
        let info = Arc::new(ClientInfo::new(
            u64::MAX,
            0,
            0,
            -1,
            String::new(),
            String::new(),
            ClientKind::Normal,
        ));
        Replayer {
            shared,
            config,
            client: ClientState::new(info, true),
            reply: Reply::new(Resp::V2),
            valid_up_to: 0,
        }
    }

    /// Runs every command of `bytes` from `position`; `None` when the file ended cleanly.
    fn replay(
        &mut self,
        store: &mut Store,
        bytes: &[u8],
        mut position: usize,
        key_load_delay_us: i64,
        name: &str,
    ) -> Option<Stop> {
        // Each file starts with a fresh client state, as Redis creates a new fake client.
        self.client.multi = None;
        self.client.set_db(0);
        self.valid_up_to = position;
        let mut valid_before_multi = position;
        let mut args: Vec<&[u8]> = Vec::new();
        loop {
            let start = position;
            match parse_command(bytes, &mut position, &mut args) {
                Parsed::End => break,
                Parsed::Annotation => continue,
                Parsed::Stop(stop) => return Some(stop),
                Parsed::Command => {}
            }
            let Some(spec) = command::lookup(args[0]) else {
                return Some(Stop {
                    offset: start,
                    problem: format!(
                        "unknown command '{}'",
                        String::from_utf8_lossy(&args[0][..args[0].len().min(128)])
                    ),
                    truncated: false,
                });
            };
            let argc = args.len() as i32;
            if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
                return Some(Stop {
                    offset: start,
                    problem: format!("wrong number of arguments for '{}'", spec.name),
                    truncated: false,
                });
            }
            if spec.name == "multi" {
                valid_before_multi = self.valid_up_to;
            }
            self.run(store, &args);
            self.valid_up_to = position;
            if key_load_delay_us > 0 {
                std::thread::sleep(std::time::Duration::from_micros(key_load_delay_us as u64));
            }
        }
        if self.client.multi.is_some() {
            log!(
                Warning,
                "Revert incomplete MULTI/EXEC transaction in AOF file {name}"
            );
            self.client.multi = None;
            self.valid_up_to = valid_before_multi;
            return Some(Stop {
                offset: bytes.len(),
                problem: "MULTI without EXEC".into(),
                truncated: true,
            });
        }
        None
    }

    /// Runs one command. Replies (errors included) go nowhere, as for Redis' AOF client.
    fn run(&mut self, store: &mut Store, args: &[&[u8]]) {
        // Blocking commands must not block: behave as inside EXEC.
        self.client.in_exec = true;
        let mut ctx = Ctx {
            shared: self.shared,
            config: &self.config,
            store,
            client: &mut self.client,
            reply: &mut self.reply,
            now_ms: loading_clock(args),
            propagate: Propagate::AsIs,
        };
        command::call(&mut ctx, args);
        self.client.in_exec = false;
        self.reply.buf.clear();
    }
}

/// The time a replayed command sees. Redis does not expire anything while loading; here
/// time 0 gives the same effect (no TTL is ever "passed", and absolute times, which is how
/// Redis and ringkv write every TTL to the AOF, are stored as they are). Commands with a
/// time relative to now (only in hand-written files) get the real clock.
fn loading_clock(args: &[&[u8]]) -> u64 {
    let name = args[0];
    let has = |word: &str| {
        args[1..]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    };
    let relative = name.eq_ignore_ascii_case(b"expire")
        || name.eq_ignore_ascii_case(b"pexpire")
        || name.eq_ignore_ascii_case(b"setex")
        || name.eq_ignore_ascii_case(b"psetex")
        || ((name.eq_ignore_ascii_case(b"set") || name.eq_ignore_ascii_case(b"getex"))
            && (has("ex") || has("px")))
        || (name.eq_ignore_ascii_case(b"restore") && !has("absttl"));
    if relative {
        unix_time_ms()
    } else {
        0
    }
}

enum Parsed {
    Command,
    Annotation,
    End,
    Stop(Stop),
}

/// Reads one line (without its `\n` and an optional `\r`) of at most [`LINE_MAX`] bytes.
/// `Err(true)` when the file ends first, `Err(false)` when the line is too long.
fn read_line<'b>(bytes: &'b [u8], position: &mut usize) -> Result<&'b [u8], bool> {
    let rest = &bytes[*position..];
    let window = &rest[..rest.len().min(LINE_MAX + 1)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) => {
            *position += end + 1;
            Ok(window[..end].strip_suffix(b"\r").unwrap_or(&window[..end]))
        }
        None if window.len() == rest.len() => Err(true),
        None => Err(false),
    }
}

/// Parses a non-negative decimal number (the digits of a `*` or `$` line).
fn parse_count(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Parses the command at `*position` into `args` (slices of `bytes`).
fn parse_command<'b>(bytes: &'b [u8], position: &mut usize, args: &mut Vec<&'b [u8]>) -> Parsed {
    let start = *position;
    if start >= bytes.len() {
        return Parsed::End;
    }
    let stop = |offset: usize, truncated: bool, problem: String| {
        Parsed::Stop(Stop {
            offset,
            problem,
            truncated,
        })
    };
    if bytes[start] == b'#' {
        // An annotation; one cut short at the very end is harmless, as in Redis.
        return match read_line(bytes, position) {
            Ok(_) => Parsed::Annotation,
            Err(true) => {
                *position = bytes.len();
                Parsed::End
            }
            Err(false) => stop(start, false, "annotation line too long".into()),
        };
    }
    if bytes[start] != b'*' {
        return stop(
            start,
            false,
            format!(
                "expected '*' starting a command, found {}",
                describe_byte(bytes[start])
            ),
        );
    }
    let header = match read_line(bytes, position) {
        Ok(line) => line,
        Err(true) => return stop(start, true, "command header cut short".into()),
        Err(false) => return stop(start, false, "command header line too long".into()),
    };
    let Some(argc) = parse_count(&header[1..]).filter(|&n| n >= 1) else {
        return stop(
            start,
            false,
            format!(
                "invalid argument count '{}'",
                String::from_utf8_lossy(&header[1..])
            ),
        );
    };
    args.clear();
    // Never trust a count for an allocation: each argument takes at least 6 bytes.
    args.reserve(argc.min((bytes.len() - *position) / 6 + 1));
    for index in 0..argc {
        let line_start = *position;
        if line_start >= bytes.len() {
            return stop(
                line_start,
                true,
                format!("command ends after {index} of {argc} arguments"),
            );
        }
        if bytes[line_start] != b'$' {
            return stop(
                line_start,
                false,
                format!(
                    "expected '$' starting argument {} of {argc}, found {}",
                    index + 1,
                    describe_byte(bytes[line_start])
                ),
            );
        }
        let line = match read_line(bytes, position) {
            Ok(line) => line,
            Err(true) => return stop(line_start, true, "argument length cut short".into()),
            Err(false) => return stop(line_start, false, "argument length line too long".into()),
        };
        let Some(len) = parse_count(&line[1..]) else {
            return stop(
                line_start,
                false,
                format!(
                    "invalid argument length '{}'",
                    String::from_utf8_lossy(&line[1..])
                ),
            );
        };
        let data_start = *position;
        let available = bytes.len() - data_start;
        if len > available || available - len < 2 {
            return stop(
                data_start,
                true,
                format!("argument of {len} bytes cut short"),
            );
        }
        let data_end = data_start + len;
        if &bytes[data_end..data_end + 2] != b"\r\n" {
            return stop(
                data_end,
                false,
                format!("expected CRLF after an argument of {len} bytes"),
            );
        }
        args.push(&bytes[data_start..data_end]);
        *position = data_end + 2;
    }
    Parsed::Command
}

fn describe_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("'{}'", byte as char)
    } else {
        format!("byte 0x{byte:02x}")
    }
}

/// After loading, opens the incr file to append to (Redis' `aofOpenIfNeededOnServerStart`):
/// creates the directory; with no base and no incr file (first start), writes a base of the
/// (empty) dataset; opens the last incr file or creates the first; writes the manifest.
fn open_at_start(config: &Config, store: &mut Store) -> Result<(), String> {
    let dir = dir_path(config);
    std::fs::create_dir_all(&dir).map_err(|error| {
        format!(
            "Can't open or create append-only dir {}: {}",
            dir.display(),
            crate::config::os_error_text(&error)
        )
    })?;
    let had_incr = !store.aof.manifest.incrs.is_empty();
    if store.aof.manifest.base.is_none() && !had_incr {
        let name = store
            .aof
            .manifest
            .new_base(&config.appendfilename, config.aof_use_rdb_preamble);
        let path = dir.join(&name);
        rewrite::write_base_file(&store.dbs, &path, config)
            .map_err(|error| format!("Can't create the AOF base file {name}: {error}"))?;
        log!(Notice, "Creating AOF base file {name} on server start");
    }
    let name = store.aof.manifest.last_incr_or_new(&config.appendfilename);
    let path: PathBuf = dir.join(&name);
    let (file, size) = open_incr(&path, false).map_err(|error| {
        format!(
            "Can't open the append-only file {name}: {}",
            crate::config::os_error_text(&error)
        )
    })?;
    persist_manifest(&dir, &config.appendfilename, &mut store.aof.manifest)?;
    store.aof.set_incr_file(file, name.clone(), size)?;
    store.aof.current_size = store
        .aof
        .manifest
        .files_to_load()
        .filter_map(|info| std::fs::metadata(dir.join(&info.name)).ok())
        .map(|meta| meta.len())
        .sum();
    if let Some(base) = &store.aof.manifest.base {
        store.aof.rewrite_base_size = std::fs::metadata(dir.join(&base.name))
            .map(|meta| meta.len())
            .unwrap_or(0);
    }
    store.aof.status = Status::On;
    // The file may end in another database than 0: the next command states its own.
    store.propagation.reset_selected_db();
    store.propagation.enabled = true;
    if had_incr {
        log!(Notice, "Opening AOF incr file {name} on server start");
    } else {
        log!(Notice, "Creating AOF incr file {name} on server start");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Commands = Vec<Vec<Vec<u8>>>;

    /// Every command of `bytes`, or (offset, truncated, problem) of the first stop.
    fn parse_all(bytes: &[u8]) -> Result<Commands, (usize, bool, String)> {
        let mut position = 0;
        let mut commands = Vec::new();
        let mut args = Vec::new();
        loop {
            match parse_command(bytes, &mut position, &mut args) {
                Parsed::End => return Ok(commands),
                Parsed::Annotation => {}
                Parsed::Command => {
                    commands.push(args.iter().map(|a| a.to_vec()).collect());
                }
                Parsed::Stop(stop) => return Err((stop.offset, stop.truncated, stop.problem)),
            }
        }
    }

    const TWO: &[u8] = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n#TS:1700000000\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva\r\nl\r\n";

    #[test]
    fn commands_and_annotations_parse() {
        let commands = parse_all(TWO).unwrap();
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[1][2], b"va\r\nl");
    }

    #[test]
    fn every_cut_is_truncation_and_never_panics() {
        for cut in 0..=TWO.len() {
            match parse_all(&TWO[..cut]) {
                Ok(_) => assert!(
                    cut == 0 || (23..=39).contains(&cut) || cut == TWO.len(),
                    "{cut}"
                ),
                Err((_, truncated, problem)) => assert!(truncated, "cut {cut}: {problem}"),
            }
        }
    }

    #[test]
    fn corruption_is_a_format_error_with_its_offset() {
        let mut bad = TWO.to_vec();
        bad[23] = b'x';
        assert_eq!(
            parse_all(&bad).unwrap_err(),
            (
                23,
                false,
                "expected '*' starting a command, found 'x'".to_string()
            )
        );
        let mut bad = TWO.to_vec();
        bad[4] = b'%';
        assert_eq!(parse_all(&bad).unwrap_err().0, 4);
        let bad = b"*0\r\n";
        assert!(!parse_all(bad).unwrap_err().1);
        let bad = b"*1\r\n$3\r\nfooXX";
        assert_eq!(
            parse_all(bad).unwrap_err(),
            (
                11,
                false,
                "expected CRLF after an argument of 3 bytes".to_string()
            )
        );
        let huge = b"*99999999999\r\n$1\r\na\r\n";
        assert!(parse_all(huge).is_err());
    }

    #[test]
    fn random_damage_never_panics() {
        let mut seed = 0xdead_beef_u64;
        for _ in 0..5000 {
            let mut bytes = TWO.to_vec();
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let at = (seed >> 33) as usize % bytes.len();
            bytes[at] = (seed >> 13) as u8;
            let cut = (seed >> 45) as usize % (bytes.len() + 1);
            let _ = parse_all(&bytes[..cut]);
        }
    }

    #[test]
    fn loading_clock_is_frozen_except_for_relative_times() {
        assert_eq!(loading_clock(&[b"PEXPIREAT", b"k", b"1"]), 0);
        assert_eq!(loading_clock(&[b"SET", b"k", b"v", b"PXAT", b"1"]), 0);
        assert_eq!(loading_clock(&[b"RPUSH", b"k", b"ex"]), 0);
        assert!(loading_clock(&[b"expire", b"k", b"10"]) > 0);
        assert!(loading_clock(&[b"SET", b"k", b"v", b"ex", b"10"]) > 0);
        assert!(loading_clock(&[b"RESTORE", b"k", b"10", b"x"]) > 0);
        assert_eq!(
            loading_clock(&[b"RESTORE", b"k", b"10", b"x", b"ABSTTL"]),
            0
        );
    }
}
