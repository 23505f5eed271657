//! Helpers shared by the integration tests: fixture loading and grouping one parsed exception.

#![allow(dead_code)]

use std::path::PathBuf;

use sightline_grouping::{
    Fingerprint, GroupingInput, InAppRules, ParsedStack, Platform, fingerprint, parse_stacktrace,
};

/// Reads `tests/fixtures/<relative>` (captured runtime output, see tests/fixtures/README.md).
pub fn fixture(relative: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", relative].iter().collect();
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

/// Parses with detection and groups the top-level exception with default in-app rules.
pub fn group_text(text: &str) -> Fingerprint {
    group_stack(&parse_stacktrace(text, None), &InAppRules::default(), None)
}

/// Groups the top-level exception of a parsed stack under `rules`, with an optional client fingerprint.
pub fn group_stack(stack: &ParsedStack, rules: &InAppRules, client_fingerprint: Option<&[String]>) -> Fingerprint {
    let mut top_level = stack.exceptions[0].clone();
    rules.apply(stack.platform, &mut top_level.frames);
    fingerprint(&GroupingInput {
        platform: stack.platform,
        exception_type: &top_level.exception_type,
        message: &top_level.message,
        frames: &top_level.frames,
        client_fingerprint,
    })
}

/// Parses with an explicit platform hint.
pub fn parse_as(text: &str, platform: Platform) -> ParsedStack {
    parse_stacktrace(text, Some(platform))
}

/// Whether two fingerprints share a hash (Sentry: the event joins the group).
pub fn hashes_intersect(first: &Fingerprint, second: &Fingerprint) -> bool {
    first.hashes.iter().any(|hash| second.hashes.contains(hash))
}
