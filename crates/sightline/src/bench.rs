//! `sightline bench ...`: throughput benchmarks against a real in-process server, each next to
//! a same-run baseline (shared/ARCHITECTURE.md, "Performance approach").

mod batches;
mod ingest;
mod load;
mod otlp_grpc;
mod otlp_http;
mod process;
mod report;

use clap::Subcommand;

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Trace ingest throughput: replays pre-encoded OTLP exports over HTTP and gRPC into an
    /// in-process server with a fresh SQLite store, next to a decode-only baseline.
    Ingest(ingest::IngestArgs),
}

/// Runs a benchmark.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest::run(args).await,
    }
}
