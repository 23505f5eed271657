//! Grouping error events into issues at commit, with Sentry's issue lifecycle: new issues,
//! counters (events, users, sessions), tag breakdowns, hourly occurrences, regression of
//! resolved issues (unless the event's release is older than the resolving one, and never within
//! 5 s of the resolution) and expiry of "ignore until" conditions. Also status changes from the
//! API.

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use rusqlite::{OptionalExtension, Transaction, params};

use crate::store::errors::{ErrorEvent, IssueStatus, Level, StatusChange, StoredErrorBody};
use crate::store::{StoreError, StoreResult};

/// Sentry's guard against the resolve/ingest race: an event committed within this time after a
/// resolution was probably sent before it and does not regress the issue.
const REGRESSION_GUARD_NANOS: u64 = 5_000_000_000;
/// Sentry moves a new issue to "ongoing" after seven days.
const NEW_ISSUE_NANOS: u64 = 7 * 86_400 * 1_000_000_000;

/// Stacks known to be in `error_stacks`: (issue id, stack hash).
pub(super) type StackKeys = HashSet<(i64, [u8; 16])>;

/// The part of an issue row the lifecycle needs.
struct IssueState {
    status: IssueStatus,
    substatus: Option<String>,
    level: Level,
    first_seen_unix_nano: u64,
    event_count: u64,
    last_release: Option<String>,
    resolved_in_release: Option<String>,
    resolved_at_unix_nano: Option<u64>,
    ignore_until_event_count: Option<u64>,
    ignore_until_unix_nano: Option<u64>,
}

fn load_state(transaction: &Transaction<'_>, issue_id: i64) -> StoreResult<IssueState> {
    let state = transaction
        .prepare_cached(
            "SELECT status, substatus, level, first_seen_unix_nano, event_count, last_release, resolved_in_release,
                    resolved_at_unix_nano, ignore_until_event_count, ignore_until_unix_nano
             FROM issues WHERE id = ?1",
        )?
        .query_row([issue_id], |row| {
            Ok(IssueState {
                status: IssueStatus::parse(&row.get::<_, String>(0)?).unwrap_or(IssueStatus::Unresolved),
                substatus: row.get(1)?,
                level: Level::parse(&row.get::<_, String>(2)?).unwrap_or(Level::Error),
                first_seen_unix_nano: row.get::<_, i64>(3)? as u64,
                event_count: row.get::<_, i64>(4)? as u64,
                last_release: row.get(5)?,
                resolved_in_release: row.get(6)?,
                resolved_at_unix_nano: row.get::<_, Option<i64>>(7)?.map(|value| value as u64),
                ignore_until_event_count: row.get::<_, Option<i64>>(8)?.map(|value| value as u64),
                ignore_until_unix_nano: row.get::<_, Option<i64>>(9)?.map(|value| value as u64),
            })
        })
        .optional()?;
    state.ok_or_else(|| StoreError::NotFound(format!("issue {issue_id}")))
}

fn add_history(
    transaction: &Transaction<'_>,
    issue_id: i64,
    status: IssueStatus,
    substatus: Option<&str>,
    reason: &str,
    actor: &str,
    release: Option<&str>,
    at_unix_nano: u64,
) -> StoreResult<()> {
    transaction
        .prepare_cached(
            "INSERT INTO issue_status_history (issue_id, status, substatus, reason, actor, release, at_unix_nano)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![issue_id, status.as_str(), substatus, reason, actor, release, at_unix_nano as i64])?;
    Ok(())
}

/// `package@1.2.3` → `1.2.3`; `v1.2` → `1.2.0`.
fn parse_version(release: &str) -> Option<semver::Version> {
    let version = release.rsplit_once('@').map_or(release, |(_, version)| version);
    let version = version.strip_prefix('v').unwrap_or(version);
    if let Ok(parsed) = semver::Version::parse(version) {
        return Some(parsed);
    }
    let dots = version.matches('.').count();
    let padded = match dots {
        0 => format!("{version}.0.0"),
        1 => format!("{version}.0"),
        _ => return None,
    };
    semver::Version::parse(&padded).ok()
}

/// Orders two releases: by semantic version when both parse, else by when each was first
/// seen in the project. `None` when nothing says.
fn compare_releases(
    transaction: &Transaction<'_>,
    project_id: i64,
    left: &str,
    right: &str,
) -> StoreResult<Option<Ordering>> {
    if left == right {
        return Ok(Some(Ordering::Equal));
    }
    if let (Some(left_version), Some(right_version)) = (parse_version(left), parse_version(right)) {
        return Ok(Some(left_version.cmp(&right_version)));
    }
    let mut statement = transaction
        .prepare_cached("SELECT first_seen_unix_nano FROM releases WHERE project_id = ?1 AND version = ?2")?;
    let left_seen: Option<i64> = statement.query_row(params![project_id, left], |row| row.get(0)).optional()?;
    let right_seen: Option<i64> = statement.query_row(params![project_id, right], |row| row.get(0)).optional()?;
    Ok(match (left_seen, right_seen) {
        (Some(left_seen), Some(right_seen)) => Some(left_seen.cmp(&right_seen)),
        _ => None,
    })
}

/// One issue's changes over a commit, applied with one `UPDATE` (plus one upsert per distinct
/// tag value and hour) when the commit's events are all grouped. Hot issues receive hundreds of
/// events per commit; writing the issue row, its four indexes, its tags and hours once per
/// commit instead of once per event is what keeps grouping off the writer's critical path.
struct PendingIssue {
    /// The lifecycle state as it evolves event by event (event count included).
    state: IssueState,
    /// Title, culprit, exception type and platform of the latest event grouped.
    title: String,
    culprit: Option<String>,
    exception_type: String,
    platform: sightline_grouping::Platform,
    last_release: Option<String>,
    first_seen_unix_nano: i64,
    last_seen_unix_nano: i64,
    /// Users and sessions of this commit's events, inserted at [`ErrorGrouper::finish`].
    users: HashSet<String>,
    sessions: HashSet<String>,
    /// Tag key → value → events; looked up by `&str`, so a value already seen allocates nothing.
    tags: HashMap<String, HashMap<String, i64>>,
    hourly: HashMap<i64, i64>,
}

/// Groups the error events of one commit into issues (Sentry's lifecycle, see the module docs).
/// Events are processed one by one in commit order, so regression, "ignore until" and
/// first/last seen behave exactly as if each event were committed alone; only the writes are
/// aggregated. Call [`ErrorGrouper::add`] for every event, then [`ErrorGrouper::finish`] once,
/// inside the same transaction.
pub(super) struct ErrorGrouper<'t> {
    now_unix_nano: u64,
    /// The statements every event runs.
    statements: EventStatements<'t>,
    /// Grouping hash → issue, for hashes looked up or created in this commit.
    /// Project → grouping hash → issue; looked up by `&str`.
    issue_by_hash: HashMap<i64, HashMap<String, i64>>,
    /// Releases already recorded in this commit.
    releases: HashSet<(i64, String)>,
    pending: HashMap<i64, PendingIssue>,
    /// Stacks this commit inserted into `error_stacks` (or found there).
    new_stacks: StackKeys,
}

/// The statements run per event or per user and session, held for the whole commit: looking each
/// up in rusqlite's statement cache (hashing its SQL text, twice per use) cost ≈ 5 % of the
/// writer's samples in `sightline bench errors`.
struct EventStatements<'t> {
    issue_user: rusqlite::CachedStatement<'t>,
    issue_session: rusqlite::CachedStatement<'t>,
    event: rusqlite::CachedStatement<'t>,
}

impl<'t> EventStatements<'t> {
    fn prepare(transaction: &'t Transaction<'_>) -> StoreResult<Self> {
        Ok(Self {
            issue_user: transaction
                .prepare_cached("INSERT OR IGNORE INTO issue_users (issue_id, value) VALUES (?1, ?2)")?,
            issue_session: transaction
                .prepare_cached("INSERT OR IGNORE INTO issue_sessions (issue_id, value) VALUES (?1, ?2)")?,
            event: transaction.prepare_cached(
                "INSERT INTO error_events (project_id, issue_id, event_id, timestamp_unix_nano, level, service_name, body,
                    stack_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?,
        })
    }
}

impl<'t> ErrorGrouper<'t> {
    /// A grouper for a commit at `now_unix_nano` (the regression guard compares it with the
    /// resolution time) in `transaction`. Errors when its statements cannot be prepared.
    pub(super) fn new(transaction: &'t Transaction<'_>, now_unix_nano: u64) -> StoreResult<Self> {
        Ok(Self {
            now_unix_nano,
            statements: EventStatements::prepare(transaction)?,
            issue_by_hash: HashMap::new(),
            releases: HashSet::new(),
            pending: HashMap::new(),
            new_stacks: StackKeys::new(),
        })
    }

    /// Groups one event of `project_id`: finds or creates its issue, advances the issue's
    /// lifecycle and stores the event with `stored` as its stored form
    /// ([`ErrorEvent::to_stored_parts`], made here when `None`), its stack into `error_stacks`
    /// unless `known_stacks` (the writer's cache of committed stacks) or this commit has it.
    /// Returns the stored event's row id (session timelines point at it).
    pub(super) fn add(
        &mut self,
        transaction: &Transaction<'_>,
        project_id: i64,
        event: &ErrorEvent,
        stored: Option<&StoredErrorBody>,
        known_stacks: &StackKeys,
    ) -> StoreResult<i64> {
        let now_unix_nano = self.now_unix_nano;
        let timestamp = event.timestamp_unix_nano.min(i64::MAX as u64) as i64;
        if let Some(release) = &event.context.release
            && self.releases.insert((project_id, release.clone()))
        {
            transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO releases (project_id, version, first_seen_unix_nano) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![project_id, release, now_unix_nano as i64])?;
        }
        let issue_id = self.issue_for(transaction, project_id, event, timestamp)?;
        let statements = &mut self.statements;
        let pending = match self.pending.entry(issue_id) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let state = load_state(transaction, issue_id)?;
                entry.insert(PendingIssue {
                    title: String::new(),
                    culprit: None,
                    exception_type: String::new(),
                    platform: event.platform,
                    last_release: state.last_release.clone(),
                    first_seen_unix_nano: timestamp,
                    last_seen_unix_nano: timestamp,
                    state,
                    users: HashSet::new(),
                    sessions: HashSet::new(),
                    tags: HashMap::new(),
                    hourly: HashMap::new(),
                })
            }
        };
        advance_lifecycle(transaction, project_id, issue_id, &mut pending.state, event, now_unix_nano)?;
        pending.title.clone_from(&event.title);
        if event.culprit.is_some() {
            pending.culprit.clone_from(&event.culprit);
        }
        pending.exception_type.clone_from(&event.exception_type);
        pending.platform = event.platform;
        if event.context.release.is_some() {
            pending.last_release.clone_from(&event.context.release);
        }
        pending.first_seen_unix_nano = pending.first_seen_unix_nano.min(timestamp);
        pending.last_seen_unix_nano = pending.last_seen_unix_nano.max(timestamp);
        // Inserted into `issue_users` / `issue_sessions` at `finish`, in key order.
        if let Some(user) = &event.context.user_id
            && !pending.users.contains(user)
        {
            pending.users.insert(user.clone());
        }
        if let Some(session) = &event.context.session_id
            && !pending.sessions.contains(session)
        {
            pending.sessions.insert(session.clone());
        }
        for (key, value) in &event.tags {
            let values = match pending.tags.get_mut(key.as_str()) {
                Some(values) => values,
                None => pending.tags.entry(key.clone()).or_default(),
            };
            match values.get_mut(value.as_str()) {
                Some(count) => *count += 1,
                None => {
                    values.insert(value.clone(), 1);
                }
            }
        }
        let hour = timestamp - timestamp.rem_euclid(3_600_000_000_000);
        *pending.hourly.entry(hour).or_default() += 1;

        let made_here;
        let stored = match stored {
            Some(stored) => stored,
            None => {
                made_here = event.to_stored_parts().map_err(StoreError::Database)?;
                &made_here
            }
        };
        if let Some(hash) = stored.stack_hash
            && !known_stacks.contains(&(issue_id, hash))
            && self.new_stacks.insert((issue_id, hash))
        {
            // The stack's body is made only here, for a stack not seen before under this issue.
            let stack = event.stack_body().map_err(StoreError::Database)?;
            transaction
                .prepare_cached("INSERT OR IGNORE INTO error_stacks (issue_id, hash, body) VALUES (?1, ?2, ?3)")?
                .execute(params![issue_id, hash.as_slice(), stack])?;
        }
        statements.event.execute(params![
            project_id,
            issue_id,
            event.event_id,
            timestamp,
            event.level.as_str(),
            event.context.service,
            stored.body,
            stored.stack_hash.as_ref().map(<[u8; 16]>::as_slice),
        ])?;
        Ok(transaction.last_insert_rowid())
    }

    /// The issue an event joins: the first of its hashes already known (Sentry: an event joins
    /// a group when any of its variant hashes matches, so reclassified frames don't split
    /// groups), else a new issue under its primary hash. Every hash of the event then points
    /// at the issue.
    fn issue_for(
        &mut self,
        transaction: &Transaction<'_>,
        project_id: i64,
        event: &ErrorEvent,
        timestamp: i64,
    ) -> StoreResult<i64> {
        let mut found = None;
        let mut unknown_hashes = Vec::new();
        let known = self.issue_by_hash.entry(project_id).or_default();
        for hash in &event.fingerprint.hashes {
            if let Some(issue_id) = known.get(hash.as_str()) {
                found.get_or_insert(*issue_id);
                continue;
            }
            let stored: Option<i64> = transaction
                .prepare_cached("SELECT issue_id FROM issue_hashes WHERE project_id = ?1 AND hash = ?2")?
                .query_row(params![project_id, hash], |row| row.get(0))
                .optional()?;
            match stored {
                Some(issue_id) => {
                    known.insert(hash.clone(), issue_id);
                    found.get_or_insert(issue_id);
                }
                None => unknown_hashes.push(hash),
            }
        }
        let issue_id = match found {
            Some(issue_id) => issue_id,
            None => transaction
                .prepare_cached(
                    "INSERT INTO issues (project_id, primary_hash, title, culprit, exception_type, level, platform, status, substatus,
                        first_seen_unix_nano, last_seen_unix_nano, event_count, user_count, session_count, last_release)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'unresolved', 'new', ?8, ?8, 0, 0, 0, ?9) RETURNING id",
                )?
                .query_row(
                    params![
                        project_id,
                        event.fingerprint.primary_hash,
                        event.title,
                        event.culprit,
                        event.exception_type,
                        event.level.as_str(),
                        platform_name(event.platform),
                        timestamp,
                        event.context.release,
                    ],
                    |row| row.get(0),
                )?,
        };
        if !unknown_hashes.is_empty() {
            let mut statement = transaction.prepare_cached(
                "INSERT OR IGNORE INTO issue_hashes (project_id, hash, issue_id) VALUES (?1, ?2, ?3)",
            )?;
            for hash in unknown_hashes {
                statement.execute(params![project_id, hash, issue_id])?;
                known.insert(hash.clone(), issue_id);
            }
        }
        Ok(issue_id)
    }

    /// Writes every touched issue's aggregated changes: one `UPDATE` per issue, one upsert per
    /// distinct tag value and per hour.
    /// Writes the commit's issue changes; returns the stacks the commit stored, for the writer's
    /// cache once the transaction commits.
    pub(super) fn finish(mut self, transaction: &Transaction<'_>) -> StoreResult<StackKeys> {
        let new_stacks = std::mem::take(&mut self.new_stacks);
        // Title and culprit are set for all issues at once below.
        let mut update = transaction.prepare_cached(
            "UPDATE issues SET
                exception_type = ?2, level = ?3, platform = ?4,
                status = ?5, substatus = ?6, first_seen_unix_nano = min(first_seen_unix_nano, ?7),
                last_seen_unix_nano = max(last_seen_unix_nano, ?8), event_count = ?9,
                user_count = user_count + ?10, session_count = session_count + ?11,
                last_release = ?12, resolved_in_release = ?13, resolved_at_unix_nano = ?14,
                ignore_until_event_count = ?15, ignore_until_unix_nano = ?16
             WHERE id = ?1",
        )?;
        let mut tag = transaction.prepare_cached(
            "INSERT INTO issue_tags (issue_id, key, value, count) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (issue_id, key, value) DO UPDATE SET count = count + excluded.count",
        )?;
        let mut hourly = transaction.prepare_cached(
            "INSERT INTO issue_hourly (issue_id, hour_unix_nano, count) VALUES (?1, ?2, ?3)
             ON CONFLICT (issue_id, hour_unix_nano) DO UPDATE SET count = count + excluded.count",
        )?;
        // Issues in id order, and each issue's users and sessions sorted: the inserts walk
        // `issue_users` and `issue_sessions` in primary-key order instead of at random.
        let mut issues: Vec<(i64, PendingIssue)> = std::mem::take(&mut self.pending).into_iter().collect();
        issues.sort_unstable_by_key(|(issue_id, _)| *issue_id);
        let mut titles = Vec::with_capacity(issues.len());
        for (issue_id, pending) in issues {
            let new_users = insert_sorted(&mut self.statements.issue_user, issue_id, &pending.users)?;
            let new_sessions = insert_sorted(&mut self.statements.issue_session, issue_id, &pending.sessions)?;
            titles.push(serde_json::json!([issue_id, pending.title, pending.culprit]));
            let state = &pending.state;
            update.execute(params![
                issue_id,
                pending.exception_type,
                state.level.as_str(),
                platform_name(pending.platform),
                state.status.as_str(),
                state.substatus,
                pending.first_seen_unix_nano,
                pending.last_seen_unix_nano,
                state.event_count as i64,
                new_users,
                new_sessions,
                pending.last_release,
                state.resolved_in_release,
                state.resolved_at_unix_nano.map(|value| value as i64),
                state.ignore_until_event_count.map(|value| value as i64),
                state.ignore_until_unix_nano.map(|value| value as i64),
            ])?;
            for (key, values) in &pending.tags {
                for (value, count) in values {
                    tag.execute(params![issue_id, key, value, count])?;
                }
            }
            for (hour, count) in &pending.hourly {
                hourly.execute(params![issue_id, hour, count])?;
            }
        }
        if !titles.is_empty() {
            // One statement for every issue: the search index's trigger (migration 8) reindexes
            // the issues whose title or culprit changed, and FTS5 writes its pending terms to
            // disk whenever a later statement opens a savepoint. One `UPDATE` per issue flushed
            // the index once per issue, ≈ 10 % of the writer's time in `bench errors`.
            transaction
                .prepare_cached(
                    "UPDATE issues SET title = value ->> 1, culprit = coalesce(value ->> 2, culprit)
                     FROM json_each(?1) WHERE issues.id = value ->> 0",
                )?
                .execute([serde_json::Value::Array(titles).to_string()])?;
        }
        Ok(new_stacks)
    }
}

/// Runs `statement` (an `INSERT OR IGNORE` of `(issue_id, value)`) for each of `values` in
/// sorted order; returns how many rows it inserted.
fn insert_sorted(
    statement: &mut rusqlite::CachedStatement<'_>,
    issue_id: i64,
    values: &HashSet<String>,
) -> StoreResult<i64> {
    let mut sorted: Vec<&String> = values.iter().collect();
    sorted.sort_unstable();
    let mut inserted = 0;
    for value in sorted {
        inserted += statement.execute(params![issue_id, value])? as i64;
    }
    Ok(inserted)
}

/// Advances an issue's lifecycle by one event: counts it, regresses a resolved issue (unless the
/// event's release is older than the resolving one, or the resolution is under 5 s old), ends an
/// expired "ignore until", moves "new" to "ongoing" after seven days, and keeps the highest level.
/// Status changes are written to the history at once.
fn advance_lifecycle(
    transaction: &Transaction<'_>,
    project_id: i64,
    issue_id: i64,
    state: &mut IssueState,
    event: &ErrorEvent,
    now_unix_nano: u64,
) -> StoreResult<()> {
    state.event_count += 1;
    match state.status {
        IssueStatus::Resolved | IssueStatus::ResolvedInRelease => {
            let within_guard = state
                .resolved_at_unix_nano
                .is_some_and(|resolved| now_unix_nano < resolved.saturating_add(REGRESSION_GUARD_NANOS));
            let from_older_release = match (&event.context.release, &state.resolved_in_release) {
                (Some(event_release), Some(resolving)) => {
                    compare_releases(transaction, project_id, event_release, resolving)? == Some(Ordering::Less)
                }
                _ => false,
            };
            if !within_guard && !from_older_release {
                state.status = IssueStatus::Unresolved;
                state.substatus = Some("regressed".into());
                state.resolved_in_release = None;
                state.resolved_at_unix_nano = None;
                add_history(
                    transaction,
                    issue_id,
                    state.status,
                    Some("regressed"),
                    "regression",
                    "system",
                    event.context.release.as_deref(),
                    now_unix_nano,
                )?;
            }
        }
        IssueStatus::Ignored => {
            let count_reached = state.ignore_until_event_count.is_some_and(|limit| state.event_count >= limit);
            let time_passed = state.ignore_until_unix_nano.is_some_and(|until| now_unix_nano >= until);
            if count_reached || time_passed {
                state.status = IssueStatus::Unresolved;
                state.substatus = Some("escalating".into());
                state.ignore_until_event_count = None;
                state.ignore_until_unix_nano = None;
                add_history(
                    transaction,
                    issue_id,
                    state.status,
                    Some("escalating"),
                    "ignore_expired",
                    "system",
                    None,
                    now_unix_nano,
                )?;
            }
        }
        IssueStatus::Unresolved => {
            if state.substatus.as_deref() == Some("new")
                && now_unix_nano.saturating_sub(state.first_seen_unix_nano) > NEW_ISSUE_NANOS
            {
                state.substatus = Some("ongoing".into());
            }
        }
    }
    state.level = state.level.max(event.level);
    Ok(())
}

fn platform_name(platform: sightline_grouping::Platform) -> String {
    serde_json::to_value(platform).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Applies an API status change to issues of the project. Errors with `NotFound` when an id
/// is not an issue of the project, `Conflict` for `resolved_in_release` without any release.
pub(super) fn change_status(
    transaction: &Transaction<'_>,
    project_id: i64,
    issue_ids: &[i64],
    change: &StatusChange,
    now_unix_nano: u64,
) -> StoreResult<()> {
    for issue_id in issue_ids {
        let owner: Option<i64> = transaction
            .prepare_cached("SELECT project_id FROM issues WHERE id = ?1")?
            .query_row([issue_id], |row| row.get(0))
            .optional()?;
        if owner != Some(project_id) {
            return Err(StoreError::NotFound(format!("issue {issue_id}")));
        }
        let state = load_state(transaction, *issue_id)?;
        let (substatus, resolved_in_release, resolved_at, ignore_count, ignore_time): (
            Option<&str>,
            Option<String>,
            Option<u64>,
            Option<u64>,
            Option<u64>,
        ) = match change.status {
            IssueStatus::Unresolved => (Some("ongoing"), None, None, None, None),
            // Plain resolution remembers the latest release, so events from older releases
            // (still deployed somewhere) do not regress it.
            IssueStatus::Resolved => (None, state.last_release.clone(), Some(now_unix_nano), None, None),
            IssueStatus::ResolvedInRelease => {
                let release = change.release.clone().or(state.last_release.clone()).ok_or_else(|| {
                    StoreError::Conflict(format!("issue {issue_id} has no release yet; pass \"release\" explicitly"))
                })?;
                (None, Some(release), Some(now_unix_nano), None, None)
            }
            IssueStatus::Ignored => (
                None,
                None,
                None,
                change.ignore_for_events.map(|more| state.event_count + more),
                change.ignore_until_unix_nano,
            ),
        };
        transaction
            .prepare_cached(
                "UPDATE issues SET status = ?2, substatus = ?3, resolved_in_release = ?4, resolved_at_unix_nano = ?5,
                    ignore_until_event_count = ?6, ignore_until_unix_nano = ?7 WHERE id = ?1",
            )?
            .execute(params![
                issue_id,
                change.status.as_str(),
                substatus,
                resolved_in_release,
                resolved_at.map(|value| value as i64),
                ignore_count.map(|value| value as i64),
                ignore_time.map(|value| value as i64),
            ])?;
        add_history(
            transaction,
            *issue_id,
            change.status,
            substatus,
            "api",
            &change.actor,
            resolved_in_release.as_deref(),
            now_unix_nano,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod commit_tests;

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_parse_leniently() {
        assert!(parse_version("v1.2").unwrap() < parse_version("1.10.0").unwrap());
        assert!(parse_version("shop@2.0.0").unwrap() > parse_version("shop@1.9.9").unwrap());
        assert!(parse_version("abc1234").is_none());
    }
}
