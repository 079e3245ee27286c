//! The CDN: real small JPEG and MP4 bytes behind signed links that expire with the mock clock,
//! answering 403 `URL signature expired` afterwards, as Instagram's CDN does; the links are made
//! here too ([`World::cdn_url`]), beside the check of their signature.
//!
//! The bytes are real files (six photos and one clip, a few kilobytes each), so a client that
//! decodes, resizes or sniffs what it downloads is tested against real media. Which photo an
//! id gets is a hash of the id: the same id always shows the same picture. For measuring large
//! downloads, [`AssetSizes`] pads them (they stay valid files).

use crate::AssetSizes;
use crate::state::World;
use crate::wire::{Reply, Req};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The photos served for `.jpg` files: real JPEGs, so images decode.
const PHOTOS: [&[u8]; 6] = [
    include_bytes!("../../assets/photo0.jpg"),
    include_bytes!("../../assets/photo1.jpg"),
    include_bytes!("../../assets/photo2.jpg"),
    include_bytes!("../../assets/photo3.jpg"),
    include_bytes!("../../assets/photo4.jpg"),
    include_bytes!("../../assets/photo5.jpg"),
];
/// The clip served for every `.mp4`: a real, tiny MP4.
const CLIP: &[u8] = include_bytes!("../../assets/clip.mp4");
/// A 60 × 960 JPEG, for `{id}.tall.jpg`.
const TALL: &[u8] = include_bytes!("../../assets/tall.jpg");
/// A 960 × 60 JPEG, for `{id}.wide.jpg`.
const WIDE: &[u8] = include_bytes!("../../assets/wide.jpg");

/// The files the CDN serves: the real photos and clip, padded to the sizes asked. Shared, so
/// answering a 10 MB clip copies nothing.
#[derive(Debug)]
pub(crate) struct Assets {
    photos: Vec<Bytes>,
    tall: Bytes,
    wide: Bytes,
    clip: Bytes,
}

impl Assets {
    /// The files at `sizes`.
    pub(crate) fn new(sizes: AssetSizes) -> Self {
        Self {
            photos: PHOTOS
                .iter()
                .map(|photo| padded_jpeg(photo, sizes.image))
                .collect(),
            tall: padded_jpeg(TALL, sizes.image),
            wide: padded_jpeg(WIDE, sizes.image),
            clip: padded_mp4(CLIP, sizes.video),
        }
    }
}

/// `file` with filler after its end marker up to `size` bytes: decoders stop at the marker.
fn padded_jpeg(file: &'static [u8], size: usize) -> Bytes {
    let size = size.min(AssetSizes::MAX);
    if size <= file.len() {
        return Bytes::from_static(file);
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(file);
    out.extend(filler(size - file.len()));
    Bytes::from(out)
}

/// `file` with a top-level `free` box (which players skip) making it `size` bytes.
fn padded_mp4(file: &'static [u8], size: usize) -> Bytes {
    let size = size.min(AssetSizes::MAX);
    let Some(room) = size.checked_sub(file.len()).filter(|room| *room >= 8) else {
        return Bytes::from_static(file);
    };
    let Ok(box_size) = u32::try_from(room) else {
        return Bytes::from_static(file);
    };
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(file);
    out.extend_from_slice(&box_size.to_be_bytes());
    out.extend_from_slice(b"free");
    out.extend(filler(room - 8));
    Bytes::from(out)
}

/// `len` deterministic bytes that do not compress (an xorshift sequence).
fn filler(len: usize) -> impl Iterator<Item = u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len).map(move |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state.to_le_bytes()[0]
    })
}

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

impl Assets {
    /// The content type and bytes served for `file`: `.mp4` the clip, `.tall.jpg` and
    /// `.wide.jpg` those photos, another `.jpg` one of the six square photos, picked by a
    /// hash of the id before the first dot (the same id always shows the same picture).
    fn file(&self, file: &str) -> Option<(&'static str, Bytes)> {
        if file.ends_with(".mp4") {
            return Some(("video/mp4", self.clip.clone()));
        }
        if file.ends_with(".tall.jpg") {
            return Some(("image/jpeg", self.tall.clone()));
        }
        if file.ends_with(".wide.jpg") {
            return Some(("image/jpeg", self.wide.clone()));
        }
        if !file.ends_with(".jpg") {
            return None;
        }
        let stem = file.split('.').next().unwrap_or_default();
        let pick = stem
            .bytes()
            .fold(0usize, |acc, b| acc.wrapping_mul(31).wrapping_add(usize::from(b)));
        let photo = self.photos.get(pick % self.photos.len().max(1))?;
        Some(("image/jpeg", photo.clone()))
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
    fn padded_files_have_the_size_asked_and_stay_valid() {
        let assets = Assets::new(AssetSizes {
            image: 1 << 20,
            video: 3 << 20,
        });
        for (photo, original) in assets.photos.iter().zip(PHOTOS) {
            assert_eq!(photo.len(), 1 << 20);
            assert_eq!(
                &photo[..original.len()],
                original,
                "the JPEG, end marker included, first"
            );
            assert_eq!(&original[original.len() - 2..], &[0xFF, 0xD9]);
        }
        assert_eq!(assets.clip.len(), 3 << 20);
        let free = &assets.clip[CLIP.len()..];
        let size = u32::from_be_bytes([free[0], free[1], free[2], free[3]]) as usize;
        assert_eq!((size, &free[4..8]), (free.len(), &b"free"[..]));
        let again = Assets::new(AssetSizes {
            image: 1 << 20,
            video: 3 << 20,
        });
        assert_eq!(again.clip, assets.clip, "deterministic");
    }

    #[test]
    fn small_or_huge_sizes_keep_or_clamp_the_files() {
        let real = Assets::new(AssetSizes::default());
        assert_eq!(real.clip.as_ref(), CLIP);
        assert_eq!(real.photos[0].as_ref(), PHOTOS[0]);
        let tiny = Assets::new(AssetSizes {
            image: 10,
            video: CLIP.len() + 7,
        });
        assert_eq!(tiny.clip.as_ref(), CLIP, "no room for a box: unchanged");
        assert_eq!(padded_jpeg(PHOTOS[0], usize::MAX).len(), AssetSizes::MAX);
    }

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

    #[test]
    fn a_shape_in_the_name_picks_that_photo() {
        let assets = Assets::new(AssetSizes::default());
        let tall = assets.file("123_thumb.tall.jpg").unwrap().1;
        let wide = assets.file("123.wide.jpg").unwrap().1;
        assert_eq!((tall.as_ref(), wide.as_ref()), (TALL, WIDE));
        assert!(PHOTOS.contains(&assets.file("123.jpg").unwrap().1.as_ref()));
        assert!(assets.file("123.gif").is_none());
    }
}
