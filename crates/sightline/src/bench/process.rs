//! What the benchmark reads about its own process and the machine from `/proc` (Linux): peak
//! RSS, CPU time per thread (to see whether the SQLite writer thread is the bottleneck), CPU
//! model, memory and the file system holding the data directory. Elsewhere these read as
//! "unknown" instead of failing the run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Clock ticks per second in `/proc/*/stat` times. Linux fixes USER_HZ at 100 on every
/// architecture it exposes to user space (`sysconf(_SC_CLK_TCK)` would need `unsafe`).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// The writer thread's name as `/proc` shows it: the kernel keeps 15 bytes of
/// "sightline-writer" (sightline-server's `pipeline::writer`).
const WRITER_THREAD_COMM: &str = "sightline-write";

/// Peak resident set size of this process (`VmHWM`), bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Resets the peak RSS to the current RSS so a phase's peak is its own (proc(5): writing 5 to
/// `clear_refs`, Linux ≥ 4.0). Returns false when the kernel refused.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU time consumed so far, per thread name, at an instant.
#[derive(Debug, Clone)]
pub struct CpuSample {
    at: Instant,
    /// Clock ticks (user + system) per thread name (threads of one name summed). Threads that
    /// exited before the sample are missing, so a delta can undercount the process total.
    ticks_by_thread: BTreeMap<String, u64>,
    /// Clock ticks of the whole process, exited threads included.
    process_ticks: u64,
}

/// CPU use between two samples, as a share of one core (1.0 = one core busy all the time).
#[derive(Debug, Clone, Default)]
pub struct CpuUse {
    /// The whole process: server, clients and progress bars (they share the machine).
    pub process_cores: f64,
    /// The SQLite writer thread alone.
    pub writer_cores: Option<f64>,
    /// Per thread name, busiest first.
    pub by_thread_cores: Vec<(String, f64)>,
}

/// (user + system ticks, comm) from a `/proc/.../stat` line. The comm sits in parentheses and
/// may itself contain spaces or parentheses, so fields are counted after the last `)`.
fn parse_stat(stat: &str) -> Option<(u64, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    // After ")": state is field 3; utime and stime are fields 14 and 15 (proc(5)).
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let user_ticks: u64 = fields.get(11)?.parse().ok()?;
    let system_ticks: u64 = fields.get(12)?.parse().ok()?;
    Some((user_ticks + system_ticks, comm))
}

/// Reads CPU times of this process and each of its threads.
pub fn cpu_sample() -> CpuSample {
    let at = Instant::now();
    let process_ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| parse_stat(&stat))
        .map(|(ticks, _)| ticks)
        .unwrap_or(0);
    let mut ticks_by_thread = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            if let Some((ticks, comm)) = parse_stat(&stat) {
                *ticks_by_thread.entry(comm).or_insert(0) += ticks;
            }
        }
    }
    CpuSample { at, ticks_by_thread, process_ticks }
}

impl CpuSample {
    /// CPU used from `earlier` to `self`.
    pub fn since(&self, earlier: &CpuSample) -> CpuUse {
        let wall_seconds = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        let cores = |ticks: u64| ticks as f64 / CLOCK_TICKS_PER_SECOND / wall_seconds;
        let mut by_thread_cores: Vec<(String, f64)> = self
            .ticks_by_thread
            .iter()
            .map(|(name, ticks)| {
                let before = earlier.ticks_by_thread.get(name).copied().unwrap_or(0);
                (name.clone(), cores(ticks.saturating_sub(before)))
            })
            // Below half a percent of a core is noise at 100 ticks per second.
            .filter(|(_, used)| *used >= 0.005)
            .collect();
        by_thread_cores.sort_by(|left, right| right.1.total_cmp(&left.1));
        let writer_cores = self.ticks_by_thread.get(WRITER_THREAD_COMM).map(|ticks| {
            let before = earlier.ticks_by_thread.get(WRITER_THREAD_COMM).copied().unwrap_or(0);
            cores(ticks.saturating_sub(before))
        });
        CpuUse {
            process_cores: cores(self.process_ticks.saturating_sub(earlier.process_ticks)),
            writer_cores,
            by_thread_cores,
        }
    }
}

/// What the report says about the machine.
#[derive(Debug, Clone)]
pub struct MachineInfo {
    /// Cores this process may use.
    pub cores: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `MemTotal`, bytes.
    pub memory_bytes: Option<u64>,
    /// Kernel release.
    pub kernel: String,
}

/// Reads the machine description.
pub fn machine_info() -> MachineInfo {
    let cores = std::thread::available_parallelism().map(|cores| cores.get()).unwrap_or(1);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_bytes = meminfo
        .lines()
        .find(|line| line.starts_with("MemTotal:"))
        .and_then(|line| line.trim_start_matches("MemTotal:").trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    MachineInfo { cores, cpu_model, memory_bytes, kernel }
}

/// The file system type (`ext4`, `tmpfs`, ...) of the mount holding `path`: fsync costs differ
/// by orders of magnitude between them, so the report names it.
pub fn filesystem_type(path: &Path) -> String {
    let Ok(canonical) = path.canonicalize() else {
        return "unknown".to_owned();
    };
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_device), Some(mount_point), Some(fs_type)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let is_longer = best.as_ref().is_none_or(|(length, _)| mount_point.len() >= *length);
        if canonical.starts_with(mount_point) && is_longer {
            best = Some((mount_point.len(), fs_type.to_owned()));
        }
    }
    best.map(|(_, fs_type)| fs_type).unwrap_or_else(|| "unknown".to_owned())
}

/// Size of the SQLite database with its WAL and shared-memory files, bytes.
pub fn database_bytes(database_path: &Path) -> u64 {
    let mut total = 0;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = database_path.as_os_str().to_owned();
        name.push(suffix);
        total += std::fs::metadata(Path::new(&name)).map(|metadata| metadata.len()).unwrap_or(0);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let stat = "1234 (tokio (rt) w) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100";
        assert_eq!(parse_stat(stat), Some((300, "tokio (rt) w".to_owned())));
    }

    #[test]
    fn own_process_is_readable_on_linux() {
        if !Path::new("/proc/self/status").exists() {
            return;
        }
        assert!(peak_rss_bytes().is_some_and(|bytes| bytes > 0));
        assert!(!cpu_sample().ticks_by_thread.is_empty());
    }
}
