//! The whole flow against wiremock expectations written from the reference, for both
//! platforms: every request asserted byte for byte, every local refusal asserted to send
//! nothing, and every error and type scanned for secrets. Time is a `ManualClock`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay_auth::{
    AppConfig, AuthClient, Callback, CallbackError, Endpoints, FileStore, LoginError, MemoryStore,
    PendingAuthorizations, Platform, RefreshSchedule, StoreError, TokenError, TokenKind, TokenManager,
    TokenRecord, TokenStore,
};
use igdisplay_http::test_util::{Answer, CapturingBackend, FnBackend, json_response};
use igdisplay_http::{
    BackendConfig, Clock, HttpRequest, ManualClock, ReqwestBackend, SharedBackend, redact_uri,
};
use igdisplay_model::{AccessToken, AppSecret, ErrorClass, UserId};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use wiremock::matchers::{body_string, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const APP_ID: &str = "684477648739411";
const SECRET: &str = "CANARY-APP-SECRET";
const REDIRECT: &str = "https://socialsizzle.herokuapp.com/auth/";
const START: u64 = 1_700_000_000;
/// The CSRF state of every authorization in these tests (`fixed_state`).
const STATE: &str = "CANARY-STATE";
const DAY: Duration = Duration::from_secs(86_400);

struct World {
    server: MockServer,
    clock: ManualClock,
    client: AuthClient,
}

async fn world(platform: Platform) -> World {
    world_with(platform, Duration::from_secs(10)).await
}

async fn world_with(platform: Platform, timeout: Duration) -> World {
    let server = MockServer::start().await;
    // Anything not expected is a failure, named so the report says which request it was.
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(599))
        .with_priority(u8::MAX)
        .expect(0)
        .named("an unexpected request")
        .mount(&server)
        .await;
    let clock = ManualClock::at_unix(START);
    let client = client_for(&server.uri(), platform, &clock, timeout);
    World {
        server,
        clock,
        client,
    }
}

fn client_for(base: &str, platform: Platform, clock: &ManualClock, timeout: Duration) -> AuthClient {
    let config = AppConfig::new(platform, APP_ID, AppSecret::new(SECRET), REDIRECT)
        .unwrap()
        .with_endpoints(Endpoints::single_origin(base))
        .unwrap();
    let backend = ReqwestBackend::with_config(BackendConfig::default().request_timeout(timeout)).unwrap();
    AuthClient::new(config, Arc::new(backend)).with_clock(Arc::new(clock.clone()))
}

fn exchange_form(code: &str) -> String {
    format!(
        "client_id={APP_ID}&client_secret={SECRET}&grant_type=authorization_code\
         &redirect_uri=https%3A%2F%2Fsocialsizzle.herokuapp.com%2Fauth%2F&code={code}"
    )
}

async fn expect_exchange(server: &MockServer, code: &str, status: u16, body: &str, times: u64) {
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .and(body_string(exchange_form(code)))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json"))
        .expect(times)
        .named(format!("code exchange of {code}"))
        .mount(server)
        .await;
}

async fn expect_long_lived(server: &MockServer, short: &str, body: &str) {
    Mock::given(method("GET"))
        .and(path("/access_token"))
        .and(query_param("grant_type", "ig_exchange_token"))
        .and(query_param("client_secret", SECRET))
        .and(query_param("access_token", short))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_owned(), "application/json"))
        .expect(1)
        .named("long-lived exchange")
        .mount(server)
        .await;
}

async fn expect_refresh(server: &MockServer, token: &str, answer: &str, times: u64) {
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(query_param("grant_type", "ig_refresh_token"))
        .and(query_param("access_token", token))
        .respond_with(ResponseTemplate::new(200).set_body_raw(answer.to_owned(), "application/json"))
        .expect(times)
        .named("refresh")
        .mount(server)
        .await;
}

fn long_lived_body(token: &str, expires_in: u64) -> String {
    format!(r#"{{"access_token":"{token}","token_type":"bearer","expires_in":{expires_in}}}"#)
}

/// Method, redacted URL, content type and redacted form body.
fn render(request: &HttpRequest) -> String {
    let body = std::str::from_utf8(request.body()).unwrap();
    let body = if body.is_empty() {
        String::new()
    } else {
        redact_uri(&format!("?{body}")).to_string()[1..].to_owned()
    };
    let content_type = request
        .headers()
        .get("content-type")
        .map_or("-", |v| v.to_str().unwrap());
    format!(
        "{} {}\ncontent-type: {content_type}\n{body}",
        request.method(),
        redact_uri(&request.uri().to_string())
    )
}

#[tokio::test]
async fn the_whole_flow_on_both_platforms() {
    for platform in Platform::ALL {
        let w = world(platform).await;
        let exchange_answer = match platform {
            Platform::BasicDisplay => r#"{"access_token":"IGQVJ-SHORT-CANARY","user_id":17841405793187218}"#,
            _ => {
                r#"{"data":[{"access_token":"IGQVJ-SHORT-CANARY","user_id":"17841405793187218","permissions":"instagram_business_basic,instagram_business_manage_comments"}]}"#
            }
        };
        expect_exchange(&w.server, "AQDp3TtBQQ", 200, exchange_answer, 1).await;
        expect_long_lived(
            &w.server,
            "IGQVJ-SHORT-CANARY",
            &long_lived_body("IGQVJ-LONG-CANARY", 5_183_944),
        )
        .await;
        expect_refresh(
            &w.server,
            "IGQVJ-LONG-CANARY",
            &long_lived_body("IGQVJ-REFRESHED-CANARY", 5_183_828),
            1,
        )
        .await;

        let authorization = w.client.authorize().fixed_state(STATE).build().unwrap();
        let state = STATE;
        let redirect = format!("{REDIRECT}?code=AQDp3TtBQQ&state={state}#_");
        let grant = authorization
            .pending
            .verify(Callback::parse(&redirect).unwrap(), w.clock.now())
            .unwrap();

        let short = w.client.exchange_code(grant).await.unwrap();
        assert_eq!(short.kind, TokenKind::ShortLived);
        assert_eq!(short.user_id.as_str(), "17841405793187218");
        assert_eq!(short.expires_at.unix(), START as i64 + 3600);
        if platform == Platform::InstagramLogin {
            assert_eq!(short.permissions.as_ref().unwrap().len(), 2);
        }

        let long = w.client.exchange_long_lived(&short).await.unwrap();
        assert_eq!(long.kind, TokenKind::LongLived);
        assert_eq!(long.expires_at.unix(), START as i64 + 5_183_944);

        // Refresh is refused locally until the token is a day old...
        let early = w.client.refresh(&long).await.unwrap_err();
        assert!(matches!(early, TokenError::TooEarly { .. }), "{early:?}");
        // ...then accepted, for 60 days from the refresh.
        w.clock.advance(DAY + Duration::from_secs(1));
        let refreshed = w.client.refresh(&long).await.unwrap();
        assert_eq!(refreshed.access_token.expose_secret(), "IGQVJ-REFRESHED-CANARY");
        assert_eq!(refreshed.expires_at.unix(), START as i64 + 86_401 + 5_183_828);
        assert_eq!(refreshed.permissions, short.permissions);
        assert_eq!(w.server.received_requests().await.unwrap().len(), 3, "{platform}");
    }
}

#[tokio::test]
async fn rendered_requests_redact_every_secret() {
    let w = world(Platform::BasicDisplay).await;
    let authorization = w.client.authorize().fixed_state(STATE).build().unwrap();
    let redirect = format!("{REDIRECT}?code=CANARY-CODE&state={}", STATE);
    let grant = authorization
        .pending
        .verify(Callback::parse(&redirect).unwrap(), w.clock.now())
        .unwrap();
    let base = w.server.uri();
    let rendered = [
        render(&w.client.code_exchange_request(&grant).unwrap()),
        render(
            &w.client
                .long_lived_request(&AccessToken::new("CANARY-SHORT"))
                .unwrap(),
        ),
        render(
            &w.client
                .refresh_request(&AccessToken::new("CANARY-LONG"))
                .unwrap(),
        ),
    ]
    .join("\n---\n")
    .replace(&base, "http://mock");
    assert!(!rendered.contains("CANARY"), "{rendered}");
    insta::assert_snapshot!(rendered, @r"
    POST http://mock/oauth/access_token
    content-type: application/x-www-form-urlencoded
    client_id=684477648739411&client_secret=[redacted]&grant_type=authorization_code&redirect_uri=https%3A%2F%2Fsocialsizzle.herokuapp.com%2Fauth%2F&code=[redacted]
    ---
    GET http://mock/access_token?grant_type=ig_exchange_token&client_secret=[redacted]&access_token=[redacted]
    content-type: -

    ---
    GET http://mock/refresh_access_token?grant_type=ig_refresh_token&access_token=[redacted]
    content-type: -
    ");
}

#[tokio::test]
async fn refused_callbacks_send_nothing() {
    let w = world(Platform::InstagramLogin).await;
    let table = PendingAuthorizations::new();
    let authorization = w.client.authorize().fixed_state(STATE).build().unwrap();
    let state = STATE;
    table.insert(authorization.pending, w.clock.now());
    let now = w.clock.now();
    let cases: Vec<(String, CallbackError)> = vec![
        ("code=ABC".to_owned(), CallbackError::MissingState),
        ("code=ABC&state=not-ours".to_owned(), CallbackError::StateMismatch),
        (
            format!("code=ABC&error=access_denied&state={state}"),
            CallbackError::BothCodeAndError,
        ),
        (
            format!("code=A&code=B&state={state}"),
            CallbackError::DuplicateParameter("code"),
        ),
        (
            format!("code=A&state={state}&state={state}"),
            CallbackError::DuplicateParameter("state"),
        ),
        (format!("code=&state={state}"), CallbackError::EmptyCode),
    ];
    for (query, expected) in cases {
        let error = Callback::parse(&query)
            .and_then(|c| table.complete(c, now))
            .unwrap_err();
        assert_eq!(error, expected, "{query}");
    }
    let huge = format!("code={}&state={state}", "A".repeat(1 << 20));
    assert!(matches!(
        Callback::parse(&huge),
        Err(CallbackError::TooLarge { .. })
    ));
    // None of that disturbed the legitimate flow.
    assert_eq!(table.len(), 1);
    expect_exchange(&w.server, "ABC", 200, r#"{"access_token":"T","user_id":1}"#, 1).await;
    let grant = table
        .complete(
            Callback::parse(&format!("{REDIRECT}?code=ABC%23_&state={state}")).unwrap(),
            now,
        )
        .unwrap();
    w.client.exchange_code(grant).await.unwrap();
    // A replay is recognized and sends nothing more.
    let replay = table.complete(Callback::parse(&format!("code=ABC&state={state}")).unwrap(), now);
    assert_eq!(replay.unwrap_err(), CallbackError::StateAlreadyUsed);
    assert_eq!(w.server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_expired_or_denied_authorization_sends_nothing() {
    let w = world(Platform::BasicDisplay).await;
    let authorization = w.client.authorize().fixed_state(STATE).build().unwrap();
    let state = STATE;
    w.clock.advance(Duration::from_secs(10 * 60));
    let error = authorization
        .pending
        .verify(
            Callback::parse(&format!("code=ABC&state={state}")).unwrap(),
            w.clock.now(),
        )
        .unwrap_err();
    assert_eq!(error, CallbackError::AuthorizationExpired);

    let authorization = w.client.authorize().fixed_state(STATE).build().unwrap();
    let state = STATE;
    let denial = format!(
        "{REDIRECT}?error=access_denied&error_reason=user_denied&error_description=The+user+denied+your+request&state={state}#_"
    );
    let error = authorization
        .pending
        .verify(Callback::parse(&denial).unwrap(), w.clock.now())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the authorization was denied (access_denied: user_denied)"
    );
    assert!(w.server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_grant_is_never_sent_to_another_configuration() {
    let w = world(Platform::InstagramLogin).await;
    let other = MockServer::start().await;
    let authorization = w.client.authorize().fixed_state(STATE).build().unwrap();
    let redirect = format!("code=ABC&state={STATE}");
    let grant = authorization
        .pending
        .verify(Callback::parse(&redirect).unwrap(), w.clock.now())
        .unwrap();
    let elsewhere = client_for(
        &other.uri(),
        Platform::InstagramLogin,
        &w.clock,
        Duration::from_secs(5),
    );
    assert!(matches!(
        elsewhere.exchange_code(grant).await,
        Err(TokenError::ConfigMismatch)
    ));
    assert!(other.received_requests().await.unwrap().is_empty());
    assert!(w.server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn oauth_errors_are_typed_and_never_retried() {
    let w = world(Platform::InstagramLogin).await;
    let cases = [
        (
            "USED",
            r#"{"error_type":"OAuthException","code":400,"error_message":"Matching code was not found or was already used."}"#,
            "CodeAlreadyUsed",
        ),
        (
            "BAD",
            r#"{"error_type":"OAuthException","code":400,"error_message":"Invalid authorization code"}"#,
            "InvalidCode",
        ),
        (
            "REDIR",
            r#"{"error_type":"OAuthException","code":400,"error_message":"Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request"}"#,
            "RedirectUriMismatch",
        ),
        (
            "ROLE",
            r#"{"error_type":"OAuthException","code":400,"error_message":"Insufficient developer role"}"#,
            "NotATester",
        ),
    ];
    for (code, body, expected) in cases {
        expect_exchange(&w.server, code, 400, body, 1).await;
        let authorization = w.client.authorize().fixed_state(STATE).build().unwrap();
        let redirect = format!("code={code}&state={STATE}");
        let grant = authorization
            .pending
            .verify(Callback::parse(&redirect).unwrap(), w.clock.now())
            .unwrap();
        let error = w.client.exchange_code(grant).await.unwrap_err();
        assert!(format!("{error:?}").starts_with(expected), "{code}: {error:?}");
        assert!(!error.is_retryable());
    }
    // An HTML page instead of JSON is an unexpected response, with the secrets masked.
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .and(body_string(exchange_form("HTML")))
        .respond_with(
            ResponseTemplate::new(403).set_body_string(format!("<html>denied {SECRET} HTML</html>")),
        )
        .expect(1)
        .named("POST /oauth/access_token")
        .mount(&w.server)
        .await;
    let authorization = w.client.authorize().fixed_state(STATE).build().unwrap();
    let redirect = format!("code=HTML&state={STATE}");
    let grant = authorization
        .pending
        .verify(Callback::parse(&redirect).unwrap(), w.clock.now())
        .unwrap();
    let error = w.client.exchange_code(grant).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "unexpected response with status 403: <html>denied [redacted] [redacted]</html>"
    );
}

#[tokio::test]
async fn a_code_exchange_that_times_out_is_sent_exactly_once() {
    let w = world_with(Platform::BasicDisplay, Duration::from_millis(300)).await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(1)
        .named("POST /oauth/access_token")
        .mount(&w.server)
        .await;
    let authorization = w.client.authorize().fixed_state(STATE).build().unwrap();
    let redirect = format!("code=SLOW&state={STATE}");
    let grant = authorization
        .pending
        .verify(Callback::parse(&redirect).unwrap(), w.clock.now())
        .unwrap();
    let error = w.client.exchange_code(grant).await.unwrap_err();
    let TokenError::Transport {
        source: transport, ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert!(transport.is_timeout());
    assert!(!error.is_retryable(), "a single-use code is never sent twice");
    assert_eq!(w.server.received_requests().await.unwrap().len(), 1);
    assert!(w.clock.sleeps().is_empty(), "no retry was even scheduled");
}

/// A server that answers every connection with headers and half a body, then hangs up;
/// its port and how many connections it accepted.
fn hanging_up_mid_body() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Read the whole request: the headers, then `Content-Length` bytes of form.
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    continue;
                };
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 120\r\n\r\n{\"access_token\":\"CANARY-HALF",
            );
            // Dropped here: the connection closes 90 bytes short of the declared body.
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn a_code_exchange_cut_off_mid_body_is_sent_exactly_once() {
    let clock = ManualClock::at_unix(START);
    let (port, accepted) = hanging_up_mid_body();
    let config = AppConfig::new(Platform::InstagramLogin, APP_ID, AppSecret::new(SECRET), REDIRECT)
        .unwrap()
        .with_endpoints(Endpoints::single_origin(&format!("http://127.0.0.1:{port}")))
        .unwrap();
    let client =
        AuthClient::new(config, Arc::new(ReqwestBackend::new().unwrap())).with_clock(Arc::new(clock.clone()));
    let authorization = client.authorize().fixed_state(STATE).build().unwrap();
    let grant = authorization
        .pending
        .verify(
            Callback::parse(&format!("code=C&state={STATE}")).unwrap(),
            clock.now(),
        )
        .unwrap();
    let error = client.exchange_code(grant).await.unwrap_err();
    assert!(matches!(error, TokenError::Transport { .. }), "{error:?}");
    assert!(!error.is_retryable(), "the code was sent: it is never sent again");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(clock.sleeps().is_empty(), "no retry was even scheduled");
    assert_no_canary(&[format!("{error}"), format!("{error:?}"), chain(&error)]);
}

#[tokio::test]
async fn a_refused_connection_is_retried_because_nothing_was_sent() {
    let clock = ManualClock::at_unix(START);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = AppConfig::new(Platform::BasicDisplay, APP_ID, AppSecret::new(SECRET), REDIRECT)
        .unwrap()
        .with_endpoints(Endpoints::single_origin(&format!("http://127.0.0.1:{port}")))
        .unwrap();
    let capture = CapturingBackend::new(ReqwestBackend::new().unwrap());
    let client = AuthClient::new(config, Arc::new(capture.clone()))
        .with_clock(Arc::new(clock.clone()))
        .with_jitter_seed(42);
    let authorization = client.authorize().fixed_state(STATE).build().unwrap();
    let redirect = format!("code=C&state={STATE}");
    let grant = authorization
        .pending
        .verify(Callback::parse(&redirect).unwrap(), clock.now())
        .unwrap();
    let error = client.exchange_code(grant).await.unwrap_err();
    let TokenError::Transport {
        source: transport, ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert!(transport.is_connect());
    assert!(error.is_retryable());
    assert_eq!(capture.count(), 3);
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 2);
    assert!(
        sleeps[0] < Duration::from_millis(500) && sleeps[1] < Duration::from_secs(1),
        "{sleeps:?}"
    );
    assert_no_canary(&[format!("{error}"), format!("{error:?}"), chain(&error)]);
}

#[tokio::test]
async fn expiry_counts_from_the_moment_the_request_was_sent() {
    let clock = ManualClock::at_unix(START);
    let slow_clock = clock.clone();
    // The server takes 90 seconds (on the manual clock) to answer.
    let backend = FnBackend::new(move |_| {
        slow_clock.advance(Duration::from_secs(90));
        Ok(json_response(200, long_lived_body("NEW", 5_184_000)))
    });
    let config = AppConfig::new(Platform::InstagramLogin, APP_ID, AppSecret::new(SECRET), REDIRECT).unwrap();
    let client = AuthClient::new(config, Arc::new(backend)).with_clock(Arc::new(clock.clone()));
    let short = short_record("1", "SHORT", clock.now());
    let long = client.exchange_long_lived(&short).await.unwrap();
    assert_eq!(long.issued_at.unix(), START as i64);
    assert_eq!(long.expires_at.unix(), START as i64 + 5_184_000);
}

fn short_record(user: &str, token: &str, at: SystemTime) -> TokenRecord {
    TokenRecord::new(
        UserId::new(user),
        AccessToken::new(token),
        TokenKind::ShortLived,
        Platform::InstagramLogin,
        at,
        igdisplay_auth::SHORT_LIVED,
    )
}

fn long_record(user: &str, token: &str, at: SystemTime) -> TokenRecord {
    TokenRecord::long_lived(
        UserId::new(user),
        AccessToken::new(token),
        Platform::InstagramLogin,
        at,
    )
}

#[tokio::test]
async fn local_refusals_send_no_request() {
    let w = world(Platform::InstagramLogin).await;
    let now = w.clock.now();
    let young = long_record("1", "YOUNG", now - Duration::from_secs(3600));
    assert!(matches!(
        w.client.refresh(&young).await,
        Err(TokenError::TooEarly { .. })
    ));
    let expired = long_record("1", "OLD", now - igdisplay_auth::LONG_LIVED);
    let error = w.client.refresh(&expired).await.unwrap_err();
    assert!(matches!(error, TokenError::Expired { .. }) && error.requires_reauthorization());
    let short = short_record("1", "SHORT", now - DAY);
    assert!(matches!(
        w.client.refresh(&short).await,
        Err(TokenError::NotLongLived)
    ));
    assert!(matches!(
        w.client.exchange_long_lived(&short).await,
        Err(TokenError::Expired { .. })
    ));
    assert!(w.server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn graph_errors_on_token_endpoints_are_classified() {
    let w = world(Platform::BasicDisplay).await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"error":{"message":"Error validating access token: Session has expired on Tuesday, 28-Sep-21 03:00:00 PDT.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"AaauHBIaCwjNFlnZ"}}"#,
            "application/json",
        ))
        .expect(1)
        .named("GET /refresh_access_token")
        .mount(&w.server)
        .await;
    let token = long_record("1", "CANARY-LONG", w.clock.now() - 2 * DAY);
    let error = w.client.refresh(&token).await.unwrap_err();
    let TokenError::Api {
        status,
        class,
        error: graph,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        (*status, *class, graph.error_subcode),
        (400, ErrorClass::InvalidToken, Some(463))
    );
    assert!(error.requires_reauthorization());
    assert_no_canary(&[format!("{error}"), format!("{error:?}")]);
}

struct Managed {
    w: World,
    store: Arc<MemoryStore>,
    manager: TokenManager,
}

async fn managed(schedule: RefreshSchedule) -> Managed {
    let w = world(Platform::InstagramLogin).await;
    let store = Arc::new(MemoryStore::new());
    let manager = TokenManager::with_schedule(w.client.clone(), store.clone(), schedule);
    Managed { w, store, manager }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_callers_cause_exactly_one_refresh() {
    let m = managed(RefreshSchedule::default()).await;
    let user = UserId::new("17841405793187218");
    // 55 days old: past day 20, due.
    m.store
        .save(&long_record(
            user.as_str(),
            "CANARY-OLD",
            m.w.clock.now() - 55 * DAY,
        ))
        .await
        .unwrap();
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(query_param("access_token", "CANARY-OLD"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(long_lived_body("CANARY-NEW", 5_184_000), "application/json")
                .set_delay(Duration::from_millis(100)),
        )
        .expect(1)
        .named("the single refresh")
        .mount(&m.w.server)
        .await;
    let calls = (0..50).map(|_| {
        let manager = m.manager.clone();
        let user = user.clone();
        tokio::spawn(async move { manager.access_token(&user).await })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap().unwrap().expose_secret(), "CANARY-NEW");
    }
    let stored = m.store.load(&user).await.unwrap().unwrap();
    assert_eq!(stored.access_token.expose_secret(), "CANARY-NEW");
}

/// Two managers on one token file, as two `igdisplay` processes would be, with a token due for
/// refresh and a slow refresh endpoint.
async fn two_processes_on_one_file(w: &World, dir: &std::path::Path) -> (TokenManager, TokenManager) {
    let file = dir.join("tokens.json");
    let user = UserId::new("17841405793187218");
    FileStore::new(&file)
        .save(&long_record(
            user.as_str(),
            "CANARY-OLD",
            w.clock.now() - 55 * DAY,
        ))
        .await
        .unwrap();
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(long_lived_body("CANARY-NEW", 5_184_000), "application/json")
                .set_delay(Duration::from_millis(200)),
        )
        .expect(1)
        .named("the single refresh across processes")
        .mount(&w.server)
        .await;
    let manager = || TokenManager::new(w.client.clone(), Arc::new(FileStore::new(&file)));
    (manager(), manager())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_due_for_a_refresh_refresh_once() {
    let w = world(Platform::InstagramLogin).await;
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = two_processes_on_one_file(&w, dir.path()).await;
    let user = UserId::new("17841405793187218");
    let (a, b) = tokio::join!(first.access_token(&user), second.access_token(&user));
    assert_eq!(a.unwrap().expose_secret(), "CANARY-NEW");
    assert_eq!(b.unwrap().expose_secret(), "CANARY-NEW");
    w.server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_asked_to_refresh_now_refresh_once() {
    let w = world(Platform::InstagramLogin).await;
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = two_processes_on_one_file(&w, dir.path()).await;
    let user = UserId::new("17841405793187218");
    let (a, b) = tokio::join!(first.refresh_now(&user), second.refresh_now(&user));
    assert_eq!(a.unwrap().access_token.expose_secret(), "CANARY-NEW");
    assert_eq!(b.unwrap().access_token.expose_secret(), "CANARY-NEW");
    w.server.verify().await;
}

/// Case 27: the transport panics in the middle of a refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_refresh_leaves_the_store_whole_and_nothing_locked() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.json");
    let clock = ManualClock::at_unix(START);
    let user = UserId::new("17841405793187218");
    FileStore::new(&file)
        .save(&long_record(user.as_str(), "CANARY-OLD", clock.now() - 55 * DAY))
        .await
        .unwrap();
    let panicked = Arc::new(AtomicBool::new(false));
    let first_call = panicked.clone();
    let backend = FnBackend::new(move |_| {
        assert!(
            first_call.swap(true, Ordering::SeqCst),
            "injected panic in the transport"
        );
        Ok(json_response(200, long_lived_body("CANARY-NEW", 5_184_000)))
    });
    let config = AppConfig::new(Platform::InstagramLogin, APP_ID, AppSecret::new(SECRET), REDIRECT)
        .unwrap()
        .with_endpoints(Endpoints::single_origin("http://127.0.0.1:9"))
        .unwrap();
    let client = AuthClient::new(config, Arc::new(backend)).with_clock(Arc::new(clock.clone()));
    let manager = TokenManager::new(client, Arc::new(FileStore::new(&file)));
    let task = {
        let (manager, user) = (manager.clone(), user.clone());
        tokio::spawn(async move { manager.access_token(&user).await })
    };
    let panic = task.await.unwrap_err();
    assert!(panic.is_panic() && panicked.load(Ordering::SeqCst));
    assert_no_canary(&[format!("{panic}"), format!("{panic:?}")]);
    // The file still holds the old token, readable.
    let stored = FileStore::new(&file).load(&user).await.unwrap().unwrap();
    assert_eq!(stored.access_token.expose_secret(), "CANARY-OLD");
    // Neither the single flight nor the file's refresh lock stayed held: the next call refreshes.
    assert_eq!(
        manager.access_token(&user).await.unwrap().expose_secret(),
        "CANARY-NEW"
    );
}

#[tokio::test]
async fn the_manager_refreshes_on_day_twenty_and_refuses_expired_tokens() {
    let m = managed(RefreshSchedule::default()).await;
    let user = UserId::new("7");
    let issued = m.w.clock.now();
    m.store.save(&long_record("7", "CURRENT", issued)).await.unwrap();
    expect_refresh(&m.w.server, "CURRENT", &long_lived_body("NEXT", 5_184_000), 1).await;
    // Before day 20: the stored token, no request.
    m.w.clock.advance(19 * DAY);
    assert_eq!(
        m.manager.access_token(&user).await.unwrap().expose_secret(),
        "CURRENT"
    );
    // Day 20, the keeper's rule too: refreshed first.
    m.w.clock.advance(DAY);
    assert_eq!(
        m.manager.access_token(&user).await.unwrap().expose_secret(),
        "NEXT"
    );
    // Past expiry: a typed error and no request.
    m.w.clock.advance(61 * DAY);
    let error = m.manager.access_token(&user).await.unwrap_err();
    assert!(matches!(error, TokenError::Expired { .. }) && error.requires_reauthorization());
    assert!(matches!(
        m.manager.access_token(&UserId::new("8")).await,
        Err(TokenError::NoToken(_))
    ));
    assert_eq!(m.w.server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_valid_token_and_backs_off() {
    let m = managed(RefreshSchedule::default()).await;
    let user = UserId::new("7");
    m.store
        .save(&long_record("7", "CURRENT", m.w.clock.now() - 55 * DAY))
        .await
        .unwrap();
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .named("refresh attempts while Instagram is down")
        .mount(&m.w.server)
        .await;
    assert_eq!(
        m.manager.access_token(&user).await.unwrap().expose_secret(),
        "CURRENT"
    );
    // Within the back-off period, no new attempt.
    assert_eq!(
        m.manager.access_token(&user).await.unwrap().expose_secret(),
        "CURRENT"
    );
    assert_eq!(m.w.server.received_requests().await.unwrap().len(), 3);
    // A revoked token is reported as such.
    m.w.server.reset().await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"error":{"message":"Error validating access token: The session has been invalidated because the user changed their password.","type":"OAuthException","code":190,"error_subcode":460}}"#,
            "application/json",
        ))
        .expect(1)
        .named("GET /refresh_access_token")
        .mount(&m.w.server)
        .await;
    m.w.clock.advance(Duration::from_secs(6 * 60));
    let error = m.manager.access_token(&user).await.unwrap_err();
    assert!(
        matches!(error, TokenError::Revoked(_)) && error.requires_reauthorization(),
        "{error:?}"
    );
}

/// A store whose writes fail, as a full disk would.
#[derive(Debug, Default)]
struct ReadOnlyStore(MemoryStore);

#[async_trait::async_trait]
impl TokenStore for ReadOnlyStore {
    async fn load(&self, user: &UserId) -> Result<Option<TokenRecord>, StoreError> {
        self.0.load(user).await
    }
    async fn save(&self, _: &TokenRecord) -> Result<(), StoreError> {
        Err(StoreError::Io {
            action: "write the token file",
            source: std::io::Error::other("disk full"),
        })
    }
    async fn remove(&self, user: &UserId) -> Result<bool, StoreError> {
        self.0.remove(user).await
    }
    async fn users(&self) -> Result<Vec<UserId>, StoreError> {
        self.0.users().await
    }
}

#[tokio::test]
async fn a_refreshed_token_that_cannot_be_stored_is_not_handed_out() {
    let w = world(Platform::InstagramLogin).await;
    let store = Arc::new(ReadOnlyStore::default());
    store
        .0
        .save(&long_record("7", "CURRENT", w.clock.now() - 55 * DAY))
        .await
        .unwrap();
    expect_refresh(&w.server, "CURRENT", &long_lived_body("UNSAVED", 5_184_000), 1).await;
    let manager = TokenManager::new(w.client.clone(), store.clone());
    let error = manager.access_token(&UserId::new("7")).await.unwrap_err();
    assert!(matches!(error, TokenError::Store(_)), "{error:?}");
    let kept = store.load(&UserId::new("7")).await.unwrap().unwrap();
    assert_eq!(kept.access_token.expose_secret(), "CURRENT");
}

#[tokio::test]
async fn complete_login_runs_every_step_and_stores_the_token() {
    let m = managed(RefreshSchedule::default()).await;
    expect_exchange(&m.w.server, "CANARY-CODE", 200, r#"{"access_token":"CANARY-SHORT","user_id":27640875392278831,"permissions":["instagram_business_basic"]}"#, 1).await;
    expect_long_lived(
        &m.w.server,
        "CANARY-SHORT",
        &long_lived_body("CANARY-LONG", 5_184_000),
    )
    .await;
    let authorization = m.w.client.authorize().fixed_state(STATE).build().unwrap();
    let state = STATE;
    let pending_json = serde_json::to_string(&authorization.pending).unwrap();
    // As a CLI would: the pending authorization went to disk and came back.
    let pending = serde_json::from_str(&pending_json).unwrap();
    let record = m
        .manager
        .complete_login(pending, &format!(" {REDIRECT}?code=CANARY-CODE&state={state}#_ "))
        .await
        .unwrap();
    assert_eq!(record.user_id.as_str(), "27640875392278831");
    let stored = m.manager.record(&record.user_id).await.unwrap();
    assert_eq!(stored.access_token.expose_secret(), "CANARY-LONG");

    // Every type and error of the flow, printed every way, shows no secret.
    let authorization = m.w.client.authorize().fixed_state(STATE).build().unwrap();
    let callback_error: LoginError = CallbackError::StateMismatch.into();
    assert_no_canary(&[
        format!("{:?}", m.w.client),
        format!("{:?}", m.manager),
        format!("{:?}", authorization.pending),
        format!("{authorization:?}"),
        format!("{record:?}"),
        format!("{callback_error} {callback_error:?}"),
    ]);
    assert!(!format!("{:?}", authorization.pending).contains(STATE));
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(&format!("{s} {s:?}\n"));
        source = s.source();
    }
    out
}

fn assert_no_canary(printed: &[String]) {
    for text in printed {
        assert!(!text.contains("CANARY"), "a secret leaked: {text}");
    }
}

#[tokio::test]
async fn backends_are_interchangeable() {
    // The same client works over any HttpBackend: here a double that answers like Instagram.
    let backend: SharedBackend = Arc::new(FnBackend::new(|request| {
        assert_eq!(request.uri().path(), "/oauth/access_token");
        Ok(json_response(200, r#"{"access_token":"T","user_id":"5"}"#))
    }));
    let config = AppConfig::new(Platform::BasicDisplay, APP_ID, AppSecret::new(SECRET), REDIRECT).unwrap();
    let client = AuthClient::new(config, backend.clone());
    assert_eq!(
        client
            .exchange_code(grant_for(&client))
            .await
            .unwrap()
            .user_id
            .as_str(),
        "5"
    );
}

/// A verified grant for code `C`, as if the user approved and came back.
fn grant_for(client: &AuthClient) -> igdisplay_auth::AuthorizationGrant {
    let authorization = client.authorize().fixed_state(STATE).build().unwrap();
    let redirect = format!("code=C&state={STATE}");
    authorization
        .pending
        .verify(Callback::parse(&redirect).unwrap(), client.clock().now())
        .unwrap()
}

/// Every transport failure kind, the statuses, both error shapes and the Graph classes.
fn token_answers() -> Vec<Answer> {
    let kinds = igdisplay_http::TransportErrorKind::ALL.iter();
    let mut answers: Vec<Answer> = kinds.copied().map(Answer::Transport).collect();
    let bodies: &[&'static str] = &[
        "<html>not json</html>",
        r#"{"error_type":"OAuthException","code":400,"error_message":"Invalid authorization code"}"#,
        r#"{"error":{"message":"m","code":1}}"#,
        r#"{"error":{"message":"m","code":4}}"#,
        r#"{"error":{"message":"m","code":100}}"#,
        r#"{"error":{"message":"m","code":190,"error_subcode":460}}"#,
    ];
    for status in [400, 429, 500, 503] {
        answers.extend(bodies.iter().map(|body| Answer::Status(status, body)));
    }
    answers
}

/// A client whose every request gets `answer`, counted by `backend`.
fn answering(backend: &CapturingBackend) -> AuthClient {
    let config = AppConfig::new(Platform::InstagramLogin, APP_ID, AppSecret::new(SECRET), REDIRECT).unwrap();
    AuthClient::new(config, Arc::new(backend.clone()))
        .with_clock(Arc::new(ManualClock::at_unix(START)))
        .with_retry(igdisplay_http::RetryPolicy::default().max_attempts(2))
        .with_jitter_seed(1)
}

#[tokio::test]
async fn is_retryable_answers_exactly_what_the_send_loop_does_for_both_request_kinds() {
    for answer in token_answers() {
        let backend = CapturingBackend::new(FnBackend::new(move |_| answer.respond()));
        let client = answering(&backend);
        let error = client.exchange_code(grant_for(&client)).await.unwrap_err();
        let retried = backend.count() == 2;
        assert_eq!(error.is_retryable(), retried, "exchange, {answer:?}: {error:?}");

        let old = long_record("1", "OLD-TOKEN", client.clock().now() - 2 * DAY);
        let before = backend.count();
        let error = client.refresh(&old).await.unwrap_err();
        let retried = backend.count() - before == 2;
        assert_eq!(error.is_retryable(), retried, "refresh, {answer:?}: {error:?}");
    }
}

#[tokio::test]
async fn a_huge_expires_in_is_capped_instead_of_overflowing_the_clock() {
    let backend = FnBackend::new(|_| {
        Ok(json_response(
            200,
            r#"{"access_token":"IGQVJ-NEW-CANARY","token_type":"bearer","expires_in":18446744073709551615}"#,
        ))
    });
    let config = AppConfig::new(Platform::InstagramLogin, APP_ID, AppSecret::new(SECRET), REDIRECT).unwrap();
    let clock = ManualClock::at_unix(START);
    let client = AuthClient::new(config, Arc::new(backend)).with_clock(Arc::new(clock.clone()));
    let old = long_record("1", "OLD-TOKEN", clock.now() - 2 * DAY);
    let fresh = client.refresh(&old).await.unwrap();
    assert_eq!(
        fresh.expires_at.unix(),
        START as i64 + igdisplay_auth::MAX_LIFETIME.as_secs() as i64
    );
}

#[test]
fn a_record_whose_lifetime_overflows_the_clock_expires_at_the_latest_instant() {
    let record = TokenRecord::new(
        UserId::new("1"),
        AccessToken::new("T"),
        TokenKind::LongLived,
        Platform::InstagramLogin,
        SystemTime::UNIX_EPOCH + Duration::from_secs(START),
        Duration::MAX,
    );
    assert_eq!(record.expires_at.unix(), igdisplay_model::MAX_UNIX);
    assert!(!record.is_expired(SystemTime::UNIX_EPOCH + Duration::from_secs(START)));
}
