//! `igdisplay webhooks serve`: receives Meta's webhooks (reference C.5) on an address of this
//! machine, behind the TLS proxy Meta needs, and acknowledges each delivery only once it is
//! kept: in the --store's outbox (each kept once), or accepted by --forward URL (a 2xx), or,
//! with neither, written to standard output as one JSON line and flushed.

use crate::fail::Failure;
use crate::settings::Settings;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response};
use igdisplay::auth::webhooks::{MAX_WEBHOOK_BODY, VerifiedDelivery, WebhookReceiver, WebhookSink};
use igdisplay::http::{AddressPolicy, BackendConfig, BoxError, HttpRequest, SharedBackend, http};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// Where deliveries are kept before they are acknowledged.
enum Keep {
    /// The --store's outbox.
    Store(igdisplay::store::SqlStore),
    /// POSTed to the application, which must answer 2xx.
    Forward(SharedBackend, http::Uri),
    /// One JSON line on standard output.
    Stdout,
}

#[async_trait::async_trait]
impl WebhookSink for Keep {
    async fn keep(&self, delivery: &VerifiedDelivery) -> Result<(), BoxError> {
        match self {
            Keep::Store(store) => store.keep(delivery).await,
            Keep::Forward(backend, uri) => {
                let mut request = HttpRequest::new(delivery.body.clone());
                *request.method_mut() = http::Method::POST;
                *request.uri_mut() = uri.clone();
                request.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                let response = backend.send(request).await?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("the application answered {}", response.status()).into())
                }
            }
            Keep::Stdout => {
                let line = serde_json::to_string(&delivery.notification)?;
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{line}")?;
                stdout.flush()?;
                Ok(())
            }
        }
    }
}

/// `igdisplay webhooks serve`.
pub(crate) async fn serve(
    settings: &Settings,
    addr: SocketAddr,
    verify_token_file: &Path,
    forward: Option<&str>,
) -> Result<(), Failure> {
    crate::files::refuse_shared(verify_token_file, "verify token file")?;
    let verify_token = std::fs::read_to_string(verify_token_file)
        .map_err(|e| {
            Failure::usage(
                format!("cannot read {}: {e}", verify_token_file.display()),
                "pass --verify-token-file",
            )
        })?
        .trim()
        .to_owned();
    let secret = settings.app_secret().ok_or_else(|| {
        Failure::usage(
            "receiving webhooks needs the app secret",
            "set IGDISPLAY_APP_SECRET (or --app-secret-file)",
        )
    })?;
    let receiver = WebhookReceiver::new(verify_token, secret).map_err(|e| {
        Failure::usage(
            e.to_string(),
            "put the verify token of the App Dashboard in the file",
        )
    })?;
    let keep = match (settings.has_store(), forward) {
        (true, _) => Keep::Store(settings.sql_store().await?),
        (false, Some(url)) => forwarding(url)?,
        (false, None) => Keep::Stdout,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on {addr}: {e}"), "pick another --addr"))?;
    let local = listener.local_addr().map_err(Failure::from)?;
    eprintln!("Receiving Meta's webhooks on http://{local} (put it behind HTTPS: Meta delivers only there)");
    let state = Arc::new((receiver, keep));
    let service = hyper::service::service_fn(move |request| answer(state.clone(), request));
    igdisplay_mirror::serve(
        listener,
        igdisplay_mirror::ServeLimits::default().max_connections(256),
        service,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await;
    Ok(())
}

/// A sink POSTing to `url`: the one host the backend may reach even on a private address.
fn forwarding(url: &str) -> Result<Keep, Failure> {
    let uri: http::Uri = url
        .parse()
        .ok()
        .filter(|u: &http::Uri| u.scheme().is_some() && u.host().is_some())
        .ok_or_else(|| {
            Failure::usage(
                format!("`{url}` is not an absolute URL"),
                "pass --forward http(s)://HOST/PATH",
            )
        })?;
    let host = uri.host().unwrap_or_default().to_owned();
    let backend = igdisplay::http::default_backend(
        BackendConfig::default().address_policy(AddressPolicy::public_only([host])),
    )
    .map_err(|e| Failure::runtime(e.to_string()))?;
    Ok(Keep::Forward(backend, uri))
}

/// One request: its body read within the cap, then the receiver's answer.
async fn answer(
    state: Arc<(WebhookReceiver, Keep)>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_WEBHOOK_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(plain(413, "too large or cut short")),
    };
    let (receiver, keep) = &*state;
    let answer = receiver
        .receive(&parts.method, parts.uri.query(), &parts.headers, &body, keep)
        .await;
    Ok(answer.to_http().map(Full::new))
}

fn plain(status: u16, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    response
}
