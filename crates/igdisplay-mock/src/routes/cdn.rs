//! The CDN: the files of `assets.rs` behind signed links that expire with the mock clock,
//! answering 403 `URL signature expired` afterwards, as Instagram's CDN does; the links are made
//! here too ([`World::cdn_url`]), beside the check of their signature.

use crate::state::World;
use crate::wire::{Reply, Req};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

impl World {
    /// `{base}/cdn/v/{file}?oe={hex expiry}&_nc_sig={signature}`: the shape of Instagram's CDN
    /// links (reference A.15), valid for `media_url_ttl` seconds of mock time; after that the
    /// CDN answers 403 `URL signature expired`, and a tampered link 403 `Bad URL hash`.
    pub(crate) fn cdn_url(&self, file: &str) -> String {
        let expires = self.now() + self.options.media_url_ttl;
        let oe = format!("{expires:X}");
        format!(
            "{}/cdn/v/{file}?oe={oe}&_nc_sig={}",
            self.base,
            self.cdn_signature(file, &oe)
        )
    }

    /// The signature binding a file to its expiry: an HMAC of both under this mock's CDN key,
    /// so an expiry cannot be extended by editing the link.
    pub(crate) fn cdn_signature(&self, file: &str, oe: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.cdn_key.as_bytes()) else {
            return String::new();
        };
        mac.update(format!("{file}:{oe}").as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `GET /cdn/v/{file}?oe=...&_nc_sig=...` (and `HEAD`).
    ///
    /// A missing or wrong signature is 403 `Bad URL hash` (the signature covers the file and
    /// the expiry together, so neither can be edited); a link past its `oe` expiry is 403 `URL
    /// signature expired`; another extension is 404; otherwise the file, `image/jpeg` or
    /// `video/mp4`, cacheable for two weeks and open to any origin, as the CDN sends them. A
    /// photo's shape is in its name (`{id}.tall.jpg`, `{id}.wide.jpg`). A single `Range` of
    /// bytes is answered with 206 and `Content-Range` (416 past the end), as a player asks.
    pub(crate) fn cdn(&self, req: &Req, file: &str) -> Reply {
        let forbidden = |message: &str| Reply::new(403, "text/plain; charset=utf-8", message.to_owned());
        let (Some(oe), Some(signature)) = (req.param("oe"), req.param("_nc_sig")) else {
            return forbidden("Bad URL hash");
        };
        if self.cdn_signature(file, oe) != signature {
            return forbidden("Bad URL hash");
        }
        let Ok(expires) = i64::from_str_radix(oe, 16) else {
            return forbidden("Bad URL hash");
        };
        if self.now() >= expires {
            return forbidden("URL signature expired");
        }
        let Some((content_type, bytes)) = self.assets.file(file) else {
            return Reply::new(404, "text/plain; charset=utf-8", "Not Found");
        };
        let reply = match req.headers.get(http::header::RANGE).map(|v| v.to_str()) {
            None => Reply::new(200, content_type, bytes),
            Some(range) => match range.ok().and_then(|r| byte_range(r, bytes.len())) {
                Some((start, end)) => {
                    let total = bytes.len();
                    Reply::new(206, content_type, bytes.slice(start..=end))
                        .header("content-range", format!("bytes {start}-{end}/{total}"))
                }
                None => Reply::new(416, content_type, Bytes::new())
                    .header("content-range", format!("bytes */{}", bytes.len())),
            },
        };
        reply
            .header("accept-ranges", "bytes")
            .header("cache-control", "max-age=1209600, no-transform")
            .header("access-control-allow-origin", "*")
    }
}

/// The inclusive span a `Range` header asks of `len` bytes: `bytes=a-b`, `bytes=a-` or
/// `bytes=-n`, one span only; `None` when it is malformed or lies past the end.
fn byte_range(header: &str, len: usize) -> Option<(usize, usize)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let last_byte = len.checked_sub(1)?;
    match (first.trim(), last.trim()) {
        ("", suffix) => {
            let n: usize = suffix.parse().ok().filter(|n| *n > 0)?;
            Some((len.saturating_sub(n), last_byte))
        }
        (start, end) => {
            let start: usize = start.parse().ok().filter(|s| *s <= last_byte)?;
            let end = match end {
                "" => last_byte,
                end => end.parse::<usize>().ok().filter(|e| *e >= start)?.min(last_byte),
            };
            Some((start, end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_are_read_as_one_span_within_the_file() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(byte_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(
            byte_range("bytes=990-5000", 1000),
            Some((990, 999)),
            "clamped to the end"
        );
        assert_eq!(byte_range("bytes=-10", 1000), Some((990, 999)));
        assert_eq!(byte_range("bytes=-5000", 1000), Some((0, 999)));
        for refused in [
            "bytes=1000-",
            "bytes=5-4",
            "bytes=-0",
            "items=0-1",
            "bytes=a-b",
            "bytes=0-1,4-5",
        ] {
            assert_eq!(byte_range(refused, 1000), None, "{refused}");
        }
        assert_eq!(
            byte_range("bytes=0-", 0),
            None,
            "an empty file has no bytes to give"
        );
    }
}
