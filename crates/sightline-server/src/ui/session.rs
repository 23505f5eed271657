//! Who is looking: the session cookie, the signed-in [`Viewer`] with the projects they may see,
//! and CSRF checks for every form.
//!
//! - Session cookie `sightline_session`: a random [`SecretToken`] (only its SHA-256 is stored),
//!   `HttpOnly; SameSite=Lax; Path=/`, `Secure` when `Config::secure_cookies` is on, valid for
//!   [`SESSION_DAYS`] days. SameSite=Lax keeps it off cross-site POSTs (RFC 6265bis §8.8).
//! - CSRF, signed in: the synchronizer token pattern (OWASP CSRF Prevention Cheat Sheet) with a
//!   token derived from the session token (`SHA-256("sightline-csrf:" + token)`, hex), so it
//!   needs no storage and cannot be computed from what the database holds. Every form carries
//!   it as the hidden field `csrf`; a POST without the right one gets 403.
//! - CSRF, signing in (no session yet): the double-submit cookie pattern with the cookie
//!   `sightline_login_csrf`.

use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};

use super::UiError;
use crate::server::AppState;
use crate::store::Project;
use crate::store::users::User;
use crate::users::SecretToken;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "sightline_session";
/// Name of the sign-in form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "sightline_login_csrf";
/// How long a session lasts, days.
pub const SESSION_DAYS: i64 = 7;

/// A signed-in person and what they may see.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The user.
    pub user: User,
    /// Projects they are a member of, oldest first.
    pub projects: Vec<Project>,
    /// The CSRF token their forms must carry (hex); `Debug` prints nothing of it.
    pub csrf_token: SecretToken,
}

impl Viewer {
    /// The member project with this slug; 404 (not 403) otherwise, so that other projects'
    /// existence is not revealed.
    pub fn project(&self, slug: &str) -> Result<&Project, UiError> {
        self.projects
            .iter()
            .find(|project| project.slug == slug)
            .ok_or_else(|| UiError::NotFound(format!("no project {slug:?} among yours")))
    }

    /// Errors with 403 unless `sent` is this session's CSRF token.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), UiError> {
        match sent {
            Some(sent) if self.csrf_token.matches(sent) => Ok(()),
            _ => Err(UiError::Forbidden(
                "the form's security token is missing or stale; reload the page and try again".into(),
            )),
        }
    }
}

/// The CSRF token of a session token (hex SHA-256 of `sightline-csrf:` + token).
pub fn csrf_token_for(session: &SecretToken) -> SecretToken {
    let digest = Sha256::new().chain_update(b"sightline-csrf:").chain_update(session.expose().as_bytes()).finalize();
    SecretToken::new(const_hex::encode(digest))
}

/// The value of cookie `name` in the request's `Cookie` headers (RFC 6265 §5.4 syntax).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value for `name=value` on `/` with `HttpOnly`, the given SameSite and max-age
/// (seconds; 0 deletes it), and `Secure` when asked.
pub fn set_cookie(name: &str, value: &str, same_site: &str, max_age_seconds: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age_seconds}{secure}");
    // Tokens are alphanumeric, so the value is always a valid header.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The session token sent by the browser, if any.
pub fn session_token(headers: &HeaderMap) -> Option<SecretToken> {
    cookie(headers, SESSION_COOKIE).map(SecretToken::new)
}

/// The signed-in viewer of a request. Without a valid session: [`UiError::SignIn`] carrying
/// `next` (the page to return to after signing in; `None` for form posts, which answer 401).
pub async fn viewer(state: &AppState, headers: &HeaderMap, next: Option<String>) -> Result<Viewer, UiError> {
    let Some(token) = session_token(headers) else {
        return Err(UiError::SignIn(next));
    };
    let store = state.store.clone();
    let token_hash = token.hash();
    let found = crate::api::blocking(move || {
        let Some(session) = store.find_ui_session(&token_hash)? else {
            return Ok(None);
        };
        let projects = store.user_projects(session.user.id)?;
        Ok(Some((session.user, projects)))
    })
    .await?;
    let (user, projects) = found.ok_or(UiError::SignIn(next))?;
    Ok(Viewer { user, projects, csrf_token: csrf_token_for(&token) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; sightline_session=abc"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, "sightline"), None);
    }

    #[test]
    fn set_cookie_has_the_protective_attributes() {
        let value = set_cookie(SESSION_COOKIE, "tok", "Lax", 60, true);
        let text = value.to_str().expect("ascii");
        for part in ["sightline_session=tok", "HttpOnly", "SameSite=Lax", "Max-Age=60", "Secure", "Path=/"] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!set_cookie(SESSION_COOKIE, "tok", "Lax", 60, false).to_str().expect("ascii").contains("Secure"));
    }

    #[test]
    fn csrf_tokens_depend_on_the_session_and_are_checked() {
        let first = SecretToken::generate();
        let second = SecretToken::generate();
        assert_ne!(csrf_token_for(&first), csrf_token_for(&second));
        assert_eq!(csrf_token_for(&first), csrf_token_for(&first));
        let user = User { id: 1, email: "a@b.co".into(), created_at_unix_ms: 0 };
        let viewer = Viewer { user, projects: Vec::new(), csrf_token: csrf_token_for(&first) };
        assert!(viewer.check_csrf(Some(csrf_token_for(&first).expose())).is_ok());
        assert!(matches!(viewer.check_csrf(Some(csrf_token_for(&second).expose())), Err(UiError::Forbidden(_))));
        assert!(!format!("{viewer:?}").contains(csrf_token_for(&first).expose()), "Debug hides the token");
        assert!(matches!(viewer.check_csrf(None), Err(UiError::Forbidden(_))));
    }
}
