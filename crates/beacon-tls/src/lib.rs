//! The TLS client configuration every beacon HTTP client uses (`init fetch`/`wait`, `report`).
//!
//! rustls with the pure-Rust `ring` provider (no C toolchain, links statically). Trust roots
//! come from `$SSL_CERT_FILE`, else the system bundle that distroless images ship at
//! /etc/ssl/certs/ca-certificates.crt — so a cluster's private CA added to the image works —
//! and fall back to the compiled-in Mozilla roots when there is no bundle (a `scratch` image).
//! reqwest's platform verifier is not used because it fails outright without a bundle.
//!
//! Two helpers every client shares live here too: [`read_regular_file`], through which the CA
//! file and the credential files are read, and [`error_chain`], the one rule for printing an
//! error with its causes (the binary's error line, the clients' per-attempt reasons and notes).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::RootCertStore;
/// The configuration handed to reqwest, and its error, so that clients need no rustls of their own.
pub use rustls::{ClientConfig, Error as TlsError};
use rustls_pki_types::{CertificateDer, pem::PemObject};

const SYSTEM_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem"];

/// A client config for HTTP/1.1 over TLS, ready for `reqwest::ClientBuilder::use_preconfigured_tls`.
pub fn client_config() -> Result<ClientConfig, rustls::Error> {
    config_with_roots(root_store())
}

/// The error and its causes joined by `: ` (`a: b: c`). beacon's own errors hold their cause as
/// the `source` and never repeat it; the HTTP stack's sometimes show their cause and return it
/// too (hyper), so a cause the line already ends with is skipped rather than printed twice.
pub fn error_chain(e: &dyn std::error::Error) -> String {
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

/// The most a CA file may hold: Debian's whole bundle is ~220 KB.
pub const MAX_CA_FILE_BYTES: u64 = 4 << 20;

/// Reads a regular file of at most `limit` bytes. Opened non-blocking, so a FIFO, socket or
/// device in its place is refused at once instead of blocking the reader until something writes
/// to it; an endless or oversized file is refused after `limit + 1` bytes.
pub fn read_regular_file(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
    }
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, socket or device)",
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// Why a CA file cannot be used; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot read the CA file {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {} holds no usable PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("cannot build the TLS configuration")]
    Tls(#[from] rustls::Error),
}

/// Like [`client_config`], but trusting only the certificates in `ca_file` (a PEM bundle), as
/// `curl --cacert` and Prometheus' `tls_config.ca_file` do: a server behind a private CA is
/// accepted, and nothing else the system trusts can stand in for it.
pub fn client_config_trusting(ca_file: &Path) -> Result<ClientConfig, CaFileError> {
    let read = |source| CaFileError::Read {
        path: ca_file.to_owned(),
        source,
    };
    // Read first: pem_file_iter's errors do not say which file, nor tell "missing" from "empty".
    let pem = read_regular_file(ca_file, MAX_CA_FILE_BYTES).map_err(read)?;
    let mut store = RootCertStore::empty();
    let certs = CertificateDer::pem_slice_iter(&pem).filter_map(|c| c.ok());
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(CaFileError::NoCertificate {
            path: ca_file.to_owned(),
        });
    }
    Ok(config_with_roots(store)?)
}

fn config_with_roots(roots: RootCertStore) -> Result<ClientConfig, rustls::Error> {
    // Anything else in the process that builds a rustls config without naming a provider
    // would panic otherwise; an already-installed provider is fine.
    let _ =
        rustls::crypto::CryptoProvider::install_default(rustls::crypto::ring::default_provider());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn root_store() -> RootCertStore {
    let env_file = std::env::var_os("SSL_CERT_FILE");
    root_store_from(
        env_file
            .iter()
            .map(Path::new)
            .chain(SYSTEM_BUNDLES.iter().map(Path::new)),
    )
}

/// The first bundle with at least one usable certificate, else the built-in roots.
fn root_store_from<'a>(candidates: impl Iterator<Item = &'a Path>) -> RootCertStore {
    for path in candidates {
        let Ok(iter) = CertificateDer::pem_file_iter(path) else {
            continue;
        };
        let mut store = RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(iter.filter_map(|c| c.ok()));
        if added > 0 {
            tracing::debug!(bundle = %path.display(), added, ignored, "trusting the CA bundle");
            return store;
        }
    }
    tracing::debug!("no CA bundle; trusting the built-in Mozilla roots");
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_back_to_builtin_roots_without_a_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let store = root_store_from([missing.as_path(), empty.as_path()].into_iter());
        assert_eq!(store.len(), webpki_roots::TLS_SERVER_ROOTS.len());
    }

    #[test]
    fn the_system_bundle_is_used_when_present() {
        // Debian's ca-certificates (installed by scripts/install-test-deps) provides it.
        let bundle = Path::new(SYSTEM_BUNDLES[0]);
        assert!(
            bundle.exists(),
            "{} is missing: install ca-certificates",
            bundle.display()
        );
        let from_bundle = root_store_from(std::iter::once(bundle));
        let pems = std::fs::read_to_string(bundle)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count();
        assert_eq!(from_bundle.len(), pems);
    }

    #[test]
    fn only_a_bounded_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let err = read_regular_file(&fifo, 10).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        let err = read_regular_file(dir.path(), 10).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EISDIR), "{err}");
        let file = dir.path().join("file");
        std::fs::write(&file, "0123456789").unwrap();
        assert_eq!(read_regular_file(&file, 10).unwrap(), b"0123456789");
        let err = read_regular_file(&file, 9).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge, "{err}");
    }

    #[test]
    fn a_ca_file_must_exist_and_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = error_chain(&client_config_trusting(&missing).unwrap_err());
        assert!(
            err.contains(&missing.display().to_string()) && err.contains("No such file"),
            "{err}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config_trusting(&empty).unwrap_err().to_string();
        assert!(
            err.contains(&empty.display().to_string()) && err.contains("no usable PEM certificate"),
            "{err}"
        );
        // Debian's bundle (ca-certificates) is a valid one.
        client_config_trusting(Path::new(SYSTEM_BUNDLES[0])).unwrap();
    }

    #[test]
    fn the_config_builds() {
        let config = client_config().unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }
}
