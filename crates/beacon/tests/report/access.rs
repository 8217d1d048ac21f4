//! `beacon report` against endpoints that need credentials, with the real components:
//!
//! - a Prometheus (Debian's) with its own `--web.config.file`: TLS with a certificate from a
//!   throwaway CA made here by openssl, and basic auth with a bcrypt hash made by `htpasswd`;
//! - nginx in front of it and of an Alertmanager as the gateway Mimir/Cortex/OpenShift setups
//!   put there: it demands a bearer token and an `X-Scope-OrgID` tenant header, and passes the
//!   request on with its own basic-auth credentials.
//!
//! One stack, started by the first case that needs it, serves every case (start-up is most of
//! the cost). Every run logs at `trace`, and no secret may appear in its stdout or stderr,
//! whether it succeeds or fails.

use base64::Engine as _;
use std::{
    io::Write as _,
    net::TcpStream,
    path::Path,
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use crate::stack::{ALERTMANAGER, PROMETHEUS, Process, Workdir, free_port, require, spawn};
use beacon_testkit::tls_fixture::{LOOPBACK_NAMES, make_ca_and_server_certificate, openssl};
use serde_json::Value;

const USER: &str = "beacon";
const PASSWORD: &str = "pw-7c1e0b9d-never-printed";
const WRONG_PASSWORD: &str = "pw-wrong-3f5a-never-printed";
const TOKEN: &str = "tok-51d2e8a4-never-printed";
const WRONG_TOKEN: &str = "tok-wrong-9b7c-never-printed";
const TENANT: &str = "tenant-a";
/// A secret carried in a header (an API key some gateways want).
const API_KEY: &str = "key-2c9f61-never-printed";
/// The proxy's own credentials towards Prometheus.
const PROXY_PASSWORD: &str = "pw-proxy-0d4e-never-printed";

fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost signed by it.
fn make_certificates(d: &Path) {
    make_ca_and_server_certificate(d, LOOPBACK_NAMES);
    // A second CA that signed nothing here: trusting it must not let the server in.
    openssl(
        d,
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
         -keyout other-ca.key -out other-ca.pem -subj /CN=unrelated-CA",
    );
}

/// An htpasswd bcrypt hash of `password` (cost 4, the minimum: the test is not about strength).
fn bcrypt(password: &str) -> String {
    require("/usr/bin/htpasswd", "apache2-utils");
    let mut child = Command::new("/usr/bin/htpasswd")
        .args(["-niB", "-C", "4", USER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The password goes through stdin, not the command line.
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    line.trim()
        .strip_prefix(&format!("{USER}:"))
        .unwrap()
        .to_owned()
}

fn base64(input: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(input)
}

struct Stack {
    work: Workdir,
    /// https://127.0.0.1:<port>, TLS + basic auth.
    prometheus: String,
    /// https://127.0.0.1:<port>/prometheus and …/alertmanager, behind the token-and-tenant proxy.
    proxied_prometheus: String,
    proxied_alertmanager: String,
    /// On the proxy: a redirect to another origin (a login page).
    redirecting: String,
    _processes: Vec<Process>,
}

impl Stack {
    fn start() -> Self {
        require(PROMETHEUS, "prometheus");
        require(ALERTMANAGER, "prometheus-alertmanager");
        require("/usr/sbin/nginx", "nginx-light");
        let work = Workdir::new();
        let w = work.path();
        make_certificates(w);
        let mut processes = Vec::new();

        // Prometheus, with its web config: TLS and two basic-auth users (beacon, and the proxy).
        std::fs::write(
            w.join("web.yml"),
            format!(
                "tls_server_config:\n  cert_file: {w}/server.pem\n  key_file: {w}/server.key\n\
                 basic_auth_users:\n  {USER}: {}\n  proxy: {}\n",
                bcrypt(PASSWORD),
                bcrypt(PROXY_PASSWORD),
                w = w.display()
            ),
        )
        .unwrap();
        // Watchdog fires at once: a report that got through lists it.
        std::fs::write(
            w.join("rules.yml"),
            "groups:\n  - name: t\n    interval: 1s\n    rules:\n      - alert: Watchdog\n        expr: vector(1)\n        labels: {severity: none}\n",
        )
        .unwrap();
        std::fs::write(
            w.join("prometheus.yml"),
            "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs: []\n",
        )
        .unwrap();
        let prom_port = free_port();
        let mut prom = spawn(
            "prometheus",
            PROMETHEUS,
            &[
                "--config.file=prometheus.yml".to_owned(),
                "--storage.tsdb.path=tsdb".to_owned(),
                "--web.config.file=web.yml".to_owned(),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
            ],
            w,
        );
        prom.wait_until("ready", |log| {
            log.contains("Server is ready to receive web requests")
        });
        processes.push(prom);

        // Alertmanager with one alert, reachable only through the proxy in the cases below.
        let am_port = free_port();
        std::fs::write(
            w.join("alertmanager.yml"),
            "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let mut am = spawn(
            "alertmanager",
            ALERTMANAGER,
            &[
                "--config.file=alertmanager.yml".to_owned(),
                "--storage.path=am-data".to_owned(),
                format!("--web.listen-address=127.0.0.1:{am_port}"),
                "--cluster.listen-address=".to_owned(),
            ],
            w,
        );
        am.wait_until("listening", |_| accepts(am_port));
        processes.push(am);
        let posted = reqwest::blocking::Client::new()
            .post(format!("http://127.0.0.1:{am_port}/api/v2/alerts"))
            .json(&serde_json::json!([
                {"labels": {"alertname": "TenantAlert", "severity": "warning"}}
            ]))
            .send()
            .unwrap();
        assert!(posted.status().is_success(), "{posted:?}");

        // The gateway: TLS, then the bearer token (401 without it), then the tenant (403).
        let proxy_port = free_port();
        // Another origin, which logs the credentials of any request that reaches it.
        let other_port = free_port();
        for dir in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(w.join(dir)).unwrap();
        }
        let checks = format!(
            "if ($http_authorization != \"Bearer {TOKEN}\") {{\n\
                 add_header WWW-Authenticate 'Bearer realm=\"test gateway\"' always;\n\
                 return 401;\n\
             }}\n\
             if ($http_x_scope_orgid != \"{TENANT}\") {{ return 403; }}\n"
        );
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {w}/nginx.pid;\n\
             error_log {w}/nginx-error.log warn;\nevents {{ worker_connections 64; }}\n\
             http {{\n\
               access_log {w}/nginx-access.log;\n\
               client_body_temp_path {w}/client_body;\nproxy_temp_path {w}/proxy;\n\
               fastcgi_temp_path {w}/fastcgi;\nuwsgi_temp_path {w}/uwsgi;\nscgi_temp_path {w}/scgi;\n\
               server {{\n\
                 listen 127.0.0.1:{proxy_port} ssl;\n\
                 ssl_certificate {w}/server.pem;\nssl_certificate_key {w}/server.key;\n\
                 location /prometheus/ {{\n{checks}\
                   proxy_pass https://127.0.0.1:{prom_port}/;\n\
                   proxy_set_header Authorization \"Basic {proxy_basic}\";\n\
                   proxy_ssl_trusted_certificate {w}/ca.pem;\nproxy_ssl_verify on;\n\
                   proxy_ssl_name localhost;\n\
                 }}\n\
                 location /alertmanager/ {{\n{checks}\
                   proxy_pass http://127.0.0.1:{am_port}/;\n\
                   proxy_set_header Authorization \"\";\n\
                 }}\n\
                 location /login/ {{\n\
                   return 302 http://127.0.0.1:{other_port}/sso?state=st-4e2a;\n\
                 }}\n\
               }}\n\
               log_format seen '$request auth=$http_authorization tenant=$http_x_scope_orgid';\n\
               server {{\n\
                 listen 127.0.0.1:{other_port};\n\
                 access_log {w}/other-origin.log seen;\n\
                 location / {{ return 200 \"{{}}\"; }}\n\
               }}\n\
             }}\n",
            w = w.display(),
            proxy_basic = base64(&format!("proxy:{PROXY_PASSWORD}")),
        );
        std::fs::write(w.join("nginx.conf"), conf).unwrap();
        let mut nginx = spawn(
            "nginx",
            "/usr/sbin/nginx",
            &[
                "-p".to_owned(),
                w.display().to_string(),
                "-c".to_owned(),
                w.join("nginx.conf").display().to_string(),
            ],
            w,
        );
        nginx.wait_until("listening", |_| accepts(proxy_port) && accepts(other_port));
        processes.push(nginx);

        for (name, secret) in [
            ("password", PASSWORD),
            ("wrong-password", WRONG_PASSWORD),
            ("token", TOKEN),
            ("wrong-token", WRONG_TOKEN),
        ] {
            // As `echo` writes them: the trailing newline is not part of the secret.
            std::fs::write(w.join(name), format!("{secret}\n")).unwrap();
        }
        Self {
            prometheus: format!("https://127.0.0.1:{prom_port}"),
            proxied_prometheus: format!("https://127.0.0.1:{proxy_port}/prometheus"),
            proxied_alertmanager: format!("https://127.0.0.1:{proxy_port}/alertmanager"),
            redirecting: format!("https://127.0.0.1:{proxy_port}/login"),
            work,
            _processes: processes,
        }
    }

    fn file(&self, name: &str) -> String {
        self.work.path().join(name).display().to_string()
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "beacon report failed: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// Exit 1 with one `beacon: error:` line; returns it.
    fn error_line(&self) -> &str {
        assert_eq!(
            self.code,
            Some(1),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(self.stdout.is_empty(), "{}", self.stdout);
        self.stderr
            .lines()
            .rfind(|l| l.starts_with("beacon: error:"))
            .unwrap_or_else(|| panic!("no error line in:\n{}", self.stderr))
    }
}

/// `beacon report --format json …` logging at trace, with `env` set; fails if any secret shows.
fn run(args: &[String], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
    cmd.args([
        "report",
        "--format",
        "json",
        "--range",
        "5m",
        "--timeout",
        "10s",
    ])
    .args(args)
    .env("BEACON_LOG_FORMAT", "text")
    .env("BEACON_LOG", "trace");
    for key in [
        "BEACON_PROMETHEUS_URL",
        "BEACON_ALERTMANAGER_URL",
        "BEACON_PROMETHEUS_BASIC_AUTH_PASSWORD",
        "BEACON_ALERTMANAGER_BASIC_AUTH_PASSWORD",
        "SSL_CERT_FILE",
    ] {
        cmd.env_remove(key);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in [
        PASSWORD,
        WRONG_PASSWORD,
        TOKEN,
        WRONG_TOKEN,
        PROXY_PASSWORD,
        API_KEY,
        &base64(&format!("{USER}:{PASSWORD}")),
        &base64(&format!("{USER}:{WRONG_PASSWORD}")),
    ] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret was printed by `beacon report {args:?}`:\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

/// Alert names from Prometheus (`prometheus`) or Alertmanager (`alertmanager/alerts`).
fn alert_names(r: &Value, source: &str) -> Vec<String> {
    r["alerts"]["data"]
        .pointer(&format!("/{source}"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x["alertname"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
fn assert_mentions(line: &str, needles: &[&str]) {
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} missing in: {line}");
    }
}

static STACK: OnceLock<Stack> = OnceLock::new();

/// The stack every credentials case shares, started by the first to ask. Rules are evaluated
/// every second: it is ready once Watchdog fires, the proof that authenticated queries return
/// Prometheus' data.
fn stack() -> &'static Stack {
    STACK.get_or_init(|| {
        let stack = Stack::start();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = run(&stack.basic(&stack.file("password")), &[]).json();
            if alert_names(&r, "prometheus").contains(&"Watchdog".to_owned()) {
                break;
            }
            assert!(Instant::now() < deadline, "no Watchdog: {}", r["alerts"]);
            std::thread::sleep(Duration::from_millis(300));
        }
        stack
    })
}

impl Stack {
    /// Arguments for basic auth over TLS to Prometheus, the password from `password_file`.
    fn basic(&self, password_file: &str) -> Vec<String> {
        vec![
            "--prometheus".to_owned(),
            self.prometheus.clone(),
            "--ca-file".to_owned(),
            self.file("ca.pem"),
            "--basic-auth-user".to_owned(),
            USER.to_owned(),
            "--basic-auth-password-file".to_owned(),
            password_file.to_owned(),
        ]
    }

    /// Arguments for Prometheus through the gateway: bearer token and, if given, tenant header.
    fn gateway(&self, token_file: &str, tenant_header: Option<&str>) -> Vec<String> {
        let mut v = vec![
            "--prometheus".to_owned(),
            self.proxied_prometheus.clone(),
            "--ca-file".to_owned(),
            self.file("ca.pem"),
            "--bearer-token-file".to_owned(),
            token_file.to_owned(),
        ];
        if let Some(h) = tenant_header {
            v.extend(["--header".to_owned(), h.to_owned()]);
        }
        v
    }
}

fn tenant_header() -> String {
    format!("X-Scope-OrgID:{TENANT}")
}

#[test]
fn basic_auth_over_tls_with_a_password_file_reaches_prometheus() {
    let stack = stack();
    let r = run(&stack.basic(&stack.file("password")), &[]).json();
    assert!(
        r["prometheus_version"].as_str().unwrap().starts_with('2'),
        "{r}"
    );
    assert!(
        alert_names(&r, "prometheus").contains(&"Watchdog".to_owned()),
        "{}",
        r["alerts"]
    );
}

#[test]
fn the_basic_auth_password_can_come_from_the_environment() {
    let stack = stack();
    let mut args = stack.basic(&stack.file("password"));
    args.truncate(6);
    let r = run(
        &args,
        &[("BEACON_PROMETHEUS_BASIC_AUTH_PASSWORD", PASSWORD)],
    )
    .json();
    assert!(alert_names(&r, "prometheus").contains(&"Watchdog".to_owned()));
}

#[test]
fn no_credentials_is_a_401_naming_the_flags_that_give_them() {
    let stack = stack();
    let no_auth = run(&stack.basic(&stack.file("password"))[..4], &[]);
    assert_mentions(
        no_auth.error_line(),
        &[
            "HTTP 401",
            "Basic",
            "--basic-auth-user",
            "--bearer-token-file",
        ],
    );
}

#[test]
fn a_wrong_password_is_a_401_naming_the_user_and_the_file_never_the_password() {
    let stack = stack();
    let wrong = run(&stack.basic(&stack.file("wrong-password")), &[]);
    assert_mentions(
        wrong.error_line(),
        &[
            "HTTP 401",
            "refused",
            "\"beacon\"",
            &stack.file("wrong-password"),
        ],
    );
}

/// Without --ca-file the private CA is unknown; an unrelated CA does not help either.
#[test]
fn a_missing_or_unrelated_ca_is_a_certificate_error_naming_ca_file() {
    let stack = stack();
    let mut no_ca = stack.basic(&stack.file("password"));
    no_ca.drain(2..4);
    assert_mentions(run(&no_ca, &[]).error_line(), &["certificate", "--ca-file"]);
    let mut other_ca = stack.basic(&stack.file("password"));
    other_ca[3] = stack.file("other-ca.pem");
    assert_mentions(
        run(&other_ca, &[]).error_line(),
        &["certificate", "--ca-file"],
    );
}

#[test]
fn an_unreadable_password_file_is_named_before_anything_is_contacted() {
    let stack = stack();
    let missing = stack.file("no-such-password");
    assert_mentions(
        run(&stack.basic(&missing), &[]).error_line(),
        &[&missing, "--basic-auth-password-file"],
    );
}

#[test]
fn token_and_tenant_reach_prometheus_and_alertmanager_through_the_gateway() {
    let stack = stack();
    let (ca, token, tenant) = (stack.file("ca.pem"), stack.file("token"), tenant_header());
    let mut args = stack.gateway(&token, Some(&tenant));
    args.extend(
        [
            "--alertmanager",
            &stack.proxied_alertmanager,
            "--alertmanager-ca-file",
            &ca,
            "--alertmanager-bearer-token-file",
            &token,
            "--alertmanager-header",
            &tenant,
        ]
        .map(str::to_owned),
    );
    let r = run(&args, &[]).json();
    assert!(
        alert_names(&r, "prometheus").contains(&"Watchdog".to_owned()),
        "{}",
        r["alerts"]
    );
    assert_eq!(
        alert_names(&r, "alertmanager/alerts"),
        ["TenantAlert"],
        "{}",
        r["alerts"]
    );
    assert_eq!(r["alerts"]["notes"], Value::Array(vec![]));
}

/// Prometheus' credentials are not Alertmanager's: without its own, Alertmanager answers 401
/// and question 6 says so (the report is still written).
#[test]
fn alertmanager_without_credentials_of_its_own_is_a_note_not_a_failure() {
    let stack = stack();
    let mut args = stack.gateway(&stack.file("token"), Some(&tenant_header()));
    args.extend([
        "--alertmanager".to_owned(),
        stack.proxied_alertmanager.clone(),
        "--alertmanager-ca-file".to_owned(),
        stack.file("ca.pem"),
    ]);
    let r = run(&args, &[]).json();
    let notes = r["alerts"]["notes"].to_string();
    assert_mentions(&notes, &["HTTP 401", "--alertmanager-bearer-token-file"]);
}

/// The token but no tenant: the gateway's 403, and the answer points at the tenant header.
/// Other headers are named in it, their values never.
#[test]
fn a_token_without_the_tenant_is_a_403_naming_the_headers_sent_not_their_values() {
    let stack = stack();
    let mut args = stack.gateway(&stack.file("token"), None);
    args.extend(["--header".to_owned(), format!("X-Api-Key: {API_KEY}")]);
    let no_tenant = run(&args, &[]);
    assert_mentions(
        no_tenant.error_line(),
        &[
            "HTTP 403",
            "--header",
            "X-Scope-OrgID",
            "headers sent: X-Api-Key",
        ],
    );
}

#[test]
fn a_wrong_token_is_a_401_naming_the_token_file() {
    let stack = stack();
    let wrong_token = stack.file("wrong-token");
    let bad = run(&stack.gateway(&wrong_token, Some(&tenant_header())), &[]);
    assert_mentions(
        bad.error_line(),
        &["HTTP 401", "Bearer", "--bearer-token-file", &wrong_token],
    );
}

/// A redirect to another origin (a login page) is reported, not followed: neither the token
/// nor the tenant header reaches a host they were not given for.
#[test]
fn a_redirect_to_another_origin_is_reported_not_followed() {
    let stack = stack();
    let mut args = stack.gateway(&stack.file("token"), Some(&tenant_header()));
    args[1] = stack.redirecting.clone();
    let line = run(&args, &[]).error_line().to_owned();
    assert_mentions(&line, &["HTTP 302", "redirect to http://127.0.0.1:"]);
    assert!(
        !line.contains("st-4e2a"),
        "the login URL's query is shown: {line}"
    );
    let reached =
        std::fs::read_to_string(stack.work.path().join("other-origin.log")).unwrap_or_default();
    assert_eq!(reached, "", "the other origin was contacted");
}

/// An HTTP server on 127.0.0.1 that puts the request's headers into its answers, as a
/// debugging gateway or a verbose API error does (`echo authorization=Bearer …`):
/// - `/prom/api/v1/status/buildinfo` succeeds, so the report goes on to ask its questions, and
///   every other `/prom/` request fails as the Prometheus API does, with the headers in `error`;
/// - `/bad/` fails already at buildinfo that way, `/raw/` answers a plain-text 502, and `/am/`
///   (an Alertmanager) a 500, each with the headers in the body.
fn echo_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || echo(stream));
        }
    });
    format!("http://{addr}")
}

fn echo(mut stream: TcpStream) {
    use std::io::Read as _;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let echoed: Vec<String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| format!("{}={}", k.trim().to_ascii_lowercase(), v.trim()))
        .collect();
    let echoed = format!("echo {}", echoed.join(" "));
    let api_error =
        serde_json::json!({"status": "error", "errorType": "bad_data", "error": echoed});
    let (status, body) = if path.starts_with("/prom/api/v1/status/buildinfo") {
        (
            "200 OK",
            r#"{"status":"success","data":{"version":"2.42.0"}}"#.to_owned(),
        )
    } else if path.starts_with("/prom/") || path.starts_with("/bad/") {
        ("400 Bad Request", api_error.to_string())
    } else if path.starts_with("/raw/") {
        ("502 Bad Gateway", echoed)
    } else {
        ("500 Internal Server Error", echoed)
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn credentials_echoed_back_by_a_server_are_never_printed() {
    let base = echo_server();
    let work = crate::stack::Workdir::new();
    let file = |name: &str, content: &str| {
        let path = work.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    };
    let token = file("token", &format!("{TOKEN}\n"));
    let password = file("password", &format!("{PASSWORD}\n"));
    let prometheus = |url: String| {
        vec![
            "--prometheus".to_owned(),
            url,
            "--bearer-token-file".to_owned(),
            token.clone(),
            "--header".to_owned(),
            format!("X-Api-Key: {API_KEY}"),
        ]
    };

    // Every query's error echoes the headers: each note says what Prometheus answered, with
    // the credentials cut out. Alertmanager's 500 echoes its basic auth and header.
    let mut args = prometheus(format!("{base}/prom"));
    args.extend(
        [
            "--alertmanager",
            &format!("{base}/am"),
            "--alertmanager-basic-auth-user",
            USER,
            "--alertmanager-basic-auth-password-file",
            &password,
            "--alertmanager-header",
            &format!("X-Api-Key:{API_KEY}"),
        ]
        .map(str::to_owned),
    );
    // Every query failed: a partial report, exit status 3.
    let partial = run(&args, &[]);
    assert_eq!(partial.code, Some(3), "{}", partial.stderr);
    let r: Value = serde_json::from_str(&partial.stdout).unwrap();
    let notes = r["alerts"]["notes"].to_string();
    assert_mentions(&notes, &["bad_data", "HTTP 500", "echo", "<redacted>"]);
    let workload = r["workload"]["notes"].to_string();
    assert_mentions(&workload, &["bad_data", "authorization=Bearer <redacted>"]);

    // A failure at the first request is the error line, with the same cut.
    let line = run(&prometheus(format!("{base}/bad")), &[])
        .error_line()
        .to_owned();
    assert_mentions(&line, &["bad_data", "authorization=Bearer <redacted>"]);
    let line = run(&prometheus(format!("{base}/raw")), &[])
        .error_line()
        .to_owned();
    assert_mentions(&line, &["HTTP 502", "echo", "<redacted>"]);
}

#[test]
fn a_fifo_or_an_oversized_file_as_a_credential_or_ca_file_is_refused() {
    let work = crate::stack::Workdir::new();
    let fifo = work.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let fifo = fifo.display().to_string();
    let huge = work.path().join("huge");
    std::fs::write(&huge, vec![b'x'; 5 << 20]).unwrap();
    let huge = huge.display().to_string();
    // Nothing listens on the discard port: files are read before anything is contacted.
    let base = ["--prometheus", "http://127.0.0.1:9"];
    for (flags, file, reason) in [
        (&["--bearer-token-file"][..], &fifo, "not a regular file"),
        (
            &["--basic-auth-user", USER, "--basic-auth-password-file"][..],
            &fifo,
            "not a regular file",
        ),
        (&["--ca-file"][..], &fifo, "not a regular file"),
        (&["--bearer-token-file"][..], &huge, "larger than"),
        (&["--ca-file"][..], &huge, "larger than"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
        cmd.arg("report")
            .args(base)
            .args(flags)
            .arg(file)
            .env_remove("BEACON_PROMETHEUS_BASIC_AUTH_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // A bound, not a timing claim: without the fix the report waits on the FIFO forever.
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("beacon report {flags:?} {file} hangs");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let line = stderr
            .lines()
            .rfind(|l| l.starts_with("beacon: error:"))
            .unwrap_or_default();
        assert_mentions(line, &[file.as_str(), flags[flags.len() - 1], reason]);
    }
}
