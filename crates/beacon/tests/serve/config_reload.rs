//! Hot reload the way the kubelet does it: a new timestamped directory, then an atomic
//! rename of the `..data` symlink; `config.json` itself is a symlink through `..data`.

use std::{os::unix::fs::symlink, path::Path, time::Duration};

use beacon_serve::Settings;

use crate::helpers::*;

const HOUR: Duration = Duration::from_secs(3600);

/// Settings polling the config file every `interval` (an hour: only the directory watch reloads).
fn polling_every(interval: Duration) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| s.config_poll_interval = interval
}

/// The title in the server's `GET /config`.
fn title(config_url: &str) -> String {
    let v = get_json_blocking(config_url);
    v["title"].as_str().unwrap().to_owned()
}

#[test]
fn configmap_symlink_swap_reloads_and_a_bad_update_keeps_the_last_good_config() {
    let (tmp, config_dir) = root_with_config(r#"{"title": "first"}"#);
    // A long poll interval proves the reload comes from the directory watch, not the timer.
    let server = TestApp::start_in(tmp.path(), polling_every(HOUR)).unwrap();
    assert_eq!(title(&server.url("/config")), "first");

    kubelet_publish(
        &config_dir,
        2,
        r#"{"title": "second", "timezone": "Asia/Tokyo"}"#,
    );
    eventually(Duration::from_secs(10), "title becomes 'second'", || {
        title(&server.url("/config")) == "second"
    });
    let m = server.metrics();
    assert_eq!(
        metric_value(&m, r#"beacon_config_reloads_total{result="success"}"#),
        Some(1.0),
        "{m}"
    );
    let page = get_text_blocking(&server.url("/"));
    assert!(page.contains("JST (UTC+09:00)"), "{page}");

    kubelet_publish(&config_dir, 3, r#"{"title": "third", "timezone": 9}"#);
    eventually(Duration::from_secs(10), "the bad update is counted", || {
        metric_value(
            &server.metrics(),
            r#"beacon_config_reloads_total{result="error"}"#,
        ) == Some(1.0)
    });
    assert_eq!(
        metric_value(&server.metrics(), "beacon_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(
        title(&server.url("/config")),
        "second",
        "the last good config must stay in effect"
    );
    assert_eq!(get_status_blocking(&server.url("/")), 200);
    assert_eq!(get_status_blocking(&server.url("/readyz")), 200);
    let logs = server.logs();
    assert!(
        logs.contains("configuration update rejected")
            && logs.contains("line 1, column 32, at `timezone`: invalid type: integer `9`"),
        "{logs}"
    );

    kubelet_publish(&config_dir, 4, r#"{"title": "fourth"}"#);
    eventually(Duration::from_secs(10), "title becomes 'fourth'", || {
        title(&server.url("/config")) == "fourth"
    });
    assert_eq!(
        metric_value(&server.metrics(), "beacon_config_last_reload_successful"),
        Some(1.0)
    );
}

#[test]
fn plain_file_edits_reload_too() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config/config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, r#"{"title": "before"}"#).unwrap();
    let server = TestApp::start_in(tmp.path(), polling_every(HOUR)).unwrap();
    assert_eq!(title(&server.url("/config")), "before");
    std::fs::write(&config, r#"{"title": "after"}"#).unwrap();
    eventually(Duration::from_secs(10), "title becomes 'after'", || {
        title(&server.url("/config")) == "after"
    });
}

#[test]
fn a_config_created_after_start_is_picked_up_by_polling() {
    let tmp = tempfile::tempdir().unwrap();
    // No config directory at all at start: the watch cannot be set, polling must cover it.
    let later = tmp.path().join("later/config.json");
    let server = TestApp::start_in(tmp.path(), |s: &mut Settings| {
        s.config_path = later;
        s.config_poll_interval = Duration::from_millis(200);
    })
    .unwrap();
    assert_eq!(title(&server.url("/config")), "beacon");
    std::fs::create_dir_all(tmp.path().join("later")).unwrap();
    std::fs::write(tmp.path().join("later/config.json"), r#"{"title": "late"}"#).unwrap();
    eventually(Duration::from_secs(10), "title becomes 'late'", || {
        title(&server.url("/config")) == "late"
    });
}

/// The kubelet's update when a ConfigMap loses its `config.json` key: a new data directory
/// without the file, the `..data` swap, then the user-visible symlink goes.
fn kubelet_remove_key(dir: &Path, generation: u32) {
    let ts_dir = format!("..2026_11_25_10_00_{generation:02}.{generation}");
    std::fs::create_dir(dir.join(&ts_dir)).unwrap();
    let tmp_link = dir.join("..data_tmp");
    symlink(&ts_dir, &tmp_link).unwrap();
    std::fs::rename(&tmp_link, dir.join("..data")).unwrap();
    std::fs::remove_file(dir.join("config.json")).unwrap();
}

/// A running pod treats a removed key as a restarted pod would: embedded defaults. It says
/// so in the log and in `beacon_config_source`, so replicas never diverge silently.
#[test]
fn removing_the_config_key_reverts_to_defaults_visibly() {
    let (tmp, config_dir) = root_with_config(r#"{"title": "custom", "timezone": "UTC"}"#);
    let server = TestApp::start_in(tmp.path(), polling_every(HOUR)).unwrap();
    assert_eq!(title(&server.url("/config")), "custom");
    let source =
        |m: &str, s: &str| metric_value(m, &format!("beacon_config_source{{source=\"{s}\"}}"));
    let m = server.metrics();
    assert_eq!(
        (source(&m, "file"), source(&m, "defaults")),
        (Some(1.0), Some(0.0)),
        "{m}"
    );

    kubelet_remove_key(&config_dir, 2);
    eventually(
        Duration::from_secs(10),
        "title reverts to the default",
        || title(&server.url("/config")) == "beacon",
    );
    assert_eq!(
        get_json_blocking(&server.url("/config"))["timezone"],
        "Europe/Moscow"
    );
    let m = server.metrics();
    assert_eq!(
        (source(&m, "file"), source(&m, "defaults")),
        (Some(0.0), Some(1.0)),
        "{m}"
    );
    assert!(
        server
            .logs()
            .contains("configuration file removed; using the embedded defaults"),
        "{}",
        server.logs()
    );

    // A restarted pod agrees with the running one.
    drop(server);
    let restarted = TestApp::start_in(tmp.path(), |_| {}).unwrap();
    assert_eq!(title(&restarted.url("/config")), "beacon");
    let m = restarted.metrics();
    assert_eq!(source(&m, "defaults"), Some(1.0), "{m}");
    drop(restarted);

    let server = TestApp::start_in(tmp.path(), polling_every(HOUR)).unwrap();
    kubelet_publish(&config_dir, 3, r#"{"title": "back"}"#);
    eventually(Duration::from_secs(10), "title becomes 'back'", || {
        title(&server.url("/config")) == "back"
    });
    assert_eq!(source(&server.metrics(), "file"), Some(1.0));
}

/// A config path that cannot be read stops the start with one clear line naming the cause
/// once (it used to print `…: Is a directory (os error 21): Is a directory (os error 21)`).
#[test]
fn an_unreadable_config_at_start_is_one_line_naming_the_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("config/config.json")).unwrap();
    let logs = TestServer::start_in(tmp.path(), Options::default())
        .err()
        .expect("a directory named config.json is refused at start");
    let last = logs.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("beacon: error: cannot start beacon serve: cannot read config file")
            && last.matches("Is a directory").count() == 1,
        "{logs}"
    );
}

/// A config path pointed at a huge file used to be read whole, kept twice and rendered into
/// every page (300 MB took the pod from 7 MB to over 1 GB); one pointed at a FIFO blocked the
/// reload task for good. Both are refused, the last good configuration stays, and a later
/// good file is still picked up.
#[test]
fn a_huge_file_or_a_fifo_is_refused_and_reloading_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config/config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, r#"{"title": "before"}"#).unwrap();
    let server = TestApp::start_in(tmp.path(), polling_every(Duration::from_millis(200))).unwrap();
    let huge = format!(
        r#"{{"title": "huge", "message": "{}"}}"#,
        "x".repeat(2 << 20)
    );
    std::fs::write(tmp.path().join("huge.json"), &huge).unwrap();
    std::fs::rename(tmp.path().join("huge.json"), &config).unwrap();
    eventually(Duration::from_secs(10), "the huge file is refused", || {
        server.logs().contains("larger than 1048576 bytes")
    });
    assert_eq!(title(&server.url("/config")), "before");

    std::fs::remove_file(&config).unwrap();
    let c = std::ffi::CString::new(config.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    eventually(Duration::from_secs(10), "the FIFO is refused", || {
        server.logs().contains("not a regular file")
    });
    std::fs::remove_file(&config).unwrap();
    std::fs::write(&config, r#"{"title": "after"}"#).unwrap();
    eventually(Duration::from_secs(10), "title becomes 'after'", || {
        title(&server.url("/config")) == "after"
    });
    drop(server);

    std::fs::rename(
        tmp.path().join("config/config.json"),
        tmp.path().join("keep"),
    )
    .unwrap();
    std::fs::write(&config, &huge).unwrap();
    let logs = TestServer::start_in(tmp.path(), Options::default())
        .err()
        .expect("a huge config is refused at start");
    assert!(logs.contains("larger than 1048576 bytes"), "{logs}");
}

/// A JSON array where an object belongs used to be read field by field (`{"faults": [1.0, 451]}`
/// made every `/` answer 451) or as "all defaults" (`[]`). It is a wrong type like any other:
/// refused at start, and on reload refused with the last good configuration kept.
#[test]
fn arrays_where_objects_belong_are_refused_keeping_the_last_good_config() {
    for (content, at) in [
        ("[]", "line 1, column 1: invalid type: sequence"),
        (r#"{"faults": []}"#, "at `faults`: invalid type: sequence"),
    ] {
        let (tmp, _) = root_with_config(content);
        let logs = TestServer::start_in(tmp.path(), Options::default())
            .err()
            .unwrap_or_else(|| panic!("{content} is refused at start"));
        assert!(
            logs.contains("invalid config file") && logs.contains(at),
            "{content}: {logs}"
        );
    }

    let (tmp, config_dir) = root_with_config(r#"{"title": "good"}"#);
    let server = TestApp::start_in(tmp.path(), polling_every(HOUR)).unwrap();
    let updates = [
        (
            r#"{"faults": [1.0, 451]}"#,
            "at `faults`: invalid type: sequence",
        ),
        (
            r#"{"faults": {"pods": {"1": [1.0, 451]}}}"#,
            "at `faults.pods.1`: invalid type: sequence",
        ),
        ("[]", "line 1, column 1: invalid type: sequence"),
    ];
    for (n, (content, at)) in updates.into_iter().enumerate() {
        kubelet_publish(&config_dir, n as u32 + 2, content);
        eventually(Duration::from_secs(10), "the update is refused", || {
            metric_value(
                &server.metrics(),
                r#"beacon_config_reloads_total{result="error"}"#,
            ) == Some(n as f64 + 1.0)
        });
        assert!(server.logs().contains(at), "{content}: {}", server.logs());
        let config = get_json_blocking(&server.url("/config"));
        assert_eq!(config["title"], "good", "{content}: {config}");
        assert_eq!(
            config["faults"],
            serde_json::json!({}),
            "{content}: {config}"
        );
        assert_eq!(get_status_blocking(&server.url("/")), 200, "{content}");
    }
}

/// beacon's own read of a plain `config.json` used to arrive as a directory event and reload
/// it again, every 100 ms, for good: a 200 KB file was read 6 MB in 3 s, an oversized one added
/// an error (and an ERROR line) ten times a second. Only a change reloads: an unchanged file is
/// not read again, an unchanged bad one is refused once. A process of its own: the bytes read
/// are counted in its /proc/PID/io.
#[test]
fn an_unchanged_plain_file_is_not_reloaded_again() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config/config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, r#"{"title": "before"}"#).unwrap();
    let server = TestServer::start_in(
        tmp.path(),
        Options {
            extra_args: vec!["--config-poll-interval".into(), "1h".into()],
            ..Options::default()
        },
    )
    .unwrap();
    // Whole files renamed in, so no reader sees a half-written one.
    let replace = |content: &str| {
        std::fs::write(tmp.path().join("next.json"), content).unwrap();
        std::fs::rename(tmp.path().join("next.json"), &config).unwrap();
    };
    // 200 KB of valid config: re-read every 100 ms, that was 6 MB in 3 s.
    let big = format!(
        r#"{{"title": "big", "message": "{}"}}"#,
        "m".repeat(200_000)
    );
    replace(&big);
    eventually(Duration::from_secs(10), "title becomes 'big'", || {
        title(&server.url("/config")) == "big"
    });
    let bytes_read = || {
        let io = std::fs::read_to_string(format!("/proc/{}/io", server.child.id())).unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(500));
    let before = bytes_read();
    std::thread::sleep(Duration::from_secs(3));
    let read = bytes_read() - before;
    assert!(
        read < big.len() as u64,
        "an idle server read {read} bytes in 3 s: the unchanged config again"
    );
    let errors = || {
        metric_value(
            &server.metrics(),
            r#"beacon_config_reloads_total{result="error"}"#,
        )
    };
    replace(&format!(r#"{{"message": "{}"}}"#, "x".repeat(2 << 20)));
    eventually(Duration::from_secs(10), "the huge file is refused", || {
        errors() >= Some(1.0)
    });
    // Long enough for dozens of self-triggered reloads.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(errors(), Some(1.0), "{}", server.logs());
    assert_eq!(
        server.logs().matches("larger than 1048576 bytes").count(),
        1,
        "{}",
        server.logs()
    );

    replace(r#"{"title": "after"}"#);
    eventually(Duration::from_secs(10), "title becomes 'after'", || {
        title(&server.url("/config")) == "after"
    });
    std::thread::sleep(Duration::from_secs(2));
    let m = server.metrics();
    assert_eq!(
        metric_value(&m, r#"beacon_config_reloads_total{result="success"}"#),
        Some(2.0),
        "one reload for each of the two good files: {m}"
    );
}
