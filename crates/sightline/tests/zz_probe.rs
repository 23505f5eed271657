//! Durability with the real binary: data acknowledged before a SIGKILL is there after a
//! restart, and SIGTERM drains in-flight requests and exits cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::Value;

struct Binary {
    child: Child,
    http: String,
    ingest_key: Option<String>,
    read_key: Option<String>,
}

/// Starts `sightline serve` on ephemeral ports and reads its stdout until it listens.
fn start_binary(data_dir: &std::path::Path) -> Binary {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("SIGHTLINE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut ingest_key, mut read_key) = (None, None);
    loop {
        let line = lines.next().expect("the server prints a listening line").unwrap();
        if let Some(key) = line.trim().strip_prefix("ingest key: ") {
            ingest_key = Some(key.to_owned());
        }
        if let Some(key) = line.trim().strip_prefix("read key:") {
            read_key = Some(key.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("Sightline listening: OTLP/HTTP and API on ") {
            let http = rest.split(',').next().unwrap().to_owned();
            return Binary { child, http, ingest_key, read_key };
        }
    }
}

fn spans_request(trace_byte: u8) -> Vec<u8> {
    // Recent timestamps: the retention job (30 days by default) runs at every start.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let spans = (1..=20u8)
        .map(|index| Span {
            trace_id: vec![trace_byte; 16],
            span_id: vec![index; 8],
            parent_span_id: if index == 1 { vec![] } else { vec![1; 8] },
            name: format!("span-{index}"),
            start_time_unix_nano: now,
            end_time_unix_nano: now + 1_000_000_000,
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans { scope_spans: vec![ScopeSpans { spans, ..Default::default() }], ..Default::default() }],
    }
    .encode_to_vec()
}

fn send(client: &reqwest::blocking::Client, binary: &Binary, key: &str, trace_byte: u8) -> reqwest::Result<u16> {
    client
        .post(format!("{}/v1/traces", binary.http))
        .header("content-type", "application/x-protobuf")
        .bearer_auth(key)
        .body(spans_request(trace_byte))
        .send()
        .map(|response| response.status().as_u16())
}

fn span_count(client: &reqwest::blocking::Client, binary: &Binary, read_key: &str, trace_byte: u8) -> u64 {
    let url = format!("{}/api/v1/projects/default/traces/{}", binary.http, format!("{trace_byte:02x}").repeat(16));
    let response = client.get(url).bearer_auth(read_key).send().unwrap();
    let status = response.status();
    let body: Value = response.json().unwrap();
    body["span_count"].as_u64().unwrap_or_else(|| panic!("trace {trace_byte}: {status} {body}"))
}

#[test]
fn zz_probe() {
    let data_dir = tempfile::tempdir().unwrap();
    let client = reqwest::blocking::Client::new();
    let mut first = start_binary(data_dir.path());
    let ingest_key = first.ingest_key.clone().unwrap();
    let read_key = first.read_key.clone().unwrap();
    for trace_byte in 1..=4u8 {
        assert_eq!(send(&client, &first, &ingest_key, trace_byte).unwrap(), 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    for trace_byte in 1..=4u8 {
        let url = format!("{}/api/v1/projects/default/traces/{}", first.http, format!("{trace_byte:02x}").repeat(16));
        let response = client.get(url).bearer_auth(&read_key).send().unwrap();
        eprintln!("PROBE {trace_byte} {}", response.text().unwrap().chars().take(150).collect::<String>());
    }
    let search = client.get(format!("{}/api/v1/projects/default/traces", first.http)).bearer_auth(&read_key).send().unwrap();
    eprintln!("PROBE search {}", search.text().unwrap());
    std::process::Command::new("sqlite3").arg(data_dir.path().join("sightline.db")).arg("select hex(trace_id), first_span_rowid, last_span_rowid from trace_span_ranges; select count(*), hex(trace_id) from spans group by trace_id;").status().ok();
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let second = start_binary(data_dir.path());
    for trace_byte in 1..=4u8 {
        let url = format!("{}/api/v1/projects/default/traces/{}", second.http, format!("{trace_byte:02x}").repeat(16));
        let response = client.get(url).bearer_auth(&read_key).send().unwrap();
        eprintln!("PROBE after {trace_byte} {}", response.text().unwrap().chars().take(150).collect::<String>());
    }
    std::process::Command::new("sqlite3").arg(data_dir.path().join("sightline.db")).arg("select 'R', hex(trace_id), first_span_rowid, last_span_rowid from trace_span_ranges; select count(*), hex(trace_id) from spans group by trace_id;").status().ok();
}
