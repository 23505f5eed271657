//! Performance: the services list (`GET /p/{project}/services?timeRange=&environment=`: per
//! service rpm, error %, p95 over the range and the health API's judgement of the last 5 / 60
//! minutes) and one service's page (`GET /p/{project}/services/{service}?timeRange=&environment=
//! &sort=`: summary figures, latency p50/p95/p99 and throughput charts, the endpoint table
//! sortable by `sort=`, and the service's callers and callees). Data comes from the REST API's
//! body builders (`crate::api::performance`, `health`, `service_map`), so every figure matches
//! `GET /api/v1/projects/{p}/services/{s}/performance` with the same parameters.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;

use super::UiError;
use super::charts_series::{Line, lines};
use super::format::{millis, time, url_encode, url_with};
use super::layout::{Section, page};
use super::session::viewer;
use crate::api::performance::{RangeParams, parse_performance_params, performance_response, services_summary};
use crate::server::AppState;
use crate::store::Project;
use crate::ui::{here, path_or_404};

/// `timeRange=` choices offered by the forms: (value, label). The API takes any `30m`, `24h`,
/// `7d` … up to 90d, and so do the pages.
pub(super) const TIME_RANGES: [(&str, &str); 3] =
    [("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days")];
/// The API's default range.
const DEFAULT_RANGE: &str = "24h";

/// Routes of this module and of the other performance pages.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/p/{project}/services", get(services_page))
        .route("/p/{project}/services/{service}", get(service_page))
        .merge(super::endpoint::routes())
        .merge(super::databases::routes())
        .merge(super::service_map::routes())
        .merge(super::system::routes())
}

/// A path segment encoded so that `/`, spaces and braces survive (`GET /users/{id}` →
/// `GET%20%2Fusers%2F%7Bid%7D`); axum decodes it back in `Path`.
pub(super) fn segment(text: &str) -> String {
    url_encode(text).replace('/', "%2F")
}

/// `/p/{project}/services/{service}`.
pub(super) fn service_url(project: &Project, service: &str) -> String {
    format!("/p/{}/services/{}", url_encode(&project.slug), segment(service))
}

/// The query value `name`, or "".
pub(super) fn value<'a>(params: &'a HashMap<String, String>, name: &str) -> &'a str {
    params.get(name).map(String::as_str).unwrap_or("")
}

/// Sub-navigation of the performance section, `current` marked.
pub(super) fn subnav(project: &Project, current: &str) -> Markup {
    let slug = url_encode(&project.slug);
    let links = [
        ("services", "Services", format!("/p/{slug}/services")),
        ("map", "Service map", format!("/p/{slug}/service-map")),
        ("databases", "Databases", format!("/p/{slug}/databases")),
    ];
    html! {
        nav.subnav aria-label="Performance" {
            ul { @for (key, label, href) in &links {
                li { a href=(href) aria-current=[(*key == current).then_some("page")] { (label) } }
            } }
        }
    }
}

/// The `timeRange` select; `chosen` is the current value ("" = the default).
pub(super) fn range_select(chosen: &str, default: &str) -> Markup {
    let chosen = if chosen.is_empty() { default } else { chosen };
    let listed = TIME_RANGES.iter().any(|(option, _)| *option == chosen);
    html! {
        label { "Time range " select name="timeRange" {
            @for (option, label) in TIME_RANGES { option value=(option) selected[chosen == option] { (label) } }
            @if !listed { option value=(chosen) selected { (chosen) } }
        } }
    }
}

/// An `f64` field of a JSON body.
pub(super) fn number(body: &Value, field: &str) -> Option<f64> {
    body.get(field).and_then(Value::as_f64)
}

/// A rate per minute, `12.5`.
pub(super) fn rate(value: Option<f64>) -> String {
    match value {
        Some(value) if value >= 100.0 => format!("{value:.0}"),
        Some(value) if value >= 1.0 => format!("{value:.1}"),
        Some(value) => format!("{value:.2}"),
        None => "—".into(),
    }
}

/// A percentage, `2.5 %`.
pub(super) fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |value| format!("{value:.1} %"))
}

/// The health status badge (`healthy`, `degraded`, `failing`, `no_traffic`).
pub(super) fn status_badge(status: &str) -> Markup {
    let label = if status == "no_traffic" { "no traffic" } else { status };
    html! { span class=(format!("badge status-{status}")) { (label) } }
}

/// The API parameters of a page: the query without the page's own keys.
fn api_params(params: &HashMap<String, String>, own: &[&str]) -> HashMap<String, String> {
    params.iter().filter(|(key, _)| !own.contains(&key.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

async fn services_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let slug = path_or_404(path)?;
    let project = viewer.project(&slug)?.clone();
    let now = crate::clock::now_unix_nano();
    let range = parse_performance_params(&params, now)?;
    let worker_state = state.clone();
    let worker_project = project.clone();
    let (services, summaries, environments, health) = crate::api::blocking(move || {
        let services = worker_state.store.list_services(worker_project.id)?;
        let (summaries, environments) = services_summary(&worker_state, worker_project.id, &range)?;
        let health = crate::api::health::project_health_response(
            &worker_state,
            &worker_project,
            range.environment.clone(),
            now,
        )?;
        Ok((services, summaries, environments, health))
    })
    .await?;
    let summary_of = |service: &str| summaries.iter().find(|summary| summary["service"] == service);
    let health_of = |service: &str| {
        health["services"].as_array().and_then(|all| all.iter().find(|entry| entry["service"] == service))
    };
    let base = format!("/p/{}/services", url_encode(&project.slug));
    let body = html! {
        (subnav(&project, "services"))
        (filters(&base, &params, &environments, None))
        @if services.is_empty() { p.empty { "No service has sent anything to this project yet." } } @else {
            table.services {
                caption.visually-hidden { "Services by name, with their figures over the time range" }
                thead { tr {
                    th scope="col" { "Service" } th scope="col" { "Health (last 5 / 60 min)" }
                    th scope="col" { "Requests / min" } th scope="col" { "Error %" } th scope="col" { "p95" }
                    th scope="col" { "Last seen" } th scope="col" { "More" }
                } }
                tbody {
                    @for service in &services {
                        @let name = service.service_name.as_str();
                        @let summary = summary_of(name);
                        @let url = service_url(&project, name);
                        tr {
                            td { a href=(url_with(&url, &[("timeRange", value(&params, "timeRange")), ("environment", value(&params, "environment"))])) { (name) } }
                            td { (status_badge(health_of(name).and_then(|entry| entry["status"].as_str()).unwrap_or("no_traffic"))) }
                            td.num { (rate(summary.and_then(|summary| number(summary, "rpm")))) }
                            td.num { (percent(summary.and_then(|summary| number(summary, "error_rate")).map(|rate| rate * 100.0))) }
                            td.num { (millis(summary.and_then(|summary| number(summary, "p95_ms")))) }
                            td { (time(service.last_seen_unix_nano)) }
                            td { a href=(format!("{url}/system")) { "System" } " · "
                                a href=(url_with(&format!("/p/{}/traces", url_encode(&project.slug)), &[("service", name)])) { "Traces" } }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&viewer, Section::Performance, Some(&project), "Services", body))
}

/// The filter form shared by the list and the service page (`keep` = the `sort` to keep).
fn filters(action: &str, params: &HashMap<String, String>, environments: &[String], keep: Option<&str>) -> Markup {
    let environment = value(params, "environment");
    html! {
        form.filters method="get" action=(action) aria-label="Filters" {
            (range_select(value(params, "timeRange"), DEFAULT_RANGE))
            label { "Environment " select name="environment" {
                option value="" selected[environment.is_empty()] { "All" }
                @for candidate in environments.iter().filter(|candidate| !candidate.is_empty()) {
                    option value=(candidate) selected[environment == candidate.as_str()] { (candidate) }
                }
                @if !environment.is_empty() && !environments.iter().any(|candidate| candidate == environment) {
                    option value=(environment) selected { (environment) }
                }
            } }
            @if let Some(sort) = keep.filter(|sort| !sort.is_empty()) { input type="hidden" name="sort" value=(sort); }
            button type="submit" { "Apply" }
        }
    }
}

/// `sort=` keys of the endpoint table: (key, column heading, JSON field). Numbers sort largest
/// first, the operation A to Z.
const SORTS: [(&str, &str, &str); 6] = [
    ("operation", "Operation", "operation"),
    ("rpm", "Requests / min", "rpm"),
    ("errors", "Error %", "error_percent"),
    ("p50", "p50", "p50_ms"),
    ("p95", "p95", "p95_ms"),
    ("p99", "p99", "p99_ms"),
];

/// Sorts the endpoint rows by `sort` ("" keeps the API's order, most requests first); 400 for
/// an unknown key.
pub(super) fn sort_endpoints(endpoints: &mut [Value], sort: &str) -> Result<(), UiError> {
    if sort.is_empty() {
        return Ok(());
    }
    let (_, _, field) = SORTS
        .iter()
        .find(|(key, _, _)| *key == sort)
        .ok_or_else(|| UiError::BadRequest(format!("sort={sort:?}: use operation, rpm, errors, p50, p95 or p99")))?;
    if *field == "operation" {
        endpoints.sort_by(|left, right| left[field].as_str().cmp(&right[field].as_str()));
    } else {
        // Largest first; rows without a value last; stable, so ties keep the API's order.
        endpoints.sort_by(|left, right| {
            let key = |row: &Value| row[field].as_f64().unwrap_or(f64::NEG_INFINITY);
            key(right).total_cmp(&key(left))
        });
    }
    Ok(())
}

async fn service_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let (slug, service) =
        path.map(|Path(value)| value).map_err(|rejection| UiError::NotFound(rejection.body_text()))?;
    let project = viewer.project(&slug)?.clone();
    let sort = value(&params, "sort").to_owned();
    let now = crate::clock::now_unix_nano();
    let range = parse_performance_params(&api_params(&params, &["sort"]), now)?;
    sort_endpoints(&mut [], &sort)?;
    let range_nanos = range.to_unix_nano - range.from_unix_nano;
    let worker_state = state.clone();
    let (project_id, worker_service, worker_range) = (project.id, service.clone(), range.clone());
    let (mut body, environments, dependencies) = crate::api::blocking(move || {
        let (body, environments) = performance_response(&worker_state, project_id, &worker_service, &worker_range)?;
        let dependencies = crate::api::service_map::dependencies_response(
            &worker_state,
            project_id,
            &worker_service,
            range_nanos,
            now,
        )?;
        Ok((body, environments, dependencies))
    })
    .await?;
    let mut endpoints = body["endpoints"].as_array_mut().map(std::mem::take).unwrap_or_default();
    sort_endpoints(&mut endpoints, &sort)?;
    let url = service_url(&project, &service);
    let markup = html! {
        (subnav(&project, "services"))
        p { a href=(format!("/p/{}/services", url_encode(&project.slug))) { "All services" } " · "
            a href=(format!("{url}/system")) { "System health" } " · "
            a href=(url_with(&format!("/p/{}/traces", url_encode(&project.slug)), &[("service", &service)])) { "Traces" } }
        (filters(&url, &params, &environments, Some(&sort)))
        (summary_figures(&body["summary"]))
        (service_charts(&body, &range))
        h2 id="endpoints" { "Endpoints" }
        (endpoint_table(&project, &service, &params, &endpoints, &sort))
        h2 { "Dependencies" }
        (dependency_tables(&project, &dependencies))
    };
    Ok(page(&viewer, Section::Performance, Some(&project), &format!("Service {service}"), markup))
}

/// The figures of a `summary` (or endpoint `stats`) object.
pub(super) fn summary_figures(summary: &Value) -> Markup {
    let error_percent =
        number(summary, "error_percent").or_else(|| number(summary, "error_rate").map(|rate| rate * 100.0));
    html! {
        dl.figures {
            div { dt { "Requests" } dd { (summary["requests"].as_u64().unwrap_or(0)) } }
            div { dt { "Requests / min" } dd { (rate(number(summary, "rpm"))) } }
            div { dt { "Errors" } dd { (summary["errors"].as_u64().unwrap_or(0)) " (" (percent(error_percent)) ")" } }
            div { dt { "p50" } dd { (millis(number(summary, "p50_ms"))) } }
            div { dt { "p95" } dd { (millis(number(summary, "p95_ms"))) } }
            div { dt { "p99" } dd { (millis(number(summary, "p99_ms"))) } }
        }
    }
}

/// Latency (p50/p95/p99) and throughput (requests and errors per minute) charts of a body's
/// `series`.
pub(super) fn service_charts(body: &Value, range: &RangeParams) -> Markup {
    let empty = Vec::new();
    let series = body["series"].as_array().unwrap_or(&empty);
    let bucket_minutes = (body["bucket_seconds"].as_f64().unwrap_or(60.0) / 60.0).max(1.0 / 60.0);
    let pick = |field: &str, scale: f64| -> Vec<(u64, Option<f64>)> {
        series
            .iter()
            .map(|bucket| (bucket["start_unix_nano"].as_u64().unwrap_or(0), bucket[field].as_f64().map(|v| v / scale)))
            .collect()
    };
    let latency = [
        Line { name: "p50", class: "series-1", points: pick("p50_ms", 1.0) },
        Line { name: "p95", class: "series-2", points: pick("p95_ms", 1.0) },
        Line { name: "p99", class: "series-3", points: pick("p99_ms", 1.0) },
    ];
    let throughput = [
        Line { name: "requests / min", class: "series-1", points: pick("requests", bucket_minutes) },
        Line { name: "errors / min", class: "series-error", points: pick("errors", bucket_minutes) },
    ];
    html! {
        div.chart-grid {
            section aria-labelledby="latency-chart" {
                h2 id="latency-chart" { "Latency" }
                (lines("Latency p50, p95 and p99", |ms| millis(Some(ms)), range.from_unix_nano, range.to_unix_nano, &latency))
            }
            section aria-labelledby="throughput-chart" {
                h2 id="throughput-chart" { "Throughput" }
                (lines("Requests and errors per minute", |value| rate(Some(value)), range.from_unix_nano, range.to_unix_nano, &throughput))
            }
        }
    }
}

fn endpoint_table(
    project: &Project,
    service: &str,
    params: &HashMap<String, String>,
    endpoints: &[Value],
    sort: &str,
) -> Markup {
    let url = service_url(project, service);
    let keep = [("timeRange", value(params, "timeRange")), ("environment", value(params, "environment"))];
    html! {
        @if endpoints.is_empty() { p.empty { "No requests in this time range." } } @else {
            table.endpoints {
                caption.visually-hidden { "Endpoints; select a column heading to sort by it" }
                thead { tr {
                    @for (key, heading, _) in SORTS {
                        @let sorted = sort == key;
                        @let link = [keep[0], keep[1], ("sort", key)];
                        th scope="col" aria-sort=[sorted.then_some(if key == "operation" { "ascending" } else { "descending" })] {
                            a href=(format!("{}#endpoints", url_with(&url, &link))) { (heading) @if sorted { " ▼" } }
                        }
                    }
                    th scope="col" { "Status classes" }
                } }
                tbody {
                    @for endpoint in endpoints {
                        @let operation = endpoint["operation"].as_str().unwrap_or("");
                        tr {
                            td { a href=(url_with(&format!("{url}/endpoints/{}", segment(operation)), &keep)) { (operation) } }
                            td.num { (rate(number(endpoint, "rpm"))) }
                            td.num { (percent(number(endpoint, "error_percent"))) }
                            td.num { (millis(number(endpoint, "p50_ms"))) }
                            td.num { (millis(number(endpoint, "p95_ms"))) }
                            td.num { (millis(number(endpoint, "p99_ms"))) }
                            td { @if let Some(classes) = endpoint["status_classes"].as_object() {
                                @for (class, count) in classes { span.badge { (class) " " (count) } " " }
                            } }
                        }
                    }
                }
            }
        }
    }
}

/// Callers and callees tables of a dependencies body.
fn dependency_tables(project: &Project, dependencies: &Value) -> Markup {
    let empty = Vec::new();
    let sides = [
        ("Called by", "caller", dependencies["upstream"].as_array().unwrap_or(&empty)),
        ("Calls", "callee", dependencies["downstream"].as_array().unwrap_or(&empty)),
    ];
    html! {
        div.chart-grid {
            @for (caption, field, edges) in sides {
                @if edges.is_empty() { p.empty { (caption) ": none in this time range." } } @else {
                    table.dependencies {
                        caption { (caption) }
                        thead { tr { th scope="col" { "Service" } th scope="col" { "Calls" } th scope="col" { "Error %" } th scope="col" { "p95" } } }
                        tbody { @for edge in edges {
                            @let other = edge[field].as_str().unwrap_or("");
                            tr {
                                td { @if field == "callee" && edge["virtual_callee"] == true { (other) " " span.badge { "not instrumented" } }
                                     @else { a href=(service_url(project, other)) { (other) } } }
                                td.num { (edge["calls"].as_u64().unwrap_or(0)) }
                                td.num { (percent(number(edge, "error_rate").map(|rate| rate * 100.0))) }
                                td.num { (millis(number(edge, "p95_ms"))) }
                            }
                        } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn endpoints_sort_by_the_chosen_column() {
        let mut rows = vec![
            json!({"operation": "GET /b", "rpm": 5.0, "p95_ms": 30.0}),
            json!({"operation": "GET /a", "rpm": 1.0, "p95_ms": null}),
            json!({"operation": "POST /c", "rpm": 9.0, "p95_ms": 80.0}),
        ];
        let order = |rows: &[Value]| -> Vec<String> {
            rows.iter().map(|row| row["operation"].as_str().unwrap_or("").to_owned()).collect()
        };
        sort_endpoints(&mut rows, "p95").expect("known key");
        assert_eq!(order(&rows), ["POST /c", "GET /b", "GET /a"], "largest first, no value last");
        sort_endpoints(&mut rows, "operation").expect("known key");
        assert_eq!(order(&rows), ["GET /a", "GET /b", "POST /c"]);
        assert!(matches!(sort_endpoints(&mut rows, "latency"), Err(UiError::BadRequest(_))));
    }

    #[test]
    fn operations_are_one_path_segment() {
        assert_eq!(segment("GET /users/{id}"), "GET%20%2Fusers%2F%7Bid%7D");
    }
}
