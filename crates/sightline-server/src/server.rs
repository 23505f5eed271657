//! Starting and stopping the whole server: store, writer, HTTP and gRPC listeners, retention.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{ApiKeySecret, KeyScope};
use crate::config::Config;
use crate::pipeline::{Ingestor, WriterHandle, start_writer};
use crate::receivers::otlp_grpc::{OtlpGrpcReceiver, oversize_is_not_retryable};
use crate::receivers::otlp_http;
use crate::store::sqlite::SqliteStore;
use crate::store::{Project, Store};

/// Shared state of the HTTP handlers.
pub struct AppState {
    /// Runs the ingest pipeline.
    pub ingestor: Arc<Ingestor>,
    /// The store, for queries.
    pub store: Arc<dyn Store>,
    /// Request size limit after decompression, bytes.
    pub max_body_bytes: usize,
    /// Database queries slower than this (p95 or max) are flagged slow (`Config::slow_query_threshold`).
    pub slow_query_threshold: Duration,
    /// Dashboard session cookies carry `Secure` (`Config::secure_cookies`).
    pub secure_cookies: bool,
    /// The forwarding workers (restarted when destinations change).
    pub delivery: Arc<crate::exporters::delivery::DeliveryManager>,
    /// Dashboard sign-in budgets (per account and server-wide).
    pub sign_in_limits: crate::ui::sign_in_limits::SignInLimits,
    /// Live tail of committed logs (the writer publishes, SSE endpoints subscribe).
    pub log_tail: Arc<crate::live_tail::LogTail>,
}

/// A started server. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    /// Where OTLP/HTTP and the API listen (the real port when 0 was asked).
    pub http_addr: SocketAddr,
    /// Where OTLP/gRPC listens.
    pub grpc_addr: SocketAddr,
    /// The store, for administration while running.
    pub store: Arc<dyn Store>,
    shutdown: watch::Sender<bool>,
    http_task: JoinHandle<()>,
    grpc_task: JoinHandle<()>,
    retention_task: JoinHandle<()>,
    forwarding_tasks: Vec<JoinHandle<()>>,
    writer: WriterHandle,
    delivery: Arc<crate::exporters::delivery::DeliveryManager>,
    log_tail: Arc<crate::live_tail::LogTail>,
}

/// Outbox name of the server-wide OTLP forwarding destination (`Config::forward_otlp`).
pub const OTLP_DESTINATION_NAME: &str = "otlp";

/// Keys printed at first start.
pub struct FirstStart {
    /// The project created.
    pub project: Project,
    /// Its ingest key (for SDKs).
    pub ingest_key: ApiKeySecret,
    /// Its read key (for the API).
    pub read_key: ApiKeySecret,
}

/// Opens the store for `config` (creating the data directory and schema).
pub fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = SqliteStore::open(&config.database_path())
        .map_err(|error| anyhow::anyhow!("cannot open {}: {error}", config.database_path().display()))?;
    Ok(Arc::new(store))
}

/// Creates the `default` project with an ingest and a read key when no project exists yet.
pub fn ensure_default_project(store: &dyn Store) -> anyhow::Result<Option<FirstStart>> {
    if !store.list_projects()?.is_empty() {
        return Ok(None);
    }
    let project = store.create_project("default")?;
    let (ingest_key, _) = store.create_api_key(project.id, KeyScope::Ingest, "default ingest key")?;
    let (read_key, _) = store.create_api_key(project.id, KeyScope::Read, "default read key")?;
    Ok(Some(FirstStart { project, ingest_key, read_key }))
}

/// The first dashboard user, created at first start with a one-time password to print.
pub struct FirstAdmin {
    /// The user (`admin@sightline.local`).
    pub user: crate::store::users::User,
    /// Their generated password, shown once.
    pub password: crate::users::Password,
}

/// E-mail of the first admin created at first start.
pub const FIRST_ADMIN_EMAIL: &str = "admin@sightline.local";

/// Creates the first dashboard user, a member of every project, when no user exists yet.
/// Returns it with its generated password (to print once); `None` when users exist.
pub fn ensure_first_admin(store: &dyn Store) -> anyhow::Result<Option<FirstAdmin>> {
    if store.count_users()? > 0 {
        return Ok(None);
    }
    let password = crate::users::Password::generate();
    let user = store.create_user(FIRST_ADMIN_EMAIL, &crate::users::hash_password(&password)?)?;
    for project in store.list_projects()? {
        store.add_membership(user.id, project.id)?;
    }
    Ok(Some(FirstAdmin { user, password }))
}

/// Starts every part on `store` and returns once the listeners are bound.
pub async fn start(config: Config, store: Arc<dyn Store>) -> anyhow::Result<RunningServer> {
    config.validate()?;
    let log_tail = crate::live_tail::LogTail::new(config.max_tail_connections);
    let (queue, writer) = start_writer(
        store.clone(),
        log_tail.clone(),
        config.max_queued_items,
        config.max_items_per_commit,
        config.retry_after,
    );
    let (shutdown, shutdown_signal) = watch::channel(false);
    let forwarding = match &config.forward_otlp {
        None => None,
        Some(destination) => {
            let forwarder = crate::exporters::otlp::OtlpForwarder::new(destination.clone())
                .map_err(|error| anyhow::anyhow!("--forward-otlp-endpoint: {error}"))?;
            let settings = crate::exporters::otlp::DeliverySettings {
                max_queue_bytes: config.forward_otlp_max_queue_bytes,
                ..Default::default()
            };
            let destinations = vec![(OTLP_DESTINATION_NAME.to_owned(), forwarder)];
            Some(Arc::new(crate::exporters::otlp::OtlpForwarding::new(store.as_ref(), destinations, settings)))
        }
    };
    let forwarding_tasks = match &forwarding {
        Some(forwarding) => forwarding.spawn(store.clone(), shutdown_signal.clone()),
        None => Vec::new(),
    };
    let ingestor = Arc::new(
        Ingestor::new(store.clone(), queue)
            .with_endpoint_rollups(config.endpoint_rollups)
            .with_otlp_forwarding(forwarding),
    );
    apply_server_destinations(store.as_ref(), &config)?;
    apply_file_destinations(store.as_ref(), &config.file_destinations)?;
    let delivery = crate::exporters::delivery::DeliveryManager::new(store.clone(), config.delivery_retry_base);
    delivery.set_privacy(ingestor.privacy().clone());
    delivery.reload().map_err(|error| anyhow::anyhow!("cannot start delivery: {error}"))?;

    let http_listener = TcpListener::bind(config.http_addr).await.map_err(|error| {
        anyhow::anyhow!("cannot listen on {} (HTTP): {error}; pick another with --http-addr", config.http_addr)
    })?;
    let http_addr = http_listener.local_addr()?;
    let grpc_listener = TcpListener::bind(config.grpc_addr).await.map_err(|error| {
        anyhow::anyhow!("cannot listen on {} (gRPC): {error}; pick another with --grpc-addr", config.grpc_addr)
    })?;
    let grpc_addr = grpc_listener.local_addr()?;

    let state = Arc::new(AppState {
        ingestor: ingestor.clone(),
        store: store.clone(),
        max_body_bytes: config.max_body_bytes,
        slow_query_threshold: config.slow_query_threshold,
        secure_cookies: config.secure_cookies,
        delivery: delivery.clone(),
        sign_in_limits: Default::default(),
        log_tail: log_tail.clone(),
    });
    let router = otlp_http::routes()
        .merge(crate::receivers::events_http::routes())
        .merge(crate::ui::routes())
        .merge(crate::api::routes())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state);
    let mut http_signal = shutdown_signal.clone();
    let http_task = tokio::spawn(async move {
        let stopped = async move {
            let _ = http_signal.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(http_listener, router).with_graceful_shutdown(stopped).await {
            tracing::error!(%error, "HTTP server failed");
        }
    });

    let (traces, metrics, logs) = OtlpGrpcReceiver::new(ingestor).into_services(config.max_body_bytes);
    let mut grpc_signal = shutdown_signal.clone();
    let grpc_task = tokio::spawn(async move {
        let stopped = async move {
            let _ = grpc_signal.wait_for(|stop| *stop).await;
        };
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc_listener);
        let result = tonic::transport::Server::builder()
            .layer(tower::util::MapResponseLayer::new(oversize_is_not_retryable))
            .add_service(traces)
            .add_service(metrics)
            .add_service(logs)
            .serve_with_incoming_shutdown(incoming, stopped)
            .await;
        if let Err(error) = result {
            tracing::error!(%error, "gRPC server failed");
        }
    });

    let retention_task = tokio::spawn(crate::retention::run_periodically(
        store.clone(),
        config.retention_interval,
        config.retention_chunk_rows,
        config.rollup_coarsen_after,
    ));
    Ok(RunningServer {
        http_addr,
        grpc_addr,
        store,
        shutdown,
        http_task,
        grpc_task,
        retention_task,
        forwarding_tasks,
        writer,
        delivery,
        log_tail,
    })
}

/// Creates, updates or disables the server-wide destinations of the ProductGraph variables.
fn apply_server_destinations(store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    let existing = store.list_destinations(Some(crate::store::outbox::SERVER_WIDE_PROJECT))?;
    for (name, enabled, settings) in config.forwarding.destinations()? {
        let stored = existing.iter().find(|destination| {
            destination.project_id == crate::store::outbox::SERVER_WIDE_PROJECT && destination.name == name
        });
        match (settings, stored) {
            (Some(settings), _) => {
                store.upsert_server_destination(name, enabled, &settings)?;
                tracing::info!(destination = name, enabled, "Server-wide destination configured");
            }
            (None, Some(stored)) if stored.enabled => {
                store.update_destination(stored.id, name, false, &stored.config)?;
                tracing::info!(destination = name, "Server-wide destination disabled (no key configured)");
            }
            (None, _) => {}
        }
    }
    Ok(())
}

/// Creates or updates the destinations of the configuration file, by project and name.
fn apply_file_destinations(
    store: &dyn Store,
    destinations: &[crate::config_file::FileDestination],
) -> anyhow::Result<()> {
    for destination in destinations {
        let name = destination.name.as_str();
        let Some(slug) = &destination.project else {
            store.upsert_server_destination(name, destination.enabled, &destination.config)?;
            tracing::info!(destination = name, enabled = destination.enabled, "Server-wide destination from the file");
            continue;
        };
        let project = store.find_project(slug)?.ok_or_else(|| {
            anyhow::anyhow!("configuration file: destination {name:?} names project {slug:?}, which does not exist; create it with `sightline project create`")
        })?;
        let stored = store
            .list_destinations(Some(project.id))?
            .into_iter()
            .find(|stored| stored.project_id == project.id && stored.name == name);
        match stored {
            Some(stored) => {
                store.update_destination(stored.id, name, destination.enabled, &destination.config)?;
            }
            None => {
                store.create_destination(project.id, name, destination.enabled, &destination.config)?;
            }
        }
        tracing::info!(destination = name, project = %slug, enabled = destination.enabled, "Destination from the file");
    }
    Ok(())
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, commits every queued batch and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.retention_task.abort();
        // Unsent outbox rows stay queued and go out at the next start.
        self.delivery.stop();
        // Open live tails would keep their connections, and so the graceful shutdown, waiting.
        self.log_tail.close();
        let _ = self.http_task.await;
        let _ = self.grpc_task.await;
        // All senders are gone with the servers' state, so the writer drains and exits.
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        // Forwarding stops after its current attempt; what it did not deliver stays queued.
        for task in self.forwarding_tasks {
            let _ = task.await;
        }
        tracing::info!("Sightline stopped");
    }
}
