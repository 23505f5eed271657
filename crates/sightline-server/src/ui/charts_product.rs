//! Charts of the product-analytics pages, drawn on the server: a journey funnel (SVG bars of the
//! sessions completing each step, on the scale of the sessions that started) and a web vital's
//! good / needs-improvement / poor share bar (HTML). Both carry a text alternative
//! (`aria-label` and `<title>`s); the pages put the exact figures in a table next to them.

use maud::{Markup, html};

/// Drawing width of the funnel, in SVG user units (it scales to its box).
const FUNNEL_WIDTH: f64 = 720.0;
/// Height of one funnel row.
const ROW_HEIGHT: f64 = 30.0;
/// Where the bars start (the step names are on the left) and how wide they may grow.
const BAR_LEFT: f64 = 230.0;
const BAR_SPAN: f64 = 380.0;
/// Longest step label drawn (the table below has the full name).
const MAX_LABEL_CHARS: usize = 30;

/// One step of a funnel chart.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelBar {
    /// What the row is called (the step's name, else its id).
    pub label: String,
    /// Sessions that arrived at the step (completed the previous one).
    pub entered: u64,
    /// Sessions that completed it, in order.
    pub completed: u64,
}

/// `0.667` as `66.7%`; `—` when absent or not finite.
pub fn percent(ratio: Option<f64>) -> String {
    match ratio {
        Some(value) if value.is_finite() => format!("{:.1}%", value * 100.0),
        _ => "—".into(),
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn short(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_owned()
    } else {
        let mut cut: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// A funnel of `steps` in order over `sessions` starting sessions: per row a light bar for the
/// sessions that entered the step and a solid one for those that completed it, both on the
/// scale of `sessions`, with the count and the share of all sessions written after it.
pub fn funnel(label: &str, sessions: u64, steps: &[FunnelBar]) -> Markup {
    let height = ROW_HEIGHT * steps.len().max(1) as f64;
    let width = |count: u64| ratio(count, sessions).unwrap_or(0.0).min(1.0) * BAR_SPAN;
    let summary = match steps.last() {
        Some(last) => format!(
            "{label}: {sessions} sessions started, {} completed every step ({})",
            last.completed,
            percent(ratio(last.completed, sessions))
        ),
        None => format!("{label}: no steps"),
    };
    html! {
        figure.chart.funnel {
            svg viewBox=(format!("0 0 {FUNNEL_WIDTH} {height}")) role="img" aria-label=(summary) {
                title { (summary) }
                @for (index, step) in steps.iter().enumerate() {
                    @let top = index as f64 * ROW_HEIGHT;
                    @let middle = top + ROW_HEIGHT / 2.0;
                    g.funnel-step {
                        title {
                            (step.label) ": " (step.completed) " of " (step.entered) " sessions that reached it ("
                            (percent(ratio(step.completed, step.entered))) "), " (percent(ratio(step.completed, sessions))) " of all"
                        }
                        text x="0" y=(format!("{:.1}", middle + 4.0)) class="funnel-label" { (index + 1) ". " (short(&step.label)) }
                        rect.entered x=(BAR_LEFT) y=(format!("{:.1}", top + 5.0)) width=(format!("{:.2}", width(step.entered))) height=(format!("{:.1}", ROW_HEIGHT - 10.0)) {}
                        rect.completed x=(BAR_LEFT) y=(format!("{:.1}", top + 5.0)) width=(format!("{:.2}", width(step.completed))) height=(format!("{:.1}", ROW_HEIGHT - 10.0)) {}
                        text x=(format!("{:.1}", BAR_LEFT + BAR_SPAN + 8.0)) y=(format!("{:.1}", middle + 4.0)) class="funnel-value" {
                            (step.completed) " · " (percent(ratio(step.completed, sessions)))
                        }
                    }
                }
            }
            figcaption { (summary) }
        }
    }
}

/// Shares (0..=1) of observations rated good, needs-improvement and poor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shares {
    /// Good share.
    pub good: f64,
    /// Needs-improvement share.
    pub needs_improvement: f64,
    /// Poor share.
    pub poor: f64,
}

/// A stacked bar of `shares` (green, amber, red) with the percentages as its accessible name
/// and as text under it.
pub fn rating_bar(shares: Shares) -> Markup {
    let parts = [
        ("good", "good", shares.good),
        ("needs-improvement", "needs improvement", shares.needs_improvement),
        ("poor", "poor", shares.poor),
    ];
    let text =
        parts.iter().map(|(_, name, share)| format!("{} {name}", percent(Some(*share)))).collect::<Vec<_>>().join(", ");
    html! {
        span.rating-bar role="img" aria-label=(text) title=(text) {
            @for (class, _, share) in parts {
                @if share > 0.0 {
                    span class=(format!("share rating-{class}")) style=(format!("width: {:.1}%", share.clamp(0.0, 1.0) * 100.0)) {}
                }
            }
        }
        span.rating-shares aria-hidden="true" {
            @for (class, _, share) in parts {
                span class=(format!("rating-{class}-text")) { (format!("{:.0}%", share.clamp(0.0, 1.0) * 100.0)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, entered: u64, completed: u64) -> FunnelBar {
        FunnelBar { label: label.into(), entered, completed }
    }

    #[test]
    fn funnel_bars_are_on_the_scale_of_the_starting_sessions() {
        let svg =
            funnel("Checkout", 5, &[bar("Cart", 5, 5), bar("Shipping", 5, 4), bar("Payment", 4, 2)]).into_string();
        assert_eq!(svg.matches("<rect").count(), 6, "an entered and a completed bar per step");
        // All 5 completed the cart: the full span; 2 of 5 paid: 40% of it.
        assert!(svg.contains(&format!(r#"width="{BAR_SPAN:.2}""#)), "{svg}");
        assert!(svg.contains(&format!(r#"width="{:.2}""#, BAR_SPAN * 0.4)), "{svg}");
        assert!(svg.contains("5 sessions started, 2 completed every step (40.0%)"), "{svg}");
        assert!(svg.contains("Payment: 2 of 4 sessions that reached it (50.0%), 40.0% of all"), "{svg}");
        assert!(funnel("Empty", 0, &[]).into_string().contains("no steps"));
    }

    #[test]
    fn long_step_names_are_shortened_in_the_drawing_only() {
        let name = "A step with a really rather long name indeed";
        let svg = funnel("Long", 1, &[bar(name, 1, 1)]).into_string();
        assert!(svg.contains("1. A step with a really rather l…"), "{svg}");
        assert!(svg.contains(&format!("{name}: 1 of 1")), "the tooltip keeps the whole name: {svg}");
    }

    #[test]
    fn rating_bars_show_each_share_and_say_them() {
        let html = rating_bar(Shares { good: 0.5, needs_improvement: 0.25, poor: 0.25 }).into_string();
        assert!(html.contains(r#"aria-label="50.0% good, 25.0% needs improvement, 25.0% poor""#), "{html}");
        assert!(html.contains("rating-good\" style=\"width: 50.0%"), "{html}");
        let all_good = rating_bar(Shares { good: 1.0, needs_improvement: 0.0, poor: 0.0 }).into_string();
        assert_eq!(all_good.matches("class=\"share ").count(), 1, "empty shares draw nothing: {all_good}");
        assert_eq!(percent(None), "—");
        assert_eq!(percent(Some(2.0 / 3.0)), "66.7%");
    }
}
