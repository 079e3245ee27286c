//! End to end: the complete flow and every documented failure, against igdisplay-mock, over
//! each backend (reqwest, hyper) and each platform (Instagram Login, Basic Display).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod comments;
mod failures;
mod flow;
mod insights;
mod load;
mod logs;
mod webhooks;

use igdisplay::Instagram;
use igdisplay::http::{HyperBackend, ReqwestBackend, SharedBackend};
use igdisplay::mock::MockServer;
use igdisplay::model::{AppSecret, Platform};
use std::sync::Arc;

pub(crate) const REDIRECT: &str = "https://app.example/auth/";

/// One combination of backend and platform.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Case {
    pub(crate) backend: &'static str,
    pub(crate) platform: Platform,
}

/// Every combination.
pub(crate) fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for backend in ["reqwest", "hyper"] {
        for platform in Platform::ALL {
            cases.push(Case { backend, platform });
        }
    }
    cases
}

impl Case {
    pub(crate) fn backend(self) -> SharedBackend {
        match self.backend {
            "reqwest" => Arc::new(ReqwestBackend::new().unwrap()),
            _ => Arc::new(HyperBackend::new().unwrap()),
        }
    }

    pub(crate) fn mock(self) -> MockServer {
        self.mock_with(|builder| builder)
    }

    pub(crate) fn mock_with(
        self,
        configure: impl FnOnce(igdisplay::mock::MockBuilder) -> igdisplay::mock::MockBuilder,
    ) -> MockServer {
        configure(MockServer::builder().platform(igdisplay::mock_platform(self.platform)))
            .start()
            .unwrap()
    }

    /// A client of the mock's app over this case's backend, on the mock's clock.
    pub(crate) fn client(self, mock: &MockServer) -> Instagram {
        self.builder(mock).build().unwrap()
    }

    pub(crate) fn builder(self, mock: &MockServer) -> igdisplay::InstagramBuilder {
        let app = mock.app();
        Instagram::builder(self.platform, app.id, AppSecret::new(app.secret), REDIRECT)
            .mock(mock.base_url())
            .backend(self.backend())
            .clock(igdisplay::follow_mock_clock(mock))
    }
}

/// A full login as `username`, approved in the mock's window; the stored long-lived token record.
pub(crate) async fn login(
    mock: &MockServer,
    instagram: &Instagram,
    username: &str,
) -> igdisplay::auth::TokenRecord {
    login_granting(mock, instagram, username, &[]).await
}

/// [`login`], asking for `scopes` besides the platform's defaults.
pub(crate) async fn login_granting(
    mock: &MockServer,
    instagram: &Instagram,
    username: &str,
    scopes: &[igdisplay::auth::scopes::Scope],
) -> igdisplay::auth::TokenRecord {
    let builder = scopes.iter().fold(instagram.authorize(), |b, s| b.scope(*s));
    let authorization = builder.build().unwrap();
    let redirect = mock.approve(&authorization.url, username).unwrap();
    instagram
        .complete_login(authorization.pending, &redirect)
        .await
        .unwrap()
}
