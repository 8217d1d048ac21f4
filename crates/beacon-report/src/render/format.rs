//! Number formatting shared by every human-readable format.

use crate::model::Unit;

pub const DASH: &str = "–";

const KIB: f64 = 1024.0;
const BINARY: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];

/// A value in its unit, e.g. `0.250`, `512.0 MiB`, `1.2 KiB/s`, `45.3%`.
pub fn value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Cores => format!("{v:.3}"),
        Unit::Bytes => binary(v, ""),
        Unit::BytesPerSecond => binary(v, "/s"),
        Unit::Percent => format!("{v:.1}%"),
        Unit::Count => format!("{v:.0}"),
    }
}

pub fn opt(unit: Unit, v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| DASH.to_owned(), |v| value(unit, v))
}

/// Bytes in MiB, as question 3 asks.
pub fn mib(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| DASH.to_owned(), |v| format!("{:.0} MiB", v / KIB / KIB))
}

fn binary(v: f64, suffix: &str) -> String {
    let mut scaled = v;
    let mut i = 0;
    while scaled.abs() >= KIB && i < BINARY.len() - 1 {
        scaled /= KIB;
        i += 1;
    }
    if i == 0 {
        format!("{scaled:.0} {}{suffix}", BINARY[0])
    } else {
        format!("{scaled:.1} {}{suffix}", BINARY[i])
    }
}

/// A count with thousands separators: `1,490`.
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// `name` in at most `width` terminal columns, shortened in the middle
/// (`gke-prod-pool-1-…-a1b2c3`): names differ at both ends (pool, then hash), so both stay.
/// Counts display width, so wide characters are not cut in half and never overflow.
pub fn shorten_middle(name: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let w = |c: char| c.width().unwrap_or(0);
    if unicode_width::UnicodeWidthStr::width(name) <= width {
        return name.to_owned();
    }
    let budget = width.saturating_sub(1);
    let (head_budget, tail_budget) = (budget - budget / 2, budget / 2);
    let (mut head, mut used) = (String::new(), 0);
    for c in name.chars() {
        if used + w(c) > head_budget {
            break;
        }
        used += w(c);
        head.push(c);
    }
    let (mut tail, mut used) = (Vec::new(), 0);
    for c in name.chars().rev() {
        if used + w(c) > tail_budget {
            break;
        }
        used += w(c);
        tail.push(c);
    }
    head.push('…');
    head.extend(tail.into_iter().rev());
    head
}

/// A chart's remainder in words: "1,490 other pods: median average CPU 0.120".
pub fn remainder(r: &crate::model::Remainder, unit: Unit) -> String {
    format!(
        "{} other {}: median {} {}",
        count(r.count),
        r.noun,
        r.measure,
        opt(unit, r.median)
    )
}

/// A chart axis's time label, as precise as its span needs so that ~7 ticks never read the
/// same: seconds on ranges of a few minutes, the date on ranges of days.
pub fn clock_for_span(secs: f64, span: f64) -> String {
    let format = if span <= 900.0 {
        "%H:%M:%S"
    } else if span <= 86_400.0 {
        "%H:%M"
    } else {
        "%m-%d %H:%M"
    };
    jiff::Timestamp::from_second(secs as i64)
        .map(|t| t.strftime(format).to_string())
        .unwrap_or_default()
}

/// Age like kubectl prints it: `45s`, `12m`, `5h3m`, `3d4h`, `400d`.
pub fn age(created: Option<f64>, now: f64) -> String {
    let Some(created) = created.filter(|c| c.is_finite() && *c > 0.0) else {
        return DASH.to_owned();
    };
    let s = (now - created).max(0.0) as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if s < 3600 => format!("{}m", s / 60),
        _ if d == 0 => format!("{h}h{m}m"),
        _ if d < 8 => format!("{d}d{h}h"),
        _ => format!("{d}d"),
    }
}

/// A chart's y axis: one scale for every tick (`MiB` throughout, not `900 KiB`, `1.1 MiB`).
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    unit: Unit,
    divisor: f64,
    suffix: &'static str,
}

impl Axis {
    pub fn for_max(unit: Unit, max: f64) -> Self {
        let (divisor, suffix) = match unit {
            Unit::Bytes | Unit::BytesPerSecond => {
                let mut i = 0;
                while max / KIB.powi(i as i32) >= KIB && i < BINARY.len() - 1 {
                    i += 1;
                }
                (KIB.powi(i as i32), BINARY[i])
            }
            Unit::Percent => (1.0, "%"),
            Unit::Cores | Unit::Count => (1.0, ""),
        };
        Self {
            unit,
            divisor,
            suffix,
        }
    }

    /// A value in this axis's display unit (e.g. bytes to MiB).
    pub fn scale(&self, v: f64) -> f64 {
        v / self.divisor
    }

    /// A tick label for a value already in display units: as many decimals as the value
    /// needs (up to three), so evenly spaced ticks read as evenly spaced.
    pub fn tick(&self, scaled: f64) -> String {
        let number = format!("{scaled:.3}");
        let number = number.trim_end_matches('0').trim_end_matches('.');
        let number = if number == "-0" { "0" } else { number };
        match self.unit {
            Unit::Percent => format!("{number}%"),
            Unit::Cores | Unit::Count => number.to_string(),
            Unit::Bytes => format!("{number} {}", self.suffix),
            Unit::BytesPerSecond => format!("{number} {}/s", self.suffix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_units() {
        assert_eq!(value(Unit::Bytes, 512.0 * KIB * KIB), "512.0 MiB");
        assert_eq!(value(Unit::BytesPerSecond, 1536.0), "1.5 KiB/s");
        assert_eq!(value(Unit::Bytes, 12.0), "12 B");
        assert_eq!(value(Unit::Cores, 0.25), "0.250");
        assert_eq!(mib(Some(3.0 * KIB * KIB)), "3 MiB");
        assert_eq!(opt(Unit::Cores, None), DASH);
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1490), "1,490");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn shortens_in_the_middle_to_the_width() {
        let node = "gke-production-cluster-default-pool-1-a1b2c3d4-x9z8";
        let short = shorten_middle(node, 24);
        assert_eq!(short, "gke-producti…b2c3d4-x9z8");
        assert_eq!(short.chars().count(), 24);
        assert_eq!(shorten_middle("node-a", 24), "node-a");
        assert_eq!(shorten_middle(node, node.len()), node);
        assert_eq!(shorten_middle("abcdef", 3), "a…f");
    }

    #[test]
    fn shortening_counts_display_width_and_keeps_characters_whole() {
        use unicode_width::UnicodeWidthStr;
        // Each CJK character is two columns wide; none may be split or overflow.
        let wide = "ノード-東京-本番-プール-一";
        for width in 5..20 {
            let short = shorten_middle(wide, width);
            assert!(short.width() <= width, "{short:?} wider than {width}");
            assert!(short.contains('…'), "{short:?}");
            assert!(
                short.starts_with('ノ') && short.ends_with('一'),
                "{short:?}"
            );
        }
        // Combining accents have no width: "é" as e + U+0301 stays whole.
        let accents = "cafe\u{301}-cafe\u{301}-cafe\u{301}-cafe\u{301}";
        let short = shorten_middle(accents, 9);
        assert!(short.width() <= 9, "{short:?}");
    }

    #[test]
    fn ages_like_kubectl() {
        assert_eq!(age(Some(100.0), 145.0), "45s");
        assert_eq!(age(Some(0.0 + 1.0), 1.0 + 3.0 * 86_400.0 + 7200.0), "3d2h");
        assert_eq!(age(None, 1.0), DASH);
    }

    #[test]
    fn axis_keeps_one_scale() {
        let a = Axis::for_max(Unit::Bytes, 300.0 * KIB * KIB);
        assert_eq!(a.tick(a.scale(0.5 * KIB * KIB)), "0.5 MiB");
        assert_eq!(a.tick(a.scale(40.0 * KIB * KIB)), "40 MiB");
        let rate = Axis::for_max(Unit::BytesPerSecond, 3.0 * KIB);
        assert_eq!(rate.tick(rate.scale(2.5 * KIB)), "2.5 KiB/s");
        assert_eq!(Axis::for_max(Unit::Cores, 0.1).tick(0.025), "0.025");
        assert_eq!(Axis::for_max(Unit::Percent, 50.0).tick(12.5), "12.5%");
        assert_eq!(Axis::for_max(Unit::Percent, 50.0).tick(0.0), "0%");
    }
}
