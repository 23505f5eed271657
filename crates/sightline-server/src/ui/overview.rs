//! `GET /`: the overview across the projects the viewer is a member of. Per project: requests
//! per minute, error rate and p95 over the last hour (endpoint RED rollups, as
//! `GET /api/v1/projects/{p}/health` reads them), ingest rates per signal over the last hour
//! (per-minute accepted items, `ingest_minutes`, with a sparkline) next to the all-time outcome
//! counters of `GET .../outcomes`, open issues and error events in the last hour, and the
//! health of each service (the health API's judgement, [`crate::api::health::health_body`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;

use super::UiError;
use super::format::{millis, url_encode};
use super::layout::{Section, page};
use super::session::viewer;
use crate::api::ApiError;
use crate::server::AppState;
use crate::store::Project;
use crate::store::errors::{IssueQuery, IssueStatus};
use crate::store::rollups::{DurationSketch, RollupQuery};

const MINUTE_NANOS: u64 = 60_000_000_000;
const HOUR_NANOS: u64 = 60 * MINUTE_NANOS;
/// Minutes of ingest rate shown (the current one last).
const MINUTES_SHOWN: usize = 60;
/// Signals in the ingest table: (outcome signal name, label, what one item is).
const SIGNALS: [(&str, &str, &str); 4] = [
    ("traces", "Traces", "spans"),
    ("logs", "Logs", "log records"),
    ("metrics", "Metrics", "metric points"),
    ("events", "Product events", "events"),
];
/// Open issues counted exactly up to this many; more show as "100+".
const OPEN_ISSUES_CAP: usize = 100;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/", get(overview))
}

/// One project's figures.
struct ProjectSummary {
    project: Project,
    /// Requests (SERVER spans) in the last hour.
    requests: u64,
    /// Of which errors.
    errors: u64,
    /// p95 over all endpoints in the last hour, ms.
    p95_ms: Option<f64>,
    /// signal → accepted items since the project started.
    accepted: BTreeMap<String, u64>,
    /// signal → accepted items per minute of the last hour, oldest first (60 slots).
    ingest_last_hour: BTreeMap<String, Vec<u64>>,
    /// Unresolved issues (capped at [`OPEN_ISSUES_CAP`] + 1).
    open_issues: usize,
    /// Error events in the last hour.
    errors_last_hour: u64,
    /// The health API's body: `{status, services: [{service, status, windows}]}`.
    health: Value,
}

/// Reads one project's figures (blocking store calls).
fn summarize(state: &AppState, project: Project, now_unix_nano: u64) -> Result<ProjectSummary, ApiError> {
    let store = &state.store;
    let hour_start = now_unix_nano.saturating_sub(HOUR_NANOS) / MINUTE_NANOS * MINUTE_NANOS;
    let query = RollupQuery {
        service: None,
        environment: None,
        operation: None,
        from_unix_nano: hour_start,
        to_unix_nano: now_unix_nano + 1,
    };
    let rollups = store.endpoint_rollups(project.id, &query)?;
    let mut durations = DurationSketch::default();
    let (mut requests, mut errors) = (0, 0);
    for rollup in &rollups {
        requests += rollup.requests;
        errors += rollup.errors;
        durations
            .merge(&rollup.durations)
            .map_err(|error| ApiError::from(crate::store::StoreError::Database(error.to_string())))?;
    }
    let health = crate::api::health::health_body(&rollups, &project.health_thresholds, now_unix_nano)?;
    let mut accepted = BTreeMap::new();
    for outcome in store.outcomes(project.id)? {
        if outcome.outcome == "accepted" {
            *accepted.entry(outcome.signal).or_insert(0) += outcome.count;
        }
    }
    let mut ingest_last_hour: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let first_minute = now_unix_nano.saturating_sub(HOUR_NANOS) / MINUTE_NANOS * MINUTE_NANOS + MINUTE_NANOS;
    for minute in store.ingest_minutes(project.id, first_minute)? {
        let slot = ((minute.minute_unix_nano.saturating_sub(first_minute)) / MINUTE_NANOS) as usize;
        if let Some(count) =
            ingest_last_hour.entry(minute.signal).or_insert_with(|| vec![0; MINUTES_SHOWN]).get_mut(slot)
        {
            *count += minute.accepted;
        }
    }
    let open = store.list_issues(
        project.id,
        &IssueQuery { status: Some(IssueStatus::Unresolved), limit: OPEN_ISSUES_CAP + 1, ..IssueQuery::default() },
    )?;
    // One hour, not a day: the stats read every error event of the range (≈ 0.2 s for 10,000
    // events in a debug build), and the overview must stay under 300 ms on large stores.
    let stats = store.error_stats(project.id, now_unix_nano.saturating_sub(HOUR_NANOS), now_unix_nano, None)?;
    Ok(ProjectSummary {
        project,
        requests,
        errors,
        p95_ms: durations.quantile_nanos(0.95).map(|nanos| nanos / 1e6),
        accepted,
        ingest_last_hour,
        open_issues: open.items.len(),
        errors_last_hour: stats.total_events,
        health,
    })
}

async fn overview(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, Some("/".into())).await?;
    let projects = viewer.projects.clone();
    let now = crate::clock::now_unix_nano();
    let summaries = crate::api::blocking({
        let state = state.clone();
        move || projects.into_iter().map(|project| summarize(&state, project, now)).collect::<Result<Vec<_>, _>>()
    })
    .await?;
    let body = html! {
        @if summaries.is_empty() {
            p { "You are not a member of any project yet. An administrator adds you with "
                code { "sightline user add-member --email you@example.com --project default" } "." }
        }
        @for summary in &summaries { (project_card(summary)) }
    };
    Ok(page(&viewer, Section::Overview, None, "Overview", body))
}

/// A small inline column sparkline of per-minute counts (empty slots are zero); the label and
/// the peak are given to assistive technology.
fn sparkline(label: &str, counts: &[u64]) -> Markup {
    const WIDTH: f64 = 120.0;
    const HEIGHT: f64 = 20.0;
    let peak = counts.iter().copied().max().unwrap_or(0);
    let slot = WIDTH / MINUTES_SHOWN as f64;
    html! {
        svg.sparkline viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width="120" height="20" role="img"
            aria-label=(format!("{label}; peak {peak}")) {
            @for (index, count) in counts.iter().enumerate() {
                @if *count > 0 {
                    @let height = (*count as f64 / peak as f64 * HEIGHT).max(1.0);
                    rect x=(format!("{:.1}", index as f64 * slot)) y=(format!("{:.1}", HEIGHT - height))
                        width=(format!("{:.1}", slot * 0.8)) height=(format!("{height:.1}")) {}
                }
            }
        }
    }
}

fn status_badge(status: &str) -> Markup {
    let label = status.replace('_', " ");
    html! { span class=(format!("badge status-{status}")) { (label) } }
}

fn project_card(summary: &ProjectSummary) -> Markup {
    let slug = url_encode(&summary.project.slug);
    let error_percent =
        if summary.requests == 0 { None } else { Some(summary.errors as f64 * 100.0 / summary.requests as f64) };
    let status = summary.health["status"].as_str().unwrap_or("no_traffic");
    let services = summary.health["services"].as_array().cloned().unwrap_or_default();
    html! {
        section.card aria-labelledby=(format!("project-{slug}")) {
            h2 id=(format!("project-{slug}")) { (summary.project.name) " " (status_badge(status)) }
            dl.figures {
                div { dt { "Requests (last hour)" } dd { (summary.requests) " (" (format!("{:.2}", summary.requests as f64 / 60.0)) " / min)" } }
                div { dt { "Error rate (last hour)" } dd { @match error_percent { Some(percent) => (format!("{percent:.2} %")), None => "—" } } }
                div { dt { "p95 latency (last hour)" } dd { (millis(summary.p95_ms)) } }
                div { dt { "Open issues" } dd { a href=(format!("/p/{slug}/issues?status=unresolved")) {
                    @if summary.open_issues > OPEN_ISSUES_CAP { (OPEN_ISSUES_CAP) "+" } @else { (summary.open_issues) } } } }
                div { dt { "Error events (last hour)" } dd { (summary.errors_last_hour) } }
            }
            table.ingest {
                caption { "Ingest per signal" }
                thead { tr {
                    th scope="col" { "Signal" }
                    th scope="col" { "Per minute (last hour)" }
                    th scope="col" { "Last hour" }
                    th scope="col" { "All time" }
                    th scope="col" { "Last 60 minutes" }
                } }
                tbody {
                    @for (signal, label, items) in SIGNALS {
                        @let minutes = summary.ingest_last_hour.get(signal);
                        @let last_hour: u64 = minutes.map_or(0, |minutes| minutes.iter().sum());
                        tr {
                            th scope="row" { (label) }
                            td.num { (format!("{:.1}", last_hour as f64 / MINUTES_SHOWN as f64)) " " (items) }
                            td.num { (last_hour) }
                            td.num { (summary.accepted.get(signal).copied().unwrap_or(0)) }
                            td { (sparkline(&format!("{label}: {items} accepted per minute"), minutes.map_or(&[][..], Vec::as_slice))) }
                        }
                    }
                }
            }
            @if services.is_empty() {
                p.hint { "No requests in the last hour." }
            } @else {
                table {
                    caption { "Service health (last 5 / 60 minutes)" }
                    thead { tr { th scope="col" { "Service" } th scope="col" { "Status" } th scope="col" { "Requests (60 m)" } th scope="col" { "Error % (60 m)" } th scope="col" { "p95 (60 m)" } } }
                    tbody {
                        @for service in &services {
                            @let window = &service["windows"]["60m"];
                            tr {
                                th scope="row" { (service["service"].as_str().unwrap_or("")) }
                                td { (status_badge(service["status"].as_str().unwrap_or("no_traffic"))) }
                                td.num { (window["requests"].as_u64().unwrap_or(0)) }
                                td.num { (format!("{:.2}", window["error_percent"].as_f64().unwrap_or(0.0))) }
                                td.num { (millis(window["p95_ms"].as_f64())) }
                            }
                        }
                    }
                }
            }
            p { a href=(format!("/p/{slug}/issues")) { "Errors" } " · " a href=(format!("/p/{slug}/traces")) { "Traces" } }
        }
    }
}
