//! Privacy rules as plain serde data (JSON or TOML), in the vocabulary of Sentry Relay's
//! `relay-pii` (`config.rs`): `rules` (id → [`RuleSpec`]), `applications` (selector → rule ids)
//! and `vars` (the hash key).
//!
//! ```json
//! {
//!   "rules": {
//!     "order_ref": {"type": "pattern", "pattern": "ORD-(\\d+)", "replace_groups": [1],
//!                   "redaction": {"method": "mask"}}
//!   },
//!   "applications": {"**": ["@common", "order_ref"], "user.id": ["@anything:hash"]}
//! }
//! ```
//!
//! Field names are snake_case; Relay's camelCase spellings (`replaceGroups`, `keyPattern`,
//! `hashKey`) are accepted as aliases so Relay configurations read as they are.
//! [`crate::Scrubber::new`] validates a configuration and reports the first problem as a
//! [`PrivacyConfigError`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A set of privacy rules and where they apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrivacyConfig {
    /// Project-defined rules by id (ids must not start with `@`, which names built-ins).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, RuleSpec>,
    /// Selector (see [`crate::Selector`]) → rule ids (built-in `@...` or from `rules`), applied
    /// in order; selectors are taken in their sorted order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub applications: BTreeMap<String, Vec<String>>,
    /// Parameters of the rules.
    #[serde(default, skip_serializing_if = "Vars::is_empty")]
    pub vars: Vars,
}

impl PrivacyConfig {
    /// The preset every new project starts from: `@common` on every field.
    pub fn common_preset() -> Self {
        let mut applications = BTreeMap::new();
        applications.insert("**".to_owned(), vec!["@common".to_owned()]);
        Self { applications, ..Self::default() }
    }

    /// Parses JSON text. Errors: [`PrivacyConfigError::Syntax`] with serde's message.
    pub fn from_json_str(text: &str) -> Result<Self, PrivacyConfigError> {
        serde_json::from_str(text).map_err(|error| PrivacyConfigError::Syntax(error.to_string()))
    }

    /// Parses TOML text (selectors such as `"**"` and ids such as `"@common"` are quoted keys).
    /// Errors: [`PrivacyConfigError::Syntax`] with the parser's message.
    pub fn from_toml_str(text: &str) -> Result<Self, PrivacyConfigError> {
        toml::from_str(text).map_err(|error| PrivacyConfigError::Syntax(error.to_string()))
    }

    /// True when a rule uses the `hash` method (directly or through the id of a built-in).
    pub fn uses_hash(&self) -> bool {
        let custom = self.rules.values().any(|rule| matches!(rule.redaction, Some(Redaction::Hash)));
        let builtin = self.applications.values().flatten().any(|id| id.ends_with(":hash"));
        custom || builtin
    }
}

/// One rule: what to find (`type` and its fields) and what to do with it (`redaction`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSpec {
    /// What the rule matches.
    #[serde(flatten)]
    pub rule_type: RuleType,
    /// What is done to a match; absent = `replace` with the type's placeholder (`[email]`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<Redaction>,
}

/// What a rule matches (the `type` field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RuleType {
    /// Substrings matching a regular expression (Rust `regex` syntax, no look-around).
    Pattern {
        /// The expression.
        pattern: String,
        /// Capture groups to redact; absent = the whole match (group 0).
        #[serde(default, alias = "replaceGroups", skip_serializing_if = "Option::is_none")]
        replace_groups: Option<Vec<usize>>,
    },
    /// E-mail addresses (`local@domain.tld`, Unicode letters allowed).
    Email,
    /// IPv4 and IPv6 addresses (each candidate is parsed, so `std::fmt` is not an address).
    Ip,
    /// Payment card numbers: 13–19 digits (spaces or dashes between groups), a known issuer
    /// prefix and a valid Luhn check digit (ISO/IEC 7812).
    Creditcard,
    /// IBANs (ISO 13616): a registered country code, that country's length and mod-97 = 1.
    Iban,
    /// UUIDs in their 8-4-4-4-12 hex form (undashed 32-hex strings are trace ids, not UUIDs).
    Uuid,
    /// Phone numbers: international (`+` or `00`, E.164, 8–15 digits) and North American
    /// `(555) 123-4567` / `555-123-4567`.
    Phone,
    /// The token of `Bearer <token>` (the word `Bearer` is kept).
    Bearer,
    /// The user and password of a URL (`https://user:secret@host`).
    #[serde(alias = "urlauth")]
    UrlAuth,
    /// Whole values of keys that name secrets: password, secret, token, api key, auth,
    /// authorization, credentials, cookie, private key, ...
    Password,
    /// Whole values of keys matching a regular expression.
    RedactPair {
        /// The expression keys are matched with.
        #[serde(alias = "keyPattern")]
        key_pattern: String,
    },
    /// Whole values, whatever they hold.
    Anything,
    /// Several other rules, in order.
    Multiple {
        /// Their ids.
        rules: Vec<String>,
    },
    /// Another rule under this id.
    Alias {
        /// Its id.
        rule: String,
    },
}

/// What is done to a match (the `method` field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Redaction {
    /// Deletes the match; a whole-value rule deletes the field.
    Remove,
    /// Replaces the match with `text`, or with the rule type's placeholder (`[email]`, `[ip]`,
    /// `[creditcard]`, ..., `[Filtered]` for patterns and whole values).
    Replace {
        /// The replacement.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// Replaces every character with `*`, keeping the length (card numbers keep their last four
    /// digits and their separators).
    Mask,
    /// Replaces the match with the lowercase hex HMAC-SHA256 of it, keyed with the project's
    /// hash key: the same value gives the same pseudonym within a project and unrelated
    /// pseudonyms across projects.
    Hash,
}

/// The kind of change a [`Redaction`] made, as recorded in a remark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// See [`Redaction::Remove`].
    Remove,
    /// See [`Redaction::Replace`].
    Replace,
    /// See [`Redaction::Mask`].
    Mask,
    /// See [`Redaction::Hash`].
    Hash,
}

impl Redaction {
    /// The method of this redaction.
    pub fn method(&self) -> Method {
        match self {
            Redaction::Remove => Method::Remove,
            Redaction::Replace { .. } => Method::Replace,
            Redaction::Mask => Method::Mask,
            Redaction::Hash => Method::Hash,
        }
    }
}

/// Parameters of the rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vars {
    /// The secret that keys the `hash` method. Never serialized: a configuration written back
    /// out (e.g. by an API) cannot leak it.
    #[serde(default, alias = "hashKey", skip_serializing)]
    pub hash_key: Option<HashKey>,
}

impl Vars {
    fn is_empty(&self) -> bool {
        self.hash_key.is_none()
    }
}

/// A secret key for HMAC-SHA256 pseudonyms. `Debug` prints nothing of it, and it is never
/// serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct HashKey(Vec<u8>);

impl HashKey {
    /// A key from raw bytes (any length; HMAC hashes keys longer than 64 bytes, RFC 2104 §2).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("HashKey([redacted])")
    }
}

impl<'de> Deserialize<'de> for HashKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(HashKey(text.into_bytes()))
    }
}

/// Why a configuration cannot be used. Messages name the selector or rule at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivacyConfigError {
    /// The text is not a configuration (JSON or TOML syntax, unknown `type` or `method`).
    #[error("invalid privacy configuration: {0}")]
    Syntax(String),
    /// A rule id names no built-in and no rule of `rules`.
    #[error("unknown rule {rule:?} (referenced by {referenced_by})")]
    UnknownRule {
        /// The id.
        rule: String,
        /// The selector or rule that names it.
        referenced_by: String,
    },
    /// A project rule's id starts with `@`, which is reserved for built-ins.
    #[error("rule id {0:?}: ids starting with '@' are reserved for built-in rules")]
    ReservedRuleId(String),
    /// A `pattern` or `redact_pair` expression does not compile.
    #[error("rule {rule:?}: bad regex: {reason}")]
    BadRegex {
        /// The rule id.
        rule: String,
        /// The regex crate's message.
        reason: String,
    },
    /// `replace_groups` names a group the pattern does not have.
    #[error("rule {rule:?}: replace_groups names group {group}, the pattern has {groups} groups")]
    BadGroup {
        /// The rule id.
        rule: String,
        /// The group named.
        group: usize,
        /// Groups in the pattern (not counting group 0).
        groups: usize,
    },
    /// A selector does not parse.
    #[error("bad selector {selector:?}: {reason}")]
    BadSelector {
        /// The selector.
        selector: String,
        /// What is wrong.
        reason: String,
    },
    /// `multiple` / `alias` rules refer to each other in a loop.
    #[error("rule {0:?} refers to itself through multiple/alias rules")]
    Cycle(String),
    /// A rule hashes but no hash key was given.
    #[error("rule {0:?} uses the hash method but no hash key is configured")]
    MissingHashKey(String),
    /// More selectors than a scrubber tracks.
    #[error("{0} selectors; at most {max} are supported", max = crate::scrubber::MAX_APPLICATIONS)]
    TooManySelectors(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_with_relay_spellings_reads() {
        let config = PrivacyConfig::from_json_str(
            r#"{"rules": {"r": {"type": "pattern", "pattern": "a(b)", "replaceGroups": [1],
                             "redaction": {"method": "replace", "text": "X"}},
                          "k": {"type": "redact_pair", "keyPattern": "^x-"}},
                "applications": {"**": ["@common", "r"]},
                "vars": {"hashKey": "s3cret"}}"#,
        )
        .expect("valid");
        assert_eq!(
            config.rules["r"].rule_type,
            RuleType::Pattern { pattern: "a(b)".into(), replace_groups: Some(vec![1]) }
        );
        assert_eq!(config.rules["r"].redaction, Some(Redaction::Replace { text: Some("X".into()) }));
        assert_eq!(config.vars.hash_key, Some(HashKey::new("s3cret")));
        assert_eq!(config.applications["**"], vec!["@common", "r"]);
    }

    #[test]
    fn toml_reads_the_same_as_json() {
        let from_toml = PrivacyConfig::from_toml_str(
            r#"
            [rules.order]
            type = "pattern"
            pattern = "ORD-\\d+"
            redaction = { method = "mask" }

            [applications]
            "**" = ["@common", "order"]
            "user.id" = ["@anything:hash"]
            "#,
        )
        .expect("valid toml");
        let from_json = PrivacyConfig::from_json_str(
            r#"{"rules": {"order": {"type": "pattern", "pattern": "ORD-\\d+", "redaction": {"method": "mask"}}},
                "applications": {"**": ["@common", "order"], "user.id": ["@anything:hash"]}}"#,
        )
        .expect("valid json");
        assert_eq!(from_toml, from_json);
    }

    #[test]
    fn unknown_types_and_methods_are_syntax_errors() {
        let error = PrivacyConfig::from_json_str(r#"{"rules": {"r": {"type": "zodiac"}}}"#).expect_err("unknown type");
        assert!(matches!(error, PrivacyConfigError::Syntax(_)), "{error}");
        let error =
            PrivacyConfig::from_json_str(r#"{"rules": {"r": {"type": "email", "redaction": {"method": "burn"}}}}"#)
                .expect_err("unknown method");
        assert!(error.to_string().contains("burn"), "{error}");
    }

    #[test]
    fn the_hash_key_is_never_printed_or_serialized() {
        let config = PrivacyConfig {
            vars: Vars { hash_key: Some(HashKey::new("top-secret-key")) },
            ..PrivacyConfig::common_preset()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("top-secret-key"), "{debug}");
        assert!(debug.contains("[redacted]"));
        let json = serde_json::to_string(&config).expect("serializes");
        assert!(!json.contains("top-secret-key") && !json.contains("hash_key"), "{json}");
    }

    #[test]
    fn uses_hash_sees_custom_and_builtin_hashing() {
        assert!(!PrivacyConfig::common_preset().uses_hash());
        let builtin = PrivacyConfig::from_json_str(r#"{"applications": {"user.id": ["@anything:hash"]}}"#).expect("ok");
        assert!(builtin.uses_hash());
        let custom = PrivacyConfig::from_json_str(
            r#"{"rules": {"h": {"type": "email", "redaction": {"method": "hash"}}}, "applications": {"**": ["h"]}}"#,
        )
        .expect("ok");
        assert!(custom.uses_hash());
    }
}
