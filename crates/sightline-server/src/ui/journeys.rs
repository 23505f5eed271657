//! Journeys: the journeys seen in a range (`GET /p/{project}/journeys?range=` or the REST API's
//! `from, to`) and one journey's funnel (`GET /p/{project}/journeys/{journey_id}?range=&steps=`):
//! step counts, conversion step to step and overall, the median time between steps, outcomes
//! from `journey.conversion.status`. Read with the same functions as
//! `GET /api/v1/projects/{project}/journeys[/{id}/funnel]`; journeys are defined by the
//! `journey.*` fields of product events, so there is nothing to create here.

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
use super::charts_product::{FunnelBar, funnel, percent};
use super::format::{millis, time, url_encode, url_with};
use super::layout::{Section, page};
use super::session::viewer;
use super::sessions::{range_field, take_range};
use crate::api::analytics::funnel::{Conversions, JourneySummary, StepOrder};
use crate::api::journeys::{
    FunnelResponse, JourneyList, parse_funnel_params, parse_list_params, read_funnel, read_journey_list,
};
use crate::server::AppState;
use crate::store::Project;
use crate::ui::{here, path_or_404};

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/p/{project}/journeys", get(journey_list))
        .route("/p/{project}/journeys/{journey_id}", get(journey_page))
}

/// The URL of a journey's funnel page, keeping the range filters.
fn journey_url(project_slug: &str, journey_id: &str, filters: &[(&str, &str)]) -> String {
    let path = format!("/p/{}/journeys/{}", url_encode(project_slug), url_encode(journey_id).replace('/', "%2F"));
    url_with(&path, filters)
}

/// The range filters of a request to carry over to links: `range`, `from`, `to`.
fn range_filters(params: &HashMap<String, String>) -> Vec<(&'static str, String)> {
    ["range", "from", "to"]
        .into_iter()
        .filter_map(|name| params.get(name).filter(|value| !value.is_empty()).map(|value| (name, value.clone())))
        .collect()
}

fn hidden_range_fields(params: &HashMap<String, String>) -> Markup {
    html! {
        @for name in ["from", "to"] {
            @if let Some(value) = params.get(name).filter(|value| !value.is_empty() && !params.contains_key("range")) {
                input type="hidden" name=(name) value=(value);
            }
        }
    }
}

fn range_note(from_unix_nano: u64, to_unix_nano: u64, truncated: bool) -> Markup {
    html! {
        p.hint {
            "From " (time(from_unix_nano)) " to " (time(to_unix_nano)) "."
            @if truncated { " " strong { "Only the oldest journey events of this range were read; narrow the range for exact figures." } }
        }
    }
}

async fn journey_list(
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
    let (from, to) = parse_list_params(&api_params)?;
    let store = state.store.clone();
    let project_id = project.id;
    let list = crate::api::blocking(move || read_journey_list(store.as_ref(), project_id, from, to)).await?;
    let base = format!("/p/{}/journeys", url_encode(&project.slug));
    let filters = range_filters(&params);
    let body = html! {
        form.filters method="get" action=(base) role="search" aria-label="Journeys time range" {
            (range_field("Seen", range, "Last 7 days (default)"))
            (hidden_range_fields(&params))
            button type="submit" { "Show" }
        }
        (range_note(list.from_unix_nano, list.to_unix_nano, list.truncated))
        (journey_table(&project, &list, &filters))
    };
    Ok(page(&viewer, Section::Journeys, Some(&project), "Journeys", body))
}

fn journey_table(project: &Project, list: &JourneyList, filters: &[(&str, String)]) -> Markup {
    let filters: Vec<(&str, &str)> = filters.iter().map(|(name, value)| (*name, value.as_str())).collect();
    html! {
        @if list.journeys.is_empty() {
            p.empty { "No journeys in this range. Journeys come from product events with "
                code { "journey.id" } " and " code { "journey.step.id" } "." }
        } @else {
            table.journeys {
                caption.visually-hidden { "Journeys, most sessions first" }
                thead { tr {
                    th scope="col" { "Journey" } th scope="col" { "Sessions" } th scope="col" { "Users" } th scope="col" { "Steps seen" }
                    th scope="col" { "Converted" } th scope="col" { "Abandoned" } th scope="col" { "Conversion rate" } th scope="col" { "Last seen" }
                } }
                tbody { @for journey in &list.journeys {
                    tr {
                        td { a href=(journey_url(&project.slug, &journey.journey_id, &filters)) { (journey.journey_id) } }
                        td.num { (journey.sessions) }
                        td.num { (journey.users) }
                        td { (steps_seen(journey)) }
                        td.num { (journey.conversions.converted) }
                        td.num { (journey.conversions.abandoned) }
                        td.num { (percent(journey.conversions.conversion_rate)) }
                        td { (time(journey.last_seen_unix_nano)) }
                    }
                } }
            }
            @if list.journeys_truncated { p.hint { "Only the journeys with the most sessions are listed." } }
        }
    }
}

/// `Cart (3) → Shipping (2)`: the steps in observed order with the sessions that reached each.
fn steps_seen(journey: &JourneySummary) -> String {
    journey
        .steps
        .iter()
        .map(|step| format!("{} ({})", step.name.as_deref().unwrap_or(&step.step_id), step.sessions))
        .collect::<Vec<_>>()
        .join(" → ")
}

async fn journey_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let (slug, journey_id) = path_or_404(path)?;
    let project = viewer.project(&slug)?.clone();
    let mut api_params = params.clone();
    let range = take_range(&mut api_params)?;
    let request = parse_funnel_params(&api_params)?;
    let store = state.store.clone();
    let project_id = project.id;
    let wanted = journey_id.clone();
    let response = crate::api::blocking(move || read_funnel(store.as_ref(), project_id, &wanted, &request)).await?;
    let title = format!("Journey {journey_id}");
    let action = journey_url(&project.slug, &journey_id, &[]);
    let list_url = url_with(
        &format!("/p/{}/journeys", url_encode(&project.slug)),
        &range_filters(&params).iter().map(|(name, value)| (*name, value.as_str())).collect::<Vec<_>>(),
    );
    let observed_order = response.funnel.steps.iter().map(|step| step.step_id.as_str()).collect::<Vec<_>>().join(",");
    let body = html! {
        p { a href=(list_url) { "All journeys" } }
        form.filters method="get" action=(action) aria-label="Funnel options" {
            (range_field("Seen", range, "Last 7 days (default)"))
            label { "Step order (step ids, comma separated) "
                input type="text" name="steps" size="40" value=(params.get("steps").map(String::as_str).unwrap_or("")) placeholder=(observed_order);
            }
            (hidden_range_fields(&params))
            button type="submit" { "Show" }
        }
        (range_note(response.from_unix_nano, response.to_unix_nano, response.truncated))
        (funnel_body(&response))
    };
    Ok(page(&viewer, Section::Journeys, Some(&project), &title, body))
}

fn conversions_figures(conversions: &Conversions) -> Markup {
    html! {
        div { dt { "Reported converted" } dd { (conversions.converted) } }
        div { dt { "Reported abandoned" } dd { (conversions.abandoned) } }
        div { dt { "Server-confirmed conversions" } dd { (conversions.server_confirmed) } }
        div { dt { "Reported conversion rate" } dd { (percent(conversions.conversion_rate)) } }
    }
}

fn funnel_body(response: &FunnelResponse) -> Markup {
    let funnel_data = &response.funnel;
    let bars: Vec<FunnelBar> = funnel_data
        .steps
        .iter()
        .map(|step| FunnelBar {
            label: step.name.clone().unwrap_or_else(|| step.step_id.clone()),
            entered: step.entered,
            completed: step.completed,
        })
        .collect();
    let order = match funnel_data.step_order {
        StepOrder::Observed => "Steps in the order sessions took them (median position).",
        StepOrder::Explicit => "Steps in the order given.",
    };
    html! {
        dl.figures {
            div { dt { "Sessions" } dd { (funnel_data.sessions) } }
            div { dt { "Completed every step" } dd { (funnel_data.completed_sessions) } }
            div { dt { "Overall conversion" } dd { (percent(funnel_data.overall_conversion_rate)) } }
            (conversions_figures(&funnel_data.conversions))
        }
        section aria-labelledby="funnel" {
            h2 id="funnel" { "Funnel" }
            p.hint { (order) " Light bars: sessions that reached a step; dark bars: those that completed it." }
            (funnel(&format!("Funnel of {}", funnel_data.journey_id), funnel_data.sessions, &bars))
            table.funnel-steps {
                caption.visually-hidden { "Funnel steps in order" }
                thead { tr {
                    th scope="col" { "#" } th scope="col" { "Step" } th scope="col" { "Entered" } th scope="col" { "Completed" }
                    th scope="col" { "Conversion from previous" } th scope="col" { "From start" } th scope="col" { "Median time from previous" }
                    th scope="col" { "Reached in any order" } th scope="col" { "Server-confirmed" }
                } }
                tbody { @for step in &funnel_data.steps {
                    tr {
                        td.num { (step.position) }
                        th scope="row" { (step.name.as_deref().unwrap_or(&step.step_id)) @if step.name.is_some() { " " code.step-id { (step.step_id) } } }
                        td.num { (step.entered) }
                        td.num { (step.completed) }
                        td.num { (percent(step.conversion_rate)) }
                        td.num { (percent(step.conversion_rate_from_start)) }
                        td.num { (millis(step.median_ms_from_previous)) }
                        td.num { (step.reached_any_order) }
                        td.num { (step.server_confirmed) }
                    }
                } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journey_links_keep_the_id_one_segment_and_the_range() {
        assert_eq!(
            journey_url("shop", "check out/v2", &[("range", "30d")]),
            "/p/shop/journeys/check%20out%2Fv2?range=30d"
        );
        let params = HashMap::from([("range".to_owned(), "24h".to_owned()), ("steps".to_owned(), "a,b".to_owned())]);
        assert_eq!(range_filters(&params), vec![("range", "24h".to_owned())]);
    }
}
