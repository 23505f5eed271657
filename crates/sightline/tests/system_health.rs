//! System health end to end: two hosts of one service send semantic-convention process and
//! system metrics through the official OpenTelemetry Rust SDK (OTLP HTTP/protobuf), one with
//! cumulative and one with delta temporality, with known values; the
//! `services/{service}/system` API must report each host's current values and series.

// A failed unwrap is a failed test, as in the other end-to-end tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestServer;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use serde_json::Value;

const SERVICE: &str = "checkout";

/// The values the observable instruments report at the next collection.
#[derive(Debug, Default, Clone)]
struct Observed {
    cpu_user_s: f64,
    cpu_system_s: f64,
    memory_bytes: i64,
    memory_used_fraction: f64,
    uptime_s: f64,
    network_transmit_bytes: u64,
    network_receive_bytes: u64,
}

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// A meter provider for one host whose only export is the one `force_flush` asks for.
fn provider(
    server: &TestServer,
    host: &str,
    temporality: Temporality,
    observed: &Arc<Mutex<Observed>>,
) -> SdkMeterProvider {
    let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {}", server.ingest_key))]);
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/metrics", server.http_base()))
        .with_headers(headers)
        .with_temporality(temporality)
        .build()
        .unwrap();
    let reader = PeriodicReader::builder(exporter).with_interval(Duration::from_secs(3600)).build();
    let resource = Resource::builder_empty()
        .with_service_name(SERVICE)
        .with_attributes([KeyValue::new("host.name", host.to_owned())])
        .build();
    let provider = SdkMeterProvider::builder().with_resource(resource).with_reader(reader).build();
    let meter = provider.meter("system-e2e");
    let state = observed.clone();
    let _cpu = meter
        .f64_observable_counter("process.cpu.time")
        .with_unit("s")
        .with_callback(move |observer| {
            let observed = state.lock().unwrap().clone();
            observer.observe(observed.cpu_user_s, &[KeyValue::new("cpu.mode", "user")]);
            if observed.cpu_system_s > 0.0 {
                observer.observe(observed.cpu_system_s, &[KeyValue::new("cpu.mode", "system")]);
            }
        })
        .build();
    let state = observed.clone();
    let _network = meter
        .u64_observable_counter("system.network.io")
        .with_unit("By")
        .with_callback(move |observer| {
            let observed = state.lock().unwrap().clone();
            if observed.network_transmit_bytes > 0 {
                observer.observe(observed.network_transmit_bytes, &[KeyValue::new("network.io.direction", "transmit")]);
                observer.observe(observed.network_receive_bytes, &[KeyValue::new("network.io.direction", "receive")]);
            }
        })
        .build();
    let state = observed.clone();
    let _memory = meter
        .i64_observable_up_down_counter("process.memory.usage")
        .with_unit("By")
        .with_callback(move |observer| {
            let observed = state.lock().unwrap().clone();
            if observed.memory_bytes > 0 {
                observer.observe(observed.memory_bytes, &[]);
            }
        })
        .build();
    let state = observed.clone();
    let _utilization = meter
        .f64_observable_gauge("system.memory.utilization")
        .with_unit("1")
        .with_callback(move |observer| {
            let observed = state.lock().unwrap().clone();
            if observed.memory_used_fraction > 0.0 {
                observer.observe(observed.memory_used_fraction, &[KeyValue::new("system.memory.state", "used")]);
                observer.observe(1.0 - observed.memory_used_fraction, &[KeyValue::new("system.memory.state", "free")]);
            }
        })
        .build();
    let state = observed.clone();
    let _uptime = meter
        .f64_observable_gauge("process.uptime")
        .with_unit("s")
        .with_callback(move |observer| {
            let observed = state.lock().unwrap().clone();
            if observed.uptime_s > 0.0 {
                observer.observe(observed.uptime_s, &[]);
            }
        })
        .build();
    provider
}

/// Collects and exports now; returns the wall time before and after (ns), which bound the
/// collection's timestamp.
async fn flush(provider: &SdkMeterProvider) -> (u64, u64) {
    let provider = provider.clone();
    tokio::task::spawn_blocking(move || {
        let before = now_nanos();
        provider.force_flush().expect("metric export succeeds");
        (before, now_nanos())
    })
    .await
    .unwrap()
}

fn host<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|host| host["host"] == name)
        .unwrap_or_else(|| panic!("host {name} missing: {body}"))
}

fn assert_close(actual: &Value, expected: f64, tolerance: f64) {
    let actual = actual.as_f64().unwrap_or_else(|| panic!("expected a number near {expected}, got {actual}"));
    assert!((actual - expected).abs() <= tolerance, "expected {expected} ± {tolerance}, got {actual}");
}

fn assert_within(actual: &Value, low: f64, high: f64) {
    let actual = actual.as_f64().unwrap_or_else(|| panic!("expected a number in [{low}, {high}], got {actual}"));
    assert!(low <= actual && actual <= high, "expected a value in [{low}, {high}], got {actual}");
}

/// The values of a series, one per bucket.
fn values(series: &Value) -> Vec<f64> {
    series
        .as_array()
        .unwrap_or_else(|| panic!("not a series: {series}"))
        .iter()
        .map(|point| point["value"].as_f64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn system_health_of_two_hosts_from_the_official_sdk() {
    // Both collections must land in one 1-minute bucket: start early in a minute.
    while now_nanos() / 1_000_000_000 % 60 > 45 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let server = TestServer::start().await;
    let state_a = Arc::new(Mutex::new(Observed::default()));
    let state_b = Arc::new(Mutex::new(Observed::default()));
    let built_a = now_nanos();
    let host_a = provider(&server, "host-a", Temporality::Cumulative, &state_a);
    let host_b = provider(&server, "host-b", Temporality::Delta, &state_b);

    // Collection 1.
    *state_a.lock().unwrap() = Observed {
        cpu_user_s: 2.0,
        cpu_system_s: 1.0,
        memory_bytes: 100_000_000,
        memory_used_fraction: 0.25,
        uptime_s: 12.5,
        ..Observed::default()
    };
    *state_b.lock().unwrap() =
        Observed { cpu_user_s: 3.0, network_transmit_bytes: 1_200, network_receive_bytes: 600, ..Observed::default() };
    let first_a = flush(&host_a).await;
    flush(&host_b).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // Collection 2: host-a used 2 + 0.5 more CPU-seconds; host-b's totals went up.
    *state_a.lock().unwrap() = Observed {
        cpu_user_s: 4.0,
        cpu_system_s: 1.5,
        memory_bytes: 150_000_000,
        memory_used_fraction: 0.75,
        uptime_s: 14.5,
        ..Observed::default()
    };
    *state_b.lock().unwrap() =
        Observed { cpu_user_s: 9.0, network_transmit_bytes: 3_000, network_receive_bytes: 600, ..Observed::default() };
    let second_a = flush(&host_a).await;
    flush(&host_b).await;

    let body = server.api_ok(&format!("/api/v1/projects/default/services/{SERVICE}/system?timeRange=1h")).await;
    assert_eq!(body["service"], SERVICE);
    assert_eq!(body["step_seconds"], 60);
    assert_eq!(body["hosts"].as_array().unwrap().len(), 2, "{body}");

    // host-a (cumulative): the current CPU rate is the last increase, 2.5 CPU-seconds, over
    // the time between the two collections, which the measured flush times bound.
    let a = host(&body, "host-a");
    let seconds = |nanos: u64| nanos as f64 / 1e9;
    let (shortest, longest) = (seconds(second_a.0 - first_a.1), seconds(second_a.1 - first_a.0));
    assert_within(&a["current"]["cpu_cores"], 2.5 / longest, 2.5 / shortest);
    // The series' one bucket counts everything since the counters started (5.5 CPU-seconds):
    // the start lies between building the provider and the first collection.
    let cpu_series = values(&a["series"]["cpu_cores"]);
    assert_eq!(cpu_series.len(), 1, "{}", a["series"]);
    assert!(
        5.5 / seconds(second_a.1 - built_a) <= cpu_series[0] && cpu_series[0] <= 5.5 / seconds(second_a.0 - first_a.1),
        "cpu series {cpu_series:?}"
    );
    assert_eq!(a["current"]["memory_bytes"], 150_000_000.0);
    assert_eq!(values(&a["series"]["memory_bytes"]), vec![150_000_000.0], "the up-down counter's latest value");
    assert_close(&a["current"]["memory_utilization"], 0.75, 1e-12);
    let utilization = values(&a["series"]["memory_utilization"]);
    assert_eq!(utilization.len(), 1);
    assert!((utilization[0] - 0.5).abs() < 1e-12, "bucket average of 0.25 and 0.75: {utilization:?}");
    assert_close(&a["current"]["uptime_s"], 14.5, 0.0);
    assert!(a["current"].get("network_bytes_per_s").is_none(), "host-a sent no network metric: {a}");

    // host-b (delta): 9 CPU-seconds and 3000 / 600 bytes in the one 60 s bucket.
    let b = host(&body, "host-b");
    assert_close(&b["current"]["cpu_cores"], 9.0 / 60.0, 1e-12);
    assert_eq!(values(&b["series"]["cpu_cores"]).len(), 1);
    assert_close(&b["series"]["cpu_cores"][0]["value"], 9.0 / 60.0, 1e-12);
    assert_close(&b["current"]["network_bytes_per_s"]["transmit"], 3_000.0 / 60.0, 1e-9);
    assert_close(&b["current"]["network_bytes_per_s"]["receive"], 600.0 / 60.0, 1e-9);
    assert_close(&b["series"]["network_bytes_per_s"]["transmit"][0]["value"], 50.0, 1e-9);
    for absent in ["memory_bytes", "memory_utilization", "uptime_s"] {
        assert!(b["current"].get(absent).is_none(), "host-b sent no {absent}: {b}");
        assert!(b["series"].get(absent).is_none(), "host-b sent no {absent}: {b}");
    }

    // One host; bad parameters; unknown service; no key.
    let only_b = server.api_ok(&format!("/api/v1/projects/default/services/{SERVICE}/system?host=host-b")).await;
    assert_eq!(only_b["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(only_b["hosts"][0]["host"], "host-b");
    let (status, _) =
        server.api_get(&format!("/api/v1/projects/default/services/{SERVICE}/system?timeRange=soon")).await;
    assert_eq!(status, 400);
    let (status, _) = server.api_get(&format!("/api/v1/projects/default/services/{SERVICE}/system?hosts=a")).await;
    assert_eq!(status, 400);
    let (status, _) = server.api_get("/api/v1/projects/default/services/nobody/system").await;
    assert_eq!(status, 404);
    let unauthenticated = server
        .http
        .get(format!("{}/api/v1/projects/default/services/{SERVICE}/system", server.http_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);

    tokio::task::spawn_blocking(move || {
        // Shutting down exports once more; the assertions are done.
        let _ = host_a.shutdown();
        let _ = host_b.shutdown();
    })
    .await
    .unwrap();
    server.stop().await;
}
