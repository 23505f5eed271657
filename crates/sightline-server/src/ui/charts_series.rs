//! Charts for the performance pages, drawn on the server as SVG: line charts of time series
//! (latency percentiles, throughput, CPU, memory) with gaps where a bucket has no value, and a
//! histogram of value bins (latency distribution). Each chart carries an `aria-label` summary
//! and a data table in a `<details>` as its text alternative; no script is needed.

use maud::{Markup, html};

use super::format::rfc3339_millis;

/// Width and height of a chart's drawing, in SVG user units (it scales to its box).
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 140.0;
/// Space kept above the highest value, as a fraction of the height.
const HEADROOM: f64 = 0.08;

/// One line of a [`lines`] chart.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// Legend name, e.g. `p95`.
    pub name: &'a str,
    /// CSS class of its stroke (`series-1` … `series-4`, or `series-error`).
    pub class: &'a str,
    /// `(bucket start ns, value)` oldest first; `None` leaves a gap (no data in that bucket).
    pub points: Vec<(u64, Option<f64>)>,
}

/// A line chart of `lines` over `[from, to]` (ns), values shown with `unit` (e.g.
/// `format::millis`). The y axis starts at zero and ends a little above the largest value (shown
/// at the top left); a bucket alone between gaps is drawn as a dot.
/// Empty or all-gap input draws an empty frame saying "no data".
pub fn lines(
    label: &str,
    unit: impl Fn(f64) -> String,
    from_unix_nano: u64,
    to_unix_nano: u64,
    lines: &[Line<'_>],
) -> Markup {
    let max = lines
        .iter()
        .flat_map(|line| line.points.iter().filter_map(|(_, value)| *value))
        .filter(|value| value.is_finite())
        .fold(0.0_f64, f64::max);
    let has_data = lines.iter().any(|line| line.points.iter().any(|(_, value)| value.is_some()));
    let top = if max > 0.0 { max * (1.0 + HEADROOM) } else { 1.0 };
    let span = to_unix_nano.saturating_sub(from_unix_nano).max(1) as f64;
    let x = |time: u64| (time.saturating_sub(from_unix_nano) as f64 / span * WIDTH).clamp(0.0, WIDTH);
    let y = |value: f64| HEIGHT - (value / top * HEIGHT).clamp(0.0, HEIGHT);
    let summary = if has_data {
        lines
            .iter()
            .map(|line| {
                let line_max = line.points.iter().filter_map(|(_, value)| *value).fold(f64::NAN, f64::max);
                format!("{} at most {}", line.name, if line_max.is_nan() { "—".into() } else { unit(line_max) })
            })
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        "no data".to_owned()
    };
    // The buckets of the first line name the table's rows.
    let times: Vec<u64> =
        lines.first().map(|line| line.points.iter().map(|(time, _)| *time).collect()).unwrap_or_default();
    html! {
        figure.chart.line-chart {
            div.chart-scale aria-hidden="true" { (unit(top)) }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(format!("{label}: {summary}")) preserveAspectRatio="none" {
                title { (label) }
                line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) class="axis" {}
                line x1="0" y1=(format!("{:.2}", y(top / 2.0))) x2=(WIDTH) y2=(format!("{:.2}", y(top / 2.0))) class="grid" {}
                @for line in lines {
                    @for segment in segments(&line.points) {
                        path class=(format!("series {}{}", line.class, if segment.len() == 1 { " dot" } else { "" })) vector-effect="non-scaling-stroke"
                            d=(path_data(&segment, &x, &y)) {}
                    }
                }
                @if !has_data {
                    text x=(WIDTH / 2.0) y=(HEIGHT / 2.0) text-anchor="middle" class="no-data" { "no data" }
                }
            }
            figcaption {
                span.legend {
                    @for line in lines { span class=(format!("swatch {}", line.class)) aria-hidden="true" {} " " (line.name) " " }
                }
                " " time datetime=(rfc3339_millis(from_unix_nano)) { (rfc3339_millis(from_unix_nano)) }
                " to " time datetime=(rfc3339_millis(to_unix_nano)) { (rfc3339_millis(to_unix_nano)) }
            }
            details.chart-table {
                summary { (label) " as a table" }
                table {
                    thead { tr { th scope="col" { "Bucket start" } @for line in lines { th scope="col" { (line.name) } } } }
                    tbody {
                        @for (row, time) in times.iter().enumerate() {
                            tr {
                                td { time datetime=(rfc3339_millis(*time)) { (rfc3339_millis(*time)) } }
                                @for line in lines {
                                    td.num { @match line.points.get(row).and_then(|(_, value)| *value) { Some(value) => (unit(value)), None => "—" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Runs of consecutive present values: each becomes one path (a gap breaks the line).
fn segments(points: &[(u64, Option<f64>)]) -> Vec<Vec<(u64, f64)>> {
    let mut runs: Vec<Vec<(u64, f64)>> = Vec::new();
    let mut current: Vec<(u64, f64)> = Vec::new();
    for (time, value) in points {
        match value {
            Some(value) if value.is_finite() => current.push((*time, *value)),
            _ => {
                if !current.is_empty() {
                    runs.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// SVG path data through the points; a lone point is a zero-length segment (drawn as a dot by
/// the round line cap).
fn path_data(points: &[(u64, f64)], x: &impl Fn(u64) -> f64, y: &impl Fn(f64) -> f64) -> String {
    let mut data = String::new();
    for (index, (time, value)) in points.iter().enumerate() {
        let command = if index == 0 { 'M' } else { 'L' };
        data.push_str(&format!("{command}{:.2} {:.2} ", x(*time), y(*value)));
    }
    if let [(time, value)] = points {
        data.push_str(&format!("L{:.2} {:.2}", x(*time), y(*value)));
    }
    data.trim_end().to_owned()
}

/// One bin of a [`histogram`]: `[lower, upper)` in the chart's unit and a count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Values in the bin.
    pub count: u64,
}

/// A histogram: one column per bin, in order, each with a `<title>` giving its bounds and
/// count; the text alternative is a table of the non-empty bins.
pub fn histogram(label: &str, unit: impl Fn(f64) -> String, bins: &[Bin]) -> Markup {
    let max = bins.iter().map(|bin| bin.count).max().unwrap_or(0);
    let total: u64 = bins.iter().map(|bin| bin.count).sum();
    let slot = if bins.is_empty() { WIDTH } else { WIDTH / bins.len() as f64 };
    let gap = (slot * 0.15).min(2.0);
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {}", HEIGHT + 2.0)) role="img" aria-label=(format!("{label}: {total} values in {} bins", bins.len())) preserveAspectRatio="none" {
                title { (label) }
                line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) class="axis" {}
                @for (index, bin) in bins.iter().enumerate() {
                    @let height = if max == 0 { 0.0 } else { (bin.count as f64 / max as f64) * (HEIGHT - 4.0) };
                    rect class="bar" x=(format!("{:.2}", index as f64 * slot + gap / 2.0)) y=(format!("{:.2}", HEIGHT - height))
                        width=(format!("{:.2}", (slot - gap).max(0.5))) height=(format!("{height:.2}")) {
                        title { (unit(bin.lower)) " – " (unit(bin.upper)) ": " (bin.count) }
                    }
                }
            }
            figcaption {
                (label) ": " (total) " in total"
                @if let (Some(first), Some(last)) = (bins.first(), bins.last()) { ", " (unit(first.lower)) " to " (unit(last.upper)) }
            }
            details.chart-table {
                summary { (label) " as a table" }
                table {
                    thead { tr { th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Count" } } }
                    tbody { @for bin in bins.iter().filter(|bin| bin.count > 0) {
                        tr { td.num { (unit(bin.lower)) } td.num { (unit(bin.upper)) } td.num { (bin.count) } }
                    } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000_000_000;

    #[test]
    fn gaps_split_lines_and_values_scale_to_the_largest() {
        let line = Line {
            name: "p95",
            class: "series-2",
            points: vec![(0, Some(10.0)), (MINUTE, Some(20.0)), (2 * MINUTE, None), (3 * MINUTE, Some(5.0))],
        };
        let svg = lines("Latency", |ms| format!("{ms:.0} ms"), 0, 3 * MINUTE, &[line]).into_string();
        assert_eq!(svg.matches("<path").count(), 2, "the empty bucket breaks the line: {svg}");
        // top = 20 × 1.08 = 21.6; 20 sits at 140 − 20/21.6 × 140 = 10.37; the lone point at x=720.
        assert!(svg.contains("M0.00 75.19 L240.00 10.37"), "{svg}");
        assert!(svg.contains("M720.00 107.59 L720.00 107.59"), "a lone point is a dot: {svg}");
        assert!(svg.contains("Latency: p95 at most 20 ms"), "{svg}");
        assert!(svg.contains("<td class=\"num\">—</td>"), "the table shows the gap: {svg}");
    }

    #[test]
    fn an_empty_chart_says_no_data() {
        let svg = lines("Throughput", |value| format!("{value}"), 0, MINUTE, &[]).into_string();
        assert!(svg.contains("Throughput: no data"), "{svg}");
        assert_eq!(svg.matches("<path").count(), 0);
    }

    #[test]
    fn histogram_columns_follow_the_counts() {
        let bins = [
            Bin { lower: 1.0, upper: 2.0, count: 4 },
            Bin { lower: 2.0, upper: 4.0, count: 0 },
            Bin { lower: 4.0, upper: 8.0, count: 2 },
        ];
        let svg = histogram("Latency distribution", |ms| format!("{ms} ms"), &bins).into_string();
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains(r#"height="136.00""#) && svg.contains(r#"height="68.00""#), "{svg}");
        assert!(svg.contains("4 ms – 8 ms: 2"), "{svg}");
        assert!(svg.contains("6 in total, 1 ms to 8 ms"), "{svg}");
        assert_eq!(svg.matches("<tr><td").count(), 2, "the table lists the non-empty bins: {svg}");
    }
}
