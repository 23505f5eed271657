//! `sightline bench errors` end to end with the real binary on a tiny workload: both log phases
//! run, every bug becomes one issue holding its events, the fill reaches the asked number of
//! issues and every issue list query is timed.

use std::process::Command;

#[test]
fn tiny_errors_benchmark_groups_every_bug_and_times_the_issue_queries() {
    let output = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args([
            "bench",
            "errors",
            "--requests",
            "4",
            "--records-per-request",
            "30",
            "--bugs",
            "12",
            "--connections",
            "2",
            "--issues",
            "150",
            "--query-runs",
            "2",
        ])
        .env("SIGHTLINE_LOG", "warn")
        .output()
        .expect("running sightline bench errors");
    let report = String::from_utf8_lossy(&output.stdout);
    let diagnostics = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{report}\n{diagnostics}");
    assert!(report.contains("| Decode + prepare only, plain logs, 1 thread | 120 | 0 |"), "{report}");
    assert!(report.contains("| Decode + prepare only, error logs, 1 thread | 120 | 120 |"), "{report}");
    assert!(report.contains("| OTLP/HTTP plain logs × 2 conns | 120 | 0 |"), "{report}");
    assert!(report.contains("| OTLP/HTTP error logs × 2 conns | 120 | 120 |"), "{report}");
    assert!(report.contains("Cost per error event over a plain log"), "{report}");
    assert!(report.contains("Grouping check (through the issues API): OK"), "{report}");
    assert!(report.contains("their event counts grew by 120 for 120 events sent; per-issue counts equal"), "{report}");
    assert!(report.contains("#### Issue list with 150 issues"), "{report}");
    assert!(report.contains("- Fill: OK:"), "{report}");
    for query in [
        "`status=unresolved`",
        "`status=unresolved&sort=count`",
        "`status=unresolved&sort=users`",
        "`status=unresolved&service=checkout`",
        "`status=unresolved&q=timeout`",
        "`status=unresolved&environment=production&level=fatal`",
        "`status=unresolved&cursor=",
    ] {
        assert!(report.contains(query), "{query} missing:\n{report}");
    }
}

#[test]
fn zero_bugs_is_refused_before_anything_starts() {
    let output = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["bench", "errors", "--bugs", "0"])
        .output()
        .expect("running sightline bench errors");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--bugs must be at least 1"));
}
