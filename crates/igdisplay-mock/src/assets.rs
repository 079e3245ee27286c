//! The files the fake CDN serves: real small JPEGs and an MP4 (six photos and one clip, a few
//! kilobytes each), so a client that decodes, resizes or sniffs what it downloads is tested
//! against real media. Which photo an id gets is a hash of the id: the same id always shows
//! the same picture. For measuring large downloads, [`AssetSizes`] pads them (they stay valid
//! files). The links to them are signed and checked in `routes/cdn.rs`.

use crate::AssetSizes;
use bytes::Bytes;

/// The photos served for `.jpg` files: real JPEGs, so images decode.
const PHOTOS: [&[u8]; 6] = [
    include_bytes!("../assets/photo0.jpg"),
    include_bytes!("../assets/photo1.jpg"),
    include_bytes!("../assets/photo2.jpg"),
    include_bytes!("../assets/photo3.jpg"),
    include_bytes!("../assets/photo4.jpg"),
    include_bytes!("../assets/photo5.jpg"),
];
/// The clip served for every `.mp4`: a real, tiny MP4.
const CLIP: &[u8] = include_bytes!("../assets/clip.mp4");
/// A 60 × 960 JPEG, for `{id}.tall.jpg`.
const TALL: &[u8] = include_bytes!("../assets/tall.jpg");
/// A 960 × 60 JPEG, for `{id}.wide.jpg`.
const WIDE: &[u8] = include_bytes!("../assets/wide.jpg");

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

impl Assets {
    /// The content type and bytes served for `file`: `.mp4` the clip, `.tall.jpg` and
    /// `.wide.jpg` those photos, another `.jpg` one of the six square photos, picked by a
    /// hash of the id before the first dot (the same id always shows the same picture).
    pub(crate) fn file(&self, file: &str) -> Option<(&'static str, Bytes)> {
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
    fn a_shape_in_the_name_picks_that_photo() {
        let assets = Assets::new(AssetSizes::default());
        let tall = assets.file("123_thumb.tall.jpg").unwrap().1;
        let wide = assets.file("123.wide.jpg").unwrap().1;
        assert_eq!((tall.as_ref(), wide.as_ref()), (TALL, WIDE));
        assert!(PHOTOS.contains(&assets.file("123.jpg").unwrap().1.as_ref()));
        assert!(assets.file("123.gif").is_none());
    }
}
