//! Hand-written matchers for the three most frequent frame lines (CPython, JVM, V8). Each does
//! exactly what its regular expression (kept in the tests as the specification) matches, in one
//! forward pass: the regex crate answers these capture-group patterns with its bounded
//! backtracker, which was 16 % of all CPU preparing error events (BENCHMARKS.md).
//! Each takes one line (callers split the trace on `\n`); `\s` keeps its regex meaning (Unicode
//! whitespace) and digits are ASCII, as the runtimes print them.

/// `^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<function>.+))?\s*$` (CPython).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PythonFrame<'a> {
    /// `file`.
    pub(super) file: &'a str,
    /// `line`: ASCII digits.
    pub(super) line: &'a str,
    /// `function`, untrimmed (it may end with whitespace).
    pub(super) function: Option<&'a str>,
}

/// Matches a CPython frame line.
pub(super) fn python_frame(text: &str) -> Option<PythonFrame<'_>> {
    let rest = text.trim_start().strip_prefix("File \"")?;
    let quote = rest.find('"')?;
    let file = &rest[..quote];
    let rest = rest[quote + 1..].strip_prefix(", line ")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let line = &rest[..digits];
    let rest = &rest[digits..];
    if let Some(function) = rest.strip_prefix(", in ")
        && !function.is_empty()
    {
        // `.+` is greedy and `\s*$` then matches nothing: the function keeps trailing spaces.
        return Some(PythonFrame { file, line, function: Some(function) });
    }
    rest.trim_end().is_empty().then_some(PythonFrame { file, line, function: None })
}

/// `^\s*at (?:[^\s(]*/)?(?P<qualified>[^\s(/]+)\((?P<location>[^)]*)\)(?:\s+~?\[[^\]]*\])?\s*$`
/// (JVM `printStackTrace`): returns (`qualified`, `location`).
pub(super) fn java_frame(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim_start().strip_prefix("at ")?;
    let open = rest.find('(')?;
    let token = &rest[..open];
    if token.chars().any(char::is_whitespace) {
        return None;
    }
    let qualified = token.rsplit_once('/').map_or(token, |(_, after)| after);
    if qualified.is_empty() {
        return None;
    }
    let after_open = &rest[open + 1..];
    let close = after_open.find(')')?;
    let location = &after_open[..close];
    let tail = &after_open[close + 1..];
    if tail.trim_end().is_empty() {
        return Some((qualified, location));
    }
    // ` ~[jar:version]` / ` [jar:version]` after at least one whitespace.
    let jar = tail.trim_start();
    if jar.len() == tail.len() {
        return None;
    }
    let jar = jar.strip_prefix('~').unwrap_or(jar).strip_prefix('[')?;
    let close = jar.find(']')?;
    jar[close + 1..].trim_end().is_empty().then_some((qualified, location))
}

/// What a V8 frame line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum V8Frame<'a> {
    /// `at function (location)`.
    Call {
        /// `function` (may be empty).
        function: &'a str,
        /// `location`.
        location: &'a str,
    },
    /// `at location`.
    Bare(&'a str),
}

/// `^\s*at (?:async )?(?:(?P<function>.*?) \((?P<location>.*)\)|(?P<bare>\S.*?))\s*$` (V8).
pub(super) fn v8_frame(text: &str) -> Option<V8Frame<'_>> {
    let rest = text.trim_start().strip_prefix("at ")?;
    // The optional `async ` is tried first; the regex backtracks to reading it as text.
    rest.strip_prefix("async ").and_then(v8_frame_body).or_else(|| v8_frame_body(rest))
}

fn v8_frame_body(rest: &str) -> Option<V8Frame<'_>> {
    let trimmed = rest.trim_end();
    // `(.*?) \((.*)\)\s*$`: the first ` (` that has a `)` after it, closing at the last `)`.
    if trimmed.ends_with(')')
        && let Some(open) = trimmed.find(" (")
        && open + 2 < trimmed.len()
    {
        return Some(V8Frame::Call { function: &trimmed[..open], location: &trimmed[open + 2..trimmed.len() - 1] });
    }
    // `\S.*?\s*$`: everything up to the trailing whitespace, starting with a non-space.
    let first = trimmed.chars().next()?;
    (!first.is_whitespace()).then_some(V8Frame::Bare(trimmed))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use regex::Regex;

    use super::*;

    fn python_regex(text: &str) -> Option<PythonFrame<'_>> {
        let regex = Regex::new(r#"^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<function>.+))?\s*$"#)
            .expect("compiles");
        let captures = regex.captures(text)?;
        let line = captures.name("line")?.as_str();
        // The matcher reads ASCII digits only; other Unicode digits are outside its contract.
        if !line.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        Some(PythonFrame {
            file: captures.name("file")?.as_str(),
            line,
            function: captures.name("function").map(|function| function.as_str()),
        })
    }

    fn java_regex(text: &str) -> Option<(&str, &str)> {
        let regex =
            Regex::new(r"^\s*at (?:[^\s(]*/)?(?P<qualified>[^\s(/]+)\((?P<location>[^)]*)\)(?:\s+~?\[[^\]]*\])?\s*$")
                .expect("compiles");
        let captures = regex.captures(text)?;
        Some((captures.name("qualified")?.as_str(), captures.name("location")?.as_str()))
    }

    fn v8_regex(text: &str) -> Option<V8Frame<'_>> {
        let regex = Regex::new(r"^\s*at (?:async )?(?:(?P<function>.*?) \((?P<location>.*)\)|(?P<bare>\S.*?))\s*$")
            .expect("compiles");
        let captures = regex.captures(text)?;
        match (captures.name("function"), captures.name("location"), captures.name("bare")) {
            (Some(function), Some(location), _) => {
                Some(V8Frame::Call { function: function.as_str(), location: location.as_str() })
            }
            (_, _, Some(bare)) => Some(V8Frame::Bare(bare.as_str())),
            _ => None,
        }
    }

    /// Lines made of the pieces these formats are built from, so that near-misses are common.
    fn line() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("File \"".to_owned()),
            Just("\", line ".to_owned()),
            Just(", in ".to_owned()),
            Just("at ".to_owned()),
            Just("async ".to_owned()),
            Just(" (".to_owned()),
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just("/".to_owned()),
            Just("~[".to_owned()),
            Just("]".to_owned()),
            Just("\"".to_owned()),
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just("\u{a0}".to_owned()),
            "[0-9]{1,4}",
            "[a-zA-Z_.:$<>@-]{1,8}",
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    /// Lines shaped like real frames with random parts, so that matches are common too.
    fn frame_like() -> impl Strategy<Value = String> {
        let text = "[a-zA-Z0-9_.:/$<>@() \\[\\]~\"-]{0,12}";
        let space = "[ \t]{0,2}";
        (space, prop_oneof![Just("File \""), Just("at "), Just("at async ")], text, text, "[0-9]{0,3}", text, space)
            .prop_map(|(lead, start, first, second, digits, third, trail)| match start {
                "File \"" => format!("{lead}{start}{first}\", line {digits}{second}{third}{trail}"),
                _ => format!("{lead}{start}{first} ({second}){third}{trail}"),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn matchers_equal_their_regexes_on_frame_like_lines(text in frame_like()) {
            prop_assert_eq!(python_frame(&text), python_regex(&text), "{:?}", text);
            prop_assert_eq!(java_frame(&text), java_regex(&text), "{:?}", text);
            prop_assert_eq!(v8_frame(&text), v8_regex(&text), "{:?}", text);
        }

        #[test]
        fn python_matcher_equals_its_regex(text in line()) {
            prop_assert_eq!(python_frame(&text), python_regex(&text), "{:?}", text);
        }

        #[test]
        fn java_matcher_equals_its_regex(text in line()) {
            prop_assert_eq!(java_frame(&text), java_regex(&text), "{:?}", text);
        }

        #[test]
        fn v8_matcher_equals_its_regex(text in line()) {
            prop_assert_eq!(v8_frame(&text), v8_regex(&text), "{:?}", text);
        }
    }

    #[test]
    fn real_lines() {
        let python = python_frame(r#"  File "/srv/app/shop/cart.py", line 42, in total"#).expect("a frame");
        assert_eq!((python.file, python.line, python.function), ("/srv/app/shop/cart.py", "42", Some("total")));
        assert_eq!(
            java_frame("\tat java.base/java.util.HashMap.get(HashMap.java:556) ~[na:na]"),
            Some(("java.util.HashMap.get", "HashMap.java:556"))
        );
        assert_eq!(
            v8_frame("    at async Cart.total (/srv/app/cart.js:10:5)"),
            Some(V8Frame::Call { function: "Cart.total", location: "/srv/app/cart.js:10:5" })
        );
        assert_eq!(v8_frame("    at node:internal/main:12:3"), Some(V8Frame::Bare("node:internal/main:12:3")));
    }
}
