//! The service map: `GET /p/{project}/service-map?timeRange=1h` (or the REST API's `from` /
//! `to`) draws the body of `GET /api/v1/projects/{p}/service-map`
//! (`crate::api::service_map::service_map_response`) as a server-side SVG graph (a node per
//! service, an arrow per caller → callee edge labelled with calls, error % and p95) in a
//! deterministic layered layout, followed by the same edges as a table.
//!
//! Layout ([`layout`]): a service's layer is the length of the longest call chain reaching it
//! (callers left of callees; a cycle stops growing at the node count), nodes in a layer
//! ordered by the mean row of their callers (then by name), so the same map always draws the
//! same picture.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;

use super::UiError;
use super::format::millis;
use super::layout::{Section, page};
use super::performance::{number, percent, range_select, service_url, subnav, value};
use super::session::viewer;
use crate::api::service_map::{parse_map_params, service_map_response};
use crate::server::AppState;
use crate::store::Project;
use crate::ui::{here, path_or_404};

/// Node box and grid sizes, in SVG units.
const NODE_WIDTH: f64 = 170.0;
const NODE_HEIGHT: f64 = 46.0;
const COLUMN: f64 = 400.0;
const ROW: f64 = 96.0;
const MARGIN: f64 = 20.0;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/p/{project}/service-map", get(map_page))
}

/// A node's place: (layer = column, row within the layer).
pub(crate) type Place = (usize, usize);

/// Places `nodes` (any order) given `edges` (caller, callee): see the module docs.
pub(crate) fn layout(nodes: &[&str], edges: &[(&str, &str)]) -> BTreeMap<String, Place> {
    let mut layer: BTreeMap<&str, usize> = nodes.iter().map(|node| (*node, 0)).collect();
    let cap = nodes.len().saturating_sub(1);
    // Longest path by relaxation; at most `nodes` rounds, and a cycle stops at the cap.
    for _ in 0..nodes.len() {
        let mut changed = false;
        for (caller, callee) in edges.iter().filter(|(caller, callee)| caller != callee) {
            let wanted = (layer.get(caller).copied().unwrap_or(0) + 1).min(cap);
            if let Some(current) = layer.get_mut(callee)
                && *current < wanted
            {
                *current = wanted;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // Close up layers left empty (a cycle can skip column 0).
    let used: std::collections::BTreeSet<usize> = layer.values().copied().collect();
    let compact: BTreeMap<usize, usize> = used.iter().enumerate().map(|(index, old)| (*old, index)).collect();
    for node_layer in layer.values_mut() {
        *node_layer = compact.get(node_layer).copied().unwrap_or(0);
    }
    let depth = used.len().saturating_sub(1);
    let mut places: BTreeMap<String, Place> = BTreeMap::new();
    for column in 0..=depth {
        let mut members: Vec<(f64, &str)> = layer
            .iter()
            .filter(|(_, node_layer)| **node_layer == column)
            .map(|(node, _)| {
                let rows: Vec<f64> = edges
                    .iter()
                    .filter(|(caller, callee)| callee == node && caller != node)
                    .filter_map(|(caller, _)| places.get(*caller).map(|(_, row)| *row as f64))
                    .collect();
                let mean = if rows.is_empty() { f64::MAX } else { rows.iter().sum::<f64>() / rows.len() as f64 };
                (mean, *node)
            })
            .collect();
        members.sort_by(|left, right| left.0.total_cmp(&right.0).then_with(|| left.1.cmp(right.1)));
        for (row, (_, node)) in members.iter().enumerate() {
            places.insert((*node).to_owned(), (column, row));
        }
    }
    places
}

/// Top-left corner of a place's node box.
fn corner((column, row): Place) -> (f64, f64) {
    (MARGIN + column as f64 * COLUMN, MARGIN + row as f64 * ROW)
}

/// The edge's label: `10 calls · 20.0 % errors · p95 3.1 ms`.
fn edge_label(edge: &Value) -> String {
    format!(
        "{} calls · {} errors · p95 {}",
        edge["calls"].as_u64().unwrap_or(0),
        percent(number(edge, "error_rate").map(|rate| rate * 100.0)),
        millis(number(edge, "p95_ms"))
    )
}

/// The map as an SVG graph: nodes link to their service pages (virtual, uninstrumented
/// callees are dashed and not linked), edges are arrows with their label.
pub(crate) fn graph(project: &Project, map: &Value) -> Markup {
    let empty = Vec::new();
    let nodes = map["nodes"].as_array().unwrap_or(&empty);
    let edges = map["edges"].as_array().unwrap_or(&empty);
    let names: Vec<&str> = nodes.iter().filter_map(|node| node["service"].as_str()).collect();
    let pairs: Vec<(&str, &str)> =
        edges.iter().filter_map(|edge| Some((edge["caller"].as_str()?, edge["callee"].as_str()?))).collect();
    let places = layout(&names, &pairs);
    let columns = places.values().map(|(column, _)| column + 1).max().unwrap_or(1);
    let rows = places.values().map(|(_, row)| row + 1).max().unwrap_or(1);
    let width = 2.0 * MARGIN + (columns - 1) as f64 * COLUMN + NODE_WIDTH;
    let height = 2.0 * MARGIN + (rows - 1) as f64 * ROW + NODE_HEIGHT;
    let description =
        format!("Service map: {} services, {} call edges; the table below lists the edges", names.len(), edges.len());
    html! {
        figure.chart.service-map {
            svg viewBox=(format!("0 0 {width:.0} {height:.0}")) width=(format!("{width:.0}")) role="img" aria-label=(description) {
                title { (description) }
                defs {
                    @for (id, class) in [("arrow", "arrow-head"), ("arrow-error", "arrow-head arrow-error")] {
                        marker id=(id) viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse" {
                            path d="M0 0 L10 5 L0 10 z" class=(class) {}
                        }
                    }
                }
                @for (edge, (caller, callee)) in edges.iter().zip(&pairs) {
                    @if let (Some(from), Some(to)) = (places.get(*caller), places.get(*callee)) {
                        @let (x1, y1) = corner(*from);
                        @let (x2, y2) = corner(*to);
                        @let (start_x, start_y) = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2.0);
                        @let (end_x, end_y) = (x2, y2 + NODE_HEIGHT / 2.0);
                        @let bend = ((end_x - start_x).abs() / 2.0).max(60.0);
                        @let failing = number(edge, "error_rate").unwrap_or(0.0) > 0.0;
                        g.edge.edge-error[failing] {
                            title { (caller) " → " (callee) ": " (edge_label(edge)) }
                            path marker-end=(if failing { "url(#arrow-error)" } else { "url(#arrow)" }) d=(format!("M{start_x:.1} {start_y:.1} C{:.1} {start_y:.1}, {:.1} {end_y:.1}, {end_x:.1} {end_y:.1}", start_x + bend, end_x - bend)) {}
                            text x=(format!("{:.1}", (start_x + end_x) / 2.0)) y=(format!("{:.1}", (start_y + end_y) / 2.0 - 6.0)) text-anchor="middle" class="edge-label" {
                                (edge_label(edge))
                            }
                        }
                    }
                }
                @for node in nodes {
                    @let name = node["service"].as_str().unwrap_or("");
                    @let virtual_node = node["virtual"] == true;
                    @if let Some(place) = places.get(name) {
                        @let (x, y) = corner(*place);
                        @let inner = html! {
                            rect x=(x) y=(y) width=(NODE_WIDTH) height=(NODE_HEIGHT) rx="6" {}
                            text x=(x + NODE_WIDTH / 2.0) y=(y + 19.0) text-anchor="middle" class="node-name" { (name) }
                            text x=(x + NODE_WIDTH / 2.0) y=(y + 36.0) text-anchor="middle" class="node-figures" {
                                (node["calls_in"].as_u64().unwrap_or(0)) " in · " (node["calls_out"].as_u64().unwrap_or(0)) " out"
                            }
                        };
                        @if virtual_node {
                            g.node.virtual-node { title { (name) " (not instrumented)" } (inner) }
                        } @else {
                            a.node href=(service_url(project, name)) aria-label=(format!("Service {name}")) { title { (name) } (inner) }
                        }
                    }
                }
            }
        }
    }
}

async fn map_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let slug = path_or_404(path)?;
    let project = viewer.project(&slug)?.clone();
    let now = crate::clock::now_unix_nano();
    // `timeRange` (the other pages' control) becomes the API's `from`.
    let mut api_params = params.clone();
    if let Some(range) = api_params.remove("timeRange").filter(|range| !range.is_empty()) {
        let nanos = crate::api::params::time_range_param(&HashMap::from([("timeRange".to_owned(), range)]), "1h")?;
        api_params.insert("from".into(), now.saturating_sub(nanos).to_string());
    }
    let (from, to) = parse_map_params(&api_params, now)?;
    let worker_state = state.clone();
    let project_id = project.id;
    let map = crate::api::blocking(move || service_map_response(&worker_state, project_id, from, to)).await?;
    let empty = Vec::new();
    let edges = map["edges"].as_array().unwrap_or(&empty);
    let markup = html! {
        (subnav(&project, "map"))
        form.filters method="get" aria-label="Filters" {
            (range_select(value(&params, "timeRange"), "1h"))
            button type="submit" { "Apply" }
        }
        @if edges.is_empty() { p.empty { "No calls between services in this time range." } } @else {
            (graph(&project, &map))
            table.edges {
                caption { "Calls between services" }
                thead { tr {
                    th scope="col" { "Caller" } th scope="col" { "Callee" } th scope="col" { "Calls" } th scope="col" { "Errors" }
                    th scope="col" { "Error %" } th scope="col" { "p50" } th scope="col" { "p95" } th scope="col" { "p99" }
                } }
                tbody { @for edge in edges {
                    @let caller = edge["caller"].as_str().unwrap_or("");
                    @let callee = edge["callee"].as_str().unwrap_or("");
                    tr {
                        td { a href=(service_url(&project, caller)) { (caller) } }
                        td { @if edge["virtual_callee"] == true { (callee) " " span.badge { "not instrumented" } } @else { a href=(service_url(&project, callee)) { (callee) } } }
                        td.num { (edge["calls"].as_u64().unwrap_or(0)) }
                        td.num { (edge["errors"].as_u64().unwrap_or(0)) }
                        td.num { (percent(number(edge, "error_rate").map(|rate| rate * 100.0))) }
                        td.num { (millis(number(edge, "p50_ms"))) }
                        td.num { (millis(number(edge, "p95_ms"))) }
                        td.num { (millis(number(edge, "p99_ms"))) }
                    }
                } }
            }
        }
    };
    Ok(page(&viewer, Section::Performance, Some(&project), "Service map", markup))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn layers_follow_the_longest_call_chain_and_rows_follow_callers() {
        // web → cart → payments → stripe, web → search, web → payments (a shortcut).
        let nodes = ["stripe", "payments", "web", "search", "cart"];
        let edges =
            [("web", "cart"), ("cart", "payments"), ("payments", "stripe"), ("web", "search"), ("web", "payments")];
        let places = layout(&nodes, &edges);
        let place = |name: &str| places[name];
        assert_eq!(place("web"), (0, 0));
        assert_eq!((place("cart"), place("search")), ((1, 0), (1, 1)), "same caller row: by name");
        assert_eq!(place("payments"), (2, 0), "the longest chain decides, not the shortcut");
        assert_eq!(place("stripe"), (3, 0));
        // Any input order gives the same layout.
        let mut reversed = nodes;
        reversed.reverse();
        assert_eq!(layout(&reversed, &edges), places);
    }

    #[test]
    fn cycles_and_self_calls_terminate() {
        let places = layout(&["a", "b"], &[("a", "b"), ("b", "a"), ("a", "a")]);
        assert_eq!(places.len(), 2);
        assert_eq!(places.values().map(|(column, _)| *column).min(), Some(0), "no empty first column: {places:?}");
    }

    #[test]
    fn the_graph_draws_nodes_edges_and_labels() {
        let project = Project {
            id: 1,
            slug: "shop".into(),
            name: "Shop".into(),
            retention_days: 30,
            trace_sample_rate: 1.0,
            created_at_unix_ms: 0,
            in_app_include: Vec::new(),
            in_app_exclude: Vec::new(),
            allowed_origins: Vec::new(),
            health_thresholds: crate::store::health::HealthThresholds::default(),
        };
        let map = json!({
            "nodes": [
                {"service": "cart", "virtual": false, "calls_in": 10, "calls_out": 10},
                {"service": "stripe", "virtual": true, "calls_in": 10, "calls_out": 0},
                {"service": "web", "virtual": false, "calls_in": 0, "calls_out": 10},
            ],
            "edges": [
                {"caller": "web", "callee": "cart", "calls": 10, "errors": 0, "error_rate": 0.0, "p95_ms": 12.0},
                {"caller": "cart", "callee": "stripe", "calls": 10, "errors": 2, "error_rate": 0.2, "p95_ms": 3.5},
            ],
        });
        let svg = graph(&project, &map).into_string();
        assert_eq!(svg.matches("marker-end").count(), 2, "{svg}");
        assert!(svg.contains("10 calls · 20.0 % errors · p95 3.5 ms"), "{svg}");
        assert!(svg.contains(r#"href="/p/shop/services/cart""#), "{svg}");
        assert!(!svg.contains(r#"href="/p/shop/services/stripe""#), "virtual nodes have no page");
        assert_eq!(svg.matches("edge-error").count(), 1, "only the failing edge is red");
        // web at column 0, cart at 1, stripe at 2: the viewBox spans three columns.
        assert!(svg.contains(r#"viewBox="0 0 1010 86""#), "{svg}");
    }
}
