//! Every documented failure, end to end, for every backend and platform.

use crate::{REDIRECT, browse, cases, login};
use igdisplay::auth::{CallbackError, LoginError, TokenError};
use igdisplay::graph::Error;
use igdisplay::mock::{Fault, FaultKind};
use igdisplay::model::{AppSecret, ErrorClass};
use std::time::Duration;

#[tokio::test]
async fn a_cancelled_login_is_a_typed_denial_and_sends_nothing() {
    for case in cases() {
        let mock = case.mock();
        let instagram = case.client(&mock);
        let authorization = instagram.authorize().build().unwrap();
        let redirect = browse(&instagram, &authorization.url, "&mock_deny=1").await;
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
        let authorization = instagram.authorize().build().unwrap();
        let redirect = browse(&instagram, &authorization.url, "&mock_approve_as=jayposiris").await;
        let token = instagram
            .complete_login(authorization.pending, &redirect)
            .await
            .unwrap();
        // The same code again, under a fresh (valid) state, as a double-submitted callback would.
        let again = instagram.authorize().build().unwrap();
        let state = again
            .url
            .split("state=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        let code = redirect
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        let replay = format!("{REDIRECT}?code={code}&state={state}#_");
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
        let token = login(&instagram, "jayposiris").await;
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
async fn wrong_credentials_and_configurations_are_typed() {
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
        let redirect = browse(&wrong, &authorization.url, "&mock_approve_as=jayposiris").await;
        let error = wrong
            .complete_login(authorization.pending, &redirect)
            .await
            .unwrap_err();
        assert!(
            matches!(error, LoginError::Token(TokenError::InvalidClient { .. })),
            "{case:?}: {error:?}"
        );

        // A code obtained for one redirect URI is never sent by a client configured with another.
        let right = case.client(&mock);
        let authorization = right.authorize().build().unwrap();
        let redirect = browse(&right, &authorization.url, "&mock_approve_as=jayposiris").await;
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
async fn transient_failures_are_retried_and_rate_limits_surface() {
    for case in cases() {
        let mock = case.mock_with(|b| b.calls_per_hour(Some(3)));
        let instagram = case.client(&mock);
        let token = login(&instagram, "jayposiris").await;
        let graph = instagram.graph(&token.user_id);
        mock.add_fault(Fault::new("/me", FaultKind::GraphTransient).times(2));
        graph.me().send().await.unwrap();
        mock.expect_requests("GET", "/me", 3).unwrap();
        // The limit (3 an hour) is reached: the client waits what the policy allows (on the
        // mock's clock), then reports the rate limit.
        let error = graph
            .my_media()
            .send()
            .await
            .and(graph.my_media().send().await)
            .unwrap_err();
        assert!(error.is_rate_limited(), "{case:?}: {error:?}");
        assert_eq!(error.class(), Some(ErrorClass::RateLimited));
    }
}

#[tokio::test]
async fn a_truncated_or_dropped_response_is_retried_for_reads() {
    for case in cases() {
        let mock = case.mock();
        let instagram = case.client(&mock);
        let token = login(&instagram, "jayposiris").await;
        let graph = instagram.graph(&token.user_id);
        mock.add_fault(Fault::new("/me/media", FaultKind::DropConnection).times(1));
        mock.add_fault(Fault::new("/me/media", FaultKind::ResetMidBody).times(1));
        let page = graph.my_media().send().await.unwrap();
        assert_eq!(page.items.len(), 25, "{case:?}");
        mock.expect_requests("GET", "/me/media", 3).unwrap();
        mock.add_fault(Fault::new("/me", FaultKind::MalformedJson).times(1));
        let error = graph.me().send().await.unwrap_err();
        assert!(matches!(error, Error::Decode { .. }), "{case:?}: {error:?}");
    }
}
