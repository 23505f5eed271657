//! Sessions: the session list (`GET /p/{project}/sessions` with the REST API's `user, from, to,
//! has_errors, limit, cursor` plus `range=`), and one session's page
//! (`GET /p/{project}/sessions/{session_id}?limit=&cursor=`): its summary and the merged
//! timeline of frontend product events, backend requests (each linking to its span in the trace
//! waterfall), logs (to their trace) and errors (to their issue), oldest first. The timeline is
//! a list whose entries are reached with Tab (links) or the arrow keys / `j` `k` (the page
//! script), and read by screen readers in time order.
//!
//! Also the `range=` filter the product-analytics pages share ([`take_range`], [`range_field`]).

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
use super::charts_product::percent;
use super::format::{attribute_value, duration, time, url_encode, url_with};
use super::layout::{Section, page};
use super::session::viewer;
use crate::api::sessions::{parse_session_query, parse_timeline_query};
use crate::server::AppState;
use crate::store::Project;
use crate::store::sessions::{SessionDetail, SessionSummary, TimelineEntry};
use crate::ui::{here, path_or_404};

/// `range=` choices: (value, label, seconds). The range sets the API's `from` to that long ago.
pub(super) const RANGES: [(&str, &str, u64); 5] = [
    ("1h", "Last hour", 3600),
    ("24h", "Last 24 hours", 86_400),
    ("7d", "Last 7 days", 7 * 86_400),
    ("30d", "Last 30 days", 30 * 86_400),
    ("90d", "Last 90 days", 90 * 86_400),
];
/// Product-event properties shown inline on a timeline entry at most.
const MAX_INLINE_PROPERTIES: usize = 6;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/p/{project}/sessions", get(session_list))
        .route("/p/{project}/sessions/{session_id}", get(session_page))
}

/// Takes `range=` (one of [`RANGES`]) out of `params` and sets the API's `from` to that long
/// before now; 400 for another value. Returns the range kept.
pub(super) fn take_range(params: &mut HashMap<String, String>) -> Result<Option<&'static str>, UiError> {
    let Some(range) = params.remove("range").filter(|range| !range.is_empty()) else {
        return Ok(None);
    };
    let (value, _, seconds) = RANGES.iter().find(|(value, _, _)| *value == range).ok_or_else(|| {
        UiError::BadRequest(format!("range={range:?}: use {}", RANGES.map(|(value, _, _)| value).join(", ")))
    })?;
    params.insert("from".into(), crate::clock::now_unix_nano().saturating_sub(seconds * 1_000_000_000).to_string());
    Ok(Some(value))
}

/// The `range` select of a filter form; `unset` labels the empty choice (the API's default).
pub(super) fn range_field(label: &str, current: Option<&str>, unset: &str) -> Markup {
    html! {
        label { (label) " " select name="range" {
            option value="" selected[current.is_none()] { (unset) }
            @for (option, text, _) in RANGES { option value=(option) selected[current == Some(option)] { (text) } }
        } }
    }
}

/// The URL of a session's page (the id is one path segment, `/` included).
pub(super) fn session_url(project_slug: &str, session_id: &str) -> String {
    format!("/p/{}/sessions/{}", url_encode(project_slug), url_encode(session_id).replace('/', "%2F"))
}

async fn session_list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let project = viewer.project(&path_or_404(path)?)?.clone();
    let mut api_params = params.clone();
    let range = take_range(&mut api_params)?;
    let query = parse_session_query(&api_params)?;
    let store = state.store.clone();
    let project_id = project.id;
    let (found, correlation) = crate::api::blocking(move || {
        let found = store.list_sessions(project_id, &query)?;
        let correlation = store.session_correlation(project_id, query.from_unix_nano, query.to_unix_nano)?;
        Ok((found, correlation))
    })
    .await?;
    let value = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    let base = format!("/p/{}/sessions", url_encode(&project.slug));
    let body = html! {
        form.filters method="get" action=(base) role="search" aria-label="Filter sessions" {
            label { "User id " input type="text" name="user" value=(value("user")); }
            label { "Errors " select name="has_errors" {
                @for (option, label) in [("", "Any"), ("true", "With errors"), ("false", "Without errors")] {
                    option value=(option) selected[value("has_errors") == option] { (label) }
                }
            } }
            (range_field("Started", range, "Any time"))
            @for name in ["from", "to", "limit"] {
                @let replaced_by_range = name == "from" && range.is_some();
                @if !value(name).is_empty() && !replaced_by_range { input type="hidden" name=(name) value=(value(name)); }
            }
            button type="submit" { "Filter" }
            a href=(base) { "Clear" }
        }
        p.hint {
            "Server requests carrying a session id: " strong { (percent(correlation.rate)) }
            " (" (correlation.with_session) " of " (correlation.server_spans) ")."
        }
        @if found.items.is_empty() { p.empty { "No sessions match." } } @else {
            table.sessions {
                caption.visually-hidden { "Sessions, newest first" }
                thead { tr {
                    th scope="col" { "Session" } th scope="col" { "Started" } th scope="col" { "Duration" } th scope="col" { "User" }
                    th scope="col" { "Entry page" } th scope="col" { "Pages" } th scope="col" { "Events" } th scope="col" { "Requests" }
                    th scope="col" { "Errors" } th scope="col" { "Services" }
                } }
                tbody { @for summary in &found.items { (session_row(&project, summary)) } }
            }
            @if let Some(cursor) = &found.next_cursor {
                @let next: Vec<(&str, &str)> = params.iter().filter(|(key, _)| key.as_str() != "cursor").map(|(key, value)| (key.as_str(), value.as_str()))
                    .chain(std::iter::once(("cursor", cursor.as_str()))).collect();
                p { a rel="next" href=(url_with(&base, &next)) { "Older sessions" } }
            }
        }
    };
    Ok(page(&viewer, Section::Sessions, Some(&project), "Sessions", body))
}

fn session_row(project: &Project, summary: &SessionSummary) -> Markup {
    html! {
        tr.error[summary.errors > 0] {
            td { a href=(session_url(&project.slug, &summary.session_id)) { code { (summary.session_id) } } }
            td { (time(summary.first_seen_unix_nano)) }
            td.num { (duration(summary.duration_nanos)) }
            td { (summary.user_id.as_deref().unwrap_or("—")) }
            td { (summary.entry_page.as_deref().unwrap_or("—")) }
            td.num { (summary.page_views) }
            td.num { (summary.events) }
            td.num { (summary.requests) }
            td.num { (summary.errors) }
            td { (summary.services.join(", ")) }
        }
    }
}

async fn session_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let (slug, session_id) = path_or_404(path)?;
    let project = viewer.project(&slug)?.clone();
    let timeline_query = parse_timeline_query(&params)?;
    let store = state.store.clone();
    let project_id = project.id;
    let wanted = session_id.clone();
    let detail = crate::api::blocking(move || Ok(store.get_session(project_id, &wanted, &timeline_query)?))
        .await?
        .ok_or_else(|| UiError::NotFound(format!("session {session_id:?} not found")))?;
    let title = format!("Session {}", detail.summary.session_id);
    let next = detail.next_cursor.as_ref().map(|cursor| {
        let limit = params.get("limit").map(String::as_str).unwrap_or("");
        url_with(&session_url(&project.slug, &session_id), &[("limit", limit), ("cursor", cursor)])
    });
    Ok(page(&viewer, Section::Sessions, Some(&project), &title, session_body(&project, &detail, next.as_deref())))
}

fn session_body(project: &Project, detail: &SessionDetail, next: Option<&str>) -> Markup {
    let summary = &detail.summary;
    let slug = url_encode(&project.slug);
    let start = summary.first_seen_unix_nano;
    let sessions_of_user =
        summary.user_id.as_deref().map(|user| url_with(&format!("/p/{slug}/sessions"), &[("user", user)]));
    html! {
        dl.figures {
            div { dt { "Started" } dd { (time(start)) } }
            div { dt { "Duration" } dd { (duration(summary.duration_nanos)) } }
            div { dt { "User" } dd { @match (&summary.user_id, &sessions_of_user) {
                (Some(user), Some(url)) => { a href=(url) title="All sessions of this user" { (user) } }
                _ => { "—" }
            } } }
            div { dt { "Entry page" } dd { (summary.entry_page.as_deref().unwrap_or("—")) } }
            div { dt { "Exit page" } dd { (summary.exit_page.as_deref().unwrap_or("—")) } }
            div { dt { "Page views" } dd { (summary.page_views) } }
            div { dt { "Events" } dd { (summary.events) } }
            div { dt { "Requests" } dd { (summary.requests) } }
            div { dt { "Logs" } dd { (summary.logs) } }
            div { dt { "Errors" } dd { (summary.errors) } }
            div { dt { "Services" } dd { @if summary.services.is_empty() { "—" } @else { (summary.services.join(", ")) } } }
        }
        @if let Some(user_agent) = &summary.user_agent { p.hint { "Browser: " (user_agent) } }
        h2 id="timeline" { "Timeline" }
        p.legend { "Oldest first. Move between entries with Tab, or with ↑ ↓ (or k j) once one has focus; Enter opens a request's trace or an error's issue." }
        @if detail.timeline.is_empty() { p.empty { "This page of the timeline is empty." } } @else {
            ol.timeline aria-labelledby="timeline" data-keynav {
                @for entry in &detail.timeline { (timeline_entry(&slug, start, entry)) }
            }
        }
        @if let Some(next) = next { p { a rel="next" href=(next) { "Later entries" } } }
    }
}

/// `+1.25 s` from the session's start.
fn offset(start: u64, at: u64) -> String {
    match at.saturating_sub(start) {
        0 => "+0 s".into(),
        elapsed => format!("+{}", duration(elapsed)),
    }
}

fn timeline_entry(slug: &str, start: u64, entry: &TimelineEntry) -> Markup {
    let at = entry.time_unix_nano();
    let when = html! { span.when { span.offset { (offset(start, at)) } " " (time(at)) } };
    match entry {
        TimelineEntry::Event { event_type, name, page, properties, .. } => {
            let shown: Vec<(&String, String)> = properties
                .iter()
                .filter(|(key, _)| !matches!(key.as_str(), "page.path" | "page.url" | "page.title"))
                .take(MAX_INLINE_PROPERTIES)
                .map(|(key, value)| (key, attribute_value(value)))
                .collect();
            html! {
                li.entry.kind-event tabindex="0" data-entry-focus {
                    (when)
                    span.badge.kind { "event" }
                    span.what { strong { (event_type) } " " (name) @if let Some(page) = page { " on " code { (page) } } }
                    @if !shown.is_empty() {
                        span.props { @for (key, value) in shown { span.prop { (key) "=" (value) } " " } }
                    }
                }
            }
        }
        TimelineEntry::Request {
            name,
            service,
            duration_nanos,
            status,
            status_message,
            http_method,
            http_route,
            http_status_code,
            trace_id,
            span_id,
            ..
        } => {
            let is_error = *status == "error";
            let label = match (http_method, http_route) {
                (Some(method), Some(route)) if !name.contains(route.as_str()) => format!("{method} {route}"),
                _ => name.clone(),
            };
            html! {
                li.entry.kind-request.error[is_error] {
                    (when)
                    span.badge.kind { "request" }
                    span.what {
                        a href=(format!("/p/{slug}/traces/{trace_id}#span-{span_id}")) data-entry-focus { (label) }
                        " " span.service { (service) }
                        @if let Some(code) = http_status_code { " " span.badge.http-status.error[*code >= 500] { (code) } }
                        " " span.duration { (duration(*duration_nanos)) }
                        @if is_error { " " span.status-error { "✖ error" @if !status_message.is_empty() { ": " (status_message) } } }
                    }
                }
            }
        }
        TimelineEntry::Log { severity_text, severity_number, body, service, trace_id, span_id, .. } => {
            let severity =
                if severity_text.is_empty() { format!("severity {severity_number}") } else { severity_text.clone() };
            // OTLP severity numbers 17 and above are ERROR and FATAL.
            let is_error = *severity_number >= 17;
            html! {
                li.entry.kind-log.error[is_error] tabindex=[trace_id.is_none().then_some("0")] data-entry-focus[trace_id.is_none()] {
                    (when)
                    span.badge.kind { "log" }
                    span.what {
                        span.severity { (severity) } " " span.service { (service) } " " (attribute_value(body))
                        @if let Some(trace_id) = trace_id {
                            @let anchor = span_id.map(|span| format!("#span-{span}")).unwrap_or_default();
                            " " a href=(format!("/p/{slug}/traces/{trace_id}{anchor}")) data-entry-focus { "trace" }
                        }
                    }
                }
            }
        }
        TimelineEntry::Error { issue_id, title, level, service, .. } => html! {
            li.entry.kind-error.error {
                (when)
                span class=(format!("badge kind level-{level}")) { (level) }
                span.what {
                    a href=(format!("/p/{slug}/issues/{issue_id}")) data-entry-focus { (title) }
                    " " span.service { (service) }
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};
    use sightline_model::{SpanId, TraceId};

    #[test]
    fn ranges_set_from_and_refuse_unknown_values() {
        let mut params = HashMap::from([("range".to_owned(), "24h".to_owned())]);
        let before = crate::clock::now_unix_nano();
        assert_eq!(take_range(&mut params).ok(), Some(Some("24h")));
        let from: u64 = params["from"].parse().unwrap_or(0);
        assert!(from + 86_400 * 1_000_000_000 >= before && !params.contains_key("range"));
        let mut bad = HashMap::from([("range".to_owned(), "2w".to_owned())]);
        assert!(matches!(take_range(&mut bad), Err(UiError::BadRequest(message)) if message.contains("1h, 24h")));
        assert_eq!(take_range(&mut HashMap::new()).ok(), Some(None));
    }

    #[test]
    fn session_urls_keep_the_id_one_segment() {
        assert_eq!(session_url("shop", "sess-a/b c"), "/p/shop/sessions/sess-a%2Fb%20c");
    }

    #[test]
    fn requests_link_to_their_span_and_errors_to_their_issue() {
        let trace_id = TraceId([0xab; 16]);
        let span_id = SpanId([0xcd; 8]);
        let request = TimelineEntry::Request {
            time_unix_nano: 2_500_000_000,
            end_time_unix_nano: 2_600_000_000,
            name: "POST /checkout".into(),
            service: "checkout-api".into(),
            span_kind: "server",
            duration_nanos: 100_000_000,
            status: "error",
            status_message: "checkout failed".into(),
            http_method: Some("POST".into()),
            http_route: Some("/checkout".into()),
            http_status_code: Some(500),
            trace_id,
            span_id,
        };
        let html = timeline_entry("shop", 1_000_000_000, &request).into_string();
        assert!(html.contains(&format!(r#"href="/p/shop/traces/{trace_id}#span-{span_id}""#)), "{html}");
        assert!(html.contains("+1.50 s") && html.contains("checkout failed") && html.contains("error"), "{html}");
        let error = TimelineEntry::Error {
            time_unix_nano: 3_000_000_000,
            issue_id: 42,
            title: "TypeError: x is undefined".into(),
            level: "error".into(),
            event_id: "e1".into(),
            service: "shop-web".into(),
        };
        assert!(timeline_entry("shop", 0, &error).into_string().contains(r#"href="/p/shop/issues/42""#));
        let mut properties = Map::new();
        properties.insert("page.path".into(), json!("/cart"));
        properties.insert("cart.items".into(), json!(3));
        let event = TimelineEntry::Event {
            time_unix_nano: 0,
            event_id: "e2".into(),
            event_type: "click".into(),
            name: "add_to_cart".into(),
            page: Some("/cart".into()),
            properties,
        };
        let html = timeline_entry("shop", 0, &event).into_string();
        assert!(html.contains("cart.items=3") && !html.contains("page.path="), "{html}");
        assert!(html.contains(r#"tabindex="0""#), "an entry without a link is focusable itself: {html}");
    }
}
