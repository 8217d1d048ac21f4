//! How `beacon init` resolves names, and its deadlines and SIGTERM while DNS never answers.
//!
//! Each test runs beacon in a mount namespace of its own (`unshare -m`) with a resolv.conf
//! bind-mounted over /etc/resolv.conf: the Kubernetes search list, `ndots:5`, and as the only
//! nameserver a socket on a loopback address that either answers one name or reads queries and
//! never answers. Every deadline and SIGTERM must end the process soon after, whatever DNS
//! does. Needs root (bind mounts, port 53); the tests run as root here and in CI.

use std::{
    net::{Ipv4Addr, TcpListener, UdpSocket},
    process::Command,
    sync::atomic::{AtomicU8, Ordering},
    time::{Duration, Instant},
};

use crate::helpers::{self, Run, assert_no_leftovers, finish};

/// Slack over a deadline: a loaded 2-core machine delays process start and exit, but a
/// process waiting for an abandoned lookup (glibc: 5 s per query, per search domain) does not
/// come in under it.
const MARGIN: Duration = Duration::from_millis(1500);

/// A name that only the (silent) nameserver could answer: not in /etc/hosts, fewer dots than
/// `ndots:5`, so every search domain is tried first.
const NAME: &str = "db.default";

/// A nameserver on its own loopback address that swallows every query — or, made with
/// [`Nameserver::answering`], answers A queries for one name.
struct Nameserver {
    resolv_conf: tempfile::NamedTempFile,
    _udp: UdpSocket,
    _tcp: TcpListener,
    _drain: std::thread::JoinHandle<()>,
}

impl Nameserver {
    fn start() -> Self {
        Self::serve(None, Duration::ZERO)
    }

    /// Answers `name`'s A query with `ip` (AAAA: no records), NXDOMAIN for any other name.
    fn answering(name: &str, ip: Ipv4Addr) -> Self {
        Self::serve(Some((name.to_owned(), ip)), Duration::ZERO)
    }

    /// Answers every query with SERVFAIL (a nameserver whose upstream is down).
    fn failing() -> Self {
        Self::serve(
            Some((SERVFAIL.to_owned(), Ipv4Addr::UNSPECIFIED)),
            Duration::ZERO,
        )
    }

    /// Like [`Nameserver::answering`], but `name` only exists `after` this long (a Service
    /// created while its clients wait); NXDOMAIN before.
    fn answering_after(name: &str, ip: Ipv4Addr, after: Duration) -> Self {
        Self::serve(Some((name.to_owned(), ip)), after)
    }

    fn serve(answer: Option<(String, Ipv4Addr)>, after: Duration) -> Self {
        let created = Instant::now() + after;
        // resolv.conf cannot name a port, so it must be 53: one loopback address per test in
        // 127.54.0.0/16 (clear of container.rs's 127.53.0.x), skipping any already taken.
        static NEXT: AtomicU8 = AtomicU8::new(1);
        let third = (std::process::id() % 250) as u8;
        let (udp, tcp) = std::iter::repeat_with(|| {
            Ipv4Addr::new(127, 54, third, NEXT.fetch_add(1, Ordering::Relaxed).max(1))
        })
        .take(250)
        .find_map(|ip| {
            // TCP too, in case a resolver falls back to it: accepted by the kernel, never
            // answered.
            Some((
                UdpSocket::bind((ip, 53)).ok()?,
                TcpListener::bind((ip, 53)).ok()?,
            ))
        })
        .expect("no free 127.54.x.y:53 for the test's nameserver (binding port 53 needs root)");
        let ip = udp.local_addr().unwrap().ip();
        let reader = udp.try_clone().unwrap();
        let drain = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, peer)) = reader.recv_from(&mut buf) {
                if let Some((name, ip)) = &answer
                    && let Some(reply) = dns_reply(
                        &buf[..n],
                        if Instant::now() >= created { name } else { "" },
                        *ip,
                    )
                {
                    let _ = reader.send_to(&reply, peer);
                }
            }
        });
        let mut resolv_conf = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(
            &mut resolv_conf,
            format!(
                "nameserver {ip}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
            )
            .as_bytes(),
        )
        .unwrap();
        Self {
            resolv_conf,
            _udp: udp,
            _tcp: tcp,
            _drain: drain,
        }
    }

    /// `beacon ARGS` in a mount namespace whose /etc/resolv.conf points at this resolver.
    /// `unshare` and `sh` exec into beacon, so the child's pid is beacon's.
    fn beacon(&self, args: &[&str]) -> Command {
        let inner = format!(
            "mount --bind {} /etc/resolv.conf && exec \"$0\" \"$@\"",
            self.resolv_conf.path().display()
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "sh", "-c", &inner, helpers::BEACON])
            .args(args);
        helpers::as_the_kubelet_would(&mut cmd);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        finish(self.beacon(args).spawn().unwrap(), started)
    }

    /// Starts `args`, sends SIGTERM after `after`, and returns the run and the time from the
    /// signal to the exit.
    fn run_and_terminate(&self, args: &[&str], after: Duration) -> (Run, Duration) {
        let started = Instant::now();
        let child = self.beacon(args).spawn().unwrap();
        std::thread::sleep(after);
        let signalled = Instant::now();
        // SAFETY: kill(2) on our own child's pid (unshare and sh exec into beacon).
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = finish(child, started);
        let after_signal = signalled.elapsed();
        (out, after_signal)
    }
}

/// The `known` name that makes [`dns_reply`] answer SERVFAIL to everything.
const SERVFAIL: &str = "<servfail>";

/// The reply to one query (RFC 1035 §4.1): `known`'s A record, an empty answer for its other
/// types, NXDOMAIN for other names; `None` for anything that is not a plain query.
fn dns_reply(query: &[u8], known: &str, answer: Ipv4Addr) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let (mut labels, mut at) = (Vec::new(), 12);
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let hit = labels.join(".") == known;
    let servfail = known == SERVFAIL;
    let with_answer = hit && qtype == 1;
    let mut reply = query[0..2].to_vec(); // id
    reply.push(0x80 | (query[2] & 0x79) | 0x04); // QR, opcode and RD, AA
    // RA; NOERROR, NXDOMAIN or SERVFAIL
    reply.push(
        0x80 | if servfail {
            2
        } else if hit {
            0
        } else {
            3
        },
    );
    // One question; one answer or none; for NXDOMAIN an SOA in the authority section, as a
    // real nameserver sends so that resolvers may cache the negative answer (RFC 2308); no
    // additional records (so no EDNS).
    let soa = !hit && !servfail;
    reply.extend_from_slice(&[0, 1, 0, u8::from(with_answer), 0, u8::from(soa), 0, 0]);
    reply.extend_from_slice(query.get(12..at + 4)?);
    if with_answer {
        // The name as a pointer to the question, A, IN, TTL 30 s, 4 bytes of address.
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        reply.extend_from_slice(&answer.octets());
    }
    if soa {
        // Owner: the root; SOA, IN, TTL 30 s; MNAME and RNAME the root, then serial, refresh,
        // retry, expire and a minimum (negative-caching) TTL of 30 s.
        reply.extend_from_slice(&[0, 0, 6, 0, 1, 0, 0, 0, 30, 0, 22, 0, 0]);
        for field in [1u32, 3600, 600, 86400, 30] {
            reply.extend_from_slice(&field.to_be_bytes());
        }
    }
    Some(reply)
}

/// The run ended as SIGTERM ends it, within [`MARGIN`] of the signal.
fn assert_ended_by_sigterm_at_once(out: &Run, after_signal: Duration) {
    out.expect_code(143)
        .expect_last_line("interrupted by SIGTERM");
    assert!(
        after_signal < MARGIN,
        "exited {after_signal:?} after SIGTERM; stderr:\n{}",
        out.stderr
    );
}

#[test]
fn the_silent_nameserver_really_hangs_lookups() {
    // Guards the fixture: without it the tests below would pass for the wrong reason.
    let dns = Nameserver::start();
    let out = dns.run(&[
        "init",
        "wait",
        &format!("dns:{NAME}"),
        "--timeout",
        "1s",
        "--interval",
        "100ms",
    ]);
    out.expect_code(1).expect_last_line(&format!(
        "beacon: error: timed out after 1s waiting for dns:{NAME}: "
    ));
}

/// `init wait TARGET --timeout 3s` while the nameserver never answers: it must fail on
/// time, saying it timed out.
fn wait_times_out_on_time(target: &str) -> Run {
    let dns = Nameserver::start();
    let out = dns.run(&["init", "wait", target, "--timeout", "3s"]);
    out.expect_code(1).expect_last_line(&format!(
        "beacon: error: timed out after 3s waiting for {target}: "
    ));
    out.expect_within(Duration::from_secs(3) + MARGIN);
    out
}

#[test]
fn wait_dns_times_out_on_time() {
    let target = format!("dns:{NAME}");
    let out = wait_times_out_on_time(&target);
    // The attempt's bound is the time left, printed rounded (it was `2s 999ms 999us 890ns`).
    assert_eq!(
        out.last_line(),
        format!("beacon: error: timed out after 3s waiting for {target}: no answer within 3s"),
        "stderr:\n{}",
        out.stderr
    );
}

#[test]
fn wait_tcp_times_out_on_time() {
    wait_times_out_on_time(&format!("tcp:{NAME}:5432"));
}

#[test]
fn wait_http_times_out_on_time() {
    wait_times_out_on_time(&format!("http://{NAME}:8080/healthz"));
}

#[test]
fn fetch_times_out_on_time_and_leaves_nothing() {
    let dns = Nameserver::start();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let url = format!("http://{NAME}/index.html");
    let out = dns.run(&[
        "init",
        "fetch",
        &url,
        "--to",
        target.to_str().unwrap(),
        "--timeout",
        "2s",
        "--retries",
        "0",
    ]);
    out.expect_code(1).expect_last_line(&format!(
        // The phase that hung: it used to say "timed out before a response", blaming the server.
        "beacon: error: {url}: gave up after 1 attempt(s): cannot connect: cannot resolve {NAME}: no answer within 2s"
    ));
    out.expect_within(Duration::from_secs(2) + MARGIN);
    assert!(!target.exists());
    assert_no_leftovers(dir.path());
}

#[test]
fn sigterm_mid_lookup_ends_wait_at_once() {
    let dns = Nameserver::start();
    let target = format!("dns:{NAME}");
    let (out, after_signal) = dns.run_and_terminate(
        &["init", "wait", &target, "--timeout", "5m"],
        Duration::from_millis(1500),
    );
    assert_ended_by_sigterm_at_once(&out, after_signal);
}

#[test]
fn sigterm_mid_lookup_ends_fetch_at_once() {
    let dns = Nameserver::start();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("index.html");
    let url = format!("http://{NAME}/index.html");
    let (out, after_signal) = dns.run_and_terminate(
        &["init", "fetch", &url, "--to", target.to_str().unwrap()],
        Duration::from_millis(1500),
    );
    assert_ended_by_sigterm_at_once(&out, after_signal);
    assert!(!target.exists());
    assert_no_leftovers(dir.path());
}

#[test]
fn hosts_file_names_still_resolve() {
    // /etc/hosts is consulted before DNS, so localhost needs no nameserver at all.
    let dns = Nameserver::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = dns.run(&[
        "init",
        "wait",
        "dns:localhost",
        &format!("tcp:localhost:{port}"),
        "--timeout",
        "5s",
    ]);
    out.expect_code(0);
    out.expect_within(Duration::from_secs(5));
}

#[test]
fn sigterm_is_honoured_while_a_blocking_task_hangs() {
    // Hashing a FIFO at the target (for --sha256) blocks a thread of the runtime's blocking
    // pool in open(2) forever; SIGTERM must not wait for it.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("fifo");
    helpers::mkfifo(&target);
    let sum = "ab".repeat(32);
    let started = Instant::now();
    let mut child = helpers::beacon(&[
        "init",
        "fetch",
        "http://127.0.0.1:9/x",
        "--to",
        target.to_str().unwrap(),
        "--sha256",
        &sum,
    ])
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let signalled = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    while child.try_wait().unwrap().is_none() {
        if signalled.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("still running 10 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = finish(child, started);
    out.expect_code(143)
        .expect_last_line("interrupted by SIGTERM");
    assert!(
        signalled.elapsed() < MARGIN,
        "exited {:?} after SIGTERM",
        signalled.elapsed()
    );
}

#[test]
fn a_short_name_resolves_through_the_search_list() {
    // As a pod resolves a Service: `db` is tried as db.default.svc.cluster.local first.
    let dns = Nameserver::answering("db.default.svc.cluster.local", Ipv4Addr::LOCALHOST);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = dns.run(&[
        "init",
        "wait",
        "dns:db",
        &format!("tcp:db:{port}"),
        "--timeout",
        "10s",
    ]);
    out.expect_code(0);
    out.expect_stderr("ready: db resolves to 127.0.0.1");
    out.expect_stderr("ready: connected to 127.0.0.1");
}

#[test]
fn a_name_that_does_not_exist_says_so() {
    let dns = Nameserver::answering("db.default.svc.cluster.local", Ipv4Addr::LOCALHOST);
    let out = dns.run(&["init", "wait", "dns:nope", "--timeout", "1s"]);
    out.expect_code(1);
    assert_eq!(
        out.last_line(),
        "beacon: error: timed out after 1s waiting for dns:nope: cannot resolve nope: no such name (NXDOMAIN)",
        "{}",
        out.stderr
    );
}

#[test]
fn a_name_that_appears_later_is_seen_at_the_next_attempt() {
    // No answer is cached between attempts (getaddrinfo caches nothing either): a Service
    // created while the init container waits is ready at the next poll, not after a
    // negative TTL.
    let dns = Nameserver::answering_after(
        "db.default.svc.cluster.local",
        Ipv4Addr::LOCALHOST,
        Duration::from_millis(1500),
    );
    let out = dns.run(&[
        "init",
        "wait",
        "dns:db",
        "--interval",
        "200ms",
        "--timeout",
        "20s",
    ]);
    out.expect_code(0);
    out.expect_stderr("not ready: cannot resolve db: no such name");
    out.expect_within(Duration::from_millis(1500) + MARGIN);
}

#[test]
fn a_failing_nameserver_is_named_plainly() {
    // Used to read "cannot resolve db.default: DNS error: error response: Server Failure".
    let ns = Nameserver::failing();
    let out = ns.run(&["init", "wait", &format!("dns:{NAME}"), "--timeout", "1s"]);
    out.expect_code(1);
    assert_eq!(
        out.last_line(),
        format!(
            "beacon: error: timed out after 1s waiting for dns:{NAME}: cannot resolve {NAME}: the nameserver answered SERVFAIL"
        ),
        "stderr:\n{}",
        out.stderr
    );
}
