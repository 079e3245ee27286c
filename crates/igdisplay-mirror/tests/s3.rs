//! The mirror into a real S3-compatible server (moto's, started by `cargo xtask ci`,
//! `IGDISPLAY_TEST_S3`): a sync writes every file and the feed as objects, a deleted post's
//! objects go, and a fresh store over the same bucket serves the same feed. Skipped without a
//! server unless `IGDISPLAY_REQUIRE_S3` is set.

#![cfg(feature = "s3")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use igdisplay_graph::{GraphClient, GraphEndpoint};
use igdisplay_http::{HttpBackend, HyperBackend, SharedBackend};
use igdisplay_mirror::{BlobStore, FeedStatus, Mirror, ObjectBlobStore, S3Config};
use igdisplay_mock::{MockClock, MockServer, Seed, TokenLifetime};
use igdisplay_model::{AccessToken, Platform, UserId};
use std::sync::Arc;

/// A new bucket on the test server, and the config that reaches it; `None` without a server.
async fn bucket(backend: &SharedBackend) -> Option<S3Config> {
    let Ok(server) = std::env::var("IGDISPLAY_TEST_S3") else {
        assert!(
            std::env::var_os("IGDISPLAY_REQUIRE_S3").is_none(),
            "IGDISPLAY_REQUIRE_S3 is set but IGDISPLAY_TEST_S3 is not"
        );
        eprintln!("skipped: no S3-compatible server (set IGDISPLAY_TEST_S3, as `cargo xtask ci` does)");
        return None;
    };
    let name = format!("mirror-{}-{}", std::process::id(), rand_suffix());
    let created = backend
        .send(
            igdisplay_http::http::Request::put(format!("{server}/{name}"))
                .body(igdisplay_http::bytes::Bytes::new())
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    assert!(created.status().is_success(), "bucket: {}", created.status());
    Some(S3Config::new(name, Some(server), "testing", "testing-secret").allow_http(true))
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

#[tokio::test]
async fn a_mirror_in_object_storage_writes_every_file_and_drops_the_deleted_ones() {
    let backend: SharedBackend = Arc::new(HyperBackend::new().unwrap());
    let Some(config) = bucket(&backend).await else {
        return;
    };
    let mock = MockServer::builder()
        .calls_per_hour(None)
        .clock(MockClock::Frozen(1_800_000_000))
        .seed(Seed::demo().with_generated_user("bulk", 15, 5))
        .start()
        .unwrap();
    let token = mock.issue_token("bulk", TokenLifetime::LongLived).unwrap();
    let graph = GraphClient::with_token(
        backend.clone(),
        GraphEndpoint::new(Platform::InstagramLogin).base_url(mock.base_url()),
        AccessToken::new(token.access_token),
    );
    let user = UserId::new(token.user_id);
    let blobs = Arc::new(ObjectBlobStore::s3(&config).unwrap());
    let downloads = igdisplay_mirror::Downloader::new(
        backend.clone(),
        igdisplay_mirror::DownloadPolicy::instagram().allow_origin(mock.base_url()),
    );
    let mirror = Mirror::new(blobs.clone(), downloads.clone());

    let report = mirror.sync(&user, &graph).await.unwrap();
    assert_eq!(report.items, 15);
    let feed = mirror.feed(&user).await.unwrap().unwrap();
    assert_eq!(feed.status, FeedStatus::Fresh);
    for image in feed.items.iter().filter_map(|i| i.cover()) {
        for key in image.keys() {
            assert!(blobs.exists(&key).await.unwrap(), "{key}");
        }
    }
    // Videos went up as multipart uploads, whole.
    let videos: Vec<String> = feed
        .items
        .iter()
        .flat_map(|i| std::iter::once(i).chain(&i.children))
        .filter_map(|i| i.video.as_ref().map(|v| v.key.clone()))
        .collect();
    assert!(!videos.is_empty());
    for key in &videos {
        let file = blobs.get(key).await.unwrap().unwrap();
        assert_eq!(&file[4..8], b"ftyp", "{key}");
    }

    let gone = feed.items.iter().find(|i| i.image.is_some()).unwrap().clone();
    mock.delete_media(&gone.id).unwrap();
    let second = mirror.sync(&user, &graph).await.unwrap();
    assert_eq!((second.removed, second.downloaded), (1, 0));
    for key in gone.image.as_ref().unwrap().keys() {
        assert!(!blobs.exists(&key).await.unwrap(), "{key} deleted");
    }

    // Another instance over the same bucket serves the same feed.
    let other = Mirror::new(Arc::new(ObjectBlobStore::s3(&config).unwrap()), downloads);
    assert_eq!(other.feed(&user).await.unwrap().unwrap().items.len(), 14);
}

#[test]
fn a_config_never_shows_its_secret() {
    let config = S3Config::new("b", None, "AKID", "very-secret-key");
    assert!(!format!("{config:?}").contains("very-secret-key"));
}
