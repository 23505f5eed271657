//! Datadog propagation headers as an OpenTelemetry [`TextMapPropagator`].
//!
//! Follows Datadog's "Propagating Trace Context" docs and dd-trace's `datadog` style:
//! - `x-datadog-trace-id`: the low 64 bits of the trace id, **decimal**;
//! - `x-datadog-parent-id`: the 64-bit span id, decimal;
//! - `x-datadog-sampling-priority`: `-1` user reject, `0` auto reject, `1` auto keep, `2` user keep;
//! - `x-datadog-origin`: where the trace started (`synthetics`, `rum`, ...);
//! - `x-datadog-tags`: comma-separated `_dd.p.*` propagation tags; `_dd.p.tid` carries the high
//!   64 bits of a 128-bit trace id as 16 lower-case hex digits.
//!
//! The maintained `opentelemetry-datadog` crate is deprecated and built on opentelemetry 0.32,
//! so this is written here. Priority, origin and the other `_dd.p.*` tags survive a hop through
//! this service in the W3C `tracestate` entry `dd` the way Datadog's tracers write it
//! (`dd=s:2;o:rum;t.dm:-4`), so re-injection reproduces them.

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

/// `x-datadog-trace-id`.
pub const TRACE_ID_HEADER: &str = "x-datadog-trace-id";
/// `x-datadog-parent-id`.
pub const PARENT_ID_HEADER: &str = "x-datadog-parent-id";
/// `x-datadog-sampling-priority`.
pub const SAMPLING_PRIORITY_HEADER: &str = "x-datadog-sampling-priority";
/// `x-datadog-origin`.
pub const ORIGIN_HEADER: &str = "x-datadog-origin";
/// `x-datadog-tags`.
pub const TAGS_HEADER: &str = "x-datadog-tags";
/// Longest `x-datadog-tags` read or written, bytes (dd-trace's default
/// `DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH`).
pub const MAX_TAGS_BYTES: usize = 512;
/// The propagation tag holding the high 64 bits of a 128-bit trace id.
const TRACE_ID_HIGH_TAG: &str = "_dd.p.tid";
/// The `tracestate` vendor key Datadog uses.
const TRACE_STATE_KEY: &str = "dd";

/// Extracts and injects Datadog headers (see the module docs).
#[derive(Debug, Clone)]
pub struct DatadogPropagator {
    /// The header names, for [`TextMapPropagator::fields`].
    fields: [String; 5],
}

impl Default for DatadogPropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl DatadogPropagator {
    /// A Datadog propagator.
    pub fn new() -> Self {
        DatadogPropagator {
            fields: [TRACE_ID_HEADER, PARENT_ID_HEADER, SAMPLING_PRIORITY_HEADER, ORIGIN_HEADER, TAGS_HEADER]
                .map(str::to_owned),
        }
    }
}

/// What the `dd` tracestate entry remembers from the incoming headers.
#[derive(Debug, Default, PartialEq)]
struct DatadogState {
    sampling_priority: Option<i32>,
    origin: Option<String>,
    /// `_dd.p.<name>` tags other than `tid`, as (`<name>`, value).
    tags: Vec<(String, String)>,
}

impl DatadogState {
    /// `s:2;o:rum;t.dm:-4`. Characters tracestate forbids in values (`,`, `=`, `;`, `:`) never
    /// appear because such tags are dropped on extraction.
    fn to_trace_state_value(&self) -> String {
        let mut parts = Vec::new();
        if let Some(priority) = self.sampling_priority {
            parts.push(format!("s:{priority}"));
        }
        if let Some(origin) = &self.origin {
            parts.push(format!("o:{origin}"));
        }
        for (name, value) in &self.tags {
            parts.push(format!("t.{name}:{value}"));
        }
        parts.join(";")
    }

    fn from_trace_state_value(value: &str) -> Self {
        let mut state = DatadogState::default();
        for part in value.split(';') {
            let Some((key, value)) = part.split_once(':') else { continue };
            match key {
                "s" => state.sampling_priority = value.parse().ok(),
                "o" => state.origin = Some(value.to_owned()),
                _ => {
                    if let Some(name) = key.strip_prefix("t.") {
                        state.tags.push((name.to_owned(), value.to_owned()));
                    }
                }
            }
        }
        state
    }
}

/// A tracestate value may hold printable ASCII except `,` and `=` (W3C Trace Context §3.3.1.3.2);
/// `;` and `:` separate Datadog's own fields.
fn fits_trace_state(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| (0x20..=0x7e).contains(&byte) && !b",=;:~".contains(&byte))
}

/// Parses `x-datadog-tags`: `_dd.p.tid` (16 lower-case hex digits) and the other `_dd.p.*` tags.
/// Malformed tags are skipped, as dd-trace does (it records `_dd.propagation_error`).
fn parse_tags(header: &str) -> (Option<u64>, Vec<(String, String)>) {
    if header.len() > MAX_TAGS_BYTES {
        return (None, Vec::new());
    }
    let mut trace_id_high = None;
    let mut tags = Vec::new();
    for pair in header.split(',') {
        let Some((key, value)) = pair.trim().split_once('=') else { continue };
        if key == TRACE_ID_HIGH_TAG {
            let lower_hex = value.len() == 16 && value.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
            if lower_hex {
                trace_id_high = u64::from_str_radix(value, 16).ok();
            }
        } else if let Some(name) = key.strip_prefix("_dd.p.")
            && fits_trace_state(name)
            && fits_trace_state(value)
        {
            tags.push((name.to_owned(), value.to_owned()));
        }
    }
    (trace_id_high, tags)
}

impl DatadogPropagator {
    fn extract_span_context(extractor: &dyn Extractor) -> Option<SpanContext> {
        let trace_id_low: u64 = extractor.get(TRACE_ID_HEADER)?.trim().parse().ok()?;
        let parent_id: u64 = extractor.get(PARENT_ID_HEADER)?.trim().parse().ok()?;
        if trace_id_low == 0 || parent_id == 0 {
            return None;
        }
        let (trace_id_high, tags) = extractor.get(TAGS_HEADER).map(parse_tags).unwrap_or_default();
        let trace_id = (u128::from(trace_id_high.unwrap_or(0)) << 64) | u128::from(trace_id_low);
        let sampling_priority: Option<i32> =
            extractor.get(SAMPLING_PRIORITY_HEADER).and_then(|text| text.trim().parse().ok());
        // No priority means the caller deferred the decision; Datadog's tracers keep such traces
        // by default, so the span is marked sampled and a parent-based sampler keeps it.
        let trace_flags = match sampling_priority {
            Some(priority) if priority <= 0 => TraceFlags::NOT_SAMPLED,
            _ => TraceFlags::SAMPLED,
        };
        let origin = extractor.get(ORIGIN_HEADER).map(str::trim).filter(|origin| fits_trace_state(origin));
        let state = DatadogState { sampling_priority, origin: origin.map(str::to_owned), tags };
        let state_value = state.to_trace_state_value();
        let trace_state = if state_value.is_empty() {
            TraceState::default()
        } else {
            TraceState::from_key_value([(TRACE_STATE_KEY, state_value.as_str())]).unwrap_or_default()
        };
        Some(SpanContext::new(TraceId::from(trace_id), SpanId::from(parent_id), trace_flags, true, trace_state))
    }
}

impl TextMapPropagator for DatadogPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let span_context = span.span_context();
        if !span_context.is_valid() {
            return;
        }
        let trace_id = u128::from_be_bytes(span_context.trace_id().to_bytes());
        let trace_id_low = trace_id as u64;
        let trace_id_high = (trace_id >> 64) as u64;
        let span_id = u64::from_be_bytes(span_context.span_id().to_bytes());
        injector.set(TRACE_ID_HEADER, trace_id_low.to_string());
        injector.set(PARENT_ID_HEADER, span_id.to_string());
        let state = span_context
            .trace_state()
            .get(TRACE_STATE_KEY)
            .map(DatadogState::from_trace_state_value)
            .unwrap_or_default();
        // The remembered priority is kept only while it agrees with the sampling decision made
        // since (a user keep stays 2, but a sampler that dropped the trace wins).
        let sampled = span_context.is_sampled();
        let priority = match state.sampling_priority {
            Some(priority) if (priority > 0) == sampled => priority,
            _ => i32::from(sampled),
        };
        injector.set(SAMPLING_PRIORITY_HEADER, priority.to_string());
        if let Some(origin) = &state.origin {
            injector.set(ORIGIN_HEADER, origin.clone());
        }
        let mut tags = Vec::new();
        if trace_id_high != 0 {
            tags.push(format!("{TRACE_ID_HIGH_TAG}={trace_id_high:016x}"));
        }
        for (name, value) in &state.tags {
            tags.push(format!("_dd.p.{name}={value}"));
        }
        let tags = tags.join(",");
        if !tags.is_empty() && tags.len() <= MAX_TAGS_BYTES {
            injector.set(TAGS_HEADER, tags);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match Self::extract_span_context(extractor) {
            Some(span_context) => cx.with_remote_span_context(span_context),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn extract(headers: &[(&str, &str)]) -> SpanContext {
        let carrier: HashMap<String, String> =
            headers.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        DatadogPropagator::new().extract(&carrier).span().span_context().clone()
    }

    fn inject(span_context: SpanContext) -> HashMap<String, String> {
        let mut carrier = HashMap::new();
        DatadogPropagator::new().inject_context(&Context::new().with_remote_span_context(span_context), &mut carrier);
        carrier
    }

    /// Datadog's docs example for a 128-bit id: trace id `640cfd8d00000000abcdefab12345678`
    /// travels as `x-datadog-trace-id: 12379814468735227512` (0xabcdefab12345678) plus
    /// `x-datadog-tags: _dd.p.tid=640cfd8d00000000`.
    #[test]
    fn a_128_bit_trace_id_round_trips_through_the_tid_tag() {
        let span_context = extract(&[
            ("x-datadog-trace-id", "12379814468735227512"),
            ("x-datadog-parent-id", "67667974448284343"),
            ("x-datadog-sampling-priority", "2"),
            ("x-datadog-origin", "rum"),
            ("x-datadog-tags", "_dd.p.tid=640cfd8d00000000,_dd.p.dm=-4"),
        ]);
        assert_eq!(span_context.trace_id().to_string(), "640cfd8d00000000abcdefab12345678");
        assert_eq!(span_context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(span_context.is_sampled());
        assert!(span_context.is_remote());
        assert_eq!(span_context.trace_state().get("dd"), Some("s:2;o:rum;t.dm:-4"));

        let carrier = inject(span_context);
        assert_eq!(carrier["x-datadog-trace-id"], "12379814468735227512");
        assert_eq!(carrier["x-datadog-parent-id"], "67667974448284343");
        assert_eq!(carrier["x-datadog-sampling-priority"], "2");
        assert_eq!(carrier["x-datadog-origin"], "rum");
        assert_eq!(carrier["x-datadog-tags"], "_dd.p.tid=640cfd8d00000000,_dd.p.dm=-4");
    }

    #[test]
    fn a_64_bit_id_has_no_tid_tag_and_priority_follows_the_sampled_flag() {
        let span_context = extract(&[("x-datadog-trace-id", "1234567890"), ("x-datadog-parent-id", "987654321")]);
        assert_eq!(span_context.trace_id(), TraceId::from(1_234_567_890_u128));
        assert_eq!(span_context.span_id(), SpanId::from(987_654_321_u64));
        assert!(span_context.is_sampled(), "no priority = deferred = kept");
        let carrier = inject(span_context);
        assert!(!carrier.contains_key("x-datadog-tags"));
        assert_eq!(carrier["x-datadog-sampling-priority"], "1");

        let rejected = extract(&[
            ("x-datadog-trace-id", "1234567890"),
            ("x-datadog-parent-id", "987654321"),
            ("x-datadog-sampling-priority", "-1"),
        ]);
        assert!(!rejected.is_sampled());
        assert_eq!(inject(rejected)["x-datadog-sampling-priority"], "-1");
    }

    #[test]
    fn injects_w3c_ids_in_decimal() {
        let span_context = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let carrier = inject(span_context);
        assert_eq!(carrier["x-datadog-trace-id"], 0xa3ce929d0e0e4736_u64.to_string());
        assert_eq!(carrier["x-datadog-parent-id"], "67667974448284343");
        assert_eq!(carrier["x-datadog-tags"], "_dd.p.tid=4bf92f3577b34da6");
        assert_eq!(carrier["x-datadog-sampling-priority"], "1");
    }

    #[test]
    fn malformed_headers_extract_nothing_and_a_bad_tid_falls_back_to_64_bits() {
        for headers in [
            vec![("x-datadog-trace-id", "abc"), ("x-datadog-parent-id", "1")],
            vec![("x-datadog-trace-id", "0"), ("x-datadog-parent-id", "1")],
            vec![("x-datadog-trace-id", "1")],
            vec![("x-datadog-trace-id", "18446744073709551616"), ("x-datadog-parent-id", "1")],
        ] {
            assert!(!extract(&headers).is_valid(), "{headers:?}");
        }
        let upper_case_tid = extract(&[
            ("x-datadog-trace-id", "5"),
            ("x-datadog-parent-id", "6"),
            ("x-datadog-tags", "_dd.p.tid=640CFD8D00000000"),
        ]);
        assert_eq!(upper_case_tid.trace_id(), TraceId::from(5_u128));
        let oversized = format!("_dd.p.tid=640cfd8d00000000,_dd.p.x={}", "y".repeat(MAX_TAGS_BYTES));
        let ignored =
            extract(&[("x-datadog-trace-id", "5"), ("x-datadog-parent-id", "6"), ("x-datadog-tags", &oversized)]);
        assert_eq!(ignored.trace_id(), TraceId::from(5_u128));
    }
}
