//! Compression for stored columns that are large and rarely read whole: error event bodies and
//! stacks, and long log attribute JSON. Values are written as LZ4 frames and read as LZ4 or zstd
//! frames (earlier releases wrote zstd; both stay readable).
//!
//! Stored values start with a frame magic number, LZ4's 0x184D2204 (LZ4 Frame Format §2, bytes
//! `04 22 4D 18`) or zstd's 0xFD2FB528 (RFC 8878 §3.1.1, bytes `28 B5 2F FD`), which JSON text
//! never starts with, so readers tell compressed values and text apart.

use std::cell::RefCell;
use std::io::{Read, Write};

/// The first four bytes of every LZ4 frame.
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// The first four bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

thread_local! {
    /// One encoder per thread, reused frame after frame: a new encoder allocates its 64 KiB
    /// block buffers and a 16 KiB match table, more work than compressing a few KB.
    static ENCODER: RefCell<Option<lz4_flex::frame::FrameEncoder<Vec<u8>>>> = const { RefCell::new(None) };
}

/// `bytes` as one LZ4 frame with a content checksum (xxHash32), so a damaged value reads as
/// nothing rather than as garbage. LZ4, not zstd: the values are 1–4 KB of JSON, where zstd
/// level 1 spent most of its time building entropy tables (≈ half of an error log's prepare
/// time in `sightline bench errors`, LZ4 ≈ a fifth of that), for values ≈ 35 % larger
/// (BENCHMARKS.md). Errors (with what failed) only when the frame cannot be written.
pub fn compress(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.is_empty() {
        // lz4_flex writes no frame header for an empty value on an encoder that wrote frames
        // before, so the empty frame gets an encoder of its own.
        return new_encoder().finish().map_err(|error| format!("LZ4 compression: {error}"));
    }
    ENCODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let encoder = slot.get_or_insert_with(new_encoder);
        encoder.get_mut().reserve(bytes.len() / 2 + 32);
        // After `try_finish` the next write starts a new frame with the encoder's state reset.
        let written = encoder
            .write_all(bytes)
            .map_err(|error| error.to_string())
            .and_then(|()| encoder.try_finish().map_err(|error| error.to_string()));
        match written {
            Ok(()) => Ok(std::mem::take(encoder.get_mut())),
            Err(error) => {
                // A frame left half-written must not prefix the next value.
                *slot = None;
                Err(format!("LZ4 compression: {error}"))
            }
        }
    })
}

fn new_encoder() -> lz4_flex::frame::FrameEncoder<Vec<u8>> {
    let info = lz4_flex::frame::FrameInfo::new().content_checksum(true).block_size(lz4_flex::frame::BlockSize::Max64KB);
    lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new())
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
        // The thread's encoder is reused: every frame stands alone, whatever came before it.
        let frames: Vec<Vec<u8>> =
            [long.as_bytes(), b"", b"short", long.as_bytes()].iter().map(|value| compress(value).unwrap()).collect();
        assert_eq!(frames[0], frames[3]);
        assert_eq!(decompress(&frames[1]).as_deref(), Some(&b""[..]));
        assert_eq!(decompress(&frames[2]).as_deref(), Some(&b"short"[..]));
        assert_eq!(decompress(&frames[3]).as_deref(), Some(long.as_bytes()));
    }
}
