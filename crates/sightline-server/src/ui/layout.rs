//! The base layout every signed-in page shares: skip link, navigation, the project switcher
//! (keeps the current page), the signed-in user and the sign-out form; and `GET /switch`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};

use super::UiError;
use super::format::url_encode;
use super::session::{Viewer, viewer};
use crate::server::AppState;
use crate::store::Project;

/// URL of the stylesheet (the version busts browser caches on upgrade).
pub const CSS_URL: &str = concat!("/static/app.css?v=", env!("CARGO_PKG_VERSION"));
/// URL of the page script.
pub const JS_URL: &str = concat!("/static/app.js?v=", env!("CARGO_PKG_VERSION"));

/// Which section a page belongs to: highlights the navigation and tells the project switcher
/// where to land in the other project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `/`.
    Overview,
    /// `/p/{project}/issues...`.
    Issues,
    /// `/p/{project}/traces...`.
    Traces,
    /// `/p/{project}/services...`, `/service-map`, `/databases` (`ui::performance`).
    Performance,
    /// `/p/{project}/settings...`.
    Settings,
    /// `/p/{project}/sessions...`.
    Sessions,
    /// `/p/{project}/journeys...`.
    Journeys,
    /// `/p/{project}/web-vitals`.
    WebVitals,
    /// `/p/{project}/logs`.
    Logs,
    /// `/p/{project}/metrics`.
    Metrics,
}

impl Section {
    /// The `page=` value of the switcher.
    fn key(self) -> &'static str {
        match self {
            Section::Overview => "overview",
            Section::Issues => "issues",
            Section::Traces => "traces",
            Section::Performance => "performance",
            Section::Settings => "settings",
            Section::Sessions => "sessions",
            Section::Journeys => "journeys",
            Section::WebVitals => "web-vitals",
            Section::Logs => "logs",
            Section::Metrics => "metrics",
        }
    }

    /// The section's landing page in `project`.
    fn landing(self, project_slug: &str) -> String {
        match self {
            Section::Overview => "/".into(),
            Section::Issues => format!("/p/{}/issues", url_encode(project_slug)),
            Section::Traces => format!("/p/{}/traces", url_encode(project_slug)),
            Section::Performance => format!("/p/{}/services", url_encode(project_slug)),
            Section::Settings => format!("/p/{}/settings", url_encode(project_slug)),
            Section::Sessions => format!("/p/{}/sessions", url_encode(project_slug)),
            Section::Journeys => format!("/p/{}/journeys", url_encode(project_slug)),
            Section::WebVitals => format!("/p/{}/web-vitals", url_encode(project_slug)),
            Section::Logs => format!("/p/{}/logs", url_encode(project_slug)),
            Section::Metrics => format!("/p/{}/metrics", url_encode(project_slug)),
        }
    }

    fn parse(key: &str) -> Option<Self> {
        [
            Section::Overview,
            Section::Issues,
            Section::Traces,
            Section::Performance,
            Section::Sessions,
            Section::Journeys,
            Section::WebVitals,
            Section::Settings,
            Section::Logs,
            Section::Metrics,
        ]
        .into_iter()
        .find(|section| section.key() == key)
    }
}

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/switch", get(switch))
}

/// A full page: `title` goes in `<title>` and `<h1>`, `project` is the current project (none on
/// the overview).
pub fn page(viewer: &Viewer, section: Section, project: Option<&Project>, title: &str, body: Markup) -> Response {
    let current_slug = project.map(|project| project.slug.as_str());
    let switch_target = current_slug.or_else(|| viewer.projects.first().map(|project| project.slug.as_str()));
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) @if let Some(slug) = current_slug { " · " (slug) } " · Sightline" }
                link rel="stylesheet" href=(CSS_URL);
                script src=(JS_URL) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a.brand href="/" { "Sightline" }
                        ul {
                            li { a href="/" aria-current=[(section == Section::Overview).then_some("page")] { "Overview" } }
                            @if let Some(slug) = switch_target {
                                li { a href=(Section::Issues.landing(slug)) aria-current=[(section == Section::Issues).then_some("page")] { "Errors" } }
                                li { a href=(Section::Traces.landing(slug)) aria-current=[(section == Section::Traces).then_some("page")] { "Traces" } }
                                li { a href=(Section::Logs.landing(slug)) aria-current=[(section == Section::Logs).then_some("page")] { "Logs" } }
                                li { a href=(Section::Metrics.landing(slug)) aria-current=[(section == Section::Metrics).then_some("page")] { "Metrics" } }
                                li { a href=(Section::Performance.landing(slug)) aria-current=[(section == Section::Performance).then_some("page")] { "Performance" } }
                                li { a href=(Section::Sessions.landing(slug)) aria-current=[(section == Section::Sessions).then_some("page")] { "Sessions" } }
                                li { a href=(Section::Journeys.landing(slug)) aria-current=[(section == Section::Journeys).then_some("page")] { "Journeys" } }
                                li { a href=(Section::WebVitals.landing(slug)) aria-current=[(section == Section::WebVitals).then_some("page")] { "Web vitals" } }
                                li { a href=(Section::Settings.landing(slug)) aria-current=[(section == Section::Settings).then_some("page")] { "Settings" } }
                            }
                        }
                    }
                    @if !viewer.projects.is_empty() {
                        form.switcher method="get" action="/switch" {
                            input type="hidden" name="page" value=(section.key());
                            label for="project-switcher" { "Project" }
                            select id="project-switcher" name="project" data-autosubmit {
                                @for candidate in &viewer.projects {
                                    option value=(candidate.slug) selected[Some(candidate.slug.as_str()) == switch_target] { (candidate.name) }
                                }
                            }
                            button type="submit" { "Switch" }
                        }
                    }
                    form.signout method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(viewer.csrf_token.expose());
                        span.user { (viewer.user.email) }
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// `GET /switch?project=slug&page=issues`: 303 to the same section in the chosen project (404
/// for a project the viewer is not a member of).
async fn switch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, Some("/".into())).await?;
    let slug = params.get("project").ok_or_else(|| UiError::BadRequest("choose a project".into()))?;
    let project = viewer.project(slug)?;
    let section = match params.get("page").map(String::as_str) {
        None | Some("") => Section::Overview,
        Some(key) => Section::parse(key)
            .ok_or_else(|| UiError::BadRequest(format!("page={key:?} is not a dashboard section")))?,
    };
    Ok(Redirect::to(&section.landing(&project.slug)).into_response())
}
