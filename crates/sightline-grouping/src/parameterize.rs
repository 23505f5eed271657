//! Message parameterization: variable parts of an error message (ids, numbers, addresses, dates) become
//! placeholders so that one bug with different values groups together. Patterns and their order follow
//! Sentry's `src/sentry/grouping/parameterization.py` (`DEFAULT_PARAMETERIZATION_REGEXES`): specific
//! patterns run first so that, say, an IP address is not read as floats.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// One placeholder kind: its name (the placeholder is `<name>`) and its pattern.
struct Parameter {
    name: &'static str,
    regex: Regex,
    /// Only replace matches that pass this check (Rust's `regex` has no look-around).
    accept: fn(&str) -> bool,
    /// Text kept before the placeholder (the `=` of `key='value'`, which Sentry keeps via look-behind).
    keep_prefix: &'static str,
}

fn accept_all(_: &str) -> bool {
    true
}

/// Hex without `0x` must mix digits and letters: all-digit runs are integers, all-letter runs are words.
fn accept_mixed_hex(matched: &str) -> bool {
    matched.starts_with("0x")
        || matched.starts_with("0X")
        || (matched.bytes().any(|byte| byte.is_ascii_digit()) && matched.bytes().any(|byte| byte.is_ascii_alphabetic()))
}

/// IPv6 candidates must have a digit: `Bad::Request` or `cafe::face` are names, not addresses.
fn accept_ip(matched: &str) -> bool {
    !matched.contains(':') || matched.bytes().any(|byte| byte.is_ascii_digit())
}

const MONTH: &str = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const WEEKDAY: &str = "(?:Sun|Mon|Tue|Wed|Thu|Fri|Sat)";
const TIMEZONE: &str = "(?:[-+]\\d{2}:?[0-5]\\d|UTC|UT|GMT|Z|(?:E|C|M|P)(?:ST|DT))";

/// Sentry's hostname pattern lists the 100 most common TLDs rather than every one.
const TOP_LEVEL_DOMAINS: &str = "com|net|org|jp|de|uk|fr|br|it|ru|es|me|gov|pl|ca|au|cn|co|in|nl|edu|info|eu|ch|id|at|kr|cz|mx|be|tv|se|tr|tw|al|ua|ir|vn|cl|sk|ly|cc|to|no|fi|us|pt|dk|ar|hu|tk|gr|il|news|ro|my|biz|ie|za|nz|sg|ee|th|io|xyz|pe|bg|hk|rs|lt|link|ph|club|si|site|mobi|by|cat|wiki|la|ga|xxx|cf|hr|ng|jobs|online|kz|ug|gq|ae|is|lv|pro|fm|tips|ms|sa|app|local|internal|dev|cloud";

/// (name, pattern, accept, keep_prefix) of one [`Parameter`] before compiling.
type PatternSpec = (&'static str, String, fn(&str) -> bool, &'static str);

static PARAMETERS: LazyLock<Vec<Parameter>> = LazyLock::new(|| {
    let ipv4_octet = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)";
    // Leftmost-first alternation: forms with more groups after `::` come first so the longest address wins.
    let ipv6 = [
        r"\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b",
        r"\b[0-9a-fA-F]{1,4}:(?::[0-9a-fA-F]{1,4}){1,6}\b",
        r"\b(?:[0-9a-fA-F]{1,4}:){1,2}(?::[0-9a-fA-F]{1,4}){1,5}\b",
        r"\b(?:[0-9a-fA-F]{1,4}:){1,3}(?::[0-9a-fA-F]{1,4}){1,4}\b",
        r"\b(?:[0-9a-fA-F]{1,4}:){1,4}(?::[0-9a-fA-F]{1,4}){1,3}\b",
        r"\b(?:[0-9a-fA-F]{1,4}:){1,5}(?::[0-9a-fA-F]{1,4}){1,2}\b",
        r"\b(?:[0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}\b",
        r"::(?:[0-9a-fA-F]{1,4}:){0,5}[0-9a-fA-F]{1,4}\b",
    ]
    .join("|");
    let date = [
        // RFC 822 / 1123: Mon, 02 Jan 2006 15:04:05 -0700
        format!(r"{WEEKDAY},\s\d{{1,2}}\s{MONTH}\s\d{{2,4}}\s\d{{1,2}}:\d{{2}}(?::\d{{2}})?\s{TIMEZONE}"),
        // RFC 3339 / ISO 8601 with optional fraction and zone: 2024-06-01T12:34:56.789Z
        format!(r"\d{{4}}-[01]\d-[0-3]\d[T ][0-2]\d:[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?(?:\s?{TIMEZONE})?"),
        // Mon Jan 02, 2006 / Jan 02, 2006
        format!(r"(?:{WEEKDAY}\s)?{MONTH}\s[0-3]?\d,\s\d{{2,4}}"),
        // syslog / ctime: Mon Jan  2 15:04:05
        format!(r"(?:{WEEKDAY}\s+)?{MONTH}\s+\d{{1,2}}\s+\d{{2}}:\d{{2}}:\d{{2}}(?:\s\d{{4}})?"),
        // Kitchen: 3:04 PM
        r"\b[1-9]\d?:\d{2}(?::\d{2})?\s?[aApP][mM]\b".to_owned(),
        // Date: 2024-06-01, Time: 15:04:05(.000)
        r"\b\d{4}-[01]\d-[0-3]\d\b".to_owned(),
        r"\b[0-2]\d:[0-5]\d:[0-5]\d(?:[.,]\d+)?\b".to_owned(),
    ]
    .join("|");
    let patterns: Vec<PatternSpec> = vec![
        ("email", r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}\b".to_owned(), accept_all, ""),
        ("url", r"\b(?:wss?|https?|ftp)://[^\s/$.?#][^\s]*".to_owned(), accept_all, ""),
        ("hostname", format!(r"\b(?:[a-zA-Z0-9-]{{1,63}}\.)+(?i:{TOP_LEVEL_DOMAINS})\b"), accept_all, ""),
        ("ip", format!(r"\b(?:{ipv4_octet}\.){{3}}{ipv4_octet}\b|{ipv6}"), accept_ip, ""),
        ("traceparent", r"\b00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\b".to_owned(), accept_all, ""),
        (
            "uuid",
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b".to_owned(),
            accept_all,
            "",
        ),
        ("sha1", r"\b[0-9a-fA-F]{40}\b".to_owned(), accept_mixed_hex, ""),
        ("md5", r"\b[0-9a-fA-F]{32}\b".to_owned(), accept_mixed_hex, ""),
        ("date", date, accept_all, ""),
        (
            "duration",
            r"\b\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?)\b".to_owned(),
            accept_all,
            "",
        ),
        // 0x-prefixed of any length, or 7 (short git SHA) to 128 characters mixing digits and letters.
        ("hex", r"\b0[xX][0-9a-fA-F]+\b|\b[0-9a-fA-F]{7,128}\b".to_owned(), accept_mixed_hex, ""),
        ("float", r"-\d+\.\d+\b|\b\d+\.\d+\b".to_owned(), accept_all, ""),
        ("int", r"-\d+\b|\b\d+\b".to_owned(), accept_all, ""),
        ("quoted_str", r#"='[^']+'|="[^"]+""#.to_owned(), accept_all, "="),
        ("bool", r"=(?:true|false)\b".to_owned(), accept_all, "="),
    ];
    patterns
        .into_iter()
        .map(|(name, pattern, accept, keep_prefix)| Parameter {
            name,
            regex: Regex::new(&pattern).expect("parameterization regex compiles"),
            accept,
            keep_prefix,
        })
        .collect()
});

/// Replaces the variable parts of a message with placeholders, in Sentry's order: `<email>`, `<url>`,
/// `<hostname>`, `<ip>`, `<traceparent>`, `<uuid>`, `<sha1>`, `<md5>`, `<date>`, `<duration>`, `<hex>`,
/// `<float>`, `<int>`, `<quoted_str>` (values of `key='...'`), `<bool>` (values of `key=true`).
///
/// `"order 1042 for bob@acme.com failed after 30s"` → `"order <int> for <email> failed after <duration>"`.
/// Idempotent (placeholders match no pattern) and linear in the input (the `regex` crate never
/// backtracks); it does not truncate: [`crate::fingerprint`] bounds messages to
/// [`crate::MAX_MESSAGE_BYTES`] first.
pub fn normalize_message(message: &str) -> String {
    let mut text = replace_parameters(message).into_owned();
    // A replacement can expose a match for a more specific pattern that already ran (text glued to a
    // placeholder); repeating until nothing changes makes the result a fixed point, hence idempotent.
    for _ in 0..MAX_EXTRA_PASSES {
        match replace_parameters(&text) {
            Cow::Borrowed(_) => break,
            Cow::Owned(next) => text = next,
        }
    }
    text
}

/// Passes after the first; in practice the second pass finds nothing.
const MAX_EXTRA_PASSES: usize = 3;

/// One pass of every pattern in order; borrowed when nothing was replaced.
fn replace_parameters(message: &str) -> Cow<'_, str> {
    let mut text: Cow<'_, str> = Cow::Borrowed(message);
    for parameter in PARAMETERS.iter() {
        let mut replaced_any = false;
        let replaced = parameter.regex.replace_all(&text, |captures: &Captures<'_>| {
            let matched = &captures[0];
            if (parameter.accept)(matched) {
                replaced_any = true;
                format!("{}<{}>", parameter.keep_prefix, parameter.name)
            } else {
                matched.to_owned()
            }
        });
        if replaced_any {
            text = Cow::Owned(replaced.into_owned());
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_each_kind() {
        let cases = [
            ("mail bob.smith+x@acme.co.uk now", "mail <email> now"),
            ("GET https://api.acme.com/v1/orders/1042?x=1 failed", "GET <url> failed"),
            ("connect to db-3.internal.acme.com refused", "connect to <hostname> refused"),
            ("gateway 10.2.3.4 timed out", "gateway <ip> timed out"),
            ("peer 2001:db8::8a2e:370:7334 reset", "peer <ip> reset"),
            ("trace 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 lost", "trace <traceparent> lost"),
            ("user 123e4567-e89b-12d3-a456-426614174000 missing", "user <uuid> missing"),
            ("commit 9fceb02d0ae598e95dc970b74767f19372d61af8 bad", "commit <sha1> bad"),
            ("etag 9e107d9d372bb6826bd81d3542a419d6 stale", "etag <md5> stale"),
            ("at 2024-06-01T12:34:56.789Z and 2024-06-02", "at <date> and <date>"),
            ("timed out after 30s (limit 1500ms)", "timed out after <duration> (limit <duration>)"),
            ("bad pointer 0x7ffe3a2b and commit 3f2a1b9", "bad pointer <hex> and commit <hex>"),
            ("ratio 0.75 over -1.5", "ratio <float> over <float>"),
            ("order 1042 has -3 items", "order <int> has <int> items"),
            ("user='bob' active=true", "user=<quoted_str> active=<bool>"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_message(input), expected, "{input}");
        }
    }

    #[test]
    fn leaves_plain_words_alone() {
        let text = "Cannot read properties of undefined (reading 'amount') deadbeef cafe";
        assert_eq!(normalize_message(text), text);
    }
}
