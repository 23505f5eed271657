//! Symbolication of JavaScript stack frames with uploaded source maps: a frame in a minified
//! bundle (`at n (https://cdn.example.com/js/main.3f2a1b.js:1:24)`) becomes its original file,
//! line, column and function (`formatPrice` in `src/app.js:5:10`) with the source lines around
//! it.
//!
//! It runs before the in-app rules and fingerprinting, so that grouping reads original names:
//! minified names change with every build (`n`, `t`, `c`), original ones do not.
//!
//! Maps come from the store through [`SourceMapCache`]: parsed once and kept in a bounded
//! cache keyed by (project, release, minified file), with short-lived "no such map" entries, so
//! the events of a release without maps cost one store lookup per file every 30 s rather than
//! one per frame. Frames are looked up per distinct file, and at most
//! [`MAX_FRAMES_PER_EVENT`] frames per event are translated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sightline_grouping::{MAX_FIELD_BYTES, ParsedException, StackFrame};
use sourcemap::{DecodedMap, SourceMap, SourceView};

use crate::store::Store;
use crate::store::errors::SourceContext;
use crate::store::sourcemaps::minified_file_key;

/// Largest source map accepted at upload and loaded at ingest, bytes. Big single-page-app bundles
/// with `sourcesContent` reach a few MiB; 20 MiB leaves room without letting one map take the cache.
pub const MAX_SOURCEMAP_BYTES: usize = 20 * 1024 * 1024;

/// Frames translated per event at most (innermost first): bounds the work a hostile or runaway
/// trace can cause; the crash site and its callers are what grouping and readers need.
pub const MAX_FRAMES_PER_EVENT: usize = 50;

/// Source lines kept before and after a frame's line (Sentry keeps 5; 3 is enough to read a bug).
const CONTEXT_LINES: u32 = 3;

/// Longest context line kept, characters; longer lines (minified or generated code) are cut
/// around the column and marked `{snip}`, as Sentry's `get_context_lines` does.
const MAX_CONTEXT_LINE_CHARS: usize = 150;

/// How long "this release has no map for this file" is believed: an upload invalidates this
/// node's cache at once; other nodes and racing events see the map after at most this long.
const MISSING_MAP_TTL: Duration = Duration::from_secs(30);

/// How long a loaded map is reused before the store is asked again (a re-upload on another node
/// takes effect within this time).
const LOADED_MAP_TTL: Duration = Duration::from_secs(5 * 60);

/// Cache bounds: entries (found and missing), and total size of the cached maps' JSON. A parsed
/// map takes about one to five times its JSON size (tokens are 28 bytes, VLQ segments ~5).
const MAX_CACHE_ENTRIES: usize = 1024;
const MAX_CACHED_MAP_BYTES: usize = 128 * 1024 * 1024;

/// Parses a source map as uploaded: a regular map (ECMA-426), an index map whose sections embed
/// their maps (flattened), or a Metro/Hermes map. Errors: not JSON, not a source map, bad
/// `mappings`, an index map whose sections reference URLs.
pub fn parse_source_map(content: &[u8]) -> Result<SourceMap, sourcemap::Error> {
    match sourcemap::decode_slice(content)? {
        DecodedMap::Regular(map) => Ok(map),
        DecodedMap::Index(index) => index.flatten(),
        DecodedMap::Hermes(hermes) => Ok(SourceMap::clone(&hermes)),
    }
}

/// A parsed source map and the name it was uploaded under.
#[derive(Debug)]
pub struct LoadedSourceMap {
    /// Name it was uploaded under.
    pub name: String,
    /// The parsed map.
    pub map: SourceMap,
    /// Size of its JSON, bytes (the cache's weight).
    pub size_bytes: usize,
}

/// Cache key: project id, release, minified file key.
type CacheKey = (i64, String, String);

struct CacheEntry {
    /// `None`: the store has no map for the file.
    map: Option<Arc<LoadedSourceMap>>,
    loaded_at: Instant,
    /// Value of [`CacheState::uses`] at the last hit, for least-recently-used eviction.
    last_use: u64,
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<CacheKey, CacheEntry>,
    cached_map_bytes: usize,
    uses: u64,
}

/// Parsed source maps by (project, release, minified file), loaded from the store on a miss.
/// Bounded (1,024 entries, 128 MiB of map JSON) with least-recently-used eviction; loaded maps
/// are re-read after 5 minutes, "no such map" after 30 s. Two threads missing the same map at once may both load it; the
/// second insert wins, which is harmless.
pub struct SourceMapCache {
    store: Arc<dyn Store>,
    state: Mutex<CacheState>,
}

impl SourceMapCache {
    /// An empty cache reading from `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, state: Mutex::new(CacheState::default()) }
    }

    /// The map for a minified file key (`main.3f2a1b.js`, see [`minified_file_key`]) of a
    /// project's release; `None` when there is none (or it cannot be read: logged). Blocks on
    /// the store on a miss: call from blocking threads.
    pub fn get(&self, project_id: i64, release: &str, file_key: &str) -> Option<Arc<LoadedSourceMap>> {
        let key: CacheKey = (project_id, release.to_owned(), file_key.to_owned());
        if let Some(cached) = self.cached(&key) {
            return cached;
        }
        let loaded = self.load(project_id, release, file_key);
        self.insert(key, loaded.clone());
        loaded
    }

    /// Forgets every entry of a release (after an upload or a delete).
    pub fn invalidate_release(&self, project_id: i64, release: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let mut freed_bytes = 0;
        state.entries.retain(|(entry_project, entry_release, _), entry| {
            let keep = *entry_project != project_id || entry_release != release;
            if !keep {
                freed_bytes += entry.map.as_ref().map_or(0, |map| map.size_bytes);
            }
            keep
        });
        state.cached_map_bytes -= freed_bytes;
    }

    /// Number of cached entries (found and missing), for tests and metrics.
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |state| state.entries.len())
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `Some(entry)` for a fresh entry, `None` for a miss or an expired entry.
    fn cached(&self, key: &CacheKey) -> Option<Option<Arc<LoadedSourceMap>>> {
        let mut state = self.state.lock().ok()?;
        state.uses += 1;
        let use_number = state.uses;
        let entry = state.entries.get_mut(key)?;
        let time_to_live = if entry.map.is_some() { LOADED_MAP_TTL } else { MISSING_MAP_TTL };
        if entry.loaded_at.elapsed() >= time_to_live {
            return None;
        }
        entry.last_use = use_number;
        Some(entry.map.clone())
    }

    fn load(&self, project_id: i64, release: &str, file_key: &str) -> Option<Arc<LoadedSourceMap>> {
        let stored = match self.store.find_sourcemap(project_id, release, file_key) {
            Ok(Some(stored)) => stored,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%error, project_id, release, file = file_key, "Source map lookup failed");
                return None;
            }
        };
        if stored.content.len() > MAX_SOURCEMAP_BYTES {
            tracing::warn!(project_id, release, name = %stored.name, size_bytes = stored.content.len(), "Source map too large to load");
            return None;
        }
        match parse_source_map(&stored.content) {
            Ok(map) => Some(Arc::new(LoadedSourceMap { name: stored.name, map, size_bytes: stored.content.len() })),
            Err(error) => {
                tracing::warn!(%error, project_id, release, name = %stored.name, "Stored source map does not parse");
                None
            }
        }
    }

    fn insert(&self, key: CacheKey, map: Option<Arc<LoadedSourceMap>>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.uses += 1;
        let size_bytes = map.as_ref().map_or(0, |map| map.size_bytes);
        let entry = CacheEntry { map, loaded_at: Instant::now(), last_use: state.uses };
        if let Some(replaced) = state.entries.insert(key, entry) {
            state.cached_map_bytes -= replaced.map.as_ref().map_or(0, |map| map.size_bytes);
        }
        state.cached_map_bytes += size_bytes;
        while state.entries.len() > 1
            && (state.entries.len() > MAX_CACHE_ENTRIES || state.cached_map_bytes > MAX_CACHED_MAP_BYTES)
        {
            let Some(oldest) = state.entries.iter().min_by_key(|(_, entry)| entry.last_use).map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(evicted) = state.entries.remove(&oldest) {
                state.cached_map_bytes -= evicted.map.as_ref().map_or(0, |map| map.size_bytes);
            }
        }
    }
}

/// One project's source maps, as the error derivation step uses them.
#[derive(Clone, Copy)]
pub struct ProjectSourceMaps<'a> {
    /// The shared cache.
    pub cache: &'a SourceMapCache,
    /// The project whose maps apply.
    pub project_id: i64,
}

impl ProjectSourceMaps<'_> {
    /// Symbolicates an event's exceptions with the maps of `release` (see
    /// [`symbolicate_exceptions`]).
    pub fn symbolicate(&self, release: &str, exceptions: &mut [ParsedException]) -> Symbolication {
        symbolicate_exceptions(exceptions, |file_key| self.cache.get(self.project_id, release, file_key))
    }
}

/// What symbolication did to one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Symbolication {
    /// Frames translated to original locations.
    pub frames_symbolicated: usize,
    /// Source lines around the translated frames whose map has `sourcesContent`.
    pub source_context: Vec<SourceContext>,
}

/// A frame's position in a minified file: the file's key and 1-based line and column.
struct MinifiedLocation {
    file_key: String,
    line: u32,
    column: u32,
}

impl MinifiedLocation {
    /// Frames in a script file (`.js`, `.mjs`, `.cjs`, by URL or path) with a line and column.
    fn of(frame: &StackFrame) -> Option<Self> {
        let filename = frame.filename.as_deref()?;
        let line = frame.lineno.filter(|line| *line > 0)?;
        let column = frame.colno.filter(|column| *column > 0)?;
        let file_key = minified_file_key(filename);
        let is_script = [".js", ".mjs", ".cjs"].iter().any(|extension| file_key.ends_with(extension));
        is_script.then(|| Self { file_key: file_key.to_owned(), line, column })
    }
}

/// Where a minified position comes from.
#[derive(Debug, Clone)]
struct OriginalLocation {
    filename: String,
    /// 1-based.
    line: u32,
    /// 1-based.
    column: u32,
    /// The original name at the position (for a call, the called function's name).
    token_name: Option<String>,
    context: Option<ContextLines>,
}

#[derive(Debug, Clone)]
struct ContextLines {
    pre_lines: Vec<String>,
    line: String,
    post_lines: Vec<String>,
}

/// Translates the frames of every exception of an event through the maps `find_map` returns
/// per minified file key, in place: filename (the original source path), line, column,
/// function and `context_line`. Frames without a map, a mapping or a script location stay as
/// they were. At most [`MAX_FRAMES_PER_EVENT`] frames are looked up, innermost first; each file
/// is asked for once.
///
/// Function names: a map's token at a frame's position names what the code there touches, not
/// the function it is in, and scope names need the minified source, which is not uploaded. So a
/// frame takes the original name at its caller's call site (the token of the frame before it,
/// outermost first), Sentry's "caller naming" (blog: "How we made JavaScript stack traces
/// awesome", 2022); a frame whose caller was not translated keeps its name.
pub fn symbolicate_exceptions(
    exceptions: &mut [ParsedException],
    mut find_map: impl FnMut(&str) -> Option<Arc<LoadedSourceMap>>,
) -> Symbolication {
    let mut maps_by_file: HashMap<String, Option<Arc<LoadedSourceMap>>> = HashMap::new();
    let mut frame_budget = MAX_FRAMES_PER_EVENT;
    let mut symbolication = Symbolication::default();
    for (exception_index, exception) in exceptions.iter_mut().enumerate() {
        let candidates: Vec<(usize, MinifiedLocation)> = exception
            .frames
            .iter()
            .enumerate()
            .filter_map(|(frame_index, frame)| MinifiedLocation::of(frame).map(|location| (frame_index, location)))
            .collect();
        let looked_up = candidates.len().min(frame_budget);
        frame_budget -= looked_up;
        let mut originals: Vec<Option<OriginalLocation>> = vec![None; exception.frames.len()];
        for (frame_index, location) in candidates.into_iter().rev().take(looked_up) {
            let map =
                maps_by_file.entry(location.file_key.clone()).or_insert_with(|| find_map(&location.file_key)).clone();
            if let Some(map) = map {
                originals[frame_index] = translate(&map.map, location.line, location.column);
            }
        }
        for (frame_index, frame) in exception.frames.iter_mut().enumerate() {
            let Some(original) = &originals[frame_index] else {
                continue;
            };
            let callsite_name = frame_index
                .checked_sub(1)
                .and_then(|caller_index| originals[caller_index].as_ref())
                .and_then(|caller| caller.token_name.as_deref());
            apply(frame, original, callsite_name);
            symbolication.frames_symbolicated += 1;
            if let Some(context) = &original.context {
                symbolication.source_context.push(SourceContext {
                    exception_index,
                    frame_index,
                    pre_lines: context.pre_lines.clone(),
                    line: context.line.clone(),
                    post_lines: context.post_lines.clone(),
                });
            }
        }
    }
    symbolication
}

/// The original location of a 1-based minified position; `None` when the map has no mapping
/// with a source on that line at or before the column.
fn translate(map: &SourceMap, line: u32, column: u32) -> Option<OriginalLocation> {
    // Stack traces count from 1, source maps from 0 (ECMA-426 "mappings").
    let (minified_line, minified_column) = (line - 1, column - 1);
    let token = map.lookup_token(minified_line, minified_column)?;
    // The nearest mapping at or before the position: one on an earlier line maps other code.
    if token.get_dst_line() != minified_line {
        return None;
    }
    let source = token.get_source()?;
    let (source_line, source_column) = token.get_src();
    let context = token.get_source_view().and_then(|view| context_lines(view, source_line, source_column));
    Some(OriginalLocation {
        filename: readable_source_path(source),
        line: source_line.saturating_add(1),
        column: source_column.saturating_add(1),
        token_name: token.get_name().filter(|name| !name.is_empty()).map(str::to_owned),
        context,
    })
}

/// A map's source path made readable and classifiable: webpack's `webpack://<namespace>/`
/// prefix is dropped (`webpack://app/./src/x.js` → `./src/x.js`, as Sentry's
/// `fixup_webpack_filename`), and a bare `node_modules/...` becomes `./node_modules/...` so the
/// in-app defaults, which look for `/node_modules/`, see a dependency.
fn readable_source_path(source: &str) -> String {
    let path = match source.strip_prefix("webpack://") {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, path)| path),
        None => source,
    };
    let path = if path.starts_with("node_modules/") { format!("./{path}") } else { path.to_owned() };
    bounded(path)
}

/// Up to [`CONTEXT_LINES`] lines either side of a 0-based line of an original source.
fn context_lines(view: &SourceView, line_index: u32, column: u32) -> Option<ContextLines> {
    let line = view.get_line(line_index)?;
    let first_index = line_index.saturating_sub(CONTEXT_LINES);
    let pre_lines = (first_index..line_index)
        .filter_map(|index| view.get_line(index))
        .map(|text| cut_around_column(text, column))
        .collect();
    let post_lines = (line_index + 1..=line_index.saturating_add(CONTEXT_LINES))
        .map_while(|index| view.get_line(index).map(|text| (index, text)))
        // The empty "line" after a source's final newline is not a line.
        .filter(|(index, text)| !text.is_empty() || view.get_line(index + 1).is_some())
        .map(|(_, text)| cut_around_column(text, column))
        .collect();
    Some(ContextLines { pre_lines, line: cut_around_column(line, column), post_lines })
}

/// A line of at most [`MAX_CONTEXT_LINE_CHARS`] characters: longer ones keep a window around
/// the column, with `{snip}` where text was cut.
fn cut_around_column(line: &str, column: u32) -> String {
    let char_count = line.chars().count();
    if char_count <= MAX_CONTEXT_LINE_CHARS {
        return line.to_owned();
    }
    let start = (column as usize).saturating_sub(MAX_CONTEXT_LINE_CHARS / 2).min(char_count - MAX_CONTEXT_LINE_CHARS);
    let end = start + MAX_CONTEXT_LINE_CHARS;
    let mut cut = String::with_capacity(MAX_CONTEXT_LINE_CHARS * 4 + 14);
    if start > 0 {
        cut.push_str("{snip} ");
    }
    cut.extend(line.chars().skip(start).take(MAX_CONTEXT_LINE_CHARS));
    if end < char_count {
        cut.push_str(" {snip}");
    }
    cut
}

fn apply(frame: &mut StackFrame, original: &OriginalLocation, callsite_name: Option<&str>) {
    frame.filename = Some(original.filename.clone());
    frame.lineno = Some(original.line);
    frame.colno = Some(original.column);
    if let Some(name) = callsite_name {
        frame.function = Some(bounded(name.to_owned()));
    }
    frame.context_line = original.context.as_ref().map(|context| bounded(context.line.trim().to_owned()));
}

/// Cuts a frame field to the grouping crate's bound at a character boundary.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_FIELD_BYTES {
        let mut end = MAX_FIELD_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests;
