//! System health of a service: `GET /p/{project}/services/{service}/system?timeRange=1h&host=`
//! shows per host the latest CPU, memory, uptime, filesystem, network and runtime numbers and a
//! chart of each over the range, from the body of
//! `GET /api/v1/projects/{p}/services/{s}/system` (`crate::api::system::system_response`).
//! Only what the service reported is shown; a missing number means "not reported".

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::{Map, Value};

use super::UiError;
use super::charts_series::{Line, lines};
use super::format::duration;
use super::layout::{Section, page};
use super::performance::{range_select, service_url, subnav, value};
use super::session::viewer;
use crate::api::system::{parse_params, system_response};
use crate::server::AppState;
use crate::ui::here;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/p/{project}/services/{service}/system", get(system_page))
}

/// A readable name for a field of the system body.
fn label(field: &str) -> String {
    match field {
        "cpu_cores" => "Process CPU (cores)".into(),
        "cpu_utilization" => "Process CPU".into(),
        "system_cpu_cores" => "Host CPU (cores)".into(),
        "system_cpu_utilization" => "Host CPU".into(),
        "memory_bytes" => "Process memory".into(),
        "virtual_memory_bytes" => "Virtual memory".into(),
        "system_memory_bytes" => "Host memory used".into(),
        "memory_utilization" => "Host memory".into(),
        "uptime_s" => "Uptime".into(),
        "filesystem_utilization" => "Filesystem".into(),
        "filesystem_used_bytes" => "Filesystem used".into(),
        "network_bytes_per_s" => "Network".into(),
        other => other.replace('_', " "),
    }
}

/// Formats a value of `field` by the unit in its name (see `api::system`): fractions as
/// percent, bytes in binary units, cores, seconds as durations.
pub(crate) fn format_value(field: &str, value: f64) -> String {
    if field.ends_with("_utilization") {
        format!("{:.1} %", value * 100.0)
    } else if field.ends_with("_bytes") || field.ends_with("_bytes_per_s") || field == "transmit" || field == "receive"
    {
        let per_second = if field.ends_with("_bytes") { "" } else { "/s" };
        let units = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut scaled = value;
        let mut unit = 0;
        while scaled.abs() >= 1024.0 && unit + 1 < units.len() {
            scaled /= 1024.0;
            unit += 1;
        }
        let digits = if unit == 0 { 0 } else { 1 };
        format!("{scaled:.digits$} {}{per_second}", units[unit])
    } else if field.ends_with("_cores") {
        format!("{value:.2} cores")
    } else if field.ends_with("_s") {
        duration((value.max(0.0) * 1e9) as u64)
    } else {
        format!("{value:.0}")
    }
}

/// `(time, value)` points of a series array.
fn points(series: &Value) -> Vec<(u64, Option<f64>)> {
    series
        .as_array()
        .map(|points| {
            points
                .iter()
                .map(|point| (point["time_unix_nano"].as_u64().unwrap_or(0), point["value"].as_f64()))
                .collect()
        })
        .unwrap_or_default()
}

/// One host's figures and charts.
fn host_section(host: &Value, from: u64, to: u64) -> Markup {
    let name = host["host"].as_str().unwrap_or("unknown");
    let empty = Map::new();
    let current = host["current"].as_object().unwrap_or(&empty);
    let series = host["series"].as_object().unwrap_or(&empty);
    // (label, unit field, lines)
    let mut charts: Vec<(String, String, Vec<Line<'_>>)> = Vec::new();
    for (field, value) in series {
        match value {
            Value::Array(_) => charts.push((
                label(field),
                field.clone(),
                vec![Line { name: "per bucket", class: "series-1", points: points(value) }],
            )),
            Value::Object(inner) if field == "network_bytes_per_s" => charts.push((
                label(field),
                "transmit".into(),
                inner
                    .iter()
                    .enumerate()
                    .map(|(index, (direction, points_value))| Line {
                        name: direction.as_str(),
                        class: if index == 0 { "series-1" } else { "series-2" },
                        points: points(points_value),
                    })
                    .collect(),
            )),
            Value::Object(inner) => {
                for (sub_field, points_value) in inner {
                    charts.push((
                        label(sub_field),
                        sub_field.clone(),
                        vec![Line { name: "per bucket", class: "series-1", points: points(points_value) }],
                    ));
                }
            }
            _ => {}
        }
    }
    html! {
        section.card aria-labelledby=(format!("host-{name}")) {
            h2 id=(format!("host-{name}")) { "Host " (name) }
            dl.figures {
                @for (field, value) in current {
                    @match value {
                        Value::Object(inner) => {
                            @for (sub_field, sub_value) in inner {
                                div { dt { (label(field)) " " (sub_field.replace('_', " ")) } dd { (sub_value.as_f64().map_or_else(|| "—".into(), |number| format_value(sub_field, number))) } }
                            }
                        }
                        _ => { div { dt { (label(field)) } dd { (value.as_f64().map_or_else(|| "—".into(), |number| format_value(field, number))) } } }
                    }
                }
            }
            div.chart-grid {
                @for (title, unit_field, chart_lines) in &charts {
                    section {
                        h3 { (title) }
                        (lines(&format!("{title} on {name}"), |value| format_value(unit_field, value), from, to, chart_lines))
                    }
                }
            }
        }
    }
}

async fn system_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers, here(&uri)).await?;
    let (slug, service) =
        path.map(|Path(value)| value).map_err(|rejection| UiError::NotFound(rejection.body_text()))?;
    let project = viewer.project(&slug)?.clone();
    let parsed = parse_params(&params, crate::clock::now_unix_nano())?;
    let worker_state = state.clone();
    let (project_id, worker_service) = (project.id, service.clone());
    let body =
        crate::api::blocking(move || system_response(&worker_state, project_id, &worker_service, &parsed)).await?;
    let empty = Vec::new();
    let hosts = body["hosts"].as_array().unwrap_or(&empty);
    let from = body["from_unix_nano"].as_u64().unwrap_or(0);
    let to = body["to_unix_nano"].as_u64().unwrap_or(0);
    let url = service_url(&project, &service);
    let markup = html! {
        (subnav(&project, "services"))
        p { "Service " a href=(url) { (service) } }
        form.filters method="get" aria-label="Filters" {
            (range_select(value(&params, "timeRange"), "1h"))
            label { "Host " input type="text" name="host" value=(value(&params, "host")) list="hosts"; }
            datalist id="hosts" { @for host in hosts { option value=(host["host"].as_str().unwrap_or("")) {} } }
            button type="submit" { "Apply" }
        }
        @if body["truncated"] == true { p.error-message role="status" { "Too many points: the charts show the first part of the range only." } }
        @if hosts.is_empty() { p.empty { "This service sent no system metrics in this time range." } }
        @for host in hosts { (host_section(host, from, to)) }
    };
    Ok(page(&viewer, Section::Performance, Some(&project), &format!("System health of {service}"), markup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_show_in_the_unit_their_field_names() {
        assert_eq!(format_value("memory_utilization", 0.425), "42.5 %");
        assert_eq!(format_value("memory_bytes", 512.0 * 1024.0 * 1024.0), "512.0 MiB");
        assert_eq!(format_value("transmit", 2048.0), "2.0 KiB/s");
        assert_eq!(format_value("cpu_cores", 0.5), "0.50 cores");
        assert_eq!(format_value("uptime_s", 90.0), "1.5 min");
        assert_eq!(format_value("jvm_threads", 12.0), "12");
    }
}
