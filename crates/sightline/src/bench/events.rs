//! `sightline bench events`: product event ingest (`POST /v1/events`) throughput of a real
//! in-process server, then session timeline latency with the store it filled.
//!
//! The recipe: generate and JSON-encode ProductGraph batches of browser sessions → measure
//! parsing alone (and parsing + preparing) on one thread → start the server on loopback with a
//! fresh data directory → replay every batch once over N connections, timing each request →
//! check that the store holds exactly the accepted events, in rows and in session summaries →
//! send one long session (events, its backend's spans, errors) → time its merged timeline →
//! print a Markdown report for BENCHMARKS.md.

mod batches;
mod report;
mod sender;
mod timeline;
mod writer_stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use rusqlite::{Connection, OpenFlags};
use sightline_model::event::parse_batch;
use sightline_server::auth::KeyScope;
use sightline_server::pipeline::symbolicate::SourceMapCache;
use sightline_server::pipeline::{PrepareContext, prepare_events};
use sightline_server::server::open_store;
use sightline_server::store::{Project, Store};
use sightline_server::{RunningServer, start};

use super::load::{self, Workload, progress_bar};
use super::process;
use super::server::{DataDir, bench_project, loopback_config};
use batches::{EventShape, EventWorkload};
use report::{EventsReport, IngestPhase, ParseBaseline, StoreCheck, TimelineResult};
use sender::EventsSender;
use timeline::{TimelineApi, TimelineSession};

/// Seeds (mixed with the clock, so event ids are fresh on every run).
const WORKLOAD_SEED: u64 = 21;
const TIMELINE_SEED: u64 = 22;

/// The receiver's batch limit (ProductGraph's `maxBatch`).
const MAX_EVENTS_PER_REQUEST: usize = sightline_server::receivers::events_http::MAX_EVENTS_PER_BATCH;

/// The timeline API's page limit.
const MAX_TIMELINE_PAGE: usize = 5_000;

/// Options of `sightline bench events`.
#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Distinct `/v1/events` batches generated; each is sent once.
    #[arg(long, default_value_t = 400)]
    pub requests: usize,
    /// Events in each batch (the receiver takes at most 1,000).
    #[arg(long, default_value_t = 500)]
    pub events_per_request: usize,
    /// Concurrent client connections, each with its own client.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Timeline entries of the session whose timeline is timed (0: skip the timeline phase).
    #[arg(long, default_value_t = 5_000)]
    pub timeline_entries: usize,
    /// Timed runs of each timeline query.
    #[arg(long, default_value_t = 20)]
    pub query_runs: usize,
    /// Data directory for the server (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl EventsArgs {
    fn validate(&self) -> anyhow::Result<()> {
        let sizes = [
            ("--requests", self.requests),
            ("--events-per-request", self.events_per_request),
            ("--connections", self.connections),
            ("--query-runs", self.query_runs),
        ];
        for (flag, value) in sizes {
            anyhow::ensure!(value > 0, "{flag} must be at least 1");
        }
        anyhow::ensure!(
            self.events_per_request <= MAX_EVENTS_PER_REQUEST,
            "--events-per-request must be at most {MAX_EVENTS_PER_REQUEST} (the receiver's batch limit)"
        );
        Ok(())
    }

    fn shape(&self) -> EventShape {
        EventShape { requests: self.requests, events_per_request: self.events_per_request }
    }

    /// The command line that reproduces this run, defaults spelled out.
    fn command_line(&self) -> String {
        let mut command = format!(
            "sightline bench events --requests {} --events-per-request {} --connections {} --timeline-entries {} --query-runs {}",
            self.requests, self.events_per_request, self.connections, self.timeline_entries, self.query_runs
        );
        if let Some(data_dir) = &self.data_dir {
            command.push_str(&format!(" --data-dir {}", data_dir.display()));
        }
        command
    }
}

/// Runs the benchmark and prints the report. Errors after printing when requests failed, the
/// store does not hold what was accepted or the timeline misses entries.
pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    args.validate()?;
    let machine = process::machine_info();
    // A temporary directory is removed when `data_dir` drops, after the report.
    let data_dir = DataDir::new(args.data_dir.as_deref())?;
    let config = loopback_config(&data_dir.path);
    let database_path = config.database_path();
    let store = open_store(&config)?;
    let bench = bench_project(store.as_ref(), "sightline bench events")?;
    let (read_key, _) =
        store.create_api_key(bench.project.id, KeyScope::Read, "sightline bench events (sessions API)")?;
    let read_key = read_key.expose().to_owned();

    let shape = args.shape();
    eprintln!("Generating {} batches x {} events of browser sessions", shape.requests, shape.events_per_request);
    let (timeline_entries, per_request) = (args.timeline_entries, args.events_per_request);
    let (generated, session) = tokio::task::spawn_blocking(move || {
        let generated = batches::generate(shape, WORKLOAD_SEED);
        let session = (timeline_entries > 0).then(|| timeline::generate(timeline_entries, per_request, TIMELINE_SEED));
        (generated, session)
    })
    .await?;
    let EventWorkload { workload, sessions, users, events_by_type } = generated;
    let workload = Arc::new(workload);

    // The prepare baseline uses the server's own source map cache over the same store, as the
    // receiver does (the bundles have no uploaded maps: one store lookup per file, then cached).
    let context = PrepareContext::new(Arc::new(SourceMapCache::new(store.clone())));
    let baselines = {
        let (workload, project) = (workload.clone(), bench.project.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<ParseBaseline>> {
            Ok(vec![parse_only(&workload)?, parse_and_prepare(&workload, &context, &project)?])
        })
        .await??
    };

    let server_store = store.clone();
    let server = start(config, store).await?;
    eprintln!("Server on http://{}; data in {}", server.http_addr, data_dir.path.display());
    let measured = measure_everything(
        &args,
        &server,
        &bench.ingest_key,
        &bench.project.slug,
        &read_key,
        &database_path,
        workload.clone(),
        sessions,
        session,
    )
    .await;
    server.shutdown().await;
    let (ingest, store_check, timeline) = measured?;

    let report = EventsReport {
        command_line: args.command_line(),
        machine,
        filesystem: process::filesystem_type(&data_dir.path),
        shape,
        sessions,
        users,
        events_by_type,
        request_bytes: workload.total_bytes(),
        baselines,
        ingest,
        store_check,
        timeline,
        query_runs: args.query_runs,
        database_bytes: process::database_bytes(&database_path),
        total_stored_events: count_stored(server_store.clone(), &database_path).await?.events,
    };
    println!("{}", report::render_markdown(&report));
    drop(data_dir);
    report.verdict()
}

/// Everything that needs the running server, so the caller can stop it whatever happens.
#[allow(clippy::too_many_arguments)]
async fn measure_everything(
    args: &EventsArgs,
    server: &RunningServer,
    ingest_key: &str,
    project_slug: &str,
    read_key: &str,
    database_path: &Path,
    workload: Arc<Workload>,
    sessions: u64,
    session: Option<TimelineSession>,
) -> anyhow::Result<(IngestPhase, StoreCheck, Option<TimelineResult>)> {
    let before = count_stored(server.store.clone(), database_path).await?;
    let ingest = run_ingest_phase(server, ingest_key, workload, args.connections, database_path)
        .await
        .context("ingest phase")?;
    let after = count_stored(server.store.clone(), database_path).await?;
    let store_check = StoreCheck {
        acknowledged_events: ingest.load.acknowledged_items,
        accepted_in_answers: ingest.accepted_in_answers,
        stored_events: after.events - before.events,
        summarized_events: after.summarized_events - before.summarized_events,
        sessions_generated: sessions,
        sessions_stored: after.sessions - before.sessions,
    };
    let Some(session) = session else {
        return Ok((ingest, store_check, None));
    };
    let timeline = run_timeline_phase(args, server, ingest_key, project_slug, read_key, database_path, &session)
        .await
        .context("timeline phase")?;
    Ok((ingest, store_check, Some(timeline)))
}

/// Parses every body as the receiver does (`sightline_model::event::parse_batch`: one pass,
/// each event validated) on this thread.
fn parse_only(workload: &Workload) -> anyhow::Result<ParseBaseline> {
    let progress = progress_bar("parse-only", workload.total_items(), "events");
    let now = batches::now_unix_nano();
    let started = Instant::now();
    let mut parsed = 0u64;
    for (body, items) in workload.bodies.iter().zip(&workload.items_per_body) {
        for event in parse_batch(body, now)? {
            std::hint::black_box(event.map_err(|error| anyhow::anyhow!("invalid event: {error}"))?);
            parsed += 1;
        }
        progress.inc(*items);
    }
    let wall = started.elapsed();
    progress.finish();
    Ok(ParseBaseline { label: "Parse only (parse_batch)", events: parsed, error_events: None, wall })
}

/// Parses and prepares every body (`prepare_events`: `error` events become error events with
/// parsed, fingerprinted stack traces) on this thread: the receiver's CPU work before the writer.
fn parse_and_prepare(
    workload: &Workload,
    context: &PrepareContext,
    project: &Project,
) -> anyhow::Result<ParseBaseline> {
    let progress = progress_bar("parse + prepare", workload.total_items(), "events");
    let now = batches::now_unix_nano();
    let started = Instant::now();
    let mut parsed = 0u64;
    let mut error_events = 0u64;
    for (body, items) in workload.bodies.iter().zip(&workload.items_per_body) {
        let mut events = Vec::with_capacity(*items as usize);
        for event in parse_batch(body, now)? {
            events.push(event.map_err(|error| anyhow::anyhow!("invalid event: {error}"))?);
        }
        parsed += events.len() as u64;
        let prepared = std::hint::black_box(prepare_events(context, project, events, 0));
        error_events += prepared.batch.map_or(0, |batch| batch.errors.len() as u64);
        progress.inc(*items);
    }
    let wall = started.elapsed();
    progress.finish();
    Ok(ParseBaseline { label: "Parse + prepare_events", events: parsed, error_events: Some(error_events), wall })
}

/// Rows in the store, read through a separate read-only connection after the store folded
/// its pending session changes (`Store::fold_pending_summaries`).
#[derive(Debug, Clone, Copy)]
struct StoredCounts {
    events: u64,
    /// Sum of `events` over session summaries (derived at ingest).
    summarized_events: u64,
    sessions: u64,
}

async fn count_stored(store: Arc<dyn Store>, database_path: &Path) -> anyhow::Result<StoredCounts> {
    let database_path = database_path.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<StoredCounts> {
        store.fold_pending_summaries().context("folding pending session changes")?;
        let connection = Connection::open_with_flags(
            &database_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {} read-only", database_path.display()))?;
        let events: i64 = connection.query_row("SELECT count(*) FROM product_events", [], |row| row.get(0))?;
        let (summarized_events, sessions): (i64, i64) =
            connection.query_row("SELECT coalesce(sum(events), 0), count(*) FROM sessions", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        Ok(StoredCounts {
            events: events as u64,
            summarized_events: summarized_events as u64,
            sessions: sessions as u64,
        })
    })
    .await?
}

/// Sends every batch once over `connections` fresh connections, timed.
async fn run_ingest_phase(
    server: &RunningServer,
    ingest_key: &str,
    workload: Arc<Workload>,
    connections: usize,
    database_path: &Path,
) -> anyhow::Result<IngestPhase> {
    let accepted = Arc::new(AtomicU64::new(0));
    let senders = EventsSender::connect_many(server.http_addr, ingest_key, connections, &accepted).await?;
    let progress = progress_bar("POST /v1/events", workload.total_items(), "events");
    let commits_before = writer_stats::read(server.http_addr).await;
    let written_before = writer_stats::storage_write_bytes();
    let peak_rss_is_per_phase = process::reset_peak_rss();
    let cpu_before = process::cpu_sample();
    let load = load::run(workload, senders, progress.clone()).await;
    let cpu = process::cpu_sample().since(&cpu_before);
    let written_after = writer_stats::storage_write_bytes();
    progress.finish();
    let commits = match (commits_before, writer_stats::read(server.http_addr).await) {
        (Ok(before), Ok(after)) => Some(after.since(&before)),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("WARNING: no commit figures: {error:#}");
            None
        }
    };
    Ok(IngestPhase {
        connections,
        load,
        commits,
        storage_write_bytes: written_before.zip(written_after).map(|(before, after)| after.saturating_sub(before)),
        accepted_in_answers: accepted.load(Ordering::Relaxed),
        cpu,
        peak_rss_bytes: process::peak_rss_bytes(),
        peak_rss_is_per_phase,
        database_bytes_after: process::database_bytes(database_path),
    })
}

/// Sends the long session, checks its summary and times its timeline.
async fn run_timeline_phase(
    args: &EventsArgs,
    server: &RunningServer,
    ingest_key: &str,
    project_slug: &str,
    read_key: &str,
    database_path: &Path,
    session: &TimelineSession,
) -> anyhow::Result<TimelineResult> {
    let send_wall = timeline::send(session, server, ingest_key, args.connections).await?;
    let stored = count_stored(server.store.clone(), database_path).await?;
    let api = TimelineApi::new(server.http_addr, project_slug, &session.session_id, read_key)?;
    let summary = api.summary().await?;
    let full_page = session.expected_entries().clamp(1, MAX_TIMELINE_PAGE as u64);
    eprintln!("Timing GET /sessions/{}?limit={full_page}", session.session_id);
    let full = api.time_query("Whole session in one page", format!("limit={full_page}"), args.query_runs).await?;
    eprintln!("Timing GET /sessions/{} (default page)", session.session_id);
    let default_page = api.time_query("First page (default `limit`, 1,000)", String::new(), args.query_runs).await?;
    Ok(TimelineResult {
        session_id: session.session_id.clone(),
        product_events: session.product_events,
        error_events: session.error_events,
        spans: session.spans,
        expected_entries: session.expected_entries(),
        send_wall,
        summary,
        stored_events_when_timed: stored.events,
        sessions_when_timed: stored.sessions,
        database_bytes_when_timed: process::database_bytes(database_path),
        queries: vec![full, default_page],
    })
}
