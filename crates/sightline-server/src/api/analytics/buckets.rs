//! UTC-aligned time buckets for event statistics: bucket `k` covers
//! `[k · interval, (k + 1) · interval)` ns since the epoch, so hourly buckets start on the hour
//! and daily buckets at 00:00 UTC whatever `from` is, and two requests over overlapping ranges
//! report the same numbers for the buckets they share.

use std::time::Duration;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Most buckets one statistics request may span (a wide chart, with room).
pub(crate) const MAX_BUCKETS: u64 = 1_000;

/// Why a bucket grid cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BucketError {
    /// `to` precedes `from`.
    #[error("from must not be after to")]
    InvertedRange,
    /// The interval is zero.
    #[error("interval must be at least 1 second")]
    ZeroInterval,
    /// The range holds too many buckets of the interval.
    #[error(
        "the range holds {bucket_count} buckets of {interval_seconds} s, more than {MAX_BUCKETS}; use interval >= {minimum_interval_seconds} (seconds) or a shorter range"
    )]
    TooManyBuckets {
        /// Buckets the request would need.
        bucket_count: u64,
        /// The interval asked for (s).
        interval_seconds: u64,
        /// Smallest interval in whole seconds that fits.
        minimum_interval_seconds: u64,
    },
}

/// The buckets covering `[from, to]` (both included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BucketGrid {
    /// Start of the bucket holding `from` (ns since the epoch).
    pub first_start_unix_nano: u64,
    /// Bucket width (ns).
    pub interval_nanos: u64,
    /// Number of buckets.
    pub bucket_count: u64,
}

impl BucketGrid {
    /// Builds the grid; errors when the range is inverted, the interval is zero or the range
    /// needs more than [`MAX_BUCKETS`] buckets.
    pub(crate) fn new(from_unix_nano: u64, to_unix_nano: u64, interval_nanos: u64) -> Result<Self, BucketError> {
        if to_unix_nano < from_unix_nano {
            return Err(BucketError::InvertedRange);
        }
        if interval_nanos == 0 {
            return Err(BucketError::ZeroInterval);
        }
        let first_index = from_unix_nano / interval_nanos;
        let bucket_count = to_unix_nano / interval_nanos - first_index + 1;
        if bucket_count > MAX_BUCKETS {
            // Alignment can add one bucket at each end: `range / interval + 2` must fit.
            let minimum_interval_nanos = (to_unix_nano - from_unix_nano).div_ceil(MAX_BUCKETS - 2);
            return Err(BucketError::TooManyBuckets {
                bucket_count,
                interval_seconds: interval_nanos / NANOS_PER_SECOND,
                minimum_interval_seconds: minimum_interval_nanos.div_ceil(NANOS_PER_SECOND),
            });
        }
        Ok(Self { first_start_unix_nano: bucket_start(from_unix_nano, interval_nanos), interval_nanos, bucket_count })
    }
}

/// Start of the bucket of width `interval_nanos` (> 0) holding `time_unix_nano`: the same
/// arithmetic the store groups events by.
pub(crate) fn bucket_start(time_unix_nano: u64, interval_nanos: u64) -> u64 {
    time_unix_nano / interval_nanos * interval_nanos
}

/// Parses an interval: whole seconds (`3600`) or a duration (`15m`, `1h`, `1d`), at least 1 s
/// and a whole number of seconds. Returns seconds.
pub(crate) fn parse_interval_seconds(text: &str) -> Result<u64, String> {
    let invalid = || format!("interval={text:?}: use whole seconds (3600) or a duration (15m, 1h, 1d)");
    let seconds = match text.parse::<u64>() {
        Ok(seconds) => seconds,
        Err(_) => {
            let duration: Duration = humantime::parse_duration(text).map_err(|_| invalid())?;
            if duration.subsec_nanos() != 0 {
                return Err(invalid());
            }
            duration.as_secs()
        }
    };
    if seconds == 0 {
        return Err("interval must be at least 1 second".into());
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600 * NANOS_PER_SECOND;
    /// 2023-11-14T22:13:20Z.
    const T0: u64 = 1_700_000_000 * NANOS_PER_SECOND;

    #[test]
    fn buckets_are_aligned_to_the_interval_since_the_epoch() {
        let grid = BucketGrid::new(T0, T0 + 2 * HOUR, HOUR).expect("valid");
        // 22:13:20 lies in the 22:00 bucket; 00:13:20 in the 00:00 bucket: 3 buckets.
        assert_eq!(grid.first_start_unix_nano, 1_699_999_200 * NANOS_PER_SECOND);
        assert_eq!(grid.bucket_count, 3);
        assert_eq!(bucket_start(T0 + HOUR, HOUR), 1_700_002_800 * NANOS_PER_SECOND);
        let aligned =
            BucketGrid::new(1_699_999_200 * NANOS_PER_SECOND, 1_700_002_799 * NANOS_PER_SECOND, HOUR).expect("valid");
        assert_eq!(aligned.bucket_count, 1);
        let instant = BucketGrid::new(T0, T0, HOUR).expect("valid");
        assert_eq!(instant.bucket_count, 1);
    }

    #[test]
    fn too_many_buckets_suggest_an_interval_that_fits() {
        let week = 7 * 24 * HOUR;
        let error = BucketGrid::new(T0, T0 + week, 60 * NANOS_PER_SECOND).expect_err("10,081 minutes");
        let BucketError::TooManyBuckets { minimum_interval_seconds, .. } = error.clone() else {
            panic!("{error:?}");
        };
        assert!(error.to_string().contains("more than 1000"), "{error}");
        let fitting = BucketGrid::new(T0, T0 + week, minimum_interval_seconds * NANOS_PER_SECOND).expect("fits");
        assert!(fitting.bucket_count <= MAX_BUCKETS);
        assert_eq!(BucketGrid::new(T0 + 1, T0, HOUR), Err(BucketError::InvertedRange));
        assert_eq!(BucketGrid::new(T0, T0, 0), Err(BucketError::ZeroInterval));
    }

    #[test]
    fn intervals_accept_seconds_and_durations() {
        assert_eq!(parse_interval_seconds("3600"), Ok(3_600));
        assert_eq!(parse_interval_seconds("1h"), Ok(3_600));
        assert_eq!(parse_interval_seconds("15m"), Ok(900));
        assert_eq!(parse_interval_seconds("1d"), Ok(86_400));
        assert!(parse_interval_seconds("0").is_err());
        assert!(parse_interval_seconds("1500ms").is_err());
        assert!(parse_interval_seconds("hourly").is_err());
    }
}
