//! The init guard against a dead endpoint: dropping it costs at most its shutdown timeout, with
//! spans, logs and events all queued.

use std::time::{Duration, Instant};

#[test]
fn a_dead_endpoint_costs_at_most_the_shutdown_timeout() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for socket in listener.incoming().flatten() {
            open.push(socket);
        }
    });
    let timeout = Duration::from_secs(1);
    let telemetry = sightline_sdk::builder()
        .endpoint(format!("http://{address}"))
        .service_name("dead-endpoint")
        .shutdown_timeout(timeout)
        .build()
        .expect("builds");
    let sightline_sdk::init::Telemetry { subscriber, guard, .. } = telemetry;
    let subscriber = subscriber.expect("subscriber");
    tracing::subscriber::with_default(subscriber, || {
        for index in 0..200 {
            let span = tracing::info_span!("work", index);
            let _entered = span.enter();
            tracing::info!(index, "Working");
            if let Some(events) = guard.events() {
                events.track(sightline_sdk::Event::custom("worked"));
            }
        }
    });
    let started = Instant::now();
    drop(guard);
    let elapsed = started.elapsed();
    assert!(elapsed < timeout + Duration::from_millis(500), "guard drop took {elapsed:?} for a {timeout:?} timeout");
}
