use std::time::Duration;

use crate::helpers::*;

/// As the downward API tells pod 2 of a StatefulSet in namespace `shop` on `node-a`.
fn pod_2_of_shop(settings: &mut beacon_serve::Settings) {
    settings.identity = beacon_serve::identity::Identity {
        namespace: Some("shop".into()),
        node: Some("node-a".into()),
        ..pod("beacon-2")
    };
}

#[tokio::test]
async fn index_counts_each_visit_and_shows_the_pod() {
    let server = TestApp::start_with(pod_2_of_shop);
    let http = client();
    for expected in 1..=3 {
        let resp = http.get(server.url("/")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = resp.text().await.unwrap();
        assert!(
            html.contains(&format!("<strong id=\"visits\">{expected}</strong>")),
            "{html}"
        );
        assert!(
            html.contains("<td>beacon-2</td>") && html.contains("<th>Ordinal</th><td>2</td>"),
            "{html}"
        );
        assert!(
            html.contains("<td>shop</td>") && html.contains("<td>node-a</td>"),
            "{html}"
        );
        assert!(
            html.contains("data-tz=\"Europe/Moscow\"") && html.contains("MSK (UTC+03:00)"),
            "{html}"
        );
    }
    let head = http.head(server.url("/")).send().await.unwrap();
    assert_eq!(
        head.status(),
        200,
        "HEAD / answers like GET / but records no visit"
    );
    let json = get_json(&http, &server.url("/visits")).await;
    assert_eq!(json, serde_json::json!({"pod": "beacon-2", "visits": 3}));
    let text = http
        .get(server.url("/visits"))
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(text.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(text.text().await.unwrap(), "3\n");
}

#[tokio::test]
async fn probes_version_and_unknown_paths() {
    let server = TestApp::start();
    let http = client();
    let healthz = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    let readyz = http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), 200);
    let ready: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["checks"]["data_dir_writable"], true);
    let version = get_json(&http, &server.url("/version")).await;
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    assert!(version["revision"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(
        http.get(server.url("/nope")).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn config_endpoint_redacts_secret_like_keys() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("config")).unwrap();
    std::fs::write(
        tmp.path().join("config/config.json"),
        r#"{"timezone": "UTC", "title": "shop front", "settings": {"db_password": "hunter2", "apiToken": "t0k", "color": "teal",
            "database_url": "postgres://app:hunter3@db:5432/shop", "env": [{"name": "DB_PASSWORD", "value": "hunter4"}]}}"#,
    )
    .unwrap();
    let server = TestApp::start_in(tmp.path(), |_| {}).unwrap();
    let body = get_text(&client(), &server.url("/config")).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["title"], "shop front");
    assert_eq!(json["timezone"], "UTC");
    assert_eq!(json["settings"]["color"], "teal");
    assert_eq!(json["settings"]["db_password"], "<redacted>");
    assert_eq!(json["settings"]["apiToken"], "<redacted>");
    assert_eq!(
        json["settings"]["database_url"],
        "postgres://app:<redacted>@db:5432/shop"
    );
    assert_eq!(json["settings"]["env"][0]["value"], "<redacted>");
    for secret in ["hunter2", "t0k", "hunter3", "hunter4"] {
        assert!(!body.contains(secret), "{secret} leaked: {body}");
    }
    let page = get_text(&client(), &server.url("/")).await;
    assert!(
        page.contains("<h1>shop front</h1>") && page.contains(" UTC (UTC+00:00)"),
        "{page}"
    );
}

#[tokio::test]
async fn metrics_use_route_patterns_and_cover_the_service() {
    let server = TestApp::start();
    let http = client();
    for _ in 0..2 {
        http.get(server.url("/")).send().await.unwrap();
    }
    http.get(server.url("/init-data/some/raw/file.txt"))
        .send()
        .await
        .unwrap();
    http.get(server.url("/no/such/path/12345"))
        .send()
        .await
        .unwrap();
    let resp = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    assert_eq!(
        metric_value(
            &text,
            r#"http_requests_total{method="GET",route="/",status="200"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"http_requests_total{method="GET",route="/init-data/{*name}",status="404"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0)
    );
    assert!(
        !text.contains("raw/file.txt") && !text.contains("12345"),
        "raw paths leaked into labels:\n{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"http_request_duration_seconds_count{method="GET",route="/"}"#
        ),
        Some(2.0)
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_bucket{le="0.005",method="GET",route="/"}"#)
            || text.contains(
                r#"http_request_duration_seconds_bucket{method="GET",route="/",le="0.005"}"#
            ),
        "{text}"
    );
    assert_eq!(metric_value(&text, "beacon_visits_total"), Some(2.0));
    assert_eq!(
        metric_value(&text, r#"beacon_config_reloads_total{result="error"}"#),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&text, "beacon_config_last_reload_successful"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&text, "beacon_visits_store_errors_total"),
        Some(0.0)
    );
    assert!(
        text.contains(&format!(
            "beacon_build_info{{version=\"{}\",revision=",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    let rss = metric_value(&text, "process_resident_memory_bytes").unwrap();
    assert!(rss > 1e5 && rss < 1e9, "rss {rss}");
    assert!(metric_value(&text, "process_open_fds").unwrap() >= 3.0);
    assert!(metric_value(&text, "process_cpu_seconds_total").is_some());
    let start = metric_value(&text, "process_start_time_seconds").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - start).abs() < 120.0, "start {start} now {now}");
    assert!(text.trim_end().ends_with("# EOF"));
}

#[test]
fn invalid_config_at_start_is_refused_naming_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("config")).unwrap();
    std::fs::write(
        tmp.path().join("config/config.json"),
        "{\n  \"timezone\": \"Europe/Moskva\"\n}\n",
    )
    .unwrap();
    let logs = TestServer::start_in(tmp.path(), Options::default())
        .err()
        .expect("start must fail");
    let path = tmp.path().join("config/config.json");
    assert!(
        logs.contains(&format!(
            "invalid config file {}: line 3, column 1, at `timezone`: unknown time zone",
            path.display()
        )),
        "{logs}"
    );
}

#[test]
fn corrupt_store_at_start_is_an_error_not_a_reset() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    let store = tmp.path().join("data/visits.db");
    std::fs::write(&store, vec![0x5a; 8192]).unwrap();
    let logs = TestServer::start_in(tmp.path(), Options::default())
        .err()
        .expect("start must fail");
    assert!(
        logs.contains(&format!("visits store {} is corrupt", store.display())),
        "{logs}"
    );
    assert_eq!(
        std::fs::read(&store).unwrap(),
        vec![0x5a; 8192],
        "the corrupt file must be left as it was"
    );
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let first = TestServer::start();
    let logs = TestServer::start_in(&first.root, Options::default())
        .err()
        .expect("second start must fail");
    assert!(logs.contains("is in use by another process"), "{logs}");
    // The first one still works.
    assert_eq!(get_status_blocking(&first.url("/healthz")), 200);
}

#[test]
fn requests_are_logged_as_json_but_probes_and_scrapes_only_at_debug() {
    let server = TestServer::start();
    let http = blocking_client();
    for path in ["/", "/healthz", "/readyz", "/metrics", "/visits"] {
        assert!(
            http.get(server.url(path))
                .send()
                .unwrap()
                .status()
                .is_success()
        );
    }
    eventually(Duration::from_secs(5), "access lines logged", || {
        server.logs().contains(r#""path":"/visits""#)
    });
    let access: Vec<serde_json::Value> = server
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "beacon::access")
        .collect();
    let paths: Vec<&str> = access.iter().map(|v| v["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["/", "/visits"],
        "probes and scrapes must not log at info"
    );
    let index = &access[0];
    assert_eq!(index["level"], "INFO");
    assert_eq!(index["method"], "GET");
    assert_eq!(index["route"], "/");
    assert_eq!(index["status"], 200);
    assert!(
        index["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
        "{index}"
    );
}

/// Readiness checks the data directory for real: an immutable directory (chattr +i, which
/// binds root too) turns /readyz 503 naming the failed check, and back once it is writable.
#[test]
fn readiness_fails_while_the_data_dir_is_not_writable() {
    let server = TestApp::start();
    let data = server.root.join("data");
    let chattr = |flag: &str| {
        let status = std::process::Command::new("chattr")
            .arg(flag)
            .arg(&data)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "chattr {flag} failed (e2fsprogs, ext4 needed)"
        );
    };
    chattr("+i");
    let resp = blocking_client().get(server.url("/readyz")).send().unwrap();
    let status = resp.status();
    let body: serde_json::Value = resp.json().unwrap();
    chattr("-i");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["checks"]["data_dir_writable"], false);
    assert_eq!(body["checks"]["store_healthy"], true);
    assert_eq!(get_status_blocking(&server.url("/readyz")), 200);
}
