//! Project settings (issue 7, item 9), one page per concern under `/p/{project}/settings`:
//!
//! - `GET /p/{project}/settings`, `POST` same: retention and trace sampling ([`general`])
//! - `GET /p/{project}/settings/keys`, `POST` same (create: the key is shown once, on the page
//!   answering the POST), `POST .../keys/{id}/revoke` ([`keys`])
//! - `GET /p/{project}/settings/privacy`, `POST` same (the rules as JSON),
//!   `POST .../privacy/opt-outs` and `POST .../privacy/opt-outs/remove` ([`privacy`])
//! - `GET /p/{project}/settings/destinations`, `POST` same (create), `GET|POST
//!   .../destinations/{id}` (edit), `POST .../{id}/enabled`, `.../{id}/delete`,
//!   `.../{id}/replay` ([`destinations`])
//!
//! Every change goes through the same validation and store calls as the REST API
//! (`crate::api::services`, `api::privacy`, `api::destinations`); any member of the project may
//! change its settings, every POST checks the CSRF field, and a refused form comes back with 400
//! and the message next to it.

mod destinations;
mod general;
mod keys;
mod privacy;

use std::sync::Arc;

use axum::Router;
use axum::extract::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use maud::{Markup, html};

use super::UiError;
use super::format::url_encode;
use super::layout::{Section, page};
use super::session::{Viewer, viewer};
use crate::server::AppState;
use crate::store::Project;
use crate::ui::here;

/// Routes of the settings pages.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().merge(general::routes()).merge(keys::routes()).merge(privacy::routes()).merge(destinations::routes())
}

/// The settings tabs: (path under `/p/{project}/settings`, label).
const TABS: [(&str, &str); 4] =
    [("", "Retention & sampling"), ("/keys", "API keys"), ("/privacy", "Privacy"), ("/destinations", "Destinations")];

/// `/p/{slug}/settings{rest}` with the slug encoded.
fn settings_url(project: &Project, rest: &str) -> String {
    format!("/p/{}/settings{rest}", url_encode(&project.slug))
}

/// A settings page: the tabs (the current one marked) above `body`, answered with `status`
/// (200, or 400 when a form came back with an error) and never cached (a new key's secret is on
/// the page that answers its POST).
fn settings_page(
    viewer: &Viewer,
    project: &Project,
    tab: &str,
    title: &str,
    status: StatusCode,
    body: Markup,
) -> Response {
    let content = html! {
        nav.tabs aria-label="Settings" {
            ul {
                @for (rest, label) in TABS {
                    li { a href=(settings_url(project, rest)) aria-current=[(rest == tab).then_some("page")] { (label) } }
                }
            }
        }
        (body)
    };
    let mut response = page(viewer, Section::Settings, Some(project), title, content);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// The hidden CSRF field every settings form carries.
fn csrf_input(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf_token.expose()); }
}

/// A form's error, shown next to it (`role="alert"` so screen readers announce it).
fn form_error(error: Option<&str>) -> Markup {
    html! { @if let Some(message) = error { p.error-message.form-error role="alert" { (message) } } }
}

/// A refused form: which form, and why (rendered next to that form with 400).
#[derive(Debug, Clone)]
struct FormProblem {
    /// Which form on the page (each page names its forms).
    form: &'static str,
    /// What to fix.
    message: String,
}

impl FormProblem {
    fn new(form: &'static str, message: impl Into<String>) -> Self {
        Self { form, message: message.into() }
    }

    /// The message when it belongs to `form`.
    fn for_form(problem: Option<&FormProblem>, form: &str) -> Option<String> {
        problem.filter(|problem| problem.form == form).map(|problem| problem.message.clone())
    }
}

/// Reads a posted form as pairs; 415 for another content type.
fn form_pairs(form: Result<Form<Vec<(String, String)>>, FormRejection>) -> Result<Vec<(String, String)>, UiError> {
    form.map(|Form(pairs)| pairs).map_err(|rejection| UiError::Status(rejection.status(), rejection.body_text()))
}

/// The first value of field `name`.
fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// The viewer and the member project of a page (303 to sign-in, 404 for non-members).
async fn page_context(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    slug: &str,
) -> Result<(Viewer, Project), UiError> {
    let viewer = viewer(state, headers, here(uri)).await?;
    let project = viewer.project(slug)?.clone();
    Ok((viewer, project))
}

/// The viewer and member project of a form post, after its CSRF check (401 without a session,
/// 403 with a wrong token, 404 for non-members).
async fn post_context(
    state: &AppState,
    headers: &HeaderMap,
    slug: &str,
    pairs: &[(String, String)],
) -> Result<(Viewer, Project), UiError> {
    let viewer = viewer(state, headers, None).await?;
    viewer.check_csrf(field(pairs, "csrf"))?;
    let project = viewer.project(slug)?.clone();
    Ok((viewer, project))
}

/// Splits an API error into a form problem (400: shown next to the form) or a page error.
fn problem_or_error(form: &'static str, error: crate::api::ApiError) -> Result<FormProblem, UiError> {
    if error.status == StatusCode::BAD_REQUEST { Ok(FormProblem::new(form, error.message)) } else { Err(error.into()) }
}

/// Time in ms since the epoch as a `<time>` element.
fn time_ms(unix_ms: i64) -> Markup {
    super::format::time(u64::try_from(unix_ms).unwrap_or(0).saturating_mul(1_000_000))
}

/// State helper so submodules can name the state type briefly.
type SharedState = State<Arc<AppState>>;
