//! `sightline bench apm`: the cost of endpoint RED rollups at ingest and the latency of the
//! service performance page.
//!
//! The recipe: generate the `bench ingest` trace workload once, spread its traces' timestamps
//! evenly over the last `--spread-days` (so rollups cover a week of minutes, as in production)
//! → ingest it over OTLP/HTTP into a fresh server with rollups switched off (the same-run
//! baseline) → again into another fresh server with rollups on → on that server, time
//! `GET .../services/{service}/performance?timeRange=7d` with every minute row still kept, then
//! after the coarsening pass merged rows older than a day into hours (the steady state), and
//! `GET .../jobs?timeRange=7d`. With `--messaging-min-trace-spans` (default 3) every trace has a
//! Kafka producer and its linked consumer, so the job and messaging rollups work too.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::{self, SpanKind};
use prost::Message;
use sightline_server::auth::KeyScope;
use sightline_server::server::open_store;
use sightline_server::start;

use super::batches::{self, WorkloadShape};
use super::load::{self, LoadOutcome, Workload, progress_bar};
use super::otlp_http::{HttpSender, OtlpSignal};
use super::process;
use super::server::{DataDir, bench_project, loopback_config};

/// Options of `sightline bench apm`.
#[derive(Debug, Clone, Args)]
pub struct ApmArgs {
    /// Distinct export requests per phase.
    #[arg(long, default_value_t = 2_000)]
    pub requests: usize,
    /// Spans in each export request.
    #[arg(long, default_value_t = 512)]
    pub spans_per_request: usize,
    /// Spans in each trace (a SERVER root with CLIENT children).
    #[arg(long, default_value_t = 8)]
    pub spans_per_trace: usize,
    /// Concurrent exporter connections.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Days the traces' timestamps are spread over, ending now.
    #[arg(long, default_value_t = 7)]
    pub spread_days: u64,
    /// Spread the traces over this many minutes instead (live traffic: every commit adds to
    /// the same few minute rows, where the 7-day backfill starts new rows in nearly every
    /// request); overrides `--spread-days`.
    #[arg(long)]
    pub spread_minutes: Option<u64>,
    /// Timed performance queries per measurement.
    #[arg(long, default_value_t = 20)]
    pub query_runs: usize,
    /// In every trace of this many spans or more, turn the 2nd span into a PRODUCER sending to
    /// a queue and the 3rd into the CONSUMER processing it (linked to the producer, OTel
    /// messaging semconv), so job and messaging rollups do real work; 0 keeps plain HTTP traces.
    #[arg(long, default_value_t = 3)]
    pub messaging_min_trace_spans: usize,
    /// Pairs of phases (rollups off and on). The order alternates (off → on, then on → off, …)
    /// so what one phase leaves behind (the kernel writing back and deleting the previous
    /// store, a RESTART checkpoint late in a phase) weighs on both modes alike; the cost is
    /// reported per round and from the median rate of each mode.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

/// Queues the messaging spans of the workload go to.
const QUEUES: [&str; 4] = ["orders", "emails", "thumbnails", "invoices"];

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

/// Makes the 2nd and 3rd span of each trace of at least `min_trace_spans` spans a producer and
/// its linked consumer (see [`ApmArgs::messaging_min_trace_spans`]). Traces are runs of spans
/// sharing a trace id, as the generator writes them.
fn add_messaging(request: &mut ExportTraceServiceRequest, min_trace_spans: usize) {
    if min_trace_spans < 3 {
        return;
    }
    for scope in request.resource_spans.iter_mut().flat_map(|resource| &mut resource.scope_spans) {
        let spans = &mut scope.spans;
        let mut trace_start = 0;
        while trace_start < spans.len() {
            let trace_id = spans[trace_start].trace_id.clone();
            let trace_end =
                (trace_start..spans.len()).find(|&index| spans[index].trace_id != trace_id).unwrap_or(spans.len());
            if trace_end - trace_start >= min_trace_spans {
                let queue = QUEUES[spans[trace_start].span_id.first().copied().unwrap_or(0) as usize % QUEUES.len()];
                let producer = &mut spans[trace_start + 1];
                producer.kind = SpanKind::Producer as i32;
                producer.name = format!("send {queue}");
                producer.attributes = vec![
                    string_attribute("messaging.system", "kafka"),
                    string_attribute("messaging.destination.name", queue),
                    string_attribute("messaging.operation.type", "send"),
                ];
                let link = span::Link {
                    trace_id: producer.trace_id.clone(),
                    span_id: producer.span_id.clone(),
                    ..Default::default()
                };
                let produced_at = producer.start_time_unix_nano;
                let consumer = &mut spans[trace_start + 2];
                consumer.kind = SpanKind::Consumer as i32;
                consumer.name = format!("process {queue}");
                consumer.start_time_unix_nano = consumer.start_time_unix_nano.max(produced_at);
                consumer.end_time_unix_nano = consumer.end_time_unix_nano.max(consumer.start_time_unix_nano);
                consumer.attributes = vec![
                    string_attribute("messaging.system", "kafka"),
                    string_attribute("messaging.destination.name", queue),
                    string_attribute("messaging.operation.type", "process"),
                ];
                consumer.links = vec![link];
            }
            trace_start = trace_end;
        }
    }
}

/// Ingest results of one phase.
struct Phase {
    label: &'static str,
    rollups: bool,
    round: usize,
    outcome: LoadOutcome,
    /// CPU seconds the whole process (server and clients) used during the load.
    process_cpu_seconds: f64,
    /// CPU seconds of the SQLite writer thread during the load.
    writer_cpu_seconds: f64,
}

/// The median of `values` (the upper one of an even count); 0 when empty.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

impl Phase {
    fn spans_per_second(&self) -> f64 {
        self.outcome.acknowledged_items as f64 / self.outcome.wall.as_secs_f64().max(1e-9)
    }

    /// (process, writer thread) CPU µs per acknowledged span.
    fn cpu_us_per_span(&self) -> (f64, f64) {
        let spans = self.outcome.acknowledged_items.max(1) as f64;
        (self.process_cpu_seconds * 1e6 / spans, self.writer_cpu_seconds * 1e6 / spans)
    }
}

/// Shifts request `index`'s spans so the workload covers `spread` ending now.
pub(super) fn spread_over(
    workload: Workload,
    spread: Duration,
    messaging_min_trace_spans: usize,
) -> anyhow::Result<Workload> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    let requests = workload.bodies.len().max(1) as u64;
    let spread_nanos = spread.as_nanos() as u64;
    let mut bodies = Vec::with_capacity(workload.bodies.len());
    for (index, body) in workload.bodies.iter().enumerate() {
        let mut request = ExportTraceServiceRequest::decode(&body[..]).context("decoding a generated body")?;
        add_messaging(&mut request, messaging_min_trace_spans);
        // Oldest first, the last request ending about now (spans were generated "now").
        let shift = spread_nanos - spread_nanos / requests * (index as u64 + 1);
        for span in request
            .resource_spans
            .iter_mut()
            .flat_map(|resource| &mut resource.scope_spans)
            .flat_map(|scope| &mut scope.spans)
        {
            span.start_time_unix_nano = span.start_time_unix_nano.min(now).saturating_sub(shift);
            span.end_time_unix_nano = span.end_time_unix_nano.min(now).saturating_sub(shift);
        }
        bodies.push(Bytes::from(request.encode_to_vec()));
    }
    Ok(Workload { bodies, items_per_body: workload.items_per_body })
}

/// (p50, max, `summary.requests` of the last answer) of `runs` timed GETs.
async fn time_query(
    client: &reqwest::Client,
    url: &str,
    read_key: &str,
    runs: usize,
) -> anyhow::Result<(Duration, Duration, u64)> {
    let mut timings = Vec::with_capacity(runs);
    let mut requests_reported = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let response = client.get(url).bearer_auth(read_key).send().await?.error_for_status()?;
        let body: serde_json::Value = response.json().await?;
        timings.push(started.elapsed());
        requests_reported = body["summary"]["requests"].as_u64().unwrap_or(0);
    }
    timings.sort();
    Ok((timings[timings.len() / 2], timings[timings.len() - 1], requests_reported))
}

/// Runs the benchmark and prints a Markdown report.
pub async fn run(args: ApmArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.requests > 0 && args.spans_per_request > 0 && args.spans_per_trace > 0,
        "sizes must be at least 1"
    );
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let shape = WorkloadShape {
        requests: args.requests,
        spans_per_request: args.spans_per_request,
        spans_per_trace: args.spans_per_trace,
    };
    eprintln!("Generating {} requests x {} spans", shape.requests, shape.spans_per_request);
    let spread = match args.spread_minutes {
        Some(minutes) => Duration::from_secs(minutes.max(1) * 60),
        None => Duration::from_secs(args.spread_days.max(1) * 86_400),
    };
    let messaging = args.messaging_min_trace_spans;
    let workload =
        tokio::task::spawn_blocking(move || spread_over(batches::generate(shape, 1), spread, messaging)).await??;
    let workload = Arc::new(workload);

    let mut phases = Vec::new();
    let mut query_lines = Vec::new();
    let mut jobs_lines = Vec::new();
    let modes =
        [("spans only (rollups off)", false), ("spans + rollups (endpoints, queries, jobs, service map)", true)];
    let order = (0..args.rounds).flat_map(|round| {
        let pair = if round % 2 == 0 { [modes[0], modes[1]] } else { [modes[1], modes[0]] };
        pair.map(|mode| (round, mode))
    });
    for (round, (label, rollups)) in order {
        // The queries are timed once, on the first store with rollups.
        let time_queries = rollups && query_lines.is_empty();
        let data_dir = DataDir::new(None)?;
        let mut config = loopback_config(&data_dir.path);
        config.endpoint_rollups = rollups;
        let store = open_store(&config)?;
        let project = bench_project(store.as_ref(), "sightline bench apm")?;
        let (read_key, _) = store.create_api_key(project.project.id, KeyScope::Read, "bench read")?;
        let server = start(config, store.clone()).await?;
        let mut senders = Vec::with_capacity(args.connections);
        for _ in 0..args.connections {
            senders.push(HttpSender::connect(server.http_addr, &project.ingest_key, OtlpSignal::Traces).await?);
        }
        let progress = progress_bar(&format!("round {}: {label}", round + 1), workload.total_items(), "spans");
        let (cpu_before, load_started) = (process::cpu_sample(), Instant::now());
        let outcome = load::run(workload.clone(), senders, progress.clone()).await;
        let (cpu, cpu_wall) = (process::cpu_sample().since(&cpu_before), load_started.elapsed().as_secs_f64());
        progress.finish();
        anyhow::ensure!(
            outcome.failed_requests == 0,
            "{label}: {} requests failed: {:?}",
            outcome.failed_requests,
            outcome.failure_examples
        );
        if time_queries {
            let client = reqwest::Client::new();
            let url = format!(
                "http://{}/api/v1/projects/{}/services/checkout/performance?timeRange=7d",
                server.http_addr, project.project.slug
            );
            let (p50, max, requests) = time_query(&client, &url, read_key.expose(), args.query_runs).await?;
            query_lines.push(format!("| 7d, every minute row kept | {requests} | {:.1} | {:.1} |", ms(p50), ms(max)));
            let coarsen_store = store.clone();
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
            let started = Instant::now();
            let merged = tokio::task::spawn_blocking(move || {
                sightline_server::retention::coarsen_rollups_once(
                    coarsen_store.as_ref(),
                    now,
                    Duration::from_secs(86_400),
                    5_000,
                )
            })
            .await??;
            eprintln!("Coarsened {merged} minute rows in {:.1} s", started.elapsed().as_secs_f64());
            let (p50, max, requests) = time_query(&client, &url, read_key.expose(), args.query_runs).await?;
            query_lines.push(format!(
                "| 7d, minutes older than 1 day coarsened to hours | {requests} | {:.1} | {:.1} |",
                ms(p50),
                ms(max)
            ));
        }
        if time_queries {
            let client = reqwest::Client::new();
            let url = format!("http://{}/api/v1/projects/{}/jobs?timeRange=7d", server.http_addr, project.project.slug);
            let (p50, max, rows) = time_jobs_query(&client, &url, read_key.expose(), args.query_runs).await?;
            jobs_lines.push(format!(
                "| every queue, 7d, after coarsening | {rows} | {:.1} | {:.1} |",
                ms(p50),
                ms(max)
            ));
        }
        server.shutdown().await;
        phases.push(Phase {
            label,
            rollups,
            round,
            outcome,
            process_cpu_seconds: cpu.process_cores * cpu_wall,
            writer_cpu_seconds: cpu.writer_cores.unwrap_or(0.0) * cpu_wall,
        });
    }

    let rate_of = |rollups: bool, round: usize| {
        phases
            .iter()
            .find(|phase| phase.rollups == rollups && phase.round == round)
            .map_or(0.0, Phase::spans_per_second)
    };
    let round_costs: Vec<f64> =
        (0..args.rounds).map(|round| (1.0 - rate_of(true, round) / rate_of(false, round).max(1e-9)) * 100.0).collect();
    let median_rate = |rollups: bool| {
        median(phases.iter().filter(|phase| phase.rollups == rollups).map(Phase::spans_per_second).collect())
    };
    let (baseline, with_rollups) = (median_rate(false), median_rate(true));
    println!(
        "sightline bench apm --requests {} --spans-per-request {} --spans-per-trace {} --connections {} {} --query-runs {} --messaging-min-trace-spans {} --rounds {}\n",
        args.requests,
        args.spans_per_request,
        args.spans_per_trace,
        args.connections,
        match args.spread_minutes {
            Some(minutes) => format!("--spread-minutes {minutes}"),
            None => format!("--spread-days {}", args.spread_days),
        },
        args.query_runs,
        args.messaging_min_trace_spans,
        args.rounds
    );
    println!(
        "| Round | Ingest (OTLP/HTTP, fresh store each) | spans | wall s | spans/s | CPU µs/span: process | writer |"
    );
    println!("|--:|---|---:|---:|---:|---:|---:|");
    for phase in &phases {
        let (process_us, writer_us) = phase.cpu_us_per_span();
        println!(
            "| {} | {} | {} | {:.1} | {:.0} | {:.2} | {:.2} |",
            phase.round + 1,
            phase.label,
            phase.outcome.acknowledged_items,
            phase.outcome.wall.as_secs_f64(),
            phase.spans_per_second(),
            process_us,
            writer_us
        );
    }
    let listed: Vec<String> = round_costs.iter().map(|cost| format!("{cost:.1}%")).collect();
    println!("\nRollup ingest cost per round: {}", listed.join(", "));
    println!(
        "Rollup ingest cost: {:.1}% of plain span ingest throughput (median rates: {:.0} vs {:.0} spans/s; median of the rounds' costs {:.1}%)\n",
        (1.0 - with_rollups / baseline.max(1e-9)) * 100.0,
        with_rollups,
        baseline,
        median(round_costs.clone())
    );
    // CPU time per span does not count the time the writer waits (fsync, checkpoint stalls),
    // so it moves less with the machine's state than throughput does.
    let cpu_cost = |pick: fn((f64, f64)) -> f64| {
        let costs: Vec<f64> = (0..args.rounds)
            .filter_map(|round| {
                let of = |rollups: bool| {
                    phases
                        .iter()
                        .find(|phase| phase.rollups == rollups && phase.round == round)
                        .map(|phase| pick(phase.cpu_us_per_span()))
                };
                Some((of(true)? / of(false)?.max(1e-9) - 1.0) * 100.0)
            })
            .collect();
        median(costs)
    };
    println!(
        "Rollup CPU cost per span (median of the rounds): whole process +{:.1}%, writer thread +{:.1}%\n",
        cpu_cost(|(process_us, _)| process_us),
        cpu_cost(|(_, writer_us)| writer_us)
    );
    println!("| `services/checkout/performance` | requests reported | p50 ms | max ms |");
    println!("|---|---:|---:|---:|");
    for line in query_lines {
        println!("{line}");
    }
    println!("\n| `jobs` | spans reported | p50 ms | max ms |");
    println!("|---|---:|---:|---:|");
    for line in jobs_lines {
        println!("{line}");
    }
    Ok(())
}

/// (p50, max, spans counted over every job row) of `runs` timed GETs of the jobs list.
async fn time_jobs_query(
    client: &reqwest::Client,
    url: &str,
    read_key: &str,
    runs: usize,
) -> anyhow::Result<(Duration, Duration, u64)> {
    let mut timings = Vec::with_capacity(runs);
    let mut spans_reported = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let response = client.get(url).bearer_auth(read_key).send().await?.error_for_status()?;
        let body: serde_json::Value = response.json().await?;
        timings.push(started.elapsed());
        let jobs = body["jobs"].as_array().map(Vec::as_slice).unwrap_or_default();
        spans_reported = jobs.iter().map(|job| job["count"].as_u64().unwrap_or(0)).sum();
    }
    timings.sort();
    Ok((timings[timings.len() / 2], timings[timings.len() - 1], spans_reported))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
