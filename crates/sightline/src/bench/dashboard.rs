//! `sightline bench dashboard`: server time of every dashboard page on a large store (issue 7:
//! "renders its HTML in < 300 ms server time with 10 million spans stored").
//!
//! The recipe: generate the `bench ingest` trace workload (≈ 1 % failing spans, so errors are
//! grouped into issues), spread over the last `--spread-days` as `bench apm` does, and ingest it
//! over OTLP/HTTP (skipped with `--skip-ingest` on a `--data-dir` filled by an earlier run) →
//! coarsen rollups older than a day into hours (the steady state a long-running server is in) →
//! create a dashboard user and sign in through the real form → GET each page `--runs` times over
//! loopback and report p50 / p90 / max of the time to the last byte, with the page size.
//! Loopback HTTP adds well under a millisecond, so the figures are the server's time.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use sightline_server::server::open_store;
use sightline_server::start;
use sightline_server::users::{Password, hash_password};

use super::batches::{self, WorkloadShape};
use super::load::{self, progress_bar};
use super::otlp_http::{HttpSender, OtlpSignal};
use super::server::{DataDir, bench_project, loopback_config};

/// Options of `sightline bench dashboard`.
#[derive(Debug, Clone, Args)]
pub struct DashboardArgs {
    /// Export requests to ingest (× `--spans-per-request` spans); 19,532 × 512 ≈ 10 million.
    #[arg(long, default_value_t = 2_000)]
    pub requests: usize,
    /// Spans in each export request.
    #[arg(long, default_value_t = 512)]
    pub spans_per_request: usize,
    /// Spans in each trace (a SERVER root with CLIENT children).
    #[arg(long, default_value_t = 8)]
    pub spans_per_trace: usize,
    /// Concurrent exporter connections.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Days the traces' timestamps are spread over, ending now.
    #[arg(long, default_value_t = 7)]
    pub spread_days: u64,
    /// Timed GETs of each page.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Keep the data here (default: a temporary directory removed at the end).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Time the pages of the store in `--data-dir` as it is, without ingesting more.
    #[arg(long, requires = "data_dir")]
    pub skip_ingest: bool,
}

/// The e-mail of the benchmark's dashboard user (created once per store).
const BENCH_EMAIL: &str = "bench@sightline.local";

/// Timings of one page.
struct PageTiming {
    path: String,
    p50: Duration,
    p90: Duration,
    max: Duration,
    bytes: usize,
}

/// Runs the benchmark and prints a Markdown report.
pub async fn run(args: DashboardArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.requests > 0 && args.spans_per_request > 0 && args.spans_per_trace > 0,
        "sizes must be at least 1"
    );
    anyhow::ensure!(args.connections > 0 && args.runs > 0, "--connections and --runs must be at least 1");
    let data_dir = DataDir::new(args.data_dir.as_deref())?;
    let config = loopback_config(&data_dir.path);
    let store = open_store(&config)?;
    let project = bench_project(store.as_ref(), "sightline bench dashboard")?;
    let server = start(config, store.clone()).await?;
    eprintln!("Server on http://{}; data in {}", server.http_addr, data_dir.path.display());

    if !args.skip_ingest {
        let shape = WorkloadShape {
            requests: args.requests,
            spans_per_request: args.spans_per_request,
            spans_per_trace: args.spans_per_trace,
        };
        eprintln!("Generating {} requests x {} spans", shape.requests, shape.spans_per_request);
        let spread = Duration::from_secs(args.spread_days.max(1) * 86_400);
        let workload =
            tokio::task::spawn_blocking(move || super::apm::spread_over(batches::generate(shape, 1), spread, 0))
                .await??;
        let workload = Arc::new(workload);
        let mut senders = Vec::with_capacity(args.connections);
        for _ in 0..args.connections {
            senders.push(HttpSender::connect(server.http_addr, &project.ingest_key, OtlpSignal::Traces).await?);
        }
        let progress = progress_bar("ingest", workload.total_items(), "spans");
        let outcome = load::run(workload.clone(), senders, progress.clone()).await;
        progress.finish();
        anyhow::ensure!(
            outcome.failed_requests == 0,
            "{} requests failed: {:?}",
            outcome.failed_requests,
            outcome.failure_examples
        );
        let coarsen_store = store.clone();
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
        let merged = tokio::task::spawn_blocking(move || {
            sightline_server::retention::coarsen_rollups_once(
                coarsen_store.as_ref(),
                now,
                Duration::from_secs(86_400),
                5_000,
            )
        })
        .await??;
        eprintln!("Ingested {} spans; coarsened {merged} minute rows", outcome.acknowledged_items);
    }
    let spans_stored = store.list_services(project.project.id)?.iter().map(|service| service.span_count).sum::<u64>();

    // A member of the bench project, signed in through the real form.
    let password = Password::new(format!("bench-{}", std::process::id()));
    let hash = hash_password(&password).context("hashing the bench user's password")?;
    let user = match store.find_user_credentials(BENCH_EMAIL)? {
        Some(existing) => {
            store.set_user_password(BENCH_EMAIL, &hash)?;
            existing.user
        }
        None => store.create_user(BENCH_EMAIL, &hash)?,
    };
    store.add_membership(user.id, project.project.id)?;
    let base = format!("http://{}", server.http_addr);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let cookie = sign_in(&client, &base, BENCH_EMAIL, password.expose()).await?;

    let slug = &project.project.slug;
    let mut paths = vec![
        "/".to_owned(),
        format!("/p/{slug}/issues"),
        format!("/p/{slug}/issues?status=unresolved&sort=count"),
        format!("/p/{slug}/traces"),
        format!("/p/{slug}/traces?service=checkout&status=error&range=24h"),
        format!("/p/{slug}/settings"),
        format!("/p/{slug}/settings/keys"),
        format!("/p/{slug}/settings/privacy"),
        format!("/p/{slug}/settings/destinations"),
        format!("/p/{slug}/logs"),
        format!("/p/{slug}/logs?severity_min=error&range=24h"),
        format!("/p/{slug}/metrics"),
        format!("/p/{slug}/services"),
        format!("/p/{slug}/services/checkout"),
        format!("/p/{slug}/services/checkout?timeRange=7d"),
        format!("/p/{slug}/service-map"),
        format!("/p/{slug}/databases"),
        format!("/p/{slug}/sessions"),
        format!("/p/{slug}/journeys"),
        format!("/p/{slug}/web-vitals"),
    ];
    let issues = store.list_issues(
        project.project.id,
        &sightline_server::store::errors::IssueQuery { limit: 1, ..Default::default() },
    )?;
    if let Some(issue) = issues.items.first() {
        paths.push(format!("/p/{slug}/issues/{}", issue.id));
    }
    let query = sightline_server::store::TraceQuery { limit: 1, ..Default::default() };
    if let Some(trace) = store.search_traces(project.project.id, &query)?.items.first() {
        paths.push(format!("/p/{slug}/traces/{}", trace.trace_id));
    }

    let progress = progress_bar("pages", (paths.len() * args.runs) as u64, "GETs");
    let mut timings = Vec::with_capacity(paths.len());
    for path in paths {
        let mut elapsed = Vec::with_capacity(args.runs);
        let mut bytes = 0;
        for _ in 0..args.runs {
            let started = Instant::now();
            let response = client.get(format!("{base}{path}")).header("cookie", &cookie).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            elapsed.push(started.elapsed());
            anyhow::ensure!(status.is_success(), "GET {path} answered {status}: {}", String::from_utf8_lossy(&body));
            bytes = body.len();
            progress.inc(1);
        }
        elapsed.sort();
        timings.push(PageTiming {
            path,
            p50: elapsed[elapsed.len() / 2],
            p90: elapsed[elapsed.len() * 9 / 10],
            max: elapsed[elapsed.len() - 1],
            bytes,
        });
    }
    progress.finish();
    server.shutdown().await;

    println!(
        "sightline bench dashboard --requests {} --spans-per-request {} --spread-days {} --runs {}{}\n",
        args.requests,
        args.spans_per_request,
        args.spread_days,
        args.runs,
        if args.skip_ingest { " --skip-ingest" } else { "" }
    );
    println!("Spans stored: {spans_stored}\n");
    println!("| Page | p50 ms | p90 ms | max ms | KiB |");
    println!("|---|---:|---:|---:|---:|");
    for timing in &timings {
        println!(
            "| `{}` | {:.1} | {:.1} | {:.1} | {:.1} |",
            timing.path,
            ms(timing.p50),
            ms(timing.p90),
            ms(timing.max),
            timing.bytes as f64 / 1024.0
        );
    }
    let worst = timings.iter().map(|timing| timing.max).max().unwrap_or_default();
    println!("\nSlowest single render: {:.1} ms (bar: < 300 ms)", ms(worst));
    Ok(())
}

/// Signs in through `GET /login` and `POST /login`; returns the `Cookie` header of the session.
async fn sign_in(client: &reqwest::Client, base: &str, email: &str, password: &str) -> anyhow::Result<String> {
    let form = client.get(format!("{base}/login")).send().await?;
    let login_cookie = form
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix("sightline_login_csrf="))
        .and_then(|rest| rest.split(';').next())
        .context("the sign-in page set no CSRF cookie")?
        .to_owned();
    let html = form.text().await?;
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).context("the sign-in page has no CSRF field")? + marker.len();
    let csrf = html[start..].split('"').next().unwrap_or_default().to_owned();
    let response = client
        .post(format!("{base}/login"))
        .header("cookie", format!("sightline_login_csrf={login_cookie}"))
        .form(&[("csrf", csrf.as_str()), ("email", email), ("password", password), ("next", "/")])
        .send()
        .await?;
    anyhow::ensure!(response.status().as_u16() == 303, "signing in answered {}", response.status());
    let session = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix("sightline_session="))
        .and_then(|rest| rest.split(';').next())
        .context("signing in set no session cookie")?
        .to_owned();
    Ok(format!("sightline_session={session}"))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
