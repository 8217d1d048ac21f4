//! The HTTP routes, and the middleware that measures and logs every request.

use std::{
    borrow::Cow,
    sync::atomic::Ordering,
    time::{Instant, SystemTime},
};

use axum::{
    Router,
    extract::{MatchedPath, Path, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Json, Response},
    routing::get,
};
use serde_json::json;
use tower::{ServiceBuilder, limit::GlobalConcurrencyLimitLayer};
use tower_http::{
    catch_panic::CatchPanicLayer, limit::RequestBodyLimitLayer, timeout::TimeoutLayer,
};

use crate::{
    faults, init_data,
    metrics::{self, RequestLabels, RouteLabels},
    page,
    settings::{BuildInfo, Limits},
    state::{AppContext, AppState, DelayLimits},
    trace_context::{TraceExemplar, TraceId},
};

pub fn router(state: AppState, limits: &Limits) -> Router {
    let routes = Router::new()
        .route("/", get(index))
        .route("/visits", get(visits))
        .route("/config", get(config))
        .route("/init-data", get(init_data::redirect_to_listing))
        .route("/init-data/", get(init_data::listing))
        .route("/init-data/{*name}", get(init_data::file))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .route("/status/{code}", get(status))
        .fallback(not_found)
        // Global, not `concurrency_limit`: axum applies a router's layers to each route, and a
        // plain limit would then allow `max_in_flight` per route. Innermost, as before.
        .layer(GlobalConcurrencyLimitLayer::new(limits.max_in_flight))
        // Added after the layer, so outside it: waiting delays have their own bound
        // ([`DelayLimits`]) and never hold the slots `/` needs.
        .route("/delay/{duration}", get(delay));
    with_request_layers(routes, state, limits)
}

/// The admin port: probes and metrics only. No concurrency limit of its own (its connection
/// cap bounds it) and none shared with the service port, whose limits it exists to bypass.
pub fn admin_router(state: AppState, limits: &Limits) -> Router {
    let routes = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found);
    with_request_layers(routes, state, limits)
}

/// What every request on either port goes through: metrics and access log, panic to 500,
/// the request timeout and the body bound.
fn with_request_layers(routes: Router<AppState>, state: AppState, limits: &Limits) -> Router {
    routes
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn_with_state(state.clone(), track))
                .layer(CatchPanicLayer::new())
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    limits.request_timeout,
                ))
                .layer(RequestBodyLimitLayer::new(limits.max_body_bytes)),
        )
        .with_state(state)
}

/// Bounded label values: known methods by name, anything else as `OTHER`.
fn method_label(m: &Method) -> Cow<'static, str> {
    Cow::Borrowed(match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    })
}

/// The route pattern as a label; static for the routes we define, so the hot path does not allocate.
fn route_label(matched: Option<&MatchedPath>) -> Cow<'static, str> {
    const ROUTES: [&str; 12] = [
        "/",
        "/visits",
        "/config",
        "/init-data",
        "/init-data/",
        "/init-data/{*name}",
        "/metrics",
        "/healthz",
        "/readyz",
        "/version",
        "/status/{code}",
        "/delay/{duration}",
    ];
    match matched {
        Some(m) => ROUTES
            .iter()
            .find(|r| **r == m.as_str())
            .map(|r| Cow::Borrowed(*r))
            .unwrap_or_else(|| Cow::Owned(m.as_str().to_owned())),
        None => Cow::Borrowed("unmatched"),
    }
}

async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = route_label(req.extensions().get::<MatchedPath>());
    let trace_id = TraceId::of_request(req.headers());
    // Probes and scrapes arrive every few seconds from the kubelet and Prometheus; their access
    // lines are debug so they neither drown the log nor cost a JSON line each (~20k instructions).
    let routine = matches!(route.as_ref(), "/healthz" | "/readyz" | "/metrics");
    let path = if routine {
        tracing::enabled!(target: "beacon::access", tracing::Level::DEBUG)
    } else {
        tracing::enabled!(target: "beacon::access", tracing::Level::INFO)
    }
    .then(|| req.uri().path().to_owned());
    let response = next.run(req).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    let m = &state.metrics;
    m.http_duration
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(
            elapsed.as_secs_f64(),
            Some(TraceExemplar { trace_id }),
            // The request's own time: without one, Prometheus stamps the exemplar with the time of
            // the scrape that first sees it, up to a scrape interval later.
            Some(SystemTime::now()),
        );
    if let Some(path) = path {
        let duration_ms = elapsed.as_secs_f64() * 1e3;
        if routine {
            tracing::debug!(target: "beacon::access", method = %method, path, route = %route, status, duration_ms, trace_id = %trace_id, "request");
        } else {
            tracing::info!(target: "beacon::access", method = %method, path, route = %route, status, duration_ms, trace_id = %trace_id, "request");
        }
    }
    m.http_requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status,
        })
        .inc();
    response
}

fn wants_text(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/plain") && !a.contains("application/json"))
}

async fn index(State(state): State<AppState>, method: Method) -> Response {
    let config = state.config.get();
    let faults = config.faults.for_ordinal(state.identity.ordinal);
    if faults.is_active()
        && let Some(failed) = inject_faults(&state, &faults).await
    {
        return failed;
    }
    // HEAD (link checkers, uptime probes) must not change state: it shows the count, not a visit.
    let visit = if method == Method::HEAD {
        Ok(state.store.count())
    } else {
        state.store.record_visit().await
    };
    let visits = match visit {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "visit not recorded");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Html(format!(
                    "<!doctype html><title>unavailable</title><p>{}</p>\n",
                    page::escape(&e.to_string())
                )),
            )
                .into_response();
        }
    };
    let banner = faults.is_active().then(|| faults.describe());
    let html = page::render(&page::PageData {
        config: &config,
        identity: &state.identity,
        identity_rows: &state.identity_rows,
        visits,
        now: jiff::Timestamp::now(),
        faults: banner.as_deref(),
    });
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// Applies this pod's faults to one `/` request: latency, then CPU work, then maybe an error
/// (answered without counting a visit). `Some` is the error response.
async fn inject_faults(state: &AppContext, faults: &faults::Effective) -> Option<Response> {
    let (fail, latency) = state.fault_sequence.for_next_request(faults);
    if let Some(latency) = latency {
        state.metrics.fault_injected("latency");
        tokio::time::sleep(latency).await;
    }
    if let Some(cpu) = faults.cpu_per_request {
        state.metrics.fault_injected("cpu");
        let _ = tokio::task::spawn_blocking(move || faults::burn_cpu(cpu)).await;
    }
    if !fail {
        return None;
    }
    state.metrics.fault_injected("error");
    let status =
        StatusCode::from_u16(faults.error_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Some(
        (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            Html(format!(
                "<!doctype html><title>{status}</title><p>Fault injected by this pod's config (faults.errorRatio): {status}.</p>\n"
            )),
        )
            .into_response(),
    )
}

/// podinfo's `/status/{code}`: answers with that status, to rehearse error alerts and clients.
/// Only a status as it is written (`503`): `+503` and `0503` are refused, not read as 503.
async fn status(Path(code): Path<String>) -> Response {
    match code
        .parse::<u16>()
        .ok()
        .filter(|c| (200..=599).contains(c) && c.to_string() == code)
        .and_then(|c| StatusCode::from_u16(c).ok())
    {
        Some(status) => (status, Json(json!({ "status": status.as_u16() }))).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            format!("status must be a number from 200 to 599 written without sign or leading zeros, got {code:?}\n"),
        )
            .into_response(),
    }
}

/// podinfo's `/delay/{duration}` (`2`, `1.5s`, `250ms`): answers after that long. Bounded by
/// [`DelayLimits`].
async fn delay(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let max = state.delays.max;
    let wait = match faults::parse_bounded(&raw, "delay", max) {
        Ok(d) => d,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let Ok(_waiting) = state.delays.waiting.clone().try_acquire_owned() else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            format!(
                "at most {} /delay requests wait at once\n",
                DelayLimits::MAX_WAITING
            ),
        )
            .into_response();
    };
    tokio::time::sleep(wait).await;
    Json(json!({ "delay": wait.as_secs_f64() })).into_response()
}

async fn visits(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let count = state.store.count();
    if wants_text(&headers) {
        return (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{count}\n"),
        )
            .into_response();
    }
    Json(json!({ "pod": state.identity.pod, "visits": count })).into_response()
}

async fn config(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.config.get().redacted())
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when not shutting down, the store's last commit succeeded and the data dir accepts writes.
async fn readyz(State(state): State<AppState>) -> Response {
    let shutting_down = state.shutting_down.load(Ordering::Acquire);
    let store = state.store.is_healthy();
    let writable = state.data_dir_check.is_writable().await;
    let ready = !shutting_down && store && writable;
    let body = Json(json!({
        "ready": ready,
        "checks": { "config_loaded": true, "store_healthy": store, "data_dir_writable": writable, "shutting_down": shutting_down },
    }));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

async fn version(State(state): State<AppState>) -> Json<BuildInfo> {
    Json(state.build)
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found\n")
}
