//! Types of API key administration crossing the [`super::Store`] boundary: a key as the
//! dashboard's key list shows it (never the key itself, nor its hash).

use crate::auth::KeyScope;

/// A live (unrevoked) key of a project, for listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyListing {
    /// Numeric id.
    pub id: i64,
    /// Free-form name given at creation (`sightline project key create --name`).
    pub name: String,
    /// What the key may do.
    pub scope: KeyScope,
    /// Display prefix (`sl_ingest_AbCd`), enough to recognise a key, not to use it.
    pub prefix: String,
    /// Creation time, ms since the epoch.
    pub created_at_unix_ms: i64,
    /// Slugs of the other projects this key may read (`sightline project grant`), by slug.
    pub read_grants: Vec<String>,
}
