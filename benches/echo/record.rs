//! Appending a run to BENCHMARKS.md: date, machine, how it was run, the
//! table and the notes, so runs on different days and commits can be
//! compared.

use crate::report::{self, Row};
use crate::sys;
use std::io::Write;
use std::path::Path;

pub struct Run<'a> {
    pub rows: &'a [Row],
    pub notes: &'a [String],
    pub settings: &'a str,
    /// Load average when the run started.
    pub load_at_start: &'a str,
    pub compile: &'a [String],
    pub chart: Option<&'a Path>,
    pub secs: f64,
}

fn git_head(root: &Path) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["log", "-1", "--format=%h %s"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown commit".into())
}

/// Appends `run` to `path` (created with a heading if missing).
pub fn append(path: &Path, root: &Path, run: &Run<'_>) -> std::io::Result<()> {
    let mut md = String::new();
    if !path.exists() {
        md.push_str("# Benchmark runs\n\nAppended by `make bench` (benches/echo/; see benches/README.md for what each number means).\n");
        md.push_str("Ratios are sockflow / the hand-written C baseline, median of interleaved rounds in the same run.\n");
    }
    md.push_str(&format!("\n## {} — {}\n\n", sys::utc_now(), sys::cpu_model()));
    md.push_str(&format!(
        "* machine: {}; load average at the start {}, at the end {}\n",
        sys::machine(),
        run.load_at_start,
        sys::loadavg()
    ));
    md.push_str(&format!("* commit: {}\n", git_head(root)));
    md.push_str(&format!("* command: `make bench` (`cargo bench --bench echo`); {}; {:.0} s in all\n", run.settings, run.secs));
    md.push_str("* programs, compiled in the run:\n");
    for c in run.compile {
        md.push_str(&format!("  * `{c}`\n"));
    }
    if let Some(c) = run.chart {
        md.push_str(&format!("* chart: `{}`\n", c.display()));
    }
    md.push('\n');
    md.push_str(&report::markdown(run.rows));
    if !run.notes.is_empty() {
        md.push('\n');
        for n in run.notes {
            md.push_str(&format!("* {n}\n"));
        }
    }
    std::fs::OpenOptions::new().create(true).append(true).open(path)?.write_all(md.as_bytes())
}
