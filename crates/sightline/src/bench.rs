//! `sightline bench ...`: throughput benchmarks against a real in-process server, each next to
//! a same-run baseline (shared/ARCHITECTURE.md, "Performance approach").

mod apm;
mod batches;
mod bugs;
mod dashboard;
mod errors;
mod errors_report;
mod events;
mod forward;
mod ingest;
mod issue_api;
mod load;
mod log_batches;
mod otlp_grpc;
mod otlp_http;
mod otlp_sink;
mod privacy;
mod process;
mod report;
mod server;

use clap::Subcommand;

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Trace ingest throughput: replays pre-encoded OTLP exports over HTTP and gRPC into an
    /// in-process server with a fresh SQLite store, next to a decode-only baseline.
    Ingest(ingest::IngestArgs),
    /// Error ingest throughput: plain logs, then error logs with stack traces (parsed and grouped
    /// into issues) over OTLP/HTTP, next to a decode + prepare baseline; then issue list query
    /// latency with a store of many issues.
    Errors(errors::ErrorsArgs),
    /// Product event ingest throughput: ProductGraph batches over `POST /v1/events`, next to a
    /// parse-only baseline; then the merged timeline latency of a 5,000-entry session.
    Events(events::EventsArgs),
    /// Endpoint RED rollups: span ingest with rollups off (baseline) and on, in the same run,
    /// then `services/{service}/performance?timeRange=7d` latency.
    Apm(apm::ApmArgs),
    /// Product event forwarding: ingest cost of the outbox (same-run baseline without a
    /// destination), drain throughput to a local Amplitude-shaped sink, and accept → first
    /// delivery attempt latency.
    Forward(forward::ForwardArgs),
    /// Privacy rules: product events scrubbed per second with `@common` on one thread, next
    /// to a copy-only baseline.
    Privacy(privacy::PrivacyArgs),
    /// Dashboard pages: server time of each page (p50 / p90 / max over `--runs` GETs) on a
    /// store filled with a week of generated traces, signed in as a member.
    Dashboard(dashboard::DashboardArgs),
}

/// Runs a benchmark.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest::run(args).await,
        BenchCommand::Errors(args) => errors::run(args).await,
        BenchCommand::Events(args) => events::run(args).await,
        BenchCommand::Apm(args) => apm::run(args).await,
        BenchCommand::Forward(args) => forward::run(args).await,
        BenchCommand::Privacy(args) => privacy::run(args),
        BenchCommand::Dashboard(args) => dashboard::run(args).await,
    }
}
