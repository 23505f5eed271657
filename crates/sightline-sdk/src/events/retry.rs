//! Delivery outcome of one request and the delay before the next attempt.
//!
//! Classification follows the OTLP/HTTP retry rules the Sightline receivers use: 429, 502, 503
//! and 504 (and transport errors, timeouts) are retryable; other 5xx are retried too because a
//! ProductGraph server answers 500 for transient storage failures; other 4xx are permanent
//! (the batch is dropped and counted). Delays are exponential with full jitter (AWS
//! Architecture Blog, "Exponential Backoff And Jitter"), and a `Retry-After` (RFC 9110 §10.2.3:
//! delay-seconds or an HTTP-date) replaces the computed delay.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// What to do after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered; how many events the server accepted and rejected.
    Delivered {
        /// `accepted` from the response body (the batch size when the body says nothing).
        accepted: u64,
        /// `rejected` from the response body.
        rejected: u64,
    },
    /// Try again, after `retry_after` when the server said so.
    Retry {
        /// Why (status or transport error), for logs.
        reason: String,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Give up on this batch.
    Permanent {
        /// Why.
        reason: String,
    },
}

/// Classifies an HTTP answer.
pub fn classify(status: u16, retry_after: Option<Duration>, body: &[u8], batch_len: usize) -> Outcome {
    match status {
        200..=299 => {
            let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
            let count =
                |key: &str| parsed.as_ref().and_then(|value| value.get(key)).and_then(serde_json::Value::as_u64);
            Outcome::Delivered {
                accepted: count("accepted").unwrap_or(batch_len as u64),
                rejected: count("rejected").unwrap_or(0),
            }
        }
        408 | 429 | 500..=599 => Outcome::Retry { reason: format!("HTTP {status}"), retry_after },
        _ => Outcome::Permanent {
            reason: format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])),
        },
    }
}

/// Parses `Retry-After`: delay-seconds, or an HTTP-date (IMF-fixdate) measured from `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(date.unix_timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The delay before attempt `attempt + 1` (`attempt` counts from 1): the server's
/// `Retry-After` when given, else `initial · 2^(attempt-1)` with full jitter; capped at `max`.
pub fn backoff(attempt: u32, initial: Duration, max: Duration, retry_after: Option<Duration>) -> Duration {
    if let Some(retry_after) = retry_after {
        return retry_after.min(max);
    }
    let exponential = initial.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))).min(max);
    let jittered = rand::rng().random_range(0.0..=1.0) * exponential.as_secs_f64();
    Duration::from_secs_f64(jittered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:57 GMT", now), Some(Duration::from_secs(20)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO),
            "a past date means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn classification_and_backoff_bounds() {
        assert_eq!(
            classify(202, None, br#"{"accepted":3,"rejected":1,"errors":[]}"#, 4),
            Outcome::Delivered { accepted: 3, rejected: 1 }
        );
        assert!(matches!(
            classify(503, Some(Duration::from_secs(1)), b"", 1),
            Outcome::Retry { retry_after: Some(_), .. }
        ));
        assert!(matches!(classify(429, None, b"", 1), Outcome::Retry { .. }));
        assert!(matches!(classify(401, None, b"bad key", 1), Outcome::Permanent { .. }));
        assert!(matches!(classify(413, None, b"", 1), Outcome::Permanent { .. }));
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for attempt in 1..10 {
            let delay = backoff(attempt, initial, max, None);
            assert!(delay <= (initial * 2u32.pow(attempt - 1)).min(max), "attempt {attempt}: {delay:?}");
        }
        assert_eq!(backoff(1, initial, max, Some(Duration::from_secs(30))), max, "Retry-After capped at max");
        assert_eq!(backoff(1, initial, max, Some(Duration::from_millis(300))), Duration::from_millis(300));
    }
}
