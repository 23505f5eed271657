//! `sightline bench ...`: throughput benchmarks (placeholder being written).

use clap::Subcommand;

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Ingest throughput.
    Ingest,
}

/// Runs a benchmark.
pub async fn run(_command: BenchCommand) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
