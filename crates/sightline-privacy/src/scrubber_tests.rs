//! Unit tests of the scrubber: selectors, methods, URLs, remarks, attributes.

use serde_json::{Value, json};
use sightline_model::ProductEvent;
use sightline_model::event::parse_event;

use super::*;
use crate::config::Vars;

fn scrubber(config: Value) -> Scrubber {
    let mut config: PrivacyConfig = serde_json::from_value(config).expect("valid config");
    config.vars = Vars { hash_key: Some(HashKey::new("project-key")) };
    Scrubber::new(&config).expect("compiles")
}

fn event(fields: Value) -> ProductEvent {
    let mut value = json!({"event_id": "e1", "product_id": "p", "session.id": "s", "event.type": "custom"});
    if let (Value::Object(target), Value::Object(source)) = (&mut value, fields) {
        target.extend(source);
    }
    parse_event(&value, 1).expect("valid event")
}

fn remark(rule: &str, path: &str, method: Method) -> Remark {
    Remark { rule_id: rule.into(), path: path.into(), method }
}

#[test]
fn common_scrubs_properties_metadata_and_user() {
    let scrubber = scrubber(json!({"applications": {"**": ["@common"]}}));
    let mut event = event(json!({
        "user.id": "jane@example.com",
        "page.title": "Order for jane@example.com from 10.1.2.3",
        "card": "4111-1111-1111-1111",
        "metadata": {"billing": {"iban": "DE89 3704 0044 0532 0130 00", "note": "call +49 30 1234567"},
                     "api_key": "sk_live_123", "list": ["a@b.io", "plain"]}
    }));
    let remarks = scrubber.scrub_event(&mut event);
    assert_eq!(event.user_id.as_deref(), Some("[email]"));
    assert_eq!(event.properties["page.title"], "Order for [email] from [ip]");
    assert_eq!(event.properties["card"], "[creditcard]");
    assert_eq!(event.metadata["billing"]["iban"], "[iban]");
    assert_eq!(event.metadata["billing"]["note"], "call [phone]");
    assert!(event.metadata.get("api_key").is_none(), "@password removes secret-named keys");
    assert_eq!(event.metadata["list"], json!(["[email]", "plain"]));
    assert!(remarks.contains(&remark("@email", "user.id", Method::Replace)));
    assert!(remarks.contains(&remark("@ip", "page.title", Method::Replace)));
    assert!(remarks.contains(&remark("@password", "metadata.api_key", Method::Remove)));
    assert!(remarks.contains(&remark("@iban", "metadata.billing.iban", Method::Replace)));
    assert!(remarks.contains(&remark("@email", "metadata.list", Method::Replace)));
    // Untouched fields are not remarked.
    assert!(!remarks.iter().any(|remark| remark.path == "event.type" || remark.path == "metadata.list.plain"));
}

#[test]
fn selectors_limit_where_rules_apply() {
    let scrubber = scrubber(json!({"applications": {"metadata.billing": ["@email"], "user.id": ["@anything:hash"]}}));
    let mut event = event(json!({"user.id": "u-42", "page.title": "jane@example.com",
                                 "metadata": {"billing": {"to": "jane@example.com"}, "other": "jane@example.com"}}));
    let remarks = scrubber.scrub_event(&mut event);
    assert_eq!(event.properties["page.title"], "jane@example.com", "not selected");
    assert_eq!(event.metadata["other"], "jane@example.com", "not selected");
    assert_eq!(event.metadata["billing"]["to"], "[email]", "inside the selected object");
    let pseudonym = event.user_id.clone().expect("hashed, not removed");
    assert_eq!(pseudonym.len(), 64);
    assert_eq!(scrubber.pseudonym("u-42").as_deref(), Some(pseudonym.as_str()));
    assert_eq!(
        remarks,
        [remark("@anything:hash", "user.id", Method::Hash), remark("@email", "metadata.billing.to", Method::Replace)]
    );
}

#[test]
fn methods_remove_replace_mask_hash() {
    let text = "card 4111 1111 1111 1111 ip 10.0.0.1";
    let run = |rules: Value| {
        let scrubber = scrubber(json!({"applications": {"**": rules}}));
        let mut attributes = json!({"note": text});
        scrubber.scrub_attributes(attributes.as_object_mut().expect("object"));
        attributes["note"].as_str().expect("string").to_owned()
    };
    assert_eq!(run(json!(["@creditcard:mask", "@ip:mask"])), "card **** **** **** 1111 ip ********");
    assert_eq!(run(json!(["@creditcard:remove", "@ip:remove"])), "card  ip ");
    assert_eq!(run(json!(["@creditcard", "@ip:replace"])), "card [creditcard] ip [ip]");
    let hashed = run(json!(["@ip:hash"]));
    let pseudonym = hashed.strip_prefix("card 4111 1111 1111 1111 ip ").expect("prefix kept");
    assert_eq!(pseudonym.len(), 64);
    assert!(pseudonym.bytes().all(|byte| byte.is_ascii_hexdigit()));
}

#[test]
fn custom_rules_with_groups_and_text() {
    let scrubber = scrubber(json!({
        "rules": {"order": {"type": "pattern", "pattern": "ORD-(\\d+)-(\\d+)", "replace_groups": [2],
                            "redaction": {"method": "replace", "text": "#"}},
                  "headers": {"type": "redact_pair", "key_pattern": "(?i)^x-internal-"}},
        "applications": {"**": ["order", "headers"]}
    }));
    let mut attributes = json!({"msg": "see ORD-12-3456 and ORD-7-8", "X-Internal-Route": "blue", "x-public": "ok"});
    let remarks = scrubber.scrub_attributes(attributes.as_object_mut().expect("object"));
    assert_eq!(attributes["msg"], "see ORD-12-# and ORD-7-#");
    assert_eq!(attributes["X-Internal-Route"], "[Filtered]");
    assert_eq!(attributes["x-public"], "ok");
    assert_eq!(remarks.len(), 2);
}

#[test]
fn url_query_values_are_decoded_and_scrubbed() {
    let scrubber = scrubber(json!({"applications": {"**": ["@common"], "**.$query.ref": ["@anything:remove"],
                                                    "page.url.$query.q": ["@anything:mask"]}}));
    let mut event = event(json!({
        "page.url": "https://shop.example/checkout?email=jane%40example.com&access_token=abc123&ref=mail&q=shoes&page=2#top",
        "page.referrer": "https://u:pw@search.example/?ref=x&keep=1"
    }));
    let remarks = scrubber.scrub_event(&mut event);
    assert_eq!(event.properties["page.url"], "https://shop.example/checkout?email=%5Bemail%5D&q=*****&page=2#top");
    assert_eq!(event.properties["page.referrer"], "https://[auth]@search.example/?keep=1");
    assert!(remarks.contains(&remark("@email", "page.url.$query.email", Method::Replace)));
    assert!(remarks.contains(&remark("@password", "page.url.$query.access_token", Method::Remove)));
    assert!(remarks.contains(&remark("@anything:remove", "page.url.$query.ref", Method::Remove)));
    assert!(remarks.contains(&remark("@anything:mask", "page.url.$query.q", Method::Mask)));
}

#[test]
fn bare_query_strings_of_url_query_attributes() {
    let scrubber = scrubber(json!({"applications": {"url.query": ["@password"]}}));
    let mut attributes = json!({"url.query": "q=otel&token=s3cr3t", "url.path": "/search"});
    scrubber.scrub_attributes(attributes.as_object_mut().expect("object"));
    assert_eq!(attributes["url.query"], "q=otel");
}

#[test]
fn typed_attributes_keep_their_encoding() {
    let scrubber = scrubber(json!({"applications": {"**": ["@common"]}}));
    let mut attributes = json!({
        "enduser": {"kvlist": {"email": "jane@example.com", "id": 7}},
        "blob": {"bytes": "amFuZUBleGFtcGxlLmNvbQ=="},
        "ratio": {"double": "NaN"},
        "client.address": "2001:db8::1",
        "http.request.header.authorization": ["Bearer abc.def"],
        "gen_ai.usage.input_tokens": 1200
    });
    let remarks = scrubber.scrub_attributes(attributes.as_object_mut().expect("object"));
    assert_eq!(attributes["enduser"], json!({"kvlist": {"email": "[email]", "id": 7}}));
    assert_eq!(attributes["blob"], json!({"bytes": "amFuZUBleGFtcGxlLmNvbQ=="}));
    assert_eq!(attributes["ratio"], json!({"double": "NaN"}));
    assert_eq!(attributes["client.address"], "[ip]");
    assert!(attributes.get("http.request.header.authorization").is_none());
    assert_eq!(attributes["gen_ai.usage.input_tokens"], 1200, "token counts are not secrets");
    assert!(remarks.contains(&remark("@email", "enduser.email", Method::Replace)));
}

#[test]
fn numbers_holding_card_numbers_become_strings() {
    let scrubber = scrubber(json!({"applications": {"**": ["@creditcard:mask"]}}));
    let mut attributes = json!({"card": 4111111111111111u64, "count": 3});
    scrubber.scrub_attributes(attributes.as_object_mut().expect("object"));
    assert_eq!(attributes["card"], "************1111");
    assert_eq!(attributes["count"], 3);
}

#[test]
fn removed_user_and_replaced_metadata() {
    let scrubber = scrubber(json!({"applications": {"user.id": ["@anything:remove"], "metadata": ["@anything"]}}));
    let mut event = event(json!({"user.id": "u-1", "metadata": {"a": 1}}));
    let remarks = scrubber.scrub_event(&mut event);
    assert_eq!(event.user_id, None);
    assert!(event.metadata.is_empty(), "metadata must stay an object");
    assert_eq!(remarks.len(), 2);
}

#[test]
fn hashes_are_stable_and_keyed() {
    let config = |key: &str| PrivacyConfig {
        applications: [("user.id".to_owned(), vec!["@anything:hash".to_owned()])].into(),
        vars: Vars { hash_key: Some(HashKey::new(key)) },
        ..PrivacyConfig::default()
    };
    let first = Scrubber::new(&config("project-a")).expect("ok");
    let again = Scrubber::new(&config("project-a")).expect("ok");
    let other = Scrubber::new(&config("project-b")).expect("ok");
    // RFC 4231 test case 2: HMAC-SHA256(key "Jefe", "what do ya want for nothing?").
    let rfc = Scrubber::new(&config("Jefe")).expect("ok");
    assert_eq!(
        rfc.pseudonym("what do ya want for nothing?").as_deref(),
        Some("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    );
    assert_eq!(first.pseudonym("u-1"), again.pseudonym("u-1"));
    assert_ne!(first.pseudonym("u-1"), other.pseudonym("u-1"));
    assert_ne!(first.pseudonym("u-1"), first.pseudonym("u-2"));
}

#[test]
fn validation_errors_name_the_problem() {
    let check = |config: Value, expected: &str| {
        let config: PrivacyConfig = serde_json::from_value(config).expect("parses");
        let error = Scrubber::new(&config).expect_err(expected).to_string();
        assert!(error.contains(expected), "{error} should contain {expected}");
    };
    check(json!({"applications": {"**": ["@nope"]}}), r#"unknown rule "@nope" (referenced by selector "**")"#);
    check(json!({"applications": {"a..b": ["@email"]}}), "bad selector");
    check(json!({"rules": {"r": {"type": "pattern", "pattern": "(("}}}), r#"rule "r": bad regex"#);
    check(json!({"rules": {"@mine": {"type": "email"}}}), "reserved");
    check(json!({"applications": {"user.id": ["@anything:hash"]}}), "no hash key");
    let many: serde_json::Map<String, Value> = (0..65).map(|index| (format!("k{index}"), json!(["@email"]))).collect();
    check(json!({"applications": many}), "at most 64");
}

#[test]
fn the_debug_output_shows_rules_but_not_the_key() {
    let scrubber = scrubber(json!({"applications": {"user.id": ["@anything:hash"]}}));
    let debug = format!("{scrubber:?}");
    assert!(debug.contains("@anything:hash") && !debug.contains("project-key"), "{debug}");
}
