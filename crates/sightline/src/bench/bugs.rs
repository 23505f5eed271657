//! Distinct "bugs" for the error benchmark, each printed the way its runtime prints it: CPython
//! tracebacks, V8 `error.stack` (Node) and `Throwable.printStackTrace` (Java), which is what the
//! OpenTelemetry SDKs put in `exception.stacktrace`.
//!
//! A bug is fixed by its id: runtime, service, exception type, 10–30 frames (framework code, then
//! 3–8 application functions, then sometimes the library call the error surfaced in) and a message
//! template. Every event of a bug prints the same frames with a new message (ids and numbers
//! vary), so all its events share one fingerprint; the innermost application function is unique
//! per id, so different bugs never share one.

mod frames;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use frames::{
    Frame, JAVA_KINDS, NODE_KINDS, PYTHON_KINDS, java_framework_frames, node_framework_frames, python_framework_frames,
};

/// The runtime a bug happens in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// CPython behind Django.
    Python,
    /// Node behind Express.
    Node,
    /// Java behind Spring MVC on Tomcat.
    Java,
}

impl Runtime {
    /// Resource attribute `telemetry.sdk.language` (OTel semantic conventions).
    pub fn sdk_language(self) -> &'static str {
        match self {
            Runtime::Python => "python",
            Runtime::Node => "nodejs",
            Runtime::Java => "java",
        }
    }

    /// Services written in this runtime.
    pub fn services(self) -> &'static [&'static str] {
        match self {
            Runtime::Python => &["checkout", "recommendations", "accounts"],
            Runtime::Node => &["frontend", "cart-api", "notifications"],
            Runtime::Java => &["payment", "inventory", "shipping"],
        }
    }
}

const RUNTIMES: [Runtime; 3] = [Runtime::Python, Runtime::Node, Runtime::Java];

/// Route templates (`http.route`) requests and bugs are reached through.
pub const ROUTES: &[&str] = &[
    "/api/orders/{order_id}",
    "/api/cart",
    "/api/cart/items",
    "/api/checkout",
    "/api/products/{product_id}",
    "/api/users/{user_id}/addresses",
    "/api/payments/{payment_id}/capture",
    "/api/shipments/{shipment_id}/quote",
    "/api/search",
    "/api/webhooks/stripe",
];

const VERBS: [&str; 20] = [
    "load",
    "apply",
    "validate",
    "compute",
    "reserve",
    "charge",
    "refund",
    "render",
    "parse",
    "fetch",
    "sync",
    "publish",
    "resolve",
    "build",
    "merge",
    "cancel",
    "schedule",
    "notify",
    "export",
    "normalize",
];
const NOUNS: [&str; 25] = [
    "cart",
    "coupon",
    "order",
    "invoice",
    "payment",
    "shipment",
    "address",
    "profile",
    "session",
    "token",
    "price",
    "discount",
    "inventory",
    "review",
    "wishlist",
    "receipt",
    "subscription",
    "plan",
    "catalog",
    "search_index",
    "recommendation",
    "webhook",
    "ledger",
    "currency",
    "tax_rate",
];

/// A bug: where it happens and how its events print.
#[derive(Debug, Clone)]
pub struct Bug {
    /// Its id (also what makes its innermost application function unique).
    pub id: usize,
    /// Its runtime.
    pub runtime: Runtime,
    /// `service.name` of the service it lives in.
    pub service: &'static str,
    /// `http.route` it is reached through.
    pub route: &'static str,
    /// Logged at FATAL rather than ERROR.
    pub fatal: bool,
    /// The application function the error happens in, unique per bug.
    pub innermost_function: String,
    /// `exception.type` (Java: the top-level exception of the chain).
    pub exception_type: String,
    message: String,
    /// Outermost first: framework, application, then the library the error surfaced in.
    frames: Vec<Frame>,
    /// Java only: (frames of the top-level exception, its message template); the `Caused by:` is
    /// the kind's exception with all of `frames`.
    wrapper: Option<(usize, String)>,
    /// The kind's exception when `wrapper` is set.
    cause_type: String,
}

/// `apply` + `coupon` → `apply_coupon` (Python) or `applyCoupon`.
fn function_name(runtime: Runtime, verb: &str, noun: &str) -> String {
    match runtime {
        Runtime::Python => format!("{verb}_{noun}"),
        Runtime::Node | Runtime::Java => format!("{verb}{}", pascal_case(noun)),
    }
}

fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut characters = word.chars();
            characters
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + characters.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// An application frame for `function` at a place typical of the runtime.
fn application_frame(runtime: Runtime, service: &str, function: &str, noun: &str, rng: &mut StdRng) -> Frame {
    let line = rng.random_range(12..480);
    match runtime {
        Runtime::Python => {
            let area = [
                "views",
                "api/handlers",
                "services/pricing",
                "services/orders",
                "models",
                "serializers",
                "domain/cart",
                "repositories",
                "clients/gateway",
                "utils/money",
            ]
            .choose(rng)
            .copied()
            .unwrap_or("views");
            let package = service.replace('-', "_");
            Frame::python(&format!("/srv/app/{package}/{area}.py"), function, line, "")
        }
        Runtime::Node => {
            let area = [
                "routes/orders",
                "controllers/cart",
                "services/pricing",
                "services/inventory",
                "lib/httpClient",
                "models/order",
                "middleware/auth",
                "jobs/sync",
            ]
            .choose(rng)
            .copied()
            .unwrap_or("routes/orders");
            let style = rng.random_range(0..3);
            let printed = match style {
                0 => function.to_owned(),
                1 => format!("async {function}"),
                _ => format!("{}Service.{function}", pascal_case(noun)),
            };
            Frame::node(&printed, &format!("/srv/app/src/{area}.js"), line, rng.random_range(5..60))
        }
        Runtime::Java => {
            let (layer, suffix) = [
                ("web", "Controller"),
                ("service", "Service"),
                ("repository", "Repository"),
                ("client", "Client"),
                ("domain", "Policy"),
                ("validation", "Validator"),
            ]
            .choose(rng)
            .copied()
            .unwrap_or(("service", "Service"));
            let package = service.replace('-', "");
            Frame::java(&format!("com.acme.{package}.{layer}.{}{suffix}", pascal_case(noun)), function, line)
        }
    }
}

impl Bug {
    /// The bug with this id; `rng` only picks the details (seed it from the id for a stable
    /// catalogue).
    pub fn new(id: usize, rng: &mut StdRng) -> Self {
        let runtime = RUNTIMES[id % RUNTIMES.len()];
        let services = runtime.services();
        let service = services[(id / RUNTIMES.len()) % services.len()];
        let kinds = match runtime {
            Runtime::Python => PYTHON_KINDS,
            Runtime::Node => NODE_KINDS,
            Runtime::Java => JAVA_KINDS,
        };
        let kind = &kinds[rng.random_range(0..kinds.len())];
        let inner = (kind.inner)();
        let total_frames = rng.random_range(10..=30usize);
        let application_depth = rng.random_range(3..=8usize);
        let framework_depth = total_frames.saturating_sub(application_depth + inner.len()).max(2);
        let framework = match runtime {
            Runtime::Python => python_framework_frames(),
            Runtime::Node => node_framework_frames(),
            Runtime::Java => java_framework_frames(),
        };
        let mut frames: Vec<Frame> = framework[framework.len().saturating_sub(framework_depth)..].to_vec();

        // The innermost application function is unique per id: 500 verb/noun pairs, then a
        // generation suffix for catalogues larger than that.
        let generation = id / (VERBS.len() * NOUNS.len());
        let mut innermost = function_name(runtime, VERBS[id % VERBS.len()], NOUNS[(id / VERBS.len()) % NOUNS.len()]);
        if generation > 0 {
            innermost.push_str(&match runtime {
                Runtime::Python => format!("_v{generation}"),
                Runtime::Node | Runtime::Java => format!("V{generation}"),
            });
        }
        let innermost_noun = NOUNS[(id / VERBS.len()) % NOUNS.len()];
        let mut application = Vec::with_capacity(application_depth);
        for _ in 1..application_depth {
            let (verb, noun) = (*VERBS.choose(rng).unwrap_or(&"load"), *NOUNS.choose(rng).unwrap_or(&"order"));
            application.push(application_frame(runtime, service, &function_name(runtime, verb, noun), noun, rng));
        }
        application.push(application_frame(runtime, service, &innermost, innermost_noun, rng));
        if runtime == Runtime::Python {
            // Each application frame prints the call into the next one; the last prints what failed.
            let callees: Vec<String> = application.iter().skip(1).map(|frame| frame.function.clone()).collect();
            for (frame, callee) in application.iter_mut().zip(callees) {
                frame.source = format!("return {callee}(request, *args)");
            }
            if let Some(last) = application.last_mut() {
                last.source = kind.failing_source.to_owned();
            }
        }
        let catching_frame = frames.len() + application_depth / 2;
        frames.extend(application);
        frames.extend(inner);

        // A fifth of Java bugs are wrapped by the application (`Caused by:`), as services do at
        // layer boundaries.
        let (exception_type, message, wrapper, cause_type) = if runtime == Runtime::Java && rng.random_bool(0.2) {
            let wrapper_type =
                format!("com.acme.{}.{}ProcessingException", service.replace('-', ""), pascal_case(innermost_noun));
            let wrapper_message =
                format!("could not {} {} {{n}}", VERBS[id % VERBS.len()], innermost_noun.replace('_', " "));
            (
                wrapper_type,
                kind.message.to_owned(),
                Some((catching_frame + 1, wrapper_message)),
                kind.exception_type.to_owned(),
            )
        } else {
            (kind.exception_type.to_owned(), kind.message.to_owned(), None, String::new())
        };
        Self {
            id,
            runtime,
            service,
            route: ROUTES[rng.random_range(0..ROUTES.len())],
            fatal: id % 37 == 5,
            innermost_function: innermost,
            exception_type,
            message,
            frames,
            wrapper,
            cause_type,
        }
    }

    /// Frames over the whole chain as the grouping sees them (a `Caused by:` restores the frames
    /// it shares with the enclosing exception).
    pub fn frame_count(&self) -> usize {
        self.frames.len() + self.wrapper.as_ref().map_or(0, |(depth, _)| *depth)
    }

    /// One event of this bug: (`exception.message`, `exception.stacktrace`).
    pub fn render(&self, rng: &mut StdRng) -> (String, String) {
        let message = fill_template(&self.message, rng);
        match self.runtime {
            Runtime::Python => (message.clone(), self.render_python(&message)),
            Runtime::Node => (message.clone(), self.render_node(&message)),
            Runtime::Java => match &self.wrapper {
                Some((depth, wrapper_template)) => {
                    let wrapper_message = fill_template(wrapper_template, rng);
                    let trace = self.render_java_wrapped(*depth, &wrapper_message, &message);
                    (wrapper_message, trace)
                }
                None => {
                    (message.clone(), render_java_block(&self.exception_type, &message, self.frames.iter().rev(), ""))
                }
            },
        }
    }

    fn render_python(&self, message: &str) -> String {
        let mut out = String::from("Traceback (most recent call last):\n");
        for frame in &self.frames {
            out.push_str(&format!("  File \"{}\", line {}, in {}\n", frame.location, frame.line, frame.function));
            if !frame.source.is_empty() {
                out.push_str(&format!("    {}\n", frame.source));
            }
        }
        out.push_str(&format!("{}: {message}\n", self.exception_type));
        out
    }

    fn render_node(&self, message: &str) -> String {
        let mut out = format!("{}: {message}\n", self.exception_type);
        for frame in self.frames.iter().rev() {
            let position = if frame.line == 0 {
                frame.location.clone()
            } else {
                format!("{}:{}:{}", frame.location, frame.line, frame.column)
            };
            if frame.function.is_empty() {
                out.push_str(&format!("    at {position}\n"));
            } else {
                out.push_str(&format!("    at {} ({position})\n", frame.function));
            }
        }
        out.trim_end().to_owned()
    }

    /// `Throwable.printStackTrace` of a wrapper thrown in `frames[depth - 1]` (at another line
    /// than the call it wraps) with the kind's exception as its cause.
    fn render_java_wrapped(&self, depth: usize, wrapper_message: &str, cause_message: &str) -> String {
        let mut enclosing: Vec<Frame> = self.frames[..depth].to_vec();
        if let Some(throwing) = enclosing.last_mut() {
            throwing.line += 3;
        }
        let mut out = render_java_block(&self.exception_type, wrapper_message, enclosing.iter().rev(), "");
        // The frames the cause shares with the enclosing trace (compared with line numbers) are
        // elided as "... N more".
        let shared = depth - 1;
        let cause_frames = self.frames[shared..].iter().rev();
        out.push_str(&render_java_block(&self.cause_type, cause_message, cause_frames, "Caused by: "));
        out.push_str(&format!("\t... {shared} more\n"));
        out
    }
}

fn render_java_block<'a>(
    exception_type: &str,
    message: &str,
    frames: impl Iterator<Item = &'a Frame>,
    prefix: &str,
) -> String {
    let mut out = if message.is_empty() {
        format!("{prefix}{exception_type}\n")
    } else {
        format!("{prefix}{exception_type}: {message}\n")
    };
    for frame in frames {
        let class = frame.location.rsplit('/').next().unwrap_or(&frame.location);
        let simple = class.rsplit('.').next().unwrap_or(class);
        let file = simple.split('$').next().unwrap_or(simple);
        out.push_str(&format!("\tat {}.{}({file}.java:{})\n", frame.location, frame.function, frame.line));
    }
    out
}

/// Replaces `{n}` (a number), `{hex}` (8 hex digits), `{uuid}`, `{ip}` (private IPv4) and `{ms}`
/// with fresh random values, as real messages carry ids and measurements.
pub fn fill_template(template: &str, rng: &mut StdRng) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('}') else {
            break;
        };
        match &after[1..end] {
            "n" => out.push_str(&rng.random_range(1..100_000u32).to_string()),
            "hex" => out.push_str(&format!("{:08x}", rng.random::<u32>())),
            "uuid" => {
                let value: u128 = rng.random();
                let hex = format!("{value:032x}");
                out.push_str(&format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                ));
            }
            "ip" => out.push_str(&format!(
                "10.{}.{}.{}",
                rng.random_range(0..32u8),
                rng.random::<u8>(),
                rng.random_range(1..255u8)
            )),
            "ms" => out.push_str(&rng.random_range(1_000..30_000u32).to_string()),
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}
