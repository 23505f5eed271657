//! Derives per-trace summary deltas from a batch of spans; the store merges them into the
//! stored summary (min start, max end, counts, services, root) at commit.

use std::collections::HashMap;

use sightline_model::{Batch, Span, TraceId};

use crate::store::TraceSummaryDelta;

/// One delta per trace present in the batch, in order of first appearance.
pub fn summarize(batch: &Batch<Span>) -> Vec<TraceSummaryDelta> {
    let mut index_by_trace: HashMap<TraceId, usize> = HashMap::new();
    let mut deltas: Vec<TraceSummaryDelta> = Vec::new();
    for resource_group in batch {
        let service = resource_group.resource.service_name();
        for scope_group in &resource_group.scopes {
            for span in &scope_group.items {
                let index = *index_by_trace.entry(span.trace_id).or_insert_with(|| {
                    deltas.push(TraceSummaryDelta {
                        trace_id: span.trace_id,
                        start_time_unix_nano: span.start_time_unix_nano,
                        end_time_unix_nano: span.end_time_unix_nano,
                        span_count: 0,
                        error_count: 0,
                        services: Vec::new(),
                        root: None,
                    });
                    deltas.len() - 1
                });
                let delta = &mut deltas[index];
                delta.start_time_unix_nano = delta.start_time_unix_nano.min(span.start_time_unix_nano);
                delta.end_time_unix_nano = delta.end_time_unix_nano.max(span.end_time_unix_nano);
                delta.span_count += 1;
                delta.error_count += u64::from(span.is_error());
                if !delta.services.iter().any(|known| known == service) {
                    delta.services.push(service.to_owned());
                }
                if span.parent_span_id.is_none() {
                    delta.root = Some((service.to_owned(), span.name.clone(), span.duration_nanos()));
                }
            }
        }
    }
    deltas
}
