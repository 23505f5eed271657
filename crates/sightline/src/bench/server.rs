//! The in-process server every benchmark loads: its data directory (given, or temporary), a
//! loopback configuration with server defaults, and the API keys the clients use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sightline_server::Config;
use sightline_server::auth::KeyScope;
use sightline_server::server::ensure_default_project;
use sightline_server::store::{Project, Store};
use tempfile::TempDir;

/// Where a benchmark's server keeps its data: `--data-dir`, or a temporary directory removed
/// when this value drops (so keep it alive until the report has read the database size).
pub struct DataDir {
    /// The directory.
    pub path: PathBuf,
    /// Held only to remove the temporary directory on drop.
    _temporary: Option<TempDir>,
}

impl DataDir {
    /// `given`, or a fresh temporary directory.
    pub fn new(given: Option<&Path>) -> anyhow::Result<Self> {
        if let Some(path) = given {
            return Ok(Self { path: path.to_owned(), _temporary: None });
        }
        let temporary = tempfile::Builder::new()
            .prefix("sightline-bench-")
            .tempdir()
            .context("creating a temporary data directory")?;
        Ok(Self { path: temporary.path().to_owned(), _temporary: Some(temporary) })
    }
}

/// Server defaults, listening on loopback ports the kernel picks.
pub fn loopback_config(data_dir: &Path) -> Config {
    let loopback_any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    Config {
        data_dir: data_dir.to_owned(),
        http_addr: loopback_any_port,
        grpc_addr: loopback_any_port,
        ..Config::default()
    }
}

/// The project the benchmark writes to and a key for it.
pub struct BenchProject {
    /// The `default` project (or the first one of an existing database).
    pub project: Project,
    /// A key of scope `ingest` for the OTLP receivers.
    pub ingest_key: String,
}

/// An ingest key for the `default` project: the one created at first start, or a new one when
/// `--data-dir` points at an existing database (keys are stored hashed, so old ones are unknown).
pub fn bench_project(store: &dyn Store, key_name: &str) -> anyhow::Result<BenchProject> {
    if let Some(first) = ensure_default_project(store)? {
        return Ok(BenchProject { project: first.project, ingest_key: first.ingest_key.expose().to_owned() });
    }
    let project = store.list_projects()?.into_iter().next().context("the database has no project")?;
    let (key, _) = store.create_api_key(project.id, KeyScope::Ingest, key_name)?;
    Ok(BenchProject { project, ingest_key: key.expose().to_owned() })
}

/// A new key of scope `all` (read the API and change issue status) for `project`.
pub fn admin_key(store: &dyn Store, project: &Project, key_name: &str) -> anyhow::Result<String> {
    let (key, _) = store.create_api_key(project.id, KeyScope::All, key_name)?;
    Ok(key.expose().to_owned())
}
