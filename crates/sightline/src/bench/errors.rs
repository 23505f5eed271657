//! `sightline bench errors`: error ingest (stack trace parsing, fingerprinting, grouping into
//! issues) against plain log ingest in the same run, then issue list latency with a large store.
//!
//! The recipe: generate a catalogue of bugs and encode plain INFO and error log exports → measure
//! decode + `prepare_logs` alone on one thread for both → start the server on loopback with a
//! fresh data directory → send the plain logs, then the error logs, over OTLP/HTTP with the same
//! connections and request sizes → check through the issues API that every bug became one issue
//! holding exactly its events → fill the store up to `--issues` issues through the same ingest
//! path and resolve a fifth of them → time the issue list queries → print a Markdown report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use rusqlite::{Connection, OpenFlags};
use sightline_server::pipeline::symbolicate::SourceMapCache;
use sightline_server::pipeline::{PrepareContext, prepare_logs};
use sightline_server::server::open_store;
use sightline_server::store::Project;
use sightline_server::{RunningServer, start};

use super::bugs::Bug;
use super::errors_report::{self, ErrorsReport, FillResult, GroupingCheck, LogPhase, PrepareBaseline};
use super::issue_api::{IssueApi, IssueRow, QueryTiming};
use super::load::{self, LoadOutcome, Workload, progress_bar};
use super::log_batches::{self, ErrorWorkload, LogShape};
use super::otlp_http::{HttpSender, OtlpSignal};
use super::process;
use super::server::{DataDir, admin_key, bench_project, loopback_config};

/// Seeds: the catalogue, the plain logs and the error logs each have their own.
const CATALOGUE_SEED: u64 = 11;
const PLAIN_SEED: u64 = 12;
const ERRORS_SEED: u64 = 13;
const FILL_SEED: u64 = 14;

/// Bugs of the fill have ids from here on, apart from the timed phase's catalogue.
const FILL_FIRST_ID: usize = 1_000_000;

/// Bugs generated and sent at a time during the fill (bounds the memory the bodies take).
const FILL_CHUNK_BUGS: usize = 20_000;

/// The fill spreads event timestamps over the last day, so issues' last-seen times differ.
const FILL_SPREAD_NANOS: u64 = 86_400 * 1_000_000_000;

/// Options of `sightline bench errors`.
#[derive(Debug, Clone, Args)]
pub struct ErrorsArgs {
    /// Export requests per timed phase (plain logs, then error logs); each is sent once.
    #[arg(long, default_value_t = 400)]
    pub requests: usize,
    /// Log records in each export request.
    #[arg(long, default_value_t = 256)]
    pub records_per_request: usize,
    /// Distinct bugs the error logs are drawn from (each should become one issue).
    #[arg(long, default_value_t = 200)]
    pub bugs: usize,
    /// Concurrent exporter connections, each with its own client.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Issues in the store when the list queries are timed (0: skip the fill and the queries).
    #[arg(long, default_value_t = 100_000)]
    pub issues: usize,
    /// Timed runs of each issue list query.
    #[arg(long, default_value_t = 20)]
    pub query_runs: usize,
    /// Data directory for the server (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl ErrorsArgs {
    fn validate(&self) -> anyhow::Result<()> {
        let sizes = [
            ("--requests", self.requests),
            ("--records-per-request", self.records_per_request),
            ("--bugs", self.bugs),
            ("--connections", self.connections),
            ("--query-runs", self.query_runs),
        ];
        for (flag, value) in sizes {
            anyhow::ensure!(value > 0, "{flag} must be at least 1");
        }
        anyhow::ensure!(self.bugs < FILL_FIRST_ID, "--bugs must be below {FILL_FIRST_ID}");
        Ok(())
    }

    fn shape(&self) -> LogShape {
        LogShape { requests: self.requests, records_per_request: self.records_per_request }
    }

    /// The command line that reproduces this run, defaults spelled out.
    fn command_line(&self) -> String {
        let mut command = format!(
            "sightline bench errors --requests {} --records-per-request {} --bugs {} --connections {} --issues {} --query-runs {}",
            self.requests, self.records_per_request, self.bugs, self.connections, self.issues, self.query_runs
        );
        if let Some(data_dir) = &self.data_dir {
            command.push_str(&format!(" --data-dir {}", data_dir.display()));
        }
        command
    }
}

/// Runs the benchmark and prints the report. Errors after printing when requests failed, the
/// store does not hold what was acknowledged or the issues do not match the bugs.
pub async fn run(args: ErrorsArgs) -> anyhow::Result<()> {
    args.validate()?;
    let machine = process::machine_info();
    // A temporary directory is removed when `data_dir` drops, after the report.
    let data_dir = DataDir::new(args.data_dir.as_deref())?;
    let config = loopback_config(&data_dir.path);
    let database_path = config.database_path();
    let store = open_store(&config)?;
    let bench = bench_project(store.as_ref(), "sightline bench errors")?;
    let api_key = admin_key(store.as_ref(), &bench.project, "sightline bench errors (issues API)")?;

    let shape = args.shape();
    eprintln!(
        "Generating {} bugs and {} requests x {} records of plain and of error logs",
        args.bugs, shape.requests, shape.records_per_request
    );
    let bug_count = args.bugs;
    let (bugs, plain, errors) = tokio::task::spawn_blocking(move || {
        let bugs = log_batches::catalogue(0, bug_count, CATALOGUE_SEED);
        let plain = log_batches::plain_logs(shape, PLAIN_SEED);
        let errors = log_batches::error_logs(shape, &bugs, ERRORS_SEED);
        (bugs, Arc::new(plain), errors)
    })
    .await?;
    let ErrorWorkload { workload: error_workload, events_per_bug } = errors;
    let error_workload = Arc::new(error_workload);
    let error_events_sent: u64 = events_per_bug.values().sum();

    // The baseline uses the server's own source map cache over the same store, as the
    // receivers do (Node frames are looked up once per file and release, then cached).
    let context = PrepareContext::new(Arc::new(SourceMapCache::new(store.clone())));
    let baselines = {
        let (plain, errors, project) = (plain.clone(), error_workload.clone(), bench.project.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<[PrepareBaseline; 2]> {
            Ok([
                prepare_only("Decode + prepare only, plain logs", &plain, &context, &project)?,
                prepare_only("Decode + prepare only, error logs", &errors, &context, &project)?,
            ])
        })
        .await??
    };

    let server = start(config, store).await?;
    eprintln!("Server on http://{}; data in {}", server.http_addr, data_dir.path.display());
    let api = IssueApi::new(server.http_addr, &bench.project.slug, &api_key)?;
    let measured = measure_everything(
        &args,
        &server,
        &bench.ingest_key,
        &api,
        &database_path,
        plain,
        error_workload,
        &events_per_bug,
        &bugs,
    )
    .await;
    server.shutdown().await;
    let (plain_phase, error_phase, grouping, fill, queries) = measured?;

    let frame_counts: Vec<usize> = bugs.iter().map(Bug::frame_count).collect();
    let frames = (
        frame_counts.iter().copied().min().unwrap_or(0),
        frame_counts.iter().sum::<usize>() as f64 / frame_counts.len().max(1) as f64,
        frame_counts.iter().copied().max().unwrap_or(0),
    );
    let report = ErrorsReport {
        command_line: args.command_line(),
        machine,
        filesystem: process::filesystem_type(&data_dir.path),
        shape,
        bugs: bugs.len(),
        fatal_bugs: bugs.iter().filter(|bug| bug.fatal).count(),
        frames,
        baselines,
        plain: plain_phase,
        errors: LogPhase { error_events_sent, ..error_phase },
        grouping,
        fill,
        queries,
        query_runs: args.query_runs,
        database_bytes: process::database_bytes(&database_path),
    };
    println!("{}", errors_report::render_markdown(&report));
    drop(data_dir);
    report.verdict()
}

type Measurements = (LogPhase, LogPhase, GroupingCheck, Option<FillResult>, Vec<QueryTiming>);

/// Everything that needs the running server, so the caller can stop it whatever happens.
#[allow(clippy::too_many_arguments)]
async fn measure_everything(
    args: &ErrorsArgs,
    server: &RunningServer,
    ingest_key: &str,
    api: &IssueApi,
    database_path: &Path,
    plain: Arc<Workload>,
    error_workload: Arc<Workload>,
    events_per_bug: &BTreeMap<usize, u64>,
    bugs: &[Bug],
) -> anyhow::Result<Measurements> {
    let issues_before = api.all_issues().await.context("listing issues before the error phase")?;
    let plain_phase = run_log_phase("OTLP/HTTP plain logs", server, ingest_key, plain, args.connections, database_path)
        .await
        .context("plain log phase")?;
    let error_phase =
        run_log_phase("OTLP/HTTP error logs", server, ingest_key, error_workload, args.connections, database_path)
            .await
            .context("error log phase")?;
    let issues_after = api.all_issues().await.context("listing issues after the error phase")?;
    let grouping = check_grouping(&issues_before, &issues_after, events_per_bug);
    if args.issues == 0 {
        return Ok((plain_phase, error_phase, grouping, None, Vec::new()));
    }
    let fill = fill_issues(args, server, ingest_key, api, &issues_after, database_path)
        .await
        .context("filling the store with issues")?;
    let searched_function = fill
        .last_function
        .clone()
        .or_else(|| bugs.last().map(|bug| bug.innermost_function.clone()))
        .unwrap_or_default();
    let queries = time_queries(api, &searched_function, args.query_runs).await.context("timing issue list queries")?;
    Ok((plain_phase, error_phase, grouping, Some(fill.result), queries))
}

/// Decodes and prepares every body on this thread: the CPU work a receiver does per request
/// before anything reaches the writer.
fn prepare_only(
    label: &'static str,
    workload: &Workload,
    context: &PrepareContext,
    project: &Project,
) -> anyhow::Result<PrepareBaseline> {
    let progress = progress_bar("prepare-only", workload.total_items(), "logs");
    let started = Instant::now();
    let mut records = 0u64;
    let mut rejected = 0u64;
    let mut error_events = 0u64;
    for (body, items) in workload.bodies.iter().zip(&workload.items_per_body) {
        let request = ExportLogsServiceRequest::decode(&body[..]).context("decoding a generated body")?;
        let prepared = std::hint::black_box(prepare_logs(context, project, &request));
        records += prepared.report.accepted;
        rejected += prepared.report.rejected;
        error_events += prepared.batch.map_or(0, |batch| batch.errors.len() as u64);
        progress.inc(*items);
    }
    let wall = started.elapsed();
    progress.finish();
    anyhow::ensure!(rejected == 0, "the generator produced {rejected} invalid log records");
    Ok(PrepareBaseline { label, records, error_events, wall, bytes: workload.total_bytes() })
}

/// Rows in the store, read through a separate read-only connection.
#[derive(Debug, Clone, Copy)]
struct StoredCounts {
    log_records: u64,
    error_events: u64,
}

async fn count_stored(database_path: &Path) -> anyhow::Result<StoredCounts> {
    let database_path = database_path.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<StoredCounts> {
        let connection = Connection::open_with_flags(
            &database_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {} read-only", database_path.display()))?;
        let log_records: i64 = connection.query_row("SELECT count(*) FROM logs", [], |row| row.get(0))?;
        let error_events: i64 = connection.query_row("SELECT count(*) FROM error_events", [], |row| row.get(0))?;
        Ok(StoredCounts { log_records: log_records as u64, error_events: error_events as u64 })
    })
    .await?
}

async fn connect_senders(
    server: &RunningServer,
    ingest_key: &str,
    connections: usize,
) -> anyhow::Result<Vec<HttpSender>> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(HttpSender::connect(server.http_addr, ingest_key, OtlpSignal::Logs).await?);
    }
    Ok(senders)
}

/// Sends every body of `workload` once over `connections` fresh connections, timed.
async fn run_log_phase(
    label: &'static str,
    server: &RunningServer,
    ingest_key: &str,
    workload: Arc<Workload>,
    connections: usize,
    database_path: &Path,
) -> anyhow::Result<LogPhase> {
    let before = count_stored(database_path).await?;
    let senders = connect_senders(server, ingest_key, connections).await?;
    let progress = progress_bar(label, workload.total_items(), "logs");
    process::reset_peak_rss();
    let cpu_before = process::cpu_sample();
    let load = load::run(workload, senders, progress.clone()).await;
    let cpu = process::cpu_sample().since(&cpu_before);
    progress.finish();
    let peak_rss_bytes = process::peak_rss_bytes();
    let after = count_stored(database_path).await?;
    Ok(LogPhase {
        label,
        connections,
        load,
        error_events_sent: 0,
        cpu,
        peak_rss_bytes,
        stored_records: after.log_records - before.log_records,
        stored_error_events: after.error_events - before.error_events,
        database_bytes_after: process::database_bytes(database_path),
    })
}

/// Compares what each issue's event count grew by with the events sent per bug: as multisets,
/// since nothing in an issue names the bug (that is the grouping's job).
fn check_grouping(before: &[IssueRow], after: &[IssueRow], events_per_bug: &BTreeMap<usize, u64>) -> GroupingCheck {
    let counts_before: HashMap<i64, u64> = before.iter().map(|issue| (issue.id, issue.event_count)).collect();
    let mut increases: Vec<u64> = after
        .iter()
        .map(|issue| issue.event_count.saturating_sub(counts_before.get(&issue.id).copied().unwrap_or(0)))
        .filter(|grew| *grew > 0)
        .collect();
    increases.sort_unstable();
    let mut expected: Vec<u64> = events_per_bug.values().copied().collect();
    expected.sort_unstable();
    GroupingCheck {
        distinct_bugs: events_per_bug.len(),
        issues_created: after.iter().filter(|issue| !counts_before.contains_key(&issue.id)).count(),
        issues_touched: increases.len(),
        events_sent: expected.iter().sum(),
        event_count_added: increases.iter().sum(),
        counts_match: increases == expected,
    }
}

struct Fill {
    result: FillResult,
    /// The innermost function of the last bug sent, for a text search that matches one issue.
    last_function: Option<String>,
}

/// Sends new bugs (one issue each) until the project has `--issues` issues, then resolves every
/// fifth new issue. Bug ids continue after the issues already there, so a reused `--data-dir`
/// gets new bugs rather than more events of old ones.
async fn fill_issues(
    args: &ErrorsArgs,
    server: &RunningServer,
    ingest_key: &str,
    api: &IssueApi,
    issues_before: &[IssueRow],
    database_path: &Path,
) -> anyhow::Result<Fill> {
    let bugs_needed = args.issues.saturating_sub(issues_before.len());
    let first_id = FILL_FIRST_ID + issues_before.len();
    let progress = progress_bar("fill", 0, "logs");
    let mut load = LoadOutcome::empty();
    let mut sending = Duration::ZERO;
    let mut last_function = None;
    let mut chunk_start = 0;
    while chunk_start < bugs_needed {
        let chunk_len = FILL_CHUNK_BUGS.min(bugs_needed - chunk_start);
        let (chunk_first, records_per_request, seed) =
            (first_id + chunk_start, args.records_per_request, FILL_SEED + chunk_start as u64);
        let (workload, function) = tokio::task::spawn_blocking(move || {
            let bugs = log_batches::catalogue(chunk_first, chunk_len, seed);
            let workload = log_batches::every_bug(&bugs, records_per_request, FILL_SPREAD_NANOS, seed);
            (workload.workload, bugs.last().map(|bug| bug.innermost_function.clone()))
        })
        .await?;
        last_function = function;
        progress.inc_length(workload.total_items());
        let senders = connect_senders(server, ingest_key, args.connections).await?;
        let chunk = load::run(Arc::new(workload), senders, progress.clone()).await;
        sending += chunk.wall;
        load.merge(chunk);
        chunk_start += chunk_len;
    }
    progress.finish();
    load.wall = sending;

    let listing_started = Instant::now();
    let issues_after = api.all_issues().await?;
    let listing_wall = listing_started.elapsed();
    let known: HashSet<i64> = issues_before.iter().map(|issue| issue.id).collect();
    let mut new_ids: Vec<i64> = issues_after.iter().map(|issue| issue.id).filter(|id| !known.contains(id)).collect();
    new_ids.sort_unstable();
    let to_resolve: Vec<i64> = new_ids.iter().copied().step_by(5).collect();
    api.resolve(&to_resolve).await?;
    let count_sum = |issues: &[IssueRow]| issues.iter().map(|issue| issue.event_count).sum::<u64>();
    Ok(Fill {
        result: FillResult {
            issues_before: issues_before.len(),
            bugs: bugs_needed,
            load,
            issues_after: issues_after.len(),
            event_count_added: count_sum(&issues_after) - count_sum(issues_before),
            listing_wall,
            resolved: to_resolve.len(),
            database_bytes_after: process::database_bytes(database_path),
        },
        last_function,
    })
}

/// The issue stream page's common queries, each timed `runs` times.
async fn time_queries(api: &IssueApi, searched_function: &str, runs: usize) -> anyhow::Result<Vec<QueryTiming>> {
    let default_query = "status=unresolved";
    let cursor = api.next_cursor(default_query).await?.unwrap_or_default();
    let queries: Vec<(&str, String)> = vec![
        ("Unresolved, by last seen (default)", default_query.to_owned()),
        ("… by events", "status=unresolved&sort=count".to_owned()),
        ("… by users", "status=unresolved&sort=users".to_owned()),
        ("… one service", "status=unresolved&service=checkout".to_owned()),
        ("… text in many titles", "status=unresolved&q=timeout".to_owned()),
        ("… text in one culprit", format!("status=unresolved&q={searched_function}")),
        ("… production, fatal", "status=unresolved&environment=production&level=fatal".to_owned()),
        ("… second page (cursor)", format!("status=unresolved&cursor={cursor}")),
    ];
    let mut timings = Vec::with_capacity(queries.len());
    for (label, query) in queries {
        eprintln!("Timing GET /issues?{query}");
        timings.push(api.time_query(label, &query, runs).await?);
    }
    Ok(timings)
}
