//! Request bodies for OTLP/HTTP: content type and encoding negotiation, size limits that hold
//! after decompression (so a gzip bomb costs at most the limit), and decoding.

use std::io::Read;

use bytes::Bytes;
use http::HeaderMap;

use crate::error::IngestError;

/// The two OTLP/HTTP payload encodings (OTLP spec "OTLP/HTTP Request").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// `application/x-protobuf`: binary protobuf.
    Protobuf,
    /// `application/json`: OTLP/JSON (proto3 JSON mapping with OTLP's exceptions).
    Json,
}

impl PayloadFormat {
    /// Reads `Content-Type` (parameters such as `charset` are ignored). Errors with
    /// `UnsupportedMediaType` (415) for anything else, including a missing header.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, IngestError> {
        let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(PayloadFormat::Protobuf),
            "application/json" => Ok(PayloadFormat::Json),
            _ => Err(IngestError::UnsupportedMediaType(format!(
                "unsupported Content-Type {content_type:?}: use application/x-protobuf or application/json"
            ))),
        }
    }

    /// The `Content-Type` of responses in this format.
    pub fn content_type(&self) -> &'static str {
        match self {
            PayloadFormat::Protobuf => "application/x-protobuf",
            PayloadFormat::Json => "application/json",
        }
    }

    /// Guesses the answer format for an error found before the request's own format is known.
    pub fn for_error_response(headers: &HeaderMap) -> Self {
        Self::from_headers(headers).unwrap_or(PayloadFormat::Json)
    }
}

/// `Content-Encoding` values accepted (the spec names gzip; the Collector also takes zstd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// No encoding.
    Identity,
    /// `gzip`.
    Gzip,
    /// `zstd`.
    Zstd,
}

impl ContentEncoding {
    /// Reads `Content-Encoding`; 415 for anything but identity, gzip or zstd.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, IngestError> {
        let Some(value) = headers.get(http::header::CONTENT_ENCODING) else {
            return Ok(ContentEncoding::Identity);
        };
        let text = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
        match text.as_str() {
            "" | "identity" => Ok(ContentEncoding::Identity),
            "gzip" | "x-gzip" => Ok(ContentEncoding::Gzip),
            "zstd" => Ok(ContentEncoding::Zstd),
            _ => Err(IngestError::UnsupportedMediaType(format!(
                "unsupported Content-Encoding {text:?}: use gzip, zstd or none"
            ))),
        }
    }
}

/// Decompresses `body`, reading at most `max_bytes` of output. Errors: `PayloadTooLarge` when
/// the output would exceed the limit, `BadRequest` for a corrupt stream.
pub fn decompress(body: Bytes, encoding: ContentEncoding, max_bytes: usize) -> Result<Bytes, IngestError> {
    let too_large = || IngestError::PayloadTooLarge { limit_bytes: max_bytes };
    let read_limited = |reader: &mut dyn Read| -> Result<Bytes, IngestError> {
        let mut output = Vec::new();
        reader
            .take(max_bytes as u64 + 1)
            .read_to_end(&mut output)
            .map_err(|error| IngestError::BadRequest(format!("cannot decompress body: {error}")))?;
        if output.len() > max_bytes {
            return Err(too_large());
        }
        Ok(Bytes::from(output))
    };
    match encoding {
        ContentEncoding::Identity => {
            if body.len() > max_bytes {
                return Err(too_large());
            }
            Ok(body)
        }
        ContentEncoding::Gzip => read_limited(&mut flate2::read::MultiGzDecoder::new(&body[..])),
        ContentEncoding::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::new(&body[..])
                .map_err(|error| IngestError::BadRequest(format!("cannot decompress body: {error}")))?;
            read_limited(&mut decoder)
        }
    }
}

/// Decodes an OTLP message from protobuf or OTLP/JSON. Errors with `BadRequest` naming the
/// problem (answered 400 with a `google.rpc.Status`).
pub fn decode<T>(body: &[u8], format: PayloadFormat) -> Result<T, IngestError>
where
    T: prost::Message + Default + serde::de::DeserializeOwned,
{
    match format {
        PayloadFormat::Protobuf => {
            T::decode(body).map_err(|error| IngestError::BadRequest(format!("invalid protobuf: {error}")))
        }
        PayloadFormat::Json => {
            serde_json::from_slice(body).map_err(|error| IngestError::BadRequest(format!("invalid OTLP/JSON: {error}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; 50 * 1024 * 1024]).unwrap();
        let compressed = Bytes::from(encoder.finish().unwrap());
        assert!(compressed.len() < 100 * 1024);
        let result = decompress(compressed, ContentEncoding::Gzip, 1024 * 1024);
        assert!(matches!(result, Err(IngestError::PayloadTooLarge { limit_bytes: 1_048_576 })));
    }

    #[test]
    fn zstd_round_trip_and_corrupt_stream() {
        let compressed = zstd::encode_all(&b"hello"[..], 3).unwrap();
        assert_eq!(
            decompress(Bytes::from(compressed), ContentEncoding::Zstd, 100).unwrap(),
            Bytes::from_static(b"hello")
        );
        assert!(matches!(
            decompress(Bytes::from_static(b"not gzip"), ContentEncoding::Gzip, 100),
            Err(IngestError::BadRequest(_))
        ));
    }

    #[test]
    fn content_type_parameters_are_ignored_and_unknown_types_refused() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json; charset=utf-8".parse().unwrap());
        assert_eq!(PayloadFormat::from_headers(&headers).unwrap(), PayloadFormat::Json);
        headers.insert("content-type", "text/plain".parse().unwrap());
        assert!(matches!(PayloadFormat::from_headers(&headers), Err(IngestError::UnsupportedMediaType(_))));
        headers.insert("content-encoding", "br".parse().unwrap());
        assert!(matches!(ContentEncoding::from_headers(&headers), Err(IngestError::UnsupportedMediaType(_))));
    }
}
