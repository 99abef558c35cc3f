//! File-system primitives the log needs beyond `std`: preallocation, zeroing a range
//! without shrinking the file, directory fsync, atomic small-file replacement and free-space
//! queries. Every function maps errors to [`LogError`] naming the path.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::error::LogError;

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<(), LogError> {
    let f = File::open(dir).map_err(|e| LogError::io("open directory", dir, e))?;
    f.sync_all()
        .map_err(|e| LogError::io("fsync directory", dir, e))
}

/// Reserves `[offset, offset + len)` of `file` (allocating zeros, growing the size).
/// Falls back to nothing on file systems without `fallocate`: writes then allocate.
pub fn preallocate(file: &File, path: &Path, offset: u64, len: u64) -> Result<(), LogError> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: plain syscall on an fd we own; no memory is passed.
    let r = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            0,
            offset as libc::off_t,
            len as libc::off_t,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(()),
        _ => Err(LogError::io_needing("fallocate", path, err, len)),
    }
}

/// Makes `[from, to)` of `file` read as zeros without changing the file's size, so that a
/// reader's map of the file never covers bytes beyond its end (no SIGBUS).
pub fn zero_range(file: &File, path: &Path, from: u64, to: u64) -> Result<(), LogError> {
    if to <= from {
        return Ok(());
    }
    // SAFETY: plain syscall on an fd we own.
    let r = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            from as libc::off_t,
            (to - from) as libc::off_t,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if !matches!(
        err.raw_os_error(),
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
    ) {
        return Err(LogError::io("punch hole", path, err));
    }
    let zeros = [0u8; 64 << 10];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)
            .map_err(|e| LogError::io("write zeros", path, e))?;
        at += n as u64;
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically and durably: temp file, fsync, rename, fsync dir.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)
            .map_err(|e| LogError::io("create", tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| LogError::io_needing("write", tmp, e, bytes.len() as u64))?;
        f.sync_all().map_err(|e| LogError::io("fsync", tmp, e))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    fs::rename(tmp, path).map_err(|e| LogError::io("rename", path, e))?;
    fsync_dir(dir)
}

/// Free bytes available to this process on the file system holding `path` (or its
/// nearest existing ancestor).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let mut p = path;
    while !p.exists() {
        p = p.parent()?;
    }
    let c = CString::new(p.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}
