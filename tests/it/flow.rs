//! The complete flow, for every backend and platform.

use crate::{cases, login};
use futures_util::TryStreamExt;
use igdisplay::Instagram;
use igdisplay::auth::TokenKind;
use igdisplay::http::{HttpBackend, http};
use igdisplay::model::{MediaType, Platform};
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test]
async fn login_profile_media_albums_and_automatic_refresh() {
    for case in cases() {
        let mock = case.mock();
        let instagram = case.client(&mock);
        let token = login(&mock, &instagram, "jayposiris").await;
        assert_eq!(token.kind, TokenKind::LongLived, "{case:?}");
        // Basic Display's exchange names the id of paging links, Instagram Login's the
        // app-scoped one of `/me` (as recorded): the token is stored under it either way.
        let exchanged_id = match case.platform {
            Platform::BasicDisplay => mock.users()[0].user_id.clone(),
            _ => mock.users()[0].id.clone(),
        };
        assert_eq!(token.user_id.as_str(), exchanged_id);
        assert_eq!(token.expires_at.unix(), mock.now() + 5_184_000);

        let graph = instagram.graph(&token.user_id);
        let me = graph.me().all_fields().send().await.unwrap();
        assert_eq!(me.username.as_deref(), Some("jayposiris"), "{case:?}");
        assert_eq!(me.media_count, Some(40));
        if case.platform == Platform::InstagramLogin {
            assert_eq!(
                me.user_id.as_ref().map(|id| id.as_str().to_owned()),
                Some(mock.users()[0].user_id.clone())
            );
            // Reference C.1b: asked for with every field, decoded when present.
            assert!(
                me.biography.as_deref().is_some_and(|b| b.contains("Lisbon")),
                "{me:?}"
            );
            assert_eq!(me.website, None, "this profile has none: left out");
        }

        let media: Vec<_> = graph
            .my_media()
            .all_fields()
            .with_children()
            .into_stream()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(media.len(), 40, "{case:?}");
        assert!(
            media.windows(2).all(|w| w[0].timestamp > w[1].timestamp),
            "newest first"
        );
        let album = media
            .iter()
            .find(|m| m.media_type == Some(MediaType::CarouselAlbum))
            .unwrap();
        assert!(album.children().len() >= 2);
        let children = graph.children(&album.id).send().await.unwrap();
        assert_eq!(children.items.len(), album.children().len());
        let node = graph.media(&album.id).with_children().send().await.unwrap();
        assert_eq!(node.children().len(), album.children().len());
        mock.expect_requests("GET", "/me/media", 2).unwrap();

        // The media URL is a real image, fetched without the token.
        let image = media
            .iter()
            .find(|m| m.media_type == Some(MediaType::Image))
            .unwrap();
        let url = image.media_url.clone().unwrap();
        assert!(!url.contains("access_token"));
        let bytes = instagram
            .backend()
            .send(http::Request::get(url).body(Default::default()).unwrap().into())
            .await
            .unwrap();
        assert_eq!(&bytes.body()[..2], [0xFF, 0xD8]);

        // Fifty-one days on, the next call refreshes the token first, exactly once.
        mock.advance(51 * DAY);
        graph.me().send().await.unwrap();
        graph.me().send().await.unwrap();
        mock.expect_requests("GET", "/refresh_access_token", 1).unwrap();
        let stored = instagram.tokens().record(&token.user_id).await.unwrap();
        assert_eq!(stored.issued_at.unix(), mock.now());
        assert_ne!(
            stored.access_token.expose_secret(),
            token.access_token.expose_secret()
        );
    }
}

#[tokio::test]
async fn a_read_only_client_serves_and_refreshes_a_dashboard_token() {
    for case in cases() {
        let mock = case.mock();
        let instagram = Instagram::read_only(case.platform)
            .mock(mock.base_url())
            .backend(case.backend())
            .clock(igdisplay::follow_mock_clock(&mock))
            .build()
            .unwrap();
        let issued = mock
            .issue_token("cafe_nova", igdisplay::mock::TokenLifetime::LongLived)
            .unwrap();
        let user = igdisplay::model::UserId::new(issued.user_id);
        let record = igdisplay::auth::TokenRecord::new(
            user.clone(),
            igdisplay::model::AccessToken::new(issued.access_token),
            TokenKind::LongLived,
            case.platform,
            instagram.clock().now(),
            Duration::from_secs(u64::try_from(issued.expires_in).unwrap()),
        );
        instagram.tokens().import(record).await.unwrap();
        let me = instagram.graph(&user).me().send().await.unwrap();
        assert_eq!(me.username.as_deref(), Some("cafe_nova"), "{case:?}");
        // Refreshing needs only the token: at day 51 it is renewed on the next query.
        mock.advance(Duration::from_secs(51 * 86_400));
        instagram.graph(&user).me().send().await.unwrap();
        mock.expect_requests("GET", "/refresh_access_token", 1).unwrap();
    }
}

#[tokio::test]
async fn a_read_only_client_refuses_to_log_in_with_a_typed_error() {
    let instagram = Instagram::read_only(Platform::InstagramLogin).build().unwrap();
    let error = instagram.authorize().build().unwrap_err();
    assert!(
        matches!(error, igdisplay::auth::AuthorizeError::NoAppCredentials),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_login_over_https_trusts_only_the_mocks_root() {
    for case in cases() {
        let mock = case.mock_with(|builder| builder.https());
        let config = igdisplay::http::BackendConfig::default()
            .trust_root_pem(mock.root_certificate_pem().unwrap().as_bytes().to_vec());
        let backend: igdisplay::http::SharedBackend = match case.backend {
            "reqwest" => std::sync::Arc::new(igdisplay::http::ReqwestBackend::with_config(config).unwrap()),
            _ => std::sync::Arc::new(igdisplay::http::HyperBackend::with_config(config).unwrap()),
        };
        let app = mock.app();
        let instagram = Instagram::builder(
            case.platform,
            app.id,
            igdisplay::model::AppSecret::new(app.secret),
            crate::REDIRECT,
        )
        .mock(mock.base_url())
        .backend_with_own_timeout(backend)
        .clock(igdisplay::follow_mock_clock(&mock))
        .build()
        .unwrap();
        let token = login(&mock, &instagram, "jayposiris").await;
        let me = instagram.graph(&token.user_id).me().send().await.unwrap();
        assert_eq!(me.username.as_deref(), Some("jayposiris"), "{case:?}");

        // Without the root, the same client cannot even connect.
        let stranger = case.client(&mock);
        let error = stranger
            .graph_with_token(token.access_token.clone())
            .me()
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(error, igdisplay::graph::Error::Transport { .. }),
            "{case:?}: {error:?}"
        );
    }
}

/// Whether the mock (Instagram's view) still accepts `token`.
async fn accepted(instagram: &Instagram, mock: &igdisplay::mock::MockServer, token: &str) -> bool {
    let url = format!("{}/me?fields=id&access_token={token}", mock.base_url());
    let response = instagram
        .backend()
        .send(http::Request::get(url).body(Default::default()).unwrap().into())
        .await
        .unwrap();
    response.status() == 200
}

/// Case 60: a local clock 10 minutes ahead of Instagram's or behind it. Expiry is counted
/// from the local send time, so the skew cancels: the client stops using a token at most
/// `expiry_margin` (60 s) before Instagram does, and never after.
#[tokio::test]
async fn a_clock_ten_minutes_off_still_judges_expiry_within_the_margin() {
    use igdisplay::auth::RefreshSchedule;
    use igdisplay::http::{Clock, ManualClock};
    let case = cases()[0];
    let policy = RefreshSchedule::default();
    for skew in [-600_i64, 600] {
        let mock = case.mock();
        let local = ManualClock::at_unix(u64::try_from(mock.now() + skew).unwrap());
        let instagram = case
            .builder(&mock)
            .clock(Arc::new(local.clone()))
            .build()
            .unwrap();
        let token = login(&mock, &instagram, "jayposiris").await;
        assert_eq!(
            token.expires_at.unix(),
            mock.now() + skew + 5_184_000,
            "skew {skew}"
        );
        let secret = token.access_token.expose_secret();
        let both = |by: Duration| {
            mock.advance(by);
            local.advance(by);
        };
        // Two minutes before Instagram's expiry: valid for both.
        both(60 * DAY - Duration::from_secs(120));
        assert!(!policy.is_expired(&token, local.now()), "skew {skew}");
        assert!(accepted(&instagram, &mock, secret).await, "skew {skew}");
        // Thirty seconds before: the client has stopped, Instagram would still accept.
        both(Duration::from_secs(90));
        assert!(policy.is_expired(&token, local.now()), "skew {skew}");
        assert!(accepted(&instagram, &mock, secret).await, "skew {skew}");
        // After: both refuse.
        both(Duration::from_secs(31));
        assert!(token.is_expired(local.now()), "skew {skew}");
        assert!(!accepted(&instagram, &mock, secret).await, "skew {skew}");
    }
}
