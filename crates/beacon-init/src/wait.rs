//! `beacon init wait`: block until dependencies answer — the distroless replacement for an
//! init container looping on `nslookup` or `nc -z`.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
    time::{Duration, Instant},
};

use futures_util::future::try_join_all;

use crate::{
    Error, Result,
    progress::human_duration,
    resolve::Resolver,
    tls::{self, ClientOptions},
};

/// Something to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `dns:NAME` — ready once NAME resolves (a headless Service has endpoints, say).
    Dns(String),
    /// `tcp:HOST:PORT` — ready once a TCP connection is accepted.
    Tcp { host: String, port: u16 },
    /// `http://…` or `https://…` — ready once a GET answers 2xx (after redirects).
    Http(reqwest::Url),
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidTarget {
            target: s.to_owned(),
            reason: reason.to_owned(),
        };
        const EXPECTED: &str = "expected dns:NAME, tcp:HOST:PORT or an http(s):// URL";
        // Port 0 cannot be connected to: every attempt would be refused until the timeout.
        const PORT: &str = "the port must be a number from 1 to 65535";
        // The kind before the first `:` is case-insensitive, like a URL scheme (RFC 3986
        // §3.1): `HTTP://…` and `TCP:db:5432` are what they look like.
        let (kind, rest) = s.split_once(':').ok_or_else(|| invalid(EXPECTED))?;
        match kind.to_ascii_lowercase().as_str() {
            "dns" => {
                if rest.is_empty() {
                    return Err(invalid("expected dns:NAME"));
                }
                check_host_name(rest).map_err(|r| invalid(&r))?;
                Ok(Target::Dns(rest.to_owned()))
            }
            "tcp" => {
                let (host, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| invalid("expected tcp:HOST:PORT"))?;
                let port = port
                    .parse()
                    .ok()
                    .filter(|&p: &u16| p != 0)
                    .ok_or_else(|| invalid(PORT))?;
                let host = parse_tcp_host(host).map_err(|r| invalid(&r))?;
                Ok(Target::Tcp { host, port })
            }
            // `http:db` would parse (as http://db/); a target says what it means in full.
            "http" | "https" if rest.starts_with("//") => {
                // The parsed URL's scheme is lowercase, and it alone chooses TLS.
                let url = reqwest::Url::parse(s).map_err(|e| invalid(&e.to_string()))?;
                if url.port() == Some(0) {
                    return Err(invalid(PORT));
                }
                Ok(Target::Http(url))
            }
            _ => Err(invalid(EXPECTED)),
        }
    }
}

/// The HOST of `tcp:HOST:PORT`: a name, an IPv4 address, or an IPv6 address in brackets (the
/// brackets only separate it from the port). Anything else would fail every attempt until the
/// timeout, so it is rejected up front.
fn parse_tcp_host(host: &str) -> Result<String, String> {
    const BRACKETS: &str = "an IPv6 address goes in brackets, e.g. tcp:[::1]:80";
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(BRACKETS)?;
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{inner:?} in brackets is not an IPv6 address"))?;
        return Ok(inner.to_owned());
    }
    if host.is_empty() {
        return Err("expected tcp:HOST:PORT".into());
    }
    if host.contains([':', '[', ']']) {
        return Err(BRACKETS.into());
    }
    check_host_name(host)?;
    Ok(host.to_owned())
}

/// A DNS name or an IPv4 address as written in a target: dot-separated, non-empty labels of
/// letters, digits, `-` and `_` (Kubernetes names are a subset), an optional final dot.
fn check_host_name(name: &str) -> Result<(), String> {
    let labels = name.strip_suffix('.').unwrap_or(name);
    let ok = name.len() <= 253
        && labels.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                // RFC 1123; the resolver refuses such a label, so it could never resolve.
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a host name (letters, digits, '-', '_' and '.')"
        ))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Dns(name) => write!(f, "dns:{name}"),
            Target::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            Target::Http(url) => write!(f, "{}", crate::fetch::shown(url)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// Give up after this long, with the last failure as the reason.
    pub timeout: Duration,
    /// Pause between attempts.
    pub interval: Duration,
    /// Bound on a single attempt (connect, DNS answer, HTTP response).
    pub attempt_timeout: Duration,
    /// A failure repeating the previous reason is logged at most this often; a new reason is
    /// logged at once. Polling every second must not flood `kubectl logs`.
    pub log_every: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            interval: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
            log_every: Duration::from_secs(10),
        }
    }
}

/// Waits for every target at once; fails with the first target to time out.
pub async fn wait_all(targets: &[Target], opts: &WaitOptions) -> Result<()> {
    let resolver = Resolver::from_system();
    let client = if targets.iter().any(|t| matches!(t, Target::Http(_))) {
        Some(tls::http_client(&ClientOptions {
            stall_timeout: opts.attempt_timeout,
            max_redirects: 10,
            resolver: resolver.clone(),
        })?)
    } else {
        None
    };
    let probes = Probes { resolver, client };
    try_join_all(targets.iter().map(|t| wait_one(t, &probes, opts))).await?;
    Ok(())
}

/// What the attempts share: one resolver, and one HTTP client when there are http targets.
struct Probes {
    resolver: Resolver,
    client: Option<reqwest::Client>,
}

async fn wait_one(target: &Target, probes: &Probes, opts: &WaitOptions) -> Result<()> {
    let started = Instant::now();
    let deadline = started + opts.timeout;
    let mut last: Option<(String, Instant)> = None;
    let mut attempt = 0u64;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            let last = last.map_or_else(|| "no attempt finished".to_owned(), |(reason, _)| reason);
            return Err(Error::WaitTimeout {
                target: target.to_string(),
                waited: opts.timeout,
                last,
            });
        }
        attempt += 1;
        let bound = opts.attempt_timeout.min(remaining);
        let reason = match tokio::time::timeout(bound, probe(target, probes)).await {
            Ok(Ok(detail)) => {
                tracing::info!(target = %target, attempts = attempt, waited = %elapsed(started), "ready: {detail}");
                return Ok(());
            }
            Ok(Err(reason)) => reason,
            Err(_) => format!("no answer within {}", human_duration(bound)),
        };
        let repeat = last
            .as_ref()
            .is_some_and(|(prev, at)| *prev == reason && at.elapsed() < opts.log_every);
        if !repeat {
            tracing::warn!(target = %target, attempt, waited = %elapsed(started), "not ready: {reason}");
            last = Some((reason, Instant::now()));
        } else if let Some((_, at)) = last {
            last = Some((reason, at));
        }
        tokio::time::sleep(
            opts.interval
                .min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    }
}

/// One attempt: `Ok` with what was found, or the reason it is not ready.
async fn probe(target: &Target, probes: &Probes) -> Result<String, String> {
    match target {
        Target::Dns(name) => {
            let addrs = probes
                .resolver
                .lookup(name)
                .await
                .map_err(|e| format!("cannot resolve {name}: {e}"))?;
            Ok(format!("{name} resolves to {}", addr_list(&addrs)))
        }
        Target::Tcp { host, port } => {
            let addrs = probes
                .resolver
                .lookup(host)
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))?;
            let addrs: Vec<SocketAddr> = addrs.into_iter().map(|ip| (ip, *port).into()).collect();
            let stream = tokio::net::TcpStream::connect(&addrs[..])
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            Ok(format!("connected to {peer}"))
        }
        Target::Http(url) => {
            let client = probes
                .client
                .as_ref()
                .expect("an HTTP client is built whenever an http target exists");
            let resp = client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| crate::retry::describe(&e))?;
            let status = resp.status();
            if status.is_success() {
                Ok(format!("HTTP {status}"))
            } else if status.is_redirection() {
                let why = crate::retry::unfollowed_redirect(resp.headers());
                Err(format!("HTTP {status}: {why}"))
            } else {
                Err(format!("HTTP {status}"))
            }
        }
    }
}

/// At most a few addresses: a nameserver answering with hundreds of records (it happens, and
/// an attacker can) made one log line of kilobytes.
fn addr_list(addrs: &[IpAddr]) -> String {
    const SHOWN: usize = 4;
    let mut list: Vec<String> = addrs.iter().take(SHOWN).map(IpAddr::to_string).collect();
    if addrs.len() > SHOWN {
        list.push(format!("and {} more", addrs.len() - SHOWN));
    }
    list.join(", ")
}

fn elapsed(since: Instant) -> String {
    human_duration(since.elapsed())
}

/// `beacon init wait --help`: what the step does and guarantees.
pub const ABOUT: &str = "\
Wait until every TARGET is ready, replacing a shell loop on nslookup in an init container.

  dns:NAME         NAME resolves (e.g. a Service's DNS name exists)
  tcp:HOST:PORT    a TCP connection is accepted
  http(s)://…      a GET answers 2xx (redirects followed)

Each failed attempt's reason is logged — a new reason at once, a repeated one at most every
--log-every — so `kubectl logs -c` shows what is missing without flooding.

Names are resolved in-process: /etc/hosts first, then the nameservers of /etc/resolv.conf with
its search list and ndots, so --timeout and SIGTERM end the step on time even while DNS hangs.

Exit status: 0 all ready, 1 timed out (the last reason is printed), 2 bad arguments,
143/130 interrupted.";

/// `beacon init wait --help`: how an init container uses it.
pub const EXAMPLE: &str = "\
Kubernetes:
  initContainers:
    - name: wait-for-service
      image: beacon:latest
      args: [init, wait, \"dns:myservice.default.svc.cluster.local\", \"tcp:db:5432\",
             --timeout, 5m, --interval, 2s]";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_address_lists_are_shortened() {
        let addrs: Vec<IpAddr> = (1..=200).map(|i| IpAddr::from([127, 0, 0, i])).collect();
        assert_eq!(
            addr_list(&addrs),
            "127.0.0.1, 127.0.0.2, 127.0.0.3, 127.0.0.4, and 196 more"
        );
        assert_eq!(addr_list(&addrs[..2]), "127.0.0.1, 127.0.0.2");
    }

    #[test]
    fn parses_targets() {
        assert_eq!(
            "dns:db.default.svc".parse::<Target>().unwrap(),
            Target::Dns("db.default.svc".into())
        );
        assert_eq!(
            "tcp:db:5432".parse::<Target>().unwrap(),
            Target::Tcp {
                host: "db".into(),
                port: 5432
            }
        );
        assert_eq!(
            "tcp:[::1]:80".parse::<Target>().unwrap(),
            Target::Tcp {
                host: "::1".into(),
                port: 80
            }
        );
        assert_eq!(
            "tcp:[::1]:80".parse::<Target>().unwrap().to_string(),
            "tcp:[::1]:80"
        );
        assert!(matches!(
            "https://x/healthz".parse::<Target>().unwrap(),
            Target::Http(_)
        ));
        assert_eq!(
            "tcp:10.0.0.1:80".parse::<Target>().unwrap(),
            Target::Tcp {
                host: "10.0.0.1".into(),
                port: 80
            }
        );
        assert!(
            "dns:db.default.svc.cluster.local."
                .parse::<Target>()
                .is_ok()
        );
        for bad in [
            "dns:",
            "dns:.",
            "dns:bad name",
            "tcp:[::1:80",
            "tcp:::1:80",
            "tcp:[db]:80",
            "tcp:db]:80",
            "tcp:[]:80",
            "tcp:db",
            "tcp:db:http",
            "tcp:db:0",
            "dns:-x",
            "dns:x-.y",
            "tcp:db:65536",
            "http://db:0/",
            "tcp::80",
            "db:5432",
            "ftp://x",
            "http:db",
            "dnsx:db",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_and_schemes_are_case_insensitive() {
        for (target, scheme) in [
            ("HTTP://db/healthz", "http"),
            ("Http://db/healthz", "http"),
            ("HTTPS://db/healthz", "https"),
        ] {
            match target.parse::<Target>() {
                Ok(Target::Http(url)) => assert_eq!(url.scheme(), scheme, "{target}"),
                other => panic!("{target}: {other:?}"),
            }
        }
        assert_eq!(
            "DNS:db.default.svc".parse::<Target>().unwrap(),
            Target::Dns("db.default.svc".into())
        );
        let tcp = "Tcp:db:5432".parse::<Target>().unwrap();
        assert_eq!(
            tcp,
            Target::Tcp {
                host: "db".into(),
                port: 5432
            }
        );
        // Shown in the canonical spelling.
        assert_eq!(tcp.to_string(), "tcp:db:5432");
        assert_eq!(
            "HTTPS://db/x".parse::<Target>().unwrap().to_string(),
            "https://db/x"
        );
    }
}
