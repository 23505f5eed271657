//! Helpers for the logs and metrics dashboard tests: OTLP/HTTP JSON log records and gauge
//! points sent to the real receiver, and a small Server-Sent Events reader over reqwest.

#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::TestServer;

/// One log record to send: severity number and text, body, service, optional trace and span
/// ids (hex) and string attributes.
pub struct TestLog<'a> {
    pub severity_number: i32,
    pub severity_text: &'a str,
    pub body: &'a str,
    pub service: &'a str,
    pub trace_id: Option<&'a str>,
    pub span_id: Option<&'a str>,
    pub attributes: &'a [(&'a str, &'a str)],
}

impl<'a> TestLog<'a> {
    /// An INFO record of `service` without trace or attributes.
    pub fn info(service: &'a str, body: &'a str) -> Self {
        Self {
            severity_number: 9,
            severity_text: "INFO",
            body,
            service,
            trace_id: None,
            span_id: None,
            attributes: &[],
        }
    }

    /// An ERROR record of `service`.
    pub fn error(service: &'a str, body: &'a str) -> Self {
        Self { severity_number: 17, severity_text: "ERROR", ..Self::info(service, body) }
    }
}

fn now_nanos() -> String {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos().to_string()
}

fn key_values(pairs: &[(&str, &str)]) -> Value {
    Value::Array(pairs.iter().map(|(key, value)| json!({"key": key, "value": {"stringValue": value}})).collect())
}

/// Sends `logs` in one OTLP/HTTP JSON export (one resource per record, in order) with
/// `ingest_key`; requires 200.
pub async fn send_logs(server: &TestServer, ingest_key: &str, logs: &[TestLog<'_>]) {
    let resource_logs: Vec<Value> = logs
        .iter()
        .map(|log| {
            let mut record = json!({
                "timeUnixNano": now_nanos(),
                "severityNumber": log.severity_number,
                "severityText": log.severity_text,
                "body": {"stringValue": log.body},
                "attributes": key_values(log.attributes),
            });
            if let Some(trace_id) = log.trace_id {
                record["traceId"] = json!(trace_id);
            }
            if let Some(span_id) = log.span_id {
                record["spanId"] = json!(span_id);
            }
            json!({
                "resource": {"attributes": key_values(&[("service.name", log.service)])},
                "scopeLogs": [{"scope": {"name": "dashboard-test"}, "logRecords": [record]}],
            })
        })
        .collect();
    let response = server
        .http
        .post(format!("{}/v1/logs", server.http_base()))
        .bearer_auth(ingest_key)
        .json(&json!({"resourceLogs": resource_logs}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{}", response.text().await.unwrap());
}

/// Sends one point per `(attribute value, value)` of gauge `name` (unit `{message}`), the
/// attribute named `key`, over OTLP/HTTP JSON.
pub async fn send_gauge(server: &TestServer, name: &str, key: &str, points: &[(&str, f64)]) {
    let data_points: Vec<Value> = points
        .iter()
        .map(|(attribute, value)| {
            json!({"timeUnixNano": now_nanos(), "asDouble": value, "attributes": key_values(&[(key, attribute)])})
        })
        .collect();
    let body = json!({"resourceMetrics": [{
        "resource": {"attributes": key_values(&[("service.name", "mailer")])},
        "scopeMetrics": [{"scope": {"name": "dashboard-test"}, "metrics": [{
            "name": name, "unit": "{message}", "description": "Messages waiting to be sent",
            "gauge": {"dataPoints": data_points},
        }]}],
    }]});
    let response = server
        .http
        .post(format!("{}/v1/metrics", server.http_base()))
        .bearer_auth(&server.ingest_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{}", response.text().await.unwrap());
}

/// Reads `event:` / `data:` blocks from a `text/event-stream` response.
pub struct EventReader {
    response: reqwest::Response,
    buffer: String,
}

impl EventReader {
    /// Wraps a 200 `text/event-stream` response.
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Self { response, buffer: String::new() }
    }

    /// The next event (name, data) that is not a keep-alive comment, or `None` when `wait`
    /// passes first or the stream ends.
    pub async fn next_event(&mut self, wait: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                    }
                }
                if !data.is_empty() {
                    return Some((name, data.join("\n")));
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}
