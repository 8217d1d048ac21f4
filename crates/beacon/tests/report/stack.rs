//! A real Prometheus (and Alertmanager) on 127.0.0.1 for `beacon report` tests: fixture series
//! written as OpenMetrics with timestamps, backfilled with `promtool tsdb create-blocks-from
//! openmetrics`, so every value over the last hour is known exactly; plus a fixture exporter
//! for the live scrape path. Every process is killed when its guard drops.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
pub const CHROMIUM: &str = "/usr/bin/chromium";

pub use beacon_testkit::{free_port, require};

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// OpenMetrics text with timestamps, grouped by metric name (a family's samples must be
/// contiguous) and series by series in time order (the TSDB rejects out-of-order samples).
/// In memory by default; [`OpenMetrics::spilling`] streams each family to its own file
/// instead, for clusters whose text runs to gigabytes.
#[derive(Default)]
pub struct OpenMetrics {
    families: BTreeMap<String, Family>,
    spill: Option<PathBuf>,
    line: String,
    pub series: usize,
    pub samples: usize,
}

enum Family {
    Text(String),
    File(PathBuf, std::io::BufWriter<std::fs::File>),
}

impl OpenMetrics {
    /// Families are written to files under `dir` as they grow; [`OpenMetrics::write_to`]
    /// joins them.
    pub fn spilling(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        Self {
            spill: Some(dir.to_owned()),
            ..Self::default()
        }
    }

    pub fn series(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        times: &[f64],
        value: impl Fn(f64) -> f64,
    ) {
        use std::io::Write as _;
        self.line.clear();
        let _ = write!(self.line, "{name}{{");
        for (i, (k, v)) in labels.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(self.line, "{sep}{k}=\"{v}\"");
        }
        self.line.push_str("} ");
        let prefix_len = self.line.len();
        if !self.families.contains_key(name) {
            let family = match &self.spill {
                None => Family::Text(String::new()),
                Some(dir) => {
                    let path = dir.join(format!("{}.om", self.families.len()));
                    let file = std::fs::File::create(&path).unwrap();
                    Family::File(path, std::io::BufWriter::with_capacity(1 << 20, file))
                }
            };
            self.families.insert(name.to_owned(), family);
        }
        let family = self.families.get_mut(name).unwrap();
        for &t in times {
            self.line.truncate(prefix_len);
            let _ = writeln!(self.line, "{} {t}", value(t));
            match family {
                Family::Text(out) => out.push_str(&self.line),
                Family::File(_, out) => out.write_all(self.line.as_bytes()).unwrap(),
            }
        }
        self.series += 1;
        self.samples += times.len();
    }

    /// Keeps only the lines of family `name` that `keep` accepts (a cluster without some series).
    pub fn retain(&mut self, name: &str, keep: impl Fn(&str) -> bool) {
        match self.families.get_mut(name) {
            Some(Family::Text(body)) => {
                *body = body
                    .lines()
                    .filter(|l| keep(l))
                    .map(|l| format!("{l}\n"))
                    .collect();
            }
            Some(Family::File(..)) => panic!("retain needs an OpenMetrics held as text"),
            None => {}
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for family in self.families.values() {
            match family {
                Family::Text(body) => out.push_str(body),
                Family::File(..) => panic!("a spilling OpenMetrics has no text: use write_to"),
            }
        }
        out.push_str("# EOF\n");
        out
    }

    /// Writes the whole exposition to `path`, family after family, and removes the spill
    /// files.
    pub fn write_to(self, path: &Path) {
        use std::io::Write as _;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        for (_, family) in self.families {
            match family {
                Family::Text(body) => out.write_all(body.as_bytes()).unwrap(),
                Family::File(spill, writer) => {
                    drop(writer.into_inner().unwrap());
                    let mut file = std::fs::File::open(&spill).unwrap();
                    std::io::copy(&mut file, &mut out).unwrap();
                    std::fs::remove_file(&spill).unwrap();
                }
            }
        }
        out.write_all(b"# EOF\n").unwrap();
        out.flush().unwrap();
    }
}

/// `start, start+step, …, end`.
pub fn grid(start: f64, end: f64, step: f64) -> Vec<f64> {
    let n = ((end - start) / step).round() as usize;
    (0..=n).map(|i| start + i as f64 * step).collect()
}

/// A temp dir that outlives the processes using it.
pub struct Workdir(pub tempfile::TempDir);

impl Workdir {
    pub fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// Turns OpenMetrics text into TSDB blocks under `tsdb`.
pub fn backfill(work: &Path, tsdb: &Path, data: &OpenMetrics) {
    let input = work.join("backfill.om");
    std::fs::write(&input, data.text()).unwrap();
    backfill_file(&input, tsdb);
}

/// Turns the OpenMetrics file `input` into TSDB blocks under `tsdb`.
pub fn backfill_file(input: &Path, tsdb: &Path) {
    require(PROMTOOL, "prometheus");
    std::fs::create_dir_all(tsdb).unwrap();
    let out = Command::new(PROMTOOL)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(input)
        .arg(tsdb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool backfill failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills the child on drop. A process that is never dropped (one shared by several tests,
/// held in a `static`) still ends with the test binary: see [`spawn`].
pub struct Process {
    pub name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready(log)` holds, failing with the log if the process exits or is slow.
    pub fn wait_until(&mut self, what: &str, ready: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready(&self.log()) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.name, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} not {what} within 60 s:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Closing the pipe makes the watcher kill the process; waiting for that (rather than
        // killing it here) means the watcher never signals a pid that was already reaped.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `program` through `sh`, which leaves a watcher on a pipe from this process and then
/// `exec`s the program (same pid): when the test binary exits, however it exits, the pipe
/// closes and the watcher kills the program and removes `cleanup` (a shared stack's work
/// dir). Statics are never dropped, so without this a shared Prometheus would outlive the tests.
fn spawn_tied(
    name: &'static str,
    program: &str,
    args: &[String],
    work: &Path,
    cleanup: Option<&Path>,
) -> Process {
    const SCRIPT: &str = r#"exec 3<&0
(read -r _ <&3; kill "$$" 2>/dev/null; if [ -n "$CLEANUP" ]; then sleep 1; rm -rf "$CLEANUP"; fi) >/dev/null 2>&1 &
exec "$0" "$@""#;
    let log = work.join(format!("{name}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg(program)
        .args(args)
        .env("CLEANUP", cleanup.map(Path::as_os_str).unwrap_or_default())
        .current_dir(work)
        .stdin(Stdio::piped())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    Process { name, child, log }
}

pub fn spawn(name: &'static str, program: &str, args: &[String], work: &Path) -> Process {
    spawn_tied(name, program, args, work, None)
}

fn wait_ready(process: &mut Process, url: &str) {
    let client = reqwest::blocking::Client::new();
    process.wait_until(&format!("ready at {url}"), |_| {
        client
            .get(url)
            .send()
            .is_ok_and(|r| r.status().is_success())
    });
}

pub struct Prometheus {
    pub url: String,
    /// Held for its `Drop`, which stops the process.
    _process: Process,
}

#[derive(Default)]
pub struct PrometheusConfig {
    /// Extra YAML for `scrape_configs:` entries.
    pub scrape_configs: String,
    pub rules: Option<String>,
    pub alertmanager: Option<String>,
    /// Extra command-line flags, e.g. `--query.max-samples=…`.
    pub args: Vec<String>,
}

impl Prometheus {
    /// Starts Prometheus on the blocks in `tsdb` (if any) with a retention long enough to keep
    /// them.
    pub fn start(work: &Path, tsdb: &Path, config: PrometheusConfig) -> Self {
        Self::start_with_cleanup(work, tsdb, config, None)
    }

    /// As [`Prometheus::start`], and `cleanup` is removed once the test binary has exited.
    pub fn start_with_cleanup(
        work: &Path,
        tsdb: &Path,
        config: PrometheusConfig,
        cleanup: Option<&Path>,
    ) -> Self {
        require(PROMETHEUS, "prometheus");
        let mut yaml = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
        if let Some(rules) = &config.rules {
            std::fs::write(work.join("rules.yml"), rules).unwrap();
            yaml.push_str("rule_files: [rules.yml]\n");
        }
        if let Some(am) = &config.alertmanager {
            let host = am.trim_start_matches("http://");
            let _ = write!(
                yaml,
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{host}']\n"
            );
        }
        let _ = write!(yaml, "scrape_configs:\n{}", config.scrape_configs);
        if config.scrape_configs.trim().is_empty() {
            yaml.push_str("  []\n");
        }
        let conf = work.join("prometheus.yml");
        std::fs::write(&conf, yaml).unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let args = vec![
            format!("--config.file={}", conf.display()),
            format!("--storage.tsdb.path={}", tsdb.display()),
            "--storage.tsdb.retention.time=100y".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn".into(),
        ];
        let args = [args, config.args.clone()].concat();
        let mut process = spawn_tied("prometheus", PROMETHEUS, &args, work, cleanup);
        wait_ready(&mut process, &format!("{url}/-/ready"));
        Self {
            url,
            _process: process,
        }
    }
}

pub struct Alertmanager {
    pub url: String,
    /// Held for its `Drop`, which stops the process.
    _process: Process,
}

impl Alertmanager {
    pub fn start(work: &Path) -> Self {
        require(ALERTMANAGER, "prometheus-alertmanager");
        let conf = work.join("alertmanager.yml");
        std::fs::write(
            &conf,
            "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let data = work.join("am-data");
        let args = vec![
            format!("--config.file={}", conf.display()),
            format!("--storage.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=".into(),
            "--log.level=warn".into(),
        ];
        let mut process = spawn("alertmanager", ALERTMANAGER, &args, work);
        wait_ready(&mut process, &format!("{url}/-/ready"));
        Self {
            url,
            _process: process,
        }
    }
}

/// `beacon report …` with its exit status, stdout and stderr.
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn report(args: &[&str]) -> Run {
    report_logging(args, "text", "warn")
}

/// `beacon report …` with its log in `format` (`text`, `json`) at `level`.
pub fn report_logging(args: &[&str], format: &str, level: &str) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_beacon"))
        .arg("report")
        .args(args)
        .env("BEACON_LOG_FORMAT", format)
        .env("BEACON_LOG", level)
        .env_remove("BEACON_PROMETHEUS_URL")
        .env_remove("BEACON_ALERTMANAGER_URL")
        .output()
        .unwrap();
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the report as JSON and parses it, failing with stderr if it did not succeed.
pub fn report_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let run = report(&all);
    assert!(
        run.ok,
        "beacon report failed ({:?}): {}",
        run.code, run.stderr
    );
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

/// Relative comparison for floats that went through PromQL arithmetic.
#[track_caller]
pub fn assert_close(actual: &serde_json::Value, expected: f64, what: &str) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: expected {expected}, got {actual}"));
    let tolerance = 1e-6 * expected.abs().max(1.0);
    assert!(
        (a - expected).abs() <= tolerance,
        "{what}: expected {expected}, got {a}"
    );
}

/// A one-thread HTTP/1.1 server on 127.0.0.1 answering every request with `handler(path)`
/// (status, content type, body): the fixture exporter and the "wrong URL" server.
pub struct TextServer {
    pub url: String,
}

impl TextServer {
    pub fn start(handler: impl Fn(&str) -> (u16, &'static str, String) + Send + 'static) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Skip the headers; none of the fixtures needs a body.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .to_owned();
                let (status, content_type, body) = handler(&path);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url }
    }
}

/// Evaluates `rules` (a rule file) with promtool against the Prometheus at `url` over
/// `[start, end)` every `eval_interval`, and moves the recorded blocks into `tsdb`: recorded
/// series as Prometheus' own rules would have written them.
pub fn backfill_rules(
    url: &str,
    rules: &Path,
    (start, end): (f64, f64),
    eval_interval: &str,
    tsdb: &Path,
) {
    let blocks = rules.with_extension("blocks");
    let out = Command::new(PROMTOOL)
        .args(["tsdb", "create-blocks-from", "rules", "--quiet"])
        .arg(format!("--url={url}"))
        .arg(format!("--start={start}"))
        .arg(format!("--end={end}"))
        .arg(format!("--eval-interval={eval_interval}"))
        .arg(format!("--output-dir={}", blocks.display()))
        .arg(rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool rules backfill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for block in std::fs::read_dir(&blocks).unwrap() {
        let block = block.unwrap();
        std::fs::rename(block.path(), tsdb.join(block.file_name())).unwrap();
    }
}
