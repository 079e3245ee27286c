//! The one percent-encoding of the client crates: query strings and form bodies, every name
//! and value encoded exactly once, everything but RFC 3986's unreserved characters escaped.

/// Whether each byte is sent as it is: RFC 3986's unreserved characters `A-Z a-z 0-9 - . _ ~`.
/// Every other byte (UTF-8 bytes too) is percent-encoded.
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        byte += 1;
    }
    table
};

/// Appends `text` percent-encoded: runs of unreserved bytes copied whole, the rest `%XX`.
fn push_encoded(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = text.as_bytes();
    // Names, tokens and ids are usually all unreserved: one check, one copy.
    if bytes.iter().all(|&b| UNRESERVED[usize::from(b)]) {
        out.push_str(text);
        return;
    }
    let mut run = 0;
    while let Some(offset) = bytes
        .get(run..)
        .and_then(|rest| rest.iter().position(|&b| !UNRESERVED[usize::from(b)]))
    {
        let at = run + offset;
        // A run of unreserved bytes is ASCII, so it starts and ends on character boundaries.
        out.push_str(text.get(run..at).unwrap_or_default());
        let byte = bytes[at];
        out.push('%');
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        run = at + 1;
    }
    out.push_str(text.get(run..).unwrap_or_default());
}

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
    let mut query = QueryWriter::new(uri);
    for (name, value) in pairs {
        query.pair(name, value);
    }
}

/// Writes `name=value` pairs onto a URI or form body being built, with the rules of
/// [`append_query`], for values that come in parts: a value written from its parts is
/// encoded as it is written, never assembled into a string of its own first.
///
/// ```
/// use igdisplay_http::QueryWriter;
///
/// let mut uri = "https://graph.instagram.com/me".to_owned();
/// let mut query = QueryWriter::new(&mut uri);
/// query.pair_with("fields", |value| {
///     for (i, name) in ["id", "username"].into_iter().enumerate() {
///         value.push(if i == 0 { "" } else { "," }).push(name);
///     }
/// });
/// query.pair("access_token", "T0KEN");
/// assert_eq!(uri, "https://graph.instagram.com/me?fields=id%2Cusername&access_token=T0KEN");
/// ```
#[derive(Debug)]
pub struct QueryWriter<'a> {
    out: &'a mut String,
    /// What goes before the next pair: `None` at the start of a standalone query.
    separator: Option<char>,
}

impl<'a> QueryWriter<'a> {
    /// Continues `out`: an empty `out` is a standalone query (a form body) whose first pair
    /// has no separator; otherwise the first pair follows a `?`, or a `&` when `out` already
    /// has a query.
    pub fn new(out: &'a mut String) -> Self {
        let separator = if out.is_empty() {
            None
        } else if out.contains('?') {
            Some('&')
        } else {
            Some('?')
        };
        Self { out, separator }
    }

    /// Appends `name=value`.
    pub fn pair(&mut self, name: &str, value: &str) -> &mut Self {
        self.pair_with(name, |v| {
            v.push(value);
        })
    }

    /// Appends `name=` and the value `write` pushes, part by part, each part encoded as it
    /// is pushed.
    pub fn pair_with(&mut self, name: &str, write: impl FnOnce(&mut QueryValue<'_>)) -> &mut Self {
        if let Some(separator) = self.separator {
            self.out.push(separator);
        }
        self.separator = Some('&');
        push_encoded(self.out, name);
        self.out.push('=');
        write(&mut QueryValue { out: self.out });
        self
    }
}

/// The value of the pair [`QueryWriter::pair_with`] is writing.
#[derive(Debug)]
pub struct QueryValue<'a> {
    out: &'a mut String,
}

impl QueryValue<'_> {
    /// Appends `part` to the value, percent-encoded.
    pub fn push(&mut self, part: &str) -> &mut Self {
        push_encoded(self.out, part);
        self
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
    fn multibyte_text_and_every_reserved_byte_are_escaped_whole() {
        assert_eq!(encode_query([("ü", "日本 x")]), "%C3%BC=%E6%97%A5%E6%9C%AC%20x");
        let all: String = (0u8..128).map(char::from).collect();
        let encoded = encode_query([("a", all.as_str())]);
        let kept: String = encoded[2..]
            .split('%')
            .map(|part| part.get(2..).unwrap_or(part))
            .collect();
        assert_eq!(
            kept,
            "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
        );
    }

    #[test]
    fn a_value_written_in_parts_is_the_value_written_whole() {
        let mut parts = String::new();
        QueryWriter::new(&mut parts).pair_with("f", |value| {
            for part in ["id", ",", "children{", "a b", "}"] {
                value.push(part);
            }
        });
        assert_eq!(parts, encode_query([("f", "id,children{a b}")]));
    }

    #[test]
    fn no_pairs_leave_the_uri_alone() {
        let mut uri = "https://x.example/p".to_owned();
        append_query(&mut uri, []);
        assert_eq!(uri, "https://x.example/p");
        assert_eq!(encode_query([]), "");
    }
}
