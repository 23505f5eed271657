//! Property tests of the `@common` preset: no e-mail address, IPv4 or IPv6 address or valid card
//! number survives it anywhere in nested JSON (event properties, metadata, user id); scrubbing
//! twice changes nothing more; pseudonyms are stable per key and differ across keys.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sightline_model::event::parse_event;
use sightline_privacy::{HashKey, PrivacyConfig, Scrubber, Vars};

/// Characters that end a token in prose and JSON-ish text (not part of any detected type).
const SEPARATORS: &[char] = &[' ', ',', ';', '<', '>', '(', ')', '"', '\n', '\t', '[', ']'];

fn separator() -> impl Strategy<Value = char> {
    proptest::sample::select(SEPARATORS)
}

fn filler() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .,:;/_-]{0,16}"
}

fn email() -> impl Strategy<Value = String> {
    ("[a-z0-9][a-z0-9._%+-]{0,12}", "[a-z0-9]{1,8}(\\.[a-z0-9]{1,8}){0,2}", "[a-z]{2,6}")
        .prop_map(|(local, domain, tld)| format!("{local}@{domain}.{tld}"))
}

fn ipv4() -> impl Strategy<Value = String> {
    any::<u32>().prop_map(|bits| Ipv4Addr::from(bits).to_string())
}

fn ipv6() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u128>().prop_map(|bits| Ipv6Addr::from(bits).to_string()),
        // Compressed forms with long zero runs (`fe80::1`, `2001:db8::42`).
        (any::<u16>(), any::<u16>(), 0usize..7).prop_map(|(head, tail, zeros)| {
            let mut groups = [0u16; 8];
            groups[0] = head.max(1);
            groups[(zeros + 1).min(7)] = tail;
            Ipv6Addr::from(groups).to_string()
        }),
    ]
}

/// Issuer prefixes of the major networks and their lengths.
const ISSUERS: &[(&str, usize)] = &[
    ("4", 16),
    ("4", 13),
    ("4", 19),
    ("51", 16),
    ("55", 16),
    ("2221", 16),
    ("2720", 16),
    ("34", 15),
    ("37", 15),
    ("36", 14),
    ("300", 14),
    ("6011", 16),
    ("65", 16),
    ("62", 19),
    ("3528", 16),
    ("50", 18),
];

fn card() -> impl Strategy<Value = String> {
    (proptest::sample::select(ISSUERS), proptest::collection::vec(0u8..10, 19), 0usize..4).prop_map(
        |((prefix, length), random, grouping)| {
            let mut digits: Vec<u8> = prefix.bytes().map(|byte| byte - b'0').collect();
            digits.extend(random.iter().take(length - 1 - digits.len()));
            // The check digit that makes the Luhn sum a multiple of 10.
            let sum: u32 = digits
                .iter()
                .rev()
                .enumerate()
                .map(|(index, digit)| {
                    let digit = u32::from(*digit);
                    if index % 2 == 0 { if digit * 2 > 9 { digit * 2 - 9 } else { digit * 2 } } else { digit }
                })
                .sum();
            digits.push(((10 - sum % 10) % 10) as u8);
            let text: String = digits.iter().map(|digit| char::from(b'0' + digit)).collect();
            match grouping {
                0 => text,
                other => {
                    let separator = if other == 1 { " " } else { "-" };
                    text.as_bytes()
                        .chunks(4)
                        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                        .collect::<Vec<_>>()
                        .join(separator)
                }
            }
        },
    )
}

fn pii() -> impl Strategy<Value = String> {
    prop_oneof![email(), ipv4(), ipv6(), card()]
}

/// A string leaf holding one piece of personal data between separators, and the data.
fn leaf() -> impl Strategy<Value = (String, String)> {
    (filler(), separator(), pii(), separator(), filler())
        .prop_map(|(before, open, pii, close, after)| (format!("{before}{open}{pii}{close}{after}"), pii))
}

/// Nested JSON whose string leaves hold personal data; returns the tree and every piece.
fn tree() -> impl Strategy<Value = (Value, Vec<String>)> {
    let leaf = leaf().prop_map(|(text, pii)| (Value::String(text), vec![pii]));
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..4).prop_map(|items| {
                let pii = items.iter().flat_map(|(_, pii)| pii.clone()).collect();
                (Value::Array(items.into_iter().map(|(value, _)| value).collect()), pii)
            }),
            proptest::collection::vec(("[a-z]{1,8}", inner), 1..4).prop_map(|entries| {
                let pii = entries.iter().flat_map(|(_, (_, pii))| pii.clone()).collect();
                let map: Map<String, Value> = entries.into_iter().map(|(key, (value, _))| (key, value)).collect();
                (Value::Object(map), pii)
            }),
        ]
    })
}

fn common() -> Scrubber {
    Scrubber::new(&PrivacyConfig::common_preset()).expect("the preset compiles")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nothing_personal_survives_common((metadata, metadata_pii) in tree(), (title, title_pii) in leaf(), user in pii()) {
        let scrubber = common();
        let body = json!({"event_id": "e1", "product_id": "p", "session.id": "s", "event.type": "custom",
                          "user.id": user, "page.title": title, "metadata": {"nested": metadata}});
        let mut event = parse_event(&body, 1).expect("valid event");
        scrubber.scrub_event(&mut event);
        let output = serde_json::to_string(&event).expect("serializes");
        for pii in metadata_pii.iter().chain([&title_pii, &user]) {
            prop_assert!(!output.contains(pii.as_str()), "{pii:?} survived in {output}");
        }
        // Idempotent: a second pass finds nothing left to change.
        let mut again = event.clone();
        let remarks = scrubber.scrub_event(&mut again);
        prop_assert_eq!(&again, &event);
        prop_assert!(remarks.is_empty(), "{:?}", remarks);
    }

    #[test]
    fn attributes_are_covered_too((text, pii) in leaf()) {
        let mut attributes = json!({"message": text, "list": [{"kvlist": {"inner": pii.clone()}}]});
        let map = attributes.as_object_mut().expect("object");
        common().scrub_attributes(map);
        let output = attributes.to_string();
        prop_assert!(!output.contains(pii.as_str()), "{pii:?} survived in {output}");
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_unlinkable_across_keys(value in ".{0,64}", key_a in "[a-z]{8,16}", key_b in "[A-Z]{8,16}") {
        let hashing = |key: &str| {
            let config = PrivacyConfig {
                applications: [("**".to_owned(), vec!["@anything:hash".to_owned()])].into(),
                vars: Vars { hash_key: Some(HashKey::new(key)) },
                ..PrivacyConfig::default()
            };
            Scrubber::new(&config).expect("compiles")
        };
        let first = hashing(&key_a).pseudonym(&value);
        prop_assert_eq!(&first, &hashing(&key_a).pseudonym(&value));
        prop_assert_ne!(&first, &hashing(&key_b).pseudonym(&value));
        let mut attributes = json!({"v": value.clone()});
        hashing(&key_a).scrub_attributes(attributes.as_object_mut().expect("object"));
        prop_assert_eq!(attributes["v"].as_str(), first.as_deref());
    }
}
