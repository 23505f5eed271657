//! The `/v1/events` client side of the product events benchmark: one reqwest client (so one
//! keep-alive connection) per simulated relay, POSTing pre-encoded JSON batches the way the
//! ProductGraph clients do (`content-type: application/json`, `X-API-Key`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use crate::bench::load::{Attempt, ExportSender};

/// A slower answer than this is a failure worth seeing (the OTLP exporters' default timeout).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One `/v1/events` connection.
pub struct EventsSender {
    client: reqwest::Client,
    url: String,
    ingest_key: String,
    /// Sum of the `accepted` counts of every 202 answer, shared by the connections of a phase.
    accepted: Arc<AtomicU64>,
}

impl EventsSender {
    /// Builds a client for the server at `http_addr` and opens its connection (a `/health`
    /// request), so connection set-up stays out of the timed phase. Each 202 answer's `accepted`
    /// is added to `accepted`.
    pub async fn connect(http_addr: SocketAddr, ingest_key: &str, accepted: Arc<AtomicU64>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .build()
            .context("building the HTTP client")?;
        let health = format!("http://{http_addr}/health");
        client
            .get(&health)
            .send()
            .await
            .and_then(|response| response.error_for_status())
            .with_context(|| format!("GET {health}"))?;
        Ok(Self { client, url: format!("http://{http_addr}/v1/events"), ingest_key: ingest_key.to_owned(), accepted })
    }

    /// `count` connections sharing one `accepted` counter.
    pub async fn connect_many(
        http_addr: SocketAddr,
        ingest_key: &str,
        count: usize,
        accepted: &Arc<AtomicU64>,
    ) -> anyhow::Result<Vec<Self>> {
        let mut senders = Vec::with_capacity(count);
        for _ in 0..count {
            senders.push(Self::connect(http_addr, ingest_key, accepted.clone()).await?);
        }
        Ok(senders)
    }
}

/// `(accepted, rejected)` of a 202 answer `{"accepted", "rejected", "errors"}`.
fn counts(answer: &[u8]) -> Option<(u64, u64)> {
    let parsed: Value = serde_json::from_slice(answer).ok()?;
    Some((parsed.get("accepted")?.as_u64()?, parsed.get("rejected")?.as_u64()?))
}

impl ExportSender for EventsSender {
    async fn send(&mut self, body: Bytes) -> Attempt {
        let sent = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header("x-api-key", &self.ingest_key)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Attempt::Failed { reason: format!("POST /v1/events: {error}") },
        };
        let status = response.status().as_u16();
        // Reading the whole answer lets the connection be reused for the next request.
        let answer = response.bytes().await.unwrap_or_default();
        match status {
            202 => match counts(&answer) {
                Some((accepted, rejected)) => {
                    self.accepted.fetch_add(accepted, Ordering::Relaxed);
                    Attempt::Accepted { rejected_items: rejected }
                }
                None => Attempt::Failed {
                    reason: format!(
                        "HTTP 202 without counts: {}",
                        String::from_utf8_lossy(&answer[..answer.len().min(200)])
                    ),
                },
            },
            // The receiver refuses overload with 429 and a failed commit with 503, both with
            // Retry-After, as the OTLP receivers do.
            429 | 502 | 503 | 504 => Attempt::Retryable { reason: format!("HTTP {status}") },
            _ => Attempt::Failed {
                reason: format!("HTTP {status}: {}", String::from_utf8_lossy(&answer[..answer.len().min(200)])),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_from_the_answer_body() {
        assert_eq!(counts(br#"{"accepted": 498, "rejected": 2, "errors": []}"#), Some((498, 2)));
        assert_eq!(counts(br#"{"error": {"code": "unavailable"}}"#), None);
    }
}
