//! Name resolution for `fetch` and `wait`, in-process and cancellable.
//!
//! glibc's getaddrinfo blocks a thread for up to `timeout × attempts` per query and per
//! search domain (20 s and more with the Kubernetes search list and `ndots:5`), and nothing can
//! interrupt it: a deadline fired on time, but the process then waited for the abandoned lookup
//! threads before exiting. Here a lookup is a future on the runtime, so dropping it (a
//! deadline, SIGTERM) ends it at once.
//!
//! The semantics follow glibc's `hosts: files dns` as a pod sees them: an IP literal is used as
//! is; a name listed in /etc/hosts is answered from there, as written (no search list), with no
//! DNS query; anything else goes to the nameservers of /etc/resolv.conf with its `search` list
//! and `ndots`, `timeout` and `attempts` options. Without a usable resolv.conf the nameserver is
//! 127.0.0.1, glibc's default. Nothing is cached, as with getaddrinfo.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use hickory_resolver::{
    TokioResolver,
    config::{NameServerConfig, ResolverConfig},
    net::{DnsError, NetError, runtime::TokioRuntimeProvider},
    proto::op::ResponseCode,
};

const HOSTS_FILE: &str = "/etc/hosts";

/// Cheap to clone: a reqwest client and every `wait` target share one.
#[derive(Clone)]
pub(crate) struct Resolver {
    dns: TokioResolver,
    hosts: Arc<HashMap<String, Vec<IpAddr>>>,
    /// For reqwest's lookups: how long a name may take to resolve, so that a silent nameserver
    /// is reported as such rather than as the server not answering.
    answer_within: Option<Duration>,
}

impl Resolver {
    /// Reads /etc/resolv.conf and /etc/hosts once; an init step is short-lived.
    pub(crate) fn from_system() -> Self {
        // hickory's default strategy asks for A first and AAAA only when there is no A record:
        // a nameserver that drops AAAA queries (it happens) cannot then delay an IPv4 answer.
        let mut builder = TokioResolver::builder_tokio().unwrap_or_else(|e| {
            tracing::debug!(error = %e, "no usable /etc/resolv.conf; using the nameserver on 127.0.0.1");
            let local = NameServerConfig::udp_and_tcp(IpAddr::V4(Ipv4Addr::LOCALHOST));
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], vec![local]),
                TokioRuntimeProvider::default(),
            )
        });
        // No cache, as getaddrinfo has none: `wait` polls, and a cached NXDOMAIN (negative TTL
        // up to the zone's SOA minimum) would hide a Service created meanwhile.
        builder.options_mut().cache_size = 0;
        let dns = builder
            .build()
            .expect("a resolver from a parsed configuration builds");
        let hosts = std::fs::read_to_string(HOSTS_FILE)
            .map(|text| parse_hosts(&text))
            .unwrap_or_default();
        Self {
            dns,
            hosts: Arc::new(hosts),
            answer_within: None,
        }
    }

    /// This resolver, giving up on a name (for reqwest) after `limit`.
    pub(crate) fn answering_within(mut self, limit: Duration) -> Self {
        self.answer_within = Some(limit);
        self
    }

    /// The addresses of `host`, or a short reason (the caller names the host).
    pub(crate) async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(addrs) = self.hosts.get(&key) {
            return Ok(addrs.clone());
        }
        let found = self.dns.lookup_ip(host).await.map_err(|e| {
            if e.is_nx_domain() {
                "no such name (NXDOMAIN)".to_owned()
            } else if e.is_no_records_found() {
                "no address records".to_owned()
            } else if let NetError::Dns(DnsError::ResponseCode(code)) = &e {
                // hickory's own text is "DNS error: error response: Server Failure".
                format!("the nameserver answered {}", rcode_name(*code))
            } else {
                e.to_string()
            }
        })?;
        let addrs: Vec<IpAddr> = found.iter().collect();
        if addrs.is_empty() {
            return Err("no address records".to_owned());
        }
        Ok(addrs)
    }
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str();
            let lookup = this.lookup(host);
            let found = match this.answer_within {
                Some(limit) => tokio::time::timeout(limit, lookup)
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "no answer within {}",
                            crate::progress::human_duration(limit)
                        ))
                    }),
                None => lookup.await,
            };
            let addrs = found.map_err(|reason| format!("cannot resolve {host}: {reason}"))?;
            // reqwest puts the URL's port in afterwards.
            let addrs: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// A DNS response code by its RFC 1035 name, as `dig` and nameserver logs print it.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        other => format!("{other} (rcode {})", u16::from(other)),
    }
}

/// `/etc/hosts`: an address, then its names; `#` starts a comment. Names are case-insensitive.
fn parse_hosts(text: &str) -> HashMap<String, Vec<IpAddr>> {
    let mut hosts: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_ascii_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        for name in fields {
            let addrs = hosts.entry(name.to_ascii_lowercase()).or_default();
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_lines() {
        let hosts = parse_hosts(
            "127.0.0.1 localhost # loopback\n::1 localhost ip6-localhost\n\
             # 10.0.0.1 commented\n10.1.2.3\tDB db.local\nnot-an-ip name\n",
        );
        assert_eq!(
            hosts["localhost"],
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(hosts["db"], ["10.1.2.3".parse::<IpAddr>().unwrap()]);
        assert!(hosts.contains_key("db.local"));
        assert!(!hosts.contains_key("commented"));
        assert!(!hosts.contains_key("name"));
    }
}
