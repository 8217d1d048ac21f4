//! What `/config` hides: values under secret-looking keys, the `value` of env-style
//! `{"name": "DB_PASSWORD", "value": …}` entries, and passwords or secret query parameters
//! inside URLs anywhere (`postgres://u:p@h/db` shows as `postgres://u:<redacted>@h/db`).
//!
//! It errs on the side of hiding: a false positive costs a look at the ConfigMap, a false
//! negative leaks a credential to anyone who can reach the pod.

use serde_json::Value;

pub const REDACTED: &str = "<redacted>";

pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let env_style_secret = ["name", "key"].iter().any(|k| {
                map.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(looks_secret)
            });
            for (key, v) in map.iter_mut() {
                if looks_secret(key) || (env_style_secret && key == "value") {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => {
            if let Some(masked) = mask_url(s) {
                *s = masked;
            }
        }
        _ => {}
    }
}

/// Key names that conventionally hold credentials. Long markers match anywhere in the key
/// folded to lower-case alphanumerics (`clientSecret`, `API-Key`); short ones only as a
/// whole word (`db_pass`, `dbPwd`), so that `compass` or `bypass_cache` stay visible.
pub fn looks_secret(key: &str) -> bool {
    const ANYWHERE: [&str; 15] = [
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
        "auth",
        "bearer",
        "cookie",
        "dsn",
        "connectionstring",
    ];
    const WORDS: [&str; 4] = ["pass", "pwd", "pw", "key"];
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
    words.iter().any(|w| WORDS[..3].contains(&w.as_str()))
        || (words.len() > 1 && words.last().is_some_and(|w| w == WORDS[3]))
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

/// `scheme://user:password@host/…?token=…`: the password and secret-looking query values
/// masked, the rest kept so an operator still sees where it points. `None` when nothing changes.
fn mask_url(s: &str) -> Option<String> {
    let scheme_end = s.find("://")?;
    let scheme = &s[..scheme_end];
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return None;
    }
    let rest_start = scheme_end + 3;
    let authority_end = s[rest_start..]
        .find(['/', '?', '#'])
        .map_or(s.len(), |i| rest_start + i);
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..rest_start]);
    let authority = &s[rest_start..authority_end];
    let mut changed = false;
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..=colon]);
                    out.push_str(REDACTED);
                    changed = true;
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &s[authority_end..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            let (query, fragment) = match tail[q + 1..].find('#') {
                Some(h) => (&tail[q + 1..q + 1 + h], &tail[q + 1 + h..]),
                None => (&tail[q + 1..], ""),
            };
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if looks_secret(name) => {
                        changed = true;
                        format!("{name}={REDACTED}")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
            out.push_str(fragment);
        }
        None => out.push_str(tail),
    }
    changed.then_some(out)
}
