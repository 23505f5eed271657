//! The performance pages over plain HTTP with real SDK traffic (`web` → `cart` → `payments`):
//! no page shows data without a session, another team's project answers 404 on every page,
//! bad filters answer 400 with a message naming the parameter, the pages only read (POST is
//! refused and changes nothing), operations are one URL-encoded path segment, and the figures
//! are the REST API's.

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

mod common;

use std::time::Duration;

use common::TestServer;
use common::dashboard::{create_user, plain_client, sign_in};
use common::performance::{ORDERS_QUERY, USERS_OPERATION, send_shop_traffic};

const ALICE: (&str, &str) = ("alice@example.com", "alice-password-1");
const BOB: (&str, &str) = ("bob@example.com", "bob-password-22");
/// `GET /users/{id}` as one path segment.
const ENCODED_OPERATION: &str = "GET%20%2Fusers%2F%7Bid%7D";

fn pages() -> Vec<String> {
    vec![
        "/p/default/services".to_owned(),
        "/p/default/services?timeRange=1h&environment=production".to_owned(),
        "/p/default/services/web".to_owned(),
        "/p/default/services/web?sort=p95".to_owned(),
        format!("/p/default/services/web/endpoints/{ENCODED_OPERATION}"),
        "/p/default/services/web/system".to_owned(),
        "/p/default/databases".to_owned(),
        "/p/default/service-map".to_owned(),
    ]
}

async fn fixture() -> TestServer {
    let server = TestServer::start_with(|config| config.slow_query_threshold = Duration::from_millis(50)).await;
    let store = server.server.as_ref().unwrap().store.clone();
    store.create_project("Other team").unwrap();
    create_user(&server, ALICE.0, ALICE.1, &["default"]);
    create_user(&server, BOB.0, BOB.1, &["other-team"]);
    send_shop_traffic(&server).await;
    server
}

async fn get(base: &str, cookie: Option<&str>, path: &str) -> (u16, String) {
    let mut request = plain_client().get(format!("{base}{path}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn performance_pages_are_private_validated_and_match_the_api() {
    let server = fixture().await;
    let base = server.http_base();

    // No session, or a forged one: 303 to sign-in, and no data in the body.
    for cookie in [None, Some("sightline_session=forged-token")] {
        for page in pages() {
            let response = {
                let mut request = plain_client().get(format!("{base}{page}"));
                if let Some(cookie) = cookie {
                    request = request.header("cookie", cookie);
                }
                request.send().await.unwrap()
            };
            assert_eq!(response.status().as_u16(), 303, "{page} with {cookie:?}");
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            assert!(location.starts_with("/login?next=/p/default/"), "{location}");
            let body = response.text().await.unwrap();
            for secret in ["payments", "cart", "SELECT", "users"] {
                assert!(!body.contains(secret), "{page} leaked {secret:?}");
            }
        }
    }

    // Bob is not a member of `default`: every page is 404 and names nothing of it.
    let bob = sign_in(&base, BOB.0, BOB.1).await;
    for page in pages() {
        let (status, body) = get(&base, Some(&bob), &page).await;
        assert_eq!(status, 404, "{page}");
        assert!(!body.contains("payments") && !body.contains("SELECT"), "{page} leaked data to a non-member");
    }
    let (status, body) = get(&base, Some(&bob), "/p/other-team/services").await;
    assert_eq!(status, 200);
    assert!(body.contains("No service has sent anything"), "Bob's own project is empty");

    let alice = sign_in(&base, ALICE.0, ALICE.1).await;
    for page in pages() {
        let started = std::time::Instant::now();
        let (status, body) = get(&base, Some(&alice), &page).await;
        eprintln!("{page}: {} ms (debug build, loopback)", started.elapsed().as_millis());
        assert_eq!(status, 200, "{page}: {body}");
        if page == "/p/default/services" {
            // Baselines from other sections, same session (what the shared machine costs).
            for other in ["/", "/p/default/traces"] {
                let started = std::time::Instant::now();
                assert_eq!(get(&base, Some(&alice), other).await.0, 200);
                eprintln!("baseline {other}: {} ms", started.elapsed().as_millis());
            }
        }
        assert!(body.contains("<h1>") && body.contains("<title>"), "{page} has a title and heading");
    }

    // Bad filters: 400 naming what to fix.
    for (page, message) in [
        ("/p/default/services?timeRange=soon", "timeRange"),
        ("/p/default/services?window=1h", "unknown parameter"),
        ("/p/default/services/web?sort=latency", "sort="),
        ("/p/default/services/web?timeRange=400d", "timeRange"),
        (&format!("/p/default/services/web/endpoints/{ENCODED_OPERATION}?limit=50") as &str, "limit"),
        ("/p/default/databases?sort=p99", "sort="),
        ("/p/default/service-map?timeRange=forever", "timeRange"),
        ("/p/default/service-map?from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z", "from must be before to"),
        ("/p/default/services/web/system?hosts=web-1", "unknown parameter"),
    ] {
        let (status, body) = get(&base, Some(&alice), page).await;
        assert_eq!(status, 400, "{page}: {body}");
        assert!(body.contains(message), "{page} says {message:?}: {body}");
        assert!(body.contains("role=\"alert\""), "{page} shows the message as an alert");
    }
    // Unknown services are 404, on the REST API and the pages alike.
    for page in ["/p/default/services/nobody", "/p/default/services/nobody/system"] {
        assert_eq!(get(&base, Some(&alice), page).await.0, 404, "{page}");
    }

    // The pages only read: POST is refused (no form on them changes anything) and no data shows.
    for page in ["/p/default/services", "/p/default/services/web", "/p/default/databases"] {
        let response = plain_client().post(format!("{base}{page}")).header("cookie", &alice).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 405, "{page}");
        assert!(!response.text().await.unwrap().contains("payments"));
    }

    // The operation is one encoded segment: links use it, and the raw path is not the endpoint.
    let (_, service_page) = get(&base, Some(&alice), "/p/default/services/web").await;
    assert!(
        service_page.contains(&format!("href=\"/p/default/services/web/endpoints/{ENCODED_OPERATION}")),
        "{service_page}"
    );
    let (status, endpoint_page) =
        get(&base, Some(&alice), &format!("/p/default/services/web/endpoints/{ENCODED_OPERATION}")).await;
    assert_eq!(status, 200);
    assert!(endpoint_page.contains(&format!("<h1>{USERS_OPERATION}</h1>")), "{endpoint_page}");
    assert_eq!(get(&base, Some(&alice), "/p/default/services/web/endpoints/GET /users/{id}").await.0, 404);

    // Figures are the REST API's: requests, and every endpoint listed.
    let api = server.api_ok("/api/v1/projects/default/services/web/performance?timeRange=1h").await;
    let (_, page) = get(&base, Some(&alice), "/p/default/services/web?timeRange=1h").await;
    let requests = api["summary"]["requests"].as_u64().unwrap();
    assert_eq!(requests, 60);
    assert!(page.contains(&format!("<dd>{requests}</dd>")), "{page}");
    for endpoint in api["endpoints"].as_array().unwrap() {
        assert!(page.contains(endpoint["operation"].as_str().unwrap()), "{endpoint}");
    }
    let (_, databases) = get(&base, Some(&alice), "/p/default/databases?sort=total").await;
    assert!(databases.contains(ORDERS_QUERY) && databases.contains("Slow queries"), "{databases}");
    let (_, services) = get(&base, Some(&alice), "/p/default/services").await;
    assert!(services.contains("status-failing") && services.contains("status-healthy"), "{services}");
}
