//! Property tests: round trips of the wire values, and that no secret-holding type ever shows
//! its secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay_model::{
    AccessToken, AppSecret, AuthorizationCode, CsrfState, MAX_UNIX, MIN_UNIX, MediaId, Paging, Timestamp,
    UserId, mask, snippet,
};
use proptest::prelude::*;

/// Secrets as Instagram issues them: long runs of letters, digits and a few symbols.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_+/=-]{8,64}"
}

/// Text around a secret, from an alphabet the secrets never use.
fn filler() -> impl Strategy<Value = String> {
    "[ a-z.,:;!?(){}\"<>]{0,24}"
}

/// Percent-encodes every byte outside the unreserved set, with upper- or lower-case hex.
fn percent_encoded(text: &str, lower: bool) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ if lower => format!("%{b:02x}"),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

proptest! {
    #[test]
    fn every_timestamp_in_range_round_trips_through_both_forms(unix in MIN_UNIX..=MAX_UNIX) {
        let t = Timestamp::from_unix(unix);
        prop_assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        prop_assert_eq!(Timestamp::parse(&t.to_rfc3339()).unwrap(), t);
        let json = serde_json::to_string(&t).unwrap();
        prop_assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    #[test]
    fn any_unix_value_is_clamped_to_a_writable_instant(unix in any::<i64>()) {
        let t = Timestamp::from_unix(unix);
        prop_assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        prop_assert_eq!(Timestamp::from_system_time(t.to_system_time()), t);
    }

    #[test]
    fn timestamp_parsing_never_panics(text in "\\PC{0,40}") {
        let _ = Timestamp::parse(&text);
    }

    #[test]
    fn ids_round_trip_through_json(id in "[0-9]{1,20}") {
        let user = UserId::new(id.clone());
        let json = serde_json::to_string(&user).unwrap();
        prop_assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), user);
        let media = MediaId::new(id);
        let json = serde_json::to_string(&media).unwrap();
        prop_assert_eq!(serde_json::from_str::<MediaId>(&json).unwrap(), media);
    }

    #[test]
    fn no_secret_type_shows_its_secret_in_debug(value in secret()) {
        let shown = [
            format!("{:?}", AccessToken::new(value.clone())),
            format!("{:?}", AppSecret::new(value.clone())),
            format!("{:?}", AuthorizationCode::new(value.clone())),
            format!("{:?}", CsrfState::new(value.clone())),
        ];
        for text in shown {
            prop_assert!(!text.contains(&value), "{}", text);
        }
    }

    #[test]
    fn mask_hides_a_secret_as_written_and_percent_encoded(
        value in secret(),
        before in filler(),
        between in filler(),
        after in filler(),
        lower in any::<bool>(),
    ) {
        let encoded = percent_encoded(&value, lower);
        let text = format!("{before}{value}{between}{encoded}{after}");
        let masked = mask(&text, &[&value]);
        prop_assert!(!masked.contains(&value), "{}", masked);
        prop_assert!(!masked.contains(&encoded), "{}", masked);
        let shown = snippet(text.as_bytes(), &[&value]);
        prop_assert!(!shown.contains(&value), "{}", shown);
    }

    #[test]
    fn paging_links_never_carry_the_token_out(token in secret(), cursor in "[A-Za-z0-9]{4,40}") {
        let next = format!(
            "https://graph.instagram.com/v21.0/17841405793187218/media?access_token={}&after={cursor}",
            percent_encoded(&token, false)
        );
        let body = serde_json::json!({ "cursors": { "after": cursor }, "next": next, "previous": next });
        let paging: Paging = serde_json::from_value(body).unwrap();
        let written = serde_json::to_string(&paging).unwrap();
        let debug = format!("{paging:?}");
        for text in [written, debug] {
            prop_assert!(!text.contains(&token) && !text.contains(&percent_encoded(&token, false)), "{}", text);
        }
        prop_assert_eq!(paging.after(), Some(cursor.as_str()));
    }
}

/// Case 48: a body nested deeper than serde_json's recursion limit (128) inside a field that
/// takes any JSON is a typed decode error naming where, not a stack overflow.
#[test]
fn a_body_nested_ten_thousand_deep_stops_at_the_recursion_limit() {
    let depth = 10_000;
    let body = format!(
        r#"{{"id":"17841405793187218","username":"jayposiris","extra":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let error = igdisplay_model::decode::<igdisplay_model::User>(body.as_bytes(), &[]).unwrap_err();
    assert!(error.reason.contains("recursion limit exceeded"), "{error}");
    assert!(error.path.starts_with("extra"), "{error}");
}
