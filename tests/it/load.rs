//! Reliability case 71 through the client: many requests at once over one `Instagram` all
//! succeed, one request each, and its backend reuses its connections, on each backend.

use crate::{cases, login};
use igdisplay::Instagram;
use igdisplay::mock::MockServer;
use igdisplay::model::{Platform, UserId};

/// Requests in flight at once.
const TASKS: usize = 32;
/// Requests each.
const EACH: usize = 40;

/// `TASKS` tasks sending `EACH` requests each through `instagram`, all at once: the requests
/// and the connections the mock saw meanwhile.
async fn round(mock: &MockServer, instagram: &Instagram, user: &UserId) -> (u64, u64) {
    let (connections, requests) = (mock.connections_total(), mock.requests_total());
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let graph = instagram.graph(user);
            tokio::spawn(async move {
                for _ in 0..EACH {
                    let me = graph.me().send().await?;
                    assert_eq!(me.username.as_deref(), Some("jayposiris"));
                }
                Ok::<_, igdisplay::graph::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    (
        mock.requests_total() - requests,
        mock.connections_total() - connections,
    )
}

/// The first round opens the connections (hyper-util's pool, under both backends, may open
/// one while a request waits for another to come back, so up to twice as many as run at
/// once); the second round, as many at once, finds them all idle and opens none: a client
/// that opened a connection per request, or dropped them after use, fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_at_once_through_the_client_succeed_and_reuse_their_connections() {
    for case in cases()
        .into_iter()
        .filter(|case| case.platform == Platform::InstagramLogin)
    {
        let mock = case.mock_with(|builder| builder.calls_per_hour(None));
        let instagram = case.client(&mock);
        let user = login(&mock, &instagram, "jayposiris").await.user_id;
        let (sent, opened) = round(&mock, &instagram, &user).await;
        assert_eq!(
            sent,
            (TASKS * EACH) as u64,
            "{case:?}: one request each, none retried"
        );
        assert!(
            (1..=2 * TASKS as u64).contains(&opened),
            "{case:?}: {opened} connections for {sent} requests, {TASKS} at a time"
        );
        let (sent, opened) = round(&mock, &instagram, &user).await;
        assert_eq!(sent, (TASKS * EACH) as u64, "{case:?}");
        assert_eq!(
            opened, 0,
            "{case:?}: the second round reuses the first one's connections"
        );
    }
}
