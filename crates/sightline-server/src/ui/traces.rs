//! Traces: the search form over trace summaries (`GET /p/{project}/traces` with the REST API's
//! `service, operation, status=error|ok, min_duration_ms` plus `range=`), and the waterfall of
//! one trace (`GET /p/{project}/traces/{trace_id}`): spans in tree order as HTML bars on the
//! trace's time axis, errors highlighted, the critical path marked, and each span's details
//! (attributes, events, links, its logs, resource) in a keyboard-operable `<details>`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use sightline_model::{Attributes, SpanId, TraceId};

use super::UiError;
use super::format::{attribute_value, duration, time, url_encode, url_with};
use super::layout::{Section, page};
use super::session::viewer;
use crate::api::traces::{SpanNode, StatusFilter, TraceTree, build_trace_tree, parse_trace_search};
use crate::server::AppState;
use crate::store::{LogQuery, Project, StoredLog};
use crate::ui::{here, path_or_404};

/// `range=` choices: (value, label, seconds).
const RANGES: [(&str, &str, u64); 4] = [
    ("1h", "Last hour", 3600),
    ("24h", "Last 24 hours", 86_400),
    ("7d", "Last 7 days", 7 * 86_400),
    ("30d", "Last 30 days", 30 * 86_400),
];
/// Logs read for one trace's waterfall.
const MAX_TRACE_LOGS: usize = 1000;
/// OTLP `STATUS_CODE_ERROR`.
const STATUS_ERROR: i32 = 2;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/p/{project}/traces", get(trace_search))
        .route("/p/{project}/traces/{trace_id}", get(trace_page))
}

async fn trace_search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let slug = path_or_404(path)?;
    let project = viewer.project(&slug)?.clone();
    let mut api_params = params.clone();
    let range = api_params.remove("range").filter(|range| !range.is_empty());
    if let Some(range) = &range {
        let (_, _, seconds) = RANGES
            .iter()
            .find(|(value, _, _)| value == range)
            .ok_or_else(|| UiError::BadRequest(format!("range={range:?}: use 1h, 24h, 7d or 30d")))?;
        api_params
            .insert("from".into(), crate::clock::now_unix_nano().saturating_sub(seconds * 1_000_000_000).to_string());
    }
    let search = parse_trace_search(&api_params)?;
    let store = state.store.clone();
    let project_id = project.id;
    let query = search.query.clone();
    let mut found = crate::api::blocking(move || Ok(store.search_traces(project_id, &query)?)).await?;
    if search.status == StatusFilter::Ok {
        found.items.retain(|summary| !summary.has_error);
    }
    let value = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    let base = format!("/p/{}/traces", url_encode(&project.slug));
    let body = html! {
        form.filters method="get" action=(base) role="search" aria-label="Search traces" {
            label { "Service " input type="text" name="service" value=(value("service")); }
            label { "Root operation " input type="text" name="operation" value=(value("operation")); }
            label { "Status " select name="status" {
                @for (option, label) in [("", "Any"), ("error", "With errors"), ("ok", "Without errors")] {
                    option value=(option) selected[value("status") == option] { (label) }
                }
            } }
            label { "Slower than (ms) " input type="number" min="0" step="any" name="min_duration_ms" value=(value("min_duration_ms")); }
            label { "Started " select name="range" {
                option value="" selected[range.is_none()] { "Any time" }
                @for (option, label, _) in RANGES { option value=(option) selected[range.as_deref() == Some(option)] { (label) } }
            } }
            button type="submit" { "Search" }
            a href=(base) { "Clear" }
        }
        @if found.items.is_empty() { p.empty { "No traces match." } } @else {
            table.traces {
                caption.visually-hidden { "Traces, newest first" }
                thead { tr { th scope="col" { "Trace" } th scope="col" { "Started" } th scope="col" { "Duration" } th scope="col" { "Spans" } th scope="col" { "Errors" } th scope="col" { "Services" } } }
                tbody {
                    @for summary in &found.items {
                        tr.error[summary.has_error] {
                            td { a href=(format!("{base}/{}", summary.trace_id)) {
                                @match (&summary.root_service_name, &summary.root_span_name) {
                                    (Some(service), Some(name)) => { (service) ": " (name) }
                                    _ => { "(root not received) " code { (summary.trace_id.to_string()) } }
                                }
                            } }
                            td { (time(summary.start_time_unix_nano)) }
                            td.num { (duration(summary.duration_nanos)) }
                            td.num { (summary.span_count) }
                            td.num { (summary.error_count) }
                            td { (summary.services.join(", ")) }
                        }
                    }
                }
            }
            @if let Some(cursor) = &found.next_cursor {
                @let next: Vec<(&str, &str)> = params.iter().filter(|(key, _)| key.as_str() != "cursor").map(|(key, value)| (key.as_str(), value.as_str()))
                    .chain(std::iter::once(("cursor", cursor.as_str()))).collect();
                p { a rel="next" href=(url_with(&base, &next)) { "Older traces" } }
            }
        }
    };
    Ok(page(&viewer, Section::Traces, Some(&project), "Traces", body))
}

async fn trace_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let (slug, trace_hex) =
        path.map(|Path(value)| value).map_err(|rejection| UiError::NotFound(rejection.body_text()))?;
    let project = viewer.project(&slug)?.clone();
    let trace_id = TraceId::from_hex(&trace_hex)
        .map_err(|error| UiError::BadRequest(format!("trace id {trace_hex:?}: {error}; use 32 hex characters")))?;
    let store = state.store.clone();
    let project_id = project.id;
    let (tree, logs) = crate::api::blocking(move || {
        let spans = store
            .get_trace(project_id, &trace_id)?
            .ok_or_else(|| crate::api::ApiError::not_found(format!("trace {trace_id} not found")))?;
        let logs = store.search_logs(
            project_id,
            &LogQuery { trace_id: Some(trace_id), limit: MAX_TRACE_LOGS, ..LogQuery::default() },
        )?;
        Ok((build_trace_tree(trace_id, spans), logs.items))
    })
    .await?;
    let title = format!("Trace {}", tree.trace_id);
    Ok(page(&viewer, Section::Traces, Some(&project), &title, waterfall(&project, &tree, &logs)))
}

/// Spans in display order (depth first, children by start time) with their depth.
fn flatten(tree: &TraceTree) -> Vec<(&SpanNode, usize)> {
    let mut rows = Vec::with_capacity(tree.span_count);
    let mut pending: Vec<(&SpanNode, usize)> = tree.roots.iter().rev().map(|root| (root, 0)).collect();
    while let Some((node, depth)) = pending.pop() {
        rows.push((node, depth));
        pending.extend(node.children.iter().rev().map(|child| (child, depth + 1)));
    }
    rows
}

/// The spans on the critical path: from each root, the child that finished last, then the one
/// that finished before that child started, and so on, recursively (the approach of Jaeger's
/// critical path view): the work the trace's duration waited on. Returns span ids.
pub(crate) fn critical_path(tree: &TraceTree) -> HashSet<SpanId> {
    let mut on_path = HashSet::new();
    let Some(first_root) = tree.roots.iter().max_by_key(|root| root.duration_nanos) else {
        return on_path;
    };
    let mut pending: Vec<(&SpanNode, u64)> = vec![(first_root, first_root.end_time_unix_nano)];
    while let Some((node, path_end)) = pending.pop() {
        on_path.insert(node.span_id);
        let mut children: Vec<&SpanNode> = node.children.iter().collect();
        children.sort_by_key(|child| std::cmp::Reverse(child.end_time_unix_nano));
        let mut cursor = path_end.min(node.end_time_unix_nano);
        for child in children {
            // A child that starts after the cursor ran in parallel with one already on the path.
            if child.start_time_unix_nano >= cursor {
                continue;
            }
            pending.push((child, cursor.min(child.end_time_unix_nano)));
            cursor = child.start_time_unix_nano;
        }
    }
    on_path
}

fn attributes_table(caption: &str, attributes: &Attributes) -> Markup {
    html! {
        @if !attributes.is_empty() {
            table.attributes {
                caption { (caption) }
                tbody { @for (key, value) in &attributes.0 { tr { th scope="row" { (key) } td { (attribute_value(value)) } } } }
            }
        }
    }
}

fn waterfall(project: &Project, tree: &TraceTree, logs: &[StoredLog]) -> Markup {
    let rows = flatten(tree);
    let critical = critical_path(tree);
    let total = tree.duration_nanos.max(1) as f64;
    let error_spans = rows.iter().filter(|(node, _)| node.status.code == STATUS_ERROR).count();
    let mut logs_by_span: HashMap<SpanId, Vec<&StoredLog>> = HashMap::new();
    for log in logs {
        if let Some(span_id) = log.record.span_id {
            logs_by_span.entry(span_id).or_default().push(log);
        }
    }
    let base = format!("/p/{}/traces", url_encode(&project.slug));
    html! {
        dl.figures {
            div { dt { "Started" } dd { (time(tree.start_time_unix_nano)) } }
            div { dt { "Duration" } dd { (duration(tree.duration_nanos)) } }
            div { dt { "Spans" } dd { (tree.span_count) } }
            div { dt { "Spans with errors" } dd { (error_spans) } }
            div { dt { "Services" } dd { (tree.services.join(", ")) } }
        }
        p.legend { span.legend-critical { "◆ critical path" } " " span.legend-error { "✖ error" } " — select a span (Enter or Space) to see its details." }
        div.waterfall role="list" aria-label="Spans in tree order" {
            div.axis-labels aria-hidden="true" {
                span { "0" } span { (duration(tree.duration_nanos / 2)) } span { (duration(tree.duration_nanos)) }
            }
            @for (node, depth) in &rows {
                @let is_error = node.status.code == STATUS_ERROR;
                @let on_path = critical.contains(&node.span_id);
                @let left = (node.start_time_unix_nano.saturating_sub(tree.start_time_unix_nano)) as f64 * 100.0 / total;
                @let width = (node.duration_nanos as f64 * 100.0 / total).max(0.3);
                details.span role="listitem" .error[is_error] .critical[on_path] id=(format!("span-{}", node.span_id)) {
                    summary {
                        span.span-name style=(format!("padding-left: {}rem", (*depth).min(40) as f64 * 0.9)) {
                            @if on_path { span.marker title="on the critical path" { "◆ " } }
                            @if is_error { span.marker title="error" { "✖ " } }
                            span.service { (node.service_name) } " " (node.name)
                        }
                        span.track aria-hidden="true" {
                            span.bar style=(format!("left: {left:.3}%; width: {width:.3}%")) {}
                        }
                        span.span-duration { (duration(node.duration_nanos)) }
                    }
                    div.span-details {
                        dl.figures {
                            div { dt { "Span id" } dd { code { (node.span_id.to_string()) } } }
                            div { dt { "Kind" } dd { (node.kind_name) } }
                            div { dt { "Status" } dd { (node.status.code_name) @if !node.status.message.is_empty() { ": " (node.status.message) } } }
                            div { dt { "Start" } dd { "+" (duration(node.start_time_unix_nano.saturating_sub(tree.start_time_unix_nano))) } }
                            div { dt { "Scope" } dd { (node.scope.name) } }
                        }
                        (attributes_table("Attributes", &node.attributes))
                        @if !node.events.is_empty() {
                            h3 { "Events" }
                            ul.events { @for event in &node.events {
                                li.error[event.name == "exception"] {
                                    "+" (duration(event.time_unix_nano.saturating_sub(tree.start_time_unix_nano))) " " strong { (event.name) }
                                    (attributes_table("Event attributes", &event.attributes))
                                }
                            } }
                        }
                        @if !node.links.is_empty() {
                            h3 { "Links" }
                            ul { @for link in &node.links {
                                li { a href=(format!("{base}/{}#span-{}", link.trace_id, link.span_id)) { "trace " code { (link.trace_id.to_string()) } " span " code { (link.span_id.to_string()) } } }
                            } }
                        }
                        @if let Some(span_logs) = logs_by_span.get(&node.span_id) {
                            h3 { "Logs" }
                            ul.logs { @for log in span_logs {
                                li { (time(log.record.effective_time_unix_nano())) " " span.severity { (log.record.severity_text) } " " (attribute_value(&log.record.body)) }
                            } }
                        }
                        details { summary { "Resource" } (attributes_table("Resource attributes", &node.resource.attributes)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredSpan;
    use sightline_model::{Resource, Scope, Span};

    fn stored(id: u8, parent: Option<u8>, start_ms: u64, end_ms: u64) -> StoredSpan {
        let span = Span {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|parent| SpanId([parent; 8])),
            trace_state: String::new(),
            flags: 0,
            name: format!("span {id}"),
            kind: 2,
            start_time_unix_nano: start_ms * 1_000_000,
            end_time_unix_nano: end_ms * 1_000_000,
            attributes: Attributes::default(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status_code: 0,
            status_message: String::new(),
        };
        StoredSpan { span, resource: Resource::default(), scope: Scope::default() }
    }

    #[test]
    fn the_critical_path_follows_what_the_root_waited_for() {
        // root 0..100; a 0..30 and b 10..90 overlap (b finishes last: a ran in parallel until
        // b started, so a is on the path before b); c 40..60 under b, d 65..85 under b.
        let spans = vec![
            stored(1, None, 0, 100),
            stored(2, Some(1), 0, 30),
            stored(3, Some(1), 10, 90),
            stored(4, Some(3), 40, 60),
            stored(5, Some(3), 65, 85),
            stored(6, Some(3), 50, 55),
        ];
        let tree = build_trace_tree(TraceId([7; 16]), spans);
        let path = critical_path(&tree);
        let on = |id: u8| path.contains(&SpanId([id; 8]));
        assert!(on(1) && on(3) && on(5) && on(4) && on(2), "{path:?}");
        assert!(!on(6), "span 6 ran inside span 4's time, in parallel with it");
        let order: Vec<u8> =
            flatten(&tree).iter().map(|(node, _)| node.span_id.to_string().as_bytes()[1] - b'0').collect();
        assert_eq!(order, [1, 2, 3, 4, 6, 5], "depth first, children by start");
    }
}
