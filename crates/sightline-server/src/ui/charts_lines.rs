//! Line charts drawn on the server as SVG for time series (the metrics explorer): one line per
//! group on a shared time axis, a legend naming each line with its latest value, and the same
//! numbers as a table for readers who cannot see the chart. No script is needed.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::format::rfc3339_millis;

/// Drawing size in SVG user units (the chart scales to its box, keeping its proportions).
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 240.0;
/// Plot area inside the drawing: room for the value labels on the left, times below.
const PLOT_LEFT: f64 = 64.0;
const PLOT_RIGHT: f64 = 750.0;
const PLOT_TOP: f64 = 10.0;
const PLOT_BOTTOM: f64 = 210.0;
/// Points drawn as dots too (beyond, dots would hide the lines).
const MAX_DOTS: usize = 600;
/// Line colours (Tableau 10); after ten, lines repeat them dashed.
const PALETTE: [&str; 10] =
    ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#7f7f7f"];

/// One line: its legend label and `(bucket start ns, value)` points, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct LineSeries {
    /// What the line is (the group's `key=value` pairs, or the metric name).
    pub label: String,
    /// Points in time order; buckets without data are absent (the line breaks there).
    pub points: Vec<(u64, f64)>,
}

/// The axes of one chart: the time range and the bucket width, and the values' unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineAxes<'a> {
    /// Start of the range, ns since the epoch.
    pub from_unix_nano: u64,
    /// End of the range, ns since the epoch.
    pub to_unix_nano: u64,
    /// Bucket width, ns: consecutive points further apart than this are not joined.
    pub step_nanos: u64,
    /// Unit shown after values (UCUM, e.g. `ms`, `By`, `{request}/s`); may be empty.
    pub unit: &'a str,
}

/// A value with about three significant digits: `0.0123`, `4.56`, `78.9`, `1234`.
pub fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

fn colour(index: usize) -> (&'static str, Option<&'static str>) {
    let dash = if (index / PALETTE.len()) % 2 == 1 { Some("6 3") } else { None };
    (PALETTE[index % PALETTE.len()], dash)
}

/// The SVG path of one line: `M x y L x y ...`, starting anew after a gap longer than a step.
fn path_of(points: &[(u64, f64)], axes: &LineAxes<'_>, to_x: impl Fn(u64) -> f64, to_y: impl Fn(f64) -> f64) -> String {
    let mut path = String::new();
    let mut previous: Option<u64> = None;
    for (time, value) in points.iter().filter(|(_, value)| value.is_finite()) {
        let joined = previous.is_some_and(|before| time.saturating_sub(before) <= axes.step_nanos);
        path.push_str(&format!("{}{:.1} {:.1} ", if joined { "L" } else { "M" }, to_x(*time), to_y(*value)));
        previous = Some(*time);
    }
    path.trim_end().to_owned()
}

/// A line chart of `series` labelled `label`, with a legend and a table of the values. Empty
/// input (or only empty series) draws the frame saying "no data".
pub fn lines(label: &str, axes: &LineAxes<'_>, series: &[LineSeries]) -> Markup {
    let values =
        || series.iter().flat_map(|line| line.points.iter().map(|(_, value)| *value)).filter(|v| v.is_finite());
    let highest = values().fold(f64::NEG_INFINITY, f64::max);
    let lowest = values().fold(f64::INFINITY, f64::min).min(0.0);
    let has_data = highest.is_finite();
    let (lowest, highest) = if !has_data {
        (0.0, 1.0)
    } else if highest <= lowest {
        (lowest, lowest + 1.0)
    } else {
        (lowest, highest)
    };
    let span_nanos = axes.to_unix_nano.saturating_sub(axes.from_unix_nano).max(1) as f64;
    let to_x = |time: u64| {
        PLOT_LEFT + (time.saturating_sub(axes.from_unix_nano) as f64 / span_nanos).min(1.0) * (PLOT_RIGHT - PLOT_LEFT)
    };
    let to_y = |value: f64| PLOT_BOTTOM - (value - lowest) / (highest - lowest) * (PLOT_BOTTOM - PLOT_TOP);
    let total_points: usize = series.iter().map(|line| line.points.len()).sum();
    let unit = if axes.unit.is_empty() { String::new() } else { format!(" {}", axes.unit) };
    let middle_unix_nano = axes.from_unix_nano + (axes.to_unix_nano.saturating_sub(axes.from_unix_nano)) / 2;
    let summary = if has_data {
        format!(
            "{label}: {} lines, values from {}{unit} to {}{unit}",
            series.len(),
            format_value(lowest),
            format_value(highest)
        )
    } else {
        format!("{label}: no data in this range")
    };
    // Rows of the table alternative: every bucket that has a value in some line.
    let mut rows: BTreeMap<u64, Vec<Option<f64>>> = BTreeMap::new();
    for (index, line) in series.iter().enumerate() {
        for (time, value) in &line.points {
            rows.entry(*time).or_insert_with(|| vec![None; series.len()])[index] = Some(*value);
        }
    }
    html! {
        figure.line-chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(summary) {
                title { (summary) }
                @for fraction in [0.0, 0.5, 1.0] {
                    @let value = lowest + (highest - lowest) * fraction;
                    @let y = to_y(value);
                    line.grid x1=(PLOT_LEFT) x2=(PLOT_RIGHT) y1=(format!("{y:.1}")) y2=(format!("{y:.1}")) {}
                    text.tick x=(PLOT_LEFT - 6.0) y=(format!("{:.1}", y + 4.0)) text-anchor="end" { (format_value(value)) }
                }
                @for (time, anchor) in [(axes.from_unix_nano, "start"), (middle_unix_nano, "middle"), (axes.to_unix_nano, "end")] {
                    text.tick x=(format!("{:.1}", to_x(time))) y=(PLOT_BOTTOM + 20.0) text-anchor=(anchor) { (clock_label(time)) }
                }
                @if !has_data {
                    text.no-data x=(WIDTH / 2.0) y=(HEIGHT / 2.0) text-anchor="middle" { "No data in this range" }
                }
                @for (index, line) in series.iter().enumerate() {
                    @let (stroke, dash) = colour(index);
                    g.series {
                        title { (line.label) }
                        path d=(path_of(&line.points, axes, to_x, to_y)) fill="none" stroke=(stroke) stroke-width="2" stroke-dasharray=[dash] {}
                        @if total_points <= MAX_DOTS {
                            @for (time, value) in line.points.iter().filter(|(_, value)| value.is_finite()) {
                                circle cx=(format!("{:.1}", to_x(*time))) cy=(format!("{:.1}", to_y(*value))) r="2.5" fill=(stroke) {
                                    title { (line.label) " at " (rfc3339_millis(*time)) ": " (format_value(*value)) (unit) }
                                }
                            }
                        }
                    }
                }
            }
            figcaption {
                ul.legend aria-label="Legend" {
                    @for (index, line) in series.iter().enumerate() {
                        @let (stroke, dash) = colour(index);
                        li {
                            span.swatch aria-hidden="true" style=(format!("border-top: 3px {} {stroke}", if dash.is_some() { "dashed" } else { "solid" })) {}
                            span.legend-label { (line.label) }
                            @if let Some((_, last)) = line.points.last() { " " span.legend-value { "latest " (format_value(*last)) (unit) } }
                        }
                    }
                }
            }
            details.chart-table {
                summary { "Table of values" }
                table {
                    caption.visually-hidden { (label) " per bucket" }
                    thead { tr { th scope="col" { "Bucket start" } @for line in series { th scope="col" { (line.label) } } } }
                    tbody {
                        @for (time, cells) in &rows {
                            tr {
                                th scope="row" { time datetime=(rfc3339_millis(*time)) { (rfc3339_millis(*time)) } }
                                @for cell in cells { td.num { @if let Some(value) = cell { (format_value(*value)) } @else { "—" } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `HH:MM` (UTC) for an axis label, or the date too when the range is long (`12-01 10:00`).
fn clock_label(unix_nano: u64) -> String {
    let rfc3339 = rfc3339_millis(unix_nano);
    // `2026-12-01T10:00:00.000Z`: characters 5..10 are the month and day, 11..16 the time.
    match (rfc3339.get(5..10), rfc3339.get(11..16)) {
        (Some(day), Some(clock)) => format!("{day} {clock} UTC"),
        _ => rfc3339,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000_000_000;

    fn axes() -> LineAxes<'static> {
        LineAxes { from_unix_nano: 0, to_unix_nano: 10 * MINUTE, step_nanos: MINUTE, unit: "ms" }
    }

    #[test]
    fn lines_scale_to_the_largest_value_and_break_at_gaps() {
        let series = vec![
            LineSeries { label: "route=/a".into(), points: vec![(0, 10.0), (MINUTE, 20.0), (5 * MINUTE, 5.0)] },
            LineSeries { label: "route=/b".into(), points: vec![(10 * MINUTE, 40.0)] },
        ];
        let svg = lines("Latency", &axes(), &series).into_string();
        // x: 64 + t/10min * 686; y: 210 - v/40 * 200.
        assert!(
            svg.contains(r#"d="M64.0 160.0 L132.6 110.0 M407.0 185.0""#),
            "a gap of 4 buckets breaks the line: {svg}"
        );
        assert!(svg.contains(r#"d="M750.0 10.0""#), "the largest value is at the top: {svg}");
        assert!(svg.contains("route=/b") && svg.contains("latest 40.0 ms"), "legend: {svg}");
        assert!(svg.contains("2 lines, values from 0 ms to 40.0 ms"), "text alternative: {svg}");
        // The table has one row per bucket with a value, and a dash where a line has none.
        assert_eq!(svg.matches("<th scope=\"row\">").count(), 4, "{svg}");
        assert!(svg.contains("—"));
    }

    #[test]
    fn empty_series_draw_an_empty_frame() {
        let svg = lines("Requests", &axes(), &[]).into_string();
        assert!(svg.contains("No data in this range"));
        assert!(svg.contains("Requests: no data in this range"));
    }

    #[test]
    fn values_keep_about_three_digits() {
        assert_eq!(format_value(1234.5), "1234");
        assert_eq!(format_value(78.94), "78.9");
        assert_eq!(format_value(4.567), "4.57");
        assert_eq!(format_value(0.01234), "0.012");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(clock_label(0), "01-01 00:00 UTC");
    }
}
