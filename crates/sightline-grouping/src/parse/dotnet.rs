//! .NET `Exception.ToString()` and unhandled-exception output, CoreCLR and Mono formats.
//!
//! ```text
//! Unhandled exception. System.InvalidOperationException: order 1042 has an invalid quantity
//!  ---> System.FormatException: The input string '12 boxes' was not in a correct format.
//!    at System.Int32.Parse(String s)
//!    at Acme.Orders.OrderRepository.LoadQuantity(String raw) in /src/Program.cs:line 16
//!    --- End of inner exception stack trace ---
//!    at Acme.Orders.OrderService.PlaceAsync(Int32 orderId) in /src/Program.cs:line 33
//! --- End of stack trace from previous location ---
//!    at Acme.Orders.Program.<Main>d__0.MoveNext() in /src/Program.cs:line 42
//!   at Acme.Orders.OrderRepository.LoadQuantity (System.String raw) [0x00002] in /src/Program.cs:16   (Mono)
//! ```
//! The header names the outer exception and, after `--->`, each inner exception; the frames are printed
//! innermost exception first, blocks separated by `--- End of inner exception stack trace ---`
//! (`Exception.ToString` in dotnet/runtime `Exception.cs`). Async state machines
//! (`<PlaceAsync>d__5.MoveNext`) are named after their method, as CoreCLR's own `StackTrace` and Sentry's
//! .NET SDK (enhanced stack traces) show them.

use std::sync::LazyLock;

use regex::Regex;

use crate::frame::{ParsedException, StackFrame, bounded_field};
use crate::parse::{parse_number, split_type_and_message};

/// `at Method(params)[ [0xIL]][ in file:line N]` (CoreCLR) or `at Method (params) [0xIL] in file:N` (Mono).
static FRAME_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*at (?:\(wrapper [^)]*\) )?(?P<method>[^\s(][^(]*?) ?\((?P<params>[^)]*)\)(?: \[0x[0-9a-fA-F]+\])?(?: <0x[0-9a-fA-F]+(?: \+ 0x[0-9a-fA-F]+)?>)?(?: in (?P<file>.+?):(?:line )?(?P<line>\d+))?\s*$",
    )
    .expect("dotnet frame regex compiles")
});

static ASYNC_STATE_MACHINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<type>.*)[.+]<(?P<method>[^>]+)>d__\d+$").expect("async state machine regex compiles")
});

const END_OF_INNER: &str = "--- End of inner exception stack trace ---";

/// Whether the line is distinctive of a .NET trace (for format detection).
pub(super) fn is_signature_line(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed == END_OF_INNER
        || trimmed.starts_with("--- End of stack trace from previous location")
        || trimmed.starts_with("Unhandled exception. ")
        || FRAME_LINE.captures(line).is_some_and(|captures| {
            let params = &captures["params"];
            captures.name("file").is_some_and(|_| line.contains(":line ") || line.contains("] in "))
                || params.starts_with("System.")
                || ["Int32 ", "String ", "Object ", "Boolean "].iter().any(|type_name| params.contains(type_name))
        })
}

/// Reads the first exception group: outer exception first, then its inner exceptions.
pub(super) fn parse(lines: &[&str]) -> Vec<ParsedException> {
    let mut header_text: Option<String> = None;
    let mut chain: Vec<ParsedException> = Vec::new();
    let mut block = 0usize;

    for line in lines {
        let trimmed = line.trim();
        if trimmed.starts_with("[ERROR] FATAL UNHANDLED EXCEPTION:") || trimmed.starts_with("---> (Inner Exception #") {
            // Mono repeats the whole trace after this marker; AggregateException lists its inner ones again.
            break;
        }
        if let Some(frame) = parse_frame(line) {
            if chain.is_empty() {
                chain = split_header(header_text.take().as_deref().unwrap_or(""));
            }
            let target = chain.len().saturating_sub(1).saturating_sub(block);
            if let Some(exception) = chain.get_mut(target) {
                exception.frames.push(frame);
            }
            continue;
        }
        if trimmed == END_OF_INNER {
            block += 1;
            continue;
        }
        if trimmed.starts_with("--- End of stack trace from previous location") || trimmed.is_empty() {
            continue;
        }
        if !chain.is_empty() {
            // A new header after frames: a second trace; the first one is the exception.
            if header_parts(strip_unhandled_prefix(trimmed)).is_some() {
                break;
            }
            continue;
        }
        match header_text.as_mut() {
            Some(text) => {
                text.push('\n');
                text.push_str(trimmed);
            }
            None => {
                let candidate = strip_unhandled_prefix(trimmed);
                if header_parts(candidate.split("--->").next().unwrap_or(candidate).trim()).is_some() {
                    header_text = Some(candidate.to_owned());
                }
            }
        }
    }
    if chain.is_empty()
        && let Some(text) = header_text
    {
        chain = split_header(&text);
    }
    for exception in &mut chain {
        exception.frames.reverse();
    }
    chain
}

fn strip_unhandled_prefix(line: &str) -> &str {
    ["Unhandled exception. ", "Unhandled Exception: ", "Unhandled Exception:"]
        .iter()
        .find_map(|prefix| line.strip_prefix(prefix))
        .unwrap_or(line)
        .trim()
}

/// `Outer: msg ---> Inner: msg2 ---> Innermost: msg3` → one exception per part, outer first.
fn split_header(text: &str) -> Vec<ParsedException> {
    let mut chain: Vec<ParsedException> = Vec::new();
    for part in text.split("--->") {
        let part = part.trim();
        match header_parts(part) {
            Some((exception_type, message)) => chain.push(ParsedException::new(exception_type, message)),
            None => {
                if let Some(exception) = chain.last_mut() {
                    exception.message.push_str(" ---> ");
                    exception.message.push_str(part);
                }
            }
        }
    }
    if chain.is_empty() {
        chain.push(ParsedException::new("", ""));
    }
    chain
}

/// `Namespace.TypeException: message`; the type must be namespace-qualified or end in `Exception`.
fn header_parts(line: &str) -> Option<(String, String)> {
    let (exception_type, message) = split_type_and_message(line)?;
    (exception_type.contains('.') || exception_type.ends_with("Exception"))
        .then(|| (exception_type.to_owned(), message.trim_end().to_owned()))
}

fn parse_frame(line: &str) -> Option<StackFrame> {
    let captures = FRAME_LINE.captures(line)?;
    let method = captures["method"].trim();
    let (module, function) = split_method(method)?;
    let (module, function) = demystify_async(module, function);
    // Mono prints `<mvid>:0` for assemblies without debug symbols.
    let (filename, lineno) = match captures.name("file") {
        Some(file) if !file.as_str().starts_with('<') => (Some(file.as_str()), parse_number(&captures["line"])),
        _ => (None, None),
    };
    Some(StackFrame {
        function: Some(bounded_field(&function)),
        module: module.map(|module| bounded_field(&module)),
        filename: filename.map(bounded_field),
        lineno,
        ..StackFrame::default()
    })
}

/// Splits `Namespace.Type.Method[T]` at the last `.` outside `[...]` / `<...>`; constructors keep their
/// dot (`Acme.Order..ctor` → (`Acme.Order`, `.ctor`)).
fn split_method(method: &str) -> Option<(Option<&str>, &str)> {
    for constructor in ["..ctor", "..cctor"] {
        if let Some(type_name) = method.strip_suffix(constructor) {
            return Some((Some(type_name), &constructor[1..]));
        }
    }
    let mut depth = 0i32;
    let mut split_at = None;
    for (index, character) in method.char_indices() {
        match character {
            '[' | '<' => depth += 1,
            ']' | '>' => depth -= 1,
            '.' if depth == 0 => split_at = Some(index),
            _ => {}
        }
    }
    match split_at {
        Some(index) if index + 1 < method.len() => Some((Some(&method[..index]), &method[index + 1..])),
        Some(_) => None,
        None => Some((None, method)),
    }
}

fn demystify_async(module: Option<&str>, function: &str) -> (Option<String>, String) {
    if function == "MoveNext"
        && let Some(captures) = module.and_then(|module| ASYNC_STATE_MACHINE.captures(module))
    {
        return (Some(captures["type"].to_owned()), captures["method"].to_owned());
    }
    (module.map(str::to_owned), function.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_methods() {
        assert_eq!(
            split_method("System.Number.ThrowFormatException[TChar]"),
            Some((Some("System.Number"), "ThrowFormatException[TChar]"))
        );
        assert_eq!(split_method("Acme.Order..ctor"), Some((Some("Acme.Order"), ".ctor")));
        assert_eq!(split_method("Main"), Some((None, "Main")));
    }

    #[test]
    fn names_async_state_machines_after_their_method() {
        let frame =
            parse_frame("   at Acme.Orders.Program.<Main>d__0.MoveNext() in /src/Program.cs:line 42").expect("frame");
        assert_eq!(frame.module.as_deref(), Some("Acme.Orders.Program"));
        assert_eq!(frame.function.as_deref(), Some("Main"));
        let mono =
            parse_frame("  at Acme.Orders.OrderService+<PlaceAsync>d__1.MoveNext () [0x000a1] in /src/Program.cs:20 ")
                .expect("frame");
        assert_eq!(mono.module.as_deref(), Some("Acme.Orders.OrderService"));
        assert_eq!((mono.function.as_deref(), mono.lineno), (Some("PlaceAsync"), Some(20)));
    }

    #[test]
    fn reads_a_header_without_frames() {
        let exceptions = parse(&["System.Exception: boom ---> System.IO.IOException: disk"]);
        assert_eq!(exceptions.len(), 2);
        assert_eq!(exceptions[1].exception_type, "System.IO.IOException");
    }
}
