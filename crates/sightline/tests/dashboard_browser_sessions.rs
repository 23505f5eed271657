//! Sessions, journeys and web vitals in a real headless Chromium (chromedriver, fantoccini): a
//! browser session posted with `POST /v1/events` and its backend request sent with the
//! OpenTelemetry SDK carrying the same `session.id`; filter the session list, open the session,
//! walk its timeline with the keyboard and follow the request to its trace waterfall; read the
//! checkout funnel and the web vitals per page; switch project keeping the section.
//! Screenshots of each page go to `<target>/tmp/ui-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them when missing).

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

mod common;
#[path = "common/product_seed.rs"]
mod product_seed;

use common::TestServer;
use common::browser::{ChromeDriver, EMAIL, PASSWORD, screenshot, sign_in, wait_for_text};
use common::dashboard::create_user;
use fantoccini::{Client, Locator};
use product_seed::{SESSION, seed_shop};

/// The text of the focused element.
async fn focused_text(browser: &Client) -> String {
    let value = browser.execute("return document.activeElement.textContent", vec![]).await.unwrap();
    value.as_str().unwrap_or_default().to_owned()
}

async fn press(browser: &Client, key: &str) {
    browser.active_element().await.unwrap().send_keys(key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_a_session_to_its_trace_and_read_funnels_and_vitals_in_chromium() {
    let server = TestServer::start().await;
    let store = server.server.as_ref().unwrap().store.clone();
    store.create_project("Mobile").unwrap();
    create_user(&server, EMAIL, PASSWORD, &["default", "mobile"]);
    let seeded = seed_shop(&server).await;
    let base = server.http_base();
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &base, EMAIL, PASSWORD).await;

    // The session list from the navigation, then filtered to sessions with errors.
    browser.find(Locator::LinkText("Sessions")).await.unwrap().click().await.unwrap();
    let list =
        wait_for_text(&browser, &["Sessions", SESSION, "sess-browser-2", "sess-browser-3", "checkout-api"]).await;
    assert!(list.contains("user-8") && list.contains("/cart"), "{list}");
    screenshot(&browser, "sessions").await;
    browser.find(Locator::Css("select[name=has_errors]")).await.unwrap().select_by_value("true").await.unwrap();
    browser.find(Locator::Css("form.filters button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &[SESSION]).await;
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.query(), Some("user=&has_errors=true&range="), "the filter is in the URL");
    let rows = browser.find_all(Locator::Css("table.sessions tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "only the session with the failed checkout has errors");

    // The session: frontend events, the backend request and its error in one timeline.
    browser.find(Locator::LinkText(SESSION)).await.unwrap().click().await.unwrap();
    let timeline = wait_for_text(
        &browser,
        &["Session sess-browser-1", "Timeline", "add_to_cart", "POST /checkout", "checkout_payment"],
    )
    .await;
    assert!(timeline.contains("Chrome/131.0") && timeline.contains("user-7"), "{timeline}");
    assert!(!timeline.contains(" UTC"), "the script shows times in the viewer's zone: {timeline}");
    let entries = browser.find_all(Locator::Css("ol.timeline > li")).await.unwrap();
    assert!(entries.len() >= 9, "7 events, the request and its error: {}", entries.len());
    assert!(entries[0].text().await.unwrap().contains("page.view"), "oldest first");
    screenshot(&browser, "session").await;

    // Keyboard: focus the first entry, walk down, jump to the end and back.
    browser.execute("document.querySelector('ol.timeline [data-entry-focus]').focus()", vec![]).await.unwrap();
    assert!(focused_text(&browser).await.contains("page.view"));
    press(&browser, "\u{E015}").await; // ArrowDown
    assert!(focused_text(&browser).await.contains("checkout_cart"), "ArrowDown moves to the next entry");
    press(&browser, "j").await;
    assert!(focused_text(&browser).await.contains("add_to_cart"), "j moves down too");
    press(&browser, "\u{E010}").await; // End
    let last = focused_text(&browser).await;
    press(&browser, "\u{E013}").await; // ArrowUp
    let before_last = focused_text(&browser).await;
    assert_ne!(last, before_last, "ArrowUp leaves the last entry");
    // Down to the request with the keyboard, then Enter follows it to the trace.
    press(&browser, "\u{E011}").await; // Home
    let mut steps = 0;
    while !focused_text(&browser).await.contains("POST /checkout") {
        press(&browser, "\u{E015}").await;
        steps += 1;
        assert!(steps < 20, "the request entry is reachable with ArrowDown");
    }
    press(&browser, "\u{E007}").await; // Enter
    let waterfall = wait_for_text(&browser, &["POST /checkout", "SELECT orders", "charge_card", "critical path"]).await;
    assert!(waterfall.contains(&seeded.trace_id), "{waterfall}");
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.path(), format!("/p/default/traces/{}", seeded.trace_id));
    assert!(url.fragment().is_some_and(|fragment| fragment.starts_with("span-")), "links to the span: {url}");
    screenshot(&browser, "session-trace").await;

    // Journeys: the list, then the checkout funnel.
    browser.find(Locator::LinkText("Journeys")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Journeys", "checkout", "Cart (3) → Shipping address (2) → Payment (1)"]).await;
    screenshot(&browser, "journeys").await;
    browser.find(Locator::Css("table.journeys a")).await.unwrap().click().await.unwrap();
    let funnel = wait_for_text(&browser, &["Journey checkout", "Funnel", "Shipping address", "66.7%", "50.0%"]).await;
    assert!(funnel.contains("3 sessions started, 1 completed every step (33.3%)"), "{funnel}");
    assert!(funnel.contains("8.00 s"), "median time between steps: {funnel}");
    let bars = browser.find_all(Locator::Css("figure.funnel rect.completed")).await.unwrap();
    assert_eq!(bars.len(), 3);
    screenshot(&browser, "journey").await;

    // Web vitals per page with the API's ratings.
    browser.find(Locator::LinkText("Web vitals")).await.unwrap().click().await.unwrap();
    let vitals =
        wait_for_text(&browser, &["Web vitals", "All pages", "By page", "/checkout", "/cart", "Thresholds"]).await;
    assert!(vitals.contains("needs improvement") && vitals.contains("poor"), "{vitals}");
    let poor_cells = browser.find_all(Locator::Css("table.vitals td.vital.rating-poor")).await.unwrap();
    assert_eq!(poor_cells.len(), 2, "/cart's LCP and CLS (its INP of 350 ms needs improvement)");
    screenshot(&browser, "web-vitals").await;
    browser.find(Locator::Css("table.vitals a[href*='page=%2Fcart']")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["/cart"]).await;
    let rows = browser.find_all(Locator::Css("table.vitals tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "the page link filters to that page");

    // The switcher keeps the section in the other project.
    browser.find(Locator::Id("project-switcher")).await.unwrap().select_by_value("mobile").await.unwrap();
    browser.find(Locator::Css("form.switcher button")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["No web vitals in this range."]).await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/p/mobile/web-vitals");
    browser.close().await.unwrap();
}
