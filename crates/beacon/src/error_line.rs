//! The line every subcommand's failure ends with on stderr, which is what `kubectl logs` and a
//! termination message show: `beacon: error: a: b: c` (the rule: [`beacon_tls::error_chain`]).

pub fn one_line(e: &anyhow::Error) -> String {
    beacon_tls::error_chain(e.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shows its source in its message and returns it from `source()` too, as hyper does.
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
        assert_eq!(one_line(&e), "cannot start: connect error: address in use");
        let plain = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(one_line(&plain), "outer: middle: inner");
    }
}
