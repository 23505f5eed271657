//! Service map edges (issue 5, "Service map"): caller → callee with call count, errors and a
//! duration sketch per minute, and the pairing that finds them at ingest.
//!
//! An edge is a CLIENT/PRODUCER span of one service whose child SERVER/CONSUMER span belongs to
//! another service. The two halves come from different processes, so they arrive in different
//! requests, in either order (a server span usually ends, and is exported, before its client
//! span). Like Grafana Tempo's service-graph processor and the OpenTelemetry Collector's
//! `servicegraph` connector, [`CallPairing`] keeps each half in memory until its other half
//! arrives, for at most [`PAIRING_WAIT_NANOS`] and [`MAX_PENDING_HALVES`] entries. A client
//! span still alone after that is an edge to a *virtual* node named by its `peer.service`
//! (else `server.address`, else `db.system.name`/`db.system`): an uninstrumented callee. A
//! server span left alone is not an edge (its caller was not instrumented or not sampled).
//! Pending halves live only in memory: calls whose halves straddle a restart are not counted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use sightline_model::span::{kind, status_code};
use sightline_model::{Batch, Span, SpanId, TraceId};

use crate::store::rollups::DurationSketch;

/// How long a half waits for its other half (ns of ingest time).
pub const PAIRING_WAIT_NANOS: u64 = 10_000_000_000;
/// Most halves waiting at once; the oldest are expired first beyond it (memory bound).
pub const MAX_PENDING_HALVES: usize = 200_000;
/// Slots of paired halves the arrival ring may hold beyond twice the waiting ones before it is
/// compacted (see `CallPairing::compact`).
const COMPACT_SLACK: usize = 65_536;
/// Edge rows are per minute.
pub const EDGE_BUCKET_NANOS: u64 = 60_000_000_000;

/// What an edge row is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeKey {
    /// Calling service (`service.name` of the CLIENT/PRODUCER span).
    pub caller: String,
    /// Called service, or the virtual node's name.
    pub callee: String,
    /// True when the callee sent no spans (named from the client span's attributes).
    pub virtual_callee: bool,
}

/// Calls on one edge in one minute (a commit's delta, or a stored row).
#[derive(Debug, Clone)]
pub struct EdgeRollup {
    /// The edge.
    pub key: EdgeKey,
    /// Minute start of the client spans, ns since epoch.
    pub bucket_start_unix_nano: u64,
    /// Calls.
    pub calls: u64,
    /// Calls where the client or the server span has status ERROR.
    pub errors: u64,
    /// Client span durations (what the caller waited), ns.
    pub durations: DurationSketch,
}

/// One half of a cross-service call, extracted from a span where the batch is prepared (so the
/// single writer only pairs): a CLIENT/PRODUCER span, or a SERVER/CONSUMER span with a parent.
#[derive(Debug, Clone)]
pub struct CallHalf {
    /// The span's trace.
    pub trace_id: TraceId,
    /// The client span's id: its own for a client half, its parent's for a server half.
    pub call_id: SpanId,
    /// `service.name` of the span's resource (shared by the resource's spans).
    pub service: Arc<str>,
    /// Status ERROR.
    pub error: bool,
    /// Client or server, with what only that side has.
    pub side: CallSide,
}

/// Which side of a call a [`CallHalf`] is.
#[derive(Debug, Clone)]
pub enum CallSide {
    /// A CLIENT/PRODUCER span.
    Client {
        /// `peer.service` (else `server.address`, else the database system), for a callee that
        /// never reports.
        virtual_callee: Option<Arc<str>>,
        /// Span start, ns since epoch.
        start_unix_nano: u64,
        /// Span duration, ns.
        duration_nanos: u64,
    },
    /// A SERVER/CONSUMER span.
    Server,
}

/// The call halves of a batch's spans, in order.
pub fn call_halves(batch: &Batch<Span>) -> Vec<CallHalf> {
    let mut halves = Vec::new();
    let mut callee_names = Vec::new();
    for resource_group in batch {
        let service: Arc<str> = Arc::from(resource_group.resource.service_name());
        for scope_group in &resource_group.scopes {
            for span in &scope_group.items {
                let (call_id, side) = match span.kind {
                    kind::CLIENT | kind::PRODUCER => (
                        span.span_id,
                        CallSide::Client {
                            virtual_callee: virtual_callee(span, &mut callee_names),
                            start_unix_nano: span.start_time_unix_nano,
                            duration_nanos: span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano),
                        },
                    ),
                    kind::SERVER | kind::CONSUMER => match span.parent_span_id {
                        Some(parent) => (parent, CallSide::Server),
                        None => continue,
                    },
                    _ => continue,
                };
                halves.push(CallHalf {
                    trace_id: span.trace_id,
                    call_id,
                    service: service.clone(),
                    error: span.status_code == status_code::ERROR,
                    side,
                });
            }
        }
    }
    halves
}

/// A waiting client half.
#[derive(Debug, Clone)]
struct ClientHalf {
    service: Arc<str>,
    virtual_callee: Option<Arc<str>>,
    start_unix_nano: u64,
    duration_nanos: u64,
    error: bool,
}

/// A waiting server half.
#[derive(Debug, Clone)]
struct ServerHalf {
    service: Arc<str>,
    error: bool,
}

/// (project, trace, the client span's id) — a server half is keyed by its parent span id.
type HalfKey = (i64, TraceId, SpanId);

/// What an arrival slot holds.
#[derive(Debug)]
enum Waiting {
    Client(ClientHalf),
    Server(ServerHalf),
    /// Paired, or replaced by a later half with the same key.
    Gone,
}

/// One arrival, in arrival order.
#[derive(Debug)]
struct Arrival {
    seen_at: u64,
    key: HalfKey,
    half: Waiting,
}

/// The halves waiting for their other half (see the module docs). One per server, owned by the
/// ingest queue ([`crate::pipeline::IngestQueue`]), which pairs each batch as it admits it.
///
/// Halves live in one ring in arrival order; a hash index maps each waiting key to its ring
/// slot (by sequence number). So a half that never pairs — most CLIENT spans to an
/// uninstrumented callee — costs one index insert and one index removal, and expiry walks the
/// ring's front in bulk, in the order the halves came, without a lookup to learn whether a slot
/// is still waiting. Keys are random ids, so the fast non-cryptographic `rustc-hash` hasher is
/// safe here (nothing a client chooses can make the table degrade beyond what ids it sends
/// already could).
#[derive(Debug, Default)]
pub struct CallPairing {
    /// Waiting key → sequence number of its slot in `arrivals`.
    index: FxHashMap<HalfKey, u64>,
    /// Arrivals, oldest first; `arrivals[i]` has sequence number `first_sequence + i`.
    arrivals: VecDeque<Arrival>,
    first_sequence: u64,
    /// Server halves that expired unpaired (for the record).
    unpaired_servers: u64,
}

fn virtual_callee(span: &Span, names: &mut Vec<Arc<str>>) -> Option<Arc<str>> {
    let name = ["peer.service", "server.address", "db.system.name", "db.system", "net.peer.name"]
        .iter()
        .find_map(|key| span.attributes.get_str(key).map(str::trim).filter(|value| !value.is_empty()))?;
    // A batch names few callees: share one allocation per name.
    if let Some(known) = names.iter().find(|known| &***known == name) {
        return Some(known.clone());
    }
    let fresh: Arc<str> = Arc::from(name);
    names.push(fresh.clone());
    Some(fresh)
}

/// Calls paired in one commit, by (project, caller, callee, virtual callee, minute start):
/// counted without allocating per call (the names are shared), turned into [`EdgeRollup`]s
/// once per edge by [`EdgeTally::into_rollups`].
#[derive(Debug, Default, Clone)]
pub struct EdgeTally(FxHashMap<TallyKey, (u64, u64, DurationSketch)>);

/// (project, caller, callee, virtual callee, minute start ns).
type TallyKey = (i64, Arc<str>, Arc<str>, bool, u64);

impl EdgeTally {
    /// True when no call was paired.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds these calls to `rows` (one per project, edge and minute), as [`EdgeTally::into_rollups`]
    /// would make them, summing with rows already there. Errors: two sketches that do not merge
    /// (they all use the same mapping, so only a corrupted sketch could).
    pub fn add_to(
        &self,
        rows: &mut HashMap<(i64, EdgeKey, u64), EdgeRollup>,
    ) -> Result<(), crate::store::rollups::RollupError> {
        for ((project_id, caller, callee, virtual_callee, bucket), (calls, errors, durations)) in &self.0 {
            let key =
                EdgeKey { caller: caller.to_string(), callee: callee.to_string(), virtual_callee: *virtual_callee };
            match rows.entry((*project_id, key, *bucket)) {
                std::collections::hash_map::Entry::Occupied(mut row) => {
                    let row = row.get_mut();
                    row.calls += calls;
                    row.errors += errors;
                    row.durations.merge(durations)?;
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let key = slot.key().1.clone();
                    slot.insert(EdgeRollup {
                        key,
                        bucket_start_unix_nano: *bucket,
                        calls: *calls,
                        errors: *errors,
                        durations: durations.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The tallied calls as edge rows (one per edge and minute).
    pub fn into_rollups(self) -> HashMap<(i64, EdgeKey, u64), EdgeRollup> {
        self.0
            .into_iter()
            .map(|((project_id, caller, callee, virtual_callee, bucket), (calls, errors, durations))| {
                let key = EdgeKey { caller: caller.to_string(), callee: callee.to_string(), virtual_callee };
                let rollup = EdgeRollup { key: key.clone(), bucket_start_unix_nano: bucket, calls, errors, durations };
                ((project_id, key, bucket), rollup)
            })
            .collect()
    }
}

impl CallPairing {
    /// Adds a batch's call halves of `project_id`, seen at `now_unix_nano`, pairing what it
    /// can. Paired calls are added to `edges`.
    pub fn observe(&mut self, project_id: i64, halves: &[CallHalf], now_unix_nano: u64, edges: &mut EdgeTally) {
        for half in halves {
            let key = (project_id, half.trace_id, half.call_id);
            let earlier = match self.index.get(&key).copied() {
                Some(sequence) => self.take(sequence),
                None => Waiting::Gone,
            };
            let arriving = match (&half.side, earlier) {
                (CallSide::Client { virtual_callee, start_unix_nano, duration_nanos }, earlier) => {
                    let client = ClientHalf {
                        service: half.service.clone(),
                        virtual_callee: virtual_callee.clone(),
                        start_unix_nano: *start_unix_nano,
                        duration_nanos: *duration_nanos,
                        error: half.error,
                    };
                    if let Waiting::Server(server) = earlier {
                        self.index.remove(&key);
                        add_call(edges, project_id, &client, server.service, false, server.error);
                        continue;
                    }
                    // Nothing waiting, or an earlier client with the same key (a resent
                    // span): the new one waits in its place, as a fresh arrival.
                    Waiting::Client(client)
                }
                (CallSide::Server, Waiting::Client(client)) => {
                    self.index.remove(&key);
                    add_call(edges, project_id, &client, half.service.clone(), false, half.error);
                    continue;
                }
                (CallSide::Server, _) => {
                    Waiting::Server(ServerHalf { service: half.service.clone(), error: half.error })
                }
            };
            let sequence = self.first_sequence + self.arrivals.len() as u64;
            self.arrivals.push_back(Arrival { seen_at: now_unix_nano, key, half: arriving });
            self.index.insert(key, sequence);
            if self.arrivals.len() > 2 * self.index.len() + COMPACT_SLACK {
                self.compact();
            }
        }
    }

    /// Drops the `Gone` slots behind the front (paired halves wait there until the front
    /// expires) and renumbers the waiting ones: the ring stays within twice the waiting halves
    /// plus [`COMPACT_SLACK`], at amortized O(1) per arrival. Arrival order is kept.
    fn compact(&mut self) {
        let mut kept = VecDeque::with_capacity(self.index.len() + COMPACT_SLACK);
        kept.extend(self.arrivals.drain(..).filter(|arrival| !matches!(arrival.half, Waiting::Gone)));
        for (offset, arrival) in kept.iter().enumerate() {
            if let Some(sequence) = self.index.get_mut(&arrival.key) {
                *sequence = self.first_sequence + offset as u64;
            }
        }
        self.arrivals = kept;
    }

    /// Takes the half out of the slot with this sequence number (leaving `Gone`); the index
    /// entry is the caller's to update.
    fn take(&mut self, sequence: u64) -> Waiting {
        let Some(slot) = sequence
            .checked_sub(self.first_sequence)
            .and_then(|offset| usize::try_from(offset).ok().and_then(|offset| self.arrivals.get_mut(offset)))
        else {
            return Waiting::Gone;
        };
        std::mem::replace(&mut slot.half, Waiting::Gone)
    }

    /// Expires halves older than [`PAIRING_WAIT_NANOS`] (and the oldest beyond
    /// [`MAX_PENDING_HALVES`]): lone client spans with a peer name become calls to a virtual node.
    pub fn expire(&mut self, now_unix_nano: u64, edges: &mut EdgeTally) {
        while let Some(front) = self.arrivals.front() {
            let waiting = !matches!(front.half, Waiting::Gone);
            let over_capacity = self.index.len() > MAX_PENDING_HALVES;
            if waiting && !over_capacity && now_unix_nano.saturating_sub(front.seen_at) < PAIRING_WAIT_NANOS {
                break;
            }
            let Some(arrival) = self.arrivals.pop_front() else {
                break;
            };
            self.first_sequence += 1;
            match arrival.half {
                Waiting::Gone => {}
                Waiting::Client(client) => {
                    self.index.remove(&arrival.key);
                    if let Some(peer) = client.virtual_callee.clone() {
                        add_call(edges, arrival.key.0, &client, peer, true, false);
                    }
                }
                Waiting::Server(_) => {
                    self.index.remove(&arrival.key);
                    self.unpaired_servers += 1;
                }
            }
        }
    }

    /// Halves waiting now.
    pub fn pending(&self) -> usize {
        self.index.len()
    }

    /// Server halves that expired without a client half so far.
    pub fn unpaired_servers(&self) -> u64 {
        self.unpaired_servers
    }
}

fn add_call(
    edges: &mut EdgeTally,
    project_id: i64,
    client: &ClientHalf,
    callee: Arc<str>,
    virtual_callee: bool,
    server_error: bool,
) {
    // Calls inside one service are not edges of the map.
    if callee == client.service {
        return;
    }
    let bucket = client.start_unix_nano / EDGE_BUCKET_NANOS * EDGE_BUCKET_NANOS;
    let tally = edges.0.entry((project_id, client.service.clone(), callee, virtual_callee, bucket)).or_default();
    tally.0 += 1;
    if client.error || server_error {
        tally.1 += 1;
    }
    tally.2.add_nanos(client.duration_nanos);
}

#[cfg(test)]
mod tests {
    use sightline_model::{Resource, ResourceGroup, Scope, ScopeGroup};

    use super::*;

    const NOW: u64 = 1_800_000_000_000_000_000;

    fn span(service_kind: i32, id: u8, parent: Option<u8>, duration_ms: u64, attributes: &[(&str, &str)]) -> Span {
        let mut span = Span {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|parent| SpanId([parent; 8])),
            trace_state: String::new(),
            flags: 1,
            name: "call".into(),
            kind: service_kind,
            start_time_unix_nano: NOW,
            end_time_unix_nano: NOW + duration_ms * 1_000_000,
            attributes: Default::default(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status_code: status_code::UNSET,
            status_message: String::new(),
        };
        for (key, value) in attributes {
            span.attributes.0.insert((*key).into(), (*value).into());
        }
        span
    }

    fn batch(service: &str, spans: Vec<Span>) -> Batch<Span> {
        let mut resource = Resource::default();
        resource.attributes.0.insert("service.name".into(), service.into());
        vec![ResourceGroup {
            resource,
            scopes: vec![ScopeGroup { scope: Scope { name: "test".into(), ..Scope::default() }, items: spans }],
        }]
    }

    fn calls(edges: &EdgeTally) -> Vec<(String, String, bool, u64, u64)> {
        let rollups = EdgeTally(edges.0.clone()).into_rollups();
        let mut calls: Vec<_> = rollups
            .values()
            .map(|edge| {
                (edge.key.caller.clone(), edge.key.callee.clone(), edge.key.virtual_callee, edge.calls, edge.errors)
            })
            .collect();
        calls.sort();
        calls
    }

    #[test]
    fn halves_pair_in_either_order_and_lone_clients_name_virtual_nodes() {
        let mut pairing = CallPairing::default();
        let mut edges = EdgeTally::default();
        // web → cart: the server half first (it ends and is exported first).
        let mut failed = span(kind::SERVER, 2, Some(1), 5, &[]);
        failed.status_code = status_code::ERROR;
        pairing.observe(1, &call_halves(&batch("cart", vec![failed])), NOW, &mut edges);
        assert!(edges.is_empty());
        pairing.observe(1, &call_halves(&batch("web", vec![span(kind::CLIENT, 1, None, 8, &[])])), NOW, &mut edges);
        // cart → payments: client first; cart → cart (same service) is no edge.
        pairing.observe(
            1,
            &call_halves(&batch(
                "cart",
                vec![span(kind::CLIENT, 3, Some(2), 4, &[]), span(kind::CLIENT, 5, Some(2), 1, &[])],
            )),
            NOW,
            &mut edges,
        );
        pairing.observe(
            1,
            &call_halves(&batch("payments", vec![span(kind::SERVER, 4, Some(3), 3, &[])])),
            NOW,
            &mut edges,
        );
        pairing.observe(1, &call_halves(&batch("cart", vec![span(kind::SERVER, 6, Some(5), 1, &[])])), NOW, &mut edges);
        // An uninstrumented callee: only its peer.service says who it is.
        pairing.observe(
            1,
            &call_halves(&batch("payments", vec![span(kind::CLIENT, 9, Some(4), 2, &[("peer.service", "stripe")])])),
            NOW,
            &mut edges,
        );
        // A lone server span whose caller never reports.
        pairing.observe(
            1,
            &call_halves(&batch("cart", vec![span(kind::SERVER, 11, Some(10), 1, &[])])),
            NOW,
            &mut edges,
        );
        assert_eq!(
            calls(&edges),
            [("cart".into(), "payments".into(), false, 1, 0), ("web".into(), "cart".into(), false, 1, 1)]
        );
        assert_eq!(pairing.pending(), 2, "stripe's client half and the lone server half wait");

        pairing.expire(NOW + PAIRING_WAIT_NANOS - 1, &mut edges);
        assert_eq!(pairing.pending(), 2, "not yet");
        pairing.expire(NOW + PAIRING_WAIT_NANOS, &mut edges);
        assert_eq!(pairing.pending(), 0);
        assert_eq!(pairing.unpaired_servers(), 1);
        assert!(calls(&edges).contains(&("payments".into(), "stripe".into(), true, 1, 0)));
        let rollups = edges.into_rollups();
        let web_cart = rollups.values().find(|edge| edge.key.caller == "web").expect("edge");
        let p50 = web_cart.durations.quantile_nanos(0.5).expect("a duration");
        assert!((p50 - 8_000_000.0).abs() <= 80_000.0, "the client's 8 ms within 1 %: {p50}");
    }

    #[test]
    fn paired_halves_do_not_grow_the_ring_and_renumbered_halves_still_pair_and_expire() {
        let mut pairing = CallPairing::default();
        let mut edges = EdgeTally::default();
        // A lone client first: it holds the ring's front for the whole wait.
        let lone = span(kind::CLIENT, 1, None, 2, &[("peer.service", "stripe")]);
        pairing.observe(1, &call_halves(&batch("web", vec![lone])), NOW, &mut edges);
        // Then calls that pair at once, a thousand clients then their servers at a time.
        let pairs = 3 * COMPACT_SLACK as u64;
        for chunk_start in (0..pairs).step_by(1000) {
            let ids = chunk_start..(chunk_start + 1000).min(pairs);
            let clients = ids
                .clone()
                .map(|index| {
                    let mut client = span(kind::CLIENT, 2, None, 1, &[("peer.service", "cart")]);
                    client.span_id = SpanId((index + 1_000).to_be_bytes());
                    client
                })
                .collect();
            let servers = ids
                .map(|index| {
                    let mut server = span(kind::SERVER, 3, None, 1, &[]);
                    server.parent_span_id = Some(SpanId((index + 1_000).to_be_bytes()));
                    server
                })
                .collect();
            pairing.observe(1, &call_halves(&batch("web", clients)), NOW, &mut edges);
            pairing.observe(1, &call_halves(&batch("cart", servers)), NOW, &mut edges);
        }
        assert_eq!(pairing.pending(), 1, "only the lone client waits");
        assert!(pairing.arrivals.len() <= 2 + COMPACT_SLACK + 1000, "ring compacted: {}", pairing.arrivals.len());
        // A second lone client, then the first one's server: found through the renumbered index.
        let second = span(kind::CLIENT, 4, None, 2, &[("peer.service", "stripe")]);
        pairing.observe(1, &call_halves(&batch("web", vec![second])), NOW + 1, &mut edges);
        let late_server = span(kind::SERVER, 5, Some(1), 1, &[]);
        pairing.observe(1, &call_halves(&batch("payments", vec![late_server])), NOW + 2, &mut edges);
        assert_eq!(pairing.pending(), 1);
        pairing.expire(NOW + 1 + PAIRING_WAIT_NANOS, &mut edges);
        assert_eq!(pairing.pending(), 0);
        assert_eq!(
            calls(&edges),
            [
                ("web".into(), "cart".into(), false, pairs, 0),
                ("web".into(), "payments".into(), false, 1, 0),
                ("web".into(), "stripe".into(), true, 1, 0),
            ]
        );
    }

    #[test]
    fn projects_do_not_pair_with_each_other_and_memory_is_bounded() {
        let mut pairing = CallPairing::default();
        let mut edges = EdgeTally::default();
        pairing.observe(1, &call_halves(&batch("web", vec![span(kind::CLIENT, 1, None, 8, &[])])), NOW, &mut edges);
        pairing.observe(2, &call_halves(&batch("cart", vec![span(kind::SERVER, 2, Some(1), 5, &[])])), NOW, &mut edges);
        assert!(edges.is_empty(), "same ids in another project are another call");
        let many: Vec<Span> = (0..=MAX_PENDING_HALVES as u64)
            .map(|index| {
                let mut client = span(kind::CLIENT, 1, None, 1, &[]);
                client.span_id = SpanId(index.to_be_bytes());
                client.trace_id = TraceId([9; 16]);
                client
            })
            .collect();
        pairing.observe(1, &call_halves(&batch("web", many)), NOW, &mut edges);
        pairing.expire(NOW, &mut edges);
        assert!(pairing.pending() <= MAX_PENDING_HALVES);
    }
}
