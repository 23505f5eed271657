//! The product-event client: `track`, `journey_step` and `error` with session, user and trace
//! context taken from the current span, delivered in batches to Sightline `/v1/events` (or any
//! ProductGraph-compatible endpoint, schema in plexusone/productgraph `pkg/schema/event.go`).
//!
//! Enqueueing never blocks and never fails the caller: events go into a bounded queue and a
//! full queue drops the new event and counts it ([`EventStats::dropped_queue_full`]). A worker
//! thread with its own single-threaded runtime batches by size and interval, gzips, and
//! retries (see [`retry`]). [`EventClient::shutdown`] delivers everything queued or gives up
//! at its deadline.

pub mod config;
pub mod retry;
mod worker;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use serde_json::Value;
pub use sightline_model::event::EventType;

pub use config::{ConfigError, EventClientConfig};

/// One product event before the client fills in ids, time and context.
#[derive(Debug, Clone)]
pub struct Event {
    pub(crate) event_type: EventType,
    pub(crate) name: Cow<'static, str>,
    pub(crate) session_id: Option<String>,
    pub(crate) user_id: Option<String>,
    /// Schema properties by their dotted wire names (`page.path`, `journey.id`, ...).
    pub(crate) properties: Vec<(Cow<'static, str>, Value)>,
    pub(crate) metadata: Option<serde_json::Map<String, Value>>,
}

impl Event {
    /// An event of `event_type` named `name` (`event.name`).
    pub fn new(event_type: EventType, name: impl Into<Cow<'static, str>>) -> Self {
        Event { event_type, name: name.into(), session_id: None, user_id: None, properties: Vec::new(), metadata: None }
    }

    /// A `custom` event.
    pub fn custom(name: impl Into<Cow<'static, str>>) -> Self {
        Self::new(EventType::Custom, name)
    }

    /// Sets a schema property by its wire name, e.g. `("api.status_code", 200)`.
    pub fn property(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// Adds an entry to the free-form `metadata` object.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.get_or_insert_with(serde_json::Map::new).insert(key.into(), value.into());
        self
    }

    /// Overrides the session (else the current request's `session.id`).
    pub fn session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Overrides the user (else the current request's `user.id`).
    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }
}

/// An event with everything the worker needs to serialize it.
#[derive(Debug)]
pub(crate) struct QueuedEvent {
    pub(crate) event: Event,
    pub(crate) event_id: uuid::Uuid,
    pub(crate) timestamp: SystemTime,
    pub(crate) trace: Option<(TraceId, SpanId)>,
}

/// Counters of the client's life so far.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    enqueued: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_closed: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
}

/// A snapshot of [`EventClient`] counters, events unless named otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventStats {
    /// Accepted into the queue.
    pub enqueued: u64,
    /// Dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Dropped because the client was shut down.
    pub dropped_closed: u64,
    /// Accepted by the server.
    pub accepted: u64,
    /// Rejected by the server as invalid (its `rejected` count).
    pub rejected: u64,
    /// Given up on after the last attempt, a permanent error, or the shutdown deadline.
    pub failed: u64,
    /// HTTP requests made.
    pub requests: u64,
    /// Of which retries.
    pub retries: u64,
}

/// Handle to the client; clones share one queue and worker.
#[derive(Debug, Clone)]
pub struct EventClient {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    queue: tokio::sync::mpsc::Sender<QueuedEvent>,
    control: tokio::sync::mpsc::UnboundedSender<worker::Control>,
    counters: Arc<Counters>,
    /// Used when no session is known: the ProductGraph schema requires `session.id`, so
    /// events outside any request share this per-client id (`sess-<base36 ms>-<8 chars>`, the
    /// ProductGraph web adapter's shape).
    fallback_session_id: String,
}

/// Why an explicit flush or shutdown did not complete.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryError {
    /// The deadline passed with events still undelivered.
    #[error("deadline of {0:?} passed before every queued event was delivered")]
    DeadlineExceeded(Duration),
    /// The worker is gone (already shut down).
    #[error("the event client is already shut down")]
    Closed,
}

fn fallback_session_id() -> String {
    let millis =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|elapsed| elapsed.as_millis()).unwrap_or(0);
    let mut base36 = String::new();
    let mut rest = millis;
    loop {
        let digit = (rest % 36) as u32;
        base36.insert(0, char::from_digit(digit, 36).unwrap_or('0'));
        rest /= 36;
        if rest == 0 {
            break;
        }
    }
    let suffix: String = uuid::Uuid::new_v4().simple().to_string().chars().take(8).collect();
    format!("sess-{base36}-{suffix}")
}

impl EventClient {
    /// Starts the client's worker thread. Fails only on an invalid configuration or when the
    /// OS refuses a thread.
    pub fn new(config: EventClientConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let (queue, queue_rx) = tokio::sync::mpsc::channel(config.queue_capacity);
        let (control, control_rx) = tokio::sync::mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let fallback_session_id = worker::spawn(config, queue_rx, control_rx, counters.clone())?;
        Ok(EventClient { inner: Arc::new(ClientInner { queue, control, counters, fallback_session_id }) })
    }

    /// The session id used for events outside any session.
    pub fn fallback_session_id(&self) -> &str {
        &self.inner.fallback_session_id
    }

    /// Enqueues `event` without blocking; session, user and trace context come from the current
    /// span unless the event sets them. Returns false when the event was dropped (queue full
    /// or client shut down; both are counted).
    pub fn track(&self, event: Event) -> bool {
        let cx = crate::context::current_context();
        let mut event = event;
        if event.session_id.is_none() || event.user_id.is_none() {
            let identity = crate::context::RequestIdentity::from_context(&cx);
            if event.session_id.is_none() {
                event.session_id = identity.session_id;
            }
            if event.user_id.is_none() {
                event.user_id = identity.user_id;
            }
        }
        let span = cx.span();
        let span_context = span.span_context();
        let trace = span_context.is_valid().then(|| (span_context.trace_id(), span_context.span_id()));
        let queued = QueuedEvent {
            event,
            event_id: uuid::Builder::from_random_bytes(rand::random()).into_uuid(),
            timestamp: SystemTime::now(),
            trace,
        };
        match self.inner.queue.try_send(queued) {
            Ok(()) => {
                self.inner.counters.enqueued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                self.inner.counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                self.inner.counters.dropped_closed.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// A `journey.step` event: `journey.id`, `journey.step.id`, `journey.step.name`.
    pub fn journey_step(&self, journey: &str, step_id: &str, name: &str) -> bool {
        self.track(
            Event::new(EventType::JourneyStep, name.to_owned())
                .property("journey.id", journey)
                .property("journey.step.id", step_id)
                .property("journey.step.name", name),
        )
    }

    /// An `error` event for `error` (`error.type` = its Rust type, `error.message`, and the
    /// `source()` chain as `error.stack`); it is also recorded on the current span as an
    /// `exception` event with status ERROR, so the trace shows it.
    pub fn error<E: std::error::Error + ?Sized>(&self, error: &E) -> bool {
        let error_type = std::any::type_name::<E>();
        let message = error.to_string();
        let mut chain = Vec::new();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push(format!("caused by: {cause}"));
            source = cause.source();
        }
        crate::middleware::record_exception_on_current_span(error_type, &message);
        let mut event = Event::new(EventType::Error, error_type)
            .property("error.type", error_type)
            .property("error.message", message);
        if !chain.is_empty() {
            event = event.property("error.stack", chain.join("\n"));
        }
        self.track(event)
    }

    /// The counters so far.
    pub fn stats(&self) -> EventStats {
        let counters = &self.inner.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        EventStats {
            enqueued: load(&counters.enqueued),
            dropped_queue_full: load(&counters.dropped_queue_full),
            dropped_closed: load(&counters.dropped_closed),
            accepted: load(&counters.accepted),
            rejected: load(&counters.rejected),
            failed: load(&counters.failed),
            requests: load(&counters.requests),
            retries: load(&counters.retries),
        }
    }

    /// Sends everything queued now and waits until it is delivered or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), DeliveryError> {
        self.request(timeout, false)
    }

    /// Stops accepting events, delivers everything queued, and stops the worker; returns by
    /// `timeout` at the latest (events still undelivered then are counted as failed).
    pub fn shutdown(&self, timeout: Duration) -> Result<(), DeliveryError> {
        self.request(timeout, true)
    }

    fn request(&self, timeout: Duration, stop: bool) -> Result<(), DeliveryError> {
        let deadline = std::time::Instant::now() + timeout;
        let (done, done_rx) = std::sync::mpsc::sync_channel(1);
        let command = worker::Control { deadline, stop, done };
        self.inner.control.send(command).map_err(|_| DeliveryError::Closed)?;
        match done_rx.recv_timeout(timeout) {
            Ok(true) => Ok(()),
            Ok(false) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(DeliveryError::DeadlineExceeded(timeout))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(DeliveryError::Closed),
        }
    }
}

/// The process-wide client behind the free functions ([`crate::init`] sets it).
static GLOBAL: RwLock<Option<EventClient>> = RwLock::new(None);

/// Makes `client` the one the free functions use; returns the previous one.
pub fn set_global(client: Option<EventClient>) -> Option<EventClient> {
    match GLOBAL.write() {
        Ok(mut global) => std::mem::replace(&mut *global, client),
        Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), client),
    }
}

/// The global client, when one is set.
pub fn global() -> Option<EventClient> {
    GLOBAL.read().ok().and_then(|global| global.clone())
}

fn with_global(send: impl FnOnce(&EventClient) -> bool) -> bool {
    match GLOBAL.read() {
        Ok(global) => global.as_ref().is_some_and(send),
        Err(_) => false,
    }
}

/// [`EventClient::track`] on the global client; false when none is set.
pub fn track(event: Event) -> bool {
    with_global(|client| client.track(event))
}

/// [`EventClient::journey_step`] on the global client.
pub fn journey_step(journey: &str, step_id: &str, name: &str) -> bool {
    with_global(|client| client.journey_step(journey, step_id, name))
}

/// [`EventClient::error`] on the global client.
pub fn error<E: std::error::Error + ?Sized>(error: &E) -> bool {
    with_global(|client| client.error(error))
}
