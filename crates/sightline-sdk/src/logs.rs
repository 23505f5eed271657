//! Log correlation: every log line carries `trace_id`, `span_id` and `session.id` (text or JSON
//! lines on stdout), and OTLP log records get `session.id` / `user.id` so Sightline links logs to
//! traces and sessions.
//!
//! Ids are read from the current OpenTelemetry context, which `tracing-opentelemetry` (context
//! activation, on by default) and the middleware attach while a span is entered; a line logged
//! outside any span has no ids. Field names: `trace_id` / `span_id` as in the OTLP log data
//! model and OTel's "Trace Context in non-OTLP Log Formats" (hex, lower case), `session.id` /
//! `user.id` as semconv.

use std::fmt::Write as _;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::logs::AnyValue;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, InstrumentationScope, Key};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::context::{RequestIdentity, SESSION_ID_KEY, USER_ID_KEY};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `2026-12-01T10:00:00.123456Z  INFO shop::cart: Item added sku="a1" trace_id=… span_id=… session.id=…`
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, the event's fields,
    /// `trace_id`, `span_id`, `session.id`.
    Json,
}

/// The ids a log line is correlated with.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Correlation {
    /// 32 hex digits.
    pub trace_id: Option<String>,
    /// 16 hex digits.
    pub span_id: Option<String>,
    /// `session.id` from baggage.
    pub session_id: Option<String>,
}

impl Correlation {
    /// The ids of `cx`.
    pub fn of(cx: &Context) -> Self {
        let span = cx.span();
        let span_context = span.span_context();
        let (trace_id, span_id) = if span_context.is_valid() {
            (Some(span_context.trace_id().to_string()), Some(span_context.span_id().to_string()))
        } else {
            (None, None)
        };
        Correlation { trace_id, span_id, session_id: RequestIdentity::from_context(cx).session_id }
    }

    /// The ids of the code running now.
    pub fn current() -> Self {
        let attached = Context::current();
        if attached.span().span_context().is_valid() {
            return Self::of(&attached);
        }
        Self::of(&crate::context::current_context())
    }
}

/// Collects an event's fields; `message` separately.
#[derive(Default)]
struct FieldCollector {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.fields.insert(field.name().to_owned(), Value::String(value.to_owned()));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.fields.insert(field.name().to_owned(), Value::String(text));
        }
    }
}

/// A `tracing-subscriber` event formatter that writes correlated lines (see [`LogFormat`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CorrelatedFormat {
    format: LogFormat,
}

impl CorrelatedFormat {
    /// A formatter for `format`.
    pub fn new(format: LogFormat) -> Self {
        CorrelatedFormat { format }
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

impl<S, N> FormatEvent<S, N> for CorrelatedFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut collector = FieldCollector::default();
        event.record(&mut collector);
        let correlation = Correlation::current();
        let metadata = event.metadata();
        match self.format {
            LogFormat::Json => {
                let mut line = Map::new();
                line.insert("timestamp".into(), Value::String(now_rfc3339()));
                line.insert("level".into(), Value::String(metadata.level().to_string()));
                line.insert("target".into(), Value::String(metadata.target().to_owned()));
                line.insert("message".into(), Value::String(collector.message.unwrap_or_default()));
                for (key, value) in collector.fields {
                    line.insert(key, value);
                }
                for (key, value) in [
                    ("trace_id", correlation.trace_id),
                    ("span_id", correlation.span_id),
                    (SESSION_ID_KEY, correlation.session_id),
                ] {
                    if let Some(value) = value {
                        line.insert(key.into(), Value::String(value));
                    }
                }
                let text = serde_json::to_string(&Value::Object(line)).map_err(|_| std::fmt::Error)?;
                writeln!(writer, "{text}")
            }
            LogFormat::Text => {
                let mut line = format!("{} {:>5} {}:", now_rfc3339(), metadata.level(), metadata.target());
                if let Some(message) = collector.message {
                    let _ = write!(line, " {message}");
                }
                for (key, value) in collector.fields {
                    match value {
                        Value::String(text) => {
                            let _ = write!(line, " {key}={text:?}");
                        }
                        other => {
                            let _ = write!(line, " {key}={other}");
                        }
                    }
                }
                for (key, value) in [
                    ("trace_id", correlation.trace_id),
                    ("span_id", correlation.span_id),
                    (SESSION_ID_KEY, correlation.session_id),
                ] {
                    if let Some(value) = value {
                        let _ = write!(line, " {key}={value}");
                    }
                }
                writeln!(writer, "{line}")
            }
        }
    }
}

/// A `fmt` layer writing correlated lines to stdout.
pub fn fmt_layer<S>(
    format: LogFormat,
) -> tracing_subscriber::fmt::Layer<S, tracing_subscriber::fmt::format::DefaultFields, CorrelatedFormat>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer().event_format(CorrelatedFormat::new(format))
}

/// A log processor placed before the exporting one: adds `session.id` and `user.id` from the
/// current baggage to each OTLP log record (Sightline's session correlation reads them), unless
/// the record already has them.
#[derive(Debug, Default)]
pub struct SessionLogProcessor;

impl LogProcessor for SessionLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, _scope: &InstrumentationScope) {
        let cx = Context::current();
        let baggage = cx.baggage();
        for key in [SESSION_ID_KEY, USER_ID_KEY] {
            if let Some(value) = baggage.get(key) {
                let key = Key::from_static_str(key);
                let already = record.attributes_iter().any(|(existing, _)| *existing == key);
                if !already {
                    use opentelemetry::logs::LogRecord as _;
                    record.add_attribute(key, AnyValue::String(value.as_str().to_owned().into()));
                }
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::KeyValue;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: LogFormat) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(CorrelatedFormat::new(format))
                .with_writer(move || writer.clone()),
        );
        let span_context = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = Context::new()
            .with_remote_span_context(span_context)
            .with_baggage([KeyValue::new("session.id", "sess-log")]);
        tracing::subscriber::with_default(subscriber, || {
            let _attached = cx.attach();
            tracing::info!(sku = "a1", quantity = 2, "Item added");
        });
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer().event_format(CorrelatedFormat::new(format)).with_writer({
                    let writer = captured.clone();
                    move || writer.clone()
                }),
            ),
            || tracing::warn!("Outside any request"),
        );
        let bytes = captured.0.lock().map(|bytes| bytes.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn text_lines_carry_trace_span_and_session_ids() {
        let output = logged(LogFormat::Text);
        let mut lines = output.lines();
        let first = lines.next().expect("a line");
        assert!(first.contains("INFO") && first.contains("Item added sku=\"a1\" quantity=2"), "{first}");
        assert!(
            first.ends_with(" trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 session.id=sess-log"),
            "{first}"
        );
        let second = lines.next().expect("second line");
        assert!(!second.contains("trace_id"), "no ids outside a request: {second}");
    }

    #[test]
    fn json_lines_carry_trace_span_and_session_ids() {
        let output = logged(LogFormat::Json);
        let first: Value = serde_json::from_str(output.lines().next().expect("a line")).expect("JSON line");
        assert_eq!(first["message"], "Item added");
        assert_eq!(first["quantity"], 2);
        assert_eq!(first["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(first["span_id"], "00f067aa0ba902b7");
        assert_eq!(first["session.id"], "sess-log");
        assert_eq!(first["level"], "INFO");
        let second: Value = serde_json::from_str(output.lines().nth(1).expect("second")).expect("JSON");
        assert!(second.get("trace_id").is_none());
    }
}
