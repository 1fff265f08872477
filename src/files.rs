//! Files the commands write into a directory the user names (`schema
//! --out-dir`, `man --out-dir`, `certs generate --out-dir`). Whatever is
//! already at a file's path is replaced, never written through: a symlink
//! planted there cannot redirect the write to a file elsewhere.

use crate::{Error, Result};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Mode of a file anyone may read (the umask applies).
pub const PUBLIC: u32 = 0o644;
/// Mode of a private key: its owner only.
pub const PRIVATE: u32 = 0o600;

/// Writes `content` to `path` with `mode`: into a new file in the same
/// directory (created with `create_new`, which opens nothing already
/// there, a symlink included), synced, then renamed over `path`. A symlink
/// at `path` is replaced itself, not its target; a directory there is
/// refused. A reader sees the old file or the new one, never half of one.
pub fn replace(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let failed = |source| Error::WriteFile {
        path: path.to_owned(),
        source,
    };
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(failed(io::Error::new(
            io::ErrorKind::IsADirectory,
            "a directory is in the way",
        )));
    }
    let (temporary, mut file) = create_beside(path, mode).map_err(failed)?;
    let written = file
        .write_all(content)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        // Best effort: the error that matters is the write's.
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(failed)
}

/// A new file beside `path` (`.NAME.PID.N.tmp`), the next `N` when one is taken.
fn create_beside(path: &Path, mode: u32) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    for attempt in 0..100u32 {
        let mut temporary = OsString::from(".");
        temporary.push(name);
        temporary.push(format!(".{}.{attempt}.tmp", std::process::id()));
        let temporary = dir.join(temporary);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)
        {
            Ok(file) => return Ok((temporary, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "every temporary name is taken",
    ))
}
