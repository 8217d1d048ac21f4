//! `beacon init write`: append lines to a file exactly once per step.
//!
//! Init containers run again when a pod restarts, and an `emptyDir` keeps what the previous
//! run wrote, so "append a line" must be idempotent. Each step has an id (by default derived
//! from its lines; `--id` to choose one) and a ledger beside the file, `.NAME.steps`, records
//! the steps applied to it. The ledger is hidden (a dotfile) so `beacon serve` never serves it.
//!
//! One step, under an exclusive lock on the ledger:
//!
//! 1. ledger says `done ID` → nothing to do;
//! 2. append `begin ID OFFSET` to the ledger (fsync), OFFSET being the file's current length;
//! 3. replace the file with its content plus the lines, via temp file + fsync + rename;
//! 4. append `done ID` to the ledger (fsync).
//!
//! A crash can only leave a `begin` without its `done`. The next run then looks at the file:
//! still OFFSET bytes long → the rename never happened, append now; OFFSET + lines long and
//! ending in exactly those lines → the rename happened, only record `done`. Anything else
//! means someone else changed the file in between, and the step refuses to guess. Because the
//! content is replaced by rename, a half-appended line is never visible.
//!
//! If the file is gone (or truncated to nothing) but its ledger is not, the ledger describes
//! content that no longer exists and is reset, so deleting or emptying the file starts the
//! sequence over. Temp files a killed run left beside the file are removed by the next run.

use std::{
    collections::HashMap,
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use sha2::{Digest, Sha256};

use crate::{Error, Result, fsutil};

/// What `append_lines` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Appended,
    /// The ledger already had this step: nothing written.
    AlreadyDone,
    /// A previous run appended the lines but crashed before recording it; only recorded now.
    Recovered,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub lines: Vec<String>,
}

impl Step {
    /// Validates `lines` and the id, deriving the id from the lines when none is given.
    pub fn new(lines: Vec<String>, id: Option<String>) -> Result<Self> {
        if let Some(bad) = lines.iter().find(|l| l.contains(['\n', '\r'])) {
            return Err(Error::InvalidLine(bad.clone()));
        }
        let id = match id {
            Some(id) => validate_id(id)?,
            None => derived_id(&lines),
        };
        Ok(Self { id, lines })
    }
}

/// `lines-` and 16 hex digits of the SHA-256 of the lines: re-running the same command maps
/// to the same step, and a different text (a changed chart) is a different step.
fn derived_id(lines: &[String]) -> String {
    let digest = Sha256::digest(lines.join("\n").as_bytes());
    format!("lines-{}", &hex::encode(digest)[..16])
}

fn validate_id(id: String) -> Result<String> {
    let ok = (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(id)
    } else {
        Err(Error::InvalidStepId(id))
    }
}

/// The ledger recording which steps were applied to `path`.
pub fn ledger_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    fsutil::parent_dir(path).join(format!(".{name}.steps"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Begun { offset: u64 },
    Done,
}

/// Applies `step` to `path` once, however often it is called. Blocking.
pub fn append_lines(path: &Path, step: &Step) -> Result<Outcome> {
    append_lines_unless(path, step, &AtomicBool::new(false))
}

/// How long a signalled step may take to reach its next safe point before it is abandoned
/// (it may be waiting for another step's ledger lock, and abandoning is as safe as a crash).
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// [`append_lines`] that stops at its next safe point once `cancel` is set (SIGTERM), with
/// [`Error::Interrupted`]: before the file is replaced, the temp file is deleted and the file
/// keeps its old content; after, the step completes (only the ledger's `done` is left to
/// write). Either way a re-run finishes the step exactly once.
pub fn append_lines_unless(path: &Path, step: &Step, cancel: &AtomicBool) -> Result<Outcome> {
    let dir = fsutil::parent_dir(path);
    fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create directory", &dir, e))?;
    let ledger_path = ledger_path(path);
    let mut ledger = Ledger::open(&ledger_path)?;
    // Under the ledger's lock no other step on this file is running, so any temp file beside
    // it was left by a killed run (and a live one would be flock-held and kept anyway).
    fsutil::sweep_stale_temps(path);

    let current = read_regular(path)?;
    // Deleted or truncated to nothing: the ledger describes content that is gone, and the
    // queue must start over to end with its lines again.
    if current.as_ref().is_none_or(Vec::is_empty) && !ledger.states.is_empty() {
        let how = if current.is_none() { "gone" } else { "empty" };
        tracing::info!(ledger = %ledger_path.display(), "file is {how}; resetting its ledger");
        ledger.reset()?;
    }
    let current = current.unwrap_or_default();
    let len = current.len() as u64;
    let interrupted = || {
        if cancel.load(Ordering::SeqCst) {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    };

    match ledger.states.get(&step.id).copied() {
        Some(State::Done) => Ok(Outcome::AlreadyDone),
        Some(State::Begun { offset }) => {
            let Some(base) = current.get(..offset as usize) else {
                return Err(conflict(path, step, offset, len));
            };
            let added = payload(base, &step.lines);
            if current[base.len()..] == added[..] {
                ledger.record(&format!("done {}", step.id))?;
                Ok(Outcome::Recovered)
            } else if len == offset {
                replace_with(path, base, &added, &interrupted)?;
                ledger.record(&format!("done {}", step.id))?;
                Ok(Outcome::Appended)
            } else {
                Err(conflict(path, step, offset, len))
            }
        }
        None => {
            interrupted()?;
            ledger.record(&format!("begin {} {len}", step.id))?;
            let added = payload(&current, &step.lines);
            replace_with(path, &current, &added, &interrupted)?;
            ledger.record(&format!("done {}", step.id))?;
            Ok(Outcome::Appended)
        }
    }
}

/// The file's content, `None` if it does not exist. Only a regular file is read: through a
/// symlink, the step copied whatever it pointed at (`/etc/shadow`, another pod's secret) into
/// a regular file in the volume, where `beacon serve` shows it; a FIFO blocked the step.
fn read_regular(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Error::NotRegular {
                path: path.to_path_buf(),
                kind: "a symlink",
            });
        }
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot read", path, e))?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else {
            "a special file"
        };
        return Err(Error::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    let mut content = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut content)
        .map_err(|e| Error::io("cannot read", path, e))?;
    Ok(Some(content))
}

fn conflict(path: &Path, step: &Step, offset: u64, found: u64) -> Error {
    Error::LedgerConflict {
        path: path.to_path_buf(),
        id: step.id.clone(),
        expected: offset,
        found,
    }
}

/// The bytes a step adds after `base`: a newline first if `base` lacks a final one, so the
/// lines stay lines, then each line with its newline.
fn payload(base: &[u8], lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    if base.last().is_some_and(|&b| b != b'\n') {
        out.push(b'\n');
    }
    for line in lines {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Replaces `path` with `base` + `added` atomically, unless `interrupted` says to stop before
/// the rename (the temp file is then dropped, which deletes it).
fn replace_with(
    path: &Path,
    base: &[u8],
    added: &[u8],
    interrupted: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let mut contents = Vec::with_capacity(base.len() + added.len());
    contents.extend_from_slice(base);
    contents.extend_from_slice(added);
    let tmp = fsutil::write_temp(path, &contents)?;
    interrupted()?;
    let (file, tmp_path) = tmp.into_parts();
    fsutil::persist(tmp_path, path)?;
    // Closed only after the rename: its flock marks the temp file as live until then.
    drop(file);
    Ok(())
}

/// The append-only ledger, held under an exclusive lock until dropped so that two steps on
/// the same file (a misconfigured pod) serialise instead of interleaving.
struct Ledger {
    file: File,
    path: PathBuf,
    states: HashMap<String, State>,
}

impl Ledger {
    fn open(path: &Path) -> Result<Self> {
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| Error::io("cannot open ledger", path, e))?;
        if !existed {
            fsutil::fsync_dir(&fsutil::parent_dir(path))?;
        }
        file.lock()
            .map_err(|e| Error::io("cannot lock ledger", path, e))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| Error::io("cannot read ledger", path, e))?;
        Ok(Self {
            states: parse(&text),
            file,
            path: path.to_path_buf(),
        })
    }

    fn record(&mut self, record: &str) -> Result<()> {
        self.file
            .write_all(format!("{record}\n").as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io("cannot write ledger", &self.path, e))
    }

    fn reset(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io("cannot reset ledger", &self.path, e))?;
        self.states.clear();
        Ok(())
    }
}

/// Later records win. A final line without its newline is a write torn by a crash and is
/// ignored, as are lines this version does not understand.
fn parse(text: &str) -> HashMap<String, State> {
    let mut states = HashMap::new();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    for line in complete.lines() {
        let mut words = line.split_ascii_whitespace();
        match (
            words.next(),
            words.next(),
            words.next().map(str::parse::<u64>),
        ) {
            (Some("begin"), Some(id), Some(Ok(offset))) => {
                states.insert(id.to_owned(), State::Begun { offset });
            }
            (Some("done"), Some(id), None) => {
                states.insert(id.to_owned(), State::Done);
            }
            _ => tracing::warn!(line, "ignoring an unrecognised ledger line"),
        }
    }
    states
}

/// `beacon init write --help`: what the step does and guarantees.
pub const ABOUT: &str = "\
Append lines to a file durably and exactly once per step.

Init containers run again when a pod restarts and an emptyDir keeps their output, so a plain
append would duplicate lines. Each step has an id (--id, or by default derived from its lines)
and a hidden ledger beside the file (.NAME.steps) records the applied steps: a step already in
the ledger does nothing. The new content replaces the file by temp file + fsync + rename, and
the ledger records `begin` before and `done` after, so a crash at any point is recovered on
the next run without duplicating or losing the lines; temp files a killed run left are removed.
Deleting the file, or truncating it to 0 bytes, resets its ledger.

Exit status: 0 appended (or already applied), 1 failed, 2 bad arguments, 143/130 interrupted
by SIGTERM/SIGINT (the step stops at a safe point; a re-run completes it exactly once).";

/// `beacon init write --help`: how an init container uses it.
pub const EXAMPLE: &str = "\
Kubernetes — a queue of init containers, each adding one line, in order:
  initContainers:
    - name: line-1
      image: beacon:latest
      args: [init, write, /init_data/example.txt, --line, bla-bla]
      volumeMounts: [{ name: init-data, mountPath: /init_data }]
    - name: line-2
      image: beacon:latest
      args: [init, write, /init_data/example.txt, --line, whoa]
      volumeMounts: [{ name: init-data, mountPath: /init_data }]
    - name: line-3
      image: beacon:latest
      args: [init, write, /init_data/example.txt, --line, this is the 14th lab]
      volumeMounts: [{ name: init-data, mountPath: /init_data }]

Result, however often the pod restarts: bla-bla, whoa, this is the 14th lab — one per line.";

#[cfg(test)]
mod tests {
    use super::*;

    fn step(lines: &[&str]) -> Step {
        Step::new(lines.iter().map(|s| s.to_string()).collect(), None).unwrap()
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn queue_of_three_then_rerun_gives_three_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("example.txt");
        for _ in 0..2 {
            for line in ["bla-bla", "whoa", "this is the 14th lab"] {
                append_lines(&f, &step(&[line])).unwrap();
            }
        }
        assert_eq!(read(&f), "bla-bla\nwhoa\nthis is the 14th lab\n");
        assert_eq!(
            append_lines(&f, &step(&["whoa"])).unwrap(),
            Outcome::AlreadyDone
        );
    }

    #[test]
    fn crash_after_rename_before_done_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.txt");
        let s = step(&["one"]);
        fs::write(&f, "one\n").unwrap();
        fs::write(ledger_path(&f), format!("begin {} 0\n", s.id)).unwrap();
        assert_eq!(append_lines(&f, &s).unwrap(), Outcome::Recovered);
        assert_eq!(read(&f), "one\n");
        assert_eq!(append_lines(&f, &s).unwrap(), Outcome::AlreadyDone);
    }

    #[test]
    fn crash_before_rename_appends_on_rerun() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.txt");
        let s = step(&["two"]);
        fs::write(&f, "one\n").unwrap();
        fs::write(ledger_path(&f), format!("begin {} 4\n", s.id)).unwrap();
        assert_eq!(append_lines(&f, &s).unwrap(), Outcome::Appended);
        assert_eq!(read(&f), "one\ntwo\n");
    }

    #[test]
    fn a_file_changed_behind_the_ledger_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.txt");
        let s = step(&["two"]);
        fs::write(&f, "one\nsomething else\n").unwrap();
        fs::write(ledger_path(&f), format!("begin {} 4\n", s.id)).unwrap();
        let err = append_lines(&f, &s).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LedgerConflict {
                    expected: 4,
                    found: 19,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_cancelled_step_leaves_the_file_and_finishes_on_rerun() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.txt");
        fs::write(&f, "one\n").unwrap();
        let s = step(&["two"]);
        let err = append_lines_unless(&f, &s, &AtomicBool::new(true)).unwrap_err();
        assert!(matches!(err, Error::Interrupted), "{err}");
        assert_eq!(read(&f), "one\n");
        assert_eq!(append_lines(&f, &s).unwrap(), Outcome::Appended);
        assert_eq!(read(&f), "one\ntwo\n");
    }

    #[test]
    fn torn_ledger_line_is_ignored() {
        let states = parse("begin a 0\ndone a\nbegin b 4\ndon");
        assert_eq!(states.get("a"), Some(&State::Done));
        assert_eq!(states.get("b"), Some(&State::Begun { offset: 4 }));
        assert_eq!(states.len(), 2);
    }

    #[test]
    fn deleting_the_file_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.txt");
        append_lines(&f, &step(&["a"])).unwrap();
        fs::remove_file(&f).unwrap();
        assert_eq!(append_lines(&f, &step(&["a"])).unwrap(), Outcome::Appended);
        assert_eq!(read(&f), "a\n");
    }

    #[test]
    fn missing_final_newline_is_added_and_multiple_lines_are_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.txt");
        fs::write(&f, "head").unwrap();
        append_lines(&f, &step(&["a", "b"])).unwrap();
        append_lines(&f, &step(&["a", "b"])).unwrap();
        assert_eq!(read(&f), "head\na\nb\n");
    }

    #[test]
    fn explicit_ids_identify_steps_and_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.txt");
        let a = Step::new(vec!["same".into()], Some("first".into())).unwrap();
        let b = Step::new(vec!["same".into()], Some("second".into())).unwrap();
        append_lines(&f, &a).unwrap();
        append_lines(&f, &b).unwrap();
        append_lines(&f, &a).unwrap();
        assert_eq!(read(&f), "same\nsame\n");
        assert!(matches!(
            Step::new(vec!["x".into()], Some("has space".into())),
            Err(Error::InvalidStepId(_))
        ));
        assert!(matches!(
            Step::new(vec!["a\nb".into()], None),
            Err(Error::InvalidLine(_))
        ));
    }
}
