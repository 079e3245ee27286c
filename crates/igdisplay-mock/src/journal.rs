//! The journal: a bounded ring buffer of the requests the mock answered, secrets masked, with
//! an assertion helper that explains the closest miss. Memory stays flat however long the mock
//! runs.
//!
//! Entries keep the raw query, and the secrets in it (`access_token`, `client_secret`, `code`,
//! `state`) are masked when the journal is read: the hot path pays no masking, and nothing a
//! test prints or serializes from the journal shows a secret. The total count survives the
//! ring's capacity, so `requests_total` can assert "nothing was sent" in long runs.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;

/// One answered request, as [`MockServer::journal`](crate::MockServer::journal) gives it.
///
/// ```
/// let mock = igdisplay_mock::MockServer::start()?;
/// for entry in mock.journal() {
///     assert!(!entry.query.contains("access_token=IG"), "secrets are masked");
/// }
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Its number since the start (or the last reset), from 1: gaps in a journal read after
    /// the ring wrapped show how many were dropped.
    pub seq: u64,
    /// The mock time it was answered, Unix seconds (a frozen clock gives every entry the same
    /// time until a test moves it).
    pub at: i64,
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The query with `access_token`, `client_secret`, `code` and `state` masked, so a test
    /// may print or snapshot the journal.
    pub query: String,
    /// The status sent (0 when the connection was dropped on purpose by a fault). A request
    /// whose body was cut by a fault still shows the status its headers carried.
    pub status: u16,
}

impl fmt::Display for JournalEntry {
    /// `GET /me fields=id&access_token=[redacted] 200`: a request log line (the query as
    /// masked in the entry; `-` for none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query = if self.query.is_empty() { "-" } else { &self.query };
        write!(f, "{} {} {} {}", self.method, self.path, query, self.status)
    }
}

/// Entries keep the raw query; secrets are masked when the journal is read.
#[derive(Debug)]
pub(crate) struct Journal {
    capacity: usize,
    entries: VecDeque<Recorded>,
    next_seq: u64,
}

/// An entry as recorded on the hot path: the method as it came (a standard one is no
/// allocation) and the path and raw query in one string.
#[derive(Debug)]
struct Recorded {
    seq: u64,
    at: i64,
    method: http::Method,
    /// The path, then the raw query.
    target: String,
    path_len: usize,
    status: u16,
}

impl Journal {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: VecDeque::with_capacity(capacity.clamp(1, 4096)),
            next_seq: 1,
        }
    }

    pub(crate) fn record(&mut self, at: i64, method: &http::Method, path: &str, query: &str, status: u16) {
        // A full ring gives its oldest entry's string back for this one.
        let mut target = match self.entries.len() == self.capacity {
            true => self.entries.pop_front().map(|e| e.target).unwrap_or_default(),
            false => String::new(),
        };
        target.clear();
        target.push_str(path);
        target.push_str(query);
        self.entries.push_back(Recorded {
            seq: self.next_seq,
            at,
            method: method.clone(),
            target,
            path_len: path.len(),
            status,
        });
        self.next_seq += 1;
    }

    pub(crate) fn entries(&self) -> Vec<JournalEntry> {
        self.entries
            .iter()
            .map(|e| {
                let (path, query) = e.target.split_at_checked(e.path_len).unwrap_or((&e.target, ""));
                JournalEntry {
                    seq: e.seq,
                    at: e.at,
                    method: e.method.as_str().to_owned(),
                    path: path.to_owned(),
                    query: crate::wire::masked_query(query),
                    status: e.status,
                }
            })
            .collect()
    }

    /// Requests answered since the start, including those the buffer no longer holds.
    pub(crate) fn total(&self) -> u64 {
        self.next_seq - 1
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// A journal expectation that did not hold, with the closest request seen: its message says
/// what was expected, what the journal holds, and the request most like the expected one (a
/// wrong method, a version prefix, a typo in the path).
///
/// ```
/// let mock = igdisplay_mock::MockServer::start()?;
/// let miss = mock.expect_requests("GET", "/me/media", 2).unwrap_err();
/// assert_eq!((miss.expected_times, miss.found), (2, 0));
/// assert!(miss.to_string().starts_with("expected 2 request(s) `GET /me/media`"));
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalMismatch {
    /// `METHOD /path`.
    pub expected: String,
    /// How many times it was expected.
    pub expected_times: usize,
    /// How many matching requests the journal holds.
    pub found: usize,
    /// The request most like the expected one, when it was not found at all.
    pub closest: Option<Box<JournalEntry>>,
}

impl fmt::Display for JournalMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected {} request(s) `{}`, the journal holds {}",
            self.expected_times, self.expected, self.found
        )?;
        match &self.closest {
            Some(c) => write!(
                f,
                "; closest: `{} {}` ({}) answered {}",
                c.method, c.path, c.query, c.status
            ),
            None if self.found == 0 => f.write_str("; no request at all"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for JournalMismatch {}

/// Checks that `entries` hold exactly `times` requests `method path`.
pub(crate) fn expect(
    entries: &[JournalEntry],
    method: &str,
    path: &str,
    times: usize,
) -> Result<(), Box<JournalMismatch>> {
    let found = entries
        .iter()
        .filter(|e| e.method.eq_ignore_ascii_case(method) && e.path == path)
        .count();
    if found == times {
        return Ok(());
    }
    let wanted = format!("{} {path}", method.to_ascii_uppercase());
    let closest = (found == 0)
        .then(|| {
            entries
                .iter()
                .max_by_key(|e| common_prefix(&format!("{} {}", e.method, e.path), &wanted))
                .cloned()
                .map(Box::new)
        })
        .flatten();
    Err(Box::new(JournalMismatch {
        expected: wanted,
        expected_times: times,
        found,
        closest,
    }))
}

/// How many leading bytes `a` and `b` share: the closeness of a near miss.
fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_stays_bounded_and_counts_everything() {
        let mut journal = Journal::new(3);
        for i in 0..10 {
            journal.record(i, &http::Method::GET, &format!("/{i}"), "", 200);
        }
        let entries = journal.entries();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].seq, 8);
        assert_eq!(journal.total(), 10);
    }

    #[test]
    fn a_miss_names_the_closest_request() {
        let mut journal = Journal::new(10);
        journal.record(0, &http::Method::GET, "/me/media", "fields=id", 200);
        journal.record(0, &http::Method::POST, "/oauth/access_token", "", 400);
        let entries = journal.entries();
        assert!(expect(&entries, "get", "/me/media", 1).is_ok());
        let miss = expect(&entries, "GET", "/me/medias", 1).unwrap_err();
        assert_eq!(
            miss.to_string(),
            "expected 1 request(s) `GET /me/medias`, the journal holds 0; closest: `GET /me/media` (fields=id) answered 200"
        );
        let twice = expect(&entries, "GET", "/me/media", 2).unwrap_err();
        assert_eq!(
            twice.to_string(),
            "expected 2 request(s) `GET /me/media`, the journal holds 1"
        );
    }
}
