//! Every query and the reliability cases D31-D38, E39-E41 and F42-F49 against wiremock, on a
//! `ManualClock` (backoff and pacing take no real time) with a seeded jitter.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::{StreamExt, TryStreamExt};
use igdisplay_graph::{
    Error, GraphClient, GraphEndpoint, GraphPolicy, LoginRequired, MediaField, RateLimitPolicy, RetryPolicy,
    TokenSource, TokenUnavailable, UserField,
};
use igdisplay_http::test_util::{Answer, CapturingBackend};
use igdisplay_http::{BackendConfig, Clock, ManualClock, ReqwestBackend, SharedClock, Timeout, redact_uri};
use igdisplay_model::{AccessToken, ErrorClass, MediaId, MediaType, Platform, Timestamp, UserId};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "IGQVJ-CANARY-TOKEN";

struct World {
    server: MockServer,
    clock: ManualClock,
    capture: CapturingBackend,
}

impl World {
    async fn new() -> Self {
        let server = MockServer::start().await;
        let backend =
            ReqwestBackend::with_config(BackendConfig::default().max_body_bytes(64 * 1024)).unwrap();
        Self {
            server,
            clock: ManualClock::at_unix(1_700_000_000),
            capture: CapturingBackend::new(backend),
        }
    }

    fn config(&self, platform: Platform) -> Config {
        Config {
            endpoint: GraphEndpoint::new(platform).base_url(self.server.uri()),
            policy: GraphPolicy::default().jitter_seed(42),
        }
    }

    fn client(&self, config: Config) -> GraphClient {
        self.client_with(
            config,
            Arc::new(igdisplay_graph::StaticToken::new(AccessToken::new(TOKEN))),
        )
    }

    fn client_with(&self, config: Config, token: Arc<dyn TokenSource>) -> GraphClient {
        let backend = Timeout::new(
            self.capture.clone(),
            Duration::from_secs(10),
            Arc::new(self.clock.clone()),
        );
        GraphClient::builder(Arc::new(backend), config.endpoint, token)
            .policy(config.policy)
            .clock(Arc::new(self.clock.clone()))
            .build()
    }

    /// Every item of the user's media on Instagram Login, as the stream gives them (errors
    /// included), `with_children` expanding albums.
    async fn stream_my_media(&self, with_children: bool) -> Vec<Result<igdisplay_model::Media, Error>> {
        let request = self.client(self.config(Platform::InstagramLogin)).my_media();
        let request = if with_children {
            request.with_children()
        } else {
            request
        };
        request.into_stream().collect().await
    }

    /// Every request sent, method and redacted URI, with the server's address shortened.
    fn sent(&self) -> Vec<String> {
        self.capture
            .requests()
            .iter()
            .map(|r| {
                let uri = r.uri().to_string();
                assert!(
                    uri.starts_with(&self.server.uri()),
                    "a request left the configured base: {uri}"
                );
                format!("{} {}", r.method(), redact_uri(&uri)).replace(&self.server.uri(), "")
            })
            .collect()
    }
}

/// Where requests go and how they are retried, adjusted per test.
#[derive(Clone)]
struct Config {
    endpoint: GraphEndpoint,
    policy: GraphPolicy,
}

impl Config {
    fn version(mut self, version: &str) -> Self {
        self.endpoint = self.endpoint.version(version);
        self
    }

    fn retry(mut self, retry: RetryPolicy) -> Self {
        self.policy = self.policy.retry(retry);
        self
    }

    fn rate_limit(mut self, rate_limit: RateLimitPolicy) -> Self {
        self.policy = self.policy.rate_limit(rate_limit);
        self
    }
}

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn graph_error(status: u16, code: i64, subcode: Option<i64>, transient: bool) -> ResponseTemplate {
    let mut error = json!({"message": format!("error {code}"), "type": "OAuthException", "code": code,
        "is_transient": transient, "fbtrace_id": "AaauHBIaCwjNFlnZ"});
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    ResponseTemplate::new(status).set_body_json(json!({ "error": error }))
}

/// Answers with each template in turn, then repeats the last.
struct Sequence(std::sync::Mutex<Vec<ResponseTemplate>>);

impl Sequence {
    fn new(mut templates: Vec<ResponseTemplate>) -> Self {
        templates.reverse();
        Self(std::sync::Mutex::new(templates))
    }
}

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut left = self.0.lock().unwrap();
        if left.len() > 1 {
            left.pop().unwrap()
        } else {
            left[0].clone()
        }
    }
}

#[tokio::test]
async fn every_query_sends_exactly_the_documented_request() {
    let w = World::new().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ok(json!({"id": "17841405793187218", "username": "jayposiris"})))
        .named("GET /me")
        .mount(&w.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v21.0/17841400000000001"))
        .respond_with(ok(json!({"id": "17841400000000001", "followers_count": 10})))
        .named("GET /v21.0/17841400000000001")
        .mount(&w.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/17895695668004550"))
        .respond_with(ok(
            json!({"id": "17895695668004550", "media_type": "CAROUSEL_ALBUM",
            "children": {"data": [{"id": "1"}, {"id": "2"}]}}),
        ))
        .named("GET /17895695668004550")
        .mount(&w.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/17895695668004550/children"))
        .respond_with(ok(
            json!({"data": [{"id": "1", "media_type": "IMAGE"}, {"id": "2", "media_type": "VIDEO"}]}),
        ))
        .named("GET /17895695668004550/children")
        .mount(&w.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/me/media"))
        .respond_with(ok(json!({"data": [{"id": "3"}]})))
        .named("GET /me/media")
        .mount(&w.server)
        .await;

    let basic = w.client(w.config(Platform::BasicDisplay));
    let me = basic.me().send().await.unwrap();
    assert_eq!(me.username.as_deref(), Some("jayposiris"));
    let login = w.client(w.config(Platform::InstagramLogin).version("21.0"));
    let user = login
        .user(&UserId::new("17841400000000001"))
        .all_fields()
        .send()
        .await
        .unwrap();
    assert_eq!(user.followers_count, Some(10));
    let album = basic
        .media(&MediaId::new("17895695668004550"))
        .with_children()
        .fields(&[
            MediaField::Caption,
            MediaField::MediaType,
            MediaField::MediaUrl,
            MediaField::ThumbnailUrl,
            MediaField::Permalink,
            MediaField::Timestamp,
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(album.children().len(), 2);
    let children = basic
        .children(&MediaId::new("17895695668004550"))
        .send()
        .await
        .unwrap();
    assert_eq!(children.items[1].media_type, Some(MediaType::Video));
    let page = basic
        .my_media()
        .fields(&[MediaField::Caption, MediaField::MediaUrl, MediaField::Caption])
        .limit(50)
        .since(Timestamp::from_unix(1_600_000_000))
        .until(Timestamp::from_unix(1_700_000_000))
        .after("QVFIUjMz")
        .send()
        .await
        .unwrap();
    assert!(!page.has_next());
    let login_me = login
        .me()
        .fields(&[UserField::Username, UserField::Username])
        .send()
        .await;
    assert!(
        login_me.is_err(),
        "no /v21.0/me mock: the catch-all 404 is an error"
    );

    insta::assert_snapshot!(w.sent().join("\n"), @r"
    GET /me?fields=id%2Cusername%2Caccount_type%2Cmedia_count&access_token=[redacted]
    GET /v21.0/17841400000000001?fields=id%2Cuser_id%2Cusername%2Cname%2Caccount_type%2Cprofile_picture_url%2Cfollowers_count%2Cfollows_count%2Cmedia_count%2Cbiography%2Cwebsite&access_token=[redacted]
    GET /17895695668004550?fields=id%2Ccaption%2Cmedia_type%2Cmedia_url%2Cthumbnail_url%2Cpermalink%2Ctimestamp%2Cchildren%7Bid%2Cmedia_type%2Cmedia_url%2Cthumbnail_url%2Cpermalink%2Ctimestamp%7D&access_token=[redacted]
    GET /17895695668004550/children?fields=id%2Cmedia_type%2Cmedia_url%2Cthumbnail_url%2Cpermalink%2Ctimestamp&access_token=[redacted]
    GET /me/media?fields=id%2Ccaption%2Cmedia_url&limit=50&since=1600000000&until=1700000000&after=QVFIUjMz&access_token=[redacted]
    GET /v21.0/me?fields=id%2Cusername&access_token=[redacted]
    ");
}

#[tokio::test]
async fn ids_that_would_change_the_path_are_refused_without_a_request() {
    let w = World::new().await;
    let client = w.client(w.config(Platform::InstagramLogin));
    for id in ["../me", "1/children", "1?fields=x", ""] {
        let error = client.media(&MediaId::new(id)).send().await.unwrap_err();
        assert!(matches!(error, Error::InvalidRequest(_)), "{id}: {error:?}");
    }
    assert_eq!(w.capture.count(), 0);
}

/// Reliability case 32: clients sharing a spent retry budget fail fast, and successes earn
/// retries back.
#[tokio::test]
async fn a_spent_retry_budget_fails_fast_until_calls_succeed_again() {
    let w = World::new().await;
    let budget = Arc::new(igdisplay_http::RetryBudget::new(4));
    let client = |w: &World| {
        let backend = Timeout::new(
            w.capture.clone(),
            Duration::from_secs(10),
            Arc::new(w.clock.clone()),
        );
        GraphClient::builder(
            Arc::new(backend),
            w.config(Platform::InstagramLogin).endpoint,
            Arc::new(igdisplay_graph::StaticToken::new(AccessToken::new(TOKEN))),
        )
        .policy(GraphPolicy::default().jitter_seed(42))
        .clock(Arc::new(w.clock.clone()))
        .retry_budget(budget.clone())
        .build()
    };
    let down = Mock::given(path("/me"))
        .respond_with(ResponseTemplate::new(500))
        .named("/me down")
        .mount_as_scoped(&w.server)
        .await;
    // Two retries fit in a bucket of four (down to half): the first call makes 3 attempts.
    client(&w).me().send().await.unwrap_err();
    assert_eq!(w.capture.count(), 3);
    // The budget is spent: another client of the same app fails at once.
    let error = client(&w).me().send().await.unwrap_err();
    assert!(
        matches!(error, Error::UnexpectedResponse { status: 500, .. }),
        "{error:?}"
    );
    assert_eq!(w.capture.count(), 4);
    drop(down);
    Mock::given(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": "1"})))
        .mount(&w.server)
        .await;
    for _ in 0..10 {
        client(&w).me().send().await.unwrap();
    }
    assert!(
        (budget.tokens() - 3.0).abs() < 1e-9,
        "ten successes earned one token back"
    );
}

/// What one row of the retry table expects of the call.
#[derive(Debug)]
enum Expect {
    /// The call succeeds.
    Ok,
    /// A Graph error of this class, code and subcode, after this many requests.
    Api(ErrorClass, i64, Option<i64>, u32),
    /// An error status without a Graph body, after this many requests.
    Unexpected(u16, u32),
    /// A rate limit carrying this pause; the next call is refused without a request.
    RateLimited(Duration),
}

/// One scenario of the retry rules: the answers in turn (the last repeated), the platform,
/// the attempts allowed, whether the policy fails fast at a rate limit, and what must happen:
/// the requests sent, the waits on the clock (`None`: as many as the retries, of any length),
/// and the outcome.
struct Row {
    name: &'static str,
    answers: Vec<ResponseTemplate>,
    platform: Platform,
    attempts: u32,
    fail_fast: bool,
    sent: usize,
    sleeps: Option<Vec<Duration>>,
    expect: Expect,
}

fn row(name: &'static str, answers: Vec<ResponseTemplate>, sent: usize, expect: Expect) -> Row {
    Row {
        name,
        answers,
        platform: Platform::InstagramLogin,
        attempts: 3,
        fail_fast: false,
        sent,
        sleeps: None,
        expect,
    }
}

/// Every retry rule of the Graph client, one row each: transient failures are retried with
/// capped, jittered backoff up to the policy's attempts; permanent errors come back at once,
/// typed; throttles are never retried at once, waited out only for their announced pause and
/// only within the policy's limit.
fn retry_table() -> Vec<Row> {
    let mut rows = vec![
        Row {
            sleeps: Some(vec![
                Duration::from_nanos(370_782_439),
                Duration::from_nanos(159_910_392),
            ]),
            ..row(
                "transient codes 2 and 1, then an answer: retried after the seeded jitter",
                vec![
                    graph_error(500, 2, None, true),
                    graph_error(503, 1, None, false),
                    ok(json!({"id": "1"})),
                ],
                3,
                Expect::Ok,
            )
        },
        row(
            "a 500 without a Graph body: retried until the attempts run out",
            vec![ResponseTemplate::new(500)],
            3,
            Expect::Unexpected(500, 3),
        ),
        Row {
            attempts: 4,
            ..row(
                "a transient code under a policy of four attempts",
                vec![graph_error(500, 1, None, false)],
                4,
                Expect::Api(ErrorClass::Transient, 1, None, 4),
            )
        },
        Row {
            sleeps: Some(vec![Duration::from_secs(60)]),
            ..row(
                "a user throttle under a waiting policy: resumed after the pause, not before",
                vec![graph_error(400, 17, None, false), ok(json!({"id": "1"}))],
                2,
                Expect::Ok,
            )
        },
        Row {
            sleeps: Some(vec![Duration::from_secs(2)]),
            ..row(
                "a 429 with Retry-After: 2 is waited out",
                vec![
                    ResponseTemplate::new(429).insert_header("retry-after", "2"),
                    ok(json!({"id": "1"})),
                ],
                2,
                Expect::Ok,
            )
        },
        Row {
            sleeps: Some(vec![]),
            ..row(
                "a Retry-After past the policy's limit is clamped to a day and never slept",
                vec![ResponseTemplate::new(429).insert_header("retry-after", "999999")],
                1,
                Expect::RateLimited(igdisplay_graph::MAX_PAUSE),
            )
        },
    ];
    let permanent = [
        (100, None, ErrorClass::InvalidParameter),
        (10, None, ErrorClass::PermissionDenied),
        (200, None, ErrorClass::PermissionDenied),
        (190, None, ErrorClass::InvalidToken),
        (190, Some(463), ErrorClass::InvalidToken),
        (368, None, ErrorClass::Other),
        (2500, None, ErrorClass::InvalidParameter),
    ];
    for (code, subcode, class) in permanent {
        rows.push(Row {
            platform: Platform::BasicDisplay,
            sleeps: Some(vec![]),
            ..row(
                "a permanent code, even marked transient: returned at once",
                vec![graph_error(400, code, subcode, true)],
                1,
                Expect::Api(class, code, subcode, 1),
            )
        });
    }
    for (status, code) in [(400, 4), (403, 17), (400, 32), (400, 341), (403, 613)] {
        rows.push(Row {
            fail_fast: true,
            sleeps: Some(vec![]),
            ..row(
                "a throttle code under a fail-fast policy: never retried at once",
                vec![graph_error(status, code, None, true)],
                1,
                Expect::RateLimited(Duration::from_secs(60)),
            )
        });
    }
    rows
}

#[tokio::test]
async fn every_retry_rule_in_one_table() {
    for row in retry_table() {
        let w = World::new().await;
        Mock::given(path("/me"))
            .respond_with(Sequence::new(row.answers))
            .named("/me")
            .mount(&w.server)
            .await;
        let mut config = w
            .config(row.platform)
            .retry(RetryPolicy::default().max_attempts(row.attempts));
        if row.fail_fast {
            config = config.rate_limit(RateLimitPolicy::default().fail_fast());
        }
        let client = w.client(config);
        let outcome = client.me().send().await;
        let name = row.name;
        assert_eq!(w.capture.count(), row.sent, "{name}: requests sent");
        let sleeps = w.clock.sleeps();
        match &row.sleeps {
            Some(expected) => assert_eq!(&sleeps, expected, "{name}: waits"),
            None => assert_eq!(sleeps.len(), row.sent - 1, "{name}: one wait per retry"),
        }
        match (row.expect, outcome) {
            (Expect::Ok, Ok(user)) => assert_eq!(user.id.as_str(), "1", "{name}"),
            (Expect::Api(class, code, subcode, attempts), Err(error)) => {
                assert!(
                    matches!(error, Error::Api { attempts: a, .. } if a == attempts),
                    "{name}: {error:?}"
                );
                assert_eq!(error.class(), Some(class), "{name}");
                assert_eq!((error.code(), error.subcode()), (Some(code), subcode), "{name}");
                assert_eq!(error.fbtrace_id(), Some("AaauHBIaCwjNFlnZ"), "{name}");
                assert_eq!(
                    error.requires_login(),
                    class == ErrorClass::InvalidToken,
                    "{name}"
                );
                assert_eq!(error.is_retryable(), class == ErrorClass::Transient, "{name}");
            }
            (Expect::Unexpected(status, attempts), Err(error)) => {
                assert!(
                    matches!(error, Error::UnexpectedResponse { status: s, attempts: a, .. } if s == status && a == attempts),
                    "{name}: {error:?}"
                );
                assert!(error.is_retryable(), "{name}: a 5xx may pass");
            }
            (Expect::RateLimited(pause), Err(error)) => {
                assert!(
                    matches!(error, Error::RateLimited { retry_after: Some(p), .. } if p == pause),
                    "{name}: {error:?}"
                );
                // The next call is refused locally while the block lasts: no request.
                assert!(client.me().send().await.unwrap_err().is_rate_limited(), "{name}");
                assert_eq!(w.capture.count(), row.sent, "{name}: the block sends nothing");
            }
            (expect, outcome) => panic!("{name}: expected {expect:?}, got {outcome:?}"),
        }
    }
}

#[tokio::test]
async fn a_stalled_server_times_out_when_the_clock_passes_the_limit() {
    let w = World::new().await;
    Mock::given(path("/me"))
        .respond_with(ok(json!({"id": "1"})).set_delay(Duration::from_secs(30)))
        .expect(1)
        .named("/me")
        .mount(&w.server)
        .await;
    let client = w.client(w.config(Platform::InstagramLogin).retry(RetryPolicy::none()));
    let call = tokio::spawn(async move { client.me().send().await });
    while w.server.received_requests().await.unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
    w.clock.advance(Duration::from_secs(10));
    let error = call.await.unwrap().unwrap_err();
    let Error::Transport { source, attempts: 1 } = &error else {
        panic!("{error:?}")
    };
    assert!(source.is_timeout());
    assert!(!error.is_retryable() || RetryPolicy::none().max_attempts == 1);
}

#[tokio::test]
async fn the_backends_own_timeout_is_a_transport_timeout() {
    let w = World::new().await;
    Mock::given(path("/me"))
        .respond_with(ok(json!({"id": "1"})).set_delay(Duration::from_secs(5)))
        .expect(1)
        .named("/me")
        .mount(&w.server)
        .await;
    let backend =
        ReqwestBackend::with_config(BackendConfig::default().request_timeout(Duration::from_millis(200)))
            .unwrap();
    let config = w.config(Platform::InstagramLogin).retry(RetryPolicy::none());
    let client = GraphClient::builder(
        Arc::new(backend),
        config.endpoint,
        Arc::new(igdisplay_graph::StaticToken::new(AccessToken::new(TOKEN))),
    )
    .policy(config.policy)
    .clock(Arc::new(w.clock.clone()))
    .build();
    let error = client.me().send().await.unwrap_err();
    let Error::Transport { source, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(source.is_timeout());
}

/// A clock whose sleeps never end, and which says when a sleep began: a retry waits forever,
/// until the caller gives up.
#[derive(Debug)]
struct Stuck {
    clock: ManualClock,
    sleeping: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl Clock for Stuck {
    fn now(&self) -> std::time::SystemTime {
        self.clock.now()
    }
    async fn sleep(&self, _: Duration) {
        self.sleeping.notify_one();
        std::future::pending::<()>().await;
    }
    async fn timer(&self, _: Duration) {
        std::future::pending::<()>().await;
    }
}

#[tokio::test]
async fn dropping_a_call_mid_retry_sends_nothing_more() {
    let w = World::new().await;
    Mock::given(path("/me"))
        .respond_with(ResponseTemplate::new(503))
        .named("/me")
        .mount(&w.server)
        .await;
    let sleeping = Arc::new(tokio::sync::Notify::new());
    let clock: SharedClock = Arc::new(Stuck {
        clock: w.clock.clone(),
        sleeping: sleeping.clone(),
    });
    let client = GraphClient::builder(
        Arc::new(w.capture.clone()),
        w.config(Platform::InstagramLogin).endpoint,
        Arc::new(igdisplay_graph::StaticToken::new(AccessToken::new(TOKEN))),
    )
    .clock(clock)
    .build();
    let call = tokio::spawn(async move { client.me().send().await });
    sleeping.notified().await;
    call.abort();
    assert!(
        call.await.unwrap_err().is_cancelled(),
        "the call was waiting in its backoff"
    );
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(w.server.received_requests().await.unwrap().len(), 1);
}

/// Answers `/me` with rising `X-App-Usage`.
struct RisingUsage(std::sync::atomic::AtomicUsize);

impl Respond for RisingUsage {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let steps = [50, 85, 90, 95];
        let i = self
            .0
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            .min(steps.len() - 1);
        ok(json!({"id": "1"})).insert_header(
            "x-app-usage",
            format!(
                r#"{{"call_count":{},"total_cputime":10,"total_time":10}}"#,
                steps[i]
            )
            .as_str(),
        )
    }
}

#[tokio::test]
async fn rising_usage_spaces_requests_and_full_usage_pauses_or_fails_fast() {
    let w = World::new().await;
    Mock::given(path("/me"))
        .respond_with(RisingUsage(Default::default()))
        .named("/me")
        .mount(&w.server)
        .await;
    let client = w.client(w.config(Platform::InstagramLogin));
    for _ in 0..5 {
        client.me().send().await.unwrap();
    }
    // No pause below 80 %, then a gap that grows with the usage.
    assert_eq!(
        w.clock.sleeps(),
        [
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_millis(1500)
        ]
    );
    assert_eq!(client.usage().unwrap().max_percent(), Some(95));

    let w = World::new().await;
    let buc = r#"{"17841400000000001":[{"type":"instagram","call_count":100,"total_cputime":20,"total_time":30,"estimated_time_to_regain_access":3}]}"#;
    Mock::given(path("/me"))
        .respond_with(ok(json!({"id": "1"})).insert_header("x-business-use-case-usage", buc))
        .named("/me")
        .mount(&w.server)
        .await;
    let waiting = w.client(w.config(Platform::InstagramLogin));
    waiting.me().send().await.unwrap();
    waiting.me().send().await.unwrap();
    assert_eq!(
        w.clock.sleeps(),
        [Duration::from_secs(180)],
        "waited for the announced regain time"
    );

    let fast = w.client(
        w.config(Platform::InstagramLogin)
            .rate_limit(RateLimitPolicy::default().fail_fast()),
    );
    fast.me().send().await.unwrap();
    let sent = w.capture.count();
    let error = fast.me().send().await.unwrap_err();
    let Error::RateLimited {
        usage: Some(usage),
        retry_after,
        error: None,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        (usage.max_percent(), *retry_after),
        (Some(100), Some(Duration::from_secs(180)))
    );
    assert_eq!(w.capture.count(), sent, "failed fast, without a request");
    // Garbage usage headers never fail a call.
    let w = World::new().await;
    Mock::given(path("/me"))
        .respond_with(
            ok(json!({"id": "1"}))
                .insert_header("x-app-usage", "{not json")
                .insert_header("x-business-use-case-usage", "-5"),
        )
        .named("/me")
        .mount(&w.server)
        .await;
    let client = w.client(w.config(Platform::InstagramLogin));
    assert!(client.me().send().await.is_ok());
    assert!(client.usage().is_none());
}

#[tokio::test]
async fn a_client_side_quota_holds_over_time() {
    let w = World::new().await;
    Mock::given(path("/me"))
        .respond_with(ok(json!({"id": "1"})))
        .named("/me")
        .mount(&w.server)
        .await;
    let policy = RateLimitPolicy::default().quota(igdisplay_graph::Quota::new(5, 5));
    let client = w.client(w.config(Platform::InstagramLogin).rate_limit(policy));
    let start = w.clock.now();
    let mut within_four_seconds = 0;
    loop {
        client.me().send().await.unwrap();
        if w.clock.now().duration_since(start).unwrap() > Duration::from_secs(4) {
            break;
        }
        within_four_seconds += 1;
    }
    // A burst of 5, then 5 a second for 4 seconds.
    assert!((24..=26).contains(&within_four_seconds), "{within_four_seconds}");
    assert!(w.clock.sleeps().iter().all(|d| *d <= Duration::from_millis(200)));
}

/// Pages of `/me/media` by cursor: `None` → first page.
fn page(ids: &[&str], after: Option<&str>, next: bool) -> ResponseTemplate {
    let data: Vec<_> = ids
        .iter()
        .map(|id| json!({"id": id, "media_type": "IMAGE"}))
        .collect();
    let mut paging = json!({"cursors": {"before": "B", "after": after.unwrap_or("END")}});
    if next {
        paging["next"] = json!(format!(
            "https://graph.instagram.com/v1.0/1/media?access_token={TOKEN}&after={}",
            after.unwrap_or("")
        ));
    }
    ok(json!({"data": data, "paging": paging}))
}

#[tokio::test]
async fn a_stream_walks_three_pages_by_cursor_and_ends() {
    let w = World::new().await;
    Mock::given(path("/me/media"))
        .and(query_param("after", "C1"))
        .respond_with(page(&["3", "4"], Some("C2"), true))
        .expect(1)
        .named("/me/media")
        .mount(&w.server)
        .await;
    Mock::given(path("/me/media"))
        .and(query_param("after", "C2"))
        .respond_with(page(&["5"], Some("C3"), false))
        .expect(1)
        .named("/me/media")
        .mount(&w.server)
        .await;
    Mock::given(path("/me/media"))
        .respond_with(page(&["1", "2"], Some("C1"), true))
        .with_priority(10)
        .expect(1)
        .named("/me/media")
        .mount(&w.server)
        .await;
    let client = w.client(w.config(Platform::BasicDisplay));
    let ids: Vec<String> = client
        .my_media()
        .limit(2)
        .into_stream()
        .map_ok(|m| m.id.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);
    let sent = w.sent();
    assert_eq!(sent.len(), 3);
    assert!(
        sent[1].ends_with("&limit=2&after=C1&access_token=[redacted]"),
        "{}",
        sent[1]
    );
}

#[tokio::test]
async fn a_hostile_next_url_is_never_followed() {
    let w = World::new().await;
    let evil =
        |next: &str| ok(json!({"data": [{"id": "1"}], "paging": {"cursors": {"after": "C1"}, "next": next}}));
    for next in [
        "https://evil.example/media?after=C1",
        "http://graph.instagram.com/me/media",
        "https://graph.instagram.com@evil.example/",
    ] {
        w.server.reset().await;
        Mock::given(path("/me/media"))
            .and(query_param("after", "C1"))
            .respond_with(ok(json!({"data": [{"id": "2"}]})))
            .named("/me/media")
            .mount(&w.server)
            .await;
        Mock::given(path("/me/media"))
            .respond_with(evil(next))
            .with_priority(10)
            .named("/me/media")
            .mount(&w.server)
            .await;
        let items = w.stream_my_media(false).await;
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(Result::is_ok), "{items:?}");
    }
    // `sent()` asserts every request went to the configured base.
    assert_eq!(w.sent().len(), 6);
}

#[tokio::test]
async fn a_repeated_cursor_or_endless_empty_pages_stop_the_stream() {
    let w = World::new().await;
    Mock::given(path("/me/media"))
        .respond_with(page(&["1"], Some("SAME"), true))
        .named("/me/media")
        .mount(&w.server)
        .await;
    let results = w.stream_my_media(false).await;
    // The first page, then the error instead of the repeated page's (duplicate) items.
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(matches!(results[1], Err(Error::PaginationLoop)));
    assert_eq!(w.capture.count(), 2);

    let w = World::new().await;
    let counter = std::sync::atomic::AtomicUsize::new(0);
    struct Empty(std::sync::atomic::AtomicUsize);
    impl Respond for Empty {
        fn respond(&self, _: &Request) -> ResponseTemplate {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            page(&[], Some(&format!("E{n}")), true)
        }
    }
    Mock::given(path("/me/media"))
        .respond_with(Empty(counter))
        .named("/me/media")
        .mount(&w.server)
        .await;
    let results = w.stream_my_media(false).await;
    assert!(
        matches!(results.as_slice(), [Err(Error::TooManyEmptyPages(3))]),
        "{results:?}"
    );
    assert_eq!(w.capture.count(), 3);
}

#[tokio::test]
async fn a_library_with_albums_costs_one_request_per_page() {
    let w = World::new().await;
    let album = |id: &str| {
        json!({"id": id, "media_type": "CAROUSEL_ALBUM", "children": {"data": [
        {"id": format!("{id}1"), "media_type": "IMAGE", "media_url": "https://cdn.example/a.jpg"},
        {"id": format!("{id}2"), "media_type": "VIDEO"}]}})
    };
    Mock::given(path("/me/media"))
        .and(query_param("after", "P2"))
        .respond_with(ok(
            json!({"data": [album("30")], "paging": {"cursors": {"after": "P3"}}}),
        ))
        .named("/me/media")
        .mount(&w.server)
        .await;
    Mock::given(path("/me/media"))
        .respond_with(ok(
            json!({"data": [album("10"), {"id": "20", "media_type": "IMAGE"}],
            "paging": {"cursors": {"after": "P2"}, "next": "https://graph.instagram.com/x"}}),
        ))
        .with_priority(10)
        .named("/me/media")
        .mount(&w.server)
        .await;
    let media: Vec<_> = w
        .stream_my_media(true)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(media.len(), 3);
    let children: usize = media.iter().map(|m| m.children().len()).sum();
    assert_eq!(children, 4);
    // A child without media_url (copyright, some videos) is None, not an error.
    assert_eq!(media[0].children()[1].media_url, None);
    assert_eq!(w.capture.count(), 2);
    assert!(w.sent()[0].contains("children%7Bid%2Cmedia_type"));
}

#[tokio::test]
async fn malformed_bodies_are_typed_decode_errors_naming_the_field() {
    let w = World::new().await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases = [
        (
            "/1",
            r#"{"id":"1","media_count":"many"}"#.to_owned(),
            "media_count",
        ),
        ("/2", r#"{"id":"2","username":"trunc"#.to_owned(), ""),
        ("/3", deep, ""),
        ("/4", r#"{"username":"no id"}"#.to_owned(), ""),
    ];
    for (p, body, field) in &cases {
        Mock::given(path(*p))
            .respond_with(ResponseTemplate::new(200).set_body_string(body.clone()))
            .named("any request")
            .mount(&w.server)
            .await;
        let error = w
            .client(w.config(Platform::BasicDisplay))
            .user(&UserId::new(&p[1..]))
            .send()
            .await
            .unwrap_err();
        let Error::Decode { path, reason } = &error else {
            panic!("{p}: {error:?}")
        };
        assert!(path.contains(field), "{p}: {path} / {reason}");
    }
    Mock::given(path("/5"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(100_000)))
        .named("/5")
        .mount(&w.server)
        .await;
    let error = w
        .client(w.config(Platform::BasicDisplay).retry(RetryPolicy::none()))
        .user(&UserId::new("5"))
        .send()
        .await
        .unwrap_err();
    let Error::Transport { source, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(source.is_body_too_large());
}

/// A token source whose store cannot be read.
#[derive(Debug)]
struct StoreDown;

#[async_trait::async_trait]
impl TokenSource for StoreDown {
    async fn access_token(&self) -> Result<AccessToken, TokenUnavailable> {
        Err(TokenUnavailable::Failed("disk I/O error".into()))
    }
}

/// A token source whose token expired.
#[derive(Debug)]
struct Expired;

#[async_trait::async_trait]
impl TokenSource for Expired {
    async fn access_token(&self) -> Result<AccessToken, TokenUnavailable> {
        Err(LoginRequired::Expired {
            expired_at: Timestamp::parse("2026-01-01T00:00:00+0000").unwrap(),
        }
        .into())
    }
}

#[tokio::test]
async fn an_expired_token_requires_login_and_sends_nothing() {
    let w = World::new().await;
    let error = w
        .client_with(w.config(Platform::InstagramLogin), Arc::new(Expired))
        .me()
        .send()
        .await
        .unwrap_err();
    assert!(error.requires_login());
    assert!(!error.is_retryable());
    assert_eq!(
        error.to_string(),
        "the stored token expired at 2026-01-01T00:00:00+0000: the user must log in again"
    );
    assert!(w.capture.requests().is_empty());
}

#[tokio::test]
async fn a_store_failure_is_retried_and_never_asks_for_a_login() {
    let w = World::new().await;
    let error = w
        .client_with(w.config(Platform::InstagramLogin), Arc::new(StoreDown))
        .me()
        .send()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::TokenUnavailable(_)), "{error:?}");
    assert!(!error.requires_login());
    assert!(error.is_retryable());
    assert_eq!(w.clock.sleeps().len(), 2, "three attempts, two backoffs");
    assert!(w.capture.requests().is_empty());
}

#[tokio::test]
async fn no_error_shows_the_token_or_the_url() {
    let w = World::new().await;
    Mock::given(path("/me"))
        .respond_with(
            ResponseTemplate::new(502).set_body_string(format!("<html>bad gateway for {TOKEN}</html>")),
        )
        .named("/me")
        .mount(&w.server)
        .await;
    let mut printed = Vec::new();
    let error = w
        .client(w.config(Platform::InstagramLogin))
        .me()
        .send()
        .await
        .unwrap_err();
    printed.push(format!("{error} {error:?}"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = GraphClient::builder(
        Arc::new(ReqwestBackend::new().unwrap()),
        GraphEndpoint::new(Platform::InstagramLogin).base_url(format!("http://{closed}")),
        Arc::new(igdisplay_graph::StaticToken::new(AccessToken::new(TOKEN))),
    )
    .policy(GraphPolicy::default().jitter_seed(1))
    .clock(Arc::new(w.clock.clone()))
    .build();
    let error = client.my_media().into_stream().next().await.unwrap().unwrap_err();
    let mut chain = format!("{error} {error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        chain.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    printed.push(chain);
    let token_error = w
        .client_with(w.config(Platform::BasicDisplay), Arc::new(StoreDown))
        .me()
        .send()
        .await
        .unwrap_err();
    assert!(matches!(token_error, Error::TokenUnavailable(_)));
    printed.push(format!("{token_error:?} {client:?}"));
    for text in printed {
        assert!(!text.contains("CANARY"), "{text}");
        assert!(!text.contains("access_token="), "{text}");
    }
}

/// Every transport failure kind, the statuses, and every Graph code of the reference.
fn answers() -> Vec<Answer> {
    let kinds = igdisplay_http::TransportErrorKind::ALL.iter();
    let mut answers: Vec<Answer> = kinds.copied().map(Answer::Transport).collect();
    for status in [400, 403, 404, 429, 500, 502, 503] {
        answers.push(Answer::Status(status, "<html>not json</html>"));
    }
    let graph: &[&'static str] = &[
        r#"{"error":{"message":"m","code":1}}"#,
        r#"{"error":{"message":"m","code":2,"is_transient":true}}"#,
        r#"{"error":{"message":"m","code":4}}"#,
        r#"{"error":{"message":"m","code":10}}"#,
        r#"{"error":{"message":"m","code":17}}"#,
        r#"{"error":{"message":"m","code":32}}"#,
        r#"{"error":{"message":"m","code":100}}"#,
        r#"{"error":{"message":"m","code":102}}"#,
        r#"{"error":{"message":"m","code":190,"error_subcode":463}}"#,
        r#"{"error":{"message":"m","code":200}}"#,
        r#"{"error":{"message":"m","code":341}}"#,
        r#"{"error":{"message":"m","code":368}}"#,
        r#"{"error":{"message":"m","code":613}}"#,
        r#"{"error":{"message":"m","code":2500}}"#,
        r#"{"error":{"message":"m","code":80002}}"#,
        r#"{"error":{"message":"m","code":12345,"is_transient":true}}"#,
    ];
    for body in graph {
        answers.push(Answer::Status(400, body));
        answers.push(Answer::Status(500, body));
    }
    answers
}

#[tokio::test]
async fn is_retryable_answers_exactly_what_the_pipeline_does() {
    for answer in answers() {
        let backend = CapturingBackend::new(igdisplay_http::test_util::FnBackend::new(move |_| {
            answer.respond()
        }));
        let client = GraphClient::builder(
            Arc::new(backend.clone()),
            GraphEndpoint::new(Platform::InstagramLogin),
            Arc::new(igdisplay_graph::StaticToken::new(AccessToken::new(TOKEN))),
        )
        .policy(
            GraphPolicy::default()
                .retry(RetryPolicy::default().max_attempts(2))
                .jitter_seed(1),
        )
        .clock(Arc::new(ManualClock::at_unix(1_700_000_000)))
        .build();
        let error = client.me().send().await.unwrap_err();
        let retried = backend.count() == 2;
        assert_eq!(error.is_retryable(), retried, "{answer:?}: {error:?}");
    }
}

/// Two users' clients sharing one fail-fast pacer: user 1 is throttled with `code`; then
/// user 2 asks. Returns user 2's outcome and how many requests user 2 sent.
async fn second_user_after_a_throttle(code: i64) -> (Result<igdisplay_model::User, Error>, usize) {
    let clock = ManualClock::at_unix(1_700_000_000);
    let capture = CapturingBackend::new(igdisplay_http::test_util::FnBackend::new(move |request| {
        let throttled = request
            .uri()
            .query()
            .is_some_and(|q| q.ends_with("access_token=USER1"));
        Ok(if throttled {
            let body = format!(r#"{{"error":{{"message":"limit","code":{code}}}}}"#);
            igdisplay_http::test_util::json_response(403, body)
        } else {
            igdisplay_http::test_util::json_response(200, r#"{"id":"2"}"#)
        })
    }));
    let pacer = Arc::new(igdisplay_graph::Pacer::new(
        RateLimitPolicy::default().fail_fast(),
    ));
    let client = |user: &str, token: &str| {
        GraphClient::builder(
            Arc::new(capture.clone()),
            GraphEndpoint::new(Platform::InstagramLogin),
            Arc::new(igdisplay_graph::StaticToken::new(AccessToken::new(token))),
        )
        .pacer(pacer.clone())
        .user(UserId::new(user))
        .clock(Arc::new(clock.clone()))
        .build()
    };
    let error = client("1", "USER1").me().send().await.unwrap_err();
    assert!(error.is_rate_limited(), "{error:?}");
    let before = capture.count();
    let second = client("2", "USER2").me().send().await;
    (second, capture.count() - before)
}

#[tokio::test]
async fn an_app_level_throttle_pauses_every_users_queries() {
    let (second, sent) = second_user_after_a_throttle(4).await;
    assert!(second.unwrap_err().is_rate_limited());
    assert_eq!(sent, 0, "refused locally, without a request");
}

#[tokio::test]
async fn a_user_level_throttle_pauses_only_that_users_queries() {
    let (second, sent) = second_user_after_a_throttle(17).await;
    assert_eq!(second.unwrap().id.as_str(), "2");
    assert_eq!(sent, 1);
}

fn offline_client(platform: Platform) -> GraphClient {
    GraphClient::with_token(
        Arc::new(igdisplay_http::test_util::FnBackend::new(|_| {
            Ok(igdisplay_http::test_util::json_response(200, "{}"))
        })),
        GraphEndpoint::new(platform),
        AccessToken::new(TOKEN),
    )
}

#[test]
fn a_batch_read_names_every_id_in_one_request() {
    let client = offline_client(Platform::InstagramLogin);
    let ids = [
        MediaId::new("17895695668004550"),
        MediaId::new("17899305451014820"),
    ];
    let request = client
        .media_by_ids(&ids)
        .fields(&[MediaField::MediaUrl])
        .to_http(&AccessToken::new("T0KEN"))
        .unwrap();
    assert_eq!(
        request.uri().to_string(),
        "https://graph.instagram.com/?ids=17895695668004550%2C17899305451014820&fields=id%2Cmedia_url&access_token=T0KEN"
    );
}

#[test]
fn a_batch_read_of_no_ids_too_many_or_a_hostile_one_is_refused_before_sending() {
    let client = offline_client(Platform::InstagramLogin);
    let token = AccessToken::new("T");
    let many: Vec<MediaId> = (0..51).map(|i| MediaId::new(i.to_string())).collect();
    for ids in [Vec::new(), many, vec![MediaId::new("1"), MediaId::new("../me")]] {
        let error = client.media_by_ids(&ids).to_http(&token).unwrap_err();
        assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
    }
}
