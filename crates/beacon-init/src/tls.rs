//! The HTTP client shared by `fetch` and `wait`; its TLS set-up (trust roots, provider) is
//! beacon-tls's, shared with `beacon report`.

use std::time::Duration;

use crate::{Error, Result, resolve::Resolver};

pub(crate) struct ClientOptions {
    /// Bounds connecting, waiting for headers and every gap between body chunks, so a stalled
    /// server is detected even when the whole transfer would legitimately take longer.
    pub stall_timeout: Duration,
    pub max_redirects: usize,
    pub resolver: Resolver,
}

/// How much longer connecting (and the first read) may take than the lookup alone, so the
/// lookup's own timeout, with its clearer reason, fires first.
const LOOKUP_FIRST: Duration = Duration::from_millis(100);

pub(crate) fn http_client(opts: &ClientOptions) -> Result<reqwest::Client> {
    let max = opts.max_redirects;
    reqwest::Client::builder()
        .use_preconfigured_tls(beacon_tls::client_config().map_err(|source| Error::Tls { source })?)
        // In-process DNS: a hanging nameserver cannot hold the process past its deadline.
        // The lookup has its own bound, a little inside the connect and read timeouts (which
        // cover the lookup too): a nameserver that never answers then reads "cannot resolve NAME: no
        // answer within 2s", not "timed out before a response", which blamed the server.
        .dns_resolver(std::sync::Arc::new(
            opts.resolver.clone().answering_within(opts.stall_timeout),
        ))
        .connect_timeout(opts.stall_timeout + LOOKUP_FIRST)
        // reqwest's read timeout also runs while the request connects (and so resolves).
        .read_timeout(opts.stall_timeout + LOOKUP_FIRST)
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            // Not followed, so the 3xx itself comes back and is reported with its Location, as
            // a redirect to `file:` is (reqwest's own refusal, "URL scheme is not allowed",
            // named neither the redirect nor where it went).
            if !matches!(attempt.url().scheme(), "http" | "https") {
                attempt.stop()
            } else if attempt.previous().len() > max {
                attempt.error(format!("too many redirects (more than {max})"))
            } else {
                attempt.follow()
            }
        }))
        .user_agent(concat!("beacon-init/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|source| Error::Client { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_client_builds() {
        http_client(&ClientOptions {
            stall_timeout: Duration::from_secs(1),
            max_redirects: 3,
            resolver: Resolver::from_system(),
        })
        .unwrap();
    }
}
