//! OpenTelemetry semantic-convention keys Sightline reads (semantic-conventions v1.x).

/// Resource: logical service name (`service.name`).
pub const SERVICE_NAME: &str = "service.name";
/// Value the SDK specification prescribes when `service.name` is missing.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
/// Resource: service version (`service.version`).
pub const SERVICE_VERSION: &str = "service.version";
/// Resource: deployment environment (`deployment.environment.name`).
pub const DEPLOYMENT_ENVIRONMENT_NAME: &str = "deployment.environment.name";
/// Span/log: session id (`session.id`).
pub const SESSION_ID: &str = "session.id";
/// HTTP route template (`http.route`).
pub const HTTP_ROUTE: &str = "http.route";
/// HTTP method (`http.request.method`).
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// HTTP status (`http.response.status_code`).
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
