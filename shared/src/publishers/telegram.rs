//! Telegram: the image as a photo (`sendPhoto`), resized to at most
//! `telegram.resize_width_px` wide (1280 px by default). The bot token is part of the URL, so that URL is never logged and
//! transport errors are stripped of it.

use std::io::Cursor;
use std::time::Duration;

use fast_image_resize::{FilterType as ResizeFilter, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, RgbImage};
use reqwest::multipart::{Form, Part};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::PublishResult;
use crate::bounded::{self, Bound};
use crate::clock::Clock;
use crate::image_bounds;
use crate::retry::{self, Policy, Step};

const JPEG_QUALITY: u8 = 90;
/// Only rate limits are retried (a timed-out upload may have posted): three
/// tries, waiting Telegram's `retry_after` (1 s doubling without one), at
/// most 10 s.
const RETRY: Policy = Policy {
    attempts: 3,
    base: Duration::from_secs(1),
    cap: Duration::from_secs(10),
    jitter: 0.0,
    give_up_beyond_cap: false,
};

#[derive(Debug, thiserror::Error)]
#[error("the image cannot be prepared for Telegram: {0}")]
pub struct PhotoError(String);

impl From<image::ImageError> for PhotoError {
    fn from(error: image::ImageError) -> Self {
        PhotoError(error.to_string())
    }
}

impl From<std::io::Error> for PhotoError {
    fn from(error: std::io::Error) -> Self {
        PhotoError(error.to_string())
    }
}

/// The photo Telegram gets: a JPEG at most `max_width` wide (`None`: as
/// wide as it is), upright, aspect kept. A JPEG that already fits (and needs
/// no rotation) is sent as it is. CPU-bound: call it from a blocking thread.
pub fn prepare_photo(original: &[u8], max_width: Option<u32>) -> Result<Vec<u8>, PhotoError> {
    image_bounds::check(original).map_err(|e| PhotoError(e.to_string()))?;
    let max_width = max_width.unwrap_or(u32::MAX).max(1);
    let format = image::guess_format(original)?;
    let image = match format {
        ImageFormat::Jpeg => match decode_jpeg_scaled(original, max_width)? {
            Scaled::Fits => return Ok(original.to_vec()),
            Scaled::Decoded(image) => image,
            Scaled::Unsupported => decode_any(original)?,
        },
        _ => decode_any(original)?,
    };
    // JPEG has no alpha and this encoder no 16-bit: 8-bit gray or RGB from here.
    let image = match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image,
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    };
    let image = if image.width() > max_width {
        resize_to_width(&image, max_width)?
    } else {
        image
    };
    let mut out = Vec::new();
    let encoder = JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
    image.write_with_encoder(encoder)?;
    Ok(out)
}

/// `image` scaled to `width`, aspect kept (SIMD convolution, Lanczos3).
fn resize_to_width(image: &DynamicImage, width: u32) -> Result<DynamicImage, PhotoError> {
    let height = (u64::from(image.height()) * u64::from(width) / u64::from(image.width().max(1)))
        .clamp(1, u64::from(u32::MAX)) as u32;
    let mut resized = DynamicImage::new(width, height, image.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(ResizeFilter::Lanczos3));
    Resizer::new()
        .resize(image, &mut resized, &options)
        .map_err(|e| PhotoError(e.to_string()))?;
    Ok(resized)
}

enum Scaled {
    /// Already a JPEG Telegram takes as it is.
    Fits,
    Decoded(DynamicImage),
    /// A pixel format the scaled path does not handle (CMYK, 16 bit).
    Unsupported,
}

/// Decodes a JPEG at the smallest DCT scale (1/8, 1/4, 1/2, 1) that is still at
/// least `max_width` wide once upright: a 45 Mpx photo never exists in memory
/// at full size, which keeps both time and memory small.
fn decode_jpeg_scaled(original: &[u8], max_width: u32) -> Result<Scaled, PhotoError> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(original));
    decoder.set_max_decoding_buffer_size(
        usize::try_from(image_bounds::MAX_DECODE_BYTES).unwrap_or(usize::MAX),
    );
    decoder.read_info().map_err(jpeg_error)?;
    let Some(info) = decoder.info() else {
        return Ok(Scaled::Unsupported);
    };
    // The Exif segment precedes the frame header, so it is known by now.
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let sideways = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let upright_width = if sideways { info.height } else { info.width };
    if u32::from(upright_width) <= max_width && orientation == Orientation::NoTransforms {
        return Ok(Scaled::Fits);
    }
    let target = u16::try_from(max_width).unwrap_or(u16::MAX);
    let (width, height) = if sideways {
        decoder.scale(u16::MAX, target)
    } else {
        decoder.scale(target, u16::MAX)
    }
    .map_err(jpeg_error)?;
    let (width, height) = (u32::from(width), u32::from(height));
    let mut image = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            let pixels = decoder.decode().map_err(jpeg_error)?;
            RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8)
        }
        jpeg_decoder::PixelFormat::L8 => {
            let pixels = decoder.decode().map_err(jpeg_error)?;
            GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8)
        }
        _ => return Ok(Scaled::Unsupported),
    }
    .ok_or_else(|| PhotoError("decoded size does not match the header".into()))?;
    image.apply_orientation(orientation);
    Ok(Scaled::Decoded(image))
}

fn decode_any(original: &[u8]) -> Result<DynamicImage, PhotoError> {
    let mut reader = ImageReader::new(Cursor::new(original)).with_guessed_format()?;
    reader.limits(image_bounds::limits());
    let mut decoder = reader.into_decoder()?;
    let orientation = image::ImageDecoder::orientation(&mut decoder)?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn jpeg_error(error: jpeg_decoder::Error) -> PhotoError {
    PhotoError(error.to_string())
}

/// A tenant's Telegram channel.
pub struct Telegram {
    http: reqwest::Client,
    api_url: String,
    bot_token: SecretString,
    chat_id: String,
    /// Each attempt's time, the upload included, and how much of an answer
    /// is read.
    bound: Bound,
    clock: Clock,
}

impl Telegram {
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        bot_token: SecretString,
        chat_id: &str,
        bound: Bound,
        clock: Clock,
    ) -> Self {
        Self {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            bot_token,
            chat_id: chat_id.to_string(),
            bound,
            clock,
        }
    }

    /// Sends `photo` (already prepared) with `caption` (already formatted).
    /// Rate limits are waited out; other failures are not retried, since a
    /// request that timed out may have posted.
    pub async fn send_photo(
        &self,
        photo: Vec<u8>,
        caption: &str,
        request_id: &str,
    ) -> PublishResult {
        let url = format!(
            "{}/bot{}/sendPhoto",
            self.api_url,
            self.bot_token.expose_secret()
        );
        let (url, photo) = (&url, &photo);
        let finished = retry::run(&RETRY, &self.clock, |attempt| async move {
            let part = Part::bytes(photo.clone())
                .file_name("photo.jpg")
                .mime_str("image/jpeg")
                .expect("a static, valid MIME type");
            let mut form = Form::new()
                .text("chat_id", self.chat_id.clone())
                .part("photo", part);
            if !caption.is_empty() {
                form = form.text("caption", caption.to_string());
            }
            let sent = self
                .http
                .post(url)
                .multipart(form)
                .timeout(self.bound.time)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    let error = error.without_url();
                    tracing::warn!(request_id, %error, "telegram sendPhoto failed");
                    return Step::Fail(PublishResult::failed(
                        format!("Telegram unreachable: {error}"),
                        true,
                    ));
                }
            };
            let status = response.status();
            // An answer cut off or unreadable reads as no answer at all.
            let body: Value = bounded::json(response, self.bound.bytes)
                .await
                .unwrap_or(Value::Null);
            if body["ok"] == Value::Bool(true) {
                let post_id = match &body["result"]["message_id"] {
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                };
                tracing::info!(
                    request_id,
                    post_id = post_id.as_deref().unwrap_or(""),
                    "telegram photo sent"
                );
                return Step::Done(PublishResult::published(post_id));
            }
            let code = body["error_code"]
                .as_u64()
                .unwrap_or(u64::from(status.as_u16()));
            let description = body["description"]
                .as_str()
                .map_or_else(|| status.to_string(), str::to_string);
            tracing::warn!(request_id, http_status = status.as_u16(), error_code = code, %description, attempt, "telegram sendPhoto rejected");
            let transient = code == 429 || status.is_server_error();
            let failed =
                PublishResult::failed(format!("Telegram error {code}: {description}"), transient);
            if code == 429 {
                // Telegram says when in its body: `parameters.retry_after`.
                let after = body["parameters"]["retry_after"]
                    .as_u64()
                    .map(Duration::from_secs);
                Step::Retry {
                    error: failed,
                    after,
                }
            } else {
                Step::Fail(failed)
            }
        })
        .await;
        finished.result.unwrap_or_else(|failed| failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb};

    /// The embedded `telegram.resize_width_px`.
    const WIDTH: Option<u32> = Some(1280);

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 85)
            .write_image(
                image.as_raw(),
                width,
                height,
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    fn dimensions(bytes: &[u8]) -> (u32, u32, ImageFormat) {
        let format = image::guess_format(bytes).unwrap();
        let image = image::load_from_memory(bytes).unwrap();
        (image.width(), image.height(), format)
    }

    /// A JPEG with an Exif orientation tag (APP1 right after SOI).
    fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let len = (app1.len() + 2) as u16;
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn large_jpeg_is_resized_to_1280_wide_keeping_aspect() {
        for (w, h) in [(4000, 3000), (2600, 1000), (1281, 2000), (10_000, 300)] {
            let out = prepare_photo(&jpeg(w, h), WIDTH).unwrap();
            let (ow, oh, format) = dimensions(&out);
            assert_eq!((ow, format), (1280, ImageFormat::Jpeg), "{w}x{h}");
            let expected = f64::from(h) * 1280.0 / f64::from(w);
            assert!(
                (f64::from(oh) - expected).abs() <= 1.0,
                "{w}x{h} -> {ow}x{oh}"
            );
        }
    }

    #[test]
    fn the_width_is_the_configured_one() {
        let out = prepare_photo(&jpeg(2000, 1000), Some(800)).unwrap();
        assert_eq!(dimensions(&out), (800, 400, ImageFormat::Jpeg));
        let original = jpeg(2000, 1000);
        assert_eq!(
            prepare_photo(&original, None).unwrap(),
            original,
            "no limit: as it is"
        );
    }

    #[test]
    fn small_jpeg_is_sent_unchanged() {
        let original = jpeg(1280, 900);
        assert_eq!(prepare_photo(&original, WIDTH).unwrap(), original);
    }

    #[test]
    fn png_becomes_jpeg() {
        let image = image::RgbaImage::from_pixel(2000, 1000, image::Rgba([10, 20, 30, 128]));
        let mut png = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert_eq!(
            dimensions(&prepare_photo(&png, WIDTH).unwrap()),
            (1280, 640, ImageFormat::Jpeg)
        );
        let small = image::RgbImage::from_pixel(300, 200, Rgb([1, 2, 3]));
        let mut png = Vec::new();
        small
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert_eq!(
            dimensions(&prepare_photo(&png, WIDTH).unwrap()),
            (300, 200, ImageFormat::Jpeg)
        );
    }

    #[test]
    fn exif_orientation_is_applied() {
        // Stored 3000x2000, shown rotated: upright it is 2000 wide, 3000 high.
        let rotated = with_orientation(&jpeg(3000, 2000), 6);
        assert_eq!(
            dimensions(&prepare_photo(&rotated, WIDTH).unwrap()),
            (1280, 1920, ImageFormat::Jpeg)
        );
        // A small JPEG that needs rotating is re-encoded upright.
        let small = with_orientation(&jpeg(800, 600), 8);
        assert_eq!(
            dimensions(&prepare_photo(&small, WIDTH).unwrap()),
            (600, 800, ImageFormat::Jpeg)
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(prepare_photo(b"not an image", WIDTH).is_err());
        let mut truncated = jpeg(2000, 1500);
        truncated.truncate(600);
        assert!(prepare_photo(&truncated, WIDTH).is_err());
        assert!(prepare_photo(&[0xFF, 0xD8, 0xFF], WIDTH).is_err());
    }
}
