use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use beacon_serve::{Application, BuildInfo, Settings, identity::Identity, settings::Limits};

/// Every flag can also be set by the `BEACON_*` variable named in its help.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. The container image sets 0.0.0.0:8000.
    #[arg(long, env = "BEACON_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Also serve /healthz, /readyz and /metrics on this address, outside --max-connections
    /// and --max-in-flight, so probes and scrapes get through while the service is saturated.
    /// The chart sets 0.0.0.0:8081 and points its probes and ServiceMonitor there.
    #[arg(long, env = "BEACON_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Directory for durable state (the pod's PersistentVolume): holds visits.db.
    #[arg(long, env = "BEACON_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// The JSON configuration; optional — embedded defaults apply when it does not exist.
    #[arg(long, env = "BEACON_CONFIG", default_value = "config.json")]
    config: PathBuf,
    /// Directory of files written by init containers, served read-only under /init-data/.
    #[arg(long, env = "BEACON_INIT_DATA_DIR", default_value = "init_data")]
    init_data_dir: PathBuf,
    /// After SIGTERM, keep serving (with /readyz failing) this long before closing the listener.
    #[arg(long, env = "BEACON_SHUTDOWN_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    shutdown_delay: Duration,
    /// Upper bound for in-flight requests to finish once the listener is closed.
    #[arg(long, env = "BEACON_SHUTDOWN_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// Re-read the config this often even without a file-system event.
    #[arg(long, env = "BEACON_CONFIG_POLL_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    config_poll_interval: Duration,
    /// Most concurrent connections; further ones are closed at once.
    #[arg(long, env = "BEACON_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Most requests handled at once; further ones wait.
    #[arg(long, env = "BEACON_MAX_IN_FLIGHT", default_value_t = Limits::default().max_in_flight)]
    max_in_flight: usize,
    /// Time a client has to send a request's headers.
    #[arg(long, env = "BEACON_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    header_timeout: Duration,
    /// Time a request may take from headers read to response.
    #[arg(long, env = "BEACON_REQUEST_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// Close a connection whose client stops reading a response for this long.
    #[arg(long, env = "BEACON_WRITE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    write_timeout: Duration,
}

impl ServeArgs {
    fn into_settings(self) -> Settings {
        let defaults = Limits::default();
        Settings {
            listen: self.listen,
            admin_listen: self.admin_listen,
            data_dir: self.data_dir,
            config_path: self.config,
            init_data_dir: self.init_data_dir,
            limits: Limits {
                max_connections: self.max_connections,
                max_in_flight: self.max_in_flight,
                header_read_timeout: self.header_timeout,
                request_timeout: self.request_timeout,
                write_timeout: self.write_timeout,
                ..defaults
            },
            shutdown_delay: self.shutdown_delay,
            shutdown_grace: self.shutdown_grace,
            config_poll_interval: self.config_poll_interval,
            build: BuildInfo {
                version: env!("CARGO_PKG_VERSION"),
                revision: env!("BEACON_REVISION"),
            },
            identity: Identity::from_env(),
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = args.into_settings();
    // Handlers go in before anything else so a signal during start-up is not fatal.
    let shutdown = shutdown_signal().context("cannot install signal handlers")?;
    let app = Application::build(settings)
        .await
        .context("cannot start beacon serve")?;
    app.run_until_stopped(shutdown)
        .await
        .context("beacon serve failed")?;
    Ok(ExitCode::SUCCESS)
}

/// Installs the handlers now; the future resolves on the first SIGTERM (kubelet) or SIGINT (Ctrl-C).
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown requested");
    })
}
