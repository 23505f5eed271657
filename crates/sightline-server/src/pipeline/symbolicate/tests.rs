//! Symbolication tests on real terser output: the bundles, maps and Node stack traces under
//! `crates/sightline/tests/fixtures/sourcemaps/` (see its `build.sh` for how they were made).

use std::sync::Arc;

use sightline_grouping::{ParsedException, Platform, StackFrame, parse_stacktrace};

use super::*;
use crate::store::sourcemaps::SourceMapUpload;
use crate::store::sqlite::SqliteStore;

const MAP_1_0_0: &[u8] =
    include_bytes!("../../../../sightline/tests/fixtures/sourcemaps/1.0.0/dist/main.1a2b3c4d.js.map");
const MAP_1_0_1: &[u8] =
    include_bytes!("../../../../sightline/tests/fixtures/sourcemaps/1.0.1/dist/main.9f8e7d6c.js.map");
const STACK_1_0_0: &str = include_str!("../../../../sightline/tests/fixtures/sourcemaps/1.0.0/node-stack.txt");
const STACK_1_0_1: &str = include_str!("../../../../sightline/tests/fixtures/sourcemaps/1.0.1/node-stack.txt");

fn loaded(name: &str, content: &[u8]) -> Arc<LoadedSourceMap> {
    let map = parse_source_map(content).expect("fixture map parses");
    Arc::new(LoadedSourceMap { name: name.to_owned(), map, size_bytes: content.len() })
}

fn parsed(stack: &str) -> Vec<ParsedException> {
    parse_stacktrace(stack, Some(Platform::JavaScript)).exceptions
}

/// (function, filename, line) of each frame, outermost first.
fn summary(frames: &[StackFrame]) -> Vec<(Option<&str>, Option<&str>, Option<u32>)> {
    frames.iter().map(|frame| (frame.function.as_deref(), frame.filename.as_deref(), frame.lineno)).collect()
}

#[test]
fn a_real_minified_node_stack_becomes_the_original_one() {
    let map = loaded("https://cdn.example.com/static/js/main.1a2b3c4d.js.map", MAP_1_0_0);
    let mut exceptions = parsed(STACK_1_0_0);
    let mut asked = Vec::new();
    let symbolication = symbolicate_exceptions(&mut exceptions, |file_key| {
        asked.push(file_key.to_owned());
        (file_key == "main.1a2b3c4d.js").then(|| map.clone())
    });
    assert_eq!(asked, ["main.1a2b3c4d.js"], "each file is looked up once per event");
    let frames = &exceptions[0].frames;
    let node_internals = frames.len() - 7;
    assert_eq!(
        summary(&frames[node_internals..]),
        [
            // Its caller is Node's loader (no map): the name stays as V8 printed it.
            (Some("Object.<anonymous>"), Some("src/app.js"), Some(18)),
            (Some("checkout"), Some("src/app.js"), Some(13)),
            (Some("renderCart"), Some("src/app.js"), Some(9)),
            (Some("Array.map"), Some("<anonymous>"), None),
            // An arrow function: anonymous in the source too.
            (None, Some("src/app.js"), Some(9)),
            (Some("formatPrice"), Some("src/app.js"), Some(5)),
            (Some("formatAmount"), Some("./node_modules/price-format/index.js"), Some(3)),
        ]
    );
    assert_eq!(symbolication.frames_symbolicated, 6);
    let crash_site = frames.last().expect("frames");
    assert_eq!(crash_site.colno, Some(23), "column of `amount` in `price.amount`, where V8 reports the failing access");
    assert_eq!(crash_site.context_line.as_deref(), Some("const units = price.amount / 100;"));

    let context = symbolication.source_context.last().expect("sourcesContent gives context");
    assert_eq!((context.exception_index, context.frame_index), (0, frames.len() - 1));
    assert_eq!(context.line, "  const units = price.amount / 100;");
    assert_eq!(
        context.pre_lines,
        ["// price-format: a stand-in for a dependency, bundled from node_modules.", "function formatAmount(price) {"]
    );
    assert_eq!(context.post_lines, ["  return units.toFixed(2) + \" \" + price.currency;", "}"]);
    let checkout = symbolication
        .source_context
        .iter()
        .find(|context| context.line.contains("renderCart(cart)"))
        .expect("checkout");
    assert_eq!(checkout.pre_lines.len(), 3);
    assert_eq!(checkout.post_lines.len(), 3);
}

#[test]
fn two_builds_with_different_minified_names_give_the_same_frames() {
    let first_build = parsed(STACK_1_0_0);
    let second_build = parsed(STACK_1_0_1);
    let minified_names = |exceptions: &[ParsedException]| -> Vec<Option<String>> {
        exceptions[0].frames.iter().map(|frame| frame.function.clone()).collect()
    };
    assert_ne!(minified_names(&first_build), minified_names(&second_build), "terser mangled differently");

    let mut symbolicated = Vec::new();
    for (mut exceptions, key, map) in [
        (first_build, "main.1a2b3c4d.js", loaded("main.1a2b3c4d.js.map", MAP_1_0_0)),
        (second_build, "main.9f8e7d6c.js", loaded("main.9f8e7d6c.js", MAP_1_0_1)),
    ] {
        symbolicate_exceptions(&mut exceptions, |file_key| (file_key == key).then(|| map.clone()));
        let frames: Vec<(Option<String>, Option<String>)> =
            exceptions[0].frames.iter().map(|frame| (frame.function.clone(), frame.filename.clone())).collect();
        symbolicated.push(frames);
    }
    assert_eq!(symbolicated[0], symbolicated[1]);
}

#[test]
fn frames_without_a_map_or_a_script_location_stay_as_sent() {
    let original = parsed(STACK_1_0_0);
    let mut exceptions = original.clone();
    let symbolication = symbolicate_exceptions(&mut exceptions, |_| None);
    assert_eq!(exceptions, original);
    assert_eq!(symbolication, Symbolication::default());

    // Positions the map has no mapping for (a line past the bundle's end) stay too.
    let mut beyond = parsed("TypeError: x\n    at n (https://cdn.example.com/static/js/main.1a2b3c4d.js:9:1)\n");
    let before = beyond.clone();
    let map = loaded("main.1a2b3c4d.js.map", MAP_1_0_0);
    assert_eq!(symbolicate_exceptions(&mut beyond, |_| Some(map.clone())).frames_symbolicated, 0);
    assert_eq!(beyond, before);
}

#[test]
fn work_per_event_is_bounded_and_innermost_frames_go_first() {
    let mut stack = String::from("RangeError: Maximum call stack size exceeded\n");
    for _ in 0..120 {
        stack.push_str("    at t (https://cdn.example.com/static/js/main.1a2b3c4d.js:1:96)\n");
    }
    let mut exceptions = parsed(&stack);
    assert_eq!(exceptions[0].frames.len(), 120);
    let map = loaded("main.1a2b3c4d.js.map", MAP_1_0_0);
    let mut lookups = 0;
    let symbolication = symbolicate_exceptions(&mut exceptions, |_| {
        lookups += 1;
        Some(map.clone())
    });
    assert_eq!(lookups, 1);
    assert_eq!(symbolication.frames_symbolicated, MAX_FRAMES_PER_EVENT);
    let frames = &exceptions[0].frames;
    assert!(frames[..120 - MAX_FRAMES_PER_EVENT].iter().all(|frame| {
        frame.filename.as_deref().is_some_and(|name| name.ends_with(".js") && name.starts_with("https://"))
    }));
    assert!(frames[120 - MAX_FRAMES_PER_EVENT..].iter().all(|frame| frame.filename.as_deref() == Some("src/app.js")));
}

#[test]
fn source_paths_are_made_readable() {
    assert_eq!(readable_source_path("webpack://shop/./src/cart.ts"), "./src/cart.ts");
    assert_eq!(readable_source_path("webpack:///src/cart.ts"), "src/cart.ts");
    assert_eq!(readable_source_path("webpack:///node_modules/react/index.js"), "./node_modules/react/index.js");
    assert_eq!(readable_source_path("node_modules/lodash/get.js"), "./node_modules/lodash/get.js");
    assert_eq!(readable_source_path("../src/app.js"), "../src/app.js");
    assert!(readable_source_path(&"a/".repeat(2000)).len() <= MAX_FIELD_BYTES);
}

#[test]
fn long_context_lines_are_cut_around_the_column() {
    let long_line: String = (0..1000).map(|index| char::from(b'a' + (index % 26) as u8)).collect();
    let cut = cut_around_column(&long_line, 500);
    assert!(cut.starts_with("{snip} ") && cut.ends_with(" {snip}"), "{cut}");
    assert_eq!(cut.chars().count(), MAX_CONTEXT_LINE_CHARS + 14);
    assert!(cut.contains(&long_line[500..510]));
    assert!(cut_around_column(&long_line, 0).starts_with("abc"));
    assert_eq!(cut_around_column("short", 3), "short");
    assert_eq!(
        cut_around_column(&"é".repeat(400), 10).chars().filter(|character| *character == 'é').count(),
        MAX_CONTEXT_LINE_CHARS
    );
}

#[test]
fn only_source_maps_parse() {
    assert!(parse_source_map(MAP_1_0_0).is_ok());
    assert!(parse_source_map(b"function n(n){return n}").is_err());
    assert!(parse_source_map(b"[1, 2]").is_err());
    assert!(parse_source_map(br#"{"version": 3, "sources": ["a.js"], "mappings": "!!!"}"#).is_err());
    // An index map whose sections embed their maps is flattened.
    let index = format!(
        r#"{{"version": 3, "sections": [{{"offset": {{"line": 0, "column": 0}}, "map": {}}}]}}"#,
        String::from_utf8_lossy(MAP_1_0_0)
    );
    let flattened = parse_source_map(index.as_bytes()).expect("index map flattens");
    assert_eq!(flattened.get_token_count(), parse_source_map(MAP_1_0_0).expect("map").get_token_count());
}

fn store_in(directory: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&directory.path().join("sightline.db")).expect("store opens"))
}

#[test]
fn the_cache_loads_once_remembers_misses_and_forgets_a_release_on_upload() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = store_in(&directory);
    let project = store.create_project("web").expect("project");
    let cache = SourceMapCache::new(store.clone());
    assert!(cache.get(project.id, "1.0.0", "main.1a2b3c4d.js").is_none());
    assert_eq!(cache.len(), 1, "the miss is remembered");

    let upload = SourceMapUpload {
        name: "https://cdn.example.com/static/js/main.1a2b3c4d.js.map".into(),
        content: MAP_1_0_0.to_vec(),
    };
    store.put_sourcemaps(project.id, "1.0.0", &[upload]).expect("stored");
    assert!(cache.get(project.id, "1.0.0", "main.1a2b3c4d.js").is_none(), "a fresh miss is believed for a while");
    cache.invalidate_release(project.id, "1.0.0");
    let found = cache.get(project.id, "1.0.0", "main.1a2b3c4d.js").expect("found after invalidation");
    assert_eq!(found.name, "https://cdn.example.com/static/js/main.1a2b3c4d.js.map");
    let again = cache.get(project.id, "1.0.0", "main.1a2b3c4d.js").expect("cached");
    assert!(Arc::ptr_eq(&found, &again), "parsed once");
    assert!(cache.get(project.id, "1.0.1", "main.1a2b3c4d.js").is_none(), "maps belong to their release");
    assert!(cache.get(project.id + 1, "1.0.0", "main.1a2b3c4d.js").is_none(), "and to their project");
}

#[test]
fn the_cache_is_bounded() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = store_in(&directory);
    let project = store.create_project("web").expect("project");
    let upload = SourceMapUpload { name: "main.1a2b3c4d.js.map".into(), content: MAP_1_0_0.to_vec() };
    store.put_sourcemaps(project.id, "1.0.0", &[upload]).expect("stored");
    let cache = SourceMapCache::new(store);
    assert!(cache.get(project.id, "1.0.0", "main.1a2b3c4d.js").is_some());
    for index in 0..MAX_CACHE_ENTRIES + 10 {
        cache.get(project.id, "1.0.0", &format!("chunk-{index}.js"));
    }
    assert_eq!(cache.len(), MAX_CACHE_ENTRIES);
    assert!(
        cache.state.lock().expect("lock").cached_map_bytes == 0,
        "the least recently used entry (the map) went first"
    );
}
