//! Amplitude HTTP V2 responses (developers.amplitude.com "HTTP V2 API", status codes):
//! 200 success; 400 names invalid events (`events_with_invalid_fields`,
//! `events_with_missing_fields`, `events_with_invalid_id_lengths`: field → indices) and
//! ingests nothing, so those are dropped and the rest resent — a 400 naming no event
//! (`missing_field: api_key`, invalid JSON) is permanent; 413 too large → split; 429 throttled
//! per user/device → back off; 5xx → retry.

use serde_json::Value;

use crate::exporters::classify::{Classification, retry_after, snippet};

/// Classifies an Amplitude response.
pub fn classify(status: u16, headers: &http::HeaderMap, body: &[u8]) -> Classification {
    match status {
        200..=299 => Classification::Delivered,
        400 => classify_bad_request(body),
        413 => Classification::Split,
        429 => Classification::Retry {
            after: retry_after(headers),
            reason: format!("HTTP 429 (throttled): {}", snippet(body)),
        },
        500..=599 | 408 => {
            Classification::Retry { after: retry_after(headers), reason: format!("HTTP {status}: {}", snippet(body)) }
        }
        _ => Classification::Permanent { reason: format!("HTTP {status}: {}", snippet(body)) },
    }
}

fn classify_bad_request(body: &[u8]) -> Classification {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut rejected: Vec<(usize, String)> = Vec::new();
    if let Some(object) = parsed.as_object() {
        for (key, value) in object {
            let Some(problem) = key.strip_prefix("events_with_") else { continue };
            let Some(fields) = value.as_object() else { continue };
            for (field, indices) in fields {
                for index in indices.as_array().into_iter().flatten().filter_map(Value::as_u64) {
                    let reason = format!("{}: {field}", problem.replace('_', " "));
                    match rejected.iter_mut().find(|(known, _)| *known == index as usize) {
                        Some((_, known_reason)) => {
                            known_reason.push_str(", ");
                            known_reason.push_str(&reason);
                        }
                        None => rejected.push((index as usize, reason)),
                    }
                }
            }
        }
    }
    if rejected.is_empty() {
        return Classification::Permanent { reason: format!("HTTP 400: {}", snippet(body)) };
    }
    rejected.sort_by_key(|(index, _)| *index);
    Classification::PartiallyRejected { rejected, rest_accepted: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_bodies() {
        let headers = http::HeaderMap::new();
        let success =
            br#"{"code":200,"events_ingested":50,"payload_size_bytes":50,"server_upload_time":1396381378123}"#;
        assert_eq!(classify(200, &headers, success), Classification::Delivered);
        // The 400 example of the HTTP V2 docs.
        let invalid = br#"{"code":400,"error":"Request missing required field","missing_field":"api_key",
            "events_with_invalid_fields":{"time":[3,4,7]},"events_with_missing_fields":{"event_type":[3,4,7]}}"#;
        match classify(400, &headers, invalid) {
            Classification::PartiallyRejected { rejected, rest_accepted } => {
                assert!(!rest_accepted, "Amplitude ingests nothing from a 400");
                assert_eq!(rejected.iter().map(|(index, _)| *index).collect::<Vec<_>>(), [3, 4, 7]);
                assert_eq!(rejected[0].1, "invalid fields: time, missing fields: event_type");
            }
            other => panic!("expected partial rejection, got {other:?}"),
        }
        let no_key = br#"{"code":400,"error":"Invalid API key: abc"}"#;
        assert!(matches!(classify(400, &headers, no_key), Classification::Permanent { .. }));
        assert_eq!(classify(413, &headers, br#"{"code":413,"error":"Payload too large"}"#), Classification::Split);
        let throttled = br#"{"code":429,"error":"Too many requests for some devices and users","eps_threshold":30}"#;
        assert!(matches!(classify(429, &headers, throttled), Classification::Retry { after: None, .. }));
        assert!(matches!(classify(503, &headers, b""), Classification::Retry { .. }));
    }
}
