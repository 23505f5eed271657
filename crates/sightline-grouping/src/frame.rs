//! Parsed stack traces: frames, exceptions and exception chains, and the size bounds every parser keeps.

use serde::{Deserialize, Serialize};

use crate::platform::Platform;

/// Lines of input read at most; the rest of the text is ignored. Bounds parse time and memory for
/// hostile or runaway input (a 1,000,000-line trace parses as its first 10,000 lines).
pub const MAX_INPUT_LINES: usize = 10_000;

/// Frames kept per exception. Sentry's event normalization ("Data Handling", `trim_stacktraces`) keeps
/// the innermost and outermost halves and drops the middle, where deep recursion usually repeats.
pub const MAX_FRAMES_PER_EXCEPTION: usize = 250;

/// Bytes of exception message kept (8 KiB, Sentry's `max_string_length` for exception values); longer
/// messages are cut at a UTF-8 character boundary.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// Bytes kept of each frame text field (function, module, filename, context line); longer values are
/// cut at a UTF-8 character boundary.
pub const MAX_FIELD_BYTES: usize = 1024;

/// One stack frame, as Sentry's `Frame` interface models it. Every field is optional except `in_app`
/// because runtimes print different subsets; absent fields are left out of the JSON, as Sentry's
/// event payloads do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StackFrame {
    /// Function or method name as printed, without argument lists (Go `(*T).Method`, Java `method`,
    /// Rust `reserve::{{closure}}`, JS `Cart.total`); `None` for anonymous/top-level code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Where the function lives: Python module (`json.decoder`), JVM class (`com.acme.Foo`), Go package
    /// path (`github.com/acme/app/pkg`), Rust path (`shop::Inventory`), .NET type (`Acme.Orders.OrderService`).
    /// JavaScript frames have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// File as printed: a path (`/srv/app/x.py`), a URL (`https://cdn/x.js`) or a bare name (`Foo.java`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// 1-based line number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineno: Option<u32>,
    /// 1-based column number (JavaScript, Rust).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colno: Option<u32>,
    /// Whether the frame is application code (see [`crate::InAppRules`]).
    pub in_app: bool,
    /// The source line Python prints under the frame, trimmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_line: Option<String>,
}

/// One exception of a chain: its type, message and frames ordered OUTERMOST first, innermost (the crash
/// site) last, as in Sentry's `stacktrace.frames`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedException {
    /// Type as printed (`ValueError`, `json.decoder.JSONDecodeError`, `java.lang.IllegalStateException`,
    /// `TypeError`); empty when the text does not name it (Firefox/Safari `error.stack` has no header:
    /// take `exception.type` from the OTel attributes then). Go panics use `panic` (`runtime.Error` for
    /// runtime errors, `fatal error` for fatal errors, `error` for `debug.Stack()` dumps); Rust panics use
    /// `panic` and `anyhow`/`eyre` reports `Error`.
    pub exception_type: String,
    /// Message as printed (may span lines), at most [`MAX_MESSAGE_BYTES`].
    pub message: String,
    /// Frames, outermost first, at most [`MAX_FRAMES_PER_EXCEPTION`].
    pub frames: Vec<StackFrame>,
}

/// A parsed trace: the platform whose parser read it and the exception chain, top-level exception first,
/// then its causes (Java `Caused by:`, Python `raise ... from` / "During handling", .NET `--->` inner
/// exceptions, JS `[cause]:`), the order Sentry's UI shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedStack {
    /// Format the text was read as (the hint, or the detected format).
    pub platform: Platform,
    /// Never empty: text with no recognizable exception gives one exception with no frames.
    pub exceptions: Vec<ParsedException>,
}

impl ParsedException {
    /// An exception with no frames.
    pub fn new(exception_type: impl Into<String>, message: impl Into<String>) -> ParsedException {
        ParsedException { exception_type: exception_type.into(), message: message.into(), frames: Vec::new() }
    }
}

impl ParsedStack {
    /// The top-level exception (the one thrown last, `exceptions[0]`).
    pub fn top_level(&self) -> Option<&ParsedException> {
        self.exceptions.first()
    }

    /// The root cause (the exception thrown first, the last of the chain).
    pub fn root_cause(&self) -> Option<&ParsedException> {
        self.exceptions.last()
    }
}

/// Cuts `text` to at most `max_bytes` bytes at a character boundary.
pub(crate) fn truncate_to_boundary(text: &mut String, max_bytes: usize) {
    if text.len() <= max_bytes {
        return;
    }
    let mut cut = max_bytes;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
}

/// A string field of a frame, cut to [`MAX_FIELD_BYTES`].
pub(crate) fn bounded_field(text: &str) -> String {
    let mut owned = text.to_owned();
    truncate_to_boundary(&mut owned, MAX_FIELD_BYTES);
    owned
}

/// Keeps the outermost and innermost halves of an over-long frame list (Sentry trims the middle).
pub(crate) fn trim_middle_frames(frames: &mut Vec<StackFrame>) {
    if frames.len() <= MAX_FRAMES_PER_EXCEPTION {
        return;
    }
    let keep_each_end = MAX_FRAMES_PER_EXCEPTION / 2;
    let innermost_start = frames.len() - keep_each_end;
    frames.drain(keep_each_end..innermost_start);
}

/// Applies the message and frame bounds to every exception.
pub(crate) fn enforce_bounds(exceptions: &mut [ParsedException]) {
    for exception in exceptions {
        truncate_to_boundary(&mut exception.message, MAX_MESSAGE_BYTES);
        truncate_to_boundary(&mut exception.exception_type, MAX_FIELD_BYTES);
        trim_middle_frames(&mut exception.frames);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered_frames(count: usize) -> Vec<StackFrame> {
        (0..count).map(|index| StackFrame { lineno: Some(index as u32), ..StackFrame::default() }).collect()
    }

    #[test]
    fn trims_the_middle_keeping_both_ends() {
        let mut frames = numbered_frames(1000);
        trim_middle_frames(&mut frames);
        assert_eq!(frames.len(), MAX_FRAMES_PER_EXCEPTION);
        assert_eq!(frames[0].lineno, Some(0));
        assert_eq!(frames[124].lineno, Some(124));
        assert_eq!(frames[125].lineno, Some(875));
        assert_eq!(frames[249].lineno, Some(999));
    }

    #[test]
    fn truncates_on_a_character_boundary() {
        let mut text = "é".repeat(10);
        truncate_to_boundary(&mut text, 5);
        assert_eq!(text, "éé");
    }
}
