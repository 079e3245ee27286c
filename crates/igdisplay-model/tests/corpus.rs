//! Decodes every sample body of the reference (`testdata/`) and snapshots the result.
//!
//! Sources: code exchange A.5/B.4, long-lived and refresh A.6/A.7/B.5, flat OAuth errors
//! A.3-A.5, Graph errors A.13/B.8, User A.8/B.6, Media A.10/B.7, lists and paging
//! A.9/A.11/A.12, usage headers A.14/B.8.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay_model::{
    AccountType, CodeExchangeResponse, ErrorBody, ErrorClass, ListResponse, LongLivedTokenResponse, Media,
    MediaByIds, MediaType, Usage, User,
};
use std::fmt::Debug;
use std::path::Path;

fn decode<T: serde::de::DeserializeOwned + Debug>(path: &Path) -> T {
    let body = std::fs::read(path).unwrap();
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The decoded value of a corpus file, as the type its folder names.
fn decoded(path: &Path) -> Box<dyn Debug> {
    let kind = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap();
    match kind {
        "code_exchange" => Box::new(decode::<CodeExchangeResponse>(path)),
        "long_lived" => Box::new(decode::<LongLivedTokenResponse>(path)),
        "oauth_error" | "graph_error" => {
            let body = std::fs::read(path).unwrap();
            Box::new(
                ErrorBody::parse(&body).unwrap_or_else(|| panic!("{}: not an error body", path.display())),
            )
        }
        "user" => Box::new(decode::<User>(path)),
        "media" => Box::new(decode::<Media>(path)),
        "media_list" => Box::new(decode::<ListResponse<Media>>(path)),
        "media_by_ids" => Box::new(decode::<MediaByIds>(path)),
        "usage" => {
            let header = std::fs::read(path).unwrap();
            let header = header.trim_ascii_end();
            let name = path.file_name().unwrap().to_string_lossy();
            Box::new(if name.starts_with("app_usage") {
                Usage::from_headers(Some(header), None)
            } else {
                Usage::from_headers(None, Some(header))
            })
        }
        other => panic!("unknown corpus folder {other}"),
    }
}

#[test]
fn every_sample_body_decodes_and_matches_its_snapshot() {
    insta::glob!("../testdata", "*/*.{json,txt}", |path| {
        insta::assert_debug_snapshot!(decoded(path));
    });
    // Then: no snapshot shows a token (every corpus token contains FAKETOKEN).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("FAKETOKEN"), "{} shows a token", path.display());
        seen += 1;
    }
    assert!(seen >= 51, "expected a snapshot per corpus file, found {seen}");
}

fn corpus(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

#[test]
fn user_ids_above_2_pow_53_keep_every_digit_in_every_shape() {
    let basic: CodeExchangeResponse = decode(&corpus("code_exchange/basic_display.json"));
    assert_eq!(basic.user_id.as_str(), "17841405793187218");
    assert_eq!(basic.permissions, None);
    let observed: CodeExchangeResponse = decode(&corpus("code_exchange/instagram_login_observed_flat.json"));
    assert_eq!(observed.user_id.as_u64(), Some(27_640_875_392_278_831));
    assert_eq!(
        observed.permissions.as_deref(),
        Some(&["instagram_business_basic".to_owned()][..])
    );
    let wrapped: CodeExchangeResponse =
        decode(&corpus("code_exchange/instagram_login_documented_wrapped.json"));
    assert_eq!(wrapped.permissions.as_ref().map(Vec::len), Some(3));
    assert!(wrapped.access_token.expose_secret().starts_with("EAACEdEose0"));
}

#[test]
fn recorded_oddities() {
    // A private account's /me may carry nothing but the id.
    let private: User = decode(&corpus("user/private_account_only_id.json"));
    assert_eq!(private, User::new("6489782497758472"));
    // The wrapped Instagram Login form names the account by `user_id` only.
    let wrapped: User = decode(&corpus("user/instagram_login_documented_wrapped.json"));
    assert_eq!(wrapped.id.as_str(), "17841400000000001");
    assert_eq!(wrapped.user_id, Some(wrapped.id.clone()));
    let spelled: User = decode(&corpus("user/docs_spelling_of_account_type.json"));
    assert_eq!(spelled.account_type, Some(AccountType::MediaCreator));
    // `next` is absent on the last page, and cursors can be identical on a one-item page.
    let last: ListResponse<Media> = decode(&corpus("media_list/last_page_without_next.json"));
    assert_eq!(last.next_cursor(), None);
    let same: ListResponse<Media> = decode(&corpus("media_list/one_item_identical_cursors.json"));
    let paging = same.paging.as_ref().unwrap();
    assert_eq!(paging.before(), paging.after());
    assert_eq!(same.next_cursor(), None);
    let first: ListResponse<Media> = decode(&corpus("media_list/first_page_with_next.json"));
    assert_eq!(first.next_cursor(), Some("QVFIUjMzC"));
    // Every field but `id` may be absent.
    let bare: Media = decode(&corpus("media/only_id.json"));
    assert_eq!(bare, Media::new("17900000000000003"));
}

#[test]
fn media_fields_of_both_platforms() {
    let album: Media = decode(&corpus("media/album_with_children_expansion.json"));
    assert!(album.is_album());
    assert_eq!(album.children().len(), 2);
    assert_eq!(album.children()[1].media_type, Some(MediaType::Video));
    assert_eq!(album.timestamp.unwrap().to_string(), "2020-01-24T09:00:00+0000");
    let emoji: Media = decode(&corpus("media/escaped_slashes_and_emoji.json"));
    assert_eq!(emoji.caption.as_deref(), Some("Sunset 🌅 at the beach #tbt"));
    assert_eq!(
        emoji.permalink.as_deref(),
        Some("https://www.instagram.com/p/B5xTnGtF8Qm/")
    );
    let unknown: Media = decode(&corpus("media/unknown_media_type.json"));
    assert_eq!(unknown.media_type, Some(MediaType::Unknown("REEL".into())));
    let copyright: Media = decode(&corpus("media/copyright_flagged_without_url.json"));
    assert_eq!(copyright.media_url, None);
}

#[test]
fn error_bodies_classify_as_the_reference_says() {
    let cases = [
        ("graph_error/invalid_token.json", 400, ErrorClass::InvalidToken),
        ("graph_error/session_expired.json", 400, ErrorClass::InvalidToken),
        ("graph_error/password_changed.json", 400, ErrorClass::InvalidToken),
        (
            "graph_error/unsupported_request_after_shutdown.json",
            400,
            ErrorClass::InvalidParameter,
        ),
        ("graph_error/app_rate_limit.json", 403, ErrorClass::RateLimited),
        ("graph_error/user_rate_limit.json", 400, ErrorClass::RateLimited),
        (
            "graph_error/permission_denied.json",
            400,
            ErrorClass::PermissionDenied,
        ),
        (
            "graph_error/unknown_path_components.json",
            400,
            ErrorClass::InvalidParameter,
        ),
        (
            "graph_error/transient_with_error_data.json",
            500,
            ErrorClass::Transient,
        ),
    ];
    for (file, status, class) in cases {
        let body = std::fs::read(corpus(file)).unwrap();
        let Some(ErrorBody::Graph(graph)) = ErrorBody::parse(&body) else {
            panic!("{file}: not a Graph error")
        };
        assert_eq!(graph.error.class(status), class, "{file}");
    }
    let body = std::fs::read(corpus("oauth_error/unknown_keys_kept.json")).unwrap();
    let Some(ErrorBody::OAuth(oauth)) = ErrorBody::parse(&body) else {
        panic!("not an OAuth error")
    };
    assert_eq!(oauth.extra["error_trace"], "abc");
    assert_eq!(oauth.extra.len(), 2);
}

#[test]
fn a_user_with_its_media_by_edge_expansion_keeps_the_nested_page() {
    let user: User = decode(&corpus("user/nested_media_page_by_expansion.json"));
    let media = user.media.as_ref().unwrap();
    assert_eq!(media.data.len(), 2);
    assert_eq!(media.next_cursor(), Some("QVFIUjMz"));
    assert!(!format!("{user:?}").contains("FAKETOKEN"));
}

#[test]
fn unknown_user_and_media_fields_round_trip() {
    let user: User = decode(&corpus("user/nested_media_page_by_expansion.json"));
    assert_eq!(user.extra.get("ig_id"), Some(&serde_json::json!(1784140579u64)));
    let back = serde_json::to_value(&user).unwrap();
    assert_eq!(back["ig_id"], 1784140579u64);

    let media: Media = decode(&corpus("media/unknown_fields_kept.json"));
    assert_eq!(
        media.extra.names().collect::<Vec<_>>(),
        ["boost_ads_list", "copyright_check_information", "ig_id"]
    );
    let again: Media = serde_json::from_value(serde_json::to_value(&media).unwrap()).unwrap();
    assert_eq!(again, media);
    assert_eq!(
        serde_json::to_value(&media).unwrap()["ig_id"],
        serde_json::json!(2413572894651234567u64),
        "large numbers keep every digit"
    );
}

#[test]
fn only_the_wrapped_form_takes_user_id_for_id() {
    let wrapped: User = serde_json::from_str(r#"{"data": [{"user_id": "17841400000000001"}]}"#).unwrap();
    assert_eq!(wrapped.id.as_str(), "17841400000000001");
    let flat = serde_json::from_str::<User>(r#"{"user_id": "17841400000000001", "username": "x"}"#);
    assert!(flat.unwrap_err().to_string().contains("missing field `id`"));
}

#[test]
fn a_batch_read_is_keyed_by_media_id() {
    let batch: MediaByIds = decode(&corpus("media_by_ids/two_media.json"));
    let ids: Vec<&str> = batch.keys().map(|id| id.as_str()).collect();
    assert_eq!(ids, ["17895695668004550", "17899305451014820"]);
    assert_eq!(batch.values().next().unwrap().caption.as_deref(), Some("one"));
}
