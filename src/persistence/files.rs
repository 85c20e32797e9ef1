//! Crash-safe file replacement and read-only file mappings.
//!
//! Every file ringkv writes (RDB snapshots, AOF bases, manifests) goes through
//! [`replace_atomically`]: written under a temporary name in the same directory, fsynced,
//! renamed over the target, and the directory fsynced so the rename itself is durable. A crash
//! at any instant leaves either the old file or the new one, never a mix.
//!
//! Files are loaded through [`Mapped`], a read-only `mmap` of the whole file: the decoder
//! works on one `&[u8]` (offsets in error messages are file offsets), and the kernel reads
//! ahead sequentially without a user-space copy.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Writes a file under a temporary name next to `target`, fsyncs it, renames it over `target`
/// and fsyncs the directory. `write` gets the open temporary file; if it fails, the temporary
/// file is removed and `target` is untouched.
pub fn replace_atomically<T>(
    target: &Path,
    write: impl FnOnce(&mut File) -> io::Result<T>,
) -> io::Result<T> {
    let temp = temp_path_for(target);
    let result = (|| {
        let mut file = File::create(&temp)?;
        let value = write(&mut file)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, target)?;
        sync_directory(parent_of(target))?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// `temp-<pid>-<name>` in the directory of `target` (same filesystem, so rename is atomic).
pub fn temp_path_for(target: &Path) -> PathBuf {
    temp_path_for_pid(target, std::process::id() as i32)
}

/// The temporary name a process with `pid` uses for `target` (a fork child's leftover is
/// removed by the parent when the child fails).
pub fn temp_path_for_pid(target: &Path, pid: i32) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_of(target).join(format!("temp-{pid}-{name}"))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// fsyncs a directory, making renames and creations inside it durable.
pub fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A whole file mapped read-only.
pub struct Mapped {
    pointer: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and private; sharing `&[u8]` views across threads is as
// safe as sharing any immutable slice.
unsafe impl Send for Mapped {}
// SAFETY: as above, nothing mutates through the mapping.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps `path` read-only. An empty file maps to an empty slice.
    pub fn open(path: &Path) -> io::Result<Mapped> {
        let file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::other("file too large to map"))?;
        if len == 0 {
            return Ok(Mapped {
                pointer: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: maps `len` bytes of an open regular file read-only and private; the result
        // is checked against MAP_FAILED. The mapping stays valid after `file` closes. A file
        // truncated by someone else while mapped would fault on access: ringkv only maps
        // files it owns and does not truncate while loading them.
        let pointer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if pointer == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: advice on a mapping we just created, for its exact length. Failure only
        // loses the read-ahead hint.
        unsafe { libc::madvise(pointer, len, libc::MADV_SEQUENTIAL) };
        Ok(Mapped { pointer, len })
    }

    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `pointer` maps `len` readable bytes for as long as `self` lives, and the
        // returned slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.pointer as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmaps exactly the region `open` mapped; no slice outlives `self`.
            unsafe { libc::munmap(self.pointer, self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn failed_write_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dump.rdb");
        std::fs::write(&target, b"old").unwrap();
        let result: io::Result<()> = replace_atomically(&target, |file| {
            file.write_all(b"half")?;
            Err(io::Error::other("disk on fire"))
        });
        assert!(result.is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn replacement_is_complete_and_mappable() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        std::fs::write(&target, b"old").unwrap();
        replace_atomically(&target, |file| file.write_all(b"new contents")).unwrap();
        let mapped = Mapped::open(&target).unwrap();
        assert_eq!(mapped.bytes(), b"new contents");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(Mapped::open(&empty).unwrap().bytes().is_empty());
    }
}
