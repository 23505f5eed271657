//! Database query rollups crossing the store boundary (issue 5, item 3): per bucket (1 minute,
//! coarsened to 1 hour like the endpoint rollups) per (service, database system, namespace,
//! normalized query) a call count, an error count, a DDSketch of durations and the slowest
//! calls as trace links.
//!
//! Source: OTel semconv "Database spans" (`db.system.name` / old `db.system`, `db.namespace` /
//! old `db.name`, `db.query.text` / old `db.statement`). Durations are ns; the sketch is the
//! endpoint rollups' [`DurationSketch`] (1% relative accuracy, exact merges).

use crate::store::rollups::{DurationSketch, RollupError, SlowRequest, merge_slowest};

/// Slowest calls kept per query rollup row: enough example traces for the slow-query list.
pub const QUERY_SLOWEST_KEPT: usize = 5;

/// What a query rollup row is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryKey {
    /// `service.name` of the calling service's resource.
    pub service_name: String,
    /// `db.system.name` (old semconv `db.system`), e.g. `postgresql`.
    pub db_system: String,
    /// `db.namespace` (old `db.name`); empty when not sent.
    pub db_namespace: String,
    /// The query text normalized by `pipeline::query_normalize::normalize_query`.
    pub query: String,
}

impl QueryKey {
    /// A stable 64-bit FNV-1a hash of the normalized query: the stored row key, so that keys
    /// stay small however long the query text is (the text itself is stored beside it).
    pub fn query_fingerprint(&self) -> i64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.query.as_bytes() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash as i64
    }
}

/// One query rollup: a per-batch delta from the pipeline, or a stored row.
#[derive(Debug, Clone)]
pub struct QueryRollup {
    /// What it counts.
    pub key: QueryKey,
    /// Bucket start, ns since epoch (a multiple of the bucket width).
    pub bucket_start_unix_nano: u64,
    /// Bucket width in seconds: `MINUTE_SECONDS` or `HOUR_SECONDS`.
    pub bucket_seconds: u32,
    /// Calls (database spans).
    pub calls: u64,
    /// Calls whose span status is ERROR.
    pub errors: u64,
    /// Call durations (ns).
    pub durations: DurationSketch,
    /// Slowest calls, slowest first, at most [`QUERY_SLOWEST_KEPT`].
    pub slowest: Vec<SlowRequest>,
}

impl QueryRollup {
    /// An empty rollup of `key` for the bucket.
    pub fn empty(key: QueryKey, bucket_start_unix_nano: u64, bucket_seconds: u32) -> Self {
        Self {
            key,
            bucket_start_unix_nano,
            bucket_seconds,
            calls: 0,
            errors: 0,
            durations: DurationSketch::new(),
            slowest: Vec::new(),
        }
    }

    /// Adds another rollup's counts (the key and bucket of `self` stay).
    pub fn merge(&mut self, other: &QueryRollup) -> Result<(), RollupError> {
        self.calls += other.calls;
        self.errors += other.errors;
        self.durations.merge(&other.durations)?;
        merge_slowest(&mut self.slowest, &other.slowest, QUERY_SLOWEST_KEPT);
        Ok(())
    }

    /// Counts one call of `duration_nanos` (a database span).
    pub fn add_call(&mut self, slow: SlowRequest, is_error: bool) {
        self.calls += 1;
        self.errors += u64::from(is_error);
        self.durations.add_nanos(slow.duration_nanos);
        let fastest_kept = self.slowest.last().map_or(0, |kept| kept.duration_nanos);
        if self.slowest.len() < QUERY_SLOWEST_KEPT || slow.duration_nanos > fastest_kept {
            merge_slowest(&mut self.slowest, &[slow], QUERY_SLOWEST_KEPT);
        }
    }
}

/// Which query rollups to read: buckets starting in `[from, to)` (ns), optionally one service
/// and one database system.
#[derive(Debug, Clone, Default)]
pub struct QueryRollupQuery {
    /// `service.name`; `None` = every service.
    pub service: Option<String>,
    /// `db.system.name`; `None` = every system.
    pub db_system: Option<String>,
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
    fn calls_keep_the_slowest_and_merge() {
        let key = QueryKey {
            service_name: "shop".into(),
            db_system: "postgresql".into(),
            db_namespace: String::new(),
            query: "SELECT ?".into(),
        };
        let mut rollup = QueryRollup::empty(key.clone(), 0, 60);
        for index in 0..8u8 {
            let slow = SlowRequest {
                trace_id: TraceId([index; 16]),
                span_id: SpanId([index; 8]),
                duration_nanos: u64::from(index) * 1_000,
                start_time_unix_nano: 0,
            };
            rollup.add_call(slow, index == 3);
        }
        let mut total = QueryRollup::empty(key.clone(), 0, 60);
        total.merge(&rollup).expect("merge");
        total.merge(&rollup).expect("merge");
        assert_eq!((total.calls, total.errors, total.durations.count()), (16, 2, 16));
        assert_eq!(
            total.slowest.iter().map(|slow| slow.duration_nanos).collect::<Vec<_>>(),
            [7000, 6000, 5000, 4000, 3000]
        );
        assert_eq!(key.query_fingerprint(), key.clone().query_fingerprint(), "stable");
        assert_ne!(key.query_fingerprint(), QueryKey { query: "SELECT ? ".into(), ..key }.query_fingerprint());
    }
}
