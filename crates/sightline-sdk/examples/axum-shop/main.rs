//! axum-shop: a shop service and the inventory service it calls, instrumented with
//! `sightline-sdk` and sending traces, metrics, logs and product events to a local Sightline.
//!
//! ```text
//! sightline serve                                   # OTLP/HTTP and /v1/events on :4318
//! export SIGHTLINE_ENDPOINT=http://localhost:4318 SIGHTLINE_API_KEY=<ingest key>
//! cargo run -p sightline-sdk --example axum-shop -- inventory   # :3001
//! cargo run -p sightline-sdk --example axum-shop -- shop        # :3000, calls :3001
//! curl -H 'X-Session-ID: sess-1' -X POST localhost:3000/cart/mug
//! curl -H 'X-Session-ID: sess-1' -X POST 'localhost:3000/checkout?fail=true'
//! ```
//! SIGTERM or Ctrl-C stops the server gracefully; dropping the guard then delivers every queued
//! event (within its 5 s shutdown timeout) and flushes spans, logs and metrics.

mod app;

use sightline_sdk::SightlineLayer;

/// Resolves on SIGTERM (what container runtimes send) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let role = std::env::args().nth(1).unwrap_or_else(|| "shop".to_owned());
    let (service_name, default_port) = match role.as_str() {
        "shop" => ("axum-shop", 3000),
        "inventory" => ("inventory", 3001),
        other => return Err(format!("unknown role {other:?}: use shop or inventory").into()),
    };
    let builder = sightline_sdk::builder().service_name(service_name).from_env()?;
    let guard = builder.install()?;
    let port: u16 = std::env::var("PORT").ok().and_then(|port| port.parse().ok()).unwrap_or(default_port);
    let router = match role.as_str() {
        "shop" => {
            let events = guard.events().cloned().ok_or("events are disabled")?;
            let state = app::ShopState {
                inventory_url: std::env::var("INVENTORY_URL").unwrap_or_else(|_| "http://127.0.0.1:3001".to_owned()),
                http: sightline_sdk::http_client::client(reqwest::Client::new()),
                events,
            };
            app::shop_router(state, SightlineLayer::new())
        }
        _ => app::inventory_router(SightlineLayer::new()),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(service = service_name, address = %listener.local_addr()?, "Listening");
    axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await?;
    tracing::info!("Shutting down; flushing telemetry");
    // Blocking flush off the async runtime's reactor.
    tokio::task::spawn_blocking(move || drop(guard)).await?;
    Ok(())
}
