//! Images from storage are outside data: a file of a few kilobytes may
//! declare a size whose pixels would take gigabytes. Before anything decodes
//! an image, its header's dimensions are checked; the decoders themselves
//! run with an allocation limit as a second line.

use std::io::Cursor;

use image::{ImageReader, Limits};

/// The most pixels an image may declare (100 megapixels).
pub const MAX_PIXELS: u64 = 100_000_000;
/// The most memory one decode may take: 100 megapixels at 4 bytes each.
pub const MAX_DECODE_BYTES: u64 = 4 * MAX_PIXELS;

/// An image whose header declares more than [`MAX_PIXELS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("image_too_large: {width} x {height} pixels (at most {MAX_PIXELS})")]
pub struct TooLarge {
    pub width: u32,
    pub height: u32,
}

/// Refuses an image whose header declares more than [`MAX_PIXELS`], reading
/// the header only. An unreadable header passes: the decoder will say what
/// is wrong with the file.
pub fn check(bytes: &[u8]) -> Result<(), TooLarge> {
    let dimensions = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|reader| reader.into_dimensions().ok());
    match dimensions {
        Some((width, height)) if u64::from(width) * u64::from(height) > MAX_PIXELS => {
            Err(TooLarge { width, height })
        }
        _ => Ok(()),
    }
}

/// The limits every decoder of the `image` crate runs with.
pub fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}
