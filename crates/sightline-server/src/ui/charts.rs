//! Charts drawn on the server as SVG: a column chart of counts per time bucket (issue
//! occurrences) and horizontal share bars (tag breakdowns). No script is needed to read them;
//! each bar has a `<title>` (the browser's tooltip, read by screen readers) with its value.

use maud::{Markup, html};

use super::format::rfc3339_millis;

/// Width and height of a column chart's drawing, in SVG user units (it scales to its box).
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 120.0;

/// A column chart of `(bucket start ns, count)` points, oldest first, labelled `label` for
/// assistive technology. Empty input draws an empty frame saying "no data".
pub fn columns(label: &str, points: &[(u64, u64)]) -> Markup {
    let max = points.iter().map(|(_, count)| *count).max().unwrap_or(0);
    let total: u64 = points.iter().map(|(_, count)| *count).sum();
    let slot = if points.is_empty() { WIDTH } else { WIDTH / points.len() as f64 };
    let gap = (slot * 0.15).min(2.0);
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {}", HEIGHT + 2.0)) role="img" aria-label=(format!("{label}: {total} in total, at most {max} per bucket")) preserveAspectRatio="none" {
                title { (label) }
                line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) class="axis" {}
                @for (index, (start, count)) in points.iter().enumerate() {
                    @let height = if max == 0 { 0.0 } else { (*count as f64 / max as f64) * (HEIGHT - 4.0) };
                    rect class="bar" x=(format!("{:.2}", index as f64 * slot + gap / 2.0)) y=(format!("{:.2}", HEIGHT - height))
                        width=(format!("{:.2}", (slot - gap).max(0.5))) height=(format!("{height:.2}")) {
                        title { (rfc3339_millis(*start)) ": " (count) }
                    }
                }
            }
            figcaption {
                (label) ": " (total) " in total"
                @if let (Some((first, _)), Some((last, _))) = (points.first(), points.last()) {
                    ", " time datetime=(rfc3339_millis(*first)) { (rfc3339_millis(*first)) } " to " time datetime=(rfc3339_millis(*last)) { (rfc3339_millis(*last)) }
                }
            }
        }
    }
}

/// Horizontal bars of `(value, count)` shares, most frequent first, as a definition list.
pub fn shares(label: &str, values: &[(String, u64)]) -> Markup {
    let total: u64 = values.iter().map(|(_, count)| *count).sum();
    html! {
        section.shares aria-label=(label) {
            h3 { (label) }
            ul {
                @for (value, count) in values {
                    @let percent = if total == 0 { 0.0 } else { *count as f64 * 100.0 / total as f64 };
                    li {
                        span.share-label { (value) }
                        span.share-bar style=(format!("--share: {percent:.1}%")) aria-hidden="true" {}
                        span.share-count { (count) " (" (format!("{percent:.0}")) "%)" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_scale_to_the_largest_bucket() {
        let svg = columns("Events per hour", &[(0, 2), (3_600_000_000_000, 4), (7_200_000_000_000, 0)]).into_string();
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains(r#"height="116.00""#), "the largest bar is full height: {svg}");
        assert!(svg.contains(r#"height="58.00""#), "half the largest is half height: {svg}");
        assert!(svg.contains("6 in total"));
        assert!(columns("Empty", &[]).into_string().contains("0 in total"));
    }

    #[test]
    fn shares_are_percent_of_the_total() {
        let html = shares("browser", &[("Chrome".into(), 3), ("Firefox".into(), 1)]).into_string();
        assert!(html.contains("--share: 75.0%"), "{html}");
        assert!(html.contains("Firefox"));
    }
}
