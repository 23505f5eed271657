//! zstd for stored columns that are large and rarely read whole: error event bodies and stacks,
//! and long log attribute JSON. One compression context per thread.
//!
//! Stored values start with the zstd frame magic number 0xFD2FB528 (RFC 8878 §3.1.1, bytes
//! `28 B5 2F FD`), which JSON text never starts with, so readers tell both apart.

use std::cell::RefCell;

/// zstd level: the fastest standard level. JSON with repeated keys and paths shrinks 3–5× at
/// it, and the bytes written, not the CPU, bound the single writer (BENCHMARKS.md).
const ZSTD_LEVEL: i32 = 1;

/// The first four bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

thread_local! {
    /// Creating a context per value costs more than compressing a few KB with it.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// `bytes` as one zstd frame. Errors (with what failed) only when zstd cannot allocate its
/// context.
pub fn compress(bytes: &[u8]) -> Result<Vec<u8>, String> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|error| error.to_string())?);
        }
        let compressor = slot.as_mut().ok_or("no zstd compressor")?;
        compressor.compress(bytes).map_err(|error| format!("zstd compression: {error}"))
    })
}

/// True when `stored` is a zstd frame ([`compress`]) rather than text.
pub fn is_compressed(stored: &[u8]) -> bool {
    stored.starts_with(&ZSTD_MAGIC)
}

/// The bytes of a frame made by [`compress`]; `None` when it does not decode.
pub fn decompress(stored: &[u8]) -> Option<Vec<u8>> {
    zstd::stream::decode_all(stored).ok()
}

/// Log attributes longer than this many bytes of JSON are stored compressed
/// ([`stored_json`]): stack traces in `exception.stacktrace` are 1–10 KB, while the common
/// short attribute sets would hardly shrink.
pub const COMPRESS_JSON_ABOVE_BYTES: usize = 1024;

/// A JSON column as stored: the text itself up to [`COMPRESS_JSON_ABOVE_BYTES`], else its zstd
/// frame (the text too should compression fail).
pub fn stored_json(json: String) -> StoredJson {
    if json.len() <= COMPRESS_JSON_ABOVE_BYTES {
        return StoredJson::Text(json);
    }
    match compress(json.as_bytes()) {
        Ok(frame) => StoredJson::Zstd(frame),
        Err(_) => StoredJson::Text(json),
    }
}

/// A JSON column's stored value ([`stored_json`]); empty text by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredJson {
    /// JSON text, stored as TEXT.
    Text(String),
    /// A zstd frame of the JSON text, stored as a BLOB.
    Zstd(Vec<u8>),
}

impl Default for StoredJson {
    fn default() -> Self {
        StoredJson::Text(String::new())
    }
}

/// Reads a JSON column stored as text or as a zstd frame ([`stored_json`]); `None` when a frame
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
        let StoredJson::Zstd(frame) = stored_json(long.clone()) else { panic!("long JSON stays text") };
        assert!(frame.len() < long.len() / 4, "{} bytes of {}", frame.len(), long.len());
        assert!(is_compressed(&frame));
        assert_eq!(json_text(&frame).as_deref(), Some(long.as_str()));

        let short = r#"{"http.route":"/api/orders/{id}"}"#.to_owned();
        assert_eq!(stored_json(short.clone()), StoredJson::Text(short.clone()));
        assert_eq!(json_text(short.as_bytes()).as_deref(), Some(short.as_str()));
        // A damaged frame reads as nothing rather than as garbage.
        assert_eq!(json_text(&frame[..frame.len() / 2]), None);
    }
}
