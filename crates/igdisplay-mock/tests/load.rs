//! Case 71 of the reliability list: the mock under load. 10,000 Graph requests over 64
//! keep-alive connections at once: every one answered 200, and once the clients are gone the
//! process holds no more file descriptors than before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay_mock::{MockPlatform, MockServer, TokenLifetime};

const REQUESTS: usize = 10_000;
const CONNECTIONS: usize = 64;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_over_64_connections_all_succeed_and_leak_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mock = MockServer::builder()
        .platform(MockPlatform::InstagramLogin)
        .calls_per_hour(None)
        .start()
        .unwrap();
    let token = mock
        .issue_token("cafe_nova", TokenLifetime::LongLived)
        .unwrap()
        .access_token;
    let url = format!("{}/me?fields=id,username&access_token={token}", mock.base_url());
    let baseline = open_descriptors();

    let workers = (0..CONNECTIONS).map(|worker| {
        let url = url.clone();
        // Each worker its own client holding one connection, kept alive between requests.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let share = REQUESTS / CONNECTIONS + usize::from(worker < REQUESTS % CONNECTIONS);
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..share {
                match client.get(&url).send().await {
                    Ok(response) if response.status() == 200 => {
                        let body = response.bytes().await.unwrap();
                        assert!(body.starts_with(b"{\"id\":"), "{body:?}");
                    }
                    Ok(response) => failures.push(format!("status {}", response.status())),
                    Err(error) => failures.push(error.to_string()),
                }
            }
            (share, failures, client)
        })
    });
    let mut answered = 0;
    let mut failures = Vec::new();
    let mut clients = Vec::new();
    for worker in workers.collect::<Vec<_>>() {
        let (share, failed, client) = worker.await.unwrap();
        answered += share;
        failures.extend(failed);
        clients.push(client);
    }
    assert_eq!(answered, REQUESTS);
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(mock.requests_total() >= REQUESTS as u64);

    // While the clients live, both ends of their 64 connections are open in this process.
    let during = open_descriptors();
    assert!(
        during >= baseline + 2 * CONNECTIONS,
        "{during} open during the load, {baseline} before"
    );
    // Once they are dropped the server must close its side too.
    drop(clients);
    // Polled, never slept on: the count is read until it is back or the attempts run out.
    let mut now = open_descriptors();
    for _ in 0..1_000_000 {
        if now <= baseline {
            break;
        }
        std::thread::yield_now();
        now = open_descriptors();
    }
    assert!(
        now <= baseline,
        "{now} descriptors open, {baseline} before the load"
    );
}
