//! The event client's worker: one thread running a single-threaded tokio runtime that batches
//! the queue by size and interval, serializes and gzips each batch, and delivers it with
//! retries; flush and shutdown requests carry a deadline that bounds every wait.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};
use tokio::sync::mpsc::{Receiver, UnboundedReceiver};

use super::config::{ConfigError, EventClientConfig};
use super::retry::{Outcome, backoff, classify, parse_retry_after};
use super::{Counters, QueuedEvent};

/// A flush (or, with `stop`, shutdown) request.
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) deadline: Instant,
    pub(crate) stop: bool,
    /// Answered true when everything queued before the request was delivered.
    pub(crate) done: std::sync::mpsc::SyncSender<bool>,
}

struct Worker {
    config: EventClientConfig,
    url: String,
    http: reqwest::Client,
    counters: Arc<Counters>,
    fallback_session_id: String,
}

pub(crate) fn spawn(
    config: EventClientConfig,
    queue: Receiver<QueuedEvent>,
    control: UnboundedReceiver<super::worker::Control>,
    counters: Arc<Counters>,
) -> Result<String, ConfigError> {
    let fallback_session_id = super::fallback_session_id();
    let http = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .build()
        .map_err(|error| ConfigError::Worker(format!("HTTP client: {error}")))?;
    let worker =
        Worker { url: config.events_url(), config, http, counters, fallback_session_id: fallback_session_id.clone() };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| ConfigError::Worker(format!("runtime: {error}")))?;
    std::thread::Builder::new()
        .name("sightline-events".into())
        .spawn(move || runtime.block_on(worker.run(queue, control)))
        .map_err(|error| ConfigError::Worker(format!("thread: {error}")))?;
    Ok(fallback_session_id)
}

fn rfc3339_nanos(timestamp: SystemTime) -> String {
    let nanos = timestamp.duration_since(SystemTime::UNIX_EPOCH).map(|elapsed| elapsed.as_nanos()).unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos as i128)
        .ok()
        .and_then(|time| time.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

impl Worker {
    /// The ProductGraph wire object (dotted keys); `trace_id` / `span_id` ride along as extra
    /// fields, which Sightline keeps as properties.
    fn to_wire(&self, queued: QueuedEvent) -> Value {
        let QueuedEvent { event, event_id, timestamp, trace } = queued;
        let mut object = Map::new();
        object.insert("event_id".into(), Value::String(event_id.to_string()));
        object.insert("product_id".into(), Value::String(self.config.product_id.clone()));
        object.insert(
            "session.id".into(),
            Value::String(event.session_id.unwrap_or_else(|| self.fallback_session_id.clone())),
        );
        if let Some(user_id) = event.user_id {
            object.insert("user.id".into(), Value::String(user_id));
        }
        object.insert("event.type".into(), Value::String(event.event_type.as_str().to_owned()));
        object.insert("event.name".into(), Value::String(event.name.into_owned()));
        object.insert("event.timestamp".into(), Value::String(rfc3339_nanos(timestamp)));
        if let Some((trace_id, span_id)) = trace {
            object.insert("trace_id".into(), Value::String(trace_id.to_string()));
            object.insert("span_id".into(), Value::String(span_id.to_string()));
        }
        for (key, value) in event.properties {
            object.insert(key.into_owned(), value);
        }
        if let Some(metadata) = event.metadata {
            object.insert("metadata".into(), Value::Object(metadata));
        }
        Value::Object(object)
    }

    async fn run(self, mut queue: Receiver<QueuedEvent>, mut control: UnboundedReceiver<Control>) {
        let mut batch: Vec<QueuedEvent> = Vec::with_capacity(self.config.batch_size);
        let mut ticker = tokio::time::interval(self.config.flush_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        // Every handle holds both senders, so the control channel closes only together with the
        // queue; the flag keeps a closed control channel from being polled in a loop meanwhile.
        let mut control_open = true;
        loop {
            tokio::select! {
                received = queue.recv() => match received {
                    Some(event) => {
                        batch.push(event);
                        if batch.len() >= self.config.batch_size {
                            self.deliver(std::mem::take(&mut batch), None).await;
                            ticker.reset();
                        }
                    }
                    None => {
                        // Every handle dropped without a shutdown: deliver what is left,
                        // bounded by the request timeout and attempts.
                        self.deliver(std::mem::take(&mut batch), None).await;
                        return;
                    }
                },
                _ = ticker.tick() => {
                    if !batch.is_empty() {
                        self.deliver(std::mem::take(&mut batch), None).await;
                    }
                }
                request = control.recv(), if control_open => {
                    let Some(request) = request else {
                        control_open = false;
                        continue;
                    };
                    if request.stop {
                        queue.close();
                    }
                    while let Ok(event) = queue.try_recv() {
                        batch.push(event);
                    }
                    let complete = self.deliver(std::mem::take(&mut batch), Some(request.deadline)).await;
                    // The requester may have stopped waiting; nothing to do then.
                    let _ = request.done.send(complete);
                    if request.stop {
                        return;
                    }
                }
            }
        }
    }

    /// Delivers `events` in batches of `batch_size`; true when no batch was given up on.
    async fn deliver(&self, events: Vec<QueuedEvent>, deadline: Option<Instant>) -> bool {
        let mut complete = true;
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let chunk: Vec<Value> =
                events.by_ref().take(self.config.batch_size).map(|event| self.to_wire(event)).collect();
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                self.counters.failed.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                complete = false;
                continue;
            }
            complete &= self.send_batch(chunk, deadline).await;
        }
        complete
    }

    fn encode(&self, events: Vec<Value>) -> Result<(Vec<u8>, bool), std::io::Error> {
        let body = serde_json::to_vec(&serde_json::json!({ "events": events }))?;
        if !self.config.gzip {
            return Ok((body, false));
        }
        let mut encoder =
            flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
        encoder.write_all(&body)?;
        Ok((encoder.finish()?, true))
    }

    async fn send_batch(&self, events: Vec<Value>, deadline: Option<Instant>) -> bool {
        let batch_len = events.len();
        let (body, gzipped) = match self.encode(events) {
            Ok(encoded) => encoded,
            Err(error) => {
                tracing::warn!(%error, "Could not encode an event batch; dropping it");
                self.counters.failed.fetch_add(batch_len as u64, Ordering::Relaxed);
                return false;
            }
        };
        let remaining =
            |deadline: Option<Instant>| deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        for attempt in 1..=self.config.max_attempts {
            let timeout = match remaining(deadline) {
                Some(left) if left.is_zero() => break,
                Some(left) => left.min(self.config.request_timeout),
                None => self.config.request_timeout,
            };
            let mut request = self
                .http
                .post(&self.url)
                .timeout(timeout)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            if gzipped {
                request = request.header(http::header::CONTENT_ENCODING, "gzip");
            }
            if let Some(api_key) = &self.config.api_key {
                request = request.header("x-api-key", api_key.expose());
            }
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            if attempt > 1 {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| parse_retry_after(value, SystemTime::now()));
                    let body = response.bytes().await.unwrap_or_default();
                    classify(status, retry_after, &body, batch_len)
                }
                Err(error) => Outcome::Retry { reason: error.to_string(), retry_after: None },
            };
            match outcome {
                Outcome::Delivered { accepted, rejected } => {
                    self.counters.accepted.fetch_add(accepted, Ordering::Relaxed);
                    self.counters.rejected.fetch_add(rejected, Ordering::Relaxed);
                    return true;
                }
                Outcome::Permanent { reason } => {
                    tracing::warn!(%reason, events = batch_len, "Event batch refused; dropping it");
                    self.counters.failed.fetch_add(batch_len as u64, Ordering::Relaxed);
                    return false;
                }
                Outcome::Retry { reason, retry_after } => {
                    if attempt == self.config.max_attempts {
                        tracing::warn!(%reason, events = batch_len, attempts = attempt, "Event batch undeliverable; dropping it");
                        break;
                    }
                    let mut delay = backoff(attempt, self.config.initial_backoff, self.config.max_backoff, retry_after);
                    if let Some(left) = remaining(deadline) {
                        if left <= delay {
                            break;
                        }
                        delay = delay.min(left);
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
        self.counters.failed.fetch_add(batch_len as u64, Ordering::Relaxed);
        false
    }
}
