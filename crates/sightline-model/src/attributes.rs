//! OTLP `AnyValue` and attribute lists in Sightline's typed JSON encoding.
//!
//! Stores keep attributes as a JSON object so SQL can read a key (`json_extract(attributes,
//! '$."http.route"')`), but a plain JSON mapping would lose OTLP value types (bytes, int vs double,
//! kvlist). The encoding keeps them:
//!
//! | OTLP `AnyValue`  | JSON                                   |
//! |------------------|----------------------------------------|
//! | empty            | `null`                                 |
//! | `string_value`   | string                                 |
//! | `bool_value`     | `true` / `false`                       |
//! | `int_value`      | integer (full i64 range)               |
//! | `double_value`   | number with a fraction or exponent; `{"double": "NaN"}` for non-finite |
//! | `bytes_value`    | `{"bytes": "<standard base64>"}`       |
//! | `array_value`    | array of encoded values                |
//! | `kvlist_value`   | `{"kvlist": {key: encoded value, ...}}`|
//!
//! JSON objects appear only as these tags, so decoding is unambiguous and lossless.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// An attribute list as a JSON object in the typed encoding described in the module docs.
/// Keys keep their OTLP order of first appearance; a repeated key keeps its last value (OTLP
/// requires keys to be unique).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attributes(pub Map<String, Value>);

impl Attributes {
    /// Converts an OTLP `KeyValue` list.
    pub fn from_otlp(key_values: &[KeyValue]) -> Self {
        let mut map = Map::with_capacity(key_values.len());
        for key_value in key_values {
            map.insert(key_value.key.clone(), encode_any_value(key_value.value.as_ref()));
        }
        Self(map)
    }

    /// Converts back to an OTLP `KeyValue` list (the inverse of [`Attributes::from_otlp`]).
    pub fn to_otlp(&self) -> Vec<KeyValue> {
        self.0
            .iter()
            .map(|(key, value)| KeyValue { key: key.clone(), value: decode_any_value(value), ..KeyValue::default() })
            .collect()
    }

    /// The value of `key` when it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// True when there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The JSON text of the object (`{}` when empty). Written with `sonic-rs`, whose SIMD string
    /// escaping made an error log's prepare ≈ 5 % and a plain log's ≈ 8 % cheaper than
    /// `serde_json`'s byte-at-a-time escaping of stack traces (BENCHMARKS.md, 2026-12-02
    /// afternoon); the text parses to the same value as `serde_json`'s, doubles included (they
    /// keep a fraction or exponent, so they read back as doubles).
    pub fn to_json_string(&self) -> String {
        sonic_rs::to_string(&self.0).unwrap_or_else(|_| "{}".to_owned())
    }

    /// [`Attributes::to_json_string`] with the value of `key` written as `null` (the key keeps
    /// its place): for a value stored elsewhere and put back on reading (a log record's
    /// `exception.stacktrace`, kept once with its error event). Without `key`, the same text as
    /// [`Attributes::to_json_string`].
    pub fn to_json_string_without_value_of(&self, key: &str) -> String {
        struct Without<'a>(&'a Map<String, Value>, &'a str);
        impl Serialize for Without<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, value) in self.0 {
                    if name == self.1 {
                        map.serialize_entry(name, &Value::Null)?;
                    } else {
                        map.serialize_entry(name, value)?;
                    }
                }
                map.end()
            }
        }
        sonic_rs::to_string(&Without(&self.0, key)).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Parses JSON text written by [`Attributes::to_json_string`]; anything but an object gives
    /// an empty list.
    pub fn from_json_str(text: &str) -> Self {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Self(map),
            _ => Self::default(),
        }
    }
}

/// Encodes an OTLP `AnyValue` (absent = empty) into the typed JSON encoding.
pub fn encode_any_value(any_value: Option<&AnyValue>) -> Value {
    let Some(inner) = any_value.and_then(|any_value| any_value.value.as_ref()) else {
        return Value::Null;
    };
    match inner {
        any_value::Value::StringValue(text) => Value::String(text.clone()),
        any_value::Value::BoolValue(flag) => Value::Bool(*flag),
        any_value::Value::IntValue(integer) => Value::Number((*integer).into()),
        any_value::Value::DoubleValue(double) => encode_double(*double),
        any_value::Value::BytesValue(bytes) => tagged("bytes", Value::String(BASE64.encode(bytes))),
        any_value::Value::ArrayValue(array) => {
            Value::Array(array.values.iter().map(|value| encode_any_value(Some(value))).collect())
        }
        any_value::Value::KvlistValue(list) => tagged("kvlist", Value::Object(Attributes::from_otlp(&list.values).0)),
        // Profiles-only string table reference; kept as a tagged integer so nothing is lost.
        #[allow(unreachable_patterns)]
        other => tagged("unknown", Value::String(format!("{other:?}"))),
    }
}

fn encode_double(double: f64) -> Value {
    match Number::from_f64(double) {
        // serde_json prints every f64 with a fraction or exponent ("1.0"), so it reads back as f64.
        Some(number) => Value::Number(number),
        None => tagged("double", Value::String(double.to_string())),
    }
}

fn tagged(tag: &str, inner: Value) -> Value {
    let mut map = Map::with_capacity(1);
    map.insert(tag.to_owned(), inner);
    Value::Object(map)
}

/// Decodes the typed JSON encoding back into an OTLP `AnyValue` (`None` for `null`).
pub fn decode_any_value(value: &Value) -> Option<AnyValue> {
    let inner = match value {
        Value::Null => return None,
        Value::String(text) => any_value::Value::StringValue(text.clone()),
        Value::Bool(flag) => any_value::Value::BoolValue(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(integer) if !number.is_f64() => any_value::Value::IntValue(integer),
            _ => any_value::Value::DoubleValue(number.as_f64().unwrap_or(f64::NAN)),
        },
        Value::Array(values) => any_value::Value::ArrayValue(ArrayValue {
            values: values.iter().map(|value| decode_any_value(value).unwrap_or_default()).collect(),
        }),
        Value::Object(map) => {
            if let Some(Value::String(encoded)) = map.get("bytes") {
                any_value::Value::BytesValue(BASE64.decode(encoded).unwrap_or_default())
            } else if let Some(Value::Object(list)) = map.get("kvlist") {
                any_value::Value::KvlistValue(KeyValueList { values: Attributes(list.clone()).to_otlp() })
            } else if let Some(Value::String(text)) = map.get("double") {
                any_value::Value::DoubleValue(text.parse().unwrap_or(f64::NAN))
            } else {
                any_value::Value::StringValue(value.to_string())
            }
        }
    };
    Some(AnyValue { value: Some(inner) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
        KeyValue { key: key.to_owned(), value, ..KeyValue::default() }
    }

    fn any(value: any_value::Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(value) })
    }

    #[test]
    fn every_any_value_type_round_trips_through_json_text() {
        let key_values = vec![
            kv("s", any(any_value::Value::StringValue("x".into()))),
            kv("b", any(any_value::Value::BoolValue(true))),
            kv("i", any(any_value::Value::IntValue(i64::MAX))),
            kv("d", any(any_value::Value::DoubleValue(1.0))),
            kv("nan", any(any_value::Value::DoubleValue(f64::INFINITY))),
            kv("bytes", any(any_value::Value::BytesValue(vec![0, 255]))),
            kv(
                "arr",
                any(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue { value: Some(any_value::Value::IntValue(2)) }],
                })),
            ),
            kv(
                "kv",
                any(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![kv("bytes", any(any_value::Value::StringValue("not a tag".into())))],
                })),
            ),
            kv("empty", None),
        ];
        let text = Attributes::from_otlp(&key_values).to_json_string();
        let decoded = Attributes::from_json_str(&text).to_otlp();
        assert_eq!(decoded, key_values);
    }

    #[test]
    fn int_and_double_stay_distinct() {
        let int = encode_any_value(any(any_value::Value::IntValue(1)).as_ref());
        let double = encode_any_value(any(any_value::Value::DoubleValue(1.0)).as_ref());
        assert_eq!(serde_json::to_string(&int).unwrap(), "1");
        assert_eq!(serde_json::to_string(&double).unwrap(), "1.0");
    }

    /// Attributes as `to_json_string` writes them read back exactly: the same value `serde_json`'s
    /// own text parses to, and doubles bit for bit (an integer-looking `1` for `1.0` would read
    /// back as an int).
    fn assert_same_json(key_values: &[KeyValue]) {
        let attributes = Attributes::from_otlp(key_values);
        let text = attributes.to_json_string();
        let reference = serde_json::to_string(&attributes.0).expect("serde_json writes it");
        let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(parsed, serde_json::from_str::<Value>(&reference).expect("reference parses"), "{text}");
        let decoded = Attributes::from_json_str(&text).to_otlp();
        assert_eq!(decoded.len(), key_values.len());
        for (decoded, sent) in decoded.iter().zip(key_values) {
            match (&decoded.value, &sent.value) {
                (
                    Some(AnyValue { value: Some(any_value::Value::DoubleValue(got)) }),
                    Some(AnyValue { value: Some(any_value::Value::DoubleValue(want)) }),
                ) => assert_eq!(got.to_bits(), want.to_bits(), "{text}"),
                _ => assert_eq!(decoded, sent, "{text}"),
            }
        }
    }

    #[test]
    fn a_value_left_out_reads_back_as_null_in_its_place() {
        let attributes = Attributes::from_otlp(&[
            kv("exception.type", any(any_value::Value::StringValue("ValueError".into()))),
            kv("exception.stacktrace", any(any_value::Value::StringValue("Traceback \"x\"\n".into()))),
            kv("http.route", any(any_value::Value::StringValue("/cart".into()))),
        ]);
        let text = attributes.to_json_string_without_value_of("exception.stacktrace");
        let read = Attributes::from_json_str(&text);
        let keys: Vec<&str> = read.0.keys().map(String::as_str).collect();
        assert_eq!(keys, ["exception.type", "exception.stacktrace", "http.route"], "order kept: {text}");
        assert_eq!(read.0["exception.stacktrace"], Value::Null);
        assert_eq!(read.get_str("http.route"), Some("/cart"));
        assert!(!text.contains("Traceback"));
        assert_eq!(attributes.to_json_string_without_value_of("absent"), attributes.to_json_string());
    }

    #[test]
    fn awkward_strings_and_doubles_read_back_exactly() {
        let every_control_character: String = (0u8..0x20).map(char::from).collect();
        let strings = [
            every_control_character.as_str(),
            "quote \" backslash \\ slash / del \u{7f}",
            "line\nseparator \u{2028} paragraph \u{2029} é 漢字 🦀",
            "Traceback (most recent call last):\n  File \"/app/shop/cart.py\", line 42, in add\n\tValueError: 'sku'",
            "",
        ];
        // 1.074329195390072e+75 read back one ulp off before `float_roundtrip` (the property below found it).
        let doubles = [
            0.1,
            -0.0,
            1e300,
            5e-324,
            1e21,
            1e-7,
            123456789.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            -2.5,
            1.074329195390072e+75,
        ];
        let mut key_values: Vec<KeyValue> = strings
            .iter()
            .enumerate()
            .map(|(index, text)| kv(&format!("s{index}"), any(any_value::Value::StringValue((*text).to_owned()))))
            .collect();
        key_values.extend(
            doubles
                .iter()
                .enumerate()
                .map(|(index, double)| kv(&format!("d{index}"), any(any_value::Value::DoubleValue(*double)))),
        );
        key_values.push(kv("min", any(any_value::Value::IntValue(i64::MIN))));
        key_values.push(kv("\"key\"\n", any(any_value::Value::BoolValue(false))));
        assert_same_json(&key_values);
    }

    proptest::proptest! {
        #[test]
        fn any_string_and_finite_double_reads_back_exactly(text in "\\PC*", raw in proptest::collection::vec(0u8..0x80, 0..40), double in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            let ascii: String = raw.into_iter().map(char::from).collect();
            assert_same_json(&[
                kv("text", any(any_value::Value::StringValue(text))),
                kv("ascii", any(any_value::Value::StringValue(ascii))),
                kv("double", any(any_value::Value::DoubleValue(double))),
            ]);
        }
    }
}
