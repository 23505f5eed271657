//! The runtime a stack trace comes from, named from OTel's `telemetry.sdk.language` or detected from text.

use serde::{Deserialize, Serialize};

/// The runtime (and so the stack trace format and grouping rules) an exception comes from.
///
/// Serialized in snake_case as one word per runtime: `python`, `javascript`, `java`, `go`, `rust`,
/// `dotnet`, `other` (the spellings `java_script` and `dot_net` are accepted when reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// CPython tracebacks.
    Python,
    /// V8 (Node.js, Chrome), SpiderMonkey (Firefox) and JavaScriptCore (Safari) `error.stack`.
    #[serde(rename = "javascript", alias = "java_script")]
    JavaScript,
    /// JVM `Throwable.printStackTrace` (Java, Kotlin, Scala).
    Java,
    /// Go panics and `runtime/debug.Stack()` dumps.
    Go,
    /// Rust panics with `std::backtrace` output, and `anyhow`/`eyre` error reports.
    Rust,
    /// .NET `Exception.ToString()` (CoreCLR and Mono).
    #[serde(rename = "dotnet", alias = "dot_net")]
    DotNet,
    /// Unknown; [`crate::parse_stacktrace`] detects the format from the text.
    Other,
}

impl Platform {
    /// Maps the OTel resource attribute `telemetry.sdk.language` (semantic conventions: `cpp`, `dotnet`,
    /// `erlang`, `go`, `java`, `nodejs`, `php`, `python`, `ruby`, `rust`, `swift`, `webjs`) to a
    /// platform; case-insensitive; unknown values give [`Platform::Other`].
    pub fn from_telemetry_sdk_language(lang: &str) -> Platform {
        match lang.trim().to_ascii_lowercase().as_str() {
            "python" => Platform::Python,
            "nodejs" | "webjs" | "javascript" | "js" | "node" => Platform::JavaScript,
            "java" | "kotlin" | "scala" => Platform::Java,
            "go" | "golang" => Platform::Go,
            "rust" => Platform::Rust,
            "dotnet" | "csharp" | ".net" => Platform::DotNet,
            _ => Platform::Other,
        }
    }

    /// Sentry's platform name for this runtime (`python`, `javascript`, `java`, `go`, `rust`, `csharp`,
    /// `other`), for display and for the API.
    pub fn sentry_name(self) -> &'static str {
        match self {
            Platform::Python => "python",
            Platform::JavaScript => "javascript",
            Platform::Java => "java",
            Platform::Go => "go",
            Platform::Rust => "rust",
            Platform::DotNet => "csharp",
            Platform::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_semconv_language_sightline_groups() {
        assert_eq!(Platform::from_telemetry_sdk_language("python"), Platform::Python);
        assert_eq!(Platform::from_telemetry_sdk_language("nodejs"), Platform::JavaScript);
        assert_eq!(Platform::from_telemetry_sdk_language("webjs"), Platform::JavaScript);
        assert_eq!(Platform::from_telemetry_sdk_language("java"), Platform::Java);
        assert_eq!(Platform::from_telemetry_sdk_language("go"), Platform::Go);
        assert_eq!(Platform::from_telemetry_sdk_language("Rust"), Platform::Rust);
        assert_eq!(Platform::from_telemetry_sdk_language("dotnet"), Platform::DotNet);
        assert_eq!(Platform::from_telemetry_sdk_language("erlang"), Platform::Other);
        assert_eq!(Platform::from_telemetry_sdk_language(""), Platform::Other);
    }

    #[test]
    fn serializes_in_snake_case() {
        let json =
            serde_json::to_string(&[Platform::Python, Platform::JavaScript, Platform::DotNet]).expect("serializes");
        assert_eq!(json, r#"["python","javascript","dotnet"]"#);
    }
}
