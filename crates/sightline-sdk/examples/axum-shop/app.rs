//! The two services of the axum-shop example: the shop (products, cart, checkout) and the
//! inventory service it calls over HTTP with W3C propagation. Shared with the end-to-end test.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sightline_sdk::{Event, EventClient, SightlineLayer, traced};

/// What the shop's handlers share.
#[derive(Clone)]
pub struct ShopState {
    /// Base URL of the inventory service.
    pub inventory_url: String,
    /// An HTTP client that injects trace context and `X-Session-ID`.
    pub http: reqwest_middleware::ClientWithMiddleware,
    /// The product-event client.
    pub events: EventClient,
}

/// Checkout failures.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The payment provider did not answer in time.
    #[error("payment gateway timed out after {0} ms")]
    GatewayTimeout(u64),
    /// The inventory service refused the reservation.
    #[error("inventory answered {0}")]
    Inventory(u16),
    /// The inventory service could not be reached.
    #[error("inventory unreachable: {0}")]
    Transport(#[from] reqwest_middleware::Error),
}

/// `/checkout` query.
#[derive(Debug, Deserialize)]
pub struct CheckoutQuery {
    /// Simulates a payment gateway timeout.
    #[serde(default)]
    pub fail: bool,
}

/// The shop router with the Sightline middleware.
pub fn shop_router(state: ShopState, layer: SightlineLayer) -> Router {
    Router::new()
        .route("/products/{sku}", get(product))
        .route("/cart/{sku}", post(add_to_cart))
        .route("/checkout", post(checkout))
        .route("/health", get(|| async { "ok" }))
        .with_state(Arc::new(state))
        .layer(layer)
}

/// The inventory router with the Sightline middleware.
pub fn inventory_router(layer: SightlineLayer) -> Router {
    Router::new().route("/stock/{sku}", get(stock)).route("/reserve/{sku}", post(reserve_handler)).layer(layer)
}

async fn product(State(state): State<Arc<ShopState>>, Path(sku): Path<String>) -> Response {
    state.events.track(
        Event::new(sightline_sdk::events::EventType::PageView, "product")
            .property("page.path", format!("/products/{sku}")),
    );
    match state.http.get(format!("{}/stock/{sku}", state.inventory_url)).send().await {
        Ok(response) => {
            let stock = response.text().await.unwrap_or_default();
            tracing::info!(%sku, %stock, "Product viewed");
            (StatusCode::OK, format!("{sku}: {stock} in stock")).into_response()
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

async fn add_to_cart(State(state): State<Arc<ShopState>>, Path(sku): Path<String>) -> Response {
    state.events.journey_step("checkout", "cart", "Add to cart");
    match reserve_remote(&state, &sku).await {
        Ok(()) => {
            tracing::info!(%sku, "Added to cart");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => {
            state.events.error(&error);
            (StatusCode::BAD_GATEWAY, error.to_string()).into_response()
        }
    }
}

#[traced(name = "inventory.reserve_remote", record(sku))]
async fn reserve_remote(state: &ShopState, sku: &str) -> Result<(), CheckoutError> {
    let response = state.http.post(format!("{}/reserve/{sku}", state.inventory_url)).send().await?;
    if !response.status().is_success() {
        return Err(CheckoutError::Inventory(response.status().as_u16()));
    }
    Ok(())
}

#[traced(record(amount_cents))]
async fn charge(amount_cents: u64, fail: bool) -> Result<String, CheckoutError> {
    if fail {
        return Err(CheckoutError::GatewayTimeout(3000));
    }
    Ok(format!("charged {amount_cents}"))
}

async fn checkout(State(state): State<Arc<ShopState>>, Query(query): Query<CheckoutQuery>) -> Response {
    state.events.journey_step("checkout", "payment", "Payment");
    match charge(4999, query.fail).await {
        Ok(receipt) => {
            state.events.journey_step("checkout", "confirmed", "Order confirmed");
            tracing::info!(%receipt, "Checkout complete");
            (StatusCode::OK, receipt).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "Checkout failed");
            state.events.error(&error);
            (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
        }
    }
}

async fn stock(Path(sku): Path<String>) -> String {
    tracing::info!(%sku, "Stock looked up");
    format!("{}", sku.len() * 7)
}

/// Reserves one unit; `sku`s starting with `sold-out` are refused.
#[traced(record(sku))]
fn reserve(sku: &str) -> Result<u32, StatusCode> {
    if sku.starts_with("sold-out") { Err(StatusCode::CONFLICT) } else { Ok(1) }
}

async fn reserve_handler(Path(sku): Path<String>) -> StatusCode {
    match reserve(&sku) {
        Ok(_) => {
            tracing::info!(%sku, "Reserved");
            StatusCode::NO_CONTENT
        }
        Err(status) => status,
    }
}
