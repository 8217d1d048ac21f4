use std::{io, path::PathBuf, time::Duration};

/// Every variant renders as one line: the binary prints it as the init container's last log
/// line, which is what `kubectl logs -c` and the pod's termination message show. A variant with
/// a `#[source]` does not repeat it in its own message: the binary prints the chain
/// (`beacon_tls::error_chain`), and saying it in both places printed every cause twice.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot set up TLS")]
    Tls {
        #[source]
        source: beacon_tls::TlsError,
    },
    #[error("cannot set up the HTTP client")]
    Client {
        #[source]
        source: reqwest::Error,
    },
    /// A blocking step (a rename) ran on a thread that panicked or was cancelled.
    #[error("the {what} task failed")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{url}: HTTP {status} (not retried: a client error will not fix itself)")]
    Status { url: String, status: String },
    /// A 3xx the client did not follow: its Location is missing or not http(s) (`file:`, say).
    #[error("{url}: HTTP {status}: {reason}")]
    Redirect {
        url: String,
        status: String,
        reason: String,
    },
    #[error("{url}: {reason}")]
    Request { url: String, reason: String },
    #[error("{url}: gave up after {attempts} attempt(s): {last}")]
    RetriesExhausted {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("{url}: response exceeds the limit of {limit} bytes ({detail})")]
    TooLarge {
        url: String,
        limit: u64,
        detail: String,
    },
    #[error("{url}: not finished within the deadline of {}", humantime::format_duration(*deadline))]
    Deadline { url: String, deadline: Duration },
    #[error(
        "{url}: the body is encoded as {encoding:?}, which beacon cannot decode (it asks for gzip or none)"
    )]
    Encoding { url: String, encoding: String },
    #[error("{url}: sha256 mismatch: expected {expected}, got {actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    /// A target path that can only name a directory (`dir/`, `dir/.`) or is empty.
    #[error("invalid target path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    /// A fetch target that is a directory: the body cannot be renamed over it.
    #[error("{} is {kind}; give the file's path, e.g. {}", path.display(), example.display())]
    IsDirectory {
        path: PathBuf,
        kind: &'static str,
        example: PathBuf,
    },
    /// Something other than a directory where the target's directory (or one above) must be.
    #[error("cannot create {}: {} is not a directory", path.display(), blocker.display())]
    ParentNotDirectory { path: PathBuf, blocker: PathBuf },
    #[error("invalid sha256 {0:?}: expected 64 hex digits")]
    InvalidChecksum(String),
    #[error("invalid step id {0:?}: use 1-128 characters from A-Z a-z 0-9 . _ : -")]
    InvalidStepId(String),
    #[error("invalid line {0:?}: a line cannot contain a newline")]
    InvalidLine(String),
    #[error("{}: changed since step {id} began (expected {expected} bytes before its lines, found {found}); refusing to guess — remove the file and its ledger to start over", path.display())]
    LedgerConflict {
        path: PathBuf,
        id: String,
        expected: u64,
        found: u64,
    },
    #[error("{} is {kind}, not a regular file; refusing to write through it", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    /// A signal asked a step to stop, and it did so before changing anything.
    #[error("interrupted before the step was applied")]
    Interrupted,
    #[error("invalid wait target {target:?}: {reason}")]
    InvalidTarget { target: String, reason: String },
    #[error("timed out after {} waiting for {target}: {last}", humantime::format_duration(*waited))]
    WaitTimeout {
        target: String,
        waited: Duration,
        last: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source: without_tempfile_path(source),
        }
    }
}

/// tempfile wraps its I/O errors to append ` at path "…"`; our message names the path already
/// (`cannot write /v/.x.AbC.part: No space left on device (os error 28) at path "/v/.x.AbC.part"`
/// said it twice). The wrapper is private, so its suffix is cut from the text.
fn without_tempfile_path(e: io::Error) -> io::Error {
    if e.get_ref().is_none() {
        return e; // a plain OS error: no wrapper
    }
    let msg = e.to_string();
    match msg.rfind(" at path \"") {
        Some(at) => io::Error::new(e.kind(), msg[..at].to_owned()),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_temp_file_error_names_its_path_once() {
        // tempfile appends ` at path "…/.tmpXXXX"` to its I/O errors; the message already
        // says where ("cannot write /v/.x.AbC.part: No space left on device … at path …").
        let dir = Path::new("/nonexistent-beacon-dir");
        let e = tempfile::Builder::new().tempfile_in(dir).unwrap_err();
        let err = Error::io("cannot create a temp file in", dir, e);
        assert_eq!(
            beacon_tls::error_chain(&err),
            "cannot create a temp file in /nonexistent-beacon-dir: No such file or directory (os error 2)"
        );
    }
}
