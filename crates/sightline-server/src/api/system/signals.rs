//! Which OTLP metrics make up system health, and how one host's points of one metric become a
//! signal's series and current value.
//!
//! Sources: OpenTelemetry semantic conventions "System metrics" (`system.*`), "Process metrics"
//! (`process.*`), "JVM runtime metrics" (`jvm.*`) and "Node.js runtime metrics" (`nodejs.*`),
//! plus the pre-1.0 instrumentation names (`process.runtime.*`, attribute `state` instead of
//! `cpu.mode` / `system.memory.state`, `direction` instead of `network.io.direction`).
//!
//! A [`Signal`] is one number the page shows (process CPU in cores, memory in bytes, ...). Its
//! first [`Source`] metric that the service sent is used. The per-type math (counter rates
//! across cumulative and delta temporality and resets, gauge averages, up-down counters' latest
//! values) is [`compute_series`]'s; this file only picks the metric, splits its streams by an
//! attribute (`group_by`), keeps the groups that count (e.g. `state=used`, CPU modes other than
//! idle) and adds them up (or takes the largest, for filesystems).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sightline_model::MetricKind;
use sightline_model::metric::temporality;

use super::super::series::{BucketGrid, SeriesPoint, SeriesRequest, compute_series};
use crate::store::StoredMetricPoint;

/// How the groups of one metric combine into the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combine {
    /// Add the groups (CPU modes, memory pools, threads by state).
    Sum,
    /// The largest group (the fullest filesystem).
    Max,
}

/// Keeps only the groups whose value of an attribute (the first of `keys` that the stream has)
/// is listed in `include` (any value when empty) and not in `exclude`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupFilter {
    /// The attribute, under its current and older names.
    pub keys: &'static [&'static str],
    /// Values that count; empty: every value not excluded.
    pub include: &'static [&'static str],
    /// Values that never count (`idle` CPU time).
    pub exclude: &'static [&'static str],
    /// Whether streams without any of `keys` count.
    pub keep_missing: bool,
}

/// One metric that can provide a signal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source {
    /// The metric's name.
    pub metric: &'static str,
    /// Point attributes splitting the streams before filtering and combining.
    pub group_by: &'static [&'static str],
    /// Which groups count.
    pub filter: Option<GroupFilter>,
    /// How groups add up.
    pub combine: Combine,
    /// Read a monotonic sum as a level (its latest value), not as a rate: `process.uptime` is a
    /// gauge in semconv but some SDKs send it as a counter.
    pub as_level: bool,
}

/// One number of the system health view.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signal {
    /// Where it goes: a top-level field, or a field of `network_bytes_per_s` / `runtime`.
    pub section: Option<&'static str>,
    /// The field name, with its unit.
    pub field: &'static str,
    /// Candidate metrics, preferred first.
    pub sources: &'static [Source],
}

const CPU_MODE_KEYS: &[&str] = &["cpu.mode", "process.cpu.state", "system.cpu.state", "state"];
const MEMORY_STATE_KEYS: &[&str] = &["system.memory.state", "state"];
const FILESYSTEM_STATE_KEYS: &[&str] = &["system.filesystem.state", "state"];
const FILESYSTEM_GROUP_KEYS: &[&str] =
    &["system.device", "device", "system.filesystem.mountpoint", "mountpoint", "system.filesystem.state", "state"];
const DIRECTION_KEYS: &[&str] = &["network.io.direction", "system.network.direction", "direction"];

const fn source(metric: &'static str) -> Source {
    Source { metric, group_by: &[], filter: None, combine: Combine::Sum, as_level: false }
}

const fn by_cpu_mode(metric: &'static str, exclude: &'static [&'static str]) -> Source {
    Source {
        metric,
        group_by: CPU_MODE_KEYS,
        filter: Some(GroupFilter { keys: CPU_MODE_KEYS, include: &[], exclude, keep_missing: true }),
        combine: Combine::Sum,
        as_level: false,
    }
}

const fn used_memory(metric: &'static str) -> Source {
    Source {
        metric,
        group_by: MEMORY_STATE_KEYS,
        filter: Some(GroupFilter { keys: MEMORY_STATE_KEYS, include: &["used"], exclude: &[], keep_missing: false }),
        combine: Combine::Sum,
        as_level: false,
    }
}

const fn network(direction: &'static [&'static str]) -> Source {
    Source {
        metric: "system.network.io",
        group_by: DIRECTION_KEYS,
        filter: Some(GroupFilter { keys: DIRECTION_KEYS, include: direction, exclude: &[], keep_missing: false }),
        combine: Combine::Sum,
        as_level: false,
    }
}

/// Every signal, in response order. Units: CPU in cores (CPU-seconds per second) or as a
/// fraction 0..=1 of the host's (or the JVM's) CPUs, memory in bytes, time in seconds, network
/// in bytes per second.
pub(crate) const SIGNALS: &[Signal] = &[
    // process.cpu.time: counter, s, by cpu.mode; its rate is the cores the process keeps busy.
    Signal { section: None, field: "cpu_cores", sources: &[by_cpu_mode("process.cpu.time", &[])] },
    // process.cpu.utilization: gauge, 1, by cpu.mode (0..1 of all the host's CPUs).
    Signal { section: None, field: "cpu_utilization", sources: &[by_cpu_mode("process.cpu.utilization", &[])] },
    // system.cpu.time: counter, s, per CPU and mode; idle time is not use.
    Signal { section: None, field: "system_cpu_cores", sources: &[by_cpu_mode("system.cpu.time", &["idle"])] },
    // system.cpu.utilization: gauge per CPU and mode; averaged over CPUs, non-idle modes added.
    Signal {
        section: None,
        field: "system_cpu_utilization",
        sources: &[by_cpu_mode("system.cpu.utilization", &["idle"])],
    },
    // process.memory.usage: up-down counter, By (resident set size).
    Signal { section: None, field: "memory_bytes", sources: &[source("process.memory.usage")] },
    // process.memory.virtual: up-down counter, By.
    Signal { section: None, field: "virtual_memory_bytes", sources: &[source("process.memory.virtual")] },
    // system.memory.usage / .utilization: by system.memory.state; "used" is what counts.
    Signal { section: None, field: "system_memory_bytes", sources: &[used_memory("system.memory.usage")] },
    Signal { section: None, field: "memory_utilization", sources: &[used_memory("system.memory.utilization")] },
    // process.uptime: gauge, s.
    Signal { section: None, field: "uptime_s", sources: &[Source { as_level: true, ..source("process.uptime") }] },
    // system.filesystem.utilization: gauge, 1, per device / mountpoint and state: the fullest.
    Signal {
        section: None,
        field: "filesystem_utilization",
        sources: &[Source {
            metric: "system.filesystem.utilization",
            group_by: FILESYSTEM_GROUP_KEYS,
            filter: Some(GroupFilter {
                keys: FILESYSTEM_STATE_KEYS,
                include: &["used"],
                exclude: &[],
                keep_missing: true,
            }),
            combine: Combine::Max,
            as_level: false,
        }],
    },
    // system.filesystem.usage: up-down counter, By, per device / mountpoint and state: used
    // bytes of every filesystem together.
    Signal {
        section: None,
        field: "filesystem_used_bytes",
        sources: &[Source {
            metric: "system.filesystem.usage",
            group_by: FILESYSTEM_GROUP_KEYS,
            filter: Some(GroupFilter {
                keys: FILESYSTEM_STATE_KEYS,
                include: &["used"],
                exclude: &[],
                keep_missing: false,
            }),
            combine: Combine::Sum,
            as_level: false,
        }],
    },
    // system.network.io: counter, By, by network.io.direction; rate is bytes per second.
    Signal { section: Some("network_bytes_per_s"), field: "transmit", sources: &[network(&["transmit"])] },
    Signal { section: Some("network_bytes_per_s"), field: "receive", sources: &[network(&["receive"])] },
    // JVM (semconv "JVM runtime metrics"; old: process.runtime.jvm.*).
    Signal {
        section: Some("runtime"),
        field: "jvm_memory_used_bytes",
        sources: &[source("jvm.memory.used"), source("process.runtime.jvm.memory.usage")],
    },
    Signal {
        section: Some("runtime"),
        field: "jvm_cpu_utilization",
        sources: &[source("jvm.cpu.recent_utilization"), source("process.runtime.jvm.cpu.utilization")],
    },
    Signal {
        section: Some("runtime"),
        field: "jvm_threads",
        sources: &[source("jvm.thread.count"), source("process.runtime.jvm.threads.count")],
    },
    // Node.js (semconv "Node.js runtime metrics"): event loop delay, s.
    Signal {
        section: Some("runtime"),
        field: "nodejs_eventloop_delay_p99_s",
        sources: &[source("nodejs.eventloop.delay.p99")],
    },
    Signal {
        section: Some("runtime"),
        field: "nodejs_eventloop_delay_mean_s",
        sources: &[source("nodejs.eventloop.delay.mean")],
    },
];

/// One signal of one host: its series and its current value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SignalValues {
    /// (bucket start ns, value), oldest first; only buckets with data.
    pub series: Vec<(u64, f64)>,
    /// The current value (see [`compute_signal`]); `None` when nothing was reported.
    pub current: Option<f64>,
}

/// Computes one signal from the points of its source metric that one host sent (any order).
///
/// The series is the per-bucket value on `grid`. The current value is, for gauges, up-down
/// counters and cumulative counters, the same math on the host's latest report only: the last
/// value of gauges (streams of one export share a timestamp), the rate between the last two
/// points of counters. Delta counters have no previous point to measure an interval from, so
/// their current value is the newest bucket's rate.
pub(crate) fn compute_signal(
    source: &Source,
    points: &[StoredMetricPoint],
    grid: &BucketGrid,
    complete_from_unix_nano: u64,
) -> Option<SignalValues> {
    let newest_kind = latest_kind(points)?;
    let converted: Vec<StoredMetricPoint>;
    let (kind, points) = if source.as_level && matches!(newest_kind, MetricKind::Sum { is_monotonic: true, .. }) {
        // A level sent as a counter: read its values as gauge values.
        converted = points
            .iter()
            .filter(|stored| stored.kind == newest_kind)
            .map(|stored| StoredMetricPoint { kind: MetricKind::Gauge, ..stored.clone() })
            .collect();
        (MetricKind::Gauge, converted.as_slice())
    } else {
        (newest_kind, points)
    };
    let request = SeriesRequest {
        grid: *grid,
        group_by: source.group_by.iter().map(|key| (*key).to_owned()).collect(),
        stat: None,
        complete_from_unix_nano,
    };
    let series = combined(source, &kind, points, &request);
    let is_delta_counter = matches!(
        kind,
        MetricKind::Sum { aggregation_temporality, is_monotonic: true } if aggregation_temporality == temporality::DELTA
    );
    let current = if is_delta_counter {
        series.last().map(|(_, value)| *value)
    } else {
        let latest_unix_nano =
            points.iter().filter(|stored| stored.kind == kind).map(|stored| stored.point.time_unix_nano).max()?;
        // One one-second bucket at the latest report; earlier points still serve counters as
        // the previous point.
        let latest_grid = BucketGrid::new(latest_unix_nano, latest_unix_nano, 1_000_000_000).ok()?;
        let latest_request = SeriesRequest { grid: latest_grid, ..request };
        combined(source, &kind, points, &latest_request).last().map(|(_, value)| *value)
    };
    if series.is_empty() && current.is_none() {
        return None;
    }
    Some(SignalValues { series, current })
}

/// The kind of the newest point: a name sent with several types over time shows the latest.
fn latest_kind(points: &[StoredMetricPoint]) -> Option<MetricKind> {
    points.iter().max_by_key(|stored| stored.point.time_unix_nano).map(|stored| stored.kind)
}

/// The series of each group that passes the filter, combined bucket by bucket.
fn combined(
    source: &Source,
    kind: &MetricKind,
    points: &[StoredMetricPoint],
    request: &SeriesRequest,
) -> Vec<(u64, f64)> {
    let result = compute_series(kind, points, request);
    let mut buckets: BTreeMap<u64, f64> = BTreeMap::new();
    for series in result.series.iter().filter(|series| passes(source.filter.as_ref(), &series.group)) {
        for point in &series.points {
            let SeriesPoint::Value { time_unix_nano, value } = point else {
                continue;
            };
            buckets
                .entry(*time_unix_nano)
                .and_modify(|total| match source.combine {
                    Combine::Sum => *total += value,
                    Combine::Max => *total = total.max(*value),
                })
                .or_insert(*value);
        }
    }
    buckets.into_iter().collect()
}

fn passes(filter: Option<&GroupFilter>, group: &Map<String, Value>) -> bool {
    let Some(filter) = filter else {
        return true;
    };
    let value = filter.keys.iter().find_map(|key| group.get(*key).and_then(Value::as_str));
    match value {
        None => filter.keep_missing,
        Some(value) => {
            (filter.include.is_empty() || filter.include.contains(&value)) && !filter.exclude.contains(&value)
        }
    }
}

#[cfg(test)]
mod tests {
    use sightline_model::metric::NumberValue;
    use sightline_model::{Attributes, MetricPoint, PointValue, Resource};

    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_700_000_000 * SECOND;
    const CUMULATIVE_COUNTER: MetricKind =
        MetricKind::Sum { aggregation_temporality: temporality::CUMULATIVE, is_monotonic: true };
    const DELTA_COUNTER: MetricKind =
        MetricKind::Sum { aggregation_temporality: temporality::DELTA, is_monotonic: true };

    fn point(kind: MetricKind, labels: &[(&str, &str)], start: u64, time: u64, value: f64) -> StoredMetricPoint {
        let attributes =
            labels.iter().map(|(key, value)| ((*key).to_owned(), Value::String((*value).to_owned()))).collect();
        StoredMetricPoint {
            kind,
            service_name: "api".into(),
            resource: Resource::default(),
            point: MetricPoint {
                attributes: Attributes(attributes),
                start_time_unix_nano: start,
                time_unix_nano: time,
                flags: 0,
                value: PointValue::Number { value: NumberValue::Double(value) },
                exemplars: Vec::new(),
            },
        }
    }

    fn grid(seconds: u64, step_seconds: u64) -> BucketGrid {
        BucketGrid::new(T0, T0 + seconds * SECOND, step_seconds * SECOND).expect("grid")
    }

    fn signal(field: &str) -> &'static Source {
        &SIGNALS.iter().find(|signal| signal.field == field).expect("signal").sources[0]
    }

    fn assert_close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("a value");
        assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
    }

    #[test]
    fn cpu_time_rate_adds_modes_and_survives_a_restart() {
        // user +3 s and system +1 s per 10 s: 0.4 cores; then the process restarts.
        let mut points = Vec::new();
        for (index, seconds) in [0u64, 10, 20].iter().enumerate() {
            let index = index as f64;
            points.push(point(CUMULATIVE_COUNTER, &[("cpu.mode", "user")], 1, T0 + seconds * SECOND, 3.0 * index));
            points.push(point(CUMULATIVE_COUNTER, &[("cpu.mode", "system")], 1, T0 + seconds * SECOND, index));
        }
        // Restart at T0+25 s (new start time, lower value): 2 s of user time in 5 s.
        points.push(point(CUMULATIVE_COUNTER, &[("cpu.mode", "user")], T0 + 25 * SECOND, T0 + 30 * SECOND, 2.0));
        let values = compute_signal(signal("cpu_cores"), &points, &grid(30, 10), T0).expect("signal");
        let rates: Vec<f64> = values.series.iter().map(|(_, value)| *value).collect();
        assert_eq!(
            values.series.iter().map(|(time, _)| *time).collect::<Vec<_>>(),
            vec![T0 + 10 * SECOND, T0 + 20 * SECOND, T0 + 30 * SECOND]
        );
        assert_close(Some(rates[0]), 0.4);
        assert_close(Some(rates[1]), 0.4);
        // The restarted stream counts its new value over the 10 s since its previous point.
        assert_close(Some(rates[2]), 0.2);
        assert_close(values.current, 0.2);
    }

    #[test]
    fn delta_counter_current_is_the_newest_buckets_rate() {
        let points = vec![
            point(DELTA_COUNTER, &[("network.io.direction", "transmit")], T0, T0 + 10 * SECOND, 500.0),
            point(DELTA_COUNTER, &[("network.io.direction", "receive")], T0, T0 + 10 * SECOND, 9_999.0),
            point(DELTA_COUNTER, &[("direction", "transmit")], T0 + 10 * SECOND, T0 + 20 * SECOND, 1_000.0),
        ];
        let values = compute_signal(signal("transmit"), &points, &grid(20, 10), T0).expect("signal");
        assert_eq!(values.series, vec![(T0 + 10 * SECOND, 50.0), (T0 + 20 * SECOND, 100.0)]);
        assert_close(values.current, 100.0);
    }

    #[test]
    fn gauges_average_per_bucket_and_report_the_last_value() {
        let points = vec![
            point(MetricKind::Gauge, &[("system.memory.state", "used")], 0, T0, 0.5),
            point(MetricKind::Gauge, &[("system.memory.state", "free")], 0, T0, 0.5),
            point(MetricKind::Gauge, &[("system.memory.state", "used")], 0, T0 + 8 * SECOND, 0.6),
            point(MetricKind::Gauge, &[("system.memory.state", "free")], 0, T0 + 8 * SECOND, 0.4),
        ];
        let values = compute_signal(signal("memory_utilization"), &points, &grid(10, 10), T0).expect("signal");
        assert_eq!(values.series.len(), 1);
        assert_close(Some(values.series[0].1), 0.55);
        assert_close(values.current, 0.6);
        // The old attribute name counts the same.
        let old_names = vec![point(MetricKind::Gauge, &[("state", "used")], 0, T0, 0.25)];
        let values = compute_signal(signal("memory_utilization"), &old_names, &grid(10, 10), T0).expect("signal");
        assert_close(values.current, 0.25);
    }

    #[test]
    fn system_cpu_utilization_skips_idle_and_averages_cpus() {
        let points = vec![
            point(MetricKind::Gauge, &[("cpu.mode", "user"), ("cpu.logical_number", "0")], 0, T0, 0.2),
            point(MetricKind::Gauge, &[("cpu.mode", "user"), ("cpu.logical_number", "1")], 0, T0, 0.4),
            point(MetricKind::Gauge, &[("cpu.mode", "system"), ("cpu.logical_number", "0")], 0, T0, 0.1),
            point(MetricKind::Gauge, &[("cpu.mode", "idle"), ("cpu.logical_number", "0")], 0, T0, 0.7),
        ];
        let values = compute_signal(signal("system_cpu_utilization"), &points, &grid(10, 10), T0).expect("signal");
        assert_close(values.current, 0.3 + 0.1);
    }

    #[test]
    fn filesystem_takes_the_fullest_used_mountpoint() {
        let points = vec![
            point(
                MetricKind::Gauge,
                &[("system.filesystem.mountpoint", "/"), ("system.filesystem.state", "used")],
                0,
                T0,
                0.3,
            ),
            point(
                MetricKind::Gauge,
                &[("system.filesystem.mountpoint", "/"), ("system.filesystem.state", "free")],
                0,
                T0,
                0.7,
            ),
            point(
                MetricKind::Gauge,
                &[("system.filesystem.mountpoint", "/data"), ("system.filesystem.state", "used")],
                0,
                T0,
                0.9,
            ),
        ];
        let values = compute_signal(signal("filesystem_utilization"), &points, &grid(10, 10), T0).expect("signal");
        assert_close(values.current, 0.9);

        let usage_kind = MetricKind::Sum { aggregation_temporality: temporality::CUMULATIVE, is_monotonic: false };
        let usage = vec![
            point(usage_kind, &[("system.device", "sda1"), ("system.filesystem.state", "used")], 1, T0, 300.0),
            point(usage_kind, &[("system.device", "sda1"), ("system.filesystem.state", "free")], 1, T0, 700.0),
            point(usage_kind, &[("system.device", "sdb1"), ("system.filesystem.state", "used")], 1, T0, 50.0),
        ];
        let values = compute_signal(signal("filesystem_used_bytes"), &usage, &grid(10, 10), T0).expect("signal");
        assert_close(values.current, 350.0);
    }

    #[test]
    fn uptime_sent_as_a_counter_is_a_level_and_absent_metrics_give_nothing() {
        let points = vec![
            point(CUMULATIVE_COUNTER, &[], 1, T0, 100.0),
            point(CUMULATIVE_COUNTER, &[], 1, T0 + 10 * SECOND, 110.0),
        ];
        let values = compute_signal(signal("uptime_s"), &points, &grid(10, 10), T0).expect("signal");
        assert_eq!(values.series, vec![(T0, 100.0), (T0 + 10 * SECOND, 110.0)]);
        assert_close(values.current, 110.0);
        assert_eq!(compute_signal(signal("uptime_s"), &[], &grid(10, 10), T0), None);
        // Network points without a direction cannot be split: not reported, rather than zero.
        let undirected = vec![point(DELTA_COUNTER, &[], T0, T0 + 10 * SECOND, 5.0)];
        assert_eq!(compute_signal(signal("transmit"), &undirected, &grid(10, 10), T0), None);
    }
}
