//! Journeys and funnels from journey touches (product events naming a `journey.id`).
//!
//! Rules, each chosen so a number can be explained from the events behind it:
//! - **Sessions** are the unit: a session counts once per step however many events (frontend
//!   and backend, retries, repeats) mark it. Touches without `session.id` are left out.
//! - **Server confirmation**: a touch whose `metadata.source` is `server`, `backend` or `otlp`
//!   (OpenTelemetry log events, which backends emit) comes from a backend. A step is
//!   `server_confirmed` for a session when any backend touch marks it.
//! - **Observed step order** (when the caller names no steps): each session ranks its steps by
//!   the first time it reached them (position 1, 2, ...); steps are ordered by the **median** of
//!   their positions over the sessions that reached them, ties broken by more sessions first,
//!   then the earliest first time, then the step id. Skipped or repeated steps don't reorder
//!   the funnel because one session's odd path moves a median little.
//! - **Funnel counting** (strict order): a session *completes* step `k` when it reached steps
//!   `1..=k` in that order, each at or after the time it completed the previous one (the first
//!   such time is used). Every session that touched the journey *enters* step 1; the sessions
//!   that completed step `k - 1` enter step `k`. `conversion_rate` = completed / entered,
//!   `conversion_rate_from_start` = completed / sessions, and the overall rate is the last
//!   step's completions over the sessions.
//! - **Step time**: per step, the median over the sessions that completed it of the time since
//!   they completed the previous step (ms; the mean of the two middle values for an even count).
//! - **Conversion status** (`journey.conversion.status`): the session's latest status decides;
//!   `converted`, `completed`, `complete`, `success`, `succeeded` count as converted;
//!   `abandoned`, `dropped`, `failed`, `cancelled`, `canceled` as abandoned (any case); others
//!   (e.g. `in_progress`) as neither. A conversion is server-confirmed when a backend touch
//!   reported a converted status for the session.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::percentile::median;
use crate::store::analytics::JourneyTouch;

/// `metadata.source` values that mark an event as sent by a backend (compared ignoring case).
pub(crate) const SERVER_SOURCES: [&str; 3] = ["server", "backend", "otlp"];

const NANOS_PER_MILLI: f64 = 1e6;

/// True when `source` (`metadata.source`) names a backend.
pub(crate) fn is_server_source(source: Option<&str>) -> bool {
    source.is_some_and(|source| SERVER_SOURCES.iter().any(|server| server.eq_ignore_ascii_case(source)))
}

/// What a `journey.conversion.status` value means for the journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConversionStatus {
    /// The session converted.
    Converted,
    /// The session gave up.
    Abandoned,
    /// Anything else (`in_progress`, ...).
    Other,
}

/// Classifies a `journey.conversion.status` value (see the module docs).
pub(crate) fn classify_status(text: &str) -> ConversionStatus {
    match text.trim().to_ascii_lowercase().as_str() {
        "converted" | "completed" | "complete" | "success" | "succeeded" => ConversionStatus::Converted,
        "abandoned" | "dropped" | "failed" | "cancelled" | "canceled" => ConversionStatus::Abandoned,
        _ => ConversionStatus::Other,
    }
}

/// When one session reached one step.
#[derive(Debug, Default)]
struct StepReach {
    /// Times reached (ns), ascending once gathered.
    times: Vec<u64>,
    /// A backend touch marked the step.
    server_confirmed: bool,
}

/// One session's touches of one journey.
#[derive(Debug, Default)]
struct SessionPath<'a> {
    steps: BTreeMap<&'a str, StepReach>,
    /// Latest conversion status: (time, status).
    status: Option<(u64, ConversionStatus)>,
    /// A backend touch reported `converted`.
    server_converted: bool,
    user: Option<&'a str>,
}

/// The touches of one journey, per session.
#[derive(Debug, Default)]
struct JourneySessions<'a> {
    sessions: BTreeMap<&'a str, SessionPath<'a>>,
    /// Step id → (time, name) of the latest touch that named the step.
    step_names: BTreeMap<&'a str, (u64, &'a str)>,
    first_seen_unix_nano: u64,
    last_seen_unix_nano: u64,
}

fn gather<'a>(touches: impl IntoIterator<Item = &'a JourneyTouch>) -> JourneySessions<'a> {
    let mut journey = JourneySessions { first_seen_unix_nano: u64::MAX, ..JourneySessions::default() };
    for touch in touches {
        if touch.session_id.is_empty() {
            continue;
        }
        let time = touch.timestamp_unix_nano;
        journey.first_seen_unix_nano = journey.first_seen_unix_nano.min(time);
        journey.last_seen_unix_nano = journey.last_seen_unix_nano.max(time);
        let from_server = is_server_source(touch.source.as_deref());
        let session = journey.sessions.entry(touch.session_id.as_str()).or_default();
        if session.user.is_none() {
            session.user = touch.user_id.as_deref();
        }
        if let Some(step_id) = touch.step_id.as_deref() {
            let reach = session.steps.entry(step_id).or_default();
            reach.times.push(time);
            reach.server_confirmed |= from_server;
            if let Some(name) = touch.step_name.as_deref() {
                let named = journey.step_names.entry(step_id).or_insert((time, name));
                if time >= named.0 {
                    *named = (time, name);
                }
            }
        }
        if let Some(status_text) = touch.conversion_status.as_deref() {
            let status = classify_status(status_text);
            if session.status.is_none_or(|(latest, _)| time >= latest) {
                session.status = Some((time, status));
            }
            session.server_converted |= from_server && status == ConversionStatus::Converted;
        }
    }
    for session in journey.sessions.values_mut() {
        for reach in session.steps.values_mut() {
            reach.times.sort_unstable();
        }
    }
    if journey.sessions.is_empty() {
        journey.first_seen_unix_nano = 0;
    }
    journey
}

/// A step as observed across sessions, before any funnel counting.
#[derive(Debug, Clone, PartialEq)]
struct ObservedStep<'a> {
    step_id: &'a str,
    /// Sessions that reached the step at all.
    sessions: u64,
    /// Of those, sessions a backend confirmed it for.
    server_confirmed: u64,
    /// Median 1-based position of the step in its sessions' paths.
    median_position: f64,
    first_seen_unix_nano: u64,
}

/// Steps in observed order (see the module docs).
fn observed_steps<'a>(journey: &JourneySessions<'a>) -> Vec<ObservedStep<'a>> {
    let mut positions: BTreeMap<&'a str, Vec<f64>> = BTreeMap::new();
    let mut confirmed: BTreeMap<&'a str, u64> = BTreeMap::new();
    let mut first_seen: BTreeMap<&'a str, u64> = BTreeMap::new();
    for session in journey.sessions.values() {
        let mut firsts: Vec<(u64, &'a str)> =
            session.steps.iter().filter_map(|(step_id, reach)| Some((*reach.times.first()?, *step_id))).collect();
        firsts.sort_unstable();
        for (index, (time, step_id)) in firsts.into_iter().enumerate() {
            positions.entry(step_id).or_default().push((index + 1) as f64);
            let earliest = first_seen.entry(step_id).or_insert(time);
            *earliest = (*earliest).min(time);
            if session.steps[step_id].server_confirmed {
                *confirmed.entry(step_id).or_insert(0) += 1;
            }
        }
    }
    let mut steps: Vec<ObservedStep<'a>> = positions
        .into_iter()
        .map(|(step_id, step_positions)| ObservedStep {
            step_id,
            sessions: step_positions.len() as u64,
            server_confirmed: confirmed.get(step_id).copied().unwrap_or(0),
            median_position: median(&step_positions).unwrap_or(0.0),
            first_seen_unix_nano: first_seen.get(step_id).copied().unwrap_or(0),
        })
        .collect();
    steps.sort_by(|left, right| {
        left.median_position
            .total_cmp(&right.median_position)
            .then_with(|| Reverse(left.sessions).cmp(&Reverse(right.sessions)))
            .then_with(|| left.first_seen_unix_nano.cmp(&right.first_seen_unix_nano))
            .then_with(|| left.step_id.cmp(right.step_id))
    });
    steps
}

/// `numerator / denominator`, `None` when the denominator is 0.
fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// Journey-level outcomes from `journey.conversion.status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Conversions {
    /// Sessions whose latest status is a conversion.
    pub converted: u64,
    /// Sessions whose latest status is an abandonment.
    pub abandoned: u64,
    /// Sessions a backend reported as converted.
    pub server_confirmed: u64,
    /// `converted / sessions`; `null` without sessions.
    pub conversion_rate: Option<f64>,
}

fn conversions(journey: &JourneySessions<'_>) -> Conversions {
    let mut converted = 0;
    let mut abandoned = 0;
    let mut server_confirmed = 0;
    for session in journey.sessions.values() {
        match session.status.map(|(_, status)| status) {
            Some(ConversionStatus::Converted) => converted += 1,
            Some(ConversionStatus::Abandoned) => abandoned += 1,
            _ => {}
        }
        if session.server_converted {
            server_confirmed += 1;
        }
    }
    Conversions {
        converted,
        abandoned,
        server_confirmed,
        conversion_rate: ratio(converted, journey.sessions.len() as u64),
    }
}

fn step_name(journey: &JourneySessions<'_>, step_id: &str) -> Option<String> {
    journey.step_names.get(step_id).map(|(_, name)| (*name).to_owned())
}

/// A step of a journey as seen in the range, in observed order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct StepSeen {
    /// `journey.step.id`.
    pub step_id: String,
    /// The latest `journey.step.name` sent for it; `null` when none was.
    pub name: Option<String>,
    /// Sessions that reached the step (in any order).
    pub sessions: u64,
    /// Of those, sessions a backend event confirmed it for.
    pub server_confirmed: u64,
    /// Median 1-based position of the step in its sessions' paths.
    pub median_position: f64,
}

/// One journey seen in the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct JourneySummary {
    /// `journey.id`.
    pub journey_id: String,
    /// Sessions that touched the journey.
    pub sessions: u64,
    /// Distinct `user.id` values of those sessions.
    pub users: u64,
    /// Earliest touch (ns since the epoch).
    pub first_seen_unix_nano: u64,
    /// Latest touch (ns since the epoch).
    pub last_seen_unix_nano: u64,
    /// Steps in observed order.
    pub steps: Vec<StepSeen>,
    /// Journey-level outcomes.
    pub conversions: Conversions,
}

/// Every journey of `touches`, most sessions first (ties by id).
pub(crate) fn summarize_journeys(touches: &[JourneyTouch]) -> Vec<JourneySummary> {
    let mut by_journey: BTreeMap<&str, Vec<&JourneyTouch>> = BTreeMap::new();
    for touch in touches {
        by_journey.entry(touch.journey_id.as_str()).or_default().push(touch);
    }
    let mut summaries: Vec<JourneySummary> = by_journey
        .into_iter()
        .filter_map(|(journey_id, journey_touches)| {
            let journey = gather(journey_touches);
            if journey.sessions.is_empty() {
                return None;
            }
            let users: BTreeSet<&str> = journey.sessions.values().filter_map(|session| session.user).collect();
            let steps = observed_steps(&journey)
                .into_iter()
                .map(|step| StepSeen {
                    step_id: step.step_id.to_owned(),
                    name: step_name(&journey, step.step_id),
                    sessions: step.sessions,
                    server_confirmed: step.server_confirmed,
                    median_position: step.median_position,
                })
                .collect();
            Some(JourneySummary {
                journey_id: journey_id.to_owned(),
                sessions: journey.sessions.len() as u64,
                users: users.len() as u64,
                first_seen_unix_nano: journey.first_seen_unix_nano,
                last_seen_unix_nano: journey.last_seen_unix_nano,
                steps,
                conversions: conversions(&journey),
            })
        })
        .collect();
    summaries.sort_by(|left, right| {
        Reverse(left.sessions).cmp(&Reverse(right.sessions)).then_with(|| left.journey_id.cmp(&right.journey_id))
    });
    summaries
}

/// How the funnel's steps were ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StepOrder {
    /// By median position in the sessions' paths.
    Observed,
    /// As the caller listed them (`steps=`).
    Explicit,
}

/// One step of a funnel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FunnelStep {
    /// 1-based place in the funnel.
    pub position: usize,
    /// `journey.step.id`.
    pub step_id: String,
    /// The latest `journey.step.name` sent for it; `null` when none was.
    pub name: Option<String>,
    /// Sessions that arrived at the step: all sessions for the first step, else those that
    /// completed the previous one.
    pub entered: u64,
    /// Sessions that reached the step after the previous ones, in order.
    pub completed: u64,
    /// Of the completing sessions, those a backend event confirmed the step for.
    pub server_confirmed: u64,
    /// Sessions that reached the step at all, in any order.
    pub reached_any_order: u64,
    /// `completed / entered`; `null` when nobody entered.
    pub conversion_rate: Option<f64>,
    /// `completed / sessions`; `null` without sessions.
    pub conversion_rate_from_start: Option<f64>,
    /// Median time from completing the previous step to completing this one (ms); `null` for
    /// the first step or without completions.
    pub median_ms_from_previous: Option<f64>,
    /// Median 1-based position of the step in its sessions' paths; `null` when never reached.
    pub median_position: Option<f64>,
}

/// A journey's funnel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Funnel {
    /// `journey.id`.
    pub journey_id: String,
    /// How the steps were ordered.
    pub step_order: StepOrder,
    /// Sessions that touched the journey.
    pub sessions: u64,
    /// Sessions that completed every step in order.
    pub completed_sessions: u64,
    /// `completed_sessions / sessions`; `null` without sessions or steps.
    pub overall_conversion_rate: Option<f64>,
    /// The steps in funnel order.
    pub steps: Vec<FunnelStep>,
    /// Journey-level outcomes from `journey.conversion.status`.
    pub conversions: Conversions,
}

/// The funnel of `journey_id` from its touches (touches of other journeys are ignored), in the
/// order of `explicit_steps` when given, else in observed order.
pub(crate) fn compute_funnel(journey_id: &str, touches: &[JourneyTouch], explicit_steps: Option<&[String]>) -> Funnel {
    let journey = gather(touches.iter().filter(|touch| touch.journey_id == journey_id));
    let observed = observed_steps(&journey);
    let (step_order, order): (StepOrder, Vec<&str>) = match explicit_steps {
        Some(steps) => (StepOrder::Explicit, steps.iter().map(String::as_str).collect()),
        None => (StepOrder::Observed, observed.iter().map(|step| step.step_id).collect()),
    };
    let mut completed = vec![0u64; order.len()];
    let mut server_confirmed = vec![0u64; order.len()];
    let mut gaps_ms: Vec<Vec<f64>> = vec![Vec::new(); order.len()];
    for session in journey.sessions.values() {
        let mut previous_time: Option<u64> = None;
        for (index, step_id) in order.iter().enumerate() {
            let Some(reach) = session.steps.get(step_id) else { break };
            let time = match previous_time {
                None => reach.times.first().copied(),
                Some(previous) => reach.times.iter().copied().find(|time| *time >= previous),
            };
            let Some(time) = time else { break };
            completed[index] += 1;
            if reach.server_confirmed {
                server_confirmed[index] += 1;
            }
            if let Some(previous) = previous_time {
                gaps_ms[index].push((time - previous) as f64 / NANOS_PER_MILLI);
            }
            previous_time = Some(time);
        }
    }
    let sessions = journey.sessions.len() as u64;
    let steps: Vec<FunnelStep> = order
        .iter()
        .enumerate()
        .map(|(index, step_id)| {
            let entered = if index == 0 { sessions } else { completed[index - 1] };
            let seen = observed.iter().find(|step| step.step_id == *step_id);
            FunnelStep {
                position: index + 1,
                step_id: (*step_id).to_owned(),
                name: step_name(&journey, step_id),
                entered,
                completed: completed[index],
                server_confirmed: server_confirmed[index],
                reached_any_order: seen.map_or(0, |step| step.sessions),
                conversion_rate: ratio(completed[index], entered),
                conversion_rate_from_start: ratio(completed[index], sessions),
                median_ms_from_previous: median(&gaps_ms[index]),
                median_position: seen.map(|step| step.median_position),
            }
        })
        .collect();
    let completed_sessions = completed.last().copied().unwrap_or(0);
    Funnel {
        journey_id: journey_id.to_owned(),
        step_order,
        sessions,
        completed_sessions,
        overall_conversion_rate: if order.is_empty() { None } else { ratio(completed_sessions, sessions) },
        steps,
        conversions: conversions(&journey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_700_000_000 * SECOND;

    fn step(session: &str, step_id: &str, at_seconds: u64) -> JourneyTouch {
        JourneyTouch {
            journey_id: "checkout".into(),
            session_id: session.into(),
            user_id: Some(format!("user-of-{session}")),
            step_id: Some(step_id.into()),
            step_name: Some(format!("Step {step_id}")),
            conversion_status: None,
            timestamp_unix_nano: T0 + at_seconds * SECOND,
            source: None,
        }
    }

    fn from_server(mut touch: JourneyTouch) -> JourneyTouch {
        touch.source = Some("otlp".into());
        touch
    }

    fn status(session: &str, status: &str, at_seconds: u64) -> JourneyTouch {
        JourneyTouch {
            step_id: None,
            step_name: None,
            conversion_status: Some(status.into()),
            ..step(session, "", at_seconds)
        }
    }

    /// Four sessions: a converts (cart → shipping → payment, payment confirmed by the backend),
    /// b abandons after shipping, c after cart, d converts with different gaps.
    fn checkout() -> Vec<JourneyTouch> {
        vec![
            step("a", "cart", 0),
            step("a", "shipping", 10),
            step("a", "payment", 40),
            from_server(step("a", "payment", 41)),
            status("a", "converted", 42),
            step("b", "cart", 100),
            step("b", "shipping", 120),
            status("b", "abandoned", 200),
            step("c", "cart", 300),
            step("d", "cart", 400),
            step("d", "shipping", 430),
            step("d", "payment", 450),
            from_server(status("d", "converted", 451)),
        ]
    }

    #[test]
    fn funnel_counts_sessions_once_per_step_in_order() {
        let funnel = compute_funnel("checkout", &checkout(), None);
        assert_eq!(funnel.step_order, StepOrder::Observed);
        assert_eq!(funnel.sessions, 4);
        let ids: Vec<&str> = funnel.steps.iter().map(|step| step.step_id.as_str()).collect();
        assert_eq!(ids, ["cart", "shipping", "payment"]);
        let counts: Vec<(u64, u64, u64)> =
            funnel.steps.iter().map(|step| (step.entered, step.completed, step.server_confirmed)).collect();
        // Session a's payment came from the browser and the backend: counted once, confirmed.
        assert_eq!(counts, [(4, 4, 0), (4, 3, 0), (3, 2, 1)]);
        assert_eq!(funnel.steps[1].conversion_rate, Some(0.75));
        assert_eq!(funnel.steps[2].conversion_rate_from_start, Some(0.5));
        assert_eq!(funnel.completed_sessions, 2);
        assert_eq!(funnel.overall_conversion_rate, Some(0.5));
        // cart → shipping: a 10 s, b 20 s, d 30 s; shipping → payment: a 30 s, d 20 s.
        assert_eq!(funnel.steps[0].median_ms_from_previous, None);
        assert_eq!(funnel.steps[1].median_ms_from_previous, Some(20_000.0));
        assert_eq!(funnel.steps[2].median_ms_from_previous, Some(25_000.0));
        assert_eq!(funnel.steps[2].name.as_deref(), Some("Step payment"));
        assert_eq!(
            funnel.conversions,
            Conversions { converted: 2, abandoned: 1, server_confirmed: 1, conversion_rate: Some(0.5) }
        );
    }

    #[test]
    fn observed_order_uses_the_median_position() {
        // One session goes shipping before cart; the majority decides.
        let mut touches = checkout();
        touches.push(step("e", "shipping", 500));
        touches.push(step("e", "cart", 510));
        let funnel = compute_funnel("checkout", &touches, None);
        let ids: Vec<&str> = funnel.steps.iter().map(|step| step.step_id.as_str()).collect();
        assert_eq!(ids, ["cart", "shipping", "payment"]);
        // Session e reached cart but never shipping after it.
        assert_eq!(funnel.steps[1].completed, 3);
        assert_eq!(funnel.steps[1].reached_any_order, 4);
        assert_eq!(funnel.steps[0].median_position, Some(1.0));
    }

    #[test]
    fn ties_in_median_position_put_the_busier_step_first() {
        // x and z enter at "landing", y skips it and enters at "cart": both steps have median
        // position 1, and the step more sessions reached goes first.
        let touches = vec![step("x", "landing", 0), step("y", "cart", 5), step("z", "landing", 7)];
        let funnel = compute_funnel("checkout", &touches, None);
        let ids: Vec<&str> = funnel.steps.iter().map(|step| step.step_id.as_str()).collect();
        assert_eq!(ids, ["landing", "cart"]);
        let counts: Vec<(u64, u64)> = funnel.steps.iter().map(|step| (step.entered, step.completed)).collect();
        assert_eq!(counts, [(3, 2), (2, 0)], "y reached cart without landing first");
    }

    #[test]
    fn explicit_steps_set_the_order_and_may_name_unseen_steps() {
        let steps = vec!["cart".to_owned(), "payment".to_owned(), "receipt".to_owned()];
        let funnel = compute_funnel("checkout", &checkout(), Some(&steps));
        assert_eq!(funnel.step_order, StepOrder::Explicit);
        let counts: Vec<(u64, u64)> = funnel.steps.iter().map(|step| (step.entered, step.completed)).collect();
        assert_eq!(counts, [(4, 4), (4, 2), (2, 0)]);
        assert_eq!(funnel.steps[2].name, None);
        assert_eq!(funnel.steps[2].conversion_rate, Some(0.0));
        assert_eq!(funnel.steps[2].median_position, None);
        // cart → payment: a 40 s, d 50 s.
        assert_eq!(funnel.steps[1].median_ms_from_previous, Some(45_000.0));
        assert_eq!(funnel.overall_conversion_rate, Some(0.0));
    }

    #[test]
    fn a_step_repeated_before_the_previous_one_uses_the_next_time_after_it() {
        // Payment tried first (rejected: no cart), then cart, then payment again.
        let touches = vec![step("a", "payment", 0), step("a", "cart", 10), step("a", "payment", 25)];
        let steps = vec!["cart".to_owned(), "payment".to_owned()];
        let funnel = compute_funnel("checkout", &touches, Some(&steps));
        assert_eq!(funnel.steps[1].completed, 1);
        assert_eq!(funnel.steps[1].median_ms_from_previous, Some(15_000.0));
    }

    #[test]
    fn an_empty_journey_has_no_rates() {
        let funnel = compute_funnel("signup", &checkout(), None);
        assert_eq!(funnel.sessions, 0);
        assert!(funnel.steps.is_empty());
        assert_eq!(funnel.overall_conversion_rate, None);
        assert_eq!(funnel.conversions.conversion_rate, None);
        let mut no_session = step("", "cart", 0);
        no_session.journey_id = "signup".into();
        assert_eq!(compute_funnel("signup", &[no_session], None).sessions, 0, "touches without a session are left out");
    }

    #[test]
    fn journeys_are_summarized_with_steps_users_and_conversions() {
        let mut touches = checkout();
        let mut signup = step("s1", "form", 1_000);
        signup.journey_id = "signup".into();
        touches.push(signup);
        let summaries = summarize_journeys(&touches);
        assert_eq!(summaries.len(), 2);
        let checkout = &summaries[0];
        assert_eq!((checkout.journey_id.as_str(), checkout.sessions, checkout.users), ("checkout", 4, 4));
        assert_eq!(checkout.first_seen_unix_nano, T0);
        assert_eq!(checkout.last_seen_unix_nano, T0 + 451 * SECOND);
        let steps: Vec<(&str, u64, u64)> =
            checkout.steps.iter().map(|step| (step.step_id.as_str(), step.sessions, step.server_confirmed)).collect();
        assert_eq!(steps, [("cart", 4, 0), ("shipping", 3, 0), ("payment", 2, 1)]);
        assert_eq!(checkout.conversions.converted, 2);
        assert_eq!(summaries[1].journey_id, "signup");
    }

    #[test]
    fn statuses_and_sources_are_classified() {
        assert_eq!(classify_status("Converted"), ConversionStatus::Converted);
        assert_eq!(classify_status("success"), ConversionStatus::Converted);
        assert_eq!(classify_status("abandoned"), ConversionStatus::Abandoned);
        assert_eq!(classify_status("CANCELED"), ConversionStatus::Abandoned);
        assert_eq!(classify_status("in_progress"), ConversionStatus::Other);
        assert!(is_server_source(Some("Server")));
        assert!(is_server_source(Some("otlp")));
        assert!(!is_server_source(Some("web")));
        assert!(!is_server_source(None));
    }

    #[test]
    fn the_latest_status_of_a_session_wins() {
        let mut late_abandon = status("b", "abandoned", 30);
        late_abandon.source = Some("server".into());
        let touches =
            vec![status("a", "abandoned", 10), status("a", "converted", 20), status("b", "converted", 5), late_abandon];
        let funnel = compute_funnel("checkout", &touches, None);
        assert_eq!(funnel.conversions.converted, 1);
        assert_eq!(funnel.conversions.abandoned, 1);
        assert_eq!(funnel.conversions.server_confirmed, 0, "the backend reported an abandonment, not a conversion");
    }
}
