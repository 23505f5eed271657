//! `sightline bench dashboard` end to end with the real binary on a tiny workload: it ingests,
//! signs in through the real form, gets every page with 200 and reports each; a second run on
//! the same `--data-dir` with `--skip-ingest` times the same store again (the 10M-span store is
//! filled once and measured many times).

use std::process::Command;

fn bench(extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["bench", "dashboard", "--requests", "6", "--spans-per-request", "32", "--spans-per-trace", "4"])
        .args(["--connections", "2", "--runs", "3"])
        .args(extra)
        .env("SIGHTLINE_LOG", "warn")
        .output()
        .expect("running sightline bench dashboard");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    let diagnostics = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{report}\n{diagnostics}");
    report
}

fn page_rows(report: &str) -> Vec<String> {
    report.lines().filter(|line| line.starts_with("| `/")).map(str::to_owned).collect()
}

#[test]
fn tiny_dashboard_benchmark_times_every_page_and_reuses_its_store() {
    let data_dir = tempfile::tempdir().unwrap();
    let data_arg = data_dir.path().to_str().unwrap();
    let first = bench(&["--data-dir", data_arg]);
    assert!(first.contains("Spans stored: 192"), "{first}");
    let rows = page_rows(&first);
    for expected in ["| `/` |", "| `/p/default/issues` |", "| `/p/default/traces` |", "| `/p/default/traces/"] {
        assert!(rows.iter().any(|row| row.starts_with(expected)), "no row {expected}: {first}");
    }
    for row in &rows {
        let cells: Vec<f64> = row.split('|').skip(2).filter_map(|cell| cell.trim().parse().ok()).collect();
        assert_eq!(cells.len(), 4, "p50, p90, max, KiB: {row}");
        assert!(cells[0] <= cells[1] && cells[1] <= cells[2] && cells[3] > 0.5, "ordered timings, a real page: {row}");
    }
    assert!(first.contains("Slowest single render:"), "{first}");

    let second = bench(&["--data-dir", data_arg, "--skip-ingest"]);
    assert!(second.contains("Spans stored: 192"), "nothing new was ingested: {second}");
    assert_eq!(page_rows(&second).len(), rows.len(), "the same pages: {second}");
}
