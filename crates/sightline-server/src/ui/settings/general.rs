//! Retention and trace sampling of a project (`GET /p/{project}/settings`, `POST` same): the
//! form takes `retention_days` (1 to 3,650) and `trace_sample_rate` (0.0 to 1.0) with the
//! REST API's names and validation (`PATCH /api/v1/projects/{project}`).

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::html;

use super::{
    FormProblem, SharedState, UiError, csrf_input, field, form_error, form_pairs, page_context, post_context,
    problem_or_error, settings_page, settings_url,
};
use crate::api::services::{ProjectSettingsPatch, apply_settings_patch};
use crate::server::AppState;
use crate::store::Project;
use crate::ui::Viewer;
use crate::ui::path_or_404;

/// Routes of this page.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/p/{project}/settings", get(show).post(save))
}

async fn show(
    state: SharedState,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, UiError> {
    let (viewer, project) = page_context(&state, &headers, &uri, &path_or_404(path)?).await?;
    Ok(render(&viewer, &project, None, None))
}

/// The page; after a refused form, `problem` and the values sent (`sent`: retention, rate).
fn render(viewer: &Viewer, project: &Project, problem: Option<&FormProblem>, sent: Option<(&str, &str)>) -> Response {
    let error = FormProblem::for_form(problem, "retention");
    let retention = sent.map_or_else(|| project.retention_days.to_string(), |(days, _)| days.to_owned());
    let rate = sent.map_or_else(|| project.trace_sample_rate.to_string(), |(_, rate)| rate.to_owned());
    let body = html! {
        section aria-labelledby="retention-heading" {
            h2 id="retention-heading" { "Retention and sampling" }
            dl.figures {
                div { dt { "Data kept" } dd { (project.retention_days) " days" } }
                div { dt { "Traces kept at ingest" } dd { (format!("{:.1} %", project.trace_sample_rate * 100.0)) } }
            }
            form.stacked.settings-form method="post" action=(settings_url(project, "")) {
                (csrf_input(viewer))
                div id="retention-error" { (form_error(error.as_deref())) }
                label for="retention_days" { "Retention, days (1 to 3650)" }
                input id="retention_days" name="retention_days" type="number" min="1" max="3650" step="1" value=(retention) required;
                p.hint { "Spans, logs and metric points older than this are deleted in the background." }
                label for="trace_sample_rate" { "Trace sampling rate (0.0 keeps none, 1.0 keeps all)" }
                input id="trace_sample_rate" name="trace_sample_rate" type="number" min="0" max="1" step="any" value=(rate) required;
                p.hint { "Head sampling by trace id: a kept trace keeps all its spans." }
                button type="submit" { "Save retention and sampling" }
            }
        }
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    settings_page(viewer, project, "", "Settings", status, body)
}

/// Reads the form's numbers, naming the field that is not one.
fn parse_form(days: &str, rate: &str) -> Result<ProjectSettingsPatch, String> {
    let retention_days = days
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("retention_days={days:?}: use a whole number of days from 1 to 3650"))?;
    let trace_sample_rate = rate
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|rate| rate.is_finite())
        .ok_or_else(|| format!("trace_sample_rate={rate:?}: use a number from 0.0 to 1.0"))?;
    Ok(ProjectSettingsPatch {
        retention_days: Some(retention_days),
        trace_sample_rate: Some(trace_sample_rate),
        ..ProjectSettingsPatch::default()
    })
}

/// `POST /p/{project}/settings` (form: `csrf`, `retention_days`, `trace_sample_rate`): 303 back,
/// or the page with 400 and the problem next to the form.
async fn save(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    let pairs = form_pairs(form)?;
    let (viewer, project) = post_context(&state, &headers, &path_or_404(path)?, &pairs).await?;
    let days = field(&pairs, "retention_days").unwrap_or("");
    let rate = field(&pairs, "trace_sample_rate").unwrap_or("");
    let refused = |problem: FormProblem| Ok(render(&viewer, &project, Some(&problem), Some((days, rate))));
    let patch = match parse_form(days, rate) {
        Ok(patch) => patch,
        Err(message) => return refused(FormProblem::new("retention", message)),
    };
    if let Err(error) = patch.validate() {
        return refused(problem_or_error("retention", error)?);
    }
    let updated = apply_settings_patch(&state, project.clone(), patch).await?;
    tracing::info!(project = %updated.slug, by = %viewer.user.email, "Settings changed in the dashboard");
    Ok(Redirect::to(&settings_url(&updated, "")).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.
mod tests {
    use super::*;

    #[test]
    fn the_form_numbers_are_read_or_named() {
        let patch = parse_form("7", "0.25").expect("valid");
        assert_eq!((patch.retention_days, patch.trace_sample_rate), (Some(7), Some(0.25)));
        assert!(parse_form("seven", "1").unwrap_err().contains("retention_days"));
        assert!(parse_form("-1", "1").unwrap_err().contains("retention_days"));
        assert!(parse_form("7", "NaN").unwrap_err().contains("trace_sample_rate"));
        assert!(parse_form("0", "1").expect("a number").validate().is_err(), "the API's range applies");
        assert!(parse_form("7", "1.5").expect("a number").validate().is_err());
    }
}
