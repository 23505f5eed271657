//! What a destination's response means for the driver (Vector's split: the sink classifies, a
//! shared driver retries). Each exporter maps (status, headers, body) to a [`Classification`]
//! following its vendor's documentation; `delivery` acts on it.

use std::time::Duration;

/// The outcome of one request, as the vendor's documentation defines it.
#[derive(Debug, Clone, PartialEq)]
pub enum Classification {
    /// Every event was accepted.
    Delivered,
    /// Some events were refused for what they contain: `rejected` holds (index in the
    /// request, reason). When `rest_accepted` is true the vendor kept the others (Mixpanel
    /// `strict=1`); when false it kept nothing and the rest must be sent again (Amplitude 400).
    PartiallyRejected {
        /// (index of the event in the request, the vendor's reason).
        rejected: Vec<(usize, String)>,
        /// Whether the events not listed were ingested.
        rest_accepted: bool,
    },
    /// A transient failure (429, 5xx, timeouts, resets): send the same batch again after
    /// `after` (the server's `Retry-After`) or the driver's backoff.
    Retry {
        /// The server's requested delay, when it gave one.
        after: Option<Duration>,
        /// What happened, for `last_error`.
        reason: String,
    },
    /// The request was too large (413): send it again in halves.
    Split,
    /// The request can never succeed as it is (bad credentials, malformed request): the whole
    /// batch becomes dead letters with this reason.
    Permanent {
        /// What happened.
        reason: String,
    },
}

/// Parses `Retry-After` as delta-seconds (RFC 9110 §10.2.3); HTTP dates are not honoured
/// (none of our vendors send them) and give `None`, leaving the driver's backoff in charge.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let text = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: u64 = text.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(3600)))
}

/// The classification shared by plain HTTP APIs: 2xx delivered; 408, 429 and 5xx retried
/// (with `Retry-After`); 413 split; anything else permanent.
pub fn classify_generic(status: u16, headers: &http::HeaderMap, body: &[u8]) -> Classification {
    match status {
        200..=299 => Classification::Delivered,
        413 => Classification::Split,
        408 | 429 | 500..=599 => {
            Classification::Retry { after: retry_after(headers), reason: format!("HTTP {status}: {}", snippet(body)) }
        }
        _ => Classification::Permanent { reason: format!("HTTP {status}: {}", snippet(body)) },
    }
}

/// At most 512 bytes of a response body as text, for `last_error` and dead letters.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_are_read_and_dates_ignored() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(http::header::RETRY_AFTER, "7".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(http::header::RETRY_AFTER, "Wed, 21 Oct 2026 07:28:00 GMT".parse().expect("header"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn generic_statuses() {
        let headers = http::HeaderMap::new();
        assert_eq!(classify_generic(204, &headers, b""), Classification::Delivered);
        assert_eq!(classify_generic(413, &headers, b""), Classification::Split);
        assert!(matches!(classify_generic(503, &headers, b"down"), Classification::Retry { after: None, .. }));
        assert!(matches!(classify_generic(401, &headers, b"no"), Classification::Permanent { .. }));
    }
}
