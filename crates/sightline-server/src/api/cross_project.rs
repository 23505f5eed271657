//! Cross-project analytics (issue 5, item 7): one metric of the endpoint RED rollups (SERVER
//! spans, every service) compared across several projects that the caller's key may read — its
//! own project and the projects granted to it with `sightline project grant` (table
//! `api_key_grants`).
//!
//! `GET /api/v1/analytics/cross-project?projects[]=a&projects[]=b&metric=response_time&timeRange=24h&environment=`
//! (`projects` without the brackets, and comma-separated lists, work too; at most 20 projects,
//! by slug or id) → `{metric, environment, from_unix_nano, to_unix_nano, bucket_seconds,
//! projects: [{project, name, requests, ..., series: [{start_unix_nano, ...}]}]}` in the order
//! asked, where the metric fields are:
//! - `response_time`: `p50_ms`, `p95_ms`, `p99_ms` from the merged duration sketches (within 1%,
//!   see `store::rollups`); per bucket the same three;
//! - `error_rate`: `errors`, `error_rate` (0..=1; errors are 5xx or status ERROR, as in the
//!   performance endpoints); per bucket `requests`, `errors`, `error_rate` (`null` without
//!   requests);
//! - `throughput`: `rpm` (requests per minute of the range); per bucket `requests`, `rpm`.
//!
//! Errors: 400 for a missing or unknown `metric`, no projects, too many, or an unknown
//! parameter; 401 without a valid key; 403 for an ingest key, and 403 naming the first project
//! the key may not read — **also when that project does not exist**, so that a caller cannot
//! probe which project names exist (the project routes answer 404 for both, for the same
//! reason).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::params::QueryParams;
use super::performance::{bucket_seconds_for, nanos_to_ms, range_start};
use super::{ApiError, blocking};
use crate::auth::key_from_headers;
use crate::server::AppState;
use crate::store::rollups::{DurationSketch, EndpointRollup, RollupQuery};
use crate::store::{Project, Store, StoreError};

/// Most projects one request may compare.
pub const MAX_PROJECTS: usize = 20;

const NANOS_PER_MINUTE: u64 = 60_000_000_000;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/analytics/cross-project", get(cross_project))
}

/// The `metric` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    ResponseTime,
    ErrorRate,
    Throughput,
}

impl Metric {
    fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text {
            Some("response_time") => Ok(Metric::ResponseTime),
            Some("error_rate") => Ok(Metric::ErrorRate),
            Some("throughput") => Ok(Metric::Throughput),
            Some(other) => {
                Err(ApiError::invalid(format!("metric={other:?}: use response_time, error_rate or throughput")))
            }
            None => Err(ApiError::invalid("metric is required: response_time, error_rate or throughput")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Metric::ResponseTime => "response_time",
            Metric::ErrorRate => "error_rate",
            Metric::Throughput => "throughput",
        }
    }
}

/// Parsed, validated parameters.
struct Request {
    projects: Vec<String>,
    metric: Metric,
    environment: Option<String>,
    from_unix_nano: u64,
    to_unix_nano: u64,
}

fn parse_request(pairs: Vec<(String, String)>, now_unix_nano: u64) -> Result<Request, ApiError> {
    let mut projects: Vec<String> = Vec::new();
    let mut single = QueryParams::new();
    for (name, value) in pairs {
        match name.as_str() {
            "projects[]" | "projects" => {
                for project in value.split(',').map(str::trim).filter(|project| !project.is_empty()) {
                    if !projects.iter().any(|known| known == project) {
                        projects.push(project.to_owned());
                    }
                }
            }
            "metric" | "timeRange" | "environment" => {
                single.insert(name, value);
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown parameter {other}; this endpoint accepts projects[], metric, timeRange, environment"
                )));
            }
        }
    }
    if projects.is_empty() {
        return Err(ApiError::invalid("name the projects to compare: projects[]=a&projects[]=b"));
    }
    if projects.len() > MAX_PROJECTS {
        return Err(ApiError::invalid(format!("at most {MAX_PROJECTS} projects per request, got {}", projects.len())));
    }
    let metric = Metric::parse(single.get("metric").map(String::as_str).filter(|text| !text.is_empty()))?;
    let from_unix_nano = range_start(&single, now_unix_nano)?;
    let environment = single.get("environment").filter(|environment| !environment.is_empty()).cloned();
    Ok(Request { projects, metric, environment, from_unix_nano, to_unix_nano: now_unix_nano })
}

fn forbidden(message: String) -> ApiError {
    ApiError { status: StatusCode::FORBIDDEN, code: "forbidden", message }
}

/// The projects, in the order asked, if the key may read every one (see the module docs).
fn readable_projects(
    store: &dyn Store,
    key: crate::auth::ApiKeySecret,
    slugs: &[String],
) -> Result<Vec<Project>, ApiError> {
    let record = store.find_api_key(&key)?.ok_or_else(|| ApiError {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthenticated",
        message: "unknown or revoked API key".into(),
    })?;
    if !record.scope.can_read() {
        return Err(forbidden(
            "this is an ingest key; create a read key with 'sightline key create --scope read'".into(),
        ));
    }
    let mut projects = Vec::with_capacity(slugs.len());
    for slug in slugs {
        let readable = match store.find_project(slug)? {
            Some(project) if store.key_may_read(&record, project.id)? => Some(project),
            _ => None,
        };
        let project = readable.ok_or_else(|| {
            forbidden(format!(
                "this key may not read project {slug:?} (or it does not exist); grant it with \
                 'sightline project grant {slug} --key-id {}'",
                record.id
            ))
        })?;
        projects.push(project);
    }
    Ok(projects)
}

async fn cross_project(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(pairs) = query.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
    let request = parse_request(pairs, crate::clock::now_unix_nano())?;
    let key = key_from_headers(&headers).ok_or_else(|| ApiError {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthenticated",
        message: "send a read API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'".into(),
    })?;
    let state = state.clone();
    blocking(move || {
        let projects = readable_projects(state.store.as_ref(), key, &request.projects)?;
        let range_nanos = request.to_unix_nano - request.from_unix_nano;
        let bucket_seconds = bucket_seconds_for(range_nanos);
        let mut entries = Vec::with_capacity(projects.len());
        for project in &projects {
            let query = RollupQuery {
                service: None,
                environment: request.environment.clone(),
                operation: None,
                from_unix_nano: request.from_unix_nano,
                to_unix_nano: request.to_unix_nano,
            };
            let rollups = state.store.endpoint_rollups(project.id, &query)?;
            let mut entry = project_entry(&rollups, &request, bucket_seconds)?;
            entry["project"] = json!(project.slug);
            entry["name"] = json!(project.name);
            entries.push(entry);
        }
        Ok(Json(json!({
            "metric": request.metric.as_str(),
            "environment": request.environment,
            "from_unix_nano": request.from_unix_nano,
            "to_unix_nano": request.to_unix_nano,
            "bucket_seconds": bucket_seconds,
            "projects": entries,
        })))
    })
    .await
}

/// Requests, errors and durations of some rollup rows.
#[derive(Default)]
struct Totals {
    requests: u64,
    errors: u64,
    durations: DurationSketch,
}

impl Totals {
    fn add(&mut self, rollup: &EndpointRollup) -> Result<(), ApiError> {
        self.requests += rollup.requests;
        self.errors += rollup.errors;
        self.durations.merge(&rollup.durations).map_err(|error| ApiError::from(StoreError::Database(error.to_string())))
    }

    fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }

    /// The metric's fields; `minutes` is the length the requests are spread over.
    fn fields(&self, metric: Metric, minutes: f64) -> Value {
        let quantile_ms = |q: f64| self.durations.quantile_nanos(q).map(nanos_to_ms);
        match metric {
            Metric::ResponseTime => {
                json!({"p50_ms": quantile_ms(0.5), "p95_ms": quantile_ms(0.95), "p99_ms": quantile_ms(0.99)})
            }
            Metric::ErrorRate => json!({"errors": self.errors, "error_rate": self.error_rate()}),
            Metric::Throughput => json!({"rpm": self.requests as f64 / minutes}),
        }
    }
}

/// One project's totals and series for the metric.
fn project_entry(rollups: &[EndpointRollup], request: &Request, bucket_seconds: u64) -> Result<Value, ApiError> {
    let width = bucket_seconds * 1_000_000_000;
    let first = request.from_unix_nano / width * width;
    let count = (request.to_unix_nano.saturating_sub(first) / width + 1) as usize;
    let mut total = Totals::default();
    let mut buckets: Vec<Totals> = (0..count).map(|_| Totals::default()).collect();
    for rollup in rollups {
        total.add(rollup)?;
        let index = (rollup.bucket_start_unix_nano.saturating_sub(first) / width) as usize;
        if let Some(bucket) = buckets.get_mut(index) {
            bucket.add(rollup)?;
        }
    }
    let range_minutes = ((request.to_unix_nano - request.from_unix_nano) as f64 / NANOS_PER_MINUTE as f64).max(1.0);
    let bucket_minutes = bucket_seconds as f64 / 60.0;
    let series: Vec<Value> = buckets
        .iter()
        .enumerate()
        .map(|(index, bucket)| {
            let mut point = bucket.fields(request.metric, bucket_minutes);
            point["start_unix_nano"] = json!(first + index as u64 * width);
            if request.metric != Metric::ResponseTime {
                point["requests"] = json!(bucket.requests);
            }
            point
        })
        .collect();
    let mut entry = total.fields(request.metric, range_minutes);
    entry["requests"] = json!(total.requests);
    entry["series"] = Value::Array(series);
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn parameters_are_validated_and_projects_deduplicated() {
        let now = 100 * 3_600_000_000_000;
        let request = parse_request(
            pairs(&[("projects[]", "a"), ("projects", "b,a, c"), ("metric", "throughput"), ("timeRange", "1h")]),
            now,
        )
        .expect("valid");
        assert_eq!(request.projects, ["a", "b", "c"]);
        assert_eq!(request.metric, Metric::Throughput);
        assert_eq!(request.to_unix_nano - request.from_unix_nano, 3_600_000_000_000);
        let error = |list: &[(&str, &str)]| parse_request(pairs(list), now).err().map(|error| error.message);
        assert!(error(&[("projects[]", "a")]).is_some_and(|message| message.contains("metric is required")));
        assert!(
            error(&[("projects[]", "a"), ("metric", "latency")]).is_some_and(|message| message.contains("latency"))
        );
        assert!(error(&[("metric", "error_rate")]).is_some_and(|message| message.contains("projects[]")));
        assert!(error(&[("projects[]", "a"), ("metric", "error_rate"), ("project", "b")]).is_some());
        let many: Vec<(String, String)> =
            (0..=MAX_PROJECTS).map(|index| ("projects[]".into(), format!("p{index}"))).collect();
        let mut many = many;
        many.push(("metric".into(), "throughput".into()));
        assert!(parse_request(many, now).is_err());
    }
}
