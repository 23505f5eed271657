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
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
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
fn acknowledged_data_survives_sigkill() {
    let data_dir = tempfile::tempdir().unwrap();
    let client = reqwest::blocking::Client::new();
    let mut first = start_binary(data_dir.path());
    let ingest_key = first.ingest_key.clone().expect("first start prints the ingest key");
    let read_key = first.read_key.clone().expect("first start prints the read key");
    for trace_byte in 1..=10u8 {
        assert_eq!(send(&client, &first, &ingest_key, trace_byte).unwrap(), 200);
    }
    first.child.kill().unwrap(); // SIGKILL: no shutdown path runs.
    first.child.wait().unwrap();

    let mut second = start_binary(data_dir.path());
    assert!(second.ingest_key.is_none(), "a restart does not create a new project");
    for trace_byte in 1..=10u8 {
        assert_eq!(span_count(&client, &second, &read_key, trace_byte), 20, "trace {trace_byte} after SIGKILL");
    }
    second.child.kill().unwrap();
    second.child.wait().unwrap();
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_cleanly() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut binary = start_binary(data_dir.path());
    let ingest_key = binary.ingest_key.clone().unwrap();
    let read_key = binary.read_key.clone().unwrap();
    let url = binary.http.clone();

    // Senders keep posting while SIGTERM arrives; every request answered 200 must be stored.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..4u8)
        .map(|sender| {
            let acknowledged = acknowledged.clone();
            let key = ingest_key.clone();
            let http = url.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let binary =
                    Binary { child: Command::new("true").spawn().unwrap(), http, ingest_key: None, read_key: None };
                for round in 0..25u8 {
                    let trace_byte = sender * 25 + round + 1;
                    match send(&client, &binary, &key, trace_byte) {
                        Ok(200) => acknowledged.lock().unwrap().push(trace_byte),
                        Ok(_) | Err(_) => break,
                    }
                }
            })
        })
        .collect();
    // Signal once some requests were acknowledged (bounded wait on progress, not on time).
    for _ in 0..1_000_000 {
        if acknowledged.lock().unwrap().len() >= 8 {
            break;
        }
        std::thread::yield_now();
    }
    let status = Command::new("kill").args(["-TERM", &binary.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = binary.child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    for sender in senders {
        sender.join().unwrap();
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 8);
    let client = reqwest::blocking::Client::new();
    let mut restarted = start_binary(data_dir.path());
    for trace_byte in acknowledged {
        assert_eq!(
            span_count(&client, &restarted, &read_key, trace_byte),
            20,
            "acknowledged trace {trace_byte} is stored"
        );
    }
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}
