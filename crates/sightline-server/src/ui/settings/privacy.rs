//! Privacy of a project (`GET /p/{project}/settings/privacy`): what the rules and consent
//! settings say, the settings as a JSON textarea (`POST` same; parsed by the parser of
//! `PUT /api/v1/projects/{project}/privacy`, so a rule that does not compile comes back with
//! 400 and its message next to the field), and the opt-out list with add
//! (`POST .../privacy/opt-outs`, field `user_id`) and remove (`POST .../privacy/opt-outs/remove`).

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;

use super::{
    FormProblem, SharedState, UiError, csrf_input, field, form_error, form_pairs, page_context, post_context,
    problem_or_error, settings_page, settings_url,
};
use crate::privacy::PrivacySettings;
use crate::server::AppState;
use crate::store::Project;
use crate::ui::Viewer;
use crate::ui::path_or_404;

/// Most opt-outs listed on the page (the rest are counted).
const MAX_LISTED_OPT_OUTS: usize = 500;

/// Routes of this page.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/p/{project}/settings/privacy", get(show).post(save))
        .route("/p/{project}/settings/privacy/opt-outs", post(add_opt_out))
        .route("/p/{project}/settings/privacy/opt-outs/remove", post(remove_opt_out))
}

/// The settings in force and the opt-out list.
async fn load(state: &AppState, project_id: i64) -> Result<(PrivacySettings, Vec<String>), UiError> {
    let engine = state.ingestor.privacy().clone();
    let store = state.store.clone();
    Ok(crate::api::blocking(move || {
        let privacy = engine.for_project(project_id)?;
        Ok((privacy.settings.clone(), store.privacy_settings(project_id)?.opt_outs))
    })
    .await?)
}

async fn show(
    state: SharedState,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, UiError> {
    let (viewer, project) = page_context(&state, &headers, &uri, &path_or_404(path)?).await?;
    let (settings, opt_outs) = load(&state, project.id).await?;
    Ok(render(&viewer, &project, &settings, &opt_outs, None, None))
}

/// The settings as the textarea shows them (pretty JSON; never the hash key).
fn settings_text(settings: &PrivacySettings) -> String {
    serde_json::to_value(settings)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| settings.to_json())
}

fn render(
    viewer: &Viewer,
    project: &Project,
    settings: &PrivacySettings,
    opt_outs: &[String],
    problem: Option<&FormProblem>,
    sent_settings: Option<&str>,
) -> Response {
    let settings_error = FormProblem::for_form(problem, "privacy");
    let opt_out_error = FormProblem::for_form(problem, "opt-out");
    let text = sent_settings.map_or_else(|| settings_text(settings), str::to_owned);
    let config = &settings.config;
    let body = html! {
        section aria-labelledby="privacy-now" {
            h2 id="privacy-now" { "In force" }
            dl.figures {
                div { dt { "Scrub before storing" } dd { (if settings.scrub_before_storing { "yes: stored data is scrubbed" } else { "no: forwarding only" }) } }
                div { dt { "Consent attribute" } dd { code { (settings.consent.attribute) } } }
                div { dt { "Without a consent value" } dd { (if settings.consent.require_consent { "not forwarded (opt-in)" } else { "forwarded (opt-out)" }) } }
                div { dt { "Users opted out" } dd { (opt_outs.len()) } }
            }
            @if config.applications.is_empty() {
                p.empty { "No rules apply to any field." }
            } @else {
                table.rules {
                    caption { "Where rules apply" }
                    thead { tr { th scope="col" { "Selector" } th scope="col" { "Rules, in order" } } }
                    tbody { @for (selector, rules) in &config.applications {
                        tr { td { code { (selector) } } td { (rules.join(", ")) } }
                    } }
                }
            }
            @if !config.rules.is_empty() {
                p { "Project rules: " @for (index, id) in config.rules.keys().enumerate() { @if index > 0 { ", " } code { (id) } } }
            }
        }
        section aria-labelledby="privacy-edit" {
            h2 id="privacy-edit" { "Edit the settings" }
            form.stacked.settings-form method="post" action=(settings_url(project, "/privacy")) {
                (csrf_input(viewer))
                label for="privacy-settings" { "Settings (JSON, as " code { "PUT /api/v1/projects/" (project.slug) "/privacy" } " takes them)" }
                div id="privacy-settings-error" { (form_error(settings_error.as_deref())) }
                textarea id="privacy-settings" name="settings" rows="16" spellcheck="false" aria-invalid=[settings_error.as_ref().map(|_| "true")] aria-describedby="privacy-settings-error privacy-settings-hint" { (text) }
                p.hint id="privacy-settings-hint" {
                    "Built-in rules: " code { "@common" } ", " code { "@email" } ", " code { "@ip" } ", " code { "@creditcard" } " and others; "
                    "own rules under " code { "rules" } " (e.g. " code { r#"{"type": "pattern", "pattern": "...", "redaction": {"method": "replace", "text": "[id]"}}"# } "). "
                    "The project's hash key cannot be set."
                }
                button type="submit" { "Save privacy settings" }
            }
        }
        section aria-labelledby="opt-outs" {
            h2 id="opt-outs" { "Opted-out users" }
            p.hint { "Their product events are stored but never forwarded to destinations." }
            form.inline-form method="post" action=(settings_url(project, "/privacy/opt-outs")) {
                (csrf_input(viewer))
                label for="opt-out-user" { "User id (" code { "user.id" } ")" }
                input id="opt-out-user" name="user_id" type="text" required maxlength="2048";
                button type="submit" { "Opt out" }
            }
            (form_error(opt_out_error.as_deref()))
            @if opt_outs.is_empty() {
                p.empty { "Nobody has opted out." }
            } @else {
                table.opt-outs {
                    caption.visually-hidden { "Opted-out users" }
                    thead { tr { th scope="col" { "User id" } th scope="col" { span.visually-hidden { "Actions" } } } }
                    tbody { @for user_id in opt_outs.iter().take(MAX_LISTED_OPT_OUTS) {
                        tr {
                            td { code { (user_id) } }
                            td {
                                form method="post" action=(settings_url(project, "/privacy/opt-outs/remove")) {
                                    (csrf_input(viewer))
                                    input type="hidden" name="user_id" value=(user_id);
                                    button type="submit" aria-label=(format!("Remove {user_id} from the opt-out list")) { "Remove" }
                                }
                            }
                        }
                    } }
                }
                @if opt_outs.len() > MAX_LISTED_OPT_OUTS {
                    p.hint { "Showing " (MAX_LISTED_OPT_OUTS) " of " (opt_outs.len()) "; the API lists all." }
                }
            }
        }
    };
    let status = if problem.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    settings_page(viewer, project, "/privacy", "Privacy", status, body)
}

/// `POST /p/{project}/settings/privacy` (form: `csrf`, `settings` JSON): 303 back, or 400 with
/// the parser's message next to the textarea (which keeps what was sent).
async fn save(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    let pairs = form_pairs(form)?;
    let (viewer, project) = post_context(&state, &headers, &path_or_404(path)?, &pairs).await?;
    let sent = field(&pairs, "settings").unwrap_or("");
    match crate::api::privacy::save_settings(&state, &project, sent.as_bytes()).await {
        Ok(_) => {
            tracing::info!(project = %project.slug, by = %viewer.user.email, "Privacy settings changed in the dashboard");
            Ok(Redirect::to(&settings_url(&project, "/privacy")).into_response())
        }
        Err(error) => {
            let problem = problem_or_error("privacy", error)?;
            let (settings, opt_outs) = load(&state, project.id).await?;
            Ok(render(&viewer, &project, &settings, &opt_outs, Some(&problem), Some(sent)))
        }
    }
}

async fn change_opt_out(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
    opted_out: bool,
) -> Result<Response, UiError> {
    let pairs = form_pairs(form)?;
    let (viewer, project) = post_context(&state, &headers, &path_or_404(path)?, &pairs).await?;
    let user_id = field(&pairs, "user_id").unwrap_or("").trim();
    match crate::api::privacy::set_opt_out(&state, project.id, user_id, opted_out).await {
        Ok(_) => Ok(Redirect::to(&settings_url(&project, "/privacy")).into_response()),
        Err(error) => {
            let problem = problem_or_error("opt-out", error)?;
            let (settings, opt_outs) = load(&state, project.id).await?;
            Ok(render(&viewer, &project, &settings, &opt_outs, Some(&problem), None))
        }
    }
}

/// `POST /p/{project}/settings/privacy/opt-outs` (form: `csrf`, `user_id`): 303 back.
async fn add_opt_out(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    change_opt_out(state, headers, path, form, true).await
}

/// `POST /p/{project}/settings/privacy/opt-outs/remove` (form: `csrf`, `user_id`): 303 back.
async fn remove_opt_out(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    change_opt_out(state, headers, path, form, false).await
}
