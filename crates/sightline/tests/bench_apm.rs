//! `sightline bench apm` end to end with the real binary on a tiny workload: both ingest phases
//! (rollups off, then on) commit every span, the performance query is timed before and after
//! coarsening, and the jobs list counts every producer and consumer span the workload has.

use std::process::Command;

#[test]
fn tiny_apm_benchmark_reports_both_phases_and_the_queries() {
    let output = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args([
            "bench",
            "apm",
            "--requests",
            "6",
            "--spans-per-request",
            "32",
            "--spans-per-trace",
            "4",
            "--connections",
            "2",
            "--query-runs",
            "2",
            "--rounds",
            "2",
        ])
        .env("SIGHTLINE_LOG", "warn")
        .output()
        .expect("running sightline bench apm");
    let report = String::from_utf8_lossy(&output.stdout);
    let diagnostics = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{report}\n{diagnostics}");
    // Two rounds, in alternating order, each phase committing every span.
    for row in [
        "| 1 | spans only (rollups off) | 192 |",
        "| 1 | spans + rollups (endpoints, queries, jobs, service map) | 192 |",
    ] {
        assert!(report.contains(row), "{report}");
    }
    let phase_rows: Vec<&str> = report.lines().filter(|line| line.contains(" | 192 | ")).collect();
    assert_eq!(phase_rows.len(), 4, "{report}");
    assert!(
        phase_rows[2].starts_with("| 2 | spans + rollups (endpoints, queries, jobs, service map)"),
        "round 2 starts with rollups on: {report}"
    );
    let per_round =
        report.lines().find(|line| line.starts_with("Rollup ingest cost per round: ")).expect("per-round costs");
    assert_eq!(per_round.matches('%').count(), 2, "{per_round}");
    assert!(report.contains("Rollup ingest cost: "), "{report}");
    let query_rows: Vec<&str> = report.lines().filter(|line| line.starts_with("| 7d, ")).collect();
    assert_eq!(query_rows.len(), 2, "{report}");
    for row in query_rows {
        let requests: u64 = row.split('|').nth(2).and_then(|cell| cell.trim().parse().ok()).expect("a count");
        assert!(requests > 0, "the performance page counts the checkout requests: {row}");
    }
    let jobs_row = report.lines().find(|line| line.starts_with("| every queue, 7d")).expect("a jobs row");
    let spans: u64 = jobs_row.split('|').nth(2).and_then(|cell| cell.trim().parse().ok()).expect("a count");
    assert_eq!(spans, 6 * 32 / 4 * 2, "one producer and one consumer in each of the 48 traces: {jobs_row}");
}
