//! Core Web Vitals per page: which vital a value is, Google's thresholds, which OTel metrics are
//! web vitals, and the p75 per page over `performance` events and metric points together.
//!
//! - **Thresholds** (web.dev, rated at the 75th percentile of page loads): LCP good ≤ 2.5 s,
//!   poor > 4 s · INP ≤ 200 ms / > 500 ms · CLS ≤ 0.1 / > 0.25 · FCP ≤ 1.8 s / > 3 s ·
//!   TTFB ≤ 0.8 s / > 1.8 s · FID (legacy, replaced by INP in 2024) ≤ 100 ms / > 300 ms.
//!   A value equal to the good threshold is good; above the poor threshold is poor.
//! - **Metric names**: a metric is a web vital when a dot/underscore-separated part of its name
//!   contains `vital` and what follows spells a vital, abbreviated or in full, in any case:
//!   `web_vitals.lcp`, `browser.web_vital.lcp`, `webvitals.LCP`,
//!   `web_vitals.largest_contentful_paint`; a trailing `ms` / `s` part names the unit when the
//!   metric has none.
//! - **Units**: durations are reported in ms. A metric's UCUM unit `s`, `ms`, `us` or `ns` is
//!   converted; an empty unit is taken as ms (what the `web-vitals` library reports); other
//!   units are not guessed at and the metric is ignored. CLS is a unitless score.
//! - **Points**: gauge points count one observation each; explicit-bucket histograms add their
//!   bucket counts over the range (cumulative streams differenced point to point, as the series
//!   API does). Sums, exponential histograms and summaries are ignored (reported as such).
//! - **Page**: `page.path`, else the path of `page.url` for events; for metric points the first
//!   of the attributes `page.path`, `url.path`, `http.route`, `page.route`, or the path of
//!   `page.url` / `url.full`. Observations without a page are reported under page `null`.
//! - **Percentile**: see [`super::percentile`]: nearest rank over exact values, linear
//!   interpolation inside histogram buckets.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};
use sightline_model::metric::temporality;
use sightline_model::{MetricKind, MetricPoint, PointValue};

use super::percentile::Distribution;
use crate::api::series::histogram_increases;
use crate::store::StoredMetricPoint;
use crate::store::analytics::PerformanceSample;

/// The percentile web vitals are rated at.
pub(crate) const RATED_QUANTILE: f64 = 0.75;

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the point marks a stream as stale and has no value.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// Point attributes naming a page (a path or route), in order of preference.
const PAGE_PATH_ATTRIBUTES: [&str; 4] = ["page.path", "url.path", "http.route", "page.route"];
/// Point attributes holding a full URL the page path is taken from.
const PAGE_URL_ATTRIBUTES: [&str; 2] = ["page.url", "url.full"];

/// A web vital.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Vital {
    /// Largest Contentful Paint (ms).
    Lcp,
    /// Interaction to Next Paint (ms).
    Inp,
    /// Cumulative Layout Shift (unitless).
    Cls,
    /// First Contentful Paint (ms).
    Fcp,
    /// Time to First Byte (ms).
    Ttfb,
    /// First Input Delay (ms), legacy.
    Fid,
}

impl Vital {
    /// Every vital.
    pub(crate) const ALL: [Vital; 6] = [Vital::Lcp, Vital::Inp, Vital::Cls, Vital::Fcp, Vital::Ttfb, Vital::Fid];

    /// The short lowercase name used in responses (`lcp`, ...).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Vital::Lcp => "lcp",
            Vital::Inp => "inp",
            Vital::Cls => "cls",
            Vital::Fcp => "fcp",
            Vital::Ttfb => "ttfb",
            Vital::Fid => "fid",
        }
    }

    /// The unit values are reported in: `ms`, or empty for CLS.
    pub(crate) fn unit(self) -> &'static str {
        if self == Vital::Cls { "" } else { "ms" }
    }

    /// True for FID, which INP replaced; it is reported apart.
    pub(crate) fn is_legacy(self) -> bool {
        self == Vital::Fid
    }

    /// `(good up to and including, poor above)` in the report unit.
    pub(crate) fn thresholds(self) -> (f64, f64) {
        match self {
            Vital::Lcp => (2_500.0, 4_000.0),
            Vital::Inp => (200.0, 500.0),
            Vital::Cls => (0.1, 0.25),
            Vital::Fcp => (1_800.0, 3_000.0),
            Vital::Ttfb => (800.0, 1_800.0),
            Vital::Fid => (100.0, 300.0),
        }
    }

    /// Rates a value (usually the p75) by [`Vital::thresholds`].
    pub(crate) fn rate(self, value: f64) -> Rating {
        let (good, poor) = self.thresholds();
        if value <= good {
            Rating::Good
        } else if value > poor {
            Rating::Poor
        } else {
            Rating::NeedsImprovement
        }
    }

    /// The value of this vital in a `performance` event.
    fn of_sample(self, sample: &PerformanceSample) -> Option<f64> {
        match self {
            Vital::Lcp => sample.lcp_ms,
            Vital::Inp => sample.inp_ms,
            Vital::Cls => sample.cls,
            Vital::Fcp => sample.fcp_ms,
            Vital::Ttfb => sample.ttfb_ms,
            Vital::Fid => sample.fid_ms,
        }
    }
}

/// Google's rating of a web vital.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Rating {
    /// At or under the good threshold.
    Good,
    /// Between the thresholds.
    NeedsImprovement,
    /// Over the poor threshold.
    Poor,
}

/// A metric recognized as a web vital by its name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct VitalMetricName {
    /// The vital.
    pub vital: Vital,
    /// Factor to ms implied by a trailing `ms` / `s` part of the name, if any.
    pub name_scale: Option<f64>,
}

/// Recognizes a web-vital metric name (see the module docs); `None` for other metrics.
pub(crate) fn vital_of_metric_name(name: &str) -> Option<VitalMetricName> {
    let lowercase = name.to_ascii_lowercase();
    let parts: Vec<&str> =
        lowercase.split(|character: char| !character.is_ascii_alphanumeric()).filter(|part| !part.is_empty()).collect();
    let vital_part = parts.iter().rposition(|part| part.contains("vital"))?;
    let mut tail = &parts[vital_part + 1..];
    let mut name_scale = None;
    if let Some((last, rest)) = tail.split_last() {
        let scale = match *last {
            "ms" | "milliseconds" => Some(1.0),
            "s" | "seconds" => Some(1_000.0),
            _ => None,
        };
        if scale.is_some() {
            name_scale = scale;
            tail = rest;
        }
    }
    let vital = match tail.concat().as_str() {
        "lcp" | "largestcontentfulpaint" => Vital::Lcp,
        "inp" | "interactiontonextpaint" => Vital::Inp,
        "cls" | "cumulativelayoutshift" => Vital::Cls,
        "fcp" | "firstcontentfulpaint" => Vital::Fcp,
        "ttfb" | "timetofirstbyte" => Vital::Ttfb,
        "fid" | "firstinputdelay" => Vital::Fid,
        _ => return None,
    };
    Some(VitalMetricName { vital, name_scale })
}

/// The factor turning a metric's values into the vital's report unit, from its UCUM unit (and
/// the name's unit when the metric has none); `None` for a unit that cannot be converted.
pub(crate) fn report_scale(metric: VitalMetricName, unit: &str) -> Option<f64> {
    let unit = unit.trim();
    if metric.vital == Vital::Cls {
        // A score: `1`, empty, or an annotation such as `{score}`.
        return (unit.is_empty() || unit == "1" || (unit.starts_with('{') && unit.ends_with('}'))).then_some(1.0);
    }
    match unit {
        "ms" => Some(1.0),
        "s" => Some(1_000.0),
        "us" => Some(1e-3),
        "ns" => Some(1e-6),
        "" | "1" => Some(metric.name_scale.unwrap_or(1.0)),
        _ => None,
    }
}

/// The path of a URL (`https://shop.example.com/cart?x=1` → `/cart`; a bare `/cart#top` →
/// `/cart`); `None` for text that is neither an absolute URL nor a path.
pub(crate) fn path_of_url(url: &str) -> Option<String> {
    let after_scheme = match url.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(slash) => &rest[slash..],
            None => "/",
        },
        None if url.starts_with('/') => url,
        None => return None,
    };
    let path = after_scheme.split(['?', '#']).next().unwrap_or("/");
    Some(if path.is_empty() { "/".to_owned() } else { path.to_owned() })
}

/// The page of a `performance` event: `page.path`, else the path of `page.url`.
pub(crate) fn page_of_sample(sample: &PerformanceSample) -> Option<String> {
    sample.page_path.clone().or_else(|| sample.page_url.as_deref().and_then(path_of_url))
}

/// The page of a metric point from its attributes (see the module docs).
pub(crate) fn page_of_attributes(attributes: &Map<String, Value>) -> Option<String> {
    let text = |key: &str| attributes.get(key).and_then(Value::as_str).filter(|text| !text.is_empty());
    PAGE_PATH_ATTRIBUTES
        .iter()
        .find_map(|key| text(key).map(str::to_owned))
        .or_else(|| PAGE_URL_ATTRIBUTES.iter().find_map(|key| text(key).and_then(path_of_url)))
}

/// The time range metric points are read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetricWindow {
    /// Observations at or after this count (ns).
    pub from_unix_nano: u64,
    /// Observations at or before this count (ns).
    pub to_unix_nano: u64,
    /// Every stored point from this time on was read (ns); earlier than `from` so cumulative
    /// streams have a point to difference against.
    pub complete_from_unix_nano: u64,
}

impl MetricWindow {
    fn contains(&self, time_unix_nano: u64) -> bool {
        (self.from_unix_nano..=self.to_unix_nano).contains(&time_unix_nano)
    }
}

/// Observations of one vital on one page.
#[derive(Debug, Clone, Default)]
struct VitalObservations {
    distribution: Distribution,
    event_samples: u64,
    metric_samples: u64,
}

/// The p75 of one vital with its rating.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct VitalReport {
    /// 75th percentile, in `unit`.
    pub p75: f64,
    /// `ms`, or empty for CLS.
    pub unit: &'static str,
    /// Google's rating of the p75.
    pub rating: Rating,
    /// Observations behind it.
    pub samples: u64,
    /// Of those, from `performance` events.
    pub event_samples: u64,
    /// Of those, from metric points (histogram observations or gauge points).
    pub metric_samples: u64,
    /// How the observations themselves rate, as shares of `samples`.
    pub shares: RatingShares,
}

/// Shares (0..=1, summing to 1) of a vital's observations rated good, needs-improvement and
/// poor by [`Vital::thresholds`] (histogram buckets spread evenly, see [`super::percentile`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct RatingShares {
    /// At or under the good threshold.
    pub good: f64,
    /// Between the thresholds.
    pub needs_improvement: f64,
    /// Over the poor threshold.
    pub poor: f64,
}

impl RatingShares {
    /// The shares of `distribution` for `vital`; all zero without observations.
    fn of(vital: Vital, distribution: &Distribution) -> Self {
        let (good_up_to, poor_above) = vital.thresholds();
        let good = distribution.share_at_or_below(good_up_to).unwrap_or(0.0);
        let not_poor = distribution.share_at_or_below(poor_above).unwrap_or(0.0).max(good);
        let poor = if distribution.count() == 0 { 0.0 } else { 1.0 - not_poor };
        Self { good, needs_improvement: not_poor - good, poor }
    }
}

/// The vitals of one page (or of all pages).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct VitalsReport {
    /// Current vitals by key (`lcp`, `inp`, `cls`, `fcp`, `ttfb`); absent without observations.
    pub vitals: BTreeMap<&'static str, VitalReport>,
    /// Legacy vitals (`fid`), reported apart.
    pub legacy: BTreeMap<&'static str, VitalReport>,
}

/// One page's vitals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PageReport {
    /// The page path; `null` for observations without a page.
    pub page: Option<String>,
    /// Its vitals.
    #[serde(flatten)]
    pub report: VitalsReport,
}

/// Web vitals per page, gathered from events and metric points.
#[derive(Debug, Clone, Default)]
pub(crate) struct VitalsByPage {
    pages: BTreeMap<Option<String>, BTreeMap<Vital, VitalObservations>>,
}

impl VitalsByPage {
    fn observations(&mut self, page: Option<String>, vital: Vital) -> &mut VitalObservations {
        self.pages.entry(page).or_default().entry(vital).or_default()
    }

    /// Adds the vitals of `performance` events, only those of `page_filter` when given.
    pub(crate) fn add_performance_samples(&mut self, samples: &[PerformanceSample], page_filter: Option<&str>) {
        for sample in samples {
            let page = page_of_sample(sample);
            if page_filter.is_some_and(|wanted| page.as_deref() != Some(wanted)) {
                continue;
            }
            for vital in Vital::ALL {
                if let Some(value) = vital.of_sample(sample).filter(|value| value.is_finite() && *value >= 0.0) {
                    let observations = self.observations(page.clone(), vital);
                    observations.distribution.add_sample(value);
                    observations.event_samples += 1;
                }
            }
        }
    }

    /// Adds the points of one web-vital metric (values times `scale` give the report unit),
    /// only those of `page_filter` when given. Returns the observations added and the metric
    /// types that were ignored.
    pub(crate) fn add_metric_points(
        &mut self,
        vital: Vital,
        scale: f64,
        points: &[StoredMetricPoint],
        window: MetricWindow,
        page_filter: Option<&str>,
    ) -> (u64, BTreeSet<&'static str>) {
        let mut added = 0u64;
        let mut ignored = BTreeSet::new();
        for (kind, stream) in split_streams(points) {
            let page = stream.first().and_then(|point| page_of_attributes(&point.attributes.0));
            if page_filter.is_some_and(|wanted| page.as_deref() != Some(wanted)) {
                continue;
            }
            match kind {
                MetricKind::Gauge => {
                    for point in stream.iter().filter(|point| window.contains(point.time_unix_nano)) {
                        let PointValue::Number { value } = &point.value else { continue };
                        if point.flags & FLAG_NO_RECORDED_VALUE != 0 {
                            continue;
                        }
                        let value = value.as_f64() * scale;
                        if value.is_finite() && value >= 0.0 {
                            let observations = self.observations(page.clone(), vital);
                            observations.distribution.add_sample(value);
                            observations.metric_samples += 1;
                            added += 1;
                        }
                    }
                }
                MetricKind::Histogram { aggregation_temporality } => {
                    let cumulative = aggregation_temporality != temporality::DELTA;
                    let increases = histogram_increases(&stream, cumulative, window.complete_from_unix_nano);
                    for increase in increases.iter().filter(|increase| window.contains(increase.time_unix_nano)) {
                        let buckets: Vec<(f64, u64)> =
                            increase.buckets.iter().map(|(upper, count)| (upper * scale, *count)).collect();
                        let observations = self.observations(page.clone(), vital);
                        observations.distribution.add_buckets(&buckets);
                        observations.metric_samples += increase.count;
                        added += increase.count;
                    }
                }
                other => {
                    ignored.insert(other.type_name());
                }
            }
        }
        (added, ignored)
    }

    /// Per page reports, the pages with the most observations of one vital first (ties by
    /// page), at most `max_pages`; the report over all pages; and whether pages were cut off.
    pub(crate) fn report(&self, max_pages: usize) -> (Vec<PageReport>, VitalsReport, bool) {
        let mut overall: BTreeMap<Vital, VitalObservations> = BTreeMap::new();
        let mut pages: Vec<(u64, PageReport)> = Vec::with_capacity(self.pages.len());
        for (page, vitals) in &self.pages {
            for (vital, observations) in vitals {
                let total = overall.entry(*vital).or_default();
                total.distribution.merge(&observations.distribution);
                total.event_samples += observations.event_samples;
                total.metric_samples += observations.metric_samples;
            }
            let most_samples = vitals.values().map(|observations| observations.distribution.count()).max().unwrap_or(0);
            pages.push((most_samples, PageReport { page: page.clone(), report: report_of(vitals) }));
        }
        pages.sort_by(|(left_samples, left), (right_samples, right)| {
            Reverse(left_samples).cmp(&Reverse(right_samples)).then_with(|| left.page.cmp(&right.page))
        });
        let truncated = pages.len() > max_pages;
        pages.truncate(max_pages);
        (pages.into_iter().map(|(_, page)| page).collect(), report_of(&overall), truncated)
    }
}

fn report_of(vitals: &BTreeMap<Vital, VitalObservations>) -> VitalsReport {
    let mut report = VitalsReport::default();
    for (vital, observations) in vitals {
        let Some(p75) = observations.distribution.quantile(RATED_QUANTILE) else { continue };
        let vital_report = VitalReport {
            p75,
            unit: vital.unit(),
            rating: vital.rate(p75),
            samples: observations.event_samples + observations.metric_samples,
            event_samples: observations.event_samples,
            metric_samples: observations.metric_samples,
            shares: RatingShares::of(*vital, &observations.distribution),
        };
        let section = if vital.is_legacy() { &mut report.legacy } else { &mut report.vitals };
        section.insert(vital.key(), vital_report);
    }
    report
}

/// What tells streams apart: the type (as JSON text), resource attributes and point attributes.
type StreamIdentity<'a> = (String, &'a Map<String, Value>, &'a Map<String, Value>);

/// Points split into streams (same type, resource and point attributes), each in time order.
fn split_streams(points: &[StoredMetricPoint]) -> Vec<(MetricKind, Vec<&MetricPoint>)> {
    let mut index_by_identity: HashMap<StreamIdentity<'_>, usize> = HashMap::new();
    let mut streams: Vec<(MetricKind, Vec<&MetricPoint>)> = Vec::new();
    for stored in points {
        // serde_json maps compare regardless of key order; the kind is keyed by its JSON text.
        let kind_key = serde_json::to_string(&stored.kind).unwrap_or_default();
        let identity = (kind_key, &stored.resource.attributes.0, &stored.point.attributes.0);
        let index = *index_by_identity.entry(identity).or_insert_with(|| {
            streams.push((stored.kind, Vec::new()));
            streams.len() - 1
        });
        streams[index].1.push(&stored.point);
    }
    for (_, stream) in &mut streams {
        stream.sort_by_key(|point| point.time_unix_nano);
    }
    streams
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sightline_model::metric::NumberValue;
    use sightline_model::{Attributes, Resource};

    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_700_000_000 * SECOND;
    const WINDOW: MetricWindow = MetricWindow {
        from_unix_nano: T0,
        to_unix_nano: T0 + 3_600 * SECOND,
        complete_from_unix_nano: T0 - 300 * SECOND,
    };

    #[test]
    fn ratings_follow_the_web_dev_thresholds() {
        assert_eq!(Vital::Lcp.rate(2_500.0), Rating::Good);
        assert_eq!(Vital::Lcp.rate(2_501.0), Rating::NeedsImprovement);
        assert_eq!(Vital::Lcp.rate(4_000.0), Rating::NeedsImprovement);
        assert_eq!(Vital::Lcp.rate(4_001.0), Rating::Poor);
        assert_eq!(Vital::Inp.rate(200.0), Rating::Good);
        assert_eq!(Vital::Inp.rate(500.1), Rating::Poor);
        assert_eq!(Vital::Cls.rate(0.1), Rating::Good);
        assert_eq!(Vital::Cls.rate(0.2), Rating::NeedsImprovement);
        assert_eq!(Vital::Cls.rate(0.26), Rating::Poor);
        assert_eq!(Vital::Fcp.rate(1_800.0), Rating::Good);
        assert_eq!(Vital::Fcp.rate(3_000.5), Rating::Poor);
        assert_eq!(Vital::Ttfb.rate(800.0), Rating::Good);
        assert_eq!(Vital::Ttfb.rate(1_000.0), Rating::NeedsImprovement);
        assert_eq!(Vital::Fid.rate(100.0), Rating::Good);
        assert_eq!(Vital::Fid.rate(301.0), Rating::Poor);
        assert_eq!(serde_json::to_value(Rating::NeedsImprovement).ok(), Some(json!("needs-improvement")));
    }

    #[test]
    fn metric_names_are_recognized() {
        let vital = |name: &str| vital_of_metric_name(name).map(|found| found.vital);
        assert_eq!(vital("web_vitals.lcp"), Some(Vital::Lcp));
        assert_eq!(vital("browser.web_vital.lcp"), Some(Vital::Lcp));
        assert_eq!(vital("webvitals.LCP"), Some(Vital::Lcp));
        assert_eq!(vital("webVitals.INP"), Some(Vital::Inp));
        assert_eq!(vital("web_vitals.largest_contentful_paint"), Some(Vital::Lcp));
        assert_eq!(vital("web-vitals/cumulative-layout-shift"), Some(Vital::Cls));
        assert_eq!(vital("web_vitals.ttfb"), Some(Vital::Ttfb));
        assert_eq!(vital("web_vitals.fid"), Some(Vital::Fid));
        assert_eq!(vital("lcp"), None, "no 'vital' part");
        assert_eq!(vital("http.server.request.duration"), None);
        assert_eq!(vital("web_vitals.lcp.count"), None);
        assert_eq!(vital_of_metric_name("web_vitals.lcp_seconds").map(|found| found.name_scale), Some(Some(1_000.0)));
        assert_eq!(vital_of_metric_name("web_vitals.fcp.ms").map(|found| found.name_scale), Some(Some(1.0)));
    }

    #[test]
    fn units_convert_to_milliseconds() {
        let lcp = VitalMetricName { vital: Vital::Lcp, name_scale: None };
        assert_eq!(report_scale(lcp, "ms"), Some(1.0));
        assert_eq!(report_scale(lcp, "s"), Some(1_000.0));
        assert_eq!(report_scale(lcp, "us"), Some(1e-3));
        assert_eq!(report_scale(lcp, ""), Some(1.0));
        assert_eq!(report_scale(VitalMetricName { name_scale: Some(1_000.0), ..lcp }, ""), Some(1_000.0));
        assert_eq!(report_scale(lcp, "By"), None);
        let cls = VitalMetricName { vital: Vital::Cls, name_scale: None };
        assert_eq!(report_scale(cls, ""), Some(1.0));
        assert_eq!(report_scale(cls, "{score}"), Some(1.0));
        assert_eq!(report_scale(cls, "ms"), None);
    }

    #[test]
    fn pages_come_from_paths_urls_and_attributes() {
        assert_eq!(path_of_url("https://shop.example.com/cart?x=1#top").as_deref(), Some("/cart"));
        assert_eq!(path_of_url("https://shop.example.com").as_deref(), Some("/"));
        assert_eq!(path_of_url("/checkout?step=2").as_deref(), Some("/checkout"));
        assert_eq!(path_of_url("checkout"), None);
        let sample =
            PerformanceSample { page_url: Some("https://shop.example.com/p/1?ref=a".into()), ..Default::default() };
        assert_eq!(page_of_sample(&sample).as_deref(), Some("/p/1"));
        let attributes = json!({"http.route": "/orders/{id}", "url.path": "/orders/7"});
        assert_eq!(page_of_attributes(attributes.as_object().expect("object")).as_deref(), Some("/orders/7"));
        let attributes = json!({"url.full": "https://a.example/b?c"});
        assert_eq!(page_of_attributes(attributes.as_object().expect("object")).as_deref(), Some("/b"));
        assert_eq!(page_of_attributes(&Map::new()), None);
    }

    fn lcp_sample(page: &str, lcp_ms: f64) -> PerformanceSample {
        PerformanceSample { page_path: Some(page.into()), lcp_ms: Some(lcp_ms), ..Default::default() }
    }

    #[test]
    fn events_give_a_nearest_rank_p75_per_page() {
        let mut vitals = VitalsByPage::default();
        let mut samples: Vec<PerformanceSample> =
            [1_000.0, 2_000.0, 3_000.0, 5_000.0].iter().map(|lcp| lcp_sample("/checkout", *lcp)).collect();
        samples.push(PerformanceSample { fid_ms: Some(50.0), cls: Some(0.3), ..lcp_sample("/", 1_200.0) });
        vitals.add_performance_samples(&samples, None);
        let (pages, overall, truncated) = vitals.report(10);
        assert!(!truncated);
        assert_eq!(pages[0].page.as_deref(), Some("/checkout"));
        let lcp = &pages[0].report.vitals["lcp"];
        assert_eq!((lcp.p75, lcp.rating, lcp.samples, lcp.unit), (3_000.0, Rating::NeedsImprovement, 4, "ms"));
        // 1 s and 2 s are good (≤ 2.5 s), 3 s needs improvement, 5 s is poor (> 4 s).
        assert_eq!(lcp.shares, RatingShares { good: 0.5, needs_improvement: 0.25, poor: 0.25 });
        assert_eq!(pages[1].report.legacy["fid"].p75, 50.0);
        assert!(!pages[1].report.vitals.contains_key("fid"));
        assert_eq!(pages[1].report.vitals["cls"].rating, Rating::Poor);
        assert_eq!(overall.vitals["lcp"].samples, 5);
        // Overall p75 of [1000, 1200, 2000, 3000, 5000]: rank ⌈3.75⌉ = 4.
        assert_eq!(overall.vitals["lcp"].p75, 3_000.0);

        let mut filtered = VitalsByPage::default();
        filtered.add_performance_samples(&samples, Some("/"));
        let (pages, _, _) = filtered.report(10);
        assert_eq!(pages.len(), 1);
        let (_, _, truncated) = vitals.report(1);
        assert!(truncated);
    }

    fn point(kind: MetricKind, attributes: Value, time: u64, value: PointValue) -> StoredMetricPoint {
        StoredMetricPoint {
            kind,
            service_name: "web".into(),
            resource: Resource::default(),
            point: MetricPoint {
                attributes: Attributes(attributes.as_object().expect("object").clone()),
                start_time_unix_nano: T0 - 60 * SECOND,
                time_unix_nano: time,
                flags: 0,
                value,
                exemplars: Vec::new(),
            },
        }
    }

    fn histogram(count: u64, bucket_counts: Vec<u64>) -> PointValue {
        PointValue::Histogram {
            count,
            sum: None,
            min: None,
            max: None,
            bucket_counts,
            explicit_bounds: vec![1.0, 2.5, 4.0],
        }
    }

    #[test]
    fn histograms_in_seconds_are_differenced_scaled_and_interpolated() {
        let kind = MetricKind::Histogram { aggregation_temporality: temporality::CUMULATIVE };
        let page = json!({"page.path": "/checkout"});
        // Cumulative: before the window 4 loads; in the window 40 more: 10 ≤ 1 s, 20 in
        // (1, 2.5] s, 10 in (2.5, 4] s.
        let points = vec![
            point(kind, page.clone(), T0 - 30 * SECOND, histogram(4, vec![4, 0, 0, 0])),
            point(kind, page.clone(), T0 + 60 * SECOND, histogram(24, vec![14, 10, 0, 0])),
            point(kind, page, T0 + 120 * SECOND, histogram(44, vec![14, 20, 10, 0])),
        ];
        let mut vitals = VitalsByPage::default();
        let (added, ignored) = vitals.add_metric_points(Vital::Lcp, 1_000.0, &points, WINDOW, None);
        assert_eq!((added, ignored.len()), (40, 0));
        let (pages, _, _) = vitals.report(10);
        let lcp = &pages[0].report.vitals["lcp"];
        // Rank 30 of 40 is the top of (1000, 2500] ms.
        assert_eq!((lcp.p75, lcp.rating, lcp.metric_samples), (2_500.0, Rating::Good, 40));
    }

    #[test]
    fn gauges_count_one_observation_per_point_and_merge_with_events() {
        let page = json!({"url.path": "/checkout"});
        let gauge = |time: u64, value: f64| {
            point(MetricKind::Gauge, page.clone(), time, PointValue::Number { value: NumberValue::Double(value) })
        };
        let points = vec![gauge(T0 - SECOND, 9.0), gauge(T0 + SECOND, 180.0), gauge(T0 + 2 * SECOND, 600.0)];
        let mut vitals = VitalsByPage::default();
        let (added, _) = vitals.add_metric_points(Vital::Inp, 1.0, &points, WINDOW, Some("/checkout"));
        assert_eq!(added, 2, "the point before the window is left out");
        let events = [PerformanceSample { inp_ms: Some(150.0), ..lcp_sample("/checkout", 1.0) }];
        vitals.add_performance_samples(&events, None);
        let (pages, _, _) = vitals.report(10);
        let inp = &pages[0].report.vitals["inp"];
        // [150, 180, 600]: rank ⌈2.25⌉ = 3.
        assert_eq!((inp.p75, inp.rating, inp.event_samples, inp.metric_samples), (600.0, Rating::Poor, 1, 2));
    }

    #[test]
    fn sums_and_summaries_are_ignored() {
        let sum = MetricKind::Sum { aggregation_temporality: temporality::CUMULATIVE, is_monotonic: true };
        let points = vec![point(sum, json!({}), T0 + SECOND, PointValue::Number { value: NumberValue::Int(3) })];
        let mut vitals = VitalsByPage::default();
        let (added, ignored) = vitals.add_metric_points(Vital::Lcp, 1.0, &points, WINDOW, None);
        assert_eq!(added, 0);
        assert_eq!(ignored.into_iter().collect::<Vec<_>>(), ["sum"]);
    }
}
