//! What every example needs: a mock Instagram, a client pointed at it, and a login that a
//! browser would do by clicking "Continue" in the mock's window (`MockServer::approve`).

use igdisplay::mock::MockServer;
use igdisplay::model::{AppSecret, Platform};
use igdisplay::{Instagram, InstagramBuilder};

/// The redirect URI the demo app has registered.
pub(crate) const REDIRECT_URI: &str = "https://app.example/auth/";

/// A builder for a client of the mock's demo app, on the mock's clock.
pub(crate) fn client_for(mock: &MockServer, platform: Platform) -> InstagramBuilder {
    let app = mock.app();
    Instagram::builder(platform, app.id, AppSecret::new(app.secret), REDIRECT_URI)
        .mock(mock.base_url())
        .clock(igdisplay::follow_mock_clock(mock))
}

/// A full login as `username` through the mock's window: a Graph client for that user (its
/// token is in the client's store, kept fresh by it).
#[allow(dead_code, reason = "web_handler logs in through its own handlers")]
pub(crate) async fn login(
    mock: &MockServer,
    instagram: &Instagram,
    username: &str,
) -> Result<igdisplay::graph::GraphClient, Box<dyn std::error::Error>> {
    let authorization = instagram.authorize().build()?;
    let redirect = mock.approve(&authorization.url, username)?;
    let token = instagram.complete_login(authorization.pending, &redirect).await?;
    Ok(instagram.graph(&token.user_id))
}
