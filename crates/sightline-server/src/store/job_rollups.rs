//! Background job and messaging rollups crossing the store boundary (issue 5, item 4): per
//! bucket (1 minute, coarsened to 1 hour like the endpoint rollups) per (service, environment,
//! messaging system, destination or job name, operation) a span count, a failure count, a
//! DDSketch of durations, a DDSketch of queue lag (when it can be known) and the slowest spans
//! as trace links.
//!
//! Which spans count and where the lag comes from is documented in `pipeline/jobs.rs`
//! (OTel semconv "Messaging spans", `docs/messaging/messaging-spans.md`). Durations and lags are
//! ns; both sketches are the endpoint rollups' [`DurationSketch`] (1% relative accuracy, exact
//! merges).

use crate::store::rollups::{DurationSketch, RollupError, SlowRequest, merge_slowest};

/// Slowest spans kept per job rollup row: enough example traces for the job detail.
pub const JOB_SLOWEST_KEPT: usize = 5;

/// The operation recorded for job spans that are not messaging spans (see `pipeline/jobs.rs`).
pub const JOB_OPERATION: &str = "job";

/// What a job rollup row is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    /// `service.name` of the span's resource.
    pub service_name: String,
    /// `deployment.environment.name` (old `deployment.environment`); empty when not sent.
    pub environment: String,
    /// `messaging.system` (e.g. `kafka`, `rabbitmq`, `aws_sqs`); empty for plain jobs.
    pub messaging_system: String,
    /// The queue or topic (`messaging.destination.template`, else `messaging.destination.name`,
    /// old `messaging.destination`), or the job's name for plain jobs.
    pub name: String,
    /// `messaging.operation.type` (old `messaging.operation`) such as `process`, `receive`,
    /// `send`, `create`, `settle`; derived from the span kind when absent; [`JOB_OPERATION`]
    /// for plain jobs.
    pub operation: String,
}

/// One job rollup: a per-batch delta from the pipeline, or a stored row.
#[derive(Debug, Clone)]
pub struct JobRollup {
    /// What it counts.
    pub key: JobKey,
    /// Bucket start, ns since epoch (a multiple of the bucket width).
    pub bucket_start_unix_nano: u64,
    /// Bucket width in seconds: `MINUTE_SECONDS` or `HOUR_SECONDS`.
    pub bucket_seconds: u32,
    /// Spans counted (messages processed or sent, job runs).
    pub count: u64,
    /// Spans whose status is ERROR.
    pub failures: u64,
    /// Span durations (ns).
    pub durations: DurationSketch,
    /// Queue lags (ns): consumer span start − the message's enqueue time, for the spans where
    /// it is known; its count says how many.
    pub lags: DurationSketch,
    /// Slowest spans, slowest first, at most [`JOB_SLOWEST_KEPT`].
    pub slowest: Vec<SlowRequest>,
}

impl JobRollup {
    /// An empty rollup of `key` for the bucket.
    pub fn empty(key: JobKey, bucket_start_unix_nano: u64, bucket_seconds: u32) -> Self {
        Self {
            key,
            bucket_start_unix_nano,
            bucket_seconds,
            count: 0,
            failures: 0,
            durations: DurationSketch::new(),
            lags: DurationSketch::new(),
            slowest: Vec::new(),
        }
    }

    /// Adds another rollup's counts (the key and bucket of `self` stay).
    pub fn merge(&mut self, other: &JobRollup) -> Result<(), RollupError> {
        self.count += other.count;
        self.failures += other.failures;
        self.durations.merge(&other.durations)?;
        self.lags.merge(&other.lags)?;
        merge_slowest(&mut self.slowest, &other.slowest, JOB_SLOWEST_KEPT);
        Ok(())
    }

    /// Counts one span of `slow.duration_nanos`, failed or not, with its queue lag (ns) when
    /// known.
    pub fn add_span(&mut self, slow: SlowRequest, is_failure: bool, lag_nanos: Option<u64>) {
        self.count += 1;
        self.failures += u64::from(is_failure);
        self.durations.add_nanos(slow.duration_nanos);
        if let Some(lag) = lag_nanos {
            self.lags.add_nanos(lag);
        }
        let fastest_kept = self.slowest.last().map_or(0, |kept| kept.duration_nanos);
        if self.slowest.len() < JOB_SLOWEST_KEPT || slow.duration_nanos > fastest_kept {
            merge_slowest(&mut self.slowest, &[slow], JOB_SLOWEST_KEPT);
        }
    }
}

/// Which job rollups to read: buckets starting in `[from, to)` (ns), optionally one service,
/// one environment and one destination / job name.
#[derive(Debug, Clone, Default)]
pub struct JobRollupQuery {
    /// `service.name`; `None` = every service.
    pub service: Option<String>,
    /// Environment; `None` = every environment.
    pub environment: Option<String>,
    /// Destination or job name; `None` = all.
    pub name: Option<String>,
    /// Buckets starting at or after this (ns).
    pub from_unix_nano: u64,
    /// Buckets starting before this (ns).
    pub to_unix_nano: u64,
}

#[cfg(test)]
mod tests {
    use sightline_model::{SpanId, TraceId};

    use super::*;

    #[test]
    fn spans_count_failures_and_lags_and_merge() {
        let key = JobKey {
            service_name: "worker".into(),
            environment: String::new(),
            messaging_system: "kafka".into(),
            name: "orders".into(),
            operation: "process".into(),
        };
        let mut rollup = JobRollup::empty(key.clone(), 0, 60);
        for index in 0..8u8 {
            let slow = SlowRequest {
                trace_id: TraceId([index; 16]),
                span_id: SpanId([index; 8]),
                duration_nanos: u64::from(index) * 1_000,
                start_time_unix_nano: 0,
            };
            let lag = (index % 2 == 0).then_some(u64::from(index) * 1_000_000);
            rollup.add_span(slow, index == 3, lag);
        }
        let mut total = JobRollup::empty(key, 0, 60);
        total.merge(&rollup).expect("merge");
        total.merge(&rollup).expect("merge");
        assert_eq!((total.count, total.failures, total.durations.count(), total.lags.count()), (16, 2, 16, 8));
        assert_eq!(total.lags.max_nanos(), Some(6_000_000.0));
        assert_eq!(
            total.slowest.iter().map(|slow| slow.duration_nanos).collect::<Vec<_>>(),
            [7000, 6000, 5000, 4000, 3000]
        );
    }
}
