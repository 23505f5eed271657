//! Rust panics with `std::backtrace` output, and `anyhow` / `eyre` / `color-eyre` error reports.
//!
//! ```text
//! thread 'main' (2024) panicked at src/main.rs:18:55:          (Rust ≥ 1.73; older: panicked at 'msg', file:l:c)
//! sku is not stocked
//! stack backtrace:
//!    0: __rustc::rust_begin_unwind
//!              at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5
//!   19:     0x55f3a2f060db - shop::Inventory::reserve::{{closure}}::hd768cfbba8c0b148      (RUST_BACKTRACE=full)
//!                                at /srv/shop/rust/src/main.rs:18:55
//!
//! Error: could not place order                                 (anyhow's Debug, printed by `main`)
//!
//! Caused by:
//!     0: inventory lookup failed for order 1042
//!
//! Stack backtrace:
//!    0: anyhow::error::<impl anyhow::Error>::msg
//! ```
//! Symbols lose their hash suffix (`::h3b2c...`) and crate disambiguators (`std[e28293b1aa0f68bd]`), as
//! sentry-backtrace's demangling does. Frames are trimmed like sentry-backtrace `trim_stacktrace`: the panic
//! and error-capture machinery above the failing code, and the runtime start-up below
//! `__rust_begin_short_backtrace` (what std's short format hides), so short and full backtraces of the
//! same panic give the same frames.

use std::sync::LazyLock;

use regex::Regex;

use crate::frame::{ParsedException, StackFrame, bounded_field};
use crate::parse::parse_number;

static PANIC_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^thread '(?P<thread>[^']*)'(?: \(\d+\))? panicked at (?:'(?P<message>.*)', )?(?P<location>.+?)(?P<colon>:)?\s*$")
        .expect("rust panic regex compiles")
});

static FRAME_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*\d+:\s+(?:0x[0-9a-fA-F]+ - )?(?P<symbol>\S.*?)\s*$").expect("rust frame regex compiles")
});

static LOCATION_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s+at (?P<file>\S.*?):(?P<line>\d+)(?::(?P<column>\d+))?\s*$").expect("rust location regex compiles")
});

/// Legacy mangling hash suffix and v0 crate disambiguators.
static SYMBOL_HASHES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"::h[0-9a-f]{16}$|\[[0-9a-f]{1,16}\]").expect("rust symbol hash regex compiles"));

/// Whether the line is distinctive of a Rust trace (for format detection).
pub(super) fn is_signature_line(line: &str) -> bool {
    PANIC_HEADER.is_match(line)
        || line.trim_end().eq_ignore_ascii_case("stack backtrace:")
        || (FRAME_LINE.is_match(line) && line.contains("::"))
        || line.contains("/rustc/")
}

enum Section {
    /// Lines that carry nothing: before a header, or after a panic message.
    Preamble,
    /// Lines after a panic header, up to the backtrace: the panic message.
    PanicMessage,
    /// Error report: `Caused by:` list or color-eyre's numbered chain.
    ErrorChain,
    /// Numbered frames.
    Backtrace,
}

/// Reads one panic or error report; the backtrace belongs to the top-level exception.
pub(super) fn parse(lines: &[&str]) -> Vec<ParsedException> {
    let mut chain: Vec<ParsedException> = Vec::new();
    let mut section = Section::Preamble;
    // Printed innermost first.
    let mut frames: Vec<StackFrame> = Vec::new();

    for line in lines {
        let trimmed = line.trim();
        if let Some(captures) = PANIC_HEADER.captures(line) {
            if !chain.is_empty() {
                break;
            }
            let message = captures.name("message").map_or("", |message| message.as_str());
            chain.push(ParsedException::new("panic", message));
            // The old format (`panicked at 'msg', file:l:c`) has the message on the header line.
            section = if captures.name("message").is_some() { Section::Preamble } else { Section::PanicMessage };
            continue;
        }
        if trimmed.eq_ignore_ascii_case("stack backtrace:") || trimmed.contains(" BACKTRACE ") {
            section = Section::Backtrace;
            continue;
        }
        if chain.is_empty() {
            if let Some(message) = line.strip_prefix("Error:") {
                chain.push(ParsedException::new("Error", message.trim()));
                section = Section::ErrorChain;
            }
            continue;
        }
        match section {
            Section::Preamble => {}
            Section::PanicMessage => {
                if trimmed.starts_with("note: ") {
                    section = Section::Preamble;
                } else if let Some(exception) = chain.last_mut() {
                    if !exception.message.is_empty() {
                        exception.message.push('\n');
                    }
                    exception.message.push_str(line);
                }
            }
            Section::ErrorChain => read_chain_line(&mut chain, trimmed),
            Section::Backtrace => {
                if let Some(captures) = LOCATION_LINE.captures(line) {
                    if let Some(frame) = frames.last_mut() {
                        frame.filename = Some(bounded_field(&captures["file"]));
                        frame.lineno = parse_number(&captures["line"]);
                        frame.colno = captures.name("column").and_then(|column| parse_number(column.as_str()));
                    }
                } else if let Some(captures) = FRAME_LINE.captures(line) {
                    frames.push(frame_from_symbol(&captures["symbol"]));
                }
            }
        }
    }
    trim_runtime_frames(&mut frames);
    frames.reverse();
    if let Some(top_level) = chain.first_mut() {
        top_level.frames = frames;
    } else if !frames.is_empty() {
        chain.push(ParsedException { exception_type: "panic".to_owned(), message: String::new(), frames });
    }
    chain
}

/// `Caused by:` items (`0: msg` or plain, one per line) become causes; color-eyre's `Error:` with an empty
/// message takes its first numbered item as the message.
fn read_chain_line(chain: &mut Vec<ParsedException>, trimmed: &str) {
    if trimmed.is_empty()
        || trimmed == "Caused by:"
        || trimmed.starts_with("note: ")
        || trimmed.starts_with("Location:")
    {
        return;
    }
    let item = match trimmed.split_once(": ") {
        Some((index, message)) if index.bytes().all(|byte| byte.is_ascii_digit()) => message,
        _ => trimmed,
    };
    let only_an_empty_header = chain.len() == 1 && chain[0].message.is_empty();
    if only_an_empty_header {
        chain[0].message = item.to_owned();
    } else if !looks_like_source_location(item) {
        chain.push(ParsedException::new("Error", item));
    }
}

/// color-eyre's `Location:` section prints `src/main.rs:25`.
fn looks_like_source_location(item: &str) -> bool {
    item.ends_with(|character: char| character.is_ascii_digit()) && item.contains(".rs:")
}

fn frame_from_symbol(raw_symbol: &str) -> StackFrame {
    let symbol = SYMBOL_HASHES.replace_all(raw_symbol, "");
    let (module, function) = split_rust_path(&symbol);
    StackFrame { function: Some(bounded_field(function)), module: module.map(bounded_field), ..StackFrame::default() }
}

/// Splits a demangled path at its last top-level `::` that is not followed by a closure marker:
/// `shop::Inventory::reserve::{{closure}}` → (`shop::Inventory`, `reserve::{{closure}}`);
/// `<core::slice::Iter<T> as core::iter::Iterator>::fold` → (`<core::slice::Iter<T> as ...>`, `fold`).
pub(crate) fn split_rust_path(symbol: &str) -> (Option<&str>, &str) {
    let mut separators: Vec<usize> = Vec::new();
    let mut depth = 0i32;
    let bytes = symbol.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'<' | b'(' | b'[' => depth += 1,
            b'>' | b')' | b']' if index > 0 && bytes[index - 1] != b'-' => depth -= 1,
            b':' if depth == 0 && bytes.get(index + 1) == Some(&b':') => {
                separators.push(index);
                index += 1;
            }
            _ => {}
        }
        index += 1;
    }
    let function_start =
        separators.iter().rev().find(|separator| !is_closure_marker(&symbol[**separator + 2..])).copied();
    match function_start {
        Some(separator) => (Some(&symbol[..separator]), &symbol[separator + 2..]),
        None => (None, symbol),
    }
}

/// Segments that belong to the function before them: closures and turbofish generic arguments (`::<T>`).
fn is_closure_marker(rest: &str) -> bool {
    rest.starts_with("{{closure}}")
        || rest.starts_with("{closure#")
        || rest.starts_with("{{constant}}")
        || rest.starts_with('<')
}

/// The crate a symbol belongs to, looking through `<`, `&`, `dyn` and `impl` wrappers:
/// `<&dyn core::ops::Fn<()> as core::ops::FnOnce<()>>::call_once` → `core`.
pub(crate) fn crate_of(symbol: &str) -> &str {
    let mut rest = symbol;
    loop {
        let stripped = rest.trim_start_matches(['<', '&', ' ', '*']);
        let stripped = ["dyn ", "mut ", "impl ", "const "]
            .iter()
            .find_map(|prefix| stripped.strip_prefix(prefix))
            .unwrap_or(stripped);
        if stripped.len() == rest.len() {
            break;
        }
        rest = stripped;
    }
    rest.split("::").next().unwrap_or(rest)
}

fn qualified_symbol(frame: &StackFrame) -> String {
    match (&frame.module, &frame.function) {
        (Some(module), Some(function)) => format!("{module}::{function}"),
        (None, Some(function)) => function.clone(),
        (Some(module), None) => module.clone(),
        (None, None) => String::new(),
    }
}

fn is_runtime_crate(crate_name: &str) -> bool {
    matches!(
        crate_name,
        "std" | "core" | "alloc" | "__rustc" | "backtrace" | "anyhow" | "eyre" | "color_eyre" | "rust_begin_unwind"
    )
}

/// Frames that start the panic or capture the error: everything printed above them is machinery.
fn is_border_frame(symbol: &str) -> bool {
    symbol.contains("panicking::")
        || symbol.contains("rust_begin_unwind")
        || symbol.contains("__rust_end_short_backtrace")
        || symbol.contains("begin_panic")
        || matches!(crate_of(symbol), "anyhow" | "eyre" | "color_eyre" | "backtrace")
}

/// sentry-backtrace `trim_stacktrace` plus std's short-backtrace markers; `frames` are innermost first.
fn trim_runtime_frames(frames: &mut Vec<StackFrame>) {
    if let Some(start_of_runtime) =
        frames.iter().position(|frame| qualified_symbol(frame).contains("__rust_begin_short_backtrace"))
    {
        frames.truncate(start_of_runtime);
    }
    let symbols: Vec<String> = frames.iter().map(qualified_symbol).collect();
    let last_border = symbols
        .iter()
        .take_while(|symbol| is_runtime_crate(crate_of(symbol)))
        .enumerate()
        .filter(|(_, symbol)| is_border_frame(symbol))
        .map(|(index, _)| index)
        .last();
    if let Some(last_border) = last_border {
        frames.drain(..=last_border);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_rust_paths() {
        assert_eq!(
            split_rust_path("shop::Inventory::reserve::{{closure}}"),
            (Some("shop::Inventory"), "reserve::{{closure}}")
        );
        assert_eq!(
            split_rust_path("<core::slice::iter::Iter<T> as core::iter::traits::iterator::Iterator>::fold"),
            (Some("<core::slice::iter::Iter<T> as core::iter::traits::iterator::Iterator>"), "fold")
        );
        assert_eq!(
            split_rust_path("core::panicking::panic_display::<&str>"),
            (Some("core::panicking"), "panic_display::<&str>")
        );
        assert_eq!(split_rust_path("main"), (None, "main"));
    }

    #[test]
    fn finds_crates_through_wrappers() {
        assert_eq!(
            crate_of("<&dyn core::ops::function::Fn<()> as core::ops::function::FnOnce<()>>::call_once"),
            "core"
        );
        assert_eq!(
            crate_of("<<std::sys::backtrace::BacktraceLock>::print::DisplayBacktrace as core::fmt::Display>::fmt"),
            "std"
        );
        assert_eq!(crate_of("shop::main"), "shop");
    }

    #[test]
    fn reads_old_panic_format_and_color_eyre_reports() {
        let old = "thread 'main' panicked at 'called `Option::unwrap()` on a `None` value', src/main.rs:4:37\n\
                   note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace";
        let exceptions = parse(&old.lines().collect::<Vec<_>>());
        assert_eq!(exceptions[0].message, "called `Option::unwrap()` on a `None` value");

        let eyre = "Error: \n   0: could not place order\n   1: sku SKU-1042 is not stocked\n\nLocation:\n   src/main.rs:25\n\n  \
                    ━━━━━━━━━━━━━━━━━━━━━━ BACKTRACE ━━━━━━━━━━━━━━━━━━━━━━\n                                ⋮ 5 frames hidden ⋮\n   \
                    6: shop::reserve::h2b7a5e0f6b6d1c2a\n      at /srv/shop/src/main.rs:19\n   7: shop::main::h0c1b2a3d4e5f6a7b\n      at /srv/shop/src/main.rs:25\n";
        let exceptions = parse(&eyre.lines().collect::<Vec<_>>());
        assert_eq!(exceptions.len(), 2);
        assert_eq!(exceptions[0].message, "could not place order");
        assert_eq!(exceptions[1].message, "sku SKU-1042 is not stocked");
        let frames = &exceptions[0].frames;
        assert_eq!(frames.len(), 2);
        assert_eq!((frames[1].module.as_deref(), frames[1].function.as_deref()), (Some("shop"), Some("reserve")));
        assert_eq!(frames[1].lineno, Some(19));
    }
}
