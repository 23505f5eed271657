//! The shared delivery driver: one tokio task per enabled destination reads batches from the
//! outbox (by count, bytes and interval), sends them (gzip where the vendor takes it), retries
//! transient failures with exponential backoff and full jitter honouring `Retry-After`, splits
//! on 413, and records the outcome in one store transaction per batch: delivered rows are
//! deleted, refused events become dead letters with the reason and the last response.
//!
//! Guarantees: an outbox row is deleted only after its vendor accepted it, so a crash or a
//! restart sends it again (at least once); vendors drop the repeat by insert id. A batch being
//! retried stays in the outbox and is resent after a restart.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::{DestinationConfig, DestinationSettings};
use super::routing::{RouteMatcher, prepare_for_forwarding};
use super::{Classification, OutboxEvent};
use crate::store::outbox::{DeliveryReport, Destination, NewDeadLetter};
use crate::store::{Store, StoreError};

/// Request limits of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most events per request.
    pub max_events: usize,
    /// Most bytes per request body, uncompressed.
    pub max_bytes: usize,
}

/// The vendor limits for these settings (the largest a destination may configure).
pub fn vendor_limits(settings: &DestinationSettings) -> Limits {
    match settings {
        DestinationSettings::Amplitude(amplitude) => super::amplitude::limits(amplitude.api),
        DestinationSettings::Mixpanel(_) => super::mixpanel::LIMITS,
        DestinationSettings::Webhook(_) => super::webhook::LIMITS,
    }
}

/// What a destination folder provides to the driver: encoding, the request, and the
/// classification of responses.
pub trait Exporter: Send + Sync + 'static {
    /// The vendor's request limits.
    fn limits(&self) -> Limits;
    /// Bytes of the body around the events (envelope), for the size limit.
    fn overhead_bytes(&self) -> usize;
    /// One event as the vendor's JSON; `Err(reason)` when the vendor can never accept it (the
    /// event becomes a dead letter).
    fn encode_event(
        &self,
        event: &sightline_model::ProductEvent,
        session_start_unix_ms: Option<i64>,
    ) -> Result<Vec<u8>, String>;
    /// The request body for encoded events.
    fn body(&self, events: &[&[u8]]) -> Vec<u8>;
    /// True when the body is sent gzip-compressed (`Content-Encoding: gzip`).
    fn gzip(&self) -> bool;
    /// A signature header over the uncompressed body, when the destination signs.
    fn sign(&self, _body: &[u8]) -> Option<(&'static str, String)> {
        None
    }
    /// The request (URL, auth, content type) carrying `body` (already compressed if gzip).
    fn request(&self, client: &reqwest::Client, body: Vec<u8>) -> reqwest::RequestBuilder;
    /// What the response means (vendor documentation).
    fn classify(&self, status: u16, headers: &http::HeaderMap, body: &[u8]) -> Classification;
}

/// The exporter for a destination's settings.
pub fn exporter_for(settings: &DestinationSettings) -> Box<dyn Exporter> {
    match settings {
        DestinationSettings::Amplitude(amplitude) => {
            Box::new(super::amplitude::AmplitudeExporter::new(amplitude.clone()))
        }
        DestinationSettings::Mixpanel(mixpanel) => Box::new(super::mixpanel::MixpanelExporter::new(mixpanel.clone())),
        DestinationSettings::Webhook(webhook) => Box::new(super::webhook::WebhookExporter::new(webhook.clone())),
    }
}

/// `prefix` + events joined by commas + `suffix`.
pub fn join_json(prefix: &[u8], events: &[&[u8]], suffix: &[u8]) -> Vec<u8> {
    let length = prefix.len() + suffix.len() + events.iter().map(|event| event.len() + 1).sum::<usize>();
    let mut body = Vec::with_capacity(length);
    body.extend_from_slice(prefix);
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event);
    }
    body.extend_from_slice(suffix);
    body
}

/// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and
/// Jitter"): attempt n waits a random time in [base·2ⁿ⁻¹ / 2, base·2ⁿ⁻¹], capped at 60 s.
pub fn backoff_delay(attempt: u32, base: Duration) -> Duration {
    jittered_backoff(attempt.saturating_sub(1), base, Duration::from_secs(60))
}

/// The backoff every forwarding driver uses: a random delay between half and all of
/// `base × 2^doublings`, the ceiling capped at `max`.
pub fn jittered_backoff(doublings: u32, base: Duration, max: Duration) -> Duration {
    let ceiling = base.saturating_mul(1u32 << doublings.min(16)).min(max);
    let floor = ceiling / 2;
    let spread = (ceiling - floor).as_millis() as u64;
    floor + Duration::from_millis(rand::rng().random_range(0..=spread))
}

/// In-memory state of a destination's worker, for the API (`in_flight`, `last_error`).
#[derive(Debug, Default)]
pub struct WorkerState {
    /// Events in requests being sent now.
    pub in_flight: std::sync::atomic::AtomicU64,
    /// The last failure of the current worker (also stored in the destination row).
    pub last_error: Mutex<Option<String>>,
}

struct Worker {
    handle: JoinHandle<()>,
    state: Arc<WorkerState>,
    config: DestinationConfig,
}

/// Starts, restarts and stops the per-destination workers as destinations change.
pub struct DeliveryManager {
    store: Arc<dyn Store>,
    workers: Mutex<HashMap<i64, Worker>>,
    stop: watch::Sender<bool>,
    retry_base: Duration,
    privacy: std::sync::OnceLock<Arc<crate::privacy::PrivacyEngine>>,
}

impl DeliveryManager {
    /// A manager over `store`; call [`DeliveryManager::reload`] to start the workers.
    /// `retry_base` is the first backoff delay (default 250 ms; tests use less).
    pub fn new(store: Arc<dyn Store>, retry_base: Duration) -> Arc<Self> {
        let (stop, _) = watch::channel(false);
        Arc::new(Self { store, workers: Mutex::new(HashMap::new()), stop, retry_base, privacy: Default::default() })
    }

    /// Applies each project's privacy rules and consent to the events before they leave (call
    /// before [`DeliveryManager::reload`]; workers started earlier forward without them).
    pub fn set_privacy(&self, privacy: Arc<crate::privacy::PrivacyEngine>) {
        let _ = self.privacy.set(privacy);
    }

    /// Makes the running workers match the stored destinations: new or changed enabled
    /// destinations get a (fresh) worker, removed or disabled ones lose theirs.
    pub fn reload(&self) -> Result<(), StoreError> {
        let destinations = self.store.list_destinations(None)?;
        let mut workers = self.workers.lock().map_err(|_| StoreError::Database("delivery lock poisoned".into()))?;
        let wanted: HashMap<i64, &Destination> = destinations
            .iter()
            .filter(|destination| destination.enabled)
            .map(|destination| (destination.id, destination))
            .collect();
        workers.retain(|id, worker| {
            let keep = wanted.get(id).is_some_and(|destination| destination.config == worker.config);
            if !keep {
                worker.handle.abort();
            }
            keep
        });
        for (id, destination) in wanted {
            if workers.contains_key(&id) {
                continue;
            }
            let routing = match destination.config.routing.compile() {
                Ok(routing) => routing,
                Err(error) => {
                    tracing::warn!(destination = id, %error, "Destination not started: bad routing");
                    continue;
                }
            };
            let state = Arc::new(WorkerState::default());
            let run = DestinationWorker {
                store: self.store.clone(),
                destination_id: id,
                label: id.to_string(),
                exporter: exporter_for(&destination.config.settings),
                config: destination.config.clone(),
                routing,
                state: state.clone(),
                stop: self.stop.subscribe(),
                retry_base: self.retry_base,
                privacy: self.privacy.get().cloned(),
            };
            let handle = tokio::spawn(run.run());
            workers.insert(id, Worker { handle, state, config: destination.config.clone() });
        }
        Ok(())
    }

    /// The worker state of a destination, when one runs.
    pub fn worker_state(&self, destination_id: i64) -> Option<Arc<WorkerState>> {
        self.workers.lock().ok()?.get(&destination_id).map(|worker| worker.state.clone())
    }

    /// Stops every worker now (shutdown). Requests in flight are dropped; their rows stay in
    /// the outbox and are sent again at the next start.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        if let Ok(mut workers) = self.workers.lock() {
            for (_, worker) in workers.drain() {
                worker.handle.abort();
            }
        }
    }
}

/// One prepared event of a batch.
struct Prepared {
    outbox_id: i64,
    event_rowid: i64,
    event_id: String,
    encoded: Vec<u8>,
}

struct DestinationWorker {
    store: Arc<dyn Store>,
    destination_id: i64,
    label: String,
    exporter: Box<dyn Exporter>,
    config: DestinationConfig,
    routing: RouteMatcher,
    state: Arc<WorkerState>,
    stop: watch::Receiver<bool>,
    retry_base: Duration,
    privacy: Option<Arc<crate::privacy::PrivacyEngine>>,
}

/// Runs a blocking store call off the async reactor.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(call).await.map_err(|error| StoreError::Database(error.to_string()))?
}

impl DestinationWorker {
    fn limits(&self) -> Limits {
        let vendor = self.exporter.limits();
        Limits {
            max_events: self.config.batch.max_events.unwrap_or(vendor.max_events).clamp(1, vendor.max_events),
            max_bytes: self.config.batch.max_bytes.unwrap_or(vendor.max_bytes).min(vendor.max_bytes),
        }
    }

    /// Waits `duration`, or less when the outbox signals new rows; false when stopping.
    async fn pause(&mut self, duration: Duration, wake_on_new_rows: bool) -> bool {
        let signal = self.store.outbox_signal();
        let notified = signal.notified();
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = notified, if wake_on_new_rows => true,
            _ = self.stop.wait_for(|stop| *stop) => false,
        }
    }

    async fn run(mut self) {
        let limits = self.limits();
        let interval = Duration::from_millis(self.config.batch.interval_ms);
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_millis(self.config.batch.timeout_ms))
            .user_agent(concat!("sightline/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(destination = self.destination_id, %error, "Cannot build the HTTP client");
                return;
            }
        };
        let mut last_stats: Option<Instant> = None;
        loop {
            if *self.stop.borrow() {
                return;
            }
            if last_stats.is_none_or(|published| published.elapsed() >= Duration::from_secs(1)) {
                self.publish_stats().await;
                last_stats = Some(Instant::now());
            }
            let store = self.store.clone();
            let destination_id = self.destination_id;
            let max_events = limits.max_events;
            let items = match blocking(move || store.pending_outbox(destination_id, max_events)).await {
                Ok(items) => items,
                Err(error) => {
                    tracing::warn!(destination = destination_id, %error, "Cannot read the outbox");
                    if !self.pause(Duration::from_secs(1), false).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(oldest) = items.first() else {
                if !self.pause(Duration::from_secs(1), true).await {
                    return;
                }
                continue;
            };
            // Batching by interval: a partial batch waits until its oldest event is
            // `interval` old, collecting what arrives meanwhile.
            if items.len() < max_events {
                let age_ms = crate::store::sqlite::now_unix_ms().saturating_sub(oldest.created_at_unix_ms).max(0);
                let due = interval.saturating_sub(Duration::from_millis(age_ms as u64));
                if !due.is_zero() {
                    if !self.pause(due, false).await {
                        return;
                    }
                    continue;
                }
            }
            let (report, stopping) = self.deliver(&client, items, limits).await;
            let store = self.store.clone();
            let recorded = blocking(move || store.record_delivery(&report).map(|()| report)).await;
            match recorded {
                Ok(report) => self.count(&report),
                Err(error) => {
                    tracing::warn!(destination = destination_id, %error, "Cannot record a delivery; it will be resent");
                    if !self.pause(Duration::from_secs(1), false).await {
                        return;
                    }
                }
            }
            if stopping {
                return;
            }
        }
    }

    async fn publish_stats(&self) {
        let store = self.store.clone();
        let destination_id = self.destination_id;
        if let Ok(stats) = blocking(move || store.outbox_stats(destination_id)).await {
            let metrics = crate::telemetry::metrics();
            let labels = crate::telemetry::DestinationLabels { destination: self.label.clone() };
            metrics.delivery_queued.get_or_create(&labels).set(stats.queued as i64);
            metrics.delivery_lag_seconds.get_or_create(&labels).set(stats.lag_ms as f64 / 1000.0);
        }
    }

    fn count(&self, report: &DeliveryReport) {
        let metrics = crate::telemetry::metrics();
        for (outcome, count) in [
            ("delivered", report.delivered.len()),
            ("dead_lettered", report.dead.len()),
            ("filtered", report.filtered.len()),
        ] {
            if count > 0 {
                metrics
                    .delivery_events
                    .get_or_create(&crate::telemetry::DeliveryLabels {
                        destination: self.label.clone(),
                        outcome: outcome.into(),
                    })
                    .inc_by(count as u64);
            }
        }
    }

    fn count_request(&self, result: &str) {
        crate::telemetry::metrics()
            .delivery_requests
            .get_or_create(&crate::telemetry::DeliveryLabels {
                destination: self.label.clone(),
                outcome: result.into(),
            })
            .inc();
    }

    /// The privacy rules of the projects `items` come from (server-wide destinations carry
    /// several), from the engine's cache or the store. Projects whose rules cannot be read are
    /// left out, with the failure as the round's last error.
    async fn project_privacy(
        &self,
        items: &[OutboxEvent],
        report: &mut DeliveryReport,
    ) -> HashMap<i64, Arc<crate::privacy::ProjectPrivacy>> {
        let mut rules = HashMap::new();
        let Some(engine) = &self.privacy else {
            return rules;
        };
        let projects: std::collections::BTreeSet<i64> = items.iter().filter_map(|item| item.project_id).collect();
        for project_id in projects {
            let engine = engine.clone();
            match blocking(move || engine.for_project(project_id)).await {
                Ok(privacy) => {
                    rules.insert(project_id, privacy);
                }
                Err(error) => report.last_error = Some(format!("privacy rules of project {project_id}: {error}")),
            }
        }
        rules
    }

    /// Prepares, encodes and sends `items`; returns what happened to each and whether the
    /// worker is stopping (the unsent rest stays in the outbox).
    async fn deliver(
        &mut self,
        client: &reqwest::Client,
        items: Vec<OutboxEvent>,
        limits: Limits,
    ) -> (DeliveryReport, bool) {
        let mut report = DeliveryReport { destination_id: self.destination_id, ..DeliveryReport::default() };
        let dead = |item: &OutboxEvent, event_id: &str, reason: String| NewDeadLetter {
            outbox_id: item.outbox_id,
            event_rowid: item.event_rowid,
            event_id: event_id.to_owned(),
            reason,
            last_response: None,
            attempts: 0,
        };
        let mut prepared = Vec::with_capacity(items.len());
        let body_room = limits.max_bytes.saturating_sub(self.exporter.overhead_bytes());
        let privacy = self.project_privacy(&items, &mut report).await;
        for item in &items {
            let Some(event) = &item.event else {
                report.dead.push(dead(item, "", "event deleted by retention before delivery".into()));
                continue;
            };
            let rules = match (&self.privacy, item.project_id) {
                (None, _) => None,
                (Some(_), Some(project_id)) => match privacy.get(&project_id) {
                    Some(rules) => Some(rules.as_ref()),
                    // The rules could not be read: the event waits in the outbox (it is never
                    // sent unscrubbed).
                    None => continue,
                },
                (Some(_), None) => continue,
            };
            let Some(ready) = prepare_for_forwarding(event, &self.routing, rules) else {
                report.filtered.push(item.outbox_id);
                continue;
            };
            match self.exporter.encode_event(&ready, item.session_start_unix_ms) {
                Ok(encoded) if encoded.len() + 1 > body_room => report.dead.push(dead(
                    item,
                    &event.event_id,
                    format!("event of {} bytes exceeds the request limit of {} bytes", encoded.len(), limits.max_bytes),
                )),
                Ok(encoded) => prepared.push(Prepared {
                    outbox_id: item.outbox_id,
                    event_rowid: item.event_rowid,
                    event_id: event.event_id.clone(),
                    encoded,
                }),
                Err(reason) => report.dead.push(dead(item, &event.event_id, reason)),
            }
        }
        // Chunks by bytes (count is bounded by the read).
        let mut chunks: Vec<Vec<Prepared>> = Vec::new();
        let mut chunk_bytes = 0usize;
        for item in prepared {
            let size = item.encoded.len() + 1;
            if chunks.last().is_none_or(|chunk| chunk_bytes + size > body_room || chunk.len() >= limits.max_events) {
                chunks.push(Vec::new());
                chunk_bytes = 0;
            }
            chunk_bytes += size;
            if let Some(chunk) = chunks.last_mut() {
                chunk.push(item);
            }
        }
        let mut stack: Vec<Vec<Prepared>> = chunks.into_iter().rev().collect();
        while let Some(part) = stack.pop() {
            if !self.send_part(client, part, &mut stack, &mut report).await {
                return (report, true);
            }
        }
        (report, false)
    }

    /// Sends one part until it is settled; false when stopping mid-way (the part stays queued).
    async fn send_part(
        &mut self,
        client: &reqwest::Client,
        part: Vec<Prepared>,
        stack: &mut Vec<Vec<Prepared>>,
        report: &mut DeliveryReport,
    ) -> bool {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let encoded: Vec<&[u8]> = part.iter().map(|item| item.encoded.as_slice()).collect();
            let plain = self.exporter.body(&encoded);
            let signature = self.exporter.sign(&plain);
            let gzip = self.exporter.gzip();
            let body = if gzip { gzip_bytes(&plain) } else { plain };
            let mut request = self.exporter.request(client, body);
            if gzip {
                request = request.header(http::header::CONTENT_ENCODING, "gzip");
            }
            if let Some((name, value)) = signature {
                request = request.header(name, value);
            }
            let in_flight = part.len() as u64;
            self.state.in_flight.fetch_add(in_flight, std::sync::atomic::Ordering::Relaxed);
            let labels = crate::telemetry::DestinationLabels { destination: self.label.clone() };
            crate::telemetry::metrics().delivery_in_flight.get_or_create(&labels).inc_by(in_flight as i64);
            let outcome = async {
                let response = request.send().await?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let bytes = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, headers, bytes))
            }
            .await;
            self.state.in_flight.fetch_sub(in_flight, std::sync::atomic::Ordering::Relaxed);
            crate::telemetry::metrics().delivery_in_flight.get_or_create(&labels).dec_by(in_flight as i64);
            let (classification, response_text) = match outcome {
                Ok((status, headers, bytes)) => {
                    (self.exporter.classify(status, &headers, &bytes), Some(super::classify::snippet(&bytes)))
                }
                Err(error) => {
                    let reason = if error.is_timeout() {
                        format!("timed out after {} ms", self.config.batch.timeout_ms)
                    } else {
                        format!("request failed: {error}")
                    };
                    (Classification::Retry { after: None, reason }, None)
                }
            };
            let dead_letter = |item: &Prepared, reason: String| NewDeadLetter {
                outbox_id: item.outbox_id,
                event_rowid: item.event_rowid,
                event_id: item.event_id.clone(),
                reason,
                last_response: response_text.clone(),
                attempts,
            };
            match classification {
                Classification::Delivered => {
                    self.count_request("delivered");
                    report.delivered.extend(part.iter().map(|item| item.outbox_id));
                    return true;
                }
                Classification::PartiallyRejected { rejected, rest_accepted } => {
                    self.count_request("partial");
                    let reasons: HashMap<usize, String> = rejected.into_iter().collect();
                    let mut rest = Vec::new();
                    for (index, item) in part.into_iter().enumerate() {
                        match reasons.get(&index) {
                            Some(reason) => report.dead.push(dead_letter(&item, reason.clone())),
                            None if rest_accepted => report.delivered.push(item.outbox_id),
                            None => rest.push(item),
                        }
                    }
                    if !rest.is_empty() {
                        stack.push(rest);
                    }
                    return true;
                }
                Classification::Split => {
                    self.count_request("split");
                    if part.len() == 1 {
                        report
                            .dead
                            .extend(part.iter().map(|item| dead_letter(item, "too large (413) on its own".into())));
                        return true;
                    }
                    let mut first = part;
                    let second = first.split_off(first.len() / 2);
                    stack.push(second);
                    stack.push(first);
                    return true;
                }
                Classification::Permanent { reason } => {
                    self.count_request("permanent");
                    self.note_error(&reason, report);
                    report.dead.extend(part.iter().map(|item| dead_letter(item, reason.clone())));
                    return true;
                }
                Classification::Retry { after, reason } => {
                    self.count_request("retry");
                    self.note_error(&reason, report);
                    if attempts >= self.config.batch.max_attempts {
                        let reason = format!("gave up after {attempts} attempts: {reason}");
                        report.dead.extend(part.iter().map(|item| dead_letter(item, reason.clone())));
                        return true;
                    }
                    let delay = after.unwrap_or_else(|| backoff_delay(attempts, self.retry_base));
                    tracing::debug!(destination = self.destination_id, ?delay, %reason, "Retrying a delivery");
                    if !self.pause(delay, false).await {
                        return false;
                    }
                }
            }
        }
    }

    fn note_error(&self, reason: &str, report: &mut DeliveryReport) {
        report.last_error = Some(reason.to_owned());
        if let Ok(mut last_error) = self.state.last_error.lock() {
            *last_error = Some(reason.to_owned());
        }
    }
}

fn gzip_bytes(plain: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(plain.len() / 4), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(plain);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        for _ in 0..50 {
            let first = backoff_delay(1, base);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first), "{first:?}");
            let fourth = backoff_delay(4, base);
            assert!((Duration::from_millis(400)..=Duration::from_millis(800)).contains(&fourth), "{fourth:?}");
            assert!(backoff_delay(40, base) <= Duration::from_secs(60));
        }
    }

    #[test]
    fn bodies_join_events() {
        assert_eq!(join_json(b"[", &[b"1", b"2"], b"]"), b"[1,2]");
        assert_eq!(join_json(b"[", &[], b"]"), b"[]");
    }
}
