//! A small client for the parts of the Prometheus and Alertmanager HTTP APIs the report reads:
//! instant and range queries, label values (to tell which metrics exist) and active alerts.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use reqwest::Url;
use serde::{Deserialize, de::DeserializeOwned};

use crate::{
    Error, Result,
    access::{Access, Authorized, Endpoint, Names},
    cost::{CostLog, QueryCost, QueryStats},
    error::snippet,
    time_range::TimeRange,
};

pub type Labels = BTreeMap<String, String>;

/// One series of an instant query.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// One series of a range query: `(unix seconds, value)` points in time order.
#[derive(Debug, Clone)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(f64, f64)>,
}

/// An alert as Prometheus' `/api/v1/alerts` lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromAlert {
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    pub state: String,
    #[serde(default)]
    pub active_at: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// An alert as Alertmanager's `/api/v2/alerts` lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmAlert {
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    pub starts_at: Option<String>,
    pub status: AmStatus,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmStatus {
    pub state: String,
    #[serde(default)]
    pub silenced_by: Vec<String>,
    #[serde(default)]
    pub inhibited_by: Vec<String>,
}

/// Prometheus wraps every answer in `{status, data | errorType+error}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct QueryData<R> {
    result: R,
    #[serde(default)]
    stats: Option<QueryStats>,
}

#[derive(Deserialize)]
struct RawSample {
    metric: Labels,
    value: (f64, String),
}

#[derive(Deserialize)]
struct RawSeries {
    metric: Labels,
    values: Vec<(f64, String)>,
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<PromAlert>,
}

#[derive(Deserialize)]
struct RulesData {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<RecordingRule>,
}

/// A recording rule as `GET /api/v1/rules?type=record` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordingRule {
    pub name: String,
    pub query: String,
    #[serde(default)]
    pub labels: Labels,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BuildInfo {
    pub version: String,
}

/// Parses a base URL and makes sure relative joins keep its path prefix
/// (`http://host/prometheus` + `api/v1/query`).
fn base_url(endpoint: Endpoint, url: &str, names: &Names) -> Result<Url> {
    let what = endpoint.name();
    let mut parsed = Url::parse(url).map_err(|e| Error::BadUrl {
        what,
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    // A password in the URL would be printed wherever the URL is (the report's header, every
    // error) and sits in shell history; refuse it, without repeating it.
    if parsed.password().is_some() {
        let _ = parsed.set_password(None);
        return Err(Error::BadUrl {
            what,
            url: parsed.to_string(),
            reason: format!(
                "it holds a password (removed here); use {} with a password file instead",
                names.basic_auth_user
            ),
        });
    }
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::BadUrl {
            what,
            url: url.to_owned(),
            reason: "only http and https are supported".into(),
        });
    }
    if !parsed.path().ends_with('/') {
        let path = format!("{}/", parsed.path());
        parsed.set_path(&path);
    }
    Ok(parsed)
}

/// Queries beacon lets run at once by default: a report's dozens of queries then never pile
/// onto Prometheus together, and its time is still not the sum of theirs.
pub const DEFAULT_MAX_CONCURRENT_QUERIES: usize = 4;

#[derive(Clone)]
pub struct PromClient {
    base: Url,
    auth: Authorized,
    /// Bounds the instant and range queries in flight.
    slots: Arc<tokio::sync::Semaphore>,
    max_concurrent: usize,
    costs: Arc<CostLog>,
}

impl PromClient {
    /// A client for the Prometheus at `url`, sending `access`'s credentials to it only.
    pub fn new(url: &str, access: &Access, timeout: Duration) -> Result<Self> {
        let base = base_url(Endpoint::Prometheus, url, &access.names)?;
        let auth = access.authorize(Endpoint::Prometheus, timeout)?;
        auth.warn_if_plaintext(&base);
        Ok(Self {
            base,
            auth,
            slots: Arc::new(tokio::sync::Semaphore::new(DEFAULT_MAX_CONCURRENT_QUERIES)),
            max_concurrent: DEFAULT_MAX_CONCURRENT_QUERIES,
            costs: Arc::default(),
        })
    }

    /// At most `n` (at least 1) instant or range queries at once.
    pub fn with_max_concurrent_queries(mut self, n: usize) -> Self {
        let n = n.max(1);
        self.slots = Arc::new(tokio::sync::Semaphore::new(n));
        self.max_concurrent = n;
        self
    }

    pub fn max_concurrent_queries(&self) -> usize {
        self.max_concurrent
    }

    /// Every query sent so far, with what Prometheus said it cost.
    pub fn costs(&self) -> &CostLog {
        &self.costs
    }

    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// Confirms the URL is a Prometheus before any question is asked.
    pub async fn build_info(&self) -> Result<BuildInfo> {
        self.get("api/v1/status/buildinfo", &[]).await
    }

    pub async fn query(&self, expr: &str, at: f64) -> Result<Vec<Sample>> {
        let params = [("query", expr.to_owned()), ("time", at.to_string())];
        let data: QueryData<Vec<RawSample>> = self
            .measured(expr, "instant", None, "api/v1/query", &params)
            .await?;
        Ok(data
            .result
            .into_iter()
            .map(|s| Sample {
                labels: s.metric,
                value: parse_value(&s.value.1),
            })
            .collect())
    }

    pub async fn query_range(&self, expr: &str, range: &TimeRange) -> Result<Vec<Series>> {
        let params = [
            ("query", expr.to_owned()),
            ("start", range.start.to_string()),
            ("end", range.end.to_string()),
            ("step", range.step.to_string()),
        ];
        let step = Some(range.step);
        let data: QueryData<Vec<RawSeries>> = self
            .measured(expr, "range", step, "api/v1/query_range", &params)
            .await?;
        Ok(data
            .result
            .into_iter()
            .map(|s| Series {
                labels: s.metric,
                points: s
                    .values
                    .into_iter()
                    .map(|(t, v)| (t, parse_value(&v)))
                    .collect(),
            })
            .collect())
    }

    /// Runs a query in one of the bounded slots with `stats=all`, records its cost, and names
    /// the PromQL in its error so the answer can say what was being asked.
    async fn measured<R: DeserializeOwned>(
        &self,
        expr: &str,
        kind: &'static str,
        step: Option<f64>,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<QueryData<R>> {
        let mut params = params.to_vec();
        params.push(("stats", "all".into()));
        // The semaphore is never closed, so acquiring only fails if it were; run unbounded then.
        let _slot = self.slots.acquire().await.ok();
        let started = std::time::Instant::now();
        let result: Result<QueryData<R>> = self.post(path, &params).await;
        let wall = started.elapsed().as_secs_f64();
        let stats = result.as_ref().ok().and_then(|d| d.stats);
        self.costs.record(QueryCost::new(
            expr,
            kind,
            step,
            stats,
            wall,
            result.is_err(),
        ));
        result.map_err(|e| Error::Query {
            promql: expr.to_owned(),
            source: Box::new(e),
        })
    }

    /// Values of `label` on series with samples in the range, e.g. every metric name.
    pub async fn label_values(&self, label: &str, range: &TimeRange) -> Result<Vec<String>> {
        let path = format!("api/v1/label/{label}/values");
        let params = [
            ("start", range.start.to_string()),
            ("end", range.end.to_string()),
        ];
        self.get(&path, &params).await
    }

    pub async fn alerts(&self) -> Result<Vec<PromAlert>> {
        let data: AlertsData = self.get("api/v1/alerts", &[]).await?;
        Ok(data.alerts)
    }

    /// The recording rules this Prometheus evaluates (none when a ruler elsewhere does).
    pub async fn recording_rules(&self) -> Result<Vec<RecordingRule>> {
        let data: RulesData = self
            .get("api/v1/rules", &[("type", "record".to_owned())])
            .await?;
        Ok(data.groups.into_iter().flat_map(|g| g.rules).collect())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, params: &[(&str, String)]) -> Result<T> {
        let url = self.join(path)?;
        let request = self.auth.http.get(url.clone()).query(params);
        self.send(url, request).await
    }

    /// Queries go by POST so long PromQL never hits URL length limits.
    async fn post<T: DeserializeOwned>(&self, path: &str, params: &[(&str, String)]) -> Result<T> {
        let url = self.join(path)?;
        let request = self.auth.http.post(url.clone()).form(params);
        self.send(url, request).await
    }

    fn join(&self, path: &str) -> Result<Url> {
        self.base.join(path).map_err(|e| Error::BadUrl {
            what: "Prometheus",
            url: self.base.to_string(),
            reason: e.to_string(),
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        url: Url,
        request: reqwest::RequestBuilder,
    ) -> Result<T> {
        let (status, body) = fetch(&self.auth, &url, request).await?;
        let envelope: Envelope<T> = serde_json::from_slice(&body)
            .map_err(|_| self.auth.not_the_api(&url, status, &body))?;
        match (envelope.status.as_str(), envelope.data) {
            ("success", Some(data)) => Ok(data),
            _ => Err(Error::Api {
                url: url.to_string(),
                error_type: self.auth.redact(
                    &envelope
                        .error_type
                        .unwrap_or_else(|| format!("HTTP {status}")),
                ),
                message: self.auth.redact(
                    &envelope
                        .error
                        .unwrap_or_else(|| "no data in the answer".into()),
                ),
            }),
        }
    }
}

#[derive(Clone)]
pub struct AlertmanagerClient {
    base: Url,
    auth: Authorized,
}

impl AlertmanagerClient {
    /// A client for the Alertmanager at `url`, with its own credentials (never Prometheus').
    pub fn new(url: &str, access: &Access, timeout: Duration) -> Result<Self> {
        let base = base_url(Endpoint::Alertmanager, url, &access.names)?;
        let auth = access.authorize(Endpoint::Alertmanager, timeout)?;
        auth.warn_if_plaintext(&base);
        Ok(Self { base, auth })
    }

    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// Active alerts, silenced and inhibited ones included (their state says so).
    pub async fn alerts(&self) -> Result<Vec<AmAlert>> {
        let url = self.base.join("api/v2/alerts").map_err(|e| Error::BadUrl {
            what: "Alertmanager",
            url: self.base.to_string(),
            reason: e.to_string(),
        })?;
        let (status, body) = fetch(&self.auth, &url, self.auth.http.get(url.clone())).await?;
        if !(200..300).contains(&status) {
            return Err(self.auth.not_the_api(&url, status, &body));
        }
        serde_json::from_slice(&body).map_err(|_| self.auth.not_the_api(&url, status, &body))
    }
}

/// Sends the request; answers that no query can fix (credentials refused, a redirect away from
/// the endpoint) become errors here, before anyone tries to read them as the API.
async fn fetch(
    auth: &Authorized,
    url: &Url,
    request: reqwest::RequestBuilder,
) -> Result<(u16, Vec<u8>)> {
    let unreachable = |e: reqwest::Error| {
        let mut reason = beacon_tls::error_chain(&e);
        if reason.contains("certificate") {
            reason.push_str(&format!(
                "; does {} name the CA that signed the server's certificate?",
                auth.names.ca_file
            ));
        }
        Error::Unreachable {
            url: url.to_string(),
            reason,
        }
    };
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    if matches!(status, 401 | 403 | 407) {
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        return Err(auth.denied(url.as_str(), status, challenge.as_deref()));
    }
    if response.status().is_redirection() {
        // Only where it leads (scheme, host, port): a login URL's query can carry state.
        let to = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| url.join(l).ok())
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|| "elsewhere".into());
        return Err(Error::Redirected {
            url: url.to_string(),
            status,
            to,
        });
    }
    let body = response.bytes().await.map_err(unreachable)?;
    Ok((status, body.to_vec()))
}

impl Authorized {
    /// An answer that is not the API's, quoting the start of its body without credentials.
    fn not_the_api(&self, url: &Url, status: u16, body: &[u8]) -> Error {
        Error::NotTheApi {
            url: url.to_string(),
            status,
            // Redacted whole, before it is shortened: a cut could leave part of a secret.
            body: snippet(self.redact(&String::from_utf8_lossy(body)).as_bytes()),
        }
    }
}

/// Prometheus sends sample values as strings so NaN and ±Inf survive JSON.
fn parse_value(text: &str) -> f64 {
    text.parse().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_keeps_a_path_prefix() {
        let base = base_url(
            Endpoint::Prometheus,
            "http://host:9090/prom",
            &Names::default(),
        )
        .unwrap();
        assert_eq!(
            base.join("api/v1/query").unwrap().as_str(),
            "http://host:9090/prom/api/v1/query"
        );
        assert!(base_url(Endpoint::Prometheus, "ftp://host", &Names::default()).is_err());
        assert!(base_url(Endpoint::Prometheus, "not a url", &Names::default()).is_err());
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_being_repeated() {
        let err = base_url(
            Endpoint::Prometheus,
            "https://admin:hunter2@host:9090/",
            &Names::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            !err.contains("hunter2") && err.contains("the basic-auth user"),
            "{err}"
        );
        // A user name alone is not a secret, and stays allowed.
        assert!(
            base_url(
                Endpoint::Prometheus,
                "https://admin@host:9090/",
                &Names::default()
            )
            .is_ok()
        );
    }

    /// A Prometheus stand-in on 127.0.0.1 that holds each query a moment and records how many
    /// were in flight at once: the client never lets more than its bound through.
    #[tokio::test]
    async fn concurrent_queries_are_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (n, m) = (now.clone(), most.clone());
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let (n, m) = (n.clone(), m.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    m.fetch_max(n.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    n.fetch_sub(1, Ordering::SeqCst);
                    let body = r#"{"status":"success","data":{"resultType":"vector","result":[],"stats":{"timings":{"evalTotalTime":0.5},"samples":{"totalQueryableSamples":7,"peakSamples":3}}}}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        let client = PromClient::new(&url, &Access::default(), Duration::from_secs(10))
            .unwrap()
            .with_max_concurrent_queries(3);
        let queries = (0..12).map(|i| {
            let client = client.clone();
            async move { client.query(&format!("up{i}"), 0.0).await }
        });
        for r in futures_util::future::join_all(queries).await {
            r.unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=3).contains(&most), "{most} queries at once");
        // Every clone records into the same log, with Prometheus' own figures.
        let cost = client.costs().summary(3, 100);
        assert_eq!((cost.queries, cost.total_samples), (12, 84));
        assert_eq!(cost.largest_peak_samples, 3);
    }

    #[test]
    fn special_values_parse() {
        assert!(parse_value("NaN").is_nan());
        assert_eq!(parse_value("+Inf"), f64::INFINITY);
        assert_eq!(parse_value("0.25"), 0.25);
    }
}
