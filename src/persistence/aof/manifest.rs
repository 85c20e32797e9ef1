//! The AOF manifest: which files make up the append-only file, in Redis 7.0's format.
//!
//! The manifest `<appendfilename>.manifest` lives in the AOF directory. Each line names one
//! file with three key/value pairs (more pairs are allowed and ignored, for forward
//! compatibility), for example:
//!
//! ```text
//! file appendonly.aof.2.base.rdb seq 2 type b
//! file appendonly.aof.1.incr.aof seq 1 type h
//! file appendonly.aof.3.incr.aof seq 3 type i
//! ```
//!
//! - `type b`: the base, a snapshot from the last rewrite (`.base.rdb` when it is an RDB
//!   file, `.base.aof` when it is commands). At most one, written first.
//! - `type h`: history, a base or incr file a rewrite made obsolete; deleted soon after.
//! - `type i`: incr files, commands since the base, loaded in order; sequence numbers must
//!   increase. Only the last is appended to.
//!
//! Lines are split with redis.conf quoting rules; a file name that needs quoting (spaces,
//! quotes, control bytes) is written in double quotes with C escapes, as Redis'
//! `sdscatrepr` does. Lines starting with `#` are comments; a line may be at most 1024 bytes.

use std::fmt;

/// Longest manifest line Redis reads (`MANIFEST_MAX_LINE`).
const LINE_MAX: usize = 1024;

/// The role of one file in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Base,
    History,
    Incr,
}

impl FileType {
    fn letter(self) -> char {
        match self {
            FileType::Base => 'b',
            FileType::History => 'h',
            FileType::Incr => 'i',
        }
    }
}

/// One line of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// A bare file name inside the AOF directory.
    pub name: String,
    pub seq: i64,
    pub kind: FileType,
}

/// The whole manifest, as Redis keeps it in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<FileInfo>,
    /// Incr files, oldest first.
    pub incrs: Vec<FileInfo>,
    pub history: Vec<FileInfo>,
    /// Sequence number of the newest base ever named (the next base gets one more).
    pub base_seq: i64,
    /// Sequence number of the newest incr file ever named.
    pub incr_seq: i64,
    /// Changed since it was last written to disk.
    pub dirty: bool,
}

/// Why a manifest could not be read: the line (1-based) and what was wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    /// 0 when the problem is the file as a whole (empty).
    pub line: usize,
    /// The offending line, trimmed (empty when `line` is 0).
    pub text: String,
    pub reason: &'static str,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{} at line {}: '{}'", self.reason, self.line, self.text)
        }
    }
}

/// Suffixes of Redis' naming rules.
pub const BASE_RDB_SUFFIX: &str = ".base.rdb";
pub const BASE_AOF_SUFFIX: &str = ".base.aof";
pub const INCR_SUFFIX: &str = ".incr.aof";
pub const MANIFEST_SUFFIX: &str = ".manifest";

/// `<appendfilename>.manifest`.
pub fn manifest_name(filename: &str) -> String {
    format!("{filename}{MANIFEST_SUFFIX}")
}

/// The incr file a rewrite started by `CONFIG SET appendonly yes` writes to until it is
/// known whether the rewrite succeeds (`temp-<appendfilename>.incr`).
pub fn temp_incr_name(filename: &str) -> String {
    format!("temp-{filename}.incr")
}

/// Where a rewrite child writes the new base before the parent renames it.
pub fn temp_rewrite_name(child_pid: i32) -> String {
    format!("temp-rewriteaof-bg-{child_pid}.aof")
}

impl Manifest {
    /// Parses manifest text, with the checks (and messages) of Redis 7.0's loader.
    pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
        let mut manifest = Manifest::default();
        if text.is_empty() {
            return Err(ManifestError {
                line: 0,
                text: String::new(),
                reason: "Found an empty AOF manifest",
            });
        }
        let mut max_incr_seq = 0;
        let mut rest = text;
        let mut line_number = 0;
        while !rest.is_empty() {
            line_number += 1;
            let (raw, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => (&rest[..end], &rest[end + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = next;
            let error = |reason| ManifestError {
                line: line_number,
                text: String::from_utf8_lossy(trim(raw)).into_owned(),
                reason,
            };
            if raw.first() == Some(&b'#') {
                continue;
            }
            if raw.len() >= LINE_MAX {
                return Err(error("The AOF manifest file contains too long line"));
            }
            let line = trim(raw);
            if line.is_empty() {
                return Err(error("Invalid AOF manifest file format"));
            }
            let words = crate::config::split_args_bytes(line)
                .filter(|w| w.len() >= 6 && w.len() % 2 == 0)
                .ok_or_else(|| error("Invalid AOF manifest file format"))?;
            let mut name = None;
            let mut seq = 0;
            let mut kind_letter = 0u8;
            for pair in words.chunks(2) {
                let key = &pair[0];
                let value = &pair[1];
                if key.eq_ignore_ascii_case(b"file") {
                    if value.contains(&b'/') || value.contains(&b'\\') {
                        return Err(error("File can't be a path, just a filename"));
                    }
                    let text = String::from_utf8(value.clone())
                        .map_err(|_| error("File name is not valid UTF-8"))?;
                    name = Some(text);
                } else if key.eq_ignore_ascii_case(b"seq") {
                    seq = atoll(value);
                } else if key.eq_ignore_ascii_case(b"type") {
                    kind_letter = value.first().copied().unwrap_or(0);
                }
            }
            let (Some(name), true, true) = (name, seq != 0, kind_letter != 0) else {
                return Err(error("Invalid AOF manifest file format"));
            };
            let name_is_empty = name.is_empty();
            match kind_letter {
                b'b' => {
                    if manifest.base.is_some() {
                        return Err(error("Found duplicate base file information"));
                    }
                    manifest.base_seq = seq;
                    manifest.base = Some(FileInfo {
                        name,
                        seq,
                        kind: FileType::Base,
                    });
                }
                b'h' => manifest.history.push(FileInfo {
                    name,
                    seq,
                    kind: FileType::History,
                }),
                b'i' => {
                    if seq <= max_incr_seq {
                        return Err(error("Found a non-monotonic sequence number"));
                    }
                    max_incr_seq = seq;
                    manifest.incr_seq = seq;
                    manifest.incrs.push(FileInfo {
                        name,
                        seq,
                        kind: FileType::Incr,
                    });
                }
                _ => return Err(error("Unknown AOF file type")),
            }
            if name_is_empty {
                return Err(error("Invalid AOF manifest file format"));
            }
        }
        Ok(manifest)
    }

    /// The manifest as Redis writes it: base, then history, then incr files.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let lines = self
            .base
            .iter()
            .chain(self.history.iter())
            .chain(self.incrs.iter());
        for info in lines {
            out.extend_from_slice(b"file ");
            if needs_repr(info.name.as_bytes()) {
                repr(&mut out, info.name.as_bytes());
            } else {
                out.extend_from_slice(info.name.as_bytes());
            }
            out.extend_from_slice(
                format!(" seq {} type {}\n", info.seq, info.kind.letter()).as_bytes(),
            );
        }
        out
    }

    /// Names a new base (`<filename>.<seq>.base.rdb|aof`), turning the current base into
    /// history. Returns the new name.
    pub fn new_base(&mut self, filename: &str, rdb: bool) -> String {
        if let Some(mut previous) = self.base.take() {
            previous.kind = FileType::History;
            self.history.insert(0, previous);
        }
        self.base_seq += 1;
        let suffix = if rdb {
            BASE_RDB_SUFFIX
        } else {
            BASE_AOF_SUFFIX
        };
        let name = format!("{filename}.{}{suffix}", self.base_seq);
        self.base = Some(FileInfo {
            name: name.clone(),
            seq: self.base_seq,
            kind: FileType::Base,
        });
        self.dirty = true;
        name
    }

    /// Names a new incr file (`<filename>.<seq>.incr.aof`) and appends it to the list.
    pub fn new_incr(&mut self, filename: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{filename}.{}{INCR_SUFFIX}", self.incr_seq);
        self.incrs.push(FileInfo {
            name: name.clone(),
            seq: self.incr_seq,
            kind: FileType::Incr,
        });
        self.dirty = true;
        name
    }

    /// The incr file to append to: the last one, or a new one if there is none.
    pub fn last_incr_or_new(&mut self, filename: &str) -> String {
        match self.incrs.last() {
            Some(last) => last.name.clone(),
            None => self.new_incr(filename),
        }
    }

    /// After a successful rewrite: every incr file the new base covers becomes history.
    /// With `keep_last` (the AOF is on) the last incr file, the one being written since the
    /// rewrite started, stays.
    pub fn mark_rewritten_incrs_as_history(&mut self, keep_last: bool) {
        if self.incrs.is_empty() {
            return;
        }
        let kept = if keep_last { self.incrs.pop() } else { None };
        // Newest first at the head of the history list, as Redis orders it.
        for mut info in self.incrs.drain(..).rev() {
            info.kind = FileType::History;
            self.history.insert(0, info);
        }
        self.incrs.extend(kept);
        self.dirty = true;
    }

    /// Files the data is loaded from: the base (if any), then the incr files in order.
    pub fn files_to_load(&self) -> impl Iterator<Item = &FileInfo> {
        self.base.iter().chain(self.incrs.iter())
    }
}

/// Trims Redis' manifest blanks (space, tab, CR, LF) from both ends.
fn trim(mut line: &[u8]) -> &[u8] {
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    while line.first().is_some_and(blank) {
        line = &line[1..];
    }
    while line.last().is_some_and(blank) {
        line = &line[..line.len() - 1];
    }
    line
}

/// C's `atoll`: optional blanks and sign, then digits up to the first non-digit; 0 if none.
/// Saturates instead of overflowing.
fn atoll(text: &[u8]) -> i64 {
    let mut i = 0;
    while i < text.len() && matches!(text[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let negative = match text.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut value: i64 = 0;
    while let Some(digit) = text.get(i).filter(|b| b.is_ascii_digit()) {
        let d = i64::from(digit - b'0');
        value = if negative {
            value.saturating_mul(10).saturating_sub(d)
        } else {
            value.saturating_mul(10).saturating_add(d)
        };
        i += 1;
    }
    value
}

/// Redis' `sdsneedsrepr`: quotes, backslashes, blanks and non-printable bytes need quoting.
fn needs_repr(name: &[u8]) -> bool {
    name.iter()
        .any(|&b| b == b'\\' || b == b'"' || !(0x21..=0x7e).contains(&b))
}

/// Redis' `sdscatrepr`: the bytes in double quotes with C escapes.
fn repr(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'\\' | b'"' => {
                out.push(b'\\');
                out.push(b);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIS_EXAMPLE: &[u8] = b"file appendonly.aof.2.base.rdb seq 2 type b\n\
file appendonly.aof.1.incr.aof seq 1 type h\n\
file appendonly.aof.2.incr.aof seq 2 type h\n\
file appendonly.aof.3.incr.aof seq 3 type h\n\
file appendonly.aof.4.incr.aof seq 4 type i\n\
file appendonly.aof.5.incr.aof seq 5 type i\n";

    #[test]
    fn redis_example_round_trips() {
        let manifest = Manifest::parse(REDIS_EXAMPLE).unwrap();
        assert_eq!(
            manifest.base.as_ref().unwrap().name,
            "appendonly.aof.2.base.rdb"
        );
        assert_eq!(manifest.history.len(), 3);
        assert_eq!(manifest.incrs.len(), 2);
        assert_eq!((manifest.base_seq, manifest.incr_seq), (2, 5));
        assert_eq!(manifest.to_bytes(), REDIS_EXAMPLE);
        let names: Vec<&str> = manifest.files_to_load().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "appendonly.aof.2.base.rdb",
                "appendonly.aof.4.incr.aof",
                "appendonly.aof.5.incr.aof"
            ]
        );
    }

    #[test]
    fn rewrite_cycle_names_files_like_redis() {
        let mut manifest = Manifest::default();
        assert_eq!(
            manifest.new_base("appendonly.aof", true),
            "appendonly.aof.1.base.rdb"
        );
        assert_eq!(
            manifest.last_incr_or_new("appendonly.aof"),
            "appendonly.aof.1.incr.aof"
        );
        assert_eq!(
            manifest.to_bytes(),
            b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
        );
        // A rewrite: a new incr file at the fork, then the new base replaces the old one.
        // History is ordered as Redis orders it: covered incr files, then the old base.
        manifest.new_incr("appendonly.aof");
        assert_eq!(
            manifest.new_base("appendonly.aof", false),
            "appendonly.aof.2.base.aof"
        );
        manifest.mark_rewritten_incrs_as_history(true);
        assert_eq!(
            String::from_utf8(manifest.to_bytes()).unwrap(),
            "file appendonly.aof.2.base.aof seq 2 type b\n\
file appendonly.aof.1.incr.aof seq 1 type h\n\
file appendonly.aof.1.base.rdb seq 1 type h\n\
file appendonly.aof.2.incr.aof seq 2 type i\n"
        );
    }

    #[test]
    fn names_needing_quotes_are_escaped_and_read_back() {
        let mut manifest = Manifest::default();
        manifest.new_base("my file\"\x01.aof", true);
        let text = manifest.to_bytes();
        assert_eq!(
            text,
            b"file \"my file\\\"\\x01.aof.1.base.rdb\" seq 1 type b\n"
        );
        assert_eq!(Manifest::parse(&text).unwrap().base, manifest.base);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let cases: &[(&[u8], usize, &str)] = &[
            (b"", 0, "Found an empty AOF manifest"),
            (b"\n", 1, "Invalid AOF manifest file format"),
            (b"file a seq 1\n", 1, "Invalid AOF manifest file format"),
            (
                b"file a seq 1 type\n",
                1,
                "Invalid AOF manifest file format",
            ),
            (
                b"file a seq x type b\n",
                1,
                "Invalid AOF manifest file format",
            ),
            (
                b"file \"a seq 1 type b\n",
                1,
                "Invalid AOF manifest file format",
            ),
            (
                b"file d/a seq 1 type b\n",
                1,
                "File can't be a path, just a filename",
            ),
            (
                b"file a seq 1 type b\nfile b seq 2 type b\n",
                2,
                "Found duplicate base file information",
            ),
            (
                b"# c\nfile a seq 2 type i\nfile b seq 2 type i\n",
                3,
                "Found a non-monotonic sequence number",
            ),
            (b"file a seq 1 type x\n", 1, "Unknown AOF file type"),
        ];
        for (text, line, reason) in cases {
            let error = Manifest::parse(text).unwrap_err();
            assert_eq!((error.line, error.reason), (*line, *reason), "{text:?}");
        }
        let long = format!("file {} seq 1 type b\n", "a".repeat(LINE_MAX));
        assert_eq!(
            Manifest::parse(long.as_bytes()).unwrap_err().reason,
            "The AOF manifest file contains too long line"
        );
        let error = Manifest::parse(b"file a seq 1 type x\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "Unknown AOF file type at line 1: 'file a seq 1 type x'"
        );
    }

    #[test]
    fn extra_pairs_and_case_are_accepted() {
        let manifest =
            Manifest::parse(b"FILE a.rdb SEQ 3 TYPE b future thing\r\nfile b seq 1 type i")
                .unwrap();
        assert_eq!(manifest.base.unwrap().seq, 3);
        assert_eq!(manifest.incrs[0].name, "b");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x1234_5678_u64;
        for round in 0..2000 {
            let mut text = REDIS_EXAMPLE.to_vec();
            for _ in 0..(round % 5 + 1) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = (seed >> 33) as usize % text.len();
                text[at] = (seed >> 17) as u8;
            }
            let _ = Manifest::parse(&text);
            let cut = (seed >> 40) as usize % (text.len() + 1);
            let _ = Manifest::parse(&text[..cut]);
        }
    }
}
