//! Meta's webhooks end to end: the mock notifies a new comment, signed, to a receiver that
//! keeps it in a store before acknowledging; a receiver that fails once is delivered to again
//! and loses nothing.

use crate::cases;
use igdisplay::auth::scopes::Scope;
use igdisplay::auth::webhooks::{VerifiedDelivery, WebhookReceiver, WebhookSink};
use igdisplay::graph::{MediaField, WebhookField};
use igdisplay::http::{HttpBackend as _, HttpRequest, ReqwestBackend, http};
use igdisplay::model::{AppSecret, Platform, WebhookChange};
use igdisplay::store::{Event, Key, KeyRing, SqlStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A sink over a store that fails its first `failures` deliveries, as a receiver that was
/// restarted mid-delivery (nothing kept, no 200).
struct Flaky {
    store: SqlStore,
    failures: AtomicU32,
}

#[async_trait::async_trait]
impl WebhookSink for Flaky {
    async fn keep(&self, delivery: &VerifiedDelivery) -> Result<(), igdisplay::http::BoxError> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
            .is_ok();
        if failing {
            return Err("restarting".into());
        }
        self.store.keep(delivery).await
    }
}

/// Serves `receiver` over plain HTTP/1.1 on loopback, one request a connection; its URL.
async fn serve(receiver: WebhookReceiver, sink: Arc<Flaky>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (receiver, sink) = (receiver.clone(), sink.clone());
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = stream.read(&mut chunk).await.unwrap();
                    buffer.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        break (end + 4, length);
                    }
                };
                while buffer.len() < head_end + length {
                    let n = stream.read(&mut chunk).await.unwrap();
                    buffer.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
                let mut headers = http::HeaderMap::new();
                for line in head.lines().skip(1) {
                    if let Some((name, value)) = line.split_once(':')
                        && let (Ok(name), Ok(value)) = (
                            http::HeaderName::try_from(name.trim()),
                            http::HeaderValue::try_from(value.trim()),
                        )
                    {
                        headers.insert(name, value);
                    }
                }
                let body = &buffer[head_end..head_end + length];
                let answer = receiver
                    .receive(&http::Method::POST, None, &headers, body, &*sink)
                    .await;
                let response = format!(
                    "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                    answer.status,
                    answer.body.len(),
                    answer.body
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn a_new_comment_is_notified_signed_and_kept_once_the_receiver_is_back() {
    let case = cases()
        .into_iter()
        .find(|c| c.platform == Platform::InstagramLogin)
        .unwrap();
    let mock = case.mock();
    let instagram = case.client(&mock);
    let token = crate::login_granting(
        &mock,
        &instagram,
        "cafe_nova",
        &[Scope::InstagramBusinessManageComments],
    )
    .await;
    let graph = instagram.graph(&token.user_id);
    graph.subscribe(&[WebhookField::Comments]).send().await.unwrap();
    let post = graph
        .my_media()
        .fields(&[MediaField::Id])
        .send()
        .await
        .unwrap()
        .items[0]
        .id
        .clone();

    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::sqlite(
        &dir.path().join("hooks.db"),
        KeyRing::new(Key::generate("k1").unwrap()),
    )
    .await
    .unwrap();
    let sink = Arc::new(Flaky {
        store: store.clone(),
        failures: AtomicU32::new(1),
    });
    let receiver = WebhookReceiver::new("verify", AppSecret::new(mock.app().secret)).unwrap();
    mock.set_webhook_callback(Some(&serve(receiver, sink).await));

    let body =
        serde_json::json!({"media_id": post.as_str(), "text": "Is this open on Sundays?", "username": "ana"});
    let mut request = HttpRequest::new(igdisplay::http::bytes::Bytes::from(body.to_string()));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = format!("{}/_mock/comments", mock.base_url()).parse().unwrap();
    let response = ReqwestBackend::new().unwrap().send(request).await.unwrap();
    let added: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(added["delivered"], true, "{added}");
    assert_eq!(
        added["attempts"], 2,
        "the first was not kept, so not acknowledged: {added}"
    );
    let events = store.list_events(None, 0, 10).await.unwrap();
    assert_eq!(events.len(), 1, "kept once");
    let Event::InstagramNotification { entry, .. } = &events[0].event else {
        panic!("{:?}", events[0].event)
    };
    assert!(matches!(&entry.changes[0], WebhookChange::Comments(c)
        if c.text.as_deref() == Some("Is this open on Sundays?") && c.id.as_str() == added["id"]));
}
