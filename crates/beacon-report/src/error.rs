//! The library's error type. Every message is one line: `beacon report` prints it as is.

/// What can stop a report as a whole. Problems confined to one question (a metric that is not
/// scraped, a query Prometheus rejects) are not errors: they become that answer's notes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {what} URL {url:?}: {reason}")]
    BadUrl {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "{url} answered HTTP {status} with {body:?}, not the Prometheus API; is the URL right (e.g. http://prometheus:9090, plus any path prefix)?"
    )]
    NotTheApi {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: Prometheus refused the request ({error_type}): {message}")]
    Api {
        url: String,
        error_type: String,
        message: String,
    },
    #[error("{url} answered HTTP {status}: {advice}")]
    Denied {
        url: String,
        /// The code, and the scheme the server asks for, if it says.
        status: String,
        advice: String,
    },
    #[error(
        "{url} answered HTTP {status}, a redirect to {to}; credentials are sent only to the URL given, so beacon does not follow it: give the API's own URL (a login page means the endpoint wants a token or basic auth)"
    )]
    Redirected {
        url: String,
        status: u16,
        to: String,
    },
    /// A query that failed, with its PromQL, so its answer can say what it was asking.
    #[error("query {promql} failed")]
    Query {
        promql: String,
        #[source]
        source: Box<Error>,
    },
    #[error("{what} credentials: {reason}")]
    Credentials { what: &'static str, reason: String },
    #[error("{what} credentials: cannot read {name} {}", file.display())]
    CredentialFile {
        what: &'static str,
        /// What the caller calls the setting (`access::Names`).
        name: String,
        file: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} credentials: {name}")]
    CaFile {
        what: &'static str,
        name: String,
        #[source]
        source: beacon_tls::CaFileError,
    },
    #[error("bad extra header: {reason}")]
    BadHeader { reason: String },
    #[error("bad time range: {0}")]
    BadRange(String),
    #[error("bad selector {selector:?}: {reason}")]
    BadSelector { selector: String, reason: String },
    #[error("bad workload {workload:?}: {reason}")]
    BadWorkload { workload: String, reason: String },
    #[error("cannot set up TLS")]
    Tls {
        #[source]
        source: beacon_tls::TlsError,
    },
    #[error("cannot build the HTTP client")]
    Client {
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot render the report: {0}")]
    Render(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// First line of a response body, shortened, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut s: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        s.push('…');
    }
    s
}
