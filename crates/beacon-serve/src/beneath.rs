//! Opening a file named by a client strictly inside one directory, race-free.
//!
//! Checking a path and then opening it leaves a window in which a component can be swapped
//! for a symlink that points elsewhere, or the file for a FIFO that blocks the open forever.
//! So the kernel resolves the whole name in one step (`openat2` with `RESOLVE_BENEATH`, which
//! refuses `..`, absolute symlinks and anything escaping the directory), the open never blocks
//! (`O_NONBLOCK`), and every check after that is made on the opened descriptor itself.

use std::{
    fs::File,
    io,
    os::fd::{AsFd, AsRawFd},
    path::{Component, Path, PathBuf},
};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

/// How often an open interrupted by a concurrent rename (EAGAIN) is tried; each retry is
/// cheap and a rename storm that outlasts this many is answered 500 and logged.
const OPEN_ATTEMPTS: u32 = 64;

#[derive(Debug)]
pub enum Refusal {
    /// The name is not a plain relative path (`..`, absolute, NUL, empty component).
    Invalid,
    /// Absent, hidden, not a regular file, or resolving outside the directory.
    NotFound,
    /// The server could not check (e.g. a kernel without `openat2`); logged, answered 500.
    Failed(io::Error),
}

impl PartialEq for Refusal {
    fn eq(&self, other: &Self) -> bool {
        matches!(
            (self, other),
            (Self::Invalid, Self::Invalid) | (Self::NotFound, Self::NotFound)
        )
    }
}

/// An opened regular file and what the response needs to know about it.
pub struct Opened {
    pub file: File,
    pub len: u64,
    pub modified: Option<std::time::SystemTime>,
}

/// Opens `name` inside `root` for reading, or says why not. Hidden names (a component
/// starting with `.`, where init steps keep temp and bookkeeping files) are refused, also
/// when a visible symlink leads to one.
pub fn open(root: &Path, name: &str) -> Result<Opened, Refusal> {
    if name.is_empty() || name.contains('\0') {
        return Err(Refusal::Invalid);
    }
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) if part.as_encoded_bytes().starts_with(b".") => {
                return Err(Refusal::NotFound);
            }
            Component::Normal(_) => {}
            _ => return Err(Refusal::Invalid),
        }
    }
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| refusal(e.into()))?;
    let open_beneath = || {
        rustix::fs::openat2(
            &dir,
            name,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )
    };
    // EAGAIN means a rename or mount anywhere on the host overlapped a `..` in a symlink's
    // target, so the kernel could not prove it stayed inside; openat2(2) says to retry.
    let mut attempt = 1;
    let fd = loop {
        match open_beneath() {
            Err(rustix::io::Errno::AGAIN) if attempt < OPEN_ATTEMPTS => attempt += 1,
            other => break other.map_err(|e| refusal(e.into()))?,
        }
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| Refusal::Failed(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(Refusal::NotFound);
    }
    if hidden_below(&dir, &fd)? {
        return Err(Refusal::NotFound);
    }
    let file = File::from(fd);
    let modified = file.metadata().ok().and_then(|m| m.modified().ok());
    Ok(Opened {
        file,
        len: stat.st_size as u64,
        modified,
    })
}

/// Whether the opened file's real path below the directory has a hidden component, as it
/// does when a visible symlink points at a hidden file. Read from the descriptors (via
/// /proc/self/fd), so it describes what was opened, not what the name means now.
fn hidden_below(dir: &impl AsFd, file: &impl AsFd) -> Result<bool, Refusal> {
    let real = |fd: &dyn AsFd| -> Result<PathBuf, Refusal> {
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
            .map_err(Refusal::Failed)
    };
    let (dir, file) = (real(dir)?, real(file)?);
    let below = file.strip_prefix(&dir).map_err(|_| Refusal::NotFound)?;
    Ok(below
        .components()
        .any(|c| c.as_os_str().as_encoded_bytes().starts_with(b".")))
}

fn refusal(e: io::Error) -> Refusal {
    match e.raw_os_error() {
        // ENXIO: a socket; ENODEV: a device without a driver; ENAMETOOLONG: the client's name.
        Some(
            libc::ENOENT
            | libc::ENOTDIR
            | libc::ELOOP
            | libc::EXDEV
            | libc::EACCES
            | libc::ENXIO
            | libc::ENODEV
            | libc::ENAMETOOLONG,
        ) => Refusal::NotFound,
        _ => Refusal::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn content(root: &Path, name: &str) -> Result<String, Refusal> {
        let opened = open(root, name)?;
        Ok(io::read_to_string(opened.file).unwrap())
    }

    #[test]
    fn only_plain_names_inside_the_directory_open() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("init_data");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "hi").unwrap();
        std::fs::write(root.join("sub/a.txt"), "a").unwrap();
        std::fs::write(root.join(".hidden"), "h").unwrap();
        std::fs::create_dir(root.join(".tmp")).unwrap();
        std::fs::write(root.join(".tmp/x"), "x").unwrap();
        std::fs::write(tmp.path().join("secret"), "s").unwrap();
        symlink(tmp.path().join("secret"), root.join("escape")).unwrap();
        symlink("../secret", root.join("escape-relative")).unwrap();
        symlink("index.html", root.join("alias.html")).unwrap();
        symlink(".hidden", root.join("peek")).unwrap();
        symlink(".tmp", root.join("tmpdir")).unwrap();
        symlink("/proc/self/root/etc/passwd", root.join("magic")).unwrap();

        assert_eq!(content(&root, "index.html").unwrap(), "hi");
        assert_eq!(content(&root, "sub/a.txt").unwrap(), "a");
        assert_eq!(content(&root, "alias.html").unwrap(), "hi");
        assert_eq!(content(&root, "../secret"), Err(Refusal::Invalid));
        assert_eq!(content(&root, "sub/../../secret"), Err(Refusal::Invalid));
        assert_eq!(content(&root, "/etc/passwd"), Err(Refusal::Invalid));
        assert_eq!(content(&root, "a\0b"), Err(Refusal::Invalid));
        for refused in [
            "escape",
            "escape-relative",
            ".hidden",
            "peek",
            "tmpdir/x",
            "magic",
            "sub",
            "missing",
        ] {
            assert_eq!(content(&root, refused), Err(Refusal::NotFound), "{refused}");
        }
    }

    /// Names a client can send that the kernel refuses with errors other than "not there":
    /// they are the client's mistake, answered 404, not a server failure logged at error.
    #[test]
    fn sockets_and_overlong_names_are_not_found_not_failures() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let _listener = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
        assert_eq!(content(root, "sock"), Err(Refusal::NotFound));
        let long_component = "a".repeat(300);
        assert_eq!(content(root, &long_component), Err(Refusal::NotFound));
        let long_path = "a/".repeat(3000) + "b";
        assert_eq!(content(root, &long_path), Err(Refusal::NotFound));
    }

    /// `openat2(RESOLVE_BENEATH)` answers EAGAIN for a `..` in a symlink's target whenever
    /// any rename happens on the host at the same moment (the kernel cannot prove the `..`
    /// stayed inside). A legitimate `sub/../index.html` link must still open.
    #[test]
    fn relative_links_with_dotdot_open_while_the_host_renames() {
        use std::sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        };
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("init_data");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "hi").unwrap();
        symlink("sub/../index.html", root.join("alias.html")).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("a"), "").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let renamer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::fs::rename(elsewhere.join("a"), elsewhere.join("b")).unwrap();
                    std::fs::rename(elsewhere.join("b"), elsewhere.join("a")).unwrap();
                }
            })
        };
        let failures = (0..50000)
            .filter(|_| content(&root, "alias.html").ok().as_deref() != Some("hi"))
            .count();
        stop.store(true, Ordering::Relaxed);
        renamer.join().unwrap();
        assert_eq!(failures, 0, "of 50000 opens {failures} failed");
    }
}
