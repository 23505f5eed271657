//! The dashboard's settings pages (`/p/{project}/settings/...`) over plain HTTP: nothing is shown
//! or changed without a session, a project the user is not a member of answers 404 (also a
//! foreign destination through one's own project), every form needs its CSRF token (403 and no
//! change without), refused forms come back with 400 and the reason next to the form, and a key
//! created on the page is shown once, then only by prefix, and stops working when revoked.

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

mod common;

use common::TestServer;
use common::dashboard::{create_user, csrf_field, plain_client, sign_in};
use serde_json::json;
use sightline_server::auth::KeyScope;

const ALICE: (&str, &str) = ("alice@example.com", "alice-password-1");
const BOB: (&str, &str) = ("bob@example.com", "bob-password-22");

/// The settings pages of `slug` (GET).
fn pages(slug: &str, destination_id: i64) -> Vec<String> {
    ["", "/keys", "/privacy", "/destinations", &format!("/destinations/{destination_id}")]
        .iter()
        .map(|rest| format!("/p/{slug}/settings{rest}"))
        .collect()
}

/// Every form of the settings pages of `slug`: (path, fields besides `csrf`).
fn forms(slug: &str, destination_id: i64) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    let destination = format!("/p/{slug}/settings/destinations/{destination_id}");
    vec![
        (format!("/p/{slug}/settings"), vec![("retention_days", "2"), ("trace_sample_rate", "0.5")]),
        (format!("/p/{slug}/settings/keys"), vec![("name", "sneaky"), ("scope", "all")]),
        (format!("/p/{slug}/settings/keys/1/revoke"), vec![]),
        (format!("/p/{slug}/settings/privacy"), vec![("settings", r#"{"applications": {}}"#)]),
        (format!("/p/{slug}/settings/privacy/opt-outs"), vec![("user_id", "user-9")]),
        (format!("/p/{slug}/settings/privacy/opt-outs/remove"), vec![("user_id", "user-9")]),
        (
            format!("/p/{slug}/settings/destinations"),
            vec![
                ("name", "sneaky"),
                ("config", r#"{"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "s"}"#),
            ],
        ),
        (destination.clone(), vec![("name", "renamed"), ("config", "")]),
        (format!("{destination}/enabled"), vec![("enabled", "false")]),
        (format!("{destination}/replay"), vec![]),
        (format!("{destination}/delete"), vec![]),
    ]
}

struct Fixture {
    server: TestServer,
    /// A webhook destination of `default` and one of `other-team`.
    default_destination: i64,
    other_destination: i64,
}

async fn fixture() -> Fixture {
    let server = TestServer::start().await;
    let store = server.server.as_ref().unwrap().store.clone();
    let other = store.create_project("Other team").unwrap();
    store.create_api_key(other.id, KeyScope::Ingest, "billing-ingest").unwrap();
    create_user(&server, ALICE.0, ALICE.1, &["default"]);
    create_user(&server, BOB.0, BOB.1, &["other-team"]);
    let config = |secret: &str| {
        serde_json::from_value(json!({"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": secret})).unwrap()
    };
    let default_project = store.find_project("default").unwrap().unwrap();
    let default_destination =
        store.create_destination(default_project.id, "audit-hook", false, &config("default-hook-secret")).unwrap().id;
    let other_destination =
        store.create_destination(other.id, "billing-hook", false, &config("billing-hook-secret")).unwrap().id;
    Fixture { server, default_destination, other_destination }
}

/// What must not change when a form is refused: retention, keys, privacy, opt-outs, destinations.
fn snapshot(server: &TestServer, slug: &str) -> String {
    let store = &server.server.as_ref().unwrap().store;
    let project = store.find_project(slug).unwrap().unwrap();
    let keys: Vec<String> = store.list_api_keys(project.id).unwrap().iter().map(|key| key.prefix.clone()).collect();
    let privacy = store.privacy_settings(project.id).unwrap();
    let destinations: Vec<String> = store
        .list_destinations(Some(project.id))
        .unwrap()
        .iter()
        .map(|destination| format!("{}:{}", destination.name, destination.enabled))
        .collect();
    format!(
        "{} {} {keys:?} {:?} {:?} {destinations:?}",
        project.retention_days, project.trace_sample_rate, privacy.settings_json, privacy.opt_outs
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_need_a_session_and_membership() {
    let fixture = fixture().await;
    let server = &fixture.server;
    let base = server.http_base();
    let client = plain_client();
    let before = (snapshot(server, "default"), snapshot(server, "other-team"));
    for page in pages("default", fixture.default_destination) {
        let response = client.get(format!("{base}{page}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 303, "{page}");
        assert!(response.headers()["location"].to_str().unwrap().starts_with("/login?next="), "{page}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("audit-hook") && !body.contains("sl_"), "{page} leaked: {body}");
    }
    for (path, mut fields) in forms("default", fixture.default_destination) {
        fields.push(("csrf", "anything"));
        let response = client.post(format!("{base}{path}")).form(&fields).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "POST {path} without a session");
    }

    // Alice is not a member of other-team: its pages and forms answer 404, even with her own
    // valid CSRF token, and the foreign destination is not reachable through her project.
    let alice = sign_in(&base, ALICE.0, ALICE.1).await;
    let own_page = client.get(format!("{base}/p/default/settings")).header("cookie", &alice).send().await.unwrap();
    assert_eq!(own_page.status().as_u16(), 200);
    assert_eq!(own_page.headers()["cache-control"], "no-store");
    let csrf = csrf_field(&own_page.text().await.unwrap());
    for page in pages("other-team", fixture.other_destination) {
        let response = client.get(format!("{base}{page}")).header("cookie", &alice).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "{page}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("billing-hook") && !body.contains("billing-ingest"), "{page} leaked: {body}");
    }
    for (path, mut fields) in forms("other-team", fixture.other_destination) {
        fields.push(("csrf", csrf.as_str()));
        let response =
            client.post(format!("{base}{path}")).header("cookie", &alice).form(&fields).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "POST {path} as a non-member");
    }
    let foreign = format!("{base}/p/default/settings/destinations/{}", fixture.other_destination);
    let response = client.get(&foreign).header("cookie", &alice).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404, "another project's destination through one's own");
    for action in ["", "/enabled", "/replay", "/delete"] {
        let response = client
            .post(format!("{foreign}{action}"))
            .header("cookie", &alice)
            .form(&[("csrf", csrf.as_str()), ("enabled", "true"), ("name", "x"), ("config", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "POST {foreign}{action}");
    }
    assert_eq!((snapshot(server, "default"), snapshot(server, "other-team")), before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_settings_form_needs_its_csrf_token() {
    let fixture = fixture().await;
    let server = &fixture.server;
    let base = server.http_base();
    let client = plain_client();
    let alice = sign_in(&base, ALICE.0, ALICE.1).await;
    let before = snapshot(server, "default");
    for (path, fields) in forms("default", fixture.default_destination) {
        for csrf in [None, Some("forged-token")] {
            let mut sent = fields.clone();
            if let Some(csrf) = csrf {
                sent.push(("csrf", csrf));
            }
            let response =
                client.post(format!("{base}{path}")).header("cookie", &alice).form(&sent).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 403, "POST {path} with csrf {csrf:?}");
        }
    }
    assert_eq!(snapshot(server, "default"), before, "no form changed anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_forms_answer_400_with_the_reason_next_to_the_form() {
    let fixture = fixture().await;
    let server = &fixture.server;
    let base = server.http_base();
    let client = plain_client();
    let alice = sign_in(&base, ALICE.0, ALICE.1).await;
    let page = client.get(format!("{base}/p/default/settings")).header("cookie", &alice).send().await.unwrap();
    let csrf = csrf_field(&page.text().await.unwrap());
    let before = snapshot(server, "default");
    let destination = format!("/p/default/settings/destinations/{}", fixture.default_destination);
    // (path, fields besides csrf, what the error next to the form says)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        ("/p/default/settings".into(), vec![("retention_days", "0"), ("trace_sample_rate", "1")], "use 1 to 3650"),
        (
            "/p/default/settings".into(),
            vec![("retention_days", "ten"), ("trace_sample_rate", "1")],
            "retention_days=&quot;ten&quot;",
        ),
        (
            "/p/default/settings".into(),
            vec![("retention_days", "30"), ("trace_sample_rate", "1.5")],
            "trace_sample_rate=1.5",
        ),
        ("/p/default/settings/keys".into(), vec![("name", "  "), ("scope", "ingest")], "give the key a name"),
        ("/p/default/settings/keys".into(), vec![("name", "ci"), ("scope", "root")], "use ingest, read or all"),
        (
            "/p/default/settings/privacy".into(),
            vec![("settings", r#"{"applications": {"**": ["@zodiac"]}}"#)],
            "@zodiac",
        ),
        ("/p/default/settings/privacy".into(), vec![("settings", "{not json")], "body:"),
        (
            "/p/default/settings/privacy".into(),
            vec![("settings", r#"{"vars": {"hash_key": "mine"}}"#)],
            "vars.hash_key cannot be set",
        ),
        ("/p/default/settings/privacy/opt-outs".into(), vec![("user_id", "")], "user_id must be 1 to 2048 bytes"),
        (
            "/p/default/settings/destinations".into(),
            vec![("name", "ftp"), ("config", r#"{"type": "webhook", "url": "ftp://x", "secret": "s"}"#)],
            "must be http:// or https://",
        ),
        (
            "/p/default/settings/destinations".into(),
            vec![
                ("name", "audit-hook"),
                ("config", r#"{"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "s"}"#),
            ],
            "audit-hook",
        ),
        ("/p/default/settings/destinations".into(), vec![("name", "x"), ("config", "{")], "config is not valid JSON"),
        (
            destination.clone(),
            vec![("name", "audit-hook"), ("config", r#"{"batch": {"max_attempts": 0}}"#)],
            "batch.max_attempts",
        ),
        (destination.clone(), vec![("name", ""), ("config", "")], "name: a non-empty string"),
    ];
    for (path, mut fields, message) in cases {
        fields.push(("csrf", csrf.as_str()));
        let response =
            client.post(format!("{base}{path}")).header("cookie", &alice).form(&fields).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "POST {path} {fields:?}");
        let body = response.text().await.unwrap();
        let error_at = body.find("form-error").unwrap_or_else(|| panic!("POST {path}: no error shown: {body}"));
        assert!(body[error_at..].contains(message), "POST {path}: expected {message:?} in the error: {body}");
        assert!(body.contains(r#"method="post""#), "the form is shown again: {path}");
    }
    // The refused privacy text is kept in the textarea, so it can be fixed.
    let response = client
        .post(format!("{base}/p/default/settings/privacy"))
        .header("cookie", &alice)
        .form(&[("csrf", csrf.as_str()), ("settings", r#"{"applications": {"**": ["@zodiac"]}}"#)])
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    assert!(body.contains("aria-invalid=\"true\"") && body.contains("@zodiac&quot;]}}</textarea>"), "{body}");
    assert_eq!(snapshot(server, "default"), before, "no refused form changed anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_is_shown_once_and_a_revoked_key_is_refused_at_once() {
    let fixture = fixture().await;
    let server = &fixture.server;
    let base = server.http_base();
    let client = plain_client();
    let alice = sign_in(&base, ALICE.0, ALICE.1).await;
    let page = client.get(format!("{base}/p/default/settings/keys")).header("cookie", &alice).send().await.unwrap();
    let csrf = csrf_field(&page.text().await.unwrap());
    let created = client
        .post(format!("{base}/p/default/settings/keys"))
        .header("cookie", &alice)
        .form(&[("csrf", csrf.as_str()), ("name", "ios-app"), ("scope", "ingest")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 200);
    assert_eq!(created.headers()["cache-control"], "no-store", "the key must not stay in a cache");
    let body = created.text().await.unwrap();
    let start =
        body.find("data-new-key").map(|_| body.find(r#"value="sl_ingest_"#).unwrap() + 7).expect("the key is shown");
    let key = body[start..].split('"').next().unwrap().to_owned();
    assert_eq!(key.len(), "sl_ingest_".len() + 32, "{key}");
    assert!(body.contains("shown only on this page"));

    let send = |key: String| {
        let http = server.http.clone();
        let url = format!("{base}/v1/events");
        async move {
            let event = json!({"event_id": "evt-key-1", "product_id": "shop", "event.type": "page.view",
                "event.timestamp": "2026-11-24T10:00:00.000Z", "session.id": "sess-1"});
            http.post(url)
                .header("x-api-key", key)
                .json(&json!({"events": [event]}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(send(key.clone()).await, 202, "the new key ingests");

    // Shown again: only its prefix and name.
    let list = client.get(format!("{base}/p/default/settings/keys")).header("cookie", &alice).send().await.unwrap();
    let list = list.text().await.unwrap();
    assert!(!list.contains(&key), "the key is never shown again");
    assert!(list.contains("ios-app") && list.contains(&key[..14]), "{list}");

    let store = server.server.as_ref().unwrap().store.clone();
    let project = store.find_project("default").unwrap().unwrap();
    let record = store.list_api_keys(project.id).unwrap().into_iter().find(|key| key.name == "ios-app").unwrap();
    let revoke = client
        .post(format!("{base}/p/default/settings/keys/{}/revoke", record.id))
        .header("cookie", &alice)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status().as_u16(), 303);
    assert_eq!(send(key.clone()).await, 401, "revoked: refused on the next request, not after the cache expires");
    let again = client
        .post(format!("{base}/p/default/settings/keys/{}/revoke", record.id))
        .header("cookie", &alice)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 404, "a revoked key is no longer the project's");
    assert_eq!(send(server.ingest_key.clone()).await, 202, "the project's other keys still work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_wide_destinations_and_otlp_forwarding_are_read_only() {
    use sightline_server::exporters::Secret;
    use sightline_server::exporters::otlp::{OtlpDestinationConfig, OtlpProtocol};
    let server = TestServer::start_with(|config| {
        let mut otlp = OtlpDestinationConfig::new("http://127.0.0.1:9/collector", OtlpProtocol::HttpProtobuf);
        otlp.headers.insert("authorization".into(), Secret::new("Bearer otlp-header-secret"));
        config.forward_otlp = Some(otlp);
    })
    .await;
    let store = server.server.as_ref().unwrap().store.clone();
    let config = serde_json::from_value(
        json!({"type": "amplitude", "api_key": "amp-server-secret", "endpoint": "http://127.0.0.1:9/2/httpapi"}),
    )
    .unwrap();
    let server_wide = store.upsert_server_destination("productgraph", false, &config).unwrap().id;
    create_user(&server, ALICE.0, ALICE.1, &["default"]);
    let base = server.http_base();
    let client = plain_client();
    let alice = sign_in(&base, ALICE.0, ALICE.1).await;

    let list =
        client.get(format!("{base}/p/default/settings/destinations")).header("cookie", &alice).send().await.unwrap();
    assert_eq!(list.status().as_u16(), 200);
    let list = list.text().await.unwrap();
    assert!(list.contains("productgraph") && list.contains("server-wide"), "{list}");
    assert!(list.contains("OTLP forwarding (server-wide, read-only)") && list.contains("http://127.0.0.1:9/collector"));
    assert!(list.contains("authorization"), "header names are shown: {list}");
    for secret in ["otlp-header-secret", "amp-server-secret"] {
        assert!(!list.contains(secret), "{secret} leaked: {list}");
    }
    let csrf = csrf_field(&list);
    let page = format!("{base}/p/default/settings/destinations/{server_wide}");
    let detail = client.get(&page).header("cookie", &alice).send().await.unwrap().text().await.unwrap();
    assert!(detail.contains("server-wide, read-only") && !detail.contains("amp-server-secret"), "{detail}");
    assert!(!detail.contains("Save destination") && !detail.contains("Replay all"), "no changing forms: {detail}");
    for action in ["", "/enabled", "/replay", "/delete"] {
        let response = client
            .post(format!("{page}{action}"))
            .header("cookie", &alice)
            .form(&[("csrf", csrf.as_str()), ("enabled", "true"), ("name", "mine"), ("config", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403, "POST {page}{action}");
    }
    let stored = store.get_destination(server_wide).unwrap().unwrap();
    assert_eq!((stored.name.as_str(), stored.enabled), ("productgraph", false), "unchanged");
}
