//! The servers under test, each run as its own process (`igdisplay-bench serve-...`), so that
//! throughput and resident memory are the server's alone.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

/// The demo mock (no rate limit, default journal), plus a generated user when asked; prints
/// its address and a long-lived token of `jayposiris` (and of `bulk`, if generated).
pub(crate) fn mock(generate: Option<usize>, large: bool) -> Result<(), String> {
    let mut seed = igdisplay::mock::Seed::demo();
    if let Some(count) = generate {
        seed = seed.with_generated_user("bulk", count, 10);
    }
    let server = igdisplay::mock::MockServer::builder()
        .seed(seed)
        .calls_per_hour(None)
        .asset_sizes(if large {
            igdisplay::mock::AssetSizes {
                image: 1 << 20,
                video: 10 << 20,
            }
        } else {
            igdisplay::mock::AssetSizes::default()
        })
        .workers(2)
        .start()
        .map_err(|e| e.to_string())?;
    let token = server
        .issue_token("jayposiris", igdisplay::mock::TokenLifetime::LongLived)
        .map_err(|e| e.to_string())?;
    println!("listening on {}", server.base_url());
    println!("token {}", token.access_token);
    if generate.is_some() {
        let bulk = server
            .issue_token("bulk", igdisplay::mock::TokenLifetime::LongLived)
            .map_err(|e| e.to_string())?;
        println!("bulk-token {}", bulk.access_token);
    }
    println!("ready");
    loop {
        std::thread::park();
    }
}

/// wiremock serving `body` at `/me`, after `mounted - 1` mocks that do not match.
pub(crate) async fn wiremock(mounted: usize, body: String) -> Result<(), String> {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    for i in 1..mounted {
        Mock::given(method("GET"))
            .and(path(format!("/other/{i}")))
            .respond_with(ResponseTemplate::new(200).set_body_string("no"))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json; charset=UTF-8"))
        .mount(&server)
        .await;
    println!("listening on {}", server.uri());
    println!("ready");
    std::future::pending::<()>().await;
    Ok(())
}

/// The ceiling: hyper answering every request with `body`, nothing else.
pub(crate) async fn bare(body: Vec<u8>) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "listening on http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    println!("ready");
    let body = Bytes::from(body);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_request| {
                let mut response = http::Response::new(Full::new(body.clone()));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json; charset=UTF-8"),
                );
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
