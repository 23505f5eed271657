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
    /// For an event derived from a log record: the record's position in its batch, in storage
    /// order (resource → scope → record). Not stored; it lets the record's row leave its
    /// `exception.stacktrace` to this event ([`crate::store::LogJson::of_sharing_stack`]).
    #[serde(skip)]
    pub log_record: Option<usize>,
}

impl ErrorEvent {
    /// The event as stored: compressed JSON ([`crate::store::compression`]). Errors when serialization or compression
    /// fails (neither happens for well-formed events; the caller reports it).
    pub fn to_stored_body(&self) -> Result<Vec<u8>, String> {
        // sonic-rs, as for attributes (`Attributes::to_json_string`): its SIMD string escaping.
        let json = sonic_rs::to_vec(self).map_err(|error| format!("serializing an error event: {error}"))?;
        crate::store::compression::compress(&json)
    }

    /// Reads a stored body: compressed JSON ([`crate::store::compression`]) ([`ErrorEvent::to_stored_body`]), or plain JSON
    /// text as bodies were stored before compression. `None` when it does not decode.
    pub fn from_stored_body(body: &[u8]) -> Option<Self> {
        if crate::store::compression::is_compressed(body) {
            let json = crate::store::compression::decompress(body)?;
            return serde_json::from_slice(&json).ok();
        }
        serde_json::from_slice(body).ok()
    }

    /// The event as stored in two parts ([`StoredErrorBody`]): the per-event body, and the hash
    /// of its stack, whose frames and raw-trace template go into `error_stacks` once per issue
    /// ([`ErrorEvent::stack_body`]). Errors as [`ErrorEvent::to_stored_body`] does.
    pub fn to_stored_parts(&self) -> Result<StoredErrorBody, String> {
        self.clone().stored_parts()
    }

    /// [`ErrorEvent::to_stored_parts`] without copying the event: the frames (and the raw
    /// trace, when its template goes into the stack) are taken out while the body is
    /// serialized and put back before returning, so the event is left as it was.
    pub fn stored_parts(&mut self) -> Result<StoredErrorBody, String> {
        let cuts = self.raw_stacktrace.as_deref().map(|raw| template_cuts(raw, &self.exceptions));
        let has_frames = self.exceptions.iter().any(|exception| !exception.frames.is_empty());
        if !has_frames && cuts.is_none() {
            return Ok(StoredErrorBody { body: self.to_stored_body()?, stack_hash: None });
        }
        let template = self.raw_stacktrace.as_deref().zip(cuts.as_deref());
        let stack_hash = stack_hash(&self.exceptions, template);
        let frames: Vec<_> =
            self.exceptions.iter_mut().map(|exception| std::mem::take(&mut exception.frames)).collect();
        let raw = if cuts.is_some() { self.raw_stacktrace.take() } else { None };
        let body = self.to_stored_body();
        for (exception, frames) in self.exceptions.iter_mut().zip(frames) {
            exception.frames = frames;
        }
        if raw.is_some() {
            self.raw_stacktrace = raw;
        }
        Ok(StoredErrorBody { body: body?, stack_hash: Some(stack_hash) })
    }

    /// The shared part of [`ErrorEvent::to_stored_parts`]: every exception's frames and the raw
    /// trace's template, as compressed JSON ([`crate::store::compression`]). Errors as [`ErrorEvent::to_stored_body`] does.
    pub fn stack_body(&self) -> Result<Vec<u8>, String> {
        let stack = StoredStack {
            frames: self.exceptions.iter().map(|exception| exception.frames.clone()).collect(),
            raw: self.raw_template(),
        };
        let json = sonic_rs::to_vec(&stack).map_err(|error| format!("serializing an error stack: {error}"))?;
        crate::store::compression::compress(&json)
    }

    /// Reads an event stored in two parts: `body` as [`ErrorEvent::from_stored_body`] reads it,
    /// then, when `stack` is given ([`ErrorEvent::stack_body`]), its frames and raw trace put
    /// back. `None` when either does not decode.
    pub fn from_stored_parts(body: &[u8], stack: Option<&[u8]>) -> Option<Self> {
        let mut event = Self::from_stored_body(body)?;
        let Some(stack) = stack else { return Some(event) };
        let stack: StoredStack = serde_json::from_slice(&crate::store::compression::decompress(stack)?).ok()?;
        for (exception, frames) in event.exceptions.iter_mut().zip(stack.frames) {
            exception.frames = frames;
        }
        if let Some(template) = stack.raw {
            event.raw_stacktrace = Some(template.fill(&event.exceptions)?);
        }
        Some(event)
    }

    /// The `raw_stacktrace` of an event stored in two parts ([`ErrorEvent::from_stored_parts`])
    /// without building its frames: `template` is the event's stack read with
    /// [`StackTemplate::from_stored`]. `None` when the body does not decode, or the event has
    /// no raw trace.
    pub fn raw_stacktrace_of_stored(body: &[u8], template: Option<&StackTemplate>) -> Option<String> {
        let event = Self::from_stored_body(body)?;
        if event.raw_stacktrace.is_some() {
            return event.raw_stacktrace;
        }
        template?.0.as_ref()?.fill(&event.exceptions)
    }

    /// `raw_stacktrace` cut around the exceptions' messages (see [`RawTemplate`]); `None`
    /// without a raw trace.
    fn raw_template(&self) -> Option<RawTemplate> {
        self.raw_stacktrace.as_deref().map(|raw| RawTemplate::new(raw, &self.exceptions))
    }
}

/// An error event as stored ([`ErrorEvent::to_stored_parts`]). Events of one bug repeat the
/// same frames and the same trace text around a new message: storing those once per issue in
/// `error_stacks` leaves each event's own row ≈ 4× smaller (BENCHMARKS.md, 2026-12-01 late).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredErrorBody {
    /// compressed JSON ([`crate::store::compression`]) of the event without its exceptions' frames, and without
    /// `raw_stacktrace` when the stack holds its template.
    pub body: Vec<u8>,
    /// First 16 bytes of a SHA-256 over the frames and the raw-trace template (the key of the
    /// stack under the event's issue); `None` when the event has neither, and `body` is all of it.
    pub stack_hash: Option<[u8; 16]>,
}

/// The shared part of an event as stored in `error_stacks`.
#[derive(Serialize, Deserialize)]
struct StoredStack {
    /// Frames of each exception, in [`ErrorEvent::exceptions`] order.
    frames: Vec<Vec<sightline_grouping::StackFrame>>,
    /// The raw trace around its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw: Option<RawTemplate>,
}

/// The raw-trace template of a stored stack ([`ErrorEvent::stack_body`]) alone, read once for
/// the many events that share it ([`ErrorEvent::raw_stacktrace_of_stored`]).
#[derive(Debug, Clone)]
pub struct StackTemplate(Option<RawTemplate>);

impl StackTemplate {
    /// Reads a stored stack's template (its frames are skipped); `None` when it does not decode.
    pub fn from_stored(stack: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct RawOnly {
            #[serde(default)]
            raw: Option<RawTemplate>,
        }
        let json = crate::store::compression::decompress(stack)?;
        let stack: RawOnly = serde_json::from_slice(&json).ok()?;
        Some(Self(stack.raw))
    }
}

/// A raw stack trace with the exceptions' messages cut out: `pieces[0]`, the message of
/// exception `slots[0]`, `pieces[1]`, ... , `pieces[slots.len()]`. Filling it with the same
/// messages gives the text back byte for byte, whatever the messages are (a message not found
/// in the text simply stays in a piece).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RawTemplate {
    pieces: Vec<String>,
    slots: Vec<usize>,
}

impl RawTemplate {
    /// Cuts each exception's message out of `raw` where it first occurs apart from the
    /// messages cut before (chained exceptions print their messages in another order than
    /// [`ErrorEvent::exceptions`] lists them).
    fn new(raw: &str, exceptions: &[ParsedException]) -> Self {
        let cuts = template_cuts(raw, exceptions);
        let mut pieces = Vec::with_capacity(cuts.len() + 1);
        let mut slots = Vec::with_capacity(cuts.len());
        let mut at = 0;
        for &(start, end, index) in &cuts {
            pieces.push(raw[at..start].to_owned());
            slots.push(index);
            at = end;
        }
        pieces.push(raw[at..].to_owned());
        Self { pieces, slots }
    }

    /// The raw trace with `exceptions`' messages put back; `None` when a slot names an
    /// exception that is not there or the pieces do not match the slots.
    fn fill(&self, exceptions: &[ParsedException]) -> Option<String> {
        if self.pieces.len() != self.slots.len() + 1 {
            return None;
        }
        let mut raw = String::new();
        for (piece, slot) in self.pieces.iter().zip(&self.slots) {
            raw.push_str(piece);
            raw.push_str(&exceptions.get(*slot)?.message);
        }
        raw.push_str(self.pieces.last()?);
        Some(raw)
    }
}

/// One message cut out of a raw trace: (start, end, exception index), byte offsets.
type Cut = (usize, usize, usize);

/// Where [`RawTemplate::new`] cuts `raw`: each message cut out, in text order. Each
/// exception's message is cut where it first occurs apart from the messages cut before.
fn template_cuts(raw: &str, exceptions: &[ParsedException]) -> Vec<Cut> {
    let mut cuts: Vec<Cut> = Vec::new();
    for (index, exception) in exceptions.iter().enumerate() {
        let message = exception.message.as_str();
        if message.is_empty() {
            continue;
        }
        let free = |start: usize| {
            let end = start + message.len();
            cuts.iter().all(|&(cut_start, cut_end, _)| end <= cut_start || start >= cut_end)
        };
        if let Some((start, _)) = raw.match_indices(message).find(|(start, _)| free(*start)) {
            cuts.push((start, start + message.len(), index));
        }
    }
    cuts.sort_unstable();
    cuts
}

/// Bytes of hashed stacks a thread remembers with their hash (≈ 400 stacks of 5 KB); beyond it
/// the memory starts over. Per prepare thread, and tokio may run many of them under a burst.
const REMEMBERED_STACK_BYTES: usize = 2 << 20;

/// The bytes [`stack_hash`] hashes, gathered first (SHA-256 fed field by field, ≈ 10 updates
/// per frame, spent more time buffering than hashing), and the stacks hashed before: a bug's
/// events repeat one stack, so most are found there (foldhash over the bytes and one
/// comparison instead of SHA-256, ≈ 7 % of the prepare threads' time).
#[derive(Default)]
struct StackHashes {
    input: Vec<u8>,
    known: std::collections::HashMap<Box<[u8]>, [u8; 16], foldhash::fast::RandomState>,
    known_bytes: usize,
}

thread_local! {
    static STACK_HASHES: std::cell::RefCell<StackHashes> = std::cell::RefCell::default();
}

/// SHA-256 over every exception's frames and the raw template (the trace and where its
/// messages are cut out, [`template_cuts`]), each field length-prefixed, cut to 16 bytes.
fn stack_hash(exceptions: &[ParsedException], template: Option<(&str, &[Cut])>) -> [u8; 16] {
    use sha2::Digest;
    STACK_HASHES.with_borrow_mut(|hashes| {
        let StackHashes { input, known, known_bytes } = hashes;
        input.clear();
        stack_hash_input(input, exceptions, template);
        if let Some(hash) = known.get(input.as_slice()) {
            return *hash;
        }
        let digest = sha2::Sha256::digest(input.as_slice());
        let mut hash = [0u8; 16];
        hash.copy_from_slice(&digest[..16]);
        if *known_bytes + input.len() > REMEMBERED_STACK_BYTES {
            known.clear();
            *known_bytes = 0;
        }
        if input.len() <= REMEMBERED_STACK_BYTES / 16 {
            *known_bytes += input.len();
            known.insert(input.as_slice().into(), hash);
        }
        if input.capacity() > 1 << 20 {
            *input = Vec::new();
        }
        hash
    })
}

/// Appends what [`stack_hash`] hashes to `out`.
fn stack_hash_input(out: &mut Vec<u8>, exceptions: &[ParsedException], template: Option<(&str, &[Cut])>) {
    fn text(out: &mut Vec<u8>, value: Option<&str>) {
        match value {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                out.extend_from_slice(&(value.len() as u64).to_le_bytes());
                out.extend_from_slice(value.as_bytes());
            }
        }
    }
    for exception in exceptions {
        out.extend_from_slice(&(exception.frames.len() as u64).to_le_bytes());
        for frame in &exception.frames {
            // Destructured so that a new field cannot be left out of the hash unnoticed.
            let sightline_grouping::StackFrame { function, module, filename, lineno, colno, in_app, context_line } =
                frame;
            text(out, function.as_deref());
            text(out, module.as_deref());
            text(out, filename.as_deref());
            out.extend_from_slice(&lineno.map_or(0, |line| u64::from(line) + 1).to_le_bytes());
            out.extend_from_slice(&colno.map_or(0, |column| u64::from(column) + 1).to_le_bytes());
            out.push(u8::from(*in_app));
            text(out, context_line.as_deref());
        }
    }
    match template {
        None => out.push(0),
        Some((raw, cuts)) => {
            // The template's pieces are the text between the cuts; its slots their exceptions.
            out.push(1);
            out.extend_from_slice(&(cuts.len() as u64 + 1).to_le_bytes());
            let mut at = 0;
            for &(start, end, _) in cuts {
                text(out, Some(&raw[at..start]));
                at = end;
            }
            text(out, Some(&raw[at..]));
            for &(_, _, slot) in cuts {
                out.extend_from_slice(&(slot as u64).to_le_bytes());
            }
        }
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

#[cfg(test)]
mod tests {
    use sightline_grouping::{ParsedException, Platform, parse_stacktrace};

    use super::*;

    /// Python prints the cause first; the chain lists the top-level exception first.
    const CHAINED: &str = "Traceback (most recent call last):
  File \"/srv/app/shop/cart.py\", line 41, in load
    return json.loads(raw)
ValueError: bad cart 7781

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File \"/srv/app/shop/views.py\", line 12, in checkout
    cart = load(request)
shop.errors.CartError: cart 7781 unreadable
";

    fn exceptions_of(raw: &str) -> Vec<ParsedException> {
        parse_stacktrace(raw, Some(Platform::Python)).exceptions
    }

    fn event_of(raw: &str) -> ErrorEvent {
        let exceptions = exceptions_of(raw);
        ErrorEvent {
            event_id: "0".repeat(32),
            timestamp_unix_nano: 1,
            source: ErrorSource::Log,
            level: Level::Error,
            platform: Platform::Python,
            exception_type: exceptions[0].exception_type.clone(),
            message: exceptions[0].message.clone(),
            exceptions,
            raw_stacktrace: Some(raw.to_owned()),
            escaped: None,
            context: ErrorContext { service: "shop".into(), ..ErrorContext::default() },
            tags: BTreeMap::new(),
            fingerprint: Fingerprint {
                primary_hash: "h".into(),
                hashes: vec!["h".into()],
                variant: "app".into(),
                contributing: Vec::new(),
            },
            title: "CartError".into(),
            culprit: None,
            symbolicated: false,
            source_context: Vec::new(),
            log_record: None,
        }
    }

    #[test]
    fn raw_templates_give_the_text_back_whatever_the_messages() {
        let exceptions = exceptions_of(CHAINED);
        assert_eq!(exceptions.len(), 2, "{exceptions:?}");
        let template = RawTemplate::new(CHAINED, &exceptions);
        assert_eq!(template.slots.len(), 2, "both messages cut out: {template:?}");
        assert!(template.pieces.iter().all(|piece| !piece.contains("7781")), "{template:?}");
        assert_eq!(template.fill(&exceptions).as_deref(), Some(CHAINED));

        // A message that is not in the text, an empty one, and one that occurs twice.
        let mut odd = exceptions.clone();
        odd[0].message = "nowhere in the trace".into();
        odd[1].message = String::new();
        assert_eq!(RawTemplate::new(CHAINED, &odd).fill(&odd).as_deref(), Some(CHAINED));
        let twice = "E: x\nE: x\n";
        let same = vec![
            ParsedException { exception_type: "E".into(), message: "x".into(), frames: Vec::new() },
            ParsedException { exception_type: "E".into(), message: "x".into(), frames: Vec::new() },
        ];
        let template = RawTemplate::new(twice, &same);
        assert_eq!(template.slots.len(), 2);
        assert_eq!(template.fill(&same).as_deref(), Some(twice));
        // A slot naming a missing exception does not produce a wrong trace.
        assert_eq!(template.fill(&same[..1]), None);
    }

    /// The stack hash as first released: SHA-256 fed field by field over the template's
    /// pieces. Stored events name their stack by it, so it must not change.
    fn field_by_field_hash(exceptions: &[ParsedException], template: Option<&RawTemplate>) -> [u8; 16] {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        fn text(hasher: &mut sha2::Sha256, value: Option<&str>) {
            match value {
                None => hasher.update([0]),
                Some(value) => {
                    hasher.update([1]);
                    hasher.update((value.len() as u64).to_le_bytes());
                    hasher.update(value.as_bytes());
                }
            }
        }
        for exception in exceptions {
            hasher.update((exception.frames.len() as u64).to_le_bytes());
            for frame in &exception.frames {
                text(&mut hasher, frame.function.as_deref());
                text(&mut hasher, frame.module.as_deref());
                text(&mut hasher, frame.filename.as_deref());
                hasher.update(frame.lineno.map_or(0, |line| u64::from(line) + 1).to_le_bytes());
                hasher.update(frame.colno.map_or(0, |column| u64::from(column) + 1).to_le_bytes());
                hasher.update([u8::from(frame.in_app)]);
                text(&mut hasher, frame.context_line.as_deref());
            }
        }
        match template {
            None => hasher.update([0]),
            Some(template) => {
                hasher.update([1]);
                hasher.update((template.pieces.len() as u64).to_le_bytes());
                for piece in &template.pieces {
                    text(&mut hasher, Some(piece));
                }
                for slot in &template.slots {
                    hasher.update((*slot as u64).to_le_bytes());
                }
            }
        }
        hasher.finalize()[..16].try_into().expect("16 bytes")
    }

    #[test]
    fn stack_hashes_and_bodies_are_those_of_the_first_stored_form() {
        let mut without_raw = event_of(CHAINED);
        without_raw.raw_stacktrace = None;
        let mut bare = event_of("plain message");
        bare.exceptions.iter_mut().for_each(|exception| exception.frames.clear());
        bare.raw_stacktrace = None;
        let cases = [
            ("chained", event_of(CHAINED)),
            ("plain", event_of("plain message")),
            ("without raw", without_raw),
            ("bare", bare),
        ];
        // The second round finds each stack's hash remembered; it must be the same.
        for (text, mut event) in cases.iter().chain(&cases).cloned() {
            let before = event.clone();
            let template = event.raw_template();
            let stored = event.stored_parts().expect("parts");
            assert_eq!(event, before, "the event is left as it was");
            assert_eq!(stored, before.to_stored_parts().expect("parts"));
            let has_frames = before.exceptions.iter().any(|exception| !exception.frames.is_empty());
            let expected =
                (has_frames || template.is_some()).then(|| field_by_field_hash(&before.exceptions, template.as_ref()));
            assert_eq!(stored.stack_hash, expected, "{text:?}");
            // The body is the event without frames, and without the raw trace its template holds.
            let mut stripped = before.clone();
            if expected.is_some() {
                stripped.exceptions.iter_mut().for_each(|exception| exception.frames.clear());
                if template.is_some() {
                    stripped.raw_stacktrace = None;
                }
            }
            assert_eq!(stored.body, stripped.to_stored_body().expect("body"), "{text:?}");
        }
    }

    #[test]
    fn events_of_one_bug_share_a_stack_and_read_back_whole() {
        let first = event_of(CHAINED);
        let second = event_of(&CHAINED.replace("7781", "90210"));
        let moved = event_of(&CHAINED.replace("line 41", "line 44"));
        let parts = [&first, &second, &moved].map(|event| event.to_stored_parts().expect("parts"));
        assert!(parts[0].stack_hash.is_some());
        assert_eq!(parts[0].stack_hash, parts[1].stack_hash, "new messages, same stack");
        assert_ne!(parts[0].stack_hash, parts[2].stack_hash, "another line is another stack");

        for (event, stored) in [&first, &second, &moved].into_iter().zip(&parts) {
            let stack = event.stack_body().expect("stack");
            assert_eq!(ErrorEvent::from_stored_parts(&stored.body, Some(&stack)).as_ref(), Some(event));
            // The body alone holds no frames and no raw trace (they are the stack's).
            let alone = ErrorEvent::from_stored_body(&stored.body).expect("body decodes");
            assert!(alone.exceptions.iter().all(|exception| exception.frames.is_empty()));
            assert_eq!(alone.raw_stacktrace, None);
        }
        // The second event's body with the first event's stack (the one stored for both).
        let first_stack = first.stack_body().expect("stack");
        assert_eq!(ErrorEvent::from_stored_parts(&parts[1].body, Some(&first_stack)).as_ref(), Some(&second));

        // Without frames or raw trace there is no stack: the body is everything.
        let mut bare = event_of("plain message");
        bare.exceptions.iter_mut().for_each(|exception| exception.frames.clear());
        bare.raw_stacktrace = None;
        let stored = bare.to_stored_parts().expect("parts");
        assert_eq!(stored.stack_hash, None);
        assert_eq!(ErrorEvent::from_stored_parts(&stored.body, None), Some(bare));
    }
}
