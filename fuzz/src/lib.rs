#![doc = include_str!("../README.md")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay::auth::{
    AppConfig, AuthClient, Callback, MemoryStore, Platform, TokenManager, TokenRecord, TokenStore,
    sign_signed_request, verify_fresh_signed_request, verify_signed_request,
};
use igdisplay::graph::{GraphClient, GraphEndpoint, GraphPolicy, StaticToken};
use igdisplay::http::test_util::FnBackend;
use igdisplay::http::{HttpResponse, ManualClock, RetryPolicy};
use igdisplay::model::{
    AccessToken, AppSecret, CodeExchangeResponse, ErrorBody, GraphErrorBody, ListResponse,
    LongLivedTokenResponse, Media, MediaByIds, MediaId, OAuthErrorBody, Timestamp, Usage, User, UserId,
    decode, snippet,
};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The OAuth redirect parser on any text, and what a parsed callback shows.
pub fn callback(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(callback) = Callback::parse(&text) {
        let _ = format!("{callback:?}");
        let _ = callback.outcome.into_code();
    }
}

/// `signed_request` verification on any text, and on any payload signed with the right secret
/// (so the fuzzer reaches the payload decoding past the signature check).
pub fn signed_request(data: &[u8]) {
    let secret = AppSecret::new("fuzz-app-secret");
    let text = String::from_utf8_lossy(data);
    let _ = verify_signed_request(&secret, &text);
    let signed = sign_signed_request(&secret, &text);
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    if let Ok(request) = verify_fresh_signed_request(&secret, &signed, now, Duration::from_secs(3600)) {
        let _ = format!("{request:?}");
    }
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = decode::<T>(data, &["fuzz-secret"]) {
        let _ = format!("{value:?}");
        let _ = serde_json::to_vec(&value);
    }
}

/// Every response type's JSON decoding, the error envelope and its classification, and
/// timestamps (which must parse back after formatting), on any bytes.
pub fn model_decode(data: &[u8]) {
    round_trip::<User>(data);
    round_trip::<Media>(data);
    round_trip::<ListResponse<Media>>(data);
    round_trip::<MediaByIds>(data);
    round_trip::<CodeExchangeResponse>(data);
    round_trip::<LongLivedTokenResponse>(data);
    round_trip::<GraphErrorBody>(data);
    round_trip::<OAuthErrorBody>(data);
    if let Some(error) = ErrorBody::parse(data) {
        let _ = (error.message(), format!("{error:?}"));
        if let ErrorBody::Graph(graph) = &error {
            for status in [200, 400, 403, 429, 500, 503] {
                let _ = graph.error.class(status);
            }
        }
    }
    let _ = snippet(data, &["fuzz-secret"]);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(time) = Timestamp::parse(text)
    {
        let again = Timestamp::parse(&time.to_rfc3339());
        assert_eq!(again.ok(), Some(time), "a parsed timestamp parses back");
        let _ = time.to_system_time();
    }
}

/// The `X-App-Usage` and `X-Business-Use-Case-Usage` headers on any bytes: the first half of
/// the input is one header, the rest the other.
pub fn usage_headers(data: &[u8]) {
    let (app, business) = data.split_at(data.len() / 2);
    let usage = Usage::from_headers(Some(app), Some(business));
    let _ = usage.max_percent();
    let _ = usage.regain_access_after();
    let _ = usage.is_empty();
    let _ = format!("{usage:?}");
}

/// The fuzzed clients' clock: a moment well inside the range every time type accepts.
const NOW: u64 = 1_700_000_000;

/// A fuzzed response: the call to make, and what every request of it gets back.
#[derive(Debug)]
pub struct FuzzedResponse {
    /// The client call: `me`, `media`, `list`, `exchange`, `long`, `refresh` or `manager`.
    pub call: String,
    /// The response.
    pub response: HttpResponse,
}

/// Reads the text form (see the crate doc). Header lines that are not valid HTTP are left out,
/// as a transport would refuse them; a status outside 100–999 becomes 200.
pub fn parse_response(data: &[u8]) -> FuzzedResponse {
    let (head, body) = split_head(data);
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let call = first.next().unwrap_or_default().to_owned();
    let status = first.next().and_then(|s| s.parse::<u16>().ok()).unwrap_or(200);
    let mut response = http::Response::new(bytes::Bytes::copy_from_slice(body));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(name), Ok(value)) = (
                http::HeaderName::try_from(name.trim()),
                http::HeaderValue::try_from(value.trim()),
            )
        {
            response.headers_mut().append(name, value);
        }
    }
    FuzzedResponse { call, response }
}

/// The head (before the first empty line) and the body.
fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    data.windows(2)
        .position(|w| w == b"\n\n")
        .map_or((data, &[][..]), |at| (&data[..at], &data[at + 2..]))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn app() -> AppConfig {
    AppConfig::new(
        Platform::InstagramLogin,
        "684477648739411",
        AppSecret::new("fuzz-app-secret"),
        "https://app.example/auth/",
    )
    .unwrap()
}

/// A record old enough to refresh (30 days of 60).
fn record() -> TokenRecord {
    TokenRecord::long_lived(
        UserId::new("17841405793187218"),
        AccessToken::new("IGAAfuzzlonglived"),
        Platform::InstagramLogin,
        UNIX_EPOCH + Duration::from_secs(NOW - 30 * 86_400),
    )
}

/// Runs one client call against `data` (every request of it answered the same way) on a
/// manual clock. Any outcome is fine; a panic, an overflow or a hang is the failure.
pub fn response_pipeline(data: &[u8]) {
    let FuzzedResponse { call, response } = parse_response(data);
    let answer = Arc::new(response);
    let backend = Arc::new(FnBackend::new(move |_| {
        let mut copy = http::Response::new(answer.body().clone());
        *copy.status_mut() = answer.status();
        *copy.headers_mut() = answer.headers().clone();
        Ok(copy)
    }));
    let clock = ManualClock::at_unix(NOW);
    let retry = RetryPolicy::default().max_attempts(3);
    runtime().block_on(async {
        match call.as_str() {
            "me" | "media" | "list" => {
                let graph = GraphClient::builder(
                    backend,
                    GraphEndpoint::new(Platform::InstagramLogin),
                    Arc::new(StaticToken::new(AccessToken::new("IGAAfuzztoken"))),
                )
                .policy(GraphPolicy::default().retry(retry).jitter_seed(1))
                .clock(Arc::new(clock))
                .build();
                match call.as_str() {
                    "me" => drop(graph.me().send().await),
                    "media" => drop(
                        graph
                            .media(&MediaId::new("17895695668004550"))
                            .with_children()
                            .send()
                            .await,
                    ),
                    _ => {
                        use futures_util::StreamExt as _;
                        // Two pages at most: the body answers every page the same.
                        let pages: Vec<_> = graph
                            .my_media()
                            .with_children()
                            .into_stream()
                            .take(200)
                            .collect()
                            .await;
                        drop(pages);
                    }
                }
            }
            _ => {
                let client = AuthClient::new(app(), backend)
                    .with_clock(Arc::new(clock))
                    .with_retry(retry)
                    .with_jitter_seed(1);
                match call.as_str() {
                    "exchange" => {
                        let authorization = client.authorize().fixed_state("fuzzstate").build().unwrap();
                        let callback = Callback::parse("code=fuzzcode&state=fuzzstate").unwrap();
                        let grant = authorization
                            .pending
                            .verify(callback, UNIX_EPOCH + Duration::from_secs(NOW))
                            .unwrap();
                        drop(client.exchange_code(grant).await);
                    }
                    "long" => drop(client.exchange_long_lived(&record()).await),
                    "refresh" => drop(client.refresh(&record()).await),
                    _ => {
                        let store = Arc::new(MemoryStore::default());
                        store.save(&record()).await.unwrap();
                        let manager = TokenManager::new(client, store);
                        drop(manager.refresh_now(&record().user_id).await);
                        drop(manager.access_token(&record().user_id).await);
                    }
                }
            }
        }
    });
}

/// The mock every `mock_requests` input is sent to, started once per fuzzing process. Its app
/// callbacks point at the mock itself, so a fuzzed delivery never leaves loopback.
fn mock() -> &'static igdisplay::mock::MockServer {
    static MOCK: std::sync::OnceLock<igdisplay::mock::MockServer> = std::sync::OnceLock::new();
    MOCK.get_or_init(|| {
        let mock = igdisplay::mock::MockServer::start().unwrap();
        let own = format!("{}/fuzz-callback", mock.base_url());
        mock.set_callbacks(Some(&own), Some(&own));
        mock
    })
}

/// Sends `data` to the bundled mock as one HTTP/1.1 request over loopback and reads the whole
/// answer. The text form: `METHOD target` on the first line, header lines, an empty line, the
/// body (its length is set by the harness). A request that would change where the mock
/// delivers app callbacks is skipped (it would let the fuzzer send traffic off this machine);
/// faults and stubs a request adds are cleared after it.
pub fn mock_request(data: &[u8]) {
    use std::io::{Read as _, Write as _};
    let (head, body) = split_head(data);
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().splitn(2, ' ');
    let method = first.next().unwrap_or_default();
    let target = first.next().unwrap_or("/");
    let path = target.split('?').next().unwrap_or_default();
    let control: Vec<&str> = path
        .strip_prefix("/_mock/")
        .map(|rest| rest.split('/').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if control.first() == Some(&"callbacks") || method.contains(['\r', '\n']) || target.contains(['\r', '\n'])
    {
        return;
    }
    let mut request = format!("{method} {target} HTTP/1.1\r\nhost: fuzz\r\nconnection: close\r\n");
    for line in lines.filter(|l| l.contains(':') && !l.contains('\r')) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if name != "content-length" && name != "transfer-encoding" && name != "connection" && name != "host" {
            request.push_str(line);
            request.push_str("\r\n");
        }
    }
    request.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mock = mock();
    let mut stream = std::net::TcpStream::connect(mock.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    if let Err(e) = stream.read_to_end(&mut answer) {
        assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset,
            "the mock did not answer within 20 s: {e}"
        );
    }
    mock.clear_faults();
    mock.clear_stubs();
}

/// Meta's webhook receiver on any request: `data` as the handshake's query, as an unsigned
/// delivery, and as a delivery signed with the right secret (so the fuzzer reaches the
/// notification's decoding past the signature check); whatever is delivered round-trips.
pub fn webhook_receiver(data: &[u8]) {
    use igdisplay::auth::webhooks::{HUB_SIGNATURE_HEADER, Inbound, WebhookReceiver, sign_webhook};
    let secret = AppSecret::new("fuzz-app-secret");
    let receiver = WebhookReceiver::new("fuzz-verify-token", secret.clone()).unwrap();
    let query = String::from_utf8_lossy(data);
    let none = http::HeaderMap::new();
    if let Inbound::Answer(answer) = receiver.inspect(&http::Method::GET, Some(&query), &none, b"") {
        // The challenge is echoed only as digits.
        assert!(answer.status != 200 || answer.body.bytes().all(|b| b.is_ascii_digit()));
    }
    assert!(matches!(
        receiver.inspect(&http::Method::POST, None, &none, data),
        Inbound::Answer(_)
    ));
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::try_from(sign_webhook(&secret, data)) {
        headers.insert(HUB_SIGNATURE_HEADER, value);
    }
    if let Inbound::Deliver(delivery) = receiver.inspect(&http::Method::POST, None, &headers, data) {
        let again = serde_json::to_vec(&delivery.notification).unwrap();
        let read: igdisplay::model::WebhookNotification = serde_json::from_slice(&again).unwrap();
        assert_eq!(read, delivery.notification, "what is kept is written back");
    }
}

/// The insights calls on any answer: the media node answers as a feed image, the insights
/// edge with `data` (the text form of `parse_response`); the first line's call names the
/// metrics asked (comma-separated), which the planner checks first.
pub fn insights_response(data: &[u8]) {
    let FuzzedResponse { call, response } = parse_response(data);
    let answer = Arc::new(response);
    let backend = Arc::new(FnBackend::new(move |request| {
        if !request.uri().path().ends_with("/insights") {
            return Ok(igdisplay::http::test_util::json_response(
                200,
                r#"{"id":"17895695668004550","media_product_type":"FEED","media_type":"IMAGE"}"#,
            ));
        }
        let mut copy = http::Response::new(answer.body().clone());
        *copy.status_mut() = answer.status();
        *copy.headers_mut() = answer.headers().clone();
        Ok(copy)
    }));
    let graph = GraphClient::builder(
        backend,
        GraphEndpoint::new(Platform::InstagramLogin),
        Arc::new(StaticToken::new(AccessToken::new("IGAAfuzztoken"))),
    )
    .policy(
        GraphPolicy::default()
            .retry(RetryPolicy::default().max_attempts(2))
            .jitter_seed(1),
    )
    .clock(Arc::new(ManualClock::at_unix(NOW)))
    .build();
    let metrics: Vec<&str> = call.split(',').take(32).collect();
    runtime().block_on(async {
        if let Ok(report) = graph
            .media_insights(&MediaId::new("17895695668004550"), &metrics)
            .await
        {
            for insight in &report.insights {
                let _ = insight.number();
            }
        }
        drop(
            graph
                .user_insights(&metrics, "day", Some("media_product_type"))
                .await,
        );
    });
}
