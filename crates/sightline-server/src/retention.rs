//! The retention job: per project, deletes data older than `retention_days` in bounded chunks
//! (each its own short transaction, so ingest waits at most one chunk) and then returns freed
//! pages to the file system so the database file does not grow without bound; then coarsens old
//! 1-minute endpoint rollups into 1-hour rows. Dead letters of forwarding follow the data they
//! refer to (see [`Store::expire_dead_letters`]).

use std::sync::Arc;
use std::time::Duration;

use crate::store::{Store, StoreResult};

const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// Runs one retention pass over every project at time `now_unix_nano`; returns rows deleted.
/// Blocking: call from a blocking thread.
pub fn run_once(store: &dyn Store, now_unix_nano: u64, chunk_rows: usize) -> StoreResult<usize> {
    let mut total = 0;
    let mut longest_retention_days = 1;
    for project in store.list_projects()? {
        longest_retention_days = longest_retention_days.max(project.retention_days.max(1));
        let cutoff = now_unix_nano.saturating_sub(u64::from(project.retention_days.max(1)) * NANOS_PER_DAY);
        loop {
            let deleted = store.delete_expired(project.id, cutoff, chunk_rows)?;
            total += deleted;
            if deleted == 0 {
                break;
            }
        }
    }
    // Dead letters follow the data: product-event letters go with their event, OTLP letters
    // (server-wide, holding every project's requests) after the longest project retention.
    let otlp_cutoff_unix_nano = now_unix_nano.saturating_sub(u64::from(longest_retention_days) * NANOS_PER_DAY);
    total += store.expire_dead_letters((otlp_cutoff_unix_nano / 1_000_000) as i64)?;
    if total > 0 {
        // Each call frees a bounded number of pages and releases the writer in between; stop
        // when nothing is left or nothing more can be freed (a database without auto_vacuum).
        let mut previous_free_pages = u64::MAX;
        loop {
            let free_pages = store.reclaim_space()?;
            if free_pages == 0 || free_pages >= previous_free_pages {
                break;
            }
            previous_free_pages = free_pages;
        }
    }
    Ok(total)
}

/// Merges every project's 1-minute endpoint rollups older than `coarsen_after` into 1-hour
/// rows, `chunk_rows` minute rows per transaction; returns minute rows merged. Blocking.
pub fn coarsen_rollups_once(
    store: &dyn Store,
    now_unix_nano: u64,
    coarsen_after: Duration,
    chunk_rows: usize,
) -> StoreResult<usize> {
    let cutoff = now_unix_nano.saturating_sub(coarsen_after.as_nanos().min(u128::from(u64::MAX)) as u64);
    let mut total = 0;
    for project in store.list_projects()? {
        loop {
            let merged = store.coarsen_rollups(project.id, cutoff, chunk_rows)?;
            total += merged;
            if merged == 0 {
                break;
            }
        }
    }
    Ok(total)
}

/// Runs [`run_once`] and then [`coarsen_rollups_once`] every `interval` (first after one
/// interval) until the task is aborted.
pub async fn run_periodically(
    store: Arc<dyn Store>,
    interval: Duration,
    chunk_rows: usize,
    rollup_coarsen_after: Duration,
) {
    // The first pass comes one interval after start, not at once: start-up stays fast, and data
    // sent right after start is never raced by a pass.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let retention_store = store.clone();
        let now = crate::clock::now_unix_nano();
        match tokio::task::spawn_blocking(move || run_once(retention_store.as_ref(), now, chunk_rows)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(deleted)) => tracing::info!(deleted, "Retention removed expired rows"),
            Ok(Err(error)) => tracing::error!(%error, "Retention pass failed; will retry next interval"),
            Err(error) => tracing::error!(%error, "Retention task panicked"),
        }
        let coarsen_store = store.clone();
        let coarsen = move || {
            coarsen_rollups_once(
                coarsen_store.as_ref(),
                crate::clock::now_unix_nano(),
                rollup_coarsen_after,
                chunk_rows,
            )
        };
        match tokio::task::spawn_blocking(coarsen).await {
            Ok(Ok(0)) => {}
            Ok(Ok(merged)) => tracing::info!(merged, "Coarsened minute rollups into hours"),
            Ok(Err(error)) => tracing::error!(%error, "Rollup coarsening failed; will retry next interval"),
            Err(error) => tracing::error!(%error, "Rollup coarsening task panicked"),
        }
    }
}
