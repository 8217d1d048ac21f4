//! Durable file replacement: temp file in the target directory, fsync, rename, fsync the
//! directory. A reader (or a restarted init container) sees the old file or the new one,
//! never a mix, and the rename survives a node crash.

use std::{
    fs::{self, File, OpenOptions, Permissions, TryLockError},
    io,
    os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use tempfile::NamedTempFile;

use crate::{Error, Result};

/// The directory holding `path`; `.` for a bare file name.
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Prefix of every temp file made for `path`. It starts with a dot because `beacon serve`
/// hides dotfiles under /init-data/, so a half-written download is never served.
pub(crate) fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.")
}

pub(crate) const TEMP_SUFFIX: &str = ".part";

/// A temp file beside `path`, removed when dropped unless persisted. Mode 0644 rather than
/// tempfile's 0600 so the result is readable by a main container running as another user.
///
/// The file is held under an exclusive `flock` for as long as it is open: that is how
/// [`sweep_stale_temps`] tells a live temp file (another run writing the same target right
/// now, perhaps from another container on the same volume, where pids mean nothing) from one
/// left by a killed run, whose lock the kernel released.
pub(crate) fn temp_beside(path: &Path) -> Result<NamedTempFile> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create directory", &dir, e))?;
    loop {
        let tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(path))
            .suffix(TEMP_SUFFIX)
            .permissions(Permissions::from_mode(0o644))
            .tempfile_in(&dir)
            .map_err(|e| Error::io("cannot create a temp file in", &dir, e))?;
        match tmp.as_file().lock() {
            Ok(()) => {}
            // No flock on this file system: sweeps fall back to the file's age.
            Err(e) if e.kind() == io::ErrorKind::Unsupported => return Ok(tmp),
            Err(e) => return Err(Error::io("cannot lock", tmp.path().to_path_buf(), e)),
        }
        // A sweep may have taken the lock between creation and our lock, and unlinked the
        // file as stale; then it is gone from the directory and we start over.
        let nlink = tmp
            .as_file()
            .metadata()
            .map_err(|e| Error::io("cannot stat", tmp.path().to_path_buf(), e))?
            .nlink();
        if nlink > 0 {
            return Ok(tmp);
        }
    }
}

/// Without flock, a temp file this old is taken to be a leftover.
const STALE_AGE: Duration = Duration::from_secs(600);

/// Removes temp files a previous run left behind when it was SIGKILLed mid-write (drop
/// handlers do not run then, and emptyDir keeps the leftovers across container restarts), but
/// never one that a running step still holds locked.
pub(crate) fn sweep_stale_temps(path: &Path) {
    let dir = parent_dir(path);
    let prefix = temp_prefix(path);
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(&prefix) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        // Only regular files can be our temp files. Anything else with a temp file's name (a
        // FIFO, whose open blocks until a writer appears, held the step past its --deadline and
        // SIGTERM; a symlink, whose target we must not lock) is not ours and is left alone.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(&path)
        else {
            continue; // gone already, replaced meanwhile, or not ours to read
        };
        let stale = match file.try_lock() {
            Ok(()) => true,
            Err(TryLockError::WouldBlock) => false,
            Err(TryLockError::Error(_)) => file
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_AGE)),
        };
        if !stale {
            tracing::debug!(path = %path.display(), "temp file in use by another run; leaving it");
            continue;
        }
        // Removed while we hold its lock, so a writer that locks it after us sees it unlinked.
        match fs::remove_file(&path) {
            Ok(()) => tracing::info!(path = %path.display(), "removed a stale temp file"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale temp file")
            }
        }
    }
}

/// Makes a rename or file creation in `dir` durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot fsync directory", dir, e))
}

/// Writes `contents` to a fsynced temp file beside `path`, ready for [`persist`]; dropping it
/// instead deletes it.
pub(crate) fn write_temp(path: &Path, contents: &[u8]) -> Result<NamedTempFile> {
    use std::io::Write;
    let mut tmp = temp_beside(path)?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io("cannot write", tmp.path().to_path_buf(), e))?;
    Ok(tmp)
}

/// Renames a finished temp file over `path` and fsyncs the directory. The caller keeps the
/// file open (and so flock-held) until this returns.
pub(crate) fn persist(tmp: tempfile::TempPath, path: &Path) -> Result<()> {
    tmp.persist(path)
        .map_err(|e| Error::io("cannot rename a temp file to", path, e.error))?;
    fsync_dir(&parent_dir(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_takes_leftovers_and_keeps_live_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("index.html");
        let live = temp_beside(&target).unwrap();
        let leftover = dir.path().join(".index.html.AbC123.part");
        fs::write(&leftover, "half").unwrap();
        let unrelated = dir.path().join(".other.AbC123.part");
        fs::write(&unrelated, "not ours").unwrap();

        sweep_stale_temps(&target);
        assert!(live.path().exists(), "a live (locked) temp file was swept");
        assert!(!leftover.exists(), "a leftover was kept");
        assert!(unrelated.exists(), "another target's temp file was swept");

        // Once its writer is gone (the lock released with the descriptor), it is a leftover.
        let (file, path) = live.into_parts();
        let kept = path.keep().unwrap();
        drop(file);
        sweep_stale_temps(&target);
        assert!(!kept.exists());
    }
}
