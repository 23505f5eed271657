//! Building a SQL `WHERE` clause and its parameters clause by clause, for the list queries.

use rusqlite::types::Value as SqlValue;

/// SQL conditions joined with `AND`, and their parameters. Each `{}` in a clause becomes the
/// next numbered parameter (`?1`, `?2`, ...), so clauses never splice user values into SQL.
#[derive(Default)]
pub(super) struct Filter {
    clauses: Vec<String>,
    /// The parameters, in placeholder order.
    pub(super) values: Vec<SqlValue>,
}

impl Filter {
    /// Adds a condition; its `{}` placeholders take `values` in order.
    pub(super) fn push(&mut self, clause: &str, values: impl IntoIterator<Item = SqlValue>) {
        let mut text = clause.to_owned();
        for value in values {
            self.values.push(value);
            text = text.replacen("{}", &format!("?{}", self.values.len()), 1);
        }
        self.clauses.push(text);
    }

    /// `WHERE a AND b ...`, or nothing without conditions.
    pub(super) fn where_sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!("WHERE {}", self.clauses.join(" AND ")) }
    }
}

/// A time in ns as an SQL integer (saturating at `i64::MAX`).
pub(super) fn nanos(value: u64) -> SqlValue {
    SqlValue::Integer(value.min(i64::MAX as u64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_across_clauses() {
        let mut filter = Filter::default();
        filter.push("a = {}", [SqlValue::Integer(1)]);
        filter.push("(b < {} OR c = {})", [SqlValue::Integer(2), SqlValue::Text("x".into())]);
        assert_eq!(filter.where_sql(), "WHERE a = ?1 AND (b < ?2 OR c = ?3)");
        assert_eq!(filter.values.len(), 3);
        assert_eq!(Filter::default().where_sql(), "");
    }
}
