//! The dashboard's performance section in a real headless Chromium (chromedriver, fantoccini),
//! fed by a real three-service trace chain (`web` → `cart` → `payments`, OpenTelemetry SDK,
//! W3C trace context between the services) with a database query and host metrics: the
//! services list with health, a service's charts, sortable endpoint table and dependencies,
//! an endpoint whose operation has spaces, slashes and braces (URL-encoded), its slowest trace,
//! the service map graph, the databases page and system health. Screenshots of each page go to
//! `<target>/tmp/ui-screenshots/performance-*.png`.

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

mod common;

use std::time::Duration;

use common::TestServer;
use common::browser::{ChromeDriver, EMAIL, PASSWORD, screenshot, sign_in, wait_for_text};
use common::dashboard::create_user;
use common::performance::{ORDERS_QUERY, REQUESTS, USERS_OPERATION, WEB_HOST, send_shop_traffic};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn performance_pages_in_chromium() {
    let server = TestServer::start_with(|config| config.slow_query_threshold = Duration::from_millis(50)).await;
    create_user(&server, EMAIL, PASSWORD, &["default"]);
    let sent = send_shop_traffic(&server).await;
    let base = server.http_base();
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &base, EMAIL, PASSWORD).await;

    // The services list: from the main navigation, each service with its health.
    browser.find(Locator::LinkText("Performance")).await.unwrap().click().await.unwrap();
    let list = wait_for_text(&browser, &["Services", "web", "cart", "payments", "failing", "healthy"]).await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/p/default/services");
    let payments_row = browser.find(Locator::XPath("//table//tr[td/a[text()='payments']]")).await.unwrap();
    let payments_text = payments_row.text().await.unwrap();
    assert!(payments_text.contains("failing") && payments_text.contains("20.0 %"), "6 of 30 failed: {payments_text}");
    assert!(list.contains("Requests / min"), "{list}");
    screenshot(&browser, "performance-services").await;

    // The service page: charts, the endpoint table, dependencies.
    browser.find(Locator::LinkText("web")).await.unwrap().click().await.unwrap();
    let service = wait_for_text(
        &browser,
        &["Service web", "Latency", "Throughput", USERS_OPERATION, "GET /health", "Dependencies", "cart"],
    )
    .await;
    assert!(service.contains(&format!("{}", REQUESTS * 2)), "60 requests in the summary: {service}");
    let lines = browser.find_all(Locator::Css("figure.line-chart path.series")).await.unwrap();
    assert!(!lines.is_empty(), "the charts draw lines");
    let rows =
        |text: String| text.lines().filter(|line| line.starts_with("GET /")).map(str::to_owned).collect::<Vec<_>>();
    let table = browser.find(Locator::Css("table.endpoints tbody")).await.unwrap().text().await.unwrap();
    assert!(rows(table)[0].starts_with("GET /health"), "equal requests: by operation");
    screenshot(&browser, "performance-service").await;
    // Sort by p95 from the column heading: the slow user endpoint comes first.
    browser
        .find(Locator::XPath("//table[contains(@class,'endpoints')]//th/a[starts-with(., 'p95')]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, &["p95 ▼"]).await;
    assert!(browser.current_url().await.unwrap().query().unwrap_or("").contains("sort=p95"));
    let table = browser.find(Locator::Css("table.endpoints tbody")).await.unwrap().text().await.unwrap();
    assert!(rows(table)[0].starts_with(USERS_OPERATION), "slowest p95 first");
    // The environment filter keeps the figures (everything was sent from production).
    browser.find(Locator::Css("select[name=environment]")).await.unwrap().select_by_value("production").await.unwrap();
    browser.find(Locator::Css("form.filters button")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &[USERS_OPERATION]).await;
    let query = browser.current_url().await.unwrap().query().unwrap_or("").to_owned();
    assert!(query.contains("environment=production") && query.contains("sort=p95"), "{query}");

    // The endpoint page: its operation is one encoded path segment.
    browser.find(Locator::LinkText(USERS_OPERATION)).await.unwrap().click().await.unwrap();
    let endpoint = wait_for_text(
        &browser,
        &["Latency distribution", "Status codes", "200", "Slowest requests", &sent.slowest_trace_id],
    )
    .await;
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.path(), "/p/default/services/web/endpoints/GET%20%2Fusers%2F%7Bid%7D");
    let heading = browser.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert_eq!(heading, USERS_OPERATION);
    assert!(endpoint.contains("165.0 ms"), "the slowest request's exact duration: {endpoint}");
    let bars = browser.find_all(Locator::Css("figure.chart rect.bar")).await.unwrap();
    assert!(bars.len() > 1, "the histogram has bins");
    screenshot(&browser, "performance-endpoint").await;
    // The slowest request opens its trace: the whole chain.
    browser
        .find(Locator::Css(&format!("table.slowest a[href*='{}']", sent.slowest_trace_id)))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, &[&sent.slowest_trace_id, "POST /pay", "SELECT orders"]).await;
    assert_eq!(browser.current_url().await.unwrap().path(), format!("/p/default/traces/{}", sent.slowest_trace_id));

    // The service map: three linked nodes, two labelled edges, a table of the same.
    browser.goto(&format!("{base}/p/default/service-map")).await.unwrap();
    let map = wait_for_text(&browser, &["Service map", "Calls between services"]).await;
    assert!(map.contains(&format!("{REQUESTS} calls · 0.0 % errors")), "web → cart: {map}");
    assert!(map.contains(&format!("{REQUESTS} calls · 20.0 % errors")), "cart → payments: {map}");
    let nodes = browser.find_all(Locator::Css("figure.service-map a.node")).await.unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(browser.find_all(Locator::Css("figure.service-map g.edge-error")).await.unwrap().len(), 1);
    screenshot(&browser, "performance-service-map").await;
    // A node is a link to its service, which shows its callers and callees.
    browser
        .find(Locator::Css("figure.service-map a.node[href='/p/default/services/cart']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let cart = wait_for_text(&browser, &["Service cart", "Called by", "Calls", "payments", "web"]).await;
    assert!(cart.contains("POST /cart"), "{cart}");

    // Databases: the normalized query, flagged slow, with the slow call's trace.
    browser.find(Locator::LinkText("Databases")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &[ORDERS_QUERY, "slow", "Slow queries", "Slowest calls"]).await;
    screenshot(&browser, "performance-databases").await;
    browser.find(Locator::LinkText("Total time")).await.unwrap().click().await.unwrap();
    wait_for_text(&browser, &["Total time ▼"]).await;
    browser
        .find(Locator::Css(&format!("ul.slow-queries a[href*='{}']", sent.slow_query_trace_id)))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, &[&sent.slow_query_trace_id, "SELECT orders"]).await;

    // System health of web's host.
    browser.goto(&format!("{base}/p/default/services/web/system")).await.unwrap();
    let system = wait_for_text(&browser, &[&format!("Host {WEB_HOST}"), "Process memory", "256.0 MiB", "42.0 %"]).await;
    assert!(system.contains("Host memory"), "{system}");
    screenshot(&browser, "performance-system").await;
    browser.close().await.unwrap();
}
