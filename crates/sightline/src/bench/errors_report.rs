//! The error benchmark's figures and their Markdown rendering (pasted into BENCHMARKS.md as is).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::issue_api::QueryTiming;
use super::load::LoadOutcome;
use super::log_batches::LogShape;
use super::process::{CpuUse, MachineInfo};
use super::report::{grouped, machine_line, mebibytes, retries_cell};

/// The issue's bar: error events per second through parsing, grouping and commit...
const BAR_ERROR_EVENTS_PER_SECOND: f64 = 20_000.0;
/// ...and the issue list answering within this with 100,000 issues.
const BAR_ISSUE_LIST_MS: f64 = 50.0;

/// Decode + `prepare_logs` on one thread: the CPU work a receiver does before the commit.
pub struct PrepareBaseline {
    /// Row label.
    pub label: &'static str,
    /// Records prepared.
    pub records: u64,
    /// Error events derived.
    pub error_events: u64,
    /// Time taken.
    pub wall: Duration,
    /// Protobuf bytes decoded.
    pub bytes: u64,
}

impl PrepareBaseline {
    fn records_per_second(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// One timed phase of log exports over OTLP/HTTP.
pub struct LogPhase {
    /// Row label.
    pub label: &'static str,
    /// Concurrent connections.
    pub connections: usize,
    /// Client-side figures.
    pub load: LoadOutcome,
    /// Error events among the acknowledged records (all of them for error logs, none for INFO).
    pub error_events_sent: u64,
    /// CPU used during the phase.
    pub cpu: CpuUse,
    /// VmHWM at the end of the phase.
    pub peak_rss_bytes: Option<u64>,
    /// Rows the `logs` table gained.
    pub stored_records: u64,
    /// Rows the `error_events` table gained.
    pub stored_error_events: u64,
    /// Database with WAL after the phase, bytes.
    pub database_bytes_after: u64,
}

impl LogPhase {
    fn records_per_second(&self) -> f64 {
        self.load.acknowledged_items as f64 / self.load.wall.as_secs_f64().max(1e-9)
    }

    fn latency_ms(&self, quantile: f64) -> f64 {
        self.load.latencies_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn store_holds(&self) -> bool {
        self.stored_records == self.load.acknowledged_items && self.stored_error_events == self.error_events_sent
    }
}

/// Issues after the error phase against the bugs sent, read through the API.
pub struct GroupingCheck {
    /// Distinct bugs among the events sent.
    pub distinct_bugs: usize,
    /// Issues that did not exist before the phase.
    pub issues_created: usize,
    /// Issues whose event count grew.
    pub issues_touched: usize,
    /// Error events sent.
    pub events_sent: u64,
    /// What the issues' `event_count` grew by in total.
    pub event_count_added: u64,
    /// The multiset of per-issue count increases equals the multiset of per-bug event counts.
    pub counts_match: bool,
}

impl GroupingCheck {
    /// Every bug became exactly one issue and every event was counted once.
    pub fn holds(&self) -> bool {
        self.issues_touched == self.distinct_bugs && self.event_count_added == self.events_sent && self.counts_match
    }
}

/// Filling the store with issues for the query timings.
pub struct FillResult {
    /// Issues before the fill.
    pub issues_before: usize,
    /// New bugs sent (one issue each).
    pub bugs: usize,
    /// Client-side figures over all chunks (`wall` summed over the chunks' sends).
    pub load: LoadOutcome,
    /// Issues after the fill, read through the API.
    pub issues_after: usize,
    /// What the issues' `event_count` grew by during the fill.
    pub event_count_added: u64,
    /// Reading every issue through the API, pages of 1000.
    pub listing_wall: Duration,
    /// Issues resolved afterwards (so `status=unresolved` filters something).
    pub resolved: usize,
    /// Database with WAL after the fill, bytes.
    pub database_bytes_after: u64,
}

impl FillResult {
    /// Every new bug became an issue and every event was counted.
    pub fn holds(&self) -> bool {
        self.issues_after == self.issues_before + self.bugs
            && self.event_count_added == self.load.acknowledged_items
            && self.load.failed_requests == 0
    }
}

/// Everything one run measured.
pub struct ErrorsReport {
    /// The command reproducing the run.
    pub command_line: String,
    /// Where it ran.
    pub machine: MachineInfo,
    /// File system of the data directory.
    pub filesystem: String,
    /// Requests × records per phase.
    pub shape: LogShape,
    /// Bugs in the catalogue of the timed error phase.
    pub bugs: usize,
    /// Bugs logged at FATAL.
    pub fatal_bugs: usize,
    /// Frames per event: (min, mean, max) over the catalogue.
    pub frames: (usize, f64, usize),
    /// Plain INFO logs, then error logs.
    pub baselines: [PrepareBaseline; 2],
    /// Plain INFO logs over HTTP.
    pub plain: LogPhase,
    /// Error logs over HTTP.
    pub errors: LogPhase,
    /// Issues against bugs.
    pub grouping: GroupingCheck,
    /// The fill for the query timings (absent with `--issues 0`).
    pub fill: Option<FillResult>,
    /// Issue list queries.
    pub queries: Vec<QueryTiming>,
    /// Timed runs per query.
    pub query_runs: usize,
    /// Database with WAL after the server stopped, bytes.
    pub database_bytes: u64,
}

impl ErrorsReport {
    /// Cost of one error event over one plain log at the same concurrency, microseconds:
    /// 1 / error rate − 1 / plain rate.
    fn extra_microseconds_per_error_event(&self) -> f64 {
        1e6 / self.errors.records_per_second().max(1e-9) - 1e6 / self.plain.records_per_second().max(1e-9)
    }

    /// Ok when every request succeeded, the store holds what was acknowledged and grouping
    /// made one issue per bug.
    pub fn verdict(&self) -> anyhow::Result<()> {
        let phases = [&self.plain, &self.errors];
        for phase in phases {
            for example in &phase.load.failure_examples {
                eprintln!("WARNING: {} request failed: {example}", phase.label);
            }
        }
        let failed: u64 = phases.iter().map(|phase| phase.load.failed_requests).sum();
        let rejected: u64 = phases.iter().map(|phase| phase.load.rejected_items).sum();
        anyhow::ensure!(failed == 0, "{failed} requests failed");
        anyhow::ensure!(rejected == 0, "the server rejected {rejected} log records as invalid");
        anyhow::ensure!(phases.iter().all(|phase| phase.store_holds()), "stored rows differ from acknowledged records");
        anyhow::ensure!(self.grouping.holds(), "issues do not match the bugs sent");
        if let Some(fill) = &self.fill {
            anyhow::ensure!(fill.holds(), "the fill did not create one issue per new bug");
        }
        Ok(())
    }
}

fn phase_row(out: &mut String, phase: &LogPhase) {
    let writer = phase.cpu.writer_cores.map(|cores| format!("{cores:.2}")).unwrap_or_else(|| "?".to_owned());
    let peak = phase.peak_rss_bytes.map(mebibytes).unwrap_or_else(|| "?".to_owned());
    let rate = phase.records_per_second();
    let _ = writeln!(
        out,
        "| {} × {} conns | {} | {} | {:.2} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {:.2} / {writer} | {peak} | {} |",
        phase.label,
        phase.connections,
        grouped(phase.load.acknowledged_items),
        grouped(phase.error_events_sent),
        phase.load.wall.as_secs_f64(),
        grouped(rate as u64),
        1e6 / rate.max(1e-9),
        phase.latency_ms(0.50),
        phase.latency_ms(0.90),
        phase.latency_ms(0.99),
        phase.load.latencies_us.max() as f64 / 1000.0,
        retries_cell(&phase.load),
        grouped(phase.load.failed_requests),
        phase.cpu.process_cores,
        mebibytes(phase.database_bytes_after),
    );
}

/// The report as Markdown: ingest table with baselines, the cost per error event, the checks,
/// then the issue list timings.
pub fn render_markdown(report: &ErrorsReport) -> String {
    let mut out = String::new();
    let shape = &report.shape;
    let date = humantime::format_rfc3339_seconds(SystemTime::now());
    let records_per_phase = shape.requests as u64 * shape.records_per_request as u64;
    let bytes_per_record = |bytes: u64| bytes as f64 / records_per_phase.max(1) as f64;

    let _ = writeln!(
        out,
        "### Errors: {} records/request, {} connections ({date})\n",
        shape.records_per_request, report.plain.connections
    );
    let _ = writeln!(out, "```\n{}\n```\n", report.command_line);
    let _ = writeln!(out, "- {}", machine_line(&report.machine, &report.filesystem));
    let (min_frames, mean_frames, max_frames) = report.frames;
    let _ = writeln!(
        out,
        "- Workload per phase: {} requests × {} records = {} log records, one resource (service) per request. \
         Plain: INFO access logs, {:.0} B/record. Errors: ERROR/FATAL logs with `exception.type`, `.message` (ids vary) and \
         `.stacktrace` from {} bugs ({} fatal) in Python, Node and Java services: 10–30 printed frames per trace, \
         {min_frames}–{max_frames} (mean {mean_frames:.1}) over the exception chain once Java's `... N more` is restored; \
         bug k of a service drawn with weight 1/(k+1); {:.0} B/record. Each request sent once.",
        grouped(shape.requests as u64),
        grouped(shape.records_per_request as u64),
        grouped(records_per_phase),
        bytes_per_record(report.baselines[0].bytes),
        grouped(report.bugs as u64),
        report.fatal_bugs,
        bytes_per_record(report.baselines[1].bytes),
    );
    let _ = writeln!(
        out,
        "- Server: in-process with the clients, server defaults (SQLite WAL, group commit, each answered after an fsync of the WAL); \
         the error phase runs second, into the store the plain phase filled\n"
    );

    let _ = writeln!(
        out,
        "| Phase | Records committed | Error events | Wall s | Records/s | µs/record | p50 ms | p90 ms | p99 ms | max ms | Retried | Failed | CPU cores: process / writer | Peak RSS MiB | DB MiB after |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for baseline in &report.baselines {
        let rate = baseline.records_per_second();
        let _ = writeln!(
            out,
            "| {}, 1 thread | {} | {} | {:.2} | {} | {:.2} | – | – | – | – | – | – | 1.00 / – | – | – |",
            baseline.label,
            grouped(baseline.records),
            grouped(baseline.error_events),
            baseline.wall.as_secs_f64(),
            grouped(rate as u64),
            1e6 / rate.max(1e-9),
        );
    }
    phase_row(&mut out, &report.plain);
    phase_row(&mut out, &report.errors);
    let _ = writeln!(out);

    let [plain_baseline, error_baseline] = &report.baselines;
    let prepare_extra_us =
        1e6 / error_baseline.records_per_second().max(1e-9) - 1e6 / plain_baseline.records_per_second().max(1e-9);
    let _ = writeln!(
        out,
        "- **Cost per error event over a plain log: {:.1} µs** end to end over HTTP (1/{} − 1/{} s); an error log \
         takes {:.1}× a plain log's share of the server. Decoding and preparing alone (parse the stack trace, in-app \
         rules, fingerprint, context) costs {:.1} µs more per error event on one thread; grouping and storing happen at \
         commit on the writer thread.",
        report.extra_microseconds_per_error_event(),
        grouped(report.errors.records_per_second() as u64),
        grouped(report.plain.records_per_second() as u64),
        report.plain.records_per_second() / report.errors.records_per_second().max(1e-9),
        prepare_extra_us,
    );
    let cpu_per_record = |phase: &LogPhase| {
        let rate = phase.records_per_second().max(1e-9);
        let writer =
            phase.cpu.writer_cores.map(|cores| format!("{:.0}", cores * 1e6 / rate)).unwrap_or_else(|| "?".to_owned());
        format!("{:.0} µs (writer thread {writer} µs)", phase.cpu.process_cores * 1e6 / rate)
    };
    let _ = writeln!(
        out,
        "- CPU time per record, whole process (clients included): plain log {}, error log {}.",
        cpu_per_record(&report.plain),
        cpu_per_record(&report.errors),
    );
    for phase in [&report.plain, &report.errors] {
        let word = if phase.store_holds() { "OK" } else { "MISMATCH" };
        let _ = writeln!(
            out,
            "- Store check, {}: {word}: `logs` gained {} rows for {} acknowledged records, `error_events` {} for {} sent.",
            phase.label,
            grouped(phase.stored_records),
            grouped(phase.load.acknowledged_items),
            grouped(phase.stored_error_events),
            grouped(phase.error_events_sent),
        );
    }
    let grouping = &report.grouping;
    let _ = writeln!(
        out,
        "- Grouping check (through the issues API): {}: {} distinct bugs sent → {} issues touched ({} new); their event counts \
         grew by {} for {} events sent; per-issue counts {} the per-bug counts.",
        if grouping.holds() { "OK" } else { "MISMATCH" },
        grouped(grouping.distinct_bugs as u64),
        grouped(grouping.issues_touched as u64),
        grouped(grouping.issues_created as u64),
        grouped(grouping.event_count_added),
        grouped(grouping.events_sent),
        if grouping.counts_match { "equal" } else { "differ from" },
    );
    let error_rate = report.errors.records_per_second();
    let _ = writeln!(
        out,
        "- Bar (≥ {} error events/s): {} ({} error events/s, p99 {:.1} ms).",
        grouped(BAR_ERROR_EVENTS_PER_SECOND as u64),
        if error_rate >= BAR_ERROR_EVENTS_PER_SECOND { "meets it" } else { "misses it" },
        grouped(error_rate as u64),
        report.errors.latency_ms(0.99),
    );
    for phase in [&report.plain, &report.errors] {
        let busiest: Vec<String> =
            phase.cpu.by_thread_cores.iter().take(4).map(|(thread, cores)| format!("{thread} {cores:.2}")).collect();
        let _ = writeln!(out, "- CPU by thread during {} (cores): {}.", phase.label, busiest.join(", "));
    }
    let _ = writeln!(
        out,
        "- Latency is per accepted request (send to answer, which follows the commit). Peak RSS is this process's VmHWM: \
         server, clients and the pre-encoded bodies."
    );

    if let Some(fill) = &report.fill {
        render_queries(&mut out, report, fill);
    }
    let _ = writeln!(out, "- Database after the run: {} MiB with WAL.", mebibytes(report.database_bytes));
    out
}

fn render_queries(out: &mut String, report: &ErrorsReport, fill: &FillResult) {
    let fill_rate = fill.load.acknowledged_items as f64 / fill.load.wall.as_secs_f64().max(1e-9);
    let _ = writeln!(out, "\n#### Issue list with {} issues\n", grouped(fill.issues_after as u64));
    let _ = writeln!(
        out,
        "- Fill: {}: {} error events of {} new bugs (each once, one in seven again 1–5 times, timestamps spread over \
         24 h) in {:.1} s of sending = {} events/s, {} new issues/s (p99 {:.0} ms per request, {} retried, {} failed); \
         {} → {} issues, event counts +{}.",
        if fill.holds() { "OK" } else { "MISMATCH" },
        grouped(fill.load.acknowledged_items),
        grouped(fill.bugs as u64),
        fill.load.wall.as_secs_f64(),
        grouped(fill_rate as u64),
        grouped((fill.bugs as f64 / fill.load.wall.as_secs_f64().max(1e-9)) as u64),
        fill.load.latencies_us.value_at_quantile(0.99) as f64 / 1000.0,
        grouped(fill.load.total_retries()),
        grouped(fill.load.failed_requests),
        grouped(fill.issues_before as u64),
        grouped(fill.issues_after as u64),
        grouped(fill.event_count_added),
    );
    let _ = writeln!(
        out,
        "- Then: every issue read through the API in pages of 1000 ({:.1} s); {} of the new issues (every fifth) resolved \
         through bulk `PATCH /issues`. Database {} MiB after the fill.",
        fill.listing_wall.as_secs_f64(),
        grouped(fill.resolved as u64),
        mebibytes(fill.database_bytes_after),
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Query | `GET /api/v1/projects/default/issues?…` | Issues returned | Body KiB | p50 ms | p99 ms | max ms | p99 < {BAR_ISSUE_LIST_MS:.0} ms |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|---|");
    for query in &report.queries {
        let p99 = query.latency_ms(0.99);
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            query.label,
            query.query,
            query.returned,
            query.response_bytes as f64 / 1024.0,
            query.latency_ms(0.50),
            p99,
            query.latencies_us.max() as f64 / 1000.0,
            if p99 < BAR_ISSUE_LIST_MS { "yes" } else { "**no**" },
        );
    }
    let _ = writeln!(out);
    let slow: Vec<String> = report
        .queries
        .iter()
        .filter(|query| query.latency_ms(0.99) >= BAR_ISSUE_LIST_MS)
        .map(|query| format!("`{}`", query.query))
        .collect();
    let _ = writeln!(
        out,
        "- Bar (issue list < {BAR_ISSUE_LIST_MS:.0} ms with {} issues): {}.",
        grouped(fill.issues_after as u64),
        if slow.is_empty() { "every query meets it".to_owned() } else { format!("missed by {}", slow.join(", ")) },
    );
    let _ = writeln!(
        out,
        "- Latency is client-side per request (HTTP, key lookup, SQL, JSON), {} sequential runs per query after one untimed run.",
        report.query_runs
    );
}
