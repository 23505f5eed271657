//! `sightline bench events` end to end with the real binary on a tiny workload: the ingest phase
//! and its store check pass, the long session's timeline lists every entry, and the report is
//! Markdown with every phase.

use std::process::Command;

#[test]
fn tiny_events_benchmark_reports_every_phase_and_passing_checks() {
    let output = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args([
            "bench",
            "events",
            "--requests",
            "6",
            "--events-per-request",
            "50",
            "--connections",
            "2",
            "--timeline-entries",
            "120",
            "--query-runs",
            "3",
        ])
        .env("SIGHTLINE_LOG", "warn")
        .output()
        .expect("running sightline bench events");
    let report = String::from_utf8_lossy(&output.stdout);
    let diagnostics = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{report}\n{diagnostics}");
    assert!(report.contains("| Parse only (parse_batch), 1 thread | 300 |"), "{report}");
    assert!(report.contains("| Parse + prepare_events, 1 thread | 300 |"), "{report}");
    assert!(report.contains("| POST /v1/events × 2 conns | 300 |"), "{report}");
    assert!(
        report.contains("Store check: OK: 300 events acknowledged (300 in the answers' `accepted`); `product_events` gained 300 rows, session summaries 300 events"),
        "{report}"
    );
    assert!(report.contains("| Whole session in one page `?limit=120` | 120 | no |"), "{report}");
    assert!(report.contains("Timeline check: OK"), "{report}");
}

#[test]
fn batches_over_the_receiver_limit_are_refused_before_anything_starts() {
    let output = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["bench", "events", "--events-per-request", "1001"])
        .output()
        .expect("running sightline bench events");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--events-per-request must be at most 1000"));
}
