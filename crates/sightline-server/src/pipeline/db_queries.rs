//! Derives database query rollup deltas (calls, errors, duration sketch, slowest calls) per
//! minute from a batch of spans; the store merges them into the stored rows at commit
//! (`store/sqlite/query_rollups.rs`).
//!
//! Which spans count (OTel semconv "Database spans", `docs/database/database-spans.md`): any
//! span — in practice CLIENT spans — carrying a database system (`db.system.name`, old
//! `db.system`) and a query text (`db.query.text`, old `db.statement`). Spans naming only an
//! operation (`db.operation.name`) without the text are not counted: there is no query to group.
//! The new attribute wins when both are sent. The namespace is `db.namespace` (old `db.name`).
//! An error is a span with status ERROR (semconv: database spans set it on failed calls).

use std::collections::HashMap;

use sightline_model::span::status_code;
use sightline_model::{Batch, Span};

use super::query_normalize::normalize_query;
use super::rollups::{minute_of, non_empty, slow_request_of};
use crate::store::query_rollups::{QueryKey, QueryRollup};
use crate::store::rollups::MINUTE_SECONDS;

/// The (system, namespace, raw query text) of a database span; `None` for other spans.
fn database_call_of(span: &Span) -> Option<(&str, &str, &str)> {
    let attributes = &span.attributes;
    let system = non_empty(attributes, "db.system.name").or_else(|| non_empty(attributes, "db.system"))?;
    let query = non_empty(attributes, "db.query.text").or_else(|| non_empty(attributes, "db.statement"))?;
    let namespace = non_empty(attributes, "db.namespace").or_else(|| non_empty(attributes, "db.name")).unwrap_or("");
    Some((system, namespace, query))
}

/// One delta per (service, system, namespace, normalized query, minute of the span start)
/// present in the batch.
pub fn query_rollups_from_spans(batch: &Batch<Span>) -> Vec<QueryRollup> {
    let mut index_by_key: HashMap<(QueryKey, u64), usize> = HashMap::new();
    let mut deltas: Vec<QueryRollup> = Vec::new();
    // Applications repeat the same texts (same literals, or already parameterized): normalize
    // each distinct text once per batch.
    let mut normalized_by_text: HashMap<&str, String> = HashMap::new();
    for resource_group in batch {
        let service = resource_group.resource.service_name();
        for scope_group in &resource_group.scopes {
            for span in &scope_group.items {
                let Some((system, namespace, query)) = database_call_of(span) else {
                    continue;
                };
                let key = QueryKey {
                    service_name: service.to_owned(),
                    db_system: system.to_owned(),
                    db_namespace: namespace.to_owned(),
                    query: normalized_by_text.entry(query).or_insert_with(|| normalize_query(query)).clone(),
                };
                let index = *index_by_key.entry((key, minute_of(span))).or_insert_with_key(|(key, minute)| {
                    deltas.push(QueryRollup::empty(key.clone(), *minute, MINUTE_SECONDS));
                    deltas.len() - 1
                });
                deltas[index].add_call(slow_request_of(span), span.status_code == status_code::ERROR);
            }
        }
    }
    deltas
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use sightline_model::span::kind;
    use sightline_model::{Attributes, Resource, ResourceGroup, Scope, ScopeGroup, SpanId, TraceId};

    use super::*;

    fn span(id: u8, attributes: Value, duration_ms: u64, error: bool) -> Span {
        let start = 120_000_000_000 + u64::from(id);
        Span {
            trace_id: TraceId([id; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: Some(SpanId([99; 8])),
            trace_state: String::new(),
            flags: 0,
            name: "SELECT".into(),
            kind: kind::CLIENT,
            start_time_unix_nano: start,
            end_time_unix_nano: start + duration_ms * 1_000_000,
            attributes: Attributes(attributes.as_object().cloned().unwrap_or_default()),
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status_code: if error { status_code::ERROR } else { status_code::UNSET },
            status_message: String::new(),
        }
    }

    #[test]
    fn new_and_old_semconv_group_by_normalized_query() {
        let spans = vec![
            span(
                1,
                json!({"db.system.name": "postgresql", "db.namespace": "shop", "db.query.text": "SELECT * FROM t WHERE id = 1"}),
                3,
                false,
            ),
            span(
                2,
                json!({"db.system": "postgresql", "db.name": "shop", "db.statement": "SELECT *  FROM t WHERE id = 22"}),
                9,
                true,
            ),
            span(3, json!({"db.system": "redis", "db.statement": "GET ?"}), 1, false),
            // No query text, or no system: not a database call we can group.
            span(4, json!({"db.system.name": "postgresql", "db.operation.name": "SELECT"}), 1, false),
            span(5, json!({"db.query.text": "SELECT 1"}), 1, false),
        ];
        let mut resource = Resource::default();
        resource.attributes.0.insert("service.name".into(), json!("api"));
        let batch =
            vec![ResourceGroup { resource, scopes: vec![ScopeGroup { scope: Scope::default(), items: spans }] }];
        let deltas = query_rollups_from_spans(&batch);
        let summary: Vec<(&str, &str, &str, u64, u64)> = deltas
            .iter()
            .map(|delta| {
                (
                    delta.key.db_system.as_str(),
                    delta.key.db_namespace.as_str(),
                    delta.key.query.as_str(),
                    delta.calls,
                    delta.errors,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [("postgresql", "shop", "SELECT * FROM t WHERE id = ?", 2, 1), ("redis", "", "GET ?", 1, 0)]
        );
        assert_eq!(deltas[0].bucket_start_unix_nano, 120_000_000_000);
        assert_eq!(deltas[0].slowest[0].span_id, SpanId([2; 8]), "the 9 ms call first");
        assert_eq!(deltas[0].key.service_name, "api");
    }
}
