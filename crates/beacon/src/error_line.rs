//! The one printer of an error chain: every subcommand's failure ends as this line on stderr,
//! which is what `kubectl logs` and a termination message show.

/// The error and its causes joined by `: ` (`a: b: c`). beacon's own errors hold their cause as
/// the `source` and never repeat it; some third-party ones (hyper) do show their cause and return
/// it too, so a cause the line already ends with is skipped rather than printed twice.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let msg = c.to_string();
        if !line.ends_with(&msg) {
            line.push_str(": ");
            line.push_str(&msg);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shows its source in its message and returns it from `source()` too.
    #[derive(Debug)]
    struct ShowsItsSource(std::io::Error);

    impl std::fmt::Display for ShowsItsSource {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "connect error: {}", self.0)
        }
    }

    impl std::error::Error for ShowsItsSource {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_chain_is_one_line_with_each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let e = anyhow::Error::from(ShowsItsSource(io)).context("cannot start");
        assert_eq!(
            one_line(e.as_ref()),
            "cannot start: connect error: address in use"
        );
        let plain = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(one_line(plain.as_ref()), "outer: middle: inner");
    }
}
