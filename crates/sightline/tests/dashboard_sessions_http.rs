//! The sessions, journeys and web-vitals pages over plain HTTP, on real `/v1/events` batches and
//! an OpenTelemetry SDK trace carrying the session: no page shows data without a session (303
//! to sign-in), a non-member's project and another project's session answer 404, bad filters
//! answer 400 with a message, and the pages show the figures the API computes (timeline order
//! and links, funnel counts and rates, p75s with the API's ratings).

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

mod common;
#[path = "common/product_seed.rs"]
mod product_seed;

use common::TestServer;
use common::dashboard::{create_user, plain_client, sign_in};
use product_seed::{SESSION, Seeded, post_events, seed_shop};
use serde_json::json;
use sightline_server::auth::KeyScope;

const ALICE: (&str, &str) = ("alice@example.com", "alice-password-1");

/// The shop traffic in `default` (Alice's), one secret session in `other-team` (not hers).
async fn fixture() -> (TestServer, Seeded, String) {
    let server = TestServer::start().await;
    let store = server.server.as_ref().unwrap().store.clone();
    let other = store.create_project("Other team").unwrap();
    let (other_key, _) = store.create_api_key(other.id, KeyScope::All, "other").unwrap();
    create_user(&server, ALICE.0, ALICE.1, &["default"]);
    let seeded = seed_shop(&server).await;
    let secret = json!({"event_id": "secret-1", "product_id": "billing", "session.id": "sess-other-secret",
        "user.id": "billing-secret-user", "event.type": "page.view", "event.name": "page_view",
        "page.path": "/billing-secret-page"});
    post_events(&server, other_key.expose(), &[secret]).await;
    let cookie = sign_in(&server.http_base(), ALICE.0, ALICE.1).await;
    (server, seeded, cookie)
}

async fn get(server: &TestServer, cookie: &str, path: &str) -> (u16, String) {
    let response =
        plain_client().get(format!("{}{path}", server.http_base())).header("cookie", cookie).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The byte offset of `needle` in `page`, failing with the page when absent.
fn at(page: &str, needle: &str) -> usize {
    page.find(needle).unwrap_or_else(|| panic!("the page lacks {needle:?}:\n{page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_membership() {
    let (server, _, cookie) = fixture().await;
    let pages = [
        "/p/default/sessions",
        "/p/default/sessions?has_errors=true&range=24h",
        "/p/default/sessions/sess-browser-1",
        "/p/default/journeys",
        "/p/default/journeys/checkout",
        "/p/default/web-vitals?page=/checkout",
    ];
    for cookie in [None, Some("sightline_session=forged-token")] {
        for page in pages {
            let mut request = plain_client().get(format!("{}{page}", server.http_base()));
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 303, "{page} with {cookie:?}");
            assert!(response.headers()["location"].to_str().unwrap().starts_with("/login?next=/p/default/"));
            let body = response.text().await.unwrap();
            for secret in ["sess-browser", "user-7", "checkout-api", "Shipping address"] {
                assert!(!body.contains(secret), "{page} leaked {secret:?}: {body}");
            }
        }
    }
    for page in [
        "/p/other-team/sessions",
        "/p/other-team/sessions/sess-other-secret",
        "/p/other-team/journeys",
        "/p/other-team/journeys/checkout",
        "/p/other-team/web-vitals",
        // The other project's session through Alice's own project.
        "/p/default/sessions/sess-other-secret",
        "/p/no-such-project/sessions",
        // A journey with no events in the range.
        "/p/default/journeys/no-such-journey",
    ] {
        let (status, body) = get(&server, &cookie, page).await;
        assert_eq!(status, 404, "{page}: {body}");
        for secret in ["billing-secret-user", "/billing-secret-page"] {
            assert!(!body.contains(secret), "{page} leaked {secret:?}: {body}");
        }
    }
    // The session list of her project does not list the other project's session.
    let (status, list) = get(&server, &cookie, "/p/default/sessions").await;
    assert_eq!(status, 200);
    assert!(list.contains(SESSION) && !list.contains("sess-other-secret"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_answer_400_with_a_message() {
    let (server, _, cookie) = fixture().await;
    for (page, message) in [
        ("/p/default/sessions?has_errors=maybe", "has_errors"),
        ("/p/default/sessions?range=2w", "range=\"2w\""),
        ("/p/default/sessions?from=yesterday", "from=\"yesterday\""),
        ("/p/default/sessions?usr=user-7", "unknown parameter(s) usr"),
        ("/p/default/sessions?limit=0", "limit must be between 1 and 1000"),
        ("/p/default/sessions/sess-browser-1?limit=9999", "limit must be between 1 and 5000"),
        ("/p/default/journeys?range=forever", "range=\"forever\""),
        ("/p/default/journeys/checkout?steps=cart,cart", "twice"),
        ("/p/default/web-vitals?from=1900000000&to=1800000000", "from must not be after to"),
        ("/p/default/web-vitals?pg=/checkout", "unknown parameter(s) pg"),
    ] {
        let (status, body) = get(&server, &cookie, page).await;
        let body = body.replace("&quot;", "\"");
        assert_eq!(status, 400, "{page}: {body}");
        assert!(body.contains("400 Bad Request") && body.contains(message), "{page} should say {message:?}: {body}");
    }
    // These pages change nothing: there is no form to post.
    let response = plain_client()
        .post(format!("{}/p/default/sessions", server.http_base()))
        .header("cookie", cookie.clone())
        .form(&[("user", "user-7")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_list_and_timeline_show_the_merged_session() {
    let (server, seeded, cookie) = fixture().await;
    let (_, list) = get(&server, &cookie, "/p/default/sessions").await;
    for session in [SESSION, "sess-browser-2", "sess-browser-3"] {
        assert!(list.contains(&format!(r#"href="/p/default/sessions/{session}""#)), "{session} listed: {list}");
    }
    assert!(list.contains("Server requests carrying a session id: <strong>100.0%</strong> (1 of 1)"), "{list}");
    // Filters with the API's names.
    let (_, with_errors) = get(&server, &cookie, "/p/default/sessions?has_errors=true").await;
    assert!(with_errors.contains(SESSION) && !with_errors.contains("sess-browser-2"), "{with_errors}");
    assert!(with_errors.contains(r#"<option value="true" selected>"#), "the form shows the filter: {with_errors}");
    let (_, of_user) = get(&server, &cookie, "/p/default/sessions?user=user-8&range=24h").await;
    assert!(of_user.contains("sess-browser-2") && !of_user.contains(SESSION), "{of_user}");
    let (_, none) = get(&server, &cookie, "/p/default/sessions?has_errors=true&user=user-8").await;
    assert!(none.contains("No sessions match."), "{none}");

    let (status, page) = get(&server, &cookie, &format!("/p/default/sessions/{SESSION}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>Session sess-browser-1</h1>"), "{page}");
    assert!(page.contains("checkout-api") && page.contains("user-7") && page.contains("Chrome/131.0"), "{page}");
    // Frontend events, then the backend request (linking to its span in the waterfall) and the
    // error it raised (linking to its issue), in time order.
    let cart_view = at(&page, "on <code>/cart</code>");
    let click = at(&page, "add_to_cart");
    let payment = at(&page, "checkout_payment");
    let request = at(&page, &format!(r#"href="/p/default/traces/{}#span-"#, seeded.trace_id));
    let error = at(&page, r#"href="/p/default/issues/"#);
    assert!(cart_view < click && click < payment && payment < request && request < error, "time order: {page}");
    assert!(page.contains("cart.items=2"), "event properties inline: {page}");
    assert!(page.contains("+1.00 s") && page.contains("+20.00 s"), "offsets from the session start: {page}");
    assert!(page.contains("data-keynav"), "the timeline is keyboard navigable: {page}");
    // The linked trace and issue open.
    let issue_link = page[error..].split('"').nth(1).unwrap().to_owned();
    let (status, issue) = get(&server, &cookie, &issue_link).await;
    assert_eq!(status, 200, "{issue_link}");
    assert!(issue.contains(&format!(r#"href="/p/default/sessions/{SESSION}""#)), "the issue links back: {issue}");
    let (status, _) = get(&server, &cookie, &format!("/p/default/traces/{}", seeded.trace_id)).await;
    assert_eq!(status, 200);
    // Paging the timeline keeps going where the previous page stopped.
    let (_, first) = get(&server, &cookie, &format!("/p/default/sessions/{SESSION}?limit=2")).await;
    let next = first.split(r#"rel="next" href=""#).nth(1).expect("a next page").split('"').next().unwrap();
    let (status, second) = get(&server, &cookie, &next.replace("&amp;", "&")).await;
    assert_eq!(status, 200);
    assert!(first.contains("/cart") && second.contains("add_to_cart") && !first.contains("add_to_cart"), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_and_web_vitals_show_the_apis_figures() {
    let (server, _, cookie) = fixture().await;
    let (status, list) = get(&server, &cookie, "/p/default/journeys").await;
    assert_eq!(status, 200, "{list}");
    assert!(list.contains(r#"href="/p/default/journeys/checkout""#), "{list}");
    assert!(list.contains("Cart (3) → Shipping address (2) → Payment (1)"), "steps in observed order: {list}");
    let (_, ranged) = get(&server, &cookie, "/p/default/journeys?range=30d").await;
    assert!(ranged.contains(r#"href="/p/default/journeys/checkout?range=30d""#), "links keep the range: {ranged}");
    let (_, past) = get(&server, &cookie, "/p/default/journeys?from=1000000000&to=1000003600").await;
    assert!(past.contains("No journeys in this range."), "{past}");

    let (status, funnel) = get(&server, &cookie, "/p/default/journeys/checkout").await;
    assert_eq!(status, 200, "{funnel}");
    assert!(funnel.contains("3 sessions started, 1 completed every step (33.3%)"), "{funnel}");
    // Shipping: 2 of 3 (66.7%), median of 11 s and 5 s; payment: 1 of 2 (50%) after 8 s.
    let shipping = &funnel[at(&funnel, "<th scope=\"row\">Shipping address")..];
    let row = &shipping[..at(shipping, "</tr>")];
    for figure in ["<td class=\"num\">3</td>", "<td class=\"num\">2</td>", "66.7%", "8.00 s"] {
        assert!(row.contains(figure), "shipping row has {figure}: {row}");
    }
    let payment = &funnel[at(&funnel, "<th scope=\"row\">Payment")..];
    assert!(payment[..at(payment, "</tr>")].contains("50.0%"), "{payment}");
    assert!(funnel.contains("<dd>1</dd>"), "one reported abandonment: {funnel}");
    // An explicit order is the API's `steps=`.
    let (_, explicit) = get(&server, &cookie, "/p/default/journeys/checkout?steps=shipping,payment").await;
    assert!(explicit.contains("Steps in the order given.") && explicit.contains("1. Shipping address"), "{explicit}");
    assert!(explicit.contains("Shipping address: 2 of 3 sessions that reached it (66.7%)"), "{explicit}");

    let (status, vitals) = get(&server, &cookie, "/p/default/web-vitals").await;
    assert_eq!(status, 200, "{vitals}");
    let checkout = &vitals[at(&vitals, "<code>/checkout</code>")..];
    let checkout = &checkout[..at(checkout, "</tr>")];
    // LCP p75 of 1.8 s and 3 s (nearest rank) is 3 s: needs improvement, half the loads good.
    assert!(checkout.contains("3.00 s") && checkout.contains("rating-needs-improvement"), "{checkout}");
    assert!(checkout.contains("50.0% good, 50.0% needs improvement, 0.0% poor"), "{checkout}");
    let cart = &vitals[at(&vitals, "<code>/cart</code>")..];
    let cart = &cart[..at(cart, "</tr>")];
    assert!(cart.contains("4.80 s") && cart.contains("0.300") && cart.contains(">poor<"), "{cart}");
    assert!(vitals.contains("≤ 2.50 s") && vitals.contains("&gt; 0.250"), "thresholds listed: {vitals}");
    let (_, one_page) = get(&server, &cookie, "/p/default/web-vitals?page=/cart&range=7d").await;
    assert!(one_page.contains("<code>/cart</code>") && !one_page.contains("<code>/checkout</code>"), "{one_page}");
}

/// Page times with 5,000 sessions of 10 events each (50,000 events: page views, clicks,
/// checkout steps, web vitals): `cargo test --release -p sightline --test
/// dashboard_sessions_http -- --ignored --nocapture`. Prints the median of 5 loads per page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn page_times_with_many_sessions() {
    let server = TestServer::start().await;
    create_user(&server, ALICE.0, ALICE.1, &["default"]);
    let start = std::time::SystemTime::now() - std::time::Duration::from_secs(3_600);
    let key = server.ingest_key.clone();
    let mut batch = Vec::with_capacity(1_000);
    for session in 0..5_000u64 {
        for index in 0..10u64 {
            let at = start + std::time::Duration::from_millis(session * 500 + index * 40);
            let (event_type, fields) = match index {
                0 => ("page.view", json!({"page.path": format!("/p{}", session % 50)})),
                1..=3 => (
                    "journey.step",
                    json!({"journey.id": format!("j{}", session % 5), "journey.step.id": format!("s{index}")}),
                ),
                4 => (
                    "performance",
                    json!({"page.path": format!("/p{}", session % 50), "performance.lcp_ms": (session % 5_000) as f64, "performance.cls": 0.01}),
                ),
                _ => ("ui.click", json!({"page.path": "/cart"})),
            };
            let mut event = json!({"event_id": format!("b-{session}-{index}"), "product_id": "shop", "session.id": format!("s-{session}"),
                "user.id": format!("u-{}", session % 700), "event.type": event_type, "event.name": "bench",
                "event.timestamp": humantime::format_rfc3339_millis(at).to_string()});
            for (name, value) in fields.as_object().unwrap() {
                event[name] = value.clone();
            }
            batch.push(event);
            if batch.len() == 1_000 {
                post_events(&server, &key, &batch).await;
                batch.clear();
            }
        }
    }
    let cookie = sign_in(&server.http_base(), ALICE.0, ALICE.1).await;
    // Ingest commits asynchronously: wait until the last session is listed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while get(&server, &cookie, "/p/default/sessions/s-4999").await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "the sessions never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // One client, so the times are the server's, not new connections'.
    let client = plain_client();
    for page in [
        // A page that reads no session data, for the cost of the sign-in check and the layout.
        "/p/default/traces",
        "/p/default/sessions",
        "/p/default/sessions?has_errors=false&user=u-7",
        "/p/default/sessions/s-2500",
        "/p/default/journeys",
        "/p/default/journeys/j1",
        "/p/default/web-vitals",
    ] {
        let mut times = Vec::new();
        for _ in 0..5 {
            let began = std::time::Instant::now();
            let response =
                client.get(format!("{}{page}", server.http_base())).header("cookie", &cookie).send().await.unwrap();
            let status = response.status().as_u16();
            response.bytes().await.unwrap();
            times.push(began.elapsed());
            assert_eq!(status, 200, "{page}");
        }
        times.sort();
        println!("{page}: median {:?} (min {:?}, max {:?})", times[2], times[0], times[4]);
    }
}
