//! Exponential backoff with jitter, and the decision of what is worth retrying.
//!
//! Retried: connect errors, timeouts, resets and truncated bodies, HTTP 408, 429 and 5xx —
//! the failures a restarting Service or an overloaded server produce. Not retried: other
//! 4xx, redirect loops, size limits and checksum mismatches, which the same request will
//! only reproduce. `Retry-After` (seconds or an HTTP date) is honoured up to a cap so a
//! server cannot park an init container for hours.

use std::{
    future::Future,
    time::{Duration, SystemTime},
};

use rand::RngExt;
use reqwest::{StatusCode, header::HeaderMap};

use crate::{Error, Result};

/// The longest `Retry-After` we honour.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub retries: u32,
    /// Delay before the first retry; doubles on each further one.
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 5,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (1-based). "Equal jitter": half the exponential
    /// delay is fixed so retries keep backing off, half is random so that the init
    /// containers of many pods restarted together do not hit the server in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .initial_delay
            .saturating_mul(1u32 << (retry.saturating_sub(1)).min(20));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(retry);
        match retry_after {
            Some(ra) => backoff.max(ra.min(RETRY_AFTER_CAP)),
            None => backoff,
        }
    }
}

/// How one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth another attempt; the reason is logged and reported if it was the last one.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Final regardless of the retry budget.
    Fatal(Error),
}

impl Failure {
    pub(crate) fn transient(reason: impl Into<String>) -> Self {
        Failure::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

/// Runs `attempt` until it succeeds, fails fatally, or the retry budget is spent.
pub(crate) async fn run<T, F, Fut>(policy: &RetryPolicy, url: &str, mut attempt: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut n = 1;
    loop {
        match attempt(n).await {
            Ok(v) => return Ok(v),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient { reason, .. }) if n > policy.retries => {
                return Err(Error::RetriesExhausted {
                    url: url.to_owned(),
                    attempts: n,
                    last: reason,
                });
            }
            Err(Failure::Transient {
                reason,
                retry_after,
            }) => {
                let delay = policy.delay(n, retry_after);
                tracing::warn!(
                    url,
                    attempt = n,
                    error = %reason,
                    retry_in = %crate::progress::human_duration(delay),
                    "attempt failed; retrying"
                );
                tokio::time::sleep(delay).await;
                n += 1;
            }
        }
    }
}

/// Whether an HTTP status is worth retrying.
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// `Retry-After` as a delay from now; `None` when absent or unparsable.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Classifies a reqwest error. Redirect loops, bad requests and rejected certificates are
/// final; everything the network can do to us (refused, reset, timed out, closed early) is
/// transient.
pub(crate) fn classify(url: &str, e: reqwest::Error) -> Failure {
    let reason = describe(&e);
    if e.is_redirect() || e.is_builder() || is_certificate_error(&e) {
        Failure::Fatal(Error::Request {
            url: url.to_owned(),
            reason,
        })
    } else {
        Failure::transient(reason)
    }
}

/// An untrusted or invalid server certificate: a missing CA or a wrong name does not fix
/// itself between attempts, so retrying only delays the message.
fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(rustls::Error::InvalidCertificate(_)) = e.downcast_ref::<rustls::Error>() {
        return true;
    }
    // io::Error hides its payload from `source()` (and TLS errors come nested in two of them).
    let payload = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref());
    if payload.is_some_and(|p| is_certificate_error(p)) {
        return true;
    }
    e.source().is_some_and(is_certificate_error)
}

/// A short reason: the URL is already part of the surrounding message. The phase (connecting,
/// the response, the body) and the root cause; the layers between (hyper-util's "client error
/// (Connect)", "tcp connect error") only restate the phase.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return if e.is_connect() {
            "timed out connecting"
        } else if e.is_body() || e.is_decode() {
            "timed out waiting for the body"
        } else {
            // reqwest's connect timeout and its wait for the headers look the same here.
            "timed out before a response"
        }
        .to_owned();
    }
    if e.is_redirect() {
        // The redirect policy's own message ("too many redirects (more than 10)") says it all.
        return root_cause(e).unwrap_or_else(|| "redirect refused".to_owned());
    }
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "body interrupted"
    } else {
        "request failed"
    };
    match root_cause(e) {
        Some(root) => format!("{kind}: {root}"),
        None => kind.to_owned(),
    }
}

/// The innermost error's message; `None` when `e` has no source.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = e.source()?;
    while let Some(next) = cur.source() {
        cur = next;
    }
    Some(cur.to_string())
}

/// A 3xx that reached us was not followed: no Location, or one that is not http(s).
pub(crate) fn unfollowed_redirect(headers: &HeaderMap) -> String {
    match headers
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
    {
        Some(location) => {
            format!("redirect to {location} not followed (only http and https are)")
        }
        None => "a redirect without a Location header".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let p = RetryPolicy {
            retries: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d1 = p.backoff(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = p.backoff(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d9 = p.backoff(9);
            assert!(
                d9 >= Duration::from_millis(500) && d9 <= Duration::from_secs(1),
                "{d9:?}"
            );
        }
        assert!(p.backoff(u32::MAX) <= Duration::from_secs(1));
    }

    #[test]
    fn retry_after_raises_the_delay_but_is_capped() {
        let p = RetryPolicy {
            retries: 1,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        };
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(100_000))),
            RETRY_AFTER_CAP
        );
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
        h.insert(reqwest::header::RETRY_AFTER, future.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(55) && d <= Duration::from_secs(60),
            "{d:?}"
        );
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retryable_statuses() {
        for s in [500, 502, 503, 504, 408, 429] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 410] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
