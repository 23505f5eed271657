//! Web vitals per page (`GET /p/{project}/web-vitals?range=&page=` or the REST API's `from, to,
//! page`): the p75 of LCP, INP, CLS, FCP and TTFB overall and per page, coloured by the API's
//! own good / needs-improvement / poor rating (web.dev thresholds, listed on the page), with the
//! share of observations in each rating. Read with the same function as
//! `GET /api/v1/projects/{project}/web-vitals`. FID, replaced by INP, is shown apart.

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
use super::charts_product::{Shares, rating_bar};
use super::format::{millis, time, url_encode, url_with};
use super::layout::{Section, page};
use super::session::viewer;
use super::sessions::{range_field, take_range};
use crate::api::analytics::vitals::{Rating, Vital, VitalReport, VitalsReport};
use crate::api::web_vitals::{WebVitalsResponse, parse_vitals_params, read_web_vitals};
use crate::server::AppState;
use crate::ui::{here, path_or_404};

/// The vitals shown, in order (FID apart).
const CURRENT: [Vital; 5] = [Vital::Lcp, Vital::Inp, Vital::Cls, Vital::Fcp, Vital::Ttfb];

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/p/{project}/web-vitals", get(web_vitals_page))
}

/// `(abbreviation, full name)` of a vital.
fn names(vital: Vital) -> (&'static str, &'static str) {
    match vital {
        Vital::Lcp => ("LCP", "Largest Contentful Paint"),
        Vital::Inp => ("INP", "Interaction to Next Paint"),
        Vital::Cls => ("CLS", "Cumulative Layout Shift"),
        Vital::Fcp => ("FCP", "First Contentful Paint"),
        Vital::Ttfb => ("TTFB", "Time to First Byte"),
        Vital::Fid => ("FID", "First Input Delay (legacy)"),
    }
}

/// The API's rating as a CSS class suffix and a label.
fn rating_text(rating: Rating) -> (&'static str, &'static str) {
    match rating {
        Rating::Good => ("good", "good"),
        Rating::NeedsImprovement => ("needs-improvement", "needs improvement"),
        Rating::Poor => ("poor", "poor"),
    }
}

/// A vital's value in its unit: CLS as a score, the others as durations.
fn value_text(vital: Vital, value: f64) -> String {
    if vital.unit().is_empty() { format!("{value:.3}") } else { millis(Some(value)) }
}

/// `1 sample`, `3 samples`.
fn samples(count: u64) -> String {
    if count == 1 { "1 sample".into() } else { format!("{count} samples") }
}

fn report_of(vital: Vital, report: &VitalsReport) -> Option<&VitalReport> {
    if vital.is_legacy() { report.legacy.get(vital.key()) } else { report.vitals.get(vital.key()) }
}

async fn web_vitals_page(
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
    let range = take_range(&mut api_params)?;
    let request = parse_vitals_params(&api_params)?;
    let store = state.store.clone();
    let project_id = project.id;
    let response = crate::api::blocking(move || Ok(read_web_vitals(store.as_ref(), project_id, &request)?)).await?;
    let base = format!("/p/{}/web-vitals", url_encode(&project.slug));
    let value = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    let page_link = |page_path: &str| {
        url_with(&base, &[("range", value("range")), ("from", value("from")), ("to", value("to")), ("page", page_path)])
    };
    let body = html! {
        form.filters method="get" action=(base) role="search" aria-label="Filter web vitals" {
            (range_field("Page loads", range, "Last 7 days (default)"))
            label { "Page path " input type="text" name="page" value=(value("page")) placeholder="/checkout"; }
            @for name in ["from", "to"] {
                @if !value(name).is_empty() && range.is_none() { input type="hidden" name=(name) value=(value(name)); }
            }
            button type="submit" { "Filter" }
            a href=(base) { "Clear" }
        }
        p.hint {
            "p" (response.percentile) " of page loads from " (time(response.from_unix_nano)) " to " (time(response.to_unix_nano)) "."
            @if response.truncated { " " strong { "A read limit left observations out; narrow the range for exact figures." } }
        }
        (vitals_body(&response, &page_link))
    };
    Ok(page(&viewer, Section::WebVitals, Some(&project), "Web vitals", body))
}

fn vital_cell(vital: Vital, report: Option<&VitalReport>) -> Markup {
    html! {
        @match report {
            None => { td.vital.empty { "—" } }
            Some(report) => {
                @let (class, label) = rating_text(report.rating);
                td class=(format!("vital rating-{class}")) {
                    span.p75 { (value_text(vital, report.p75)) } " " span class=(format!("badge rating-{class}")) { (label) }
                    (rating_bar(Shares { good: report.shares.good, needs_improvement: report.shares.needs_improvement, poor: report.shares.poor }))
                    span.samples { (samples(report.samples)) }
                }
            }
        }
    }
}

fn vitals_body(response: &WebVitalsResponse, page_link: &dyn Fn(&str) -> String) -> Markup {
    let has_legacy = response.pages.iter().any(|page| !page.report.legacy.is_empty());
    html! {
        @if response.overall.vitals.is_empty() && response.overall.legacy.is_empty() {
            p.empty { "No web vitals in this range. Send " code { "performance" } " product events or web-vital metrics." }
        } @else {
            section aria-labelledby="overall" {
                h2 id="overall" { "All pages" }
                div.vital-cards {
                    @for vital in CURRENT {
                        @let (short, full) = names(vital);
                        @if let Some(report) = report_of(vital, &response.overall) {
                            @let (class, label) = rating_text(report.rating);
                            div class=(format!("vital-card rating-{class}")) {
                                h3 { abbr title=(full) { (short) } }
                                p.p75 { (value_text(vital, report.p75)) }
                                p { span class=(format!("badge rating-{class}")) { (label) } " · " (samples(report.samples)) }
                                (rating_bar(Shares { good: report.shares.good, needs_improvement: report.shares.needs_improvement, poor: report.shares.poor }))
                            }
                        }
                    }
                }
            }
            section aria-labelledby="pages" {
                h2 id="pages" { "By page" }
                table.vitals {
                    caption.visually-hidden { "p75 web vitals per page, most observed first" }
                    thead { tr {
                        th scope="col" { "Page" }
                        @for vital in CURRENT { @let (short, full) = names(vital); th scope="col" { abbr title=(full) { (short) } } }
                        @if has_legacy { th scope="col" { abbr title=(names(Vital::Fid).1) { "FID" } } }
                    } }
                    tbody { @for page in &response.pages {
                        tr {
                            th scope="row" { @match &page.page {
                                Some(path) => { a href=(page_link(path)) { code { (path) } } }
                                None => { span.hint { "(no page)" } }
                            } }
                            @for vital in CURRENT { (vital_cell(vital, report_of(vital, &page.report))) }
                            @if has_legacy { (vital_cell(Vital::Fid, report_of(Vital::Fid, &page.report))) }
                        }
                    } }
                }
                @if response.pages_truncated { p.hint { "Only the most observed pages are listed." } }
            }
        }
        section aria-labelledby="thresholds" {
            h2 id="thresholds" { "Thresholds" }
            table.thresholds {
                caption.visually-hidden { "Rating thresholds of the p75 (web.dev)" }
                thead { tr { th scope="col" { "Vital" } th scope="col" { "Good" } th scope="col" { "Needs improvement" } th scope="col" { "Poor" } } }
                tbody { @for vital in Vital::ALL {
                    @let (good, poor) = vital.thresholds();
                    @let (short, full) = names(vital);
                    tr {
                        th scope="row" { abbr title=(full) { (short) } }
                        td.rating-good { "≤ " (value_text(vital, good)) }
                        td.rating-needs-improvement { (value_text(vital, good)) " – " (value_text(vital, poor)) }
                        td.rating-poor { "> " (value_text(vital, poor)) }
                    }
                } }
            }
        }
        @if !response.metrics.is_empty() || !response.ignored_metrics.is_empty() {
            details.metrics {
                summary { "Metrics read as web vitals" }
                ul {
                    @for metric in &response.metrics { li { code { (metric.name) } " → " (metric.vital) " (" (metric.observations) " observations, unit " (if metric.unit.is_empty() { "none" } else { metric.unit.as_str() }) ")" } }
                    @for metric in &response.ignored_metrics { li { code { (metric.name) } " ignored: " (metric.reason) } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_in_their_unit() {
        assert_eq!(value_text(Vital::Cls, 0.1), "0.100");
        assert_eq!(value_text(Vital::Lcp, 2_500.0), "2.50 s");
        assert_eq!(value_text(Vital::Inp, 200.0), "200.0 ms");
    }

    #[test]
    fn cells_carry_the_apis_rating_not_a_new_one() {
        let report = VitalReport {
            // A p75 under the good threshold the API still rated poor: the page shows "poor".
            p75: 100.0,
            unit: "ms",
            rating: Rating::Poor,
            samples: 4,
            event_samples: 4,
            metric_samples: 0,
            shares: crate::api::analytics::vitals::RatingShares { good: 0.25, needs_improvement: 0.25, poor: 0.5 },
        };
        let html = vital_cell(Vital::Lcp, Some(&report)).into_string();
        assert!(html.contains("rating-poor") && html.contains(">poor<"), "{html}");
        assert!(html.contains("50.0% poor") && html.contains("4 samples"), "{html}");
        assert!(vital_cell(Vital::Lcp, None).into_string().contains("—"));
    }
}
