//! The CDN: real small JPEG and MP4 bytes behind signed links that expire with the mock clock,
//! answering 403 `URL signature expired` afterwards, as Instagram's CDN does.

use crate::state::World;
use crate::wire::{Reply, Req};
use bytes::Bytes;

const PHOTOS: [&[u8]; 6] = [
    include_bytes!("../../assets/photo0.jpg"),
    include_bytes!("../../assets/photo1.jpg"),
    include_bytes!("../../assets/photo2.jpg"),
    include_bytes!("../../assets/photo3.jpg"),
    include_bytes!("../../assets/photo4.jpg"),
    include_bytes!("../../assets/photo5.jpg"),
];
const CLIP: &[u8] = include_bytes!("../../assets/clip.mp4");

impl World {
    /// `GET /cdn/v/{file}?oe=...&_nc_sig=...`.
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
