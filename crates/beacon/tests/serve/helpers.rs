use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use beacon_serve::{Application, Settings, identity::Identity};

pub const BEACON: &str = env!("CARGO_BIN_EXE_beacon");

/// A running `beacon serve` with its own data, config and init-data directories.
pub struct TestServer {
    pub child: Child,
    pub addr: SocketAddr,
    /// The probe/metrics port, when started with `--admin-listen`.
    pub admin_addr: Option<SocketAddr>,
    pub root: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
    _tmp: Option<tempfile::TempDir>,
}

#[derive(Default)]
pub struct Options {
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Defaults to `<root>/config/config.json`.
    pub config: Option<PathBuf>,
    /// Defaults to `<root>/data`.
    pub data_dir: Option<PathBuf>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        let mut server = Self::start_in(&root, opts).expect("beacon serve starts");
        server._tmp = Some(tmp);
        server
    }

    /// Starts in an existing directory (to restart over the same data); `Err` carries stderr if it exits.
    pub fn start_in(root: &Path, opts: Options) -> Result<Self, String> {
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::create_dir_all(root.join("init_data")).unwrap();
        let mut cmd = Command::new(BEACON);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(opts.data_dir.clone().unwrap_or_else(|| root.join("data")))
            .arg("--config")
            .arg(
                opts.config
                    .clone()
                    .unwrap_or_else(|| root.join("config/config.json")),
            )
            .arg("--init-data-dir")
            .arg(root.join("init_data"))
            .args(&opts.extra_args)
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .env_remove("NODE_NAME")
            .env("BEACON_LOG_FORMAT", "json")
            .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn beacon");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let admin = Arc::new(Mutex::new(None));
        {
            let logs = logs.clone();
            let admin = admin.clone();
            std::thread::spawn(move || {
                let show = std::env::var_os("BEACON_TEST_LOG").is_some();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if show {
                        eprintln!("[beacon] {line}");
                    }
                    // The admin port is logged before the service port.
                    if let Some(addr) = listening_addr(&line, "admin listening") {
                        *admin.lock().unwrap() = Some(addr);
                    }
                    if let Some(addr) = listening_addr(&line, "listening") {
                        let _ = tx.send(addr);
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => Ok(Self {
                child,
                addr,
                admin_addr: *admin.lock().unwrap(),
                root: root.to_owned(),
                logs,
                _tmp: None,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                Err(logs.lock().unwrap().join("\n"))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        let addr = self.admin_addr.expect("started with --admin-listen");
        format!("http://{addr}{path}")
    }

    pub fn init_data_dir(&self) -> PathBuf {
        self.root.join("init_data")
    }

    /// `GET /metrics` on the service port, as text.
    pub fn metrics(&self) -> String {
        get_text_blocking(&self.url("/metrics"))
    }

    /// This pod's count, from `GET /visits`.
    pub fn visits(&self) -> u64 {
        get_json_blocking(&self.url("/visits"))["visits"]
            .as_u64()
            .unwrap()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for exit and returns the exit status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "beacon did not exit within {within:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// beacon-serve in this process: `Application::build` on 127.0.0.1:0, run on a tokio runtime of
/// its own whose threads log this app's JSON lines into its buffer (as `beacon serve` would to
/// stderr), and stopped through the shutdown future as a signal would. For everything but the
/// process itself: start-up failures, exit codes, signals and the CLI use [`TestServer`].
pub struct TestApp {
    pub addr: SocketAddr,
    /// The probe/metrics port, when `admin_listen` is set.
    pub admin_addr: Option<SocketAddr>,
    pub root: PathBuf,
    logs: Arc<Mutex<Vec<u8>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<std::thread::JoinHandle<Result<(), String>>>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestApp {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// `configure` changes the settings a test is about (limits, the poll interval, the pod).
    pub fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut app = Self::start_in(tmp.path(), configure).expect("the application starts");
        app._tmp = Some(tmp);
        app
    }

    /// Starts in an existing directory (to restart over the same data); `Err` is the build error.
    pub fn start_in(root: &Path, configure: impl FnOnce(&mut Settings)) -> Result<Self, String> {
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::create_dir_all(root.join("init_data")).unwrap();
        let mut settings = Settings::local();
        settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        settings.data_dir = root.join("data");
        settings.config_path = root.join("config/config.json");
        settings.init_data_dir = root.join("init_data");
        // Short enough that stopping an app with a stalled client does not hold up the test.
        settings.shutdown_grace = Duration::from_secs(1);
        settings.identity = pod("beacon-test");
        configure(&mut settings);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let dispatch = json_log_dispatch(logs.clone());
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = std::thread::spawn(move || {
            let on_start = dispatch.clone();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                // The guard is forgotten: each thread of this runtime logs here until it ends.
                .on_thread_start(move || {
                    std::mem::forget(tracing::dispatcher::set_default(&on_start))
                })
                .build()
                .unwrap();
            let _default = tracing::dispatcher::set_default(&dispatch);
            let result = runtime.block_on(async move {
                let app = match Application::build(settings).await {
                    Ok(app) => app,
                    Err(e) => {
                        let _ = ready_tx.send(Err(error_chain(&e)));
                        return Ok(());
                    }
                };
                let _ = ready_tx.send(Ok((app.local_addr(), app.admin_addr())));
                app.run_until_stopped(async {
                    let _ = stopped.await;
                })
                .await
                .map_err(|e| error_chain(&e))
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
            result
        });
        let (addr, admin_addr) = ready_rx.recv().expect("the app thread reports")?;
        Ok(Self {
            addr,
            admin_addr,
            root: root.to_owned(),
            logs,
            stop: Some(stop),
            running: Some(running),
            _tmp: None,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        let addr = self.admin_addr.expect("started with admin_listen");
        format!("http://{addr}{path}")
    }

    pub fn init_data_dir(&self) -> PathBuf {
        self.root.join("init_data")
    }

    /// `GET /metrics` on the service port, as text.
    pub fn metrics(&self) -> String {
        get_text_blocking(&self.url("/metrics"))
    }

    /// This pod's count, from `GET /visits`.
    pub fn visits(&self) -> u64 {
        get_json_blocking(&self.url("/visits"))["visits"]
            .as_u64()
            .unwrap()
    }

    /// The app's log so far: one JSON object per line.
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap())
            .trim_end()
            .to_owned()
    }

    /// Resolves the shutdown future and waits for `run_until_stopped` to return.
    fn stop_and_wait(&mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.running.take() {
            Some(running) => running.join().expect("the app thread does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let result = self.stop_and_wait();
        if !std::thread::panicking() {
            result.expect("the app stops cleanly");
        }
    }
}

/// An identity as the downward API would give it for `pod` (ordinal from its name).
pub fn pod(name: &str) -> Identity {
    Identity {
        pod: name.to_owned(),
        ordinal: beacon_serve::identity::ordinal(name),
        namespace: None,
        node: None,
        pod_ip: None,
    }
}

/// `beacon serve --log info` with JSON logs, writing into `buffer` (and to stderr too with
/// `BEACON_TEST_LOG` set).
fn json_log_dispatch(buffer: Arc<Mutex<Vec<u8>>>) -> tracing::Dispatch {
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt};
    let show = std::env::var_os("BEACON_TEST_LOG").is_some();
    let writer = move || LogWriter {
        buffer: buffer.clone(),
        show,
    };
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_writer(writer);
    let filter = Targets::new().with_default(tracing::Level::INFO);
    tracing::Dispatch::new(tracing_subscriber::registry().with(filter).with(fmt))
}

struct LogWriter {
    buffer: Arc<Mutex<Vec<u8>>>,
    show: bool,
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.show {
            eprint!("[beacon] {}", String::from_utf8_lossy(buf));
        }
        self.buffer.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An error and its sources, one `: ` apart.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    out
}

/// A root for [`TestServer::start_in`] whose `config/` holds `content`, published as
/// generation 1 by [`kubelet_publish`]; returns the root and its config directory.
pub fn root_with_config(content: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let config_dir = tmp.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    kubelet_publish(&config_dir, 1, content);
    (tmp, config_dir)
}

/// Publishes `content` like the kubelet's AtomicWriter does for a ConfigMap volume: a new
/// timestamped directory, then an atomic rename of the `..data` symlink; `config.json` itself
/// is a symlink through `..data`.
pub fn kubelet_publish(dir: &Path, generation: u32, content: &str) {
    let ts_dir = format!("..2026_11_25_10_00_{generation:02}.{generation}");
    std::fs::create_dir(dir.join(&ts_dir)).unwrap();
    std::fs::write(dir.join(&ts_dir).join("config.json"), content).unwrap();
    let tmp_link = dir.join("..data_tmp");
    std::os::unix::fs::symlink(&ts_dir, &tmp_link).unwrap();
    std::fs::rename(&tmp_link, dir.join("..data")).unwrap();
    if !dir.join("config.json").exists() {
        std::os::unix::fs::symlink("..data/config.json", dir.join("config.json")).unwrap();
    }
}

fn listening_addr(line: &str, message: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v["message"] != message {
        return None;
    }
    v["addr"].as_str()?.parse().ok()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn blocking_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    let resp = http.get(url).send().await.unwrap();
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.json().await.unwrap()
}

/// The body of `GET url`, whatever its status.
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

pub fn get_json_blocking(url: &str) -> serde_json::Value {
    let resp = blocking_client().get(url).send().unwrap();
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.json().unwrap()
}

/// The status of `GET url`.
pub fn get_status_blocking(url: &str) -> reqwest::StatusCode {
    blocking_client().get(url).send().unwrap().status()
}

/// The body of `GET url`, whatever its status.
pub fn get_text_blocking(url: &str) -> String {
    blocking_client().get(url).send().unwrap().text().unwrap()
}

/// Sends `request` verbatim and returns the whole response: for paths a URL library would normalise.
pub fn raw_http(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub fn raw_get(addr: SocketAddr, path: &str) -> String {
    raw_http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
    )
}

/// Polls `cond` every 50 ms until it holds, or panics with `what` after `within`.
pub fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads one sample's value from Prometheus text exposition.
pub fn metric_value(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l[series.len()..].trim().split(' ').next()?.parse().ok())
}
