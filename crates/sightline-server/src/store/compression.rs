//! Compression for stored columns that are large and rarely read whole: error event bodies and
//! stacks, and long log attribute JSON. Values are written as LZ4 frames and read as LZ4 or zstd
//! frames (earlier releases wrote zstd; both stay readable).
//!
//! Stored values start with a frame magic number, LZ4's 0x184D2204 (LZ4 Frame Format §2, bytes
//! `04 22 4D 18`) or zstd's 0xFD2FB528 (RFC 8878 §3.1.1, bytes `28 B5 2F FD`), which JSON text
//! never starts with, so readers tell compressed values and text apart.

use std::io::{Read, Write};

/// The first four bytes of every LZ4 frame.
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// The first four bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// `bytes` as one LZ4 frame with its size and a content checksum (xxHash32), so a damaged value
/// reads as nothing rather than as garbage. LZ4, not zstd: the values are 1–4 KB of JSON, where
/// zstd level 1 spends most of its time building entropy tables; `sightline bench errors` put
/// zstd at ≈ half of an error log's prepare time and LZ4 at a tenth of that, for values ≈ 35 %
/// larger (BENCHMARKS.md). Errors (with what failed) only when the frame cannot be written.
pub fn compress(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let info = lz4_flex::frame::FrameInfo::new()
        .content_size(Some(bytes.len() as u64))
        .content_checksum(true)
        .block_size(lz4_flex::frame::BlockSize::Max64KB);
    let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::with_capacity(bytes.len() / 2 + 32));
    encoder.write_all(bytes).map_err(|error| format!("LZ4 compression: {error}"))?;
    encoder.finish().map_err(|error| format!("LZ4 compression: {error}"))
}

/// True when `stored` is an LZ4 frame ([`compress`]) or a zstd frame rather than text.
pub fn is_compressed(stored: &[u8]) -> bool {
    stored.starts_with(&LZ4_MAGIC) || stored.starts_with(&ZSTD_MAGIC)
}

/// The bytes of an LZ4 frame made by [`compress`] or of a zstd frame; `None` when it does not
/// decode (damaged, truncated, wrong checksum) or is neither.
pub fn decompress(stored: &[u8]) -> Option<Vec<u8>> {
    if stored.starts_with(&LZ4_MAGIC) {
        let mut bytes = Vec::with_capacity(stored.len() * 3);
        lz4_flex::frame::FrameDecoder::new(stored).read_to_end(&mut bytes).ok()?;
        return Some(bytes);
    }
    if stored.starts_with(&ZSTD_MAGIC) {
        return zstd::stream::decode_all(stored).ok();
    }
    None
}

/// Log attributes longer than this many bytes of JSON are stored compressed
/// ([`stored_json`]): stack traces in `exception.stacktrace` are 1–10 KB, while the common
/// short attribute sets would hardly shrink.
pub const COMPRESS_JSON_ABOVE_BYTES: usize = 1024;

/// A JSON column as stored: the text itself up to [`COMPRESS_JSON_ABOVE_BYTES`], else its compressed
/// frame (the text too should compression fail).
pub fn stored_json(json: String) -> StoredJson {
    if json.len() <= COMPRESS_JSON_ABOVE_BYTES {
        return StoredJson::Text(json);
    }
    match compress(json.as_bytes()) {
        Ok(frame) => StoredJson::Compressed(frame),
        Err(_) => StoredJson::Text(json),
    }
}

/// A JSON column's stored value ([`stored_json`]); empty text by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredJson {
    /// JSON text, stored as TEXT.
    Text(String),
    /// A compressed frame of the JSON text ([`compress`]), stored as a BLOB.
    Compressed(Vec<u8>),
}

impl Default for StoredJson {
    fn default() -> Self {
        StoredJson::Text(String::new())
    }
}

/// Reads a JSON column stored as text or as a compressed frame ([`stored_json`]); `None` when a frame
/// does not decode or the text is not UTF-8.
pub fn json_text(stored: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    if is_compressed(stored) {
        return String::from_utf8(decompress(stored)?).ok().map(std::borrow::Cow::Owned);
    }
    std::str::from_utf8(stored).ok().map(std::borrow::Cow::Borrowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_json_is_stored_compressed_and_reads_back_as_it_was() {
        let long =
            format!("{{\"exception.stacktrace\":\"{}\"}}", "  File \"/srv/app/views.py\", line 12\\n".repeat(60));
        let StoredJson::Compressed(frame) = stored_json(long.clone()) else { panic!("long JSON stays text") };
        assert!(frame.len() < long.len() / 4, "{} bytes of {}", frame.len(), long.len());
        assert!(is_compressed(&frame));
        assert_eq!(json_text(&frame).as_deref(), Some(long.as_str()));

        let short = r#"{"http.route":"/api/orders/{id}"}"#.to_owned();
        assert_eq!(stored_json(short.clone()), StoredJson::Text(short.clone()));
        assert_eq!(json_text(short.as_bytes()).as_deref(), Some(short.as_str()));
        // A damaged frame reads as nothing rather than as garbage: cut short, or a byte changed.
        assert_eq!(json_text(&frame[..frame.len() / 2]), None);
        let mut flipped = frame.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x20;
        assert_eq!(json_text(&flipped), None);
    }

    #[test]
    fn values_written_by_earlier_releases_as_zstd_still_read() {
        let long =
            format!("{{\"exception.stacktrace\":\"{}\"}}", "at com.acme.Cart.charge(Cart.java:41)\\n\t".repeat(40));
        let zstd_frame = zstd::bulk::compress(long.as_bytes(), 1).unwrap();
        assert!(is_compressed(&zstd_frame));
        assert_eq!(json_text(&zstd_frame).as_deref(), Some(long.as_str()));
        assert_eq!(decompress(&compress(long.as_bytes()).unwrap()).as_deref(), Some(long.as_bytes()));
        assert_eq!(decompress(b"{\"not\":\"a frame\"}"), None);
    }
}
