//! Formatting shared by the pages: times as `<time>` elements (the script shows them in the
//! viewer's zone), durations, counts and URL building.

use std::time::{Duration, UNIX_EPOCH};

use maud::{Markup, html};

/// A `<time datetime="RFC 3339">` for ns since the epoch; the text is UTC until the page script
/// rewrites it in the viewer's time zone (the `title` keeps UTC).
pub fn time(unix_nano: u64) -> Markup {
    let rfc3339 = rfc3339_millis(unix_nano);
    let utc = rfc3339.replace('T', " ").trim_end_matches('Z').to_owned();
    html! { time datetime=(rfc3339) title=(format!("{utc} UTC")) { (utc) " UTC" } }
}

/// RFC 3339 in UTC with milliseconds, `2026-12-01T10:00:00.123Z`.
pub fn rfc3339_millis(unix_nano: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(unix_nano)).to_string()
}

/// A duration in ns as `850 µs`, `12.3 ms`, `1.25 s`, `3.1 min`.
pub fn duration(nanos: u64) -> String {
    let nanos_f = nanos as f64;
    if nanos < 1_000_000 {
        format!("{:.0} µs", nanos_f / 1e3)
    } else if nanos < 1_000_000_000 {
        format!("{:.1} ms", nanos_f / 1e6)
    } else if nanos < 60_000_000_000 {
        format!("{:.2} s", nanos_f / 1e9)
    } else {
        format!("{:.1} min", nanos_f / 6e10)
    }
}

/// Milliseconds (float) as a duration, or `—` when absent.
pub fn millis(value: Option<f64>) -> String {
    match value {
        Some(ms) if ms.is_finite() && ms >= 0.0 => duration((ms * 1e6) as u64),
        _ => "—".into(),
    }
}

/// Percent-encodes a query value or path segment (RFC 3986 unreserved characters kept).
pub fn url_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `path?k=v&...` with empty values left out and values encoded.
pub fn url_with(path: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{}={}", url_encode(key), url_encode(value).replace('/', "%2F")))
        .collect();
    if query.is_empty() { path.to_owned() } else { format!("{path}?{}", query.join("&")) }
}

/// A JSON attribute value for display: strings as they are, anything else as JSON.
pub fn attribute_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration(850_000), "850 µs");
        assert_eq!(duration(12_340_000), "12.3 ms");
        assert_eq!(duration(1_250_000_000), "1.25 s");
        assert_eq!(duration(186_000_000_000), "3.1 min");
        assert_eq!(millis(None), "—");
        assert_eq!(millis(Some(2.5)), "2.5 ms");
    }

    #[test]
    fn times_are_rfc3339_utc_for_the_script() {
        let markup = time(1_764_583_200_123_000_000).into_string();
        assert!(markup.contains(r#"datetime="2025-12-01T10:00:00.123Z""#), "{markup}");
        assert!(markup.contains("2025-12-01 10:00:00.123 UTC"), "{markup}");
    }

    #[test]
    fn urls_keep_non_empty_filters_encoded() {
        assert_eq!(
            url_with("/p/x/issues", &[("status", "unresolved"), ("q", "a b&c"), ("service", "")]),
            "/p/x/issues?status=unresolved&q=a%20b%26c"
        );
        assert_eq!(url_encode("/p/a b"), "/p/a%20b");
    }
}
