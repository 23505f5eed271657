//! Grouping stability in both directions, on real captured traces: the same bug seen with other line
//! numbers, release paths, bundle hashes, addresses and message values groups together; different bugs
//! do not; reclassified frames still match through the "system" hash; client fingerprints override.

mod common;

use common::{fixture, group_stack, group_text, hashes_intersect};
use regex::Regex;
use sightline_grouping::{Fingerprint, GroupingInput, InAppRules, Platform, fingerprint, parse_stacktrace};

/// Replaces every match of `pattern` using `replacement` (regex syntax: `$1`, `${name}`).
fn rewrite(text: &str, pattern: &str, replacement: &str) -> String {
    let regex = Regex::new(pattern).expect("test regex compiles");
    let rewritten = regex.replace_all(text, replacement).into_owned();
    assert_ne!(rewritten, text, "pattern {pattern} changed nothing");
    rewritten
}

/// Adds `delta` to every number the regex's group `n` captures (line numbers, columns, offsets).
fn shift_numbers(text: &str, pattern: &str, delta: u64) -> String {
    let regex = Regex::new(pattern).expect("test regex compiles");
    regex
        .replace_all(text, |captures: &regex::Captures<'_>| {
            let whole = &captures[0];
            let number = &captures["n"];
            let shifted = number.parse::<u64>().expect("digits") + delta;
            whole.replacen(number, &shifted.to_string(), 1)
        })
        .into_owned()
}

fn assert_same_group(first: &Fingerprint, second: &Fingerprint, why: &str) {
    assert_eq!(first.primary_hash, second.primary_hash, "{why}: {:?} vs {:?}", first.contributing, second.contributing);
}

fn assert_different_group(first: &Fingerprint, second: &Fingerprint, why: &str) {
    assert_ne!(first.primary_hash, second.primary_hash, "{why}: {:?}", first.contributing);
    assert!(!hashes_intersect(first, second), "{why}: hashes intersect");
}

// ---- (a) the same bug groups together -------------------------------------------------------------

#[test]
fn python_same_bug_with_other_lines_release_dir_and_python_version() {
    let original = fixture("python/json_decode.input.txt");
    let baseline = group_text(&rewrite(&original, "/srv/shop/", "/srv/releases/v1.4.0/shop/"));
    let next_release = rewrite(&original, "/srv/shop/", "/srv/releases/2024.06.2/shop/");
    let next_release =
        rewrite(&next_release, r"/root/\.pyenv/versions/3\.11\.7/lib/python3\.11/", "/usr/local/lib/python3.12/");
    let next_release = shift_numbers(&next_release, r", line (?P<n>\d+)", 7);
    let next_release = rewrite(
        &next_release,
        "Expecting value: line 1 column 1 \\(char 0\\)",
        "Expecting value: line 3 column 9 (char 41)",
    );
    assert_same_group(&baseline, &group_text(&next_release), "python release");
    assert_eq!(baseline.variant, "app");
}

#[test]
fn python_site_packages_frames_match_across_interpreter_and_virtualenv_paths() {
    let original = fixture("python/library_error.input.txt");
    let in_venv = rewrite(
        &original,
        r"/root/\.pyenv/versions/3\.11\.7/lib/python3\.11/site-packages/",
        "/srv/shop/.venv/lib/python3.12/site-packages/",
    );
    let first = group_text(&original);
    let second = group_text(&in_venv);
    assert_eq!(first.hashes, second.hashes, "both app and system hashes are stable");
}

#[test]
fn javascript_same_bug_under_a_new_webpack_hash_and_shifted_columns() {
    let first = group_text(&fixture("javascript/browser_bundle.chrome.input.txt"));
    let second = group_text(&fixture("javascript/browser_bundle.chrome_next_release.input.txt"));
    assert_eq!(first.hashes, second.hashes);
    let shifted = shift_numbers(&fixture("javascript/browser_bundle.chrome.input.txt"), r"\.js:(?P<n>\d+)", 40);
    let shifted = rewrite(&shifted, "/srv/shop/static/js/", "https://cdn.acme.com/static/js/");
    assert_same_group(&first, &group_text(&shifted), "chrome URL and lines");
}

#[test]
fn javascript_same_bug_in_chrome_firefox_and_safari_shares_the_app_hash() {
    // Top-level code is `Object.<anonymous>` in V8, empty in SpiderMonkey and `global code` in
    // JavaScriptCore; all are anonymous, so the three engines agree on the in-app frames.
    let chrome = group_text(&fixture("javascript/browser_bundle.chrome.input.txt"));
    let firefox = group_text(&fixture("javascript/browser_bundle.firefox.input.txt"));
    let safari = group_text(&fixture("javascript/browser_bundle.safari.input.txt"));
    assert_same_group(&chrome, &firefox, "chrome and firefox");
    assert_same_group(&chrome, &safari, "chrome and safari");
    assert_eq!(
        chrome.contributing,
        vec!["TypeError", "main.js ?", "main.js onCheckoutClick", "main.js renderCart", "main.js formatPrice"]
    );
}

#[test]
fn go_same_panic_with_other_goroutine_addresses_offsets_and_lines() {
    let original = fixture("go/test_panic.input.txt");
    let rerun = rewrite(&original, r"goroutine \d+", "goroutine 7301");
    let rerun = rewrite(&rerun, r"0x[0-9a-f]+", "0xc00012e3a0");
    let rerun = shift_numbers(&rerun, r"\.go:(?P<n>\d+)", 12);
    let rerun = rewrite(&rerun, r"/usr/lib/go-1\.19/src/", "/usr/local/go/src/");
    assert_eq!(group_text(&original).hashes, group_text(&rerun).hashes);
}

#[test]
fn rust_short_and_full_backtraces_of_one_panic_group_together() {
    let short = group_text(&fixture("rust/panic_short.input.txt"));
    let full = group_text(&fixture("rust/panic_full.input.txt"));
    assert_eq!(short.hashes, full.hashes);
    assert_eq!(
        short.contributing,
        vec![
            "panic",
            "shop main",
            "shop place_order",
            "shop::Inventory reserve",
            "shop::Inventory reserve::{{closure}}"
        ]
    );
}

#[test]
fn java_same_bug_with_other_lines_and_lambda_class_addresses() {
    let original = fixture("java/NullPointer.input.txt");
    let rebuilt = shift_numbers(&original, r"\.java:(?P<n>\d+)", 3);
    let rebuilt = rewrite(&rebuilt, r"lambda\$emailDomain\$0", "lambda$$emailDomain$$3");
    assert_same_group(&group_text(&original), &group_text(&rebuilt), "java rebuild");
}

#[test]
fn dotnet_same_bug_with_other_lines_and_state_machine_numbers() {
    let original = fixture("dotnet/coreclr_async.input.txt");
    let rebuilt = shift_numbers(&original, r":line (?P<n>\d+)", 5);
    let rebuilt = rewrite(&rebuilt, r"DisplayClass2_0", "DisplayClass7_1");
    let rebuilt = rewrite(&rebuilt, r"b__0", "b__3");
    let rebuilt = rewrite(&rebuilt, r"<Main>d__0", "<Main>d__4");
    assert_same_group(&group_text(&original), &group_text(&rebuilt), ".NET rebuild");
}

#[test]
fn frameless_errors_group_by_type_and_parameterized_message() {
    let first = group_text("ValueError: order 1042 for bob@acme.com failed after 30s at 2024-06-01T12:00:00Z");
    let second = group_text("ValueError: order 77 for eve@example.org failed after 1500ms at 2025-01-31T23:59:59Z");
    assert_same_group(&first, &second, "parameterized message");
    assert_eq!(first.variant, "exception");
    assert_eq!(first.contributing, vec!["ValueError", "order <int> for <email> failed after <duration> at <date>"]);
}

// ---- (b) different bugs stay apart ---------------------------------------------------------------

#[test]
fn a_different_exception_type_is_a_different_group() {
    let original = fixture("python/value_error.input.txt");
    let other_type = rewrite(&original, "^ValueError:|\nValueError:", "\nTypeError:");
    assert_different_group(&group_text(&original), &group_text(&other_type), "type");
}

#[test]
fn a_different_in_app_function_is_a_different_group() {
    let original = fixture("python/value_error.input.txt");
    let renamed = rewrite(&original, "in parse_quantity", "in parse_amount");
    assert_different_group(&group_text(&original), &group_text(&renamed), "crash-site function");
}

#[test]
fn the_same_type_from_another_call_path_is_a_different_group() {
    let python = fixture("python/value_error.input.txt");
    let other_path = rewrite(&python, "in add_to_cart", "in update_cart");
    assert_different_group(&group_text(&python), &group_text(&other_path), "python call path");

    let go = fixture("go/test_panic.input.txt");
    let other_caller = rewrite(&go, r"orders\.placeOrder", "orders.placeBackorder");
    assert_different_group(&group_text(&go), &group_text(&other_caller), "go call path");

    // Same engine, same message shape, different bug: the Node fixtures' TypeErrors.
    let cart = group_text(&fixture("javascript/type_error.input.txt"));
    let bundle = group_text(&fixture("javascript/browser_bundle.chrome.input.txt"));
    assert_different_group(&cart, &bundle, "two TypeErrors");
}

#[test]
fn different_fixtures_never_share_a_hash() {
    let names = [
        "python/value_error.input.txt",
        "python/direct_cause.input.txt",
        "python/during_handling.input.txt",
        "python/json_decode.input.txt",
        "python/library_error.input.txt",
        "javascript/type_error.input.txt",
        "javascript/async_rejection.input.txt",
        "javascript/error_cause.input.txt",
        "java/CheckoutFailure.input.txt",
        "java/NullPointer.input.txt",
        "go/index_out_of_range.input.txt",
        "go/test_panic.input.txt",
        "go/debug_stack.input.txt",
        "rust/panic_short.input.txt",
        "rust/anyhow_error.input.txt",
        "dotnet/inner_exception.input.txt",
    ];
    let fingerprints: Vec<Fingerprint> = names.iter().map(|name| group_text(&fixture(name))).collect();
    for (first_index, first) in fingerprints.iter().enumerate() {
        for (second_index, second) in fingerprints.iter().enumerate().skip(first_index + 1) {
            assert!(!hashes_intersect(first, second), "{} and {}", names[first_index], names[second_index]);
        }
    }
}

// ---- reclassification and client fingerprints ------------------------------------------------------

#[test]
fn a_library_frame_reclassified_in_app_still_matches_through_the_system_hash() {
    let stack = parse_stacktrace(&fixture("python/json_decode.input.txt"), None);
    let defaults = group_stack(&stack, &InAppRules::default(), None);
    let json_in_app = group_stack(&stack, &InAppRules::including(["json"]), None);
    assert_ne!(defaults.primary_hash, json_in_app.primary_hash, "the app hash changes");
    assert!(hashes_intersect(&defaults, &json_in_app), "the system hash is shared");
    // Every frame is in-app now, so the app hash is the system hash (listed once).
    assert_eq!(json_in_app.hashes, vec![defaults.hashes[1].clone()]);

    let app_excluded =
        group_stack(&stack, &InAppRules { include_prefixes: vec![], exclude_prefixes: vec!["/srv/".to_owned()] }, None);
    assert_eq!(app_excluded.variant, "system");
    assert!(hashes_intersect(&defaults, &app_excluded));
}

#[test]
fn a_client_fingerprint_overrides_the_stack_trace() {
    let checkout = parse_stacktrace(&fixture("python/value_error.input.txt"), None);
    let payments = parse_stacktrace(&fixture("python/direct_cause.input.txt"), None);
    let custom = vec!["checkout-{{ tenant }}".to_owned(), "timeout".to_owned()];
    let first = group_stack(&checkout, &InAppRules::default(), Some(&custom));
    let second = group_stack(&payments, &InAppRules::default(), Some(&custom));
    assert_eq!(first.hashes, second.hashes);
    assert_eq!((first.variant.as_str(), first.contributing.clone()), ("custom", custom.clone()));
    assert_eq!(first.hashes.len(), 1);
}

#[test]
fn default_in_a_client_fingerprint_expands_to_the_default_grouping() {
    let stack = parse_stacktrace(&fixture("python/json_decode.input.txt"), None);
    let rules = InAppRules::default();
    let default = group_stack(&stack, &rules, None);

    let only_default = vec!["{{ default }}".to_owned()];
    assert_eq!(group_stack(&stack, &rules, Some(&only_default)).hashes, default.hashes, "{{ default }} alone");

    let tenant_a = vec!["{{default}}".to_owned(), "tenant-a".to_owned()];
    let tenant_b = vec!["{{ default }}".to_owned(), "tenant-b".to_owned()];
    let split_a = group_stack(&stack, &rules, Some(&tenant_a));
    let split_b = group_stack(&stack, &rules, Some(&tenant_b));
    assert_eq!(split_a.variant, "custom_app");
    assert_eq!(split_a.contributing, [default.contributing.clone(), vec!["tenant-a".to_owned()]].concat());
    assert_eq!(split_a.hashes.len(), 2, "app and system variants are both salted");
    assert!(!hashes_intersect(&split_a, &split_b));
    assert!(!hashes_intersect(&split_a, &default));

    let empty: Vec<String> = Vec::new();
    assert_eq!(group_stack(&stack, &rules, Some(&empty)).hashes, default.hashes, "an empty fingerprint is ignored");
}

#[test]
fn line_numbers_columns_and_addresses_never_contribute() {
    for name in
        ["javascript/browser_bundle.firefox.input.txt", "go/index_out_of_range.input.txt", "rust/panic_full.input.txt"]
    {
        let result = group_text(&fixture(name));
        for value in &result.contributing {
            assert!(!value.contains("0x"), "{name}: address in {value}");
            assert!(
                !value.chars().any(|character| character.is_ascii_digit()) || value.contains("go"),
                "{name}: digits in {value}"
            );
        }
    }
}

#[test]
fn grouping_input_can_be_built_by_hand() {
    let frames =
        parse_stacktrace(&fixture("go/index_out_of_range.input.txt"), Some(Platform::Go)).exceptions[0].frames.clone();
    let result = fingerprint(&GroupingInput {
        platform: Platform::Go,
        exception_type: "runtime.Error",
        message: "runtime error: index out of range [7] with length 3",
        frames: &frames,
        client_fingerprint: None,
    });
    assert_eq!(result.contributing, vec!["runtime.Error", "main main", "main main.func", "main (*Inventory).Reserve"]);
}
