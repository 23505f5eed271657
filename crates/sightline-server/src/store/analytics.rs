//! Types of the product-analytics reads behind [`super::Store`]: journey touches (for journeys
//! and funnels), event counts per group and time bucket, and web-vital samples of `performance`
//! events. Times are ns since the Unix epoch unless a name says otherwise.
//!
//! The store only reads and aggregates rows; what the rows mean (step order, conversion, server
//! confirmation, percentiles, ratings) is decided in `api/analytics/`, in Rust, so every backend
//! answers alike.

use serde::Serialize;

/// Rows of a bounded read and whether the bound cut some off.
#[derive(Debug, Clone, PartialEq)]
pub struct Capped<T> {
    /// The rows read, in the order the method documents.
    pub items: Vec<T>,
    /// True when more rows matched than the cap allowed.
    pub truncated: bool,
}

/// Which journey touches to read.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyTouchQuery {
    /// Event time ≥ this (ns).
    pub from_unix_nano: u64,
    /// Event time ≤ this (ns).
    pub to_unix_nano: u64,
    /// Only this journey (`journey.id`); every journey when `None`.
    pub journey_id: Option<String>,
    /// Most touches returned (the oldest ones are kept).
    pub max_touches: usize,
}

/// One product event that names a journey (`journey.id`): a step reached, a conversion status,
/// or both. OpenTelemetry log events (`event_name = journey.step`) are product events too (the
/// pipeline stores them with `metadata.source = "otlp"`), so backend steps arrive here as well.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyTouch {
    /// `journey.id`.
    pub journey_id: String,
    /// `session.id` (empty when the event had none).
    pub session_id: String,
    /// `user.id`, when sent.
    pub user_id: Option<String>,
    /// `journey.step.id`, when the event marks a step.
    pub step_id: Option<String>,
    /// `journey.step.name`, when sent.
    pub step_name: Option<String>,
    /// `journey.conversion.status` (`converted`, `abandoned`, ...), when sent.
    pub conversion_status: Option<String>,
    /// Event time (ns since the epoch).
    pub timestamp_unix_nano: u64,
    /// `metadata.source` as sent (`server`, `otlp`, ...); `None` for plain client events.
    pub source: Option<String>,
}

/// What event statistics are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventGroupKey {
    /// `event.name` (events without a name form the `null` group).
    Name,
    /// `event.type`.
    Type,
    /// `page.path` (events without one form the `null` group).
    Page,
}

/// An event statistics request.
#[derive(Debug, Clone, PartialEq)]
pub struct EventStatsQuery {
    /// Event time ≥ this (ns).
    pub from_unix_nano: u64,
    /// Event time ≤ this (ns).
    pub to_unix_nano: u64,
    /// Bucket width in ns; buckets start at multiples of it since the epoch (UTC-aligned).
    pub interval_nanos: u64,
    /// The grouping.
    pub group_by: EventGroupKey,
    /// Most groups returned, the largest by event count first.
    pub max_groups: usize,
    /// Most events counted: the oldest `max_events` of the range (the rest sets `truncated`).
    pub max_events: usize,
}

/// Event count, distinct users and distinct sessions of a set of events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EventCounts {
    /// Events.
    pub count: u64,
    /// Distinct `user.id` values (events without a user are not counted here).
    pub unique_users: u64,
    /// Distinct `session.id` values.
    pub unique_sessions: u64,
}

/// Counts of one group over the whole range.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupCounts {
    /// The group's value; `None` for events without it (no name, no page).
    pub group: Option<String>,
    /// Its counts.
    pub counts: EventCounts,
}

/// Counts of one time bucket, for one group or for all events.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketCounts {
    /// Bucket start (ns since the epoch, a multiple of the interval).
    pub bucket_start_unix_nano: u64,
    /// The group (for per-group cells); `None` for all-event totals or the `null` group.
    pub group: Option<String>,
    /// Its counts.
    pub counts: EventCounts,
}

/// Event statistics of a range. Distinct counts are exact per bucket, per group and overall
/// (they do not add up across buckets).
#[derive(Debug, Clone, PartialEq)]
pub struct EventStats {
    /// The largest groups by event count (ties by group value), at most `max_groups`.
    pub groups: Vec<GroupCounts>,
    /// Per (bucket, group) counts for the groups in `groups`; buckets without events are absent.
    /// Ordered by bucket start.
    pub cells: Vec<BucketCounts>,
    /// Per bucket counts of all events (`group` is `None`), ordered by bucket start.
    pub bucket_totals: Vec<BucketCounts>,
    /// Counts of all events counted.
    pub total: EventCounts,
    /// True when more groups existed than `max_groups`.
    pub groups_truncated: bool,
    /// True when the range held more events than `max_events` (the newest were not counted).
    pub truncated: bool,
}

/// The web-vital fields of one `performance` product event. Durations in ms, CLS unitless.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerformanceSample {
    /// Event time (ns since the epoch).
    pub timestamp_unix_nano: u64,
    /// `page.path`, when sent.
    pub page_path: Option<String>,
    /// `page.url`, when sent.
    pub page_url: Option<String>,
    /// `performance.lcp_ms`: Largest Contentful Paint (ms).
    pub lcp_ms: Option<f64>,
    /// `performance.fid_ms`: First Input Delay (ms, legacy).
    pub fid_ms: Option<f64>,
    /// `performance.inp_ms`: Interaction to Next Paint (ms).
    pub inp_ms: Option<f64>,
    /// `performance.cls`: Cumulative Layout Shift (unitless score).
    pub cls: Option<f64>,
    /// `performance.ttfb_ms`: Time to First Byte (ms).
    pub ttfb_ms: Option<f64>,
    /// `performance.fcp_ms`: First Contentful Paint (ms).
    pub fcp_ms: Option<f64>,
}
