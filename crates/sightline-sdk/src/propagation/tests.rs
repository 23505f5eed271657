//! Each format extracted from and injected into the examples its specification publishes.

use std::collections::HashMap;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};

use super::*;

fn carrier(headers: &[(&str, &str)]) -> HashMap<String, String> {
    headers.iter().map(|(key, value)| (key.to_ascii_lowercase(), (*value).to_owned())).collect()
}

fn extract(formats: &[Propagation], headers: &[(&str, &str)]) -> Context {
    composite(formats).extract(&carrier(headers))
}

fn inject(formats: &[Propagation], cx: &Context) -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    composite(formats).inject_context(cx, &mut carrier);
    carrier
}

fn sampled_context(trace_id: &str, span_id: &str) -> Context {
    let span_context = SpanContext::new(
        TraceId::from_hex(trace_id).expect("hex"),
        SpanId::from_hex(span_id).expect("hex"),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    Context::new().with_remote_span_context(span_context)
}

fn ids(cx: &Context) -> (String, String, bool) {
    let span = cx.span();
    let span_context = span.span_context();
    (span_context.trace_id().to_string(), span_context.span_id().to_string(), span_context.is_sampled())
}

/// W3C Trace Context §3.2 example and W3C Baggage §3.3 example.
#[test]
fn w3c_trace_context_and_baggage_spec_examples() {
    let cx = extract(
        &Propagation::DEFAULT,
        &[
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
            ("baggage", "userId=alice,serverNode=DF%2028,isProduction=false"),
        ],
    );
    assert_eq!(ids(&cx), ("4bf92f3577b34da6a3ce929d0e0e4736".into(), "00f067aa0ba902b7".into(), true));
    assert_eq!(cx.span().span_context().trace_state().get("congo"), Some("t61rcWkgMzE"));
    assert_eq!(cx.baggage().get("serverNode").map(|value| value.as_str().to_owned()).as_deref(), Some("DF 28"));
    let out = inject(&Propagation::DEFAULT, &cx);
    assert_eq!(out["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_eq!(out["tracestate"], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert!(out["baggage"].contains("serverNode=DF%2028"), "{}", out["baggage"]);
}

/// openzipkin/b3-propagation README: the single-header example and its multi-header twin.
#[test]
fn b3_single_and_multi_header_readme_examples() {
    let single = extract(
        &[Propagation::B3Single],
        &[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")],
    );
    assert_eq!(ids(&single), ("80f198ee56343ba864fe8b2a57d3eff7".into(), "e457b5a2e4d86bd1".into(), true));
    let multi = extract(
        &[Propagation::B3Multi],
        &[
            ("X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("X-B3-ParentSpanId", "05e3ac9a4f6e3b90"),
            ("X-B3-SpanId", "e457b5a2e4d86bd1"),
            ("X-B3-Sampled", "1"),
        ],
    );
    assert_eq!(ids(&multi), ids(&single));
    // "b3: 0" is a deny decision carrying no ids: nothing to continue.
    assert!(!extract(&[Propagation::B3Single], &[("b3", "0")]).span().span_context().is_valid());

    let cx = sampled_context("80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1");
    assert_eq!(inject(&[Propagation::B3Single], &cx)["b3"], "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1");
    let out = inject(&[Propagation::B3Multi], &cx);
    assert_eq!(out["x-b3-traceid"], "80f198ee56343ba864fe8b2a57d3eff7");
    assert_eq!(out["x-b3-spanid"], "e457b5a2e4d86bd1");
    assert_eq!(out["x-b3-sampled"], "1");
    assert!(!out.contains_key("b3"));
}

/// AWS X-Ray developer guide, "Tracing header" example.
#[test]
fn xray_tracing_header_docs_example() {
    let cx = extract(
        &[Propagation::XRay],
        &[("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")],
    );
    assert_eq!(ids(&cx), ("5759e988bd862e3fe1be46a994272793".into(), "53995c3f42cd8ad8".into(), true));
    let out = inject(&[Propagation::XRay], &cx);
    assert_eq!(out["x-amzn-trace-id"], "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1");
}

#[test]
fn composite_prefers_w3c_reads_any_single_format_and_injects_all() {
    let all = [
        Propagation::TraceContext,
        Propagation::Baggage,
        Propagation::B3Single,
        Propagation::B3Multi,
        Propagation::XRay,
        Propagation::Datadog,
    ];
    let both = extract(
        &all,
        &[
            ("x-datadog-trace-id", "1234"),
            ("x-datadog-parent-id", "5678"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ],
    );
    assert_eq!(ids(&both).0, "4bf92f3577b34da6a3ce929d0e0e4736", "W3C wins over a vendor format");
    let datadog_only = extract(&all, &[("x-datadog-trace-id", "1234"), ("x-datadog-parent-id", "5678")]);
    assert_eq!(ids(&datadog_only).0, format!("{:032x}", 1234));

    let cx = sampled_context("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
        .with_baggage([KeyValue::new("session.id", "sess-9")]);
    let out = inject(&all, &cx);
    for header in ["traceparent", "baggage", "b3", "x-b3-traceid", "x-amzn-trace-id", "x-datadog-trace-id"] {
        assert!(out.contains_key(header), "{header} missing from {out:?}");
    }
}

#[test]
fn otel_propagators_lists_parse_like_the_sdk_env_spec() {
    assert_eq!(
        Propagation::parse_list("tracecontext, baggage,b3multi,XRAY,datadog,b3,b3").expect("valid"),
        vec![
            Propagation::TraceContext,
            Propagation::Baggage,
            Propagation::B3Multi,
            Propagation::XRay,
            Propagation::Datadog,
            Propagation::B3Single
        ]
    );
    assert_eq!(Propagation::parse_list("tracecontext,none").expect("valid"), Vec::new());
    assert_eq!(Propagation::parse_list("tracecontext,jaeger"), Err(UnknownPropagator { name: "jaeger".into() }));
}
