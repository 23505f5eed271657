//! Trace endpoints: one trace as a span tree, and trace search over the stored summaries.
//!
//! - `GET /api/v1/projects/{project}/traces/{trace_id}` → `{trace_id, span_count,
//!   start_time_unix_nano, end_time_unix_nano, duration_nanos, services, roots}` where `roots`
//!   are [`SpanNode`]s with their `children`, each level ordered by start time.
//! - `GET /api/v1/projects/{project}/traces?service=&operation=&status=&min_duration_ms=&from=&to=&attr.KEY=VALUE&limit=&cursor=`
//!   → `{traces: [TraceSummary], next_cursor}`, newest first.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sightline_model::span::{kind, status_code};
use sightline_model::{Attributes, Resource, Scope, SpanEvent, SpanId, SpanLink, TraceId};

use super::params::{QueryParams, parse_limit, path_params, query_params, reject_unknown_params};
use super::{ApiError, authorize_read, blocking, parse_time};
use crate::server::AppState;
use crate::store::{StoredSpan, TraceQuery, TraceSummary};

/// Traces per search page unless `limit` says otherwise.
const DEFAULT_TRACE_LIMIT: usize = 20;
/// Largest `limit` a trace search accepts.
const MAX_TRACE_LIMIT: usize = 1000;
/// Prefix of the query parameters filtering on a span or resource attribute.
const ATTRIBUTE_PARAM_PREFIX: &str = "attr.";
/// Deepest nesting of the returned tree. Deeper spans start a new root instead: serializing
/// (and dropping) the tree recurses once per level, and a trace is untrusted input, so a
/// 100,000-deep parent chain must not overflow the stack. Real traces stay far below this.
const MAX_TREE_DEPTH: usize = 256;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/projects/{project}/traces", get(search_traces))
        .route("/api/v1/projects/{project}/traces/{trace_id}", get(get_trace))
}

/// A span's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SpanStatus {
    /// OTLP `StatusCode` value.
    pub code: i32,
    /// `UNSET`, `OK` or `ERROR`.
    pub code_name: &'static str,
    /// Status message.
    pub message: String,
}

/// One span of a trace tree with its resource, scope and child spans.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SpanNode {
    /// Trace id (hex).
    pub trace_id: TraceId,
    /// Span id (hex).
    pub span_id: SpanId,
    /// Parent span id as sent (hex), also when the parent is not stored.
    pub parent_span_id: Option<SpanId>,
    /// W3C `tracestate`.
    pub trace_state: String,
    /// Span flags.
    pub flags: u32,
    /// Operation name.
    pub name: String,
    /// OTLP `SpanKind` value.
    pub kind: i32,
    /// `INTERNAL`, `SERVER`, `CLIENT`, `PRODUCER`, `CONSUMER` or `UNSPECIFIED`.
    pub kind_name: &'static str,
    /// Start, ns since the epoch.
    pub start_time_unix_nano: u64,
    /// End, ns since the epoch.
    pub end_time_unix_nano: u64,
    /// `end - start` in ns.
    pub duration_nanos: u64,
    /// Span attributes (typed JSON encoding).
    pub attributes: Attributes,
    /// `dropped_attributes_count` as sent.
    pub dropped_attributes_count: u32,
    /// Span events.
    pub events: Vec<SpanEvent>,
    /// `dropped_events_count` as sent.
    pub dropped_events_count: u32,
    /// Span links.
    pub links: Vec<SpanLink>,
    /// `dropped_links_count` as sent.
    pub dropped_links_count: u32,
    /// Status.
    pub status: SpanStatus,
    /// The resource's `service.name`.
    pub service_name: String,
    /// The resource.
    pub resource: Resource,
    /// The instrumentation scope.
    pub scope: Scope,
    /// Child spans, ordered by start time.
    pub children: Vec<SpanNode>,
}

/// One trace as a tree (`GET .../traces/{trace_id}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TraceTree {
    /// Trace id (hex).
    pub trace_id: TraceId,
    /// Spans in the tree.
    pub span_count: usize,
    /// Earliest span start (ns).
    pub start_time_unix_nano: u64,
    /// Latest span end (ns).
    pub end_time_unix_nano: u64,
    /// `end - start` in ns.
    pub duration_nanos: u64,
    /// Services of the spans, in order of first span start.
    pub services: Vec<String>,
    /// Spans without a parent in the trace (true roots, then orphans whose parent never
    /// arrived), ordered by start time.
    pub roots: Vec<SpanNode>,
}

/// Name of an OTLP span kind.
pub(crate) fn span_kind_name(span_kind: i32) -> &'static str {
    match span_kind {
        kind::INTERNAL => "INTERNAL",
        kind::SERVER => "SERVER",
        kind::CLIENT => "CLIENT",
        kind::PRODUCER => "PRODUCER",
        kind::CONSUMER => "CONSUMER",
        _ => "UNSPECIFIED",
    }
}

/// Name of an OTLP status code.
pub(crate) fn status_code_name(code: i32) -> &'static str {
    match code {
        status_code::OK => "OK",
        status_code::ERROR => "ERROR",
        _ => "UNSET",
    }
}

fn span_node(stored: StoredSpan, children: Vec<SpanNode>) -> SpanNode {
    let StoredSpan { span, resource, scope } = stored;
    SpanNode {
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        trace_state: span.trace_state,
        flags: span.flags,
        kind_name: span_kind_name(span.kind),
        kind: span.kind,
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        duration_nanos: span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano),
        name: span.name,
        attributes: span.attributes,
        dropped_attributes_count: span.dropped_attributes_count,
        events: span.events,
        dropped_events_count: span.dropped_events_count,
        links: span.links,
        dropped_links_count: span.dropped_links_count,
        status: SpanStatus {
            code: span.status_code,
            code_name: status_code_name(span.status_code),
            message: span.status_message,
        },
        service_name: resource.service_name().to_owned(),
        resource,
        scope,
        children,
    }
}

/// Arranges a trace's spans (at least one) into a tree. Every span appears exactly once: a
/// span whose parent is not stored (it arrived late, was sampled out or the id is wrong)
/// becomes a root; so does the earliest span of a parent cycle (possible only with bad ids),
/// and any span deeper than [`MAX_TREE_DEPTH`]. A repeated span id (a retried export stored
/// twice) keeps both copies; children hang under the first.
pub(crate) fn build_trace_tree(trace_id: TraceId, mut spans: Vec<StoredSpan>) -> TraceTree {
    // Stable: spans starting together keep the store's order.
    spans.sort_by_key(|stored| stored.span.start_time_unix_nano);
    let span_count = spans.len();

    let mut index_by_span_id: HashMap<SpanId, usize> = HashMap::with_capacity(span_count);
    for (index, stored) in spans.iter().enumerate() {
        index_by_span_id.entry(stored.span.span_id).or_insert(index);
    }
    let mut parent_of: Vec<Option<usize>> = spans
        .iter()
        .enumerate()
        .map(|(index, stored)| {
            let parent_span_id = stored.span.parent_span_id?;
            index_by_span_id.get(&parent_span_id).copied().filter(|parent| *parent != index)
        })
        .collect();
    let mut linked_children: Vec<Vec<usize>> = vec![Vec::new(); span_count];
    for (index, parent) in parent_of.iter().enumerate() {
        if let Some(parent) = parent {
            linked_children[*parent].push(index);
        }
    }

    // Walk down from the roots; whatever stays unreached sits on a parent cycle.
    let mut depth_of: Vec<Option<usize>> = vec![None; span_count];
    let mut pending: Vec<usize> = Vec::new();
    for start in 0..span_count {
        let is_root = parent_of[start].is_none();
        if !is_root || depth_of[start].is_some() {
            continue;
        }
        depth_of[start] = Some(0);
        pending.push(start);
        walk_down(&mut pending, &linked_children, &mut parent_of, &mut depth_of);
    }
    for start in 0..span_count {
        if depth_of[start].is_none() {
            parent_of[start] = None;
            depth_of[start] = Some(0);
            pending.push(start);
            walk_down(&mut pending, &linked_children, &mut parent_of, &mut depth_of);
        }
    }

    // Build nodes bottom-up, deepest first, so no step recurses.
    let mut children_of: Vec<Vec<usize>> = vec![Vec::new(); span_count];
    let mut root_indexes: Vec<usize> = Vec::new();
    for (index, parent) in parent_of.iter().enumerate() {
        match parent {
            Some(parent) => children_of[*parent].push(index),
            None => root_indexes.push(index),
        }
    }
    let mut by_depth: Vec<usize> = (0..span_count).collect();
    by_depth.sort_by_key(|index| std::cmp::Reverse(depth_of[*index].unwrap_or(0)));

    let start_time_unix_nano = spans.iter().map(|stored| stored.span.start_time_unix_nano).min().unwrap_or(0);
    let end_time_unix_nano = spans.iter().map(|stored| stored.span.end_time_unix_nano).max().unwrap_or(0);
    let mut services: Vec<String> = Vec::new();
    for stored in &spans {
        let service_name = stored.resource.service_name();
        if !services.iter().any(|known| known == service_name) {
            services.push(service_name.to_owned());
        }
    }

    let mut unbuilt: Vec<Option<StoredSpan>> = spans.into_iter().map(Some).collect();
    let mut built: Vec<Option<SpanNode>> = vec![None; span_count];
    for index in by_depth {
        let children = children_of[index].iter().filter_map(|child| built[*child].take()).collect();
        if let Some(stored) = unbuilt[index].take() {
            built[index] = Some(span_node(stored, children));
        }
    }
    let roots = root_indexes.into_iter().filter_map(|index| built[index].take()).collect();

    TraceTree {
        trace_id,
        span_count,
        start_time_unix_nano,
        end_time_unix_nano,
        duration_nanos: end_time_unix_nano.saturating_sub(start_time_unix_nano),
        services,
        roots,
    }
}

/// Depth-first walk from the spans in `pending`, giving each reached span its depth; a span
/// that would sit deeper than [`MAX_TREE_DEPTH`] is cut loose and becomes a root.
fn walk_down(
    pending: &mut Vec<usize>,
    linked_children: &[Vec<usize>],
    parent_of: &mut [Option<usize>],
    depth_of: &mut [Option<usize>],
) {
    while let Some(index) = pending.pop() {
        let depth = depth_of[index].unwrap_or(0);
        for child in &linked_children[index] {
            if depth_of[*child].is_some() {
                continue;
            }
            if depth + 1 > MAX_TREE_DEPTH {
                parent_of[*child] = None;
                depth_of[*child] = Some(0);
            } else {
                depth_of[*child] = Some(depth + 1);
            }
            pending.push(*child);
        }
    }
}

async fn get_trace(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<TraceTree>, ApiError> {
    let (project, trace_id_hex) = path_params(path)?;
    let project = authorize_read(&state, &headers, project).await?;
    let trace_id = TraceId::from_hex(&trace_id_hex)
        .map_err(|error| ApiError::invalid(format!("trace id {trace_id_hex:?}: {error}; use 32 hex characters")))?;
    let store = state.store.clone();
    let tree = blocking(move || {
        let spans = store
            .get_trace(project.id, &trace_id)?
            .ok_or_else(|| ApiError::not_found(format!("trace {trace_id} not found")))?;
        Ok(build_trace_tree(trace_id, spans))
    })
    .await?;
    Ok(Json(tree))
}

/// `status=` of a trace search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusFilter {
    Any,
    Error,
    Ok,
}

/// A parsed trace search.
#[derive(Debug, Clone)]
pub(crate) struct TraceSearch {
    pub(crate) query: TraceQuery,
    pub(crate) status: StatusFilter,
}

pub(crate) fn parse_trace_search(params: &QueryParams) -> Result<TraceSearch, ApiError> {
    const KNOWN: [&str; 8] = ["service", "operation", "status", "min_duration_ms", "from", "to", "limit", "cursor"];
    reject_unknown_params(params, &KNOWN, Some(ATTRIBUTE_PARAM_PREFIX))?;
    let non_empty = |name: &str| params.get(name).filter(|value| !value.is_empty()).cloned();
    let status = match params.get("status").map(String::as_str) {
        None | Some("") => StatusFilter::Any,
        Some("error") => StatusFilter::Error,
        Some("ok") => StatusFilter::Ok,
        Some(other) => {
            return Err(ApiError::invalid(format!("status={other:?}: use error or ok")));
        }
    };
    let min_duration_nanos = match super::parse_param::<f64>("min_duration_ms", params.get("min_duration_ms"))? {
        None => None,
        Some(milliseconds) if milliseconds.is_finite() && milliseconds >= 0.0 => {
            Some((milliseconds * 1_000_000.0) as u64)
        }
        Some(milliseconds) => {
            return Err(ApiError::invalid(format!("min_duration_ms={milliseconds}: use a number of milliseconds ≥ 0")));
        }
    };
    let mut attributes: Vec<(String, String)> = Vec::new();
    for (name, value) in params {
        let Some(key) = name.strip_prefix(ATTRIBUTE_PARAM_PREFIX) else {
            continue;
        };
        if key.is_empty() {
            return Err(ApiError::invalid("attr. needs an attribute key: attr.http.route=/users"));
        }
        attributes.push((key.to_owned(), value.clone()));
    }
    // Parameter order is lost in the map; sort so equal searches build equal SQL.
    attributes.sort();
    let query = TraceQuery {
        service: non_empty("service"),
        operation: non_empty("operation"),
        // `ok` is filtered here after the store answers: the store only knows "errors only".
        errors_only: status == StatusFilter::Error,
        min_duration_nanos,
        from_unix_nano: parse_time("from", params.get("from"))?,
        to_unix_nano: parse_time("to", params.get("to"))?,
        attributes,
        limit: parse_limit(params, DEFAULT_TRACE_LIMIT, MAX_TRACE_LIMIT)?,
        cursor: non_empty("cursor"),
    };
    Ok(TraceSearch { query, status })
}

/// A page of trace summaries.
#[derive(Debug, Serialize)]
struct TraceSearchPage {
    /// Summaries, newest first.
    traces: Vec<TraceSummary>,
    /// Cursor for the next page; `null` on the last. With `status=ok` a page may hold fewer
    /// than `limit` traces (even none) and still have a next page.
    next_cursor: Option<String>,
}

async fn search_traces(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<TraceSearchPage>, ApiError> {
    let project = path_params(path)?;
    let project = authorize_read(&state, &headers, project).await?;
    let params = query_params(query)?;
    let search = parse_trace_search(&params)?;
    let store = state.store.clone();
    let page = blocking(move || Ok(store.search_traces(project.id, &search.query)?)).await?;
    let mut traces = page.items;
    if search.status == StatusFilter::Ok {
        traces.retain(|summary| !summary.has_error);
    }
    Ok(Json(TraceSearchPage { traces, next_cursor: page.next_cursor }))
}

#[cfg(test)]
mod tests {
    use sightline_model::{Attributes, Span};

    use super::*;

    const TRACE: TraceId = TraceId([7; 16]);

    fn stored_span(id: u8, parent: Option<u8>, start: u64, service: &str) -> StoredSpan {
        let mut resource = Resource::default();
        resource.attributes.0.insert("service.name".into(), service.into());
        StoredSpan {
            span: Span {
                trace_id: TRACE,
                span_id: SpanId([id; 8]),
                parent_span_id: parent.map(|parent| SpanId([parent; 8])),
                trace_state: String::new(),
                flags: 0,
                name: format!("span {id}"),
                kind: kind::SERVER,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 10,
                attributes: Attributes::default(),
                dropped_attributes_count: 0,
                events: Vec::new(),
                dropped_events_count: 0,
                links: Vec::new(),
                dropped_links_count: 0,
                status_code: status_code::ERROR,
                status_message: "boom".into(),
            },
            resource,
            scope: Scope::default(),
        }
    }

    /// `(span id byte, children)` of a node, recursively.
    fn shape(node: &SpanNode) -> (u8, Vec<(u8, Vec<()>)>) {
        (node.span_id.0[0], node.children.iter().map(|child| (child.span_id.0[0], Vec::new())).collect())
    }

    fn count_nodes(nodes: &[SpanNode]) -> usize {
        let mut count = 0;
        let mut pending: Vec<&SpanNode> = nodes.iter().collect();
        while let Some(node) = pending.pop() {
            count += 1;
            pending.extend(node.children.iter());
        }
        count
    }

    #[test]
    fn spans_nest_under_their_parents_ordered_by_start() {
        let spans = vec![
            stored_span(3, Some(1), 300, "db"),
            stored_span(1, None, 100, "web"),
            stored_span(2, Some(1), 200, "api"),
            stored_span(4, Some(2), 250, "api"),
        ];
        let tree = build_trace_tree(TRACE, spans);
        assert_eq!(tree.span_count, 4);
        assert_eq!((tree.start_time_unix_nano, tree.end_time_unix_nano, tree.duration_nanos), (100, 310, 210));
        assert_eq!(tree.services, vec!["web", "api", "db"]);
        assert_eq!(tree.roots.len(), 1);
        let root = &tree.roots[0];
        assert_eq!(shape(root), (1, vec![(2, vec![]), (3, vec![])]));
        assert_eq!(root.children[0].children[0].span_id, SpanId([4; 8]));
        assert_eq!(root.kind_name, "SERVER");
        assert_eq!(root.status.code_name, "ERROR");
        assert_eq!(root.service_name, "web");
    }

    #[test]
    fn orphans_and_cycles_become_roots_and_no_span_is_lost() {
        let spans = vec![
            stored_span(1, None, 100, "web"),
            // Parent 9 never arrived.
            stored_span(2, Some(9), 50, "api"),
            stored_span(3, Some(2), 60, "api"),
            // 4 and 5 name each other as parent; 6 names itself.
            stored_span(4, Some(5), 400, "bad"),
            stored_span(5, Some(4), 500, "bad"),
            stored_span(6, Some(6), 600, "bad"),
        ];
        let tree = build_trace_tree(TRACE, spans);
        let root_ids: Vec<u8> = tree.roots.iter().map(|root| root.span_id.0[0]).collect();
        assert_eq!(root_ids, vec![2, 1, 4, 6]);
        assert_eq!(shape(&tree.roots[0]), (2, vec![(3, vec![])]));
        assert_eq!(shape(&tree.roots[2]), (4, vec![(5, vec![])]));
        // The orphan keeps the parent id it was sent with.
        assert_eq!(tree.roots[0].parent_span_id, Some(SpanId([9; 8])));
        assert_eq!(count_nodes(&tree.roots), 6);
    }

    #[test]
    fn duplicate_span_ids_keep_both_copies() {
        let spans = vec![
            stored_span(1, None, 100, "web"),
            stored_span(2, Some(1), 200, "web"),
            stored_span(2, Some(1), 200, "web"),
            stored_span(3, Some(2), 300, "web"),
        ];
        let tree = build_trace_tree(TRACE, spans);
        assert_eq!(count_nodes(&tree.roots), 4);
        assert_eq!(tree.roots[0].children.len(), 2);
        assert_eq!(tree.roots[0].children[0].children.len(), 1);
    }

    #[test]
    fn a_very_deep_chain_is_cut_into_roots_and_serializes() {
        const STACK_BYTES: usize = 1 << 20;
        let span_count = 5_000u32;
        let spans: Vec<StoredSpan> = (0..span_count)
            .map(|index| {
                let mut stored = stored_span(1, None, u64::from(index), "deep");
                let id = (u64::from(index) + 1).to_be_bytes();
                stored.span.span_id = SpanId(id);
                stored.span.parent_span_id = (index > 0).then(|| SpanId(u64::from(index).to_be_bytes()));
                stored
            })
            .collect();
        // Half the 2 MiB stack of a tokio worker thread: building, serializing and dropping the
        // deepest allowed tree must fit with room to spare, even unoptimized.
        let small_stack = std::thread::Builder::new().stack_size(STACK_BYTES);
        let worker = small_stack
            .spawn(move || {
                let tree = build_trace_tree(TRACE, spans);
                assert_eq!(count_nodes(&tree.roots), span_count as usize);
                assert_eq!(tree.roots.len(), (span_count as usize).div_ceil(MAX_TREE_DEPTH + 1));
                serde_json::to_string(&tree).expect("serializable").len()
            })
            .expect("thread starts");
        assert!(worker.join().expect("no stack overflow") > 1000);
    }

    #[test]
    fn span_node_json_has_the_documented_fields() {
        let tree = build_trace_tree(TRACE, vec![stored_span(1, None, 100, "web")]);
        let json = serde_json::to_value(&tree).expect("serializable");
        let root = &json["roots"][0];
        assert_eq!(root["trace_id"], "07070707070707070707070707070707");
        assert_eq!(root["span_id"], "0101010101010101");
        assert_eq!(root["parent_span_id"], serde_json::Value::Null);
        assert_eq!(root["kind"], 2);
        assert_eq!(root["start_time_unix_nano"], 100);
        assert_eq!(root["duration_nanos"], 10);
        assert_eq!(root["status"], serde_json::json!({"code": 2, "code_name": "ERROR", "message": "boom"}));
        assert_eq!(root["resource"]["attributes"]["service.name"], "web");
        assert_eq!(root["scope"]["name"], "");
        assert_eq!(root["children"], serde_json::json!([]));
    }

    #[test]
    fn kind_and_status_names() {
        assert_eq!(span_kind_name(kind::CONSUMER), "CONSUMER");
        assert_eq!(span_kind_name(42), "UNSPECIFIED");
        assert_eq!(status_code_name(status_code::OK), "OK");
        assert_eq!(status_code_name(status_code::UNSET), "UNSET");
    }

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn search_parameters_map_to_the_store_query() {
        let search = parse_trace_search(&params(&[
            ("service", "checkout"),
            ("status", "error"),
            ("min_duration_ms", "1.5"),
            ("from", "1700000000"),
            ("attr.http.route", "/cart"),
            ("attr.deployment.environment.name", "prod"),
        ]))
        .expect("valid search");
        assert_eq!(search.status, StatusFilter::Error);
        assert!(search.query.errors_only);
        assert_eq!(search.query.service.as_deref(), Some("checkout"));
        assert_eq!(search.query.min_duration_nanos, Some(1_500_000));
        assert_eq!(search.query.from_unix_nano, Some(1_700_000_000_000_000_000));
        assert_eq!(search.query.limit, DEFAULT_TRACE_LIMIT);
        assert_eq!(
            search.query.attributes,
            vec![
                ("deployment.environment.name".to_owned(), "prod".to_owned()),
                ("http.route".to_owned(), "/cart".to_owned())
            ]
        );
        for bad in [
            [("status", "failed")],
            [("limit", "1001")],
            [("min_duration_ms", "-1")],
            [("attr.", "x")],
            [("services", "x")],
        ] {
            assert!(parse_trace_search(&params(&bad)).is_err(), "{bad:?} must be refused");
        }
    }
}
