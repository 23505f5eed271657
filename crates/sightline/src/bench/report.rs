//! The benchmark's figures and their Markdown rendering (pasted into BENCHMARKS.md as is).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::batches::WorkloadShape;
use super::ingest::Protocol;
use super::load::LoadOutcome;
use super::process::{CpuUse, MachineInfo};

/// The issue's bar: sustained spans/s into SQLite on the 2-core machine...
const BAR_SPANS_PER_SECOND: f64 = 50_000.0;
/// ...with p99 request latency below this.
const BAR_P99_MS: f64 = 100.0;

/// Decode-only baseline: protobuf decode plus OTLP → model conversion on one thread.
pub struct Baseline {
    /// Spans converted.
    pub spans: u64,
    /// Time taken.
    pub wall: Duration,
    /// Protobuf bytes decoded.
    pub bytes: u64,
    /// Requests decoded.
    pub requests: u64,
}

impl Baseline {
    fn spans_per_second(&self) -> f64 {
        self.spans as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// One protocol's timed phase.
pub struct PhaseResult {
    /// What was loaded.
    pub protocol: Protocol,
    /// Concurrent connections.
    pub connections: usize,
    /// Client-side figures.
    pub load: LoadOutcome,
    /// CPU used during the phase.
    pub cpu: CpuUse,
    /// VmHWM at the end of the phase.
    pub peak_rss_bytes: Option<u64>,
    /// True when the high-water mark was reset at the phase start (else it is the run's peak).
    pub peak_rss_is_per_phase: bool,
    /// Spans the store gained during the phase.
    pub stored_spans: u64,
    /// Database with WAL after the phase, bytes.
    pub database_bytes_after: u64,
}

impl PhaseResult {
    fn spans_per_second(&self) -> f64 {
        self.load.acknowledged_items as f64 / self.load.wall.as_secs_f64().max(1e-9)
    }

    fn latency_ms(&self, quantile: f64) -> f64 {
        self.load.latencies_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn meets_bar(&self) -> bool {
        self.spans_per_second() >= BAR_SPANS_PER_SECOND && self.latency_ms(0.99) < BAR_P99_MS
    }
}

/// Acknowledged spans against what the store holds after the server stopped.
pub struct StoreCheck {
    /// Spans the clients were told are committed.
    pub acknowledged_spans: u64,
    /// Rows the `spans` table gained.
    pub stored_spans: u64,
    /// What the trace summaries' span counts gained.
    pub summarized_spans: u64,
}

impl StoreCheck {
    fn holds(&self) -> bool {
        self.stored_spans == self.acknowledged_spans && self.summarized_spans == self.acknowledged_spans
    }
}

/// Everything one run measured.
pub struct Report {
    /// The command reproducing the run.
    pub command_line: String,
    /// Where it ran.
    pub machine: MachineInfo,
    /// File system of the data directory.
    pub filesystem: String,
    /// Generated workload.
    pub shape: WorkloadShape,
    /// Connections per phase.
    pub connections: usize,
    /// Decode-only baseline.
    pub baseline: Baseline,
    /// Timed phases in order.
    pub phases: Vec<PhaseResult>,
    /// Database with WAL after the server stopped, bytes.
    pub database_bytes: u64,
    /// Acknowledged vs stored.
    pub store_check: StoreCheck,
}

impl Report {
    /// Ok when every request succeeded and the store holds exactly the acknowledged spans.
    pub fn verdict(&self) -> anyhow::Result<()> {
        let failed: u64 = self.phases.iter().map(|phase| phase.load.failed_requests).sum();
        let rejected: u64 = self.phases.iter().map(|phase| phase.load.rejected_items).sum();
        let check = &self.store_check;
        if !check.holds() {
            eprintln!(
                "WARNING: the store holds {} spans ({} in trace summaries) but {} were acknowledged",
                check.stored_spans, check.summarized_spans, check.acknowledged_spans
            );
        }
        for phase in &self.phases {
            for example in &phase.load.failure_examples {
                eprintln!("WARNING: {} request failed: {example}", phase.protocol.label());
            }
        }
        anyhow::ensure!(check.holds(), "stored spans differ from acknowledged spans");
        anyhow::ensure!(failed == 0, "{failed} requests failed");
        anyhow::ensure!(rejected == 0, "the server rejected {rejected} spans as invalid");
        Ok(())
    }
}

/// Digits grouped by thousands: 204800 → "204,800".
pub(super) fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Bytes as MiB with one decimal.
pub(super) fn mebibytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Retried refusals with their reasons, for a table cell.
pub(super) fn retries_cell(load: &LoadOutcome) -> String {
    if load.retries.is_empty() {
        return "0".to_owned();
    }
    let reasons: Vec<String> = load.retries.iter().map(|(reason, count)| format!("{reason}: {count}")).collect();
    format!("{} ({})", grouped(load.total_retries()), reasons.join(", "))
}

/// "Machine: 2 × CPU (nproc), 23.5 GiB RAM, Linux 6.18; data directory on ext4".
pub(super) fn machine_line(machine: &MachineInfo, filesystem: &str) -> String {
    let memory = machine
        .memory_bytes
        .map(|bytes| format!("{:.1} GiB RAM", bytes as f64 / (1u64 << 30) as f64))
        .unwrap_or_default();
    format!(
        "Machine: {} × {} (nproc), {memory}, Linux {}; data directory on {filesystem}",
        machine.cores, machine.cpu_model, machine.kernel
    )
}

/// The report as Markdown: a heading, the command, machine and workload, one table with the
/// baseline and each phase, then the store check, the bar and per-thread CPU.
pub fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    let shape = &report.shape;
    let baseline = &report.baseline;
    let baseline_rate = baseline.spans_per_second();
    let spans_per_phase = shape.requests as u64 * shape.spans_per_request as u64;
    let bytes_per_span = baseline.bytes as f64 / baseline.spans.max(1) as f64;
    let bytes_per_request = baseline.bytes as f64 / baseline.requests.max(1) as f64;
    let date = humantime::format_rfc3339_seconds(SystemTime::now());

    let _ = writeln!(
        out,
        "### Ingest: {} spans/request, {} connections ({date})\n",
        shape.spans_per_request, report.connections
    );
    let _ = writeln!(out, "```\n{}\n```\n", report.command_line);
    let _ = writeln!(out, "- {}", machine_line(&report.machine, &report.filesystem));
    let _ = writeln!(
        out,
        "- Workload per phase: {} requests × {} spans = {} spans in traces of {}; {:.1} KiB/request, {:.0} B/span protobuf; \
         one resource per request, 6–7 attributes per span, ~1% errors; each request sent once",
        grouped(shape.requests as u64),
        grouped(shape.spans_per_request as u64),
        grouped(spans_per_phase),
        shape.spans_per_trace,
        bytes_per_request / 1024.0,
        bytes_per_span
    );
    let _ = writeln!(
        out,
        "- Server: in-process with the clients (same 2 cores), server defaults (SQLite WAL, group commit, each answered after an fsync of the WAL ≤ 50,000 items)\n"
    );

    let _ = writeln!(
        out,
        "| Phase | Spans committed | Wall s | Spans/s | × decode-only | p50 ms | p90 ms | p99 ms | max ms | Retried | Failed | CPU cores: process / writer | Peak RSS MiB | DB MiB after |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let _ = writeln!(
        out,
        "| Decode + convert only, 1 thread | {} | {:.2} | {} | 1.00 | – | – | – | – | – | – | 1.00 / – | – | – |",
        grouped(baseline.spans),
        baseline.wall.as_secs_f64(),
        grouped(baseline_rate as u64),
    );
    for phase in &report.phases {
        let rate = phase.spans_per_second();
        let writer = phase.cpu.writer_cores.map(|cores| format!("{cores:.2}")).unwrap_or_else(|| "?".to_owned());
        let peak = phase.peak_rss_bytes.map(mebibytes).unwrap_or_else(|| "?".to_owned());
        let _ = writeln!(
            out,
            "| {} × {} conns | {} | {:.2} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {:.2} / {writer} | {peak} | {} |",
            phase.protocol.label(),
            phase.connections,
            grouped(phase.load.acknowledged_items),
            phase.load.wall.as_secs_f64(),
            grouped(rate as u64),
            rate / baseline_rate.max(1e-9),
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
    let _ = writeln!(out);

    let check = &report.store_check;
    let check_word = if check.holds() { "OK" } else { "MISMATCH" };
    let _ = writeln!(
        out,
        "- Store check: {check_word}: {} spans stored, {} in trace summaries, {} acknowledged.",
        grouped(check.stored_spans),
        grouped(check.summarized_spans),
        grouped(check.acknowledged_spans)
    );
    for phase in &report.phases {
        let _ = writeln!(
            out,
            "  - {}: the store gained {} spans for {} acknowledged.",
            phase.protocol.label(),
            grouped(phase.stored_spans),
            grouped(phase.load.acknowledged_items)
        );
    }
    let _ = writeln!(
        out,
        "- Database after the run: {} MiB with WAL ({:.0} B per stored span, indexes and summaries included).",
        mebibytes(report.database_bytes),
        report.database_bytes as f64 / check.stored_spans.max(1) as f64
    );
    let verdicts: Vec<String> = report
        .phases
        .iter()
        .map(|phase| {
            let word = if phase.meets_bar() { "meets" } else { "misses" };
            format!(
                "{} {word} it ({} spans/s, p99 {:.1} ms)",
                phase.protocol.label(),
                grouped(phase.spans_per_second() as u64),
                phase.latency_ms(0.99)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "- Bar (≥ {} spans/s with p99 < {BAR_P99_MS:.0} ms): {}.",
        grouped(BAR_SPANS_PER_SECOND as u64),
        verdicts.join("; ")
    );
    for phase in &report.phases {
        let busiest: Vec<String> =
            phase.cpu.by_thread_cores.iter().take(4).map(|(thread, cores)| format!("{thread} {cores:.2}")).collect();
        let _ = writeln!(out, "- CPU by thread during {} (cores): {}.", phase.protocol.label(), busiest.join(", "));
    }
    if report.phases.len() > 1 {
        let _ = writeln!(
            out,
            "- Phases share one store, in table order: a later phase inserts into a database that already holds the \
             earlier phases' spans (run `--protocol grpc` alone to compare protocols on an empty store)."
        );
    }
    let per_phase = report.phases.iter().all(|phase| phase.peak_rss_is_per_phase);
    let _ = writeln!(
        out,
        "- Latency is per accepted request (send to answer, which follows the commit). Peak RSS is this process's VmHWM{}: \
         server, clients and the phase's pre-encoded bodies ({} MiB) together.",
        if per_phase { ", reset at each phase start" } else { " over the whole run" },
        mebibytes(baseline.bytes)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(204_800), "204,800");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
