//! API keys of a project (`GET /p/{project}/settings/keys`): the live keys by name, scope,
//! creation time, prefix and read grants (never a key: only its SHA-256 is stored); a form that
//! creates one (`POST` same), whose answer is the only page that ever shows the new key; and a
//! revoke button per key (`POST .../keys/{id}/revoke`), effective for the next request (the
//! ingest key cache is told).
//!
//! Last use is not recorded by the store, so it is not shown.

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
    settings_page, settings_url, time_ms,
};
use crate::auth::{ApiKeySecret, KeyScope};
use crate::server::AppState;
use crate::store::Project;
use crate::store::api_keys::ApiKeyListing;
use crate::ui::Viewer;
use crate::ui::path_or_404;

/// Longest key name, characters.
const MAX_NAME_CHARS: usize = 100;
/// Scopes offered: (value, label).
const SCOPES: [(&str, &str); 3] = [
    ("ingest", "ingest: send telemetry (safe in browsers and apps)"),
    ("read", "read: query the API"),
    ("all", "all: send, read and change settings"),
];

/// Routes of this page.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/p/{project}/settings/keys", get(show).post(create))
        .route("/p/{project}/settings/keys/{key_id}/revoke", post(revoke))
}

async fn list_keys(state: &AppState, project_id: i64) -> Result<Vec<ApiKeyListing>, UiError> {
    let store = state.store.clone();
    Ok(crate::api::blocking(move || Ok(store.list_api_keys(project_id)?)).await?)
}

async fn show(
    state: SharedState,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, UiError> {
    let (viewer, project) = page_context(&state, &headers, &uri, &path_or_404(path)?).await?;
    let keys = list_keys(&state, project.id).await?;
    Ok(render(&viewer, &project, &keys, None, None))
}

/// What the page shows besides the list: a key just created (its only showing), or a refused
/// creation form.
fn render(
    viewer: &Viewer,
    project: &Project,
    keys: &[ApiKeyListing],
    created: Option<(&ApiKeySecret, &str)>,
    problem: Option<&FormProblem>,
) -> Response {
    let error = FormProblem::for_form(problem, "create-key");
    let body = html! {
        @if let Some((secret, name)) = created {
            section.card.new-key aria-labelledby="new-key-heading" role="status" {
                h2 id="new-key-heading" { "New key " (name) }
                p { strong { "Copy it now: it is shown only on this page and never again." } " Sightline keeps only its SHA-256." }
                label for="new-key" { "The new key" }
                input id="new-key" type="text" readonly value=(secret.expose()) size="50" data-new-key;
                p.hint { "Send it as " code { "Authorization: Bearer <key>" } " or " code { "X-API-Key: <key>" } "." }
            }
        }
        section aria-labelledby="keys-heading" {
            h2 id="keys-heading" { "Keys" }
            @if keys.is_empty() {
                p.empty { "This project has no live keys." }
            } @else {
                table.keys {
                    caption.visually-hidden { "API keys of " (project.name) }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Scope" } th scope="col" { "Key prefix" }
                        th scope="col" { "Created" } th scope="col" { "Also reads" } th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for key in keys {
                            tr {
                                td { @if key.name.is_empty() { span.hint { "(no name)" } } @else { (key.name) } }
                                td { span.badge { (key.scope.as_str()) } }
                                td { code { (key.prefix) "…" } }
                                td { (time_ms(key.created_at_unix_ms)) }
                                td { @if key.read_grants.is_empty() { "—" } @else { (key.read_grants.join(", ")) } }
                                td {
                                    form method="post" action=(settings_url(project, &format!("/keys/{}/revoke", key.id))) {
                                        (csrf_input(viewer))
                                        button.danger type="submit" aria-label=(format!("Revoke key {} ({}…)", key.name, key.prefix)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
                p.hint { "Read grants on other projects are given with " code { "sightline project grant" } "." }
            }
        }
        section aria-labelledby="create-key-heading" {
            h2 id="create-key-heading" { "Create a key" }
            form.stacked.settings-form method="post" action=(settings_url(project, "/keys")) {
                (csrf_input(viewer))
                (form_error(error.as_deref()))
                label for="key-name" { "Name" }
                input id="key-name" name="name" type="text" maxlength=(MAX_NAME_CHARS) required placeholder="checkout-service";
                label for="key-scope" { "Scope" }
                select id="key-scope" name="scope" {
                    @for (value, label) in SCOPES { option value=(value) { (label) } }
                }
                button type="submit" { "Create key" }
            }
        }
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    settings_page(viewer, project, "/keys", "API keys", status, body)
}

/// A key name and scope from the form, or what to fix.
fn parse_new_key(name: &str, scope: &str) -> Result<(String, KeyScope), String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("name: give the key a name of 1 to {MAX_NAME_CHARS} characters"));
    }
    let scope = KeyScope::parse(scope).ok_or_else(|| format!("scope={scope:?}: use ingest, read or all"))?;
    Ok((name.to_owned(), scope))
}

/// `POST /p/{project}/settings/keys` (form: `csrf`, `name`, `scope`): the page with the new key
/// shown once (200, `Cache-Control: no-store`), or 400 with the problem next to the form.
async fn create(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    let pairs = form_pairs(form)?;
    let (viewer, project) = post_context(&state, &headers, &path_or_404(path)?, &pairs).await?;
    let (name, scope) = match parse_new_key(field(&pairs, "name").unwrap_or(""), field(&pairs, "scope").unwrap_or("")) {
        Ok(parsed) => parsed,
        Err(message) => {
            let keys = list_keys(&state, project.id).await?;
            return Ok(render(&viewer, &project, &keys, None, Some(&FormProblem::new("create-key", message))));
        }
    };
    let store = state.store.clone();
    let project_id = project.id;
    let key_name = name.clone();
    let (secret, record) =
        crate::api::blocking(move || Ok(store.create_api_key(project_id, scope, &key_name)?)).await?;
    tracing::info!(project = %project.slug, key_id = record.id, scope = scope.as_str(), by = %viewer.user.email, "API key created in the dashboard");
    let keys = list_keys(&state, project.id).await?;
    Ok(render(&viewer, &project, &keys, Some((&secret, &name)), None))
}

/// `POST /p/{project}/settings/keys/{id}/revoke` (form: `csrf`): 303 back to the list; 404 for a
/// key the project does not have (or no longer has).
async fn revoke(
    state: SharedState,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, UiError> {
    let pairs = form_pairs(form)?;
    let (slug, key_id) = path_or_404(path)?;
    let (viewer, project) = post_context(&state, &headers, &slug, &pairs).await?;
    let store = state.store.clone();
    let project_id = project.id;
    let revoked = crate::api::blocking(move || Ok(store.revoke_api_key(project_id, key_id)?)).await?;
    if !revoked {
        return Err(UiError::NotFound(format!("no live key {key_id} in this project")));
    }
    // Ingest caches key lookups; a revoked key must fail from the next request on.
    state.ingestor.forget_keys_of(project.id);
    tracing::info!(project = %project.slug, key_id, by = %viewer.user.email, "API key revoked in the dashboard");
    Ok(Redirect::to(&settings_url(&project, "/keys")).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.
mod tests {
    use super::*;

    #[test]
    fn new_keys_need_a_name_and_a_known_scope() {
        assert_eq!(parse_new_key("  web  ", "ingest"), Ok(("web".to_owned(), KeyScope::Ingest)));
        assert!(parse_new_key("", "read").unwrap_err().starts_with("name"));
        assert!(parse_new_key(&"x".repeat(101), "read").unwrap_err().starts_with("name"));
        assert!(parse_new_key("ci", "admin").unwrap_err().starts_with("scope"));
    }
}
