use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use beacon_serve::Settings;

use crate::helpers::*;

/// The count in `GET visits_url`.
async fn visits(http: &reqwest::Client, visits_url: &str) -> u64 {
    get_json(http, visits_url).await["visits"].as_u64().unwrap()
}

/// `clients` concurrent clients each visit `/` `each` times, every visit answered 200.
async fn visit_concurrently(server: &TestApp, clients: u64, each: u64) {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let http = client();
            let url = server.url("/");
            tokio::spawn(async move {
                for _ in 0..each {
                    let resp = http.get(&url).send().await.unwrap();
                    assert_eq!(resp.status(), 200);
                    resp.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_times_two_hundred_visits_count_exactly() {
    let server = TestApp::start();
    visit_concurrently(&server, 64, 200).await;
    let http = client();
    assert_eq!(visits(&http, &server.url("/visits")).await, 12_800);
    let metrics = get_text(&http, &server.url("/metrics")).await;
    assert_eq!(
        metric_value(&metrics, "beacon_visits_total"),
        Some(12_800.0)
    );
}

/// The durability metrics account for every visit: each answered visit observed its commit
/// wait once, the syncs' batches add up to the visits, and (group commit) one sync may cover
/// several visits but never fewer than one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durability_metrics_account_for_every_visit() {
    const CLIENTS: u64 = 16;
    const EACH: u64 = 25;
    const N: u64 = CLIENTS * EACH;
    let server = TestApp::start();
    let started = std::time::Instant::now();
    visit_concurrently(&server, CLIENTS, EACH).await;
    let elapsed = started.elapsed().as_secs_f64();
    let http = client();
    let text = get_text(&http, &server.url("/metrics")).await;
    let value = |series: &str| {
        metric_value(&text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    for (name, kind) in [
        ("beacon_visits_sync_duration_seconds", "histogram"),
        ("beacon_visits_commit_wait_seconds", "histogram"),
        ("beacon_visits_sync_batch_size", "histogram"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} is not a {kind}:\n{text}"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no help"
        );
        assert_eq!(
            value(&format!("{name}_bucket{{le=\"+Inf\"}}")),
            value(&format!("{name}_count")),
            "{name}: +Inf bucket and count differ"
        );
    }
    let n = N as f64;
    let waits = value("beacon_visits_commit_wait_seconds_count");
    let wait_sum = value("beacon_visits_commit_wait_seconds_sum");
    let syncs = value("beacon_visits_sync_duration_seconds_count");
    let sync_sum = value("beacon_visits_sync_duration_seconds_sum");
    assert_eq!(waits, n, "one commit wait per visit");
    assert!((1.0..=n).contains(&syncs), "{syncs} syncs for {N} visits");
    assert_eq!(
        value("beacon_visits_sync_batch_size_count"),
        syncs,
        "one batch size per sync (no sync failed)"
    );
    assert_eq!(
        value("beacon_visits_sync_batch_size_sum"),
        n,
        "the batches add up to the visits"
    );
    // The syncs run one after another on the writer thread, during the load.
    assert!(
        sync_sum > 0.0 && sync_sum <= elapsed,
        "syncs took {sync_sum} s in all, in {elapsed} s of load"
    );
    // A visit's wait contains the whole write + sync that covers it (the writer reads the
    // tickets to commit only after the visit took its own), and every sync covers one or
    // more visits: so the waits add up to at least the syncs.
    assert!(
        wait_sum >= sync_sum && wait_sum <= n * elapsed,
        "commit waits {wait_sum} s in all, syncs {sync_sum} s, {elapsed} s of load"
    );
    // Buckets from 100 µs (fast disks) to seconds (a throttled volume).
    assert!(
        text.contains("beacon_visits_sync_duration_seconds_bucket{le=\"0.0001\"}")
            && text.contains("beacon_visits_sync_duration_seconds_bucket{le=\"6.5536\"}"),
        "{text}"
    );
    assert!(
        text.contains("beacon_visits_sync_batch_size_bucket{le=\"1024.0\"}"),
        "{text}"
    );
}

/// Every visit whose response arrived must survive a kill -9 at an arbitrary moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_minus_nine_under_load_loses_no_acknowledged_visit() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(tmp.path(), Options::default()).unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let highest = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (acked, highest, stop) = (acked.clone(), highest.clone(), stop.clone());
            let http = client();
            let url = server.url("/");
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(resp) = http.get(&url).send().await else {
                        break;
                    };
                    let Ok(body) = resp.text().await else { break };
                    let n: u64 = body
                        .split("<strong id=\"visits\">")
                        .nth(1)
                        .and_then(|s| s.split('<').next())
                        .and_then(|s| s.parse().ok())
                        .expect("page shows the count");
                    acked.fetch_add(1, Ordering::SeqCst);
                    highest.fetch_max(n, Ordering::SeqCst);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.signal(libc::SIGKILL);
    server.wait_exit(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let (acked, highest) = (acked.load(Ordering::SeqCst), highest.load(Ordering::SeqCst));
    assert!(
        acked > 100,
        "load generator made too few visits ({acked}) to mean anything"
    );

    drop(server);
    let restarted =
        TestServer::start_in(tmp.path(), Options::default()).expect("restart over the same data");
    let count = visits(&client(), &restarted.url("/visits")).await;
    assert!(
        count >= acked,
        "acknowledged {acked} visits but only {count} survived"
    );
    assert!(
        count >= highest,
        "a response showed {highest} but only {count} survived"
    );
}

/// Runs a command that must succeed (mount, chattr: root-only test set-up).
fn run(cmd: &str, args: &[&str]) {
    let status = std::process::Command::new(cmd).args(args).status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "{cmd} {args:?} failed (these tests need root and an ext4 temp dir)"
    );
}

/// A small tmpfs of our own, lazily unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", &path],
        );
        Self { dir }
    }

    /// Writes a file until the file system says ENOSPC.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.dir.path().join("filler")).unwrap();
        let chunk = vec![0xaau8; 4096];
        loop {
            match std::io::Write::write_all(&mut f, &chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = f.sync_all();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Both slots are allocated when the store is created, so a full disk cannot fail a commit
/// (the second slot used to be a hole, and its first write needed a block).
#[test]
fn visits_keep_counting_on_a_full_disk() {
    let disk = SmallDisk::mount("256k");
    let data = disk.dir.path().join("data");
    let server = TestApp::start_with(|s: &mut Settings| s.data_dir = data.clone());
    disk.fill();
    let http = blocking_client();
    for n in 1..=5 {
        let resp = http.get(server.url("/")).send().unwrap();
        assert_eq!(
            resp.status(),
            200,
            "visit {n} on a full disk: {}",
            resp.text().unwrap()
        );
    }
    assert_eq!(server.visits(), 5);
    // Visits still work, so the pod must stay in its Service: the readiness write check used
    // to write data and failed with ENOSPC. Wait out the cached success so a fresh check runs.
    std::thread::sleep(Duration::from_millis(1500));
    let ready = http.get(server.url("/readyz")).send().unwrap();
    assert_eq!(
        ready.status(),
        200,
        "readiness on a full disk: {}",
        ready.text().unwrap()
    );
    let store = data.join("visits.db");
    let blocks = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&store).unwrap());
    assert!(
        blocks * 512 >= 8192,
        "visits.db has {blocks} 512-byte blocks allocated: both 4 KiB slots must be"
    );
}

/// SIGTERM while the store cannot be written: the process says which visits were not made
/// durable and exits non-zero, instead of "flushed" and 0.
#[test]
fn shutdown_with_a_failing_store_exits_non_zero_naming_what_was_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(tmp.path(), Options::default()).unwrap();
    let http = blocking_client();
    for _ in 0..3 {
        assert_eq!(http.get(server.url("/")).send().unwrap().status(), 200);
    }
    let store = tmp.path().join("data/visits.db");
    let store_arg = store.to_str().unwrap();
    // Immutable (binds root and already open descriptors too): every commit fails with EPERM.
    run("chattr", &["+i", store_arg]);
    let resp = http.get(server.url("/")).send().unwrap();
    let status = resp.status();
    // The failed syncs are timed, but neither counted as a batch nor as a visit's commit wait.
    let metrics = server.metrics();
    let value = |series: &str| metric_value(&metrics, series).unwrap_or_else(|| panic!("{series}"));
    assert!(
        value("beacon_visits_store_errors_total") >= 1.0,
        "{metrics}"
    );
    assert!(
        value("beacon_visits_sync_duration_seconds_count")
            > value("beacon_visits_sync_batch_size_count"),
        "{metrics}"
    );
    assert_eq!(value("beacon_visits_sync_batch_size_sum"), 3.0);
    assert_eq!(value("beacon_visits_commit_wait_seconds_count"), 3.0);
    server.signal(libc::SIGTERM);
    let exit = server.wait_exit(Duration::from_secs(20));
    run("chattr", &["-i", store_arg]);
    assert_eq!(
        status, 503,
        "a visit that cannot be stored is not acknowledged"
    );
    let logs = server.logs();
    assert!(!exit.success(), "exit status {exit:?}; logs:\n{logs}");
    assert!(!logs.contains("visits store flushed"), "{logs}");
    assert!(
        logs.contains("visits store not flushed") && logs.contains("1 visit(s) not durable"),
        "{logs}"
    );
    let last = logs.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("beacon: error:") && last.matches("Operation not permitted").count() == 1,
        "the last line names the cause once: {last}"
    );
    drop(server);
    let restarted = TestServer::start_in(tmp.path(), Options::default()).unwrap();
    assert_eq!(restarted.visits(), 3);
}
