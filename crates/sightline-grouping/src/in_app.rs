//! Which frames are application code ("in-app"): project prefixes first, then per-platform defaults that
//! follow the Sentry SDKs' `in_app_exclude` defaults and Sentry's built-in grouping enhancements.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::frame::StackFrame;
use crate::parse::rust_crate_of;
use crate::platform::Platform;

/// A project's in-app rules, as in Sentry SDK options `in_app_include` / `in_app_exclude`.
///
/// A prefix matches the start of a frame's `module` (`com.acme.`, `github.com/acme/`, `myapp.`,
/// `my_crate::`) or of its `filename` (`/srv/app/`, `https://cdn.acme.com/static/`). `include_prefixes` win
/// over `exclude_prefixes` (sentry-python checks include first), and both win over the platform defaults.
/// [`InAppRules::default`] has no project prefixes: defaults only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InAppRules {
    /// Prefixes that force a frame in-app.
    #[serde(default)]
    pub include_prefixes: Vec<String>,
    /// Prefixes that force a frame not in-app.
    #[serde(default)]
    pub exclude_prefixes: Vec<String>,
}

/// Python: installed packages and the standard library (`.../lib/python3.11/`, Windows `...\Lib\`).
static PYTHON_LIBRARY_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[/\\])(?:site-packages|dist-packages|lib[/\\]python\d+(?:\.\d+)?|Lib)[/\\]")
        .expect("python library path regex compiles")
});

/// JVM packages of the platform and of widespread frameworks (Sentry grouping enhancements for `family:jvm`).
const JVM_LIBRARY_PACKAGES: &[&str] = &[
    "java.",
    "javax.",
    "jdk.",
    "sun.",
    "com.sun.",
    "kotlin.",
    "kotlinx.",
    "scala.",
    "groovy.",
    "org.codehaus.groovy.",
    "jakarta.",
    "android.",
    "androidx.",
    "dalvik.",
    "com.android.",
    "org.springframework.",
    "org.apache.",
    "org.hibernate.",
    "org.eclipse.jetty.",
    "io.netty.",
    "reactor.",
    "io.reactivex.",
    "com.fasterxml.",
    "com.google.",
    "org.slf4j.",
    "ch.qos.logback.",
    "io.micrometer.",
    "io.opentelemetry.",
    "org.junit.",
    "okhttp3.",
    "io.sentry.",
];

/// Rust crates of the toolchain and of the runtime/error crates sentry-backtrace treats as system frames.
const RUST_LIBRARY_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "__rustc",
    "backtrace",
    "tokio",
    "futures",
    "futures_util",
    "futures_core",
    "anyhow",
    "eyre",
    "color_eyre",
    "log",
    "tracing",
    "tracing_core",
    "panic_unwind",
    "rust_begin_unwind",
    "sentry",
    "sentry_core",
];

/// Symbols of the C runtime that wrap a Rust program (`_start`, `__libc_start_main`, the C `main` shim).
const NATIVE_RUNTIME_SYMBOLS: &[&str] = &[
    "main",
    "_start",
    "<unknown>",
    "__libc_start_main",
    "__libc_start_call_main",
    "__libc_start_main_impl",
    "start_thread",
    "clone",
    "clone3",
];

/// .NET framework namespaces.
const DOTNET_LIBRARY_NAMESPACES: &[&str] = &["System.", "Microsoft.", "Mono.", "Internal."];

impl InAppRules {
    /// Rules that force these prefixes in-app.
    pub fn including<I: IntoIterator<Item = S>, S: Into<String>>(prefixes: I) -> InAppRules {
        InAppRules { include_prefixes: prefixes.into_iter().map(Into::into).collect(), exclude_prefixes: Vec::new() }
    }

    /// Sets `in_app` on every frame of one exception: project prefixes first, then the platform's
    /// defaults (everything not recognized as a library or runtime frame is in-app).
    pub fn apply(&self, platform: Platform, frames: &mut [StackFrame]) {
        for frame in frames {
            frame.in_app = self.is_in_app(platform, frame);
        }
    }

    /// Whether one frame is in-app under these rules (see [`InAppRules::apply`]).
    pub fn is_in_app(&self, platform: Platform, frame: &StackFrame) -> bool {
        if matches_any_prefix(&self.include_prefixes, frame) {
            return true;
        }
        if matches_any_prefix(&self.exclude_prefixes, frame) {
            return false;
        }
        !is_library_frame(platform, frame)
    }
}

fn matches_any_prefix(prefixes: &[String], frame: &StackFrame) -> bool {
    prefixes.iter().filter(|prefix| !prefix.is_empty()).any(|prefix| {
        frame.module.as_deref().is_some_and(|module| module.starts_with(prefix.as_str()))
            || frame.filename.as_deref().is_some_and(|filename| filename.starts_with(prefix.as_str()))
    })
}

/// The platform defaults: frames from the standard library, installed dependencies and runtimes.
fn is_library_frame(platform: Platform, frame: &StackFrame) -> bool {
    let module = frame.module.as_deref().unwrap_or("");
    let filename = frame.filename.as_deref().unwrap_or("");
    match platform {
        Platform::Python => PYTHON_LIBRARY_PATH.is_match(filename) || filename.starts_with("<frozen "),
        Platform::JavaScript => is_javascript_library_file(filename),
        Platform::Java => JVM_LIBRARY_PACKAGES.iter().any(|package| module.starts_with(package)),
        Platform::Go => is_go_library_frame(module, filename),
        Platform::Rust => is_rust_library_frame(frame, module, filename),
        Platform::DotNet => {
            module == "System" || DOTNET_LIBRARY_NAMESPACES.iter().any(|namespace| module.starts_with(namespace))
        }
        Platform::Other => false,
    }
}

/// `node_modules`, Node's own modules (`node:internal/...`, pre-v16 `internal/...`), V8 natives and
/// webpack's runtime. A frame without a file is native code.
fn is_javascript_library_file(filename: &str) -> bool {
    filename.is_empty()
        || filename.contains("/node_modules/")
        || filename.contains("\\node_modules\\")
        || filename.starts_with("node:")
        || filename.starts_with("internal/")
        || matches!(filename, "<anonymous>" | "native" | "[native code]")
        || filename.starts_with("webpack/bootstrap")
        || filename.starts_with("webpack:///webpack/")
        || filename.starts_with("webpack:///node_modules/")
}

/// Go: the standard library (a package path whose first element has no dot, except `main`), module
/// cache and vendored dependencies, and files under a Go installation (sentry-go: `GOROOT` prefix).
fn is_go_library_frame(module: &str, filename: &str) -> bool {
    let first_element = module.split('/').next().unwrap_or("");
    let standard_library = !module.is_empty() && !first_element.contains('.') && first_element != "main";
    standard_library
        || filename.contains("/go/pkg/mod/")
        || filename.contains("/vendor/")
        || filename.contains("/usr/local/go/src/")
        || filename.contains("/usr/lib/go-")
        || filename.contains("/usr/lib/go/src/")
        || filename.contains("/go/src/runtime/")
}

fn is_rust_library_frame(frame: &StackFrame, module: &str, filename: &str) -> bool {
    if filename.contains("/rustc/") || filename.contains(".cargo/registry") || filename.contains(".cargo/git") {
        return true;
    }
    if module.is_empty() {
        let function = frame.function.as_deref().unwrap_or("");
        return NATIVE_RUNTIME_SYMBOLS.contains(&function)
            || function.starts_with("__rust")
            || function.starts_with("___rust")
            || function.starts_with("rust_")
            || RUST_LIBRARY_CRATES.contains(&rust_crate_of(function));
    }
    // `<u32 as core::iter::Sum>`: a primitive self type has no crate; the trait's crate decides.
    let crate_name = match module.trim_start_matches('<').split_once(" as ") {
        Some((self_type, trait_path)) if !self_type.contains("::") => rust_crate_of(trait_path),
        _ => rust_crate_of(module),
    };
    RUST_LIBRARY_CRATES.contains(&crate_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(module: Option<&str>, filename: Option<&str>) -> StackFrame {
        StackFrame {
            module: module.map(str::to_owned),
            filename: filename.map(str::to_owned),
            function: Some("f".to_owned()),
            ..StackFrame::default()
        }
    }

    #[test]
    fn platform_defaults() {
        let rules = InAppRules::default();
        let cases = [
            (
                Platform::Python,
                frame(Some("requests.api"), Some("/venv/lib/python3.12/site-packages/requests/api.py")),
                false,
            ),
            (Platform::Python, frame(Some("shop.cart"), Some("/srv/shop/cart.py")), true),
            (Platform::JavaScript, frame(None, Some("/app/node_modules/express/lib/router.js")), false),
            (Platform::JavaScript, frame(None, Some("node:internal/modules/cjs/loader")), false),
            (Platform::JavaScript, frame(None, Some("https://cdn.acme.com/main.3f2a1b.js")), true),
            (Platform::Java, frame(Some("org.springframework.web.Servlet"), None), false),
            (Platform::Java, frame(Some("com.acme.shop.Checkout"), None), true),
            (Platform::Go, frame(Some("net/http"), None), false),
            (Platform::Go, frame(Some("main"), None), true),
            (
                Platform::Go,
                frame(Some("github.com/lib/pq"), Some("/root/go/pkg/mod/github.com/lib/pq@v1.10.9/conn.go")),
                false,
            ),
            (Platform::Go, frame(Some("github.com/acme/shop"), Some("/srv/shop/main.go")), true),
            (Platform::Rust, frame(Some("tokio::runtime"), None), false),
            (Platform::Rust, frame(Some("<u32 as core::iter::traits::accum::Sum>"), None), false),
            (Platform::Rust, frame(Some("shop::Inventory"), Some("./src/main.rs")), true),
            (
                Platform::Rust,
                frame(Some("serde_json::de"), Some("/root/.cargo/registry/src/x/serde_json-1.0/src/de.rs")),
                false,
            ),
            (Platform::DotNet, frame(Some("System.Number"), None), false),
            (Platform::DotNet, frame(Some("Acme.Orders.OrderService"), None), true),
        ];
        for (platform, frame, expected) in cases {
            assert_eq!(rules.is_in_app(platform, &frame), expected, "{platform:?} {frame:?}");
        }
    }

    #[test]
    fn project_prefixes_win_include_first() {
        let rules = InAppRules {
            include_prefixes: vec!["org.springframework.acme.".to_owned(), "com.acme.".to_owned()],
            exclude_prefixes: vec!["com.acme.generated.".to_owned(), "org.springframework.".to_owned()],
        };
        assert!(rules.is_in_app(Platform::Java, &frame(Some("org.springframework.acme.Patch"), None)));
        assert!(rules.is_in_app(Platform::Java, &frame(Some("com.other.Thing"), Some("x"))));
        let excluded =
            InAppRules { include_prefixes: vec![], exclude_prefixes: vec!["com.acme.generated.".to_owned()] };
        assert!(!excluded.is_in_app(Platform::Java, &frame(Some("com.acme.generated.Dto"), None)));
        let by_path = InAppRules::including(["/app/vendor/acme/"]);
        assert!(by_path.is_in_app(Platform::Go, &frame(Some("github.com/acme/lib"), Some("/app/vendor/acme/lib.go"))));
    }
}
