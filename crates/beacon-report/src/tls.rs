//! TLS for the Prometheus and Alertmanager clients, set up like beacon-init's: rustls with the
//! pure-Rust `ring` provider, trusting the system CA bundle (so a cluster's private CA works)
//! and falling back to the compiled-in Mozilla roots when an image ships no bundle.

use std::{path::Path, sync::Arc};

use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, pem::PemObject};

use crate::{Error, Result};

const SYSTEM_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem"];

pub(crate) fn client_config() -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Client(e.to_string()))?
        .with_root_certificates(root_store())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn root_store() -> RootCertStore {
    let from_env = std::env::var_os("SSL_CERT_FILE");
    let candidates = from_env
        .iter()
        .map(Path::new)
        .chain(SYSTEM_BUNDLES.iter().map(Path::new));
    for path in candidates {
        let Ok(certs) = CertificateDer::pem_file_iter(path) else {
            continue;
        };
        let mut store = RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(certs.filter_map(|c| c.ok()));
        if added > 0 {
            return store;
        }
    }
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}
