//! Cleaning of function names, modules and JavaScript file names for grouping, so that compiler- and
//! bundler-generated noise (closure numbers, generic arguments, symbol hashes, content hashes) does not
//! split one bug into many groups. Follows Sentry's `trim_function_name` / `get_function_component` and
//! the JavaScript filename rules of its grouping strategies.

use std::sync::LazyLock;

use regex::Regex;

use crate::platform::Platform;

/// Function names that mean "anonymous or top-level code" and so contribute nothing.
const ANONYMOUS_FUNCTIONS: &[&str] =
    &["", "?", "<anonymous>", "Object.<anonymous>", "anonymous", "global code", "module code", "eval code", "eval"];

static JS_ALIAS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r" \[as [^\]]*\]$").expect("alias regex compiles"));
static JVM_LAMBDA_INDEX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\d+$").expect("jvm lambda index regex compiles"));
static JVM_GENERATED_CLASS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\$\$Lambda(?:\$\d+)?(?:/0x[0-9a-fA-F]+)?|\$\$(?P<cglib>(?:EnhancerBy|FastClassBy)\w*?CGLIB|SpringCGLIB)\$\$[0-9a-fA-F]+|\$Proxy\d+|(?P<accessor>Generated(?:Serialization)?(?:Method|Constructor)Accessor)\d+|\$\d+",
    )
    .expect("jvm generated class regex compiles")
});
static GO_CLOSURE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"func\d+(?:\.\d+)*").expect("go closure regex compiles"));
static BRACKETED_GENERICS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[[^\[\]]*\]").expect("bracketed generics regex compiles"));
static RUST_HASHES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"::h[0-9a-f]{16}$|\[[0-9a-f]{1,16}\]").expect("rust hash regex compiles"));
static RUST_CLOSURE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{closure#\d+\}|\{\{closure\}\}").expect("rust closure regex compiles"));
static DOTNET_GENERATED_NUMBERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?P<kind>__DisplayClass|b__|d__|c__)\d+(?:_\d+)?|`\d+").expect("dotnet generated regex compiles")
});

/// A function name as it contributes to a fingerprint, `None` when it is anonymous.
///
/// Removes per platform: JS `new ` / `async ` prefixes, ` [as alias]`, Firefox `/<` markers and anonymous
/// markers (`Object.<anonymous>`, `global code`); Go generic `[...]` and closure numbers (`func1.2` →
/// `func`); Rust symbol hashes (`::h3b2c...`), crate disambiguators, turbofish generics (`::<T>`) and
/// closure indices (`{closure#0}` → `{{closure}}`); JVM lambda indices (`lambda$run$0` → `lambda$run`);
/// .NET generic arguments (`[TChar]`) and compiler numbering (`<M>b__0_1` → `<M>b__`).
pub(crate) fn clean_function(platform: Platform, function: &str) -> Option<String> {
    let trimmed = function.trim();
    let cleaned = match platform {
        Platform::JavaScript => clean_javascript_function(trimmed),
        Platform::Go => GO_CLOSURE.replace_all(&BRACKETED_GENERICS.replace_all(trimmed, ""), "func").into_owned(),
        Platform::Rust => clean_rust_path(trimmed),
        // Every pattern below needs its trigger character: most names have none and skip the regex.
        Platform::Java if !trimmed.contains('$') => trimmed.to_owned(),
        Platform::Java => JVM_LAMBDA_INDEX.replace(trimmed, "").into_owned(),
        Platform::DotNet => clean_dotnet_name(trimmed),
        Platform::Python | Platform::Other => trimmed.to_owned(),
    };
    (!ANONYMOUS_FUNCTIONS.contains(&cleaned.as_str())).then_some(cleaned)
}

/// A module as it contributes to a fingerprint: JVM generated classes (`$$Lambda$14/0x...`, CGLIB
/// proxies, `$Proxy12`, anonymous `$1`) lose their numbers, Rust paths their hashes and closure indices,
/// .NET types their compiler numbering.
pub(crate) fn clean_module(platform: Platform, module: &str) -> String {
    let trimmed = module.trim();
    match platform {
        // Generated classes carry a `$` or are reflection `…Accessor<n>` classes.
        Platform::Java if !trimmed.contains('$') && !trimmed.contains("Accessor") => trimmed.to_owned(),
        Platform::Java => JVM_GENERATED_CLASS
            .replace_all(trimmed, |captures: &regex::Captures<'_>| {
                if let Some(cglib) = captures.name("cglib") {
                    format!("$${}", cglib.as_str())
                } else if let Some(accessor) = captures.name("accessor") {
                    accessor.as_str().to_owned()
                } else if captures[0].starts_with("$$Lambda") {
                    "$$Lambda".to_owned()
                } else if captures[0].starts_with("$Proxy") {
                    "$Proxy".to_owned()
                } else {
                    "$".to_owned()
                }
            })
            .into_owned(),
        Platform::Rust => clean_rust_path(trimmed),
        Platform::DotNet => clean_dotnet_name(trimmed),
        _ => trimmed.to_owned(),
    }
}

fn clean_javascript_function(function: &str) -> String {
    let mut name =
        if function.ends_with(']') { JS_ALIAS.replace(function, "").into_owned() } else { function.to_owned() };
    for prefix in ["async ", "new "] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest.to_owned();
        }
    }
    // Firefox names anonymous inner functions `outer/<` (and `outer/<.inner`); drop the marker.
    let name = name.trim_end_matches(['<', '/']).replace("/<", "");
    name.trim().to_owned()
}

fn clean_rust_path(path: &str) -> String {
    let without_hashes = RUST_HASHES.replace_all(path, "");
    let closures = RUST_CLOSURE.replace_all(&without_hashes, "{{closure}}");
    strip_turbofish(&closures)
}

/// Removes `::<...>` generic arguments (balanced), keeping `<X as Trait>` qualifiers.
fn strip_turbofish(path: &str) -> String {
    let mut result = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(start) = rest.find("::<") {
        result.push_str(&rest[..start]);
        let mut depth = 0usize;
        let mut end = rest.len();
        for (offset, character) in rest[start + 2..].char_indices() {
            match character {
                '<' => depth += 1,
                '>' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = start + 2 + offset + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    result.push_str(rest);
    result
}

fn clean_dotnet_name(name: &str) -> String {
    let without_generics = BRACKETED_GENERICS.replace_all(name, "");
    DOTNET_GENERATED_NUMBERS
        .replace_all(&without_generics, |captures: &regex::Captures<'_>| {
            captures.name("kind").map_or(String::new(), |kind| kind.as_str().to_owned())
        })
        .into_owned()
}

/// The last path component of a path or URL, without query string or fragment.
pub(crate) fn basename(path: &str) -> &str {
    let without_query = path.split(['?', '#']).next().unwrap_or(path);
    let without_trailing_slash = without_query.trim_end_matches(['/', '\\']);
    without_trailing_slash.rsplit(['/', '\\']).next().unwrap_or(without_trailing_slash)
}

/// A JavaScript file as it contributes to a fingerprint: the lower-cased basename without query string,
/// fragment or bundler content hash (`main.3f2a1b9c.js` → `main.js`, `index-BxK2aQ9f.js` → `index.js`,
/// `app.3f2a1b.chunk.js` → `app.chunk.js`), so that a new deploy keeps its groups.
pub(crate) fn javascript_file_component(filename: &str) -> Option<String> {
    let name = basename(filename);
    if name.is_empty() {
        return None;
    }
    let mut segments: Vec<&str> = name.split('.').collect();
    if segments.len() > 2 {
        let last = segments.len() - 1;
        let kept: Vec<&str> = segments
            .iter()
            .enumerate()
            .filter(|(index, segment)| *index == 0 || *index == last || !is_content_hash(segment))
            .map(|(_, segment)| *segment)
            .collect();
        segments = kept;
    }
    if let Some(first) = segments.first_mut()
        && let Some((stem, suffix)) = first.rsplit_once('-')
        && suffix.len() == 8
        && is_content_hash(suffix)
        && !stem.is_empty()
    {
        *first = stem;
    }
    Some(segments.join(".").to_lowercase())
}

/// Webpack `[contenthash]` (hex, 6+ characters) or Vite/Rollup hashes (8+ base64url characters), which
/// always mix digits and letters in practice.
fn is_content_hash(segment: &str) -> bool {
    let has_digit = segment.chars().any(|character| character.is_ascii_digit());
    let hex = segment.len() >= 6 && segment.chars().all(|character| character.is_ascii_hexdigit());
    let base64url = segment.len() >= 8
        && segment.chars().all(|character| character.is_ascii_alphanumeric() || character == '_' || character == '-')
        && segment.chars().any(|character| character.is_ascii_alphabetic());
    has_digit && (hex || base64url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_function_names_per_platform() {
        let cases = [
            (Platform::JavaScript, "Object.<anonymous>", None),
            (Platform::JavaScript, "new WebhookEvent", Some("WebhookEvent")),
            (
                Platform::JavaScript,
                "Function.executeUserEntryPoint [as runMain]",
                Some("Function.executeUserEntryPoint"),
            ),
            (Platform::JavaScript, "onCheckoutClick/<", Some("onCheckoutClick")),
            (Platform::JavaScript, "global code", None),
            (Platform::Go, "First[...]", Some("First")),
            (Platform::Go, "tRunner.func1.2", Some("tRunner.func")),
            (Platform::Go, "(*Inventory).Reserve", Some("(*Inventory).Reserve")),
            (Platform::Rust, "reserve::{{closure}}::hd768cfbba8c0b148", Some("reserve::{{closure}}")),
            (Platform::Rust, "lang_start_internal::{closure#0}", Some("lang_start_internal::{{closure}}")),
            (Platform::Rust, "panic_display::<&str>", Some("panic_display")),
            (Platform::Java, "lambda$emailDomain$0", Some("lambda$emailDomain")),
            (Platform::DotNet, "ThrowFormatException[TChar]", Some("ThrowFormatException")),
            (Platform::DotNet, "<PlaceAllAsync>b__0", Some("<PlaceAllAsync>b__")),
            (Platform::Python, "<module>", Some("<module>")),
        ];
        for (platform, function, expected) in cases {
            assert_eq!(clean_function(platform, function).as_deref(), expected, "{platform:?} {function}");
        }
    }

    #[test]
    fn cleans_generated_modules() {
        assert_eq!(clean_module(Platform::Java, "com.acme.Api$$Lambda$14/0x0000000800c03000"), "com.acme.Api$$Lambda");
        assert_eq!(
            clean_module(Platform::Java, "com.acme.Service$$EnhancerBySpringCGLIB$$3f2a1b9c"),
            "com.acme.Service$$EnhancerBySpringCGLIB"
        );
        assert_eq!(clean_module(Platform::Java, "jdk.proxy2.$Proxy12"), "jdk.proxy2.$Proxy");
        assert_eq!(clean_module(Platform::Java, "com.acme.Checkout$1"), "com.acme.Checkout$");
        // No `$` at all: reflection accessors still lose their number; plain classes are untouched.
        assert_eq!(
            clean_module(Platform::Java, "jdk.internal.reflect.GeneratedMethodAccessor12"),
            "jdk.internal.reflect.GeneratedMethodAccessor"
        );
        assert_eq!(clean_module(Platform::Java, "com.acme.CheckoutService2"), "com.acme.CheckoutService2");
        assert_eq!(clean_function(Platform::Java, "charge2").as_deref(), Some("charge2"));
        assert_eq!(clean_function(Platform::Java, "lambda$charge$0").as_deref(), Some("lambda$charge"));
        assert_eq!(
            clean_module(Platform::DotNet, "Acme.Orders.OrderService.<>c__DisplayClass2_0"),
            "Acme.Orders.OrderService.<>c__DisplayClass"
        );
        assert_eq!(clean_module(Platform::Rust, "std[e28293b1aa0f68bd]::panicking"), "std::panicking");
    }

    #[test]
    fn strips_bundler_hashes_from_javascript_files() {
        let cases = [
            ("https://cdn.acme.com/static/js/main.3f2a1b9c.js?v=2#x", "main.js"),
            ("/srv/shop/static/js/main.8d41e07b.js", "main.js"),
            ("https://acme.com/assets/index-BxK2aQ9f.js", "index.js"),
            ("https://acme.com/js/App.3f2a1b.chunk.js", "app.chunk.js"),
            ("https://acme.com/js/vendor.min.js", "vendor.min.js"),
            ("node:internal/modules/cjs/loader", "loader"),
            ("/srv/shop/my-component.js", "my-component.js"),
        ];
        for (filename, expected) in cases {
            assert_eq!(javascript_file_component(filename).as_deref(), Some(expected), "{filename}");
        }
    }
}
