//! CPython tracebacks (`traceback.py` / `PyErr_Display`), including chained exceptions.
//!
//! ```text
//! Traceback (most recent call last):
//!   File "/srv/app/payments.py", line 16, in charge
//!     call_gateway("10.2.3.4", amount_cents)
//!            ^^^^^^^^^^^^^^^
//! ConnectionError: gateway timed out
//!
//! The above exception was the direct cause of the following exception:
//!
//! Traceback (most recent call last):
//!   ...
//! PaymentDeclined: order 1042 could not be charged
//! ```
//! CPython prints the root cause first and the exception that reached the top last, innermost frame last;
//! the chain is reversed here so the top-level exception comes first.

use std::sync::LazyLock;

use regex::Regex;

use crate::frame::{ParsedException, StackFrame, bounded_field};
use crate::parse::frame_lines::python_frame;
use crate::parse::{parse_number, split_type_and_message};

/// The standard library directory (`lib/python3.11/`, Windows `Lib\`), after which a path names a module.
static STANDARD_LIBRARY_ROOT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[/\\])(?:lib[/\\]python\d+(?:\.\d+)?|Lib)[/\\]").expect("python library root regex compiles")
});

const TRACEBACK_HEADER: &str = "Traceback (most recent call last):";
const CHAIN_SEPARATORS: [&str; 2] = [
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
];

/// Whether the line is distinctive of a Python traceback (for format detection).
pub(super) fn is_signature_line(line: &str) -> bool {
    line.starts_with(TRACEBACK_HEADER) || python_frame(line).is_some()
}

#[derive(PartialEq)]
enum State {
    /// Outside a traceback: only a `Traceback` header matters.
    Outside,
    /// Inside frames: frame lines, their source lines and caret markers.
    Frames,
    /// After the `Type: message` line: further lines continue the message until a blank line.
    Message,
}

/// Reads every traceback in the text; returns the chain top-level first.
pub(super) fn parse(lines: &[&str]) -> Vec<ParsedException> {
    let mut printed_order: Vec<ParsedException> = Vec::new();
    let mut current: Option<ParsedException> = None;
    let mut state = State::Outside;
    let mut previous_was_frame = false;

    for line in lines {
        let trimmed = line.trim();
        if trimmed == TRACEBACK_HEADER {
            printed_order.extend(current.take());
            current = Some(ParsedException::new("", ""));
            state = State::Frames;
            previous_was_frame = false;
            continue;
        }
        if CHAIN_SEPARATORS.contains(&trimmed) {
            printed_order.extend(current.take());
            state = State::Outside;
            continue;
        }
        let Some(exception) = current.as_mut() else {
            continue;
        };
        match state {
            State::Outside => {}
            State::Frames => {
                if let Some(frame_line) = python_frame(line) {
                    let filename = frame_line.file;
                    exception.frames.push(StackFrame {
                        function: frame_line.function.map(|function| bounded_field(function.trim())),
                        module: remembered_module(filename),
                        filename: Some(bounded_field(filename)),
                        lineno: parse_number(frame_line.line),
                        ..StackFrame::default()
                    });
                    previous_was_frame = true;
                } else if is_source_or_marker_line(line) {
                    if previous_was_frame
                        && !is_caret_marker(trimmed)
                        && let Some(frame) = exception.frames.last_mut()
                    {
                        frame.context_line = Some(bounded_field(trimmed));
                    }
                    previous_was_frame = false;
                } else if let Some((exception_type, message)) = split_type_and_message(trimmed) {
                    exception.exception_type = exception_type.to_owned();
                    exception.message = message.to_owned();
                    state = State::Message;
                }
            }
            State::Message => {
                if trimmed.is_empty() {
                    state = State::Outside;
                } else {
                    exception.message.push('\n');
                    exception.message.push_str(line);
                }
            }
        }
    }
    printed_order.extend(current);
    printed_order.reverse();
    printed_order
}

/// Lines indented under a frame: the source line, `^^^^` / `~~~^^` markers, `[Previous line repeated N
/// more times]`. The exception line itself is never indented.
fn is_source_or_marker_line(line: &str) -> bool {
    line.starts_with(' ') || line.starts_with('\t')
}

fn is_caret_marker(trimmed: &str) -> bool {
    trimmed.chars().all(|character| matches!(character, '^' | '~' | ' '))
        || (trimmed.starts_with("[Previous line repeated") && trimmed.ends_with(']'))
}

/// Distinct file paths whose module name a thread remembers; beyond it the memory starts over.
const REMEMBERED_MODULES: usize = 4096;

thread_local! {
    /// A service's tracebacks name the same files over and over, and [`module_from_path`] runs
    /// a regular expression and joins the components for each (≈ 4 % of the prepare threads'
    /// time in `sightline bench errors`).
    static MODULES: std::cell::RefCell<std::collections::HashMap<String, Option<String>>> = Default::default();
}

/// [`module_from_path`], remembered per thread (it depends on the path alone).
fn remembered_module(path: &str) -> Option<String> {
    if let Some(module) = MODULES.with_borrow(|modules| modules.get(path).cloned()) {
        return module;
    }
    let module = module_from_path(path);
    MODULES.with_borrow_mut(|modules| {
        if modules.len() >= REMEMBERED_MODULES {
            modules.clear();
        }
        modules.insert(path.to_owned(), module.clone());
    });
    module
}

/// Python module name from a file path, the way `sys.modules` would name it:
/// `.../site-packages/requests/api.py` → `requests.api`, `.../lib/python3.11/json/decoder.py` →
/// `json.decoder`, `<frozen importlib._bootstrap>` → `importlib._bootstrap`. Application paths drop the
/// deployment prefix up to the last version-like directory (`/srv/releases/v1.2.3/shop/cart.py` →
/// `shop.cart`) so that releases group together; `None` for `<stdin>`, `<string>` and other pseudo-files.
pub(crate) fn module_from_path(path: &str) -> Option<String> {
    if let Some(frozen) = path.strip_prefix("<frozen ").and_then(|rest| rest.strip_suffix('>')) {
        return Some(frozen.to_owned());
    }
    if path.starts_with('<') || path.is_empty() {
        return None;
    }
    let relative = &path[library_root_end(path)..];
    let without_extension = [".py", ".pyc", ".pyw", ".pyx"]
        .iter()
        .find_map(|extension| relative.strip_suffix(extension))
        .unwrap_or(relative);
    let mut components: Vec<&str> = without_extension
        .split(['/', '\\'])
        .filter(|component| !component.is_empty() && *component != "." && !component.ends_with(':'))
        .collect();
    if let Some(last_volatile) = components.iter().rposition(|component| is_version_like(component)) {
        components.drain(..=last_volatile);
    }
    if components.len() > 1 && components.last() == Some(&"__init__") {
        components.pop();
    }
    if components.is_empty() {
        return None;
    }
    Some(bounded_field(&components.join(".")))
}

/// Where the module path starts: after the last `site-packages/` or `dist-packages/` (installed packages,
/// which live under the standard library directory), else after the standard library directory, else 0.
fn library_root_end(path: &str) -> usize {
    let package_root = ["site-packages", "dist-packages"]
        .iter()
        .filter_map(|marker| {
            path.rmatch_indices(marker)
                .map(|(start, _)| start + marker.len())
                .find(|end| path[*end..].starts_with(['/', '\\']))
        })
        .max();
    match package_root {
        Some(end) => end + 1,
        None => STANDARD_LIBRARY_ROOT.find_iter(path).last().map_or(0, |root| root.end()),
    }
}

/// A directory naming a release: starts with a digit (optionally after `v`) and has a digit, like
/// `v1.2.3`, `2024.06.1`, `20240601120000`, or is a 7+ character hex commit id.
fn is_version_like(component: &str) -> bool {
    let unprefixed = component.strip_prefix(['v', 'V']).unwrap_or(component);
    let starts_with_digit = unprefixed.chars().next().is_some_and(|character| character.is_ascii_digit());
    let hex_commit = component.len() >= 7
        && component.chars().all(|character| character.is_ascii_hexdigit())
        && component.chars().any(|character| character.is_ascii_digit());
    starts_with_digit || hex_commit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_modules_from_paths() {
        let cases = [
            ("/usr/lib/python3/dist-packages/requests/api.py", Some("requests.api")),
            (
                "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/jinja2/environment.py",
                Some("jinja2.environment"),
            ),
            ("/usr/local/lib/python3.12/json/decoder.py", Some("json.decoder")),
            ("/srv/releases/v1.2.3/shop/cart.py", Some("shop.cart")),
            ("/srv/releases/20240601/shop/__init__.py", Some("shop")),
            ("app/views.py", Some("app.views")),
            ("C:\\Python311\\Lib\\asyncio\\events.py", Some("asyncio.events")),
            ("<frozen importlib._bootstrap>", Some("importlib._bootstrap")),
            ("<stdin>", None),
        ];
        for (path, expected) in cases {
            assert_eq!(module_from_path(path).as_deref(), expected, "{path}");
            for _ in 0..2 {
                assert_eq!(remembered_module(path).as_deref(), expected, "remembered: {path}");
            }
        }
    }

    #[test]
    fn keeps_multiline_messages_and_skips_garbage() {
        let text = "noise\nTraceback (most recent call last):\n  File \"a.py\", line 1, in <module>\n    f()\n  \
                    garbage frame line\n  File \"a.py\", line x, in f\nValueError: first\nsecond line\n";
        let lines: Vec<&str> = text.lines().collect();
        let exceptions = parse(&lines);
        assert_eq!(exceptions.len(), 1);
        assert_eq!(exceptions[0].message, "first\nsecond line");
        assert_eq!(exceptions[0].frames.len(), 1);
        assert_eq!(exceptions[0].frames[0].context_line.as_deref(), Some("f()"));
    }
}
