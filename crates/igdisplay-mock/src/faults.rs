//! Faults and stubs: ways to make the mock misbehave on purpose, per route, for a number of
//! requests or with a seeded probability; and canned answers that come before the fake's own
//! logic.

use serde::{Deserialize, Serialize};

/// How a request goes wrong, and what a client sees:
///
/// | kind | the client sees |
/// | --- | --- |
/// | `Latency` | the normal answer, late (a client timeout shorter than it fires) |
/// | `Status` | an error status with a plain-text body, not a Graph error |
/// | `GraphTransient` | HTTP 500 with a Graph error, code 2, `is_transient: true` |
/// | `DropConnection` | the connection closed with no answer, after the request was processed |
/// | `ResetMidBody` | headers and half the body, then a reset: a broken body |
/// | `TruncatedJson` | `200` with half the JSON and a matching length: a decode error |
/// | `MalformedJson` | `200` with a body that is not JSON |
/// | `WrongContentType` | the normal body labelled `text/html` |
/// | `SlowDrip` | the normal body, a few bytes at a time |
///
/// In JSON (`POST /_mock/faults`) the kind is tagged by `type`: `{"type": "latency", "ms": 500}`.
///
/// ```
/// use igdisplay_mock::FaultKind;
///
/// let kind: FaultKind = serde_json::from_str(r#"{"type": "slow_drip", "chunk": 16, "delay_ms": 50}"#).unwrap();
/// assert_eq!(kind, FaultKind::SlowDrip { chunk: 16, delay_ms: 50 });
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultKind {
    /// Answer normally, after this many milliseconds of real time: a client's own timeout
    /// shorter than it fires (reliability case 36).
    Latency {
        /// The delay.
        ms: u64,
    },
    /// Answer with this status and a plain-text body instead: an error that is not a Graph
    /// error, as a load balancer in front of Instagram sends (a 5xx is retried, a 4xx is
    /// `UnexpectedResponse`; reliability case 32).
    Status {
        /// The status, e.g. 503.
        status: u16,
    },
    /// Answer 500 with a transient Graph error (code 2, `is_transient: true`): the one a
    /// client must retry with backoff (reliability case 31).
    GraphTransient,
    /// Close the connection without answering, after the request was processed: a read may
    /// be sent again, a code exchange must not (reliability cases 15 and 55).
    DropConnection,
    /// Send the headers and half the body, then reset the connection: a broken body, never a
    /// silently short one (reliability case 55).
    ResetMidBody,
    /// Send only the first half of the JSON body (with a matching length): a complete HTTP
    /// response holding a truncated document, which only the decoder can catch (case 48).
    TruncatedJson,
    /// Send `200` with a body that is not JSON: a typed decode error, never a panic (case 48).
    MalformedJson,
    /// Send the normal body labelled `text/html`, as an error page from a proxy would be: a
    /// client that trusts the body and not the label still reads it.
    WrongContentType,
    /// Send the body `chunk` bytes at a time, `delay_ms` apart: a whole-request timeout must
    /// fire even while bytes keep coming (reliability case 36).
    SlowDrip {
        /// Bytes per chunk.
        chunk: usize,
        /// Pause between chunks.
        delay_ms: u64,
    },
}

/// A fault on every path starting with `path_prefix`: for a number of requests, with a
/// seeded probability, or both. The first active fault that matches a request applies.
///
/// ```
/// use igdisplay_mock::{Fault, FaultKind};
///
/// let fault: Fault = serde_json::from_str(
///     r#"{"path_prefix": "/me/media", "kind": {"type": "graph_transient"}, "times": 2}"#,
/// ).unwrap();
/// assert_eq!(fault, Fault::new("/me/media", FaultKind::GraphTransient).times(2));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Which requests: a path prefix such as `/me/media` or `/oauth/access_token` (`/` for all).
    pub path_prefix: String,
    /// What goes wrong.
    pub kind: FaultKind,
    /// For this many matching requests, then the fault is spent (`None`: forever).
    #[serde(default)]
    pub times: Option<u32>,
    /// The chance a matching request is hit, drawn from the seeded generator (`None`: always).
    #[serde(default)]
    pub probability: Option<f64>,
}

impl Fault {
    /// `kind` on every path under `path_prefix`, forever (until [`times`](Self::times) or
    /// [`probability`](Self::probability) say otherwise).
    ///
    /// ```
    /// use igdisplay_mock::{Fault, FaultKind, MockServer};
    ///
    /// let mock = MockServer::start()?;
    /// // Every code exchange answers 503 until the fault is cleared.
    /// mock.add_fault(Fault::new("/oauth/access_token", FaultKind::Status { status: 503 }));
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn new(path_prefix: impl Into<String>, kind: FaultKind) -> Self {
        Self {
            path_prefix: path_prefix.into(),
            kind,
            times: None,
            probability: None,
        }
    }

    /// Only for the next `n` matching requests.
    ///
    /// ```
    /// use igdisplay_mock::{Fault, FaultKind};
    ///
    /// let fault = Fault::new("/me", FaultKind::DropConnection).times(1);
    /// assert_eq!(fault.times, Some(1));
    /// ```
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Only with probability `p` (clamped to 0..=1), drawn from the mock's seeded generator:
    /// the same seed and the same requests hit the same ones.
    ///
    /// ```
    /// use igdisplay_mock::{Fault, FaultKind};
    ///
    /// let chaos = Fault::new("/", FaultKind::ResetMidBody).probability(0.1);
    /// assert_eq!(chaos.probability, Some(0.1));
    /// assert_eq!(Fault::new("/", FaultKind::MalformedJson).probability(7.0).probability, Some(1.0));
    /// ```
    #[must_use]
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p.clamp(0.0, 1.0));
        self
    }
}

/// A canned answer for `method path`, before the fake's own logic: for an answer the fake
/// would never give (a new error Instagram started sending, a field it added).
///
/// ```
/// use igdisplay_mock::{MockServer, Stub};
///
/// let mock = MockServer::start()?;
/// let new_field = serde_json::json!({"id": "1", "username": "jayposiris", "has_new_field": true});
/// mock.stub(Stub::json("GET", "/me", 200, new_field).times(1));
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stub {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The exact path, e.g. `/me`.
    pub path: String,
    /// For this many requests (`None`: forever).
    #[serde(default)]
    pub times: Option<u32>,
    /// The status.
    pub status: u16,
    /// The body.
    #[serde(default)]
    pub body: String,
    /// The content type. Default `application/json; charset=UTF-8`.
    #[serde(default = "json_type")]
    pub content_type: String,
    /// Extra headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

fn json_type() -> String {
    "application/json; charset=UTF-8".to_owned()
}

impl Stub {
    /// Answers `method path` with `status` and the JSON `body`.
    ///
    /// ```
    /// use igdisplay_mock::Stub;
    ///
    /// let stub = Stub::json("get", "/me", 200, serde_json::json!({"id": "1"}));
    /// assert_eq!((stub.method.as_str(), stub.body.as_str()), ("GET", r#"{"id":"1"}"#));
    /// ```
    pub fn json(method: &str, path: &str, status: u16, body: serde_json::Value) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            times: None,
            status,
            body: body.to_string(),
            content_type: json_type(),
            headers: Vec::new(),
        }
    }

    /// Only for the next `n` matching requests.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Adds a response header.
    ///
    /// ```
    /// use igdisplay_mock::Stub;
    ///
    /// let throttled = Stub::json("GET", "/me", 429, serde_json::json!({}))
    ///     .header("retry-after", "30")
    ///     .times(1);
    /// assert_eq!(throttled.headers, [("retry-after".to_owned(), "30".to_owned())]);
    /// ```
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Takes one use of the first matching item whose budget is not spent.
///
/// Faults and stubs share it: an item whose `times` reaches zero is removed, one without a
/// count stays; `roll` decides a probability (stubs always pass it).
pub(crate) fn take<T>(
    items: &mut Vec<T>,
    matches: impl Fn(&T) -> bool,
    times: impl Fn(&mut T) -> &mut Option<u32>,
    mut roll: impl FnMut(&T) -> bool,
) -> Option<T>
where
    T: Clone,
{
    let index = items.iter().position(|item| matches(item) && roll(item))?;
    let item = items[index].clone();
    if let Some(left) = times(&mut items[index]) {
        *left = left.saturating_sub(1);
        if *left == 0 {
            items.remove(index);
        }
    }
    Some(item)
}

/// Links a hostile or broken answer may name, for a test that a client fetches none of them:
/// `internal` (a listener of the test's own, counting its connections) by address over http
/// and https and as `localhost`; the cloud metadata address; a private address; foreign hosts,
/// one dressed as Instagram's CDN; a local file and a script.
///
/// ```
/// let links = igdisplay_mock::hostile_links("127.0.0.1:9".parse().unwrap());
/// assert!(links.contains(&"http://localhost:9/internal.png".to_owned()));
/// assert!(links.iter().any(|l| l.contains("169.254.169.254")));
/// ```
pub fn hostile_links(internal: std::net::SocketAddr) -> Vec<String> {
    let mut links = vec![
        format!("http://{internal}/internal.png"),
        format!("https://{internal}/internal.png"),
        format!("http://localhost:{}/internal.png", internal.port()),
    ];
    links.extend(
        [
            "http://169.254.169.254/latest/meta-data/iam/",
            "https://169.254.169.254/latest/",
            "https://10.0.0.7/a.jpg",
            "https://evil.example/a.jpg",
            "https://cdninstagram.com.evil.example/a.jpg",
            "file:///etc/passwd",
            "javascript:alert(1)",
        ]
        .map(str::to_owned),
    );
    links
}

impl crate::MockServer {
    /// Stubs the next media listings (`GET /me/media`) with one video per link of
    /// [`hostile_links`]`(internal)`, plus one on the mock's own origin that redirects to
    /// `internal`, then `keep` (a media object the client should keep). Answers the links
    /// stubbed, so a test can check that none of them was fetched and none kept.
    pub fn stub_hostile_listing(
        &self,
        internal: std::net::SocketAddr,
        keep: serde_json::Value,
    ) -> Vec<String> {
        self.stub(
            Stub::json("GET", "/cdn/v/redirected.jpg", 302, serde_json::json!({}))
                .header("location", &format!("http://{internal}/internal.png")),
        );
        let mut links = hostile_links(internal);
        links.push(format!("{}/cdn/v/redirected.jpg", self.base_url()));
        let mut data: Vec<serde_json::Value> = links
            .iter()
            .enumerate()
            .map(|(n, url)| {
                serde_json::json!({"id": format!("17900000000000000{n:02}"), "media_type": "VIDEO",
                    "thumbnail_url": url, "media_url": url, "permalink": url})
            })
            .collect();
        data.push(keep);
        self.stub(Stub::json(
            "GET",
            "/me/media",
            200,
            serde_json::json!({ "data": data }),
        ));
        links
    }
}
