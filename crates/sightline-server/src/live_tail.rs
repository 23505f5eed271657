//! Live tail of logs: the writer publishes each project's newly committed log records here right
//! after COMMIT, and the Server-Sent Events endpoints (`api/logs_tail.rs`, `ui/logs.rs`) read
//! them, filtered like a log search.
//!
//! There is one `tokio::sync::broadcast` channel per project that has subscribers, made at the
//! first subscription and dropped with the last, so the writer copies records only for
//! projects someone is watching and does nothing more than a map lookup otherwise. A broadcast
//! channel is a fixed ring of [`TAIL_BUFFER_LOGS`] messages: a subscriber that falls behind
//! loses the oldest records and is told how many (`RecvError::Lagged`), so a slow reader never
//! blocks ingest nor grows memory. Concurrent subscriptions are bounded by a semaphore
//! ([`LogTail::new`]); beyond it [`LogTail::subscribe`] refuses and the endpoints answer 503 with
//! `Retry-After`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sightline_model::{Batch, LogRecord};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

use crate::store::StoredLog;

/// Records each project's channel holds for its slowest subscriber before that subscriber lags.
pub const TAIL_BUFFER_LOGS: usize = 1024;

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TailError {
    /// Every tail connection allowed is in use (503 with `Retry-After`).
    #[error("too many live tail connections are open; retry later")]
    Busy,
    /// The server is shutting down (503).
    #[error("the server is shutting down")]
    Closed,
}

/// The per-project broadcast channels and the connection limit; owned by the app state and
/// shared with the writer thread.
pub struct LogTail {
    channels: Mutex<HashMap<i64, broadcast::Sender<Arc<StoredLog>>>>,
    connections: Arc<Semaphore>,
    max_connections: usize,
    closed: AtomicBool,
}

impl std::fmt::Debug for LogTail {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LogTail")
            .field("max_connections", &self.max_connections)
            .field("open_connections", &self.open_connections())
            .finish()
    }
}

/// One open live tail: receives every record committed for its project after it was made.
/// Holds one connection slot until dropped.
pub struct TailSubscription {
    /// The project's records, as committed (filter them yourself).
    pub receiver: broadcast::Receiver<Arc<StoredLog>>,
    project_id: i64,
    tail: Arc<LogTail>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for TailSubscription {
    fn drop(&mut self) {
        // Our receiver still counts here; the last one leaving drops the project's channel.
        self.tail.forget_channel_if_unwatched(self.project_id, 1);
    }
}

impl LogTail {
    /// A tail allowing `max_connections` subscriptions at once.
    pub fn new(max_connections: usize) -> Arc<Self> {
        Arc::new(Self {
            channels: Mutex::new(HashMap::new()),
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            closed: AtomicBool::new(false),
        })
    }

    /// Subscriptions open now.
    pub fn open_connections(&self) -> usize {
        self.max_connections - self.connections.available_permits()
    }

    /// Subscribes to `project_id`'s records committed from now on. Errors: [`TailError::Busy`]
    /// at the connection limit, [`TailError::Closed`] after [`LogTail::close`].
    pub fn subscribe(self: &Arc<Self>, project_id: i64) -> Result<TailSubscription, TailError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TailError::Closed);
        }
        let permit = self.connections.clone().try_acquire_owned().map_err(|_| TailError::Busy)?;
        let mut channels = self.channels.lock().map_err(|_| TailError::Closed)?;
        let receiver = channels.entry(project_id).or_insert_with(|| broadcast::channel(TAIL_BUFFER_LOGS).0).subscribe();
        Ok(TailSubscription { receiver, project_id, tail: self.clone(), _permit: permit })
    }

    /// Publishes a committed logs batch of `project_id`. Call only after COMMIT succeeded.
    /// Never blocks: records go into the ring, overwriting what the slowest subscriber has not
    /// read yet.
    pub fn publish(&self, project_id: i64, batch: &Batch<LogRecord>) {
        let Some(sender) = self.channels.lock().ok().and_then(|channels| channels.get(&project_id).cloned()) else {
            return;
        };
        for resource_group in batch {
            for scope_group in &resource_group.scopes {
                for record in &scope_group.items {
                    let log = StoredLog {
                        record: record.clone(),
                        resource: resource_group.resource.clone(),
                        scope: scope_group.scope.clone(),
                    };
                    if sender.send(Arc::new(log)).is_err() {
                        // Every subscriber left meanwhile.
                        self.forget_channel_if_unwatched(project_id, 0);
                        return;
                    }
                }
            }
        }
    }

    /// Ends every subscription (their receivers see `Closed`) and refuses new ones, so that
    /// open event streams end and a graceful shutdown does not wait on them forever.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut channels) = self.channels.lock() {
            channels.clear();
        }
    }

    /// Drops `project_id`'s channel when it has at most `leaving` receivers (those about to go).
    fn forget_channel_if_unwatched(&self, project_id: i64, leaving: usize) {
        if let Ok(mut channels) = self.channels.lock()
            && channels.get(&project_id).is_some_and(|sender| sender.receiver_count() <= leaving)
        {
            channels.remove(&project_id);
        }
    }

    /// Projects with a channel now (for tests).
    #[cfg(test)]
    fn watched_projects(&self) -> usize {
        self.channels.lock().map(|channels| channels.len()).unwrap_or(0)
    }
}

/// A log record with every field empty, for tests to fill in.
#[cfg(test)]
pub(crate) fn blank_log_record() -> LogRecord {
    LogRecord {
        time_unix_nano: 0,
        observed_time_unix_nano: 0,
        severity_number: 0,
        severity_text: String::new(),
        body: serde_json::Value::Null,
        attributes: sightline_model::Attributes::default(),
        dropped_attributes_count: 0,
        flags: 0,
        trace_id: None,
        span_id: None,
        event_name: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::{Resource, ResourceGroup, Scope, ScopeGroup};
    use tokio::sync::broadcast::error::TryRecvError;

    fn batch(bodies: &[&str]) -> Batch<LogRecord> {
        vec![ResourceGroup {
            resource: Resource::default(),
            scopes: vec![ScopeGroup {
                scope: Scope::default(),
                items: bodies
                    .iter()
                    .map(|body| LogRecord { body: serde_json::json!(body), ..blank_log_record() })
                    .collect(),
            }],
        }]
    }

    #[test]
    fn subscribers_get_their_projects_records_only() {
        let tail = LogTail::new(4);
        let mut first = tail.subscribe(1).expect("a slot");
        let mut other = tail.subscribe(2).expect("a slot");
        tail.publish(1, &batch(&["a", "b"]));
        tail.publish(3, &batch(&["nobody watches"]));
        let bodies: Vec<String> =
            (0..2).map(|_| first.receiver.try_recv().expect("a record").record.body.to_string()).collect();
        assert_eq!(bodies, ["\"a\"", "\"b\""]);
        assert_eq!(other.receiver.try_recv().err(), Some(TryRecvError::Empty));
        assert_eq!(tail.watched_projects(), 2, "no channel is made for a project nobody watches");
        drop(first);
        drop(other);
        assert_eq!(tail.watched_projects(), 0, "the last subscriber leaving drops the channel");
        assert_eq!(tail.open_connections(), 0);
    }

    #[test]
    fn a_slow_subscriber_lags_by_what_it_missed_without_blocking_the_writer() {
        let tail = LogTail::new(1);
        let mut slow = tail.subscribe(1).expect("a slot");
        let bodies: Vec<String> = (0..TAIL_BUFFER_LOGS + 5).map(|index| format!("log {index}")).collect();
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        tail.publish(1, &batch(&refs));
        assert_eq!(slow.receiver.try_recv().err(), Some(TryRecvError::Lagged(5)));
        let next = slow.receiver.try_recv().expect("the oldest kept record");
        assert_eq!(next.record.body, serde_json::json!("log 5"));
    }

    #[test]
    fn connections_are_bounded_and_close_ends_subscriptions() {
        let tail = LogTail::new(2);
        let _first = tail.subscribe(1).expect("a slot");
        let mut second = tail.subscribe(1).expect("a slot");
        assert_eq!(tail.subscribe(1).err(), Some(TailError::Busy));
        drop(_first);
        let _third = tail.subscribe(1).expect("a slot freed by the dropped subscription");
        tail.close();
        assert_eq!(second.receiver.try_recv().err(), Some(TryRecvError::Closed));
        assert_eq!(tail.subscribe(1).err(), Some(TailError::Closed));
    }
}
