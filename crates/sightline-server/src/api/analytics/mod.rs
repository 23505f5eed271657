//! Product analytics computed in Rust over bounded store reads, so every backend answers alike:
//! journey funnels ([`funnel`]), percentiles ([`percentile`]), UTC-aligned time buckets
//! ([`buckets`]) and web-vital ratings ([`vitals`]). The modules are pure (no I/O); the
//! handlers in `api/journeys.rs`, `api/event_stats.rs` and `api/web_vitals.rs` read the store
//! and call them.

pub(crate) mod buckets;
pub(crate) mod funnel;
pub(crate) mod percentile;
pub(crate) mod vitals;

use super::params::QueryParams;
use super::{ApiError, parse_time};

/// ns per hour.
pub(crate) const NANOS_PER_HOUR: u64 = 3_600 * 1_000_000_000;

pub(crate) use crate::clock::now_unix_nano;

/// `from` and `to` (ns since the epoch) of a request: `to` defaults to now, `from` to
/// `default_range_nanos` before `to`; 400 when `from` is after `to`.
pub(crate) fn time_range(
    params: &QueryParams,
    now_unix_nano: u64,
    default_range_nanos: u64,
) -> Result<(u64, u64), ApiError> {
    let to_unix_nano = parse_time("to", params.get("to"))?.unwrap_or(now_unix_nano);
    let from_unix_nano =
        parse_time("from", params.get("from"))?.unwrap_or(to_unix_nano.saturating_sub(default_range_nanos));
    if from_unix_nano > to_unix_nano {
        return Err(ApiError::invalid("from must not be after to"));
    }
    Ok((from_unix_nano, to_unix_nano))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_range_defaults_and_rejects_inverted_ranges() {
        let now = 1_700_000_000 * 1_000_000_000;
        let empty = QueryParams::new();
        assert_eq!(time_range(&empty, now, NANOS_PER_HOUR).ok(), Some((now - NANOS_PER_HOUR, now)));
        let explicit: QueryParams = [("from".to_owned(), "1600000000".to_owned())].into();
        assert_eq!(time_range(&explicit, now, NANOS_PER_HOUR).ok(), Some((1_600_000_000 * 1_000_000_000, now)));
        let inverted: QueryParams = [("from".to_owned(), "1800000000".to_owned())].into();
        assert!(time_range(&inverted, now, NANOS_PER_HOUR).is_err());
    }
}
