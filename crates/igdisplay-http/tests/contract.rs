//! The transport contract, run against every backend on a loopback server written here with
//! raw sockets (so it can misbehave on purpose): statuses and headers pass through, bodies
//! round-trip, redirects are not followed, a stalled server gives `Timeout`, a closed port
//! gives `Connect`, an oversized body is refused, and no error ever shows the URL's secrets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use igdisplay_http::{BackendConfig, HttpBackend, HttpRequest, SharedBackend, TransportErrorKind};
use std::error::Error as _;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BODY_LIMIT: usize = 64 * 1024;
const CANARIES: [&str; 2] = ["CANARYTOKEN", "CANARYSECRET"];

/// A loopback HTTP/1.1 server whose behaviour is chosen by the request path.
async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(handle(stream));
        }
    });
    addr
}

struct Received {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        method,
        target,
        headers,
        body,
    })
}

async fn handle(mut stream: TcpStream) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let path = request.target.split('?').next().unwrap_or_default().to_owned();
    let write = |head: String, body: Vec<u8>| {
        let mut out = head.into_bytes();
        out.extend_from_slice(&body);
        out
    };
    let response = match path.as_str() {
        "/echo" => {
            let content_type = request
                .headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map_or("", |(_, v)| v.as_str());
            let agent = request
                .headers
                .iter()
                .find(|(k, _)| k == "user-agent")
                .map_or("", |(_, v)| v.as_str());
            write(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-echo-method: {}\r\nx-echo-target: {}\r\n\
                     x-echo-content-type: {content_type}\r\nx-echo-user-agent: {agent}\r\n\
                     set-cookie: a=1\r\nset-cookie: b=2\r\nconnection: close\r\n\r\n",
                    request.body.len(),
                    request.method,
                    request.target
                ),
                request.body,
            )
        }
        p if p.starts_with("/status/") => {
            let code: u16 = p["/status/".len()..].parse().unwrap();
            let body = format!("status {code}").into_bytes();
            write(
                format!(
                    "HTTP/1.1 {code} Whatever\r\ncontent-length: {}\r\nx-custom: yes\r\n\
                     location: http://127.0.0.1:9/elsewhere?access_token=CANARYTOKEN\r\nconnection: close\r\n\r\n",
                    body.len()
                ),
                body,
            )
        }
        "/stall" => {
            std::future::pending::<()>().await;
            return;
        }
        "/stall-body" => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
                .await;
            std::future::pending::<()>().await;
            return;
        }
        "/big-declared" => write(
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", BODY_LIMIT + 1),
            vec![b'x'; 16],
        ),
        "/big-chunked" => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("{:x}\r\n{}\r\n", 8192, "y".repeat(8192));
            for _ in 0..(BODY_LIMIT / 8192 + 4) {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
            let _ = stream.write_all(b"0\r\n\r\n").await;
            return;
        }
        "/exact-limit" => write(
            format!("HTTP/1.1 200 OK\r\ncontent-length: {BODY_LIMIT}\r\nconnection: close\r\n\r\n"),
            vec![b'z'; BODY_LIMIT],
        ),
        "/close" => return,
        _ => write(
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
            Vec::new(),
        ),
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

fn config(request_timeout: Duration) -> BackendConfig {
    BackendConfig::default()
        .request_timeout(request_timeout)
        .connect_timeout(Duration::from_secs(5))
        .max_body_bytes(BODY_LIMIT)
        .user_agent("igdisplay-contract/1")
}

fn get(addr: SocketAddr, path: &str) -> HttpRequest {
    http::Request::get(format!("http://{addr}{path}"))
        .body(Bytes::new())
        .unwrap()
        .into()
}

/// Display, Debug and every source's Display and Debug, joined.
fn everything_printed(error: &igdisplay_http::TransportError) -> String {
    let mut out = format!("{error}\n{error:?}\n");
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    out
}

fn assert_no_secret(error: &igdisplay_http::TransportError) {
    let printed = everything_printed(error);
    for canary in CANARIES {
        assert!(!printed.contains(canary), "{canary} leaked into:\n{printed}");
    }
}

async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

async fn statuses_and_headers_pass_through(backend: SharedBackend) {
    let addr = serve().await;
    for code in [200u16, 201, 204, 302, 400, 401, 403, 404, 429, 500, 503] {
        let response = backend.send(get(addr, &format!("/status/{code}"))).await.unwrap();
        assert_eq!(response.status().as_u16(), code);
        assert_eq!(response.headers()["x-custom"], "yes");
        // A redirect is an ordinary response: never followed with the token.
        if code == 302 {
            assert!(response.headers().contains_key("location"));
        }
        if code != 204 {
            assert_eq!(response.body(), &Bytes::from(format!("status {code}")));
        }
    }
}

async fn bodies_methods_and_repeated_headers_round_trip(backend: SharedBackend) {
    let addr = serve().await;
    let body = Bytes::from("client_id=1&redirect_uri=https%3A%2F%2Fexample.com%2Fauth%2F&emoji=🌅");
    let request = http::Request::post(format!("http://{addr}/echo?x=1&y=%2F"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .unwrap();
    let response = backend.send(request.into()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), &body);
    let headers = response.headers();
    assert_eq!(headers["x-echo-method"], "POST");
    assert_eq!(headers["x-echo-target"], "/echo?x=1&y=%2F");
    assert_eq!(
        headers["x-echo-content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(headers["x-echo-user-agent"], "igdisplay-contract/1");
    let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);

    // A caller's own User-Agent wins over the default.
    let request = http::Request::get(format!("http://{addr}/echo"))
        .header("user-agent", "mine/2")
        .body(Bytes::new())
        .unwrap();
    let response = backend.send(request.into()).await.unwrap();
    assert_eq!(response.headers()["x-echo-user-agent"], "mine/2");
}

async fn body_at_the_limit_is_accepted(backend: SharedBackend) {
    let addr = serve().await;
    let response = backend.send(get(addr, "/exact-limit")).await.unwrap();
    assert_eq!(response.body().len(), BODY_LIMIT);
}

async fn stalled_server_times_out(backend: SharedBackend) {
    let addr = serve().await;
    for path in [
        "/stall?access_token=CANARYTOKEN",
        "/stall-body?client_secret=CANARYSECRET",
    ] {
        let error = backend.send(get(addr, path)).await.unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::Timeout, "{path}: {error:?}");
        assert!(error.is_timeout());
        assert_no_secret(&error);
    }
}

async fn closed_port_is_a_connect_error(backend: SharedBackend) {
    let addr = closed_port().await;
    let error = backend
        .send(get(
            addr,
            "/me?access_token=CANARYTOKEN&client_secret=CANARYSECRET",
        ))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Connect, "{error:?}");
    assert!(error.is_unsent());
    assert_no_secret(&error);
}

/// A loopback address that never completes a TCP handshake, a blackhole: a listener with a
/// backlog of one that never accepts, its queue filled first (the kernel then drops SYNs).
/// The listener and the filling connections must live as long as the address is used.
async fn blackhole() -> (SocketAddr, tokio::net::TcpListener, Vec<std::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filling = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => filling.push(stream),
            Err(_) => return (addr, listener, filling),
        }
    }
    panic!("the listener's queue never filled");
}

/// Reliability case 36: a connect to a blackhole ends with the connect timeout, as an unsent
/// request (safe to retry), and leaves no task behind.
async fn blackhole_connect_times_out(make: fn(BackendConfig) -> SharedBackend) {
    let (addr, _listener, _filling) = blackhole().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let backend = make(config(Duration::from_secs(30)).connect_timeout(Duration::from_millis(300)));
    let error = backend
        .send(get(addr, "/me?access_token=CANARYTOKEN"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error.kind(),
            TransportErrorKind::Connect | TransportErrorKind::Timeout
        ),
        "{error:?}"
    );
    assert!(error.is_unsent(), "nothing reached a server: {error:?}");
    assert_no_secret(&error);
    drop(backend);
    tokio::task::yield_now().await;
    assert!(
        metrics.num_alive_tasks() <= before,
        "tasks alive: {} before, {} after",
        before,
        metrics.num_alive_tasks()
    );
}

async fn oversized_bodies_are_refused(backend: SharedBackend) {
    let addr = serve().await;
    for path in [
        "/big-declared?access_token=CANARYTOKEN",
        "/big-chunked?access_token=CANARYTOKEN",
    ] {
        let error = backend.send(get(addr, path)).await.unwrap_err();
        assert!(error.is_body_too_large(), "{path}: {error:?}");
        assert!(everything_printed(&error).contains(&format!("{BODY_LIMIT}-byte limit")));
        assert_no_secret(&error);
    }
}

async fn closed_connection_is_an_io_error(backend: SharedBackend) {
    let addr = serve().await;
    let error = backend
        .send(get(addr, "/close?access_token=CANARYTOKEN"))
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind(), TransportErrorKind::Io | TransportErrorKind::Body),
        "{error:?}"
    );
    assert!(!error.is_unsent(), "the request was sent");
    assert_no_secret(&error);
}

async fn unsupported_scheme_is_an_invalid_request(backend: SharedBackend) {
    let request = http::Request::get("ftp://127.0.0.1/me?access_token=CANARYTOKEN")
        .body(Bytes::new())
        .unwrap();
    let error = backend.send(request.into()).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::InvalidRequest, "{error:?}");
    assert_no_secret(&error);
}

/// A listener that counts the connections made to it (and answers none).
async fn counting_listener() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    (addr, count)
}

/// A backend limited to public addresses connects to no loopback, link-local or private
/// address, whether the URL writes it or a name resolves to it; the host it was told of as an
/// exception (a mock) it reaches.
async fn a_public_only_backend_never_connects_to_a_private_address(make: fn(BackendConfig) -> SharedBackend) {
    let (addr, connections) = counting_listener().await;
    let strict = make(
        config(Duration::from_secs(5))
            .address_policy(igdisplay_http::AddressPolicy::public_only(Vec::<String>::new())),
    );
    for url in [
        format!("http://127.0.0.1:{}/media?access_token=CANARYTOKEN", addr.port()),
        format!("http://localhost:{}/media", addr.port()),
        format!("http://[::ffff:127.0.0.1]:{}/media", addr.port()),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
    ] {
        let request = http::Request::get(&url).body(Bytes::new()).unwrap();
        let error = strict.send(request.into()).await.unwrap_err();
        assert!(
            matches!(
                error.kind(),
                TransportErrorKind::InvalidRequest | TransportErrorKind::Connect
            ),
            "{url}: {error:?}"
        );
        assert_no_secret(&error);
    }
    tokio::task::yield_now().await;
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection was made"
    );
    // The exception: the configured mock's host.
    let mock = make(
        config(Duration::from_secs(5))
            .address_policy(igdisplay_http::AddressPolicy::public_only(["127.0.0.1"])),
    );
    let request = http::Request::get(format!("http://127.0.0.1:{}/media", addr.port()))
        .body(Bytes::new())
        .unwrap();
    let _ = mock.send(request.into()).await;
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Reads a streamed body to its end: the bytes, or the first chunk's error.
async fn drain(mut chunks: igdisplay_http::BodyStream) -> (Vec<u8>, Option<igdisplay_http::TransportError>) {
    let mut read = Vec::new();
    while let Some(chunk) = chunks.next_chunk().await {
        match chunk {
            Ok(chunk) => read.extend_from_slice(&chunk),
            Err(error) => return (read, Some(error)),
        }
    }
    (read, None)
}

async fn streamed_bodies_arrive_as_they_come_within_the_limits(backend: SharedBackend) {
    let addr = serve().await;
    let whole = backend.send_streaming(get(addr, "/exact-limit")).await.unwrap();
    let (read, error) = drain(whole.into_body()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(read.len(), BODY_LIMIT);

    // The head and the first bytes are handed over while the server still owes the rest;
    // the chunk that never comes times out.
    let stalled = backend.send_streaming(get(addr, "/stall-body")).await.unwrap();
    assert_eq!(stalled.status(), 200);
    let (read, error) = drain(stalled.into_body()).await;
    assert_eq!(read, b"0123456789");
    assert!(error.unwrap().is_timeout());

    let declared = backend
        .send_streaming(get(addr, "/big-declared"))
        .await
        .unwrap_err();
    assert!(declared.is_body_too_large(), "{declared:?}");
    let chunked = backend.send_streaming(get(addr, "/big-chunked")).await.unwrap();
    let (read, error) = drain(chunked.into_body()).await;
    assert!(error.unwrap().is_body_too_large());
    assert!(read.len() <= BODY_LIMIT);
}

macro_rules! contract {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;

            fn backend(timeout: Duration) -> SharedBackend {
                let make: fn(BackendConfig) -> SharedBackend = $make;
                make(config(timeout))
            }

            fn normal() -> SharedBackend {
                backend(Duration::from_secs(10))
            }

            #[tokio::test]
            async fn statuses_and_headers() {
                statuses_and_headers_pass_through(normal()).await;
            }

            #[tokio::test]
            async fn bodies_round_trip() {
                bodies_methods_and_repeated_headers_round_trip(normal()).await;
            }

            #[tokio::test]
            async fn body_at_limit() {
                body_at_the_limit_is_accepted(normal()).await;
            }

            #[tokio::test]
            async fn stall_times_out() {
                stalled_server_times_out(backend(Duration::from_millis(300))).await;
            }

            #[tokio::test]
            async fn closed_port() {
                closed_port_is_a_connect_error(normal()).await;
            }

            #[tokio::test]
            async fn blackhole_connect() {
                blackhole_connect_times_out($make).await;
            }

            #[tokio::test]
            async fn oversized_body() {
                oversized_bodies_are_refused(normal()).await;
            }

            #[tokio::test]
            async fn closed_connection() {
                closed_connection_is_an_io_error(normal()).await;
            }

            #[tokio::test]
            async fn unsupported_scheme() {
                unsupported_scheme_is_an_invalid_request(normal()).await;
            }

            #[tokio::test]
            async fn streaming() {
                streamed_bodies_arrive_as_they_come_within_the_limits(backend(Duration::from_millis(300)))
                    .await;
            }

            #[tokio::test]
            async fn public_only() {
                a_public_only_backend_never_connects_to_a_private_address($make).await;
            }
        }
    };
}

#[cfg(feature = "reqwest")]
contract!(reqwest_backend, |config| std::sync::Arc::new(
    igdisplay_http::ReqwestBackend::with_config(config).unwrap()
));

#[cfg(feature = "hyper")]
contract!(hyper_backend, |config| std::sync::Arc::new(
    igdisplay_http::HyperBackend::with_config(config).unwrap()
));

#[cfg(feature = "reqwest")]
#[test]
fn default_backend_builds() {
    let backend = igdisplay_http::default_backend(BackendConfig::default()).unwrap();
    assert!(format!("{backend:?}").contains("ReqwestBackend"));
}
