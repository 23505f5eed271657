//! `sightline`: the single binary. `serve` runs the server on the embedded store; `project`
//! and `key` administer projects, API keys and read grants; `user` administers dashboard users
//! and their project memberships; `bench` measures ingest throughput.

mod bench;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use sightline_server::auth::KeyScope;
use sightline_server::exporters::otlp::{OtlpDestinationConfig, OtlpProtocol, OtlpSignals};
use sightline_server::server::{FirstAdmin, FirstStart, ensure_default_project, ensure_first_admin, open_store};
use sightline_server::{Config, start};

/// The process allocator. Ingest allocates on the request threads and frees on the writer's
/// helper thread; glibc's malloc spent ≈ 13 % of the request threads' time in `bench errors` in
/// `malloc`/`free` and consolidating arenas (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Manage dashboard users and project memberships.
    #[command(subcommand)]
    User(UserCommand),
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
    /// Live log tail (Server-Sent Events) connections open at once; beyond, 503 with Retry-After.
    #[arg(long, env = "SIGHTLINE_MAX_TAIL_CONNECTIONS", default_value_t = 64)]
    max_tail_connections: usize,
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
    /// Forward every accepted OTLP request (traces, metrics, logs) to this OTLP endpoint, e.g.
    /// http://collector:4318 (http/protobuf) or http://jaeger:4317 (grpc). Durable, at least once.
    #[arg(long, env = "SIGHTLINE_FORWARD_OTLP_ENDPOINT")]
    forward_otlp_endpoint: Option<String>,
    /// Protocol of the forwarding endpoint: grpc or http/protobuf.
    #[arg(long, env = "SIGHTLINE_FORWARD_OTLP_PROTOCOL", default_value = "http/protobuf")]
    forward_otlp_protocol: String,
    /// Headers for the forwarding endpoint, as OTEL_EXPORTER_OTLP_HEADERS: key=value,key2=value2
    /// (percent-encoded values). Treated as secrets.
    #[arg(long, env = "SIGHTLINE_FORWARD_OTLP_HEADERS", hide_env_values = true, default_value = "")]
    forward_otlp_headers: String,
    /// Signals to forward, comma-separated: traces, metrics, logs.
    #[arg(long, env = "SIGHTLINE_FORWARD_OTLP_SIGNALS", default_value = "traces,metrics,logs")]
    forward_otlp_signals: String,
    /// Most MiB of requests waiting for the forwarding endpoint before new ones are not forwarded.
    #[arg(long, env = "SIGHTLINE_FORWARD_OTLP_MAX_QUEUE_MB", default_value_t = 512)]
    forward_otlp_max_queue_mb: u64,
    /// Mark the dashboard session cookie Secure (HTTPS only): set it when a TLS proxy fronts Sightline.
    #[arg(long, env = "SIGHTLINE_SECURE_COOKIES")]
    secure_cookies: bool,
    #[command(flatten)]
    forwarding: ForwardingArgs,
    /// A TOML configuration file declaring forwarding destinations (`[[destinations]]`, see the
    /// README); they are created or updated at every start.
    #[arg(long, env = "SIGHTLINE_CONFIG")]
    config: Option<PathBuf>,
}

impl ServeArgs {
    /// The OTLP forwarding destination the flags describe, if any. Errors say which flag is wrong.
    fn forward_otlp(&self) -> anyhow::Result<Option<OtlpDestinationConfig>> {
        let Some(endpoint) = &self.forward_otlp_endpoint else {
            return Ok(None);
        };
        let protocol = match self.forward_otlp_protocol.as_str() {
            "grpc" => OtlpProtocol::Grpc,
            "http/protobuf" => OtlpProtocol::HttpProtobuf,
            other => anyhow::bail!("--forward-otlp-protocol {other:?}: use grpc or http/protobuf"),
        };
        let mut destination = OtlpDestinationConfig::new(endpoint.clone(), protocol);
        destination.headers = OtlpDestinationConfig::parse_headers(&self.forward_otlp_headers)
            .map_err(|error| anyhow::anyhow!("--forward-otlp-headers: {error}"))?;
        let mut signals = OtlpSignals { traces: false, metrics: false, logs: false };
        for signal in self.forward_otlp_signals.split(',').map(str::trim).filter(|signal| !signal.is_empty()) {
            match signal {
                "traces" => signals.traces = true,
                "metrics" => signals.metrics = true,
                "logs" => signals.logs = true,
                other => anyhow::bail!("--forward-otlp-signals: unknown signal {other:?}; use traces, metrics, logs"),
            }
        }
        destination.signals = signals;
        Ok(Some(destination))
    }
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
enum UserCommand {
    /// Create a dashboard user; the password is read from standard input (one line).
    Create {
        /// E-mail address to sign in with.
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Also make the user a member of this project (slug or id); repeatable.
        #[arg(long)]
        project: Vec<String>,
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Make a user a member of a project: they then see it in the dashboard.
    AddMember {
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// Project slug or id.
        #[arg(long, default_value = "default")]
        project: String,
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Set a user's password (read from standard input) and end their sessions.
    SetPassword {
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        data: DataDirArgs,
    },
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
    /// Let a read key of another project read this one too (its API routes and the
    /// cross-project analytics).
    Grant {
        /// Project slug or id to grant.
        project: String,
        /// Id of the key (printed by 'sightline key create'); scope read or all.
        #[arg(long)]
        key_id: i64,
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Withdraw a grant made with 'sightline project grant'.
    Revoke {
        /// Project slug or id.
        project: String,
        /// Id of the key.
        #[arg(long)]
        key_id: i64,
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
        Command::User(command) => user(command),
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
        max_tail_connections: args.max_tail_connections,
        retention_interval: Duration::from_secs(args.retention_interval_secs.max(1)),
        slow_query_threshold: Duration::from_millis(args.slow_query_ms),
        rollup_coarsen_after: Duration::from_secs(args.rollup_coarsen_hours.saturating_mul(3600)),
        forward_otlp: args.forward_otlp()?,
        forward_otlp_max_queue_bytes: args.forward_otlp_max_queue_mb.saturating_mul(1 << 20),
        secure_cookies: args.secure_cookies,
        file_destinations: match &args.config {
            None => Vec::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the configuration file {}; check --config / SIGHTLINE_CONFIG", path.display())
                })?;
                sightline_server::config_file::parse(&text)?
            }
        },
        forwarding: args.forwarding.into_config(),
        ..Config::default()
    };
    // Before anything is created on disk: a bad flag must not leave a half-made data directory.
    config.validate()?;
    let store = open_store(&config)?;
    if let Some(first) = ensure_default_project(store.as_ref())? {
        print_first_start(&first, &config);
    }
    if let Some(admin) = ensure_first_admin(store.as_ref())? {
        print_first_admin(&admin, &config);
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

fn print_first_admin(admin: &FirstAdmin, config: &Config) {
    println!(
        "\nCreated the first dashboard user; this password is shown once.\n\n  \
         sign in at: http://localhost:{port}/\n  e-mail:     {email}\n  password:   {password}\n\n\
         Add people with: sightline user create --email someone@example.com --password-stdin --project default\n",
        port = config.http_addr.port(),
        email = admin.user.email,
        password = admin.password.expose(),
    );
}

/// Reads one line (the password) from standard input, without its line ending.
fn read_password_line() -> anyhow::Result<sightline_server::users::Password> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
    let password = sightline_server::users::Password::new(line.trim_end_matches(['\r', '\n']));
    password.validate()?;
    Ok(password)
}

fn user(command: UserCommand) -> anyhow::Result<()> {
    use sightline_server::users::{hash_password, normalize_email};
    match command {
        UserCommand::Create { email, password_stdin: _, project, data } => {
            let email = normalize_email(&email)?;
            let password = read_password_line()?;
            let store = open_store(&config_for(&data))?;
            let mut projects = Vec::new();
            for wanted in &project {
                projects.push(
                    store
                        .find_project(wanted)?
                        .with_context(|| format!("no project {wanted:?}; list them with 'sightline project list'"))?,
                );
            }
            let user = store.create_user(&email, &hash_password(&password)?)?;
            for found in &projects {
                store.add_membership(user.id, found.id)?;
            }
            let names: Vec<&str> = projects.iter().map(|found| found.slug.as_str()).collect();
            println!(
                "Created user {} (id {}); member of: {}",
                user.email,
                user.id,
                if names.is_empty() { "no project yet".into() } else { names.join(", ") }
            );
        }
        UserCommand::AddMember { email, project, data } => {
            let email = normalize_email(&email)?;
            let store = open_store(&config_for(&data))?;
            let credentials = store
                .find_user_credentials(&email)?
                .with_context(|| format!("no user {email:?}; create one with 'sightline user create'"))?;
            let found = store
                .find_project(&project)?
                .with_context(|| format!("no project {project:?}; list them with 'sightline project list'"))?;
            store.add_membership(credentials.user.id, found.id)?;
            println!("{} is a member of '{}'.", credentials.user.email, found.slug);
        }
        UserCommand::SetPassword { email, data } => {
            let email = normalize_email(&email)?;
            let password = read_password_line()?;
            let store = open_store(&config_for(&data))?;
            store.set_user_password(&email, &hash_password(&password)?)?;
            println!("Password of {email} changed; their sessions are ended.");
        }
    }
    Ok(())
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
        ProjectCommand::Grant { project, key_id, data } => {
            let store = open_store(&config_for(&data))?;
            let found = find_project(store.as_ref(), &project)?;
            let added = store
                .grant_project_read(key_id, found.id)
                .with_context(|| format!("granting key {key_id} read access to '{}'", found.slug))?;
            if added {
                println!("Key {key_id} may now read project '{}'.", found.slug);
            } else {
                println!("Key {key_id} could already read project '{}'.", found.slug);
            }
        }
        ProjectCommand::Revoke { project, key_id, data } => {
            let store = open_store(&config_for(&data))?;
            let found = find_project(store.as_ref(), &project)?;
            if store.revoke_project_read(key_id, found.id)? {
                println!("Key {key_id} no longer reads project '{}'.", found.slug);
            } else {
                println!("Key {key_id} had no grant on project '{}'.", found.slug);
            }
        }
    }
    Ok(())
}

fn find_project(
    store: &dyn sightline_server::store::Store,
    project: &str,
) -> anyhow::Result<sightline_server::store::Project> {
    store
        .find_project(project)?
        .with_context(|| format!("no project {project:?}; list them with 'sightline project list'"))
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
            let (key, record) = store.create_api_key(found.id, scope, &name)?;
            println!("{}", key.expose());
            eprintln!(
                "Created {} key {} for project '{}'; it is shown only this once.",
                scope.as_str(),
                record.id,
                found.slug
            );
        }
    }
    Ok(())
}
