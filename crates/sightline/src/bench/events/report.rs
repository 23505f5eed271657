//! The product events benchmark's figures and their Markdown rendering (pasted into
//! BENCHMARKS.md as is).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::batches::EventShape;
use super::timeline::{SummaryCounts, TimelineTiming};
use super::writer_stats::CommitStats;
use crate::bench::load::LoadOutcome;
use crate::bench::process::{CpuUse, MachineInfo};
use crate::bench::report::{grouped, machine_line, mebibytes, retries_cell};

/// The issue's bars: product events committed per second on this machine...
const BAR_EVENTS_PER_SECOND: f64 = 100_000.0;
/// ...and the timeline of a 5,000-entry session, p99 below this.
const BAR_TIMELINE_MS: f64 = 50.0;

/// A single-threaded CPU baseline over the same bodies.
pub struct ParseBaseline {
    /// Row label.
    pub label: &'static str,
    /// Events parsed.
    pub events: u64,
    /// Error events derived (`None` when the baseline does not prepare).
    pub error_events: Option<u64>,
    /// Time taken.
    pub wall: Duration,
}

impl ParseBaseline {
    fn events_per_second(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// The timed `/v1/events` phase.
pub struct IngestPhase {
    /// Concurrent connections.
    pub connections: usize,
    /// Client-side figures.
    pub load: LoadOutcome,
    /// Sum of `accepted` over the 202 answers.
    pub accepted_in_answers: u64,
    /// Group commits during the phase, from the server's `/metrics`.
    pub commits: Option<CommitStats>,
    /// Bytes written to storage during the phase (WAL appends and checkpoints).
    pub storage_write_bytes: Option<u64>,
    /// CPU used during the phase.
    pub cpu: CpuUse,
    /// VmHWM at the end of the phase.
    pub peak_rss_bytes: Option<u64>,
    /// True when the high-water mark was reset at the phase start (else it is the run's peak).
    pub peak_rss_is_per_phase: bool,
    /// Database with WAL after the phase, bytes.
    pub database_bytes_after: u64,
}

impl IngestPhase {
    fn events_per_second(&self) -> f64 {
        self.load.acknowledged_items as f64 / self.load.wall.as_secs_f64().max(1e-9)
    }

    fn latency_ms(&self, quantile: f64) -> f64 {
        self.load.latencies_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Accepted events against what the store gained during the ingest phase.
pub struct StoreCheck {
    /// Events in accepted requests minus those reported rejected.
    pub acknowledged_events: u64,
    /// Sum of the answers' `accepted`.
    pub accepted_in_answers: u64,
    /// Rows `product_events` gained.
    pub stored_events: u64,
    /// What the session summaries' `events` counts gained.
    pub summarized_events: u64,
    /// Distinct sessions in the batches.
    pub sessions_generated: u64,
    /// Rows `sessions` gained.
    pub sessions_stored: u64,
}

impl StoreCheck {
    fn holds(&self) -> bool {
        let acknowledged = self.acknowledged_events;
        self.accepted_in_answers == acknowledged
            && self.stored_events == acknowledged
            && self.summarized_events == acknowledged
            && self.sessions_stored == self.sessions_generated
    }
}

/// The timeline phase: the long session and its timed queries.
pub struct TimelineResult {
    /// The session's id.
    pub session_id: String,
    /// Product events sent (errors included).
    pub product_events: u64,
    /// `error` events among them.
    pub error_events: u64,
    /// SERVER spans sent.
    pub spans: u64,
    /// Entries the timeline should list.
    pub expected_entries: u64,
    /// Time to send the session (events, then spans).
    pub send_wall: Duration,
    /// The summary as the API answered it.
    pub summary: SummaryCounts,
    /// Rows in `product_events` when the queries ran.
    pub stored_events_when_timed: u64,
    /// Rows in `sessions` when the queries ran.
    pub sessions_when_timed: u64,
    /// Database with WAL when the queries ran, bytes.
    pub database_bytes_when_timed: u64,
    /// The whole session in one page, then the default first page.
    pub queries: Vec<TimelineTiming>,
}

impl TimelineResult {
    fn summary_holds(&self) -> bool {
        self.summary.events == self.product_events
            && self.summary.requests == self.spans
            && self.summary.errors == self.error_events
    }

    /// The whole-session query returned every entry (when they fit in one page).
    fn timeline_holds(&self) -> bool {
        let Some(full) = self.queries.first() else { return false };
        let page = self.expected_entries.min(5_000) as usize;
        full.entries_returned == page && full.has_next_page == (self.expected_entries > 5_000)
    }

    fn meets_bar(&self) -> bool {
        self.queries.first().is_some_and(|full| full.latency_ms(0.99) < BAR_TIMELINE_MS)
    }
}

/// Everything one run measured.
pub struct EventsReport {
    /// The command reproducing the run.
    pub command_line: String,
    /// Where it ran.
    pub machine: MachineInfo,
    /// File system of the data directory.
    pub filesystem: String,
    /// Generated batches.
    pub shape: EventShape,
    /// Distinct sessions in them.
    pub sessions: u64,
    /// Distinct signed-in users.
    pub users: u64,
    /// Events per `event.type`.
    pub events_by_type: BTreeMap<&'static str, u64>,
    /// JSON bytes over all batches.
    pub request_bytes: u64,
    /// Single-threaded baselines; the first is the reference for the ratio.
    pub baselines: Vec<ParseBaseline>,
    /// The timed ingest phase.
    pub ingest: IngestPhase,
    /// Accepted vs stored.
    pub store_check: StoreCheck,
    /// The timeline phase, unless skipped.
    pub timeline: Option<TimelineResult>,
    /// Timed runs per timeline query.
    pub query_runs: usize,
    /// Database with WAL after the server stopped, bytes.
    pub database_bytes: u64,
    /// Rows in `product_events` after the run (all phases, earlier runs of a reused directory).
    pub total_stored_events: u64,
}

impl EventsReport {
    /// Ok when every request succeeded, the store holds exactly the accepted events and the
    /// timeline lists every entry of the session.
    pub fn verdict(&self) -> anyhow::Result<()> {
        let load = &self.ingest.load;
        let check = &self.store_check;
        for example in &load.failure_examples {
            eprintln!("WARNING: a /v1/events request failed: {example}");
        }
        if !check.holds() {
            eprintln!(
                "WARNING: {} events acknowledged ({} in the answers' `accepted`), but the store gained {} rows, {} in \
                 session summaries, and {} sessions for {} generated",
                check.acknowledged_events,
                check.accepted_in_answers,
                check.stored_events,
                check.summarized_events,
                check.sessions_stored,
                check.sessions_generated
            );
        }
        anyhow::ensure!(load.failed_requests == 0, "{} requests failed", load.failed_requests);
        anyhow::ensure!(load.rejected_items == 0, "the server rejected {} events as invalid", load.rejected_items);
        anyhow::ensure!(check.holds(), "stored events differ from accepted events");
        if let Some(timeline) = &self.timeline {
            anyhow::ensure!(
                timeline.summary_holds(),
                "the session summary counts {:?}, but {} events ({} errors) and {} spans were sent",
                timeline.summary,
                timeline.product_events,
                timeline.error_events,
                timeline.spans
            );
            anyhow::ensure!(
                timeline.timeline_holds(),
                "the timeline returned {} entries, {} expected",
                timeline.queries.first().map_or(0, |full| full.entries_returned),
                timeline.expected_entries
            );
        }
        Ok(())
    }
}

/// The report as Markdown: a heading, the command, machine and workload, the ingest table with
/// the baselines, the store check and bar, then the timeline table.
pub fn render_markdown(report: &EventsReport) -> String {
    let mut out = String::new();
    let shape = &report.shape;
    let ingest = &report.ingest;
    let total_events = shape.requests as u64 * shape.events_per_request as u64;
    let date = humantime::format_rfc3339_seconds(SystemTime::now());

    let _ = writeln!(
        out,
        "### Product events: {} events/request, {} connections ({date})\n",
        shape.events_per_request, ingest.connections
    );
    let _ = writeln!(out, "```\n{}\n```\n", report.command_line);
    let _ = writeln!(out, "- {}", machine_line(&report.machine, &report.filesystem));
    let type_mix: Vec<String> = {
        let mut by_count: Vec<(&&str, &u64)> = report.events_by_type.iter().collect();
        by_count.sort_by(|left, right| right.1.cmp(left.1));
        by_count
            .into_iter()
            .map(|(event_type, count)| {
                format!("{event_type} {:.1}%", *count as f64 * 100.0 / total_events.max(1) as f64)
            })
            .collect()
    };
    let _ = writeln!(
        out,
        "- Workload: {} requests × {} events = {} events of {} sessions ({:.1} events each, {} signed-in users), \
         64 sessions open at a time so batches mix sessions; {:.1} KiB/request, {:.0} B/event of JSON; each request \
         sent once. Types: {}.",
        grouped(shape.requests as u64),
        grouped(shape.events_per_request as u64),
        grouped(total_events),
        grouped(report.sessions),
        total_events as f64 / report.sessions.max(1) as f64,
        grouped(report.users),
        report.request_bytes as f64 / shape.requests.max(1) as f64 / 1024.0,
        report.request_bytes as f64 / total_events.max(1) as f64,
        type_mix.join(", ")
    );
    let _ = writeln!(
        out,
        "- Server: in-process with the clients (same cores), server defaults (SQLite WAL, group commit ≤ 50,000 \
         items, each answered after an fsync of the WAL)\n"
    );

    let _ = writeln!(
        out,
        "| Phase | Events committed | Wall s | Events/s | × parse-only | p50 ms | p90 ms | p99 ms | max ms | Retried | Failed | CPU cores: process / writer | Peak RSS MiB | DB MiB after |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let reference_rate = report.baselines.first().map_or(1.0, ParseBaseline::events_per_second);
    for baseline in &report.baselines {
        let rate = baseline.events_per_second();
        let _ = writeln!(
            out,
            "| {}, 1 thread | {} | {:.2} | {} | {:.2} | – | – | – | – | – | – | 1.00 / – | – | – |",
            baseline.label,
            grouped(baseline.events),
            baseline.wall.as_secs_f64(),
            grouped(rate as u64),
            rate / reference_rate.max(1e-9),
        );
    }
    let rate = ingest.events_per_second();
    let writer = ingest.cpu.writer_cores.map(|cores| format!("{cores:.2}")).unwrap_or_else(|| "?".to_owned());
    let peak = ingest.peak_rss_bytes.map(mebibytes).unwrap_or_else(|| "?".to_owned());
    let _ = writeln!(
        out,
        "| POST /v1/events × {} conns | {} | {:.2} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {:.2} / {writer} | {peak} | {} |\n",
        ingest.connections,
        grouped(ingest.load.acknowledged_items),
        ingest.load.wall.as_secs_f64(),
        grouped(rate as u64),
        rate / reference_rate.max(1e-9),
        ingest.latency_ms(0.50),
        ingest.latency_ms(0.90),
        ingest.latency_ms(0.99),
        ingest.load.latencies_us.max() as f64 / 1000.0,
        retries_cell(&ingest.load),
        grouped(ingest.load.failed_requests),
        ingest.cpu.process_cores,
        mebibytes(ingest.database_bytes_after),
    );

    let check = &report.store_check;
    let _ = writeln!(
        out,
        "- Store check: {}: {} events acknowledged ({} in the answers' `accepted`); `product_events` gained {} rows, \
         session summaries {} events; {} sessions stored for {} generated.",
        if check.holds() { "OK" } else { "MISMATCH" },
        grouped(check.acknowledged_events),
        grouped(check.accepted_in_answers),
        grouped(check.stored_events),
        grouped(check.summarized_events),
        grouped(check.sessions_stored),
        grouped(check.sessions_generated)
    );
    if let Some(prepare) = report.baselines.iter().find_map(|baseline| baseline.error_events) {
        let _ = writeln!(
            out,
            "- `error` events with a stack trace become grouped error events in the prepare step: {} of them here.",
            grouped(prepare)
        );
    }
    let word = if rate >= BAR_EVENTS_PER_SECOND { "meets" } else { "misses" };
    let _ = writeln!(
        out,
        "- Bar (≥ {} events/s committed): {word} it ({} events/s).",
        grouped(BAR_EVENTS_PER_SECOND as u64),
        grouped(rate as u64)
    );
    let busiest: Vec<String> =
        ingest.cpu.by_thread_cores.iter().take(5).map(|(thread, cores)| format!("{thread} {cores:.2}")).collect();
    let _ = writeln!(out, "- CPU by thread during the ingest phase (cores): {}.", busiest.join(", "));
    if let Some(commits) = &ingest.commits {
        let _ = writeln!(
            out,
            "- Group commits (server `/metrics`): {} commits of {:.0} events on average, {:.1} ms each; the writer \
             thread was inside a commit {:.0}% of the phase and on a CPU {:.0}% of it (time in a commit off the CPU \
             is I/O wait, mostly fsync, or waiting for a core).",
            grouped(commits.commits),
            commits.mean_items(),
            commits.mean_ms(),
            commits.busy.as_secs_f64() * 100.0 / ingest.load.wall.as_secs_f64().max(1e-9),
            ingest.cpu.writer_cores.unwrap_or(0.0) * 100.0
        );
    }
    // tmpfs does not account written bytes: nothing to say then.
    if let Some(written) = ingest.storage_write_bytes.filter(|written| *written > 0) {
        let events = ingest.load.acknowledged_items.max(1) as f64;
        let _ = writeln!(
            out,
            "- Storage writes during the phase: {} MiB ({:.1} KiB per event, WAL and checkpoints); the database holds \
             {:.0} B per event after the run.",
            mebibytes(written),
            written as f64 / events / 1024.0,
            report.database_bytes as f64 / report.total_stored_events.max(1) as f64
        );
    }
    let _ = writeln!(
        out,
        "- Latency is per accepted request (send to answer, which follows the commit). Peak RSS is this process's VmHWM{}: \
         server, clients and the pre-encoded bodies ({} MiB) together.",
        if ingest.peak_rss_is_per_phase { ", reset at the phase start" } else { " over the whole run" },
        mebibytes(report.request_bytes)
    );

    if let Some(timeline) = &report.timeline {
        render_timeline(&mut out, timeline, report.query_runs);
    }
    let _ = writeln!(out, "- Database after the run: {} MiB with WAL.", mebibytes(report.database_bytes));
    out
}

fn render_timeline(out: &mut String, timeline: &TimelineResult, runs: usize) {
    let _ = writeln!(
        out,
        "\nSession timeline: one session (`{}`) of {} entries — {} product events, {} backend SERVER spans carrying its \
         `session.id` over OTLP/HTTP, and the {} errors grouped from its `error` events — sent in {:.2} s into the \
         store above ({} product events, {} sessions, {} MiB). `GET /api/v1/projects/default/sessions/{{id}}` with \
         the read key, once untimed, then {runs} times one after the other (send to last byte):\n",
        timeline.session_id,
        grouped(timeline.expected_entries),
        grouped(timeline.product_events),
        grouped(timeline.spans),
        grouped(timeline.error_events),
        timeline.send_wall.as_secs_f64(),
        grouped(timeline.stored_events_when_timed),
        grouped(timeline.sessions_when_timed),
        mebibytes(timeline.database_bytes_when_timed),
    );
    let _ = writeln!(out, "| Query | Entries | Next page | Answer KiB | p50 ms | p99 ms | max ms |");
    let _ = writeln!(out, "|---|--:|---|--:|--:|--:|--:|");
    for query in &timeline.queries {
        let shown_query = if query.query.is_empty() { String::new() } else { format!(" `?{}`", query.query) };
        let _ = writeln!(
            out,
            "| {}{shown_query} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} |",
            query.label,
            grouped(query.entries_returned as u64),
            if query.has_next_page { "yes" } else { "no" },
            query.response_bytes as f64 / 1024.0,
            query.latency_ms(0.50),
            query.latency_ms(0.99),
            query.latencies_us.max() as f64 / 1000.0,
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- Timeline check: {}: the summary counts {} events, {} requests, {} errors; the whole-session page lists {} of {} entries.",
        if timeline.summary_holds() && timeline.timeline_holds() { "OK" } else { "MISMATCH" },
        grouped(timeline.summary.events),
        grouped(timeline.summary.requests),
        grouped(timeline.summary.errors),
        grouped(timeline.queries.first().map_or(0, |full| full.entries_returned as u64)),
        grouped(timeline.expected_entries)
    );
    let full_p99 = timeline.queries.first().map_or(0.0, |full| full.latency_ms(0.99));
    let _ = writeln!(
        out,
        "- Bar (timeline of a {}-entry session, p99 < {BAR_TIMELINE_MS:.0} ms): {} it (p99 {full_p99:.1} ms).",
        grouped(timeline.expected_entries),
        if timeline.meets_bar() { "meets" } else { "misses" }
    );
}
