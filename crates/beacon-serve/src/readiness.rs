//! The data-directory write check behind `/readyz`.
//!
//! A real check creates, syncs and deletes an empty file, which costs an fsync. Empty, because
//! what it must notice is a directory that takes no writes at all (read-only remount, I/O
//! errors, a lost mount), not a full disk: the visits store owns its blocks and keeps counting
//! on a full disk, so the pod should stay in its Service.
//!
//! Probes may come from several kubelets, load balancers and humans at once, so the check is
//! single-flight (overlapping probes share one check instead of racing on the same file) and a
//! success is reused for [`WRITE_CHECK_TTL`]. A failure is not cached: the next probe checks
//! again, so a pod becomes ready as soon as its directory is writable again.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use tokio::sync::Mutex;

/// How long a successful write check answers for; also how late a directory that stops
/// accepting writes can be noticed.
pub const WRITE_CHECK_TTL: Duration = Duration::from_secs(1);

const PROBE_FILE: &str = ".readyz-probe";

pub struct WriteCheck {
    dir: PathBuf,
    ttl: Duration,
    /// When the last successful check finished; held across a check so that probes
    /// arriving meanwhile wait for its result instead of starting their own.
    last_ok: Mutex<Option<Instant>>,
    checks: AtomicU64,
}

impl WriteCheck {
    pub fn new(dir: PathBuf) -> Self {
        Self::with_ttl(dir, WRITE_CHECK_TTL)
    }

    fn with_ttl(dir: PathBuf, ttl: Duration) -> Self {
        Self {
            dir,
            ttl,
            last_ok: Mutex::new(None),
            checks: AtomicU64::new(0),
        }
    }

    /// True when the directory accepted a synced write within the TTL.
    pub async fn is_writable(&self) -> bool {
        let mut last_ok = self.last_ok.lock().await;
        if last_ok.is_some_and(|t| t.elapsed() < self.ttl) {
            return true;
        }
        self.checks.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.clone();
        let result = tokio::task::spawn_blocking(move || write_probe(&dir))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = &result {
            tracing::warn!(dir = %self.dir.display(), error = %e, "data directory write check failed");
        }
        *last_ok = result.is_ok().then(Instant::now);
        result.is_ok()
    }

    #[cfg(test)]
    fn checks_done(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
}

fn write_probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(PROBE_FILE);
    let file = std::fs::File::create(&path)?;
    // sync_all: with no data, only the metadata sync reaches the disk (and its errors).
    let synced = file.sync_all();
    let removed = std::fs::remove_file(&path);
    synced.and(removed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlapping_probes_share_one_real_check() {
        let dir = tempfile::tempdir().unwrap();
        let check = Arc::new(WriteCheck::with_ttl(
            dir.path().to_owned(),
            Duration::from_secs(3600),
        ));
        let probes: Vec<_> = (0..200)
            .map(|_| {
                let check = check.clone();
                tokio::spawn(async move { check.is_writable().await })
            })
            .collect();
        for p in probes {
            assert!(p.await.unwrap());
        }
        assert_eq!(check.checks_done(), 1, "one fsync for 200 probes");
        assert!(!dir.path().join(PROBE_FILE).exists());
    }

    #[tokio::test]
    async fn a_failure_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-yet");
        let check = WriteCheck::with_ttl(missing.clone(), Duration::from_secs(3600));
        assert!(!check.is_writable().await);
        std::fs::create_dir(&missing).unwrap();
        assert!(check.is_writable().await, "recovers on the next probe");
        assert_eq!(check.checks_done(), 2);
    }
}
