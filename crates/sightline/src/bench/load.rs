//! The load driver shared by the HTTP and gRPC phases: one task per connection takes the next
//! pre-encoded body from a shared cursor (so each body is sent exactly once), sends it, times
//! it and retries refusals after a short pause.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use super::batches::Workload;

/// Pause before resending a refused request. Deliberately shorter than the server's
/// `Retry-After` (1 s): the benchmark measures how fast the server drains, not SDK politeness;
/// the number of refusals is reported so overload stays visible.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// Attempts per body before it counts as failed.
const MAX_ATTEMPTS: u32 = 100;

/// Slowest latency the histograms hold, microseconds (longer ones are clamped).
const MAX_LATENCY_US: u64 = 120_000_000;

/// How one attempt at exporting a body ended.
#[derive(Debug)]
pub enum Attempt {
    /// HTTP 200 / gRPC OK: the body's spans minus `rejected_spans` are committed.
    Accepted {
        /// `partial_success.rejected_spans` of the answer.
        rejected_spans: u64,
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

/// One connection's way of exporting a pre-encoded `ExportTraceServiceRequest`.
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
    /// Spans in accepted requests minus those the server reported rejected.
    pub acknowledged_spans: u64,
    /// `rejected_spans` over all answers (should be 0: the generator makes valid spans).
    pub rejected_spans: u64,
    /// Retried refusals by reason.
    pub retries: BTreeMap<String, u64>,
    /// Requests given up on.
    pub failed_requests: u64,
    /// The first few failure reasons.
    pub failure_examples: Vec<String>,
}

impl LoadOutcome {
    fn empty() -> Self {
        Self {
            wall: Duration::ZERO,
            latencies_us: new_histogram(),
            accepted_requests: 0,
            acknowledged_spans: 0,
            rejected_spans: 0,
            retries: BTreeMap::new(),
            failed_requests: 0,
            failure_examples: Vec::new(),
        }
    }

    fn merge(&mut self, other: LoadOutcome) {
        // Both histograms share bounds, so adding cannot fail.
        let _ = self.latencies_us.add(&other.latencies_us);
        self.accepted_requests += other.accepted_requests;
        self.acknowledged_spans += other.acknowledged_spans;
        self.rejected_spans += other.rejected_spans;
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
        let (Some(body), Some(spans)) = (workload.bodies.get(index), workload.spans_per_body.get(index)) else {
            return outcome;
        };
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let sent_at = Instant::now();
            match sender.send(body.clone()).await {
                Attempt::Accepted { rejected_spans } => {
                    outcome.latencies_us.saturating_record(sent_at.elapsed().as_micros().max(1) as u64);
                    outcome.accepted_requests += 1;
                    outcome.acknowledged_spans += spans.saturating_sub(rejected_spans);
                    outcome.rejected_spans += rejected_spans;
                    progress.inc(*spans);
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
