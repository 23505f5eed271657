//! `sightline`: the single binary. `serve` runs the server on the embedded store; `project`
//! and `key` administer projects and API keys; `bench` measures ingest throughput.

mod bench;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use sightline_server::auth::KeyScope;
use sightline_server::server::{FirstStart, ensure_default_project, open_store};
use sightline_server::{Config, start};

/// Sightline: OpenTelemetry-native observability in one binary.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (OTLP gRPC :4317, OTLP/HTTP + API :4318) on the embedded SQLite store.
    Serve(ServeArgs),
    /// Create or list projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Measure performance.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(Args, Clone)]
struct DataDirArgs {
    /// Directory holding sightline.db.
    #[arg(long, env = "SIGHTLINE_DATA_DIR", default_value = "./sightline-data")]
    data_dir: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    data: DataDirArgs,
    /// OTLP/gRPC listen address.
    #[arg(long, env = "SIGHTLINE_GRPC_ADDR", default_value = "0.0.0.0:4317")]
    grpc_addr: SocketAddr,
    /// HTTP listen address (OTLP/HTTP, REST API, health).
    #[arg(long, env = "SIGHTLINE_HTTP_ADDR", default_value = "0.0.0.0:4318")]
    http_addr: SocketAddr,
    /// Largest request in bytes, after decompression.
    #[arg(long, env = "SIGHTLINE_MAX_BODY_BYTES", default_value_t = 20 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Items waiting for commit before new requests get 429 / RESOURCE_EXHAUSTED.
    #[arg(long, env = "SIGHTLINE_MAX_QUEUED_ITEMS", default_value_t = 200_000)]
    max_queued_items: usize,
    /// Seconds between retention passes.
    #[arg(long, env = "SIGHTLINE_RETENTION_INTERVAL_SECS", default_value_t = 60)]
    retention_interval_secs: u64,
    /// Database queries whose p95 or slowest call exceeds this many milliseconds are flagged slow.
    #[arg(long, env = "SIGHTLINE_SLOW_QUERY_MS", default_value_t = 500)]
    slow_query_ms: u64,
    /// Hours after which per-minute endpoint and query rollups are merged into hourly rows
    /// (2 to 2160; long ranges then read fewer rows, short ones keep minute resolution).
    #[arg(long, env = "SIGHTLINE_ROLLUP_COARSEN_HOURS", default_value_t = 24)]
    rollup_coarsen_hours: u64,
    #[command(flatten)]
    forwarding: ForwardingArgs,
}

/// ProductGraph's forwarding variables (server-wide Amplitude / Mixpanel destinations for every
/// project). Keys are secrets: `--help` hides their values and logs never show them.
#[derive(Args)]
struct ForwardingArgs {
    /// Master switch of product-event forwarding (true/false, 1/0, yes/no).
    #[arg(long, env = "ANALYTICS_ENABLED", default_value = "false", value_parser = clap::builder::BoolishValueParser::new())]
    analytics_enabled: bool,
    /// Forward to Amplitude (with --analytics-enabled).
    #[arg(long, env = "AMPLITUDE_ENABLED", default_value = "false", value_parser = clap::builder::BoolishValueParser::new())]
    amplitude_enabled: bool,
    /// Amplitude project API key.
    #[arg(long, env = "AMPLITUDE_API_KEY", hide_env_values = true)]
    amplitude_api_key: Option<String>,
    /// URL replacing https://api2.amplitude.com/2/httpapi (e.g. the EU endpoint).
    #[arg(long, env = "SIGHTLINE_AMPLITUDE_ENDPOINT")]
    amplitude_endpoint: Option<String>,
    /// Forward to Mixpanel (with --analytics-enabled).
    #[arg(long, env = "MIXPANEL_ENABLED", default_value = "false", value_parser = clap::builder::BoolishValueParser::new())]
    mixpanel_enabled: bool,
    /// Mixpanel project token.
    #[arg(long, env = "MIXPANEL_TOKEN", hide_env_values = true)]
    mixpanel_token: Option<String>,
    /// URL replacing https://api.mixpanel.com/import (e.g. https://api-eu.mixpanel.com/import).
    #[arg(long, env = "SIGHTLINE_MIXPANEL_ENDPOINT")]
    mixpanel_endpoint: Option<String>,
}

impl ForwardingArgs {
    fn into_config(self) -> sightline_server::config::ProductGraphForwarding {
        use sightline_server::exporters::Secret;
        sightline_server::config::ProductGraphForwarding {
            analytics_enabled: self.analytics_enabled,
            amplitude_enabled: self.amplitude_enabled,
            amplitude_api_key: self.amplitude_api_key.map(Secret::new),
            amplitude_endpoint: self.amplitude_endpoint,
            mixpanel_enabled: self.mixpanel_enabled,
            mixpanel_token: self.mixpanel_token.map(Secret::new),
            mixpanel_endpoint: self.mixpanel_endpoint,
        }
    }
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project and an ingest key for it.
    Create {
        /// Display name (the slug is derived from it).
        name: String,
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// List projects.
    List {
        #[command(flatten)]
        data: DataDirArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ScopeArg {
    Ingest,
    Read,
    All,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key for a project; it is printed once.
    Create {
        /// Project slug or id.
        #[arg(long, default_value = "default")]
        project: String,
        /// What the key may do.
        #[arg(long, value_enum, default_value = "ingest")]
        scope: ScopeArg,
        /// A name to recognise the key by.
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        data: DataDirArgs,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIGHTLINE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,h2=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Project(command) => project(command),
        Command::Key(command) => key(command),
        Command::Bench(command) => runtime.block_on(bench::run(command)),
    }
}

fn config_for(data: &DataDirArgs) -> Config {
    Config { data_dir: data.data_dir.clone(), ..Config::default() }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config {
        data_dir: args.data.data_dir.clone(),
        grpc_addr: args.grpc_addr,
        http_addr: args.http_addr,
        max_body_bytes: args.max_body_bytes,
        max_queued_items: args.max_queued_items,
        retention_interval: Duration::from_secs(args.retention_interval_secs.max(1)),
        slow_query_threshold: Duration::from_millis(args.slow_query_ms),
        rollup_coarsen_after: Duration::from_secs(args.rollup_coarsen_hours.saturating_mul(3600)),
        forwarding: args.forwarding.into_config(),
        ..Config::default()
    };
    // Before anything is created on disk: a bad flag must not leave a half-made data directory.
    config.validate()?;
    let store = open_store(&config)?;
    if let Some(first) = ensure_default_project(store.as_ref())? {
        print_first_start(&first, &config);
    }
    let server = start(config, store).await?;
    println!(
        "Sightline listening: OTLP/HTTP and API on http://{}, OTLP/gRPC on {} (Ctrl-C stops)",
        server.http_addr, server.grpc_addr
    );
    tracing::info!(http = %server.http_addr, grpc = %server.grpc_addr, "Sightline is running");
    wait_for_signal().await;
    tracing::info!("Shutting down: finishing in-flight requests and committing queued data");
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

fn print_first_start(first: &FirstStart, config: &Config) {
    let http_port = config.http_addr.port();
    println!(
        "\nCreated project '{slug}'. These keys are shown once; keep them.\n\n  \
         ingest key: {ingest}\n  read key:   {read}\n\n\
         Point any OpenTelemetry SDK here with:\n\n  \
         export OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:{http_port}\n  \
         export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\n  \
         export OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer {ingest}\"\n\n\
         (gRPC: OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:{grpc_port} with OTEL_EXPORTER_OTLP_PROTOCOL=grpc)\n\
         Read it back: curl -H \"Authorization: Bearer {read}\" http://localhost:{http_port}/api/v1/projects/{slug}/traces\n",
        slug = first.project.slug,
        ingest = first.ingest_key.expose(),
        read = first.read_key.expose(),
        grpc_port = config.grpc_addr.port(),
    );
}

fn project(command: ProjectCommand) -> anyhow::Result<()> {
    match command {
        ProjectCommand::Create { name, data } => {
            let store = open_store(&config_for(&data))?;
            let project = store.create_project(&name).with_context(|| format!("creating project {name:?}"))?;
            let (key, _) = store.create_api_key(project.id, KeyScope::Ingest, "created with project")?;
            println!("Created project '{}' (id {}).", project.slug, project.id);
            println!("Ingest key (shown once): {}", key.expose());
            println!("A read key: sightline key create --project {} --scope read", project.slug);
        }
        ProjectCommand::List { data } => {
            let store = open_store(&config_for(&data))?;
            println!("{:<6} {:<24} {:<10} {:<8}", "ID", "SLUG", "RETENTION", "SAMPLING");
            for project in store.list_projects()? {
                println!(
                    "{:<6} {:<24} {:<10} {:<8}",
                    project.id,
                    project.slug,
                    format!("{}d", project.retention_days),
                    project.trace_sample_rate
                );
            }
        }
    }
    Ok(())
}

fn key(command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { project, scope, name, data } => {
            let store = open_store(&config_for(&data))?;
            let found = store
                .find_project(&project)?
                .with_context(|| format!("no project {project:?}; list them with 'sightline project list'"))?;
            let scope = match scope {
                ScopeArg::Ingest => KeyScope::Ingest,
                ScopeArg::Read => KeyScope::Read,
                ScopeArg::All => KeyScope::All,
            };
            let (key, _) = store.create_api_key(found.id, scope, &name)?;
            println!("{}", key.expose());
            eprintln!("Created a {} key for project '{}'; it is shown only this once.", scope.as_str(), found.slug);
        }
    }
    Ok(())
}
