//! The durable per-pod visits counter, with group commit.
//!
//! # File format (`<data-dir>/visits.db`, 8192 bytes)
//!
//! Two slots of 32 bytes, slot 0 at offset 0 and slot 1 at offset 4096 (separate
//! file-system blocks, so a torn write can damage at most one of them):
//!
//! | bytes  | field                                                |
//! |--------|------------------------------------------------------|
//! | 0..8   | magic `BCNVIS01`                                     |
//! | 8..16  | generation, u64 little-endian                        |
//! | 16..24 | visit count, u64 little-endian                       |
//! | 24..28 | CRC-32 (IEEE) of bytes 0..24, u32 little-endian      |
//! | 28..32 | zero                                                 |
//!
//! A commit writes generation `g + 1` into slot `(g + 1) % 2`, then `fdatasync`s.
//! The slot with the highest valid generation holds the count. A crash during a
//! write can only damage the slot being written; the other still holds the last
//! acknowledged count. A file in which neither slot is valid is an error, never a
//! reset to zero.
//!
//! # Group commit
//!
//! [`VisitsStore::record_visit`] takes a ticket (the count including its visit), wakes
//! the writer thread and waits until a commit covers the ticket. The writer commits
//! whatever has been requested since its previous `fdatasync`, so one sync
//! acknowledges every visit that arrived while the previous one ran.
//!
//! # Metrics
//!
//! The writer times each write + `fdatasync` and counts the visits it covers; each
//! acknowledged visit times its own wait from [`VisitsStore::record_visit`] to durable. A
//! visit whose request is dropped before its commit (client gone, request timeout) is made
//! durable and counted, but its wait is not observed.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::Instant,
};

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::watch;

use crate::metrics::StoreMetrics;

pub const FILE_NAME: &str = "visits.db";
const MAGIC: &[u8; 8] = b"BCNVIS01";
const SLOT_OFFSETS: [u64; 2] = [0, 4096];
const FILE_LEN: u64 = 8192;
const SLOT_LEN: usize = 32;

/// Commit and flush failures are logged by their message alone, so their cause is a `cause`
/// field shown in the message (not also a `source`, which the binary would print again).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Only returned at start, to the binary, which prints the chain: the cause is the source.
    #[error("cannot open visits store {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("visits store {path} is in use by another process")]
    Locked { path: PathBuf },
    #[error(
        "visits store {path} is corrupt: {reason}; refusing to start rather than reset the count (restore the file or move it aside)"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("visit not recorded: writing the visits store failed")]
    CommitFailed,
    #[error("visit not recorded: the visits store is closed")]
    Closed,
    #[error(
        "visits store {path} not flushed: {lost} visit(s) not durable (the file holds {durable}): {cause}"
    )]
    NotFlushed {
        path: PathBuf,
        durable: u64,
        lost: u64,
        cause: io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    generation: u64,
    count: u64,
}

impl Slot {
    fn encode(self) -> [u8; SLOT_LEN] {
        let mut buf = [0u8; SLOT_LEN];
        buf[0..8].copy_from_slice(MAGIC);
        buf[8..16].copy_from_slice(&self.generation.to_le_bytes());
        buf[16..24].copy_from_slice(&self.count.to_le_bytes());
        let crc = crc32fast::hash(&buf[0..24]);
        buf[24..28].copy_from_slice(&crc.to_le_bytes());
        buf
    }

    fn decode(buf: &[u8]) -> Option<Self> {
        if buf.len() < SLOT_LEN || &buf[0..8] != MAGIC {
            return None;
        }
        let crc = u32::from_le_bytes(buf[24..28].try_into().ok()?);
        if crc != crc32fast::hash(&buf[0..24]) {
            return None;
        }
        Some(Self {
            generation: u64::from_le_bytes(buf[8..16].try_into().ok()?),
            count: u64::from_le_bytes(buf[16..24].try_into().ok()?),
        })
    }

    fn offset(self) -> u64 {
        SLOT_OFFSETS[(self.generation % 2) as usize]
    }
}

/// What the writer has made durable, published to waiting requests.
#[derive(Debug, Clone, Copy, Default)]
struct Commit {
    durable: u64,
    /// Tickets in `(lo, hi]` whose commit failed (they may still be counted by a later commit).
    failed: Option<(u64, u64)>,
    closed: bool,
}

/// What request handles and the writer thread share: tickets handed over, commits published back.
struct Handoff {
    requested: AtomicU64,
    healthy: AtomicBool,
    closing: AtomicBool,
    commits: watch::Receiver<Commit>,
    commit_wait: Histogram,
}

/// The writer thread, taken by the first `close`; it ends with whether the last commit held.
type WriterHandle = thread::JoinHandle<Result<(), StoreError>>;

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct VisitsStore {
    handoff: Arc<Handoff>,
    writer: Arc<std::sync::Mutex<Option<WriterHandle>>>,
    writer_thread: thread::Thread,
    path: Arc<PathBuf>,
}

impl VisitsStore {
    /// Opens (or creates) `<dir>/visits.db` and starts the writer thread.
    pub fn open(dir: &Path, metrics: StoreMetrics) -> Result<Self, StoreError> {
        let path = dir.join(FILE_NAME);
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        if !path.exists() {
            create_empty(&path).map_err(open_err)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(open_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::Locked { path }),
            Err(TryLockError::Error(e)) => return Err(open_err(e)),
        }
        let current = read_current(&file, &path)?;
        // Files created before both slots were written at creation may have a hole where the
        // second slot goes; allocate it now, while there may still be space.
        if let Err(e) = allocate(&file) {
            tracing::warn!(path = %path.display(), error = %e, "cannot allocate both slots of the visits store; a full disk may fail commits");
        }
        metrics.visits.inc_by(current.count);

        let (tx, rx) = watch::channel(Commit {
            durable: current.count,
            ..Commit::default()
        });
        let handoff = Arc::new(Handoff {
            requested: AtomicU64::new(current.count),
            healthy: AtomicBool::new(true),
            closing: AtomicBool::new(false),
            commits: rx,
            commit_wait: metrics.commit_wait.clone(),
        });
        let writer = Writer {
            file,
            last: current,
            handoff: handoff.clone(),
            tx,
            metrics,
            path: path.clone(),
        };
        let handle = thread::Builder::new()
            .name("visits-writer".into())
            .spawn(move || writer.run())
            .map_err(open_err)?;
        Ok(Self {
            writer_thread: handle.thread().clone(),
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
            handoff,
            path: Arc::new(path),
        })
    }

    /// Counts one visit and returns the count including it, once it is durable.
    pub async fn record_visit(&self) -> Result<u64, StoreError> {
        if self.handoff.closing.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let handed = Instant::now();
        let ticket = self.handoff.requested.fetch_add(1, Ordering::AcqRel) + 1;
        self.writer_thread.unpark();
        let mut rx = self.handoff.commits.clone();
        let commit = *rx
            .wait_for(|c| {
                c.durable >= ticket
                    || c.closed
                    || c.failed.is_some_and(|(lo, hi)| lo < ticket && ticket <= hi)
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        if commit.durable >= ticket {
            let waited = handed.elapsed().as_secs_f64();
            self.handoff.commit_wait.observe(waited);
            Ok(ticket)
        } else if commit.closed {
            Err(StoreError::Closed)
        } else {
            Err(StoreError::CommitFailed)
        }
    }

    /// The count of acknowledged (durable) visits.
    pub fn count(&self) -> u64 {
        self.handoff.commits.borrow().durable
    }

    /// False after a failed commit, until a later commit succeeds.
    pub fn is_healthy(&self) -> bool {
        self.handoff.healthy.load(Ordering::Acquire)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits everything requested so far and stops the writer. Idempotent: only the first
    /// call reports a failure to make the last visits durable.
    pub fn close(&self) -> Result<(), StoreError> {
        self.handoff.closing.store(true, Ordering::Release);
        self.writer_thread.unpark();
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        match handle.map(thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(StoreError::NotFlushed {
                path: self.path.to_path_buf(),
                durable: self.count(),
                lost: self.handoff.requested.load(Ordering::Acquire) - self.count(),
                cause: io::Error::other("the writer thread panicked"),
            }),
            None => Ok(()),
        }
    }
}

struct Writer {
    file: File,
    last: Slot,
    handoff: Arc<Handoff>,
    tx: watch::Sender<Commit>,
    metrics: StoreMetrics,
    path: PathBuf,
}

impl Writer {
    fn run(mut self) -> Result<(), StoreError> {
        let mut failed = None;
        let mut last_error = None;
        loop {
            let target = self.handoff.requested.load(Ordering::Acquire);
            if target == self.last.count {
                if self.handoff.closing.load(Ordering::Acquire) {
                    break;
                }
                thread::park();
                continue;
            }
            let next = Slot {
                generation: self.last.generation + 1,
                count: target,
            };
            let started = Instant::now();
            let result = self
                .file
                .write_all_at(&next.encode(), next.offset())
                .and_then(|()| self.file.sync_data());
            // A failed sync is timed too: a disk that takes seconds to fail is worth seeing.
            let synced = started.elapsed().as_secs_f64();
            self.metrics.sync_duration.observe(synced);
            match result {
                Ok(()) => {
                    let batch = target - self.last.count;
                    self.metrics.visits.inc_by(batch);
                    self.metrics.sync_batch_size.observe(batch as f64);
                    self.last = next;
                    failed = None;
                    last_error = None;
                    self.handoff.healthy.store(true, Ordering::Release);
                }
                Err(e) => {
                    tracing::error!(path = %self.path.display(), error = %e, "visits store commit failed");
                    self.metrics.errors.inc();
                    self.handoff.healthy.store(false, Ordering::Release);
                    failed = Some((self.last.count, target));
                    last_error = Some(e);
                    // The same slot is rewritten on the next attempt: the other slot still
                    // holds the last durable count. Back off so a full disk is not spun on.
                    thread::sleep(std::time::Duration::from_millis(100));
                }
            }
            self.tx.send_replace(Commit {
                durable: self.last.count,
                failed,
                closed: false,
            });
            if failed.is_some() && self.handoff.closing.load(Ordering::Acquire) {
                break;
            }
        }
        self.tx.send_replace(Commit {
            durable: self.last.count,
            failed,
            closed: true,
        });
        match last_error {
            None => Ok(()),
            Some(cause) => Err(StoreError::NotFlushed {
                path: self.path,
                durable: self.last.count,
                lost: self.handoff.requested.load(Ordering::Acquire) - self.last.count,
                cause,
            }),
        }
    }
}

fn create_empty(path: &Path) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("db.tmp");
    let file = File::create(&tmp)?;
    // Every byte written, not `set_len`: a hole in the second slot would need a block on its
    // first commit, which a full disk refuses.
    let mut image = vec![0u8; FILE_LEN as usize];
    image[..SLOT_LEN].copy_from_slice(
        &Slot {
            generation: 0,
            count: 0,
        }
        .encode(),
    );
    file.write_all_at(&image, 0)?;
    allocate(&file)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// Reserves blocks for the whole file without changing its bytes. File systems without
/// `fallocate` are fine for new files, which are written in full.
fn allocate(file: &File) -> io::Result<()> {
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, FILE_LEN) {
        Err(e) if e == rustix::io::Errno::OPNOTSUPP => Ok(()),
        other => other.map_err(io::Error::from),
    }
}

fn read_current(file: &File, path: &Path) -> Result<Slot, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let len = file
        .metadata()
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?
        .len();
    if len != FILE_LEN {
        return Err(corrupt(format!("size is {len} bytes, expected {FILE_LEN}")));
    }
    let mut slots = Vec::with_capacity(2);
    for (i, offset) in SLOT_OFFSETS.iter().enumerate() {
        let mut buf = [0u8; SLOT_LEN];
        file.read_exact_at(&mut buf, *offset)
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        match Slot::decode(&buf) {
            Some(slot) if slot.offset() == *offset => slots.push(slot),
            Some(_) => {
                tracing::warn!(path = %path.display(), slot = i, "visits store slot has a generation of the other slot; ignoring it")
            }
            None if buf.iter().all(|b| *b == 0) => {}
            None => {
                tracing::warn!(path = %path.display(), slot = i, "visits store slot is damaged (interrupted write?); using the other slot")
            }
        }
    }
    slots
        .into_iter()
        .max_by_key(|s| s.generation)
        .ok_or_else(|| corrupt("no valid slot (bad magic or checksum)".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> VisitsStore {
        VisitsStore::open(dir, StoreMetrics::default()).unwrap()
    }

    /// `tasks` concurrent tasks each record `each` visits, all of them acknowledged.
    async fn record_concurrently(store: &VisitsStore, tasks: usize, each: usize) {
        let tasks: Vec<_> = (0..tasks)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move {
                    for _ in 0..each {
                        s.record_visit().await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_visits_are_all_counted_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        record_concurrently(&store, 32, 50).await;
        assert_eq!(store.count(), 1600);
        store.close().unwrap();
        let reopened = open(dir.path());
        assert_eq!(reopened.count(), 1600);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn durability_metrics_cover_every_visit_and_sync() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = StoreMetrics::default();
        let store = VisitsStore::open(dir.path(), metrics.clone()).unwrap();
        record_concurrently(&store, 8, 25).await;
        store.close().unwrap();
        let syncs = metrics.sync_duration.count();
        assert_eq!(metrics.commit_wait.count(), 200);
        assert!((1..=200).contains(&syncs), "{syncs} syncs");
        assert_eq!(metrics.sync_batch_size.count(), syncs);
        assert_eq!(metrics.sync_batch_size.sum(), 200.0);
        assert!(metrics.sync_duration.sum() > 0.0);
        assert!(metrics.commit_wait.sum() >= metrics.sync_duration.sum());
        // Opening counts what is already durable as visits, but neither a wait nor a sync.
        let metrics = StoreMetrics::default();
        let reopened = VisitsStore::open(dir.path(), metrics.clone()).unwrap();
        assert_eq!(reopened.count(), 200);
        reopened.close().unwrap();
        assert_eq!(metrics.visits.get(), 200);
        assert_eq!(metrics.commit_wait.count(), 0);
        assert_eq!(metrics.sync_duration.count(), 0);
    }

    #[test]
    fn both_slots_are_allocated_at_creation_and_on_open() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let path = dir.path().join(FILE_NAME);
        assert!(std::fs::metadata(&path).unwrap().blocks() * 512 >= FILE_LEN);
        store.close().unwrap();
        // A store left sparse by an older version is filled in when opened.
        drop(store);
        std::fs::remove_file(&path).unwrap();
        let sparse = File::create(&path).unwrap();
        sparse.set_len(FILE_LEN).unwrap();
        let s0 = Slot {
            generation: 0,
            count: 7,
        };
        sparse.write_all_at(&s0.encode(), 0).unwrap();
        drop(sparse);
        assert!(
            std::fs::metadata(&path).unwrap().blocks() * 512 < FILE_LEN,
            "sparse to start"
        );
        let reopened = open(dir.path());
        assert_eq!(reopened.count(), 7);
        assert!(std::fs::metadata(&path).unwrap().blocks() * 512 >= FILE_LEN);
    }

    #[test]
    fn a_second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path());
        let err = VisitsStore::open(dir.path(), StoreMetrics::default())
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    }

    #[test]
    fn torn_newest_slot_falls_back_to_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        create_empty(&path).unwrap();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        let s1 = Slot {
            generation: 1,
            count: 41,
        };
        f.write_all_at(&s1.encode(), s1.offset()).unwrap();
        let mut torn = Slot {
            generation: 2,
            count: 42,
        }
        .encode();
        torn[20] ^= 0xff;
        f.write_all_at(&torn, SLOT_OFFSETS[0]).unwrap();
        drop(f);
        assert_eq!(open(dir.path()).count(), 41);
    }

    #[test]
    fn garbage_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, vec![7u8; FILE_LEN as usize]).unwrap();
        let err = VisitsStore::open(dir.path(), StoreMetrics::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("corrupt"),
            "{err}"
        );
        std::fs::write(&path, b"12").unwrap();
        let err = VisitsStore::open(dir.path(), StoreMetrics::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("size is 2 bytes"), "{err}");
    }
}
