//! The cursor paging object of every Graph edge, and the `{data, paging}` list envelope.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A list response: one page of an edge such as `/{user-id}/media` or `/{media-id}/children`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ListResponse<T> {
    /// The items of this page, newest first for the media edge.
    pub data: Vec<T>,
    /// The cursors and links to the neighbouring pages; absent on some responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
}

impl<T> ListResponse<T> {
    /// A page holding `data` and no paging information.
    pub fn new(data: Vec<T>) -> Self {
        Self { data, paging: None }
    }

    /// The cursor of the next page, if Instagram says there is one: `paging.next` present
    /// and a non-empty `paging.cursors.after`.
    pub fn next_cursor(&self) -> Option<&str> {
        let paging = self.paging.as_ref()?;
        paging.next.as_ref()?;
        paging.after()
    }
}

/// `paging`: opaque cursors, plus absolute links that embed the access token.
///
/// `Debug` masks `next` and `previous` because they carry the token; rebuild the next request
/// from [`Paging::after`] against your own base URL instead of following `next`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Paging {
    /// The `before`/`after` cursors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursors: Option<Cursors>,
    /// Absolute URL of the next page; absent on the last page. It carries the access token:
    /// serialized, its `access_token` value is written as `[redacted]`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "masked_link"
    )]
    pub next: Option<String>,
    /// Absolute URL of the previous page; absent on the first page. Serialized like `next`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "masked_link"
    )]
    pub previous: Option<String>,
}

impl Paging {
    /// The `after` cursor, if present and non-empty.
    pub fn after(&self) -> Option<&str> {
        self.cursors.as_ref()?.after.as_deref().filter(|c| !c.is_empty())
    }

    /// The `before` cursor, if present and non-empty.
    pub fn before(&self) -> Option<&str> {
        self.cursors.as_ref()?.before.as_deref().filter(|c| !c.is_empty())
    }
}

/// Writes a paging link with the value of its `access_token` (and any `client_secret`)
/// replaced by [`MASK`](crate::MASK): a cached or exported page never holds a token.
fn masked_link<S: serde::Serializer>(link: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    match link {
        Some(link) => serializer.serialize_some(&mask_link_secrets(link)),
        None => serializer.serialize_none(),
    }
}

/// `link` with the values of its `access_token` and `client_secret` parameters masked.
fn mask_link_secrets(link: &str) -> String {
    let Some((base, query)) = link.split_once('?') else {
        return link.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if matches!(name, "access_token" | "client_secret") => {
                format!("{name}={}", crate::MASK)
            }
            _ => pair.to_owned(),
        })
        .collect();
    let mut out = format!("{base}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

impl fmt::Debug for Paging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |link: &Option<String>| link.as_ref().map(|_| "[redacted url]");
        f.debug_struct("Paging")
            .field("cursors", &self.cursors)
            .field("next", &mask(&self.next))
            .field("previous", &mask(&self.previous))
            .finish()
    }
}

/// `paging.cursors`: opaque strings, identical on a one-item page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cursors {
    /// Points at the start of this page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Points at the end of this page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_links_that_carry_the_token() {
        let page: ListResponse<u8> = serde_json::from_str(
            r#"{"data":[1],"paging":{"cursors":{"before":"B","after":"A"},
                "next":"https://graph.instagram.com/v1.0/1/media?access_token=CANARY&after=A"}}"#,
        )
        .unwrap();
        let debug = format!("{page:?}");
        assert!(!debug.contains("CANARY"), "{debug}");
        assert!(debug.contains("[redacted url]"));
        assert_eq!(page.next_cursor(), Some("A"));
    }

    #[test]
    fn last_page_and_empty_cursor_have_no_next_cursor() {
        let last: ListResponse<u8> =
            serde_json::from_str(r#"{"data":[],"paging":{"cursors":{"before":"B","after":"A"}}}"#).unwrap();
        assert_eq!(last.next_cursor(), None);
        let empty: ListResponse<u8> = serde_json::from_str(
            r#"{"data":[],"paging":{"cursors":{"after":""},"next":"https://graph.instagram.com/x"}}"#,
        )
        .unwrap();
        assert_eq!(empty.next_cursor(), None);
        assert_eq!(ListResponse::new(vec![1u8]).next_cursor(), None);
    }
}

#[cfg(test)]
mod serialization_tests {
    use super::*;

    #[test]
    fn a_serialized_page_never_holds_the_token_of_its_links() {
        let page: ListResponse<serde_json::Value> = serde_json::from_str(
            r#"{"data":[],"paging":{"cursors":{"after":"A"},
                "next":"https://graph.instagram.com/v1.0/1/media?access_token=CANARY&limit=2&after=A"}}"#,
        )
        .unwrap();
        let written = serde_json::to_string(&page).unwrap();
        assert!(!written.contains("CANARY"), "{written}");
        assert!(
            written.contains("access_token=[redacted]&limit=2&after=A"),
            "{written}"
        );
        let back: ListResponse<serde_json::Value> = serde_json::from_str(&written).unwrap();
        assert_eq!(
            back.next_cursor(),
            Some("A"),
            "the page still says another follows"
        );
    }
}
