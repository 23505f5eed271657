//! Web vitals per page: `GET /api/v1/projects/{project}/web-vitals?from=&to=&page=` → the p75
//! of LCP, INP, CLS, FCP and TTFB (FID apart, as legacy) per page, each rated good /
//! needs-improvement / poor, from `performance` product events and from OTel metrics whose
//! names are web vitals; the rules are in `api/analytics/vitals.rs`.
//!
//! ```json
//! {"from_unix_nano", "to_unix_nano", "page": null, "percentile": 75,
//!  "pages": [{"page": "/checkout",
//!             "vitals": {"lcp": {"p75": 2300.0, "unit": "ms", "rating": "good", "samples": 12,
//!                                "event_samples": 10, "metric_samples": 2,
//!                                "shares": {"good": 0.8, "needs_improvement": 0.15, "poor": 0.05}},
//!                        "cls": {...}},
//!             "legacy": {"fid": {...}}}],
//!  "overall": {"vitals": {...}, "legacy": {...}},
//!  "metrics": [{"name": "web_vitals.lcp", "vital": "lcp", "unit": "s", "observations": 40}],
//!  "ignored_metrics": [{"name", "reason"}], "pages_truncated": false, "truncated": false}
//! ```
//!
//! The range defaults to the 7 days before `to` (now): p75s need many page loads per page.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::analytics::vitals::{
    MetricWindow, PageReport, RATED_QUANTILE, VitalsByPage, VitalsReport, report_scale, vital_of_metric_name,
};
use super::analytics::{NANOS_PER_HOUR, now_unix_nano, time_range};
use super::params::{QueryParams, path_params, query_params, reject_unknown_params};
use super::{ApiError, authorize_read, blocking};
use crate::server::AppState;
use crate::store::{MetricDescription, Store, StoreResult};

/// Range read when `from` is absent: 7 days before `to`.
const DEFAULT_RANGE_NANOS: u64 = 7 * 24 * NANOS_PER_HOUR;
/// `performance` events read per request at most (the newest); beyond, `truncated`.
const MAX_EVENT_SAMPLES: usize = 200_000;
/// Points read per web-vital metric at most (the oldest); beyond, `truncated`.
const MAX_POINTS_PER_METRIC: usize = 200_000;
/// Web-vital metric names read at most.
const MAX_VITAL_METRICS: usize = 50;
/// How far before `from` points are read so cumulative histograms have a point to difference
/// against (exporters report every 10–60 s by default).
const LOOKBACK_NANOS: u64 = 5 * 60 * 1_000_000_000;
/// Pages reported at most (those with the most observations).
const MAX_PAGES: usize = 200;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/projects/{project}/web-vitals", get(web_vitals))
}

/// A metric read as a web vital.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct VitalMetric {
    /// Metric name.
    pub name: String,
    /// The vital it holds (`lcp`, ...).
    pub vital: &'static str,
    /// Its UCUM unit as sent.
    pub unit: String,
    /// Observations it added in the range (histogram counts, gauge points).
    pub observations: u64,
}

/// A metric named like a web vital that was not read, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct IgnoredMetric {
    /// Metric name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// The response.
#[derive(Debug, Serialize)]
pub(crate) struct WebVitalsResponse {
    /// Range start (ns since the epoch).
    pub from_unix_nano: u64,
    /// Range end (ns since the epoch).
    pub to_unix_nano: u64,
    /// The `page` filter, if any.
    pub page: Option<String>,
    /// The percentile reported and rated (75).
    pub percentile: u32,
    /// Pages, most observations first.
    pub pages: Vec<PageReport>,
    /// All pages together.
    pub overall: VitalsReport,
    /// Metrics read as web vitals.
    pub metrics: Vec<VitalMetric>,
    /// Web-vital-like metrics not read.
    pub ignored_metrics: Vec<IgnoredMetric>,
    /// True when more than [`MAX_PAGES`] pages had observations.
    pub pages_truncated: bool,
    /// True when a read limit left observations out.
    pub truncated: bool,
}

/// What the metrics added.
#[derive(Debug, Default)]
struct MetricsRead {
    used: Vec<VitalMetric>,
    ignored: Vec<IgnoredMetric>,
    truncated: bool,
}

/// Reads every metric named like a web vital into `vitals`.
fn read_vital_metrics(
    store: &dyn Store,
    project_id: i64,
    window: MetricWindow,
    page: Option<&str>,
    vitals: &mut VitalsByPage,
) -> StoreResult<MetricsRead> {
    let mut read = MetricsRead::default();
    // A name sent with several types or units has several descriptions.
    let mut by_name: BTreeMap<String, Vec<MetricDescription>> = BTreeMap::new();
    for description in store.list_metrics(project_id)? {
        by_name.entry(description.name.clone()).or_default().push(description);
    }
    for (name, descriptions) in by_name {
        let Some(recognized) = vital_of_metric_name(&name) else { continue };
        let mut units: Vec<&str> = descriptions.iter().map(|description| description.unit.as_str()).collect();
        units.sort_unstable();
        units.dedup();
        let [unit] = units.as_slice() else {
            let reason = format!("sent with several units ({}); points do not say which is theirs", units.join(", "));
            read.ignored.push(IgnoredMetric { name, reason });
            continue;
        };
        let Some(scale) = report_scale(recognized, unit) else {
            let expected = if recognized.vital.unit().is_empty() { "1 or none" } else { "s, ms, us, ns or none" };
            read.ignored.push(IgnoredMetric { name, reason: format!("unit {unit:?} is not {expected}") });
            continue;
        };
        if read.used.len() == MAX_VITAL_METRICS {
            read.ignored
                .push(IgnoredMetric { name, reason: format!("more than {MAX_VITAL_METRICS} web-vital metrics") });
            read.truncated = true;
            continue;
        }
        let unit = (*unit).to_owned();
        let mut points = store.metric_points(
            project_id,
            &name,
            window.complete_from_unix_nano,
            window.to_unix_nano,
            MAX_POINTS_PER_METRIC + 1,
        )?;
        if points.len() > MAX_POINTS_PER_METRIC {
            points.truncate(MAX_POINTS_PER_METRIC);
            read.truncated = true;
        }
        let (observations, ignored_types) = vitals.add_metric_points(recognized.vital, scale, &points, window, page);
        for metric_type in ignored_types {
            let reason = format!("{metric_type} points are not read; send a histogram or a gauge");
            read.ignored.push(IgnoredMetric { name: name.clone(), reason });
        }
        read.used.push(VitalMetric { name, vital: recognized.vital.key(), unit, observations });
    }
    Ok(read)
}

/// The web-vitals request: range (`to` defaults to now, `from` to 7 days before it) and the
/// `page` filter; 400 for an unknown parameter or a bad time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VitalsParams {
    /// Range start (ns since the epoch).
    pub from_unix_nano: u64,
    /// Range end (ns since the epoch).
    pub to_unix_nano: u64,
    /// Only this page path.
    pub page: Option<String>,
}

/// Reads `from`, `to` and `page`; 400 for an unknown parameter or a bad time.
pub(crate) fn parse_vitals_params(params: &QueryParams) -> Result<VitalsParams, ApiError> {
    reject_unknown_params(params, &["from", "to", "page"], None)?;
    let (from_unix_nano, to_unix_nano) = time_range(params, now_unix_nano(), DEFAULT_RANGE_NANOS)?;
    let page = params.get("page").filter(|page| !page.is_empty()).cloned();
    Ok(VitalsParams { from_unix_nano, to_unix_nano, page })
}

/// The web vitals per page of a range from `performance` events and web-vital metrics (bounded
/// reads; CPU work too): call it on the blocking pool.
pub(crate) fn read_web_vitals(
    store: &dyn Store,
    project_id: i64,
    request: &VitalsParams,
) -> StoreResult<WebVitalsResponse> {
    let VitalsParams { from_unix_nano, to_unix_nano, page } = request.clone();
    let mut vitals = VitalsByPage::default();
    let samples = store.performance_samples(project_id, from_unix_nano, to_unix_nano, MAX_EVENT_SAMPLES)?;
    vitals.add_performance_samples(&samples.items, page.as_deref());
    let window = MetricWindow {
        from_unix_nano,
        to_unix_nano,
        complete_from_unix_nano: from_unix_nano.saturating_sub(LOOKBACK_NANOS),
    };
    let metrics = read_vital_metrics(store, project_id, window, page.as_deref(), &mut vitals)?;
    let (pages, overall, pages_truncated) = vitals.report(MAX_PAGES);
    Ok(WebVitalsResponse {
        from_unix_nano,
        to_unix_nano,
        page,
        percentile: (RATED_QUANTILE * 100.0).round() as u32,
        pages,
        overall,
        metrics: metrics.used,
        ignored_metrics: metrics.ignored,
        pages_truncated,
        truncated: samples.truncated || metrics.truncated,
    })
}

async fn web_vitals(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<WebVitalsResponse>, ApiError> {
    let params = query_params(query)?;
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let request = parse_vitals_params(&params)?;
    let store = state.store.clone();
    // Reading and the math both run on the blocking pool: many samples are CPU work.
    let response = blocking(move || Ok(read_web_vitals(store.as_ref(), project.id, &request)?)).await?;
    Ok(Json(response))
}
