//! The load driver shared by every benchmark phase that sends OTLP exports (traces or logs, HTTP
//! or gRPC): one task per connection takes the next pre-encoded body from a shared cursor (so
//! each body is sent exactly once), sends it, times it and retries refusals after a short pause.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Pause before resending a refused request. Deliberately shorter than the server's
/// `Retry-After` (1 s): the benchmark measures how fast the server drains, not SDK politeness;
/// the number of refusals is reported so overload stays visible.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// Attempts per body before it counts as failed.
const MAX_ATTEMPTS: u32 = 100;

/// Slowest latency the histograms hold, microseconds (longer ones are clamped).
const MAX_LATENCY_US: u64 = 120_000_000;

/// Pre-encoded export request bodies and how many items (spans, log records) each one holds.
pub struct Workload {
    /// Protobuf bodies; `Bytes` so every send is a cheap reference-counted clone.
    pub bodies: Vec<Bytes>,
    /// Items in each body, same order.
    pub items_per_body: Vec<u64>,
}

impl Workload {
    /// Items over all bodies.
    pub fn total_items(&self) -> u64 {
        self.items_per_body.iter().sum()
    }

    /// Bytes over all bodies.
    pub fn total_bytes(&self) -> u64 {
        self.bodies.iter().map(|body| body.len() as u64).sum()
    }
}

/// How one attempt at exporting a body ended.
#[derive(Debug)]
pub enum Attempt {
    /// HTTP 200 / gRPC OK: the body's items minus `rejected_items` are committed.
    Accepted {
        /// `partial_success.rejected_items` (or `rejected_log_records`) of the answer.
        rejected_items: u64,
    },
    /// A refusal OTLP says to retry (HTTP 429/502/503/504, gRPC RESOURCE_EXHAUSTED/UNAVAILABLE).
    Retryable {
        /// Short label to count by, e.g. `HTTP 429`.
        reason: String,
    },
    /// Anything else; counted and not retried.
    Failed {
        /// What went wrong, for the report.
        reason: String,
    },
}

/// One connection's way of exporting a pre-encoded OTLP export request.
pub trait ExportSender: Send + 'static {
    /// Sends `body` once and classifies the answer.
    fn send(&mut self, body: Bytes) -> impl Future<Output = Attempt> + Send;
}

/// What one phase of load produced, over all connections.
pub struct LoadOutcome {
    /// From the first send to the last answer.
    pub wall: Duration,
    /// Latency of accepted requests (the attempt that succeeded), microseconds.
    pub latencies_us: Histogram<u64>,
    /// Requests answered 200 / OK.
    pub accepted_requests: u64,
    /// Items in accepted requests minus those the server reported rejected.
    pub acknowledged_items: u64,
    /// Rejected items over all answers (should be 0: the generators make valid items).
    pub rejected_items: u64,
    /// Retried refusals by reason.
    pub retries: BTreeMap<String, u64>,
    /// Requests given up on.
    pub failed_requests: u64,
    /// The first few failure reasons.
    pub failure_examples: Vec<String>,
}

impl LoadOutcome {
    /// Nothing sent yet.
    pub fn empty() -> Self {
        Self {
            wall: Duration::ZERO,
            latencies_us: new_histogram(),
            accepted_requests: 0,
            acknowledged_items: 0,
            rejected_items: 0,
            retries: BTreeMap::new(),
            failed_requests: 0,
            failure_examples: Vec::new(),
        }
    }

    /// Adds `other`'s counts and latencies (not its wall time) to these.
    pub fn merge(&mut self, other: LoadOutcome) {
        // Both histograms share bounds, so adding cannot fail.
        let _ = self.latencies_us.add(&other.latencies_us);
        self.accepted_requests += other.accepted_requests;
        self.acknowledged_items += other.acknowledged_items;
        self.rejected_items += other.rejected_items;
        for (reason, count) in other.retries {
            *self.retries.entry(reason).or_insert(0) += count;
        }
        self.failed_requests += other.failed_requests;
        for example in other.failure_examples {
            if self.failure_examples.len() < 5 {
                self.failure_examples.push(example);
            }
        }
    }

    /// All retried refusals.
    pub fn total_retries(&self) -> u64 {
        self.retries.values().sum()
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// Sends every body of `workload` once over `senders` (one task each) and waits for all.
pub async fn run<S: ExportSender>(workload: Arc<Workload>, senders: Vec<S>, progress: ProgressBar) -> LoadOutcome {
    let cursor = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(senders.len());
    for sender in senders {
        tasks.push(tokio::spawn(drive_connection(sender, workload.clone(), cursor.clone(), progress.clone())));
    }
    let mut outcome = LoadOutcome::empty();
    for task in tasks {
        match task.await {
            Ok(connection_outcome) => outcome.merge(connection_outcome),
            Err(error) => {
                outcome.failed_requests += 1;
                outcome.failure_examples.push(format!("connection task failed: {error}"));
            }
        }
    }
    outcome.wall = started.elapsed();
    outcome
}

async fn drive_connection<S: ExportSender>(
    mut sender: S,
    workload: Arc<Workload>,
    cursor: Arc<AtomicUsize>,
    progress: ProgressBar,
) -> LoadOutcome {
    let mut outcome = LoadOutcome::empty();
    loop {
        let index = cursor.fetch_add(1, Ordering::Relaxed);
        let (Some(body), Some(items)) = (workload.bodies.get(index), workload.items_per_body.get(index)) else {
            return outcome;
        };
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let sent_at = Instant::now();
            match sender.send(body.clone()).await {
                Attempt::Accepted { rejected_items } => {
                    outcome.latencies_us.saturating_record(sent_at.elapsed().as_micros().max(1) as u64);
                    outcome.accepted_requests += 1;
                    outcome.acknowledged_items += items.saturating_sub(rejected_items);
                    outcome.rejected_items += rejected_items;
                    progress.inc(*items);
                    break;
                }
                Attempt::Retryable { reason } if attempts < MAX_ATTEMPTS => {
                    *outcome.retries.entry(reason).or_insert(0) += 1;
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Attempt::Retryable { reason } => {
                    outcome.failed_requests += 1;
                    outcome.failure_examples.push(format!("gave up after {attempts} attempts: {reason}"));
                    break;
                }
                Attempt::Failed { reason } => {
                    outcome.failed_requests += 1;
                    if outcome.failure_examples.len() < 5 {
                        outcome.failure_examples.push(reason);
                    }
                    break;
                }
            }
        }
    }
}

/// A progress bar on stderr counting `unit` (`spans`, `logs`) up to `total`.
pub fn progress_bar(label: &str, total: u64, unit: &str) -> ProgressBar {
    // Redraws cost CPU the server needs; a few per second are plenty.
    let progress = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
    let template = format!("{{prefix:>18}} {{bar:40}} {{pos:>9}}/{{len}} {unit} {{per_sec:>16}} {{elapsed:>4}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        progress.set_style(style);
    }
    progress.set_prefix(label.to_owned());
    progress
}
