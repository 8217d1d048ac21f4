use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::helpers::*;

async fn visits(http: &reqwest::Client, server: &TestServer) -> u64 {
    get_json(http, &server.url("/visits")).await["visits"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_times_two_hundred_visits_count_exactly() {
    let server = TestServer::start();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let http = client();
            let url = server.url("/");
            tokio::spawn(async move {
                for _ in 0..200 {
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
    let http = client();
    assert_eq!(visits(&http, &server).await, 12_800);
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric_value(&metrics, "beacon_visits_total"),
        Some(12_800.0)
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
    let count = visits(&client(), &restarted).await;
    assert!(
        count >= acked,
        "acknowledged {acked} visits but only {count} survived"
    );
    assert!(
        count >= highest,
        "a response showed {highest} but only {count} survived"
    );
}
