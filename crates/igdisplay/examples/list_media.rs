//! Lists every media item of a user as a stream, albums with their items, one request per page.
//!
//! `cargo run -p igdisplay --example list_media --features mock`

#![allow(clippy::print_stdout)]

#[path = "common/mod.rs"]
mod common;

use futures_util::TryStreamExt;
use igdisplay::mock::MockServer;
use igdisplay::model::Platform;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = MockServer::start()?;
    let instagram = common::client_for(&mock, Platform::InstagramLogin).build()?;
    let graph = common::login(&mock, &instagram, "jayposiris").await?;

    let mut stream = graph.my_media().with_children().limit(10).into_stream();
    let mut count = 0;
    while let Some(media) = stream.try_next().await? {
        count += 1;
        let kind = media.media_type.as_ref().map_or("?", |t| t.as_str());
        let caption = media
            .caption
            .as_deref()
            .unwrap_or("(no caption)")
            .replace('\n', " ");
        println!("{count:>3}. {} {kind:<14} {caption}", media.id);
        for child in media.children() {
            println!(
                "       └ {} {}",
                child.id,
                child.media_type.as_ref().map_or("?", |t| t.as_str())
            );
        }
    }
    let requests = mock.journal().iter().filter(|e| e.path == "/me/media").count();
    println!("{count} items in {requests} requests");
    assert_eq!((count, requests), (40, 4));
    Ok(())
}
