//! Signing in and out: `GET /login` (the form), `POST /login` (e-mail and password checked
//! against the Argon2id hash; a session cookie on success), `POST /logout`.
//!
//! A wrong e-mail and a wrong password get the same answer (401, "wrong e-mail or password")
//! after the same work (an unknown e-mail is verified against a decoy hash), so the form does not
//! reveal who has an account (OWASP Authentication Cheat Sheet, "Authentication and error messages").
//! Attempts are throttled per account and server-wide before any password work
//! ([`super::sign_in_limits`]): 429 with `Retry-After` and the form again.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, html};

use super::UiError;
use super::layout::CSS_URL;
use super::sign_in_limits::retry_after_seconds;
use super::session::{LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_DAYS, cookie, session_token, set_cookie, viewer};
use crate::server::AppState;
use crate::users::{Password, SecretToken, decoy_hash, normalize_email, verify_password};

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/login", get(login_form).post(login)).route("/logout", post(logout))
}

/// Where to go after signing in: a local path only (no `//host` or `https://...`: no open redirect).
fn safe_next(next: Option<&String>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path.clone(),
        _ => "/".into(),
    }
}

/// The sign-in page with a fresh double-submit CSRF token, optionally with an error.
fn form_page(state: &AppState, next: &str, email: &str, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = SecretToken::generate();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · Sightline" }
                link rel="stylesheet" href=(CSS_URL);
            }
            body {
                main.narrow id="main" {
                    h1 { "Sign in to Sightline" }
                    @if let Some(error) = error { p.error-message role="alert" { (error) } }
                    form.stacked method="post" action="/login" {
                        input type="hidden" name="csrf" value=(csrf.expose());
                        input type="hidden" name="next" value=(next);
                        label for="email" { "E-mail" }
                        input id="email" type="email" name="email" value=(email) autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input id="password" type="password" name="password" autocomplete="current-password" required;
                        button type="submit" { "Sign in" }
                    }
                    p.hint { "No account? An administrator creates one with " code { "sightline user create" } "." }
                }
            }
        }
    };
    let cookie = set_cookie(LOGIN_CSRF_COOKIE, csrf.expose(), "Strict", 3600, state.secure_cookies);
    (status, [(header::SET_COOKIE, cookie)], Html(markup.into_string())).into_response()
}

/// `GET /login?next=/path`.
async fn login_form(State(state): State<Arc<AppState>>, Query(params): Query<HashMap<String, String>>) -> Response {
    form_page(&state, &safe_next(params.get("next")), "", None, StatusCode::OK)
}

/// `POST /login` (form: `csrf`, `email`, `password`, `next`): 303 to `next` with the session
/// cookie; 401 with the form again when the credentials are wrong; 403 without the CSRF pair;
/// 429 with `Retry-After` when the account or the server is over its sign-in budget.
async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, UiError> {
    let Form(fields) = form.map_err(|rejection| UiError::Status(rejection.status(), rejection.body_text()))?;
    let sent = fields.get("csrf").map(String::as_str).unwrap_or("");
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).map(SecretToken::new);
    if sent.is_empty() || !expected.is_some_and(|expected| expected.matches(sent)) {
        return Err(UiError::Forbidden(
            "the sign-in form's security token is missing or stale; reload the sign-in page (cookies must be on)"
                .into(),
        ));
    }
    let next = safe_next(fields.get("next"));
    let email_text = fields.get("email").cloned().unwrap_or_default();
    let password = Password::new(fields.get("password").cloned().unwrap_or_default());
    let email = normalize_email(&email_text).ok();
    let account = email.clone().unwrap_or_else(|| email_text.trim().to_lowercase());
    if let Err(wait) = state.sign_in_limits.check(&account) {
        tracing::warn!(retry_after_ms = wait.as_millis() as u64, "Dashboard sign-in throttled");
        let seconds = retry_after_seconds(wait);
        let message = format!("Too many sign-in attempts. Try again in {seconds} s.");
        let mut response = form_page(&state, &next, &email_text, Some(&message), StatusCode::TOO_MANY_REQUESTS);
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        return Ok(response);
    }
    let store = state.store.clone();
    let signed_in = crate::api::blocking(move || {
        let credentials = match &email {
            Some(email) => store.find_user_credentials(email)?,
            None => None,
        };
        let hash = credentials.as_ref().map_or_else(|| decoy_hash().to_owned(), |found| found.password_hash.clone());
        let password_matches = verify_password(&password, &hash);
        let Some(credentials) = credentials.filter(|_| password_matches) else {
            return Ok(None);
        };
        let token = SecretToken::generate();
        let expires_at_unix_ms = crate::store::sqlite::now_unix_ms() + SESSION_DAYS * 86_400_000;
        store.create_ui_session(credentials.user.id, &token.hash(), expires_at_unix_ms)?;
        Ok(Some(token))
    })
    .await?;
    let Some(token) = signed_in else {
        tracing::info!("Dashboard sign-in refused");
        return Ok(form_page(&state, &next, &email_text, Some("Wrong e-mail or password."), StatusCode::UNAUTHORIZED));
    };
    let session_cookie = set_cookie(SESSION_COOKIE, token.expose(), "Lax", SESSION_DAYS * 86_400, state.secure_cookies);
    let clear_login_csrf = set_cookie(LOGIN_CSRF_COOKIE, "", "Strict", 0, state.secure_cookies);
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().append(header::SET_COOKIE, session_cookie);
    response.headers_mut().append(header::SET_COOKIE, clear_login_csrf);
    Ok(response)
}

/// `POST /logout` (form: `csrf`): ends the session, clears the cookie, 303 to `/login`.
async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, UiError> {
    let Form(fields) = form.map_err(|rejection| UiError::Status(rejection.status(), rejection.body_text()))?;
    let viewer = viewer(&state, &headers, None).await?;
    viewer.check_csrf(fields.get("csrf").map(String::as_str))?;
    if let Some(token) = session_token(&headers) {
        let store = state.store.clone();
        crate::api::blocking(move || Ok(store.delete_ui_session(&token.hash())?)).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", "Lax", 0, state.secure_cookies));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        for (given, expected) in [
            (Some("/p/default/issues?status=unresolved"), "/p/default/issues?status=unresolved"),
            (Some("//evil.example/"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("/\\evil.example"), "/"),
            (None, "/"),
        ] {
            assert_eq!(safe_next(given.map(str::to_owned).as_ref()), expected, "{given:?}");
        }
    }
}
