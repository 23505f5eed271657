//! Product events: the ProductGraph `/v1/events` schema (plexusone/productgraph
//! `pkg/schema/event.go`), parsed and validated one event at a time.
//!
//! The wire format is a flat JSON object with dotted keys (`session.id`, `event.type`,
//! `page.path`, ...). Parsing keeps every schema field: identity and classification become
//! typed fields, everything else goes into `properties` under its dotted name (journey fields
//! under the `journey.*` spelling whichever of `journey.*` / `gen_ai.journey.*` was sent), and
//! the free `metadata` object is kept as sent, bounded in size.
//!
//! [`parse_batch`] reads a whole `{"events": [...]}` body in one pass (the receiver's path).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod batch;
pub use batch::{BatchError, MAX_EVENTS_PER_BATCH, parse_batch};

/// Largest `metadata` object kept, bytes of JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Longest string property kept, bytes (`error.stack` may be longer, see
/// [`MAX_STACK_BYTES`]).
pub const MAX_STRING_BYTES: usize = 2048;
/// Longest `error.stack`, bytes.
pub const MAX_STACK_BYTES: usize = 64 * 1024;
/// Most unknown top-level fields kept as properties per event.
pub const MAX_EXTRA_FIELDS: usize = 64;

/// The fifteen ProductGraph event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// `page.view`
    #[serde(rename = "page.view")]
    PageView,
    /// `page.leave`
    #[serde(rename = "page.leave")]
    PageLeave,
    /// `ui.click`
    #[serde(rename = "ui.click")]
    UiClick,
    /// `ui.input`
    #[serde(rename = "ui.input")]
    UiInput,
    /// `ui.scroll`
    #[serde(rename = "ui.scroll")]
    UiScroll,
    /// `ui.focus`
    #[serde(rename = "ui.focus")]
    UiFocus,
    /// `ui.blur`
    #[serde(rename = "ui.blur")]
    UiBlur,
    /// `ui.submit`
    #[serde(rename = "ui.submit")]
    UiSubmit,
    /// `state.change`
    #[serde(rename = "state.change")]
    StateChange,
    /// `api.request`
    #[serde(rename = "api.request")]
    ApiRequest,
    /// `api.response`
    #[serde(rename = "api.response")]
    ApiResponse,
    /// `journey.step`
    #[serde(rename = "journey.step")]
    JourneyStep,
    /// `error`
    #[serde(rename = "error")]
    Error,
    /// `performance`
    #[serde(rename = "performance")]
    Performance,
    /// `custom`
    #[serde(rename = "custom")]
    Custom,
}

impl EventType {
    /// Every type, in schema order.
    pub const ALL: [EventType; 15] = [
        EventType::PageView,
        EventType::PageLeave,
        EventType::UiClick,
        EventType::UiInput,
        EventType::UiScroll,
        EventType::UiFocus,
        EventType::UiBlur,
        EventType::UiSubmit,
        EventType::StateChange,
        EventType::ApiRequest,
        EventType::ApiResponse,
        EventType::JourneyStep,
        EventType::Error,
        EventType::Performance,
        EventType::Custom,
    ];

    /// The wire name, e.g. `page.view`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::PageView => "page.view",
            EventType::PageLeave => "page.leave",
            EventType::UiClick => "ui.click",
            EventType::UiInput => "ui.input",
            EventType::UiScroll => "ui.scroll",
            EventType::UiFocus => "ui.focus",
            EventType::UiBlur => "ui.blur",
            EventType::UiSubmit => "ui.submit",
            EventType::StateChange => "state.change",
            EventType::ApiRequest => "api.request",
            EventType::ApiResponse => "api.response",
            EventType::JourneyStep => "journey.step",
            EventType::Error => "error",
            EventType::Performance => "performance",
            EventType::Custom => "custom",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        EventType::ALL.into_iter().find(|event_type| event_type.as_str() == text)
    }
}

/// One product event after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductEvent {
    /// Client-chosen unique id; a repeated id in the same project is a retry and is stored once.
    pub event_id: String,
    /// `product_id` (or its older alias `project_id`) as the client sent it.
    pub product_id: String,
    /// `session.id`.
    pub session_id: String,
    /// `user.id`.
    pub user_id: Option<String>,
    /// `org.id`.
    pub org_id: Option<String>,
    /// `event.type`.
    pub event_type: EventType,
    /// `event.name` (empty when not sent).
    pub event_name: String,
    /// `event.timestamp` in ns since epoch (receipt time when not sent).
    pub timestamp_unix_nano: u64,
    /// True when the client sent no `event.timestamp` and `timestamp_unix_nano` is the receipt
    /// time. A retry of such an event gets another receipt time, so the store deduplicates it
    /// by `event_id` alone instead of by (timestamp, `event_id`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timestamp_defaulted: bool,
    /// `event.sequence`.
    pub sequence: Option<i64>,
    /// Every other schema field by its dotted name (`page.path`, `ui.action`, `api.status_code`,
    /// `journey.id`, `error.stack`, `performance.lcp_ms`, `duration_ms`, ...).
    pub properties: Map<String, Value>,
    /// The free-form `metadata` object.
    pub metadata: Map<String, Value>,
}

/// What kind of value a schema property holds.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    LongText,
    Integer,
    Number,
}

/// Schema properties beyond identity and classification: (wire name, stored name, kind).
const PROPERTIES: &[(&str, &str, Kind)] = &[
    ("page.path", "page.path", Kind::Text),
    ("page.title", "page.title", Kind::Text),
    ("page.url", "page.url", Kind::Text),
    ("page.referrer", "page.referrer", Kind::Text),
    ("ui.component.name", "ui.component.name", Kind::Text),
    ("ui.component.path", "ui.component.path", Kind::Text),
    ("ui.component.type", "ui.component.type", Kind::Text),
    ("ui.action", "ui.action", Kind::Text),
    ("ui.element", "ui.element", Kind::Text),
    ("ui.element.text", "ui.element.text", Kind::Text),
    ("ui.viewport", "ui.viewport", Kind::Text),
    ("ui.scroll.position", "ui.scroll.position", Kind::Number),
    ("ui.state.key", "ui.state.key", Kind::Text),
    ("ui.state.before", "ui.state.before", Kind::LongText),
    ("ui.state.after", "ui.state.after", Kind::LongText),
    ("ui.state.change_type", "ui.state.change_type", Kind::Text),
    ("journey.id", "journey.id", Kind::Text),
    ("journey.step.id", "journey.step.id", Kind::Text),
    ("journey.step.name", "journey.step.name", Kind::Text),
    ("journey.conversion.status", "journey.conversion.status", Kind::Text),
    ("gen_ai.journey.id", "journey.id", Kind::Text),
    ("gen_ai.journey.step.id", "journey.step.id", Kind::Text),
    ("gen_ai.journey.step.name", "journey.step.name", Kind::Text),
    ("gen_ai.journey.conversion.status", "journey.conversion.status", Kind::Text),
    ("api.method", "api.method", Kind::Text),
    ("api.path", "api.path", Kind::Text),
    ("api.status_code", "api.status_code", Kind::Integer),
    ("api.duration_ms", "api.duration_ms", Kind::Number),
    ("error.type", "error.type", Kind::Text),
    ("error.message", "error.message", Kind::LongText),
    ("error.stack", "error.stack", Kind::LongText),
    ("error.component", "error.component", Kind::Text),
    ("performance.lcp_ms", "performance.lcp_ms", Kind::Number),
    ("performance.fid_ms", "performance.fid_ms", Kind::Number),
    ("performance.inp_ms", "performance.inp_ms", Kind::Number),
    ("performance.cls", "performance.cls", Kind::Number),
    ("performance.ttfb_ms", "performance.ttfb_ms", Kind::Number),
    ("performance.fcp_ms", "performance.fcp_ms", Kind::Number),
    ("snapshot.url", "snapshot.url", Kind::Text),
    ("snapshot.viewport", "snapshot.viewport", Kind::Text),
    ("duration_ms", "duration_ms", Kind::Number),
];

fn optional_text(value: Option<Value>, key: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) if text.len() > MAX_STRING_BYTES => {
            Err(format!("{key}: longer than {MAX_STRING_BYTES} bytes"))
        }
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(format!("{key}: must be a string")),
    }
}

fn required_text(value: Option<Value>, key: &str) -> Result<String, String> {
    optional_text(value, key)?.ok_or_else(|| format!("{key}: required"))
}

/// An event object's fields sorted into their places in one pass, values moved, not copied.
#[derive(Default)]
struct EventFields {
    event_id: Option<Value>,
    product_id: Option<Value>,
    project_id: Option<Value>,
    session_id: Option<Value>,
    user_id: Option<Value>,
    org_id: Option<Value>,
    event_type: Option<Value>,
    event_name: Option<Value>,
    timestamp: Option<Value>,
    sequence: Option<Value>,
    metadata: Option<Value>,
    /// Schema properties by their index in [`PROPERTIES`].
    properties: Vec<(usize, Value)>,
    /// Everything else, in the order sent.
    extra: Vec<(String, Value)>,
}

impl EventFields {
    fn sort(object: Map<String, Value>) -> Self {
        let mut fields = EventFields::default();
        for (key, value) in object {
            fields.place(std::borrow::Cow::Owned(key), value);
        }
        // Schema order, so the stored object reads the same whatever order the client used
        // (and `gen_ai.journey.*` lands on the `journey.*` name after it, as documented).
        fields.properties.sort_by_key(|(index, _)| *index);
        fields
    }
}

/// Parses RFC 3339 with or without fractional seconds and with any offset (ProductGraph tries
/// RFC3339Nano, then RFC3339) into ns since epoch; `None` for other text or times before 1970.
pub fn parse_rfc3339_nanos(text: &str) -> Option<u64> {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(parsed.unix_timestamp_nanos()).ok()
}

/// Parses and validates one event object. `now_unix_nano` fills a missing `event.timestamp`
/// (as the ProductGraph handler does). Errors are `"field: reason"`, as ProductGraph reports
/// them.
pub fn parse_event(value: &Value, now_unix_nano: u64) -> Result<ProductEvent, String> {
    parse_event_owned(value.clone(), now_unix_nano)
}

/// [`parse_event`] taking the value by ownership: fields are sorted in one pass over the object
/// and moved into the event, so nothing is copied (the receiver's path; 2–3× faster than
/// looking every schema field up and cloning it).
pub fn parse_event_owned(value: Value, now_unix_nano: u64) -> Result<ProductEvent, String> {
    let Value::Object(object) = value else {
        return Err("event: must be a JSON object".into());
    };
    EventFields::sort(object).into_event(now_unix_nano)
}

impl EventFields {
    /// Validates the sorted fields into an event (errors are `"field: reason"`).
    fn into_event(self, now_unix_nano: u64) -> Result<ProductEvent, String> {
        let fields = self;
        let event_id = required_text(fields.event_id, "event_id")?;
        let product_id = match optional_text(fields.product_id, "product_id")? {
            Some(product_id) => product_id,
            None => optional_text(fields.project_id, "project_id")?.ok_or("product_id: required")?,
        };
        let session_id = required_text(fields.session_id, "session.id")?;
        let type_text = required_text(fields.event_type, "event.type")?;
        let event_type = EventType::parse(&type_text).ok_or_else(|| {
        format!("event.type: unknown type {type_text:?}; use one of page.view, page.leave, ui.click, ui.input, ui.scroll, ui.focus, ui.blur, ui.submit, state.change, api.request, api.response, journey.step, error, performance, custom")
    })?;
        let (timestamp_unix_nano, timestamp_defaulted) = match &fields.timestamp {
            None | Some(Value::Null) => (now_unix_nano, true),
            Some(Value::String(text)) if text.is_empty() => (now_unix_nano, true),
            Some(Value::String(text)) => {
                (parse_rfc3339_nanos(text).ok_or_else(|| format!("event.timestamp: {text:?} is not RFC 3339"))?, false)
            }
            Some(_) => return Err("event.timestamp: must be an RFC 3339 string".into()),
        };
        let sequence = match &fields.sequence {
            None | Some(Value::Null) => None,
            Some(Value::Number(number)) => Some(number.as_i64().ok_or("event.sequence: must be an integer")?),
            Some(_) => return Err("event.sequence: must be an integer".into()),
        };
        let mut properties = Map::new();
        for (index, value) in fields.properties {
            let (wire, stored, kind) = PROPERTIES[index];
            if value.is_null() {
                continue;
            }
            match kind {
                Kind::Text | Kind::LongText => {
                    let Value::String(text) = &value else { return Err(format!("{wire}: must be a string")) };
                    let limit = if matches!(kind, Kind::LongText) { MAX_STACK_BYTES } else { MAX_STRING_BYTES };
                    if text.len() > limit {
                        return Err(format!("{wire}: longer than {limit} bytes"));
                    }
                    if text.is_empty() {
                        continue;
                    }
                }
                Kind::Integer => {
                    if value.as_i64().is_none() {
                        return Err(format!("{wire}: must be an integer"));
                    }
                }
                Kind::Number => {
                    if !value.is_number() {
                        return Err(format!("{wire}: must be a number"));
                    }
                }
            }
            properties.insert(stored.to_owned(), value);
        }
        let mut extra = 0;
        for (key, value) in fields.extra {
            // Unknown fields are kept when scalar and small, so nothing a client sends is lost silently.
            let small_scalar = match &value {
                Value::String(text) => text.len() <= MAX_STRING_BYTES,
                Value::Number(_) | Value::Bool(_) => true,
                _ => false,
            };
            if small_scalar && extra < MAX_EXTRA_FIELDS && key.len() <= 128 {
                properties.insert(key, value);
                extra += 1;
            }
        }
        let metadata = match fields.metadata {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(metadata)) => {
                let size = serde_json::to_string(&metadata).map(|text| text.len()).unwrap_or(usize::MAX);
                if size > MAX_METADATA_BYTES {
                    return Err(format!("metadata: {size} bytes, more than {MAX_METADATA_BYTES}"));
                }
                metadata
            }
            Some(_) => return Err("metadata: must be an object".into()),
        };
        Ok(ProductEvent {
            event_id,
            product_id,
            session_id,
            user_id: optional_text(fields.user_id, "user.id")?,
            org_id: optional_text(fields.org_id, "org.id")?,
            event_type,
            event_name: optional_text(fields.event_name, "event.name")?.unwrap_or_default(),
            timestamp_unix_nano,
            timestamp_defaulted,
            sequence,
            properties,
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_800_000_000_000_000_000;

    fn minimal() -> Value {
        json!({"event_id": "e1", "product_id": "shop", "session.id": "sess-1", "event.type": "page.view",
               "event.timestamp": "2026-11-24T10:00:00.123456789Z"})
    }

    #[test]
    fn parses_the_schema_and_normalizes_journey_spellings() {
        let mut event = minimal();
        event["gen_ai.journey.id"] = json!("checkout");
        event["page.path"] = json!("/cart");
        event["api.status_code"] = json!(200);
        event["metadata"] = json!({"plan": "pro"});
        event["x.custom"] = json!(true);
        let parsed = parse_event(&event, NOW).unwrap();
        assert_eq!(parsed.event_type, EventType::PageView);
        assert_eq!(parsed.timestamp_unix_nano, 1_795_514_400_123_456_789);
        assert_eq!(parsed.properties["journey.id"], "checkout");
        assert_eq!(parsed.properties["page.path"], "/cart");
        assert_eq!(parsed.properties["x.custom"], true);
        assert_eq!(parsed.metadata["plan"], "pro");
    }

    #[test]
    fn project_id_is_an_alias_and_timestamp_defaults_to_now() {
        let event = json!({"event_id": "e1", "project_id": "shop", "session.id": "s", "event.type": "custom"});
        let parsed = parse_event(&event, NOW).unwrap();
        assert_eq!((parsed.product_id.as_str(), parsed.timestamp_unix_nano), ("shop", NOW));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({"product_id": "p", "session.id": "s", "event.type": "custom"}), "event_id: required"),
            (json!({"event_id": "e", "session.id": "s", "event.type": "custom"}), "product_id: required"),
            (json!({"event_id": "e", "product_id": "p", "event.type": "custom"}), "session.id: required"),
            (
                json!({"event_id": "e", "product_id": "p", "session.id": "s", "event.type": "click"}),
                "event.type: unknown type",
            ),
            (
                json!({"event_id": "e", "product_id": "p", "session.id": "s", "event.type": "custom", "event.timestamp": "yesterday"}),
                "event.timestamp",
            ),
            (
                json!({"event_id": 7, "product_id": "p", "session.id": "s", "event.type": "custom"}),
                "event_id: must be a string",
            ),
            (
                json!({"event_id": "e", "product_id": "p", "session.id": "s", "event.type": "custom", "api.status_code": "200"}),
                "api.status_code: must be an integer",
            ),
            (
                json!({"event_id": "e", "product_id": "p", "session.id": "s", "event.type": "custom", "metadata": {"blob": "x".repeat(20_000)}}),
                "metadata:",
            ),
            (json!(["not", "an", "object"]), "event: must be a JSON object"),
        ];
        for (event, expected) in cases {
            let error = parse_event(&event, NOW).unwrap_err();
            assert!(error.starts_with(expected), "{error} should start with {expected}");
        }
    }

    #[test]
    fn rfc3339_offsets_and_fractions() {
        assert_eq!(parse_rfc3339_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_nanos("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_nanos("2000-03-01T00:00:00.5Z"), Some(951_868_800_500_000_000));
        assert_eq!(parse_rfc3339_nanos("2000-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_nanos("2000-01-01"), None);
    }
}
