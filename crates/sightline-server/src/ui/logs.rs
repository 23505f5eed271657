//! Logs: the search page (`GET /p/{project}/logs` with the REST API's `q, severity_min, service,
//! trace_id, from, to, cursor` plus `range=`), newest first with paging, each record linking to
//! its trace's waterfall (and span) with its attributes in a `<details>`; and the page's live
//! tail (`GET /p/{project}/logs/tail`), the API's Server-Sent Events stream
//! (`api/logs_tail.rs`) under the session, which `static/app.js` prepends to the table.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};

use super::UiError;
use super::format::{attribute_value, time, url_encode, url_with};
use super::layout::{Section, page};
use super::session::viewer;
use crate::api::logs::parse_log_query;
use crate::api::logs_tail::{refused_response, tail_response};
use crate::server::AppState;
use crate::store::StoredLog;
use crate::ui::{here, path_or_404};

/// `range=` choices: (value, label, seconds).
const RANGES: [(&str, &str, u64); 5] = [
    ("15m", "Last 15 minutes", 900),
    ("1h", "Last hour", 3600),
    ("24h", "Last 24 hours", 86_400),
    ("7d", "Last 7 days", 7 * 86_400),
    ("30d", "Last 30 days", 30 * 86_400),
];
/// `severity_min=` choices of the form: (value, label). The API takes any 1..=24 too.
const SEVERITIES: [(&str, &str); 7] = [
    ("", "Any"),
    ("trace", "TRACE and above"),
    ("debug", "DEBUG and above"),
    ("info", "INFO and above"),
    ("warn", "WARN and above"),
    ("error", "ERROR and above"),
    ("fatal", "FATAL"),
];
/// Records per page.
const PAGE_LOGS: &str = "50";
/// Filters the live tail applies (time and paging do not apply to what arrives next).
const TAIL_FILTERS: [&str; 4] = ["q", "severity_min", "service", "trace_id"];

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/p/{project}/logs", get(log_search)).route("/p/{project}/logs/tail", get(log_tail))
}

/// The OTLP severity name of a `SeverityNumber` (logs data model: 1–4 TRACE, 5–8 DEBUG, 9–12
/// INFO, 13–16 WARN, 17–20 ERROR, 21–24 FATAL), for records that sent no severity text.
fn severity_name(number: i32) -> &'static str {
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "UNSET",
    }
}

/// The stylesheet class of a severity (`sev-error`, ...), the same as the script gives.
fn severity_class(number: i32) -> String {
    format!("sev-{}", severity_name(number).to_ascii_lowercase())
}

/// The API's parameters for the page's query string: `range` becomes `from`, the page size is
/// the page's unless `limit` says otherwise. 400 for an unknown range.
fn api_params(params: &HashMap<String, String>, now_unix_nano: u64) -> Result<HashMap<String, String>, UiError> {
    let mut api_params = params.clone();
    if let Some(range) = api_params.remove("range").filter(|range| !range.is_empty()) {
        let (_, _, seconds) = RANGES
            .iter()
            .find(|(value, _, _)| *value == range)
            .ok_or_else(|| UiError::BadRequest(format!("range={range:?}: use 15m, 1h, 24h, 7d or 30d")))?;
        api_params.insert("from".into(), now_unix_nano.saturating_sub(seconds * 1_000_000_000).to_string());
    }
    api_params.entry("limit".into()).or_insert_with(|| PAGE_LOGS.into());
    Ok(api_params)
}

async fn log_search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let slug = path_or_404(path)?;
    let project = viewer.project(&slug)?.clone();
    let query = parse_log_query(&api_params(&params, crate::clock::now_unix_nano())?)?;
    let store = state.store.clone();
    let project_id = project.id;
    let found = crate::api::blocking(move || Ok(store.search_logs(project_id, &query)?)).await?;
    let value = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    let range = value("range");
    let base = format!("/p/{}/logs", url_encode(&project.slug));
    let traces_base = format!("/p/{}/traces", url_encode(&project.slug));
    let tail_filters: Vec<(&str, &str)> = TAIL_FILTERS.iter().map(|name| (*name, value(name))).collect();
    let first_page = value("cursor").is_empty();
    let body = html! {
        form.filters method="get" action=(base) role="search" aria-label="Search logs" {
            label { "Text in the message " input type="search" name="q" value=(value("q")); }
            label { "Severity " select name="severity_min" {
                @for (option, label) in SEVERITIES { option value=(option) selected[value("severity_min") == option] { (label) } }
            } }
            label { "Service " input type="text" name="service" value=(value("service")); }
            @if !value("trace_id").is_empty() {
                label { "Trace id " input type="text" name="trace_id" value=(value("trace_id")) size="34"; }
            }
            label { "Time " select name="range" {
                option value="" selected[range.is_empty()] { "Any time" }
                @for (option, label, _) in RANGES { option value=(option) selected[range == option] { (label) } }
            } }
            button type="submit" { "Search" }
            a href=(base) { "Clear" }
        }
        @if first_page {
            // Shown by the script (an EventSource); without it the page is a plain search.
            section.live-tail hidden aria-label="Live tail" data-tail-url=(url_with(&format!("{base}/tail"), &tail_filters)) data-traces-base=(traces_base) {
                button type="button" data-tail-toggle { "Pause live tail" }
                p.tail-status role="status" aria-live="polite" { "Live tail: connecting…" }
            }
        }
        p.empty hidden[!found.items.is_empty()] data-logs-empty { "No logs match." }
        table.logs hidden[found.items.is_empty()] {
            caption.visually-hidden { "Log records, newest first" }
            thead { tr { th scope="col" { "Time" } th scope="col" { "Severity" } th scope="col" { "Service" } th scope="col" { "Message" } th scope="col" { "Trace" } } }
            tbody id="log-rows" {
                @for log in &found.items { (log_row(&traces_base, log)) }
            }
        }
        @if let Some(cursor) = &found.next_cursor {
            @let next: Vec<(&str, &str)> = params.iter().filter(|(key, _)| key.as_str() != "cursor").map(|(key, value)| (key.as_str(), value.as_str()))
                .chain(std::iter::once(("cursor", cursor.as_str()))).collect();
            p { a rel="next" href=(url_with(&base, &next)) { "Older logs" } }
        }
        @if !first_page { p { a href=(url_with(&base, &params.iter().filter(|(key, _)| key.as_str() != "cursor").map(|(key, value)| (key.as_str(), value.as_str())).collect::<Vec<_>>())) { "Newest logs" } } }
    };
    Ok(page(&viewer, Section::Logs, Some(&project), "Logs", body))
}

/// One record as a table row; `static/app.js` builds the same for records that arrive live.
fn log_row(traces_base: &str, log: &StoredLog) -> Markup {
    let record = &log.record;
    let severity = if record.severity_text.is_empty() {
        severity_name(record.severity_number)
    } else {
        record.severity_text.as_str()
    };
    let message = attribute_value(&record.body);
    html! {
        tr.log {
            td { (time(record.effective_time_unix_nano())) }
            td { span.severity.(severity_class(record.severity_number)) { (severity) } }
            td { (log.resource.service_name()) }
            td.message {
                @if record.attributes.is_empty() { span.body { (message) } } @else {
                    details.log-attributes {
                        summary { span.body { (message) } }
                        table.attributes {
                            caption { "Attributes" }
                            tbody { @for (key, value) in &record.attributes.0 { tr { th scope="row" { (key) } td { (attribute_value(value)) } } } }
                        }
                    }
                }
            }
            td {
                @if let Some(trace_id) = record.trace_id {
                    @let anchor = record.span_id.map(|span_id| format!("#span-{span_id}")).unwrap_or_default();
                    a.trace-link href=(format!("{traces_base}/{trace_id}{anchor}")) aria-label=(format!("Trace {trace_id}")) { code { (trace_id.to_string().get(..8).unwrap_or_default()) "…" } }
                }
            }
        }
    }
}

/// `GET /p/{project}/logs/tail?q=&severity_min=&service=&trace_id=`: the live tail as
/// Server-Sent Events (`api/logs_tail.rs`). 401 without a session (an event stream cannot
/// follow a redirect to the sign-in form), 404 for another project, 400 for bad filters, 503
/// with `Retry-After` at the connection limit.
async fn log_tail(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, None).await?;
    let slug = path_or_404(path)?;
    let project = viewer.project(&slug)?;
    let filter = parse_log_query(&params)?;
    Ok(match state.log_tail.subscribe(project.id) {
        Ok(subscription) => tail_response(subscription, filter),
        Err(refused) => refused_response(refused),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::{LogRecord, Resource, Scope, SpanId, TraceId};

    #[test]
    fn severity_names_follow_the_logs_data_model() {
        assert_eq!(severity_name(9), "INFO");
        assert_eq!(severity_name(16), "WARN");
        assert_eq!(severity_name(17), "ERROR");
        assert_eq!(severity_name(0), "UNSET");
        assert_eq!(severity_class(21), "sev-fatal");
    }

    #[test]
    fn a_row_links_to_its_span_and_shows_attributes() {
        let mut record = LogRecord {
            severity_number: 17,
            body: serde_json::json!("card declined"),
            trace_id: Some(TraceId([0xab; 16])),
            span_id: Some(SpanId([0xcd; 8])),
            ..crate::live_tail::blank_log_record()
        };
        record.attributes.0.insert("payment.provider".into(), serde_json::json!("acme"));
        let row =
            log_row("/p/shop/traces", &StoredLog { record, resource: Resource::default(), scope: Scope::default() })
                .into_string();
        assert!(row.contains(&format!("/p/shop/traces/{}#span-{}", "ab".repeat(16), "cd".repeat(8))), "{row}");
        assert!(row.contains("payment.provider") && row.contains("acme"), "{row}");
        assert!(row.contains("sev-error") && row.contains("ERROR"), "{row}");
    }

    #[test]
    fn ranges_become_from_and_unknown_ones_are_refused() {
        let params: HashMap<String, String> = [("range".to_owned(), "1h".to_owned())].into();
        let api = api_params(&params, 7_200_000_000_000).expect("a known range");
        assert_eq!(api.get("from").map(String::as_str), Some("3600000000000"));
        assert_eq!(api.get("limit").map(String::as_str), Some(PAGE_LOGS));
        let bad: HashMap<String, String> = [("range".to_owned(), "2y".to_owned())].into();
        assert!(matches!(api_params(&bad, 0), Err(UiError::BadRequest(_))));
    }
}
