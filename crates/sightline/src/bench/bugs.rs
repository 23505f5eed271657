//! Distinct "bugs" for the error benchmark, each printed the way its runtime prints it: CPython
//! tracebacks, V8 `error.stack` (Node) and `Throwable.printStackTrace` (Java), which is what the
//! OpenTelemetry SDKs put in `exception.stacktrace`.
//!
//! A bug is fixed by its id: runtime, service, exception type, 10–30 frames (framework code, then
//! 3–8 application functions, then sometimes the library call the error surfaced in) and a message
//! template. Every event of a bug prints the same frames with a new message (ids and numbers
//! vary), so all its events share one fingerprint; the innermost application function is unique
//! per id, so different bugs never share one.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

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

/// (route template, a concrete path prefix) a bug is reached through.
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

/// One stack frame, as the runtime prints it.
#[derive(Debug, Clone)]
struct Frame {
    /// Python and Node: the file path; Java: the class, with its module (`java.base/java.lang.Thread`).
    location: String,
    /// Function or method; empty for an anonymous Node function.
    function: String,
    /// 0 when the runtime prints no position (`JSON.parse (<anonymous>)`).
    line: u32,
    /// Node: the column.
    column: u32,
    /// Python: the source line printed under the frame.
    source: String,
}

impl Frame {
    fn python(path: &str, function: &str, line: u32, source: &str) -> Self {
        Self { location: path.to_owned(), function: function.to_owned(), line, column: 0, source: source.to_owned() }
    }

    fn node(function: &str, path: &str, line: u32, column: u32) -> Self {
        Self { location: path.to_owned(), function: function.to_owned(), line, column, source: String::new() }
    }

    fn java(class: &str, method: &str, line: u32) -> Self {
        Self { location: class.to_owned(), function: method.to_owned(), line, column: 0, source: String::new() }
    }
}

/// What went wrong, per runtime: the exception, its message template (see [`fill_template`]), the
/// library frames it surfaced in (outermost first) and, for Python, the application line that failed.
struct Kind {
    exception_type: &'static str,
    message: &'static str,
    inner: fn() -> Vec<Frame>,
    failing_source: &'static str,
}

fn no_frames() -> Vec<Frame> {
    Vec::new()
}

const SITE_PACKAGES: &str = "/usr/local/lib/python3.12/site-packages";

fn python_json_frames() -> Vec<Frame> {
    vec![
        Frame::python("/usr/local/lib/python3.12/json/__init__.py", "loads", 346, "return _default_decoder.decode(s)"),
        Frame::python(
            "/usr/local/lib/python3.12/json/decoder.py",
            "decode",
            337,
            "obj, end = self.raw_decode(s, idx=_w(s, 0).end())",
        ),
        Frame::python(
            "/usr/local/lib/python3.12/json/decoder.py",
            "raw_decode",
            355,
            "raise JSONDecodeError(\"Expecting value\", s, err.value) from None",
        ),
    ]
}

fn python_requests_frames() -> Vec<Frame> {
    let file = |name: &str| format!("{SITE_PACKAGES}/requests/{name}");
    vec![
        Frame::python(&file("api.py"), "post", 115, "return request(\"post\", url, data=data, json=json, **kwargs)"),
        Frame::python(&file("api.py"), "request", 59, "return session.request(method=method, url=url, **kwargs)"),
        Frame::python(&file("sessions.py"), "request", 589, "resp = self.send(prep, **send_kwargs)"),
        Frame::python(&file("sessions.py"), "send", 703, "r = adapter.send(request, **kwargs)"),
        Frame::python(&file("adapters.py"), "send", 700, "raise ConnectionError(e, request=request)"),
    ]
}

fn python_sqlalchemy_frames() -> Vec<Frame> {
    let file = |name: &str| format!("{SITE_PACKAGES}/sqlalchemy/{name}");
    vec![
        Frame::python(&file("orm/session.py"), "commit", 1969, "trans.commit(_to_root=True)"),
        Frame::python(&file("orm/session.py"), "_prepare_impl", 1230, "self.session.flush()"),
        Frame::python(&file("orm/unitofwork.py"), "execute", 466, "rec.execute(self)"),
        Frame::python(&file("engine/base.py"), "_exec_single_context", 1967, "self.dialect.do_execute("),
        Frame::python(&file("engine/default.py"), "do_execute", 924, "cursor.execute(statement, parameters)"),
    ]
}

fn python_redis_frames() -> Vec<Frame> {
    let file = |name: &str| format!("{SITE_PACKAGES}/redis/{name}");
    vec![
        Frame::python(&file("commands/core.py"), "get", 1829, "return self.execute_command(\"GET\", name)"),
        Frame::python(
            &file("client.py"),
            "execute_command",
            559,
            "conn = self.connection or pool.get_connection(command_name, **options)",
        ),
        Frame::python(&file("connection.py"), "connect", 295, "raise ConnectionError(self._error_message(e))"),
    ]
}

const PYTHON_KINDS: &[Kind] = &[
    Kind {
        exception_type: "ValueError",
        message: "invalid literal for int() with base 10: '{n} boxes'",
        inner: no_frames,
        failing_source: "quantity = int(raw_quantity)",
    },
    Kind {
        exception_type: "KeyError",
        message: "'shipping_address_{n}'",
        inner: no_frames,
        failing_source: "return payload[field_name]",
    },
    Kind {
        exception_type: "TypeError",
        message: "unsupported operand type(s) for +: 'NoneType' and 'Decimal' (line item {n})",
        inner: no_frames,
        failing_source: "total = total + item.price",
    },
    Kind {
        exception_type: "AttributeError",
        message: "'NoneType' object has no attribute 'country' (customer {uuid})",
        inner: no_frames,
        failing_source: "country = customer.default_address.country",
    },
    Kind {
        exception_type: "ZeroDivisionError",
        message: "division by zero (order {n})",
        inner: no_frames,
        failing_source: "share = amount / len(recipients)",
    },
    Kind {
        exception_type: "json.decoder.JSONDecodeError",
        message: "Expecting value: line 1 column {n} (char {n})",
        inner: python_json_frames,
        failing_source: "payload = json.loads(body)",
    },
    Kind {
        exception_type: "requests.exceptions.ConnectionError",
        message: "HTTPConnectionPool(host='{ip}', port=8080): Max retries exceeded with url: /v1/charges/{hex}",
        inner: python_requests_frames,
        failing_source: "response = requests.post(url, json=charge, timeout=5)",
    },
    Kind {
        exception_type: "sqlalchemy.exc.IntegrityError",
        message: "(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint \"orders_pkey\" DETAIL: Key (id)=({n}) already exists.",
        inner: python_sqlalchemy_frames,
        failing_source: "db.session.commit()",
    },
    Kind {
        exception_type: "redis.exceptions.ConnectionError",
        message: "Error 111 connecting to {ip}:6379. Connection refused.",
        inner: python_redis_frames,
        failing_source: "cached = cache.get(cache_key)",
    },
    Kind {
        exception_type: "TimeoutError",
        message: "timed out after {ms} ms waiting for pricing-{n}",
        inner: no_frames,
        failing_source: "return future.result(timeout=deadline)",
    },
    Kind {
        exception_type: "shop.errors.PaymentDeclined",
        message: "card declined for order {n}: insufficient_funds",
        inner: no_frames,
        failing_source: "raise PaymentDeclined(f\"card declined for order {order.id}: {reason}\")",
    },
];

fn node_axios_frames() -> Vec<Frame> {
    vec![
        Frame::node("endReadableNT", "node:internal/streams/readable", 1696, 12),
        Frame::node("IncomingMessage.emit", "node:events", 531, 35),
        Frame::node("IncomingMessage.handleStreamEnd", "/srv/app/node_modules/axios/lib/adapters/http.js", 599, 11),
        Frame::node("settle", "/srv/app/node_modules/axios/lib/core/settle.js", 19, 12),
    ]
}

fn node_json_frames() -> Vec<Frame> {
    vec![Frame::node("JSON.parse", "<anonymous>", 0, 0)]
}

fn node_pg_frames() -> Vec<Frame> {
    vec![
        Frame::node("process.processTicksAndRejections", "node:internal/process/task_queues", 95, 5),
        Frame::node("", "/srv/app/node_modules/pg-pool/index.js", 45, 11),
    ]
}

const NODE_KINDS: &[Kind] = &[
    Kind {
        exception_type: "TypeError",
        message: "Cannot read properties of undefined (reading 'amount') for cart {hex}",
        inner: no_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "TypeError",
        message: "items.map is not a function (order {n})",
        inner: no_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "RangeError",
        message: "inventory for SKU-{n} is below zero: -{n}",
        inner: no_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "AxiosError",
        message: "Request failed with status code 503 (request {uuid})",
        inner: node_axios_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "SyntaxError",
        message: "Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON (response {n})",
        inner: node_json_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "Error",
        message: "connect ECONNREFUSED {ip}:5432",
        inner: node_pg_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "ValidationError",
        message: "order {n}: \"quantity\" must be a positive number",
        inner: no_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "ReferenceError",
        message: "currencyRates is not defined (tenant {n})",
        inner: no_frames,
        failing_source: "",
    },
];

fn java_optional_frames() -> Vec<Frame> {
    vec![Frame::java("java.base/java.util.Optional", "orElseThrow", 377)]
}

fn java_number_frames() -> Vec<Frame> {
    vec![
        Frame::java("java.base/java.lang.Integer", "parseInt", 778),
        Frame::java("java.base/java.lang.Integer", "parseInt", 662),
        Frame::java("java.base/java.lang.NumberFormatException", "forInputString", 67),
    ]
}

fn java_socket_frames() -> Vec<Frame> {
    vec![
        Frame::java("java.base/java.net.Socket$SocketInputStream", "read", 1099),
        Frame::java("java.base/sun.nio.ch.NioSocketImpl", "read", 346),
        Frame::java("java.base/sun.nio.ch.NioSocketImpl", "implRead", 323),
        Frame::java("java.base/sun.nio.ch.NioSocketImpl", "timedRead", 288),
    ]
}

fn java_iterator_frames() -> Vec<Frame> {
    vec![
        Frame::java("java.base/java.util.ArrayList$Itr", "next", 1049),
        Frame::java("java.base/java.util.ArrayList$Itr", "checkForComodification", 1095),
    ]
}

const JAVA_KINDS: &[Kind] = &[
    Kind {
        exception_type: "java.lang.NullPointerException",
        message: "Cannot invoke \"com.acme.model.Address.getCountry()\" because the return value of \"com.acme.model.Customer.getShippingAddress()\" is null",
        inner: no_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "java.lang.IllegalStateException",
        message: "reservation {n} was already released",
        inner: no_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "java.lang.IllegalArgumentException",
        message: "quantity must be positive: -{n}",
        inner: no_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "java.util.NoSuchElementException",
        message: "No value present",
        inner: java_optional_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "java.lang.NumberFormatException",
        message: "For input string: \"{n} boxes\"",
        inner: java_number_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "java.net.SocketTimeoutException",
        message: "Read timed out after {ms} ms",
        inner: java_socket_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "java.util.ConcurrentModificationException",
        message: "",
        inner: java_iterator_frames,
        failing_source: "",
    },
    Kind {
        exception_type: "com.acme.errors.OrderNotFoundException",
        message: "order {n} not found",
        inner: no_frames,
        failing_source: "",
    },
];

/// Django behind gunicorn, outermost first; a bug keeps the innermost part it needs.
fn python_framework_frames() -> Vec<Frame> {
    let file = |name: &str| format!("{SITE_PACKAGES}/{name}");
    let mut frames = vec![
        Frame::python(
            &file("gunicorn/workers/sync.py"),
            "handle_request",
            178,
            "respiter = self.wsgi(environ, resp.start_response)",
        ),
        Frame::python(&file("django/core/handlers/wsgi.py"), "__call__", 124, "response = self.get_response(request)"),
        Frame::python(
            &file("django/core/handlers/base.py"),
            "get_response",
            140,
            "response = self._middleware_chain(request)",
        ),
    ];
    // One pair per middleware, as Django prints them.
    for _ in 0..12 {
        frames.push(Frame::python(
            &file("django/core/handlers/exception.py"),
            "inner",
            55,
            "response = get_response(request)",
        ));
        frames.push(Frame::python(
            &file("django/utils/deprecation.py"),
            "__call__",
            129,
            "response = response or self.get_response(request)",
        ));
    }
    frames.extend([
        Frame::python(&file("django/core/handlers/exception.py"), "inner", 55, "response = get_response(request)"),
        Frame::python(
            &file("django/core/handlers/base.py"),
            "_get_response",
            197,
            "response = wrapped_callback(request, *callback_args, **callback_kwargs)",
        ),
        Frame::python(
            &file("django/views/decorators/csrf.py"),
            "_view_wrapper",
            65,
            "return view_func(request, *args, **kwargs)",
        ),
        Frame::python(
            &file("django/views/generic/base.py"),
            "view",
            104,
            "return self.dispatch(request, *args, **kwargs)",
        ),
        Frame::python(&file("rest_framework/views.py"), "dispatch", 509, "response = self.handle_exception(exc)"),
    ]);
    frames
}

/// Express, outermost first.
fn node_framework_frames() -> Vec<Frame> {
    let express = |name: &str| format!("/srv/app/node_modules/express/lib/router/{name}");
    let mut frames = vec![Frame::node("process.processTicksAndRejections", "node:internal/process/task_queues", 95, 5)];
    for (middleware, file, line) in [
        ("jsonParser", "/srv/app/node_modules/body-parser/lib/types/json.js", 113),
        ("cookieParser", "/srv/app/node_modules/cookie-parser/index.js", 71),
        ("compression", "/srv/app/node_modules/compression/index.js", 220),
        ("helmetMiddleware", "/srv/app/node_modules/helmet/index.cjs", 531),
        ("session", "/srv/app/node_modules/express-session/index.js", 487),
        ("logger", "/srv/app/node_modules/morgan/index.js", 144),
    ] {
        frames.push(Frame::node("Function.handle", &express("index.js"), 175, 3));
        frames.push(Frame::node("next", &express("index.js"), 280, 10));
        frames.push(Frame::node(middleware, file, line, 7));
        frames.push(Frame::node("trim_prefix", &express("index.js"), 328, 13));
    }
    frames.extend([
        Frame::node("", &express("index.js"), 284, 15),
        Frame::node("Layer.handle [as handle_request]", &express("layer.js"), 95, 5),
        Frame::node("Route.dispatch", &express("route.js"), 119, 3),
        Frame::node("next", &express("route.js"), 149, 13),
        Frame::node("Layer.handle [as handle_request]", &express("layer.js"), 95, 5),
    ]);
    frames
}

/// Spring MVC on Tomcat, outermost first.
fn java_framework_frames() -> Vec<Frame> {
    let mut frames = vec![
        Frame::java("java.base/java.lang.Thread", "run", 1583),
        Frame::java("org.apache.tomcat.util.threads.TaskThread$WrappingRunnable", "run", 63),
        Frame::java("org.apache.tomcat.util.threads.ThreadPoolExecutor$Worker", "run", 659),
        Frame::java("org.apache.tomcat.util.threads.ThreadPoolExecutor", "runWorker", 1190),
        Frame::java("org.apache.tomcat.util.net.SocketProcessorBase", "run", 52),
        Frame::java("org.apache.tomcat.util.net.NioEndpoint$SocketProcessor", "doRun", 1744),
        Frame::java("org.apache.coyote.AbstractProtocol$ConnectionHandler", "process", 904),
        Frame::java("org.apache.coyote.http11.Http11Processor", "service", 393),
        Frame::java("org.apache.catalina.connector.CoyoteAdapter", "service", 344),
        Frame::java("org.apache.catalina.core.StandardEngineValve", "invoke", 74),
        Frame::java("org.apache.catalina.valves.ErrorReportValve", "invoke", 93),
        Frame::java("org.apache.catalina.core.StandardHostValve", "invoke", 115),
        Frame::java("org.apache.catalina.authenticator.AuthenticatorBase", "invoke", 483),
        Frame::java("org.apache.catalina.core.StandardContextValve", "invoke", 90),
        Frame::java("org.apache.catalina.core.StandardWrapperValve", "invoke", 167),
    ];
    for filter in [
        "org.springframework.web.filter.CharacterEncodingFilter",
        "org.springframework.web.filter.FormContentFilter",
        "org.springframework.web.filter.RequestContextFilter",
        "org.springframework.web.filter.ServerHttpObservationFilter",
    ] {
        frames.push(Frame::java("org.apache.catalina.core.ApplicationFilterChain", "doFilter", 138));
        frames.push(Frame::java("org.springframework.web.filter.OncePerRequestFilter", "doFilter", 116));
        frames.push(Frame::java(filter, "doFilterInternal", 201));
    }
    frames.extend([
        Frame::java("org.apache.catalina.core.ApplicationFilterChain", "doFilter", 138),
        Frame::java("org.springframework.web.servlet.FrameworkServlet", "service", 885),
        Frame::java("jakarta.servlet.http.HttpServlet", "service", 658),
        Frame::java("org.springframework.web.servlet.FrameworkServlet", "doPost", 914),
        Frame::java("org.springframework.web.servlet.FrameworkServlet", "processRequest", 1014),
        Frame::java("org.springframework.web.servlet.DispatcherServlet", "doService", 979),
        Frame::java("org.springframework.web.servlet.DispatcherServlet", "doDispatch", 1089),
        Frame::java("org.springframework.web.servlet.mvc.method.AbstractHandlerMethodAdapter", "handle", 87),
        Frame::java(
            "org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerAdapter",
            "invokeHandlerMethod",
            920,
        ),
        Frame::java("org.springframework.web.method.support.InvocableHandlerMethod", "invokeForRequest", 150),
        Frame::java("org.springframework.web.method.support.InvocableHandlerMethod", "doInvoke", 255),
        Frame::java("java.base/java.lang.reflect.Method", "invoke", 580),
        Frame::java("java.base/jdk.internal.reflect.DirectMethodHandleAccessor", "invoke", 103),
    ]);
    frames
}

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
