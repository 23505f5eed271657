//! The Sightline server: OTLP receivers (gRPC and HTTP), the processing pipeline with group
//! commit, storage behind the [`store::Store`] trait, the REST query API and retention.
//!
//! Data flows one way (see `shared/ARCHITECTURE.md`): receivers decode and authenticate, the
//! pipeline validates, samples and derives summaries, and one writer commits many requests per
//! transaction before any of them is acknowledged.

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod config_file;
pub mod error;
pub mod exporters;
pub mod live_tail;
pub mod pipeline;
pub mod privacy;
pub mod receivers;
pub mod retention;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod ui;
pub mod users;

pub use config::Config;
pub use server::{RunningServer, start};
