//! `beacon init fetch`: download URLs to files, atomically, with retries.
//!
//! Each attempt streams into a hidden temp file beside the target (`.NAME.XXXXXX.part`),
//! hashing and counting as it goes; only a complete, verified body is fsynced and renamed
//! over the target. Any failure — including the caller dropping the future on SIGTERM —
//! drops the temp file, which deletes it. So the target holds the previous content or the
//! new content, never a prefix, and never an empty file.

use std::{
    path::{Path, PathBuf},
    pin::Pin,
    time::Duration,
};

use async_compression::tokio::bufread::GzipDecoder;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::io::StreamReader;

use crate::{
    Error, Result, fsutil,
    progress::{self, Progress},
    resolve::Resolver,
    retry::{self, Failure, RetryPolicy},
    tls::{self, ClientOptions},
};

/// Default `--max-bytes`: init data is configuration and pages, not datasets; a larger file
/// needs the flag, and an endless stream cannot fill the volume first.
pub const DEFAULT_MAX_BYTES: u64 = 100 << 20;
/// Default `--deadline`: long enough for the default maximum at ~170 KiB/s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Per-attempt bound on connecting and on any silence from the server (headers or body).
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Refuse bodies larger than this, by Content-Length up front and by counting (decoded
    /// bytes, for a gzip body).
    pub max_bytes: Option<u64>,
    /// Bound on the whole `fetch_all`: every job, attempt and backoff.
    pub deadline: Option<Duration>,
    pub max_redirects: usize,
    pub progress_interval: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_bytes: Some(DEFAULT_MAX_BYTES),
            deadline: Some(DEFAULT_DEADLINE),
            max_redirects: 10,
            progress_interval: Duration::from_secs(5),
        }
    }
}

/// One download: where from, where to, and optionally what it must hash to.
#[derive(Debug, Clone)]
pub struct FetchJob {
    pub url: reqwest::Url,
    pub dest: PathBuf,
    /// Lowercase hex SHA-256.
    pub sha256: Option<String>,
}

impl FetchJob {
    pub fn new(url: &str, dest: impl Into<PathBuf>, sha256: Option<&str>) -> Result<Self> {
        let parsed = reqwest::Url::parse(url).map_err(|e| Error::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason: "only http and https are supported".into(),
            });
        }
        // Port 0 cannot be connected to: every attempt would be refused.
        if parsed.port() == Some(0) {
            return Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason: "port 0 cannot be connected to".into(),
            });
        }
        let dest = dest.into();
        check_dest_syntax(&dest, &parsed)?;
        let sha256 = sha256.map(parse_sha256).transpose()?;
        Ok(Self {
            url: parsed,
            dest,
            sha256,
        })
    }
}

/// `dir/`, `dir/.`, `..`: a path whose last component is not a name can only be a directory,
/// whatever the file system holds, so it is a usage error.
fn check_dest_syntax(dest: &Path, url: &reqwest::Url) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = dest.as_os_str().as_bytes();
    let reason = if bytes.is_empty() {
        "it is empty".to_owned()
    } else {
        let last = bytes.rsplit(|&b| b == b'/').next().unwrap_or_default();
        if !matches!(last, b"" | b"." | b"..") {
            return Ok(());
        }
        format!(
            "it names a directory; give the file's path, e.g. {}",
            dest.join(example_name(url)).display()
        )
    };
    Err(Error::InvalidPath {
        path: dest.display().to_string(),
        reason,
    })
}

/// A file name for the examples in messages: the URL's last path segment, else `index.html`.
fn example_name(url: &reqwest::Url) -> &str {
    url.path_segments()
        .and_then(|mut segments| segments.next_back())
        .filter(|name| !name.is_empty())
        .unwrap_or("index.html")
}

/// Before any request: a target that can never be written fails now, not after the download.
/// Changes nothing on disk (a missing directory is still created only by the first attempt).
fn check_destination(job: &FetchJob) -> Result<()> {
    use std::fs;
    let path = &job.dest;
    let kind = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Some("a directory"),
        // The rename would replace the link itself, not put the file in its directory.
        Ok(m) if m.is_symlink() && fs::metadata(path).is_ok_and(|t| t.is_dir()) => {
            Some("a symlink to a directory")
        }
        _ => None,
    };
    if let Some(kind) = kind {
        return Err(Error::IsDirectory {
            path: path.clone(),
            kind,
            example: path.join(example_name(&job.url)),
        });
    }
    // The nearest existing ancestor of the target's directory must be a directory; missing
    // ones are created later.
    for dir in fsutil::parent_dir(path).ancestors() {
        if dir.as_os_str().is_empty() {
            break;
        }
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(Error::ParentNotDirectory {
                    path: path.clone(),
                    blocker: dir.to_path_buf(),
                });
            }
            // Missing, or beneath a non-directory that a step further up finds.
            Err(_) => continue,
        }
    }
    Ok(())
}

/// [`check_destination`] for every job, off the runtime's workers (a stat can block on a
/// hung mount, and SIGTERM must still end the step).
async fn check_destinations(jobs: &[FetchJob]) -> Result<()> {
    let jobs = jobs.to_vec();
    tokio::task::spawn_blocking(move || jobs.iter().try_for_each(check_destination))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// `url` as logs and error messages show it: a password in it masked (`http://user:***@host/`).
/// reqwest sends the credentials as Basic auth; they must not end up in `kubectl logs` too.
pub(crate) fn shown(url: &reqwest::Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut masked = url.clone();
    // Only fails for URLs that cannot have credentials, and this one has them.
    let _ = masked.set_password(Some("***"));
    masked.to_string()
}

fn parse_sha256(s: &str) -> Result<String> {
    let s = s.trim().to_ascii_lowercase();
    let mut buf = [0u8; 32];
    hex::decode_to_slice(&s, &mut buf).map_err(|_| Error::InvalidChecksum(s.clone()))?;
    Ok(s)
}

/// What a successful fetch did.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: u64,
    pub sha256: String,
    pub attempts: u32,
    pub elapsed: Duration,
    /// The target already had the expected checksum, so nothing was downloaded.
    pub skipped: bool,
}

pub struct Fetcher {
    client: reqwest::Client,
    opts: FetchOptions,
    /// When `opts.deadline` runs out, counted from the fetcher's creation.
    deadline_at: Option<tokio::time::Instant>,
}

impl Fetcher {
    pub fn new(opts: FetchOptions) -> Result<Self> {
        let client = tls::http_client(&ClientOptions {
            stall_timeout: opts.timeout,
            max_redirects: opts.max_redirects,
            resolver: Resolver::from_system(),
        })?;
        let deadline_at = opts.deadline.map(|d| tokio::time::Instant::now() + d);
        Ok(Self {
            client,
            opts,
            deadline_at,
        })
    }

    /// Downloads one job, within what is left of the deadline. On expiry the attempt in flight
    /// is dropped, which deletes its temp file. A target that is a directory, or one with a
    /// file where its directory must be, fails before any request.
    pub async fn fetch(&self, job: &FetchJob) -> Result<Fetched> {
        check_destinations(std::slice::from_ref(job)).await?;
        self.fetch_checked(job).await
    }

    /// Fetches all jobs concurrently; the first failure cancels (and cleans up) the rest. Every
    /// target is checked first, so one that is a directory fails the step before any request.
    pub async fn fetch_all(&self, jobs: &[FetchJob]) -> Result<Vec<Fetched>> {
        check_destinations(jobs).await?;
        futures_util::future::try_join_all(jobs.iter().map(|job| self.fetch_checked(job))).await
    }

    async fn fetch_checked(&self, job: &FetchJob) -> Result<Fetched> {
        let (Some(at), Some(deadline)) = (self.deadline_at, self.opts.deadline) else {
            return self.fetch_unbounded(job).await;
        };
        tokio::time::timeout_at(at, self.fetch_unbounded(job))
            .await
            .unwrap_or_else(|_| {
                Err(Error::Deadline {
                    url: shown(&job.url),
                    deadline,
                })
            })
    }

    async fn fetch_unbounded(&self, job: &FetchJob) -> Result<Fetched> {
        let url = &shown(&job.url);
        if let Some(done) = already_there(job).await {
            let path = job.dest.display();
            tracing::info!(url, path = %path, sha256 = %done.sha256, "{path} already has the expected sha256; not downloading");
            return Ok(done);
        }
        fsutil::sweep_stale_temps(&job.dest);
        let mut attempts = 0;
        let mut fetched = retry::run(&self.opts.retry, url, |n| {
            attempts = n;
            self.attempt(job)
        })
        .await?;
        fetched.attempts = attempts;
        tracing::info!(
            url,
            path = %job.dest.display(),
            bytes = fetched.bytes,
            elapsed = %progress::human_duration(fetched.elapsed),
            rate = %progress::rate(fetched.bytes, fetched.elapsed),
            sha256 = %fetched.sha256,
            attempts = fetched.attempts,
            "fetched {} to {}", progress::human_bytes(fetched.bytes), job.dest.display(),
        );
        Ok(fetched)
    }

    /// One try: the request, the body into a temp file beside the target, then the checks
    /// and the rename.
    async fn attempt(&self, job: &FetchJob) -> Result<Fetched, Failure> {
        let url = &shown(&job.url);
        let resp = self.request(job, url).await?;
        let coding = Coding::of(&resp, url)?;
        // A gzip body's Content-Length counts encoded bytes; the limits apply to decoded ones.
        let expected_len = resp.content_length().filter(|_| coding == Coding::Identity);
        if let (Some(limit), Some(len)) = (self.opts.max_bytes, expected_len)
            && len > limit
        {
            return Err(Error::TooLarge {
                url: url.to_owned(),
                limit,
                detail: format!("Content-Length is {len}"),
            }
            .into());
        }
        let tmp = fsutil::temp_beside(&job.dest)?;
        let (file, tmp_path) = tmp.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let mut progress = Progress::new(url, expected_len, self.opts.progress_interval);
        let body = coding.decode(resp);
        let actual = self
            .save(body, &mut file, &tmp_path, &mut progress, url)
            .await?;
        // hyper already rejects a body shorter than its Content-Length; this guards the
        // invariant here, where a truncated file would otherwise be renamed into place.
        if let Some(len) = expected_len
            && progress.bytes != len
        {
            return Err(Failure::transient(format!(
                "body truncated: got {} of {len} bytes",
                progress.bytes
            )));
        }
        if let Some(expected) = &job.sha256
            && *expected != actual
        {
            return Err(Error::Checksum {
                url: url.to_owned(),
                expected: expected.clone(),
                actual,
            }
            .into());
        }
        let dest = job.dest.clone();
        tokio::task::spawn_blocking(move || fsutil::persist(tmp_path, &dest))
            .await
            .map_err(|source| {
                Failure::Fatal(Error::Task {
                    what: "rename",
                    source,
                })
            })??;
        // Closed only now: its flock marks the temp file as live to a concurrent run's sweep
        // until the rename is done.
        drop(file);
        Ok(Fetched {
            bytes: progress.bytes,
            sha256: actual,
            attempts: 0,
            elapsed: progress.elapsed(),
            skipped: false,
        })
    }

    /// Sends the request; a response that is not 2xx is a failure, retryable or not.
    async fn request(&self, job: &FetchJob, url: &str) -> Result<reqwest::Response, Failure> {
        let resp = self
            .client
            .get(job.url.clone())
            .header(reqwest::header::ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .map_err(|e| retry::classify(url, e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let status_text = status.to_string();
        Err(if retry::retryable_status(status) {
            Failure::Transient {
                reason: format!("HTTP {status_text}"),
                retry_after: retry::retry_after(resp.headers()),
            }
        } else if status.is_redirection() {
            Failure::Fatal(Error::Redirect {
                url: url.to_owned(),
                status: status_text,
                reason: retry::unfollowed_redirect(resp.headers()),
            })
        } else {
            Failure::Fatal(Error::Status {
                url: url.to_owned(),
                status: status_text,
            })
        })
    }

    /// Streams the decoded `body` into `file`, within `--max-bytes`, fsyncs it and returns its
    /// SHA-256.
    async fn save(
        &self,
        mut body: impl AsyncRead + Unpin,
        file: &mut tokio::fs::File,
        tmp_path: &Path,
        progress: &mut Progress<'_>,
        url: &str,
    ) -> Result<String, Failure> {
        let io_err = |e| Error::io("cannot write", tmp_path.to_path_buf(), e);
        let mut hasher = Sha256::new();
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = body
                .read(&mut chunk)
                .await
                .map_err(|e| body_failure(url, e))?;
            if n == 0 {
                break;
            }
            if let Some(limit) = self.opts.max_bytes
                && progress.bytes + n as u64 > limit
            {
                return Err(Error::TooLarge {
                    url: url.to_owned(),
                    limit,
                    detail: "streamed body kept going".into(),
                }
                .into());
            }
            hasher.update(&chunk[..n]);
            file.write_all(&chunk[..n]).await.map_err(io_err)?;
            progress.add(n);
        }
        file.flush().await.map_err(io_err)?;
        file.sync_all().await.map_err(io_err)?;
        Ok(hex::encode(hasher.finalize()))
    }
}

/// Most bytes read from the body (after decoding) at a time.
const CHUNK: usize = 64 * 1024;

/// How the body is encoded: beacon asks for gzip or nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Coding {
    Identity,
    Gzip,
}

impl Coding {
    /// Content codings are case-insensitive (RFC 9110 §8.4.1) and `x-gzip` is gzip (§8.4.1.3).
    /// One we did not ask for and cannot decode fails: its bytes must not be saved as the file.
    fn of(resp: &reqwest::Response, url: &str) -> Result<Self, Failure> {
        let Some(value) = resp.headers().get(reqwest::header::CONTENT_ENCODING) else {
            return Ok(Coding::Identity);
        };
        let coding = value.as_bytes().trim_ascii();
        if coding.eq_ignore_ascii_case(b"identity") {
            Ok(Coding::Identity)
        } else if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
            Ok(Coding::Gzip)
        } else {
            Err(Error::Encoding {
                url: url.to_owned(),
                encoding: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            }
            .into())
        }
    }

    /// The body as decoded bytes.
    fn decode(self, resp: reqwest::Response) -> Pin<Box<dyn AsyncRead + Send>> {
        let raw = StreamReader::new(
            resp.bytes_stream()
                .map(|r| r.map_err(std::io::Error::other)),
        );
        match self {
            Coding::Identity => Box::pin(raw),
            Coding::Gzip => {
                let mut gzip = GzipDecoder::new(raw);
                // `gzip -c a b` (and some servers) write several members: all are the body.
                gzip.multiple_members(true);
                Box::pin(gzip)
            }
        }
    }
}

/// A failed body read: the network's failures classified as any request's; a gzip stream that
/// does not decode is retried too, since a cut connection ends one that way.
fn body_failure(url: &str, e: std::io::Error) -> Failure {
    let reason = format!("cannot decode the gzip body: {e}");
    match e
        .into_inner()
        .map(|inner| inner.downcast::<reqwest::Error>())
    {
        Some(Ok(network)) => retry::classify(url, *network),
        _ => Failure::transient(reason),
    }
}

/// With `--sha256`, an init container re-run after a pod restart (emptyDir kept) finds the
/// file already complete and skips the network entirely.
async fn already_there(job: &FetchJob) -> Option<Fetched> {
    let expected = job.sha256.clone()?;
    let dest = job.dest.clone();
    // Hashing a large file is blocking work; keep it off the runtime's workers.
    let (bytes, actual) = tokio::task::spawn_blocking(move || hash_file(&dest))
        .await
        .ok()?
        .ok()?;
    (actual == expected).then_some(Fetched {
        bytes,
        sha256: actual,
        attempts: 0,
        elapsed: Duration::ZERO,
        skipped: true,
    })
}

fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let (mut hasher, mut total, mut buf) = (Sha256::new(), 0u64, vec![0u8; 64 * 1024]);
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((total, hex::encode(hasher.finalize())));
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

/// Splits `URL=PATH` at the last `=`: query strings often contain `=`, file paths rarely do.
pub fn split_pair(pair: &str) -> Option<(&str, &Path)> {
    let (url, path) = pair.rsplit_once('=')?;
    (!url.is_empty() && !path.is_empty()).then(|| (url, Path::new(path)))
}

/// `beacon init fetch --help`: what the step does and guarantees.
pub const ABOUT: &str = "\
Download URLs to files, for an init container in an image with no shell and no wget.

The body goes to a hidden temp file beside the target (.NAME.XXXXXX.part), is fsynced and only
then renamed over the target: a failed, interrupted or killed download never leaves a partial
or empty file at PATH. http and https are supported; TLS trusts the system CA bundle
(/etc/ssl/certs/ca-certificates.crt, as distroless ships it) or built-in Mozilla roots.

PATH is the file's own path; missing directories above it are created. A PATH that is a
directory (or a symlink to one) fails before any request is made.

Connect errors, timeouts, resets, truncated bodies and HTTP 5xx/408/429 are retried with
exponential backoff and jitter, honouring Retry-After. Other 4xx, untrusted certificates,
redirect loops, redirects to non-http(s) URLs, --max-bytes and --sha256 mismatches fail at
once. Progress is logged to stderr every --progress-interval, and one summary line at the end.

Bounded by default: a body over --max-bytes (100MiB) and a step not finished within
--deadline (10m) fail, so a huge or endless stream cannot fill the volume and a trickle cannot
hold the pod. Raise them for large files.

gzip: beacon asks for gzip and saves the decoded body (what a browser would show); --sha256
and --max-bytes apply to the decoded bytes. A body in another encoding is refused. Two runs
fetching the same PATH at once do not disturb each other.

Exit status: 0 downloaded (or already present with the right --sha256), 1 failed (the reason
is the last stderr line, so `kubectl logs -c` shows it and the kubelet restarts the init
container), 2 bad arguments, 143/130 interrupted by SIGTERM/SIGINT.";

/// `beacon init fetch --help`: how an init container uses it.
pub const EXAMPLE: &str = "\
Kubernetes:
  initContainers:
    - name: fetch-index
      image: beacon:latest          # the app image: nothing else to pull
      args: [init, fetch, \"http://info.cern.ch\", --to, /init_data/index.html,
             --timeout, 20s, --retries, \"5\", --max-bytes, \"10000000\"]
      volumeMounts:
        - { name: init-data, mountPath: /init_data }
  volumes:
    - { name: init-data, emptyDir: {} }

Several files in one step:
  beacon init fetch https://a.example/x.json=/init_data/x.json https://b.example/y=/init_data/y";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_last_equals() {
        assert_eq!(
            split_pair("http://h/?a=b=/d/f"),
            Some(("http://h/?a=b", Path::new("/d/f")))
        );
        assert_eq!(
            split_pair("http://h/=out"),
            Some(("http://h/", Path::new("out")))
        );
        assert_eq!(split_pair("http://h/"), None);
        assert_eq!(split_pair("http://h/="), None);
    }

    #[test]
    fn checksums_are_validated_and_normalised() {
        let hex64 = "AB".repeat(32);
        assert_eq!(parse_sha256(&hex64).unwrap(), "ab".repeat(32));
        assert!(matches!(
            parse_sha256("abc"),
            Err(Error::InvalidChecksum(_))
        ));
        assert!(matches!(
            parse_sha256(&"zz".repeat(32)),
            Err(Error::InvalidChecksum(_))
        ));
    }

    #[test]
    fn passwords_are_masked_in_what_is_shown() {
        let url = reqwest::Url::parse("http://user:s3cret@h:8080/x?y=1").unwrap();
        assert_eq!(shown(&url), "http://user:***@h:8080/x?y=1");
        let plain = reqwest::Url::parse("https://user@h/x").unwrap();
        assert_eq!(shown(&plain), "https://user@h/x");
    }

    #[test]
    fn only_http_urls() {
        assert!(FetchJob::new("http://h:0/x", "x", None).is_err());
        assert!(FetchJob::new("ftp://h/x", "x", None).is_err());
        assert!(FetchJob::new("not a url", "x", None).is_err());
        assert!(FetchJob::new("https://h/x", "x", None).is_ok());
    }

    #[test]
    fn a_path_that_can_only_be_a_directory_is_refused() {
        for dest in ["d/", "/", ".", "d/.", "..", "d/..", ""] {
            assert!(
                matches!(
                    FetchJob::new("http://h/a/x.json", dest, None),
                    Err(Error::InvalidPath { .. })
                ),
                "{dest:?}"
            );
        }
        for dest in ["x", "d/x", "/d/.x", "d/..x", "./x"] {
            assert!(FetchJob::new("http://h/", dest, None).is_ok(), "{dest:?}");
        }
        let e = FetchJob::new("http://h/a/x.json?v=1", "d/", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid target path "d/": it names a directory; give the file's path, e.g. d/x.json"#
        );
        let e = FetchJob::new("http://h", "d/", None).unwrap_err();
        assert!(e.to_string().ends_with("e.g. d/index.html"), "{e}");
    }

    #[test]
    fn url_schemes_are_case_insensitive() {
        // RFC 3986 §3.1; the parsed URL carries the scheme lowercased, so TLS is chosen by it.
        for (url, scheme) in [
            ("HTTP://h/x", "http"),
            ("Http://h/x", "http"),
            ("HTTPS://h/x", "https"),
            ("hTtPs://h/x", "https"),
        ] {
            let job = FetchJob::new(url, "x", None).unwrap();
            assert_eq!(job.url.scheme(), scheme, "{url}");
        }
        assert!(FetchJob::new("FTP://h/x", "x", None).is_err());
    }
}
