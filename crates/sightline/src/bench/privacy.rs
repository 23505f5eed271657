//! `sightline bench privacy`: product events scrubbed per second on one thread with the
//! `@common` preset on every field, next to a same-run baseline that only copies the events
//! (every scrub works on a copy, as forwarding does).
//!
//! The events are ProductGraph page views, clicks and errors with URLs (query strings), titles,
//! metadata, and personal data in one event of four (e-mail, IP address, card number, phone).

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use sightline_model::ProductEvent;
use sightline_privacy::{HashKey, PrivacyConfig, Scrubber, Vars};

/// Arguments of `sightline bench privacy`.
#[derive(Debug, Clone, Args)]
pub struct PrivacyArgs {
    /// Distinct events generated (each timed pass scrubs all of them).
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Timed passes per row (the fastest is reported).
    #[arg(long, default_value_t = 5)]
    pub passes: usize,
}

/// The `index`th generated event.
fn event(index: usize) -> anyhow::Result<ProductEvent> {
    let kind = ["page.view", "ui.click", "error", "custom"][index % 4];
    let title = match index % 16 {
        0 => format!("Receipt for customer{index}@example.com"),
        4 => format!("Login from 10.{}.{}.{}", index % 250, (index / 7) % 250, (index / 3) % 250),
        8 => "Paid with 4111 1111 1111 1111".to_owned(),
        12 => "Call us at +49 30 1234567".to_owned(),
        _ => format!("Product {index} — Shop"),
    };
    let body = json!({
        "event_id": format!("evt-{index}"), "product_id": "shop", "session.id": format!("sess-{}", index / 20),
        "user.id": format!("user-{}", index % 500), "event.type": kind, "event.name": format!("{kind} {}", index % 40),
        "event.timestamp": "2026-11-24T10:00:00.000Z",
        "page.path": format!("/products/{}", index % 300), "page.title": title,
        "page.url": format!("https://shop.example.com/products/{}?utm_source=mail&ref=home&q=shoes+{}", index % 300, index % 9),
        "page.referrer": "https://www.example.org/search?q=shoes",
        "ui.element": "button#add-to-cart", "ui.action": "click",
        "error.message": if kind == "error" { json!("Cannot read properties of undefined (reading 'total')") } else { Value::Null },
        "metadata": {"plan": "pro", "ab": {"variant": "b", "cohort": index % 12}, "app_version": "3.1.0"}
    });
    sightline_model::event::parse_event(&body, 1).map_err(|error| anyhow::anyhow!("generated event invalid: {error}"))
}

/// The fastest of `passes` timed runs of `work` over copies of `events`, and the fields it
/// changed in the last pass.
fn time(events: &[ProductEvent], passes: usize, mut work: impl FnMut(&mut ProductEvent) -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut changed = 0;
    for _ in 0..passes.max(1) {
        changed = 0;
        let started = Instant::now();
        for event in events {
            let mut copy = event.clone();
            changed += work(&mut copy);
            std::hint::black_box(&copy);
        }
        best = best.min(started.elapsed());
    }
    (best, changed)
}

/// Runs the benchmark and prints a markdown table.
pub fn run(args: PrivacyArgs) -> anyhow::Result<()> {
    let events: Vec<ProductEvent> = (0..args.events).map(event).collect::<anyhow::Result<_>>()?;
    let common = Scrubber::new(&PrivacyConfig::common_preset()).context("@common compiles")?;
    let mut hashing_config = PrivacyConfig::common_preset();
    hashing_config.applications.insert("user.id".into(), vec!["@anything:hash".into()]);
    hashing_config.vars = Vars { hash_key: Some(HashKey::new(vec![7u8; 32])) };
    let hashing = Scrubber::new(&hashing_config).context("@common with hashing compiles")?;

    let (baseline, _) = time(&events, args.passes, |_| 0);
    let (scrubbed, common_changes) = time(&events, args.passes, |event| common.scrub_event(event).len());
    let (hashed, hashed_changes) = time(&events, args.passes, |event| hashing.scrub_event(event).len());
    let rate = |elapsed: Duration| args.events as f64 / elapsed.as_secs_f64().max(1e-9);
    println!("| Privacy scrub, 1 thread | events | fields changed | events/s | µs/event |");
    println!("|---|---|---|---|---|");
    for (label, elapsed, changes) in [
        ("Copy only (baseline)", baseline, 0),
        ("`@common` on `**`", scrubbed, common_changes),
        ("`@common` + `user.id` `@anything:hash`", hashed, hashed_changes),
    ] {
        println!(
            "| {label} | {} | {changes} | {:.0} | {:.2} |",
            args.events,
            rate(elapsed),
            elapsed.as_secs_f64() * 1e6 / args.events as f64
        );
    }
    Ok(())
}
