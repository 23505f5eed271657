//! The settings pages in a real headless Chromium (chromedriver, fantoccini): create an API key
//! and see it once (a reload shows only its prefix), ingest with it, revoke it (the next ingest
//! request gets 401); change retention; save a privacy rule and see an invalid one refused next to
//! the field; add a webhook destination whose secret is wrong so events become dead letters, fix
//! the secret and press **Replay**: a local webhook stand-in (`common/vendors.rs`) receives them.
//! Screenshots of each page go to `<target>/tmp/ui-screenshots/settings-*.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them when missing).

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

mod common;
#[path = "common/vendors.rs"]
#[allow(dead_code)]
mod vendors;

use std::time::{Duration, Instant};

use common::TestServer;
use common::browser::{
    ChromeDriver, EMAIL, PAGE_DEADLINE, PASSWORD, screenshot, sign_in, wait_for_text, wait_for_text_gone,
};
use common::dashboard::create_user;
use fantoccini::{Client, Locator};
use serde_json::json;
use vendors::Vendor;

/// Posts product events `evt-<n>` with `key`; returns the status.
async fn send_events(server: &TestServer, key: &str, ids: &[&str]) -> u16 {
    let events: Vec<_> = ids
        .iter()
        .map(|id| {
            json!({"event_id": id, "product_id": "shop", "event.type": "page.view", "user.id": "user-1",
                "session.id": "sess-settings-1", "event.timestamp": "2026-11-24T10:00:00.000Z", "page.path": "/cart"})
        })
        .collect();
    let response = server
        .http
        .post(format!("{}/v1/events", server.http_base()))
        .header("x-api-key", key)
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// Reloads `url` until its text contains `needle` (deadline [`PAGE_DEADLINE`]); returns the text.
async fn reload_until(browser: &Client, url: &str, needle: &str) -> String {
    let deadline = Instant::now() + PAGE_DEADLINE;
    loop {
        browser.goto(url).await.unwrap();
        let text = browser.find(Locator::Css("body")).await.unwrap().text().await.unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "{url} never showed {needle:?}; it shows:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Replaces a field's text.
async fn fill(browser: &Client, id: &str, text: &str) {
    let element = browser.find(Locator::Id(id)).await.unwrap();
    element.clear().await.unwrap();
    element.send_keys(text).await.unwrap();
}

async fn submit(browser: &Client, button_text: &str) {
    let xpath = format!("//button[normalize-space(.)='{button_text}']");
    browser.find(Locator::XPath(&xpath)).await.unwrap().click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_retention_privacy_and_dead_letter_replay_in_chromium() {
    let vendor = Vendor::webhook("hook-secret").await;
    let server = TestServer::start().await;
    let store = server.server.as_ref().unwrap().store.clone();
    create_user(&server, EMAIL, PASSWORD, &["default"]);
    let base = server.http_base();
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &base, EMAIL, PASSWORD).await;

    // The navigation leads to the settings; the first tab is retention and sampling.
    browser.find(Locator::LinkText("Settings")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Retention and sampling", "API keys", "Privacy", "Destinations", "30 days"]).await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/p/default/settings");

    // A new key is shown once, on the page answering the form.
    browser.find(Locator::LinkText("API keys")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Create a key", "default ingest key"]).await;
    fill(&browser, "key-name", "ci-ingest").await;
    browser.find(Locator::Id("key-scope")).await.unwrap().select_by_value("ingest").await.unwrap();
    submit(&browser, "Create key").await;
    wait_for_text(&browser, &["New key ci-ingest", "Copy it now"]).await;
    let key = browser.find(Locator::Id("new-key")).await.unwrap().prop("value").await.unwrap().unwrap();
    assert!(key.starts_with("sl_ingest_") && key.len() == 42, "{key}");
    screenshot(&browser, "settings-key-created").await;
    assert_eq!(send_events(&server, &key, &["evt-key-1"]).await, 202, "the new key ingests");
    browser.goto(&format!("{base}/p/default/settings/keys")).await.unwrap();
    let list = wait_for_text(&browser, &["ci-ingest", &key[..14]]).await;
    assert!(!list.contains("Copy it now"), "{list}");
    assert!(!browser.source().await.unwrap().contains(&key), "after a reload the key is gone for good");
    screenshot(&browser, "settings-keys").await;

    // Revoke it: the next ingest request is refused.
    browser.find(Locator::Css("button[aria-label^='Revoke key ci-ingest']")).await.unwrap().click().await.unwrap();
    wait_for_text_gone(&browser, "ci-ingest", &["Create a key", "default ingest key"]).await;
    assert_eq!(send_events(&server, &key, &["evt-key-2"]).await, 401, "a revoked key gets 401 on ingest");

    // Retention: 30 days to 7.
    browser.find(Locator::LinkText("Retention & sampling")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Retention, days"]).await;
    fill(&browser, "retention_days", "7").await;
    fill(&browser, "trace_sample_rate", "0.5").await;
    submit(&browser, "Save retention and sampling").await;
    wait_for_text(&browser, &["7 days", "50.0 %"]).await;
    let project = store.find_project("default").unwrap().unwrap();
    assert_eq!((project.retention_days, project.trace_sample_rate), (7, 0.5));
    screenshot(&browser, "settings-retention").await;

    // Privacy: a project rule saved, then a broken one refused next to the field.
    browser.find(Locator::LinkText("Privacy")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["In force", "Where rules apply", "@common", "Opted-out users"]).await;
    let rule = r#"{"rules": {"order-id": {"type": "pattern", "pattern": "ORD-[0-9]+"}}, "applications": {"**": ["@common", "order-id"]}, "consent": {"attribute": "consent.analytics", "require_consent": true}}"#;
    fill(&browser, "privacy-settings", rule).await;
    submit(&browser, "Save privacy settings").await;
    wait_for_text(&browser, &["@common, order-id", "not forwarded (opt-in)"]).await;
    let stored = store.privacy_settings(project.id).unwrap().settings_json.unwrap();
    assert!(stored.contains("ORD-[0-9]+") && stored.contains(r#""require_consent":true"#), "{stored}");
    fill(&browser, "privacy-settings", r#"{"applications": {"**": ["@zodiac"]}}"#).await;
    submit(&browser, "Save privacy settings").await;
    wait_for_text(&browser, &["@zodiac"]).await;
    let error = browser.find(Locator::Css("#privacy-settings-error .form-error")).await.unwrap().text().await.unwrap();
    assert!(error.contains("@zodiac"), "the parser's message next to the field: {error}");
    let invalid = browser.find(Locator::Id("privacy-settings")).await.unwrap().attr("aria-invalid").await.unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    screenshot(&browser, "settings-privacy-error").await;
    assert_eq!(store.privacy_settings(project.id).unwrap().settings_json.unwrap(), stored, "nothing saved");
    // The opt-out list: add, then remove.
    browser.goto(&format!("{base}/p/default/settings/privacy")).await.unwrap();
    fill(&browser, "opt-out-user", "user-42").await;
    submit(&browser, "Opt out").await;
    wait_for_text(&browser, &["user-42"]).await;
    assert_eq!(store.privacy_settings(project.id).unwrap().opt_outs, ["user-42"]);
    browser
        .find(Locator::Css("button[aria-label='Remove user-42 from the opt-out list']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, &["Nobody has opted out."]).await;
    // Consent is now required: the forwarded events below carry it.
    let consented = r#"{"applications": {"**": ["@common"]}, "consent": {"attribute": "consent.analytics", "require_consent": false}}"#;
    fill(&browser, "privacy-settings", consented).await;
    submit(&browser, "Save privacy settings").await;
    wait_for_text(&browser, &["forwarded (opt-out)"]).await;

    // A webhook with the wrong secret: the stand-in refuses the signature, events are parked.
    browser.find(Locator::LinkText("Destinations")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["No destinations", "Add a destination"]).await;
    fill(&browser, "destination-name", "audit-hook").await;
    let config = json!({"type": "webhook", "url": vendor.url("/hook"), "secret": "old-secret",
        "batch": {"interval_ms": 20, "max_attempts": 1}});
    fill(&browser, "destination-config", &config.to_string()).await;
    submit(&browser, "Add destination").await;
    wait_for_text(&browser, &["Destination audit-hook", "•••••• (set)", "No dead letters"]).await;
    let page = browser.current_url().await.unwrap().to_string();
    assert!(!browser.source().await.unwrap().contains("old-secret"), "the secret is never shown back");
    assert_eq!(send_events(&server, &server.ingest_key, &["evt-replay-1", "evt-replay-2"]).await, 202);
    let parked = reload_until(&browser, &page, "Replay all 2 dead letters").await;
    assert!(parked.contains("evt-replay-1") && parked.contains("HTTP 400"), "reason and response shown: {parked}");
    browser.execute("document.getElementById('dead-heading').scrollIntoView()", Vec::new()).await.unwrap();
    screenshot(&browser, "settings-dead-letters").await;
    assert!(vendor.ingested_ids().is_empty());

    // Fix the secret (a merge patch: the URL stays), then replay: the stand-in now accepts them.
    fill(&browser, "edit-config", r#"{"secret": "hook-secret"}"#).await;
    submit(&browser, "Save destination").await;
    wait_for_text(&browser, &["Destination audit-hook", "Replay all"]).await;
    submit(&browser, "Replay all 2 dead letters").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while vendor.ingested_ids() != ["evt-replay-1", "evt-replay-2"] {
        assert!(Instant::now() < deadline, "the replayed events never arrived: {:?}", vendor.ingested_ids());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = reload_until(&browser, &page, "No dead letters").await;
    assert!(delivered.contains("Delivered\n2") || delivered.contains("Delivered 2"), "{delivered}");
    screenshot(&browser, "settings-destination-replayed").await;

    // The list shows the delivery state; disable it from its page.
    browser.goto(&format!("{base}/p/default/settings/destinations")).await.unwrap();
    wait_for_text(&browser, &["audit-hook", "Last success", "webhook"]).await;
    screenshot(&browser, "settings-destinations").await;
    browser.goto(&page).await.unwrap();
    submit(&browser, "Disable").await;
    wait_for_text(&browser, &["Enable", "disabled"]).await;
    let destinations = store.list_destinations(Some(project.id)).unwrap();
    assert!(!destinations[0].enabled, "the button disabled it");
    browser.close().await.unwrap();
}
