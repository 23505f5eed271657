//! Go panics and `runtime/debug.Stack()` dumps (`runtime/traceback.go`).
//!
//! ```text
//! panic: runtime error: index out of range [5] with length 3
//!
//! goroutine 6 [running]:
//! main.(*Inventory).Reserve(...)
//!     /srv/shop/inventory/main.go:19
//! github.com/acme/shop/orders.First[...]({0xc000036740?, 0x2?}, 0x52f510?)
//!     /srv/shop/orders/orders.go:35 +0xdc
//! created by main.main in goroutine 1
//!     /srv/shop/inventory/main.go:27 +0xed
//! ```
//! Only the first goroutine is read: with `GOTRACEBACK=all` the others are bystanders. A `created by`
//! line is the outermost frame (the `go` statement). Addresses and argument words are dropped.

use std::sync::LazyLock;

use regex::Regex;

use crate::frame::{ParsedException, StackFrame, bounded_field};
use crate::parse::parse_number;

static GOROUTINE_HEADER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^goroutine \d+ (?:[^\[]* )?\[[^\]]*\]:\s*$").expect("goroutine regex compiles"));

/// `\t/path/file.go:42 +0x1d` (the offset is absent for inlined frames).
static LOCATION_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s+(?P<file>\S.*?):(?P<line>\d+)(?: \+0x[0-9a-fA-F]+)?(?: fp=0x[0-9a-f]+ sp=0x[0-9a-f]+ pc=0x[0-9a-f]+)?\s*$")
        .expect("go location regex compiles")
});

/// Whether the line is distinctive of a Go trace (for format detection).
pub(super) fn is_signature_line(line: &str) -> bool {
    GOROUTINE_HEADER.is_match(line)
        || line.starts_with("panic: ")
        || line.starts_with("created by ")
        || (line.starts_with('\t')
            && LOCATION_LINE.captures(line).is_some_and(|captures| captures["file"].ends_with(".go")))
}

/// Reads the panic (or dumped error) and the first goroutine's frames.
pub(super) fn parse(lines: &[&str]) -> Vec<ParsedException> {
    let mut exception: Option<ParsedException> = None;
    let mut last_text_line: Option<&str> = None;
    let mut in_goroutine = false;
    let mut pending_function: Option<(Option<String>, String)> = None;
    // Printed innermost first; reversed at the end.
    let mut frames: Vec<StackFrame> = Vec::new();

    for line in lines {
        let trimmed = line.trim();
        if GOROUTINE_HEADER.is_match(trimmed) {
            if in_goroutine {
                break;
            }
            in_goroutine = true;
            if exception.is_none() {
                // `debug.Stack()` printed after a log line, no panic header: that line is the message.
                exception = Some(ParsedException::new("error", last_text_line.unwrap_or("").trim()));
            }
            continue;
        }
        if !in_goroutine {
            if let Some(panic_message) = line.strip_prefix("panic: ") {
                if exception.is_none() {
                    exception = Some(panic_exception(panic_message));
                }
            } else if let Some(fatal_message) = line.strip_prefix("fatal error: ") {
                exception = Some(ParsedException::new("fatal error", fatal_message.trim()));
            } else if !trimmed.is_empty() && !trimmed.starts_with("[signal ") && !trimmed.starts_with("panic: ") {
                last_text_line = Some(trimmed);
            }
            continue;
        }
        if let Some(captures) = LOCATION_LINE.captures(line) {
            if let Some((module, function)) = pending_function.take() {
                frames.push(StackFrame {
                    function: Some(function),
                    module,
                    filename: Some(bounded_field(&captures["file"])),
                    lineno: parse_number(&captures["line"]),
                    ..StackFrame::default()
                });
            }
            continue;
        }
        if line.starts_with(char::is_whitespace) || trimmed.is_empty() {
            continue;
        }
        let call = trimmed
            .strip_prefix("created by ")
            .map_or(trimmed, |creator| creator.split_once(" in goroutine ").map_or(creator, |(function, _)| function));
        pending_function = split_qualified_name(strip_arguments(call))
            .map(|(module, function)| (module.as_deref().map(bounded_field), bounded_field(function)));
    }
    let Some(mut exception) = exception else {
        return Vec::new();
    };
    frames.reverse();
    exception.frames = frames;
    vec![exception]
}

/// `panic: runtime error: ...` is a `runtime.Error`; other values are the panic's printed value. The
/// `[recovered]` marker (a re-panic after `recover`, as `testing` does) is dropped.
fn panic_exception(panic_message: &str) -> ParsedException {
    let message = panic_message.trim().strip_suffix(" [recovered]").unwrap_or(panic_message.trim());
    let message = message.strip_suffix(" [recovered, repanicked]").unwrap_or(message);
    if message.starts_with("runtime error: ") {
        ParsedException::new("runtime.Error", message)
    } else {
        ParsedException::new("panic", message)
    }
}

/// Drops a trailing argument list `(0xc000010000, {0x1, 0x2})` or `(...)`.
fn strip_arguments(call: &str) -> &str {
    if !call.ends_with(')') {
        return call;
    }
    let mut depth = 0usize;
    for (index, character) in call.char_indices().rev() {
        match character {
            ')' => depth += 1,
            '(' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &call[..index];
                }
            }
            _ => {}
        }
    }
    call
}

/// Splits a Go symbol into package path and function: the package ends at the first `.` after the last
/// `/` (dots in the last path element are escaped as `%2e` in symbols). `panic` is the runtime's.
/// `github.com/acme/app/pkg.(*T).Method` → (`github.com/acme/app/pkg`, `(*T).Method`).
pub(crate) fn split_qualified_name(symbol: &str) -> Option<(Option<String>, &str)> {
    if symbol.is_empty() || symbol.contains(char::is_whitespace) {
        return None;
    }
    let name_part_end = symbol.find(['[', '(']).unwrap_or(symbol.len());
    let last_slash = symbol[..name_part_end].rfind('/').map_or(0, |index| index + 1);
    match symbol[last_slash..].find('.') {
        Some(dot) => {
            let package = &symbol[..last_slash + dot];
            Some((Some(package.replace("%2e", ".")), &symbol[last_slash + dot + 1..]))
        }
        None if symbol == "panic" => Some((Some("runtime".to_owned()), symbol)),
        None => Some((None, symbol)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_qualified_names() {
        assert_eq!(
            split_qualified_name("github.com/acme/app/pkg.(*T).Method"),
            Some((Some("github.com/acme/app/pkg".to_owned()), "(*T).Method"))
        );
        assert_eq!(
            split_qualified_name("gopkg.in/yaml%2ev3.(*decoder).unmarshal"),
            Some((Some("gopkg.in/yaml.v3".to_owned()), "(*decoder).unmarshal"))
        );
        assert_eq!(split_qualified_name("main.main.func1"), Some((Some("main".to_owned()), "main.func1")));
        assert_eq!(
            split_qualified_name("example.com/x.Map[...]"),
            Some((Some("example.com/x".to_owned()), "Map[...]"))
        );
        assert_eq!(split_qualified_name("panic"), Some((Some("runtime".to_owned()), "panic")));
    }

    #[test]
    fn strips_argument_lists() {
        assert_eq!(strip_arguments("main.(*T).M(0xc0000, {0x1, 0x2})"), "main.(*T).M");
        assert_eq!(strip_arguments("main.f(...)"), "main.f");
        assert_eq!(strip_arguments("main.g"), "main.g");
    }

    #[test]
    fn reads_fatal_errors_and_skips_other_goroutines() {
        let text = "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\nmain.main()\n\
                    \t/app/main.go:7 +0x2d\nexit status 2\n\ngoroutine 2 [sleep]:\nmain.other()\n\t/app/main.go:9\n";
        let exceptions = parse(&text.lines().collect::<Vec<_>>());
        assert_eq!(exceptions[0].exception_type, "fatal error");
        assert_eq!(exceptions[0].frames.len(), 1);
        assert_eq!(exceptions[0].frames[0].lineno, Some(7));
    }
}
