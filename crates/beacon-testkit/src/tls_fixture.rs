//! A throwaway CA and a server certificate signed by it, made by `openssl` in a test's
//! directory: `ca.pem` to trust, `server.pem` and `server.key` for the server.

use std::{
    path::Path,
    process::{Command, Stdio},
};

/// The subjectAltNames a server on the loopback interface is reached by.
pub const LOOPBACK_NAMES: &str = "IP:127.0.0.1,DNS:localhost";

/// Runs `openssl ARGS` in `dir` (`args` split on whitespace; none of them needs a space).
pub fn openssl(dir: &Path, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is missing: install the Debian package openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `ca.key`/`ca.pem`, a CA valid for two days, and `server.key`/`server.pem`, a
/// server certificate signed by it for `san` (a subjectAltName list such as
/// [`LOOPBACK_NAMES`]), into `dir`.
pub fn make_ca_and_server_certificate(dir: &Path, san: &str) {
    openssl(
        dir,
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
         -keyout ca.key -out ca.pem -subj /CN=beacon-test-CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
    );
    openssl(
        dir,
        "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
         -keyout server.key -out server.csr -subj /CN=localhost",
    );
    std::fs::write(
        dir.join("server.ext"),
        format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        dir,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
         -out server.pem -extfile server.ext",
    );
}
