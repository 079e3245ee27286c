//! Bring your own HTTP backend: here a middleware that wraps the default one and logs every
//! request with its secrets masked.
//!
//! `cargo run -p igdisplay --example custom_backend --features mock`

#![allow(clippy::print_stdout)]

#[path = "common/mod.rs"]
mod common;

use igdisplay::http::{HttpBackend, HttpRequest, HttpResponse, ReqwestBackend, TransportError, redact_uri};
use igdisplay::mock::{MockPlatform, MockServer};
use igdisplay::model::Platform;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Logs each request (URL redacted) and its status, then hands it to `inner`.
#[derive(Debug)]
struct Logging<B> {
    inner: B,
    sent: AtomicUsize,
}

#[async_trait::async_trait]
impl<B: HttpBackend> HttpBackend for Logging<B> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let line = format!("{} {}", request.method(), redact_uri(&request.uri().to_string()));
        self.sent.fetch_add(1, Ordering::Relaxed);
        let outcome = self.inner.send(request).await;
        match &outcome {
            Ok(response) => println!("{line} -> {}", response.status()),
            Err(error) => println!("{line} -> {error}"),
        }
        outcome
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = MockServer::builder()
        .platform(MockPlatform::BasicDisplay)
        .start()?;
    let backend = Arc::new(Logging {
        inner: ReqwestBackend::new()?,
        sent: AtomicUsize::new(0),
    });
    let instagram = common::client_for(&mock, Platform::BasicDisplay)
        .backend(backend.clone())
        .build()?;
    let graph = common::login(&mock, &instagram, "jayposiris").await?;
    let me = graph.me().send().await?;
    println!(
        "@{} through {} logged requests",
        me.username.unwrap_or_default(),
        backend.sent.load(Ordering::Relaxed)
    );
    Ok(())
}
