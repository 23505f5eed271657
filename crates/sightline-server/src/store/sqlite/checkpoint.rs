//! WAL checkpoints off the writer thread.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages, on the
//! writer, and stalls every request waiting in that group commit (measured: ≈ 18 % of the
//! writer's time, and the p99 latency tail; see BENCHMARKS.md). The writer turns it off
//! (`wal_autocheckpoint = 0`) and this thread runs PASSIVE checkpoints from its own connection
//! after commits, at most one per `MIN_INTERVAL`; PASSIVE never blocks the writer or readers.
//! When the store is dropped it runs a final TRUNCATE checkpoint so the WAL file shrinks.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Shortest time between two checkpoints.
const MIN_INTERVAL: Duration = Duration::from_millis(250);
/// Longest time without a checkpoint while commits happened.
const IDLE_INTERVAL: Duration = Duration::from_secs(2);
/// WAL length (pages; 256 MiB at 4 KiB) above which a RESTART checkpoint makes the next writer
/// start the WAL from the beginning. Under sustained load PASSIVE checkpoints keep up with the
/// data but the WAL only rewinds when it is fully checkpointed as a write begins, so without
/// this the file would grow for as long as the load lasts. RESTART waits for the writer's
/// current commit, so it runs rarely.
const RESTART_WAL_PAGES: i64 = 65_536;

/// Handle to the checkpoint thread; dropping it runs a last checkpoint and joins the thread.
pub(super) struct Checkpointer {
    notify: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to `path`.
    pub(super) fn start(path: &Path) -> rusqlite::Result<Self> {
        let connection = Connection::open(path)?;
        connection.execute_batch("PRAGMA busy_timeout = 5000;")?;
        let (notify, wake) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("sightline-checkpoint".into())
            .spawn(move || {
                let mut pending = false;
                let mut last = Instant::now();
                loop {
                    match wake.recv_timeout(IDLE_INTERVAL) {
                        Ok(()) => pending = true,
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                    if pending && last.elapsed() >= MIN_INTERVAL {
                        let wal_pages = connection
                            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(1))
                            .unwrap_or_else(|error| {
                                tracing::warn!(%error, "WAL checkpoint failed; will retry");
                                0
                            });
                        if wal_pages > RESTART_WAL_PAGES
                            && let Err(error) = connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                        {
                            tracing::warn!(%error, "WAL restart checkpoint failed; will retry");
                        }
                        pending = false;
                        last = Instant::now();
                    }
                }
                if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                    tracing::warn!(%error, "Final WAL checkpoint failed");
                }
            })
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
        Ok(Self { notify: Some(notify), thread: Some(thread) })
    }

    /// Tells the thread a commit happened (never blocks).
    pub(super) fn committed(&self) {
        if let Some(notify) = &self.notify {
            let _ = notify.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.notify.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
