//! Deriving error events at ingest: span `exception` events, ERROR spans, and error logs become
//! [`ErrorEvent`]s with their context, parsed stack trace (JavaScript frames translated with
//! the release's source maps, see [`super::symbolicate`]) and fingerprint (Sentry-style
//! grouping from `sightline-grouping`). Grouping into issues happens at commit, where the
//! stored issues are known.

use std::collections::{BTreeMap, HashMap};

use rand::Rng;
use serde_json::Value;
use sightline_grouping::{
    Fingerprint, GroupingInput, InAppRules, ParsedException, ParsedStack, Platform, culprit, fingerprint,
    normalize_message, parse_stacktrace,
};
use sightline_model::{Attributes, Batch, LogRecord, Resource, Span};

use super::symbolicate::{ProjectSourceMaps, Symbolication};
use crate::store::errors::{ErrorContext, ErrorEvent, ErrorSource, Level};

/// Longest `exception.stacktrace` kept for display, bytes.
const MAX_RAW_STACKTRACE_BYTES: usize = 64 * 1024;
/// Longest message kept, bytes.
const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// OTel SeverityNumber ERROR (17..=20) and FATAL (21..=24).
const SEVERITY_ERROR: i32 = 17;
const SEVERITY_FATAL: i32 = 21;
/// Attribute a client sets to choose the grouping (Sentry's `fingerprint`): a string or an
/// array of strings; `{{ default }}` stands for the default grouping.
pub const FINGERPRINT_ATTRIBUTES: [&str; 2] = ["sightline.fingerprint", "fingerprint"];

/// The project settings error derivation applies.
#[derive(Clone, Copy)]
pub struct DeriveOptions<'a> {
    /// In-app rules for stack frames.
    pub rules: &'a InAppRules,
    /// Source maps for JavaScript events with a release; `None` leaves frames as sent.
    pub sourcemaps: Option<ProjectSourceMaps<'a>>,
}

/// Error events of a span batch: one per `exception` span event, plus one per ERROR span that
/// has none.
pub fn errors_from_spans(batch: &Batch<Span>, options: DeriveOptions<'_>) -> Vec<ErrorEvent> {
    let mut events = Vec::new();
    for resource_group in batch {
        let resource = &resource_group.resource;
        for scope_group in &resource_group.scopes {
            for span in &scope_group.items {
                let mut has_exception = false;
                for span_event in span.events.iter().filter(|span_event| span_event.name == "exception") {
                    has_exception = true;
                    let attributes = &span_event.attributes;
                    let context = span_context(resource, span);
                    let timestamp = if span_event.time_unix_nano != 0 {
                        span_event.time_unix_nano
                    } else {
                        span.end_time_unix_nano
                    };
                    events.push(build_event(
                        ErrorSource::SpanException,
                        Level::Error,
                        timestamp,
                        resource,
                        [attributes, &span.attributes],
                        ExceptionFields::from_attributes(attributes),
                        context,
                        options,
                    ));
                }
                if span.is_error() && !has_exception {
                    let message =
                        if span.status_message.is_empty() { span.name.clone() } else { span.status_message.clone() };
                    let fields =
                        ExceptionFields { exception_type: String::new(), message, stacktrace: None, escaped: None };
                    let mut event = build_event(
                        ErrorSource::SpanStatus,
                        Level::Error,
                        span.end_time_unix_nano,
                        resource,
                        [&span.attributes, &span.attributes],
                        fields,
                        span_context(resource, span),
                        options,
                    );
                    event.tags.insert("span.name".into(), truncate(&span.name, 200));
                    events.push(event);
                }
            }
        }
    }
    events
}

/// Error events of a log batch: records with `exception.*` attributes or severity ≥ ERROR.
pub fn errors_from_logs(batch: &Batch<LogRecord>, options: DeriveOptions<'_>) -> Vec<ErrorEvent> {
    let mut events = Vec::new();
    let mut record_index = 0usize;
    for resource_group in batch {
        let resource = &resource_group.resource;
        for scope_group in &resource_group.scopes {
            for record in &scope_group.items {
                let index = record_index;
                record_index += 1;
                let has_exception = ["exception.type", "exception.message", "exception.stacktrace"]
                    .iter()
                    .any(|key| record.attributes.0.contains_key(*key));
                if !has_exception && record.severity_number < SEVERITY_ERROR {
                    continue;
                }
                let level = if record.severity_number >= SEVERITY_FATAL {
                    Level::Fatal
                } else if record.severity_number >= SEVERITY_ERROR || record.severity_number == 0 {
                    Level::Error
                } else {
                    Level::Warning
                };
                let mut fields = ExceptionFields::from_attributes(&record.attributes);
                if fields.message.is_empty() {
                    fields.message = body_text(&record.body);
                }
                let mut context = resource_context(resource);
                context.trace_id = record.trace_id;
                context.span_id = record.span_id;
                fill_request_context(&mut context, [&record.attributes, &resource.attributes]);
                let mut event = build_event(
                    ErrorSource::Log,
                    level,
                    record.effective_time_unix_nano(),
                    resource,
                    [&record.attributes, &record.attributes],
                    fields,
                    context,
                    options,
                );
                event.log_record = Some(index);
                events.push(event);
            }
        }
    }
    events
}

/// Error events of a product-event batch: events of type `error` (`error.type`,
/// `error.message`, `error.stack`, `error.component`). They come from browsers, so the platform
/// is JavaScript (`webjs`) and the release is `metadata.release` / `metadata.app.version` when
/// the client sends one (needed for source maps). The error event keeps the product event's id,
/// so a retried batch is recognised at commit and not counted twice.
pub fn errors_from_product_events(
    events: &[sightline_model::ProductEvent],
    options: DeriveOptions<'_>,
) -> Vec<ErrorEvent> {
    let mut errors = Vec::new();
    for event in events.iter().filter(|event| event.event_type == sightline_model::EventType::Error) {
        let text = |key: &str| event.properties.get(key).and_then(Value::as_str).map(str::to_owned);
        let metadata_text = |keys: &[&str]| {
            keys.iter().find_map(|key| event.metadata.get(*key).and_then(Value::as_str).map(str::to_owned))
        };
        let mut resource = Resource::default();
        resource.attributes.0.insert("service.name".into(), Value::String(event.product_id.clone()));
        resource.attributes.0.insert("telemetry.sdk.language".into(), Value::String("webjs".into()));
        if let Some(release) = metadata_text(&["release", "app.version", "service.version"]) {
            resource.attributes.0.insert("service.version".into(), Value::String(release));
        }
        if let Some(environment) = metadata_text(&["environment", "deployment.environment.name"]) {
            resource.attributes.0.insert("deployment.environment.name".into(), Value::String(environment));
        }
        let mut attributes = Attributes::default();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                attributes.0.insert(key.to_owned(), Value::String(value));
            }
        };
        put("session.id", Some(event.session_id.clone()));
        put("user.id", event.user_id.clone());
        put("url.full", text("page.url").or_else(|| text("page.path")));
        put("user_agent.original", metadata_text(&["user_agent", "userAgent", "user_agent.original"]));
        let fields = ExceptionFields {
            exception_type: text("error.type").unwrap_or_default(),
            message: text("error.message").unwrap_or_else(|| event.event_name.clone()),
            stacktrace: text("error.stack"),
            escaped: None,
        };
        let mut context = resource_context(&resource);
        fill_request_context(&mut context, [&attributes, &resource.attributes]);
        let mut error = build_event(
            ErrorSource::ProductEvent,
            Level::Error,
            event.timestamp_unix_nano,
            &resource,
            [&attributes, &attributes],
            fields,
            context,
            options,
        );
        error.event_id = event.event_id.clone();
        if let Some(component) = text("error.component") {
            error.tags.insert("error.component".into(), truncate(&component, 200));
        }
        errors.push(error);
    }
    errors
}

/// The semconv exception attributes of a span event or log record.
struct ExceptionFields {
    exception_type: String,
    message: String,
    stacktrace: Option<String>,
    escaped: Option<bool>,
}

impl ExceptionFields {
    fn from_attributes(attributes: &Attributes) -> Self {
        Self {
            exception_type: attributes.get_str("exception.type").unwrap_or("").to_owned(),
            message: attributes.get_str("exception.message").unwrap_or("").to_owned(),
            stacktrace: attributes.get_str("exception.stacktrace").map(str::to_owned),
            escaped: attributes.0.get("exception.escaped").and_then(Value::as_bool),
        }
    }
}

fn body_text(body: &Value) -> String {
    match body {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Truncates at a character boundary at most `max_bytes` long.
fn truncate(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn string_attribute<'a>(sources: &[&'a Attributes], keys: &[&str]) -> Option<&'a str> {
    sources.iter().find_map(|attributes| keys.iter().find_map(|key| attributes.get_str(key)))
}

fn resource_context(resource: &Resource) -> ErrorContext {
    let attributes = &resource.attributes;
    ErrorContext {
        service: resource.service_name().to_owned(),
        environment: string_attribute(&[attributes], &["deployment.environment.name", "deployment.environment"])
            .map(str::to_owned),
        release: attributes.get_str("service.version").map(str::to_owned),
        ..ErrorContext::default()
    }
}

fn span_context(resource: &Resource, span: &Span) -> ErrorContext {
    let mut context = resource_context(resource);
    context.trace_id = Some(span.trace_id);
    context.span_id = Some(span.span_id);
    fill_request_context(&mut context, [&span.attributes, &resource.attributes]);
    context
}

/// Session, user, URL, route and user agent from attributes (span or log first, then the
/// resource; baggage-derived attributes arrive the same way).
fn fill_request_context(context: &mut ErrorContext, sources: [&Attributes; 2]) {
    let owned = |keys: &[&str]| string_attribute(&sources, keys).map(str::to_owned);
    // The same reading as session summaries: attribute, baggage, or recorded `X-Session-ID`.
    context.session_id = sources.iter().find_map(|attributes| super::session::session_id(attributes));
    context.user_id = sources.iter().find_map(|attributes| super::session::user_id(attributes));
    context.url = owned(&["url.full", "http.url", "url.path", "http.target"]);
    context.route = owned(&["http.route"]);
    context.user_agent = owned(&["user_agent.original", "http.user_agent"]);
    if let Some(user_agent) = &context.user_agent {
        let parsed = parse_user_agent(user_agent);
        context.browser = parsed.browser;
        context.os = parsed.os;
        context.device = parsed.device;
    }
}

/// Browser ("Chrome 120.0.0.0"), OS ("Mac OSX 10.15.7") and device category of a user agent.
#[derive(Clone, Default)]
struct ParsedUserAgent {
    browser: Option<String>,
    os: Option<String>,
    device: Option<String>,
}

/// Distinct user agents remembered per prepare thread; beyond it the memory starts over.
const USER_AGENT_CACHE_ENTRIES: usize = 1024;

thread_local! {
    /// A service's errors come from few user agents, and woothee's parse (a cascade of regular
    /// expressions) was the largest part of building an error's context.
    static USER_AGENTS: std::cell::RefCell<HashMap<String, ParsedUserAgent>> = Default::default();
}

/// [`ParsedUserAgent`] of `user_agent` with woothee (a maintained port of the Woothee project's
/// rules), remembered per thread.
fn parse_user_agent(user_agent: &str) -> ParsedUserAgent {
    if let Some(parsed) = USER_AGENTS.with_borrow(|cache| cache.get(user_agent).cloned()) {
        return parsed;
    }
    let parsed = match woothee::parser::Parser::new().parse(user_agent) {
        None => ParsedUserAgent::default(),
        Some(parsed) => {
            let known =
                |value: &str| (!value.is_empty() && value != woothee::woothee::VALUE_UNKNOWN).then(|| value.to_owned());
            ParsedUserAgent {
                browser: known(parsed.name).map(|name| match known(parsed.version) {
                    Some(version) => format!("{name} {version}"),
                    None => name,
                }),
                os: known(parsed.os).map(|os| match known(parsed.os_version.as_ref()) {
                    Some(version) => format!("{os} {version}"),
                    None => os,
                }),
                device: known(parsed.category),
            }
        }
    };
    USER_AGENTS.with_borrow_mut(|cache| {
        if cache.len() >= USER_AGENT_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(user_agent.to_owned(), parsed.clone());
    });
    parsed
}

fn client_fingerprint(sources: [&Attributes; 2]) -> Option<Vec<String>> {
    for attributes in sources {
        for key in FINGERPRINT_ATTRIBUTES {
            match attributes.0.get(key) {
                Some(Value::String(value)) => return Some(vec![value.clone()]),
                Some(Value::Array(values)) => {
                    let parts: Vec<String> =
                        values.iter().filter_map(|value| value.as_str().map(str::to_owned)).collect();
                    if !parts.is_empty() {
                        return Some(parts);
                    }
                }
                _ => {}
            }
        }
    }
    None
}

fn random_event_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    const_hex::encode(bytes)
}

#[allow(clippy::too_many_arguments)]
fn build_event(
    source: ErrorSource,
    level: Level,
    timestamp_unix_nano: u64,
    resource: &Resource,
    attribute_sources: [&Attributes; 2],
    fields: ExceptionFields,
    context: ErrorContext,
    options: DeriveOptions<'_>,
) -> ErrorEvent {
    let hint = resource.attributes.get_str("telemetry.sdk.language").map(Platform::from_telemetry_sdk_language);
    let message = truncate(&fields.message, MAX_MESSAGE_BYTES);
    let mut parsed = match &fields.stacktrace {
        Some(stacktrace) => parse_stacktrace(stacktrace, hint),
        None => ParsedStack { platform: hint.unwrap_or(Platform::Other), exceptions: Vec::new() },
    };
    let platform = parsed.platform;
    // Before the in-app rules and grouping, which must see original files and names.
    let symbolication = match (options.sourcemaps, platform, context.release.as_deref()) {
        (Some(sourcemaps), Platform::JavaScript, Some(release)) if !release.is_empty() => {
            sourcemaps.symbolicate(release, &mut parsed.exceptions)
        }
        _ => Symbolication::default(),
    };
    for exception in &mut parsed.exceptions {
        options.rules.apply(platform, &mut exception.frames);
    }
    // The type and message as the SDK reported them win over what the trace text says.
    let exception_type = if fields.exception_type.is_empty() {
        parsed.exceptions.first().map(|exception| exception.exception_type.clone()).unwrap_or_default()
    } else {
        fields.exception_type.clone()
    };
    // Every exception of a chain contributes, as in Sentry's chained-exception grouping (a single
    // exception's frames are borrowed, only a chain's are joined).
    let chain_frames: std::borrow::Cow<'_, [sightline_grouping::StackFrame]> = match parsed.exceptions.as_slice() {
        [] => std::borrow::Cow::Borrowed(&[]),
        [only] => std::borrow::Cow::Borrowed(&only.frames),
        chain => std::borrow::Cow::Owned(chain.iter().flat_map(|exception| exception.frames.iter().cloned()).collect()),
    };
    let fingerprint_values = client_fingerprint(attribute_sources);
    let fingerprint: Fingerprint = fingerprint(&GroupingInput {
        platform,
        exception_type: &exception_type,
        message: &message,
        frames: &chain_frames,
        client_fingerprint: fingerprint_values.as_deref(),
    });
    let title = match (exception_type.is_empty(), message.is_empty()) {
        (false, false) => format!("{exception_type}: {}", truncate(&message, 200)),
        (false, true) => exception_type.clone(),
        (true, false) => truncate(&normalize_message(&message), 200),
        (true, true) => "<unknown error>".to_owned(),
    };
    let culprit = culprit(platform, crash_frames(&parsed.exceptions)).or_else(|| context.route.clone());
    let mut tags = BTreeMap::new();
    let mut tag = |key: &str, value: &Option<String>| {
        if let Some(value) = value {
            tags.insert(key.to_owned(), truncate(value, 200));
        }
    };
    tag("service", &Some(context.service.clone()));
    tag("environment", &context.environment);
    tag("release", &context.release);
    tag("browser", &context.browser);
    tag("os", &context.os);
    tag("device", &context.device);
    tag("http.route", &context.route);
    tag("level", &Some(level.as_str().to_owned()));
    if let Some(escaped) = fields.escaped {
        tags.insert("exception.escaped".into(), escaped.to_string());
    }
    ErrorEvent {
        event_id: random_event_id(),
        timestamp_unix_nano,
        source,
        level,
        platform,
        exception_type,
        message,
        exceptions: parsed.exceptions,
        raw_stacktrace: fields.stacktrace.map(|mut stacktrace| {
            if stacktrace.len() > MAX_RAW_STACKTRACE_BYTES {
                stacktrace = truncate(&stacktrace, MAX_RAW_STACKTRACE_BYTES);
            }
            stacktrace
        }),
        escaped: fields.escaped,
        context,
        tags,
        fingerprint,
        title,
        culprit,
        symbolicated: symbolication.frames_symbolicated > 0,
        source_context: symbolication.source_context,
        log_record: None,
    }
}

/// The frames where the crash happened: those of the innermost cause (the last exception with
/// frames), which is what the culprit names.
fn crash_frames(exceptions: &[ParsedException]) -> &[sightline_grouping::StackFrame] {
    exceptions
        .iter()
        .rev()
        .find(|exception| !exception.frames.is_empty())
        .map(|exception| exception.frames.as_slice())
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_ON_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

    #[test]
    fn user_agents_parse_the_same_from_the_cache_and_the_cache_stays_bounded() {
        let first = parse_user_agent(CHROME_ON_MAC);
        assert_eq!(first.browser.as_deref(), Some("Chrome 120.0.0.0"));
        assert_eq!(first.device.as_deref(), Some("pc"));
        assert!(first.os.as_deref().is_some_and(|os| os.starts_with("Mac OSX")), "{:?}", first.os);
        let again = parse_user_agent(CHROME_ON_MAC);
        assert_eq!((again.browser, again.os, again.device), (first.browser, first.os.clone(), first.device));
        for index in 0..USER_AGENT_CACHE_ENTRIES + 10 {
            parse_user_agent(&format!("probe/{index}"));
        }
        assert!(USER_AGENTS.with_borrow(|cache| cache.len()) <= USER_AGENT_CACHE_ENTRIES);
        assert_eq!(parse_user_agent(CHROME_ON_MAC).os, first.os, "parsed again after the cache started over");
    }
}
