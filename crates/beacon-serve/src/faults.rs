//! Fault injection for incident rehearsals: the `faults` section of `config.json`.
//!
//! Off by default. When set, requests to `/` can be answered with an error status (no visit
//! is counted), delayed (fixed or a range) and made to burn CPU; `pods` overrides any of these
//! for one StatefulSet ordinal, so one replica can misbehave while the others stay healthy.
//! Everything is validated at parse time, so a typo is a reload error with file:line:column,
//! never a silent "no fault".
//!
//! ```json
//! "faults": {
//!   "errorRatio": 0.0,
//!   "pods": { "1": { "errorRatio": 0.5, "errorStatus": 503, "latency": {"min": "600ms", "max": "900ms"},
//!                    "cpuPerRequest": "2ms" } }
//! }
//! ```

use std::{
    collections::BTreeMap,
    fmt,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use crate::json_object::only_from_objects;
use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, MapAccess, Visitor},
};

/// Longest injected latency; below the default request timeout (15 s), so a delayed request
/// is answered, not cut off with 503.
pub const MAX_LATENCY: Duration = Duration::from_secs(10);
/// Most CPU time burnt per request: enough to make a pod the busiest, not enough to wedge it.
pub const MAX_CPU_PER_REQUEST: Duration = Duration::from_millis(500);
const DEFAULT_ERROR_STATUS: u16 = 500;

/// The `faults` section: defaults for every pod plus per-ordinal overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    rename_all = "camelCase",
    default
)]
pub struct Faults {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_ratio: Option<Ratio>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_status: Option<ErrorStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_per_request: Option<CpuWork>,
    /// Overrides by StatefulSet ordinal (`"0"`, `"1"`, …); unset fields fall back to the above.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pods: BTreeMap<Ordinal, PodFaults>,
}

/// One pod's overrides: the same fields as [`Faults`], without nesting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    rename_all = "camelCase",
    default
)]
pub struct PodFaults {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_ratio: Option<Ratio>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_status: Option<ErrorStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_per_request: Option<CpuWork>,
}

only_from_objects!(Faults, PodFaults);

/// What applies to one pod, after its overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Effective {
    pub error_ratio: f64,
    pub error_status: u16,
    pub latency: Option<Latency>,
    pub cpu_per_request: Option<Duration>,
}

impl Faults {
    /// The faults for the pod with `ordinal` (none known: only the defaults apply).
    pub fn for_ordinal(&self, ordinal: Option<u32>) -> Effective {
        let p = ordinal
            .and_then(|n| self.pods.get(&Ordinal(n)))
            .cloned()
            .unwrap_or_default();
        Effective {
            error_ratio: p.error_ratio.or(self.error_ratio).map_or(0.0, |r| r.0),
            error_status: p
                .error_status
                .or(self.error_status)
                .map_or(DEFAULT_ERROR_STATUS, |s| s.0),
            latency: p.latency.or(self.latency).filter(|l| !l.is_zero()),
            cpu_per_request: p
                .cpu_per_request
                .or(self.cpu_per_request)
                .map(|c| c.0)
                .filter(|d| !d.is_zero()),
        }
    }
}

impl Effective {
    pub fn is_active(&self) -> bool {
        self.error_ratio > 0.0 || self.latency.is_some() || self.cpu_per_request.is_some()
    }

    /// One line for the page's banner, e.g. `50% of requests answered 503; latency 600ms–900ms`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.error_ratio > 0.0 {
            parts.push(format!(
                "{}% of requests answered {}",
                (self.error_ratio * 100.0 * 10.0).round() / 10.0,
                self.error_status
            ));
        }
        if let Some(l) = self.latency {
            parts.push(format!("latency {l}"));
        }
        if let Some(c) = self.cpu_per_request {
            parts.push(format!(
                "{} of CPU per request",
                humantime::format_duration(c)
            ));
        }
        parts.join("; ")
    }
}

/// Decides which requests fail so the share is exact over any run of requests (request n fails
/// when ⌊(n+1)·r⌋ > ⌊n·r⌋), and picks latencies spread evenly over the range: a rehearsal
/// then behaves the same every time, and tests can assert exact counts.
#[derive(Debug, Default)]
pub struct FaultSequence {
    requests: AtomicU64,
}

impl FaultSequence {
    /// The next request's part of the sequence: (whether it fails, its latency). Deterministic:
    /// request n always gets the same answer.
    pub fn for_next_request(&self, faults: &Effective) -> (bool, Option<Duration>) {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let r = faults.error_ratio;
        let fail = r > 0.0 && ((n + 1) as f64 * r).floor() > (n as f64 * r).floor();
        let latency = faults.latency.map(|l| l.pick(splitmix64(n)));
        (fail, latency)
    }
}

/// A fast, well-mixed hash of the request number (Steele et al., SplitMix64).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Burns `cpu` of this thread's CPU time (not wall time: on a loaded node the work stays the
/// same, it just takes longer). Runs on a blocking thread so the async workers keep serving.
pub fn burn_cpu(cpu: Duration) {
    let start = thread_cpu_time();
    let mut x = 0u64;
    while thread_cpu_time().saturating_sub(start) < cpu {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A share in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratio(pub f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = f64::deserialize(d)?;
        if !(0.0..=1.0).contains(&r) {
            return Err(de::Error::custom(format!(
                "errorRatio must be between 0 and 1 (a share of requests), got {r}"
            )));
        }
        Ok(Ratio(r))
    }
}

/// An HTTP error status, 400–599.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorStatus(pub u16);

impl<'de> Deserialize<'de> for ErrorStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = u16::deserialize(d)?;
        if !(400..=599).contains(&s) {
            return Err(de::Error::custom(format!(
                "errorStatus must be an HTTP error status (400-599), got {s}"
            )));
        }
        Ok(ErrorStatus(s))
    }
}

/// A StatefulSet ordinal as a JSON object key (`"2"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ordinal(pub u32);

impl Serialize for Ordinal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Ordinal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        // Only the number as a pod name writes it: "01" or "+1" is a typo, not pod 1.
        match key.parse::<u32>() {
            Ok(n) if n.to_string() == key => Ok(Ordinal(n)),
            _ => Err(de::Error::custom(format!(
                "faults.pods keys are StatefulSet ordinals as in the pod's name (\"0\", \"1\", …), got {key:?}"
            ))),
        }
    }
}

/// CPU time burnt per request, at most [`MAX_CPU_PER_REQUEST`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuWork(pub Duration);

impl Serialize for CpuWork {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for CpuWork {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_bounded(&s, "cpuPerRequest", MAX_CPU_PER_REQUEST)
            .map(CpuWork)
            .map_err(de::Error::custom)
    }
}

/// Added latency: a fixed duration (`"250ms"`) or a range (`{"min": "100ms", "max": "1s"}`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub min: Duration,
    pub max: Duration,
}

impl Latency {
    fn is_zero(&self) -> bool {
        self.max.is_zero()
    }

    /// A latency in `[min, max]` from a 64-bit hash.
    fn pick(&self, hash: u64) -> Duration {
        let span = self.max.saturating_sub(self.min);
        let frac = (hash >> 11) as f64 / (1u64 << 53) as f64;
        self.min + span.mul_f64(frac)
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = humantime::format_duration;
        if self.min == self.max {
            write!(f, "{}", h(self.min))
        } else {
            write!(f, "{}–{}", h(self.min), h(self.max))
        }
    }
}

impl Serialize for Latency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = |d| humantime::format_duration(d).to_string();
        if self.min == self.max {
            s.serialize_str(&h(self.min))
        } else {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(Some(2))?;
            m.serialize_entry("min", &h(self.min))?;
            m.serialize_entry("max", &h(self.max))?;
            m.end()
        }
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Latency;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"250ms\" or {\"min\": \"100ms\", \"max\": \"1s\"}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Latency, E> {
                let d = parse_bounded(s, "latency", MAX_LATENCY).map_err(E::custom)?;
                Ok(Latency { min: d, max: d })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Latency, A::Error> {
                let (mut min, mut max) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "min" => &mut min,
                        "max" => &mut max,
                        other => return Err(de::Error::unknown_field(other, &["min", "max"])),
                    };
                    let s: String = map.next_value()?;
                    *slot =
                        Some(parse_bounded(&s, "latency", MAX_LATENCY).map_err(de::Error::custom)?);
                }
                let min = min.ok_or_else(|| de::Error::missing_field("min"))?;
                let max = max.ok_or_else(|| de::Error::missing_field("max"))?;
                if min > max {
                    return Err(de::Error::custom(format!(
                        "latency min ({}) is above max ({})",
                        humantime::format_duration(min),
                        humantime::format_duration(max)
                    )));
                }
                Ok(Latency { min, max })
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a duration (`"250ms"`, `"1.5s"`, `"2s"`) no longer than `max`.
pub fn parse_bounded(s: &str, what: &str, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| format!("{what}: {e}"))?;
    if d > max {
        return Err(format!(
            "{what} {s:?} is above the maximum of {}",
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// A duration as humantime writes it (`250ms`, `1m 30s`), or a decimal number of seconds
/// with or without `s` (`1.5`, `0.25s`), as podinfo's `/delay/{seconds}` takes it.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let secs = t.strip_suffix('s').unwrap_or(t);
    if let Ok(x) = secs.parse::<f64>()
        && !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Duration::try_from_secs_f64(x).map_err(|e| format!("{s:?}: {e}"));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{s:?} is not a duration such as \"250ms\" or \"2s\" ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(json: &str) -> Result<Faults, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn pod_overrides_fall_back_field_by_field() {
        let f = faults(
            r#"{"latency": "100ms", "pods": {"1": {"errorRatio": 0.5, "errorStatus": 503},
                "2": {"latency": {"min": "1s", "max": "2s"}, "cpuPerRequest": "3ms"}}}"#,
        )
        .unwrap();
        let ms = Duration::from_millis;
        let fixed = |d| Some(Latency { min: d, max: d });
        assert_eq!(
            f.for_ordinal(Some(0)),
            Effective {
                error_ratio: 0.0,
                error_status: 500,
                latency: fixed(ms(100)),
                cpu_per_request: None
            }
        );
        let one = f.for_ordinal(Some(1));
        assert_eq!((one.error_ratio, one.error_status), (0.5, 503));
        assert_eq!(one.latency, fixed(ms(100)));
        let two = f.for_ordinal(Some(2));
        assert_eq!(
            two.latency,
            Some(Latency {
                min: ms(1000),
                max: ms(2000)
            })
        );
        assert_eq!(two.cpu_per_request, Some(ms(3)));
        assert_eq!(f.for_ordinal(None), f.for_ordinal(Some(7)));
        assert!(!Faults::default().for_ordinal(Some(0)).is_active());
        assert_eq!(
            one.describe(),
            "50% of requests answered 503; latency 100ms"
        );
    }

    #[test]
    fn invalid_values_are_rejected_with_a_reason() {
        for (json, expected) in [
            (
                r#"{"errorRatio": 1.5}"#,
                "errorRatio must be between 0 and 1",
            ),
            (
                r#"{"errorStatus": 200}"#,
                "errorStatus must be an HTTP error status",
            ),
            (
                r#"{"latency": "11s"}"#,
                "latency \"11s\" is above the maximum of 10s",
            ),
            (r#"{"latency": "soon"}"#, "is not a duration"),
            (
                r#"{"latency": {"min": "2s", "max": "1s"}}"#,
                "latency min (2s) is above max (1s)",
            ),
            (r#"{"latency": {"min": "2s"}}"#, "missing field `max`"),
            (
                r#"{"latency": {"min": "1s", "max": "2s", "p": "1"}}"#,
                "unknown field `p`",
            ),
            (r#"{"cpuPerRequest": "2s"}"#, "above the maximum of 500ms"),
            (
                r#"{"pods": {"beacon-1": {}}}"#,
                "keys are StatefulSet ordinals",
            ),
            (r#"{"pods": {"1": {"pods": {}}}}"#, "unknown field `pods`"),
            // A pod is named beacon-1, never beacon-01: "01" is a typo, not ordinal 1.
            (r#"{"pods": {"01": {}}}"#, "got \"01\""),
            (r#"{"pods": {"+1": {}}}"#, "got \"+1\""),
            (r#"{"pods": {"": {}}}"#, "keys are StatefulSet ordinals"),
            (r#"{"errorRate": 0.1}"#, "unknown field `errorRate`"),
        ] {
            let err = faults(json).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn error_share_is_exact_and_latencies_stay_in_range() {
        let sequence = FaultSequence::default();
        let ms = Duration::from_millis;
        let f = Effective {
            error_ratio: 0.25,
            error_status: 503,
            latency: Some(Latency {
                min: ms(100),
                max: ms(200),
            }),
            cpu_per_request: None,
        };
        let planned: Vec<_> = (0..400).map(|_| sequence.for_next_request(&f)).collect();
        assert_eq!(planned.iter().filter(|(fail, _)| *fail).count(), 100);
        let lat: Vec<Duration> = planned.iter().map(|(_, l)| l.unwrap()).collect();
        assert!(lat.iter().all(|l| (ms(100)..=ms(200)).contains(l)));
        // Spread over the range, not clustered at one end.
        assert!(lat.iter().any(|l| *l < ms(120)) && lat.iter().any(|l| *l > ms(180)));
    }

    #[test]
    fn durations_parse_as_humantime_or_seconds() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("-1").is_err() && parse_duration("").is_err());
    }

    #[test]
    fn cpu_work_uses_cpu_time() {
        let t0 = thread_cpu_time();
        burn_cpu(Duration::from_millis(20));
        assert!(thread_cpu_time() - t0 >= Duration::from_millis(20));
    }
}
