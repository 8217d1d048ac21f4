//! `beacon init write` as a queue of init containers, re-run the way a pod restart does.

use crate::helpers::{self, run};

const LINES: [&str; 3] = ["bla-bla", "whoa", "this is the 14th lab"];

fn write(path: &std::path::Path, extra: &[&str]) -> helpers::Run {
    let mut args = vec!["init", "write", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn a_queue_of_three_then_a_rerun_yields_exactly_three_lines_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.txt");
    for line in LINES {
        write(&file, &["--line", line])
            .expect_code(0)
            .expect_last_line("appended 1 line(s)");
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "bla-bla\nwhoa\nthis is the 14th lab\n"
    );

    // The pod restarts; emptyDir keeps the file; the same three init containers run again.
    for line in LINES {
        write(&file, &["--line", line])
            .expect_code(0)
            .expect_last_line("step already applied");
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "bla-bla\nwhoa\nthis is the 14th lab\n"
    );

    // The ledger sits beside the file, hidden from `beacon serve`; nothing else is left.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".example.txt.steps", "example.txt"]);
}

#[test]
fn explicit_ids_make_equal_lines_distinct_steps() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log.txt");
    for _ in 0..2 {
        write(&file, &["--line", "ping", "--id", "first"]).expect_code(0);
        write(&file, &["--line", "ping", "--id", "second"]).expect_code(0);
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "ping\nping\n");
}

#[test]
fn several_lines_are_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sub/dir/x.txt");
    for _ in 0..2 {
        write(&file, &["--line", "a", "--line", "b"]).expect_code(0);
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nb\n");
}

#[test]
fn bad_lines_and_ids_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.txt");
    write(&file, &["--line", "two\nlines"])
        .expect_code(2)
        .expect_last_line("cannot contain a newline");
    write(&file, &["--line", "x", "--id", "no spaces"])
        .expect_code(2)
        .expect_last_line("invalid step id");
    assert!(!file.exists());
}

#[test]
fn a_file_changed_behind_the_ledger_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.txt");
    write(&file, &["--line", "one", "--id", "s1"]).expect_code(0);
    // A crash after `begin` is simulated; then something else rewrites the file.
    std::fs::write(dir.path().join(".x.txt.steps"), "begin s2 4\n").unwrap();
    std::fs::write(&file, "one\nintruder\n").unwrap();
    write(&file, &["--line", "two", "--id", "s2"])
        .expect_code(1)
        .expect_last_line("changed since step s2 began");
}

#[test]
fn a_file_truncated_to_zero_gets_its_queue_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.txt");
    for line in LINES {
        write(&file, &["--line", line]).expect_code(0);
    }
    // Truncated, not deleted (`: > example.txt`, a log rotation with copytruncate).
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(0)
        .unwrap();
    for line in LINES {
        write(&file, &["--line", line]).expect_code(0);
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "bla-bla\nwhoa\nthis is the 14th lab\n"
    );
}

/// Hidden temp files beside `file` (`.NAME.XXXXXX.part`).
fn temp_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".part"))
        .collect()
}

#[test]
fn temp_files_left_by_a_killed_run_are_removed_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.txt");
    // What a SIGKILL between creating the temp file and renaming it leaves behind.
    std::fs::write(
        dir.path().join(".example.txt.Xy12Ab.part"),
        "half of the ne",
    )
    .unwrap();
    write(&file, &["--line", "a"]).expect_code(0);
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\n");
}

#[test]
fn kill_9_at_random_points_leaves_nothing_after_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.txt");
    let base = "x".repeat(99) + "\n";
    std::fs::write(&file, base.repeat(200_000)).unwrap(); // 20 MB: the rewrite takes a while
    for i in 0..8u64 {
        let mut child = helpers::beacon(&[
            "init",
            "write",
            file.to_str().unwrap(),
            "--line",
            &format!("line {i}"),
        ])
        .spawn()
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5 + i * 15));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    write(&file, &["--line", "last"]).expect_code(0);
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(&base.repeat(200_000)) && text.ends_with("last\n"));
}

#[test]
fn sigterm_mid_step_exits_143_and_leaves_a_consistent_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.txt");
    let base = "y".repeat(99) + "\n";
    let base = base.repeat(400_000); // 40 MB
    let mut interrupted = false;
    for _ in 0..5 {
        std::fs::write(&file, &base).unwrap();
        let _ = std::fs::remove_file(dir.path().join(".big.txt.steps"));
        let started = std::time::Instant::now();
        let child = helpers::beacon(&["init", "write", file.to_str().unwrap(), "--line", "z"])
            .spawn()
            .unwrap();
        // Signal while the new content is being written.
        while temp_files(dir.path()).is_empty() && started.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = helpers::finish(child, started);
        assert!(
            matches!(out.code(), Some(0 | 143)),
            "exit {:?}; stderr:\n{}",
            out.status,
            out.stderr
        );
        assert_eq!(temp_files(dir.path()), Vec::<String>::new());
        let now = std::fs::read_to_string(&file).unwrap();
        assert!(now == base || now == format!("{base}z\n"), "torn file");
        // Whatever happened, the next run ends with exactly one `z`.
        write(&file, &["--line", "z"]).expect_code(0);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{base}z\n")
        );
        if out.code() == Some(143) {
            out.expect_last_line("interrupted by SIGTERM");
            interrupted = true;
            break;
        }
    }
    assert!(interrupted, "SIGTERM never arrived mid-step");
}

/// `init write PATH --line a`, killed and failed if it is still running after 10 s.
fn write_within_10s(path: &std::path::Path) -> helpers::Run {
    let started = std::time::Instant::now();
    let mut child = helpers::beacon(&["init", "write", path.to_str().unwrap(), "--line", "a"])
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() && started.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("write still running after 10 s");
    }
    helpers::finish(child, started)
}

#[test]
fn a_fifo_named_like_a_temp_file_does_not_hang_the_step() {
    // The sweep opened it to take its lock, which blocks until a writer appears.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.txt");
    let fifo = dir.path().join(".example.txt.AbC123.part");
    helpers::mkfifo(&fifo);
    write_within_10s(&file).expect_code(0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\n");
}

#[test]
fn a_symlink_or_fifo_in_place_of_the_file_is_refused_not_followed() {
    // Through a symlink, the step used to copy whatever it pointed at into a regular file in
    // the volume (which `beacon serve` then shows); a FIFO blocked it.
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "top secret\n").unwrap();
    let file = dir.path().join("example.txt");
    std::os::unix::fs::symlink(&secret, &file).unwrap();
    let out = write(&file, &["--line", "a"]);
    out.expect_code(1).expect_last_line(&format!(
        "beacon: error: {} is a symlink, not a regular file; refusing to write through it",
        file.display()
    ));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "top secret\n");
    assert!(std::fs::symlink_metadata(&file).unwrap().is_symlink());

    let fifo = dir.path().join("queue.txt");
    helpers::mkfifo(&fifo);
    write_within_10s(&fifo)
        .expect_code(1)
        .expect_last_line("is a special file, not a regular file");
}
