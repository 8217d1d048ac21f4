//! Probes as the kubelet sends them: overlapping, frequent, and while the service is busy.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use crate::helpers::*;

/// Overlapping readiness probes of a healthy pod must all answer 200 (each probe used to
/// write and delete the same file, so concurrent ones failed each other).
#[test]
fn concurrent_readyz_probes_of_a_healthy_pod_all_answer_200() {
    let server = TestServer::start();
    let failures = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let url = server.url("/readyz");
            let failures = failures.clone();
            std::thread::spawn(move || {
                let http = blocking_client();
                for _ in 0..50 {
                    let resp = http.get(&url).send().unwrap();
                    if resp.status() != 200 {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "of 800 overlapping probes of a healthy pod, some answered 503"
    );
}
