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

    /// The JSON text of the object (`{}` when empty).
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_owned())
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
}
