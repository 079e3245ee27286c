//! The rustls client configuration both real backends share: the ring provider and the
//! operating system's trust store, through rustls-platform-verifier.

use crate::{TransportError, TransportErrorKind};
use rustls_platform_verifier::BuilderVerifierExt;
use std::sync::Arc;

/// A TLS 1.2/1.3 client configuration, without client authentication.
pub(crate) fn client_config() -> Result<rustls::ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::with_source(TransportErrorKind::Other, e))?
        .with_platform_verifier()
        .map(|builder| builder.with_no_client_auth())
        .map_err(|e| TransportError::with_source(TransportErrorKind::Other, e))
}

/// Runs `future` under the request timeout, mapping expiry to [`TransportErrorKind::Timeout`].
pub(crate) async fn with_timeout<T>(
    timeout: std::time::Duration,
    future: impl Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    crate::timeout::within(&crate::SystemClock, timeout, future).await
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
