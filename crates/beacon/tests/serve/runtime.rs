//! How the runtime sizes itself: one tokio worker per CPU the process may use (affinity and
//! cgroup quota, as `available_parallelism` counts them), workers named apart from the
//! blocking pool so an operator (and bench/) can count them.

use crate::helpers::{Options, Served, TestServer, blocking_client};

/// The names of the server's threads (Linux `/proc/<pid>/task/*/comm`).
fn thread_names(server: &TestServer) -> Vec<String> {
    let mut names = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", server.child.id())).unwrap() {
        if let Ok(name) = std::fs::read_to_string(task.unwrap().path().join("comm")) {
            names.push(name.trim().to_owned());
        }
    }
    names
}

fn workers(names: &[String]) -> usize {
    names.iter().filter(|n| *n == "tokio-rt-worker").count()
}

#[test]
fn one_worker_per_available_cpu() {
    let server = TestServer::start();
    // The child inherits this process's affinity mask, cgroup and environment, so it sees the
    // same count (or the same override).
    let expected = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().unwrap().get());
    assert_eq!(workers(&thread_names(&server)), expected);
}

#[test]
fn tokio_worker_threads_overrides_and_blocking_threads_are_named_apart() {
    let server = TestServer::start_with(Options {
        env: vec![("TOKIO_WORKER_THREADS".into(), "3".into())],
        ..Options::default()
    });
    // /readyz writes a probe file through tokio::fs, which runs on the blocking pool.
    let status = blocking_client()
        .get(server.url("/readyz"))
        .send()
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    let names = thread_names(&server);
    assert_eq!(workers(&names), 3, "{names:?}");
    assert!(names.iter().any(|n| n == "tokio-blocking"), "{names:?}");
}
