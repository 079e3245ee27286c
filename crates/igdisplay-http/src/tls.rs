//! The rustls client configuration both real backends share: the ring provider and the
//! operating system's trust store, through rustls-platform-verifier, plus any extra roots the
//! configuration names.

use crate::{TransportError, TransportErrorKind};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls_platform_verifier::BuilderVerifierExt;
use std::sync::Arc;

/// A TLS 1.2/1.3 client configuration, without client authentication, trusting the operating
/// system's roots and `extra_roots_pem`.
pub(crate) fn client_config(extra_roots_pem: &[Vec<u8>]) -> Result<rustls::ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::with_source(TransportErrorKind::Other, e))?;
    if extra_roots_pem.is_empty() {
        return builder
            .with_platform_verifier()
            .map(|builder| builder.with_no_client_auth())
            .map_err(|e| TransportError::with_source(TransportErrorKind::Other, e));
    }
    let mut roots = Vec::new();
    for pem in extra_roots_pem {
        let before = roots.len();
        for certificate in CertificateDer::pem_slice_iter(pem) {
            roots.push(
                certificate
                    .map_err(|e| TransportError::with_source(TransportErrorKind::InvalidRequest, e))?,
            );
        }
        if roots.len() == before {
            return Err(TransportError::with_source(
                TransportErrorKind::InvalidRequest,
                "an extra root PEM holds no certificate",
            ));
        }
    }
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider)
        .map_err(|e| TransportError::with_source(TransportErrorKind::Other, e))?;
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// The kind of an I/O failure found in an error's source chain, if any.
pub(crate) fn io_kind_in_chain(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = e.source();
    }
    None
}
