//! Hot reload of `config.json`.
//!
//! Kubernetes updates a mounted ConfigMap by writing a new timestamped directory and
//! atomically renaming the `..data` symlink, so the file's own inode never changes:
//! we watch the *directory* (which sees the rename) and also re-read on a timer in case
//! an event is missed. A reload that fails keeps the last good configuration.
//!
//! A file that disappears (the ConfigMap lost its `config.json` key) means the embedded
//! defaults, exactly what a pod started now would use, so running and restarted replicas
//! agree; it is logged and shown by `beacon_config_source`. An unreadable file, by contrast,
//! keeps the last good configuration: that is an error, not a decision to remove it.
//!
//! Only a change reloads: opening or reading the file (our own reads included) is not an event
//! we act on, and finding the same bytes, or the same unreadable file, again is neither counted
//! nor logged again.

use std::{
    io::ErrorKind,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use notify::{
    EventKind, RecursiveMode, Watcher,
    event::{AccessKind, AccessMode},
};
use tokio::sync::{Mutex, mpsc};

use crate::{
    config::{self, Config, ConfigError},
    metrics::Metrics,
};

/// Lets a burst of events (kubelet's swap makes several) settle into one reload.
const DEBOUNCE: Duration = Duration::from_millis(100);

pub struct LiveConfig {
    path: PathBuf,
    current: ArcSwap<Config>,
    last_seen: Mutex<Seen>,
    from_file: AtomicBool,
}

/// What the last reload found, so that finding it again is not counted or logged again.
#[derive(Default)]
struct Seen {
    /// The bytes of the last file read, good or bad; `None` while there is no file.
    bytes: Option<Vec<u8>>,
    /// The last read that failed: why, and the file as it was then.
    failure: Option<(String, Option<FileStamp>)>,
}

/// Identity and change times of the file (through the `..data` symlink), to tell an
/// unchanged unreadable file from a new one without reading it.
#[derive(PartialEq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(path: &std::path::Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

impl LiveConfig {
    /// Loads the file once; an invalid file at start is an error, a missing one means defaults.
    pub fn load(path: PathBuf) -> Result<Self, ConfigError> {
        let (config, bytes): (Config, Option<Vec<u8>>) = match Config::read(&path)? {
            Some((config, bytes)) => {
                tracing::info!(path = %path.display(), "configuration loaded");
                (config, Some(bytes))
            }
            None => {
                tracing::info!(path = %path.display(), "no configuration file; using embedded defaults");
                (Config::default(), None)
            }
        };
        Ok(Self {
            path,
            current: ArcSwap::from_pointee(config),
            from_file: AtomicBool::new(bytes.is_some()),
            last_seen: Mutex::new(Seen {
                bytes,
                failure: None,
            }),
        })
    }

    pub fn get(&self) -> Arc<Config> {
        self.current.load_full()
    }

    /// Whether the configuration in effect was read from the file (else: the defaults).
    pub fn is_from_file(&self) -> bool {
        self.from_file.load(Ordering::Acquire)
    }

    /// Re-reads the file; applies it if it changed and is valid, or the defaults if it is gone.
    pub async fn reload(&self, metrics: &Metrics) {
        let mut last_seen = self.last_seen.lock().await;
        let read = match self.read().await {
            // An editor replacing the file may leave it missing for a moment: look again.
            Err(e) if e.kind() == ErrorKind::NotFound && last_seen.bytes.is_some() => {
                tokio::time::sleep(DEBOUNCE).await;
                self.read().await
            }
            other => other,
        };
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                last_seen.failure = None;
                if last_seen.bytes.take().is_some() {
                    self.apply(Config::default(), false, metrics);
                    tracing::warn!(path = %self.path.display(), "configuration file removed; using the embedded defaults, as a restarted pod would");
                }
                return;
            }
            Err(e) => {
                let failure = Some((e.to_string(), FileStamp::of(&self.path)));
                if last_seen.failure != failure {
                    tracing::error!(path = %self.path.display(), error = %e, "cannot read configuration; keeping the last good one");
                    metrics.config_reloaded(false);
                    last_seen.failure = failure;
                }
                return;
            }
        };
        last_seen.failure = None;
        if last_seen.bytes.as_deref() == Some(&bytes[..]) {
            return;
        }
        match Config::parse(&self.path, &bytes) {
            Ok(config) => {
                self.apply(config, true, metrics);
                tracing::info!(path = %self.path.display(), "configuration reloaded");
            }
            Err(e) => {
                metrics.config_reloaded(false);
                tracing::error!(error = %e, "configuration update rejected; keeping the last good configuration");
            }
        }
        last_seen.bytes = Some(bytes);
    }

    /// Puts `config` in effect, read from the file or (`from_file` false) the defaults.
    fn apply(&self, config: Config, from_file: bool, metrics: &Metrics) {
        self.current.store(Arc::new(config));
        self.from_file.store(from_file, Ordering::Release);
        metrics.config_reloaded(true);
        metrics.set_config_source(from_file);
    }

    /// The file's bytes, bounded and never blocking on a FIFO (see [`config::read_file`]).
    async fn read(&self) -> std::io::Result<Vec<u8>> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || config::read_file(&path))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Runs until the process exits: reloads on directory events and every `poll`.
pub fn spawn_watcher(config: Arc<LiveConfig>, metrics: Arc<Metrics>, poll: Duration) {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let dir = config
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| may_change(&e.kind)) {
            // A full channel already has a reload pending; dropping this event loses nothing.
            let _ = tx.try_send(());
        }
    })
    .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
    let watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the configuration directory; relying on polling");
            None
        }
    };
    tokio::spawn(async move {
        let _keep_alive = watcher;
        let mut ticker = tokio::time::interval(poll.max(Duration::from_millis(100)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                Some(()) = rx.recv() => tokio::time::sleep(DEBOUNCE).await,
                _ = ticker.tick() => {}
            }
            config.reload(&metrics).await;
        }
    });
}

/// Whether an event can mean new content. Opening and reading the file — our own reload
/// among them — cannot: reacting to those reloaded a plain `config.json` every 100 ms, forever.
fn may_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}
