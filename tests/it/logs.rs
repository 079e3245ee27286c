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

#[tokio::test]
async fn a_trace_of_the_whole_flow_holds_no_secret() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let mut secrets = Vec::new();
    for case in cases() {
        secrets.extend(run(case).await);
    }
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The capture saw the flow: token requests and Graph requests, with their redacted URLs.
    assert!(
        log.contains("igdisplay.exchange_code") && log.contains("igdisplay.refresh"),
        "{log}"
    );
    assert!(
        log.contains("igdisplay.graph.request") && log.contains("access_token=[redacted]"),
        "{log}"
    );
    for secret in &secrets {
        assert!(secret.len() >= 8, "{secret:?} is too short to be a canary");
        assert!(!log.contains(secret.as_str()), "a secret is in the trace");
    }
}
