//! The dashboard's HTML endpoints over plain HTTP: no page shows data without a session, a user
//! sees only the projects they are a member of (404 for the others, also for a foreign issue or
//! trace through their own project's URL), forms need their CSRF token (403 without), sign-in
//! refuses wrong credentials alike and throttles guessing (429 with `Retry-After`), and sign-out
//! ends the session; the overview counts ingest per signal. Data is real SDK traffic.

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

mod common;

use common::TestServer;
use common::dashboard::{create_user, csrf_field, plain_client, send_checkout_trace, set_cookies, sign_in};
use sightline_server::auth::KeyScope;

const ALICE: (&str, &str) = ("alice@example.com", "alice-password-1");
const BOB: (&str, &str) = ("bob@example.com", "bob-password-22");

/// Two projects with one checkout failure each; Alice is in `default`, Bob in `other-team`.
struct Fixture {
    server: TestServer,
    /// (issue id, trace id) in `default`.
    default_issue: (i64, String),
    /// (issue id, trace id) in `other-team`.
    other_issue: (i64, String),
}

async fn fixture() -> Fixture {
    let server = TestServer::start().await;
    let store = server.server.as_ref().unwrap().store.clone();
    let other = store.create_project("Other team").unwrap();
    let (other_key, _) = store.create_api_key(other.id, KeyScope::All, "other").unwrap();
    create_user(&server, ALICE.0, ALICE.1, &["default"]);
    create_user(&server, BOB.0, BOB.1, &["other-team"]);
    let default_trace = send_checkout_trace(&server, &server.ingest_key.clone(), "checkout-api").await;
    let other_trace = send_checkout_trace(&server, other_key.expose(), "billing-secret-service").await;
    let first_issue = |slug: &str| {
        let project = store.find_project(slug).unwrap().unwrap();
        let query = sightline_server::store::errors::IssueQuery { limit: 10, ..Default::default() };
        store.list_issues(project.id, &query).unwrap().items[0].id
    };
    Fixture {
        default_issue: (first_issue("default"), default_trace),
        other_issue: (first_issue("other-team"), other_trace),
        server,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_shows_data_without_a_session() {
    let fixture = fixture().await;
    let base = fixture.server.http_base();
    let (issue_id, trace_id) = &fixture.default_issue;
    let client = plain_client();
    let pages = [
        "/".to_owned(),
        "/p/default/issues".to_owned(),
        "/p/default/issues?status=unresolved&q=JSON".to_owned(),
        format!("/p/default/issues/{issue_id}"),
        "/p/default/traces".to_owned(),
        format!("/p/default/traces/{trace_id}"),
        "/switch?project=default&page=issues".to_owned(),
    ];
    for cookie in [None, Some("sightline_session=forged-token"), Some("sightline_session=")] {
        for page in &pages {
            let mut request = client.get(format!("{base}{page}"));
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 303, "{page} with {cookie:?}");
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            assert!(location.starts_with("/login?next=%2F") || location.starts_with("/login?next=/"), "{location}");
            let body = response.text().await.unwrap();
            for secret in ["JSONDecodeError", "checkout", trace_id.as_str()] {
                assert!(!body.contains(secret), "{page} leaked {secret:?}: {body}");
            }
        }
    }
    // Form posts without a session answer 401 and change nothing.
    for path in
        [format!("/p/default/issues/{issue_id}/status"), "/p/default/issues/status".to_owned(), "/logout".to_owned()]
    {
        let response = client
            .post(format!("{base}{path}"))
            .form(&[("status", "resolved"), ("ids", &issue_id.to_string()), ("csrf", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{path}");
        assert!(!response.text().await.unwrap().contains("JSONDecodeError"));
    }
    let issue = fixture.server.api_ok(&format!("/api/v1/projects/default/issues/{issue_id}")).await;
    assert_eq!(issue["issue"]["status"], "unresolved");
    // The sign-in page itself says what to do and asks for both fields, labelled.
    let login = client.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains(r#"<label for="email">"#) && login.contains(r#"<label for="password">"#), "{login}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_needs_the_right_password_and_its_csrf_pair() {
    let fixture = fixture().await;
    let base = fixture.server.http_base();
    let client = plain_client();
    let form = client.get(format!("{base}/login")).send().await.unwrap();
    let login_cookie = set_cookies(&form).remove("sightline_login_csrf").unwrap();
    let csrf = csrf_field(&form.text().await.unwrap());
    let post = |email: &'static str, password: &'static str, csrf: String, cookie: Option<String>| {
        let mut request = client.post(format!("{base}/login")).form(&[
            ("csrf", csrf),
            ("email", email.into()),
            ("password", password.into()),
        ]);
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("sightline_login_csrf={cookie}"));
        }
        request.send()
    };
    // Wrong password and unknown user: the same 401, no session cookie.
    for (email, password) in [(ALICE.0, "wrong-password"), ("nobody@example.com", ALICE.1)] {
        let response = post(email, password, csrf.clone(), Some(login_cookie.clone())).await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{email}");
        assert!(!set_cookies(&response).contains_key("sightline_session"));
        assert!(response.text().await.unwrap().contains("Wrong e-mail or password."));
    }
    // Without the double-submit cookie, or with a token that does not match it: 403.
    let response = post(ALICE.0, ALICE.1, csrf.clone(), None).await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let response = post(ALICE.0, ALICE.1, "forged".into(), Some(login_cookie.clone())).await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    // The right pair and password: a session cookie with the protective attributes.
    let response = post(ALICE.0, ALICE.1, csrf, Some(login_cookie)).await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let raw: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|value| value.to_str().unwrap().to_owned()).collect();
    let session = raw.iter().find(|line| line.starts_with("sightline_session=")).expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax") && !session.contains("Secure"),
        "{session}"
    );
    // The e-mail is matched case-insensitively.
    sign_in(&base, "ALICE@Example.com", ALICE.1).await;
    // A JSON body is not a form: 415.
    let response =
        client.post(format!("{base}/login")).json(&serde_json::json!({"email": ALICE.0})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_throttled_per_account_with_retry_after() {
    let fixture = fixture().await;
    let base = fixture.server.http_base();
    let client = plain_client();
    let form = client.get(format!("{base}/login")).send().await.unwrap();
    let login_cookie = set_cookies(&form).remove("sightline_login_csrf").unwrap();
    let csrf = csrf_field(&form.text().await.unwrap());
    let post = |email: &'static str, password: &'static str| {
        client
            .post(format!("{base}/login"))
            .header("cookie", format!("sightline_login_csrf={login_cookie}"))
            .form(&[("csrf", csrf.as_str()), ("email", email), ("password", password)])
            .send()
    };
    // The burst of guesses is answered as wrong; the next attempt is refused before any password
    // work, even with the right password, and says when to come back.
    for guess in 0..sightline_server::ui::sign_in_limits::ACCOUNT_BURST {
        let response = post(ALICE.0, "guessed-wrong").await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "guess {guess}");
    }
    let response = post(ALICE.0, ALICE.1).await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry_after), "Retry-After: {retry_after}");
    assert!(!set_cookies(&response).contains_key("sightline_session"));
    assert!(response.text().await.unwrap().contains("Too many sign-in attempts."));
    // The same account spelt differently is the same account; another account is not affected.
    assert_eq!(post("Alice@Example.COM", ALICE.1).await.unwrap().status().as_u16(), 429);
    sign_in(&base, BOB.0, BOB.1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_see_only_their_projects() {
    let fixture = fixture().await;
    let base = fixture.server.http_base();
    let client = plain_client();
    let alice = sign_in(&base, ALICE.0, ALICE.1).await;
    let get = |path: String| client.get(format!("{base}{path}")).header("cookie", alice.clone()).send();

    let overview = get("/".into()).await.unwrap();
    assert_eq!(overview.status().as_u16(), 200);
    let overview = overview.text().await.unwrap();
    assert!(overview.contains("default") && overview.contains(r#"<option value="default" selected>"#), "{overview}");
    assert!(!overview.contains("Other team") && !overview.contains("other-team"), "{overview}");

    let (own_issue, own_trace) = &fixture.default_issue;
    let own_list = get("/p/default/issues".into()).await.unwrap().text().await.unwrap();
    assert!(own_list.contains("JSONDecodeError"), "{own_list}");
    assert!(get(format!("/p/default/issues/{own_issue}")).await.unwrap().status().is_success());
    assert!(get(format!("/p/default/traces/{own_trace}")).await.unwrap().status().is_success());

    let (other_issue, other_trace) = &fixture.other_issue;
    for path in [
        "/p/other-team/issues".to_owned(),
        format!("/p/other-team/issues/{other_issue}"),
        "/p/other-team/traces".to_owned(),
        format!("/p/other-team/traces/{other_trace}"),
        // The other project's issue and trace through Alice's own project.
        format!("/p/default/issues/{other_issue}"),
        format!("/p/default/traces/{other_trace}"),
        "/switch?project=other-team&page=issues".to_owned(),
        "/p/no-such-project/issues".to_owned(),
    ] {
        let response = get(path.clone()).await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("billing-secret-service"), "{path} leaked: {body}");
    }
    // Her own switcher keeps the section.
    let switched = get("/switch?project=default&page=traces".into()).await.unwrap();
    assert_eq!(switched.status().as_u16(), 303);
    assert_eq!(switched.headers()["location"], "/p/default/traces");
    // A form posted to the other project with her valid token: 404, and nothing changes.
    let page = get("/p/default/issues".into()).await.unwrap().text().await.unwrap();
    let csrf = csrf_field(&page);
    let response = client
        .post(format!("{base}/p/other-team/issues/{other_issue}/status"))
        .header("cookie", alice.clone())
        .form(&[("csrf", csrf.as_str()), ("status", "resolved")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    // Resolving the other project's issue id through her own project fails too.
    let response = client
        .post(format!("{base}/p/default/issues/status"))
        .header("cookie", alice.clone())
        .form(&[("csrf", csrf.as_str()), ("status", "resolved"), ("ids", &other_issue.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let store = fixture.server.server.as_ref().unwrap().store.clone();
    let other = store.find_project("other-team").unwrap().unwrap();
    let untouched = store.get_issue(other.id, *other_issue, 1).unwrap().unwrap();
    assert_eq!(untouched.issue.status.as_str(), "unresolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_their_csrf_token_and_sign_out_ends_the_session() {
    let fixture = fixture().await;
    let base = fixture.server.http_base();
    let client = plain_client();
    let alice = sign_in(&base, ALICE.0, ALICE.1).await;
    let bob = sign_in(&base, BOB.0, BOB.1).await;
    let (issue_id, _) = fixture.default_issue;
    let page =
        client.get(format!("{base}/p/default/issues/{issue_id}")).header("cookie", alice.clone()).send().await.unwrap();
    let csrf = csrf_field(&page.text().await.unwrap());
    let bob_page = client.get(format!("{base}/")).header("cookie", bob.clone()).send().await.unwrap();
    let bob_csrf = csrf_field(&bob_page.text().await.unwrap());
    assert_ne!(csrf, bob_csrf, "tokens are per session");

    let resolve = |token: Option<&str>| {
        let mut fields = vec![("status", "resolved".to_owned()), ("ids", issue_id.to_string())];
        if let Some(token) = token {
            fields.push(("csrf", token.to_owned()));
        }
        client.post(format!("{base}/p/default/issues/status")).header("cookie", alice.clone()).form(&fields).send()
    };
    for token in [None, Some(""), Some("0000"), Some(bob_csrf.as_str())] {
        let response = resolve(token).await.unwrap();
        assert_eq!(response.status().as_u16(), 403, "{token:?}");
    }
    let status = |server: &TestServer| {
        let store = server.server.as_ref().unwrap().store.clone();
        store.get_issue(1, issue_id, 1).unwrap().unwrap().issue.status.as_str().to_owned()
    };
    assert_eq!(status(&fixture.server), "unresolved");
    let response = resolve(Some(&csrf)).await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(status(&fixture.server), "resolved");
    // An unknown status is a 400 with a message, not a silent no-op.
    let response = client
        .post(format!("{base}/p/default/issues/{issue_id}/status"))
        .header("cookie", alice.clone())
        .form(&[("csrf", csrf.as_str()), ("status", "deleted")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("use resolved, ignored or unresolved"));

    // Sign-out needs the token too, then the cookie no longer opens pages.
    let response = client
        .post(format!("{base}/logout"))
        .header("cookie", alice.clone())
        .form(&[("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let response = client
        .post(format!("{base}/logout"))
        .header("cookie", alice.clone())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert!(set_cookies(&response)["sightline_session"].is_empty(), "the cookie is cleared");
    let after = client.get(format!("{base}/")).header("cookie", alice).send().await.unwrap();
    assert_eq!(after.status().as_u16(), 303, "the old session token is dead");
    let still = client.get(format!("{base}/")).header("cookie", bob).send().await.unwrap();
    assert_eq!(still.status().as_u16(), 200, "other sessions live on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_assets_are_embedded_and_cached() {
    let server = TestServer::start().await;
    let client = plain_client();
    for (file, content_type, needle) in
        [("app.css", "text/css", "--accent"), ("app.js", "text/javascript", "time[datetime]")]
    {
        let response = client.get(format!("{}/static/{file}", server.http_base())).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with(content_type));
        assert_eq!(response.headers()["cache-control"], "public, max-age=86400");
        assert!(response.text().await.unwrap().contains(needle));
    }
    let missing = client.get(format!("{}/static/secret.txt", server.http_base())).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_ingest_rates_per_signal() {
    let fixture = fixture().await;
    let base = fixture.server.http_base();
    // A second checkout trace: 2 × 3 spans committed in this minute, none of the other project's.
    send_checkout_trace(&fixture.server, &fixture.server.ingest_key.clone(), "checkout-api").await;
    let cookie = sign_in(&base, ALICE.0, ALICE.1).await;
    let html = plain_client().get(format!("{base}/")).header("cookie", cookie).send().await.unwrap().text().await.unwrap();
    let row = |label: &str| {
        let start = html.find(&format!(r#"<th scope="row">{label}</th>"#)).unwrap_or_else(|| panic!("{label} row: {html}"));
        let end = start + html[start..].find("</tr>").unwrap();
        html[start..end].to_owned()
    };
    let traces = row("Traces");
    assert!(traces.contains(r#"<td class="num">0.1 spans</td><td class="num">6</td><td class="num">6</td>"#), "{traces}");
    assert!(traces.contains(r#"aria-label="Traces: spans accepted per minute; peak 6""#), "{traces}");
    let logs = row("Logs");
    assert!(logs.contains(r#"<td class="num">0</td><td class="num">0</td>"#), "{logs}");
}
