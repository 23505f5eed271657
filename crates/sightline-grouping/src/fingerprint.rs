//! The grouping hash of one exception, computed the way Sentry's grouping does (develop docs
//! `grouping.mdx`; `src/sentry/grouping/strategies/newstyle.py`): a client fingerprint if the SDK sent one,
//! else the stack trace ("app" variant over in-app frames, "system" over all frames), else the exception
//! type and parameterized message. An event joins a group when ANY of its hashes matches, so a frame
//! reclassified in or out of the app still finds its group through the "system" hash.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::frame::{MAX_MESSAGE_BYTES, StackFrame, truncate_to_boundary};
use crate::names::{basename, clean_function, clean_module, javascript_file_component};
use crate::parameterize::normalize_message;
use crate::platform::Platform;

/// What grouping reads from one exception (usually the top-level one of a [`crate::ParsedStack`]).
#[derive(Debug, Clone, Copy)]
pub struct GroupingInput<'a> {
    /// Platform of the frames (selects the per-frame rules).
    pub platform: Platform,
    /// Exception type as reported (`ValueError`, `java.lang.IllegalStateException`); may be empty.
    pub exception_type: &'a str,
    /// Exception message, raw: it is bounded to [`MAX_MESSAGE_BYTES`] and parameterized here.
    pub message: &'a str,
    /// Frames outermost first with `in_app` already set ([`crate::InAppRules::apply`]).
    pub frames: &'a [StackFrame],
    /// The SDK's `fingerprint` (Sentry's event field), if any; `{{ default }}` stands for the default
    /// grouping. `None` or an empty list means "use the default".
    pub client_fingerprint: Option<&'a [String]>,
}

/// The result of grouping: every hash the event can be matched by, and how the primary one was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// `hashes[0]`: 32 lowercase hex characters (MD5), the hash a new group is created under.
    pub primary_hash: String,
    /// All distinct variant hashes, primary first ("app" when there are in-app frames, then "system").
    pub hashes: Vec<String>,
    /// Which variant produced the primary hash: `app`, `system`, `exception`, `message`, `custom`, or
    /// `custom_app` / `custom_system` / `custom_exception` / `custom_message` when a client fingerprint
    /// extended the default with `{{ default }}`.
    pub variant: String,
    /// The values hashed for the primary hash, in order: the exception type, then one `"<module> <function>"`
    /// per contributing frame (JavaScript: `"<file basename> <function>"`, `?` for a missing half), or the
    /// parameterized message, or the client fingerprint's values.
    pub contributing: Vec<String>,
}

/// Separator between contributing values before hashing (ASCII unit separator: never in a type or name).
const VALUE_SEPARATOR: &str = "\u{1f}";

/// Computes the grouping hashes of one exception (see the module docs for the order of strategies).
/// Line numbers, columns and addresses never contribute; function names are cleaned of generated noise
/// (closure numbers, generic arguments, symbol hashes, anonymous markers).
///
/// The default fingerprint of a stack (no client fingerprint, some frame contributing) is
/// remembered per thread, keyed by exactly what it is made of (platform, exception type, and
/// each frame's in-app flag, module, function and file): a bug's events repeat one stack, and
/// building the components and their MD5 was ≈ 9 % of `sightline bench errors`' CPU. The result is
/// the same as computing it afresh.
pub fn fingerprint(input: &GroupingInput<'_>) -> Fingerprint {
    let client_values = input.client_fingerprint.filter(|values| !values.is_empty());
    let Some(client_values) = client_values else {
        return STACK_FINGERPRINTS.with_borrow_mut(|memo| memo.fingerprint(input));
    };
    let default_variants = default_variants(input);
    if !client_values.iter().any(|value| is_default_marker(value)) {
        let contributing = client_values.to_vec();
        return fingerprint_from_variants(vec![Variant { name: "custom".to_owned(), contributing }]);
    }
    // `{{ default }}` salts each default variant with the other values (Sentry: "default hash plus these").
    let salted = default_variants
        .into_iter()
        .map(|variant| {
            let mut contributing = Vec::new();
            for value in client_values {
                if is_default_marker(value) {
                    contributing.extend(variant.contributing.iter().cloned());
                } else {
                    contributing.push(value.clone());
                }
            }
            Variant { name: format!("custom_{}", variant.name), contributing }
        })
        .collect();
    fingerprint_from_variants(salted)
}

struct Variant {
    name: String,
    contributing: Vec<String>,
}

/// Distinct stacks whose default fingerprint a thread remembers (≈ 1–3 KB each with its key);
/// beyond it the memory starts over.
const MEMO_ENTRIES: usize = 512;

thread_local! {
    static STACK_FINGERPRINTS: RefCell<FingerprintMemo> = RefCell::default();
}

/// What a default stack fingerprint is made of, owned: the platform, the exception type and,
/// per frame, exactly the fields [`default_variants`] reads (in-app flag, module, function,
/// file). Line numbers, columns and source lines do not group, so they are not part of it.
#[derive(PartialEq)]
struct StackKey {
    platform: Platform,
    exception_type: String,
    frames: Vec<FrameKey>,
}

#[derive(PartialEq)]
struct FrameKey {
    in_app: bool,
    module: Option<String>,
    function: Option<String>,
    filename: Option<String>,
}

impl StackKey {
    fn of(input: &GroupingInput<'_>) -> Self {
        let frames = input
            .frames
            .iter()
            .map(|frame| FrameKey {
                in_app: frame.in_app,
                module: frame.module.clone(),
                function: frame.function.clone(),
                filename: frame.filename.clone(),
            })
            .collect();
        Self { platform: input.platform, exception_type: input.exception_type.to_owned(), frames }
    }

    fn matches(&self, input: &GroupingInput<'_>) -> bool {
        self.platform == input.platform
            && self.exception_type == input.exception_type
            && self.frames.len() == input.frames.len()
            && self.frames.iter().zip(input.frames).all(|(key, frame)| {
                key.in_app == frame.in_app
                    && key.module == frame.module
                    && key.function == frame.function
                    && key.filename == frame.filename
            })
    }

    /// Hash of the same fields [`StackKey::matches`] compares, read from the input (foldhash,
    /// seeded per thread: the frames come from clients).
    fn hash_of(state: &foldhash::fast::RandomState, input: &GroupingInput<'_>) -> u64 {
        let mut hasher = state.build_hasher();
        input.platform.hash(&mut hasher);
        input.exception_type.hash(&mut hasher);
        input.frames.len().hash(&mut hasher);
        for frame in input.frames {
            frame.in_app.hash(&mut hasher);
            frame.module.hash(&mut hasher);
            frame.function.hash(&mut hasher);
            frame.filename.hash(&mut hasher);
        }
        hasher.finish()
    }
}

/// Default fingerprints of stacks seen by this thread: key hash → (key, fingerprint).
#[derive(Default)]
struct FingerprintMemo {
    state: foldhash::fast::RandomState,
    entries: HashMap<u64, Vec<(StackKey, Fingerprint)>>,
    len: usize,
}

impl FingerprintMemo {
    /// The default fingerprint of `input` (which has no client fingerprint). Only stack
    /// fingerprints are remembered: without contributing frames the message groups, and it
    /// differs from event to event.
    fn fingerprint(&mut self, input: &GroupingInput<'_>) -> Fingerprint {
        let hash = StackKey::hash_of(&self.state, input);
        if let Some(found) =
            self.entries.get(&hash).and_then(|entries| entries.iter().find(|(key, _)| key.matches(input)))
        {
            return found.1.clone();
        }
        let computed = fingerprint_from_variants(default_variants(input));
        if matches!(computed.variant.as_str(), "app" | "system") {
            if self.len >= MEMO_ENTRIES {
                self.entries.clear();
                self.len = 0;
            }
            self.entries.entry(hash).or_default().push((StackKey::of(input), computed.clone()));
            self.len += 1;
        }
        computed
    }
}

fn is_default_marker(value: &str) -> bool {
    let compact: String = value.chars().filter(|character| !character.is_whitespace()).collect();
    compact.eq_ignore_ascii_case("{{default}}")
}

/// Stack trace variants ("app" then "system"), or the exception / message variant when no frame contributes.
fn default_variants(input: &GroupingInput<'_>) -> Vec<Variant> {
    let mut variants = Vec::new();
    let grouped_frames: Vec<&StackFrame> =
        input.frames.iter().filter(|frame| !is_hidden_from_grouping(input.platform, frame)).collect();
    let type_value: Vec<String> =
        if input.exception_type.is_empty() { Vec::new() } else { vec![input.exception_type.to_owned()] };

    // Each frame's component once, with its in-app flag: the "app" variant is the in-app subset of
    // the "system" one.
    let components: Vec<(bool, String)> = grouped_frames
        .iter()
        .filter_map(|frame| frame_component(input.platform, frame).map(|component| (frame.in_app, component)))
        .collect();
    let app_components: Vec<String> =
        components.iter().filter(|(in_app, _)| *in_app).map(|(_, component)| component.clone()).collect();
    if !app_components.is_empty() {
        variants.push(Variant { name: "app".to_owned(), contributing: [type_value.clone(), app_components].concat() });
    }
    let system_components: Vec<String> = components.into_iter().map(|(_, component)| component).collect();
    if !system_components.is_empty() {
        variants.push(Variant { name: "system".to_owned(), contributing: [type_value, system_components].concat() });
    }
    if !variants.is_empty() {
        return variants;
    }
    let mut message = input.message.to_owned();
    truncate_to_boundary(&mut message, MAX_MESSAGE_BYTES);
    let normalized_message = normalize_message(message.trim());
    if input.exception_type.is_empty() {
        vec![Variant { name: "message".to_owned(), contributing: vec![normalized_message] }]
    } else {
        vec![Variant {
            name: "exception".to_owned(),
            contributing: vec![input.exception_type.to_owned(), normalized_message],
        }]
    }
}

/// sentry-go `filterFrames`: Go's `runtime` and `testing` frames (and the `runtime/debug` dump itself) are
/// never reported, so they never contribute.
fn is_hidden_from_grouping(platform: Platform, frame: &StackFrame) -> bool {
    platform == Platform::Go && matches!(frame.module.as_deref(), Some("runtime" | "testing" | "runtime/debug"))
}

/// One frame's contribution: where (module, or JS file basename, or file basename) and which function.
fn frame_component(platform: Platform, frame: &StackFrame) -> Option<String> {
    let location = match platform {
        Platform::JavaScript => frame.filename.as_deref().and_then(javascript_file_component),
        _ => frame
            .module
            .as_deref()
            .map(|module| clean_module(platform, module))
            .filter(|module| !module.is_empty())
            .or_else(|| frame.filename.as_deref().map(|filename| basename(filename).to_lowercase())),
    };
    let function = frame.function.as_deref().and_then(|function| clean_function(platform, function));
    if location.is_none() && function.is_none() {
        return None;
    }
    Some(format!("{} {}", location.as_deref().unwrap_or("?"), function.as_deref().unwrap_or("?")))
}

fn fingerprint_from_variants(variants: Vec<Variant>) -> Fingerprint {
    let mut hashes: Vec<String> = Vec::new();
    for variant in &variants {
        let hash = md5_hex(&variant.contributing);
        if !hashes.contains(&hash) {
            hashes.push(hash);
        }
    }
    let mut variants = variants.into_iter();
    let primary = variants.next().unwrap_or(Variant { name: "message".to_owned(), contributing: Vec::new() });
    let primary_hash = hashes.first().cloned().unwrap_or_else(|| md5_hex(&[]));
    if hashes.is_empty() {
        hashes.push(primary_hash.clone());
    }
    Fingerprint { primary_hash, hashes, variant: primary.name, contributing: primary.contributing }
}

/// MD5 (Sentry's grouping hash) of the values joined by [`VALUE_SEPARATOR`], as 32 lowercase hex digits.
fn md5_hex(values: &[String]) -> String {
    let mut hasher = Md5::new();
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            hasher.update(VALUE_SEPARATOR.as_bytes());
        }
        hasher.update(value.as_bytes());
    }
    const_hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(module: &str, function: &str, in_app: bool) -> StackFrame {
        StackFrame {
            module: Some(module.to_owned()),
            function: Some(function.to_owned()),
            in_app,
            ..StackFrame::default()
        }
    }

    fn input<'a>(frames: &'a [StackFrame], message: &'a str) -> GroupingInput<'a> {
        GroupingInput {
            platform: Platform::Python,
            exception_type: "ValueError",
            message,
            frames,
            client_fingerprint: None,
        }
    }

    fn fresh(input: &GroupingInput<'_>) -> Fingerprint {
        fingerprint_from_variants(default_variants(input))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Stacks drawn from a few names, so that many share all but one field: the remembered
        /// fingerprint must always be the one computed afresh, in any order of calls.
        #[test]
        fn remembered_fingerprints_equal_fresh_ones(
            stacks in proptest::collection::vec(
                (
                    0..3usize,
                    proptest::collection::vec(
                        (proptest::prelude::any::<bool>(), 0..3usize, 0..3usize, 0..3usize, 0..4u32),
                        0..4,
                    ),
                ),
                1..12,
            ),
            platform in proptest::sample::select(vec![Platform::Python, Platform::JavaScript, Platform::Go]),
        ) {
            const NAMES: [Option<&str>; 3] = [None, Some("runtime"), Some("shop/cart.js")];
            const FUNCTIONS: [Option<&str>; 3] = [None, Some("add"), Some("<lambda>")];
            let stacks: Vec<(&str, Vec<StackFrame>)> = stacks
                .into_iter()
                .map(|(exception_type, frames)| {
                    let frames = frames
                        .into_iter()
                        .map(|(in_app, module, function, filename, line)| StackFrame {
                            in_app,
                            module: NAMES[module].map(str::to_owned),
                            function: FUNCTIONS[function].map(str::to_owned),
                            filename: NAMES[filename].map(str::to_owned),
                            lineno: Some(line),
                            ..StackFrame::default()
                        })
                        .collect();
                    (["", "ValueError", "TypeError"][exception_type], frames)
                })
                .collect();
            for _ in 0..2 {
                for (message, (exception_type, frames)) in ["a 1", "b 2"].iter().cycle().zip(&stacks) {
                    let input = GroupingInput { platform, exception_type, message, frames, client_fingerprint: None };
                    proptest::prop_assert_eq!(fingerprint(&input), fresh(&input));
                }
            }
        }
    }

    #[test]
    fn the_remembered_fingerprints_stay_bounded() {
        for index in 0..(MEMO_ENTRIES + 10) {
            let frames = [frame(&format!("shop.module{index}"), "add", true)];
            let input = input(&frames, "x");
            assert_eq!(fingerprint(&input), fresh(&input));
        }
        STACK_FINGERPRINTS.with_borrow(|memo| {
            assert!(memo.len <= MEMO_ENTRIES, "{} remembered", memo.len);
            assert_eq!(memo.len, memo.entries.values().map(Vec::len).sum::<usize>());
        });
    }

    #[test]
    fn app_variant_first_then_system() {
        let frames = [frame("shop.cart", "add", true), frame("json.decoder", "decode", false)];
        let result = fingerprint(&input(&frames, "x"));
        assert_eq!(result.variant, "app");
        assert_eq!(result.contributing, vec!["ValueError", "shop.cart add"]);
        assert_eq!(result.hashes.len(), 2);
        assert_eq!(result.primary_hash, result.hashes[0]);
        assert_eq!(result.primary_hash.len(), 32);
    }

    #[test]
    fn no_in_app_frames_uses_system_and_no_frames_uses_the_message() {
        let frames = [frame("json.decoder", "decode", false)];
        assert_eq!(fingerprint(&input(&frames, "x")).variant, "system");
        let result = fingerprint(&input(&[], "order 1042 failed"));
        assert_eq!(result.variant, "exception");
        assert_eq!(result.contributing, vec!["ValueError", "order <int> failed"]);
        let no_type = GroupingInput { exception_type: "", ..input(&[], "order 7 failed") };
        let result = fingerprint(&no_type);
        assert_eq!(
            (result.variant.as_str(), result.contributing.clone()),
            ("message", vec!["order <int> failed".to_owned()])
        );
    }

    #[test]
    fn hashes_are_known_md5() {
        // md5("") — the separator is only between values.
        assert_eq!(md5_hex(&[]), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(&["abc".to_owned()]), "900150983cd24fb0d6963f7d28e17f72");
    }
}
