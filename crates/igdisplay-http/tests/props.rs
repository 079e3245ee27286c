//! Property tests: the one query encoding round trips, and redaction hides every sensitive
//! value whatever it holds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay_http::{SENSITIVE_QUERY_PARAMS, append_query, encode_query, redact_uri};
use percent_encoding::percent_decode_str;
use proptest::prelude::*;

fn decode(component: &str) -> String {
    percent_decode_str(component).decode_utf8().unwrap().into_owned()
}

proptest! {
    #[test]
    fn encoded_pairs_decode_to_themselves(pairs in prop::collection::vec(("\\PC{0,12}", "\\PC{0,24}"), 0..6)) {
        let query = encode_query(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let decoded: Vec<(String, String)> = if query.is_empty() {
            Vec::new()
        } else {
            query
                .split('&')
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap();
                    (decode(name), decode(value))
                })
                .collect()
        };
        prop_assert_eq!(decoded, pairs);
        // Only unreserved characters and escapes: nothing a URI or form parser reads twice.
        prop_assert!(query.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%=&".contains(&b)), "{}", query);
    }

    #[test]
    fn appending_keeps_the_existing_query(value in "\\PC{0,24}") {
        let mut uri = "https://graph.instagram.com/me?fields=id".to_owned();
        append_query(&mut uri, [("after", value.as_str())]);
        let (head, tail) = uri.split_once("&after=").unwrap();
        prop_assert_eq!(head, "https://graph.instagram.com/me?fields=id");
        prop_assert_eq!(decode(tail), value);
    }

    #[test]
    fn every_sensitive_value_is_masked(
        index in 0..SENSITIVE_QUERY_PARAMS.len(),
        secret in "[A-Za-z0-9]{8,40}",
        fragment in any::<bool>(),
    ) {
        let name = SENSITIVE_QUERY_PARAMS[index];
        let mut uri = "https://user:CANARY-PASSWORD@graph.instagram.com/me".to_owned();
        append_query(&mut uri, [("fields", "id"), (name, secret.as_str()), ("limit", "5")]);
        if fragment {
            uri.push_str("#_");
        }
        let shown = redact_uri(&uri).to_string();
        prop_assert!(!shown.contains(&secret) && !shown.contains("CANARY-PASSWORD"), "{}", shown);
        prop_assert!(shown.contains("fields=id") && shown.contains("limit=5"), "{}", shown);
    }
}
