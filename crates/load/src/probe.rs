//! What the run observes besides blocks: the nodes' Prometheus metrics, and CPU time from
//! `/proc` (per process, per thread name, and for the whole machine).

use std::collections::BTreeMap;
use std::path::Path;

/// Linux reports `/proc` times in USER_HZ, which the kernel's ABI fixes at 100 per second.
const USER_HZ: f64 = 100.0;

/// Metrics by name (labels included), from the Prometheus text format.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Sum of the metrics named `family{...}`, by their label text.
pub fn labelled(metrics: &BTreeMap<String, f64>, family: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{family}{{");
    metrics
        .iter()
        .filter_map(|(name, value)| {
            let labels = name.strip_prefix(&prefix)?.strip_suffix('}')?;
            Some((labels.to_owned(), *value))
        })
        .collect()
}

/// The fields after the command name of a `/proc/.../stat` line, and the name.
fn stat_fields(text: &str) -> Option<(String, Vec<&str>)> {
    // The name is in parentheses and may itself hold spaces or parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    Some((name, text.get(close + 1..)?.split_whitespace().collect()))
}

/// User plus system CPU seconds in a `/proc/<pid>/stat` (or task stat) line.
pub fn stat_cpu_seconds(text: &str) -> Option<(String, f64)> {
    let (name, fields) = stat_fields(text)?;
    // After the name: state (field 3) ... utime (14), stime (15).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) as f64 / USER_HZ))
}

/// CPU seconds a process has used (all its threads), if it is running.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu_seconds(&text).map(|(_, s)| s)
}

/// A thread's name without its trailing number (`tokio-runtime-w`, `rayon-3` → `rayon`),
/// so the threads of one pool add up.
pub fn thread_group(name: &str) -> String {
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let trimmed = trimmed.trim_end_matches(['-', '_', ' ', '#']);
    if trimmed.is_empty() {
        name.to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// CPU seconds of a process's live threads, summed by [`thread_group`].
pub fn thread_cpu_seconds(pid: u32) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(Path::new("/proc").join(pid.to_string()).join("task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("stat"))
            && let Some((name, seconds)) = stat_cpu_seconds(&text)
        {
            *out.entry(thread_group(&name)).or_insert(0.0) += seconds;
        }
    }
    out
}

/// Busy and total jiffies of the whole machine, from the first line of `/proc/stat`.
pub fn machine_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_jiffies(&text)
}

fn parse_machine_jiffies(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// CPU time of everything the run watches, at one moment.
#[derive(Clone, Debug, Default)]
pub struct CpuSnapshot {
    /// Per watched process (validator order): total seconds and seconds by thread group.
    pub processes: Vec<Option<(f64, BTreeMap<String, f64>)>>,
    /// This process.
    pub own: f64,
    /// Machine busy and total jiffies.
    pub machine: Option<(u64, u64)>,
}

impl CpuSnapshot {
    /// Read it now for `pids`.
    pub fn take(pids: &[Option<u32>]) -> CpuSnapshot {
        CpuSnapshot {
            processes: pids
                .iter()
                .map(|pid| {
                    let pid = (*pid)?;
                    Some((process_cpu_seconds(pid)?, thread_cpu_seconds(pid)))
                })
                .collect(),
            own: process_cpu_seconds(std::process::id()).unwrap_or(0.0),
            machine: machine_jiffies(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_parse_with_labels() {
        let text = "# HELP dex_height h\n# TYPE dex_height gauge\ndex_height 12\n\
                    dex_rejected_messages_total{reason=\"stale\"} 3\n\
                    dex_commit_latency_ms{quantile=\"0.5\"} 20.5\nbroken line\n";
        let m = parse_metrics(text);
        assert_eq!(m.get("dex_height"), Some(&12.0));
        assert_eq!(
            m.get("dex_commit_latency_ms{quantile=\"0.5\"}"),
            Some(&20.5)
        );
        assert_eq!(m.len(), 3);
        let reasons = labelled(&m, "dex_rejected_messages_total");
        assert_eq!(reasons.get("reason=\"stale\""), Some(&3.0));
    }

    #[test]
    fn stat_lines_give_name_and_cpu() {
        let line = "4242 (tokio runtime) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0 100 0 0";
        let (name, seconds) = stat_cpu_seconds(line).unwrap();
        assert_eq!(name, "tokio runtime");
        assert_eq!(seconds, 3.0);
        assert!(stat_cpu_seconds("garbage").is_none());
        assert_eq!(thread_group("rayon-3"), "rayon");
        assert_eq!(thread_group("tokio-runtime-w"), "tokio-runtime-w");
        assert_eq!(thread_group("consensus"), "consensus");
        assert_eq!(thread_group("42"), "42");
        assert_eq!(
            parse_machine_jiffies("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 1 2\n"),
            Some((15, 100))
        );
    }

    #[test]
    fn this_process_has_a_cpu_reading() {
        // Spend a little CPU so the reading is positive on any machine.
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let snapshot = CpuSnapshot::take(&[Some(std::process::id()), None]);
        assert!(snapshot.processes[0].is_some());
        assert!(snapshot.processes[1].is_none());
        assert!(
            snapshot
                .machine
                .is_some_and(|(busy, total)| busy <= total && total > 0)
        );
    }
}
