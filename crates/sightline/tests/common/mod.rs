//! Test harness: a real Sightline server on ephemeral loopback ports with a temporary data
//! directory, its keys, and a small JSON client for the query API.

#![allow(dead_code)]

pub mod browser;
pub mod dashboard;
pub mod performance;
pub mod sketch;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use sightline_server::Config;
use sightline_server::server::{RunningServer, ensure_default_project, open_store, start};

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub data_dir: tempfile::TempDir,
    pub ingest_key: String,
    pub read_key: String,
    /// A key with scope `all` (needed to change project settings).
    pub admin_key: String,
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub http: reqwest::Client,
}

/// Config on loopback ephemeral ports for `data_dir`.
pub fn test_config(data_dir: PathBuf) -> Config {
    Config {
        data_dir,
        http_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

impl TestServer {
    /// Starts a fresh server with default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a fresh server after `adjust` changes the config.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = test_config(data_dir.path().to_path_buf());
        adjust(&mut config);
        let store = open_store(&config).unwrap();
        let first = ensure_default_project(store.as_ref()).unwrap().expect("fresh store creates the default project");
        let (admin_key, _) =
            store.create_api_key(first.project.id, sightline_server::auth::KeyScope::All, "admin").unwrap();
        let server = start(config, store).await.unwrap();
        Self {
            http_addr: server.http_addr,
            grpc_addr: server.grpc_addr,
            server: Some(server),
            data_dir,
            ingest_key: first.ingest_key.expose().to_owned(),
            read_key: first.read_key.expose().to_owned(),
            admin_key: admin_key.expose().to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Stops the server (draining the queue) and starts it again on the same data directory.
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await
    }

    /// Like [`TestServer::restart`], with the config changed by `adjust`.
    pub async fn restart_with(&mut self, adjust: impl FnOnce(&mut Config)) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let mut config = test_config(self.data_dir.path().to_path_buf());
        adjust(&mut config);
        let store = open_store(&config).unwrap();
        assert!(ensure_default_project(store.as_ref()).unwrap().is_none(), "restart must reuse the existing project");
        let server = start(config, store).await.unwrap();
        self.http_addr = server.http_addr;
        self.grpc_addr = server.grpc_addr;
        self.server = Some(server);
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    pub fn http_base(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    pub fn grpc_base(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// GET an API path with the read key; returns (status, JSON body).
    pub async fn api_get(&self, path: &str) -> (u16, Value) {
        let response =
            self.http.get(format!("{}{path}", self.http_base())).bearer_auth(&self.read_key).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// GET an API path and require 200.
    pub async fn api_ok(&self, path: &str) -> Value {
        let (status, body) = self.api_get(path).await;
        assert_eq!(status, 200, "GET {path} answered {status}: {body}");
        body
    }
}

/// Depth-first list of every span node in a trace tree response.
pub fn flatten_spans(trace: &Value) -> Vec<Value> {
    fn walk(node: &Value, out: &mut Vec<Value>) {
        out.push(node.clone());
        for child in node["children"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    for root in trace["roots"].as_array().into_iter().flatten() {
        walk(root, &mut out);
    }
    out
}
