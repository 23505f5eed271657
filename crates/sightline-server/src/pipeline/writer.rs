//! Group commit: one writer thread takes every queued batch it can (up to a size), commits them
//! in one transaction and only then answers each request. The queue is bounded by a semaphore
//! counting queued items, so overload is refused up front instead of growing memory. After a
//! commit succeeds, committed log records go to the live tail ([`crate::live_tail`]) before the
//! requests are answered.
//!
//! Commits do not wait for the disk: the writer commits with [`Store::commit_deferring_sync`]
//! and hands the commit's requests to a sync thread, which makes everything committed so far
//! durable with one [`Store::sync_commits`] and only then answers them. The next commit runs
//! meanwhile (the WAL fsync was ≈ 40 % of the writer's time in `sightline bench errors`,
//! BENCHMARKS.md), and one sync covers all the commits made while the previous one ran, as
//! PostgreSQL's WAL writer does. A request is answered only after a sync that began after its
//! commit returned, so acknowledged data survives power loss as before.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::error::IngestError;
use crate::live_tail::LogTail;
use crate::store::service_map::{CallPairing, EdgeTally};
use crate::store::{SignalBatch, Store, WriteBatch};

struct Job {
    batch: WriteBatch,
    items: usize,
    reply: oneshot::Sender<Result<(), String>>,
    _permit: OwnedSemaphorePermit,
}

/// The sending side of the ingest queue; cheap to clone.
#[derive(Clone)]
pub struct IngestQueue {
    sender: mpsc::UnboundedSender<Job>,
    permits: Arc<Semaphore>,
    /// The service map's waiting call halves. Each admitted batch is paired here, on the
    /// request's thread, so the single writer only adds the paired calls to its rows (pairing
    /// took ≈ 3 % of the writer's time in `bench apm` when the writer did it).
    pairing: Arc<Mutex<CallPairing>>,
    max_queued_items: usize,
    retry_after: Duration,
}

/// Handle to the writer thread; [`WriterHandle::join`] waits until every queued batch is
/// committed (after all [`IngestQueue`] clones are dropped).
pub struct WriterHandle {
    thread: JoinHandle<()>,
}

impl WriterHandle {
    /// Blocks until the writer has drained the queue and exited.
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("Writer thread panicked");
        }
    }
}

/// Starts the writer thread for `store`; committed logs are published to `tail`.
pub fn start_writer(
    store: Arc<dyn Store>,
    tail: Arc<LogTail>,
    max_queued_items: usize,
    max_items_per_commit: usize,
    retry_after: Duration,
) -> (IngestQueue, WriterHandle) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let thread = std::thread::Builder::new()
        .name("sightline-writer".into())
        .spawn(move || run_writer(store, tail, receiver, max_items_per_commit))
        .expect("spawning the writer thread");
    let queue = IngestQueue {
        sender,
        permits: Arc::new(Semaphore::new(max_queued_items)),
        pairing: Default::default(),
        max_queued_items,
        retry_after,
    };
    (queue, WriterHandle { thread })
}

impl IngestQueue {
    /// Queues a batch and waits until it is committed. Errors with `Overloaded` at once when
    /// the queue holds too many items, `Unavailable` when the commit failed or the writer is
    /// gone; in both cases nothing of the batch is stored.
    ///
    /// An admitted batch's call halves are paired with the halves waiting here (and halves
    /// waiting longer than the pairing window expire) before it is queued; the paired calls
    /// travel in the batch (`WriteBatch::paired_calls`). Pairing state changes even if the
    /// commit then fails: the client sends the batch again, which re-adds its halves, and the
    /// calls paired the first time are then missing from the map (never counted twice).
    pub async fn submit(&self, mut batch: WriteBatch, items: usize) -> Result<(), IngestError> {
        // A batch bigger than the whole queue still gets in when the queue is empty.
        let wanted = items.clamp(1, self.max_queued_items) as u32;
        let permit = self.permits.clone().try_acquire_many_owned(wanted).map_err(|_| {
            crate::telemetry::metrics()
                .refused
                .get_or_create(&crate::telemetry::RefusedLabels { reason: "overloaded".into() })
                .inc();
            IngestError::Overloaded { retry_after: self.retry_after }
        })?;
        self.pair_calls(&mut batch);
        let (reply, answer) = oneshot::channel();
        self.sender.send(Job { batch, items, reply, _permit: permit }).map_err(|_| IngestError::Unavailable {
            reason: "server is shutting down".into(),
            retry_after: self.retry_after,
        })?;
        let answer = answer.await;
        if !matches!(answer, Ok(Ok(()))) {
            crate::telemetry::metrics()
                .refused
                .get_or_create(&crate::telemetry::RefusedLabels { reason: "unavailable".into() })
                .inc();
        }
        match answer {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(IngestError::Unavailable { reason, retry_after: self.retry_after }),
            Err(_) => Err(IngestError::Unavailable { reason: "writer stopped".into(), retry_after: self.retry_after }),
        }
    }

    /// Pairs the batch's call halves and expires old ones into `batch.paired_calls` (see
    /// [`IngestQueue::submit`]); the halves are dropped from the batch afterwards.
    fn pair_calls(&self, batch: &mut WriteBatch) {
        let now_unix_nano = crate::clock::now_unix_nano();
        let halves = std::mem::take(&mut batch.call_halves);
        let mut calls = EdgeTally::default();
        // A panic elsewhere while holding the lock leaves halves that are still consistent.
        let mut pairing = self.pairing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pairing.observe(batch.project_id, &halves, now_unix_nano, &mut calls);
        pairing.expire(now_unix_nano, &mut calls);
        drop(pairing);
        batch.paired_calls = calls;
    }

    /// Items currently queued or being committed.
    pub fn queued_items(&self) -> usize {
        self.max_queued_items - self.permits.available_permits()
    }
}

/// Committed batches waiting to be freed by the drop thread. Two in flight at most: when
/// freeing falls behind, the writer waits instead of holding more memory.
const BATCHES_AWAITING_DROP: usize = 2;

fn run_writer(
    store: Arc<dyn Store>,
    tail: Arc<LogTail>,
    mut receiver: mpsc::UnboundedReceiver<Job>,
    max_items_per_commit: usize,
) {
    // Freeing a commit's batches (allocated on the receiving threads) took 10–15% of the
    // writer's time in `bench events`; a helper thread frees them instead.
    let (drop_sender, drop_receiver) = std::sync::mpsc::sync_channel::<Vec<WriteBatch>>(BATCHES_AWAITING_DROP);
    let dropper = std::thread::Builder::new()
        .name("sightline-free".into())
        .spawn(move || while drop_receiver.recv().is_ok() {})
        .ok();
    // Without the sync thread (it could not be spawned) every commit is durable by itself.
    let syncer = {
        let (sync_sender, sync_receiver) = std::sync::mpsc::channel::<Vec<Waiter>>();
        let store = store.clone();
        std::thread::Builder::new()
            .name("sightline-sync".into())
            .spawn(move || run_syncer(&|| store.sync_commits().map_err(|error| error.to_string()), &sync_receiver))
            .ok()
            .map(|thread| (sync_sender, thread))
    };
    while let Some(first) = receiver.blocking_recv() {
        let mut items = first.items;
        let mut jobs = vec![first];
        while items < max_items_per_commit {
            match receiver.try_recv() {
                Ok(job) => {
                    items += job.items;
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let (batches, waiters): (Vec<WriteBatch>, Vec<_>) =
            jobs.into_iter().map(|job| (job.batch, (job.reply, job._permit))).unzip();
        let started = std::time::Instant::now();
        let committed = if syncer.is_some() { store.commit_deferring_sync(&batches) } else { store.commit(&batches) };
        let result = committed.map_err(|error| error.to_string());
        let metrics = crate::telemetry::metrics();
        metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        metrics.commit_items.observe(items as f64);
        if result.is_ok() {
            for batch in &batches {
                let signal = batch.signal.signal_name();
                metrics.count_items(signal, "accepted", batch.outcomes.accepted);
                metrics.count_items(signal, "sampled_out", batch.outcomes.sampled_out);
                metrics.count_items(signal, "invalid", batch.outcomes.invalid);
                for day in &batch.sessions.correlation {
                    let label = |with_session: bool| crate::telemetry::CorrelationLabels {
                        with_session: with_session.to_string(),
                    };
                    metrics.server_spans.get_or_create(&label(true)).inc_by(day.with_session);
                    metrics.server_spans.get_or_create(&label(false)).inc_by(day.server_spans - day.with_session);
                }
            }
        }
        if let Err(reason) = &result {
            tracing::error!(%reason, requests = waiters.len(), "Commit failed; requests answered as retryable");
        }
        // Only committed records reach the tail (a watcher never sees a log a failed commit
        // lost), and before the clients are answered: a tail opened after a record was
        // acknowledged must not show it. Unwatched projects cost one map lookup per batch.
        if result.is_ok() {
            for batch in &batches {
                if let SignalBatch::Logs(logs) = &batch.signal {
                    tail.publish(batch.project_id, logs);
                }
            }
        }
        // Queue space is released (permits dropped) only once the items are committed and
        // synced. A failed commit has nothing to sync: its requests are answered at once.
        match (&result, &syncer) {
            (Ok(()), Some((sync_sender, _))) => {
                // The sync thread is gone (it cannot end while this sender lives, unless it
                // panicked): sync here.
                if let Err(std::sync::mpsc::SendError(waiters)) = sync_sender.send(waiters) {
                    answer(waiters, &store.sync_commits().map_err(|error| error.to_string()));
                }
            }
            _ => answer(waiters, &result),
        }
        if dropper.is_some() {
            // Without the thread (it could not be spawned, or it ended) the batches drop here.
            let _ = drop_sender.send(batches);
        }
    }
    drop(drop_sender);
    if let Some(dropper) = dropper {
        let _ = dropper.join();
    }
    if let Some((sync_sender, thread)) = syncer {
        // The sync thread answers what it holds, then ends when it sees the channel closed.
        drop(sync_sender);
        if thread.join().is_err() {
            tracing::error!("Sync thread panicked");
        }
    }
    tracing::info!("Writer drained the ingest queue");
}

/// A committed request waiting for its answer: the reply and the queue space it holds.
type Waiter = (oneshot::Sender<Result<(), String>>, OwnedSemaphorePermit);

fn answer(waiters: Vec<Waiter>, result: &Result<(), String>) {
    for (reply, _permit) in waiters {
        // The client may have gone away; its data is stored either way.
        let _ = reply.send(result.clone());
    }
}

/// The sync thread: takes every commit's requests handed over so far, syncs once, answers
/// them all (an error when the sync failed: the client sends again), until the writer closes
/// the channel.
fn run_syncer(sync: &dyn Fn() -> Result<(), String>, receiver: &std::sync::mpsc::Receiver<Vec<Waiter>>) {
    while let Ok(mut waiters) = receiver.recv() {
        // Everything handed over was committed before this point, so one sync covers it all.
        while let Ok(more) = receiver.try_recv() {
            waiters.extend(more);
        }
        let started = std::time::Instant::now();
        let synced = sync();
        crate::telemetry::metrics().sync_seconds.observe(started.elapsed().as_secs_f64());
        if let Err(reason) = &synced {
            tracing::error!(%reason, requests = waiters.len(), "Syncing commits failed; requests answered as retryable");
        }
        answer(waiters, &synced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waiter as the writer hands it over, and the receiving end its request awaits.
    fn waiter(permits: &Arc<Semaphore>) -> (Waiter, oneshot::Receiver<Result<(), String>>) {
        let (reply, answer) = oneshot::channel();
        let permit = permits.clone().try_acquire_owned().expect("a free permit");
        ((reply, permit), answer)
    }

    #[test]
    fn committed_requests_are_answered_only_after_a_sync_that_began_after_their_commit() {
        let permits = Arc::new(Semaphore::new(8));
        let (sender, receiver) = std::sync::mpsc::channel::<Vec<Waiter>>();
        // The sync reports that it began, then waits to be let through.
        let (began_sender, began) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<Result<(), String>>();
        let syncer = std::thread::spawn(move || {
            let sync = move || {
                began_sender.send(()).expect("the test listens");
                released.recv().expect("the test releases every sync")
            };
            run_syncer(&sync, &receiver);
        });

        let (first, mut first_answer) = waiter(&permits);
        sender.send(vec![first]).unwrap();
        began.recv().unwrap();
        // A commit handed over while that sync runs must wait for the next one.
        let (second, mut second_answer) = waiter(&permits);
        let (third, mut third_answer) = waiter(&permits);
        sender.send(vec![second]).unwrap();
        sender.send(vec![third]).unwrap();
        assert!(first_answer.try_recv().is_err(), "answered before its sync returned");
        assert_eq!(permits.available_permits(), 5, "queue space released before the sync");

        release.send(Ok(())).unwrap();
        assert_eq!(first_answer.blocking_recv().unwrap(), Ok(()));
        // One sync covers both commits handed over meanwhile.
        began.recv().unwrap();
        assert!(second_answer.try_recv().is_err() && third_answer.try_recv().is_err());
        release.send(Err("disk gone".into())).unwrap();
        assert_eq!(second_answer.blocking_recv().unwrap(), Err("disk gone".to_owned()));
        assert_eq!(third_answer.blocking_recv().unwrap(), Err("disk gone".to_owned()));

        drop(sender);
        syncer.join().unwrap();
        assert!(began.try_recv().is_err(), "a sync ran with nothing to answer");
        assert_eq!(permits.available_permits(), 8);
    }
}
