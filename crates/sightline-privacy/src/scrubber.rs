//! The [`Scrubber`]: a [`PrivacyConfig`] compiled once (selectors parsed, rule ids resolved,
//! regexes built), applied in place to product events and OTLP attribute lists, reporting a
//! [`Remark`] for every field a rule changed.
//!
//! At every field the rules of the selectors matching it or any field around it run in order:
//! whole-value rules first (`anything`; `password` and `redact_pair` when the field's key
//! matches), which replace or remove the field and stop; otherwise the text rules (`email`,
//! `ip`, ...) rewrite the matches inside strings and numbers, and — for URLs — inside each
//! percent-decoded query parameter value, so `?email=jane%40example.com` is caught too.

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use sightline_model::ProductEvent;

use crate::builtin::{self, LeafRule, Matcher};
use crate::config::{HashKey, Method, PrivacyConfig, PrivacyConfigError, Redaction};
use crate::detect;
use crate::selector::Selector;

/// Most selectors (`applications` entries) in one configuration: each is one bit of a mask.
pub const MAX_APPLICATIONS: usize = 64;

/// One change a rule made: the record of which rule changed which field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Remark {
    /// The rule, as its id was given (`@email`, `@ip:hash`, a project rule's id); members of
    /// `@common` report their own ids.
    pub rule_id: String,
    /// The field's path (`page.url`, `metadata.billing.email`, `user.id`,
    /// `page.url.$query.token`).
    pub path: String,
    /// What was done.
    pub method: Method,
}

struct Application {
    selector: Selector,
    rules: Vec<usize>,
}

/// A compiled configuration. Build once per configuration (and per project key) and share it:
/// scrubbing takes `&self`.
pub struct Scrubber {
    rules: Vec<LeafRule>,
    applications: Vec<Application>,
    /// Bits of applications that are not `$query` selectors and need the path to match.
    path_applications: u64,
    /// Bits of `**`.
    everywhere: u64,
    /// Bits of `$query` selectors.
    query_applications: u64,
    hash_key: Option<HashKey>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Scrubber")
            .field("rules", &self.rules.iter().map(|rule| rule.id.as_str()).collect::<Vec<_>>())
            .field("selectors", &self.applications.iter().map(|app| app.selector.as_str()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Scrubber {
    /// Validates and compiles a configuration, keyed with `config.vars.hash_key`. Errors: see
    /// [`PrivacyConfigError`] (unknown rule ids, bad regexes or selectors, cycles, a `hash` rule
    /// without a key, more than [`MAX_APPLICATIONS`] selectors).
    pub fn new(config: &PrivacyConfig) -> Result<Self, PrivacyConfigError> {
        if config.applications.len() > MAX_APPLICATIONS {
            return Err(PrivacyConfigError::TooManySelectors(config.applications.len()));
        }
        if let Some(reserved) = config.rules.keys().find(|id| id.starts_with('@')) {
            return Err(PrivacyConfigError::ReservedRuleId(reserved.clone()));
        }
        // Rules nobody applies are still checked, so a broken rule is reported when it is saved.
        for id in config.rules.keys() {
            builtin::resolve(config, id, "rules", &mut Vec::new())?;
        }
        let mut rules: Vec<LeafRule> = Vec::new();
        let mut applications = Vec::with_capacity(config.applications.len());
        let (mut path_applications, mut everywhere, mut query_applications) = (0u64, 0u64, 0u64);
        for (index, (selector_text, ids)) in config.applications.iter().enumerate() {
            let selector = Selector::parse(selector_text)?;
            let mut leaves = Vec::new();
            for id in ids {
                builtin::resolve(config, id, &format!("selector {selector_text:?}"), &mut leaves)?;
            }
            let mut indices = Vec::with_capacity(leaves.len());
            for leaf in leaves {
                let position = match rules.iter().position(|known| known.id == leaf.id) {
                    Some(position) => position,
                    None => {
                        rules.push(leaf);
                        rules.len() - 1
                    }
                };
                if !indices.contains(&position) {
                    indices.push(position);
                }
            }
            let bit = 1u64 << index;
            if selector.is_query() {
                query_applications |= bit;
            } else if selector.matches_everything() {
                everywhere |= bit;
            } else {
                path_applications |= bit;
            }
            applications.push(Application { selector, rules: indices });
        }
        let hash_key = config.vars.hash_key.clone();
        if hash_key.is_none()
            && let Some(rule) = rules.iter().find(|rule| rule.redaction == Redaction::Hash)
        {
            return Err(PrivacyConfigError::MissingHashKey(rule.id.clone()));
        }
        Ok(Self { rules, applications, path_applications, everywhere, query_applications, hash_key })
    }

    /// True when the configuration applies no rule at all.
    pub fn is_empty(&self) -> bool {
        self.applications.iter().all(|application| application.rules.is_empty())
    }

    /// Scrubs a product event in place: `user.id`, every property (by its dotted name) and
    /// `metadata` (as `metadata.<key>...`). A removed `user.id` becomes `None`; `metadata`
    /// replaced as a whole becomes empty. Returns what changed, in field order.
    pub fn scrub_event(&self, event: &mut ProductEvent) -> Vec<Remark> {
        let mut walk = Walk::new(self, false);
        if let Some(user_id) = event.user_id.take() {
            let mut value = Value::String(user_id);
            let keep = walk.node("user.id", Some("user.id"), &mut value, 0);
            event.user_id = match value {
                Value::String(text) if keep && !text.is_empty() => Some(text),
                Value::Null => None,
                other if keep => Some(other.to_string()),
                _ => None,
            };
        }
        walk.entries("", &mut event.properties, 0);
        if !event.metadata.is_empty() {
            let mut metadata = Value::Object(std::mem::take(&mut event.metadata));
            let keep = walk.node("metadata", Some("metadata"), &mut metadata, 0);
            if let (true, Value::Object(map)) = (keep, metadata) {
                event.metadata = map;
            }
        }
        walk.remarks
    }

    /// Scrubs an OTLP attribute list in Sightline's typed JSON encoding
    /// (`sightline_model::Attributes`): keys are paths (`client.address`, `url.full`), values
    /// inside `{"kvlist": {...}}` are paths under their key, `{"bytes": ...}` and
    /// `{"double": ...}` are left alone. Removed attributes are deleted.
    pub fn scrub_attributes(&self, attributes: &mut Map<String, Value>) -> Vec<Remark> {
        let mut walk = Walk::new(self, true);
        walk.entries("", attributes, 0);
        walk.remarks
    }

    /// Scrubs one value at `path` (e.g. a log record's body at `body`) in the typed attribute
    /// encoding. Returns false when a rule removed it (the caller drops or empties it) and what
    /// changed.
    pub fn scrub_value(&self, path: &str, value: &mut Value) -> (bool, Vec<Remark>) {
        let mut walk = Walk::new(self, true);
        let keep = walk.node(path, path.rsplit('.').next(), value, 0);
        (keep, walk.remarks)
    }

    /// The pseudonym the `hash` method gives `text` (HMAC-SHA256 with the hash key, lowercase
    /// hex, 64 characters); `None` without a hash key. Lets callers find data stored under a
    /// pseudonym, e.g. an opted-out user whose `user.id` is hashed before storing.
    pub fn pseudonym(&self, text: &str) -> Option<String> {
        self.hash_key.as_ref().map(|_| self.hash(text))
    }

    /// The HMAC-SHA256 of `text` with the hash key, lowercase hex (64 characters).
    fn hash(&self, text: &str) -> String {
        let key = self.hash_key.as_ref().map(HashKey::as_bytes).unwrap_or_default();
        match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(text.as_bytes());
                const_hex::encode(mac.finalize().into_bytes())
            }
            // HMAC accepts keys of any length (RFC 2104 §2); kept total rather than panicking.
            Err(_) => "*".repeat(text.chars().count()),
        }
    }
}

/// One scrubbing pass: remarks so far and per-mask rule lists.
struct Walk<'a> {
    scrubber: &'a Scrubber,
    typed_attributes: bool,
    remarks: Vec<Remark>,
    /// Mask of active applications → rule indices in application order, deduplicated.
    rule_lists: Vec<(u64, Vec<usize>)>,
}

impl<'a> Walk<'a> {
    fn new(scrubber: &'a Scrubber, typed_attributes: bool) -> Self {
        Self { scrubber, typed_attributes, remarks: Vec::new(), rule_lists: Vec::new() }
    }

    /// The applications whose (non-query) selectors match `path`, plus the inherited ones.
    fn mask(&self, path: &str, inherited: u64) -> u64 {
        let scrubber = self.scrubber;
        let mut mask = inherited | scrubber.everywhere;
        let pending = scrubber.path_applications & !mask;
        if pending != 0 {
            let segments: Vec<&str> = path.split('.').collect();
            for (index, application) in scrubber.applications.iter().enumerate() {
                let bit = 1u64 << index;
                if pending & bit != 0 && application.selector.matches_path(&segments) {
                    mask |= bit;
                }
            }
        }
        mask
    }

    fn rules_for(&mut self, mask: u64) -> Vec<usize> {
        if let Some((_, rules)) = self.rule_lists.iter().find(|(known, _)| *known == mask) {
            return rules.clone();
        }
        let mut rules = Vec::new();
        for (index, application) in self.scrubber.applications.iter().enumerate() {
            if mask & (1u64 << index) != 0 {
                for rule in &application.rules {
                    if !rules.contains(rule) {
                        rules.push(*rule);
                    }
                }
            }
        }
        self.rule_lists.push((mask, rules.clone()));
        rules
    }

    fn remark(&mut self, rule: &LeafRule, path: &str) {
        let remark = Remark { rule_id: rule.id.clone(), path: path.to_owned(), method: rule.redaction.method() };
        if !self.remarks.contains(&remark) {
            self.remarks.push(remark);
        }
    }

    /// Scrubs the entries of an object whose path is `prefix` (empty at the top).
    fn entries(&mut self, prefix: &str, map: &mut Map<String, Value>, inherited: u64) {
        map.retain(|key, value| {
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            self.node(&path, Some(key), value, inherited)
        });
    }

    /// Scrubs one field; false when it is to be removed.
    fn node(&mut self, path: &str, key: Option<&str>, value: &mut Value, inherited: u64) -> bool {
        let mask = self.mask(path, inherited);
        let rules = if mask == 0 { Vec::new() } else { self.rules_for(mask) };
        let scrubber = self.scrubber;
        for index in &rules {
            let rule = &scrubber.rules[*index];
            let applies = match &rule.matcher {
                Matcher::Anything => true,
                Matcher::Password => key.is_some_and(detect::is_password_key),
                Matcher::RedactPair(regex) => key.is_some_and(|key| regex.is_match(key)),
                _ => false,
            };
            if applies && !value.is_null() {
                self.remark(rule, path);
                return redact_whole(scrubber, rule, value);
            }
        }
        match value {
            Value::String(text) => {
                if let Some(changed) = self.text(path, text, &rules) {
                    *text = changed;
                }
                if self.looks_like_url_with_query(path, text) {
                    let query_rules = self.query_rules(path);
                    if (!rules.is_empty() || !query_rules.is_empty())
                        && let Some(changed) = self.query(path, text, &rules, &query_rules)
                    {
                        *text = changed;
                    }
                }
                true
            }
            Value::Number(number) if !rules.is_empty() => {
                let text = number.to_string();
                if let Some(changed) = self.text(path, &text, &rules) {
                    *value = Value::String(changed);
                }
                true
            }
            Value::Object(map) => {
                if self.typed_attributes && map.len() == 1 {
                    if let Some(Value::Object(inner)) = map.get_mut("kvlist") {
                        self.entries(path, inner, mask);
                        return true;
                    }
                    if map.contains_key("bytes") || map.contains_key("double") {
                        return true;
                    }
                }
                self.entries(path, map, mask);
                true
            }
            Value::Array(items) => {
                items.retain_mut(|item| self.node(path, key, item, mask));
                true
            }
            _ => true,
        }
    }

    /// Runs the text rules over `text`; the new text when one matched.
    fn text(&mut self, path: &str, text: &str, rules: &[usize]) -> Option<String> {
        let scrubber = self.scrubber;
        let mut current: Option<String> = None;
        for index in rules {
            let rule = &scrubber.rules[*index];
            if rule.matcher.is_whole_value() {
                continue;
            }
            let input = current.as_deref().unwrap_or(text);
            if let Some(changed) = redact_matches(scrubber, rule, input) {
                self.remark(rule, path);
                current = Some(changed);
            }
        }
        current
    }

    fn looks_like_url_with_query(&self, path: &str, text: &str) -> bool {
        text.contains('=')
            && (text.contains('?') && (text.contains("://") || text.starts_with('/') || text.starts_with('?'))
                || path.rsplit('.').next().is_some_and(|last| last.eq_ignore_ascii_case("query")))
    }

    /// The rules of the `$query` selectors matching `path`, by application.
    fn query_rules(&self, path: &str) -> Vec<(usize, usize)> {
        let scrubber = self.scrubber;
        if scrubber.query_applications == 0 {
            return Vec::new();
        }
        let segments: Vec<&str> = path.split('.').collect();
        let mut rules = Vec::new();
        for (index, application) in scrubber.applications.iter().enumerate() {
            if scrubber.query_applications & (1u64 << index) != 0 && application.selector.matches_path(&segments) {
                rules.extend(application.rules.iter().map(|rule| (index, *rule)));
            }
        }
        rules
    }

    /// Scrubs each query parameter value of a URL (or of a bare query string at a `*.query`
    /// path); the new text when one changed. Untouched parameters keep their encoding.
    fn query(&mut self, path: &str, text: &str, rules: &[usize], query_rules: &[(usize, usize)]) -> Option<String> {
        let scrubber = self.scrubber;
        let (query_start, query_end) = match text.find('?') {
            Some(question) => (question + 1, text[question..].find('#').map_or(text.len(), |hash| question + hash)),
            None => (0, text.find('#').unwrap_or(text.len())),
        };
        let segments: Vec<&str> = path.split('.').collect();
        let mut changed = false;
        let mut pairs: Vec<String> = Vec::new();
        for pair in text[query_start..query_end].split('&') {
            let Some((raw_name, _)) = pair.split_once('=') else {
                pairs.push(pair.to_owned());
                continue;
            };
            let Some((name, decoded)) = form_urlencoded::parse(pair.as_bytes()).next() else {
                pairs.push(pair.to_owned());
                continue;
            };
            let parameter_path = format!("{path}.$query.{name}");
            let mut applicable: Vec<usize> = rules.to_vec();
            for (application, rule) in query_rules {
                if scrubber.applications[*application].selector.matches_query_parameter(&segments, &name)
                    && !applicable.contains(rule)
                {
                    applicable.push(*rule);
                }
            }
            let mut value = Value::String(decoded.into_owned());
            let keep = self.query_value(&parameter_path, &name, &mut value, &applicable, rules.len());
            let new_value = match value {
                Value::String(new_value) => new_value,
                other => other.to_string(),
            };
            if !keep {
                changed = true;
                continue;
            }
            if form_urlencoded::parse(pair.as_bytes()).next().is_some_and(|(_, old)| old == new_value) {
                pairs.push(pair.to_owned());
            } else {
                changed = true;
                let encoded: String = form_urlencoded::byte_serialize(new_value.as_bytes()).collect();
                pairs.push(format!("{raw_name}={encoded}"));
            }
        }
        if !changed {
            return None;
        }
        Some(format!("{}{}{}", &text[..query_start], pairs.join("&"), &text[query_end..]))
    }

    /// One decoded parameter value: whole-value rules (key rules only among the field's own
    /// rules, the first `field_rules`; anything only from `$query` selectors), then text rules.
    fn query_value(&mut self, path: &str, name: &str, value: &mut Value, rules: &[usize], field_rules: usize) -> bool {
        let scrubber = self.scrubber;
        for (position, index) in rules.iter().enumerate() {
            let rule = &scrubber.rules[*index];
            let applies = match &rule.matcher {
                // `anything` of the field itself already replaced the whole URL.
                Matcher::Anything => position >= field_rules,
                Matcher::Password => detect::is_password_key(name),
                Matcher::RedactPair(regex) => regex.is_match(name),
                _ => false,
            };
            if applies {
                self.remark(rule, path);
                return redact_whole(scrubber, rule, value);
            }
        }
        if let Value::String(text) = value
            && let Some(changed) = self.text(path, text, rules)
        {
            *text = changed;
        }
        true
    }
}

/// Applies a whole-value rule; false when the field is to be removed.
fn redact_whole(scrubber: &Scrubber, rule: &LeafRule, value: &mut Value) -> bool {
    let text = match &*value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    *value = match &rule.redaction {
        Redaction::Remove => return false,
        Redaction::Replace { text: replacement } => Value::String(replacement.clone().unwrap_or_default()),
        Redaction::Mask => Value::String("*".repeat(text.chars().count())),
        Redaction::Hash => Value::String(scrubber.hash(&text)),
    };
    true
}

/// Rewrites the matches of a text rule; `None` when nothing matched.
fn redact_matches(scrubber: &Scrubber, rule: &LeafRule, text: &str) -> Option<String> {
    let mut ranges = match &rule.matcher {
        Matcher::Email => detect::email(text),
        Matcher::Ip => detect::ip(text),
        Matcher::Creditcard => detect::creditcard(text),
        Matcher::Iban => detect::iban(text),
        Matcher::Uuid => detect::uuid(text),
        Matcher::Phone => detect::phone(text),
        Matcher::Bearer => detect::bearer(text),
        Matcher::UrlAuth => detect::url_auth(text),
        Matcher::Pattern { regex, groups } => {
            let mut ranges = Vec::new();
            for captures in regex.captures_iter(text) {
                ranges.extend(groups.iter().filter_map(|group| captures.get(*group)).map(|found| found.range()));
            }
            ranges.sort_by_key(|range| (range.start, std::cmp::Reverse(range.end)));
            ranges
        }
        Matcher::Password | Matcher::RedactPair(_) | Matcher::Anything => return None,
    };
    ranges.retain(|range| !range.is_empty());
    if ranges.is_empty() {
        return None;
    }
    let mut output = String::with_capacity(text.len());
    let mut position = 0;
    for range in ranges {
        if range.start < position {
            continue; // overlapping groups: the earlier one wins
        }
        output.push_str(&text[position..range.start]);
        let matched = &text[range.clone()];
        match &rule.redaction {
            Redaction::Remove => {}
            Redaction::Replace { text: replacement } => output.push_str(replacement.as_deref().unwrap_or_default()),
            Redaction::Mask => output.push_str(&mask(matched, matches!(rule.matcher, Matcher::Creditcard))),
            Redaction::Hash => output.push_str(&scrubber.hash(matched)),
        }
        position = range.end;
    }
    output.push_str(&text[position..]);
    (output != text).then_some(output)
}

/// `*` for every character; card numbers keep their separators and last four digits (what
/// PCI DSS allows to be displayed).
fn mask(matched: &str, keep_last_four_digits: bool) -> String {
    if !keep_last_four_digits {
        return "*".repeat(matched.chars().count());
    }
    let digits = matched.bytes().filter(u8::is_ascii_digit).count();
    let mut seen = 0;
    matched
        .chars()
        .map(|character| {
            if character.is_ascii_digit() {
                seen += 1;
                if seen > digits.saturating_sub(4) { character } else { '*' }
            } else {
                character
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "scrubber_tests.rs"]
mod tests;
