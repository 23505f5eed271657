//! One endpoint of a service: `GET /p/{project}/services/{service}/endpoints/{operation}?
//! timeRange=&environment=&limit=` with the operation as one URL-encoded path segment
//! (`GET%20%2Fusers%2F%7Bid%7D`). Shows its figures, latency and throughput over time, the
//! latency histogram, the status-code distribution and its slowest requests linking to their
//! traces, all from the body of `GET /api/v1/projects/{p}/services/{s}/endpoints/{operation}`
//! (`crate::api::performance::endpoint_response`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use maud::html;

use super::UiError;
use super::charts::shares;
use super::charts_series::{Bin, histogram};
use super::format::{millis, time, url_encode, url_with};
use super::layout::{Section, page};
use super::performance::{number, service_charts, service_url, subnav, summary_figures, value};
use super::session::viewer;
use crate::api::performance::{endpoint_response, parse_endpoint_params};
use crate::server::AppState;
use crate::ui::here;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/p/{project}/services/{service}/endpoints/{operation}", get(endpoint_page))
}

async fn endpoint_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String, String)>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let (slug, service, operation) =
        path.map(|Path(value)| value).map_err(|rejection| UiError::NotFound(rejection.body_text()))?;
    let project = viewer.project(&slug)?.clone();
    let endpoint_params = parse_endpoint_params(&params, crate::clock::now_unix_nano())?;
    let range = endpoint_params.range.clone();
    let worker_state = state.clone();
    let (project_id, project_slug) = (project.id, project.slug.clone());
    let (worker_service, worker_operation) = (service.clone(), operation.clone());
    let body = crate::api::blocking(move || {
        endpoint_response(
            &worker_state,
            project_id,
            &project_slug,
            &worker_service,
            &worker_operation,
            &endpoint_params,
        )
    })
    .await?;
    let stats = &body["stats"];
    let empty = Vec::new();
    let bins: Vec<Bin> = body["histogram"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|bin| Bin {
            lower: number(bin, "lower_ms").unwrap_or(0.0),
            upper: number(bin, "upper_ms").unwrap_or(0.0),
            count: bin["count"].as_u64().unwrap_or(0),
        })
        .collect();
    let status_codes: Vec<(String, u64)> = body["status_codes"]
        .as_object()
        .map(|codes| {
            let mut codes: Vec<(String, u64)> =
                codes.iter().map(|(code, count)| (code.clone(), count.as_u64().unwrap_or(0))).collect();
            codes.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
            codes
        })
        .unwrap_or_default();
    let slowest = body["slowest_traces"].as_array().unwrap_or(&empty);
    let traces_base = format!("/p/{}/traces", url_encode(&project.slug));
    let back = url_with(
        &service_url(&project, &service),
        &[("timeRange", value(&params, "timeRange")), ("environment", value(&params, "environment"))],
    );
    let markup = html! {
        (subnav(&project, "services"))
        p { "Service " a href=(back) { (service) } }
        form.filters method="get" aria-label="Filters" {
            (super::performance::range_select(value(&params, "timeRange"), "24h"))
            label { "Environment " input type="text" name="environment" value=(value(&params, "environment")); }
            button type="submit" { "Apply" }
        }
        (summary_figures(stats))
        dl.figures {
            div { dt { "Min" } dd { (millis(number(stats, "min_ms"))) } }
            div { dt { "Average" } dd { (millis(number(stats, "avg_ms"))) } }
            div { dt { "p90" } dd { (millis(number(stats, "p90_ms"))) } }
            div { dt { "Max" } dd { (millis(number(stats, "max_ms"))) } }
        }
        (service_charts(&body, &range))
        div.chart-grid {
            section aria-labelledby="histogram" {
                h2 id="histogram" { "Latency distribution" }
                (histogram("Requests by duration", |ms| millis(Some(ms)), &bins))
            }
            section aria-labelledby="status-codes" {
                h2 id="status-codes" { "Status codes" }
                @if status_codes.is_empty() { p.empty { "No HTTP status codes recorded." } }
                @else { (shares("HTTP status codes", &status_codes)) }
            }
        }
        h2 { "Slowest requests" }
        @if slowest.is_empty() { p.empty { "No requests in this time range." } } @else {
            table.slowest {
                caption.visually-hidden { "Slowest requests, slowest first" }
                thead { tr { th scope="col" { "Trace" } th scope="col" { "Duration" } th scope="col" { "Started" } } }
                tbody { @for slow in slowest {
                    @let trace_id = slow["trace_id"].as_str().unwrap_or("");
                    @let span_id = slow["span_id"].as_str().unwrap_or("");
                    tr {
                        td { a href=(format!("{traces_base}/{trace_id}#span-{span_id}")) { code { (trace_id) } } }
                        td.num { (millis(number(slow, "duration_ms"))) }
                        td { (time(slow["start_unix_nano"].as_u64().unwrap_or(0))) }
                    }
                } }
            }
        }
    };
    Ok(page(&viewer, Section::Performance, Some(&project), &operation, markup))
}
