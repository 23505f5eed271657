//! Session correlation types: per-batch session deltas (derived at ingest, merged into the stored
//! session summary at commit), the stored summary, the merged timeline and the correlation rate.
//!
//! A session is keyed by `(project, session.id)`. Deltas are aggregated in Rust per batch, so
//! each session costs one upsert per batch however many items it has; [`SessionDelta::merge`]
//! is the same merge the store's upsert performs, so merging deltas in any order (batches arrive
//! out of order) gives the same summary.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};
use sightline_model::{EventType, ProductEvent, SpanId, TraceId};

/// One nanosecond day, the bucket width of the correlation counters.
pub const DAY_NANOS: u64 = 86_400 * 1_000_000_000;
/// Most entries one timeline page returns.
pub const MAX_TIMELINE_ENTRIES: usize = 5_000;

/// Where a user agent came from; a browser's own (product events) beats one recorded on a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UserAgentSource {
    /// `user_agent.original` / `http.user_agent` of a span.
    Span = 1,
    /// `metadata.user_agent` / `metadata.userAgent` of a product event.
    Event = 2,
}

/// What a session item is in the side table `session_items` and the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionItemKind {
    /// A backend request: a SERVER or root span carrying the session.
    Request = 1,
    /// A log record carrying the session.
    Log = 2,
    /// An error event (from a span, log or product event) carrying the session.
    Error = 3,
}

impl SessionItemKind {
    /// The stored code (also the timeline's order among entries of the same time; product events
    /// sort first with code 0).
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The kind of a stored code.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(SessionItemKind::Request),
            2 => Some(SessionItemKind::Log),
            3 => Some(SessionItemKind::Error),
            _ => None,
        }
    }
}

/// An item of a batch that belongs to a session and gets an entry in the timeline side table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionItem {
    /// Request, log or error.
    pub kind: SessionItemKind,
    /// Index of the item among the batch's items of that kind, in iteration order: spans
    /// (resource → scope → span) for requests, log records for logs, [`super::WriteBatch::errors`]
    /// for errors. The writer turns it into the stored row id.
    pub position: usize,
    /// Time the timeline orders by (span start, log time, error time), ns.
    pub timestamp_unix_nano: u64,
}

/// A page seen at a time, for entry and exit pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMark {
    /// When, ns.
    pub timestamp_unix_nano: u64,
    /// Page path (`page.path`, else the path of `page.url`).
    pub path: String,
}

/// What one batch adds to one session's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionDelta {
    /// `session.id`.
    pub session_id: String,
    /// Earliest item time, ns.
    pub first_seen_unix_nano: u64,
    /// Latest item time (span ends included), ns.
    pub last_seen_unix_nano: u64,
    /// First user id seen (`user.id`, `enduser.id`).
    pub user_id: Option<String>,
    /// The earliest `page.view`.
    pub entry_page: Option<PageMark>,
    /// The latest `page.view` / `page.leave`.
    pub exit_page: Option<PageMark>,
    /// `page.view` events.
    pub page_views: u64,
    /// Product events of any type.
    pub events: u64,
    /// Error events (span exceptions, ERROR spans, error logs, `error` product events).
    pub errors: u64,
    /// SERVER spans.
    pub requests: u64,
    /// Log records.
    pub logs: u64,
    /// Services of the spans, logs and exemplars carrying the session, distinct, sorted.
    pub services: Vec<String>,
    /// The user agent and where it came from.
    pub user_agent: Option<(UserAgentSource, String)>,
    /// Items to index for the timeline.
    pub items: Vec<SessionItem>,
}

impl SessionDelta {
    /// An empty delta for a session first seen at `timestamp_unix_nano`.
    pub fn new(session_id: impl Into<String>, timestamp_unix_nano: u64) -> Self {
        Self {
            session_id: session_id.into(),
            first_seen_unix_nano: timestamp_unix_nano,
            last_seen_unix_nano: timestamp_unix_nano,
            user_id: None,
            entry_page: None,
            exit_page: None,
            page_views: 0,
            events: 0,
            errors: 0,
            requests: 0,
            logs: 0,
            services: Vec::new(),
            user_agent: None,
            items: Vec::new(),
        }
    }

    /// Widens the seen interval to include `[start, end]`.
    pub fn touch(&mut self, start_unix_nano: u64, end_unix_nano: u64) {
        self.first_seen_unix_nano = self.first_seen_unix_nano.min(start_unix_nano);
        self.last_seen_unix_nano = self.last_seen_unix_nano.max(end_unix_nano.max(start_unix_nano));
    }

    /// Adds a service (kept distinct and sorted, the order the stored list has).
    pub fn add_service(&mut self, service: &str) {
        if let Err(index) = self.services.binary_search_by(|known| known.as_str().cmp(service)) {
            self.services.insert(index, service.to_owned());
        }
    }

    /// Keeps the first user id seen.
    pub fn offer_user(&mut self, user_id: Option<&str>) {
        if self.user_id.is_none() {
            self.user_id = user_id.filter(|user| !user.is_empty()).map(str::to_owned);
        }
    }

    /// Keeps the first user agent of the best source.
    pub fn offer_user_agent(&mut self, source: UserAgentSource, user_agent: Option<&str>) {
        let Some(user_agent) = user_agent.filter(|text| !text.is_empty()) else { return };
        if self.user_agent.as_ref().is_none_or(|(known, _)| source > *known) {
            self.user_agent = Some((source, user_agent.to_owned()));
        }
    }

    /// A `page.view` at `timestamp_unix_nano` is the entry page when it is the earliest.
    pub fn offer_entry_page(&mut self, timestamp_unix_nano: u64, path: &str) {
        if self.entry_page.as_ref().is_none_or(|entry| timestamp_unix_nano < entry.timestamp_unix_nano) {
            self.entry_page = Some(PageMark { timestamp_unix_nano, path: path.to_owned() });
        }
    }

    /// A `page.view` / `page.leave` is the exit page when it is the latest (a later arrival wins
    /// a tie).
    pub fn offer_exit_page(&mut self, timestamp_unix_nano: u64, path: &str) {
        if self.exit_page.as_ref().is_none_or(|exit| timestamp_unix_nano >= exit.timestamp_unix_nano) {
            self.exit_page = Some(PageMark { timestamp_unix_nano, path: path.to_owned() });
        }
    }

    /// Adds one product event of this session.
    pub fn add_event(&mut self, event: &ProductEvent) {
        self.touch(event.timestamp_unix_nano, event.timestamp_unix_nano);
        self.events += 1;
        self.offer_user(event.user_id.as_deref());
        let user_agent = ["user_agent", "userAgent", "user_agent.original"]
            .iter()
            .find_map(|key| event.metadata.get(*key).and_then(Value::as_str));
        self.offer_user_agent(UserAgentSource::Event, user_agent);
        let page = page_path(&event.properties);
        match event.event_type {
            EventType::PageView => {
                self.page_views += 1;
                if let Some(page) = &page {
                    self.offer_entry_page(event.timestamp_unix_nano, page);
                    self.offer_exit_page(event.timestamp_unix_nano, page);
                }
            }
            EventType::PageLeave => {
                if let Some(page) = &page {
                    self.offer_exit_page(event.timestamp_unix_nano, page);
                }
            }
            _ => {}
        }
    }

    /// Merges another delta of the same session (what the store's upsert does with a stored
    /// summary): counts add up, times widen, the earliest entry and latest exit page win, the
    /// first user id stays, the best user agent source wins, services unite, items append.
    pub fn merge(&mut self, other: SessionDelta) {
        self.touch(other.first_seen_unix_nano, other.last_seen_unix_nano);
        self.offer_user(other.user_id.as_deref());
        if let Some(entry) = other.entry_page {
            self.offer_entry_page(entry.timestamp_unix_nano, &entry.path);
        }
        if let Some(exit) = other.exit_page {
            self.offer_exit_page(exit.timestamp_unix_nano, &exit.path);
        }
        self.page_views += other.page_views;
        self.events += other.events;
        self.errors += other.errors;
        self.requests += other.requests;
        self.logs += other.logs;
        for service in &other.services {
            self.add_service(service);
        }
        if let Some((source, user_agent)) = other.user_agent {
            self.offer_user_agent(source, Some(&user_agent));
        }
        self.items.extend(other.items);
    }
}

/// The page path of a product event: `page.path`, else the path of `page.url`.
pub fn page_path(properties: &Map<String, Value>) -> Option<String> {
    if let Some(path) = properties.get("page.path").and_then(Value::as_str).filter(|path| !path.is_empty()) {
        return Some(path.to_owned());
    }
    let url = properties.get("page.url").and_then(Value::as_str)?;
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_start = after_scheme.find('/')?;
    let path = &after_scheme[path_start..];
    let end = path.find(['?', '#']).unwrap_or(path.len());
    Some(path[..end].to_owned())
}

/// Server spans of one day and how many of them carried a session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationDelta {
    /// Start of the UTC day (span start), ns.
    pub day_unix_nano: u64,
    /// SERVER spans.
    pub server_spans: u64,
    /// SERVER spans with a session id.
    pub with_session: u64,
}

/// Session facts of one batch: one delta per session, plus correlation counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionBatch {
    /// One delta per session, in order of first appearance.
    pub deltas: Vec<SessionDelta>,
    /// Correlation counters per day.
    pub correlation: Vec<CorrelationDelta>,
}

impl SessionBatch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty() && self.correlation.is_empty()
    }
}

/// Builds a [`SessionBatch`] with one delta per session.
#[derive(Debug, Default)]
pub struct SessionAccumulator {
    index_by_session: HashMap<String, usize>,
    batch: SessionBatch,
}

impl SessionAccumulator {
    /// Continues from a batch built earlier (the pipeline's deltas, completed at commit).
    pub fn from_batch(batch: SessionBatch) -> Self {
        let index_by_session =
            batch.deltas.iter().enumerate().map(|(index, delta)| (delta.session_id.clone(), index)).collect();
        Self { index_by_session, batch }
    }

    /// The delta of `session_id`, created at `timestamp_unix_nano` when new.
    pub fn session(&mut self, session_id: &str, timestamp_unix_nano: u64) -> &mut SessionDelta {
        let index = match self.index_by_session.get(session_id) {
            Some(index) => *index,
            None => {
                self.batch.deltas.push(SessionDelta::new(session_id, timestamp_unix_nano));
                self.index_by_session.insert(session_id.to_owned(), self.batch.deltas.len() - 1);
                self.batch.deltas.len() - 1
            }
        };
        &mut self.batch.deltas[index]
    }

    /// Counts a SERVER span starting at `start_unix_nano`, with or without a session.
    pub fn count_server_span(&mut self, start_unix_nano: u64, with_session: bool) {
        let day_unix_nano = start_unix_nano - start_unix_nano % DAY_NANOS;
        let counter = match self.batch.correlation.iter_mut().find(|counter| counter.day_unix_nano == day_unix_nano) {
            Some(counter) => counter,
            None => {
                self.batch.correlation.push(CorrelationDelta { day_unix_nano, server_spans: 0, with_session: 0 });
                self.batch.correlation.last_mut().expect("just pushed")
            }
        };
        counter.server_spans += 1;
        counter.with_session += u64::from(with_session);
    }

    /// Adds a product event (events with an empty session id are skipped).
    pub fn add_event(&mut self, event: &ProductEvent) {
        if event.session_id.is_empty() {
            return;
        }
        self.session(&event.session_id, event.timestamp_unix_nano).add_event(event);
    }

    /// The batch.
    pub fn finish(self) -> SessionBatch {
        self.batch
    }
}

/// Session list filters (`GET /api/v1/projects/{p}/sessions`).
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    /// Only sessions of this user id.
    pub user: Option<String>,
    /// Session start ≥ this (ns).
    pub from_unix_nano: Option<u64>,
    /// Session start ≤ this (ns).
    pub to_unix_nano: Option<u64>,
    /// `Some(true)`: only sessions with errors; `Some(false)`: only those without.
    pub has_errors: Option<bool>,
    /// Page size (1..=1000).
    pub limit: usize,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
}

/// A stored session summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    /// `session.id`.
    pub session_id: String,
    /// Earliest item time, ns.
    pub first_seen_unix_nano: u64,
    /// Latest item time, ns.
    pub last_seen_unix_nano: u64,
    /// `last_seen - first_seen`, ns.
    pub duration_nanos: u64,
    /// First user id seen.
    pub user_id: Option<String>,
    /// Path of the earliest `page.view`.
    pub entry_page: Option<String>,
    /// Path of the latest `page.view` / `page.leave`.
    pub exit_page: Option<String>,
    /// `page.view` events.
    pub page_views: u64,
    /// Product events.
    pub events: u64,
    /// Error events.
    pub errors: u64,
    /// Backend requests (SERVER spans).
    pub requests: u64,
    /// Log records.
    pub logs: u64,
    /// Services touched, sorted.
    pub services: Vec<String>,
    /// User agent (the browser's when a product event sent one).
    pub user_agent: Option<String>,
}

/// Timeline paging: entries after the cursor, oldest first.
#[derive(Debug, Clone)]
pub struct TimelineQuery {
    /// Page size (1..=[`MAX_TIMELINE_ENTRIES`]).
    pub limit: usize,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
}

/// One entry of a session timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEntry {
    /// A frontend product event.
    Event {
        /// Event time, ns.
        time_unix_nano: u64,
        /// `event_id`.
        event_id: String,
        /// `event.type`.
        event_type: String,
        /// `event.name`.
        name: String,
        /// Page path.
        page: Option<String>,
        /// Properties (dotted schema fields).
        properties: Map<String, Value>,
    },
    /// A backend request: a SERVER or root span.
    Request {
        /// Span start, ns.
        time_unix_nano: u64,
        /// Span end, ns.
        end_time_unix_nano: u64,
        /// Span name.
        name: String,
        /// `service.name`.
        service: String,
        /// `server`, `internal`, `client`, `producer`, `consumer` or `unspecified`.
        span_kind: &'static str,
        /// Duration, ns.
        duration_nanos: u64,
        /// `unset`, `ok` or `error`.
        status: &'static str,
        /// Status message (with `error`).
        status_message: String,
        /// `http.request.method` (or `http.method`).
        http_method: Option<String>,
        /// `http.route`.
        http_route: Option<String>,
        /// `http.response.status_code` (or `http.status_code`).
        http_status_code: Option<i64>,
        /// The trace.
        trace_id: TraceId,
        /// The span.
        span_id: SpanId,
    },
    /// A log record.
    Log {
        /// Record time, ns.
        time_unix_nano: u64,
        /// OTLP severity number.
        severity_number: i32,
        /// Severity text.
        severity_text: String,
        /// Body (a string body as text, other bodies as JSON).
        body: Value,
        /// `service.name`.
        service: String,
        /// Trace of the record.
        trace_id: Option<TraceId>,
        /// Span of the record.
        span_id: Option<SpanId>,
    },
    /// An error event and its issue.
    Error {
        /// Error time, ns.
        time_unix_nano: u64,
        /// The issue it was grouped into.
        issue_id: i64,
        /// Issue title.
        title: String,
        /// Level.
        level: String,
        /// Error event id.
        event_id: String,
        /// `service.name` (the product id for browser errors).
        service: String,
    },
}

impl TimelineEntry {
    /// The entry's time, ns.
    pub fn time_unix_nano(&self) -> u64 {
        match self {
            TimelineEntry::Event { time_unix_nano, .. }
            | TimelineEntry::Request { time_unix_nano, .. }
            | TimelineEntry::Log { time_unix_nano, .. }
            | TimelineEntry::Error { time_unix_nano, .. } => *time_unix_nano,
        }
    }
}

/// One session: its summary and a page of its timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionDetail {
    /// The summary.
    pub summary: SessionSummary,
    /// Timeline entries in time order.
    pub timeline: Vec<TimelineEntry>,
    /// Cursor for the next timeline page.
    pub next_cursor: Option<String>,
}

/// Share of SERVER spans carrying a session id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CorrelationRate {
    /// SERVER spans.
    pub server_spans: u64,
    /// SERVER spans with a session id.
    pub with_session: u64,
    /// `with_session / server_spans`; `None` without server spans.
    pub rate: Option<f64>,
}

impl CorrelationRate {
    /// The rate of the counters.
    pub fn new(server_spans: u64, with_session: u64) -> Self {
        let rate = (server_spans > 0).then(|| with_session as f64 / server_spans as f64);
        Self { server_spans, with_session, rate }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(event_type: EventType, timestamp_unix_nano: u64, path: &str) -> ProductEvent {
        let mut properties = Map::new();
        properties.insert("page.path".into(), json!(path));
        ProductEvent {
            event_id: format!("e-{timestamp_unix_nano}"),
            product_id: "shop".into(),
            session_id: "s".into(),
            user_id: None,
            org_id: None,
            event_type,
            event_name: String::new(),
            timestamp_unix_nano,
            timestamp_defaulted: false,
            sequence: None,
            properties,
            metadata: Map::new(),
        }
    }

    fn delta_of(events: &[ProductEvent]) -> SessionDelta {
        let mut accumulator = SessionAccumulator::default();
        for event in events {
            accumulator.add_event(event);
        }
        accumulator.finish().deltas.remove(0)
    }

    #[test]
    fn entry_and_exit_pages_follow_time_not_arrival() {
        let early = [event(EventType::PageView, 100, "/home"), event(EventType::PageView, 200, "/cart")];
        let late = [event(EventType::PageView, 300, "/checkout"), event(EventType::PageLeave, 400, "/checkout/done")];
        let mut in_order = delta_of(&early);
        in_order.merge(delta_of(&late));
        let mut reversed = delta_of(&late);
        reversed.merge(delta_of(&early));
        for merged in [&in_order, &reversed] {
            assert_eq!(merged.entry_page.as_ref().map(|page| page.path.as_str()), Some("/home"));
            assert_eq!(merged.exit_page.as_ref().map(|page| page.path.as_str()), Some("/checkout/done"));
            assert_eq!((merged.first_seen_unix_nano, merged.last_seen_unix_nano), (100, 400));
            assert_eq!((merged.page_views, merged.events), (3, 4));
        }
    }

    #[test]
    fn merge_adds_counts_unites_services_and_prefers_the_browser_user_agent() {
        let mut backend = SessionDelta::new("s", 50);
        backend.requests = 2;
        backend.errors = 1;
        backend.add_service("orders");
        backend.add_service("api");
        backend.offer_user(Some("u1"));
        backend.offer_user_agent(UserAgentSource::Span, Some("curl/8"));
        let mut frontend = SessionDelta::new("s", 40);
        frontend.events = 3;
        frontend.add_service("api");
        frontend.offer_user(Some("u2"));
        frontend.offer_user_agent(UserAgentSource::Event, Some("Mozilla/5.0"));
        backend.merge(frontend);
        assert_eq!(backend.services, ["api", "orders"]);
        assert_eq!((backend.requests, backend.errors, backend.events), (2, 1, 3));
        assert_eq!(backend.user_id.as_deref(), Some("u1"), "the first user id stays");
        assert_eq!(backend.user_agent, Some((UserAgentSource::Event, "Mozilla/5.0".into())));
        assert_eq!(backend.first_seen_unix_nano, 40);
        backend.offer_user_agent(UserAgentSource::Span, Some("python-requests"));
        assert_eq!(backend.user_agent.map(|(_, agent)| agent).as_deref(), Some("Mozilla/5.0"));
    }

    #[test]
    fn page_path_falls_back_to_the_url() {
        let mut properties = Map::new();
        properties.insert("page.url".into(), json!("https://shop.example.com/cart?step=2#top"));
        assert_eq!(page_path(&properties).as_deref(), Some("/cart"));
        properties.insert("page.path".into(), json!("/basket"));
        assert_eq!(page_path(&properties).as_deref(), Some("/basket"));
        assert_eq!(page_path(&Map::new()), None);
    }

    #[test]
    fn correlation_counts_per_day() {
        let mut accumulator = SessionAccumulator::default();
        accumulator.count_server_span(DAY_NANOS + 5, true);
        accumulator.count_server_span(DAY_NANOS + 9, false);
        accumulator.count_server_span(3 * DAY_NANOS, true);
        let batch = accumulator.finish();
        assert_eq!(
            batch.correlation,
            [
                CorrelationDelta { day_unix_nano: DAY_NANOS, server_spans: 2, with_session: 1 },
                CorrelationDelta { day_unix_nano: 3 * DAY_NANOS, server_spans: 1, with_session: 1 },
            ]
        );
        assert_eq!(CorrelationRate::new(4, 1).rate, Some(0.25));
        assert_eq!(CorrelationRate::new(0, 0).rate, None);
    }
}
