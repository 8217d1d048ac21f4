//! The `Range: bytes=…` request header (RFC 9110 §14), as far as `/init-data/` honours it.
//!
//! One satisfiable range gets a 206. Several ranges get the whole file with 200: a server
//! may ignore Range (§14.2), and a multipart answer buys nothing for files this small. A
//! header that does not parse, or another unit, is ignored the same way. Only a well-formed
//! single range that starts at or past the end is 416.

#[derive(Debug, PartialEq, Eq)]
pub enum Requested {
    Full,
    /// Inclusive byte positions.
    Part {
        first: u64,
        last: u64,
    },
    Unsatisfiable,
}

pub fn parse(header: Option<&str>, len: u64) -> Requested {
    let Some(header) = header else {
        return Requested::Full;
    };
    let Some((unit, set)) = header.split_once('=') else {
        return Requested::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return Requested::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Requested::Full;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first, last) {
        ("", suffix) => match number(suffix) {
            Some(0) => Requested::Unsatisfiable,
            Some(_) if len == 0 => Requested::Unsatisfiable,
            Some(n) => Requested::Part {
                first: len.saturating_sub(n),
                last: len - 1,
            },
            None => Requested::Full,
        },
        (first, "") => match number(first) {
            Some(f) if f >= len => Requested::Unsatisfiable,
            Some(f) => Requested::Part {
                first: f,
                last: len - 1,
            },
            None => Requested::Full,
        },
        (first, last) => match (number(first), number(last)) {
            (Some(f), Some(l)) if l < f => Requested::Full,
            (Some(f), Some(_)) if f >= len => Requested::Unsatisfiable,
            (Some(f), Some(l)) => Requested::Part {
                first: f,
                last: l.min(len - 1),
            },
            _ => Requested::Full,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{Requested::*, *};

    #[test]
    fn ranges() {
        let cases = [
            (None, Full),
            (Some("bytes=0-3"), Part { first: 0, last: 3 }),
            (Some("Bytes = 2-"), Part { first: 2, last: 9 }),
            (Some("bytes=-4"), Part { first: 6, last: 9 }),
            (Some("bytes=-40"), Part { first: 0, last: 9 }),
            (Some("bytes=5-500"), Part { first: 5, last: 9 }),
            (Some("bytes=10-"), Unsatisfiable),
            (Some("bytes=10-12"), Unsatisfiable),
            (Some("bytes=-0"), Unsatisfiable),
            (Some("bytes=0-1,3-4"), Full),
            (Some("bytes=4-2"), Full),
            (Some("bytes=x-2"), Full),
            (Some("bytes=+1-2"), Full),
            (Some("bytes=1-2-3"), Full),
            (Some("bytes="), Full),
            (Some("lines=0-1"), Full),
            (Some("0-1"), Full),
            (Some("bytes=99999999999999999999-"), Full),
        ];
        for (header, want) in cases {
            assert_eq!(parse(header, 10), want, "{header:?}");
        }
        assert_eq!(parse(Some("bytes=-1"), 0), Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-"), 0), Unsatisfiable);
    }
}
