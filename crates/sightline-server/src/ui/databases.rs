//! Databases: `GET /p/{project}/databases?sort=p95|total|count&timeRange=&service=&system=` lists
//! the normalized queries (one row per service, system, namespace and query) sorted like the
//! REST API, and below them the slow queries (p95 or max over the deployment's threshold) with
//! their slowest calls linking to the traces. The body is that of
//! `GET /api/v1/projects/{p}/databases/queries` (`crate::api::databases::queries_response`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use maud::html;
use serde_json::Value;

use super::UiError;
use super::format::{millis, time, url_encode, url_with};
use super::layout::{Section, page};
use super::performance::{number, range_select, service_url, subnav, value};
use super::session::viewer;
use crate::api::databases::{parse_queries_params, queries_response};
use crate::server::AppState;
use crate::ui::{here, path_or_404};

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/p/{project}/databases", get(databases_page))
}

/// `sort=` choices: (value, column heading).
const SORTS: [(&str, &str); 3] = [("p95", "p95"), ("total", "Total time"), ("count", "Calls")];

async fn databases_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let slug = path_or_404(path)?;
    let project = viewer.project(&slug)?.clone();
    let parsed = parse_queries_params(&params, crate::clock::now_unix_nano())?;
    let worker_state = state.clone();
    let (project_id, project_slug) = (project.id, project.slug.clone());
    let body =
        crate::api::blocking(move || queries_response(&worker_state, project_id, &project_slug, &parsed)).await?;
    let empty = Vec::new();
    let queries = body["queries"].as_array().unwrap_or(&empty);
    let slow: Vec<&Value> = queries.iter().filter(|query| query["slow"] == true).collect();
    let sort = body["sort"].as_str().unwrap_or("p95");
    let base = format!("/p/{}/databases", url_encode(&project.slug));
    let traces_base = format!("/p/{}/traces", url_encode(&project.slug));
    let keep = [
        ("timeRange", value(&params, "timeRange")),
        ("service", value(&params, "service")),
        ("system", value(&params, "system")),
        ("limit", value(&params, "limit")),
    ];
    let markup = html! {
        (subnav(&project, "databases"))
        form.filters method="get" action=(base) aria-label="Filters" {
            (range_select(value(&params, "timeRange"), "24h"))
            label { "Service " input type="text" name="service" value=(value(&params, "service")); }
            label { "Database system " input type="text" name="system" placeholder="postgresql" value=(value(&params, "system")); }
            label { "Sort by " select name="sort" {
                @for (option, label) in SORTS { option value=(option) selected[sort == option] { (label) } }
            } }
            button type="submit" { "Apply" }
            a href=(base) { "Clear" }
        }
        p.hint { "Queries are normalized: literals become " code { "?" } ". Slow means p95 or max above "
            (millis(number(&body, "slow_query_threshold_ms"))) "." }
        @if queries.is_empty() { p.empty { "No database calls in this time range." } } @else {
            table.queries {
                caption.visually-hidden { "Normalized queries; select a column heading to sort by it" }
                thead { tr {
                    th scope="col" { "Query" } th scope="col" { "Service" } th scope="col" { "System" }
                    @for (key, heading) in SORTS {
                        @let link = [keep[0], keep[1], keep[2], keep[3], ("sort", key)];
                        th scope="col" aria-sort=[(sort == key).then_some("descending")] {
                            a href=(url_with(&base, &link)) { (heading) @if sort == key { " ▼" } }
                        }
                    }
                    th scope="col" { "Errors" } th scope="col" { "Avg" } th scope="col" { "p50" } th scope="col" { "p99" } th scope="col" { "Max" }
                } }
                tbody { @for query in queries {
                    @let service = query["service"].as_str().unwrap_or("");
                    tr.slow[query["slow"] == true] {
                        td { code.query { (query["query"].as_str().unwrap_or("")) } @if query["slow"] == true { " " span.badge.status-degraded { "slow" } } }
                        td { a href=(service_url(&project, service)) { (service) } }
                        td { (query["system"].as_str().unwrap_or("")) @let namespace = query["namespace"].as_str().unwrap_or(""); @if !namespace.is_empty() { " / " (namespace) } }
                        td.num { (millis(number(query, "p95_ms"))) }
                        td.num { (millis(number(query, "total_ms"))) }
                        td.num { (query["count"].as_u64().unwrap_or(0)) }
                        td.num { (query["errors"].as_u64().unwrap_or(0)) }
                        td.num { (millis(number(query, "avg_ms"))) }
                        td.num { (millis(number(query, "p50_ms"))) }
                        td.num { (millis(number(query, "p99_ms"))) }
                        td.num { (millis(number(query, "max_ms"))) }
                    }
                } }
            }
        }
        h2 id="slow-queries" { "Slow queries" }
        @if slow.is_empty() { p.empty { "No query is over the threshold." } } @else {
            ul.slow-queries { @for query in &slow {
                li.card {
                    p { code.query { (query["query"].as_str().unwrap_or("")) } }
                    p.hint { (query["service"].as_str().unwrap_or("")) " · p95 " (millis(number(query, "p95_ms"))) " · max " (millis(number(query, "max_ms"))) }
                    table {
                        caption { "Slowest calls" }
                        thead { tr { th scope="col" { "Trace" } th scope="col" { "Duration" } th scope="col" { "Started" } } }
                        tbody { @for call in query["slow_traces"].as_array().unwrap_or(&empty) {
                            @let trace_id = call["trace_id"].as_str().unwrap_or("");
                            @let span_id = call["span_id"].as_str().unwrap_or("");
                            tr {
                                td { a href=(format!("{traces_base}/{trace_id}#span-{span_id}")) { code { (trace_id) } } }
                                td.num { (millis(number(call, "duration_ms"))) }
                                td { (time(call["start_unix_nano"].as_u64().unwrap_or(0))) }
                            }
                        } }
                    }
                }
            } }
        }
    };
    Ok(page(&viewer, Section::Performance, Some(&project), "Databases", markup))
}
