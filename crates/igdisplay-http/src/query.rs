//! The one percent-encoding of the client crates: query strings and form bodies, every name
//! and value encoded exactly once, everything but RFC 3986's unreserved characters escaped.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but the unreserved characters `A-Z a-z 0-9 - . _ ~` is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `name=value&...`, each name and value percent-encoded: a query string without its `?`, or
/// an `application/x-www-form-urlencoded` body.
///
/// ```
/// let query = igdisplay_http::encode_query([("fields", "id,children{id}"), ("q", "a b&c")]);
/// assert_eq!(query, "fields=id%2Cchildren%7Bid%7D&q=a%20b%26c");
/// ```
pub fn encode_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    append_query(&mut out, pairs);
    out
}

/// Appends `pairs` to `uri`: the first after a `?` (or after `&` when `uri` already has a
/// query), the others after `&`.
///
/// ```
/// let mut uri = "https://graph.instagram.com/me".to_owned();
/// igdisplay_http::append_query(&mut uri, [("fields", "id"), ("limit", "5")]);
/// assert_eq!(uri, "https://graph.instagram.com/me?fields=id&limit=5");
/// ```
pub fn append_query<'a>(uri: &mut String, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let mut separator = if uri.contains('?') { '&' } else { '?' };
    let standalone = uri.is_empty();
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if !(standalone && i == 0) {
            uri.push(separator);
        }
        separator = '&';
        uri.extend(utf8_percent_encode(name, COMPONENT));
        uri.push('=');
        uri.extend(utf8_percent_encode(value, COMPONENT));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_characters_pass_and_the_rest_is_escaped_once() {
        assert_eq!(encode_query([("a", "-._~AZaz09")]), "a=-._~AZaz09");
        assert_eq!(encode_query([("a", "%2F é+")]), "a=%252F%20%C3%A9%2B");
    }

    #[test]
    fn an_existing_query_is_continued() {
        let mut uri = "https://x.example/p?a=1".to_owned();
        append_query(&mut uri, [("b", "2")]);
        assert_eq!(uri, "https://x.example/p?a=1&b=2");
    }

    #[test]
    fn no_pairs_leave_the_uri_alone() {
        let mut uri = "https://x.example/p".to_owned();
        append_query(&mut uri, []);
        assert_eq!(uri, "https://x.example/p");
        assert_eq!(encode_query([]), "");
    }
}
