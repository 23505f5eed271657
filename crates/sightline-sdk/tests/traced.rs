//! `#[traced]` on sync and async functions, exported through the OpenTelemetry SDK into an
//! in-memory exporter.

use opentelemetry::trace::{Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug, thiserror::Error)]
#[error("out of stock: {sku}")]
struct OutOfStock {
    sku: String,
}

#[sightline_sdk::traced(name = "inventory.reserve", record(sku, quantity))]
fn reserve(sku: &str, quantity: u32, token: &str) -> Result<u32, OutOfStock> {
    let _ = token;
    if quantity > 3 {
        return Err(OutOfStock { sku: sku.to_owned() });
    }
    Ok(quantity)
}

#[sightline_sdk::traced(skip(token))]
async fn charge(order_id: u64, amount_cents: u64, token: String) -> Result<u64, std::io::Error> {
    let _ = token;
    tokio::task::yield_now().await;
    let parsed: u64 = "12".parse().map_err(std::io::Error::other)?;
    Ok(order_id + amount_cents + parsed)
}

#[sightline_sdk::traced]
fn plain(value: u32) -> u32 {
    value * 2
}

#[sightline_sdk::traced]
fn iterator(limit: u32) -> impl Iterator<Item = u32> {
    0..limit
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn spans_record_selected_arguments_errors_and_duration() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    assert_eq!(reserve("sku-1", 2, "secret").ok(), Some(2));
    assert!(reserve("sku-2", 9, "secret").is_err());
    assert_eq!(charge(1, 100, "tok".into()).await.ok(), Some(113));
    assert_eq!(plain(21), 42);
    assert_eq!(iterator(3).sum::<u32>(), 3);
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");

    let reserves: Vec<&SpanData> = spans.iter().filter(|span| span.name == "inventory.reserve").collect();
    assert_eq!(reserves.len(), 2);
    let ok = reserves.iter().find(|span| attribute(span, "quantity").as_deref() == Some("2")).expect("ok call");
    assert_eq!(attribute(ok, "sku").as_deref(), Some("\"sku-1\""));
    assert_eq!(attribute(ok, "token"), None, "not selected");
    assert_eq!(attribute(ok, "code.function.name").as_deref(), Some("reserve"));
    assert!(attribute(ok, "duration_ms").and_then(|ms| ms.parse::<f64>().ok()).is_some_and(|ms| ms >= 0.0));
    assert_eq!(ok.status, Status::Unset);
    let failed = reserves.iter().find(|span| attribute(span, "quantity").as_deref() == Some("9")).expect("failed call");
    assert!(matches!(&failed.status, Status::Error { description } if description.contains("out of stock: sku-2")));
    let exception = failed.events.iter().find(|event| event.name == "exception").expect("exception event");
    let exception_type = exception.attributes.iter().find(|kv| kv.key.as_str() == "exception.type");
    assert!(exception_type.is_some_and(|kv| kv.value.to_string().ends_with("OutOfStock")));

    let charge = spans.iter().find(|span| span.name == "charge").expect("async span");
    assert_eq!(attribute(charge, "order_id").as_deref(), Some("1"));
    assert_eq!(attribute(charge, "amount_cents").as_deref(), Some("100"));
    assert_eq!(attribute(charge, "token"), None, "skipped");
    let plain = spans.iter().find(|span| span.name == "plain").expect("plain span");
    assert_eq!(attribute(plain, "value"), None, "arguments are not recorded unless asked");
    assert!(spans.iter().any(|span| span.name == "iterator"));
}
