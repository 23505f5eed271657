//! Every captured runtime trace under tests/fixtures parses to the exceptions, frames and in-app flags the
//! runtime printed, with and without a platform hint.

mod common;

use common::fixture;
use sightline_grouping::{ParsedStack, Platform, culprit, parse_stacktrace};

/// What one fixture must parse to.
struct Expected {
    fixture: &'static str,
    platform: Platform,
    /// (type, message, frame count) per exception, top-level first.
    exceptions: &'static [(&'static str, &'static str, usize)],
    /// Innermost frame of exception `.0`: function, module, line.
    innermost: (usize, Option<&'static str>, Option<&'static str>, Option<u32>),
    /// In-app flags of exception `.0`, outermost first: `A` in-app, `L` library.
    in_app: (usize, &'static str),
    /// Culprit of the top-level exception.
    culprit: Option<&'static str>,
}

const EXPECTED: &[Expected] = &[
    Expected {
        fixture: "python/value_error.input.txt",
        platform: Platform::Python,
        exceptions: &[("ValueError", "invalid literal for int() with base 10: '12 boxes'", 4)],
        innermost: (0, Some("parse_quantity"), Some("srv.shop.checkout"), Some(7)),
        in_app: (0, "AAAA"),
        culprit: Some("srv.shop.checkout in parse_quantity"),
    },
    Expected {
        fixture: "python/direct_cause.input.txt",
        platform: Platform::Python,
        exceptions: &[
            ("PaymentDeclined", "order 1042 could not be charged", 2),
            ("ConnectionError", "gateway 10.2.3.4 timed out after 30s (amount=1999)", 2),
        ],
        innermost: (1, Some("call_gateway"), Some("srv.shop.payments"), Some(11)),
        in_app: (0, "AA"),
        culprit: Some("srv.shop.payments in charge"),
    },
    Expected {
        fixture: "python/during_handling.input.txt",
        platform: Platform::Python,
        exceptions: &[("RuntimeError", "settings are incomplete", 2), ("KeyError", "'database_url'", 2)],
        innermost: (1, Some("database_url"), Some("srv.shop.settings"), Some(16)),
        in_app: (1, "AA"),
        culprit: Some("srv.shop.settings in load_settings"),
    },
    Expected {
        fixture: "python/json_decode.input.txt",
        platform: Platform::Python,
        exceptions: &[("json.decoder.JSONDecodeError", "Expecting value: line 1 column 1 (char 0)", 6)],
        innermost: (0, Some("raw_decode"), Some("json.decoder"), Some(355)),
        in_app: (0, "AAALLL"),
        culprit: Some("srv.shop.webhooks in parse_webhook"),
    },
    Expected {
        fixture: "python/library_error.input.txt",
        platform: Platform::Python,
        exceptions: &[("jinja2.exceptions.UndefinedError", "'customer' is undefined", 7)],
        innermost: (0, Some("getattr"), Some("jinja2.environment"), Some(490)),
        in_app: (0, "AAALLAL"),
        culprit: Some("<template> in top-level template code"),
    },
    Expected {
        fixture: "javascript/type_error.input.txt",
        platform: Platform::JavaScript,
        exceptions: &[("TypeError", "Cannot read properties of undefined (reading 'amount')", 10)],
        innermost: (0, None, None, Some(13)),
        in_app: (0, "LLLLLAAALA"),
        culprit: Some("cart.js in ?"),
    },
    Expected {
        fixture: "javascript/async_rejection.input.txt",
        platform: Platform::JavaScript,
        exceptions: &[("RangeError", "inventory for SKU-1042 is below zero: -3", 2)],
        innermost: (0, Some("fetchInventory"), None, Some(9)),
        in_app: (0, "AA"),
        culprit: Some("orders.js in fetchInventory"),
    },
    Expected {
        fixture: "javascript/error_cause.input.txt",
        platform: Platform::JavaScript,
        exceptions: &[
            // 3 printed frames + 5 restored from "... 5 lines matching cause stack trace ...".
            ("Error", "webhook 7f3c2a9e could not be decoded", 8),
            ("SyntaxError", "Unexpected token '<', \"<html>502 \"... is not valid JSON", 10),
        ],
        innermost: (1, Some("JSON.parse"), None, None),
        in_app: (0, "LLLLLLAA"),
        culprit: Some("webhooks.js in handleWebhook"),
    },
    Expected {
        fixture: "javascript/browser_bundle.chrome.input.txt",
        platform: Platform::JavaScript,
        exceptions: &[("TypeError", "Cannot read properties of undefined (reading 'toFixed')", 10)],
        innermost: (0, Some("formatPrice"), None, Some(14)),
        in_app: (0, "LLLLLAAALA"),
        culprit: Some("main.3f2a1b9c.js in formatPrice"),
    },
    Expected {
        fixture: "javascript/browser_bundle.firefox.input.txt",
        platform: Platform::JavaScript,
        exceptions: &[("TypeError", "can't access property \"toFixed\", item.price is undefined", 4)],
        innermost: (0, Some("formatPrice"), None, Some(14)),
        in_app: (0, "AAAA"),
        culprit: Some("main.3f2a1b9c.js in formatPrice"),
    },
    Expected {
        fixture: "javascript/browser_bundle.safari.input.txt",
        platform: Platform::JavaScript,
        exceptions: &[("TypeError", "undefined is not an object (evaluating 'item.price.toFixed')", 5)],
        innermost: (0, Some("formatPrice"), None, Some(14)),
        in_app: (0, "AAALA"),
        culprit: Some("main.3f2a1b9c.js in formatPrice"),
    },
    Expected {
        fixture: "java/CheckoutFailure.input.txt",
        platform: Platform::Java,
        exceptions: &[
            ("java.lang.RuntimeException", "checkout failed for order 1042", 2),
            // 2 printed + "... 1 more" restored from the enclosing trace.
            ("java.lang.IllegalArgumentException", "order 1042 has an invalid quantity", 3),
            ("java.lang.NumberFormatException", "For input string: \"12 boxes\"", 16),
        ],
        innermost: (2, Some("forInputString"), Some("java.lang.NumberFormatException"), Some(67)),
        in_app: (2, "AAAALLLLLLLLALLL"),
        culprit: Some("com.acme.shop.CheckoutFailure in placeOrder"),
    },
    Expected {
        fixture: "java/NullPointer.input.txt",
        platform: Platform::Java,
        exceptions: &[(
            "java.lang.NullPointerException",
            "Cannot invoke \"String.split(String)\" because the return value of \"java.util.Map.get(Object)\" is null",
            3,
        )],
        innermost: (0, Some("lambda$emailDomain$0"), Some("com.acme.shop.NullPointer"), Some(16)),
        in_app: (0, "AAA"),
        culprit: Some("com.acme.shop.NullPointer in lambda$emailDomain$0"),
    },
    Expected {
        fixture: "go/index_out_of_range.input.txt",
        platform: Platform::Go,
        exceptions: &[("runtime.Error", "runtime error: index out of range [5] with length 3", 3)],
        innermost: (0, Some("(*Inventory).Reserve"), Some("main"), Some(19)),
        in_app: (0, "AAA"),
        culprit: Some("main in (*Inventory).Reserve"),
    },
    Expected {
        fixture: "go/test_panic.input.txt",
        platform: Platform::Go,
        exceptions: &[("panic", "order 1042: out of stock", 8)],
        innermost: (0, Some("tRunner.func1.2"), Some("testing"), Some(1396)),
        in_app: (0, "LLAAALLL"),
        culprit: Some("github.com/acme/shop/orders in First[...]"),
    },
    Expected {
        fixture: "go/debug_stack.input.txt",
        platform: Platform::Go,
        exceptions: &[("error", "error: order 1042: out of stock", 8)],
        innermost: (0, Some("Stack"), Some("runtime/debug"), Some(24)),
        in_app: (0, "LLAAALAL"),
        culprit: Some("github.com/acme/shop/orders in TestPlaceOrderRecovered.func1"),
    },
    Expected {
        fixture: "rust/panic_short.input.txt",
        platform: Platform::Rust,
        exceptions: &[("panic", "sku is not stocked", 12)],
        innermost: (0, Some("expect_failed"), Some("core::option"), Some(2245)),
        in_app: (0, "LAAALLLLLALL"),
        culprit: Some("shop::Inventory in reserve::{{closure}}"),
    },
    Expected {
        fixture: "rust/panic_full.input.txt",
        platform: Platform::Rust,
        exceptions: &[("panic", "sku is not stocked", 12)],
        innermost: (0, Some("expect_failed"), Some("core::option"), Some(2245)),
        in_app: (0, "LAAALLLLLALL"),
        culprit: Some("shop::Inventory in reserve::{{closure}}"),
    },
    Expected {
        fixture: "rust/anyhow_error.input.txt",
        platform: Platform::Rust,
        exceptions: &[
            ("Error", "could not place order", 4),
            ("Error", "inventory lookup failed for order 1042", 0),
            ("Error", "sku SKU-1042 is not stocked", 0),
        ],
        innermost: (0, Some("stock_level"), Some("shop"), Some(11)),
        in_app: (0, "LAAA"),
        culprit: Some("shop in stock_level"),
    },
    Expected {
        fixture: "dotnet/inner_exception.input.txt",
        platform: Platform::DotNet,
        exceptions: &[
            ("System.InvalidOperationException", "order 1042 has an invalid quantity", 2),
            ("System.FormatException", "Input string was not in a correct format.", 5),
        ],
        innermost: (1, Some("ThrowOverflowOrFormatException"), Some("System.Number"), None),
        in_app: (1, "AALLL"),
        culprit: Some("Acme.Orders.OrderService in PlaceAsync"),
    },
    Expected {
        fixture: "dotnet/coreclr_async.input.txt",
        platform: Platform::DotNet,
        exceptions: &[
            ("System.InvalidOperationException", "order 1042 has an invalid quantity", 4),
            ("System.FormatException", "The input string '12 boxes' was not in a correct format.", 4),
        ],
        innermost: (1, Some("ThrowFormatException[TChar]"), Some("System.Number"), None),
        in_app: (0, "AAAA"),
        culprit: Some("Acme.Orders.OrderService in PlaceAsync"),
    },
];

fn check(expected: &Expected, stack: &ParsedStack) {
    let name = expected.fixture;
    assert_eq!(stack.platform, expected.platform, "{name}: platform");
    let actual: Vec<(&str, &str, usize)> = stack
        .exceptions
        .iter()
        .map(|exception| (exception.exception_type.as_str(), exception.message.as_str(), exception.frames.len()))
        .collect();
    assert_eq!(actual, expected.exceptions, "{name}: exceptions");

    let (index, function, module, line) = expected.innermost;
    let innermost = stack.exceptions[index].frames.last().unwrap_or_else(|| panic!("{name}: no frames"));
    assert_eq!(
        (innermost.function.as_deref(), innermost.module.as_deref(), innermost.lineno),
        (function, module, line),
        "{name}: innermost frame"
    );

    let (index, flags) = expected.in_app;
    let actual_flags: String =
        stack.exceptions[index].frames.iter().map(|frame| if frame.in_app { 'A' } else { 'L' }).collect();
    assert_eq!(actual_flags, flags, "{name}: in-app flags");

    let top_level = &stack.exceptions[0];
    assert_eq!(culprit(stack.platform, &top_level.frames).as_deref(), expected.culprit, "{name}: culprit");
    for exception in &stack.exceptions {
        for frame in &exception.frames {
            assert!(frame.lineno != Some(0), "{name}: line numbers are 1-based");
        }
    }
}

#[test]
fn every_fixture_parses_with_platform_detection() {
    for expected in EXPECTED {
        check(expected, &parse_stacktrace(&fixture(expected.fixture), None));
    }
}

#[test]
fn every_fixture_parses_the_same_with_its_hint() {
    for expected in EXPECTED {
        let text = fixture(expected.fixture);
        assert_eq!(
            parse_stacktrace(&text, Some(expected.platform)),
            parse_stacktrace(&text, None),
            "{}",
            expected.fixture
        );
        assert_eq!(parse_stacktrace(&text, Some(Platform::Other)), parse_stacktrace(&text, None));
    }
}

#[test]
fn every_fixture_has_a_program_or_a_stated_source() {
    let readme = fixture("README.md");
    for expected in EXPECTED {
        let stem = expected.fixture.split('/').nth(1).and_then(|name| name.split('.').next()).unwrap_or_default();
        assert!(readme.contains(stem), "tests/fixtures/README.md does not describe {}", expected.fixture);
    }
}

#[test]
fn python_keeps_source_lines_and_skips_caret_markers() {
    let stack = parse_stacktrace(&fixture("python/value_error.input.txt"), None);
    let frames = &stack.exceptions[0].frames;
    assert_eq!(frames[2].context_line.as_deref(), Some("cart[sku] = parse_quantity(raw_quantity)"));
    assert_eq!(frames[3].context_line.as_deref(), Some("return int(raw)"));
}

#[test]
fn javascript_restores_frames_node_elided_as_matching_the_cause() {
    let stack = parse_stacktrace(&fixture("javascript/error_cause.input.txt"), None);
    let outer: Vec<Option<&str>> = stack.exceptions[0].frames.iter().map(|frame| frame.function.as_deref()).collect();
    assert_eq!(
        outer,
        vec![
            None,
            Some("Function.executeUserEntryPoint [as runMain]"),
            Some("Module._load"),
            Some("Module.load"),
            Some("Module._extensions..js"),
            Some("Module._compile"),
            Some("Object.<anonymous>"),
            Some("handleWebhook"),
        ]
    );
}

#[test]
fn java_skips_suppressed_blocks_and_restores_common_frames() {
    let stack = parse_stacktrace(&fixture("java/CheckoutFailure.input.txt"), None);
    let functions: Vec<String> = stack
        .exceptions
        .iter()
        .flat_map(|exception| exception.frames.iter().filter_map(|frame| frame.function.clone()))
        .collect();
    assert!(!functions.contains(&"close".to_owned()), "suppressed exception frames leaked: {functions:?}");
    let cause = &stack.exceptions[1].frames;
    assert_eq!(cause[0].function.as_deref(), Some("main"));
    assert_eq!(cause[0].lineno, Some(43));
}

#[test]
fn rust_short_and_full_backtraces_give_the_same_frames_but_paths() {
    let short = parse_stacktrace(&fixture("rust/panic_short.input.txt"), None);
    let full = parse_stacktrace(&fixture("rust/panic_full.input.txt"), None);
    let names = |stack: &ParsedStack| -> Vec<(Option<String>, Option<String>, Option<u32>)> {
        stack.exceptions[0]
            .frames
            .iter()
            .map(|frame| (frame.module.clone(), frame.function.clone(), frame.lineno))
            .collect()
    };
    assert_eq!(names(&short), names(&full));
}
