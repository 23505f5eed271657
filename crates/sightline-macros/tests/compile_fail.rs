//! Misuse of `#[traced]` fails to compile with a message that says what to write instead.

#[test]
fn misuse_is_refused_with_clear_messages() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
