//! The process's own figures for `/metrics`, under the names Prometheus client libraries give
//! them (`process_*`, read from `/proc` where there is one), and `vigil_build_info`.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use vigil_store::exposition::{Exposition, Single};

static STARTED: OnceLock<f64> = OnceLock::new();

/// Notes the process start; call first thing in `main`.
pub fn started() {
    STARTED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    });
}

/// The value of `key` (in kB) in `/proc/self/status`, in bytes.
fn status_bytes(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024.0)
}

/// CPU time the process has used, from the scheduler's nanosecond count.
fn cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// The soft limit on open files.
fn max_fds() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Writes the process figures and the build's identity to `page`.
pub fn render_metrics(page: &mut Exposition) {
    page.gauge(
        "vigil_build_info",
        "Vigil's version; the value is always 1.",
    )
    .sample(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    if let Some(start) = STARTED.get() {
        page.single(
            Single::Gauge,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            *start,
        );
    }
    if let Some(cpu) = cpu_seconds() {
        page.single(
            Single::Counter,
            "process_cpu_seconds_total",
            "Total user and system CPU time spent, in seconds.",
            cpu,
        );
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for (name, key, help) in [
        (
            "process_resident_memory_bytes",
            "VmRSS:",
            "Resident memory size in bytes.",
        ),
        (
            "process_virtual_memory_bytes",
            "VmSize:",
            "Virtual memory size in bytes.",
        ),
    ] {
        if let Some(v) = status_bytes(&status, key) {
            page.single(Single::Gauge, name, help, v);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        page.single(
            Single::Gauge,
            "process_open_fds",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
    if let Some(max) = max_fds() {
        page.single(
            Single::Gauge,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_in_bytes() {
        let status = "Name:\tvigil\nVmSize:\t  204800 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_bytes(status, "VmRSS:"), Some(10_485_760.0));
        assert_eq!(status_bytes(status, "VmSwap:"), None);
    }
}
