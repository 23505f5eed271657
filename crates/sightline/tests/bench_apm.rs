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
        ])
        .env("SIGHTLINE_LOG", "warn")
        .output()
        .expect("running sightline bench apm");
    let report = String::from_utf8_lossy(&output.stdout);
    let diagnostics = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{report}\n{diagnostics}");
    assert!(report.contains("| spans only (rollups off) | 192 |"), "{report}");
    assert!(report.contains("| spans + endpoint rollups | 192 |"), "{report}");
    assert!(report.contains("Rollup ingest cost:"), "{report}");
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
