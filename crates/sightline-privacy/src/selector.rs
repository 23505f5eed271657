//! Selectors: which fields a rule applies to, as dotted key paths with globs.
//!
//! A field's path is its key split on `.`: the property `page.url` is `page.url`, the metadata
//! entry `{"billing": {"email": ...}}` is `metadata.billing.email`, span and log attributes are
//! their keys (`client.address`, `http.request.header.authorization`), the event's user is
//! `user.id`. Array elements share the array's path. Matching ignores ASCII case.
//!
//! | selector                     | matches                                                        |
//! |------------------------------|----------------------------------------------------------------|
//! | `user.id`                    | that field                                                     |
//! | `*`                          | any one segment (`*.email` = `billing.email`, not `a.b.email`) |
//! | `**`                         | any number of segments, none included (`**` = every field)     |
//! | `user_*`, `http.request.header.*` | `*` inside a segment matches any characters of it         |
//! | `page.url.$query`            | every query parameter value of the URL in `page.url`           |
//! | `**.$query.token`            | the `token` parameter of any URL (the name may be a glob)      |
//!
//! A rule applies to the fields a selector matches and everything inside them (a rule on
//! `metadata` scrubs all of metadata). Relay's `$string`-style type selectors and boolean
//! operators are not supported.

use crate::config::PrivacyConfigError;

/// Most `**` segments in one selector (matching cost grows with their number).
const MAX_DEEP_WILDCARDS: usize = 4;

/// One segment of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`.
    AnyDepth,
    /// A key segment, possibly with `*` globs, lowercase.
    Glob(String),
}

/// A parsed selector (see the module docs for the syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    text: String,
    segments: Vec<Segment>,
    /// `Some(None)` for `.$query`, `Some(Some(glob))` for `.$query.<name glob>`.
    query: Option<Option<String>>,
}

impl Selector {
    /// Parses a selector. Errors: [`PrivacyConfigError::BadSelector`] for an empty text or
    /// segment, a `$` segment other than `$query`, something after `$query.<name>`, a `**`
    /// query parameter name or more than four `**`.
    pub fn parse(text: &str) -> Result<Self, PrivacyConfigError> {
        let bad =
            |reason: &str| PrivacyConfigError::BadSelector { selector: text.to_owned(), reason: reason.to_owned() };
        if text.trim().is_empty() {
            return Err(bad("empty selector"));
        }
        let parts: Vec<&str> = text.split('.').collect();
        let query_index = parts.iter().position(|part| part.starts_with('$'));
        let (path_parts, query) = match query_index {
            None => (&parts[..], None),
            Some(index) => {
                if parts[index] != "$query" {
                    return Err(bad("the only $ segment is $query (URL query parameters)"));
                }
                if index == 0 {
                    return Err(bad("$query needs the path of the URL field before it, e.g. page.url.$query"));
                }
                let name = match &parts[index + 1..] {
                    [] => None,
                    [""] => return Err(bad("empty query parameter name")),
                    [name] if name.contains("**") => return Err(bad("a query parameter name cannot be **")),
                    [name] => Some(name.to_ascii_lowercase()),
                    _ => return Err(bad("at most one query parameter name may follow $query")),
                };
                (&parts[..index], Some(name))
            }
        };
        let mut segments = Vec::with_capacity(path_parts.len());
        for part in path_parts {
            if part.is_empty() {
                return Err(bad("empty segment (two dots in a row, or a leading or trailing dot)"));
            }
            if *part == "**" {
                if segments.last() != Some(&Segment::AnyDepth) {
                    segments.push(Segment::AnyDepth);
                }
            } else if part.contains("**") {
                return Err(bad("** must be a whole segment"));
            } else {
                segments.push(Segment::Glob(part.to_ascii_lowercase()));
            }
        }
        if segments.iter().filter(|segment| **segment == Segment::AnyDepth).count() > MAX_DEEP_WILDCARDS {
            return Err(bad("more than four ** segments"));
        }
        Ok(Self { text: text.to_owned(), segments, query })
    }

    /// The selector as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True for `**` alone: matches every field without looking at its path.
    pub fn matches_everything(&self) -> bool {
        self.query.is_none() && self.segments == [Segment::AnyDepth]
    }

    /// True for selectors of URL query parameters (`....$query[.name]`).
    pub fn is_query(&self) -> bool {
        self.query.is_some()
    }

    /// True when the path (its segments) matches the selector's path part.
    pub fn matches_path(&self, path: &[&str]) -> bool {
        matches_segments(&self.segments, path)
    }

    /// For a query selector: true when it covers the parameter `name` of the URL at `path`.
    pub fn matches_query_parameter(&self, path: &[&str], name: &str) -> bool {
        match &self.query {
            None => false,
            Some(name_glob) => {
                self.matches_path(path) && name_glob.as_deref().is_none_or(|glob| glob_matches(glob, name))
            }
        }
    }
}

fn matches_segments(segments: &[Segment], path: &[&str]) -> bool {
    match segments.split_first() {
        None => path.is_empty(),
        Some((Segment::AnyDepth, rest)) => (0..=path.len()).any(|skip| matches_segments(rest, &path[skip..])),
        Some((Segment::Glob(glob), rest)) => match path.split_first() {
            Some((first, path_rest)) => glob_matches(glob, first) && matches_segments(rest, path_rest),
            None => false,
        },
    }
}

/// `*` matches any run of characters; everything else matches itself, ASCII case ignored (the
/// glob is lowercase).
fn glob_matches(glob: &str, text: &str) -> bool {
    if !glob.contains('*') {
        return glob.len() == text.len() && glob.eq_ignore_ascii_case(text);
    }
    let text = text.to_ascii_lowercase();
    let pieces: Vec<&str> = glob.split('*').collect();
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(index) => rest = &rest[index + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(selector: &str, path: &str) -> bool {
        let path: Vec<&str> = path.split('.').collect();
        Selector::parse(selector).expect("valid").matches_path(&path)
    }

    #[test]
    fn globs_over_dotted_paths() {
        assert!(matches("user.id", "user.id"));
        assert!(matches("USER.ID", "user.Id"));
        assert!(!matches("user.id", "user.id.x"));
        assert!(matches("*.email", "billing.email"));
        assert!(!matches("*.email", "a.billing.email"));
        assert!(matches("**.email", "a.billing.email"));
        assert!(matches("**.email", "email"));
        assert!(matches("**", "anything.at.all"));
        assert!(matches("metadata.**", "metadata.a.b"));
        assert!(matches("http.request.header.*", "http.request.header.cookie"));
        assert!(matches("user_*", "user_email"));
        assert!(matches("*_token*", "refresh_token_v2"));
        assert!(!matches("user_*", "users"));
        assert!(matches("a.**.z", "a.z") && matches("a.**.z", "a.b.c.z") && !matches("a.**.z", "a.b.c"));
    }

    #[test]
    fn query_selectors() {
        let selector = Selector::parse("**.$query.tok*").expect("valid");
        assert!(selector.is_query());
        assert!(selector.matches_query_parameter(&["page", "url"], "token"));
        assert!(!selector.matches_query_parameter(&["page", "url"], "q"));
        let all = Selector::parse("page.url.$query").expect("valid");
        assert!(all.matches_query_parameter(&["page", "url"], "anything"));
        assert!(!all.matches_query_parameter(&["url", "full"], "anything"));
    }

    #[test]
    fn bad_selectors_say_why() {
        for (selector, reason) in [
            ("", "empty selector"),
            ("a..b", "empty segment"),
            ("a.$string", "$query"),
            ("$query", "needs the path"),
            ("a.$query.b.c", "at most one"),
            ("a.$query.**", "cannot be **"),
            ("a**", "whole segment"),
            ("**.a.**.b.**.c.**.d.**.e", "more than four"),
        ] {
            let error = Selector::parse(selector).expect_err(selector).to_string();
            assert!(error.contains(reason), "{selector}: {error}");
        }
    }
}
