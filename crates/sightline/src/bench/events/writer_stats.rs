//! What the writer did during a phase: group commits from the server's own `/metrics`
//! (`commit_duration_seconds` and `commit_items` histograms) — how many, how big, how long — and
//! the bytes the process wrote to storage (`/proc/self/io`). With the writer thread's CPU time
//! they tell whether the writer is the bottleneck, whether it spends its time in SQLite or waiting
//! for the disk, and how many bytes of WAL each event costs.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

/// Running totals of the commit histograms at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommitTotals {
    commits: u64,
    seconds: f64,
    items: f64,
}

/// Commits between two readings.
#[derive(Debug, Clone, Copy)]
pub struct CommitStats {
    /// Group commits.
    pub commits: u64,
    /// Time inside `Store::commit`, summed.
    pub busy: Duration,
    /// Items committed.
    pub items: u64,
}

impl CommitStats {
    /// Mean items per commit.
    pub fn mean_items(&self) -> f64 {
        self.items as f64 / self.commits.max(1) as f64
    }

    /// Mean commit duration, milliseconds.
    pub fn mean_ms(&self) -> f64 {
        self.busy.as_secs_f64() * 1000.0 / self.commits.max(1) as f64
    }
}

impl CommitTotals {
    /// What happened since `earlier`.
    pub fn since(&self, earlier: &CommitTotals) -> CommitStats {
        CommitStats {
            commits: self.commits.saturating_sub(earlier.commits),
            busy: Duration::from_secs_f64((self.seconds - earlier.seconds).max(0.0)),
            items: (self.items - earlier.items).max(0.0) as u64,
        }
    }
}

/// The value of the sample whose metric name ends with `suffix` (names carry the registry's
/// prefix), from OpenMetrics text.
fn sample(text: &str, suffix: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        name.ends_with(suffix).then(|| value.split_whitespace().next()?.parse().ok())?
    })
}

fn parse(text: &str) -> Option<CommitTotals> {
    Some(CommitTotals {
        commits: sample(text, "commit_duration_seconds_count")? as u64,
        seconds: sample(text, "commit_duration_seconds_sum")?,
        items: sample(text, "commit_items_sum")?,
    })
}

/// Reads the totals from `GET /metrics` of the server at `http_addr`.
pub async fn read(http_addr: SocketAddr) -> anyhow::Result<CommitTotals> {
    let url = format!("http://{http_addr}/metrics");
    let text = reqwest::get(&url)
        .await
        .and_then(|response| response.error_for_status())
        .with_context(|| format!("GET {url}"))?
        .text()
        .await
        .with_context(|| format!("reading GET {url}"))?;
    parse(&text).with_context(|| format!("GET {url} has no commit_duration_seconds / commit_items histograms"))
}

/// Bytes this process has caused to be written to storage so far (`write_bytes` of
/// `/proc/self/io`: page cache pages dirtied, so WAL appends and checkpoints, not socket writes).
/// `None` off Linux or when the kernel does not account I/O.
pub fn storage_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    let line = io.lines().find(|line| line.starts_with("write_bytes:"))?;
    line.trim_start_matches("write_bytes:").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_come_from_the_histograms_sums_and_counts() {
        let text = "# TYPE sightline_commit_duration_seconds histogram\n\
                    sightline_commit_duration_seconds_sum 1.5\n\
                    sightline_commit_duration_seconds_count 30\n\
                    sightline_commit_duration_seconds_bucket{le=\"0.0005\"} 0\n\
                    sightline_commit_items_sum 15000.0\n\
                    sightline_commit_items_count 30\n";
        let totals = parse(text).expect("parsed");
        let stats = totals.since(&CommitTotals::default());
        assert_eq!((stats.commits, stats.items), (30, 15_000));
        assert!((stats.mean_ms() - 50.0).abs() < 1e-9);
        assert!((stats.mean_items() - 500.0).abs() < 1e-9);
    }
}
