//! The Prometheus view of a project's endpoint RED rollups (issue 5, deliverable 8):
//! `GET /api/v1/projects/{project}/metrics/prometheus?window=5m` in the Prometheus text
//! exposition format 0.0.4 (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
//!
//! Semantics follow the Prometheus client libraries' summaries: the `quantile` samples (0.5,
//! 0.9, 0.95, 0.99, seconds) are over a sliding window (`window`, default 5m, 1m..=1h: the
//! 1-minute buckets starting at or after `now − window`, the current partial minute included;
//! `NaN` when the window saw no request), while `_sum` (seconds), `_count`,
//! `http_server_requests_total` and `http_server_errors_total` are cumulative over every
//! stored rollup (they drop when retention deletes old buckets, which `rate()` reads as a
//! counter reset). Series: `http_server_request_duration_seconds{service, environment, route,
//! method, status_class}`; `route` is the operation name when no route or path was known.
//! prometheus-client has no summary type, so the text is written here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::params::{QueryParams, path_params, query_params, reject_unknown_params};
use super::{ApiError, authorize_read, blocking};
use crate::server::AppState;
use crate::store::rollups::{DurationSketch, EndpointKey, RollupQuery};

const QUANTILES: [(&str, f64); 4] = [("0.5", 0.5), ("0.9", 0.9), ("0.95", 0.95), ("0.99", 0.99)];

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/projects/{project}/metrics/prometheus", get(prometheus_view))
}

/// The label set of one series: (service, environment, route, method, status_class).
type Labels = (String, String, String, String, &'static str);

fn labels_of(key: &EndpointKey) -> Labels {
    let route = if key.route.is_empty() { key.operation.clone() } else { key.route.clone() };
    (key.service_name.clone(), key.environment.clone(), route, key.method.clone(), key.status_class.as_str())
}

/// Escapes a label value: backslash, double quote and line feed (exposition format).
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn label_text(labels: &Labels) -> String {
    format!(
        "service=\"{}\",environment=\"{}\",route=\"{}\",method=\"{}\",status_class=\"{}\"",
        escape_label_value(&labels.0),
        escape_label_value(&labels.1),
        escape_label_value(&labels.2),
        escape_label_value(&labels.3),
        labels.4
    )
}

/// Floats as the format spells them (`NaN`, `+Inf`).
fn sample_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{value}")
    }
}

#[derive(Default)]
struct Series {
    window: DurationSketch,
    requests: u64,
    errors: u64,
    sum_nanos: f64,
}

fn parse_window(params: &QueryParams) -> Result<u64, ApiError> {
    let text = params.get("window").filter(|text| !text.is_empty()).map_or("5m", String::as_str);
    super::issues::parse_time_range(text)
        .filter(|nanos| (60_000_000_000..=3_600_000_000_000).contains(nanos))
        .ok_or_else(|| ApiError::invalid(format!("window={text:?}: use 1m to 1h, e.g. 5m")))
}

async fn prometheus_view(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let project = path_params(path)?;
    let params = query_params(query)?;
    reject_unknown_params(&params, &["window"], None)?;
    let window_nanos = parse_window(&params)?;
    let project = authorize_read(&state, &headers, project).await?;
    let store = state.store.clone();
    let now = crate::clock::now_unix_nano();
    let text = blocking(move || {
        let minute = 60_000_000_000;
        let query = RollupQuery {
            from_unix_nano: now.saturating_sub(window_nanos) / minute * minute,
            to_unix_nano: now.saturating_add(minute),
            ..RollupQuery::default()
        };
        let recent = store.endpoint_rollups(project.id, &query)?;
        let totals = store.rollup_totals(project.id)?;
        let mut series: BTreeMap<Labels, Series> = BTreeMap::new();
        for total in &totals {
            let entry = series.entry(labels_of(&total.key)).or_default();
            entry.requests += total.requests;
            entry.errors += total.errors;
            entry.sum_nanos += total.duration_sum_nanos;
        }
        for rollup in &recent {
            let entry = series.entry(labels_of(&rollup.key)).or_default();
            entry
                .window
                .merge(&rollup.durations)
                .map_err(|error| ApiError::from(crate::store::StoreError::Database(error.to_string())))?;
        }
        Ok(render(&series, window_nanos))
    })
    .await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

fn render(series: &BTreeMap<Labels, Series>, window_nanos: u64) -> String {
    let mut text = String::new();
    let window_minutes = window_nanos / 60_000_000_000;
    let _ = writeln!(
        text,
        "# HELP http_server_request_duration_seconds Duration of HTTP server requests (SERVER spans): quantiles over the last {window_minutes}m, _sum and _count over all stored rollups."
    );
    let _ = writeln!(text, "# TYPE http_server_request_duration_seconds summary");
    for (labels, values) in series {
        let labels = label_text(labels);
        for (name, q) in QUANTILES {
            let seconds = values.window.quantile_nanos(q).map_or(f64::NAN, |nanos| nanos / 1e9);
            let _ = writeln!(
                text,
                "http_server_request_duration_seconds{{{labels},quantile=\"{name}\"}} {}",
                sample_value(seconds)
            );
        }
        let _ = writeln!(
            text,
            "http_server_request_duration_seconds_sum{{{labels}}} {}",
            sample_value(values.sum_nanos / 1e9)
        );
        let _ = writeln!(text, "http_server_request_duration_seconds_count{{{labels}}} {}", values.requests);
    }
    for (metric, help, pick) in [
        ("http_server_requests_total", "HTTP server requests (SERVER spans) over all stored rollups.", 0),
        ("http_server_errors_total", "HTTP server requests with a 5xx status or span status ERROR.", 1),
    ] {
        let _ = writeln!(text, "# HELP {metric} {help}");
        let _ = writeln!(text, "# TYPE {metric} counter");
        for (labels, values) in series {
            let value = if pick == 0 { values.requests } else { values.errors };
            let _ = writeln!(text, "{metric}{{{}}} {value}", label_text(labels));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_empty_windows_say_nan() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let labels: Labels = ("s\"x".into(), String::new(), "/a".into(), "GET".into(), "2xx");
        let mut series = BTreeMap::new();
        series.insert(labels, Series { requests: 3, errors: 1, sum_nanos: 1.5e9, ..Series::default() });
        let text = render(&series, 300_000_000_000);
        assert!(text.contains(
            "http_server_request_duration_seconds{service=\"s\\\"x\",environment=\"\",route=\"/a\",method=\"GET\",status_class=\"2xx\",quantile=\"0.5\"} NaN"
        ), "{text}");
        assert!(text.contains(
            "_sum{service=\"s\\\"x\",environment=\"\",route=\"/a\",method=\"GET\",status_class=\"2xx\"} 1.5\n"
        ));
        assert!(text.contains("http_server_errors_total{service=\"s\\\"x\",environment=\"\",route=\"/a\",method=\"GET\",status_class=\"2xx\"} 1\n"));
    }
}
