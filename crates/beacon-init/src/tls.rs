//! The HTTP client shared by `fetch` and `wait`.
//!
//! TLS is rustls with the pure-Rust `ring` provider (no C toolchain, links statically). Trust
//! roots come from the system bundle that distroless images ship at
//! /etc/ssl/certs/ca-certificates.crt — so a cluster's private CA added to the image works —
//! and fall back to the compiled-in Mozilla roots when there is no bundle (a `scratch`
//! image). reqwest's platform verifier is not used because it fails outright without a bundle.

use std::{path::Path, sync::Arc, time::Duration};

use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, pem::PemObject};

use crate::{Error, Result};

const SYSTEM_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem"];

pub(crate) struct ClientOptions {
    /// Bounds connecting, waiting for headers and every gap between body chunks, so a stalled
    /// server is detected even when the whole transfer would legitimately take longer.
    pub stall_timeout: Duration,
    pub max_redirects: usize,
}

pub(crate) fn http_client(opts: &ClientOptions) -> Result<reqwest::Client> {
    let max = opts.max_redirects;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config()?)
        .connect_timeout(opts.stall_timeout)
        .read_timeout(opts.stall_timeout)
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max {
                attempt.error(format!("too many redirects (more than {max})"))
            } else {
                attempt.follow()
            }
        }))
        .user_agent(concat!("beacon-init/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Client(crate::error::chain(&e)))
}

fn tls_config() -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Anything else in the process that builds a rustls config without naming a provider
    // would panic otherwise; an already-installed provider is fine.
    let _ =
        rustls::crypto::CryptoProvider::install_default(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Client(e.to_string()))?
        .with_root_certificates(root_store())
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
            tracing::debug!(bundle = %path.display(), added, ignored, "trusting the system CA bundle");
            return store;
        }
    }
    tracing::debug!("no system CA bundle; trusting the built-in Mozilla roots");
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
    fn a_bundle_is_used_when_present() {
        let Some(bundle) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.exists()) else {
            return;
        };
        let store = root_store_from(std::iter::once(bundle));
        assert!(!store.is_empty());
    }

    #[test]
    fn the_client_builds() {
        http_client(&ClientOptions {
            stall_timeout: Duration::from_secs(1),
            max_redirects: 3,
        })
        .unwrap();
    }
}
