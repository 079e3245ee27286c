//! The outbox, each scenario on SQLite and on PostgreSQL: every event written with the state
//! change it reports, delivered signed, at least once and in order per account, retried with
//! backoff for three days then dead and sent again by hand, through a receiver down for hours
//! and a deliverer that dies mid-delivery; read by subscribers that lag without losing any;
//! pruned after its retention.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use igdisplay_http::test_util::{FnBackend, json_response};
use igdisplay_http::{
    Clock as _, HttpBackend, HttpRequest, HttpResponse, ManualClock, SharedBackend, TransportError,
};
use igdisplay_model::UserId;
use igdisplay_store::{
    Event, EventState, KeeperSettings, SeenEvents, SqlStore, WebhookSender, verify_webhook,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

mod common;
use common::{Db, ring};

const T0: u64 = 1_800_000_000;
const HOUR: Duration = Duration::from_secs(3600);

/// A store whose statements take their time from a manual clock.
async fn store(db: &Db) -> (SqlStore, ManualClock) {
    let clock = ManualClock::at_unix(T0);
    let store = db
        .open(ring("k1", 1))
        .await
        .with_pinned_time(Arc::new(clock.clone()));
    (store, clock)
}

/// A receiver recording what it accepts, refusing with 503 while `down`.
#[derive(Debug, Default)]
struct Receiver {
    down: AtomicBool,
    accepted: Mutex<Vec<HttpRequest>>,
    refused: Mutex<u64>,
}

#[async_trait::async_trait]
impl HttpBackend for Receiver {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if self.down.load(Ordering::SeqCst) {
            *self.refused.lock().unwrap() += 1;
            return Ok(json_response(503, "{}"));
        }
        self.accepted.lock().unwrap().push(request);
        Ok(json_response(200, "{}"))
    }
}

impl Receiver {
    /// The event ids accepted, in order, checked against the secret and the wall clock (the
    /// signature's time is the sender's real time).
    #[allow(
        clippy::disallowed_methods,
        reason = "a receiver checks signatures against its own clock"
    )]
    fn verified_ids(&self) -> Vec<i64> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|request| {
                verify_webhook(
                    &["whsec-old"],
                    request.headers(),
                    request.body(),
                    SystemTime::now(),
                    Duration::from_secs(300),
                )
                .unwrap()
                .event_id
            })
            .collect()
    }
}

fn sender(backend: SharedBackend) -> WebhookSender {
    WebhookSender::new("https://app.example/hooks", ["whsec-new", "whsec-old"], backend)
        .unwrap()
        .jitter_seed(3)
}

on_both!(
    every_state_change_writes_its_event_in_the_same_transaction,
    events_are_delivered_signed_and_in_order_per_account,
    a_failing_delivery_backs_off_holds_its_accounts_later_events_then_dies_and_is_resent,
    ten_thousand_events_survive_a_receiver_down_six_hours_and_a_deliverer_that_dies,
    a_subscriber_that_lags_loses_nothing,
    delivered_events_are_pruned_after_the_retention,
    metas_webhooks_are_kept_once_before_they_are_acknowledged_and_delivered_through_the_outbox,
    an_idle_keeper_delivers_an_event_this_process_writes_without_waiting_out_its_sleep,
);

async fn every_state_change_writes_its_event_in_the_same_transaction(db: Db) {
    let (store, _) = store(&db).await;
    let user = UserId::new("1784");
    use igdisplay_auth::TokenStore as _;
    store
        .save(&common::record("1784", "IGAAtoken", T0 - 86_400))
        .await
        .unwrap();
    assert!(store.mark_revoked(&user, "error 190").await.unwrap().is_some());
    assert!(store.deauthorize(&user).await.unwrap().is_some());
    assert!(store.deauthorize(&user).await.unwrap().is_none(), "once");
    store.delete_account(&user, "DEL-1").await.unwrap();
    let events = store.list_events(None, 0, 100).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds, ["revoked", "deauthorized", "deletion_requested"]);
    assert!(events.iter().all(|e| e.state == EventState::Pending));
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    assert!(
        matches!(&events[2].event, Event::DeletionRequested { confirmation_code, .. } if confirmation_code == "DEL-1")
    );
}

async fn events_are_delivered_signed_and_in_order_per_account(db: Db) {
    let (store, _) = store(&db).await;
    for n in 0..20 {
        let user = UserId::new(format!("user{}", n % 4));
        store.delete_account(&user, &format!("DEL-{n}")).await.unwrap();
    }
    let receiver = Arc::new(Receiver::default());
    let pass = sender(receiver.clone())
        .deliver_pending(&store, "one")
        .await
        .unwrap();
    assert_eq!((pass.delivered, pass.failed), (20, 0));
    let ids = receiver.verified_ids();
    let events: BTreeMap<i64, _> = store
        .list_events(None, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    // Per account, in the order they were written.
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for id in &ids {
        let user = events[id].event.user_id().as_str().to_owned();
        assert!(
            last.get(&user).is_none_or(|before| before < id),
            "{user}: {id} after {last:?}"
        );
        last.insert(user, *id);
    }
    assert!(events.values().all(|e| e.state == EventState::Delivered));
    // The body is the event, its type in a header.
    let (kind, body) = {
        let accepted = receiver.accepted.lock().unwrap();
        (
            accepted[0].headers()["igdisplay-event"].clone(),
            accepted[0].body().clone(),
        )
    };
    assert_eq!(kind, "deletion_requested");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["type"], "deletion_requested");
    assert_eq!(
        sender(receiver.clone())
            .deliver_pending(&store, "one")
            .await
            .unwrap()
            .delivered,
        0
    );
}

async fn a_failing_delivery_backs_off_holds_its_accounts_later_events_then_dies_and_is_resent(db: Db) {
    let (store, clock) = store(&db).await;
    let stuck = UserId::new("stuck");
    store.delete_account(&stuck, "DEL-1").await.unwrap();
    store.delete_account(&stuck, "DEL-2").await.unwrap();
    store
        .delete_account(&UserId::new("other"), "DEL-3")
        .await
        .unwrap();
    // The endpoint refuses the stuck account's events only.
    let attempts = Arc::new(Mutex::new(0u32));
    let seen = attempts.clone();
    let backend = FnBackend::new(move |request| {
        if String::from_utf8_lossy(request.body()).contains("\"stuck\"") {
            *seen.lock().unwrap() += 1;
            Ok(json_response(500, "{}"))
        } else {
            Ok(json_response(200, "{}"))
        }
    });
    let webhook = sender(Arc::new(backend));
    let pass = webhook.deliver_pending(&store, "one").await.unwrap();
    assert_eq!(
        (pass.delivered, pass.failed),
        (1, 1),
        "the other account is not held up"
    );
    assert_eq!(
        *attempts.lock().unwrap(),
        1,
        "the stuck account's second event waits its turn"
    );
    // Not again before the backoff; again after it.
    assert_eq!(webhook.deliver_pending(&store, "one").await.unwrap().failed, 0);
    clock.advance(Duration::from_secs(30));
    assert_eq!(webhook.deliver_pending(&store, "one").await.unwrap().failed, 1);
    // Three days of failures: the head event is dead, and the next one is tried.
    let mut dead = 0;
    for _ in 0..200 {
        clock.advance(HOUR);
        dead += webhook.deliver_pending(&store, "one").await.unwrap().dead;
        if clock.now() > SystemTime::UNIX_EPOCH + Duration::from_secs(T0) + 3 * 24 * HOUR + 2 * HOUR {
            break;
        }
    }
    assert_eq!(
        dead, 2,
        "both of the stuck account's events, after three days each"
    );
    let dead_events = store.list_events(Some(EventState::Dead), 0, 10).await.unwrap();
    assert_eq!(dead_events.len(), 2);
    assert!(dead_events[0].last_error.as_deref().unwrap().contains("500"));
    assert!(
        dead_events[0].attempts > 10,
        "retried with backoff: {}",
        dead_events[0].attempts
    );
    // Resent by hand once the endpoint is fixed.
    assert!(store.resend_event(dead_events[0].id).await.unwrap());
    assert!(!store.resend_event(999_999).await.unwrap());
    let fixed = sender(Arc::new(FnBackend::new(|_| Ok(json_response(200, "{}")))));
    assert_eq!(fixed.deliver_pending(&store, "one").await.unwrap().delivered, 1);
    assert_eq!(
        store
            .list_events(Some(EventState::Dead), 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Case: 10,000 events while the receiver is down for six hours, and one of two
/// deliverers dies mid-delivery (its task dropped, as a killed process would leave it: leases
/// held, nothing released). Every event arrives; none more than twice.
async fn ten_thousand_events_survive_a_receiver_down_six_hours_and_a_deliverer_that_dies(db: Db) {
    const EVENTS: usize = 10_000;
    let (store, clock) = store(&db).await;
    let receiver = Arc::new(Receiver::default());
    receiver.down.store(true, Ordering::SeqCst);
    // Produced while the receiver is down, and while both deliverers try.
    use futures_util::StreamExt as _;
    futures_util::stream::iter(0..EVENTS)
        .map(|n| {
            let store = store.clone();
            async move {
                store
                    .delete_account(&UserId::new(format!("user{}", n % 500)), "DEL")
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let webhook = sender(receiver.clone()).concurrency(16, 200);
    for _ in 0..6 {
        webhook.deliver_pending(&store, "a").await.unwrap();
        webhook.deliver_pending(&store, "b").await.unwrap();
        clock.advance(HOUR);
    }
    assert!(*receiver.refused.lock().unwrap() > 0);
    assert_eq!(
        store.stats().await.unwrap().pending_events,
        EVENTS as u64,
        "none given up yet"
    );
    // Back up; deliverer "a" dies in the middle of its first pass: its task is dropped at
    // whatever await it stands, its leases held.
    receiver.down.store(false, Ordering::SeqCst);
    let dying = tokio::spawn({
        let (webhook, store) = (webhook.clone(), store.clone());
        async move { webhook.deliver_pending(&store, "a").await }
    });
    while receiver.accepted.lock().unwrap().len() < 50 && !dying.is_finished() {
        tokio::task::yield_now().await;
    }
    dying.abort();
    let _ = dying.await;
    // "b" delivers the rest, and what "a" held once its leases run out.
    for _ in 0..50 {
        clock.advance(HOUR);
        webhook.deliver_pending(&store, "b").await.unwrap();
        if store.stats().await.unwrap().pending_events == 0 {
            break;
        }
    }
    let ids = receiver.verified_ids();
    let mut counts: BTreeMap<i64, u32> = BTreeMap::new();
    for id in &ids {
        *counts.entry(*id).or_default() += 1;
    }
    assert_eq!(counts.len(), EVENTS, "every event arrived");
    assert!(counts.values().all(|n| *n <= 2), "none more than twice");
    let twice = counts.values().filter(|n| **n == 2).count();
    eprintln!("{EVENTS} events, {twice} delivered twice (held by the deliverer that died)");
    // A receiver that keeps the ids it handled acts once per event.
    let mut seen = SeenEvents::new(EVENTS * 2);
    let acted = ids.iter().filter(|id| seen.first_time(**id)).count();
    assert_eq!(acted, EVENTS);
}

async fn a_subscriber_that_lags_loses_nothing(db: Db) {
    let (store, _) = store(&db).await;
    let mut early = store.events().subscribe().await.unwrap();
    for n in 0..3000 {
        store
            .delete_account(&UserId::new(format!("user{n}")), "DEL")
            .await
            .unwrap();
    }
    // Read long after: all of them, in order, none twice.
    let mut ids = Vec::new();
    while let Some(event) = early.try_next().await.unwrap() {
        ids.push(event.id);
    }
    assert_eq!(ids.len(), 3000);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    // A subscription resumes after the last id it handled.
    let mut resumed = store.events().subscribe_after(ids[2499]);
    let mut rest = 0;
    while resumed.try_next().await.unwrap().is_some() {
        rest += 1;
    }
    assert_eq!(rest, 500);
    // And waits for the next one.
    let waiting = tokio::spawn(async move { early.next().await.unwrap().event });
    store.delete_account(&UserId::new("late"), "DEL").await.unwrap();
    let event = waiting.await.unwrap();
    assert_eq!(event.user_id().as_str(), "late");
}

/// A keeper's pruning after the retention: delivered events, and with them tombstones, Meta's
/// delivery hashes, and connect links used or expired.
async fn delivered_events_are_pruned_after_the_retention(db: Db) {
    let (store, clock) = store(&db).await;
    store.delete_account(&UserId::new("a"), "DEL").await.unwrap();
    // A feed's connect links: one used, one left to expire, one made later (still good).
    let feed = store.create_feed("x", "{}").await.unwrap();
    let used = store.add_connect_link(&feed.id, HOUR).await.unwrap().unwrap();
    let login = common::record("b", "IGAAlogin", T0);
    store.redeem_connect_link(&used, &login).await.unwrap();
    store.add_connect_link(&feed.id, HOUR).await.unwrap().unwrap();
    // A delivery of Meta's kept (its hash, and an event to deliver).
    let receiver =
        igdisplay_auth::webhooks::WebhookReceiver::new("v", igdisplay_model::AppSecret::new("app-secret"))
            .unwrap();
    let meta = br#"{"object":"instagram","entry":[]}"#;
    assert_eq!(deliver(&receiver, &store, meta).await, 200);
    let pass = sender(Arc::new(FnBackend::new(|_| Ok(json_response(200, "{}")))))
        .deliver_pending(&store, "one")
        .await
        .unwrap();
    assert_eq!(pass.delivered, 1);
    // A keeper prunes each cycle: nothing yet.
    let app = igdisplay_auth::AppConfig::read_only(igdisplay_auth::Platform::InstagramLogin);
    let client =
        igdisplay_auth::AuthClient::new(app, Arc::new(FnBackend::new(|_| Ok(json_response(500, "{}")))));
    let keeper = igdisplay_store::Keeper::builder(store.clone(), client)
        .settings(KeeperSettings::default().retention(7 * 24 * HOUR))
        .build();
    keeper.run_once().await.unwrap();
    assert_eq!(store.list_events(None, 0, 10).await.unwrap().len(), 1);
    clock.advance(7 * 24 * HOUR + HOUR);
    let fresh = store
        .add_connect_link(&feed.id, 7 * 24 * HOUR)
        .await
        .unwrap()
        .unwrap();
    keeper.run_once().await.unwrap();
    assert!(store.list_events(None, 0, 10).await.unwrap().is_empty());
    let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM connect_links")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        links, 1,
        "the used and the expired links went; the good one stays"
    );
    assert!(matches!(
        store.connect_link(&fresh).await.unwrap(),
        igdisplay_store::LinkState::Valid { .. }
    ));
    // The tombstone went with it: its id and time were all it kept.
    let tombstones: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deleted_accounts")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(tombstones, 0);
    let hashes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound_webhooks")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(hashes, 0, "a delivery's hash went with its retention");
}

/// Reference C.5: a verified delivery of Meta's is kept (its entries in the outbox) before it
/// is acknowledged; the same delivery again is kept once; a store that cannot keep it answers
/// 500, and Meta's next attempt (after a restart) loses nothing; the outbox delivers the
/// notification to the application.
async fn metas_webhooks_are_kept_once_before_they_are_acknowledged_and_delivered_through_the_outbox(db: Db) {
    use igdisplay_auth::webhooks::WebhookReceiver;
    use igdisplay_model::{AppSecret, WebhookChange};
    let (store, _) = store(&db).await;
    let receiver = WebhookReceiver::new("verify", AppSecret::new("app-secret")).unwrap();
    let body = br#"{"object":"instagram","entry":[
        {"id":"17841400000000001","time":1800000000,"changes":[{"field":"comments","value":{"id":"18000000000000001","text":"Lovely"}}]},
        {"id":"17841400000000002","time":1800000000,"changes":[{"field":"mentions","value":{"media_id":"17900000000000001"}}]}]}"#;
    assert_eq!(deliver(&receiver, &store, body).await, 200);
    assert_eq!(
        deliver(&receiver, &store, body).await,
        200,
        "a replay is acknowledged"
    );
    let events = store.list_events(None, 0, 100).await.unwrap();
    assert_eq!(
        events.len(),
        2,
        "one event per entry, and the replay kept nothing"
    );
    let Event::InstagramNotification { user_id, entry, .. } = &events[0].event else {
        panic!("{:?}", events[0].event)
    };
    assert_eq!(user_id.as_str(), "17841400000000001");
    assert!(matches!(&entry.changes[0], WebhookChange::Comments(c) if c.text.as_deref() == Some("Lovely")));
    assert!(!events[0].event.changes_state());

    // A store that cannot keep it: 500, so Meta delivers it again; after the "restart", the
    // second attempt is kept.
    let other = br#"{"object":"instagram","entry":[{"id":"17841400000000003","time":1800000001,"changes":[{"field":"mentions","value":{"media_id":"1"}}]}]}"#;
    sqlx::query("DROP TABLE inbound_webhooks")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(deliver(&receiver, &store, other).await, 500);
    assert_eq!(
        store.list_events(None, 0, 100).await.unwrap().len(),
        2,
        "nothing half-written"
    );
    sqlx::query(
        "CREATE TABLE inbound_webhooks (hash TEXT PRIMARY KEY NOT NULL, received_at BIGINT NOT NULL)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(deliver(&receiver, &store, other).await, 200);
    assert_eq!(store.list_events(None, 0, 100).await.unwrap().len(), 3);

    let receiving = Arc::new(Receiver::default());
    let webhook = WebhookSender::new("https://app.example/hooks", ["whsec"], receiving.clone()).unwrap();
    let pass = webhook.deliver_pending(&store, "instance-1").await.unwrap();
    assert_eq!(pass.delivered, 3);
    let first = receiving.accepted.lock().unwrap()[0].body().clone();
    let sent: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(sent["type"], "instagram_notification");
    assert_eq!(
        sent["entry"]["changes"][0]["value"]["text"], "Lovely",
        "the notification as Meta sent it"
    );
}

/// Delivers `body` to `receiver`, signed as Meta signs it, kept in `store`: the status answered.
async fn deliver(receiver: &igdisplay_auth::webhooks::WebhookReceiver, store: &SqlStore, body: &[u8]) -> u16 {
    use igdisplay_auth::webhooks::{HUB_SIGNATURE_HEADER, sign_webhook};
    let mut headers = igdisplay_http::http::HeaderMap::new();
    let signature = sign_webhook(&igdisplay_model::AppSecret::new("app-secret"), body);
    headers.insert(HUB_SIGNATURE_HEADER, signature.parse().unwrap());
    receiver
        .receive(&igdisplay_http::http::Method::POST, None, &headers, body, store)
        .await
        .status
}

/// A clock whose sleeps never end and say when one begins: a keeper on it is asleep for good
/// unless something wakes it.
#[derive(Debug, Default)]
struct Asleep {
    began: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl igdisplay_http::Clock for Asleep {
    fn now(&self) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(T0)
    }

    async fn sleep(&self, _: Duration) {
        self.began.notify_one();
        std::future::pending::<()>().await;
    }

    async fn timer(&self, duration: Duration) {
        self.sleep(duration).await;
    }
}

/// A keeper with a webhook, asleep (its clock's sleeps never end), delivers an event the
/// moment this process writes one (a feed's `needs_login`, a callback's).
#[allow(
    clippy::disallowed_methods,
    reason = "a guard against a hang when the keeper is not woken, not a wait the scenario needs"
)]
async fn an_idle_keeper_delivers_an_event_this_process_writes_without_waiting_out_its_sleep(db: Db) {
    use igdisplay_auth::{AppConfig, AuthClient};
    let (store, _) = store(&db).await;
    let receiver = Arc::new(Receiver::default());
    let client = AuthClient::new(
        AppConfig::read_only(igdisplay_model::Platform::InstagramLogin),
        receiver.clone(),
    );
    let clock = Arc::new(Asleep::default());
    let keeper = igdisplay_store::Keeper::builder(store.clone(), client)
        .clock(clock.clone())
        .webhook(sender(receiver.clone()))
        .build();
    let running = tokio::spawn({
        let keeper = keeper.clone();
        async move { keeper.run(std::future::pending()).await }
    });
    clock.began.notified().await;
    assert!(receiver.verified_ids().is_empty(), "nothing to deliver yet");
    store.delete_account(&UserId::new("1784"), "DEL-1").await.unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if !receiver.verified_ids().is_empty() {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(delivered.is_ok(), "the event waited out the keeper's sleep");
    keeper.stop();
    running.await.unwrap().unwrap();
}
