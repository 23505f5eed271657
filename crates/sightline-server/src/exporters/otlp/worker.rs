//! Durable OTLP forwarding: the admission gate the pipeline asks before queuing a request, and
//! one delivery task per destination that drains its outbox in acceptance order.
//!
//! Delivery is at least once: rows leave the outbox only after the destination acknowledged
//! them, so a crash between the answer and the delete sends those requests again (OTLP has no
//! idempotency key; the Collector makes the same trade-off with its persistent queue).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::watch;

use super::classify::OtlpOutcome;
use super::request::{OtlpPayload, OtlpSignal};
use super::service::OtlpForwarder;
use crate::exporters::delivery::jittered_backoff;
use crate::store::Store;
use crate::store::otlp_outbox::{OtlpForward, QueuedPayload};
use crate::telemetry::{DestinationLabels, ForwardAttemptLabels, ForwardItemLabels, metrics};

/// Tuning of the delivery tasks. Defaults suit a Collector or Jaeger on the same network.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Outbox rows claimed per round.
    pub max_payloads_per_round: usize,
    /// Largest merged request, bytes before compression (4 MiB: gRPC servers' usual default
    /// receive limit, the Collector's included).
    pub max_request_bytes: usize,
    /// How often an idle task looks for new rows.
    pub poll_interval: Duration,
    /// First retry delay; doubled per failed attempt, up to `max_backoff`, with full jitter.
    pub base_backoff: Duration,
    /// Longest wait between attempts (also caps a server's `Retry-After`).
    pub max_backoff: Duration,
    /// Most bytes the outbox may hold per destination; requests arriving beyond it are not
    /// queued for that destination (counted as `dropped`) while ingest goes on.
    pub max_queue_bytes: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            max_payloads_per_round: 256,
            max_request_bytes: 4 << 20,
            poll_interval: Duration::from_millis(200),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_queue_bytes: 512 << 20,
        }
    }
}

/// One destination: its name (the outbox key), client and queued-bytes account.
struct Destination {
    name: Arc<str>,
    forwarder: OtlpForwarder,
    queued_bytes: AtomicU64,
}

/// The forwarding destinations of this server, shared by the pipeline (admission) and the
/// delivery tasks.
pub struct OtlpForwarding {
    destinations: Vec<Arc<Destination>>,
    settings: DeliverySettings,
}

impl OtlpForwarding {
    /// Forwarding to `destinations` (name, client). The queued-bytes accounts start from what
    /// the store's outbox already holds (requests accepted before a restart).
    pub fn new(store: &dyn Store, destinations: Vec<(String, OtlpForwarder)>, settings: DeliverySettings) -> Self {
        let destinations = destinations
            .into_iter()
            .map(|(name, forwarder)| {
                let queued = store.otlp_outbox_stats(&name).map(|stats| stats.queued_bytes).unwrap_or(0);
                Arc::new(Destination { name: name.into(), forwarder, queued_bytes: AtomicU64::new(queued) })
            })
            .collect();
        Self { destinations, settings }
    }

    /// Each destination's outbox name and settings as the API may show them (header values
    /// replaced by `"set"`, see `OtlpDestinationConfig::redacted`), in configuration order.
    pub fn redacted_destinations(&self) -> Vec<(String, serde_json::Value)> {
        self.destinations
            .iter()
            .map(|destination| (destination.name.to_string(), destination.forwarder.config().redacted()))
            .collect()
    }

    /// True when some destination takes `signal` (the pipeline only encodes a request then).
    pub fn wants(&self, signal: OtlpSignal) -> bool {
        self.destinations.iter().any(|destination| destination.forwarder.accepts(signal))
    }

    /// The outbox entry for an accepted request: the destinations taking its signal that have
    /// room for it. Destinations without room count the request's items as `dropped`.
    pub fn admit(&self, payload: OtlpPayload) -> Option<OtlpForward> {
        let size = payload.body.len() as u64;
        let mut taking = Vec::new();
        for destination in &self.destinations {
            if !destination.forwarder.accepts(payload.signal) {
                continue;
            }
            let before = destination.queued_bytes.fetch_add(size, Ordering::Relaxed);
            if before + size > self.settings.max_queue_bytes {
                destination.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                count_items(&destination.name, payload.signal, "dropped", payload.items);
                continue;
            }
            taking.push(destination.name.clone());
        }
        (!taking.is_empty()).then_some(OtlpForward { payload, destinations: taking })
    }

    /// Starts one delivery task per destination; they stop when `shutdown` turns true,
    /// leaving undelivered rows queued for the next start.
    pub fn spawn(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.destinations
            .iter()
            .map(|destination| {
                let task = DeliveryTask {
                    destination: destination.clone(),
                    store: store.clone(),
                    settings: self.settings.clone(),
                    shutdown: shutdown.clone(),
                };
                tokio::spawn(task.run())
            })
            .collect()
    }
}

struct DeliveryTask {
    destination: Arc<Destination>,
    store: Arc<dyn Store>,
    settings: DeliverySettings,
    shutdown: watch::Receiver<bool>,
}

/// Consecutive claimed rows of one signal merged into one request.
struct Group {
    ids: Vec<i64>,
    payload: OtlpPayload,
    attempts: u32,
}

enum Round {
    /// Nothing was queued.
    Idle,
    /// Everything claimed was settled (delivered or dead-lettered).
    Settled,
    /// A retryable failure: wait this long before the next round.
    Backoff(Duration),
}

impl DeliveryTask {
    async fn run(mut self) {
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let pause = match self.round().await {
                Ok(Round::Settled) => continue,
                Ok(Round::Idle) => {
                    self.refresh_gauges().await;
                    self.settings.poll_interval
                }
                Ok(Round::Backoff(delay)) => delay,
                Err(reason) => {
                    tracing::warn!(destination = %self.destination.name, %reason, "OTLP outbox unavailable; retrying");
                    self.settings.base_backoff
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shutdown.changed() => {}
            }
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        action: impl FnOnce(&dyn Store) -> crate::store::StoreResult<T> + Send + 'static,
    ) -> Result<T, String> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || action(store.as_ref()))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())
    }

    async fn round(&mut self) -> Result<Round, String> {
        let name = self.destination.name.clone();
        let (max_payloads, max_bytes) = (self.settings.max_payloads_per_round, self.settings.max_request_bytes * 4);
        let claimed = self.blocking(move |store| store.otlp_outbox_claim(&name, max_payloads, max_bytes)).await?;
        if claimed.is_empty() {
            return Ok(Round::Idle);
        }
        for group in groups(claimed, self.settings.max_request_bytes) {
            if let Some(delay) = self.deliver(group).await? {
                return Ok(Round::Backoff(delay));
            }
        }
        Ok(Round::Settled)
    }

    /// Sends one group. `Some(delay)` when it must be retried later (rows stay queued).
    async fn deliver(&mut self, group: Group) -> Result<Option<Duration>, String> {
        let outcome = self.destination.forwarder.send(&group.payload).await;
        let name = self.destination.name.to_string();
        let signal = group.payload.signal;
        match outcome {
            OtlpOutcome::Delivered { rejected_items, message } => {
                count_attempt(&name, "delivered");
                if rejected_items > 0 {
                    tracing::warn!(destination = %name, rejected_items, %message, "OTLP destination rejected items (partial success)");
                }
                count_items(&name, signal, "delivered", group.payload.items.saturating_sub(rejected_items));
                count_items(&name, signal, "rejected", rejected_items.min(group.payload.items));
                self.settle(group.ids, group.payload.body.len() as u64, None).await?;
                Ok(None)
            }
            OtlpOutcome::Retry { retry_after, reason } => {
                count_attempt(&name, "retry");
                tracing::warn!(destination = %name, %reason, "OTLP export failed; will retry");
                let ids = group.ids.clone();
                self.blocking(move |store| store.otlp_outbox_failed_attempt(&ids)).await?;
                let backoff = jittered_backoff(group.attempts, self.settings.base_backoff, self.settings.max_backoff);
                let server_delay = retry_after.map(|delay| delay.min(self.settings.max_backoff)).unwrap_or_default();
                Ok(Some(backoff.max(server_delay)))
            }
            OtlpOutcome::Permanent { reason } => {
                count_attempt(&name, "permanent");
                if group.ids.len() > 1 {
                    // One bad request (or the merged size) may have spoiled the group: settle
                    // each request on its own before dead-lettering anything.
                    return self.deliver_one_by_one(group).await;
                }
                tracing::warn!(destination = %name, %reason, "OTLP export refused for good; parked as a dead letter");
                count_items(&name, signal, "dead_lettered", group.payload.items);
                self.settle(group.ids, group.payload.body.len() as u64, Some(reason)).await?;
                Ok(None)
            }
        }
    }

    async fn deliver_one_by_one(&mut self, group: Group) -> Result<Option<Duration>, String> {
        let name = self.destination.name.clone();
        let ids = group.ids.clone();
        let claimed = self.blocking(move |store| store.otlp_outbox_claim(&name, ids.len(), usize::MAX)).await?;
        for row in claimed.into_iter().filter(|row| group.ids.contains(&row.id)) {
            let single = Group { ids: vec![row.id], payload: row.payload, attempts: row.attempts };
            if let Some(delay) = Box::pin(self.deliver(single)).await? {
                return Ok(Some(delay));
            }
        }
        Ok(None)
    }

    /// Removes settled rows (delivered, or parked with `dead_reason`) and their bytes from the account.
    async fn settle(&self, ids: Vec<i64>, bytes: u64, dead_reason: Option<String>) -> Result<(), String> {
        match dead_reason {
            None => self.blocking(move |store| store.otlp_outbox_delivered(&ids)).await?,
            Some(reason) => self.blocking(move |store| store.otlp_outbox_dead_letter(&ids, &reason)).await?,
        }
        let account = &self.destination.queued_bytes;
        let _ = account.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| Some(queued.saturating_sub(bytes)));
        Ok(())
    }

    /// Re-reads the outbox size (correcting the account for requests whose commit failed
    /// after admission) and publishes the gauges.
    async fn refresh_gauges(&self) {
        let name = self.destination.name.clone();
        let Ok(stats) = self.blocking(move |store| store.otlp_outbox_stats(&name)).await else {
            return;
        };
        self.destination.queued_bytes.store(stats.queued_bytes, Ordering::Relaxed);
        let labels = DestinationLabels { destination: self.destination.name.to_string() };
        metrics().otlp_forward_queued_bytes.get_or_create(&labels).set(stats.queued_bytes as i64);
        let lag_seconds = stats
            .oldest_enqueued_unix_ms
            .map(|oldest| ((crate::clock::now_unix_nano() / 1_000_000) as i64 - oldest).max(0) / 1000)
            .unwrap_or(0);
        metrics().otlp_forward_lag_seconds.get_or_create(&labels).set(lag_seconds);
    }
}

/// Merges consecutive rows of one signal into requests of at most `max_request_bytes` (a
/// larger row goes alone). Order is kept, so a destination sees requests in acceptance order.
fn groups(claimed: Vec<QueuedPayload>, max_request_bytes: usize) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut body = BytesMut::new();
    for row in claimed {
        let fits = groups.last().is_some_and(|last| {
            last.payload.signal == row.payload.signal && body.len() + row.payload.body.len() <= max_request_bytes
        });
        if fits && let Some(last) = groups.last_mut() {
            body.extend_from_slice(&row.payload.body);
            last.ids.push(row.id);
            last.payload.items += row.payload.items;
            last.attempts = last.attempts.max(row.attempts);
            continue;
        }
        if let Some(last) = groups.last_mut() {
            last.payload.body = std::mem::take(&mut body).freeze();
        }
        body.extend_from_slice(&row.payload.body);
        groups.push(Group {
            ids: vec![row.id],
            payload: OtlpPayload { signal: row.payload.signal, body: Default::default(), items: row.payload.items },
            attempts: row.attempts,
        });
    }
    if let Some(last) = groups.last_mut() {
        last.payload.body = body.freeze();
    }
    groups
}

fn count_items(destination: &str, signal: OtlpSignal, outcome: &str, items: u64) {
    if items == 0 {
        return;
    }
    let labels = ForwardItemLabels {
        destination: destination.to_owned(),
        signal: signal.as_str().to_owned(),
        outcome: outcome.to_owned(),
    };
    metrics().otlp_forward_items.get_or_create(&labels).inc_by(items);
}

fn count_attempt(destination: &str, result: &str) {
    let labels = ForwardAttemptLabels { destination: destination.to_owned(), result: result.to_owned() };
    metrics().otlp_forward_attempts.get_or_create(&labels).inc();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn row(id: i64, signal: OtlpSignal, bytes: usize) -> QueuedPayload {
        QueuedPayload {
            id,
            payload: OtlpPayload { signal, body: Bytes::from(vec![id as u8; bytes]), items: 1 },
            enqueued_unix_ms: 0,
            attempts: id as u32,
        }
    }

    #[test]
    fn groups_keep_order_split_by_signal_and_size() {
        let claimed = vec![
            row(1, OtlpSignal::Traces, 10),
            row(2, OtlpSignal::Traces, 10),
            row(3, OtlpSignal::Logs, 10),
            row(4, OtlpSignal::Traces, 10),
            row(5, OtlpSignal::Traces, 10),
            row(6, OtlpSignal::Traces, 10),
            row(7, OtlpSignal::Traces, 50),
        ];
        let grouped = groups(claimed, 25);
        let ids: Vec<Vec<i64>> = grouped.iter().map(|group| group.ids.clone()).collect();
        assert_eq!(ids, vec![vec![1, 2], vec![3], vec![4, 5], vec![6], vec![7]]);
        assert_eq!(&grouped[0].payload.body[..], &[[1u8; 10], [2u8; 10]].concat()[..]);
        assert_eq!(grouped[0].payload.items, 2);
        assert_eq!(grouped[2].attempts, 5, "a group retries as often as its most-tried row");
        assert_eq!(grouped[4].payload.body.len(), 50, "an oversized row goes alone");
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempts in 0..40 {
            let delay = jittered_backoff(attempts, base, max);
            let ceiling = base.saturating_mul(1 << attempts.min(16)).min(max);
            assert!(delay <= ceiling && delay >= ceiling / 2, "attempt {attempts}: {delay:?}");
        }
        assert!(jittered_backoff(30, base, max) <= max);
    }
}
