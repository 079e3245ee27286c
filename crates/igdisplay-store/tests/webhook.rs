//! The webhook sender and its verifier, through the public API: retries with one delivery id,
//! both secrets of a rotation, final refusals, and every way a received webhook is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay_http::test_util::{ReplayBackend, json_response};
use igdisplay_http::{Clock as _, ManualClock, SharedBackend, TransportError, TransportErrorKind};
use igdisplay_model::{Timestamp, UserId};
use igdisplay_store::{
    DELIVERY_HEADER, EVENT_HEADER, Event, SIGNATURE_HEADER, WebhookError, WebhookSender, verify_webhook,
};
use std::sync::Arc;
use std::time::Duration;

const TOLERANCE: Duration = Duration::from_secs(300);

fn event() -> Event {
    Event::Revoked {
        user_id: UserId::new("1784"),
        at: Timestamp::from_unix(1_800_000_000),
    }
}

fn sender(backend: &ReplayBackend, clock: &ManualClock, secrets: &[&str]) -> WebhookSender {
    WebhookSender::new(
        "https://app.example/hooks",
        secrets.iter().copied(),
        Arc::new(backend.clone()),
    )
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
}

/// One delivery signed with `secret` at the clock's time: its signature header and body.
async fn signed(clock: &ManualClock, secret: &str) -> (String, Vec<u8>) {
    let backend = ReplayBackend::new([Ok(json_response(200, ""))]);
    sender(&backend, clock, &[secret])
        .deliver(&event())
        .await
        .unwrap();
    let sent = &backend.requests()[0];
    (
        sent.headers()[SIGNATURE_HEADER].to_str().unwrap().to_owned(),
        sent.body().to_vec(),
    )
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_with_the_same_delivery_id_and_both_secrets_sign() {
    let backend = ReplayBackend::new([
        Ok(json_response(503, "")),
        Err(TransportError::new(TransportErrorKind::Connect)),
        Ok(json_response(204, "")),
    ]);
    let clock = ManualClock::at_unix(1_800_000_000);
    sender(&backend, &clock, &["new-secret", "old-secret"])
        .deliver(&event())
        .await
        .unwrap();
    let sent = backend.requests();
    assert_eq!(sent.len(), 3);
    let ids: Vec<_> = sent
        .iter()
        .map(|r| r.headers()[DELIVERY_HEADER].clone())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]));
    assert_eq!(sent[0].headers()[EVENT_HEADER], "revoked");
    let last = &sent[2];
    let header = last.headers()[SIGNATURE_HEADER].to_str().unwrap();
    for secret in ["new-secret", "old-secret"] {
        verify_webhook(&[secret], header, last.body(), clock.now(), TOLERANCE).unwrap();
    }
}

#[tokio::test]
async fn a_final_refusal_is_not_retried() {
    let backend = ReplayBackend::new([Ok(json_response(400, ""))]);
    let clock = ManualClock::at_unix(1_800_000_000);
    let error = sender(&backend, &clock, &["s"])
        .deliver(&event())
        .await
        .unwrap_err();
    assert!(
        matches!(error, WebhookError::NotDelivered { attempts: 1, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_wrong_secret_an_altered_body_a_replay_and_junk_are_refused() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let (header, body) = signed(&clock, "secret").await;
    let now = clock.now();
    assert_eq!(
        verify_webhook(&["secret"], &header, &body, now, TOLERANCE),
        Ok(())
    );
    assert_eq!(
        verify_webhook(&["other"], &header, &body, now, TOLERANCE),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify_webhook(&["secret"], &header, b"{}", now, TOLERANCE),
        Err(WebhookError::BadSignature)
    );
    let later = now + Duration::from_secs(301);
    assert_eq!(
        verify_webhook(&["secret"], &header, &body, later, TOLERANCE),
        Err(WebhookError::Stale)
    );
    for junk in [
        "",
        "t=x,v1=00",
        "v1=zz",
        "t=1800000000",
        "t=1800000000,v1=\u{e9}\u{e9}",
    ] {
        assert!(
            verify_webhook(&["secret"], junk, &body, now, TOLERANCE).is_err(),
            "{junk:?}"
        );
    }
}

#[test]
fn a_sender_needs_a_secret_and_an_absolute_endpoint() {
    let backend: SharedBackend = Arc::new(ReplayBackend::new([]));
    assert_eq!(
        WebhookSender::new("https://a.example/h", Vec::<&str>::new(), backend.clone()).unwrap_err(),
        WebhookError::NoSecret
    );
    assert_eq!(
        WebhookSender::new("/relative", ["s"], backend).unwrap_err(),
        WebhookError::InvalidEndpoint
    );
}
