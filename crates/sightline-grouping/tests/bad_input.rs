//! Hostile and broken input: huge traces stay bounded, malformed frames are skipped, invalid UTF-8 (after
//! the caller's lossy conversion) and empty input parse without panicking, for every platform.

use proptest::prelude::*;
use sightline_grouping::{
    GroupingInput, MAX_FRAMES_PER_EXCEPTION, MAX_MESSAGE_BYTES, ParsedException, Platform, culprit, fingerprint,
    parse_stacktrace,
};

const ALL_HINTS: [Option<Platform>; 8] = [
    None,
    Some(Platform::Python),
    Some(Platform::JavaScript),
    Some(Platform::Java),
    Some(Platform::Go),
    Some(Platform::Rust),
    Some(Platform::DotNet),
    Some(Platform::Other),
];

/// A trace of `frame_count` frames in each runtime's format.
fn huge_trace(platform: Platform, frame_count: usize) -> String {
    let mut text = String::with_capacity(frame_count * 64);
    match platform {
        Platform::Python => {
            text.push_str("Traceback (most recent call last):\n");
            for index in 0..frame_count {
                text.push_str(&format!(
                    "  File \"/srv/app/recurse.py\", line {}, in recurse_{index}\n    recurse()\n",
                    index + 1
                ));
            }
            text.push_str("RecursionError: maximum recursion depth exceeded\n");
        }
        Platform::JavaScript => {
            text.push_str("RangeError: Maximum call stack size exceeded\n");
            for index in 0..frame_count {
                text.push_str(&format!("    at recurse{index} (/srv/app/recurse.js:{}:5)\n", index + 1));
            }
        }
        Platform::Java => {
            text.push_str("java.lang.StackOverflowError\n");
            for index in 0..frame_count {
                text.push_str(&format!("\tat com.acme.Recurse.call{index}(Recurse.java:{})\n", index + 1));
            }
        }
        Platform::Go => {
            text.push_str("runtime: goroutine stack exceeds 1000000000-byte limit\nfatal error: stack overflow\n\ngoroutine 1 [running]:\n");
            for index in 0..frame_count {
                text.push_str(&format!("main.recurse{index}(0x1)\n\t/srv/app/main.go:{} +0x1d\n", index + 1));
            }
        }
        Platform::Rust => {
            text.push_str("thread 'main' panicked at src/main.rs:1:1:\noverflow\nstack backtrace:\n");
            for index in 0..frame_count {
                text.push_str(&format!(
                    "  {index}: app::recurse{index}\n             at ./src/main.rs:{}:5\n",
                    index + 1
                ));
            }
        }
        Platform::DotNet | Platform::Other => {
            text.push_str("System.StackOverflowException: overflow\n");
            for index in 0..frame_count {
                text.push_str(&format!("   at Acme.Recurse.Call{index}() in /src/Recurse.cs:line {}\n", index + 1));
            }
        }
    }
    text
}

#[test]
fn a_million_line_trace_is_bounded_for_every_platform() {
    for platform in
        [Platform::Python, Platform::JavaScript, Platform::Java, Platform::Go, Platform::Rust, Platform::DotNet]
    {
        let text = huge_trace(platform, 1_000_000);
        for hint in [None, Some(platform)] {
            let stack = parse_stacktrace(&text, hint);
            assert_eq!(stack.platform, platform);
            for exception in &stack.exceptions {
                assert!(exception.frames.len() <= MAX_FRAMES_PER_EXCEPTION, "{platform:?}: {}", exception.frames.len());
            }
            let frames = &stack.exceptions[0].frames;
            assert_eq!(frames.len(), MAX_FRAMES_PER_EXCEPTION, "{platform:?} keeps a full window");
        }
    }
}

#[test]
fn trimming_keeps_the_crash_site_and_the_entry_point() {
    let stack = parse_stacktrace(&huge_trace(Platform::Java, 600), None);
    let frames = &stack.exceptions[0].frames;
    assert_eq!(frames.len(), MAX_FRAMES_PER_EXCEPTION);
    assert_eq!(frames.last().and_then(|frame| frame.function.as_deref()), Some("call0"), "innermost kept");
    assert_eq!(frames[0].function.as_deref(), Some("call599"), "outermost kept");
}

#[test]
fn a_huge_single_line_message_is_truncated_on_a_character_boundary() {
    let message = "é".repeat(100_000);
    let text = format!("ValueError: {message}\n");
    for hint in ALL_HINTS {
        let stack = parse_stacktrace(&text, hint);
        for exception in &stack.exceptions {
            assert!(exception.message.len() <= MAX_MESSAGE_BYTES);
        }
    }
    let top = &parse_stacktrace(&text, None).exceptions[0];
    assert_eq!(top.message.len(), MAX_MESSAGE_BYTES, "cut at an even byte count of 2-byte characters");
}

#[test]
fn malformed_frame_lines_are_skipped() {
    let python = "Traceback (most recent call last):\n  File \"a.py\", line 3, in ok\n  File \"broken\n  File \"a.py\", line -1, in bad\n  \
                  File \"a.py\", line 99999999999999999999, in huge\nKeyError: 'x'\n";
    let stack = parse_stacktrace(python, None);
    let functions: Vec<Option<&str>> =
        stack.exceptions[0].frames.iter().map(|frame| frame.function.as_deref()).collect();
    // An unparseable line number drops the number, not the frame.
    assert_eq!(functions, vec![Some("ok"), Some("huge")]);
    assert_eq!(stack.exceptions[0].frames[1].lineno, None);
    assert!(!functions.contains(&Some("bad")), "negative line numbers are not frames");

    let java = "java.lang.IllegalStateException: boom\n\tat com.acme.A.ok(A.java:1)\n\tat (((\n\tat com.acme.A.\n\tat com.acme.B.also(B.java:x)\n";
    let frames = &parse_stacktrace(java, None).exceptions[0].frames;
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].function.as_deref(), Some("ok"));
    assert_eq!(frames[0].lineno, None);

    let go = "panic: boom\n\ngoroutine 1 [running]:\nmain.ok()\n\t/app/main.go:3 +0x1\n\t/app/orphan.go:9 +0x1\nnot a frame at all\nmain.main()\n\t/app/main.go:7\n";
    let frames = &parse_stacktrace(go, None).exceptions[0].frames;
    let go_functions: Vec<Option<&str>> = frames.iter().map(|frame| frame.function.as_deref()).collect();
    assert_eq!(go_functions, vec![Some("main"), Some("ok")]);
}

#[test]
fn lossily_converted_invalid_utf8_parses() {
    let mut bytes = b"Traceback (most recent call last):\n  File \"/srv/app/caf".to_vec();
    bytes.extend_from_slice(&[0xC3, 0x28, 0xFF, 0xFE]);
    bytes.extend_from_slice(b".py\", line 4, in handler\nUnicodeDecodeError: 'utf-8' codec can't decode byte 0xff\n");
    let text = String::from_utf8_lossy(&bytes);
    let stack = parse_stacktrace(&text, None);
    assert_eq!(stack.platform, Platform::Python);
    assert_eq!(stack.exceptions[0].exception_type, "UnicodeDecodeError");
    let frame = &stack.exceptions[0].frames[0];
    assert!(frame.filename.as_deref().is_some_and(|filename| filename.contains('\u{FFFD}')));
    assert_eq!(frame.lineno, Some(4));
}

#[test]
fn empty_input_gives_one_empty_exception_for_every_hint() {
    for hint in ALL_HINTS {
        for text in ["", "\n", "   \n\t\n"] {
            let stack = parse_stacktrace(text, hint);
            assert_eq!(stack.exceptions, vec![ParsedException::new("", "")], "{hint:?} {text:?}");
            let top = &stack.exceptions[0];
            let result = fingerprint(&GroupingInput {
                platform: stack.platform,
                exception_type: &top.exception_type,
                message: &top.message,
                frames: &top.frames,
                client_fingerprint: None,
            });
            assert_eq!(result.variant, "message");
            assert_eq!(culprit(stack.platform, &top.frames), None);
        }
    }
}

/// Lines that look like pieces of every trace format, to drive the parsers into odd states.
fn trace_like_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Traceback (most recent call last):".to_owned()),
        Just("The above exception was the direct cause of the following exception:".to_owned()),
        "  File \"[a-z/]{0,12}\", line [0-9]{1,3}, in [a-z<>]{0,6}",
        "    at [A-Za-z.<>$ ]{0,12} \\([a-z/:.]{0,12}:[0-9]{0,3}:[0-9]{0,3}\\)",
        "[a-z]{0,5}@[a-z/.:]{0,12}:[0-9]{1,3}:[0-9]{1,3}",
        "\tat [a-z.$/]{0,16}\\([A-Za-z.: ]{0,12}\\)",
        "Caused by: [a-z.]{0,10}(Exception|Error): .{0,10}",
        "\t?\\.\\.\\. [0-9]{1,3} more",
        Just("\tSuppressed: java.lang.Exception: s".to_owned()),
        "goroutine [0-9]{1,3} \\[running\\]:",
        "[a-z./()*]{1,16}\\([0-9x, .]{0,8}\\)",
        "\t/[a-z/]{0,10}\\.go:[0-9]{1,4}( \\+0x[0-9a-f]{1,4})?",
        "panic: .{0,12}",
        "thread '[a-z]{0,5}' panicked at [a-z/.]{0,8}:[0-9]:[0-9]:",
        " {0,4}[0-9]{1,3}: (0x[0-9a-f]{1,8} - )?[a-z:<>{} ]{0,20}",
        " {4,12}at [a-z/.]{0,12}:[0-9]{1,3}(:[0-9]{1,3})?",
        "   at [A-Za-z.<>`\\[\\]]{0,16}\\([A-Za-z0-9 ]{0,10}\\)( in [a-z/.]{0,10}:line [0-9]{1,3})?",
        Just("   --- End of inner exception stack trace ---".to_owned()),
        " ---> [A-Z][a-z.]{0,10}Exception: .{0,8}",
        "  \\[cause\\]: [A-Z][a-z]{0,6}Error: .{0,8}",
        "    \\.\\.\\. [0-9]{1,2} lines matching cause stack trace \\.\\.\\.",
        Just("}".to_owned()),
        Just("    at f (/a.js:1:1) {\u{3000}".to_owned()),
        Just("\u{3000}\u{85}at \u{2028}".to_owned()),
        Just("Stack backtrace:".to_owned()),
        Just("Caused by:".to_owned()),
        ".{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_never_panics_on_trace_like_garbage(lines in prop::collection::vec(trace_like_line(), 0..40), hint_index in 0usize..8) {
        let text = lines.join("\n");
        let stack = parse_stacktrace(&text, ALL_HINTS[hint_index]);
        prop_assert!(!stack.exceptions.is_empty());
        for exception in &stack.exceptions {
            prop_assert!(exception.frames.len() <= MAX_FRAMES_PER_EXCEPTION);
            prop_assert!(exception.message.len() <= MAX_MESSAGE_BYTES);
            let _ = culprit(stack.platform, &exception.frames);
            let result = fingerprint(&GroupingInput {
                platform: stack.platform,
                exception_type: &exception.exception_type,
                message: &exception.message,
                frames: &exception.frames,
                client_fingerprint: None,
            });
            prop_assert_eq!(result.primary_hash.len(), 32);
            prop_assert_eq!(&result.hashes[0], &result.primary_hash);
        }
    }

    #[test]
    fn parsing_never_panics_on_arbitrary_text(text in "\\PC{0,400}", hint_index in 0usize..8) {
        let stack = parse_stacktrace(&text, ALL_HINTS[hint_index]);
        prop_assert!(!stack.exceptions.is_empty());
    }
}
