//! Testing your own code with the mock: real flows, a frozen clock you move, faults, and
//! journal assertions. Written as a program here; the same lines go in your `#[tokio::test]`.
//!
//! `cargo run -p igdisplay --example test_with_mock --features mock`

#![allow(clippy::print_stdout)]

#[path = "common/mod.rs"]
mod common;

use igdisplay::graph::GraphClient;
use igdisplay::mock::{Fault, FaultKind, MockServer};
use igdisplay::model::Platform;
use std::time::Duration;

/// The code under test: the caption of the newest post, if any.
async fn latest_caption(graph: &GraphClient) -> Result<Option<String>, igdisplay::graph::Error> {
    let page = graph.my_media().limit(1).send().await?;
    Ok(page.items.into_iter().next().and_then(|m| m.caption))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = MockServer::start()?;
    let instagram = common::client_for(&mock, Platform::InstagramLogin).build()?;
    let graph = common::login(&mock, &instagram, "jayposiris").await?;

    // The happy path.
    assert_eq!(
        latest_caption(&graph).await?.as_deref(),
        Some("Sunset at the beach 🌅 #tbt")
    );
    mock.expect_requests("GET", "/me/media", 1)?;

    // Instagram hiccups twice: the client retries and the caller never notices.
    mock.add_fault(Fault::new("/me/media", FaultKind::GraphTransient).times(2));
    assert!(latest_caption(&graph).await?.is_some());
    mock.expect_requests("GET", "/me/media", 4)?;

    // Sixty days later the token is gone: a typed error says the user must log in again.
    mock.advance(Duration::from_secs(61 * 24 * 3600));
    let error = latest_caption(&graph).await.err().ok_or("expected an error")?;
    println!("after 61 days: {error}");
    assert!(error.requires_login());
    println!("all checks passed");
    Ok(())
}
