//! Decoded rollup rows the writer wrote last (endpoint, database query and job rollups), so a
//! commit that adds to a row it wrote before merges into the row in memory and writes it, instead
//! of reading the stored row and decoding its sketches first. Live traffic sends most of a
//! minute's spans to the same few rows, commit after commit.
//!
//! The cache is the writer's own and only holds what the last commits made the rows: it is
//! cleared when a commit fails (its in-memory merges were rolled back in the database) and
//! whenever the writer's connection is lent out for anything else (coarsening, retention and
//! settings changes run there and may rewrite or delete rows).

use std::collections::HashMap;
use std::hash::Hash;

use crate::store::StoreResult;
use crate::store::job_rollups::JobRollup;
use crate::store::query_rollups::QueryRollup;
use crate::store::rollups::{EndpointRollup, RollupError};

/// Rows remembered per rollup table; a new row beyond it starts the memory over (a backfill of
/// old minutes writes rows once each, live traffic needs only the current minutes' rows).
pub(super) const ROWS_PER_TABLE: usize = 2_048;

/// Row key → the row as it is stored now.
pub(super) struct RowCache<K, V> {
    rows: HashMap<K, V>,
}

impl<K: Eq + Hash, V> Default for RowCache<K, V> {
    fn default() -> Self {
        Self { rows: HashMap::new() }
    }
}

impl<K: Eq + Hash, V> RowCache<K, V> {
    /// The stored row of `key`, when this cache knows it.
    pub(super) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.rows.get_mut(key)
    }

    /// Remembers `row` as the stored row of `key`.
    pub(super) fn insert(&mut self, key: K, row: V) {
        if self.rows.len() >= ROWS_PER_TABLE && !self.rows.contains_key(&key) {
            self.rows.clear();
        }
        self.rows.insert(key, row);
    }

    /// Forgets every row.
    pub(super) fn clear(&mut self) {
        self.rows.clear();
    }

    /// Rows remembered now.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }
}

/// A rollup row that adds another row of the same key (counts, sketches, slowest lists).
pub(super) trait RollupRow: Clone {
    /// Adds `other`; errors for sketches that cannot merge.
    fn add(&mut self, other: &Self) -> Result<(), RollupError>;
}

impl RollupRow for EndpointRollup {
    fn add(&mut self, other: &Self) -> Result<(), RollupError> {
        self.merge(other)
    }
}

impl RollupRow for QueryRollup {
    fn add(&mut self, other: &Self) -> Result<(), RollupError> {
        self.merge(other)
    }
}

impl RollupRow for JobRollup {
    fn add(&mut self, other: &Self) -> Result<(), RollupError> {
        self.merge(other)
    }
}

/// Sums a commit's `deltas` per row key, then adds each sum to its stored row: in memory and
/// written back with `write` when `cache` holds the row, else through `merge_into_stored`, which
/// returns the row as stored now (remembered for the next commit). Call inside the commit's
/// transaction; the caller clears `cache` when the commit fails.
pub(super) fn merge_commit<'a, K: Eq + Hash, V: RollupRow + 'a>(
    deltas: impl IntoIterator<Item = (K, &'a V)>,
    cache: &mut RowCache<K, V>,
    mut write: impl FnMut(&K, &V) -> StoreResult<()>,
    mut merge_into_stored: impl FnMut(&K, V) -> StoreResult<V>,
) -> StoreResult<()> {
    let mut merged: HashMap<K, V> = HashMap::new();
    for (key, delta) in deltas {
        match merged.get_mut(&key) {
            Some(sum) => sum.add(delta).map_err(super::rollups::database_error)?,
            None => {
                merged.insert(key, delta.clone());
            }
        }
    }
    for (key, sum) in merged {
        if let Some(stored) = cache.get_mut(&key) {
            stored.add(&sum).map_err(super::rollups::database_error)?;
            write(&key, stored)?;
            continue;
        }
        let stored = merge_into_stored(&key, sum)?;
        cache.insert(key, stored);
    }
    Ok(())
}
