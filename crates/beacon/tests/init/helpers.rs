//! Running `beacon init …` as the kubelet would, and watching its target file meanwhile.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

pub const BEACON: &str = env!("CARGO_BIN_EXE_beacon");

pub fn beacon(args: &[&str]) -> Command {
    let mut cmd = Command::new(BEACON);
    cmd.args(args);
    as_the_kubelet_would(&mut cmd);
    cmd
}

/// The environment and pipes every test run of beacon gets (also when a wrapper such as
/// `unshare` execs into it).
pub fn as_the_kubelet_would(cmd: &mut Command) {
    cmd.env("BEACON_LOG_FORMAT", "json")
        .env_remove("BEACON_LOG")
        // Only 127.0.0.1 is ever contacted; no proxy may get in between.
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
}

pub struct Run {
    pub status: ExitStatus,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The one-line reason main prints on failure, or the last log line on success.
    pub fn last_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn log_lines_with(&self, needle: &str) -> usize {
        self.stderr.lines().filter(|l| l.contains(needle)).count()
    }

    /// Fails the test with the whole stderr, which is what one needs to see then.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "exit status; stderr:\n{}",
            self.stderr
        );
        self
    }

    pub fn expect_last_line(&self, needle: &str) -> &Self {
        assert!(
            self.last_line().contains(needle),
            "last line lacks {needle:?}; stderr:\n{}",
            self.stderr
        );
        self
    }

    /// Somewhere in the log, not only on the last line.
    pub fn expect_stderr(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}; stderr:\n{}",
            self.stderr
        );
        self
    }

    pub fn expect_within(&self, limit: Duration) -> &Self {
        assert!(
            self.elapsed < limit,
            "exited after {:?}, limit {limit:?}; stderr:\n{}",
            self.elapsed,
            self.stderr
        );
        self
    }
}

pub fn run(args: &[&str]) -> Run {
    let started = Instant::now();
    let child = beacon(args).spawn().expect("spawn beacon");
    finish(child, started)
}

pub fn finish(child: Child, started: Instant) -> Run {
    let Output { status, stderr, .. } = child.wait_with_output().expect("beacon runs");
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    if std::env::var_os("BEACON_TEST_LOG").is_some() {
        eprintln!("{stderr}");
    }
    Run {
        status,
        stderr,
        elapsed: started.elapsed(),
    }
}

/// Polls a path while a step runs and remembers anything it sees there other than the
/// allowed contents (absence is always allowed): a partial download would show up here.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(usize, Vec<String>)>,
}

impl Watcher {
    pub fn start(path: &Path, allowed: Vec<Vec<u8>>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let path = path.to_path_buf();
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut reads, mut bad) = (0, Vec::new());
            while !stop2.load(Ordering::Relaxed) {
                if let Ok(seen) = std::fs::read(&path) {
                    reads += 1;
                    if !allowed.contains(&seen) && bad.len() < 5 {
                        bad.push(format!(
                            "{} bytes: {:?}…",
                            seen.len(),
                            String::from_utf8_lossy(&seen[..seen.len().min(40)])
                        ));
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            (reads, bad)
        });
        Self { stop, handle }
    }

    /// Asserts nothing unexpected was ever visible; returns how many reads found a file.
    pub fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let (reads, bad) = self.handle.join().unwrap();
        assert!(
            bad.is_empty(),
            "saw unexpected content at the target: {bad:?}"
        );
        reads
    }
}

/// Hidden temp files a download left in `dir`; there must be none after any run.
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".part"))
        .collect()
}

pub fn assert_no_leftovers(dir: &Path) {
    let left = leftovers(dir);
    assert!(left.is_empty(), "temp file left: {left:?}");
}

/// Deterministic, non-repeating-looking bytes, so a prefix never equals the whole.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789\n"[(i * 7 + i / 37) % 37])
        .collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Makes a FIFO at `path` (mkfifo(3)).
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}
