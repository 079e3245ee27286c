//! Requests in, replies out: query and form parsing (urlencoded and multipart), JSON, HTML
//! and the two Instagram error shapes.
//!
//! The two error shapes, as Instagram sends them:
//!
//! ```json
//! {"error_type": "OAuthException", "code": 400, "error_message": "Invalid platform app"}
//! {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190,
//!            "fbtrace_id": "AaauHBIaCwjNFlnZ"}}
//! ```
//!
//! The first comes from the authorize window and `api.instagram.com` (the code exchange); the
//! second from `graph.instagram.com`, with `error_subcode` and `is_transient` when they apply.
//! Query strings are decoded leniently (a component that is not valid percent-encoding is kept
//! as sent) so that a client's encoding mistake reaches a route and fails there, with the
//! message Instagram would give, rather than in the parser.

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Value, json};

/// Everything but the RFC 3986 unreserved characters is percent-encoded.
///
/// The client crates encode through `igdisplay_http::encode_query`; the mock keeps its own set
/// on purpose. It is the oracle of the client's tests and shares no code with it (an
/// architecture invariant), so an encoding mistake in the client cannot pass because the mock
/// makes the same one.
pub(crate) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one query component.
pub(crate) fn encode(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// A request as the routes see it: the method, the URI (its path is the route), the query
/// decoded once, the headers, and the whole body (capped by the server before it gets here).
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) method: http::Method,
    pub(crate) uri: http::Uri,
    pub(crate) query: Query,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Req {
    /// The API version the path starts with (`/v24.0/me`: `v24.0`), if it does: the fake
    /// answers in the version it was asked in.
    pub(crate) fn api_version(&self) -> Option<&str> {
        let first = self.path().split('/').find(|s| !s.is_empty())?;
        is_version(first).then_some(first)
    }

    /// A request of `method` to `uri`; the query is decoded here.
    pub(crate) fn new(method: http::Method, uri: http::Uri, headers: http::HeaderMap, body: Bytes) -> Self {
        let query = Query::parse(uri.query().unwrap_or_default());
        Self {
            method,
            uri,
            query,
            headers,
            body,
        }
    }

    /// The path, without the query.
    pub(crate) fn path(&self) -> &str {
        self.uri.path()
    }

    /// The first value of a query parameter.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name)
    }

    /// The form fields of the body (urlencoded or multipart). The token endpoints accept both,
    /// as Instagram does: the documentation's `curl -F` examples send multipart.
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        let content_type = self
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if let Some(boundary) = content_type
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("boundary="))
        {
            return multipart(&self.body, boundary.trim_matches('"'));
        }
        parse_query(&String::from_utf8_lossy(&self.body))
    }
}

/// `a=1&b=%2F` → pairs, `+` as space; undecodable components are kept as sent.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    Query::parse(query).to_pairs()
}

/// A decoded query: every name and value in one string, found by their ends (a request's
/// query costs two allocations, however many parameters it has).
#[derive(Debug, Default)]
pub(crate) struct Query {
    text: String,
    /// For each pair, where its name ends and where its value ends in `text`.
    ends: Vec<(usize, usize)>,
}

impl Query {
    /// `a=1&b=%2F+x` decoded: `+` as space, a malformed escape kept as sent and bytes that are
    /// not UTF-8 replaced (so a garbled parameter is refused by the route, not the parser).
    pub(crate) fn parse(query: &str) -> Self {
        let mut parsed = Self {
            text: String::with_capacity(query.len()),
            ends: Vec::with_capacity(query.len() / 16 + 1),
        };
        let mut scratch = Vec::new();
        let mut start = 0;
        let ends = memchr::memchr_iter(b'&', query.as_bytes()).chain([query.len()]);
        for pair in ends.map(|end| {
            let pair = query.get(start..end).unwrap_or_default();
            start = end + 1;
            pair
        }) {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            parsed.push_decoded(name, &mut scratch);
            let name_end = parsed.text.len();
            parsed.push_decoded(value, &mut scratch);
            parsed.ends.push((name_end, parsed.text.len()));
        }
        parsed
    }

    /// Appends one decoded component.
    fn push_decoded(&mut self, component: &str, scratch: &mut Vec<u8>) {
        // Most components (tokens, ids, cursors) need no decoding: copied once.
        if memchr::memchr2(b'%', b'+', component.as_bytes()).is_none() {
            self.text.push_str(component);
            return;
        }
        scratch.clear();
        for (i, piece) in component.split('+').enumerate() {
            if i > 0 {
                scratch.push(b' ');
            }
            scratch.extend(percent_decode_str(piece));
        }
        match std::str::from_utf8(scratch) {
            Ok(text) => self.text.push_str(text),
            Err(_) => self.text.push_str(&String::from_utf8_lossy(scratch)),
        }
    }

    /// The pairs in order, repeated names kept.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let name = self.text.get(start..name_end).unwrap_or_default();
            let value = self.text.get(name_end..value_end).unwrap_or_default();
            start = value_end;
            (name, value)
        })
    }

    /// The pairs as owned strings (the authorize window keeps them).
    pub(crate) fn to_pairs(&self) -> Vec<(String, String)> {
        self.pairs().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// The text fields of a `multipart/form-data` body (as `curl -F` sends).
fn multipart(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    text.split(delimiter.as_str())
        .filter_map(|part| {
            let (head, value) = part.split_once("\r\n\r\n")?;
            let name = head.split("name=\"").nth(1)?.split('"').next()?;
            Some((
                name.to_owned(),
                value.strip_suffix("\r\n").unwrap_or(value).to_owned(),
            ))
        })
        .collect()
}

/// A reply before it becomes an HTTP response. The headers are the response's own map: a
/// reply becomes a response without copying them.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

/// `X-Fb-Request-Id`: on every Graph answer, the error's `fbtrace_id` on an error.
pub(crate) const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-fb-request-id");

/// `Content-Type` of the Graph answers.
const JSON: http::HeaderValue = http::HeaderValue::from_static("application/json; charset=UTF-8");
/// `Cache-Control` of the Graph answers.
const NO_CACHE: http::HeaderValue =
    http::HeaderValue::from_static("private, no-cache, no-store, must-revalidate");

impl Reply {
    /// A reply of `status` with `body` of `content_type`.
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        let mut reply = Self::empty(status, body);
        reply.push_header("content-type", content_type);
        reply
    }

    /// A reply without headers.
    fn empty(status: u16, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            // Room for what a Graph answer carries: no growing on the way.
            headers: http::HeaderMap::with_capacity(12),
            body: body.into(),
        }
    }

    /// JSON, with the headers Instagram sends on Graph responses (`application/json;
    /// charset=UTF-8` and no caching).
    pub(crate) fn json(status: u16, value: &Value) -> Self {
        // Straight into bytes: `to_string` would go through `Display` and a formatter.
        match serde_json::to_vec(value) {
            Ok(body) => Self::json_bytes(status, body),
            Err(error) => Self::unrendered(&error),
        }
    }

    /// The answer when a body could not be rendered (never for a `serde_json::Value`; were it
    /// to happen, a 500 that says so rather than an empty 200).
    pub(crate) fn unrendered(error: &serde_json::Error) -> Self {
        Self::new(
            500,
            "text/plain; charset=utf-8",
            format!("the mock could not render its answer: {error}"),
        )
    }

    /// As [`Reply::json`], for a body already rendered.
    pub(crate) fn json_bytes(status: u16, body: Vec<u8>) -> Self {
        let mut reply = Self::empty(status, body);
        reply.headers.append(http::header::CONTENT_TYPE, JSON);
        reply.headers.append(http::header::CACHE_CONTROL, NO_CACHE);
        reply
    }

    /// An HTML page (the authorize window), never cached, with a CSP that allows no script:
    /// the window works with forms alone.
    pub(crate) fn html(status: u16, page: String) -> Self {
        Self::new(status, "text/html; charset=utf-8", page)
            .header("cache-control", "no-store")
            .header(
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action *",
            )
    }

    /// A 302 to `location` (the window's answer).
    pub(crate) fn redirect(location: String) -> Self {
        Self::new(302, "text/html; charset=utf-8", Bytes::new()).header("location", location)
    }

    /// Replaces every value of a header with `value` (dropped if it is not a valid value).
    pub(crate) fn set_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        let name = http::HeaderName::from_static(name);
        self.headers.remove(&name);
        if let Ok(value) = http::HeaderValue::try_from(value.into()) {
            self.headers.append(name, value);
        }
        self
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.push_header(name, value);
        self
    }

    /// Adds a header in place; a value that is not valid HTTP is dropped rather than failing
    /// the reply.
    pub(crate) fn push_header(&mut self, name: &'static str, value: impl Into<String>) {
        if let Ok(value) = http::HeaderValue::try_from(value.into()) {
            self.headers.append(http::HeaderName::from_static(name), value);
        }
    }

    /// The flat OAuth error of `api.instagram.com/oauth/*` and the authorize window.
    pub(crate) fn oauth_error(message: &str) -> Self {
        Self::json(
            400,
            &json!({"error_type": "OAuthException", "code": 400, "error_message": message}),
        )
    }
}

/// A Graph error body: `{"error": {...}}`.
#[derive(Debug)]
pub(crate) struct GraphFailure {
    pub(crate) status: u16,
    pub(crate) kind: &'static str,
    pub(crate) code: i64,
    pub(crate) subcode: Option<i64>,
    pub(crate) message: String,
    pub(crate) transient: bool,
    /// Whether the body carries `fbtrace_id` (Instagram Login's nonexisting-field error does not).
    pub(crate) traced: bool,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl GraphFailure {
    /// A Graph error of HTTP `status`, `type` `kind`, `code` and `message`.
    pub(crate) fn new(status: u16, kind: &'static str, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code,
            subcode: None,
            message: message.into(),
            transient: false,
            traced: true,
            headers: Vec::new(),
        }
    }

    /// Leaves `fbtrace_id` out of the body, as Instagram Login's field errors do.
    pub(crate) fn untraced(mut self) -> Self {
        self.traced = false;
        self
    }

    /// Adds a header (a usage header on a rate-limit error).
    pub(crate) fn with_header(mut self, header: (&'static str, String)) -> Self {
        self.headers.push(header);
        self
    }

    /// Sets `error_subcode` (463 expired, 460 invalidated, 33 unknown object).
    pub(crate) fn subcode(mut self, subcode: i64) -> Self {
        self.subcode = Some(subcode);
        self
    }

    /// Marks the error `is_transient: true`, as Instagram does for codes 1, 2 and 17.
    pub(crate) fn transient(mut self) -> Self {
        self.transient = true;
        self
    }

    /// The HTTP reply: `{"error": {message, type, code, error_subcode?, is_transient?,
    /// fbtrace_id?}}` with `Cache-Control: no-store`, `X-Fb-Request-Id` equal to the
    /// `fbtrace_id`, and a `WWW-Authenticate: OAuth "Facebook Platform" "invalid_token"
    /// "<message>"` header on a 190 (`"invalid_request"` on a permission error: 10, 200-299),
    /// as recorded responses carry.
    pub(crate) fn reply(self, fbtrace_id: String) -> Reply {
        let mut error = json!({"message": self.message, "type": self.kind, "code": self.code});
        if self.traced {
            error["fbtrace_id"] = json!(fbtrace_id);
        }
        if let Some(subcode) = self.subcode {
            error["error_subcode"] = json!(subcode);
        }
        if self.transient {
            error["is_transient"] = json!(true);
        }
        let mut reply =
            Reply::json(self.status, &json!({ "error": error })).set_header("cache-control", "no-store");
        if let Ok(id) = http::HeaderValue::try_from(fbtrace_id) {
            reply.headers.append(REQUEST_ID, id);
        }
        for (name, value) in self.headers {
            reply = reply.header(name, value);
        }
        // 190 is a bad token; 10 and 200-299 a missing permission (recorded as a 403 with code 10).
        let challenge = match self.code {
            190 => Some("invalid_token"),
            10 | 200..=299 => Some("invalid_request"),
            _ => None,
        };
        if let Some(kind) = challenge {
            reply = reply.header(
                "www-authenticate",
                format!(
                    "OAuth \"Facebook Platform\" \"{kind}\" \"{}\"",
                    self.message.replace('"', "'")
                ),
            );
        }
        reply
    }
}

/// Escapes text for HTML.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A raw query with secret values masked, for reading the journal.
pub(crate) fn masked_query(raw: &str) -> String {
    const SECRET: [&str; 5] = ["access_token", "client_secret", "code", "state", "signed_request"];
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET.contains(&k) => format!("{k}=[redacted]"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `value` as a JSON body, or the 500 a Graph host answers when it cannot render one: never
/// an empty 200. The one way an answer becomes bytes: a `serde_json::Value`, or a [`Node`]
/// borrowed from the world where building a tree would cost (the User node of every `/me`).
pub(crate) fn render_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, GraphFailure> {
    serde_json::to_vec(value).map_err(|error| {
        GraphFailure::new(
            500,
            "OAuthException",
            2,
            format!("the mock could not render its answer: {error}"),
        )
    })
}

/// A node's value borrowed from the world (or made for the answer), rendered by serde
/// without a `serde_json::Value` tree.
pub(crate) enum Field<'a> {
    Text(&'a str),
    Owned(String),
    Number(u64),
    /// An expanded edge, already a tree.
    Tree(Value),
}

impl serde::Serialize for Field<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Text(text) => serializer.serialize_str(text),
            Field::Owned(text) => serializer.serialize_str(text),
            Field::Number(n) => serializer.serialize_u64(*n),
            Field::Tree(tree) => tree.serialize(serializer),
        }
    }
}

/// Named fields as one JSON object, in the order given (the caller keeps them sorted, each
/// once, as every answer's keys are).
pub(crate) struct Node<'a>(pub(crate) Vec<(&'a str, Field<'a>)>);

impl serde::Serialize for Node<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// `sha256=<hex>`: Meta's `X-Hub-Signature-256` of `body` under the app `secret`.
pub(crate) fn hub_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::from("sha256=");
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Whether a path segment is an API version such as `v21.0`.
pub(crate) fn is_version(segment: &str) -> bool {
    let Some(rest) = segment.strip_prefix('v') else {
        return false;
    };
    let mut parts = rest.split('.');
    let major = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let minor = parts
        .next()
        .is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    major && minor && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that could not be rendered is a 500 saying so, never an empty 200.
    #[test]
    fn an_answer_that_cannot_be_rendered_is_a_500_that_says_so() {
        #![allow(clippy::unwrap_used)]
        let error = serde_json::from_str::<u8>("not json").unwrap_err();
        let reply = Reply::unrendered(&error);
        assert_eq!(reply.status, 500);
        assert!(reply.body.starts_with(b"the mock could not render its answer: "));
        assert_eq!(reply.headers["content-type"], "text/plain; charset=utf-8");
    }

    #[test]
    fn a_query_is_decoded_once_into_pairs_in_order() {
        let query = Query::parse("fields=id%2Cusername&x=%zz&x=2&&bad=%FF+end&empty");
        let pairs: Vec<_> = query.pairs().collect();
        assert_eq!(
            pairs,
            [
                ("fields", "id,username"),
                ("x", "%zz"),
                ("x", "2"),
                ("bad", "\u{FFFD} end"),
                ("empty", "")
            ]
        );
        assert_eq!(query.get("x"), Some("%zz"), "the first of a repeated name");
        assert_eq!(query.get("missing"), None);
        assert_eq!(Query::parse("").pairs().count(), 0);
    }

    #[test]
    fn forms_parse_urlencoded_and_multipart() {
        assert_eq!(
            parse_query("a=1&b=%2F+x&c"),
            [
                ("a".into(), "1".into()),
                ("b".into(), "/ x".into()),
                ("c".into(), String::new())
            ]
        );
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\n123\r\n--XyZ\r\n\
                    Content-Disposition: form-data; name=\"code\"\r\n\r\nAQD\r\n--XyZ--\r\n";
        assert_eq!(
            multipart(body.as_bytes(), "XyZ"),
            [("client_id".into(), "123".into()), ("code".into(), "AQD".into())]
        );
        assert_eq!(
            escape_html("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(
            masked_query("access_token=T&fields=id%2Cname&&state"),
            "access_token=[redacted]&fields=id%2Cname&state"
        );
    }
}
