//! Endpoint health: the per-project thresholds that say when an endpoint or service is
//! healthy, degraded or failing, and the rule that applies them to a window's error rate and
//! p95 latency (issue 5, "Endpoint health"). The rule is pure; the API reads the windows from
//! the endpoint rollups.

use serde::{Deserialize, Serialize};

/// When an endpoint (or a whole service) counts as degraded or failing, per project. Stored
/// with the project and changed through `PATCH /api/v1/projects/{project}`
/// (`{"health_thresholds": {...}}`); absent fields keep their defaults.
///
/// Defaults: degraded at ≥ 1 % errors or p95 ≥ 1,000 ms, failing at ≥ 5 % errors or
/// p95 ≥ 3,000 ms, and error rates judged only from 20 requests in the window up (two requests
/// of which one failed is not an outage). The latency figures follow the "1 s keeps the user's
/// flow" limit of Nielsen's response-time guidance, a common APM default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthThresholds {
    /// Errors (5xx or span status ERROR) as a percentage of requests from which an endpoint is
    /// degraded.
    pub error_percent_degraded: f64,
    /// Error percentage from which it is failing.
    pub error_percent_failing: f64,
    /// p95 latency (ms) from which it is degraded.
    pub p95_ms_degraded: f64,
    /// p95 latency (ms) from which it is failing.
    pub p95_ms_failing: f64,
    /// Fewest requests in a window for its error rate to count (latency always counts).
    pub min_requests: u64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            error_percent_degraded: 1.0,
            error_percent_failing: 5.0,
            p95_ms_degraded: 1_000.0,
            p95_ms_failing: 3_000.0,
            min_requests: 20,
        }
    }
}

impl HealthThresholds {
    /// Checks the thresholds make sense: percentages in 0..=100, latencies > 0 and finite, each
    /// "failing" threshold at or above its "degraded" one. The error says which field is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let percent_ok = |value: f64| (0.0..=100.0).contains(&value);
        if !percent_ok(self.error_percent_degraded) || !percent_ok(self.error_percent_failing) {
            return Err("health_thresholds: error percentages must be between 0 and 100".into());
        }
        let latency_ok = |value: f64| value.is_finite() && value > 0.0;
        if !latency_ok(self.p95_ms_degraded) || !latency_ok(self.p95_ms_failing) {
            return Err("health_thresholds: p95 thresholds must be positive milliseconds".into());
        }
        if self.error_percent_failing < self.error_percent_degraded || self.p95_ms_failing < self.p95_ms_degraded {
            return Err("health_thresholds: a \"failing\" threshold must be at or above its \"degraded\" one".into());
        }
        if self.min_requests > 1_000_000 {
            return Err("health_thresholds: min_requests must be at most 1000000".into());
        }
        Ok(())
    }
}

/// Health of an endpoint or service over a window, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// No requests in the window.
    NoTraffic,
    /// Under every threshold.
    Healthy,
    /// At or above a "degraded" threshold.
    Degraded,
    /// At or above a "failing" threshold.
    Failing,
}

/// Classifies a window: `requests` and `errors` counted in it, `p95_ms` its p95 latency
/// (`None` without requests).
pub fn classify(thresholds: &HealthThresholds, requests: u64, errors: u64, p95_ms: Option<f64>) -> HealthStatus {
    if requests == 0 {
        return HealthStatus::NoTraffic;
    }
    let error_percent = errors as f64 * 100.0 / requests as f64;
    let judge_errors = requests >= thresholds.min_requests;
    let p95 = p95_ms.unwrap_or(0.0);
    if (judge_errors && errors > 0 && error_percent >= thresholds.error_percent_failing)
        || p95 >= thresholds.p95_ms_failing
    {
        return HealthStatus::Failing;
    }
    if (judge_errors && errors > 0 && error_percent >= thresholds.error_percent_degraded)
        || p95 >= thresholds.p95_ms_degraded
    {
        return HealthStatus::Degraded;
    }
    HealthStatus::Healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_decide_the_status() {
        let thresholds = HealthThresholds::default();
        assert_eq!(classify(&thresholds, 0, 0, None), HealthStatus::NoTraffic);
        assert_eq!(classify(&thresholds, 100, 0, Some(120.0)), HealthStatus::Healthy);
        assert_eq!(classify(&thresholds, 100, 1, Some(120.0)), HealthStatus::Degraded, "1 % errors");
        assert_eq!(classify(&thresholds, 100, 5, Some(120.0)), HealthStatus::Failing, "5 % errors");
        assert_eq!(classify(&thresholds, 100, 0, Some(1_000.0)), HealthStatus::Degraded, "p95 1 s");
        assert_eq!(classify(&thresholds, 100, 0, Some(3_500.0)), HealthStatus::Failing, "p95 3.5 s");
        assert_eq!(classify(&thresholds, 3, 2, Some(50.0)), HealthStatus::Healthy, "too few requests to judge errors");
        assert_eq!(classify(&thresholds, 3, 2, Some(4_000.0)), HealthStatus::Failing, "latency always counts");
        let zero_tolerance = HealthThresholds { error_percent_degraded: 0.0, min_requests: 1, ..thresholds };
        assert_eq!(classify(&zero_tolerance, 1000, 0, Some(10.0)), HealthStatus::Healthy, "0 % needs an error");
        assert_eq!(classify(&zero_tolerance, 1000, 1, Some(10.0)), HealthStatus::Degraded);
    }

    #[test]
    fn thresholds_are_validated_and_default_per_field() {
        assert_eq!(HealthThresholds::default().validate(), Ok(()));
        let partial: HealthThresholds = serde_json::from_str(r#"{"p95_ms_degraded": 300}"#).expect("parses");
        assert_eq!(partial, HealthThresholds { p95_ms_degraded: 300.0, ..HealthThresholds::default() });
        assert!(serde_json::from_str::<HealthThresholds>(r#"{"p95": 3}"#).is_err(), "unknown fields are refused");
        let inverted = HealthThresholds { error_percent_failing: 0.5, ..HealthThresholds::default() };
        assert!(inverted.validate().is_err_and(|error| error.contains("at or above")));
        let negative = HealthThresholds { p95_ms_degraded: -1.0, ..HealthThresholds::default() };
        assert!(negative.validate().is_err());
        let over = HealthThresholds { error_percent_failing: 120.0, ..HealthThresholds::default() };
        assert!(over.validate().is_err());
    }
}
