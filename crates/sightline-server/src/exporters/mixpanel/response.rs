//! Mixpanel `/import` responses with `strict=1` (developer.mixpanel.com "Import Events"):
//! 200 success; 400 with `failed_records: [{index, $insert_id, field, message}]` is a partial
//! success (the other records were imported, `num_records_imported`); a 400 without them,
//! 401 and 403 are permanent; 413 too large → split; 429 → exponential backoff (Mixpanel
//! documents no `Retry-After`, but one is honoured when sent); 5xx → retry.

use serde_json::Value;

use crate::exporters::classify::{Classification, retry_after, snippet};

/// Classifies a Mixpanel response.
pub fn classify(status: u16, headers: &http::HeaderMap, body: &[u8]) -> Classification {
    match status {
        200..=299 => Classification::Delivered,
        400 => {
            let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let rejected: Vec<(usize, String)> = parsed["failed_records"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|record| {
                    let index = record["index"].as_u64()? as usize;
                    let field = record["field"].as_str().unwrap_or("");
                    let message = record["message"].as_str().unwrap_or("invalid");
                    Some((index, if field.is_empty() { message.to_owned() } else { format!("{field}: {message}") }))
                })
                .collect();
            if rejected.is_empty() {
                Classification::Permanent { reason: format!("HTTP 400: {}", snippet(body)) }
            } else {
                Classification::PartiallyRejected { rejected, rest_accepted: true }
            }
        }
        413 => Classification::Split,
        408 | 429 | 500..=599 => {
            Classification::Retry { after: retry_after(headers), reason: format!("HTTP {status}: {}", snippet(body)) }
        }
        _ => Classification::Permanent { reason: format!("HTTP {status}: {}", snippet(body)) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_bodies() {
        let headers = http::HeaderMap::new();
        assert_eq!(
            classify(200, &headers, br#"{"code":200,"num_records_imported":2,"status":"OK"}"#),
            Classification::Delivered
        );
        let partial = br#"{"code":400,"error":"some data points in the request failed validation",
            "failed_records":[{"index":1,"$insert_id":"e2","field":"properties.time",
            "message":"'properties.time' is invalid: must be specified as seconds since epoch"}],
            "num_records_imported":1,"status":"Bad Request"}"#;
        match classify(400, &headers, partial) {
            Classification::PartiallyRejected { rejected, rest_accepted } => {
                assert!(rest_accepted);
                assert_eq!(rejected.len(), 1);
                assert_eq!(rejected[0].0, 1);
                assert!(rejected[0].1.starts_with("properties.time: "));
            }
            other => panic!("expected partial rejection, got {other:?}"),
        }
        assert!(matches!(classify(400, &headers, b"{\"error\":\"bad json\"}"), Classification::Permanent { .. }));
        assert!(matches!(classify(401, &headers, b"Unauthorized"), Classification::Permanent { .. }));
        assert_eq!(classify(413, &headers, b""), Classification::Split);
        assert!(matches!(classify(429, &headers, b""), Classification::Retry { after: None, .. }));
    }
}
