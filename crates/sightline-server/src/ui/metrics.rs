//! Metrics explorer: `GET /p/{project}/metrics?name=&stat=&group_by=&range=` picks a metric (the
//! list of `GET /api/v1/projects/{p}/metrics`), an aggregation the series API supports for its
//! type (rate / increase for counters, percentiles for histograms, average / min / max for
//! gauges), an attribute to group by (the keys its points carry in the range) and a time range,
//! and draws `GET .../metrics/{name}/series` as a line chart with one line per group, a legend
//! and a table of the values (`charts_lines.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use sightline_model::MetricKind;

use super::UiError;
use super::charts_lines::{LineAxes, LineSeries, lines};
use super::format::{attribute_value, time, url_encode, url_with};
use super::layout::{Section, page};
use super::session::viewer;
use crate::api::metrics::{SeriesRead, parse_series_params, read_series};
use crate::api::series::{Series, SeriesPoint};
use crate::server::AppState;
use crate::store::MetricDescription;
use crate::ui::{here, path_or_404};

/// `range=` choices: (value, label, seconds); the first is the default.
const RANGES: [(&str, &str, u64); 5] = [
    ("1h", "Last hour", 3600),
    ("15m", "Last 15 minutes", 900),
    ("6h", "Last 6 hours", 6 * 3600),
    ("24h", "Last 24 hours", 86_400),
    ("7d", "Last 7 days", 7 * 86_400),
];

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/p/{project}/metrics", get(metrics_page))
}

/// The aggregations offered for a metric type as `(stat=, label)`, the default first; they are
/// the ones `api/series.rs` applies to the type (`""` = the type's own value, for up-down
/// counters).
fn stat_choices(kind: &MetricKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        MetricKind::Gauge => &[("avg", "Average"), ("min", "Minimum"), ("max", "Maximum")],
        MetricKind::Sum { is_monotonic: true, .. } => &[("rate", "Rate per second"), ("increase", "Increase per step")],
        MetricKind::Sum { .. } => &[("", "Value (sum of the series)")],
        MetricKind::Histogram { .. } => &[
            ("p95", "95th percentile"),
            ("p50", "Median"),
            ("p90", "90th percentile"),
            ("p99", "99th percentile"),
            ("avg", "Average"),
            ("count", "Count"),
            ("sum", "Sum"),
        ],
        MetricKind::ExponentialHistogram { .. } => &[("avg", "Average"), ("count", "Count"), ("sum", "Sum")],
        MetricKind::Summary => &[("count", "Count"), ("sum", "Sum"), ("p50", "Median"), ("p99", "99th percentile")],
    }
}

/// A readable type: `counter`, `up-down counter`, `gauge`, `histogram`, ...
fn kind_label(kind: &MetricKind) -> &'static str {
    match kind {
        MetricKind::Sum { is_monotonic: true, .. } => "counter",
        MetricKind::Sum { .. } => "up-down counter",
        MetricKind::ExponentialHistogram { .. } => "exponential histogram",
        other => other.type_name(),
    }
}

/// The number a bucket shows: the value the stat picked, or for the types' own outputs their
/// average (histograms) or count (summaries).
fn point_value(point: &SeriesPoint) -> Option<(u64, f64)> {
    match point {
        SeriesPoint::Value { time_unix_nano, value } => Some((*time_unix_nano, *value)),
        SeriesPoint::Histogram { time_unix_nano, avg, .. }
        | SeriesPoint::ExponentialHistogram { time_unix_nano, avg, .. } => avg.map(|avg| (*time_unix_nano, avg)),
        SeriesPoint::Summary { time_unix_nano, count, .. } => Some((*time_unix_nano, *count as f64)),
    }
}

/// The legend label of a group: `key=value, ...`, or the metric's name without grouping.
fn group_label(metric_name: &str, series: &Series) -> String {
    if series.group.is_empty() {
        return metric_name.to_owned();
    }
    series
        .group
        .iter()
        .map(
            |(key, value)| {
                if value.is_null() { format!("{key} (none)") } else { format!("{key}={}", attribute_value(value)) }
            },
        )
        .collect::<Vec<_>>()
        .join(", ")
}

async fn metrics_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let slug = path_or_404(path)?;
    let project = viewer.project(&slug)?.clone();
    let value = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    let range = if value("range").is_empty() { RANGES[0].0 } else { value("range") };
    let (_, _, range_seconds) = RANGES
        .iter()
        .find(|(option, _, _)| *option == range)
        .ok_or_else(|| UiError::BadRequest(format!("range={range:?}: use 15m, 1h, 6h, 24h or 7d")))?;
    let name = value("name").to_owned();
    let now_unix_nano = crate::clock::now_unix_nano();
    // The series API's own parameters, so the page and `/api/v1` answer the same.
    let mut api_params: HashMap<String, String> =
        [("from".to_owned(), now_unix_nano.saturating_sub(range_seconds * 1_000_000_000).to_string())].into();
    for key in ["stat", "group_by"] {
        if !value(key).is_empty() {
            api_params.insert(key.to_owned(), value(key).to_owned());
        }
    }
    let store = state.store.clone();
    let project_id = project.id;
    let (metrics, chosen, read) = crate::api::blocking(move || {
        let metrics = store.list_metrics(project_id)?;
        let Some(chosen) = metrics
            .iter()
            .filter(|metric| metric.name == name)
            .max_by_key(|metric| metric.last_seen_unix_nano)
            .cloned()
        else {
            if !name.is_empty() {
                return Err(crate::api::ApiError::not_found(format!("metric {name:?} not found")));
            }
            return Ok((metrics, None, None));
        };
        // Without a chosen stat, the type's default one of the page (histograms need one number).
        if !api_params.contains_key("stat")
            && let Some((stat, _)) = stat_choices(&chosen.kind).first().filter(|(stat, _)| !stat.is_empty())
        {
            api_params.insert("stat".into(), (*stat).to_owned());
        }
        let series_params = parse_series_params(&api_params, now_unix_nano)?;
        let read = read_series(store.as_ref(), project_id, &chosen.name, &series_params)?;
        Ok((metrics, Some(chosen), Some(read)))
    })
    .await?;
    let base = format!("/p/{}/metrics", url_encode(&project.slug));
    let body = html! {
        @if metrics.is_empty() {
            p.empty { "No metrics received yet. Send OTLP metrics to " code { "/v1/metrics" } " or port 4317." }
        } @else {
            form.filters method="get" action=(base) aria-label="Choose a metric" {
                label { "Metric " select name="name" {
                    option value="" selected[chosen.is_none()] { "Choose a metric" }
                    @for metric in &metrics {
                        option value=(metric.name) selected[chosen.as_ref().is_some_and(|chosen| chosen.name == metric.name)] { (metric.name) " (" (kind_label(&metric.kind)) ")" }
                    }
                } }
                @if let (Some(chosen), Some(read)) = (&chosen, &read) {
                    @let current_stat = read_stat(&params, &chosen.kind);
                    label { "Aggregation " select name="stat" {
                        @for (option, label) in stat_choices(&chosen.kind) { option value=(option) selected[current_stat == *option] { (label) } }
                        @if !stat_choices(&chosen.kind).iter().any(|(option, _)| *option == current_stat) { option value=(current_stat) selected { (current_stat) } }
                    } }
                    label { "Group by " select name="group_by" {
                        option value="" selected[value("group_by").is_empty()] { "Nothing (one line)" }
                        @for key in &read.attribute_keys { option value=(key) selected[value("group_by") == key] { (key) } }
                        @if !value("group_by").is_empty() && !value("group_by").contains(',') && !read.attribute_keys.iter().any(|key| key == value("group_by")) {
                            option value=(value("group_by")) selected { (value("group_by")) }
                        }
                    } }
                }
                label { "Time " select name="range" {
                    @for (option, label, _) in RANGES { option value=(option) selected[range == option] { (label) } }
                } }
                button type="submit" { "Show" }
            }
            @match (&chosen, &read) {
                (Some(chosen), Some(read)) => { (chart(chosen, read, read_stat(&params, &chosen.kind))) }
                _ => { (metric_table(&base, &metrics)) }
            }
        }
    };
    let title = match &chosen {
        Some(chosen) => format!("Metric {}", chosen.name),
        None => "Metrics".to_owned(),
    };
    Ok(page(&viewer, Section::Metrics, Some(&project), &title, body))
}

/// The stat the page uses: the query's, or the type's default.
fn read_stat<'a>(params: &'a HashMap<String, String>, kind: &MetricKind) -> &'a str {
    match params.get("stat").filter(|stat| !stat.is_empty()) {
        Some(stat) => stat.as_str(),
        None => stat_choices(kind).first().map(|(stat, _)| *stat).unwrap_or(""),
    }
}

fn metric_table(base: &str, metrics: &[MetricDescription]) -> Markup {
    html! {
        table.metrics {
            caption { "Metrics of this project" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Unit" } th scope="col" { "Description" } th scope="col" { "Last point" } } }
            tbody {
                @for metric in metrics {
                    tr {
                        td { a href=(url_with(base, &[("name", metric.name.as_str())])) { (metric.name) } }
                        td { (kind_label(&metric.kind)) }
                        td { code { (metric.unit) } }
                        td { (metric.description) }
                        td { (time(metric.last_seen_unix_nano)) }
                    }
                }
            }
        }
    }
}

/// The chart of `read`, whose values are `stat` of `metric`.
fn chart(metric: &MetricDescription, read: &SeriesRead, stat: &str) -> Markup {
    let response = &read.series;
    let series: Vec<LineSeries> = response
        .series
        .iter()
        .map(|one| LineSeries {
            label: group_label(&metric.name, one),
            points: one.points.iter().filter_map(point_value).collect(),
        })
        .collect();
    // A rate is per second of whatever the counter counts; a count has no unit.
    let unit = match stat {
        "rate" => format!("{}/s", metric.unit),
        "count" => String::new(),
        _ => metric.unit.clone(),
    };
    let axes = LineAxes {
        from_unix_nano: response.from_unix_nano,
        to_unix_nano: response.to_unix_nano,
        step_nanos: response.step_seconds.saturating_mul(1_000_000_000),
        unit: &unit,
    };
    html! {
        @if !metric.description.is_empty() { p.hint { (metric.description) } }
        dl.figures {
            div { dt { "Type" } dd { (kind_label(&metric.kind)) } }
            div { dt { "Unit" } dd { @if metric.unit.is_empty() { "—" } @else { code { (metric.unit) } } } }
            div { dt { "Step" } dd { (response.step_seconds) " s" } }
            div { dt { "Lines" } dd { (series.len()) } }
        }
        @if response.truncated { p.hint role="note" { "Some data was left out (too many points or groups); pick a shorter range or group by a key with fewer values." } }
        (lines(&metric.name, &axes, &series))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::metric::temporality;

    #[test]
    fn aggregations_are_those_the_series_api_accepts_for_the_type() {
        let kinds = [
            MetricKind::Gauge,
            MetricKind::Sum { aggregation_temporality: temporality::CUMULATIVE, is_monotonic: true },
            MetricKind::Sum { aggregation_temporality: temporality::CUMULATIVE, is_monotonic: false },
            MetricKind::Histogram { aggregation_temporality: temporality::DELTA },
            MetricKind::ExponentialHistogram { aggregation_temporality: temporality::DELTA },
            MetricKind::Summary,
        ];
        for kind in &kinds {
            for (stat, _) in stat_choices(kind) {
                if stat.is_empty() {
                    continue;
                }
                let parsed = crate::api::series::Stat::parse(stat).expect("a known stat");
                assert!(parsed.check_applies_to(kind).is_ok(), "{stat} on {kind:?}");
            }
        }
    }

    #[test]
    fn groups_read_as_key_value_pairs() {
        let mut group = serde_json::Map::new();
        group.insert("http.route".into(), serde_json::json!("/cart"));
        group.insert("region".into(), serde_json::Value::Null);
        let series = Series { group, points: Vec::new() };
        assert_eq!(group_label("requests", &series), "http.route=/cart, region (none)");
        assert_eq!(group_label("requests", &Series { group: serde_json::Map::new(), points: Vec::new() }), "requests");
    }
}
