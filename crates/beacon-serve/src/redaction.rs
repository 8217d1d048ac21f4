//! What `/config` hides: values under secret-looking keys, the value of env-style
//! `{"name": "DB_PASSWORD", "value": …}` entries, and secrets inside strings — URL passwords
//! (`postgres://u:p@h/db` shows as `postgres://u:<redacted>@h/db`), secret-named `name=value`
//! pairs (query parameters, `--password=…`, `DB_PASSWORD=…`, `password=…` in connection
//! strings), `Authorization: …`-style header lines, PEM private keys — and the argument after a
//! secret-named flag in a list (`["--token", "…"]`).
//!
//! It errs on the side of hiding: a false positive costs a look at the ConfigMap, a false
//! negative leaks a credential to anyone who can reach the pod. Secrets it cannot recognise —
//! a token inside a URL path (`https://hooks.example/T0/B0/XYZ`), a value under an innocent
//! key — stay visible: keep credentials in Secrets, not in `config.json`.

use serde_json::Value;

pub const REDACTED: &str = "<redacted>";

pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // Env-style entries, whatever their casing: `{"Name": "DB_PASSWORD", "Value": …}`.
            let env_style_secret = map.iter().any(|(k, v)| {
                (k.eq_ignore_ascii_case("name") || k.eq_ignore_ascii_case("key"))
                    && v.as_str().is_some_and(looks_secret)
            });
            for (key, v) in map.iter_mut() {
                let is_value = key.eq_ignore_ascii_case("value") || key.eq_ignore_ascii_case("val");
                if looks_secret(key) || (env_style_secret && is_value) {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => {
            // `["--token", "…"]`: the argument after a secret-named flag is the secret.
            let mut after_secret_flag = false;
            for item in items.iter_mut() {
                let flag = item
                    .as_str()
                    .is_some_and(|s| s.starts_with('-') && !s.contains('=') && looks_secret(s));
                if after_secret_flag && item.is_string() && !flag {
                    *item = Value::String(REDACTED.to_owned());
                } else {
                    redact(item);
                }
                after_secret_flag = flag;
            }
        }
        Value::String(s) => {
            if let Some(masked) = mask_string(s) {
                *s = masked;
            }
        }
        _ => {}
    }
}

/// Key names that conventionally hold credentials. Long markers match anywhere in the key
/// folded to lower-case alphanumerics (`clientSecret`, `API-Key`); short ones only as a
/// whole word (`db_pass`, `dbPwd`, `basicAuth`), so that `compass`, `bypass_cache` or
/// `author` stay visible.
pub fn looks_secret(key: &str) -> bool {
    const ANYWHERE: [&str; 17] = [
        "secret",
        "password",
        "passwd",
        "passphrase",
        "token",
        "credential",
        "apikey",
        "privatekey",
        "accesskey",
        "sshkey",
        "authorization",
        "authentication",
        "bearer",
        "cookie",
        "dsn",
        "connectionstring",
        "signature",
    ];
    const WORDS: [&str; 8] = [
        "pass", "pwd", "pw", "auth", "oauth", "authn", "authz", "sig",
    ];
    // `…_key` names that are identifiers, not secrets.
    const NOT_SECRET_KEYS: [&str; 8] = [
        "public",
        "primary",
        "sort",
        "partition",
        "foreign",
        "routing",
        "hash",
        "range",
    ];
    let folded: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if ANYWHERE.iter().any(|m| folded.contains(m)) {
        return true;
    }
    let words = words(key);
    // A bare `key` is a secret only as the last word after something (`ssh_key`, `signingKey`),
    // not in `key_path` or the `key` of an env-style entry.
    let secret_key = match words.as_slice() {
        [.., before, last] if last == "key" => !NOT_SECRET_KEYS.contains(&before.as_str()),
        _ => false,
    };
    secret_key || words.iter().any(|w| WORDS.contains(&w.as_str()))
}

/// Splits `db_pass`, `dbPass`, `DB-PASS` into lower-case words.
fn words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The string with every secret it visibly carries masked; `None` when nothing changes.
fn mask_string(s: &str) -> Option<String> {
    if s.contains("PRIVATE KEY-----") {
        return Some(REDACTED.to_owned());
    }
    // `Authorization: Bearer …`: a header line whose name looks secret.
    if let Some((name, _)) = s.split_once(": ")
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && looks_secret(name)
    {
        return Some(format!("{name}: {REDACTED}"));
    }
    let urls = mask_urls(s);
    let pairs = mask_pairs(urls.as_deref().unwrap_or(s));
    pairs.or(urls)
}

/// Masks the password of every `scheme://user:password@host` in `s`, wherever it appears.
fn mask_urls(s: &str) -> Option<String> {
    let is_scheme = |c: char| c.is_ascii_alphanumeric() || "+-.".contains(c);
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(sep) = rest.find("://") {
        let scheme_start = start_of_run(&rest[..sep], is_scheme);
        let body_start = sep + 3;
        let body_end = rest[body_start..]
            .find(|c: char| c.is_whitespace() || "\"'<>".contains(c))
            .map_or(rest.len(), |i| body_start + i);
        out.push_str(&rest[..body_start]);
        let body = &rest[body_start..body_end];
        match (scheme_start < sep).then(|| mask_userinfo(body)).flatten() {
            Some(masked) => {
                out.push_str(&masked);
                changed = true;
            }
            None => out.push_str(body),
        }
        rest = &rest[body_end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Where the run of `wanted` characters that ends `s` starts.
fn start_of_run(s: &str, wanted: impl Fn(char) -> bool) -> usize {
    s.char_indices()
        .rev()
        .find(|(_, c)| !wanted(*c))
        .map_or(0, |(i, c)| i + c.len_utf8())
}

/// `user:password@host/…` → `user:<redacted>@host/…`.
fn mask_userinfo(body: &str) -> Option<String> {
    let authority_end = body.find(['/', '?', '#']).unwrap_or(body.len());
    let at = match body[..authority_end].rfind('@') {
        Some(at) => at,
        // A raw `/`, `?` or `#` in the password ends the authority early, yet the `@` after it
        // still closes `user:password`; unless what follows the colon is a port (`host:8080/a@b`).
        None => {
            let at = body.rfind('@')?;
            let colon = body[..authority_end].find(':')?;
            let port = body[colon + 1..authority_end]
                .bytes()
                .all(|b| b.is_ascii_digit());
            if port || body.starts_with('[') {
                return None;
            }
            at
        }
    };
    let colon = body[..at].find(':')?;
    Some(format!("{}{REDACTED}{}", &body[..=colon], &body[at..]))
}

/// Masks the value of every `name=value` whose name looks secret: query parameters,
/// `--password=…`, `DB_PASSWORD=…`, `password=…` in libpq or ADO.NET connection strings.
/// A value ends at whitespace, `;`, `&` or `,`, or spans a quoted string.
fn mask_pairs(s: &str) -> Option<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(eq) = rest.find('=') {
        let name_start = start_of_run(&rest[..eq], is_name);
        let name = &rest[name_start..eq];
        let value = &rest[eq + 1..];
        let value_len = match value.chars().next() {
            Some(q @ ('\'' | '"')) => value[1..].find(q).map_or(value.len(), |i| i + 2),
            _ => value
                .find(|c: char| c.is_whitespace() || ";&,".contains(c))
                .unwrap_or(value.len()),
        };
        out.push_str(&rest[..=eq]);
        if value_len > 0 && !name.is_empty() && looks_secret(name) {
            out.push_str(REDACTED);
            changed = true;
        } else {
            out.push_str(&value[..value_len]);
        }
        rest = &value[value_len..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn redacted(mut v: Value) -> Value {
        redact(&mut v);
        v
    }

    /// Secrets in shapes other than `"secret_key": value`, each found by the re-run of the
    /// adversarial review: inside longer strings, in lists of arguments or headers, in URLs
    /// whose password has raw `/` or `#`, under differently cased env-style keys.
    #[test]
    fn secrets_inside_strings_and_lists_are_masked() {
        let r = REDACTED;
        let cases = [
            (
                json!([
                    "Authorization: Bearer S1",
                    "X-Api-Key: S2",
                    "Accept: text/html"
                ]),
                json!([
                    format!("Authorization: {r}"),
                    format!("X-Api-Key: {r}"),
                    "Accept: text/html"
                ]),
            ),
            (
                json!([
                    "--db=postgres://u:S3@h/db",
                    "--password=S4",
                    "DB_PASSWORD=S5",
                    "LOG=debug"
                ]),
                json!([
                    format!("--db=postgres://u:{r}@h/db"),
                    format!("--password={r}"),
                    format!("DB_PASSWORD={r}"),
                    "LOG=debug"
                ]),
            ),
            (
                json!(["--token", "S6", "--verbose", "x"]),
                json!(["--token", r, "--verbose", "x"]),
            ),
            (
                json!("connect with postgres://u:S7@h/db please"),
                json!(format!("connect with postgres://u:{r}@h/db please")),
            ),
            (
                json!("jdbc:postgresql://h/db?user=u&password=S8"),
                json!(format!("jdbc:postgresql://h/db?user=u&password={r}")),
            ),
            (
                json!("host=h user=u password=S9 dbname=x"),
                json!(format!("host=h user=u password={r} dbname=x")),
            ),
            (
                json!("Server=h;User Id=u;Password='S10 x';"),
                json!(format!("Server=h;User Id=u;Password={r};")),
            ),
            (
                json!("https://b.s3.amazonaws.com/o?X-Amz-Signature=S11&sig=S12&v=1"),
                json!(format!(
                    "https://b.s3.amazonaws.com/o?X-Amz-Signature={r}&sig={r}&v=1"
                )),
            ),
            (
                json!(["postgres://u:S13/x@h/db", "redis://:S14#x@h:6379"]),
                json!([
                    format!("postgres://u:{r}@h/db"),
                    format!("redis://:{r}@h:6379")
                ]),
            ),
            (
                json!("-----BEGIN RSA PRIVATE KEY-----\nS15\n-----END RSA PRIVATE KEY-----"),
                json!(r),
            ),
            (
                json!([{"Name": "DB_PASSWORD", "Value": "S16"}, {"Key": "api_key", "Val": "S17"}]),
                json!([{"Name": "DB_PASSWORD", "Value": r}, {"Key": "api_key", "Val": r}]),
            ),
        ];
        for (input, want) in cases {
            let got = redacted(input.clone());
            assert_eq!(got, want, "for {input}");
            let text = got.to_string();
            let leaked = text
                .as_bytes()
                .windows(2)
                .any(|w| w[0] == b'S' && w[1].is_ascii_digit());
            assert!(!leaked, "a secret S<n> is left in {text}");
        }
    }

    /// What must stay visible: an operator loses the view of their config with each false positive.
    #[test]
    fn ordinary_values_stay_visible() {
        let keep = json!({
            "author": "Jane",
            "authority": "ca",
            "public_key": "ssh-ed25519 AAAA",
            "primary_key": "id",
            "sort_key": "ts",
            "urls": ["https://host:8080/a@b", "http://[::1]:8080/x@y", "https://example.com/a@b",
                     "mailto:a@b", "https://u@h/x?page=2"],
            "args": ["--port=8080", "--verbose", "--log", "debug"],
            "note": "plain text: not a URL; a=b",
            "data": "aGVsbG8gd29ybGQ=",
            "unicode": "é=1 ü://x:y ä'='",
        });
        assert_eq!(redacted(keep.clone()), keep);
        for secret in [
            "auth",
            "basic_auth",
            "basicAuth",
            "oauth",
            "proxy-auth",
            "Authorization",
            "authToken",
        ] {
            assert!(looks_secret(secret), "{secret}");
        }
    }

    /// Every short mix of the characters the scanners look for, as values and as list items:
    /// `/config` must answer, not panic, whatever an operator writes.
    #[test]
    fn odd_strings_never_panic() {
        const PARTS: [&str; 14] = [
            "=", "://", "@", ":", "'", "\"", "é", "a", "/", "#", "pw", " ", "-----", "--token",
        ];
        let n = PARTS.len();
        for i in 0..n.pow(4) {
            let s: String = (0..4).map(|d| PARTS[i / n.pow(d) % n]).collect();
            redacted(json!({ "k": s, "list": [s, s] }));
        }
    }
}
