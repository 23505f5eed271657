//! Realistic ProductGraph `/v1/events` batches for the product events benchmark, generated and
//! JSON-encoded before anything is timed so the clients only replay bytes.
//!
//! Browser sessions are played out side by side: [`ACTIVE_SESSIONS`] are open at any time and
//! each next event comes from one of them at random, so a batch holds events of many sessions
//! and a session's events spread over several batches (as when a collector or edge relay batches
//! for many browsers). A session has 20–50 events in the order the ProductGraph web client sends
//! them: a `page.view`, web vitals (`performance`), clicks, inputs, API calls, checkout journey
//! steps (`gen_ai.journey.*`), more page views and, rarely, an `error` with a Chrome stack trace.
//! Event ids are random UUIDs, fresh on every run, so a reused `--data-dir` stores every event.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use crate::bench::load::Workload;

/// Sessions open at once while generating.
const ACTIVE_SESSIONS: usize = 64;

/// Events per session, inclusive bounds.
const SESSION_EVENTS: (u32, u32) = (20, 50);

/// Share of sessions with a signed-in user.
const SIGNED_IN_SHARE: f64 = 0.7;

/// Distinct users the signed-in sessions belong to.
const USERS: u32 = 5_000;

/// The `product_id` every event carries (ProductGraph's name for the instrumented app).
pub const PRODUCT_ID: &str = "shop-web";

const SITE: &str = "https://shop.example.com";

/// (path, title) of the pages a session visits.
const PAGES: &[(&str, &str)] = &[
    ("/", "Home"),
    ("/products", "All products"),
    ("/products/OLJCESPC7Z", "Vintage typewriter"),
    ("/products/66VCHSJNUP", "Film camera"),
    ("/search", "Search"),
    ("/cart", "Your cart"),
    ("/checkout", "Checkout"),
    ("/checkout/payment", "Payment"),
    ("/account/orders", "Your orders"),
];

/// (element, text, component, component path) of clicks.
const CLICKS: &[(&str, &str, &str, &str)] = &[
    ("button#add-to-cart", "Add to cart", "AddToCartButton", "App > ProductPage > AddToCartButton"),
    ("a.product-card", "Vintage typewriter", "ProductCard", "App > ProductList > ProductCard"),
    ("button.checkout", "Proceed to checkout", "CartSummary", "App > CartPage > CartSummary"),
    ("button#place-order", "Place order", "PaymentForm", "App > CheckoutPage > PaymentForm"),
    ("nav a[href='/cart']", "Cart (2)", "NavBar", "App > Header > NavBar"),
    ("button.filter", "Under $100", "FilterPanel", "App > ProductList > FilterPanel"),
];

/// (element, component) of inputs.
const INPUTS: &[(&str, &str)] = &[
    ("input#search", "SearchBox"),
    ("input#email", "CheckoutForm"),
    ("input#card-number", "PaymentForm"),
    ("select#quantity", "QuantityPicker"),
];

/// (method, path) of the API calls the frontend makes.
const API_CALLS: &[(&str, &str)] = &[
    ("GET", "/api/products"),
    ("GET", "/api/products/OLJCESPC7Z"),
    ("GET", "/api/cart"),
    ("POST", "/api/cart/items"),
    ("POST", "/api/checkout"),
    ("GET", "/api/recommendations"),
];

/// The checkout journey's steps: (step id, step name).
const JOURNEY_STEPS: &[(&str, &str)] = &[
    ("cart", "Cart reviewed"),
    ("shipping", "Shipping address entered"),
    ("payment", "Payment details entered"),
    ("confirmation", "Order confirmed"),
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
];

const SCREENS: &[&str] = &["1920x1080", "1440x900", "390x844", "2560x1440"];

/// (type, message, stack) of the frontend bugs: a few distinct ones, so they group into a few
/// issues. Chrome's format, frames in hashed bundles as a production build serves them.
const BUGS: &[(&str, &str, &str)] = &[
    (
        "TypeError",
        "Cannot read properties of undefined (reading 'total')",
        "TypeError: Cannot read properties of undefined (reading 'total')\n    at CartSummary (https://shop.example.com/assets/index-4f2a9c1b.js:2:48213)\n    at renderWithHooks (https://shop.example.com/assets/vendor-8d1e2f3a.js:1:52133)\n    at updateFunctionComponent (https://shop.example.com/assets/vendor-8d1e2f3a.js:1:61844)\n    at beginWork (https://shop.example.com/assets/vendor-8d1e2f3a.js:1:75510)\n    at performUnitOfWork (https://shop.example.com/assets/vendor-8d1e2f3a.js:1:112233)",
    ),
    (
        "RangeError",
        "Invalid currency code : undefined",
        "RangeError: Invalid currency code : undefined\n    at new NumberFormat (<anonymous>)\n    at formatPrice (https://shop.example.com/assets/index-4f2a9c1b.js:2:10457)\n    at PriceTag (https://shop.example.com/assets/index-4f2a9c1b.js:2:11020)\n    at renderWithHooks (https://shop.example.com/assets/vendor-8d1e2f3a.js:1:52133)",
    ),
    (
        "Error",
        "Request failed with status code 502",
        "Error: Request failed with status code 502\n    at createError (https://shop.example.com/assets/vendor-8d1e2f3a.js:3:1402)\n    at settle (https://shop.example.com/assets/vendor-8d1e2f3a.js:3:2217)\n    at XMLHttpRequest.onloadend (https://shop.example.com/assets/vendor-8d1e2f3a.js:3:6188)\n    at submitOrder (https://shop.example.com/assets/index-4f2a9c1b.js:2:77301)",
    ),
];

/// What to generate for the throughput phase.
#[derive(Debug, Clone, Copy)]
pub struct EventShape {
    /// Requests (distinct batches) to generate.
    pub requests: usize,
    /// Events in each batch.
    pub events_per_request: usize,
}

/// Encoded batches and what they hold.
pub struct EventWorkload {
    /// The JSON bodies and the events in each.
    pub workload: Workload,
    /// Distinct sessions over all batches.
    pub sessions: u64,
    /// Distinct signed-in users.
    pub users: u64,
    /// Events per `event.type`.
    pub events_by_type: BTreeMap<&'static str, u64>,
}

/// The kinds of event a session emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    PageView,
    Performance,
    Click,
    Input,
    Scroll,
    ApiRequest,
    JourneyStep,
    Error,
}

impl EventKind {
    fn event_type(self) -> &'static str {
        match self {
            EventKind::PageView => "page.view",
            EventKind::Performance => "performance",
            EventKind::Click => "ui.click",
            EventKind::Input => "ui.input",
            EventKind::Scroll => "ui.scroll",
            EventKind::ApiRequest => "api.request",
            EventKind::JourneyStep => "journey.step",
            EventKind::Error => "error",
        }
    }

    /// The next kind after a page view's web vitals: weights in per mille, errors 1%.
    fn choose(rng: &mut StdRng, allow_errors: bool) -> EventKind {
        const WEIGHTS: &[(EventKind, u32)] = &[
            (EventKind::Click, 330),
            (EventKind::Input, 150),
            (EventKind::ApiRequest, 200),
            (EventKind::PageView, 140),
            (EventKind::JourneyStep, 90),
            (EventKind::Scroll, 80),
            (EventKind::Error, 10),
        ];
        let total: u32 =
            WEIGHTS.iter().filter(|(kind, _)| allow_errors || *kind != EventKind::Error).map(|(_, w)| w).sum();
        let mut pick = rng.random_range(0..total);
        for (kind, weight) in WEIGHTS {
            if !allow_errors && *kind == EventKind::Error {
                continue;
            }
            if pick < *weight {
                return *kind;
            }
            pick -= weight;
        }
        EventKind::Click
    }
}

/// Now, ns since epoch.
pub fn now_unix_nano() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_nanos() as u64).unwrap_or(1)
}

/// `value` in base 36, as JavaScript's `Number.prototype.toString(36)` writes it.
fn base36(mut value: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::new();
    loop {
        digits.push(DIGITS[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// `sess-<base36 start ms>-<8 random [a-z0-9]>`, the ProductGraph web client's format.
pub fn session_id(rng: &mut StdRng, start_unix_nano: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let suffix: String = (0..8).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("sess-{}-{suffix}", base36(start_unix_nano / 1_000_000))
}

/// A random version 4 UUID, as `crypto.randomUUID()` makes event ids.
fn uuid_v4(rng: &mut StdRng) -> String {
    let bits: u128 = rng.random();
    // Version 4 in the 13th hex digit, variant 0b10 in the 17th (RFC 9562 §5.4).
    let bits = (bits & !(0xf_u128 << 76) | (0x4_u128 << 76)) & !(0x3_u128 << 62) | (0x2_u128 << 62);
    let hex = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn rfc3339(unix_nano: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(unix_nano)).to_string()
}

/// One browser session being played out.
pub struct SessionPlayer {
    session_id: String,
    user_id: Option<String>,
    metadata: Value,
    clock_unix_nano: u64,
    sequence: i64,
    page: (&'static str, &'static str),
    /// A page view was the last event: web vitals come next.
    vitals_due: bool,
    journey_step: usize,
    events_left: u32,
}

impl SessionPlayer {
    /// A session starting at `start_unix_nano` that emits `events` events (`u32::MAX`: no end).
    pub fn new(rng: &mut StdRng, session_id: String, start_unix_nano: u64, events: u32) -> Self {
        let user_id = rng.random_bool(SIGNED_IN_SHARE).then(|| format!("user-{}", rng.random_range(0..USERS)));
        let metadata = json!({
            "user_agent": USER_AGENTS[rng.random_range(0..USER_AGENTS.len())],
            "screen": SCREENS[rng.random_range(0..SCREENS.len())],
            "locale": "en-US",
            "release": "shop-web@2.14.0",
            "environment": "production",
            "sdk": "productgraph-web/0.4.1",
        });
        Self {
            session_id,
            user_id,
            metadata,
            clock_unix_nano: start_unix_nano,
            sequence: 0,
            page: PAGES[rng.random_range(0..PAGES.len())],
            vitals_due: false,
            journey_step: 0,
            events_left: events,
        }
    }

    /// The session's signed-in user, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The next event in the web client's order (see [`Self::next_kind`]), after a think time;
    /// `None` once the session has emitted its events.
    pub fn next_event(&mut self, rng: &mut StdRng, allow_errors: bool) -> Option<(EventKind, Value)> {
        if self.events_left == 0 {
            return None;
        }
        let kind = self.next_kind(rng, allow_errors);
        Some((kind, self.event_of_kind(rng, kind, None)))
    }

    /// The kind of the next event: a page view first, web vitals after most page views, else a
    /// random interaction.
    pub fn next_kind(&self, rng: &mut StdRng, allow_errors: bool) -> EventKind {
        if self.sequence == 0 {
            EventKind::PageView
        } else if self.vitals_due && rng.random_bool(0.6) {
            EventKind::Performance
        } else {
            EventKind::choose(rng, allow_errors)
        }
    }

    /// An event of `kind`, at `at_unix_nano` or after a think time of 0.3–8 s.
    pub fn event_of_kind(&mut self, rng: &mut StdRng, kind: EventKind, at_unix_nano: Option<u64>) -> Value {
        self.events_left = self.events_left.saturating_sub(1);
        self.clock_unix_nano =
            at_unix_nano.unwrap_or(self.clock_unix_nano + rng.random_range(300_000_000..8_000_000_000));
        self.sequence += 1;
        self.vitals_due = kind == EventKind::PageView;
        if kind == EventKind::PageView && self.sequence > 1 {
            self.page = PAGES[rng.random_range(0..PAGES.len())];
        }
        let (path, title) = self.page;
        let mut event = Map::new();
        event.insert("event_id".into(), Value::String(uuid_v4(rng)));
        event.insert("product_id".into(), PRODUCT_ID.into());
        event.insert("session.id".into(), Value::String(self.session_id.clone()));
        if let Some(user_id) = &self.user_id {
            event.insert("user.id".into(), Value::String(user_id.clone()));
        }
        event.insert("event.type".into(), kind.event_type().into());
        event.insert("event.timestamp".into(), Value::String(rfc3339(self.clock_unix_nano)));
        event.insert("event.sequence".into(), self.sequence.into());
        event.insert("page.path".into(), path.into());
        event.insert("page.url".into(), Value::String(format!("{SITE}{path}")));
        let name: String = match kind {
            EventKind::PageView => {
                event.insert("page.title".into(), title.into());
                if self.sequence == 1 && rng.random_bool(0.5) {
                    event.insert("page.referrer".into(), "https://www.google.com/".into());
                }
                "page_view".into()
            }
            EventKind::Performance => {
                event.insert("performance.lcp_ms".into(), json!(rng.random_range(600.0..4200.0_f64).round()));
                event.insert("performance.fcp_ms".into(), json!(rng.random_range(300.0..2500.0_f64).round()));
                event.insert("performance.ttfb_ms".into(), json!(rng.random_range(40.0..900.0_f64).round()));
                event.insert("performance.inp_ms".into(), json!(rng.random_range(16.0..600.0_f64).round()));
                event.insert(
                    "performance.cls".into(),
                    json!((rng.random_range(0.0..0.3_f64) * 1000.0).round() / 1000.0),
                );
                "web_vitals".into()
            }
            EventKind::Click => {
                let (element, text, component, component_path) = CLICKS[rng.random_range(0..CLICKS.len())];
                event.insert("ui.element".into(), element.into());
                event.insert("ui.element.text".into(), text.into());
                event.insert("ui.component.name".into(), component.into());
                event.insert("ui.component.path".into(), component_path.into());
                event.insert("ui.action".into(), "click".into());
                format!("{component} clicked")
            }
            EventKind::Input => {
                let (element, component) = INPUTS[rng.random_range(0..INPUTS.len())];
                event.insert("ui.element".into(), element.into());
                event.insert("ui.component.name".into(), component.into());
                event.insert("ui.action".into(), "input".into());
                format!("{component} input")
            }
            EventKind::Scroll => {
                event.insert("ui.scroll.position".into(), json!(rng.random_range(0..6000)));
                event.insert("ui.viewport".into(), "1440x900".into());
                "scroll".into()
            }
            EventKind::ApiRequest => {
                let (method, api_path) = API_CALLS[rng.random_range(0..API_CALLS.len())];
                let status = match rng.random_range(0..100) {
                    0..=94 => 200,
                    95..=97 => 404,
                    _ => 502,
                };
                event.insert("api.method".into(), method.into());
                event.insert("api.path".into(), api_path.into());
                event.insert("api.status_code".into(), status.into());
                event.insert("api.duration_ms".into(), json!(rng.random_range(12.0..900.0_f64).round()));
                format!("{method} {api_path}")
            }
            EventKind::JourneyStep => {
                let (step_id, step_name) = JOURNEY_STEPS[self.journey_step.min(JOURNEY_STEPS.len() - 1)];
                let status = if self.journey_step + 1 >= JOURNEY_STEPS.len() { "converted" } else { "in_progress" };
                self.journey_step = (self.journey_step + 1) % JOURNEY_STEPS.len();
                event.insert("gen_ai.journey.id".into(), "checkout".into());
                event.insert("gen_ai.journey.step.id".into(), step_id.into());
                event.insert("gen_ai.journey.step.name".into(), step_name.into());
                event.insert("gen_ai.journey.conversion.status".into(), status.into());
                step_name.into()
            }
            EventKind::Error => {
                let (error_type, message, stack) = BUGS[rng.random_range(0..BUGS.len())];
                event.insert("error.type".into(), error_type.into());
                event.insert("error.message".into(), message.into());
                event.insert("error.stack".into(), stack.into());
                event.insert("error.component".into(), "CheckoutPage".into());
                message.into()
            }
        };
        event.insert("event.name".into(), Value::String(name));
        event.insert("metadata".into(), self.metadata.clone());
        Value::Object(event)
    }
}

/// `{"events": [...]}`.
fn encode_batch(events: &[Value]) -> Bytes {
    Bytes::from(serde_json::to_vec(&json!({"events": events})).expect("JSON values always serialize"))
}

/// Encodes `events` as `{"events": [...]}` bodies of at most `per_request` events.
pub fn encode_batches(events: &[Value], per_request: usize) -> Workload {
    let mut bodies = Vec::new();
    let mut items_per_body = Vec::new();
    for chunk in events.chunks(per_request.max(1)) {
        bodies.push(encode_batch(chunk));
        items_per_body.push(chunk.len() as u64);
    }
    Workload { bodies, items_per_body }
}

/// Generates and encodes `shape.requests` batches of sessions played out side by side, their
/// events in the hour before the last ten minutes. `seed` is mixed with the clock, so ids differ
/// between runs.
pub fn generate(shape: EventShape, seed: u64) -> EventWorkload {
    let now = now_unix_nano();
    let mut rng = StdRng::seed_from_u64(seed ^ now);
    let total_events = shape.requests * shape.events_per_request;
    let first_start = now - Duration::from_secs(70 * 60).as_nanos() as u64;
    // Session starts spread evenly over the hour as the generator walks through the events.
    let start_step = Duration::from_secs(60 * 60).as_nanos() as u64 / total_events.max(1) as u64;
    let mut active: Vec<SessionPlayer> = Vec::with_capacity(ACTIVE_SESSIONS);
    // Batches are encoded as soon as they fill: 200,000 events as `Value`s would take about a
    // GiB that the allocator keeps after they are dropped, inflating the phase's peak RSS.
    let mut bodies = Vec::with_capacity(shape.requests);
    let mut batch = Vec::with_capacity(shape.events_per_request);
    let mut emitted = 0usize;
    let mut events_by_type = BTreeMap::new();
    let mut sessions = 0u64;
    let mut users = std::collections::HashSet::new();
    while emitted < total_events {
        while active.len() < ACTIVE_SESSIONS {
            let start = first_start + start_step * emitted as u64;
            let session_id = session_id(&mut rng, start);
            let length = rng.random_range(SESSION_EVENTS.0..=SESSION_EVENTS.1);
            active.push(SessionPlayer::new(&mut rng, session_id, start, length));
        }
        let index = rng.random_range(0..active.len());
        let player = &mut active[index];
        match player.next_event(&mut rng, true) {
            Some((kind, event)) => {
                // Sessions still open when the events run out may never emit: count on the first.
                if player.sequence == 1 {
                    sessions += 1;
                    if let Some(user_id) = player.user_id() {
                        users.insert(user_id.to_owned());
                    }
                }
                *events_by_type.entry(kind.event_type()).or_insert(0) += 1;
                batch.push(event);
                emitted += 1;
                if batch.len() == shape.events_per_request {
                    bodies.push(encode_batch(&batch));
                    batch.clear();
                }
            }
            None => {
                active.swap_remove(index);
            }
        }
    }
    EventWorkload {
        workload: Workload { bodies, items_per_body: vec![shape.events_per_request as u64; shape.requests] },
        sessions,
        users: users.len() as u64,
        events_by_type,
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::event::parse_event;

    use super::*;

    #[test]
    fn every_generated_event_is_valid_and_batches_have_the_asked_size() {
        let generated = generate(EventShape { requests: 4, events_per_request: 250 }, 7);
        assert_eq!(generated.workload.total_items(), 1000);
        assert_eq!(generated.workload.items_per_body, [250, 250, 250, 250]);
        let mut ids = std::collections::HashSet::new();
        let mut sessions = std::collections::HashSet::new();
        for body in &generated.workload.bodies {
            let batch: Value = serde_json::from_slice(body).expect("JSON");
            for event in batch["events"].as_array().expect("events") {
                let parsed = parse_event(event, 0).expect("valid event");
                assert!(parsed.session_id.starts_with("sess-") && parsed.session_id.len() > 15);
                assert!(ids.insert(parsed.event_id.clone()), "event ids are unique");
                sessions.insert(parsed.session_id);
            }
        }
        assert_eq!(sessions.len() as u64, generated.sessions);
        // 64 sessions open at once and 20–50 events each: 1,000 events span dozens of sessions.
        assert!(generated.sessions > 30, "{}", generated.sessions);
        assert!(generated.events_by_type["page.view"] > 0 && generated.events_by_type["journey.step"] > 0);
    }

    #[test]
    fn uuids_are_version_4() {
        let mut rng = StdRng::seed_from_u64(1);
        let uuid = uuid_v4(&mut rng);
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"), "{uuid}");
    }

    #[test]
    fn base36_matches_javascript_to_string_36() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(1_732_442_400_000), "m3vfh340");
    }
}
