//! Types of the error-tracking part of the store: error events as derived at ingest, issues
//! (Sentry's error groups), their status and queries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sightline_grouping::{Fingerprint, ParsedException, Platform};
use sightline_model::{SpanId, TraceId};

/// Where an error event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorSource {
    /// A span event named `exception` (semconv "Recording exceptions").
    SpanException,
    /// A span with status ERROR and no exception event.
    SpanStatus,
    /// A log record with `exception.*` attributes or severity ≥ ERROR.
    Log,
    /// A product event of type `error`.
    ProductEvent,
}

/// Severity of an error event, Sentry's level names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// OTel severity WARN (13–16).
    Warning,
    /// OTel severity ERROR (17–20), span exceptions, ERROR spans.
    Error,
    /// OTel severity FATAL (21–24).
    Fatal,
}

impl Level {
    /// `warning`, `error` or `fatal`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// Parses a level name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "warning" | "warn" => Some(Level::Warning),
            "error" => Some(Level::Error),
            "fatal" => Some(Level::Fatal),
            _ => None,
        }
    }
}

/// The context an error event keeps (issue 3, "Error events").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorContext {
    /// `service.name`.
    pub service: String,
    /// `deployment.environment.name` (or the older `deployment.environment`).
    pub environment: Option<String>,
    /// `service.version`.
    pub release: Option<String>,
    /// Trace of the failing operation.
    pub trace_id: Option<TraceId>,
    /// Span of the failing operation.
    pub span_id: Option<SpanId>,
    /// `session.id`.
    pub session_id: Option<String>,
    /// `user.id` (or `enduser.id`).
    pub user_id: Option<String>,
    /// `url.full` / `http.url` / `url.path`.
    pub url: Option<String>,
    /// `http.route`.
    pub route: Option<String>,
    /// `user_agent.original` as sent.
    pub user_agent: Option<String>,
    /// Parsed user agent: browser name and version.
    pub browser: Option<String>,
    /// Parsed user agent: operating system.
    pub os: Option<String>,
    /// Parsed user agent: device category (pc, smartphone, mobilephone, crawler, ...).
    pub device: Option<String>,
}

/// One error occurrence, derived at ingest and fingerprinted, ready to be grouped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// Unique id (32 hex characters), Sentry's `event_id`.
    pub event_id: String,
    /// When the error happened, ns since epoch.
    pub timestamp_unix_nano: u64,
    /// Where it came from.
    pub source: ErrorSource,
    /// Severity.
    pub level: Level,
    /// Runtime of the sender (from `telemetry.sdk.language` or the stack trace).
    pub platform: Platform,
    /// `exception.type` (empty for plain error logs).
    pub exception_type: String,
    /// `exception.message`, or the log body / span status message.
    pub message: String,
    /// Parsed stack trace: the exception and its causes, frames outermost first.
    pub exceptions: Vec<ParsedException>,
    /// `exception.stacktrace` as sent (bounded), for display.
    pub raw_stacktrace: Option<String>,
    /// `exception.escaped` when given.
    pub escaped: Option<bool>,
    /// Context.
    pub context: ErrorContext,
    /// Tags for breakdowns (environment, release, service, browser, os, device, route, ...).
    pub tags: BTreeMap<String, String>,
    /// Grouping result.
    pub fingerprint: Fingerprint,
    /// Issue title: "Type: message" (message normalized for plain logs).
    pub title: String,
    /// Sentry's culprit: where it happened ("module in function").
    pub culprit: Option<String>,
    /// True when at least one frame was translated with an uploaded source map (JavaScript);
    /// the minified trace stays in `raw_stacktrace`.
    #[serde(default)]
    pub symbolicated: bool,
    /// Original source lines around symbolicated frames, from the maps' `sourcesContent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_context: Vec<SourceContext>,
}

/// zstd level for stored error event bodies: the fastest standard level. Bodies are JSON
/// with many repeated keys and paths and shrink ≈ 5× (7.7 KB → ≈ 1.5 KB in `bench errors`),
/// and the bytes written, not the CPU, bound the single writer (BENCHMARKS.md).
const BODY_ZSTD_LEVEL: i32 = 1;

thread_local! {
    /// One compression context per thread: creating one per body costs more than compressing.
    static BODY_COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

impl ErrorEvent {
    /// The event as stored: zstd-compressed JSON. Errors when serialization or compression
    /// fails (neither happens for well-formed events; the caller reports it).
    pub fn to_stored_body(&self) -> Result<Vec<u8>, String> {
        let json = serde_json::to_vec(self).map_err(|error| format!("serializing an error event: {error}"))?;
        BODY_COMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Compressor::new(BODY_ZSTD_LEVEL).map_err(|error| error.to_string())?);
            }
            let compressor = slot.as_mut().ok_or("no compressor")?;
            compressor.compress(&json).map_err(|error| format!("compressing an error event: {error}"))
        })
    }

    /// Reads a stored body: zstd-compressed JSON ([`ErrorEvent::to_stored_body`]), or plain JSON
    /// text as bodies were stored before compression. `None` when it does not decode.
    pub fn from_stored_body(body: &[u8]) -> Option<Self> {
        // zstd frames start with the magic number 0xFD2FB528 (RFC 8878 §3.1.1); JSON never
        // starts with 0x28.
        if body.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            let json = zstd::stream::decode_all(body).ok()?;
            return serde_json::from_slice(&json).ok();
        }
        serde_json::from_slice(body).ok()
    }
}

/// Source lines around one frame (Sentry's `pre_context` / `context_line` / `post_context`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceContext {
    /// Index into [`ErrorEvent::exceptions`].
    pub exception_index: usize,
    /// Index into that exception's `frames` (outermost first).
    pub frame_index: usize,
    /// Up to 3 lines before the frame's line, oldest first.
    pub pre_lines: Vec<String>,
    /// The frame's line (long lines are cut around the column, marked `{snip}`).
    pub line: String,
    /// Up to 3 lines after the frame's line.
    pub post_lines: Vec<String>,
}

/// Issue status (Sentry: unresolved, resolved, ignored; "resolved in release" is resolved
/// with a release).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueStatus {
    /// Open.
    Unresolved,
    /// Fixed; a later event regresses it.
    Resolved,
    /// Fixed in a release; events from older releases do not regress it.
    ResolvedInRelease,
    /// Muted, optionally until a number of further events or a time.
    Ignored,
}

impl IssueStatus {
    /// Stored / API name.
    pub fn as_str(&self) -> &'static str {
        match self {
            IssueStatus::Unresolved => "unresolved",
            IssueStatus::Resolved => "resolved",
            IssueStatus::ResolvedInRelease => "resolved_in_release",
            IssueStatus::Ignored => "ignored",
        }
    }

    /// Parses a stored / API name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "unresolved" => Some(IssueStatus::Unresolved),
            "resolved" => Some(IssueStatus::Resolved),
            "resolved_in_release" => Some(IssueStatus::ResolvedInRelease),
            "ignored" => Some(IssueStatus::Ignored),
            _ => None,
        }
    }
}

/// A status change requested through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    /// New status.
    pub status: IssueStatus,
    /// For `resolved_in_release`: the release that fixes it (default: the latest seen).
    pub release: Option<String>,
    /// For `ignored`: reopen after this many more events.
    pub ignore_for_events: Option<u64>,
    /// For `ignored`: reopen at this time (ns since epoch).
    pub ignore_until_unix_nano: Option<u64>,
    /// Who asked (key prefix), for the history.
    pub actor: String,
}

/// An issue: a group of error events with the same fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    /// Numeric id.
    pub id: i64,
    /// Short title: "Type: message".
    pub title: String,
    /// Where it happens.
    pub culprit: Option<String>,
    /// Exception type of the latest event.
    pub exception_type: String,
    /// Highest level seen.
    pub level: Level,
    /// Platform of the latest event.
    pub platform: Platform,
    /// Status.
    pub status: IssueStatus,
    /// `new`, `ongoing`, `regressed`, `escalating` (unignored) or `null` when not unresolved.
    pub substatus: Option<String>,
    /// First event, ns since epoch.
    pub first_seen_unix_nano: u64,
    /// Latest event, ns since epoch.
    pub last_seen_unix_nano: u64,
    /// Events grouped here.
    pub event_count: u64,
    /// Distinct `user.id` values.
    pub user_count: u64,
    /// Distinct `session.id` values.
    pub session_count: u64,
    /// Release of the latest event.
    pub last_release: Option<String>,
    /// Release that resolves it (resolved states).
    pub resolved_in_release: Option<String>,
    /// When it was resolved, ns since epoch.
    pub resolved_at_unix_nano: Option<u64>,
    /// Ignored until this many events in total.
    pub ignore_until_event_count: Option<u64>,
    /// Ignored until this time, ns since epoch.
    pub ignore_until_unix_nano: Option<u64>,
    /// Hash that created the issue.
    pub primary_hash: String,
}

/// Issue list filters (`GET /api/v1/projects/{p}/issues`).
#[derive(Debug, Clone, Default)]
pub struct IssueQuery {
    /// Only this status.
    pub status: Option<IssueStatus>,
    /// Tag filters (`service`, `environment`, `release`, `level` handled as columns).
    pub tags: Vec<(String, String)>,
    /// Only this level.
    pub level: Option<Level>,
    /// Only issues that affected this user.
    pub user: Option<String>,
    /// Last seen ≥ (ns).
    pub from_unix_nano: Option<u64>,
    /// First seen ≤ (ns).
    pub to_unix_nano: Option<u64>,
    /// Substring of title, culprit or type (case-insensitive).
    pub text: Option<String>,
    /// Sort order.
    pub sort: IssueSort,
    /// Page size (1..=1000).
    pub limit: usize,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
}

/// Issue list order (descending).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IssueSort {
    /// Most recently seen first.
    #[default]
    LastSeen,
    /// Most events first.
    Count,
    /// Most users first.
    Users,
}

/// A stored error event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredErrorEvent {
    /// Issue it belongs to.
    pub issue_id: i64,
    /// The event.
    #[serde(flatten)]
    pub event: ErrorEvent,
}

/// A status-history entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusHistoryEntry {
    /// New status.
    pub status: IssueStatus,
    /// Substatus, e.g. `regressed`.
    pub substatus: Option<String>,
    /// Why (`api`, `regression`, `ignore_expired`, ...).
    pub reason: String,
    /// Who (key prefix) or `system`.
    pub actor: String,
    /// Release involved, if any.
    pub release: Option<String>,
    /// When, ns since epoch.
    pub at_unix_nano: u64,
}

/// Everything the issue page shows beyond the issue itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueDetail {
    /// The issue.
    pub issue: Issue,
    /// The latest event with frames and context.
    pub latest_event: Option<StoredErrorEvent>,
    /// `(hour start ns, events)` for the requested window, oldest first.
    pub occurrences_per_hour: Vec<(u64, u64)>,
    /// Top values per tag key: key → [(value, count)], most frequent first (≤ 10 each).
    pub top_tags: BTreeMap<String, Vec<(String, u64)>>,
    /// Status changes, oldest first.
    pub history: Vec<StatusHistoryEntry>,
}

/// Error counts over a time range (`GET /api/v1/projects/{p}/errors/stats`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorStats {
    /// Error events in range.
    pub total_events: u64,
    /// Distinct issues with events in range.
    pub issues_with_events: u64,
    /// Issues first seen in range.
    pub new_issues: u64,
    /// Events per level.
    pub by_level: BTreeMap<String, u64>,
    /// Events per service.
    pub by_service: BTreeMap<String, u64>,
    /// `(hour start ns, events)`, oldest first.
    pub trend: Vec<(u64, u64)>,
}
