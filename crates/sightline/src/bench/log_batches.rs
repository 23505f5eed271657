//! OTLP log exports for the error benchmark, generated and protobuf-encoded before anything is
//! timed: plain INFO request logs (the baseline) and error logs as the OpenTelemetry logging
//! bridges send an exception (`exception.type`, `.message`, `.stacktrace` plus request context),
//! drawn from a catalogue of [`Bug`]s.
//!
//! Each request carries one resource (a service with the attributes an SDK sends), as one
//! process's batch exporter would: `service.name`, `service.version`, `deployment.environment.name`
//! and `telemetry.sdk.language` matching the stack traces' runtime.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use rand::distr::weighted::WeightedIndex;
use rand::prelude::Distribution;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::bugs::{Bug, ROUTES, Runtime};
use super::load::Workload;

/// Browsers and clients the requests come from (parsed into browser / OS / device tags).
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
    "okhttp/4.12.0",
];

/// Distinct users the events come from.
const USERS: u64 = 20_000;

const RUNTIMES: [Runtime; 3] = [Runtime::Python, Runtime::Node, Runtime::Java];

/// What to generate per phase.
#[derive(Debug, Clone, Copy)]
pub struct LogShape {
    /// Requests (distinct exports).
    pub requests: usize,
    /// Log records in each request.
    pub records_per_request: usize,
}

/// Error log exports and what they should turn into.
pub struct ErrorWorkload {
    /// The encoded requests.
    pub workload: Workload,
    /// Events sent per bug id; bugs never drawn are absent.
    pub events_per_bug: BTreeMap<usize, u64>,
}

/// Bugs `first_id .. first_id + count`, each with details drawn from its own seed.
pub fn catalogue(first_id: usize, count: usize, seed: u64) -> Vec<Bug> {
    (first_id..first_id + count)
        .map(|id| Bug::new(id, &mut StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(id as u64))))
        .collect()
}

fn now_unix_nano() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_nanos() as u64).unwrap_or(1)
}

fn string_value(value: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(Value::StringValue(value.to_owned())) })
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.to_owned(), value: string_value(value), ..Default::default() }
}

fn int_attribute(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(Value::IntValue(value)) }),
        ..Default::default()
    }
}

/// The runtime a service is written in.
fn runtime_of(service: &str) -> Runtime {
    RUNTIMES.into_iter().find(|runtime| runtime.services().contains(&service)).unwrap_or(Runtime::Python)
}

/// Every service, round-robin order: request `i` comes from `all_services()[i % 9]`.
fn all_services() -> Vec<&'static str> {
    let mut services = Vec::new();
    for index in 0..3 {
        for runtime in RUNTIMES {
            services.push(runtime.services()[index]);
        }
    }
    services
}

fn service_resource(service: &str, request_index: usize) -> Resource {
    let runtime = runtime_of(service);
    // Two releases deployed side by side; one request in ten from staging.
    let version = if request_index.is_multiple_of(2) { "2.14.0" } else { "2.15.1" };
    let environment = if request_index % 10 == 9 { "staging" } else { "production" };
    let sdk_version = match runtime {
        Runtime::Python => "1.27.0",
        Runtime::Node => "1.26.0",
        Runtime::Java => "1.42.1",
    };
    Resource {
        attributes: vec![
            string_attribute("service.name", service),
            string_attribute("service.version", version),
            string_attribute("deployment.environment.name", environment),
            string_attribute("host.name", &format!("{service}-{}", request_index % 4)),
            string_attribute("telemetry.sdk.name", "opentelemetry"),
            string_attribute("telemetry.sdk.language", runtime.sdk_language()),
            string_attribute("telemetry.sdk.version", sdk_version),
        ],
        ..Default::default()
    }
}

/// The logger that emits each kind of record, per runtime.
fn scope_name(runtime: Runtime, errors: bool) -> &'static str {
    match (runtime, errors) {
        (Runtime::Python, true) => "django.request",
        (Runtime::Python, false) => "django.server",
        (Runtime::Node, _) => "pino-http",
        (Runtime::Java, true) => "org.apache.catalina.core.ContainerBase.[Tomcat].[localhost].[/].[dispatcherServlet]",
        (Runtime::Java, false) => "org.springframework.web.servlet.DispatcherServlet",
    }
}

fn request(service: &str, request_index: usize, errors: bool, log_records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(service_resource(service, request_index)),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: scope_name(runtime_of(service), errors).to_owned(),
                    ..Default::default()
                }),
                log_records,
                schema_url: String::new(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
        }],
    }
}

/// `/api/orders/{order_id}` → `/api/orders/48213`.
fn concrete_path(route: &str, rng: &mut StdRng) -> String {
    route
        .split('/')
        .map(
            |segment| {
                if segment.starts_with('{') {
                    rng.random_range(1..1_000_000u32).to_string()
                } else {
                    segment.to_owned()
                }
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// Attributes every record carries: who sent the request and where it went.
fn request_context(rng: &mut StdRng, route: &str) -> Vec<KeyValue> {
    let user = rng.random_range(0..USERS);
    let session = user * 7_919 + rng.random_range(0..3);
    vec![
        string_attribute("user.id", &format!("user-{user}")),
        string_attribute("session.id", &format!("{session:016x}")),
        string_attribute(
            "http.request.method",
            if route.contains("cart") || route.contains("checkout") { "POST" } else { "GET" },
        ),
        string_attribute("http.route", route),
        string_attribute("url.path", &concrete_path(route, rng)),
        string_attribute("user_agent.original", USER_AGENTS[rng.random_range(0..USER_AGENTS.len())]),
    ]
}

/// A record as a batch exporter sees it: emitted within the last `spread_nanos`, inside a trace.
fn timed_record(rng: &mut StdRng, spread_nanos: u64) -> LogRecord {
    let now = now_unix_nano();
    let time = now - rng.random_range(0..spread_nanos.max(1));
    let trace_id: [u8; 16] = rng.random();
    let span_id: [u8; 8] = rng.random();
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: now,
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        flags: 1,
        ..Default::default()
    }
}

fn encode(requests: Vec<ExportLogsServiceRequest>) -> Workload {
    let mut bodies = Vec::with_capacity(requests.len());
    let mut items_per_body = Vec::with_capacity(requests.len());
    for request in requests {
        let records: usize = request
            .resource_logs
            .iter()
            .flat_map(|resource| &resource.scope_logs)
            .map(|scope| scope.log_records.len())
            .sum();
        items_per_body.push(records as u64);
        bodies.push(Bytes::from(request.encode_to_vec()));
    }
    Workload { bodies, items_per_body }
}

/// INFO access logs, one per served request, from every service in turn.
pub fn plain_logs(shape: LogShape, seed: u64) -> Workload {
    let mut rng = StdRng::seed_from_u64(seed);
    let services = all_services();
    let requests = (0..shape.requests)
        .map(|request_index| {
            let service = services[request_index % services.len()];
            let records = (0..shape.records_per_request)
                .map(|_| {
                    let route = ROUTES[rng.random_range(0..ROUTES.len())];
                    let mut record = timed_record(&mut rng, 1_000_000_000);
                    let mut attributes = request_context(&mut rng, route);
                    let status = if rng.random_bool(0.05) { 404 } else { 200 };
                    let duration_ms = rng.random_range(2..400);
                    let method = attributes[2].value.as_ref().and_then(|value| match &value.value {
                        Some(Value::StringValue(method)) => Some(method.clone()),
                        _ => None,
                    });
                    let path = attributes[4].value.as_ref().and_then(|value| match &value.value {
                        Some(Value::StringValue(path)) => Some(path.clone()),
                        _ => None,
                    });
                    attributes.push(int_attribute("http.response.status_code", status));
                    attributes.push(int_attribute("http.server.request.duration_ms", duration_ms));
                    record.severity_number = SeverityNumber::Info as i32;
                    record.severity_text = "INFO".to_owned();
                    record.body = string_value(&format!(
                        "{} {} {status} in {duration_ms} ms",
                        method.unwrap_or_default(),
                        path.unwrap_or_default()
                    ));
                    record.attributes = attributes;
                    record
                })
                .collect();
            request(service, request_index, false, records)
        })
        .collect();
    encode(requests)
}

/// One error log record of `bug`, emitted within the last `spread_nanos`.
fn error_record(bug: &Bug, rng: &mut StdRng, spread_nanos: u64) -> LogRecord {
    let (message, stacktrace) = bug.render(rng);
    let mut record = timed_record(rng, spread_nanos);
    let mut attributes = request_context(rng, bug.route);
    let path = attributes[4].value.as_ref().and_then(|value| match &value.value {
        Some(Value::StringValue(path)) => Some(path.clone()),
        _ => None,
    });
    attributes.push(string_attribute("exception.type", &bug.exception_type));
    attributes.push(string_attribute("exception.message", &message));
    attributes.push(string_attribute("exception.stacktrace", &stacktrace));
    let (severity, severity_text) =
        if bug.fatal { (SeverityNumber::Fatal, "CRITICAL") } else { (SeverityNumber::Error, "ERROR") };
    record.severity_number = severity as i32;
    record.severity_text = severity_text.to_owned();
    // What each runtime's request logger says when a handler raises.
    let body = match bug.runtime {
        Runtime::Python => format!("Internal Server Error: {}", path.unwrap_or_default()),
        Runtime::Node => "request errored".to_owned(),
        Runtime::Java => {
            "Servlet.service() for servlet [dispatcherServlet] in context with path [] threw exception".to_owned()
        }
    };
    record.body = string_value(&body);
    record.attributes = attributes;
    record
}

/// Error logs from the services that have bugs, in turn; within a service, bug `k` (in id order)
/// is drawn with weight 1/(k+1), so a few bugs are frequent and most are rare, as in production.
pub fn error_logs(shape: LogShape, bugs: &[Bug], seed: u64) -> ErrorWorkload {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut by_service: BTreeMap<&'static str, Vec<&Bug>> = BTreeMap::new();
    for bug in bugs {
        by_service.entry(bug.service).or_default().push(bug);
    }
    let services: Vec<(&'static str, Vec<&Bug>, WeightedIndex<f64>)> = all_services()
        .into_iter()
        .filter_map(|service| {
            let service_bugs = by_service.remove(service)?;
            let weights = (0..service_bugs.len()).map(|rank| 1.0 / (rank as f64 + 1.0));
            let distribution = WeightedIndex::new(weights).ok()?;
            Some((service, service_bugs, distribution))
        })
        .collect();
    let mut events_per_bug = BTreeMap::new();
    let mut requests = Vec::with_capacity(shape.requests);
    if services.is_empty() {
        return ErrorWorkload { workload: encode(requests), events_per_bug };
    }
    for request_index in 0..shape.requests {
        let (service, service_bugs, distribution) = &services[request_index % services.len()];
        let records = (0..shape.records_per_request)
            .map(|_| {
                let bug = service_bugs[distribution.sample(&mut rng)];
                *events_per_bug.entry(bug.id).or_insert(0) += 1;
                error_record(bug, &mut rng, 1_000_000_000)
            })
            .collect();
        requests.push(request(service, request_index, true, records));
    }
    ErrorWorkload { workload: encode(requests), events_per_bug }
}

/// Every bug at least once (so each becomes an issue), one in seven again 1–5 times (so counts
/// and users differ), emitted over the last `spread_nanos` (so last-seen times differ); requests of
/// at most `records_per_request` records, one service each.
pub fn every_bug(bugs: &[Bug], records_per_request: usize, spread_nanos: u64, seed: u64) -> ErrorWorkload {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut by_service: BTreeMap<&'static str, Vec<LogRecord>> = BTreeMap::new();
    let mut events_per_bug = BTreeMap::new();
    for bug in bugs {
        let repeats = if rng.random_bool(1.0 / 7.0) { 1 + rng.random_range(1..=5) } else { 1 };
        for _ in 0..repeats {
            by_service.entry(bug.service).or_default().push(error_record(bug, &mut rng, spread_nanos));
        }
        events_per_bug.insert(bug.id, repeats);
    }
    let mut requests = Vec::new();
    for (service, records) in by_service {
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let chunk: Vec<LogRecord> = records.by_ref().take(records_per_request.max(1)).collect();
            let request_index = requests.len();
            requests.push(request(service, request_index, true, chunk));
        }
    }
    ErrorWorkload { workload: encode(requests), events_per_bug }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use std::sync::Arc;

    use sightline_server::pipeline::symbolicate::SourceMapCache;
    use sightline_server::pipeline::{PrepareContext, prepare_logs};
    use sightline_server::server::open_store;

    use super::super::server::{bench_project, loopback_config};
    use super::*;

    /// Decodes and prepares every body as the receiver would, against a fresh store; returns
    /// (records, error events).
    fn prepare(workload: &Workload) -> (u64, Vec<sightline_server::store::errors::ErrorEvent>) {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let store = open_store(&loopback_config(data_dir.path())).expect("a store");
        let project = bench_project(store.as_ref(), "test").expect("a project").project;
        let context = PrepareContext::new(Arc::new(SourceMapCache::new(store)));
        let mut records = 0;
        let mut events = Vec::new();
        for body in &workload.bodies {
            let request = ExportLogsServiceRequest::decode(&body[..]).expect("decodes");
            let prepared = prepare_logs(&context, &project, &request);
            assert_eq!(prepared.report.rejected, 0, "{}", prepared.report.error_message);
            records += prepared.report.accepted;
            events.extend(prepared.batch.expect("a batch").errors);
        }
        (records, events)
    }

    #[test]
    fn plain_logs_make_no_error_events() {
        let workload = plain_logs(LogShape { requests: 3, records_per_request: 50 }, 1);
        let (records, events) = prepare(&workload);
        assert_eq!(records, 150);
        assert!(events.is_empty());
    }

    #[test]
    fn each_bug_groups_into_exactly_one_fingerprint_with_its_frames() {
        let bugs = catalogue(0, 60, 7);
        let workload = error_logs(LogShape { requests: 18, records_per_request: 64 }, &bugs, 3);
        let (records, events) = prepare(&workload.workload);
        assert_eq!(records, 18 * 64);
        assert_eq!(events.len() as u64, records);
        // Map events back to bugs through the innermost application function they print.
        let by_function: HashMap<&str, &Bug> = bugs.iter().map(|bug| (bug.innermost_function.as_str(), bug)).collect();
        let mut hashes_by_bug: HashMap<usize, BTreeSet<String>> = HashMap::new();
        for event in &events {
            let trace = event.raw_stacktrace.as_deref().unwrap_or("");
            let innermost = event
                .exceptions
                .iter()
                .rev()
                .find_map(|exception| exception.frames.iter().rev().find(|frame| frame.in_app))
                .and_then(|frame| frame.function.as_deref())
                .expect("an application frame");
            let name = innermost.rsplit('.').next().unwrap_or(innermost);
            let bug = by_function.get(name).unwrap_or_else(|| panic!("no bug ends in {innermost}:\n{trace}"));
            assert_eq!(event.exception_type, bug.exception_type);
            let frames: usize = event.exceptions.iter().map(|exception| exception.frames.len()).sum();
            assert_eq!(frames, bug.frame_count(), "bug {} ({:?}):\n{trace}", bug.id, bug.runtime);
            assert!((10..=60).contains(&frames));
            hashes_by_bug.entry(bug.id).or_default().insert(event.fingerprint.primary_hash.clone());
        }
        let expected: BTreeSet<usize> = workload.events_per_bug.keys().copied().collect();
        assert_eq!(hashes_by_bug.keys().copied().collect::<BTreeSet<_>>(), expected);
        let mut all_hashes = BTreeSet::new();
        for (bug, hashes) in &hashes_by_bug {
            assert_eq!(hashes.len(), 1, "bug {bug} split into {hashes:?}");
            assert!(all_hashes.insert(hashes.iter().next().cloned()), "bug {bug} shares a fingerprint");
        }
        // Skewed: the most frequent bug has many more events than the rarest.
        let counts: Vec<u64> = workload.events_per_bug.values().copied().collect();
        assert!(counts.iter().max() > Some(&(counts.iter().min().copied().unwrap_or(0) * 5)));
    }

    #[test]
    fn every_bug_is_sent_and_large_catalogues_stay_distinct() {
        let bugs = catalogue(1_000, 1_200, 9);
        let workload = every_bug(&bugs, 256, 86_400_000_000_000, 5);
        assert_eq!(workload.events_per_bug.len(), 1_200);
        let (records, events) = prepare(&workload.workload);
        assert_eq!(records, workload.events_per_bug.values().sum::<u64>());
        let hashes: BTreeSet<&str> = events.iter().map(|event| event.fingerprint.primary_hash.as_str()).collect();
        assert_eq!(hashes.len(), 1_200);
    }
}
