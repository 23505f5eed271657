//! Event analytics: `GET /api/v1/projects/{project}/events/stats?group_by=name|type|page&interval=1h&from=&to=&limit=`
//! → event count, unique users and unique sessions per group and UTC-aligned time bucket, plus
//! totals:
//!
//! ```json
//! {"from_unix_nano", "to_unix_nano", "group_by": "name", "interval_seconds": 3600,
//!  "first_bucket_unix_nano", "bucket_count",
//!  "totals": {"count", "unique_users", "unique_sessions", "buckets": [{"start_unix_nano", "count", "unique_users", "unique_sessions"}]},
//!  "groups": [{"group": "checkout_started", "count", "unique_users", "unique_sessions", "buckets": [...]}],
//!  "groups_truncated": false, "truncated": false}
//! ```
//!
//! Buckets without events are left out of `buckets`. Unique counts are exact per bucket, per
//! group and overall, so they do not add up across buckets. The range defaults to the 24 hours
//! before `to` (now) and the interval to 1 hour; more than 1,000 buckets or a `limit` over 100
//! groups is a 400. `group` is `null` for events without a name (`name`) or page (`page`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::analytics::buckets::{BucketGrid, parse_interval_seconds};
use super::analytics::{NANOS_PER_HOUR, now_unix_nano, time_range};
use super::params::{QueryParams, parse_limit, path_params, query_params, reject_unknown_params};
use super::{ApiError, authorize_read, blocking};
use crate::server::AppState;
use crate::store::analytics::{BucketCounts, EventCounts, EventGroupKey, EventStats, EventStatsQuery};

const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// Range counted when `from` is absent: the day before `to`.
const DEFAULT_RANGE_NANOS: u64 = 24 * NANOS_PER_HOUR;
/// Bucket width when `interval` is absent.
const DEFAULT_INTERVAL_SECONDS: u64 = 3_600;
/// Groups returned unless `limit` says otherwise.
const DEFAULT_GROUPS: usize = 20;
/// Largest `limit`.
const MAX_GROUPS: usize = 100;
/// Events counted per request at most (the oldest of the range); beyond, `truncated`.
const MAX_EVENTS: usize = 1_000_000;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/projects/{project}/events/stats", get(event_stats))
}

/// A parsed statistics request.
#[derive(Debug, Clone, PartialEq)]
struct StatsParams {
    grid: BucketGrid,
    query: EventStatsQuery,
}

fn parse_group_by(value: Option<&String>) -> Result<EventGroupKey, ApiError> {
    match value.map(String::as_str).filter(|text| !text.is_empty()) {
        None | Some("name") => Ok(EventGroupKey::Name),
        Some("type") => Ok(EventGroupKey::Type),
        Some("page") => Ok(EventGroupKey::Page),
        Some(other) => Err(ApiError::invalid(format!(
            "group_by={other:?} is not known; use name (event.name), type (event.type) or page (page.path)"
        ))),
    }
}

fn parse_stats_params(params: &QueryParams, now_unix_nano: u64) -> Result<StatsParams, ApiError> {
    reject_unknown_params(params, &["from", "to", "group_by", "interval", "limit"], None)?;
    let (from_unix_nano, to_unix_nano) = time_range(params, now_unix_nano, DEFAULT_RANGE_NANOS)?;
    let interval_seconds = match params.get("interval").filter(|text| !text.is_empty()) {
        None => DEFAULT_INTERVAL_SECONDS,
        Some(text) => parse_interval_seconds(text).map_err(ApiError::invalid)?,
    };
    let interval_nanos = interval_seconds.saturating_mul(NANOS_PER_SECOND);
    let grid = BucketGrid::new(from_unix_nano, to_unix_nano, interval_nanos)
        .map_err(|error| ApiError::invalid(error.to_string()))?;
    Ok(StatsParams {
        grid,
        query: EventStatsQuery {
            from_unix_nano,
            to_unix_nano,
            interval_nanos,
            group_by: parse_group_by(params.get("group_by"))?,
            max_groups: parse_limit(params, DEFAULT_GROUPS, MAX_GROUPS)?,
            max_events: MAX_EVENTS,
        },
    })
}

/// Counts of one bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct BucketView {
    /// Bucket start (ns since the epoch).
    start_unix_nano: u64,
    /// The counts.
    #[serde(flatten)]
    counts: EventCounts,
}

/// Counts of one group (or of all events) over the range and per bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct SeriesView {
    /// The counts over the whole range.
    #[serde(flatten)]
    counts: EventCounts,
    /// Buckets with events, oldest first.
    buckets: Vec<BucketView>,
}

/// One group's statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct GroupView {
    /// The group's value; `null` for events without it.
    group: Option<String>,
    /// Its counts.
    #[serde(flatten)]
    series: SeriesView,
}

/// The response.
#[derive(Debug, Serialize)]
struct StatsResponse {
    /// Range start (ns since the epoch).
    from_unix_nano: u64,
    /// Range end (ns since the epoch).
    to_unix_nano: u64,
    /// The grouping.
    group_by: EventGroupKey,
    /// Bucket width (s).
    interval_seconds: u64,
    /// Start of the bucket holding `from` (ns since the epoch).
    first_bucket_unix_nano: u64,
    /// Buckets covering the range.
    bucket_count: u64,
    /// All events.
    totals: SeriesView,
    /// The largest groups by event count.
    groups: Vec<GroupView>,
    /// True when more groups existed than `limit`.
    groups_truncated: bool,
    /// True when the range held more events than were counted (the newest were not).
    truncated: bool,
}

fn bucket_view(cell: &BucketCounts) -> BucketView {
    BucketView { start_unix_nano: cell.bucket_start_unix_nano, counts: cell.counts }
}

fn stats_response(params: &StatsParams, stats: EventStats) -> StatsResponse {
    let mut buckets_by_group: HashMap<Option<String>, Vec<BucketView>> = HashMap::new();
    for cell in &stats.cells {
        buckets_by_group.entry(cell.group.clone()).or_default().push(bucket_view(cell));
    }
    let groups = stats
        .groups
        .into_iter()
        .map(|group| {
            let buckets = buckets_by_group.remove(&group.group).unwrap_or_default();
            GroupView { group: group.group, series: SeriesView { counts: group.counts, buckets } }
        })
        .collect();
    StatsResponse {
        from_unix_nano: params.query.from_unix_nano,
        to_unix_nano: params.query.to_unix_nano,
        group_by: params.query.group_by,
        interval_seconds: params.query.interval_nanos / NANOS_PER_SECOND,
        first_bucket_unix_nano: params.grid.first_start_unix_nano,
        bucket_count: params.grid.bucket_count,
        totals: SeriesView { counts: stats.total, buckets: stats.bucket_totals.iter().map(bucket_view).collect() },
        groups,
        groups_truncated: stats.groups_truncated,
        truncated: stats.truncated,
    }
}

async fn event_stats(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<StatsResponse>, ApiError> {
    let params = query_params(query)?;
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let stats_params = parse_stats_params(&params, now_unix_nano())?;
    let store = state.store.clone();
    let response = blocking(move || {
        let stats = store.event_stats(project.id, &stats_params.query)?;
        Ok(stats_response(&stats_params, stats))
    })
    .await?;
    Ok(Json(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000 * NANOS_PER_SECOND;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn defaults_are_a_day_in_hours_by_name() {
        let parsed = parse_stats_params(&params(&[]), NOW).expect("valid");
        assert_eq!(parsed.query.to_unix_nano, NOW);
        assert_eq!(parsed.query.from_unix_nano, NOW - DEFAULT_RANGE_NANOS);
        assert_eq!(parsed.query.interval_nanos, 3_600 * NANOS_PER_SECOND);
        assert_eq!(parsed.query.group_by, EventGroupKey::Name);
        assert_eq!(parsed.query.max_groups, DEFAULT_GROUPS);
        assert_eq!(parsed.grid.bucket_count, 25, "a day not starting on the hour touches 25 hours");
    }

    #[test]
    fn bad_parameters_are_400_with_a_reason() {
        let unknown = parse_stats_params(&params(&[("group_by", "browser")]), NOW).expect_err("unknown");
        assert!(unknown.message.contains("use name"), "{}", unknown.message);
        let minutes = parse_stats_params(&params(&[("interval", "1m"), ("from", "1699000000")]), NOW)
            .expect_err("16,668 minutes");
        assert!(minutes.message.contains("more than 1000"), "{}", minutes.message);
        assert!(parse_stats_params(&params(&[("limit", "101")]), NOW).is_err());
        assert!(parse_stats_params(&params(&[("interval", "soon")]), NOW).is_err());
        assert!(parse_stats_params(&params(&[("groupby", "name")]), NOW).is_err());
        let page = parse_stats_params(&params(&[("group_by", "page"), ("interval", "15m")]), NOW).expect("valid");
        assert_eq!(page.query.group_by, EventGroupKey::Page);
        assert_eq!(page.query.interval_nanos, 900 * NANOS_PER_SECOND);
    }

    #[test]
    fn cells_are_attached_to_their_groups() {
        let counts = |count| EventCounts { count, unique_users: 1, unique_sessions: 1 };
        let parsed = parse_stats_params(&params(&[]), NOW).expect("valid");
        let stats = EventStats {
            groups: vec![
                crate::store::analytics::GroupCounts { group: Some("a".into()), counts: counts(3) },
                crate::store::analytics::GroupCounts { group: None, counts: counts(1) },
            ],
            cells: vec![
                BucketCounts { bucket_start_unix_nano: 10, group: Some("a".into()), counts: counts(2) },
                BucketCounts { bucket_start_unix_nano: 10, group: None, counts: counts(1) },
                BucketCounts { bucket_start_unix_nano: 20, group: Some("a".into()), counts: counts(1) },
            ],
            bucket_totals: vec![BucketCounts { bucket_start_unix_nano: 10, group: None, counts: counts(3) }],
            total: counts(4),
            groups_truncated: false,
            truncated: false,
        };
        let response = stats_response(&parsed, stats);
        assert_eq!(response.groups[0].series.buckets.len(), 2);
        assert_eq!(response.groups[1].series.buckets.len(), 1);
        let json = serde_json::to_value(&response).expect("serializes");
        assert_eq!(json["groups"][0]["group"], "a");
        assert_eq!(json["groups"][0]["count"], 3);
        assert_eq!(json["groups"][0]["buckets"][1]["start_unix_nano"], 20);
        assert_eq!(json["groups"][1]["group"], serde_json::Value::Null);
        assert_eq!(json["totals"]["count"], 4);
        assert_eq!(json["group_by"], "name");
    }
}
