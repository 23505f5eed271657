//! The OTLP forwarding outbox in SQLite: rows added in the ingest commit, claimed in id order
//! per destination, deleted when delivered, moved to `otlp_dead_letters` when refused for good.

use bytes::Bytes;
use rusqlite::{Connection, Transaction, params};

use crate::exporters::otlp::OtlpPayload;
use crate::store::otlp_outbox::{OtlpDeadLetter, OtlpQueueStats, QueuedPayload, stored_signal};
use crate::store::{StoreResult, WriteBatch};

/// Adds one outbox row per batch payload and forwarding destination, inside the commit's
/// transaction: the rows exist exactly when the items they carry were stored.
pub(super) fn enqueue(transaction: &Transaction<'_>, batches: &[WriteBatch], now_unix_ms: i64) -> StoreResult<()> {
    let mut statement = None;
    for batch in batches {
        let Some(forward) = &batch.otlp_forward else {
            continue;
        };
        let statement = match &mut statement {
            Some(statement) => statement,
            None => statement.insert(transaction.prepare_cached(
                "INSERT INTO otlp_outbox (destination, signal, body, items, enqueued_unix_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?),
        };
        for destination in &forward.destinations {
            statement.execute(params![
                destination,
                forward.payload.signal.as_str(),
                forward.payload.body.as_ref(),
                forward.payload.items as i64,
                now_unix_ms
            ])?;
        }
    }
    Ok(())
}

/// The oldest queued payloads of `destination`: at most `max_payloads`, and no more than
/// `max_bytes` in all (the first one always, however large).
pub(super) fn claim(
    connection: &Connection,
    destination: &str,
    max_payloads: usize,
    max_bytes: usize,
) -> StoreResult<Vec<QueuedPayload>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, signal, body, items, enqueued_unix_ms, attempts FROM otlp_outbox
         WHERE destination = ?1 ORDER BY id LIMIT ?2",
    )?;
    let mut rows = statement.query(params![destination, max_payloads as i64])?;
    let mut claimed = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next()? {
        let signal: String = row.get(1)?;
        let body: Vec<u8> = row.get(2)?;
        if !claimed.is_empty() && bytes + body.len() > max_bytes {
            break;
        }
        let Some(signal) = stored_signal(&signal) else {
            continue;
        };
        bytes += body.len();
        claimed.push(QueuedPayload {
            id: row.get(0)?,
            payload: OtlpPayload { signal, body: Bytes::from(body), items: row.get::<_, i64>(3)?.max(0) as u64 },
            enqueued_unix_ms: row.get(4)?,
            attempts: row.get::<_, i64>(5)?.clamp(0, u32::MAX as i64) as u32,
        });
    }
    Ok(claimed)
}

/// Deletes delivered rows.
pub(super) fn delete(connection: &mut Connection, ids: &[i64]) -> StoreResult<()> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut statement = transaction.prepare_cached("DELETE FROM otlp_outbox WHERE id = ?1")?;
        for id in ids {
            statement.execute([id])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

/// Counts a failed attempt on rows that stay queued.
pub(super) fn count_attempt(connection: &mut Connection, ids: &[i64]) -> StoreResult<()> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut statement =
            transaction.prepare_cached("UPDATE otlp_outbox SET attempts = attempts + 1 WHERE id = ?1")?;
        for id in ids {
            statement.execute([id])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

/// Moves rows to the dead letters with `reason`, in one transaction.
pub(super) fn dead_letter(connection: &mut Connection, ids: &[i64], reason: &str, now_unix_ms: i64) -> StoreResult<()> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut copy = transaction.prepare_cached(
            "INSERT INTO otlp_dead_letters (destination, signal, body, items, enqueued_unix_ms, attempts, reason, dead_at_unix_ms)
             SELECT destination, signal, body, items, enqueued_unix_ms, attempts + 1, ?2, ?3 FROM otlp_outbox WHERE id = ?1",
        )?;
        let mut remove = transaction.prepare_cached("DELETE FROM otlp_outbox WHERE id = ?1")?;
        for id in ids {
            copy.execute(params![id, reason, now_unix_ms])?;
            remove.execute([id])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

/// Puts every dead letter of `destination` back at the end of its queue (attempts reset).
/// Returns how many.
pub(super) fn replay(connection: &mut Connection, destination: &str, now_unix_ms: i64) -> StoreResult<usize> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    transaction.execute(
        "INSERT INTO otlp_outbox (destination, signal, body, items, enqueued_unix_ms)
         SELECT destination, signal, body, items, ?2 FROM otlp_dead_letters WHERE destination = ?1 ORDER BY id",
        params![destination, now_unix_ms],
    )?;
    let moved = transaction.execute("DELETE FROM otlp_dead_letters WHERE destination = ?1", [destination])?;
    transaction.commit()?;
    Ok(moved)
}

/// Queue statistics of `destination`.
pub(super) fn stats(connection: &Connection, destination: &str) -> StoreResult<OtlpQueueStats> {
    let (queued_payloads, queued_bytes, queued_items, oldest): (i64, i64, i64, Option<i64>) = connection.query_row(
        "SELECT count(*), coalesce(sum(length(body)), 0), coalesce(sum(items), 0), min(enqueued_unix_ms)
         FROM otlp_outbox WHERE destination = ?1",
        [destination],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
    let dead_letters: i64 = connection.query_row(
        "SELECT count(*) FROM otlp_dead_letters WHERE destination = ?1",
        [destination],
        |row| row.get(0),
    )?;
    Ok(OtlpQueueStats {
        queued_payloads: queued_payloads.max(0) as u64,
        queued_bytes: queued_bytes.max(0) as u64,
        queued_items: queued_items.max(0) as u64,
        oldest_enqueued_unix_ms: oldest,
        dead_letters: dead_letters.max(0) as u64,
    })
}

/// The newest dead letters of `destination`, at most `limit`.
pub(super) fn dead_letters(
    connection: &Connection,
    destination: &str,
    limit: usize,
) -> StoreResult<Vec<OtlpDeadLetter>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, signal, items, length(body), attempts, reason, dead_at_unix_ms FROM otlp_dead_letters
         WHERE destination = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = statement.query_map(params![destination, limit as i64], |row| {
        let signal: String = row.get(1)?;
        Ok(OtlpDeadLetter {
            id: row.get(0)?,
            signal: stored_signal(&signal).map(|signal| signal.as_str()).unwrap_or("unknown"),
            items: row.get::<_, i64>(2)?.max(0) as u64,
            bytes: row.get::<_, i64>(3)?.max(0) as u64,
            attempts: row.get::<_, i64>(4)?.clamp(0, u32::MAX as i64) as u32,
            reason: row.get(5)?,
            dead_at_unix_ms: row.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Rows one expiry statement deletes at most, so ingest waits at most one short transaction.
const EXPIRY_CHUNK_ROWS: i64 = 5_000;

/// Removes dead letters that can no longer be replayed usefully: product-event dead letters
/// whose event is gone (deleted by retention or erasure: a replay could only fail again), and
/// OTLP dead letters parked before `otlp_cutoff_unix_ms` (the caller passes the longest
/// project retention). Returns how many rows went.
pub(super) fn expire_dead_letters(connection: &mut Connection, otlp_cutoff_unix_ms: i64) -> StoreResult<usize> {
    let statements = [
        "DELETE FROM dead_letters WHERE id IN (SELECT d.id FROM dead_letters d
            WHERE NOT EXISTS (SELECT 1 FROM product_events e WHERE e.id = d.event_rowid) LIMIT ?1)",
        "DELETE FROM otlp_dead_letters WHERE id IN (SELECT id FROM otlp_dead_letters
            WHERE dead_at_unix_ms < ?2 LIMIT ?1)",
    ];
    let mut total = 0;
    for sql in statements {
        loop {
            let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let deleted = if sql.contains("?2") {
                transaction.execute(sql, params![EXPIRY_CHUNK_ROWS, otlp_cutoff_unix_ms])?
            } else {
                transaction.execute(sql, params![EXPIRY_CHUNK_ROWS])?
            };
            transaction.commit()?;
            total += deleted;
            if deleted < EXPIRY_CHUNK_ROWS as usize {
                break;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use sightline_model::Batch;

    use crate::exporters::otlp::{OtlpPayload, OtlpSignal};
    use crate::store::otlp_outbox::OtlpForward;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Outcomes, SignalBatch, Store, WriteBatch};

    fn batch(project_id: i64, forward: Option<OtlpForward>) -> WriteBatch {
        WriteBatch {
            project_id,
            signal: SignalBatch::Traces(Batch::default()),
            trace_summaries: Vec::new(),
            endpoint_rollups: Vec::new(),
            query_rollups: Vec::new(),
            job_rollups: Vec::new(),
            call_halves: Vec::new(),
            paired_calls: Default::default(),
            outcomes: Outcomes::default(),
            errors: Vec::new(),
            derived_events: Vec::new(),
            sessions: Default::default(),
            serialized: Default::default(),
            otlp_forward: forward,
        }
    }

    fn forward(signal: OtlpSignal, body: &[u8], items: u64, destinations: &[&str]) -> Option<OtlpForward> {
        Some(OtlpForward {
            payload: OtlpPayload { signal, body: Bytes::copy_from_slice(body), items },
            destinations: destinations.iter().map(|name| Arc::<str>::from(*name)).collect(),
        })
    }

    #[test]
    fn rows_follow_the_commit_and_settle_per_destination() {
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&directory.path().join("sightline.db")).unwrap();
        let project = store.create_project("p").unwrap();
        store
            .commit(&[
                batch(project.id, forward(OtlpSignal::Traces, b"first", 3, &["a", "b"])),
                batch(project.id, None),
                batch(project.id, forward(OtlpSignal::Logs, b"second!", 2, &["a"])),
            ])
            .unwrap();
        let stats_a = store.otlp_outbox_stats("a").unwrap();
        assert_eq!((stats_a.queued_payloads, stats_a.queued_bytes, stats_a.queued_items), (2, 12, 5));
        assert!(stats_a.oldest_enqueued_unix_ms.is_some());
        assert_eq!(store.otlp_outbox_stats("b").unwrap().queued_payloads, 1);

        let claimed = store.otlp_outbox_claim("a", 10, 1 << 20).unwrap();
        let bodies: Vec<&[u8]> = claimed.iter().map(|row| row.payload.body.as_ref()).collect();
        assert_eq!(bodies, [&b"first"[..], &b"second!"[..]], "acceptance order");
        assert_eq!(claimed[1].payload.signal, OtlpSignal::Logs);
        assert_eq!(store.otlp_outbox_claim("a", 10, 6).unwrap().len(), 1, "byte limit (the first always)");
        assert_eq!(store.otlp_outbox_claim("a", 10, 1).unwrap().len(), 1);

        store.otlp_outbox_failed_attempt(&[claimed[1].id]).unwrap();
        store.otlp_outbox_delivered(&[claimed[0].id]).unwrap();
        store.otlp_outbox_dead_letter(&[claimed[1].id], "HTTP 400: bad").unwrap();
        let stats_a = store.otlp_outbox_stats("a").unwrap();
        assert_eq!((stats_a.queued_payloads, stats_a.dead_letters), (0, 1));
        assert_eq!(store.otlp_outbox_stats("b").unwrap().queued_payloads, 1, "b's copy is untouched");
        let dead = store.otlp_dead_letters("a", 10).unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].signal, dead[0].items, dead[0].bytes, dead[0].attempts), ("logs", 2, 7, 2));
        assert_eq!(dead[0].reason, "HTTP 400: bad");

        assert_eq!(store.otlp_outbox_replay("a").unwrap(), 1);
        let again = store.otlp_outbox_claim("a", 10, 1 << 20).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].payload.body.as_ref(), again[0].attempts), (&b"second!"[..], 0));
        assert_eq!(store.otlp_outbox_stats("a").unwrap().dead_letters, 0);
    }

    #[test]
    fn dead_letters_expire_when_their_event_is_gone_or_they_are_older_than_retention() {
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&directory.path().join("sightline.db")).unwrap();
        let project = store.create_project("p").unwrap();
        store.commit(&[batch(project.id, forward(OtlpSignal::Traces, b"t", 1, &["otlp"]))]).unwrap();
        let claimed = store.otlp_outbox_claim("otlp", 10, 1 << 20).unwrap();
        store.otlp_outbox_dead_letter(&[claimed[0].id], "HTTP 400").unwrap();
        let now_ms = (crate::clock::now_unix_nano() / 1_000_000) as i64;
        // Product-event dead letters: one whose event exists, one whose event is gone.
        store
            .with_writer(|writer| {
                let connection = writer.connection();
                connection.execute(
                    "INSERT INTO product_events (project_id, event_id, product_id, session_id, event_type, event_name,
                        timestamp_unix_nano, properties, metadata) VALUES (?1, 'e1', 'p', 's', 'custom', 'x', 1, '{}', '{}')",
                    [project.id],
                )?;
                let kept = connection.last_insert_rowid();
                for (rowid, event_id) in [(kept, "e1"), (kept + 1000, "gone")] {
                    connection.execute(
                        "INSERT INTO dead_letters (destination_id, event_rowid, event_id, reason, attempts, dead_at_unix_ms)
                         VALUES (1, ?1, ?2, 'HTTP 400', 1, 0)",
                        rusqlite::params![rowid, event_id],
                    )?;
                }
                Ok(())
            })
            .unwrap();
        // A cutoff before the OTLP letter was parked keeps it; the gone event's letter goes.
        let removed =
            store.with_writer(|writer| super::expire_dead_letters(writer.connection(), now_ms - 60_000)).unwrap();
        assert_eq!(removed, 1);
        let left: Vec<String> = store
            .with_writer(|writer| {
                let mut statement = writer.connection().prepare("SELECT event_id FROM dead_letters ORDER BY id")?;
                let ids = statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
                Ok(ids)
            })
            .unwrap();
        assert_eq!(left, ["e1"], "a letter whose event still exists stays replayable");
        assert_eq!(store.otlp_outbox_stats("otlp").unwrap().dead_letters, 1);
        // Past the longest retention the OTLP letter goes too.
        let removed =
            store.with_writer(|writer| super::expire_dead_letters(writer.connection(), now_ms + 60_000)).unwrap();
        assert_eq!(removed, 1);
        assert_eq!(store.otlp_outbox_stats("otlp").unwrap().dead_letters, 0);
    }
}
