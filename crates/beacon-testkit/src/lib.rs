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
