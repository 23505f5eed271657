//! `sightline bench ingest`: trace ingest throughput of a real in-process server.
//!
//! The recipe: generate and encode realistic exports → measure the decode-only baseline on one
//! thread → start the server on loopback with a fresh data directory → per protocol, replay
//! every body once over N connections, timing each request → check that the store holds
//! exactly the acknowledged spans → print a Markdown report for BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use rusqlite::{Connection, OpenFlags};
use sightline_server::exporters::otlp::{OtlpDestinationConfig, OtlpProtocol};
use sightline_server::server::open_store;
use sightline_server::{RunningServer, start};

use super::batches::{self, WorkloadShape};
use super::load::{self, ExportSender, LoadOutcome, Workload, progress_bar};
use super::otlp_grpc::GrpcSender;
use super::otlp_http::{HttpSender, OtlpSignal};
use super::otlp_sink::{OtlpSink, SinkCounts};
use super::process::{self, CpuUse};
use super::report::{self, Baseline, PhaseResult, Report, StoreCheck};
use super::server::{DataDir, bench_project, loopback_config};

/// Which receivers to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolChoice {
    /// OTLP/HTTP with protobuf bodies.
    Http,
    /// OTLP/gRPC.
    Grpc,
    /// HTTP, then gRPC, into the same server.
    Both,
}

/// Options of `sightline bench ingest`.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Which receivers to load.
    #[arg(long, value_enum, default_value = "both")]
    pub protocol: ProtocolChoice,
    /// Distinct export requests generated per phase; each is sent once.
    #[arg(long, default_value_t = 400)]
    pub requests: usize,
    /// Spans in each export request.
    #[arg(long, default_value_t = 512)]
    pub spans_per_request: usize,
    /// Spans in each trace (a server span with client children).
    #[arg(long, default_value_t = 8)]
    pub spans_per_trace: usize,
    /// Concurrent exporter connections, each with its own client.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Data directory for the server (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Also forward every request to a loopback OTLP/HTTP sink (the server's
    /// `--forward-otlp-endpoint`), and report forwarding throughput and lag.
    #[arg(long)]
    pub forward_otlp: bool,
}

impl IngestArgs {
    fn validate(&self) -> anyhow::Result<()> {
        let sizes = [
            ("--requests", self.requests),
            ("--spans-per-request", self.spans_per_request),
            ("--spans-per-trace", self.spans_per_trace),
            ("--connections", self.connections),
        ];
        for (flag, value) in sizes {
            anyhow::ensure!(value > 0, "{flag} must be at least 1");
        }
        Ok(())
    }

    fn shape(&self) -> WorkloadShape {
        WorkloadShape {
            requests: self.requests,
            spans_per_request: self.spans_per_request,
            spans_per_trace: self.spans_per_trace,
        }
    }

    fn protocols(&self) -> Vec<Protocol> {
        match self.protocol {
            ProtocolChoice::Http => vec![Protocol::Http],
            ProtocolChoice::Grpc => vec![Protocol::Grpc],
            ProtocolChoice::Both => vec![Protocol::Http, Protocol::Grpc],
        }
    }

    /// The command line that reproduces this run, defaults spelled out.
    fn command_line(&self) -> String {
        let protocol = match self.protocol {
            ProtocolChoice::Http => "http",
            ProtocolChoice::Grpc => "grpc",
            ProtocolChoice::Both => "both",
        };
        let mut command = format!(
            "sightline bench ingest --protocol {protocol} --requests {} --spans-per-request {} --spans-per-trace {} --connections {}",
            self.requests, self.spans_per_request, self.spans_per_trace, self.connections
        );
        if let Some(data_dir) = &self.data_dir {
            command.push_str(&format!(" --data-dir {}", data_dir.display()));
        }
        if self.forward_otlp {
            command.push_str(" --forward-otlp");
        }
        command
    }
}

/// One timed phase's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/HTTP protobuf.
    Http,
    /// OTLP/gRPC.
    Grpc,
}

impl Protocol {
    /// Name in the report.
    pub fn label(&self) -> &'static str {
        match self {
            Protocol::Http => "OTLP/HTTP protobuf",
            Protocol::Grpc => "OTLP/gRPC",
        }
    }

    /// Each protocol replays its own generated ids, so the second phase inserts new traces
    /// rather than updating the first phase's trace summaries.
    fn workload_seed(&self) -> u64 {
        match self {
            Protocol::Http => 1,
            Protocol::Grpc => 2,
        }
    }
}

/// Runs the benchmark and prints the report. Errors after printing when the store does not
/// hold exactly the acknowledged spans or requests failed.
pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    args.validate()?;
    let machine = process::machine_info();
    // A temporary directory is removed when `data_dir` drops, after the report.
    let data_dir = DataDir::new(args.data_dir.as_deref())?;
    let mut config = loopback_config(&data_dir.path);
    let sink = if args.forward_otlp {
        let sink = OtlpSink::start().await?;
        config.forward_otlp =
            Some(OtlpDestinationConfig::new(format!("http://{}", sink.address), OtlpProtocol::HttpProtobuf));
        Some(sink)
    } else {
        None
    };
    let database_path = config.database_path();
    let protocols = args.protocols();
    let shape = args.shape();

    let first_workload = generate_workload(shape, protocols[0]).await?;
    let baseline = {
        let workload = first_workload.clone();
        tokio::task::spawn_blocking(move || decode_only_baseline(&workload)).await??
    };

    let store = open_store(&config)?;
    let ingest_key = bench_project(store.as_ref(), "sightline bench ingest")?.ingest_key;
    let counts_before_run = count_stored(&database_path).await?;
    let server = start(config, store).await?;
    eprintln!(
        "Server on http://{} and grpc://{}; data in {}",
        server.http_addr,
        server.grpc_addr,
        data_dir.path.display()
    );

    let mut phases = Vec::with_capacity(protocols.len());
    let mut next_workload = Some(first_workload);
    for protocol in &protocols {
        let workload = match next_workload.take() {
            Some(workload) => workload,
            None => generate_workload(shape, *protocol).await?,
        };
        let phase = run_phase(*protocol, &server, &ingest_key, workload, args.connections, &database_path).await;
        match phase {
            Ok(phase) => phases.push(phase),
            Err(error) => {
                server.shutdown().await;
                return Err(error.context(format!("{} phase", protocol.label())));
            }
        }
    }

    let ingest_ended = Instant::now();
    let forwarding = match &sink {
        Some(sink) => {
            let acknowledged: u64 = phases.iter().map(|phase| phase.load.acknowledged_items).sum();
            Some(wait_for_forwarding(sink, acknowledged, ingest_ended).await)
        }
        None => None,
    };
    server.shutdown().await;
    let counts_after_run = count_stored(&database_path).await?;
    let store_check = StoreCheck {
        acknowledged_spans: phases.iter().map(|phase| phase.load.acknowledged_items).sum(),
        stored_spans: counts_after_run.spans - counts_before_run.spans,
        summarized_spans: counts_after_run.summarized_spans - counts_before_run.summarized_spans,
    };
    let report = Report {
        command_line: args.command_line(),
        machine,
        filesystem: process::filesystem_type(&data_dir.path),
        shape,
        connections: args.connections,
        baseline,
        phases,
        database_bytes: process::database_bytes(&database_path),
        store_check,
    };
    println!("{}", report::render_markdown(&report));
    if let Some(forwarding) = &forwarding {
        println!("{}", forwarding.render());
    }
    drop(data_dir);
    report.verdict()?;
    match forwarding {
        Some(forwarding) if forwarding.counts.spans < forwarding.acknowledged => anyhow::bail!(
            "the sink received {} of {} acknowledged spans within {:?}",
            forwarding.counts.spans,
            forwarding.acknowledged,
            FORWARDING_DEADLINE
        ),
        _ => Ok(()),
    }
}

/// How long the forwarding may take to deliver after ingest ended before the run fails.
const FORWARDING_DEADLINE: Duration = Duration::from_secs(300);

/// What the sink got, against what the server acknowledged.
struct Forwarding {
    acknowledged: u64,
    counts: SinkCounts,
    /// From the end of ingest until the sink had every span.
    drain: Duration,
}

impl Forwarding {
    fn render(&self) -> String {
        let window = match (self.counts.first_at, self.counts.last_at) {
            (Some(first), Some(last)) => last.duration_since(first),
            _ => Duration::ZERO,
        };
        let rate = if window.is_zero() { 0.0 } else { self.counts.spans as f64 / window.as_secs_f64() };
        format!(
            "- OTLP forwarding to a loopback OTLP/HTTP sink: {} of {} acknowledged spans delivered in {} requests \
             ({:.1} MiB gzip); {:.0} spans/s between the first and the last delivery; the sink had everything \
             {:.2} s after the last ingest answer.",
            self.counts.spans,
            self.acknowledged,
            self.counts.requests,
            self.counts.bytes as f64 / (1 << 20) as f64,
            rate,
            self.drain.as_secs_f64()
        )
    }
}

/// Polls the sink until it counted `acknowledged` spans or the deadline passed.
async fn wait_for_forwarding(sink: &OtlpSink, acknowledged: u64, ingest_ended: Instant) -> Forwarding {
    let progress = progress_bar("forwarding", acknowledged, "spans");
    loop {
        let counts = sink.counts();
        progress.set_position(counts.spans.min(acknowledged));
        if counts.spans >= acknowledged || ingest_ended.elapsed() > FORWARDING_DEADLINE {
            progress.finish();
            let drain = counts.last_at.map(|last| last.saturating_duration_since(ingest_ended)).unwrap_or_default();
            return Forwarding { acknowledged, counts, drain };
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn generate_workload(shape: WorkloadShape, protocol: Protocol) -> anyhow::Result<Arc<Workload>> {
    eprintln!(
        "Generating {} requests x {} spans (traces of {}) for {}",
        shape.requests,
        shape.spans_per_request,
        shape.spans_per_trace,
        protocol.label()
    );
    let workload = tokio::task::spawn_blocking(move || batches::generate(shape, protocol.workload_seed())).await?;
    Ok(Arc::new(workload))
}

/// Decodes and converts every body on this thread: the work a receiver does per request
/// before anything reaches the store.
fn decode_only_baseline(workload: &Workload) -> anyhow::Result<Baseline> {
    let progress = progress_bar("decode-only", workload.total_items(), "spans");
    let started = Instant::now();
    let mut converted_spans = 0u64;
    let mut rejected_spans = 0u64;
    for (body, spans) in workload.bodies.iter().zip(&workload.items_per_body) {
        let request = ExportTraceServiceRequest::decode(&body[..]).context("decoding a generated body")?;
        let converted = std::hint::black_box(sightline_model::otlp::convert_traces(&request));
        converted_spans += sightline_model::batch_len(&converted.batch) as u64;
        rejected_spans += converted.rejected;
        progress.inc(*spans);
    }
    let wall = started.elapsed();
    progress.finish();
    anyhow::ensure!(rejected_spans == 0, "the generator produced {rejected_spans} invalid spans");
    Ok(Baseline { spans: converted_spans, wall, bytes: workload.total_bytes(), requests: workload.bodies.len() as u64 })
}

/// Rows in the store, read through a separate read-only connection.
#[derive(Debug, Clone, Copy)]
struct StoredCounts {
    spans: u64,
    /// Sum of `span_count` over trace summaries (derived at ingest).
    summarized_spans: u64,
}

async fn count_stored(database_path: &Path) -> anyhow::Result<StoredCounts> {
    let database_path = database_path.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<StoredCounts> {
        let connection = Connection::open_with_flags(
            &database_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {} read-only", database_path.display()))?;
        let spans: i64 = connection.query_row("SELECT count(*) FROM spans", [], |row| row.get(0))?;
        let summarized_spans: i64 =
            connection.query_row("SELECT coalesce(sum(span_count), 0) FROM trace_summaries", [], |row| row.get(0))?;
        Ok(StoredCounts { spans: spans as u64, summarized_spans: summarized_spans as u64 })
    })
    .await?
}

async fn run_phase(
    protocol: Protocol,
    server: &RunningServer,
    ingest_key: &str,
    workload: Arc<Workload>,
    connections: usize,
    database_path: &Path,
) -> anyhow::Result<PhaseResult> {
    let before = count_stored(database_path).await?;
    let measured = match protocol {
        Protocol::Http => {
            let mut senders = Vec::with_capacity(connections);
            for _ in 0..connections {
                senders.push(HttpSender::connect(server.http_addr, ingest_key, OtlpSignal::Traces).await?);
            }
            measure(protocol, workload, senders).await
        }
        Protocol::Grpc => {
            let mut senders = Vec::with_capacity(connections);
            for _ in 0..connections {
                senders.push(GrpcSender::connect(server.grpc_addr, ingest_key).await?);
            }
            measure(protocol, workload, senders).await
        }
    };
    let after = count_stored(database_path).await?;
    Ok(PhaseResult {
        protocol,
        connections,
        load: measured.load,
        cpu: measured.cpu,
        peak_rss_bytes: measured.peak_rss_bytes,
        peak_rss_is_per_phase: measured.peak_rss_is_per_phase,
        stored_spans: after.spans - before.spans,
        database_bytes_after: process::database_bytes(database_path),
    })
}

struct Measured {
    load: LoadOutcome,
    cpu: CpuUse,
    peak_rss_bytes: Option<u64>,
    peak_rss_is_per_phase: bool,
}

async fn measure<S: ExportSender>(protocol: Protocol, workload: Arc<Workload>, senders: Vec<S>) -> Measured {
    let progress = progress_bar(protocol.label(), workload.total_items(), "spans");
    let peak_rss_is_per_phase = process::reset_peak_rss();
    let cpu_before = process::cpu_sample();
    let load = load::run(workload, senders, progress.clone()).await;
    let cpu = process::cpu_sample().since(&cpu_before);
    progress.finish();
    Measured { load, cpu, peak_rss_bytes: process::peak_rss_bytes(), peak_rss_is_per_phase }
}
