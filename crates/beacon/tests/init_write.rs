//! `beacon init write` as a queue of init containers, re-run the way a pod restart does.

#[path = "support/init_helpers.rs"]
mod init_helpers;

use init_helpers::run;

const LINES: [&str; 3] = ["bla-bla", "whoa", "this is the 14th lab"];

fn write(path: &std::path::Path, extra: &[&str]) -> init_helpers::Run {
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
