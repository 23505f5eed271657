//! WAL checkpoints off the writer thread.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages, on the
//! writer, and stalls every request waiting in that group commit (measured: ≈ 18 % of the
//! writer's time, and the p99 latency tail; see BENCHMARKS.md). The writer turns it off
//! (`wal_autocheckpoint = 0`) and this thread runs PASSIVE checkpoints from its own connection
//! after commits, at most one per `MIN_INTERVAL`; PASSIVE never blocks the writer or readers.
//! When the store is dropped it runs a final TRUNCATE checkpoint so the WAL file shrinks.
//!
//! The WAL only rewinds (the next commit writes its frames from the start of the file again)
//! when a write transaction begins while every frame is checkpointed. Under sustained load the
//! writer appends frames while each PASSIVE checkpoint copies, so that never happens by itself,
//! and a RESTART checkpoint from this thread waits for a write lock the writer hands straight
//! to its next commit: it timed out after its 5 s busy wait and the WAL grew to 677 MiB in one
//! `sightline bench errors` run, every frame beyond the old end of the file costing the kernel
//! a block allocation and zero-filling (a third of the writer's samples). So when the WAL is
//! longer than [`REWIND_WAL_PAGES`] this thread asks the writer, which runs one PASSIVE
//! checkpoint itself between two commits ([`Checkpointer::take_rewind_request`]): it copies
//! only the frames committed since this thread's last checkpoint, and the writer's next commit
//! rewinds the WAL.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Shortest time between two checkpoints.
const MIN_INTERVAL: Duration = Duration::from_millis(250);
/// Longest time without a checkpoint while commits happened.
const IDLE_INTERVAL: Duration = Duration::from_secs(2);
/// WAL length (pages; 256 MiB at 4 KiB) above which the writer is asked to catch up the
/// checkpoint so that its next commit rewinds the WAL (see the module docs).
pub(super) const REWIND_WAL_PAGES: i64 = 65_536;

/// Handle to the checkpoint thread; dropping it runs a last checkpoint and joins the thread.
pub(super) struct Checkpointer {
    notify: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Set by the thread when the WAL is longer than its rewind length.
    rewind: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to `path`; it asks for a rewind when the WAL
    /// holds more than `rewind_wal_pages` frames ([`REWIND_WAL_PAGES`] in the store).
    pub(super) fn start(path: &Path, rewind_wal_pages: i64) -> rusqlite::Result<Self> {
        let connection = Connection::open(path)?;
        connection.execute_batch("PRAGMA busy_timeout = 5000;")?;
        let (notify, wake) = mpsc::sync_channel::<()>(1);
        let rewind = Arc::new(AtomicBool::new(false));
        let request_rewind = rewind.clone();
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
                        if wal_pages > rewind_wal_pages {
                            request_rewind.store(true, Ordering::Release);
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
        Ok(Self { notify: Some(notify), thread: Some(thread), rewind })
    }

    /// True once after the thread found the WAL longer than its rewind length: the writer
    /// should then run `PRAGMA wal_checkpoint(PASSIVE)` on its own connection before its next
    /// commit, which then starts the WAL from the beginning again.
    pub(super) fn take_rewind_request(&self) -> bool {
        self.rewind.swap(false, Ordering::AcqRel)
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rusqlite::Connection;

    use super::Checkpointer;

    /// A database `store.db` in a new directory, in WAL mode without automatic checkpoints,
    /// with one table `t (b BLOB)`; returns the directory and the writer's connection.
    fn wal_database() -> (tempfile::TempDir, Connection) {
        let directory = tempfile::tempdir().expect("temporary directory");
        let writer = Connection::open(directory.path().join("store.db")).expect("database");
        writer
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (b BLOB);")
            .expect("insert");
        (directory, writer)
    }

    fn wal_len(path: &std::path::Path) -> u64 {
        std::fs::metadata(path.with_extension("db-wal")).map_or(0, |metadata| metadata.len())
    }

    /// The interleaving of sustained load: a PASSIVE checkpoint from another connection copies
    /// every committed frame while the writer's next transaction is already open.
    fn commit_while_checkpointing(writer: &Connection, checkpointer: &Connection) {
        writer
            .execute_batch(
                "BEGIN IMMEDIATE; INSERT INTO t (b) SELECT randomblob(3000) FROM (SELECT 1 UNION ALL SELECT 2);",
            )
            .expect("insert");
        checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).expect("checkpoint");
        writer.execute_batch("COMMIT").expect("commit");
    }

    #[test]
    fn the_wal_grows_under_sustained_load_until_the_writer_itself_catches_up_the_checkpoint() {
        let (directory, writer) = wal_database();
        let path = directory.path().join("store.db");
        let checkpointer = Connection::open(&path).expect("second connection");
        let mut grown = wal_len(&path);
        for _ in 0..10 {
            commit_while_checkpointing(&writer, &checkpointer);
            let length = wal_len(&path);
            assert!(length > grown, "the WAL rewound without help: {length} bytes after {grown}");
            grown = length;
        }
        // What the store's writer does when the checkpoint thread asks.
        let mut store_writer = super::super::write::Writer::new(writer, Default::default(), Default::default());
        for _ in 0..30 {
            store_writer.catch_up_checkpoint();
            commit_while_checkpointing(store_writer.connection(), &checkpointer);
            assert_eq!(wal_len(&path), grown, "each commit after a catch-up starts the WAL from the beginning");
        }
        let writer = store_writer.connection();
        let rows: i64 = writer.query_row("SELECT count(*) FROM t", [], |row| row.get(0)).expect("count");
        assert_eq!(rows, 80);
    }

    #[test]
    fn the_thread_asks_for_a_rewind_once_the_wal_is_longer_than_its_rewind_length() {
        let (directory, writer) = wal_database();
        let path = directory.path().join("store.db");
        let checkpoints = Checkpointer::start(&path, 16).expect("checkpoint thread");
        assert!(!checkpoints.take_rewind_request());
        // 32 rows of 4,000 bytes: more than 32 WAL frames.
        writer
            .execute_batch(
                "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 32)
                 INSERT INTO t (b) SELECT randomblob(4000) FROM n;",
            )
            .expect("insert");
        checkpoints.committed();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !checkpoints.take_rewind_request() {
            assert!(Instant::now() < deadline, "no rewind request within 10 s for a WAL of 32+ frames");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!checkpoints.take_rewind_request(), "one request per long WAL seen");
    }
}
