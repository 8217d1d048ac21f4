//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): each request's trace id, taken
//! from its `traceparent` header or started anew.
//!
//! beacon calls nothing downstream and records no spans, so it needs the trace id only: for
//! the access log and the latency histogram's exemplars. A header that does not parse is
//! ignored, as the spec asks, and a new trace starts; the client never sees an error for it.

use std::{fmt, num::NonZeroU128};

use axum::http::{HeaderMap, HeaderName};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// A 16-byte trace id; never all zeros (the spec's invalid value). Shown as 32 lowercase hex
/// digits, as in `traceparent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceId(NonZeroU128);

impl TraceId {
    /// The trace this request belongs to: its `traceparent`'s when there is exactly one valid
    /// header (the spec's test suite treats two as invalid), else a new random one.
    pub fn of_request(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(&TRACEPARENT).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => Self::from_traceparent(value.as_bytes()),
            _ => None,
        }
        .unwrap_or_else(Self::random)
    }

    pub fn random() -> Self {
        loop {
            if let Some(id) = NonZeroU128::new(rand::random()) {
                return Self(id);
            }
        }
    }

    /// The trace id of a `traceparent` value, `None` if the value is not valid.
    /// `version-traceid-parentid-flags`, lowercase hex of 2, 32, 16 and 2 digits. Version `ff`
    /// is invalid; version `00` is exactly these 55 characters; a later version is read by
    /// its first four fields, which may be followed by `-` and more (the spec's forward
    /// compatibility rule).
    pub fn from_traceparent(value: &[u8]) -> Option<Self> {
        let v = trim_ows(value);
        if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let extended = v.len() > 55;
        match lower_hex(&v[..2])? {
            0xff => return None,
            0 if extended => return None,
            _ if extended && v[55] != b'-' => return None,
            _ => {}
        }
        let trace_id = lower_hex(&v[3..35])?;
        let parent_id = lower_hex(&v[36..52])?;
        lower_hex(&v[53..55])?;
        if parent_id == 0 {
            return None;
        }
        NonZeroU128::new(trace_id).map(Self)
    }
}

/// Without HTTP's optional whitespace (spaces and tabs) around a header value.
fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// The value of at most 32 lowercase hex digits; `None` for anything else, uppercase included.
fn lower_hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |n, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | u128::from(d))
    })
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl EncodeLabelValue for TraceId {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        fmt::Write::write_fmt(encoder, format_args!("{self}"))
    }
}

/// The exemplar attached to a latency observation: `{trace_id="…"}`, the label name Grafana's
/// exemplar links and OpenTelemetry use.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: TraceId,
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn parse(s: &str) -> Option<String> {
        TraceId::from_traceparent(s.as_bytes()).map(|id| id.to_string())
    }

    #[test]
    fn a_valid_version_00_header_gives_its_trace_id() {
        assert_eq!(
            parse(VALID).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // Any flags, sampled or not.
        assert!(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").is_some());
        assert!(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff").is_some());
        // Leading zeros in the trace id are kept in its text.
        assert_eq!(
            parse("00-00000000000000000000000000000001-00f067aa0ba902b7-01").as_deref(),
            Some("00000000000000000000000000000001")
        );
    }

    #[test]
    fn optional_whitespace_around_the_value_is_allowed() {
        // HTTP's OWS; the W3C test suite sends it.
        assert!(parse(&format!(" \t{VALID}\t ")).is_some());
    }

    #[test]
    fn version_ff_and_non_hex_versions_are_invalid() {
        for v in ["ff", "0g", "0A", "-0", "  "] {
            let header = format!("{v}{}", &VALID[2..]);
            assert_eq!(parse(&header), None, "{header}");
        }
    }

    #[test]
    fn version_00_has_exactly_four_fields() {
        assert_eq!(parse(&format!("{VALID}-")), None);
        assert_eq!(parse(&format!("{VALID}-extra")), None);
        assert_eq!(parse(&format!("{VALID}0")), None);
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_fields() {
        // The spec: parse a higher version's first 55 characters; more may follow after a dash.
        let v1 = format!("01{}", &VALID[2..]);
        assert!(parse(&v1).is_some());
        assert!(parse(&format!("{v1}-what-comes-later")).is_some());
        assert_eq!(
            parse(&format!("{v1}0")),
            None,
            "flags must end at a dash or the end"
        );
        assert_eq!(parse(&v1[..54]), None, "shorter than 55 characters");
    }

    #[test]
    fn all_zero_ids_are_invalid() {
        assert_eq!(
            parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(
            parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            None
        );
    }

    #[test]
    fn fields_of_the_wrong_length_are_invalid() {
        for header in [
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b77-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "",
        ] {
            assert_eq!(parse(header), None, "{header}");
        }
    }

    #[test]
    fn uppercase_hex_is_invalid() {
        // The spec's HEXDIGLC: lowercase only, in every field.
        for header in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
        ] {
            assert_eq!(parse(header), None, "{header}");
        }
    }

    #[test]
    fn wrong_separators_and_non_hex_digits_are_invalid() {
        for header in [
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bx-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse(header), None, "{header}");
        }
    }

    #[test]
    fn one_valid_header_is_used_and_anything_else_starts_a_new_trace() {
        let mut headers = HeaderMap::new();
        headers.insert(&TRACEPARENT, VALID.parse().unwrap());
        assert_eq!(
            TraceId::of_request(&headers).to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        headers.append(
            &TRACEPARENT,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .parse()
                .unwrap(),
        );
        let twice = TraceId::of_request(&headers).to_string();
        assert!(
            !twice.starts_with("4bf9") && !twice.starts_with("0af7"),
            "{twice}"
        );
        assert_eq!(twice.len(), 32);
    }

    #[test]
    fn new_trace_ids_differ_and_are_32_lowercase_hex_digits() {
        let a = TraceId::of_request(&HeaderMap::new()).to_string();
        let b = TraceId::random().to_string();
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
        }
    }
}
