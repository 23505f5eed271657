//! `sightline bench forward`: forwarding of product events to a local Amplitude-shaped sink.
//!
//! The recipe: start the server on loopback with two projects → ingest `--events` into the
//! project without a destination (baseline) and into the one with an Amplitude destination
//! whose endpoint is parked (a sink answering 503 with `Retry-After: 3600`), so the outbox
//! fills while nothing drains it → ingest cost of the outbox = the two throughputs → point the
//! destination at the real sink (PATCH) and time the drain until the sink has every event
//! (forwarding throughput) → send single-event requests at a steady pace and time each from
//! its 202 to the sink's receipt of its insert id (accept → first attempt, at the default
//! batch interval) → print a Markdown report for BENCHMARKS.md.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use clap::Args;
use serde_json::{Value, json};
use sightline_server::auth::KeyScope;
use sightline_server::server::open_store;
use sightline_server::start;

use super::load::progress_bar;
use super::process;
use super::server::{DataDir, bench_project, loopback_config};

/// Options of `sightline bench forward`.
#[derive(Debug, Clone, Args)]
pub struct ForwardArgs {
    /// Events ingested into each project (and drained to the sink).
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Events per `/v1/events` request (at most 1,000).
    #[arg(long, default_value_t = 1_000)]
    pub events_per_request: usize,
    /// Concurrent ingest connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Single-event requests timed for the accept → first-attempt latency.
    #[arg(long, default_value_t = 200)]
    pub latency_samples: usize,
}

#[derive(Default)]
struct Sink {
    /// Events received (count of `"insert_id"` keys).
    events: AtomicU64,
    /// First receipt of each insert id, while latency is measured.
    arrivals: Mutex<HashMap<String, Instant>>,
    track_arrivals: std::sync::atomic::AtomicBool,
}

async fn sink(State(sink): State<Arc<Sink>>, body: Bytes) -> impl IntoResponse {
    let needle = b"\"insert_id\"";
    let count = body.windows(needle.len()).filter(|window| *window == needle).count() as u64;
    sink.events.fetch_add(count, Ordering::Relaxed);
    if sink.track_arrivals.load(Ordering::Relaxed) {
        let now = Instant::now();
        if let Ok(request) = serde_json::from_slice::<Value>(&body) {
            let mut arrivals = sink.arrivals.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for event in request["events"].as_array().into_iter().flatten() {
                if let Some(id) = event["insert_id"].as_str() {
                    arrivals.entry(id.to_owned()).or_insert(now);
                }
            }
        }
    }
    (StatusCode::OK, axum::Json(json!({"code": 200})))
}

async fn parked() -> impl IntoResponse {
    (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "3600")], "parked")
}

fn event(run: u128, index: usize) -> Value {
    json!({
        "event_id": format!("fwd-{run}-{index}"),
        "product_id": "shop",
        "session.id": format!("sess-{:x}-{:08}", run, index % 5_000),
        "user.id": format!("user-{:06}", index % 20_000),
        "event.type": if index.is_multiple_of(3) { "page.view" } else { "ui.click" },
        "event.name": if index.is_multiple_of(3) { "Page View" } else { "Add To Cart" },
        "page.path": "/products/42",
        "page.url": "https://shop.example.com/products/42",
        "ui.component.name": "AddToCartButton",
        "duration_ms": index % 900,
    })
}

async fn ingest(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    connections: usize,
    label: &str,
    total_events: u64,
) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicU64::new(0));
    let progress = progress_bar(label, total_events, "events");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, key, bodies, next, progress) =
            (client.clone(), url.to_owned(), key.to_owned(), bodies.clone(), next.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(index) else { return Ok::<_, anyhow::Error>(()) };
                let response = client
                    .post(&url)
                    .header("x-api-key", &key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                anyhow::ensure!(response.status() == 202, "ingest answered {}", response.status());
                let answer: Value = response.json().await?;
                progress.inc(answer["accepted"].as_u64().unwrap_or(0));
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    progress.finish_and_clear();
    Ok(started.elapsed())
}

fn bodies(run: u128, offset: usize, events: usize, per_request: usize) -> Arc<Vec<Vec<u8>>> {
    let all: Vec<Value> = (offset..offset + events).map(|index| event(run, index)).collect();
    Arc::new(all.chunks(per_request).map(|chunk| json!({"events": chunk}).to_string().into_bytes()).collect())
}

fn percentile(sorted: &[Duration], quantile: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Runs the benchmark and prints the report.
pub async fn run(args: ForwardArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.events > 0 && args.connections > 0, "--events and --connections must be positive");
    anyhow::ensure!((1..=1000).contains(&args.events_per_request), "--events-per-request: 1 to 1000");
    let machine = process::machine_info();
    let run_id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();

    let sink_state = Arc::new(Sink::default());
    let router = axum::Router::new()
        .route("/2/httpapi", axum::routing::post(sink))
        .route("/parked", axum::routing::post(parked))
        .with_state(sink_state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sink_addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let data_dir = DataDir::new(None)?;
    let config = loopback_config(&data_dir.path);
    let store = open_store(&config)?;
    let baseline = bench_project(store.as_ref(), "sightline bench forward")?;
    let forwarded = store.create_project("forwarded")?;
    let (forwarded_key, _) = store.create_api_key(forwarded.id, KeyScope::Ingest, "bench forward")?;
    let (admin_key, _) = store.create_api_key(forwarded.id, KeyScope::All, "bench forward admin")?;
    let server = start(config, store).await?;
    let base = format!("http://{}", server.http_addr);
    let client = reqwest::Client::new();
    let destinations = format!("{base}/api/v1/projects/forwarded/destinations");
    let created: Value = client
        .post(&destinations)
        .bearer_auth(admin_key.expose())
        .json(&json!({"name": "amplitude", "config": {"type": "amplitude", "api_key": "bench-key-1",
            "endpoint": format!("http://{sink_addr}/parked")}}))
        .send()
        .await?
        .json()
        .await?;
    let destination_id = created["id"].as_i64().context("destination not created")?;

    eprintln!("Ingesting {} events into each project", args.events);
    let total = args.events as u64;
    let events_url = format!("{base}/v1/events");
    let without = ingest(
        &client,
        &events_url,
        &baseline.ingest_key,
        bodies(run_id, 0, args.events, args.events_per_request),
        args.connections,
        "no destination",
        total,
    )
    .await?;
    let with = ingest(
        &client,
        &events_url,
        forwarded_key.expose(),
        bodies(run_id, args.events, args.events, args.events_per_request),
        args.connections,
        "one destination",
        total,
    )
    .await?;

    // Drain: point the destination at the sink; the worker restarts and empties the outbox.
    let drain_started = Instant::now();
    let patched = client
        .patch(format!("{destinations}/{destination_id}"))
        .bearer_auth(admin_key.expose())
        .json(&json!({"config": {"endpoint": format!("http://{sink_addr}/2/httpapi")}}))
        .send()
        .await?;
    anyhow::ensure!(patched.status() == 200, "PATCH answered {}", patched.status());
    let progress = progress_bar("drain", total, "events");
    let deadline = Instant::now() + Duration::from_secs(600);
    while sink_state.events.load(Ordering::Relaxed) < total {
        anyhow::ensure!(Instant::now() < deadline, "the outbox did not drain within 10 minutes");
        progress.set_position(sink_state.events.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain = drain_started.elapsed();
    progress.finish_and_clear();

    // Latency: single events at a steady pace (every 25 ms), each timed from its 202.
    sink_state.track_arrivals.store(true, Ordering::Relaxed);
    let mut accepted_at = Vec::with_capacity(args.latency_samples);
    for index in 0..args.latency_samples {
        let id = format!("lat-{run_id}-{index}");
        let mut single = event(run_id, 10_000_000 + index);
        single["event_id"] = json!(id);
        let response = client
            .post(&events_url)
            .header("x-api-key", forwarded_key.expose())
            .json(&json!({"events": [single]}))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 202, "ingest answered {}", response.status());
        accepted_at.push((id, Instant::now()));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut latencies = Vec::new();
    loop {
        {
            let arrivals = sink_state.arrivals.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if arrivals.len() >= args.latency_samples || Instant::now() > deadline {
                for (id, accepted) in &accepted_at {
                    if let Some(arrived) = arrivals.get(id) {
                        latencies.push(arrived.saturating_duration_since(*accepted));
                    }
                }
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.shutdown().await;
    latencies.sort();
    anyhow::ensure!(
        latencies.len() == args.latency_samples,
        "{} of {} samples arrived",
        latencies.len(),
        args.latency_samples
    );

    let rate = |duration: Duration| total as f64 / duration.as_secs_f64();
    let (p50, p99, max) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99), percentile(&latencies, 1.0));
    println!("## `sightline bench forward`\n");
    println!(
        "Command: `sightline bench forward --events {} --events-per-request {} --connections {} --latency-samples {}` (release build)\n",
        args.events, args.events_per_request, args.connections, args.latency_samples
    );
    println!(
        "Machine: {} cores ({}), kernel {}; SQLite on {}\n",
        machine.cores,
        machine.cpu_model,
        machine.kernel,
        process::filesystem_type(&data_dir.path)
    );
    println!("| phase | events | time | events/s |");
    println!("|---|---|---|---|");
    println!(
        "| ingest, project without destination (baseline) | {total} | {:.2} s | {:.0} |",
        without.as_secs_f64(),
        rate(without)
    );
    println!(
        "| ingest, project with one destination (outbox rows in the same transaction) | {total} | {:.2} s | {:.0} |",
        with.as_secs_f64(),
        rate(with)
    );
    println!(
        "| forwarding: outbox drained to the local Amplitude-shaped sink | {total} | {:.2} s | {:.0} |",
        drain.as_secs_f64(),
        rate(drain)
    );
    println!();
    println!(
        "Accept (202) → first delivery attempt at the sink, default batch interval (200 ms), {} single-event requests: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms.",
        latencies.len(),
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0
    );
    let forward_rate = rate(drain);
    println!();
    println!(
        "Bars: forwarding ≥ 50,000 events/s: {}; accept → first attempt < 1 s: {}.",
        if forward_rate >= 50_000.0 { "met" } else { "NOT met" },
        if p99 < Duration::from_secs(1) { "met (p99)" } else { "NOT met" }
    );
    Ok(())
}
