//! Thumbnails the way Dropbox's `get_thumbnail_v2` makes them with
//! `mode: fitone_bestfit`, `format: jpeg`, for storage that has no thumbnail
//! service of its own.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader};

use super::ThumbnailSize;
use crate::image_bounds;

/// JPEG quality of thumbnails: small files, no visible blocking at these sizes.
const QUALITY: u8 = 85;

/// The dimensions Dropbox's `fitone_bestfit` gives a `width`×`height` image:
/// scaled down, aspect kept, just enough to completely cover the size or its
/// transpose (whichever has the image's orientation); never scaled up.
pub fn fitone_bestfit(width: u32, height: u32, size: ThumbnailSize) -> (u32, u32) {
    let (long, short) = size.dimensions();
    let (box_w, box_h) = if height > width {
        (short.min(long), short.max(long))
    } else {
        (long.max(short), long.min(short))
    };
    let scale = (f64::from(box_w) / f64::from(width.max(1)))
        .max(f64::from(box_h) / f64::from(height.max(1)))
        .min(1.0);
    let fit = |side: u32| ((f64::from(side) * scale).round() as u32).max(1);
    (fit(width), fit(height))
}

/// Decodes `bytes` (JPEG or PNG), turns it upright per its EXIF orientation,
/// and encodes a [`fitone_bestfit`] thumbnail as JPEG.
pub fn jpeg_thumbnail(bytes: &[u8], size: ThumbnailSize) -> Result<Vec<u8>, image::ImageError> {
    if image_bounds::check(bytes).is_err() {
        return Err(image::ImageError::Limits(
            image::error::LimitError::from_kind(image::error::LimitErrorKind::DimensionError),
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    reader.limits(image_bounds::limits());
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    let (width, height) = fitone_bestfit(image.width(), image.height(), size);
    let thumbnail = if (width, height) == (image.width(), image.height()) {
        image.into_rgb8()
    } else {
        image
            .resize_exact(width, height, image::imageops::FilterType::Triangle)
            .into_rgb8()
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode_image(&thumbnail)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_the_size_or_its_transpose_without_upscaling() {
        let cases = [
            // Landscape covers 960×640: width fits, height overflows.
            ((4000, 3000), ThumbnailSize::W960H640, (960, 720)),
            // Portrait covers the transpose 640×960.
            ((3000, 4000), ThumbnailSize::W960H640, (720, 960)),
            // Wide panorama: the height decides.
            ((6000, 1000), ThumbnailSize::W480H320, (1920, 320)),
            ((1000, 1000), ThumbnailSize::W256H256, (256, 256)),
            ((2000, 1000), ThumbnailSize::W256H256, (512, 256)),
            // Smaller than the size: kept as is.
            ((300, 200), ThumbnailSize::W1024H768, (300, 200)),
        ];
        for ((w, h), size, want) in cases {
            assert_eq!(fitone_bestfit(w, h, size), want, "{w}x{h} {size:?}");
        }
    }

    #[test]
    fn encodes_a_jpeg_of_the_right_size() {
        let source = image::RgbaImage::from_pixel(1200, 900, image::Rgba([10, 200, 30, 128]));
        let mut png = Vec::new();
        DynamicImage::ImageRgba8(source)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let jpeg = jpeg_thumbnail(&png, ThumbnailSize::W640H480).expect("thumbnail");
        assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF]);
        let decoded = image::load_from_memory(&jpeg).expect("decodes");
        assert_eq!((decoded.width(), decoded.height()), (640, 480));
        assert!(jpeg_thumbnail(b"not an image", ThumbnailSize::W640H480).is_err());
    }
}
