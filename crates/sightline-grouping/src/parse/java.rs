//! JVM traces as `Throwable.printStackTrace` prints them (Java, Kotlin, Scala; also logback/log4j output).
//!
//! ```text
//! Exception in thread "main" java.lang.RuntimeException: checkout failed for order 1042
//!     at com.acme.shop.CheckoutFailure.placeOrder(CheckoutFailure.java:38)
//! Caused by: java.lang.NumberFormatException: For input string: "12 boxes"
//!     at java.base/java.lang.Integer.parseInt(Integer.java:668)
//!     at com.acme.shop.CheckoutFailure.reserve(CheckoutFailure.java:28)
//!     ... 2 more
//!     Suppressed: java.lang.IllegalStateException: lock 42 was already released
//!         at com.acme.shop.CheckoutFailure$InventoryLock.close(CheckoutFailure.java:14)
//! ```
//! `... N more` means "the last N frames are those of the enclosing trace" (`Throwable.printEnclosedStackTrace`);
//! they are restored so that each exception carries its full stack, as Sentry's Java SDK sends it.
//! `Suppressed:` blocks (try-with-resources) are not causes and are skipped with their nested lines.

use std::sync::LazyLock;

use regex::Regex;

use crate::frame::{ParsedException, StackFrame, bounded_field};
use crate::parse::frame_lines::java_frame;
use crate::parse::{indent_width, parse_number, split_type_and_message};

static MORE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*\.\.\. (?P<count>\d+) (?:more|common frames omitted)\s*$").expect("more regex compiles")
});

/// Whether the line is distinctive of a JVM trace (for format detection).
pub(super) fn is_signature_line(line: &str) -> bool {
    let trimmed = line.trim_start();
    if trimmed.starts_with("Caused by: ") || trimmed.starts_with("Exception in thread \"") {
        return true;
    }
    java_frame(line).is_some_and(|(_, location)| {
        location == "Native Method"
            || location == "Unknown Source"
            || location.contains(".java:")
            || location.contains(".kt:")
            || location.contains(".scala:")
    })
}

/// Reads the top-level exception and its `Caused by:` chain, in printed order (top-level first).
pub(super) fn parse(lines: &[&str]) -> Vec<ParsedException> {
    // Frames are kept innermost first while reading, as printed, and reversed at the end.
    let mut chain: Vec<ParsedException> = Vec::new();
    let mut skip_deeper_than: Option<usize> = None;
    let mut reading_message = false;

    for line in lines {
        let indent = indent_width(line);
        let trimmed = line.trim();
        if let Some(suppressed_indent) = skip_deeper_than {
            if indent > suppressed_indent || (indent == suppressed_indent && trimmed.starts_with("Suppressed: ")) {
                continue;
            }
            skip_deeper_than = None;
        }
        if trimmed.starts_with("Suppressed: ") {
            skip_deeper_than = Some(indent);
            reading_message = false;
            continue;
        }
        if let Some(frame) = parse_frame(line) {
            if let Some(exception) = chain.last_mut() {
                exception.frames.push(frame);
            }
            reading_message = false;
            continue;
        }
        if let Some(captures) = MORE_LINE.captures(trimmed) {
            let count = captures["count"].parse::<usize>().unwrap_or(0);
            restore_common_frames(&mut chain, count);
            reading_message = false;
            continue;
        }
        if let Some(cause) = trimmed.strip_prefix("Caused by: ") {
            if let Some((exception_type, message)) = header_parts(cause) {
                chain.push(ParsedException::new(exception_type, message));
                reading_message = true;
            }
            continue;
        }
        let header = match trimmed.strip_prefix("Exception in thread \"").and_then(|rest| rest.split_once("\" ")) {
            Some((_thread, rest)) => rest,
            None => trimmed,
        };
        if indent == 0
            && !reading_message
            && let Some((exception_type, message)) = header_parts(header)
        {
            if !chain.is_empty() {
                // A second trace in the same text: the first one is the exception.
                break;
            }
            chain.push(ParsedException::new(exception_type, message));
            reading_message = true;
            continue;
        }
        if reading_message
            && !trimmed.is_empty()
            && let Some(exception) = chain.last_mut()
        {
            exception.message.push('\n');
            exception.message.push_str(trimmed);
        }
    }
    for exception in &mut chain {
        exception.frames.reverse();
    }
    chain
}

/// `pkg.Type: message` or a bare `pkg.Type`; the class name must be qualified or end like a throwable,
/// which keeps log lines (`ERROR: ...`) out.
fn header_parts(line: &str) -> Option<(String, String)> {
    let (exception_type, message) = split_type_and_message(line)?;
    let looks_like_throwable = exception_type.contains('.')
        || ["Exception", "Error", "Throwable"].iter().any(|suffix| exception_type.ends_with(suffix));
    looks_like_throwable.then(|| (exception_type.to_owned(), message.to_owned()))
}

/// Appends to the newest cause the outermost `count` frames of the exception that encloses it.
fn restore_common_frames(chain: &mut [ParsedException], count: usize) {
    let Some((current, enclosing_chain)) = chain.split_last_mut() else {
        return;
    };
    let Some(enclosing) = enclosing_chain.last() else {
        return;
    };
    let start = enclosing.frames.len().saturating_sub(count);
    current.frames.extend(enclosing.frames[start..].iter().cloned());
}

fn parse_frame(line: &str) -> Option<StackFrame> {
    // `at [classloader/][module[@version]/]package.Class.method(Location)[ ~[jar:version]]`.
    let (qualified, location) = java_frame(line)?;
    let (module, function) =
        qualified.rsplit_once('.').map_or((None, qualified), |(class, method)| (Some(class), method));
    if function.is_empty() {
        return None;
    }
    let location = location.trim();
    let (filename, lineno) = match location.rsplit_once(':') {
        Some((file, line_number)) => (Some(file), parse_number(line_number)),
        None if location == "Native Method" || location == "Unknown Source" || location.is_empty() => (None, None),
        None => (Some(location), None),
    };
    Some(StackFrame {
        function: Some(bounded_field(function)),
        module: module.map(bounded_field),
        filename: filename.map(bounded_field),
        lineno,
        ..StackFrame::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Vec<ParsedException> {
        parse(&text.lines().collect::<Vec<_>>())
    }

    #[test]
    fn reads_native_unknown_and_logback_frames() {
        let exceptions = parse_text(
            "org.springframework.web.HttpMediaTypeNotAcceptableException: no acceptable representation\n\
             \tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n\
             \tat com.sun.proxy.$Proxy12.handle(Unknown Source)\n\
             \tat org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1040) ~[spring-webmvc-5.3.9.jar:5.3.9]\n\
             \tat app//com.acme.Api.get(Api.kt:12)\n\
             \tat broken frame without parens\n",
        );
        assert_eq!(exceptions.len(), 1);
        let frames = &exceptions[0].frames;
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0].module.as_deref(), Some("com.acme.Api"));
        assert_eq!(frames[0].filename.as_deref(), Some("Api.kt"));
        assert_eq!(frames[3].function.as_deref(), Some("invoke0"));
        assert_eq!((frames[3].filename.as_deref(), frames[3].lineno), (None, None));
    }

    #[test]
    fn continues_multiline_messages() {
        let exceptions =
            parse_text("java.sql.SQLException: syntax error\nnear \"SELEC\"\n\tat com.acme.Db.run(Db.java:1)");
        assert_eq!(exceptions[0].message, "syntax error\nnear \"SELEC\"");
    }
}
