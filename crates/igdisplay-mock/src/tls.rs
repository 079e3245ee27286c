//! HTTPS for the mock: a test root certificate and a server certificate for `127.0.0.1` and
//! `localhost`, made fresh at start and never written anywhere unless asked.
//!
//! Peer clients refuse plain `http://` for OAuth (Python's oauthlib does, for one), so a mock
//! that serves only http cannot test them. The root is exported as PEM
//! ([`MockServer::root_certificate_pem`](crate::MockServer::root_certificate_pem), `GET
//! /_mock/ca.pem`, and a file the binary names) so that any client can trust it.

use crate::MockError;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;

/// A running mock's TLS: the root to export and the acceptor of its connections.
pub(crate) struct Tls {
    /// The test root, PEM.
    pub(crate) root_pem: String,
    /// Accepts TLS on a connection, with the server certificate for 127.0.0.1 and localhost.
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

fn failed(error: impl std::fmt::Display) -> MockError {
    MockError::Tls {
        reason: error.to_string(),
    }
}

/// Makes a root, a server certificate signed by it, and the acceptor serving them.
///
/// The root is a CA (basic constraints, key-cert-sign) and the server certificate a leaf for
/// `localhost` and `127.0.0.1` with the server-auth usage, so strict verifiers (webpki,
/// OpenSSL in strict mode) accept the chain as a real one. Keys are fresh ECDSA P-256 each
/// start; nothing is kept after the mock stops. The server presents the leaf and the root, and
/// speaks HTTP/1.1 only (ALPN), like the rest of the mock.
pub(crate) fn generate() -> Result<Tls, MockError> {
    let root_key = KeyPair::generate().map_err(failed)?;
    let mut root = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.distinguished_name
        .push(DnType::CommonName, "igdisplay-mock test root");
    root.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let root_cert = root.self_signed(&root_key).map_err(failed)?;
    let issuer = Issuer::new(root, root_key);

    let server_key = KeyPair::generate().map_err(failed)?;
    let mut server =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).map_err(failed)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "igdisplay-mock");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer).map_err(failed)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let chain = vec![
        CertificateDer::from(server_cert.der().to_vec()),
        CertificateDer::from(root_cert.der().to_vec()),
    ];
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(failed)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(failed)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        root_pem: root_cert.pem(),
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    })
}
