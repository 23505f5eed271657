//! Local stand-ins for Amplitude's HTTP V2 API, Mixpanel's `/import` and a webhook receiver,
//! on loopback ephemeral ports. They validate requests exactly as the vendors' docs define
//! them, deduplicate by insert id as the vendors do, and inject scripted faults.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};

/// A fault answered instead of normal processing, once per entry, in order.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 without `Retry-After`.
    TooManyRequests,
    /// 500.
    ServerError,
    /// Answer only after this long (longer than the client's timeout).
    Delay(Duration),
    /// Drop the connection without an answer.
    Reset,
    /// Hold the request until [`Vendor::release`] (its events are ingested on arrival, as a
    /// vendor that already received a request does).
    HoldUntilReleased,
}

/// What the vendor saw.
#[derive(Default)]
pub struct Seen {
    /// Requests received (including faulted ones).
    pub requests: usize,
    /// Events ingested per insert id (a repeat is ignored, like the vendors' dedup).
    pub ingested: HashMap<String, Value>,
    /// Events received per insert id, counting repeats.
    pub received: HashMap<String, usize>,
    /// Events per request, in order.
    pub request_sizes: Vec<usize>,
    /// Request problems the validator found (must stay empty).
    pub violations: Vec<String>,
    /// `Content-Encoding` of each request.
    pub encodings: Vec<String>,
    /// Insert ids refused once already (see `reject_once`).
    pub rejected_once: Vec<String>,
}

/// One local vendor.
pub struct Vendor {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    gate: Arc<tokio::sync::Notify>,
}

#[derive(Clone)]
struct VendorState {
    kind: Kind,
    seen: Arc<Mutex<Seen>>,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    gate: Arc<tokio::sync::Notify>,
    /// Largest request in events before answering 413.
    max_events: usize,
    secret: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Amplitude,
    Mixpanel,
    Webhook,
}

impl Vendor {
    /// Amplitude HTTP V2 at `/2/httpapi`, expecting `api_key`.
    pub async fn amplitude(api_key: &str, max_events: usize) -> Self {
        Self::start(Kind::Amplitude, api_key, max_events, "/2/httpapi").await
    }

    /// Mixpanel `/import`, expecting the project token as the basic-auth user.
    pub async fn mixpanel(token: &str, max_events: usize) -> Self {
        Self::start(Kind::Mixpanel, token, max_events, "/import").await
    }

    /// A webhook receiver at `/hook` checking `X-Sightline-Signature` with `secret`.
    pub async fn webhook(secret: &str) -> Self {
        Self::start(Kind::Webhook, secret, 2000, "/hook").await
    }

    async fn start(kind: Kind, secret: &str, max_events: usize, path: &str) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let faults = Arc::new(Mutex::new(VecDeque::new()));
        let gate = Arc::new(tokio::sync::Notify::new());
        let state = VendorState {
            kind,
            seen: seen.clone(),
            faults: faults.clone(),
            gate: gate.clone(),
            max_events,
            secret: secret.to_owned(),
        };
        let router = Router::new().route(path, post(handle)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("loopback port");
        let addr = listener.local_addr().expect("bound address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, seen, faults, gate }
    }

    /// Queues faults for the next requests.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().expect("vendor state lock").extend(faults);
    }

    /// Lets held requests answer.
    pub fn release(&self) {
        self.gate.notify_waiters();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ingested_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.seen.lock().expect("vendor state lock").ingested.keys().cloned().collect();
        ids.sort();
        ids
    }
}

fn json_response(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).expect("valid status"), axum::Json(body)).into_response()
}

async fn handle(State(state): State<VendorState>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let fault = state.faults.lock().expect("vendor state lock").pop_front();
    let encoding = headers.get("content-encoding").and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
    let plain = if encoding == "gzip" {
        let mut text = Vec::new();
        if flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut text).is_err() {
            return json_response(400, json!({"error": "bad gzip"}));
        }
        text
    } else {
        body.to_vec()
    };
    {
        let mut seen = state.seen.lock().expect("vendor state lock");
        seen.requests += 1;
        seen.encodings.push(encoding);
    }
    match fault {
        Some(Fault::TooManyRequests) => {
            return json_response(429, json!({"code": 429, "error": "Too many requests for some devices and users"}));
        }
        Some(Fault::ServerError) => return json_response(500, json!({"code": 500, "error": "internal"})),
        Some(Fault::Reset) => panic!("fault injection: drop the connection without an answer"),
        Some(Fault::Delay(duration)) => {
            tokio::time::sleep(duration).await;
            return json_response(503, json!({"code": 503}));
        }
        Some(Fault::HoldUntilReleased) => {
            let released = state.gate.notified();
            let answer = ingest(&state, &uri, &headers, &plain);
            released.await;
            return answer;
        }
        None => {}
    }
    ingest(&state, &uri, &headers, &plain)
}

fn violation(state: &VendorState, message: String) -> Response {
    state.seen.lock().expect("vendor state lock").violations.push(message.clone());
    json_response(400, json!({"code": 400, "error": message}))
}

fn ingest(state: &VendorState, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    if headers.get("content-type").and_then(|value| value.to_str().ok()) != Some("application/json") {
        return violation(state, "content-type must be application/json".into());
    }
    match state.kind {
        Kind::Amplitude => amplitude(state, body),
        Kind::Mixpanel => mixpanel(state, uri, headers, body),
        Kind::Webhook => webhook(state, headers, body),
    }
}

/// Marks an event refused the first time it is seen (property `reject_once`), else records it.
fn refuse_once(seen: &mut Seen, insert_id: &str, event: &Value, properties: &Value) -> bool {
    if properties["reject_once"] == json!(true) && !seen.rejected_once.iter().any(|id| id == insert_id) {
        seen.rejected_once.push(insert_id.to_owned());
        return true;
    }
    *seen.received.entry(insert_id.to_owned()).or_default() += 1;
    seen.ingested.entry(insert_id.to_owned()).or_insert_with(|| event.clone());
    false
}

/// Amplitude HTTP V2: body `{"api_key", "events": [...]}` < 1 MB, ≤ 2000 events; each event
/// has `event_type`, `user_id` or `device_id` of ≥ 5 characters, `time` in ms, `insert_id`;
/// `session_id` an integer (ms or -1). A 400 names invalid events and ingests nothing.
fn amplitude(state: &VendorState, body: &[u8]) -> Response {
    if body.len() >= 1_000_000 {
        return json_response(413, json!({"code": 413, "error": "Payload too large"}));
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return violation(state, "invalid JSON".into());
    };
    if request["api_key"] != json!(state.secret) {
        return violation(state, format!("Invalid API key: {}", request["api_key"]));
    }
    let Some(events) = request["events"].as_array() else {
        return violation(state, "missing events".into());
    };
    if events.len() > state.max_events.min(2000) {
        return json_response(413, json!({"code": 413, "error": "Payload too large"}));
    }
    let mut invalid_fields: Vec<usize> = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let long_enough = |field: &str| event[field].as_str().is_some_and(|id| id.chars().count() >= 5);
        let ok = event["event_type"].as_str().is_some_and(|name| !name.is_empty())
            && (long_enough("user_id") || long_enough("device_id"))
            && event["time"].as_i64().is_some_and(|time| time > 1_000_000_000_000)
            && event["insert_id"].as_str().is_some()
            && event["session_id"].as_i64().is_some()
            && event["event_properties"].is_object();
        if !ok {
            return violation(state, format!("event {index} breaks the documented shape: {event}"));
        }
        if event["event_properties"]["reject_once"] == json!(true) {
            invalid_fields.push(index);
        }
    }
    let mut seen = state.seen.lock().expect("vendor state lock");
    let first_time: Vec<usize> = invalid_fields
        .iter()
        .copied()
        .filter(|index| {
            let id = events[*index]["insert_id"].as_str().unwrap_or("");
            !seen.rejected_once.iter().any(|known| known == id)
        })
        .collect();
    if !first_time.is_empty() {
        for index in &first_time {
            let id = events[*index]["insert_id"].as_str().unwrap_or("").to_owned();
            seen.rejected_once.push(id);
        }
        return json_response(
            400,
            json!({"code": 400, "error": "Request missing required field", "events_with_invalid_fields": {"time": first_time}}),
        );
    }
    seen.request_sizes.push(events.len());
    for event in events {
        let id = event["insert_id"].as_str().unwrap_or("").to_owned();
        *seen.received.entry(id.clone()).or_default() += 1;
        seen.ingested.entry(id).or_insert_with(|| event.clone());
    }
    json_response(
        200,
        json!({"code": 200, "events_ingested": events.len(), "payload_size_bytes": body.len(), "server_upload_time": 1}),
    )
}

/// Mixpanel `/import?strict=1`: basic auth with the token as user; a JSON array of ≤ 2000
/// `{"event", "properties": {"time", "distinct_id", "$insert_id"}}`; invalid records are
/// listed in `failed_records` and the others imported.
fn mixpanel(state: &VendorState, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    if !uri.query().unwrap_or("").split('&').any(|pair| pair == "strict=1") {
        return violation(state, "strict=1 missing".into());
    }
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:", state.secret)));
    if headers.get("authorization").and_then(|value| value.to_str().ok()) != Some(expected.as_str()) {
        return json_response(401, json!({"error": "Unauthorized"}));
    }
    if body.len() > 10 * 1024 * 1024 {
        return json_response(413, json!({"error": "request too large"}));
    }
    let Ok(Value::Array(events)) = serde_json::from_slice::<Value>(body) else {
        return violation(state, "body must be a JSON array".into());
    };
    if events.len() > state.max_events.min(2000) {
        return json_response(413, json!({"error": "too many records"}));
    }
    let mut failed = Vec::new();
    let mut seen = state.seen.lock().expect("vendor state lock");
    seen.request_sizes.push(events.len());
    for (index, event) in events.iter().enumerate() {
        let properties = &event["properties"];
        let ok = event["event"].as_str().is_some_and(|name| !name.is_empty())
            && properties["time"].as_i64().is_some_and(|time| time > 1_000_000_000_000)
            && properties["distinct_id"].as_str().is_some()
            && properties["$insert_id"].as_str().is_some_and(|id| id.len() <= 36);
        if !ok {
            drop(seen);
            return violation(state, format!("record {index} breaks the documented shape: {event}"));
        }
        let id = properties["$insert_id"].as_str().unwrap_or("").to_owned();
        if refuse_once(&mut seen, &id, event, properties) {
            failed.push(json!({"index": index, "$insert_id": id, "field": "properties.time",
                "message": "'properties.time' is invalid"}));
        }
    }
    if failed.is_empty() {
        return json_response(200, json!({"code": 200, "num_records_imported": events.len(), "status": "OK"}));
    }
    json_response(
        400,
        json!({"code": 400, "error": "some data points in the request failed validation", "failed_records": failed,
            "num_records_imported": events.len() - failed.len(), "status": "Bad Request"}),
    )
}

fn webhook(state: &VendorState, headers: &HeaderMap, body: &[u8]) -> Response {
    let expected = sightline_server::exporters::webhook::signature(state.secret.as_bytes(), body);
    if headers.get("x-sightline-signature").and_then(|value| value.to_str().ok()) != Some(expected.as_str()) {
        return violation(state, "bad signature".into());
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return violation(state, "invalid JSON".into());
    };
    let events = request["events"].as_array().cloned().unwrap_or_default();
    let mut seen = state.seen.lock().expect("vendor state lock");
    seen.request_sizes.push(events.len());
    for event in &events {
        let id = event["event_id"].as_str().unwrap_or("").to_owned();
        *seen.received.entry(id.clone()).or_default() += 1;
        seen.ingested.entry(id).or_insert_with(|| event.clone());
    }
    StatusCode::NO_CONTENT.into_response()
}
