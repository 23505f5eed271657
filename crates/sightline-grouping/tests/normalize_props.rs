//! Property tests of message parameterization (`normalize_message`): idempotent, value-independent for
//! numbers, UUIDs, IPs and emails inside a fixed template, never leaks an injected integer's digits, never
//! panics.

use proptest::prelude::*;
use sightline_grouping::normalize_message;

/// Templates with no digits of their own; `{}` is where a value goes.
const TEMPLATES: &[&str] = &[
    "order {} could not be charged",
    "{}",
    "user_id={} not found",
    "retry #{} failed (attempt {})",
    "Cannot read properties of undefined (reading '{}')",
    "failed to connect to peer [{}]: connection refused",
    "key {}, value {}; total={}",
];

fn fill(template: &str, value: &str) -> String {
    template.replace("{}", value)
}

fn uuid() -> impl Strategy<Value = String> {
    (any::<u128>(), any::<bool>()).prop_map(|(bits, upper)| {
        let hex = format!("{bits:032x}");
        let text = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);
        if upper { text.to_uppercase() } else { text }
    })
}

fn ipv4() -> impl Strategy<Value = String> {
    any::<[u8; 4]>().prop_map(|octets| format!("{}.{}.{}.{}", octets[0], octets[1], octets[2], octets[3]))
}

fn ipv6() -> impl Strategy<Value = String> {
    any::<[u16; 8]>().prop_map(|groups| groups.iter().map(|group| format!("{group:x}")).collect::<Vec<_>>().join(":"))
}

fn email() -> impl Strategy<Value = String> {
    ("[a-z][a-z0-9._+-]{0,15}", "[a-z][a-z0-9-]{0,12}", prop::sample::select(vec!["com", "org", "io", "co.uk", "dev"]))
        .prop_map(|(local, domain, tld)| format!("{local}@{domain}.{tld}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn normalizing_twice_equals_normalizing_once(text in "\\PC{0,200}") {
        let once = normalize_message(&text);
        prop_assert_eq!(normalize_message(&once), once.clone());
    }

    #[test]
    fn structured_messages_are_idempotent(
        parts in prop::collection::vec(
            prop_oneof![
                "[a-z]{1,8}".prop_map(String::from),
                any::<i64>().prop_map(|number| number.to_string()),
                "[0-9]{1,4}\\.[0-9]{1,4}".prop_map(String::from),
                "[0-9a-f]{6,40}".prop_map(String::from),
                uuid(), ipv4(), ipv6(), email(),
                "[=:/@.,#'\"()\\[\\] -]".prop_map(String::from),
                Just("https://api.acme.com/v1/x?id=".to_owned()),
                Just("2024-06-01T12:00:00Z".to_owned()),
                Just("30s".to_owned()),
                Just("=true".to_owned()),
            ],
            0..16,
        )
    ) {
        let text = parts.concat();
        let once = normalize_message(&text);
        prop_assert_eq!(normalize_message(&once), once.clone(), "input {:?}", text);
        let spaced = parts.join(" ");
        let once = normalize_message(&spaced);
        prop_assert_eq!(normalize_message(&once), once.clone(), "input {:?}", spaced);
    }

    #[test]
    fn integers_of_any_value_give_the_same_message(first in any::<i64>(), second in any::<i64>(), template in prop::sample::select(TEMPLATES)) {
        prop_assert_eq!(normalize_message(&fill(template, &first.to_string())), normalize_message(&fill(template, &second.to_string())));
    }

    #[test]
    fn floats_of_any_value_give_the_same_message(
        first in (any::<u32>(), any::<u32>()), second in (any::<u32>(), any::<u32>()), template in prop::sample::select(TEMPLATES)
    ) {
        let first = format!("{}.{}", first.0, first.1);
        let second = format!("{}.{}", second.0, second.1);
        prop_assert_eq!(normalize_message(&fill(template, &first)), normalize_message(&fill(template, &second)));
    }

    #[test]
    fn uuids_ips_and_emails_of_any_value_give_the_same_message(
        uuids in (uuid(), uuid()), ips in (ipv4(), ipv4()), ipv6s in (ipv6(), ipv6()), emails in (email(), email()),
        template in prop::sample::select(TEMPLATES),
    ) {
        for (first, second, placeholder) in [
            (uuids.0, uuids.1, "<uuid>"), (ips.0, ips.1, "<ip>"), (ipv6s.0, ipv6s.1, "<ip>"), (emails.0, emails.1, "<email>"),
        ] {
            let normalized = normalize_message(&fill(template, &first));
            prop_assert_eq!(&normalized, &normalize_message(&fill(template, &second)));
            prop_assert!(normalized.contains(placeholder), "{} in {:?}", placeholder, normalized);
        }
    }

    #[test]
    fn an_injected_integer_never_survives(number in any::<u64>(), template in prop::sample::select(TEMPLATES)) {
        let normalized = normalize_message(&fill(template, &number.to_string()));
        prop_assert!(!normalized.chars().any(|character| character.is_ascii_digit()), "{:?}", normalized);
        prop_assert!(!normalized.contains(&number.to_string()));
    }

    #[test]
    fn never_panics_on_any_string(text in any::<String>()) {
        let _ = normalize_message(&text);
    }
}
