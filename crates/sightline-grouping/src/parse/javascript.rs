//! JavaScript `error.stack` in the three engine formats, plus Node's uncaught-error printing.
//!
//! ```text
//! TypeError: Cannot read properties of undefined (reading 'amount')     V8 (Node, Chrome, Edge)
//!     at Cart.total (/srv/shop/cart.js:13:23)
//!     at async reserve (/srv/shop/orders.js:13:21)
//!     at new WebhookEvent (/srv/shop/webhooks.js:9:25)
//!     at /srv/shop/cart.js:13:62
//!     at JSON.parse (<anonymous>)
//! formatPrice@https://cdn.acme.com/js/main.3f2a1b9c.js:14:3                SpiderMonkey (Firefox)
//! @https://cdn.acme.com/js/main.3f2a1b9c.js:26:3
//! map@[native code]                                                       JavaScriptCore (Safari)
//! ```
//! Node prints an uncaught error after the throwing source line and a caret, and an error's `cause`
//! inside an inspection block (`{ [cause]: SyntaxError: ... }`), replacing the frames the error shares with
//! its cause by `... N lines matching cause stack trace ...` (Node `lib/internal/util/inspect.js`
//! `getStackFrames`); those frames are restored from the cause. SpiderMonkey and JavaScriptCore stacks have
//! no `Type: message` header: the exception type stays empty unless a header line precedes the frames.

use std::sync::LazyLock;

use regex::Regex;

use crate::frame::{ParsedException, StackFrame, bounded_field};
use crate::parse::frame_lines::{V8Frame, v8_frame as v8_frame_line};
use crate::parse::{split_location, split_type_and_message};

/// SpiderMonkey / JavaScriptCore: `function@location` (function may be empty).
static GECKO_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?P<function>[^@\s]*(?: code)?)@(?P<location>\S.*?)\s*$").expect("gecko frame regex compiles")
});

static CAUSE_ELISION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*\.\.\. (?P<count>\d+) lines matching cause stack trace \.\.\.\s*$")
        .expect("cause elision regex compiles")
});

/// Whether the line is distinctive of a JavaScript stack (for format detection).
pub(super) fn is_signature_line(line: &str) -> bool {
    // V8: `at [async ][new ]function (location)` or `at location`.
    if let Some(frame_line) = v8_frame_line(line) {
        let location = match frame_line {
            V8Frame::Call { location, .. } | V8Frame::Bare(location) => location,
        };
        let (_, line_number, column) = split_location(location);
        // Java (`Foo.java:42`) and .NET (`in file:line 42`) frames also start with `at`; only JS has columns
        // or V8's pseudo-locations.
        return column.is_some() && line_number.is_some()
            || location == "<anonymous>"
            || location == "native"
            || location.starts_with("node:");
    }
    GECKO_FRAME.captures(line).is_some_and(|captures| {
        let location = &captures["location"];
        location == "[native code]" || split_location(location).2.is_some()
    })
}

/// A frame elision to undo once the cause has been read.
struct PendingElision {
    exception_index: usize,
    /// Position (in printed order, innermost first) of the first elided frame.
    insert_at: usize,
    count: usize,
}

/// Reads every error in the text; returns the chain top-level first (`[cause]` after its error).
pub(super) fn parse(lines: &[&str]) -> Vec<ParsedException> {
    // Frames are collected in printed order (innermost first) and reversed at the end.
    let mut exceptions: Vec<ParsedException> = Vec::new();
    let mut open_header: Option<ParsedException> = None;
    let mut header_line: &str = "";
    let mut inspection_depth = 0usize;
    let mut elisions: Vec<PendingElision> = Vec::new();
    let mut last_header_only: Option<ParsedException> = None;

    for raw_line in lines {
        let trimmed = raw_line.trim();
        // Node's inspection block (`{ [cause]: ..., code: ... }`) opens after the last frame. Cut at the
        // trimmed end: trailing whitespace may be multi-byte.
        let opens_inspection = trimmed.ends_with(" {");
        let line = if opens_inspection { &raw_line[..raw_line.trim_end().len() - 2] } else { raw_line };

        if let Some(frame) = parse_frame(line) {
            if let Some(header) = open_header.take() {
                exceptions.push(header);
            } else if exceptions.is_empty() {
                exceptions.push(ParsedException::new("", ""));
            }
            if let Some(exception) = exceptions.last_mut() {
                exception.frames.push(frame);
            }
            if opens_inspection {
                inspection_depth += 1;
            }
            continue;
        }
        if let Some(captures) = CAUSE_ELISION.captures(trimmed) {
            if let (Some(exception), Ok(count)) = (exceptions.last(), captures["count"].parse::<usize>()) {
                elisions.push(PendingElision {
                    exception_index: exceptions.len() - 1,
                    insert_at: exception.frames.len(),
                    count: count.min(crate::MAX_INPUT_LINES),
                });
            }
            continue;
        }
        if trimmed == "}" {
            inspection_depth = inspection_depth.saturating_sub(1);
            continue;
        }
        if let Some(cause) = trimmed.strip_prefix("[cause]: ") {
            if let Some((exception_type, message)) = header_parts(cause) {
                open_header = Some(ParsedException::new(exception_type, message));
                header_line = trimmed;
            }
            continue;
        }
        if inspection_depth > 0 {
            // Inspected own properties (`code: 'ERR_X'`) are not part of the trace.
            continue;
        }
        if trimmed.is_empty() {
            // Node's uncaught-error preamble (source line, caret) ends with a blank line.
            last_header_only = open_header.take().or(last_header_only);
            continue;
        }
        match open_header.as_mut() {
            Some(_) if trimmed == header_line => {}
            Some(header) => {
                header.message.push('\n');
                header.message.push_str(trimmed);
            }
            None => {
                if let Some((exception_type, message)) = header_parts(trimmed) {
                    open_header = Some(ParsedException::new(exception_type, message));
                    header_line = trimmed;
                }
            }
        }
    }
    if exceptions.is_empty() {
        exceptions.extend(open_header.or(last_header_only));
    }
    restore_elided_frames(&mut exceptions, &elisions);
    for exception in &mut exceptions {
        exception.frames.reverse();
    }
    exceptions
}

/// `TypeError: msg`, `Uncaught TypeError: msg` (browser consoles), `Error [ERR_X]: msg` (Node system
/// errors), or a bare `Error`.
fn header_parts(line: &str) -> Option<(String, String)> {
    let line = line.strip_prefix("Uncaught ").unwrap_or(line);
    let (head, message) = line.split_once(": ").unwrap_or((line, ""));
    let exception_type = match head.split_once(" [") {
        Some((name, code)) if code.ends_with(']') => name,
        _ => head,
    };
    let (exception_type, _) = split_type_and_message(exception_type)?;
    if message.is_empty() && !(exception_type.ends_with("Error") || exception_type.ends_with("Exception")) {
        return None;
    }
    Some((exception_type.to_owned(), message.to_owned()))
}

fn parse_frame(line: &str) -> Option<StackFrame> {
    if let Some(frame_line) = v8_frame_line(line) {
        let (function, location) = match frame_line {
            V8Frame::Call { function, location } => (Some(function), location),
            V8Frame::Bare(location) => (None, location),
        };
        // Prose such as "at least one item" is not a frame: a V8 location has a line number, is one of V8's
        // pseudo-locations, or (bare) is a single token.
        let has_line_number = split_location(location).1.is_some();
        let pseudo_location = matches!(location, "<anonymous>" | "native" | "unknown location")
            || location.starts_with("index ")
            || location.starts_with("eval at ");
        let single_token = function.is_none() && !location.contains(' ');
        return (has_line_number || pseudo_location || single_token).then(|| v8_frame(function, location));
    }
    let captures = GECKO_FRAME.captures(line)?;
    let location = &captures["location"];
    let (filename, lineno, colno) = split_location(location);
    if lineno.is_none() && filename != "[native code]" {
        return None;
    }
    let function = captures["function"].trim();
    Some(StackFrame {
        function: (!function.is_empty()).then(|| bounded_field(function)),
        filename: Some(bounded_field(filename)),
        lineno,
        colno,
        ..StackFrame::default()
    })
}

fn v8_frame(function: Option<&str>, location: &str) -> StackFrame {
    // `eval at fn (file:1:2), <anonymous>:1:1`: the evaluated code's own position comes last.
    let location = match location.strip_prefix("eval at ") {
        Some(eval) => eval.rsplit_once(", ").map_or(eval, |(_, position)| position),
        None => location,
    };
    let (filename, lineno, colno) = split_location(location);
    // `Promise.all (index 0)` / `(unknown location)` name no file.
    let filename = if filename.starts_with("index ") || filename == "unknown location" { "" } else { filename };
    let (function, filename) = match function {
        Some(function) => (Some(function), filename),
        // `at <anonymous>` / `at native` name a location-less anonymous frame; `at foo` (no location) a function.
        None if lineno.is_none() && !filename.contains('/') && !filename.starts_with('<') => (Some(filename), ""),
        None => (None, filename),
    };
    StackFrame {
        function: function.map(str::trim).filter(|function| !function.is_empty()).map(bounded_field),
        filename: (!filename.is_empty()).then(|| bounded_field(filename)),
        lineno,
        colno,
        ..StackFrame::default()
    }
}

/// Undoes Node's `... N lines matching cause stack trace ...`: the elided frames are the N frames that
/// follow, in the cause's stack, the frame printed just before the marker.
fn restore_elided_frames(exceptions: &mut [ParsedException], elisions: &[PendingElision]) {
    for elision in elisions.iter().rev() {
        let Some(cause) = exceptions.get(elision.exception_index + 1) else {
            continue;
        };
        let Some(anchor) =
            elision.insert_at.checked_sub(1).and_then(|index| exceptions[elision.exception_index].frames.get(index))
        else {
            continue;
        };
        let Some(anchor_in_cause) = cause.frames.iter().position(|frame| frame == anchor) else {
            continue;
        };
        let restored: Vec<StackFrame> =
            cause.frames.iter().skip(anchor_in_cause + 1).take(elision.count).cloned().collect();
        let frames = &mut exceptions[elision.exception_index].frames;
        let insert_at = elision.insert_at.min(frames.len());
        frames.splice(insert_at..insert_at, restored);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Vec<ParsedException> {
        parse(&text.lines().collect::<Vec<_>>())
    }

    #[test]
    fn reads_v8_frame_shapes() {
        let exceptions = parse_text(
            "Error [ERR_INVALID_ARG_TYPE]: bad arg\n    at new Order (/a.js:1:2)\n    at async Promise.all (index 0)\n    \
             at /b.js:3:4\n    at eval (eval at run (/c.js:1:1), <anonymous>:5:6)\n    at node:internal/main/run_main_module:28:49",
        );
        assert_eq!(exceptions[0].exception_type, "Error");
        let frames = &exceptions[0].frames;
        assert_eq!(frames.len(), 5);
        assert_eq!(frames[4].function.as_deref(), Some("new Order"));
        assert_eq!(frames[3].function.as_deref(), Some("Promise.all"));
        assert_eq!(frames[3].lineno, None);
        assert_eq!((frames[2].function.as_deref(), frames[2].lineno), (None, Some(3)));
        assert_eq!((frames[1].filename.as_deref(), frames[1].lineno), (Some("<anonymous>"), Some(5)));
        assert_eq!(frames[0].filename.as_deref(), Some("node:internal/main/run_main_module"));
    }

    #[test]
    fn opens_an_inspection_block_before_multibyte_whitespace() {
        let exceptions = parse_text("Error: x\n    at f (/a.js:1:1) {\u{3000}\n  code: 'E'\n}");
        assert_eq!(exceptions.len(), 1);
        assert_eq!(exceptions[0].frames.len(), 1);
    }

    #[test]
    fn skips_malformed_frames() {
        let exceptions = parse_text("TypeError: x\n    at \n@@@\nnonsense@\n    at f (/a.js:1:1)");
        assert_eq!(exceptions[0].frames.len(), 1);
    }
}
