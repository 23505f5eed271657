//! Types of the source-map part of the store: JavaScript source maps uploaded per project and
//! release (Sentry's release artifacts), and how a stack frame's file finds its map.

use serde::Serialize;

/// One source map to store, as uploaded.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceMapUpload {
    /// Name it was uploaded under: the minified file's URL or path, with or without `.map`
    /// (`https://cdn.example.com/static/js/main.3f2a1b.js.map`, `main.3f2a1b.js`).
    pub name: String,
    /// The source map JSON, already validated.
    pub content: Vec<u8>,
}

/// A stored source map without its content (upload and list answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceMapInfo {
    /// Name it was uploaded under.
    pub name: String,
    /// Base name of the minified file it applies to (see [`minified_file_key`]).
    pub file: String,
    /// Size of the map, bytes.
    pub size_bytes: u64,
    /// Upload time, ms since the Unix epoch.
    pub uploaded_at_unix_ms: i64,
}

/// A stored source map with its content, found for a minified file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSourceMap {
    /// Name it was uploaded under.
    pub name: String,
    /// The source map JSON.
    pub content: Vec<u8>,
}

/// The key a minified file and its map meet on: the last path segment of a URL or path, without
/// query string or fragment, and without a trailing `.map`.
///
/// `https://cdn.example.com/static/js/main.3f2a1b.js.map`, `main.3f2a1b.js.map`,
/// `/srv/app/dist/main.3f2a1b.js?v=2` and `C:\app\main.3f2a1b.js` all give `main.3f2a1b.js`.
/// Matching on the base name (not the full URL) lets one upload serve every host and path the
/// bundle is served from (CDN, staging, `file://`), as `~/` names do in Sentry's release files.
pub fn minified_file_key(name_or_url: &str) -> &str {
    let without_fragment = name_or_url.split('#').next().unwrap_or("");
    let without_query = without_fragment.split('?').next().unwrap_or("");
    let base_name = without_query.rsplit(['/', '\\']).next().unwrap_or("");
    base_name.strip_suffix(".map").unwrap_or(base_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_urls_and_paths_meet_on_the_base_name() {
        for name in [
            "https://cdn.example.com/static/js/main.3f2a1b.js.map",
            "main.3f2a1b.js.map",
            "main.3f2a1b.js",
            "/srv/app/dist/main.3f2a1b.js?v=2#top",
            "C:\\app\\main.3f2a1b.js",
            "~/static/js/main.3f2a1b.js",
        ] {
            assert_eq!(minified_file_key(name), "main.3f2a1b.js", "{name}");
        }
        assert_eq!(minified_file_key("https://cdn.example.com/"), "");
    }
}
