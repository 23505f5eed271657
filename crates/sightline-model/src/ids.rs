//! Trace and span identifiers (W3C Trace Context sizes: 16 and 8 bytes), shown as lowercase hex.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an id could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id has the wrong number of bytes (OTLP: trace ids are 16 bytes, span ids 8).
    #[error("{kind} must be {expected} bytes, got {actual}")]
    WrongLength {
        /// "trace_id" or "span_id".
        kind: &'static str,
        /// Required length in bytes.
        expected: usize,
        /// Length received in bytes.
        actual: usize,
    },
    /// All bytes are zero, which W3C Trace Context and OTLP define as invalid.
    #[error("{0} must not be all zeros")]
    AllZero(&'static str),
    /// The text is not hex of the right length.
    #[error("{0} is not valid hex")]
    BadHex(&'static str),
}

macro_rules! define_id {
    ($name:ident, $len:expr, $kind:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Size of the id in bytes.
            pub const LEN: usize = $len;

            /// Reads an id from OTLP bytes. Errors when the length is wrong or all bytes are zero.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
                let array: [u8; $len] = bytes.try_into().map_err(|_| IdError::WrongLength {
                    kind: $kind,
                    expected: $len,
                    actual: bytes.len(),
                })?;
                if array.iter().all(|byte| *byte == 0) {
                    return Err(IdError::AllZero($kind));
                }
                Ok(Self(array))
            }

            /// Reads an OTLP optional id: empty means "absent" (`Ok(None)`).
            pub fn from_optional_bytes(bytes: &[u8]) -> Result<Option<Self>, IdError> {
                if bytes.is_empty() {
                    return Ok(None);
                }
                Self::from_bytes(bytes).map(Some)
            }

            /// Parses lowercase or uppercase hex of exactly `2 * LEN` characters.
            pub fn from_hex(text: &str) -> Result<Self, IdError> {
                let mut array = [0u8; $len];
                const_hex::decode_to_slice(text, &mut array).map_err(|_| IdError::BadHex($kind))?;
                Self::from_bytes(&array)
            }

            /// Lowercase hex, `2 * LEN` characters.
            pub fn to_hex(&self) -> String {
                const_hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::from_hex(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(TraceId, 16, "trace_id", "A 16-byte trace id (W3C Trace Context `trace-id`).");
define_id!(SpanId, 8, "span_id", "An 8-byte span id (W3C Trace Context `parent-id`).");

impl TraceId {
    /// The lower 64 bits as a big-endian integer, the part OpenTelemetry's `TraceIdRatioBased`
    /// sampler and W3C "random" trace ids make uniformly distributed.
    pub fn lower_u64(&self) -> u64 {
        let mut lower = [0u8; 8];
        lower.copy_from_slice(&self.0[8..16]);
        u64::from_be_bytes(lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_length_and_zero_ids() {
        assert!(matches!(TraceId::from_bytes(&[1; 15]), Err(IdError::WrongLength { expected: 16, actual: 15, .. })));
        assert_eq!(SpanId::from_bytes(&[0; 8]), Err(IdError::AllZero("span_id")));
        assert_eq!(SpanId::from_optional_bytes(&[]), Ok(None));
    }

    #[test]
    fn hex_round_trip() {
        let trace_id = TraceId::from_hex("5B8EFFF798038103D269B633813FC60C").unwrap();
        assert_eq!(trace_id.to_hex(), "5b8efff798038103d269b633813fc60c");
        assert_eq!(trace_id.lower_u64(), 0xd269b633813fc60c);
        assert!(TraceId::from_hex("xyz").is_err());
    }
}
