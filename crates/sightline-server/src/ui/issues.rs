//! Errors: the issue list (`GET /p/{project}/issues`) with the REST API's filters and sorts
//! (`status, service, environment, release, level, user, q, sort`, plus `range=1h|24h|7d|30d|90d`
//! for "last seen within"), bulk resolve / ignore (`POST /p/{project}/issues/status`), and the
//! issue page (`GET /p/{project}/issues/{id}`) with the latest event's stack trace (innermost
//! frame first as Sentry shows it, in-app frames highlighted, source context when a source map
//! or the runtime gave it), occurrences per hour, tag breakdowns, links to the trace and
//! session, status history and status buttons (`POST /p/{project}/issues/{id}/status`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};

use super::UiError;
use super::charts::{columns, shares};
use super::format::{time, url_encode, url_with};
use super::layout::{Section, page};
use super::session::{Viewer, viewer};
use crate::server::AppState;
use crate::store::Project;
use crate::store::errors::{Issue, IssueDetail, IssueStatus, StatusChange, StoredErrorEvent};
use crate::ui::{here, path_or_404};

/// Filters of the list form: (query name, label).
const TEXT_FILTERS: [(&str, &str); 5] = [
    ("service", "Service"),
    ("environment", "Environment"),
    ("release", "Release"),
    ("user", "User id"),
    ("q", "Text"),
];
/// `range=` choices: (value, label, seconds).
const RANGES: [(&str, &str, u64); 5] = [
    ("1h", "Last hour", 3600),
    ("24h", "Last 24 hours", 86_400),
    ("7d", "Last 7 days", 7 * 86_400),
    ("30d", "Last 30 days", 30 * 86_400),
    ("90d", "Last 90 days", 90 * 86_400),
];
/// Most issues a bulk form may change at once (the API's bound).
const MAX_BULK_IDS: usize = 1000;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/p/{project}/issues", get(issue_list))
        .route("/p/{project}/issues/status", post(bulk_status))
        .route("/p/{project}/issues/{issue_id}", get(issue_page))
        .route("/p/{project}/issues/{issue_id}/status", post(issue_status))
}

async fn issue_list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let project = viewer.project(&path_or_404(path)?)?.clone();
    let mut api_params = params.clone();
    let range = api_params.remove("range").filter(|range| !range.is_empty());
    if let Some(range) = &range {
        let (_, _, seconds) = RANGES
            .iter()
            .find(|(value, _, _)| value == range)
            .ok_or_else(|| UiError::BadRequest(format!("range={range:?}: use 1h, 24h, 7d, 30d or 90d")))?;
        let from = crate::clock::now_unix_nano().saturating_sub(seconds * 1_000_000_000);
        api_params.insert("from".into(), from.to_string());
    }
    let query = crate::api::issues::parse_issue_query(&api_params)?;
    let store = state.store.clone();
    let project_id = project.id;
    let page_of_issues = crate::api::blocking(move || Ok(store.list_issues(project_id, &query)?)).await?;
    let value = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    let back = here(&uri).unwrap_or_default();
    let slug = url_encode(&project.slug);
    let body = html! {
        form.filters method="get" action=(format!("/p/{slug}/issues")) role="search" aria-label="Filter issues" {
            label { "Status " select name="status" {
                @for (option, label) in [("", "Any"), ("unresolved", "Unresolved"), ("resolved", "Resolved"), ("resolved_in_release", "Resolved in release"), ("ignored", "Ignored")] {
                    option value=(option) selected[value("status") == option] { (label) }
                }
            } }
            label { "Level " select name="level" {
                @for (option, label) in [("", "Any"), ("warning", "Warning"), ("error", "Error"), ("fatal", "Fatal")] {
                    option value=(option) selected[value("level") == option] { (label) }
                }
            } }
            @for (name, label) in TEXT_FILTERS {
                label { (label) " " input type=(if name == "q" { "search" } else { "text" }) name=(name) value=(value(name)); }
            }
            label { "Last seen " select name="range" {
                option value="" selected[range.is_none()] { "Any time" }
                @for (option, label, _) in RANGES { option value=(option) selected[range.as_deref() == Some(option)] { (label) } }
            } }
            label { "Sort by " select name="sort" {
                @for (option, label) in [("last_seen", "Last seen"), ("count", "Events"), ("users", "Users")] {
                    option value=(option) selected[value("sort") == option || (option == "last_seen" && value("sort").is_empty())] { (label) }
                }
            } }
            button type="submit" { "Apply filters" }
            a href=(format!("/p/{slug}/issues")) { "Clear" }
        }
        @if page_of_issues.items.is_empty() {
            p.empty { "No issues match these filters." }
        } @else {
            form method="post" action=(format!("/p/{slug}/issues/status")) {
                input type="hidden" name="csrf" value=(viewer.csrf_token.expose());
                input type="hidden" name="back" value=(back);
                div.bulk role="group" aria-label="Change the selected issues" {
                    button type="submit" name="status" value="resolved" { "Resolve selected" }
                    button type="submit" name="status" value="ignored" { "Ignore selected" }
                    button type="submit" name="status" value="unresolved" { "Reopen selected" }
                }
                table.issues {
                    caption.visually-hidden { "Issues" }
                    thead { tr {
                        th scope="col" { input type="checkbox" data-select-all="ids" aria-label="Select all issues"; }
                        th scope="col" { "Issue" } th scope="col" { "Level" } th scope="col" { "Status" }
                        th scope="col" { "Events" } th scope="col" { "Users" } th scope="col" { "Last seen" } th scope="col" { "First seen" }
                    } }
                    tbody {
                        @for issue in &page_of_issues.items { (issue_row(&project, issue)) }
                    }
                }
            }
            @if let Some(cursor) = &page_of_issues.next_cursor {
                @let next: Vec<(&str, &str)> = params.iter().filter(|(key, _)| key.as_str() != "cursor").map(|(key, value)| (key.as_str(), value.as_str()))
                    .chain(std::iter::once(("cursor", cursor.as_str()))).collect();
                p { a rel="next" href=(url_with(&format!("/p/{slug}/issues"), &next)) { "Next page" } }
            }
        }
    };
    Ok(page(&viewer, Section::Issues, Some(&project), "Errors", body))
}

fn issue_row(project: &Project, issue: &Issue) -> Markup {
    let slug = url_encode(&project.slug);
    html! {
        tr class=(format!("level-{}", issue.level.as_str())) {
            td { input type="checkbox" name="ids" value=(issue.id) aria-label=(format!("Select issue {}", issue.id)); }
            td {
                a href=(format!("/p/{slug}/issues/{}", issue.id)) { (issue.title) }
                @if let Some(culprit) = &issue.culprit { div.culprit { (culprit) } }
            }
            td { span class=(format!("badge level-{}", issue.level.as_str())) { (issue.level.as_str()) } }
            td { (status_label(issue)) }
            td.num { (issue.event_count) }
            td.num { (issue.user_count) }
            td { (time(issue.last_seen_unix_nano)) }
            td { (time(issue.first_seen_unix_nano)) }
        }
    }
}

fn status_label(issue: &Issue) -> Markup {
    let status = issue.status.as_str();
    html! {
        span class=(format!("badge issue-{status}")) { (status.replace('_', " ")) }
        @if let Some(substatus) = &issue.substatus { " " span.substatus { (substatus) } }
    }
}

/// Reads a posted form as pairs (repeated `ids` allowed); 415 for another content type.
fn form_pairs(form: Result<Form<Vec<(String, String)>>, FormRejection>) -> Result<Vec<(String, String)>, UiError> {
    form.map(|Form(pairs)| pairs).map_err(|rejection| UiError::Status(rejection.status(), rejection.body_text()))
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// A status change asked by a dashboard button: resolve, ignore (indefinitely) or reopen.
fn change_for(viewer: &Viewer, pairs: &[(String, String)]) -> Result<StatusChange, UiError> {
    let status_text = field(pairs, "status").unwrap_or("");
    let status = match IssueStatus::parse(status_text) {
        Some(status @ (IssueStatus::Resolved | IssueStatus::Ignored | IssueStatus::Unresolved)) => status,
        _ => return Err(UiError::BadRequest(format!("status={status_text:?}: use resolved, ignored or unresolved"))),
    };
    Ok(StatusChange {
        status,
        release: None,
        ignore_for_events: None,
        ignore_until_unix_nano: None,
        actor: viewer.user.email.clone(),
    })
}

/// Where to return after a form: a local path of this project, else the issue list.
fn back_to(pairs: &[(String, String)], project_slug: &str) -> String {
    let own_prefix = format!("/p/{}/", url_encode(project_slug));
    match field(pairs, "back") {
        Some(back) if back.starts_with(&own_prefix) => back.to_owned(),
        _ => format!("/p/{}/issues", url_encode(project_slug)),
    }
}

async fn apply(state: &AppState, project_id: i64, ids: Vec<i64>, change: StatusChange) -> Result<(), UiError> {
    let store = state.store.clone();
    crate::api::blocking(move || Ok(store.change_issue_status(project_id, &ids, &change)?)).await?;
    Ok(())
}

/// `POST /p/{project}/issues/status` (form: `csrf`, `status`, `ids`..., `back`): 303 back to the list.
async fn bulk_status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, None).await?;
    let pairs = form_pairs(form)?;
    viewer.check_csrf(field(&pairs, "csrf"))?;
    let project = viewer.project(&path_or_404(path)?)?.clone();
    let change = change_for(&viewer, &pairs)?;
    let mut ids = Vec::new();
    for (key, value) in &pairs {
        if key == "ids" {
            ids.push(
                value.parse::<i64>().map_err(|_| UiError::BadRequest(format!("ids={value:?} is not an issue id")))?,
            );
        }
    }
    if ids.is_empty() {
        return Err(UiError::BadRequest("select at least one issue".into()));
    }
    if ids.len() > MAX_BULK_IDS {
        return Err(UiError::BadRequest(format!("at most {MAX_BULK_IDS} issues at once")));
    }
    apply(&state, project.id, ids, change).await?;
    Ok(Redirect::to(&back_to(&pairs, &project.slug)).into_response())
}

/// `POST /p/{project}/issues/{id}/status` (form: `csrf`, `status`): 303 back to the issue.
async fn issue_status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, None).await?;
    let pairs = form_pairs(form)?;
    viewer.check_csrf(field(&pairs, "csrf"))?;
    let (slug, issue_id) = path_or_404(path)?;
    let project = viewer.project(&slug)?.clone();
    let change = change_for(&viewer, &pairs)?;
    apply(&state, project.id, vec![issue_id], change).await?;
    Ok(Redirect::to(&format!("/p/{}/issues/{issue_id}", url_encode(&project.slug))).into_response())
}

async fn issue_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, i64)>, PathRejection>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let (slug, issue_id) = path_or_404(path)?;
    let project = viewer.project(&slug)?.clone();
    let store = state.store.clone();
    let project_id = project.id;
    let detail = crate::api::blocking(move || Ok(store.get_issue(project_id, issue_id, 24)?))
        .await?
        .ok_or_else(|| UiError::NotFound(format!("issue {issue_id} not found")))?;
    let title = detail.issue.title.clone();
    Ok(page(&viewer, Section::Issues, Some(&project), &title, issue_body(&viewer, &project, &detail)))
}

fn issue_body(viewer: &Viewer, project: &Project, detail: &IssueDetail) -> Markup {
    let issue = &detail.issue;
    let slug = url_encode(&project.slug);
    html! {
        p.lead {
            span class=(format!("badge level-{}", issue.level.as_str())) { (issue.level.as_str()) } " "
            (status_label(issue)) " "
            @if let Some(culprit) = &issue.culprit { span.culprit { (culprit) } }
        }
        form.actions method="post" action=(format!("/p/{slug}/issues/{}/status", issue.id)) {
            input type="hidden" name="csrf" value=(viewer.csrf_token.expose());
            @if issue.status != IssueStatus::Resolved { button type="submit" name="status" value="resolved" { "Resolve" } }
            @if issue.status != IssueStatus::Ignored { button type="submit" name="status" value="ignored" { "Ignore" } }
            @if issue.status != IssueStatus::Unresolved { button type="submit" name="status" value="unresolved" { "Reopen" } }
        }
        dl.figures {
            div { dt { "Events" } dd { (issue.event_count) } }
            div { dt { "Users" } dd { (issue.user_count) } }
            div { dt { "Sessions" } dd { (issue.session_count) } }
            div { dt { "First seen" } dd { (time(issue.first_seen_unix_nano)) } }
            div { dt { "Last seen" } dd { (time(issue.last_seen_unix_nano)) } }
            div { dt { "Latest release" } dd { (issue.last_release.as_deref().unwrap_or("—")) } }
        }
        section aria-labelledby="occurrences" {
            h2 id="occurrences" { "Occurrences" }
            (columns("Events per hour, last 24 hours", &detail.occurrences_per_hour))
        }
        @if let Some(latest) = &detail.latest_event { (latest_event(project, latest)) }
        section aria-labelledby="tags" {
            h2 id="tags" { "Tags" }
            @if detail.top_tags.is_empty() { p.empty { "No tags recorded." } }
            div.tag-grid {
                @for (key, values) in &detail.top_tags { (shares(key, values)) }
            }
        }
        section aria-labelledby="history" {
            h2 id="history" { "Status history" }
            @if detail.history.is_empty() { p.empty { "No status changes yet." } } @else {
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Status" } th scope="col" { "Reason" } th scope="col" { "By" } th scope="col" { "Release" } } }
                    tbody { @for entry in &detail.history { tr {
                        td { (time(entry.at_unix_nano)) }
                        td { (entry.status.as_str().replace('_', " ")) @if let Some(sub) = &entry.substatus { " (" (sub) ")" } }
                        td { (entry.reason) } td { (entry.actor) } td { (entry.release.as_deref().unwrap_or("")) }
                    } } }
                }
            }
        }
    }
}

fn latest_event(project: &Project, latest: &StoredErrorEvent) -> Markup {
    let event = &latest.event;
    let context = &event.context;
    let slug = url_encode(&project.slug);
    html! {
        section aria-labelledby="latest" {
            h2 id="latest" { "Latest event" }
            p {
                (time(event.timestamp_unix_nano)) " · " (context.service)
                @if let Some(environment) = &context.environment { " · " (environment) }
                @if let Some(release) = &context.release { " · release " (release) }
            }
            ul.links {
                @if let Some(trace_id) = &context.trace_id {
                    li { a href=(format!("/p/{slug}/traces/{trace_id}")) { "View the trace " code { (trace_id.to_string()) } } }
                }
                @if let Some(session_id) = &context.session_id {
                    li { a href=(super::sessions::session_url(&project.slug, session_id)) { "View the session " code { (session_id) } } }
                }
                @if let Some(user) = &context.user_id { li { "User " code { (user) } } }
                @if let Some(url) = &context.url { li { "URL " code { (url) } } }
                @if let Some(browser) = &context.browser { li { "Browser " (browser) @if let Some(os) = &context.os { " on " (os) } } }
            }
            h3 { "Stack trace" }
            @if event.exceptions.iter().all(|exception| exception.frames.is_empty()) {
                @if let Some(raw) = &event.raw_stacktrace { pre.raw { (raw) } } @else { p.empty { "No stack trace was sent." } }
            }
            @for (exception_index, exception) in event.exceptions.iter().enumerate() {
                div.exception {
                    p.exception-title { strong { (exception.exception_type) } ": " (exception.message) }
                    @if event.symbolicated { p.hint { "Frames translated with the release's source maps." } }
                    ol.frames reversed {
                        @for (frame_index, frame) in exception.frames.iter().enumerate().rev() {
                            li class=(if frame.in_app { "frame in-app" } else { "frame" }) {
                                span.function { (frame.function.as_deref().unwrap_or("<anonymous>")) }
                                @if let Some(module) = &frame.module { " in " span.module { (module) } }
                                @if let Some(filename) = &frame.filename {
                                    " at " span.file { (filename) @if let Some(line) = frame.lineno { ":" (line) } @if let Some(column) = frame.colno { ":" (column) } }
                                }
                                @if frame.in_app { " " span.badge.in-app-badge { "in app" } }
                                @let context_lines = event.source_context.iter().find(|source| source.exception_index == exception_index && source.frame_index == frame_index);
                                @if let Some(source) = context_lines {
                                    pre.source {
                                        @let first = frame.lineno.unwrap_or(1).saturating_sub(source.pre_lines.len() as u32);
                                        @for (offset, line) in source.pre_lines.iter().enumerate() { span.line { span.lineno { (first + offset as u32) } (line) } "\n" }
                                        span.line.current { span.lineno { (frame.lineno.unwrap_or(0)) } (source.line) } "\n"
                                        @for (offset, line) in source.post_lines.iter().enumerate() { span.line { span.lineno { (frame.lineno.unwrap_or(0) + 1 + offset as u32) } (line) } "\n" }
                                    }
                                } @else if let Some(line) = &frame.context_line {
                                    pre.source { span.line.current { (line) } }
                                }
                            }
                        }
                    }
                }
            }
            @if !event.tags.is_empty() {
                details {
                    summary { "All tags of this event" }
                    table { tbody { @for (key, value) in &event.tags { tr { th scope="row" { (key) } td { (value) } } } } }
                }
            }
        }
    }
}
