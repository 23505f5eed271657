//! The error benchmark's client of the issues API (`/api/v1/projects/{project}/issues`): reads
//! every issue to check grouping, resolves issues in bulk, and times the list queries the issue
//! stream page sends.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

/// The API's largest page (`limit` is clamped to 1000).
const PAGE_LIMIT: usize = 1000;

/// The bulk status change takes at most this many ids.
const BULK_LIMIT: usize = 1000;

/// What the checks need of one issue.
#[derive(Debug, Clone)]
pub struct IssueRow {
    /// Issue id.
    pub id: i64,
    /// Events grouped into it.
    pub event_count: u64,
}

/// One list query, timed over several runs.
pub struct QueryTiming {
    /// What the row is called in the report.
    pub label: String,
    /// The query string sent (after `/issues?`).
    pub query: String,
    /// Issues in the answer (the same every run).
    pub returned: usize,
    /// Answer body size.
    pub response_bytes: usize,
    /// Request latency, microseconds.
    pub latencies_us: Histogram<u64>,
}

impl QueryTiming {
    /// Latency at `quantile`, milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latencies_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// A read/write client for one project's issues.
pub struct IssueApi {
    client: reqwest::Client,
    issues_url: String,
    authorization: String,
}

impl IssueApi {
    /// A client for `project_slug` on the server at `http_addr`, authenticating with `key`
    /// (scope `all`: reading and status changes).
    pub fn new(http_addr: SocketAddr, project_slug: &str, key: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .context("building the API client")?;
        Ok(Self {
            client,
            issues_url: format!("http://{http_addr}/api/v1/projects/{project_slug}/issues"),
            authorization: format!("Bearer {key}"),
        })
    }

    /// `GET /issues?{query}`: the parsed answer and its size in bytes.
    async fn list(&self, query: &str) -> anyhow::Result<(Value, usize)> {
        let url = format!("{}?{query}", self.issues_url);
        let response = self
            .client
            .get(&url)
            .header(AUTHORIZATION, &self.authorization)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response.bytes().await.with_context(|| format!("reading the answer of GET {url}"))?;
        anyhow::ensure!(status.is_success(), "GET {url}: HTTP {status}: {}", String::from_utf8_lossy(&body));
        let parsed: Value =
            serde_json::from_slice(&body).with_context(|| format!("GET {url}: the answer is not JSON"))?;
        Ok((parsed, body.len()))
    }

    /// Every issue of the project, any status, paging through the cursor.
    pub async fn all_issues(&self) -> anyhow::Result<Vec<IssueRow>> {
        let mut issues = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("limit={PAGE_LIMIT}");
            if let Some(cursor) = &cursor {
                query.push_str(&format!("&cursor={cursor}"));
            }
            let (page, _) = self.list(&query).await?;
            for issue in page["issues"].as_array().context("the answer has no \"issues\" array")? {
                issues.push(IssueRow {
                    id: issue["id"].as_i64().context("an issue without an id")?,
                    event_count: issue["event_count"].as_u64().context("an issue without an event_count")?,
                });
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(issues),
            }
        }
    }

    /// Marks `ids` resolved with the bulk form of `PATCH /issues`.
    pub async fn resolve(&self, ids: &[i64]) -> anyhow::Result<()> {
        for chunk in ids.chunks(BULK_LIMIT) {
            let body = json!({"ids": chunk, "status": "resolved"});
            let response = self
                .client
                .patch(&self.issues_url)
                .header(AUTHORIZATION, &self.authorization)
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string())
                .send()
                .await
                .context("PATCH /issues")?;
            let status = response.status();
            let answer = response.bytes().await.unwrap_or_default();
            anyhow::ensure!(status.is_success(), "PATCH /issues: HTTP {status}: {}", String::from_utf8_lossy(&answer));
        }
        Ok(())
    }

    /// The `next_cursor` of `GET /issues?{query}`.
    pub async fn next_cursor(&self, query: &str) -> anyhow::Result<Option<String>> {
        let (page, _) = self.list(query).await?;
        Ok(page["next_cursor"].as_str().map(str::to_owned))
    }

    /// Sends `GET /issues?{query}` once untimed (a user's second look at the page finds SQLite's
    /// page cache warm), then `runs` times one after the other, timing each.
    pub async fn time_query(&self, label: &str, query: &str, runs: usize) -> anyhow::Result<QueryTiming> {
        let (first, response_bytes) = self.list(query).await?;
        let returned = first["issues"].as_array().map_or(0, Vec::len);
        let mut latencies_us = Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")?;
        for _ in 0..runs {
            let started = Instant::now();
            self.list(query).await?;
            latencies_us.saturating_record(started.elapsed().as_micros().max(1) as u64);
        }
        Ok(QueryTiming { label: label.to_owned(), query: query.to_owned(), returned, response_bytes, latencies_us })
    }
}
