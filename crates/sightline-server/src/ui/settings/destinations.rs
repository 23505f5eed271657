//! Forwarding destinations of a project (`GET /p/{project}/settings/destinations`): each with
//! its delivery state (pending, in flight, delivered, failed = dead-lettered, last error, last
//! success), a creation form (`POST` same: name and the `config` JSON the REST API takes), and a
//! page per destination (`GET /p/{project}/settings/destinations/{id}`) to edit it (`POST` same:
//! name and a JSON merge patch of the settings, so secrets not sent are kept), enable or disable
//! it (`POST .../{id}/enabled`), delete it (`POST .../{id}/delete`) and see its dead letters with
//! a **Replay** button (`POST .../{id}/replay`, all or field `id`) that queues them again.
//!
//! Validation is `crate::api::destinations`'; secrets are never shown back (`"set"` /
//! `"unset"`). Server-wide destinations (environment variables) and the server's OTLP
//! forwarding are shown read-only, without their dead letters, which hold other projects'
//! events.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::Value;

use super::{
    FormProblem, SharedState, UiError, csrf_input, field, form_error, form_pairs, page_context, post_context,
    problem_or_error, settings_page, settings_url, time_ms,
};
use crate::api::ApiError;
use crate::api::destinations::{find, owned, parse_config, parse_name, reload, view};
use crate::server::AppState;
use crate::store::Project;
use crate::store::outbox::{DeadLetter, SERVER_WIDE_PROJECT};
use crate::ui::Viewer;
use crate::ui::path_or_404;

/// Dead letters listed on a destination's page, newest first.
const DEAD_LETTERS_SHOWN: usize = 100;
/// Secret fields of destination settings (`exporters::config`): left out of the edit form's
/// prefilled patch, and ignored when sent back as the masks `"set"` / `"unset"`.
const SECRET_FIELDS: [&str; 4] = ["api_key", "token", "service_account_secret", "secret"];
/// The creation form's example settings.
const CONFIG_EXAMPLE: &str = r#"{"type": "webhook", "url": "https://hooks.example.com/sightline", "secret": "…", "batch": {"interval_ms": 200}}"#;

/// Routes of these pages.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/p/{project}/settings/destinations", get(list).post(create))
        .route("/p/{project}/settings/destinations/{destination_id}", get(detail).post(edit))
        .route("/p/{project}/settings/destinations/{destination_id}/enabled", post(set_enabled))
        .route("/p/{project}/settings/destinations/{destination_id}/delete", post(delete))
        .route("/p/{project}/settings/destinations/{destination_id}/replay", post(replay))
}

/// The OTLP forwarding of the server: (outbox name, redacted settings, queue statistics).
type OtlpView = (String, Value, crate::store::otlp_outbox::OtlpQueueStats);

/// Every destination the project sees, as the API shows them, and the server's OTLP forwarding.
async fn load_all(state: &Arc<AppState>, project_id: i64) -> Result<(Vec<Value>, Vec<OtlpView>), UiError> {
    let state = state.clone();
    Ok(crate::api::blocking(move || {
        let destinations = state.store.list_destinations(Some(project_id))?;
        let views = destinations.iter().map(|destination| view(&state, destination)).collect::<Result<Vec<_>, _>>()?;
        let mut otlp = Vec::new();
        if let Some(forwarding) = state.ingestor.otlp_forwarding() {
            for (name, settings) in forwarding.redacted_destinations() {
                let stats = state.store.otlp_outbox_stats(&name)?;
                otlp.push((name, settings, stats));
            }
        }
        Ok((views, otlp))
    })
    .await?)
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn count(value: &Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

fn when(value: &Value, pointer: &str) -> Markup {
    match value.pointer(pointer).and_then(Value::as_i64) {
        Some(unix_ms) => time_ms(unix_ms),
        None => html! { "never" },
    }
}

fn is_server_wide(destination: &Value) -> bool {
    text(destination, "/scope") == "server"
}

/// The settings for display: secrets masked (they are `"set"` / `"unset"` already).
fn masked_config(destination: &Value) -> String {
    let mut config = destination.get("config").cloned().unwrap_or(Value::Null);
    if let Some(object) = config.as_object_mut() {
        for name in SECRET_FIELDS {
            if let Some(Value::String(state)) = object.get(name) {
                let shown = if state == "set" { "•••••• (set)" } else { "(unset)" };
                object.insert(name.into(), Value::from(shown));
            }
        }
    }
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

/// The edit form's prefilled patch: the settings without the secret fields.
fn editable_config(destination: &Value) -> String {
    let mut config = destination.get("config").cloned().unwrap_or(Value::Null);
    if let Some(object) = config.as_object_mut() {
        for name in SECRET_FIELDS {
            object.remove(name);
        }
    }
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

fn state_badge(destination: &Value) -> Markup {
    let enabled = destination.get("enabled").and_then(Value::as_bool).unwrap_or(false);
    let failing = !text(destination, "/state/last_error").is_empty()
        && destination.pointer("/state/last_error_at_unix_ms").and_then(Value::as_i64)
            > destination.pointer("/state/last_delivered_at_unix_ms").and_then(Value::as_i64);
    html! {
        @if !enabled { span.badge { "disabled" } }
        @else if failing { span.badge.status-failing { "failing" } }
        @else { span.badge.status-healthy { "enabled" } }
    }
}

fn list_page(
    viewer: &Viewer,
    project: &Project,
    destinations: &[Value],
    otlp: &[OtlpView],
    problem: Option<&FormProblem>,
    sent: Option<(&str, &str)>,
) -> Response {
    let error = FormProblem::for_form(problem, "create-destination");
    let (sent_name, sent_config) = sent.unwrap_or(("", ""));
    let body = html! {
        section aria-labelledby="destinations-heading" {
            h2 id="destinations-heading" { "Destinations" }
            @if destinations.is_empty() {
                p.empty { "No destinations: product events are stored and not forwarded." }
            } @else {
                table.destinations {
                    caption.visually-hidden { "Destinations and their delivery state" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "State" }
                        th scope="col" { "Pending" } th scope="col" { "Delivered" } th scope="col" { "Failed (dead letters)" }
                        th scope="col" { "Last success" } th scope="col" { "Last error" }
                    } }
                    tbody { @for destination in destinations {
                        tr {
                            td {
                                a href=(settings_url(project, &format!("/destinations/{}", count(destination, "/id")))) { (text(destination, "/name")) }
                                @if is_server_wide(destination) { " " span.badge { "server-wide" } }
                            }
                            td { (text(destination, "/type")) }
                            td { (state_badge(destination)) }
                            td.num { (count(destination, "/state/queued") + count(destination, "/state/in_flight")) }
                            td.num { (count(destination, "/state/delivered")) }
                            td.num { (count(destination, "/state/dead_lettered")) }
                            td { (when(destination, "/state/last_delivered_at_unix_ms")) }
                            td {
                                @let last_error = text(destination, "/state/last_error");
                                @if last_error.is_empty() { "—" } @else { span.error-text { (last_error) } br; (when(destination, "/state/last_error_at_unix_ms")) }
                            }
                        }
                    } }
                }
            }
        }
        @if !otlp.is_empty() {
            section aria-labelledby="otlp-heading" {
                h2 id="otlp-heading" { "OTLP forwarding (server-wide, read-only)" }
                p.hint { "Set with " code { "--forward-otlp-endpoint" } " / " code { "SIGHTLINE_FORWARD_OTLP_*" } "; every project's telemetry goes there." }
                @for (name, settings, stats) in otlp {
                    div.card {
                        h3 { (name) " → " code { (text(settings, "/endpoint")) } }
                        dl.figures {
                            div { dt { "Protocol" } dd { (settings.get("protocol").map(|value| value.to_string().trim_matches('"').to_owned()).unwrap_or_default()) } }
                            div { dt { "Pending requests" } dd { (stats.queued_payloads) } }
                            div { dt { "Pending items" } dd { (stats.queued_items) } }
                            div { dt { "Dead letters" } dd { (stats.dead_letters) } }
                            div { dt { "Oldest pending" } dd { @match stats.oldest_enqueued_unix_ms { Some(ms) => (time_ms(ms)), None => "—" } } }
                        }
                        @let headers: Vec<&String> = settings.get("headers").and_then(Value::as_object).map(|headers| headers.keys().collect()).unwrap_or_default();
                        @if !headers.is_empty() { p.hint { "Headers (values hidden): " @for name in headers { code { (name) } " " } } }
                    }
                }
            }
        }
        section aria-labelledby="create-destination-heading" {
            h2 id="create-destination-heading" { "Add a destination" }
            form.stacked.settings-form method="post" action=(settings_url(project, "/destinations")) {
                (csrf_input(viewer))
                (form_error(error.as_deref()))
                label for="destination-name" { "Name" }
                input id="destination-name" name="name" type="text" maxlength="128" required value=(sent_name);
                label for="destination-config" { "Settings (JSON: " code { "type" } " amplitude, mixpanel or webhook, and its fields)" }
                textarea id="destination-config" name="config" rows="6" spellcheck="false" required placeholder=(CONFIG_EXAMPLE) { (sent_config) }
                label.checkbox { input type="checkbox" name="enabled" value="true" checked; " Deliver at once (else created disabled)" }
                button type="submit" { "Add destination" }
            }
        }
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    settings_page(viewer, project, "/destinations", "Destinations", status, body)
}

async fn list(
    state: SharedState,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, UiError> {
    let (viewer, project) = page_context(&state, &headers, &uri, &path_or_404(path)?).await?;
    let (destinations, otlp) = load_all(&state, project.id).await?;
    Ok(list_page(&viewer, &project, &destinations, &otlp, None, None))
}

/// `POST /p/{project}/settings/destinations` (form: `csrf`, `name`, `config` JSON, `enabled`):
/// 303 to the new destination's page, or 400 with the problem next to the form.
async fn create(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    let pairs = form_pairs(form)?;
    let (viewer, project) = post_context(&state, &headers, &path_or_404(path)?, &pairs).await?;
    let name = field(&pairs, "name").unwrap_or("");
    let config_text = field(&pairs, "config").unwrap_or("");
    let enabled = field(&pairs, "enabled") == Some("true");
    let parsed = parse_name(Some(&Value::from(name))).and_then(|name| {
        let config: Value = serde_json::from_str(config_text)
            .map_err(|error| ApiError::invalid(format!("config is not valid JSON: {error}")))?;
        Ok((name.unwrap_or_default(), parse_config(config)?))
    });
    let (name_checked, config) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let problem = problem_or_error("create-destination", error)?;
            let (destinations, otlp) = load_all(&state, project.id).await?;
            return Ok(list_page(&viewer, &project, &destinations, &otlp, Some(&problem), Some((name, config_text))));
        }
    };
    let worker_state = state.0.clone();
    let project_id = project.id;
    let created = crate::api::blocking(move || {
        let destination = worker_state.store.create_destination(project_id, &name_checked, enabled, &config)?;
        reload(&worker_state);
        Ok(destination)
    })
    .await;
    match created {
        Ok(destination) => {
            tracing::info!(project = %project.slug, destination = %destination.name, by = %viewer.user.email, "Destination created in the dashboard");
            Ok(Redirect::to(&settings_url(&project, &format!("/destinations/{}", destination.id))).into_response())
        }
        Err(error) => {
            // A taken name is a conflict the API answers with 400 too.
            let problem = problem_or_error("create-destination", error)?;
            let (destinations, otlp) = load_all(&state, project.id).await?;
            Ok(list_page(&viewer, &project, &destinations, &otlp, Some(&problem), Some((name, config_text))))
        }
    }
}

/// One destination as the API shows it, with its newest dead letters (none for server-wide
/// destinations: they hold other projects' events).
async fn load_one(
    state: &Arc<AppState>,
    project_id: i64,
    destination_id: i64,
) -> Result<(Value, Vec<DeadLetter>), UiError> {
    let state = state.clone();
    Ok(crate::api::blocking(move || {
        let destination = find(&state, project_id, destination_id)?;
        let letters = if destination.project_id == SERVER_WIDE_PROJECT {
            Vec::new()
        } else {
            state.store.dead_letters(destination_id, None, DEAD_LETTERS_SHOWN, None)?
        };
        Ok((view(&state, &destination)?, letters))
    })
    .await?)
}

fn detail_page(
    viewer: &Viewer,
    project: &Project,
    destination: &Value,
    letters: &[DeadLetter],
    problem: Option<&FormProblem>,
    sent: Option<(&str, &str)>,
) -> Response {
    let id = count(destination, "/id");
    let base = settings_url(project, &format!("/destinations/{id}"));
    let server_wide = is_server_wide(destination);
    let enabled = destination.get("enabled").and_then(Value::as_bool).unwrap_or(false);
    let edit_error = FormProblem::for_form(problem, "edit-destination");
    let (sent_name, sent_config) = match sent {
        Some((name, config)) => (name.to_owned(), config.to_owned()),
        None => (text(destination, "/name").to_owned(), editable_config(destination)),
    };
    let dead_lettered = count(destination, "/state/dead_lettered");
    let title = format!("Destination {}", text(destination, "/name"));
    let body = html! {
        p { a href=(settings_url(project, "/destinations")) { "← All destinations" } }
        p.lead { (text(destination, "/type")) " " (state_badge(destination)) @if server_wide { " " span.badge { "server-wide, read-only" } } }
        dl.figures {
            div { dt { "Pending" } dd { (count(destination, "/state/queued")) } }
            div { dt { "In flight" } dd { (count(destination, "/state/in_flight")) } }
            div { dt { "Delivered" } dd { (count(destination, "/state/delivered")) } }
            div { dt { "Failed (dead letters)" } dd { (dead_lettered) } }
            div { dt { "Dropped by routing" } dd { (count(destination, "/state/filtered")) } }
            div { dt { "Last success" } dd { (when(destination, "/state/last_delivered_at_unix_ms")) } }
            div { dt { "Last error" } dd { (when(destination, "/state/last_error_at_unix_ms")) } }
        }
        @let last_error = text(destination, "/state/last_error");
        @if !last_error.is_empty() { p.error-message { "Last error: " (last_error) } }
        @if !server_wide {
            div.actions {
                form method="post" action=(format!("{base}/enabled")) {
                    (csrf_input(viewer))
                    input type="hidden" name="enabled" value=(if enabled { "false" } else { "true" });
                    button type="submit" { (if enabled { "Disable" } else { "Enable" }) }
                }
                form method="post" action=(format!("{base}/delete")) {
                    (csrf_input(viewer))
                    button.danger type="submit" { "Delete destination" }
                }
            }
            section aria-labelledby="dead-heading" {
                h2 id="dead-heading" { "Dead letters" }
                @if letters.is_empty() {
                    p.empty { "No dead letters: nothing was refused for good." }
                } @else {
                    form method="post" action=(format!("{base}/replay")) {
                        (csrf_input(viewer))
                        button type="submit" { "Replay all " (dead_lettered.max(letters.len() as u64)) " dead letters" }
                    }
                    table.dead-letters {
                        caption.visually-hidden { "Dead letters, newest first" }
                        thead { tr {
                            th scope="col" { "Event" } th scope="col" { "Reason" } th scope="col" { "Last response" }
                            th scope="col" { "Attempts" } th scope="col" { "Parked" } th scope="col" { span.visually-hidden { "Actions" } }
                        } }
                        tbody { @for letter in letters {
                            tr {
                                td { code { (letter.event_id) } }
                                td { (letter.reason) }
                                td { @if let Some(response) = &letter.last_response { code.response { (response) } } @else { "—" } }
                                td.num { (letter.attempts) }
                                td { (time_ms(letter.dead_at_unix_ms)) }
                                td {
                                    form method="post" action=(format!("{base}/replay")) {
                                        (csrf_input(viewer))
                                        input type="hidden" name="id" value=(letter.id);
                                        button type="submit" aria-label=(format!("Replay event {}", letter.event_id)) { "Replay" }
                                    }
                                }
                            }
                        } }
                    }
                }
            }
            section aria-labelledby="edit-heading" {
                h2 id="edit-heading" { "Edit" }
                form.stacked.settings-form method="post" action=(base) {
                    (csrf_input(viewer))
                    (form_error(edit_error.as_deref()))
                    label for="edit-name" { "Name" }
                    input id="edit-name" name="name" type="text" maxlength="128" required value=(sent_name);
                    label for="edit-config" { "Settings to change (JSON merge patch)" }
                    textarea id="edit-config" name="config" rows="10" spellcheck="false" aria-describedby="edit-config-hint" { (sent_config) }
                    p.hint id="edit-config-hint" { "Secrets are not shown and are kept unless you add them, e.g. " code { r#""secret": "new value""# } "; " code { "null" } " removes a field." }
                    button type="submit" { "Save destination" }
                }
            }
        } @else {
            p.hint { "Server-wide destinations are set with environment variables and changed there; their dead letters hold every project's events and are replayed through the API." }
        }
        section aria-labelledby="config-heading" {
            h2 id="config-heading" { "Settings now" }
            pre.config aria-label="Settings, secrets hidden" { (masked_config(destination)) }
        }
    };
    let status = if edit_error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    settings_page(viewer, project, "/destinations", &title, status, body)
}

async fn detail(
    state: SharedState,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, i64)>, PathRejection>,
) -> Result<Response, UiError> {
    let (slug, destination_id) = path_or_404(path)?;
    let (viewer, project) = page_context(&state, &headers, &uri, &slug).await?;
    let (destination, letters) = load_one(&state, project.id, destination_id).await?;
    Ok(detail_page(&viewer, &project, &destination, &letters, None, None))
}

/// The edit form's patch: `config` as a JSON object (empty = no change), secret masks dropped.
fn parse_patch(config_text: &str) -> Result<Option<Value>, ApiError> {
    if config_text.trim().is_empty() {
        return Ok(None);
    }
    let mut patch: Value = serde_json::from_str(config_text)
        .map_err(|error| ApiError::invalid(format!("config is not valid JSON: {error}")))?;
    let object = patch.as_object_mut().ok_or_else(|| ApiError::invalid("config must be a JSON object"))?;
    for name in SECRET_FIELDS {
        if matches!(object.get(name).and_then(Value::as_str), Some("set" | "unset")) {
            object.remove(name);
        }
    }
    Ok(Some(patch))
}

/// A destination of the project that this project owns (404 otherwise, 403 for server-wide).
fn owned_destination(
    state: &AppState,
    project_id: i64,
    destination_id: i64,
) -> Result<crate::store::outbox::Destination, ApiError> {
    let destination = find(state, project_id, destination_id)?;
    owned(&destination)?;
    Ok(destination)
}

/// `POST /p/{project}/settings/destinations/{id}` (form: `csrf`, `name`, `config` merge patch):
/// 303 back, or 400 with the problem next to the form.
async fn edit(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    let pairs = form_pairs(form)?;
    let (slug, destination_id) = path_or_404(path)?;
    let (viewer, project) = post_context(&state, &headers, &slug, &pairs).await?;
    let name = field(&pairs, "name").unwrap_or("").to_owned();
    let config_text = field(&pairs, "config").unwrap_or("").to_owned();
    let worker_state = state.0.clone();
    let project_id = project.id;
    let (patch_name, patch_text) = (name.clone(), config_text.clone());
    let result = crate::api::blocking(move || {
        let destination = owned_destination(&worker_state, project_id, destination_id)?;
        let name = parse_name(Some(&Value::from(patch_name)))?.unwrap_or_else(|| destination.name.clone());
        let config = match parse_patch(&patch_text)? {
            None => destination.config.clone(),
            Some(patch) => {
                let mut stored = serde_json::to_value(&destination.config)
                    .map_err(|error| ApiError::invalid(format!("stored settings unreadable: {error}")))?;
                crate::exporters::config::merge_patch(&mut stored, &patch);
                parse_config(stored)?
            }
        };
        let updated = worker_state.store.update_destination(destination_id, &name, destination.enabled, &config)?;
        reload(&worker_state);
        Ok(updated)
    })
    .await;
    match result {
        Ok(updated) => {
            tracing::info!(project = %project.slug, destination = %updated.name, by = %viewer.user.email, "Destination changed in the dashboard");
            Ok(Redirect::to(&settings_url(&project, &format!("/destinations/{destination_id}"))).into_response())
        }
        Err(error) => {
            let problem = problem_or_error("edit-destination", error)?;
            let (destination, letters) = load_one(&state, project.id, destination_id).await?;
            Ok(detail_page(&viewer, &project, &destination, &letters, Some(&problem), Some((&name, &config_text))))
        }
    }
}

/// `POST .../destinations/{id}/enabled` (form: `csrf`, `enabled` = `true` | `false`): 303 back.
async fn set_enabled(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    let pairs = form_pairs(form)?;
    let (slug, destination_id) = path_or_404(path)?;
    let (_, project) = post_context(&state, &headers, &slug, &pairs).await?;
    let enabled = match field(&pairs, "enabled") {
        Some("true") => true,
        Some("false") => false,
        other => return Err(UiError::BadRequest(format!("enabled={other:?}: use true or false"))),
    };
    let worker_state = state.0.clone();
    let project_id = project.id;
    crate::api::blocking(move || {
        let destination = owned_destination(&worker_state, project_id, destination_id)?;
        worker_state.store.update_destination(destination_id, &destination.name, enabled, &destination.config)?;
        reload(&worker_state);
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&settings_url(&project, &format!("/destinations/{destination_id}"))).into_response())
}

/// `POST .../destinations/{id}/delete` (form: `csrf`): 303 to the list.
async fn delete(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    let pairs = form_pairs(form)?;
    let (slug, destination_id) = path_or_404(path)?;
    let (viewer, project) = post_context(&state, &headers, &slug, &pairs).await?;
    let worker_state = state.0.clone();
    let project_id = project.id;
    crate::api::blocking(move || {
        owned_destination(&worker_state, project_id, destination_id)?;
        worker_state.store.delete_destination(destination_id)?;
        reload(&worker_state);
        Ok(())
    })
    .await?;
    tracing::info!(project = %project.slug, destination_id, by = %viewer.user.email, "Destination deleted in the dashboard");
    Ok(Redirect::to(&settings_url(&project, "/destinations")).into_response())
}

/// `POST .../destinations/{id}/replay` (form: `csrf`, optional `id` of one dead letter): the
/// dead letters go back to the outbox (attempts reset); 303 back to the destination.
async fn replay(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    let pairs = form_pairs(form)?;
    let (slug, destination_id) = path_or_404(path)?;
    let (viewer, project) = post_context(&state, &headers, &slug, &pairs).await?;
    let ids = match field(&pairs, "id").filter(|id| !id.is_empty()) {
        None => None,
        Some(id) => Some(vec![
            id.parse::<i64>().map_err(|_| UiError::BadRequest(format!("id={id:?} is not a dead-letter id")))?,
        ]),
    };
    let worker_state = state.0.clone();
    let project_id = project.id;
    let replayed = crate::api::blocking(move || {
        owned_destination(&worker_state, project_id, destination_id)?;
        Ok(worker_state.store.replay_dead_letters(destination_id, None, ids.as_deref())?)
    })
    .await?;
    tracing::info!(project = %project.slug, destination_id, replayed, by = %viewer.user.email, "Dead letters replayed in the dashboard");
    Ok(Redirect::to(&settings_url(&project, &format!("/destinations/{destination_id}"))).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_left_out_of_the_edit_form() {
        let destination =
            serde_json::json!({"config": {"type": "webhook", "url": "https://h.example", "secret": "set"}});
        let shown = masked_config(&destination);
        assert!(shown.contains("•••••• (set)") && shown.contains("https://h.example"), "{shown}");
        let editable = editable_config(&destination);
        assert!(!editable.contains("secret"), "{editable}");
    }

    #[test]
    fn the_edit_patch_ignores_secret_masks_and_names_bad_json() {
        let patch = parse_patch(r#"{"secret": "set", "url": "https://new.example"}"#).expect("valid").expect("a patch");
        assert_eq!(patch, serde_json::json!({"url": "https://new.example"}));
        let patch = parse_patch(r#"{"secret": "rotated"}"#).expect("valid").expect("a patch");
        assert_eq!(patch["secret"], "rotated", "a real new secret is applied");
        assert_eq!(parse_patch("  ").expect("valid"), None);
        assert!(parse_patch("{oops").unwrap_err().message.contains("not valid JSON"));
        assert!(parse_patch("[1]").unwrap_err().message.contains("object"));
    }
}
