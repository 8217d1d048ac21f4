//! Progress of a long download, logged at a fixed interval so `kubectl logs` shows that a
//! slow init container is moving and how fast.

use std::time::{Duration, Instant};

pub(crate) struct Progress<'a> {
    url: &'a str,
    total: Option<u64>,
    started: Instant,
    last_report: Instant,
    interval: Duration,
    pub(crate) bytes: u64,
}

impl<'a> Progress<'a> {
    pub(crate) fn new(url: &'a str, total: Option<u64>, interval: Duration) -> Self {
        let now = Instant::now();
        Self {
            url,
            total,
            started: now,
            last_report: now,
            interval,
            bytes: 0,
        }
    }

    pub(crate) fn add(&mut self, n: usize) {
        self.bytes += n as u64;
        if self.last_report.elapsed() >= self.interval {
            self.last_report = Instant::now();
            let total = self.total.map(human_bytes).unwrap_or_else(|| "?".into());
            tracing::info!(
                url = self.url,
                bytes = self.bytes,
                total = self.total,
                rate = %rate(self.bytes, self.started.elapsed()),
                "downloading: {} of {total}",
                human_bytes(self.bytes),
            );
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

pub(crate) fn rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    format!("{}/s", human_bytes((bytes as f64 / secs) as u64))
}

/// Binary units, one decimal: a log line, not an invoice.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A duration as a person reads it: to the millisecond below a second, to a tenth of a second
/// above (`3s`, `1s 500ms`, `593ms`), never `2s 999ms 999us 890ns`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    let rounded = if ms >= 1000.0 {
        (ms / 100.0).round() as u64 * 100
    } else {
        ms.round() as u64
    };
    humantime::format_duration(Duration::from_millis(rounded)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(rate(2048, Duration::from_secs(2)), "1.0 KiB/s");
    }

    #[test]
    fn durations_are_rounded_for_people() {
        let d = |s: f64| human_duration(Duration::from_secs_f64(s));
        assert_eq!(d(2.999_999_890), "3s");
        assert_eq!(d(0.593_519_027), "594ms");
        assert_eq!(d(1.5), "1s 500ms");
        assert_eq!(d(61.26), "1m 1s 300ms");
        assert_eq!(d(0.0), "0s");
    }
}
