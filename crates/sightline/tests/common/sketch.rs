//! Helpers for the APM end-to-end tests: an OpenTelemetry SDK tracer provider exporting to the
//! test server over OTLP/HTTP, and the DDSketch error bound percentiles are checked against.

use std::collections::HashMap;

use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use serde_json::Value;

use super::TestServer;

/// DDSketch guarantee (Masson et al., VLDB 2019; `sketches-ddsketch` returns the bin's
/// representative 2γ^(k+1)/(γ+1) for the sample at rank floor(q·(n−1))): relative error ≤ α =
/// 1%. A sample exactly on a bin edge sits at error exactly α, and floating-point `ln` can put
/// such a sample in the neighbouring bin, whose representative is also α away; so the only
/// slack needed is rounding, 1e-9 relative (plus the ns → ms float conversion in the JSON).
pub const RELATIVE_BOUND: f64 = 0.01 + 1e-9;

/// The rank the sketch reports for quantile `q` (the crate's definition).
pub fn exact_quantile(sorted: &[u64], q: f64) -> f64 {
    sorted[(q * (sorted.len() as f64 - 1.0)) as usize] as f64
}

/// Asserts a reported percentile (ms) is within [`RELATIVE_BOUND`] of the exact value (ns).
pub fn assert_within_bound(reported_ms: &Value, exact_nanos: f64, what: &str) {
    let reported = reported_ms.as_f64().unwrap_or_else(|| panic!("{what}: no value in {reported_ms}")) * 1e6;
    let error = (reported - exact_nanos).abs() / exact_nanos;
    assert!(error <= RELATIVE_BOUND, "{what}: reported {reported} ns vs exact {exact_nanos} ns (error {error})");
}

/// A tracer provider exporting to the test server's OTLP/HTTP endpoint with its ingest key.
pub fn provider(server: &TestServer, resource: Resource) -> SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", server.http_base()))
        .with_headers(HashMap::from([("Authorization".to_owned(), format!("Bearer {}", server.ingest_key))]))
        .build()
        .expect("OTLP exporter builds");
    // A queue larger than what is sent: the default (2,048) would drop spans.
    let config = BatchConfigBuilder::default().with_max_queue_size(20_000).with_max_export_batch_size(1_000).build();
    let processor = BatchSpanProcessor::builder(exporter).with_batch_config(config).build();
    SdkTracerProvider::builder().with_resource(resource).with_span_processor(processor).build()
}
