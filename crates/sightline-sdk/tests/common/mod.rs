//! Test harness: a real Sightline server in-process on ephemeral loopback ports with a
//! temporary data directory, its keys, a JSON client for the query API, and a bounded poll.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use sightline_server::Config;
use sightline_server::server::{RunningServer, ensure_default_project, open_store, start};

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub data_dir: tempfile::TempDir,
    pub ingest_key: String,
    pub read_key: String,
    pub http_addr: SocketAddr,
    pub http: reqwest::Client,
}

impl TestServer {
    /// Starts a fresh server with default settings.
    pub async fn start() -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            data_dir: data_dir.path().to_path_buf(),
            http_addr: "127.0.0.1:0".parse().expect("addr"),
            grpc_addr: "127.0.0.1:0".parse().expect("addr"),
            ..Config::default()
        };
        let store = open_store(&config).expect("store");
        let first =
            ensure_default_project(store.as_ref()).expect("project").expect("fresh store creates the default project");
        let server = start(config, store).await.expect("server starts");
        Self {
            http_addr: server.http_addr,
            server: Some(server),
            data_dir,
            ingest_key: first.ingest_key.expose().to_owned(),
            read_key: first.read_key.expose().to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub fn http_base(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// GET an API path with the read key and require 200.
    pub async fn api_ok(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.http_base()))
            .bearer_auth(&self.read_key)
            .send()
            .await
            .expect("API answers");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "GET {path} answered {status}: {body}");
        body
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes (then panics with
/// `what`): storage is asynchronous (group commit), so tests wait for a condition, never a
/// fixed time.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
