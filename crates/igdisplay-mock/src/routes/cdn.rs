//! The CDN: real small JPEG and MP4 bytes behind signed links that expire with the mock clock,
//! answering 403 `URL signature expired` afterwards, as Instagram's CDN does.
//!
//! The bytes are real files (six photos and one clip, a few kilobytes each), so a client that
//! decodes, resizes or sniffs what it downloads is tested against real media. Which photo an
//! id gets is a hash of the id: the same id always shows the same picture.

use crate::state::World;
use crate::wire::{Reply, Req};
use bytes::Bytes;

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

impl World {
    /// `GET /cdn/v/{file}?oe=...&_nc_sig=...`.
    ///
    /// A missing or wrong signature is 403 `Bad URL hash` (the signature covers the file and
    /// the expiry together, so neither can be edited); a link past its `oe` expiry is 403 `URL
    /// signature expired`; another extension is 404; otherwise the file, `image/jpeg` or
    /// `video/mp4`, cacheable for two weeks and open to any origin, as the CDN sends them.
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
        let stem = file.split('.').next().unwrap_or_default();
        let pick = stem
            .bytes()
            .fold(0usize, |acc, b| acc.wrapping_mul(31).wrapping_add(usize::from(b)));
        let (content_type, bytes): (&str, &'static [u8]) = if file.ends_with(".mp4") {
            ("video/mp4", CLIP)
        } else if file.ends_with(".jpg") {
            ("image/jpeg", PHOTOS[pick % PHOTOS.len()])
        } else {
            return Reply::new(404, "text/plain; charset=utf-8", "Not Found");
        };
        Reply::new(200, content_type, Bytes::from_static(bytes))
            .header("cache-control", "max-age=1209600, no-transform")
            .header("access-control-allow-origin", "*")
    }
}
