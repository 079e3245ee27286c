//! The mirror against the mock with a moving clock: a first sync in one call per page, new,
//! deleted and edited posts, links that expired (before and during a sync), Instagram down, a
//! revoked token, and hostile ids.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay_graph::{GraphClient, GraphEndpoint};
use igdisplay_http::{HttpBackend, HttpRequest, HttpResponse, HyperBackend, SharedBackend, TransportError};
use igdisplay_mirror::{
    BlobStore, DownloadPolicy, Downloader, FeedItem, FeedStatus, FsBlobStore, Mirror, SyncError, SyncReport,
};
use igdisplay_mock::{
    Fault, FaultKind, MockClock, MockServer, Seed, SeedKind, SeedMedia, Stub, TokenLifetime,
};
use igdisplay_model::{AccessToken, Platform, UserId};
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// A mock with `bulk`, an account of `count` posts (every 5th an album of 3), a client acting
/// as it, and a mirror into a temporary folder.
struct Site {
    mock: MockServer,
    graph: GraphClient,
    user: UserId,
    blobs: Arc<FsBlobStore>,
    mirror: Mirror,
    dir: tempfile::TempDir,
}

fn site_with(count: usize, backend: impl Fn(SharedBackend, &MockServer) -> SharedBackend) -> Site {
    site_of(
        "bulk",
        Seed::demo().with_generated_user("bulk", count, 5),
        backend,
    )
}

/// A mock of `seed`, a client acting as `username`, and a mirror into a temporary folder.
fn site_of(
    username: &str,
    seed: Seed,
    backend: impl Fn(SharedBackend, &MockServer) -> SharedBackend,
) -> Site {
    let mock = MockServer::builder()
        .calls_per_hour(None)
        .clock(MockClock::Frozen(1_800_000_000))
        .seed(seed)
        .start()
        .unwrap();
    site_on(mock, username, backend)
}

/// A client of `mock` acting as `username`, and a mirror into a temporary folder.
fn site_on(
    mock: MockServer,
    username: &str,
    backend: impl Fn(SharedBackend, &MockServer) -> SharedBackend,
) -> Site {
    let token = mock.issue_token(username, TokenLifetime::LongLived).unwrap();
    let http: SharedBackend = Arc::new(HyperBackend::new().unwrap());
    let backend = backend(http, &mock);
    let graph = GraphClient::with_token(
        backend.clone(),
        GraphEndpoint::new(Platform::InstagramLogin).base_url(mock.base_url()),
        AccessToken::new(token.access_token),
    );
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(FsBlobStore::new(dir.path()));
    let mirror = Mirror::new(blobs.clone(), downloader(backend, &mock));
    Site {
        user: UserId::new(token.user_id),
        mock,
        graph,
        blobs,
        mirror,
        dir,
    }
}

fn site(count: usize) -> Site {
    site_with(count, |backend, _| backend)
}

/// Downloads from Instagram's CDN and `mock`'s origin, through `backend`.
fn downloader(backend: SharedBackend, mock: &MockServer) -> Downloader {
    Downloader::new(backend, DownloadPolicy::instagram().allow_origin(mock.base_url()))
}

impl Site {
    fn listings(&self) -> usize {
        self.mock
            .journal()
            .iter()
            .filter(|e| e.path.ends_with("/media") && e.method == "GET")
            .count()
    }

    /// A first sync; then the post at `index` of its feed deleted and a new post published
    /// on top, and a second sync: the deleted post and that sync's report.
    async fn delete_under_a_new_post(&self, index: usize) -> (FeedItem, SyncReport) {
        self.mirror.sync(&self.user, &self.graph).await.unwrap();
        let before = self.mirror.feed(&self.user).await.unwrap().unwrap();
        let gone = before.items[index].clone();
        self.mock.delete_media(&gone.id).unwrap();
        self.mock
            .publish("bulk", &SeedMedia::new(SeedKind::Image, Some("New")))
            .unwrap();
        let report = self.mirror.sync(&self.user, &self.graph).await.unwrap();
        (gone, report)
    }

    /// `gone`'s files are deleted, and every file left under `media/` is one the feed uses.
    async fn assert_gone_and_nothing_left(&self, gone: &FeedItem) {
        for key in gone.image.as_ref().unwrap().keys() {
            assert!(!self.blobs.exists(&key).await.unwrap(), "{key}");
        }
        let used = self.every_file_exists().await;
        assert_eq!(
            files_under(&self.dir.path().join("media")),
            used,
            "no file left behind"
        );
    }

    async fn every_file_exists(&self) -> usize {
        let feed = self.mirror.feed(&self.user).await.unwrap().unwrap();
        let mut files = 0;
        for item in feed
            .items
            .iter()
            .flat_map(|i| std::iter::once(i).chain(&i.children))
        {
            let keys = item
                .image
                .iter()
                .flat_map(|image| image.keys())
                .chain(item.video.iter().map(|video| video.key.clone()));
            for key in keys {
                assert!(self.blobs.exists(&key).await.unwrap(), "{key}");
                files += 1;
            }
        }
        files
    }
}

#[tokio::test]
async fn a_first_sync_mirrors_every_item_with_variants_in_one_request_per_page() {
    let site = site(250);
    let report = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!(report.items, 250);
    assert_eq!(report.graph_calls, 3, "250 posts: 3 pages of 100");
    assert_eq!(site.listings(), 3, "album items came with their page");
    assert_eq!(report.unavailable, 0);
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert_eq!(feed.status, FeedStatus::Fresh);
    assert!(feed.items.iter().all(|item| item.is_available()));
    let photo = feed.items.iter().find(|i| i.media_type == "IMAGE").unwrap();
    assert_eq!(
        photo.alt.as_deref(),
        Some("Photo by @bulk"),
        "Instagram's alt_text first"
    );
    let album = feed
        .items
        .iter()
        .find(|i| i.media_type == "CAROUSEL_ALBUM")
        .unwrap();
    assert_eq!(album.children.len(), 3);
    let image = album.cover().unwrap();
    assert!(image.color.starts_with('#') && image.color.len() == 7);
    for variant in &image.variants {
        assert!(variant.width < image.width && variant.height > 0);
    }
    assert!(site.every_file_exists().await >= 250);
}

#[tokio::test]
async fn new_deleted_and_edited_posts_show_after_the_next_sync_and_nothing_is_downloaded_twice() {
    let site = site(12);
    let first = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let before = site.mirror.feed(&site.user).await.unwrap().unwrap();
    let gone = before.items[3].clone();
    let edited = before.items[5].id.clone();

    let new = site
        .mock
        .publish("bulk", &SeedMedia::new(SeedKind::Image, Some("Just posted")))
        .unwrap();
    site.mock.delete_media(&gone.id).unwrap();
    site.mock.edit_caption(&edited, Some("Edited caption")).unwrap();

    let second = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!((second.items, second.removed), (12, 1));
    assert_eq!(
        second.downloaded, 1,
        "only the new post: {second:?} after {first:?}"
    );
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert_eq!(feed.items[0].id, new);
    assert_eq!(feed.items[0].caption.as_deref(), Some("Just posted"));
    assert!(feed.items.iter().all(|i| i.id != gone.id));
    let caption = feed
        .items
        .iter()
        .find(|i| i.id == edited)
        .unwrap()
        .caption
        .clone();
    assert_eq!(caption.as_deref(), Some("Edited caption"));
    for key in gone.image.as_ref().unwrap().keys() {
        assert!(
            !site.blobs.exists(&key).await.unwrap(),
            "the deleted post's {key} is gone"
        );
    }
    site.every_file_exists().await;
}

#[tokio::test]
async fn a_library_is_stored_in_pages_of_100_and_read_a_page_at_a_time() {
    let site = site(250);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let index = site.mirror.index(&site.user).await.unwrap().unwrap();
    let sizes: Vec<usize> = index.pages.iter().map(|p| p.items).collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!((index.items, index.available), (250, 250));
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();

    let window = site.mirror.available(&index, 95, 10).await.unwrap();
    let ids: Vec<&str> = window.iter().map(|i| i.id.as_str()).collect();
    let expected: Vec<&str> = feed.items[95..105].iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, expected, "across the first two pages");
    assert!(site.mirror.available(&index, 250, 10).await.unwrap().is_empty());
    let last = &feed.items[240];
    assert_eq!(
        site.mirror.find(&index, &last.id).await.unwrap().as_ref(),
        Some(last)
    );
    assert_eq!(site.mirror.find(&index, "404").await.unwrap(), None);
}

#[tokio::test]
async fn a_post_deleted_deep_in_the_library_goes_and_nothing_else_is_downloaded() {
    let site = site(250);
    let (gone, report) = site.delete_under_a_new_post(230).await;
    assert_eq!(
        (report.items, report.removed, report.downloaded),
        (250, 1, 1),
        "{report:?}"
    );
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert!(feed.items.iter().all(|i| i.id != gone.id));
    site.assert_gone_and_nothing_left(&gone).await;
}

#[tokio::test]
async fn with_a_new_post_on_top_a_post_deleted_on_the_second_page_still_goes() {
    let site = site(250);
    let (gone, report) = site.delete_under_a_new_post(150).await;
    assert_eq!((report.removed, report.downloaded), (1, 1), "{report:?}");
    site.assert_gone_and_nothing_left(&gone).await;
}

/// The files under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| if path.is_dir() { files_under(&path) } else { 1 })
        .sum()
}

#[tokio::test]
async fn a_replaced_feeds_pages_stay_for_one_more_sync_then_go() {
    let site = site(150);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let first = site.mirror.index(&site.user).await.unwrap().unwrap();
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let second = site.mirror.index(&site.user).await.unwrap().unwrap();
    assert_ne!(first.pages, second.pages, "a sync writes pages of its own");
    for page in &first.pages {
        assert!(
            site.blobs.exists(&page.key).await.unwrap(),
            "a reader holding the first index still finds {}",
            page.key
        );
    }
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    for page in &first.pages {
        assert!(
            !site.blobs.exists(&page.key).await.unwrap(),
            "{} is deleted",
            page.key
        );
    }
    for page in &second.pages {
        assert!(
            site.blobs.exists(&page.key).await.unwrap(),
            "{} stays a sync more",
            page.key
        );
    }
    let folders = std::fs::read_dir(site.dir.path().join("feeds").join(site.user.as_str()))
        .unwrap()
        .count();
    assert_eq!(
        folders, 2,
        "the emptied folder of the first sync's pages is gone too"
    );
}

#[tokio::test]
async fn thirty_days_later_every_link_has_expired_and_every_image_is_still_mirrored() {
    let site = site(30);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    site.mock.advance(30 * DAY);
    let later = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!((later.downloaded, later.unavailable), (0, 0));
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    let videos = feed
        .items
        .iter()
        .flat_map(|i| std::iter::once(i).chain(&i.children))
        .filter(|i| i.video.is_some())
        .count();
    assert!(videos >= 6, "each album's video, at least");
    assert_eq!(
        later.reused,
        later.items + 6 * 3 - 6 + videos,
        "every post's and album item's picture reused, and every video"
    );
    site.every_file_exists().await;
}

/// Refuses every listing after the first page (a request with a cursor) with a Graph error
/// that is not retried.
#[derive(Debug)]
struct FailAfterFirstPage {
    inner: SharedBackend,
}

#[async_trait::async_trait]
impl HttpBackend for FailAfterFirstPage {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if request.uri().query().is_some_and(|q| q.contains("after=")) {
            let body =
                r#"{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100}}"#;
            return Ok(igdisplay_http::http::Response::builder()
                .status(400)
                .body(bytes::Bytes::from_static(body.as_bytes()))
                .unwrap());
        }
        self.inner.send(request).await
    }
}

#[tokio::test]
async fn a_listing_that_fails_on_a_later_page_keeps_the_last_feed_and_leaves_no_page_behind() {
    let site = site(150);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let before = site.mirror.index(&site.user).await.unwrap().unwrap();
    let failing = Mirror::new(
        site.blobs.clone(),
        downloader(
            Arc::new(FailAfterFirstPage {
                inner: Arc::new(HyperBackend::new().unwrap()),
            }),
            &site.mock,
        ),
    );
    let graph = GraphClient::with_token(
        Arc::new(FailAfterFirstPage {
            inner: Arc::new(HyperBackend::new().unwrap()),
        }),
        site.graph.endpoint().clone(),
        AccessToken::new(
            site.mock
                .issue_token("bulk", TokenLifetime::LongLived)
                .unwrap()
                .access_token,
        ),
    );
    let error = failing.sync(&site.user, &graph).await.unwrap_err();
    assert!(matches!(error, SyncError::Listing { kept: 150, .. }), "{error:?}");
    let after = site.mirror.index(&site.user).await.unwrap().unwrap();
    assert_eq!(after.pages, before.pages, "the last good pages");
    assert!(matches!(after.status, FeedStatus::Stale { .. }));
    let pages = files_under(&site.dir.path().join("feeds").join(site.user.as_str()));
    assert_eq!(
        pages,
        before.pages.len(),
        "the failed sync's first page is deleted"
    );
}

/// Moves the mock's clock 30 days ahead just before the first CDN download: every link the
/// listing just gave has expired by the time it is fetched.
#[derive(Debug)]
struct ExpireBeforeFirstDownload {
    inner: SharedBackend,
    mock_time: igdisplay_mock::MockTime,
    done: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl HttpBackend for ExpireBeforeFirstDownload {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if request.uri().path().starts_with("/cdn/")
            && !self.done.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.mock_time.advance(30 * DAY);
        }
        self.inner.send(request).await
    }
}

#[tokio::test]
async fn links_that_expire_during_a_sync_are_repaired_by_listing_the_page_again() {
    let site = site_with(8, |inner, mock| {
        Arc::new(ExpireBeforeFirstDownload {
            inner,
            mock_time: mock.time(),
            done: std::sync::atomic::AtomicBool::new(false),
        })
    });
    let report = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!(report.repaired, 1);
    assert_eq!(
        report.graph_calls, 2,
        "the one page, listed once more: never one call per item"
    );
    assert_eq!(report.unavailable, 0);
    site.every_file_exists().await;
}

#[tokio::test]
async fn instagram_down_keeps_the_last_good_feed_and_says_why_until_it_is_back() {
    let site = site(10);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    site.mock
        .add_fault(Fault::new("/me/media", FaultKind::Status { status: 500 }));
    let error = site.mirror.sync(&site.user, &site.graph).await.unwrap_err();
    assert!(matches!(error, SyncError::Listing { kept: 10, .. }), "{error:?}");
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert_eq!(feed.items.len(), 10, "never an empty feed");
    let FeedStatus::Stale {
        needs_login, reason, ..
    } = &feed.status
    else {
        panic!("{:?}", feed.status);
    };
    assert!(!needs_login && !reason.is_empty());
    site.every_file_exists().await;

    site.mock.clear_faults();
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert_eq!(feed.status, FeedStatus::Fresh);
}

#[tokio::test]
async fn a_revoked_token_keeps_the_last_good_feed_and_stops_the_polling() {
    let site = site(10);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    site.mock.revoke_tokens("bulk").unwrap();
    let error = site.mirror.sync(&site.user, &site.graph).await.unwrap_err();
    let SyncError::Listing { kept, source } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*kept, 10);
    assert!(source.requires_login());
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    let FeedStatus::Stale {
        needs_login: true,
        since,
        ..
    } = feed.status
    else {
        panic!("{:?}", feed.status);
    };
    assert!(
        feed.next_poll_at.unix() >= since.unix() + 86_400,
        "polled again after a day at the soonest"
    );
}

#[tokio::test]
async fn a_first_sync_that_fails_writes_an_empty_feed_that_says_so() {
    let site = site(3);
    site.mock
        .add_fault(Fault::new("/me/media", FaultKind::Status { status: 503 }));
    site.mirror.sync(&site.user, &site.graph).await.unwrap_err();
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert!(feed.items.is_empty());
    assert!(
        matches!(feed.status, FeedStatus::Stale { .. }),
        "not silently empty"
    );
}

#[tokio::test]
async fn a_listing_whose_cursor_repeats_ends_and_keeps_the_last_good_feed() {
    let site = site(10);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let listed = site.listings();
    let image = site.mirror.feed(&site.user).await.unwrap().unwrap().items[0]
        .id
        .clone();
    // Every page names the same next cursor: a sync that trusts it never ends.
    site.mock.stub(Stub::json(
        "GET",
        "/me/media",
        200,
        serde_json::json!({
            "data": [{"id": image, "media_type": "IMAGE"}],
            "paging": {"cursors": {"after": "LOOP"}, "next": format!("{}/me/media?after=LOOP", site.mock.base_url())},
        }),
    ));
    let error = site.mirror.sync(&site.user, &site.graph).await.unwrap_err();
    assert!(matches!(error, SyncError::Listing { kept: 10, .. }), "{error:?}");
    assert_eq!(
        site.listings() - listed,
        2,
        "the repeated cursor is caught on its second page"
    );
    assert_eq!(
        site.mirror.feed(&site.user).await.unwrap().unwrap().items.len(),
        10
    );
}

#[tokio::test]
async fn hostile_ids_and_links_never_escape_the_store() {
    let site = site(1);
    site.mock.stub(Stub::json(
        "GET",
        "/me/media",
        200,
        serde_json::json!({"data": [
            {"id": "../../escape", "media_type": "IMAGE", "media_url": format!("{}/cdn/v/x.jpg", site.mock.base_url())},
            {"id": "1790000000000000001", "media_type": "IMAGE", "media_url": "not a url"},
            {"id": "1790000000000000002", "media_type": "IMAGE"},
        ]}),
    ));
    let report = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!((report.items, report.unavailable, report.downloaded), (3, 3, 0));
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert!(feed.items.iter().all(|i| !i.is_available()));
    assert!(!site.blobs.root().parent().unwrap().join("escape").exists());
}

/// A listener that counts the connections made to it and answers each with a small PNG.
async fn counting_listener() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    (addr, count)
}

/// Graph answers whose links name an internal listener on loopback, the metadata address, a
/// private network, another host, `file:` and `javascript:`, and a redirect from the CDN's
/// path to loopback: the mirror connects to none of them, the other posts are mirrored, and
/// no post keeps a link that is not Instagram's.
#[tokio::test]
async fn links_naming_internal_or_foreign_hosts_are_never_fetched_and_the_feed_keeps_the_rest() {
    let site = site(1);
    let (internal, connections) = counting_listener().await;
    // A real link of the mock's CDN, as the account's own listing gives it.
    let listed = site.graph.my_media().send().await.unwrap();
    let good = listed.items[0].media_url.clone().unwrap();
    // Through the mock's own origin (allowed), also a redirect to the internal listener.
    let hostile = site.mock.stub_hostile_listing(
        internal,
        serde_json::json!({"id": "1790000000000000099", "media_type": "IMAGE", "media_url": good,
            "permalink": "https://www.instagram.com/p/Cgood/"}),
    );
    let report = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection to the listener"
    );
    assert_eq!(
        (report.items, report.unavailable),
        (hostile.len() + 1, hostile.len())
    );
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    let shown: Vec<&FeedItem> = feed.items.iter().filter(|i| i.is_available()).collect();
    assert_eq!(shown.len(), 1, "the post with a CDN link is mirrored");
    assert_eq!(
        shown[0].permalink.as_deref(),
        Some("https://www.instagram.com/p/Cgood/")
    );
    for item in &feed.items {
        assert!(
            item.permalink
                .as_deref()
                .is_none_or(|p| p.starts_with("https://www.instagram.com/")),
            "{:?}",
            item.permalink
        );
    }
}

/// A listener on loopback that answers every request with `body` as `image/png`.
async fn serving_png(body: &'static [u8]) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = [0u8; 1024];
            let _ = stream.read(&mut head).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.write_all(body).await;
        }
    });
    addr
}

/// A 62 KB PNG whose header claims 8000×8000 pixels (64 MB of grey, 256 MB as RGBA): refused
/// from its header, never decoded; the feed keeps the other post and says why.
#[tokio::test]
async fn a_png_bomb_is_skipped_with_its_reason() {
    static BOMB: &[u8] = include_bytes!("fixtures/bomb-8000x8000.png");
    let site = site(1);
    let bombs = serving_png(BOMB).await;
    let mirror = Mirror::new(
        site.blobs.clone(),
        Downloader::new(
            Arc::new(HyperBackend::new().unwrap()),
            DownloadPolicy::instagram()
                .allow_origin(site.mock.base_url())
                .allow_origin(&format!("http://{bombs}")),
        ),
    );
    let good = site.graph.my_media().send().await.unwrap().items[0].clone();
    site.mock.stub(Stub::json(
        "GET",
        "/me/media",
        200,
        serde_json::json!({"data": [
            {"id": "1790000000000000001", "media_type": "IMAGE", "media_url": format!("http://{bombs}/bomb.png")},
            {"id": good.id, "media_type": "IMAGE", "media_url": good.media_url},
        ]}),
    ));
    let report = mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!((report.items, report.unavailable), (2, 1));
    let feed = mirror.feed(&site.user).await.unwrap().unwrap();
    let bomb = &feed.items[0];
    assert!(bomb.image.is_none());
    assert!(
        bomb.unavailable.as_deref().unwrap().contains("8000×8000"),
        "{:?}",
        bomb.unavailable
    );
    assert!(feed.items[1].is_available());
    assert!(!site.dir.path().join("media/1790000000000000001").exists());
}

/// A blob store whose writes of feeds fail, as a crash or a full disk at the end of a sync.
#[derive(Debug)]
struct FeedWritesFail(Arc<FsBlobStore>);

#[async_trait::async_trait]
impl BlobStore for FeedWritesFail {
    async fn put(&self, key: &str, bytes: bytes::Bytes) -> Result<(), igdisplay_mirror::BlobError> {
        if key.starts_with("feeds/") {
            return Err(igdisplay_mirror::BlobError::InvalidKey(
                "the disk is full".to_owned(),
            ));
        }
        self.0.put(key, bytes).await
    }
    async fn get(&self, key: &str) -> Result<Option<bytes::Bytes>, igdisplay_mirror::BlobError> {
        self.0.get(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, igdisplay_mirror::BlobError> {
        self.0.exists(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), igdisplay_mirror::BlobError> {
        self.0.delete(key).await
    }
}

#[tokio::test]
async fn a_sync_cut_short_before_its_feed_is_resumed_without_downloading_again() {
    let site = site(20);
    let backend: SharedBackend = Arc::new(HyperBackend::new().unwrap());
    let failing = Mirror::new(
        Arc::new(FeedWritesFail(site.blobs.clone())),
        downloader(backend, &site.mock),
    );
    assert!(matches!(
        failing.sync(&site.user, &site.graph).await,
        Err(SyncError::Blob(_))
    ));
    assert!(
        site.mirror.feed(&site.user).await.unwrap().is_none(),
        "no half feed"
    );
    let resumed = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!(resumed.downloaded, 0, "every file was already there: {resumed:?}");
    assert_eq!(resumed.unavailable, 0);
    site.every_file_exists().await;
}

#[tokio::test]
async fn a_sync_stays_inside_its_share_of_the_rate_budget() {
    let mock = MockServer::builder()
        .calls_per_hour(Some(8))
        .clock(MockClock::Frozen(1_800_000_000))
        .seed(Seed::demo().with_generated_user("bulk", 10, 5))
        .start()
        .unwrap();
    let site = site_on(mock, "bulk", |backend, _| backend);
    let (graph, user, mock) = (&site.graph, &site.user, &site.mock);
    let mirror = site.mirror.with_budget_share(40);
    // Each sync is two requests (the one page, the stories): 2 of 8 calls (25 %), then 4 of 8
    // (50 %).
    assert!(!mirror.sync(user, graph).await.unwrap().deferred);
    assert!(!mirror.sync(user, graph).await.unwrap().deferred);
    let listings = |mock: &MockServer| {
        mock.journal()
            .iter()
            .filter(|e| e.path.ends_with("/media"))
            .count()
    };
    assert_eq!(listings(mock), 2);
    let third = mirror.sync(user, graph).await.unwrap();
    assert!(third.deferred, "50 % reported, 40 % allowed");
    assert_eq!((third.items, third.graph_calls, third.story_calls), (10, 0, 0));
    assert_eq!(listings(mock), 2, "no request");
    assert_eq!(
        mirror.feed(user).await.unwrap().unwrap().items.len(),
        10,
        "the feed is kept"
    );
}

#[tokio::test]
async fn two_syncs_of_one_account_at_once_run_one_sync() {
    let site = site(30);
    let other = site.mirror.clone();
    let (first, second) = tokio::join!(
        site.mirror.sync(&site.user, &site.graph),
        other.sync(&site.user, &site.graph)
    );
    assert_eq!(first.unwrap().items, 30);
    assert!(
        matches!(second, Err(SyncError::AlreadyRunning)),
        "the second trigger waits for the first: {second:?}"
    );
    assert_eq!(site.listings(), 1, "one listing, one sync");
    // Once it has ended, the next trigger syncs.
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!(site.listings(), 2);
}

#[tokio::test]
async fn a_purge_deletes_every_file_page_and_the_index_of_the_account() {
    let site = site(30);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    // A second sync leaves retired pages behind: they go too.
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert!(files_under(&site.dir.path().join("media")) > 30);
    let report = site.mirror.purge(&site.user).await.unwrap();
    assert!(
        report.had_feed && report.files > 30 && report.pages >= 2,
        "{report:?}"
    );
    assert_eq!(
        files_under(&site.dir.path().join("media")),
        0,
        "no file of the account left"
    );
    assert_eq!(
        files_under(&site.dir.path().join("feeds")),
        0,
        "no page, no index"
    );
    assert!(site.mirror.index(&site.user).await.unwrap().is_none());
    assert_eq!(
        site.mirror.purge(&site.user).await.unwrap(),
        igdisplay_mirror::PurgeReport::default(),
        "purging again finds nothing"
    );
}

#[tokio::test]
async fn videos_are_mirrored_as_files_and_one_without_its_file_keeps_its_picture() {
    let site = site(30);
    let report = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!(report.unavailable, 0);
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    let videos: Vec<&FeedItem> = feed
        .items
        .iter()
        .flat_map(|i| std::iter::once(i).chain(&i.children))
        .filter(|i| i.media_type == "VIDEO")
        .collect();
    assert!(!videos.is_empty());
    for video in &videos {
        assert!(video.image.is_some(), "its picture: {}", video.id);
        let file = site
            .blobs
            .get(&video.video.as_ref().unwrap().key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&file[4..8], b"ftyp", "an MP4, as the CDN sent it");
        assert_eq!(igdisplay_mirror::content_type(&file), "video/mp4");
    }

    // Meta leaves `media_url` out of a video with licensed audio: its picture stays, and it
    // says why it does not play.
    let listed = site.graph.my_media().send().await.unwrap();
    let poster = listed.items.iter().find_map(|m| m.thumbnail_url.clone()).unwrap();
    site.mock.stub(Stub::json(
        "GET",
        "/me/media",
        200,
        serde_json::json!({"data": [{"id": "1790000000000000077", "media_type": "VIDEO",
            "media_product_type": "REELS", "thumbnail_url": poster}]}),
    ));
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert_eq!(feed.items.len(), 1);
    let reel = &feed.items[0];
    assert!(reel.image.is_some() && reel.video.is_none(), "{reel:?}");
    assert!(
        reel.unplayable.as_deref().unwrap().contains("licensed"),
        "{reel:?}"
    );
}

#[tokio::test]
async fn a_video_over_the_mirrors_limit_keeps_its_picture_and_leaves_no_file() {
    let site = site(30);
    let mirror = site.mirror.clone().with_video_limit(Some(100));
    mirror.sync(&site.user, &site.graph).await.unwrap();
    let feed = mirror.feed(&site.user).await.unwrap().unwrap();
    let video = feed
        .items
        .iter()
        .flat_map(|i| std::iter::once(i).chain(&i.children))
        .find(|i| i.media_type == "VIDEO")
        .unwrap();
    assert!(video.image.is_some() && video.video.is_none());
    assert!(
        video.unplayable.as_deref().unwrap().contains("larger"),
        "{video:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(site.dir.path().join("media").join(&video.id))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("video") || name.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no partial or temporary file: {leftovers:?}"
    );
}

/// A listing out of date order: a post with a video is passed over as gone when an older
/// post comes first, then found again further down. Its files, the video's included, stay.
#[tokio::test]
async fn a_video_post_listed_out_of_date_order_keeps_its_file() {
    let site = site(30);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let mut listed = site
        .graph
        .my_media()
        .with_children()
        .limit(100)
        .send()
        .await
        .unwrap()
        .items;
    let has_video = |m: &igdisplay_model::Media| {
        std::iter::once(m)
            .chain(m.children())
            .any(|one| one.media_type == Some(igdisplay_model::MediaType::Video))
    };
    let with_video = listed.iter().position(has_video).unwrap();
    let last = listed.len() - 1;
    assert!(with_video < last);
    listed.swap(with_video, last);
    site.mock.stub(Stub::json(
        "GET",
        "/me/media",
        200,
        serde_json::json!({ "data": listed }),
    ));
    let report = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!(
        (report.items, report.downloaded),
        (30, 0),
        "nothing new: {report:?}"
    );
    site.every_file_exists().await;
}

/// A video of several megabytes goes to its file in several writes, whole.
#[tokio::test]
async fn a_video_of_several_megabytes_is_written_whole() {
    let mock = MockServer::builder()
        .calls_per_hour(None)
        .clock(MockClock::Frozen(1_800_000_000))
        .asset_sizes(igdisplay_mock::AssetSizes {
            image: 4096,
            video: 3 << 20,
        })
        .seed(Seed::demo().with_generated_user("bulk", 5, 5))
        .start()
        .unwrap();
    let Site {
        graph,
        user,
        blobs,
        mirror,
        ..
    } = &site_on(mock, "bulk", |backend, _| backend);
    mirror.sync(user, graph).await.unwrap();
    let feed = mirror.feed(user).await.unwrap().unwrap();
    let key = feed
        .items
        .iter()
        .flat_map(|i| std::iter::once(i).chain(&i.children))
        .find_map(|i| i.video.as_ref())
        .unwrap()
        .key
        .clone();
    let file = blobs.get(&key).await.unwrap().unwrap();
    assert_eq!(file.len(), 3 << 20);
    assert_eq!(&file[4..8], b"ftyp");
}

/// The feed's JSON Schema, or the part of it under `$defs/{part}`.
fn feed_schema(part: &str) -> jsonschema::Validator {
    let mut schema: serde_json::Value = serde_json::from_str(igdisplay_mirror::FEED_JSON_SCHEMA).unwrap();
    schema["$ref"] = serde_json::json!(format!("#/$defs/{part}"));
    jsonschema::validator_for(&schema).unwrap()
}

/// Every stored file of `user`'s feed (the index, each page) and the assembled feed against
/// the published schema.
async fn assert_feed_valid(site: &Site) {
    let index_bytes = site
        .blobs
        .get(&format!("feeds/{}.json", site.user))
        .await
        .unwrap()
        .unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index_bytes).unwrap();
    let errors: Vec<String> = feed_schema("index")
        .iter_errors(&index)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "the index: {errors:?}");
    let page_schema = feed_schema("page");
    for page in index["pages"].as_array().unwrap() {
        let bytes = site
            .blobs
            .get(page["key"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        let page: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let errors: Vec<String> = page_schema.iter_errors(&page).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "a page: {errors:?}");
    }
    let feed = serde_json::to_value(site.mirror.feed(&site.user).await.unwrap().unwrap()).unwrap();
    let errors: Vec<String> = feed_schema("feed")
        .iter_errors(&feed)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "the feed: {errors:?}");
}

/// Over the demo library (every case: photos square, very tall and very wide; videos; reels,
/// one kept to the Reels tab; a video Meta sends without its file; an album that opens with a
/// video; copyright-flagged posts): every post has a picture but a photo Meta sends no file
/// of, every video has its file or says why not, and the stored feed validates against its
/// published schema. Thirty days later, every link expired, the same holds.
async fn assert_every_case_on_screen(site: &Site) {
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert_eq!(feed.schema, igdisplay_mirror::FEED_SCHEMA);
    let mut unplayable = Vec::new();
    let mut shapes = Vec::new();
    for item in feed
        .items
        .iter()
        .flat_map(|i| std::iter::once(i).chain(&i.children))
    {
        match item.cover() {
            Some(image) => shapes.push((image.width, image.height)),
            None => {
                assert_eq!(
                    item.media_type, "IMAGE",
                    "only a photo without its file has no picture: {item:?}"
                );
                assert!(
                    item.unavailable.is_some() && item.permalink.is_none(),
                    "copyright-flagged: {item:?}"
                );
                continue;
            }
        }
        let image = item.cover().unwrap();
        assert!(
            image.blurhash.as_deref().is_some_and(|hash| hash.len() >= 6),
            "{item:?}"
        );
        for variant in &image.variants {
            assert!(
                variant.width <= image.width && variant.height <= image.height,
                "{item:?}"
            );
        }
        if item.media_type == "VIDEO" {
            match (&item.video, &item.unplayable) {
                (Some(video), None) => {
                    let file = site.blobs.get(&video.key).await.unwrap().unwrap();
                    assert_eq!(igdisplay_mirror::content_type(&file), "video/mp4");
                }
                (None, Some(reason)) => unplayable.push(reason.clone()),
                other => panic!("a video plays or says why not: {other:?}"),
            }
        }
    }
    assert_eq!(
        unplayable.len(),
        2,
        "licensed audio and copyright: {unplayable:?}"
    );
    assert!(
        shapes.contains(&(60, 960)) && shapes.contains(&(960, 60)),
        "{shapes:?}"
    );
    let album = feed
        .items
        .iter()
        .find(|i| i.children.first().is_some_and(|c| c.media_type == "VIDEO"))
        .expect("the album that opens with a video");
    assert_eq!(
        album.cover(),
        album.children[0].image.as_ref(),
        "its cover is the video's poster"
    );
    assert!(album.children[0].video.is_some());
    site.every_file_exists().await;
    assert_feed_valid(site).await;
}

#[tokio::test]
async fn every_kind_of_post_is_on_screen_and_the_feed_matches_its_schema_now_and_thirty_days_on() {
    let site = site_of("jayposiris", Seed::demo(), |backend, _| backend);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_every_case_on_screen(&site).await;
    site.mock.advance(30 * DAY);
    let report = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!(report.downloaded, 0, "nothing downloaded again: {report:?}");
    assert_every_case_on_screen(&site).await;
}

#[tokio::test]
async fn an_index_a_later_release_wrote_is_neither_read_nor_overwritten() {
    let site = site(3);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let key = format!("feeds/{}.json", site.user);
    let mut index: serde_json::Value =
        serde_json::from_slice(&site.blobs.get(&key).await.unwrap().unwrap()).unwrap();
    index["schema"] = serde_json::json!(igdisplay_mirror::FEED_SCHEMA + 1);
    let newer = serde_json::to_vec(&index).unwrap();
    site.blobs.put(&key, newer.clone().into()).await.unwrap();
    assert!(matches!(
        site.mirror.index(&site.user).await,
        Err(SyncError::NewerFeed { schema, .. }) if schema == igdisplay_mirror::FEED_SCHEMA + 1
    ));
    assert!(matches!(
        site.mirror.sync(&site.user, &site.graph).await,
        Err(SyncError::NewerFeed { .. })
    ));
    assert_eq!(
        site.blobs.get(&key).await.unwrap().unwrap(),
        newer,
        "left as written"
    );
}

#[tokio::test]
async fn stories_are_mirrored_while_live_and_leave_the_feed_when_they_expire() {
    let site = site_of("jayposiris", Seed::demo(), |backend, _| backend);
    let report = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!(report.story_calls, 1);
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert_eq!(feed.stories.len(), 2, "a photo and a video, an hour and two old");
    let (photo, video) = (feed.stories[0].clone(), feed.stories[1].clone());
    assert!(
        photo.image.is_some() && video.image.is_some(),
        "each has its picture"
    );
    let clip = video.video.clone().expect("the video story's file");
    assert!(site.blobs.exists(&clip.key).await.unwrap());
    assert!(
        feed.items.iter().all(|item| item.id != photo.id),
        "stories are not posts"
    );
    assert_feed_valid(&site).await;

    // 22 hours on, the older story has expired: the feed read before any sync leaves it out.
    site.mock.advance(Duration::from_secs(22 * 3600 + 1));
    let index = site.mirror.index(&site.user).await.unwrap().unwrap();
    let now = igdisplay_model::Timestamp::from_unix(1_800_000_000 + 22 * 3600 + 1);
    let live: Vec<&str> = index.live_stories(now).map(|s| s.id.as_str()).collect();
    assert_eq!(live, [photo.id.as_str()]);
    // The next sync drops it and deletes its files; the other story's files stay.
    let report = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!(
        report.downloaded, 0,
        "the live story is not downloaded again: {report:?}"
    );
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert_eq!(feed.stories, std::slice::from_ref(&photo));
    assert!(
        !site.blobs.exists(&clip.key).await.unwrap(),
        "the expired video's file"
    );
    for key in video.image.as_ref().unwrap().keys() {
        assert!(!site.blobs.exists(&key).await.unwrap(), "{key}");
    }
    for key in photo.image.as_ref().unwrap().keys() {
        assert!(site.blobs.exists(&key).await.unwrap(), "{key}");
    }
    assert_feed_valid(&site).await;

    // A day on, none is live; a purge finds nothing of them.
    site.mock.advance(DAY);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert!(feed.stories.is_empty());
    for key in photo.image.as_ref().unwrap().keys() {
        assert!(!site.blobs.exists(&key).await.unwrap(), "{key}");
    }
}

#[tokio::test]
async fn stories_that_cannot_be_listed_are_kept_while_live_and_the_posts_still_sync() {
    let site = site_of("jayposiris", Seed::demo(), |backend, _| backend);
    site.mirror.sync(&site.user, &site.graph).await.unwrap();
    let before = site.mirror.feed(&site.user).await.unwrap().unwrap().stories;
    assert_eq!(before.len(), 2);
    site.mock.stub(Stub::json(
        "GET",
        "/me/stories",
        400,
        serde_json::json!({"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}}),
    ));
    let report = site.mirror.sync(&site.user, &site.graph).await.unwrap();
    assert_eq!(report.story_calls, 0, "the listing failed");
    let feed = site.mirror.feed(&site.user).await.unwrap().unwrap();
    assert_eq!(feed.status, FeedStatus::Fresh, "the posts were listed");
    assert_eq!(feed.stories, before, "the live stories are kept");
    for key in before.iter().flat_map(FeedItem::keys) {
        assert!(site.blobs.exists(&key).await.unwrap(), "{key}");
    }
}
