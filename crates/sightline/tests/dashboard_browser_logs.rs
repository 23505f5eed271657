//! The logs page and the metrics explorer in a real headless Chromium (chromedriver,
//! fantoccini): a log sent over OTLP/HTTP while the page is open appears without a reload
//! through the live tail, pausing holds new records until resumed, a record's attributes
//! expand and its trace link opens the waterfall at its span; a gauge is charted grouped by
//! its attribute through the explorer's form. Screenshots go to `<target>/tmp/ui-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them when missing).

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

mod common;
mod common_logs;

use common::browser::{ChromeDriver, EMAIL, PASSWORD, screenshot, sign_in, wait_for_text};
use common::dashboard::{create_user, send_checkout_trace};
use common::{TestServer, flatten_spans};
use common_logs::{TestLog, send_gauge, send_logs};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_logs_arrive_lead_to_their_trace_and_a_metric_is_charted_by_attribute() {
    let server = TestServer::start().await;
    create_user(&server, EMAIL, PASSWORD, &["default"]);
    let ingest_key = server.ingest_key.clone();
    let trace_id = send_checkout_trace(&server, &ingest_key, "checkout-api").await;
    let trace = server.api_ok(&format!("/api/v1/projects/default/traces/{trace_id}")).await;
    let charge_span = flatten_spans(&trace)
        .into_iter()
        .find(|span| span["name"] == "charge_card")
        .map(|span| span["span_id"].as_str().unwrap().to_owned())
        .expect("the charge_card span");
    send_logs(&server, &ingest_key, &[TestLog::info("checkout-api", "Cart loaded with 3 items")]).await;
    send_gauge(&server, "queue.depth", "queue", &[("emails", 12.0), ("payments", 3.0)]).await;
    let base = server.http_base();
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &base, EMAIL, PASSWORD).await;

    // The logs page lists what is stored, then the live tail connects.
    browser.find(Locator::LinkText("Logs")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Logs", "Cart loaded with 3 items", "Live tail on"]).await;
    // A marker that a reload would lose.
    browser.execute("window.stillTheSamePage = 42;", vec![]).await.unwrap();
    screenshot(&browser, "logs").await;

    send_logs(
        &server,
        &ingest_key,
        &[TestLog {
            trace_id: Some(&trace_id),
            span_id: Some(&charge_span),
            attributes: &[("payment.provider", "acme-pay"), ("order.id", "1234")],
            ..TestLog::error("checkout-api", "Payment provider timed out for order 1234")
        }],
    )
    .await;
    wait_for_text(&browser, &["Payment provider timed out for order 1234", "1 new log arrived"]).await;
    let marker = browser.execute("return window.stillTheSamePage;", vec![]).await.unwrap();
    assert_eq!(marker, serde_json::json!(42), "the record arrived without a reload");
    let first_row = browser.find(Locator::Css("#log-rows tr:first-child")).await.unwrap();
    let first_text = first_row.text().await.unwrap();
    assert!(
        first_text.contains("Payment provider timed out") && first_text.contains("ERROR"),
        "newest on top: {first_text}"
    );
    assert!(!first_text.contains("UTC"), "the time shows in the viewer's zone: {first_text}");

    // Paused, a new record waits; resumed, it shows.
    browser.find(Locator::Css("[data-tail-toggle]")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Resume live tail", "Live tail paused"]).await;
    send_logs(&server, &ingest_key, &[TestLog::info("checkout-api", "Retrying payment for order 1234")]).await;
    let paused = wait_for_text(&browser, &["1 new waiting"]).await;
    assert!(!paused.contains("Retrying payment"), "held while paused: {paused}");
    browser.find(Locator::Css("[data-tail-toggle]")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Retrying payment for order 1234", "2 new logs arrived", "Pause live tail"]).await;

    // The live record's attributes expand; its trace link opens the waterfall at its span.
    let live_row = browser
        .find(Locator::XPath("//tr[contains(@class,'live')][contains(., 'Payment provider timed out')]"))
        .await
        .unwrap();
    live_row.find(Locator::Css("summary")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["payment.provider", "acme-pay", "order.id"]).await;
    screenshot(&browser, "logs-live").await;
    live_row.find(Locator::Css("a.trace-link")).await.unwrap().click().await.unwrap();
    let waterfall = wait_for_text(&browser, &["POST /checkout", "charge_card", "critical path"]).await;
    assert!(waterfall.contains(&trace_id), "{waterfall}");
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.path(), format!("/p/default/traces/{trace_id}"));
    assert_eq!(url.fragment(), Some(format!("span-{charge_span}").as_str()), "the link names the log's span");
    screenshot(&browser, "logs-trace").await;

    // Filters in the URL: the error filter leaves the info records out.
    browser.goto(&format!("{base}/p/default/logs?severity_min=error")).await.unwrap();
    let errors = wait_for_text(&browser, &["Payment provider timed out"]).await;
    assert!(!errors.contains("Cart loaded"), "{errors}");

    // The metrics explorer: pick the gauge, group by its attribute, read the legend and table.
    browser.find(Locator::LinkText("Metrics")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Metrics of this project", "queue.depth", "Messages waiting to be sent"]).await;
    browser.find(Locator::LinkText("queue.depth")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Metric queue.depth", "Aggregation", "Group by"]).await;
    browser.find(Locator::Css("select[name=group_by]")).await.unwrap().select_by_value("queue").await.unwrap();
    browser.find(Locator::Css("select[name=stat]")).await.unwrap().select_by_value("max").await.unwrap();
    browser.find(Locator::Css("form.filters button[type=submit]")).await.unwrap().click().await.unwrap();
    let chart = wait_for_text(&browser, &["queue=emails", "queue=payments", "latest 12.0 {message}"]).await;
    assert!(chart.contains("latest 3.00 {message}"), "{chart}");
    let lines = browser.find_all(Locator::Css("figure.line-chart g.series")).await.unwrap();
    assert_eq!(lines.len(), 2, "one line per queue");
    let url = browser.current_url().await.unwrap();
    let query = url.query().unwrap_or_default().to_owned();
    assert!(query.contains("group_by=queue") && query.contains("stat=max"), "the choice is in the URL: {query}");
    browser.find(Locator::Css("details.chart-table summary")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Bucket start"]).await;
    screenshot(&browser, "metrics").await;
    browser.close().await.unwrap();
    server.stop().await;
}
