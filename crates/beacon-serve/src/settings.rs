use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::identity::Identity;

/// Everything `beacon serve` needs to start; the CLI fills it from flags and `BEACON_*` env vars.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// A second port for `/healthz`, `/readyz` and `/metrics` only, outside the service
    /// port's connection and concurrency limits, so probes and scrapes get through while
    /// the service is saturated.
    pub admin_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
    pub init_data_dir: PathBuf,
    pub limits: Limits,
    /// How long SIGTERM waits with readiness false before it stops accepting,
    /// so that Service endpoints drop the pod before connections are refused.
    pub shutdown_delay: Duration,
    /// Upper bound for in-flight requests to finish after the listener closes.
    pub shutdown_grace: Duration,
    /// Fallback re-read of the config file, in case a file-system event is missed.
    pub config_poll_interval: Duration,
    pub build: BuildInfo,
    /// Who this pod is; the CLI reads it from the downward API's environment variables.
    pub identity: Identity,
}

/// What `beacon_build_info` and `/version` report.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
}

/// Bounds that keep slow or abusive clients from pinning the server.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Open connections on the admin port: kubelet probes and Prometheus need a handful.
    pub admin_max_connections: usize,
    pub max_in_flight: usize,
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    /// Longest a response write may make no progress (a client that stopped reading).
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            admin_max_connections: 64,
            max_in_flight: 1024,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
            write_timeout: Duration::from_secs(30),
        }
    }
}

impl Settings {
    /// Local defaults: everything under the current directory, loopback only.
    pub fn local() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            admin_listen: None,
            data_dir: PathBuf::from("data"),
            config_path: PathBuf::from("config.json"),
            init_data_dir: PathBuf::from("init_data"),
            limits: Limits::default(),
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(20),
            config_poll_interval: Duration::from_secs(10),
            build: BuildInfo {
                version: env!("CARGO_PKG_VERSION"),
                revision: "unknown",
            },
            identity: Identity::from_env(),
        }
    }
}
