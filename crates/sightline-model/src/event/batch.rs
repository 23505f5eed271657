//! The `/v1/events` body `{"events": [...]}` deserialized in one pass: each event's fields go
//! straight into their places (keys borrowed from the body, values moved), with no JSON object
//! built per event first. Each event is validated on its own, so one bad event does not
//! reject the batch (ProductGraph `internal/events/handler.go`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{EventFields, PROPERTIES, ProductEvent};

/// Most events one request may carry (ProductGraph's `maxBatch`).
pub const MAX_EVENTS_PER_BATCH: usize = 1000;

/// Why a whole body was refused (the client gets 400 for each).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Not JSON, or JSON cut short.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// JSON, but not an object with an `events` array.
    #[error("body must be {{\"events\": [...]}}")]
    NotABatch,
    /// More than [`MAX_EVENTS_PER_BATCH`] events.
    #[error("more than {MAX_EVENTS_PER_BATCH} events in one batch; send at most {MAX_EVENTS_PER_BATCH}")]
    TooManyEvents,
}

/// The `visit_*` methods of the scalar JSON types (booleans, numbers, strings, null), each
/// answering `$answer` (an expression of the error type `E`).
macro_rules! scalars_give {
    ($answer:expr) => {
        fn visit_bool<E: de::Error>(self, _value: bool) -> Result<Self::Value, E> {
            $answer
        }
        fn visit_i64<E: de::Error>(self, _value: i64) -> Result<Self::Value, E> {
            $answer
        }
        fn visit_u64<E: de::Error>(self, _value: u64) -> Result<Self::Value, E> {
            $answer
        }
        fn visit_f64<E: de::Error>(self, _value: f64) -> Result<Self::Value, E> {
            $answer
        }
        fn visit_str<E: de::Error>(self, _value: &str) -> Result<Self::Value, E> {
            $answer
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            $answer
        }
    };
}

const NOT_A_BATCH: &str = "\u{0}not a batch";
const TOO_MANY: &str = "\u{0}too many events";

/// Parses a `{"events": [...]}` body. Each entry is the event or the reason it was refused
/// (`"field: reason"`), in body order. `now_unix_nano` fills a missing `event.timestamp`.
/// Errors when the body is not such an object or holds more than [`MAX_EVENTS_PER_BATCH`]
/// events (reading stops at the first event too many).
pub fn parse_batch(body: &[u8], now_unix_nano: u64) -> Result<Vec<Result<ProductEvent, String>>, BatchError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let events = BodySeed { now_unix_nano }.deserialize(&mut deserializer).map_err(classify)?;
    deserializer.end().map_err(classify)?;
    events.ok_or(BatchError::NotABatch)
}

fn classify(error: serde_json::Error) -> BatchError {
    let text = error.to_string();
    if text.starts_with(NOT_A_BATCH) {
        BatchError::NotABatch
    } else if text.starts_with(TOO_MANY) {
        BatchError::TooManyEvents
    } else {
        BatchError::Json(text)
    }
}

/// The body object; `None` when it has no `events` key.
struct BodySeed {
    now_unix_nano: u64,
}

impl<'de> DeserializeSeed<'de> for BodySeed {
    type Value = Option<Vec<Result<ProductEvent, String>>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed {
    type Value = Option<Vec<Result<ProductEvent, String>>>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("{\"events\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut events = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.0 == "events" {
                events = Some(map.next_value_seed(EventsSeed { now_unix_nano: self.now_unix_nano })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(events)
    }

    // Anything but an object is not a batch.
    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(NOT_A_BATCH))
    }
    scalars_give!(Err(E::custom(NOT_A_BATCH)));
}

/// The `events` array.
struct EventsSeed {
    now_unix_nano: u64,
}

impl<'de> DeserializeSeed<'de> for EventsSeed {
    type Value = Vec<Result<ProductEvent, String>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EventsSeed {
    type Value = Vec<Result<ProductEvent, String>>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_EVENTS_PER_BATCH));
        while let Some(event) = seq.next_element_seed(EventSeed)? {
            if events.len() == MAX_EVENTS_PER_BATCH {
                return Err(de::Error::custom(TOO_MANY));
            }
            events.push(event.and_then(|fields| fields.into_event(self.now_unix_nano)));
        }
        Ok(events)
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(NOT_A_BATCH))
    }
    scalars_give!(Err(E::custom(NOT_A_BATCH)));
}

/// One entry of `events`: its fields sorted, or why it is not an event object.
struct EventSeed;

impl<'de> DeserializeSeed<'de> for EventSeed {
    type Value = Result<EventFields, String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn not_an_object() -> Result<EventFields, String> {
    Err("event: must be a JSON object".into())
}

impl<'de> Visitor<'de> for EventSeed {
    type Value = Result<EventFields, String>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = EventFields::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value: Value = map.next_value()?;
            fields.place(key.0, value);
        }
        fields.properties.sort_by_key(|(index, _)| *index);
        Ok(Ok(fields))
    }

    // Entries that are not objects are refused one by one; the rest of the batch is kept.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_an_object())
    }
    scalars_give!(Ok(not_an_object()));
}

/// An object key, borrowed from the body unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(value.to_owned())))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl EventFields {
    /// Puts one field where it belongs (a later duplicate key wins, as in a JSON object).
    pub(super) fn place(&mut self, key: Cow<'_, str>, value: Value) {
        let slot = match key.as_ref() {
            "event_id" => &mut self.event_id,
            "product_id" => &mut self.product_id,
            "project_id" => &mut self.project_id,
            "session.id" => &mut self.session_id,
            "user.id" => &mut self.user_id,
            "org.id" => &mut self.org_id,
            "event.type" => &mut self.event_type,
            "event.name" => &mut self.event_name,
            "event.timestamp" => &mut self.timestamp,
            "event.sequence" => &mut self.sequence,
            "metadata" => &mut self.metadata,
            other => {
                match PROPERTIES.iter().position(|(wire, _, _)| *wire == other) {
                    Some(index) => self.properties.push((index, value)),
                    None => self.extra.push((key.into_owned(), value)),
                }
                return;
            }
        };
        *slot = Some(value);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::parse_event;

    const NOW: u64 = 1_800_000_000_000_000_000;

    fn event(index: usize) -> Value {
        json!({
            "event_id": format!("e-{index}"), "product_id": "shop", "session.id": "s", "event.type": "page.view",
            "event.timestamp": "2026-11-24T10:00:00Z", "page.path": "/cart", "gen_ai.journey.id": "checkout",
            "metadata": {"user_agent": "Firefox"}, "custom.flag": true, "nested": {"dropped": 1}
        })
    }

    #[test]
    fn one_pass_parse_equals_the_per_event_parse() {
        let mut items = vec![event(0), json!("not an object"), json!([1, [2]]), event(3)];
        items[3]["event.type"] = json!("ui.tap");
        items.push(json!({"event_id": "e-5", "product_id": "shop", "session.id": "s", "event.type": "custom",
            "page.title": "Cart", "event.sequence": 7}));
        let body = serde_json::to_vec(&json!({"ignored": {"a": [1]}, "events": items})).unwrap();
        let parsed = parse_batch(&body, NOW).expect("a batch");
        let expected: Vec<_> = items.iter().map(|item| parse_event(item, NOW)).collect();
        assert_eq!(parsed, expected);
        assert!(parsed[0].is_ok() && parsed[4].is_ok());
        assert_eq!(parsed[1], Err("event: must be a JSON object".to_owned()));
        assert!(parsed[3].as_ref().unwrap_err().starts_with("event.type"));
    }

    #[test]
    fn keys_with_escapes_are_read() {
        let body =
            br#"{"events": [{"event_id": "e", "product_id": "shop", "session\u002eid": "s", "event.type": "custom"}]}"#;
        let parsed = parse_batch(body, NOW).expect("a batch");
        assert_eq!(parsed[0].as_ref().expect("valid").session_id, "s");
    }

    #[test]
    fn bodies_that_are_not_batches_are_refused() {
        assert_eq!(parse_batch(b"[]", NOW), Err(BatchError::NotABatch));
        assert_eq!(parse_batch(br#"{"events": 3}"#, NOW), Err(BatchError::NotABatch));
        assert_eq!(parse_batch(br#"{"events": {}}"#, NOW), Err(BatchError::NotABatch));
        assert_eq!(parse_batch(br#"{"other": []}"#, NOW), Err(BatchError::NotABatch));
        assert!(matches!(parse_batch(br#"{"events": [{"a": 1}"#, NOW), Err(BatchError::Json(_))));
        assert!(matches!(parse_batch(br#"{"events": []} trailing"#, NOW), Err(BatchError::Json(_))));
        let limit = serde_json::to_vec(&json!({"events": (0..1000).map(event).collect::<Vec<_>>()})).unwrap();
        assert_eq!(parse_batch(&limit, NOW).expect("1000 is allowed").len(), 1000);
        let over = serde_json::to_vec(&json!({"events": (0..1001).map(event).collect::<Vec<_>>()})).unwrap();
        assert_eq!(parse_batch(&over, NOW), Err(BatchError::TooManyEvents));
    }
}
