//! The typed `config.json`, its validation and redaction.
//!
//! The file is optional: without it beacon runs on [`Config::default`]. When present
//! it must be valid — unknown keys, wrong types and unknown time zones are rejected
//! with the file, line and column, so a typo never silently falls back to a default.

use std::{
    collections::BTreeMap,
    fmt, io,
    path::{Path, PathBuf},
};

use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{faults::Faults, json_object::only_from_objects};

pub const DEFAULT_TIMEZONE: &str = "Europe/Moscow";
/// The largest `config.json` read: what a ConfigMap can hold. The file is kept in memory and
/// its text rendered into pages, so a path pointed at a big file by mistake must not grow the
/// pod until it is OOM-killed.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
const MAX_TITLE_CHARS: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct Config {
    /// IANA time zone used for the time shown on `/`.
    pub timezone: TimeZoneName,
    /// Heading of the page on `/`.
    pub title: Title,
    /// Free text shown under the heading.
    pub message: String,
    /// Free-form settings for operators; shown on `/config` with secret-like keys redacted.
    pub settings: BTreeMap<String, Value>,
    /// Fault injection for rehearsals (off unless set); see [`crate::faults`].
    pub faults: Faults,
}

only_from_objects!(Config);

impl Default for Config {
    fn default() -> Self {
        Self {
            timezone: TimeZoneName::new(DEFAULT_TIMEZONE)
                .expect("bundled tz database has the default zone"),
            title: Title("beacon".to_owned()),
            message: String::new(),
            settings: BTreeMap::new(),
            faults: Faults::default(),
        }
    }
}

/// A time-zone name that is known to resolve in the bundled tz database.
#[derive(Clone, PartialEq)]
pub struct TimeZoneName {
    name: String,
    tz: TimeZone,
}

impl TimeZoneName {
    pub fn new(name: &str) -> Result<Self, String> {
        TimeZone::get(name)
            .map(|tz| Self { name: name.to_owned(), tz })
            .map_err(|_| format!("unknown time zone {name:?}, expected an IANA name such as \"Europe/Moscow\" or \"UTC\""))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }
}

impl fmt::Debug for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        TimeZoneName::new(&name).map_err(serde::de::Error::custom)
    }
}

/// A non-empty page heading of bounded length.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Title(String);

impl Title {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Title {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let title = String::deserialize(d)?;
        let chars = title.chars().count();
        if title.trim().is_empty() {
            return Err(serde::de::Error::custom("title must not be empty"));
        }
        if chars > MAX_TITLE_CHARS {
            return Err(serde::de::Error::custom(format!(
                "title is {chars} characters long, at most {MAX_TITLE_CHARS} are allowed"
            )));
        }
        Ok(Title(title))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `cause` in the message, not a `source`: the watcher logs reload errors by their message
    /// alone, and a cause held both ways would be printed twice.
    #[error("cannot read config file {path}: {cause}")]
    Read { path: PathBuf, cause: io::Error },
    #[error("invalid config file {path}: line {line}, column {column}{}: {message}", key.as_ref().map(|k| format!(", at `{k}`")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        /// The offending key's path, e.g. `settings.db.port`; none for syntax errors at the top.
        key: Option<String>,
        message: String,
    },
}

impl Config {
    /// Parses and validates `bytes`, naming `path` in any error.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, ConfigError> {
        let invalid = |e: serde_json::Error, key: Option<String>| {
            // serde_json appends " at line L column C" to its message; we report those separately.
            let full = e.to_string();
            let message = match full.rfind(" at line ") {
                Some(i) => full[..i].to_owned(),
                None => full,
            };
            ConfigError::Invalid {
                path: path.to_owned(),
                line: e.line(),
                // serde_json says column 0 for a wrong type at the very start.
                column: e.column().max(1),
                key,
                message,
            }
        };
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let config: Self = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            // A syntax error has no meaningful key path ("?" or ".").
            let key = (inner.is_data() && key != "." && key != "?").then_some(key);
            invalid(inner, key)
        })?;
        // Trailing garbage after the object is an error too.
        de.end().map_err(|e| invalid(e, None))?;
        Ok(config)
    }

    /// Reads the file; `Ok(None)` when it does not exist, since the file is optional.
    pub fn read(path: &Path) -> Result<Option<(Self, Vec<u8>)>, ConfigError> {
        match read_file(path) {
            Ok(bytes) => Ok(Some((Self::parse(path, &bytes)?, bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(cause) => Err(ConfigError::Read {
                path: path.to_owned(),
                cause,
            }),
        }
    }

    /// The configuration as JSON with every secret-looking key's value replaced.
    pub fn redacted(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("config always serialises");
        redact(&mut value);
        value
    }
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`]. Opened non-blocking, so a FIFO in its
/// place is refused instead of blocking the reader until something writes to it.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    if !meta.is_file() {
        return Err(io::Error::other(
            "not a regular file (a FIFO, socket or device)",
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {MAX_FILE_BYTES} bytes, the most a ConfigMap holds"),
        ));
    }
    Ok(bytes)
}

pub use crate::redaction::REDACTED;
use crate::redaction::redact;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/config/config.json"), s.as_bytes())
    }

    #[test]
    fn an_invalid_fault_in_config_json_is_reported_with_file_line_column_and_key() {
        let err = parse("{\n  \"faults\": {\"pods\": {\"1\": {\"errorRatio\": 2}}}\n}")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid config file /config/config.json: line 2, column 44, at `faults.pods.1.errorRatio`: errorRatio must be between 0 and 1"),
            "{err}"
        );
    }

    #[test]
    fn empty_object_gives_defaults() {
        assert_eq!(parse("{}").unwrap(), Config::default());
        assert_eq!(Config::default().timezone.name(), "Europe/Moscow");
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let err = parse("{\n  \"timezone\": \"UTC\",\n  \"titel\": \"x\"\n}")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "invalid config file /config/config.json: line 3, column 9, at `titel`: unknown field `titel`"
            ),
            "{err}"
        );
        assert!(err.contains("expected one of"), "{err}");
    }

    #[test]
    fn unknown_time_zone_is_rejected_with_position() {
        let err = parse("{\"timezone\": \"Mars/Olympus\"}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1, column 28, at `timezone`: "), "{err}");
        assert!(err.contains("unknown time zone \"Mars/Olympus\""), "{err}");
    }

    #[test]
    fn wrong_type_and_syntax_errors_are_reported() {
        let err = parse("{\"settings\": {}, \"title\": 5}")
            .unwrap_err()
            .to_string();
        assert!(err.contains(", at `title`: "), "{err}");
        assert!(
            err.contains("invalid type: integer `5`, expected a string"),
            "{err}"
        );
        let err = parse("{\"title\": \"x\",}").unwrap_err().to_string();
        assert!(err.contains("line 1, column 15: trailing comma"), "{err}");
        let err = parse("{} {}").unwrap_err().to_string();
        assert!(
            err.contains("line 1, column 4: trailing characters"),
            "{err}"
        );
        let err = parse("{\"title\": \"  \"}").unwrap_err().to_string();
        assert!(err.contains("title must not be empty"), "{err}");
    }

    /// serde's derived structs also take a JSON array, field by field in order: `[1.0, 451]`
    /// for `faults` meant errorRatio 1.0 and errorStatus 451 (issue 20, item 1). serde_json
    /// places a wrong type at the character before the value.
    #[test]
    fn arrays_where_objects_belong_are_rejected_with_their_key() {
        for (json, at) in [
            ("[]", "line 1, column 1: "),
            ("[\"UTC\"]", "line 1, column 1: "),
            ("{\"faults\": []}", "line 1, column 11, at `faults`: "),
            (
                "{\"faults\": [1.0, 451]}",
                "line 1, column 11, at `faults`: ",
            ),
            (
                "{\"faults\": {\"pods\": {\"1\": [1.0, 451]}}}",
                "line 1, column 26, at `faults.pods.1`: ",
            ),
            ("{\"settings\": []}", "line 1, column 13, at `settings`: "),
            (
                "{\"faults\": {\"latency\": [\"1s\", \"2s\"]}}",
                "line 1, column 24, at `faults.latency`: ",
            ),
        ] {
            let err = parse(json).unwrap_err().to_string();
            assert!(err.contains(at), "{json}: {err}");
            assert!(
                err.contains("invalid type: sequence, expected"),
                "{json}: {err}"
            );
        }
    }

    /// Each case: a `settings` object, then the JSON `settings` must redact to.
    #[test]
    fn redaction_table() {
        let r = REDACTED;
        let cases: Vec<(&str, Value)> = vec![
            (r#"{"pwd": "p"}"#, json!({"pwd": r})),
            (r#"{"db_pass": "p"}"#, json!({"db_pass": r})),
            (
                r#"{"dbPass": "p", "PASS": "p"}"#,
                json!({"dbPass": r, "PASS": r}),
            ),
            (r#"{"ssh_passphrase": "p"}"#, json!({"ssh_passphrase": r})),
            (r#"{"dsn": "host=h password=p"}"#, json!({"dsn": r})),
            (r#"{"sentry_DSN": "x"}"#, json!({"sentry_DSN": r})),
            (
                r#"{"ssh_key": "k", "sshKey": "k"}"#,
                json!({"ssh_key": r, "sshKey": r}),
            ),
            (
                r#"{"bearer": "b", "bearer_token": "b"}"#,
                json!({"bearer": r, "bearer_token": r}),
            ),
            (
                r#"{"cookie": "c", "session_cookie": "c"}"#,
                json!({"cookie": r, "session_cookie": r}),
            ),
            (
                r#"{"env": [{"name": "DB_PASSWORD", "value": "p"}, {"name": "LOG_LEVEL", "value": "debug"}]}"#,
                json!({"env": [{"name": "DB_PASSWORD", "value": r}, {"name": "LOG_LEVEL", "value": "debug"}]}),
            ),
            (
                r#"{"extra": [{"key": "api_key", "value": {"nested": "v"}}]}"#,
                json!({"extra": [{"key": "api_key", "value": r}]}),
            ),
            (
                r#"{"database_url": "postgres://u:p@h/db"}"#,
                json!({"database_url": format!("postgres://u:{r}@h/db")}),
            ),
            (
                r#"{"urls": ["redis://:s3cr%40t@cache:6379/0", "https://example.com/a@b"]}"#,
                json!({"urls": [format!("redis://:{r}@cache:6379/0"), "https://example.com/a@b"]}),
            ),
            (
                r#"{"upstream": "https://user@h/x?token=t&page=2"}"#,
                json!({"upstream": format!("https://user@h/x?token={r}&page=2")}),
            ),
            (
                r#"{"note": "plain text: not a URL", "compass": "north", "port": 5432}"#,
                json!({"note": "plain text: not a URL", "compass": "north", "port": 5432}),
            ),
        ];
        for (settings, want) in cases {
            let cfg = parse(&format!(r#"{{"settings": {settings}}}"#)).unwrap();
            assert_eq!(cfg.redacted()["settings"], want, "for {settings}");
        }
    }

    #[test]
    fn secrets_are_redacted_recursively() {
        let cfg = parse(
            r#"{"settings": {"db_password": "p", "API-Key": "k", "nested": {"clientSecret": "s", "color": "red"},
                "list": [{"token": "t"}], "plain": "v"}}"#,
        )
        .unwrap();
        let v = cfg.redacted();
        let s = &v["settings"];
        assert_eq!(s["db_password"], REDACTED);
        assert_eq!(s["API-Key"], REDACTED);
        assert_eq!(s["nested"]["clientSecret"], REDACTED);
        assert_eq!(s["nested"]["color"], "red");
        assert_eq!(s["list"][0]["token"], REDACTED);
        assert_eq!(s["plain"], "v");
        assert_eq!(v["timezone"], "Europe/Moscow");
    }
}
