//! Stack trace text → [`ParsedStack`]: platform detection, one parser per runtime format, then the
//! shared bounds (lines read, frames kept, message size) and default in-app rules.
//!
//! Every parser reads lines leniently: a line it does not recognize is skipped, never an error, because
//! traces arrive wrapped in log output, cut short, or mixed with other text.

mod dotnet;
mod frame_lines;
mod go;
mod java;
mod javascript;
mod python;
mod rust;

pub(crate) use rust::crate_of as rust_crate_of;

use crate::frame::{MAX_INPUT_LINES, ParsedException, ParsedStack, enforce_bounds, truncate_to_boundary};
use crate::in_app::InAppRules;
use crate::platform::Platform;

/// Parses a runtime's printed stack trace (OTel `exception.stacktrace`) into an exception chain.
///
/// - `text`: the trace; callers convert invalid UTF-8 lossily first. At most [`MAX_INPUT_LINES`] lines are
///   read; each exception keeps at most [`crate::MAX_FRAMES_PER_EXCEPTION`] frames (middle trimmed) and a
///   message of at most [`crate::MAX_MESSAGE_BYTES`].
/// - `hint`: the platform from `telemetry.sdk.language`; `None` or [`Platform::Other`] detects the format
///   from the text. A hinted parser that finds no frame falls back to the detected format.
///
/// Never panics and never fails: text with no recognizable exception gives one exception whose message is
/// the first non-empty line (type split off when it reads `Type: message`) and no frames. Frames are
/// marked in-app with [`InAppRules::default`]; apply the project's rules afterwards.
pub fn parse_stacktrace(text: &str, hint: Option<Platform>) -> ParsedStack {
    let lines: Vec<&str> = text.lines().take(MAX_INPUT_LINES).collect();
    // Detection scans every line against every format, so it runs only when there is no usable
    // hint, or when the hinted parser found no frames (then the text decides, as before).
    let mut platform = match hint {
        Some(Platform::Other) | None => detect_platform(&lines),
        Some(hinted) => hinted,
    };
    let mut exceptions = parse_with(platform, &lines);
    if frame_count(&exceptions) == 0 {
        let detected = detect_platform(&lines);
        if detected != platform && detected != Platform::Other {
            let detected_exceptions = parse_with(detected, &lines);
            if frame_count(&detected_exceptions) > 0 {
                platform = detected;
                exceptions = detected_exceptions;
            }
        }
    }
    exceptions.retain(|exception| {
        !exception.exception_type.is_empty() || !exception.message.is_empty() || !exception.frames.is_empty()
    });
    if exceptions.is_empty() {
        exceptions.push(fallback_exception(&lines));
    }
    enforce_bounds(&mut exceptions);
    let default_rules = InAppRules::default();
    for exception in &mut exceptions {
        default_rules.apply(platform, &mut exception.frames);
    }
    ParsedStack { platform, exceptions }
}

fn parse_with(platform: Platform, lines: &[&str]) -> Vec<ParsedException> {
    match platform {
        Platform::Python => python::parse(lines),
        Platform::JavaScript => javascript::parse(lines),
        Platform::Java => java::parse(lines),
        Platform::Go => go::parse(lines),
        Platform::Rust => rust::parse(lines),
        Platform::DotNet => dotnet::parse(lines),
        Platform::Other => Vec::new(),
    }
}

fn frame_count(exceptions: &[ParsedException]) -> usize {
    exceptions.iter().map(|exception| exception.frames.len()).sum()
}

/// One exception from the first non-empty line, for text no parser recognizes.
fn fallback_exception(lines: &[&str]) -> ParsedException {
    let Some(first_line) = lines.iter().map(|line| line.trim()).find(|line| !line.is_empty()) else {
        return ParsedException::new("", "");
    };
    let (exception_type, message) = split_type_and_message(first_line).unwrap_or(("", first_line));
    let mut message = message.to_owned();
    truncate_to_boundary(&mut message, crate::MAX_MESSAGE_BYTES);
    ParsedException::new(exception_type, message)
}

/// Splits `Type: message` (or a bare `Type`) when `Type` is a dotted identifier (letters, digits, `_`, `$`,
/// `.`, `` ` ``, `+`), the header shape every supported runtime prints. `None` for anything else.
pub(crate) fn split_type_and_message(line: &str) -> Option<(&str, &str)> {
    let (candidate, message) = match line.split_once(": ") {
        Some((candidate, message)) => (candidate, message),
        None => (line.strip_suffix(':').unwrap_or(line), ""),
    };
    if is_type_name(candidate) { Some((candidate, message)) } else { None }
}

/// Whether `text` looks like an exception class name: a dotted identifier with no spaces.
pub(crate) fn is_type_name(text: &str) -> bool {
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || first == '_' || first == '$')
        && !text.ends_with('.')
        && chars.all(|character| character.is_alphanumeric() || matches!(character, '_' | '$' | '.' | '`' | '+'))
}

/// Guesses the trace format from its lines: each parser's signature lines score a point, the best score
/// wins, ties and no score give [`Platform::Other`]. Reads at most the first 400 lines.
pub(crate) fn detect_platform(lines: &[&str]) -> Platform {
    let mut scores = [0usize; 6];
    let platforms =
        [Platform::Python, Platform::JavaScript, Platform::Java, Platform::Go, Platform::Rust, Platform::DotNet];
    for line in lines.iter().take(400) {
        if python::is_signature_line(line) {
            scores[0] += 1;
        }
        if javascript::is_signature_line(line) {
            scores[1] += 1;
        }
        if java::is_signature_line(line) {
            scores[2] += 1;
        }
        if go::is_signature_line(line) {
            scores[3] += 1;
        }
        if rust::is_signature_line(line) {
            scores[4] += 1;
        }
        if dotnet::is_signature_line(line) {
            scores[5] += 1;
        }
    }
    let best_score = scores.iter().copied().max().unwrap_or(0);
    if best_score == 0 || scores.iter().filter(|score| **score == best_score).count() > 1 {
        return Platform::Other;
    }
    scores.iter().position(|score| *score == best_score).map_or(Platform::Other, |index| platforms[index])
}

/// Leading whitespace width, a tab counting as 4 columns (JVM and .NET traces indent with either).
pub(crate) fn indent_width(line: &str) -> usize {
    line.chars()
        .take_while(|character| character.is_whitespace())
        .map(|character| if character == '\t' { 4 } else { 1 })
        .sum()
}

/// Parses a decimal line or column number; `None` for zero, overflow or non-digits.
pub(crate) fn parse_number(text: &str) -> Option<u32> {
    text.trim().parse::<u32>().ok().filter(|number| *number > 0)
}

/// Splits `path:line[:col]` from the right; the path keeps any `:` it contains (URLs, Windows drives).
pub(crate) fn split_location(location: &str) -> (&str, Option<u32>, Option<u32>) {
    let Some((head, last)) = location.rsplit_once(':') else {
        return (location, None, None);
    };
    let Some(last_number) = parse_number_strict(last) else {
        return (location, None, None);
    };
    match head.rsplit_once(':') {
        Some((path, middle)) if parse_number_strict(middle).is_some() => {
            (path, parse_number_strict(middle), Some(last_number))
        }
        _ => (head, Some(last_number), None),
    }
}

fn parse_number_strict(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse::<u32>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_locations_from_the_right() {
        assert_eq!(split_location("https://cdn.acme.com/a.js:10:5"), ("https://cdn.acme.com/a.js", Some(10), Some(5)));
        assert_eq!(split_location("/srv/a.js:10"), ("/srv/a.js", Some(10), None));
        assert_eq!(split_location("<anonymous>"), ("<anonymous>", None, None));
        assert_eq!(split_location("C:\\app\\a.js:3:1"), ("C:\\app\\a.js", Some(3), Some(1)));
    }

    #[test]
    fn type_names_are_dotted_identifiers() {
        assert_eq!(split_type_and_message("ValueError: bad"), Some(("ValueError", "bad")));
        assert_eq!(split_type_and_message("java.lang.Error"), Some(("java.lang.Error", "")));
        assert_eq!(split_type_and_message("Node.js v20"), None);
        assert_eq!(split_type_and_message("/srv/a.js:13"), None);
    }

    #[test]
    fn empty_and_blank_input_give_one_empty_exception() {
        for text in ["", "\n\n  \n"] {
            let stack = parse_stacktrace(text, None);
            assert_eq!(stack.exceptions, vec![ParsedException::new("", "")]);
        }
    }

    #[test]
    fn unrecognized_text_becomes_the_message() {
        let stack = parse_stacktrace("something went wrong\nmore", None);
        assert_eq!(stack.platform, Platform::Other);
        assert_eq!(stack.exceptions[0].message, "something went wrong");
    }
}
