//! The frames bugs print: each runtime's framework stack (outermost first, a bug keeps the
//! innermost part it needs) and the kinds of failure with the library frames they surface in.
//! Paths, classes and line numbers are those of current releases (Python 3.12 with Django and
//! DRF, Node 20 with Express 4, Java 21 with Spring MVC 6 on Tomcat 10).

/// One stack frame, as the runtime prints it.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    /// Python and Node: the file path; Java: the class, with its module (`java.base/java.lang.Thread`).
    pub(super) location: String,
    /// Function or method; empty for an anonymous Node function.
    pub(super) function: String,
    /// 0 when the runtime prints no position (`JSON.parse (<anonymous>)`).
    pub(super) line: u32,
    /// Node: the column.
    pub(super) column: u32,
    /// Python: the source line printed under the frame.
    pub(super) source: String,
}

impl Frame {
    pub(super) fn python(path: &str, function: &str, line: u32, source: &str) -> Self {
        Self { location: path.to_owned(), function: function.to_owned(), line, column: 0, source: source.to_owned() }
    }

    pub(super) fn node(function: &str, path: &str, line: u32, column: u32) -> Self {
        Self { location: path.to_owned(), function: function.to_owned(), line, column, source: String::new() }
    }

    pub(super) fn java(class: &str, method: &str, line: u32) -> Self {
        Self { location: class.to_owned(), function: method.to_owned(), line, column: 0, source: String::new() }
    }
}

/// What went wrong, per runtime: the exception, its message template (see
/// [`super::fill_template`]), the library frames it surfaced in (outermost first) and, for Python,
/// the application line that failed.
pub(super) struct Kind {
    pub(super) exception_type: &'static str,
    pub(super) message: &'static str,
    pub(super) inner: fn() -> Vec<Frame>,
    pub(super) failing_source: &'static str,
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

pub(super) const PYTHON_KINDS: &[Kind] = &[
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

pub(super) const NODE_KINDS: &[Kind] = &[
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

pub(super) const JAVA_KINDS: &[Kind] = &[
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
pub(super) fn python_framework_frames() -> Vec<Frame> {
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
pub(super) fn node_framework_frames() -> Vec<Frame> {
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
pub(super) fn java_framework_frames() -> Vec<Frame> {
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
