//! Product analytics end to end: a checkout journey posted as ProductGraph events by five
//! sessions (some abandon at different steps), one step confirmed by the backend as an OTLP log
//! event and one as a server-side product event; then the journeys list, the funnel, event
//! statistics by name and type, and web vitals per page from `performance` events and from OTLP
//! metrics (a histogram in seconds and a gauge in ms). Bad input answers 400.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestServer;
use serde_json::{Value, json};

const SECOND: u64 = 1_000_000_000;
const HOUR: u64 = 3_600 * SECOND;

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn rfc3339(nanos: u64) -> String {
    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(nanos)).to_string()
}

/// Times of the scenario: `base` is one minute past the start of the hour two hours ago, so
/// the journey falls in one hourly bucket and the performance events in the next.
struct Clock {
    base: u64,
    from: u64,
    to: u64,
}

impl Clock {
    fn new() -> Self {
        let now = now_nanos();
        let hour_start = now / HOUR * HOUR;
        Self { base: hour_start - 2 * HOUR + 60 * SECOND, from: hour_start - 2 * HOUR, to: now }
    }

    fn at(&self, seconds: u64) -> u64 {
        self.base + seconds * SECOND
    }

    fn range(&self) -> String {
        format!("from={}&to={}", self.from, self.to)
    }
}

struct Events<'a> {
    clock: &'a Clock,
    events: Vec<Value>,
}

impl Events<'_> {
    fn push(&mut self, session: &str, user: &str, event_type: &str, name: &str, at_seconds: u64, fields: Value) {
        let mut event = json!({
            "event_id": format!("evt-{}", self.events.len()),
            "product_id": "shop",
            "session.id": session,
            "user.id": user,
            "event.type": event_type,
            "event.name": name,
            "event.timestamp": rfc3339(self.clock.at(at_seconds)),
        });
        for (key, value) in fields.as_object().unwrap() {
            event[key] = value.clone();
        }
        self.events.push(event);
    }

    fn step(&mut self, session: &str, user: &str, step: &str, at_seconds: u64) {
        let fields = json!({"page.path": "/checkout", "journey.id": "checkout", "journey.step.id": step,
                            "journey.step.name": format!("Checkout: {step}")});
        self.push(session, user, "journey.step", "checkout_step", at_seconds, fields);
    }

    fn result(&mut self, session: &str, user: &str, status: &str, at_seconds: u64) {
        let fields = json!({"journey.id": "checkout", "journey.conversion.status": status});
        self.push(session, user, "custom", "checkout_result", at_seconds, fields);
    }
}

async fn post_events(server: &TestServer, events: &[Value]) {
    let response = server
        .http
        .post(format!("{}/v1/events", server.http_base()))
        .header("x-api-key", &server.ingest_key)
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["accepted"], events.len(), "{answer}");
}

async fn post_otlp(server: &TestServer, signal: &str, body: Value) {
    let response = server
        .http
        .post(format!("{}/v1/{signal}", server.http_base()))
        .bearer_auth(&server.ingest_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

fn string_attribute(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// Posts the whole scenario (see the module docs and the expectations in the tests).
async fn post_scenario(server: &TestServer, clock: &Clock) {
    let mut events = Events { clock, events: Vec::new() };
    // s1 converts; its payment is confirmed by the backend (OTLP log event below).
    events.step("s1", "u1", "cart", 0);
    events.step("s1", "u1", "shipping", 20);
    events.step("s1", "u1", "payment", 50);
    events.step("s1", "u1", "confirmation", 60);
    events.result("s1", "u1", "converted", 60);
    // s2 converts; its confirmation and conversion are reported by the server (below).
    events.step("s2", "u2", "cart", 5);
    events.step("s2", "u2", "shipping", 45);
    events.step("s2", "u2", "payment", 75);
    events.step("s2", "u2", "confirmation", 105);
    // s3 abandons after shipping; s4 (the same user, another session) after the cart.
    events.step("s3", "u3", "cart", 10);
    events.step("s3", "u3", "shipping", 40);
    events.result("s3", "u3", "abandoned", 200);
    events.step("s4", "u3", "cart", 12);
    events.result("s4", "u3", "abandoned", 150);
    // s5 stops after payment without a status.
    events.step("s5", "u4", "cart", 15);
    events.step("s5", "u4", "shipping", 25);
    events.step("s5", "u4", "payment", 55);
    // Another journey and page views.
    events.push(
        "s6",
        "u5",
        "journey.step",
        "signup_step",
        30,
        json!({"journey.id": "signup", "journey.step.id": "form"}),
    );
    events.push("s1", "u1", "page.view", "page_view", 1, json!({"page.path": "/"}));
    events.push("s2", "u2", "page.view", "page_view", 2, json!({"page.path": "/"}));
    events.push("s6", "u5", "page.view", "page_view", 3, json!({"page.path": "/signup"}));
    // Web vitals an hour later: four loads of /checkout, one of / (page from the URL, FID only).
    let vitals = [
        ("s1", 1_800, 120, 0.01, 500, 1_000),
        ("s2", 2_200, 180, 0.02, 700, 1_200),
        ("s3", 2_600, 350, 0.30, 900, 1_500),
        ("s5", 5_200, 90, 0.05, 1_900, 3_500),
    ];
    for (session, lcp, inp, cls, ttfb, fcp) in vitals {
        let fields = json!({"page.path": "/checkout", "performance.lcp_ms": lcp, "performance.inp_ms": inp,
                            "performance.cls": cls, "performance.ttfb_ms": ttfb, "performance.fcp_ms": fcp});
        events.push(session, "u", "performance", "web_vitals", 3_600, fields);
    }
    let legacy = json!({"page.url": "https://shop.example.com/?utm_source=mail", "performance.lcp_ms": 4_500,
                        "performance.fid_ms": 250});
    events.push("s4", "u3", "performance", "web_vitals", 3_601, legacy);
    // The vitals events carry user "u" only to keep the user counts below simple: drop it.
    for event in &mut events.events {
        if event["user.id"] == "u" {
            event.as_object_mut().unwrap().remove("user.id");
        }
    }
    post_events(server, &events.events).await;

    // The server confirms s2's last step and conversion as a product event.
    let server_event = json!({
        "event_id": "srv-1", "product_id": "shop", "session.id": "s2", "user.id": "u2",
        "event.type": "journey.step", "event.name": "order_confirmed", "event.timestamp": rfc3339(clock.at(106)),
        "journey.id": "checkout", "journey.step.id": "confirmation", "journey.conversion.status": "converted",
        "metadata": {"source": "server"},
    });
    post_events(server, &[server_event]).await;

    // The payment service confirms s1's payment as an OpenTelemetry event (a log record with
    // `eventName`), over OTLP/HTTP JSON.
    let logs = json!({"resourceLogs": [{
        "resource": {"attributes": [string_attribute("service.name", "payments")]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": clock.at(51).to_string(), "severityNumber": 9, "eventName": "journey.step",
            "body": {"stringValue": "payment captured"},
            "attributes": [string_attribute("journey.id", "checkout"), string_attribute("journey.step.id", "payment"),
                           string_attribute("session.id", "s1"), string_attribute("user.id", "u1")],
        }]}],
    }]});
    post_otlp(server, "logs", logs).await;

    // Browser metrics: LCP as a delta histogram in seconds for /product (40 loads: 10 ≤ 1 s,
    // 20 in (1, 2.5] s, 10 in (2.5, 4] s), INP as a gauge in ms for /checkout, and a CLS gauge
    // with a unit that makes no sense for a score.
    let metrics = json!({"resourceMetrics": [{
        "resource": {"attributes": [string_attribute("service.name", "web")]},
        "scopeMetrics": [{"metrics": [
            {"name": "web_vitals.lcp", "unit": "s", "histogram": {"aggregationTemporality": 1, "dataPoints": [{
                "attributes": [string_attribute("page.path", "/product")],
                "startTimeUnixNano": clock.at(60).to_string(), "timeUnixNano": clock.at(120).to_string(),
                "count": "40", "sum": 80.0, "bucketCounts": ["10", "20", "10", "0"], "explicitBounds": [1.0, 2.5, 4.0]}]}},
            {"name": "browser.web_vital.inp", "unit": "ms", "gauge": {"dataPoints": [
                {"attributes": [string_attribute("url.path", "/checkout")], "timeUnixNano": clock.at(130).to_string(), "asDouble": 400.0},
                {"attributes": [string_attribute("url.path", "/checkout")], "timeUnixNano": clock.at(140).to_string(), "asDouble": 600.0}]}},
            {"name": "webvitals.CLS", "unit": "ms", "gauge": {"dataPoints": [
                {"timeUnixNano": clock.at(150).to_string(), "asDouble": 0.5}]}},
        ]}],
    }]});
    post_otlp(server, "metrics", metrics).await;
}

fn step_counts(funnel: &Value) -> Vec<(String, u64, u64, u64)> {
    funnel["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            (
                step["step_id"].as_str().unwrap().to_owned(),
                step["entered"].as_u64().unwrap(),
                step["completed"].as_u64().unwrap(),
                step["server_confirmed"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn group<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|group| group["group"] == name)
        .unwrap_or_else(|| panic!("{name} in {stats}"))
}

fn counts(value: &Value) -> (u64, u64, u64) {
    (
        value["count"].as_u64().unwrap(),
        value["unique_users"].as_u64().unwrap(),
        value["unique_sessions"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_funnels_stats_and_web_vitals() {
    let server = TestServer::start().await;
    let clock = Clock::new();
    post_scenario(&server, &clock).await;
    let api = "/api/v1/projects/default";

    // The OTLP log event is a product event of session s1.
    let s1 = server.api_ok(&format!("{api}/events?session=s1&type=journey.step&limit=100")).await;
    assert!(
        s1["events"].as_array().unwrap().iter().any(|event| event["metadata"]["source"] == "otlp"),
        "the OTLP log event was stored as a product event: {s1}"
    );

    // Journeys seen.
    let journeys = server.api_ok(&format!("{api}/journeys?{}", clock.range())).await;
    let list = journeys["journeys"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{journeys}");
    let checkout = &list[0];
    assert_eq!(checkout["journey_id"], "checkout");
    assert_eq!((checkout["sessions"].as_u64(), checkout["users"].as_u64()), (Some(5), Some(4)));
    let steps: Vec<(&str, u64, u64)> = checkout["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            (
                step["step_id"].as_str().unwrap(),
                step["sessions"].as_u64().unwrap(),
                step["server_confirmed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(steps, [("cart", 5, 0), ("shipping", 4, 0), ("payment", 3, 1), ("confirmation", 2, 1)]);
    assert_eq!(checkout["steps"][2]["name"], "Checkout: payment");
    assert_eq!(
        checkout["conversions"],
        json!({"converted": 2, "abandoned": 2, "server_confirmed": 1, "conversion_rate": 0.4})
    );
    assert_eq!(list[1]["journey_id"], "signup");
    assert_eq!(journeys["truncated"], false);

    // The funnel in observed order.
    let funnel = server.api_ok(&format!("{api}/journeys/checkout/funnel?{}", clock.range())).await;
    assert_eq!(funnel["step_order"], "observed");
    assert_eq!(funnel["sessions"], 5);
    let expected: Vec<(String, u64, u64, u64)> =
        [("cart", 5, 5, 0), ("shipping", 5, 4, 0), ("payment", 4, 3, 1), ("confirmation", 3, 2, 1)]
            .iter()
            .map(|(step, entered, completed, confirmed)| ((*step).to_owned(), *entered, *completed, *confirmed))
            .collect();
    assert_eq!(step_counts(&funnel), expected, "s1's payment came from the browser and the backend: counted once");
    let rates: Vec<Value> =
        funnel["steps"].as_array().unwrap().iter().map(|step| step["conversion_rate"].clone()).collect();
    assert_eq!(rates, [json!(1.0), json!(0.8), json!(0.75), json!(2.0 / 3.0)]);
    // cart → shipping: 20, 40, 30, 10 s; shipping → payment: 30 s each; payment → confirmation:
    // s1 10 s, s2 30 s.
    let medians: Vec<Value> =
        funnel["steps"].as_array().unwrap().iter().map(|step| step["median_ms_from_previous"].clone()).collect();
    assert_eq!(medians, [Value::Null, json!(25_000.0), json!(30_000.0), json!(20_000.0)]);
    assert_eq!(funnel["completed_sessions"], 2);
    assert_eq!(funnel["overall_conversion_rate"], 0.4);
    assert_eq!(funnel["conversions"]["server_confirmed"], 1);
    assert_eq!(funnel["truncated"], false);

    // Explicit steps.
    let explicit = server.api_ok(&format!("{api}/journeys/checkout/funnel?{}&steps=cart,payment", clock.range())).await;
    assert_eq!(explicit["step_order"], "explicit");
    let expected: Vec<(String, u64, u64, u64)> = vec![("cart".into(), 5, 5, 0), ("payment".into(), 5, 3, 1)];
    assert_eq!(step_counts(&explicit), expected);
    assert_eq!(explicit["steps"][1]["conversion_rate"], 0.6);

    // Event statistics by name: the journey in the first hourly bucket, vitals in the next.
    let by_name = server.api_ok(&format!("{api}/events/stats?group_by=name&interval=1h&{}", clock.range())).await;
    assert_eq!(counts(&by_name["totals"]), (28, 5, 6), "{by_name}");
    let buckets: Vec<(u64, u64)> = by_name["totals"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| (bucket["start_unix_nano"].as_u64().unwrap(), bucket["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(buckets, [(clock.from, 23), (clock.from + HOUR, 5)]);
    let names: Vec<&str> =
        by_name["groups"].as_array().unwrap().iter().map(|group| group["group"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "checkout_step",
            "web_vitals",
            "checkout_result",
            "page_view",
            "journey.step",
            "order_confirmed",
            "signup_step"
        ]
    );
    assert_eq!(counts(group(&by_name, "checkout_step")), (14, 4, 5));
    assert_eq!(counts(group(&by_name, "checkout_result")), (3, 2, 3));
    assert_eq!(counts(group(&by_name, "web_vitals")), (5, 1, 5));
    let vitals_buckets = group(&by_name, "web_vitals")["buckets"].as_array().unwrap();
    assert_eq!(vitals_buckets.len(), 1);
    assert_eq!(vitals_buckets[0]["start_unix_nano"], clock.from + HOUR);
    assert_eq!(by_name["interval_seconds"], 3_600);
    assert_eq!(by_name["first_bucket_unix_nano"], clock.from);
    assert_eq!(by_name["truncated"], false);

    // By type, limited to two groups.
    let by_type = server.api_ok(&format!("{api}/events/stats?group_by=type&limit=2&{}", clock.range())).await;
    assert_eq!(counts(group(&by_type, "journey.step")), (17, 5, 6));
    assert_eq!(counts(group(&by_type, "performance")), (5, 1, 5));
    assert_eq!(by_type["groups"].as_array().unwrap().len(), 2);
    assert_eq!(by_type["groups_truncated"], true);

    // Web vitals per page.
    let vitals = server.api_ok(&format!("{api}/web-vitals?{}", clock.range())).await;
    let pages: Vec<&str> =
        vitals["pages"].as_array().unwrap().iter().map(|page| page["page"].as_str().unwrap()).collect();
    assert_eq!(pages, ["/product", "/checkout", "/"], "{vitals}");
    let product = &vitals["pages"][0]["vitals"]["lcp"];
    assert_eq!(product["p75"], 2_500.0, "rank 30 of 40 tops the (1 s, 2.5 s] bucket");
    assert_eq!((product["rating"].as_str(), product["metric_samples"].as_u64()), (Some("good"), Some(40)));
    let checkout = &vitals["pages"][1]["vitals"];
    let rated = |vital: &str| {
        (checkout[vital]["p75"].as_f64().unwrap(), checkout[vital]["rating"].as_str().unwrap().to_owned())
    };
    assert_eq!(rated("lcp"), (2_600.0, "needs-improvement".to_owned()));
    assert_eq!(rated("cls"), (0.05, "good".to_owned()));
    assert_eq!(rated("ttfb"), (900.0, "needs-improvement".to_owned()));
    assert_eq!(rated("fcp"), (1_500.0, "good".to_owned()));
    // INP: events 90, 120, 180, 350 and gauge points 400, 600: the 5th of 6 is 400 ms.
    assert_eq!(rated("inp"), (400.0, "needs-improvement".to_owned()));
    assert_eq!(
        (checkout["inp"]["event_samples"].as_u64(), checkout["inp"]["metric_samples"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(checkout["lcp"]["samples"], 4);
    assert_eq!(checkout["lcp"]["unit"], "ms");
    let home = &vitals["pages"][2];
    assert_eq!(home["vitals"]["lcp"]["rating"], "poor");
    assert_eq!(home["legacy"]["fid"]["p75"], 250.0);
    assert_eq!(home["legacy"]["fid"]["rating"], "needs-improvement");
    assert!(home["vitals"].get("fid").is_none(), "FID is reported as legacy only");
    assert_eq!(vitals["overall"]["vitals"]["lcp"]["samples"], 45);
    let used: Vec<(&str, &str, u64)> = vitals["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|metric| {
            (
                metric["name"].as_str().unwrap(),
                metric["vital"].as_str().unwrap(),
                metric["observations"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(used, [("browser.web_vital.inp", "inp", 2), ("web_vitals.lcp", "lcp", 40)]);
    assert_eq!(vitals["ignored_metrics"][0]["name"], "webvitals.CLS");
    assert_eq!(vitals["percentile"], 75);
    assert_eq!(vitals["truncated"], false);

    let only_checkout = server.api_ok(&format!("{api}/web-vitals?{}&page=/checkout", clock.range())).await;
    assert_eq!(only_checkout["pages"].as_array().unwrap().len(), 1);
    assert_eq!(only_checkout["pages"][0]["vitals"]["inp"]["samples"], 6);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_analytics_requests_are_400_or_404_with_a_reason() {
    let server = TestServer::start().await;
    let api = "/api/v1/projects/default";
    let cases = [
        (format!("{api}/events/stats?group_by=browser"), 400, "group_by"),
        (format!("{api}/events/stats?interval=1s"), 400, "more than 1000"),
        (format!("{api}/events/stats?interval=soon"), 400, "interval"),
        (format!("{api}/events/stats?limit=1000"), 400, "limit"),
        (
            format!("{api}/events/stats?from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z"),
            400,
            "from must not be after to",
        ),
        (format!("{api}/events/stats?groupby=name"), 400, "unknown parameter"),
        (format!("{api}/journeys?journey=checkout"), 400, "unknown parameter"),
        (format!("{api}/journeys/checkout/funnel?steps=cart,cart"), 400, "twice"),
        (format!("{api}/journeys/checkout/funnel"), 404, "no events"),
        (format!("{api}/web-vitals?pages=/"), 400, "unknown parameter"),
    ];
    for (path, status, message) in cases {
        let (got, body) = server.api_get(&path).await;
        assert_eq!(got, status, "GET {path}: {body}");
        let text = body["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "GET {path}: {text:?} should mention {message:?}");
    }
    // An ingest key may not read analytics.
    let response = server
        .http
        .get(format!("{}{api}/web-vitals", server.http_base()))
        .bearer_auth(&server.ingest_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Empty ranges answer with zeros.
    let empty = server.api_ok(&format!("{api}/events/stats")).await;
    assert_eq!(counts(&empty["totals"]), (0, 0, 0));
    let vitals = server.api_ok(&format!("{api}/web-vitals")).await;
    assert_eq!(vitals["pages"], json!([]));
    server.stop().await;
}
