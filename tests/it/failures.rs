//! Every documented failure, end to end, for every backend and platform.

use crate::{REDIRECT, cases, login};
use igdisplay::auth::{CallbackError, LoginError, TokenError};
use igdisplay::graph::Error;
use igdisplay::mock::{Fault, FaultKind};
use igdisplay::model::{AppSecret, ErrorClass};
use std::time::Duration;

/// The CSRF state of the first login where a test writes callbacks itself.
const STATE: &str = "FIRST";

#[tokio::test]
async fn a_cancelled_login_is_a_typed_denial_and_sends_nothing() {
    for case in cases() {
        let mock = case.mock();
        let instagram = case.client(&mock);
        let authorization = instagram.authorize().build().unwrap();
        let redirect = mock.deny(&authorization.url).unwrap();
        let error = instagram
            .complete_login(authorization.pending, &redirect)
            .await
            .unwrap_err();
        assert!(
            matches!(error, LoginError::Callback(CallbackError::Denied { ref reason, .. }) if reason == "user_denied"),
            "{case:?}"
        );
        mock.expect_requests("POST", "/oauth/access_token", 0).unwrap();
    }
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_the_first_token() {
    for case in cases() {
        let mock = case.mock();
        let instagram = case.client(&mock);
        let authorization = instagram.authorize().fixed_state(STATE).build().unwrap();
        let redirect = mock.approve(&authorization.url, "jayposiris").unwrap();
        let token = instagram
            .complete_login(authorization.pending, &redirect)
            .await
            .unwrap();
        // The same code again, under a fresh (valid) state, as a double-submitted callback would.
        let again = instagram.authorize().fixed_state("AGAIN").build().unwrap();
        let replay = redirect.replace(&format!("&state={STATE}"), "&state=AGAIN");
        let error = instagram
            .complete_login(again.pending, &replay)
            .await
            .unwrap_err();
        assert!(
            matches!(error, LoginError::Token(TokenError::CodeAlreadyUsed { .. })),
            "{case:?}: {error:?}"
        );
        let graph_error = instagram.graph(&token.user_id).me().send().await.unwrap_err();
        assert!(graph_error.requires_login(), "{case:?}: {graph_error:?}");
        assert_eq!(graph_error.subcode(), Some(460));
    }
}

#[tokio::test]
async fn an_expired_token_asks_for_a_new_login_without_a_request() {
    for case in cases() {
        let mock = case.mock();
        let instagram = case.client(&mock);
        let token = login(&mock, &instagram, "jayposiris").await;
        mock.advance(Duration::from_secs(61 * 86_400));
        let before = mock.requests_total();
        let error = instagram.graph(&token.user_id).me().send().await.unwrap_err();
        assert!(error.requires_login(), "{case:?}: {error:?}");
        assert!(
            error.to_string().starts_with("the stored token expired at "),
            "{case:?}: {error}"
        );
        assert_eq!(mock.requests_total(), before, "no request with an expired token");
    }
}

#[tokio::test]
async fn a_wrong_app_secret_is_an_invalid_client_error() {
    for case in cases() {
        let mock = case.mock();
        let app = mock.app();
        let wrong =
            igdisplay::Instagram::builder(case.platform, app.id.clone(), AppSecret::new("wrong"), REDIRECT)
                .mock(mock.base_url())
                .backend(case.backend())
                .build()
                .unwrap();
        let authorization = wrong.authorize().build().unwrap();
        let redirect = mock.approve(&authorization.url, "jayposiris").unwrap();
        let error = wrong
            .complete_login(authorization.pending, &redirect)
            .await
            .unwrap_err();
        assert!(
            matches!(error, LoginError::Token(TokenError::InvalidClient { .. })),
            "{case:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_grant_is_never_sent_by_a_client_configured_with_another_redirect_uri() {
    for case in cases() {
        let mock = case.mock();
        let app = mock.app();
        let right = case.client(&mock);
        let authorization = right.authorize().build().unwrap();
        let redirect = mock.approve(&authorization.url, "jayposiris").unwrap();
        let other = igdisplay::Instagram::builder(
            case.platform,
            app.id.clone(),
            AppSecret::new(app.secret.clone()),
            "https://app.example/auth",
        )
        .mock(mock.base_url())
        .backend(case.backend())
        .build()
        .unwrap();
        let callback = igdisplay::auth::Callback::parse(&redirect).unwrap();
        let grant = authorization
            .pending
            .verify(callback, right.clock().now())
            .unwrap();
        let exchanges = mock
            .journal()
            .iter()
            .filter(|e| e.path == "/oauth/access_token")
            .count();
        assert!(matches!(
            other.auth().exchange_code(grant).await,
            Err(TokenError::ConfigMismatch)
        ));
        assert_eq!(
            mock.journal()
                .iter()
                .filter(|e| e.path == "/oauth/access_token")
                .count(),
            exchanges
        );
    }
}

#[tokio::test]
async fn transient_graph_errors_are_retried_until_success() {
    for case in cases() {
        let mock = case.mock();
        let instagram = case.client(&mock);
        let token = login(&mock, &instagram, "jayposiris").await;
        let graph = instagram.graph(&token.user_id);
        mock.add_fault(Fault::new("/me", FaultKind::GraphTransient).times(2));
        graph.me().send().await.unwrap();
        mock.expect_requests("GET", "/me", 3).unwrap();
    }
}

#[tokio::test]
async fn a_spent_hourly_budget_surfaces_as_a_rate_limit() {
    for case in cases() {
        let mock = case.mock_with(|b| b.calls_per_hour(Some(3)));
        let instagram = case.client(&mock);
        let token = login(&mock, &instagram, "jayposiris").await;
        let graph = instagram.graph(&token.user_id);
        // Three calls spend the limit (3 an hour); on the fourth the client waits what the
        // policy allows (on the mock's clock), then reports the rate limit.
        for _ in 0..3 {
            graph.my_media().send().await.unwrap();
        }
        let error = graph.my_media().send().await.unwrap_err();
        assert!(error.is_rate_limited(), "{case:?}: {error:?}");
        assert_eq!(error.class(), Some(ErrorClass::RateLimited));
    }
}

#[tokio::test]
async fn a_truncated_or_dropped_response_is_retried_for_reads() {
    for case in cases() {
        let mock = case.mock();
        let instagram = case.client(&mock);
        let token = login(&mock, &instagram, "jayposiris").await;
        let graph = instagram.graph(&token.user_id);
        mock.add_fault(Fault::new("/me/media", FaultKind::DropConnection).times(1));
        mock.add_fault(Fault::new("/me/media", FaultKind::ResetMidBody).times(1));
        let page = graph.my_media().send().await.unwrap();
        assert_eq!(page.items.len(), 25, "{case:?}");
        mock.expect_requests("GET", "/me/media", 3).unwrap();
    }
}

#[tokio::test]
async fn a_malformed_success_body_is_a_typed_decode_error() {
    for case in cases() {
        let mock = case.mock();
        let instagram = case.client(&mock);
        let token = login(&mock, &instagram, "jayposiris").await;
        let graph = instagram.graph(&token.user_id);
        mock.add_fault(Fault::new("/me", FaultKind::MalformedJson).times(1));
        let error = graph.me().send().await.unwrap_err();
        assert!(matches!(error, Error::Decode { .. }), "{case:?}: {error:?}");
    }
}
