//! `igdisplay keeper --metrics-addr ADDR`: `/metrics` in Prometheus' text format (the
//! `metrics` facade's Prometheus exporter: what the library records, and the fleet's figures
//! read from the database at each scrape), `/healthz` (the process answers) and `/readyz`
//! (the database answers and its schema is current).

use crate::fail::Failure;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use igdisplay::store::SqlStore;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::Arc;

/// A running metrics endpoint.
pub(crate) struct MetricsServer {
    /// Where it listens (the port chosen when 0 was asked).
    pub(crate) addr: SocketAddr,
}

/// Installs this process's Prometheus recorder: what the libraries record through the
/// `metrics` facade, rendered by the handle.
pub(crate) fn recorder() -> Result<PrometheusHandle, Failure> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Failure::runtime(format!("cannot record metrics: {e}")))
}

/// Installs the Prometheus recorder for this process and serves it on `addr`.
pub(crate) async fn serve(addr: SocketAddr, store: SqlStore) -> Result<MetricsServer, Failure> {
    let handle = recorder()?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Failure::usage(
            format!("cannot listen on {addr}: {e}"),
            "pick another --metrics-addr",
        )
    })?;
    let local = listener.local_addr().map_err(Failure::from)?;
    let state = Arc::new((handle, store));
    // The mirror's serve loop: one rule for timeouts, the connection limit and accept errors.
    let service = hyper::service::service_fn(move |request| answer(state.clone(), request));
    tokio::spawn(igdisplay_mirror::serve(
        listener,
        igdisplay_mirror::ServeLimits::default().max_connections(64),
        service,
        std::future::pending(),
    ));
    Ok(MetricsServer { addr: local })
}

async fn answer(
    state: Arc<(PrometheusHandle, SqlStore)>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (handle, store) = &*state;
    let (status, body, content_type) = match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/metrics") => match record_fleet(store).await {
            Ok(()) => (
                StatusCode::OK,
                handle.render(),
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            Err(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                message,
                "text/plain; charset=utf-8",
            ),
        },
        (&hyper::Method::GET, "/healthz") => (StatusCode::OK, "ok\n".to_owned(), "text/plain; charset=utf-8"),
        (&hyper::Method::GET, "/readyz") => match store.is_ready().await {
            Ok(true) => (StatusCode::OK, "ready\n".to_owned(), "text/plain; charset=utf-8"),
            Ok(false) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the schema is not current\n".to_owned(),
                "text/plain; charset=utf-8",
            ),
            Err(error) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{error}\n"),
                "text/plain; charset=utf-8",
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "not found\n".to_owned(),
            "text/plain; charset=utf-8",
        ),
    };
    let response = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)));
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

/// The fleet's figures, read from the database now, as gauges.
async fn record_fleet(store: &SqlStore) -> Result<(), String> {
    store
        .record_metrics()
        .await
        .map_err(|e| format!("the database did not answer: {e}\n"))
}
