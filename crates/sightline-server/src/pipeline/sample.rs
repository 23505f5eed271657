//! Head sampling of traces: one decision per trace, derived from the trace id, so every span of
//! a trace is kept or dropped together on every node; spans with status ERROR are always kept.

use sightline_model::{Batch, Span};

/// Keeps a span when its trace id falls under `rate`, using the lower 64 bits of the trace id
/// as OpenTelemetry's `TraceIdRatioBased` sampler does (W3C random trace ids make them
/// uniform). Returns the kept batch and the number of spans sampled out.
pub fn sample_traces(batch: Batch<Span>, rate: f64) -> (Batch<Span>, u64) {
    if rate >= 1.0 {
        return (batch, 0);
    }
    // The threshold on the lower 64 bits; rate 0 keeps only errors.
    let threshold = (rate.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
    let mut sampled_out = 0u64;
    let mut kept_batch = Vec::with_capacity(batch.len());
    for mut resource_group in batch {
        for scope_group in &mut resource_group.scopes {
            let before = scope_group.items.len();
            scope_group.items.retain(|span| span.is_error() || span.trace_id.lower_u64() < threshold);
            sampled_out += (before - scope_group.items.len()) as u64;
        }
        resource_group.scopes.retain(|scope_group| !scope_group.items.is_empty());
        if !resource_group.scopes.is_empty() {
            kept_batch.push(resource_group);
        }
    }
    (kept_batch, sampled_out)
}

#[cfg(test)]
mod tests {
    use sightline_model::{Attributes, Resource, ResourceGroup, Scope, ScopeGroup, SpanId, TraceId};

    use super::*;

    fn span(trace: u64, span: u64, error: bool) -> Span {
        let mut trace_bytes = [1u8; 16];
        trace_bytes[8..].copy_from_slice(&trace.to_be_bytes());
        Span {
            trace_id: TraceId(trace_bytes),
            span_id: SpanId((span + 1).to_be_bytes()),
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: "op".into(),
            kind: 2,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: Attributes::default(),
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status_code: if error { 2 } else { 0 },
            status_message: String::new(),
        }
    }

    fn batch(spans: Vec<Span>) -> Batch<Span> {
        vec![ResourceGroup {
            resource: Resource::default(),
            scopes: vec![ScopeGroup { scope: Scope::default(), items: spans }],
        }]
    }

    #[test]
    fn same_decision_for_every_span_of_a_trace_and_errors_kept() {
        let mut spans = Vec::new();
        for trace in 0..1000u64 {
            let lower = trace.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for index in 0..3 {
                spans.push(span(lower, trace * 3 + index, false));
            }
        }
        spans.push(span(u64::MAX, 99_999, true));
        let (kept, sampled_out) = sample_traces(batch(spans), 0.25);
        let kept_spans = &kept[0].scopes[0].items;
        assert_eq!(kept_spans.len() as u64 + sampled_out, 3001);
        // Every kept trace is kept whole.
        let mut per_trace = std::collections::HashMap::new();
        for kept_span in kept_spans {
            *per_trace.entry(kept_span.trace_id).or_insert(0) += 1;
        }
        assert!(per_trace.iter().all(|(trace_id, count)| *count == 3 || trace_id.lower_u64() == u64::MAX));
        // The error span's trace is far above the threshold but kept.
        assert!(kept_spans.iter().any(|kept_span| kept_span.is_error()));
        let kept_traces = per_trace.len() as f64 - 1.0;
        assert!((150.0..350.0).contains(&kept_traces), "kept {kept_traces} of 1000 traces at rate 0.25");
    }

    #[test]
    fn rate_one_keeps_everything_and_zero_keeps_only_errors() {
        let (kept, dropped) = sample_traces(batch(vec![span(5, 1, false), span(6, 2, true)]), 1.0);
        assert_eq!((kept[0].scopes[0].items.len(), dropped), (2, 0));
        let (kept, dropped) = sample_traces(batch(vec![span(5, 1, false), span(6, 2, true)]), 0.0);
        assert_eq!((kept[0].scopes[0].items.len(), dropped), (1, 1));
    }
}
