//! The last stderr line of a failed command: what `kubectl logs` and a termination message show.

/// The error and its causes joined by `: `, like anyhow's `{:#}`, but a cause that the message
/// before it already ends with is skipped: an error that both shows its source and returns it
/// from `source()` would otherwise print it twice (`…: X: X`).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if line.ends_with(&msg) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&msg);
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
            write!(f, "cannot listen on 127.0.0.1:80: {}", self.0)
        }
    }

    impl std::error::Error for ShowsItsSource {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let e = anyhow::Error::from(ShowsItsSource(io)).context("cannot start");
        assert_eq!(
            one_line(&e),
            "cannot start: cannot listen on 127.0.0.1:80: address in use"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&plain), "outer: inner");
    }
}
