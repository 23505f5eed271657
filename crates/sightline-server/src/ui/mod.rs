//! The web dashboard at `/`: server-rendered HTML (maud) with a small project-written script and
//! stylesheet embedded in the binary, so `cargo run` serves it with no front-end build step.
//!
//! Pages (all need a signed-in session; a user sees only the projects they are a member of, and
//! any other project's pages answer 404):
//! - `GET /login`, `POST /login`, `POST /logout` ([`sign_in`])
//! - `GET /` overview across the viewer's projects ([`overview`])
//! - `GET /switch?project=&page=` project switcher keeping the current page ([`layout`])
//! - `GET /p/{project}/issues`, `GET /p/{project}/issues/{id}`, `POST .../issues/status`,
//!   `POST .../issues/{id}/status` ([`issues`])
//! - `GET /p/{project}/traces`, `GET /p/{project}/traces/{trace_id}` ([`traces`])
//! - `GET /p/{project}/services`, `.../services/{service}` ([`performance`]),
//!   `.../services/{service}/endpoints/{operation}` ([`endpoint`]), `.../services/{service}/system`
//!   ([`system`]), `/p/{project}/databases` ([`databases`]), `/p/{project}/service-map`
//!   ([`service_map`])
//! - `/p/{project}/settings/...`: retention and sampling, API keys, privacy, destinations
//!   ([`settings`])
//! - `GET /p/{project}/sessions`, `GET /p/{project}/sessions/{session_id}` ([`sessions`])
//! - `GET /p/{project}/journeys`, `GET /p/{project}/journeys/{journey_id}` ([`journeys`])
//! - `GET /p/{project}/web-vitals` ([`web_vitals`])
//! - `GET /p/{project}/logs`, `GET /p/{project}/logs/tail` (Server-Sent Events) ([`logs`])
//! - `GET /p/{project}/metrics` metrics explorer ([`metrics`])
//! - `GET /static/{file}` embedded CSS / JS, cached by browsers for a day
//!
//! Filters live in the query string with the same names as the REST API's, so a page's URL is
//! shareable and maps one to one to an `/api/v1` call.

mod charts;
mod charts_lines;
mod charts_product;
mod charts_series;
mod databases;
mod endpoint;
mod format;
mod issues;
mod journeys;
mod layout;
mod logs;
mod metrics;
mod overview;
mod performance;
mod service_map;
mod session;
mod sessions;
mod settings;
mod sign_in;
pub mod sign_in_limits;
mod system;
mod traces;
mod web_vitals;

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::Uri;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, html};

use crate::api::ApiError;
use crate::server::AppState;

pub use session::{SESSION_COOKIE, Viewer};

/// Why a page could not be shown. Every variant renders a page that shows no project data.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No valid session: 303 to `/login?next=...` for pages (`Some(next)`), 401 for form posts.
    #[error("sign in first")]
    SignIn(Option<String>),
    /// 400: a filter or form field is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 403: CSRF token missing or wrong.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such page, or a project / issue / trace the viewer may not see.
    #[error("{0}")]
    NotFound(String),
    /// Any other status with a message (from the API layer: 413, 415, 503, ...).
    #[error("{1}")]
    Status(StatusCode, String),
}

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        match error.status {
            StatusCode::BAD_REQUEST => UiError::BadRequest(error.message),
            StatusCode::NOT_FOUND => UiError::NotFound(error.message),
            status => UiError::Status(status, error.message),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = match &self {
            UiError::SignIn(Some(next)) => {
                return Redirect::to(&format!("/login?next={}", format::url_encode(next))).into_response();
            }
            UiError::SignIn(None) => StatusCode::UNAUTHORIZED,
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::Forbidden(_) => StatusCode::FORBIDDEN,
            UiError::NotFound(_) => StatusCode::NOT_FOUND,
            UiError::Status(status, _) => *status,
        };
        let reason = status.canonical_reason().unwrap_or("Error");
        let message = self.to_string();
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (status.as_u16()) " " (reason) " · Sightline" }
                    link rel="stylesheet" href=(layout::CSS_URL);
                }
                body {
                    main.narrow id="main" {
                        h1 { (status.as_u16()) " " (reason) }
                        p.error-message role="alert" { (message) }
                        p { a href="/" { "Back to the overview" } " · " a href="/login" { "Sign in" } }
                    }
                }
            }
        };
        (status, Html(markup.into_string())).into_response()
    }
}

/// The request's path and query, for `/login?next=` when the viewer must sign in first.
pub(crate) fn here(uri: &Uri) -> Option<String> {
    Some(uri.path_and_query().map_or_else(|| uri.path().to_owned(), |path| path.as_str().to_owned()))
}

/// The path parameters, or 404 (a page that does not exist) when they do not parse.
pub(crate) fn path_or_404<T>(path: Result<Path<T>, PathRejection>) -> Result<T, UiError> {
    path.map(|Path(value)| value).map_err(|rejection| UiError::NotFound(rejection.body_text()))
}

/// Routes of the dashboard, to merge into the HTTP router.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/static/{file}", get(static_file))
        .merge(sign_in::routes())
        .merge(layout::routes())
        .merge(overview::routes())
        .merge(issues::routes())
        .merge(traces::routes())
        .merge(performance::routes())
        .merge(settings::routes())
        .merge(sessions::routes())
        .merge(journeys::routes())
        .merge(web_vitals::routes())
        .merge(logs::routes())
        .merge(metrics::routes())
}

/// The dashboard's stylesheet and script, embedded at compile time.
const STATIC_FILES: [(&str, &str, &str); 2] = [
    ("app.css", "text/css; charset=utf-8", include_str!("static/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("static/app.js")),
];

/// `GET /static/{file}`: embedded assets with `Cache-Control: public, max-age=86400` (URLs
/// carry the version, `?v=`, so a new release is fetched anew); 404 for other names.
async fn static_file(Path(file): Path<String>) -> Response {
    match STATIC_FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=86400")], *body)
                .into_response()
        }
        None => UiError::NotFound(format!("no static file {file:?}")).into_response(),
    }
}
