//! The container image's runtime contract, with real containers (podman), as the Helm chart runs
//! them: uid/gid 65532, read-only root filesystem (without podman's extra tmpfs, like Kubernetes'
//! readOnlyRootFilesystem), no capabilities, no privilege escalation, a volume at /data and one
//! at /init_data shared by the init steps (each its own container, in order) and the server.
//!
//! No registry is reachable here, so the image is built by `scripts/build-image --standin`: the
//! static binary from the host, Containerfile.prebuilt, and a local stand-in for
//! distroless/static (`scripts/distroless-standin`). podman runs with a private store and config
//! in a temp dir (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), so nothing global is touched and
//! everything is gone afterwards. Only 127.0.0.0/8 is ever contacted: the fetch step reads a
//! fixture standing in for info.cern.ch, and DNS is answered by a tiny server on a loopback
//! address that the container's resolv.conf names, the way a pod reaches the cluster DNS.
//!
//! podman missing is a failure, not a skip: `scripts/install-test-deps` installs it.

use std::{
    collections::HashSet,
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use beacon_testkit::{
    fixture_http::{FixtureHttp, Route},
    repo_root,
};

/// The chart's securityContext, as podman flags. `--read-only-tmpfs=false`: podman would
/// otherwise mount writable tmpfs on /tmp, /run and /var/tmp, which Kubernetes does not.
const HARDENED: &[&str] = &[
    "--read-only",
    "--read-only-tmpfs=false",
    "--user",
    "65532:65532",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
];

const INDEX_HTML: &str = "<html><head></head><body><header>\n<title>http://info.cern.ch</title>\n\
</header>\n\n<h1>http://info.cern.ch - home of the first website</h1>\n</body></html>\n";
const EXAMPLE_TXT: &str = "bla-bla\nwhoa\nthis is the 14th lab\n";

// ---- podman with a private store ---------------------------------------------------------------

/// podman pointed at a store under a temp dir. Drop removes what this run created, by name.
struct Podman {
    dir: tempfile::TempDir,
    run_id: String,
    created: Mutex<Created>,
    /// Set once podman is known to use the private store; until then Drop removes nothing.
    private: bool,
}

#[derive(Default)]
struct Created {
    containers: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
}

impl Podman {
    fn new() -> Self {
        match Command::new("podman").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "`podman --version` failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!(
                "podman is required for the container image tests and could not be run ({e}); \
                 install it with scripts/install-test-deps (Debian: podman runc)"
            ),
        }
        let dir = tempfile::Builder::new()
            .prefix("beacon-podman-")
            .tempdir()
            .unwrap();
        let root = dir.path();
        // The sandbox's settings (shared/README): runc because crun refuses the cgroup setup,
        // cgroupfs without systemd, ulimits within the hard limits. tmp_dir keeps podman's
        // runtime state (exit files, locks) private to this run as well.
        std::fs::write(
            root.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits=[\"nofile=20000:20000\",\"nproc=4096:4096\"]\n\
                 [engine]\nruntime=\"runc\"\ncgroup_manager=\"cgroupfs\"\ntmp_dir=\"{}\"\n",
                root.join("tmp").display()
            ),
        )
        .unwrap();
        // The driver is named explicitly: conmon runs `podman container cleanup` with the
        // store given as flags but without this environment, and a store created with an
        // auto-detected driver ("") then mismatches, leaving containers "stopped" for 20 s.
        std::fs::write(
            root.join("storage.conf"),
            format!(
                "[storage]\ndriver=\"overlay\"\ngraphroot=\"{}\"\nrunroot=\"{}\"\n",
                root.join("graph").display(),
                root.join("run").display()
            ),
        )
        .unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let mut podman = Podman {
            run_id: format!("{}-{nanos:x}", std::process::id()),
            dir,
            created: Mutex::default(),
            private: false,
        };
        // Everything below relies on the store being private: check it before creating anything.
        let graph = podman.ok(&["info", "--format", "{{.Store.GraphRoot}}"]);
        assert_eq!(
            Path::new(graph.trim()),
            podman.dir.path().join("graph"),
            "podman ignored CONTAINERS_STORAGE_CONF"
        );
        podman.private = true;
        podman
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .env(
                "CONTAINERS_STORAGE_CONF",
                self.dir.path().join("storage.conf"),
            )
            .stdin(Stdio::null());
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.args(args);
        self.env(&mut cmd);
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs podman and fails the test with its stderr unless it succeeds; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A name unique to this run, so that concurrent runs and leftovers never collide.
    fn name(&self, what: &str) -> String {
        format!("beacon-test-{}-{what}", self.run_id)
    }

    fn volume(&self, what: &str) -> String {
        let name = self.name(what);
        self.ok(&["volume", "create", &name]);
        self.created.lock().unwrap().volumes.push(name.clone());
        name
    }

    fn volume_dir(&self, volume: &str) -> PathBuf {
        PathBuf::from(
            self.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume])
                .trim(),
        )
    }

    /// Runs a repository script with this store; returns its stdout's last line.
    fn script(&self, script: &str, args: &[&str]) -> String {
        let mut cmd = Command::new(repo_root().join("scripts").join(script));
        cmd.args(args).current_dir(repo_root());
        self.env(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "scripts/{script} {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned()
    }

    /// `podman run --rm` with the hardened flags; the container's exit code and output.
    fn run_step(&self, extra: &[&str], image: &str, args: &[&str]) -> Step {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(HARDENED);
        all.extend_from_slice(extra);
        all.push(image);
        all.extend_from_slice(args);
        let started = Instant::now();
        let out = self.output(&all);
        Step {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    /// Starts the server detached with the hardened flags, published on 127.0.0.1 only.
    fn start_server(&self, what: &str, image: &str, data: &str, init: &str) -> Server {
        let name = self.name(what);
        self.created.lock().unwrap().containers.push(name.clone());
        let mut args = vec!["run", "--detach", "--name", &name];
        args.extend_from_slice(HARDENED);
        let data_mount = format!("{data}:/data");
        // The server only reads /init_data, as in the chart.
        let init_mount = format!("{init}:/init_data:ro");
        args.extend_from_slice(&[
            "--publish",
            "127.0.0.1::8000",
            "--volume",
            &data_mount,
            "--volume",
            &init_mount,
            image,
        ]);
        // No command: the image's CMD must be `serve`.
        self.ok(&args);
        let port = self.ok(&["port", &name, "8000/tcp"]);
        let addr: SocketAddr = port
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected `podman port` output: {port:?}"));
        Server { name, addr }
    }

    fn logs(&self, container: &str) -> String {
        let out = self.output(&["logs", container]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if !self.private {
            return;
        }
        let created = std::mem::take(&mut *self.created.lock().unwrap());
        for c in &created.containers {
            let _ = self.output(&["rm", "--force", "--time", "0", c]);
        }
        for v in &created.volumes {
            let _ = self.output(&["volume", "rm", "--force", v]);
        }
        for i in &created.images {
            let _ = self.output(&["rmi", "--force", i]);
        }
        // The stand-in and anything the builds left.
        let _ = self.output(&["rmi", "--all", "--force"]);
        // Then the store. conmon's `podman container cleanup` may still be finishing and write
        // into it meanwhile, so a failed removal is retried before TempDir's silent attempt.
        for _ in 0..20 {
            match std::fs::remove_dir_all(self.dir.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(Duration::from_millis(250))
                }
                _ => break,
            }
        }
    }
}

struct Step {
    args: Vec<String>,
    code: Option<i32>,
    stderr: String,
    elapsed: Duration,
}

impl Step {
    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`beacon {}` in a container: expected exit {code}; stderr:\n{}",
            self.args.join(" "),
            self.stderr
        );
        self
    }

    /// The one-line reason `beacon` prints last on failure.
    fn last_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or_default()
    }
}

struct Server {
    name: String,
    addr: SocketAddr,
}

// ---- a tiny DNS server -----------------------------------------------------------------------

/// Answers A queries for one name over UDP on a loopback address (IPv4 only; AAAA gets an empty
/// NOERROR answer, other names NXDOMAIN) and records what was asked, so the test can tell that
/// a name came from the DNS protocol rather than from /etc/hosts.
struct TinyDns {
    ip: Ipv4Addr,
    queries: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TinyDns {
    fn start(name: &str, answer: Ipv4Addr) -> Self {
        // resolv.conf cannot name a port, so it must be 53; an address in 127.53.0.0/24 other
        // than 127.0.0.1 keeps clear of any resolver on the machine and of concurrent runs.
        let first = (std::process::id() % 200) as u8 + 2;
        let (socket, ip) = (0..50u8)
            .map(|i| Ipv4Addr::new(127, 53, 0, first.wrapping_add(i).max(2)))
            .find_map(|ip| UdpSocket::bind((ip, 53)).ok().map(|s| (s, ip)))
            .expect("no free 127.53.0.x:53 for the test's DNS server (binding port 53 needs root)");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s, name) = (queries.clone(), stop.clone(), name.to_ascii_lowercase());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some((qname, reply)) = dns_reply(&buf[..n], &name, answer) {
                    q.lock().unwrap().push(qname);
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        TinyDns {
            ip,
            queries,
            stop,
            thread: Some(thread),
        }
    }

    fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for TinyDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Builds the reply to one query (RFC 1035 §4.1); `None` for anything that is not a query.
fn dns_reply(query: &[u8], known: &str, answer: Ipv4Addr) -> Option<(String, Vec<u8>)> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // compression pointers do not occur in a question
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = query.get(12..at + 4)?;
    let qname = labels.join(".");
    let hit = qname == known;
    let rcode = if hit { 0 } else { 3 }; // NOERROR or NXDOMAIN
    let with_answer = hit && qtype == 1;
    let mut reply = Vec::with_capacity(64);
    reply.extend_from_slice(&query[0..2]); // id
    // QR, the query's opcode and RD, AA; RA; rcode.
    reply.push(0x80 | (query[2] & 0x79) | 0x04);
    reply.push(0x80 | rcode);
    reply.extend_from_slice(&[0, 1, 0, u8::from(with_answer), 0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if with_answer {
        // Name as a pointer to the question, type A, class IN, TTL 30 s, 4 bytes of address.
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        reply.extend_from_slice(&answer.octets());
    }
    Some((qname, reply))
}

// ---- helpers ---------------------------------------------------------------------------------

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn get(client: &reqwest::blocking::Client, addr: SocketAddr, path: &str) -> (u16, String) {
    let resp = client
        .get(format!("http://{addr}{path}"))
        .send()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (resp.status().as_u16(), resp.text().unwrap())
}

/// Polls /readyz until 200; fails with the container's logs otherwise.
fn wait_ready(podman: &Podman, server: &Server, client: &reqwest::blocking::Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.get(format!("http://{}/readyz", server.addr)).send() {
            Ok(r) if r.status() == 200 => return,
            _ if Instant::now() > deadline => panic!(
                "{} never answered /readyz with 200; logs:\n{}",
                server.name,
                podman.logs(&server.name)
            ),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// `podman stop` sends SIGTERM (the image sets no other StopSignal); a clean exit is 0 well
/// within the grace period, where a SIGKILL would show as 137 after it.
fn stop_cleanly(podman: &Podman, server: &Server) {
    let started = Instant::now();
    podman.ok(&["stop", "--time", "25", &server.name]);
    let took = started.elapsed();
    let code = podman.ok(&["inspect", "--format", "{{.State.ExitCode}}", &server.name]);
    let logs = podman.logs(&server.name);
    assert_eq!(
        code.trim(),
        "0",
        "{} did not exit 0 on SIGTERM; logs:\n{logs}",
        server.name
    );
    assert!(took < Duration::from_secs(20), "stopping took {took:?}");
    assert!(
        logs.contains(r#""signal":"SIGTERM""#),
        "the server did not log the SIGTERM it got; logs:\n{logs}"
    );
}

/// Uid, gid, effective capabilities and no_new_privs of a running container's process, read
/// from the host's /proc (the image has no shell to ask from inside).
fn process_status(podman: &Podman, container: &str) -> String {
    let pid = podman.ok(&["inspect", "--format", "{{.State.Pid}}", container]);
    std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap()
}

fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc status:\n{status}"))
        .trim()
}

fn assert_owned_by_nonroot(path: &Path) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        (meta.uid(), meta.gid()),
        (65532, 65532),
        "{} is not owned by 65532:65532",
        path.display()
    );
}

// ---- the tests -------------------------------------------------------------------------------

#[test]
fn image_runs_the_init_steps_and_the_server_under_the_charts_security_contract() {
    let podman = Podman::new();
    let tag = format!("localhost/beacon-test:{}", podman.run_id);
    podman.created.lock().unwrap().images.push(tag.clone());
    assert_eq!(
        podman.script("build-image", &["--standin", "--tag", &tag]),
        tag
    );

    // The image config: what the chart's `args` and env rely on.
    let inspect: serde_json::Value =
        serde_json::from_str(&podman.ok(&["image", "inspect", &tag])).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/beacon"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["serve"]));
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    for want in [
        "BEACON_LISTEN=0.0.0.0:8000",
        "BEACON_DATA_DIR=/data",
        "BEACON_CONFIG=/config/config.json",
        "BEACON_INIT_DATA_DIR=/init_data",
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
    ] {
        assert!(env.contains(&want), "image env lacks {want}: {env:?}");
    }
    assert!(config["ExposedPorts"].get("8000/tcp").is_some(), "{config}");
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    let size = inspect[0]["Size"].as_u64().unwrap();
    eprintln!("image {tag}: {:.1} MB", size as f64 / 1e6);
    assert!(size < 40_000_000, "image is {size} bytes");

    // No shell: an init step can only be a beacon subcommand.
    let sh = podman.output(&["run", "--rm", "--entrypoint", "/bin/sh", &tag, "-c", "true"]);
    assert!(
        !sh.status.success(),
        "/bin/sh ran in the image: {:?}",
        String::from_utf8_lossy(&sh.stdout)
    );

    let data = podman.volume("data");
    let init = podman.volume("init");
    let cern = FixtureHttp::start(vec![("/", Route::ok(INDEX_HTML))]);
    let init_mount = format!("{init}:/init_data");
    // The fixture listens on the host's 127.0.0.1, hence the host network for the init steps.
    let step_flags = ["--network=host", "--volume", &init_mount];

    // The init containers in the chart's order; twice, the second time being a pod restart
    // that keeps the emptyDir (the steps must be idempotent).
    for round in 0..2 {
        podman
            .run_step(
                &step_flags,
                &tag,
                &[
                    "init",
                    "wait",
                    &format!("tcp:{}", cern.addr),
                    &cern.url("/"),
                    "--timeout",
                    "20s",
                ],
            )
            .expect_code(0);
        podman
            .run_step(
                &step_flags,
                &tag,
                &[
                    "init",
                    "fetch",
                    &cern.url("/"),
                    "--to",
                    "/init_data/index.html",
                ],
            )
            .expect_code(0);
        for (n, line) in ["bla-bla", "whoa", "this is the 14th lab"]
            .iter()
            .enumerate()
        {
            let id = format!("line-{n}");
            let step = podman.run_step(
                &step_flags,
                &tag,
                &[
                    "init",
                    "write",
                    "/init_data/example.txt",
                    "--line",
                    line,
                    "--id",
                    &id,
                ],
            );
            step.expect_code(0);
            if round == 1 {
                assert!(
                    step.stderr.contains("already applied"),
                    "a re-run of write {id} did not recognise the applied step:\n{}",
                    step.stderr
                );
            }
        }
    }
    // The files the steps wrote belong to 65532: the volume took the image's mount point
    // ownership, and nothing ran as root.
    let init_dir = podman.volume_dir(&init);
    assert_eq!(
        std::fs::read_to_string(init_dir.join("index.html")).unwrap(),
        INDEX_HTML
    );
    assert_eq!(
        std::fs::read_to_string(init_dir.join("example.txt")).unwrap(),
        EXAMPLE_TXT
    );
    for f in ["", "index.html", "example.txt", ".example.txt.steps"] {
        assert_owned_by_nonroot(&init_dir.join(f));
    }

    // The server: default CMD, published on 127.0.0.1 only.
    let client = http();
    let server = podman.start_server("serve", &tag, &data, &init);
    wait_ready(&podman, &server, &client);
    let logs = podman.logs(&server.name);
    assert!(
        logs.lines()
            .any(|l| l.contains(r#""message":"listening""#)
                && l.contains(r#""addr":"0.0.0.0:8000""#)),
        "no JSON `listening` line on 0.0.0.0:8000:\n{logs}"
    );
    assert_eq!(
        get(&client, server.addr, "/init-data/index.html"),
        (200, INDEX_HTML.to_owned())
    );
    assert_eq!(
        get(&client, server.addr, "/init-data/example.txt"),
        (200, EXAMPLE_TXT.to_owned())
    );
    assert_eq!(get(&client, server.addr, "/").0, 200);
    assert_eq!(get(&client, server.addr, "/").0, 200);

    let status = process_status(&podman, &server.name);
    assert!(
        status_field(&status, "Uid")
            .split_whitespace()
            .all(|u| u == "65532"),
        "{status}"
    );
    assert!(
        status_field(&status, "Gid")
            .split_whitespace()
            .all(|g| g == "65532"),
        "{status}"
    );
    assert_eq!(status_field(&status, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");

    stop_cleanly(&podman, &server);
    let data_dir = podman.volume_dir(&data);
    assert_owned_by_nonroot(&data_dir.join("visits.db"));

    // A new container on the same volume: the visits survived (the PVC's job).
    let again = podman.start_server("serve-again", &tag, &data, &init);
    wait_ready(&podman, &again, &client);
    let (code, body) = get(&client, again.addr, "/visits");
    assert_eq!(code, 200);
    let visits: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(visits["visits"], 2, "{body}");
    stop_cleanly(&podman, &again);
}

#[test]
fn dns_resolution_works_inside_the_image() {
    let podman = Podman::new();
    let tag = format!("localhost/beacon-test:{}-dns", podman.run_id);
    podman.created.lock().unwrap().images.push(tag.clone());
    podman.script("build-image", &["--standin", "--tag", &tag]);

    // Through the DNS protocol, the way a pod resolves a Service: the kubelet's resolv.conf
    // with the namespace's search path and ndots:5, so a short name is tried with the search
    // domain first.
    let service_fqdn = "beacon-headless.beacon.svc.cluster.local";
    let dns = TinyDns::start(service_fqdn, Ipv4Addr::LOCALHOST);
    let resolv = podman.dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!(
            "nameserver {}\nsearch beacon.svc.cluster.local svc.cluster.local cluster.local\n\
             options ndots:5 timeout:1 attempts:2\n",
            dns.ip
        ),
    )
    .unwrap();
    let resolv_mount = format!("{}:/etc/resolv.conf:ro", resolv.display());
    let via_dns = ["--network=host", "--volume", &resolv_mount];

    let step = podman.run_step(
        &via_dns,
        &tag,
        &["init", "wait", "dns:beacon-headless", "--timeout", "20s"],
    );
    step.expect_code(0);
    assert!(
        step.stderr
            .contains("beacon-headless resolves to 127.0.0.1"),
        "{}",
        step.stderr
    );
    assert!(
        dns.queries().iter().any(|q| q == service_fqdn),
        "the name did not come from the DNS server (queries: {:?})",
        dns.queries()
    );

    // A Service that does not exist: a clear reason and exit 1 once the timeout is up.
    let step = podman.run_step(
        &via_dns,
        &tag,
        &["init", "wait", "dns:no-such-service", "--timeout", "3s"],
    );
    step.expect_code(1);
    assert!(
        step.last_line()
            .starts_with("beacon: error: timed out after 3s waiting for dns:no-such-service:")
            && step.last_line().contains("cannot resolve no-such-service"),
        "unclear failure: {}",
        step.last_line()
    );
    assert!(step.elapsed < Duration::from_secs(15), "{:?}", step.elapsed);
    let asked: HashSet<String> = dns.queries().into_iter().collect();
    assert!(
        asked.contains("no-such-service.beacon.svc.cluster.local"),
        "{asked:?}"
    );

    // Through /etc/hosts (podman's --add-host, Kubernetes' hostAliases) with no network at all,
    // and localhost: the static glibc's "files" source in an image with no NSS modules.
    let step = podman.run_step(
        &["--network=none", "--add-host", "beacon-peer.test:127.0.0.1"],
        &tag,
        &[
            "init",
            "wait",
            "dns:beacon-peer.test",
            "dns:localhost",
            "--timeout",
            "10s",
        ],
    );
    step.expect_code(0);
    assert!(
        step.stderr
            .contains("beacon-peer.test resolves to 127.0.0.1"),
        "{}",
        step.stderr
    );
}

/// Containerfile.prebuilt exists because the builder image cannot be pulled here; its runtime
/// stage must stay the one in Containerfile, or the tests above would test another image.
#[test]
fn prebuilt_containerfile_has_the_same_runtime_stage() {
    let read = |name: &str| std::fs::read_to_string(repo_root().join(name)).unwrap();
    let runtime_stage = |text: &str| -> Vec<String> {
        let start = text
            .find("\nARG BASE=")
            .expect("a runtime stage starting with ARG BASE=");
        text[start..]
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            // The only intended difference: files from the builder stage vs the context.
            .map(|l| l.replace("--from=build ", "").replace(" /out/", " "))
            .collect()
    };
    let multi = read("Containerfile");
    let prebuilt = read("Containerfile.prebuilt");
    assert_eq!(runtime_stage(&multi), runtime_stage(&prebuilt));
    // The builder compiles with the Rust rust-toolchain.toml names, not one written here.
    assert!(
        multi.contains("COPY rust-toolchain.toml") && multi.contains("rustup toolchain install")
    );
    // Both paths build the binary with the one script that makes it static.
    assert!(multi.contains("COPY scripts/build-static") && multi.contains("$(BEACON_REVISION"));
    assert!(read("scripts/build-static").contains("+crt-static"));
    assert!(read("scripts/build-image").contains("scripts/build-static"));
    let stage = runtime_stage(&prebuilt);
    for want in [
        "ARG BASE=gcr.io/distroless/static-debian12:nonroot",
        "USER 65532:65532",
        "ENTRYPOINT [\"/usr/local/bin/beacon\"]",
        "CMD [\"serve\"]",
    ] {
        assert!(
            stage.iter().any(|l| l == want),
            "runtime stage lacks {want}"
        );
    }
}
