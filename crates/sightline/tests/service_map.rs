//! The service map from a three-service call chain sent by the official OpenTelemetry Rust SDK:
//! `web` → `cart` → `payments`, context carried between the "processes" in W3C `traceparent`
//! headers by the SDK's `TraceContextPropagator`, and a call inside one service (no edge).
//! (`payments` also calls Stripe, known only from `peer.service`: that lone client half
//! becomes a virtual node after the 10 s pairing wait, which the unit tests in
//! `store::service_map` cover without waiting.)

mod common;

use std::collections::HashMap;

use common::TestServer;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;

fn provider(server: &TestServer, service: &str) -> SdkTracerProvider {
    let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {}", server.ingest_key))]);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", server.http_base()))
        .with_headers(headers)
        .build()
        .expect("exporter");
    SdkTracerProvider::builder()
        .with_resource(Resource::builder_empty().with_service_name(service.to_owned()).build())
        .with_batch_exporter(exporter)
        .build()
}

/// One request through the chain. Returns nothing; every span ends before it returns.
fn request(web: &SdkTracerProvider, cart: &SdkTracerProvider, payments: &SdkTracerProvider, fail_payment: bool) {
    let propagator = TraceContextPropagator::new();
    let web_tracer = web.tracer("web");
    let root = web_tracer.span_builder("GET /checkout").with_kind(SpanKind::Server).start(&web_tracer);
    let root_context = Context::current_with_span(root);
    let call = web_tracer
        .span_builder("POST /cart")
        .with_kind(SpanKind::Client)
        .start_with_context(&web_tracer, &root_context);
    let call_context = root_context.with_span(call);
    let mut headers: HashMap<String, String> = HashMap::new();
    propagator.inject_context(&call_context, &mut headers);
    assert!(headers.contains_key("traceparent"), "W3C trace context travels in the headers");

    // cart, another process: extracts the caller's context from the headers.
    let cart_tracer = cart.tracer("cart");
    let parent = propagator.extract(&headers);
    let server =
        cart_tracer.span_builder("POST /cart").with_kind(SpanKind::Server).start_with_context(&cart_tracer, &parent);
    let server_context = parent.with_span(server);
    // A call inside cart (to its own cache layer): not an edge of the map.
    let mut internal = cart_tracer
        .span_builder("cache get")
        .with_kind(SpanKind::Client)
        .start_with_context(&cart_tracer, &server_context);
    internal.end();
    let pay = cart_tracer
        .span_builder("POST /pay")
        .with_kind(SpanKind::Client)
        .start_with_context(&cart_tracer, &server_context);
    let pay_context = server_context.with_span(pay);
    let mut pay_headers: HashMap<String, String> = HashMap::new();
    propagator.inject_context(&pay_context, &mut pay_headers);

    // payments: serves the call, then calls Stripe, which sends no spans.
    let payments_tracer = payments.tracer("payments");
    let payments_parent = propagator.extract(&pay_headers);
    let payment = payments_tracer
        .span_builder("POST /pay")
        .with_kind(SpanKind::Server)
        .start_with_context(&payments_tracer, &payments_parent);
    let payment_context = payments_parent.with_span(payment);
    let mut stripe = payments_tracer
        .span_builder("POST api.stripe.com")
        .with_kind(SpanKind::Client)
        .with_attributes([KeyValue::new("peer.service", "stripe")])
        .start_with_context(&payments_tracer, &payment_context);
    stripe.end();
    if fail_payment {
        payment_context.span().set_status(Status::error("card declined"));
    }
    payment_context.span().end();
    pay_context.span().end();
    server_context.span().end();
    call_context.span().end();
    root_context.span().end();
}

fn edge<'a>(map: &'a Value, caller: &str, callee: &str) -> &'a Value {
    map["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|edge| edge["caller"] == caller && edge["callee"] == callee)
        .unwrap_or_else(|| panic!("edge {caller} → {callee} in {map:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_services_and_an_uninstrumented_callee_make_the_map() {
    let server = TestServer::start().await;
    let (web, cart, payments) = (provider(&server, "web"), provider(&server, "cart"), provider(&server, "payments"));
    for index in 0..10 {
        request(&web, &cart, &payments, index % 5 == 0);
    }
    // Each service's exporter flushes on its own: payments, web, then cart. For cart → payments
    // the server halves arrive first; for web → cart the client halves do.
    for provider in [&payments, &web, &cart] {
        provider.force_flush().expect("flush");
    }
    let map = server.api_ok("/api/v1/projects/default/service-map").await;
    let web_cart = edge(&map, "web", "cart");
    assert_eq!((web_cart["calls"].as_u64(), web_cart["errors"].as_u64()), (Some(10), Some(0)), "{map:#}");
    let cart_payments = edge(&map, "cart", "payments");
    assert_eq!((cart_payments["calls"].as_u64(), cart_payments["errors"].as_u64()), (Some(10), Some(2)));
    assert_eq!(cart_payments["error_rate"], 0.2);
    assert!(cart_payments["p95_ms"].as_f64().is_some());
    assert!(
        map["edges"].as_array().expect("edges").iter().all(|edge| edge["caller"] != edge["callee"]),
        "no self-edges"
    );

    let dependencies = server.api_ok("/api/v1/projects/default/services/cart/dependencies?timeRange=1h").await;
    let upstream: Vec<&str> = dependencies["upstream"]
        .as_array()
        .expect("up")
        .iter()
        .map(|edge| edge["caller"].as_str().expect("caller"))
        .collect();
    let downstream: Vec<&str> = dependencies["downstream"]
        .as_array()
        .expect("down")
        .iter()
        .map(|edge| edge["callee"].as_str().expect("callee"))
        .collect();
    assert_eq!((upstream, downstream), (vec!["web"], vec!["payments"]));

    for provider in [web, cart, payments] {
        provider.shutdown().expect("shutdown");
    }
    server.stop().await;
}
