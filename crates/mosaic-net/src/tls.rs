//! TLS settings for `wss`: a server certificate from PEM, client trust roots.
//!
//! rustls with the ring provider; TLS 1.2 and 1.3 (`websockets.md` asks for at
//! least 1.2). The library never reads files: the caller reads the PEM bytes.
//! A server's certificate can be replaced while it runs
//! ([`ServerTls::replace`]): new connections get the new one, connections
//! already open keep the session they negotiated.

use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{NetError, PemProblem};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server's TLS configuration. Clones share one certificate slot, so a
/// [`replace`](ServerTls::replace) through any clone reaches them all.
#[derive(Clone)]
pub struct ServerTls(Arc<RwLock<Arc<rustls::ServerConfig>>>);

impl ServerTls {
    /// The configuration in force, for the next handshake.
    pub(crate) fn current(&self) -> Arc<rustls::ServerConfig> {
        // A panic while holding the lock cannot leave a half-written Arc.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `other`'s certificate and key in force for the connections
    /// accepted from now on; open connections are not touched. Build
    /// `other` with [`from_pem`](ServerTls::from_pem) first, so that a bad
    /// certificate is refused before anything changes.
    pub fn replace(&self, other: &ServerTls) {
        let config = other.current();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// From a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or
    /// SEC1). `cert_source` and `key_source` name where they came from, for
    /// error messages.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_source: &str,
        key_source: &str,
    ) -> Result<ServerTls, NetError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|_| NetError::Pem {
                what: "certificate",
                path: cert_source.to_string(),
                reason: PemProblem::Malformed,
            })?;
        if certs.is_empty() {
            return Err(NetError::Pem {
                what: "certificate",
                path: cert_source.to_string(),
                reason: PemProblem::Missing,
            });
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| NetError::Pem {
            what: "private key",
            path: key_source.to_string(),
            reason: match e {
                rustls::pki_types::pem::Error::NoItemsFound => PemProblem::Missing,
                _ => PemProblem::Malformed,
            },
        })?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls(Arc::new(RwLock::new(Arc::new(config)))))
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls(..)")
    }
}

/// A client's TLS configuration: which certificate authorities it trusts.
#[derive(Clone)]
pub struct ClientTls(pub(crate) Arc<rustls::ClientConfig>);

impl ClientTls {
    /// Trusts the Mozilla root store (what browsers trust), as
    /// `websockets.md` expects of servers' certificates.
    pub fn webpki_roots() -> Result<ClientTls, NetError> {
        ClientTls::with_roots(&[], "")
    }

    /// Trusts the Mozilla roots and the certificates in `extra_pem` (a private
    /// CA or a self-signed test certificate).
    pub fn with_roots(extra_pem: &[u8], source: &str) -> Result<ClientTls, NetError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in CertificateDer::pem_slice_iter(extra_pem) {
            let cert = cert.map_err(|_| NetError::Pem {
                what: "certificate",
                path: source.to_string(),
                reason: PemProblem::Malformed,
            })?;
            roots.add(cert)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ClientTls(Arc::new(config)))
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls(..)")
    }
}
