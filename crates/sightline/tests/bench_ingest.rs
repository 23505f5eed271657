//! `sightline bench ingest` end to end with the real binary on a tiny workload: both
//! protocols run, the store check passes and the report is Markdown with every phase.

use std::process::Command;

#[test]
fn tiny_ingest_benchmark_reports_every_phase_and_a_passing_store_check() {
    let output = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args([
            "bench",
            "ingest",
            "--requests",
            "6",
            "--spans-per-request",
            "20",
            "--spans-per-trace",
            "4",
            "--connections",
            "2",
        ])
        .env("SIGHTLINE_LOG", "warn")
        .output()
        .expect("running sightline bench ingest");
    let report = String::from_utf8_lossy(&output.stdout);
    let diagnostics = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{report}\n{diagnostics}");
    assert!(report.contains("| Decode + convert only, 1 thread | 120 |"), "{report}");
    assert!(report.contains("| OTLP/HTTP protobuf × 2 conns | 120 |"), "{report}");
    assert!(report.contains("| OTLP/gRPC × 2 conns | 120 |"), "{report}");
    assert!(report.contains("Store check: OK: 240 spans stored, 240 in trace summaries, 240 acknowledged"), "{report}");
}

#[test]
fn zero_connections_is_refused_before_anything_starts() {
    let output = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["bench", "ingest", "--connections", "0"])
        .output()
        .expect("running sightline bench ingest");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--connections must be at least 1"));
}

#[test]
fn tiny_ingest_benchmark_with_forwarding_delivers_every_acknowledged_span_to_the_sink() {
    let output = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args([
            "bench",
            "ingest",
            "--protocol",
            "grpc",
            "--requests",
            "6",
            "--spans-per-request",
            "20",
            "--connections",
            "2",
            "--forward-otlp",
        ])
        .env("SIGHTLINE_LOG", "warn")
        .output()
        .expect("running sightline bench ingest --forward-otlp");
    let report = String::from_utf8_lossy(&output.stdout);
    let diagnostics = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{report}\n{diagnostics}");
    assert!(report.contains("--forward-otlp"), "the command line names the flag: {report}");
    assert!(
        report.contains("OTLP forwarding to a loopback OTLP/HTTP sink: 120 of 120 acknowledged spans delivered"),
        "{report}"
    );
}
