//! Detectors of the built-in rule types: each finds the byte ranges of a text to redact.
//!
//! Regexes find candidates; checks in code reject false positives: card numbers must pass Luhn
//! with a known issuer prefix, IBANs the mod-97 check with their country's length, IP addresses
//! must parse as `std::net` addresses. Every expression is compiled once per process
//! ([`LazyLock`]). Each detector first tests for a byte the type cannot do without (`@` for
//! e-mails, 13 digits for cards, ...), so most strings cost one scan per rule.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// Compiles a built-in expression: constants, each covered by the tests below.
fn builtin(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in regex compiles")
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    builtin(
        r"[\p{L}\p{N}.!#$%&'*+/=?^_`{|}~-]+@[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?)*\.\p{L}{2,}",
    )
});
static IPV4: LazyLock<Regex> = LazyLock::new(|| builtin(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"));
/// Runs of characters an IPv6 address is written with; checked with `Ipv6Addr`'s parser.
static IPV6_RUN: LazyLock<Regex> = LazyLock::new(|| builtin(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*"));
/// Digit groups joined by single spaces or dashes (`4111 1111-1111 1111`).
static DIGIT_GROUPS: LazyLock<Regex> = LazyLock::new(|| builtin(r"\d+(?:[ -]\d+)*"));
static IBAN: LazyLock<Regex> = LazyLock::new(|| builtin(r"(?i)[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,32}"));
static UUID: LazyLock<Regex> =
    LazyLock::new(|| builtin(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"));
static PHONE_INTERNATIONAL: LazyLock<Regex> =
    LazyLock::new(|| builtin(r"(?:\+|\b00)[1-9](?:[ .\-]?\(?\d{1,4}\)?){2,7}"));
static PHONE_NANP: LazyLock<Regex> = LazyLock::new(|| builtin(r"(?:\(\d{3}\) ?|\b\d{3}[ .\-])\d{3}[ .\-]\d{4}\b"));
static BEARER: LazyLock<Regex> = LazyLock::new(|| builtin(r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]+=*)"));
static URL_AUTH: LazyLock<Regex> =
    LazyLock::new(|| builtin(r"(?i)\b[a-z][a-z0-9+.\-]*://([^/?#@\s:]+(?::[^/?#@\s]*)?)@"));

/// Byte ranges of e-mail addresses.
pub fn email(text: &str) -> Vec<Range<usize>> {
    if !text.contains('@') {
        return Vec::new();
    }
    EMAIL.find_iter(text).map(|found| found.range()).collect()
}

/// Byte ranges of IPv4 and IPv6 addresses (IPv6 with an embedded IPv4 as one range).
pub fn ip(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    if bytes.iter().filter(|byte| **byte == b':').nth(1).is_some() {
        for run in IPV6_RUN.find_iter(text) {
            ipv6_in_run(text, run.range(), &mut ranges);
        }
    }
    if bytes.contains(&b'.') {
        let mut position = 0;
        while let Some(found) = IPV4.find_at(text, position) {
            let range = found.range();
            let digit_before = range.start > 0 && bytes[range.start - 1].is_ascii_digit();
            let digit_after = bytes.get(range.end).is_some_and(u8::is_ascii_digit);
            let inside_ipv6 =
                ranges.iter().any(|known: &Range<usize>| known.start <= range.start && range.end <= known.end);
            if !digit_before && !digit_after && !inside_ipv6 && found.as_str().parse::<Ipv4Addr>().is_ok() {
                ranges.push(range.clone());
                position = range.end;
            } else {
                position = next_char(text, range.start);
            }
        }
    }
    ranges.sort_by_key(|range| range.start);
    ranges
}

/// The longest valid IPv6 addresses inside a run of address characters, leftmost first. The
/// characters around an address must not be letters, digits or `_`, so `std::fmt::Debug` is
/// not an address while `[::1]:8080` holds one.
fn ipv6_in_run(text: &str, run: Range<usize>, ranges: &mut Vec<Range<usize>>) {
    const MAX_ADDRESS_CHARS: usize = 45;
    let bytes = text.as_bytes();
    let is_word = |index: usize| bytes.get(index).is_some_and(|byte| byte.is_ascii_alphanumeric() || *byte == b'_');
    let mut start = run.start;
    'starts: while start + 2 <= run.end {
        if start > 0 && (is_word(start - 1) || bytes[start - 1] == b':' && start > run.start) {
            start += 1;
            continue;
        }
        let longest_end = run.end.min(start + MAX_ADDRESS_CHARS);
        for end in (start + 2..=longest_end).rev() {
            if is_word(end) || bytes.get(end) == Some(&b':') && end < run.end {
                continue;
            }
            if text[start..end].parse::<Ipv6Addr>().is_ok() {
                ranges.push(start..end);
                start = end;
                continue 'starts;
            }
        }
        start += 1;
    }
}

/// Byte ranges of payment card numbers: 13–19 digits, possibly grouped by single spaces or
/// dashes, with a known issuer prefix and a valid Luhn check digit. Only windows starting and
/// ending at group edges are tried, longest first, so `1234 4111111111111111` yields the card.
pub fn creditcard(text: &str) -> Vec<Range<usize>> {
    if text.bytes().filter(u8::is_ascii_digit).nth(12).is_none() {
        return Vec::new();
    }
    let mut ranges = Vec::new();
    for candidate in DIGIT_GROUPS.find_iter(text) {
        // Each group as (byte start, byte end, digits).
        let groups: Vec<(usize, usize)> = {
            let mut groups = Vec::new();
            let mut offset = candidate.start();
            for part in candidate.as_str().split([' ', '-']) {
                groups.push((offset, offset + part.len()));
                offset += part.len() + 1;
            }
            groups
        };
        let mut first = 0;
        'starts: while first < groups.len() {
            for last in (first..groups.len()).rev() {
                let digits: Vec<u8> = text[groups[first].0..groups[last].1]
                    .bytes()
                    .filter(u8::is_ascii_digit)
                    .map(|byte| byte - b'0')
                    .collect();
                if is_card_number(&digits) {
                    ranges.push(groups[first].0..groups[last].1);
                    first = last + 1;
                    continue 'starts;
                }
            }
            first += 1;
        }
    }
    ranges
}

/// True for 13–19 digits (values 0–9) with a known issuer prefix and a valid Luhn check digit.
/// Prefixes (ISO/IEC 7812 IINs of the major networks): Visa 4; Mastercard 51–55 and 2221–2720;
/// American Express 34, 37; Diners 300–305, 36, 38, 39; JCB 35; Maestro 50, 56–59; Discover,
/// UnionPay and others 6.
pub fn is_card_number(digits: &[u8]) -> bool {
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let prefix = |count: usize| digits[..count].iter().fold(0u32, |number, digit| number * 10 + u32::from(*digit));
    let known_issuer = match digits[0] {
        4 | 6 => true,
        5 => true,
        3 => matches!(prefix(2), 34..=39) || matches!(prefix(3), 300..=305),
        2 => matches!(prefix(4), 2221..=2720),
        _ => false,
    };
    known_issuer && luhn_valid(digits)
}

/// The Luhn (mod 10) check over digits with values 0–9, check digit last.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, digit)| {
            let digit = u32::from(*digit);
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// IBAN length per country code (SWIFT's IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

/// Byte ranges of IBANs, compact (`DE89370400440532013000`) or in groups of four separated by
/// spaces, case-insensitive.
pub fn iban(text: &str) -> Vec<Range<usize>> {
    if text.len() < 15 || text.bytes().filter(u8::is_ascii_digit).nth(1).is_none() {
        return Vec::new();
    }
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut position = 0;
    while let Some(found) = IBAN.find_at(text, position) {
        let start = found.start();
        let country = text[start..start + 2].to_ascii_uppercase();
        let letter_before = start > 0 && bytes[start - 1].is_ascii_alphanumeric();
        let expected = IBAN_LENGTHS.iter().find(|(code, _)| *code == country).map(|(_, length)| *length);
        let mut matched = None;
        if let (false, Some(length)) = (letter_before, expected) {
            // Take exactly `length` characters (spaces skipped) from the candidate.
            let mut compact = String::with_capacity(length);
            let mut end = start;
            for (offset, character) in found.as_str().char_indices() {
                if character == ' ' {
                    continue;
                }
                compact.push(character.to_ascii_uppercase());
                end = start + offset + character.len_utf8();
                if compact.len() == length {
                    break;
                }
            }
            if compact.len() == length && iban_valid(&compact) {
                matched = Some(start..end);
            }
        }
        match matched {
            Some(range) => {
                position = range.end;
                ranges.push(range);
            }
            None => position = next_char(text, start),
        }
    }
    ranges
}

/// ISO 13616 check: the first four characters moved to the end, letters as 10–35, mod 97 = 1.
/// Takes an uppercase compact IBAN.
pub fn iban_valid(compact: &str) -> bool {
    if compact.len() < 5 || !compact.is_ascii() {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for character in tail.chars().chain(head.chars()) {
        let value = match character {
            '0'..='9' => u32::from(character) - u32::from('0'),
            'A'..='Z' => u32::from(character) - u32::from('A') + 10,
            _ => return false,
        };
        remainder = if value >= 10 { (remainder * 100 + value) % 97 } else { (remainder * 10 + value) % 97 };
    }
    remainder == 1
}

/// Byte ranges of dashed UUIDs.
pub fn uuid(text: &str) -> Vec<Range<usize>> {
    if text.len() < 36 || !text.contains('-') {
        return Vec::new();
    }
    UUID.find_iter(text).map(|found| found.range()).collect()
}

/// Byte ranges of phone numbers (see [`crate::RuleType::Phone`]).
pub fn phone(text: &str) -> Vec<Range<usize>> {
    if text.bytes().filter(u8::is_ascii_digit).nth(6).is_none() {
        return Vec::new();
    }
    let bytes = text.as_bytes();
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for found in PHONE_INTERNATIONAL.find_iter(text) {
        let digits = found.as_str().bytes().filter(u8::is_ascii_digit).count();
        let digit_after = bytes.get(found.end()).is_some_and(u8::is_ascii_digit);
        if (8..=17).contains(&digits) && !digit_after {
            ranges.push(found.range());
        }
    }
    for found in PHONE_NANP.find_iter(text) {
        let overlaps = ranges.iter().any(|known| known.start < found.end() && found.start() < known.end);
        if !overlaps {
            ranges.push(found.range());
        }
    }
    ranges.sort_by_key(|range| range.start);
    ranges
}

/// Byte ranges of bearer tokens (the token only, not the word `Bearer`).
pub fn bearer(text: &str) -> Vec<Range<usize>> {
    if text.len() < 8 || !contains_ignore_case(text, "bearer") {
        return Vec::new();
    }
    BEARER.captures_iter(text).filter_map(|captures| captures.get(1)).map(|token| token.range()).collect()
}

/// Byte ranges of the user info of URLs (`user:secret` in `https://user:secret@host/`).
pub fn url_auth(text: &str) -> Vec<Range<usize>> {
    if !text.contains("://") || !text.contains('@') {
        return Vec::new();
    }
    URL_AUTH.captures_iter(text).filter_map(|captures| captures.get(1)).map(|info| info.range()).collect()
}

/// Words that name a secret wherever they appear in a key (`userPassword`, `x-api-key`).
const SECRET_KEY_SUBSTRINGS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "apikey",
    "api_key",
    "api-key",
    "api.key",
    "privatekey",
    "private_key",
    "private-key",
    "credential",
    "accesstoken",
    "access_token",
    "authtoken",
    "auth_token",
    "refreshtoken",
    "refresh_token",
    "sessiontoken",
    "session_token",
    "authorization",
    "cookie",
    "bearer",
    "mysql_pwd",
];
/// Words that name a secret only as a whole segment of a key (`token`, but not `input_tokens`).
const SECRET_KEY_SEGMENTS: &[&str] = &["token", "auth", "pwd", "pass", "otp", "jwt", "csrf", "xsrf", "signature"];

/// True when a key names a secret (Relay's `password` rule, minus false positives on OTel
/// semconv names such as `gen_ai.usage.input_tokens` or `http.request.header.author`).
pub fn is_password_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    if SECRET_KEY_SUBSTRINGS.iter().any(|word| lower.contains(word)) {
        return true;
    }
    lower.split(['.', '_', '-', ' ', '[', ']']).any(|segment| SECRET_KEY_SEGMENTS.contains(&segment))
}

fn contains_ignore_case(text: &str, lowercase_word: &str) -> bool {
    text.as_bytes().windows(lowercase_word.len()).any(|window| window.eq_ignore_ascii_case(lowercase_word.as_bytes()))
}

/// The byte index of the character after the one at `index`.
fn next_char(text: &str, index: usize) -> usize {
    text[index..].chars().next().map(|character| index + character.len_utf8()).unwrap_or(text.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(ranges: Vec<Range<usize>>, text: &str) -> Vec<String> {
        ranges.into_iter().map(|range| text[range].to_owned()).collect()
    }

    #[test]
    fn emails_including_unicode_and_plus_addressing() {
        let text = "mail jane.doe+tag@example.co.uk, jörg@bücher.de or <a@b.io>; not a@b or @home";
        assert_eq!(found(email(text), text), ["jane.doe+tag@example.co.uk", "jörg@bücher.de", "a@b.io"]);
    }

    #[test]
    fn ip_addresses_are_parsed_not_guessed() {
        let text = "from 192.168.0.1 and [2001:db8::ff00:42:8329]:443, ::ffff:10.0.0.1 fe80::1; \
                    not 999.1.1.1, 1.2.3 or std::fmt::Debug or 12:30:45 or de:ad:be:ef:00:01";
        assert_eq!(found(ip(text), text), ["192.168.0.1", "2001:db8::ff00:42:8329", "::ffff:10.0.0.1", "fe80::1"]);
        let text = "999.10.0.0.1";
        assert_eq!(found(ip(text), text), ["10.0.0.1"], "a bad octet does not hide the address after it");
    }

    #[test]
    fn cards_need_luhn_and_an_issuer() {
        let text = "visa 4111 1111 1111 1111, amex 378282246310005, mc 5555-5555-5555-4444, \
                    2-series 2223003122003222; ids 4111111111111112 and 1234567890123452 stay";
        assert_eq!(
            found(creditcard(text), text),
            ["4111 1111 1111 1111", "378282246310005", "5555-5555-5555-4444", "2223003122003222"]
        );
        let text = "order 1234 4111111111111111";
        assert_eq!(found(creditcard(text), text), ["4111111111111111"]);
        assert!(luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
    }

    #[test]
    fn ibans_need_their_country_length_and_mod_97() {
        let text = "pay DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432 now; not DE89370400440532013001";
        assert_eq!(found(iban(text), text), ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"]);
        assert!(iban_valid("NL91ABNA0417164300"));
        assert!(!iban_valid("NL91ABNA0417164301"));
    }

    #[test]
    fn uuids_phones_bearer_and_url_auth() {
        let text = "id 123e4567-e89b-12d3-a456-426614174000 trace 4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(found(uuid(text), text), ["123e4567-e89b-12d3-a456-426614174000"]);
        let text = "call +49 30 1234567, +1 (555) 123-4567, 0044 20 7946 0958 or (555) 765-4321; not 2026-12-01";
        assert_eq!(
            found(phone(text), text),
            ["+49 30 1234567", "+1 (555) 123-4567", "0044 20 7946 0958", "(555) 765-4321"]
        );
        let text = "Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig== done";
        assert_eq!(found(bearer(text), text), ["eyJhbGciOi.eyJzdWIi.sig=="]);
        let text = "postgres://app:hunter2@db:5432/x and https://token@example.com and mailto:a@b.c";
        assert_eq!(found(url_auth(text), text), ["app:hunter2", "token"]);
    }

    #[test]
    fn password_keys() {
        for key in [
            "password",
            "userPassword",
            "x-api-key",
            "http.request.header.authorization",
            "client_secret",
            "token",
            "auth.token",
            "Set-Cookie",
        ] {
            assert!(is_password_key(key), "{key}");
        }
        for key in ["gen_ai.usage.input_tokens", "author", "user.id", "page.url", "passenger"] {
            assert!(!is_password_key(key), "{key}");
        }
    }
}
