//! The layer over plain tower/hyper services (any body type), without axum or an OpenTelemetry
//! layer installed: ids still reach the handler through the attached context.

use std::convert::Infallible;

use http::{Request, Response};
use tower::{ServiceBuilder, ServiceExt};

use super::SightlineLayer;

#[tokio::test]
async fn works_on_a_plain_tower_service_with_any_body() {
    crate::propagation::install(&crate::propagation::Propagation::DEFAULT);
    let service =
        ServiceBuilder::new().layer(SightlineLayer::new()).service_fn(|request: Request<String>| async move {
            let identity = crate::context::RequestIdentity::current();
            let body = format!("{}|{}", request.body(), identity.session_id.unwrap_or_default());
            Ok::<_, Infallible>(Response::new(body))
        });
    let request = Request::post("/rpc").header("x-session-id", "sess-tower").body("hello".to_owned()).expect("request");
    let response = service.oneshot(request).await.expect("response");
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(response.into_body(), "hello|sess-tower");
}

#[tokio::test]
async fn an_inner_error_passes_through() {
    let service =
        ServiceBuilder::new().layer(SightlineLayer::new()).service_fn(|_request: Request<String>| async move {
            Err::<Response<String>, _>(std::io::Error::other("backend down"))
        });
    let error = service.oneshot(Request::new(String::new())).await.expect_err("error passes through");
    assert_eq!(error.to_string(), "backend down");
}
