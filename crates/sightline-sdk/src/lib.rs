//! Sightline instrumentation for Rust services: session-aware tower middleware, propagators,
//! a batching product-event client, `#[traced]`, log correlation and one-call setup.
//!
//! Built on the official `opentelemetry` / `opentelemetry_sdk` / `tracing-opentelemetry`
//! crates: spans are `tracing` spans exported through OTLP, so everything else in the
//! `tracing` ecosystem nests under the middleware's server span. See the crate README.

pub mod context;
pub mod propagation;

pub use context::{RequestIdentity, current_context};
pub mod middleware;

pub use middleware::SightlineLayer;
pub mod events;
pub mod secret;

pub use events::{Event, EventClient, EventClientConfig, error, journey_step, track};
pub use secret::ApiKey;

pub use sightline_macros::traced;

/// Support for the `#[traced]` expansion; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use tracing;

    /// Records `error` (its `Display` text and Rust type) as an `exception` with status ERROR.
    pub fn record_error<E: std::fmt::Display + ?Sized>(span: &tracing::Span, error: &E) {
        crate::middleware::record_exception(span, std::any::type_name::<E>(), &error.to_string());
    }
}
pub mod init;
pub mod logs;

pub use init::{Sampling, SightlineBuilder, SightlineGuard, builder, init};
pub mod http_client;
