//! Decoding a downloaded image and making its resized JPEG variants and average colour. Runs
//! on a blocking thread (it is CPU work), a few at a time (the mirror's semaphore), under
//! `image::Limits`: a small file that claims a huge image (a decompression bomb) is refused
//! from its header, before any memory is taken for its pixels.

use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView as _, ImageReader};
use std::io::Cursor;

/// The largest image decoded, in pixels a side: a hostile file claiming more is refused
/// before any memory is taken for it.
pub(crate) const MAX_SIDE: u32 = 8192;

/// The most pixels decoded: 16.8 million (4096×4096), many times Instagram's largest photo
/// (1440×1800). At most 128 MiB decoded (16-bit RGBA), 64 MiB once made 8-bit.
pub(crate) const MAX_PIXELS: u64 = 4096 * 4096;

/// The most the decoder may allocate for one image.
const MAX_ALLOC: u64 = 160 * 1024 * 1024;

/// The decoder's limits: the side and allocation caps.
fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    limits
}

/// A decoded image's size, colour and variants (`(width, bytes, height)` per width).
pub(crate) struct Processed {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) color: String,
    /// A BlurHash of the image (4×3 components, fewer across a tall one).
    pub(crate) blurhash: Option<String>,
    pub(crate) variants: Vec<(u32, u32, Vec<u8>)>,
}

/// Why an image was not processed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    #[error("the file is not an image this mirror decodes")]
    Decode(#[from] image::ImageError),
    #[error("the file could not be read")]
    Read(#[from] std::io::Error),
    #[error("the image claims {0}×{1} pixels, more than the mirror decodes")]
    TooLarge(u32, u32),
    #[error("the image has no pixels")]
    Empty,
}

/// Decodes `bytes` and makes a JPEG copy for each of `widths` the image is wider than.
pub(crate) fn process(bytes: &[u8], widths: &[u32]) -> Result<Processed, ImageError> {
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let (width, height) = reader.into_dimensions()?;
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooLarge(width, height));
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Empty);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    reader.limits(limits());
    let image = match reader.decode()? {
        // 8 bits a channel from here on: what JPEG keeps, half the memory of 16.
        image @ (DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_)) => image,
        deep => DynamicImage::ImageRgba8(deep.to_rgba8()),
    };
    // The placeholders come from one small copy (the hash keeps 12 colours, the mean one).
    let small = image.resize(32, 32, FilterType::Triangle);
    let color = average_color(&small);
    let blurhash = blurhash_of(&small);
    let mut variants = Vec::new();
    for &target in widths {
        if target == 0 || target >= width {
            continue;
        }
        let scaled_height = u32::try_from(u64::from(height) * u64::from(target) / u64::from(width))
            .unwrap_or(1)
            .max(1);
        let resized = image.resize_exact(target, scaled_height, FilterType::Triangle);
        let mut out = Vec::new();
        resized
            .to_rgb8()
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)?;
        variants.push((target, scaled_height, out));
    }
    Ok(Processed {
        width,
        height,
        color,
        blurhash,
        variants,
    })
}

/// A BlurHash of `small` (a copy at most 32 pixels a side: a larger one changes nothing but
/// the time): 4×3 components for a wide image, 3×4 for a tall one.
fn blurhash_of(small: &DynamicImage) -> Option<String> {
    let small = small.to_rgba8();
    let (x, y) = if small.width() >= small.height() {
        (4, 3)
    } else {
        (3, 4)
    };
    blurhash::encode(x, y, small.width(), small.height(), small.as_raw()).ok()
}

/// The mean colour, as `#rrggbb`.
fn average_color(image: &DynamicImage) -> String {
    let pixel = image.resize_exact(1, 1, FilterType::Triangle).get_pixel(0, 0);
    format!("#{:02x}{:02x}{:02x}", pixel[0], pixel[1], pixel[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
        let image = image::RgbImage::from_pixel(width, height, image::Rgb(rgb));
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn variants_are_made_only_below_the_original_width_with_the_aspect_kept() {
        let processed = process(&png(800, 400, [200, 10, 10]), &[320, 640, 1080]).unwrap();
        assert_eq!((processed.width, processed.height), (800, 400));
        let sizes: Vec<(u32, u32)> = processed.variants.iter().map(|(w, h, _)| (*w, *h)).collect();
        assert_eq!(sizes, [(320, 160), (640, 320)]);
        assert_eq!(processed.color, "#c80a0a");
        for (_, _, jpeg) in &processed.variants {
            assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
        }
    }

    #[test]
    fn the_blurhash_paints_the_images_colour_with_components_along_its_long_side() {
        let wide = process(&png(800, 400, [200, 10, 10]), &[])
            .unwrap()
            .blurhash
            .unwrap();
        let tall = process(&png(300, 900, [10, 10, 200]), &[])
            .unwrap()
            .blurhash
            .unwrap();
        // The first character says the components: 4×3 is 21 ('L'), 3×4 is 29 ('T').
        assert!(wide.starts_with('L') && tall.starts_with('T'), "{wide} {tall}");
        let pixel = blurhash::decode(&wide, 1, 1, 1.0).unwrap();
        assert!(pixel[0] > 180 && pixel[1] < 40 && pixel[2] < 40, "{pixel:?}");
    }

    #[test]
    fn junk_and_empty_files_are_typed_errors() {
        assert!(matches!(
            process(b"not an image", &[320]),
            Err(ImageError::Decode(_))
        ));
        assert!(process(&[], &[320]).is_err());
    }
}
