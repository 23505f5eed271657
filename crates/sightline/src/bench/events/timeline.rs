//! The timeline phase of the product events benchmark: one long session — product events from
//! the browser, the backend's SERVER spans carrying its `session.id`, and errors — sent through
//! the real receivers into the store the throughput phase filled, then its merged timeline read
//! through `GET /api/v1/projects/{project}/sessions/{session_id}` and timed.
//!
//! One entry in five is a span (a backend request, listed through `session_items`) and one in
//! 250 is an `error` event, which shows twice: as the product event and as the error grouped
//! from it. The rest are product events (read through `product_events_by_session`), so the
//! query exercises both halves of the merge.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as OtlpValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use sightline_server::RunningServer;

use super::batches::{self, EventKind, SessionPlayer};
use super::sender::EventsSender;
use crate::bench::load::{self, LoadOutcome, Workload, progress_bar};
use crate::bench::otlp_http::{HttpSender, OtlpSignal};

/// One timeline entry in this many is a backend request (a SERVER span).
const SPAN_EVERY: usize = 5;

/// One timeline entry in this many is an `error` event's error (its event is another entry).
const ERROR_EVERY: usize = 250;

/// The session's entries are spread over this long, ending ten minutes ago.
const SESSION_SPAN: Duration = Duration::from_secs(30 * 60);

/// The backend requests the session makes: (method, route).
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/products"),
    ("GET", "/api/cart"),
    ("POST", "/api/cart/items"),
    ("POST", "/api/checkout"),
    ("GET", "/api/recommendations"),
];

/// The session as encoded requests, and what it should show.
pub struct TimelineSession {
    /// `sess-...`.
    pub session_id: String,
    /// `/v1/events` batches.
    pub event_batches: Workload,
    /// OTLP/HTTP trace exports of the session's SERVER spans.
    pub span_exports: Workload,
    /// Product events, errors included.
    pub product_events: u64,
    /// `error` events among them.
    pub error_events: u64,
    /// SERVER spans.
    pub spans: u64,
}

impl TimelineSession {
    /// Timeline entries the session should have: every product event, every span, and each
    /// `error` event a second time as its grouped error.
    pub fn expected_entries(&self) -> u64 {
        self.product_events + self.error_events + self.spans
    }
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(OtlpValue::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

fn int_attribute(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(OtlpValue::IntValue(value)) }),
        ..Default::default()
    }
}

/// A SERVER span of the backend at `start_unix_nano`, tagged with the session (and user) as
/// instrumentation copies them from the `X-Session-ID` request header or baggage.
fn server_span(rng: &mut StdRng, session_id: &str, user_id: Option<&str>, start_unix_nano: u64) -> Span {
    let (method, route) = ROUTES[rng.random_range(0..ROUTES.len())];
    let mut attributes = vec![
        string_attribute("session.id", session_id),
        string_attribute("http.request.method", method),
        string_attribute("http.route", route),
        string_attribute("url.path", route),
        int_attribute("http.response.status_code", 200),
    ];
    if let Some(user_id) = user_id {
        attributes.push(string_attribute("user.id", user_id));
    }
    let trace_id: [u8; 16] = rng.random();
    let span_id: [u8; 8] = rng.random();
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        name: format!("{method} {route}"),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start_unix_nano,
        end_time_unix_nano: start_unix_nano + rng.random_range(5_000_000..120_000_000),
        attributes,
        ..Default::default()
    }
}

fn encode_span_exports(spans: Vec<Span>, per_request: usize) -> Workload {
    let mut bodies = Vec::new();
    let mut items_per_body = Vec::new();
    for chunk in spans.chunks(per_request.max(1)) {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        string_attribute("service.name", "shop-api"),
                        string_attribute("deployment.environment.name", "production"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "opentelemetry-instrumentation-http".to_owned(),
                        ..Default::default()
                    }),
                    spans: chunk.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        bodies.push(request.encode_to_vec().into());
        items_per_body.push(chunk.len() as u64);
    }
    Workload { bodies, items_per_body }
}

/// Generates one session of `entries` timeline entries, its requests holding at most
/// `per_request` events or spans each.
pub fn generate(entries: usize, per_request: usize, seed: u64) -> TimelineSession {
    let now = batches::now_unix_nano();
    let mut rng = StdRng::seed_from_u64(seed ^ now);
    let session_span_nanos = SESSION_SPAN.as_nanos() as u64;
    let start = now - session_span_nanos - Duration::from_secs(10 * 60).as_nanos() as u64;
    let session_id = batches::session_id(&mut rng, start);
    let mut player = SessionPlayer::new(&mut rng, session_id.clone(), start, u32::MAX);
    let span_count = entries / SPAN_EVERY;
    let error_count = entries / ERROR_EVERY;
    let event_count = entries - span_count - error_count;
    // Slots in time order, spans and errors spread evenly: the k-th span takes the first slot
    // where k/span_count of the slots have passed, the k-th error the middle of the k-th run of
    // `error_spacing` events.
    let slots = event_count + span_count;
    let step = session_span_nanos / slots.max(1) as u64;
    let error_spacing = event_count / error_count.max(1);
    let mut events = Vec::with_capacity(event_count);
    let mut spans = Vec::with_capacity(span_count);
    for slot in 0..slots {
        let at = start + step * slot as u64;
        let span_due = spans.len() < span_count && (slot + 1) * span_count >= (spans.len() + 1) * slots;
        if span_due {
            spans.push(server_span(&mut rng, &session_id, player.user_id(), at));
            continue;
        }
        let event_index = events.len();
        let error_due = error_count > 0
            && event_index % error_spacing == error_spacing / 2
            && event_index / error_spacing < error_count;
        let kind = if error_due { EventKind::Error } else { player.next_kind(&mut rng, false) };
        events.push(player.event_of_kind(&mut rng, kind, Some(at)));
    }
    let error_events = events.iter().filter(|event| event["event.type"] == "error").count() as u64;
    TimelineSession {
        session_id,
        event_batches: batches::encode_batches(&events, per_request),
        span_exports: encode_span_exports(spans, per_request),
        product_events: events.len() as u64,
        error_events,
        spans: span_count as u64,
    }
}

/// Sends the session's events and spans (events first, as the browser's batches and the
/// backend's exports interleave anyway); the wall time of both.
pub async fn send(
    session: &TimelineSession,
    server: &RunningServer,
    ingest_key: &str,
    connections: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let accepted = Arc::new(AtomicU64::new(0));
    let event_senders = EventsSender::connect_many(server.http_addr, ingest_key, connections, &accepted).await?;
    let event_batches = Arc::new(clone_workload(&session.event_batches));
    let progress = progress_bar("timeline events", event_batches.total_items(), "events");
    let events_outcome = load::run(event_batches, event_senders, progress.clone()).await;
    progress.finish();
    ensure_all_accepted("the timeline session's events", &events_outcome)?;

    let mut span_senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        span_senders.push(HttpSender::connect(server.http_addr, ingest_key, OtlpSignal::Traces).await?);
    }
    let span_exports = Arc::new(clone_workload(&session.span_exports));
    let progress = progress_bar("timeline spans", span_exports.total_items(), "spans");
    let spans_outcome = load::run(span_exports, span_senders, progress.clone()).await;
    progress.finish();
    ensure_all_accepted("the timeline session's spans", &spans_outcome)?;
    Ok(started.elapsed())
}

fn clone_workload(workload: &Workload) -> Workload {
    Workload { bodies: workload.bodies.clone(), items_per_body: workload.items_per_body.clone() }
}

fn ensure_all_accepted(what: &str, outcome: &LoadOutcome) -> anyhow::Result<()> {
    anyhow::ensure!(
        outcome.failed_requests == 0 && outcome.rejected_items == 0,
        "sending {what}: {} requests failed, {} items rejected ({})",
        outcome.failed_requests,
        outcome.rejected_items,
        outcome.failure_examples.join("; ")
    );
    Ok(())
}

/// One timeline query, timed over several runs.
pub struct TimelineTiming {
    /// What the row is called in the report.
    pub label: &'static str,
    /// The query string sent (after `/sessions/{id}`).
    pub query: String,
    /// Entries in the answer's `timeline` (the same every run).
    pub entries_returned: usize,
    /// Whether the answer had a `next_cursor` (more entries than the page).
    pub has_next_page: bool,
    /// Answer body size.
    pub response_bytes: usize,
    /// Send to last byte of the answer, microseconds.
    pub latencies_us: Histogram<u64>,
}

impl TimelineTiming {
    /// Latency at `quantile`, milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latencies_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// The session summary as the API answered it, to check against what was sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct SummaryCounts {
    /// `events`: product events.
    pub events: u64,
    /// `requests`: SERVER spans.
    pub requests: u64,
    /// `errors`: error events.
    pub errors: u64,
}

/// A read-only client of one session's timeline.
pub struct TimelineApi {
    client: reqwest::Client,
    session_url: String,
    authorization: String,
}

impl TimelineApi {
    /// A client for `session_id` of `project_slug` on the server at `http_addr`, reading with
    /// `read_key`.
    pub fn new(http_addr: SocketAddr, project_slug: &str, session_id: &str, read_key: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .context("building the API client")?;
        Ok(Self {
            client,
            session_url: format!("http://{http_addr}/api/v1/projects/{project_slug}/sessions/{session_id}"),
            authorization: format!("Bearer {read_key}"),
        })
    }

    /// `GET /sessions/{id}?{query}`: the raw answer, read to the last byte.
    async fn get(&self, query: &str) -> anyhow::Result<bytes::Bytes> {
        let url = if query.is_empty() { self.session_url.clone() } else { format!("{}?{query}", self.session_url) };
        let response = self
            .client
            .get(&url)
            .header(AUTHORIZATION, &self.authorization)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response.bytes().await.with_context(|| format!("reading the answer of GET {url}"))?;
        anyhow::ensure!(status.is_success(), "GET {url}: HTTP {status}: {}", String::from_utf8_lossy(&body));
        Ok(body)
    }

    /// The session's summary counts.
    pub async fn summary(&self) -> anyhow::Result<SummaryCounts> {
        let answer: Value = serde_json::from_slice(&self.get("limit=1").await?).context("the answer is not JSON")?;
        let count = |name: &str| answer[name].as_u64().with_context(|| format!("the summary has no {name:?} count"));
        Ok(SummaryCounts { events: count("events")?, requests: count("requests")?, errors: count("errors")? })
    }

    /// Sends `GET /sessions/{id}?{query}` once untimed (a user opening the session page finds
    /// SQLite's page cache warm after the session list), then `runs` times one after the other,
    /// timing each from send to the answer's last byte (the client's JSON parsing is not timed).
    pub async fn time_query(&self, label: &'static str, query: String, runs: usize) -> anyhow::Result<TimelineTiming> {
        let first = self.get(&query).await?;
        let parsed: Value = serde_json::from_slice(&first).context("the timeline answer is not JSON")?;
        let entries_returned = parsed["timeline"].as_array().map_or(0, Vec::len);
        let has_next_page = parsed["next_cursor"].is_string();
        let mut latencies_us = Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")?;
        for _ in 0..runs {
            let started = Instant::now();
            std::hint::black_box(self.get(&query).await?);
            latencies_us.saturating_record(started.elapsed().as_micros().max(1) as u64);
        }
        Ok(TimelineTiming { label, query, entries_returned, has_next_page, response_bytes: first.len(), latencies_us })
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::event::parse_event;

    use super::*;

    #[test]
    fn the_session_has_the_asked_entries_in_both_halves() {
        let session = generate(5_000, 500, 3);
        assert_eq!(session.expected_entries(), 5_000);
        assert_eq!((session.spans, session.error_events), (1_000, 20));
        assert_eq!(session.span_exports.total_items(), 1_000);
        assert_eq!(session.event_batches.total_items(), 3_980);
        for body in &session.event_batches.bodies {
            let batch: Value = serde_json::from_slice(body).expect("JSON");
            for event in batch["events"].as_array().expect("events") {
                let parsed = parse_event(event, 0).expect("valid event");
                assert_eq!(parsed.session_id, session.session_id);
            }
        }
        for body in &session.span_exports.bodies {
            let request = ExportTraceServiceRequest::decode(&body[..]).expect("decodes");
            assert_eq!(sightline_model::otlp::convert_traces(&request).rejected, 0);
        }
    }

    #[test]
    fn a_tiny_session_still_adds_up() {
        for entries in [1, 7, 60, 251] {
            let session = generate(entries, 50, 1);
            assert_eq!(session.expected_entries(), entries as u64, "{entries} entries");
        }
    }
}
