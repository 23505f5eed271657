//! Built-in rules (`@email`, `@ip:hash`, `@creditcard:mask`, `@common`, ...) and the resolution
//! of rule ids — built-in or project-defined, through `multiple` and `alias` — into leaf rules.
//!
//! Every built-in type has the variants `:remove`, `:replace`, `:mask` and `:hash`; the bare id
//! is `:replace` with the type's placeholder, except `@password` which is `:remove` (as in
//! Relay's `builtin.rs`). `@common` is `@bearer`, `@url_auth`, `@password`, `@email`,
//! `@creditcard`, `@iban`, `@ip` and `@phone`, in that order (URL credentials go before e-mail
//! detection, which would otherwise see `secret@host`).

use regex::{Regex, RegexBuilder};

use crate::config::{PrivacyConfig, PrivacyConfigError, Redaction, RuleType};

/// Largest compiled size of a project's regex (bytes), as Relay limits it: bounds memory and
/// keeps a hostile pattern from stalling ingest.
const PATTERN_SIZE_LIMIT: usize = 256 * 1024;

/// Deepest nesting of `multiple` / `alias` rules.
const MAX_DEPTH: usize = 16;

/// The members of `@common`.
pub const COMMON: &[&str] = &["@bearer", "@url_auth", "@password", "@email", "@creditcard", "@iban", "@ip", "@phone"];

/// What a leaf rule looks for.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Pattern {
        regex: Regex,
        groups: Vec<usize>,
    },
    Email,
    Ip,
    Creditcard,
    Iban,
    Uuid,
    Phone,
    Bearer,
    UrlAuth,
    /// Whole values of keys naming secrets.
    Password,
    /// Whole values of keys matching the regex.
    RedactPair(Regex),
    /// Whole values.
    Anything,
}

impl Matcher {
    /// The placeholder `replace` uses when the rule gives no text.
    fn placeholder(&self) -> &'static str {
        match self {
            Matcher::Email => "[email]",
            Matcher::Ip => "[ip]",
            Matcher::Creditcard => "[creditcard]",
            Matcher::Iban => "[iban]",
            Matcher::Uuid => "[uuid]",
            Matcher::Phone => "[phone]",
            Matcher::Bearer => "[token]",
            Matcher::UrlAuth => "[auth]",
            Matcher::Password => "[password]",
            Matcher::Pattern { .. } | Matcher::RedactPair(_) | Matcher::Anything => "[Filtered]",
        }
    }

    /// True for rules that act on a whole value chosen by its key or selector, not on matches
    /// inside text.
    pub(crate) fn is_whole_value(&self) -> bool {
        matches!(self, Matcher::Password | Matcher::RedactPair(_) | Matcher::Anything)
    }
}

/// A rule ready to run: its id (as remarks report it), matcher and redaction (placeholder
/// resolved).
#[derive(Debug, Clone)]
pub(crate) struct LeafRule {
    pub(crate) id: String,
    pub(crate) matcher: Matcher,
    pub(crate) redaction: Redaction,
}

fn builtin_matcher(name: &str) -> Option<Matcher> {
    Some(match name {
        "email" => Matcher::Email,
        "ip" => Matcher::Ip,
        "creditcard" => Matcher::Creditcard,
        "iban" => Matcher::Iban,
        "uuid" => Matcher::Uuid,
        "phone" => Matcher::Phone,
        "bearer" => Matcher::Bearer,
        "url_auth" | "urlauth" => Matcher::UrlAuth,
        "password" => Matcher::Password,
        "anything" => Matcher::Anything,
        _ => return None,
    })
}

fn builtin_redaction(method: &str) -> Option<Redaction> {
    Some(match method {
        "remove" => Redaction::Remove,
        "replace" => Redaction::Replace { text: None },
        "mask" => Redaction::Mask,
        "hash" => Redaction::Hash,
        _ => return None,
    })
}

/// Fills in the placeholder of a `replace` without text.
fn with_placeholder(redaction: Redaction, matcher: &Matcher) -> Redaction {
    match redaction {
        Redaction::Replace { text: None } => Redaction::Replace { text: Some(matcher.placeholder().to_owned()) },
        other => other,
    }
}

/// Resolves `id` (named by `referenced_by`) into leaf rules appended to `out`. Errors: unknown
/// ids, reserved ids, bad regexes or groups, cycles.
pub(crate) fn resolve(
    config: &PrivacyConfig,
    id: &str,
    referenced_by: &str,
    out: &mut Vec<LeafRule>,
) -> Result<(), PrivacyConfigError> {
    resolve_at(config, id, referenced_by, out, &mut Vec::new())
}

fn resolve_at(
    config: &PrivacyConfig,
    id: &str,
    referenced_by: &str,
    out: &mut Vec<LeafRule>,
    visiting: &mut Vec<String>,
) -> Result<(), PrivacyConfigError> {
    let unknown = || PrivacyConfigError::UnknownRule { rule: id.to_owned(), referenced_by: referenced_by.to_owned() };
    if let Some(builtin) = id.strip_prefix('@') {
        if builtin == "common" {
            for member in COMMON {
                resolve_at(config, member, id, out, visiting)?;
            }
            return Ok(());
        }
        let (name, method) = match builtin.split_once(':') {
            Some((name, method)) => (name, Some(method)),
            None => (builtin, None),
        };
        let matcher = builtin_matcher(name).ok_or_else(unknown)?;
        let redaction = match method {
            Some(method) => builtin_redaction(method).ok_or_else(unknown)?,
            None if matches!(matcher, Matcher::Password) => Redaction::Remove,
            None => Redaction::Replace { text: None },
        };
        let redaction = with_placeholder(redaction, &matcher);
        out.push(LeafRule { id: id.to_owned(), matcher, redaction });
        return Ok(());
    }
    let spec = config.rules.get(id).ok_or_else(unknown)?;
    if visiting.iter().any(|seen| seen == id) {
        return Err(PrivacyConfigError::Cycle(id.to_owned()));
    }
    if visiting.len() >= MAX_DEPTH {
        return Err(PrivacyConfigError::Cycle(id.to_owned()));
    }
    let matcher = match &spec.rule_type {
        RuleType::Multiple { rules } => {
            visiting.push(id.to_owned());
            for member in rules {
                resolve_at(config, member, id, out, visiting)?;
            }
            visiting.pop();
            return Ok(());
        }
        RuleType::Alias { rule } => {
            visiting.push(id.to_owned());
            resolve_at(config, rule, id, out, visiting)?;
            visiting.pop();
            return Ok(());
        }
        RuleType::Pattern { pattern, replace_groups } => {
            let regex = compile(id, pattern)?;
            let groups = replace_groups.clone().unwrap_or_else(|| vec![0]);
            let available = regex.captures_len() - 1;
            if let Some(group) = groups.iter().find(|group| **group > available) {
                return Err(PrivacyConfigError::BadGroup { rule: id.to_owned(), group: *group, groups: available });
            }
            Matcher::Pattern { regex, groups }
        }
        RuleType::RedactPair { key_pattern } => Matcher::RedactPair(compile(id, key_pattern)?),
        RuleType::Email => Matcher::Email,
        RuleType::Ip => Matcher::Ip,
        RuleType::Creditcard => Matcher::Creditcard,
        RuleType::Iban => Matcher::Iban,
        RuleType::Uuid => Matcher::Uuid,
        RuleType::Phone => Matcher::Phone,
        RuleType::Bearer => Matcher::Bearer,
        RuleType::UrlAuth => Matcher::UrlAuth,
        RuleType::Password => Matcher::Password,
        RuleType::Anything => Matcher::Anything,
    };
    let redaction = with_placeholder(spec.redaction.clone().unwrap_or(Redaction::Replace { text: None }), &matcher);
    out.push(LeafRule { id: id.to_owned(), matcher, redaction });
    Ok(())
}

fn compile(rule: &str, pattern: &str) -> Result<Regex, PrivacyConfigError> {
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|error| PrivacyConfigError::BadRegex { rule: rule.to_owned(), reason: error.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(config: &PrivacyConfig, id: &str) -> Result<Vec<String>, PrivacyConfigError> {
        let mut out = Vec::new();
        resolve(config, id, "test", &mut out)?;
        Ok(out.into_iter().map(|rule| rule.id).collect())
    }

    #[test]
    fn builtins_and_their_method_variants() {
        let config = PrivacyConfig::default();
        assert_eq!(ids(&config, "@common").expect("ok"), COMMON);
        let mut out = Vec::new();
        resolve(&config, "@ip:hash", "x", &mut out).expect("ok");
        assert!(matches!(out[0].matcher, Matcher::Ip) && out[0].redaction == Redaction::Hash);
        resolve(&config, "@email", "x", &mut out).expect("ok");
        assert_eq!(out[1].redaction, Redaction::Replace { text: Some("[email]".into()) });
        resolve(&config, "@password", "x", &mut out).expect("ok");
        assert_eq!(out[2].redaction, Redaction::Remove);
        for unknown in ["@zodiac", "@email:burn", "@", "nope"] {
            let error = ids(&config, unknown).expect_err(unknown);
            assert!(matches!(error, PrivacyConfigError::UnknownRule { .. }), "{error}");
        }
    }

    #[test]
    fn multiple_alias_cycles_and_bad_patterns() {
        let config = PrivacyConfig::from_json_str(
            r#"{"rules": {
                "both": {"type": "multiple", "rules": ["@email:mask", "mine"]},
                "mine": {"type": "alias", "rule": "order"},
                "order": {"type": "pattern", "pattern": "ORD-(\\d+)", "replace_groups": [1]},
                "loop_a": {"type": "alias", "rule": "loop_b"},
                "loop_b": {"type": "multiple", "rules": ["loop_a"]},
                "broken": {"type": "pattern", "pattern": "(unclosed"},
                "group": {"type": "pattern", "pattern": "a(b)", "replace_groups": [2]}
            }}"#,
        )
        .expect("valid json");
        assert_eq!(ids(&config, "both").expect("ok"), ["@email:mask", "order"]);
        assert_eq!(ids(&config, "loop_a").expect_err("cycle"), PrivacyConfigError::Cycle("loop_a".into()));
        assert!(matches!(ids(&config, "broken"), Err(PrivacyConfigError::BadRegex { .. })));
        assert!(matches!(ids(&config, "group"), Err(PrivacyConfigError::BadGroup { group: 2, groups: 1, .. })));
    }
}
