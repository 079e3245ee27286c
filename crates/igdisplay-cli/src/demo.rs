//! `igdisplay demo`: the whole job on a built-in mock, narrated step by step. No configuration,
//! no network beyond loopback, done in seconds.

use crate::export;
use crate::fail::Failure;
use crate::out;
use futures_util::TryStreamExt;
use igdisplay::Instagram;
use igdisplay::auth::Callback;
use igdisplay::http::redact_uri;
use igdisplay::mock::MockServer;
use igdisplay::model::{AppSecret, MediaType, Platform, Timestamp};
use std::path::PathBuf;
use std::time::Duration;

const REDIRECT: &str = "https://app.example/auth/";
const USER: &str = "jayposiris";

fn step(n: u32, text: &str) {
    println!("\n{n}. {text}");
}

fn failure(error: impl std::fmt::Display) -> Failure {
    Failure::runtime(format!("the demo failed: {error}"))
}

/// Runs the demo on `platform`, exporting to `out_dir` (default `./igdisplay-demo-export`).
pub(crate) async fn run(platform: Platform, out_dir: Option<PathBuf>, json: bool) -> Result<(), Failure> {
    let mock = MockServer::builder()
        .platform(igdisplay::mock_platform(platform))
        .start()
        .map_err(failure)?;
    let app = mock.app();
    step(
        1,
        &format!("Started a mock Instagram ({platform}) at {}.", mock.base_url()),
    );
    println!(
        "   Its demo app {} has the redirect URI {REDIRECT}; the user is @{USER}.",
        app.id
    );
    let instagram = Instagram::builder(
        platform,
        app.id.clone(),
        AppSecret::new(app.secret.clone()),
        REDIRECT,
    )
    .mock(mock.base_url())
    .clock(igdisplay::follow_mock_clock(&mock))
    .build()
    .map_err(failure)?;

    let long = login(&mock, &instagram).await?;
    let graph = instagram.graph(&long.user_id);
    read(&mock, &graph).await?;

    let dir = out_dir.unwrap_or_else(|| PathBuf::from("igdisplay-demo-export"));
    step(10, &format!("Exported everything to {}:", dir.display()));
    let downloader = crate::settings::downloader(Some(mock.base_url()), Some(export::MAX_FILE_BYTES))?;
    let summary = export::export(&graph, &downloader, &dir, 8).await?;
    println!(
        "   {} items, {} files downloaded ({} bytes), {} already there; index in {}",
        summary.items,
        summary.downloaded,
        summary.bytes,
        summary.skipped,
        summary.index.display()
    );
    println!("\nDone. Everything above ran against the mock on 127.0.0.1; no token was printed.");
    if json {
        out::json(&summary);
    }
    Ok(())
}

/// Steps 2 to 6: the authorization window, the code exchanged, the long-lived token and its
/// refresh a day later; the token, kept by the client.
async fn login(mock: &MockServer, instagram: &Instagram) -> Result<igdisplay::auth::TokenRecord, Failure> {
    let authorization = instagram.authorize().build().map_err(failure)?;
    step(
        2,
        "Built the authorize URL, with a fresh 256-bit state kept server-side:",
    );
    println!("   {}", redact_uri(&authorization.url));

    step(
        3,
        "Approved in the authorization window as the user would (the mock answers what \"Continue\" does):",
    );
    // What pressing "Continue" in the window does, decided by the mock itself.
    let location = mock.approve(&authorization.url, USER).map_err(failure)?;
    let fragment = if location.ends_with("#_") { "#_" } else { "" };
    println!("   Instagram redirected to {}{fragment}", redact_uri(&location));
    println!("   (the trailing #_ is Instagram's; it is stripped before reading the code)");

    let grant = authorization
        .pending
        .verify(Callback::parse(&location)?, instagram.clock().now())?;
    step(
        4,
        "Verified the state (constant-time, single use, not expired) and exchanged the code:",
    );
    let short = instagram.auth().exchange_code(grant).await?;
    println!(
        "   a short-lived token for user {}, valid until {}",
        short.user_id,
        short.expires_at.to_rfc3339()
    );

    step(5, "Upgraded it to a long-lived token:");
    let long = instagram.auth().exchange_long_lived(&short).await?;
    println!("   valid until {} (60 days)", long.expires_at.to_rfc3339());
    instagram.tokens().import(long.clone()).await?;

    step(
        6,
        "Moved the mock's clock 25 hours on, and refreshed the token (allowed after 24 hours):",
    );
    mock.advance(Duration::from_secs(25 * 3600));
    let refreshed = instagram.tokens().refresh_now(&long.user_id).await?;
    println!("   valid until {}", refreshed.expires_at.to_rfc3339());
    Ok(long)
}

/// Steps 7 to 9: the profile, every media item streamed page by page, an album's items.
async fn read(mock: &MockServer, graph: &igdisplay::graph::GraphClient) -> Result<(), Failure> {
    step(7, "The profile:");
    let me = graph.me().all_fields().send().await?;
    println!(
        "   @{} ({}), {} media",
        me.username.as_deref().unwrap_or("?"),
        me.account_type.as_ref().map_or("?", |t| t.as_str()),
        me.media_count.unwrap_or_default()
    );

    step(
        8,
        "Every media item, streamed page by page (albums with their items):",
    );
    let before = mock.requests_total();
    let mut stream = graph.my_media().with_children().limit(10).into_stream();
    let mut count = 0usize;
    let mut first_album = None;
    while let Some(media) = stream.try_next().await? {
        count += 1;
        if count <= 6 {
            println!(
                "   {} {:<14} {}  {}",
                media.id,
                media.media_type.as_ref().map_or("?", |t| t.as_str()),
                media.timestamp.map_or_else(String::new, Timestamp::to_rfc3339),
                out::short(media.caption.as_deref().unwrap_or("(no caption)"), 40)
            );
        }
        if first_album.is_none() && media.media_type == Some(MediaType::CarouselAlbum) {
            first_album = Some(media.id.clone());
        }
    }
    println!(
        "   … {count} items in {} requests",
        mock.requests_total() - before
    );

    if let Some(album) = first_album {
        step(9, &format!("The items of album {album}:"));
        for child in graph.children(&album).send().await?.items {
            println!(
                "   {} {}",
                child.id,
                child.media_type.as_ref().map_or("?", |t| t.as_str())
            );
        }
    }
    Ok(())
}
