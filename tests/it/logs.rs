//! Case 25: the whole login, reads and a refresh under a real `tracing` subscriber at TRACE,
//! JSON lines captured in memory, with span opening and closing recorded: no secret appears.

use crate::{Case, cases, login};
use futures_util::TryStreamExt;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The value of `name` in the query of `url`.
fn query_value(url: &str, name: &str) -> String {
    url.split(['?', '&', '#'])
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

/// One case's flow; the secrets it saw.
async fn run(case: Case) -> Vec<String> {
    let mock = case.mock();
    let instagram = case.client(&mock);
    let authorization = instagram.authorize().build().unwrap();
    let mut secrets = vec![
        mock.app().secret.clone(),
        query_value(&authorization.url, "state"),
    ];
    let redirect = mock.approve(&authorization.url, "jayposiris").unwrap();
    secrets.push(query_value(&redirect, "code").trim_end_matches("#_").to_owned());
    let token = instagram
        .complete_login(authorization.pending, &redirect)
        .await
        .unwrap();
    secrets.push(token.access_token.expose_secret().to_owned());
    let graph = instagram.graph(&token.user_id);
    graph.me().all_fields().send().await.unwrap();
    let media: Vec<_> = graph
        .my_media()
        .with_children()
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert!(!media.is_empty());
    mock.advance(Duration::from_secs(25 * 3600));
    let refreshed = instagram.tokens().refresh_now(&token.user_id).await.unwrap();
    secrets.push(refreshed.access_token.expose_secret().to_owned());
    // A second login, whose short-lived token is exchanged in the open.
    let second = login(&mock, &instagram, "jayposiris").await;
    secrets.push(second.access_token.expose_secret().to_owned());
    secrets
}

/// A subscriber at TRACE writing JSON lines, with span opening and closing, into a capture;
/// the default for as long as the guard lives.
fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .finish();
    (capture, tracing::subscriber::set_default(subscriber))
}

impl Capture {
    /// What was written, after checking that none of `secrets` is in it.
    fn without(&self, secrets: &[String]) -> String {
        let log = String::from_utf8(self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()).unwrap();
        for secret in secrets {
            assert!(secret.len() >= 8, "{secret:?} is too short to be a canary");
            assert!(!log.contains(secret.as_str()), "a secret is in the trace");
        }
        log
    }
}

#[tokio::test]
async fn a_trace_of_the_whole_flow_holds_no_secret() {
    let (capture, _default) = capture();
    let mut secrets = Vec::new();
    for case in cases() {
        secrets.extend(run(case).await);
    }
    let log = capture.without(&secrets);
    // The capture saw the flow: token requests and Graph requests, with their redacted URLs.
    assert!(
        log.contains("igdisplay.exchange_code") && log.contains("igdisplay.refresh"),
        "{log}"
    );
    assert!(
        log.contains("igdisplay.graph.request") && log.contains("access_token=[redacted]"),
        "{log}"
    );
}

/// The fleet's and the mirror's paths under the same capture: a login into a SQL store, the
/// keeper refreshing the token and delivering its events to a signed webhook (refused once,
/// then accepted), and a mirror sync downloading every file (one CDN link refused): no token,
/// app secret or webhook secret in the trace.
#[tokio::test]
async fn a_trace_of_the_keeper_the_outbox_and_the_mirror_holds_no_secret() {
    use igdisplay::http::test_util::{FnBackend, json_response};
    use igdisplay::store::{Key, KeyRing, SqlStore, WebhookSender};
    use std::sync::atomic::{AtomicU32, Ordering};

    let (capture, _default) = capture();
    let case = Case {
        backend: "reqwest",
        platform: igdisplay::model::Platform::InstagramLogin,
    };
    let mock = case.mock();
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::sqlite(
        &dir.path().join("accounts.db"),
        KeyRing::new(Key::generate("k1").unwrap()),
    )
    .await
    .unwrap()
    // The database's time is the mock's, as the tokens' are.
    .with_pinned_time(igdisplay::follow_mock_clock(&mock));
    let instagram = case
        .builder(&mock)
        .store(Arc::new(store.clone()))
        .build()
        .unwrap();
    let token = login(&mock, &instagram, "jayposiris").await;
    let hook_secret = "whsec-canary-5f1d2c9e8b7a".to_owned();
    let mut secrets = vec![
        mock.app().secret.clone(),
        token.access_token.expose_secret().to_owned(),
        hook_secret.clone(),
    ];

    mock.advance(Duration::from_secs(51 * 86_400));
    let calls = Arc::new(AtomicU32::new(0));
    let receiver = FnBackend::new({
        let calls = calls.clone();
        move |_| {
            let status = if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                503
            } else {
                200
            };
            Ok(json_response(status, "{}"))
        }
    });
    let webhook = WebhookSender::new(
        "https://hooks.example/igdisplay",
        [hook_secret.as_str()],
        Arc::new(receiver),
    )
    .unwrap();
    let keeper = instagram.fleet(store.clone()).webhook(webhook).build();
    let tally = keeper.run_once().await.unwrap();
    assert_eq!(tally.refreshed, 1, "{tally:?}");
    assert!(calls.load(Ordering::SeqCst) >= 1, "the webhook was called");
    let refreshed = igdisplay::auth::TokenStore::load(&store, &token.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        refreshed.access_token.expose_secret(),
        token.access_token.expose_secret()
    );
    secrets.push(refreshed.access_token.expose_secret().to_owned());

    let policy = igdisplay_mirror::DownloadPolicy::instagram().allow_origin(mock.base_url());
    let backend = igdisplay::http::default_backend(policy.backend_config()).unwrap();
    let mirror = igdisplay_mirror::Mirror::new(
        Arc::new(igdisplay_mirror::FsBlobStore::new(dir.path().join("mirror"))),
        igdisplay_mirror::Downloader::new(backend, policy),
    );
    mock.add_fault(
        igdisplay::mock::Fault::new("/cdn/", igdisplay::mock::FaultKind::Status { status: 403 }).times(1),
    );
    let report = mirror
        .sync(&token.user_id, &instagram.graph(&token.user_id))
        .await
        .unwrap();
    assert!(report.downloaded > 0, "{report:?}");

    let log = capture.without(&secrets);
    assert!(
        log.contains("igdisplay.refresh") && log.contains("igdisplay.graph.request"),
        "the capture saw the keeper's refresh and the mirror's reads"
    );
    assert!(
        log.contains("a delivery failed"),
        "and the webhook's failed delivery"
    );
}
