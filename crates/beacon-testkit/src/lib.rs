//! What beacon's integration tests (`crates/beacon/tests/<part>/`) share. A crate rather than a
//! module each test binary includes: every binary uses a different subset, and public items of a
//! library are never dead code.

pub mod fixture_http;
pub mod tls_fixture;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A port nothing listens on (yet): bound, noted, released.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where `tool` is: a path as given, a bare name looked up on PATH. A missing tool fails the
/// test with what to install (`package`); it never skips it.
pub fn require(tool: &str, package: &str) -> PathBuf {
    let found = if tool.contains('/') {
        Some(PathBuf::from(tool)).filter(|path| path.is_file())
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(tool))
            .find(|candidate| candidate.is_file())
    };
    found.unwrap_or_else(|| {
        panic!(
            "`{tool}` is missing: install {package} (`scripts/install-test-deps`, as root, does)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_finds_a_tool_on_path_and_takes_a_path_as_given() {
        let sh = require("sh", "the Debian package dash");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(require(sh.to_str().unwrap(), "dash"), sh);
    }

    #[test]
    #[should_panic(expected = "`no-such-tool-here` is missing: install the Debian package nothing")]
    fn require_fails_on_a_missing_tool() {
        require("no-such-tool-here", "the Debian package nothing");
    }

    #[test]
    #[should_panic(expected = "`/no/such/tool` is missing")]
    fn require_fails_on_a_missing_path() {
        require("/no/such/tool", "nothing");
    }

    #[test]
    fn repo_root_holds_the_workspace() {
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(repo_root().join("crates/beacon-testkit").is_dir());
    }
}
