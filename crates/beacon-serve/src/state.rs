//! The state every request handler shares (axum's `State`).

use std::{
    path::PathBuf,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use crate::{
    config_watch::LiveConfig,
    faults::{self, FaultSequence},
    identity::Identity,
    metrics::Metrics,
    readiness::WriteCheck,
    settings::{BuildInfo, Limits},
    store::VisitsStore,
};

pub type AppState = Arc<AppContext>;

/// What every handler can reach: the configuration, the store, metrics and the bounds.
pub struct AppContext {
    pub config: Arc<LiveConfig>,
    pub store: VisitsStore,
    pub metrics: Arc<Metrics>,
    pub identity: Identity,
    pub identity_rows: String,
    pub build: BuildInfo,
    pub init_data_dir: PathBuf,
    pub data_dir_check: WriteCheck,
    /// Bounds the `/init-data/` files being sent at once (`MAX_DOWNLOADS` in `init_data`).
    pub downloads: Arc<tokio::sync::Semaphore>,
    pub shutting_down: AtomicBool,
    /// Decides which `/` requests an active error fault fails, and their injected latency.
    pub fault_sequence: FaultSequence,
    /// Bounds `/delay/{duration}`: requests waiting at once, and the longest wait.
    pub delays: DelayLimits,
}

/// `/delay` is podinfo-style and always on, so it is bounded on its own, not by
/// `max_in_flight` (whose slots `/` needs): at most `MAX_WAITING` requests sleep at once (429 beyond),
/// each for at most `max` (400 beyond), which is below the request timeout.
pub struct DelayLimits {
    pub waiting: Arc<tokio::sync::Semaphore>,
    pub max: Duration,
}

impl DelayLimits {
    pub const MAX_WAITING: usize = 64;

    pub fn new(limits: &Limits) -> Self {
        Self {
            waiting: Arc::new(tokio::sync::Semaphore::new(Self::MAX_WAITING)),
            // A delay must be answered, not cut off by the request timeout.
            max: faults::MAX_LATENCY.min(
                limits
                    .request_timeout
                    .saturating_sub(Duration::from_secs(1)),
            ),
        }
    }
}
