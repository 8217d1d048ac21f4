//! Credentials and trust for one endpoint (Prometheus or Alertmanager): a bearer token file,
//! basic auth, extra headers (a tenant's `X-Scope-OrgID`) and a private CA.
//!
//! Secrets stay out of every message: `Debug` shows `<redacted>`, errors name files and header
//! names but never values, and header values are marked sensitive for the HTTP stack.

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use crate::{Error, Result};

/// A secret string. `Debug` never shows it; [`Secret::expose`] is the only way to read it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Which endpoint the credentials are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Prometheus,
    Alertmanager,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Prometheus => "Prometheus",
            Endpoint::Alertmanager => "Alertmanager",
        }
    }
}

/// What the caller calls each setting (a flag, an environment variable), so that a message
/// says what to change; this library does not know its caller's command line. The defaults
/// are plain words.
#[derive(Debug, Clone)]
pub struct Names {
    pub bearer_token_file: String,
    pub basic_auth_user: String,
    pub basic_auth_password_file: String,
    /// Where a password given by value ([`Password::Env`]) comes from.
    pub basic_auth_password: String,
    pub header: String,
    pub ca_file: String,
}

impl Default for Names {
    fn default() -> Self {
        Self {
            bearer_token_file: "the bearer token file".into(),
            basic_auth_user: "the basic-auth user".into(),
            basic_auth_password_file: "the basic-auth password file".into(),
            basic_auth_password: "the basic-auth password".into(),
            header: "an extra header".into(),
            ca_file: "the CA file".into(),
        }
    }
}

/// Where the basic-auth password comes from.
#[derive(Debug, Clone)]
pub enum Password {
    File(PathBuf),
    /// Given by value (`beacon report` reads it from the environment).
    Env(Secret),
}

/// A `NAME:VALUE` header to send on every request.
#[derive(Debug, Clone)]
pub struct Header {
    pub name: String,
    pub value: Secret,
}

impl Header {
    /// Parses `NAME:VALUE` (spaces around the value are dropped). Errors show the name at most:
    /// the value may be a credential.
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = |reason: &str| Error::BadHeader {
            reason: reason.to_owned(),
        };
        let Some((name, value)) = raw.split_once(':') else {
            return Err(bad(
                "expected NAME:VALUE, e.g. X-Scope-OrgID:tenant-1 (no ':' in the value given)",
            ));
        };
        let name = name.trim();
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            // Not repeated: a mistyped argument may have a secret on either side of the ':'.
            return Err(bad(
                "the part before ':' is not a valid header name (letters, digits, '-')",
            ));
        }
        let value = value.trim();
        if HeaderValue::from_str(value).is_err() {
            return Err(bad(&format!(
                "{name}: the value has characters a header cannot carry"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            value: Secret::new(value),
        })
    }
}

/// What `beacon report` sends to and trusts of one endpoint, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth_user: Option<String>,
    pub basic_auth_password: Option<Password>,
    pub headers: Vec<Header>,
    /// Trust only this PEM bundle's CAs instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// How the caller names these settings, for messages.
    pub names: Names,
}

/// The credentials actually sent, described without secrets, for error messages.
#[derive(Debug, Clone, Default)]
pub(crate) enum Sent {
    #[default]
    Nothing,
    Bearer(PathBuf),
    Basic {
        user: String,
        password_from: String,
    },
}

/// An HTTP client for one endpoint and what it sends.
#[derive(Debug, Clone)]
pub(crate) struct Authorized {
    pub endpoint: Endpoint,
    pub http: reqwest::Client,
    pub sent: Sent,
    /// Names (never values) of the extra headers.
    pub header_names: Vec<String>,
    pub names: Names,
    /// Every credential sent, as it may come back in a server's text.
    secrets: Vec<Secret>,
}

/// The `Authorization` header one endpoint gets, what it is, and the secrets in it.
struct Credential {
    value: HeaderValue,
    sent: Sent,
    secrets: Vec<Secret>,
}

impl Access {
    /// Reads the files and builds the endpoint's client. Every error names the file or setting
    /// to fix, never a secret.
    pub(crate) fn authorize(&self, endpoint: Endpoint, timeout: Duration) -> Result<Authorized> {
        let mut headers = HeaderMap::new();
        let (sent, mut secrets) = match self.credential(endpoint)? {
            Some(c) => {
                headers.insert(AUTHORIZATION, c.value);
                (c.sent, c.secrets)
            }
            None => (Sent::Nothing, Vec::new()),
        };
        let header_names = self.extra_headers(endpoint, &mut headers, &mut secrets)?;
        let http = client(self.tls(endpoint)?, headers, timeout)?;
        Ok(Authorized {
            endpoint,
            http,
            sent,
            header_names,
            names: self.names.clone(),
            secrets,
        })
    }

    fn fail(&self, endpoint: Endpoint, reason: String) -> Error {
        Error::Credentials {
            what: endpoint.name(),
            reason,
        }
    }

    /// A bearer token or basic auth, which are alternatives, or neither.
    fn credential(&self, endpoint: Endpoint) -> Result<Option<Credential>> {
        let n = &self.names;
        match (&self.bearer_token_file, &self.basic_auth_user) {
            (Some(_), Some(_)) => Err(self.fail(
                endpoint,
                format!(
                    "{} and {} are alternatives; give one",
                    n.bearer_token_file, n.basic_auth_user
                ),
            )),
            (Some(file), None) => self.bearer(endpoint, file).map(Some),
            (None, Some(user)) => self.basic(endpoint, user).map(Some),
            (None, None) if self.basic_auth_password.is_some() => Err(self.fail(
                endpoint,
                format!(
                    "a basic-auth password (from {} or {}) needs {}",
                    n.basic_auth_password_file, n.basic_auth_password, n.basic_auth_user
                ),
            )),
            (None, None) => Ok(None),
        }
    }

    fn bearer(&self, endpoint: Endpoint, file: &Path) -> Result<Credential> {
        let name = &self.names.bearer_token_file;
        let token = read_secret(endpoint, name, file)?;
        let value = sensitive(&format!("Bearer {}", token.expose())).ok_or_else(|| {
            self.fail(
                endpoint,
                format!(
                    "{name} {}: the token has characters a header cannot carry",
                    file.display()
                ),
            )
        })?;
        Ok(Credential {
            value,
            sent: Sent::Bearer(file.to_owned()),
            secrets: vec![token],
        })
    }

    fn basic(&self, endpoint: Endpoint, user: &str) -> Result<Credential> {
        let n = &self.names;
        let (password, password_from) = match &self.basic_auth_password {
            Some(Password::File(file)) => (
                read_secret(endpoint, &n.basic_auth_password_file, file)?,
                format!(
                    "the password in {} ({})",
                    file.display(),
                    n.basic_auth_password_file
                ),
            ),
            Some(Password::Env(secret)) => (secret.clone(), n.basic_auth_password.clone()),
            None => {
                return Err(self.fail(
                    endpoint,
                    format!(
                        "{} needs a password: {} or {}",
                        n.basic_auth_user, n.basic_auth_password_file, n.basic_auth_password
                    ),
                ));
            }
        };
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.expose()).as_bytes());
        Ok(Credential {
            value: sensitive(&format!("Basic {encoded}")).expect("base64 is a valid header"),
            sent: Sent::Basic {
                user: user.to_owned(),
                password_from,
            },
            secrets: vec![password, Secret::new(encoded)],
        })
    }

    /// Adds the extra headers; returns their names.
    fn extra_headers(
        &self,
        endpoint: Endpoint,
        headers: &mut HeaderMap,
        secrets: &mut Vec<Secret>,
    ) -> Result<Vec<String>> {
        let flag = &self.names.header;
        let mut names = Vec::new();
        for header in &self.headers {
            let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
                self.fail(
                    endpoint,
                    format!("{flag}: the part before ':' is not a valid header name"),
                )
            })?;
            if name == AUTHORIZATION && headers.contains_key(AUTHORIZATION) {
                return Err(self.fail(
                    endpoint,
                    format!("{flag} Authorization conflicts with the bearer token or basic auth"),
                ));
            }
            let value = sensitive(header.value.expose()).ok_or_else(|| {
                self.fail(
                    endpoint,
                    format!(
                        "{flag} {}: the value has characters a header cannot carry",
                        header.name
                    ),
                )
            })?;
            headers.append(name, value);
            names.push(header.name.clone());
            secrets.push(header.value.clone());
        }
        Ok(names)
    }

    /// The system's trust roots, or only the CA file's.
    fn tls(&self, endpoint: Endpoint) -> Result<beacon_tls::ClientConfig> {
        match &self.ca_file {
            Some(file) => {
                beacon_tls::client_config_trusting(file).map_err(|source| Error::CaFile {
                    what: endpoint.name(),
                    name: self.names.ca_file.clone(),
                    source,
                })
            }
            None => beacon_tls::client_config().map_err(|source| Error::Tls { source }),
        }
    }
}

/// The endpoint's client: its headers on every request, and no redirect to another origin.
fn client(
    tls: beacon_tls::ClientConfig,
    headers: HeaderMap,
    timeout: Duration,
) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .default_headers(headers)
        // Credentials go to the origin they were given for and nowhere else: a redirect
        // elsewhere (a login page, another host) is answered, not followed.
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let first = &attempt.previous()[0];
            if attempt.previous().len() > 5 {
                attempt.error("too many redirects")
            } else if attempt.url().origin() == first.origin() {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("beacon-report/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|source| Error::Client { source })
}

/// A header value that the HTTP stack must not index, log or show in `Debug`.
fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// The most a token or password file may hold (a service account token is ~1 KB).
const MAX_SECRET_BYTES: u64 = 64 << 10;

/// A token or password file: surrounding whitespace dropped (as Prometheus' own `*_file`
/// settings do, so `echo secret > file` works); empty is an error. Bounded, and never waiting
/// on a FIFO.
fn read_secret(endpoint: Endpoint, name: &str, file: &Path) -> Result<Secret> {
    let fail = |reason: &str| Error::Credentials {
        what: endpoint.name(),
        reason: format!("{name} {}: {reason}", file.display()),
    };
    let bytes = beacon_tls::read_regular_file(file, MAX_SECRET_BYTES).map_err(|source| {
        Error::CredentialFile {
            what: endpoint.name(),
            name: name.to_owned(),
            file: file.to_owned(),
            source,
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|_| fail("the file is not UTF-8 text"))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(fail("the file is empty"));
    }
    Ok(Secret::new(secret))
}

impl Authorized {
    /// Text a server sent (an error message, a body) with every credential this client sends
    /// cut out: a gateway or API error may echo the request's headers back.
    pub(crate) fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }

    /// Warns when credentials would cross a network in clear text: plain `http://` to a host
    /// other than loopback (a port-forward to 127.0.0.1 is fine).
    pub(crate) fn warn_if_plaintext(&self, base: &reqwest::Url) {
        if sends_in_clear(base, &self.sent, !self.header_names.is_empty()) {
            tracing::warn!(
                endpoint = self.endpoint.name(),
                host = base.host_str().unwrap_or(""),
                "credentials are sent over plain http; use an https:// URL"
            );
        }
    }

    /// The one-line explanation of a 401/403 answer: what was sent and what to check.
    pub(crate) fn denied(&self, url: &str, status: u16, challenge: Option<&str>) -> Error {
        let (what, n) = (self.endpoint.name(), &self.names);
        let asks = challenge
            .and_then(|c| c.split_whitespace().next())
            .map(|scheme| format!(" and asks for {scheme} authentication"))
            .unwrap_or_default();
        let headers = if self.header_names.is_empty() {
            String::new()
        } else {
            format!(" (headers sent: {})", self.header_names.join(", "))
        };
        let advice = match (status, &self.sent) {
            (403, _) => format!(
                "{what} (or a gateway in front of it) denies this request{headers}; check the \
                 credentials' permissions (e.g. the token's RBAC) and the tenant header the \
                 gateway expects ({} X-Scope-OrgID:<tenant>)",
                n.header
            ),
            (_, Sent::Nothing) => format!(
                "{what} needs credentials and none were sent{headers}; give {} with {} (or \
                 {}), or {}, and {} for gateway headers",
                n.basic_auth_user,
                n.basic_auth_password_file,
                n.basic_auth_password,
                n.bearer_token_file,
                n.header,
            ),
            (_, Sent::Bearer(file)) => format!(
                "{what} refused the bearer token from {} ({}){headers}; is it expired, or for \
                 another cluster?",
                file.display(),
                n.bearer_token_file
            ),
            (
                _,
                Sent::Basic {
                    user,
                    password_from,
                },
            ) => format!(
                "{what} refused basic auth as user {user:?}{headers}; check {} and {password_from}",
                n.basic_auth_user
            ),
        };
        Error::Denied {
            url: url.to_owned(),
            status: format!("{status}{asks}"),
            advice,
        }
    }
}

/// `text` with each secret, as sent and as a JSON string would escape it, replaced by
/// `<redacted>`; the longest first, so a secret inside another is not left half-shown.
fn redact(text: &str, secrets: &[Secret]) -> String {
    let mut forms: Vec<String> = secrets
        .iter()
        .map(Secret::expose)
        .filter(|s| !s.is_empty())
        .flat_map(|s| {
            let escaped = serde_json::to_string(s).unwrap_or_default();
            [s.to_owned(), escaped.trim_matches('"').to_owned()]
        })
        .collect();
    forms.sort_by_key(|s| std::cmp::Reverse(s.len()));
    forms.dedup();
    forms.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret, "<redacted>")
    })
}

fn sends_in_clear(base: &reqwest::Url, sent: &Sent, headers: bool) -> bool {
    let credentials = headers || !matches!(sent, Sent::Nothing);
    let loopback = base.host_str().is_some_and(|host| {
        match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => host == "localhost",
        }
    });
    credentials && base.scheme() == "http" && !loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_text_credentials_are_recognised() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let bearer = Sent::Bearer("t".into());
        assert!(sends_in_clear(
            &url("http://prometheus:9090/"),
            &bearer,
            false
        ));
        assert!(sends_in_clear(
            &url("http://10.0.0.1/"),
            &Sent::Nothing,
            true
        ));
        assert!(!sends_in_clear(&url("https://prometheus/"), &bearer, false));
        assert!(!sends_in_clear(
            &url("http://127.0.0.1:9090/"),
            &bearer,
            false
        ));
        assert!(!sends_in_clear(&url("http://[::1]:9090/"), &bearer, false));
        assert!(!sends_in_clear(
            &url("http://prometheus/"),
            &Sent::Nothing,
            false
        ));
    }

    #[test]
    fn echoed_secrets_are_cut_out() {
        let secrets = [
            Secret::new("tok-1"),
            Secret::new("p\"w"),
            Secret::new("tok-12"),
        ];
        assert_eq!(
            redact(
                r#"echo authorization=Bearer tok-12 pw=p"w json="p\"w" ok"#,
                &secrets
            ),
            r#"echo authorization=Bearer <redacted> pw=<redacted> json="<redacted>" ok"#
        );
        assert_eq!(redact("nothing here", &[Secret::new("")]), "nothing here");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let access = Access {
            basic_auth_user: Some("u".into()),
            basic_auth_password: Some(Password::Env(Secret::new("hunter2-pw"))),
            headers: vec![Header::parse("X-Api-Key: hunter2-key").unwrap()],
            ..Default::default()
        };
        let shown = format!("{access:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("X-Api-Key") && shown.contains("<redacted>"));
        let authorized = access
            .authorize(Endpoint::Prometheus, Duration::from_secs(1))
            .unwrap();
        let shown = format!("{authorized:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("aHVudGVy"),
            "{shown}"
        );
    }

    #[test]
    fn header_errors_never_echo_the_value() {
        for raw in ["no-colon-hunter2", "Bad Name:hunter2", "X-Ok:hunter2\u{7f}"] {
            let err = Header::parse(raw).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("header"), "{err}");
        }
        let h = Header::parse(" X-Scope-OrgID :  tenant-1 ").unwrap();
        assert_eq!(
            (h.name.as_str(), h.value.expose()),
            ("X-Scope-OrgID", "tenant-1")
        );
    }

    #[test]
    fn conflicting_or_incomplete_credentials_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "t0ken\n").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").unwrap();
        let cases = [
            (
                Access {
                    bearer_token_file: Some(token.clone()),
                    basic_auth_user: Some("u".into()),
                    ..Default::default()
                },
                "alternatives",
            ),
            (
                Access {
                    basic_auth_user: Some("u".into()),
                    ..Default::default()
                },
                "needs a password",
            ),
            (
                Access {
                    basic_auth_password: Some(Password::File(token.clone())),
                    ..Default::default()
                },
                "needs the basic-auth user",
            ),
            (
                Access {
                    bearer_token_file: Some(empty.clone()),
                    ..Default::default()
                },
                "empty",
            ),
            (
                Access {
                    bearer_token_file: Some(token.clone()),
                    headers: vec![Header::parse("Authorization:x").unwrap()],
                    ..Default::default()
                },
                "conflicts",
            ),
        ];
        for (access, expected) in cases {
            let err = access
                .authorize(Endpoint::Prometheus, Duration::from_secs(1))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("t0ken"), "{err}");
        }
    }
}
