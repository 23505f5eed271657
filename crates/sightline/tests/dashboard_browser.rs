//! The dashboard in a real headless Chromium driven over WebDriver (chromedriver, fantoccini):
//! sign in, read the overview, open an issue from the list and resolve it, follow the issue to its
//! trace and open spans of the waterfall (with the keyboard too), and switch project keeping the
//! page. The server runs in-process on an ephemeral port with real OpenTelemetry SDK traffic.
//! Screenshots of each main page go to `<target>/tmp/ui-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them when missing).

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

mod common;

use common::TestServer;
use common::browser::{ChromeDriver, EMAIL, PASSWORD, screenshot, wait_for_text};
use common::dashboard::{create_user, send_checkout_trace};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_resolve_an_issue_and_read_its_trace_in_chromium() {
    let server = TestServer::start().await;
    let store = server.server.as_ref().unwrap().store.clone();
    store.create_project("Mobile").unwrap();
    create_user(&server, EMAIL, PASSWORD, &["default", "mobile"]);
    let trace_id = send_checkout_trace(&server, &server.ingest_key.clone(), "checkout-api").await;
    let base = server.http_base();
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;

    // Any page sends a stranger to the sign-in form, which brings them back after.
    browser.goto(&format!("{base}/p/default/issues")).await.unwrap();
    wait_for_text(&browser, &["Sign in to Sightline", "E-mail", "Password"]).await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/login");
    screenshot(&browser, "sign-in").await;
    browser.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    browser.find(Locator::Css("form.stacked button[type=submit]")).await.unwrap().click().await.unwrap();
    let list = wait_for_text(&browser, &["Errors", "json.decoder.JSONDecodeError: Expecting value", EMAIL]).await;
    assert!(list.contains("Resolve selected"), "{list}");
    assert_eq!(browser.current_url().await.unwrap().path(), "/p/default/issues");
    screenshot(&browser, "issues").await;

    // The overview lists both projects with their figures.
    browser.find(Locator::LinkText("Overview")).await.unwrap().click().await.unwrap();
    let overview = wait_for_text(&browser, &["Overview", "Mobile", "Open issues", "Service health", "Ingest per signal"]).await;
    assert!(overview.contains("checkout-api"), "the service appears under its health: {overview}");
    screenshot(&browser, "overview").await;

    // Filters live in the URL: a text filter that matches nothing, then one that matches.
    browser.goto(&format!("{base}/p/default/issues?q=no-such-error")).await.unwrap();
    wait_for_text(&browser, &["No issues match these filters."]).await;
    browser.goto(&format!("{base}/p/default/issues?q=JSONDecode&status=unresolved")).await.unwrap();
    wait_for_text(&browser, &["JSONDecodeError"]).await;
    let filter = browser.find(Locator::Css("input[name=q]")).await.unwrap();
    assert_eq!(filter.prop("value").await.unwrap().as_deref(), Some("JSONDecode"), "the form shows the URL's filter");

    // The issue page: stack trace innermost first with in-app frames marked, times in the
    // viewer's zone, then resolve it.
    browser.find(Locator::Css("table.issues td a")).await.unwrap().click().await.unwrap();
    let issue =
        wait_for_text(&browser, &["Stack trace", "charge_card", "place_order", "raw_decode", "Occurrences", "Tags"])
            .await;
    let in_app = browser.find_all(Locator::Css("li.frame.in-app")).await.unwrap();
    let frames = browser.find_all(Locator::Css("li.frame")).await.unwrap();
    assert_eq!((in_app.len(), frames.len()), (2, 4), "the two /srv/app frames are in-app, the stdlib ones not");
    assert!(frames[0].text().await.unwrap().contains("raw_decode"), "innermost frame first");
    let shown_time = browser.find(Locator::Css("time")).await.unwrap().text().await.unwrap();
    assert!(!shown_time.contains("UTC"), "the script shows times in the viewer's zone: {shown_time:?}");
    assert!(issue.contains("production") && issue.contains("2.4.1"), "tags: {issue}");
    screenshot(&browser, "issue").await;
    browser.find(Locator::Css("form.actions button[value=resolved]")).await.unwrap().click().await.unwrap();
    let resolved = wait_for_text(&browser, &["Reopen", "Status history", EMAIL]).await;
    assert!(resolved.contains("resolved"), "{resolved}");
    screenshot(&browser, "issue-resolved").await;
    let project = store.find_project("default").unwrap().unwrap();
    let issues = store
        .list_issues(project.id, &sightline_server::store::errors::IssueQuery { limit: 5, ..Default::default() })
        .unwrap();
    let clicked = issues.items.iter().find(|issue| issue.title.contains("JSONDecodeError")).expect("the clicked issue");
    assert_eq!(clicked.status.as_str(), "resolved", "the button changed the stored issue");

    // From the event to its trace: the waterfall with errors and the critical path.
    browser.find(Locator::Css("ul.links a[href*='/traces/']")).await.unwrap().click().await.unwrap();
    let waterfall = wait_for_text(&browser, &["POST /checkout", "SELECT orders", "charge_card", "critical path"]).await;
    assert!(waterfall.contains(&trace_id), "{waterfall}");
    let error_rows = browser.find_all(Locator::Css("details.span.error")).await.unwrap();
    assert_eq!(error_rows.len(), 2, "the root and charge_card failed");
    let critical = browser.find_all(Locator::Css("details.span.critical")).await.unwrap();
    assert_eq!(critical.len(), 3, "root, then charge_card, then the query before it");
    // Open the failing span with the mouse and the database span with the keyboard.
    let charge = browser
        .find(Locator::XPath("//details[contains(@class,'span')]/summary[contains(., 'charge_card')]"))
        .await
        .unwrap();
    charge.click().await.unwrap();
    wait_for_text(&browser, &["exception", "payment provider answered garbage", "exception.stacktrace"]).await;
    let query = browser
        .find(Locator::XPath("//details[contains(@class,'span')]/summary[contains(., 'SELECT orders')]"))
        .await
        .unwrap();
    query.send_keys("\u{E007}").await.unwrap();
    wait_for_text(&browser, &["db.query.text", "SELECT * FROM orders WHERE id = $1"]).await;
    screenshot(&browser, "trace").await;

    // The trace list, then the switcher: another project, same section.
    browser.find(Locator::LinkText("Traces")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["checkout-api: POST /checkout", "Search"]).await;
    screenshot(&browser, "traces").await;
    browser.find(Locator::Id("project-switcher")).await.unwrap().select_by_value("mobile").await.unwrap();
    browser.find(Locator::Css("form.switcher button")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["No traces match."]).await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/p/mobile/traces");

    // Sign out: the pages are closed again.
    browser.find(Locator::Css("form.signout button")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Sign in to Sightline"]).await;
    browser.goto(&format!("{base}/")).await.unwrap();
    wait_for_text(&browser, &["Sign in to Sightline"]).await;
    browser.close().await.unwrap();
}
