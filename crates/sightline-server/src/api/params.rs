//! Request-parameter helpers shared by the query endpoints, so that every malformed path, query
//! string or unknown parameter gets the API's JSON 400 rather than axum's plain-text rejection.

use std::collections::HashMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};

use super::{ApiError, parse_param};

/// Query parameters as a map (a repeated name keeps its last value).
pub(crate) type QueryParams = HashMap<String, String>;

/// The extracted query string, or a JSON 400 saying why it could not be read.
pub(crate) fn query_params(extracted: Result<Query<QueryParams>, QueryRejection>) -> Result<QueryParams, ApiError> {
    extracted.map(|Query(params)| params).map_err(|rejection| ApiError::invalid(rejection.body_text()))
}

/// The extracted path parameters, or a JSON 400 saying why they could not be read.
pub(crate) fn path_params<T>(extracted: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    extracted.map(|Path(params)| params).map_err(|rejection| ApiError::invalid(rejection.body_text()))
}

/// Refuses parameters the endpoint does not know, so a typo (`servce=`) is reported instead of
/// silently returning unfiltered data. Names starting with `known_prefix` are accepted.
pub(crate) fn reject_unknown_params(
    params: &QueryParams,
    known: &[&str],
    known_prefix: Option<&str>,
) -> Result<(), ApiError> {
    let mut unknown: Vec<&str> = params
        .keys()
        .map(String::as_str)
        .filter(|name| !known.contains(name))
        .filter(|name| known_prefix.is_none_or(|prefix| !name.starts_with(prefix)))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    let mut accepted = known.join(", ");
    if let Some(prefix) = known_prefix {
        accepted.push_str(&format!(", {prefix}<key>"));
    }
    Err(ApiError::invalid(format!("unknown parameter(s) {}; this endpoint accepts {accepted}", unknown.join(", "))))
}

/// The `limit` parameter: `default_limit` when absent, an error outside `1..=max_limit`.
pub(crate) fn parse_limit(params: &QueryParams, default_limit: usize, max_limit: usize) -> Result<usize, ApiError> {
    let limit = parse_param::<usize>("limit", params.get("limit"))?.unwrap_or(default_limit);
    if limit == 0 || limit > max_limit {
        return Err(ApiError::invalid(format!("limit must be between 1 and {max_limit}, got {limit}")));
    }
    Ok(limit)
}

/// The `timeRange` parameter (`30m`, `24h`, `7d`, ... at most 90 days; `default` when absent or
/// empty) in ns; 400 naming the parameter when it does not parse.
pub(crate) fn time_range_param(params: &QueryParams, default: &str) -> Result<u64, ApiError> {
    let text = params.get("timeRange").filter(|text| !text.is_empty()).map_or(default, String::as_str);
    super::issues::parse_time_range(text)
        .ok_or_else(|| ApiError::invalid(format!("timeRange={text:?}: use e.g. 30m, 24h or 7d (at most 90d)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn unknown_parameters_are_named_in_the_error() {
        let known = ["service", "limit"];
        assert!(reject_unknown_params(&params(&[("service", "a"), ("attr.x", "1")]), &known, Some("attr.")).is_ok());
        let error = reject_unknown_params(&params(&[("servce", "a"), ("attr.x", "1")]), &known, None)
            .expect_err("typo and prefix without a known prefix");
        assert_eq!(error.message, "unknown parameter(s) attr.x, servce; this endpoint accepts service, limit");
    }

    #[test]
    fn limit_defaults_and_is_bounded() {
        assert_eq!(parse_limit(&params(&[]), 20, 1000).ok(), Some(20));
        assert_eq!(parse_limit(&params(&[("limit", "")]), 20, 1000).ok(), Some(20));
        assert_eq!(parse_limit(&params(&[("limit", "1000")]), 20, 1000).ok(), Some(1000));
        assert!(parse_limit(&params(&[("limit", "1001")]), 20, 1000).is_err());
        assert!(parse_limit(&params(&[("limit", "0")]), 20, 1000).is_err());
        assert!(parse_limit(&params(&[("limit", "-3")]), 20, 1000).is_err());
    }
}
