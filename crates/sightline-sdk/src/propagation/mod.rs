//! Context propagation across system boundaries: W3C Trace Context + Baggage, B3 (single and
//! multi header), AWS X-Ray and Datadog, combined in one composite propagator.
//!
//! W3C comes from `opentelemetry_sdk`, B3 from `opentelemetry-zipkin`, X-Ray from
//! `opentelemetry-aws` (all at opentelemetry 0.33); Datadog is [`DatadogPropagator`]. Formats
//! are chosen by the OpenTelemetry names used in `OTEL_PROPAGATORS` (OTel SDK environment
//! variable spec): `tracecontext`, `baggage`, `b3` (single header), `b3multi`, `xray`,
//! `datadog`, `none`.
//!
//! Extraction order: a composite propagator runs every format in turn and a later format that
//! finds a span context replaces an earlier one, so [`composite`] places `tracecontext` after
//! the vendor formats — when a request carries both W3C and vendor headers, W3C wins (the OTel
//! spec recommends W3C as the primary format). Injection writes every format.

pub mod datadog;
pub mod grpc;

pub use datadog::DatadogPropagator;
pub use opentelemetry_http::{HeaderExtractor, HeaderInjector};

use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// One propagation format, by its `OTEL_PROPAGATORS` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Propagation {
    /// `tracecontext`: W3C `traceparent` / `tracestate`.
    TraceContext,
    /// `baggage`: W3C `baggage`.
    Baggage,
    /// `b3`: the single `b3` header (`{trace}-{span}-{sampled}`); extraction also reads the
    /// multi-header form.
    B3Single,
    /// `b3multi`: `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`, `X-B3-Flags`.
    B3Multi,
    /// `xray`: `X-Amzn-Trace-Id: Root=1-...;Parent=...;Sampled=1`.
    XRay,
    /// `datadog`: `x-datadog-*` headers (see [`datadog`]).
    Datadog,
}

/// An unknown name in a propagator list.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown propagator {name:?}: use tracecontext, baggage, b3, b3multi, xray, datadog or none")]
pub struct UnknownPropagator {
    /// The name as written.
    pub name: String,
}

impl Propagation {
    /// The W3C pair every Sightline service speaks by default (the OTel SDK default).
    pub const DEFAULT: [Propagation; 2] = [Propagation::TraceContext, Propagation::Baggage];

    /// Parses one `OTEL_PROPAGATORS` name (case-insensitive).
    pub fn parse(name: &str) -> Result<Self, UnknownPropagator> {
        match name.trim().to_ascii_lowercase().as_str() {
            "tracecontext" => Ok(Propagation::TraceContext),
            "baggage" => Ok(Propagation::Baggage),
            "b3" => Ok(Propagation::B3Single),
            "b3multi" => Ok(Propagation::B3Multi),
            "xray" => Ok(Propagation::XRay),
            "datadog" => Ok(Propagation::Datadog),
            _ => Err(UnknownPropagator { name: name.trim().to_owned() }),
        }
    }

    /// Parses a comma-separated `OTEL_PROPAGATORS` value; `none` (or an empty list) means none.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, UnknownPropagator> {
        let mut formats = Vec::new();
        for name in list.split(',').map(str::trim).filter(|name| !name.is_empty()) {
            if name.eq_ignore_ascii_case("none") {
                return Ok(Vec::new());
            }
            let format = Propagation::parse(name)?;
            if !formats.contains(&format) {
                formats.push(format);
            }
        }
        Ok(formats)
    }

    /// This format's propagator.
    // `opentelemetry-zipkin` is deprecated for its exporter; its B3 propagator is the one the
    // OpenTelemetry project ships for 0.33 and is used as is.
    #[allow(deprecated)]
    pub fn propagator(self) -> Box<dyn TextMapPropagator + Send + Sync> {
        match self {
            Propagation::TraceContext => Box::new(TraceContextPropagator::new()),
            Propagation::Baggage => Box::new(BaggagePropagator::new()),
            Propagation::B3Single => Box::new(opentelemetry_zipkin::Propagator::with_encoding(
                opentelemetry_zipkin::B3Encoding::SingleHeader,
            )),
            Propagation::B3Multi => Box::new(opentelemetry_zipkin::Propagator::with_encoding(
                opentelemetry_zipkin::B3Encoding::MultipleHeader,
            )),
            Propagation::XRay => Box::new(opentelemetry_aws::trace::XrayPropagator::new()),
            Propagation::Datadog => Box::new(DatadogPropagator::new()),
        }
    }

    /// Vendor formats first, `tracecontext` then `baggage` last (see the module docs).
    fn extraction_rank(self) -> u8 {
        match self {
            Propagation::Datadog => 0,
            Propagation::XRay => 1,
            Propagation::B3Multi => 2,
            Propagation::B3Single => 3,
            Propagation::TraceContext => 4,
            Propagation::Baggage => 5,
        }
    }
}

/// The formats read from `OTEL_PROPAGATORS`, or [`Propagation::DEFAULT`] when it is unset.
pub fn from_env() -> Result<Vec<Propagation>, UnknownPropagator> {
    match std::env::var("OTEL_PROPAGATORS") {
        Ok(list) => Propagation::parse_list(&list),
        Err(_) => Ok(Propagation::DEFAULT.to_vec()),
    }
}

/// One propagator speaking every format in `formats` (order as in the module docs).
pub fn composite(formats: &[Propagation]) -> TextMapCompositePropagator {
    let mut ordered = formats.to_vec();
    ordered.sort_by_key(|format| format.extraction_rank());
    ordered.dedup();
    TextMapCompositePropagator::new(ordered.into_iter().map(Propagation::propagator).collect())
}

/// Installs [`composite`] of `formats` as the global propagator (what the middleware, the
/// `reqwest` middleware and the gRPC helpers use).
pub fn install(formats: &[Propagation]) {
    opentelemetry::global::set_text_map_propagator(composite(formats));
}

#[cfg(test)]
mod tests;
