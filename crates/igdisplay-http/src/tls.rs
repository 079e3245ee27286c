//! The rustls client configuration both real backends share: the ring provider and the
//! operating system's trust store, through rustls-platform-verifier, plus any extra roots the
//! configuration names.

use crate::{TransportError, TransportErrorKind};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls_platform_verifier::BuilderVerifierExt;
use std::sync::{Arc, OnceLock};

/// The rustls client configuration igdisplay's backends use: TLS 1.2 and 1.3 with the ring
/// provider, no client authentication, trusting the operating system's roots (through
/// rustls-platform-verifier) and the certificates in `extra_roots_pem`. Build your own clients
/// with it to trust exactly what igdisplay trusts.
///
/// Reading the system's trust store costs tens of milliseconds, so the configuration without
/// extra roots is built once per process and cloned (a clone shares its verifier): a root the
/// system gains later is trusted by the next process.
///
/// ```
/// let config = igdisplay_http::rustls_client_config(&[])?;
/// # #[cfg(feature = "reqwest")] {
/// let client = reqwest::Client::builder().tls_backend_preconfigured(config).build()?;
/// # drop(client);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`TransportErrorKind::InvalidRequest`] for an extra root that is not a PEM certificate;
/// [`TransportErrorKind::Other`] when the trust store cannot be set up.
pub fn rustls_client_config(extra_roots_pem: &[Vec<u8>]) -> Result<rustls::ClientConfig, TransportError> {
    static SYSTEM_ROOTS: OnceLock<rustls::ClientConfig> = OnceLock::new();
    if !extra_roots_pem.is_empty() {
        return build_config(extra_roots_pem);
    }
    if let Some(config) = SYSTEM_ROOTS.get() {
        return Ok(config.clone());
    }
    let config = build_config(&[])?;
    // Two threads may both build it the first time; either copy is the same.
    Ok(SYSTEM_ROOTS.get_or_init(|| config).clone())
}

/// [`rustls_client_config`], built afresh.
fn build_config(extra_roots_pem: &[Vec<u8>]) -> Result<rustls::ClientConfig, TransportError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_roots_configuration_is_built_once_and_shared() {
        let first = rustls_client_config(&[]).unwrap();
        let second = rustls_client_config(&[]).unwrap();
        assert!(Arc::ptr_eq(first.crypto_provider(), second.crypto_provider()));
    }

    #[test]
    fn extra_roots_are_read_for_each_configuration_and_checked() {
        let error = rustls_client_config(&[b"not a certificate".to_vec()]).unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::InvalidRequest);
    }
}
