//! Startup, the accept loop and graceful shutdown.
//!
//! We drive hyper directly rather than `axum::serve` because we need its
//! header-size and header-read-timeout bounds and a cap on open connections.

use std::{
    collections::BTreeMap,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, oneshot},
};
use tokio_io_timeout::TimeoutStream;

use crate::{
    Error, Result,
    config_watch::{self, LiveConfig},
    init_data,
    metrics::Metrics,
    page,
    readiness::WriteCheck,
    routes,
    settings::Settings,
    state::{AppContext, AppState, DelayLimits},
    store::VisitsStore,
};

pub struct Application {
    listener: TcpListener,
    admin_listener: Option<TcpListener>,
    state: AppState,
    settings: Settings,
}

impl Application {
    /// Loads the config, opens the store and binds the listener (port 0 picks a free one).
    pub async fn build(settings: Settings) -> Result<Self> {
        let metrics = Arc::new(Metrics::new(settings.build));
        let config = Arc::new(LiveConfig::load(settings.config_path.clone())?);
        metrics.set_config_source(config.is_from_file());
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| Error::DataDir {
            path: settings.data_dir.clone(),
            source,
        })?;
        let store = VisitsStore::open(&settings.data_dir, metrics.store.clone())?;
        tracing::info!(path = %store.path().display(), visits = store.count(), "visits store opened");
        let listener = bind(settings.listen).await?;
        let admin_listener = match settings.admin_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        config_watch::spawn_watcher(
            config.clone(),
            metrics.clone(),
            settings.config_poll_interval,
        );
        let identity = settings.identity.clone();
        let state = Arc::new(AppContext {
            config,
            store,
            metrics,
            identity_rows: page::identity_rows(&identity, settings.build),
            identity,
            build: settings.build,
            init_data_dir: settings.init_data_dir.clone(),
            data_dir_check: WriteCheck::new(settings.data_dir.clone()),
            downloads: Arc::new(Semaphore::new(init_data::MAX_DOWNLOADS)),
            shutting_down: Default::default(),
            fault_sequence: Default::default(),
            delays: DelayLimits::new(&settings.limits),
        });
        Ok(Self {
            listener,
            admin_listener,
            state,
            settings,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The probe and metrics port, when `admin_listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// Serves until `shutdown` resolves, then: readiness false, wait `shutdown_delay`,
    /// stop accepting, let in-flight requests finish within `shutdown_grace`, flush the store.
    /// The admin port (probes, metrics) answers until the very end, so the kubelet sees the
    /// pod unready rather than dead while it drains.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Self {
            listener,
            admin_listener,
            state,
            settings,
        } = self;
        let limits = &settings.limits;
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192));
        let admin = match admin_listener {
            Some(admin_listener) => Some(spawn_admin(admin_listener, &state, limits, &http)?),
            None => None,
        };
        let addr = local_addr(&listener)?;
        tracing::info!(%addr, pod = %state.identity.pod, version = settings.build.version, "listening");
        let graceful = GracefulShutdown::new();
        let conns = Connections {
            router: routes::router(state.clone(), limits),
            http,
            at_capacity: AtCapacity::RefuseNew(Arc::new(Semaphore::new(limits.max_connections))),
            write_timeout: limits.write_timeout,
            port: "service",
            at_capacity_log: Throttle::default(),
        };
        let serve = |stream: TcpStream, peer: SocketAddr| {
            conns.serve(stream, peer, |conn| graceful.watch(conn));
        };
        accept_until(&listener, "service", shutdown, &serve).await;
        state.shutting_down.store(true, Ordering::Release);
        if !settings.shutdown_delay.is_zero() {
            tracing::info!(delay = ?settings.shutdown_delay, "readiness is false; waiting before closing the listener");
            let delay = tokio::time::sleep(settings.shutdown_delay);
            accept_until(&listener, "service", delay, &serve).await;
        }
        drop(listener);
        tracing::info!(grace = ?settings.shutdown_grace, "listener closed; draining in-flight requests");
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections drained"),
            () = tokio::time::sleep(settings.shutdown_grace) => tracing::warn!("grace period elapsed with requests still in flight"),
        }
        let closed = close_store(&state).await;
        if let Some(admin) = admin {
            admin.abort();
        }
        closed
    }
}

/// Serves the admin port (probes, metrics) on a task of its own until aborted.
fn spawn_admin(
    admin_listener: TcpListener,
    state: &AppState,
    limits: &crate::settings::Limits,
    http: &hyper::server::conn::http1::Builder,
) -> Result<tokio::task::JoinHandle<()>> {
    let addr = local_addr(&admin_listener)?;
    tracing::info!(%addr, "admin listening");
    let conns = Connections {
        router: routes::admin_router(state.clone(), limits),
        http: http.clone(),
        at_capacity: AtCapacity::CloseOldest(Arc::new(Oldest::new(limits.admin_max_connections))),
        write_timeout: limits.write_timeout,
        port: "admin",
        at_capacity_log: Throttle::default(),
    };
    Ok(tokio::spawn(async move {
        accept_until(
            &admin_listener,
            "admin",
            std::future::pending(),
            &|stream, peer| conns.serve(stream, peer, |c| c),
        )
        .await;
    }))
}

/// Hands every accepted connection to `serve` until `stop` resolves.
async fn accept_until(
    listener: &TcpListener,
    port: &str,
    stop: impl Future<Output = ()>,
    serve: &impl Fn(TcpStream, SocketAddr),
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => serve(stream, peer),
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the listener stays usable.
                    tracing::warn!(port, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut stop => return,
        }
    }
}

/// Flushes the visits store, off the runtime's workers.
async fn close_store(state: &AppState) -> Result<()> {
    let store = state.store.clone();
    let closed = tokio::task::spawn_blocking(move || store.close())
        .await
        .map_err(|source| Error::StoreTask { source })?;
    match closed {
        Ok(()) => {
            tracing::info!(visits = state.store.count(), "visits store flushed; bye");
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "visits store not flushed");
            Err(e.into())
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .map_err(|source| Error::LocalAddr { source })
}

type Conn = hyper::server::conn::http1::Connection<
    TokioIo<std::pin::Pin<Box<TimeoutStream<TcpStream>>>>,
    TowerToHyperService<axum::Router>,
>;

/// One port's connections: its router, its cap on open connections, its timeouts.
struct Connections {
    router: axum::Router,
    http: hyper::server::conn::http1::Builder,
    at_capacity: AtCapacity,
    write_timeout: Duration,
    port: &'static str,
    at_capacity_log: Throttle,
}

/// Lets a warning that a client can trigger at will through at most once a second, counting
/// the ones it held back, so a connection flood cannot flood the log as well.
#[derive(Default)]
struct Throttle {
    /// When the last warning went out, and how many have been held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    /// `Some(held back since the last one)` when this occurrence should be logged.
    fn admit(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (last, held_back) = &mut *state;
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            *held_back += 1;
            return None;
        }
        *last = Some(Instant::now());
        Some(std::mem::take(held_back))
    }
}

/// What a port at its connection cap does with a new connection.
enum AtCapacity {
    /// Close the new one: on the service port the oldest may be an honest slow download.
    RefuseNew(Arc<Semaphore>),
    /// Close the oldest: the admin port's honest clients (probes, scrapes) finish within
    /// milliseconds, so its oldest connections are idle or stalled ones. Refusing new ones
    /// would let one client holding the cap fail every kubelet probe.
    CloseOldest(Arc<Oldest>),
}

/// The open connections of a [`AtCapacity::CloseOldest`] port, oldest first.
struct Oldest {
    cap: usize,
    /// Next id, and a sender per open connection; dropping a sender closes its connection.
    open: Mutex<(u64, BTreeMap<u64, oneshot::Sender<()>>)>,
}

impl Oldest {
    fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            open: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Registers a connection, closing the oldest if the port is full; returns whether it did,
    /// the registration (dropped when the connection ends) and the signal to close this one.
    fn admit(self: &Arc<Self>) -> (bool, Admitted, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let evicted = open.1.len() >= self.cap && open.1.pop_first().is_some();
        let id = open.0;
        open.0 += 1;
        open.1.insert(id, tx);
        let admitted = Admitted {
            id,
            port: self.clone(),
        };
        (evicted, admitted, rx)
    }
}

struct Admitted {
    id: u64,
    port: Arc<Oldest>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.port.open.lock().unwrap_or_else(|p| p.into_inner());
        open.1.remove(&self.id);
    }
}

/// Holds a connection's place until it ends (one of the two, by the port's [`AtCapacity`]).
struct ConnectionPlace {
    _permit: Option<OwnedSemaphorePermit>,
    _admitted: Option<Admitted>,
}

impl Connections {
    /// Serves one accepted connection on a task of its own, or closes it at once when the
    /// port is at its limit. `watch` lets the service port tie it to graceful shutdown.
    fn serve<F>(&self, stream: TcpStream, peer: SocketAddr, watch: impl FnOnce(Conn) -> F)
    where
        F: Future<Output = hyper::Result<()>> + Send + 'static,
    {
        let (place, closed) = match &self.at_capacity {
            AtCapacity::RefuseNew(permits) => {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    if let Some(held_back) = self.at_capacity_log.admit() {
                        tracing::warn!(%peer, port = self.port, not_logged_since_last = held_back, "connection limit reached; closing new connection");
                    }
                    return;
                };
                let place = ConnectionPlace {
                    _permit: Some(permit),
                    _admitted: None,
                };
                (place, None)
            }
            AtCapacity::CloseOldest(oldest) => {
                let (evicted, admitted, closed) = oldest.admit();
                if let Some(held_back) = evicted.then(|| self.at_capacity_log.admit()).flatten() {
                    tracing::warn!(%peer, port = self.port, not_logged_since_last = held_back, "connection limit reached; closing the oldest connection");
                }
                let place = ConnectionPlace {
                    _permit: None,
                    _admitted: Some(admitted),
                };
                (place, Some(closed))
            }
        };
        let _ = stream.set_nodelay(true);
        // hyper has no write timeout and the request timeout ends once the response headers
        // are ready, so a client that stops reading a body would hold its connection forever.
        let mut io = TimeoutStream::new(stream);
        io.set_write_timeout(Some(self.write_timeout));
        let conn = self.http.serve_connection(
            TokioIo::new(Box::pin(io)),
            TowerToHyperService::new(self.router.clone()),
        );
        let conn = watch(conn);
        tokio::spawn(async move {
            let closed = async {
                match closed {
                    Some(closed) => {
                        let _ = closed.await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                // Dropping the connection closes its socket.
                () = closed => {}
            }
            drop(place);
        });
    }
}
