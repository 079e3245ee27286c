//! Name resolution under an [`AddressPolicy`], for both real backends: the addresses a name
//! resolves to that the policy refuses are dropped, and a name left with none fails to
//! connect (so a DNS answer pointing at loopback or the metadata address is never followed).

use crate::{AddressPolicy, HttpRequest, TransportError, TransportErrorKind};
use std::net::SocketAddr;

/// Refuses a request whose URL writes an address the policy refuses (no resolver sees an
/// address written in the URL): nothing is sent.
pub(crate) fn check_host(request: &HttpRequest, policy: &AddressPolicy) -> Result<(), TransportError> {
    let host = request.uri().host().unwrap_or_default();
    if policy.allows_host(host) {
        return Ok(());
    }
    Err(TransportError::with_source(
        TransportErrorKind::InvalidRequest,
        "the URL names an address this backend may not connect to",
    ))
}

/// The addresses of `host` the policy allows.
pub(crate) async fn resolve(host: &str, policy: &AddressPolicy) -> std::io::Result<Vec<SocketAddr>> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let allowed: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|addr| policy.allows(host, addr.ip()))
        .collect();
    if allowed.is_empty() && !found.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the host resolves only to addresses this backend may not connect to",
        ));
    }
    Ok(allowed)
}

/// The resolver both backends are given when their policy restricts addresses.
#[derive(Clone, Debug)]
pub(crate) struct PolicyResolver(pub(crate) AddressPolicy);

#[cfg(feature = "reqwest")]
impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (policy, host) = (self.0.clone(), name.as_str().to_owned());
        Box::pin(async move {
            let addrs = resolve(&host, &policy).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(feature = "hyper")]
impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for PolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let (policy, host) = (self.0.clone(), name.as_str().to_owned());
        Box::pin(async move { resolve(&host, &policy).await.map(Vec::into_iter) })
    }
}
